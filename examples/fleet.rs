//! A mounted test tree the size of a busy host: `--vms` VMs of `--vcpus` vCPUs each, in
//! the KVM layout (`kvm/` with the aggregates, `kvm/vm<i>/` with its VM stats and the
//! aggregates of its vCPUs, `kvm/vm<i>/vcpu<j>/`), every vCPU counting. It is what the
//! `statsfs` tool is measured against (`docs/CLI.md#cost-of-a-refresh`):
//!
//! ```text
//! sudo cargo run --release --example fleet -- --vms 100 --vcpus 4 --seconds 60 &
//! statsfs top /run/statsfs-fleet/kvm
//! ```
//!
//! Its vCPUs count for `--seconds`; it unmounts on SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs::cell::{Counter, Gauge, LogHistogram};
use statsfs::{Source, Stats, ValueGroup};

/// A VM's own stats.
#[derive(Stats, Default)]
#[stats(name = "fleet_vm")]
pub struct VmStat {
    /// Remote TLB flushes
    pub remote_tlb_flush: Counter,
    /// Pages mapped by the guest
    pub pages: Gauge<u64>,
    /// Shadow pages zapped
    pub mmu_shadow_zapped: Counter,
}

/// A vCPU's stats, a dozen as a hypervisor's vCPU has.
#[derive(Stats, Default)]
#[stats(name = "fleet_vcpu")]
pub struct VcpuStat {
    /// Guest exits, every reason
    pub exits: Counter,
    /// Exits for port I/O
    pub io_exits: Counter,
    /// Exits for MMIO
    pub mmio_exits: Counter,
    /// Exits for hlt
    pub halt_exits: Counter,
    /// Exits for an external interrupt
    pub irq_exits: Counter,
    /// Successful halt polls
    pub halt_successful_poll: Counter,
    /// Wakeups from halt
    pub halt_wakeup: Counter,
    /// Instructions emulated
    pub insn_emulation: Counter,
    /// Signals that ended KVM_RUN
    pub signal_exits: Counter,
    /// Requests for an interrupt window
    pub irq_window_exits: Counter,
    /// NMIs injected
    pub nmi_injections: Counter,
    /// Time to handle an exit
    #[stat(unit = seconds, exponent = -9)]
    pub exit_ns: LogHistogram<16>,
}

/// The tree and its vCPUs' stats.
pub fn build(vms: usize, vcpus: usize) -> (Source, Vec<Arc<VcpuStat>>) {
    let root = Source::new("kvm").expect("a valid name");
    root.add(ValueGroup::aggregates::<VmStat>())
        .expect("aggregates");
    root.add(ValueGroup::aggregates::<VcpuStat>())
        .expect("aggregates");
    let mut all = Vec::new();
    for v in 0..vms {
        let vm = Source::new(format!("vm{v}")).expect("a valid name");
        let stats = Arc::new(VmStat::default());
        stats.pages.set(4096);
        vm.add(stats).expect("values");
        vm.add(ValueGroup::aggregates::<VcpuStat>())
            .expect("aggregates");
        for c in 0..vcpus {
            let s = Arc::new(VcpuStat::default());
            let dir = Source::new(format!("vcpu{c}")).expect("a valid name");
            dir.add(s.clone()).expect("values");
            vm.add_subordinate(&dir).expect("a new child");
            all.push(s);
        }
        root.add_subordinate(&vm).expect("a new child");
    }
    (root, all)
}

#[allow(dead_code)]
fn main() {
    let mut args = std::env::args().skip(1);
    let (mut vms, mut vcpus, mut seconds) = (100usize, 4usize, 60u64);
    let mut path = String::from("/run/statsfs-fleet");
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--vms" => vms = value().parse().expect("--vms N"),
            "--vcpus" => vcpus = value().parse().expect("--vcpus N"),
            "--seconds" => seconds = value().parse().expect("--seconds N"),
            "--mount" => path = value(),
            _ => panic!("usage: fleet [--vms N] [--vcpus N] [--seconds N] [--mount PATH]"),
        }
    }
    let (root, stats) = build(vms, vcpus);
    let mount = statsfs::vfs::mount(&path, &[root], Default::default()).expect("mount");
    println!(
        "{vms} VMs x {vcpus} vCPUs mounted at {}",
        mount.path().display()
    );
    // The vCPUs count for `--seconds`, every 10 ms; the mount stays until SIGINT/SIGTERM.
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut i = 0u64;
        while Instant::now() < end {
            for s in &stats {
                s.exits.add_local(3);
                s.mmio_exits.add_local(2);
                s.halt_exits.add_local(u64::from(i % 16 == 0));
                s.exit_ns.record(500 + i % 1000);
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    mount.wait_for_signal().expect("unmount");
}
