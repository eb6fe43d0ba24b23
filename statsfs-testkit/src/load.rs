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

/// `n` well-behaved keep-alive scrapers: each connects, asks for `/` (a small answer)
/// every `every` on the same connection, reads the answers, and reconnects when the
/// server closes its connection. Returns once all `n` are connected and answered once.
pub fn keep_alive(addr: SocketAddr, n: usize, every: Duration) -> Load {
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: load\r\n\r\n";
    let mut clients: Vec<Client> = (0..n)
        .map(|_| Client {
            stream: None,
            pending: Vec::new(),
            sent: 0,
            next: Instant::now(),
        })
        .collect();
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
        addr,
    )
}

/// `n` greedy scrapers: each keeps `/metrics` requests pipelined on its connection
/// without end (a new batch as soon as the last is sent) and reads every answer as fast
/// as it can, reconnecting when the server closes its connection.
pub fn greedy(addr: SocketAddr, n: usize) -> Load {
    let batch = b"GET /metrics HTTP/1.1\r\nHost: load\r\n\r\n".repeat(16);
    let clients: Vec<Client> = (0..n)
        .map(|_| Client {
            stream: None,
            pending: Vec::new(),
            sent: 0,
            next: Instant::now(),
        })
        .collect();
    run(
        clients,
        Done::default(),
        move |c, _| {
            if c.sent >= c.pending.len() {
                c.pending = batch.clone();
                c.sent = 0;
            }
        },
        addr,
    )
}

/// Drives `clients` on a thread until stopped: `refill` says what each sends next.
fn run(
    mut clients: Vec<Client>,
    mut done: Done,
    refill: impl Fn(&mut Client, Instant) + Send + 'static,
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
                if c.stream.is_none() {
                    if let Ok(s) = TcpStream::connect(addr) {
                        s.set_nonblocking(true).ok();
                        c.stream = Some(s);
                        c.pending.clear();
                        c.sent = 0;
                        done.connections += 1;
                    }
                    continue;
                }
                refill(c, now);
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
                    c.stream = None;
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
