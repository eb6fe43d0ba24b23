//! Churn at network-service scale: the cost of replacing one connection source under a
//! parent of 1,000, 10,000 and 100,000 (`BENCHMARKS.md#churn`), and of replacing it with
//! a retire (`retire_subordinate`: what it counted stays in the totals) rather than a
//! removal.
//!
//! A "replacement" is `remove_subordinate` of the oldest connection, then `Source::new`,
//! `add` of its values and `add_subordinate` of a new one, under a parent with
//! `add(ValueGroup::aggregates::<ConnStat>())`. Measured: a replacement alone; with one aggregate
//! `get` per 10 replacements; with the tree mounted; an aggregate `get` right after a
//! replacement against one with no change; `stat` of `svc/c<i>/rx` through the mount for
//! 1,000 distinct connections (entries cached for 0 s, so every `stat` is a lookup).
//!
//! Run as root, client and FUSE daemon pinned to one CPU (one process here):
//!
//! ```sh
//! taskset -c 0 cargo bench --bench churn
//! ```

use std::collections::VecDeque;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use statsfs::cell::Counter;
use statsfs::vfs::{mount, MountOptions};
use statsfs::{Source, Stats, ValueGroup};

/// One connection's counters.
#[derive(Stats, Default)]
struct ConnStat {
    /// Bytes received
    rx: Counter,
    /// Bytes sent
    tx: Counter,
    /// Requests served
    requests: Counter,
}

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// `svc/` with aggregates and `n` connections, oldest first.
struct Service {
    svc: Source,
    live: VecDeque<Source>,
    next: u64,
}

impl Service {
    fn new(n: usize) -> Self {
        let svc = Source::new("svc").unwrap();
        svc.add(ValueGroup::aggregates::<ConnStat>()).unwrap();
        let mut s = Service {
            svc,
            live: VecDeque::with_capacity(n),
            next: 0,
        };
        for _ in 0..n {
            let c = s.connection();
            s.svc.add_subordinate(&c).unwrap();
            s.live.push_back(c);
        }
        s
    }

    fn connection(&mut self) -> Source {
        let c = Source::new(format!("c{}", self.next)).unwrap();
        self.next += 1;
        let stats = Arc::new(ConnStat::default());
        stats.rx.add(100);
        c.add(stats).unwrap();
        c
    }

    /// The same sources, made and dropped in the same order, never in a tree: what a
    /// replacement costs before the tree does anything (allocation, and touching a
    /// connection that has gone cold among `n`).
    fn replace_detached(&mut self) {
        drop(self.live.pop_front());
        let c = self.connection();
        self.live.push_back(c);
    }

    /// One replacement: the oldest connection goes, a new one comes.
    fn replace(&mut self) {
        let old = self.live.pop_front().unwrap();
        self.svc.remove_subordinate(&old).unwrap();
        let c = self.connection();
        self.svc.add_subordinate(&c).unwrap();
        self.live.push_back(c);
    }

    /// One replacement in which the oldest connection retires.
    fn replace_retiring(&mut self) {
        let old = self.live.pop_front().unwrap();
        self.svc.retire_subordinate(&old).unwrap();
        let c = self.connection();
        self.svc.add_subordinate(&c).unwrap();
        self.live.push_back(c);
    }
}

fn can_mount() -> bool {
    // SAFETY: geteuid cannot fail.
    let ok = unsafe { libc::geteuid() } == 0 && Path::new("/dev/fuse").exists();
    if !ok {
        eprintln!("SKIPPED: the mount benchmarks need root and /dev/fuse");
    }
    ok
}

fn replacement(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn/replacement");
    for n in SIZES {
        let mut d = Service::new(0);
        for _ in 0..n {
            let c = d.connection();
            d.live.push_back(c);
        }
        g.bench_function(BenchmarkId::new("detached_baseline", n), |b| {
            b.iter(|| d.replace_detached())
        });
        drop(d);
        let mut s = Service::new(n);
        g.bench_function(BenchmarkId::new("no_reads", n), |b| b.iter(|| s.replace()));
        // The aggregates' members are collected by the first read, then kept up to date.
        black_box(s.svc.get("rx").unwrap());
        let mut k = 0u32;
        g.bench_function(BenchmarkId::new("get_per_10", n), |b| {
            b.iter(|| {
                s.replace();
                k += 1;
                if k % 10 == 0 {
                    black_box(s.svc.get("rx").unwrap());
                }
            })
        });
    }
    g.finish();
}

/// Retiring instead of removing, with the aggregates collected (as a reader keeps them):
/// the cost must not grow with the number of siblings.
fn retiring(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn/retire");
    for n in [1_000, 100_000] {
        let mut s = Service::new(n);
        black_box(s.svc.get("rx").unwrap());
        g.bench_function(BenchmarkId::new("remove_replacement", n), |b| {
            b.iter(|| s.replace())
        });
        g.bench_function(BenchmarkId::new("retire_replacement", n), |b| {
            b.iter(|| s.replace_retiring())
        });
        black_box(s.svc.get("rx").unwrap());
    }
    g.finish();
}

fn aggregate_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("churn/aggregate_get");
    for n in SIZES {
        let mut s = Service::new(n);
        black_box(s.svc.get("rx").unwrap());
        g.bench_function(BenchmarkId::new("steady", n), |b| {
            b.iter(|| black_box(s.svc.get("rx").unwrap()))
        });
        // Only the read is timed; the replacement before it is not.
        g.bench_function(BenchmarkId::new("after_change", n), |b| {
            b.iter_custom(|iters| {
                let mut t = Duration::ZERO;
                for _ in 0..iters {
                    s.replace();
                    let start = Instant::now();
                    black_box(s.svc.get("rx").unwrap());
                    t += start.elapsed();
                }
                t
            })
        });
    }
    g.finish();
}

fn mounted(c: &mut Criterion) {
    if !can_mount() {
        return;
    }
    let mut g = c.benchmark_group("churn/mounted");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let mut s = Service::new(n);
        let dir = tempfile::TempDir::new().unwrap();
        let opts = MountOptions::default().with_ttl(Duration::ZERO);
        let m = mount(dir.path(), std::slice::from_ref(&s.svc), opts).unwrap();
        g.bench_function(BenchmarkId::new("replacement", n), |b| {
            b.iter(|| s.replace())
        });
        // 1,000 distinct live connections, each `stat`ed once per round.
        let paths: Vec<_> = s
            .live
            .iter()
            .step_by((n / 1000).max(1))
            .take(1000)
            .map(|c| m.path().join("svc").join(c.name()).join("rx"))
            .collect();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("stat_path", n), |b| {
            b.iter(|| {
                black_box(std::fs::metadata(&paths[i % paths.len()]).unwrap());
                i += 1;
            })
        });
        drop(m);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = replacement, retiring, aggregate_read, mounted
}
criterion_main!(benches);
