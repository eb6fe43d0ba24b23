//! The accept loop: admits connections up to the cap (a newcomer at the cap displaces
//! the least useful connection), backs off and retries when `accept` fails (descriptors
//! exhausted, say) instead of ending, and on stop closes the listener, lets responses in
//! flight finish until the deadline and cuts the rest.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{AbortHandle, Id, JoinSet};

use super::activity::{self, Activity};
use super::connection;
use super::options::HttpOptions;
use super::routes::App;
use super::Stopped;

/// The first pause after a failed `accept`; it doubles up to [`MAX_BACKOFF`] while
/// accepts keep failing, and is forgotten at the next success.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// What [`Connections::make_room`] did.
#[derive(PartialEq, Eq)]
enum Room {
    /// There was room.
    Free,
    /// It displaced a connection to make some.
    Displaced,
    /// Every connection is being answered: no room.
    Full,
}

struct Live {
    activity: Arc<Activity>,
    abort: AbortHandle,
}

/// The live connections, by task.
struct Connections {
    tasks: JoinSet<()>,
    live: HashMap<Id, Live>,
    epoch: Instant,
}

impl Connections {
    /// Makes room for one more under `cap`: displaces the least useful connection
    /// ([`Activity::eviction_key`]: a silent one past its grace, then the one idle
    /// longest, then a new one), never one being answered: if only those are left, there
    /// is no room, and the newcomer is closed instead.
    fn make_room(&mut self, cap: usize) -> Room {
        let now = activity::nanos_since(self.epoch);
        let mut room = Room::Free;
        while self.live.len() >= cap {
            let Some((victim, key)) = self
                .live
                .iter()
                .map(|(id, l)| (*id, l.activity.eviction_key(now)))
                .min_by_key(|(_, k)| *k)
            else {
                return room;
            };
            if key.0 >= activity::BUSY {
                return Room::Full;
            }
            if let Some(l) = self.live.remove(&victim) {
                l.abort.abort();
                room = Room::Displaced;
            }
        }
        room
    }

    /// Forgets a connection whose task ended (or was aborted).
    fn reap(&mut self, done: Result<(Id, ()), tokio::task::JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.live.remove(&id);
    }
}

/// Runs until `stop` says `true` (or its sender is gone); returns how the stop went.
pub(super) async fn run(
    listener: TcpListener,
    app: Arc<App>,
    options: Arc<HttpOptions>,
    mut stop: watch::Receiver<bool>,
) -> Stopped {
    let mut conns = Connections {
        tasks: JoinSet::new(),
        live: HashMap::new(),
        epoch: Instant::now(),
    };
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(done) = conns.tasks.join_next_with_id(), if !conns.tasks.is_empty() => {
                conns.reap(done)
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    if failing {
                        log::info!("statsfs http: accepting connections again");
                        failing = false;
                    }
                    backoff = MIN_BACKOFF;
                    let room = conns.make_room(options.max_connections);
                    if room == Room::Full {
                        // Every connection is being answered: this one waits for none.
                        drop(stream);
                        continue;
                    }
                    let at_cap = room == Room::Displaced;
                    let activity = Arc::new(Activity::new(conns.epoch));
                    let abort = conns.tasks.spawn(connection::serve(
                        stream,
                        Arc::clone(&app),
                        Arc::clone(&options),
                        Arc::clone(&activity),
                        stop.clone(),
                    ));
                    conns.live.insert(abort.id(), Live { activity, abort });
                    // At the cap, let the newcomer read the request it has most likely
                    // sent already before the next accept displaces anyone: a
                    // scraper's connection is then being answered, and outranks a
                    // flood's. Below the cap nothing is displaced: a burst of
                    // connections is taken in one turn (the runtime's budget bounds
                    // it), not one per round of every busy connection.
                    if at_cap {
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => {
                    if !failing {
                        log::warn!("statsfs http: accept failed ({e}); retrying with backoff");
                        failing = true;
                    }
                    if out_of_descriptors(&e) && !conns.live.is_empty() {
                        // Free a descriptor for the next accept: shed the least useful
                        // connection, as if the cap were one lower, and let the runtime
                        // drop it (which closes its socket) before accepting again.
                        // (If every one is being answered, back off as below.)
                        let n = conns.live.len();
                        if conns.make_room(n) == Room::Displaced {
                            tokio::task::yield_now().await;
                            continue;
                        }
                    }
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
    // Nothing new: the port is closed before the connections are waited for.
    drop(listener);
    let start = Instant::now();
    // Each connection has seen `stop` change: it finishes its response and closes.
    let deadline = tokio::time::sleep(options.shutdown_deadline);
    tokio::pin!(deadline);
    while !conns.tasks.is_empty() {
        tokio::select! {
            _ = &mut deadline => break,
            Some(done) = conns.tasks.join_next_with_id() => {
                conns.reap(done)
            }
        }
    }
    // Evicted tasks may still be in the set, aborted: only the live ones count.
    let cut = conns.live.len();
    conns.tasks.abort_all();
    Stopped {
        cut,
        waited: start.elapsed(),
    }
}

fn out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux, without libc in this feature.
    matches!(e.raw_os_error(), Some(23) | Some(24))
}
