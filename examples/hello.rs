//! The whole idea in one screen: declare statistics once, build a tree of three sources
//! with an aggregate, mount it, and read it back as files and as one bulk blob.
//!
//! ```text
//! sudo cargo run --example hello            # mounts at /run/statsfs-hello, then unmounts
//! ```
//!
//! It prints what `cat` would show, then what one read of the bulk file returns:
//!
//! ```text
//! /run/statsfs-hello/disks/requests = 7
//! /run/statsfs-hello/disks/sda/requests = 3
//! /run/statsfs-hello/disks/sdb/requests = 4
//! disks/.tree.stats: requests=7 sda/requests=3 sda/bytes=4096 ...
//! ```

use std::sync::Arc;

use statsfs::binary::Blob;
use statsfs::cell::Counter;
use statsfs::{Source, Stats, ValueGroup};

/// 1. The statistics of one disk, declared once: each field is a stat.
#[derive(Stats, Default)]
struct DiskStat {
    /// Requests completed
    requests: Counter,
    /// Bytes transferred
    #[stat(unit = bytes)]
    bytes: Counter,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 2. The tree: `disks` sums every disk below it.
    let disks = Source::new("disks")?;
    disks.add(ValueGroup::aggregates::<DiskStat>())?;
    let mut stats = Vec::new();
    for name in ["sda", "sdb"] {
        let disk = Source::new(name)?;
        let s = Arc::new(DiskStat::default());
        disk.add(s.clone())?;
        disks.add_subordinate(&disk)?;
        stats.push(s);
    }

    // 3. The disks count; the owner path is one plain add, no lock.
    stats[0].requests.add_local(3);
    stats[0].bytes.add_local(4096);
    stats[1].requests.add_local(4);
    stats[1].bytes.add_local(8192);

    // 4. Mount the tree (as root; the mount point is created and removed again).
    let path = std::path::Path::new("/run/statsfs-hello");
    let mount = statsfs::vfs::mount(path, &[disks], Default::default())?;

    // 5. Read it back, as any program would.
    for file in ["disks/requests", "disks/sda/requests", "disks/sdb/requests"] {
        let text = std::fs::read_to_string(path.join(file))?;
        println!("{}/{file} = {}", path.display(), text.trim());
    }
    let blob = Blob::decode(&std::fs::read(path.join("disks/.tree.stats"))?)?;
    let all: Vec<String> = blob
        .iter()
        .map(|s| format!("{}={}", s.desc.name, s.value()))
        .collect();
    println!("disks/.tree.stats: {}", all.join(" "));

    mount.unmount()?;
    Ok(())
}
