//! The tool's errors: each one line that names the path and says what to do.

use std::io;
use std::path::PathBuf;

use statsfs_binary::ReadError;

/// Why a `statsfs` command failed. `Display` is the one line the tool prints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line is wrong (clap's message, with the usage).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// A path that cannot be opened.
    #[error("{}: {source}{}", path.display(), open_hint(source))]
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A shared region that cannot be read: not one, corrupted, or its layout kept
    /// changing.
    #[error("region {}: {source}", path.display())]
    Region {
        /// The region's file.
        path: PathBuf,
        /// Why.
        source: statsfs_region::RegionError,
    },
    /// A directory that is not part of a statsfs mount.
    #[error("{} is not a statsfs tree: {why}", path.display())]
    NotStatsfs {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        why: String,
    },
    /// A file that is not a bulk stats file, or is cut short: which check failed, at
    /// which byte.
    #[error("{what} is not a readable bulk stats file: {source}")]
    Read {
        /// The file.
        what: String,
        /// The check that failed, or the read error.
        source: ReadError,
    },
    /// `fd:N` with something that is not a descriptor number.
    #[error("{0}: not a descriptor; write fd:N with N the number of an open descriptor, as in `statsfs top fd:3 3<file`")]
    BadFd(String),
    /// A descriptor that cannot be duplicated.
    #[error("cannot take {what}: {source}{}", fd_hint(source))]
    Fd {
        /// Which descriptor of which process.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// A `--filter` that is not a regular expression: the pattern and why.
    #[error("--filter {0}")]
    Filter(String),
    /// A `--source` that the tree does not have.
    #[error("no source {wanted:?} in {label}; its sources: {have}")]
    NoSource {
        /// The source asked for.
        wanted: String,
        /// What was read.
        label: String,
        /// Some of the sources there are.
        have: String,
    },
    /// `statsfs kvm` found nothing to read.
    #[error("{0}")]
    NoVm(String),
    /// Writing the output failed (a closed pipe is not an error: the tool just stops).
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    /// The terminal could not be set up or drawn.
    #[error("terminal: {0}; for scripts use --once, --log or --csv")]
    Terminal(io::Error),
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (a statsfs mount lets in only the user who mounted it unless it was mounted \
             with allow_other: run as that user)"
        }
        io::ErrorKind::NotFound => {
            " (give a statsfs mount, one of its directories, or a bulk stats file)"
        }
        _ => "",
    }
}

fn fd_hint(e: &io::Error) -> &'static str {
    use rustix::io::Errno;
    match Errno::from_io_error(e) {
        Some(Errno::PERM | Errno::ACCESS) => {
            " (taking another process's descriptors needs ptrace rights over it: run as root)"
        }
        Some(Errno::SRCH) => " (no such process)",
        Some(Errno::BADF) => " (no such descriptor)",
        _ => "",
    }
}
