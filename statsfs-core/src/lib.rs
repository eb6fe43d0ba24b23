//! # statsfs-core
//!
//! Statistics declared once, kept in the user's own structs, organized as a tree of
//! sources with aggregates, and read through two doors. The core knows no view: the
//! files, the binary layout, the text formats, the servers and the tool are crates built
//! on these doors.
//!
//! Data flows one way, and the modules follow it:
//!
//! ```text
//! #[derive(Stats)] ──► static Schema ──► tree ──────────────► read plan / walk ──► views
//!   (the derive)       desc, cell,       tree/: source,       tree/plan, tree/walk   (other
//!                      schema, registry  group, aggregate,                           crates)
//!                                        raw (unsafe)
//! ```
//!
//! * [`desc`]: what one value is ([`Descriptor`]): name, offset, type, kind, unit,
//!   scale, aggregation, whether it may be cleared, description; the codes and rules
//!   every user checks.
//! * [`cell`]: the field types ([`Counter`](cell::Counter), [`Gauge`](cell::Gauge),
//!   [`Peak`](cell::Peak), histograms, ...) with the owner and shared write paths.
//! * [`schema`]: a struct's descriptors ([`Schema`]) and the [`Stats`] trait.
//! * [`registry`]: every derived schema of the binary, collected at link time, and the
//!   process-global statistics.
//! * [`tree`]: [`Source`]s with [`ValueGroup`]s and aggregates, the two doors readers of
//!   values use, [`ReadPlan`] (a fixed set of values re-read into a buffer) and [`walk`],
//!   and the one inspection door for views that show structure,
//!   [`Source::inspect`](tree::Inspect).
//! * [`value`]: a value as a reader sees it, and the one number it reads as.
//!
//! The semantics are written down in the repository's `docs/` (`MODEL.md`, `FILES.md`).
//!
//! Most users depend on the `statsfs` facade and write `#[derive(statsfs::Stats)]`.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod cell;
pub mod desc;
mod error;
pub mod family;
pub mod registry;
pub mod schema;
pub mod tree;
pub mod value;

pub use desc::{Aggregation, Base, Descriptor, Kind, Role, Scale, Storage, Unit, ValueType};
pub use error::{Error, SchemaProblem};
pub use schema::{Component, Schema, SchemaRef, Stats};
pub use tree::{
    walk, BlockSource, Change, GroupInfo, GroupKind, Place, Placed, PlanOptions, PlannedSource,
    PlannedValue, ReadPlan, Scope, Source, Subscription, ValueGroup, Visitor, WalkOptions,
};
pub use value::{Value, ValueRef};

/// What `#[derive(Stats)]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::cell::CellInfo;
    pub use crate::cell::StatField;
    pub use crate::desc::Role;
    pub use crate::desc::{Aggregation, Base, Descriptor, Kind, Scale, Unit};
    pub use crate::family::Family;
    pub use crate::family::{join, joined_len, Label, Parts};
    pub use crate::registry::{Global, Registration};
    pub use crate::schema::{
        check_names, check_other_names, family_len, Component, ComponentsBuilder, FamilyOf, Schema,
        SchemaBuilder, Stats,
    };
    pub use crate::tree::ValueGroup;
    pub use core::mem::offset_of;
    pub use core::mem::size_of;
    pub use inventory;

    /// Whether every descriptor is an inline cell (an atomic or histogram buckets, not a
    /// sharded counter or a block value): part of [`Stats::CELLS_ONLY`].
    pub const fn inline_cells(descriptors: &[Descriptor]) -> bool {
        let mut i = 0;
        while i < descriptors.len() {
            if !matches!(
                descriptors[i].storage,
                crate::desc::Storage::Atomic | crate::desc::Storage::Buckets
            ) {
                return false;
            }
            i += 1;
        }
        true
    }

    /// A descriptor for a field of a cell type (its `StatField::INFO`), with the cell's
    /// default kind.
    pub const fn field(name: &'static str, offset: usize, cell: CellInfo) -> Descriptor {
        Descriptor::new(name, cell.ty, cell.kind)
            .with_storage(cell.storage, cell.size)
            .with_offset(offset)
    }

    /// [`field`], for a type the derive cannot see into (an alias): fails compilation if
    /// it is a histogram that keeps a sum, which the derive would not describe.
    pub const fn field_unseen(name: &'static str, offset: usize, cell: CellInfo) -> Descriptor {
        assert!(
            cell.sum_at.is_none(),
            "this field's histogram keeps a sum (WithSum) that #[derive(Stats)] cannot see through a type alias: write the histogram type in the field"
        );
        field(name, offset, cell)
    }

    /// A descriptor for a field of a cell type with the kind the attribute chose; fails
    /// compilation when the cell fixes another kind.
    pub const fn field_of_kind(
        name: &'static str,
        offset: usize,
        cell: CellInfo,
        kind: Kind,
    ) -> Descriptor {
        assert!(
            !cell.fixed_kind || cell.kind.code() == kind.code(),
            "this cell type fixes its kind: Counter is cumulative, Gauge and Flag instant, Peak peak"
        );
        Descriptor::new(name, cell.ty, kind)
            .with_storage(cell.storage, cell.size)
            .with_offset(offset)
    }
}
