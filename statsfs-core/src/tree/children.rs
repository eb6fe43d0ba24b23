//! A source's subordinates: in the order they were added, found by name, removed, and
//! listed from a position, each in O(1) whatever their number (listing: O(log n) to find
//! where to start), see `docs/MODEL.md#subordinates`.
//!
//! A child knows its slot in its parent's array; removing it leaves a hole, and the array
//! is compacted once holes outnumber the children (so each removal pays O(1) on average).
//! Every child also gets a *position* when it is added: a number that only grows in a
//! parent and never changes, so a listing resumed at a position (a directory read in
//! several calls) sees every child that stayed exactly once, whatever came and went.
//!
//! The name index maps a 32-bit hash of a name to the first slot of a chain, linked
//! through the entries in the order they were added, of the children whose names hash
//! so: removing one unlinks it in O(1) even when thousands of siblings share its name,
//! and the table holds two numbers an entry, never a pointer to a child (growing or
//! cleaning it touches no child: with 100,000 children, reading each one's name would
//! touch 100,000 cold sources).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::hashing::{name_hash, MixedState};

/// What [`Children`] needs of a child: a name, a slot it can be told, and identity.
pub(super) trait Child: Clone {
    /// The child's name (fixed for its life).
    fn name(&self) -> &str;
    /// Where the child remembers its slot in its parent's array. Written only by the
    /// parent's `Children`, under the parent's write lock.
    fn slot(&self) -> &AtomicUsize;
    /// Whether both are the same child.
    fn same(&self, other: &Self) -> bool;
}

/// One slot of the array: a child, its position and its name's chain, or the hole a
/// removed child left.
struct Entry<C> {
    position: u64,
    child: Option<C>,
    hash: u32,
    /// The slots before and after this one in its name's chain ([`NONE`]: none).
    prev: u32,
    next: u32,
}

/// No slot.
const NONE: u32 = u32::MAX;

/// The 32 bits of a name's hash the index keys on (a collision only lengthens a chain:
/// lookups compare names).
fn hash32(name: &str) -> u32 {
    name_hash(name) as u32
}

/// A slot as the chains store it.
fn slot32(i: usize) -> u32 {
    u32::try_from(i)
        .ok()
        .filter(|&i| i != NONE)
        .expect("more than 2^32 - 1 subordinates")
}

/// The subordinates of one source: one word, and nothing allocated until the first one
/// (most sources are leaves).
pub(super) struct Children<C>(Option<Box<Inner<C>>>);

impl<C> Default for Children<C> {
    fn default() -> Self {
        Children(None)
    }
}

impl<C: Child> Children<C> {
    /// Adds `child` at the end; `hidden` is whether it is hidden now.
    #[cfg(test)]
    pub(super) fn push(&mut self, child: C, hidden: bool) {
        self.0.get_or_insert_with(Box::default).push(child, hidden)
    }

    /// Adds `child` at the end, unless a child of its name is here: then `false`, and
    /// nothing changed. One probe of the name index, which it keeps up to date.
    pub(super) fn push_unique(&mut self, child: C, hidden: bool) -> bool {
        self.0
            .get_or_insert_with(Box::default)
            .push_unique(child, hidden)
    }

    /// Removes `child`, if it is one of these (`hidden`: whether it is hidden now);
    /// `false` if it is not.
    pub(super) fn remove(&mut self, child: &C, hidden: bool) -> bool {
        self.0.as_mut().is_some_and(|i| i.remove(child, hidden))
    }

    /// The children, in the order they were added.
    pub(super) fn iter(&self) -> impl Iterator<Item = &C> + '_ {
        self.0.iter().flat_map(|i| i.iter())
    }

    /// Whether children were added since the name index was last brought up to date
    /// (then [`index`](Self::index) before lookups by name, or they cost a scan of those).
    pub(super) fn needs_index(&self) -> bool {
        self.0.as_ref().is_some_and(|i| i.indexed < i.entries.len())
    }

    /// Brings the name index up to date: O(children added since the last time).
    pub(super) fn index(&mut self) {
        if let Some(i) = &mut self.0 {
            i.index();
        }
    }

    /// The children named `name`, in the order they were added.
    pub(super) fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s C> + 's {
        self.0.iter().flat_map(move |i| i.named(name))
    }

    /// The children at `position` or later, with their positions, in order.
    pub(super) fn starting_at(&self, position: u64) -> impl Iterator<Item = (u64, &C)> + '_ {
        self.0.iter().flat_map(move |i| i.starting_at(position))
    }

    /// How many children.
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |i| i.live)
    }

    /// How many children are not hidden.
    pub(super) fn visible(&self) -> usize {
        self.0.as_ref().map_or(0, |i| i.live - i.hidden)
    }

    /// A child was hidden (`true`) or shown again.
    pub(super) fn hidden_changed(&mut self, hidden: bool) {
        if let Some(i) = &mut self.0 {
            if hidden {
                i.hidden += 1;
            } else {
                i.hidden -= 1;
            }
        }
    }
}

/// The subordinates, once there is one. Positions keep growing even when all are gone,
/// so the box stays.
struct Inner<C> {
    entries: Vec<Entry<C>>,
    /// No live entry before this slot (holes left by removals of the oldest children,
    /// a service's usual pattern, are skipped at once by listings).
    first_live: usize,
    live: usize,
    next_position: u64,
    /// A name's hash to the first slot of its chain (which may be the hole a removed
    /// child left; a hash whose children are all gone stays until the next compaction).
    by_name: HashMap<u32, u32, MixedState>,
    /// The entries before this slot are in the name index; those after it were added
    /// since the index was last brought up to date, which the first lookup by name does
    /// (so a service that adds and removes children and never looks one up by name
    /// never touches the index: at 100,000 children each touch is a cache miss).
    indexed: usize,
    hidden: usize,
}

impl<C> Default for Inner<C> {
    fn default() -> Self {
        Inner {
            entries: Vec::new(),
            first_live: 0,
            live: 0,
            next_position: 0,
            by_name: HashMap::default(),
            indexed: 0,
            hidden: 0,
        }
    }
}

/// Holes are compacted away once there are more of them than this and than children.
const MIN_HOLES: usize = if cfg!(test) { 2 } else { 32 };

impl<C: Child> Inner<C> {
    fn push(&mut self, child: C, hidden: bool) {
        let at = self.entries.len();
        // Chains hold 32-bit slots: refuse a child that could not be chained.
        let _ = slot32(at);
        child.slot().store(at, Relaxed);
        let hash = hash32(child.name());
        self.entries.push(Entry {
            position: self.next_position,
            child: Some(child),
            hash,
            prev: NONE,
            next: NONE,
        });
        self.next_position += 1;
        self.live += 1;
        self.hidden += hidden as usize;
    }

    /// [`Children::push_unique`].
    fn push_unique(&mut self, child: C, hidden: bool) -> bool {
        self.index();
        let at = slot32(self.entries.len());
        let hash = hash32(child.name());
        let last = match self.by_name.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(at);
                None
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let mut cur = *o.get();
                loop {
                    let e = &self.entries[cur as usize];
                    if e.child.as_ref().is_some_and(|c| c.name() == child.name()) {
                        return false;
                    }
                    if e.next == NONE {
                        break Some(cur);
                    }
                    cur = e.next;
                }
            }
        };
        self.push(child, hidden);
        if let Some(last) = last {
            self.entries[last as usize].next = at;
            self.entries[at as usize].prev = last;
        }
        self.indexed = self.entries.len();
        true
    }

    /// Links every entry added since the last time into the name index.
    fn index(&mut self) {
        for at in self.indexed..self.entries.len() {
            if self.entries[at].child.is_some() {
                self.link(slot32(at));
            }
        }
        self.indexed = self.entries.len();
    }

    /// Appends slot `at` to the end of its name's chain. Chains are short (names that
    /// hash alike are almost always one name, and siblings seldom share names); a long
    /// one costs its length here, once, at the add.
    fn link(&mut self, at: u32) {
        let hash = self.entries[at as usize].hash;
        let head = match self.by_name.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(at);
                return;
            }
            std::collections::hash_map::Entry::Occupied(o) => *o.get(),
        };
        let mut last = head;
        while self.entries[last as usize].next != NONE {
            last = self.entries[last as usize].next;
        }
        self.entries[last as usize].next = at;
        self.entries[at as usize].prev = last;
    }

    fn remove(&mut self, child: &C, hidden: bool) -> bool {
        let at = child.slot().load(Relaxed);
        match self.entries.get(at) {
            Some(Entry { child: Some(c), .. }) if c.same(child) => {}
            _ => return false,
        }
        let (prev, next) = {
            let e = &mut self.entries[at];
            e.child = None;
            (e.prev, e.next)
        };
        // The first of a chain stays in it, a hole the walks step over, so that a removal
        // never touches the table (whose entries are cold among 100,000); compaction
        // drops it. Any other is unlinked. So a chain holds at most one hole. (An entry
        // not yet indexed is in no chain.)
        if prev != NONE {
            self.entries[prev as usize].next = next;
            if next != NONE {
                self.entries[next as usize].prev = prev;
            }
        }
        self.live -= 1;
        self.hidden -= hidden as usize;
        while self
            .entries
            .get(self.first_live)
            .is_some_and(|e| e.child.is_none())
        {
            self.first_live += 1;
        }
        if self.entries.len() - self.live > MIN_HOLES.max(self.live) {
            self.compact();
        }
        true
    }

    /// Drops the holes, telling each child that moves its new slot, and links the
    /// chains again (from the hashes the entries keep: no child's name is read).
    fn compact(&mut self) {
        self.entries.retain(|e| e.child.is_some());
        self.by_name.clear();
        self.first_live = 0;
        self.indexed = self.entries.len();
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            e.prev = NONE;
            e.next = NONE;
            if let Some(c) = &e.child {
                c.slot().store(i, Relaxed);
            }
            self.link(slot32(i));
        }
        if self.entries.capacity() > 2 * self.entries.len() + MIN_HOLES {
            self.entries.shrink_to(self.entries.len() + MIN_HOLES);
        }
        self.by_name.shrink_to_fit();
    }

    fn iter(&self) -> impl Iterator<Item = &C> + '_ {
        self.entries[self.first_live..]
            .iter()
            .filter_map(|e| e.child.as_ref())
    }

    /// The children named `name` in the order they were added: through the index, then
    /// among the entries not indexed yet (none once [`index`](Self::index) ran).
    fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s C> + 's {
        let hash = hash32(name);
        let mut at = self.by_name.get(&hash).copied().unwrap_or(NONE);
        let indexed = std::iter::from_fn(move || {
            while at != NONE {
                let e = &self.entries[at as usize];
                at = e.next;
                match &e.child {
                    Some(c) if c.name() == name => return Some(c),
                    _ => {}
                }
            }
            None
        });
        let pending = self.entries[self.indexed..]
            .iter()
            .filter(move |e| e.hash == hash)
            .filter_map(move |e| e.child.as_ref().filter(|c| c.name() == name));
        indexed.chain(pending)
    }

    fn starting_at(&self, position: u64) -> impl Iterator<Item = (u64, &C)> + '_ {
        let start = self
            .entries
            .partition_point(|e| e.position < position)
            .max(self.first_live);
        self.entries[start..]
            .iter()
            .filter_map(|e| e.child.as_ref().map(|c| (e.position, c)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone)]
    struct C(Arc<(String, AtomicUsize)>);

    impl Child for C {
        fn name(&self) -> &str {
            &self.0 .0
        }
        fn slot(&self) -> &AtomicUsize {
            &self.0 .1
        }
        fn same(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.0, &other.0)
        }
    }

    fn c(name: &str) -> C {
        C(Arc::new((name.to_owned(), AtomicUsize::new(usize::MAX))))
    }

    fn names(ch: &Children<C>) -> Vec<String> {
        ch.iter().map(|c| c.name().to_owned()).collect()
    }

    #[test]
    fn order_names_positions_and_compaction() {
        let mut ch = Children::default();
        let all: Vec<C> = (0..200).map(|i| c(&format!("c{i}"))).collect();
        for (i, x) in all.iter().enumerate() {
            ch.push(x.clone(), false);
            // Half of them indexed as they come, half left for later.
            if i == 100 {
                ch.index();
            }
        }
        // Remove every child but the multiples of 10: compaction happens on the way.
        for (i, x) in all.iter().enumerate() {
            if i % 10 != 0 {
                assert!(ch.remove(x, false));
                assert!(!ch.remove(x, false), "removed twice");
            }
        }
        assert!(
            ch.0.as_ref().unwrap().entries.len() < 200,
            "holes were compacted"
        );
        let want: Vec<String> = (0..200).step_by(10).map(|i| format!("c{i}")).collect();
        assert_eq!(names(&ch), want);
        assert_eq!(ch.len(), 20);
        // Slots stay right after compaction: every survivor can still be removed.
        assert_eq!(ch.named("c50").count(), 1);
        assert_eq!(ch.named("c51").count(), 0);
        // Positions do not move: a listing resumed at 95 starts at c100.
        let from: Vec<(u64, String)> = ch
            .starting_at(95)
            .take(2)
            .map(|(p, c)| (p, c.name().to_owned()))
            .collect();
        assert_eq!(from, vec![(100, "c100".into()), (110, "c110".into())]);
        for x in all.iter().step_by(10) {
            assert!(ch.remove(x, false));
        }
        assert_eq!(ch.len(), 0);
        assert_eq!(ch.iter().count(), 0);
        assert!(all.iter().all(|x| ch.named(x.name()).next().is_none()));
        assert_eq!(
            ch.0.as_ref().unwrap().first_live,
            ch.0.as_ref().unwrap().entries.len()
        );
    }

    #[test]
    fn a_name_shared_by_several_children_keeps_their_order() {
        let mut ch = Children::default();
        let (a, b, d) = (c("x"), c("x"), c("x"));
        ch.push(a.clone(), false);
        ch.push(b.clone(), true);
        ch.push(d.clone(), false);
        assert_eq!(ch.visible(), 2);
        let first = |ch: &Children<C>| ch.named("x").next().cloned();
        // Found before the index is brought up to date, and after.
        assert!(ch.needs_index());
        assert!(first(&ch).unwrap().same(&a));
        assert_eq!(ch.named("x").count(), 3);
        ch.index();
        assert!(!ch.needs_index());
        assert!(first(&ch).unwrap().same(&a));
        assert_eq!(ch.named("x").count(), 3);
        assert!(ch.remove(&b, true));
        assert_eq!(ch.visible(), 2);
        assert!(ch.remove(&a, false));
        assert!(
            first(&ch).unwrap().same(&d),
            "the next one added takes the name"
        );
        assert_eq!(ch.named("x").count(), 1);
        // A child of another parent (its slot points at one of ours) is not removed.
        let stranger = c("x");
        stranger.slot().store(d.slot().load(Relaxed), Relaxed);
        assert!(!ch.remove(&stranger, false));
        assert_eq!(ch.len(), 1);
    }
}
