//! What can go wrong building, decoding or reading a blob: one variant per rule, each
//! message naming the rule, the place (byte offset) and what to do.

use core::ops::Range;
use std::io;

use super::header::{Block, ALIGN, BASE_MAX, HEADER_SIZE, KIND_MAX, UNIT_MAX, WORD_SIZE};
use statsfs_core::desc::Unit;

/// Why a [`Layout`](super::Layout) cannot be built or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The id string contains a NUL byte.
    #[error("the id string contains a NUL byte")]
    IdContainsNul,
    /// The id string is longer than any `name_size` allows.
    #[error("the id string is {len} bytes long; at most {max} fit")]
    IdTooLong {
        /// Its length in bytes.
        len: usize,
        /// The longest allowed.
        max: usize,
    },
    /// An entry's name is empty.
    #[error("entry {index}: the name is empty")]
    EmptyName {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's name contains a NUL byte.
    #[error("entry {index}: the name contains a NUL byte")]
    NameContainsNul {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's name is longer than any `name_size` allows.
    #[error("entry {index}: the name is {len} bytes long; at most {max} fit")]
    NameTooLong {
        /// Index of the entry.
        index: usize,
        /// Its length in bytes.
        len: usize,
        /// The longest allowed.
        max: usize,
    },
    /// An entry has `size` 0.
    #[error("entry {index}: size is 0; a stat has at least one word")]
    ZeroSize {
        /// Index of the entry.
        index: usize,
    },
    /// A linear histogram entry has bucket width 0.
    #[error("entry {index}: a linear histogram needs a bucket size > 0")]
    ZeroBucketSize {
        /// Index of the entry.
        index: usize,
    },
    /// An entry's exponent does not suit its unit.
    #[error("entry {index}: exponent {exponent} with unit {unit_name}; it must be {rule}", unit_name = .unit.as_str(), rule = .unit.exponent_rule())]
    BadExponent {
        /// Index of the entry.
        index: usize,
        /// The unit.
        unit: Unit,
        /// The exponent.
        exponent: i16,
    },
    /// More entries than [`MAX_NUM_DESC`](super::header::MAX_NUM_DESC).
    #[error("{count} entries; at most {max} are allowed")]
    TooManyEntries {
        /// How many were given.
        count: usize,
        /// The most allowed.
        max: u32,
    },
    /// The descriptor block would exceed [`MAX_DESC_BLOCK_LEN`](super::header::MAX_DESC_BLOCK_LEN).
    #[error("the descriptor block would be {len} bytes; at most {max} are allowed")]
    DescBlockTooLarge {
        /// Its length in bytes.
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The data block would exceed [`MAX_DATA_LEN`](super::header::MAX_DATA_LEN).
    #[error("the data block would be {len} bytes; at most {max} are allowed")]
    DataBlockTooLarge {
        /// Its length in bytes.
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// The number of data words given is not the number the layout holds.
    #[error("{got} data words given; the layout holds {expected}")]
    WordCount {
        /// The number the layout (or the entry) holds.
        expected: usize,
        /// The number given.
        got: usize,
    },
    /// The buffer is shorter than the part of the blob to be written.
    #[error("the buffer holds {got} bytes; {needed} are needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// No entry has this index.
    #[error("no entry {index}: the layout has {count}")]
    NoSuchEntry {
        /// The index asked for.
        index: usize,
        /// How many entries there are.
        count: usize,
    },
}

/// Why a blob is not a well-formed statistics layout. Each variant is one rule; byte
/// offsets are absolute (from the start of the blob or file) and point at the
/// offending field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the end of a block.
    #[error("truncated input: the {block} ends at byte {end}, but there are no bytes at or after byte {available}")]
    Truncated {
        /// The block that does not fit.
        block: Block,
        /// The byte offset where the block ends.
        end: u64,
        /// Where the input ends: the length of a blob; for a file, the offset at which
        /// a read first returned nothing (the file ends there or before).
        available: u64,
    },
    /// The header's `flags` is not 0.
    #[error("header (byte 0): flags is {flags:#x}; it must be 0")]
    HeaderFlags {
        /// The value found.
        flags: u32,
    },
    /// The header's `name_size` is 0 or not a multiple of 8.
    #[error("header (byte 4): name_size is {name_size}; it must be a nonzero multiple of {align}", align = ALIGN)]
    BadNameSize {
        /// The value found.
        name_size: u32,
    },
    /// The header's `name_size` is beyond statsfs's bound [`MAX_NAME_SIZE`](super::header::MAX_NAME_SIZE).
    #[error("header (byte 4): name_size is {name_size}; statsfs reads at most {max}")]
    NameSizeTooLarge {
        /// The value found.
        name_size: u32,
        /// The largest accepted.
        max: u32,
    },
    /// The header's `num_desc` is beyond statsfs's bound [`MAX_NUM_DESC`](super::header::MAX_NUM_DESC).
    #[error("header (byte 8): num_desc is {num_desc}; statsfs reads at most {max}")]
    TooManyDescriptors {
        /// The value found.
        num_desc: u32,
        /// The largest accepted.
        max: u32,
    },
    /// The descriptor block (`num_desc * (16 + name_size)`) is beyond statsfs's bound
    /// [`MAX_DESC_BLOCK_LEN`](super::header::MAX_DESC_BLOCK_LEN).
    #[error("header: the descriptor block (num_desc * (16 + name_size)) is {len} bytes; statsfs reads at most {max}")]
    DescBlockTooLarge {
        /// Its length in bytes.
        len: u64,
        /// The largest accepted.
        max: u64,
    },
    /// A block's offset in the header is 0.
    #[error("header (byte {field}): the {block} offset is 0", field = field_of(.block))]
    ZeroOffset {
        /// The block.
        block: Block,
    },
    /// A block's offset in the header points into the header itself (below 24).
    #[error("header (byte {field}): the {block} offset is {offset}, inside the {header}-byte header", field = field_of(.block), header = HEADER_SIZE)]
    OffsetInHeader {
        /// The block.
        block: Block,
        /// The offset found.
        offset: u32,
    },
    /// A block's offset in the header is not a multiple of 8.
    #[error("header (byte {field}): the {block} offset is {offset}, not a multiple of {align}", field = field_of(.block), align = ALIGN)]
    MisalignedOffset {
        /// The block.
        block: Block,
        /// The offset found.
        offset: u32,
    },
    /// Two blocks overlap.
    #[error("the {first} (bytes {a}..{b}) and the {second} (bytes {c}..{e}) overlap", a = .first_range.start, b = .first_range.end, c = .second_range.start, e = .second_range.end)]
    BlocksOverlap {
        /// The block that starts first (or the id block, when both start together).
        first: Block,
        /// Its byte range.
        first_range: Range<u64>,
        /// The other block.
        second: Block,
        /// Its byte range.
        second_range: Range<u64>,
    },
    /// The id string has no NUL within `name_size` bytes.
    #[error("id string (byte {offset}): no NUL within name_size bytes")]
    IdNotTerminated {
        /// Byte offset of the id string.
        offset: u64,
    },
    /// The id string is not UTF-8.
    #[error("id string (byte {offset}): not UTF-8")]
    IdNotUtf8 {
        /// Byte offset of the id string.
        offset: u64,
    },
    /// A descriptor's name has no NUL within `name_size` bytes.
    #[error("descriptor {index}, name (byte {offset}): no NUL within name_size bytes")]
    NameNotTerminated {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of the name.
        offset: u64,
    },
    /// A descriptor's name is empty.
    #[error("descriptor {index}, name (byte {offset}): the name is empty")]
    NameEmpty {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of the name.
        offset: u64,
    },
    /// A descriptor's name is not UTF-8.
    #[error("descriptor {index}, name (byte {offset}): not UTF-8")]
    NameNotUtf8 {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of the name.
        offset: u64,
    },
    /// A descriptor's `flags` has bits set outside kind, unit and base (bits 12-31).
    #[error("descriptor {index}, flags (byte {offset}): {flags:#x} has bits set outside 0-11 (kind, unit, base)")]
    ReservedFlags {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `flags`.
        offset: u64,
        /// The whole `flags` word.
        flags: u32,
    },
    /// A descriptor's kind code (bits 0-3 of `flags`) is above 4.
    #[error("descriptor {index}, flags (byte {offset}): unknown kind {code} (0-{max} are defined)", max = KIND_MAX)]
    UnknownKind {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `flags`.
        offset: u64,
        /// The kind code found.
        code: u32,
    },
    /// A descriptor's unit code (bits 4-7 of `flags`) is above 4.
    #[error("descriptor {index}, flags (byte {offset}): unknown unit {code} (0-{max} are defined)", max = UNIT_MAX)]
    UnknownUnit {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `flags`.
        offset: u64,
        /// The unit code found.
        code: u32,
    },
    /// A descriptor's base code (bits 8-11 of `flags`) is above 1.
    #[error("descriptor {index}, flags (byte {offset}): unknown base {code} (0-{max} are defined)", max = BASE_MAX)]
    UnknownBase {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `flags`.
        offset: u64,
        /// The base code found.
        code: u32,
    },
    /// A descriptor's exponent does not suit its unit: `>= 0` for none, bytes and
    /// cycles, `<= 0` for seconds, `0` for boolean.
    #[error("descriptor {index}, exponent (byte {offset}): {exponent} with unit {unit_name}; it must be {rule}", unit_name = .unit.as_str(), rule = .unit.exponent_rule())]
    BadExponent {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `exponent`.
        offset: u64,
        /// The unit.
        unit: Unit,
        /// The exponent found.
        exponent: i16,
    },
    /// A descriptor's `size` is 0.
    #[error("descriptor {index}, size (byte {offset}): 0; a stat has at least one word")]
    ZeroSize {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `size`.
        offset: u64,
    },
    /// A linear histogram's `bucket_size` is 0.
    #[error(
        "descriptor {index}, bucket_size (byte {offset}): 0 for a linear histogram; it must be > 0"
    )]
    ZeroBucketSize {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `bucket_size`.
        offset: u64,
    },
    /// A descriptor that is not a linear histogram has a nonzero `bucket_size`.
    #[error("descriptor {index}, bucket_size (byte {offset}): {bucket_size}; it must be 0 unless the stat is a linear histogram")]
    UnexpectedBucketSize {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of `bucket_size`.
        offset: u64,
        /// The value found.
        bucket_size: u32,
    },
    /// A stat's `offset` in the data block is not a multiple of 8.
    #[error("descriptor {index}, offset (byte {offset}): {stat_offset} is not a multiple of {word}", word = WORD_SIZE)]
    MisalignedStat {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of the descriptor's `offset` field.
        offset: u64,
        /// The value found.
        stat_offset: u32,
    },
    /// A stat ends beyond statsfs's bound on the data block, [`MAX_DATA_LEN`](super::header::MAX_DATA_LEN).
    #[error("descriptor {index}, offset (byte {offset}): the stat ends at byte {end} of the data block; statsfs reads at most {max}")]
    DataBlockTooLarge {
        /// Index of the descriptor.
        index: u32,
        /// Byte offset of the descriptor's `offset` field.
        offset: u64,
        /// Where the stat ends in the data block (`offset + size * 8`).
        end: u64,
        /// The largest data block accepted.
        max: u64,
    },
    /// Two stats share words of the data block.
    #[error(
        "descriptor {index}, offset (byte {offset}): its words overlap those of descriptor {other}"
    )]
    StatsOverlap {
        /// Index of the descriptor whose words start inside the other's.
        index: u32,
        /// Byte offset of its `offset` field.
        offset: u64,
        /// Index of the other descriptor.
        other: u32,
    },
}

/// The header field holding a block's offset, for messages.
fn field_of(block: &Block) -> usize {
    match block {
        Block::Header => 0,
        Block::Id => 12,
        Block::Descriptors => 16,
        Block::Data => 20,
    }
}

/// Why reading a statistics file failed: the file could not be read, or what it holds
/// is not a well-formed layout. The message names the block and offset; the cause (the
/// I/O error, or the broken rule) is its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A positioned read failed.
    #[error("cannot read the {block} at byte {offset} of the stats file")]
    Io {
        /// The block being read.
        block: Block,
        /// The file offset of the read.
        offset: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The bytes read break a rule of the layout (a file shorter than its header says
    /// is [`DecodeError::Truncated`]).
    #[error(transparent)]
    Invalid(#[from] DecodeError),
}
