//! Every crate's metrics in a statsfs tree.
//!
//! Most Rust libraries report their numbers through the [`metrics`] facade
//! (`metrics::counter!("name", "label" => "v").increment(1)`). [`Recorder`] is a backend
//! of that facade: install it, and every counter, gauge and histogram any crate of the
//! process registers becomes a value of a statsfs tree, served by every view (the files
//! of the mount, its bulk binary files, `/metrics`, the `statsfs` tool) beside the
//! statistics the program declares itself with `#[derive(Stats)]`.
//!
//! ```
//! use statsfs_core::Source;
//! use statsfs_metrics::Recorder;
//!
//! let svc = Source::new("svc")?;                    // the program's tree
//! let facade = Source::new("metrics")?;             // where the facade's metrics go
//! svc.add_subordinate(&facade)?;
//! let recorder = Recorder::new(&facade)?;
//! // In a program: Recorder::builder().install(&facade), once, at start-up.
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::describe_histogram!("wait_seconds", metrics::Unit::Seconds, "Time in the queue");
//!     metrics::histogram!("wait_seconds").record(0.0015);
//!     metrics::gauge!("connections", "listener" => "public").set(12.0);
//! });
//! let wait = facade.get("wait_seconds")?;           // log buckets of microseconds
//! assert_eq!(wait.words().iter().sum::<u64>(), 1);
//! assert_eq!(facade.get("wait_seconds_sum")?.as_u64(), 1500);
//! assert_eq!(facade.subordinate("listener=public").unwrap().get("connections")?.as_i64(), 12);
//! # Ok::<(), statsfs_core::Error>(())
//! ```
//!
//! The mapping (`docs/GUIDE.md#the-metrics-facade`):
//!
//! * **each metric name is a value**, with a runtime schema of its own whose name is
//!   empty, so OpenMetrics names it as its author did, with no prefix
//!   (`http_requests_total`; the exposition's own rules still apply: `.` becomes `_`,
//!   units as `docs/OPENMETRICS.md` says);
//! * **each label set is a source** under the recorder's (`method=GET,status=200/`),
//!   carrying the labels, so files, bulk files and OpenMetrics series (with the labels)
//!   come out as for any other source; the recorder's source holds the unlabelled series
//!   and, for a labelled metric, its total over every label set (an aggregate);
//! * **descriptions and units** given with `describe_*` before a name's first
//!   registration become its descriptor's; the facade's `f64`s become integers of the
//!   unit's steps (nanoseconds for gauges of seconds, see [`Buckets`] for histograms);
//! * **handles** take no lock: a counter's add is one atomic operation, a gauge's a
//!   compare-and-swap of its `f64`, a histogram's record two (its bucket and its sum); a
//!   key is found with loads only; registration of a new key is the only place that locks
//!   or allocates;
//! * **[`Limits`]** bound the tree the facade can grow; [`RecorderStat`] counts what
//!   they refused.
//!
//! With the feature `tokio`, [`runtime`] adds the tokio runtime's own statistics.
//!
//! The shared region holds declared structs only: the facade's series are not placed in
//! it.
#![deny(missing_docs)]

mod buckets;
mod index;
mod names;
mod recorder;
#[cfg(feature = "tokio")]
pub mod runtime;
mod series;
mod stats;
mod units;

pub use buckets::{Buckets, Matcher, MAX_BUCKETS};
pub use recorder::{Builder, InstallError, Limits, Recorder};
pub use stats::RecorderStat;
