//! A TCP service instrumented with `#[derive(Stats)]`: the template for services whose
//! sources come and go all the time. Every connection is a directory of the tree while
//! it is open; when it closes its values are folded into its worker's totals, so the
//! totals at the top stay exact.
//!
//! ```text
//! cargo run --release -p statsfs-netsvc                       # 10 s, 100 connections/s
//! cargo run --release -p statsfs-netsvc -- --mount /tmp/netsvc --metrics 127.0.0.1:9478
//! ls /tmp/netsvc/svc/worker0; cat /tmp/netsvc/svc/requests    # in another terminal
//! netsvc --duration 5 --load-max --load-requests 1 --load-concurrency 4   # connections/s
//! netsvc --duration 5 --load-max --load-requests 1 --load-concurrency 4 --no-stats
//! ```
//!
//! It listens on `--listen` (loopback, a free port by default) and serves a one-line
//! protocol with `--workers` threads ([`server`]). A load generator in the same process
//! ([`load`]) opens `--load-rate` connections a second (`--load-max`: as fast as it
//! can; `--load-rate 0`: none) from `--load-concurrency` client threads, each sending
//! `--load-requests` requests, for `--duration` seconds. The statistics
//! ([`stats`]) form the tree `svc/` ([`tree`]), optionally mounted (`--mount`) and served
//! to Prometheus (`--metrics`). Once a second it prints the rates read from the tree; at
//! the end the generator's counts beside the tree's totals ([`summary`]), and exits with
//! status 2 if they differ. `--no-stats` runs the same server and generator without any
//! statistics, to measure what they cost.

mod handoff;
mod load;
mod server;
mod stats;
mod summary;
mod tree;

use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{value_parser, Parser};

use crate::load::{Load, LoadConfig};
use crate::server::{Config, Server};
use crate::summary::Progress;
use crate::tree::{SvcTree, Totals, ROOT};

/// Serve a tiny line protocol on loopback, load it from the same process, and serve its
/// statistics as files and as /metrics.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to listen (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: String,
    /// Worker threads serving connections, one connection at a time each.
    #[arg(long, default_value_t = 2, value_parser = value_parser!(u32).range(1..=256))]
    workers: u32,
    /// Accepted connections that may wait for a worker; more are refused (closed at once).
    #[arg(long, default_value_t = 128, value_parser = value_parser!(u32).range(1..=65536))]
    queue: u32,
    /// Connections the load generator opens per second, over all its threads; 0: no
    /// generator (the server alone, for clients of your own).
    #[arg(long, default_value_t = 100, value_name = "N")]
    load_rate: u64,
    /// Open connections as fast as the generator's threads can (instead of
    /// --load-rate).
    #[arg(long)]
    load_max: bool,
    /// Requests each generated connection sends before it closes.
    #[arg(long, default_value_t = 10, value_name = "K", value_parser = value_parser!(u32).range(1..))]
    load_requests: u32,
    /// Generator threads, each with one connection open at a time.
    #[arg(long, default_value_t = 4, value_name = "C", value_parser = value_parser!(u32).range(1..=1024))]
    load_concurrency: u32,
    /// Pause of a generated connection between two requests, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    load_think_ms: u64,
    /// Seconds to run; 0: until Ctrl-C or SIGTERM (either also ends a timed run).
    #[arg(long, default_value_t = 10, value_name = "S")]
    duration: u64,
    /// Mount the statistics here (created if missing, removed afterwards); needs root
    /// and /dev/fuse.
    #[arg(long, value_name = "PATH")]
    mount: Option<PathBuf>,
    /// Also serve the statistics to Prometheus at http://ADDR/metrics (e.g.
    /// 127.0.0.1:9478; port 0 picks a free one; the address is printed).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Also push the statistics to an OpenTelemetry collector over OTLP/HTTP, e.g.
    /// http://127.0.0.1:4318 (docs/PUSH.md).
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Also push the statistics to a Prometheus remote-write receiver, e.g.
    /// http://127.0.0.1:9090 (docs/PUSH.md).
    #[arg(long, value_name = "URL")]
    remote_write: Option<String>,
    /// Seconds between two pushes; at least 0.1.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    push_interval: f64,
    /// Run without statistics: no source is created and no counter touched, to measure
    /// what they cost.
    #[arg(long, conflicts_with_all = ["mount", "metrics", "otlp", "remote_write"])]
    no_stats: bool,
}

/// Why the service could not run.
#[derive(Debug)]
enum AppError {
    /// The statistics tree could not be built.
    Tree(statsfs::Error),
    /// The server could not listen or start its threads.
    Server(String, std::io::Error),
    /// Mounting or unmounting at this path failed.
    Mount(PathBuf, statsfs::vfs::MountError),
    /// The /metrics endpoint could not be started.
    Metrics(statsfs::http::Error),
    /// The recorder of the `metrics` facade could not be installed.
    Recorder(statsfs::metrics::InstallError),
    /// A push target or its sender could not be set up.
    Push(String),
    /// Signal handlers could not be installed.
    Signals(std::io::Error),
    /// The load generator's threads could not be started.
    Load(std::io::Error),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Tree(e) => write!(f, "building the statistics tree: {e}"),
            AppError::Server(addr, e) => write!(f, "serving at {addr}: {e}"),
            AppError::Mount(p, e) => write!(
                f,
                "statsfs at {}: {e}\n(--mount PATH picks another place; without --mount \
                 the service runs unmounted)",
                p.display()
            ),
            AppError::Metrics(e) => write!(f, "serving /metrics: {e}"),
            AppError::Recorder(e) => write!(f, "installing the metrics recorder: {e}"),
            AppError::Push(e) => write!(f, "pushing the statistics: {e}"),
            AppError::Signals(e) => write!(f, "installing the signal handlers: {e}"),
            AppError::Load(e) => write!(f, "starting the load generator: {e}"),
        }
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AppError::Tree(e) => Some(e),
            AppError::Server(_, e) | AppError::Signals(e) | AppError::Load(e) => Some(e),
            AppError::Mount(_, e) => Some(e),
            AppError::Metrics(e) => Some(e),
            AppError::Recorder(e) => Some(e),
            AppError::Push(_) => None,
        }
    }
}

/// Runs the service; `Ok(false)` when the tree's totals differ from the generator's.
fn run(args: &Args) -> Result<bool, AppError> {
    let tree = if args.no_stats {
        None
    } else {
        let tree = SvcTree::new().map_err(AppError::Tree)?;
        // What libraries report through the `metrics` facade, under svc/lib/.
        statsfs::metrics::Recorder::builder()
            .install(tree.lib())
            .map_err(AppError::Recorder)?;
        Some(tree)
    };
    let config = Config {
        workers: args.workers as usize,
        queue: args.queue as usize,
    };
    let server = Server::start(args.listen.as_str(), config, tree.as_ref())
        .map_err(|e| AppError::Server(args.listen.clone(), e))?;
    let addr = server.local_addr();
    println!(
        "listening on {addr}, {} worker(s){}",
        args.workers,
        if tree.is_none() {
            ", statistics off"
        } else {
            ""
        }
    );

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(AppError::Signals)?;
    }

    let roots: Vec<statsfs::Source> = tree.iter().map(|t| t.root().clone()).collect();
    let mounted = match (&args.mount, &tree) {
        (Some(path), Some(_)) => {
            let m = statsfs::vfs::mount(path, &roots, Default::default())
                .map_err(|e| AppError::Mount(path.clone(), e))?;
            let p = m.path().display();
            println!("statsfs mounted at {p}");
            println!("  try: ls {p}/{ROOT}/worker0   cat {p}/{ROOT}/requests   cat {p}/{ROOT}/worker0/bytes_in");
            Some(m)
        }
        _ => None,
    };
    let metrics = match &args.metrics {
        Some(a) if tree.is_some() => {
            let s = statsfs::http::serve(&roots, a.as_str(), Default::default())
                .map_err(AppError::Metrics)?;
            println!("metrics at http://{}/metrics", s.local_addr());
            Some(s)
        }
        _ => None,
    };

    let pushers = match &tree {
        Some(t) => start_pushers(args, t)?,
        None => Vec::new(),
    };

    let start = Instant::now();
    let deadline = (args.duration > 0).then(|| start + Duration::from_secs(args.duration));
    let load_config = LoadConfig {
        rate: (!args.load_max).then_some(args.load_rate),
        requests: args.load_requests,
        concurrency: args.load_concurrency,
        think: Duration::from_millis(args.load_think_ms),
    };
    let load = if args.load_max || args.load_rate > 0 {
        println!(
            "load: {} connection(s) at a time, {} request(s) each, {}, {}",
            args.load_concurrency,
            args.load_requests,
            if args.load_max {
                "as fast as possible".to_owned()
            } else {
                format!("{} connections/s", args.load_rate)
            },
            match deadline {
                Some(_) => format!("for {} s", args.duration),
                None => "until Ctrl-C".to_owned(),
            }
        );
        Some(Load::start(addr, load_config, deadline, Arc::clone(&stop)).map_err(AppError::Load)?)
    } else {
        println!(
            "no load generator: serving {addr} {}",
            match deadline {
                Some(_) => format!("for {} s", args.duration),
                None => "until Ctrl-C".to_owned(),
            }
        );
        None
    };

    let mut progress = Progress::new(roots.first().cloned(), load.as_ref().map(|l| l.counts()));
    let mut next_tick = start + Duration::from_secs(1);
    loop {
        if stop.load(Ordering::Relaxed) {
            println!("signal received: stopping");
            break;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if now >= next_tick {
            println!("{}", progress.line());
            next_tick += Duration::from_secs(1);
        }
        let mut wait = next_tick.saturating_duration_since(now);
        if let Some(d) = deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        thread::sleep(wait.min(Duration::from_millis(50)));
    }
    drop(progress);

    // The generator first (its threads stop at the deadline or the signal), then the
    // server: every connection is closed and folded before the totals are read.
    let counts = load.map(Load::join);
    let elapsed = start.elapsed();
    server.shutdown();
    let totals = tree.as_ref().map(|t| Totals::read(t.root()));
    let ok = summary::report(counts, elapsed, totals);
    // The pushers send the final totals (within their deadline, 5 s each), then the
    // readers stop.
    for p in pushers {
        let s = p.shutdown();
        println!(
            "stopped pushing: {} payload(s) sent, {} dropped, {} refused",
            s.sent, s.dropped, s.rejected
        );
    }

    // Readers stop within a bound whatever they do: the mount first (a busy one is
    // detached at once), then /metrics (responses in flight get 1 s, then are cut).
    let unmounted = mounted.map(|m| {
        let path = m.path().to_owned();
        m.unmount()
            .map(|()| path.clone())
            .map_err(|e| AppError::Mount(path, e))
    });
    if let Some(server) = metrics {
        let stopped = server.shutdown();
        if stopped.cut > 0 {
            println!(
                "stopped serving /metrics ({} busy connection(s) cut)",
                stopped.cut
            );
        }
    }
    if let Some(path) = unmounted.transpose()? {
        println!("unmounted {}", path.display());
    }
    Ok(ok)
}

/// The senders of `--otlp` and `--remote-write`, their statistics under `svc/`.
fn start_pushers(
    args: &Args,
    tree: &SvcTree,
) -> Result<Vec<statsfs::http::push::Pusher>, AppError> {
    use statsfs::http::push::{push_each, PushOptions, Target};
    let push_err = |e: &dyn std::fmt::Display| AppError::Push(e.to_string());
    let interval = Duration::try_from_secs_f64(args.push_interval)
        .map_err(|e| AppError::Push(format!("--push-interval {}: {e}", args.push_interval)))?;
    let targets = Target::from_urls(args.otlp.as_deref(), args.remote_write.as_deref())
        .map_err(|e| push_err(&e))?;
    let options = PushOptions {
        interval,
        ..PushOptions::default()
    };
    let pushers = push_each(
        std::slice::from_ref(tree.root()),
        targets,
        &options,
        tree.root(),
    )
    .map_err(|e| push_err(&e))?;
    for p in &pushers {
        println!("pushing ({}) every {interval:?}", p.source().name());
    }
    Ok(pushers)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            // Every message already includes its causes.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
