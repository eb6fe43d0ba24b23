//! Fixtures several crates' tests share: a tree with every kind, unit, histogram, label
//! and escaping case (what the OpenMetrics, HTTP and mount tests read), a tree mounted in
//! a temporary directory, and errno helpers for calls that must fail.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use statsfs::cell::{Counter, Flag, Gauge, LinearHistogram, LogHistogram, Peak};
use statsfs::{Descriptor, Kind, Scale, Schema, Source, Stats, Unit, ValueGroup, ValueType};

/// A vCPU's statistics: every kind and unit a derived struct can have.
#[derive(Stats, Default)]
#[stats(name = "vcpu")]
#[allow(missing_docs)]
pub struct VcpuStat {
    /// Guest exits handled
    pub exits: Counter,
    /// Time spent halted
    #[stat(unit = seconds, exponent = -9)]
    pub halt_ns: Counter,
    /// Interrupts waiting, "quoted" and with a back\slash
    pub pending_irqs: Gauge<u32>,
    /// Clock drift
    #[stat(kind = instant, unit = seconds, exponent = -6)]
    pub drift_us: AtomicI64,
    /// Deepest exit queue seen
    pub queue_depth: Peak<u32>,
    /// Whether the vCPU runs
    pub running: Flag,
    /// Guest memory touched
    #[stat(unit = bytes, base = 2, exponent = 20)]
    pub touched_mib: Gauge<u64>,
    /// Cycles in guest mode
    #[stat(unit = cycles)]
    pub guest_cycles: Counter,
    /// Exit handling latency
    #[stat(unit = seconds, exponent = -9)]
    pub exit_latency_ns: LogHistogram<6>,
    /// Run queue length seen on entry
    pub queue_len: LinearHistogram<4, 10>,
    pub undocumented: Counter,
    /// Halts counted only in the aggregates
    #[stat(hidden)]
    pub hidden_halts: Counter,
}

/// The tree: `kvm` (aggregates) / `1234-5` (label vm, aggregates) / two vCPUs (label
/// vcpu; the second is hidden and has a name and label that need escaping), plus a runtime
/// block schema with a multi-line description, a bool and a base-10 positive exponent.
pub struct Tree {
    /// `kvm`.
    pub root: Source,
    /// The two vCPUs' structs, to change values under a reader.
    pub vcpus: Vec<Arc<VcpuStat>>,
}

/// Builds [`Tree`].
pub fn tree() -> Tree {
    let root = Source::new("kvm").unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let vm = Source::new("1234-5").unwrap();
    vm.set_label("vm", "1234-5").unwrap();
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    root.add_subordinate(&vm).unwrap();
    let mut vcpus = Vec::new();
    for (i, name) in ["vcpu0", "vcpu\"1\\"].into_iter().enumerate() {
        let s = Arc::new(VcpuStat::default());
        s.exits.add(10 + i as u64);
        s.halt_ns.add(1500 + 1_000_000_000 * i as u64);
        s.pending_irqs.set(3);
        s.drift_us.store(-250 * (i as i64 + 1), Ordering::Relaxed);
        s.queue_depth.record(7 + i as u32);
        s.running.set(i == 0);
        s.touched_mib.set(2);
        s.guest_cycles.add(1 << 40);
        for v in [0, 1, 2, 3, 100, 1 << 20] {
            s.exit_latency_ns.record(v);
        }
        for v in [0, 9, 10, 35, 1000] {
            s.queue_len.record(v);
        }
        s.undocumented.add(1);
        s.hidden_halts.add(5);
        let dir = Source::new(name).unwrap();
        dir.set_label("vcpu", i.to_string()).unwrap();
        if i == 1 {
            dir.set_label("note", "a \"quoted\" back\\slash").unwrap();
            dir.set_hidden(true);
        }
        dir.add(s.clone()).unwrap();
        vm.add_subordinate(&dir).unwrap();
        vcpus.push(s);
    }
    let kernel = Schema::new_runtime(
        "kernel",
        vec![
            Descriptor::new("dirty", ValueType::Bool, Kind::Instant)
                .with_doc("Whether the log is dirty\nsecond line with \\ and \""),
            Descriptor::new("pages", ValueType::U64, Kind::Cumulative)
                .with_unit(
                    Unit::None,
                    Scale {
                        base: statsfs::Base::Ten,
                        exponent: 3,
                    },
                )
                .with_offset(8),
        ],
    )
    .unwrap();
    vm.add(ValueGroup::block(
        kernel,
        Arc::new(|o: &mut [u64]| {
            o[0] = 1;
            o[1] = 42;
            Ok(())
        }),
    ))
    .unwrap();
    Tree { root, vcpus }
}

/// `root` mounted with `options` in a new temporary directory (which goes when dropped,
/// after the mount).
pub fn mounted(
    root: &Source,
    options: statsfs::vfs::MountOptions,
) -> (tempfile::TempDir, statsfs::vfs::Mount) {
    let dir = tempfile::TempDir::new().unwrap();
    let m = statsfs::vfs::mount(dir.path(), std::slice::from_ref(root), options).unwrap();
    (dir, m)
}

/// The errno of a call that must fail.
pub fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("expected an error")
        .raw_os_error()
        .expect("an OS error")
}

/// One `write(2)` of `data` to `p`, opened write-only.
pub fn write_once(p: &std::path::Path, data: &[u8]) -> std::io::Result<usize> {
    use std::io::Write as _;
    std::fs::OpenOptions::new().write(true).open(p)?.write(data)
}
