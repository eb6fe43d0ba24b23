//! The layout itself: constants, the header, and the encoder ([`Layout`]).
//!
//! A [`Layout`] is computed once per schema (an id string and a list of [`Entry`]s) and
//! holds the encoded *schema part* of the blob (header, id string, descriptors), which
//! never changes. Producing a blob is then copying the schema part once and, on every
//! refresh, writing the data words at [`Layout::data_offset`]: a straight copy of a
//! `&[u64]`, with no allocation and no per-value formatting.

use core::fmt;
use core::ops::Range;

use crate::desc::{Base, Descriptor, Kind, Scale, Unit};

/// Size in bytes of the header (`struct kvm_stats_header`): six `u32` fields.
pub const HEADER_SIZE: usize = 24;

/// Size in bytes of the fixed part of a descriptor (`struct kvm_stats_desc` without its
/// name): `flags`, `exponent`, `size`, `offset`, `bucket_size`.
pub const DESC_FIXED_SIZE: usize = 16;

/// The smallest `name_size` a [`Layout`] uses, the kernel's `KVM_STATS_NAME_SIZE`.
pub const DEFAULT_NAME_SIZE: u32 = 48;

/// Every block starts on a multiple of this many bytes, and `name_size` is a multiple
/// of it.
pub const ALIGN: usize = 8;

/// Size in bytes of one data word.
pub const WORD_SIZE: usize = 8;

/// Position of the kind (the kernel's "type") in a descriptor's `flags`: bits 0-3.
pub const KIND_SHIFT: u32 = 0;
/// Mask of the kind bits in a descriptor's `flags`.
pub const KIND_MASK: u32 = 0xF << KIND_SHIFT;
/// The largest kind code (log histogram).
pub const KIND_MAX: u32 = 4;
/// Kind code of [`Kind::Cumulative`].
pub const KIND_CUMULATIVE: u32 = 0;
/// Kind code of [`Kind::Instant`].
pub const KIND_INSTANT: u32 = 1;
/// Kind code of [`Kind::Peak`].
pub const KIND_PEAK: u32 = 2;
/// Kind code of [`Kind::LinearHistogram`].
pub const KIND_LINEAR_HISTOGRAM: u32 = 3;
/// Kind code of [`Kind::LogHistogram`].
pub const KIND_LOG_HISTOGRAM: u32 = 4;

/// Position of the unit in a descriptor's `flags`: bits 4-7.
pub const UNIT_SHIFT: u32 = 4;
/// Mask of the unit bits in a descriptor's `flags`.
pub const UNIT_MASK: u32 = 0xF << UNIT_SHIFT;
/// The largest unit code (boolean).
pub const UNIT_MAX: u32 = 4;
/// Unit code of [`Unit::None`].
pub const UNIT_NONE: u32 = 0;
/// Unit code of [`Unit::Bytes`].
pub const UNIT_BYTES: u32 = 1;
/// Unit code of [`Unit::Seconds`].
pub const UNIT_SECONDS: u32 = 2;
/// Unit code of [`Unit::Cycles`].
pub const UNIT_CYCLES: u32 = 3;
/// Unit code of [`Unit::Boolean`].
pub const UNIT_BOOLEAN: u32 = 4;

/// Position of the base in a descriptor's `flags`: bits 8-11.
pub const BASE_SHIFT: u32 = 8;
/// Mask of the base bits in a descriptor's `flags`.
pub const BASE_MASK: u32 = 0xF << BASE_SHIFT;
/// The largest base code (powers of two).
pub const BASE_MAX: u32 = 1;
/// Base code of [`Base::Ten`].
pub const BASE_POW10: u32 = 0;
/// Base code of [`Base::Two`].
pub const BASE_POW2: u32 = 1;

/// Every defined bit of a descriptor's `flags` (kind, unit, base); the others are 0.
pub const FLAGS_DEFINED: u32 = KIND_MASK | UNIT_MASK | BASE_MASK;

/// The largest `name_size` accepted (statsfs's own bound, so that a hostile header
/// cannot make a reader allocate without limit): the id or a name is at most 4095 bytes.
pub const MAX_NAME_SIZE: u32 = 4096;

/// The largest `num_desc` accepted (statsfs's own bound).
pub const MAX_NUM_DESC: u32 = 1 << 22;

/// The largest descriptor block accepted, in bytes (statsfs's own bound): 256 MiB.
pub const MAX_DESC_BLOCK_LEN: u64 = 256 << 20;

/// The largest data block accepted, in bytes (statsfs's own bound): 256 MiB, 32 Mi words.
pub const MAX_DATA_LEN: u64 = 256 << 20;

// Byte offsets of the header fields.
pub(crate) const H_FLAGS: usize = 0;
pub(crate) const H_NAME_SIZE: usize = 4;
pub(crate) const H_NUM_DESC: usize = 8;
pub(crate) const H_ID_OFFSET: usize = 12;
pub(crate) const H_DESC_OFFSET: usize = 16;
pub(crate) const H_DATA_OFFSET: usize = 20;

// Byte offsets of the descriptor fields, from the start of the descriptor.
pub(crate) const D_FLAGS: usize = 0;
pub(crate) const D_EXPONENT: usize = 4;
pub(crate) const D_SIZE: usize = 6;
pub(crate) const D_OFFSET: usize = 8;
pub(crate) const D_BUCKET_SIZE: usize = 12;
pub(crate) const D_NAME: usize = 16;

/// The blocks of the layout, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Block {
    /// The 24-byte header at offset 0.
    Header,
    /// The id string, `name_size` bytes at `id_offset`.
    Id,
    /// The descriptors, `num_desc * (16 + name_size)` bytes at `desc_offset`.
    Descriptors,
    /// The data words at `data_offset`.
    Data,
}

impl Block {
    /// How the block is named in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Id => "id string",
            Self::Descriptors => "descriptor block",
            Self::Data => "data block",
        }
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The header (`struct kvm_stats_header`), 24 bytes at offset 0, fields in native
/// byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// Always 0.
    pub flags: u32,
    /// Bytes reserved for the id string and for each descriptor's name, NUL included;
    /// a nonzero multiple of 8.
    pub name_size: u32,
    /// Number of descriptors.
    pub num_desc: u32,
    /// Byte offset of the id string.
    pub id_offset: u32,
    /// Byte offset of the first descriptor.
    pub desc_offset: u32,
    /// Byte offset of the data block.
    pub data_offset: u32,
}

impl Header {
    /// The header as it is stored: six native-endian `u32`s.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let fields = [
            (H_FLAGS, self.flags),
            (H_NAME_SIZE, self.name_size),
            (H_NUM_DESC, self.num_desc),
            (H_ID_OFFSET, self.id_offset),
            (H_DESC_OFFSET, self.desc_offset),
            (H_DATA_OFFSET, self.data_offset),
        ];
        for (at, v) in fields {
            b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }

    /// Reads the six fields, checking nothing (see
    /// [`Header::validate`](crate::binary::Header::validate)).
    pub fn from_bytes(bytes: &[u8; HEADER_SIZE]) -> Header {
        let f = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[at..at + 4]);
            u32::from_ne_bytes(w)
        };
        Header {
            flags: f(H_FLAGS),
            name_size: f(H_NAME_SIZE),
            num_desc: f(H_NUM_DESC),
            id_offset: f(H_ID_OFFSET),
            desc_offset: f(H_DESC_OFFSET),
            data_offset: f(H_DATA_OFFSET),
        }
    }

    /// Size in bytes of one descriptor: `16 + name_size`.
    pub const fn desc_size(&self) -> u64 {
        DESC_FIXED_SIZE as u64 + self.name_size as u64
    }

    /// Size in bytes of the descriptor block: `num_desc * (16 + name_size)`
    /// (saturating at `u64::MAX`, which no valid header comes near).
    pub const fn desc_block_len(&self) -> u64 {
        (self.num_desc as u64).saturating_mul(self.desc_size())
    }
}

/// The `flags` word of a descriptor: kind in bits 0-3, unit in bits 4-7, base in bits
/// 8-11, every other bit 0.
pub const fn pack_flags(kind: Kind, unit: Unit, base: Base) -> u32 {
    (kind.code() << KIND_SHIFT) | (unit.code() << UNIT_SHIFT) | (base.code() << BASE_SHIFT)
}

/// Whether `exponent` is allowed with `unit`, as the kernel's test checks it: `>= 0` for
/// none, bytes and cycles, `<= 0` for seconds, `== 0` for boolean.
pub const fn exponent_allowed(unit: Unit, exponent: i16) -> bool {
    match unit {
        Unit::None | Unit::Bytes | Unit::Cycles => exponent >= 0,
        Unit::Seconds => exponent <= 0,
        Unit::Boolean => exponent == 0,
    }
}

/// What the exponent of `unit` must be, for messages.
pub(crate) const fn exponent_rule(unit: Unit) -> &'static str {
    match unit {
        Unit::None | Unit::Bytes | Unit::Cycles => ">= 0",
        Unit::Seconds => "<= 0",
        Unit::Boolean => "0",
    }
}

/// One stat of a [`Layout`]: everything its descriptor says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry<'a> {
    /// The name; not empty, no NUL, at most [`MAX_NAME_SIZE`]` - 1` bytes.
    pub name: &'a str,
    /// The kind; a linear histogram carries its `bucket_size`.
    pub kind: Kind,
    /// The unit.
    pub unit: Unit,
    /// The base and exponent.
    pub scale: Scale,
    /// How many `u64` words: 1, or the number of buckets. Never 0.
    pub size: u16,
}

impl<'a> Entry<'a> {
    /// An entry from its parts.
    pub const fn new(name: &'a str, kind: Kind, unit: Unit, scale: Scale, size: u16) -> Self {
        Entry {
            name,
            kind,
            unit,
            scale,
            size,
        }
    }

    /// A one-word cumulative count with no unit (the most common stat).
    pub const fn counter(name: &'a str) -> Self {
        Entry::new(name, Kind::Cumulative, Unit::None, Scale::ONE, 1)
    }

    /// The descriptor `flags` word of this entry.
    pub const fn flags(&self) -> u32 {
        pack_flags(self.kind, self.unit, self.scale.base)
    }

    /// The `bucket_size` field: the bucket width of a linear histogram, else 0.
    pub const fn bucket_size(&self) -> u32 {
        match self.kind {
            Kind::LinearHistogram { bucket_size } => bucket_size,
            _ => 0,
        }
    }
}

impl From<&Descriptor> for Entry<'static> {
    fn from(d: &Descriptor) -> Self {
        Entry::new(d.name, d.kind, d.unit, d.scale, d.size)
    }
}

impl From<Descriptor> for Entry<'static> {
    fn from(d: Descriptor) -> Self {
        Entry::from(&d)
    }
}

/// Why a [`Layout`] cannot be built or written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// The id string contains a NUL byte.
    IdContainsNul,
    /// The id string is longer than any `name_size` allows.
    IdTooLong {
        /// Its length in bytes.
        len: usize,
        /// The longest allowed.
        max: usize,
    },
    /// An entry's name is empty.
    EmptyName {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's name contains a NUL byte.
    NameContainsNul {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's name is longer than any `name_size` allows.
    NameTooLong {
        /// Index of the entry.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The longest allowed.
        max: usize,
    },
    /// An entry has `size` 0.
    ZeroSize {
        /// Index of the entry.
        index: usize,
    },
    /// A linear histogram entry has bucket width 0.
    ZeroBucketSize {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's exponent does not suit its unit.
    BadExponent {
        /// Index of the entry.
        index: usize,
        /// The unit.
        unit: Unit,
        /// The exponent.
        exponent: i16,
    },
    /// More entries than [`MAX_NUM_DESC`].
    TooManyEntries {
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: u32,
    },
    /// The descriptor block would exceed [`MAX_DESC_BLOCK_LEN`].
    DescBlockTooLarge {
        /// Its length in bytes.
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The data block would exceed [`MAX_DATA_LEN`].
    DataBlockTooLarge {
        /// Its length in bytes.
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The number of data words given is not the number the layout holds.
    WordCount {
        /// The number the layout (or the entry) holds.
        expected: usize,
        /// The number given.
        got: usize,
    },
    /// The buffer is shorter than the part of the blob to be written.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// No entry has this index.
    NoSuchEntry {
        /// The index asked for.
        index: usize,
        /// How many entries there are.
        count: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IdContainsNul => f.write_str("the id string contains a NUL byte"),
            Self::IdTooLong { len, max } => {
                write!(f, "the id string is {len} bytes long; at most {max} fit")
            }
            Self::EmptyName { index } => write!(f, "entry {index}: the name is empty"),
            Self::NameContainsNul { index } => {
                write!(f, "entry {index}: the name contains a NUL byte")
            }
            Self::NameTooLong { index, len, max } => {
                write!(
                    f,
                    "entry {index}: the name is {len} bytes long; at most {max} fit"
                )
            }
            Self::ZeroSize { index } => {
                write!(f, "entry {index}: size is 0; a stat has at least one word")
            }
            Self::ZeroBucketSize { index } => {
                write!(
                    f,
                    "entry {index}: a linear histogram needs a bucket size > 0"
                )
            }
            Self::BadExponent {
                index,
                unit,
                exponent,
            } => write!(
                f,
                "entry {index}: exponent {exponent} with unit {}; it must be {}",
                unit.as_str(),
                exponent_rule(unit)
            ),
            Self::TooManyEntries { count, max } => {
                write!(f, "{count} entries; at most {max} are allowed")
            }
            Self::DescBlockTooLarge { len, max } => {
                write!(
                    f,
                    "the descriptor block would be {len} bytes; at most {max} are allowed"
                )
            }
            Self::DataBlockTooLarge { len, max } => {
                write!(
                    f,
                    "the data block would be {len} bytes; at most {max} are allowed"
                )
            }
            Self::WordCount { expected, got } => {
                write!(f, "{got} data words given; the layout holds {expected}")
            }
            Self::BufferTooSmall { needed, got } => {
                write!(f, "the buffer holds {got} bytes; {needed} are needed")
            }
            Self::NoSuchEntry { index, count } => {
                write!(f, "no entry {index}: the layout has {count}")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

/// The layout of one blob, computed once from an id string and a list of entries.
///
/// * `name_size` is `max(48, longest of (id, names) + 1 rounded up to 8)`;
/// * the id string is at offset 24, the descriptors follow it, the data block follows
///   the descriptors (every block 8-aligned, no gaps);
/// * entry `i`'s words start at word `sum of the sizes of entries 0..i` of the data
///   block (its descriptor's `offset` is that times 8).
///
/// The layout keeps the encoded schema part (header, id, descriptors), so writing a
/// blob is two copies. See the [module documentation](crate::binary) for an example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    schema: Vec<u8>,
    header: Header,
    /// `word_start[i]` is entry `i`'s first word; one more element holds the total.
    word_start: Vec<u32>,
}

impl Layout {
    /// Computes the layout of `entries` under the id string `id`, checking every rule a
    /// reader checks (names not empty and without NUL, sizes nonzero, bucket sizes
    /// exactly for linear histograms, exponents suiting units, the size bounds).
    pub fn new(id: &str, entries: &[Entry<'_>]) -> Result<Layout, LayoutError> {
        let max_len = MAX_NAME_SIZE as usize - 1;
        if id.as_bytes().contains(&0) {
            return Err(LayoutError::IdContainsNul);
        }
        if id.len() > max_len {
            return Err(LayoutError::IdTooLong {
                len: id.len(),
                max: max_len,
            });
        }
        if entries.len() > MAX_NUM_DESC as usize {
            return Err(LayoutError::TooManyEntries {
                count: entries.len(),
                max: MAX_NUM_DESC,
            });
        }
        let mut longest = id.len();
        let mut words: u64 = 0;
        let mut word_start = Vec::with_capacity(entries.len() + 1);
        for (index, e) in entries.iter().enumerate() {
            if e.name.is_empty() {
                return Err(LayoutError::EmptyName { index });
            }
            if e.name.as_bytes().contains(&0) {
                return Err(LayoutError::NameContainsNul { index });
            }
            if e.name.len() > max_len {
                return Err(LayoutError::NameTooLong {
                    index,
                    len: e.name.len(),
                    max: max_len,
                });
            }
            if e.size == 0 {
                return Err(LayoutError::ZeroSize { index });
            }
            if let Kind::LinearHistogram { bucket_size: 0 } = e.kind {
                return Err(LayoutError::ZeroBucketSize { index });
            }
            if !exponent_allowed(e.unit, e.scale.exponent) {
                return Err(LayoutError::BadExponent {
                    index,
                    unit: e.unit,
                    exponent: e.scale.exponent,
                });
            }
            longest = longest.max(e.name.len());
            word_start.push(words as u32);
            words += u64::from(e.size);
            let len = words * WORD_SIZE as u64;
            if len > MAX_DATA_LEN {
                return Err(LayoutError::DataBlockTooLarge {
                    len,
                    max: MAX_DATA_LEN,
                });
            }
        }
        word_start.push(words as u32);

        // longest <= 4095, so this is at most 4096.
        let name_size = (round_up(longest + 1, ALIGN) as u32).max(DEFAULT_NAME_SIZE);
        let desc_size = DESC_FIXED_SIZE + name_size as usize;
        let desc_len = entries.len() as u64 * desc_size as u64;
        if desc_len > MAX_DESC_BLOCK_LEN {
            return Err(LayoutError::DescBlockTooLarge {
                len: desc_len,
                max: MAX_DESC_BLOCK_LEN,
            });
        }
        // All three fit a u32: 24 + 4096 + 256 MiB.
        let id_offset = HEADER_SIZE;
        let desc_offset = id_offset + name_size as usize;
        let data_offset = desc_offset + desc_len as usize;
        let header = Header {
            flags: 0,
            name_size,
            num_desc: entries.len() as u32,
            id_offset: id_offset as u32,
            desc_offset: desc_offset as u32,
            data_offset: data_offset as u32,
        };

        let mut schema = vec![0u8; data_offset];
        schema[..HEADER_SIZE].copy_from_slice(&header.to_bytes());
        schema[id_offset..id_offset + id.len()].copy_from_slice(id.as_bytes());
        for ((e, d), start) in entries
            .iter()
            .zip(schema[desc_offset..].chunks_exact_mut(desc_size))
            .zip(&word_start)
        {
            let offset = start * WORD_SIZE as u32;
            d[D_FLAGS..D_FLAGS + 4].copy_from_slice(&e.flags().to_ne_bytes());
            d[D_EXPONENT..D_EXPONENT + 2].copy_from_slice(&e.scale.exponent.to_ne_bytes());
            d[D_SIZE..D_SIZE + 2].copy_from_slice(&e.size.to_ne_bytes());
            d[D_OFFSET..D_OFFSET + 4].copy_from_slice(&offset.to_ne_bytes());
            d[D_BUCKET_SIZE..D_BUCKET_SIZE + 4].copy_from_slice(&e.bucket_size().to_ne_bytes());
            d[D_NAME..D_NAME + e.name.len()].copy_from_slice(e.name.as_bytes());
        }
        Ok(Layout {
            schema,
            header,
            word_start,
        })
    }

    /// [`Layout::new`] over static descriptors (their name, kind, unit, scale and size).
    pub fn from_descriptors(id: &str, descriptors: &[Descriptor]) -> Result<Layout, LayoutError> {
        let entries: Vec<Entry<'static>> = descriptors.iter().map(Entry::from).collect();
        Layout::new(id, &entries)
    }

    /// The header this layout writes.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes reserved for the id and for each name, NUL included.
    pub fn name_size(&self) -> u32 {
        self.header.name_size
    }

    /// Number of entries (descriptors).
    pub fn num_desc(&self) -> usize {
        self.header.num_desc as usize
    }

    /// Byte offset of the id string (always 24).
    pub fn id_offset(&self) -> usize {
        self.header.id_offset as usize
    }

    /// Byte offset of the descriptor block.
    pub fn desc_offset(&self) -> usize {
        self.header.desc_offset as usize
    }

    /// Byte offset of the data block; also the length of the schema part.
    pub fn data_offset(&self) -> usize {
        self.header.data_offset as usize
    }

    /// Number of `u64` words in the data block.
    pub fn data_words(&self) -> usize {
        self.word_start.last().map_or(0, |&w| w as usize)
    }

    /// Length of the data block in bytes.
    pub fn data_len(&self) -> usize {
        self.data_words() * WORD_SIZE
    }

    /// The data block's byte range in the blob.
    pub fn data_range(&self) -> Range<usize> {
        self.data_offset()..self.total_len()
    }

    /// Length of the whole blob in bytes.
    pub fn total_len(&self) -> usize {
        self.data_offset() + self.data_len()
    }

    /// Index in the data block of entry `index`'s first word.
    pub fn word_index(&self, index: usize) -> Option<usize> {
        self.word_range(index).map(|r| r.start)
    }

    /// The words of entry `index` in the data block (indices into the `&[u64]` given to
    /// [`Layout::write_data`]).
    pub fn word_range(&self, index: usize) -> Option<Range<usize>> {
        let start = *self.word_start.get(index)?;
        let end = *self.word_start.get(index + 1)?;
        Some(start as usize..end as usize)
    }

    /// The schema part (header, id string, descriptors): the first
    /// [`data_offset`](Layout::data_offset) bytes of every blob of this layout.
    pub fn schema(&self) -> &[u8] {
        &self.schema
    }

    /// Appends the schema part to `out`.
    pub fn write_schema(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.schema);
    }

    /// Writes the schema part at the start of `buf`; returns its length.
    pub fn write_schema_to(&self, buf: &mut [u8]) -> Result<usize, LayoutError> {
        let (n, got) = (self.schema.len(), buf.len());
        let dst = buf
            .get_mut(..n)
            .ok_or(LayoutError::BufferTooSmall { needed: n, got })?;
        dst.copy_from_slice(&self.schema);
        Ok(n)
    }

    /// A blob of this layout with every data word 0: write the data with
    /// [`Layout::write_data`].
    pub fn new_blob(&self) -> Vec<u8> {
        let mut blob = Vec::with_capacity(self.total_len());
        blob.extend_from_slice(&self.schema);
        blob.resize(self.total_len(), 0);
        blob
    }

    /// A whole blob: the schema part and `words` as the data block.
    pub fn encode(&self, words: &[u64]) -> Result<Vec<u8>, LayoutError> {
        let mut out = Vec::new();
        self.encode_into(words, &mut out)?;
        Ok(out)
    }

    /// Replaces the contents of `out` with a whole blob, reusing its allocation.
    pub fn encode_into(&self, words: &[u64], out: &mut Vec<u8>) -> Result<(), LayoutError> {
        self.check_words(words)?;
        out.clear();
        out.reserve(self.total_len());
        out.extend_from_slice(&self.schema);
        out.resize(self.total_len(), 0);
        write_words(&mut out[self.data_offset()..], words);
        Ok(())
    }

    /// The hot path: writes `words` (exactly [`data_words`](Layout::data_words) of them,
    /// signed values as their two's-complement pattern) into the data block of `blob`,
    /// native endian. A straight copy; the schema part is not touched.
    pub fn write_data(&self, blob: &mut [u8], words: &[u64]) -> Result<(), LayoutError> {
        self.check_words(words)?;
        let got = blob.len();
        let dst = blob
            .get_mut(self.data_range())
            .ok_or(LayoutError::BufferTooSmall {
                needed: self.total_len(),
                got,
            })?;
        write_words(dst, words);
        Ok(())
    }

    /// Writes the words of entry `index` alone (exactly its `size` of them) into the
    /// data block of `blob`.
    pub fn write_entry(
        &self,
        blob: &mut [u8],
        index: usize,
        words: &[u64],
    ) -> Result<(), LayoutError> {
        let count = self.num_desc();
        let r = self
            .word_range(index)
            .ok_or(LayoutError::NoSuchEntry { index, count })?;
        if words.len() != r.len() {
            return Err(LayoutError::WordCount {
                expected: r.len(),
                got: words.len(),
            });
        }
        let start = self.data_offset() + r.start * WORD_SIZE;
        let end = self.data_offset() + r.end * WORD_SIZE;
        let got = blob.len();
        let dst = blob
            .get_mut(start..end)
            .ok_or(LayoutError::BufferTooSmall {
                needed: self.total_len(),
                got,
            })?;
        write_words(dst, words);
        Ok(())
    }

    fn check_words(&self, words: &[u64]) -> Result<(), LayoutError> {
        if words.len() == self.data_words() {
            Ok(())
        } else {
            Err(LayoutError::WordCount {
                expected: self.data_words(),
                got: words.len(),
            })
        }
    }
}

/// Copies `words` into `dst` as native-endian bytes; `dst` holds at least
/// `words.len() * 8` bytes (extra bytes are left alone). Compiles to a plain copy.
#[inline]
pub(crate) fn write_words(dst: &mut [u8], words: &[u64]) {
    for (d, w) in dst.chunks_exact_mut(WORD_SIZE).zip(words) {
        d.copy_from_slice(&w.to_ne_bytes());
    }
}

const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    /// The blob, byte for byte, as the kernel lays out `struct kvm_stats_header`,
    /// the id, `struct kvm_stats_desc` + name, and the data.
    #[test]
    fn golden_bytes_match_the_kernel_structs() {
        let entries = [
            Entry::counter("exits"),
            Entry::new(
                "halt_ns",
                Kind::LinearHistogram { bucket_size: 1000 },
                Unit::Seconds,
                Scale::NANO,
                2,
            ),
        ];
        let layout = Layout::new("kvm-1", &entries).unwrap();
        let blob = layout.encode(&[7, 1, (-2i64) as u64]).unwrap();

        let mut want = Vec::new();
        // header
        for v in [0, 48, 2, 24, 72, 72 + 2 * 64] {
            want.extend_from_slice(&ne32(v));
        }
        // id, 48 bytes
        let mut id = [0u8; 48];
        id[..5].copy_from_slice(b"kvm-1");
        want.extend_from_slice(&id);
        // descriptor 0: cumulative, none, pow10, exponent 0, size 1, offset 0, bucket 0
        want.extend_from_slice(&ne32(0));
        want.extend_from_slice(&0i16.to_ne_bytes());
        want.extend_from_slice(&1u16.to_ne_bytes());
        want.extend_from_slice(&ne32(0));
        want.extend_from_slice(&ne32(0));
        let mut name = [0u8; 48];
        name[..5].copy_from_slice(b"exits");
        want.extend_from_slice(&name);
        // descriptor 1: linear hist (3) | seconds (2 << 4) | pow10, exponent -9, size 2,
        // offset 8, bucket 1000
        want.extend_from_slice(&ne32(3 | (2 << 4)));
        want.extend_from_slice(&(-9i16).to_ne_bytes());
        want.extend_from_slice(&2u16.to_ne_bytes());
        want.extend_from_slice(&ne32(8));
        want.extend_from_slice(&ne32(1000));
        let mut name = [0u8; 48];
        name[..7].copy_from_slice(b"halt_ns");
        want.extend_from_slice(&name);
        // data
        for v in [7u64, 1, (-2i64) as u64] {
            want.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(blob, want);
        assert_eq!(layout.total_len(), 72 + 128 + 24);
        assert_eq!(layout.data_range(), 200..224);
        assert_eq!(layout.word_range(1), Some(1..3));
        assert_eq!(layout.word_index(2), None);
    }

    #[test]
    fn name_size_grows_with_the_longest_name_or_id() {
        let l = Layout::new("kvm", &[Entry::counter("a")]).unwrap();
        assert_eq!(l.name_size(), 48);
        let long = "n".repeat(47); // 47 + NUL = 48
        let l = Layout::new("kvm", &[Entry::counter(&long)]).unwrap();
        assert_eq!(l.name_size(), 48);
        let long = "n".repeat(48); // 49 -> 56
        let l = Layout::new("kvm", &[Entry::counter(&long)]).unwrap();
        assert_eq!(l.name_size(), 56);
        let l = Layout::new(&"i".repeat(60), &[Entry::counter("a")]).unwrap();
        assert_eq!(l.name_size(), 64);
        assert_eq!(l.desc_offset(), 24 + 64);
        assert_eq!(l.data_offset(), 24 + 64 + 80);
        let l = Layout::new("empty", &[]).unwrap();
        assert_eq!((l.data_offset(), l.data_len(), l.total_len()), (72, 0, 72));
    }

    #[test]
    fn every_block_is_8_aligned() {
        for n in 0..70 {
            let name = "x".repeat(n + 1);
            let l = Layout::new(
                &"y".repeat(n),
                &[Entry::counter(&name), Entry::counter("b")],
            )
            .unwrap();
            assert_eq!(l.name_size() % 8, 0);
            for off in [
                l.id_offset(),
                l.desc_offset(),
                l.data_offset(),
                l.total_len(),
            ] {
                assert_eq!(off % 8, 0);
            }
        }
    }

    #[test]
    fn entries_are_checked() {
        let e = |name, kind, unit, exponent, size| {
            Entry::new(
                name,
                kind,
                unit,
                Scale {
                    base: Base::Ten,
                    exponent,
                },
                size,
            )
        };
        let c = Kind::Cumulative;
        let cases = [
            (
                e("", c, Unit::None, 0, 1),
                LayoutError::EmptyName { index: 1 },
            ),
            (
                e("a\0b", c, Unit::None, 0, 1),
                LayoutError::NameContainsNul { index: 1 },
            ),
            (
                e("a", c, Unit::None, 0, 0),
                LayoutError::ZeroSize { index: 1 },
            ),
            (
                e(
                    "a",
                    Kind::LinearHistogram { bucket_size: 0 },
                    Unit::None,
                    0,
                    4,
                ),
                LayoutError::ZeroBucketSize { index: 1 },
            ),
            (
                e("a", c, Unit::Bytes, -1, 1),
                LayoutError::BadExponent {
                    index: 1,
                    unit: Unit::Bytes,
                    exponent: -1,
                },
            ),
            (
                e("a", c, Unit::Seconds, 1, 1),
                LayoutError::BadExponent {
                    index: 1,
                    unit: Unit::Seconds,
                    exponent: 1,
                },
            ),
            (
                e("a", Kind::Instant, Unit::Boolean, 1, 1),
                LayoutError::BadExponent {
                    index: 1,
                    unit: Unit::Boolean,
                    exponent: 1,
                },
            ),
        ];
        for (bad, err) in cases {
            assert_eq!(
                Layout::new("id", &[Entry::counter("ok"), bad]),
                Err(err.clone())
            );
            assert!(!err.to_string().is_empty());
        }
        assert_eq!(Layout::new("a\0", &[]), Err(LayoutError::IdContainsNul));
        let long = "z".repeat(4096);
        assert_eq!(
            Layout::new(&long, &[]),
            Err(LayoutError::IdTooLong {
                len: 4096,
                max: 4095
            })
        );
        assert_eq!(
            Layout::new("id", &[Entry::counter(&long)]),
            Err(LayoutError::NameTooLong {
                index: 0,
                len: 4096,
                max: 4095
            })
        );
        assert!(Layout::new(&long[..4095], &[Entry::counter(&long[..4095])]).is_ok());
    }

    #[test]
    fn too_large_blocks_are_refused() {
        let hist = Entry::new("h", Kind::LogHistogram, Unit::None, Scale::ONE, u16::MAX);
        let n = (MAX_DATA_LEN / 8 / u64::from(u16::MAX)) as usize + 1;
        let entries = vec![hist; n];
        assert!(matches!(
            Layout::new("id", &entries),
            Err(LayoutError::DataBlockTooLarge { .. })
        ));
        let long = "z".repeat(2000);
        let entries = vec![Entry::counter(&long); 200_000];
        assert!(matches!(
            Layout::new("id", &entries),
            Err(LayoutError::DescBlockTooLarge { .. })
        ));
    }

    #[test]
    fn writing_data_checks_counts_and_buffers() {
        let l = Layout::new("id", &[Entry::counter("a"), Entry::counter("b")]).unwrap();
        let mut blob = l.new_blob();
        assert_eq!(blob.len(), l.total_len());
        assert_eq!(&blob[..l.data_offset()], l.schema());
        assert_eq!(
            l.write_data(&mut blob, &[1]),
            Err(LayoutError::WordCount {
                expected: 2,
                got: 1
            })
        );
        l.write_data(&mut blob, &[1, 2]).unwrap();
        assert_eq!(blob, l.encode(&[1, 2]).unwrap());
        l.write_entry(&mut blob, 1, &[9]).unwrap();
        assert_eq!(blob, l.encode(&[1, 9]).unwrap());
        assert_eq!(
            l.write_entry(&mut blob, 2, &[9]),
            Err(LayoutError::NoSuchEntry { index: 2, count: 2 })
        );
        assert_eq!(
            l.write_entry(&mut blob, 0, &[]),
            Err(LayoutError::WordCount {
                expected: 1,
                got: 0
            })
        );
        let mut short = vec![0u8; l.total_len() - 1];
        assert_eq!(
            l.write_data(&mut short, &[1, 2]),
            Err(LayoutError::BufferTooSmall {
                needed: l.total_len(),
                got: l.total_len() - 1
            })
        );
        let mut buf = vec![0u8; l.data_offset()];
        assert_eq!(l.write_schema_to(&mut buf), Ok(l.data_offset()));
        assert_eq!(buf, l.schema());
        assert!(l.write_schema_to(&mut buf[1..]).is_err());
        let mut v = vec![0xAA];
        l.write_schema(&mut v);
        assert_eq!(&v[1..], l.schema());
        let mut reused = vec![1, 2, 3];
        l.encode_into(&[5, 6], &mut reused).unwrap();
        assert_eq!(reused, l.encode(&[5, 6]).unwrap());
    }

    #[test]
    fn from_descriptors_takes_name_kind_unit_scale_size() {
        use crate::desc::{Storage, ValueType};
        let ds = [
            Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
            Descriptor::new("wait", ValueType::U64, Kind::LogHistogram)
                .with_storage(Storage::Buckets, 8)
                .with_unit(Unit::Seconds, Scale::MICRO),
        ];
        let l = Layout::from_descriptors("vm", &ds).unwrap();
        let entries: Vec<Entry<'_>> = ds.iter().map(Entry::from).collect();
        assert_eq!(l, Layout::new("vm", &entries).unwrap());
        assert_eq!(l.data_words(), 9);
        assert_eq!(entries[1].flags(), 4 | (2 << 4));
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            flags: 1,
            name_size: 2,
            num_desc: 3,
            id_offset: 4,
            desc_offset: 5,
            data_offset: 6,
        };
        assert_eq!(Header::from_bytes(&h.to_bytes()), h);
        assert_eq!(h.desc_size(), 18);
        assert_eq!(h.desc_block_len(), 54);
        let max = Header {
            name_size: u32::MAX,
            num_desc: u32::MAX,
            ..h
        };
        assert_eq!(max.desc_block_len(), u64::MAX);
        let big = Header {
            name_size: 4096,
            num_desc: u32::MAX,
            ..h
        };
        assert_eq!(big.desc_block_len(), u64::from(u32::MAX) * 4112);
    }

    #[test]
    fn flags_pack_the_kernel_codes() {
        assert_eq!(
            pack_flags(Kind::Peak, Unit::Bytes, Base::Two),
            KIND_PEAK | (UNIT_BYTES << 4) | (BASE_POW2 << 8)
        );
        assert_eq!(
            pack_flags(Kind::LogHistogram, Unit::Boolean, Base::Ten),
            4 | (4 << 4)
        );
        assert_eq!(FLAGS_DEFINED, 0xFFF);
        assert_eq!(KIND_MASK | UNIT_MASK | BASE_MASK, 0xFFF);
        assert_eq!(
            Kind::LinearHistogram { bucket_size: 3 }.code(),
            KIND_LINEAR_HISTOGRAM
        );
        assert_eq!(Unit::Cycles.code(), UNIT_CYCLES);
        assert_eq!(Base::Ten.code(), BASE_POW10);
    }
}
