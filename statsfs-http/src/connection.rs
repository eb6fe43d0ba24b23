//! One client connection: HTTP/1.1 by hyper, with the header and write timeouts, the
//! request bound, and a graceful close when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::activity::Activity;

use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::options::HttpOptions;
use super::routes::{self, App};
use super::stall::Stalls;

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
    let io = TokioIo::new(Stalls::new(
        stream,
        options.write_timeout,
        Arc::clone(&activity),
    ));
    let limit = options.max_requests_per_connection;
    let seen = Arc::clone(&activity);
    let service = service_fn(move |request| {
        let arrived = Instant::now();
        let n = seen.request();
        let app = Arc::clone(&app);
        // Boxed: `poll_without_shutdown` needs an `Unpin` future.
        Box::pin(async move {
            // One response a turn: the connection goes to the back of the runtime's
            // queue before each answer, so a client that pipelines requests without end
            // gets one answer for every other connection's one, and a scrape arriving
            // among 250 such clients waits for one round, not for all their queues.
            tokio::task::yield_now().await;
            let mut response = routes::answer(&app, &request, arrived);
            if n >= limit {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        })
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
    let mut connection = builder.serve_connection(io, service);
    let ended = tokio::select! {
        // The stop first: a connection with pipelined requests buffered must not go on
        // answering them once the server stops.
        biased;
        _ = stop.changed() => {
            // A connection that never sent a whole request (idle, or a slow head) has
            // nothing in flight: it is closed at once. Others finish their response.
            if !activity.was_served() {
                return;
            }
            std::pin::Pin::new(&mut connection).graceful_shutdown();
            std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)).await
        }
        r = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => r,
    };
    if let Err(e) = ended {
        log::debug!("http connection ended: {e}");
    }
    linger(connection.into_parts().io.into_inner().into_inner()).await;
}

/// How long, and for how many bytes, a closing connection reads what the client still
/// sends; it stops early once nothing has come for [`LINGER_QUIET`].
const LINGER: Duration = Duration::from_secs(1);
const LINGER_QUIET: Duration = Duration::from_millis(50);
const LINGER_BYTES: usize = 64 << 10;

/// Closes `stream` without losing the end of the last response: closing a socket with
/// unread input (requests pipelined past the last one answered, a body never read) makes
/// the kernel reset the connection, which can discard response bytes not yet delivered.
/// So the write side is shut first, then input is read and dropped until the client
/// closes or goes quiet, for at most [`LINGER`] and [`LINGER_BYTES`].
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match tokio::time::timeout(LINGER_QUIET, stream.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                // The client closed, the read failed, or it went quiet.
                _ => break,
            }
        }
    })
    .await;
}
