//! The facade's own promises: the derive as users write it (and its compile-fail cases).
//!
//! One test binary for the crate: each module is a file beside this one. The whole stack
//! under stress is a binary of its own (`tests/stress/`): it measures the process's memory
//! and descriptors, which other tests in the same process would move.

mod derive;
mod dimensions;
mod ui;
