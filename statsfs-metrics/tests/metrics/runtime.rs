//! The tokio runtime's statistics against a real multi-threaded runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs_core::Source;
use statsfs_metrics::runtime;
use statsfs_text::openmetrics::{Encoder, Format};

fn u(s: &Source, name: &str) -> u64 {
    s.get(name).unwrap().as_u64()
}

/// Waits (at most 20 s) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_runtime_reads_its_workers_tasks_and_queue_at_read_time() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let svc = Source::new("svc").unwrap();
    let tokio = runtime::source("tokio", rt.handle()).unwrap();
    svc.add_subordinate(&tokio).unwrap();
    assert_eq!(u(&tokio, "workers"), 2);
    let names: Vec<String> = tokio
        .subordinates()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(names, ["worker0", "worker1"]);

    // Both workers held by a task each, spinning: tasks spawned from outside wait in the
    // global queue.
    let release = Arc::new(AtomicBool::new(false));
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let (release, started) = (release.clone(), started.clone());
            rt.spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    eventually("both workers spinning", || {
        started.load(Ordering::SeqCst) == 2
    });
    let queued: Vec<_> = (0..5).map(|_| rt.spawn(async {})).collect();
    assert_eq!(u(&tokio, "global_queue_depth"), 5);
    assert_eq!(u(&tokio, "alive_tasks"), 7);
    std::thread::sleep(Duration::from_millis(20));
    release.store(true, Ordering::SeqCst);
    rt.block_on(async {
        for h in spinners.into_iter().chain(queued) {
            h.await.unwrap();
        }
    });
    eventually("no task alive", || u(&tokio, "alive_tasks") == 0);
    assert_eq!(u(&tokio, "global_queue_depth"), 0);
    // The workers spun for 20 ms or more each, then went idle and parked.
    eventually("the spinning counted as busy", || {
        tokio
            .subordinates()
            .iter()
            .all(|w| u(w, "busy_ns") >= 20_000_000)
    });
    eventually("the workers parked", || u(&tokio, "parks") >= 2);
    let sum: u64 = tokio.subordinates().iter().map(|w| u(w, "busy_ns")).sum();
    let total = u(&tokio, "busy_ns");
    assert!(
        total >= sum,
        "the total is read after the workers: {total} >= {sum}"
    );

    let text =
        String::from_utf8(Encoder::new().encode(&[svc], Format::Prometheus).to_vec()).unwrap();
    for needle in [
        "tokio_workers{path=\"svc/tokio\"} 2",
        "# TYPE tokio_worker_busy_seconds_total counter",
        "tokio_worker_parks_total{path=\"svc/tokio/worker1\",worker=\"1\"}",
        "tokio_alive_tasks{path=\"svc/tokio\"} 0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    drop(rt);
    // The runtime gone, its source still reads (its last values).
    assert_eq!(u(&tokio, "workers"), 2);
}
