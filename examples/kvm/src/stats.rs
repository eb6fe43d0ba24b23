//! The hypervisor's own statistics: one [`VcpuStat`] per vCPU, one [`VmStat`] per VM,
//! declared once with `#[derive(Stats)]`.
//!
//! Like KVM, the vCPU statistics are split into the ones every architecture has
//! ([`VcpuGenericStat`]) and this VMM's own ([`VcpuStat`], which flattens the generic
//! ones in): a file listing shows one flat directory.
//!
//! Each vCPU thread is the only writer of its own [`VcpuStat`] and updates it through
//! the single-writer path (`inc_local`, `record_local`, `set`): a relaxed load and a
//! relaxed store, no locked instruction. The [`VmStat`] of a VM is shared by its vCPU
//! threads, which use the shared path (`record`).

use std::ops::Deref;
use std::sync::Arc;

use statsfs::cell::{Counter, Flag, Gauge, LogHistogram, Peak};
use statsfs::region::{InRegion, Region, RegionError};
use statsfs::{Family, Label, Stats, ValueGroup};

use crate::vmm::{ExitObserver, ExitReason};

/// Statistics every vCPU has, whatever the architecture (KVM's `kvm_vcpu_stat_generic`).
#[derive(Stats, Default, Debug)]
#[stats(name = "kvm_vcpu_generic")]
pub struct VcpuGenericStat {
    /// Exits from the guest handled by the VMM, every reason
    pub exits: Counter,
    /// Exits for a guest hlt
    pub halt_exits: Counter,
    /// Time the VMM took to handle one exit
    #[stat(unit = seconds, exponent = -9)]
    pub exit_handling_ns: LogHistogram<32>,
    /// Longest time the VMM took to handle one exit
    #[stat(unit = seconds, exponent = -9)]
    pub max_exit_handling_ns: Peak<u64>,
    /// Whether the vCPU thread is inside KVM_RUN or handling its exit
    #[stat(unit = boolean)]
    pub in_guest: Flag,
    /// 1 while the vCPU has guest work left to run, else 0 (a VM sums its runnable vCPUs)
    pub runnable: Gauge<u8>,
    /// The vCPU's state, as KVM's mp_state: RUNNABLE while it runs guest code, HALTED
    /// after a guest hlt until it runs again (a state: shown by name, never summed)
    #[stat(names = ["RUNNABLE", "HALTED"])]
    pub mp_state: Gauge<u8>,
}

/// `VcpuGenericStat::mp_state` values.
pub const MP_STATE_RUNNABLE: u8 = 0;
/// `VcpuGenericStat::mp_state` values.
pub const MP_STATE_HALTED: u8 = 1;

/// Why the vCPU left the guest, as this VMM counts its exits: the label `reason` of
/// [`VcpuStat::exits_by_reason`]. Every [`ExitReason`] the VMM sees maps to one of these
/// ([`Exit::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Label)]
#[label(name = "reason")]
pub enum Exit {
    /// Port reads (in): one per round, the guest reading its iteration count.
    IoIn,
    /// Port writes (out) to the data port: one per guest iteration.
    IoOut,
    /// Port writes (out) to the control port: one per round, at its end.
    IoOutCtl,
    /// MMIO reads: one per guest iteration.
    MmioRead,
    /// MMIO writes: one per guest iteration.
    MmioWrite,
    /// A guest `hlt`.
    Hlt,
    /// KVM_RUN interrupted by a signal (EINTR or EAGAIN).
    Interrupted,
    /// Any other reason (shutdown, failed entry, internal error, ...).
    Other,
}

impl Exit {
    /// How this VMM counts an exit of `reason`.
    pub fn of(reason: ExitReason) -> Exit {
        match reason {
            ExitReason::IoIn => Exit::IoIn,
            ExitReason::IoOut => Exit::IoOut,
            ExitReason::IoOutCtl => Exit::IoOutCtl,
            ExitReason::MmioRead => Exit::MmioRead,
            ExitReason::MmioWrite => Exit::MmioWrite,
            ExitReason::Hlt => Exit::Hlt,
            ExitReason::Interrupted => Exit::Interrupted,
            ExitReason::Shutdown
            | ExitReason::FailEntry
            | ExitReason::InternalError
            | ExitReason::SystemEvent
            | ExitReason::Other => Exit::Other,
        }
    }
}

/// One vCPU's statistics: the generic ones, then exits by reason.
#[derive(Stats, Default, Debug)]
#[stats(name = "kvm_vcpu")]
pub struct VcpuStat {
    /// The statistics every vCPU has.
    #[stat(flatten)]
    pub generic: VcpuGenericStat,
    /// Exits from the guest handled by the VMM, by reason: one file a reason
    /// (`exits_by_reason_io_out`), one metric with a `reason` label
    pub exits_by_reason: Family<Exit, Counter>,
    /// Rounds of the guest workload finished
    pub rounds: Counter,
}

/// One VM's statistics.
#[derive(Stats, Default, Debug)]
#[stats(name = "kvm_vm")]
pub struct VmStat {
    /// vCPUs created in the VM
    pub online_vcpus: Gauge<u32>,
    /// Guest RAM
    #[stat(unit = bytes)]
    pub guest_ram_bytes: Gauge<u64>,
    /// Longest wall-clock time one vCPU took for one round of the workload
    #[stat(unit = seconds, exponent = -9)]
    pub max_round_ns: Peak<u64>,
}

/// Where a stats struct lives: on the heap, or in the shared region (`--region`), which
/// other processes read with no system call (`docs/REGION.md`).
pub enum Home<T: Stats> {
    /// In an `Arc` of its own.
    Heap(Arc<T>),
    /// In the region's shared mapping.
    Region(Arc<InRegion<T>>),
}

impl<T: Stats> Clone for Home<T> {
    fn clone(&self) -> Self {
        match self {
            Home::Heap(a) => Home::Heap(Arc::clone(a)),
            Home::Region(r) => Home::Region(Arc::clone(r)),
        }
    }
}

impl<T: Stats> Deref for Home<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Home::Heap(a) => a,
            Home::Region(r) => r,
        }
    }
}

impl<T: Stats> Home<T> {
    /// `value`, moved into `region` if there is one, else onto the heap.
    pub fn new(region: Option<&Region>, value: T) -> Result<Self, RegionError> {
        Ok(match region {
            Some(r) => Home::Region(r.alloc(value)?),
            None => Home::Heap(Arc::new(value)),
        })
    }
}

/// `source.add(&home)`: the struct's values, wherever it lives.
impl<T: Stats> From<&Home<T>> for ValueGroup {
    fn from(home: &Home<T>) -> ValueGroup {
        match home {
            Home::Heap(a) => ValueGroup::of(Arc::clone(a)),
            Home::Region(r) => ValueGroup::placed(Arc::clone(r)),
        }
    }
}

/// Feeds one vCPU's exits into its [`VcpuStat`] (and its VM's [`VmStat`]); lives on the
/// vCPU's thread, the only writer of `vcpu`. It holds plain references, so the hot path
/// is the same code wherever the structs live (heap or region): a field of a `&VcpuStat`.
pub struct StatsObserver<'a> {
    vcpu: &'a VcpuStat,
    vm: &'a VmStat,
}

impl<'a> StatsObserver<'a> {
    /// An observer writing to `vcpu` (this thread's own) and `vm` (shared).
    pub fn new(vcpu: &'a VcpuStat, vm: &'a VmStat) -> Self {
        StatsObserver { vcpu, vm }
    }
}

/// The counter of `stats` that counts exits of `reason`.
pub fn exit_counter(stats: &VcpuStat, reason: ExitReason) -> &Counter {
    &stats.exits_by_reason[Exit::of(reason)]
}

/// How many exits of `reason` `stats` counted (for the catch-all [`Exit::Other`], all of
/// the reasons it counts).
pub fn exits_of(stats: &VcpuStat, reason: ExitReason) -> u64 {
    exit_counter(stats, reason).get()
}

impl ExitObserver for StatsObserver<'_> {
    fn on_enter(&mut self) {
        let g = &self.vcpu.generic;
        g.in_guest.set(true);
        g.mp_state.set(MP_STATE_RUNNABLE);
    }

    fn on_exit(&mut self, reason: ExitReason, handle_ns: u64) {
        let s = self.vcpu;
        let g = &s.generic;
        g.exits.inc_local();
        g.exit_handling_ns.record_local(handle_ns);
        g.max_exit_handling_ns.record_local(handle_ns);
        exit_counter(s, reason).inc_local();
        g.in_guest.set(false);
        if reason == ExitReason::Hlt {
            // KVM's own generic count of halts, beside the family's.
            g.halt_exits.inc_local();
            g.mp_state.set(MP_STATE_HALTED);
        }
    }

    fn on_round(&mut self, _round: u64, round_ns: u64) {
        self.vcpu.rounds.inc_local();
        self.vm.max_round_ns.record(round_ns);
    }
}
