//! The netsvc tree in process, no mount: connections open and close (through the tree's
//! API, then through the real server on loopback) and the totals at `svc/` stay exact
//! after every close: a closed connection retires, and what it counted stays in its
//! worker's totals.

#[path = "../src/handoff.rs"]
#[allow(dead_code)]
mod handoff;
#[path = "../src/load.rs"]
#[allow(dead_code)]
mod load;
#[path = "../src/server.rs"]
#[allow(dead_code)]
mod server;
#[path = "../src/stats.rs"]
#[allow(dead_code)]
mod stats;
#[path = "../src/tree.rs"]
#[allow(dead_code)]
mod tree;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs::cell::LogHistogram;
use statsfs::Source;

use load::{Load, LoadConfig};
use server::{Config, Server};
use stats::{ConnStat, WorkerStat, SERVICE_BUCKETS};
use tree::{SvcTree, Totals};

fn get(s: &Source, name: &str) -> u64 {
    s.get(name)
        .unwrap_or_else(|e| panic!("{}: {e}", s.path()))
        .as_u64()
}

fn names(s: &Source) -> Vec<String> {
    s.subordinates()
        .iter()
        .map(|c| c.name().to_owned())
        .collect()
}

/// What a connection did, written into its stats as its worker would.
struct Work {
    bytes_in: u64,
    bytes_out: u64,
    samples: Vec<u64>,
}

fn write(s: &ConnStat, w: &Work) {
    s.bytes_in.add_local(w.bytes_in);
    s.bytes_out.add_local(w.bytes_out);
    for &ns in &w.samples {
        s.requests.inc_local();
        s.service_ns.record_local(ns);
        s.max_service_ns.record_local(ns);
    }
}

/// The sums over `done`, as `svc/` must show them.
fn expected(done: &[&Work]) -> (u64, u64, u64, u64, [u64; SERVICE_BUCKETS]) {
    let mut buckets = [0; SERVICE_BUCKETS];
    let mut max = 0;
    for w in done {
        for &ns in &w.samples {
            buckets[LogHistogram::<SERVICE_BUCKETS>::bucket_index(ns)] += 1;
            max = max.max(ns);
        }
    }
    (
        done.iter().map(|w| w.bytes_in).sum(),
        done.iter().map(|w| w.bytes_out).sum(),
        done.iter().map(|w| w.samples.len() as u64).sum(),
        max,
        buckets,
    )
}

fn check(root: &Source, done: &[&Work]) {
    let (bytes_in, bytes_out, requests, max, buckets) = expected(done);
    let sum = done
        .iter()
        .flat_map(|w| &w.samples)
        .fold(0u64, |s, &ns| s.wrapping_add(ns));
    assert_eq!(get(root, "service_ns_sum"), sum, "svc/service_ns_sum");
    assert_eq!(get(root, "bytes_in"), bytes_in);
    assert_eq!(get(root, "bytes_out"), bytes_out);
    assert_eq!(get(root, "requests"), requests);
    assert_eq!(get(root, "max_service_ns"), max);
    let hist = root.get("service_ns").expect("service_ns");
    assert_eq!(hist.words(), buckets, "svc/service_ns buckets");
}

#[test]
fn a_closed_connection_stays_in_the_totals() {
    let tree = SvcTree::new().unwrap();
    let root = tree.root();
    let w0 = tree.add_worker(0, Arc::new(WorkerStat::default())).unwrap();
    let w1 = tree.add_worker(1, Arc::new(WorkerStat::default())).unwrap();
    assert_eq!(names(root), ["lib", "worker0", "worker1"]);

    // Samples in many buckets: 0, 1, a few ns, µs, ms, and past the last bound.
    let work: Vec<Work> = (0..5u64)
        .map(|i| Work {
            bytes_in: 100 + i,
            bytes_out: 10 * i,
            samples: vec![0, 1, 3 + i, 1_500 * (i + 1), 2_000_000 << i, u64::MAX >> i],
        })
        .collect();
    let peer = "127.0.0.1:4000".parse().ok();
    let mut open = Vec::new();
    for (i, w) in work.iter().enumerate() {
        let node = if i % 2 == 0 { &w0 } else { &w1 };
        let c = node.open(i as u64 + 1, peer).unwrap();
        write(c.stats(), w);
        open.push((node, c));
    }
    assert_eq!(names(w0.source()), ["c1", "c3", "c5"]);
    assert_eq!(names(w1.source()), ["c2", "c4"]);
    let all: Vec<&Work> = work.iter().collect();
    check(root, &all);
    assert_eq!(
        open[0].1.source().labels(),
        [
            ("peer".to_owned(), "127.0.0.1:4000".to_owned()),
            ("worker".to_owned(), "0".to_owned())
        ]
    );

    // Close them one by one, in another order than they opened: nothing is lost.
    for k in [1, 4, 0, 3, 2] {
        let (node, c) = open.remove(
            open.iter()
                .position(|(_, c)| c.source().name() == format!("c{}", k + 1))
                .unwrap(),
        );
        node.close(c).unwrap();
        check(root, &all);
    }
    assert!(names(w0.source()).is_empty());
    assert!(names(w1.source()).is_empty());

    // Each worker retained exactly its own connections.
    check(w0.source(), &[&work[0], &work[2], &work[4]]);
    check(w1.source(), &[&work[1], &work[3]]);
    let mut kept = Vec::new();
    w0.source()
        .for_each_retained(|v| kept.push(v.descriptor.name));
    assert_eq!(
        kept,
        [
            "bytes_in",
            "bytes_out",
            "requests",
            "service_ns",
            "service_ns_sum",
            "max_service_ns"
        ]
    );

    // The next connection adds to the folded totals.
    let extra = Work {
        bytes_in: 7,
        bytes_out: 8,
        samples: vec![42],
    };
    let c = w1.open(99, None).unwrap();
    write(c.stats(), &extra);
    let mut with_extra = all.clone();
    with_extra.push(&extra);
    check(root, &with_extra);
    w1.close(c).unwrap();
    check(root, &with_extra);
}

#[test]
fn the_real_server_counts_exactly_what_the_generator_did() {
    let tree = SvcTree::new().unwrap();
    let config = Config {
        workers: 2,
        queue: 16,
    };
    let server = Server::start("127.0.0.1:0", config, Some(&tree)).unwrap();
    let load = Load::start(
        server.local_addr(),
        LoadConfig {
            rate: None,
            requests: 3,
            concurrency: 3,
            think: Duration::ZERO,
        },
        Some(Instant::now() + Duration::from_millis(300)),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let counts = load.join();
    server.shutdown();
    let t = Totals::read(tree.root());
    assert!(counts.opened > 0);
    assert_eq!(counts.errors, 0, "{counts:?}");
    assert_eq!(t.accepted, counts.opened, "{t:?} {counts:?}");
    assert_eq!(t.connections, counts.closed, "{t:?} {counts:?}");
    assert_eq!(t.requests, counts.requests, "{t:?} {counts:?}");
    assert_eq!(t.service_samples, counts.requests, "{t:?} {counts:?}");
    assert_eq!(t.bytes_in, counts.sent, "{t:?} {counts:?}");
    assert_eq!(t.bytes_out, counts.received, "{t:?} {counts:?}");
    assert_eq!((t.active, t.queued, t.errors, t.refused), (0, 0, 0, 0));
    for w in tree.root().subordinates() {
        if w.name().starts_with("worker") {
            assert!(names(&w).is_empty(), "{} after the shutdown", w.path());
        }
    }
}

#[test]
fn partial_and_overlong_lines_are_counted_too() {
    let tree = SvcTree::new().unwrap();
    let config = Config {
        workers: 1,
        queue: 4,
    };
    let server = Server::start("127.0.0.1:0", config, Some(&tree)).unwrap();
    let addr = server.local_addr();
    // A request, then half a line, then the end of the stream.
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hello\nhal").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "OK 5\n");
    // A line as long as the limit, with no room for its `\n`: an error answer, and the
    // connection closes (nothing is left unread, so it closes with a FIN, not a reset).
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&vec![b'x'; server::MAX_LINE]).unwrap();
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    assert!(answer.starts_with(b"ERR line too long\n"), "{answer:?}");
    drop(c);
    server.shutdown();
    let t = Totals::read(tree.root());
    assert_eq!(t.accepted, 2);
    assert_eq!(t.connections, 2);
    assert_eq!(t.requests, 1);
    assert_eq!(t.errors, 1);
    assert_eq!(t.bytes_in, 9 + server::MAX_LINE as u64);
    assert_eq!(t.service_samples, 1);
    assert_eq!(t.bytes_out, 5);
}
