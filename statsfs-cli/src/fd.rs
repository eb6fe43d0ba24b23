//! Descriptors of other processes: the one place the tool takes them
//! (`pidfd_open` + `pidfd_getfd`).

use std::os::fd::{AsFd, OwnedFd, RawFd};

use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};

use super::error::CliError;

/// A duplicate of descriptor `fd` of process `pid` (`pidfd_getfd`; for another process
/// this needs ptrace rights over it: root, or the same user without Yama's restriction).
pub(crate) fn dup_fd(pid: Pid, fd: RawFd) -> Result<OwnedFd, CliError> {
    let what = format!("descriptor {fd} of process {}", pid.as_raw_nonzero());
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).map_err(|e| CliError::Fd {
        what: what.clone(),
        source: e.into(),
    })?;
    pidfd_getfd(pidfd.as_fd(), fd, PidfdGetfdFlags::empty()).map_err(|e| CliError::Fd {
        what,
        source: e.into(),
    })
}
