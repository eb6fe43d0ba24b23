//! The queue between the acceptor and the workers, written as a library would be: it
//! knows the `metrics` facade and nothing of statsfs. With statistics on, the service
//! installs statsfs's recorder, and these numbers land under `svc/lib/` beside the
//! statistics the service declares itself, in every view; with them off no recorder is
//! installed and the facade's calls do nothing.
//!
//! * `handoff_items_total{outcome="queued"|"refused"}`: items offered, by what became of
//!   them (a full queue refuses);
//! * `handoff_wait_seconds`: how long each item waited in the queue (a histogram).

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};

/// An item in the queue, with when it was offered (when metered).
type Stamped<T> = (Option<Instant>, T);

/// The giving end (one thread offers).
pub struct Giver<T> {
    tx: SyncSender<Stamped<T>>,
    metered: bool,
}

/// The taking end; clones share the queue (any number of threads take).
pub struct Taker<T> {
    rx: Arc<Mutex<Receiver<Stamped<T>>>>,
    metered: bool,
}

impl<T> Clone for Taker<T> {
    fn clone(&self) -> Self {
        Taker {
            rx: Arc::clone(&self.rx),
            metered: self.metered,
        }
    }
}

/// Why an item was not queued.
pub enum Refused<T> {
    /// The queue is full; the item is given back.
    Full(T),
    /// Every taker is gone.
    Closed,
}

/// A queue of `capacity` items (at least 1). `metered`: whether it reports (and reads the
/// clock for the waits); a library's switch.
pub fn channel<T>(capacity: usize, metered: bool) -> (Giver<T>, Taker<T>) {
    if metered {
        describe_counter!(
            "handoff_items_total",
            "Items offered to the queue, by outcome"
        );
        describe_histogram!(
            "handoff_wait_seconds",
            Unit::Seconds,
            "Time an item waited in the queue before it was taken"
        );
    }
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    (
        Giver { tx, metered },
        Taker {
            rx: Arc::new(Mutex::new(rx)),
            metered,
        },
    )
}

impl<T> Giver<T> {
    /// Queues `item` unless the queue is full.
    pub fn offer(&self, item: T) -> Result<(), Refused<T>> {
        let at = self.metered.then(Instant::now);
        let outcome = match self.tx.try_send((at, item)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full((_, item))) => Err(Refused::Full(item)),
            Err(TrySendError::Disconnected(_)) => return Err(Refused::Closed),
        };
        if self.metered {
            let label = if outcome.is_ok() { "queued" } else { "refused" };
            counter!("handoff_items_total", "outcome" => label).increment(1);
        }
        outcome
    }
}

impl<T> Taker<T> {
    /// The next item, waiting for one; `None` once the giver is gone and the queue empty.
    pub fn take(&self) -> Option<T> {
        // One taker waits in recv() while the others wait for the lock.
        let (at, item) = self
            .rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv()
            .ok()?;
        if let Some(at) = at {
            histogram!("handoff_wait_seconds").record(at.elapsed().as_secs_f64());
        }
        Some(item)
    }
}
