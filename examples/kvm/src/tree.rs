//! The statsfs trees of the hypervisor, both in the layout KVM users know from
//! `/sys/kernel/debug/kvm` (`docs/FILES.md#the-kvm-debugfs-layout`):
//!
//! ```text
//! kvm/                  the kernel's statistics: VM and vCPU stats summed over every VM
//! ├── exits, io_exits, halt_exits, remote_tlb_flush, ...
//! ├── <pid>-<fd>/       one VM: its VM stats, and its vCPUs' stats summed
//! │   ├── vcpu0/        one vCPU: its vCPU stats
//! │   └── vcpu1/
//! └── <pid>-<fd>/
//! vmm/                  this VMM's own #[derive(Stats)] counters, in the same layout
//! ├── exits, exits_by_reason_io_out, ...
//! └── <pid>-<fd>/
//!     └── vcpu0/
//! ```
//!
//! Each tree aggregates its own subtree, so every stats file is counted exactly once:
//! `kvm/` holds aggregates of the kernel's VM and vCPU schemas, each VM aggregates of the
//! vCPU schema. The kernel's `kvm_stat -d`, pointed at either tree, shows the right
//! numbers (`kvm-stat.sh`).

use std::sync::Arc;

use statsfs::{Error, Source, ValueGroup};

use crate::kernel_stats::KernelStats;
use crate::stats::{Home, VcpuStat, VmStat};

/// The name of the kernel's tree (a top-level directory of the mount).
pub const KERNEL_ROOT: &str = "kvm";
/// The name of the VMM's tree.
pub const VMM_ROOT: &str = "vmm";

/// Both trees.
pub struct KvmTree {
    vmm: Source,
    kernel: Source,
}

/// One VM's place in the trees.
pub struct VmNode {
    vmm: Source,
    /// `kvm/<pid>-<fd>/`, when the kernel's stats are mirrored.
    kernel: Option<Source>,
}

/// A directory `name` with the label `key=value`.
fn labelled(name: &str, key: &str, value: &str) -> Result<Source, Error> {
    let s = Source::new(name)?;
    s.set_label(key, value)?;
    Ok(s)
}

impl KvmTree {
    /// `vmm/` with the totals of [`VmStat`] and [`VcpuStat`], and an empty `kvm/`.
    pub fn new() -> Result<Self, Error> {
        let vmm = Source::new(VMM_ROOT)?;
        vmm.add(ValueGroup::aggregates::<VmStat>())?;
        vmm.add(ValueGroup::aggregates::<VcpuStat>())?;
        let kernel = Source::new(KERNEL_ROOT)?;
        Ok(KvmTree { vmm, kernel })
    }

    /// The VMM's tree.
    pub fn vmm(&self) -> &Source {
        &self.vmm
    }

    /// The kernel's tree.
    pub fn kernel(&self) -> &Source {
        &self.kernel
    }

    /// Both roots, as they are mounted and served: `kvm/`, then `vmm/`.
    pub fn roots(&self) -> [Source; 2] {
        [self.kernel.clone(), self.vmm.clone()]
    }

    /// Adds VM `name` (`<pid>-<fd>`) with its statistics and, if given, the kernel's.
    pub fn add_vm(
        &self,
        name: &str,
        stats: &Home<VmStat>,
        kernel: Option<&KernelStats>,
    ) -> Result<VmNode, Error> {
        let vmm = labelled(name, "vm", name)?;
        vmm.add(stats)?;
        vmm.add(ValueGroup::aggregates::<VcpuStat>())?;
        let kernel = match kernel {
            Some(k) => {
                let dir = labelled(name, "vm", name)?;
                dir.add(k.group())?;
                self.kernel
                    .add(ValueGroup::aggregates_of(Arc::clone(k.schema())))?;
                self.kernel.add_subordinate(&dir)?;
                Some(dir)
            }
            None => None,
        };
        self.vmm.add_subordinate(&vmm)?;
        Ok(VmNode { vmm, kernel })
    }

    /// Adds vCPU `id` of `vm` with its statistics and, if given, the kernel's.
    pub fn add_vcpu(
        &self,
        vm: &VmNode,
        id: u32,
        stats: &Home<VcpuStat>,
        kernel: Option<&KernelStats>,
    ) -> Result<(), Error> {
        let name = format!("vcpu{id}");
        let vcpu = labelled(&name, "vcpu", &id.to_string())?;
        vcpu.add(stats)?;
        if let (Some(k), Some(vm_kernel)) = (kernel, &vm.kernel) {
            let dir = labelled(&name, "vcpu", &id.to_string())?;
            dir.add(k.group())?;
            vm_kernel.add(ValueGroup::aggregates_of(Arc::clone(k.schema())))?;
            self.kernel
                .add(ValueGroup::aggregates_of(Arc::clone(k.schema())))?;
            vm_kernel.add_subordinate(&dir)?;
        }
        vm.vmm.add_subordinate(&vcpu)?;
        Ok(())
    }
}

impl VmNode {
    /// The VM's directory in the VMM's tree, `vmm/<pid>-<fd>`.
    pub fn source(&self) -> &Source {
        &self.vmm
    }

    /// The VM's directory in the kernel's tree, `kvm/<pid>-<fd>`, when its stats are
    /// mirrored.
    pub fn kernel(&self) -> Option<&Source> {
        self.kernel.as_ref()
    }
}
