//! # statsfs-core
//!
//! Statistics declared once, kept in the user's own structs, organized as a tree of
//! sources with aggregates, and read by views (files, a bulk binary layout, OpenMetrics).
//!
//! Data flows one way:
//!
//! ```text
//! #[derive(Stats)]  ──►  static Schema  ──►  Source tree  ──►  walk  ──►  views
//!   (the derive)          desc, schema       source, group,     walk      value (text),
//!                         cell, registry     aggregate, raw               binary, ...
//! ```
//!
//! * [`desc`]: what one value is ([`Descriptor`]): name, offset, type, kind, unit,
//!   scale, aggregation, mode, description.
//! * [`cell`]: the field types ([`Counter`](cell::Counter), [`Gauge`](cell::Gauge),
//!   [`Peak`](cell::Peak), histograms, ...) with the owner and shared write paths.
//! * [`schema`]: a struct's descriptors ([`Schema`]) and the [`Stats`] trait.
//! * [`registry`]: every derived schema of the binary, collected at link time.
//! * [`Source`]: the tree; [`ValueGroup`]: what a source reads; aggregates fold over
//!   subtrees by schema identity.
//! * [`walk`]: the one interface views use.
//! * [`binary`]: the kernel's KVM binary stats layout: encoder and reader library.
//! * [`openmetrics`]: the Prometheus and OpenMetrics exposition, a view over `walk`.
//!
//! Most users depend on the `statsfs` facade and write `#[derive(statsfs::Stats)]`.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod aggregate;
pub mod binary;
pub mod cell;
pub mod desc;
mod error;
mod group;
pub mod openmetrics;
mod raw;
pub mod registry;
pub mod schema;
mod source;
pub mod value;
mod walk;

pub use desc::{Aggregation, Base, Descriptor, Kind, Scale, Storage, Unit, ValueType};
pub use error::Error;
pub use group::{BlockSource, ValueGroup};
pub use schema::{Schema, SchemaRef, Stats};
pub use source::{Change, Source, Subscription};
pub use value::{Value, ValueRef};
pub use walk::{walk, Place, Visitor, WalkOptions};

/// What `#[derive(Stats)]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::cell::StatField;
    pub use crate::desc::{Aggregation, Base, Descriptor, Kind, Scale, Unit};
    pub use crate::registry::Registration;
    pub use crate::schema::{Schema, SchemaBuilder, Stats};
    pub use core::mem::offset_of;
    pub use inventory;

    /// A descriptor for a field of cell type `T`, with `T`'s default kind.
    pub const fn field<T: StatField>(name: &'static str, offset: usize) -> Descriptor {
        Descriptor::new(name, T::TYPE, T::KIND)
            .with_storage(T::STORAGE, T::SIZE)
            .with_offset(offset)
    }

    /// A descriptor for a field of cell type `T` with the kind the attribute chose;
    /// fails compilation when `T` fixes another kind.
    pub const fn field_of_kind<T: StatField>(
        name: &'static str,
        offset: usize,
        kind: Kind,
    ) -> Descriptor {
        assert!(
            !T::FIXED_KIND || T::KIND.code() == kind.code(),
            "this cell type fixes its kind: Counter is cumulative, Gauge and Flag instant, Peak peak"
        );
        Descriptor::new(name, T::TYPE, kind)
            .with_storage(T::STORAGE, T::SIZE)
            .with_offset(offset)
    }
}
