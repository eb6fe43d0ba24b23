//! The mount's handling of written input, without FUSE, for the fuzz target
//! (`statsfs-vfs/fuzz/`) and its corpus replay (`tests/mount/fuzz_write.rs`): the same
//! functions the mount's `write` and `read` requests call. Behind the `fuzzing` feature;
//! not a stable interface.

use statsfs_core::{Scope, Source};

use crate::files::{self, BulkFile};

/// A write to the value file `name` of `source`, as the mount handles it: `Ok` when it
/// cleared the value, else the errno the writer gets.
pub fn write_value(source: &Source, name: &str, data: &[u8]) -> Result<(), i32> {
    files::value_write(source, name, data)
}

/// An open bulk file (`.stats` for [`Scope::Source`], `.tree.stats` for
/// [`Scope::Subtree`]).
pub struct Bulk(BulkFile);

impl Bulk {
    /// Opens it, as `open(2)` on the mount does.
    pub fn open(source: Source, scope: Scope) -> Result<Bulk, i32> {
        let shape =
            statsfs_binary::BulkShape::new(&source, scope, &statsfs_binary::Selection::all())
                .map_err(|_| libc::EIO)?;
        Ok(Bulk(BulkFile::open(
            source,
            scope,
            std::sync::Arc::new(shape),
        )))
    }

    /// A write of a selection: `Ok`, or the errno (the previous selection stays).
    pub fn write(&mut self, data: &[u8]) -> Result<(), i32> {
        self.0.select(data)
    }

    /// A read of `size` bytes at `offset`.
    pub fn read(&mut self, offset: u64, size: u32) -> Vec<u8> {
        self.0.read(offset, size).to_vec()
    }
}
