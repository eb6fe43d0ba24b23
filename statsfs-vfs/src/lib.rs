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
//! As root, statsfs mounts with `mount(2)` itself (no libfuse); any other user mounts
//! through libfuse's setuid helper `fusermount3` (package fuse3), which needs
//! `/dev/fuse` usable by the user and a mount point the user owns
//! (`docs/FILES.md#mounting-without-root`).
//!
//! # Features
//!
//! * `fuse` (default): the FUSE mount (`mount`, `Mount`, `MountOptions`), on `fuser`;
//! * `http`: `/metrics` over HTTP for Prometheus (the `http` module), on hyper 1.x with a
//!   single-threaded tokio runtime of its own.
//!
//! The two are independent: with only `http`, nothing of FUSE is compiled.
//!
//! The modules, one concept each: `options` (what to mount with), `mount` (mounting,
//! unmounting, stale mounts), `mountpoint` (where a mount goes: no symlink followed, no
//! mount over a live one), `fusermount` (mounting without root, through `fusermount3`), `fs` (the FUSE requests), `inode` (stable inode
//! numbers), `files` (what value and bulk files say and do), `listing` (directories read
//! in pieces at stable offsets), `invalidate` (tree changes pushed to the kernel), `sys` (the only unsafe code: system calls std does not wrap),
//! all behind `fuse`; `http` behind `http`.
#![deny(missing_docs)]

#[cfg(feature = "fuse")]
mod files;
#[cfg(feature = "fuse")]
mod fs;
#[cfg(feature = "fuse")]
mod fusermount;
/// The mount's input handling without FUSE, for fuzzing (feature `fuzzing`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "fuse")]
mod inode;
#[cfg(feature = "fuse")]
mod invalidate;
#[cfg(feature = "fuse")]
mod listing;
#[cfg(feature = "fuse")]
mod mount;
#[cfg(feature = "fuse")]
mod mountinfo;
#[cfg(feature = "fuse")]
mod mountpoint;
#[cfg(feature = "fuse")]
mod options;
#[cfg(feature = "fuse")]
mod sys;

/// The shared region: stats structs other processes read with no system call (feature
/// `region`).
#[cfg(feature = "region")]
pub mod region;

/// `/metrics` over HTTP (feature `http`).
#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "fuse")]
pub use mount::{mount, Mount, MountError, FSTYPE};
#[cfg(feature = "fuse")]
pub use mountinfo::{clean_stale_mount, is_mounted};
#[cfg(feature = "fuse")]
pub use options::MountOptions;
