//! # statsfs-http
//!
//! `/metrics` over HTTP: the source tree in the Prometheus text format or OpenMetrics, for
//! a Prometheus server to scrape. The text is `statsfs-text`'s encoder; this crate is the
//! server around it.
//!
//! The server is hyper 1.x on a single-threaded tokio runtime that runs on one thread of
//! its own, as the Rust Prometheus exporters do: the host process needs no async runtime,
//! and a client can hold nothing but its own connection. Every limit is in
//! [`HttpOptions`]; what each kind of bad request gets is in `docs/HARDENING.md#http-requests`.
//!
//! * At most [`HttpOptions::max_connections`] connections: a newcomer at the cap
//!   displaces the connection that has waited longest without a request, so a flood of
//!   idle connections neither exhausts descriptors nor locks a scraper out.
//! * A request head must arrive within [`HttpOptions::header_timeout`]; a response
//!   write that makes no progress for [`HttpOptions::write_timeout`] ends its connection;
//!   pipelined requests are answered one at a time from a bounded buffer.
//! * A failing `accept` (descriptors exhausted, say) is retried with a growing pause, and
//!   sheds a connection to free a descriptor; the listener never ends by itself.
//! * [`Server::shutdown`] (and dropping the server) closes the port at once and returns
//!   within [`HttpOptions::shutdown_deadline`] and the encoding of one scrape, whatever
//!   the clients do.
//! * `/metrics` is gzip-compressed for clients that ask (Prometheus does), in the format
//!   that `Accept` asks for ([`negotiate`]).
//!
//! ```no_run
//! use statsfs_core::Source;
//! let root = Source::new("kvm")?;
//! let server = statsfs_http::serve(&[root], statsfs_http::DEFAULT_ADDR, Default::default())?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! // ... the endpoint stops when `server` is dropped, or:
//! let stopped = server.shutdown();
//! println!("stopped; {} connection(s) cut", stopped.cut);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Requests: `GET` (or `HEAD`) `/metrics`; `/schema`, the catalogue of every stat; `/`
//! says where the metrics are; other paths are 404, other methods 405.
//!
//! The modules, one concept each: `options` (the limits), `listener` (accepting, the cap,
//! backoff, the stop), `activity` (which connection the cap displaces), `connection` (one
//! client's HTTP/1.1), `stall` (the write timeout),
//! `routes` (what each request gets), `negotiate` (what the client asks for).
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod activity;
mod connection;
mod listener;
pub mod negotiate;
mod options;
pub mod push;
mod routes;
mod stall;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use statsfs_core::Source;
use statsfs_text::openmetrics::Encoder;
use tokio::sync::watch;

pub use options::HttpOptions;

/// Connections the kernel queues for the endpoint before it accepts them (capped by
/// `net.core.somaxconn`): a burst of scrapers (a cap's worth reconnecting at once) waits
/// in the queue instead of having its SYNs dropped and retried a second later, as with
/// the usual 128.
const BACKLOG: u32 = 1024;

/// Where to listen unless told otherwise: loopback only, port 9477. Expose the endpoint
/// beyond the machine on purpose, by passing another address (which is logged).
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9477));

/// Why the endpoint could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address did not resolve.
    Resolve {
        /// The address as given.
        addr: String,
        /// What the resolver said.
        source: std::io::Error,
    },
    /// The address resolved to no address at all.
    NoAddress {
        /// The address as given.
        addr: String,
    },
    /// The server could not listen there (in use, no permission, ...).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The server's thread or its runtime could not start (out of threads or
    /// descriptors).
    Start {
        /// What the system said.
        source: std::io::Error,
    },
    /// An [`HttpOptions`] limit would let no scrape through, or is out of range.
    Options {
        /// The option's name (`max_connections`).
        option: &'static str,
        /// What is wrong with it.
        limit: Limit,
    },
}

/// What is wrong with one [`HttpOptions`] limit ([`Error::Options`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// It is 0: no scrape could get through.
    Zero,
    /// Longer than the longest allowed.
    TooLong {
        /// What it was.
        was: Duration,
        /// The longest allowed (a day).
        max: Duration,
    },
    /// Smaller than the least allowed.
    TooSmall {
        /// What it was.
        was: usize,
        /// The least allowed.
        min: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve { addr, source } => {
                write!(f, "cannot resolve `{addr}` to listen on: {source}")
            }
            Error::NoAddress { addr } => {
                write!(f, "`{addr}` resolves to no address to listen on")
            }
            Error::Bind { addr, source } => write!(
                f,
                "cannot serve /metrics on {addr}: {source} (is the port in use? port 0 picks a free one)"
            ),
            Error::Start { source } => write!(
                f,
                "cannot start the /metrics server: {source} (out of threads or descriptors?)"
            ),
            Error::Options { option, limit } => match limit {
                Limit::Zero => write!(
                    f,
                    "HttpOptions: {option} is 0: no scrape could get through; use at least 1"
                ),
                Limit::TooLong { was, max } => write!(
                    f,
                    "HttpOptions: {option} is {was:?}: at most {} s (a day)",
                    max.as_secs()
                ),
                Limit::TooSmall { was, min } => write!(
                    f,
                    "HttpOptions: {option} is {was}: a request head needs at least {min}"
                ),
            },
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { source, .. }
            | Error::Bind { source, .. }
            | Error::Start { source } => Some(source),
            Error::NoAddress { .. } | Error::Options { .. } => None,
        }
    }
}

/// How a stop went ([`Server::shutdown`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stopped {
    /// Connections still busy at the deadline, closed without finishing (0 when every
    /// response in flight was finished).
    pub cut: usize,
    /// How long the stop waited for responses in flight.
    pub waited: Duration,
}

/// A running `/metrics` endpoint; [`shutdown`](Server::shutdown) or drop it to stop.
pub struct Server {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    done: mpsc::Receiver<Stopped>,
    deadline: Duration,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

/// What the server thread may take beyond the deadline: ending the encode of a scrape in
/// progress and dropping the runtime.
const GRACE: Duration = Duration::from_secs(2);

impl Server {
    /// The address it listens on (with the port chosen, when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops: closes the port at once, lets responses in flight finish until
    /// [`HttpOptions::shutdown_deadline`], cuts the connections still busy, and joins the
    /// server's thread. Never waits on a client.
    pub fn shutdown(mut self) -> Stopped {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Stopped {
        let started = Instant::now();
        let Some(stop) = self.stop.take() else {
            return Stopped {
                cut: 0,
                waited: Duration::ZERO,
            };
        };
        let _ = stop.send(true);
        let stopped = match self.done.recv_timeout(self.deadline.saturating_add(GRACE)) {
            Ok(s) => s,
            Err(e) => {
                match e {
                    // Not seen in practice: the thread only encodes and polls. Leave it
                    // rather than wait on it.
                    mpsc::RecvTimeoutError::Timeout => log::warn!(
                        "statsfs http: the server thread did not stop in time; leaving it"
                    ),
                    mpsc::RecvTimeoutError::Disconnected => {
                        log::warn!("statsfs http: the server thread ended by a panic")
                    }
                }
                self.thread = None;
                return Stopped {
                    cut: 0,
                    waited: started.elapsed(),
                };
            }
        };
        if let Some(t) = self.thread.take() {
            // It sent `stopped` as its last act: this returns at once.
            let _ = t.join();
        }
        stopped
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let stopped = self.stop_inner();
        if stopped.cut > 0 {
            log::info!(
                "statsfs http: stopped; {} connection(s) still busy were cut",
                stopped.cut
            );
        }
    }
}

/// The warning logged when the endpoint listens beyond loopback: the default is loopback,
/// and anything else must be visible in the log.
fn exposure(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback())
        .then(|| format!("statsfs http: serving /metrics on {addr}, reachable from other machines"))
}

/// Serves `/metrics` for `roots` (the same roots that are mounted) and for the
/// process-global sources ([`registry::globals`](statsfs_core::registry::globals)) on
/// `addr`, from a thread of its own, with the limits of `options`, until the returned
/// [`Server`] is dropped. `/schema` serves the catalogue of every stat the binary can
/// produce ([`catalogue::write`](statsfs_text::catalogue::write)). Use [`DEFAULT_ADDR`]
/// (127.0.0.1) unless the endpoint is meant to be reached from elsewhere. Roots and
/// options come as every statsfs server takes them (`statsfs_vfs::mount` too).
///
/// ```no_run
/// use std::time::Duration;
/// use statsfs_http::{serve, HttpOptions};
/// let root = statsfs_core::Source::new("kvm")?;
/// let options = HttpOptions::default().with_shutdown_deadline(Duration::from_millis(250));
/// let server = serve(&[root], "127.0.0.1:0", options)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serve(
    roots: &[Source],
    addr: impl ToSocketAddrs + fmt::Debug,
    options: HttpOptions,
) -> Result<Server, Error> {
    options.check()?;
    let shown = format!("{addr:?}");
    let addr = addr
        .to_socket_addrs()
        .map_err(|source| Error::Resolve {
            addr: shown.clone(),
            source,
        })?
        .next()
        .ok_or(Error::NoAddress { addr: shown })?;
    let bind = |source| Error::Bind { addr, source };
    // Bound here, so a port in use is this call's error; listened on in the runtime.
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(bind)?;
    socket.set_reuseaddr(true).map_err(bind)?;
    socket.bind(addr).map_err(bind)?;
    let local = socket.local_addr().unwrap_or(addr);
    if let Some(warning) = exposure(local) {
        log::warn!("{warning}");
    }
    let app = Arc::new(routes::App {
        // The process-global statistics (`#[statsfs::global]`) are served beside the roots.
        roots: statsfs_core::registry::with_globals(roots),
        encoder: Mutex::new(Encoder::new()),
        latest: Mutex::new(Vec::new()),
        gzip: options.gzip,
    });
    let deadline = options.shutdown_deadline;
    let options = Arc::new(options);
    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, done) = mpsc::channel();
    let (started_tx, started) = mpsc::channel();
    // The runtime is made, used and dropped on the server's thread only: never on the
    // caller's, which may be inside a runtime of its own.
    let thread = std::thread::Builder::new()
        .name("statsfs-http".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let listener = {
                let _in_runtime = runtime.enter();
                socket.listen(BACKLOG)
            };
            let listener = match listener {
                Ok(l) => l,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(()));
            let stopped = runtime.block_on(listener::run(listener, app, options, stop_rx));
            // Dropping the runtime drops every connection that was cut.
            drop(runtime);
            let _ = done_tx.send(stopped);
        })
        .map_err(|source| Error::Start { source })?;
    match started.recv() {
        Ok(Ok(())) => {}
        Ok(Err(source)) => {
            let _ = thread.join();
            return Err(Error::Start { source });
        }
        Err(_) => {
            let _ = thread.join();
            let source = std::io::Error::other("the server thread ended while starting");
            return Err(Error::Start { source });
        }
    }
    Ok(Server {
        addr: local,
        stop: Some(stop),
        thread: Some(thread),
        done,
        deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_goes_unlogged() {
        for quiet in ["127.0.0.1:9477", "127.0.0.2:1", "[::1]:9477"] {
            assert_eq!(exposure(quiet.parse().unwrap()), None, "{quiet}");
        }
        for loud in ["0.0.0.0:9477", "10.1.2.3:80", "[::]:9477"] {
            let w = exposure(loud.parse().unwrap()).unwrap();
            assert!(w.contains("reachable from other machines"), "{w}");
        }
        assert_eq!(exposure(DEFAULT_ADDR), None);
    }
}
