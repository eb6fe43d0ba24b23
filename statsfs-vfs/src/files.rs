//! What the files say and do: value files (text, `docs/FILES.md#text-rendering`) and bulk
//! files (the binary layout, `docs/BINARY.md`), independent of FUSE.

use std::fmt::Write as _;

use statsfs_binary::{BulkShape, BulkView, Selection, ViewError};
use statsfs_core::{value, Descriptor, Error, Scope, Source};
use std::sync::Arc;

/// How a request failed, as an errno.
pub(crate) fn errno(e: &Error) -> i32 {
    match e {
        Error::NotFound { .. } => libc::ENOENT,
        Error::ReadOnly { .. } => libc::EACCES,
        _ => libc::EIO,
    }
}

/// Whether `data`, written to a value file, asks to clear the value: exactly `0` or
/// `0\n` (what `echo 0 >` writes); anything else (other digits, signs, spaces, a second
/// line, any other length) is refused, and must change nothing (`docs/FILES.md#writing`).
pub(crate) fn is_clear_request(data: &[u8]) -> bool {
    data == b"0" || data == b"0\n"
}

/// Writes a histogram's bucket counts separated by spaces (for any other value, its
/// [`value::number`]); no newline. The mount serves it as the unlisted `<name>.buckets`.
fn write_buckets(out: &mut String, d: &Descriptor, words: &[u64]) {
    if !d.kind.is_histogram() {
        let _ = write!(out, "{}", value::number(d, words));
        return;
    }
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{w}");
    }
}

/// A value file's contents and a newline: the value's one number ([`value::number`]),
/// or for `<name>.buckets` a histogram's buckets.
pub(crate) fn value_text(source: &Source, name: &str, buckets: bool) -> Result<Vec<u8>, i32> {
    let v = source.get(name).map_err(|e| errno(&e))?;
    let mut text = String::new();
    if buckets {
        write_buckets(&mut text, v.descriptor(), v.words());
    } else {
        // Writing into a String cannot fail.
        let _ = write!(text, "{}", value::number(v.descriptor(), v.words()));
    }
    text.push('\n');
    Ok(text.into_bytes())
}

/// Writing a value file: `0` or `0\n` clears it; anything else is `EINVAL` and changes
/// nothing.
pub(crate) fn value_write(source: &Source, name: &str, data: &[u8]) -> Result<(), i32> {
    if !is_clear_request(data) {
        return Err(libc::EINVAL);
    }
    source.clear(name).map_err(|e| errno(&e))
}

/// An open bulk file: its view (fixed at open, or at the last selection written) and the
/// data block of the last read. The schema part of the blob is the view's shape's,
/// shared with every other open of the same shape (`docs/FILES.md#memory`).
pub(crate) struct BulkFile {
    source: Source,
    scope: Scope,
    view: BulkView,
    /// The data block of the last read (empty before the first).
    data: Vec<u8>,
    /// Whether `data` was read at least once.
    read: bool,
    /// A read that spans the schema part and the data block, put together.
    joined: Vec<u8>,
}

fn view_errno(e: &ViewError) -> i32 {
    match e {
        ViewError::Selection(_) => libc::EINVAL,
        _ => libc::EIO,
    }
}

impl BulkFile {
    /// An open of `source`'s bulk file of `scope`, reading through `shape` (every value).
    pub(crate) fn open(source: Source, scope: Scope, shape: Arc<BulkShape>) -> Self {
        BulkFile {
            source,
            scope,
            view: BulkView::of(shape),
            data: Vec::new(),
            read: false,
            joined: Vec::new(),
        }
    }

    /// Whether the tree below the file's source still has the shape its layout was made
    /// for; `poll` reports `POLLPRI` once it has not (`docs/FILES.md#noticing-changes`).
    pub(crate) fn is_current(&self) -> bool {
        self.view.is_current()
    }

    /// A read at `offset`: at offset 0 the values are read afresh; a read that starts in
    /// the data block re-reads them; any other read continues the blob of the last one.
    /// Past the end: nothing.
    pub(crate) fn read(&mut self, offset: u64, size: u32) -> &[u8] {
        let schema = self.view.shape().layout().schema();
        let data_offset = schema.len() as u64;
        if offset == 0 || offset >= data_offset || !self.read {
            self.view.encode_data_block(&mut self.data);
            self.read = true;
        }
        let schema = self.view.shape().layout().schema();
        let total = schema.len() + self.data.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
        let end = start.saturating_add(size as usize).min(total);
        let cut = schema.len();
        if end <= cut {
            &schema[start..end]
        } else if start >= cut {
            &self.data[start - cut..end - cut]
        } else {
            self.joined.clear();
            self.joined.extend_from_slice(&schema[start..]);
            self.joined.extend_from_slice(&self.data[..end - cut]);
            &self.joined
        }
    }

    /// Writing a selection: the stats to keep (patterns, see `Selection`); an empty write
    /// selects everything again. A bad selection is `EINVAL` and changes nothing. A
    /// selected view is this open's own (its shape is not shared).
    pub(crate) fn select(&mut self, data: &[u8]) -> Result<(), i32> {
        let sel = Selection::parse_bytes(data).map_err(|_| libc::EINVAL)?;
        self.view = BulkView::new(&self.source, self.scope, &sel).map_err(|e| view_errno(&e))?;
        self.data.clear();
        self.read = false;
        Ok(())
    }
}

/// The catalogue file's text: every stat the binary can produce
/// ([`catalogue::write`](statsfs_text::catalogue::write)).
pub(crate) fn catalogue() -> Vec<u8> {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = statsfs_text::catalogue::write(&mut text);
    text.into_bytes()
}

/// The `.metrics` (or `.openmetrics`) file's text: the mounted roots (the process-global
/// sources among them) in the Prometheus text format or OpenMetrics, by the encoder HTTP
/// `/metrics` uses, so the two are the same bytes for the same tree (`docs/FILES.md`).
pub(crate) fn metrics(roots: &[Source], format: statsfs_text::openmetrics::Format) -> Vec<u8> {
    statsfs_text::openmetrics::Encoder::new()
        .encode(roots, format)
        .to_vec()
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
