//! The shared region end to end: writers, readers in other processes, hostile files, and the layout fuzzer's corpus.
//!
//! One test binary for the crate: each module is a file beside this one.

#[cfg(feature = "fuzzing")]
mod fuzz_corpus;
mod hostile;
mod shared;
