//! The FUSE mount end to end: files, bulk files, hostile input, mounting without root, and the write fuzzer's corpus.
//!
//! One test binary for the crate: each module is a file beside this one.

use statsfs_testkit as common;

mod bad_inputs;
#[cfg(feature = "fuzzing")]
mod fuzz_write;
mod unprivileged;
mod vfs;
