//! Pushing tree changes to the kernel's caches, so that a source added or removed while
//! mounted appears or disappears at once: when `add_subordinate` or
//! `remove_subordinate` returns, the kernel has dropped its cached entry.
//!
//! The tree's listeners run on the thread that changed the tree, after the change, with
//! no lock of the tree held. A notification takes the kernel's lock of the parent
//! directory, which a lookup in that directory may hold while it waits for a FUSE worker;
//! that is safe here because FUSE workers never change the tree (writes only clear
//! values) and never wait for the thread that does.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, PoisonError};

use fuser::{INodeNo, Notifier, PollNotifier};
use statsfs_core::{Change, Source, Subscription};

use crate::inode::{dir_ino, ROOT};

/// The `poll` calls on bulk files that wait for the tree to change shape
/// (`docs/FILES.md#noticing-changes`), one per open file (the kernel's poll handle is per
/// open file, so a poll again replaces the last one): each is woken once, at the next
/// change of any root; the kernel then polls again and gets `POLLPRI` if that file's
/// layout is stale. Closing the file forgets its handle, so they never pile up.
#[derive(Default)]
pub(crate) struct Pollers(Mutex<HashMap<u64, PollNotifier>>);

impl Pollers {
    /// Keeps `ph`, the poll of open file `fh`, to be woken at the next change.
    pub(crate) fn wait(&self, fh: u64, ph: PollNotifier) {
        self.lock().insert(fh, ph);
    }

    /// Forgets open file `fh`'s poll (the file is closed).
    pub(crate) fn forget(&self, fh: u64) {
        self.lock().remove(&fh);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PollNotifier>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every waiting poll (outside the lock).
    fn wake(&self) {
        let waiting = std::mem::take(&mut *self.lock());
        for ph in waiting.into_values() {
            // The file may be closed, or the mount going away: nothing left to wake.
            let _ = ph.notify();
        }
    }
}

/// Listens to every root for as long as the mount lives.
pub(crate) struct Invalidator {
    _subscriptions: Vec<Subscription>,
}

fn entry(notifier: &Notifier, parent: u64, name: &str) {
    // ENOENT (the kernel never looked it up) is success for fuser; any other error means
    // the mount is going away and there is nothing left to invalidate.
    let r = notifier
        .inval_entry(INodeNo(parent), OsStr::new(name))
        .and_then(|()| notifier.inval_inode(INodeNo(parent), 0, 0));
    if let Err(e) = r {
        log::debug!("invalidation of {name} not delivered: {e}");
    }
}

impl Invalidator {
    pub(crate) fn start(roots: &[Source], notifier: Notifier, pollers: Arc<Pollers>) -> Self {
        let subscriptions = roots
            .iter()
            .map(|root| {
                let notifier = notifier.clone();
                let roots: Vec<Source> = roots.to_vec();
                let pollers = pollers.clone();
                root.subscribe(move |change| {
                    invalidate(&notifier, &roots, change);
                    pollers.wake();
                })
            })
            .collect();
        Invalidator {
            _subscriptions: subscriptions,
        }
    }
}

/// Drops what the kernel caches of what `change` changed.
fn invalidate(notifier: &Notifier, roots: &[Source], change: &Change) {
    match change {
        Change::SubordinateAdded { parent, child }
        | Change::SubordinateRemoved { parent, child } => {
            entry(notifier, dir_ino(parent), child.name())
        }
        // Values appeared, or the source was hidden or shown.
        Change::Values { source } => {
            let _ = notifier.inval_inode(INodeNo(dir_ino(source)), 0, 0);
            if roots.iter().any(|r| r.ptr_eq(source)) {
                entry(notifier, ROOT, source.name());
            } else if let Some(p) = source.parent() {
                entry(notifier, dir_ino(&p), source.name());
            }
        }
        _ => {}
    }
}
