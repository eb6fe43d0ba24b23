//! The reader library: parse a blob from memory ([`Blob::decode`]) or from an open file
//! ([`StatsFile`]), checking every rule of the layout.
//!
//! Decoding never panics and never allocates more than the input justifies: every
//! length is checked against the input (or, for files, the bytes actually read, in
//! growing chunks) before anything is allocated, all arithmetic on offsets is done in
//! `u64` or checked, and hostile headers are bounded by [`MAX_NAME_SIZE`](super::header::MAX_NAME_SIZE),
//! [`MAX_NUM_DESC`](super::header::MAX_NUM_DESC),
//! [`MAX_DESC_BLOCK_LEN`](super::header::MAX_DESC_BLOCK_LEN) and
//! [`MAX_DATA_LEN`](super::header::MAX_DATA_LEN).

use core::ops::Range;
use std::io;
use std::os::unix::fs::FileExt;

use super::descriptor::StatDesc;
use super::error::{DecodeError, ReadError};
use super::header::{
    Block, Header, ALIGN, BASE_MASK, BASE_SHIFT, DESC_FIXED_SIZE, D_BUCKET_SIZE, D_EXPONENT,
    D_FLAGS, D_NAME, D_OFFSET, D_SIZE, FLAGS_DEFINED, HEADER_SIZE, KIND_MASK, KIND_SHIFT,
    MAX_DATA_LEN, MAX_DESC_BLOCK_LEN, MAX_NAME_SIZE, MAX_NUM_DESC, UNIT_MASK, UNIT_SHIFT,
    WORD_SIZE,
};
use statsfs_core::desc::{Base, Kind, Scale, Unit};

/// Reading and checking a header is the decoder's part of it.
impl Header {
    /// Reads the header from the first 24 bytes of `bytes` and checks it
    /// ([`Header::validate`]).
    pub fn parse(bytes: &[u8]) -> Result<Header, DecodeError> {
        let raw = bytes
            .first_chunk::<HEADER_SIZE>()
            .ok_or(DecodeError::Truncated {
                block: Block::Header,
                end: HEADER_SIZE as u64,
                available: bytes.len() as u64,
            })?;
        let header = Header::from_bytes(raw);
        header.validate()?;
        Ok(header)
    }

    /// Checks every rule that the header alone decides: `flags` 0; `name_size` a
    /// nonzero multiple of 8; the size bounds; the three offsets nonzero, past the
    /// header and 8-aligned; the id and descriptor blocks not overlapping. (Whether the
    /// data block overlaps another depends on the descriptors; [`BlobSchema`] checks it.)
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.flags != 0 {
            return Err(DecodeError::HeaderFlags { flags: self.flags });
        }
        if self.name_size == 0 || self.name_size % ALIGN as u32 != 0 {
            return Err(DecodeError::BadNameSize {
                name_size: self.name_size,
            });
        }
        if self.name_size > MAX_NAME_SIZE {
            return Err(DecodeError::NameSizeTooLarge {
                name_size: self.name_size,
                max: MAX_NAME_SIZE,
            });
        }
        if self.num_desc > MAX_NUM_DESC {
            return Err(DecodeError::TooManyDescriptors {
                num_desc: self.num_desc,
                max: MAX_NUM_DESC,
            });
        }
        let desc_len = self.desc_block_len();
        if desc_len > MAX_DESC_BLOCK_LEN {
            return Err(DecodeError::DescBlockTooLarge {
                len: desc_len,
                max: MAX_DESC_BLOCK_LEN,
            });
        }
        for (block, offset) in [
            (Block::Id, self.id_offset),
            (Block::Descriptors, self.desc_offset),
            (Block::Data, self.data_offset),
        ] {
            if offset == 0 {
                return Err(DecodeError::ZeroOffset { block });
            }
            if (offset as usize) < HEADER_SIZE {
                return Err(DecodeError::OffsetInHeader { block, offset });
            }
            if offset as usize % ALIGN != 0 {
                return Err(DecodeError::MisalignedOffset { block, offset });
            }
        }
        check_disjoint(
            (Block::Id, self.id_range()),
            (Block::Descriptors, self.desc_range()),
        )
    }

    /// Byte range of the id string.
    pub fn id_range(&self) -> Range<u64> {
        let start = u64::from(self.id_offset);
        start..start.saturating_add(u64::from(self.name_size))
    }

    /// Byte range of the descriptor block.
    pub fn desc_range(&self) -> Range<u64> {
        let start = u64::from(self.desc_offset);
        start..start.saturating_add(self.desc_block_len())
    }
}

/// `Err(BlocksOverlap)` when both ranges are non-empty and share a byte.
fn check_disjoint(a: (Block, Range<u64>), b: (Block, Range<u64>)) -> Result<(), DecodeError> {
    let ((first, first_range), (second, second_range)) = if b.1.start < a.1.start {
        (b, a)
    } else {
        (a, b)
    };
    if !first_range.is_empty() && !second_range.is_empty() && second_range.start < first_range.end {
        return Err(DecodeError::BlocksOverlap {
            first,
            first_range,
            second,
            second_range,
        });
    }
    Ok(())
}

/// One stat with its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat<'a> {
    /// What the stat is.
    pub desc: &'a StatDesc,
    /// Its words: one, or one per bucket.
    pub values: &'a [u64],
}

impl Stat<'_> {
    /// The first word: the value of a scalar stat.
    pub fn value(&self) -> u64 {
        self.values.first().copied().unwrap_or(0)
    }

    /// The first word as a signed value (the layout does not say whether a value is
    /// signed: signed values are stored as their two's-complement pattern).
    pub fn value_i64(&self) -> i64 {
        self.value() as i64
    }
}

/// The part of a blob that never changes: header, id string and descriptors, all
/// checked. Also knows the length of the data block (the furthest stat's end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobSchema {
    header: Header,
    id: String,
    descriptors: Vec<StatDesc>,
    data_len: usize,
}

impl BlobSchema {
    /// Parses and checks the schema part of a blob: `bytes` starts at offset 0 and
    /// holds at least the header, the id string and the descriptor block (the data
    /// block need not be there).
    pub fn parse(bytes: &[u8]) -> Result<BlobSchema, DecodeError> {
        let header = Header::parse(bytes)?;
        let id = slice(bytes, Block::Id, header.id_range())?;
        let desc = slice(bytes, Block::Descriptors, header.desc_range())?;
        BlobSchema::from_blocks(header, id, desc)
    }

    /// Reads and checks the schema part of an open file: one positioned read of the
    /// header, then one of the id string and descriptors (two when they are not
    /// adjacent).
    pub fn read<F: FileExt + ?Sized>(file: &F) -> Result<BlobSchema, ReadError> {
        let mut raw = [0u8; HEADER_SIZE];
        read_exact_at(file, &mut raw, 0, Block::Header)?;
        let header = Header::from_bytes(&raw);
        header.validate()?;
        let (id_r, desc_r) = (header.id_range(), header.desc_range());
        if id_r.end == desc_r.start {
            let both = read_block(
                file,
                id_r.start..desc_r.end,
                Block::Id,
                Some((desc_r.start, Block::Descriptors)),
            )?;
            // `read_block` returned all of the two blocks, so this always splits.
            let (id, desc) = both
                .split_at_checked(header.name_size as usize)
                .unwrap_or((&both, &[]));
            Ok(BlobSchema::from_blocks(header, id, desc)?)
        } else {
            let id = read_block(file, id_r, Block::Id, None)?;
            let desc = read_block(file, desc_r, Block::Descriptors, None)?;
            Ok(BlobSchema::from_blocks(header, &id, &desc)?)
        }
    }

    /// Checks the id string and the descriptors, given the header (already validated)
    /// and the two blocks' bytes.
    fn from_blocks(
        header: Header,
        id_block: &[u8],
        desc_block: &[u8],
    ) -> Result<BlobSchema, DecodeError> {
        let id_offset = u64::from(header.id_offset);
        let id = c_str(id_block).ok_or(DecodeError::IdNotTerminated { offset: id_offset })?;
        let id =
            core::str::from_utf8(id).map_err(|_| DecodeError::IdNotUtf8 { offset: id_offset })?;

        let desc_size = DESC_FIXED_SIZE + header.name_size as usize;
        if desc_block.len() as u64 != header.desc_block_len() {
            let desc_r = header.desc_range();
            return Err(DecodeError::Truncated {
                block: Block::Descriptors,
                end: desc_r.end,
                available: desc_r.start + desc_block.len() as u64,
            });
        }
        let mut descriptors = Vec::with_capacity(header.num_desc as usize);
        let mut data_len = 0u64;
        for (index, raw) in desc_block.chunks_exact(desc_size).enumerate() {
            let index = index as u32; // < num_desc
            let base = desc_base(&header, index);
            let d = parse_desc(raw, index, base)?;
            let end = d.byte_range().end;
            if end > MAX_DATA_LEN {
                return Err(DecodeError::DataBlockTooLarge {
                    index,
                    offset: base + D_OFFSET as u64,
                    end,
                    max: MAX_DATA_LEN,
                });
            }
            data_len = data_len.max(end);
            descriptors.push(d);
        }
        check_stats_disjoint(&header, &descriptors)?;
        let data_r = u64::from(header.data_offset)..u64::from(header.data_offset) + data_len;
        check_disjoint(
            (Block::Id, header.id_range()),
            (Block::Data, data_r.clone()),
        )?;
        check_disjoint(
            (Block::Descriptors, header.desc_range()),
            (Block::Data, data_r),
        )?;
        Ok(BlobSchema {
            header,
            id: id.to_owned(),
            descriptors,
            data_len: data_len as usize,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The id string (KVM: `kvm-<pid>`, `kvm-<pid>/vcpu-<n>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The descriptors, in order.
    pub fn descriptors(&self) -> &[StatDesc] {
        &self.descriptors
    }

    /// Length of the data block in bytes: where the furthest stat ends.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Number of `u64` words in the data block.
    pub fn data_words(&self) -> usize {
        self.data_len / WORD_SIZE
    }

    /// Byte range of the data block in the blob or file.
    pub fn data_range(&self) -> Range<u64> {
        let start = u64::from(self.header.data_offset);
        start..start + self.data_len as u64
    }

    /// Index of the first descriptor named `name` (a linear scan).
    pub fn find(&self, name: &str) -> Option<usize> {
        self.descriptors.iter().position(|d| d.name == name)
    }

    /// The first descriptor named `name`.
    pub fn get(&self, name: &str) -> Option<&StatDesc> {
        self.descriptors.iter().find(|d| d.name == name)
    }
}

/// Byte offset of descriptor `index`.
fn desc_base(header: &Header, index: u32) -> u64 {
    u64::from(header.desc_offset) + u64::from(index) * header.desc_size()
}

fn parse_desc(raw: &[u8], index: u32, base: u64) -> Result<StatDesc, DecodeError> {
    let at = |field: usize| base + field as u64;
    let truncated = || DecodeError::Truncated {
        block: Block::Descriptors,
        end: base + raw.len() as u64,
        available: base,
    };
    let flags = u32_at(raw, D_FLAGS).ok_or_else(truncated)?;
    let exponent = i16::from_ne_bytes(bytes_at(raw, D_EXPONENT).ok_or_else(truncated)?);
    let size = u16::from_ne_bytes(bytes_at(raw, D_SIZE).ok_or_else(truncated)?);
    let stat_offset = u32_at(raw, D_OFFSET).ok_or_else(truncated)?;
    let bucket_size = u32_at(raw, D_BUCKET_SIZE).ok_or_else(truncated)?;
    let name = raw.get(D_NAME..).ok_or_else(truncated)?;

    let name = c_str(name).ok_or(DecodeError::NameNotTerminated {
        index,
        offset: at(D_NAME),
    })?;
    if name.is_empty() {
        return Err(DecodeError::NameEmpty {
            index,
            offset: at(D_NAME),
        });
    }
    let name = core::str::from_utf8(name).map_err(|_| DecodeError::NameNotUtf8 {
        index,
        offset: at(D_NAME),
    })?;

    let offset = at(D_FLAGS);
    if flags & !FLAGS_DEFINED != 0 {
        return Err(DecodeError::ReservedFlags {
            index,
            offset,
            flags,
        });
    }
    let code = (flags & KIND_MASK) >> KIND_SHIFT;
    let kind = Kind::from_code(code, bucket_size).ok_or(DecodeError::UnknownKind {
        index,
        offset,
        code,
    })?;
    let code = (flags & UNIT_MASK) >> UNIT_SHIFT;
    let unit = Unit::from_code(code).ok_or(DecodeError::UnknownUnit {
        index,
        offset,
        code,
    })?;
    let code = (flags & BASE_MASK) >> BASE_SHIFT;
    let base_ = Base::from_code(code).ok_or(DecodeError::UnknownBase {
        index,
        offset,
        code,
    })?;
    if !unit.exponent_allowed(exponent) {
        return Err(DecodeError::BadExponent {
            index,
            offset: at(D_EXPONENT),
            unit,
            exponent,
        });
    }
    if size == 0 {
        return Err(DecodeError::ZeroSize {
            index,
            offset: at(D_SIZE),
        });
    }
    match kind {
        Kind::LinearHistogram { bucket_size: 0 } => {
            return Err(DecodeError::ZeroBucketSize {
                index,
                offset: at(D_BUCKET_SIZE),
            });
        }
        Kind::LinearHistogram { .. } => {}
        _ if bucket_size != 0 => {
            return Err(DecodeError::UnexpectedBucketSize {
                index,
                offset: at(D_BUCKET_SIZE),
                bucket_size,
            });
        }
        _ => {}
    }
    if stat_offset as usize % WORD_SIZE != 0 {
        return Err(DecodeError::MisalignedStat {
            index,
            offset: at(D_OFFSET),
            stat_offset,
        });
    }
    Ok(StatDesc {
        name: name.to_owned(),
        kind,
        unit,
        scale: Scale {
            base: base_,
            exponent,
        },
        size,
        offset: stat_offset,
    })
}

/// `Err(StatsOverlap)` when two stats share a word. After sorting by start, two
/// non-empty ranges overlap only if some adjacent pair does.
fn check_stats_disjoint(header: &Header, descriptors: &[StatDesc]) -> Result<(), DecodeError> {
    let mut spans: Vec<(u64, u64, u32)> = descriptors
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let r = d.byte_range();
            (r.start, r.end, i as u32)
        })
        .collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        if let [(_, end, other), (start, _, index)] = *pair {
            if start < end {
                let offset = desc_base(header, index) + D_OFFSET as u64;
                return Err(DecodeError::StatsOverlap {
                    index,
                    offset,
                    other,
                });
            }
        }
    }
    Ok(())
}

/// A whole blob, decoded and checked: the schema and the data words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    schema: BlobSchema,
    data: Vec<u64>,
}

impl Blob {
    /// Decodes a whole blob (as one read of a statistics file returns it), checking
    /// every rule. Bytes after the data block are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Blob, DecodeError> {
        let schema = BlobSchema::parse(bytes)?;
        let data = slice(bytes, Block::Data, schema.data_range())?;
        let mut words = Vec::new();
        words_from_bytes(data, &mut words);
        Ok(Blob {
            schema,
            data: words,
        })
    }

    /// Reads a whole blob from an open file ([`StatsFile::open`], keeping the result).
    pub fn read<F: FileExt + ?Sized>(file: &F) -> Result<Blob, ReadError> {
        let schema = BlobSchema::read(file)?;
        let raw = read_block(file, schema.data_range(), Block::Data, None)?;
        let mut data = Vec::new();
        words_from_bytes(&raw, &mut data);
        Ok(Blob { schema, data })
    }

    /// The schema part.
    pub fn schema(&self) -> &BlobSchema {
        &self.schema
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.schema.header
    }

    /// The id string.
    pub fn id(&self) -> &str {
        &self.schema.id
    }

    /// The descriptors, in order.
    pub fn descriptors(&self) -> &[StatDesc] {
        &self.schema.descriptors
    }

    /// The data block as words.
    pub fn data(&self) -> &[u64] {
        &self.data
    }

    /// The first stat named `name` (a linear scan: to look up many stats, keep their
    /// indices from [`BlobSchema::find`] and use [`Blob::stat_at`]).
    pub fn stat(&self, name: &str) -> Option<Stat<'_>> {
        stat_of(self.schema.get(name)?, &self.data)
    }

    /// The stat of descriptor `index`.
    pub fn stat_at(&self, index: usize) -> Option<Stat<'_>> {
        stat_of(self.schema.descriptors.get(index)?, &self.data)
    }

    /// The words of the first stat named `name`.
    pub fn values(&self, name: &str) -> Option<&[u64]> {
        self.stat(name).map(|s| s.values)
    }

    /// The first word of the first stat named `name`.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.stat(name).map(|s| s.value())
    }

    /// Every stat, in descriptor order.
    pub fn iter(&self) -> impl Iterator<Item = Stat<'_>> + '_ {
        self.schema
            .descriptors
            .iter()
            .filter_map(|d| stat_of(d, &self.data))
    }

    /// The schema and the data words.
    pub fn into_parts(self) -> (BlobSchema, Vec<u64>) {
        (self.schema, self.data)
    }
}

fn stat_of<'a>(desc: &'a StatDesc, data: &'a [u64]) -> Option<Stat<'a>> {
    Some(Stat {
        desc,
        values: data.get(desc.words())?,
    })
}

/// An open statistics file: the schema read once, the data block re-read on demand
/// with one positioned read into a reused buffer. It reads as the [`Blob`] of its last
/// read (`Deref`): `file.value("exits")`, `file.schema()`, `file.data()`.
///
/// `F` is anything with positioned reads: a [`File`](std::fs::File), or a test double.
#[derive(Debug)]
pub struct StatsFile<F> {
    file: F,
    blob: Blob,
    raw: Vec<u8>,
}

impl<F: FileExt> StatsFile<F> {
    /// Reads the header, then the id string and descriptors, then the data block, and
    /// checks everything.
    pub fn open(file: F) -> Result<Self, ReadError> {
        let blob = Blob::read(&file)?;
        Ok(StatsFile {
            file,
            blob,
            raw: Vec::new(),
        })
    }

    /// Re-reads the data block: one positioned read (continued only if the system
    /// returns fewer bytes), no allocation after the first. The schema is not read
    /// again: only the data block changes over the life of a statistics file.
    pub fn refresh(&mut self) -> Result<&[u64], ReadError> {
        let schema = &self.blob.schema;
        let r = schema.data_range();
        if !r.is_empty() {
            self.raw.resize(schema.data_len, 0);
            read_exact_at(&self.file, &mut self.raw, r.start, Block::Data)?;
            words_from_bytes(&self.raw, &mut self.blob.data);
        }
        Ok(&self.blob.data)
    }

    /// Re-reads the words of descriptor `index` alone, with one positioned read;
    /// `None` if there is no such descriptor.
    pub fn refresh_stat(&mut self, index: usize) -> Option<Result<&[u64], ReadError>> {
        let schema = &self.blob.schema;
        let d = schema.descriptors.get(index)?;
        let r = d.byte_range();
        let (words, bytes) = (d.words(), r.start as usize..r.end as usize);
        let pos = u64::from(schema.header.data_offset) + r.start;
        self.raw.resize(schema.data_len, 0);
        let buf = self.raw.get_mut(bytes)?;
        if let Err(e) = read_exact_at(&self.file, buf, pos, Block::Data) {
            return Some(Err(e));
        }
        let out = self.blob.data.get_mut(words)?;
        for (w, c) in out.iter_mut().zip(buf.chunks_exact(WORD_SIZE)) {
            *w = word(c);
        }
        Some(Ok(&*out))
    }

    /// A copy of the schema and the last data read.
    pub fn to_blob(&self) -> Blob {
        self.blob.clone()
    }

    /// The file.
    pub fn get_ref(&self) -> &F {
        &self.file
    }

    /// Gives the file back.
    pub fn into_inner(self) -> F {
        self.file
    }
}

impl<F> std::ops::Deref for StatsFile<F> {
    type Target = Blob;

    /// The schema read at open and the data of the last read.
    fn deref(&self) -> &Blob {
        &self.blob
    }
}

/// The bytes of `range`, or `Truncated` naming `block`. An empty block is never
/// truncated, wherever it is.
fn slice(bytes: &[u8], block: Block, range: Range<u64>) -> Result<&[u8], DecodeError> {
    if range.is_empty() {
        return Ok(&[]);
    }
    let available = bytes.len() as u64;
    let truncated = DecodeError::Truncated {
        block,
        end: range.end,
        available,
    };
    let start = usize::try_from(range.start).map_err(|_| truncated.clone())?;
    let end = usize::try_from(range.end).map_err(|_| truncated.clone())?;
    bytes.get(start..end).ok_or(truncated)
}

/// The bytes before the first NUL, if there is one.
fn c_str(bytes: &[u8]) -> Option<&[u8]> {
    let n = bytes.iter().position(|&b| b == 0)?;
    bytes.get(..n)
}

/// The `N` bytes at `at`.
fn bytes_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..)?.first_chunk().copied()
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes_at(bytes, at).map(u32::from_ne_bytes)
}

fn word(chunk: &[u8]) -> u64 {
    u64::from_ne_bytes(<[u8; WORD_SIZE]>::try_from(chunk).unwrap_or_default())
}

/// Replaces `out` with the native-endian words of `bytes` (whose length is a multiple
/// of 8).
fn words_from_bytes(bytes: &[u8], out: &mut Vec<u64>) {
    out.clear();
    out.extend(bytes.chunks_exact(WORD_SIZE).map(word));
}

/// Largest buffer allocated before the bytes are known to exist: blocks are read in
/// chunks growing from this size, so a header claiming a huge block for a small file
/// costs at most this much.
const FIRST_CHUNK: usize = 1 << 20;

/// Reads `range` of `file`, growing the buffer only as bytes arrive. The block named
/// in a `Truncated` error is `block`, or the second one from `then = (offset, block)`
/// if the file ends past that offset.
fn read_block<F: FileExt + ?Sized>(
    file: &F,
    range: Range<u64>,
    block: Block,
    then: Option<(u64, Block)>,
) -> Result<Vec<u8>, ReadError> {
    let len = (range.end - range.start) as usize; // bounded by MAX_*_LEN
    let mut buf = Vec::new();
    let mut filled = 0usize;
    while filled < len {
        if filled == buf.len() {
            let grow = buf.len().max(FIRST_CHUNK).min(len - buf.len());
            buf.resize(buf.len() + grow, 0);
        }
        let pos = range.start + filled as u64;
        // The block at `pos`, and where it ends.
        let (block, end) = match then {
            Some((at, second)) if pos >= at => (second, range.end),
            Some((at, _)) => (block, at),
            None => (block, range.end),
        };
        let Some(dst) = buf.get_mut(filled..) else {
            break;
        };
        match file.read_at(dst, pos) {
            Ok(0) => {
                return Err(DecodeError::Truncated {
                    block,
                    end,
                    available: pos,
                }
                .into())
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ReadError::Io {
                    block,
                    offset: pos,
                    source,
                })
            }
        }
    }
    Ok(buf)
}

/// Fills `buf` from `offset`: one `pread` unless the system returns fewer bytes.
fn read_exact_at<F: FileExt + ?Sized>(
    file: &F,
    buf: &mut [u8],
    offset: u64,
    block: Block,
) -> Result<(), ReadError> {
    let mut filled = 0usize;
    while let Some(dst) = buf.get_mut(filled..).filter(|d| !d.is_empty()) {
        let pos = offset + filled as u64;
        match file.read_at(dst, pos) {
            Ok(0) => {
                let end = offset + buf.len() as u64;
                return Err(DecodeError::Truncated {
                    block,
                    end,
                    available: pos,
                }
                .into());
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ReadError::Io {
                    block,
                    offset: pos,
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::*;
    use crate::Layout;
    use statsfs_core::desc::{Base, Kind, Scale, Unit};
    use std::cell::{Cell, RefCell};

    const ID: &str = "kvm-42/vcpu-3";

    /// Every kind, every unit and both bases, histograms included.
    fn entries() -> Vec<StatDesc> {
        let s = |base, exponent| Scale { base, exponent };
        vec![
            StatDesc::new("exits", Kind::Cumulative, Unit::None, Scale::ONE, 1),
            StatDesc::new("pages", Kind::Instant, Unit::Bytes, s(Base::Two, 12), 1),
            StatDesc::new("max_wait_ns", Kind::Peak, Unit::Seconds, Scale::NANO, 1),
            StatDesc::new(
                "tsc_offset",
                Kind::Instant,
                Unit::Cycles,
                s(Base::Ten, 3),
                1,
            ),
            StatDesc::new("enabled", Kind::Instant, Unit::Boolean, Scale::ONE, 1),
            StatDesc::new(
                "lat_us",
                Kind::LinearHistogram { bucket_size: 250 },
                Unit::Seconds,
                Scale::MICRO,
                5,
            ),
            StatDesc::new("sizes", Kind::LogHistogram, Unit::Bytes, Scale::KIB, 8),
            StatDesc::new(
                "posted",
                Kind::LinearHistogram { bucket_size: 1 },
                Unit::Boolean,
                Scale::ONE,
                2,
            ),
            StatDesc::new("ever_on", Kind::Peak, Unit::Boolean, Scale::ONE, 1),
            StatDesc::new("cycles", Kind::Cumulative, Unit::Cycles, s(Base::Two, 0), 1),
        ]
    }

    fn words() -> Vec<u64> {
        let mut w: Vec<u64> = (0..22u64).map(|i| i * 1_000_003 + 1).collect();
        w[1] = (-1i64) as u64;
        w[3] = i64::MIN as u64;
        w[4] = 1;
        w[21] = u64::MAX;
        w
    }

    fn fixture() -> (Layout, Vec<u8>) {
        let layout = Layout::new(ID, &entries()).unwrap();
        let blob = layout.encode(&words()).unwrap();
        (layout, blob)
    }

    fn desc_at(l: &Layout, i: usize) -> usize {
        l.desc_offset() + i * (DESC_FIXED_SIZE + l.name_size() as usize)
    }

    fn get_u32(b: &[u8], at: usize) -> u32 {
        u32_at(b, at).unwrap()
    }

    fn set_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn set_16(b: &mut [u8], at: usize, v: [u8; 2]) {
        b[at..at + 2].copy_from_slice(&v);
    }

    #[test]
    fn round_trip_every_kind_unit_and_base() {
        let (layout, blob) = fixture();
        assert_eq!(
            (layout.name_size(), layout.data_offset(), layout.total_len()),
            (48, 712, 888)
        );
        let decoded = Blob::decode(&blob).unwrap();
        assert_eq!(decoded.id(), ID);
        assert_eq!(decoded.data(), &words()[..]);
        assert_eq!(*decoded.header(), *layout.header());
        assert_eq!(decoded.schema().data_len(), layout.data_len());
        assert_eq!(decoded.schema().data_words(), 22);
        assert_eq!(decoded.schema().data_range(), 712..888);
        for (i, (e, d)) in entries().iter().zip(decoded.descriptors()).enumerate() {
            assert_eq!(d.name, e.name);
            assert_eq!(d.kind, e.kind);
            assert_eq!(d.unit, e.unit);
            assert_eq!(d.scale, e.scale);
            assert_eq!(d.size, e.size);
            assert_eq!(d.bucket_size(), e.bucket_size());
            assert_eq!(d.words(), layout.word_range(i).unwrap());
            assert_eq!(d.offset as usize, layout.word_index(i).unwrap() * 8);
            assert_eq!(decoded.schema().find(&e.name), Some(i));
        }
        assert_eq!(decoded.value("exits"), Some(1));
        assert_eq!(decoded.stat("pages").unwrap().value_i64(), -1);
        assert_eq!(decoded.stat("tsc_offset").unwrap().value_i64(), i64::MIN);
        assert_eq!(decoded.value("enabled"), Some(1));
        assert_eq!(decoded.values("lat_us"), Some(&words()[5..10]));
        assert_eq!(decoded.values("cycles"), Some(&[u64::MAX][..]));
        assert!(decoded.stat("nope").is_none());
        assert_eq!(decoded.stat_at(6).unwrap().desc.name, "sizes");
        assert!(decoded.stat_at(10).is_none());
        assert_eq!(decoded.iter().count(), 10);
        assert_eq!(decoded.iter().map(|s| s.values.len()).sum::<usize>(), 22);
        let (schema, data) = decoded.clone().into_parts();
        assert_eq!((schema.id(), data.len()), (ID, 22));
        // Trailing bytes are ignored; the schema part alone parses.
        let mut longer = blob.clone();
        longer.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Blob::decode(&longer).unwrap(), decoded);
        assert_eq!(
            &BlobSchema::parse(&blob[..layout.data_offset()]).unwrap(),
            decoded.schema()
        );
    }

    #[test]
    fn an_empty_schema_round_trips() {
        let layout = Layout::new("kvm-1", &[]).unwrap();
        let decoded = Blob::decode(&layout.encode(&[]).unwrap()).unwrap();
        assert_eq!(
            (
                decoded.id(),
                decoded.descriptors().len(),
                decoded.data().len()
            ),
            ("kvm-1", 0, 0)
        );
        let decoded = Blob::decode(&Layout::new("", &[]).unwrap().encode(&[]).unwrap()).unwrap();
        assert_eq!(decoded.id(), "");
        // Empty blocks are never truncated, wherever the header puts them.
        let mut blob = layout.encode(&[]).unwrap();
        set_u32(&mut blob, H_DESC_OFFSET, 4096);
        set_u32(&mut blob, H_DATA_OFFSET, 8192);
        assert_eq!(Blob::decode(&blob).unwrap().id(), "kvm-1");
        assert_eq!(Blob::read(&MockFile::new(blob)).unwrap().id(), "kvm-1");
    }

    #[test]
    fn long_names_round_trip() {
        let long = "n".repeat(4095);
        let entries = [StatDesc::counter(&long), StatDesc::counter("b")];
        let layout = Layout::new(&long[..100], &entries).unwrap();
        assert_eq!(layout.name_size(), 4096);
        let decoded = Blob::decode(&layout.encode(&[1, 2]).unwrap()).unwrap();
        assert_eq!(decoded.value(&long), Some(1));
        assert_eq!(decoded.id(), &long[..100]);
    }

    /// Applies `mutate` to a valid blob and expects exactly `want`.
    fn broken(mutate: impl FnOnce(&Layout, &mut Vec<u8>), want: DecodeError) {
        let (layout, mut blob) = fixture();
        mutate(&layout, &mut blob);
        let got = Blob::decode(&blob);
        assert_eq!(got, Err(want.clone()), "expected {want}");
        assert!(!want.to_string().is_empty());
    }

    #[test]
    fn header_rules() {
        broken(
            |_, b| set_u32(b, 0, 2),
            DecodeError::HeaderFlags { flags: 2 },
        );
        broken(
            |_, b| set_u32(b, H_NAME_SIZE, 0),
            DecodeError::BadNameSize { name_size: 0 },
        );
        broken(
            |_, b| set_u32(b, H_NAME_SIZE, 52),
            DecodeError::BadNameSize { name_size: 52 },
        );
        broken(
            |_, b| set_u32(b, H_NAME_SIZE, 4104),
            DecodeError::NameSizeTooLarge {
                name_size: 4104,
                max: MAX_NAME_SIZE,
            },
        );
        broken(
            |_, b| set_u32(b, H_NUM_DESC, MAX_NUM_DESC + 1),
            DecodeError::TooManyDescriptors {
                num_desc: MAX_NUM_DESC + 1,
                max: MAX_NUM_DESC,
            },
        );
        broken(
            |_, b| {
                set_u32(b, H_NUM_DESC, MAX_NUM_DESC);
                set_u32(b, H_NAME_SIZE, 56);
            },
            DecodeError::DescBlockTooLarge {
                len: u64::from(MAX_NUM_DESC) * 72,
                max: MAX_DESC_BLOCK_LEN,
            },
        );
    }

    #[test]
    fn offset_rules() {
        for (block, at) in [
            (Block::Id, H_ID_OFFSET),
            (Block::Descriptors, H_DESC_OFFSET),
            (Block::Data, H_DATA_OFFSET),
        ] {
            broken(|_, b| set_u32(b, at, 0), DecodeError::ZeroOffset { block });
            broken(
                |_, b| set_u32(b, at, 16),
                DecodeError::OffsetInHeader { block, offset: 16 },
            );
            broken(
                |_, b| set_u32(b, at, 23),
                DecodeError::OffsetInHeader { block, offset: 23 },
            );
            let offset = get_u32(&fixture().1, at) + 4;
            broken(
                |_, b| set_u32(b, at, offset),
                DecodeError::MisalignedOffset { block, offset },
            );
        }
    }

    #[test]
    fn blocks_must_not_overlap() {
        broken(
            |_, b| set_u32(b, H_DESC_OFFSET, 32),
            DecodeError::BlocksOverlap {
                first: Block::Id,
                first_range: 24..72,
                second: Block::Descriptors,
                second_range: 32..672,
            },
        );
        broken(
            |_, b| set_u32(b, H_ID_OFFSET, 704),
            DecodeError::BlocksOverlap {
                first: Block::Descriptors,
                first_range: 72..712,
                second: Block::Id,
                second_range: 704..752,
            },
        );
        broken(
            |_, b| set_u32(b, H_DATA_OFFSET, 80),
            DecodeError::BlocksOverlap {
                first: Block::Descriptors,
                first_range: 72..712,
                second: Block::Data,
                second_range: 80..256,
            },
        );
        broken(
            |_, b| set_u32(b, H_DATA_OFFSET, 24),
            DecodeError::BlocksOverlap {
                first: Block::Id,
                first_range: 24..72,
                second: Block::Data,
                second_range: 24..200,
            },
        );
    }

    /// The kernel does not promise the blocks are adjacent or in order; only aligned
    /// and disjoint. Data first (at 32), a gap, the id (at 224), a gap, the descriptors
    /// (at 280).
    fn reordered() -> Vec<u8> {
        let (layout, blob) = fixture();
        let (data, id, desc) = (
            &blob[layout.data_range()],
            &blob[24..72],
            &blob[layout.desc_offset()..layout.data_offset()],
        );
        let mut out = blob[..24].to_vec();
        out.extend_from_slice(&[0; 8]);
        let data_at = out.len();
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 16]);
        let id_at = out.len();
        out.extend_from_slice(id);
        out.extend_from_slice(&[0; 8]);
        let desc_at = out.len();
        out.extend_from_slice(desc);
        set_u32(&mut out, H_ID_OFFSET, id_at as u32);
        set_u32(&mut out, H_DESC_OFFSET, desc_at as u32);
        set_u32(&mut out, H_DATA_OFFSET, data_at as u32);
        out
    }

    #[test]
    fn blocks_in_any_order_are_accepted() {
        let (_, blob) = fixture();
        let a = Blob::decode(&blob).unwrap();
        let b = Blob::decode(&reordered()).unwrap();
        assert_eq!(
            (a.id(), a.descriptors(), a.data()),
            (b.id(), b.descriptors(), b.data())
        );
        assert_eq!(b.header().data_offset, 32);
    }

    #[test]
    fn id_and_name_rules() {
        broken(
            |_, b| b[24..72].fill(b'x'),
            DecodeError::IdNotTerminated { offset: 24 },
        );
        broken(|_, b| b[24] = 0xff, DecodeError::IdNotUtf8 { offset: 24 });
        let name = |l: &Layout, i| desc_at(l, i) + D_NAME;
        let (l, _) = fixture();
        broken(
            |l, b| {
                let at = name(l, 3);
                b[at..at + 48].fill(b'a');
            },
            DecodeError::NameNotTerminated {
                index: 3,
                offset: name(&l, 3) as u64,
            },
        );
        broken(
            |l, b| b[name(l, 2)] = 0,
            DecodeError::NameEmpty {
                index: 2,
                offset: name(&l, 2) as u64,
            },
        );
        broken(
            |l, b| b[name(l, 1)..name(l, 1) + 2].copy_from_slice(&[0xc3, 0x28]),
            DecodeError::NameNotUtf8 {
                index: 1,
                offset: name(&l, 1) as u64,
            },
        );
    }

    #[test]
    fn flag_rules() {
        let (l, blob) = fixture();
        let flags_of = |i| get_u32(&blob, desc_at(&l, i));
        let at = |i| desc_at(&l, i) as u64;
        let f4 = flags_of(4) | 1 << 12;
        broken(
            |l, b| set_u32(b, desc_at(l, 4), f4),
            DecodeError::ReservedFlags {
                index: 4,
                offset: at(4),
                flags: f4,
            },
        );
        let f = flags_of(4) | 1 << 31;
        broken(
            |l, b| set_u32(b, desc_at(l, 4), f),
            DecodeError::ReservedFlags {
                index: 4,
                offset: at(4),
                flags: f,
            },
        );
        for code in [5, 15] {
            let f = (flags_of(0) & !KIND_MASK) | code;
            broken(
                |l, b| set_u32(b, desc_at(l, 0), f),
                DecodeError::UnknownKind {
                    index: 0,
                    offset: at(0),
                    code,
                },
            );
        }
        for code in [5, 15] {
            let f = (flags_of(1) & !UNIT_MASK) | code << UNIT_SHIFT;
            broken(
                |l, b| set_u32(b, desc_at(l, 1), f),
                DecodeError::UnknownUnit {
                    index: 1,
                    offset: at(1),
                    code,
                },
            );
        }
        for code in [2, 15] {
            let f = (flags_of(6) & !BASE_MASK) | code << BASE_SHIFT;
            broken(
                |l, b| set_u32(b, desc_at(l, 6), f),
                DecodeError::UnknownBase {
                    index: 6,
                    offset: at(6),
                    code,
                },
            );
        }
    }

    #[test]
    fn exponent_rules() {
        let (l, _) = fixture();
        // (descriptor, unit, a bad exponent); 0 none, 1 bytes, 9 cycles, 2 seconds, 4 boolean
        let cases = [
            (0, Unit::None, -1),
            (1, Unit::Bytes, -1),
            (9, Unit::Cycles, -3),
            (2, Unit::Seconds, 1),
            (4, Unit::Boolean, 1),
            (4, Unit::Boolean, -1),
        ];
        for (i, unit, exponent) in cases {
            let offset = (desc_at(&l, i) + D_EXPONENT) as u64;
            broken(
                |l, b| set_16(b, desc_at(l, i) + D_EXPONENT, i16::to_ne_bytes(exponent)),
                DecodeError::BadExponent {
                    index: i as u32,
                    offset,
                    unit,
                    exponent,
                },
            );
        }
        // And the good ones pass: a positive exponent for bytes, negative for seconds.
        let mut blob = fixture().1;
        set_16(&mut blob, desc_at(&l, 1) + D_EXPONENT, 30i16.to_ne_bytes());
        set_16(
            &mut blob,
            desc_at(&l, 2) + D_EXPONENT,
            (-12i16).to_ne_bytes(),
        );
        let d = Blob::decode(&blob).unwrap();
        assert_eq!(
            (
                d.descriptors()[1].scale.exponent,
                d.descriptors()[2].scale.exponent
            ),
            (30, -12)
        );
    }

    #[test]
    fn size_and_bucket_rules() {
        let (l, _) = fixture();
        let at = |i: usize, f: usize| (desc_at(&l, i) + f) as u64;
        broken(
            |l, b| set_16(b, desc_at(l, 0) + D_SIZE, [0, 0]),
            DecodeError::ZeroSize {
                index: 0,
                offset: at(0, D_SIZE),
            },
        );
        broken(
            |l, b| set_u32(b, desc_at(l, 5) + D_BUCKET_SIZE, 0),
            DecodeError::ZeroBucketSize {
                index: 5,
                offset: at(5, D_BUCKET_SIZE),
            },
        );
        broken(
            |l, b| set_u32(b, desc_at(l, 0) + D_BUCKET_SIZE, 7),
            DecodeError::UnexpectedBucketSize {
                index: 0,
                offset: at(0, D_BUCKET_SIZE),
                bucket_size: 7,
            },
        );
        broken(
            |l, b| set_u32(b, desc_at(l, 6) + D_BUCKET_SIZE, 1),
            DecodeError::UnexpectedBucketSize {
                index: 6,
                offset: at(6, D_BUCKET_SIZE),
                bucket_size: 1,
            },
        );
    }

    #[test]
    fn stat_offset_rules() {
        let (l, _) = fixture();
        let at = |i: usize| (desc_at(&l, i) + D_OFFSET) as u64;
        broken(
            |l, b| set_u32(b, desc_at(l, 1) + D_OFFSET, 12),
            DecodeError::MisalignedStat {
                index: 1,
                offset: at(1),
                stat_offset: 12,
            },
        );
        broken(
            |l, b| set_u32(b, desc_at(l, 9) + D_OFFSET, 0xffff_fff8),
            DecodeError::DataBlockTooLarge {
                index: 9,
                offset: at(9),
                end: 0x1_0000_0000,
                max: MAX_DATA_LEN,
            },
        );
        broken(
            |l, b| set_u32(b, desc_at(l, 1) + D_OFFSET, 0),
            DecodeError::StatsOverlap {
                index: 1,
                offset: at(1),
                other: 0,
            },
        );
        // The log histogram (words 10..18) moved to start inside the linear one (5..10).
        broken(
            |l, b| set_u32(b, desc_at(l, 6) + D_OFFSET, 9 * 8),
            DecodeError::StatsOverlap {
                index: 6,
                offset: at(6),
                other: 5,
            },
        );
        // Gaps are fine: the data block grows to the furthest stat.
        let mut blob = fixture().1;
        set_u32(&mut blob, desc_at(&l, 9) + D_OFFSET, 30 * 8);
        assert_eq!(
            Blob::decode(&blob),
            Err(DecodeError::Truncated {
                block: Block::Data,
                end: 712 + 31 * 8,
                available: 888
            })
        );
        blob.resize(712 + 31 * 8, 0);
        assert_eq!(Blob::decode(&blob).unwrap().schema().data_words(), 31);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let (layout, blob) = fixture();
        for n in 0..blob.len() {
            let err = Blob::decode(&blob[..n]).unwrap_err();
            let DecodeError::Truncated {
                block,
                end,
                available,
            } = err
            else {
                panic!("{n}: {err:?}")
            };
            assert_eq!(available, n as u64);
            let want = match n {
                0..24 => (Block::Header, 24),
                24..72 => (Block::Id, 72),
                72..712 => (Block::Descriptors, 712),
                _ => (Block::Data, 888),
            };
            assert_eq!((block, end), want, "at {n}");
            assert_eq!(
                BlobSchema::parse(&blob[..n]).is_ok(),
                n >= layout.data_offset()
            );
        }
        let reordered = reordered();
        for n in 0..reordered.len() {
            assert!(
                matches!(
                    Blob::decode(&reordered[..n]),
                    Err(DecodeError::Truncated { .. })
                ),
                "{n}"
            );
        }
    }

    /// xorshift64: a tiny deterministic generator for the mutation tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Flips a few bytes of `blob`, favouring the header and the descriptors' fixed
    /// parts so that mutations reach every check, and sometimes truncates it.
    fn mutate(rng: &mut Rng, layout: &Layout, blob: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(4) {
            let at = match rng.below(4) {
                0 => rng.below(HEADER_SIZE),
                1 => desc_at(layout, rng.below(layout.num_desc())) + rng.below(DESC_FIXED_SIZE),
                _ => rng.below(blob.len()),
            };
            blob[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => blob[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        if rng.below(16) == 0 {
            let n = rng.below(blob.len());
            blob.truncate(n);
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        let (layout, blob) = fixture();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut ok, mut err) = (0, 0);
        for _ in 0..100_000 {
            let mut b = blob.clone();
            mutate(&mut rng, &layout, &mut b);
            match Blob::decode(&b) {
                Ok(d) => {
                    ok += 1;
                    let n: usize = d.iter().map(|s| s.values.len()).sum();
                    assert!(n <= d.data().len());
                    assert_eq!(d.data().len(), d.schema().data_words());
                }
                Err(e) => {
                    err += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        // Both outcomes are exercised.
        assert!(ok > 1000 && err > 1000, "ok {ok}, err {err}");
    }

    /// An in-memory file that counts its positioned reads and can misbehave.
    #[derive(Debug, Default)]
    struct MockFile {
        bytes: RefCell<Vec<u8>>,
        reads: Cell<usize>,
        largest_buf: Cell<usize>,
        /// At most this many bytes per read (short reads).
        max_read: Option<usize>,
        /// Fail every read with EINTR this many times first.
        interrupts: Cell<usize>,
        /// Fail a read that would return this byte.
        fail_at: Option<u64>,
    }

    impl MockFile {
        fn new(bytes: Vec<u8>) -> Self {
            MockFile {
                bytes: RefCell::new(bytes),
                ..Default::default()
            }
        }
    }

    impl FileExt for MockFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.reads.set(self.reads.get() + 1);
            self.largest_buf.set(self.largest_buf.get().max(buf.len()));
            if self.interrupts.get() > 0 {
                self.interrupts.set(self.interrupts.get() - 1);
                return Err(io::ErrorKind::Interrupted.into());
            }
            let bytes = self.bytes.borrow();
            let src = bytes.get(offset as usize..).unwrap_or(&[]);
            let n = src
                .len()
                .min(buf.len())
                .min(self.max_read.unwrap_or(usize::MAX));
            if self
                .fail_at
                .is_some_and(|at| offset <= at && at < offset + n as u64)
            {
                return Err(io::Error::other("disk on fire"));
            }
            buf[..n].copy_from_slice(&src[..n]);
            Ok(n)
        }

        fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
            let mut bytes = self.bytes.borrow_mut();
            let end = offset as usize + buf.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[offset as usize..end].copy_from_slice(buf);
            Ok(buf.len())
        }
    }

    #[test]
    fn a_file_is_read_in_three_preads_and_refreshed_in_one() {
        let (layout, blob) = fixture();
        let mut f = StatsFile::open(MockFile::new(blob.clone())).unwrap();
        assert_eq!(f.get_ref().reads.get(), 3); // header, id + descriptors, data
        assert_eq!(f.to_blob(), Blob::decode(&blob).unwrap());
        assert_eq!(f.value("exits"), Some(1));

        let mut new = words();
        new[0] = 77;
        new[7] = 5;
        f.get_ref()
            .write_at(&layout.encode(&new).unwrap()[layout.data_range()], 712)
            .unwrap();
        f.get_ref().reads.set(0);
        assert_eq!(f.refresh().unwrap(), &new[..]);
        assert_eq!(f.get_ref().reads.get(), 1);
        assert_eq!(f.value("exits"), Some(77));
        assert_eq!(f.values("lat_us").unwrap()[2], 5);

        // One stat alone: one pread, only its words change.
        let w = layout.encode(&[9; 22]).unwrap();
        f.get_ref().write_at(&w[layout.data_range()], 712).unwrap();
        f.get_ref().reads.set(0);
        assert_eq!(f.refresh_stat(5).unwrap().unwrap(), &[9; 5]);
        assert_eq!(f.get_ref().reads.get(), 1);
        assert_eq!(f.value("exits"), Some(77));
        assert!(f.refresh_stat(10).is_none());
        assert_eq!(f.stat("lat_us").unwrap().values, &[9; 5]);
        assert_eq!(f.stat_at(5).unwrap().values, &[9; 5]);
        assert_eq!(f.schema().id(), ID);
        assert_eq!(f.data().len(), 22);
        let _file: MockFile = f.into_inner();
    }

    #[test]
    fn short_reads_and_interrupts_are_continued() {
        let (_, blob) = fixture();
        let want = Blob::decode(&blob).unwrap();
        let file = MockFile {
            max_read: Some(5),
            ..MockFile::new(blob.clone())
        };
        file.interrupts.set(3);
        let mut f = StatsFile::open(file).unwrap();
        assert_eq!(f.to_blob(), want);
        f.get_ref().interrupts.set(1);
        assert_eq!(f.refresh().unwrap(), want.data());
        assert_eq!(
            Blob::read(&MockFile::new(reordered())).unwrap().data(),
            want.data()
        );
    }

    #[test]
    fn file_errors_name_the_block() {
        let (_, blob) = fixture();
        // Reads: header at 0, id and descriptors together at 24, data at 712.
        for (at, block, offset) in [
            (0, Block::Header, 0),
            (30, Block::Id, 24),
            (800, Block::Data, 712),
        ] {
            let file = MockFile {
                fail_at: Some(at),
                ..MockFile::new(blob.clone())
            };
            match StatsFile::open(file) {
                Err(ReadError::Io {
                    block: b,
                    offset: o,
                    source,
                }) => {
                    assert_eq!((b, o), (block, offset));
                    assert_eq!(source.to_string(), "disk on fire");
                }
                other => panic!("{other:?}"),
            }
        }
        // Id and descriptors read together, failing inside the descriptors.
        let file = MockFile {
            fail_at: Some(100),
            max_read: Some(60),
            ..MockFile::new(blob.clone())
        };
        assert!(matches!(
            StatsFile::open(file),
            Err(ReadError::Io {
                block: Block::Descriptors,
                offset: 84,
                ..
            })
        ));
        // Reordered (data at 32, id at 224, descriptors at 280): one read per block.
        for (at, block, offset) in [
            (230, Block::Id, 224),
            (300, Block::Descriptors, 280),
            (40, Block::Data, 32),
        ] {
            let file = MockFile {
                fail_at: Some(at),
                ..MockFile::new(reordered())
            };
            assert!(
                matches!(Blob::read(&file), Err(ReadError::Io { block: b, offset: o, .. }) if b == block && o == offset),
                "{at}"
            );
        }
        let mut f = StatsFile::open(MockFile::new(blob.clone())).unwrap();
        f.get_ref().bytes.borrow_mut().truncate(800);
        match f.refresh() {
            Err(ReadError::Invalid(DecodeError::Truncated {
                block: Block::Data,
                end: 888,
                available: 800,
            })) => {}
            other => panic!("{other:?}"),
        }
        let e = StatsFile::open(MockFile {
            fail_at: Some(0),
            ..MockFile::new(blob)
        })
        .unwrap_err();
        // The message names the place; the cause is the source, printed once by a chain.
        assert_eq!(
            e.to_string(),
            "cannot read the header at byte 0 of the stats file"
        );
        let cause = std::error::Error::source(&e).expect("the I/O error is the source");
        assert_eq!(cause.to_string(), "disk on fire");
    }

    #[test]
    fn every_file_truncation_is_an_error() {
        let (_, blob) = fixture();
        for n in 0..blob.len() {
            let err = StatsFile::open(MockFile::new(blob[..n].to_vec())).unwrap_err();
            let ReadError::Invalid(DecodeError::Truncated {
                block,
                end,
                available,
            }) = err
            else {
                panic!("{n}: {err:?}")
            };
            assert_eq!(
                Err(DecodeError::Truncated {
                    block,
                    end,
                    available
                }),
                Blob::decode(&blob[..n])
            );
        }
        let reordered = reordered();
        for n in 0..reordered.len() {
            let err = Blob::read(&MockFile::new(reordered[..n].to_vec())).unwrap_err();
            assert!(
                matches!(err, ReadError::Invalid(DecodeError::Truncated { .. })),
                "{n}: {err:?}"
            );
        }
    }

    #[test]
    fn a_hostile_header_cannot_make_a_reader_allocate_much() {
        // Claims 4Mi descriptors (256 MiB) in a 900-byte file.
        let (_, mut blob) = fixture();
        set_u32(&mut blob, H_NUM_DESC, MAX_NUM_DESC);
        let file = MockFile::new(blob.clone());
        let err = BlobSchema::read(&file).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Invalid(DecodeError::Truncated {
                block: Block::Descriptors,
                ..
            })
        ));
        assert!(
            file.largest_buf.get() <= FIRST_CHUNK,
            "{}",
            file.largest_buf.get()
        );
        // Claims a stat at the end of a 256 MiB data block.
        let (l, mut blob) = fixture();
        set_u32(
            &mut blob,
            desc_at(&l, 9) + D_OFFSET,
            (MAX_DATA_LEN - 8) as u32,
        );
        let file = MockFile::new(blob);
        let err = StatsFile::open(&file as &MockFile).map(|_| ()).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Invalid(DecodeError::Truncated {
                block: Block::Data,
                ..
            })
        ));
        assert!(file.largest_buf.get() <= FIRST_CHUNK);
    }

    impl FileExt for &MockFile {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            (**self).read_at(buf, offset)
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
            (**self).write_at(buf, offset)
        }
    }

    #[test]
    fn random_mutations_through_a_file_never_panic() {
        let (layout, blob) = fixture();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..10_000 {
            let mut b = blob.clone();
            mutate(&mut rng, &layout, &mut b);
            let file = MockFile {
                max_read: Some(1 + rng.below(64)),
                ..MockFile::new(b.clone())
            };
            match (StatsFile::open(file), Blob::decode(&b)) {
                (Ok(mut f), Ok(d)) => {
                    assert_eq!(f.to_blob(), d);
                    assert_eq!(f.refresh().unwrap(), d.data());
                }
                // A file cannot tell how far short of a block it ends.
                (
                    Err(ReadError::Invalid(DecodeError::Truncated {
                        block: a, end: x, ..
                    })),
                    Err(DecodeError::Truncated {
                        block: b, end: y, ..
                    }),
                ) => assert_eq!((a, x), (b, y)),
                (Err(ReadError::Invalid(a)), Err(b)) => assert_eq!(a, b),
                (a, b) => panic!("file {a:?} vs memory {b:?}"),
            }
        }
    }

    #[test]
    fn a_real_file_re_reads_only_the_data_block() {
        use std::fs::OpenOptions;
        let (layout, blob) = fixture();
        let path =
            std::env::temp_dir().join(format!("statsfs-binary-test-{}.bin", std::process::id()));
        std::fs::write(&path, &blob).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let writer = file.try_clone().unwrap();
        let mut f = StatsFile::open(file).unwrap();
        assert_eq!(f.to_blob(), Blob::decode(&blob).unwrap());

        let mut new = words();
        new[0] = 1234;
        new[3] = (-7i64) as u64;
        let data = layout.encode(&new).unwrap();
        writer
            .write_all_at(&data[layout.data_range()], layout.data_offset() as u64)
            .unwrap();
        assert_eq!(f.refresh().unwrap(), &new[..]);
        assert_eq!(f.value("exits"), Some(1234));
        assert_eq!(f.stat("tsc_offset").unwrap().value_i64(), -7);
        assert_eq!(Blob::read(&writer).unwrap().data(), &new[..]);
        drop(f);
        std::fs::remove_file(&path).unwrap();
    }
}
