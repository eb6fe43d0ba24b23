//! A reader's parser of a shared region's layout on arbitrary bytes (what it checks:
//! `fuzz/region_check.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../region_check.rs"]
mod region_check;

fuzz_target!(|data: &[u8]| region_check::check(data));
