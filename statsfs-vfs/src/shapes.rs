//! Bulk files' shapes shared between opens: every open of the same source's `.stats` (or
//! `.tree.stats`), before any selection is written to it, reads through one
//! [`BulkShape`] (the plan and the encoded schema part) while the tree keeps its shape;
//! each open keeps only its own data block (`docs/FILES.md#memory`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use statsfs_binary::{BulkShape, Selection, ViewError};
use statsfs_core::{Scope, Source};

/// The live shapes, by source and scope; held weakly: a shape goes with its last open.
#[derive(Default)]
pub(crate) struct Shapes(Mutex<HashMap<(u64, Scope), Weak<BulkShape>>>);

impl Shapes {
    fn live(&self, source: &Source, scope: Scope) -> Option<Arc<BulkShape>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(source.id(), scope))
            .and_then(Weak::upgrade)
            .filter(|s| s.is_current())
    }

    /// The shape of `source`'s bulk file of `scope` with every value: the one an open
    /// file already reads through, if the tree kept its shape since, else a new one
    /// (made without holding the table's lock: a large subtree takes a while).
    pub(crate) fn get(&self, source: &Source, scope: Scope) -> Result<Arc<BulkShape>, ViewError> {
        if let Some(shape) = self.live(source, scope) {
            return Ok(shape);
        }
        let shape = Arc::new(BulkShape::new(source, scope, &Selection::all())?);
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, w| w.strong_count() > 0);
        map.insert((source.id(), scope), Arc::downgrade(&shape));
        Ok(shape)
    }

    /// The length of that bulk file (for `stat`): from the live shape if there is one,
    /// else from a shape made for the purpose and dropped.
    pub(crate) fn len(&self, source: &Source, scope: Scope) -> u64 {
        match self.live(source, scope) {
            Some(shape) => shape.layout().total_len() as u64,
            None => BulkShape::new(source, scope, &Selection::all())
                .map(|s| s.layout().total_len() as u64)
                .unwrap_or(0),
        }
    }
}
