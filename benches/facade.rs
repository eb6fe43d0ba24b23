//! The `metrics` facade through statsfs's recorder (`statsfs::metrics::Recorder`), side by
//! side with `metrics-exporter-prometheus`'s recorder and with a declared statsfs counter
//! (BENCHMARKS.md, "The metrics facade").
//!
//! * `facade_macro`: `counter!(...)` at the call site on every call, as libraries write
//!   it: the recorder looks the key up each time (with and without labels);
//! * `facade_handle`: a handle kept by the caller: counter `increment`, gauge `increment`,
//!   histogram `record`;
//! * `facade_macro_two_threads`: two threads at once on one labelled key (time for two
//!   calls, one per thread, in parallel);
//! * `facade_register`: 1,000 new label sets (what a new series costs the recorder).
//!
//! ```text
//! taskset -c 1 cargo bench --features metrics --bench facade -- --warm-up-time 1 --measurement-time 3
//! ```
//! (the two-thread group wants both cores: `taskset -c 0,1`).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use metrics::{counter, gauge, histogram, with_local_recorder, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use statsfs::cell::Counter;
use statsfs::{Source, Stats};

#[derive(Stats, Default)]
struct Declared {
    /// Requests served
    requests: Counter,
}

fn statsfs_recorder() -> statsfs::metrics::Recorder {
    statsfs::metrics::Recorder::new(&Source::new("m").unwrap()).unwrap()
}

fn exporter() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder()
}

/// Runs `f` as one benchmark of `g` under each recorder.
fn each<R: Recorder>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    recorder: &R,
    mut f: impl FnMut(),
) {
    g.bench_function(name, |b| with_local_recorder(recorder, || b.iter(&mut f)));
}

fn macro_calls(c: &mut Criterion) {
    let ours = statsfs_recorder();
    let theirs = exporter();
    let mut g = c.benchmark_group("facade_macro");
    g.throughput(Throughput::Elements(1));
    let plain = || counter!("requests_total").increment(black_box(1));
    let labelled = || {
        counter!("http_requests_total", "method" => "GET", "status" => "200")
            .increment(black_box(1))
    };
    each(&mut g, "counter/statsfs", &ours, plain);
    each(&mut g, "counter/exporter-prometheus", &theirs, plain);
    each(&mut g, "counter_2_labels/statsfs", &ours, labelled);
    each(
        &mut g,
        "counter_2_labels/exporter-prometheus",
        &theirs,
        labelled,
    );
    g.finish();
}

fn handles(c: &mut Criterion) {
    let ours = statsfs_recorder();
    let theirs = exporter();
    let declared = Declared::default();
    let mut g = c.benchmark_group("facade_handle");
    g.throughput(Throughput::Elements(1));
    for (name, rec) in [
        ("statsfs", &ours as &dyn Recorder),
        ("exporter-prometheus", &theirs as &dyn Recorder),
    ] {
        let (c, gg, h) = with_local_recorder(rec, || {
            (
                counter!("requests_total"),
                gauge!("in_flight"),
                histogram!("wait_seconds"),
            )
        });
        g.bench_function(format!("counter_increment/{name}"), |b| {
            b.iter(|| c.increment(black_box(1)))
        });
        g.bench_function(format!("gauge_increment/{name}"), |b| {
            b.iter(|| gg.increment(black_box(1.0)))
        });
        g.bench_function(format!("histogram_record/{name}"), |b| {
            b.iter(|| h.record(black_box(0.0015)))
        });
    }
    g.bench_function("counter_increment/statsfs-declared-shared", |b| {
        b.iter(|| black_box(&declared).requests.inc())
    });
    g.bench_function("counter_increment/statsfs-declared-owner", |b| {
        b.iter(|| black_box(&declared).requests.inc_local())
    });
    g.finish();
}

/// Two threads calling `f` `iters` times each, started together: the wall time from the
/// first start to the last end.
fn two_threads<R: Recorder + Sync>(recorder: &R, iters: u64, f: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    with_local_recorder(recorder, || {
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..iters {
                            f();
                        }
                        (start, Instant::now())
                    })
                })
            })
            .collect();
        let spans: Vec<(Instant, Instant)> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let start = spans.iter().map(|s| s.0).min().unwrap();
        let end = spans.iter().map(|s| s.1).max().unwrap();
        end - start
    })
}

fn contended(c: &mut Criterion) {
    let ours = statsfs_recorder();
    let theirs = exporter();
    let mut g = c.benchmark_group("facade_macro_two_threads");
    g.throughput(Throughput::Elements(2));
    let f = || counter!("http_requests_total", "method" => "GET").increment(black_box(1));
    g.bench_function("counter_1_label/statsfs", |b| {
        b.iter_custom(|n| two_threads(&ours, n, f))
    });
    g.bench_function("counter_1_label/exporter-prometheus", |b| {
        b.iter_custom(|n| two_threads(&theirs, n, f))
    });
    g.finish();
}

fn register(c: &mut Criterion) {
    let mut g = c.benchmark_group("facade_register");
    const N: usize = 1000;
    g.throughput(Throughput::Elements(N as u64));
    let keys: Vec<String> = (0..N).map(|i| format!("{i:04}")).collect();
    let run = |rec: &dyn Recorder| {
        with_local_recorder(rec, || {
            for k in &keys {
                counter!("requests_total", "id" => k.clone()).increment(1);
            }
        })
    };
    g.bench_function("new_label_sets/statsfs", |b| {
        b.iter_batched(statsfs_recorder, |r| run(&r), BatchSize::PerIteration)
    });
    g.bench_function("new_label_sets/exporter-prometheus", |b| {
        b.iter_batched(exporter, |r| run(&r), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, macro_calls, handles, contended, register);
criterion_main!(benches);
