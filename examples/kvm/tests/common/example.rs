//! The kvm example's binary run by a test: started with the arguments a test gives,
//! waited for, signalled, and killed (its mount removed) if the test fails half-way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The running example; killed and its mount removed if the test fails half-way.
pub struct Example {
    pub child: Option<Child>,
    pub mount: PathBuf,
    pub out: PathBuf,
    pub err: PathBuf,
}

impl Example {
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            fs::read_to_string(&self.out).unwrap_or_default(),
            fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(status) = child.try_wait().expect("poll the example") {
                self.child = None;
                return Some(status);
            }
            sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
            // SAFETY: kill() only sends a signal; `pid` is our own child, not yet reaped
            // (we still hold it), so the pid cannot have been reused.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGTERM);
            if self.wait(Duration::from_secs(10)).is_none() {
                if let Some(child) = &mut self.child {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                // The process is gone; do not leave a dead FUSE mount behind.
                let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
            }
        }
    }
}

impl Example {
    /// Starts `bin` (the package's `kvm`) in a fresh directory named `name` under
    /// `tmp`, mounting at `<dir>/mnt` with `--ready-file <dir>/ready`, plus `args`; waits
    /// (at most 120 s) for the ready file. Returns the example and its ready file's text.
    pub fn start(bin: &Path, tmp: &Path, name: &str, args: &[&str]) -> (Example, String) {
        let dir = tmp.join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test's directory");
        let mount = dir.join("mnt");
        let ready = dir.join("ready");
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        let child = Command::new(bin)
            .args(args)
            .arg("--mount")
            .arg(&mount)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut ex = Example {
            child: Some(child),
            mount,
            out,
            err,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready.exists() {
            if let Some(status) = ex.wait(Duration::from_millis(100)) {
                panic!("the example ended early ({status}):\n{}", ex.output());
            }
            assert!(
                Instant::now() < deadline,
                "no ready file after 120 s:\n{}",
                ex.output()
            );
        }
        let text = fs::read_to_string(&ready).expect("read the ready file");
        (ex, text)
    }

    /// The example's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}
