//! Schemas: the descriptors of one struct type, and the [`Stats`] trait that ties a
//! struct to its schema.
//!
//! A schema is identified by its address, never by its name: two schemas that happen to
//! share a name or a stat name never aggregate together
//! (`docs/MODEL.md#schema-identity`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::desc::{Descriptor, Storage};
use crate::error::SchemaProblem;

/// The descriptors of one struct type (or of one runtime layout), with a name.
pub struct Schema {
    name: Cow<'static, str>,
    type_name: Cow<'static, str>,
    descriptors: Cow<'static, [Descriptor]>,
    block_words: usize,
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
            block_words: 0,
        }
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
            block_words: words,
        }))
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
/// exactly: sources read `Self` through them. The derive guarantees this; do not
/// implement the trait by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a statsfs stats struct",
    label = "`{Self}` has no `#[derive(Stats)]`",
    note = "add `#[derive(statsfs::Stats)]` to `{Self}` (a struct of stat cells: Counter, Gauge, Peak, Flag, histograms)"
)]
pub unsafe trait Stats: Send + Sync + 'static {
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
}

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

    /// The descriptors; fails (at compile time, in a `const`) when one breaks a rule or
    /// two share a name.
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
        if has_duplicate_names(&self.descriptors) {
            panic!("two stats of this struct have the same name after flatten/rename: rename one with #[stat(rename = \"...\")]");
        }
        self.descriptors
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

/// Whether two of `N` descriptors share a name; O(N log N), so that compile-time checks
/// of structs with thousands of stats stay fast. Names are hashed, the hashes
/// heap-sorted, and only equal hashes are compared as strings.
const fn has_duplicate_names<const N: usize>(ds: &[Descriptor; N]) -> bool {
    let mut h = [0u64; N];
    let mut i = 0;
    while i < N {
        h[i] = name_hash(ds[i].name);
        i += 1;
    }
    // Heap sort.
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
    let mut k = 1;
    while k < N {
        if h[k] == h[k - 1] && first_duplicate(ds).is_some() {
            return true;
        }
        k += 1;
    }
    false
}

const fn sift_down<const N: usize>(h: &mut [u64; N], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && h[child] < h[child + 1] {
            child += 1;
        }
        if h[root] >= h[child] {
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

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
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
