//! A refresh of the `statsfs` tool over a mounted host of 100 VMs x 4 vCPUs
//! (`examples/fleet.rs`'s tree), next to a file-by-file reader of the same tree
//! (kvm_stat's method on debugfs: open, read and close each value file of each VM
//! directory, every refresh).
//!
//! Run it as root, client and FUSE daemon pinned to one CPU (one process here):
//!
//! ```sh
//! taskset -c 0 cargo bench -p statsfs-cli --bench cli
//! ```
//!
//! Without root or /dev/fuse it says so and measures nothing.

#[path = "../../examples/fleet.rs"]
mod fleet;

use std::fs;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use statsfs::vfs::{mount, MountOptions};
use statsfs_cli::Reader;

fn refresh(c: &mut Criterion) {
    let (root, _stats) = fleet::build(100, 4);
    let dir = tempfile::TempDir::new().unwrap();
    let m = match mount(dir.path(), &[root], MountOptions::default()) {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED: cli bench: cannot mount ({e}): run as root with /dev/fuse");
            return;
        }
    };
    let kvm = m.path().join("kvm");
    let mut g = c.benchmark_group("refresh_100_vms_x_4_vcpus");

    let mut reader = Reader::open(kvm.to_str().unwrap()).unwrap();
    println!(
        "statsfs reader: {} stats from {} bulk file(s)",
        reader.stats(),
        reader.files()
    );
    g.bench_function("statsfs_tree_stats_pread", |b| {
        b.iter(|| reader.refresh().unwrap())
    });

    // kvm_stat's debugfs method: every value file of every VM directory, every refresh.
    let files: Vec<PathBuf> = fs::read_dir(&kvm)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .flat_map(|vm| {
            fs::read_dir(&vm)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect::<Vec<_>>()
        })
        .collect();
    println!("file by file: {} value files", files.len());
    g.bench_function("file_by_file_open_read_close", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for f in &files {
                let text = fs::read_to_string(f).unwrap();
                sum = sum.wrapping_add(text.trim_end().parse::<u64>().unwrap());
            }
            black_box(sum)
        })
    });
    g.finish();
    drop(m);
}

criterion_group!(benches, refresh);
criterion_main!(benches);
