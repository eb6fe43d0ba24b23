//! The tool's errors: each one line that names the path and says what to do.

use std::io;
use std::path::PathBuf;

use statsfs_binary::ReadError;

/// Why a `statsfs` command failed. `Display` is the one line the tool prints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line is wrong (clap's message, with the usage; feature `tool`).
    #[cfg(feature = "tool")]
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
    #[error(
        "{} is not a statsfs tree: it has neither .tree.stats (a source directory of a \
         statsfs mount) nor .schema (the root of a statsfs mount)",
        path.display()
    )]
    NotStatsfs {
        /// The directory.
        path: PathBuf,
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
    /// A descriptor of another process that was a KVM stats file when listed and is
    /// another file once taken: the process swapped it, and what it holds is not read.
    #[error(
        "{what} was {listed} when listed and is {taken} now that it is taken: the process \
         swapped it, so its numbers are not shown; look again, or ask who runs it"
    )]
    Swapped {
        /// Which descriptor of which process (its name made printable).
        what: String,
        /// What `/proc` listed.
        listed: String,
        /// What was taken (made printable).
        taken: String,
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
    /// A `--filter` that is not a regular expression: the pattern and why (feature
    /// `tool`).
    #[cfg(feature = "tool")]
    #[error("--filter {pattern:?}: {}", last_line(source))]
    Filter {
        /// The pattern given.
        pattern: String,
        /// Why it is not one.
        source: regex::Error,
    },
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
    NoVm(NoVm),
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

/// regex's message draws the pattern over several lines; its last line says why.
#[cfg(feature = "tool")]
fn last_line(e: &regex::Error) -> String {
    let e = e.to_string();
    e.lines()
        .last()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Why `statsfs kvm` found no KVM statistics to read ([`CliError::NoVm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoVm {
    /// `--pid` names no process id.
    BadPid(u32),
    /// The process runs VMs but holds no stats file (KVM makes one only for the process
    /// that owns the VM).
    NoStatsFile {
        /// The process.
        pid: u32,
        /// Its name, made printable.
        comm: String,
        /// How many VMs it runs.
        vms: usize,
    },
    /// The process holds no KVM stats file.
    NotAVmm {
        /// The process.
        pid: u32,
        /// Its name, made printable.
        comm: String,
    },
    /// No process this user may look into holds one; `hidden` could not be looked into.
    NotPermitted {
        /// Processes that could not be looked into.
        hidden: usize,
    },
    /// No process holds a KVM stats file.
    NoneRunning,
}

impl std::fmt::Display for NoVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoVm::BadPid(p) => write!(f, "bad pid {p}"),
            NoVm::NoStatsFile { pid, comm, vms } => write!(
                f,
                "process {pid} ({comm}) runs {vms} VM(s) but holds no KVM stats file, and KVM \
                 makes one only for the process that owns the VM: its statistics cannot \
                 be read this way"
            ),
            NoVm::NotAVmm { pid, comm } => {
                write!(f, "process {pid} ({comm}) holds no KVM stats file")
            }
            NoVm::NotPermitted { hidden } => write!(
                f,
                "no process that this user may look into holds a KVM stats file \
                 ({hidden} processes could not be looked into: run as root)"
            ),
            NoVm::NoneRunning => write!(
                f,
                "no process holds a KVM stats file (no VMM runs, or none opened one)"
            ),
        }
    }
}
