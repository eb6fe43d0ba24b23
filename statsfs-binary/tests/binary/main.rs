//! The binary layout: bulk views of trees, and the decoder and selection fuzzers' corpora.
//!
//! One test binary for the crate: each module is a file beside this one.

mod bulk;
mod fuzz_corpus;
