//! Why mounting or unmounting failed: one typed error for every step (the mount point,
//! `/dev/fuse`, mount(2), `fusermount3`, unmounting), each saying what to do.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why mounting or unmounting failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum MountError {
    /// `/dev/fuse` cannot be opened: FUSE is missing (`modprobe fuse`) or we lack the
    /// permission (a user other than root needs it readable and writable, mode 0666 as
    /// distributions ship it).
    NoFuse(io::Error),
    /// The mount point is not a directory, cannot be resolved, or was missing and could
    /// not be created.
    MountPoint {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// `mount(2)` failed: as root, for lack of `CAP_SYS_ADMIN` (in a container) or
    /// because the kernel refused the mount; a user other than root mounts through
    /// `fusermount3` instead, whose failures are [`Fusermount`](MountError::Fusermount).
    Mount {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A component of the mount point's path is a symlink: statsfs follows none, since
    /// whoever can change the link (another user, in `/tmp`) would choose where the
    /// mount goes.
    Symlink {
        /// The path given.
        path: PathBuf,
        /// The symlink in it.
        link: PathBuf,
    },
    /// The mount point's path holds `..` (or is not a Unix path).
    UnsafePath {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The mount point is a live mount already (another statsfs, or any file system).
    AlreadyMounted {
        /// The path.
        path: PathBuf,
    },
    /// Two roots share a name: each root is a top-level directory.
    DuplicateRoot {
        /// The name.
        name: String,
    },
    /// Not root, so `mount(2)` was refused, and `fusermount3` (the setuid helper of the
    /// fuse3 package, which mounts for other users) is neither on `PATH` nor at
    /// `/usr/bin/fusermount3` or `/bin/fusermount3`.
    NoFusermount {
        /// The mount point.
        path: PathBuf,
    },
    /// `fusermount3` could not be started, or did not finish in time (it was killed).
    FusermountRun {
        /// The `fusermount3` run.
        program: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// `fusermount3` failed: it exited with an error status, and said why on stderr
    /// (say that `allow_other` needs `user_allow_other` in `/etc/fuse.conf`, or that the
    /// mount point is not the user's).
    Fusermount {
        /// The mount point.
        path: PathBuf,
        /// `mount` or `unmount`.
        action: &'static str,
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// `fusermount3` exited successfully but passed no usable `/dev/fuse` descriptor
    /// back (none, several, or something that is not the FUSE device): not a libfuse 3
    /// `fusermount3`, or not the real one.
    NoDescriptor {
        /// The mount point.
        path: PathBuf,
        /// What was wrong.
        source: io::Error,
    },
    /// Serving or unmounting failed.
    Io(io::Error),
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::NoFuse(e) => write!(
                f,
                "cannot open /dev/fuse ({e}); load the fuse module (modprobe fuse), and to \
                 mount as a user other than root make /dev/fuse readable and writable for \
                 it (mode 0666, as distributions ship it)"
            ),
            MountError::MountPoint { path, source } => {
                write!(
                    f,
                    "mount point {} is unusable or cannot be created ({source})",
                    path.display()
                )
            }
            MountError::Mount { path, source } => {
                write!(
                    f,
                    "mounting at {} failed ({source}); mount(2) needs root with CAP_SYS_ADMIN \
                     (a user other than root mounts through fusermount3)",
                    path.display()
                )
            }
            MountError::Symlink { path, link } => write!(
                f,
                "refusing to mount at {}: {} is a symlink, and statsfs follows none (whoever \
                 can change it would choose where the mount goes); give the real path",
                path.display(),
                link.display()
            ),
            MountError::UnsafePath { path, reason } => write!(
                f,
                "refusing to mount at {}: {reason}; give an absolute path without `..`",
                path.display()
            ),
            MountError::AlreadyMounted { path } => write!(
                f,
                "{} is already a mount point (a statsfs that is still running, or another \
                 file system); unmount it or choose another path",
                path.display()
            ),
            MountError::DuplicateRoot { name } => write!(
                f,
                "two roots are named `{name}`; give each root its own name"
            ),
            MountError::NoFusermount { path } => write!(
                f,
                "cannot mount at {}: not root, and fusermount3 is not on PATH (nor at \
                 /usr/bin/fusermount3 or /bin/fusermount3); install the fuse3 package, or \
                 run as root",
                path.display()
            ),
            MountError::FusermountRun { program, source } => {
                write!(f, "running {} failed: {source}", program.display())
            }
            MountError::Fusermount {
                path,
                action,
                status,
                stderr,
            } => {
                write!(
                    f,
                    "fusermount3 could not {action} {} ({status})",
                    path.display()
                )?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                if stderr.contains("user_allow_other") {
                    write!(
                        f,
                        "; add a line `user_allow_other` to /etc/fuse.conf, or mount without \
                         allow_other"
                    )
                } else if *action == "mount" {
                    write!(
                        f,
                        "; the mount point must be a directory of yours, and /dev/fuse \
                         readable and writable for you"
                    )
                } else {
                    Ok(())
                }
            }
            MountError::NoDescriptor { path, source } => write!(
                f,
                "fusermount3 passed back no usable /dev/fuse descriptor for {} ({source}); \
                 is it the fusermount3 of fuse3 (libfuse 3)?",
                path.display()
            ),
            MountError::Io(e) => write!(f, "statsfs mount: {e}"),
        }
    }
}

impl std::error::Error for MountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MountError::NoFuse(e) | MountError::Io(e) => Some(e),
            MountError::MountPoint { source, .. }
            | MountError::Mount { source, .. }
            | MountError::FusermountRun { source, .. }
            | MountError::NoDescriptor { source, .. } => Some(source),
            MountError::DuplicateRoot { .. }
            | MountError::NoFusermount { .. }
            | MountError::Fusermount { .. }
            | MountError::Symlink { .. }
            | MountError::UnsafePath { .. }
            | MountError::AlreadyMounted { .. } => None,
        }
    }
}

impl From<io::Error> for MountError {
    fn from(e: io::Error) -> Self {
        MountError::Io(e)
    }
}
