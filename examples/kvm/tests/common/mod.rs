//! Shared by the kvm package's tests: the one skip policy. A test that cannot run on this
//! machine (no `/dev/kvm`, no root or `/dev/fuse` to mount) says so in exactly one line,
//! `SKIPPED: <test>: <reason>`, and returns; `.ci/run` counts it as skipped, not passed.
#![allow(dead_code)]

pub mod debugfs;
pub mod example;
pub mod kernel_fds;

use std::fs::OpenOptions;

use kvm_ioctls::Kvm;

pub use statsfs_testkit::skip;

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
    if let Err(e) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        skip(test, &format!("cannot open /dev/kvm: {e}"));
        return false;
    }
    statsfs_testkit::can_mount(test)
}
