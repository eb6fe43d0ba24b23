//! The `/metrics` endpoint against clients that do not play by the rules: one that
//! pipelines requests and never reads, a flood of connections that runs the process out
//! of descriptors, slow and idle connections, and malformed requests
//! (`docs/HARDENING.md#http-requests`). Each failure that once took the endpoint down has
//! a test here: the endpoint keeps answering other scrapes, and dropping the server
//! returns within its deadline whatever the clients do.
//!
//! Every wait is bounded: a client socket has a read timeout, and each test that waits
//! for the server gives up (and fails) after a deadline, so a regression fails instead of
//! hanging.

use crate::common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs::http::{serve, HttpOptions};
use statsfs::Source;

/// A tree big enough that one response fills a socket's buffers many times over: the
/// common tree and 2,000 more vCPUs under it.
fn big_tree() -> (common::Tree, Vec<Source>) {
    let tree = common::tree();
    let vm = tree.root.subordinate("1234-5").unwrap();
    let mut extra = Vec::new();
    for i in 0..2000 {
        let s = Source::new(format!("extra{i}")).unwrap();
        s.set_label("vcpu", (i + 10).to_string()).unwrap();
        s.add(Arc::new(common::VcpuStat::default())).unwrap();
        vm.add_subordinate(&s).unwrap();
        extra.push(s);
    }
    (tree, extra)
}

/// One request on a fresh connection; the whole response (the server closes it: HTTP/1.0
/// without keep-alive), or the error that ended the wait.
fn request(addr: SocketAddr, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

fn status_of(response: &[u8]) -> String {
    let end = response
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(response.len());
    String::from_utf8_lossy(&response[..end]).into_owned()
}

/// `GET /metrics` over HTTP/1.0; the status line.
fn scrape(addr: SocketAddr) -> io::Result<String> {
    request(addr, b"GET /metrics HTTP/1.0\r\nHost: t\r\n\r\n").map(|r| status_of(&r))
}

/// A client that asks for `n` responses at once, on one connection with a 1 KiB receive
/// buffer, and never reads: the server's writes to it stall.
fn stuck_client(addr: SocketAddr, n: usize) -> TcpStream {
    let s = socket_with_small_receive_buffer();
    connect(&s, addr);
    let s = TcpStream::from(s);
    let mut batch = Vec::new();
    for _ in 0..n {
        batch.extend_from_slice(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    // Non-blocking: the server may stop reading too, and this must not wait for it.
    s.set_nonblocking(true).unwrap();
    let mut written = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while written < batch.len() && Instant::now() < deadline {
        match (&s).write(&batch[written..]) {
            Ok(k) => written += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => break,
        }
    }
    s
}

fn socket_with_small_receive_buffer() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let size: libc::c_int = 1024;
    // SAFETY: `size` is a live c_int and its length is passed with it.
    let r = unsafe {
        libc::setsockopt(
            owned.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUF: {}", io::Error::last_os_error());
    owned
}

fn connect(fd: &std::os::fd::OwnedFd, addr: SocketAddr) {
    let SocketAddr::V4(v4) = addr else {
        panic!("the test server listens on IPv4 loopback");
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `sin` is a live sockaddr_in and its exact size is passed with it.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "connect: {}", io::Error::last_os_error());
}

/// Runs `f` on a thread and fails the test if it has not returned within `limit`.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(_) => panic!("{what}: not done within {limit:?}"),
    }
}

#[test]
fn a_client_that_pipelines_and_never_reads_blocks_no_other_scrape() {
    let (tree, _extra) = big_tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    // Two of them: one for each worker thread a server might have.
    let stuck = [stuck_client(addr, 20), stuck_client(addr, 20)];
    // Let the server start answering them and block in its writes.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..3 {
        let status = scrape(addr)
            .unwrap_or_else(|e| panic!("scrape {i} with a stuck client connected: {e}"));
        assert!(status.contains("200"), "scrape {i}: {status}");
    }
    drop(stuck);
}

#[test]
fn dropping_the_server_returns_while_a_client_is_stuck() {
    let (tree, _extra) = big_tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let stuck = stuck_client(addr, 20);
    std::thread::sleep(Duration::from_millis(300));
    within(Duration::from_secs(10), "dropping the server", move || {
        drop(server)
    });
    // Stopped means stopped: nothing listens any more.
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after the drop"
    );
    drop(stuck);
}

const FLOOD_CHILD: &str = "STATSFS_HTTP_FLOOD_CHILD";

/// Not a test of its own: with `STATSFS_HTTP_FLOOD_CHILD` set, this process limits itself
/// to 64 descriptors, serves the common tree, prints `LISTENING <addr>` and serves until
/// its standard input closes.
#[test]
fn flood_child_entry() {
    if std::env::var_os(FLOOD_CHILD).is_none() {
        return;
    }
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    // SAFETY: `limit` is a live rlimit; lowering our own limit has no memory effects.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    println!("LISTENING {}", server.local_addr());
    io::stdout().flush().unwrap();
    let _ = io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}

#[test]
fn running_out_of_descriptors_does_not_end_the_endpoint() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hardening::flood_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FLOOD_CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(&mut child);
    let out = guard.0.stdout.take().unwrap();
    let addr = within(Duration::from_secs(20), "the child's address", move || {
        let mut line = String::new();
        let mut r = io::BufReader::new(out);
        loop {
            line.clear();
            if io::BufRead::read_line(&mut r, &mut line).unwrap() == 0 {
                panic!("the child exited before listening");
            }
            // libtest may print `test flood_child_entry ... ` before it on the line.
            if let Some((_, a)) = line.trim().split_once("LISTENING ") {
                return a.parse::<SocketAddr>().unwrap();
            }
        }
    });
    assert!(scrape(addr).unwrap().contains("200"));
    // 200 idle connections: more than the child has descriptors for.
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    // The server sheds idle connections to free descriptors: scrapes are answered even
    // while the flood lasts.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match scrape(addr) {
            Ok(s) if s.contains("200") => break,
            other => assert!(
                Instant::now() < deadline,
                "no scrape answered during the flood for 15 s: {other:?}"
            ),
        }
    }
    drop(flood);
    // Once the flood is gone, the endpoint answers again (within a bounded number of
    // tries: the server may be backing off from its failed accepts).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last;
    loop {
        match scrape(addr) {
            Ok(s) if s.contains("200") => break,
            Ok(s) => last = s,
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "no scrape answered 15 s after the flood ended: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads until the server closes the connection (EOF or reset); fails the test if it is
/// still open after `limit`. Returns what was read.
fn closed_by_server_within(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return out,
        }
        assert!(
            Instant::now() < deadline,
            "the server left the connection open for {limit:?}"
        );
    }
}

fn options() -> HttpOptions {
    HttpOptions::default()
}

#[test]
fn a_client_that_stops_reading_is_cut_by_the_write_timeout() {
    let (tree, _extra) = big_tree();
    let o = options().with_write_timeout(Duration::from_millis(500));
    let server = serve(std::slice::from_ref(&tree.root), "127.0.0.1:0", o).unwrap();
    let mut stuck = stuck_client(server.local_addr(), 20);
    // Let the write stall for longer than the timeout, then see the connection end.
    std::thread::sleep(Duration::from_secs(2));
    let got = closed_by_server_within(&mut stuck, Duration::from_secs(20));
    let answered = got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    assert!(answered < 20, "all 20 answered: the write never stalled");
    // Nothing was left to cut.
    assert_eq!(server.shutdown().cut, 0);
}

#[test]
fn shutdown_cuts_a_stuck_client_at_the_deadline_and_says_so() {
    let (tree, _extra) = big_tree();
    let o = options()
        .with_write_timeout(Duration::from_secs(600))
        .with_shutdown_deadline(Duration::from_millis(200));
    let server = serve(std::slice::from_ref(&tree.root), "127.0.0.1:0", o).unwrap();
    let addr = server.local_addr();
    let _stuck = stuck_client(addr, 20);
    // An idle kept-alive connection closes at once on shutdown: it is not cut.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // A client in the middle of its first head has nothing in flight: closed at once.
    let mut partial = TcpStream::connect(addr).unwrap();
    partial.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stopped = within(Duration::from_secs(10), "shutdown", move || {
        server.shutdown()
    });
    assert_eq!(stopped.cut, 1, "{stopped:?}");
    assert!(closed_by_server_within(&mut partial, Duration::from_secs(5)).is_empty());
    let got = closed_by_server_within(&mut idle, Duration::from_secs(5));
    assert!(got.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn idle_and_slow_header_clients_are_closed_after_the_header_timeout() {
    let tree = common::tree();
    let o = options().with_header_timeout(Duration::from_millis(500));
    let server = serve(std::slice::from_ref(&tree.root), "127.0.0.1:0", o).unwrap();
    let addr = server.local_addr();
    // Sends nothing.
    let mut idle = TcpStream::connect(addr).unwrap();
    // Sends its head one byte every 100 ms: it would need 4 s.
    let mut slow = TcpStream::connect(addr).unwrap();
    let head = b"GET /metrics HTTP/1.1\r\nHost: t\r\nUser-Agent: slow\r\n\r\n";
    let mut cut = false;
    for b in head {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut probe = [0u8; 1];
        slow.set_nonblocking(true).unwrap();
        let r = slow.read(&mut probe);
        slow.set_nonblocking(false).unwrap();
        if matches!(r, Ok(0)) || r.is_ok() {
            cut = true;
            break;
        }
        if let Err(e) = r {
            if e.kind() != io::ErrorKind::WouldBlock {
                cut = true;
                break;
            }
        }
    }
    assert!(cut, "a slow head was read to its end");
    let got = closed_by_server_within(&mut idle, Duration::from_secs(10));
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "an idle client got an answer"
    );
    // A kept-alive connection has the same time for its next request.
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let got = closed_by_server_within(&mut kept, Duration::from_secs(10));
    assert!(got.starts_with(b"HTTP/1.1 200"));
    // And the endpoint serves on.
    assert!(scrape(addr).unwrap().contains("200"));
}

#[test]
fn a_thousand_idle_connections_leave_room_for_a_scrape_and_descriptors_stay_bounded() {
    let tree = common::tree();
    let o = options().with_max_connections(64);
    let server = serve(std::slice::from_ref(&tree.root), "127.0.0.1:0", o).unwrap();
    let addr = server.local_addr();
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for i in 0..3 {
        let status = scrape(addr).unwrap_or_else(|e| panic!("scrape {i}: {e}"));
        assert!(status.contains("200"), "scrape {i}: {status}");
    }
    // The server holds at most 64 of them: the others were closed (each reads EOF).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut open = 0;
        for s in &mut idle {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            match s.read(&mut b) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => open += 1,
                _ => {}
            }
        }
        if open <= 64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} idle connections still open, the cap is 64"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    idle.clear();
    drop(server);
}

#[test]
fn gzip_when_the_scraper_asks_and_the_same_text_inside() {
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let plain = request(addr, b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let zipped = request(
        addr,
        b"GET /metrics HTTP/1.0\r\nAccept-Encoding: deflate, gzip;q=0.8\r\n\r\n",
    )
    .unwrap();
    let split = |r: &[u8]| {
        let at = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8_lossy(&r[..at]).to_ascii_lowercase(),
            r[at + 4..].to_vec(),
        )
    };
    let (plain_head, plain_body) = split(&plain);
    let (zip_head, zip_body) = split(&zipped);
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");
    assert!(zip_head.contains("content-encoding: gzip"), "{zip_head}");
    assert!(
        zip_head.contains("vary: accept, accept-encoding"),
        "{zip_head}"
    );
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&zip_body[..])
        .read_to_end(&mut text)
        .unwrap();
    assert_eq!(text, plain_body);
    assert!(zip_body.len() < plain_body.len());
    // q=0 refuses gzip.
    let refused = request(
        addr,
        b"GET /metrics HTTP/1.0\r\nAccept-Encoding: gzip;q=0\r\n\r\n",
    )
    .unwrap();
    assert!(!split(&refused).0.contains("content-encoding"));
}

/// One row of the table of bad requests (`docs/HARDENING.md#http-requests`).
struct Row {
    name: &'static str,
    request: Vec<u8>,
    /// The start of the status line expected; `None`: the connection is closed with no
    /// response at all.
    status: Option<&'static str>,
}

fn row(name: &'static str, request: &[u8], status: Option<&'static str>) -> Row {
    Row {
        name,
        request: request.to_vec(),
        status,
    }
}

#[test]
fn every_bad_request_gets_its_status_and_the_endpoint_serves_on() {
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let mut long_url = b"GET /metrics?".to_vec();
    long_url.extend(std::iter::repeat_n(b'a', 64 * 1024));
    long_url.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut long_header = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    long_header.extend(std::iter::repeat_n(b'a', 64 * 1024));
    long_header.extend_from_slice(b"\r\n\r\n");
    let mut many_headers = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..500 {
        many_headers.extend_from_slice(format!("X-{i}: a\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let rows = [
        row(
            "POST",
            b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
            Some("HTTP/1.1 405"),
        ),
        row(
            "PUT",
            b"PUT /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            Some("HTTP/1.1 405"),
        ),
        row(
            "DELETE",
            b"DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 405"),
        ),
        row(
            "OPTIONS *",
            b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 405"),
        ),
        row(
            "lower-case get",
            b"get /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 405"),
        ),
        row(
            "a body promised and never sent",
            b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n",
            Some("HTTP/1.1 405"),
        ),
        row(
            "unknown path",
            b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 404"),
        ),
        row(
            "trailing slash",
            b"GET /metrics/ HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 404"),
        ),
        row(
            "double slash",
            b"GET //metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 404"),
        ),
        row(
            "dot segments",
            b"GET /x/../metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 404"),
        ),
        row(
            "percent-encoded NUL",
            b"GET /metrics%00 HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 404"),
        ),
        row(
            "absolute form",
            b"GET http://t/metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 200"),
        ),
        row(
            "HEAD",
            b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 200"),
        ),
        row(
            "non-UTF-8 Accept",
            b"GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: \xff\xfe\r\n\r\n",
            Some("HTTP/1.1 200"),
        ),
        row("64 KiB URL", &long_url, Some("HTTP/1.1 431")),
        row("64 KiB header", &long_header, Some("HTTP/1.1 431")),
        row("500 headers", &many_headers, Some("HTTP/1.1 431")),
        row("HTTP/0.9", b"GET /metrics\r\n\r\n", Some("HTTP/1.1 400")),
        row(
            "HTTP/2.0 in an HTTP/1 request line",
            b"GET /metrics HTTP/2.0\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 400"),
        ),
        row(
            "garbage",
            b"\x00\x01\x02\xff\xfe\r\n\r\n",
            Some("HTTP/1.1 400"),
        ),
        row(
            "a NUL in the path",
            b"GET /met\x00rics HTTP/1.1\r\nHost: t\r\n\r\n",
            Some("HTTP/1.1 400"),
        ),
        row("nothing sent, then closed", b"", None),
    ];
    let mut wrong = Vec::new();
    for r in &rows {
        let got = (|| -> io::Result<Vec<u8>> {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(&r.request)?;
            s.shutdown(Shutdown::Write)?;
            let mut out = Vec::new();
            match s.read_to_end(&mut out) {
                Ok(_) => Ok(out),
                // A reset after the response (the server closed with unread input).
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(out),
                Err(e) => Err(e),
            }
        })();
        let ok = match (&got, r.status) {
            (Ok(out), Some(want)) => out.starts_with(want.as_bytes()),
            (Ok(out), None) => out.is_empty(),
            (Err(_), _) => false,
        };
        if !ok {
            wrong.push(format!(
                "{}: want {:?}, got {:?}",
                r.name,
                r.status,
                got.as_ref().map(|o| status_of(o))
            ));
        }
        if r.name == "HEAD" {
            let out = got.unwrap_or_default();
            let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
            assert!(text.contains("content-length: "), "HEAD: {text}");
            assert!(text.ends_with("\r\n\r\n"), "HEAD sent a body: {text}");
        }
    }
    assert!(
        wrong.is_empty(),
        "rows that went wrong:\n{}",
        wrong.join("\n")
    );
    assert!(scrape(addr).unwrap().contains("200"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    let mut batch = Vec::new();
    for i in 0..10 {
        let path = if i % 2 == 0 { "/metrics" } else { "/nothing" };
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(&batch).unwrap();
    let out = closed_by_server_within(&mut s, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    let want: Vec<&str> = (0..10)
        .map(|i| if i % 2 == 0 { "200" } else { "404" })
        .chain(["200"])
        .collect();
    assert_eq!(statuses, want);
}

#[test]
fn a_connection_is_closed_after_its_request_limit() {
    let tree = common::tree();
    let o = options().with_max_requests_per_connection(3);
    let server = serve(std::slice::from_ref(&tree.root), "127.0.0.1:0", o).unwrap();
    let mut s = TcpStream::connect(server.local_addr()).unwrap();
    let batch = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(5);
    s.write_all(&batch).unwrap();
    let out = closed_by_server_within(&mut s, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert_eq!(text.matches("http/1.1 200").count(), 3, "{text}");
    assert!(text.contains("connection: close"));
}

#[test]
fn limits_that_would_let_nothing_through_are_refused() {
    for (o, what) in [
        (options().with_max_connections(0), "max_connections"),
        (
            options().with_header_timeout(Duration::ZERO),
            "header_timeout",
        ),
        (
            options().with_write_timeout(Duration::ZERO),
            "write_timeout",
        ),
        (
            options().with_max_requests_per_connection(0),
            "max_requests_per_connection",
        ),
        (options().with_max_header_bytes(100), "max_header_bytes"),
        (
            options().with_header_timeout(Duration::MAX),
            "header_timeout",
        ),
        (
            options().with_shutdown_deadline(Duration::MAX),
            "shutdown_deadline",
        ),
    ] {
        let e = serve(&[], "127.0.0.1:0", o).unwrap_err();
        assert!(matches!(e, statsfs::http::Error::Options { .. }), "{e}");
        assert!(e.to_string().contains(what), "{e}");
    }
}

#[test]
fn the_default_address_is_loopback() {
    assert!(statsfs::http::DEFAULT_ADDR.ip().is_loopback());
}

#[test]
fn a_scraper_gets_through_a_flood_while_the_cap_is_held_by_served_clients() {
    let tree = common::tree();
    let o = options().with_max_connections(32);
    let server = serve(std::slice::from_ref(&tree.root), "127.0.0.1:0", o).unwrap();
    let addr = server.local_addr();
    // 32 clients that were served once and stay connected: they hold the cap.
    let mut served = Vec::new();
    for _ in 0..32 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 12];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"HTTP/1.1 200");
        served.push(s);
    }
    // Meanwhile a flood of connections that never send anything.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut held = std::collections::VecDeque::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(s) = TcpStream::connect(addr) {
                    held.push_back(s);
                }
                if held.len() > 500 {
                    held.pop_front();
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..5 {
        let status = scrape(addr).unwrap_or_else(|e| panic!("scrape {i} during the flood: {e}"));
        assert!(status.contains("200"), "scrape {i}: {status}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    drop(served);
}

/// 256 well-behaved keep-alive clients hold the cap, as a client's pool does (each asks
/// for `/` every 2 s on its connection, and connects again at once when displaced): 49
/// scrapes on new connections, each sending its request 5 ms after connecting (as a
/// client that is descheduled does), all get their answer. A newcomer is not displaced
/// before it had the time to send its request; an idle keep-alive connection is.
#[test]
fn scrapes_get_in_while_keep_alive_clients_hold_the_cap() {
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let load = common::load::pooled(addr, 256, Duration::from_secs(2));
    // Idle, as keep-alive scrapers are between scrapes (the endpoint counts a connection
    // that had bytes within the last 250 ms as being answered).
    std::thread::sleep(Duration::from_millis(500));
    let mut failed = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..49 {
        let t = Instant::now();
        let scraped = (|| {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            std::thread::sleep(Duration::from_millis(5));
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: t\r\n\r\n")?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok::<_, io::Error>(status_of(&out))
        })();
        match scraped {
            Ok(status) if status.contains("200") => slowest = slowest.max(t.elapsed()),
            other => failed.push(format!("scrape {i}: {other:?}")),
        }
    }
    let done = load.stop();
    assert!(
        failed.is_empty(),
        "{} of 49 failed: {failed:?}",
        failed.len()
    );
    println!(
        "49 scrapes, slowest {slowest:?}; the keep-alive clients made {} connections",
        done.connections
    );
}

/// 250 greedy scrapers pipeline `/metrics` without end on a tree of 2,000 vCPUs: a
/// well-behaved scrape is still answered within Prometheus's default scrape timeout
/// (10 s, the client's read timeout here): the endpoint answers one request of each
/// connection a turn.
#[test]
fn a_scrape_is_answered_among_greedy_pipelining_clients() {
    let (tree, _extra) = big_tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let load = common::load::greedy(addr, 250);
    std::thread::sleep(Duration::from_millis(500));
    let mut took = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        let status =
            scrape(addr).unwrap_or_else(|e| panic!("scrape {i} among greedy clients: {e}"));
        assert!(status.contains("200"), "scrape {i}: {status}");
        took.push(t.elapsed());
    }
    let done = load.stop();
    assert!(
        done.bytes > 0,
        "the greedy clients were answered too: {done:?} {took:?}"
    );
    println!(
        "5 scrapes among 250 greedy clients: {took:?}; they read {} MB",
        done.bytes >> 20
    );
}
