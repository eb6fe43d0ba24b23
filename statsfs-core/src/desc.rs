//! Value descriptors: the static description of one statistic.
//!
//! A [`Descriptor`] says everything a reader needs to know about one value without
//! looking at any instance: its name, where it lives in the struct, how wide and how
//! signed it is, what kind of quantity it is (`docs/MODEL.md#kinds`), its unit and scale, how it folds
//! into an aggregate, whether it may be cleared, and a one-line description.
//!
//! Descriptors are `Copy` plain data and are normally built at compile time by
//! `#[derive(Stats)]`; every constructor here is a `const fn`.

use core::fmt;

/// The integer type of a value as it is stored; every value is widened to 64 bits
/// when read (signed types sign-extended, `bool` as 0 or 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `bool`, read as 0 or 1.
    Bool,
}

impl ValueType {
    /// Whether values of this type compare and divide as signed numbers.
    pub const fn is_signed(self) -> bool {
        matches!(self, Self::I8 | Self::I16 | Self::I32 | Self::I64)
    }

    /// The width in bytes of the integer (and of its atomic cell).
    pub const fn width(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 => 4,
            Self::U64 | Self::I64 => 8,
        }
    }

    /// Every type, in declaration order.
    pub const ALL: [ValueType; 9] = [
        Self::U8,
        Self::U16,
        Self::U32,
        Self::U64,
        Self::I8,
        Self::I16,
        Self::I32,
        Self::I64,
        Self::Bool,
    ];

    /// The type whose [`as_str`](Self::as_str) is `name`.
    ///
    /// ```
    /// use statsfs_core::ValueType;
    /// assert_eq!(ValueType::from_name("i32"), Some(ValueType::I32));
    /// assert_eq!(ValueType::from_name("f64"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ValueType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The Rust name of the type (`"u64"`, `"bool"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::U16 => "u16",
            Self::U32 => "u32",
            Self::U64 => "u64",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::Bool => "bool",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of quantity a value is (`docs/MODEL.md#kinds`, the kernel's
/// `KVM_STATS_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Only increases: event counts, total time. Clearable by default.
    Cumulative,
    /// Goes up and down: pages in use, queue length. Read-only by default.
    Instant,
    /// Only increases; a high-water mark. Clearable by default.
    Peak,
    /// `size` buckets of width `bucket_size`: bucket N counts samples in
    /// `[N*w, (N+1)*w)`, the last one everything above.
    LinearHistogram {
        /// The width `w` of every bucket; never 0.
        bucket_size: u32,
    },
    /// `size` buckets: bucket 0 counts samples in `[0, 1)`, bucket N counts
    /// `[2^(N-1), 2^N)`, the last one everything above.
    LogHistogram,
}

impl Kind {
    /// Whether values of this kind may be cleared unless the descriptor says otherwise.
    pub const fn clearable_by_default(self) -> bool {
        !matches!(self, Self::Instant)
    }

    /// Whether this kind is one of the two histograms.
    pub const fn is_histogram(self) -> bool {
        matches!(self, Self::LinearHistogram { .. } | Self::LogHistogram)
    }

    /// The kernel's code for this kind (bits 0-3 of a binary descriptor's flags).
    pub const fn code(self) -> u32 {
        match self {
            Self::Cumulative => 0,
            Self::Instant => 1,
            Self::Peak => 2,
            Self::LinearHistogram { .. } => 3,
            Self::LogHistogram => 4,
        }
    }

    /// The kind whose code is `code` (bits 0-3 of a binary descriptor's flags), with the
    /// descriptor's `bucket_size` for a linear histogram; `None` for an unknown code. The
    /// inverse of [`code`](Self::code).
    pub const fn from_code(code: u32, bucket_size: u32) -> Option<Kind> {
        Some(match code {
            0 => Self::Cumulative,
            1 => Self::Instant,
            2 => Self::Peak,
            3 => Self::LinearHistogram { bucket_size },
            4 => Self::LogHistogram,
            _ => return None,
        })
    }

    /// The bucket width of a linear histogram, else 0 (the binary layout's
    /// `bucket_size`).
    pub const fn bucket_size(self) -> u32 {
        match self {
            Self::LinearHistogram { bucket_size } => bucket_size,
            _ => 0,
        }
    }

    /// The bucket of a histogram of `buckets` buckets (at least 1) that a sample `v`
    /// falls in: for a linear histogram of width w, `v / w`; for a log histogram, 0 for
    /// 0 and `i` for `[2^(i-1), 2^i)`; past the last bucket, the last. Not a histogram: 0.
    /// Every histogram, declared or built at run time, counts its samples by this rule.
    ///
    /// ```
    /// use statsfs_core::Kind;
    /// assert_eq!(Kind::LogHistogram.bucket_of(0, 8), 0);
    /// assert_eq!(Kind::LogHistogram.bucket_of(5, 8), 3);          // [4, 8)
    /// assert_eq!(Kind::LogHistogram.bucket_of(1 << 40, 8), 7);    // the last
    /// assert_eq!(Kind::LinearHistogram { bucket_size: 10 }.bucket_of(35, 8), 3);
    /// ```
    #[inline(always)]
    pub const fn bucket_of(self, v: u64, buckets: usize) -> usize {
        let i = match self {
            Self::LinearHistogram { bucket_size } => match v.checked_div(bucket_size as u64) {
                Some(i) if i < usize::MAX as u64 => i as usize,
                Some(_) => usize::MAX,
                None => 0,
            },
            Self::LogHistogram => (u64::BITS - v.leading_zeros()) as usize,
            _ => 0,
        };
        if i >= buckets {
            buckets.saturating_sub(1)
        } else {
            i
        }
    }

    /// The lower-case name used in attributes and documentation.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cumulative => "cumulative",
            Self::Instant => "instant",
            Self::Peak => "peak",
            Self::LinearHistogram { .. } => "linear_histogram",
            Self::LogHistogram => "log_histogram",
        }
    }
}

/// The unit of a value (for histograms: of the bucket bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A plain count.
    None,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// CPU cycles.
    Cycles,
    /// A truth value: 0 or 1.
    Boolean,
}

impl Unit {
    /// Every unit, in code order.
    pub const ALL: [Unit; 5] = [
        Unit::None,
        Unit::Bytes,
        Unit::Seconds,
        Unit::Cycles,
        Unit::Boolean,
    ];

    /// The kernel's code for this unit (bits 4-7 of a binary descriptor's flags, shifted
    /// down).
    pub const fn code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Bytes => 1,
            Self::Seconds => 2,
            Self::Cycles => 3,
            Self::Boolean => 4,
        }
    }

    /// The unit whose code is `code`; `None` for an unknown code. The inverse of
    /// [`code`](Self::code).
    pub const fn from_code(code: u32) -> Option<Unit> {
        Some(match code {
            0 => Self::None,
            1 => Self::Bytes,
            2 => Self::Seconds,
            3 => Self::Cycles,
            4 => Self::Boolean,
            _ => return None,
        })
    }

    /// Whether `exponent` may scale a value of this unit (the kernel's rule): `>= 0` for
    /// none, bytes and cycles, `<= 0` for seconds, `0` for boolean. The derive, the
    /// descriptor check, the encoder and the decoder all ask this.
    pub const fn exponent_allowed(self, exponent: i16) -> bool {
        match self {
            Self::None | Self::Bytes | Self::Cycles => exponent >= 0,
            Self::Seconds => exponent <= 0,
            Self::Boolean => exponent == 0,
        }
    }

    /// What [`exponent_allowed`](Self::exponent_allowed) asks, for messages: `">= 0"`,
    /// `"<= 0"` or `"0"`.
    pub const fn exponent_rule(self) -> &'static str {
        match self {
            Self::None | Self::Bytes | Self::Cycles => ">= 0",
            Self::Seconds => "<= 0",
            Self::Boolean => "0",
        }
    }

    /// The lower-case name used in attributes, documentation and OpenMetrics `# UNIT`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bytes => "bytes",
            Self::Seconds => "seconds",
            Self::Cycles => "cycles",
            Self::Boolean => "boolean",
        }
    }
}

impl std::str::FromStr for Unit {
    type Err = UnknownName;

    /// The unit [`as_str`](Self::as_str) names (`"seconds"`); the attribute's spelling.
    ///
    /// ```
    /// use statsfs_core::Unit;
    /// assert_eq!("seconds".parse::<Unit>(), Ok(Unit::Seconds));
    /// assert_eq!(
    ///     "secs".parse::<Unit>().unwrap_err().to_string(),
    ///     "unknown unit `secs`; expected none, bytes, seconds, cycles or boolean"
    /// );
    /// ```
    fn from_str(s: &str) -> Result<Unit, UnknownName> {
        let all = Unit::ALL.map(Unit::as_str);
        Unit::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| UnknownName::new("unit", s, &all))
    }
}

/// A name that is not one of an enum's: what was given and what would do. The error of
/// the `FromStr` impls of [`Unit`] and [`Aggregation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    what: &'static str,
    given: String,
    expected: String,
    closest: Option<&'static str>,
}

impl UnknownName {
    fn new(what: &'static str, given: &str, names: &[&'static str]) -> Self {
        let expected = match names {
            [] => String::new(),
            [one] => (*one).to_owned(),
            [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        };
        UnknownName {
            what,
            given: given.to_owned(),
            expected,
            closest: closest(given, names),
        }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} `{}`", self.what, self.given)?;
        match self.closest {
            Some(c) => write!(f, ": did you mean `{c}`? (expected {})", self.expected),
            None => write!(f, "; expected {}", self.expected),
        }
    }
}

/// The one of `names` that `given` most likely misspells, if one is close: at most two
/// edits away (one for names of up to four letters), or a name `given` begins (`sec` for
/// `seconds`). The one rule every "did you mean" of statsfs uses (units, aggregations,
/// the derive's attribute keys).
///
/// ```
/// use statsfs_core::desc::closest;
/// let keys = ["unit", "kind", "aggregate", "rename"];
/// assert_eq!(closest("units", &keys), Some("unit"));
/// assert_eq!(closest("agregate", &keys), Some("aggregate"));
/// assert_eq!(closest("kidn", &keys), Some("kind"));
/// assert_eq!(closest("prefix", &keys), None);
/// ```
pub fn closest<'n>(given: &str, names: &[&'n str]) -> Option<&'n str> {
    let given = given.to_ascii_lowercase();
    let mut best: Option<(usize, &'n str)> = None;
    for &name in names {
        let d = edit_distance(&given, name);
        let limit = if name.len() <= 4 { 1 } else { 2 };
        let prefix = given.len() >= 3 && name.starts_with(&given);
        if (d <= limit || prefix) && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, name));
        }
    }
    best.map(|(_, n)| n)
}

/// Edits (insert, delete, replace, or swap two neighbours) from `a` to `b`, by characters
/// (the optimal string alignment distance).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: edits from a[..i] to b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

impl std::error::Error for UnknownName {}

/// The base of a value's scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    /// Powers of ten (nanoseconds: base 10, exponent -9).
    Ten,
    /// Powers of two (MiB: base 2, exponent 20).
    Two,
}

impl Base {
    /// The kernel's code for this base (bits 8-11 of a binary descriptor's flags).
    pub const fn code(self) -> u32 {
        match self {
            Self::Ten => 0,
            Self::Two => 1,
        }
    }

    /// The base whose code is `code`; `None` for an unknown code. The inverse of
    /// [`code`](Self::code).
    pub const fn from_code(code: u32) -> Option<Base> {
        match code {
            0 => Some(Self::Ten),
            1 => Some(Self::Two),
            _ => None,
        }
    }

    /// The number itself: 10 or 2.
    pub const fn radix(self) -> u32 {
        match self {
            Self::Ten => 10,
            Self::Two => 2,
        }
    }
}

/// The scale of a value: the stored number times `base ^ exponent` is the quantity in
/// the unit (a count of nanoseconds is seconds with base 10 and exponent -9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scale {
    /// The base.
    pub base: Base,
    /// The signed exponent.
    pub exponent: i16,
}

impl Scale {
    /// No scaling: base 10, exponent 0.
    pub const ONE: Scale = Scale {
        base: Base::Ten,
        exponent: 0,
    };
    /// Nanoseconds (with [`Unit::Seconds`]).
    pub const NANO: Scale = Scale {
        base: Base::Ten,
        exponent: -9,
    };
    /// Microseconds (with [`Unit::Seconds`]).
    pub const MICRO: Scale = Scale {
        base: Base::Ten,
        exponent: -6,
    };
    /// Kibibytes (with [`Unit::Bytes`]).
    pub const KIB: Scale = Scale {
        base: Base::Two,
        exponent: 10,
    };
    /// Mebibytes (with [`Unit::Bytes`]).
    pub const MIB: Scale = Scale {
        base: Base::Two,
        exponent: 20,
    };
}

/// How a value folds over every matching simple value of a subtree
/// (`docs/MODEL.md#aggregation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregation {
    /// Wrapping sum; 0 over no values.
    Sum,
    /// Smallest; `i64::MAX` (signed) or `u64::MAX` (unsigned) over no values.
    Min,
    /// Largest; `i64::MIN` (signed) or 0 (unsigned) over no values.
    Max,
    /// Sum over count of the leaf values; 0 over no values.
    Avg,
    /// How many values are 0.
    CountZero,
    /// A plain value, never aggregated: an aggregate group shows no such value.
    None,
}

impl Aggregation {
    /// Every aggregation.
    pub const ALL: [Aggregation; 6] = [
        Aggregation::Sum,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Avg,
        Aggregation::CountZero,
        Aggregation::None,
    ];

    /// The lower-case name used in attributes and documentation.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
            Self::Avg => "avg",
            Self::CountZero => "count_zero",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for Aggregation {
    type Err = UnknownName;

    /// The aggregation [`as_str`](Self::as_str) names (`"count_zero"`); the attribute's
    /// spelling.
    ///
    /// ```
    /// use statsfs_core::Aggregation;
    /// assert_eq!("count_zero".parse::<Aggregation>(), Ok(Aggregation::CountZero));
    /// assert!("mean".parse::<Aggregation>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Aggregation, UnknownName> {
        let all = Aggregation::ALL.map(Aggregation::as_str);
        Aggregation::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownName::new("aggregation", s, &all))
    }
}

/// How the bytes of a value are laid out in its struct; the one thing the raw reader
/// switches on. Set by the field's cell type, never by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// One atomic integer of the descriptor's [`ValueType`].
    Atomic,
    /// `size` consecutive `AtomicU64` buckets (the histogram cells).
    Buckets,
    /// A [`ShardedCounter`](crate::cell::ShardedCounter), summed on read.
    Sharded,
    /// A runtime value: `size` u64 words at word `offset / 8` of a block that the value
    /// group's [`BlockSource`](crate::BlockSource) fills.
    Block,
}

/// The static description of one statistic.
///
/// ```
/// use statsfs_core::{Descriptor, Kind, Unit, Scale, Aggregation, ValueType};
/// const EXITS: Descriptor = Descriptor::new("exits", ValueType::U64, Kind::Cumulative)
///     .with_doc("Number of guest exits");
/// assert!(EXITS.clearable);
/// assert_eq!(EXITS.aggregation, Aggregation::Sum);
///
/// const HALT_NS: Descriptor = Descriptor::new("halt_ns", ValueType::U64, Kind::Cumulative)
///     .with_unit(Unit::Seconds, Scale::NANO);
/// assert_eq!(HALT_NS.scale.exponent, -9);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// The name: a file name in the mount, a metric name suffix in OpenMetrics.
    pub name: &'static str,
    /// A one-line description (the field's doc comment).
    pub doc: &'static str,
    /// Byte offset of the value in its struct (for [`Storage::Block`]: in the block).
    pub offset: usize,
    /// How the value is stored.
    pub storage: Storage,
    /// The integer type of the value (of each bucket, for histograms: `U64`).
    pub ty: ValueType,
    /// How many u64 words the value reads as: 1, or the number of buckets.
    pub size: u16,
    /// Cumulative, instant, peak or a histogram.
    pub kind: Kind,
    /// The unit.
    pub unit: Unit,
    /// The scale.
    pub scale: Scale,
    /// How the value aggregates.
    pub aggregation: Aggregation,
    /// Whether writing 0 clears it (file mode 0644 rather than 0444).
    pub clearable: bool,
    /// Hidden values have no file but are still readable and aggregated.
    pub hidden: bool,
    /// For an enum-valued stat (a state such as a vCPU's `mp_state`), the name of each
    /// value: the text view shows `names[v]` instead of `v` (a value past the end shows
    /// as its number). Empty for ordinary stats. Binary and OpenMetrics readers see the
    /// number.
    pub names: &'static [&'static str],
    /// For a member of a dimensional family (one cell of an array field indexed by an
    /// enum or a number), the family's label name (`reason`); empty otherwise. The
    /// member's name is the family's name, `_`, and its
    /// [`label_value`](Self::label_value) (`exits_hlt`); see [`family`](Self::family).
    pub label: &'static str,
    /// The length of the label value at the end of the name (`u16::MAX`: a value that
    /// does not end the name, which [`check`](Self::check) refuses). Kept as a length so
    /// that a descriptor stays 96 bytes: walks go over thousands of them.
    label_len: u16,
    /// What the value is besides a stat of its own ([`Role`]).
    pub role: Role,
}

/// What a descriptor is besides a value of its own: most are [`Role::Value`]; the derive
/// makes the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Role {
    /// A value.
    #[default]
    Value,
    /// The sum of the samples of the histogram described just before it (a histogram
    /// cell with [`WithSum`](crate::cell::WithSum)): a cumulative value of its own in the
    /// files and the binary layout, the `_sum` of the histogram in OpenMetrics.
    HistogramSum,
    /// Another aggregation of a value described before it, at the same place
    /// (`#[stat(aggregate = [sum, avg])]`): offered by aggregate groups only, since a
    /// simple group's value is the one before it.
    AggregateOnly,
}

impl Descriptor {
    /// A scalar descriptor at offset 0 with the defaults of `kind`: clearable unless
    /// instant, aggregated by [`Aggregation::Sum`] (by [`Aggregation::Max`] for peaks),
    /// unit none (boolean for `bool`), no scale, no description.
    pub const fn new(name: &'static str, ty: ValueType, kind: Kind) -> Self {
        Descriptor {
            name,
            doc: "",
            offset: 0,
            storage: Storage::Atomic,
            ty,
            size: 1,
            kind,
            unit: if matches!(ty, ValueType::Bool) {
                Unit::Boolean
            } else {
                Unit::None
            },
            scale: Scale::ONE,
            aggregation: if matches!(kind, Kind::Peak) {
                Aggregation::Max
            } else {
                Aggregation::Sum
            },
            clearable: kind.clearable_by_default(),
            hidden: false,
            names: &[],
            label: "",
            label_len: 0,
            role: Role::Value,
        }
    }

    /// This descriptor under another name.
    pub const fn with_name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// This descriptor as the member of a family: its label name and value, which must
    /// end its name after a `_` (`exits_hlt` is `hlt` of `exits`; [`check`](Self::check)
    /// refuses a value that does not).
    pub const fn with_label(mut self, label: &'static str, value: &'static str) -> Self {
        self.label = label;
        self.label_len = if ends_with_member(self.name, value) && value.len() < u16::MAX as usize {
            value.len() as u16
        } else {
            u16::MAX
        };
        self
    }

    /// For a member of a family, its label value (`hlt`, `3`): the end of its name;
    /// empty otherwise.
    pub const fn label_value(&self) -> &'static str {
        let n = self.name.as_bytes();
        let len = self.label_len as usize;
        if self.label.is_empty() || len == u16::MAX as usize || len >= n.len() {
            return "";
        }
        let (_, v) = self.name.as_bytes().split_at(n.len() - len);
        match core::str::from_utf8(v) {
            Ok(v) => v,
            Err(_) => "",
        }
    }

    /// This descriptor with another [`Role`].
    pub const fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// For a member of a dimensional family, the family's name (the member's name
    /// without `_` and its label value), its label name and its label value; `None` for
    /// a value of its own.
    ///
    /// ```
    /// use statsfs_core::{Descriptor, Kind, ValueType};
    /// let hlt = Descriptor::new("exits_hlt", ValueType::U64, Kind::Cumulative)
    ///     .with_label("reason", "hlt");
    /// assert_eq!(hlt.family(), Some(("exits", "reason", "hlt")));
    /// ```
    pub const fn family(&self) -> Option<(&'static str, &'static str, &'static str)> {
        let value = self.label_value();
        if value.is_empty() {
            return None;
        }
        let (head, _) = self
            .name
            .as_bytes()
            .split_at(self.name.len() - value.len() - 1);
        match core::str::from_utf8(head) {
            Ok(family) => Some((family, self.label, value)),
            Err(_) => None,
        }
    }

    /// This descriptor with a description.
    pub const fn with_doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// This descriptor at another byte offset.
    pub const fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// This descriptor with another storage and word count.
    pub const fn with_storage(mut self, storage: Storage, size: u16) -> Self {
        self.storage = storage;
        self.size = size;
        self
    }

    /// This descriptor with a unit and scale.
    pub const fn with_unit(mut self, unit: Unit, scale: Scale) -> Self {
        self.unit = unit;
        self.scale = scale;
        self
    }

    /// This descriptor with a scale, keeping its unit.
    pub const fn with_scale(mut self, scale: Scale) -> Self {
        self.scale = scale;
        self
    }

    /// This descriptor with another aggregation.
    pub const fn with_aggregation(mut self, aggregation: Aggregation) -> Self {
        self.aggregation = aggregation;
        self
    }

    /// What an aggregate of this value is: a count of zeros counts (no unit, scale one),
    /// and so does a sum of booleans (how many are true); any other fold keeps the
    /// value's unit. Every view describes an aggregate by this (`docs/MODEL.md#aggregation`).
    ///
    /// ```
    /// use statsfs_core::{Aggregation, Descriptor, Kind, Scale, Unit, ValueType};
    /// let running = Descriptor::new("running", ValueType::U8, Kind::Instant)
    ///     .with_unit(Unit::Boolean, Scale::ONE);
    /// assert_eq!(running.folded().unit, Unit::None);
    /// let idle = Descriptor::new("idle_ns", ValueType::U64, Kind::Instant)
    ///     .with_unit(Unit::Seconds, Scale::NANO)
    ///     .with_aggregation(Aggregation::CountZero);
    /// assert_eq!((idle.folded().unit, idle.folded().scale), (Unit::None, Scale::ONE));
    /// let max = running.with_aggregation(Aggregation::Max);
    /// assert_eq!(max.folded().unit, Unit::Boolean);
    /// ```
    pub const fn folded(mut self) -> Self {
        if self.folds_to_count() {
            self.unit = Unit::None;
            self.scale = Scale::ONE;
        }
        self
    }

    /// Whether an aggregate of this value is a count of another unit than the value's
    /// (then [`folded`](Self::folded) differs from it).
    #[inline]
    pub const fn folds_to_count(&self) -> bool {
        match self.aggregation {
            Aggregation::CountZero => !matches!(self.unit, Unit::None) || self.scale.exponent != 0,
            Aggregation::Sum => matches!(self.unit, Unit::Boolean),
            _ => false,
        }
    }

    /// Whether an aggregate keeps this value of a source that retires
    /// ([`Source::retire_subordinate`](crate::Source::retire_subordinate)), so that the
    /// aggregate never goes backwards: a cumulative value or a histogram summed, a peak
    /// folded by its maximum. Instant values, and folds that are no total (min, average,
    /// count of zeros), just lose the source (`docs/MODEL.md#retiring`).
    ///
    /// ```
    /// use statsfs_core::{Aggregation, Descriptor, Kind, ValueType};
    /// let exits = Descriptor::new("exits", ValueType::U64, Kind::Cumulative);
    /// assert!(exits.retains());
    /// assert!(!exits.with_aggregation(Aggregation::Avg).retains());
    /// assert!(!Descriptor::new("queued", ValueType::U32, Kind::Instant).retains());
    /// assert!(Descriptor::new("depth_max", ValueType::U32, Kind::Peak).retains());
    /// ```
    pub const fn retains(&self) -> bool {
        match self.kind {
            Kind::Cumulative | Kind::LinearHistogram { .. } | Kind::LogHistogram => {
                matches!(self.aggregation, Aggregation::Sum)
            }
            Kind::Peak => matches!(self.aggregation, Aggregation::Max),
            Kind::Instant => false,
        }
    }

    /// This descriptor, clearable or read-only.
    pub const fn with_clearable(mut self, clearable: bool) -> Self {
        self.clearable = clearable;
        self
    }

    /// This descriptor, hidden or not.
    pub const fn with_hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// This descriptor with names for its values (an enum-valued stat).
    pub const fn with_names(mut self, names: &'static [&'static str]) -> Self {
        self.names = names;
        self
    }

    /// The name of value `v`, for an enum-valued stat.
    pub fn name_of(&self, v: u64) -> Option<&'static str> {
        usize::try_from(v)
            .ok()
            .and_then(|i| self.names.get(i))
            .copied()
    }

    /// The bucket width of a linear histogram, else 0 (the binary layout's
    /// `bucket_size`).
    pub const fn bucket_size(&self) -> u32 {
        self.kind.bucket_size()
    }

    /// Checks every rule a descriptor must keep, as the kernel's layout test and
    /// `docs/MODEL.md#rules` state them; `Err` says which [`Rule`] is broken. Usable in
    /// `const` context: derived schemas are checked at compile time.
    ///
    /// ```
    /// use statsfs_core::desc::Rule;
    /// use statsfs_core::{Descriptor, Kind, ValueType};
    /// let d = Descriptor::new("depth", ValueType::U32, Kind::Instant).with_clearable(true);
    /// assert_eq!(d.check(), Err(Rule::InstantNotClearable));
    /// ```
    pub const fn check(&self) -> Result<(), Rule> {
        if self.name.is_empty() {
            return Err(Rule::EmptyName);
        }
        if !valid_name(self.name) {
            return Err(Rule::NotAFileName);
        }
        if self.size == 0 {
            return Err(Rule::NoWords);
        }
        let hist = self.kind.is_histogram();
        match self.storage {
            Storage::Atomic | Storage::Sharded if hist || self.size != 1 => {
                return Err(Rule::ScalarCellIsOneWord);
            }
            Storage::Buckets if !hist => {
                return Err(Rule::HistogramCellNeedsHistogramKind);
            }
            _ => {}
        }
        if let Kind::LinearHistogram { bucket_size: 0 } = self.kind {
            return Err(Rule::ZeroBucketWidth);
        }
        if !self.unit.exponent_allowed(self.scale.exponent) {
            return Err(Rule::Exponent(self.unit));
        }
        let two_bucket_linear = matches!(self.kind, Kind::LinearHistogram { .. }) && self.size == 2;
        if matches!(self.unit, Unit::Boolean)
            && !matches!(self.kind, Kind::Instant | Kind::Peak)
            && !two_bucket_linear
        {
            return Err(Rule::BooleanKind);
        }
        if matches!(self.ty, ValueType::Bool) && matches!(self.aggregation, Aggregation::Avg) {
            return Err(Rule::AverageOfBool);
        }
        if hist && !matches!(self.aggregation, Aggregation::Sum | Aggregation::None) {
            return Err(Rule::HistogramAggregation);
        }
        if !self.names.is_empty()
            && (!matches!(self.kind, Kind::Instant)
                || matches!(self.ty, ValueType::Bool)
                || self.ty.is_signed())
        {
            return Err(Rule::NamesNeedAState);
        }
        if self.clearable && matches!(self.kind, Kind::Instant) {
            return Err(Rule::InstantNotClearable);
        }
        if (!self.label.is_empty() || self.label_len != 0)
            && (!valid_label_name(self.label)
                || str_eq(self.label, "le")
                || str_eq(self.label, "retired")
                || self.label_value().is_empty()
                || has_control(self.label_value())
                || !ends_with_member(self.name, self.label_value()))
        {
            return Err(Rule::FamilyMember);
        }
        match self.role {
            Role::HistogramSum
                if !matches!(self.kind, Kind::Cumulative) || !matches!(self.ty, ValueType::U64) =>
            {
                return Err(Rule::HistogramSumKind)
            }
            Role::AggregateOnly if matches!(self.aggregation, Aggregation::None) => {
                return Err(Rule::AggregateOnlyNone)
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether two strings are equal, in `const` context.
pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
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

/// Whether `name` is a family's name (at least one byte), `_` and `value`.
const fn ends_with_member(name: &str, value: &str) -> bool {
    let (n, v) = (name.as_bytes(), value.as_bytes());
    if n.len() < v.len() + 2 || n[n.len() - v.len() - 1] != b'_' {
        return false;
    }
    let mut i = 0;
    while i < v.len() {
        if n[n.len() - v.len() + i] != v[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A rule every descriptor keeps (`docs/MODEL.md#rules`), broken: what
/// [`Descriptor::check`] returns, and what the derive reports on the span that broke it
/// (with a hint of how to mend it). [`message`](Self::message) is the rule in one
/// sentence, the same wherever it is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The name is empty.
    EmptyName,
    /// The name is not a file name ([`valid_name`]).
    NotAFileName,
    /// The size is 0 words.
    NoWords,
    /// A scalar cell (an atomic, a sharded counter) with a histogram kind or more than
    /// one word.
    ScalarCellIsOneWord,
    /// A histogram cell with a scalar kind.
    HistogramCellNeedsHistogramKind,
    /// A linear histogram whose buckets are 0 wide.
    ZeroBucketWidth,
    /// An exponent the unit does not take ([`Unit::exponent_allowed`]).
    Exponent(Unit),
    /// A boolean that is cumulative, or a histogram other than two linear buckets.
    BooleanKind,
    /// The average of a bool.
    AverageOfBool,
    /// A histogram aggregated otherwise than by sum or not at all.
    HistogramAggregation,
    /// Value names on a stat that is not an instant unsigned integer (a state).
    NamesNeedAState,
    /// A clearable instant value.
    InstantNotClearable,
    /// A family member whose label name is no label name, whose label value is empty or
    /// has a control character, or whose name is not its family's name, `_` and its
    /// label value.
    FamilyMember,
    /// A histogram sum that is not a cumulative `u64`.
    HistogramSumKind,
    /// A second aggregation (`Role::AggregateOnly`) that aggregates by `none`.
    AggregateOnlyNone,
}

impl Rule {
    /// The rule in one sentence.
    pub const fn message(self) -> &'static str {
        match self {
            Rule::EmptyName => "a stat name must not be empty",
            Rule::NotAFileName => {
                "a stat name must be a file name: not empty, not `.` or `..`, no `/` or control character"
            }
            Rule::NoWords => "a stat must have at least one word (size 0)",
            Rule::ScalarCellIsOneWord => {
                "histogram kinds need a histogram cell; a scalar cell reads as one word"
            }
            Rule::HistogramCellNeedsHistogramKind => "a histogram cell needs a histogram kind",
            Rule::ZeroBucketWidth => "a linear histogram needs a bucket width greater than 0",
            Rule::Exponent(Unit::None | Unit::Bytes | Unit::Cycles) => {
                "counts, bytes and cycles take an exponent >= 0"
            }
            Rule::Exponent(Unit::Seconds) => "seconds take an exponent <= 0",
            Rule::Exponent(Unit::Boolean) => "a boolean takes exponent 0",
            Rule::BooleanKind => "a boolean is instant or peak (or a two-bucket linear histogram)",
            Rule::AverageOfBool => {
                "the average of a bool makes no sense; use sum (how many are true) or count_zero (how many are false)"
            }
            Rule::HistogramAggregation => {
                "histograms aggregate bucket by bucket with sum (or none)"
            }
            Rule::NamesNeedAState => {
                "value names are for instant unsigned integer stats: a state such as mp_state"
            }
            Rule::InstantNotClearable => {
                "an instant value measures the present and cannot be cleared"
            }
            Rule::FamilyMember => {
                "a family member is named <family>_<label value>, with a label name of letters, digits and `_` (not `le` or `retired`, which the exposition uses) and a label value without control characters"
            }
            Rule::HistogramSumKind => "a histogram's sum is a cumulative u64",
            Rule::AggregateOnlyNone => "a second aggregation of a value cannot be `none`",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Rule {}

/// Whether `key` is a Prometheus label name that users may set:
/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved by Prometheus).
pub const fn valid_label_name(key: &str) -> bool {
    let b = key.as_bytes();
    if b.is_empty() || (b.len() >= 2 && b[0] == b'_' && b[1] == b'_') {
        return false;
    }
    if b[0].is_ascii_digit() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `name` can be a file name: not empty, not `.` or `..`, no `/` and no control
/// character (C0, NUL included, DEL or C1: a name reaches terminals through every view,
/// and one of those would reach them as a command).
///
/// ```
/// use statsfs_core::desc::valid_name;
/// assert!(valid_name("halt_poll_ns"));
/// assert!(!valid_name("a/b") && !valid_name(".."));
/// assert!(!valid_name("\x1b]0;title\x07") && !valid_name("x\u{9b}31m"));
/// ```
pub const fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty()
        || (b.len() == 1 && b[0] == b'.')
        || (b.len() == 2 && b[0] == b'.' && b[1] == b'.')
    {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' {
            return false;
        }
        i += 1;
    }
    !has_control(name)
}

/// Whether `text` holds a control character: C0 (NUL to U+001F), DEL or C1 (U+0080 to
/// U+009F).
pub const fn has_control(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // C1 characters are 0xC2 0x80..=0x9F in UTF-8.
        if b[i] < 0x20 || b[i] == 0x7f || (b[i] == 0xc2 && i + 1 < b.len() && b[i + 1] < 0xa0) {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_kind() {
        let c = Descriptor::new("c", ValueType::U64, Kind::Cumulative);
        assert!(c.clearable);
        let g = Descriptor::new("g", ValueType::I32, Kind::Instant);
        assert!(!g.clearable);
        let p = Descriptor::new("p", ValueType::U64, Kind::Peak);
        assert_eq!(p.aggregation, Aggregation::Max);
        let b = Descriptor::new("b", ValueType::Bool, Kind::Instant);
        assert_eq!(b.unit, Unit::Boolean);
        for d in [c, g, p, b] {
            assert_eq!(d.check(), Ok(()));
        }
    }

    #[test]
    fn check_names_the_broken_rule() {
        let d = Descriptor::new("a/b", ValueType::U64, Kind::Cumulative);
        assert_eq!(d.check(), Err(Rule::NotAFileName));
        let d = Descriptor::new("t", ValueType::U64, Kind::Cumulative).with_unit(
            Unit::Seconds,
            Scale {
                base: Base::Ten,
                exponent: 3,
            },
        );
        assert_eq!(d.check(), Err(Rule::Exponent(Unit::Seconds)));
        let d =
            Descriptor::new("t", ValueType::Bool, Kind::Instant).with_aggregation(Aggregation::Avg);
        assert_eq!(d.check(), Err(Rule::AverageOfBool));
        let d = Descriptor::new("t", ValueType::U64, Kind::Instant).with_clearable(true);
        assert_eq!(d.check(), Err(Rule::InstantNotClearable));
        let d = Descriptor::new(
            "t",
            ValueType::U64,
            Kind::LinearHistogram { bucket_size: 0 },
        )
        .with_storage(Storage::Buckets, 4);
        assert_eq!(d.check(), Err(Rule::ZeroBucketWidth));
        assert!(!valid_name(".."));
        assert!(!valid_name(""));
        assert!(valid_name("halt_poll_ns"));
    }
}
