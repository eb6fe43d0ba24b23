//! The `Accept` and `Accept-Encoding` parsers on arbitrary text (what it checks:
//! `fuzz/negotiate_check.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../negotiate_check.rs"]
mod negotiate_check;

fuzz_target!(|data: &[u8]| negotiate_check::check(data));
