//! The region crate's only unsafe code: the shared mapping of a region file, the stats
//! structs placed in it, and the guard that keeps a truncated file from killing the
//! process. Every invariant the unsafe blocks rely on is established here (bounds,
//! alignment, no overlapping places), so the rest of the crate is safe code
//! (`#![deny(unsafe_code)]` in `lib.rs`).
#![allow(unsafe_code)]
use std::io;
use std::os::fd::AsRawFd;

/// A shared mapping of a whole file (a region file): read-write for its
/// writer, read-only for readers. Every access is bounds- and alignment-checked here and
/// atomic (the other side may be writing at the same time, from another process), so
/// the safe methods are sound whatever the file holds.
pub(crate) struct Mapping {
    base: std::ptr::NonNull<u8>,
    len: usize,
    /// Mapped read-write: only then do the writing methods write.
    writable: bool,
    /// Its entry in the SIGBUS guard's table.
    slot: usize,
    /// The file, open as long as it is mapped (the writer's lock lives on it).
    file: std::fs::File,
    /// The places of live [`InRegion`]s, offset to size: `place` refuses a place that
    /// overlaps one (the invariant its unsafe write relies on, kept here).
    placed: std::sync::Mutex<std::collections::BTreeMap<usize, usize>>,
}

// SAFETY: the mapping is plain shared memory, accessed only through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file` shared, writable or read-only, guarded: if the file is
    /// truncated under the mapping, the pages past its end read as zeros instead of
    /// raising SIGBUS (see [`lost`](Self::lost)).
    pub(crate) fn new(file: std::fs::File, len: usize, writable: bool) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an empty region",
            ));
        }
        guard::install()?;
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
        let unmap = |e| {
            // SAFETY: the mapping just made, not yet shared with anything.
            unsafe { libc::munmap(p, len) };
            e
        };
        let base = std::ptr::NonNull::new(p.cast::<u8>())
            .ok_or_else(|| unmap(io::Error::other("mmap returned a null mapping")))?;
        let slot = guard::register(base.as_ptr() as usize, len, writable).map_err(unmap)?;
        Ok(Mapping {
            base,
            len,
            writable,
            slot,
            file,
            placed: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Whether the file was cut short under the mapping (another process truncated it):
    /// the guard then replaced the whole mapping with private zeroed memory, so nothing
    /// faults, but nothing written since reaches the file and nothing read comes from it.
    pub(crate) fn lost(&self) -> bool {
        guard::lost(self.slot)
    }

    /// The mapped file.
    pub(crate) fn file(&self) -> &std::fs::File {
        &self.file
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
        // Out of the guard's table first: from here on a fault there is not ours.
        guard::unregister(self.slot);
        // SAFETY: the mapping made in `new`, unmapped once; every reference into it
        // borrows `self` or holds an `Arc` of it (`InRegion`), so none outlives this.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// The SIGBUS guard: a shared mapping of a file faults (SIGBUS) on any access past the
/// file's end, so a process that truncates a region file (its owner, root, or a careless
/// `truncate`) would kill every process that maps it. The guard is a SIGBUS handler,
/// installed once, that looks the faulting address up in a table of the mappings made
/// here and, for one of them, maps private zeroed pages over the whole mapping (same
/// address, same protection) and marks it lost; the faulting access then runs again on
/// those pages. A fault anywhere else goes to the handler that was there before, or
/// kills the process as SIGBUS always did. (libwayland's shared-memory pools do the
/// same for the same reason.)
///
/// Everything the handler touches is async-signal-safe: atomics in static arrays, and
/// `mmap`/`sigaction`/`raise`, which are system calls.
mod guard {
    use std::io;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use std::sync::{Once, OnceLock};

    /// How many mappings the guard can watch at once (a reader of a whole host's regions
    /// maps one per process).
    const SLOTS: usize = 4096;
    const WRITABLE: u8 = 1;
    const LOST: u8 = 2;
    const IN_USE: u8 = 4;

    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: AtomicUsize = AtomicUsize::new(0);
    #[allow(clippy::declare_interior_mutable_const)]
    const NO_FLAGS: AtomicU8 = AtomicU8::new(0);
    /// Each slot's mapping: its start (0: none), length and flags.
    static START: [AtomicUsize; SLOTS] = [FREE; SLOTS];
    static LEN: [AtomicUsize; SLOTS] = [FREE; SLOTS];
    static FLAGS: [AtomicU8; SLOTS] = [NO_FLAGS; SLOTS];
    /// Handlers running now: a slot is given back only once none is (so a handler never
    /// pairs one mapping's start with another's length, nor maps over a mapping that went).
    static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

    /// The SIGBUS action before ours: read, and stored, before ours is installed.
    static PREVIOUS: OnceLock<Previous> = OnceLock::new();
    static INSTALL: Once = Once::new();
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();

    /// A `sigaction` as it was (plain data: it is only read after being set).
    struct Previous(libc::sigaction);
    // SAFETY: a copy of a `sigaction` struct, read-only once made.
    unsafe impl Send for Previous {}
    // SAFETY: as above.
    unsafe impl Sync for Previous {}

    /// Installs the handler, once per process.
    pub(super) fn install() -> io::Result<()> {
        INSTALL.call_once(|| {
            let done = (|| {
                // SAFETY: `sigaction` reading the current action into a zeroed struct
                // (no change): what our handler chains to, stored before it can run.
                let old = unsafe {
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
                    }
                    old
                };
                let _ = PREVIOUS.set(Previous(old));
                // SAFETY: `sigaction` with a zeroed struct filled here: our handler, with
                // SA_SIGINFO (it takes the siginfo), SA_ONSTACK (it runs on an alternate
                // stack where one is set) and every signal allowed (it takes no lock).
                unsafe {
                    let mut ours: libc::sigaction = std::mem::zeroed();
                    ours.sa_sigaction = on_sigbus as *const () as usize;
                    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                    libc::sigemptyset(&mut ours.sa_mask);
                    if libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) != 0 {
                        return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
                    }
                }
                Ok(())
            })();
            let _ = INSTALLED.set(done);
        });
        match INSTALLED.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(errno)) => Err(io::Error::from_raw_os_error(*errno)),
            None => Err(io::Error::other("the SIGBUS guard could not be installed")),
        }
    }

    /// Takes a slot for the mapping `[start, start + len)`.
    pub(super) fn register(start: usize, len: usize, writable: bool) -> io::Result<usize> {
        for slot in 0..SLOTS {
            let flags = if writable { WRITABLE } else { 0 } | IN_USE;
            if FLAGS[slot]
                .compare_exchange(0, flags, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                LEN[slot].store(len, Ordering::Release);
                START[slot].store(start, Ordering::Release);
                return Ok(slot);
            }
        }
        Err(io::Error::other(format!(
            "more than {SLOTS} regions mapped at once in this process"
        )))
    }

    /// Gives the slot back, before the mapping goes: once it returns, no handler looks at
    /// the mapping or maps over it.
    pub(super) fn unregister(slot: usize) {
        START[slot].store(0, Ordering::SeqCst);
        // A handler that read the start before it went to 0 is running now, and soon done.
        while IN_HANDLER.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        LEN[slot].store(0, Ordering::Release);
        FLAGS[slot].store(0, Ordering::Release);
    }

    /// Whether the slot's mapping was replaced by zeroed pages.
    pub(super) fn lost(slot: usize) -> bool {
        FLAGS[slot].load(Ordering::Acquire) & LOST != 0
    }

    extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: errno is this thread's; saved and put back around our system calls, so
        // the interrupted code sees its own.
        let errno = unsafe { *libc::__errno_location() };
        IN_HANDLER.fetch_add(1, Ordering::SeqCst);
        let ours = repair(info);
        IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
        if !ours {
            chain(sig, info, ctx);
        }
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
    }

    /// For a fault past the end of a region's file (`BUS_ADRERR` in a mapping of ours):
    /// maps zeroed pages over that mapping, marks it lost, and says it was ours. Anything
    /// else (a signal sent by a process, a hardware memory error, an address not ours) is
    /// not.
    fn repair(info: *mut libc::siginfo_t) -> bool {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; `si_addr` is
        // meaningful for the fault codes checked first.
        let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
        if code != libc::BUS_ADRERR {
            return false;
        }
        for slot in 0..SLOTS {
            let start = START[slot].load(Ordering::SeqCst);
            if start == 0 || addr < start {
                continue;
            }
            let len = LEN[slot].load(Ordering::Acquire);
            if addr - start >= len {
                continue;
            }
            let flags = FLAGS[slot].fetch_or(LOST, Ordering::AcqRel);
            if flags & LOST != 0 {
                // Another thread is replacing it (or has): run the access again.
                return true;
            }
            let prot = if flags & WRITABLE != 0 {
                libc::PROT_READ | libc::PROT_WRITE
            } else {
                libc::PROT_READ
            };
            // SAFETY: `[start, start + len)` is a live mapping of ours: registered, and
            // not given back while this handler runs (`unregister` waits for it).
            // Replacing it in place with zeroed private pages keeps every reference into
            // it valid: they point to the structs placed there (made of stat cells,
            // atomics for which zero is a valid value: `Region::alloc` takes only such
            // structs) and to the header and layout (read with atomic loads), which
            // change as if another process had written zeros.
            let p = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    len,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            return p != libc::MAP_FAILED;
        }
        false
    }

    /// A SIGBUS that is not ours: to the action before ours, as if we were not there.
    fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo.
        let sent = unsafe { (*info).si_code } <= 0;
        let handler = PREVIOUS.get().map_or(libc::SIG_DFL, |p| p.0.sa_sigaction);
        if handler == libc::SIG_IGN && sent {
            return;
        }
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            // SAFETY: restores the default action; a fault then happens again on return
            // and kills the process with SIGBUS, as without us; a SIGBUS sent by another
            // process is raised again.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
                if sent {
                    libc::raise(libc::SIGBUS);
                }
            }
            return;
        }
        let Some(Previous(old)) = PREVIOUS.get() else {
            return;
        };
        if old.sa_flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the handler the program installed before us, with the arguments
            // the kernel gave us, as it expects them.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        } else {
            // SAFETY: as above, for a handler of one argument.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
    }
}

/// A stats struct that lives in a shared region (`Region::alloc`, in `region`): it
/// derefs to the struct, whose cells are updated in place exactly as on the heap
/// (`inc_local` is still one `inc`), and is added to a source with
/// `source.add(ValueGroup::placed(handle))` ([`ValueGroup::placed`](statsfs_core::ValueGroup::placed)). Dropping the
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

/// `F_OFD_SETLK`/`F_OFD_GETLK` on the whole file: open-file-description locks, held as
/// long as any descriptor of that open file is (so: for as long as the writer maps the
/// region, and not a moment after its death).
fn ofd_lock(
    file: &std::fs::File,
    cmd: libc::c_int,
    l_type: libc::c_int,
) -> io::Result<libc::flock> {
    // SAFETY: an all-zero `flock` is valid (whole file from offset 0, `l_pid` 0 as OFD
    // locks require); the type is set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = l_type as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    loop {
        // SAFETY: a valid descriptor and a `flock` that outlives the call, which the
        // kernel reads (and for F_OFD_GETLK writes).
        if unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut lock) } == 0 {
            return Ok(lock);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Takes the writer's lock: a write lock on the whole file (the file must be open for
/// writing, so no reader can take it); fails at once if anyone holds a lock on it.
pub(crate) fn lock_as_writer(file: &std::fs::File) -> io::Result<()> {
    ofd_lock(file, libc::F_OFD_SETLK, libc::F_WRLCK).map(|_| ())
}

/// Whether an open file holds a write lock on the file: its writer, alive. Asks without
/// taking anything (a read lock would conflict only with a write lock), so readers
/// asking never disturb one another or a writer starting.
pub(crate) fn writer_holds(file: &std::fs::File) -> io::Result<bool> {
    let lock = ofd_lock(file, libc::F_OFD_GETLK, libc::F_RDLCK)?;
    Ok(lock.l_type == libc::F_WRLCK as libc::c_short)
}
