//! Schemas: the descriptors of one struct type, and the [`Stats`] trait that ties a
//! struct to its schema.
//!
//! A schema is identified by its address, never by its name: two schemas that happen to
//! share a name or a stat name never aggregate together
//! (`docs/MODEL.md#schema-identity`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::desc::{str_eq, Descriptor, Role, Storage, ValueType};
use crate::error::SchemaProblem;
use crate::family::{joined_at, Parts};

/// The descriptors of one struct type (or of one runtime layout), with a name.
pub struct Schema {
    name: Cow<'static, str>,
    type_name: Cow<'static, str>,
    descriptors: Cow<'static, [Descriptor]>,
    components: &'static [Component],
    block_words: usize,
}

/// A stats struct flattened into another (`#[stat(flatten)]`), at any depth: its schema
/// and where it is in the outer struct. Aggregates of the component's schema fold that
/// part of every instance of the outer one (`docs/MODEL.md#components`).
#[derive(Clone, Copy, Debug)]
pub struct Component {
    /// The flattened struct's schema.
    pub schema: &'static Schema,
    /// Its byte offset in the outer struct.
    pub offset: usize,
}

impl Schema {
    /// A schema over static descriptors, as `#[derive(Stats)]` builds it.
    pub const fn new_static(
        name: &'static str,
        type_name: &'static str,
        descriptors: &'static [Descriptor],
    ) -> Self {
        Schema {
            name: Cow::Borrowed(name),
            type_name: Cow::Borrowed(type_name),
            descriptors: Cow::Borrowed(descriptors),
            components: &[],
            block_words: 0,
        }
    }

    /// This static schema with the structs flattened into it, as `Stats::COMPONENTS`
    /// lists them (the derive's glue).
    pub const fn with_components(mut self, components: &'static [Component]) -> Self {
        self.components = components;
        self
    }

    /// The structs flattened into this one, at any depth ([`Component`]).
    pub const fn components(&self) -> &'static [Component] {
        self.components
    }

    /// A schema known only at run time (for instance decoded from a kernel stats file),
    /// whose values a [`BlockSource`](crate::BlockSource) provides as a block of
    /// u64 words. Every descriptor is given [`Storage::Block`]; its `offset` is the byte
    /// offset of its first word in that block, as in the binary layout.
    ///
    /// Share the returned `Arc` between all sources of the same layout: aggregates match
    /// by schema identity.
    pub fn new_runtime(
        name: impl Into<String>,
        descriptors: Vec<Descriptor>,
    ) -> Result<Arc<Self>, crate::Error> {
        let name = name.into();
        let mut words = 0usize;
        let mut descriptors = descriptors;
        for (i, d) in descriptors.iter_mut().enumerate() {
            d.storage = Storage::Block;
            // A block source is read, never written: its values cannot be cleared.
            d.clearable = false;
            if d.offset % 8 != 0 {
                return Err(crate::Error::InvalidSchema {
                    schema: name,
                    problem: SchemaProblem::Offset {
                        stat: i,
                        name: d.name.to_owned(),
                        offset: d.offset,
                    },
                });
            }
            if let Err(rule) = d.check() {
                return Err(crate::Error::InvalidSchema {
                    schema: name,
                    problem: SchemaProblem::Rule {
                        stat: i,
                        name: d.name.to_owned(),
                        rule,
                    },
                });
            }
            words = words.max(d.offset / 8 + d.size as usize);
        }
        if let Some(dup) = first_duplicate(&descriptors) {
            return Err(crate::Error::InvalidSchema {
                schema: name,
                problem: SchemaProblem::Duplicate {
                    name: dup.to_owned(),
                },
            });
        }
        Ok(Arc::new(Schema {
            type_name: Cow::Owned(name.clone()),
            name: Cow::Owned(name),
            descriptors: Cow::Owned(descriptors),
            components: &[],
            block_words: words,
        }))
    }

    /// [`new_runtime`](Self::new_runtime) with the descriptors laid out one after the
    /// other, in the order given: each one's `offset` is the words of those before it
    /// (a histogram of `size` buckets takes `size` words). For blocks a program fills
    /// itself, in that order.
    ///
    /// ```
    /// use statsfs_core::{Descriptor, Kind, Schema, Storage, ValueType};
    /// let schema = Schema::new_runtime_packed("queue", vec![
    ///     Descriptor::new("wait", ValueType::U64, Kind::LogHistogram).with_storage(Storage::Block, 4),
    ///     Descriptor::new("depth", ValueType::U64, Kind::Instant),
    /// ])?;
    /// assert_eq!(schema.descriptor("depth").unwrap().offset, 32);
    /// assert_eq!(schema.block_words(), 5);
    /// # Ok::<(), statsfs_core::Error>(())
    /// ```
    pub fn new_runtime_packed(
        name: impl Into<String>,
        mut descriptors: Vec<Descriptor>,
    ) -> Result<Arc<Self>, crate::Error> {
        let mut at = 0usize;
        for d in &mut descriptors {
            d.offset = at;
            at = at.saturating_add(8 * usize::from(d.size));
        }
        Self::new_runtime(name, descriptors)
    }

    /// The schema's name (`#[stats(name = "...")]`, else the struct's name in snake case).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Rust path of the struct (`my_crate::kvm::VcpuStat`), or the name of a runtime
    /// schema.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The descriptors, in declaration order (flattened structs in place).
    pub fn descriptors(&self) -> &[Descriptor] {
        &self.descriptors
    }

    /// The descriptors of a static schema ([`new_static`](Self::new_static)), usable in
    /// `const` context; `None` for a runtime schema.
    pub const fn static_descriptors(&self) -> Option<&'static [Descriptor]> {
        match &self.descriptors {
            Cow::Borrowed(d) => Some(*d),
            Cow::Owned(_) => None,
        }
    }

    /// The first descriptor named `name`.
    pub fn descriptor(&self, name: &str) -> Option<&Descriptor> {
        self.descriptors.iter().find(|d| d.name == name)
    }

    /// How many u64 words reading every value takes (the size of a data block).
    pub fn words(&self) -> usize {
        self.descriptors.iter().map(|d| d.size as usize).sum()
    }

    /// For a runtime schema, the length in words of the block its source fills.
    pub fn block_words(&self) -> usize {
        self.block_words
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("descriptors", &self.descriptors.len())
            .finish()
    }
}

/// A reference to a schema, static or shared; equality is identity.
#[derive(Clone)]
pub enum SchemaRef {
    /// A derived schema.
    Static(&'static Schema),
    /// A runtime schema.
    Shared(Arc<Schema>),
}

impl SchemaRef {
    /// Whether both name the same schema (the same object, not an equal one).
    pub fn same(&self, other: &SchemaRef) -> bool {
        core::ptr::eq::<Schema>(&**self, &**other)
    }
}

impl core::ops::Deref for SchemaRef {
    type Target = Schema;
    fn deref(&self) -> &Schema {
        match self {
            SchemaRef::Static(s) => s,
            SchemaRef::Shared(s) => s,
        }
    }
}

impl fmt::Debug for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl From<&'static Schema> for SchemaRef {
    fn from(s: &'static Schema) -> Self {
        SchemaRef::Static(s)
    }
}

impl From<Arc<Schema>> for SchemaRef {
    fn from(s: Arc<Schema>) -> Self {
        SchemaRef::Shared(s)
    }
}

/// A struct whose fields are statistics. Implemented by `#[derive(Stats)]`.
///
/// # Safety
///
/// Every descriptor's offset, storage, type and size must describe a field of `Self`
/// exactly: sources read `Self` through them. Every component (`COMPONENTS`) must be a
/// struct of its schema's type, at its offset in `Self`: aggregates of the component's
/// schema read that part of `Self` through the component's descriptors. The derive
/// guarantees both; do not implement the trait by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a statsfs stats struct",
    label = "`{Self}` has no `#[derive(Stats)]`",
    note = "add `#[derive(statsfs::Stats)]` to `{Self}` (a struct of stat cells: Counter, Gauge, Peak, Flag, histograms)"
)]
pub unsafe trait Stats: Sized + Send + Sync + 'static {
    /// The descriptors, in declaration order.
    const DESCRIPTORS: &'static [Descriptor];
    /// The schema; its address is the schema's identity.
    const SCHEMA: &'static Schema;
    /// Whether the struct is stat cells and nothing else, inline: no `#[stat(skip)]`
    /// field, no sharded counter (which points to its shards), in it or in a struct it
    /// flattens. Then every byte of it is an atomic's, and all zeros is a valid value of
    /// it: what a shared region needs, whose guard may zero the memory under it
    /// (`docs/REGION.md#what-a-region-survives`). The derive computes it; an impl by hand
    /// that says `true` promises it.
    const CELLS_ONLY: bool = false;
    /// The structs flattened into this one, at any depth, with their offsets: an
    /// aggregate of one of their schemas folds that part of this struct too.
    const COMPONENTS: &'static [Component] = &[];
    /// The struct with every stat at zero, for `const` constructors (the derive's
    /// `new()`, and that of a struct that flattens this one). A struct with fields that
    /// are no stats (`#[stat(skip)]`), or that opted out (`#[stats(no_new)]`), has none:
    /// using this constant then fails compilation with a message that says so.
    const ZERO: Self = panic!(
        "this stats struct has no const zero (it has #[stat(skip)] fields, or #[stats(no_new)]), so a struct that flattens it has no `new()`: add #[stats(no_new)] to that struct"
    );
}

/// Builds `Stats::COMPONENTS` at compile time; the derive's glue. `N` is the number of
/// components, nested ones included.
pub struct ComponentsBuilder<const N: usize> {
    components: [Option<Component>; N],
    len: usize,
}

impl<const N: usize> ComponentsBuilder<N> {
    /// An empty builder.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ComponentsBuilder {
            components: [None; N],
            len: 0,
        }
    }

    /// Appends the struct flattened at `offset` (its `SCHEMA`), and the structs flattened
    /// into it (its `COMPONENTS`), moved by `offset`.
    pub const fn flatten(
        mut self,
        schema: &'static Schema,
        inner: &'static [Component],
        offset: usize,
    ) -> Self {
        self.components[self.len] = Some(Component { schema, offset });
        self.len += 1;
        let mut i = 0;
        while i < inner.len() {
            self.components[self.len] = Some(Component {
                schema: inner[i].schema,
                offset: inner[i].offset + offset,
            });
            self.len += 1;
            i += 1;
        }
        self
    }

    /// The components.
    pub const fn build(self) -> [Component; N] {
        assert!(self.len == N, "statsfs: components miscounted");
        let mut out = [PLACEHOLDER_COMPONENT; N];
        let mut i = 0;
        while i < N {
            if let Some(c) = self.components[i] {
                out[i] = c;
            }
            i += 1;
        }
        out
    }
}

static EMPTY: Schema = Schema::new_static("", "", &[]);
const PLACEHOLDER_COMPONENT: Component = Component {
    schema: &EMPTY,
    offset: 0,
};

/// Builds a descriptor array at compile time; the glue `#[derive(Stats)]` emits.
///
/// `N` is the number of descriptors, flattened ones included. [`build`](Self::build)
/// checks every descriptor and the uniqueness of names, and fails compilation when a rule
/// is broken.
pub struct SchemaBuilder<const N: usize> {
    descriptors: [Descriptor; N],
    len: usize,
}

const PLACEHOLDER: Descriptor = Descriptor::new(
    "?",
    crate::desc::ValueType::U64,
    crate::desc::Kind::Cumulative,
);

impl<const N: usize> SchemaBuilder<N> {
    /// An empty builder.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SchemaBuilder {
            descriptors: [PLACEHOLDER; N],
            len: 0,
        }
    }

    /// Appends one descriptor.
    pub const fn push(mut self, d: Descriptor) -> Self {
        assert!(
            self.len < N,
            "statsfs: more descriptors than the schema was sized for"
        );
        self.descriptors[self.len] = d;
        self.len += 1;
        self
    }

    /// Appends a nested schema's descriptors, moved to the nested field's offset.
    pub const fn flatten(mut self, inner: &[Descriptor], offset: usize) -> Self {
        let mut i = 0;
        while i < inner.len() {
            let d = inner[i];
            self = self.push(d.with_offset(d.offset + offset));
            i += 1;
        }
        self
    }

    /// Appends a nested schema's descriptors, moved to the nested field's offset and
    /// renamed `prefix + name`; `names` is [`join`](crate::family::join)`(prefix,
    /// Parts::Names(inner), "")`.
    pub const fn flatten_prefixed(
        mut self,
        inner: &'static [Descriptor],
        offset: usize,
        prefix: &'static str,
        names: &'static [u8],
    ) -> Self {
        let mut i = 0;
        while i < inner.len() {
            let d = inner[i];
            let (name, _) = joined_at(names, prefix, Parts::Names(inner), "", i);
            self = self.push(d.with_offset(d.offset + offset).with_name(name));
            i += 1;
        }
        self
    }

    /// Appends, after a histogram descriptor just pushed, the descriptor of its sum when
    /// its cell keeps one (`sum_at`: the cell's `StatField::SUM_AT`): a cumulative `u64`
    /// named `name`, in the histogram's unit and scale.
    pub const fn sum_of(
        self,
        sum_at: Option<usize>,
        name: &'static str,
        doc: &'static str,
    ) -> Self {
        let Some(at) = sum_at else { return self };
        assert!(
            self.len > 0,
            "statsfs: a histogram sum without its histogram"
        );
        let h = self.descriptors[self.len - 1];
        self.push(sum_descriptor(&h, at, name, doc))
    }

    /// Appends another aggregation of the value last pushed (before any other
    /// aggregation of it): the same descriptor named `name`, folded by `aggregation`,
    /// offered by aggregate groups only ([`Role::AggregateOnly`]).
    pub const fn also(self, name: &'static str, aggregation: crate::desc::Aggregation) -> Self {
        let mut at = self.len;
        while at > 0 && matches!(self.descriptors[at - 1].role, Role::AggregateOnly) {
            at -= 1;
        }
        assert!(
            at > 0 && matches!(self.descriptors[at - 1].role, Role::Value),
            "statsfs: another aggregation of no value"
        );
        let d = self.descriptors[at - 1];
        self.push(
            d.with_name(name)
                .with_aggregation(aggregation)
                .with_role(Role::AggregateOnly),
        )
    }

    /// Appends one descriptor per cell of a family (`docs/MODEL.md#families`):
    /// `template` (the field's descriptor, named after the family) moved by `f.stride`
    /// bytes a cell, named and labelled from `f`; each followed by its sum when the cell
    /// keeps one.
    pub const fn family(mut self, template: Descriptor, f: FamilyOf) -> Self {
        let mut i = 0;
        while i < f.parts.len() {
            let (name, value) = joined_at(f.names, f.head, f.parts, "", i);
            let d = template
                .with_offset(template.offset + i * f.stride)
                .with_name(name)
                .with_label(f.label, value);
            self = self.push(d);
            if let Some(at) = f.sum_at {
                let (sum, _) = joined_at(f.sum_names, f.head, f.parts, "_sum", i);
                self = self.push(sum_descriptor(&d, at, sum, f.sum_doc));
            }
            i += 1;
        }
        self
    }

    /// The descriptors; fails (at compile time, in a `const`) when one breaks a rule.
    /// Names are checked by [`check_names`] and [`check_other_names`], which the derive
    /// calls so that a clash is reported on the field that makes it.
    pub const fn build(self) -> [Descriptor; N] {
        assert!(
            self.len == N,
            "statsfs: fewer descriptors than the schema was sized for"
        );
        let mut i = 0;
        while i < N {
            if let Err(rule) = self.descriptors[i].check() {
                panic!("{}", rule.message());
            }
            i += 1;
        }
        self.descriptors
    }
}

/// The sum of histogram `h`'s samples, kept `at` bytes into its cell.
const fn sum_descriptor(
    h: &Descriptor,
    at: usize,
    name: &'static str,
    doc: &'static str,
) -> Descriptor {
    Descriptor::new(name, ValueType::U64, crate::desc::Kind::Cumulative)
        .with_offset(h.offset + at)
        .with_unit(h.unit, h.scale)
        .with_doc(doc)
        .with_clearable(h.clearable)
        .with_hidden(h.hidden)
        .with_aggregation(h.aggregation)
        .with_role(Role::HistogramSum)
}

/// A family field, as [`SchemaBuilder::family`] lays it out; the derive's glue.
#[derive(Clone, Copy)]
pub struct FamilyOf {
    /// The label's name.
    pub label: &'static str,
    /// The family's name and `_`.
    pub head: &'static str,
    /// The label values.
    pub parts: Parts<'static>,
    /// [`join`](crate::family::join)`(head, parts, "")`.
    pub names: &'static [u8],
    /// [`join`](crate::family::join)`(head, parts, "_sum")`, used if `sum_at` is some.
    pub sum_names: &'static [u8],
    /// The cell's `StatField::SUM_AT`.
    pub sum_at: Option<usize>,
    /// The description of each sum.
    pub sum_doc: &'static str,
    /// The cell's size: the distance between two members.
    pub stride: usize,
}

/// How many descriptors a family of `n` cells with (`sum_at` some) or without sums has.
pub const fn family_len(n: usize, sum_at: Option<usize>) -> usize {
    if sum_at.is_some() {
        2 * n
    } else {
        n
    }
}

/// A `&'static str` equal to `name`, for the names of runtime descriptors.
///
/// Each distinct string is stored once for the life of the process, so interning the
/// names of a fixed set of layouts (the kernel's stats, say) costs their size once, however
/// many objects use them.
pub fn intern(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(s) = set.get(name) {
        return s;
    }
    let s: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(s);
    s
}

/// FNV-1a of a name.
const fn name_hash(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        h = (h ^ b[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// Fails compilation with `message` when a descriptor in `start .. start + len` has the
/// name of any other descriptor of `ds` (`N` is `ds.len()`). O(N log N): names are
/// hashed, the hashes heap-sorted, and only equal hashes compared as strings, so structs
/// with thousands of stats compile fast.
#[track_caller]
pub const fn check_names<const N: usize>(
    ds: &[Descriptor],
    start: usize,
    len: usize,
    message: &'static str,
) {
    if let Some((i, j)) = clash::<N>(ds, &[(start, len)], true) {
        let _ = (i, j);
        panic!("{}", message);
    }
}

/// Fails compilation with `message` when two descriptors of `ds` outside every range
/// `(start, len)` of `ranges` share a name (clashes inside a range are
/// [`check_names`]'s, reported on their field).
#[track_caller]
pub const fn check_other_names<const N: usize>(
    ds: &[Descriptor],
    ranges: &[(usize, usize)],
    message: &'static str,
) {
    if clash::<N>(ds, ranges, false).is_some() {
        panic!("{}", message);
    }
}

/// Two descriptors with one name: with `inside`, one of them in a range; without, both
/// outside every range.
const fn clash<const N: usize>(
    ds: &[Descriptor],
    ranges: &[(usize, usize)],
    inside: bool,
) -> Option<(usize, usize)> {
    assert!(
        ds.len() == N,
        "statsfs: names checked against a miscounted schema"
    );
    let mut h = [(0u64, 0usize); N];
    let mut i = 0;
    while i < N {
        h[i] = (name_hash(ds[i].name), i);
        i += 1;
    }
    // Heap sort by hash.
    let mut start = N / 2;
    while start > 0 {
        start -= 1;
        sift_down(&mut h, start, N);
    }
    let mut end = N;
    while end > 1 {
        end -= 1;
        let t = h[0];
        h[0] = h[end];
        h[end] = t;
        sift_down(&mut h, 0, end);
    }
    let mut a = 0;
    while a < N {
        let mut b = a + 1;
        while b < N && h[b].0 == h[a].0 {
            let (x, y) = (h[a].1, h[b].1);
            if str_eq(ds[x].name, ds[y].name) {
                let (ix, iy) = (in_ranges(x, ranges), in_ranges(y, ranges));
                if (inside && (ix || iy)) || (!inside && !ix && !iy) {
                    return Some((x, y));
                }
            }
            b += 1;
        }
        a += 1;
    }
    None
}

const fn in_ranges(i: usize, ranges: &[(usize, usize)]) -> bool {
    let mut r = 0;
    while r < ranges.len() {
        if i >= ranges[r].0 && i < ranges[r].0 + ranges[r].1 {
            return true;
        }
        r += 1;
    }
    false
}

const fn sift_down<const N: usize>(h: &mut [(u64, usize); N], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && h[child].0 < h[child + 1].0 {
            child += 1;
        }
        if h[root].0 >= h[child].0 {
            return;
        }
        let t = h[root];
        h[root] = h[child];
        h[child] = t;
        root = child;
    }
}

/// The first name that two descriptors share.
pub const fn first_duplicate(ds: &[Descriptor]) -> Option<&'static str> {
    let mut i = 0;
    while i < ds.len() {
        let mut j = i + 1;
        while j < ds.len() {
            if str_eq(ds[i].name, ds[j].name) {
                return Some(ds[i].name);
            }
            j += 1;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{Kind, ValueType};

    const A: Descriptor = Descriptor::new("a", ValueType::U64, Kind::Cumulative);
    const B: Descriptor = Descriptor::new("b", ValueType::I32, Kind::Instant).with_offset(8);

    #[test]
    fn builder_flattens_at_the_field_offset() {
        const INNER: [Descriptor; 2] = SchemaBuilder::<2>::new().push(A).push(B).build();
        const OUTER: [Descriptor; 3] = SchemaBuilder::<3>::new()
            .push(Descriptor::new("c", ValueType::U8, Kind::Cumulative))
            .flatten(&INNER, 16)
            .build();
        assert_eq!(OUTER[1].name, "a");
        assert_eq!(OUTER[1].offset, 16);
        assert_eq!(OUTER[2].offset, 24);
    }

    #[test]
    fn runtime_schemas_are_checked() {
        let ok = Schema::new_runtime("k", vec![A, B]).unwrap();
        assert_eq!(ok.block_words(), 2);
        let err = Schema::new_runtime("k", vec![A, A.with_offset(8)]).unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        let err = Schema::new_runtime("k", vec![A.with_offset(3)]).unwrap_err();
        assert!(err.to_string().contains("multiple of 8"), "{err}");
    }

    #[test]
    fn identity_is_by_address() {
        static S1: Schema = Schema::new_static("same", "x::S", &[]);
        static S2: Schema = Schema::new_static("same", "x::S", &[]);
        assert!(SchemaRef::from(&S1).same(&SchemaRef::from(&S1)));
        assert!(!SchemaRef::from(&S1).same(&SchemaRef::from(&S2)));
    }
}
