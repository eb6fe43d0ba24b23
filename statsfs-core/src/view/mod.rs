//! Views of the tree, built only on its public doors ([`ReadPlan`](crate::ReadPlan) and
//! [`walk`](crate::walk())).
//!
//! * [`BulkView`]: a source or subtree in the kernel's binary layout, refreshed with one
//!   plan read.
//! * [`Mirror`]: a binary stats file (the kernel's) turned into a runtime schema and a
//!   block source, so its values join the tree.
//! * [`openmetrics`]: the Prometheus text format and OpenMetrics.

mod bulk;
mod mirror;
pub mod openmetrics;

pub use bulk::{BulkView, ViewError};
pub use mirror::{descriptor_of, FileBlock, Mirror, MirrorError};
