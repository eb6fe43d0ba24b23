//! Why a region could not be made, allocated in or read: typed, each saying what is
//! wrong and where (`docs/REGION.md` states the rules a file must keep).

use std::fmt;
use std::io;
use std::path::PathBuf;

use statsfs_core::Aggregation;

/// Why a region could not be made, allocated in or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegionError {
    /// The file could not be created, sized or mapped.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A symbolic link in the region's path: a region's path follows none.
    Symlink {
        /// The path given.
        path: PathBuf,
        /// The part of it that is a symbolic link.
        link: PathBuf,
    },
    /// A file is at the region's path, and it is not a stale region of this user (one
    /// whose writer is gone).
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The region's file system has no room for it (a full tmpfs, a quota).
    NoSpace {
        /// The path.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// Another process cut the region's file short while it was mapped: what this
    /// mapping holds since is zeros, not the file.
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// The options (or the struct placed) leave no room.
    Options(OptionsError),
    /// The struct does not fit in what is left of the region.
    Full {
        /// Bytes asked for.
        wanted: usize,
        /// Bytes free in one piece at the end of the data area.
        left: usize,
    },
    /// A region that is not one, or whose layout breaks the format: a reader's error.
    Invalid(Invalid),
    /// The writer kept changing the layout while the reader tried to read it.
    Busy,
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::Io { path, source } => write!(f, "region {}: {source}", path.display()),
            RegionError::Symlink { path, link } => write!(
                f,
                "region {}: {} is a symbolic link, and a region's path follows none (so no one can re-point it): give the path without links",
                path.display(),
                link.display()
            ),
            RegionError::Exists { path } => write!(
                f,
                "region {}: a file is there, and it is not a region of this user whose writer is gone: remove it, or choose another path",
                path.display()
            ),
            RegionError::NoSpace { path, size } => write!(
                f,
                "region {}: no room for its {size} bytes on that file system (a full tmpfs, a quota): free some, or make it smaller (RegionOptions::size)",
                path.display()
            ),
            RegionError::Truncated { path } => write!(
                f,
                "region {}: another process cut the file short while it was mapped; its values are lost to this mapping: open it again",
                path.display()
            ),
            RegionError::Options(e) => write!(f, "RegionOptions: {e}"),
            RegionError::Full { wanted, left } => write!(
                f,
                "the region is full: {wanted} bytes wanted, {left} left (create it with a larger RegionOptions::size)"
            ),
            RegionError::Invalid(e) => write!(f, "not a valid statsfs region: {e}"),
            RegionError::Busy => write!(
                f,
                "the region's layout kept changing while it was read; try again"
            ),
        }
    }
}

impl std::error::Error for RegionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegionError::Io { source, .. } => Some(source),
            RegionError::Invalid(Invalid::Layout(e)) => Some(e),
            _ => None,
        }
    }
}

/// What leaves a region no room ([`RegionError::Options`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionsError {
    /// Two layout slots of this size do not fit in an address.
    LayoutTooLarge {
        /// The layout size asked for.
        layout_size: usize,
    },
    /// The file is too small for its header, two layout slots and any data.
    NoDataArea {
        /// The file's size asked for.
        size: usize,
        /// Each layout slot's size.
        layout_size: usize,
    },
    /// A struct aligned more strictly than the region aligns its places.
    Alignment {
        /// The struct's alignment.
        align: usize,
        /// The region's.
        max: usize,
    },
    /// A struct that is not stat cells only ([`Stats::CELLS_ONLY`](statsfs_core::Stats::CELLS_ONLY)):
    /// a skipped field or a sharded counter, which a region can neither publish nor zero.
    NotCellsOnly {
        /// The struct's type.
        ty: &'static str,
    },
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::NotCellsOnly { ty } => write!(
                f,
                "{ty} is not stat cells only (a #[stat(skip)] field, or a sharded counter): a region holds structs every byte of which is a stat; keep the rest beside it"
            ),
            OptionsError::LayoutTooLarge { layout_size } => {
                write!(f, "layout_size {layout_size} is too large")
            }
            OptionsError::NoDataArea { size, layout_size } => write!(
                f,
                "size {size} leaves no data area after two layout slots of {layout_size} bytes"
            ),
            OptionsError::Alignment { align, max } => {
                write!(f, "a struct aligned to {align} bytes (at most {max})")
            }
        }
    }
}

/// What makes a file not a readable region ([`RegionError::Invalid`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// The file is larger than this process's address space.
    TooLarge,
    /// The file is shorter than a region's header.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The file does not start with the magic `statsfsR`.
    NoMagic,
    /// A format version this reader does not know.
    Version {
        /// The file's version.
        found: u64,
        /// The version this reader knows.
        known: u32,
    },
    /// The header's size is not the file's.
    SizeMismatch {
        /// What the header says.
        header: u64,
        /// The file's length.
        file: usize,
    },
    /// The data area is not inside the file.
    DataArea {
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
        /// The file's length.
        file: u64,
    },
    /// The layout is not between the header and the data area.
    LayoutPlace {
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// The layout cannot be read from the mapping.
    LayoutOutsideFile,
    /// A location checked when the layout was read no longer reads (the file changed
    /// under the reader).
    LocationMoved,
    /// The layout asks for more values than its data area can hold.
    TooManyWords {
        /// Words asked for.
        words: u64,
        /// The data area's length in bytes.
        data_len: u64,
    },
    /// A writer's place outside its own data area.
    PlaceOutside {
        /// The place's offset.
        offset: usize,
        /// Its size.
        size: usize,
    },
    /// The layout block breaks the format.
    Layout(FormatError),
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::TooLarge => write!(f, "larger than the address space"),
            Invalid::TooShort { len } => write!(f, "{len} bytes: too short for a region"),
            Invalid::NoMagic => write!(f, "no statsfsR magic at offset 0"),
            Invalid::Version { found, known } => {
                write!(f, "version {found}; this reader knows {known}")
            }
            Invalid::SizeMismatch { header, file } => {
                write!(f, "the header says {header} bytes, the file has {file}")
            }
            Invalid::DataArea { offset, len, file } => {
                write!(f, "data area {offset}+{len} is not inside {file} bytes")
            }
            Invalid::LayoutPlace { offset, len } => write!(
                f,
                "layout {offset}+{len} is not between the header and the data area"
            ),
            Invalid::LayoutOutsideFile => write!(f, "the layout is outside the file"),
            Invalid::LocationMoved => write!(f, "a checked location moved"),
            Invalid::TooManyWords { words, data_len } => write!(
                f,
                "the layout asks for {words} words of values, more than its {data_len}-byte data area can hold"
            ),
            Invalid::PlaceOutside { offset, size } => {
                write!(f, "place {offset} for {size} bytes is outside the data area")
            }
            Invalid::Layout(e) => e.fmt(f),
        }
    }
}

/// A layout block that breaks the format, or entries that cannot be written as one:
/// which entry (and its path, once read), which stat of it, and the [`Problem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    /// The entry, counted from 0.
    pub entry: Option<usize>,
    /// The entry's source path, when it was read.
    pub path: Option<String>,
    /// The stat of the entry, counted from 0.
    pub stat: Option<usize>,
    /// What is wrong.
    pub problem: Problem,
}

impl FormatError {
    /// A problem of the block as a whole.
    pub(crate) fn block(problem: Problem) -> Self {
        FormatError {
            entry: None,
            path: None,
            stat: None,
            problem,
        }
    }

    /// A problem of entry `i`.
    pub(crate) fn entry(i: usize, problem: Problem) -> Self {
        FormatError {
            entry: Some(i),
            ..FormatError::block(problem)
        }
    }

    /// A problem of entry `i`, whose path is `path`.
    pub(crate) fn at(i: usize, path: &str, problem: Problem) -> Self {
        FormatError {
            entry: Some(i),
            path: Some(path.to_owned()),
            ..FormatError::block(problem)
        }
    }

    /// A problem of stat `j` of entry `i`, whose path is `path`.
    pub(crate) fn stat(i: usize, path: &str, j: usize, problem: Problem) -> Self {
        FormatError {
            stat: Some(j),
            ..FormatError::at(i, path, problem)
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.entry {
            write!(f, "entry {i}")?;
            if let Some(p) = &self.path {
                write!(f, " ({p})")?;
            }
            write!(f, ": ")?;
        }
        if let Some(j) = self.stat {
            write!(f, "stat {j}: ")?;
        }
        self.problem.fmt(f)
    }
}

impl std::error::Error for FormatError {}

/// What is wrong with a layout block ([`FormatError`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A part that runs past the block's end.
    RunsPast {
        /// The part's length.
        len: usize,
        /// Where it starts.
        at: usize,
        /// The block's length.
        block: usize,
    },
    /// Text (a path, a schema name, a label) that is not UTF-8.
    NotUtf8 {
        /// What the text is.
        what: &'static str,
        /// Where it starts.
        at: usize,
    },
    /// A reserved field is not 0.
    Reserved,
    /// More entries than the block can hold.
    TooManyEntries {
        /// How many it says.
        count: usize,
        /// The block's length.
        block: usize,
    },
    /// An entry's length is not what its parts take.
    EntryLength {
        /// What it says.
        len: usize,
        /// What its parts take (`None`: it cannot hold even its fixed part).
        parts: Option<usize>,
    },
    /// An entry kind code that is neither values nor aggregates.
    Kind(u8),
    /// A hidden flag that is neither 0 nor 1.
    Hidden(u8),
    /// A label key that appears twice.
    DuplicateLabel(String),
    /// The entry's descriptors do not decode.
    Descriptors(statsfs_binary::DecodeError),
    /// As many locations as descriptors, and there are not.
    Locations {
        /// Locations.
        locations: usize,
        /// Descriptors.
        descriptors: usize,
    },
    /// Stats' data offsets that are not consecutive.
    NotConsecutive {
        /// The offset found.
        offset: u32,
        /// The offset expected.
        expected: usize,
    },
    /// A signed flag that is neither 0 nor 1.
    Signed(u8),
    /// An aggregation code that is none.
    Aggregation(u8),
    /// A width or a word count that does not fit the stat.
    Width {
        /// The width.
        width: u8,
        /// Words.
        words: u32,
        /// The stat's size in words.
        size: u16,
    },
    /// Several words of a width a histogram's buckets do not have.
    NotAHistogram {
        /// Words.
        words: u32,
        /// The width.
        width: u8,
    },
    /// An aggregate placed in the data area, or not folded.
    Aggregate {
        /// The offset given.
        offset: u64,
        /// The aggregation given.
        aggregation: Aggregation,
    },
    /// A value that is not a place in the data area.
    NotAPlace {
        /// The offset given.
        offset: u64,
    },
    /// The entries end before the block does.
    Trailing {
        /// Where the entries end.
        end: usize,
        /// The block's length.
        block: usize,
    },
    /// Text longer than a 16-bit length (writing).
    TooLong {
        /// What the text is.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// More entries, or a longer entry or descriptor blob, than 32 bits count (writing):
    /// `what` names the number (`a count of sources`, `an entry's length`).
    TooLarge {
        /// What.
        what: &'static str,
    },
    /// The entry's stats cannot be laid out (writing).
    Layout(statsfs_binary::LayoutError),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::RunsPast { len, at, block } => {
                write!(f, "{len} bytes at {at} run past the layout's {block} bytes")
            }
            Problem::NotUtf8 { what, at } => write!(f, "{what} at {at} is not UTF-8"),
            Problem::Reserved => write!(f, "reserved fields are not 0"),
            Problem::TooManyEntries { count, block } => {
                write!(f, "{count} sources do not fit in {block} bytes")
            }
            Problem::EntryLength { len, parts: None } => {
                write!(f, "it says it is {len} bytes long")
            }
            Problem::EntryLength {
                len,
                parts: Some(p),
            } => write!(f, "{len} bytes long, its parts take {p}"),
            Problem::Kind(k) => write!(f, "kind {k}"),
            Problem::Hidden(h) => write!(f, "hidden is {h}"),
            Problem::DuplicateLabel(k) => write!(f, "label {k:?} twice"),
            Problem::Descriptors(e) => write!(f, "its descriptors: {e}"),
            Problem::Locations {
                locations,
                descriptors,
            } => write!(f, "{locations} locations for {descriptors} descriptors"),
            Problem::NotConsecutive { offset, expected } => {
                write!(f, "at data offset {offset}, not {expected}")
            }
            Problem::Signed(v) => write!(f, "signed is {v}"),
            Problem::Aggregation(c) => write!(f, "aggregation code {c}"),
            Problem::Width { width, words, size } => {
                write!(f, "width {width}, {words} words for a stat of {size}")
            }
            Problem::NotAHistogram { words, width } => {
                write!(f, "{words} words of {width} bytes, not a histogram's")
            }
            Problem::Aggregate {
                offset,
                aggregation,
            } => write!(f, "an aggregate at {offset}, folded by {aggregation:?}"),
            Problem::NotAPlace { offset } => {
                write!(f, "at {offset}, not a place in the data area")
            }
            Problem::Trailing { end, block } => {
                write!(f, "the entries end at {end}, the layout at {block}")
            }
            Problem::TooLong { what, len } => {
                write!(f, "{what} is {len} bytes long, longer than 65,535")
            }
            Problem::TooLarge { what } => write!(f, "{what} does not fit in 32 bits"),
            Problem::Layout(e) => e.fmt(f),
        }
    }
}
