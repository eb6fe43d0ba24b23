//! Folding descriptors over every matching simple value of a subtree
//! (`docs/MODEL.md#aggregation`).
//!
//! Each aggregate group caches the flattened list of its subtree's matching members (the
//! simple groups of the same schema, by identity; aggregate and revoked groups skipped):
//! the instances' addresses in one array, and the block sources. A read folds over that
//! list with one tight loop per descriptor, taking no lock per source. The list is
//! collected (top-down, under each source's read lock) at the first read; after that,
//! every change of membership adds or removes just the members it concerns, so a read
//! after a change costs what any read costs. [`AggregateCache`] explains why this keeps
//! revoke and removal immediate.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use super::block::BlockSource;
use super::hashing::MixedState;
use super::raw::{Instance, Instances, KeepAlive};
use crate::desc::{Aggregation, Descriptor};
use crate::schema::{Schema, SchemaRef};

/// The running fold of one scalar descriptor.
#[derive(Clone, Copy)]
struct Acc {
    n: u64,
    wrapping: u64,
    wide: i128,
    min: i128,
    max: i128,
    zeros: u64,
}

impl Acc {
    const EMPTY: Acc = Acc {
        n: 0,
        wrapping: 0,
        wide: 0,
        min: i128::MAX,
        max: i128::MIN,
        zeros: 0,
    };

    fn add(&mut self, v: i128, bits: u64) {
        self.n += 1;
        self.wrapping = self.wrapping.wrapping_add(bits);
        self.wide += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.zeros += (bits == 0) as u64;
    }
}

/// Widens a stored word to a comparable number.
fn widen(d: &Descriptor, bits: u64) -> i128 {
    if d.ty.is_signed() {
        bits as i64 as i128
    } else {
        bits as i128
    }
}

/// The result of an aggregation over `acc`, as a stored word.
fn finish(d: &Descriptor, acc: &Acc) -> u64 {
    let signed = d.ty.is_signed();
    match d.aggregation {
        Aggregation::Sum | Aggregation::None => acc.wrapping,
        Aggregation::Min if acc.n == 0 => {
            if signed {
                i64::MAX as u64
            } else {
                u64::MAX
            }
        }
        Aggregation::Max if acc.n == 0 => {
            if signed {
                i64::MIN as u64
            } else {
                0
            }
        }
        Aggregation::Min => acc.min as i64 as u64,
        Aggregation::Max => acc.max as i64 as u64,
        Aggregation::Avg if acc.n == 0 => 0,
        // i128 division truncates toward zero, as C's signed division does.
        Aggregation::Avg => (acc.wide / acc.n as i128) as i64 as u64,
        Aggregation::CountZero => acc.zeros,
    }
}

/// Folds the descriptors `which` of `schema` over a subtree.
pub(super) struct Fold<'a> {
    schema: &'a Schema,
    which: &'a [usize],
    accs: Vec<Acc>,
    /// Histogram bucket sums, `size` words per descriptor in `which` order.
    buckets: Vec<u64>,
    block: Vec<u64>,
    word: Vec<u64>,
}

impl<'a> Fold<'a> {
    pub(super) fn new(schema: &'a Schema, which: &'a [usize]) -> Self {
        let ds = schema.descriptors();
        let words = which
            .iter()
            .map(|&i| {
                if ds[i].kind.is_histogram() {
                    ds[i].size as usize
                } else {
                    0
                }
            })
            .sum();
        let widest = which
            .iter()
            .map(|&i| ds[i].size as usize)
            .max()
            .unwrap_or(1);
        Fold {
            schema,
            which,
            accs: vec![Acc::EMPTY; which.len()],
            buckets: vec![0; words],
            block: Vec::new(),
            word: vec![0; widest],
        }
    }

    /// Folds every member of the aggregate whose group holds `cache`: from the cache when
    /// it is valid, else after `collect` gathered the members again. The cache lock is
    /// held for the whole fold and released before this returns, so callers run user
    /// code only after it.
    pub(super) fn run(&mut self, cache: &AggregateCache, collect: impl FnOnce(&mut Members)) {
        {
            let members = cache.members.read().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = members.as_ref() {
                self.add_members(m);
                return;
            }
        }
        let mut members = cache.members.write().unwrap_or_else(|e| e.into_inner());
        let m = members.get_or_insert_with(|| {
            let mut m = Members::default();
            collect(&mut m);
            m.shrink_to_fit();
            m
        });
        self.add_members(m);
    }

    fn add_members(&mut self, m: &Members) {
        let ds = self.schema.descriptors();
        if let Some(inst) = &m.instances {
            let n = inst.len();
            // Chunks keep the instances a chunk touches in cache while every descriptor of
            // the fold goes over them.
            let mut at = 0;
            while at < n {
                let range = at..(at + CHUNK).min(n);
                let mut hist_at = 0;
                for (k, &i) in self.which.iter().enumerate() {
                    let d = &ds[i];
                    if d.kind.is_histogram() {
                        let size = d.size as usize;
                        for j in range.clone() {
                            inst.read(j, i, &mut self.word[..size]);
                            for (sum, w) in self.buckets[hist_at..hist_at + size]
                                .iter_mut()
                                .zip(&self.word)
                            {
                                *sum = sum.wrapping_add(*w);
                            }
                        }
                        hist_at += size;
                    } else {
                        fold_scalars(inst, range.clone(), i, d, &mut self.accs[k]);
                    }
                }
                at = range.end;
            }
        }
        for r in &m.retained {
            self.add_retained(r);
        }
        for src in &m.blocks {
            self.block.clear();
            self.block.resize(self.schema.block_words(), 0);
            if src.read_block(&mut self.block).is_err() {
                continue;
            }
            let mut hist_at = 0;
            for (k, &i) in self.which.iter().enumerate() {
                let d = &ds[i];
                let size = d.size as usize;
                let binding_words = block_words(&self.block, d, &mut self.word[..size]);
                if d.kind.is_histogram() {
                    for (sum, w) in self.buckets[hist_at..hist_at + size]
                        .iter_mut()
                        .zip(binding_words.iter())
                    {
                        *sum = sum.wrapping_add(*w);
                    }
                    hist_at += size;
                } else {
                    let bits = binding_words[0];
                    self.accs[k].add(widen(d, bits), bits);
                }
            }
        }
    }

    /// Folds what retired members left behind: the values a total keeps
    /// ([`Descriptor::retains`]); the others are not the retired members' any more.
    fn add_retained(&mut self, r: &Retained) {
        let ds = self.schema.descriptors();
        let mut hist_at = 0;
        for (k, &i) in self.which.iter().enumerate() {
            let d = &ds[i];
            let size = d.size as usize;
            let words = &r.words[r.at[i]..r.at[i] + size];
            if d.kind.is_histogram() {
                if d.retains() {
                    for (sum, w) in self.buckets[hist_at..hist_at + size].iter_mut().zip(words) {
                        *sum = sum.wrapping_add(w.load(Relaxed));
                    }
                }
                hist_at += size;
            } else if d.retains() {
                let bits = words[0].load(Relaxed);
                let acc = &mut self.accs[k];
                if let Aggregation::Max = d.aggregation {
                    acc.max = acc.max.max(widen(d, bits));
                    // Not empty any more: the retired peak is a floor.
                    acc.n = acc.n.max(1);
                } else {
                    acc.wrapping = acc.wrapping.wrapping_add(bits);
                }
            }
        }
    }

    /// Calls `f` with each folded descriptor (in `which` order) and its words.
    pub(super) fn finish(mut self, mut f: impl FnMut(usize, &[u64])) {
        let ds = self.schema.descriptors();
        let mut hist_at = 0;
        for (k, &i) in self.which.iter().enumerate() {
            let d = &ds[i];
            if d.kind.is_histogram() {
                let size = d.size as usize;
                f(i, &self.buckets[hist_at..hist_at + size]);
                hist_at += size;
            } else {
                self.word[0] = finish(d, &self.accs[k]);
                f(i, &self.word[..1]);
            }
        }
    }
}

/// What retired subordinates left behind in one source, for one schema: every
/// descriptor's words folded over them ([`Source::retire_subordinate`](crate::Source::retire_subordinate)),
/// fixed but for a clear. Folds take only what [`Descriptor::retains`] keeps.
pub(super) struct Retained {
    schema: SchemaRef,
    /// Kept from component parts of bigger structs (`docs/MODEL.md#components`), not from
    /// groups of the schema itself: aggregates fold it, but it is no leaf of its own (the
    /// bigger struct's retained set holds the same values).
    part: bool,
    /// `size` words a descriptor, in schema order.
    words: Box<[AtomicU64]>,
    /// The first word of each descriptor (shared by every set of one schema a source
    /// retires into).
    at: Arc<[usize]>,
}

/// The member that replaces `prior` (what its source retained of `schema` so far, if
/// anything) when the members `leaving` retire: `prior` plus `leaving`'s members of
/// `schema`, each retained value combined as [`Descriptor::retains`] says (sums add,
/// peaks keep the larger); the other values stay empty. One pass over the leaving
/// members, no index: a retire costs what its own subtree holds.
pub(super) fn retire(
    id: u64,
    schema: &SchemaRef,
    part: bool,
    leaving: &[Member],
    prior: Option<&Member>,
) -> Member {
    let ds = schema.descriptors();
    let prior = prior.and_then(|p| match &p.reads {
        Reads::Retained(r) => Some(r),
        _ => None,
    });
    // The layout is the schema's: shared with what it replaces.
    let at: Arc<[usize]> = match prior {
        Some(p) => p.at.clone(),
        None => word_offsets(ds).into(),
    };
    let mut words: Vec<u64> = match prior {
        Some(p) => p.words.iter().map(|w| w.load(Relaxed)).collect(),
        None => {
            let mut w =
                vec![0; at.last().map_or(0, |&a| a) + ds.last().map_or(0, |d| d.size as usize)];
            for (d, &k) in ds.iter().zip(at.iter()) {
                if !d.kind.is_histogram() {
                    w[k] = finish(d, &Acc::EMPTY);
                }
            }
            w
        }
    };
    let widest = ds.iter().map(|d| d.size as usize).max().unwrap_or(1);
    let mut word = vec![0u64; widest];
    let mut block = Vec::new();
    let mut take = |d: &Descriptor, k: usize, from: &[u64]| {
        for (w, &v) in words[k..k + d.size as usize].iter_mut().zip(from) {
            *w = match d.aggregation {
                Aggregation::Max if d.ty.is_signed() => (*w as i64).max(v as i64) as u64,
                Aggregation::Max => (*w).max(v),
                _ => w.wrapping_add(v),
            };
        }
    };
    for m in leaving {
        if !core::ptr::eq(m.schema(), &**schema) || m.is_part() != part {
            continue;
        }
        match &m.reads {
            Reads::Instance(inst) => {
                for (i, (d, &k)) in ds.iter().zip(at.iter()).enumerate() {
                    if d.retains() {
                        let out = &mut word[..d.size as usize];
                        inst.read(i, out);
                        take(d, k, out);
                    }
                }
            }
            Reads::Block(s, src) => {
                block.clear();
                block.resize(s.block_words(), 0);
                if src.read_block(&mut block).is_err() {
                    continue;
                }
                for (d, &k) in ds.iter().zip(at.iter()) {
                    if d.retains() {
                        let out = block_words(&block, d, &mut word[..d.size as usize]);
                        take(d, k, out);
                    }
                }
            }
            Reads::Retained(r) => {
                for (d, &k) in ds.iter().zip(at.iter()) {
                    if d.retains() {
                        let out = &mut word[..d.size as usize];
                        for (o, w) in out.iter_mut().zip(&r.words[k..]) {
                            *o = w.load(Relaxed);
                        }
                        take(d, k, out);
                    }
                }
            }
        }
    }
    Member {
        id,
        reads: Reads::Retained(Arc::new(Retained {
            schema: schema.clone(),
            part,
            words: words.into_iter().map(AtomicU64::new).collect(),
            at,
        })),
    }
}

/// The first word of each descriptor in a schema's words (its sizes summed before it).
fn word_offsets(ds: &[Descriptor]) -> Vec<usize> {
    let mut at = 0;
    ds.iter()
        .map(|d| {
            let here = at;
            at += d.size as usize;
            here
        })
        .collect()
}

/// How many instances one pass of the fold covers before moving to the next descriptor.
const CHUNK: usize = 256;

/// Reads `d`'s words out of a block filled by a [`BlockSource`] (missing words read 0).
fn block_words<'w>(block: &[u64], d: &Descriptor, out: &'w mut [u64]) -> &'w [u64] {
    let start = d.offset / 8;
    let words = block.get(start..start + d.size as usize);
    for (i, o) in out.iter_mut().enumerate() {
        *o = words.and_then(|w| w.get(i)).copied().unwrap_or(0);
    }
    out
}

/// Folds the one-word descriptor `d` (index `i` of the instances' schema) of the
/// instances in `range` into `acc`, with one loop per aggregation that updates only what
/// that aggregation's result needs.
fn fold_scalars(inst: &Instances, range: Range<usize>, i: usize, d: &Descriptor, acc: &mut Acc) {
    if range.is_empty() {
        return;
    }
    acc.n += range.len() as u64;
    let signed = d.ty.is_signed();
    {
        match d.aggregation {
            Aggregation::Sum | Aggregation::None => {
                let mut s = acc.wrapping;
                inst.scalars(range, i, |v| s = s.wrapping_add(v));
                acc.wrapping = s;
            }
            Aggregation::Avg => {
                let mut w = acc.wide;
                if signed {
                    inst.scalars(range, i, |v| w += v as i64 as i128);
                } else {
                    inst.scalars(range, i, |v| w += v as i128);
                }
                acc.wide = w;
            }
            Aggregation::Min if signed => {
                let mut m = i64::MAX;
                inst.scalars(range, i, |v| m = m.min(v as i64));
                acc.min = acc.min.min(m as i128);
            }
            Aggregation::Min => {
                let mut m = u64::MAX;
                inst.scalars(range, i, |v| m = m.min(v));
                acc.min = acc.min.min(m as i128);
            }
            Aggregation::Max if signed => {
                let mut m = i64::MIN;
                inst.scalars(range, i, |v| m = m.max(v as i64));
                acc.max = acc.max.max(m as i128);
            }
            Aggregation::Max => {
                let mut m = 0u64;
                inst.scalars(range, i, |v| m = m.max(v));
                acc.max = acc.max.max(m as i128);
            }
            Aggregation::CountZero => {
                let mut z = 0u64;
                inst.scalars(range, i, |v| z += (v == 0) as u64);
                acc.zeros += z;
            }
        }
    }
}

/// A simple group as an aggregate's member: its group's id (unique in the process, never
/// reused) and what it reads.
#[derive(Clone)]
pub(super) struct Member {
    pub(super) id: u64,
    pub(super) reads: Reads,
}

/// What a member reads: an instance (which carries its schema) or a block source.
#[derive(Clone)]
pub(super) enum Reads {
    Instance(Instance),
    Block(Arc<Schema>, Arc<dyn BlockSource>),
    /// What retired subordinates left in a source.
    Retained(Arc<Retained>),
}

impl Member {
    pub(super) fn schema(&self) -> &Schema {
        match &self.reads {
            Reads::Instance(i) => i.schema(),
            Reads::Block(s, _) => s,
            Reads::Retained(r) => &r.schema,
        }
    }

    /// Whether the member is (or was retained from) the part of a bigger struct that a
    /// component schema describes, rather than a group of its own schema.
    pub(super) fn is_part(&self) -> bool {
        match &self.reads {
            Reads::Retained(r) => r.part,
            // Component members carry their part's number in the id's high bits.
            _ => self.id >> 48 != 0,
        }
    }

    pub(super) fn schema_ref(&self) -> SchemaRef {
        match &self.reads {
            Reads::Instance(i) => SchemaRef::Static(i.schema()),
            Reads::Block(s, _) => SchemaRef::Shared(s.clone()),
            Reads::Retained(r) => r.schema.clone(),
        }
    }

    /// For a retained member: the schema, and descriptor `i`'s words into `out` (its
    /// `size` words); `None` for other members.
    pub(super) fn retained_words(&self, i: usize, out: &mut Vec<u64>) -> Option<&Schema> {
        let Reads::Retained(r) = &self.reads else {
            return None;
        };
        let size = r.schema.descriptors()[i].size as usize;
        out.clear();
        out.extend(
            r.words[r.at[i]..r.at[i] + size]
                .iter()
                .map(|w| w.load(Relaxed)),
        );
        Some(&r.schema)
    }

    /// Forgets what a retained member kept of descriptor `i` (a clear of an aggregate
    /// above); no-op for other members.
    pub(super) fn clear_retained(&self, i: usize) {
        if let Reads::Retained(r) = &self.reads {
            let ds = r.schema.descriptors();
            let d = &ds[i];
            let empty = if d.kind.is_histogram() {
                0
            } else {
                finish(d, &Acc::EMPTY)
            };
            for w in &r.words[r.at[i]..r.at[i] + d.size as usize] {
                w.store(empty, Relaxed);
            }
            // A histogram's sum goes with its buckets.
            if d.kind.is_histogram() {
                if let Some(k) = ds
                    .get(i + 1)
                    .filter(|s| s.role == crate::desc::Role::HistogramSum)
                    .map(|_| r.at[i + 1])
                {
                    r.words[k].store(0, Relaxed);
                }
            }
        }
    }
}

/// Where a member sits in [`Members`]' arrays: 8 bytes, so the index costs 16 bytes a
/// member (an aggregate of more than 2^32 members would need 2^32 sources first).
#[derive(Clone, Copy)]
enum Slot {
    Instance(u32),
    Block(u32),
    Retained(u32),
}

/// An index as a [`Slot`]'s.
fn slot(i: usize) -> u32 {
    u32::try_from(i).expect("an aggregate of more than 2^32 members")
}

/// What a removed member held, dropped by the caller after its locks (the last `Arc` of
/// an instance or a block source runs its owner's `Drop`). Held only to be dropped.
#[allow(dead_code)]
pub(super) enum Gone {
    Instance(KeepAlive),
    Block(Arc<dyn BlockSource>),
    Retained(Arc<Retained>),
}

/// The simple groups of one schema in an aggregate's subtree, flattened: instances
/// (for a derived schema) and block sources, each once, by group id. A member joins and
/// leaves in O(1) whatever the number of members: an index from group id to slot, and
/// removal by moving the last member into the gap (folds do not depend on the order).
#[derive(Default)]
pub(super) struct Members {
    instances: Option<Instances>,
    instance_ids: Vec<u64>,
    blocks: Vec<Arc<dyn BlockSource>>,
    block_ids: Vec<u64>,
    /// At most one a source that retired subordinates.
    retained: Vec<Arc<Retained>>,
    retained_ids: Vec<u64>,
    at: HashMap<u64, Slot, MixedState>,
}

impl Members {
    /// Adds `m` unless a member of its group id is already here (so a change applied to
    /// members that were collected after it is no change). `collect` and
    /// [`AggregateCache::apply`] match the schema by identity before they call this.
    pub(super) fn insert(&mut self, m: &Member) {
        if let Some(&slot) = self.at.get(&m.id) {
            // What a source retained is replaced under its id as more retire into it.
            if let (Slot::Retained(i), Reads::Retained(r)) = (slot, &m.reads) {
                self.retained[i as usize] = r.clone();
            }
            return;
        }
        match &m.reads {
            Reads::Instance(inst) => {
                let instances = self
                    .instances
                    .get_or_insert_with(|| Instances::new(inst.schema()));
                if instances.push(inst) {
                    self.at
                        .insert(m.id, Slot::Instance(slot(self.instance_ids.len())));
                    self.instance_ids.push(m.id);
                }
            }
            Reads::Block(_, src) => {
                self.at.insert(m.id, Slot::Block(slot(self.blocks.len())));
                self.blocks.push(src.clone());
                self.block_ids.push(m.id);
            }
            Reads::Retained(r) => {
                self.at
                    .insert(m.id, Slot::Retained(slot(self.retained.len())));
                self.retained.push(r.clone());
                self.retained_ids.push(m.id);
            }
        }
    }

    /// Removes the member of group `id`, if here; returns what it held.
    pub(super) fn remove(&mut self, id: u64) -> Option<Gone> {
        match self.at.remove(&id)? {
            Slot::Instance(i) => {
                let i = i as usize;
                let instances = self.instances.as_mut()?;
                let keep = instances.swap_remove(i);
                self.instance_ids.swap_remove(i);
                if let Some(&moved) = self.instance_ids.get(i) {
                    self.at.insert(moved, Slot::Instance(slot(i)));
                }
                Some(Gone::Instance(keep))
            }
            Slot::Block(i) => {
                let i = i as usize;
                let src = self.blocks.swap_remove(i);
                self.block_ids.swap_remove(i);
                if let Some(&moved) = self.block_ids.get(i) {
                    self.at.insert(moved, Slot::Block(slot(i)));
                }
                Some(Gone::Block(src))
            }
            Slot::Retained(i) => {
                let i = i as usize;
                let r = self.retained.swap_remove(i);
                self.retained_ids.swap_remove(i);
                if let Some(&moved) = self.retained_ids.get(i) {
                    self.at.insert(moved, Slot::Retained(slot(i)));
                }
                Some(Gone::Retained(r))
            }
        }
    }

    /// How many members (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.at.len()
    }

    /// The members' group ids, sorted, checked against the arrays they index (for
    /// tests).
    #[cfg(test)]
    pub(super) fn ids(&self) -> Vec<u64> {
        for (id, slot) in &self.at {
            let at = match *slot {
                Slot::Instance(i) => self.instance_ids[i as usize],
                Slot::Block(i) => self.block_ids[i as usize],
                Slot::Retained(i) => self.retained_ids[i as usize],
            };
            assert_eq!(at, *id, "the index points at the member's slot");
        }
        let n = self.instances.as_ref().map_or(0, |i| i.len());
        assert_eq!(n, self.instance_ids.len());
        assert_eq!(self.blocks.len(), self.block_ids.len());
        assert_eq!(self.retained.len(), self.retained_ids.len());
        assert_eq!(self.at.len(), n + self.blocks.len() + self.retained.len());
        let mut ids: Vec<u64> = self.at.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn shrink_to_fit(&mut self) {
        if let Some(i) = &mut self.instances {
            i.shrink_to_fit();
        }
        self.instance_ids.shrink_to_fit();
        self.blocks.shrink_to_fit();
        self.block_ids.shrink_to_fit();
    }
}

/// Simple groups that join or leave every aggregate above a change: a group added or
/// revoked, or a whole subtree's simple groups when it is added or removed.
pub(super) struct Delta {
    pub(super) joining: bool,
    pub(super) members: Vec<Member>,
}

/// What an aggregate group keeps to fold fast: the flattened members of its subtree, or
/// `None` until the first read collects them.
///
/// # Members follow every change; why a reader never touches an instance after
/// `revoke()` (or a removal) returns
///
/// * Every change of membership (a simple group added or revoked, a subordinate added or
///   removed) runs under the process-wide structure lock, so changes are applied one at
///   a time: each first changes the tree, then [`apply`](Self::apply)s its [`Delta`] to
///   the caches of the changed source and of every ancestor, one source at a time
///   (`Source::update_up`), before the next change can start.
/// * A reader folds only while it holds its cache's lock (read to fold valid members,
///   write to collect and fold), and `apply` takes that lock for writing: it waits until
///   every fold in flight over the old members has ended, then removes the leaving ones.
///   So when the change returns, no fold over a removed member is running and none can
///   start.
/// * A collection racing with a change ran under the cache's write lock, before or after
///   the change's `apply`. Before: it saw the tree before or after the change (the tree
///   changed first), and `apply` brings it to after, since adding a member already there
///   and removing one that is not are no-ops (members are kept by group id). After: the
///   tree had changed, so it saw the change, and nothing is left to apply. A cache still
///   `None` at `apply` is collected later from the changed tree.
///
/// Lock order: the structure lock, then a source's state, then its aggregate caches,
/// then its subordinates' states (when collecting): the top-down order readers use, who
/// never take the structure lock. `apply` holds one source's state (read) and one cache
/// at a time. Members hold the instances' keep-alives, so a cache can never dangle either;
/// what `apply` removes is dropped after all locks.
#[derive(Default)]
pub(super) struct AggregateCache {
    members: RwLock<Option<Members>>,
    /// The schema's descriptors as the aggregates show them, when a fold makes one a
    /// count ([`Descriptor::folded`](crate::Descriptor::folded)); `None` otherwise.
    shown: Option<Box<[crate::Descriptor]>>,
}

impl AggregateCache {
    /// An empty cache for aggregates of `schema`.
    pub(super) fn for_schema(schema: &Schema) -> Self {
        let d = schema.descriptors();
        AggregateCache {
            members: RwLock::default(),
            shown: d
                .iter()
                .any(crate::Descriptor::folds_to_count)
                .then(|| d.iter().map(|d| d.folded()).collect()),
        }
    }

    /// The descriptors as the aggregates show them, if any differs from the schema's.
    pub(super) fn shown(&self) -> Option<&[crate::Descriptor]> {
        self.shown.as_deref()
    }

    /// Applies `delta`'s members of `schema` to the cached members, once no fold over
    /// them is in flight; a cache not yet collected is left so. What leaves goes into
    /// `gone`, for the caller to drop outside its locks.
    pub(super) fn apply(&self, schema: &Schema, delta: &Delta, gone: &mut Vec<Gone>) {
        self.apply_all(schema, &[delta], gone);
    }

    /// Applies `deltas` in order under one hold of the lock: a fold sees the members
    /// before all of them or after all of them (a retire: the leaving members out, what
    /// they leave behind in).
    pub(super) fn apply_all(&self, schema: &Schema, deltas: &[&Delta], gone: &mut Vec<Gone>) {
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        let Some(m) = members.as_mut() else { return };
        for delta in deltas {
            for member in &delta.members {
                if !core::ptr::eq(member.schema(), schema) {
                    continue;
                }
                if delta.joining {
                    m.insert(member);
                } else if let Some(g) = m.remove(member.id) {
                    gone.push(g);
                }
            }
        }
    }

    /// Whether the members have been collected (then every change of membership below
    /// must be applied to them).
    pub(super) fn is_collected(&self) -> bool {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Runs `f` on the cached members, if collected (for tests).
    #[cfg(test)]
    pub(super) fn inspect<R>(&self, f: impl FnOnce(Option<&Members>) -> R) -> R {
        f(self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref())
    }
}

/// The words an empty aggregate of `d` reads as (used for revoked groups).
pub(super) fn empty(d: &Descriptor, out: &mut [u64]) {
    out.fill(0);
    if !d.kind.is_histogram() {
        out[0] = finish(d, &Acc::EMPTY);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::sync::Arc;

    use crate::cell::{Counter, Gauge, LogHistogram};
    use crate::tree::group::Binding;
    use crate::{Aggregation, Descriptor, Schema, Source, Stats, ValueGroup, ValueType};

    /// What the derive would generate, by hand: the core is tested without macros.
    /// (Also the fixture of `membership_tests`.)
    #[derive(Default)]
    pub(in crate::tree) struct T {
        pub(in crate::tree) a: Counter,
        pub(in crate::tree) low: Gauge<i32>,
        idle: Counter,
        h: LogHistogram<4>,
    }

    // SAFETY: each descriptor names its field's offset and cell type.
    unsafe impl Stats for T {
        const DESCRIPTORS: &'static [Descriptor] = &[
            crate::__private::field(
                "a",
                core::mem::offset_of!(T, a),
                <Counter as crate::cell::StatField>::INFO,
            ),
            crate::__private::field(
                "low",
                core::mem::offset_of!(T, low),
                <Gauge<i32> as crate::cell::StatField>::INFO,
            )
            .with_aggregation(Aggregation::Min),
            crate::__private::field(
                "idle",
                core::mem::offset_of!(T, idle),
                <Counter as crate::cell::StatField>::INFO,
            )
            .with_aggregation(Aggregation::CountZero),
            crate::__private::field(
                "h",
                core::mem::offset_of!(T, h),
                <LogHistogram<4> as crate::cell::StatField>::INFO,
            ),
        ];
        const SCHEMA: &'static Schema = &T_SCHEMA;
    }

    static T_SCHEMA: Schema = Schema::new_static("t", "T", <T as Stats>::DESCRIPTORS);

    fn leaf(name: &str, a: u64) -> (Source, Arc<T>) {
        let t = Arc::new(T::default());
        t.a.add(a);
        let s = Source::new(name).unwrap();
        s.add(t.clone()).unwrap();
        (s, t)
    }

    /// How many members the first aggregate group of `s` has cached (`None`: not
    /// collected).
    fn cached(s: &Source) -> Option<usize> {
        s.read_state()
            .groups
            .iter()
            .find_map(|g| match &g.binding {
                Binding::Aggregate(_, c) => Some(c.inspect(|m| m.map(|m| m.len()))),
                _ => None,
            })?
    }

    #[test]
    fn cache_follows_every_structural_change_at_once() {
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<T>()).unwrap();
        let mid = Source::new("mid").unwrap();
        root.add_subordinate(&mid).unwrap();
        let (x, tx) = leaf("x", 3);
        mid.add_subordinate(&x).unwrap();
        assert_eq!(cached(&root), None, "collected at the first read");
        assert_eq!(root.get("a").unwrap().as_u64(), 3);
        assert_eq!(cached(&root), Some(1));

        // A subordinate added deep down: counted at once, by joining the cached members
        // (not by collecting them again).
        let (y, ty) = leaf("y", 4);
        mid.add_subordinate(&y).unwrap();
        assert_eq!(cached(&root), Some(2), "the new member joined the cache");
        assert_eq!(root.get("a").unwrap().as_u64(), 7);

        // A group added to an existing source: counted at once.
        let extra = Arc::new(T::default());
        extra.a.add(10);
        x.add(ValueGroup::of(extra.clone()).shadowing()).unwrap();
        assert_eq!(cached(&root), Some(3));
        assert_eq!(root.get("a").unwrap().as_u64(), 17);

        // Values written after the cache was built are read live.
        ty.a.inc();
        ty.h.record(2);
        assert_eq!(root.get("a").unwrap().as_u64(), 18);
        assert_eq!(root.get("h").unwrap().words(), &[0, 0, 1, 0]);

        // Removal: gone at once, and the cache no longer holds its instances.
        mid.remove_subordinate(&y).unwrap();
        assert_eq!(cached(&root), Some(2));
        assert_eq!(root.get("a").unwrap().as_u64(), 13);
        assert_eq!(Arc::strong_count(&ty), 2, "ours and y's group only");

        // Revoke: gone at once; after it returns nothing but its owner holds the instance.
        x.revoke();
        assert_eq!(cached(&root), Some(0));
        assert_eq!(Arc::strong_count(&tx), 1);
        assert_eq!(Arc::strong_count(&extra), 1);
        assert_eq!(root.get("a").unwrap().as_u64(), 0);

        // Moving a subtree: the old parent's aggregates stop, the new one's start.
        let other = Source::new("other").unwrap();
        other.add(ValueGroup::aggregates::<T>()).unwrap();
        mid.add_subordinate(&y).unwrap();
        assert_eq!(root.get("a").unwrap().as_u64(), 5);
        root.remove_subordinate(&mid).unwrap();
        other.add_subordinate(&mid).unwrap();
        assert_eq!(root.get("a").unwrap().as_u64(), 0);
        assert_eq!(other.get("a").unwrap().as_u64(), 5);
    }

    #[test]
    fn cached_folds_follow_the_spec_for_every_aggregation() {
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<T>()).unwrap();
        // Empty: min of a signed type is i64::MAX, count_zero 0.
        assert_eq!(root.get("low").unwrap().as_i64(), i64::MAX);
        assert_eq!(root.get("idle").unwrap().as_u64(), 0);
        let mut keep = Vec::new();
        // More instances than one chunk, so chunks are folded one after the other.
        for i in 0..(super::CHUNK as i32 * 2 + 7) {
            let (s, t) = leaf(&format!("s{i}"), 1);
            t.low.set(100 - i);
            if i % 3 == 0 {
                t.idle.inc();
            }
            t.h.record(i as u64);
            root.add_subordinate(&s).unwrap();
            keep.push((s, t));
        }
        let n = keep.len() as u64;
        assert_eq!(root.get("a").unwrap().as_u64(), n);
        assert_eq!(root.get("low").unwrap().as_i64(), 100 - (n as i64 - 1));
        assert_eq!(root.get("idle").unwrap().as_u64(), n - n.div_ceil(3));
        let h = root.get("h").unwrap();
        assert_eq!(h.words().iter().sum::<u64>(), n);
        assert_eq!(&h.words()[..3], &[1, 1, 2]);
        // for_each_value folds all descriptors in one pass: the same results.
        let mut seen = Vec::new();
        root.for_each_value(|v| seen.push((v.descriptor.name, v.words[0])));
        assert_eq!(seen[0], ("a", n));
        assert_eq!(seen[1], ("low", (100 - (n as i64 - 1)) as u64));
    }

    /// A runtime schema of one cumulative word `w`, for block sources.
    pub(in crate::tree) fn blk_schema() -> Arc<Schema> {
        let w = Descriptor::new("w", ValueType::U64, crate::Kind::Cumulative);
        Schema::new_runtime("blk", vec![w]).unwrap()
    }

    #[test]
    fn a_retired_source_leaves_its_totals_and_takes_its_instants() {
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<T>()).unwrap();
        let mid = Source::new("mid").unwrap();
        mid.add(ValueGroup::aggregates::<T>()).unwrap();
        root.add_subordinate(&mid).unwrap();
        let (x, tx) = leaf("x", 3);
        tx.low.set(-4);
        tx.h.record(2);
        let (y, ty) = leaf("y", 4);
        ty.low.set(9);
        mid.add_subordinate(&x).unwrap();
        mid.add_subordinate(&y).unwrap();
        assert_eq!(root.get("low").unwrap().as_i64(), -4);
        mid.retire_subordinate(&x).unwrap();
        assert_eq!(
            Arc::strong_count(&tx),
            2,
            "ours and x's group: no cache holds it"
        );
        for s in [&root, &mid] {
            assert_eq!(s.get("a").unwrap().as_u64(), 7, "a counter's total stays");
            assert_eq!(s.get("h").unwrap().words(), &[0, 0, 1, 0], "so do buckets");
            assert_eq!(
                s.get("low").unwrap().as_i64(),
                9,
                "an instant leaves with x"
            );
        }
        // A retired source cannot come back: its counts are in mid's totals.
        assert!(matches!(
            mid.add_subordinate(&x),
            Err(crate::Error::Retired { .. })
        ));
        // The retained totals move with their source: an aggregate wherever it goes
        // (even one added later) sees them.
        root.remove_subordinate(&mid).unwrap();
        assert_eq!(root.get("a").unwrap().as_u64(), 0);
        let (z, _tz) = leaf("z", 1);
        mid.add_subordinate(&z).unwrap();
        let top = Source::new("top").unwrap();
        top.add(ValueGroup::aggregates::<T>()).unwrap();
        top.add_subordinate(&mid).unwrap();
        assert_eq!(
            top.get("a").unwrap().as_u64(),
            8,
            "x's 3 retained in mid, y and z"
        );
        // A clear of an aggregate clears what it retained too.
        top.clear("a").unwrap();
        assert_eq!(top.get("a").unwrap().as_u64(), 0);
        assert_eq!(mid.get("a").unwrap().as_u64(), 0);
        // And they retire with it.
        ty.a.add(2);
        top.retire_subordinate(&mid).unwrap();
        assert_eq!(top.get("a").unwrap().as_u64(), 2);
        drop((x, y));
    }

    #[test]
    fn a_retired_peak_stays_the_floor_of_the_maximum() {
        let d = Descriptor::new("depth_max", ValueType::I64, crate::Kind::Peak);
        let schema = Schema::new_runtime("p", vec![d]).unwrap();
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates_of(schema.clone())).unwrap();
        assert_eq!(root.get("depth_max").unwrap().as_i64(), i64::MIN, "empty");
        let add = |name: &str, v: i64| {
            let s = Source::new(name).unwrap();
            let block = Arc::new(move |o: &mut [u64]| {
                o[0] = v as u64;
                Ok(())
            });
            s.add(ValueGroup::block(schema.clone(), block)).unwrap();
            root.add_subordinate(&s).unwrap();
            s
        };
        let a = add("a", -3);
        let b = add("b", -8);
        root.retire_subordinate(&a).unwrap();
        assert_eq!(root.get("depth_max").unwrap().as_i64(), -3);
        root.retire_subordinate(&b).unwrap();
        assert_eq!(root.get("depth_max").unwrap().as_i64(), -3);
        let _c = add("c", 5);
        assert_eq!(root.get("depth_max").unwrap().as_i64(), 5);
    }

    #[test]
    fn no_reader_sees_a_total_go_back_while_sources_retire() {
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<T>()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                let mut reads = 0u64;
                loop {
                    // Stop seen before the read: this read is after the last retire.
                    let stopped = stop.load(SeqCst);
                    let now = root.get("a").unwrap().as_u64();
                    assert!(now >= last, "went back from {last} to {now}");
                    last = now;
                    reads += 1;
                    if stopped {
                        return (last, reads);
                    }
                }
            })
        };
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        for i in 0..rounds {
            let (s, t) = leaf(&format!("c{i}"), 0);
            root.add_subordinate(&s).unwrap();
            t.a.add(2);
            root.retire_subordinate(&s).unwrap();
        }
        stop.store(true, SeqCst);
        let (last, reads) = reader.join().unwrap();
        assert_eq!(last, 2 * rounds, "after {reads} reads");
        assert_eq!(root.get("a").unwrap().as_u64(), 2 * rounds);
        assert_eq!(root.subordinate_count(), 0);
    }

    #[test]
    fn block_sources_are_cached_members_too() {
        let schema = blk_schema();
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates_of(schema.clone())).unwrap();
        let v = Arc::new(AtomicU64::new(5));
        let s = Source::new("b").unwrap();
        let v2 = v.clone();
        s.add(ValueGroup::block(
            schema,
            Arc::new(move |o: &mut [u64]| {
                o[0] = v2.load(SeqCst);
                Ok(())
            }),
        ))
        .unwrap();
        root.add_subordinate(&s).unwrap();
        assert_eq!(root.get("w").unwrap().as_u64(), 5);
        v.store(6, SeqCst);
        assert_eq!(root.get("w").unwrap().as_u64(), 6);
    }

    /// The last keep-alive of a revoked or removed member is dropped after the tree's
    /// locks, the structure lock included: its owner's `Drop` may change the tree.
    #[test]
    fn a_members_drop_may_change_the_tree() {
        struct Hides(Source);
        impl Drop for Hides {
            fn drop(&mut self) {
                self.0.set_hidden(true);
                static N: AtomicU64 = AtomicU64::new(0);
                let c = Source::new(format!("from_drop{}", N.fetch_add(1, SeqCst))).unwrap();
                self.0.add_subordinate(&c).unwrap();
            }
        }
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let schema = blk_schema();
            let other = Source::new("other").unwrap();
            // Also with no cache collected above (no read first, and a fresh root whose
            // cache no earlier round collected): what leaves is then not applied to any
            // cache, and must still go after the structure lock.
            for (remove, read_first) in [(false, true), (true, true), (false, false), (true, false)]
            {
                let root = Source::new("root").unwrap();
                root.add(ValueGroup::aggregates_of(schema.clone())).unwrap();
                let s = Source::new("s").unwrap();
                let hides = Hides(other.clone());
                let block = Arc::new(move |o: &mut [u64]| {
                    let _ = &hides;
                    o[0] = 1;
                    Ok(())
                });
                s.add(ValueGroup::block(schema.clone(), block)).unwrap();
                root.add_subordinate(&s).unwrap();
                if read_first {
                    assert_eq!(root.get("w").unwrap().as_u64(), 1);
                }
                if remove {
                    // The source's group still holds the block: drop the source too.
                    root.remove_subordinate(&s).unwrap();
                    drop(s);
                } else {
                    s.revoke();
                }
                assert_eq!(root.get("w").unwrap().as_u64(), 0);
            }
            assert!(other.is_hidden());
            assert_eq!(other.subordinate_count(), 4);
            done.send(()).unwrap();
        });
        wait.recv_timeout(std::time::Duration::from_secs(20))
            .expect("a Drop that changes the tree deadlocked revoke or remove_subordinate");
    }

    /// Readers fold the cache on other threads while sources are revoked: once `revoke`
    /// has returned, no reader may call into the revoked source again.
    #[test]
    fn no_reader_touches_a_source_after_revoke_returns() {
        let schema = blk_schema();
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates_of(schema.clone())).unwrap();
        let violations = Arc::new(AtomicU64::new(0));
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    while !stop.load(SeqCst) {
                        let _ = root.get("w").unwrap();
                    }
                });
            }
            for round in 0..200 {
                let revoked = Arc::new(AtomicBool::new(false));
                let s = Source::new(format!("s{round}")).unwrap();
                let (r, bad) = (revoked.clone(), violations.clone());
                s.add(ValueGroup::block(
                    schema.clone(),
                    Arc::new(move |o: &mut [u64]| {
                        if r.load(SeqCst) {
                            bad.fetch_add(1, SeqCst);
                        }
                        // Make folds long enough to overlap the revoke.
                        std::thread::yield_now();
                        o[0] = 1;
                        Ok(())
                    }),
                ))
                .unwrap();
                root.add_subordinate(&s).unwrap();
                std::thread::yield_now();
                s.revoke();
                revoked.store(true, SeqCst);
                if round % 2 == 0 {
                    root.remove_subordinate(&s).unwrap();
                }
            }
            stop.store(true, SeqCst);
        });
        assert_eq!(violations.load(SeqCst), 0);
        assert_eq!(root.get("w").unwrap().as_u64(), 0);
    }
}
