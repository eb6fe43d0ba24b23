//! The built-in load generator: `--load-concurrency` client threads of this process
//! that open connections to the server on loopback, each sending `--load-requests`
//! requests (one line, then waiting for its answer) before closing.
//!
//! Connections are paced to `--load-rate` per second over all threads (connection j is
//! due `j / rate` seconds after the start; a thread that is late starts it at once), or
//! opened as fast as the threads can (`--load-max`). Every loop is bounded: no connection
//! starts at or after the deadline (or once `stop` is set), and a connection sends no
//! further request after it; every blocking call has a timeout.
//!
//! The generator counts what it did in [`LoadCounts`], independently of statsfs: the
//! summary compares these counts with the totals the tree shows.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a client waits to connect, or for an answer, before it gives up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    /// Connections per second over all threads; `None`: as fast as possible.
    pub rate: Option<u64>,
    /// Requests per connection (at least 1).
    pub requests: u32,
    /// Client threads, each with at most one connection open.
    pub concurrency: u32,
    /// Pause between two requests of a connection.
    pub think: Duration,
}

/// What the generator did, counted by its threads.
#[derive(Debug, Default)]
pub struct LoadCounts {
    /// Connections opened (connect succeeded).
    pub opened: AtomicU64,
    /// Connections closed by the client after their requests.
    pub closed: AtomicU64,
    /// Requests answered as expected.
    pub requests: AtomicU64,
    /// Bytes sent to the server.
    pub sent: AtomicU64,
    /// Bytes received from the server.
    pub received: AtomicU64,
    /// Connects that failed, and connections that ended with an error or a wrong answer.
    pub errors: AtomicU64,
}

/// A snapshot of [`LoadCounts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// See [`LoadCounts::opened`].
    pub opened: u64,
    /// See [`LoadCounts::closed`].
    pub closed: u64,
    /// See [`LoadCounts::requests`].
    pub requests: u64,
    /// See [`LoadCounts::sent`].
    pub sent: u64,
    /// See [`LoadCounts::received`].
    pub received: u64,
    /// See [`LoadCounts::errors`].
    pub errors: u64,
}

impl LoadCounts {
    /// The counts now.
    pub fn snapshot(&self) -> Counts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            opened: get(&self.opened),
            closed: get(&self.closed),
            requests: get(&self.requests),
            sent: get(&self.sent),
            received: get(&self.received),
            errors: get(&self.errors),
        }
    }
}

/// The running generator.
pub struct Load {
    threads: Vec<JoinHandle<()>>,
    counts: Arc<LoadCounts>,
}

impl Load {
    /// Starts the client threads against `server`, until `deadline` (if any) or `stop`.
    pub fn start(
        server: SocketAddr,
        config: LoadConfig,
        deadline: Option<Instant>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Load> {
        let counts = Arc::new(LoadCounts::default());
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut threads = Vec::new();
        for t in 0..config.concurrency.max(1) {
            let client = Client {
                server,
                config,
                start,
                deadline,
                stop: Arc::clone(&stop),
                counts: Arc::clone(&counts),
                next: Arc::clone(&next),
            };
            let spawned = thread::Builder::new()
                .name(format!("load{t}"))
                .spawn(move || client.run());
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    // Stops the threads started so far (and the run: `stop` is shared).
                    stop.store(true, Ordering::Relaxed);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Load { threads, counts })
    }

    /// The counts so far.
    pub fn counts(&self) -> &LoadCounts {
        &self.counts
    }

    /// Waits for every client thread (they stop by themselves at the deadline, or at
    /// `stop`) and returns the final counts.
    pub fn join(self) -> Counts {
        for t in self.threads {
            let _ = t.join();
        }
        self.counts.snapshot()
    }
}

/// One client thread.
struct Client {
    server: SocketAddr,
    config: LoadConfig,
    start: Instant,
    deadline: Option<Instant>,
    stop: Arc<AtomicBool>,
    counts: Arc<LoadCounts>,
    /// The next connection's number, shared by the threads (for pacing).
    next: Arc<AtomicU64>,
}

impl Client {
    /// Whether no more work may start.
    fn over(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Sleeps until `until`, in slices, returning early (false) if the run is over.
    fn sleep_until(&self, until: Instant) -> bool {
        loop {
            if self.over() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            thread::sleep((until - now).min(Duration::from_millis(50)));
        }
    }

    fn run(&self) {
        loop {
            if self.over() {
                return;
            }
            if let Some(rate) = self.config.rate {
                let j = self.next.fetch_add(1, Ordering::Relaxed);
                let due = self.start + Duration::from_secs_f64(j as f64 / rate.max(1) as f64);
                if self.deadline.is_some_and(|d| due >= d) || !self.sleep_until(due) {
                    return;
                }
            }
            self.connection();
        }
    }

    /// Opens one connection, sends its requests and closes it.
    fn connection(&self) {
        let c = &self.counts;
        let stream = match TcpStream::connect_timeout(&self.server, TIMEOUT) {
            Ok(s) => s,
            Err(_) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        c.opened.fetch_add(1, Ordering::Relaxed);
        let (mut requests, mut sent, mut received) = (0, 0, 0);
        let result = self.requests(&stream, &mut requests, &mut sent, &mut received);
        drop(stream);
        c.requests.fetch_add(requests, Ordering::Relaxed);
        c.sent.fetch_add(sent, Ordering::Relaxed);
        c.received.fetch_add(received, Ordering::Relaxed);
        if result.is_err() {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        c.closed.fetch_add(1, Ordering::Relaxed);
    }

    /// The requests of one connection; counts what went through.
    fn requests(
        &self,
        stream: &TcpStream,
        requests: &mut u64,
        sent: &mut u64,
        received: &mut u64,
    ) -> io::Result<()> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut reader = BufReader::new(stream);
        let mut writer = stream;
        let (mut request, mut answer, mut expected) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..self.config.requests.max(1) {
            // The first request always goes: every connection opened is served.
            if i > 0 {
                if !self.config.think.is_zero()
                    && !self.sleep_until(Instant::now() + self.config.think)
                {
                    return Ok(());
                }
                if self.over() {
                    return Ok(());
                }
            }
            request.clear();
            writeln!(request, "GET /item/{i}")?;
            writer.write_all(&request)?;
            *sent += request.len() as u64;
            answer.clear();
            let n = reader.read_until(b'\n', &mut answer)?;
            *received += n as u64;
            expected.clear();
            writeln!(expected, "OK {}", request.len() - 1)?;
            if answer != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("answer {:?}", String::from_utf8_lossy(&answer)),
                ));
            }
            *requests += 1;
        }
        Ok(())
    }
}
