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
//!   [`Selection`](statsfs_core::binary::Selection)) to an open bulk file makes later
//!   reads of that open file return only those stats, in a well-formed blob.
//!
//! Mounting needs root (statsfs calls `mount(2)` itself: no libfuse or fusermount).
//!
//! The modules, one concept each: `options` (what to mount with), `mount` (mounting,
//! unmounting, stale mounts), `fs` (the FUSE requests), `inode` (stable inode numbers),
//! `files` (what value and bulk files say and do), `invalidate` (tree changes pushed to
//! the kernel), `sys` (the only unsafe code: system calls std does not wrap).
#![deny(missing_docs)]

mod files;
mod fs;
mod inode;
mod invalidate;
mod mount;
mod mountinfo;
mod options;
mod sys;

/// `/metrics` over HTTP (feature `http`).
#[cfg(feature = "http")]
pub mod http;

pub use mount::{mount, Mount, MountError, FSTYPE};
pub use mountinfo::{clean_stale_mount, is_mounted};
pub use options::MountOptions;
