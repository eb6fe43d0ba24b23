//! # statsfs-binary
//!
//! Bulk reading: the binary layout of Linux's `KVM_GET_STATS_FD`, byte for byte.
//!
//! One read of a statistics file returns everything: which stats there are, what they
//! are, and their values. After the first read only the *data block* changes, so a
//! reader re-reads just that block with one positioned read (`pread`) per refresh. The
//! layout is the one the kernel uses for KVM's binary statistics (documented in the
//! kernel's `Documentation/virt/kvm/api.rst`, section `KVM_GET_STATS_FD`, and produced
//! by `virt/kvm/binary_stats.c`), so a reader written for the kernel reads ours and
//! [`Blob::decode`] reads the kernel's.
//!
//! The codec is the format and nothing else: it depends on the descriptor enums of
//! [`statsfs_core::desc`] only, never on the tree, so it can be fuzzed, reused by tools
//! and read by someone who only wants the format. One concept a file:
//!
//! * `header`: the [`Header`], the layout's constants and bounds, the [`Block`]s.
//! * `descriptor`: [`StatDesc`], the one descriptor type, given to the encoder and
//!   returned by the decoder.
//! * `encode`: [`Layout`], computed once from an id string and a list of
//!   [`StatDesc`]s; it holds the encoded schema part and writes data words with a
//!   straight copy ([`Layout::write_data`]).
//! * `decode`: [`Blob::decode`] parses a blob in memory; [`StatsFile`] reads an open file
//!   (header, then id and descriptors, then data) and re-reads the data block on
//!   [`StatsFile::refresh`]. Both check every rule below and return a [`DecodeError`]
//!   saying which rule is broken and where; they never panic, whatever the input.
//! * `error`: [`LayoutError`], [`DecodeError`], [`ReadError`].
//! * `select`: [`Selection`], which stats a bulk reader wants.
//!
//! Two adapters join the codec to the tree, each built only on the tree's public doors:
//!
//! * `bulk`: [`BulkView`] lays out a source or subtree (the mount's bulk files, the
//!   shared region's descriptors), refreshed with one read plan;
//! * `mirror`: [`Mirror`] turns a stats file (the kernel's) into a runtime schema and a
//!   block source, so its values join the tree.
//!
//! The core knows nothing of this crate: the layout is one way of reading the tree.
//!
//! The whole layout is specified in the repository's `docs/BINARY.md`; the summary below
//! is for readers of the code.
//!
//! # The blob
//!
//! All integers are in the machine's byte order (native endian). Every block starts on
//! a multiple of 8 bytes. The layout this module *writes* is the kernel's: the blocks
//! are adjacent and in this order:
//!
//! ```text
//!  offset                      block
//!  0                           +---------------------------------------------+
//!                              | header: 6 x u32 (24 bytes)                  |
//!  id_offset = 24              +---------------------------------------------+
//!                              | id string, NUL-terminated, zero-padded      |
//!                              |   (name_size bytes)                         |
//!  desc_offset                 +---------------------------------------------+
//!   = 24 + name_size           | descriptor 0: 16 bytes + name (name_size)   |
//!                              | descriptor 1                                |
//!                              | ...            (num_desc descriptors)       |
//!  data_offset                 +---------------------------------------------+
//!   = desc_offset              | data: u64 words; stat i at its descriptor's |
//!     + num_desc * (16 +       |   offset, `size` words long                 |
//!       name_size)             |                                             |
//!  data_offset + 8 * words     +---------------------------------------------+
//! ```
//!
//! A *reader* must not assume more than the kernel promises: "it is not guaranteed that
//! the four blocks are adjacent or in the above order; the offsets of the id,
//! descriptors and data blocks are found in the header. However, all four blocks are
//! aligned to 64 bit offsets in the file and they do not overlap" (api.rst). So the
//! decoder accepts the blocks in any order, with gaps, and rejects overlaps.
//!
//! ## Header (`struct kvm_stats_header`), 24 bytes at offset 0
//!
//! | offset | type | field | meaning |
//! |---|---|---|---|
//! | 0 | u32 | `flags` | always 0 |
//! | 4 | u32 | `name_size` | bytes reserved for the id string and for each descriptor's name, NUL included; a nonzero multiple of 8. The kernel uses 48 (`KVM_STATS_NAME_SIZE`); [`Layout`] uses 48 unless a name or the id needs more |
//! | 8 | u32 | `num_desc` | number of descriptors |
//! | 12 | u32 | `id_offset` | byte offset of the id string |
//! | 16 | u32 | `desc_offset` | byte offset of the first descriptor |
//! | 20 | u32 | `data_offset` | byte offset of the data block |
//!
//! The id string names the object: the kernel writes `kvm-<pid>` for a VM and
//! `kvm-<pid>/vcpu-<n>` for a vCPU.
//!
//! ## Descriptor (`struct kvm_stats_desc` + name), `16 + name_size` bytes each
//!
//! | offset | type | field | meaning |
//! |---|---|---|---|
//! | 0 | u32 | `flags` | bits 0-3 kind, bits 4-7 unit, bits 8-11 base; bits 12-31 are 0 |
//! | 4 | i16 | `exponent` | the scale: value × base^exponent is the quantity in the unit |
//! | 6 | u16 | `size` | number of u64 words: 1, or the number of histogram buckets |
//! | 8 | u32 | `offset` | byte offset of the first word from the start of the data block |
//! | 12 | u32 | `bucket_size` | bucket width of a linear histogram; 0 for every other kind |
//! | 16 | `name_size` bytes | `name` | NUL-terminated, zero-padded |
//!
//! Codes in `flags` (see the constants in [`header`]):
//!
//! | bits | field | codes |
//! |---|---|---|
//! | 0-3 | kind ([`Kind`](statsfs_core::desc::Kind)) | cumulative 0, instant 1, peak 2, linear histogram 3, log histogram 4 |
//! | 4-7 | unit ([`Unit`](statsfs_core::desc::Unit)) | none 0, bytes 1, seconds 2, cycles 3, boolean 4 |
//! | 8-11 | base ([`Base`](statsfs_core::desc::Base)) | 10 → 0, 2 → 1 |
//!
//! A linear histogram of `size` buckets of width `w` counts in bucket N (0-based) the
//! samples in `[N*w, (N+1)*w)`, the last bucket everything above. A log histogram
//! counts in bucket 0 the samples in `[0, 1)`, in bucket N `[2^(N-1), 2^N)`, the last
//! bucket everything above. For histograms the unit applies to the bucket bounds; the
//! words are counts.
//!
//! ## Data block
//!
//! `u64` words at the descriptors' offsets. [`Layout`] places them in descriptor order
//! without gaps: entry `i` starts at word `size_0 + ... + size_(i-1)`. The layout does
//! not record signedness: a signed value is stored as its two's-complement 64-bit
//! pattern (`-5` is `0xffff_ffff_ffff_fffb`), and the reader reinterprets it
//! ([`Stat::value_i64`]). The data block's length is where the furthest stat ends.
//!
//! # The rules a reader checks
//!
//! Every rule that Linux's own test of this layout
//! (`tools/testing/selftests/kvm/kvm_binary_stats_test.c`) checks, each its own
//! [`DecodeError`] variant:
//!
//! | rule | error |
//! |---|---|
//! | the input holds every block (header, id, descriptors, data) | [`Truncated`](DecodeError::Truncated) |
//! | header `flags` is 0 | [`HeaderFlags`](DecodeError::HeaderFlags) |
//! | `name_size` is a nonzero multiple of 8 (the kernel test asks only that names fit) | [`BadNameSize`](DecodeError::BadNameSize) |
//! | the three offsets are nonzero | [`ZeroOffset`](DecodeError::ZeroOffset) |
//! | ... past the header | [`OffsetInHeader`](DecodeError::OffsetInHeader) |
//! | ... multiples of 8 | [`MisalignedOffset`](DecodeError::MisalignedOffset) |
//! | the id, descriptor and data blocks do not overlap | [`BlocksOverlap`](DecodeError::BlocksOverlap) |
//! | the id is NUL-terminated within `name_size` | [`IdNotTerminated`](DecodeError::IdNotTerminated) |
//! | every name is NUL-terminated within `name_size` | [`NameNotTerminated`](DecodeError::NameNotTerminated) |
//! | ... and not empty | [`NameEmpty`](DecodeError::NameEmpty) |
//! | kind, unit and base are known codes | [`UnknownKind`](DecodeError::UnknownKind), [`UnknownUnit`](DecodeError::UnknownUnit), [`UnknownBase`](DecodeError::UnknownBase) |
//! | the other flag bits are 0 | [`ReservedFlags`](DecodeError::ReservedFlags) |
//! | exponent `>= 0` for none, bytes and cycles, `<= 0` for seconds, `0` for boolean | [`BadExponent`](DecodeError::BadExponent) |
//! | `size` is not 0 | [`ZeroSize`](DecodeError::ZeroSize) |
//! | `bucket_size` is nonzero for linear histograms ... | [`ZeroBucketSize`](DecodeError::ZeroBucketSize) |
//! | ... and zero for every other kind | [`UnexpectedBucketSize`](DecodeError::UnexpectedBucketSize) |
//! | every stat's offset is a multiple of 8 | [`MisalignedStat`](DecodeError::MisalignedStat) |
//! | no two stats share a word (implies the kernel test's "data size >= num_desc * 8") | [`StatsOverlap`](DecodeError::StatsOverlap) |
//!
//! Our own additions: names and the id must be UTF-8
//! ([`IdNotUtf8`](DecodeError::IdNotUtf8), [`NameNotUtf8`](DecodeError::NameNotUtf8)),
//! and sizes are bounded so that a hostile header cannot make a reader allocate
//! gigabytes: `name_size <= 4096`, `num_desc <= 4Mi`, descriptor and data blocks
//! `<= 256 MiB` each ([`NameSizeTooLarge`](DecodeError::NameSizeTooLarge),
//! [`TooManyDescriptors`](DecodeError::TooManyDescriptors),
//! [`DescBlockTooLarge`](DecodeError::DescBlockTooLarge),
//! [`DataBlockTooLarge`](DecodeError::DataBlockTooLarge)). [`Layout`] refuses to
//! build anything the reader would refuse.
//!
//! # Example
//!
//! ```
//! use statsfs_binary::{Blob, Layout, StatDesc};
//! use statsfs_core::desc::{Kind, Scale, Unit};
//!
//! // The schema, once: a counter, a signed gauge in bytes, a 4-bucket histogram of
//! // nanoseconds.
//! let entries = [
//!     StatDesc::counter("exits"),
//!     StatDesc::new("balance", Kind::Instant, Unit::Bytes, Scale::KIB, 1),
//!     StatDesc::new("halt_ns", Kind::LinearHistogram { bucket_size: 500 }, Unit::Seconds, Scale::NANO, 4),
//! ];
//! let layout = Layout::new("kvm-1234", &entries).unwrap();
//! assert_eq!((layout.name_size(), layout.data_offset(), layout.data_words()), (48, 264, 6));
//! assert_eq!(layout.word_range(2), Some(2..6));
//!
//! // A blob: the schema part once, then only the data block on every refresh.
//! let mut blob = layout.new_blob();
//! layout.write_data(&mut blob, &[42, (-3i64) as u64, 5, 0, 1, 9]).unwrap();
//!
//! // Reading it back.
//! let decoded = Blob::decode(&blob).unwrap();
//! assert_eq!(decoded.id(), "kvm-1234");
//! assert_eq!(decoded.value("exits"), Some(42));
//! assert_eq!(decoded.stat("balance").unwrap().value_i64(), -3);
//! let halt = decoded.stat("halt_ns").unwrap();
//! assert_eq!(halt.desc.kind, Kind::LinearHistogram { bucket_size: 500 });
//! assert_eq!(halt.desc.scale, Scale::NANO);
//! assert_eq!(halt.values, &[5, 0, 1, 9]);
//!
//! // A broken blob says what is wrong and where.
//! blob[..4].copy_from_slice(&1u32.to_ne_bytes()); // header flags
//! let err = Blob::decode(&blob).unwrap_err();
//! assert_eq!(err.to_string(), "header (byte 0): flags is 0x1; it must be 0");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bulk;
mod decode;
mod descriptor;
mod encode;
mod error;
pub mod header;
mod mirror;
mod select;

pub use bulk::{BulkShape, BulkView, ViewError};
pub use decode::{Blob, BlobSchema, Stat, StatsFile};
pub use descriptor::{pack_flags, StatDesc};
pub use encode::Layout;
pub use error::{DecodeError, LayoutError, ReadError};
pub use header::{Block, Header};
pub use mirror::{descriptor_of, FileBlock, Mirror, MirrorError};
pub use select::{Selection, SelectionError, MAX_SELECTION_LEN};
