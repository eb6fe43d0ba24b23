//! The inspection door: the structure of a source for views that show structure, not
//! values. Values are read through the read doors ([`ReadPlan`](super::ReadPlan) and
//! [`walk`](super::walk())); a view that lists directories while the tree changes, finds
//! the child a name shows, publishes groups elsewhere or caches what it showed needs more,
//! and asks it here, in one place:
//!
//! * listings that survive churn: [`subordinates_from`](Inspect::subordinates_from) (by
//!   position) and [`for_each_descriptor_at`](Inspect::for_each_descriptor_at) (by value
//!   ordinal);
//! * lookups of the child a name shows: [`find_subordinate`](Inspect::find_subordinate);
//! * the groups themselves: [`for_each_group`](Inspect::for_each_group);
//! * whether anything changed: [`version`](Inspect::version).

use super::group::GroupInfo;
use super::source::Source;
use crate::desc::Descriptor;
use crate::schema::Schema;

/// The structure of one source ([`Source::inspect`]); see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct Inspect<'a>(&'a Source);

impl Source {
    /// The inspection door ([`Inspect`]): this source's structure, for views that show
    /// structure (listings that survive churn, groups, versions) rather than values.
    pub fn inspect(&self) -> Inspect<'_> {
        Inspect(self)
    }
}

impl Inspect<'_> {
    /// The subordinate named `name` (sibling names are unique), if `keep` is true for it:
    /// O(1). `keep` runs under this source's read lock: it may read the subordinate (as
    /// [`is_hidden`](Source::is_hidden) does) but must not change the tree nor read this
    /// source again (a writer waiting meanwhile would deadlock it).
    ///
    /// ```
    /// # use statsfs_core::Source;
    /// let parent = Source::new("svc")?;
    /// let (a, b) = (Source::new("c1")?, Source::new("c2")?);
    /// a.set_hidden(true);
    /// parent.add_subordinate(&a)?;
    /// parent.add_subordinate(&b)?;
    /// let visible = |c: &Source| !c.is_hidden();
    /// assert!(parent.inspect().find_subordinate("c1", visible).is_none());
    /// assert!(parent.inspect().find_subordinate("c2", visible).unwrap().ptr_eq(&b));
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn find_subordinate(
        &self,
        name: &str,
        keep: impl FnMut(&Source) -> bool,
    ) -> Option<Source> {
        self.0.find_child(name, keep)
    }

    /// Up to `max` subordinates at `position` or later, with their positions, in the
    /// order they were added. A subordinate's position is given when it is added and
    /// never changes, and later ones get higher positions: a listing taken in pieces
    /// (the next piece starts at the last position + 1) sees every subordinate that
    /// stayed throughout exactly once, whatever was added or removed meanwhile.
    ///
    /// ```
    /// # use statsfs_core::Source;
    /// let parent = Source::new("svc")?;
    /// let kids: Vec<Source> = (0..5).map(|i| Source::new(format!("c{i}")).unwrap()).collect();
    /// for k in &kids { parent.add_subordinate(k)?; }
    /// let first = parent.inspect().subordinates_from(0, 2);
    /// parent.remove_subordinate(&kids[2])?;
    /// let next = parent.inspect().subordinates_from(first[1].0 + 1, 10);
    /// let names: Vec<&str> = first.iter().chain(&next).map(|(_, s)| s.name()).collect();
    /// assert_eq!(names, ["c0", "c1", "c3", "c4"]);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn subordinates_from(&self, position: u64, max: usize) -> Vec<(u64, Source)> {
        self.0
            .read_state()
            .children
            .starting_at(position)
            .take(max)
            .map(|(p, c)| (p, c.clone()))
            .collect()
    }

    /// Calls `f` with each of the source's own groups, oldest first: its schema, kind
    /// (simple values and their struct's address, block, aggregates, revoked), whether
    /// it is hidden and which values it shows. For views that publish the tree elsewhere
    /// (the `statsfs-region` crate). `f` runs under the source's read lock: it must not change
    /// the tree.
    pub fn for_each_group(&self, mut f: impl FnMut(GroupInfo<'_>)) {
        let st = self.0.read_state();
        for g in &st.groups {
            f(GroupInfo(g));
        }
    }

    /// As [`for_each_descriptor`](Source::for_each_descriptor), with each value's
    /// *ordinal*: its index among every descriptor of every group of this source, in the
    /// order the groups were added (shadowed values and the `none` values of aggregate
    /// groups counted too, though not offered). Groups are only ever added, so a value's
    /// ordinal never changes while the source lives, and ordinals grow along the order
    /// values come in: a listing resumed after an ordinal lists every value that stayed
    /// exactly once.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
    /// let one = |n: &'static str| Schema::new_runtime("s", vec![Descriptor::new(n, ValueType::U64, Kind::Cumulative)]).unwrap();
    /// let block = |v: u64| Arc::new(move |o: &mut [u64]| { o[0] = v; Ok(()) });
    /// let s = Source::new("s")?;
    /// s.add(ValueGroup::block(one("a"), block(1)))?;
    /// s.add(ValueGroup::block(one("b"), block(2)))?;
    /// s.add(ValueGroup::block(one("a"), block(3)).shadowing())?; // shadows the first `a`
    /// let mut seen = Vec::new();
    /// s.inspect().for_each_descriptor_at(|at, d, _, _, _| seen.push((at, d.name)));
    /// assert_eq!(seen, [(1, "b"), (2, "a")]);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn for_each_descriptor_at(&self, f: impl FnMut(u64, &Descriptor, &Schema, bool, bool)) {
        self.0.descriptors_at(f)
    }

    /// A number that changes whenever this source or any source below it gains or loses
    /// a subordinate or a group, is revoked, hidden or relabelled.
    pub fn version(&self) -> u64 {
        self.0.version_now()
    }
}
