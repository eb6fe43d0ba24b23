//! Reading many stats: one file per stat through the mount, one bulk read, one pread of
//! the data block; encoding in process; the kernel's own stats fd for comparison.
//!
//! Run it as root, client and FUSE daemon pinned to one CPU (they are one process here,
//! so pinning the process pins both):
//!
//! ```sh
//! taskset -c 0 cargo bench --bench bulk
//! ```
//!
//! Without root or /dev/fuse the mount groups are skipped with a message; without
//! /dev/kvm the kernel group is.

use std::fs::{self, File};
use std::hint::black_box;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use seq_macro::seq;
use statsfs::binary::BulkView;
use statsfs::binary::{Blob, Selection};
use statsfs::cell::Counter;
use statsfs::region::{Region, RegionOptions, RegionReader};
use statsfs::vfs::{mount, MountOptions};
use statsfs::Scope;
use statsfs::{Source, Stats, ValueGroup};

seq!(N in 0..1000 {
    /// A source of 1,000 counters.
    #[derive(Stats)]
    struct Thousand {
        #(s~N: Counter,)*
    }
});

seq!(N in 0..50 {
    /// A source of 50 counters.
    #[derive(Stats)]
    struct Fifty {
        #(f~N: Counter,)*
    }
});

fn can_mount() -> bool {
    // SAFETY: geteuid cannot fail.
    let ok = unsafe { libc::geteuid() } == 0 && Path::new("/dev/fuse").exists();
    if !ok {
        eprintln!("SKIPPED: the mount benchmarks need root and /dev/fuse");
    }
    ok
}

fn thousand_source() -> Source {
    let s = Source::new("bench").unwrap();
    let t = Arc::new(Thousand::new());
    t.s0.add(7);
    s.add(t).unwrap();
    s
}

fn through_the_mount(c: &mut Criterion) {
    if !can_mount() {
        return;
    }
    let src = thousand_source();
    let dir = tempfile::TempDir::new().unwrap();
    let m = mount(
        dir.path(),
        std::slice::from_ref(&src),
        MountOptions::default(),
    )
    .unwrap();
    let top = m.path().join("bench");
    let names: Vec<_> = Thousand::DESCRIPTORS
        .iter()
        .map(|d| top.join(d.name))
        .collect();

    let mut g = c.benchmark_group("one_stat");
    g.bench_function("open_read_close", |b| {
        let mut buf = [0u8; 64];
        b.iter(|| {
            let f = File::open(&names[0]).unwrap();
            black_box(f.read_at(&mut buf, 0).unwrap());
        })
    });
    g.bench_function("pread_open_file", |b| {
        let f = File::open(&names[0]).unwrap();
        let mut buf = [0u8; 64];
        b.iter(|| black_box(f.read_at(&mut buf, 0).unwrap()))
    });
    g.finish();

    let mut g = c.benchmark_group("thousand_stats");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(10);
    g.bench_function("file_by_file", |b| {
        let mut buf = [0u8; 64];
        b.iter(|| {
            for p in &names {
                let f = File::open(p).unwrap();
                black_box(f.read_at(&mut buf, 0).unwrap());
            }
        })
    });
    g.sample_size(100);
    let bulk = top.join(".stats");
    g.bench_function("bulk_open_read_close", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let f = File::open(&bulk).unwrap();
            black_box(f.read_at(&mut buf, 0).unwrap());
        })
    });
    g.bench_function("bulk_pread_data_block", |b| {
        let f = File::open(&bulk).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let n = f.read_at(&mut buf, 0).unwrap();
        let blob = Blob::decode(&buf[..n]).unwrap();
        let off = blob.header().data_offset as u64;
        let mut data = vec![0u8; n - off as usize];
        b.iter(|| black_box(f.read_at(&mut data, off).unwrap()))
    });
    g.finish();
    drop(m);
}

fn encode_in_process(c: &mut Criterion) {
    // 50 sources × 1,000 values = 50,000 values in one subtree blob.
    let root = Source::new("root").unwrap();
    for i in 0..50 {
        let s = Source::new(format!("s{i}")).unwrap();
        s.add(Arc::new(Thousand::new())).unwrap();
        root.add_subordinate(&s).unwrap();
    }
    let mut view = BulkView::new(&root, Scope::Subtree, &Selection::all()).unwrap();
    assert_eq!(view.len(), 50_000);
    let mut blob = Vec::new();
    view.encode(&mut blob);
    let mut g = c.benchmark_group("encode_50000_values");
    g.throughput(Throughput::Bytes(blob.len() as u64));
    g.bench_function("whole_blob", |b| {
        b.iter(|| view.encode(black_box(&mut blob)))
    });
    g.throughput(Throughput::Bytes(view.layout().data_len() as u64));
    g.bench_function("data_block", |b| {
        b.iter(|| view.encode_data(black_box(&mut blob)))
    });
    // The whole-tree snapshot of BENCHMARKS.md: 1,000 sources × 50 values.
    let root = Source::new("root").unwrap();
    for i in 0..1000 {
        let s = Source::new(format!("s{i}")).unwrap();
        s.add(Arc::new(Fifty::new())).unwrap();
        root.add_subordinate(&s).unwrap();
    }
    let mut tree = BulkView::new(&root, Scope::Subtree, &Selection::all()).unwrap();
    assert_eq!(tree.len(), 50_000);
    let mut tree_blob = Vec::new();
    tree.encode(&mut tree_blob);
    g.throughput(Throughput::Elements(50_000));
    g.bench_function("snapshot_1000x50_data_block", |b| {
        b.iter(|| tree.encode_data(black_box(&mut tree_blob)))
    });
    g.finish();

    let mut g = c.benchmark_group("make_view_50000_values");
    g.sample_size(10);
    g.bench_function("layout", |b| {
        b.iter_batched(
            || (),
            |()| BulkView::new(&root, Scope::Subtree, &Selection::all()).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The kernel's binary stats of a vCPU, through `KVM_GET_STATS_FD`.
fn kernel_vcpu_stats() -> Option<(OwnedFd, OwnedFd, File)> {
    const KVM_CREATE_VM: libc::Ioctl = 0xae01;
    const KVM_CREATE_VCPU: libc::Ioctl = 0xae41;
    const KVM_GET_STATS_FD: libc::Ioctl = 0xaece;
    let kvm = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .ok()?;
    // SAFETY: KVM_CREATE_VM takes the machine type (0) and returns a new descriptor.
    let vm = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&kvm), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return None;
    }
    // SAFETY: a new descriptor nothing else owns.
    let vm = unsafe { OwnedFd::from_raw_fd(vm) };
    // SAFETY: KVM_CREATE_VCPU takes the vCPU id and returns a new descriptor.
    let vcpu = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&vm), KVM_CREATE_VCPU, 0) };
    if vcpu < 0 {
        return None;
    }
    // SAFETY: a new descriptor nothing else owns.
    let vcpu = unsafe { OwnedFd::from_raw_fd(vcpu) };
    // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new descriptor.
    let stats = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&vcpu), KVM_GET_STATS_FD) };
    if stats < 0 {
        return None;
    }
    // SAFETY: a new descriptor nothing else owns.
    Some((vm, vcpu, File::from(unsafe { OwnedFd::from_raw_fd(stats) })))
}

fn against_the_kernel(c: &mut Criterion) {
    let Some((_vm, _vcpu, stats)) = kernel_vcpu_stats() else {
        eprintln!("SKIPPED: the kernel comparison needs /dev/kvm");
        return;
    };
    let file = statsfs::binary::StatsFile::open(stats).unwrap();
    let n = file.schema().descriptors().len() as u64;
    let off = file.schema().data_range().start;
    let mut data = vec![0u8; file.schema().data_len()];
    let stats = file.into_inner();
    let mut g = c.benchmark_group("kernel_vcpu_stats");
    g.throughput(Throughput::Elements(n));
    g.bench_function("pread_data_block", |b| {
        b.iter(|| black_box(stats.read_at(&mut data, off).unwrap()))
    });
    g.finish();
}

/// A region with `sources` sources of 1,000 counters each under `bench/`, and their
/// handles (kept: dropping them would unpublish the sources).
fn region_of(
    dir: &Path,
    sources: usize,
) -> (
    Region,
    Source,
    Vec<Arc<statsfs::region::InRegion<Thousand>>>,
) {
    let region = Region::create(
        dir.join(format!("bench-{sources}.region")),
        RegionOptions::default().with_size(128 << 20),
    )
    .unwrap();
    let root = Source::new("bench").unwrap();
    region.publish(std::slice::from_ref(&root));
    let mut handles = Vec::new();
    for i in 0..sources {
        let h = region.alloc(Thousand::new()).unwrap();
        h.s0.add(i as u64);
        let s = Source::new(format!("s{i}")).unwrap();
        s.add(ValueGroup::placed(h.clone())).unwrap();
        root.add_subordinate(&s).unwrap();
        handles.push(h);
    }
    (region, root, handles)
}

/// A refresh of every stat through the shared region (loads only), against the bulk
/// file's pread of the same stats through the mount, at 1,000 and 100,000 stats.
fn through_the_region(c: &mut Criterion) {
    let dir = tempfile::TempDir::new().unwrap();
    for sources in [1usize, 100] {
        let n = 1000 * sources as u64;
        let (region, root, _handles) = region_of(dir.path(), sources);
        let mut reader = RegionReader::open(region.path()).unwrap();
        let mut values = Vec::new();
        reader.refresh(&mut values).unwrap();
        let mut g = c.benchmark_group(format!("refresh_{n}_stats"));
        g.throughput(Throughput::Elements(n));
        g.bench_function("region", |b| {
            b.iter(|| {
                reader.refresh(&mut values).unwrap();
                black_box(&values);
            })
        });
        if can_mount() {
            let mdir = tempfile::TempDir::new().unwrap();
            let m = mount(
                mdir.path(),
                std::slice::from_ref(&root),
                MountOptions::default(),
            )
            .unwrap();
            let path = m.path().join("bench").join(".tree.stats");
            let f = File::open(&path).unwrap();
            let blob = Blob::read(&f).unwrap();
            let off = blob.schema().data_range().start;
            let mut data = vec![0u8; blob.schema().data_len()];
            g.bench_function("bulk_file_pread", |b| {
                b.iter(|| black_box(f.read_at(&mut data, off).unwrap()))
            });
            drop(f);
            drop(m);
        }
        g.finish();
    }
}

criterion_group!(
    benches,
    through_the_mount,
    encode_in_process,
    against_the_kernel,
    through_the_region
);
criterion_main!(benches);
