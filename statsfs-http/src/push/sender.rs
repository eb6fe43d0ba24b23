//! The sender: one thread with a current-thread tokio runtime (the runtime the endpoint
//! uses, not a second kind), encoding on an interval and sending one payload at a time.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use statsfs_core::{Descriptor, Kind, Scale, Schema, Source, Unit, ValueGroup, ValueType};
use tokio::sync::watch;

use super::{OtlpEncoder, RemoteWriteEncoder, Resource};

/// Which protocol a [`Target`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Otlp,
    RemoteWrite,
}

/// A receiver: its protocol and its `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    protocol: Protocol,
    /// `host:port`, to connect to and for the `Host` header.
    authority: String,
    path: String,
}

/// Why a URL is no [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not a URL.
    Invalid {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A scheme other than `http` (TLS is not built in: push through a local collector
    /// or proxy for `https`).
    Scheme {
        /// The URL as given.
        url: String,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Invalid { url, reason } => write!(
                f,
                "`{url}` is not a receiver's URL ({reason}); give one like http://127.0.0.1:4318"
            ),
            TargetError::Scheme { url } => write!(
                f,
                "`{url}`: only http:// is supported; send https through a local collector or proxy"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    fn parse(protocol: Protocol, url: &str, default_path: &str) -> Result<Target, TargetError> {
        let invalid = |reason: &str| TargetError::Invalid {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => {
                return Err(TargetError::Scheme {
                    url: url.to_owned(),
                })
            }
            None => return Err(invalid("no scheme")),
        }
        let host = uri.host().ok_or_else(|| invalid("no host"))?;
        let authority = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => default_path.to_owned(),
            Some(p) => p.to_owned(),
        };
        Ok(Target {
            protocol,
            authority,
            path,
        })
    }

    /// An OTLP/HTTP receiver (protobuf): `http://host:4318` posts to `/v1/metrics`
    /// unless the URL has a path of its own.
    pub fn otlp(url: &str) -> Result<Target, TargetError> {
        Target::parse(Protocol::Otlp, url, "/v1/metrics")
    }

    /// A Prometheus remote-write 1.0 receiver: `http://host:9090` posts to
    /// `/api/v1/write` unless the URL has a path of its own.
    pub fn remote_write(url: &str) -> Result<Target, TargetError> {
        Target::parse(Protocol::RemoteWrite, url, "/api/v1/write")
    }

    /// The targets of an OTLP URL and a remote-write URL, either or both given (as a
    /// program's `--otlp URL` and `--remote-write URL` options take them).
    ///
    /// ```
    /// use statsfs_http::push::Target;
    /// let t = Target::from_urls(None, Some("http://127.0.0.1:9090"))?;
    /// assert_eq!(t, [Target::remote_write("http://127.0.0.1:9090")?]);
    /// # Ok::<(), statsfs_http::push::TargetError>(())
    /// ```
    pub fn from_urls(
        otlp: Option<&str>,
        remote_write: Option<&str>,
    ) -> Result<Vec<Target>, TargetError> {
        [
            otlp.map(Target::otlp),
            remote_write.map(Target::remote_write),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// `host:port/path`, for messages.
    fn display(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

/// How a [`Pusher`] sends.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Time between two payloads (default 15 s; at least 100 ms).
    pub interval: Duration,
    /// The longest one attempt may take: connect, send, and the answer (default 10 s).
    pub timeout: Duration,
    /// Payloads kept while the receiver is down or behind (default 8, at least 1): when
    /// full, the oldest is dropped and counted (`dropped`).
    pub queue: usize,
    /// Compress OTLP payloads with gzip (default true; remote write is always snappy).
    pub gzip: bool,
    /// How long [`Pusher::shutdown`] may finish an attempt in flight and send what is
    /// left, with one last payload, before it gives up (default 5 s).
    pub shutdown_deadline: Duration,
    /// What OTLP payloads say about this process (default [`Resource::of_process`] with
    /// the process's name).
    pub resource: Option<Resource>,
    /// The name of the sender's statistics source (default `push_otlp` or
    /// `push_remote_write`).
    pub name: Option<String>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            queue: 8,
            gzip: true,
            shutdown_deadline: Duration::from_secs(5),
            resource: None,
            name: None,
        }
    }
}

/// Why [`push`] could not start.
#[derive(Debug)]
pub enum PushError {
    /// An option is out of range.
    Options {
        /// The option's name.
        option: &'static str,
        /// What would do.
        expected: &'static str,
    },
    /// The sender's thread or runtime could not start.
    Start(io::Error),
    /// The statistics source could not be made (its name is no file name).
    Source(statsfs_core::Error),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Options { option, expected } => {
                write!(
                    f,
                    "push option `{option}` is out of range: it must be {expected}"
                )
            }
            PushError::Start(e) => write!(f, "cannot start the push sender's thread: {e}"),
            PushError::Source(e) => write!(f, "the push sender's statistics: {e}"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Start(e) => Some(e),
            PushError::Source(e) => Some(e),
            PushError::Options { .. } => None,
        }
    }
}

/// A running sender; stop it with [`shutdown`](Self::shutdown) (dropping it does the same).
pub struct Pusher {
    source: Source,
    stats: Arc<PushStat>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

/// What a sender did, when it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// Payloads the receiver took.
    pub sent: u64,
    /// Payloads dropped: from a full queue, or left when the shutdown deadline passed.
    pub dropped: u64,
    /// Payloads the receiver refused (a 4xx other than 429): not sent again.
    pub rejected: u64,
}

impl Pusher {
    /// The sender's own statistics (`payloads`, `pushes`, `failures`, `dropped`,
    /// `rejected`, `queued`, `bytes`, `series`, `encode_ns`): attach it to the tree.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Stops: an attempt in flight finishes, one last payload is encoded, and what is
    /// queued is sent, until the shutdown deadline; what is left then is dropped. Returns
    /// the totals.
    pub fn shutdown(mut self) -> Stopped {
        self.stop_and_join();
        self.stats.stopped()
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl fmt::Debug for Pusher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pusher")
            .field("source", &self.source.name())
            .finish()
    }
}

/// Starts a sender of the leaves of `roots` to `target` (see the [module](super)).
pub fn push(roots: &[Source], target: Target, options: PushOptions) -> Result<Pusher, PushError> {
    if options.interval < Duration::from_millis(100) {
        return Err(PushError::Options {
            option: "interval",
            expected: "at least 100 ms",
        });
    }
    if options.timeout.is_zero() {
        return Err(PushError::Options {
            option: "timeout",
            expected: "more than 0",
        });
    }
    if options.queue == 0 {
        return Err(PushError::Options {
            option: "queue",
            expected: "at least 1",
        });
    }
    let name = options.name.clone().unwrap_or_else(|| {
        match target.protocol {
            Protocol::Otlp => "push_otlp",
            Protocol::RemoteWrite => "push_remote_write",
        }
        .to_owned()
    });
    let source = Source::new(name).map_err(PushError::Source)?;
    let stats = Arc::new(PushStat::default());
    source
        .add(ValueGroup::block(PushStat::schema(), Arc::clone(&stats)))
        .map_err(PushError::Source)?;
    let (stop, stop_rx) = watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PushError::Start)?;
    let roots = roots.to_vec();
    let s = Arc::clone(&stats);
    let thread = std::thread::Builder::new()
        .name("statsfs-push".into())
        .spawn(move || {
            let mut sender = Sender::new(roots, target, options, s);
            runtime.block_on(sender.run(stop_rx));
            // Not waiting for work left on the blocking pool (a name lookup the deadline
            // gave up on): the shutdown keeps its deadline.
            runtime.shutdown_timeout(Duration::ZERO);
        })
        .map_err(PushError::Start)?;
    Ok(Pusher {
        source,
        stats,
        stop,
        thread: Some(thread),
    })
}

/// One sender per target, each with `options`, each one's statistics attached under
/// `parent` ([`Pusher::source`]). Stops the ones it started if one fails to start.
pub fn push_each(
    roots: &[Source],
    targets: impl IntoIterator<Item = Target>,
    options: &PushOptions,
    parent: &Source,
) -> Result<Vec<Pusher>, PushError> {
    let mut pushers = Vec::new();
    for target in targets {
        let p = push(roots, target, options.clone())?;
        parent
            .add_subordinate(p.source())
            .map_err(PushError::Source)?;
        pushers.push(p);
    }
    Ok(pushers)
}

/// The sender's statistics.
#[derive(Debug, Default)]
struct PushStat {
    payloads: AtomicU64,
    pushes: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    queued: AtomicU64,
    bytes: AtomicU64,
    series: AtomicU64,
    encode_ns: AtomicU64,
}

impl PushStat {
    fn schema() -> Arc<Schema> {
        static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                let d = |name, kind, doc| {
                    Descriptor::new(name, ValueType::U64, kind)
                        .with_doc(doc)
                        .with_clearable(false)
                };
                Schema::new_runtime_packed(
                    "statsfs_push",
                    vec![
                        d("payloads", Kind::Cumulative, "Payloads encoded: pushes + dropped + rejected + queued"),
                        d("pushes", Kind::Cumulative, "Payloads the receiver took"),
                        d("failures", Kind::Cumulative, "Attempts that failed (no answer in time, no connection, 429 or 5xx) and will be tried again"),
                        d("dropped", Kind::Cumulative, "Payloads dropped unsent: the oldest of a full queue, or what was left at the shutdown deadline"),
                        d("rejected", Kind::Cumulative, "Payloads the receiver refused (4xx other than 429), not sent again"),
                        d("queued", Kind::Instant, "Payloads waiting to be sent"),
                        d("bytes", Kind::Cumulative, "Bytes of payloads the receiver took (compressed)")
                            .with_unit(Unit::Bytes, Scale::ONE),
                        d("series", Kind::Instant, "Series in the last payload"),
                        d("encode_ns", Kind::Cumulative, "Time spent encoding payloads")
                            .with_unit(Unit::Seconds, Scale::NANO),
                    ],
                )
                .expect("the push schema is valid")
            })
            .clone()
    }

    fn stopped(&self) -> Stopped {
        Stopped {
            sent: self.pushes.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
        }
    }
}

impl statsfs_core::BlockSource for PushStat {
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        let words = [
            &self.payloads,
            &self.pushes,
            &self.failures,
            &self.dropped,
            &self.rejected,
            &self.queued,
            &self.bytes,
            &self.series,
            &self.encode_ns,
        ];
        for (o, w) in out.iter_mut().zip(words) {
            *o = w.load(Relaxed);
        }
        Ok(())
    }
}

/// How an attempt ended.
enum Outcome {
    Sent,
    Rejected(StatusCode),
    Retry(String),
    /// The connection failed before any answer.
    Closed(String),
}

enum Encoding {
    Otlp(Box<OtlpEncoder>),
    RemoteWrite(Box<RemoteWriteEncoder>),
}

struct Sender {
    roots: Vec<Source>,
    target: Target,
    options: PushOptions,
    stats: Arc<PushStat>,
    encoding: Encoding,
    queue: VecDeque<Bytes>,
    conn: Option<SendRequest<Full<Bytes>>>,
    start_ns: u64,
    failures_in_a_row: u32,
    rng: u64,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// When this process started (Unix nanoseconds): the start of every cumulative value it
/// pushes, since each was 0 then (a source made later counted nothing before). From
/// `/proc/self/stat` (in the kernel's `USER_HZ`, 100 on every Linux ABI) and the boot time
/// in `/proc/stat`.
fn process_start_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name, which may hold spaces: field 3 (state) on; 22 is starttime.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    boot.checked_mul(1_000_000_000)?
        .checked_add(ticks.checked_mul(10_000_000)?)
}

impl Sender {
    fn new(roots: Vec<Source>, target: Target, options: PushOptions, stats: Arc<PushStat>) -> Self {
        let encoding = match target.protocol {
            Protocol::Otlp => {
                let resource = options.resource.clone().unwrap_or_else(|| {
                    let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
                    Resource::of_process(comm.trim())
                });
                Encoding::Otlp(Box::new(OtlpEncoder::new(resource)))
            }
            Protocol::RemoteWrite => Encoding::RemoteWrite(Box::default()),
        };
        let start_ns = process_start_ns().unwrap_or_else(unix_ns);
        Sender {
            roots,
            target,
            options,
            stats,
            encoding,
            queue: VecDeque::new(),
            conn: None,
            start_ns,
            failures_in_a_row: 0,
            rng: start_ns | 1,
        }
    }

    async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.options.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_at: Option<tokio::time::Instant> = None;
        let deadline = self.options.shutdown_deadline;
        let end = loop {
            let wake = retry_at
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                biased;
                _ = stop.changed() => break tokio::time::Instant::now() + deadline,
                _ = tick.tick() => self.enqueue(),
                _ = tokio::time::sleep_until(wake), if retry_at.is_some() => retry_at = None,
            }
            if retry_at.is_some() {
                continue;
            }
            let mut delay = None;
            let sending = self.send_queued();
            tokio::pin!(sending);
            let stopped = tokio::select! {
                biased;
                _ = stop.changed() => true,
                d = &mut sending => {
                    delay = d;
                    false
                }
            };
            if stopped {
                // An attempt in flight is finished (within the shutdown deadline), not
                // cut: its payload may be at the receiver already, and is counted.
                let end = tokio::time::Instant::now() + deadline;
                let _ = tokio::time::timeout_at(end, &mut sending).await;
                break end;
            }
            retry_at = delay.map(|d| tokio::time::Instant::now() + d);
        };
        // One last payload, and what is queued, until the deadline; then give up.
        self.enqueue();
        let _ = tokio::time::timeout_at(end, async {
            while !self.queue.is_empty() {
                if let Some(d) = self.send_queued().await {
                    tokio::time::sleep(d.min(Duration::from_millis(200))).await;
                }
            }
        })
        .await;
        let left = self.queue.len() as u64;
        self.queue.clear();
        self.stats.dropped.fetch_add(left, Relaxed);
        self.stats.queued.store(0, Relaxed);
    }

    /// Encodes a payload of the roots now and queues it, dropping the oldest if full.
    fn enqueue(&mut self) {
        let began = Instant::now();
        let now_ns = unix_ns();
        let payload = match &mut self.encoding {
            Encoding::Otlp(e) => {
                let raw = e.encode(&self.roots, self.start_ns, now_ns);
                if self.options.gzip {
                    use std::io::Write as _;
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    let _ = gz.write_all(raw);
                    Bytes::from(gz.finish().unwrap_or_default())
                } else {
                    Bytes::copy_from_slice(raw)
                }
            }
            Encoding::RemoteWrite(e) => {
                let ms = i64::try_from(now_ns / 1_000_000).unwrap_or(i64::MAX);
                Bytes::copy_from_slice(e.encode_compressed(&self.roots, ms))
            }
        };
        let series = match &self.encoding {
            Encoding::Otlp(e) => e.series(),
            Encoding::RemoteWrite(e) => e.series(),
        };
        self.stats.series.store(series as u64, Relaxed);
        self.stats.encode_ns.fetch_add(
            u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
        if self.queue.len() >= self.options.queue {
            self.queue.pop_front();
            self.stats.dropped.fetch_add(1, Relaxed);
        }
        self.queue.push_back(payload);
        self.stats.payloads.fetch_add(1, Relaxed);
        self.stats.queued.store(self.queue.len() as u64, Relaxed);
    }

    /// Sends the queue front to back; on a failure that may pass, returns the backoff
    /// before the next try.
    async fn send_queued(&mut self) -> Option<Duration> {
        while let Some(payload) = self.queue.front().cloned() {
            let outcome = match tokio::time::timeout(
                self.options.timeout,
                self.send(payload.clone()),
            )
            .await
            {
                Ok(o) => o,
                Err(_) => {
                    self.conn = None;
                    Outcome::Retry(format!("no answer within {:?}", self.options.timeout))
                }
            };
            match outcome {
                Outcome::Sent => {
                    self.queue.pop_front();
                    self.stats.pushes.fetch_add(1, Relaxed);
                    self.stats.bytes.fetch_add(payload.len() as u64, Relaxed);
                    if self.failures_in_a_row > 0 {
                        log::info!("push to {}: sending again", self.target.display());
                    }
                    self.failures_in_a_row = 0;
                }
                Outcome::Rejected(status) => {
                    self.queue.pop_front();
                    self.stats.rejected.fetch_add(1, Relaxed);
                    // The receiver answered: the connection is fine.
                    self.failures_in_a_row = 0;
                    log::warn!(
                        "push to {}: the receiver refused a payload ({status}); it is not sent again",
                        self.target.display()
                    );
                }
                Outcome::Retry(why) | Outcome::Closed(why) => {
                    self.stats.failures.fetch_add(1, Relaxed);
                    if self.failures_in_a_row == 0 {
                        log::warn!(
                            "push to {} failed: {why}; retrying with backoff",
                            self.target.display()
                        );
                    }
                    self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                    self.stats.queued.store(self.queue.len() as u64, Relaxed);
                    return Some(self.backoff());
                }
            }
            self.stats.queued.store(self.queue.len() as u64, Relaxed);
        }
        None
    }

    /// 250 ms doubling with each failure in a row, at most the interval (and 30 s),
    /// times a jitter in [0.5, 1).
    fn backoff(&mut self) -> Duration {
        let exp = self.failures_in_a_row.saturating_sub(1).min(16);
        let cap = self.options.interval.min(Duration::from_secs(30));
        let base = Duration::from_millis(250).saturating_mul(1 << exp).min(cap);
        // xorshift64: jitter only, no randomness promised.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.5 + (self.rng >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        base.mul_f64(jitter)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.target.authority)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot start HTTP: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn send(&mut self, payload: Bytes) -> Outcome {
        // A kept connection the receiver closed as it went idle fails at once: then one
        // more try on a new connection, not a counted failure.
        if let Some(c) = self.conn.take().filter(|c| !c.is_closed()) {
            match self.send_on(c, payload.clone()).await {
                Outcome::Closed(_) => {}
                done => return done,
            }
        }
        let conn = match self.connect().await {
            Ok(c) => c,
            Err(e) => return Outcome::Retry(e),
        };
        match self.send_on(conn, payload).await {
            Outcome::Closed(e) => Outcome::Retry(e),
            done => done,
        }
    }

    async fn send_on(&mut self, mut conn: SendRequest<Full<Bytes>>, payload: Bytes) -> Outcome {
        if let Err(e) = conn.ready().await {
            return Outcome::Closed(format!("connection closed: {e}"));
        }
        let mut req = Request::post(self.target.path.as_str())
            .header(hyper::header::HOST, self.target.authority.as_str())
            .header(
                hyper::header::USER_AGENT,
                concat!("statsfs/", env!("CARGO_PKG_VERSION")),
            )
            .header(hyper::header::CONTENT_TYPE, "application/x-protobuf");
        req = match self.target.protocol {
            Protocol::Otlp if self.options.gzip => {
                req.header(hyper::header::CONTENT_ENCODING, "gzip")
            }
            Protocol::Otlp => req,
            Protocol::RemoteWrite => req
                .header(hyper::header::CONTENT_ENCODING, "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0"),
        };
        let req = match req.body(Full::new(payload)) {
            Ok(r) => r,
            Err(e) => return Outcome::Rejected(StatusCode::BAD_REQUEST).also_log(&e.to_string()),
        };
        let resp = match conn.send_request(req).await {
            Ok(r) => r,
            Err(e) => return Outcome::Closed(format!("the request failed: {e}")),
        };
        let status = resp.status();
        // The answer's body is read (at most 64 KiB) so that the connection can be reused.
        let read = Limited::new(resp.into_body(), 64 * 1024).collect().await;
        if read.is_ok() {
            self.conn = Some(conn);
        }
        if status.is_success() {
            Outcome::Sent
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Outcome::Retry(format!("the receiver answered {status}"))
        } else {
            Outcome::Rejected(status)
        }
    }
}

impl Outcome {
    fn also_log(self, why: &str) -> Self {
        log::warn!("push: cannot build a request: {why}");
        self
    }
}
