//! The codec's one descriptor type, [`StatDesc`]: what the encoder is given and what the
//! decoder returns (`docs/BINARY.md#descriptors`).

use core::ops::Range;

use super::header::{BASE_SHIFT, KIND_SHIFT, UNIT_SHIFT, WORD_SIZE};
use statsfs_core::desc::{Base, Descriptor, Kind, Scale, Unit};

/// The `flags` word of a descriptor: kind in bits 0-3, unit in bits 4-7, base in bits
/// 8-11, every other bit 0.
pub const fn pack_flags(kind: Kind, unit: Unit, base: Base) -> u32 {
    (kind.code() << KIND_SHIFT) | (unit.code() << UNIT_SHIFT) | (base.code() << BASE_SHIFT)
}

/// One stat of a blob: what it is and where its words are. The decoder returns these;
/// the encoder ([`Layout::new`](super::Layout::new)) is given them and places each one
/// itself, one after another, so the `offset` it is given is not used.
///
/// ```
/// use statsfs_binary::StatDesc;
/// use statsfs_core::desc::{Kind, Scale, Unit};
/// let d = StatDesc::new("halt_ns", Kind::LinearHistogram { bucket_size: 500 }, Unit::Seconds, Scale::NANO, 4);
/// assert_eq!(d.bucket_size(), 500);
/// assert_eq!(StatDesc::counter("exits").size, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatDesc {
    /// The name.
    pub name: String,
    /// The kind; a linear histogram carries its `bucket_size`.
    pub kind: Kind,
    /// The unit (for histograms: of the bucket bounds).
    pub unit: Unit,
    /// The base and exponent.
    pub scale: Scale,
    /// Number of `u64` words: 1, or the number of buckets.
    pub size: u16,
    /// Byte offset of the first word in the data block (a multiple of 8).
    pub offset: u32,
}

impl StatDesc {
    /// A descriptor from its parts, at offset 0.
    pub fn new(name: impl Into<String>, kind: Kind, unit: Unit, scale: Scale, size: u16) -> Self {
        StatDesc {
            name: name.into(),
            kind,
            unit,
            scale,
            size,
            offset: 0,
        }
    }

    /// A one-word cumulative count with no unit (the most common stat).
    pub fn counter(name: impl Into<String>) -> Self {
        StatDesc::new(name, Kind::Cumulative, Unit::None, Scale::ONE, 1)
    }

    /// The binary descriptor of a statsfs value, under another name (a path-qualified
    /// one in subtree views).
    pub fn of(name: impl Into<String>, d: &Descriptor) -> Self {
        StatDesc::new(name, d.kind, d.unit, d.scale, d.size)
    }

    /// This descriptor at byte `offset` of the data block.
    pub fn at(mut self, offset: u32) -> Self {
        self.offset = offset;
        self
    }

    /// The descriptor `flags` word.
    pub const fn flags(&self) -> u32 {
        pack_flags(self.kind, self.unit, self.scale.base)
    }

    /// The `bucket_size` field: the bucket width of a linear histogram, else 0.
    pub const fn bucket_size(&self) -> u32 {
        self.kind.bucket_size()
    }

    /// Index of the first word in the data block.
    pub fn word_index(&self) -> usize {
        self.offset as usize / WORD_SIZE
    }

    /// Indices of the words in the data block.
    pub fn words(&self) -> Range<usize> {
        let start = self.word_index();
        start..start + usize::from(self.size)
    }

    /// Byte range of the words in the data block.
    pub fn byte_range(&self) -> Range<u64> {
        let start = u64::from(self.offset);
        start..start + u64::from(self.size) * WORD_SIZE as u64
    }
}

impl From<&Descriptor> for StatDesc {
    fn from(d: &Descriptor) -> Self {
        StatDesc::of(d.name, d)
    }
}
