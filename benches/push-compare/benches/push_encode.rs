//! One push of 100,000 series (100 VMs x 10 vCPUs x 100 counters, labels `path`, `vm`,
//! `vcpu`): statsfs's encoders (walk + encode) against the same payload built and encoded
//! the way the Rust OpenTelemetry exporters do it (`opentelemetry-proto` messages, `prost`)
//! and a prost-encoded remote-write request, each from values already collected (they do
//! not pay the walk). BENCHMARKS.md, "Pushing".
//!
//! ```text
//! taskset -c 1 cargo bench --manifest-path benches/push-compare/Cargo.toml -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! Before measuring, it prints the allocations each path makes per push (after a warm-up
//! push) and the payload sizes.

#[path = "../../common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use prost::Message;
use statsfs::http::push::{OtlpEncoder, RemoteWriteEncoder, Resource};
use statsfs::openmetrics::Encoder;
use statsfs::Source;

#[global_allocator]
static A: statsfs_testkit::alloc::Counting = statsfs_testkit::alloc::Counting;

/// The series as any exporter holds them: family name, help, and per series its labels
/// and value.
struct Snapshot {
    families: Vec<(String, String, Vec<(Vec<(String, String)>, f64)>)>,
}

fn snapshot(root: &Source) -> Snapshot {
    let mut e = Encoder::new();
    let c = e.collect(std::slice::from_ref(root));
    let families = c
        .families()
        .map(|f| {
            let series = f
                .series()
                .map(|s| {
                    let labels = s.labels().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                    (labels, s.value())
                })
                .collect();
            (f.name().to_owned(), f.help().to_owned(), series)
        })
        .collect();
    Snapshot { families }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

/// The OpenTelemetry exporters' path: messages of `opentelemetry-proto`, encoded by prost.
fn otlp_prost(s: &Snapshot, out: &mut Vec<u8>) {
    let metrics = s
        .families
        .iter()
        .map(|(name, help, series)| Metric {
            name: name.clone(),
            description: help.clone(),
            unit: "1".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: series
                    .iter()
                    .map(|(labels, v)| NumberDataPoint {
                        attributes: labels.iter().map(|(k, v)| kv(k, v)).collect(),
                        start_time_unix_nano: 1,
                        time_unix_nano: 2,
                        value: Some(number_data_point::Value::AsInt(*v as i64)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        })
        .collect();
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(ProtoResource {
                attributes: vec![kv("service.name", "bench")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "statsfs".to_owned(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    out.clear();
    req.encode(out).unwrap();
}

mod prompb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

/// Remote write with prost: the same series, labels sorted with `__name__`.
fn remote_write_prost(s: &Snapshot, out: &mut Vec<u8>) {
    let mut req = prompb::WriteRequest::default();
    for (name, help, series) in &s.families {
        let sample = format!("{name}_total");
        for (labels, v) in series {
            let mut l: Vec<prompb::Label> = labels
                .iter()
                .map(|(k, v)| prompb::Label {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect();
            l.push(prompb::Label {
                name: "__name__".to_owned(),
                value: sample.clone(),
            });
            l.sort_by(|a, b| a.name.cmp(&b.name));
            req.timeseries.push(prompb::TimeSeries {
                labels: l,
                samples: vec![prompb::Sample {
                    value: *v,
                    timestamp: 1_700_000_000_000,
                }],
            });
        }
        req.metadata.push(prompb::MetricMetadata {
            r#type: 1,
            metric_family_name: sample,
            help: help.clone(),
            unit: String::new(),
        });
    }
    out.clear();
    req.encode(out).unwrap();
}

fn allocations(what: &str, mut f: impl FnMut() -> usize) {
    f(); // warm-up: buffers reach their size
    let before = statsfs_testkit::alloc::calls();
    let bytes = f();
    let n = statsfs_testkit::alloc::calls() - before;
    eprintln!("{what}: {n} allocations per push, payload {bytes} bytes");
}

fn push_encode(c: &mut Criterion) {
    let root = common::vcpu_tree(100, 10, 100);
    let snap = snapshot(&root);
    let series: usize = snap.families.iter().map(|f| f.2.len()).sum();
    assert_eq!(series, 100_000);
    let roots = std::slice::from_ref(&root);
    let mut otlp = OtlpEncoder::new(Resource::of_process("bench"));
    let mut rw = RemoteWriteEncoder::new();
    let mut buf = Vec::new();
    let mut snappy = snap::raw::Encoder::new();

    allocations("otlp statsfs", || otlp.encode(roots, 1, 2).len());
    allocations("otlp opentelemetry-proto+prost", || {
        otlp_prost(&snap, &mut buf);
        buf.len()
    });
    allocations("remote write statsfs (uncompressed)", || rw.encode(roots, 1_700_000_000_000).len());
    allocations("remote write statsfs (snappy)", || rw.encode_compressed(roots, 1_700_000_000_000).len());
    allocations("remote write prost (snappy)", || {
        remote_write_prost(&snap, &mut buf);
        snappy.compress_vec(&buf).unwrap().len()
    });

    let mut g = c.benchmark_group("push_encode_100k_series");
    g.throughput(Throughput::Elements(100_000));
    g.sample_size(20);
    g.bench_function("otlp/statsfs", |b| b.iter(|| black_box(otlp.encode(roots, 1, 2).len())));
    g.bench_function("otlp/opentelemetry-proto+prost", |b| {
        b.iter(|| {
            otlp_prost(&snap, &mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("remote_write/statsfs", |b| b.iter(|| black_box(rw.encode(roots, 1_700_000_000_000).len())));
    g.bench_function("remote_write/prost", |b| {
        b.iter(|| {
            remote_write_prost(&snap, &mut buf);
            black_box(buf.len())
        })
    });
    g.bench_function("remote_write_snappy/statsfs", |b| {
        b.iter(|| black_box(rw.encode_compressed(roots, 1_700_000_000_000).len()))
    });
    g.bench_function("remote_write_snappy/prost", |b| {
        b.iter(|| {
            remote_write_prost(&snap, &mut buf);
            black_box(snappy.compress_vec(&buf).unwrap().len())
        })
    });
    g.finish();
}

criterion_group!(benches, push_encode);
criterion_main!(benches);
