//! Replays the region fuzzer's corpus (`fuzz/corpus/region/`) through the same checks
//! as the fuzz target (`fuzz/region_check.rs`). Needs the `fuzzing` feature
//! (`--all-features` in CI).

use std::fs;
use std::path::PathBuf;

/// `fuzz/corpus/<corpus>/`.
fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

#[path = "../../fuzz/region_check.rs"]
mod region_check;

/// The region fuzzer's corpus (`fuzz/corpus/region/`) through its checks.
/// `STATSFS_WRITE_SEEDS=1` (re)writes its seeds: layouts of a real tree.
#[test]
fn every_region_corpus_input_keeps_the_rules() {
    use statsfs_region::fuzzing::encode_layout;
    use statsfs_region::{Entry, EntryKind, Location};
    let dir = corpus("region");
    if std::env::var_os("STATSFS_WRITE_SEEDS").is_some() {
        use statsfs_binary::StatDesc;
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
            bytes.extend(encode_layout(&entries[..n]).unwrap());
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
    statsfs_testkit::replay_corpus(&dir, 3, region_check::check);
}
