//! Mounting the tree with statsfs-vfs: the mount point is created when missing (and
//! removed again after the unmount), and the mount is removed on drop.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use statsfs::Source;

use statsfs::vfs as statsfs_vfs;

/// Why the tree could not be mounted or unmounted.
#[derive(Debug)]
pub enum MountError {
    /// The mount point could not be created (or a stale mount there detached).
    MountPoint {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file system could not be mounted or unmounted.
    Vfs {
        /// The mount point.
        path: PathBuf,
        /// Why.
        source: statsfs_vfs::MountError,
    },
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::MountPoint { path, source } => {
                write!(
                    f,
                    "cannot create the mount point {}: {source}",
                    path.display()
                )
            }
            MountError::Vfs { path, source } => {
                write!(f, "statsfs at {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for MountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MountError::MountPoint { source, .. } => Some(source),
            MountError::Vfs { source, .. } => Some(source),
        }
    }
}

/// The mounted tree. [`Mounted::unmount`] reports errors; dropping it unmounts too.
pub struct Mounted {
    mount: Option<statsfs_vfs::Mount>,
    path: PathBuf,
    /// Whether we created the mount point (and so remove it after the unmount).
    created: bool,
}

impl Mounted {
    /// Mounts `root` at `path` (created if missing), readable by this user only.
    pub fn new(path: &Path, root: &Source) -> Result<Self, MountError> {
        // A dead mount of an earlier run that was killed: detach it.
        statsfs_vfs::clean_stale_mount(path).map_err(|source| MountError::MountPoint {
            path: path.to_owned(),
            source,
        })?;
        let created = !path.exists();
        if created {
            std::fs::create_dir_all(path).map_err(|source| MountError::MountPoint {
                path: path.to_owned(),
                source,
            })?;
        }
        let options = statsfs_vfs::MountOptions {
            // SAFETY: getuid and getgid cannot fail and touch no memory.
            uid: unsafe { libc::getuid() },
            // SAFETY: as above.
            gid: unsafe { libc::getgid() },
            ..Default::default()
        };
        match statsfs_vfs::mount(path, std::slice::from_ref(root), options) {
            Ok(mount) => Ok(Mounted {
                mount: Some(mount),
                path: path.to_owned(),
                created,
            }),
            Err(source) => {
                if created {
                    let _ = std::fs::remove_dir(path);
                }
                Err(MountError::Vfs {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mount.as_ref().map_or(&self.path, |m| m.path())
    }

    /// Unmounts, then removes the mount point if it was created by [`Mounted::new`].
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), MountError> {
        if let Some(mount) = self.mount.take() {
            mount.unmount().map_err(|source| MountError::Vfs {
                path: self.path.clone(),
                source,
            })?;
            if self.created {
                let _ = std::fs::remove_dir(&self.path);
            }
        }
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            eprintln!("warning: {e}");
        }
    }
}
