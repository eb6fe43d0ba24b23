//! The region's file in its directory: made whole before anyone can see it, and removed
//! only if it is still the one made, with no symbolic link followed anywhere.
//!
//! * The directory is reached one component at a time from `/` (or the working
//!   directory), each opened with `O_NOFOLLOW`: a symbolic link anywhere in the path is
//!   an error ([`RegionError::Symlink`]), so no one can re-point where the file goes.
//!   Everything after works relative to that directory's descriptor.
//! * The file is made unnamed (`O_TMPFILE`), locked (a write lock of its open file
//!   description, held while the writer maps it: readers ask for it, without taking
//!   anything, to tell a live writer from a dead one), sized and allocated (`fallocate`:
//!   a full file system is an error now, [`RegionError::NoSpace`], not a SIGBUS at the
//!   first write to a sparse page), and linked under its name once the caller wrote it
//!   whole. On a file system without `O_TMPFILE` a named temporary
//!   (`NAME.PID.NANOS.tmp`) stands in; those of dead writers are removed.
//! * A file already at the name is replaced only if it is a stale region of this user:
//!   a regular file owned by this user, beginning with the region magic, on which no
//!   writer holds its lock. Otherwise [`RegionError::Exists`].
//! * [`Placed::remove`] unlinks the name only while it still names the inode made here.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FallocateFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::error::RegionError;

/// Where a region's file was linked: its directory (held open), its name and its inode.
#[derive(Debug)]
pub(crate) struct Placed {
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// A file being made: sized, allocated and locked, not yet linked.
pub(crate) struct Unlinked {
    file: File,
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
    /// The temporary name, when `O_TMPFILE` was not available.
    tmp: Option<OsString>,
}

fn io_err(path: &Path) -> impl Fn(Errno) -> RegionError + '_ {
    move |e| RegionError::Io {
        path: path.to_owned(),
        source: e.into(),
    }
}

/// Opens the directory `path` is in, following no symbolic link, and splits off the file
/// name.
fn open_parent(path: &Path) -> Result<(OwnedFd, OsString), RegionError> {
    let err = io_err(path);
    let name = match path.components().next_back() {
        Some(Component::Normal(n)) => n.to_owned(),
        _ => {
            return Err(RegionError::Io {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
            })
        }
    };
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = rustix::fs::openat(CWD, start, dir_flags, Mode::empty()).map_err(&err)?;
    let mut walked = PathBuf::from(start);
    let parent = path.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        let part: &OsStr = match c {
            Component::RootDir | Component::CurDir => continue,
            // Where `..` leads depends on renames since: not followed.
            Component::ParentDir => {
                return Err(RegionError::Io {
                    path: path.to_owned(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a region's path has no `..`: give it without",
                    ),
                })
            }
            Component::Normal(n) => n,
            Component::Prefix(_) => continue,
        };
        walked.push(part);
        let st = rustix::fs::statat(&dir, part, AtFlags::SYMLINK_NOFOLLOW).map_err(&err)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            return Err(RegionError::Symlink {
                path: path.to_owned(),
                link: walked,
            });
        }
        dir = rustix::fs::openat(&dir, part, dir_flags, Mode::empty()).map_err(|e| {
            // Replaced by a link between the check and the open.
            if e == Errno::LOOP || e == Errno::NOTDIR {
                RegionError::Symlink {
                    path: path.to_owned(),
                    link: walked.clone(),
                }
            } else {
                err(e)
            }
        })?;
    }
    Ok((dir, name))
}

/// Makes the file for a region at `path`: unnamed (or under a temporary name), of
/// `size` bytes all allocated, with exactly `mode`, locked exclusively.
pub(crate) fn create(path: &Path, mode: u32, size: u64) -> Result<Unlinked, RegionError> {
    let err = io_err(path);
    let (dir, name) = open_parent(path)?;
    clean_stale_temporaries(&dir, &name);
    let mode = Mode::from_raw_mode(mode & 0o777);
    let rw = OFlags::RDWR | OFlags::CLOEXEC;
    let (fd, tmp) = match rustix::fs::openat(&dir, ".", rw | OFlags::TMPFILE, mode) {
        Ok(fd) => (fd, None),
        // No O_TMPFILE on this file system: a named temporary, made exclusively.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let tmp = temporary(&name, std::process::id(), nanos);
            let flags = rw | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
            let fd = rustix::fs::openat(&dir, &tmp, flags, mode).map_err(&err)?;
            (fd, Some(tmp))
        }
        Err(e) => return Err(err(e)),
    };
    let made = Unlinked {
        file: File::from(fd),
        dir,
        name,
        path: path.to_owned(),
        tmp,
    };
    // Locked first: a live writer's file, named or not, is never taken for a dead one's.
    crate::sys::lock_as_writer(&made.file).map_err(|e| RegionError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    // The mode exactly as asked, whatever the umask.
    rustix::fs::fchmod(&made.file, mode).map_err(&err)?;
    rustix::fs::ftruncate(&made.file, size).map_err(&err)?;
    allocate(&made.file, size).map_err(|e| match e {
        Errno::NOSPC | Errno::DQUOT => RegionError::NoSpace {
            path: path.to_owned(),
            size,
        },
        e => err(e),
    })?;
    Ok(made)
}

/// Gives every byte of the file its storage now.
fn allocate(file: &File, size: u64) -> Result<(), Errno> {
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, size) {
        Err(Errno::OPNOTSUPP | Errno::NOSYS) => {
            // Written with zeros instead, a MiB at a time.
            let zeros = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < size {
                let n = (size - at).min(zeros.len() as u64) as usize;
                let wrote = rustix::io::pwrite(file, &zeros[..n], at)?;
                at += wrote as u64;
            }
            Ok(())
        }
        other => other,
    }
}

fn temporary(name: &OsStr, pid: u32, nanos: u32) -> OsString {
    let mut tmp = name.to_owned();
    tmp.push(format!(".{pid}.{nanos}.tmp"));
    tmp
}

/// Removes `NAME.PID.NANOS.tmp` files of writers that are gone (no process `PID` here, and
/// no writer's lock on the file: a process of another PID namespace keeps its
/// temporary), if they are regular files of this user: what a writer killed while
/// making its region left.
fn clean_stale_temporaries(dir: &OwnedFd, name: &OsStr) {
    let Ok(listing) = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let Ok(entries) = rustix::fs::Dir::read_from(&listing) else {
        return;
    };
    let prefix = name.as_bytes();
    for entry in entries.flatten() {
        let file = entry.file_name().to_bytes();
        let Some(pid) = file
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(b"."))
            .and_then(|r| r.strip_suffix(b".tmp"))
            .and_then(|r| r.split(|&b| b == b'.').next())
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if rustix::process::test_kill_process(pid) != Err(Errno::SRCH) {
            continue;
        }
        let file = OsStr::from_bytes(file);
        // A temporary needs no magic: its writer may have died before writing it.
        if ours_unlocked(dir, file).is_some() {
            let _ = rustix::fs::unlinkat(dir, file, AtFlags::empty());
        }
    }
}

impl Unlinked {
    /// The file (to map and write before it is linked).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Links the file under its name: now readers can open it. A stale region of this
    /// user at that name (no writer holds its lock) is replaced.
    pub(crate) fn link(mut self) -> Result<Placed, RegionError> {
        let err = io_err(&self.path);
        let st = rustix::fs::fstat(&self.file).map_err(&err)?;
        let mut replaced = false;
        loop {
            match self.link_once() {
                Ok(()) => break,
                Err(Errno::EXIST) if !replaced && self.remove_stale() => replaced = true,
                Err(Errno::EXIST) => {
                    return Err(RegionError::Exists {
                        path: self.path.clone(),
                    })
                }
                Err(e) => return Err(err(e)),
            }
        }
        if let Some(tmp) = self.tmp.take() {
            let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
        }
        let placed = Placed {
            dir: self.dir.try_clone().map_err(|e| RegionError::Io {
                path: self.path.clone(),
                source: e,
            })?,
            name: self.name.clone(),
            path: self.path.clone(),
            dev: st.st_dev,
            ino: st.st_ino,
        };
        Ok(placed)
    }

    fn link_once(&self) -> Result<(), Errno> {
        if let Some(tmp) = &self.tmp {
            return rustix::fs::linkat(&self.dir, tmp, &self.dir, &self.name, AtFlags::empty());
        }
        // An unnamed file: by its descriptor (needs CAP_DAC_READ_SEARCH), else through
        // /proc (any user).
        match rustix::fs::linkat(&self.file, "", &self.dir, &self.name, AtFlags::EMPTY_PATH) {
            Err(Errno::NOENT | Errno::PERM | Errno::ACCESS) => {
                let proc = format!("/proc/self/fd/{}", {
                    use std::os::fd::AsRawFd;
                    self.file.as_raw_fd()
                });
                rustix::fs::linkat(
                    CWD,
                    proc.as_str(),
                    &self.dir,
                    &self.name,
                    AtFlags::SYMLINK_FOLLOW,
                )
            }
            other => other,
        }
    }

    /// Removes what is at the name if it is a stale region of this user (a regular file
    /// of this user, beginning with the region magic, with no writer's lock on it);
    /// whether it did.
    fn remove_stale(&self) -> bool {
        match ours_unlocked(&self.dir, &self.name) {
            Some(open) if open.magic => {
                // Still that file at the name.
                let same = rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|now| (now.st_dev, now.st_ino) == open.id);
                same && rustix::fs::unlinkat(&self.dir, &self.name, AtFlags::empty()).is_ok()
            }
            _ => false,
        }
    }
}

/// What [`ours_unlocked`] found.
struct Unlocked {
    /// Device and inode.
    id: (u64, u64),
    /// Whether it begins with the region magic.
    magic: bool,
}

/// The file `name` in `dir`, if it is a regular file of this user (checked before it is
/// opened, and again after, on the same inode) that no writer holds its lock on.
fn ours_unlocked(dir: &OwnedFd, name: &OsStr) -> Option<Unlocked> {
    let me = rustix::process::geteuid().as_raw();
    let before = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    if FileType::from_raw_mode(before.st_mode) != FileType::RegularFile || before.st_uid != me {
        return None;
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::openat(dir, name, flags, Mode::empty()).ok()?);
    let st = rustix::fs::fstat(&file).ok()?;
    if (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino) {
        return None;
    }
    if crate::sys::writer_holds(&file).unwrap_or(true) {
        return None;
    }
    let mut head = [0u8; 8];
    let magic = rustix::io::pread(&file, &mut head, 0).is_ok_and(|n| n == 8)
        && u64::from_le_bytes(head) == crate::format::MAGIC;
    Some(Unlocked {
        id: (st.st_dev, st.st_ino),
        magic,
    })
}

impl Drop for Unlinked {
    fn drop(&mut self) {
        // Never linked (an error on the way): the temporary name goes too. An unnamed
        // file just goes with its descriptor.
        if let Some(tmp) = &self.tmp {
            let _ = rustix::fs::unlinkat(&self.dir, tmp, AtFlags::empty());
        }
    }
}

impl Placed {
    /// Unlinks the name if it still names the file made here (in the directory it was
    /// made in, whatever happened to the path since); whether it did.
    pub(crate) fn remove(&self) -> Result<bool, RegionError> {
        let err = io_err(&self.path);
        let now = match rustix::fs::statat(&self.dir, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(err(e)),
        };
        if (now.st_dev, now.st_ino) != (self.dev, self.ino) {
            return Ok(false);
        }
        match rustix::fs::unlinkat(&self.dir, &self.name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(err(e)),
        }
    }
}

/// Whether the writer of the region open as `file` is gone: no open file holds the write
/// lock its writer takes for as long as it maps the file (it goes when the writer
/// unmaps, exits or dies). Nothing is taken to ask.
pub(crate) fn writer_gone(file: &File) -> bool {
    crate::sys::writer_holds(file).is_ok_and(|held| !held)
}
