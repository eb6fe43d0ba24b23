//! Read plans: the tree's public door for readers that read the same values again and
//! again (bulk files, mirrors, exporters, shared-memory writers).
//!
//! A [`ReadPlan`] is made once for a source or a subtree and a selection of values. It
//! fixes which values it reads, in which order, and where each one goes in the caller's
//! buffer of u64 words; [`ReadPlan::read`] then re-reads all of them with one pass under
//! one read lock per source, each value written straight into its place. Views never see
//! the tree's insides: what a plan knows about each value is public ([`PlannedValue`]).
//! The semantics (order, names, consistency) are in `docs/MODEL.md#reading`.

use std::ops::Range;

use super::source::{read_group, Sink, Source};
use crate::desc::Descriptor;
use crate::schema::Schema;

/// Which values a plan covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The source's own values.
    #[default]
    Source,
    /// The source and every descendant.
    Subtree,
}

/// How a plan is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlanOptions {
    /// The source alone, or its subtree.
    pub scope: Scope,
    /// Whether hidden sources (with their subtrees), hidden groups and hidden values are
    /// planned too; by default a plan holds what a directory listing shows.
    pub hidden: bool,
}

/// One value of a plan: what it is, where it comes from, where it goes.
#[derive(Clone, Debug)]
pub struct PlannedValue {
    /// Its name relative to the plan's root: `exits` for the root's own values,
    /// `vcpu0/exits` for a subordinate's.
    pub name: String,
    /// The descriptor.
    pub descriptor: Descriptor,
    /// Whether it is an aggregate (a revoked group reads as an empty aggregate).
    pub aggregate: bool,
    /// Which source of [`ReadPlan::sources`] holds it.
    pub source: usize,
    /// Its words in the buffer [`ReadPlan::read`] fills: `descriptor.size` words,
    /// packed one value after another in plan order.
    pub words: Range<usize>,
}

/// One planned source: the source, its path relative to the plan's root (empty for the
/// root), its depth (0 for the root) and its labels in effect.
#[derive(Clone, Debug)]
pub struct PlannedSource {
    /// The source.
    pub source: Source,
    /// `""` for the root, `vcpu0`, `vm0/vcpu0`, ...
    pub path: String,
    /// 0 for the root.
    pub depth: usize,
    /// Own labels first, then the ancestors', nearest first.
    pub labels: Vec<(String, String)>,
}

/// Where one value is read from and written to: group, descriptor, first word.
#[derive(Clone, Copy, Debug)]
struct Slot {
    group: u32,
    desc: u32,
    word: u32,
}

/// A fixed set of values of a source or subtree, re-read into the caller's buffer.
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{PlanOptions, ReadPlan, Scope, Source, ValueGroup};
/// # use statsfs_core::{Descriptor, Kind, Schema, ValueType};
/// # let schema = Schema::new_runtime("s", vec![Descriptor::new("exits", ValueType::U64, Kind::Cumulative)]).unwrap();
/// let vm = Source::new("vm")?;
/// vm.add(ValueGroup::aggregates_of(schema.clone()))?;
/// for i in 0..2 {
///     let vcpu = Source::new(format!("vcpu{i}"))?;
///     vcpu.add(ValueGroup::block(schema.clone(), Arc::new(move |o: &mut [u64]| { o[0] = 10 + i; Ok(()) })))?;
///     vm.add_subordinate(&vcpu)?;
/// }
/// let options = PlanOptions { scope: Scope::Subtree, ..Default::default() };
/// let plan = ReadPlan::new(&vm, options, |name| name.ends_with("exits"));
/// let names: Vec<&str> = plan.values().iter().map(|v| v.name.as_str()).collect();
/// assert_eq!(names, ["exits", "vcpu0/exits", "vcpu1/exits"]);
/// let mut words = vec![0; plan.words()];
/// plan.read(&mut words);
/// assert_eq!(words, [21, 10, 11]);
/// # Ok::<(), statsfs_core::Error>(())
/// ```
pub struct ReadPlan {
    sources: Vec<PlannedSource>,
    /// Per source of `sources`: its slots, sorted by group.
    slots: Vec<Vec<Slot>>,
    values: Vec<PlannedValue>,
    words: usize,
    /// The root, and its version when the plan was made.
    root: Source,
    version: u64,
}

impl ReadPlan {
    /// Plans the values of `root` (or its subtree) whose relative name `select` accepts,
    /// in the order a walk visits them: sources depth-first, subordinates in the order
    /// they were added; within a source groups in the order they were added, descriptors
    /// in schema order. Shadowed values and `none` values of aggregate groups are never
    /// planned (they are not offered). Nothing is read.
    pub fn new(root: &Source, options: PlanOptions, mut select: impl FnMut(&str) -> bool) -> Self {
        let version = root.inspect().version();
        let mut plan = ReadPlan {
            sources: Vec::new(),
            slots: Vec::new(),
            values: Vec::new(),
            words: 0,
            root: root.clone(),
            version,
        };
        if options.hidden || !root.is_hidden() {
            plan.add_source(root, String::new(), 0, root.labels(), options, &mut select);
        }
        plan
    }

    fn add_source(
        &mut self,
        source: &Source,
        path: String,
        depth: usize,
        labels: Vec<(String, String)>,
        options: PlanOptions,
        select: &mut impl FnMut(&str) -> bool,
    ) {
        let index = self.sources.len();
        let mut slots = Vec::new();
        let children = {
            let st = source.read_state();
            for (gi, g) in st.groups.iter().enumerate() {
                for (i, d) in g.schema().descriptors().iter().enumerate() {
                    if !g.offers(i) || (!options.hidden && (g.hidden || d.hidden)) {
                        continue;
                    }
                    let name = if path.is_empty() {
                        d.name.to_owned()
                    } else {
                        format!("{path}/{}", d.name)
                    };
                    if !select(&name) {
                        continue;
                    }
                    let words = self.words..self.words + d.size as usize;
                    slots.push(Slot {
                        group: gi as u32,
                        desc: i as u32,
                        word: self.words as u32,
                    });
                    self.words = words.end;
                    self.values.push(PlannedValue {
                        name,
                        descriptor: g.shown_descriptors()[i],
                        aggregate: g.is_aggregate(),
                        source: index,
                        words,
                    });
                }
            }
            if options.scope == Scope::Subtree {
                st.children.iter().cloned().collect()
            } else {
                Vec::new()
            }
        };
        self.sources.push(PlannedSource {
            source: source.clone(),
            path: path.clone(),
            depth,
            labels: labels.clone(),
        });
        self.slots.push(slots);
        for child in children {
            if child.is_hidden() && !options.hidden {
                continue;
            }
            let mut child_labels = child.own_labels();
            super::source::merge_labels(&mut child_labels, &labels);
            let child_path = if path.is_empty() {
                child.name().to_owned()
            } else {
                format!("{path}/{}", child.name())
            };
            self.add_source(&child, child_path, depth + 1, child_labels, options, select);
        }
    }

    /// The planned values, in plan order (empty after [`take_values`](Self::take_values)).
    pub fn values(&self) -> &[PlannedValue] {
        &self.values
    }

    /// Moves the descriptions of the planned values out (names, descriptors), leaving
    /// the plan what reading needs: it reads exactly as before. For a view that keeps its
    /// own description of the values (a bulk file's encoded layout), so that a plan of a
    /// large subtree does not hold every value's name twice.
    ///
    /// ```
    /// # use statsfs_core::{Descriptor, Kind, PlanOptions, ReadPlan, Schema, Source, ValueGroup, ValueType};
    /// # use std::sync::Arc;
    /// # let schema = Schema::new_runtime("s", vec![Descriptor::new("exits", ValueType::U64, Kind::Cumulative)]).unwrap();
    /// let vm = Source::new("vm")?;
    /// vm.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = 7; Ok(()) })))?;
    /// let mut plan = ReadPlan::new(&vm, PlanOptions::default(), |_| true);
    /// let values = plan.take_values();
    /// assert_eq!(values[0].name, "exits");
    /// assert!(plan.values().is_empty());
    /// let mut words = vec![0; plan.words()];
    /// plan.read(&mut words);
    /// assert_eq!(words, [7]);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn take_values(&mut self) -> Vec<PlannedValue> {
        std::mem::take(&mut self.values)
    }

    /// The planned sources, in walk order (the root first); sources with no planned
    /// value are listed too.
    pub fn sources(&self) -> &[PlannedSource] {
        &self.sources
    }

    /// How many words [`read`](Self::read) fills.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Whether no source of the plan's subtree was added, removed, hidden, relabelled or
    /// changed its set of values since the plan was made; if not, a new plan may differ.
    pub fn is_current(&self) -> bool {
        self.root.inspect().version() == self.version
    }

    /// Reads every planned value into its words of `out`: per source one pass under one
    /// read lock, each value written straight into its place. A removed source keeps
    /// reporting its values (the plan holds it); a revoked group reads as an empty
    /// aggregate.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than [`words`](Self::words).
    pub fn read(&self, out: &mut [u64]) {
        assert!(
            out.len() >= self.words,
            "ReadPlan::read: the buffer has {} words, the plan needs {}",
            out.len(),
            self.words
        );
        let mut block = Vec::new();
        for (source, slots) in self.sources.iter().zip(&self.slots) {
            if slots.is_empty() {
                continue;
            }
            let st = source.source.read_state();
            let mut k = 0;
            while k < slots.len() {
                let gi = slots[k].group;
                let end = k + slots[k..].iter().take_while(|s| s.group == gi).count();
                let run = &slots[k..end];
                k = end;
                // Groups are only ever appended, so a planned group is still there.
                let g = &st.groups[gi as usize];
                let mut sink = SlotSink {
                    schema: g.schema(),
                    run,
                    at: 0,
                    out,
                };
                read_group(
                    &st,
                    g,
                    run.iter().map(|s| s.desc as usize),
                    &mut block,
                    &mut sink,
                );
            }
        }
    }
}

/// Puts the values of one run of slots (one group) into their words.
struct SlotSink<'a> {
    schema: &'a Schema,
    run: &'a [Slot],
    /// The slot of the next value `read_group` delivers (it delivers them in order).
    at: usize,
    out: &'a mut [u64],
}

impl Sink for SlotSink<'_> {
    fn place(&mut self, i: usize) -> &mut [u64] {
        let s = self.run[self.at];
        debug_assert_eq!(s.desc as usize, i);
        let size = self.schema.descriptors()[i].size as usize;
        &mut self.out[s.word as usize..s.word as usize + size]
    }

    fn done(&mut self, _: usize, _: bool) {
        self.at += 1;
    }
}

#[cfg(test)]
mod tests {
    //! Plans over every binding (instance, block, aggregate, revoked) and through
    //! removal; run under Miri in CI with the rest of the tree's unsafe reads.

    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    use super::{PlanOptions, ReadPlan, Scope};
    use crate::cell::Counter;
    use crate::desc::{Descriptor, Kind, ValueType};
    use crate::schema::{Schema, SchemaBuilder};
    use crate::{Source, Stats, ValueGroup};

    #[derive(Default)]
    struct T {
        a: Counter,
        b: Counter,
    }

    static T_SCHEMA: Schema = Schema::new_static("t", "plan::T", <T as Stats>::DESCRIPTORS);

    // SAFETY: each descriptor is built from the field at its offset, as the derive does.
    unsafe impl Stats for T {
        const DESCRIPTORS: &'static [Descriptor] = &SchemaBuilder::<2>::new()
            .push(crate::__private::field(
                "a",
                core::mem::offset_of!(T, a),
                <Counter as crate::cell::StatField>::INFO,
            ))
            .push(crate::__private::field(
                "b",
                core::mem::offset_of!(T, b),
                <Counter as crate::cell::StatField>::INFO,
            ))
            .build();
        const SCHEMA: &'static Schema = &T_SCHEMA;
    }

    fn subtree() -> PlanOptions {
        PlanOptions {
            scope: Scope::Subtree,
            hidden: false,
        }
    }

    #[test]
    fn a_plan_reads_every_binding_into_its_words() {
        let root = Source::new("root").unwrap();
        root.add(ValueGroup::aggregates::<T>()).unwrap();
        let t = Arc::new(T::default());
        t.a.add(3);
        t.b.add(4);
        let leaf = Source::new("leaf").unwrap();
        leaf.add(t.clone()).unwrap();
        root.add_subordinate(&leaf).unwrap();
        let rt = Schema::new_runtime(
            "blk",
            vec![Descriptor::new("w", ValueType::U64, Kind::Cumulative)],
        )
        .unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let f = fail.clone();
        let blk = Source::new("blk").unwrap();
        blk.add(ValueGroup::block(
            rt,
            Arc::new(move |o: &mut [u64]| {
                if f.load(SeqCst) {
                    return Err(std::io::Error::other("gone"));
                }
                o[0] = 9;
                Ok(())
            }),
        ))
        .unwrap();
        root.add_subordinate(&blk).unwrap();

        let plan = ReadPlan::new(&root, subtree(), |_| true);
        let names: Vec<&str> = plan.values().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "leaf/a", "leaf/b", "blk/w"]);
        assert!(plan.values()[0].aggregate && !plan.values()[2].aggregate);
        assert_eq!(plan.sources().len(), 3);
        assert_eq!(plan.sources()[1].path, "leaf");
        let mut words = vec![0; plan.words()];
        plan.read(&mut words);
        assert_eq!(words, [3, 4, 3, 4, 9]);

        // Live values, a failed block (empty), then a revoked group (an empty aggregate).
        t.a.inc();
        fail.store(true, SeqCst);
        plan.read(&mut words);
        assert_eq!(words, [4, 4, 4, 4, 0]);
        leaf.revoke();
        assert!(!plan.is_current());
        plan.read(&mut words);
        assert_eq!(words, [0, 0, 0, 0, 0]);
        assert_eq!(
            Arc::strong_count(&t),
            1,
            "nothing but us holds the instance"
        );
    }

    #[test]
    fn a_removed_source_keeps_reporting_and_a_selection_selects() {
        let root = Source::new("root").unwrap();
        let t = Arc::new(T::default());
        t.b.add(2);
        let leaf = Source::new("leaf").unwrap();
        leaf.add(t.clone()).unwrap();
        root.add_subordinate(&leaf).unwrap();
        let plan = ReadPlan::new(&root, subtree(), |n| n.ends_with("/b"));
        assert_eq!(plan.values().len(), 1);
        assert_eq!(plan.values()[0].words, 0..1);
        root.remove_subordinate(&leaf).unwrap();
        let mut words = [0];
        plan.read(&mut words);
        assert_eq!(words, [2]);
        // Scope::Source plans the root alone.
        let own = ReadPlan::new(&root, PlanOptions::default(), |_| true);
        assert_eq!(own.words(), 0);
        assert_eq!(own.sources().len(), 1);
        // A hidden root plans nothing, and still tells when the tree changed.
        root.set_hidden(true);
        let hidden = ReadPlan::new(&root, PlanOptions::default(), |_| true);
        assert!(hidden.sources().is_empty() && hidden.is_current());
        root.add_subordinate(&leaf).unwrap();
        assert!(!hidden.is_current());
    }
}
