//! A real KVM hypervisor instrumented with `#[derive(Stats)]`, its statistics mounted as
//! files in the layout of KVM's debugfs, the kernel's own statistics of the same VMs
//! mirrored beside them.
//!
//! ```text
//! cargo run --release -p statsfs-kvm                        # 2 VMs x 2 vCPUs for 10 s
//! cargo run --release -p statsfs-kvm -- --duration 0        # until Ctrl-C
//! ls /run/statsfs-kvm/kvm; cat /run/statsfs-kvm/kvm/exits   # in another terminal
//! ```
//!
//! It runs `--vms` VMs of `--vcpus` vCPUs each, one host thread per vCPU. Every vCPU
//! runs a 42-byte real-mode guest ([`vmm`]) in rounds of `--iterations` iterations
//! (a port write, an MMIO write, an MMIO read each; a `hlt` every 16) until
//! `--rounds` rounds are done or `--duration` seconds have passed. Each vCPU thread
//! counts its exits in its own [`stats::VcpuStat`]; the tree ([`tree`]) sums them per
//! VM and in total, and mirrors the kernel's `KVM_GET_STATS_FD` statistics
//! ([`kernel_stats`]). Once a second it prints the exits per second of every VM, read
//! back from the tree ([`summary`]). On exit, Ctrl-C or SIGTERM it unmounts cleanly.
//!
//! Stopping is bounded whatever readers do: once the vCPUs have seen the stop, the mount goes first (a busy mount is detached at once; its FUSE workers get
//! at most 5 s), then `/metrics` (responses in flight get 1 s, then are cut; 2 s more at
//! most for the server's thread): 8 s at worst, milliseconds in practice
//! (`tests/kvm_example.rs::sigterm_unmounts_and_stops_serving_whatever_readers_do`).
//!
//! For tests: `--rounds 1 --duration 0 --ready-file PATH` runs one round, writes PATH
//! (holding the mount point) once the workload is done and the mount is up, and then
//! waits for SIGTERM.

mod kernel_stats;
mod stats;
mod summary;
mod tree;
mod vmm;

use std::error::Error;
use std::fmt;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::{value_parser, Parser};
use kvm_ioctls::Kvm;
use statsfs::binary::Mirror;

use crate::kernel_stats::{KernelStats, VCPU_SCHEMA, VM_SCHEMA};
use crate::stats::{Home, StatsObserver, VcpuStat, VmStat};
use crate::summary::Summary;
use crate::tree::{KvmTree, VmNode};
use crate::vmm::{ExitReason, Vcpu, VcpuOutcome, Vm, Workload};
use statsfs::region::{Region, RegionError, RegionOptions};

/// Run tiny KVM guests and serve their statistics, and the kernel's, as files.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of VMs.
    #[arg(long, default_value_t = 2, value_parser = value_parser!(u32).range(1..=64))]
    vms: u32,
    /// Number of vCPUs per VM, one host thread each.
    #[arg(long, default_value_t = 2, value_parser = value_parser!(u32).range(1..=64))]
    vcpus: u32,
    /// Guest loop iterations per round (N): each makes one port write, one MMIO write
    /// and one MMIO read; every 16th also a hlt.
    #[arg(long, default_value_t = 10_000)]
    iterations: u32,
    /// Rounds each vCPU runs; without it, rounds go on until --duration ends.
    #[arg(long, value_parser = value_parser!(u64).range(1..))]
    rounds: Option<u64>,
    /// Seconds to run (and to keep the mount up once the rounds are done); 0: until
    /// Ctrl-C or SIGTERM.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Where to mount the statistics (created if missing, removed afterwards).
    #[arg(long, default_value = "/run/statsfs-kvm")]
    mount: PathBuf,
    /// Do not mount: only run the guests and print the summary.
    #[arg(long, conflicts_with = "mount")]
    no_mount: bool,
    /// Write this file (holding the mount point) once every vCPU has finished its
    /// rounds and the mount is up; for tests and scripts.
    #[arg(long, requires = "rounds")]
    ready_file: Option<PathBuf>,
    /// Also serve the tree to Prometheus at http://ADDR/metrics (e.g. 127.0.0.1:9477;
    /// port 0 picks a free one); the address is printed, and written to the ready file's
    /// second line.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Also push the tree to an OpenTelemetry collector over OTLP/HTTP, e.g.
    /// http://127.0.0.1:4318 (posts to /v1/metrics; docs/PUSH.md).
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Also push the tree to a Prometheus remote-write receiver, e.g.
    /// http://127.0.0.1:9090 (posts to /api/v1/write; docs/PUSH.md).
    #[arg(long, value_name = "URL")]
    remote_write: Option<String>,
    /// Seconds between two pushes (--otlp, --remote-write); at least 0.1.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    push_interval: f64,
    /// Also place every VM's and vCPU's statistics in a shared region at PATH, which
    /// other processes read with no system call (docs/REGION.md;
    /// `python3 examples/read_region.py PATH`); PATH must not exist (a region of a
    /// writer that is gone is replaced) nor go through a symbolic link, and is removed on
    /// exit.
    #[arg(long, value_name = "PATH")]
    region: Option<PathBuf>,
}

/// Why the hypervisor could not run.
#[derive(Debug)]
enum AppError {
    /// `/dev/kvm` cannot be opened.
    NoKvm(kvm_ioctls::Error),
    /// A VM could not be created.
    CreateVm(u32, vmm::VmmError),
    /// The statistics tree could not be built.
    Tree(statsfs::Error),
    /// The kernel's statistics could not be mirrored.
    Kernel(kernel_stats::KernelStatsError),
    /// Mounting or unmounting at this path failed.
    Mount(PathBuf, statsfs::vfs::MountError),
    /// Signal handlers could not be installed.
    Signals(std::io::Error),
    /// A vCPU thread could not be started.
    Spawn(std::io::Error),
    /// The ready file could not be written.
    ReadyFile(PathBuf, std::io::Error),
    /// vCPUs failed while running.
    Vcpus(Vec<String>),
    /// A push target or its sender could not be set up.
    Push(String),
    /// The /metrics endpoint could not be started.
    Metrics(statsfs::http::Error),
    /// The shared region could not be made or filled.
    Region(RegionError),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::NoKvm(e) => write!(
                f,
                "cannot open /dev/kvm: {e}\n\
                 This example runs real virtual machines and needs KVM: a Linux host with \
                 hardware (or nested) virtualization, the kvm module loaded, and read-write \
                 access to /dev/kvm. Nothing was run."
            ),
            AppError::CreateVm(v, e) => write!(f, "creating VM {v}: {e}"),
            AppError::Tree(e) => write!(f, "building the statistics tree: {e}"),
            AppError::Kernel(e) => write!(f, "{e}"),
            AppError::Mount(p, e) => write!(
                f,
                "statsfs at {}: {e}\n(--mount PATH picks another place, --no-mount runs \
                 without mounting)",
                p.display()
            ),
            AppError::Signals(e) => write!(f, "installing the signal handlers: {e}"),
            AppError::Spawn(e) => write!(f, "starting a vCPU thread: {e}"),
            AppError::ReadyFile(p, e) => write!(f, "writing {}: {e}", p.display()),
            AppError::Vcpus(errors) => write!(f, "vCPUs failed: {}", errors.join("; ")),
            AppError::Metrics(e) => write!(f, "serving /metrics: {e}"),
            AppError::Push(e) => write!(f, "pushing the statistics: {e}"),
            AppError::Region(e) => write!(f, "the shared region: {e}"),
        }
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AppError::NoKvm(e) => Some(e),
            AppError::CreateVm(_, e) => Some(e),
            AppError::Tree(e) => Some(e),
            AppError::Kernel(e) => Some(e),
            AppError::Mount(_, e) => Some(e),
            AppError::Signals(e) | AppError::Spawn(e) | AppError::ReadyFile(_, e) => Some(e),
            AppError::Vcpus(_) | AppError::Push(_) => None,
            AppError::Metrics(e) => Some(e),
            AppError::Region(e) => Some(e),
        }
    }
}

/// One VM with everything that belongs to it.
struct Machine {
    name: String,
    vm: Vm,
    node: VmNode,
    stats: Home<VmStat>,
    vcpu_stats: Vec<Home<VcpuStat>>,
}

/// Writes `contents` to `path` atomically (a temporary file renamed into place), so a
/// reader never sees half of it.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// Creates the VMs and the tree.
fn build(
    args: &Args,
    kvm: &Kvm,
    tree: &KvmTree,
    region: Option<&Region>,
) -> Result<Vec<Machine>, AppError> {
    let workload = Workload {
        iterations: args.iterations,
        rounds: args.rounds,
    };
    let mirror = Mirror::new();
    let mut machines = Vec::new();
    for v in 0..args.vms {
        let vm = Vm::new(kvm, args.vcpus, workload).map_err(|e| AppError::CreateVm(v, e))?;
        // KVM's debugfs names a VM `<pid>-<fd>`: unique, unlike the kernel's stats id
        // (`kvm-<tid>`, the creating thread).
        let name = format!("{}-{}", std::process::id(), vm.fd().as_raw_fd());
        let with_kernel = kernel_stats::supported(vm.fd());
        if v == 0 && !with_kernel {
            println!(
                "note: this kernel has no KVM_GET_STATS_FD (Linux < 5.14): \
                 no kernel/ directories"
            );
        }
        let stats = Home::new(region, VmStat::default()).map_err(AppError::Region)?;
        stats.online_vcpus.set(args.vcpus);
        stats.guest_ram_bytes.set(vmm::GUEST_RAM_SIZE as u64);
        let vm_kernel = with_kernel
            .then(|| KernelStats::open(&mirror, VM_SCHEMA, vm.fd(), &format!("VM {name}")))
            .transpose()
            .map_err(AppError::Kernel)?;
        let node = tree
            .add_vm(&name, &stats, vm_kernel.as_ref())
            .map_err(AppError::Tree)?;
        let mut vcpu_stats = Vec::new();
        for vcpu in vm.vcpus() {
            let s = Home::new(region, VcpuStat::default()).map_err(AppError::Region)?;
            let k = with_kernel
                .then(|| {
                    let what = format!("VM {name} vCPU {}", vcpu.id());
                    KernelStats::open(&mirror, VCPU_SCHEMA, vcpu.fd(), &what)
                })
                .transpose()
                .map_err(AppError::Kernel)?;
            tree.add_vcpu(&node, vcpu.id(), &s, k.as_ref())
                .map_err(AppError::Tree)?;
            vcpu_stats.push(s);
        }
        machines.push(Machine {
            name,
            vm,
            node,
            stats,
            vcpu_stats,
        });
    }
    Ok(machines)
}

/// The region, whose file goes when the run ends (readers that mapped it keep reading
/// the last values): the file it made, wherever its path points by then.
struct RemoveOnDrop(Region);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.0.lost() {
            eprintln!(
                "warning: {} was cut short by another process during the run: its readers \
                 lost the values from then on (the run itself went on)",
                self.0.path().display()
            );
        }
        if let Err(e) = self.0.remove() {
            eprintln!("warning: {e}");
        }
    }
}

/// What a vCPU thread reports to.
struct VcpuCtx<'a> {
    stats: Home<VcpuStat>,
    what: String,
    finished: &'a AtomicUsize,
    errors: &'a Mutex<Vec<String>>,
    failed: &'a AtomicBool,
    stop: &'a AtomicBool,
}

/// Starts `vcpu`'s thread, feeding its exits to `observer`.
fn spawn_vcpu<'scope, 'env>(
    scope: &'scope thread::Scope<'scope, 'env>,
    vcpu: &'scope mut Vcpu,
    mut observer: StatsObserver<'scope>,
    ctx: VcpuCtx<'scope>,
) -> std::io::Result<thread::ScopedJoinHandle<'scope, ()>> {
    thread::Builder::new()
        .name(format!("vcpu{}", vcpu.id()))
        .spawn_scoped(scope, move || {
            let VcpuCtx {
                stats,
                what,
                finished,
                errors,
                failed,
                stop,
            } = ctx;
            stats.generic.runnable.set(1);
            let result = vcpu.run(&mut observer, stop);
            stats.generic.runnable.set(0);
            let failure = match result {
                Ok(VcpuOutcome::Done | VcpuOutcome::Stopped) => None,
                Ok(VcpuOutcome::Shutdown) => Some(format!("{what}: the guest shut down")),
                Err(e) => Some(format!("{what}: {e}")),
            };
            if let Some(f) = failure {
                errors.lock().unwrap_or_else(|e| e.into_inner()).push(f);
                failed.store(true, Ordering::Relaxed);
            }
            finished.fetch_add(1, Ordering::Release);
        })
}

/// Runs every vCPU on its own thread and prints the summary once a second until the
/// run ends: `--duration` passed, a signal came, or a vCPU failed.
fn run_vcpus(
    args: &Args,
    machines: &mut [Machine],
    summary: &mut Summary,
    stop: &AtomicBool,
    mount: Option<&Path>,
    metrics: Option<std::net::SocketAddr>,
) -> Result<(), AppError> {
    let total: usize = machines.iter().map(|m| m.vcpu_stats.len()).sum();
    let finished = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::<String>::new());
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = (args.duration > 0).then(|| start + Duration::from_secs(args.duration));
    thread::scope(|scope| -> Result<(), AppError> {
        for m in machines.iter_mut() {
            for (vcpu, stats) in m.vm.vcpus_mut().iter_mut().zip(&m.vcpu_stats) {
                let what = format!("VM {} vCPU {}", m.name, vcpu.id());
                let ctx = VcpuCtx {
                    stats: stats.clone(),
                    what,
                    finished: &finished,
                    errors: &errors,
                    failed: &failed,
                    stop,
                };
                let observer = StatsObserver::new(stats, &m.stats);
                let spawned = spawn_vcpu(scope, vcpu, observer, ctx);
                if let Err(e) = spawned {
                    stop.store(true, Ordering::Relaxed);
                    return Err(AppError::Spawn(e));
                }
            }
        }
        let mut next_tick = start + Duration::from_secs(1);
        let mut workload_done = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                println!("signal received: stopping");
                break;
            }
            if failed.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            if now >= next_tick {
                if !workload_done {
                    println!("{}", summary.line());
                }
                next_tick += Duration::from_secs(1);
            }
            if !workload_done && finished.load(Ordering::Acquire) == total {
                workload_done = true;
                println!("{}", summary.line());
                let until = match deadline {
                    Some(_) => format!("for the rest of --duration {} s", args.duration),
                    None => "until Ctrl-C or SIGTERM".to_owned(),
                };
                match mount {
                    Some(p) => println!("workload done; {} stays mounted {until}", p.display()),
                    None => println!("workload done; waiting {until}"),
                }
                if let Some(ready) = &args.ready_file {
                    let contents = mount.map_or(String::new(), |p| p.display().to_string());
                    let metrics = metrics.map_or(String::new(), |a| a.to_string());
                    write_atomically(ready, &format!("{contents}\n{metrics}\n"))
                        .map_err(|e| AppError::ReadyFile(ready.clone(), e))?;
                }
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            thread::sleep(wait.min(Duration::from_millis(50)));
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Vcpus(errors))
    }
}

/// Prints what each VM did, read back from the tree, and, when every vCPU ran all its
/// rounds, checks each vCPU's exits against what the guest program makes.
fn print_totals(args: &Args, tree: &KvmTree, machines: &[Machine]) {
    let get = |s: &statsfs::Source, name: &str| s.get(name).map_or(0, |v| v.as_u64());
    for m in machines {
        let vm = m.node.source();
        println!(
            "{}: {} exits (io_in {}, io_out {}, io_out_ctl {}, mmio_read {}, mmio_write {}, \
             halt_exits {}), {} rounds",
            vm.name(),
            get(vm, "exits"),
            get(vm, "exits_by_reason_io_in"),
            get(vm, "exits_by_reason_io_out"),
            get(vm, "exits_by_reason_io_out_ctl"),
            get(vm, "exits_by_reason_mmio_read"),
            get(vm, "exits_by_reason_mmio_write"),
            get(vm, "halt_exits"),
            get(vm, "rounds"),
        );
    }
    println!(
        "total: {} exits seen by the VMM, {} counted by the kernel",
        get(tree.vmm(), "exits"),
        get(tree.kernel(), "exits")
    );
    let Some(rounds) = args.rounds else { return };
    let all_done = machines
        .iter()
        .flat_map(|m| &m.vcpu_stats)
        .all(|s| s.rounds.get() == rounds);
    if !all_done {
        return;
    }
    let expected = vmm::expected_exit_counts(args.iterations);
    let mut mismatches = Vec::new();
    for m in machines {
        for (c, s) in m.vcpu_stats.iter().enumerate() {
            for reason in ExitReason::ALL {
                let want = expected
                    .iter()
                    .find(|(r, _)| *r == reason)
                    .map_or(0, |&(_, n)| n * rounds);
                let got = stats::exits_of(s, reason);
                if got != want {
                    mismatches.push(format!(
                        "{} vcpu{c} {reason}: {got}, expected {want}",
                        m.name
                    ));
                }
            }
        }
    }
    if mismatches.is_empty() {
        println!("verified: every vCPU's exits by reason match the guest program exactly");
    } else {
        println!("MISMATCH: {}", mismatches.join("; "));
    }
}

fn run(args: &Args) -> Result<(), AppError> {
    let kvm = Kvm::new().map_err(AppError::NoKvm)?;
    let tree = KvmTree::new().map_err(AppError::Tree)?;
    let region = match &args.region {
        Some(path) => {
            let r = Region::create(path, RegionOptions::default()).map_err(AppError::Region)?;
            // Every root, so the layout follows the tree (the kernel's mirrors are not
            // placed in the region: only the VMM's own structs are listed).
            r.publish(&tree.roots());
            println!("statsfs region at {}", path.display());
            Some(RemoveOnDrop(r))
        }
        None => None,
    };
    let mut machines = build(args, &kvm, &tree, region.as_ref().map(|r| &r.0))?;
    println!(
        "running {} VM(s) x {} vCPU(s), {} iterations per round, {}, {}",
        args.vms,
        args.vcpus,
        args.iterations,
        args.rounds
            .map_or("rounds until the end".to_owned(), |r| format!(
                "{r} round(s)"
            )),
        if args.duration == 0 {
            "until Ctrl-C".to_owned()
        } else {
            format!("for {} s", args.duration)
        }
    );

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(AppError::Signals)?;
    }

    let mounted = if args.no_mount {
        None
    } else {
        // Detaches a stale mount of a killed run, creates the mount point if missing (and
        // removes it again after the unmount); owned by this process's user.
        // The mount says where the region is (`<mount>/.region`), when there is one.
        let mut options = statsfs::vfs::MountOptions::default();
        if let Some(region) = &args.region {
            options = options.with_region(region);
        }
        let m = statsfs::vfs::mount(&args.mount, &tree.roots(), options)
            .map_err(|e| AppError::Mount(args.mount.clone(), e))?;
        let p = m.path().display();
        println!("statsfs mounted at {p}");
        println!(
            "  try: ls {p}/{kvm}   cat {p}/{kvm}/exits   cat {p}/{vmm}/{vm}/vcpu0/exits_by_reason_io_out   \
             examples/kvm/kvm-stat.sh {p}",
            kvm = tree::KERNEL_ROOT,
            vmm = tree::VMM_ROOT,
            vm = machines[0].name
        );
        Some(m)
    };

    let metrics = match &args.metrics {
        Some(addr) => {
            let server = statsfs::http::serve(&tree.roots(), addr.as_str(), Default::default())
                .map_err(AppError::Metrics)?;
            println!("metrics at http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };

    let pushers = start_pushers(args, &tree)?;

    let vm_sources = machines.iter().map(|m| m.node.source().clone()).collect();
    let kernel = machines
        .iter()
        .any(|m| m.node.kernel().is_some())
        .then(|| tree.kernel().clone());
    let mut summary = Summary::new(tree.vmm().clone(), vm_sources, kernel);

    let result = run_vcpus(
        args,
        &mut machines,
        &mut summary,
        &stop,
        mounted.as_ref().map(|m| m.path()),
        metrics.as_ref().map(|s| s.local_addr()),
    );
    // The pushers send their last payload first (within their deadline, 5 s each). Readers
    // go next, each within a bound whatever they do: the mount (a busy one is detached
    // at once), then /metrics (responses in flight get the server's shutdown deadline,
    // 1 s, and are cut after it). The totals are read from the tree after.
    for p in pushers {
        let s = p.shutdown();
        println!(
            "stopped pushing: {} payload(s) sent, {} dropped, {} refused",
            s.sent, s.dropped, s.rejected
        );
    }
    let unmounted = mounted.map(|m| {
        let path = m.path().to_owned();
        m.unmount()
            .map(|()| path.clone())
            .map_err(|e| AppError::Mount(path, e))
    });
    if let Some(server) = metrics {
        let stopped = server.shutdown();
        println!("stopped serving /metrics{}", cut_note(stopped.cut));
    }
    if let Some(path) = unmounted.transpose()? {
        println!("unmounted {}", path.display());
    }
    print_totals(args, &tree, &machines);
    result
}

/// The senders of `--otlp` and `--remote-write`, their statistics under the VMM's root.
fn start_pushers(
    args: &Args,
    tree: &KvmTree,
) -> Result<Vec<statsfs::http::push::Pusher>, AppError> {
    use statsfs::http::push::{push_each, PushOptions, Target};
    let push_err = |e: &dyn std::fmt::Display| AppError::Push(e.to_string());
    let interval = std::time::Duration::try_from_secs_f64(args.push_interval)
        .map_err(|e| AppError::Push(format!("--push-interval {}: {e}", args.push_interval)))?;
    let targets = Target::from_urls(args.otlp.as_deref(), args.remote_write.as_deref())
        .map_err(|e| push_err(&e))?;
    let options = PushOptions {
        interval,
        ..PushOptions::default()
    };
    let pushers =
        push_each(&tree.roots(), targets, &options, tree.vmm()).map_err(|e| push_err(&e))?;
    for p in &pushers {
        println!("pushing ({}) every {interval:?}", p.source().name());
    }
    Ok(pushers)
}

/// `" (n connection(s) cut)"` when a stop cut clients that were still busy.
fn cut_note(cut: usize) -> String {
    if cut == 0 {
        String::new()
    } else {
        format!(" ({cut} busy connection(s) cut)")
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every message already includes its causes.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
