//! Mounting and unmounting.
//!
//! As root (more exactly: with `CAP_SYS_ADMIN`), statsfs mounts with `mount(2)` itself and
//! hands the `/dev/fuse` descriptor to fuser; no libfuse is involved. Any other user
//! mounts through libfuse's setuid helper `fusermount3` (package fuse3), which mounts for
//! it and passes the descriptor back over a socket (`fusermount.rs`); unmounting
//! then goes through `fusermount3 -u` too. The returned [`Mount`] unmounts when dropped,
//! but only while the mount at the path is still its own: its FUSE connection is alive
//! and the topmost mount at the path has its device number (mount ids and device numbers
//! are reused at once, so a handle whose mount was already unmounted by someone else must
//! not unmount whatever is mounted there now). A busy mount point (an open file, a shell
//! inside) is detached lazily: the path leaves the mount table at once and the open files
//! keep working until closed.
//!
//! A missing mount point is created, with its missing parents; after the unmount exactly
//! the directories created here are removed again (each only if it is still the one that
//! was created, and empty), never one that was there before.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, Session, SessionACL};
use statsfs_core::Source;

use crate::error::MountError;
use crate::fs::{Shared, StatsFs};
use crate::invalidate::Invalidator;
use crate::{fusermount, mountinfo, mountpoint, sys, MountOptions};

/// The file system type in `/proc/self/mountinfo` and `df -T`.
pub const FSTYPE: &str = "fuse.statsfs";

/// How long unmounting waits for the worker threads to see the end of the connection.
const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// If `path` is a dead FUSE mount (any access fails with `ENOTCONN`, "Transport
/// endpoint is not connected": a daemon died without unmounting), detaches it and
/// returns `true`. A user other than root can detach only its own mounts (through
/// `fusermount3 -u -z`).
pub fn clean_stale_mount(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            log::warn!(
                "{}: stale FUSE mount of a dead process, detaching it",
                path.display()
            );
            // As root umount2(MNT_DETACH); as another user fusermount3 -u -z (of its own
            // mounts only).
            detach(path).map_err(|e| match e {
                MountError::Io(e) => e,
                e => io::Error::other(e),
            })?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A mounted tree; dropping it unmounts.
pub struct Mount {
    session: Option<BackgroundSession>,
    invalidator: Option<Invalidator>,
    path: PathBuf,
    /// `major:minor` of our superblock, as in mountinfo.
    dev: String,
    /// A dup of the `/dev/fuse` descriptor: polls `POLLERR` once our superblock is gone.
    conn: OwnedFd,
    /// The directories `mount` created for the mount point, removed after the unmount.
    created: CreatedDirs,
}

/// Mounts `roots` at the directory `path`: each root is a top-level directory named by
/// the root's name, and so is each process-global source
/// ([`registry::globals`](statsfs_core::registry::globals)) whose name no root has.
/// Served by background threads until the [`Mount`] is dropped.
///
/// A stale mount left at `path` by a process that died without unmounting ("Transport
/// endpoint is not connected") is detached first, with a warning in the log
/// ([`clean_stale_mount`]). When `path` is missing, it is
/// created with its missing parents; the unmount removes exactly those directories again
/// (each only if it is still the directory created here and is empty), never a directory
/// that was there before. Owner and modes come from [`MountOptions`], whose default is
/// the mounting process's own user and group.
///
/// As root, this calls `mount(2)` itself. A user other than root mounts through
/// `fusermount3` (package fuse3): that needs `/dev/fuse` readable and writable for the
/// user, a mount point the user owns, and, for [`MountOptions::allow_other`], a line
/// `user_allow_other` in `/etc/fuse.conf` (`docs/FILES.md#mounting-without-root`).
///
/// ```no_run
/// # use statsfs_core::Source;
/// let kvm = Source::new("kvm").unwrap();
/// // /run/statsfs is created if missing, and removed again after the unmount.
/// let mount = statsfs_vfs::mount("/run/statsfs", &[kvm], Default::default()).unwrap();
/// println!("stats at {}", mount.path().display());
/// mount.wait_for_signal(); // until SIGINT or SIGTERM, then unmount
/// ```
pub fn mount(
    path: impl AsRef<Path>,
    roots: &[Source],
    options: MountOptions,
) -> Result<Mount, MountError> {
    let path = &mountpoint::absolute(path.as_ref())?;
    // The process-global statistics (`#[statsfs::global]`) are mounted beside the roots.
    let roots = &statsfs_core::registry::with_globals(roots)[..];
    for (i, r) in roots.iter().enumerate() {
        if roots[..i].iter().any(|o| o.name() == r.name()) {
            return Err(MountError::DuplicateRoot {
                name: r.name().to_owned(),
            });
        }
    }
    let bad_path = |source| MountError::MountPoint {
        path: path.to_path_buf(),
        source,
    };
    // No symlink in what exists of the path, so nothing is created through one.
    mountpoint::check_existing(path)?;
    clean_stale_mount(path).map_err(bad_path)?;
    // Removes what it created when dropped: on any error below, and after the unmount.
    let created = CreatedDirs::create(path).map_err(bad_path)?;
    // Opened without following symlinks, and refused if it is a live mount: the mount
    // goes on the directory so opened, not on the path again.
    let point = mountpoint::open(path)?;
    let path = point.path.clone();
    let dev_fuse: OwnedFd = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(MountError::NoFuse)?
        .into();
    // The mount's owner for the kernel (who may enter it without `allow_other`): us.
    let (uid, gid) = (sys::getuid(), sys::getgid());
    let mut data = format!(
        "fd={},rootmode={:o},user_id={uid},group_id={gid},default_permissions",
        dev_fuse.as_raw_fd(),
        libc::S_IFDIR | (options.mode & 0o7777)
    );
    if options.allow_other {
        data.push_str(",allow_other");
    }
    // mount(2) is tried first, whoever we are: what decides is CAP_SYS_ADMIN, not the
    // uid (a non-root process granted the capability, or one in its own user and mount
    // namespace, mounts directly). Only a refusal (EPERM) to a process that is not root
    // goes to fusermount3: root without the capability would fail there just the same,
    // and is better told about mount(2). Opening /dev/fuse first is needed for mount(2)
    // and checks for fusermount3 what it checks itself (it opens the device as the user).
    let dev_fuse = match sys::mount_fuse("statsfs", &point.target(), FSTYPE, &data) {
        Ok(()) => dev_fuse,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && sys::geteuid() != 0 => {
            drop(dev_fuse);
            // fusermount3 resolves the path again itself. It was just checked (no
            // symlink, not a mount), and fusermount3 mounts only where this user may
            // write, so a path changed meanwhile can only send the mount to another
            // directory this user may write to; the mountinfo lookup at `path` below then
            // fails, and that stray mount goes dead as the descriptor closes.
            fusermount::mount(&path, &options)?
        }
        Err(source) => {
            return Err(MountError::Mount {
                path: path.clone(),
                source,
            })
        }
    };
    drop(point);
    // From here on, undo the mount if anything fails.
    let guard = DetachOnError(&path);
    let dev = mountinfo::read()?
        .into_iter()
        .rev()
        .find(|(_, mp)| mp.as_slice() == path.as_os_str().as_bytes())
        .map(|(dev, _)| dev)
        .ok_or_else(|| io::Error::other("the new mount is missing from /proc/self/mountinfo"))?;
    let conn = dev_fuse.try_clone()?;
    let mut config = Config::default();
    config.acl = if options.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let shared = Arc::new(Shared::new(roots.to_vec(), options));
    let pollers = shared.pollers.clone();
    // Reads FUSE_INIT (queued by mount(2), ours or fusermount3's) and answers it.
    let session = Session::from_fd(StatsFs(shared), dev_fuse, config.acl, config)?;
    let invalidator = Invalidator::start(roots, session.notifier(), pollers);
    let session = session.spawn()?;
    std::mem::forget(guard);
    Ok(Mount {
        session: Some(session),
        invalidator: Some(invalidator),
        path,
        dev,
        conn,
        created,
    })
}

/// The directories [`mount`] created for a mount point, outermost first, each with the
/// device and inode it had when created. Dropping it removes them, innermost first.
struct CreatedDirs(Vec<(PathBuf, u64, u64)>);

impl CreatedDirs {
    /// Creates `path` and its missing parents, recording each directory created here (a
    /// directory that appears meanwhile, created by someone else, is not recorded).
    fn create(path: &Path) -> io::Result<CreatedDirs> {
        let mut missing = Vec::new();
        let mut p = path;
        loop {
            match fs::symlink_metadata(p) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing.push(p);
                    match p.parent() {
                        Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                        _ => break,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // On an error, dropping `created` removes what was created so far.
        let mut created = CreatedDirs(Vec::new());
        for dir in missing.into_iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => {
                    // Absolute, so the removal does not depend on the working directory.
                    let recorded = fs::canonicalize(dir).and_then(|abs| {
                        let m = fs::symlink_metadata(&abs)?;
                        Ok((abs, m.dev(), m.ino()))
                    });
                    match recorded {
                        Ok(r) => created.0.push(r),
                        Err(e) => {
                            let _ = fs::remove_dir(dir);
                            return Err(e);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(created)
    }

    /// Removes the recorded directories, innermost first, each only if it is still the
    /// directory created (same device and inode); stops at the first that stays (one
    /// not empty, replaced, or a mount point), since its parents cannot go either.
    fn remove(&mut self) {
        while let Some((dir, dev, ino)) = self.0.pop() {
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() && m.dev() == dev && m.ino() == ino => {}
                // Removed by someone else already: on to its parent.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                _ => {
                    log::warn!(
                        "{}: not the directory statsfs created; leaving it",
                        dir.display()
                    );
                    self.0.clear();
                    return;
                }
            }
            if let Err(e) = fs::remove_dir(&dir) {
                log::warn!("removing the mount point {} it created: {e}", dir.display());
                self.0.clear();
                return;
            }
        }
    }

    /// Forgets the directories: they stay.
    fn keep(&mut self) {
        self.0.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Lazily unmounts a half-set-up mount when dropped.
struct DetachOnError<'a>(&'a Path);

impl Drop for DetachOnError<'_> {
    fn drop(&mut self) {
        let _ = detach(self.0);
    }
}

/// Lazily unmounts (detaches) whatever is mounted at `path`: `umount2(MNT_DETACH)`, or,
/// refused that (EPERM) as a user other than root, `fusermount3 -u -z`, which unmounts
/// the user's own FUSE mounts.
pub(crate) fn detach(path: &Path) -> Result<(), MountError> {
    match sys::umount2(path, libc::MNT_DETACH) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && sys::geteuid() != 0 => {
            fusermount::unmount(path)
        }
        r => Ok(r?),
    }
}

impl Mount {
    /// The mount point (canonical).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `source` is in the mount: the mount point, then the source's path from its
    /// topmost ancestor (a root). With a root `kvm`, the VM `1234-5` under it is at
    /// `<mount>/kvm/1234-5`, and its `exits` at `path_of(vm).join("exits")`: the layout
    /// of KVM's debugfs.
    pub fn path_of(&self, source: &Source) -> PathBuf {
        self.path.join(source.path())
    }

    /// Blocks until the process gets SIGINT or SIGTERM, then unmounts. Without this (or
    /// another handler that drops the `Mount`), those signals end the process without
    /// unmounting and leave a dead mount behind.
    pub fn wait_for_signal(self) -> Result<(), MountError> {
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])?;
        let _ = signals.forever().next();
        self.unmount()
    }

    /// Unmounts now. Returns once the worker threads are gone, or at once if the mount was
    /// busy and had to be detached lazily. A user other than root unmounts through
    /// `fusermount3 -u -z` (always lazily; the workers are waited for if that ended the
    /// connection, that is, if the mount was not busy).
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> Result<(), MountError> {
        if self.session.is_none() {
            return Ok(());
        }
        if sys::connection_alive(&self.conn) {
            let mounts = mountinfo::read()?;
            let ours = self.path.as_os_str().as_bytes();
            let top = mounts.iter().rev().find(|(_, mp)| mp.as_slice() == ours);
            if top.map(|(dev, _)| dev) != Some(&self.dev)
                && mounts.iter().any(|(dev, _)| *dev == self.dev)
            {
                // The session stays: a later call may still unmount.
                return Err(MountError::Io(io::Error::other(format!(
                    "{}: another mount covers ours; not unmounting",
                    self.path.display()
                ))));
            }
        }
        // From here on the mount goes (or is gone): stop listening to the tree first.
        self.invalidator = None;
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if !sys::connection_alive(&self.conn)
            || !mountinfo::read()?.iter().any(|(dev, _)| *dev == self.dev)
        {
            // Unmounted by someone else: whatever is at the path now is not ours (the
            // directories we created are checked one by one before they go).
            join_with_timeout(session);
            self.created.remove();
            return Ok(());
        }
        let r = match sys::umount2(&self.path, 0) {
            Ok(()) => {
                join_with_timeout(session);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                sys::umount2(&self.path, libc::MNT_DETACH).map_err(MountError::Io)
            }
            // Not root: fusermount3 unmounts the user's own mount, lazily. The kernel
            // tears an idle mount down before fusermount3 exits, so a connection still up
            // afterwards means a busy mount, detached: the workers stay until it is idle.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && sys::geteuid() != 0 => {
                let r = fusermount::unmount(&self.path);
                if r.is_ok() && !sys::connection_alive(&self.conn) {
                    join_with_timeout(session);
                }
                r
            }
            Err(e) => Err(MountError::Io(e)),
        };
        match r {
            Ok(()) => self.created.remove(),
            // Still mounted: its mount point stays.
            Err(_) => self.created.keep(),
        }
        r
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            log::warn!("unmounting {}: {e}", self.path.display());
            // Still mounted (or covered): its mount point stays.
            self.created.keep();
        }
    }
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field("path", &self.path)
            .field("dev", &self.dev)
            .finish()
    }
}

fn join_with_timeout(session: BackgroundSession) {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    while !session.guard.is_finished() {
        if Instant::now() >= deadline {
            log::warn!("FUSE workers still running after unmount; leaving them");
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Err(e) = session.join() {
        log::warn!("FUSE session ended with: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::CreatedDirs;

    /// A fresh directory of this test's own under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("statsfs-vfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn removes_exactly_the_directories_it_created() {
        let base = scratch("created");
        let target = base.join("a/b/c");
        let mut created = CreatedDirs::create(&target).unwrap();
        assert!(target.is_dir());
        assert_eq!(created.0.len(), 3);
        created.remove();
        assert!(!base.join("a").exists());
        assert!(base.is_dir(), "a directory that was there before stays");

        // Nothing is created for an existing directory, so nothing is removed.
        drop(CreatedDirs::create(&base).unwrap());
        assert!(base.is_dir());
        fs::remove_dir(&base).unwrap();
    }

    #[test]
    fn leaves_a_directory_that_is_no_longer_empty_or_not_the_same() {
        let base = scratch("kept");
        let mut created = CreatedDirs::create(&base.join("a/b")).unwrap();
        // Someone else's file beside the mount point: b goes, a stays.
        fs::write(base.join("a/theirs"), b"x").unwrap();
        created.remove();
        assert!(!base.join("a/b").exists());
        assert!(base.join("a/theirs").is_file());

        // A directory replaced by another of the same name (empty, but not ours) stays.
        let mut created = CreatedDirs::create(&base.join("a/b")).unwrap();
        assert_eq!(created.0.len(), 1);
        // The old one is kept (renamed), so the new one cannot get its inode number.
        fs::rename(base.join("a/b"), base.join("a/old")).unwrap();
        fs::create_dir(base.join("a/b")).unwrap();
        created.remove();
        assert!(base.join("a/b").is_dir());
        fs::remove_dir_all(&base).unwrap();
    }
}
