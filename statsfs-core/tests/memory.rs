//! Memory per source and per value descriptor (BENCHMARKS.md, benchmark 7), measured with
//! a counting global allocator. Asserts the bounds (behaviour, not timing) and prints the
//! numbers: `cargo test --release --test memory -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use statsfs::cell::{Counter, Gauge, LogHistogram, Peak};
use statsfs::{Source, Stats, ValueGroup};

/// Counts live heap bytes (as requested, not as the allocator rounds them) and calls.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Relaxed);
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Relaxed);
        CALLS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A vCPU's stats: eight values.
#[derive(Stats, Default)]
struct VcpuStat {
    /// Guest exits
    exits: Counter,
    /// Halt exits
    halt_exits: Counter,
    /// MMIO exits
    mmio_exits: Counter,
    /// Interrupts injected
    irq_injections: Counter,
    /// Interrupts waiting
    pending_irqs: Gauge<u32>,
    /// Deepest exit queue seen
    queue_depth: Peak,
    /// Exit handling time
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<2>,
}

/// One value.
#[derive(Stats, Default)]
struct OneStat {
    /// A counter
    c: Counter,
}

macro_rules! fifty {
    ($($f:ident)*) => {
        /// Fifty values.
        #[derive(Stats, Default)]
        struct FiftyStat { $(
            /// A counter
            $f: Counter,
        )* }
    };
}
fifty! {
    c00 c01 c02 c03 c04 c05 c06 c07 c08 c09 c10 c11 c12 c13 c14 c15 c16 c17 c18 c19
    c20 c21 c22 c23 c24 c25 c26 c27 c28 c29 c30 c31 c32 c33 c34 c35 c36 c37 c38 c39
    c40 c41 c42 c43 c44 c45 c46 c47 c48 c49
}

const N: usize = 1000;

/// Live heap bytes per source, beyond `size_of::<T>()`, for `N` sources named
/// `vcpu0`..`vcpu999`, each with one `Arc<T>` of values, all subordinates of one parent
/// with `T`'s aggregates (read once, so the aggregate's member cache is counted too).
/// Includes the `Arc`'s two counts, the source, its name, its group, its slot in the
/// parent's list of subordinates and its entry in the parent's name index, and its
/// member entry (with its index entry) in the parent aggregate's cache.
fn bytes_per_source<T: Stats + Default>(first_value: &str) -> (f64, f64) {
    let parent = Source::new("vm").unwrap();
    parent.add(ValueGroup::aggregates::<T>()).unwrap();
    let names: Vec<String> = (0..N).map(|i| format!("vcpu{i}")).collect();
    let mut keep = Vec::with_capacity(N);
    let before = LIVE.load(Relaxed);
    let calls = CALLS.load(Relaxed);
    for name in &names {
        let stats = Arc::new(T::default());
        let s = Source::new(name.as_str()).unwrap();
        s.add(stats.clone()).unwrap();
        parent.add_subordinate(&s).unwrap();
        keep.push(stats);
    }
    let _ = parent.get(first_value).unwrap();
    let bytes = (LIVE.load(Relaxed) - before) as f64 / N as f64;
    let calls = (CALLS.load(Relaxed) - calls) as f64 / N as f64;
    drop(parent);
    // `keep` held one Arc each: its size is in `bytes`, as the user's own allocation.
    (bytes - std::mem::size_of::<T>() as f64, calls)
}

#[test]
fn memory_per_source_and_per_descriptor() {
    // The names' Strings are built before counting; `Source::new` copies the name.
    let (vcpu, vcpu_calls) = bytes_per_source::<VcpuStat>("exits");
    let (one, _) = bytes_per_source::<OneStat>("c");
    let (fifty, _) = bytes_per_source::<FiftyStat>("c00");
    let per_descriptor = (fifty - one) / 49.0;

    // Touching the schemas allocates nothing: descriptors are static.
    let before = LIVE.load(Relaxed);
    let n: usize = [VcpuStat::SCHEMA, OneStat::SCHEMA, FiftyStat::SCHEMA]
        .iter()
        .map(|s| s.descriptors().len())
        .sum();
    assert_eq!(n, 7 + 1 + 50);
    assert_eq!(LIVE.load(Relaxed), before);

    println!(
        "heap bytes per source beyond its stats struct: {vcpu:.1} \
         ({vcpu_calls:.1} allocations; VcpuStat is {} bytes, 7 values)",
        std::mem::size_of::<VcpuStat>()
    );
    println!("  with 1 value: {one:.1}; with 50 values: {fifty:.1}");
    println!("heap bytes per value descriptor: {per_descriptor:.2}");
    // 256 B before O(1) membership: the subordinates' slots and name index and the
    // aggregate's member index (hash tables, here at 1,000 of 2,048 buckets) cost 60-80 B
    // of it (BENCHMARKS.md#churn).
    assert!(vcpu <= 384.0, "{vcpu} bytes per source");
    assert!(fifty <= 384.0, "{fifty} bytes per source");
    // Exactly 0 bytes; the float of the difference may round to within an ulp of it.
    assert!(per_descriptor.abs() < 1e-9, "descriptors must cost no heap");
}
