//! Value groups: a schema bound to an instance (simple values), to a runtime block
//! source (simple values), or to nothing (aggregates over the subtree).

use std::sync::Arc;

use super::aggregate::{AggregateCache, Member, Reads};
use super::block::BlockSource;
use super::raw::Instance;
use crate::desc::Aggregation;
use crate::schema::{Schema, SchemaRef};
use crate::Stats;

/// What a group reads, with its schema.
pub(super) enum Binding {
    /// A live struct: simple values. The instance carries its schema.
    Instance(Instance),
    /// A runtime block: simple values.
    Block(Arc<Schema>, Arc<dyn BlockSource>),
    /// Nothing: each value folds over the subtree, through a cache of the subtree's
    /// matching members.
    Aggregate(SchemaRef, Box<AggregateCache>),
    /// Detached by [`Source::revoke`](crate::Source::revoke): reads as an empty aggregate
    /// and is skipped by every aggregate above it.
    Revoked(SchemaRef),
}

impl Binding {
    /// The schema.
    pub(super) fn schema(&self) -> &Schema {
        match self {
            Binding::Instance(i) => i.schema(),
            Binding::Block(s, _) => s,
            Binding::Aggregate(s, _) | Binding::Revoked(s) => s,
        }
    }

    /// The schema as a shareable reference.
    fn schema_ref(&self) -> SchemaRef {
        match self {
            Binding::Instance(i) => SchemaRef::Static(i.schema()),
            Binding::Block(s, _) => SchemaRef::Shared(s.clone()),
            Binding::Aggregate(s, _) | Binding::Revoked(s) => s.clone(),
        }
    }

    /// Whether the group holds simple values (an instance or a block).
    pub(super) fn is_simple(&self) -> bool {
        matches!(self, Binding::Instance(_) | Binding::Block(..))
    }

    /// Revokes a simple binding: it keeps its schema and drops what it read.
    pub(super) fn revoke(&mut self) {
        if self.is_simple() {
            *self = Binding::Revoked(self.schema_ref());
        }
    }

    fn same_target(&self, other: &Binding) -> bool {
        match (self, other) {
            (Binding::Instance(a), Binding::Instance(b)) => a.addr() == b.addr(),
            (Binding::Block(_, a), Binding::Block(_, b)) => {
                Arc::as_ptr(a).cast::<()>() == Arc::as_ptr(b).cast::<()>()
            }
            (Binding::Aggregate(..), Binding::Aggregate(..)) => true,
            _ => false,
        }
    }
}

/// Whether two schemas are the same one (identity, never equality: two schemas with the
/// same name and descriptors stay distinct). See `docs/MODEL.md#schema-identity`.
pub(super) fn same_schema(a: &Schema, b: &Schema) -> bool {
    core::ptr::eq(a, b)
}

/// The member id of component `k` of group `id`: group ids come from a counter that never
/// nears 2^48, so the high bits tell the parts of one group apart.
fn component_id(id: u64, k: usize) -> u64 {
    id | ((k as u64 + 1) << 48)
}

/// A schema and what it reads, ready to be added to a [`Source`](crate::Source).
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{Source, ValueGroup};
/// # use statsfs_core::{Descriptor, Kind, Schema, ValueType};
/// # let schema = Schema::new_runtime("s", vec![Descriptor::new("x", ValueType::U64, Kind::Cumulative)]).unwrap();
/// let vm = Source::new("vm").unwrap();
/// // A hidden group: no files, still aggregated by the ancestors.
/// vm.add(ValueGroup::block(schema.clone(), Arc::new(|o: &mut [u64]| { o[0] = 1; Ok(()) })).hidden()).unwrap();
/// // Aggregates of the same schema over vm and its subordinates.
/// vm.add(ValueGroup::aggregates_of(schema)).unwrap();
/// assert_eq!(vm.get("x").unwrap().as_u64(), 1);
/// ```
pub struct ValueGroup {
    pub(super) binding: Binding,
    pub(super) hidden: bool,
    pub(super) shadowing: bool,
}

impl ValueGroup {
    /// Simple values: `T`'s schema bound to a shared instance.
    pub fn of<T: Stats>(instance: Arc<T>) -> Self {
        Self::with(Binding::Instance(Instance::new(instance)))
    }

    /// Simple values: `P::Stats`'s schema bound to the struct that `handle` places
    /// (in a shared-memory region, say), kept alive by the handle.
    pub fn placed<P: super::raw::Placed>(handle: Arc<P>) -> Self {
        Self::with(Binding::Instance(Instance::placed(handle)))
    }

    /// Simple values: `T`'s schema bound to a static instance.
    pub fn of_static<T: Stats>(instance: &'static T) -> Self {
        Self::with(Binding::Instance(Instance::from_static(instance)))
    }

    /// Aggregates of `T`'s schema over the source and all its subordinates.
    pub fn aggregates<T: Stats>() -> Self {
        Self::aggregates_of(T::SCHEMA)
    }

    /// Aggregates of any schema, derived or runtime.
    pub fn aggregates_of(schema: impl Into<SchemaRef>) -> Self {
        let schema = schema.into();
        let cache = Box::new(AggregateCache::for_schema(&schema));
        Self::with(Binding::Aggregate(schema, cache))
    }

    /// Simple values of a runtime schema, read from `source` at read time. The `Arc` is
    /// the group's identity (see [`BlockSource`]).
    pub fn block<S: BlockSource + 'static>(schema: Arc<Schema>, source: Arc<S>) -> Self {
        Self::with(Binding::Block(schema, source))
    }

    fn with(binding: Binding) -> Self {
        ValueGroup {
            binding,
            hidden: false,
            shadowing: false,
        }
    }

    /// This group without files: still readable by name and still aggregated.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// This group, allowed to shadow values of other schemas in the source it is added
    /// to: a name it offers that an older group offers too is then the newer group's
    /// (`docs/MODEL.md#lookup`). Without it, [`Source::add`](crate::Source::add)
    /// refuses such a group ([`Error::Shadows`](crate::Error::Shadows)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use statsfs_core::{Descriptor, Error, Kind, Schema, Source, ValueGroup, ValueType};
    /// let one = |n| Schema::new_runtime(n, vec![Descriptor::new("pages", ValueType::U64, Kind::Instant)]).unwrap();
    /// let s = Source::new("vm")?;
    /// s.add(ValueGroup::block(one("old"), Arc::new(|o: &mut [u64]| { o[0] = 1; Ok(()) })))?;
    /// let newer = || ValueGroup::block(one("new"), Arc::new(|o: &mut [u64]| { o[0] = 2; Ok(()) }));
    /// assert!(matches!(s.add(newer()), Err(Error::Shadows { .. })));
    /// s.add(newer().shadowing())?;
    /// assert_eq!(s.get("pages")?.as_u64(), 2);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn shadowing(mut self) -> Self {
        self.shadowing = true;
        self
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        self.binding.schema()
    }

    /// The group as added to a source, with its id (unique in the process).
    pub(super) fn into_group(self, id: u64) -> Group {
        // A simple group does not offer a second aggregation of its values (it is the
        // aggregates'): marked here once, so that `offers` reads no descriptor.
        let ds = self.binding.schema().descriptors();
        let shadowed = if self.binding.is_simple()
            && ds
                .iter()
                .any(|d| d.role == crate::desc::Role::AggregateOnly)
        {
            ds.iter()
                .map(|d| d.role == crate::desc::Role::AggregateOnly)
                .collect()
        } else {
            Box::default()
        };
        Group {
            id,
            binding: self.binding,
            hidden: self.hidden,
            shadowed,
        }
    }
}

/// `source.add(Arc::new(stats))`: simple values bound to a shared instance
/// ([`ValueGroup::of`]).
impl<T: Stats> From<Arc<T>> for ValueGroup {
    fn from(instance: Arc<T>) -> Self {
        ValueGroup::of(instance)
    }
}

/// `source.add(&STATIC)`: simple values bound to a static instance
/// ([`ValueGroup::of_static`]).
impl<T: Stats> From<&'static T> for ValueGroup {
    fn from(instance: &'static T) -> Self {
        ValueGroup::of_static(instance)
    }
}

/// A group inside a source.
pub(super) struct Group {
    /// Names the group in the members of the aggregates above it.
    pub(super) id: u64,
    pub(super) binding: Binding,
    pub(super) hidden: bool,
    /// Per descriptor: a group added later has a value of the same name, which wins.
    /// Empty (no allocation) until some value is shadowed: most groups never are. A
    /// simple group's second aggregations (`Role::AggregateOnly`) are marked from the
    /// start.
    pub(super) shadowed: Box<[bool]>,
}

impl Group {
    /// The schema.
    pub(super) fn schema(&self) -> &Schema {
        self.binding.schema()
    }

    /// The descriptors as this group's values are shown: the schema's, or for an
    /// aggregate group what each folds to ([`Descriptor::folded`](crate::Descriptor::folded):
    /// a count of booleans is a count). A revoked group reads as empty aggregates of its
    /// values, described as they were.
    #[inline]
    pub(super) fn shown_descriptors(&self) -> &[crate::Descriptor] {
        match &self.binding {
            Binding::Aggregate(s, cache) => cache.shown().unwrap_or(s.descriptors()),
            b => b.schema().descriptors(),
        }
    }

    /// Whether `other` would be this group again: the same schema bound to the same
    /// instance or block source, or the same schema's aggregates.
    pub(super) fn duplicates(&self, other: &ValueGroup) -> bool {
        same_schema(self.schema(), other.schema()) && self.binding.same_target(&other.binding)
    }

    /// The group as members of the aggregates above it: none unless it holds simple
    /// values; else one of its own schema, and one of each component's schema (the
    /// structs flattened into its own, `docs/MODEL.md#components`), each with an id of
    /// its own.
    pub(super) fn members(&self) -> impl Iterator<Item = Member> + '_ {
        let own = match &self.binding {
            Binding::Instance(i) => Some(Reads::Instance(i.clone())),
            Binding::Block(s, src) => Some(Reads::Block(s.clone(), src.clone())),
            Binding::Aggregate(..) | Binding::Revoked(_) => None,
        };
        let parts = match &self.binding {
            Binding::Instance(i) => i.schema().components().len(),
            _ => 0,
        };
        let id = self.id;
        own.map(|reads| Member { id, reads })
            .into_iter()
            .chain((0..parts).filter_map(move |k| match &self.binding {
                Binding::Instance(i) => Some(Member {
                    id: component_id(id, k),
                    reads: Reads::Instance(i.component(k)?),
                }),
                _ => None,
            }))
    }

    /// Whether this is an aggregate group (or a revoked one, which reads as an empty
    /// aggregate).
    pub(super) fn is_aggregate(&self) -> bool {
        !self.binding.is_simple()
    }

    /// Whether this group shows descriptor `i` at all: not shadowed, and not a plain
    /// (`none`) value in an aggregate group.
    #[inline]
    pub(super) fn offers(&self, i: usize) -> bool {
        // An aggregate has no `none` value; a simple group's second aggregations are
        // marked shadowed when it is made (`into_group`).
        let plain_in_aggregate = matches!(self.binding, Binding::Aggregate(..))
            && self.schema().descriptors()[i].aggregation == Aggregation::None;
        !self.shadowed.get(i).copied().unwrap_or(false) && !plain_in_aggregate
    }
}

/// What one group of a source holds, for views that publish the tree elsewhere (a
/// shared-memory region): its schema, what kind of group it is, and which of its values
/// the source shows ([`Inspect::for_each_group`](crate::tree::Inspect::for_each_group)).
pub struct GroupInfo<'a>(pub(super) &'a Group);

/// The kind of a group ([`GroupInfo::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupKind {
    /// Simple values in a stats struct at this address (on the heap, static, or placed).
    Values {
        /// The struct's address in this process.
        address: usize,
    },
    /// Simple values filled by a block source (a runtime schema).
    Block,
    /// Aggregates of the schema over the source and its subtree.
    Aggregates,
    /// Revoked: reads as an empty aggregate.
    Revoked,
}

impl GroupInfo<'_> {
    /// The group's schema.
    pub fn schema(&self) -> &Schema {
        self.0.schema()
    }

    /// What kind of group it is.
    pub fn kind(&self) -> GroupKind {
        match &self.0.binding {
            Binding::Instance(i) => GroupKind::Values { address: i.addr() },
            Binding::Block(..) => GroupKind::Block,
            Binding::Aggregate(..) => GroupKind::Aggregates,
            Binding::Revoked(_) => GroupKind::Revoked,
        }
    }

    /// Whether the group is hidden (its values still count in aggregates).
    pub fn hidden(&self) -> bool {
        self.0.hidden
    }

    /// Whether the source shows descriptor `i` of the schema from this group: not when a
    /// later group has a value of the same name, nor a plain (`aggregation = none`) value
    /// in an aggregate group.
    pub fn offers(&self, i: usize) -> bool {
        i < self.0.schema().descriptors().len() && self.0.offers(i)
    }
}
