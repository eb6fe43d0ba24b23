//! Mount options, as the kernel's statsfs took them.

use std::time::Duration;

/// How to mount a tree.
///
/// ```
/// let o = statsfs_vfs::MountOptions { mode: 0o755, ..Default::default() };
/// assert_eq!(o.uid, 0);
/// ```
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Owner of every file and directory (default 0).
    pub uid: u32,
    /// Group of every file and directory (default 0).
    pub gid: u32,
    /// Mode bits of the mount's root directory (default 0o700, as the kernel's statsfs).
    /// Other directories are 0755, files 0644 (clearable) or 0444.
    pub mode: u32,
    /// Let users other than the mounting one in (`allow_other`; default off). The kernel
    /// still enforces the modes (`default_permissions`).
    pub allow_other: bool,
    /// FUSE worker threads (default 4): a slow reader occupies one.
    pub threads: usize,
    /// How long the kernel may cache names and attributes (default 1 s). Tree changes
    /// are pushed to the kernel at once, so this only bounds staleness if that fails.
    pub ttl: Duration,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            uid: 0,
            gid: 0,
            mode: 0o700,
            allow_other: false,
            threads: 4,
            ttl: Duration::from_secs(1),
        }
    }
}
