//! The vfs crate's only unsafe code: the system calls that std does not wrap.
#![allow(unsafe_code)]

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

/// The effective user id of this process: whether `mount(2)` refusing us means "not
/// root" (then `fusermount3` may mount for us) or a root without the capability.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes the child that `cmd` spawns inherit `fd`: it stays close-on-exec in this
/// process (so no other child, spawned by any thread meanwhile, gets it) and only the
/// forked child clears the flag, just before `exec`. `fd` must stay open until the
/// spawn, and be above 2 (the child's stdio is set up on 0..=2 first).
pub(crate) fn inherit_in_child(cmd: &mut std::process::Command, fd: &OwnedFd) {
    use std::os::unix::process::CommandExt;
    let fd = fd.as_raw_fd();
    let clear_cloexec = move || {
        // SAFETY: fcntl on a descriptor number with integer arguments touches no memory;
        // it is async-signal-safe, as code between fork and exec must be. The flag
        // changes in the child's own copy of the descriptor table only.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec; it only calls fcntl
    // (async-signal-safe), allocates nothing and takes no lock (`io::Error` from an errno
    // holds no allocation).
    unsafe {
        cmd.pre_exec(clear_cloexec);
    }
}

/// What [`recv_fd`] got from the peer.
pub(crate) enum Received {
    /// Exactly one descriptor, with at least one byte of data (close-on-exec here).
    Fd(OwnedFd),
    /// The peer closed its end without sending anything.
    Eof,
}

/// Receives one descriptor passed with `SCM_RIGHTS` over the stream socket `sock`
/// (libfuse's `_FUSE_COMMFD` protocol: one byte of data carrying one descriptor),
/// waiting at most `timeout` for it. The control data is checked as hostile input:
/// every header's level, type and length are validated against what was received;
/// anything but exactly one descriptor in one `SOL_SOCKET`/`SCM_RIGHTS` message is an
/// `InvalidData` error, and every descriptor that did arrive is closed then.
pub(crate) fn recv_fd(sock: &OwnedFd, timeout: std::time::Duration) -> io::Result<Received> {
    use std::os::fd::FromRawFd;
    use std::time::Instant;

    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(libc::c_int::MAX as u128) as libc::c_int;
        let mut p = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd that outlives the call.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            break;
        }
        if r == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "no descriptor within {} s",
                    timeout.as_secs_f64().round() as u64
                ),
            ));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }

    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: byte.len(),
    };
    // Room for a dozen descriptors, 8-byte aligned as `cmsghdr` wants: a peer that sends
    // more than one still has the ones that fit received and closed below (the kernel
    // drops the rest, and says so with MSG_CTRUNC).
    let mut control = [0u64; 8];
    // SAFETY: an all-zero `msghdr` is valid (null pointers, zero lengths, no flags);
    // the fields needed are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: `msg` points at `iov` (one byte of `byte`) and at `control`, all of
        // which outlive the call; the kernel writes at most the lengths given there.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };

    // The control data as bytes, only as far as the kernel says it wrote.
    let bytes: Vec<u8> = control.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let len = (msg.msg_controllen as usize).min(bytes.len());
    let bytes = &bytes[..len];
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    let align =
        |n: usize| (n + std::mem::size_of::<usize>() - 1) & !(std::mem::size_of::<usize>() - 1);
    let data_at = align(hdr);
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut problem: Option<String> = None;
    let mut off = 0;
    while off + hdr <= bytes.len() {
        // SAFETY: `off + size_of::<cmsghdr>()` is within `bytes`, and `cmsghdr` is plain
        // integers, valid for any bit pattern; read unaligned, so no alignment is assumed.
        let c: libc::cmsghdr =
            unsafe { std::ptr::read_unaligned(bytes[off..].as_ptr().cast::<libc::cmsghdr>()) };
        let clen = c.cmsg_len as usize;
        if clen < data_at || clen > bytes.len() - off {
            problem.get_or_insert(format!("a control message claims {clen} bytes"));
            break;
        }
        let data = &bytes[off + data_at..off + clen];
        if c.cmsg_level != libc::SOL_SOCKET || c.cmsg_type != libc::SCM_RIGHTS {
            problem.get_or_insert(format!(
                "unexpected control message (level {}, type {})",
                c.cmsg_level, c.cmsg_type
            ));
        } else {
            if data.len() % std::mem::size_of::<libc::c_int>() != 0 {
                problem.get_or_insert(format!("SCM_RIGHTS with {} data bytes", data.len()));
            }
            for chunk in data.chunks_exact(std::mem::size_of::<libc::c_int>()) {
                let fd = libc::c_int::from_ne_bytes(chunk.try_into().expect("a c_int's bytes"));
                if fd < 0 || fds.iter().any(|o| o.as_raw_fd() == fd) {
                    problem.get_or_insert(format!("descriptor number {fd} received"));
                    continue;
                }
                // SAFETY: the kernel installed `fd` in this process for this message
                // (SCM_RIGHTS), so nothing else owns it; each number is taken once.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        off += align(clen);
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        problem.get_or_insert("the control data was truncated (too many descriptors)".into());
    }
    if let Some(p) = problem {
        return Err(io::Error::new(io::ErrorKind::InvalidData, p));
    }
    match (n, fds.len()) {
        (0, 0) => Ok(Received::Eof),
        (1, 1) => Ok(Received::Fd(fds.pop().expect("one descriptor"))),
        (n, k) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{k} descriptors with {n} data bytes, instead of one with one byte"),
        )),
    }
}
