//! Where a mount goes, resolved so that no one else can choose it
//! (`docs/FILES.md#mounting`): the path is made absolute, `..` is refused, and every
//! component is opened without following a symlink, from `/` down, so a symlink planted
//! anywhere in the path (say by another user in `/tmp`) cannot send the mount elsewhere;
//! the mount then goes on the directory so opened (through `/proc/self/fd`), not on the
//! path again. A path that is a live mount already (another statsfs, or any file system)
//! is refused: mounting over it would hide it, and leave a dead mount under ours when its
//! owner exits.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::error::MountError;
use crate::{mountinfo, sys};

/// A directory to mount on, held open.
pub(crate) struct MountPoint {
    /// The absolute path, with no symlink and no `.` or `..` in it.
    pub(crate) path: PathBuf,
    dir: OwnedFd,
}

impl MountPoint {
    /// The path `mount(2)` is given: the directory held open, whatever happens to the
    /// path meanwhile.
    pub(crate) fn target(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }
}

/// `path` made absolute (from the working directory, which the kernel gives without
/// symlinks), refusing `..`.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, MountError> {
    let bad = |reason: &'static str| MountError::UnsafePath {
        path: path.to_path_buf(),
        reason,
    };
    let mut out = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(|source| MountError::MountPoint {
            path: path.to_path_buf(),
            source,
        })?
    };
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err(bad("it holds `..`")),
            Component::Prefix(_) => return Err(bad("it is not a Unix path")),
        }
    }
    Ok(out)
}

/// Checks the part of the absolute, `..`-free `path` that exists: every component
/// there is a directory, none a symlink. Run before creating what is missing, so that
/// nothing is created through a symlink either.
pub(crate) fn check_existing(path: &Path) -> Result<(), MountError> {
    walk(path, true).map(drop)
}

/// Opens the directory at the absolute, `..`-free `path` component by component, never
/// following a symlink, and refuses it if it is a live mount already.
pub(crate) fn open(path: &Path) -> Result<MountPoint, MountError> {
    let dir = walk(path, false)?.ok_or_else(|| MountError::MountPoint {
        path: path.to_path_buf(),
        source: io::Error::from_raw_os_error(libc::ENOENT),
    })?;
    if mountinfo::is_mounted(path).map_err(MountError::Io)? {
        return Err(MountError::AlreadyMounted {
            path: path.to_path_buf(),
        });
    }
    Ok(MountPoint {
        path: path.to_path_buf(),
        dir,
    })
}

/// Opens each component of `path` from `/` without following symlinks; `None` at the
/// first that does not exist if `missing_ok`.
fn walk(path: &Path, missing_ok: bool) -> Result<Option<OwnedFd>, MountError> {
    let mut dir: OwnedFd = File::open("/")
        .map_err(|source| MountError::MountPoint {
            path: path.to_path_buf(),
            source,
        })?
        .into();
    let mut walked = PathBuf::from("/");
    for c in path.components() {
        let Component::Normal(name) = c else { continue };
        walked.push(name);
        dir = match sys::open_dir_nofollow(&dir, name) {
            Ok(fd) => fd,
            Err(e) if missing_ok && e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(refused(&walked, path, e)),
        };
    }
    Ok(Some(dir))
}

/// The error for a component that would not open as a directory: a symlink is named
/// as one, anything else says what the system said.
fn refused(walked: &Path, path: &Path, e: io::Error) -> MountError {
    match fs::symlink_metadata(walked) {
        Ok(m) if m.file_type().is_symlink() => MountError::Symlink {
            path: path.to_path_buf(),
            link: walked.to_path_buf(),
        },
        _ => MountError::MountPoint {
            path: walked.to_path_buf(),
            source: e,
        },
    }
}
