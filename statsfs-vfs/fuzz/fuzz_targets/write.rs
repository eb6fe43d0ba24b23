//! The mount's handling of writes (value files and bulk-file selections) and reads on
//! arbitrary input (what it checks: `fuzz/write_check.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../write_check.rs"]
mod write_check;

fuzz_target!(|data: &[u8]| write_check::check(data));
