//! What the files say and do: value files (text, `docs/FILES.md#text-rendering`) and bulk
//! files (the binary layout, `docs/BINARY.md`), independent of FUSE.

use statsfs_core::binary::Selection;
use statsfs_core::view::{BulkView, ViewError};
use statsfs_core::Scope;
use statsfs_core::{value, Error, Source};

/// How a request failed, as an errno.
pub(crate) fn errno(e: &Error) -> i32 {
    match e {
        Error::NotFound { .. } => libc::ENOENT,
        Error::ReadOnly { .. } => libc::EACCES,
        _ => libc::EIO,
    }
}

/// A value file's contents and a newline: the value's one number
/// ([`value::write_text`]), or for `<name>.buckets` a histogram's buckets
/// ([`value::write_buckets`]).
pub(crate) fn value_text(source: &Source, name: &str, buckets: bool) -> Result<Vec<u8>, i32> {
    let v = source.get(name).map_err(|e| errno(&e))?;
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = if buckets {
        value::write_buckets(&mut text, v.descriptor(), v.words())
    } else {
        value::write_text(&mut text, v.descriptor(), v.words())
    };
    text.push('\n');
    Ok(text.into_bytes())
}

/// Writing a value file: `0` or `0\n` clears it; anything else is `EINVAL` and changes
/// nothing.
pub(crate) fn value_write(source: &Source, name: &str, data: &[u8]) -> Result<(), i32> {
    if !value::is_clear_request(data) {
        return Err(libc::EINVAL);
    }
    source.clear(name).map_err(|e| errno(&e))
}

/// An open bulk file: its view (fixed at open, or at the last selection written) and
/// the blob of the last read.
pub(crate) struct BulkFile {
    source: Source,
    scope: Scope,
    view: BulkView,
    blob: Vec<u8>,
}

fn view_errno(e: &ViewError) -> i32 {
    match e {
        ViewError::Selection(_) => libc::EINVAL,
        _ => libc::EIO,
    }
}

impl BulkFile {
    pub(crate) fn open(source: Source, scope: Scope) -> Result<Self, i32> {
        let view = BulkView::new(&source, scope, &Selection::all()).map_err(|e| view_errno(&e))?;
        Ok(BulkFile {
            source,
            scope,
            view,
            blob: Vec::new(),
        })
    }

    /// Whether the tree below the file's source still has the shape its layout was made
    /// for; `poll` reports `POLLPRI` once it has not (`docs/FILES.md#noticing-changes`).
    pub(crate) fn is_current(&self) -> bool {
        self.view.is_current()
    }

    /// The blob's length, for `stat`.
    pub(crate) fn len(source: &Source, scope: Scope) -> u64 {
        BulkView::new(source, scope, &Selection::all())
            .map(|v| v.layout().total_len() as u64)
            .unwrap_or(0)
    }

    /// A read at `offset`: at offset 0 the whole blob is encoded afresh; a read that
    /// starts in the data block re-reads the values; any other read continues the blob
    /// of the last one. Past the end: nothing.
    pub(crate) fn read(&mut self, offset: u64, size: u32) -> &[u8] {
        let data_offset = self.view.layout().data_offset() as u64;
        if offset == 0 || self.blob.is_empty() {
            self.view.encode(&mut self.blob);
        } else if offset >= data_offset {
            self.view.encode_data(&mut self.blob);
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.blob.len());
        let end = start.saturating_add(size as usize).min(self.blob.len());
        &self.blob[start..end]
    }

    /// Writing a selection: the stats to keep (patterns, see `Selection`); an empty write
    /// selects everything again. A bad selection is `EINVAL` and changes nothing.
    pub(crate) fn select(&mut self, data: &[u8]) -> Result<(), i32> {
        let sel = Selection::parse_bytes(data).map_err(|_| libc::EINVAL)?;
        self.view = BulkView::new(&self.source, self.scope, &sel).map_err(|e| view_errno(&e))?;
        self.blob.clear();
        Ok(())
    }
}

/// The catalogue file's text: every stat the binary can produce
/// ([`registry::write_catalogue`](statsfs_core::registry::write_catalogue)).
pub(crate) fn catalogue() -> Vec<u8> {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = statsfs_core::registry::write_catalogue(&mut text);
    text.into_bytes()
}

/// The `.region` file's text: the path of the tree's shared region and a newline
/// (`docs/REGION.md`), or nothing when it has none.
pub(crate) fn region(path: Option<&std::path::Path>) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let Some(p) = path else {
        return Vec::new();
    };
    let mut text = p.as_os_str().as_bytes().to_vec();
    text.push(b'\n');
    text
}
