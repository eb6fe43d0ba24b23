//! The encoder allocates nothing per series in steady state: a counting global allocator
//! shows that, once an `Encoder` has seen a tree, encoding it again allocates the same
//! number of times whether each source holds 2 values (a counter and a 32-bucket
//! histogram) or 17 (16 counters and the histogram), i.e. only the walk's per-source
//! bookkeeping remains.

use std::sync::Arc;

use statsfs::cell::{Counter, LogHistogram};
use statsfs::openmetrics::{Encoder, Format};
use statsfs::{Source, Stats};
use statsfs_testkit::alloc::Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    statsfs_testkit::alloc::calls()
}

#[derive(Stats, Default)]
struct Small {
    /// One value
    a: Counter,
    /// A histogram
    #[stat(unit = seconds, exponent = -9)]
    latency_ns: LogHistogram<32>,
}

#[derive(Stats, Default)]
struct Big {
    /// c0
    c0: Counter,
    /// c1
    c1: Counter,
    /// c2
    c2: Counter,
    /// c3
    c3: Counter,
    /// c4
    c4: Counter,
    /// c5
    c5: Counter,
    /// c6
    c6: Counter,
    /// c7
    c7: Counter,
    /// c8
    c8: Counter,
    /// c9
    c9: Counter,
    /// c10
    c10: Counter,
    /// c11
    c11: Counter,
    /// c12
    c12: Counter,
    /// c13
    c13: Counter,
    /// c14
    c14: Counter,
    /// c15
    c15: Counter,
    /// A histogram
    #[stat(unit = seconds, exponent = -9)]
    latency_ns: LogHistogram<32>,
}

/// 10 VMs (label vm) of 10 vCPUs (label vcpu), each vCPU with `T`'s values.
fn tree<T: Stats + Default>() -> (Source, Vec<Arc<T>>) {
    let root = Source::new("kvm").unwrap();
    let mut keep = Vec::new();
    for vm in 0..10 {
        let v = Source::new(format!("{vm}-1")).unwrap();
        v.set_label("vm", format!("{vm}-1")).unwrap();
        for cpu in 0..10 {
            let c = Source::new(format!("vcpu{cpu}")).unwrap();
            c.set_label("vcpu", cpu.to_string()).unwrap();
            let s = Arc::new(T::default());
            c.add(s.clone()).unwrap();
            v.add_subordinate(&c).unwrap();
            keep.push(s);
        }
        root.add_subordinate(&v).unwrap();
    }
    (root, keep)
}

/// Allocations of one steady-state encode, and the series it wrote.
fn steady_allocs(root: &Source, format: Format) -> (usize, usize) {
    let mut e = Encoder::new();
    let roots = [root.clone()];
    e.encode(&roots, format);
    e.encode(&roots, format);
    let before = allocs();
    let len = e.encode(&roots, format).len();
    let n = allocs() - before;
    assert!(len > 0);
    (n, e.series())
}

#[test]
fn steady_state_allocates_nothing_per_series() {
    let (small, _k1) = tree::<Small>();
    let (big, _k2) = tree::<Big>();
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let (a_small, s_small) = steady_allocs(&small, format);
        let (a_big, s_big) = steady_allocs(&big, format);
        assert_eq!((s_small, s_big), (200, 1700));
        assert_eq!(
            a_small, a_big,
            "{format:?}: {a_small} allocations for {s_small} series, {a_big} for {s_big}"
        );
        // What is left is the walk's bookkeeping, a few per source (111 sources).
        assert!(a_big <= 111 * 8, "{format:?}: {a_big} allocations");
        eprintln!("{format:?}: {a_big} allocations for 111 sources, {s_big} series");
    }
}
