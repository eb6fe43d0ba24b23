//! The facade's own promises: the derive as users write it (and its compile-fail cases), and the whole stack under stress (feature `http`).
//!
//! One test binary for the crate: each module is a file beside this one.

use statsfs_testkit as common;

mod derive;
mod dimensions;
#[cfg(feature = "http")]
mod stress;
mod ui;
