//! The region's bytes (`docs/REGION.md`): the header fields, and the layout block
//! written by the writer and parsed, as untrusted input, by the reader. The one place
//! that knows the format.

use statsfs_binary::{BlobSchema, Layout, StatDesc};
use statsfs_core::Aggregation;

use crate::error::{FormatError, Problem};

/// `statsfsR`: the magic at offset 0.
pub(super) const MAGIC: u64 = u64::from_le_bytes(*b"statsfsR");
pub(super) const VERSION: u32 = 1;
/// Header fields' offsets.
pub(super) const AT_MAGIC: usize = 0;
pub(super) const AT_VERSION: usize = 8;
pub(super) const AT_FLAGS: usize = 12;
pub(super) const AT_GENERATION: usize = 16;
pub(super) const AT_SIZE: usize = 24;
pub(super) const AT_LAYOUT_OFFSET: usize = 32;
pub(super) const AT_LAYOUT_LEN: usize = 40;
pub(super) const AT_DATA_OFFSET: usize = 48;
pub(super) const AT_DATA_LEN: usize = 56;
/// The flag: the published sources did not fit the layout slot.
pub(super) const FLAG_OVERFLOW: u32 = 1;
/// Where the layout slots start.
pub(super) const LAYOUT_AREA: usize = 4096;
/// Each published struct starts on a cache line of its own.
pub(super) const ALIGN: usize = 64;
const ENTRY_HEADER: usize = 24;
const LOCATION: usize = 16;

/// What an entry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Values that live in the region.
    Values,
    /// Aggregates, folded by the reader from the values below.
    Aggregates,
}

/// Where one stat's words are, and how to read and fold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The byte offset of the first word in the region (0 for aggregates).
    pub offset: u64,
    /// Bytes a word: 1, 2, 4 or 8.
    pub width: u8,
    /// Whether the words are signed (sign-extended to 64 bits when read).
    pub signed: bool,
    /// How aggregates fold it.
    pub aggregation: Aggregation,
    /// Words: 1, or a histogram's buckets.
    pub words: u16,
}

/// One published source, as the layout says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Values or aggregates.
    pub kind: EntryKind,
    /// Whether the source is hidden.
    pub hidden: bool,
    /// Its path from its root (`kvm/1234-5/vcpu0`).
    pub path: String,
    /// Its schema's name.
    pub schema: String,
    /// Its labels (inherited ones included).
    pub labels: Vec<(String, String)>,
    /// Its stats' descriptors, as a bulk file would describe them.
    pub stats: Vec<StatDesc>,
    /// Where each stat is, in the same order.
    pub locations: Vec<Location>,
}

fn aggregation_code(a: Aggregation) -> u8 {
    match a {
        Aggregation::Sum => 0,
        Aggregation::Min => 1,
        Aggregation::Max => 2,
        Aggregation::Avg => 3,
        Aggregation::CountZero => 4,
        _ => 5,
    }
}

fn aggregation_of(code: u8) -> Option<Aggregation> {
    Some(match code {
        0 => Aggregation::Sum,
        1 => Aggregation::Min,
        2 => Aggregation::Max,
        3 => Aggregation::Avg,
        4 => Aggregation::CountZero,
        5 => Aggregation::None,
        _ => return None,
    })
}

/// Zeros to the next multiple of 8 (an entry's parts are aligned from its start).
fn pad8(out: &mut Vec<u8>) {
    while out.len() % 8 != 0 {
        out.push(0);
    }
}

fn u16_len(n: usize, what: &'static str) -> Result<u16, Problem> {
    u16::try_from(n).map_err(|_| Problem::TooLong { what, len: n })
}

/// The layout block for `entries`.
pub(super) fn encode(entries: &[Entry]) -> Result<Vec<u8>, FormatError> {
    let encoded = entries
        .iter()
        .map(encode_entry)
        .collect::<Result<Vec<_>, _>>()?;
    assemble(&encoded)
}

/// The layout block of entries already encoded ([`encode_entry`]).
pub(super) fn assemble(entries: &[Vec<u8>]) -> Result<Vec<u8>, FormatError> {
    let count = u32::try_from(entries.len()).map_err(|_| Problem::TooLarge {
        what: "a count of sources",
    })?;
    let mut out = Vec::with_capacity(8 + entries.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for e in entries {
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// One entry's bytes (a multiple of 8 long), or why it cannot be described (a path or a
/// label too long for the format).
pub(super) fn encode_entry(e: &Entry) -> Result<Vec<u8>, FormatError> {
    let at = |problem| FormatError {
        path: Some(e.path.clone()),
        ..FormatError::block(problem)
    };
    encode_entry_bytes(e).map_err(at)
}

fn encode_entry_bytes(e: &Entry) -> Result<Vec<u8>, Problem> {
    let mut out = Vec::new();
    let blob = Layout::new(&e.path, &e.stats).map_err(Problem::Layout)?;
    // The start of a bulk file: header, id and descriptors, no data.
    let mut blob_bytes = blob.new_blob();
    blob_bytes.truncate(blob.data_offset());
    let mut labels = Vec::new();
    for (k, v) in &e.labels {
        labels.extend_from_slice(&u16_len(k.len(), "a label key")?.to_le_bytes());
        labels.extend_from_slice(k.as_bytes());
        labels.extend_from_slice(&u16_len(v.len(), "a label value")?.to_le_bytes());
        labels.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // the length, filled in below
    out.push(match e.kind {
        EntryKind::Values => 0,
        EntryKind::Aggregates => 1,
    });
    out.push(u8::from(e.hidden));
    out.extend_from_slice(&u16_len(e.path.len(), "a path")?.to_le_bytes());
    out.extend_from_slice(&u16_len(e.schema.len(), "a schema name")?.to_le_bytes());
    out.extend_from_slice(&u16_len(labels.len(), "the labels")?.to_le_bytes());
    out.extend_from_slice(&u16_len(e.stats.len(), "the stats")?.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    let blob_len = u32::try_from(blob_bytes.len()).map_err(|_| Problem::TooLarge {
        what: "a descriptor blob's length",
    })?;
    out.extend_from_slice(&blob_len.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(e.path.as_bytes());
    out.extend_from_slice(e.schema.as_bytes());
    out.extend_from_slice(&labels);
    pad8(&mut out);
    out.extend_from_slice(&blob_bytes);
    pad8(&mut out);
    for l in &e.locations {
        out.extend_from_slice(&l.offset.to_le_bytes());
        out.push(l.width);
        out.push(u8::from(l.signed));
        out.push(aggregation_code(l.aggregation));
        out.push(0);
        out.extend_from_slice(&l.words.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
    }
    let len = u32::try_from(out.len()).map_err(|_| Problem::TooLarge {
        what: "an entry's length",
    })?;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// Reads little-endian integers from a block, every read checked.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&self, at: usize, n: usize) -> Result<&'a [u8], Problem> {
        at.checked_add(n)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or(Problem::RunsPast {
                len: n,
                at,
                block: self.bytes.len(),
            })
    }
    fn u8(&self, at: usize) -> Result<u8, Problem> {
        Ok(self.take(at, 1)?[0])
    }
    fn u16(&self, at: usize) -> Result<u16, Problem> {
        let b = self.take(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Result<u32, Problem> {
        let b = self.take(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: usize) -> Result<u64, Problem> {
        let b = self.take(at, 8)?;
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        Ok(u64::from_le_bytes(w))
    }
    fn text(&self, at: usize, n: usize, what: &'static str) -> Result<String, Problem> {
        let b = self.take(at, n)?;
        String::from_utf8(b.to_vec()).map_err(|_| Problem::NotUtf8 { what, at })
    }
}

impl From<Problem> for FormatError {
    fn from(problem: Problem) -> Self {
        FormatError::block(problem)
    }
}

fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Parses a layout block, checking every length against the block and every location
/// against `data` (the data area's byte range in the region): out of bounds, misaligned
/// or of a bad width is an error, never a panic.
pub(super) fn parse(bytes: &[u8], data: std::ops::Range<u64>) -> Result<Vec<Entry>, FormatError> {
    let c = Cursor { bytes };
    let count = c.u32(0)? as usize;
    if c.u32(4)? != 0 {
        return Err(FormatError::block(Problem::Reserved));
    }
    // Each entry takes at least its fixed part: a count the block cannot hold is a lie.
    if count > bytes.len() / ENTRY_HEADER {
        return Err(FormatError::block(Problem::TooManyEntries {
            count,
            block: bytes.len(),
        }));
    }
    let mut entries = Vec::with_capacity(count);
    let mut at = 8usize;
    for i in 0..count {
        let len = c.u32(at)? as usize;
        if len < ENTRY_HEADER || len % 8 != 0 {
            let problem = Problem::EntryLength { len, parts: None };
            return Err(FormatError::entry(i, problem));
        }
        let entry = c.take(at, len)?;
        let e = Cursor { bytes: entry };
        let kind = match e.u8(4)? {
            0 => EntryKind::Values,
            1 => EntryKind::Aggregates,
            k => return Err(FormatError::entry(i, Problem::Kind(k))),
        };
        let hidden = match e.u8(5)? {
            0 => false,
            1 => true,
            h => return Err(FormatError::entry(i, Problem::Hidden(h))),
        };
        let (p, n, l, s) = (
            e.u16(6)? as usize,
            e.u16(8)? as usize,
            e.u16(10)? as usize,
            e.u16(12)? as usize,
        );
        if e.u16(14)? != 0 || e.u32(20)? != 0 {
            return Err(FormatError::entry(i, Problem::Reserved));
        }
        let d = e.u32(16)? as usize;
        let mut off = ENTRY_HEADER;
        let path = e.text(off, p, "a path")?;
        off += p;
        let schema = e.text(off, n, "a schema name")?;
        off += n;
        let label_block = e.take(off, l)?;
        off = round8(off + l);
        let mut labels = Vec::new();
        let lc = Cursor { bytes: label_block };
        let mut lat = 0;
        while lat < l {
            let kl = lc.u16(lat)? as usize;
            let k = lc.text(lat + 2, kl, "a label key")?;
            lat += 2 + kl;
            let vl = lc.u16(lat)? as usize;
            let v = lc.text(lat + 2, vl, "a label value")?;
            lat += 2 + vl;
            if labels.iter().any(|(have, _)| *have == k) {
                return Err(FormatError::at(i, &path, Problem::DuplicateLabel(k)));
            }
            labels.push((k, v));
        }
        let blob = BlobSchema::parse(e.take(off, d)?)
            .map_err(|err| FormatError::at(i, &path, Problem::Descriptors(err)))?;
        off = round8(off + d);
        if blob.descriptors().len() != s {
            let problem = Problem::Locations {
                locations: s,
                descriptors: blob.descriptors().len(),
            };
            return Err(FormatError::at(i, &path, problem));
        }
        let mut locations = Vec::with_capacity(s);
        let mut next_word = 0u64;
        for (j, desc) in blob.descriptors().iter().enumerate() {
            // In a region the descriptors' data offsets are consecutive from 0: each stat's
            // words follow the previous one's (readers lay their buffers out so).
            if u64::from(desc.offset) != 8 * next_word {
                let problem = Problem::NotConsecutive {
                    offset: desc.offset,
                    expected: 8 * next_word as usize,
                };
                return Err(FormatError::stat(i, &path, j, problem));
            }
            next_word += u64::from(desc.size);
            let r = off + j * LOCATION;
            let offset = e.u64(r)?;
            let width = e.u8(r + 8)?;
            let signed = match e.u8(r + 9)? {
                0 => false,
                1 => true,
                v => return Err(FormatError::stat(i, &path, j, Problem::Signed(v))),
            };
            if e.u8(r + 11)? != 0 || e.u16(r + 14)? != 0 {
                return Err(FormatError::stat(i, &path, j, Problem::Reserved));
            }
            let code = e.u8(r + 10)?;
            let aggregation = aggregation_of(code)
                .ok_or_else(|| FormatError::stat(i, &path, j, Problem::Aggregation(code)))?;
            let words = e.u16(r + 12)?;
            if !matches!(width, 1 | 2 | 4 | 8) || words == 0 || words != desc.size {
                let problem = Problem::Width {
                    width,
                    words: u32::from(words),
                    size: desc.size,
                };
                return Err(FormatError::stat(i, &path, j, problem));
            }
            if words > 1 && (width != 8 || !desc.kind.is_histogram()) {
                let problem = Problem::NotAHistogram {
                    words: u32::from(words),
                    width,
                };
                return Err(FormatError::stat(i, &path, j, problem));
            }
            if kind == EntryKind::Aggregates && (offset != 0 || aggregation == Aggregation::None) {
                let problem = Problem::Aggregate {
                    offset,
                    aggregation,
                };
                return Err(FormatError::stat(i, &path, j, problem));
            }
            if kind == EntryKind::Values {
                let end = u64::from(words)
                    .checked_mul(u64::from(width))
                    .and_then(|n| offset.checked_add(n));
                let inside = end.is_some_and(|end| offset >= data.start && end <= data.end);
                if !inside || offset % u64::from(width) != 0 {
                    let problem = Problem::NotAPlace { offset };
                    return Err(FormatError::stat(i, &path, j, problem));
                }
            }
            locations.push(Location {
                offset,
                width,
                signed,
                aggregation,
                words,
            });
        }
        if off + s * LOCATION != len {
            let problem = Problem::EntryLength {
                len,
                parts: Some(off + s * LOCATION),
            };
            return Err(FormatError::at(i, &path, problem));
        }
        entries.push(Entry {
            kind,
            hidden,
            path,
            schema,
            labels,
            stats: blob.descriptors().to_vec(),
            locations,
        });
        at += len;
    }
    if at != bytes.len() {
        return Err(FormatError::block(Problem::Trailing {
            end: at,
            block: bytes.len(),
        }));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    //! Pure code: run under Miri in CI too.
    use super::*;
    use statsfs_core::{Kind, Scale, Unit};

    fn entry(path: &str, kind: EntryKind, offset: u64) -> Entry {
        Entry {
            kind,
            hidden: path.ends_with('1'),
            path: path.to_owned(),
            schema: "vcpu".to_owned(),
            labels: vec![("vm".to_owned(), "1234-5".to_owned())],
            stats: vec![
                StatDesc::new("exits", Kind::Cumulative, Unit::None, Scale::ONE, 1),
                StatDesc::new("lat", Kind::LogHistogram, Unit::Seconds, Scale::NANO, 4),
            ],
            locations: vec![
                Location {
                    offset,
                    width: 8,
                    signed: false,
                    aggregation: Aggregation::Sum,
                    words: 1,
                },
                Location {
                    offset: if offset == 0 { 0 } else { offset + 8 },
                    width: 8,
                    signed: false,
                    aggregation: Aggregation::Sum,
                    words: 4,
                },
            ],
        }
    }

    #[test]
    fn a_layout_round_trips() {
        let entries = vec![
            entry("kvm", EntryKind::Aggregates, 0),
            entry("kvm/vcpu0", EntryKind::Values, 8192),
            entry("kvm/vcpu1", EntryKind::Values, 8256),
        ];
        let bytes = encode(&entries).unwrap();
        assert_eq!(bytes.len() % 8, 0);
        let back = parse(&bytes, 8192..16384).unwrap();
        let with_offsets: Vec<_> = entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                // The codec gives descriptors their data-block offsets.
                e.stats = back
                    .iter()
                    .find(|b| b.path == e.path)
                    .unwrap()
                    .stats
                    .clone();
                e
            })
            .collect();
        assert_eq!(back, with_offsets);
    }

    #[test]
    fn every_truncation_and_out_of_place_location_is_an_error() {
        let entries = vec![entry("kvm/vcpu0", EntryKind::Values, 8192)];
        let bytes = encode(&entries).unwrap();
        for n in 0..bytes.len() {
            assert!(parse(&bytes[..n], 8192..16384).is_err(), "{n} bytes parsed");
        }
        // The values must lie in the data area, aligned.
        assert!(parse(&bytes, 0..8192).is_err());
        let misaligned = encode(&[entry("kvm/vcpu0", EntryKind::Values, 8196)]).unwrap();
        assert!(parse(&misaligned, 8192..16384).is_err());
        // A count the block cannot hold.
        let mut lying = bytes.clone();
        lying[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&lying, 8192..16384).is_err());
    }
}
