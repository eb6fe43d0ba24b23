//! Pushing the tree to real receivers: an OTLP receiver that decodes with the OpenTelemetry
//! project's own protobuf classes (the testkit's `otlp_receiver.py`, PyPI
//! `opentelemetry-proto`), and a Prometheus server with its remote-write receiver; and
//! receivers that are down, slow, or answer 429, 500 or 400.
//!
//! A test binary of its own: the receivers it starts (a Prometheus server, Python
//! processes) load the machine, and the endpoint's hardening tests, which measure what a
//! scraper gets through a flood, run in the other binary, not beside them.

use statsfs_testkit as common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs::cell::{Counter, LogHistogram, WithSum};
use statsfs::http::push::{push, ucum, PushOptions, Pusher, Resource, Stopped, Target};
use statsfs::openmetrics::{Encoder, MetricType};
use statsfs::{Family, Label, Source, Stats};
use statsfs_testkit::otlp::OtlpReceiver;
use statsfs_testkit::prometheus::{promql_string, Prometheus};

#[derive(Clone, Copy, Label)]
enum Op {
    Get,
    Put,
}

#[derive(Stats)]
#[stats(name = "push_test")]
struct PushTestStat {
    /// Operations, by kind
    ops: Family<Op, Counter>,
    /// Time an operation took
    #[stat(unit = seconds, exponent = -9)]
    op_ns: LogHistogram<12, WithSum>,
}

/// The fixture tree, with a family and a histogram that keeps its sum under `kvm/db`.
fn tree() -> (common::fixtures::Tree, Arc<PushTestStat>) {
    let t = common::tree();
    let db = Source::new("db").unwrap();
    let s = Arc::new(PushTestStat::new());
    s.ops[Op::Get].add(5);
    s.ops[Op::Put].inc();
    for ns in [0, 3, 1500, 1_000_000] {
        s.op_ns.record(ns);
    }
    db.add(s.clone()).unwrap();
    t.root.add_subordinate(&db).unwrap();
    (t, s)
}

/// As `otlp_receiver.py` escapes text: `\\`, `\n`, `\t`.
fn esc(t: &str) -> String {
    t.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
}

fn bits(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

/// The `POINT` lines `otlp_receiver.py` prints for the leaves of `root`, made from what
/// `/metrics` serves (`Encoder::collect`).
fn expected_points(root: &Source) -> BTreeSet<String> {
    let mut e = Encoder::new();
    let collected = e.collect(std::slice::from_ref(root));
    let mut out = BTreeSet::new();
    for f in collected.families() {
        let (kind, temporality, monotonic) = match f.metric_type() {
            MetricType::Counter => ("sum", "2", "True"),
            MetricType::Gauge => ("gauge", "-", "-"),
            MetricType::Histogram => ("histogram", "2", "-"),
        };
        for s in f.series() {
            let mut attrs: Vec<(&str, &str)> = s.labels().collect();
            attrs.sort();
            let attrs: Vec<String> = attrs
                .iter()
                .map(|(k, v)| format!("{k}={}", esc(v)))
                .collect();
            let mut cols = vec![
                f.name().to_owned(),
                esc(f.help()),
                ucum(f.unit()).to_owned(),
                kind.to_owned(),
                temporality.to_owned(),
                monotonic.to_owned(),
                attrs.join(","),
                (f.metric_type() != MetricType::Gauge)
                    .to_string()
                    .replace("true", "True")
                    .replace("false", "False"),
                "True".to_owned(),
            ];
            if f.metric_type() == MetricType::Histogram {
                cols.push(format!("count={}", s.count()));
                cols.push(format!("sum={}", s.sum().map_or("none".to_owned(), bits)));
                let b: Vec<String> = s.buckets().map(|c| c.to_string()).collect();
                cols.push(format!("buckets={}", b.join(",")));
                let b: Vec<String> = f.bounds().map(bits).collect();
                cols.push(format!("bounds={}", b.join(",")));
            } else if f.is_integer() {
                cols.push(format!("int:{}", s.integer()));
            } else {
                cols.push(format!("double:{}", bits(s.value())));
            }
            out.insert(format!("POINT\t{}", cols.join("\t")));
        }
    }
    out
}

fn fast() -> PushOptions {
    PushOptions {
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        shutdown_deadline: Duration::from_secs(3),
        resource: Some(Resource::of_process("push-test")),
        ..PushOptions::default()
    }
}

fn stat(p: &Pusher, name: &str) -> u64 {
    p.source().get(name).unwrap().as_u64()
}

/// Waits (at most 30 s) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < end, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn otlp_receivers_decode_every_point_unit_bound_and_attribute() {
    let test = "otlp_receivers_decode_every_point_unit_bound_and_attribute";
    let Some(rx) = OtlpReceiver::start(test, &[]) else {
        return;
    };
    let (t, _s) = tree();
    let want = expected_points(&t.root);
    assert!(want.len() > 10, "{want:?}");
    let target = Target::otlp(&rx.url()).unwrap();
    let pusher = push(std::slice::from_ref(&t.root), target, fast()).unwrap();
    let request = rx
        .requests
        .recv_timeout(Duration::from_secs(30))
        .expect("no request within 30 s");
    let stopped = pusher.shutdown();
    assert_eq!(request[0], "REQUEST\t/v1/metrics\tapplication/x-protobuf");
    let resource = request
        .iter()
        .find(|l| l.starts_with("RESOURCE\t"))
        .unwrap();
    for attr in [
        "service.name=push-test".to_owned(),
        format!("process.pid={}", std::process::id()),
        "host.name=".to_owned(),
    ] {
        assert!(resource.contains(&attr), "{resource}");
    }
    assert!(request.iter().any(|l| l.starts_with("SCOPE\tstatsfs\t")));
    let got: BTreeSet<String> = request
        .iter()
        .filter(|l| l.starts_with("POINT\t"))
        .cloned()
        .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    // The units are UCUM's, and the family, the sum and the bounds made it.
    assert!(got.iter().any(
        |l| l.starts_with("POINT\tpush_test_op_seconds\tTime an operation took\ts\thistogram\t2\t")
    ));
    assert!(got.iter().any(|l| l.starts_with("POINT\tpush_test_ops\t")
        && l.contains("op=get")
        && l.ends_with("int:5")));
    assert!(got.iter().any(|l| l.contains("\tBy\t")));
    assert!(stopped.sent >= 1 && stopped.rejected == 0, "{stopped:?}");
}

#[test]
fn a_receiver_that_refuses_for_a_while_is_caught_up_and_the_drops_are_counted() {
    let test = "a_receiver_that_refuses_for_a_while_is_caught_up_and_the_drops_are_counted";
    for status in ["503", "429"] {
        let Some(rx) = OtlpReceiver::start(test, &["--status", status, "--times", "6"]) else {
            return;
        };
        let (t, _s) = tree();
        let target = Target::otlp(&rx.url()).unwrap();
        let options = PushOptions { queue: 2, ..fast() };
        let pusher = push(std::slice::from_ref(&t.root), target, options).unwrap();
        eventually("six refusals", || stat(&pusher, "failures") >= 6);
        assert!(stat(&pusher, "queued") <= 2, "the queue is bounded");
        eventually("the receiver took payloads again", || {
            stat(&pusher, "pushes") >= 3
        });
        let source = pusher.source().clone();
        let stopped = pusher.shutdown();
        // Every payload made is accounted for: taken, dropped or refused.
        let payloads = source.get("payloads").unwrap().as_u64();
        assert_eq!(
            payloads,
            stopped.sent + stopped.dropped + stopped.rejected,
            "{stopped:?}"
        );
        let mut taken = 0;
        while rx.requests.recv_timeout(Duration::from_secs(2)).is_ok() {
            taken += 1;
        }
        assert_eq!(
            stopped.sent, taken,
            "{status}: every push the sender counted arrived"
        );
        assert_eq!(stopped.rejected, 0);
        assert!(
            stopped.dropped >= 1,
            "{status}: a full queue dropped its oldest: {stopped:?}"
        );
    }
}

#[test]
fn a_payload_refused_for_good_is_not_sent_again() {
    let test = "a_payload_refused_for_good_is_not_sent_again";
    let Some(rx) = OtlpReceiver::start(test, &["--status", "400", "--times", "1"]) else {
        return;
    };
    let (t, _s) = tree();
    let target = Target::otlp(&rx.url()).unwrap();
    let pusher = push(std::slice::from_ref(&t.root), target, fast()).unwrap();
    eventually("a payload taken after the refusal", || {
        stat(&pusher, "pushes") >= 2
    });
    let Stopped { rejected, .. } = pusher.shutdown();
    assert_eq!(rejected, 1);
    assert_eq!(t.root.name(), "kvm");
    drop(rx);
}

/// A receiver that accepts connections and never answers, or none at all.
fn silent_listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

#[test]
fn a_receiver_that_is_down_or_silent_costs_a_bounded_queue_and_a_bounded_shutdown() {
    let (t, _s) = tree();
    // Down: a port nothing listens on.
    let down = {
        let (l, addr) = silent_listener();
        drop(l);
        addr
    };
    // Silent: accepts, reads, never answers.
    let (l, silent) = silent_listener();
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().take(64).flatten() {
            held.push(c);
        }
    });
    for addr in [down, silent] {
        let options = PushOptions {
            queue: 3,
            timeout: Duration::from_millis(300),
            shutdown_deadline: Duration::from_millis(500),
            ..fast()
        };
        let target = Target::remote_write(&format!("http://{addr}")).unwrap();
        let pusher = push(std::slice::from_ref(&t.root), target, options).unwrap();
        eventually("payloads dropped from the full queue", || {
            stat(&pusher, "dropped") >= 2
        });
        assert!(stat(&pusher, "queued") <= 3);
        assert!(stat(&pusher, "failures") >= 1);
        let payloads_before = stat(&pusher, "payloads");
        let source = pusher.source().clone();
        let stopped = pusher.shutdown();
        // Nothing arrived; everything made was dropped (the shutdown's last one too).
        assert_eq!(stopped.sent, 0, "{addr}");
        let payloads = source.get("payloads").unwrap().as_u64();
        assert!(payloads > payloads_before.saturating_sub(1));
        assert_eq!(stopped.dropped, payloads, "{addr}: {stopped:?}");
        assert_eq!(source.get("queued").unwrap().as_u64(), 0);
    }
    drop(hold);
}

#[test]
fn targets_are_checked_and_options_too() {
    assert!(Target::otlp("https://collector:4318")
        .unwrap_err()
        .to_string()
        .contains("only http://"));
    assert!(Target::remote_write("not a url").is_err());
    let (t, _s) = tree();
    let target = Target::otlp("http://127.0.0.1:1").unwrap();
    let bad = PushOptions {
        queue: 0,
        ..PushOptions::default()
    };
    let err = push(std::slice::from_ref(&t.root), target, bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("queue"), "{err}");
}

// ---- Prometheus' remote-write receiver ----

#[test]
fn prometheus_remote_write_stores_the_series_of_metrics_with_their_values() {
    let test = "prometheus_remote_write_stores_the_series_of_metrics_with_their_values";
    let Some(prom) = Prometheus::start(
        test,
        "global:\n  scrape_interval: 1h\n",
        &["--web.enable-remote-write-receiver"],
    ) else {
        return;
    };

    let (t, _s) = tree();
    let target = Target::remote_write(&format!("http://{}", prom.addr())).unwrap();
    let pusher = push(std::slice::from_ref(&t.root), target, fast()).unwrap();
    eventually("a payload taken", || stat(&pusher, "pushes") >= 1);
    let stopped = pusher.shutdown();
    assert_eq!(stopped.rejected, 0, "{}", prom.log());

    // Every sample /metrics serves is stored under the same name and labels, with its value.
    let mut e = Encoder::new();
    let collected = e.collect(std::slice::from_ref(&t.root));
    let mut checked = 0;
    for f in collected.families() {
        let bounds: Vec<&str> = f.bound_labels().chain(["+Inf"]).collect();
        for s in f.series() {
            let labels: Vec<String> = s
                .labels()
                .map(|(k, v)| format!("{k}=\"{}\"", promql_string(v)))
                .collect();
            let select = |name: &str, extra: Option<String>| {
                let mut l = labels.clone();
                l.extend(extra);
                format!("{name}{{{}}}", l.join(","))
            };
            let mut wants = Vec::new();
            match f.metric_type() {
                MetricType::Counter => {
                    wants.push((select(&format!("{}_total", f.name()), None), s.value()))
                }
                MetricType::Gauge => wants.push((select(f.name(), None), s.value())),
                MetricType::Histogram => {
                    let mut cum = 0;
                    for (le, n) in bounds.iter().zip(s.buckets()) {
                        cum += n;
                        wants.push((
                            select(
                                &format!("{}_bucket", f.name()),
                                Some(format!("le=\"{le}\"")),
                            ),
                            cum as f64,
                        ));
                    }
                    if let Some(sum) = s.sum() {
                        wants.push((select(&format!("{}_count", f.name()), None), cum as f64));
                        wants.push((select(&format!("{}_sum", f.name()), None), sum));
                    }
                }
            }
            for (q, want) in wants {
                let got = prom.value(&q);
                assert_eq!(got, Some(want), "{q}");
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "{checked}");
    // The totals PromQL computes equal the tree's aggregates.
    let exits = t.root.get("exits").unwrap().as_u64() as f64;
    assert_eq!(prom.value("sum(vcpu_exits_total)"), Some(exits));
}
