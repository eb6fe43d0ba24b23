//! Shared by the OpenMetrics tests: a tree with every kind, unit, histogram, label and
//! escaping case, and finding the external tools (promtool, prometheus, python3 with
//! prometheus-client) on PATH.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use statsfs::cell::{Counter, Flag, Gauge, LinearHistogram, LogHistogram, Peak};
use statsfs::{Descriptor, Kind, Scale, Schema, Source, Stats, Unit, ValueGroup, ValueType};

/// A vCPU's statistics: every kind and unit a derived struct can have.
#[derive(Stats, Default)]
#[stats(name = "vcpu")]
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
    pub root: Source,
    pub vcpus: Vec<Arc<VcpuStat>>,
}

pub fn tree() -> Tree {
    let root = Source::new("kvm").unwrap();
    root.add_aggregates::<VcpuStat>().unwrap();
    let vm = Source::new("1234-5").unwrap();
    vm.set_label("vm", "1234-5").unwrap();
    vm.add_aggregates::<VcpuStat>().unwrap();
    root.add_subordinate(&vm).unwrap();
    let mut vcpus = Vec::new();
    for (i, name) in ["vcpu0", "vcpu\"1\\\n"].into_iter().enumerate() {
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
            dir.set_label("note", "a \"quoted\" back\\slash\nnewline")
                .unwrap();
            dir.set_hidden(true);
        }
        dir.add_values(s.clone()).unwrap();
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

const SKIP_VAR: &str = "STATSFS_SKIP_PROMETHEUS";

/// `name` on PATH. Missing: panics with what to install, unless `STATSFS_SKIP_PROMETHEUS=1`,
/// when it says loudly that the test is skipped and returns `None`.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => missing(&format!(
            "`{name}` is not on PATH (apt-get install -y prometheus)"
        )),
    }
}

/// `python3` with `prometheus_client` importable, like [`tool`].
pub fn python() -> Option<PathBuf> {
    let py = tool("python3")?;
    let ok = Command::new(&py)
        .args(["-c", "import prometheus_client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Some(py)
    } else {
        missing("python3 cannot import prometheus_client (pip install prometheus-client)")
    }
}

fn missing<T>(what: &str) -> Option<T> {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        // Written to the stderr handle itself, past libtest's capture, so a skip shows.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!! SKIPPED: {what}; {SKIP_VAR}=1 is set, so this test checks nothing !!!!!!!!\n"
        );
        None
    } else {
        panic!("{what}. Install it, or set {SKIP_VAR}=1 to skip this test on purpose.");
    }
}
