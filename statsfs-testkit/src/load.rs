//! Clients that load an HTTP endpoint the way busy hosts do, for the endpoint's fairness
//! tests and benchmarks: [`keep_alive`] scrapers that hold connections open between
//! scrapes (and reconnect when the server closes one), and [`greedy`] ones that pipeline
//! `/metrics` requests without end and read every answer as fast as they can.
//!
//! Each load runs on one thread of its own with non-blocking sockets, and stops (and
//! says what it did) when dropped or [`stopped`](Load::stop).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a load did, once stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Connections made (the first ones and the reconnections).
    pub connections: usize,
    /// Bytes of responses read.
    pub bytes: usize,
}

/// A running load; stops when dropped.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Done>>,
}

impl Load {
    /// Stops the clients, closes their connections and says what they did.
    pub fn stop(mut self) -> Done {
        self.stop_now()
    }

    fn stop_now(&mut self) -> Done {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// One client: its connection and what it still has to send.
struct Client {
    stream: Option<TcpStream>,
    pending: Vec<u8>,
    sent: usize,
    next: Instant,
}

impl Client {
    /// Not connected, nothing to send.
    fn idle() -> Client {
        Client {
            stream: None,
            pending: Vec::new(),
            sent: 0,
            next: Instant::now(),
        }
    }
}

/// `n` well-behaved keep-alive scrapers: each connects, asks for `/` (a small answer)
/// every `every` on the same connection, reads the answers, and when the server closed
/// its connection connects again at its next request. Returns once all `n` are
/// connected and answered once.
pub fn keep_alive(addr: SocketAddr, n: usize, every: Duration) -> Load {
    keep_alive_with(addr, n, every, false)
}

/// As [`keep_alive`], but each client keeps a connection open at all times, as an HTTP
/// client's pool does: when the server closes one, it connects again at once, and sends
/// its next request on it when that is due.
pub fn pooled(addr: SocketAddr, n: usize, every: Duration) -> Load {
    keep_alive_with(addr, n, every, true)
}

fn keep_alive_with(addr: SocketAddr, n: usize, every: Duration, eager: bool) -> Load {
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: load\r\n\r\n";
    let mut clients: Vec<Client> = (0..n).map(|_| Client::idle()).collect();
    let mut done = Done::default();
    // Connected and answered once before the load is handed over.
    for c in &mut clients {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.write_all(REQUEST).expect("first request");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).expect("first answer");
        s.set_nonblocking(true).expect("non-blocking");
        done.connections += 1;
        c.stream = Some(s);
        c.next = Instant::now() + every;
    }
    run(
        clients,
        done,
        move |c, now| {
            if now >= c.next && c.sent >= c.pending.len() {
                c.pending = REQUEST.to_vec();
                c.sent = 0;
                c.next = now + every;
            }
        },
        eager,
        addr,
    )
}

/// `n` greedy scrapers: each keeps `/metrics` requests pipelined on its connection
/// without end (a new batch as soon as the last is sent) and reads every answer as fast
/// as it can, reconnecting when the server closes its connection.
pub fn greedy(addr: SocketAddr, n: usize) -> Load {
    let batch = b"GET /metrics HTTP/1.1\r\nHost: load\r\n\r\n".repeat(16);
    let clients: Vec<Client> = (0..n).map(|_| Client::idle()).collect();
    run(
        clients,
        Done::default(),
        move |c, _| {
            if c.sent >= c.pending.len() {
                c.pending = batch.clone();
                c.sent = 0;
            }
        },
        false,
        addr,
    )
}

/// Drives `clients` on a thread until stopped: `refill` says what each sends next;
/// `eager` clients connect again as soon as their connection is closed, the others when
/// they have a request to send.
fn run(
    mut clients: Vec<Client>,
    mut done: Done,
    refill: impl Fn(&mut Client, Instant) + Send + 'static,
    eager: bool,
    addr: SocketAddr,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        while !stopping.load(Ordering::Relaxed) {
            let now = Instant::now();
            let mut busy = false;
            for c in &mut clients {
                refill(c, now);
                if c.stream.is_none() {
                    // A client whose connection was closed connects again when it has
                    // a request to send, and sends it at once (as a scraper does).
                    if !eager && c.sent >= c.pending.len() {
                        continue;
                    }
                    match TcpStream::connect(addr) {
                        Ok(s) => {
                            s.set_nonblocking(true).ok();
                            c.stream = Some(s);
                            done.connections += 1;
                        }
                        Err(_) => continue,
                    }
                }
                let Some(s) = c.stream.as_mut() else { continue };
                let mut closed = false;
                if c.sent < c.pending.len() {
                    match s.write(&c.pending[c.sent..]) {
                        Ok(k) => {
                            c.sent += k;
                            busy = true;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => closed = true,
                    }
                }
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(k) => {
                            done.bytes += k;
                            busy = true;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if closed {
                    // What it had not sent goes with the connection.
                    c.stream = None;
                    c.pending.clear();
                    c.sent = 0;
                }
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        done
    });
    Load {
        stop,
        thread: Some(thread),
    }
}
