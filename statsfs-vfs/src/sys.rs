//! The vfs crate's only unsafe code: the system calls that std does not wrap.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// `mount(2)` of a FUSE connection (`dev_fuse`) at `target` with the option string
/// `data` and the flags nosuid, nodev, noexec, noatime.
pub(crate) fn mount_fuse(source: &str, target: &Path, fstype: &str, data: &str) -> io::Result<()> {
    let source = CString::new(source)?;
    let target = cstr(target)?;
    let fstype = CString::new(fstype)?;
    let data = CString::new(data)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME;
    // SAFETY: four valid NUL-terminated strings that outlive the call; `data` is the
    // FUSE option string, which the kernel only reads.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens the directory `name` inside the directory `dir` without following a symlink
/// (`openat(dir, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC)`): a symlink, or
/// anything not a directory, is `ENOTDIR`. `name` is one path component.
pub(crate) fn open_dir_nofollow(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let c = cstr(Path::new(name))?;
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `dir` is an open descriptor and `c` a valid NUL-terminated string, both
    // outliving the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `openat` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `umount2(path, flags)`.
pub(crate) fn umount2(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = cstr(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the FUSE connection behind `fd` is still up: `/dev/fuse` polls `POLLERR`
/// once the connection was aborted (its superblock is gone).
pub(crate) fn connection_alive(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd that outlives the call; zero timeout.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r >= 0 {
            return p.revents & libc::POLLERR == 0;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// The real user id of this process.
pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::getuid() }
}

/// The real group id of this process.
pub(crate) fn getgid() -> u32 {
    // SAFETY: getgid takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::getgid() }
}
