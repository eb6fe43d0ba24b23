//! The binary stats reader on arbitrary bytes: it must never panic, and whatever it
//! accepts must read back the same through a file and through a re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use statsfs_binary::{Blob, BlobSchema, StatDesc, Layout};

fuzz_target!(|data: &[u8]| {
    let Ok(blob) = Blob::decode(data) else {
        // A blob the reader refuses must be refused by the schema parser or be too short
        // for its data block; either way, no panic.
        let _ = BlobSchema::parse(data);
        return;
    };
    // Every stat's words are in the data block.
    for stat in blob.iter() {
        assert_eq!(stat.values.len(), stat.desc.size as usize);
    }
    // Re-encoding what was read gives a blob that reads back the same.
    let entries: Vec<StatDesc> =
        blob.descriptors().iter().map(|d| StatDesc::new(&d.name, d.kind, d.unit, d.scale, d.size)).collect();
    if let Ok(layout) = Layout::new(blob.id(), &entries) {
        let words: Vec<u64> = blob.iter().flat_map(|s| s.values.iter().copied()).collect();
        let again = Blob::decode(&layout.encode(&words).expect("the layout sized the data")).expect("our own blob decodes");
        assert_eq!(again.id(), blob.id());
        for (a, b) in again.iter().zip(blob.iter()) {
            assert_eq!(a.desc.name, b.desc.name);
            assert_eq!(a.values, b.values);
        }
    }
});
