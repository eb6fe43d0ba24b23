//! Shared by the kvm package's tests: the one skip policy. A test that cannot run on this
//! machine (no `/dev/kvm`, no root or `/dev/fuse` to mount) says so in exactly one line,
//! `SKIPPED: <test>: <reason>`, and returns; `.ci/run` counts it as skipped, not passed.
#![allow(dead_code)]

pub mod debugfs;
pub mod example;
pub mod kernel_fds;

use std::fs::OpenOptions;

use kvm_ioctls::Kvm;

/// Says that `test` does nothing here and why: one line, straight to the process's
/// stderr, which libtest does not capture (it captures `println!` and `eprintln!`).
pub fn skip(test: &str, reason: &str) {
    use std::io::Write as _;
    // One write of the whole line: stderr is unbuffered, and `writeln!` would write it in
    // pieces, between which libtest's output to stdout (the same pipe in CI) can land.
    let line = format!("SKIPPED: {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `/dev/kvm`, or `None` after skipping `test`.
pub fn kvm(test: &str) -> Option<Kvm> {
    match Kvm::new() {
        Ok(kvm) => Some(kvm),
        Err(e) => {
            skip(
                test,
                &format!("cannot open /dev/kvm ({e}): no KVM on this machine"),
            );
            None
        }
    }
}

/// Whether this process can run VMs and mount their stats (read-write `/dev/kvm` and
/// `/dev/fuse`, and root: statsfs mounts with mount(2)); if not, skips `test`.
pub fn can_run_and_mount(test: &str) -> bool {
    for dev in ["/dev/kvm", "/dev/fuse"] {
        if let Err(e) = OpenOptions::new().read(true).write(true).open(dev) {
            skip(test, &format!("cannot open {dev}: {e}"));
            return false;
        }
    }
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        skip(test, "mounting needs root (statsfs mounts with mount(2))");
        return false;
    }
    true
}
