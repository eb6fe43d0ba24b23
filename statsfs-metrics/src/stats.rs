//! The recorder's own statistics, in the recorder's source beside the facade's metrics.
//!
//! A runtime schema read as a block, not a `#[derive(Stats)]` struct: a derived struct in
//! a library every user links would be what rustc suggests whenever a user's own struct
//! lacks the derive ("the trait `Stats` is implemented for `RecorderStat`").

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use statsfs_core::{BlockSource, Descriptor, Kind, Schema, ValueType};

/// What the recorder did: how much of the tree the facade's metrics take, and what it
/// refused or sent to an overflow series. In the recorder's source as `facade_metrics`,
/// `facade_series`, `facade_overflowed` and `facade_refused` (schema `statsfs_metrics`).
#[derive(Debug, Default)]
pub struct RecorderStat {
    metrics: AtomicU64,
    series: AtomicU64,
    overflowed: AtomicU64,
    refused: AtomicU64,
}

impl RecorderStat {
    /// Metric names registered through the facade.
    pub fn metrics(&self) -> u64 {
        self.metrics.load(Relaxed)
    }

    /// Series in the tree: a metric name with one label set (overflow series not counted).
    pub fn series(&self) -> u64 {
        self.series.load(Relaxed)
    }

    /// Keys sent to their metric's overflow series (each once while the recorder
    /// remembers it).
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Relaxed)
    }

    /// Calls refused: their handles did nothing.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }

    pub(crate) fn set_sizes(&self, metrics: usize, series: usize) {
        self.metrics.store(metrics as u64, Relaxed);
        self.series.store(series as u64, Relaxed);
    }

    pub(crate) fn count_overflow(&self) {
        self.overflowed.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_refusal(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    /// The schema of these values, shared by every recorder.
    pub(crate) fn schema() -> Arc<Schema> {
        static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
        SCHEMA
            .get_or_init(|| {
                let d = |name, kind, doc| Descriptor::new(name, ValueType::U64, kind).with_doc(doc);
                Schema::new_runtime_packed(
                    "statsfs_metrics",
                    vec![
                        d(
                            "facade_metrics",
                            Kind::Instant,
                            "Metric names registered through the facade",
                        ),
                        d(
                            "facade_series",
                            Kind::Instant,
                            "Series in the tree: a metric name with one label set",
                        ),
                        d(
                            "facade_overflowed",
                            Kind::Cumulative,
                            "Keys sent to their metric's overflow series ({overflow}, label \
                             statsfs_overflow=\"true\") because a limit on series was reached",
                        ),
                        d(
                            "facade_refused",
                            Kind::Cumulative,
                            "Calls refused: a name registered before as another type, a name that \
                             is no file name or that a value of the source has, or a new name past \
                             the limit on names",
                        ),
                    ],
                )
                .expect("the recorder's schema is valid")
            })
            .clone()
    }
}

impl BlockSource for RecorderStat {
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        let words = [
            self.metrics(),
            self.series(),
            self.overflowed(),
            self.refused(),
        ];
        for (o, w) in out.iter_mut().zip(words) {
            *o = w;
        }
        Ok(())
    }
}
