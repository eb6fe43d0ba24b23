//! The `statsfs` tool end to end: the real binary (`CARGO_BIN_EXE_statsfs`) reads a tree
//! that this test process builds and mounts, and its output is checked against the
//! mount's value files and bulk files. The live view is driven in tmux.
//!
//! Skipped (`SKIPPED: <test>: <reason>`) without FUSE or root, and without tmux or
//! promtool for the tests that need them.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use statsfs::cell::{Counter, Gauge, LogHistogram};
use statsfs::vfs::{mount, Mount, MountOptions};
use statsfs::{Source, Stats, ValueGroup};
use statsfs_testkit::{can_mount, skip, tool};
use tempfile::TempDir;

/// A VM's own statistics.
#[derive(Stats, Default)]
#[stats(name = "cli_vm")]
struct VmStat {
    /// Pages the VM has mapped
    pages: Gauge<u64>,
    /// TLB flushes requested
    flushes: Counter,
    /// Clock drift against the host
    drift: Gauge<i32>,
}

/// A vCPU's statistics.
#[derive(Stats, Default)]
#[stats(name = "cli_vcpu")]
struct VcpuStat {
    /// Guest exits handled
    exits: Counter,
    /// Guest halts
    halts: Counter,
    /// Exit handling time
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<8>,
}

/// `kvm/` (aggregates) / `vm1`, `vm2` (VM stats + vCPU aggregates) / `vcpu0`, `vcpu1`.
struct Tree {
    root: Source,
    vms: Vec<Source>,
    vcpus: Vec<Arc<VcpuStat>>,
    _dir: TempDir,
    mount: Mount,
}

impl Tree {
    fn path(&self, rel: &str) -> PathBuf {
        self.mount.path().join(rel)
    }
}

fn add_vm(root: &Source, name: &str, base: u64, vcpus: &mut Vec<Arc<VcpuStat>>) -> Source {
    let vm = Source::new(name).unwrap();
    let stats = Arc::new(VmStat::default());
    stats.pages.set(100 * base);
    stats.flushes.add(base);
    stats.drift.set(-5 * base as i32);
    vm.add(stats).unwrap();
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    for c in 0..2u64 {
        let s = Arc::new(VcpuStat::default());
        s.exits.add(base * 10 + c);
        s.halts.add(c);
        for v in [1, 100, 1000 * base] {
            s.exit_ns.record(v);
        }
        let dir = Source::new(format!("vcpu{c}")).unwrap();
        dir.add(s.clone()).unwrap();
        vm.add_subordinate(&dir).unwrap();
        vcpus.push(s);
    }
    root.add_subordinate(&vm).unwrap();
    vm
}

fn tree() -> Tree {
    let root = Source::new("kvm").unwrap();
    root.add(ValueGroup::aggregates::<VmStat>()).unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    let mut vcpus = Vec::new();
    let vms = vec![
        add_vm(&root, "vm1", 1, &mut vcpus),
        add_vm(&root, "vm2", 2, &mut vcpus),
    ];
    let dir = TempDir::new().unwrap();
    let mount = mount(
        dir.path(),
        std::slice::from_ref(&root),
        MountOptions::default(),
    )
    .unwrap();
    Tree {
        root,
        vms,
        vcpus,
        _dir: dir,
        mount,
    }
}

fn statsfs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_statsfs"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run statsfs")
}

/// Runs the tool, which must succeed; its standard output.
fn ok(args: &[&str]) -> String {
    let out = statsfs(args);
    assert!(
        out.status.success(),
        "statsfs {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Waits (at most 20 s) until process `pid` holds a descriptor whose link `is` says.
fn holds(pid: u32, what: &str, is: impl Fn(&Path) -> bool) {
    let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_dir(&fd_dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|l| is(&l)))
    {
        assert!(Instant::now() < deadline, "the tool never opened {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn read_u64(p: &Path) -> i128 {
    let t = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    t.trim().parse().unwrap()
}

/// A `--once` table: name -> (total, rate, share), read by column (the table is fixed
/// width: the rate and share columns are empty where there is none).
fn table(text: &str) -> HashMap<String, (i128, Option<f64>, String)> {
    let mut lines = text.lines().skip(1);
    let header = lines.next().unwrap_or_default();
    // The name column, then "total" right-aligned in 16, "rate/s" in 14, "%total" in 8.
    let name_w = header.find("total").map_or(0, |t| t + "total".len() - 16);
    let cell = |l: &str, from: usize, len: usize| -> String {
        l.get(from..(from + len).min(l.len()))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    lines
        .map(|l| {
            let name = cell(l, 0, name_w);
            let total = cell(l, name_w, 16).parse().unwrap();
            let rate = cell(l, name_w + 16, 14);
            let rate = (!rate.is_empty()).then(|| rate.parse().unwrap());
            (name, (total, rate, cell(l, name_w + 30, 8)))
        })
        .collect()
}

#[test]
fn once_shows_what_the_value_files_hold() {
    if !can_mount("once_shows_what_the_value_files_hold") {
        return;
    }
    let t = tree();
    let kvm = t.path("kvm");
    let out = ok(&["top", "--once", "-d", "0.05", kvm.to_str().unwrap()]);
    assert_eq!(out.lines().next(), Some("kvm"), "{out}");
    let rows = table(&out);
    for name in ["exits", "halts", "exit_ns", "pages", "flushes", "drift"] {
        let (total, rate, _) = rows.get(name).unwrap_or_else(|| panic!("{name}: {out}"));
        assert_eq!(*total, read_u64(&kvm.join(name)), "{name}");
        // Counters count nothing between the two reads; levels have no rate.
        let counts = matches!(name, "exits" | "halts" | "exit_ns" | "flushes");
        assert_eq!(
            *rate,
            counts.then_some(0.0),
            "{name}: nothing counts: {out}"
        );
    }
    assert_eq!(rows["exits"].0, 10 + 11 + 20 + 21);
    assert_eq!(
        rows["drift"].0, -15,
        "a signed gauge reads as its file: {out}"
    );
    assert_eq!(rows["pages"].2, "", "a gauge has no share of a total");
    // Sorted by total, largest first.
    let names: Vec<&str> = out
        .lines()
        .skip(2)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names[0], "pages", "{out}");

    // One VM, and one stat per child.
    let vm1 = ok(&[
        "top",
        "--once",
        "-d",
        "0.05",
        "--source",
        "kvm/vm1",
        t.mount.path().to_str().unwrap(),
    ]);
    assert_eq!(table(&vm1)["exits"].0, read_u64(&kvm.join("vm1/exits")));
    let per = ok(&[
        "top",
        "--once",
        "-d",
        "0.05",
        "--children",
        "exits",
        kvm.to_str().unwrap(),
    ]);
    let per = table(&per);
    assert_eq!(per["vm1"].0, 21);
    assert_eq!(per["vm2"].0, 41);
    assert_eq!(per["vm2"].2, "66.1", "41 of 62");
    // A filter, and skipping zeros.
    let f = ok(&[
        "top",
        "--once",
        "-d",
        "0.05",
        "-z",
        "--filter",
        "^h",
        kvm.join("vm1/vcpu0").to_str().unwrap(),
    ]);
    assert!(table(&f).is_empty(), "vcpu0 has no halts: {f}");
    let f = ok(&[
        "top",
        "--once",
        "-d",
        "0.05",
        "--filter",
        "^h",
        kvm.join("vm1/vcpu1").to_str().unwrap(),
    ]);
    assert_eq!(table(&f).keys().collect::<Vec<_>>(), ["halts"]);
    drop(t);
}

#[test]
fn log_and_csv_rates_come_from_two_reads() {
    if !can_mount("log_and_csv_rates_come_from_two_reads") {
        return;
    }
    let t = tree();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, s) = (stop.clone(), t.vcpus[0].clone());
        thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                s.exits.add(1);
                thread::sleep(Duration::from_micros(50));
            }
        })
    };
    let kvm = t.path("kvm");
    let csv = ok(&[
        "top",
        "--csv",
        "-n",
        "3",
        "-d",
        "0.1",
        "--filter",
        "^(exits|halts)$",
        kvm.to_str().unwrap(),
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "a header and 3 lines: {csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[0], "time");
    let ix = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert!(
            f[ix("exits")].parse::<f64>().unwrap() > 0.0,
            "exits count: {l}"
        );
        assert_eq!(f[ix("halts")], "0", "halts do not: {l}");
    }
    let log = ok(&[
        "top",
        "--log",
        "-n",
        "21",
        "-d",
        "0.01",
        kvm.to_str().unwrap(),
    ]);
    let headers = log.lines().filter(|l| l.contains("exits")).count();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[0].len(),
        lines[1].len(),
        "the header stands over the values: {log}"
    );
    assert_eq!(
        headers, 2,
        "the header every 20 lines, as kvm_stat's: {log}"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn dumps_match_the_files() {
    if !can_mount("dumps_match_the_files") {
        return;
    }
    let t = tree();
    let mnt = t.mount.path().to_str().unwrap().to_owned();
    let text = ok(&["dump", &mnt]);
    let mut seen = 0;
    for l in text.lines() {
        let (path, value) = l.split_once(' ').unwrap();
        if path.ends_with(".buckets") {
            let file = fs::read_to_string(t.path(path)).unwrap();
            assert_eq!(file.trim_end(), value, "{path}");
        } else {
            assert_eq!(
                value.parse::<i128>().unwrap(),
                read_u64(&t.path(path)),
                "{path}"
            );
        }
        seen += 1;
    }
    // kvm: 6 stats, each VM 6, each vCPU 3, plus a buckets line per histogram (7).
    assert_eq!(seen, 6 + 2 * 6 + 4 * 3 + 7, "{text}");
    assert!(text.contains("kvm/vm2/drift -10\n"), "{text}");

    let json = ok(&["dump", "--format", "json", &mnt]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sources = doc["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1 + 2 + 4);
    let vcpu = sources
        .iter()
        .find(|s| s["path"] == "kvm/vm2/vcpu1")
        .unwrap();
    let exit_ns = vcpu["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "exit_ns")
        .unwrap();
    assert_eq!(exit_ns["kind"], "log_histogram");
    assert_eq!(exit_ns["unit"], "seconds");
    assert_eq!(exit_ns["scale"], "10^-9");
    assert_eq!(exit_ns["value"], 3);
    assert_eq!(exit_ns["buckets"].as_array().unwrap().len(), 8);

    // OpenMetrics: leaves only (no aggregate counted twice), as the endpoint does, named
    // by their schemas (the mount's root serves the endpoint's exposition).
    let om = ok(&["dump", "--format", "openmetrics", &mnt]);
    assert!(om.ends_with("# EOF\n"), "{om}");
    let exits: Vec<&str> = om
        .lines()
        .filter(|l| l.starts_with("cli_vcpu_exits_total{"))
        .collect();
    assert_eq!(exits.len(), 4, "one series per vCPU: {om}");
    assert!(
        om.contains("cli_vcpu_exits_total{path=\"kvm/vm2/vcpu1\"} 21"),
        "{om}"
    );
    assert!(om.contains("cli_vm_pages{path=\"kvm/vm1\"} 100"), "{om}");
    assert!(om.contains("cli_vm_drift{path=\"kvm/vm1\"} -5"), "{om}");
    // Below the root: the same exposition, of that directory's sources only.
    let vm = t.path("kvm/vm1");
    let om = ok(&["dump", "--format", "openmetrics", vm.to_str().unwrap()]);
    assert!(om.contains("cli_vm_pages{path=\"kvm/vm1\"} 100"), "{om}");
    assert!(!om.contains("kvm/vm2"), "{om}");
    // A bulk file outside a mount carries no schema names: the top source's name stands in.
    let saved = TempDir::new().unwrap();
    let blob = saved.path().join("vm1.stats");
    fs::write(&blob, fs::read(t.path("kvm/vm1/.tree.stats")).unwrap()).unwrap();
    let om = ok(&["dump", "--format", "openmetrics", blob.to_str().unwrap()]);
    assert!(om.contains("kvm_pages{path=\"kvm/vm1\"} 100"), "{om}");
}

#[test]
fn dump_openmetrics_passes_promtool() {
    const TEST: &str = "dump_openmetrics_passes_promtool";
    if !can_mount(TEST) {
        return;
    }
    let Some(promtool) = tool(TEST, "promtool") else {
        return;
    };
    let t = tree();
    let om = ok(&[
        "dump",
        "--format",
        "prometheus",
        t.mount.path().to_str().unwrap(),
    ]);
    let out = statsfs_testkit::run_with_input(&promtool, &["check", "metrics"], &om);
    assert!(
        out.status.success(),
        "promtool: {}{}\n{om}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schema_lists_every_descriptor_with_its_catalogue_attributes() {
    if !can_mount("schema_lists_every_descriptor_with_its_catalogue_attributes") {
        return;
    }
    let t = tree();
    let out = ok(&["schema", t.path("kvm").to_str().unwrap()]);
    let line = |name: &str| -> Vec<String> {
        let l = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        l.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(
        line("name")[..8],
        [
            "name",
            "kind",
            "unit",
            "scale",
            "size",
            "aggregation",
            "mode",
            "description"
        ]
    );
    assert_eq!(
        line("exit_ns")[..7],
        [
            "exit_ns",
            "log_histogram",
            "seconds",
            "10^-9",
            "8",
            "sum",
            "0644"
        ]
    );
    assert_eq!(line("exit_ns")[7..].join(" "), "Exit handling time");
    assert_eq!(
        line("pages")[..7],
        ["pages", "instant", "none", "10^0", "1", "sum", "0444"]
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("exits ")).count(),
        1,
        "one row a descriptor: {out}"
    );
}

#[test]
fn bulk_files_and_descriptors_read_alone() {
    if !can_mount("bulk_files_and_descriptors_read_alone") {
        return;
    }
    let t = tree();
    let stats = t.path("kvm/vm2/vcpu1/.stats");
    let out = ok(&["dump", stats.to_str().unwrap()]);
    assert!(
        out.contains("kvm/vm2/vcpu1/exits 21\n"),
        "the file's id names its source: {out}"
    );
    // fd:N, a descriptor the tool inherits.
    let sh = format!(
        "{} dump fd:3 3<{}",
        env!("CARGO_BIN_EXE_statsfs"),
        stats.display()
    );
    let out = Command::new("bash").args(["-c", &sh]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kvm/vm2/vcpu1/exits 21\n"));
}

#[test]
fn a_change_of_shape_is_seen_at_the_next_refresh() {
    if !can_mount("a_change_of_shape_is_seen_at_the_next_refresh") {
        return;
    }
    let t = tree();
    let kvm = t.path("kvm");
    let child = Command::new(env!("CARGO_BIN_EXE_statsfs"))
        .args([
            "top",
            "--once",
            "-d",
            "3",
            "--children",
            "exits",
            kvm.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the tool holds the bulk file open (its layout made), the tree changes.
    holds(child.id(), "the bulk file", |l| l.ends_with(".tree.stats"));
    let mut vcpus = Vec::new();
    let _vm3 = add_vm(&t.root, "vm3", 3, &mut vcpus);
    t.root.remove_subordinate(&t.vms[0]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = table(std::str::from_utf8(&out.stdout).unwrap());
    let mut names: Vec<&String> = rows.keys().collect();
    names.sort();
    assert_eq!(names, ["vm2", "vm3"], "{rows:?}");
    assert_eq!(rows["vm3"].0, 61);
}

#[test]
fn bad_input_is_one_clear_line_and_a_failure() {
    if !can_mount("bad_input_is_one_clear_line_and_a_failure") {
        return;
    }
    let t = tree();
    let dir = TempDir::new().unwrap();
    let cut = dir.path().join("cut.stats");
    let blob = fs::read(t.path("kvm/.tree.stats")).unwrap();
    fs::write(&cut, &blob[..blob.len() - 8]).unwrap();
    let garbage = dir.path().join("garbage");
    fs::write(&garbage, b"not a stats file at all, but long enough").unwrap();
    let kvm = t.path("kvm");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["top".into(), "--once".into(), "/no/such/path".into()],
            "/no/such/path: No such file",
        ),
        (
            vec!["dump".into(), dir.path().display().to_string()],
            "is not a statsfs tree",
        ),
        (vec!["dump".into(), cut.display().to_string()], "truncated"),
        (
            vec!["schema".into(), garbage.display().to_string()],
            "header (byte 0): flags is",
        ),
        (
            vec![
                "top".into(),
                "--once".into(),
                "--filter".into(),
                "(".into(),
                kvm.display().to_string(),
            ],
            "--filter",
        ),
        (
            vec![
                "top".into(),
                "--once".into(),
                "--source".into(),
                "kvm/nope".into(),
                kvm.display().to_string(),
            ],
            "no source \"kvm/nope\"",
        ),
        (vec!["dump".into(), "fd:x".into()], "fd:x: not a descriptor"),
        (vec!["dump".into(), "fd:987".into()], "no such descriptor"),
        (
            vec![
                "top".into(),
                "-d".into(),
                "0".into(),
                "--once".into(),
                kvm.display().to_string(),
            ],
            "out of range",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = statsfs(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
        if !args.contains(&"-d") {
            assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err:?}");
            assert_eq!(out.status.code(), Some(1));
        }
    }
}

#[test]
fn completions_and_man_page() {
    let bash = ok(&["completions", "bash"]);
    assert!(
        bash.contains("statsfs") && bash.contains("--skip-zeros"),
        "{bash}"
    );
    let man = ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH statsfs"),
        "{man}"
    );
}

/// tmux: the live view in a real terminal, driven by keys.
struct Tmux {
    tmux: PathBuf,
    session: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.tmux).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", &self.session, k]);
        }
    }

    /// Waits until the pane shows `want` (bounded), returns the pane.
    fn until(&self, want: &str) -> String {
        self.wait_for(want, true)
    }

    /// Waits until the pane no longer shows `gone` (bounded).
    fn until_gone(&self, gone: &str) {
        self.wait_for(gone, false);
    }

    fn wait_for(&self, text: &str, shown: bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pane = self.run(&["capture-pane", "-p", "-t", &self.session]);
            if pane.contains(text) == shown {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "after 20 s the pane {} {text:?}:\n{pane}",
                if shown { "still lacks" } else { "still shows" }
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-session", "-t", &self.session]);
    }
}

#[test]
fn the_live_view_in_tmux() {
    const TEST: &str = "the_live_view_in_tmux";
    if !can_mount(TEST) {
        return;
    }
    let Some(tmux) = tool(TEST, "tmux") else {
        return;
    };
    let t = tree();
    let session = format!("statsfs-cli-{}", std::process::id());
    let scratch = TempDir::new().unwrap();
    let done = scratch.path().join("exit-status");
    let cmd = format!(
        // Written aside and renamed: the file appears whole, never empty.
        "{} top -d 0.2 {}; echo $? > {d}.part && mv {d}.part {d}",
        env!("CARGO_BIN_EXE_statsfs"),
        t.path("kvm").display(),
        d = done.display()
    );
    let tm = Tmux { tmux, session };
    let started = Command::new(&tm.tmux)
        .args([
            "new-session",
            "-d",
            "-s",
            &tm.session,
            "-x",
            "120",
            "-y",
            "30",
            &cmd,
        ])
        .status()
        .unwrap();
    assert!(started.success());
    let pane = tm.until("rate/s");
    assert!(
        pane.contains("sort: total") && pane.contains("q quit"),
        "{pane}"
    );
    tm.keys(&["o"]);
    tm.until("sort: rate");
    tm.keys(&["f", "e", "x", "i", "Enter"]);
    let pane = tm.until("filter: exi");
    assert!(!pane.contains("halts"), "filtered out: {pane}");
    tm.keys(&["Enter", "c"]);
    tm.until("kvm: exits per child");
    let pane = tm.until("vm2");
    assert!(pane.contains("41"), "vm2's exits: {pane}");
    // A VM added while the view is up: the mount's POLLPRI makes the view lay out anew.
    let mut more = Vec::new();
    let vm3 = add_vm(&t.root, "vm3", 3, &mut more);
    let pane = tm.until("vm3");
    assert!(pane.contains("61"), "vm3's exits: {pane}");
    t.root.remove_subordinate(&vm3).unwrap();
    tm.until_gone("vm3");
    tm.keys(&["u", "d", "Down", "Enter"]);
    let pane = tm.until("kvm/vm2  every");
    assert!(pane.contains("flushes"), "vm2's own stats: {pane}");
    tm.keys(&["r"]);
    tm.until("since reset");
    tm.keys(&["h"]);
    tm.until("double or halve the interval");
    tm.keys(&["x", "q"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done.exists() {
        assert!(Instant::now() < deadline, "the tool did not exit on q");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fs::read_to_string(&done).unwrap().trim(), "0");
}

#[test]
fn statsfs_kvm_as_another_user_says_what_it_could_not_see() {
    const TEST: &str = "statsfs_kvm_as_another_user_says_what_it_could_not_see";
    let Some(setpriv) = tool(TEST, "setpriv") else {
        return;
    };
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    if statsfs_testkit::euid() != Some(0) {
        skip(TEST, "switching to another user needs root");
        return;
    }
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([env!("CARGO_BIN_EXE_statsfs"), "kvm", "--once", "-d", "0.01"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("could not be looked into: run as root"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A VM of this process and its stats file (`KVM_CREATE_VM`, `KVM_GET_STATS_FD`), or
/// `None` without /dev/kvm.
fn vm_with_stats_file() -> Option<(fs::File, fs::File)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    const KVM_GET_STATS_FD: libc::c_ulong = 0xAECE;
    let kvm = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .ok()?;
    // SAFETY: KVM_CREATE_VM takes the machine type (0) and returns a new descriptor or -1.
    let vm = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return None;
    }
    // SAFETY: a descriptor just returned to us, owned by nothing else.
    let vm = unsafe { fs::File::from_raw_fd(vm) };
    // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new descriptor or -1.
    let stats = unsafe { libc::ioctl(vm.as_raw_fd(), KVM_GET_STATS_FD) };
    if stats < 0 {
        return None;
    }
    // SAFETY: as above.
    Some((vm, unsafe { fs::File::from_raw_fd(stats) }))
}

#[test]
fn statsfs_kvm_sees_a_vm_started_while_it_runs() {
    const TEST: &str = "statsfs_kvm_sees_a_vm_started_while_it_runs";
    let Some(first) = vm_with_stats_file() else {
        skip(
            TEST,
            "no /dev/kvm here (or it refused a VM or its stats file)",
        );
        return;
    };
    let me = std::process::id().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_statsfs"))
        .args([
            "kvm",
            "--once",
            "-d",
            "7",
            "--pid",
            &me,
            "--children",
            "remote_tlb_flush",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the tool has taken the first VM's stats file, a second VM starts.
    holds(child.id(), "the stats file", |l| {
        l.to_string_lossy() == "anon_inode:kvm-vm-stats"
    });
    let second = vm_with_stats_file().expect("a second VM");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = table(std::str::from_utf8(&out.stdout).unwrap());
    use std::os::fd::AsRawFd;
    let mut want = vec![
        format!("{me}-{}", first.0.as_raw_fd()),
        format!("{me}-{}", second.0.as_raw_fd()),
    ];
    want.sort();
    let mut got: Vec<String> = rows.keys().cloned().collect();
    got.sort();
    assert_eq!(got, want, "both VMs, by their descriptors");
}

/// A GET of `path` on the endpoint at `addr` with `Accept: accept`: the body, read to its
/// `Content-Length` (bounded waits: the endpoint is on loopback).
fn http_get(addr: std::net::SocketAddr, path: &str, accept: &str) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    conn.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&all[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(all.len() - end, len, "the whole body");
    all[end..].to_vec()
}

/// `statsfs dump --format prometheus` (and `openmetrics`) of a mount's root prints what
/// the endpoint's `/metrics` serves for the same roots, byte for byte: schema names,
/// descriptions and labels included.
#[test]
fn dump_of_a_mount_equals_metrics() {
    if !can_mount("dump_of_a_mount_equals_metrics") {
        return;
    }
    let t = tree();
    t.vms[0].set_label("vm", "one \"quoted\"").unwrap();
    let server = statsfs::http::serve(
        std::slice::from_ref(&t.root),
        "127.0.0.1:0",
        Default::default(),
    )
    .unwrap();
    let mount = t.mount.path().to_str().unwrap();
    for (format, accept) in [
        ("prometheus", "text/plain;version=0.0.4"),
        ("openmetrics", "application/openmetrics-text;version=1.0.0"),
    ] {
        let served = String::from_utf8(http_get(server.local_addr(), "/metrics", accept)).unwrap();
        let dumped = ok(&["dump", "--format", format, mount]);
        assert_eq!(dumped, served, "{format}");
        assert!(dumped.contains("# HELP cli_vcpu_exits"), "{dumped}");
        assert!(dumped.contains("vm=\"one \\\"quoted\\\"\""), "{dumped}");

        // A directory of the mount: the lines of /metrics that are its sources' series,
        // in their order, each family with its metadata.
        for (dir, prefixes) in [
            ("kvm/vm1", &["{path=\"kvm/vm1\"", "{path=\"kvm/vm1/"][..]),
            ("kvm/vm2/vcpu1", &["{path=\"kvm/vm2/vcpu1\""][..]),
        ] {
            let dumped = ok(&["dump", "--format", format, t.path(dir).to_str().unwrap()]);
            let series = |text: &str| -> Vec<String> {
                text.lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(str::to_owned)
                    .collect()
            };
            let wanted: Vec<String> = series(&served)
                .into_iter()
                .filter(|l| prefixes.iter().any(|p| l.contains(p)))
                .collect();
            assert!(!wanted.is_empty(), "{dir}: {served}");
            assert_eq!(series(&dumped), wanted, "{dir} {format}");
            for l in dumped.lines().filter(|l| l.starts_with('#')) {
                assert!(served.lines().any(|s| s == l), "{dir} {format}: {l}");
            }
            for name in ["cli_vcpu_exits", "cli_vcpu_exit_seconds"] {
                assert!(
                    dumped.contains(&format!("# TYPE {name}")),
                    "{dir}: {dumped}"
                );
            }
            if format == "openmetrics" {
                assert!(dumped.ends_with("# EOF\n"), "{dumped}");
            }
        }
    }
}

/// `statsfs dump` of a shared region (`docs/REGION.md`), given the region's file or the
/// mount's `.region` that names it, says what `statsfs dump` of the mount says.
#[test]
fn dump_reads_a_region_as_it_reads_the_mount() {
    if !can_mount("dump_reads_a_region_as_it_reads_the_mount") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let region_path = dir.path().join("cli.region");
    let region = statsfs::region::Region::create(&region_path, Default::default()).unwrap();
    let root = Source::new("kvm").unwrap();
    root.add(ValueGroup::aggregates::<VmStat>()).unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    region.publish(std::slice::from_ref(&root));
    let mut kept = Vec::new();
    for (v, base) in [("vm1", 1u64), ("vm2", 2)] {
        let vm = Source::new(v).unwrap();
        let stats = region.alloc(VmStat::default()).unwrap();
        stats.pages.set(100 * base);
        stats.flushes.add(base);
        stats.drift.set(-5 * base as i32);
        vm.add(ValueGroup::placed(stats.clone())).unwrap();
        vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
        for c in 0..2u64 {
            let s = region.alloc(VcpuStat::default()).unwrap();
            s.exits.add(base * 10 + c);
            s.halts.add(c);
            for x in [1, 100, 1000 * base] {
                s.exit_ns.record(x);
            }
            let d = Source::new(format!("vcpu{c}")).unwrap();
            d.add(ValueGroup::placed(s.clone())).unwrap();
            vm.add_subordinate(&d).unwrap();
            kept.push(s);
        }
        root.add_subordinate(&vm).unwrap();
    }
    root.subordinate("vm2")
        .unwrap()
        .set_label("vm", "two")
        .unwrap();
    let mdir = TempDir::new().unwrap();
    let m = mount(
        mdir.path(),
        std::slice::from_ref(&root),
        MountOptions::default().with_region(&region_path),
    )
    .unwrap();

    // Its exposition is the writer's /metrics, with the schemas' names and the labels
    // the region carries; not the descriptions, which it does not carry (the `# HELP`
    // lines say only what the stat is).
    let server = statsfs::http::serve(
        std::slice::from_ref(&root),
        "127.0.0.1:0",
        Default::default(),
    )
    .unwrap();
    for (format, accept) in [
        ("prometheus", "text/plain;version=0.0.4"),
        ("openmetrics", "application/openmetrics-text;version=1.0.0"),
    ] {
        let served = String::from_utf8(http_get(server.local_addr(), "/metrics", accept)).unwrap();
        let without_help = |text: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with("# HELP "))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let dumped = ok(&["dump", "--format", format, region_path.to_str().unwrap()]);
        assert_eq!(without_help(&dumped), without_help(&served), "{format}");
        assert!(
            dumped.contains("cli_vcpu_exits_total{path=\"kvm/vm2/vcpu1\",vm=\"two\"} 21"),
            "{dumped}"
        );
    }
    server.shutdown();
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    // A bulk file is read as it is (no region in its place): what the mount says.
    let tree_stats = m.path().join("kvm/.tree.stats");
    let from_mount = sorted(ok(&["dump", tree_stats.to_str().unwrap()]));
    let from_region = sorted(ok(&["dump", region_path.to_str().unwrap()]));
    let advertised = m.path().join(".region");
    let from_advert = sorted(ok(&["dump", advertised.to_str().unwrap()]));
    assert!(from_mount.len() > 20, "{from_mount:?}");
    assert_eq!(from_region, from_mount);
    assert_eq!(from_advert, from_mount);
    assert!(
        from_region.contains(&"kvm/vm2/drift -10".to_owned()),
        "{from_region:?}"
    );

    // Given the mount, or one of its directories, the tool reads the region itself when
    // it holds every stat the bulk files do.
    for dir in [
        m.path().to_owned(),
        m.path().join("kvm"),
        m.path().join("kvm/vm1"),
    ] {
        let r = statsfs_cli::Reader::open(dir.to_str().unwrap()).unwrap();
        assert!(
            r.reads_region(),
            "{}: bulk files, not the region",
            dir.display()
        );
        assert_eq!(r.files(), 0);
    }
    let vm1 = sorted(ok(&["dump", m.path().join("kvm/vm1").to_str().unwrap()]));
    assert!(vm1.iter().all(|l| l.starts_with("kvm/vm1")), "{vm1:?}");
    assert!(vm1.contains(&"kvm/vm1/drift -5".to_owned()), "{vm1:?}");

    // A root the region does not hold (its structs are on the heap): bulk files.
    let heap = Source::new("heap").unwrap();
    heap.add(Arc::new(VmStat::default())).unwrap();
    let m2dir = TempDir::new().unwrap();
    let m2 = mount(
        m2dir.path(),
        &[root.clone(), heap],
        MountOptions::default().with_region(&region_path),
    )
    .unwrap();
    let r = statsfs_cli::Reader::open(m2.path().to_str().unwrap()).unwrap();
    assert!(!r.reads_region(), "the region does not hold heap/");

    // A hidden source on the heap below kvm/: not listed, but the tree's aggregates fold
    // it and the region's cannot, so the tool keeps the bulk files for kvm/.
    let hidden = Source::new("hidden_vm").unwrap();
    let hs = Arc::new(VmStat::default());
    hs.flushes.add(1000);
    hidden.add(hs).unwrap();
    hidden.set_hidden(true);
    root.add_subordinate(&hidden).unwrap();
    let r = statsfs_cli::Reader::open(m.path().join("kvm").to_str().unwrap()).unwrap();
    assert!(
        !r.reads_region(),
        "kvm/ folds a hidden heap source the region lacks"
    );
    root.remove_subordinate(&hidden).unwrap();

    // Reading the region, the tool follows its layout: a new vCPU is seen at the next wait.
    let mut r = statsfs_cli::Reader::open(region_path.to_str().unwrap()).unwrap();
    let before = r.stats();
    let extra = region.alloc(VcpuStat::default()).unwrap();
    extra.exits.add(7);
    let d = Source::new("vcpu9").unwrap();
    d.add(ValueGroup::placed(extra)).unwrap();
    root.subordinate("vm1")
        .unwrap()
        .add_subordinate(&d)
        .unwrap();
    r.refresh().unwrap();
    assert!(
        r.wait(Duration::from_millis(10)).unwrap(),
        "the layout change was not seen"
    );
    r.refresh().unwrap();
    assert!(r.stats() > before, "{} stats, {before} before", r.stats());
    assert_eq!(r.relayouts(), 1);
    // m2's kvm/ is all in the region: read from it, it says what its bulk file says.
    let m2_kvm = m2.path().join("kvm");
    assert!(statsfs_cli::Reader::open(m2_kvm.to_str().unwrap())
        .unwrap()
        .reads_region());
    assert_eq!(
        sorted(ok(&["dump", m2_kvm.to_str().unwrap()])),
        sorted(ok(&["dump", m2_kvm.join(".tree.stats").to_str().unwrap()]))
    );
}

/// The bulk blob of a source `vm` holding one vCPU's stats, `exits` of them.
fn vcpu_blob(exits: u64) -> Vec<u8> {
    let vm = Source::new("vm").unwrap();
    let s = Arc::new(VcpuStat::default());
    s.exits.add(exits);
    vm.add(s).unwrap();
    let mut view = statsfs::binary::BulkView::new(
        &vm,
        statsfs::Scope::Source,
        &statsfs::binary::Selection::all(),
    )
    .unwrap();
    let mut blob = Vec::new();
    view.encode(&mut blob);
    blob
}

/// Replaces every `from` in `bytes` with `to` (of the same length).
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// Whether `out` holds a control character a terminal would act on: any C0 but newline,
/// DEL, or a C1 (UTF-8 `C2 80`..`C2 9F`, or a lone byte 0x80-0x9F).
fn controls(out: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(out);
    text.chars()
        .filter(|&c| c.is_control() && c != '\n')
        .map(|c| c as u32 as u8)
        .collect()
}

/// A stat named with an escape sequence: the output shows it escaped, never raw.
fn assert_escaped(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let found = controls(bytes);
        assert!(
            found.is_empty(),
            "{what}: {stream} has control characters {found:?}: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Names from a blob, a region and a process reach the terminal escaped: in every dump
/// format, `top --once`, `schema` and the error lines (the live view shows the same
/// model's names; it is driven in tmux above).
#[test]
fn escape_sequences_from_outside_never_reach_the_terminal() {
    let dir = TempDir::new().unwrap();
    // A blob whose stat names carry OSC 0 (the title), conceal and a C1 CSI.
    let mut blob = vcpu_blob(5);
    assert_eq!(patch(&mut blob, b"exits", b"\x1b]0;\x07"), 1);
    assert_eq!(patch(&mut blob, b"halts", "\x1b[8\u{9b}".as_bytes()), 1);
    let path = dir.path().join("hostile.stats");
    fs::write(&path, &blob).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        &["dump", p][..],
        &["dump", "--format", "json", p],
        &["dump", "--format", "prometheus", p],
        &["dump", "--format", "openmetrics", p],
        &["top", "--once", "-d", "0.01", p],
        &["schema", p],
    ] {
        let out = statsfs(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_escaped(&format!("{args:?}"), &out);
    }
    let text = ok(&["dump", p]);
    assert!(text.contains("vm/\\x1b]0;\\x07 5\n"), "{text}");
    assert!(text.contains("vm/\\x1b[8\\u{9b} 0\n"), "{text}");

    // A region whose source names carry them (the layout rewritten under the writer).
    let region_path = dir.path().join("hostile.region");
    let region = statsfs::region::Region::create(&region_path, Default::default()).unwrap();
    let root = Source::new("kvm").unwrap();
    let vm1 = Source::new("vm1").unwrap();
    vm1.set_label("vm", "one").unwrap();
    let placed = region.alloc(VcpuStat::default()).unwrap();
    placed.exits.add(3);
    vm1.add(ValueGroup::placed(placed)).unwrap();
    root.add_subordinate(&vm1).unwrap();
    region.publish(std::slice::from_ref(&root));
    let mut bytes = fs::read(&region_path).unwrap();
    assert!(patch(&mut bytes, b"vm1", b"\x1b[8") >= 1);
    assert_eq!(patch(&mut bytes, b"one", b"\x1b]0"), 1);
    fs::write(&region_path, &bytes).unwrap();
    let r = region_path.to_str().unwrap();
    for args in [
        &["dump", r][..],
        &["dump", "--format", "json", r],
        &["dump", "--format", "prometheus", r],
        &["top", "--once", "-d", "0.01", r],
    ] {
        let out = statsfs(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_escaped(&format!("{args:?}"), &out);
    }
    assert!(ok(&["dump", r]).contains("kvm/\\x1b[8/exits 3\n"));

    // A process that names itself with them (its name is its program's file name, as
    // `prctl(PR_SET_NAME)` could set it).
    let named = dir.path().join("\x1b]0;PWNED\x07\x1b[8m");
    std::os::unix::fs::symlink(which("sleep"), &named).unwrap();
    let mut child = Command::new(&named).arg("30").spawn().unwrap();
    let out = statsfs(&["kvm", "--once", "--pid", &child.id().to_string()]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(!out.status.success());
    assert_escaped("statsfs kvm --pid", &out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(\\x1b]0;PWNED\\x07\\x1b[8m)"), "{err}");
}

/// `program` found in `PATH`.
fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no {program} in PATH"))
}

/// `statsfs` with `args`, given at most 20 s: a tool that blocks is killed and fails the
/// test instead of hanging it.
fn statsfs_within(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_statsfs"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("statsfs {args:?} blocked for 20 s");
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// A FIFO given as the path, or planted where the tool looks (`.tree.stats`, `.schema`,
/// `.region`), is refused or passed over in one line; nothing waits on it.
#[test]
fn a_fifo_anywhere_never_blocks_the_tool() {
    let mkfifo = |p: &Path| {
        let status = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(status.success());
    };
    let dir = TempDir::new().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for args in [
        &["dump", fifo.to_str().unwrap()][..],
        &["top", "--once", fifo.to_str().unwrap()],
        &["schema", fifo.to_str().unwrap()],
    ] {
        let out = statsfs_within(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("a FIFO"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // A directory whose .tree.stats is a FIFO.
    let planted = dir.path().join("planted");
    fs::create_dir(&planted).unwrap();
    mkfifo(&planted.join(".tree.stats"));
    let out = statsfs_within(&["dump", planted.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a FIFO"));

    // A blob in a directory with a .schema FIFO (the catalogue is looked for upwards) and
    // a .region FIFO: read as the blob it is.
    let blob = vcpu_blob(4);
    let beside = dir.path().join("beside");
    fs::create_dir(&beside).unwrap();
    fs::write(beside.join("vm.stats"), &blob).unwrap();
    mkfifo(&beside.join(".schema"));
    mkfifo(&beside.join(".region"));
    let file = beside.join("vm.stats");
    for args in [
        &["dump", file.to_str().unwrap()][..],
        &["schema", file.to_str().unwrap()],
        &["dump", "--format", "prometheus", beside.to_str().unwrap()],
    ] {
        let out = statsfs_within(args);
        let text = String::from_utf8_lossy(&out.stdout);
        if args[1] == "--format" {
            // A directory with a `.schema` FIFO is no mount: refused in one line.
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            continue;
        }
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(text.contains("exits"), "{args:?}: {text}");
    }
    let out = statsfs_within(&["dump", beside.join(".region").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("a FIFO"));
}

/// Set in the child of `statsfs_kvm_never_believes_a_swapped_descriptor`: a directory.
const SWAPPER: &str = "STATSFS_CLI_SWAPPER";

/// Not a test of its own: with `STATSFS_CLI_SWAPPER=<dir>`, makes a VM and its stats file,
/// writes a well-formed bulk file of the same shape with numbers no VM has, says `READY`
/// and keeps swapping one descriptor between the two until its stdin closes. (A process
/// of its own: the swapped descriptor must not confuse the tests that read this one's.)
#[test]
fn swapper_child_entry() {
    use std::io::{BufRead as _, Read as _, Seek as _, Write as _};
    let Some(dir) = std::env::var_os(SWAPPER) else {
        return;
    };
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "SWAPPER {line}");
        let _ = out.flush();
    };
    let Some((_vm, real)) = vm_with_stats_file() else {
        say("NOKVM");
        return;
    };
    let fake_path = Path::new(&dir).join("fake.stats");
    let mut blob = Vec::new();
    let mut f = real.try_clone().unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut blob).unwrap();
    let data = statsfs::binary::Blob::decode(&blob)
        .unwrap()
        .header()
        .data_offset as usize;
    for w in blob[data..].chunks_exact_mut(8) {
        w.copy_from_slice(&FAKE.to_ne_bytes());
    }
    fs::write(&fake_path, &blob).unwrap();
    let fake: std::os::fd::OwnedFd = fs::File::open(&fake_path).unwrap().into();
    let real: std::os::fd::OwnedFd = real.into();
    let mut target = rustix::io::dup(&real).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        thread::spawn(move || {
            let _ = std::io::stdin().lock().lines().count();
            stop.store(true, Ordering::Relaxed);
        })
    };
    say("READY");
    while !stop.load(Ordering::Relaxed) {
        rustix::io::dup2(&fake, &mut target).unwrap();
        rustix::io::dup2(&real, &mut target).unwrap();
    }
    watcher.join().unwrap();
}

/// The numbers of the swapper's bulk file: no VM has them.
const FAKE: u64 = 0xDEAD_BEEF;

/// A process that keeps swapping a descriptor between a real KVM stats file and a file of
/// its own (`swapper_child_entry`), under the tool's `--pid`: the tool never shows the
/// file's numbers. Each run either reads the real stats file or says the descriptor was
/// swapped.
#[test]
fn statsfs_kvm_never_believes_a_swapped_descriptor() {
    use std::io::BufRead as _;
    const TEST: &str = "statsfs_kvm_never_believes_a_swapped_descriptor";
    let dir = TempDir::new().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "swapper_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SWAPPER, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if let Some((_, said)) = line.split_once("SWAPPER ") {
                let _ = tx.send(said.to_owned());
            }
        }
    });
    let said = rx.recv_timeout(Duration::from_secs(60));
    if said.as_deref() != Ok("READY") {
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        match said.as_deref() {
            Ok("NOKVM") => {
                return skip(
                    TEST,
                    "no /dev/kvm here (or it refused a VM or its stats file)",
                )
            }
            other => panic!("the swapper did not start: {other:?}"),
        }
    }
    let pid = child.id().to_string();
    let (mut read, mut refused) = (0, 0);
    for _ in 0..40 {
        let out = statsfs(&["kvm", "--once", "-d", "0.01", "--pid", &pid]);
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !text.contains(&FAKE.to_string()),
            "the swapped-in file's numbers were shown:\n{text}"
        );
        if out.status.success() {
            read += 1;
        } else {
            assert!(
                err.contains("swapped it") || err.contains("holds no KVM stats file"),
                "{err}"
            );
            refused += 1;
        }
    }
    drop(stdin);
    let _ = child.wait();
    println!("{read} runs read the real file, {refused} said it was swapped or absent");
}
