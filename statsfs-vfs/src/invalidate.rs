//! Pushing tree changes to the kernel's caches, so that a source added or removed while
//! mounted appears or disappears at once: when `add_subordinate` or
//! `remove_subordinate` returns, the kernel has dropped its cached entry.
//!
//! The tree's listeners run on the thread that changed the tree, after the change, with
//! no lock of the tree held. A notification takes the kernel's lock of the parent
//! directory, which a lookup in that directory may hold while it waits for a FUSE worker;
//! that is safe here because FUSE workers never change the tree (writes only clear
//! values) and never wait for the thread that does.

use std::ffi::OsStr;

use fuser::{INodeNo, Notifier};
use statsfs_core::{Change, Source, Subscription};

use crate::inode::{dir_ino, ROOT};

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
    pub(crate) fn start(roots: &[Source], notifier: Notifier) -> Self {
        let subscriptions = roots
            .iter()
            .map(|root| {
                let notifier = notifier.clone();
                let roots: Vec<Source> = roots.to_vec();
                root.subscribe(move |change| match change {
                    Change::SubordinateAdded { parent, child }
                    | Change::SubordinateRemoved { parent, child } => {
                        entry(&notifier, dir_ino(parent), child.name())
                    }
                    // Values appeared, or the source was hidden or shown.
                    Change::Values { source } => {
                        let _ = notifier.inval_inode(INodeNo(dir_ino(source)), 0, 0);
                        if roots.iter().any(|r| r.ptr_eq(source)) {
                            entry(&notifier, ROOT, source.name());
                        } else if let Some(p) = source.parent() {
                            entry(&notifier, dir_ino(&p), source.name());
                        }
                    }
                    _ => {}
                })
            })
            .collect();
        Invalidator {
            _subscriptions: subscriptions,
        }
    }
}
