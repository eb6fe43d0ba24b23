//! The /metrics endpoint end to end: hardening against clients, a real Prometheus server, and the header fuzzer's corpus.
//!
//! One test binary for the crate: each module is a file beside this one.

use statsfs_testkit as common;

mod fuzz_corpus;
mod hardening;
mod prometheus_server;
