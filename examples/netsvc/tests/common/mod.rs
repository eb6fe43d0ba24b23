//! Shared by the netsvc package's tests: the skip policy and machine checks of
//! `statsfs-testkit`, and the binary run by a test,
//! killed (and its mount removed) if the test fails half-way.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use statsfs_testkit::{can_mount, skip};

/// Whether `path` is a mount point now.
pub fn mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let p = path.to_str().expect("a UTF-8 path");
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == p))
}

/// The running binary, its output going to files in its own directory.
pub struct Netsvc {
    child: Option<Child>,
    /// Where it mounts (if it was given `--mount`), for the clean-up.
    pub mount: Option<PathBuf>,
    out: PathBuf,
    err: PathBuf,
}

impl Netsvc {
    /// Starts `netsvc` with `args` in a fresh directory named `name` (under the target's
    /// temporary directory); `mount` adds `--mount <dir>/mnt`.
    pub fn start(name: &str, mount: bool, args: &[&str]) -> Netsvc {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test's directory");
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netsvc"));
        cmd.args(args);
        let mount = mount.then(|| dir.join("mnt"));
        if let Some(m) = &mount {
            cmd.arg("--mount").arg(m);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("start netsvc");
        Netsvc {
            child: Some(child),
            mount,
            out,
            err,
        }
    }

    /// What it printed so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Both outputs, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            self.stdout(),
            fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits (at most `limit`) for a line of its output starting with `prefix`; the rest
    /// of that line.
    pub fn wait_for_line(&mut self, prefix: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        loop {
            if let Some(rest) = self.stdout().lines().find_map(|l| l.strip_prefix(prefix)) {
                return rest.to_owned();
            }
            assert!(
                self.child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_none()),
                "netsvc ended before printing {prefix:?}:\n{}",
                self.output()
            );
            assert!(
                Instant::now() < end,
                "no {prefix:?} line:\n{}",
                self.output()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = child.try_wait().expect("poll netsvc") {
                self.child = None;
                return Some(status);
            }
            sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Netsvc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(m) = &self.mount {
                // The process is gone; do not leave a dead FUSE mount behind.
                let _ = Command::new("umount").arg("-l").arg(m).status();
            }
        }
    }
}

/// The pairs `(generator count, tree total)` of the summary's comparison rows
/// (`  requests answered  generator 10  svc/requests 10`).
pub fn summary_rows(stdout: &str) -> Vec<(String, u64, u64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // `generator <n> svc/<stat> <n>`, at the end of the line.
            let [.., "generator", g, t, n] = words[..] else {
                return None;
            };
            let stat = t.strip_prefix("svc/")?;
            Some((format!("svc/{stat}"), g.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

/// A plain HTTP/1.0 GET on loopback: the status line and the body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send the request");
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}
