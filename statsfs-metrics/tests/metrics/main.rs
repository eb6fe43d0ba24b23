//! The `metrics` facade's recorder against the tree and every view of it, and the tokio
//! runtime's statistics against a real runtime.

mod recorder;
#[cfg(feature = "tokio")]
mod runtime;
mod views;

use statsfs_core::Source;
use statsfs_metrics::Recorder;

// Counts this thread's allocations (`the_hot_path_allocates_nothing_and_registration_only_once`).
#[global_allocator]
static A: statsfs_testkit::alloc::Counting = statsfs_testkit::alloc::Counting;

/// A recorder over a new source `m`.
fn recorder() -> (Source, Recorder) {
    let root = Source::new("m").unwrap();
    let rec = Recorder::new(&root).unwrap();
    (root, rec)
}

/// Runs `f` with `rec` as the thread's recorder.
fn with<T>(rec: &Recorder, f: impl FnOnce() -> T) -> T {
    metrics::with_local_recorder(rec, f)
}

/// One metric registered unlabelled first then labelled, another the other way round.
fn mixed_labels() -> (Source, Recorder) {
    use metrics::counter;
    let (root, rec) = recorder();
    with(&rec, || {
        counter!("first_plain_total").increment(1);
        counter!("first_plain_total", "k" => "a").increment(10);
        counter!("first_labelled_total", "k" => "a").increment(10);
        counter!("first_labelled_total").increment(1);
    });
    (root, rec)
}
