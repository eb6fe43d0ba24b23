//! Membership and aggregates checked against a model after every step of random
//! sequences of adds, removals, retires, revokes, hides and reads (a property test): the
//! subordinates' order, names, counts and positions, the aggregate caches' members
//! (each equal to what collecting the subtree afresh gives), the folded values, exactly
//! who holds each instance (no keep-alive left behind by a removal or a revoke), and no
//! block source read after its revoke. Compaction of the subordinates' slots happens on
//! the way (`MIN_HOLES` is 2 in tests).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use proptest::prelude::*;

use super::aggregate::tests::{blk_schema, T};
use super::aggregate::Members;
use super::group::Binding;
use super::source::{collect, read_group, Sink};
use crate::{Error, Schema, Source, ValueGroup};

/// The pool: names repeat, so siblings may share one.
const NAMES: [&str; 8] = ["x", "y", "x", "z", "y", "w", "x", "v"];

/// The sources that hold aggregates (of `T`; the first also of the block schema).
const AGGREGATES: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Attach(usize, usize),
    Detach(usize),
    DetachFrom(usize, usize),
    Retire(usize),
    AddValues(usize, u64),
    AddBlock(usize, u64),
    Revoke(usize),
    Hide(usize, bool),
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0..NAMES.len();
    prop_oneof![
        4 => (i.clone(), i.clone()).prop_map(|(c, p)| Op::Attach(c, p)),
        2 => i.clone().prop_map(Op::Detach),
        1 => (i.clone(), i.clone()).prop_map(|(c, p)| Op::DetachFrom(c, p)),
        2 => i.clone().prop_map(Op::Retire),
        3 => (i.clone(), 1..100u64).prop_map(|(s, v)| Op::AddValues(s, v)),
        1 => (i.clone(), 1..100u64).prop_map(|(s, v)| Op::AddBlock(s, v)),
        1 => i.clone().prop_map(Op::Revoke),
        1 => (i.clone(), any::<bool>()).prop_map(|(s, h)| Op::Hide(s, h)),
        2 => i.prop_map(Op::Read),
    ]
}

/// What the tree should be.
#[derive(Default)]
struct Model {
    parent: [Option<usize>; NAMES.len()],
    children: [Vec<usize>; NAMES.len()],
    hidden: [bool; NAMES.len()],
    /// Per source, its live simple groups: (is a block, value).
    groups: [Vec<(bool, u64)>; NAMES.len()],
    /// Per source, what its retired subordinates left: (of `T`, of the block schema).
    retained: [(u64, u64); NAMES.len()],
    /// Sources that retired (never added again).
    retired: [bool; NAMES.len()],
}

impl Model {
    fn is_ancestor_or_self(&self, a: usize, mut of: usize) -> bool {
        loop {
            if a == of {
                return true;
            }
            match self.parent[of] {
                Some(p) => of = p,
                None => return false,
            }
        }
    }

    /// The sum of the subtree's live groups of one kind.
    fn sum(&self, s: usize, block: bool) -> u64 {
        let own: u64 = self.groups[s]
            .iter()
            .filter(|g| g.0 == block)
            .map(|g| g.1)
            .sum();
        let retained = if block {
            self.retained[s].1
        } else {
            self.retained[s].0
        };
        own + retained
            + self.children[s]
                .iter()
                .map(|&c| self.sum(c, block))
                .sum::<u64>()
    }
}

struct World {
    sources: Vec<Source>,
    model: Model,
    /// Every instance ever added, with whether the tree may still hold it.
    instances: Vec<(Arc<T>, usize)>,
    blk: Arc<Schema>,
    /// Every block source ever added: its source, how often it was read, and the count
    /// at its revoke (after which it must never be read again).
    blocks: Vec<(usize, Arc<AtomicU64>, Option<u64>)>,
}

/// The aggregate `name` of `src`, read from its aggregate group itself (a simple group
/// of the same schema in `src` would shadow it for `get`).
fn aggregate(src: &Source, name: &str) -> u64 {
    struct One(Vec<u64>);
    impl Sink for One {
        fn place(&mut self, _: usize) -> &mut [u64] {
            &mut self.0
        }
    }
    let st = src.read_state();
    for g in &st.groups {
        if let Binding::Aggregate(schema, _) = &g.binding {
            if let Some(i) = schema.descriptors().iter().position(|d| d.name == name) {
                let mut one = One(vec![0]);
                read_group(&st, g, [i].into_iter(), &mut Vec::new(), &mut one);
                return one.0[0];
            }
        }
    }
    panic!("{} has no aggregate {name}", src.name())
}

/// Whether `src`'s aggregate of `T` has collected its members.
fn collected(src: &Source) -> bool {
    let st = src.read_state();
    st.groups.iter().any(|g| match &g.binding {
        Binding::Aggregate(schema, cache) => {
            core::ptr::eq(&**schema, <T as crate::Stats>::SCHEMA) && cache.is_collected()
        }
        _ => false,
    })
}

impl World {
    fn new() -> Self {
        let sources: Vec<Source> = NAMES.iter().map(|n| Source::new(*n).unwrap()).collect();
        let blk = blk_schema();
        // Aggregates on the first three; one of them also folds the block schema.
        for s in &sources[..AGGREGATES] {
            s.add(ValueGroup::aggregates::<T>()).unwrap();
        }
        sources[0]
            .add(ValueGroup::aggregates_of(blk.clone()))
            .unwrap();
        World {
            sources,
            model: Model::default(),
            instances: Vec::new(),
            blk,
            blocks: Vec::new(),
        }
    }

    fn apply(&mut self, op: &Op) {
        let (s, m) = (&self.sources, &mut self.model);
        match *op {
            Op::Attach(c, p) => {
                let r = s[p].add_subordinate(&s[c]);
                if m.parent[c].is_some() {
                    assert!(matches!(r, Err(Error::AlreadyAttached { .. })), "{r:?}");
                } else if m.retired[c] {
                    assert!(matches!(r, Err(Error::Retired { .. })), "{r:?}");
                } else if m.is_ancestor_or_self(c, p) {
                    assert!(matches!(r, Err(Error::WouldCycle { .. })), "{r:?}");
                } else if m.children[p].iter().any(|&o| NAMES[o] == NAMES[c]) {
                    assert!(matches!(r, Err(Error::NameTaken { .. })), "{r:?}");
                } else {
                    r.unwrap();
                    m.parent[c] = Some(p);
                    m.children[p].push(c);
                }
            }
            Op::Detach(c) => {
                if let Some(p) = m.parent[c] {
                    s[p].remove_subordinate(&s[c]).unwrap();
                    m.parent[c] = None;
                    m.children[p].retain(|&x| x != c);
                }
            }
            Op::DetachFrom(c, p) => {
                let r = s[p].remove_subordinate(&s[c]);
                if m.parent[c] == Some(p) {
                    r.unwrap();
                    m.parent[c] = None;
                    m.children[p].retain(|&x| x != c);
                } else {
                    assert!(matches!(r, Err(Error::NotASubordinate { .. })), "{r:?}");
                }
            }
            Op::Retire(c) => {
                let Some(p) = m.parent[c] else {
                    let r = s[c].parent().map(|p| p.retire_subordinate(&s[c]));
                    assert!(r.is_none(), "a source without parent");
                    return;
                };
                // Its parent's aggregates (read below) do not move while it retires.
                let before: Vec<Option<u64>> = (0..AGGREGATES)
                    .map(|agg| {
                        m.is_ancestor_or_self(agg, p)
                            .then(|| aggregate(&s[agg], "a"))
                    })
                    .collect();
                s[p].retire_subordinate(&s[c]).unwrap();
                for (agg, b) in before.iter().enumerate() {
                    if let Some(b) = b {
                        assert_eq!(aggregate(&s[agg], "a"), *b, "a of {agg} across a retire");
                    }
                }
                let kept = (m.sum(c, false), m.sum(c, true));
                m.retained[p].0 += kept.0;
                m.retained[p].1 += kept.1;
                m.parent[c] = None;
                m.retired[c] = true;
                m.children[p].retain(|&x| x != c);
                assert!(matches!(
                    s[p].retire_subordinate(&s[c]),
                    Err(Error::NotASubordinate { .. })
                ));
            }
            Op::AddValues(at, v) => {
                let t = Arc::new(T::default());
                t.a.add(v);
                // Several instances of one struct in one source: the newest is shown.
                s[at].add(ValueGroup::of(t.clone()).shadowing()).unwrap();
                self.instances.push((t, at));
                m.groups[at].push((false, v));
            }
            Op::AddBlock(at, v) => {
                let calls = Arc::new(AtomicU64::new(0));
                let seen = calls.clone();
                let block = Arc::new(move |o: &mut [u64]| {
                    seen.fetch_add(1, Relaxed);
                    o[0] = v;
                    Ok(())
                });
                s[at]
                    .add(ValueGroup::block(self.blk.clone(), block).shadowing())
                    .unwrap();
                m.groups[at].push((true, v));
                self.blocks.push((at, calls, None));
            }
            Op::Revoke(at) => {
                s[at].revoke();
                m.groups[at].clear();
                // Nothing of the revoked source is held by the tree any more.
                for (t, _) in self.instances.iter().filter(|(_, w)| *w == at) {
                    assert_eq!(Arc::strong_count(t), 1, "a revoked instance is still held");
                }
                self.instances.retain(|(_, w)| *w != at);
                for (w, calls, frozen) in &mut self.blocks {
                    if *w == at && frozen.is_none() {
                        *frozen = Some(calls.load(Relaxed));
                    }
                }
            }
            Op::Hide(at, h) => {
                s[at].set_hidden(h);
                m.hidden[at] = h;
            }
            Op::Read(at) => {
                for (agg, src) in s.iter().enumerate().take(AGGREGATES) {
                    if at == agg || m.is_ancestor_or_self(agg, at) {
                        assert_eq!(aggregate(src, "a"), m.sum(agg, false), "a of {agg}");
                    }
                }
                assert_eq!(aggregate(&s[0], "w"), m.sum(0, true));
            }
        }
    }

    fn check(&self) {
        let (s, m) = (&self.sources, &self.model);
        // A revoked block is never read again.
        for (at, calls, frozen) in &self.blocks {
            if let Some(n) = frozen {
                assert_eq!(
                    calls.load(Relaxed),
                    *n,
                    "a block of {at} was read after its revoke"
                );
            }
        }
        // Exactly who holds each live instance: us, its group, and every collected
        // aggregate cache above it (or in its own source).
        for (t, at) in &self.instances {
            let caches = (0..AGGREGATES)
                .filter(|&agg| m.is_ancestor_or_self(agg, *at) && collected(&s[agg]))
                .count();
            assert_eq!(
                Arc::strong_count(t),
                2 + caches,
                "holders of an instance of {at}"
            );
        }
        let index = |x: &Source| s.iter().position(|y| y.ptr_eq(x)).unwrap();
        for (i, src) in s.iter().enumerate() {
            let subs: Vec<usize> = src.subordinates().iter().map(index).collect();
            assert_eq!(subs, m.children[i], "subordinates of {i}, in order");
            assert_eq!(src.subordinate_count(), m.children[i].len());
            let visible = m.children[i].iter().filter(|&&c| !m.hidden[c]).count();
            assert_eq!(src.visible_subordinate_count(), visible);
            let listed = src.inspect().subordinates_from(0, usize::MAX);
            assert!(listed.windows(2).all(|w| w[0].0 < w[1].0), "positions grow");
            assert_eq!(
                listed.iter().map(|(_, c)| index(c)).collect::<Vec<_>>(),
                subs
            );
            for name in NAMES {
                let first = m.children[i].iter().copied().find(|&c| NAMES[c] == name);
                assert_eq!(
                    src.subordinate(name).map(|c| index(&c)),
                    first,
                    "{name} in {i}"
                );
                let shown = m.children[i]
                    .iter()
                    .copied()
                    .find(|&c| NAMES[c] == name && !m.hidden[c]);
                let found = src.inspect().find_subordinate(name, |c| !c.is_hidden());
                assert_eq!(found.map(|c| index(&c)), shown);
            }
            assert_eq!(src.parent().map(|p| index(&p)), m.parent[i]);
            // Each collected cache holds exactly what collecting afresh would.
            let st = src.read_state();
            for g in &st.groups {
                if let Binding::Aggregate(schema, cache) = &g.binding {
                    let cached = cache.inspect(|c| c.map(Members::ids));
                    if let Some(cached) = cached {
                        let mut fresh = Members::default();
                        collect(&st, schema, &mut fresh);
                        assert_eq!(cached, fresh.ids(), "the cache of {i} follows the tree");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    #[cfg_attr(miri, ignore = "hundreds of random sequences: too slow under Miri")]
    fn membership_and_aggregates_follow_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for op in &ops {
            w.apply(op);
            w.check();
        }
        // A final read of every aggregate after the whole sequence, and the checks again
        // with every cache collected.
        for i in 0..NAMES.len() {
            w.apply(&Op::Read(i));
        }
        w.check();
    }
}
