//! The FUSE view with real mounts in temporary directories, checked with real system
//! calls and real tools (`ls`, `cat`, `sh -c 'echo 0 > f'`, `find`, Python's `os.walk`).
//! Needs root and /dev/fuse; without them every test says SKIPPED (`common::skip`).

use crate::common;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use statsfs::binary::Blob;
use statsfs::cell::{Counter, Flag, Gauge, LinearHistogram, LogHistogram, Peak};
use statsfs::vfs::{is_mounted, mount, MountOptions};
use statsfs::{Source, Stats, ValueGroup};
use tempfile::TempDir;

use common::{can_mount, errno, mounted, write_once};

#[derive(Stats, Default)]
struct VcpuStat {
    /// Exits
    exits: Counter,
    /// Pending interrupts
    pending: Gauge<i32>,
    /// Deepest queue
    depth: Peak<u16>,
    /// In guest mode
    guest_mode: Flag,
    /// Exit handling time
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<4>,
    /// Request sizes
    sizes: LinearHistogram<3, 10>,
    #[stat(hidden)]
    secret: Counter,
}

#[derive(Stats, Default)]
struct VmStat {
    /// Pages
    pages: Gauge<u64>,
    /// Remote TLB flushes
    remote_tlb_flush: Counter,
}

struct Kvm {
    root: Source,
    vm: Source,
    vcpus: Vec<Source>,
    vm_stats: Arc<VmStat>,
    stats: Vec<Arc<VcpuStat>>,
}

/// kvm/ (totals) → 1234-5/ (VM stats + vCPU sums) → vcpu0/, vcpu1/; a hidden vcpu9/.
fn kvm_tree() -> Kvm {
    let root = Source::new("kvm").unwrap();
    root.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    root.add(ValueGroup::aggregates::<VmStat>()).unwrap();
    let vm = Source::new("1234-5").unwrap();
    let vm_stats = Arc::new(VmStat::default());
    vm.add(vm_stats.clone()).unwrap();
    vm.add(ValueGroup::aggregates::<VcpuStat>()).unwrap();
    root.add_subordinate(&vm).unwrap();
    let mut vcpus = Vec::new();
    let mut stats = Vec::new();
    for i in 0..2 {
        let s = Arc::new(VcpuStat::default());
        let c = Source::new(format!("vcpu{i}")).unwrap();
        c.add(s.clone()).unwrap();
        vm.add_subordinate(&c).unwrap();
        vcpus.push(c);
        stats.push(s);
    }
    let hidden = Source::new("vcpu9").unwrap();
    let hs = Arc::new(VcpuStat::default());
    hs.exits.add(100);
    hidden.add(ValueGroup::of(hs)).unwrap();
    hidden.set_hidden(true);
    vm.add_subordinate(&hidden).unwrap();
    Kvm {
        root,
        vm,
        vcpus,
        vm_stats,
        stats,
    }
}

fn cat(p: &Path) -> String {
    let out = Command::new("cat").arg(p).output().unwrap();
    assert!(
        out.status.success(),
        "cat {}: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ls_shows_names_and_modes() {
    if !can_mount("ls_shows_names_and_modes") {
        return;
    }
    let k = kvm_tree();
    let (dir, m) = mounted(&k.root, MountOptions::default());
    let top = m.path();
    assert_eq!(
        fs::metadata(top).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    let vm = top.join("kvm/1234-5");
    let out = Command::new("ls")
        .args(["-l", "--time-style=+"])
        .arg(&vm)
        .output()
        .unwrap();
    let ls = String::from_utf8(out.stdout).unwrap();
    let mode_of = |name: &str| {
        ls.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{ls}"))
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(mode_of("vcpu0"), "drwxr-xr-x");
    assert_eq!(mode_of("exits"), "-rw-r--r--");
    assert_eq!(mode_of("pending"), "-r--r--r--");
    assert_eq!(mode_of("remote_tlb_flush"), "-rw-r--r--");
    assert!(!ls.contains("vcpu9"), "hidden source listed:\n{ls}");
    assert!(!ls.contains("secret"), "hidden value listed:\n{ls}");
    let mut names: Vec<String> = fs::read_dir(&vm)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // The bulk files open by name but are not listed: every listed file is one integer.
    let want = [
        "depth",
        "exit_ns",
        "exits",
        "guest_mode",
        "pages",
        "pending",
        "remote_tlb_flush",
        "sizes",
        "vcpu0",
        "vcpu1",
    ];
    assert_eq!(names, want);
    // Inode numbers are stable while the source lives.
    let ino = fs::metadata(vm.join("vcpu0/exits")).unwrap().ino();
    assert_eq!(fs::metadata(vm.join("vcpu0/exits")).unwrap().ino(), ino);
    assert_eq!(
        fs::metadata(vm.join("vcpu0")).unwrap().ino() >> 16,
        k.vcpus[0].id()
    );
    drop(m);
    drop(dir);
}

#[test]
fn cat_shows_every_type_simple_and_aggregate() {
    if !can_mount("cat_shows_every_type_simple_and_aggregate") {
        return;
    }
    let k = kvm_tree();
    k.stats[0].exits.add(3);
    k.stats[1].exits.add(4);
    k.stats[0].pending.set(-7);
    k.stats[1].pending.set(2);
    k.stats[1].guest_mode.set(true);
    k.stats[0].depth.record(9);
    k.stats[0].exit_ns.record(0);
    k.stats[1].exit_ns.record(5);
    k.stats[1].sizes.record(25);
    k.vm_stats.pages.set(4096);
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let kvm = m.path().join("kvm");
    // The hidden vcpu9's 100 exits count in the totals.
    assert_eq!(cat(&kvm.join("exits")), "107\n");
    assert_eq!(cat(&kvm.join("1234-5/vcpu0/exits")), "3\n");
    assert_eq!(cat(&kvm.join("1234-5/vcpu0/pending")), "-7\n");
    assert_eq!(cat(&kvm.join("1234-5/pending")), "-5\n");
    assert_eq!(cat(&kvm.join("1234-5/vcpu1/guest_mode")), "1\n");
    assert_eq!(cat(&kvm.join("1234-5/vcpu0/guest_mode")), "0\n");
    assert_eq!(cat(&kvm.join("1234-5/depth")), "9\n");
    // A histogram's file is its sample count; `<name>.buckets` (not listed) its buckets.
    assert_eq!(cat(&kvm.join("1234-5/exit_ns")), "2\n");
    assert_eq!(cat(&kvm.join("1234-5/exit_ns.buckets")), "1 0 0 1\n");
    assert_eq!(cat(&kvm.join("1234-5/vcpu1/sizes.buckets")), "0 0 1\n");
    assert_eq!(
        errno(
            fs::OpenOptions::new()
                .write(true)
                .open(kvm.join("1234-5/exit_ns.buckets"))
        ),
        libc::EACCES
    );
    assert_eq!(errno(fs::metadata(kvm.join("exits.buckets"))), libc::ENOENT);
    // A bool summed over vCPUs is a count in every view.
    k.stats[0].guest_mode.set(true);
    assert_eq!(cat(&kvm.join("1234-5/guest_mode")), "2\n");
    assert_eq!(cat(&kvm.join("pages")), "4096\n");
}

#[test]
fn hidden_sources_are_still_aggregated() {
    if !can_mount("hidden_sources_are_still_aggregated") {
        return;
    }
    let k = kvm_tree();
    k.stats[0].exits.add(1);
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    // vcpu9 is hidden (no directory) but its 100 exits count in the sums.
    assert_eq!(cat(&m.path().join("kvm/1234-5/exits")), "101\n");
    assert_eq!(
        errno(fs::metadata(m.path().join("kvm/1234-5/vcpu9"))),
        libc::ENOENT
    );
}

#[test]
fn echo_0_clears_a_value_and_through_an_aggregate() {
    if !can_mount("echo_0_clears_a_value_and_through_an_aggregate") {
        return;
    }
    let k = kvm_tree();
    k.stats[0].exits.add(3);
    k.stats[1].exits.add(4);
    k.stats[1].exit_ns.record(6);
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let vm = m.path().join("kvm/1234-5");
    let sh = |cmd: &str| Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(sh(&format!("echo 0 > {}/vcpu0/exits", vm.display())).success());
    assert_eq!((k.stats[0].exits.get(), k.stats[1].exits.get()), (0, 4));
    assert!(sh(&format!("echo 0 > {}/exits", vm.display())).success());
    assert_eq!(k.stats[1].exits.get(), 0);
    assert!(sh(&format!("printf 0 > {}/exit_ns", vm.display())).success());
    assert_eq!(k.stats[1].exit_ns.buckets(), [0; 4]);
    assert_eq!(cat(&vm.join("exits")), "0\n");
}

#[test]
fn bad_writes_are_einval_and_change_nothing() {
    if !can_mount("bad_writes_are_einval_and_change_nothing") {
        return;
    }
    let k = kvm_tree();
    k.stats[0].exits.add(5);
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let f = m.path().join("kvm/1234-5/vcpu0/exits");
    let garbage = vec![b'x'; 4096];
    for bad in [&b"5"[..], b"abc", b"\n", b"00", b"0 ", &garbage] {
        assert_eq!(
            errno(write_once(&f, bad)),
            libc::EINVAL,
            "{:?}",
            String::from_utf8_lossy(&bad[..bad.len().min(8)])
        );
        assert_eq!(k.stats[0].exits.get(), 5);
    }
    // The same through a shell: `echo 5 > file` (O_TRUNC, then the write). dash's echo
    // builtin says "I/O error" for any failed write, so ask coreutils' echo, which prints
    // the errno.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("/bin/echo 5 > {}", f.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Invalid argument"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k.stats[0].exits.get(), 5);
    // An empty write never reaches the file system: it succeeds and changes nothing.
    assert_eq!(write_once(&f, b"").unwrap(), 0);
    assert_eq!(k.stats[0].exits.get(), 5);
    assert_eq!(cat(&f), "5\n");
}

#[test]
fn read_only_values_cannot_be_written_even_by_root() {
    if !can_mount("read_only_values_cannot_be_written_even_by_root") {
        return;
    }
    let k = kvm_tree();
    k.stats[0].pending.set(3);
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let f = m.path().join("kvm/1234-5/vcpu0/pending");
    assert_eq!(errno(OpenOptions::new().write(true).open(&f)), libc::EACCES);
    let sh = Command::new("sh")
        .arg("-c")
        .arg(format!("echo 0 > {}", f.display()))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!sh.success());
    assert_eq!(k.stats[0].pending.get(), 3);
}

#[test]
fn the_shape_cannot_be_changed_through_the_mount() {
    if !can_mount("the_shape_cannot_be_changed_through_the_mount") {
        return;
    }
    let k = kvm_tree();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let vm = m.path().join("kvm/1234-5");
    let perm = |r: io::Result<()>| errno(r);
    assert_eq!(perm(fs::create_dir(vm.join("new"))), libc::EPERM);
    assert_eq!(
        perm(File::create(vm.join("new_file")).map(drop)),
        libc::EPERM
    );
    assert_eq!(perm(fs::remove_file(vm.join("exits"))), libc::EPERM);
    assert_eq!(perm(fs::remove_dir(vm.join("vcpu0"))), libc::EPERM);
    assert_eq!(
        perm(fs::rename(vm.join("exits"), vm.join("exits2"))),
        libc::EPERM
    );
    assert_eq!(
        perm(std::os::unix::fs::symlink("exits", vm.join("link"))),
        libc::EPERM
    );
    assert_eq!(
        perm(fs::hard_link(vm.join("exits"), vm.join("hard"))),
        libc::EPERM
    );
    assert_eq!(
        perm(fs::set_permissions(
            vm.join("exits"),
            fs::Permissions::from_mode(0o666)
        )),
        libc::EPERM
    );
    let attr = std::ffi::CString::new(vm.join("exits").to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated strings and a 1-byte value.
    let r = unsafe {
        libc::setxattr(
            attr.as_ptr(),
            c"user.x".as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(r, -1);
    assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
}

#[test]
fn find_and_os_walk_visit_the_whole_tree() {
    if !can_mount("find_and_os_walk_visit_the_whole_tree") {
        return;
    }
    let k = kvm_tree();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let out = Command::new("find").arg(m.path()).output().unwrap();
    assert!(out.status.success());
    let found: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l[m.path().as_os_str().len()..].to_owned())
        // This test binary's process-global source is mounted beside every root.
        .filter(|l| !l.starts_with("/mount_test"))
        .collect();
    // The mount point, kvm/ with 8 values, 1234-5/ with 8, and two vCPU directories with
    // 6 each (the bulk files are not listed).
    assert_eq!(found.len(), 1 + 1 + 8 + 1 + 8 + 2 * (1 + 6), "{found:#?}");
    assert!(found.contains(&"/kvm/1234-5/vcpu1/exit_ns".to_owned()));
    let py = Command::new("python3")
        .arg("-c")
        .arg("import os,sys\nn=0\nfor d,ds,fs in os.walk(sys.argv[1]):\n  n+=len(ds)+len(fs)\n  for f in fs: open(os.path.join(d,f),'rb').read()\nprint(n)")
        .arg(m.path().join("kvm"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(
        String::from_utf8(py.stdout).unwrap().trim(),
        // Everything but the mount point and kvm/ itself.
        (found.len() - 2).to_string()
    );
}

#[test]
fn sources_added_and_removed_while_mounted_appear_and_disappear() {
    if !can_mount("sources_added_and_removed_while_mounted_appear_and_disappear") {
        return;
    }
    let k = kvm_tree();
    let (_dir, m) = mounted(
        &k.root,
        MountOptions::default().with_ttl(Duration::from_secs(600)),
    );
    let vm = m.path().join("kvm/1234-5");
    assert!(vm.join("vcpu1").exists());
    // Removal: visible at once although the kernel may cache entries for 600 s.
    k.vm.remove_subordinate(&k.vcpus[1]).unwrap();
    assert_eq!(errno(fs::metadata(vm.join("vcpu1"))), libc::ENOENT);
    assert_eq!(errno(fs::read(vm.join("vcpu1/exits"))), libc::ENOENT);
    // Addition.
    let c = Source::new("vcpu2").unwrap();
    let s = Arc::new(VcpuStat::default());
    s.exits.add(11);
    c.add(s).unwrap();
    k.vm.add_subordinate(&c).unwrap();
    assert_eq!(cat(&vm.join("vcpu2/exits")), "11\n");
    // Re-adding the removed one brings it back.
    k.vm.add_subordinate(&k.vcpus[1]).unwrap();
    assert!(vm.join("vcpu1/exits").exists());
    // A file opened before its source is removed keeps reading the source (it holds it).
    let mut f = File::open(vm.join("vcpu2/exits")).unwrap();
    k.vm.remove_subordinate(&c).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "11\n");
}

/// A directory of 20,000 sources lists in many `readdir` calls, streamed from the tree:
/// while sources come and go during the listing, every source that stayed throughout
/// is listed exactly once.
#[test]
fn big_directories_stream_and_a_listing_under_churn_sees_each_stayer_once() {
    if !can_mount("big_directories_stream_and_a_listing_under_churn_sees_each_stayer_once") {
        return;
    }
    const N: usize = 20_000;
    let root = Source::new("svc").unwrap();
    root.add(ValueGroup::aggregates::<VmStat>()).unwrap();
    let kids: Vec<Source> = (0..N)
        .map(|i| {
            let c = Source::new(format!("c{i}")).unwrap();
            c.add(Arc::new(VmStat::default())).unwrap();
            root.add_subordinate(&c).unwrap();
            c
        })
        .collect();
    let (_dir, m) = mounted(&root, MountOptions::default());
    let svc = m.path().join("svc");
    let names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    // At rest: every source once, then the values.
    let all = names(&svc);
    assert_eq!(all.len(), N + 2, "{N} sources and 2 values");
    assert_eq!(all[0], "c0");
    assert_eq!(&all[N..], ["pages", "remote_tlb_flush"]);

    // Under churn: the even sources stay; the odd ones are removed and re-added (at new
    // positions: a listing may show such a one twice, as POSIX allows for an entry
    // removed and added during a listing), newcomers come and go.
    let stop = AtomicBool::new(false);
    let progress = std::sync::atomic::AtomicUsize::new(0);
    /// Stops the churn however the listing ends, so a failed check cannot hang the test.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let mut rounds = 0usize;
    std::thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let k = &kids[(round * 2 + 1) % N];
                root.remove_subordinate(k).unwrap();
                let newcomer = Source::new(format!("new{round}")).unwrap();
                root.add_subordinate(&newcomer).unwrap();
                root.add_subordinate(k).unwrap();
                if round % 2 == 0 {
                    root.remove_subordinate(&newcomer).unwrap();
                }
                round += 1;
                progress.store(round, Ordering::Relaxed);
            }
            round
        });
        let _stop = Stop(&stop);
        let mut overlapped = false;
        for _ in 0..3 {
            let before = progress.load(Ordering::Relaxed);
            let mut count = std::collections::HashMap::<String, usize>::new();
            for n in names(&svc) {
                *count.entry(n).or_default() += 1;
            }
            for i in (0..N).step_by(2) {
                let n = count.get(&format!("c{i}")).copied().unwrap_or(0);
                assert_eq!(n, 1, "c{i} stayed throughout: listed {n} times");
            }
            assert_eq!(count["pages"], 1);
            overlapped |= progress.load(Ordering::Relaxed) > before;
        }
        drop(_stop);
        rounds = churn.join().unwrap();
        assert!(overlapped, "the tree changed during a listing");
    });
    assert!(rounds > 0);
}

/// The names one `getdents64` call returns into a buffer of `size` bytes.
fn getdents(dir: &File, size: usize) -> Vec<String> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` is valid for `size` bytes and the fd is open.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            size,
        )
    };
    assert!(n >= 0, "getdents64: {}", io::Error::last_os_error());
    let mut names = Vec::new();
    let mut at = 0;
    while at < n as usize {
        // struct linux_dirent64 { u64 ino; i64 off; u16 reclen; u8 type; char name[]; }
        let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
        let name = &buf[at + 19..at + reclen];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        names.push(String::from_utf8_lossy(&name[..end]).into_owned());
        at += reclen;
    }
    names
}

/// A listing read a few entries at a time resumes at stable offsets: a subordinate that
/// appears mid-listing and hides a value already listed shifts nothing, so every value
/// that stayed is listed exactly once.
#[test]
fn a_listing_resumed_after_a_change_skips_no_value() {
    if !can_mount("a_listing_resumed_after_a_change_skips_no_value") {
        return;
    }
    let root = Source::new("s").unwrap();
    root.add(Arc::new(VcpuStat::default())).unwrap();
    let (_dir, m) = mounted(&root, MountOptions::default());
    let dir = File::open(m.path().join("s")).unwrap();
    // Small buffers: a few entries a call, so the kernel asks again at each entry's offset.
    let mut listed = Vec::new();
    while !listed.contains(&"exits".to_owned()) {
        let more = getdents(&dir, 64);
        assert!(!more.is_empty(), "exits never listed: {listed:?}");
        listed.extend(more);
    }
    assert!(
        !listed.contains(&"sizes".to_owned()),
        "the listing is not over yet"
    );
    let hides = Source::new("exits").unwrap();
    root.add_subordinate(&hides).unwrap();
    loop {
        let more = getdents(&dir, 64);
        if more.is_empty() {
            break;
        }
        listed.extend(more);
    }
    for v in ["pending", "depth", "guest_mode", "exit_ns", "sizes"] {
        let n = listed.iter().filter(|n| *n == v).count();
        assert_eq!(n, 1, "{v} listed {n} times: {listed:?}");
    }
}

#[test]
fn every_read_and_pread_sees_the_current_value() {
    if !can_mount("every_read_and_pread_sees_the_current_value") {
        return;
    }
    let k = kvm_tree();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let f = File::open(m.path().join("kvm/1234-5/vcpu0/exits")).unwrap();
    let mut buf = [0u8; 32];
    for i in [1u64, 9, 10, 99, 100_000] {
        k.stats[0].exits.add(i);
        let n = f.read_at(&mut buf, 0).unwrap();
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!("{}\n", k.stats[0].exits.get())
        );
    }
    // Past the end: nothing.
    assert_eq!(f.read_at(&mut buf, 4096).unwrap(), 0);
}

#[test]
fn readers_in_four_processes_never_see_torn_values() {
    if !can_mount("readers_in_four_processes_never_see_torn_values") {
        return;
    }
    let k = kvm_tree();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = k
        .stats
        .iter()
        .map(|s| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    s.exits.inc_local();
                    s.pending.set(if s.exits.get() % 2 == 0 {
                        -1_000_000
                    } else {
                        7
                    });
                }
            })
        })
        .collect();
    let script = "import re,sys,time\nok=re.compile(rb'^-?[0-9]+\\n$')\nend=time.time()+2\nn=0\nwhile time.time()<end:\n  for p in sys.argv[1:]:\n    d=open(p,'rb').read()\n    if not ok.match(d): print('torn',p,d); sys.exit(1)\n    n+=1\nprint(n)";
    let vm = m.path().join("kvm/1234-5");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            Command::new("python3")
                .arg("-c")
                .arg(script)
                .args([
                    vm.join("exits"),
                    vm.join("pending"),
                    vm.join("vcpu0/exits"),
                    vm.join("vcpu1/pending"),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.trim().parse::<u64>().unwrap() > 0);
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(k.stats[0].exits.get() > 0);
}

#[test]
fn bulk_files_read_whole_blobs_refresh_and_select() {
    if !can_mount("bulk_files_read_whole_blobs_refresh_and_select") {
        return;
    }
    let k = kvm_tree();
    k.stats[0].exits.add(2);
    k.stats[1].pending.set(-3);
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let vm = m.path().join("kvm/1234-5");
    // One read returns everything.
    let blob = fs::read(vm.join(".stats")).unwrap();
    let b = Blob::decode(&blob).unwrap();
    assert_eq!(b.id(), "kvm/1234-5");
    // vcpu0's 2 and the hidden vcpu9's 100.
    assert_eq!(b.value("exits"), Some(102));
    assert_eq!(b.stat("pending").unwrap().value_i64(), -3);
    // pread of the data block refreshes the values.
    let f = File::open(vm.join(".stats")).unwrap();
    let mut all = vec![0u8; blob.len() + 100];
    let n = f.read_at(&mut all, 0).unwrap();
    assert_eq!(n, blob.len());
    let data_offset = b.header().data_offset as usize;
    k.stats[1].exits.add(40);
    let mut data = vec![0u8; blob.len() - data_offset];
    assert_eq!(
        f.read_at(&mut data, data_offset as u64).unwrap(),
        data.len()
    );
    all[data_offset..n].copy_from_slice(&data);
    assert_eq!(Blob::decode(&all[..n]).unwrap().value("exits"), Some(142));
    // Past the end: 0 bytes.
    assert_eq!(f.read_at(&mut data, blob.len() as u64).unwrap(), 0);
    // The subtree in one blob.
    let tree = Blob::decode(&fs::read(vm.join(".tree.stats")).unwrap()).unwrap();
    assert_eq!(tree.value("vcpu1/exits"), Some(40));
    assert!(tree
        .descriptors()
        .iter()
        .all(|d| !d.name.starts_with("vcpu9")));
    // A selection written to the open file: later reads of that file hold only those.
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(vm.join(".tree.stats"))
        .unwrap();
    f.write_all(b"*/exits pages").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut sel = Vec::new();
    f.read_to_end(&mut sel).unwrap();
    let sel = Blob::decode(&sel).unwrap();
    let names: Vec<_> = sel.descriptors().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["pages", "vcpu0/exits", "vcpu1/exits"]);
    // Bad selections: EINVAL, and the selection in force stays.
    assert_eq!(errno(f.write(b"no_such_stat")), libc::EINVAL);
    assert_eq!(errno(f.write(b"bad\x07char")), libc::EINVAL);
    let mut buf = vec![0u8; 65536];
    let n = f.read_at(&mut buf, 0).unwrap();
    assert_eq!(Blob::decode(&buf[..n]).unwrap().descriptors().len(), 3);
}

#[test]
fn mount_options_set_owner_and_root_mode() {
    if !can_mount("mount_options_set_owner_and_root_mode") {
        return;
    }
    let k = kvm_tree();
    let (_dir, m) = mounted(
        &k.root,
        MountOptions::default()
            .with_uid(1000)
            .with_gid(1001)
            .with_mode(0o755),
    );
    let md = fs::metadata(m.path()).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.permissions().mode() & 0o7777),
        (1000, 1001, 0o755)
    );
    let f = fs::metadata(m.path().join("kvm/exits")).unwrap();
    assert_eq!((f.uid(), f.gid()), (1000, 1001));
    let line = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(line
        .lines()
        .any(|l| l.contains(m.path().to_str().unwrap()) && l.contains(statsfs::vfs::FSTYPE)));
}

#[test]
fn dropping_the_mount_unmounts() {
    if !can_mount("dropping_the_mount_unmounts") {
        return;
    }
    let k = kvm_tree();
    let (dir, m) = mounted(&k.root, MountOptions::default());
    let path: PathBuf = m.path().to_owned();
    assert!(is_mounted(&path).unwrap());
    drop(m);
    assert!(!is_mounted(&path).unwrap());
    assert!(!fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(path.to_str().unwrap()));
    drop(dir);
}

#[test]
fn a_missing_mount_point_is_created_and_removed_again() {
    if !can_mount("a_missing_mount_point_is_created_and_removed_again") {
        return;
    }
    let k = kvm_tree();
    let dir = TempDir::new().unwrap();
    let (outer, path) = (dir.path().join("a"), dir.path().join("a/b/mnt"));
    let m = mount(
        &path,
        std::slice::from_ref(&k.root),
        MountOptions::default(),
    )
    .unwrap();
    assert!(is_mounted(&path).unwrap());
    // The default owner is the mounting process.
    let md = fs::metadata(m.path()).unwrap();
    // SAFETY: getuid and getgid cannot fail.
    let me = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!((md.uid(), md.gid()), me);
    // Someone else's file beside the mount point: a/b/mnt and a/b go, a stays.
    fs::create_dir(dir.path().join("a/theirs")).unwrap();
    m.unmount().unwrap();
    assert!(!is_mounted(&path).unwrap());
    assert!(!dir.path().join("a/b").exists());
    assert!(outer.join("theirs").is_dir());

    // An existing mount point stays after the unmount.
    let m = mount(
        &outer,
        std::slice::from_ref(&k.root),
        MountOptions::default(),
    )
    .unwrap();
    drop(m);
    assert!(!is_mounted(&outer).unwrap());
    assert!(outer.join("theirs").is_dir());
}

/// A symlink anywhere in the mount point's path is refused (another user could point it
/// at a directory of their choosing), and nothing is created through it.
#[test]
fn a_symlink_in_the_mount_path_is_refused_and_nothing_is_created() {
    if !can_mount("a_symlink_in_the_mount_path_is_refused_and_nothing_is_created") {
        return;
    }
    let k = kvm_tree();
    let dir = TempDir::new().unwrap();
    let (real, link) = (dir.path().join("victim"), dir.path().join("planted"));
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for (at, bad) in [(link.join("mnt"), &link), (link.clone(), &link)] {
        let r = mount(&at, std::slice::from_ref(&k.root), MountOptions::default());
        match r {
            Err(statsfs::vfs::MountError::Symlink { link, .. }) => assert_eq!(&link, bad),
            other => panic!("mounting at {} through a symlink: {other:?}", at.display()),
        }
        assert!(!is_mounted(&real).unwrap(), "nothing mounted on the target");
    }
    assert_eq!(
        fs::read_dir(&real).unwrap().count(),
        0,
        "nothing created through it"
    );
    // `..` is refused too: it could climb out of a directory checked before it.
    let up = dir.path().join("victim/../victim/mnt");
    let r = mount(&up, std::slice::from_ref(&k.root), MountOptions::default());
    assert!(
        matches!(r, Err(statsfs::vfs::MountError::UnsafePath { .. })),
        "{r:?}"
    );
    let msg = mount(
        &link,
        std::slice::from_ref(&k.root),
        MountOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("is a symlink") && msg.contains("real path"),
        "{msg}"
    );
}

/// A second mount on a live one is refused with a clear error, and the first one keeps
/// serving (mounted over, it would be hidden, and left dead underneath when it ends).
#[test]
fn a_mount_over_a_live_mount_is_refused() {
    if !can_mount("a_mount_over_a_live_mount_is_refused") {
        return;
    }
    let k = kvm_tree();
    let (dir, first) = mounted(&k.root, MountOptions::default());
    let second = mount(
        dir.path(),
        std::slice::from_ref(&k.root),
        MountOptions::default(),
    );
    match second {
        Err(e @ statsfs::vfs::MountError::AlreadyMounted { .. }) => {
            assert!(e.to_string().contains("already a mount point"), "{e}");
        }
        other => panic!("a second mount on a live one: {other:?}"),
    }
    k.stats[0].exits.add(3);
    assert_eq!(cat(&first.path().join("kvm/1234-5/vcpu0/exits")), "3\n");
    drop(first);
    assert!(!is_mounted(dir.path()).unwrap());
}

/// When run with STATSFS_TEST_DAEMON=<dir>, this "test" is a daemon: it mounts a tree
/// there, creates the file STATSFS_TEST_READY, and waits for SIGINT/SIGTERM.
#[test]
fn daemon_entry() {
    let (Some(dir), Some(ready)) = (
        std::env::var_os("STATSFS_TEST_DAEMON"),
        std::env::var_os("STATSFS_TEST_READY"),
    ) else {
        return;
    };
    let k = kvm_tree();
    let m = mount(&dir, std::slice::from_ref(&k.root), MountOptions::default()).unwrap();
    fs::write(ready, b"ready").unwrap();
    m.wait_for_signal().unwrap();
}

fn spawn_daemon(dir: &Path) -> std::process::Child {
    let ready = dir.with_extension("ready");
    let _ = fs::remove_file(&ready);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "vfs::daemon_entry", "--test-threads=1"])
        .env("STATSFS_TEST_DAEMON", dir)
        .env("STATSFS_TEST_READY", &ready)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the daemon exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not mount within 20 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    fs::remove_file(&ready).unwrap();
    child
}

#[test]
fn sigint_and_sigterm_unmount_cleanly() {
    if !can_mount("sigint_and_sigterm_unmount_cleanly") {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let dir = TempDir::new().unwrap();
        let mut child = spawn_daemon(dir.path());
        assert_eq!(cat(&dir.path().join("kvm/1234-5/exits")), "100\n");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        assert!(child.wait().unwrap().success());
        assert!(
            !is_mounted(dir.path()).unwrap(),
            "signal {sig} left a mount"
        );
    }
}

#[test]
fn a_stale_mount_of_a_killed_process_is_cleaned_before_mounting() {
    if !can_mount("a_stale_mount_of_a_killed_process_is_cleaned_before_mounting") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let mut child = spawn_daemon(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        errno(fs::metadata(dir.path())),
        libc::ENOTCONN,
        "a killed daemon leaves a dead mount"
    );
    let k = kvm_tree();
    let m = mount(
        dir.path(),
        std::slice::from_ref(&k.root),
        MountOptions::default(),
    )
    .unwrap();
    assert_eq!(cat(&m.path().join("kvm/exits")), "100\n");
    drop(m);
    assert!(!is_mounted(dir.path()).unwrap());
}

#[test]
fn a_slow_read_blocks_neither_other_reads_nor_writers() {
    use std::sync::mpsc::{channel, RecvTimeoutError};
    use std::sync::Mutex;
    if !can_mount("a_slow_read_blocks_neither_other_reads_nor_writers") {
        return;
    }
    let k = kvm_tree();
    // A value whose reading waits until the test lets it go (or gives up after 30 s).
    let (entered_tx, entered_rx) = channel::<()>();
    let (release_tx, release_rx) = channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let schema = statsfs::Schema::new_runtime(
        "slow",
        vec![statsfs::Descriptor::new(
            "slow",
            statsfs::ValueType::U64,
            statsfs::Kind::Instant,
        )],
    )
    .unwrap();
    let slow = Source::new("slow").unwrap();
    slow.add(ValueGroup::block(
        schema,
        Arc::new(move |out: &mut [u64]| {
            let _ = entered_tx.lock().unwrap().send(());
            match release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30))
            {
                Ok(()) => {
                    out[0] = 1;
                    Ok(())
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    Err(io::Error::other("never released"))
                }
            }
        }),
    ))
    .unwrap();
    k.root.add_subordinate(&slow).unwrap();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let slow_file = m.path().join("kvm/slow/slow");
    let reader = std::thread::spawn(move || fs::read_to_string(slow_file));
    entered_rx.recv().unwrap();
    // While that read is stuck inside the tree, other reads and the writers go on.
    k.stats[0].exits.inc_local();
    assert_eq!(cat(&m.path().join("kvm/1234-5/vcpu0/exits")), "1\n");
    release_tx.send(()).unwrap();
    // The slow read got its value: it was released by us, not by its timeout, so the fast
    // read above was served while it was in flight.
    assert_eq!(reader.join().unwrap().unwrap(), "1\n");
}

#[test]
fn the_bulk_file_names_are_reserved() {
    if !can_mount("the_bulk_file_names_are_reserved") {
        return;
    }
    let k = kvm_tree();
    // A subordinate that takes a bulk file's name is not listed: the name is the bulk file.
    k.vm.add_subordinate(&Source::new(".stats").unwrap())
        .unwrap();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    let vm = m.path().join("kvm/1234-5");
    let names: Vec<String> = fs::read_dir(&vm)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == ".stats").count(),
        0,
        "neither the subordinate nor the bulk file is listed: {names:?}"
    );
    assert!(fs::metadata(vm.join(".stats")).unwrap().is_file());
}

#[derive(Stats)]
struct MountTestStat {
    /// Mounts made by this test process
    mounts: Counter,
}

#[statsfs::global(name = "mount_test")]
static MOUNT_TEST: MountTestStat = MountTestStat {
    mounts: Counter::new(),
};

#[test]
fn globals_are_mounted_beside_the_roots() {
    if !can_mount("globals_are_mounted_beside_the_roots") {
        return;
    }
    MOUNT_TEST.mounts.add(1);
    let k = kvm_tree();
    let (_dir, m) = mounted(&k.root, MountOptions::default());
    assert_eq!(cat(&m.path().join("mount_test/mounts")), "1\n");
    let mut top: Vec<String> = fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["kvm", "mount_test"], "the catalogue is not listed");
    // The catalogue: every stat the binary can produce, opened by name, read-only.
    let catalogue = m.path().join(".schema");
    let text = cat(&catalogue);
    for s in statsfs::registry::schemas() {
        assert!(text.contains(&format!("schema {} {} ", s.name(), s.type_name())));
    }
    assert!(text.contains(
        "mounts cumulative u64 1 unit=none scale=10^0 aggregate=sum mode=0644 hidden=false Mounts made by this test process\n"
    ));
    assert_eq!(
        fs::metadata(&catalogue).unwrap().len(),
        text.len() as u64,
        "stat tells the true size"
    );
    assert_eq!(
        fs::metadata(&catalogue).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(
        errno(fs::OpenOptions::new().write(true).open(&catalogue)),
        libc::EACCES
    );
    // The exposition, as `/metrics` serves it (the same encoder over the same roots, the
    // globals among them: `statsfs-cli`'s tests compare the bytes with the endpoint's),
    // opened by name, read-only.
    for (name, format) in [
        (".metrics", statsfs::openmetrics::Format::Prometheus),
        (".openmetrics", statsfs::openmetrics::Format::OpenMetrics),
    ] {
        let p = m.path().join(name);
        let roots = statsfs::registry::with_globals(std::slice::from_ref(&k.root));
        let want = statsfs::openmetrics::Encoder::new()
            .encode(&roots, format)
            .to_vec();
        assert_eq!(cat(&p).into_bytes(), want, "{name}");
        assert!(
            cat(&p).contains("{path=\"mount_test\"} "),
            "{name}: the globals too"
        );
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o444
        );
        assert_eq!(
            errno(fs::OpenOptions::new().write(true).open(&p)),
            libc::EACCES
        );
    }
}
