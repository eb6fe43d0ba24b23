//! What an open bulk file holds in the serving process, measured with a counting global
//! allocator on a tree of 100,000 sources (`docs/FILES.md#memory`): the first open of the
//! root's `.tree.stats` holds about the blob's schema part (the shape, shared), and each
//! further open only its own data block. Prints the figures:
//! `cargo test -p statsfs-vfs --release --test memory -- --nocapture`.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use statsfs::cell::Counter;
use statsfs::vfs::{mount, MountOptions};
use statsfs::{Source, Stats};
use statsfs_testkit::alloc::{live, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A connection's statistics: four counters.
#[derive(Stats, Default)]
struct ConnStat {
    /// Requests served
    requests: Counter,
    /// Responses that were errors
    errors: Counter,
    /// Bytes received
    #[stat(unit = bytes)]
    received: Counter,
    /// Bytes sent
    #[stat(unit = bytes)]
    sent: Counter,
}

const SOURCES: usize = 100_000;

/// Reads the whole file through a small buffer (nothing of it kept); its length.
fn read_all(f: &mut File) -> usize {
    let mut buf = vec![0u8; 128 << 10];
    let mut n = 0;
    loop {
        match f.read(&mut buf).unwrap() {
            0 => return n,
            k => n += k,
        }
    }
}

#[test]
fn open_bulk_files_share_their_shape_and_hold_only_their_data_block() {
    const TEST: &str = "open_bulk_files_share_their_shape_and_hold_only_their_data_block";
    if !statsfs_testkit::can_mount(TEST) {
        return;
    }
    let root = Source::new("svc").unwrap();
    for i in 0..SOURCES {
        let c = Source::new(format!("c{i}")).unwrap();
        let s = Arc::new(ConnStat::default());
        s.requests.add(i as u64);
        c.add(s).unwrap();
        root.add_subordinate(&c).unwrap();
    }
    let dir = tempfile::TempDir::new().unwrap();
    let m = mount(
        dir.path(),
        std::slice::from_ref(&root),
        MountOptions::default(),
    )
    .unwrap();
    let path = m.path().join("svc/.tree.stats");

    // The mount's own buffers are made at its first requests: not the files'.
    let _ = std::fs::metadata(m.path().join("svc")).unwrap();
    let base = live();
    let mut files = vec![File::open(&path).unwrap()];
    let len = read_all(&mut files[0]);
    let one = live() - base;
    for _ in 0..4 {
        let mut f = File::open(&path).unwrap();
        assert_eq!(read_all(&mut f), len);
        files.push(f);
    }
    let five = live() - base;
    let values = 4 * SOURCES;
    // The data block: a word a counter.
    let data = 8 * values;
    let schema = len - data;
    let per_more = (five - one) as usize / 4;
    println!(
        "{SOURCES} sources, {values} values: blob {len} B (schema part {schema} B, data \
         {data} B); the first open holds {one} B ({:.2}x the blob), each further open \
         {per_more} B ({:.2}x the data block); five opens {five} B",
        one as f64 / len as f64,
        per_more as f64 / data as f64,
    );
    // The shape: the schema part, the plan's sources and a few words a value.
    assert!(
        (one as usize) < 2 * len,
        "the first open holds {one} B for a blob of {len} B"
    );
    // Each further open: its words and its data block (and a read's worth of scratch).
    assert!(
        per_more < 3 * data,
        "each further open holds {per_more} B for a data block of {data} B"
    );
    drop(files);
    drop(m);
}
