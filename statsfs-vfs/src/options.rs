//! Mount options, as the kernel's statsfs took them.

use std::time::Duration;

/// How to mount a tree.
///
/// By default every file and directory belongs to the mounting process's own (real)
/// user and group, and only that user may enter the mount (mode 0700).
///
/// ```
/// let o = statsfs_vfs::MountOptions::default().with_mode(0o755);
/// // This process's real uid: the first of the four ids on the `Uid:` line.
/// let status = std::fs::read_to_string("/proc/self/status")?;
/// let uid = status
///     .lines()
///     .find_map(|l| l.strip_prefix("Uid:"))
///     .and_then(|ids| ids.split_whitespace().next())
///     .unwrap();
/// assert_eq!(o.uid.to_string(), uid);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountOptions {
    /// Owner of every file and directory (default: the real user id of the process
    /// that builds the options, `getuid()`).
    pub uid: u32,
    /// Group of every file and directory (default: the real group id of the process,
    /// `getgid()`).
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
    /// Where the tree's shared region is (`docs/REGION.md`), if it has one: the mount
    /// shows the path in `<mount>/.region` (read-only, unlisted), so that readers find
    /// the region from the mount (default: none, and no `.region`).
    pub region: Option<std::path::PathBuf>,
}

impl Default for MountOptions {
    /// The mounting process's own user and group, mode 0700, no `allow_other`, 4
    /// threads, a TTL of 1 s.
    fn default() -> Self {
        MountOptions {
            uid: crate::sys::getuid(),
            gid: crate::sys::getgid(),
            mode: 0o700,
            allow_other: false,
            threads: 4,
            ttl: Duration::from_secs(1),
            region: None,
        }
    }
}

/// Options are set one by one, from the defaults: the struct is `#[non_exhaustive]`, so
/// options added later break no one.
impl MountOptions {
    /// These options with [`uid`](Self::uid) set to `uid`.
    #[must_use]
    pub fn with_uid(mut self, uid: u32) -> Self {
        self.uid = uid;
        self
    }

    /// These options with [`gid`](Self::gid) set to `gid`.
    #[must_use]
    pub fn with_gid(mut self, gid: u32) -> Self {
        self.gid = gid;
        self
    }

    /// These options with [`mode`](Self::mode) set to `mode`.
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// These options with [`allow_other`](Self::allow_other) set to `allow_other`.
    #[must_use]
    pub fn with_allow_other(mut self, allow_other: bool) -> Self {
        self.allow_other = allow_other;
        self
    }

    /// These options with [`threads`](Self::threads) set to `threads`.
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// These options with [`ttl`](Self::ttl) set to `ttl`.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// These options with [`region`](Self::region) set: the mount names this shared
    /// region in `<mount>/.region`.
    #[must_use]
    pub fn with_region(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.region = Some(path.into());
        self
    }
}
