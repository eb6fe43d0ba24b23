//! A tiny KVM virtual machine monitor (VMM).
//!
//! Each [`Vm`] owns one KVM VM, 16 KiB of guest RAM and `C` vCPUs. Every vCPU runs the
//! same hand-assembled 16-bit real-mode program ([`GUEST_CODE`]) on its own host thread
//! and the host emulates three I/O ports and one MMIO register for it. The program uses
//! no memory of its own (no stack, no variables: everything lives in registers), so any
//! number of vCPUs can run it at once.
//!
//! # The guest workload
//!
//! The workload runs in *rounds*. With `N` the iteration count the host hands out on
//! [`PORT_CONFIG`], one round of one vCPU:
//!
//! 1. reads `N` with a 32-bit `in` from [`PORT_CONFIG`] (1 [`ExitReason::IoIn`] exit);
//! 2. runs `N` iterations, counting `i` down from `N` to 1. Each iteration writes the low
//!    byte of `i` to [`PORT_DATA`] (an [`ExitReason::IoOut`] exit), writes that byte to
//!    the MMIO register at [`MMIO_ADDR`] (a [`ExitReason::MmioWrite`] exit) and reads it
//!    back (a [`ExitReason::MmioRead`] exit). When `i` is a multiple of [`HLT_EVERY`] it
//!    also executes `hlt` (a [`ExitReason::Hlt`] exit);
//! 3. writes to [`PORT_DONE`] (an [`ExitReason::IoOutCtl`] exit) and halts (a `Hlt`
//!    exit). Resumed after that `hlt`, the guest jumps back to step 1: the next round.
//!
//! The host ends a vCPU's run at the end of its last round (or when asked to stop).
//! [`expected_exit_counts`] gives the exact number of exits per reason of one round.
//!
//! # Observing exits
//!
//! Every exit, including the ones the VMM does not expect, is reported to an
//! [`ExitObserver`] with its [`ExitReason`] and the time, in nanoseconds, the host spent
//! handling it (from the return of `KVM_RUN` until the VMM is ready to re-enter the guest;
//! the observer's own cost is not included). Each vCPU thread has its own observer, so
//! observers need no locking.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kvm_bindings::{kvm_regs, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};

/// Guest-physical address of the start of guest RAM.
pub const GUEST_RAM_ADDR: u64 = 0;
/// Size of guest RAM in bytes (four 4 KiB pages).
pub const GUEST_RAM_SIZE: usize = 0x4000;
/// Guest-physical address where [`GUEST_CODE`] is loaded; the vCPUs start there with
/// `CS = 0`, `IP = GUEST_CODE_ADDR`.
pub const GUEST_CODE_ADDR: u64 = 0x1000;
/// Guest-physical address of the one-byte MMIO scratch register. It lies outside guest
/// RAM, so every guest access to it exits to the VMM as MMIO. A write stores the byte, a
/// read returns the last byte written by the same vCPU (0 before the first write).
pub const MMIO_ADDR: u64 = 0x8000;
/// Port the guest writes one byte to on every iteration.
pub const PORT_DATA: u16 = 0x10;
/// Port the guest reads its 32-bit iteration count `N` from (little-endian).
pub const PORT_CONFIG: u16 = 0x11;
/// Port the guest writes to once per round, after the last iteration, right before the
/// `hlt` that ends the round.
pub const PORT_DONE: u16 = 0x12;
/// The guest halts on every iteration whose (descending, 1-based) counter is a multiple
/// of this, i.e. `N / HLT_EVERY` times over `N` iterations.
pub const HLT_EVERY: u32 = 16;

/// The guest program: 16-bit real-mode x86 machine code, loaded at [`GUEST_CODE_ADDR`].
///
/// `0x66` is the operand-size prefix: in real mode it turns a 16-bit operation on
/// `ax`/`cx` into the 32-bit one on `eax`/`ecx`, so `N` can use the full `u32` range.
#[rustfmt::skip]
pub const GUEST_CODE: [u8; 42] = [
    // start (offset 0): one round
    0xba, 0x11, 0x00,       //  0: mov dx, 0x0011       ; dx = PORT_CONFIG
    0x66, 0xed,             //  3: in eax, dx           ; eax = N (IoIn exit)
    0x66, 0x89, 0xc1,       //  5: mov ecx, eax         ; ecx = i = N
    0xba, 0x10, 0x00,       //  8: mov dx, 0x0010       ; dx = PORT_DATA
    0x66, 0x85, 0xc9,       // 11: test ecx, ecx
    0x74, 0x13,             // 14: jz done (+19 -> 35)  ; N == 0: nothing to do
    // loop (offset 16):
    0x88, 0xc8,             // 16: mov al, cl           ; al = low byte of i
    0xee,                   // 18: out dx, al           ; IoOut exit on PORT_DATA
    0xa2, 0x00, 0x80,       // 19: mov [0x8000], al     ; MmioWrite exit (DS = 0)
    0xa0, 0x00, 0x80,       // 22: mov al, [0x8000]     ; MmioRead exit
    0xf6, 0xc1, 0x0f,       // 25: test cl, 0x0f        ; i % 16 == 0 ?
    0x75, 0x01,             // 28: jnz skip (+1 -> 31)
    0xf4,                   // 30: hlt                  ; Hlt exit, the host resumes us
    // skip (offset 31):
    0x66, 0x49,             // 31: dec ecx              ; i -= 1
    0x75, 0xed,             // 33: jnz loop (-19 -> 16)
    // done (offset 35):
    0xba, 0x12, 0x00,       // 35: mov dx, 0x0012       ; dx = PORT_DONE
    0xee,                   // 38: out dx, al           ; IoOutCtl exit: round finished
    0xf4,                   // 39: hlt                  ; Hlt exit: the host decides
    0xeb, 0xd6,             // 40: jmp start (-42 -> 0) ; resumed: the next round
];

// Compile-time checks that the hand-written immediates and jumps match the constants
// and the layout documented above.
const _: () = {
    const fn rel8_target(jump_at: usize) -> usize {
        // A short jump is 2 bytes; its target is relative to the next instruction.
        (jump_at as isize + 2 + GUEST_CODE[jump_at + 1] as i8 as isize) as usize
    }
    assert!(GUEST_CODE[1] as u16 | (GUEST_CODE[2] as u16) << 8 == PORT_CONFIG);
    assert!(GUEST_CODE[9] as u16 | (GUEST_CODE[10] as u16) << 8 == PORT_DATA);
    assert!(GUEST_CODE[36] as u16 | (GUEST_CODE[37] as u16) << 8 == PORT_DONE);
    assert!(GUEST_CODE[20] as u64 | (GUEST_CODE[21] as u64) << 8 == MMIO_ADDR);
    assert!(GUEST_CODE[23] as u64 | (GUEST_CODE[24] as u64) << 8 == MMIO_ADDR);
    assert!(GUEST_CODE[27] as u32 + 1 == HLT_EVERY);
    assert!(rel8_target(14) == 35);
    assert!(rel8_target(28) == 31);
    assert!(rel8_target(33) == 16);
    assert!(rel8_target(40) == 0);
    // Real mode with DS = 0 reaches only the first 64 KiB; the code must fit in RAM and
    // the MMIO register must not.
    assert!(MMIO_ADDR < 0x1_0000);
    assert!(MMIO_ADDR >= GUEST_RAM_ADDR + GUEST_RAM_SIZE as u64);
    assert!(GUEST_CODE_ADDR + GUEST_CODE.len() as u64 <= GUEST_RAM_ADDR + GUEST_RAM_SIZE as u64);
};

/// Why a vCPU left `KVM_RUN`, as the VMM classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// `KVM_EXIT_IO`, guest `in` (from any port).
    IoIn,
    /// `KVM_EXIT_IO`, guest `out` to [`PORT_DATA`]: the workload's port writes.
    IoOut,
    /// `KVM_EXIT_IO`, guest `out` to any other port (the end-of-round signal on
    /// [`PORT_DONE`]).
    IoOutCtl,
    /// `KVM_EXIT_MMIO`, guest read.
    MmioRead,
    /// `KVM_EXIT_MMIO`, guest write.
    MmioWrite,
    /// `KVM_EXIT_HLT`.
    Hlt,
    /// `KVM_EXIT_SHUTDOWN` (e.g. a triple fault).
    Shutdown,
    /// `KVM_RUN` returned `EINTR` or `EAGAIN` (a signal, or an immediate exit).
    Interrupted,
    /// `KVM_EXIT_FAIL_ENTRY`.
    FailEntry,
    /// `KVM_EXIT_INTERNAL_ERROR`.
    InternalError,
    /// `KVM_EXIT_SYSTEM_EVENT`.
    SystemEvent,
    /// Any other exit reason.
    Other,
}

impl ExitReason {
    /// Every reason.
    pub const ALL: [ExitReason; 12] = [
        ExitReason::IoIn,
        ExitReason::IoOut,
        ExitReason::IoOutCtl,
        ExitReason::MmioRead,
        ExitReason::MmioWrite,
        ExitReason::Hlt,
        ExitReason::Shutdown,
        ExitReason::Interrupted,
        ExitReason::FailEntry,
        ExitReason::InternalError,
        ExitReason::SystemEvent,
        ExitReason::Other,
    ];

    /// A snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExitReason::IoIn => "io_in",
            ExitReason::IoOut => "io_out",
            ExitReason::IoOutCtl => "io_out_ctl",
            ExitReason::MmioRead => "mmio_read",
            ExitReason::MmioWrite => "mmio_write",
            ExitReason::Hlt => "hlt",
            ExitReason::Shutdown => "shutdown",
            ExitReason::Interrupted => "interrupted",
            ExitReason::FailEntry => "fail_entry",
            ExitReason::InternalError => "internal_error",
            ExitReason::SystemEvent => "system_event",
            ExitReason::Other => "other",
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exact number of exits per reason one vCPU takes to run one round of
/// [`GUEST_CODE`] with `iterations` iterations (reasons not listed: zero).
pub fn expected_exit_counts(iterations: u32) -> [(ExitReason, u64); 6] {
    let n = u64::from(iterations);
    [
        (ExitReason::IoIn, 1),
        (ExitReason::IoOut, n),
        (ExitReason::IoOutCtl, 1),
        (ExitReason::MmioRead, n),
        (ExitReason::MmioWrite, n),
        (ExitReason::Hlt, n / u64::from(HLT_EVERY) + 1),
    ]
}

/// Receives every exit of one vCPU, on that vCPU's thread.
pub trait ExitObserver {
    /// Called right before the vCPU enters the guest (`KVM_RUN`).
    fn on_enter(&mut self) {}
    /// Called right after `KVM_RUN` returned, before the exit is handled.
    fn on_leave(&mut self) {}
    /// Called once per exit, after the VMM handled it, with the time the handling took.
    fn on_exit(&mut self, reason: ExitReason, handle_ns: u64);
    /// Called when the guest finished round number `round` (1-based), which took
    /// `round_ns` nanoseconds of wall-clock time.
    fn on_round(&mut self, round: u64, round_ns: u64) {
        let _ = (round, round_ns);
    }
}

/// Any `FnMut(ExitReason, u64)` closure is an observer of exits.
impl<F: FnMut(ExitReason, u64)> ExitObserver for F {
    fn on_exit(&mut self, reason: ExitReason, handle_ns: u64) {
        self(reason, handle_ns)
    }
}

/// How the run of a vCPU ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcpuOutcome {
    /// The guest finished its last round.
    Done,
    /// The caller's stop flag was set.
    Stopped,
    /// The guest shut down (`KVM_EXIT_SHUTDOWN`).
    Shutdown,
}

/// Errors of the VMM.
#[derive(Debug)]
pub enum VmmError {
    /// A KVM ioctl failed.
    Kvm {
        /// What the VMM was doing.
        op: &'static str,
        /// The error the ioctl returned.
        source: kvm_ioctls::Error,
    },
    /// Guest RAM could not be mapped.
    GuestMemory(io::Error),
    /// The guest caused an exit the VMM cannot continue from.
    UnhandledExit {
        /// The vCPU's id.
        vcpu: u32,
        /// The exit.
        reason: ExitReason,
        /// What KVM reported about it.
        detail: String,
    },
}

impl fmt::Display for VmmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmmError::Kvm { op, source } => write!(f, "{op} failed: {source}"),
            VmmError::GuestMemory(e) => write!(f, "cannot map guest memory: {e}"),
            VmmError::UnhandledExit {
                vcpu,
                reason,
                detail,
            } => write!(f, "vCPU {vcpu}: unhandled exit {reason}: {detail}"),
        }
    }
}

impl std::error::Error for VmmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VmmError::Kvm { source, .. } => Some(source),
            VmmError::GuestMemory(e) => Some(e),
            VmmError::UnhandledExit { .. } => None,
        }
    }
}

/// Adds the operation to a KVM ioctl error.
fn kvm_err(op: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
    move |source| VmmError::Kvm { op, source }
}

/// Anonymous, private host memory backing guest RAM; unmapped on drop.
#[derive(Debug)]
struct GuestMemory {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `GuestMemory` exclusively owns its mapping, which is not tied to any thread;
// the raw pointer is only dereferenced through `&mut self`.
unsafe impl Send for GuestMemory {}

impl GuestMemory {
    /// Maps `len` bytes of zeroed, page-aligned memory.
    fn new(len: usize) -> Result<Self, VmmError> {
        // SAFETY: an anonymous private mapping at an address the kernel chooses does not
        // touch any existing memory; the result is checked below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(VmmError::GuestMemory(io::Error::last_os_error()));
        }
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or_else(|| {
            VmmError::GuestMemory(io::Error::other("mmap returned a null address"))
        })?;
        Ok(GuestMemory { ptr, len })
    }

    /// Host address of the first byte, as KVM wants it.
    fn host_addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Copies `bytes` to `offset` bytes from the start of the region.
    fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), VmmError> {
        let fits = offset
            .checked_add(bytes.len())
            .is_some_and(|end| end <= self.len);
        if !fits {
            return Err(VmmError::GuestMemory(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} bytes at offset {offset:#x} do not fit in {:#x} bytes of guest RAM",
                    bytes.len(),
                    self.len
                ),
            )));
        }
        // SAFETY: the destination range was checked to lie inside the mapping, which is
        // valid for writes while `self` lives and cannot overlap the source `bytes`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            );
        }
        Ok(())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and owns, and no Rust
        // reference into it exists. The vCPU and VM fds are closed first (field order
        // of `Vm`), so no guest can run on it any more; a stats file may keep the
        // kernel's VM object alive, but never touches guest memory. A failure cannot be
        // handled here and only leaks the mapping.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// What every vCPU of a VM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Guest loop iterations per round (`N`).
    pub iterations: u32,
    /// Rounds to run; `None`: until stopped.
    pub rounds: Option<u64>,
}

/// Device state of one vCPU: the host side of the ports and the MMIO register.
#[derive(Debug)]
struct Devices {
    /// What the guest reads from [`PORT_CONFIG`].
    iterations: u32,
    /// The MMIO scratch register at [`MMIO_ADDR`].
    mmio_scratch: u8,
    /// Whether the guest wrote to [`PORT_DONE`] since its last round ended.
    done: bool,
}

/// What the run loop does after an exit.
enum Action {
    Continue,
    /// The guest halted after signalling the end of a round.
    RoundEnd,
    Finish(VcpuOutcome),
    Fail(String),
}

impl Devices {
    /// Emulates the access behind `exit`. Reads of unknown ports and addresses return
    /// all ones and writes to them are ignored, as on a PC bus.
    fn handle(&mut self, exit: VcpuExit<'_>) -> (ExitReason, Action) {
        match exit {
            VcpuExit::IoIn(port, data) => {
                data.fill(0xff);
                if port == PORT_CONFIG {
                    let value = self.iterations.to_le_bytes();
                    let n = data.len().min(value.len());
                    data[..n].copy_from_slice(&value[..n]);
                }
                (ExitReason::IoIn, Action::Continue)
            }
            VcpuExit::IoOut(PORT_DATA, _data) => (ExitReason::IoOut, Action::Continue),
            VcpuExit::IoOut(port, _data) => {
                if port == PORT_DONE {
                    self.done = true;
                }
                (ExitReason::IoOutCtl, Action::Continue)
            }
            VcpuExit::MmioRead(addr, data) => {
                data.fill(0xff);
                if addr == MMIO_ADDR {
                    if let Some(first) = data.first_mut() {
                        *first = self.mmio_scratch;
                    }
                }
                (ExitReason::MmioRead, Action::Continue)
            }
            VcpuExit::MmioWrite(addr, data) => {
                if addr == MMIO_ADDR {
                    if let Some(&first) = data.first() {
                        self.mmio_scratch = first;
                    }
                }
                (ExitReason::MmioWrite, Action::Continue)
            }
            VcpuExit::Hlt if self.done => {
                self.done = false;
                (ExitReason::Hlt, Action::RoundEnd)
            }
            VcpuExit::Hlt => (ExitReason::Hlt, Action::Continue),
            VcpuExit::Shutdown => (ExitReason::Shutdown, Action::Finish(VcpuOutcome::Shutdown)),
            VcpuExit::FailEntry(hw_reason, cpu) => (
                ExitReason::FailEntry,
                Action::Fail(format!(
                    "hardware entry failure reason {hw_reason:#x} on host CPU {cpu}"
                )),
            ),
            VcpuExit::InternalError => (
                ExitReason::InternalError,
                Action::Fail("KVM internal error".to_owned()),
            ),
            VcpuExit::SystemEvent(kind, data) => (
                ExitReason::SystemEvent,
                Action::Fail(format!("system event {kind}, data {data:?}")),
            ),
            other => (ExitReason::Other, Action::Fail(format!("{other:?}"))),
        }
    }
}

/// One vCPU, set up to run [`GUEST_CODE`] from its first instruction.
#[derive(Debug)]
pub struct Vcpu {
    id: u32,
    fd: VcpuFd,
    devices: Devices,
    rounds: Option<u64>,
    rounds_done: u64,
}

impl Vcpu {
    /// Creates vCPU `id` of `vm` in real mode at [`GUEST_CODE_ADDR`].
    fn new(vm: &VmFd, id: u32, workload: Workload) -> Result<Self, VmmError> {
        let fd = vm
            .create_vcpu(u64::from(id))
            .map_err(kvm_err("KVM_CREATE_VCPU"))?;
        // Out of reset, CS:IP points at the BIOS (CS base 0xffff0000). Use CS = 0 instead.
        let mut sregs = fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        fd.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
        let regs = kvm_regs {
            rip: GUEST_CODE_ADDR,
            // Bit 1 of RFLAGS is reserved and must be set; interrupts stay disabled.
            rflags: 0x2,
            ..Default::default()
        };
        fd.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))?;
        Ok(Vcpu {
            id,
            fd,
            devices: Devices {
                iterations: workload.iterations,
                mmio_scratch: 0,
                done: false,
            },
            rounds: workload.rounds,
            rounds_done: 0,
        })
    }

    /// The vCPU's id within its VM.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The KVM vCPU file descriptor.
    pub fn fd(&self) -> &VcpuFd {
        &self.fd
    }

    /// Runs the guest until it finishes its last round, shuts down, or `stop` is set,
    /// reporting every exit to `observer`. Calling it again after [`VcpuOutcome::Stopped`]
    /// resumes the guest where it stopped.
    ///
    /// `stop` is checked before every entry into the guest. The guest program exits
    /// several times per iteration, so a stop takes effect within one iteration; a guest
    /// that spun without exiting would need a signal to be interrupted.
    pub fn run<O: ExitObserver + ?Sized>(
        &mut self,
        observer: &mut O,
        stop: &AtomicBool,
    ) -> Result<VcpuOutcome, VmmError> {
        if self.rounds.is_some_and(|r| self.rounds_done >= r) {
            return Ok(VcpuOutcome::Done);
        }
        let mut round_start = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(VcpuOutcome::Stopped);
            }
            observer.on_enter();
            let exit = self.fd.run();
            observer.on_leave();
            let start = Instant::now();
            let (reason, action) = match exit {
                Ok(exit) => self.devices.handle(exit),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    (ExitReason::Interrupted, Action::Continue)
                }
                Err(source) => {
                    return Err(VmmError::Kvm {
                        op: "KVM_RUN",
                        source,
                    })
                }
            };
            let handle_ns = nanos(start);
            observer.on_exit(reason, handle_ns);
            match action {
                Action::Continue => {}
                Action::RoundEnd => {
                    self.rounds_done += 1;
                    observer.on_round(self.rounds_done, nanos(round_start));
                    round_start = Instant::now();
                    if self.rounds.is_some_and(|r| self.rounds_done >= r) {
                        return Ok(VcpuOutcome::Done);
                    }
                }
                Action::Finish(outcome) => return Ok(outcome),
                Action::Fail(detail) => {
                    return Err(VmmError::UnhandledExit {
                        vcpu: self.id,
                        reason,
                        detail,
                    })
                }
            }
        }
    }
}

/// Nanoseconds since `start`, saturating.
fn nanos(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A VM with its guest RAM and vCPUs, ready to run [`GUEST_CODE`].
#[derive(Debug)]
pub struct Vm {
    // Field order is drop order: the vCPUs and the VM are closed before the memory they
    // use is unmapped.
    vcpus: Vec<Vcpu>,
    fd: VmFd,
    _memory: GuestMemory,
}

impl Vm {
    /// Creates a VM with `vcpus` vCPUs, each of which will run `workload`.
    pub fn new(kvm: &Kvm, vcpus: u32, workload: Workload) -> Result<Self, VmmError> {
        let fd = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        let mut memory = GuestMemory::new(GUEST_RAM_SIZE)?;
        let code_offset = usize::try_from(GUEST_CODE_ADDR - GUEST_RAM_ADDR)
            .map_err(|e| VmmError::GuestMemory(io::Error::other(e)))?;
        memory.write(code_offset, &GUEST_CODE)?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: GUEST_RAM_ADDR,
            memory_size: GUEST_RAM_SIZE as u64,
            userspace_addr: memory.host_addr(),
        };
        // SAFETY: the region is a live mapping of exactly `memory_size` bytes that `Vm`
        // owns and unmaps only after the VM and its vCPUs are closed (field order).
        unsafe { fd.set_user_memory_region(region) }
            .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
        let vcpus = (0..vcpus)
            .map(|id| Vcpu::new(&fd, id, workload))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Vm {
            vcpus,
            fd,
            _memory: memory,
        })
    }

    /// The KVM VM file descriptor.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// The vCPUs, in id order.
    pub fn vcpus(&self) -> &[Vcpu] {
        &self.vcpus
    }

    /// The vCPUs, in id order, to run each on its own thread.
    pub fn vcpus_mut(&mut self) -> &mut [Vcpu] {
        &mut self.vcpus
    }
}
