//! Every derived schema in the binary, collected at link time with `inventory`.

use crate::schema::Schema;

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
