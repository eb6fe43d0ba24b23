//! A schema derived in a crate of its own, for `tests/tree.rs`: the schema's identity,
//! and so aggregation, must be the same wherever `Shared::SCHEMA` is named.
#![deny(missing_docs)]

use statsfs::cell::Counter;
use statsfs::{Schema, Stats, ValueGroup};

/// Derived here, used from the facade's tests.
#[derive(Stats, Default)]
#[stats(name = "shared")]
pub struct Shared {
    /// Events
    pub events: Counter,
}

/// `Shared::SCHEMA` as this crate sees it.
pub fn schema_seen_here() -> &'static Schema {
    <Shared as Stats>::SCHEMA
}

/// Aggregates of `Shared`, made in this crate.
pub fn aggregates_made_here() -> ValueGroup {
    ValueGroup::aggregates::<Shared>()
}
