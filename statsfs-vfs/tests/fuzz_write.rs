//! Replays the write fuzzer's corpus (`fuzz/corpus/write/`) through the same checks as
//! the fuzz target (`fuzz/write_check.rs`): no input may panic the mount's write and read
//! handling or break its rules. Needs the `fuzzing` feature (`--all-features` in CI).

#[path = "../fuzz/write_check.rs"]
mod write_check;

use std::fs;
use std::path::PathBuf;

/// `fuzz/corpus/<corpus>/`.
fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

/// Runs `check` on every input in `dir`, which must hold at least `min`; a panic names
/// the input.
fn replay(dir: &std::path::Path, min: usize, check: fn(&[u8])) {
    let mut n = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| check(&data));
        assert!(r.is_ok(), "{} broke a rule", path.display());
        n += 1;
    }
    assert!(n >= min, "only {n} inputs in {}", dir.display());
}

#[test]
fn every_corpus_input_keeps_the_rules() {
    replay(&corpus("write"), 20, write_check::check);
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

#[path = "../fuzz/region_check.rs"]
mod region_check;

/// The region fuzzer's corpus (`fuzz/corpus/region/`) through its checks.
/// `STATSFS_WRITE_SEEDS=1` (re)writes its seeds: layouts of a real tree.
#[test]
fn every_region_corpus_input_keeps_the_rules() {
    use statsfs_vfs::fuzzing::encode_region_layout;
    use statsfs_vfs::region::{Entry, EntryKind, Location};
    let dir = corpus("region");
    if std::env::var_os("STATSFS_WRITE_SEEDS").is_some() {
        use statsfs_core::binary::StatDesc;
        use statsfs_core::{Aggregation, Kind, Scale, Unit};
        let stat = |n: &str, size| {
            StatDesc::new(
                n,
                if size > 1 {
                    Kind::LogHistogram
                } else {
                    Kind::Cumulative
                },
                Unit::None,
                Scale::ONE,
                size,
            )
        };
        let loc = |offset, width, words| Location {
            offset,
            width,
            signed: width == 4,
            aggregation: Aggregation::Sum,
            words,
        };
        let entries = [
            Entry {
                kind: EntryKind::Aggregates,
                hidden: false,
                path: "kvm".into(),
                schema: "vcpu".into(),
                labels: vec![],
                stats: vec![stat("exits", 1), stat("lat", 4)],
                locations: vec![loc(0, 8, 1), loc(0, 8, 4)],
            },
            Entry {
                kind: EntryKind::Values,
                hidden: false,
                path: "kvm/vcpu0".into(),
                schema: "vcpu".into(),
                labels: vec![("vcpu".into(), "0".into())],
                stats: vec![stat("exits", 1), stat("lat", 4)],
                locations: vec![loc(8192, 8, 1), loc(8200, 8, 4)],
            },
            Entry {
                kind: EntryKind::Values,
                hidden: true,
                path: "kvm/vcpu1".into(),
                schema: "vcpu".into(),
                labels: vec![],
                stats: vec![stat("drift", 1)],
                locations: vec![loc(8260, 4, 1)],
            },
        ];
        for (name, n) in [("seed-three", 3), ("seed-one", 2), ("seed-empty", 0)] {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&8192u32.to_le_bytes());
            bytes.extend_from_slice(&8192u32.to_le_bytes());
            bytes.extend(encode_region_layout(&entries[..n]).unwrap());
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
    replay(&dir, 3, region_check::check);
}
