//! What the accept loop knows of each live connection, to choose which one a newcomer
//! displaces at the cap: whether it ever sent a request, and when it last moved.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a new connection has to send its request before it counts as silent.
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// How long after its last write a connection that was served counts as idle (a
/// keep-alive scraper between scrapes) rather than busy (taking in a response).
pub(super) const QUIET: Duration = Duration::from_millis(250);

/// One connection's activity, shared by its task (which updates it) and the accept loop.
pub(super) struct Activity {
    epoch: Instant,
    /// When it was accepted, in nanoseconds since `epoch`.
    accepted: u64,
    /// Requests received so far.
    served: AtomicU32,
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

    /// Whether it ever sent a request.
    pub(super) fn was_served(&self) -> bool {
        self.served.load(Ordering::Relaxed) > 0
    }

    /// Whom to displace first (the smallest key), at `now` ([`nanos_since`] the epoch):
    ///
    /// 0. a connection that sent no request in the [`GRACE`] it had (a flood's, an idle
    ///    opener's), the oldest first;
    /// 1. one that was served and has been quiet for [`QUIET`] (a keep-alive scraper
    ///    between scrapes: it reconnects), the one quiet longest first;
    /// 2. one accepted within [`GRACE`] that has not sent a request yet (a scraper whose
    ///    request is on its way, or a flood's newest, which then displace their own
    ///    oldest), the oldest first;
    /// 3. one that is being answered (a request or a write within [`QUIET`]).
    ///
    /// So a newcomer is not displaced before it had the time to send its request while
    /// an idle connection is there, and one being answered goes last.
    pub(super) fn eviction_key(&self, now: u64) -> (u8, u64) {
        let within = |since: u64, d: Duration| now.saturating_sub(since) < d.as_nanos() as u64;
        if self.was_served() {
            let last = self.last.load(Ordering::Relaxed);
            (if within(last, QUIET) { 3 } else { 1 }, last)
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
        let later = |d: Duration| nanos_since(epoch) + d.as_nanos() as u64;
        let now = later(GRACE + QUIET);
        let fresh = Activity {
            accepted: now,
            ..Activity::new(epoch)
        };
        let busy = Activity::new(epoch);
        busy.request();
        busy.last.store(now, Ordering::Relaxed);
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
