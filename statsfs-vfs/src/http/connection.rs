//! One client connection: HTTP/1.1 by hyper, with the header and write timeouts, the
//! request bound, and a graceful close when the server stops.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::options::HttpOptions;
use super::routes::{self, App};
use super::stall::Stalls;

/// What the accept loop knows of a live connection, to choose which one a newcomer
/// displaces at the cap.
pub(super) struct Activity {
    /// Requests answered so far.
    pub(super) served: AtomicU32,
    /// When the last request came, in nanoseconds since `epoch` (the accept, before any).
    pub(super) last: AtomicU64,
    pub(super) epoch: Instant,
}

impl Activity {
    pub(super) fn new(epoch: Instant) -> Self {
        Activity {
            served: AtomicU32::new(0),
            last: AtomicU64::new(nanos_since(epoch)),
            epoch,
        }
    }

    /// Whom to displace first: a connection that never sent a request before one that
    /// did, then the one idle longest.
    pub(super) fn eviction_key(&self) -> (bool, u64) {
        (
            self.served.load(Ordering::Relaxed) > 0,
            self.last.load(Ordering::Relaxed),
        )
    }
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Serves one connection until the client closes it, a limit ends it, or the server
/// stops (`stop` changes): then the response in flight is finished and the connection
/// closed.
pub(super) async fn serve(
    stream: TcpStream,
    app: Arc<App>,
    options: Arc<HttpOptions>,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Stalls::new(stream, options.write_timeout));
    let limit = options.max_requests_per_connection;
    let seen = Arc::clone(&activity);
    let service = service_fn(move |request| {
        let n = seen.served.fetch_add(1, Ordering::Relaxed) + 1;
        seen.last.store(nanos_since(seen.epoch), Ordering::Relaxed);
        let mut response = routes::answer(&app, &request);
        if n >= limit {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_header_bytes)
        .max_header_size(options.max_header_bytes)
        // A client that sends its request and closes its side (`nc -N`, health checkers)
        // still gets the response; writes stay bounded by `Stalls`.
        .half_close(true)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        // The stop first: a connection with pipelined requests buffered must not go on
        // answering them once the server stops.
        biased;
        _ = stop.changed() => {
            // A connection that never sent a whole request (idle, or a slow head) has
            // nothing in flight: it is closed at once. Others finish their response.
            if activity.served.load(Ordering::Relaxed) == 0 {
                return;
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
        r = connection.as_mut() => {
            if let Err(e) = r {
                log::debug!("http connection ended: {e}");
            }
        }
    }
}
