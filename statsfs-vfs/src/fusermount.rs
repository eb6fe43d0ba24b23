//! libfuse's protocol with its setuid helper `fusermount3`, through which a user other
//! than root mounts and unmounts: a socket pair, one end inherited by `fusermount3` as
//! `_FUSE_COMMFD`, over which it passes the `/dev/fuse` descriptor of the mount it made.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::MountError;
use crate::{mountinfo, sys, MountOptions};

/// How long `fusermount3` may take, from start to exit.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Where `fusermount3` is looked for when it is not on `PATH`.
const FALLBACKS: [&str; 2] = ["/usr/bin/fusermount3", "/bin/fusermount3"];

/// The FUSE device, `/dev/fuse`: character device 10:229.
const FUSE_MAJOR: u32 = 10;
const FUSE_MINOR: u32 = 229;

/// The first executable `fusermount3` in an absolute directory on `PATH` (a relative
/// entry, such as `.`, would make the working directory choose it), else in
/// [`FALLBACKS`].
fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("fusermount3"))
        .chain(FALLBACKS.iter().map(PathBuf::from))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Mounts at the absolute `path` through `fusermount3`; the `/dev/fuse` descriptor
/// of the new mount, whose FUSE_INIT is queued.
pub(super) fn mount(path: &Path, options: &MountOptions) -> Result<OwnedFd, MountError> {
    let program = find().ok_or_else(|| MountError::NoFusermount {
        path: path.to_path_buf(),
    })?;
    // fusermount3 sets fd=, rootmode= (from the mount point's type), user_id= and
    // group_id= (the caller's real ids, which are ours) itself, and drops them if given,
    // so they are not: `options.mode` reaches the kernel through getattr, which with
    // `default_permissions` is what it checks. The others are as for mount(2), with the
    // source `statsfs` and the type `fuse.statsfs` (FSTYPE) in mountinfo.
    let mut opts = String::from(
        "default_permissions,fsname=statsfs,subtype=statsfs,nosuid,nodev,noexec,noatime",
    );
    if options.allow_other {
        // Refused by fusermount3 unless /etc/fuse.conf has `user_allow_other`: its
        // stderr says so, and the error repeats it.
        opts.push_str(",allow_other");
    }
    let run_err = |source| MountError::FusermountRun {
        program: program.clone(),
        source,
    };
    // Both ends close-on-exec (std sets SOCK_CLOEXEC): no other child gets either.
    let (ours, theirs) = UnixStream::pair().map_err(run_err)?;
    let (ours, theirs) = (OwnedFd::from(ours), OwnedFd::from(theirs));
    // Above 2, where the child's stdio goes (try_clone duplicates to 3 or up).
    let theirs = if theirs.as_raw_fd() <= 2 {
        let above = theirs.try_clone().map_err(run_err)?;
        // Only one copy may stay open here, or ours would never see the end of theirs.
        drop(theirs);
        above
    } else {
        theirs
    };
    let mut cmd = Command::new(&program);
    cmd.arg("-o")
        .arg(&opts)
        .arg("--")
        .arg(path)
        .env("_FUSE_COMMFD", theirs.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    sys::inherit_in_child(&mut cmd, &theirs);
    let deadline = Instant::now() + TIMEOUT;
    let mut child = cmd.spawn().map_err(run_err)?;
    // Read from now on: a helper that writes much must not block on a full pipe.
    let stderr = Drain::start(child.stderr.take());
    // Only fusermount3 holds its end now: the socket ends when it exits.
    drop(theirs);
    let received = sys::recv_fd(&ours, deadline.saturating_duration_since(Instant::now()));
    // Ours stays open until fusermount3 has exited: closed early, its `sendmsg` would
    // fail and it would exit leaving its mount behind.
    let finished = finish(&mut child, deadline, stderr);
    drop(ours);
    let (status, stderr) = match finished {
        Ok(f) => f,
        Err(source) => {
            // Killed at the deadline, or not waited for: what it mounted, if anything,
            // goes again.
            drop(received);
            undo(path);
            return Err(run_err(source));
        }
    };
    let fd = match received {
        Ok(sys::Received::Fd(fd)) => fd,
        Ok(sys::Received::Eof) | Err(_) if !status.success() => {
            return Err(MountError::Fusermount {
                path: path.to_path_buf(),
                action: "mount",
                status,
                stderr,
            })
        }
        Ok(sys::Received::Eof) => {
            undo(path);
            return Err(MountError::NoDescriptor {
                path: path.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "it exited without passing one",
                ),
            });
        }
        Err(source) => {
            // Something was passed: what it mounted, if anything, goes again.
            undo(path);
            return Err(MountError::NoDescriptor {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !status.success() {
        drop(fd);
        undo(path);
        return Err(MountError::Fusermount {
            path: path.to_path_buf(),
            action: "mount",
            status,
            stderr,
        });
    }
    // Whatever was passed is checked to be the FUSE device before fuser gets it.
    let file = File::from(fd);
    let is_fuse = file.metadata().is_ok_and(|m| {
        m.file_type().is_char_device() && m.rdev() == libc::makedev(FUSE_MAJOR, FUSE_MINOR) as u64
    });
    if !is_fuse {
        drop(file);
        undo(path);
        return Err(MountError::NoDescriptor {
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                "the descriptor passed is not the FUSE device",
            ),
        });
    }
    Ok(file.into())
}

/// Lazily unmounts the user's own FUSE mount at `path`: `fusermount3 -u -z`.
pub(super) fn unmount(path: &Path) -> Result<(), MountError> {
    let program = find().ok_or_else(|| MountError::NoFusermount {
        path: path.to_path_buf(),
    })?;
    let run_err = |source| MountError::FusermountRun {
        program: program.clone(),
        source,
    };
    let mut child = Command::new(&program)
        .args(["-u", "-z", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(run_err)?;
    let stderr = Drain::start(child.stderr.take());
    let (status, stderr) = finish(&mut child, Instant::now() + TIMEOUT, stderr).map_err(run_err)?;
    if status.success() {
        Ok(())
    } else {
        Err(MountError::Fusermount {
            path: path.to_path_buf(),
            action: "unmount",
            status,
            stderr,
        })
    }
}

/// After a failed mount that may have left one: lazily unmounts what is at `path`
/// (a live mount there was refused before fusermount3 ran, so it is the helper's).
fn undo(path: &Path) {
    if mountinfo::is_mounted(path).unwrap_or(false) {
        if let Err(e) = unmount(path) {
            log::warn!("{}: undoing fusermount3's mount: {e}", path.display());
        }
    }
}

/// How much of the helper's stderr is kept for the error message.
const STDERR_KEPT: usize = 64 << 10;

/// How long, after the helper exited, its stderr is read on for what is left in the pipe:
/// a process it started may hold the pipe open for as long as it likes.
const STDERR_AFTER_EXIT: Duration = Duration::from_millis(200);

/// The helper's stderr, read on a thread of its own from the start (so that the helper
/// never blocks on a full pipe), the first [`STDERR_KEPT`] bytes kept.
struct Drain {
    text: Arc<Mutex<Vec<u8>>>,
    ended: mpsc::Receiver<()>,
}

impl Drain {
    fn start(pipe: Option<ChildStderr>) -> Drain {
        let text = Arc::new(Mutex::new(Vec::new()));
        let (tx, ended) = mpsc::channel();
        let kept = Arc::clone(&text);
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    let mut t = kept.lock().unwrap_or_else(|e| e.into_inner());
                    let room = STDERR_KEPT.saturating_sub(t.len());
                    t.extend_from_slice(&chunk[..n.min(room)]);
                }
                let _ = tx.send(());
            });
        }
        Drain { text, ended }
    }

    /// What was read, once the pipe ended or `until` passed (whichever comes first).
    fn text(self, until: Instant) -> String {
        let _ = self
            .ended
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        let t = self.text.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&t).trim().to_owned()
    }
}

/// Waits for `child` until `deadline` (then kills it: a `TimedOut` error that says what it
/// wrote); its exit status and what it wrote on stderr (`stderr`, at most 64 KiB,
/// trimmed). Returns by the deadline whatever the helper, or a process it started, does
/// with its stderr.
fn finish(child: &mut Child, deadline: Instant, stderr: Drain) -> io::Result<(ExitStatus, String)> {
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let said = stderr.text(Instant::now() + STDERR_AFTER_EXIT);
            let said = if said.is_empty() {
                String::new()
            } else {
                format!("; it said: {said}")
            };
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "it did not exit within {} s; killed{said}",
                    TIMEOUT.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let until = (Instant::now() + STDERR_AFTER_EXIT).min(deadline.max(Instant::now()));
    Ok((status, stderr.text(until)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> (Child, Drain) {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let drain = Drain::start(child.stderr.take());
        (child, drain)
    }

    /// `finish` on a thread: a hang fails the test (after 60 s) instead of hanging it.
    fn finish_within(script: &'static str, deadline: Duration) -> io::Result<(ExitStatus, String)> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut child, drain) = sh(script);
            let _ = tx.send(finish(&mut child, Instant::now() + deadline, drain));
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("finish did not return within 60 s")
    }

    #[test]
    fn a_process_the_helper_left_holding_stderr_does_not_hold_the_caller() {
        let (status, said) = finish_within(
            "echo 'fake: no such mount' >&2; sleep 600 & exit 3",
            TIMEOUT,
        )
        .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(said, "fake: no such mount");
    }

    #[test]
    fn a_helper_that_writes_megabytes_exits_and_its_message_is_kept() {
        let (status, said) = finish_within(
            "echo 'fake: the real reason' >&2; head -c 2000000 /dev/zero | tr '\\0' x >&2; exit 1",
            TIMEOUT,
        )
        .unwrap();
        assert_eq!(status.code(), Some(1));
        assert!(said.starts_with("fake: the real reason"), "{}", &said[..80]);
        assert!(said.len() <= STDERR_KEPT, "{} bytes kept", said.len());
    }

    #[test]
    fn a_helper_that_never_exits_is_killed_at_the_deadline_and_what_it_said_is_told() {
        let e = finish_within(
            "echo 'fake: waiting' >&2; exec sleep 600",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("it said: fake: waiting"), "{e}");
    }
}
