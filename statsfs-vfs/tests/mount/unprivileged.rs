//! Mounting as a user other than root, through `fusermount3` (docs/FILES.md, "Mounting
//! without root"). Run as root, each test re-executes this binary (`child_entry`) as a
//! system user of its own, `statsfs-test` (created if missing), with `setpriv`; the
//! parent prepares and checks what the child cannot: `/dev/fuse` usable by others (mode
//! 0666, as distributions ship it; put back afterwards whatever happens), a directory
//! the user owns, and that nothing stays mounted.
//!
//! A dedicated user rather than `nobody` (65534): `nobody` should own no files, and other
//! daemons may run as it; the user's directory here is its own. Without root,
//! `/dev/fuse`, `fusermount3` or `setpriv`, every test says SKIPPED (`common::skip`).

use crate::common;

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use statsfs::vfs::{MountError, MountOptions};

/// The test user: a system account without home or login shell.
const USER: &str = "statsfs-test";

/// Set in the child: what it does (`mount` or `refused`), then `:` and the directory.
const CHILD_ENV: &str = "STATSFS_TEST_UNPRIVILEGED";

/// Prefix of the child's lines meant for the parent (libtest writes its own lines too).
const SAY: &str = "CHILD ";

/// How long the child may take for each step.
const STEP: Duration = Duration::from_secs(30);

/// Both tests set the mode of `/dev/fuse`: one at a time.
static DEV_FUSE: Mutex<()> = Mutex::new(());

/// The child's side: does nothing unless started by a test below with `CHILD_ENV`.
#[test]
fn child_entry() {
    let Some(what) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let what = what.into_string().expect("a UTF-8 task");
    let (task, dir) = what.split_once(':').expect("task:dir");
    let dir = Path::new(dir);
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    let euid = unsafe { libc::geteuid() };
    say(&format!("euid={euid}"));
    // No capabilities either: mount(2) must be refused, so that fusermount3 is what mounts.
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("a CapEff line")
        .trim()
        .to_owned();
    say(&format!("capeff={cap_eff}"));
    let t = common::tree();
    match task {
        "hold" => {
            // Mounts and waits to be killed: leaves a dead mount of this user's.
            let m =
                statsfs::vfs::mount(dir, std::slice::from_ref(&t.root), MountOptions::default())
                    .unwrap_or_else(|e| panic!("mounting as uid {euid}: {e}"));
            say("mounted");
            let _ = io::stdin().read_to_end(&mut Vec::new());
            drop(m);
        }
        "mount" => {
            // The parent left a dead mount here (root may not look into it: not
            // allow_other); the next mount detaches it first, through fusermount3 -u -z.
            let dead = fs::metadata(dir).map_err(|e| e.raw_os_error()).err();
            assert_eq!(dead, Some(Some(libc::ENOTCONN)), "a dead mount at {dir:?}");
            // allow_other is fusermount3's to refuse without `user_allow_other` in
            // /etc/fuse.conf: the error says so, and nothing is mounted.
            let conf = fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
            if !conf.lines().any(|l| l.trim() == "user_allow_other") {
                let options = MountOptions::default().with_allow_other(true);
                match statsfs::vfs::mount(dir, std::slice::from_ref(&t.root), options) {
                    Ok(_) => panic!("fusermount3 allowed allow_other without user_allow_other"),
                    Err(e @ MountError::Fusermount { .. }) => {
                        let msg = e.to_string();
                        assert!(msg.contains("user_allow_other"), "{msg}");
                        assert!(!statsfs::vfs::is_mounted(dir).unwrap(), "mounted anyway");
                        say(&format!("allow_other={msg}"));
                    }
                    Err(e) => panic!("expected MountError::Fusermount, got {e:?}: {e}"),
                }
            } else {
                say("allow_other=allowed in /etc/fuse.conf");
            }
            let m =
                statsfs::vfs::mount(dir, std::slice::from_ref(&t.root), MountOptions::default())
                    .unwrap_or_else(|e| panic!("mounting as uid {euid}: {e}"));
            // Read from inside: this user owns the mount.
            let exits = fs::read_to_string(m.path().join("kvm/exits")).expect("read kvm/exits");
            let n: u64 = exits
                .strip_suffix('\n')
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("kvm/exits says {exits:?}"));
            assert!(n > 0, "kvm/exits is {n}");
            let blob = fs::read(m.path().join("kvm/.stats")).expect("read kvm/.stats");
            // docs/BINARY.md#header: 24 bytes, flags 0, the id string after the header.
            assert!(blob.len() >= 24, "kvm/.stats is {} bytes", blob.len());
            let word = |i: usize| u32::from_ne_bytes(blob[i..i + 4].try_into().unwrap());
            assert_eq!(word(0), 0, "header flags");
            assert!(word(12) >= 24, "id_offset {}", word(12));
            let server = statsfs::http::serve(
                std::slice::from_ref(&t.root),
                "127.0.0.1:0",
                Default::default(),
            )
            .unwrap_or_else(|e| panic!("serving /metrics as uid {euid}: {e}"));
            say(&format!("http={}", server.local_addr()));
            // Until the parent is done with both: it closes our stdin.
            let _ = io::stdin().read_to_end(&mut Vec::new());
            drop(server);
            m.unmount()
                .unwrap_or_else(|e| panic!("unmounting as uid {euid}: {e}"));
            say("done");
        }
        "refused" => {
            match statsfs::vfs::mount(dir, std::slice::from_ref(&t.root), MountOptions::default()) {
                Ok(m) => panic!("mounted at {} with /dev/fuse at 0600", m.path().display()),
                Err(e) => {
                    say(&format!("error={e}"));
                    assert!(
                        matches!(&e, MountError::NoFuse(io) if io.kind() == io::ErrorKind::PermissionDenied),
                        "expected NoFuse (permission denied), got {e:?}"
                    );
                    say("done");
                }
            }
        }
        other => panic!("unknown task {other}"),
    }
}

/// One line to the parent, on stdout past libtest's capture.
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{SAY}{line}");
    let _ = out.flush();
}

#[test]
fn a_user_other_than_root_mounts_reads_serves_and_unmounts() {
    let test = "a_user_other_than_root_mounts_reads_serves_and_unmounts";
    let _one = DEV_FUSE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(env) = prerequisites(test) else {
        return;
    };
    let _mode = ModeGuard::set(0o666);
    let dir = user_dir(&env);
    let _detach = Detach(dir.path().to_path_buf());

    // A dead mount of the user's own, which the next mount must clean away as that user.
    let mut holder = ChildGuard::spawn(&env, "hold", dir.path());
    holder.line("euid=");
    holder.line("capeff=");
    assert_eq!(holder.line(""), "mounted");
    holder.child.kill().expect("kill the holder");
    holder.child.wait().expect("reap the holder");
    drop(holder);
    assert!(mountinfo_line(dir.path()).is_some(), "the dead mount stays");

    let mut child = ChildGuard::spawn(&env, "mount", dir.path());

    let euid: u32 = child.line("euid=").parse().expect("a uid");
    assert_ne!(euid, 0, "the child must not run as root");
    assert_eq!(euid, env.uid, "the child runs as {USER}");
    let caps = u64::from_str_radix(&child.line("capeff="), 16).expect("hex capabilities");
    assert_eq!(caps, 0, "the child must have no capabilities");
    let refused = child.line("allow_other=");
    eprintln!("allow_other as {USER}: {refused}");
    let addr = child.line("http=");

    // The child's mount, as fusermount3 made it, in mountinfo: type and source as with
    // mount(2).
    let line = mountinfo_line(dir.path()).expect("the child's mount in /proc/self/mountinfo");
    let after_dash = line.split(" - ").nth(1).unwrap_or_default();
    let mut f = after_dash.split(' ');
    assert_eq!(f.next(), Some(statsfs::vfs::FSTYPE), "{line}");
    assert_eq!(f.next(), Some("statsfs"), "{line}");
    assert!(line.contains(&format!("user_id={}", env.uid)), "{line}");

    // /metrics, served by the unprivileged process.
    let mut s = TcpStream::connect(&addr).expect("connect to the child's /metrics");
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read the reply");
    let reply = String::from_utf8_lossy(&reply);
    let status = reply.lines().next().unwrap_or_default();
    assert!(
        status.split(' ').nth(1) == Some("200"),
        "GET /metrics: {status}"
    );
    assert!(reply.contains("kvm"), "no kvm metric in:\n{reply}");

    // Done: the child unmounts and exits.
    child.finish();
    assert_eq!(child.line(""), "done");
    assert!(
        mountinfo_line(dir.path()).is_none(),
        "{} is still mounted",
        dir.path().display()
    );
}

#[test]
fn a_user_other_than_root_without_dev_fuse_gets_a_typed_error() {
    let test = "a_user_other_than_root_without_dev_fuse_gets_a_typed_error";
    let _one = DEV_FUSE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(env) = prerequisites(test) else {
        return;
    };
    let _mode = ModeGuard::set(0o600);
    let dir = user_dir(&env);
    let _detach = Detach(dir.path().to_path_buf());
    let mut child = ChildGuard::spawn(&env, "refused", dir.path());
    let euid: u32 = child.line("euid=").parse().expect("a uid");
    assert_eq!(euid, env.uid);
    let caps = u64::from_str_radix(&child.line("capeff="), 16).expect("hex capabilities");
    assert_eq!(caps, 0, "the child must have no capabilities");
    let error = child.line("error=");
    assert!(
        error.contains("/dev/fuse") && error.contains("0666"),
        "the error should say what to do: {error}"
    );
    child.finish();
    assert_eq!(child.line(""), "done");
    assert!(mountinfo_line(dir.path()).is_none());
}

/// What the tests need, found.
struct Env {
    setpriv: PathBuf,
    uid: u32,
    gid: u32,
}

/// Root, `/dev/fuse`, `fusermount3`, `setpriv` and the test user (created if missing);
/// `None` (with a SKIPPED line) if any is missing.
fn prerequisites(test: &str) -> Option<Env> {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        common::skip(test, "needs root (to create a test user and switch to it)");
        return None;
    }
    if !Path::new("/dev/fuse").exists() {
        common::skip(test, "no /dev/fuse (modprobe fuse)");
        return None;
    }
    let fusermount = find("fusermount3")
        .or_else(|| Some(PathBuf::from("/usr/bin/fusermount3")).filter(|p| p.is_file()))
        .or_else(|| Some(PathBuf::from("/bin/fusermount3")).filter(|p| p.is_file()));
    if fusermount.is_none() {
        common::skip(
            test,
            "no fusermount3 (apt-get install -y fuse3, or bash .ci/setup)",
        );
        return None;
    }
    let Some(setpriv) = find("setpriv") else {
        common::skip(test, "no setpriv (apt-get install -y util-linux)");
        return None;
    };
    if id("-u").is_none() {
        let Some(useradd) = find("useradd") else {
            common::skip(test, "no test user and no useradd to create it");
            return None;
        };
        let out = Command::new(useradd)
            .args([
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .output()
            .expect("run useradd");
        // Exit status 9: created meanwhile by someone else.
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "useradd {USER}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(Env {
        setpriv,
        uid: id("-u").expect("the test user's uid"),
        gid: id("-g").expect("the test user's gid"),
    })
}

/// `id <flag> statsfs-test`, if the user exists.
fn id(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// `name` on PATH.
fn find(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

/// A fresh temporary directory, owned by the test user (mode 0700): its mount point.
fn user_dir(env: &Env) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("statsfs-unprivileged-")
        .tempdir()
        .expect("a temporary directory");
    std::os::unix::fs::chown(dir.path(), Some(env.uid), Some(env.gid)).expect("chown");
    dir
}

/// The line of `/proc/self/mountinfo` whose mount point is `dir` (no escapes in
/// temporary directories' names), the topmost.
fn mountinfo_line(dir: &Path) -> Option<String> {
    let want = dir.to_str().expect("a UTF-8 path");
    fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(want))
        .map(str::to_owned)
}

/// Lazily unmounts whatever a failed test left mounted at its directory, when dropped
/// (before the directory is removed).
struct Detach(PathBuf);

impl Drop for Detach {
    fn drop(&mut self) {
        for _ in 0..10 {
            if mountinfo_line(&self.0).is_none() {
                return;
            }
            let _ = Command::new("umount")
                .args(["-l", "--"])
                .arg(&self.0)
                .status();
        }
    }
}

/// Sets the mode of `/dev/fuse`, and puts the one it had back when dropped, also when
/// the test panics.
struct ModeGuard {
    old: u32,
}

impl ModeGuard {
    fn set(mode: u32) -> ModeGuard {
        let old = fs::metadata("/dev/fuse")
            .expect("stat /dev/fuse")
            .permissions()
            .mode()
            & 0o7777;
        // The guard exists before the change, so that even a failing change is undone.
        let guard = ModeGuard { old };
        fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(mode))
            .expect("chmod /dev/fuse");
        guard
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        if let Err(e) = fs::set_permissions("/dev/fuse", fs::Permissions::from_mode(self.old)) {
            // Loud: the machine is left with a /dev/fuse mode it did not have.
            eprintln!("RESTORING /dev/fuse TO {:o} FAILED: {e}", self.old);
        }
    }
}

/// The child, run as the test user, with its lines for the parent; killed (and its
/// mount detached) if the test fails before it exits.
struct ChildGuard {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl ChildGuard {
    fn spawn(env: &Env, task: &str, dir: &Path) -> ChildGuard {
        let mut child = Command::new(&env.setpriv)
            .arg(format!("--reuid={}", env.uid))
            .arg(format!("--regid={}", env.gid))
            .args(["--clear-groups", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "unprivileged::child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{task}:{}", dir.display()))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the child with setpriv");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // Anywhere in the line: libtest's `test child_entry ... ` comes first.
                if let Some((_, l)) = line.split_once(SAY) {
                    if tx.send(l.to_owned()).is_err() {
                        return;
                    }
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        ChildGuard {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The child's next line for the parent, which must start with `prefix`; the rest.
    fn line(&mut self, prefix: &str) -> String {
        match self.lines.recv_timeout(STEP) {
            Ok(l) => match l.strip_prefix(prefix) {
                Some(rest) => rest.to_owned(),
                None => self.fail(&format!("expected `{prefix}…` from the child, got `{l}`")),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.fail(&format!("no `{prefix}…` from the child within {STEP:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.fail(&format!("the child ended without `{prefix}…`"))
            }
        }
    }

    /// Closes the child's stdin (its signal to finish) and waits for its exit, which
    /// must be a success.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STEP;
        loop {
            match self.child.try_wait().expect("wait for the child") {
                Some(s) if s.success() => return,
                Some(s) => self.fail(&format!("the child failed: {s}")),
                None if Instant::now() >= deadline => {
                    self.fail(&format!("the child did not exit within {STEP:?}"))
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Kills the child and panics with `why` and the child's stderr.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        let stderr = stderr.join().unwrap_or_default();
        panic!("{why}\n--- the child's stderr:\n{stderr}");
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
