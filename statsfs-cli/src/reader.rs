//! Opening what the tool reads and refreshing it: every refresh after the first is one
//! positioned read of the data block per bulk file (`StatsFile::refresh`), whatever the
//! number of sources in it.
//!
//! What can be read (`PATH` on the command line):
//!
//! * a source directory of a statsfs mount: its `.tree.stats`, the source and its whole
//!   subtree in one file;
//! * a statsfs mount's root (it has `.schema`): the `.tree.stats` of each root;
//! * a bulk stats file: a `.stats` or `.tree.stats`, a saved blob, or a kernel stats file;
//! * `fd:N`: a stats file descriptor this process inherited (`statsfs top fd:3 3<...`),
//!   for instance a kernel `KVM_GET_STATS_FD` descriptor passed by its VMM;
//! * a shared region (`docs/REGION.md`), or a mount's `.region` that names one: every
//!   refresh is then loads from memory, no system call, and the layout is read again
//!   when the region's generation moves.
//!
//! The layout of an open bulk file of the mount is fixed until it is opened again
//! (`docs/FILES.md#bulk-files`). The mount tells its readers when it changed: `poll`
//! on an open bulk file reports `POLLPRI` once the tree below it changed shape. The tool
//! waits between refreshes in that `poll`, so it learns of a change at no extra cost,
//! and only then reads the schema again.

use std::fs::{self, File};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::getpid;

use super::catalogue::Catalogue;
use super::error::CliError;
use super::fd::dup_fd;
use super::kvm;
use super::model::Model;
use super::open::{check_kind, open_regular, read_text};
use statsfs_binary::StatsFile;

/// One bulk file: where its data words go in the data vector.
#[derive(Debug)]
struct Part {
    file: StatsFile<File>,
    /// Prefix of its sources' paths in the model (`""`: the file's id).
    prefix: String,
    /// Where to open it again when its layout changed (files of a mount).
    reopen: Option<PathBuf>,
    /// Its first word in the data vector.
    base: usize,
}

/// Where the bulk files came from, to open them again.
#[derive(Debug, Clone)]
enum Origin {
    /// A mount's source directory, or its root (the roots listed at every re-open).
    Mount { dir: PathBuf, root: bool },
    /// One file, opened again if it reports `POLLPRI` (a bulk file of a mount does once
    /// the tree changed shape; other files never do).
    File(PathBuf),
    /// Files or descriptors that never change layout.
    Fixed,
}

/// Where the values come from: one backend a reader, each with what it needs and nothing
/// of the others'.
#[derive(Debug)]
enum Backend {
    /// Bulk files (a mount's, a saved blob, `fd:N`): one positioned read each per
    /// refresh, opened again from `origin` when the mount says the tree changed shape.
    Files { parts: Vec<Part>, origin: Origin },
    /// The kernel's stats files of running VMMs (`statsfs kvm`), looked for again every
    /// few seconds for VMs started or ended.
    Kernel { parts: Vec<Part>, watch: kvm::Watch },
    /// A shared region: loads from memory, no system call (boxed: a region reader is
    /// far larger than a list of files).
    Region(Box<RegionBackend>),
}

/// A shared region being read ([`Backend::Region`]).
#[derive(Debug)]
struct RegionBackend {
    reader: statsfs_region::RegionReader,
    /// Only the sources at or below this path (a mount's source directory that the
    /// region covers).
    under: Option<String>,
    /// For a region chosen in place of a mount's bulk files: where they are, to look
    /// again at each layout change whether the region still holds all they do.
    instead_of: Option<Origin>,
    /// The region's layout moved during a refresh: `wait` reads the new one.
    moved: bool,
    /// When the writer's liveness was last tested (at most every `LIVENESS_EVERY`).
    checked: Option<Instant>,
}

impl RegionBackend {
    fn new(reader: statsfs_region::RegionReader) -> Self {
        RegionBackend {
            reader,
            under: None,
            instead_of: None,
            moved: false,
            checked: None,
        }
    }

    fn error(&self, source: statsfs_region::RegionError) -> CliError {
        CliError::Region {
            path: self.reader.path().to_owned(),
            source,
        }
    }
}

/// The model of what `region` holds (of the sources at or below `under`, if given): the
/// region's buffer is the data vector, each entry's stats where its descriptors say
/// from the entry's start, aggregates already folded by the region's reader.
fn region_model(region: &statsfs_region::RegionReader, under: Option<&str>) -> Model {
    let mut model = Model::default();
    for (i, e) in region.entries().iter().enumerate() {
        let base = region.entry_start(i).unwrap_or(0);
        let words: usize = e.locations.iter().map(|l| usize::from(l.words)).sum();
        // Room for every entry, listed or not: the buffer holds them all.
        model.reserve(base, words);
        let inside = at_or_below(&e.path, under);
        // As the mount shows: hidden sources and groups are not listed (their values
        // still count in the aggregates, which the region's reader folds).
        if !inside || e.hidden {
            continue;
        }
        for (d, l) in e.stats.iter().zip(&e.locations) {
            model.add_read(&e.path, base, d);
            // The region says which words are signed (sign-extended already): they read
            // as the value files show them, with no catalogue.
            if l.signed && !d.kind.is_histogram() {
                if let Some(st) = model.stats.last_mut() {
                    st.number.ty = statsfs_core::ValueType::I64;
                }
            }
        }
    }
    model
}

/// Whether the source path `path` is `under` or below it (`None` or `""`: everything).
pub(crate) fn at_or_below(path: &str, under: Option<&str>) -> bool {
    under.is_none_or(|u| statsfs_core::Source::path_within(path, u))
}

/// Every (source, stat) a model reads, not those it folds itself, with its words in
/// `data`, in order.
fn read_values(model: &Model, data: &[u64]) -> Vec<(String, String, Vec<u64>)> {
    let mut out: Vec<_> = (0..model.stats.len())
        .filter(|&i| !model.stats[i].folded)
        .map(|i| {
            let (p, n) = model.key(i);
            let words = data
                .get(model.stats[i].words.clone())
                .unwrap_or(&[])
                .to_vec();
            (p.to_owned(), n.to_owned(), words)
        })
        .collect();
    out.sort();
    out
}

/// Whether `region` (its values `data`) holds, at or below `under`, exactly the stats the
/// bulk files' `model` reads, with the same values: then reading it shows what the bulk
/// files show. Any difference (a stat the region lacks, a shadowed value, an aggregate
/// folding a hidden source that is not in the region, or only a counter that moved
/// between the two reads) keeps the bulk files.
fn covers(
    region: &statsfs_region::RegionReader,
    data: &[u64],
    under: &str,
    model: &Model,
    bulk: &[u64],
) -> bool {
    read_values(&region_model(region, Some(under)), data) == read_values(model, bulk)
}

/// The first bytes of a shared region (`docs/REGION.md`).
const REGION_MAGIC: &[u8; 8] = b"statsfsR";

/// The region `path` is, or names (a mount's `.region` holds its path), if it is one.
fn region_at(path: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 8];
    let n = {
        use std::io::Read;
        open_regular(path).ok()?.read(&mut head).ok()?
    };
    if n == 8 && &head == REGION_MAGIC {
        return Some(path.to_owned());
    }
    if path.file_name().is_some_and(|n| n == ".region") {
        return advertised_region(path);
    }
    None
}

/// The region a mount's `.region` file names (its path, on one line).
fn advertised_region(file: &Path) -> Option<PathBuf> {
    read_text(file, 4096).map(|text| PathBuf::from(text.trim_end()))
}

/// What the tool reads: the bulk files, the model of their sources and stats, and the
/// data of the last refresh. Programs that watch a tree the way the tool does can use it
/// directly.
///
/// ```no_run
/// use std::time::Duration;
/// let mut reader = statsfs_cli::Reader::open("/run/statsfs/kvm")?;
/// loop {
///     reader.wait(Duration::from_secs(1))?; // a poll: wakes early if the tree changed
///     reader.refresh()?;                    // one pread per bulk file
///     println!("{} stats from {} file(s)", reader.stats(), reader.files());
/// }
/// # Ok::<(), statsfs_cli::CliError>(())
/// ```
#[derive(Debug)]
pub struct Reader {
    backend: Backend,
    /// Sources that get folds after each layout read (`statsfs kvm`'s VMs and top).
    fold_at: Vec<String>,
    /// The sources and stats.
    pub(crate) model: Model,
    /// The words of the last refresh, laid out as `model` says.
    pub(crate) data: Vec<u64>,
    /// When the last refresh was.
    pub(crate) at: Instant,
    /// How many times the layout was read again since the start.
    pub(crate) relayouts: u64,
    /// The model before the last change of layout, to move other vectors of words
    /// ([`carry`](Self::carry)).
    before: Option<Model>,
    /// What to call it in messages and titles.
    pub(crate) label: String,
    /// The mount's catalogue (empty for files outside a mount): read once at open.
    pub(crate) catalogue: Catalogue,
}

/// Opens `path` read-only, with errors that say what to do.
/// Only a regular file is opened, without blocking ([`open_regular`]).
pub(crate) fn open_file(path: &Path) -> Result<File, CliError> {
    open_regular(path).map_err(|source| CliError::Open {
        path: path.to_owned(),
        source,
    })
}

impl Reader {
    /// The kernel's KVM statistics of `pid` (or of every VMM on the host): says on
    /// `notes` which VMMs hold no stats file, and reads the rest, looking again for VMs
    /// started or ended every few seconds.
    pub(crate) fn kvm(
        pid: Option<u32>,
        notes: &mut dyn std::io::Write,
    ) -> Result<Reader, CliError> {
        let (found, label, watch) = kvm::find(pid, notes)?;
        Ok(Reader::of_files(found.files, found.fold_at, label)?.watching(watch))
    }

    /// Opens `spec` (a statsfs mount, one of its source directories, a bulk stats file,
    /// or `fd:N`) and reads it once.
    pub fn open(spec: &str) -> Result<Reader, CliError> {
        if let Some(n) = spec.strip_prefix("fd:") {
            let fd: RawFd = n.parse().map_err(|_| CliError::BadFd(spec.to_owned()))?;
            let file = File::from(dup_fd(getpid(), fd)?);
            let part = Part::open(file, spec, String::new(), None)?;
            let backend = Backend::Files {
                parts: vec![part],
                origin: Origin::Fixed,
            };
            return Reader::new(backend, Vec::new(), spec.to_owned(), None);
        }
        let path = Path::new(spec);
        let not_open = |source| CliError::Open {
            path: path.to_owned(),
            source,
        };
        // A FIFO, socket or device is refused before anything opens it.
        check_kind(path).map_err(not_open)?;
        let meta = fs::metadata(path).map_err(not_open)?;
        if let Some(region) = meta.is_file().then(|| region_at(path)).flatten() {
            let reader =
                statsfs_region::RegionReader::open(&region).map_err(|e| CliError::Region {
                    path: region.clone(),
                    source: e,
                })?;
            let backend = Backend::Region(Box::new(RegionBackend::new(reader)));
            let mut r = Reader::new(backend, Vec::new(), spec.to_owned(), None)?;
            r.region_relayout()?;
            return Ok(r);
        }
        let label = path.display().to_string();
        // Where the mount's catalogue is looked for: up from the absolute path.
        let absolute = fs::canonicalize(path).ok();
        let origin = if meta.is_dir() {
            Origin::Mount {
                dir: path.to_owned(),
                root: !path.join(".tree.stats").exists(),
            }
        } else {
            Origin::File(path.to_owned())
        };
        let parts = open_parts(&origin)?;
        let backend = Backend::Files { parts, origin };
        let mut r = Reader::new(backend, Vec::new(), label, absolute.clone())?;
        if let Some(abs) = absolute.filter(|_| meta.is_dir()) {
            r.use_region_if_it_covers(&abs);
        }
        Ok(r)
    }

    /// A mount that advertises a shared region (`<mount>/.region`, `docs/REGION.md`): if
    /// the region holds every stat the bulk files just read do, it is read instead, with
    /// no system call per refresh. Else (a root of the mount the region does not hold,
    /// such as the KVM example's mirrors of the kernel's stats) the bulk files stay.
    fn use_region_if_it_covers(&mut self, dir: &Path) {
        // The mount's root: the directory with `.schema`, at or above `dir`.
        let Some(root) = dir.ancestors().find(|d| d.join(".schema").exists()) else {
            return;
        };
        let Some(advertised) = advertised_region(&root.join(".region")) else {
            return;
        };
        let Ok(mut region) = statsfs_region::RegionReader::open(advertised) else {
            return;
        };
        let mut data = Vec::new();
        if region.refresh(&mut data).is_err() {
            return;
        }
        let under = dir
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .unwrap_or("")
            .to_owned();
        let Backend::Files { origin, .. } = &self.backend else {
            return;
        };
        if !covers(&region, &data, &under, &self.model, &self.data) {
            return;
        }
        self.backend = Backend::Region(Box::new(RegionBackend {
            under: Some(under),
            instead_of: Some(origin.clone()),
            ..RegionBackend::new(region)
        }));
        self.data = data;
        self.layout();
    }

    /// Reads the region's new layout and the values under it; the stats that stayed keep
    /// their last values and time (as `relayout` does for bulk files), so the next
    /// refresh computes rates across the change. For a region chosen in place of a
    /// mount's bulk files, looks again whether it still holds all they do, and goes back
    /// to them if not.
    fn region_relayout(&mut self) -> Result<(), CliError> {
        let Backend::Region(region) = &mut self.backend else {
            return Ok(());
        };
        let mut fresh = Vec::new();
        region
            .reader
            .refresh(&mut fresh)
            .map_err(|e| region.error(e))?;
        region.moved = false;
        if let Some(origin) = region.instead_of.clone() {
            let parts = open_parts(&origin)?;
            let backend = Backend::Files {
                parts,
                origin: origin.clone(),
            };
            let mut bulk = Reader::new(backend, Vec::new(), String::new(), None)?;
            bulk.catalogue = std::mem::take(&mut self.catalogue);
            bulk.layout();
            let under = region.under.clone().unwrap_or_default();
            let still = covers(&region.reader, &fresh, &under, &bulk.model, &bulk.data);
            self.catalogue = std::mem::take(&mut bulk.catalogue);
            if !still {
                // Back to the bulk files, as a change of layout.
                let Backend::Files { parts, .. } = bulk.backend else {
                    unreachable!("made as bulk files above");
                };
                self.backend = Backend::Files {
                    parts: Vec::new(),
                    origin,
                };
                self.relayout(parts);
                return Ok(());
            }
        }
        let (before, old, at) = (
            std::mem::take(&mut self.model),
            std::mem::take(&mut self.data),
            self.at,
        );
        self.data = fresh;
        self.layout();
        if before.words() > 0 {
            self.data = self.model.remap(&before, &old, &self.data);
            self.at = at;
            self.before = Some(before);
            self.relayouts += 1;
        }
        Ok(())
    }

    /// A reader of stats files already open: `(prefix, file)`, the sources of each file
    /// under its prefix; after each refresh the sources `fold_at` (deepest first) get
    /// the folds of their subtrees.
    pub(crate) fn of_files(
        files: Vec<(String, File)>,
        fold_at: Vec<String>,
        label: String,
    ) -> Result<Reader, CliError> {
        let parts = Self::parts_of(files, &label)?;
        let backend = Backend::Files {
            parts,
            origin: Origin::Fixed,
        };
        Reader::new(backend, fold_at, label, None)
    }

    fn new(
        backend: Backend,
        fold_at: Vec<String>,
        label: String,
        catalogue_from: Option<PathBuf>,
    ) -> Result<Reader, CliError> {
        let mut r = Reader {
            backend,
            fold_at,
            model: Model::default(),
            data: Vec::new(),
            at: Instant::now(),
            relayouts: 0,
            before: None,
            catalogue: match &catalogue_from {
                Some(p) => Catalogue::find(p),
                None => Catalogue::default(),
            },
            label: crate::printable(&label).into_owned(),
        };
        r.layout();
        Ok(r)
    }

    /// The reader, looking for VMs started or ended as `watch` says.
    pub(crate) fn watching(mut self, watch: kvm::Watch) -> Reader {
        self.backend = match self.backend {
            Backend::Files { parts, .. } | Backend::Kernel { parts, .. } => {
                Backend::Kernel { parts, watch }
            }
            region @ Backend::Region(_) => region,
        };
        self
    }

    /// Builds the model from the parts' schemas and takes their data as read at open.
    fn layout(&mut self) {
        let mut model = Model::default();
        let parts = match &mut self.backend {
            Backend::Files { parts, .. } | Backend::Kernel { parts, .. } => parts,
            Backend::Region(region) => {
                model = region_model(&region.reader, region.under.as_deref());
                model.set_types(|name| self.catalogue.agreed(name).map(|e| e.ty));
                self.data.resize(model.words(), 0);
                self.model = model;
                self.at = Instant::now();
                return;
            }
        };
        for part in parts.iter_mut() {
            part.base = model.words();
            let prefix = if part.prefix.is_empty() {
                part.file.id().to_owned()
            } else {
                part.prefix.clone()
            };
            for d in part.file.descriptors() {
                model.add_read(&prefix, part.base, d);
            }
            model.reserve(part.base, part.file.schema().data_words());
        }
        // A signed value is stored as its two's-complement word: the catalogue says
        // which are (the layout does not), so they read as the value files show them.
        model.set_types(|name| self.catalogue.agreed(name).map(|e| e.ty));
        for path in &self.fold_at {
            let s = model.source(path);
            model.add_folds(s);
        }
        let mut data = vec![0; model.words()];
        for part in parts.iter() {
            copy_words(part, part.file.data(), &mut data);
        }
        model.fold(&mut data);
        self.model = model;
        self.data = data;
        self.at = Instant::now();
    }

    /// Reads every value again: one positioned read per bulk file, or loads from a
    /// region's memory (reading its layout again if it moved).
    pub fn refresh(&mut self) -> Result<(), CliError> {
        let parts = match &mut self.backend {
            Backend::Files { parts, .. } | Backend::Kernel { parts, .. } => parts,
            Backend::Region(region) => {
                // Under the layout the model was made for: a layout that moved is read
                // at the next `wait`, where callers expect changes of layout.
                // The writer's liveness first: "gone" is then said beside its last values.
                if region
                    .checked
                    .is_none_or(|t| t.elapsed() >= statsfs_region::LIVENESS_EVERY)
                {
                    region.checked = Some(Instant::now());
                    region.reader.check_writer();
                }
                let mut fresh = Vec::with_capacity(self.data.len());
                let same = match region.reader.refresh_same_layout(&mut fresh) {
                    Ok(same) => same,
                    // A region read in place of a mount's bulk files, cut short by
                    // someone: the bulk files still say what the tree holds.
                    Err(statsfs_region::RegionError::Truncated { .. })
                        if region.instead_of.is_some() =>
                    {
                        let origin = region.instead_of.clone().expect("checked above");
                        self.back_to_files(origin)?;
                        return self.refresh();
                    }
                    Err(e) => return Err(region.error(e)),
                };
                if same {
                    self.data = fresh;
                    self.at = Instant::now();
                } else {
                    region.moved = true;
                }
                return Ok(());
            }
        };
        for part in parts.iter_mut() {
            let base = part.base;
            match part.file.refresh() {
                Ok(words) => self.data[base..base + words.len()].copy_from_slice(words),
                Err(source) => {
                    return Err(CliError::Read {
                        what: part.what(),
                        source,
                    })
                }
            }
        }
        self.model.fold(&mut self.data);
        self.at = Instant::now();
        Ok(())
    }

    /// Waits `interval`, the one `poll` of a refresh loop, and reads the layout again
    /// if the tree changed shape meanwhile (the mount's bulk files report `POLLPRI`).
    /// Returns whether it did; the values of the last refresh are kept, moved to their
    /// new places, so the next refresh computes rates across the change.
    pub fn wait(&mut self, interval: Duration) -> Result<bool, CliError> {
        let deadline = Instant::now() + interval;
        let mut changed = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let stale = {
                let mut fds: Vec<PollFd<'_>> = self
                    .parts()
                    .iter()
                    .filter(|p| p.reopen.is_some())
                    .map(|p| PollFd::new(p.file.get_ref(), PollFlags::PRI))
                    .collect();
                let timeout = Timespec::try_from(left).unwrap_or(Timespec {
                    tv_sec: 3600,
                    tv_nsec: 0,
                });
                let gone = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
                match poll(&mut fds, Some(&timeout)) {
                    // The file system stopped answering (its process ended): say so
                    // rather than spin on a descriptor that is always "ready".
                    Ok(_) if fds.iter().any(|f| f.revents().intersects(gone)) => {
                        return Err(CliError::Open {
                            path: self.label.clone().into(),
                            source: std::io::Error::other(
                                "the mount stopped answering: its process ended or unmounted it",
                            ),
                        })
                    }
                    Ok(_) => fds.iter().any(|f| f.revents().contains(PollFlags::PRI)),
                    Err(rustix::io::Errno::INTR) => false,
                    Err(e) => {
                        return Err(CliError::Open {
                            path: self.label.clone().into(),
                            source: e.into(),
                        })
                    }
                }
            };
            if stale {
                self.reopen()?;
                changed = true;
            }
            if matches!(&self.backend, Backend::Region(r) if r.moved || r.reader.layout_moved()) {
                self.region_relayout()?;
                changed = true;
            }
            if Instant::now() >= deadline {
                return Ok(self.look_for_vms()? || changed);
            }
        }
    }

    /// How many stats (read and folded) there are.
    pub fn stats(&self) -> usize {
        self.model.stats.len()
    }

    /// How many times the layout was read again (the tree changed shape).
    pub fn relayouts(&self) -> u64 {
        self.relayouts
    }

    /// For `statsfs kvm`, when it is time: takes the stats files of VMs started since the
    /// last look and drops those of VMs that ended. Returns whether the layout changed.
    fn look_for_vms(&mut self) -> Result<bool, CliError> {
        let Backend::Kernel { watch, .. } = &mut self.backend else {
            return Ok(false);
        };
        let Some(found) = watch.check()? else {
            return Ok(false);
        };
        let parts = Self::parts_of(found.files, &self.label)?;
        self.fold_at = found.fold_at;
        self.relayout(parts);
        Ok(true)
    }

    /// The parts of stats files already open, each under its prefix.
    fn parts_of(files: Vec<(String, File)>, label: &str) -> Result<Vec<Part>, CliError> {
        files
            .into_iter()
            .map(|(prefix, file)| {
                let what = format!("{label}: {prefix}");
                Part::open(file, &what, prefix, None)
            })
            .collect()
    }

    /// Opens every bulk file again and reads the new layout. `data` and `at` stay those
    /// of the last refresh, moved to the new layout (stats that are new read as they
    /// are now), so the next refresh computes rates across the change.
    pub(crate) fn reopen(&mut self) -> Result<(), CliError> {
        let origin = match &self.backend {
            Backend::Files { origin, .. } if !matches!(origin, Origin::Fixed) => origin,
            _ => return Ok(()),
        };
        // Opening is the one step that can fail: before it, nothing is changed.
        let parts = open_parts(origin)?;
        self.relayout(parts);
        Ok(())
    }

    /// Reads the layout of `parts`, which replace the reader's bulk files.
    fn relayout(&mut self, parts: Vec<Part>) {
        match &mut self.backend {
            Backend::Files { parts: p, .. } | Backend::Kernel { parts: p, .. } => *p = parts,
            Backend::Region(_) => {}
        }
        let (before, old, at) = (
            std::mem::take(&mut self.model),
            std::mem::take(&mut self.data),
            self.at,
        );
        self.layout();
        // Stats that stayed keep their last values; new ones start from what they read now.
        self.data = self.model.remap(&before, &old, &self.data);
        self.at = at;
        self.before = Some(before);
        self.relayouts += 1;
    }

    /// `words`, laid out as the model before the last change of layout, moved to the
    /// current one (a baseline kept across a change).
    pub(crate) fn carry(&self, words: &[u64]) -> Vec<u64> {
        match &self.before {
            Some(before) => self.model.remap(before, words, &[]),
            None => words.to_vec(),
        }
    }

    /// How many bulk files are read per refresh (0 when a shared region is read).
    pub fn files(&self) -> usize {
        self.parts().len()
    }

    /// The bulk files read per refresh (none for a region).
    fn parts(&self) -> &[Part] {
        match &self.backend {
            Backend::Files { parts, .. } | Backend::Kernel { parts, .. } => parts,
            Backend::Region(_) => &[],
        }
    }

    /// Reads the bulk files of `origin` from now on, in place of a region, as a change
    /// of layout (the values of the stats that stay keep their last reading).
    fn back_to_files(&mut self, origin: Origin) -> Result<(), CliError> {
        let parts = open_parts(&origin)?;
        self.backend = Backend::Files {
            parts: Vec::new(),
            origin,
        };
        self.relayout(parts);
        Ok(())
    }

    /// Whether the shared region read (if one is) has lost its writer: it exited or was
    /// killed, and the values shown are its last (`docs/REGION.md#liveness`).
    pub fn writer_gone(&self) -> bool {
        matches!(&self.backend, Backend::Region(r) if r.reader.writer_gone())
    }

    /// Whether a shared region is read (`docs/REGION.md`): each refresh is then loads from
    /// memory, no system call.
    pub fn reads_region(&self) -> bool {
        matches!(self.backend, Backend::Region(_))
    }

    /// The shared region read, if one is, and the path at or below which its sources are
    /// shown (`None`: all); its values are in [`data`](Self::data) as the last refresh left
    /// them.
    pub(crate) fn region(&self) -> Option<(&statsfs_region::RegionReader, Option<&str>)> {
        match &self.backend {
            Backend::Region(r) => Some((&r.reader, r.under.as_deref())),
            _ => None,
        }
    }
}

impl Part {
    fn open(
        file: File,
        what: &str,
        prefix: String,
        reopen: Option<PathBuf>,
    ) -> Result<Part, CliError> {
        let file = StatsFile::open(file).map_err(|source| CliError::Read {
            what: what.to_owned(),
            source,
        })?;
        Ok(Part {
            file,
            prefix,
            reopen,
            base: 0,
        })
    }

    fn what(&self) -> String {
        match &self.reopen {
            Some(p) => p.display().to_string(),
            None => self.file.id().to_owned(),
        }
    }
}

fn copy_words(part: &Part, words: &[u64], data: &mut [u64]) {
    data[part.base..part.base + words.len()].copy_from_slice(words);
}

/// The bulk files of `origin`: a file; a mount's source directory's `.tree.stats`; or one
/// per root of a mount.
fn open_parts(origin: &Origin) -> Result<Vec<Part>, CliError> {
    let open = |p: PathBuf| -> Result<Part, CliError> {
        let file = open_file(&p)?;
        Part::open(file, &p.display().to_string(), String::new(), Some(p))
    };
    let (dir, root) = match origin {
        Origin::Mount { dir, root } => (dir, *root),
        Origin::File(p) => return Ok(vec![open(p.clone())?]),
        Origin::Fixed => return Ok(Vec::new()),
    };
    if !root {
        return Ok(vec![open(dir.join(".tree.stats"))?]);
    }
    if !dir.join(".schema").exists() {
        return Err(CliError::NotStatsfs { path: dir.clone() });
    }
    let mut parts = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| CliError::Open {
        path: dir.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| CliError::Open {
            path: dir.clone(),
            source,
        })?;
        let bulk = entry.path().join(".tree.stats");
        match open(bulk) {
            Ok(part) => parts.push(part),
            // A root removed (or hidden) between the listing and the open.
            Err(CliError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use statsfs_binary::{Layout, StatDesc};

    /// A blob of `x` and `y` whose descriptors put `x` at word 2 and `y` at word 0 (out of
    /// order, with a gap): the reader must take each word where its descriptor says.
    #[test]
    fn stats_are_read_where_their_offsets_say() {
        let layout = Layout::new("r", &[StatDesc::counter("x"), StatDesc::counter("y")]).unwrap();
        let mut blob = layout.encode(&[0, 0]).unwrap();
        let desc = layout.desc_offset();
        let step = 16 + layout.name_size() as usize;
        // The descriptor's offset field is at byte 8 of it.
        blob[desc + 8..desc + 12].copy_from_slice(&16u32.to_ne_bytes());
        blob[desc + step + 8..desc + step + 12].copy_from_slice(&0u32.to_ne_bytes());
        let data = layout.data_offset();
        blob.truncate(data);
        for w in [7u64, 0, 5] {
            blob.extend_from_slice(&w.to_ne_bytes());
        }
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("r.stats");
        std::fs::write(&path, &blob).unwrap();
        let mut r = Reader::open(path.to_str().unwrap()).unwrap();
        r.refresh().unwrap();
        let m = &r.model;
        let s = m.find("r").unwrap();
        assert_eq!(m.number(m.stat(s, "x").unwrap(), &r.data), 5);
        assert_eq!(m.number(m.stat(s, "y").unwrap(), &r.data), 7);
    }
}
