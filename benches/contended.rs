//! 3. Two threads incrementing the same stat at once (BENCHMARKS.md).
//!
//! Each measured batch starts two threads at a barrier; each does `iters` increments of
//! the same stat; the time is the wall time from the barrier to the last thread's end,
//! divided by criterion as usual, so the reported time per iteration is the time for
//! two increments, one per thread, done in parallel. Pin the process to both cores:
//!
//! ```text
//! taskset -c 0,1 cargo bench --bench contended -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! After the measurement the sum is checked: the sharded counter must be exact.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use statsfs::cell::{Counter, ShardedCounter};
use statsfs::Stats;

#[derive(Stats, Default)]
struct HostStat {
    /// Requests served, by any thread: one cache line per thread
    requests: ShardedCounter,
    /// Requests served, one shared cell
    requests_shared: Counter,
}

const THREADS: usize = 2;

/// Runs `f(iters)` on `THREADS` threads started together; returns the wall time.
fn run(iters: u64, f: impl Fn(u64) + Sync) -> Duration {
    let barrier = Barrier::new(THREADS + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    f(iters);
                    Instant::now()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let end = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap();
        end.saturating_duration_since(start)
    })
}

fn contended(c: &mut Criterion) {
    let stats = Arc::new(HostStat::default());
    let mut total = 0u64;
    let mut g = c.benchmark_group("two_threads_inc");
    g.throughput(Throughput::Elements(THREADS as u64));
    g.sampling_mode(criterion::SamplingMode::Flat);
    g.bench_function("statsfs_ShardedCounter_inc", |b| {
        b.iter_custom(|iters| {
            total += iters * THREADS as u64;
            run(iters, |n| {
                for _ in 0..n {
                    black_box(&stats.requests).inc();
                }
            })
        })
    });
    g.bench_function("one_shared_fetch_add", |b| {
        b.iter_custom(|iters| {
            run(iters, |n| {
                for _ in 0..n {
                    black_box(&stats.requests_shared).inc();
                }
            })
        })
    });
    g.finish();
    // The read of the sharded counter is exact: every increment of every thread.
    assert_eq!(
        stats.requests.get(),
        total,
        "sharded counter lost increments"
    );
    let source = statsfs::Source::new("host").unwrap();
    source.add(stats.clone()).unwrap();
    assert_eq!(source.get("requests").unwrap().as_u64(), total);
    eprintln!("sharded counter exact after {total} increments from {THREADS} threads");
}

criterion_group!(benches, contended);
criterion_main!(benches);
