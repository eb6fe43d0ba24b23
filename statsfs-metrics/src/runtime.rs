//! The tokio runtime's own statistics as a source, read at read time (feature `tokio`).
//!
//! ```text
//! tokio/                 workers, alive_tasks, global_queue_depth; totals of the workers'
//! ├── worker0/           busy_ns, parks, park_unparks (label worker="0")
//! └── worker1/
//! ```
//!
//! The values are tokio's stable [`RuntimeMetrics`] (no `tokio_unstable` needed; the
//! workers' values exist only on targets with 64-bit atomics, as in tokio), read
//! when the tree is read: nothing runs on the runtime's threads and nothing is sampled in
//! the background. Every runtime's source shares two runtime schemas (`tokio` and
//! `tokio_worker`), so a tree with several runtimes can total them at a common parent
//! (`add(ValueGroup::aggregates_of(runtime::worker_schema()))`). OpenMetrics names them
//! `tokio_alive_tasks`, `tokio_worker_busy_seconds_total`, ... .
//!
//! ```
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # let _guard = rt.enter();
//! use statsfs_core::Source;
//! let svc = Source::new("svc")?;
//! let tokio = statsfs_metrics::runtime::source("tokio", &tokio::runtime::Handle::current())?;
//! svc.add_subordinate(&tokio)?;
//! assert_eq!(tokio.get("workers")?.as_u64(), 1);
//! # Ok::<(), statsfs_core::Error>(())
//! ```

use std::io;
use std::sync::{Arc, OnceLock};

use statsfs_core::{Descriptor, Error, Kind, Scale, Schema, Source, Unit, ValueGroup, ValueType};
use tokio::runtime::{Handle, RuntimeMetrics};

/// The schema of a runtime's own values: `workers`, `alive_tasks`, `global_queue_depth`.
pub fn runtime_schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    let level = |name, doc| Descriptor::new(name, ValueType::U64, Kind::Instant).with_doc(doc);
    SCHEMA
        .get_or_init(|| {
            Schema::new_runtime_packed(
                "tokio",
                vec![
                    level("workers", "Worker threads of the runtime"),
                    level("alive_tasks", "Tasks spawned and not yet finished"),
                    level(
                        "global_queue_depth",
                        "Tasks waiting in the runtime's global (injection) queue",
                    ),
                ],
            )
            .expect("the runtime schema is valid")
        })
        .clone()
}

/// The schema of one worker thread's values: `busy_ns`, `parks`, `park_unparks`.
pub fn worker_schema() -> Arc<Schema> {
    static SCHEMA: OnceLock<Arc<Schema>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Schema::new_runtime_packed(
                "tokio_worker",
                vec![
                    Descriptor::new("busy_ns", ValueType::U64, Kind::Cumulative)
                        .with_unit(Unit::Seconds, Scale::NANO)
                        .with_doc("Time the worker spent running tasks"),
                    Descriptor::new("parks", ValueType::U64, Kind::Cumulative)
                        .with_doc("Times the worker parked to wait for work"),
                    Descriptor::new("park_unparks", ValueType::U64, Kind::Cumulative)
                        .with_doc("Times the worker parked or was unparked"),
                ],
            )
            .expect("the worker schema is valid")
        })
        .clone()
}

/// A source named `name` with the statistics of the runtime of `handle`: its own values,
/// one subordinate `worker<i>` a worker thread (label `worker`), and the totals of the
/// workers' values. Attach it where it belongs (`parent.add_subordinate(&source)`).
///
/// Errors: `name` is no file name ([`Error::InvalidName`]).
pub fn source(name: &str, handle: &Handle) -> Result<Source, Error> {
    let metrics = handle.metrics();
    let root = Source::new(name)?;
    let m = metrics.clone();
    root.add(ValueGroup::block(
        runtime_schema(),
        Arc::new(move |out: &mut [u64]| -> io::Result<()> {
            let words = [
                m.num_workers() as u64,
                m.num_alive_tasks() as u64,
                m.global_queue_depth() as u64,
            ];
            for (o, w) in out.iter_mut().zip(words) {
                *o = w;
            }
            Ok(())
        }),
    ))?;
    #[cfg(target_has_atomic = "64")]
    add_workers(&root, &metrics)?;
    Ok(root)
}

/// One `worker<i>` a worker thread, and their totals.
#[cfg(target_has_atomic = "64")]
fn add_workers(root: &Source, metrics: &RuntimeMetrics) -> Result<(), Error> {
    root.add(ValueGroup::aggregates_of(worker_schema()))?;
    for i in 0..metrics.num_workers() {
        let worker = Source::new(format!("worker{i}"))?;
        worker.set_label("worker", i.to_string())?;
        worker.add(ValueGroup::block(
            worker_schema(),
            Arc::new(Worker {
                metrics: metrics.clone(),
                index: i,
            }),
        ))?;
        root.add_subordinate(&worker)?;
    }
    Ok(())
}

/// One worker's values, read from the runtime's metrics.
#[cfg(target_has_atomic = "64")]
struct Worker {
    metrics: RuntimeMetrics,
    index: usize,
}

#[cfg(target_has_atomic = "64")]
impl statsfs_core::BlockSource for Worker {
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        let m = &self.metrics;
        let busy = m.worker_total_busy_duration(self.index).as_nanos();
        let words = [
            u64::try_from(busy).unwrap_or(u64::MAX),
            m.worker_park_count(self.index),
            m.worker_park_unpark_count(self.index),
        ];
        for (o, w) in out.iter_mut().zip(words) {
            *o = w;
        }
        Ok(())
    }
}
