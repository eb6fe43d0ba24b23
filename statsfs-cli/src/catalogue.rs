//! The `.schema` catalogue of the statsfs mount a path is in
//! (`docs/MODEL.md#catalogue`), read once: what the binary layout does not carry
//! (whether a value is signed, its aggregation, mode and description), by stat name.

use std::collections::HashMap;
use std::path::Path;

use super::open::read_text;
use statsfs_text::catalogue::{parse as parse_catalogue, Entry as CatalogueEntry};

/// The catalogue's entries by stat name; empty outside a statsfs mount.
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalogue(HashMap<String, Vec<CatalogueEntry>>);

impl Catalogue {
    /// The catalogue at the root of the mount `path` is in (found going up from `path`).
    pub fn find(path: &Path) -> Catalogue {
        let mut dir = Some(path);
        while let Some(d) = dir {
            // A regular file only: a FIFO planted as `.schema` is not waited on.
            if let Some(text) = read_text(&d.join(".schema"), usize::MAX) {
                let mut map: HashMap<String, Vec<CatalogueEntry>> = HashMap::new();
                for e in parse_catalogue(&text) {
                    map.entry(e.name.clone()).or_default().push(e);
                }
                return Catalogue(map);
            }
            dir = d.parent();
        }
        Catalogue::default()
    }

    /// The entry for `name` when every schema that has a stat of that name agrees on its
    /// type, aggregation and mode (the first one's description); `None` otherwise.
    pub fn agreed(&self, name: &str) -> Option<&CatalogueEntry> {
        let entries = self.0.get(name)?;
        let first = entries.first()?;
        entries
            .iter()
            .all(|e| (e.ty, &e.aggregation, &e.mode) == (first.ty, &first.aggregation, &first.mode))
            .then_some(first)
    }
}
