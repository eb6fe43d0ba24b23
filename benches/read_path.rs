//! Read paths (BENCHMARKS.md, benchmarks 5 and 6).
//!
//! 5. An aggregate read (a sum, and an average) at a source with 10,000 subordinate
//!    sources, vs summing a `Vec<u64>` of 10,000 (the floor for any fold), and vs summing
//!    the same field through a `Vec<Arc<VcpuStat>>` (the floor for values that live in
//!    10,000 separate structs, as statsfs values do).
//! 6. A whole-tree snapshot: 1,000 sources × 50 values, each value's words copied into
//!    one preallocated `Vec<u64>` data block through `walk()`: the data path of the
//!    binary layout encoder (which is not on this branch yet), so named
//!    `walk_copy_into_data_block`.
//!
//! ```text
//! taskset -c 1 cargo bench --bench read_path -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use statsfs::cell::{Counter, Gauge, Peak};
use statsfs::{walk, Place, Source, Stats, ValueGroup, ValueRef, Visitor, WalkOptions};

/// A vCPU's stats: eight values, 64 bytes.
#[derive(Stats, Default)]
struct VcpuStat {
    /// Guest exits
    exits: Counter,
    /// Halt exits
    halt_exits: Counter,
    /// Interrupt window exits
    irq_window_exits: Counter,
    /// MMIO exits
    mmio_exits: Counter,
    /// Signal exits
    signal_exits: Counter,
    /// Interrupts injected
    irq_injections: Counter,
    /// Interrupts waiting (aggregated as an average)
    #[stat(aggregate = avg)]
    pending_irqs: Gauge<u64>,
    /// Deepest exit queue seen
    queue_depth: Peak,
}

const SUBORDINATES: usize = 10_000;

fn aggregate(c: &mut Criterion) {
    let root = Source::new("host").unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let mut stats = Vec::with_capacity(SUBORDINATES);
    let mut plain = Vec::with_capacity(SUBORDINATES);
    for i in 0..SUBORDINATES {
        let s = Arc::new(VcpuStat::default());
        let v = (i as u64).wrapping_mul(0x9E37_79B9) % 1_000_003;
        s.exits.add(v);
        s.pending_irqs.set(v % 17);
        plain.push(v);
        let src = Source::new(format!("vcpu{i}")).unwrap();
        src.add(s.clone()).unwrap();
        root.add_subordinate(&src).unwrap();
        stats.push(s);
    }
    let want: u64 = plain.iter().sum();
    assert_eq!(root.get("exits").unwrap().as_u64(), want);
    let avg = stats.iter().map(|s| s.pending_irqs.get()).sum::<u64>() / SUBORDINATES as u64;
    assert_eq!(root.get("pending_irqs").unwrap().as_u64(), avg);

    let mut g = c.benchmark_group("aggregate_10k");
    g.throughput(Throughput::Elements(SUBORDINATES as u64));
    g.bench_function("vec_u64_sum", |b| {
        b.iter(|| black_box(&plain).iter().sum::<u64>())
    });
    g.bench_function("vec_arc_struct_field_sum", |b| {
        b.iter(|| {
            black_box(&stats)
                .iter()
                .fold(0u64, |a, s| a.wrapping_add(s.exits.get()))
        })
    });
    g.bench_function("statsfs_get_sum", |b| {
        b.iter(|| black_box(&root).get("exits").unwrap().as_u64())
    });
    g.bench_function("statsfs_get_avg", |b| {
        b.iter(|| black_box(&root).get("pending_irqs").unwrap().as_u64())
    });
    g.finish();
}

macro_rules! big_stat {
    ($($f:ident)*) => {
        /// Fifty counters.
        #[derive(Stats, Default)]
        struct BigStat {
            $(
                /// A counter
                $f: Counter,
            )*
        }
    };
}

big_stat! {
    c00 c01 c02 c03 c04 c05 c06 c07 c08 c09 c10 c11 c12 c13 c14 c15 c16 c17 c18 c19
    c20 c21 c22 c23 c24 c25 c26 c27 c28 c29 c30 c31 c32 c33 c34 c35 c36 c37 c38 c39
    c40 c41 c42 c43 c44 c45 c46 c47 c48 c49
}

const SOURCES: usize = 1_000;
const VALUES: usize = 50;

/// Copies every value's words into one data block, as the binary encoder's data path
/// does.
struct DataBlock(Vec<u64>);

impl Visitor for DataBlock {
    fn value(&mut self, _: &Place<'_>, v: &ValueRef<'_>) {
        self.0.extend_from_slice(v.words);
    }
}

fn snapshot(c: &mut Criterion) {
    let root = Source::new("snapshot").unwrap();
    let mut keep = Vec::new();
    for i in 0..SOURCES {
        let s = Arc::new(BigStat::default());
        s.c00.add(i as u64);
        let src = Source::new(format!("s{i}")).unwrap();
        src.add(s.clone()).unwrap();
        root.add_subordinate(&src).unwrap();
        keep.push(s);
    }
    let mut block = DataBlock(Vec::with_capacity(SOURCES * VALUES));
    walk(&root, WalkOptions::default(), &mut block);
    assert_eq!(block.0.len(), SOURCES * VALUES);

    let mut g = c.benchmark_group("snapshot_1000x50");
    g.throughput(Throughput::Elements((SOURCES * VALUES) as u64));
    g.bench_function("walk_copy_into_data_block", |b| {
        b.iter(|| {
            block.0.clear();
            walk(black_box(&root), WalkOptions::default(), &mut block);
            black_box(block.0.len())
        })
    });
    g.finish();
}

criterion_group!(benches, aggregate, snapshot);
criterion_main!(benches);
