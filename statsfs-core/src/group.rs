//! Value groups: one schema bound to an instance (simple values), to a runtime block
//! source, or to nothing (aggregates).

use std::io;
use std::sync::Arc;

use crate::aggregate::AggregateCache;
use crate::desc::Descriptor;
use crate::raw::RawInstance;
use crate::schema::{Schema, SchemaRef};
use crate::Stats;

/// Where the values of a runtime schema come from: something that fills a block of u64
/// words laid out as the schema's descriptors say (for instance a `pread` of a kernel
/// stats file's data block).
///
/// Closures `Fn(&mut [u64]) -> io::Result<()>` are block sources.
///
/// ```
/// use std::sync::Arc;
/// use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// let schema = Schema::new_runtime("mirror", vec![
///     Descriptor::new("exits", ValueType::U64, Kind::Cumulative).with_clearable(false),
/// ]).unwrap();
/// let vcpu = Source::new("vcpu0").unwrap();
/// vcpu.add(ValueGroup::block(schema, |out: &mut [u64]| { out[0] = 42; Ok(()) })).unwrap();
/// assert_eq!(vcpu.get("exits").unwrap().as_u64(), 42);
/// ```
pub trait BlockSource: Send + Sync {
    /// Fills `out` (exactly [`Schema::block_words`] long) with the current values. An
    /// error leaves the group out of this read, as if it had no values.
    fn read_block(&self, out: &mut [u64]) -> io::Result<()>;
}

impl<F> BlockSource for F
where
    F: Fn(&mut [u64]) -> io::Result<()> + Send + Sync,
{
    fn read_block(&self, out: &mut [u64]) -> io::Result<()> {
        self(out)
    }
}

/// What a group reads.
pub(crate) enum Binding {
    /// A live struct: simple values.
    Instance(RawInstance),
    /// A runtime block: simple values.
    Block(Arc<dyn BlockSource>),
    /// Nothing: each value folds over the subtree, through a cache of the subtree's
    /// matching instances.
    Aggregate(Box<AggregateCache>),
    /// Detached by [`Source::revoke`](crate::Source::revoke): reads as an empty aggregate
    /// and is skipped by every aggregate above it.
    Revoked,
}

impl Binding {
    pub(crate) fn is_simple(&self) -> bool {
        matches!(self, Binding::Instance(_) | Binding::Block(_))
    }

    /// Fills `block` for a [`Binding::Block`]; `false` when the group has no values to
    /// offer this time (not simple, or its source failed).
    pub(crate) fn prepare(&self, schema: &Schema, block: &mut Vec<u64>) -> bool {
        match self {
            Binding::Instance(_) => true,
            Binding::Block(src) => {
                block.clear();
                block.resize(schema.block_words(), 0);
                src.read_block(block).is_ok()
            }
            Binding::Aggregate(_) | Binding::Revoked => false,
        }
    }

    /// Reads one value of a simple group into `out[..d.size]`, after
    /// [`prepare`](Self::prepare) returned `true`.
    #[inline]
    pub(crate) fn load(&self, d: &Descriptor, block: &[u64], out: &mut [u64]) {
        match self {
            // SAFETY: `d` comes from this group's schema, the one the instance was bound
            // with (`ValueGroup::of` pairs `T` with `T::SCHEMA`), and a derived schema has
            // no block descriptors.
            Binding::Instance(inst) => unsafe { inst.read(d, out) },
            Binding::Block(_) => {
                let start = d.offset / 8;
                let words = block.get(start..start + d.size as usize);
                for (i, o) in out.iter_mut().enumerate() {
                    *o = words.and_then(|w| w.get(i)).copied().unwrap_or(0);
                }
            }
            Binding::Aggregate(_) | Binding::Revoked => out.fill(0),
        }
    }

    /// Sets one value to 0; `false` when this group cannot be written.
    pub(crate) fn clear(&self, d: &Descriptor) -> bool {
        match self {
            Binding::Instance(inst) => {
                // SAFETY: as in `load`.
                unsafe { inst.clear(d) };
                true
            }
            _ => false,
        }
    }

    fn same_target(&self, other: &Binding) -> bool {
        match (self, other) {
            (Binding::Instance(a), Binding::Instance(b)) => a.addr() == b.addr(),
            (Binding::Block(a), Binding::Block(b)) => Arc::ptr_eq(a, b),
            (Binding::Aggregate(_), Binding::Aggregate(_)) => true,
            _ => false,
        }
    }
}

/// A schema and what it reads, ready to be added to a [`Source`](crate::Source).
///
/// ```
/// use statsfs_core::{Source, ValueGroup};
/// # use statsfs_core::{Descriptor, Kind, Schema, ValueType};
/// # let schema = Schema::new_runtime("s", vec![Descriptor::new("x", ValueType::U64, Kind::Cumulative)]).unwrap();
/// let vm = Source::new("vm").unwrap();
/// // A hidden group: no files, still aggregated by the ancestors.
/// vm.add(ValueGroup::block(schema.clone(), |o: &mut [u64]| { o[0] = 1; Ok(()) }).hidden()).unwrap();
/// // Aggregates of the same schema over vm and its subordinates.
/// vm.add(ValueGroup::aggregates_of(schema)).unwrap();
/// assert_eq!(vm.get("x").unwrap().as_u64(), 1);
/// ```
pub struct ValueGroup {
    pub(crate) schema: SchemaRef,
    pub(crate) binding: Binding,
    pub(crate) hidden: bool,
}

impl ValueGroup {
    /// Simple values: `T`'s schema bound to a shared instance.
    pub fn of<T: Stats>(instance: Arc<T>) -> Self {
        ValueGroup {
            schema: SchemaRef::Static(T::SCHEMA),
            binding: Binding::Instance(RawInstance::new(instance)),
            hidden: false,
        }
    }

    /// Simple values: `T`'s schema bound to a static instance.
    pub fn of_static<T: Stats>(instance: &'static T) -> Self {
        ValueGroup {
            schema: SchemaRef::Static(T::SCHEMA),
            binding: Binding::Instance(RawInstance::from_static(instance)),
            hidden: false,
        }
    }

    /// Aggregates of `T`'s schema over the source and all its subordinates.
    pub fn aggregates<T: Stats>() -> Self {
        Self::aggregates_of(T::SCHEMA)
    }

    /// Aggregates of any schema, derived or runtime.
    pub fn aggregates_of(schema: impl Into<SchemaRef>) -> Self {
        ValueGroup {
            schema: schema.into(),
            binding: Binding::Aggregate(Box::default()),
            hidden: false,
        }
    }

    /// Simple values of a runtime schema, read from `source` at read time.
    pub fn block(schema: Arc<Schema>, source: impl BlockSource + 'static) -> Self {
        ValueGroup {
            schema: SchemaRef::Shared(schema),
            binding: Binding::Block(Arc::new(source)),
            hidden: false,
        }
    }

    /// This group without files: still readable by name and still aggregated.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub(crate) fn into_group(self) -> Group {
        Group {
            schema: self.schema,
            binding: self.binding,
            hidden: self.hidden,
            shadowed: Box::default(),
        }
    }
}

/// A group inside a source.
pub(crate) struct Group {
    pub(crate) schema: SchemaRef,
    pub(crate) binding: Binding,
    pub(crate) hidden: bool,
    /// Per descriptor: a group added later has a value of the same name, which wins.
    /// Empty (no allocation) until some value is shadowed: most groups never are.
    pub(crate) shadowed: Box<[bool]>,
}

impl Group {
    pub(crate) fn duplicates(&self, other: &ValueGroup) -> bool {
        self.schema.same(&other.schema) && self.binding.same_target(&other.binding)
    }

    /// Whether this group shows descriptor `i` at all: not shadowed, and not a plain
    /// (`none`) value in an aggregate group.
    #[inline]
    pub(crate) fn offers(&self, i: usize) -> bool {
        let plain_in_aggregate = matches!(self.binding, Binding::Aggregate(_))
            && self.schema.descriptors()[i].aggregation == crate::desc::Aggregation::None;
        !self.shadowed.get(i).copied().unwrap_or(false) && !plain_in_aggregate
    }
}
