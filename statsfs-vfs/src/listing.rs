//! Directory listings, streamed (`docs/FILES.md#directories`): each `readdir` call lists
//! from where the last one stopped, straight from the tree, so a directory of 100,000
//! sources costs each call what fits in its reply, never the whole list.
//!
//! A `readdir` offset (the kernel's cookie: where the next call resumes) is one of:
//!
//! * `1`, `2`: after `.`, after `..`;
//! * `SUBDIRS + p + 1`: after the subordinate at position `p` (positions are given when a
//!   subordinate is added and never change, see `Inspect::subordinates_from`), so a
//!   listing resumed after changes lists every subordinate that stayed exactly once;
//! * `VALUES + k + 1`: after the value file of ordinal `k` (`Inspect::for_each_descriptor_at`:
//!   stable while the source lives, growing along the listing). A source has few values,
//!   fixed by its groups; they are listed again from the source at each call.
//!
//! A call costs what it lists, plus the holes and hidden subordinates it steps over
//! (`Inspect::subordinates_from`).

use fuser::FileType;
use statsfs_core::Source;

use crate::inode::{dir_ino, Node, Table, BULK_NAME, TREE_BULK_NAME};

/// Where subordinates' offsets start.
const SUBDIRS: u64 = 2;
/// Where values' offsets start: far above any subordinate position (positions count
/// additions to one source, which a process cannot make 2^62 of), and below `i64::MAX`,
/// the largest offset the kernel passes.
const VALUES: u64 = 1 << 62;
/// How many subordinates are taken from the tree at a time.
const BATCH: usize = 128;

/// An open directory: what it lists, itself and its parent's inode.
pub(crate) struct DirHandle {
    pub(crate) dir: Node,
    pub(crate) ino: u64,
    pub(crate) parent: u64,
}

/// Whether `name` may be listed in a source's directory: the bulk files' names are theirs.
pub(crate) fn free(name: &str) -> bool {
    name != BULK_NAME && name != TREE_BULK_NAME
}

/// One entry of a listing.
pub(crate) struct Entry<'a> {
    pub(crate) ino: u64,
    /// The offset of the entry after this one.
    pub(crate) next: u64,
    pub(crate) kind: FileType,
    pub(crate) name: &'a str,
}

/// Lists `dir` from `offset`, handing each entry to `add` until it returns `true` (its
/// reply is full). `roots` are the mount's roots; `table` gives value files their inode
/// numbers.
pub(crate) fn list(
    dir: &DirHandle,
    roots: &[Source],
    offset: u64,
    table: &std::sync::Mutex<Table>,
    mut add: impl FnMut(Entry<'_>) -> bool,
) {
    if offset < 1 && add(dirent(dir.ino, 1, ".")) {
        return;
    }
    if offset < 2 && add(dirent(dir.parent, 2, "..")) {
        return;
    }
    match &dir.dir {
        Node::Root => {
            let start = offset.saturating_sub(SUBDIRS);
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            for (i, r) in roots.iter().enumerate().skip(start) {
                let next = SUBDIRS + i as u64 + 1;
                if !r.is_hidden() && add(dirent(dir_ino(r), next, r.name())) {
                    return;
                }
            }
        }
        Node::Dir(src) => {
            if offset < VALUES {
                let mut position = offset.saturating_sub(SUBDIRS);
                loop {
                    let batch = src.inspect().subordinates_from(position, BATCH);
                    for (p, c) in &batch {
                        let next = SUBDIRS + p + 1;
                        if !c.is_hidden()
                            && free(c.name())
                            && add(dirent(dir_ino(c), next, c.name()))
                        {
                            return;
                        }
                    }
                    match batch.last() {
                        Some((p, _)) if batch.len() == BATCH => position = p + 1,
                        _ => break,
                    }
                }
            }
            let from = offset.saturating_sub(VALUES);
            for (k, node) in values(src).into_iter().filter(|(k, _)| *k >= from) {
                let Node::Value { name, .. } = &node else {
                    continue;
                };
                let Some(ino) = lock(table).ino(&node) else {
                    continue;
                };
                let entry = Entry {
                    ino,
                    next: VALUES + k + 1,
                    kind: FileType::RegularFile,
                    name,
                };
                if add(entry) {
                    return;
                }
            }
        }
        _ => {}
    }
}

fn dirent(ino: u64, next: u64, name: &str) -> Entry<'_> {
    Entry {
        ino,
        next,
        kind: FileType::Directory,
        name,
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The value files a source's directory lists, with their ordinals, in listing order:
/// groups in the order they were added, descriptors in schema order; not hidden, not the
/// bulk files' names, not hidden by a visible subordinate of the same name.
pub(crate) fn values(src: &Source) -> Vec<(u64, Node)> {
    let mut out = Vec::new();
    src.inspect()
        .for_each_descriptor_at(|k, d, _, _, group_hidden| {
            if !group_hidden && !d.hidden && free(d.name) {
                let node = Node::Value {
                    source: src.clone(),
                    name: d.name,
                    clearable: d.clearable,
                    buckets: false,
                };
                out.push((k, node));
            }
        });
    // Asked after `for_each_descriptor_at` let go of the source's lock.
    out.retain(|(_, n)| match n {
        Node::Value { name, .. } => src
            .inspect()
            .find_subordinate(name, |c| !c.is_hidden())
            .is_none(),
        _ => true,
    });
    out
}
