//! `/metrics` over HTTP: the source tree in the Prometheus text format or OpenMetrics, for
//! a Prometheus server to scrape (behind the `http` feature).
//!
//! The server is [`tiny_http`]: a synchronous server with four small dependencies and
//! no async runtime. One scrape every few seconds needs nothing more, and the vfs crate
//! stays free of tokio (which `hyper` would bring). One thread answers requests one after
//! the other, reusing one [`Encoder`](statsfs_core::openmetrics::Encoder), so a scrape allocates nothing per series once the
//! tree has been seen.
//!
//! ```no_run
//! use statsfs_core::Source;
//! let root = Source::new("kvm")?;
//! let server = statsfs_vfs::http::serve(vec![root], statsfs_vfs::http::DEFAULT_ADDR)?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! // ... the endpoint stops when `server` is dropped.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Requests: `GET` (or `HEAD`) `/metrics` answers with the format that the `Accept`
//! header asks for ([`Format::negotiate`](statsfs_core::openmetrics::Format::negotiate)); `/` says where the metrics are; other paths
//! are 404, other methods 405.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use statsfs_core::openmetrics::{Encoder, Format};
use statsfs_core::Source;
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// Where to listen unless told otherwise: loopback only, port 9477. Expose the endpoint
/// beyond the machine on purpose, by passing another address.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9477));

/// Why the endpoint could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address did not resolve, or resolved to nothing.
    Resolve {
        /// The address as given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server could not listen there (in use, no permission, ...).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Resolve { addr, reason } => {
                write!(f, "cannot resolve `{addr}` to listen on: {reason}")
            }
            Error::Bind { addr, reason } => write!(
                f,
                "cannot serve /metrics on {addr}: {reason} (is the port in use? port 0 picks a free one)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// How many requests are answered at once: a client that stops reading a response
/// holds one worker, not the endpoint.
const WORKERS: usize = 2;

/// A running `/metrics` endpoint; dropping it stops the server and joins its threads.
pub struct Server {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// The address it listens on (with the port chosen, when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Each unblock wakes one thread waiting for a request.
        for _ in 0..self.threads.len() {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Serves `/metrics` for `roots` (the same roots that are mounted) and for the
/// process-global sources ([`registry::globals`](statsfs_core::registry::globals)) on
/// `addr`, from a thread of its own, until the returned [`Server`] is dropped. `/schema`
/// serves the catalogue of every stat the binary can produce
/// ([`registry::write_catalogue`](statsfs_core::registry::write_catalogue)). Use [`DEFAULT_ADDR`]
/// (127.0.0.1) unless the endpoint is meant to be reached from elsewhere.
pub fn serve(roots: Vec<Source>, addr: impl ToSocketAddrs + fmt::Debug) -> Result<Server, Error> {
    let shown = format!("{addr:?}");
    let addr = addr
        .to_socket_addrs()
        .map_err(|e| Error::Resolve {
            addr: shown.clone(),
            reason: e.to_string(),
        })?
        .next()
        .ok_or_else(|| Error::Resolve {
            addr: shown,
            reason: "no address".to_owned(),
        })?;
    let server = tiny_http::Server::http(addr).map_err(|e| Error::Bind {
        addr,
        reason: e.to_string(),
    })?;
    let server = Arc::new(server);
    let local = server.server_addr().to_ip().unwrap_or(addr);
    // The process-global statistics (`#[statsfs::global]`) are served beside the roots.
    let roots = Arc::new(statsfs_core::registry::with_globals(&roots));
    let mut threads = Vec::with_capacity(WORKERS);
    for i in 0..WORKERS {
        let (worker_server, roots) = (server.clone(), roots.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("statsfs-http-{i}"))
            .spawn(move || {
                // Each worker keeps its own encoder, so scrapes allocate nothing per series.
                let mut encoder = Encoder::new();
                for request in worker_server.incoming_requests() {
                    answer(request, &roots, &mut encoder);
                }
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                // Stop the workers already started before giving up.
                drop(Server {
                    server,
                    addr,
                    threads,
                });
                return Err(Error::Bind {
                    addr,
                    reason: format!("cannot start the server threads: {e}"),
                });
            }
        }
    }
    Ok(Server {
        server,
        addr: local,
        threads,
    })
}

/// `r` with a header; names and values here are ASCII constants, which always convert.
fn with<R: std::io::Read>(r: Response<R>, name: &str, value: &str) -> Response<R> {
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => r.with_header(h),
        Err(()) => r,
    }
}

fn answer(request: Request, roots: &[Source], encoder: &mut Encoder) {
    let path = request.url().split('?').next().unwrap_or("");
    let method_ok = matches!(request.method(), Method::Get | Method::Head);
    // A client that hangs up early is no error of ours: results of respond are ignored.
    if !method_ok {
        let r = Response::from_string("only GET and HEAD\n").with_status_code(StatusCode(405));
        let r = with(r, "Allow", "GET, HEAD");
        let _ = request.respond(r);
        return;
    }
    match path {
        "/metrics" => {
            let accept = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str().to_owned());
            let format = Format::negotiate(accept.as_deref());
            let body = encoder.encode(roots, format);
            let r = Response::new(StatusCode(200), Vec::new(), body, Some(body.len()), None);
            let r = with(r, "Content-Type", format.content_type());
            let _ = request.respond(r);
        }
        "/schema" => {
            // Every stat the binary can produce, before any instance exists.
            let mut text = String::new();
            let _ = statsfs_core::registry::write_catalogue(&mut text);
            let r = Response::from_string(text);
            let r = with(r, "Content-Type", "text/plain; charset=utf-8");
            let _ = request.respond(r);
        }
        "/" => {
            let r = Response::from_string(
                "statsfs: metrics are at /metrics, the catalogue of every stat at /schema\n",
            );
            let r = with(r, "Content-Type", "text/plain; charset=utf-8");
            let _ = request.respond(r);
        }
        _ => {
            let r = Response::from_string("not found: metrics are at /metrics\n")
                .with_status_code(StatusCode(404));
            let _ = request.respond(r);
        }
    }
}
