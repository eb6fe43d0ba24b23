//! The facade's metrics in every view: OpenMetrics (checked by promtool and parsed by
//! prometheus_client), the mount's files and its bulk binary files.

use std::fs;

use metrics::{counter, describe_histogram, gauge, histogram, Unit as M};
use statsfs_binary::Blob;
use statsfs_core::Source;
use statsfs_testkit::{can_mount, fixtures::mounted, run_with_input, tool};
use statsfs_text::openmetrics::{Encoder, Format};

use crate::{recorder, with};

/// A service's tree: `svc/` with a declared-looking total and the facade under
/// `svc/metrics/`.
fn service() -> (Source, statsfs_metrics::Recorder) {
    let svc = Source::new("svc").unwrap();
    svc.set_label("service", "demo").unwrap();
    let (facade, rec) = recorder();
    svc.add_subordinate(&facade).unwrap();
    with(&rec, || {
        counter!("http_requests_total", "method" => "GET", "status" => "200").increment(5);
        counter!("http_requests_total", "method" => "POST", "status" => "500").increment(2);
        gauge!("connections").set(3.0);
        describe_histogram!(
            "request_duration_seconds",
            M::Seconds,
            "Time to answer a request"
        );
        histogram!("request_duration_seconds", "method" => "GET").record(0.0015);
        histogram!("request_duration_seconds", "method" => "GET").record(0.25);
    });
    (svc, rec)
}

#[test]
fn openmetrics_names_series_as_the_facade_did_with_their_labels() {
    let (svc, _rec) = service();
    let mut enc = Encoder::new();
    let text = String::from_utf8(
        enc.encode(std::slice::from_ref(&svc), Format::Prometheus)
            .to_vec(),
    )
    .unwrap();
    for line in [
        "# TYPE http_requests_total counter",
        "http_requests_total{path=\"svc/m/method=GET,status=200\",method=\"GET\",status=\"200\",service=\"demo\"} 5",
        "http_requests_total{path=\"svc/m/method=POST,status=500\",method=\"POST\",status=\"500\",service=\"demo\"} 2",
        "# TYPE connections gauge",
        "connections{path=\"svc/m\",service=\"demo\"} 3",
        "# HELP request_duration_seconds Time to answer a request",
        "# TYPE request_duration_seconds histogram",
        // Bounds of log buckets of microseconds, as seconds: [1024, 2048) µs holds 1.5 ms.
        "request_duration_seconds_bucket{path=\"svc/m/method=GET\",method=\"GET\",service=\"demo\",le=\"0.000255\"} 0",
        "request_duration_seconds_bucket{path=\"svc/m/method=GET\",method=\"GET\",service=\"demo\",le=\"0.002047\"} 1",
        "request_duration_seconds_bucket{path=\"svc/m/method=GET\",method=\"GET\",service=\"demo\",le=\"+Inf\"} 2",
        "request_duration_seconds_sum{path=\"svc/m/method=GET\",method=\"GET\",service=\"demo\"} 0.2515",
        "request_duration_seconds_count{path=\"svc/m/method=GET\",method=\"GET\",service=\"demo\"} 2",
        "statsfs_metrics_facade_series{path=\"svc/m\",service=\"demo\"} 4",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    // Totals over label sets are aggregates: never exported (the receiver sums).
    assert_eq!(text.matches("http_requests_total{").count(), 2, "{text}");
    assert_eq!(enc.skipped(), 0);

    let test = "openmetrics_names_series_as_the_facade_did_with_their_labels";
    if let Some(promtool) = tool(test, "promtool") {
        let out = run_with_input(&promtool, &["check", "metrics"], &text);
        let report = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && report.trim().is_empty(),
            "promtool: {report}\n{text}"
        );
    }
    let om = String::from_utf8(enc.encode(&[svc], Format::OpenMetrics).to_vec()).unwrap();
    if let Some(py) = statsfs_testkit::python(test) {
        let script = "import sys\n\
            from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
            for f in parse(sys.stdin.read()):\n\
            \x20   for s in f.samples:\n\
            \x20       print(f.name, f.type, f.unit or '-', s.name, s.labels.get('method', '-'), float(s.value))\n";
        let out = run_with_input(&py, &["-c", script], &om);
        let parsed = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{om}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in [
            "http_requests counter - http_requests_total GET 5.0",
            "request_duration_seconds histogram seconds request_duration_seconds_sum GET 0.2515",
            "request_duration_seconds histogram seconds request_duration_seconds_count GET 2.0",
        ] {
            assert!(
                parsed.lines().any(|l| l == line),
                "missing {line:?} in\n{parsed}"
            );
        }
    }
}

#[test]
fn the_mount_shows_them_as_files_and_in_its_bulk_files() {
    if !can_mount("the_mount_shows_them_as_files_and_in_its_bulk_files") {
        return;
    }
    let (svc, rec) = service();
    let (_dir, m) = mounted(&svc, Default::default());
    let facade = m.path().join("svc/m");
    let read = |p: &str| fs::read_to_string(facade.join(p)).unwrap();
    assert_eq!(
        read("http_requests_total"),
        "7\n",
        "the total over label sets"
    );
    assert_eq!(read("method=GET,status=200/http_requests_total"), "5\n");
    assert_eq!(read("connections"), "3\n");
    assert_eq!(read("request_duration_seconds_sum"), "251500\n");
    let mut listing: Vec<String> = fs::read_dir(&facade)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listing.sort();
    for name in [
        "connections",
        "facade_series",
        "method=GET",
        "method=GET,status=200",
        "request_duration_seconds",
    ] {
        assert!(
            listing.iter().any(|l| l == name),
            "{name} not in {listing:?}"
        );
    }
    // The bulk file of the subtree: every series in one read, in the kernel's layout.
    let blob = Blob::decode(&fs::read(facade.join(".tree.stats")).unwrap()).unwrap();
    assert_eq!(
        blob.value("method=GET,status=200/http_requests_total"),
        Some(5)
    );
    assert_eq!(
        blob.value("method=POST,status=500/http_requests_total"),
        Some(2)
    );
    let hist = blob.values("method=GET/request_duration_seconds").unwrap();
    assert_eq!((hist.len(), hist.iter().sum::<u64>()), (28, 2));
    // A series registered after the mount shows at once.
    with(&rec, || {
        counter!("late_total", "phase" => "after").increment(9)
    });
    assert_eq!(read("phase=after/late_total"), "9\n");
    assert_eq!(read("late_total"), "9\n");
}

#[test]
fn every_series_is_exported_once_whatever_the_order_of_labels() {
    let (root, _rec) = crate::mixed_labels();
    let text =
        String::from_utf8(Encoder::new().encode(&[root], Format::Prometheus).to_vec()).unwrap();
    for line in [
        "first_plain_total{path=\"m\"} 1",
        "first_plain_total{path=\"m/k=a\",k=\"a\"} 10",
        "first_labelled_total{path=\"m/k=a\",k=\"a\"} 10",
        "first_labelled_total{path=\"m/{}\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("first_")).count(),
        4,
        "{text}"
    );
}
