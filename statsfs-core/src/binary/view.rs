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
//! All values of one source in one refresh come from one pass over that source (one
//! [`Source::for_each_value`]). Different sources of a subtree are read one after the
//! other: a subtree refresh is not an atomic snapshot of the whole subtree, and an
//! aggregate may be read a moment before or after the values it folds.
//!
//! Sources added after the view was made are not in it, and a removed source keeps
//! reporting its values (the view holds it); make a new view (re-open the bulk file) to
//! see the new shape. [`BulkView::is_current`] tells whether the tree changed.

use std::fmt;

use crate::source::{Slot, Source};
use crate::walk::{walk, Place, Visitor, WalkOptions};
use crate::ValueRef;

use super::layout::{Entry, Layout, LayoutError};
use super::select::{Selection, SelectionError};

/// Which values a view covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The source's own values.
    Source,
    /// The source and every visible descendant.
    Subtree,
}

/// Why a view could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum ViewError {
    /// The selection is malformed or selects nothing.
    Selection(SelectionError),
    /// The values do not fit the binary layout (a name too long, too many values).
    Layout(LayoutError),
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewError::Selection(e) => e.fmt(f),
            ViewError::Layout(e) => write!(f, "the values do not fit the binary layout: {e}"),
        }
    }
}

impl std::error::Error for ViewError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ViewError::Selection(e) => Some(e),
            ViewError::Layout(e) => Some(e),
        }
    }
}

/// A source or subtree in the binary layout.
///
/// ```
/// use statsfs_core::binary::{Blob, BulkView, Scope, Selection};
/// # use statsfs_core::{Descriptor, Kind, Schema, Source, ValueGroup, ValueType};
/// # let schema = Schema::new_runtime("s", vec![
/// #     Descriptor::new("exits", ValueType::U64, Kind::Cumulative),
/// #     Descriptor::new("temp", ValueType::I32, Kind::Instant).with_offset(8),
/// # ]).unwrap();
/// let vm = Source::new("vm")?;
/// # vm.add(ValueGroup::block(schema, |o: &mut [u64]| { o[0] = 7; o[1] = -2i64 as u64; Ok(()) }))?;
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
    /// Per source: the source and its slots (group, descriptor, first word in the data
    /// block), in the order `for_each_value` yields them.
    plans: Vec<(Source, Vec<Slot>)>,
    layout: Layout,
    words: Vec<u64>,
    generation: u64,
}

struct Collect<'s> {
    scope: Scope,
    selection: &'s Selection,
    root_len: usize,
    /// Per source: the source and the (group, descriptor) of each selected value.
    plans: Vec<(Source, Vec<(u32, u32)>)>,
    names: Vec<String>,
    descs: Vec<crate::Descriptor>,
}

impl Visitor for Collect<'_> {
    fn enter(&mut self, place: &Place<'_>) -> bool {
        self.plans.push((place.source.clone(), Vec::new()));
        self.scope == Scope::Subtree || place.depth == 0
    }

    fn value(&mut self, place: &Place<'_>, v: &ValueRef<'_>) {
        let rel = &place.path[self.root_len..];
        let name = if rel.is_empty() {
            v.descriptor.name.to_owned()
        } else {
            format!("{}/{}", &rel[1..], v.descriptor.name)
        };
        if self.selection.matches(&name) {
            if let Some((_, slots)) = self.plans.last_mut() {
                slots.push(v.position);
            }
            self.names.push(name);
            self.descs.push(*v.descriptor);
        }
    }
}

impl BulkView {
    /// A view of `source` (or its subtree) holding the values `selection` selects.
    pub fn new(
        source: &Source,
        scope: Scope,
        selection: &Selection,
    ) -> Result<BulkView, ViewError> {
        let generation = crate::source::generation();
        let mut c = Collect {
            scope,
            selection,
            root_len: source.name().len(),
            plans: Vec::new(),
            names: Vec::new(),
            descs: Vec::new(),
        };
        walk(source, WalkOptions::default(), &mut c);
        if c.names.is_empty() && !selection.is_all() {
            return Err(ViewError::Selection(SelectionError::NoMatch {
                selection: selection.to_string(),
            }));
        }
        let layout_entries: Vec<Entry<'_>> = c
            .names
            .iter()
            .zip(&c.descs)
            .map(|(n, d)| Entry::new(n, d.kind, d.unit, d.scale, d.size))
            .collect();
        let layout = Layout::new(&source.path(), &layout_entries).map_err(ViewError::Layout)?;
        let mut entry = 0;
        let plans = c
            .plans
            .into_iter()
            .filter(|(_, slots)| !slots.is_empty())
            .map(|(src, slots)| {
                let slots = slots
                    .into_iter()
                    .map(|(g, d)| {
                        let word = layout.word_index(entry).unwrap_or(0) as u32;
                        entry += 1;
                        (g, d, word)
                    })
                    .collect();
                (src, slots)
            })
            .collect();
        let words = vec![0; layout.data_words()];
        Ok(BulkView {
            plans,
            layout,
            words,
            generation,
        })
    }

    /// The layout: offsets, sizes, the encoded schema part.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// How many values the view holds.
    pub fn len(&self) -> usize {
        self.layout.num_desc()
    }

    /// Whether the view holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no source was added, removed, or changed its values anywhere since the
    /// view was made (if not, a new view may have another schema).
    pub fn is_current(&self) -> bool {
        crate::source::generation() == self.generation
    }

    /// Re-reads every value into the data block and returns its words: one pass under
    /// one read lock per source, each value read straight into its place.
    pub fn refresh(&mut self) -> &[u64] {
        for (source, slots) in &self.plans {
            source.read_slots(slots, &mut self.words);
        }
        &self.words
    }

    /// Refreshes and writes the whole blob (schema and data) into `out`, replacing its
    /// contents.
    pub fn encode(&mut self, out: &mut Vec<u8>) {
        self.refresh();
        // The layout sized the data block for exactly these words.
        let _ = self.layout.encode_into(&self.words, out);
    }

    /// Refreshes and writes only the data block into `blob`, a buffer previously filled
    /// by [`encode`](Self::encode).
    pub fn encode_data(&mut self, blob: &mut [u8]) {
        self.refresh();
        let _ = self.layout.write_data(blob, &self.words);
    }
}
