//! Reading a region from another process (`docs/REGION.md#reading`): map it read-only,
//! check its header and layout as untrusted input, refresh every value into the
//! caller's buffer with loads only, and fold the aggregates by the tree's rules.

use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags};

use statsfs_core::Aggregation;

use super::format::{
    self, Entry, EntryKind, AT_DATA_LEN, AT_DATA_OFFSET, AT_FLAGS, AT_GENERATION, AT_LAYOUT_LEN,
    AT_LAYOUT_OFFSET, AT_MAGIC, AT_SIZE, AT_VERSION, FLAG_OVERFLOW, LAYOUT_AREA, MAGIC, VERSION,
};
use super::{Invalid, RegionError};
use crate::sys::Mapping;

/// How many times a refresh starts again when the layout moves under it before it says
/// [`RegionError::Busy`]; a reader never waits without bound.
const TRIES: usize = 10_000;

/// One stat to read: where, how, and where its words go in the caller's buffer.
struct Read {
    offset: usize,
    width: usize,
    signed: bool,
    words: usize,
    to: usize,
}

/// A run of consecutive 8-byte words in the region that go to consecutive words of the
/// buffer (a struct's counters, one after the other): loaded in one loop.
struct Run {
    offset: usize,
    to: usize,
    words: usize,
}

/// One aggregate stat to fold: from which words of the buffer, into which.
struct Fold {
    aggregation: Aggregation,
    signed: bool,
    words: usize,
    to: usize,
    members: Vec<usize>,
}

/// A region mapped read-only; see the module docs.
///
/// ```no_run
/// let mut reader = statsfs_region::RegionReader::open("/run/statsfs-kvm.region")?;
/// let mut values = Vec::new();
/// reader.refresh(&mut values)?;
/// for (i, e) in reader.entries().iter().enumerate() {
///     for (j, stat) in e.stats.iter().enumerate() {
///         println!("{}/{} {:?}", e.path, stat.name, reader.words(&values, i, j));
///     }
/// }
/// # Ok::<(), statsfs_region::RegionError>(())
/// ```
pub struct RegionReader {
    map: Mapping,
    path: PathBuf,
    /// The generation of the layout held; `None` before the first.
    generation: Option<u64>,
    overflow: bool,
    entries: Vec<Entry>,
    /// Per entry, per stat: its first word in the buffer.
    starts: Vec<Vec<usize>>,
    runs: Vec<Run>,
    reads: Vec<Read>,
    folds: Vec<Fold>,
    words: usize,
    scratch: Vec<u8>,
    /// What the last test of the writer's liveness found.
    gone: bool,
}

/// How often a reader that shows values to people should test whether the writer is
/// still there ([`RegionReader::check_writer`], one `flock`): the `statsfs` tool tests at
/// most once in this long, whatever its refresh interval.
pub const LIVENESS_EVERY: Duration = Duration::from_millis(100);

impl std::fmt::Debug for RegionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionReader")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn invalid(what: Invalid) -> RegionError {
    RegionError::Invalid(what)
}

fn sign_extend(v: u64, width: usize) -> u64 {
    let bits = 8 * width as u32;
    if bits >= 64 {
        v
    } else {
        let shift = 64 - bits;
        (((v << shift) as i64) >> shift) as u64
    }
}

impl RegionReader {
    /// Maps the region at `path` read-only and checks its header.
    pub fn open(path: impl AsRef<Path>) -> Result<RegionReader, RegionError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| RegionError::Io {
            path: path.clone(),
            source,
        };
        // Without blocking (a FIFO at the path is not waited on), a regular file only.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = rustix::fs::open(&path, flags, Mode::empty()).map_err(|e| io_err(e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file, so not a region",
            )));
        }
        let file = std::fs::File::from(fd);
        let len = st.st_size as u64;
        let len = usize::try_from(len).map_err(|_| invalid(Invalid::TooLarge))?;
        if len < LAYOUT_AREA {
            return Err(invalid(Invalid::TooShort { len }));
        }
        let map = Mapping::new(file, len, false).map_err(io_err)?;
        let r = RegionReader {
            map,
            path,
            generation: None,
            overflow: false,
            entries: Vec::new(),
            starts: Vec::new(),
            runs: Vec::new(),
            reads: Vec::new(),
            folds: Vec::new(),
            words: 0,
            scratch: Vec::new(),
            gone: false,
        };
        let word = |at| r.map.load(at, 8, Ordering::Relaxed).unwrap_or(0);
        if word(AT_MAGIC) != MAGIC {
            return Err(invalid(Invalid::NoMagic));
        }
        let version = r.map.load(AT_VERSION, 4, Ordering::Relaxed).unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(invalid(Invalid::Version {
                found: version,
                known: VERSION,
            }));
        }
        if word(AT_SIZE) != len as u64 {
            return Err(invalid(Invalid::SizeMismatch {
                header: word(AT_SIZE),
                file: len,
            }));
        }
        Ok(r)
    }

    /// Whether the last [`check_writer`](Self::check_writer) found the region's writer
    /// gone.
    pub fn writer_gone(&self) -> bool {
        self.gone
    }

    /// Tests whether the region's writer is gone (it exited, was killed, or dropped the
    /// region): its values are then its last, and will not change
    /// (`docs/REGION.md#liveness`). One system call (`flock`); a refresh makes none, so a
    /// reader calls this on its own schedule ([`LIVENESS_EVERY`] for one that shows values
    /// to people). Once gone, always gone.
    pub fn check_writer(&mut self) -> bool {
        if !self.gone {
            self.gone = crate::file::writer_gone(self.map.file());
        }
        self.gone
    }

    /// The region's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sources of the layout held (after a [`refresh`](Self::refresh)).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The generation of the layout held.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Whether the writer's tree outgrew its layout slot (the layout then lists nothing).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Where entry `entry`'s words start in the refreshed buffer: its stats follow one
    /// another from there, each where its descriptor's `offset` says (as in a bulk
    /// file's data block; in a region those offsets are consecutive).
    pub fn entry_start(&self, entry: usize) -> Option<usize> {
        self.starts
            .get(entry)
            .map(|s| s.first().copied().unwrap_or(0))
    }

    /// The words of stat `stat` of entry `entry` in `values` as the last refresh left it.
    pub fn words<'v>(&self, values: &'v [u64], entry: usize, stat: usize) -> &'v [u64] {
        let (Some(e), Some(start)) = (
            self.entries.get(entry),
            self.starts.get(entry).and_then(|s| s.get(stat)),
        ) else {
            return &[];
        };
        let n = e.locations.get(stat).map_or(0, |l| usize::from(l.words));
        values.get(*start..start + n).unwrap_or(&[])
    }

    /// Reads every value into `values` (resized to fit), aggregates folded; reads the
    /// layout again first if it changed. Returns whether it did. Between layout changes
    /// this makes no system call.
    pub fn refresh(&mut self, values: &mut Vec<u64>) -> Result<bool, RegionError> {
        let done = self.refresh_layout_and_values(values);
        self.unless_lost(done)
    }

    /// `result`, unless the file was cut short under the mapping: then whatever was read
    /// came from zeroed pages, and the error says so.
    fn unless_lost<T>(&self, result: Result<T, RegionError>) -> Result<T, RegionError> {
        if self.map.lost() {
            return Err(RegionError::Truncated {
                path: self.path.clone(),
            });
        }
        result
    }

    fn refresh_layout_and_values(&mut self, values: &mut Vec<u64>) -> Result<bool, RegionError> {
        let mut changed = false;
        for _ in 0..TRIES {
            // Relaxed, then an acquire fence: the only atomics std promises on read-only
            // memory are relaxed loads.
            let g = self
                .map
                .load(AT_GENERATION, 8, Ordering::Relaxed)
                .unwrap_or(1);
            fence(Ordering::Acquire);
            if g % 2 == 1 {
                std::hint::spin_loop();
                std::thread::yield_now();
                continue;
            }
            if self.generation != Some(g) {
                if let Err(e) = self.load_layout() {
                    // A layout read while the writer changed it may look broken: it is
                    // an error only if the generation did not move meanwhile.
                    fence(Ordering::Acquire);
                    if self.map.load(AT_GENERATION, 8, Ordering::Relaxed) == Some(g) {
                        self.generation = None;
                        return Err(e);
                    }
                    continue;
                }
                changed = true;
            }
            self.read_values(values)?;
            fence(Ordering::Acquire);
            if self.map.load(AT_GENERATION, 8, Ordering::Relaxed) == Some(g) {
                self.generation = Some(g);
                return Ok(changed);
            }
        }
        Err(RegionError::Busy)
    }

    /// Whether the writer has changed the layout since the one held (or is changing it):
    /// one load, no system call.
    pub fn layout_moved(&self) -> bool {
        let g = self.map.load(AT_GENERATION, 8, Ordering::Relaxed);
        self.generation.is_none() || g != self.generation
    }

    /// Reads every value into `values` under the layout held, without reading a new one:
    /// `Ok(false)`, and `values` not to be used, when the layout has moved (then
    /// [`refresh`](Self::refresh) reads the new one). For callers whose own structures
    /// follow the layout and change it at a time of their choosing (the `statsfs` tool).
    pub fn refresh_same_layout(&mut self, values: &mut Vec<u64>) -> Result<bool, RegionError> {
        let done = self.values_under_held_layout(values);
        self.unless_lost(done)
    }

    fn values_under_held_layout(&mut self, values: &mut Vec<u64>) -> Result<bool, RegionError> {
        let Some(held) = self.generation else {
            return Ok(false);
        };
        let g = self.map.load(AT_GENERATION, 8, Ordering::Relaxed);
        fence(Ordering::Acquire);
        if g != Some(held) {
            return Ok(false);
        }
        self.read_values(values)?;
        fence(Ordering::Acquire);
        Ok(self.map.load(AT_GENERATION, 8, Ordering::Relaxed) == Some(held))
    }

    /// The values under the layout held, aggregates folded; the caller checks the
    /// generation around it.
    fn read_values(&self, values: &mut Vec<u64>) -> Result<(), RegionError> {
        values.clear();
        values.resize(self.words, 0);
        for r in &self.runs {
            if !self
                .map
                .load_u64s(r.offset, &mut values[r.to..r.to + r.words])
            {
                return Err(invalid(Invalid::LocationMoved));
            }
        }
        for r in &self.reads {
            for w in 0..r.words {
                let v = self
                    .map
                    .load(r.offset + w * r.width, r.width, Ordering::Relaxed)
                    .ok_or(invalid(Invalid::LocationMoved))?;
                values[r.to + w] = if r.signed { sign_extend(v, r.width) } else { v };
            }
        }
        for f in &self.folds {
            fold(f, values);
        }
        Ok(())
    }

    /// Reads and checks the header's layout fields and the layout block, and plans the
    /// reads and folds. The caller checks the generation afterwards.
    fn load_layout(&mut self) -> Result<(), RegionError> {
        let word = |at| self.map.load(at, 8, Ordering::Relaxed).unwrap_or(u64::MAX);
        let (data_off, data_len) = (word(AT_DATA_OFFSET), word(AT_DATA_LEN));
        let (lay_off, lay_len) = (word(AT_LAYOUT_OFFSET), word(AT_LAYOUT_LEN));
        let len = self.map.len() as u64;
        let data_end = data_off
            .checked_add(data_len)
            .filter(|&e| e <= len && data_off >= LAYOUT_AREA as u64);
        let Some(data_end) = data_end else {
            return Err(invalid(Invalid::DataArea {
                offset: data_off,
                len: data_len,
                file: len,
            }));
        };
        let lay_end = lay_off
            .checked_add(lay_len)
            .filter(|&e| e <= data_off && lay_off >= LAYOUT_AREA as u64);
        if lay_end.is_none() {
            return Err(invalid(Invalid::LayoutPlace {
                offset: lay_off,
                len: lay_len,
            }));
        }
        let mut bytes = std::mem::take(&mut self.scratch);
        if !self
            .map
            .read_bytes(lay_off as usize, lay_len as usize, &mut bytes)
        {
            return Err(invalid(Invalid::LayoutOutsideFile));
        }
        let flags = self.map.load(AT_FLAGS, 4, Ordering::Relaxed).unwrap_or(0) as u32;
        let parsed =
            format::parse(&bytes, data_off..data_end).map_err(|e| invalid(Invalid::Layout(e)));
        self.scratch = bytes;
        self.overflow = flags & FLAG_OVERFLOW != 0;
        self.plan(parsed?, data_end - data_off)
    }

    /// Plans the reads and folds of `entries`; refuses a layout whose values would take
    /// more words than its data area can hold (a hostile one, asking for a huge buffer).
    fn plan(&mut self, entries: Vec<Entry>, data_len: u64) -> Result<(), RegionError> {
        let limit = data_len.saturating_mul(2).saturating_add(1 << 16);
        let total: u64 = entries
            .iter()
            .flat_map(|e| e.locations.iter().map(|l| u64::from(l.words)))
            .sum();
        if total > limit {
            return Err(invalid(Invalid::TooManyWords {
                words: total,
                data_len,
            }));
        }
        let mut starts = Vec::with_capacity(entries.len());
        let mut runs: Vec<Run> = Vec::new();
        let mut reads = Vec::new();
        let mut words = 0;
        for e in &entries {
            let mut s = Vec::with_capacity(e.locations.len());
            for l in &e.locations {
                s.push(words);
                if e.kind == EntryKind::Values && l.width == 8 {
                    // 8-byte words need no sign extension: they join the run they follow.
                    let (offset, n) = (l.offset as usize, usize::from(l.words));
                    match runs.last_mut() {
                        Some(r) if r.offset + 8 * r.words == offset && r.to + r.words == words => {
                            r.words += n
                        }
                        _ => runs.push(Run {
                            offset,
                            to: words,
                            words: n,
                        }),
                    }
                } else if e.kind == EntryKind::Values {
                    reads.push(Read {
                        offset: l.offset as usize,
                        width: usize::from(l.width),
                        signed: l.signed,
                        words: usize::from(l.words),
                        to: words,
                    });
                }
                words += usize::from(l.words);
            }
            starts.push(s);
        }
        let mut folds = Vec::new();
        for (a, e) in entries.iter().enumerate() {
            if e.kind != EntryKind::Aggregates {
                continue;
            }
            let below = format!("{}/", e.path);
            for (j, stat) in e.stats.iter().enumerate() {
                let l = e.locations[j];
                let members = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        m.kind == EntryKind::Values
                            && m.schema == e.schema
                            && (m.path == e.path || m.path.starts_with(&below))
                    })
                    .filter_map(|(i, m)| {
                        let k = m.stats.iter().position(|d| d.name == stat.name)?;
                        (m.locations[k].words == l.words).then(|| starts[i][k])
                    })
                    .collect();
                folds.push(Fold {
                    aggregation: l.aggregation,
                    signed: l.signed,
                    words: usize::from(l.words),
                    to: starts[a][j],
                    members,
                });
            }
        }
        self.entries = entries;
        self.starts = starts;
        self.runs = runs;
        self.reads = reads;
        self.folds = folds;
        self.words = words;
        Ok(())
    }
}

/// One aggregate stat, folded word by word as the tree folds it
/// (`statsfs-core/src/tree/aggregate.rs`).
fn fold(f: &Fold, values: &mut [u64]) {
    for w in 0..f.words {
        let member = |m: &usize| values[m + w];
        let n = f.members.len();
        let v = match f.aggregation {
            Aggregation::Min if n == 0 => {
                if f.signed {
                    i64::MAX as u64
                } else {
                    u64::MAX
                }
            }
            Aggregation::Max if n == 0 => {
                if f.signed {
                    i64::MIN as u64
                } else {
                    0
                }
            }
            Aggregation::Min if f.signed => f
                .members
                .iter()
                .map(|m| member(m) as i64)
                .min()
                .unwrap_or(i64::MAX) as u64,
            Aggregation::Min => f.members.iter().map(member).min().unwrap_or(u64::MAX),
            Aggregation::Max if f.signed => f
                .members
                .iter()
                .map(|m| member(m) as i64)
                .max()
                .unwrap_or(i64::MIN) as u64,
            Aggregation::Max => f.members.iter().map(member).max().unwrap_or(0),
            Aggregation::Avg if n == 0 => 0,
            Aggregation::Avg => {
                let sum: i128 = f
                    .members
                    .iter()
                    .map(|m| {
                        if f.signed {
                            member(m) as i64 as i128
                        } else {
                            member(m) as i128
                        }
                    })
                    .sum();
                (sum / n as i128) as i64 as u64
            }
            Aggregation::CountZero => f.members.iter().filter(|m| member(m) == 0).count() as u64,
            _ => f
                .members
                .iter()
                .fold(0u64, |s, m| s.wrapping_add(member(m))),
        };
        values[f.to + w] = v;
    }
}
