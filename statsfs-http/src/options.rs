//! The endpoint's limits: how many connections, how long a client may take, how long
//! shutdown may wait.

use std::time::Duration;

use super::{Error, Limit};

/// The longest any timeout may be: a day (a deadline far in the future overflows the
/// clock's arithmetic).
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The smallest read buffer hyper accepts; a request head must fit in it.
const MIN_HEADER_BYTES: usize = 8192;

/// Limits of a `/metrics` endpoint ([`serve`](super::serve)). The defaults
/// suit a Prometheus server scraping every few seconds on a machine where other local
/// users may be hostile; every limit holds whatever a client does.
///
/// ```
/// use std::time::Duration;
/// use statsfs_http::HttpOptions;
/// let o = HttpOptions::default().with_max_connections(16).with_shutdown_deadline(Duration::from_millis(200));
/// assert!(o.gzip);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// Options are set one by one, from the defaults: the struct is `#[non_exhaustive]`, so
/// options added later break no one.
impl HttpOptions {
    /// These options with [`max_connections`](Self::max_connections) set to `max_connections`.
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// These options with [`header_timeout`](Self::header_timeout) set to `header_timeout`.
    #[must_use]
    pub fn with_header_timeout(mut self, header_timeout: Duration) -> Self {
        self.header_timeout = header_timeout;
        self
    }

    /// These options with [`write_timeout`](Self::write_timeout) set to `write_timeout`.
    #[must_use]
    pub fn with_write_timeout(mut self, write_timeout: Duration) -> Self {
        self.write_timeout = write_timeout;
        self
    }

    /// These options with [`max_requests_per_connection`](Self::max_requests_per_connection) set to `max_requests_per_connection`.
    #[must_use]
    pub fn with_max_requests_per_connection(mut self, max_requests_per_connection: u32) -> Self {
        self.max_requests_per_connection = max_requests_per_connection;
        self
    }

    /// These options with [`max_header_bytes`](Self::max_header_bytes) set to `max_header_bytes`.
    #[must_use]
    pub fn with_max_header_bytes(mut self, max_header_bytes: usize) -> Self {
        self.max_header_bytes = max_header_bytes;
        self
    }

    /// These options with [`shutdown_deadline`](Self::shutdown_deadline) set to `shutdown_deadline`.
    #[must_use]
    pub fn with_shutdown_deadline(mut self, shutdown_deadline: Duration) -> Self {
        self.shutdown_deadline = shutdown_deadline;
        self
    }

    /// These options with [`gzip`](Self::gzip) set to `gzip`.
    #[must_use]
    pub fn with_gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }
}

impl HttpOptions {
    /// Every limit must let at least one scrape through: none may be zero (but the
    /// shutdown deadline), a request head needs at least 8 KiB, and no timeout may be
    /// longer than a day.
    pub(super) fn check(&self) -> Result<(), Error> {
        let bad = |option, limit| Err(Error::Options { option, limit });
        if self.max_connections == 0 {
            return bad("max_connections", Limit::Zero);
        }
        if self.max_requests_per_connection == 0 {
            return bad("max_requests_per_connection", Limit::Zero);
        }
        for (name, d, zero_ok) in [
            ("header_timeout", self.header_timeout, false),
            ("write_timeout", self.write_timeout, false),
            ("shutdown_deadline", self.shutdown_deadline, true),
        ] {
            if d.is_zero() && !zero_ok {
                return bad(name, Limit::Zero);
            }
            if d > MAX_TIMEOUT {
                let limit = Limit::TooLong {
                    was: d,
                    max: MAX_TIMEOUT,
                };
                return bad(name, limit);
            }
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            let limit = Limit::TooSmall {
                was: self.max_header_bytes,
                min: MIN_HEADER_BYTES,
            };
            return bad("max_header_bytes", limit);
        }
        Ok(())
    }
}
