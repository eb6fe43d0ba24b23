//! Replays the fuzzer's corpus (`fuzz/corpus/decode/`) and its seeds (`fuzz/seeds/`)
//! through the binary reader: no input may panic it, and every seed (the kernel's real
//! VM and vCPU blobs, statsfs blobs of every kind) must decode.
//!
//! `STATSFS_WRITE_SEEDS=1 cargo test -p statsfs-binary --test binary fuzz_corpus` (re)writes the
//! synthetic seeds.

use std::fs;
use std::path::PathBuf;

use statsfs_binary::{Blob, BlobSchema, Layout, StatDesc};
use statsfs_core::{Base, Kind, Scale, Unit};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode")
}

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let every = [
        StatDesc::new("count", Kind::Cumulative, Unit::None, Scale::ONE, 1),
        StatDesc::new(
            "pages",
            Kind::Instant,
            Unit::Bytes,
            Scale {
                base: Base::Two,
                exponent: 12,
            },
            1,
        ),
        StatDesc::new("max_depth", Kind::Peak, Unit::None, Scale::ONE, 1),
        StatDesc::new("wait_ns", Kind::Cumulative, Unit::Seconds, Scale::NANO, 1),
        StatDesc::new("cycles", Kind::Cumulative, Unit::Cycles, Scale::ONE, 1),
        StatDesc::new("blocked", Kind::Instant, Unit::Boolean, Scale::ONE, 1),
        StatDesc::new(
            "sizes",
            Kind::LinearHistogram { bucket_size: 512 },
            Unit::Bytes,
            Scale::ONE,
            8,
        ),
        StatDesc::new(
            "latency",
            Kind::LogHistogram,
            Unit::Seconds,
            Scale::NANO,
            32,
        ),
    ];
    let words: Vec<u64> = (0..46u64)
        .map(|i| if i == 2 { -5i64 as u64 } else { i * 3 })
        .collect();
    let long = "n".repeat(100);
    let long_entries = [StatDesc::counter(&long)];
    vec![
        (
            "statsfs-every-kind.bin",
            Layout::new("vm/vcpu0", &every)
                .unwrap()
                .encode(&words)
                .unwrap(),
        ),
        (
            "statsfs-empty.bin",
            Layout::new("empty", &[]).unwrap().encode(&[]).unwrap(),
        ),
        (
            "statsfs-long-name.bin",
            Layout::new("x", &long_entries)
                .unwrap()
                .encode(&[7])
                .unwrap(),
        ),
    ]
}

#[test]
fn every_seed_decodes() {
    if std::env::var_os("STATSFS_WRITE_SEEDS").is_some() {
        for (name, blob) in seeds() {
            fs::write(seed_dir().join(name), blob).unwrap();
        }
    }
    let mut n = 0;
    for entry in fs::read_dir(seed_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let blob = Blob::decode(&fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("seed {name} must decode: {e}"));
        if name.starts_with("kernel-vcpu") {
            assert!(blob.value("exits").is_some());
            assert_eq!(blob.values("halt_wait_hist").map(<[u64]>::len), Some(32));
        }
        n += 1;
    }
    assert!(
        n >= 5,
        "seeds are missing: {n} files in {}",
        seed_dir().display()
    );
}

#[test]
fn every_corpus_input_decodes_or_is_refused_without_panic() {
    let mut n = 0;
    for entry in fs::read_dir(corpus()).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        let _ = Blob::decode(&bytes);
        let _ = BlobSchema::parse(&bytes);
        n += 1;
    }
    assert!(
        n >= 100,
        "the corpus is missing: {n} files in {}",
        corpus().display()
    );
}

#[path = "../../fuzz/select_check.rs"]
mod select_check;

/// The selection fuzzer's corpus (`fuzz/corpus/select/`), replayed through the checks
/// the fuzzer makes.
#[test]
fn every_selection_corpus_input_passes_the_fuzzers_checks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/select");
    statsfs_testkit::replay_corpus(&dir, 5, select_check::check);
}
