//! The netsvc binary end to end: it serves and loads itself for 2 s with its tree
//! mounted and /metrics served; meanwhile this test finds a connection's directory in
//! the mount and the `svc_` series at /metrics; at the end the summary's totals must
//! equal the generator's counts, and the mount must be gone.
//!
//! The binary is this package's `netsvc` (`CARGO_BIN_EXE_netsvc`), built by cargo before
//! it runs the package's integration tests. The mounting test is skipped
//! (`SKIPPED: <test>: <reason>`) without root or `/dev/fuse`.

mod common;

use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::Netsvc;

/// The first connection directory (`c<id>`) under any `svc/worker<i>/`, with the
/// number its `requests` file held.
fn find_connection(svc: &Path) -> Option<(String, u64)> {
    for worker in fs::read_dir(svc).ok()?.flatten() {
        let name = worker.file_name().into_string().ok()?;
        if !name.starts_with("worker") {
            continue;
        }
        let Ok(entries) = fs::read_dir(worker.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let n = e.file_name().into_string().ok()?;
            if n.starts_with('c') && n[1..].chars().all(|c| c.is_ascii_digit()) && n.len() > 1 {
                // It may close between the listing and the read.
                if let Ok(text) = fs::read_to_string(e.path().join("requests")) {
                    let requests = text.trim().parse().expect("requests is one integer");
                    return Some((format!("{name}/{n}"), requests));
                }
            }
        }
    }
    None
}

#[test]
fn connections_appear_in_the_mount_and_the_totals_are_exact() {
    let test = "connections_appear_in_the_mount_and_the_totals_are_exact";
    if !common::can_mount(test) {
        return;
    }
    // 10 connections/s, each 10 requests 10 ms apart: ~100 ms each, so one is usually
    // open; 2 workers serve up to ~20 of those a second.
    let mut svc = Netsvc::start(
        "netsvc-example",
        true,
        &[
            "--duration",
            "2",
            "--load-rate",
            "10",
            "--load-requests",
            "10",
            "--load-think-ms",
            "10",
            "--load-concurrency",
            "2",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let mount = svc.mount.clone().expect("a mount point");
    let limit = Duration::from_secs(30);
    svc.wait_for_line("statsfs mounted at ", limit);
    let metrics = svc.wait_for_line("metrics at http://", limit);
    let metrics = metrics.trim_end_matches("/metrics").to_owned();
    assert!(
        common::mounted(&mount),
        "{} is not mounted",
        mount.display()
    );

    // A connection's directory, while it is open (bounded: the run lasts 2 s).
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        seen = find_connection(&mount.join("svc"));
        if seen.is_none() {
            sleep(Duration::from_millis(10));
        }
    }
    let (conn, requests) = seen.unwrap_or_else(|| {
        panic!(
            "no svc/worker*/c* directory in {} within 2 s:\n{}",
            mount.display(),
            svc.output()
        )
    });
    assert!(requests <= 10, "{conn}: {requests} requests");
    for file in [
        "svc/bytes_in",
        "svc/requests",
        "svc/worker0/bytes_in",
        // Reported by the queue through the `metrics` facade.
        "svc/lib/handoff_items_total",
        "svc/lib/outcome=queued/handoff_items_total",
        "svc/lib/handoff_wait_seconds_sum",
    ] {
        let text = fs::read_to_string(mount.join(file)).unwrap_or_default();
        assert!(text.trim().parse::<u64>().is_ok(), "{file}: {text:?}");
    }

    // The bulk file of the whole tree has them too, in the kernel's binary layout.
    let blob = fs::read(mount.join("svc/.tree.stats")).expect("svc/.tree.stats");
    let blob = statsfs::binary::Blob::decode(&blob).expect("a valid blob");
    assert!(
        blob.value("lib/outcome=queued/handoff_items_total")
            .is_some(),
        "no lib/ values in svc/.tree.stats"
    );

    // /metrics: the leaves of the tree, every schema's series.
    let (status, body) = common::http_get(&metrics, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    for family in [
        "svc_conn_requests_total{",
        "svc_conn_service_seconds_bucket{",
        "svc_conn_service_seconds_sum{",
        "svc_conn_service_seconds_count{",
        "svc_worker_connections_total{",
        "svc_listener_accepted_total{",
        // The facade's, named as the library named them, with their labels.
        "handoff_items_total{path=\"svc/lib/outcome=queued\",outcome=\"queued\"}",
        "handoff_wait_seconds_count{path=\"svc/lib\"}",
    ] {
        assert!(body.contains(family), "no {family} in /metrics:\n{body}");
    }
    // What closed connections left is a series of its own (bounded: the run lasts 2 s).
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut body = body;
    while !body.contains("retired=\"true\"") && Instant::now() < deadline {
        sleep(Duration::from_millis(50));
        body = common::http_get(&metrics, "/metrics").1;
    }
    assert!(
        body.lines()
            .any(|l| l.starts_with("svc_conn_requests_total{") && l.contains("retired=\"true\"")),
        "no series of retired connections:\n{body}"
    );

    // It ends by itself, unmounted, and its totals are the generator's counts.
    let status = svc
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running 30 s after a 2 s run:\n{}", svc.output()));
    assert!(status.success(), "exit status {status}:\n{}", svc.output());
    let out = svc.stdout();
    assert!(out.contains("verified: every total"), "{out}");
    let rows = common::summary_rows(&out);
    assert_eq!(rows.len(), 8, "the comparison rows:\n{out}");
    for (stat, generator, tree) in &rows {
        assert_eq!(generator, tree, "{stat}:\n{out}");
    }
    let opened = rows
        .iter()
        .find(|r| r.0 == "svc/accepted")
        .expect("accepted")
        .1;
    assert!(opened >= 5, "only {opened} connections in 2 s:\n{out}");
    assert!(out.contains("unmounted"), "{out}");
    assert!(
        !common::mounted(&mount),
        "{} is still mounted",
        mount.display()
    );
    assert!(!mount.exists(), "the mount point it created is left behind");
}

#[test]
fn without_statistics_the_same_load_runs_and_nothing_is_compared() {
    let mut svc = Netsvc::start(
        "netsvc-no-stats",
        false,
        &[
            "--duration",
            "1",
            "--load-max",
            "--load-requests",
            "1",
            "--no-stats",
        ],
    );
    let status = svc
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running 30 s after a 1 s run:\n{}", svc.output()));
    assert!(status.success(), "exit status {status}:\n{}", svc.output());
    let out = svc.stdout();
    assert!(out.contains("statistics off"), "{out}");
    assert!(out.contains("tree: none (--no-stats)"), "{out}");
    assert!(common::summary_rows(&out).is_empty(), "{out}");
    let opened: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("generator: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|w| w.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no generator line:\n{out}"));
    assert!(opened > 0, "{out}");
}

#[test]
fn totals_read_through_the_mount_never_go_back_as_connections_retire() {
    let test = "totals_read_through_the_mount_never_go_back_as_connections_retire";
    if !common::can_mount(test) {
        return;
    }
    // As many connections as it can take, one request each: every request is a source
    // added and retired.
    let mut svc = Netsvc::start(
        "netsvc-monotonic",
        true,
        &[
            "--duration",
            "2",
            "--load-max",
            "--load-requests",
            "1",
            "--load-concurrency",
            "2",
        ],
    );
    let mount = svc.mount.clone().expect("a mount point");
    svc.wait_for_line("statsfs mounted at ", Duration::from_secs(30));
    let files = ["requests", "bytes_in", "bytes_out", "service_ns"];
    let mut last = [0u64; 4];
    let mut reads = 0u32;
    let mut grew = 0u32;
    // As fast as reads go (a closing connection was visible for microseconds only),
    // bounded: the run lasts 2 s; reads stop at the first failure (the unmount).
    let deadline = Instant::now() + Duration::from_secs(5);
    'poll: while Instant::now() < deadline {
        for (i, f) in files.iter().enumerate() {
            let Ok(text) = fs::read_to_string(mount.join("svc").join(f)) else {
                break 'poll;
            };
            let Ok(now) = text.trim().parse::<u64>() else {
                break 'poll;
            };
            assert!(
                now >= last[i],
                "svc/{f} went back from {} to {now} after {reads} reads",
                last[i]
            );
            grew += (now > last[i]) as u32;
            last[i] = now;
            reads += 1;
        }
    }
    let status = svc
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running 30 s after a 2 s run:\n{}", svc.output()));
    assert!(status.success(), "exit status {status}:\n{}", svc.output());
    assert!(
        reads > 100 && grew > 10,
        "{reads} reads, {grew} rises:\n{}",
        svc.output()
    );
    let out = svc.stdout();
    assert!(out.contains("verified: every total"), "{out}");
}

#[test]
fn otlp_receives_the_final_totals_with_units_and_the_facade_metrics() {
    let test = "otlp_receives_the_final_totals_with_units_and_the_facade_metrics";
    let Some(rx) = statsfs_testkit::otlp::OtlpReceiver::start(test, &[]) else {
        return;
    };
    let url = rx.url();
    let mut svc = Netsvc::start(
        "netsvc-otlp",
        false,
        &[
            "--duration",
            "2",
            "--load-rate",
            "50",
            "--load-requests",
            "3",
            "--otlp",
            &url,
            "--push-interval",
            "0.2",
        ],
    );
    let status = svc
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("still running 60 s after a 2 s run:\n{}", svc.output()));
    assert!(status.success(), "exit status {status}:\n{}", svc.output());
    let out = svc.stdout();
    assert!(out.contains("stopped pushing: "), "{out}");
    // The last request the receiver took is the shutdown's: the final totals.
    let mut last = None;
    while let Ok(r) = rx.requests.recv_timeout(Duration::from_secs(2)) {
        last = Some(r);
    }
    let last = last.expect("the receiver took no request");
    let points: Vec<Vec<&str>> = last
        .iter()
        .filter_map(|l| l.strip_prefix("POINT\t"))
        .map(|l| l.split('\t').collect())
        .collect();
    // name, description, unit, type, temporality, monotonic, attributes, start?, time?, value...
    let sum_of = |name: &str| -> u64 {
        points
            .iter()
            .filter(|p| p[0] == name)
            .map(|p| {
                let v = p[9];
                v.strip_prefix("int:")
                    .or_else(|| v.strip_prefix("count="))
                    .unwrap_or_else(|| panic!("{name}: {v}"))
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    };
    let rows = common::summary_rows(&out);
    let tree = |stat: &str| rows.iter().find(|r| r.0 == stat).map(|r| r.2).unwrap();
    assert_eq!(
        sum_of("svc_listener_accepted"),
        tree("svc/accepted"),
        "{out}"
    );
    assert_eq!(sum_of("svc_conn_requests"), tree("svc/requests"));
    assert_eq!(sum_of("svc_conn_in_bytes"), tree("svc/bytes_in"));
    assert_eq!(sum_of("svc_conn_service_seconds"), tree("svc/service_ns"));
    // A library's numbers through the `metrics` facade, in the same payload.
    assert_eq!(sum_of("handoff_items"), tree("svc/lib/handoff_items_total"));
    let unit_of = |name: &str| points.iter().find(|p| p[0] == name).map(|p| (p[2], p[3]));
    assert_eq!(unit_of("svc_conn_in_bytes"), Some(("By", "sum")));
    assert_eq!(
        unit_of("svc_conn_service_seconds"),
        Some(("s", "histogram"))
    );
    assert_eq!(unit_of("handoff_wait_seconds"), Some(("s", "histogram")));
    let resource = last.iter().find(|l| l.starts_with("RESOURCE\t")).unwrap();
    assert!(resource.contains("service.name=netsvc"), "{resource}");
}
