//! Mirroring a binary stats file (the kernel's `KVM_GET_STATS_FD`, or another statsfs
//! bulk file) into the tree: its descriptors become a runtime [`Schema`], its data block
//! a [`BlockSource`] re-read at read time.

use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use crate::{BlobSchema, ReadError, StatDesc, StatsFile};
use statsfs_core::desc::{Aggregation, Descriptor, Kind, Storage, ValueType};
use statsfs_core::schema::{intern, Schema};
use statsfs_core::tree::BlockSource;
use statsfs_core::Error;

/// The statsfs descriptor of a decoded stat: a u64 (the kernel's stats are unsigned),
/// read-only (a stats file cannot be written), aggregated by `max` for peaks and `sum`
/// otherwise.
pub fn descriptor_of(d: &StatDesc) -> Descriptor {
    let agg = if matches!(d.kind, Kind::Peak) {
        Aggregation::Max
    } else {
        Aggregation::Sum
    };
    Descriptor::new(intern(&d.name), ValueType::U64, d.kind)
        .with_storage(Storage::Block, d.size)
        .with_offset(d.offset as usize)
        .with_unit(d.unit, d.scale)
        .with_aggregation(agg)
        .with_clearable(false)
}

/// Shares runtime schemas between files of the same layout: aggregates match by schema
/// identity, so every vCPU's mirror must use the same `Arc<Schema>`.
///
/// ```no_run
/// use std::fs::File;
/// use statsfs_binary::Mirror;
/// use statsfs_core::{Source, ValueGroup};
/// # fn stats_fd() -> File { unimplemented!() }
/// let mirror = Mirror::new();
/// let (schema, block) = mirror.open("kvm_vcpu", stats_fd()).unwrap();
/// let kernel = Source::new("kernel").unwrap();
/// kernel.add(ValueGroup::block(schema, block)).unwrap();
/// ```
#[derive(Default)]
pub struct Mirror {
    schemas: Mutex<Vec<Arc<Schema>>>,
}

impl Mirror {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The runtime schema named `name` for a decoded layout: the same `Arc` for the same
    /// name and descriptors.
    pub fn schema(&self, name: &str, layout: &BlobSchema) -> Result<Arc<Schema>, Error> {
        let descriptors: Vec<Descriptor> = layout.descriptors().iter().map(descriptor_of).collect();
        let mut known = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = known
            .iter()
            .find(|s| s.name() == name && s.descriptors() == descriptors.as_slice())
        {
            return Ok(s.clone());
        }
        let s = Schema::new_runtime(name, descriptors)?;
        known.push(s.clone());
        Ok(s)
    }

    /// Opens a stats file: its schema (shared as [`schema`](Self::schema) shares it) and
    /// a block source that re-reads its data block with one `pread` per read. The block
    /// source comes in an `Arc`, ready for [`ValueGroup::block`](statsfs_core::ValueGroup::block)
    /// (more than one group may share it).
    pub fn open<F: FileExt + Send + 'static>(
        &self,
        name: &str,
        file: F,
    ) -> Result<(Arc<Schema>, Arc<FileBlock<F>>), MirrorError> {
        let file = StatsFile::open(file).map_err(MirrorError::Read)?;
        let schema = self
            .schema(name, file.schema())
            .map_err(MirrorError::Schema)?;
        Ok((schema, Arc::new(FileBlock(Mutex::new(file)))))
    }
}

/// Why a file could not be mirrored; the cause is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The file could not be read or is malformed.
    #[error("cannot mirror the stats file: it cannot be read or is malformed")]
    Read(#[source] ReadError),
    /// Its descriptors break a statsfs rule.
    #[error("cannot mirror the stats file: its descriptors break a statsfs rule")]
    Schema(#[source] Error),
}

/// The data block of an open stats file, re-read at every read of the tree.
pub struct FileBlock<F>(Mutex<StatsFile<F>>);

impl<F: FileExt + Send> BlockSource for FileBlock<F> {
    fn read_block(&self, out: &mut [u64]) -> std::io::Result<()> {
        let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let words = file.refresh().map_err(std::io::Error::other)?;
        let n = words.len().min(out.len());
        out[..n].copy_from_slice(&words[..n]);
        out[n..].fill(0);
        Ok(())
    }
}
