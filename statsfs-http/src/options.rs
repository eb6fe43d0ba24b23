//! The endpoint's limits: how many connections, how long a client may take, how long
//! shutdown may wait.

use std::time::Duration;

use super::Error;

/// The longest any timeout may be: a day (a deadline far in the future overflows the
/// clock's arithmetic).
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The smallest read buffer hyper accepts; a request head must fit in it.
const MIN_HEADER_BYTES: usize = 8192;

/// Limits of a `/metrics` endpoint ([`serve_with`](super::serve_with)). The defaults
/// suit a Prometheus server scraping every few seconds on a machine where other local
/// users may be hostile; every limit holds whatever a client does.
///
/// ```
/// use std::time::Duration;
/// use statsfs_http::HttpOptions;
/// let o = HttpOptions { max_connections: 16, shutdown_deadline: Duration::from_millis(200), ..Default::default() };
/// assert!(o.gzip);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Connections open at once (default 256). A connection beyond it displaces the one
    /// that has waited longest without sending a request (then the one idle longest), so a
    /// flood of idle connections cannot lock a scraper out, and descriptors stay bounded.
    pub max_connections: usize,
    /// How long a client has to send a whole request head, counted from the connection's
    /// start and, on a kept-alive connection, from the end of the previous response
    /// (default 10 s): idle and slow-header clients are closed after it.
    pub header_timeout: Duration,
    /// How long a response write may make no progress at all before the connection is
    /// closed (default 10 s): a client that stops reading holds nothing for longer.
    pub write_timeout: Duration,
    /// Requests answered on one connection before it is closed (`Connection: close` on
    /// the last response; default 10,000). Pipelined requests are read from a buffer of
    /// [`max_header_bytes`](Self::max_header_bytes) and answered one at a time, each
    /// response written before the next request is read.
    pub max_requests_per_connection: u32,
    /// The largest request head, request line included (default and minimum 8 KiB).
    /// Larger heads, however long their URL, are answered `431`.
    pub max_header_bytes: usize,
    /// How long [`Server::shutdown`](super::Server::shutdown) (and dropping the server)
    /// lets responses in flight finish before it cuts their connections (default 1 s).
    pub shutdown_deadline: Duration,
    /// Compress `/metrics` with gzip for clients that ask for it (`Accept-Encoding`;
    /// default on).
    pub gzip: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_requests_per_connection: 10_000,
            max_header_bytes: MIN_HEADER_BYTES,
            shutdown_deadline: Duration::from_secs(1),
            gzip: true,
        }
    }
}

impl HttpOptions {
    /// Every limit must let at least one scrape through: none may be zero (but the
    /// shutdown deadline), a request head needs at least 8 KiB, and no timeout may be
    /// longer than a day.
    pub(super) fn check(&self) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::Options { reason });
        if self.max_connections == 0 {
            return bad("max_connections is 0: no scrape could connect; use at least 1".into());
        }
        if self.max_requests_per_connection == 0 {
            return bad("max_requests_per_connection is 0; use at least 1".into());
        }
        for (name, d, zero_ok) in [
            ("header_timeout", self.header_timeout, false),
            ("write_timeout", self.write_timeout, false),
            ("shutdown_deadline", self.shutdown_deadline, true),
        ] {
            if d.is_zero() && !zero_ok {
                return bad(format!("{name} is 0: every client would be cut at once"));
            }
            if d > MAX_TIMEOUT {
                return bad(format!(
                    "{name} is {d:?}: at most {} s (a day)",
                    MAX_TIMEOUT.as_secs()
                ));
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return bad(format!(
                "max_header_bytes is {}: a request head needs at least {MIN_HEADER_BYTES}",
                self.max_header_bytes
            ));
        }
        Ok(())
    }
}
