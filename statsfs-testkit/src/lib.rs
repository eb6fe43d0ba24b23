//! # statsfs-testkit
//!
//! Dev-only support shared by every statsfs crate's tests (never a dependency of a
//! library):
//!
//! * the one skip policy ([`skip`]): a test that cannot run on this machine prints
//!   exactly one line `SKIPPED: <test>: <reason>` and returns; `.ci/run` counts the lines
//!   and reports the test as skipped, not passed;
//! * what a test needs from the machine, each a check that skips when it is missing:
//!   [`can_mount`] (FUSE), [`tool`] (a program on `PATH`), [`python`] (python3 with
//!   `prometheus_client`);
//! * [`replay_corpus`]: a fuzzer's corpus through the fuzz target's own checks;
//! * [`fixtures`]: a tree with every kind, unit, histogram, label and escaping case, and a
//!   tree mounted in a temporary directory (re-exported here);
//! * [`load`]: keep-alive and greedy HTTP clients, for the endpoint's fairness tests and
//!   benchmarks;
//! * [`alloc`]: a counting global allocator, for the tests that measure memory.
//!
//! A test binary names it `common` (`use statsfs_testkit as common;`) and its test
//! modules write `common::tree()`, `common::skip(...)`.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod alloc;
pub mod fixtures;
pub mod load;
pub mod otlp;
pub mod prometheus;

pub use fixtures::*;

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Says that `test` does nothing here and why: exactly one line,
/// `SKIPPED: <test>: <reason>`, written to the process's stderr itself (past libtest's
/// capture, which takes `eprintln!`), so that it shows and `.ci/run` counts the test as
/// skipped. The test then returns without checking anything.
pub fn skip(test: &str, reason: &str) {
    // One write of the whole line: stderr is unbuffered, and `writeln!` would write it in
    // pieces, between which libtest's output to stdout (the same pipe in CI) can land.
    let line = format!("SKIPPED: {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The process's effective user id, from `/proc/self/status` (`None` if unreadable).
pub fn euid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
}

/// Whether this process can mount statsfs trees as the tests do (root, which mounts
/// with mount(2), and a read-write `/dev/fuse`); if not, skips `test` and says which is
/// missing.
pub fn can_mount(test: &str) -> bool {
    if let Err(e) = OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        skip(
            test,
            &format!("cannot open /dev/fuse ({e}): FUSE mount tests need it"),
        );
        return false;
    }
    if euid() != Some(0) {
        skip(
            test,
            "FUSE mount tests need root (the tests mount with mount(2))",
        );
        return false;
    }
    true
}

/// `name` on `PATH`; missing, `test` is skipped (see [`skip`]) and this returns `None`.
pub fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let package = match name {
            "promtool" | "prometheus" => "prometheus",
            other => other,
        };
        skip(
            test,
            &format!("`{name}` is not on PATH (apt-get install -y {package}, or bash .ci/setup)"),
        );
    }
    found
}

/// `python3` with `prometheus_client` importable, like [`tool`].
pub fn python(test: &str) -> Option<PathBuf> {
    let py = tool(test, "python3")?;
    let ok = Command::new(&py)
        .args(["-c", "import prometheus_client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Some(py)
    } else {
        skip(
            test,
            "python3 cannot import prometheus_client (pip install prometheus-client, or bash .ci/setup)",
        );
        None
    }
}

/// Runs `program` with `args`, `input` on its standard input; its whole output.
pub fn run_with_input(program: &Path, args: &[&str], input: &str) -> std::process::Output {
    use std::process::Stdio;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    child
        .stdin
        .take()
        .expect("a piped stdin")
        .write_all(input.as_bytes())
        .expect("write the input");
    child.wait_with_output().expect("wait for the child")
}

/// Runs a fuzz target's `check` on every input of the corpus folder `dir`, which must
/// hold at least `min` inputs (so a corpus that went missing fails, not passes); a
/// panic names the input that caused it.
///
/// ```no_run
/// fn check(data: &[u8]) { assert!(data.len() < 1 << 20) }
/// statsfs_testkit::replay_corpus(std::path::Path::new("fuzz/corpus/decode"), 5, check);
/// ```
pub fn replay_corpus(dir: &Path, min: usize, check: fn(&[u8])) {
    let mut n = 0;
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let r = std::panic::catch_unwind(|| check(&data));
        assert!(r.is_ok(), "{} broke a rule", path.display());
        n += 1;
    }
    assert!(n >= min, "only {n} inputs in {}", dir.display());
}
