//! # statsfs-vfs
//!
//! The statsfs source tree served to other processes as a real file system (FUSE), the
//! way the kernel's statsfs and KVM's debugfs showed it:
//!
//! ```text
//! <mount>/                       mode 0700 (MountOptions::mode), one directory per root
//! └── kvm/                       a root source
//!     ├── exits                  a value: "42\n"; 0644 when clearable, else 0444
//!     ├── .stats                 the source's values in the kernel's binary layout
//!     ├── .tree.stats            the source and its whole subtree, in one blob
//!     └── 1234-5/                a subordinate source (0755)
//!         └── vcpu0/
//! ```
//!
//! * Every file's contents are computed at read time; files are opened with direct
//!   I/O, so every `read` and `pread` sees the current value.
//! * Writing `0` (or `0\n`) clears a value (and, through an aggregate, every value it
//!   folds); anything else fails with `EINVAL` and changes nothing.
//! * Sources added or removed while mounted appear and disappear at once.
//! * Bulk files: one read returns the whole blob (`docs/BINARY.md#refresh-protocol`); a `pread` at the data offset
//!   re-reads the values; writing a selection (`exits halt_*`, see
//!   [`Selection`](statsfs_binary::Selection)) to an open bulk file makes later
//!   reads of that open file return only those stats, in a well-formed blob.
//!
//! As root, statsfs mounts with `mount(2)` itself (no libfuse); any other user mounts
//! through libfuse's setuid helper `fusermount3` (package fuse3), which needs
//! `/dev/fuse` usable by the user and a mount point the user owns
//! (`docs/FILES.md#mounting-without-root`).
//!
//! The modules, one concept each: `options` (what to mount with), `error` (why mounting failed), `mount` (mounting,
//! unmounting, stale mounts), `mountpoint` (where a mount goes: no symlink followed, no
//! mount over a live one), `fusermount` (mounting without root, through `fusermount3`), `fs` (the FUSE requests), `inode` (stable inode
//! numbers), `files` (what value and bulk files say and do), `listing` (directories read
//! in pieces at stable offsets), `invalidate` (tree changes pushed to the kernel), `sys` (the only unsafe code: system calls std does not wrap).
//!
//! `/metrics` over HTTP is the `statsfs-http` crate, the shared region `statsfs-region`:
//! each product compiles alone.
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod error;
mod files;
mod fs;
mod fusermount;
/// The mount's input handling without FUSE, for fuzzing (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod inode;
mod invalidate;
mod listing;
mod mount;
mod mountinfo;
mod mountpoint;
mod options;
mod shapes;
mod sys;

pub use error::MountError;
pub use mount::{clean_stale_mount, mount, Mount, FSTYPE};
pub use mountinfo::is_mounted;
pub use options::MountOptions;
