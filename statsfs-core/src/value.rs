//! Values as readers see them, and the one number each reads as
//! (`docs/FILES.md#values`).

use std::fmt;

use crate::desc::Descriptor;
use crate::schema::Schema;

/// The one number a value reads as, in every view (`docs/FILES.md#text-rendering`): the
/// word itself, sign-extended for a signed type; for a histogram, its sample count (the
/// sum of its buckets, OpenMetrics' `_count`). A bool reads 0 or 1 as a simple value, and
/// as a count when aggregated (a sum of bools over vCPUs is how many are set). Bulk files
/// carry the same word (histograms: the buckets themselves).
pub fn number(d: &Descriptor, words: &[u64]) -> i128 {
    if d.kind.is_histogram() {
        return words.iter().fold(0u64, |s, w| s.wrapping_add(*w)) as i128;
    }
    let w = words.first().copied().unwrap_or(0);
    if d.ty.is_signed() {
        w as i64 as i128
    } else {
        w as i128
    }
}

/// One value read from a source, borrowed for the duration of a
/// [`Source::for_each_value`](crate::Source::for_each_value) call.
#[derive(Clone, Copy, Debug)]
pub struct ValueRef<'a> {
    /// What the value is.
    pub descriptor: &'a Descriptor,
    /// The schema it belongs to.
    pub schema: &'a Schema,
    /// Whether it is an aggregate (folded over the subtree) rather than a simple value.
    pub aggregate: bool,
    /// Whether its group is hidden.
    pub group_hidden: bool,
    /// The words: one, or one per histogram bucket. Signed values are stored as their
    /// two's-complement pattern.
    pub words: &'a [u64],
}

impl<'a> ValueRef<'a> {
    pub(crate) fn new(
        descriptor: &'a Descriptor,
        schema: &'a Schema,
        aggregate: bool,
        group_hidden: bool,
        words: &'a [u64],
    ) -> Self {
        ValueRef {
            descriptor,
            schema,
            aggregate,
            group_hidden,
            words,
        }
    }

    /// Whether the value has a file: neither it nor its group is hidden.
    pub fn visible(&self) -> bool {
        !self.group_hidden && !self.descriptor.hidden
    }
}

impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", number(self.descriptor, self.words))
    }
}

/// One value read by name with [`Source::get`](crate::Source::get).
///
/// ```
/// # use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// # let schema = Schema::new_runtime("s", vec![Descriptor::new("temp", ValueType::I16, Kind::Instant)]).unwrap();
/// # let s = Source::new("s").unwrap();
/// # use std::sync::Arc;
/// # s.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = -40i64 as u64; Ok(()) }))).unwrap();
/// let v = s.get("temp").unwrap();
/// assert_eq!(v.as_i64(), -40);
/// assert_eq!(v.to_string(), "-40");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    descriptor: Descriptor,
    aggregate: bool,
    words: Vec<u64>,
}

impl Value {
    pub(crate) fn new(descriptor: Descriptor, aggregate: bool, words: Vec<u64>) -> Self {
        Value {
            descriptor,
            aggregate,
            words,
        }
    }

    /// What the value is.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// Whether it is an aggregate.
    pub fn is_aggregate(&self) -> bool {
        self.aggregate
    }

    /// The raw words (bucket counts for a histogram).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The first word as an unsigned number (for signed types, the two's-complement
    /// pattern: use [`as_i64`](Self::as_i64)).
    pub fn as_u64(&self) -> u64 {
        self.words.first().copied().unwrap_or(0)
    }

    /// The first word as a signed number.
    pub fn as_i64(&self) -> i64 {
        self.as_u64() as i64
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", number(&self.descriptor, &self.words))
    }
}
