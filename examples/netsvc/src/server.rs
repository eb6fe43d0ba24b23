//! The service: a TCP listener on loopback and a pool of worker threads, std only.
//!
//! The protocol is one line each way: the client sends a line (a request, at most
//! [`MAX_LINE`] bytes with its `\n`), the server answers `OK <n>\n`, `n` being the
//! request's length without the `\n`, and waits for the next line; the client closes
//! the connection when it is done. A longer line is answered `ERR line too long\n` and
//! the connection closed.
//!
//! One thread accepts connections and puts them in a bounded queue (`--queue`); a
//! connection that finds the queue full is closed at once (`refused`). Each of the
//! `--workers` threads takes the next connection from the queue and serves it to its end
//! with blocking I/O, then takes the next one.
//!
//! With statistics on, each worker adds a source for a connection when it takes it over
//! and folds it away when it ends ([`crate::tree`]); with them off (`--no-stats`) no
//! source exists, no cell is touched and no clock is read.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::handoff::{self, Giver, Refused, Taker};
use crate::stats::{ConnStat, ListenerStat, WorkerStat};
use crate::tree::{SvcTree, WorkerNode};

/// The longest request line, `\n` included.
pub const MAX_LINE: usize = 4096;

/// How often a worker waiting for a request line looks whether the server stops.
const POLL: Duration = Duration::from_millis(100);

/// How the server runs.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Worker threads.
    pub workers: usize,
    /// Accepted connections that may wait for a worker; more are refused.
    pub queue: usize,
}

/// An accepted connection on its way to a worker.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
}

/// The running server; [`Server::shutdown`] stops it.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Listens at `addr` and starts the threads; with `tree`, adds `listener0/` and
    /// `worker<i>/` to it, and a source per connection while it is open.
    pub fn start(
        addr: impl ToSocketAddrs,
        config: Config,
        tree: Option<&SvcTree>,
    ) -> io::Result<Server> {
        let socket = TcpListener::bind(addr)?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let tree_err = |e: statsfs::Error| io::Error::other(format!("statistics tree: {e}"));
        let listener_stats = match tree {
            Some(t) => {
                let s = Arc::new(ListenerStat::default());
                t.add_listener(0, Arc::clone(&s)).map_err(tree_err)?;
                Some(s)
            }
            None => None,
        };
        // The queue reports through the `metrics` facade when statistics are on.
        let (tx, rx) = handoff::channel::<Accepted>(config.queue, tree.is_some());
        let mut workers = Vec::new();
        for i in 0..config.workers.max(1) {
            let node = match tree {
                Some(t) => Some(
                    t.add_worker(i, Arc::new(WorkerStat::default()))
                        .map_err(tree_err)?,
                ),
                None => None,
            };
            let (rx, stop, queued) = (rx.clone(), Arc::clone(&stop), listener_stats.clone());
            workers.push(
                thread::Builder::new()
                    .name(format!("worker{i}"))
                    .spawn(move || work(&rx, node.as_ref(), queued.as_deref(), &stop))?,
            );
        }
        let acceptor = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("acceptor".into())
                .spawn(move || accept(&socket, &tx, listener_stats.as_deref(), &stop))?
        };
        Ok(Server {
            addr,
            stop,
            acceptor,
            workers,
        })
    }

    /// The address it listens at.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the workers finish the connections they have and the ones
    /// queued (a client still connected is closed within [`POLL`] once it sends nothing),
    /// and waits for every thread.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the acceptor from accept(); it sees `stop` and drops this connection.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = self.acceptor.join();
        for w in self.workers {
            let _ = w.join();
        }
    }
}

/// The acceptor thread: accepts until `stop`, queueing each connection for a worker.
fn accept(
    socket: &TcpListener,
    queue: &Giver<Accepted>,
    stats: Option<&ListenerStat>,
    stop: &AtomicBool,
) {
    let mut next_id = 0u64;
    loop {
        let (stream, peer) = match socket.accept() {
            Ok(c) => c,
            Err(e) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Some(s) = stats {
                    s.accept_errors.inc_local();
                }
                // Out of descriptors or memory: do not spin.
                if e.kind() != io::ErrorKind::Interrupted {
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            // The shutdown's wake-up, or a client arriving as the server stops.
            return;
        }
        next_id += 1;
        if let Some(s) = stats {
            s.accepted.inc_local();
            // Raised before a worker can take it (and lower it).
            s.queued.add(1);
            s.max_queued.record_local(s.queued.get());
        }
        let conn = Accepted {
            stream,
            peer,
            id: next_id,
        };
        match queue.offer(conn) {
            Ok(()) => {}
            Err(Refused::Full(conn)) => {
                if let Some(s) = stats {
                    s.queued.sub(1);
                    s.refused.inc_local();
                }
                drop(conn);
            }
            Err(Refused::Closed) => return,
        }
    }
}

/// A worker thread: serves queued connections one after the other until the queue is
/// closed and empty.
fn work(
    queue: &Taker<Accepted>,
    node: Option<&WorkerNode>,
    queued: Option<&ListenerStat>,
    stop: &AtomicBool,
) {
    loop {
        let Some(conn) = queue.take() else { return };
        if let Some(q) = queued {
            q.queued.sub(1);
        }
        match node {
            Some(w) => serve_counted(w, conn, stop),
            None => {
                let _ = handle(&conn.stream, None, stop);
            }
        }
    }
}

/// Serves `conn` with its own source under worker `w`.
fn serve_counted(w: &WorkerNode, conn: Accepted, stop: &AtomicBool) {
    let ws = w.stats();
    ws.active.add_local(1);
    let node = match w.open(conn.id, Some(conn.peer)) {
        Ok(n) => Some(n),
        Err(e) => {
            eprintln!("connection {}: no statistics: {e}", conn.id);
            None
        }
    };
    let result = handle(&conn.stream, node.as_ref().map(|n| n.stats()), stop);
    drop(conn); // the socket closes here
    if result.is_err() {
        ws.errors.inc_local();
    }
    if let Some(n) = node {
        if let Err(e) = w.close(n) {
            eprintln!("removing a connection's source: {e}");
        }
    }
    ws.connections.inc_local();
    ws.active.sub_local(1);
}

/// Whether `e` is a read timeout (the kind depends on the platform).
fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Answers the requests of one connection until the client closes it (or the server
/// stops and the client sends nothing for [`POLL`]). Counts into `stats`, if given.
/// An error is an I/O error, or a request line longer than [`MAX_LINE`]
/// (`InvalidData`).
pub fn handle(stream: &TcpStream, stats: Option<&ConnStat>, stop: &AtomicBool) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let mut reader = BufReader::with_capacity(MAX_LINE, stream);
    let mut writer = stream;
    let mut line = Vec::with_capacity(256);
    let mut answer = Vec::with_capacity(32);
    loop {
        let room = (MAX_LINE - line.len()) as u64;
        match (&mut reader).take(room).read_until(b'\n', &mut line) {
            Ok(0) if line.is_empty() => return Ok(()),
            Ok(_) if line.last() == Some(&b'\n') => {}
            Ok(_) if line.len() < MAX_LINE => {
                // The end of the stream in the middle of a line: no request. (A line
                // that stops short of MAX_LINE without `\n` can only mean EOF.)
                if let Some(s) = stats {
                    s.bytes_in.add_local(line.len() as u64);
                }
                return Ok(());
            }
            Ok(_) => {
                if let Some(s) = stats {
                    s.bytes_in.add_local(line.len() as u64);
                }
                writer.write_all(b"ERR line too long\n")?;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request line too long",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if timed_out(&e) => {
                // What was read so far stays in `line`.
                if stop.load(Ordering::Relaxed) {
                    if let Some(s) = stats {
                        s.bytes_in.add_local(line.len() as u64);
                    }
                    return Ok(());
                }
                continue;
            }
            Err(e) => {
                if let Some(s) = stats {
                    s.bytes_in.add_local(line.len() as u64);
                }
                return Err(e);
            }
        }
        // A complete request.
        let start = stats.map(|s| {
            s.bytes_in.add_local(line.len() as u64);
            Instant::now()
        });
        answer.clear();
        writeln!(answer, "OK {}", line.len() - 1)?;
        writer.write_all(&answer)?;
        if let (Some(s), Some(start)) = (stats, start) {
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            s.bytes_out.add_local(answer.len() as u64);
            s.requests.inc_local();
            s.service_ns.record_local(ns);
            s.max_service_ns.record_local(ns);
        }
        line.clear();
    }
}
