//! The header and the fixed facts of the layout: sizes, field offsets, flag bits, the
//! bounds a reader enforces, and the blocks' names (`docs/BINARY.md#header`).

use core::fmt;

use statsfs_core::desc::{Base, Kind, Unit};

/// Size in bytes of the header (`struct kvm_stats_header`): six `u32` fields.
pub const HEADER_SIZE: usize = 24;

/// Size in bytes of the fixed part of a descriptor (`struct kvm_stats_desc` without its
/// name): `flags`, `exponent`, `size`, `offset`, `bucket_size`.
pub const DESC_FIXED_SIZE: usize = 16;

/// The smallest `name_size` a [`Layout`](super::Layout) uses, the kernel's `KVM_STATS_NAME_SIZE`.
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
pub const KIND_CUMULATIVE: u32 = Kind::Cumulative.code();
/// Kind code of [`Kind::Instant`].
pub const KIND_INSTANT: u32 = Kind::Instant.code();
/// Kind code of [`Kind::Peak`].
pub const KIND_PEAK: u32 = Kind::Peak.code();
/// Kind code of [`Kind::LinearHistogram`].
pub const KIND_LINEAR_HISTOGRAM: u32 = Kind::LinearHistogram { bucket_size: 1 }.code();
/// Kind code of [`Kind::LogHistogram`].
pub const KIND_LOG_HISTOGRAM: u32 = Kind::LogHistogram.code();

/// Position of the unit in a descriptor's `flags`: bits 4-7.
pub const UNIT_SHIFT: u32 = 4;
/// Mask of the unit bits in a descriptor's `flags`.
pub const UNIT_MASK: u32 = 0xF << UNIT_SHIFT;
/// The largest unit code (boolean).
pub const UNIT_MAX: u32 = 4;
/// Unit code of [`Unit::None`].
pub const UNIT_NONE: u32 = Unit::None.code();
/// Unit code of [`Unit::Bytes`].
pub const UNIT_BYTES: u32 = Unit::Bytes.code();
/// Unit code of [`Unit::Seconds`].
pub const UNIT_SECONDS: u32 = Unit::Seconds.code();
/// Unit code of [`Unit::Cycles`].
pub const UNIT_CYCLES: u32 = Unit::Cycles.code();
/// Unit code of [`Unit::Boolean`].
pub const UNIT_BOOLEAN: u32 = Unit::Boolean.code();

/// Position of the base in a descriptor's `flags`: bits 8-11.
pub const BASE_SHIFT: u32 = 8;
/// Mask of the base bits in a descriptor's `flags`.
pub const BASE_MASK: u32 = 0xF << BASE_SHIFT;
/// The largest base code (powers of two).
pub const BASE_MAX: u32 = 1;
/// Base code of [`Base::Ten`].
pub const BASE_POW10: u32 = Base::Ten.code();
/// Base code of [`Base::Two`].
pub const BASE_POW2: u32 = Base::Two.code();

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
    /// [`Header::validate`]).
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
