//! The encoder ([`Layout`]).
//!
//! A [`Layout`] is computed once per schema (an id string and a list of [`StatDesc`]s) and
//! holds the encoded *schema part* of the blob (header, id string, descriptors), which
//! never changes. Producing a blob is then copying the schema part once and, on every
//! refresh, writing the data words at [`Layout::data_offset`]: a straight copy of a
//! `&[u64]`, with no allocation and no per-value formatting.

use core::ops::Range;

use super::descriptor::StatDesc;
use super::error::LayoutError;
use super::header::{
    Header, ALIGN, DEFAULT_NAME_SIZE, DESC_FIXED_SIZE, D_BUCKET_SIZE, D_EXPONENT, D_FLAGS, D_NAME,
    D_OFFSET, D_SIZE, HEADER_SIZE, MAX_DATA_LEN, MAX_DESC_BLOCK_LEN, MAX_NAME_SIZE, MAX_NUM_DESC,
    WORD_SIZE,
};
use statsfs_core::desc::{Descriptor, Kind};

/// The layout of one blob, computed once from an id string and a list of entries.
///
/// * `name_size` is `max(48, longest of (id, names) + 1 rounded up to 8)`;
/// * the id string is at offset 24, the descriptors follow it, the data block follows
///   the descriptors (every block 8-aligned, no gaps);
/// * entry `i`'s words start at word `sum of the sizes of entries 0..i` of the data
///   block (its descriptor's `offset` is that times 8).
///
/// The layout keeps the encoded schema part (header, id, descriptors), so writing a
/// blob is two copies. See the [crate documentation](crate) for an example.
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
    pub fn new(id: &str, entries: &[StatDesc]) -> Result<Layout, LayoutError> {
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
            if !e.unit.exponent_allowed(e.scale.exponent) {
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
        let entries: Vec<StatDesc> = descriptors.iter().map(StatDesc::from).collect();
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
    use crate::header::*;
    use crate::pack_flags;
    use statsfs_core::desc::{Base, Scale, Unit};

    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }

    /// The blob, byte for byte, as the kernel lays out `struct kvm_stats_header`,
    /// the id, `struct kvm_stats_desc` + name, and the data.
    #[test]
    fn golden_bytes_match_the_kernel_structs() {
        let entries = [
            StatDesc::counter("exits"),
            StatDesc::new(
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
        let l = Layout::new("kvm", &[StatDesc::counter("a")]).unwrap();
        assert_eq!(l.name_size(), 48);
        let long = "n".repeat(47); // 47 + NUL = 48
        let l = Layout::new("kvm", &[StatDesc::counter(&long)]).unwrap();
        assert_eq!(l.name_size(), 48);
        let long = "n".repeat(48); // 49 -> 56
        let l = Layout::new("kvm", &[StatDesc::counter(&long)]).unwrap();
        assert_eq!(l.name_size(), 56);
        let l = Layout::new(&"i".repeat(60), &[StatDesc::counter("a")]).unwrap();
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
                &[StatDesc::counter(&name), StatDesc::counter("b")],
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
            StatDesc::new(
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
                Layout::new("id", &[StatDesc::counter("ok"), bad]),
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
            Layout::new("id", &[StatDesc::counter(&long)]),
            Err(LayoutError::NameTooLong {
                index: 0,
                len: 4096,
                max: 4095
            })
        );
        assert!(Layout::new(&long[..4095], &[StatDesc::counter(&long[..4095])]).is_ok());
    }

    #[test]
    fn too_large_blocks_are_refused() {
        let hist = StatDesc::new("h", Kind::LogHistogram, Unit::None, Scale::ONE, u16::MAX);
        let n = (MAX_DATA_LEN / 8 / u64::from(u16::MAX)) as usize + 1;
        let entries = vec![hist; n];
        assert!(matches!(
            Layout::new("id", &entries),
            Err(LayoutError::DataBlockTooLarge { .. })
        ));
        let long = "z".repeat(2000);
        let entries = vec![StatDesc::counter(&long); 200_000];
        assert!(matches!(
            Layout::new("id", &entries),
            Err(LayoutError::DescBlockTooLarge { .. })
        ));
    }

    #[test]
    fn writing_data_checks_counts_and_buffers() {
        let l = Layout::new("id", &[StatDesc::counter("a"), StatDesc::counter("b")]).unwrap();
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
        use statsfs_core::desc::{Storage, ValueType};
        let ds = [
            Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
            Descriptor::new("wait", ValueType::U64, Kind::LogHistogram)
                .with_storage(Storage::Buckets, 8)
                .with_unit(Unit::Seconds, Scale::MICRO),
        ];
        let l = Layout::from_descriptors("vm", &ds).unwrap();
        let entries: Vec<StatDesc> = ds.iter().map(StatDesc::from).collect();
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
