//! What the region fuzz target checks of one input, shared with the corpus replay
//! (`statsfs-region/tests/region/fuzz_corpus.rs`): a reader's parser of a shared region's layout
//! block (`docs/REGION.md`) never panics on arbitrary bytes; whatever it accepts has
//! every value inside the data area, aligned for its width, of a valid width, and
//! encodes (when the encoder takes it) back to a block that parses to the same entries.

use statsfs_region::fuzzing::{encode_layout, parse_layout};
use statsfs_region::EntryKind;

/// The data area the parser is told about: the first 8 bytes of the input pick it.
pub fn check(data: &[u8]) {
    let (area, block) = data.split_at(data.len().min(8));
    let mut a = [0u8; 8];
    a[..area.len()].copy_from_slice(area);
    let start = u64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]]));
    let len = u64::from(u32::from_le_bytes([a[4], a[5], a[6], a[7]]));
    let range = start..start + len;
    let Ok(entries) = parse_layout(block, range.clone()) else {
        return;
    };
    for e in &entries {
        assert_eq!(e.stats.len(), e.locations.len());
        for l in &e.locations {
            assert!(matches!(l.width, 1 | 2 | 4 | 8) && l.words >= 1);
            if e.kind == EntryKind::Values {
                let end = l.offset + u64::from(l.width) * u64::from(l.words);
                assert!(
                    l.offset >= range.start && end <= range.end,
                    "{l:?} outside {range:?}"
                );
                assert_eq!(l.offset % u64::from(l.width), 0);
            }
        }
    }
    // A parsed block may hold what the encoder refuses (a path longer than a bulk file's
    // id may be); what it encodes must parse back the same.
    let Ok(again) = encode_layout(&entries) else {
        return;
    };
    assert_eq!(parse_layout(&again, range).expect("parses again"), entries);
}
