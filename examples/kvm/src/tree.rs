//! The statsfs tree of the hypervisor, in the layout KVM users know from
//! `/sys/kernel/debug/kvm` (`docs/FILES.md#the-kvm-debugfs-layout`), plus the kernel's own statistics beside ours:
//!
//! ```text
//! kvm/                          VmStat and VcpuStat aggregates: totals over every VM
//! ├── exits, io_out, ...
//! ├── kernel/                   the kernel's VM and vCPU stats, summed over every VM
//! │   └── (hidden) <pid>-<fd>/  shadows: the same stats files, read by hidden sources
//! │       └── (hidden) vcpuN/
//! ├── <pid>-<fd>/               one VM: its VmStat, and VcpuStat sums over its vCPUs
//! │   ├── kernel/               the kernel's stats of the VM, and sums over its vCPUs
//! │   │   └── (hidden) vcpuN/   shadows of the vCPUs' kernel stats
//! │   ├── vcpu0/                one vCPU: its VcpuStat
//! │   │   └── kernel/           the kernel's stats of the vCPU
//! │   └── vcpu1/
//! └── <pid>-<fd>/
//! ```
//!
//! An aggregate folds over the subtree of the source that holds it, and a source has one
//! parent. The vCPUs' kernel stats live in `vcpuN/kernel/`, which is not below the VM's
//! `kernel/` nor below the top-level `kernel/`; so each of those two holds hidden
//! *shadow* sources whose groups read the same stats files (sharing one block reader
//! each: see [`KernelStats::group`]). Hidden sources have no directory but their
//! ancestors still aggregate them. No source holds aggregates of a kernel schema over a
//! subtree that contains the same file twice, so nothing is counted twice.

use std::sync::Arc;

use statsfs::{Error, Schema, Source, ValueGroup};

use crate::kernel_stats::KernelStats;
use crate::stats::{VcpuStat, VmStat};

/// The name of the root source (the top-level directory of the mount).
pub const ROOT: &str = "kvm";
/// The name of the directories holding the kernel's statistics.
pub const KERNEL: &str = "kernel";

/// The whole tree: the root and its top-level `kernel/` directory.
pub struct KvmTree {
    root: Source,
    kernel: Source,
}

/// One VM's place in the tree.
pub struct VmNode {
    source: Source,
    /// `<pid>-<fd>/kernel/`, when the kernel's stats are mirrored.
    kernel: Option<Source>,
    /// The hidden shadow of the VM in the top-level `kernel/`.
    shadow: Option<Source>,
}

/// Adds aggregates of `schema` to `source` unless it has them already.
fn ensure_aggregates(source: &Source, schema: &Arc<Schema>) -> Result<(), Error> {
    match source.add(ValueGroup::aggregates_of(Arc::clone(schema))) {
        Ok(()) | Err(Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A hidden source `name` under `parent` reading `kernel`.
fn shadow(parent: &Source, name: &str, kernel: &KernelStats) -> Result<Source, Error> {
    let s = Source::new(name)?;
    s.set_hidden(true);
    s.add(kernel.group())?;
    parent.add_subordinate(&s)?;
    Ok(s)
}

impl KvmTree {
    /// The root `kvm` with the totals of [`VmStat`] and [`VcpuStat`], and an empty
    /// top-level `kernel/`.
    pub fn new() -> Result<Self, Error> {
        let root = Source::new(ROOT)?;
        root.add_aggregates::<VmStat>()?;
        root.add_aggregates::<VcpuStat>()?;
        let kernel = Source::new(KERNEL)?;
        root.add_subordinate(&kernel)?;
        Ok(KvmTree { root, kernel })
    }

    /// The root source: what gets mounted.
    pub fn root(&self) -> &Source {
        &self.root
    }

    /// The top-level `kernel/` directory: the kernel's stats summed over every VM.
    pub fn kernel(&self) -> &Source {
        &self.kernel
    }

    /// Adds VM `name` (`<pid>-<fd>`) with its statistics and, if given, the kernel's.
    pub fn add_vm(
        &self,
        name: &str,
        stats: Arc<VmStat>,
        kernel: Option<&KernelStats>,
    ) -> Result<VmNode, Error> {
        let source = Source::new(name)?;
        source.set_label("vm", name)?;
        source.add_values(stats)?;
        source.add_aggregates::<VcpuStat>()?;
        let (mut vm_kernel, mut vm_shadow) = (None, None);
        if let Some(k) = kernel {
            let dir = Source::new(KERNEL)?;
            dir.add(k.group())?;
            source.add_subordinate(&dir)?;
            ensure_aggregates(&self.kernel, k.schema())?;
            vm_shadow = Some(shadow(&self.kernel, name, k)?);
            vm_kernel = Some(dir);
        }
        self.root.add_subordinate(&source)?;
        Ok(VmNode {
            source,
            kernel: vm_kernel,
            shadow: vm_shadow,
        })
    }

    /// Adds vCPU `id` of `vm` with its statistics and, if given, the kernel's.
    pub fn add_vcpu(
        &self,
        vm: &VmNode,
        id: u32,
        stats: Arc<VcpuStat>,
        kernel: Option<&KernelStats>,
    ) -> Result<Source, Error> {
        let name = format!("vcpu{id}");
        let source = Source::new(&name)?;
        source.set_label("vcpu", id.to_string())?;
        source.add_values(stats)?;
        if let Some(k) = kernel {
            let dir = Source::new(KERNEL)?;
            dir.add(k.group())?;
            source.add_subordinate(&dir)?;
            if let Some(vm_kernel) = &vm.kernel {
                ensure_aggregates(vm_kernel, k.schema())?;
                shadow(vm_kernel, &name, k)?;
            }
            if let Some(vm_shadow) = &vm.shadow {
                ensure_aggregates(&self.kernel, k.schema())?;
                shadow(vm_shadow, &name, k)?;
            }
        }
        vm.source.add_subordinate(&source)?;
        Ok(source)
    }
}

impl VmNode {
    /// The VM's directory, `<pid>-<fd>`.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The VM's `kernel/` directory, when the kernel's stats are mirrored.
    pub fn kernel(&self) -> Option<&Source> {
        self.kernel.as_ref()
    }
}
