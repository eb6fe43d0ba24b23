//! The kernel's own statistics of a KVM VM or vCPU, read through `KVM_GET_STATS_FD` and
//! mirrored into the statsfs tree.
//!
//! `KVM_GET_STATS_FD` (Linux 5.14+, capability `KVM_CAP_BINARY_STATS_FD`) returns a
//! read-only file descriptor whose contents are a self-describing binary blob: a header,
//! an id string, one descriptor per statistic and a data block of `u64` values (`docs/BINARY.md#the-blob`).
//! [`statsfs::binary::Mirror`] decodes the descriptors once into a runtime schema (one
//! shared `Arc<Schema>` per layout, so aggregates over every vCPU match) and re-reads
//! the data block with one `pread` whenever the tree is read.
//!
//! kvm-ioctls has no wrapper for this ioctl, so it is issued here with `libc::ioctl`.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use kvm_bindings::KVM_CAP_BINARY_STATS_FD;
use kvm_ioctls::VmFd;
use statsfs::binary::{FileBlock, Mirror, MirrorError};
use statsfs::{Schema, ValueGroup};

/// `KVM_GET_STATS_FD = _IO(KVMIO, 0xce)`: no direction, no argument, so the request
/// number is just `(KVMIO << 8) | 0xce` with `KVMIO = 0xae`.
pub const KVM_GET_STATS_FD: libc::Ioctl = (0xae << 8) | 0xce;

/// The runtime schema name of the kernel's VM statistics.
pub const VM_SCHEMA: &str = "kvm_kernel_vm";
/// The runtime schema name of the kernel's vCPU statistics.
pub const VCPU_SCHEMA: &str = "kvm_kernel_vcpu";

/// Whether the kernel supports `KVM_GET_STATS_FD` on this VM and its vCPUs.
pub fn supported(vm: &VmFd) -> bool {
    vm.check_extension_raw(KVM_CAP_BINARY_STATS_FD.into()) > 0
}

/// Opens the binary statistics of the VM or vCPU behind `kvm_fd` (a `VmFd` or a
/// `VcpuFd`).
///
/// The returned file keeps the kernel object's statistics alive on its own: it stays
/// readable after the VM or vCPU file descriptor is closed.
pub fn stats_fd(kvm_fd: &impl AsRawFd) -> io::Result<File> {
    // SAFETY: `KVM_GET_STATS_FD` takes no argument and touches no user memory; `kvm_fd`
    // is borrowed, so its descriptor stays open for the duration of the call.
    let ret = unsafe { libc::ioctl(kvm_fd.as_raw_fd(), KVM_GET_STATS_FD) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the ioctl returns a new descriptor that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(ret) };
    Ok(File::from(owned))
}

/// Why the kernel's statistics of an object could not be mirrored.
#[derive(Debug)]
pub enum KernelStatsError {
    /// `KVM_GET_STATS_FD` failed.
    Open {
        /// The object (`VM 1234-5`, `VM 1234-5 vCPU 0`).
        what: String,
        /// The ioctl's error.
        source: io::Error,
    },
    /// The stats file could not be read or decoded.
    Mirror {
        /// The object.
        what: String,
        /// Why.
        source: MirrorError,
    },
}

impl fmt::Display for KernelStatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelStatsError::Open { what, source } => {
                write!(f, "KVM_GET_STATS_FD on {what} failed: {source}")
            }
            KernelStatsError::Mirror { what, source } => {
                write!(f, "the kernel statistics of {what}: {source}")
            }
        }
    }
}

impl std::error::Error for KernelStatsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KernelStatsError::Open { source, .. } => Some(source),
            KernelStatsError::Mirror { source, .. } => Some(source),
        }
    }
}

/// The kernel statistics of one VM or vCPU: the layout's shared schema and one reader of
/// the data block, which any number of value groups can share.
#[derive(Clone)]
pub struct KernelStats {
    schema: Arc<Schema>,
    block: Arc<FileBlock<File>>,
}

impl KernelStats {
    /// Opens the statistics of `kvm_fd` and mirrors them under the runtime schema
    /// `schema_name` ([`VM_SCHEMA`] or [`VCPU_SCHEMA`]); `what` names the object in
    /// errors.
    pub fn open(
        mirror: &Mirror,
        schema_name: &str,
        kvm_fd: &impl AsRawFd,
        what: &str,
    ) -> Result<Self, KernelStatsError> {
        let file = stats_fd(kvm_fd).map_err(|source| KernelStatsError::Open {
            what: what.to_owned(),
            source,
        })?;
        let (schema, block) =
            mirror
                .open(schema_name, file)
                .map_err(|source| KernelStatsError::Mirror {
                    what: what.to_owned(),
                    source,
                })?;
        Ok(KernelStats { schema, block })
    }

    /// The runtime schema (the same `Arc` for every object of the same layout).
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// A new value group of these statistics. Every group made here reads through the
    /// same file and block reader: one `pread` of the data block per read of the group.
    pub fn group(&self) -> ValueGroup {
        ValueGroup::block(Arc::clone(&self.schema), Arc::clone(&self.block))
    }
}
