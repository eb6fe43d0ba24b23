//! Hot paths, side by side in one run (BENCHMARKS.md, benchmarks 1, 2 and 4, and the
//! families, histogram sums (in `hist_log_record`) and gauges of "Declaring stats as
//! people keep them").
//!
//! Every case does `BATCH` operations per criterion iteration, so the reported time
//! divided by `BATCH` is the cost of one operation, and criterion's own per-iteration
//! overhead is amortized the same way for every case. The receiver goes through
//! `black_box` on every operation in every case, so the compiler can neither hoist the
//! load nor sink the store out of the loop: each case really does one increment (or one
//! record) per operation.
//!
//! ```text
//! taskset -c 1 cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use statsfs::cell::{Counter, Gauge, LinearHistogram, LogHistogram, WithSum};
use statsfs::{Family, Label, Stats};

const BATCH: u64 = 1000;

#[derive(Stats, Default)]
struct VcpuStat {
    /// Guest exits
    exits: Counter,
    /// Exit handling time, log2 buckets
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<32>,
    /// Exit handling time, linear buckets of 1000 ns
    #[stat(unit = seconds, exponent = -9)]
    exit_ns_linear: LinearHistogram<32, 1000>,
}

/// Exits by reason, as the KVM example counts them.
#[derive(Clone, Copy, Label)]
#[label(name = "reason")]
enum Exit {
    IoIn,
    IoOut,
    IoOutCtl,
    MmioRead,
    MmioWrite,
    Hlt,
    Interrupted,
    Other,
}

/// The same reasons as measured's label (both derives read a `label` attribute, so one
/// enum cannot carry both).
#[derive(Clone, Copy, measured::FixedCardinalityLabel)]
#[label(rename_all = "snake_case")]
enum MeasuredExit {
    IoIn,
    IoOut,
    IoOutCtl,
    MmioRead,
    MmioWrite,
    Hlt,
    Interrupted,
    Other,
}

/// measured's label group of one reason.
#[derive(measured::LabelGroup)]
#[label(set = ExitSet)]
struct ExitLabel {
    reason: MeasuredExit,
}

/// A family beside a histogram that keeps its sum.
#[derive(Stats)]
struct ReasonStat {
    /// Exits by reason
    exits: Family<Exit, Counter>,
    /// Exit handling time, log2 buckets, with the sum of the samples
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<32, WithSum>,
    /// Requests in flight
    inflight: Gauge<u64>,
}

/// The reasons the family cases increment, one per operation, the same for every case:
/// mostly port and MMIO exits, as the guest's loop makes them.
fn reasons() -> Vec<Exit> {
    const ALL: [Exit; 8] = [
        Exit::IoIn,
        Exit::IoOut,
        Exit::IoOutCtl,
        Exit::MmioRead,
        Exit::MmioWrite,
        Exit::Hlt,
        Exit::Interrupted,
        Exit::Other,
    ];
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..BATCH)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALL[(x % 8) as usize]
        })
        .collect()
}

/// What KVM does: `vcpu->stat.exits++` on a plain u64 field.
#[derive(Default)]
struct PlainVcpuStat {
    exits: u64,
}

/// Benchmark 1: the owner path vs a plain `u64 += 1`, through the same kind of reference.
fn owner_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("owner_inc");
    g.throughput(Throughput::Elements(BATCH));
    let stats = VcpuStat::default();
    let mut plain = PlainVcpuStat::default();
    g.bench_function("plain_u64_add", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&mut plain).exits += 1;
            }
        })
    });
    g.bench_function("statsfs_inc_local", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&stats).exits.inc_local();
            }
        })
    });
    // The same struct placed in a shared region (docs/REGION.md): the same loop, the same
    // one instruction; only where the struct lives differs.
    let dir = std::env::temp_dir().join(format!("statsfs-hot-path-{}.region", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let region = statsfs::region::Region::create(&dir, Default::default()).unwrap();
    let handle = region.alloc(VcpuStat::default()).unwrap();
    let in_region: &VcpuStat = &handle;
    g.bench_function("statsfs_inc_local_in_region", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(in_region).exits.inc_local();
            }
        })
    });
    g.finish();
    black_box((plain.exits, stats.exits.get(), in_region.exits.get()));
    drop(handle);
    let _ = std::fs::remove_file(&dir);
}

/// Benchmark 2: the shared path (any thread may write) vs the metrics crates' pre-resolved
/// counter handles.
///
/// Every crate's cell is on the heap behind one `Arc`, reached the same way: `black_box` of
/// a reference to the handle, one load of the `Arc`'s pointer, the locked increment. For
/// statsfs that is the `Arc<VcpuStat>` a source holds (`add(Arc<T>)`). Two controls:
/// `statsfs_inc_stack` is the same struct as a local on the stack (where this case used to
/// put it), and `statsfs_inc_repeat`, last in the group, is `statsfs_inc` again, so the
/// spread between two identical cases of one run is in every table.
fn shared_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared_inc");
    g.throughput(Throughput::Elements(BATCH));

    let stats = Arc::new(VcpuStat::default());
    let statsfs_inc = |b: &mut criterion::Bencher| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&stats).exits.inc();
            }
        })
    };
    g.bench_function("statsfs_inc", statsfs_inc);

    let on_stack = VcpuStat::default();
    g.bench_function("statsfs_inc_stack", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&on_stack).exits.inc();
            }
        })
    });

    let prom = prometheus::IntCounter::new("exits", "Guest exits").unwrap();
    g.bench_function("prometheus_IntCounter", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&prom).inc();
            }
        })
    });

    let pc: prometheus_client::metrics::counter::Counter<u64> = Default::default();
    g.bench_function("prometheus_client_Counter", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&pc).inc();
            }
        })
    });

    // The handle metrics-util's AtomicStorage (behind metrics-exporter-prometheus) hands
    // out: an `Arc<AtomicU64>` behind metrics' `Arc<dyn CounterFn>`.
    let m = metrics::Counter::from_arc(Arc::new(AtomicU64::new(0)));
    g.bench_function("metrics_Counter", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&m).increment(1);
            }
        })
    });

    // `measured::Counter` is the cell itself (no `Arc` inside), so it goes in one.
    let me = Arc::new(measured::Counter::new());
    g.bench_function("measured_Counter", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&me).inc();
            }
        })
    });

    g.bench_function("statsfs_inc_repeat", statsfs_inc);
    g.finish();
    black_box((stats.exits.get(), on_stack.exits.get()));
}

/// Samples for the histograms: nanosecond-ish durations spread over many buckets, the
/// same sequence for every case.
fn samples() -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..BATCH)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 1 ns .. ~30 us, log-uniform-ish.
            (x % 1024) << (x >> 60).min(5)
        })
        .collect()
}

/// Benchmark 4: recording a sample: log buckets and linear buckets.
fn histogram(c: &mut Criterion) {
    let samples = samples();
    let fsamples: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
    let stats = VcpuStat::default();

    let mut g = c.benchmark_group("hist_log_record");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("statsfs_LogHistogram32_record_local", |b| {
        b.iter(|| {
            for &v in &samples {
                black_box(&stats).exit_ns.record_local(v);
            }
        })
    });
    g.bench_function("statsfs_LogHistogram32_record", |b| {
        b.iter(|| {
            for &v in &samples {
                black_box(&stats).exit_ns.record(v);
            }
        })
    });
    // The same with the sum of the samples kept (`WithSum`): one more word written.
    let summed = ReasonStat::new();
    g.bench_function("statsfs_LogHistogram32_WithSum_record_local", |b| {
        b.iter(|| {
            for &v in &samples {
                black_box(&summed).exit_ns.record_local(v);
            }
        })
    });
    g.bench_function("statsfs_LogHistogram32_WithSum_record", |b| {
        b.iter(|| {
            for &v in &samples {
                black_box(&summed).exit_ns.record(v);
            }
        })
    });
    let pc = prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 31),
    );
    g.bench_function("prometheus_client_Histogram32_observe", |b| {
        b.iter(|| {
            for &v in &fsamples {
                black_box(&pc).observe(v);
            }
        })
    });
    let me = measured::Histogram::<31>::with_metadata(
        measured::metric::histogram::Thresholds::exponential_buckets(1.0, 2.0),
    );
    g.bench_function("measured_Histogram32_observe", |b| {
        b.iter(|| {
            for &v in &fsamples {
                black_box(&me).observe(v);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("hist_linear_record");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("statsfs_LinearHistogram32_record_local", |b| {
        b.iter(|| {
            for &v in &samples {
                black_box(&stats).exit_ns_linear.record_local(v);
            }
        })
    });
    g.bench_function("statsfs_LinearHistogram32_record", |b| {
        b.iter(|| {
            for &v in &samples {
                black_box(&stats).exit_ns_linear.record(v);
            }
        })
    });
    let pc = prometheus_client::metrics::histogram::Histogram::new(
        prometheus_client::metrics::histogram::linear_buckets(1000.0, 1000.0, 31),
    );
    g.bench_function("prometheus_client_Histogram32_observe", |b| {
        b.iter(|| {
            for &v in &fsamples {
                black_box(&pc).observe(v);
            }
        })
    });
    let me = measured::Histogram::<31>::with_metadata(
        measured::metric::histogram::Thresholds::linear_buckets(1000.0, 1000.0),
    );
    g.bench_function("measured_Histogram32_observe", |b| {
        b.iter(|| {
            for &v in &fsamples {
                black_box(&me).observe(v);
            }
        })
    });
    g.finish();
}

/// A family's member, written on both paths, against a plain array and the families of
/// the crates people use.
fn family(c: &mut Criterion) {
    let reasons = reasons();
    let stats = ReasonStat::new();

    let mut g = c.benchmark_group("family_owner_inc");
    g.throughput(Throughput::Elements(BATCH));
    let mut plain = [0u64; 8];
    g.bench_function("plain_array_add", |b| {
        b.iter(|| {
            for &r in &reasons {
                black_box(&mut plain)[r as usize] += 1;
            }
        })
    });
    g.bench_function("statsfs_family_inc_local", |b| {
        b.iter(|| {
            for &r in &reasons {
                black_box(&stats).exits[r].inc_local();
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("family_shared_inc");
    g.throughput(Throughput::Elements(BATCH));
    let shared = Arc::new(ReasonStat::new());
    g.bench_function("statsfs_family_inc", |b| {
        b.iter(|| {
            for &r in &reasons {
                black_box(&shared).exits[r].inc();
            }
        })
    });
    // prometheus-client: a `Family` keyed by label set, each member's handle resolved
    // once (`get_or_create(..).clone()`), then used by index: its best case.
    type Labels = Vec<(String, String)>;
    let pc: prometheus_client::metrics::family::Family<
        Labels,
        prometheus_client::metrics::counter::Counter<u64>,
    > = Default::default();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            pc.get_or_create(&vec![("reason".to_owned(), i.to_string())])
                .clone()
        })
        .collect();
    g.bench_function("prometheus_client_Family_handle_inc", |b| {
        b.iter(|| {
            for &r in &reasons {
                black_box(&handles)[r as usize].inc();
            }
        })
    });
    // What its documentation shows: `get_or_create` on every increment (a hash of the
    // label set and a read lock).
    let keys: Vec<Labels> = (0..8)
        .map(|i| vec![("reason".to_owned(), i.to_string())])
        .collect();
    g.bench_function("prometheus_client_Family_get_or_create_inc", |b| {
        b.iter(|| {
            for &r in &reasons {
                black_box(&pc).get_or_create(&keys[r as usize]).inc();
            }
        })
    });
    // measured: a dense `CounterVec` of a fixed-cardinality label: an index, no hash.
    let me = Arc::new(measured::CounterVec::with_label_set(ExitSet::new()));
    let mreasons: Vec<MeasuredExit> = reasons
        .iter()
        .map(|&r| {
            use measured::label::FixedCardinalityLabel as _;
            MeasuredExit::decode(r as usize)
        })
        .collect();
    g.bench_function("measured_CounterVec_inc", |b| {
        b.iter(|| {
            for &r in &mreasons {
                black_box(&me).inc(ExitLabel { reason: r });
            }
        })
    });
    g.finish();
    black_box((plain, stats.exits[Exit::Hlt].get()));
}

/// A gauge's saturating update against the wrapping one it replaced.
fn gauges(c: &mut Criterion) {
    let with = ReasonStat::new();
    let mut g = c.benchmark_group("gauge_inc_dec");
    g.throughput(Throughput::Elements(2 * BATCH));
    g.bench_function("statsfs_Gauge_inc_dec_local", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&with).inflight.inc_local();
                black_box(&with).inflight.dec_local();
            }
        })
    });
    g.bench_function("statsfs_Gauge_inc_dec", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&with).inflight.inc();
                black_box(&with).inflight.dec();
            }
        })
    });
    // What `Gauge::add`/`sub` did before they saturated: a wrapping fetch_add/fetch_sub.
    let wrapping = AtomicU64::new(0);
    g.bench_function("wrapping_fetch_add_sub", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&wrapping).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                black_box(&wrapping).fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    let pc: prometheus_client::metrics::gauge::Gauge<i64, std::sync::atomic::AtomicI64> =
        Default::default();
    g.bench_function("prometheus_client_Gauge_inc_dec", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(&pc).inc();
                black_box(&pc).dec();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, owner_path, shared_path, histogram, family, gauges);
criterion_main!(benches);
