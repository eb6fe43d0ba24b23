//! Inode numbers: stable for as long as a source lives, and the table of the inodes the
//! kernel knows.
//!
//! * the mount's root: 1;
//! * a source's directory: `source.id() << 16` (source ids are never reused);
//! * a value file: the directory's number plus a slot (1 to 0xfffd) given to each name
//!   the first time it is seen in that source, never given to another name;
//!   (a histogram's `<name>.buckets` gets a slot of its own);
//! * the bulk files `.stats` and `.tree.stats`: plus 0xfffe and 0xffff;
//! * the catalogue `.schema` at the mount's root: 2, `.region` (where the tree's
//!   shared region is, when there is one): 3, the exposition `.metrics`: 4 and
//!   `.openmetrics`: 5 (source ids start at 1, so no directory is below 1 << 16).

use std::collections::HashMap;

use statsfs_core::Scope;
use statsfs_core::Source;
use statsfs_text::openmetrics::Format;

/// The mount's root directory.
pub(crate) const ROOT: u64 = 1;
const SLOT_BITS: u32 = 16;
const BULK: u64 = 0xfffe;
const TREE_BULK: u64 = 0xffff;

/// The catalogue file at the mount's root.
pub(crate) const CATALOGUE: u64 = 2;
/// Its name: open it by name; it is not listed.
pub(crate) const CATALOGUE_NAME: &str = ".schema";

/// The file naming the tree's shared region, at the mount's root.
pub(crate) const REGION: u64 = 3;
/// Its name: open it by name; it is not listed.
pub(crate) const REGION_NAME: &str = ".region";

/// The exposition of the mounted tree at the mount's root, as HTTP `/metrics` serves it:
/// the Prometheus text format 0.0.4 and OpenMetrics 1.0.
pub(crate) const METRICS: u64 = 4;
pub(crate) const OPENMETRICS: u64 = 5;
/// Their names: open them by name; they are not listed.
pub(crate) const METRICS_NAME: &str = ".metrics";
pub(crate) const OPENMETRICS_NAME: &str = ".openmetrics";

/// What a histogram's unlisted buckets file adds to its name.
pub(crate) const BUCKETS_SUFFIX: &str = ".buckets";

/// The bulk file names.
pub(crate) const BULK_NAME: &str = ".stats";
pub(crate) const TREE_BULK_NAME: &str = ".tree.stats";

/// What an inode is.
#[derive(Clone)]
pub(crate) enum Node {
    /// The mount's root: lists the registered roots.
    Root,
    /// A source's directory.
    Dir(Source),
    /// A value file (`buckets`: the unlisted `<name>.buckets` of a histogram, read-only).
    Value {
        source: Source,
        name: &'static str,
        clearable: bool,
        buckets: bool,
    },
    /// A bulk file.
    Bulk { source: Source, scope: Scope },
    /// The catalogue of every stat the binary can produce (`.schema`, at the root).
    Catalogue,
    /// The path of the tree's shared region (`.region`, at the root; `docs/REGION.md`).
    Region,
    /// The exposition of the mounted tree (`.metrics`, `.openmetrics`, at the root).
    Metrics(statsfs_text::openmetrics::Format),
}

impl Node {
    pub(crate) fn is_dir(&self) -> bool {
        matches!(self, Node::Root | Node::Dir(_))
    }
}

struct Known {
    node: Node,
    parent: u64,
    nlookup: u64,
}

/// The inodes the kernel holds (by lookup count), and the slots given to names.
#[derive(Default)]
pub(crate) struct Table {
    known: HashMap<u64, Known>,
    slots: HashMap<u64, HashMap<(&'static str, bool), u64>>,
}

pub(crate) fn dir_ino(source: &Source) -> u64 {
    source.id() << SLOT_BITS
}

impl Table {
    /// The number of `node` (giving a value's name a slot on first sight); `None` when a
    /// source has used up its slots.
    pub(crate) fn ino(&mut self, node: &Node) -> Option<u64> {
        Some(match node {
            Node::Root => ROOT,
            Node::Catalogue => CATALOGUE,
            Node::Region => REGION,
            Node::Metrics(Format::Prometheus) => METRICS,
            Node::Metrics(Format::OpenMetrics) => OPENMETRICS,
            Node::Dir(s) => dir_ino(s),
            Node::Bulk { source, scope } => {
                dir_ino(source)
                    | if *scope == Scope::Source {
                        BULK
                    } else {
                        TREE_BULK
                    }
            }
            Node::Value {
                source,
                name,
                buckets,
                ..
            } => {
                let slots = self.slots.entry(source.id()).or_default();
                let next = slots.len() as u64 + 1;
                let slot = *slots.entry((*name, *buckets)).or_insert(next);
                if slot >= BULK {
                    return None;
                }
                dir_ino(source) | slot
            }
        })
    }

    /// Records one kernel lookup of `node` under `parent`; returns its number.
    pub(crate) fn remember(&mut self, parent: u64, node: Node) -> Option<u64> {
        let ino = self.ino(&node)?;
        let k = self.known.entry(ino).or_insert(Known {
            node: node.clone(),
            parent,
            nlookup: 0,
        });
        k.node = node;
        k.nlookup += 1;
        Some(ino)
    }

    /// The kernel dropped `n` references to `ino`. When it forgets the directory of a
    /// source that has left the tree, the slots of that source's names go too (the
    /// kernel forgets a directory only after everything in it): a long-lived mount over
    /// sources that come and go does not grow.
    pub(crate) fn forget(&mut self, ino: u64, n: u64) {
        if let Some(k) = self.known.get_mut(&ino) {
            k.nlookup = k.nlookup.saturating_sub(n);
            if k.nlookup == 0 {
                if let Some(Known {
                    node: Node::Dir(s),
                    parent,
                    ..
                }) = self.known.remove(&ino)
                {
                    // Roots (under the mount's root) have no parent source but stay.
                    if parent != ROOT && s.parent().is_none() {
                        self.slots.remove(&s.id());
                    }
                }
            }
        }
    }

    /// What `ino` is, if the kernel holds it.
    pub(crate) fn node(&self, ino: u64) -> Option<Node> {
        if ino == ROOT {
            return Some(Node::Root);
        }
        if ino == CATALOGUE {
            return Some(Node::Catalogue);
        }
        if ino == REGION {
            return Some(Node::Region);
        }
        if ino == METRICS {
            return Some(Node::Metrics(Format::Prometheus));
        }
        if ino == OPENMETRICS {
            return Some(Node::Metrics(Format::OpenMetrics));
        }
        self.known.get(&ino).map(|k| k.node.clone())
    }

    /// The parent directory of `ino`.
    pub(crate) fn parent(&self, ino: u64) -> u64 {
        self.known.get(&ino).map(|k| k.parent).unwrap_or(ROOT)
    }
}
