//! The kvm example end to end: the real binary runs a fixed workload (`--iterations N
//! --rounds 1`) on real VMs, mounts its tree, and this test reads the mounted files and
//! the bulk files, then sends SIGTERM and checks the mount is gone.
//!
//! The binary is this package's `kvm`, which cargo builds from the current tree before it
//! runs the package's integration tests (`CARGO_BIN_EXE_kvm`), also for `cargo test
//! --test kvm_example`.
//!
//! Skipped (`SKIPPED: <test>: <reason>`, see `common::skip`) without `/dev/kvm`,
//! `/dev/fuse` or root.

mod common;

use common::example::Example;

use std::fs;
use std::path::Path;
use std::time::Duration;

use statsfs::binary::Blob;

const VMS: u64 = 2;
const VCPUS: u64 = 2;
const N: u64 = 1000;

fn read_u64(path: &Path) -> u64 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim_end()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()))
}

fn mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let p = path.to_str().expect("a UTF-8 path");
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == p))
}

#[test]
fn the_mounted_tree_counts_exactly_and_unmounts_on_sigterm() {
    if !common::can_run_and_mount("the_mounted_tree_counts_exactly_and_unmounts_on_sigterm") {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_kvm"));
    let (vms, vcpus, n) = (VMS.to_string(), VCPUS.to_string(), N.to_string());
    let (mut ex, ready) = Example::start(
        bin,
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "kvm-example",
        &[
            "--vms",
            &vms,
            "--vcpus",
            &vcpus,
            "--iterations",
            &n,
            "--rounds",
            "1",
            "--duration",
            "0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let (pid, mount) = (ex.pid(), ex.mount.clone());
    assert!(mounted(&mount), "{} is not in mountinfo", mount.display());
    let metrics_addr = ready
        .lines()
        .nth(1)
        .expect("the ready file names the metrics address")
        .to_owned();

    let (kvm, vmm) = (mount.join("kvm"), mount.join("vmm"));
    let mut vms: Vec<String> = fs::read_dir(&vmm)
        .expect("list vmm/")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8")
        })
        .filter(|n| n.starts_with(&format!("{pid}-")))
        .collect();
    vms.sort();
    assert_eq!(vms.len() as u64, VMS, "VM directories: {vms:?}");

    // The VMM's tree: its own counters, exact.
    assert_eq!(
        read_u64(&vmm.join("exits_by_reason_io_out")),
        VMS * VCPUS * N
    );
    assert_eq!(read_u64(&vmm.join("online_vcpus")), VMS * VCPUS);
    for vm in &vms {
        let vm_dir = vmm.join(vm);
        assert_eq!(
            read_u64(&vm_dir.join("exits_by_reason_io_out")),
            VCPUS * N,
            "{vm}"
        );
        let mut kernel_sum = 0;
        for c in 0..VCPUS {
            let vcpu = vm_dir.join(format!("vcpu{c}"));
            assert_eq!(
                read_u64(&vcpu.join("exits_by_reason_io_out")),
                N,
                "{vm}/vcpu{c}"
            );
            // An enum-valued stat reads as its number (HALTED is 1) in every view.
            assert_eq!(read_u64(&vcpu.join("mp_state")), 1, "{vm}/vcpu{c}: halted");
            let exits = read_u64(&vcpu.join("exits"));
            let kernel_vcpu = kvm.join(vm).join(format!("vcpu{c}"));
            let kernel_exits = read_u64(&kernel_vcpu.join("exits"));
            assert!(
                kernel_exits >= exits,
                "{vm}/vcpu{c}: kernel exits {kernel_exits} < {exits} seen by the VMM"
            );
            assert!(read_u64(&kernel_vcpu.join("halt_exits")) >= 1);
            // A histogram's file is its sample count; its buckets are `<name>.buckets`.
            let count = read_u64(&vcpu.join("exit_handling_ns"));
            let buckets = fs::read_to_string(vcpu.join("exit_handling_ns.buckets"))
                .expect("the buckets of a histogram");
            let buckets: Vec<u64> = buckets
                .split_whitespace()
                .map(|b| b.parse().expect("a bucket count"))
                .collect();
            assert_eq!(buckets.len(), 32);
            assert_eq!(buckets.iter().sum::<u64>(), count);
            assert_eq!(count, exits, "one exit-handling sample per exit");
            kernel_sum += kernel_exits;
        }
        assert_eq!(read_u64(&kvm.join(vm).join("exits")), kernel_sum, "{vm}");
    }

    // The kernel's kvm_stat in its debugfs mode, pointed at kvm/ (its rules are in
    // common/debugfs.rs): every listed file parses, no directory is counted twice, and
    // with and without `-p`, its totals are the sums of the kernel's own stats files,
    // read directly from the example's descriptors. The vCPUs have finished their rounds,
    // so nothing moves meanwhile.
    let blobs = common::kernel_fds::kernel_blobs(pid);
    assert_eq!(
        blobs.len() as u64,
        VMS + VMS * VCPUS,
        "stats files held by the example"
    );
    for pid_filter in [None, Some(pid)] {
        let seen = common::debugfs::read(&kvm, pid_filter);
        let mut existing: Vec<&String> =
            seen.paths.iter().filter(|p| kvm.join(p).is_dir()).collect();
        existing.sort();
        let n = existing.len();
        existing.dedup();
        assert_eq!(
            existing.len(),
            n,
            "a directory counted twice: {:?}",
            seen.paths
        );
        assert!(!seen.totals.is_empty());
        for (field, total) in &seen.totals {
            let direct: u64 = blobs
                .iter()
                .filter_map(|(_, b)| b.values(field))
                .map(|w| w.iter().sum::<u64>())
                .sum();
            assert_eq!(*total, direct, "kvm_stat -d {pid_filter:?}: {field}");
        }
        assert!(seen.totals["exits"] > 0);
    }
    // kvm_stat pointed at the VMM's tree reads it too (every file one integer).
    let own = common::debugfs::read(&vmm, None);
    assert_eq!(own.totals["exits_by_reason_io_out"], VMS * VCPUS * N);

    // The views agree on every value: the file, the bulk data block (frozen counters).
    for root in [&kvm, &vmm] {
        let blob = Blob::decode(&fs::read(root.join(".tree.stats")).expect("read .tree.stats"))
            .expect("decode .tree.stats");
        assert!(blob.iter().count() > 10);
        for stat in blob.iter() {
            let file = root.join(&stat.desc.name);
            let text = fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
            let number: i128 = text.trim().parse().expect("one integer");
            let words: i128 = if stat.values.len() == 1 {
                // Signed values are stored as their 64-bit pattern.
                if number < 0 {
                    stat.value_i64() as i128
                } else {
                    stat.value() as i128
                }
            } else {
                stat.values.iter().map(|&w| w as i128).sum()
            };
            assert_eq!(
                number,
                words,
                "{} in the file and in .tree.stats",
                file.display()
            );
        }
        // The bulk files open by name but are not listed.
        let listed = fs::read_dir(root)
            .expect("list")
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        assert!(listed.iter().all(|n| !n.starts_with('.')), "{listed:?}");
    }
    let tree = Blob::decode(&fs::read(vmm.join(".tree.stats")).expect("read")).expect("decode");
    assert_eq!(tree.value("exits_by_reason_io_out"), Some(VMS * VCPUS * N));
    for vm in &vms {
        assert_eq!(
            tree.value(&format!("{vm}/exits_by_reason_io_out")),
            Some(VCPUS * N)
        );
        let one = fs::read(vmm.join(vm).join(".stats")).expect("read a VM's .stats");
        let one = Blob::decode(&one).expect("decode a VM's .stats");
        assert_eq!(one.value("exits_by_reason_io_out"), Some(VCPUS * N));
    }
    // The same tree over HTTP for Prometheus: leaves only, so the series add up to the
    // totals the files show.
    let text = http_get(&metrics_addr, "/metrics");
    // The exits are one family with a `reason` label.
    let io_out: u64 = text
        .lines()
        .filter(|l| {
            l.starts_with("kvm_vcpu_exits_by_reason_total{") && l.contains(r#"reason="io_out""#)
        })
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .expect("a counter value")
        })
        .sum();
    assert_eq!(
        io_out,
        VMS * VCPUS * N,
        "sum of kvm_vcpu_exits_by_reason_total{{reason=\"io_out\"}} over:\n{text}"
    );
    // The views agree with OpenMetrics too: every leaf value without a scale (a scaled
    // one is exported in its base unit, as Prometheus names require) reads the same
    // number in its file and in its sample.
    let mut samples = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (Some((name, rest)), Some(value)) = (line.split_once('{'), line.rsplit(' ').next())
        else {
            continue;
        };
        let Some(path) = rest
            .split("path=\"")
            .nth(1)
            .and_then(|p| p.split('"').next())
        else {
            continue;
        };
        // A family member's sample is compared with its own file: `exits_by_reason_hlt`.
        let name = match rest
            .split("reason=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            Some(reason) => match name.strip_suffix("_total") {
                Some(stem) => format!("{stem}_{reason}_total"),
                None => format!("{name}_{reason}"),
            },
            None => name.to_owned(),
        };
        samples.insert((name, path.to_owned()), value.to_owned());
    }
    let mut compared = 0;
    for (tree, prefixes) in [(&vmm, &["kvm_vcpu"][..]), (&kvm, &["kvm_kernel_vcpu"][..])] {
        let root = tree.file_name().unwrap().to_str().unwrap();
        for vm in &vms {
            for c in 0..VCPUS {
                let dir = tree.join(vm).join(format!("vcpu{c}"));
                let path = format!("{root}/{vm}/vcpu{c}");
                for entry in fs::read_dir(&dir).expect("list a vCPU") {
                    let file = entry.unwrap().file_name().into_string().unwrap();
                    let number = fs::read_to_string(dir.join(&file)).unwrap();
                    for prefix in prefixes {
                        for name in [format!("{prefix}_{file}_total"), format!("{prefix}_{file}")] {
                            if let Some(v) = samples.get(&(name.clone(), path.clone())) {
                                assert_eq!(
                                    v.parse::<f64>().expect("a sample value"),
                                    number.trim().parse::<f64>().unwrap(),
                                    "{name}{{path={path}}} and {}",
                                    dir.join(&file).display()
                                );
                                compared += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        compared >= 20,
        "only {compared} values found in both /metrics and the files"
    );

    // SIGTERM: a clean exit, and the mount is gone.
    ex.signal(libc::SIGTERM);
    let status = ex
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running 30 s after SIGTERM:\n{}", ex.output()));
    assert!(status.success(), "exit status {status}:\n{}", ex.output());
    assert!(!mounted(&mount), "{} is still mounted", mount.display());
    assert!(!mount.exists(), "the mount point it created is left behind");
    let out = ex.output();
    assert!(out.contains("statsfs mounted at"), "{out}");
    assert!(out.contains("verified: every vCPU's exits"), "{out}");
    assert!(out.contains("unmounted"), "{out}");
    if let Some(dir) = mount.parent() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// A plain HTTP/1.0 GET on loopback; the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send the request");
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    body.to_owned()
}

/// A mount point that cannot be one is refused with the real cause (here: a regular
/// file, "Not a directory"; a symlink, named as such), not a hint about /dev/fuse, and
/// the example exits at once with nothing mounted.
#[test]
fn a_bad_mount_path_is_refused_with_its_real_cause() {
    if !common::can_run_and_mount("a_bad_mount_path_is_refused_with_its_real_cause") {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_kvm"));
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-mount-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a scratch directory");
    let file = dir.join("a-file");
    fs::write(&file, "not a directory").expect("write a file");
    let link = dir.join("a-link");
    std::os::unix::fs::symlink(&dir, &link).expect("make a symlink");
    for (at, cause) in [(&file, "Not a directory"), (&link, "is a symlink")] {
        let out = std::process::Command::new(bin)
            .args(["--duration", "1", "--mount"])
            .arg(at)
            .output()
            .expect("run the example");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {stderr}", at.display());
        assert!(stderr.contains(cause), "{}: {stderr}", at.display());
        assert!(!stderr.contains("/dev/fuse"), "{}: {stderr}", at.display());
        assert!(!mounted(at), "nothing mounted at {}", at.display());
    }
    fs::remove_dir_all(&dir).expect("remove the scratch directory");
}

/// A client that asks for many responses on one connection and never reads one: the
/// server's writes to it stall. Returns once the requests are sent or the server stops
/// reading them (bounded).
fn stuck_metrics_client(addr: &str) -> std::net::TcpStream {
    use std::io::Write;
    let conn = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_nonblocking(true).expect("non-blocking");
    let batch = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").repeat(2000);
    let (mut sent, deadline) = (0, std::time::Instant::now() + Duration::from_secs(5));
    while sent < batch.len() && std::time::Instant::now() < deadline {
        match (&conn).write(&batch.as_bytes()[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("send to {addr}: {e}"),
        }
    }
    conn
}

/// SIGTERM ends the example, unmounted and no longer serving, within its bound whatever
/// its readers do: here a client stuck in the middle of pipelined `/metrics` responses,
/// a file held open in the mount and a process whose working directory is in it (which
/// make a plain unmount EBUSY). The bound (the example's docs): the vCPUs' stop, then at
/// most 5 s for the mount's workers and 1 s (+2 s grace) for /metrics; the watchdog here
/// is 30 s.
#[test]
fn sigterm_unmounts_and_stops_serving_whatever_readers_do() {
    if !common::can_run_and_mount("sigterm_unmounts_and_stops_serving_whatever_readers_do") {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_kvm"));
    let (mut ex, ready) = Example::start(
        bin,
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "kvm-hostile-readers",
        &[
            "--vms",
            "1",
            "--vcpus",
            "1",
            "--iterations",
            "100",
            "--rounds",
            "1",
            "--duration",
            "0",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let mount = ex.mount.clone();
    let addr = ready
        .lines()
        .nth(1)
        .expect("the ready file names the metrics address")
        .to_owned();
    let _stuck = stuck_metrics_client(&addr);
    let held = fs::File::open(mount.join("kvm").join("exits")).expect("open a value file");
    let mut busy = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(mount.join("kvm"))
        .spawn()
        .expect("a process working in the mount");
    ex.signal(libc::SIGTERM);
    let status = ex.wait(Duration::from_secs(30));
    let _ = busy.kill();
    let _ = busy.wait();
    drop(held);
    let status =
        status.unwrap_or_else(|| panic!("still running 30 s after SIGTERM:\n{}", ex.output()));
    assert!(status.success(), "exit status {status}:\n{}", ex.output());
    assert!(!mounted(&mount), "{} is still mounted", mount.display());
    let out = ex.output();
    assert!(out.contains("stopped serving /metrics"), "{out}");
    assert!(out.contains("unmounted"), "{out}");
    if let Some(dir) = mount.parent() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The region (`--region`, `docs/REGION.md`): another reader, the project's Rust one and
/// a Python one written from the documentation alone, read every value and aggregate of
/// the VMM's tree equal to what the mount's bulk files say.
#[test]
fn the_region_reads_the_same_as_the_bulk_files() {
    if !common::can_run_and_mount("the_region_reads_the_same_as_the_bulk_files") {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_kvm"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let region_path = tmp.join(format!("kvm-{}.region", std::process::id()));
    let _ = fs::remove_file(&region_path);
    let region_arg = region_path.to_str().expect("a UTF-8 path").to_owned();
    let (mut ex, _ready) = Example::start(
        bin,
        tmp,
        "kvm-region",
        &[
            "--vms",
            "2",
            "--vcpus",
            "2",
            "--iterations",
            "500",
            "--rounds",
            "1",
            "--duration",
            "0",
            "--region",
            &region_arg,
        ],
    );
    let mount = ex.mount.clone();
    // The mount says where the region is.
    let advertised = fs::read_to_string(mount.join(".region")).expect("read <mount>/.region");
    assert_eq!(advertised.trim_end(), region_arg);
    let mut reader = statsfs::region::RegionReader::open(&region_path)
        .unwrap_or_else(|e| panic!("open the region: {e}\n{}", ex.output()));
    let mut values = Vec::new();
    reader.refresh(&mut values).expect("a refresh");
    let mut compared = 0;
    let mut aggregates = 0;
    for (i, e) in reader.entries().iter().enumerate() {
        let blob = fs::read(mount.join(&e.path).join(".stats"))
            .unwrap_or_else(|err| panic!("{}/.stats: {err}", e.path));
        let blob = Blob::decode(&blob).expect("a well-formed bulk file");
        for (j, stat) in e.stats.iter().enumerate() {
            let from_file = blob
                .values(&stat.name)
                .unwrap_or_else(|| panic!("{}/{} is not in the bulk file", e.path, stat.name));
            assert_eq!(
                reader.words(&values, i, j),
                from_file,
                "{}/{}",
                e.path,
                stat.name
            );
            compared += 1;
        }
        aggregates += usize::from(e.kind == statsfs::region::EntryKind::Aggregates);
    }
    assert!(
        compared >= 100 && aggregates >= 3,
        "{compared} stats, {aggregates} aggregate entries"
    );

    // The Python reader, from the documentation alone, reads the same.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../read_region.py");
    match std::process::Command::new("python3")
        .arg(&script)
        .arg("--json")
        .arg(&region_path)
        .output()
    {
        Err(e) => common::skip(
            "the_region_reads_the_same_as_the_bulk_files",
            &format!("python3: {e}"),
        ),
        Ok(out) => {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let sources = json["sources"].as_array().expect("sources");
            assert_eq!(sources.len(), reader.entries().len());
            for (i, (e, s)) in reader.entries().iter().zip(sources).enumerate() {
                assert_eq!(s["path"], e.path.as_str());
                for (j, stat) in e.stats.iter().enumerate() {
                    let words = reader.words(&values, i, j);
                    let py = &s["stats"][stat.name.as_str()];
                    let got: Vec<u64> = match py {
                        serde_json::Value::Array(a) => a
                            .iter()
                            .map(|v| v.as_u64().unwrap_or_else(|| v.as_i64().unwrap() as u64))
                            .collect(),
                        v => vec![v
                            .as_u64()
                            .unwrap_or_else(|| v.as_i64().expect("a number") as u64)],
                    };
                    assert_eq!(got, words, "python: {}/{}", e.path, stat.name);
                }
            }
        }
    }
    ex.signal(libc::SIGTERM);
    let status = ex
        .wait(Duration::from_secs(30))
        .expect("an exit after SIGTERM");
    assert!(status.success(), "{}", ex.output());
    assert!(!region_path.exists(), "the region file is left behind");
}

/// `truncate -s 8192` of the live region: the example runs on and exits cleanly (its mount
/// gone, its region file removed, a warning said), and a reader that read the region
/// through the mount goes back to the bulk files instead of dying of SIGBUS.
#[test]
fn a_region_cut_short_kills_neither_the_example_nor_its_readers() {
    const TEST: &str = "a_region_cut_short_kills_neither_the_example_nor_its_readers";
    if !common::can_run_and_mount(TEST) {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_kvm"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let region_path = tmp.join(format!("kvm-cut-{}.region", std::process::id()));
    let _ = fs::remove_file(&region_path);
    let region_arg = region_path.to_str().expect("a UTF-8 path").to_owned();
    let (mut ex, _ready) = Example::start(
        bin,
        tmp,
        "kvm-cut",
        &[
            "--vms",
            "1",
            "--vcpus",
            "2",
            "--iterations",
            "200",
            "--rounds",
            "1",
            "--duration",
            "0",
            "--region",
            &region_arg,
        ],
    );
    // `vmm/` is all in the region (`kvm/` mirrors the kernel's files, which are not).
    let vmm = ex.mount.join("vmm");
    let mut reader = statsfs_cli::Reader::open(vmm.to_str().unwrap())
        .unwrap_or_else(|e| panic!("{e}\n{}", ex.output()));
    assert!(
        reader.reads_region(),
        "the tool reads the advertised region"
    );
    let before = reader.stats();
    fs::OpenOptions::new()
        .write(true)
        .open(&region_path)
        .unwrap()
        .set_len(8192)
        .unwrap();
    // The example's vCPUs are idle by now; its writers touch the region on the next
    // change, and the tool's refresh reads it at once.
    reader.refresh().expect("a refresh after the cut");
    assert!(!reader.reads_region(), "back to the bulk files");
    assert_eq!(
        reader.stats(),
        before,
        "the same stats, from the bulk files"
    );
    reader.refresh().expect("and again");
    ex.signal(libc::SIGTERM);
    let status = ex
        .wait(Duration::from_secs(30))
        .expect("an exit after SIGTERM");
    assert!(status.success(), "{status:?}: {}", ex.output());
    assert!(ex.output().contains("cut short"), "{}", ex.output());
    assert!(!region_path.exists(), "the region file is left behind");
}

#[test]
fn remote_write_to_prometheus_stores_what_the_mount_shows() {
    let test = "remote_write_to_prometheus_stores_what_the_mount_shows";
    if !common::can_run_and_mount(test) {
        return;
    }
    let Some(prom) = statsfs_testkit::prometheus::Prometheus::start(
        test,
        "global:\n  scrape_interval: 1h\n",
        &["--web.enable-remote-write-receiver"],
    ) else {
        return;
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_kvm"));
    let url = format!("http://{}", prom.addr());
    let (vms, vcpus, n) = (VMS.to_string(), VCPUS.to_string(), N.to_string());
    let (mut ex, _ready) = Example::start(
        bin,
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "kvm-push",
        &[
            "--vms",
            &vms,
            "--vcpus",
            &vcpus,
            "--iterations",
            &n,
            "--rounds",
            "1",
            "--duration",
            "0",
            "--remote-write",
            &url,
            "--push-interval",
            "0.2",
        ],
    );
    let (pid, mount) = (ex.pid(), ex.mount.clone());
    let vmm = mount.join("vmm");
    // Every vCPU's counters (the VMM's and the kernel's), as the mount shows them once
    // the rounds are done, and as Prometheus stores them from the pushes.
    let mut wants = Vec::new();
    for vm in fs::read_dir(&vmm)
        .expect("list vmm/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
    {
        if !vm.starts_with(&format!("{pid}-")) {
            continue;
        }
        for c in 0..VCPUS {
            let path = format!("vmm/{vm}/vcpu{c}");
            let io_out = read_u64(&mount.join(&path).join("exits_by_reason_io_out"));
            assert_eq!(io_out, N);
            wants.push((
                format!("kvm_vcpu_exits_by_reason_total{{path=\"{path}\",reason=\"io_out\"}}"),
                io_out,
            ));
            let kpath = format!("kvm/{vm}/vcpu{c}");
            let exits = read_u64(&mount.join(&kpath).join("exits"));
            wants.push((
                format!("kvm_kernel_vcpu_exits_total{{path=\"{kpath}\"}}"),
                exits,
            ));
        }
    }
    assert_eq!(wants.len() as u64, 2 * VMS * VCPUS);
    // Bounded: pushes every 0.2 s; Prometheus answers at once.
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: Vec<Option<f64>> = wants.iter().map(|(q, _)| prom.value(q)).collect();
        let all = wants
            .iter()
            .zip(&got)
            .all(|((_, want), got)| *got == Some(*want as f64));
        if all {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "after 60 s Prometheus has {got:?} for {wants:?}\nexample:\n{}\nprometheus:\n{}",
            ex.output(),
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The sender's own statistics are in the tree: payloads taken, none refused.
    let push = vmm.join("push_remote_write");
    assert!(read_u64(&push.join("pushes")) >= 1);
    assert_eq!(read_u64(&push.join("rejected")), 0);
    ex.signal(libc::SIGTERM);
    let status = ex
        .wait(Duration::from_secs(60))
        .expect("it stops on SIGTERM");
    assert!(status.success(), "{status}:\n{}", ex.output());
    assert!(ex.output().contains("stopped pushing:"), "{}", ex.output());
}
