//! Replays the header-negotiation fuzzer's corpus (`fuzz/corpus/negotiate/`) through the
//! checks the fuzz target makes (`fuzz/negotiate_check.rs`).

#[path = "../../fuzz/negotiate_check.rs"]
mod negotiate_check;

#[test]
fn every_negotiation_corpus_input_passes_the_fuzzers_checks() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/negotiate");
    statsfs_testkit::replay_corpus(&dir, 5, negotiate_check::check);
}
