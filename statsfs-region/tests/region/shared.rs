//! The shared region (`docs/REGION.md`): a reader sees every value and aggregate the tree
//! shows; under layout churn it never reads out of bounds nor returns a removed source's
//! values as current; a refresh makes no system call; a full region and a corrupted one
//! are errors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs_core::cell::{Counter, Gauge, LogHistogram};
use statsfs_core::{Source, ValueGroup};
use statsfs_derive::Stats;
use statsfs_region::{EntryKind, Region, RegionError, RegionOptions, RegionReader};

#[derive(Stats, Default)]
#[stats(crate = statsfs_core, name = "vcpu")]
struct VcpuStat {
    /// Guest exits
    exits: Counter,
    /// Halts
    halts: Counter,
    /// Clock drift
    #[stat(kind = instant)]
    drift: Gauge<i32>,
    /// Deepest queue seen
    #[stat(aggregate = max)]
    depth: Gauge<u16>,
    /// vCPUs idle
    #[stat(aggregate = count_zero)]
    busy: Counter,
    /// Exit latency
    latency: LogHistogram<5>,
    /// Which source this is (the churn test's check)
    #[stat(kind = instant, aggregate = min)]
    tag: Gauge<u64>,
}

fn region(dir: &tempfile::TempDir, options: RegionOptions) -> Region {
    Region::create(dir.path().join("test.region"), options).unwrap()
}

/// Every source below `root` by path.
fn by_path(root: &Source) -> HashMap<String, Source> {
    let mut out = HashMap::new();
    let mut stack = vec![(root.clone(), root.name().to_owned())];
    while let Some((s, p)) = stack.pop() {
        for c in s.subordinates() {
            stack.push((c.clone(), format!("{p}/{}", c.name())));
        }
        out.insert(p, s);
    }
    out
}

#[test]
fn a_reader_sees_every_value_and_aggregate_as_the_tree_does() {
    let dir = tempfile::TempDir::new().unwrap();
    let r = region(&dir, RegionOptions::default());
    let kvm = Source::new("kvm").unwrap();
    kvm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let vm = Source::new("1234-5").unwrap();
    vm.set_label("vm", "1234-5").unwrap();
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    kvm.add_subordinate(&vm).unwrap();
    r.publish(std::slice::from_ref(&kvm));
    let mut handles = Vec::new();
    for i in 0..3u64 {
        let h = r.alloc(VcpuStat::default()).unwrap();
        h.exits.add(10 + i);
        h.halts.add_local(7 * i);
        h.drift.set(-5 * i as i32);
        h.depth.set(3 + i as u16);
        if i == 1 {
            h.busy.add(4);
        }
        for v in [0, 3, 900 * i] {
            h.latency.record(v);
        }
        h.tag.set(100 + i);
        let s = Source::new(format!("vcpu{i}")).unwrap();
        s.set_label("vcpu", i.to_string()).unwrap();
        s.set_hidden(i == 2);
        s.add(ValueGroup::placed(h.clone())).unwrap();
        vm.add_subordinate(&s).unwrap();
        handles.push(h);
    }
    let mut reader = RegionReader::open(r.path()).unwrap();
    let mut values = Vec::new();
    assert!(
        reader.refresh(&mut values).unwrap(),
        "the first refresh reads the layout"
    );
    let tree = by_path(&kvm);
    let mut checked = 0;
    for (i, e) in reader.entries().iter().enumerate() {
        let source = &tree[&e.path];
        for (j, stat) in e.stats.iter().enumerate() {
            let want = source.get(&stat.name).unwrap().words().to_vec();
            assert_eq!(
                reader.words(&values, i, j),
                &want[..],
                "{}/{}",
                e.path,
                stat.name
            );
            checked += 1;
        }
    }
    // 2 aggregate entries and 3 of values, 7 stats each.
    assert_eq!(checked, 5 * 7);
    let kinds: Vec<_> = reader
        .entries()
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.hidden))
        .collect();
    assert_eq!(
        kinds,
        [
            ("kvm", EntryKind::Aggregates, false),
            ("kvm/1234-5", EntryKind::Aggregates, false),
            ("kvm/1234-5/vcpu0", EntryKind::Values, false),
            ("kvm/1234-5/vcpu1", EntryKind::Values, false),
            ("kvm/1234-5/vcpu2", EntryKind::Values, true),
        ]
    );
    let vcpu0 = &reader.entries()[2];
    assert!(vcpu0.labels.contains(&("vm".into(), "1234-5".into())));
    assert!(vcpu0.labels.contains(&("vcpu".into(), "0".into())));
    // Values move with no new layout; the next refresh sees them.
    handles[0].exits.inc_local();
    assert!(!reader.refresh(&mut values).unwrap());
    let exits = reader.entries()[0]
        .stats
        .iter()
        .position(|d| d.name == "exits")
        .unwrap();
    assert_eq!(reader.words(&values, 0, exits), [10 + 11 + 12 + 1]);
}

#[test]
fn layout_churn_never_shows_a_removed_source_and_never_blocks_the_writer() {
    let dir = tempfile::TempDir::new().unwrap();
    let r = region(&dir, RegionOptions::default().with_size(1 << 20));
    let root = Source::new("svc").unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    r.publish(std::slice::from_ref(&root));
    let stop = Arc::new(AtomicBool::new(false));
    let changes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (r, root, stop, changes) = (r.clone(), root.clone(), stop.clone(), changes.clone());
        std::thread::spawn(move || {
            let mut live = std::collections::VecDeque::new();
            let mut n = 0u64;
            let deadline = Instant::now() + Duration::from_secs(3);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                n += 1;
                let h = r.alloc(VcpuStat::default()).unwrap();
                // Each source's tag is its number: a reader can tell whose values it read.
                h.tag.set(n);
                h.exits.add(n);
                let s = Source::new(format!("c{n}")).unwrap();
                s.add(ValueGroup::placed(h)).unwrap();
                root.add_subordinate(&s).unwrap();
                live.push_back(s);
                if live.len() > 20 {
                    let old = live.pop_front().unwrap();
                    if n % 2 == 0 {
                        old.revoke();
                    }
                    root.remove_subordinate(&old).unwrap();
                }
                changes.fetch_add(1, Ordering::Relaxed);
            }
            n
        })
    };
    let mut reader = RegionReader::open(r.path()).unwrap();
    let mut values = Vec::new();
    let (mut refreshes, mut layouts, mut busy, mut seen) = (0u64, 0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match reader.refresh(&mut values) {
            Ok(changed) => {
                refreshes += 1;
                layouts += u64::from(changed);
            }
            Err(RegionError::Busy) => {
                busy += 1;
                continue;
            }
            Err(e) => panic!("refresh: {e}"),
        }
        for (i, e) in reader.entries().iter().enumerate() {
            if e.kind != EntryKind::Values {
                continue;
            }
            let n: u64 = e.path.strip_prefix("svc/c").unwrap().parse().unwrap();
            let tag = e.stats.iter().position(|d| d.name == "tag").unwrap();
            let exits = e.stats.iter().position(|d| d.name == "exits").unwrap();
            assert_eq!(
                reader.words(&values, i, tag),
                [n],
                "{} read another source's tag",
                e.path
            );
            assert_eq!(
                reader.words(&values, i, exits),
                [n],
                "{} read another source's exits",
                e.path
            );
            seen += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let made = writer.join().unwrap();
    eprintln!(
        "churn: {made} sources made, {} changes; reader: {refreshes} refreshes, {layouts} layouts read, {busy} busy, {seen} sources checked",
        changes.load(Ordering::Relaxed)
    );
    assert!(made > 100, "the writer made only {made} sources in 3 s");
    assert!(
        layouts > 10 && seen > 100,
        "the reader saw too little: {layouts} layouts, {seen} sources"
    );
}

#[test]
fn a_full_region_is_an_error_at_alloc() {
    let dir = tempfile::TempDir::new().unwrap();
    let r = region(
        &dir,
        RegionOptions::default()
            .with_size(4096 + 2 * 4096 + 4 * 128)
            .with_layout_size(4096)
            .with_mode(0o600),
    );
    let mut kept = Vec::new();
    let err = loop {
        match r.alloc(VcpuStat::default()) {
            Ok(h) => kept.push(h),
            Err(e) => break e,
        }
        assert!(kept.len() < 100, "never full");
    };
    assert!(matches!(err, RegionError::Full { .. }), "{err}");
    assert!(
        err.to_string().contains("larger RegionOptions::size"),
        "{err}"
    );
    // A freed place is reused once the layout has moved on.
    let n = kept.len();
    kept.pop();
    kept.push(r.alloc(VcpuStat::default()).expect("the freed place"));
    assert_eq!(kept.len(), n);
}

#[test]
fn a_corrupted_region_is_an_error_never_a_panic() {
    let dir = tempfile::TempDir::new().unwrap();
    let r = region(
        &dir,
        RegionOptions::default()
            .with_size(256 << 10)
            .with_layout_size(64 << 10)
            .with_mode(0o600),
    );
    let root = Source::new("kvm").unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    r.publish(std::slice::from_ref(&root));
    let h = r.alloc(VcpuStat::default()).unwrap();
    let s = Source::new("vcpu0").unwrap();
    s.add(ValueGroup::placed(h)).unwrap();
    root.add_subordinate(&s).unwrap();
    let good = std::fs::read(r.path()).unwrap();
    let layout_at = u64::from_le_bytes(good[32..40].try_into().unwrap()) as usize;
    let layout_len = u64::from_le_bytes(good[40..48].try_into().unwrap()) as usize;
    let copy = dir.path().join("copy.region");
    let (mut errors, mut fine) = (0, 0);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for k in 0..2000 {
        let mut bad = good.clone();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Mostly in the header and the layout, where a reader trusts nothing.
        let at = if k % 4 == 0 {
            (seed % 64) as usize
        } else {
            layout_at + (seed as usize % layout_len)
        };
        bad[at] ^= 1 << (seed >> 60 & 7);
        if k % 7 == 0 {
            bad.truncate(at.max(1));
        }
        std::fs::write(&copy, &bad).unwrap();
        let got = RegionReader::open(&copy).and_then(|mut rd| {
            let mut v = Vec::new();
            rd.refresh(&mut v).map(|_| ())
        });
        match got {
            Ok(()) => fine += 1,
            Err(RegionError::Invalid { .. } | RegionError::Busy) => errors += 1,
            Err(e) => panic!("flip at {at}: {e}"),
        }
    }
    assert!(
        errors > 100,
        "only {errors} corruptions caught ({fine} read fine)"
    );
}

const REFRESH_CHILD: &str = "STATSFS_REGION_REFRESH_CHILD";

/// Not a test of its own: with `STATSFS_REGION_REFRESH_CHILD=<region>`, opens the region,
/// refreshes once, then writes `REFRESH-BEGIN`, refreshes 1,000 times, writes
/// `REFRESH-END` (each one `write(2)` to stderr).
#[test]
fn refresh_child_entry() {
    let Some(path) = std::env::var_os(REFRESH_CHILD) else {
        return;
    };
    use std::io::Write;
    let mut reader = RegionReader::open(&path).unwrap();
    let mut values = Vec::new();
    reader.refresh(&mut values).unwrap();
    let mut err = std::io::stderr().lock();
    err.write_all(b"REFRESH-BEGIN\n").unwrap();
    let mut sum = 0u64;
    for _ in 0..1000 {
        reader.refresh(&mut values).unwrap();
        sum = sum.wrapping_add(values.iter().sum::<u64>());
    }
    err.write_all(b"REFRESH-END\n").unwrap();
    std::hint::black_box(sum);
}

/// `strace -f` on a reader: between the two markers, the refreshing thread makes no
/// system call at all (the layout does not change meanwhile).
#[test]
fn a_refresh_makes_no_system_call() {
    let Some(strace) = ["/usr/bin/strace", "/bin/strace"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        // The one skip policy: a line the CI counts as skipped.
        use std::io::Write;
        let _ = std::io::stderr().write_all(b"SKIPPED: a_refresh_makes_no_system_call: strace is not installed (apt-get install strace)\n");
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let r = region(&dir, RegionOptions::default());
    let root = Source::new("kvm").unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    r.publish(std::slice::from_ref(&root));
    let mut kept = Vec::new();
    for i in 0..50 {
        let h = r.alloc(VcpuStat::default()).unwrap();
        h.exits.add(i);
        let s = Source::new(format!("vcpu{i}")).unwrap();
        s.add(ValueGroup::placed(h.clone())).unwrap();
        root.add_subordinate(&s).unwrap();
        kept.push(h);
    }
    let log = dir.path().join("strace.log");
    let out = std::process::Command::new(strace)
        .arg("-f")
        .arg("-o")
        .arg(&log)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "shared::refresh_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(REFRESH_CHILD, r.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&log).unwrap();
    let begin = log
        .lines()
        .find(|l| l.contains("REFRESH-BEGIN"))
        .expect("the begin marker");
    let tid = begin.split_whitespace().next().unwrap().to_owned();
    let calls: Vec<&str> = log
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(tid.as_str()))
        .skip_while(|l| !l.contains("REFRESH-BEGIN"))
        .skip(1)
        .take_while(|l| !l.contains("REFRESH-END"))
        .collect();
    assert!(
        calls.is_empty(),
        "1,000 refreshes made system calls:\n{}",
        calls.join("\n")
    );
    assert!(log.contains("REFRESH-END"));
}

/// Who may read is the file's mode: a process of another user (uid 65534), with no root
/// and no FUSE, reads a 0644 region with the Python reader written from the docs, and
/// cannot read a 0600 one.
#[test]
fn another_user_reads_a_region_its_mode_lets_them() {
    let skip = |why: &str| {
        use std::io::Write;
        let line = format!("SKIPPED: another_user_reads_a_region_its_mode_lets_them: {why}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    };
    // SAFETY: geteuid takes no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return skip("needs root (to run a reader as another user)");
    }
    let (Some(setpriv), Some(python)) = (
        ["/usr/bin/setpriv", "/bin/setpriv"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists()),
        ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists()),
    ) else {
        return skip("setpriv or python3 is missing");
    };
    // A directory every user may enter (a TempDir is 0700), removed at the end.
    let dir = std::env::temp_dir().join(format!("statsfs-region-modes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/read_region.py");
    // The script must be readable by that user too: copy it where it is.
    let copy = dir.join("read_region.py");
    std::fs::copy(&script, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run_as_nobody = |region: &std::path::Path| {
        std::process::Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", python])
            .arg(&copy)
            .arg("--json")
            .arg(region)
            .output()
            .unwrap()
    };
    for (mode, readable) in [(0o644, true), (0o600, false)] {
        let path = dir.join(format!("m{mode:o}.region"));
        let r = Region::create(
            &path,
            RegionOptions::default().with_size(1 << 20).with_mode(mode),
        )
        .unwrap();
        let root = Source::new("kvm").unwrap();
        r.publish(std::slice::from_ref(&root));
        let h = r.alloc(VcpuStat::default()).unwrap();
        h.exits.add(42);
        let s = Source::new("vcpu0").unwrap();
        s.add(ValueGroup::placed(h)).unwrap();
        root.add_subordinate(&s).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            mode
        );
        let out = run_as_nobody(&path);
        if readable {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("\"exits\": 42"), "{text}");
        } else {
            assert_eq!(
                out.status.code(),
                Some(1),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
