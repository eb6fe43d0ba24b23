//! The HTTP endpoint, and a real Prometheus server scraping two processes that serve
//! statsfs trees: PromQL `sum()` over both equals the sum of their in-process values.
//!
//! Needs `prometheus` on PATH (Debian package `prometheus`, which `.ci/setup` installs);
//! without it the test is skipped (`SKIPPED: <test>: <reason>`, see `common::skip`).
//! The serving processes are this test binary run again with `STATSFS_CHILD_SEED` set
//! (see [`child_process_entry`]).

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use statsfs::http::{serve, HttpOptions};
use statsfs_testkit::prometheus::Prometheus;

/// One HTTP/1.0 GET to 127.0.0.1; returns (status line, headers, body).
fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[test]
fn endpoint_negotiates_the_format_and_stops_on_drop() {
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());

    let (status, headers, body) = get(addr, "/metrics", None);
    assert!(status.contains("200"), "{status}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    assert!(body.contains("# TYPE vcpu_exits_total counter\n"), "{body}");
    assert!(!body.contains("# EOF"));

    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (_, headers, body) = get(addr, "/metrics?x=1", Some(prometheus_accept));
    assert!(
        headers
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{headers}"
    );
    assert!(body.contains("# TYPE vcpu_exits counter\n") && body.ends_with("# EOF\n"));

    // Values are read at scrape time.
    tree.vcpus[0].exits.add(1000);
    let (_, _, body) = get(addr, "/metrics", Some("text/plain"));
    assert!(body.contains(r#"vcpu_exits_total{path="kvm/1234-5/vcpu0",vcpu="0",vm="1234-5"} 1010"#));

    let (status, _, _) = get(addr, "/nothing", None);
    assert!(status.contains("404"), "{status}");
    let (status, _, _) = get(addr, "/", None);
    assert!(status.contains("200"), "{status}");

    drop(server);
    // The drop closes the port before it returns; polled all the same.
    let start = Instant::now();
    while TcpStream::connect(addr).is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still listening 5 s after drop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn binding_a_taken_port_is_a_typed_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let err = serve(&[], taken.local_addr().unwrap(), HttpOptions::default()).unwrap_err();
    assert!(matches!(err, statsfs::http::Error::Bind { .. }), "{err}");
    assert!(err.to_string().contains("cannot serve /metrics"));
}

const CHILD_VAR: &str = "STATSFS_CHILD_SEED";

/// Not a test of its own: when this binary runs again with `STATSFS_CHILD_SEED=n`, this
/// serves the common tree (with `n` more exits on vcpu0) on a free port, prints
/// `LISTENING <addr> <in-process exits> <in-process halt ns>` and serves until its
/// standard input closes (the parent test holds it open). Without the variable it does
/// nothing.
#[test]
fn child_process_entry() {
    let Ok(seed) = std::env::var(CHILD_VAR) else {
        return;
    };
    let seed: u64 = seed.parse().unwrap();
    let tree = common::tree();
    tree.vcpus[0].exits.add(seed);
    tree.vcpus[1].halt_ns.add(seed * 1_000_000);
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let exits = tree.root.get("exits").unwrap().as_u64();
    let halt = tree.root.get("halt_ns").unwrap().as_u64();
    println!("LISTENING {} {exits} {halt}", server.local_addr());
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(server);
}

/// Kills and reaps every process it holds, also when the test
/// fails.
struct Guard {
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn prometheus_scrapes_two_processes_and_sums_them() {
    let test = "prometheus_scrapes_two_processes_and_sums_them";
    if common::tool(test, "prometheus").is_none() {
        return;
    }
    let mut guard = Guard {
        children: Vec::new(),
    };

    let (mut targets, mut exits, mut halt_ns) = (Vec::new(), 0u64, 0u64);
    for seed in [100u64, 2000] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "prometheus_server::child_process_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_VAR, seed.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        guard.children.push(child);
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // libtest prints `test child_process_entry ... ` before it on the same line.
            .find_map(|l| l.find("LISTENING ").map(|at| l[at..].to_owned()))
            .expect("the child process did not start serving");
        let mut words = line.split(' ').skip(1);
        targets.push(words.next().unwrap().to_owned());
        exits += words.next().unwrap().parse::<u64>().unwrap();
        halt_ns += words.next().unwrap().parse::<u64>().unwrap();
    }

    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: statsfs\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [{}]\n",
        targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
    );
    let Some(prom) = Prometheus::start(test, &config, &[]) else {
        return;
    };

    // Poll, with a bound: the first scrape lands a few seconds after start.
    let start = Instant::now();
    let limit = Duration::from_secs(60);
    let (mut got_exits, mut got_halt) = (None, None);
    while start.elapsed() < limit {
        let up = prom.value("sum(up{job=\"statsfs\"})");
        got_exits = prom.value("sum(vcpu_exits_total)");
        got_halt = prom.value("sum(vcpu_halt_seconds_total)");
        if up == Some(2.0) && got_exits == Some(exits as f64) && got_halt.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = prom.log();
    assert_eq!(
        got_exits,
        Some(exits as f64),
        "PromQL sum(vcpu_exits_total) after {:?}; in-process sum {exits}; prometheus log:\n{log}",
        start.elapsed()
    );
    let want = halt_ns as f64 * 1e-9;
    let got = got_halt.unwrap();
    assert!(
        (got - want).abs() <= want * 1e-12,
        "sum(vcpu_halt_seconds_total) = {got}, want {want}"
    );
    // Leaves only: as many series as leaves, none from the aggregates.
    assert_eq!(prom.value("count(vcpu_exits_total)"), Some(4.0));
    // Histograms made it through OpenMetrics (what Prometheus asks for first).
    assert_eq!(
        prom.value("sum(vcpu_queue_len_bucket{le=\"+Inf\"})"),
        Some(4.0 * 5.0)
    );
    eprintln!("Prometheus agreed after {:?}", start.elapsed());
}

#[derive(statsfs::Stats)]
struct EndpointTestStat {
    /// Connections this test process accepted
    accepted: statsfs::cell::Counter,
}

#[statsfs::global(name = "endpoint_test")]
static ENDPOINT_TEST: EndpointTestStat = EndpointTestStat {
    accepted: statsfs::cell::Counter::new(),
};

#[test]
fn globals_are_served_beside_the_roots_and_schema_lists_every_stat() {
    ENDPOINT_TEST.accepted.add(3);
    let tree = common::tree();
    let server = serve(
        std::slice::from_ref(&tree.root),
        "127.0.0.1:0",
        HttpOptions::default(),
    )
    .unwrap();
    let (_, _, body) = get(server.local_addr(), "/metrics", None);
    assert!(
        body.contains("endpoint_test_stat_accepted_total{path=\"endpoint_test\"} 3\n"),
        "{body}"
    );
    let (status, headers, body) = get(server.local_addr(), "/schema", None);
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("content-type: text/plain"), "{headers}");
    // Every derived schema of the binary, with or without instances.
    for s in statsfs::registry::schemas() {
        assert!(
            body.contains(&format!("schema {} {} ", s.name(), s.type_name())),
            "{body}"
        );
    }
    assert!(body.contains(
        "accepted cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Connections this test process accepted\n"
    ));
}
