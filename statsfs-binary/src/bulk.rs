//! Bulk views: a source (or a whole subtree) encoded in the binary layout, with a fixed
//! schema and a data block refreshed on demand.
//!
//! A [`BulkView`] fixes, when it is made, which values it holds and where: the id string
//! is the source's path, each descriptor is one visible value, in walk order. Afterwards
//! [`BulkView::refresh`] re-reads every value into the data block; descriptor order and
//! offsets never change for the life of the view, so a reader parses the schema once and
//! then only re-reads the data block.
//!
//! # Names
//!
//! * [`Scope::Source`]: the source's own values, named as in its directory (`exits`).
//! * [`Scope::Subtree`]: the source and every visible descendant, each value named by its
//!   path relative to the source (`exits`, `vcpu0/exits`, `vcpu0/kernel/halt_exits`).
//!
//! # Consistency
//!
//! All values of one source in one refresh come from one pass over that source (one locked pass,
//! [`ReadPlan::read`]). Different sources of a subtree are read one after the
//! other: a subtree refresh is not an atomic snapshot of the whole subtree, and an
//! aggregate may be read a moment before or after the values it folds.
//!
//! Sources added after the view was made are not in it, and a removed source keeps
//! reporting its values (the view holds it); make a new view (re-open the bulk file) to
//! see the new shape. [`BulkView::is_current`] tells whether the tree changed.

use std::sync::Arc;

use crate::{Layout, LayoutError, Selection, SelectionError, StatDesc};
use statsfs_core::tree::{PlanOptions, ReadPlan, Scope, Source};

/// Why a view could not be made; the cause is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The selection is malformed or selects nothing.
    #[error("the selection cannot be used")]
    Selection(#[source] SelectionError),
    /// The values do not fit the binary layout (a name too long, too many values).
    #[error("the values do not fit the binary layout")]
    Layout(#[source] LayoutError),
}

/// What every view of the same source, scope and selection can share: the plan that
/// reads the values and the layout that describes them (the encoded schema part of the
/// blob). It holds each value's description once, in the layout (the plan keeps only
/// what reading needs): about the size of the blob's schema part, plus a few words a
/// value and a few pointers a source (`docs/FILES.md#memory`).
pub struct BulkShape {
    plan: ReadPlan,
    layout: Layout,
}

impl std::fmt::Debug for BulkShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkShape")
            .field("values", &self.layout.num_desc())
            .field("len", &self.layout.total_len())
            .finish()
    }
}

impl BulkShape {
    /// The shape of `source` (or its subtree) with the visible values `selection`
    /// selects, in plan order (see [`ReadPlan::new`]).
    pub fn new(
        source: &Source,
        scope: Scope,
        selection: &Selection,
    ) -> Result<BulkShape, ViewError> {
        let options = PlanOptions {
            scope,
            hidden: false,
        };
        let mut plan = ReadPlan::new(source, options, |name| selection.matches(name));
        if plan.values().is_empty() && !selection.is_all() {
            return Err(ViewError::Selection(SelectionError::NoMatch {
                selection: selection.to_string(),
            }));
        }
        // The names move into the descriptors, and from there into the layout: the plan
        // keeps no second copy.
        let descs: Vec<StatDesc> = plan
            .take_values()
            .into_iter()
            .map(|v| StatDesc::of(v.name, &v.descriptor))
            .collect();
        let layout = Layout::new(&source.path(), &descs).map_err(ViewError::Layout)?;
        // The layout packs values one after another, as the plan does: the plan's words
        // are the data block's.
        debug_assert_eq!(layout.data_words(), plan.words());
        Ok(BulkShape { plan, layout })
    }

    /// The plan that reads the values (its [`values`](ReadPlan::values) are empty: they
    /// are described by the layout).
    pub fn plan(&self) -> &ReadPlan {
        &self.plan
    }

    /// The layout: offsets, sizes, the encoded schema part.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether no source of the subtree was added, removed, hidden, or changed its set of
    /// values since the shape was made (if not, a new shape may differ).
    pub fn is_current(&self) -> bool {
        self.plan.is_current()
    }
}

/// A source or subtree in the binary layout.
///
/// ```
/// use statsfs_binary::{Blob, Selection};
/// use statsfs_binary::BulkView;
/// use statsfs_core::Scope;
/// # use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// # let schema = Schema::new_runtime("s", vec![
/// #     Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
/// #     Descriptor::new("temp", ValueType::I32, Kind::Instant).with_offset(8),
/// # ]).unwrap();
/// let vm = Source::new("vm")?;
/// # use std::sync::Arc;
/// # vm.add(ValueGroup::block(schema, Arc::new(|o: &mut [u64]| { o[0] = 7; o[1] = -2i64 as u64; Ok(()) })))?;
/// let mut view = BulkView::new(&vm, Scope::Source, &Selection::all()).unwrap();
/// let mut blob = Vec::new();
/// view.encode(&mut blob);
/// let decoded = Blob::decode(&blob).unwrap();
/// assert_eq!(decoded.id(), "vm");
/// assert_eq!(decoded.value("exits"), Some(7));
/// assert_eq!(decoded.stat("temp").unwrap().value_i64(), -2);
/// # Ok::<(), statsfs_core::Error>(())
/// ```
pub struct BulkView {
    shape: Arc<BulkShape>,
    words: Vec<u64>,
}

impl BulkView {
    /// A view of `source` (or its subtree) holding the visible values `selection`
    /// selects, in plan order (see [`ReadPlan::new`]).
    pub fn new(
        source: &Source,
        scope: Scope,
        selection: &Selection,
    ) -> Result<BulkView, ViewError> {
        Ok(BulkView::of(Arc::new(BulkShape::new(
            source, scope, selection,
        )?)))
    }

    /// A view of a shape another view may share (each has its own data block).
    pub fn of(shape: Arc<BulkShape>) -> BulkView {
        let words = vec![0; shape.plan.words()];
        BulkView { shape, words }
    }

    /// The shape: what views of the same source, scope and selection can share.
    pub fn shape(&self) -> &Arc<BulkShape> {
        &self.shape
    }

    /// The read plan behind the view (its values are described by the layout).
    pub fn plan(&self) -> &ReadPlan {
        &self.shape.plan
    }

    /// The layout: offsets, sizes, the encoded schema part.
    pub fn layout(&self) -> &Layout {
        &self.shape.layout
    }

    /// How many values the view holds.
    pub fn len(&self) -> usize {
        self.shape.layout.num_desc()
    }

    /// Whether the view holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no source of the view's subtree was added, removed, hidden, or changed its
    /// set of values since the view was made (if not, a new view may have another
    /// schema).
    pub fn is_current(&self) -> bool {
        self.shape.is_current()
    }

    /// Re-reads every value into the data block and returns its words: one pass under
    /// one read lock per source, each value read straight into its place.
    pub fn refresh(&mut self) -> &[u64] {
        self.shape.plan.read(&mut self.words);
        &self.words
    }

    /// Refreshes and writes the whole blob (schema and data) into `out`, replacing its
    /// contents.
    pub fn encode(&mut self, out: &mut Vec<u8>) {
        self.refresh();
        // The layout sized the data block for exactly these words.
        let _ = self.shape.layout.encode_into(&self.words, out);
    }

    /// Refreshes and writes only the data block into `blob`, a buffer previously filled
    /// by [`encode`](Self::encode).
    pub fn encode_data(&mut self, blob: &mut [u8]) {
        self.refresh();
        let _ = self.shape.layout.write_data(blob, &self.words);
    }

    /// Refreshes and writes the data block alone into `data` (replacing its contents):
    /// the bytes from [`Layout::data_offset`] to the end of the blob. With the schema part
    /// ([`Layout::schema`], shared by every view of the shape) they make the whole blob.
    pub fn encode_data_block(&mut self, data: &mut Vec<u8>) {
        self.refresh();
        data.clear();
        data.resize(self.words.len() * 8, 0);
        crate::encode::write_words(data, &self.words);
    }
}
