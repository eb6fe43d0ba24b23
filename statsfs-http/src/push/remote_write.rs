//! Prometheus remote-write 1.0 payloads (`WriteRequest`, protobuf, then snappy): the
//! same series names and labels as `/metrics` (`docs/PUSH.md`).

use statsfs_core::{Source, Unit};
use statsfs_text::openmetrics::{Encoder, MetricType};

use super::proto::Writer;

/// Encodes trees as remote-write `WriteRequest`s, reusing its buffers.
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// use statsfs_http::push::RemoteWriteEncoder;
/// let schema = Schema::new_runtime("vcpu", vec![
///     Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
/// ])?;
/// let vcpu = Source::new("vcpu0")?;
/// vcpu.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
/// let mut encoder = RemoteWriteEncoder::new();
/// let request = encoder.encode(&[vcpu], 1_700_000_000_000);
/// assert!(request.windows(16).any(|w| w == b"vcpu_exits_total"));
/// # Ok::<(), statsfs_core::Error>(())
/// ```
pub struct RemoteWriteEncoder {
    encoder: Encoder,
    w: Writer,
    snappy: snap::raw::Encoder,
    compressed: Vec<u8>,
}

impl Default for RemoteWriteEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// `MetricMetadata.MetricType`.
fn metadata_type(t: MetricType) -> u64 {
    match t {
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
    }
}

impl RemoteWriteEncoder {
    /// An encoder.
    pub fn new() -> Self {
        RemoteWriteEncoder {
            encoder: Encoder::new(),
            w: Writer::default(),
            snappy: snap::raw::Encoder::new(),
            compressed: Vec::new(),
        }
    }

    /// How many series of `/metrics` the last payload holds (histograms counting once).
    pub fn series(&self) -> usize {
        self.encoder.series()
    }

    /// The `WriteRequest` (uncompressed) for the leaves of `roots`, every sample at
    /// `now_ms` (Unix milliseconds), with each family's metadata. Valid until the next
    /// call.
    pub fn encode(&mut self, roots: &[Source], now_ms: i64) -> &[u8] {
        self.w.buf.clear();
        let collected = self.encoder.collect(roots);
        let w = &mut self.w;
        let mut labels: Vec<(&str, &str)> = Vec::new();
        let mut name = String::new();
        for f in collected.families() {
            let ty = f.metric_type();
            let bounds: Vec<&str> = f.bound_labels().collect();
            for s in f.series() {
                // `le`: the index of a bucket's bound (past the last: `+Inf`).
                let mut series = |suffix: &str, le: Option<usize>, v: f64, w: &mut Writer| {
                    name.clear();
                    name.push_str(f.name());
                    name.push_str(suffix);
                    labels.clear();
                    labels.extend(s.labels());
                    labels.extend(le.map(|i| ("le", bounds.get(i).copied().unwrap_or("+Inf"))));
                    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    w.message(1, |w| {
                        let mut named = false;
                        for &(k, v) in labels.iter() {
                            if !named && k > "__name__" {
                                w.message(1, |w| {
                                    w.bytes(1, b"__name__");
                                    w.bytes(2, name.as_bytes());
                                });
                                named = true;
                            }
                            w.message(1, |w| {
                                w.bytes(1, k.as_bytes());
                                w.bytes(2, v.as_bytes());
                            });
                        }
                        if !named {
                            w.message(1, |w| {
                                w.bytes(1, b"__name__");
                                w.bytes(2, name.as_bytes());
                            });
                        }
                        w.message(2, |w| {
                            w.double(1, v);
                            w.uint(2, now_ms as u64);
                        });
                    });
                };
                match ty {
                    MetricType::Counter => series("_total", None, s.value(), w),
                    MetricType::Gauge => series("", None, s.value(), w),
                    MetricType::Histogram => {
                        let mut cum = 0u64;
                        let mut buckets = s.buckets();
                        for i in 0..=bounds.len() {
                            cum = cum.wrapping_add(buckets.next().unwrap_or(0));
                            series("_bucket", Some(i), cum as f64, w);
                        }
                        if let Some(sum) = s.sum() {
                            series("_count", None, cum as f64, w);
                            series("_sum", None, sum, w);
                        }
                    }
                }
            }
            w.message(3, |w| {
                w.uint(1, metadata_type(ty));
                let family = if ty == MetricType::Counter {
                    format!("{}_total", f.name())
                } else {
                    f.name().to_owned()
                };
                w.bytes(2, family.as_bytes());
                w.bytes(4, f.help().as_bytes());
                let unit = match f.unit() {
                    Unit::Seconds => "seconds",
                    Unit::Bytes => "bytes",
                    Unit::Cycles => "cycles",
                    Unit::None | Unit::Boolean => "",
                };
                w.bytes(5, unit.as_bytes());
            });
        }
        &self.w.buf
    }

    /// [`encode`](Self::encode), compressed with snappy (block format), as remote write
    /// sends it.
    pub fn encode_compressed(&mut self, roots: &[Source], now_ms: i64) -> &[u8] {
        self.encode(roots, now_ms);
        let max = snap::raw::max_compress_len(self.w.buf.len());
        // Grown (and zeroed) only when a bigger payload needs it; kept at its size.
        if self.compressed.len() < max {
            self.compressed.resize(max, 0);
        }
        let n = self
            .snappy
            .compress(&self.w.buf, &mut self.compressed)
            .unwrap_or(0);
        &self.compressed[..n]
    }
}
