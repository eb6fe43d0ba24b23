//! The service's statistics, declared once with `#[derive(Stats)]`: one [`ConnStat`] per
//! connection, one [`WorkerStat`] per worker thread, one [`ListenerStat`] per listening
//! socket.
//!
//! Every struct has one writer thread, which updates it through the single-writer path
//! (`inc_local`, `add_local`, `record_local`: a relaxed load and a relaxed store, no
//! locked instruction):
//!
//! * a [`ConnStat`] is written by the worker serving the connection (a connection is
//!   served start to end by one worker);
//! * a [`WorkerStat`] by its worker;
//! * a [`ListenerStat`] by the accepting thread, except [`ListenerStat::queued`], which
//!   the acceptor raises and the workers lower: the one cell with two writers, updated
//!   through the shared path (`add`, `sub`).

use statsfs::cell::{Counter, Gauge, LogHistogram, Peak, WithSum};
use statsfs::Stats;

/// Buckets of [`ConnStat::service_ns`]: bucket 0 is `[0, 1)` ns, bucket i
/// `[2^(i-1), 2^i)` ns, the last one everything from 2^30 ns (about 1.07 s) up.
pub const SERVICE_BUCKETS: usize = 32;

/// One connection's statistics.
#[derive(Stats, Default, Debug)]
#[stats(name = "svc_conn")]
pub struct ConnStat {
    /// Bytes received from the client
    #[stat(unit = bytes)]
    pub bytes_in: Counter,
    /// Bytes sent to the client
    #[stat(unit = bytes)]
    pub bytes_out: Counter,
    /// Requests answered: one line in, one line out
    pub requests: Counter,
    /// Time from a complete request line to its answer written (with the sum of the
    /// samples, `service_ns_sum`: the mean is `rate(_sum) / rate(_count)`)
    #[stat(unit = seconds, exponent = -9)]
    pub service_ns: LogHistogram<SERVICE_BUCKETS, WithSum>,
    /// Longest time one request took, from its complete line to its answer written
    #[stat(unit = seconds, exponent = -9, aggregate = max)]
    pub max_service_ns: Peak<u64>,
}

/// One worker thread's statistics.
#[derive(Stats, Default, Debug)]
#[stats(name = "svc_worker")]
pub struct WorkerStat {
    /// Connections this worker served to their end
    pub connections: Counter,
    /// Connections this worker is serving now (a worker serves one at a time)
    pub active: Gauge<u32>,
    /// Connections that ended with an I/O or protocol error
    pub errors: Counter,
}

/// One listening socket's statistics.
#[derive(Stats, Default, Debug)]
#[stats(name = "svc_listener")]
pub struct ListenerStat {
    /// Connections accepted
    pub accepted: Counter,
    /// accept() calls that failed
    pub accept_errors: Counter,
    /// Connections accepted and closed at once, unserved, because the queue to the
    /// workers was full
    pub refused: Counter,
    /// Accepted connections waiting for a worker
    pub queued: Gauge<u32>,
    /// Most accepted connections that waited for a worker at once
    #[stat(aggregate = max)]
    pub max_queued: Peak<u32>,
}
