//! The kernel's own statistics of another process, read from the binary stats files it
//! holds open: found through `/proc/PID/fd` links named `anon_inode:kvm-vm-stats` and
//! `anon_inode:kvm-vcpu-stats:N`, duplicated with `pidfd_getfd` (needs root).

use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use statsfs::binary::Blob;

/// Every VM and vCPU stats file `pid` holds, decoded: `(link name, blob)`.
pub fn kernel_blobs(pid: u32) -> Vec<(String, Blob)> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the descriptor was just returned to us and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as libc::c_int) };
    let mut out = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).expect("list /proc/PID/fd") {
        let entry = entry.expect("an fd entry");
        let Ok(link) = fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        if !link.starts_with("anon_inode:kvm-vm-stats")
            && !link.starts_with("anon_inode:kvm-vcpu-stats")
        {
            continue;
        }
        let fd: libc::c_int = entry.file_name().to_string_lossy().parse().expect("an fd");
        // SAFETY: pidfd_getfd takes a pidfd, a descriptor number of that process and
        // flags, and returns a new descriptor of ours or -1.
        let ours = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
        assert!(
            ours >= 0,
            "pidfd_getfd({fd}): {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: as above: a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(ours as libc::c_int) };
        let blob = Blob::read(&file).unwrap_or_else(|e| panic!("read {link}: {e}"));
        out.push((link, blob));
    }
    out
}
