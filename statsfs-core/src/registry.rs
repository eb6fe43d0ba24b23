//! What the binary declares, collected at link time with `inventory`: every derived
//! schema (the catalogue of every stat the binary can produce, before any instance
//! exists) and the process-global statistics (`#[statsfs::global]` statics), which every
//! mounted or served tree shows beside its own roots.

use std::sync::OnceLock;

use crate::schema::Schema;
use crate::tree::{Source, ValueGroup};

/// One derived schema's entry in the link-time registry; `#[derive(Stats)]` submits one
/// per struct.
#[derive(Debug)]
pub struct Registration(pub &'static Schema);

inventory::collect!(Registration);

/// Every schema derived in this binary (all linked crates), ordered by Rust type path,
/// then name: the same order on every run.
///
/// ```
/// for schema in statsfs_core::registry::schemas() {
///     println!("{} ({} stats)", schema.type_name(), schema.descriptors().len());
/// }
/// ```
pub fn schemas() -> Vec<&'static Schema> {
    let mut all: Vec<&'static Schema> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.sort_by(|a, b| (a.type_name(), a.name()).cmp(&(b.type_name(), b.name())));
    all.dedup_by(|a, b| core::ptr::eq(*a, *b));
    all
}

/// A process-global statistics struct, registered at link time by
/// `#[statsfs::global]` on a `static`.
pub struct Global {
    name: &'static str,
    group: fn() -> ValueGroup,
}

impl Global {
    /// A global named `name` (a file name) whose values `group` binds.
    pub const fn new(name: &'static str, group: fn() -> ValueGroup) -> Self {
        Global { name, group }
    }
}

inventory::collect!(Global);

/// The process-global sources: one per name registered with `#[statsfs::global]` (the
/// groups of globals that share a name go into one source), ordered by name, built once.
/// The mount and the HTTP endpoint show them beside the roots they are given.
pub fn globals() -> &'static [Source] {
    static GLOBALS: OnceLock<Vec<Source>> = OnceLock::new();
    GLOBALS.get_or_init(|| {
        let mut all: Vec<&Global> = inventory::iter::<Global>.into_iter().collect();
        all.sort_by_key(|g| g.name);
        let mut sources: Vec<Source> = Vec::new();
        for g in all {
            let source = match sources.last() {
                Some(s) if s.name() == g.name => s.clone(),
                _ => match Source::new(g.name) {
                    Ok(s) => {
                        sources.push(s.clone());
                        s
                    }
                    // The attribute checks the name at compile time.
                    Err(_) => continue,
                },
            };
            // The same static registered twice is one group.
            let _ = source.add((g.group)());
        }
        sources
    })
}

/// The roots a view shows: `roots`, then every [`globals`] source whose name no root
/// has.
pub fn with_globals(roots: &[Source]) -> Vec<Source> {
    let mut all = roots.to_vec();
    for g in globals() {
        if !all.iter().any(|r| r.name() == g.name()) {
            all.push(g.clone());
        }
    }
    all
}
