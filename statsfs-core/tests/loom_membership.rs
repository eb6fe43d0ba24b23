// Without `--cfg loom` this file is empty (`cfg(loom)` is declared in Cargo.toml).
#![cfg(loom)]
//! A loom model of how aggregate caches follow membership changes
//! (`statsfs-core/src/tree/aggregate.rs`, `AggregateCache`). It is a small re-implementation
//! of the protocol with loom's sync types, not the real code, which uses std statics
//! (`STRUCTURE`, `NEXT_ID`) that loom cannot replace. The real code is covered as well by
//! the property test in `statsfs-core/src/tree/membership_tests.rs` and by the race tests
//! in `aggregate.rs` (`no_reader_touches_a_source_after_revoke_returns`) and `raw.rs`
//! (`readers_race_revoke_and_removal`).
//!
//! What each model function mirrors (in `source.rs` unless noted):
//! * `Tree::add` mirrors `Source::add` (a simple group joins);
//! * `Tree::add_subordinate` mirrors `Source::add_subordinate` (without the checks for a
//!   parent and for a cycle, which only return errors);
//! * `Tree::remove_subordinate` mirrors `Source::remove_subordinate`;
//! * `Tree::revoke` mirrors `Source::revoke`;
//! * `Tree::update_up` mirrors `Source::update_up`;
//! * `Tree::subtree_members` mirrors `Source::subtree_members`;
//! * `Tree::collect` mirrors `collect`;
//! * `Tree::read_aggregate` mirrors the aggregate arm of `read_group` with `Fold::run`
//!   (`aggregate.rs`);
//! * `AggregateCache::apply`, `Members` and `Delta` mirror their namesakes in
//!   `aggregate.rs`;
//! * `Tree::structure` is the `STRUCTURE` mutex.
//!
//! Nodes are indices into one array, parents are indices too (in place of `Weak`).
//! An instance's `freed` flag is set by its owner once `revoke` (or the removal) has
//! returned; a fold that reads an instance with `freed` set breaks claim 1 ("once the
//! change returned no reader folds over the member"). After the threads joined, every
//! collected cache must equal a fresh collection of the tree (claim 2), and the final
//! fold must give the expected sum. Two `#[should_panic]` tests break the protocol
//! (no `STRUCTURE`; the delta applied before the tree changes) and check that loom finds
//! the violation.
//!
//! Loom explores every interleaving of each scenario (no preemption bound). Not modelled:
//! hiding (also a membership change), the schema filter of `apply`, dropping what leaves
//! the caches after all locks (here the `Arc` drops inside `apply`, which takes no lock),
//! and the writer preference of std's `RwLock` (loom's lets readers in while a writer
//! waits).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::{Arc, Mutex, MutexGuard, RwLock};
use loom::thread;

/// A stats instance: its value, and whether its owner has freed it.
struct Inst {
    value: u64,
    freed: AtomicBool,
}

fn inst(value: u64) -> Arc<Inst> {
    Arc::new(Inst {
        value,
        freed: AtomicBool::new(false),
    })
}

/// A member: a simple group's id and its instance (a keep-alive, as in the real cache).
type Member = (u64, Arc<Inst>);

/// The cached members, by group id.
type Members = BTreeMap<u64, Arc<Inst>>;

struct Delta {
    joining: bool,
    members: Vec<Member>,
}

#[derive(Default)]
struct AggregateCache {
    members: RwLock<Option<Members>>,
}

impl AggregateCache {
    /// `AggregateCache::apply`: by id, idempotent; a cache not collected is left `None`.
    fn apply(&self, delta: &Delta) {
        let mut members = self.members.write().unwrap();
        let Some(m) = members.as_mut() else { return };
        for (id, inst) in &delta.members {
            if delta.joining {
                m.entry(*id).or_insert_with(|| inst.clone());
            } else {
                m.remove(id);
            }
        }
    }
}

enum Group {
    /// A simple group: its id, its instance (`None` once revoked).
    Simple(u64, Option<Arc<Inst>>),
    Aggregate(AggregateCache),
}

impl Group {
    fn member(&self) -> Option<Member> {
        match self {
            Group::Simple(id, Some(i)) => Some((*id, i.clone())),
            _ => None,
        }
    }
}

#[derive(Default)]
struct State {
    groups: Vec<Group>,
    children: Vec<usize>,
    parent: Option<usize>,
}

/// The protocol, or one of two broken versions of it.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Correct,
    /// Changes do not take `STRUCTURE`.
    NoStructure,
    /// `revoke` applies its delta before it changes the tree.
    DeltaFirst,
}

const ROOT: usize = 0;
const MID: usize = 1;
const LEAF: usize = 2;
const LEAF2: usize = 3;
const SIDE: usize = 4;

struct Tree {
    structure: Mutex<()>,
    nodes: Vec<RwLock<State>>,
    variant: Variant,
}

impl Tree {
    /// root (aggregates) ─ mid ─ leaf (group 1, value 5); `leaf2` and `side` detached.
    fn new(variant: Variant) -> (Arc<Tree>, Arc<Inst>) {
        let t = Tree {
            structure: Mutex::new(()),
            nodes: (0..5).map(|_| RwLock::new(State::default())).collect(),
            variant,
        };
        t.add(ROOT, Group::Aggregate(AggregateCache::default()));
        t.add_subordinate(ROOT, MID);
        let i = inst(5);
        t.add(LEAF, Group::Simple(1, Some(i.clone())));
        t.add_subordinate(MID, LEAF);
        (Arc::new(t), i)
    }

    fn order(&self) -> Option<MutexGuard<'_, ()>> {
        (self.variant != Variant::NoStructure).then(|| self.structure.lock().unwrap())
    }

    fn add(&self, s: usize, g: Group) {
        let _order = self.order();
        let joining = g.member();
        self.nodes[s].write().unwrap().groups.push(g);
        if let Some(m) = joining {
            self.update_up(
                s,
                &Delta {
                    joining: true,
                    members: vec![m],
                },
            );
        }
    }

    fn add_subordinate(&self, p: usize, c: usize) {
        let _order = self.order();
        self.nodes[c].write().unwrap().parent = Some(p);
        self.nodes[p].write().unwrap().children.push(c);
        let members = self.subtree_members(c);
        self.update_up(
            p,
            &Delta {
                joining: true,
                members,
            },
        );
    }

    fn remove_subordinate(&self, p: usize, c: usize) {
        let _order = self.order();
        self.nodes[p].write().unwrap().children.retain(|&x| x != c);
        let members = self.subtree_members(c);
        self.update_up(
            p,
            &Delta {
                joining: false,
                members,
            },
        );
        self.nodes[c].write().unwrap().parent = None;
    }

    fn revoke(&self, s: usize) {
        let _order = self.order();
        if self.variant == Variant::DeltaFirst {
            let members = self.own_members(s);
            self.update_up(
                s,
                &Delta {
                    joining: false,
                    members,
                },
            );
        }
        let members = {
            let mut st = self.nodes[s].write().unwrap();
            let leaving = st.groups.iter().filter_map(Group::member).collect();
            for g in &mut st.groups {
                if let Group::Simple(_, i) = g {
                    *i = None;
                }
            }
            leaving
        };
        if self.variant != Variant::DeltaFirst {
            self.update_up(
                s,
                &Delta {
                    joining: false,
                    members,
                },
            );
        }
    }

    /// The simple groups of `s` alone (what `revoke` removes).
    fn own_members(&self, s: usize) -> Vec<Member> {
        let st = self.nodes[s].read().unwrap();
        st.groups.iter().filter_map(Group::member).collect()
    }

    /// One source's state read-locked at a time, from `s` up to the root.
    fn update_up(&self, s: usize, delta: &Delta) {
        if delta.members.is_empty() {
            return;
        }
        let mut cur = Some(s);
        while let Some(s) = cur {
            let st = self.nodes[s].read().unwrap();
            for g in &st.groups {
                if let Group::Aggregate(cache) = g {
                    cache.apply(delta);
                }
            }
            cur = st.parent;
        }
    }

    /// Top-down, each state read-locked while its subordinates are visited.
    fn subtree_members(&self, s: usize) -> Vec<Member> {
        let st = self.nodes[s].read().unwrap();
        let mut out: Vec<Member> = st.groups.iter().filter_map(Group::member).collect();
        for &c in &st.children {
            out.extend(self.subtree_members(c));
        }
        out
    }

    fn collect(&self, st: &State, into: &mut Members) {
        for (id, i) in st.groups.iter().filter_map(Group::member) {
            into.entry(id).or_insert(i);
        }
        for &c in &st.children {
            self.collect(&self.nodes[c].read().unwrap(), into);
        }
    }

    /// Folds `s`'s aggregate: under `s`'s state read lock, over the cache (read lock),
    /// or, if not collected, collecting it under the cache's write lock first.
    fn read_aggregate(&self, s: usize) -> u64 {
        let st = self.nodes[s].read().unwrap();
        let cache = aggregate(&st);
        {
            let members = cache.members.read().unwrap();
            if let Some(m) = members.as_ref() {
                return fold(m);
            }
        }
        let mut members = cache.members.write().unwrap();
        let m = members.get_or_insert_with(|| {
            let mut m = Members::new();
            self.collect(&st, &mut m);
            m
        });
        fold(m)
    }

    /// Claim 2 for `s`'s cache, then the final fold.
    fn check(&self, s: usize, expected: u64) {
        {
            let st = self.nodes[s].read().unwrap();
            let members = aggregate(&st).members.read().unwrap();
            if let Some(m) = members.as_ref() {
                let mut fresh = Members::new();
                self.collect(&st, &mut fresh);
                assert!(
                    m.keys().eq(fresh.keys()),
                    "claim 2: cache {:?} but a fresh collection gives {:?}",
                    m.keys().collect::<Vec<_>>(),
                    fresh.keys().collect::<Vec<_>>()
                );
            }
        }
        assert_eq!(self.read_aggregate(s), expected, "final fold");
    }
}

fn aggregate(st: &State) -> &AggregateCache {
    st.groups
        .iter()
        .find_map(|g| match g {
            Group::Aggregate(c) => Some(c),
            _ => None,
        })
        .expect("an aggregate group")
}

fn fold(m: &Members) -> u64 {
    m.values()
        .map(|i| {
            assert!(
                !i.freed.load(SeqCst),
                "claim 1: a fold read a freed instance"
            );
            i.value
        })
        .sum()
}

/// No bound: the models are small enough for loom to explore every interleaving.
const PREEMPTION_BOUND: Option<usize> = None;

/// Runs `f` under loom; prints how many interleavings it ran and how long it took (also
/// when one of them panicked, i.e. found a violation).
fn model(f: impl Fn() + Sync + Send + 'static) {
    struct Report(std::sync::Arc<AtomicUsize>, Instant);
    impl Drop for Report {
        fn drop(&mut self) {
            eprintln!(
                "{}: {} interleavings{} in {:.2?} (preemption bound {PREEMPTION_BOUND:?})",
                std::thread::current().name().unwrap_or("?"),
                self.0.load(Relaxed),
                if std::thread::panicking() {
                    ", the last one failed,"
                } else {
                    ""
                },
                self.1.elapsed()
            );
        }
    }
    let report = Report(Default::default(), Instant::now());
    let runs = report.0.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = PREEMPTION_BOUND;
    b.check(move || {
        runs.fetch_add(1, Relaxed);
        f()
    });
}

fn spawn_read(t: &Arc<Tree>, s: usize, allowed: &'static [u64]) -> thread::JoinHandle<()> {
    let t = t.clone();
    thread::spawn(move || {
        let v = t.read_aggregate(s);
        assert!(
            allowed.contains(&v),
            "read {v}, expected one of {allowed:?}"
        );
    })
}

/// (a) A reader folds the root's aggregate while the leaf is revoked.
fn reader_vs_revoke(variant: Variant, precollect: bool) {
    model(move || {
        let (t, i) = Tree::new(variant);
        if precollect {
            assert_eq!(t.read_aggregate(ROOT), 5);
        }
        let r = spawn_read(&t, ROOT, &[0, 5]);
        t.revoke(LEAF);
        i.freed.store(true, SeqCst);
        r.join().unwrap();
        t.check(ROOT, 0);
    });
}

#[test]
fn a_reader_vs_revoke_collected() {
    reader_vs_revoke(Variant::Correct, true);
}

#[test]
fn a_reader_vs_revoke_not_collected() {
    reader_vs_revoke(Variant::Correct, false);
}

/// (b) A reader folds the root's aggregate while `mid` is removed from it.
fn reader_vs_removal(precollect: bool) {
    model(move || {
        let (t, i) = Tree::new(Variant::Correct);
        if precollect {
            assert_eq!(t.read_aggregate(ROOT), 5);
        }
        let r = spawn_read(&t, ROOT, &[0, 5]);
        t.remove_subordinate(ROOT, MID);
        i.freed.store(true, SeqCst);
        r.join().unwrap();
        t.check(ROOT, 0);
    });
}

#[test]
fn b_reader_vs_removal_collected() {
    reader_vs_removal(true);
}

#[test]
fn b_reader_vs_removal_not_collected() {
    reader_vs_removal(false);
}

/// (c) A reader (collecting the root's cache, not yet collected) while a new leaf is
/// added under `mid` and, at the same time, that new leaf is revoked: the two changes
/// concern the same member, in either order.
fn reader_vs_add_and_revoke(variant: Variant) {
    model(move || {
        let (t, _) = Tree::new(variant);
        let i2 = inst(7);
        t.add(LEAF2, Group::Simple(2, Some(i2.clone())));
        let r = spawn_read(&t, ROOT, &[5, 12]);
        let adder = {
            let t = t.clone();
            thread::spawn(move || t.add_subordinate(MID, LEAF2))
        };
        t.revoke(LEAF2);
        i2.freed.store(true, SeqCst);
        r.join().unwrap();
        adder.join().unwrap();
        t.check(ROOT, 5);
    });
}

#[test]
fn c_reader_vs_add_and_revoke() {
    reader_vs_add_and_revoke(Variant::Correct);
}

/// (d) Two writers in different branches, caches collected at two levels: a new leaf
/// added under `mid` (which has aggregates too), `side` (under the root) revoked, while
/// a reader folds the root.
#[test]
fn d_two_writers_and_a_reader() {
    model(|| {
        let (t, _) = Tree::new(Variant::Correct);
        t.add(MID, Group::Aggregate(AggregateCache::default()));
        t.add(LEAF2, Group::Simple(2, Some(inst(7))));
        let i3 = inst(3);
        t.add(SIDE, Group::Simple(3, Some(i3.clone())));
        t.add_subordinate(ROOT, SIDE);
        assert_eq!(t.read_aggregate(ROOT), 8);
        assert_eq!(t.read_aggregate(MID), 5);
        let r = spawn_read(&t, ROOT, &[5, 8, 12, 15]);
        let adder = {
            let t = t.clone();
            thread::spawn(move || t.add_subordinate(MID, LEAF2))
        };
        t.revoke(SIDE);
        i3.freed.store(true, SeqCst);
        r.join().unwrap();
        adder.join().unwrap();
        t.check(ROOT, 12);
        t.check(MID, 12);
    });
}

/// Without `STRUCTURE`, the add computes its delta (the new leaf's group), the revoke of
/// that leaf runs whole (removing a member not yet there), then the add inserts it: the
/// cache keeps a revoked, freed member.
#[test]
#[should_panic(expected = "claim")]
fn bug_changes_without_structure_lock_are_caught() {
    reader_vs_add_and_revoke(Variant::NoStructure);
}

/// A delta applied before the tree changes: a reader collecting in between sees the
/// member still in the tree, and the cache keeps it after `revoke` returned.
#[test]
#[should_panic(expected = "claim")]
fn bug_delta_before_tree_change_is_caught() {
    reader_vs_revoke(Variant::DeltaFirst, false);
}
