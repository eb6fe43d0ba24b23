//! OTLP metrics payloads (`ExportMetricsServiceRequest`, protobuf), from the series that
//! `/metrics` serves (`docs/PUSH.md`).

use statsfs_core::{Source, Unit};
use statsfs_text::openmetrics::{Collected, Encoder, MetricType};

use super::proto::Writer;
use super::Resource;

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// Encodes trees as OTLP `ExportMetricsServiceRequest`s, reusing its buffers.
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// use statsfs_http::push::{OtlpEncoder, Resource};
/// let schema = Schema::new_runtime("vcpu", vec![
///     Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
/// ])?;
/// let vcpu = Source::new("vcpu0")?;
/// vcpu.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
/// let mut encoder = OtlpEncoder::new(Resource::of_process("demo"));
/// let payload = encoder.encode(&[vcpu], 1_000, 2_000);
/// assert!(payload.windows(10).any(|w| w == b"vcpu_exits"));
/// # Ok::<(), statsfs_core::Error>(())
/// ```
pub struct OtlpEncoder {
    encoder: Encoder,
    resource: Resource,
    w: Writer,
}

/// The UCUM unit OTLP carries: `s`, `By`, `{cycle}`, and none for plain numbers and
/// booleans (a unit `1` would make Prometheus' OTLP translation append `_ratio` to a
/// gauge's name, which `/metrics` does not).
pub fn ucum(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "s",
        Unit::Bytes => "By",
        Unit::Cycles => "{cycle}",
        Unit::None | Unit::Boolean => "",
    }
}

impl OtlpEncoder {
    /// An encoder whose payloads carry `resource`.
    pub fn new(resource: Resource) -> Self {
        OtlpEncoder {
            encoder: Encoder::new(),
            resource,
            w: Writer::default(),
        }
    }

    /// How many series the last payload holds (histograms counting once).
    pub fn series(&self) -> usize {
        self.encoder.series()
    }

    /// The payload for the leaves of `roots`: every series with `start_ns` as its start
    /// (cumulative) and `now_ns` as its time (both Unix nanoseconds). Valid until the next
    /// call.
    pub fn encode(&mut self, roots: &[Source], start_ns: u64, now_ns: u64) -> &[u8] {
        self.w.buf.clear();
        let collected = self.encoder.collect(roots);
        let (w, resource) = (&mut self.w, &self.resource);
        w.message(1, |w| {
            w.message(1, |w| {
                for (k, v) in &resource.attributes {
                    w.message(1, |w| {
                        w.bytes(1, k.as_bytes());
                        w.message(2, |w| match v {
                            super::Attribute::String(s) => w.bytes(1, s.as_bytes()),
                            super::Attribute::Int(i) => w.uint(3, *i as u64),
                        });
                    });
                }
            });
            w.message(2, |w| {
                w.message(1, |w| {
                    w.bytes(1, b"statsfs");
                    w.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
                });
                metrics(w, &collected, start_ns, now_ns);
            });
        });
        &self.w.buf
    }
}

fn attributes<'a>(w: &mut Writer, field: u32, labels: impl Iterator<Item = (&'a str, &'a str)>) {
    for (k, v) in labels {
        w.message(field, |w| {
            w.bytes(1, k.as_bytes());
            w.message(2, |w| w.bytes(1, v.as_bytes()));
        });
    }
}

fn metrics(w: &mut Writer, collected: &Collected<'_>, start_ns: u64, now_ns: u64) {
    for f in collected.families() {
        w.message(2, |w| {
            w.bytes(1, f.name().as_bytes());
            w.bytes(2, f.help().as_bytes());
            w.bytes(3, ucum(f.unit()).as_bytes());
            let ty = f.metric_type();
            let field = match ty {
                MetricType::Gauge => 5,
                MetricType::Counter => 7,
                MetricType::Histogram => 9,
            };
            w.message(field, |w| {
                for s in f.series() {
                    w.message(1, |w| {
                        if ty == MetricType::Histogram {
                            attributes(w, 9, s.labels());
                            w.fixed64(2, start_ns);
                            w.fixed64(3, now_ns);
                            w.fixed64(4, s.count());
                            if let Some(sum) = s.sum() {
                                w.double(5, sum);
                            }
                            let n = f.bounds().len();
                            w.packed_fixed64(6, n + 1, s.buckets());
                            w.packed_fixed64(7, n, f.bounds().map(f64::to_bits));
                        } else {
                            attributes(w, 7, s.labels());
                            if ty == MetricType::Counter {
                                w.fixed64(2, start_ns);
                            }
                            w.fixed64(3, now_ns);
                            match i64::try_from(s.integer()) {
                                Ok(i) if f.is_integer() => w.fixed64(6, i as u64),
                                _ => w.double(4, s.value()),
                            }
                        }
                    });
                }
                if ty != MetricType::Gauge {
                    w.uint(2, CUMULATIVE);
                }
                if ty == MetricType::Counter {
                    w.uint(3, 1);
                }
            });
        });
    }
}
