//! Replays the write fuzzer's corpus (`fuzz/corpus/write/`) through the same checks as
//! the fuzz target (`fuzz/write_check.rs`): no input may panic the mount's write and read
//! handling or break its rules. Needs the `fuzzing` feature (`--all-features` in CI).

#[path = "../../fuzz/write_check.rs"]
mod write_check;

use std::path::PathBuf;

/// `fuzz/corpus/<corpus>/`.
fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

#[test]
fn every_corpus_input_keeps_the_rules() {
    statsfs_testkit::replay_corpus(&corpus("write"), 20, write_check::check);
}

#[test]
fn hand_written_steps_keep_the_rules() {
    // Clear an aggregate, refuse a bad write, select, read at an offset, increment.
    let mut steps = vec![0u8, 0, 0, 2, b'0', b'\n'];
    steps.extend([0, 2, 1, 2, b'0', b'0']);
    steps.extend([0, 3, 2, 1, b'0']);
    steps.extend(b"\x01\x00\x00\x0evm/*/exits lat");
    steps.extend([2, 0, 0, 30, 0, 100]);
    steps.extend([3, 1, 200]);
    steps.extend(b"\x01\x01\x00\x05nope*");
    write_check::check(&steps);
}
