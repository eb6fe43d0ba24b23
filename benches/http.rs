//! Scrape latency of the `/metrics` endpoint while other clients hold connections open:
//! none, 100 or 1,000 idle ones (connected, sending nothing) and 100 or 1,000 slow ones
//! (each asked for 20 responses and reads none, so the server's writes to it stall).
//!
//! One iteration is what Prometheus does: a new connection, `GET /metrics` with its
//! `Accept` and `Accept-Encoding: gzip`, the whole response read. The tree: 10 VMs × 4
//! vCPUs × 50 counters (2,000 series). The server keeps the connections open for the
//! whole run (`max_connections` 4,096, `write_timeout` and `header_timeout` 1 hour), the
//! worst case; with the default limits it would hold at most 256 and cut idle and stalled
//! ones after 10 s.
//!
//! Then, with the default limits, a scrape while 256 keep-alive scrapers hold the cap, or
//! 250 greedy ones pipeline `/metrics` without end (`at_the_cap`).
//!
//! Run pinned, client and server on one CPU: `taskset -c 0 cargo bench --bench http`.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use statsfs::http::{serve, HttpOptions};
use statsfs::Source;

const VMS: usize = 10;
const VCPUS: usize = 4;
const STATS: usize = 50;

fn tree() -> Source {
    common::vcpu_tree(VMS, VCPUS, STATS)
}

const PROMETHEUS: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n";

fn scrape(addr: SocketAddr, buf: &mut Vec<u8>) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(PROMETHEUS).unwrap();
    buf.clear();
    s.read_to_end(buf).unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..buf.len().min(80)])
    );
    buf.len()
}

/// A client that asked for 20 responses and reads none; returns once they are sent.
fn slow(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    let batch = b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n".repeat(20);
    let (mut sent, deadline) = (0, Instant::now() + Duration::from_secs(5));
    while sent < batch.len() && Instant::now() < deadline {
        match (&s).write(&batch[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("slow client: {e}"),
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let root = tree();
    let options = HttpOptions::default()
        .with_max_connections(4096)
        .with_write_timeout(Duration::from_secs(3600))
        .with_header_timeout(Duration::from_secs(3600));
    let mut g = c.benchmark_group("scrape");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    let mut buf = Vec::with_capacity(1 << 20);
    for (kind, n) in [
        ("idle", 0),
        ("idle", 100),
        ("idle", 1000),
        ("slow", 100),
        ("slow", 1000),
    ] {
        let server = serve(std::slice::from_ref(&root), "127.0.0.1:0", options.clone()).unwrap();
        let addr = server.local_addr();
        let held: Vec<TcpStream> = (0..n)
            .map(|_| {
                if kind == "idle" {
                    TcpStream::connect(addr).unwrap()
                } else {
                    slow(addr)
                }
            })
            .collect();
        // Let the server take them all in (and stall on the slow ones).
        std::thread::sleep(Duration::from_millis(200));
        scrape(addr, &mut buf);
        g.bench_function(BenchmarkId::new(kind, n), |b| {
            b.iter(|| scrape(addr, &mut buf))
        });
        drop(held);
        drop(server);
    }
    g.finish();
}

/// With the default limits (a cap of 256): a scrape while 256 keep-alive clients hold the
/// cap (each asks for `/` every 2 s, and connects again at once when displaced, as a
/// client's pool does), and while 250 greedy
/// clients pipeline `/metrics` without end and read every answer
/// (`statsfs_testkit::load`).
fn at_the_cap(c: &mut Criterion) {
    let root = tree();
    let mut g = c.benchmark_group("scrape_under_load");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let mut buf = Vec::with_capacity(1 << 20);
    for (kind, n) in [("none", 0), ("keep_alive", 256), ("greedy", 250)] {
        let server = serve(
            std::slice::from_ref(&root),
            "127.0.0.1:0",
            HttpOptions::default(),
        )
        .unwrap();
        let addr = server.local_addr();
        let load = match kind {
            "keep_alive" => Some(statsfs_testkit::load::pooled(
                addr,
                n,
                Duration::from_secs(2),
            )),
            "greedy" => Some(statsfs_testkit::load::greedy(addr, n)),
            _ => None,
        };
        std::thread::sleep(Duration::from_millis(500));
        scrape(addr, &mut buf);
        g.bench_function(BenchmarkId::new(kind, n), |b| {
            b.iter(|| scrape(addr, &mut buf))
        });
        drop(load);
        drop(server);
    }
    g.finish();
}

criterion_group!(benches, bench, at_the_cap);
criterion_main!(benches);
