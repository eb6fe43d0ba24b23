//! # statsfs-text
//!
//! The text formats of a statsfs tree that more than one view speaks, each an encoder and
//! nothing more (no I/O, no server, no file system), so that the mount, the HTTP endpoint
//! and the `statsfs` tool write and read exactly the same bytes:
//!
//! * [`openmetrics`]: the Prometheus text format and OpenMetrics, what `/metrics` serves
//!   and what `statsfs dump --format prometheus` prints (`docs/OPENMETRICS.md`);
//! * [`catalogue`]: every stat the binary declares, one line each, what the mount's
//!   `.schema` and HTTP's `/schema` serve and the tool reads back
//!   (`docs/MODEL.md#catalogue`).
//!
//! It builds only on the core's read doors ([`statsfs_core::walk`] and the registry).
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod catalogue;
pub mod openmetrics;
