//! The selection parser on arbitrary bytes (what it checks: `fuzz/select_check.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../select_check.rs"]
mod select_check;

fuzz_target!(|data: &[u8]| select_check::check(data));
