//! # statsfs-region
//!
//! The shared region (`docs/REGION.md`): stats structs placed in a file that other
//! processes map read-only, with a self-describing layout of every published source, so
//! that a reader refreshes every stat with loads from memory and no system call.
//!
//! ```no_run
//! use statsfs_core::{cell::Counter, Source, ValueGroup};
//! use statsfs_derive::Stats;
//! use statsfs_region::{Region, RegionOptions};
//!
//! #[derive(Stats, Default)]
//! #[stats(crate = statsfs_core)]
//! struct VcpuStat {
//!     /// Guest exits
//!     exits: Counter,
//! }
//!
//! let region = Region::create("/run/statsfs-demo.region", RegionOptions::default())?;
//! let kvm = Source::new("kvm")?;
//! region.publish(&[kvm.clone()]);
//! let stats = region.alloc(VcpuStat::default())?; // an Arc<InRegion<VcpuStat>>
//! let vcpu = Source::new("vcpu0")?;
//! vcpu.add(ValueGroup::placed(stats.clone()))?;
//! kvm.add_subordinate(&vcpu)?;
//! stats.exits.inc_local(); // the same one instruction as on the heap
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The modules: `format` (the bytes, written and parsed in one place), this one (the
//! writer: creating, allocating, publishing the layout), `reader` (mapping a region
//! read-only, validating it, refreshing values and folding aggregates), `sys` (the
//! mapping and the structs placed in it: the crate's only unsafe code).
#![deny(missing_docs)]
#![deny(unsafe_code)]

// The values in a region are the writer's own atomics, in its byte order, and the format
// says little-endian (docs/REGION.md): no other byte order can write one.
#[cfg(not(target_endian = "little"))]
compile_error!("statsfs-region writes its values in the machine's byte order and the format is little-endian: build it for a little-endian target");

mod error;
mod file;
mod format;
mod reader;
mod sys;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use statsfs_binary::StatDesc;
use statsfs_core::{GroupKind, Source, Stats, Storage, Subscription};

pub use self::error::{FormatError, Invalid, OptionsError, Problem, RegionError};
pub use self::format::{Entry, EntryKind, Location};
pub use self::reader::{RegionReader, LIVENESS_EVERY};
pub use crate::sys::InRegion;

use self::format::{
    ALIGN, AT_DATA_LEN, AT_DATA_OFFSET, AT_GENERATION, AT_LAYOUT_LEN, AT_LAYOUT_OFFSET, AT_MAGIC,
    AT_SIZE, AT_VERSION, FLAG_OVERFLOW, LAYOUT_AREA, MAGIC, VERSION,
};
use crate::sys::Mapping;

/// The layout's parser and encoder without a mapped file, for the fuzz target in `fuzz/`
/// and its corpus replay (feature `fuzzing`; not a stable interface).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::Entry;

    /// Parses a layout block as a reader does (`docs/REGION.md`), with the data area at
    /// `data`: the entries, or why not.
    pub fn parse_layout(
        bytes: &[u8],
        data: std::ops::Range<u64>,
    ) -> Result<Vec<Entry>, crate::FormatError> {
        crate::format::parse(bytes, data)
    }

    /// Encodes entries as a layout block.
    pub fn encode_layout(entries: &[Entry]) -> Result<Vec<u8>, crate::FormatError> {
        crate::format::encode(entries)
    }
}

/// How a region is made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegionOptions {
    /// The file's size in bytes, fixed for its life (default 16 MiB). What does not fit
    /// is an error at [`Region::alloc`].
    pub size: usize,
    /// Bytes of each of the two layout slots (default: an eighth of `size`, at least
    /// 64 KiB).
    pub layout_size: Option<usize>,
    /// The file's mode: who may read (default 0644: every local user; 0640 for a group).
    pub mode: u32,
}

impl Default for RegionOptions {
    fn default() -> Self {
        RegionOptions {
            size: 16 << 20,
            layout_size: None,
            mode: 0o644,
        }
    }
}

/// Options are set one by one, from the defaults: the struct is `#[non_exhaustive]`, so
/// options added later break no one.
impl RegionOptions {
    /// These options with [`size`](Self::size) set to `size`.
    #[must_use]
    pub fn with_size(mut self, size: usize) -> Self {
        self.size = size;
        self
    }

    /// These options with [`layout_size`](Self::layout_size) set to `bytes`.
    #[must_use]
    pub fn with_layout_size(mut self, bytes: usize) -> Self {
        self.layout_size = Some(bytes);
        self
    }

    /// These options with [`mode`](Self::mode) set to `mode`.
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// The writer's bookkeeping, behind one mutex that only layout changes and allocations
/// take (never a stat update, never a reader).
struct Writer {
    /// The first byte of the data area never allocated yet.
    bump: usize,
    /// Places free for reuse, by size.
    free: BTreeMap<usize, Vec<usize>>,
    /// Places given back but maybe still in the current layout: reused only after the
    /// next layout change.
    /// With the ticket count when each was given back: only a walk with a later ticket
    /// started after the struct left the tree, so only its layout can free the place.
    held: Vec<(usize, usize, u64)>,
    /// The generation written last (even).
    generation: u64,
    /// Which layout slot is current (0 or 1).
    slot: usize,
    /// The roots whose trees are published.
    roots: Vec<Source>,
    subscriptions: Vec<Subscription>,
    /// Each republish takes a ticket before its walk (done without the lock); a walk
    /// whose ticket is older than the last published one is stale and dropped.
    next_ticket: u64,
    published_ticket: u64,
    /// The layout block published last: an identical one is not published again.
    current: Vec<u8>,
}

struct Shared {
    map: Arc<Mapping>,
    path: PathBuf,
    /// Where the file was linked (set once, when it is).
    placed: std::sync::OnceLock<file::Placed>,
    layout_size: usize,
    data: std::ops::Range<usize>,
    writer: Mutex<Writer>,
}

/// A shared region and its writer; see the module docs. Cloning gives another handle
/// to the same region. Dropping the last handle unmaps it once every struct placed in it
/// is gone too; the file stays (remove it when the process ends).
#[derive(Clone)]
pub struct Region(Arc<Shared>);

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.0.path)
            .finish()
    }
}

fn lock(w: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Region {
    /// Creates the region file at `path` (which must not exist: it is created with
    /// `O_EXCL`, never following a symlink, with `options.mode`), sizes and maps it, and
    /// writes an empty layout.
    pub fn create(path: impl AsRef<Path>, options: RegionOptions) -> Result<Region, RegionError> {
        let path = path.as_ref().to_path_buf();
        let layout_size = options
            .layout_size
            .unwrap_or((options.size / 8).max(64 << 10))
            .checked_next_multiple_of(ALIGN);
        let data_start = layout_size
            .and_then(|l| l.checked_mul(2))
            .and_then(|l| l.checked_add(LAYOUT_AREA));
        let (Some(layout_size), Some(data_start)) = (layout_size, data_start) else {
            return Err(RegionError::Options(OptionsError::LayoutTooLarge {
                layout_size: options.layout_size.unwrap_or(0),
            }));
        };
        if options.size < data_start.saturating_add(ALIGN) {
            return Err(RegionError::Options(OptionsError::NoDataArea {
                size: options.size,
                layout_size,
            }));
        }
        let io_err = |source| RegionError::Io {
            path: path.clone(),
            source,
        };
        // Made unnamed, allocated and locked, and linked into place once its header and
        // first layout are written: a reader that finds the file finds a whole region
        // (`file`: no symbolic link followed, a stale region of a dead writer replaced).
        let made = file::create(&path, options.mode, options.size as u64)?;
        let mapped = made.file().try_clone().map_err(io_err)?;
        let map = Arc::new(Mapping::new(mapped, options.size, true).map_err(io_err)?);
        let shared = Shared {
            map,
            path: path.clone(),
            placed: std::sync::OnceLock::new(),
            layout_size,
            data: data_start..options.size,
            writer: Mutex::new(Writer {
                bump: data_start,
                free: BTreeMap::new(),
                held: Vec::new(),
                generation: 0,
                slot: 0,
                roots: Vec::new(),
                subscriptions: Vec::new(),
                next_ticket: 0,
                published_ticket: 0,
                current: Vec::new(),
            }),
        };
        let m = &shared.map;
        m.store_u64(AT_MAGIC, MAGIC, Ordering::Relaxed);
        m.store_u64(AT_VERSION, u64::from(VERSION), Ordering::Relaxed);
        m.store_u64(AT_SIZE, options.size as u64, Ordering::Relaxed);
        m.store_u64(AT_DATA_OFFSET, data_start as u64, Ordering::Relaxed);
        m.store_u64(
            AT_DATA_LEN,
            (options.size - data_start) as u64,
            Ordering::Relaxed,
        );
        // The first layout (empty: nothing is published yet), then the name.
        let region = Region(Arc::new(shared));
        region.republish();
        let placed = made.link()?;
        let _ = region.0.placed.set(placed);
        Ok(region)
    }

    /// The region's file.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Removes the region's file, if its path still names the file this region made (in
    /// the directory it was made in: the path is not followed again, and a file someone
    /// else put at that name is left alone); whether it did. The mapping stays: the
    /// writer goes on, and readers that opened it still read it. Call it when the
    /// process ends.
    pub fn remove(&self) -> Result<bool, RegionError> {
        match self.0.placed.get() {
            Some(p) => p.remove(),
            None => Ok(false),
        }
    }

    /// Whether another process cut the region's file short under this writer: the
    /// region then lives on in private memory (nothing faults, every struct placed in it
    /// keeps working) but readers no longer see its values. A writer that cares says so,
    /// or creates a new region.
    pub fn lost(&self) -> bool {
        self.0.map.lost()
    }

    /// Moves `value` into the region and returns its handle, to be added to a source
    /// with [`ValueGroup::placed`](statsfs_core::ValueGroup::placed). A place freed by a dropped struct of the same
    /// size is reused once no published layout refers to it; else the struct goes after
    /// the last one. A struct that does not fit is [`RegionError::Full`].
    pub fn alloc<T: Stats>(&self, value: T) -> Result<Arc<InRegion<T>>, RegionError> {
        if !T::CELLS_ONLY {
            return Err(RegionError::Options(OptionsError::NotCellsOnly {
                ty: std::any::type_name::<T>(),
            }));
        }
        let size = std::mem::size_of::<T>().max(1).next_multiple_of(ALIGN);
        if std::mem::align_of::<T>() > ALIGN {
            return Err(RegionError::Options(OptionsError::Alignment {
                align: std::mem::align_of::<T>(),
                max: ALIGN,
            }));
        }
        let offset = {
            let mut w = lock(&self.0.writer);
            let reused = w.free.get_mut(&size).and_then(Vec::pop);
            match reused {
                Some(o) => o,
                None => {
                    let left = self.0.data.end.saturating_sub(w.bump);
                    if size > left {
                        return Err(RegionError::Full { wanted: size, left });
                    }
                    let o = w.bump;
                    w.bump += size;
                    o
                }
            }
        };
        let shared = Arc::downgrade(&self.0);
        let release = Box::new(move |offset: usize| release(&shared, offset, size));
        self.0
            .map
            .place(offset, value, release)
            .map(Arc::new)
            .ok_or(RegionError::Invalid(Invalid::PlaceOutside { offset, size }))
    }

    /// Publishes the trees of `roots` (added to those published before): every source
    /// below them with a struct placed in this region, and every aggregate above such
    /// sources, is described in the layout, which follows every change of those trees.
    pub fn publish(&self, roots: &[Source]) {
        // Each root's ancestors, itself first, gathered without the writer's lock: the
        // last clone of one may drop a placed struct, whose release takes the lock.
        let lines: Vec<Vec<Source>> = roots
            .iter()
            .map(|r| {
                let mut line = vec![r.clone()];
                while let Some(p) = line.last().and_then(Source::parent) {
                    line.push(p);
                }
                line
            })
            .collect();
        {
            let mut w = lock(&self.0.writer);
            for (r, line) in roots.iter().zip(&lines) {
                // A root published twice, or below one published, would be listed twice.
                let covered = w.roots.iter().any(|p| line.iter().any(|c| c.ptr_eq(p)));
                if covered {
                    continue;
                }
                let weak = Arc::downgrade(&self.0);
                w.subscriptions.push(r.subscribe(move |_| {
                    if let Some(shared) = weak.upgrade() {
                        Region(shared).republish();
                    }
                }));
                w.roots.push(r.clone());
            }
        }
        drop(lines);
        self.republish();
    }

    /// Writes the layout of what is published now into the slot that is not current,
    /// and makes it current; releases the places held back that it does not list.
    ///
    /// The tree is walked without the writer's lock (a source or an ancestor dropped
    /// with the walk's clone may release a placed struct, which takes the lock); a walk
    /// that a later one overtook is dropped, so a layout never goes back in time.
    fn republish(&self) {
        let (ticket, roots) = {
            let mut w = lock(&self.0.writer);
            w.next_ticket += 1;
            (w.next_ticket, w.roots.clone())
        };
        let mut met = Vec::new();
        let entries = entries(&roots, &self.0.map, &self.0.data, &mut met);
        {
            let mut w = lock(&self.0.writer);
            if ticket > w.published_ticket {
                w.published_ticket = ticket;
                self.write_layout(&mut w, &entries, ticket);
            }
        }
        drop(met);
        drop(roots);
    }

    fn write_layout(&self, w: &mut Writer, entries: &[Entry], ticket: u64) {
        // Each entry encoded once; one that cannot be described (a path or a label too
        // long for the format) is left out, not the whole tree.
        let mut listed = Vec::with_capacity(entries.len());
        let mut encoded = Vec::with_capacity(entries.len());
        for e in entries {
            match format::encode_entry(e) {
                Ok(b) => {
                    listed.push(e.clone());
                    encoded.push(b);
                }
                Err(err) => log::error!(
                    "region {}: leaving out {}: {err}",
                    self.0.path.display(),
                    e.path
                ),
            }
        }
        let (bytes, flags, listed) = match format::assemble(&encoded) {
            Ok(b) if b.len() <= self.0.layout_size => (b, 0, listed),
            Ok(b) => {
                log::error!(
                    "region {}: the layout needs {} bytes, its slot has {}: publishing none (create the region with a larger layout_size)",
                    self.0.path.display(),
                    b.len(),
                    self.0.layout_size
                );
                (
                    format::encode(&[]).unwrap_or_default(),
                    FLAG_OVERFLOW,
                    Vec::new(),
                )
            }
            Err(e) => {
                log::error!(
                    "region {}: cannot describe the tree: {e}; publishing none",
                    self.0.path.display()
                );
                (
                    format::encode(&[]).unwrap_or_default(),
                    FLAG_OVERFLOW,
                    Vec::new(),
                )
            }
        };
        // The same layout as the current one: no generation to bump, no reader to make
        // read it again.
        if bytes != w.current || flags != 0 {
            let m = &self.0.map;
            let slot = 1 - w.slot;
            let at = LAYOUT_AREA + slot * self.0.layout_size;
            // The seqlock: odd while the layout changes (the release fence orders every
            // store below after the odd value), even after (release).
            let g = w.generation;
            m.store_u64(AT_GENERATION, g + 1, Ordering::Relaxed);
            fence(Ordering::Release);
            m.write_bytes(at, &bytes);
            m.store_u64(AT_LAYOUT_OFFSET, at as u64, Ordering::Relaxed);
            m.store_u64(AT_LAYOUT_LEN, bytes.len() as u64, Ordering::Relaxed);
            // The version and the flags (`AT_FLAGS`, the high half) share one word.
            m.store_u64(
                AT_VERSION,
                u64::from(VERSION) | (u64::from(flags) << 32),
                Ordering::Relaxed,
            );
            m.store_u64(AT_GENERATION, g + 2, Ordering::Release);
            w.generation = g + 2;
            w.slot = slot;
            w.current = bytes;
        }
        // What was held back and is not in the current layout is free to reuse: any
        // reader that could still see an older layout listing it sees the generation
        // move before it returns values.
        let held = std::mem::take(&mut w.held);
        let referenced: Vec<(u64, u64)> = listed
            .iter()
            .filter(|e| e.kind == EntryKind::Values)
            .flat_map(|e| {
                e.locations
                    .iter()
                    .map(|l| (l.offset, l.offset + u64::from(l.width) * u64::from(l.words)))
            })
            .collect();
        for (offset, size, stamp) in held {
            let (lo, hi) = (offset as u64, (offset + size) as u64);
            // A walk that took its ticket before the struct was given back may have seen
            // it, even if this layout does not list it: the place waits for a later one.
            if stamp >= ticket || referenced.iter().any(|&(a, b)| a < hi && lo < b) {
                w.held.push((offset, size, stamp));
            } else {
                w.free.entry(size).or_default().push(offset);
            }
        }
    }
}

/// A placed struct was dropped: its place is held back and the layout published again
/// (it no longer has the struct), which frees the place for reuse.
fn release(shared: &Weak<Shared>, offset: usize, size: usize) {
    if let Some(shared) = shared.upgrade() {
        {
            let mut w = lock(&shared.writer);
            let stamp = w.next_ticket;
            w.held.push((offset, size, stamp));
        }
        Region(shared).republish();
    }
}

/// The layout's entries for the trees of `roots`: sources with structs in `map`'s data
/// area, and the aggregates above them that fold some of them. Every source walked is
/// pushed to `met`, for the caller to drop.
fn entries(
    roots: &[Source],
    map: &Mapping,
    data: &std::ops::Range<usize>,
    met: &mut Vec<Source>,
) -> Vec<Entry> {
    let lo = map.address(data.start);
    let hi = map.address(data.end);
    let mut out = Vec::new();
    for root in roots {
        let mut stack = vec![(root.clone(), root.name().to_owned(), false)];
        while let Some((s, path, hidden_above)) = stack.pop() {
            let labels = s.labels();
            // Hidden as the mount hides: the source, or a source above it.
            let hidden = hidden_above || s.is_hidden();
            s.inspect().for_each_group(|g| {
                let (kind, base) = match g.kind() {
                    GroupKind::Values { address } if (lo..hi).contains(&address) => {
                        (EntryKind::Values, address - lo + data.start)
                    }
                    GroupKind::Aggregates => (EntryKind::Aggregates, 0),
                    _ => return,
                };
                let schema = g.schema();
                let mut stats = Vec::new();
                let mut locations = Vec::new();
                for (i, d) in schema.descriptors().iter().enumerate() {
                    // Sharded counters are sums over shards: no one place to read. A
                    // struct's values are all listed, shadowed ones too: the tree's
                    // aggregates fold them.
                    let listed = match kind {
                        EntryKind::Values => {
                            d.storage != Storage::Sharded && d.storage != Storage::Block
                        }
                        EntryKind::Aggregates => g.offers(i),
                    };
                    if !listed {
                        continue;
                    }
                    // An aggregate is described as what it folds to (a count of booleans
                    // is a count).
                    let shown = match kind {
                        EntryKind::Aggregates => d.folded(),
                        // A second aggregation of a value is the aggregates' only: in a
                        // struct's entry it is hidden, there for them to fold.
                        _ if d.role == statsfs_core::Role::AggregateOnly => d.with_hidden(true),
                        _ => *d,
                    };
                    stats.push(StatDesc::of(d.name, &shown));
                    locations.push(Location {
                        offset: if kind == EntryKind::Values {
                            (base + d.offset) as u64
                        } else {
                            0
                        },
                        width: if d.size > 1 { 8 } else { d.ty.width() as u8 },
                        signed: d.ty.is_signed(),
                        aggregation: d.aggregation,
                        words: d.size,
                    });
                }
                out.push(Entry {
                    kind,
                    hidden: hidden || g.hidden(),
                    path: path.clone(),
                    schema: schema.name().to_owned(),
                    labels: labels.clone(),
                    stats,
                    locations,
                });
            });
            let mut children = s.subordinates();
            children.reverse();
            for c in children {
                let p = format!("{path}/{}", c.name());
                stack.push((c, p, hidden));
            }
            met.push(s);
        }
    }
    // An aggregate lists only the stats some published value of its schema at or below
    // it has (the kernel's mirrors, say, are not in the region: nothing to fold).
    let values: Vec<(String, String, String, u16)> = out
        .iter()
        .filter(|e| e.kind == EntryKind::Values)
        .flat_map(|e| {
            e.stats
                .iter()
                .map(|d| (e.path.clone(), e.schema.clone(), d.name.clone(), d.size))
        })
        .collect();
    for e in out.iter_mut().filter(|e| e.kind == EntryKind::Aggregates) {
        let below = format!("{}/", e.path);
        let keep: Vec<bool> = e
            .stats
            .iter()
            .map(|d| {
                values.iter().any(|(p, sc, n, w)| {
                    *sc == e.schema
                        && *n == d.name
                        && *w == d.size
                        && (*p == e.path || p.starts_with(&below))
                })
            })
            .collect();
        let mut k = keep.iter();
        e.stats.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        e.locations.retain(|_| *k.next().unwrap_or(&false));
    }
    out.retain(|e| e.kind == EntryKind::Values || !e.stats.is_empty());
    out
}
