//! The tree through the public API: sources, groups, aggregates, walks, and concurrent writers and readers.
//!
//! One test binary for the crate: each module is a file beside this one.

mod concurrency;
mod tree;
