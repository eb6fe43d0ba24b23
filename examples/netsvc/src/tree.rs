//! The service's statsfs tree, in which connections come and go all the time:
//!
//! ```text
//! svc/                  totals: every ConnStat (open and closed), WorkerStat, ListenerStat
//! ├── lib/              what libraries report through the `metrics` facade (the queue's
//! │   │                 handoff_items_total and handoff_wait_seconds), a source a label set
//! │   └── outcome=queued/
//! ├── listener0/        ListenerStat of the listening socket
//! ├── worker0/          WorkerStat of worker 0, totals of its connections' ConnStat,
//! │   │                 and what its closed connections left (retired)
//! │   ├── c17/          ConnStat of open connection 17 (label peer="127.0.0.1:40522")
//! │   └── c19/
//! └── worker1/
//! ```
//!
//! A connection is served start to end by one worker, so its directory lives under that
//! worker's: every structural change below `worker<i>/` and every write to its stats
//! comes from the one worker thread. A connection's source is built completely (values,
//! label) before it is attached, so attaching it is one change of the tree; when the
//! connection closes its source is *retired* (`Source::retire_subordinate`): its counters,
//! histogram and peak move into what `worker<i>/` retains, in one step that no reader can
//! see half done, so the totals above never go backwards and never count a connection
//! twice: `svc/bytes_in` counts every byte ever received, exactly.
//!
//! The connection's `Arc<ConnStat>` is dropped with its source: a reader still holding
//! the directory (an open file) keeps the instance alive and reads its last values, so no
//! `revoke` is needed.

use std::net::SocketAddr;
use std::sync::Arc;

use statsfs::{Error, Source, ValueGroup};

use crate::stats::{ConnStat, ListenerStat, WorkerStat};

/// The name of the root (the top-level directory of the mount).
pub const ROOT: &str = "svc";

/// The tree of one service.
pub struct SvcTree {
    root: Source,
    lib: Source,
}

/// A worker's place in the tree. Owned by the worker thread: it is the only writer of
/// everything here.
pub struct WorkerNode {
    source: Source,
    stats: Arc<WorkerStat>,
}

/// An open connection's place in the tree.
pub struct ConnNode {
    source: Source,
    stats: Arc<ConnStat>,
}

impl SvcTree {
    /// `svc/` with the totals of [`ConnStat`], [`WorkerStat`] and [`ListenerStat`].
    pub fn new() -> Result<Self, Error> {
        let root = Source::new(ROOT)?;
        root.add(ValueGroup::aggregates::<ConnStat>())?;
        root.add(ValueGroup::aggregates::<WorkerStat>())?;
        root.add(ValueGroup::aggregates::<ListenerStat>())?;
        let lib = Source::new("lib")?;
        root.add_subordinate(&lib)?;
        Ok(SvcTree { root, lib })
    }

    /// `svc/lib/`, where the `metrics` facade's recorder puts what libraries report.
    pub fn lib(&self) -> &Source {
        &self.lib
    }

    /// The root, `svc/`, as it is mounted and served.
    pub fn root(&self) -> &Source {
        &self.root
    }

    /// Adds `listener<i>/` with `stats`.
    pub fn add_listener(&self, i: usize, stats: Arc<ListenerStat>) -> Result<Source, Error> {
        let s = Source::new(format!("listener{i}"))?;
        s.set_label("listener", i.to_string())?;
        s.add(stats)?;
        self.root.add_subordinate(&s)?;
        Ok(s)
    }

    /// Adds `worker<i>/` with `stats` and the totals of its connections.
    pub fn add_worker(&self, i: usize, stats: Arc<WorkerStat>) -> Result<WorkerNode, Error> {
        let source = Source::new(format!("worker{i}"))?;
        source.set_label("worker", i.to_string())?;
        source.add(Arc::clone(&stats))?;
        source.add(ValueGroup::aggregates::<ConnStat>())?;
        self.root.add_subordinate(&source)?;
        Ok(WorkerNode { source, stats })
    }
}

impl WorkerNode {
    /// `svc/worker<i>/`.
    #[allow(dead_code)] // for tests/netsvc_tree.rs
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The worker's own statistics.
    pub fn stats(&self) -> &WorkerStat {
        &self.stats
    }

    /// Adds connection `id`, from `peer`, as `worker<i>/c<id>/`.
    pub fn open(&self, id: u64, peer: Option<SocketAddr>) -> Result<ConnNode, Error> {
        let stats = Arc::new(ConnStat::default());
        let source = Source::new(format!("c{id}"))?;
        if let Some(peer) = peer {
            source.set_label("peer", peer.to_string())?;
        }
        source.add(Arc::clone(&stats))?;
        // Attached last, complete: one change that readers (and the mount) see.
        self.source.add_subordinate(&source)?;
        Ok(ConnNode { source, stats })
    }

    /// Closes `conn`, once its worker wrote its last value: its directory leaves, what
    /// it counted stays in the totals above (retired into `worker<i>/`).
    pub fn close(&self, conn: ConnNode) -> Result<(), Error> {
        self.source.retire_subordinate(&conn.source)
    }
}

impl ConnNode {
    /// The connection's statistics, written by the worker serving it.
    pub fn stats(&self) -> &ConnStat {
        &self.stats
    }

    /// `svc/worker<i>/c<id>/`.
    #[allow(dead_code)] // for tests/netsvc_tree.rs
    pub fn source(&self) -> &Source {
        &self.source
    }
}

/// The totals at `svc/` that the summary compares with the load generator's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// `listener*/accepted`, summed.
    pub accepted: u64,
    /// `refused`.
    pub refused: u64,
    /// `worker*/connections`: connections served to their end.
    pub connections: u64,
    /// `active`: connections open now.
    pub active: u64,
    /// `errors`.
    pub errors: u64,
    /// `queued`.
    pub queued: u64,
    /// `bytes_in`, every connection, open and closed.
    pub bytes_in: u64,
    /// `bytes_out`.
    pub bytes_out: u64,
    /// `requests`.
    pub requests: u64,
    /// `service_ns`: its sample count (the sum of its buckets).
    pub service_samples: u64,
    /// `max_service_ns`.
    pub max_service_ns: u64,
    /// `lib/handoff_items_total`: connections offered to the workers' queue, reported by
    /// the queue through the `metrics` facade.
    pub handed_off: u64,
    /// `lib/handoff_wait_seconds`: its sample count, the connections taken from it.
    pub waited: u64,
}

impl Totals {
    /// Reads the totals from `root` (`svc/`), as any reader of the tree would, in one
    /// pass over its values.
    pub fn read(root: &Source) -> Totals {
        let mut t = Totals::default();
        root.for_each_value(|v| {
            let d = v.descriptor;
            let n = statsfs::value::number(d, v.words) as u64;
            let slot = match d.name {
                "accepted" => &mut t.accepted,
                "refused" => &mut t.refused,
                "connections" => &mut t.connections,
                "active" => &mut t.active,
                "errors" => &mut t.errors,
                "queued" => &mut t.queued,
                "bytes_in" => &mut t.bytes_in,
                "bytes_out" => &mut t.bytes_out,
                "requests" => &mut t.requests,
                "service_ns" => &mut t.service_samples,
                "max_service_ns" => &mut t.max_service_ns,
                _ => return,
            };
            *slot = n;
        });
        if let Some(lib) = root.subordinate("lib") {
            lib.for_each_value(|v| {
                let n = statsfs::value::number(v.descriptor, v.words) as u64;
                match v.descriptor.name {
                    "handoff_items_total" => t.handed_off = n,
                    "handoff_wait_seconds" => t.waited = n,
                    _ => {}
                }
            });
        }
        t
    }
}
