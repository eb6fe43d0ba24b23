//! What the facade's calls make of the tree: values, label sets, totals, descriptions,
//! histograms, limits, conflicts and hostile names.

use std::sync::Arc;

use metrics::{counter, describe_counter, describe_gauge, gauge, histogram, Unit as M};
use statsfs_core::{Base, Kind, Role, Scale, Source, Unit};
use statsfs_metrics::{Buckets, Limits, Matcher, Recorder};

use crate::{recorder, with};

fn u(s: &Source, name: &str) -> u64 {
    s.get(name)
        .unwrap_or_else(|e| panic!("{}/{name}: {e}", s.path()))
        .as_u64()
}

fn sub(s: &Source, name: &str) -> Source {
    s.subordinate(name)
        .unwrap_or_else(|| panic!("no {name} in {}: {:?}", s.path(), names(s)))
}

fn names(s: &Source) -> Vec<String> {
    s.subordinates()
        .iter()
        .map(|c| c.name().to_owned())
        .collect()
}

#[test]
fn counters_are_values_and_label_sets_are_sources_with_their_labels() {
    let (root, rec) = recorder();
    with(&rec, || {
        counter!("requests_total").increment(2);
        counter!("http_requests_total", "method" => "GET", "status" => "200").increment(5);
        // The same set, its labels in another order: the same series.
        counter!("http_requests_total", "status" => "200", "method" => "GET").increment(1);
        counter!("http_requests_total", "method" => "PUT", "status" => "500").increment(1);
        // Another metric with a set already there shares its source.
        counter!("http_bytes_total", "method" => "GET", "status" => "200").absolute(100);
        counter!("http_bytes_total", "method" => "GET", "status" => "200").absolute(40);
    });
    assert_eq!(u(&root, "requests_total"), 2);
    assert_eq!(
        names(&root),
        ["method=GET,status=200", "method=PUT,status=500"]
    );
    let get = sub(&root, "method=GET,status=200");
    assert_eq!(u(&get, "http_requests_total"), 6);
    assert_eq!(
        u(&get, "http_bytes_total"),
        100,
        "absolute never goes backwards"
    );
    assert_eq!(
        get.own_labels(),
        [
            ("method".into(), "GET".into()),
            ("status".into(), "200".into())
        ]
    );
    // The totals over label sets, in the recorder's source.
    assert_eq!(u(&root, "http_requests_total"), 7);
    assert!(root.get("http_requests_total").unwrap().is_aggregate());
    assert_eq!(u(&root, "http_bytes_total"), 100);
    assert_eq!(rec.stats().metrics(), 3);
    assert_eq!(rec.stats().series(), 4);
    assert_eq!(rec.stats().refused(), 0);
}

#[test]
fn held_handles_and_many_threads_count_exactly() {
    let (root, rec) = recorder();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let rec = rec.clone();
            std::thread::spawn(move || {
                with(&rec, || {
                    let held = counter!("ops_total", "shard" => (t % 2).to_string());
                    for i in 0..10_000u64 {
                        held.increment(1);
                        // A key of its own per thread, registered while others look up.
                        counter!("per_thread_total", "t" => t.to_string()).increment(1);
                        if i % 1000 == 0 {
                            counter!("new_keys_total", "k" => format!("{t}-{i}")).increment(1);
                        }
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(u(&root, "ops_total"), 40_000);
    assert_eq!(u(&sub(&root, "shard=0"), "ops_total"), 20_000);
    assert_eq!(u(&root, "per_thread_total"), 40_000);
    assert_eq!(u(&sub(&root, "t=3"), "per_thread_total"), 10_000);
    assert_eq!(u(&root, "new_keys_total"), 40);
}

#[test]
fn gauges_keep_fractions_as_steps_of_their_unit() {
    let (root, rec) = recorder();
    with(&rec, || {
        describe_gauge!("uptime_seconds", M::Seconds, "Time since start");
        gauge!("uptime_seconds").set(1.5);
        gauge!("uptime_seconds").increment(0.25);
        gauge!("queue_depth", "queue" => "a").increment(3.0);
        gauge!("queue_depth", "queue" => "a").decrement(5.0);
        gauge!("queue_depth", "queue" => "b").set(10.0);
        gauge!("memory", "kind" => "heap").set(2.0);
        describe_gauge!("memory", M::Kibibytes, "too late: the name is registered");
    });
    let up = root.get("uptime_seconds").unwrap();
    assert_eq!(up.as_i64(), 1_750_000_000);
    let d = up.descriptor();
    assert_eq!(
        (d.unit, d.scale, d.kind),
        (Unit::Seconds, Scale::NANO, Kind::Instant)
    );
    assert_eq!(d.doc, "Time since start");
    assert_eq!(
        sub(&root, "queue=a").get("queue_depth").unwrap().as_i64(),
        -2
    );
    assert_eq!(
        root.get("queue_depth").unwrap().as_i64(),
        8,
        "the sum of the sets"
    );
    // Described after its first registration: the descriptor stays as it was made.
    let mem = sub(&root, "kind=heap").get("memory").unwrap();
    assert_eq!((mem.as_i64(), mem.descriptor().unit), (2, Unit::None));
}

#[test]
fn descriptions_and_units_given_first_are_the_descriptors() {
    let (root, rec) = recorder();
    with(&rec, || {
        describe_counter!(
            "rx_total",
            M::Kibibytes,
            "Data received\nsecond line dropped"
        );
        describe_counter!("rate_total", M::BitsPerSecond, "A rate");
        counter!("rx_total").increment(3);
        counter!("rate_total").increment(3);
        counter!("tx_bytes_total").increment(3);
    });
    let rx = root.get("rx_total").unwrap();
    let d = rx.descriptor();
    assert_eq!((rx.as_u64(), d.unit, d.scale), (3, Unit::Bytes, Scale::KIB));
    assert_eq!(d.doc, "Data received");
    assert_eq!(
        root.get("rate_total").unwrap().descriptor().doc,
        "A rate (bits per second)"
    );
    // Undescribed, the name's last word is the unit.
    assert_eq!(
        root.get("tx_bytes_total").unwrap().descriptor().unit,
        Unit::Bytes
    );
}

#[test]
fn histograms_have_real_buckets_and_a_sum() {
    let root = Source::new("m").unwrap();
    let rec = Recorder::builder()
        .buckets(Matcher::Full("depth".into()), Buckets::linear(10, 4))
        .buckets(
            Matcher::Suffix("_ms_seconds".into()),
            Buckets::log(8).exponent(-3),
        )
        .build(&root)
        .unwrap();
    with(&rec, || {
        for s in [0.0000005, 0.000001, 0.0015, 100.0] {
            histogram!("wait_seconds").record(s);
        }
        for v in [0.0, 9.0, 10.0, 35.0, 1000.0] {
            histogram!("depth", "q" => "x").record(v);
        }
        histogram!("slow_ms_seconds").record(0.004);
    });
    // Undescribed but named in seconds: log buckets of microseconds, 28 of them.
    let wait = root.get("wait_seconds").unwrap();
    let d = wait.descriptor();
    assert_eq!(
        (d.kind, d.size, d.unit, d.scale),
        (Kind::LogHistogram, 28, Unit::Seconds, Scale::MICRO)
    );
    let w = wait.words();
    assert_eq!((w[0], w[1], w[11], w[27]), (0, 2, 1, 1), "{w:?}"); // 0.5 µs rounds to 1
    assert_eq!(w.iter().sum::<u64>(), 4);
    let sum = root.get("wait_seconds_sum").unwrap();
    assert_eq!(sum.as_u64(), 1 + 1 + 1500 + 100_000_000);
    assert_eq!(sum.descriptor().role, Role::HistogramSum);
    let depth = sub(&root, "q=x").get("depth").unwrap();
    assert_eq!(
        depth.descriptor().kind,
        Kind::LinearHistogram { bucket_size: 10 }
    );
    assert_eq!(depth.words(), [2, 1, 0, 2]);
    assert_eq!(
        root.get("depth").unwrap().words(),
        [2, 1, 0, 2],
        "the total"
    );
    let slow = root.get("slow_ms_seconds").unwrap();
    assert_eq!((slow.descriptor().scale.exponent, slow.words()[3]), (-3, 1)); // 4 ms in [4, 8)
    assert_eq!(slow.descriptor().scale.base, Base::Ten);
}

#[test]
fn past_the_limits_new_label_sets_overflow_and_totals_stay_exact() {
    let root = Source::new("m").unwrap();
    let rec = Recorder::builder()
        .limits(Limits {
            metrics: 3,
            series: 6,
            series_per_metric: 3,
        })
        .build(&root)
        .unwrap();
    with(&rec, || {
        for id in 0..100 {
            counter!("by_request_total", "request_id" => id.to_string()).increment(1);
        }
        for id in 0..10 {
            counter!("other_total", "id" => id.to_string()).increment(2);
        }
        counter!("third_total").increment(1);
        counter!("fourth_total").increment(1); // past the limit on names
    });
    let mut kept: Vec<String> = names(&root);
    kept.sort();
    assert_eq!(
        kept,
        [
            "id=0",
            "id=1",
            "id=2",
            "request_id=0",
            "request_id=1",
            "request_id=2",
            "{overflow}"
        ]
    );
    let overflow = sub(&root, "{overflow}");
    assert_eq!(u(&overflow, "by_request_total"), 97);
    assert_eq!(u(&overflow, "other_total"), 14);
    assert_eq!(
        overflow.own_labels(),
        [("statsfs_overflow".into(), "true".into())]
    );
    assert_eq!(u(&root, "by_request_total"), 100, "nothing lost");
    assert_eq!(u(&root, "other_total"), 20);
    // The sixth series was the last: the third name's only series overflows too, and its
    // total still counts it.
    assert_eq!(u(&root, "third_total"), 1);
    assert_eq!(u(&overflow, "third_total"), 1);
    assert!(root.get("fourth_total").is_err());
    assert_eq!(rec.stats().series(), 6, "{kept:?}");
    assert_eq!(rec.stats().overflowed(), 97 + 7 + 1);
    assert_eq!(rec.stats().refused(), 1);
    assert_eq!(rec.stats().metrics(), 3);
}

#[test]
fn a_name_of_two_types_or_no_file_name_is_refused_and_counted() {
    let (root, rec) = recorder();
    with(&rec, || {
        counter!("jobs").increment(1);
        gauge!("jobs").set(9.0); // another type: refused, the counter untouched
        histogram!("jobs").record(1.0);
        counter!("").increment(1);
        counter!("..").increment(1);
        counter!("facade_series").increment(1); // the recorder's own value's name
        counter!("jobs").increment(1);
    });
    assert_eq!(u(&root, "jobs"), 2);
    assert_eq!(rec.stats().refused(), 5);
    assert_eq!(rec.stats().series(), 1);
}

#[test]
fn hostile_names_and_labels_become_names_the_tree_takes() {
    let (root, rec) = recorder();
    let long = "v".repeat(1000);
    with(&rec, || {
        counter!("a/b\u{1b}[2J", "x/y.z" => "1/2,3=4 5\n").increment(1);
        counter!("http.server.requests", "__name__" => "q", "1st" => "\u{9b}").increment(1);
        counter!("long_total", "k" => long.clone()).increment(1);
        counter!("long_total", "k" => format!("{long}w")).increment(2);
    });
    assert_eq!(u(&root, "a_b_[2J"), 1);
    let s = sub(&root, "x_y_z=1%2F2%2C3%3D4%205\u{fffd}");
    assert_eq!(
        s.own_labels(),
        [("x_y_z".into(), "1/2,3=4 5\u{fffd}".into())]
    );
    let s = sub(&root, "_1st=\u{fffd},_name__=q");
    assert_eq!(u(&s, "http.server.requests"), 1);
    assert_eq!(u(&root, "long_total"), 3);
    let longs: Vec<String> = names(&root)
        .into_iter()
        .filter(|n| n.starts_with("k="))
        .collect();
    assert_eq!(longs.len(), 2, "two distinct long sets: {longs:?}");
    assert!(longs.iter().all(|n| n.len() <= 200));
}

#[test]
fn an_unlabelled_series_beside_labelled_ones_is_kept_in_either_order() {
    let (root, rec) = crate::mixed_labels();
    // Unlabelled first: it keeps the name; there is no total.
    assert_eq!(u(&root, "first_plain_total"), 1);
    assert!(!root.get("first_plain_total").unwrap().is_aggregate());
    // Labelled first: the total keeps the name, the unlabelled series is in `{}`.
    assert_eq!(u(&root, "first_labelled_total"), 11);
    assert_eq!(u(&sub(&root, "{}"), "first_labelled_total"), 1);
    assert!(sub(&root, "{}").own_labels().is_empty());
    assert_eq!(rec.stats().refused(), 0);
}

#[test]
fn a_recorder_whose_names_are_taken_says_so() {
    let root = Source::new("m").unwrap();
    let _first = Recorder::new(&root).unwrap();
    let err = Recorder::new(&root).unwrap_err().to_string();
    assert!(err.contains("facade_metrics"), "{err}");
    let rec = Arc::new(Recorder::new(&Source::new("n").unwrap()).unwrap());
    assert!(format!("{rec:?}").contains("\"n\""));
}

#[test]
fn the_hot_path_allocates_nothing_and_registration_only_once() {
    use statsfs_testkit::alloc::calls;
    let (root, rec) = recorder();
    with(&rec, || {
        let c = counter!("hot_total", "k" => "v");
        let h = histogram!("hot_seconds");
        let g = gauge!("hot_level");
        let before = calls();
        for i in 0..10_000u64 {
            c.increment(1);
            h.record(i as f64 * 1e-6);
            g.increment(1.0);
            // The call-site form: a lookup of a key the recorder knows.
            counter!("hot_total", "k" => "v").increment(1);
            counter!("hot_plain_total").increment(1);
        }
        let after = calls();
        // `hot_plain_total` was new: its one registration allocated; the rest nothing.
        let first = calls();
        counter!("hot_plain_total").increment(1);
        assert_eq!(calls(), first, "a known key allocates nothing");
        assert!(after > before, "the first registration allocates");
        let before = calls();
        for _ in 0..10_000 {
            counter!("hot_plain_total").increment(1);
            c.increment(1);
        }
        assert_eq!(calls(), before, "no allocation on the hot path");
    });
    assert_eq!(u(&root, "hot_total"), 30_000);
    assert_eq!(u(&root, "hot_plain_total"), 20_001);
    assert_eq!(u(&root, "hot_level") as i64, 10_000);
}

#[test]
fn overflowed_keys_are_remembered_and_a_label_cannot_take_the_overflow_over() {
    use statsfs_testkit::alloc::calls;
    let root = Source::new("m").unwrap();
    let rec = Recorder::builder()
        .limits(Limits {
            series_per_metric: 2,
            ..Limits::default()
        })
        .build(&root)
        .unwrap();
    with(&rec, || {
        // A label named like the overflow's own comes first: it is a label set like any.
        counter!("x_total", "statsfs_overflow" => "true").increment(1);
        counter!("x_total", "k" => "a").increment(1);
        for i in 0..10 {
            counter!("x_total", "k" => format!("{i}")).increment(1);
        }
        // A key sent to the overflow once takes no lock and allocates nothing after.
        let key = "9".to_owned();
        counter!("x_total", "k" => key.clone()).increment(1);
        let before = calls();
        for _ in 0..1000 {
            counter!("x_total", "k" => key.clone()).increment(1);
        }
        let overflowed = calls() - before;
        // The same calls of a key with a series of its own: the caller's allocations
        // (the label's `String` and the key's `Vec`), none of the recorder's.
        let own = "a".to_owned();
        let before = calls();
        for _ in 0..1000 {
            counter!("x_total", "k" => own.clone()).increment(1);
        }
        assert_eq!(overflowed, calls() - before);
    });
    assert_eq!(u(&sub(&root, "statsfs_overflow=true"), "x_total"), 1);
    assert_eq!(u(&sub(&root, "{overflow}"), "x_total"), 10 + 1001);
    assert_eq!(
        u(&root, "x_total"),
        1 + 1001 + 10 + 1001,
        "the total is exact"
    );
    assert_eq!(rec.stats().overflowed(), 10, "ten keys, each once");
}

#[test]
fn installing_a_second_recorder_leaves_its_tree_alone() {
    let first = Source::new("first").unwrap();
    let second = Source::new("second").unwrap();
    // Whatever installed a recorder in this process before, a second install fails
    // without touching its root.
    let _ = Recorder::builder().install(&first);
    let err = Recorder::builder().install(&second).unwrap_err();
    assert!(err.to_string().contains("installed already"), "{err}");
    assert!(
        second.get("facade_series").is_err(),
        "the tree is as it was"
    );
}
