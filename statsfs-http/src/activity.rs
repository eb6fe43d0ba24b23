//! What the accept loop knows of each live connection, to choose which one a newcomer
//! displaces at the cap: whether it ever sent a request, and when it last moved.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a new connection has to send its request before it counts as silent.
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// The class of [`Activity::eviction_key`] for a connection being answered.
pub(super) const BUSY: u8 = 3;

/// One connection's activity, shared by its task (which updates it) and the accept loop.
pub(super) struct Activity {
    epoch: Instant,
    /// When it was accepted, in nanoseconds since `epoch`.
    accepted: u64,
    /// Requests received so far.
    served: AtomicU32,
    /// How many of them had been received when a flush last completed: all the bytes
    /// written by then had gone to the socket.
    answered: AtomicU32,
    /// When a request last came or a response's bytes last went out, in nanoseconds since
    /// `epoch`.
    last: AtomicU64,
}

impl Activity {
    /// A connection accepted now; `epoch` is the accept loop's, shared by all.
    pub(super) fn new(epoch: Instant) -> Self {
        let now = nanos_since(epoch);
        Activity {
            epoch,
            accepted: now,
            served: AtomicU32::new(0),
            answered: AtomicU32::new(0),
            last: AtomicU64::new(now),
        }
    }

    /// A request came: returns how many have, this one included.
    pub(super) fn request(&self) -> u32 {
        self.touch();
        self.served.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Bytes went out.
    pub(super) fn touch(&self) {
        self.last.store(nanos_since(self.epoch), Ordering::Relaxed);
    }

    /// A flush completed: every request received so far has its answer on the socket.
    pub(super) fn flushed(&self) {
        let served = self.served.load(Ordering::Relaxed);
        self.answered.store(served, Ordering::Relaxed);
    }

    /// Whether a request is being answered (received, its answer not yet all written).
    fn in_flight(&self) -> bool {
        self.served.load(Ordering::Relaxed) != self.answered.load(Ordering::Relaxed)
    }

    /// Whether it ever sent a request.
    pub(super) fn was_served(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0
    }

    /// Whom to displace first (the smallest key), at `now` ([`nanos_since`] the epoch):
    ///
    /// 0. a connection that sent no request in the [`GRACE`] it had (a flood's, an idle
    ///    opener's), the oldest first;
    /// 1. one that was served and has every answer written (a keep-alive scraper between
    ///    scrapes: it reconnects), the one quiet longest first;
    /// 2. one accepted within [`GRACE`] that has not sent a request yet (a scraper whose
    ///    request is on its way, or a flood's newest, which then displace their own
    ///    oldest), the oldest first;
    /// 3. one that is being answered: a request received and its answer not all written
    ///    (waiting its turn, or taken in slowly). The accept loop never displaces one of
    ///    these: it closes the newcomer instead.
    ///
    /// So a newcomer is not displaced before it had the time to send its request while
    /// an idle connection is there, and one being answered goes last.
    pub(super) fn eviction_key(&self, now: u64) -> (u8, u64) {
        let within = |since: u64, d: Duration| now.saturating_sub(since) < d.as_nanos() as u64;
        if self.was_served() {
            let last = self.last.load(Ordering::Relaxed);
            (if self.in_flight() { BUSY } else { 1 }, last)
        } else {
            (
                if within(self.accepted, GRACE) { 2 } else { 0 },
                self.accepted,
            )
        }
    }
}

/// Now, in nanoseconds since `epoch`.
pub(super) fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_then_idle_then_new_then_busy() {
        let epoch = Instant::now();
        let silent = Activity::new(epoch);
        let idle = Activity::new(epoch);
        idle.request();
        idle.flushed();
        let later = |d: Duration| nanos_since(epoch) + d.as_nanos() as u64;
        let now = later(GRACE * 2);
        let fresh = Activity {
            accepted: now,
            ..Activity::new(epoch)
        };
        let busy = Activity::new(epoch);
        busy.request();
        // Received long ago, still being answered (a slow reader).
        let slow = Activity::new(epoch);
        slow.request();
        assert_eq!(slow.eviction_key(now).0, 3);
        slow.flushed();
        assert_eq!(slow.eviction_key(now).0, 1);
        let mut all = [
            (&busy, "busy"),
            (&fresh, "new"),
            (&idle, "idle"),
            (&silent, "silent"),
        ];
        all.sort_by_key(|(a, _)| a.eviction_key(now));
        let order: Vec<&str> = all.iter().map(|(_, n)| *n).collect();
        assert_eq!(order, ["silent", "idle", "new", "busy"]);
    }
}
