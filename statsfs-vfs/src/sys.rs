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

/// The shared region's memory (feature `region`): the mapping, and the structs placed
/// in it.
#[cfg(feature = "region")]
mod region_memory {
    use std::io;
    use std::os::fd::AsRawFd;

    /// A shared mapping of a whole file (a region, `crate::region`): read-write for its
    /// writer, read-only for readers. Every access is bounds- and alignment-checked here and
    /// atomic (the other side may be writing at the same time, from another process), so
    /// the safe methods are sound whatever the file holds.
    pub(crate) struct Mapping {
        base: std::ptr::NonNull<u8>,
        len: usize,
        /// Mapped read-write: only then do the writing methods write.
        writable: bool,
        /// The places of live [`InRegion`]s, offset to size: `place` refuses a place that
        /// overlaps one (the invariant its unsafe write relies on, kept here).
        placed: std::sync::Mutex<std::collections::BTreeMap<usize, usize>>,
    }

    // SAFETY: the mapping is plain shared memory, accessed only through atomics.
    unsafe impl Send for Mapping {}
    // SAFETY: as above.
    unsafe impl Sync for Mapping {}

    impl Mapping {
        /// Maps `len` bytes of `file` shared, writable or read-only.
        pub(crate) fn new(file: &std::fs::File, len: usize, writable: bool) -> io::Result<Mapping> {
            if len == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "an empty region",
                ));
            }
            let prot = if writable {
                libc::PROT_READ | libc::PROT_WRITE
            } else {
                libc::PROT_READ
            };
            // SAFETY: a fresh mapping chosen by the kernel (no fixed address), of a file we
            // hold open; the result is checked before use.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    prot,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let base = std::ptr::NonNull::new(p.cast::<u8>())
                .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
            Ok(Mapping {
                base,
                len,
                writable,
                placed: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            })
        }

        pub(crate) fn len(&self) -> usize {
            self.len
        }

        /// The address of byte `offset` (for telling whether a struct lives in here).
        pub(crate) fn address(&self, offset: usize) -> usize {
            self.base.as_ptr() as usize + offset
        }

        /// Whether `[offset, offset + size)` is inside and `offset` aligned to `align`.
        fn fits(&self, offset: usize, size: usize, align: usize) -> bool {
            offset % align == 0 && offset.checked_add(size).is_some_and(|end| end <= self.len)
        }

        /// The atomic of type `A` (an `Atomic*` of `size_of::<A>()` bytes) at `offset`, if it
        /// fits and is aligned.
        fn atomic<A>(&self, offset: usize) -> Option<&A> {
            let size = std::mem::size_of::<A>();
            if !self.fits(offset, size, std::mem::align_of::<A>()) {
                return None;
            }
            // SAFETY: inside the mapping (checked), aligned for `A` (checked; the mapping is
            // page-aligned), and `A` is only ever an atomic integer type, valid for any bit
            // pattern and made for shared mutation. The mapping lives as long as `self`.
            Some(unsafe { &*self.base.as_ptr().add(offset).cast::<A>() })
        }

        /// The little-endian unsigned integer of `width` bytes (1, 2, 4 or 8) at `offset`,
        /// loaded atomically; `None` when out of bounds, misaligned or of another width.
        pub(crate) fn load(
            &self,
            offset: usize,
            width: usize,
            order: std::sync::atomic::Ordering,
        ) -> Option<u64> {
            use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};
            match width {
                1 => self
                    .atomic::<AtomicU8>(offset)
                    .map(|a| u64::from(a.load(order))),
                2 => self
                    .atomic::<AtomicU16>(offset)
                    .map(|a| u64::from(a.load(order))),
                4 => self
                    .atomic::<AtomicU32>(offset)
                    .map(|a| u64::from(a.load(order))),
                8 => self.atomic::<AtomicU64>(offset).map(|a| a.load(order)),
                _ => None,
            }
        }

        /// Loads `out.len()` consecutive u64 words from `offset` (relaxed atomic loads: a
        /// plain `mov` each on x86); `false`, and nothing loaded, unless they are all inside
        /// and aligned. The region reader's inner loop: one check for the whole run.
        pub(crate) fn load_u64s(&self, offset: usize, out: &mut [u64]) -> bool {
            let Some(bytes) = out.len().checked_mul(8) else {
                return false;
            };
            if !self.fits(offset, bytes, 8) {
                return false;
            }
            // SAFETY: the whole run is inside the mapping and 8-aligned (checked above), so
            // each word is a valid `AtomicU64` (any bit pattern is), shared with the writer.
            let words = unsafe {
                std::slice::from_raw_parts(
                    self.base
                        .as_ptr()
                        .add(offset)
                        .cast::<std::sync::atomic::AtomicU64>(),
                    out.len(),
                )
            };
            for (o, w) in out.iter_mut().zip(words) {
                *o = w.load(std::sync::atomic::Ordering::Relaxed);
            }
            true
        }

        /// Stores the u64 at `offset` (aligned, inside: else nothing happens and `false`).
        pub(crate) fn store_u64(
            &self,
            offset: usize,
            v: u64,
            order: std::sync::atomic::Ordering,
        ) -> bool {
            if !self.writable {
                return false;
            }
            match self.atomic::<std::sync::atomic::AtomicU64>(offset) {
                Some(a) => {
                    a.store(v, order);
                    true
                }
                None => false,
            }
        }

        /// Copies `len` bytes at `offset` out, byte by byte with relaxed atomic loads (the
        /// writer may be changing them: the caller checks the generation afterwards).
        pub(crate) fn read_bytes(&self, offset: usize, len: usize, out: &mut Vec<u8>) -> bool {
            if !self.fits(offset, len, 1) {
                return false;
            }
            out.clear();
            out.reserve(len);
            for i in 0..len {
                let b = self.atomic::<std::sync::atomic::AtomicU8>(offset + i);
                out.push(b.map_or(0, |a| a.load(std::sync::atomic::Ordering::Relaxed)));
            }
            true
        }

        /// Writes `bytes` at `offset`, byte by byte with relaxed atomic stores (a writable
        /// mapping only).
        pub(crate) fn write_bytes(&self, offset: usize, bytes: &[u8]) -> bool {
            if !self.writable || !self.fits(offset, bytes.len(), 1) {
                return false;
            }
            for (i, b) in bytes.iter().enumerate() {
                if let Some(a) = self.atomic::<std::sync::atomic::AtomicU8>(offset + i) {
                    a.store(*b, std::sync::atomic::Ordering::Relaxed);
                }
            }
            true
        }

        /// Moves `value` into the mapping at `offset`; `None` (and `value` dropped) when it
        /// does not fit there or `offset` is not aligned for `T`. Only for a writable
        /// mapping, at a place no live [`InRegion`] overlaps (checked here).
        /// `release(offset)` runs once the struct has been dropped in place.
        pub(crate) fn place<T: statsfs_core::Stats>(
            self: &std::sync::Arc<Self>,
            offset: usize,
            value: T,
            release: Box<dyn FnOnce(usize) + Send + Sync>,
        ) -> Option<InRegion<T>> {
            let size = std::mem::size_of::<T>().max(1);
            if !self.writable || !self.fits(offset, size, std::mem::align_of::<T>()) {
                return None;
            }
            {
                let mut placed = self
                    .placed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let before = placed.range(..offset + size).next_back();
                if before.is_some_and(|(&o, &n)| o + n > offset) {
                    return None;
                }
                placed.insert(offset, size);
            }
            // SAFETY: inside a writable mapping and aligned for `T` (checked), and no live
            // `InRegion` overlaps these bytes (checked against `placed`, where this place is
            // recorded until the handle drops): nothing else refers to them, so writing a
            // `T` there is writing to memory we own.
            let ptr = unsafe {
                let p = self.base.as_ptr().add(offset).cast::<T>();
                p.write(value);
                std::ptr::NonNull::new_unchecked(p)
            };
            Some(InRegion {
                ptr,
                offset,
                release: Some(release),
                _map: std::sync::Arc::clone(self),
            })
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once; every reference into it
            // borrows `self` or holds an `Arc` of it (`InRegion`), so none outlives this.
            unsafe {
                libc::munmap(self.base.as_ptr().cast(), self.len);
            }
        }
    }

    /// A stats struct that lives in a shared region (`Region::alloc`, in `region`): it
    /// derefs to the struct, whose cells are updated in place exactly as on the heap
    /// (`inc_local` is still one `inc`), and is added to a source with
    /// [`Source::add_placed_values`](statsfs_core::Source::add_placed_values). Dropping the
    /// last handle drops the struct in place and gives its place back to the region, which
    /// reuses it only once no published layout refers to it (`docs/REGION.md`).
    pub struct InRegion<T> {
        ptr: std::ptr::NonNull<T>,
        offset: usize,
        release: Option<Box<dyn FnOnce(usize) + Send + Sync>>,
        _map: std::sync::Arc<Mapping>,
    }

    // SAFETY: a `T: Stats` is `Send + Sync` (the trait requires it); the handle is the
    // struct's only owner, and the release callback is `Send + Sync`.
    unsafe impl<T: Send + Sync> Send for InRegion<T> {}
    // SAFETY: as above.
    unsafe impl<T: Send + Sync> Sync for InRegion<T> {}

    impl<T> InRegion<T> {
        /// Where the struct is in the region's file (its byte offset).
        pub fn offset(&self) -> usize {
            self.offset
        }
    }

    impl<T> std::ops::Deref for InRegion<T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: written in `place`, alive until `drop` below, inside a mapping this
            // handle keeps alive; shared access only.
            unsafe { self.ptr.as_ref() }
        }
    }

    impl<T> Drop for InRegion<T> {
        fn drop(&mut self) {
            // SAFETY: the `T` written in `place`, dropped once, here; nothing refers to it
            // after (the tree lets a placed struct go only after its last read).
            unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) }
            self._map
                .placed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&self.offset);
            if let Some(release) = self.release.take() {
                release(self.offset);
            }
        }
    }

    // SAFETY: the struct stays at `ptr`, which `stats` always returns, until the handle is
    // dropped: the `Placed` contract.
    unsafe impl<T: statsfs_core::Stats> statsfs_core::Placed for InRegion<T> {
        type Stats = T;
        fn stats(&self) -> &T {
            self
        }
    }

    impl<T> std::fmt::Debug for InRegion<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("InRegion")
                .field("offset", &self.offset)
                .finish()
        }
    }
}

#[cfg(feature = "region")]
pub use region_memory::InRegion;
#[cfg(feature = "region")]
pub(crate) use region_memory::Mapping;
