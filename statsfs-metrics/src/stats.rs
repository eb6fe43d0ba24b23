//! The recorder's own statistics, in the recorder's source beside the facade's metrics.

use statsfs_core::cell::{Counter, Gauge};
use statsfs_derive::Stats;

/// What the recorder did: how much of the tree the facade's metrics take, and what it
/// refused or folded into an overflow series. Added to the recorder's source as
/// `facade_metrics`, `facade_series`, `facade_overflowed` and `facade_refused`.
#[derive(Stats, Debug)]
#[stats(crate = statsfs_core, name = "statsfs_metrics")]
pub struct RecorderStat {
    /// Metric names registered through the facade
    pub facade_metrics: Gauge<u64>,
    /// Series in the tree: a metric name with one label set
    pub facade_series: Gauge<u64>,
    /// Registrations of a new label set that went to its metric's overflow series
    /// (label `statsfs_overflow="true"`) because a limit on series was reached
    pub facade_overflowed: Counter,
    /// Registrations refused: a name registered before as another type, a name that is
    /// no file name or collides with a value already in the tree, or a new name past the
    /// limit on metric names
    pub facade_refused: Counter,
}
