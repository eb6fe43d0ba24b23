//! Regions under attack (`docs/REGION.md#what-a-region-survives`): a file cut short under
//! its writer and readers, a full file system, symbolic links in the path, a file
//! swapped in at the region's name, temporaries and regions of dead writers, and a
//! writer that dies while readers watch.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs_core::cell::Counter;
use statsfs_core::{Source, ValueGroup};
use statsfs_derive::Stats;
use statsfs_region::{InRegion, Region, RegionError, RegionOptions, RegionReader};

#[derive(Stats, Default)]
#[stats(crate = statsfs_core, name = "conn")]
struct ConnStat {
    /// Requests served
    requests: Counter,
    /// Bytes sent
    #[stat(unit = bytes)]
    sent: Counter,
}

/// A region at `path` publishing `svc/c0` with one struct, 5 requests.
fn publish(path: &Path) -> (Region, Source, Arc<InRegion<ConnStat>>) {
    let region = Region::create(path, RegionOptions::default().with_size(1 << 20)).unwrap();
    let root = Source::new("svc").unwrap();
    let stats = region.alloc(ConnStat::default()).unwrap();
    stats.requests.add(5);
    let c0 = Source::new("c0").unwrap();
    c0.add(ValueGroup::placed(stats.clone())).unwrap();
    root.add_subordinate(&c0).unwrap();
    region.publish(std::slice::from_ref(&root));
    (region, root, stats)
}

/// `truncate -s 8192` (and then 0) of a live region: the writer goes on counting, and its
/// reader gets an error; neither is killed by SIGBUS.
#[test]
fn a_file_cut_short_kills_neither_its_writer_nor_its_readers() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("r.region");
    let (region, _root, stats) = publish(&path);
    let mut reader = RegionReader::open(&path).unwrap();
    let mut values = Vec::new();
    reader.refresh(&mut values).unwrap();
    assert!(values.contains(&5));
    for len in [8192, 0] {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        // The writer touches its struct, past the file's new end.
        stats.requests.add(1);
        stats.sent.add(100);
        assert!(region.lost(), "the writer's mapping was replaced");
        match reader.refresh(&mut values) {
            Err(RegionError::Truncated { path: p }) => assert_eq!(p, path),
            other => panic!("cut to {len}: {other:?}"),
        }
    }
    // The writer still works on its own memory, and publishes nothing harmful.
    let c1 = Source::new("c1").unwrap();
    c1.add(ValueGroup::placed(
        region.alloc(ConnStat::default()).unwrap(),
    ))
    .unwrap();
    _root.add_subordinate(&c1).unwrap();
    stats.requests.inc_local();
    // A new reader of the cut file is refused in words.
    let e = RegionReader::open(&path).unwrap_err();
    assert!(e.to_string().contains("not a valid statsfs region"), "{e}");
}

/// On a full tmpfs, creating a region is `NoSpace` at once, and nothing is left behind:
/// the next start (with room) succeeds.
#[test]
fn a_full_file_system_is_an_error_at_create_and_leaves_nothing() {
    const TEST: &str = "a_full_file_system_is_an_error_at_create_and_leaves_nothing";
    if statsfs_testkit::euid() != Some(0) {
        statsfs_testkit::skip(TEST, "mounting a small tmpfs needs root");
        return;
    }
    let dir = tempfile::TempDir::new().unwrap();
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "statsfs-test",
            dir.path().to_str().unwrap(),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        statsfs_testkit::skip(TEST, "cannot mount a tmpfs here");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());
    let path = dir.path().join("r.region");
    let e = Region::create(&path, RegionOptions::default().with_size(4 << 20)).unwrap_err();
    assert!(
        matches!(e, RegionError::NoSpace { size, .. } if size == 4 << 20),
        "{e:?}"
    );
    assert!(e.to_string().contains("no room"), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let r = Region::create(&path, RegionOptions::default().with_size(512 << 10)).unwrap();
    let s = r.alloc(ConnStat::default()).unwrap();
    s.requests.add(1);
    assert!(!r.lost());
}

/// A symbolic link anywhere in the path is refused; the file is removed only while its
/// name still names the file made, in the directory it was made in.
#[test]
fn no_symlink_is_followed_and_only_the_file_made_is_removed() {
    let dir = tempfile::TempDir::new().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
    for through in ["link/r.region", "link/../real/r.region"] {
        let e = Region::create(dir.path().join(through), RegionOptions::default()).unwrap_err();
        match &e {
            RegionError::Symlink { link, .. } => assert!(link.ends_with("link"), "{e}"),
            other => panic!("{through}: {other:?}"),
        }
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);

    // The directory re-pointed after the region was made: removal stays where it was.
    let a = dir.path().join("a");
    std::fs::create_dir(&a).unwrap();
    let (region, _root, _stats) = publish(&a.join("r.region"));
    std::fs::rename(&a, dir.path().join("b")).unwrap();
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("r.region"), b"not yours").unwrap();
    assert!(region.remove().unwrap(), "b/r.region is the file made");
    assert!(!dir.path().join("b/r.region").exists());
    assert_eq!(std::fs::read(a.join("r.region")).unwrap(), b"not yours");

    // Another file swapped in at the name: left alone.
    let c = dir.path().join("c");
    std::fs::create_dir(&c).unwrap();
    let (region, _root, _stats) = publish(&c.join("r.region"));
    std::fs::rename(c.join("r.region"), c.join("moved")).unwrap();
    std::fs::write(c.join("r.region"), b"someone else's").unwrap();
    assert!(!region.remove().unwrap());
    assert_eq!(
        std::fs::read(c.join("r.region")).unwrap(),
        b"someone else's"
    );
    assert!(c.join("moved").exists());
}

/// A region whose writer is gone is replaced by the next writer; one whose writer runs is
/// not; a temporary a dead writer left is removed.
#[test]
fn stale_files_of_dead_writers_are_replaced_live_ones_are_not() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("r.region");
    let (live, root, stats) = publish(&path);
    let e = Region::create(&path, RegionOptions::default()).unwrap_err();
    assert!(matches!(e, RegionError::Exists { .. }), "{e:?}");
    drop((live, root, stats));
    // The writer is gone (its mapping with it): the file stays, stale, and is replaced.
    assert!(path.exists());
    let (again, _root, _stats) = publish(&path);
    let mut reader = RegionReader::open(&path).unwrap();
    let mut values = Vec::new();
    reader.refresh(&mut values).unwrap();
    assert!(!reader.check_writer());
    drop(again);

    // A file of this user that is no region (a mistaken path): left alone.
    let data = dir.path().join("data.db");
    std::fs::write(&data, b"precious, and not a region").unwrap();
    let e = Region::create(&data, RegionOptions::default()).unwrap_err();
    assert!(matches!(e, RegionError::Exists { .. }), "{e:?}");
    assert_eq!(std::fs::read(&data).unwrap(), b"precious, and not a region");

    // Not this user's kind of file: a directory, a FIFO are left alone.
    let other = dir.path().join("fifo.region");
    assert!(Command::new("mkfifo")
        .arg(&other)
        .status()
        .unwrap()
        .success());
    let e = Region::create(&other, RegionOptions::default()).unwrap_err();
    assert!(matches!(e, RegionError::Exists { .. }), "{e:?}");

    // A temporary of a writer that died while making its region.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let tmp = dir.path().join(format!("t.region.{dead}.tmp"));
    std::fs::write(&tmp, b"half made").unwrap();
    let _t = Region::create(dir.path().join("t.region"), RegionOptions::default()).unwrap();
    assert!(!tmp.exists(), "the dead writer's temporary is gone");
}

const WRITER_CHILD: &str = "STATSFS_REGION_WRITER_CHILD";

/// Not a test of its own: with `STATSFS_REGION_WRITER_CHILD=<path>`, makes a region there,
/// says `READY` on stdout and sleeps until killed.
#[test]
fn writer_child_entry() {
    let Some(path) = std::env::var_os(WRITER_CHILD) else {
        return;
    };
    let (_region, _root, _stats) = publish(Path::new(&path));
    println!("READY");
    std::thread::sleep(Duration::from_secs(60));
}

/// A reader sees its writer go: killed (SIGKILL, no chance to clean up) or dropping the
/// region, at its next check.
#[test]
fn a_reader_sees_its_writer_go() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("r.region");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::writer_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_CHILD, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "the writer never made its region"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut reader = RegionReader::open(&path).unwrap();
    let mut values = Vec::new();
    reader.refresh(&mut values).unwrap();
    assert!(!reader.check_writer());
    child.kill().unwrap();
    child.wait().unwrap();
    reader.refresh(&mut values).unwrap();
    assert!(reader.check_writer(), "a killed writer");
    assert!(values.contains(&5), "its last values stay readable");

    // The same writer in this process, dropped.
    std::fs::remove_file(&path).unwrap();
    let (region, root, stats) = publish(&path);
    let mut reader = RegionReader::open(&path).unwrap();
    reader.refresh(&mut values).unwrap();
    assert!(!reader.check_writer());
    drop((region, root, stats));
    assert!(reader.check_writer(), "a dropped region");
}

/// A struct with more than stat cells (a skipped field, which all-zero bytes may not be a
/// valid value of) is refused: the guard may zero a region's memory.
#[test]
fn only_structs_of_stat_cells_are_placed() {
    #[derive(Stats, Default)]
    #[stats(crate = statsfs_core)]
    struct WithName {
        /// Requests
        requests: Counter,
        #[stat(skip)]
        name: String,
    }
    let dir = tempfile::TempDir::new().unwrap();
    let region = Region::create(dir.path().join("r.region"), RegionOptions::default()).unwrap();
    let named = WithName {
        name: "a connection".to_owned(),
        ..Default::default()
    };
    assert_eq!(named.name, "a connection");
    let e = region.alloc(named).unwrap_err();
    assert!(e.to_string().contains("not stat cells only"), "{e}");
    assert!(region.alloc(ConnStat::default()).is_ok());
}

const SIGNALLED_CHILD: &str = "STATSFS_REGION_SIGNALLED_CHILD";

/// Not a test of its own: with `STATSFS_REGION_SIGNALLED_CHILD=<path>`, maps a region (so
/// the guard is installed) and has SIGBUS sent to itself twice. Without the guard the
/// first goes to the handler Rust's runtime installs (which sets the default action back
/// and returns) and the second kills: the same with it.
#[test]
fn signalled_child_entry() {
    let Some(path) = std::env::var_os(SIGNALLED_CHILD) else {
        return;
    };
    let (_region, _root, _stats) = publish(Path::new(&path));
    let _reader = RegionReader::open(&path).unwrap();
    for _ in 0..2 {
        Command::new("kill")
            .args(["-BUS", &std::process::id().to_string()])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("SURVIVED");
}

/// The guard takes only faults in its mappings: SIGBUS sent by another process goes on to
/// the handler that was there before, and kills as without the guard.
#[test]
fn a_sigbus_sent_by_another_process_is_not_swallowed() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::TempDir::new().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hostile::signalled_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SIGNALLED_CHILD, dir.path().join("r.region"))
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("SURVIVED"));
}
