//! `statsfs kvm`: the kernel's KVM statistics of running VMMs, whatever their VMM, read
//! from the binary stats files they hold open: kvm_stat without debugfs or tracefs.
//!
//! A VMM gets a VM's stats file with `KVM_GET_STATS_FD` on the VM, a vCPU's on the vCPU;
//! the kernel names them `anon_inode:kvm-vm-stats` and `anon_inode:kvm-vcpu-stats:N` in
//! `/proc/PID/fd`. The tool duplicates each one into itself with `pidfd_getfd` (ptrace
//! rights over the VMM: root) and reads it like any bulk file. KVM creates stats files
//! only for the process that owns the VM, so a VMM that opened none cannot be read this
//! way; the tool says so, naming the process.
//!
//! The tree it shows: `kvm/` with the folds over every VM and vCPU, `kvm/<pid>-<fd>/` per
//! VM (named as debugfs names them, by the VM's descriptor) with its VM stats and the
//! folds of its vCPUs, `kvm/<pid>-<fd>/vcpu<N>/` per vCPU. The kernel does not say which
//! VM a vCPU's stats file belongs to: a vCPU file is taken to belong to the VM whose stats
//! file has the highest descriptor number below its own (a VMM opens a VM's stats file
//! before its vCPUs'), and VM stats files are matched with VM descriptors in order.
//! Totals over all VMs, and per process, do not depend on that guess.
//!
//! Every [`RESCAN`] (5 s) a running view looks at `/proc` again (with `--pid`, at that
//! process only) and, when the set of stats files changed, takes the new ones and lays the
//! view out anew: VMs started since appear, ended ones go.

use std::fs::{self, File};
use std::io::Write;
use std::time::{Duration, Instant};

use rustix::process::Pid;

use super::error::{CliError, NoVm};
use super::fd::dup_fd;
use super::printable::printable;

/// What one process holds.
#[derive(Debug, Default)]
struct Held {
    vm_fds: Vec<i32>,
    /// `(descriptor, None)` for a VM's stats file, `(descriptor, Some(n))` for vCPU n's.
    stats: Vec<(i32, Option<u32>)>,
}

fn held(pid: u32) -> std::io::Result<Held> {
    let mut h = Held::default();
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let entry = entry?;
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(link) = fs::read_link(entry.path()) else {
            continue;
        };
        let link = link.to_string_lossy();
        let Some(name) = link.strip_prefix("anon_inode:") else {
            continue;
        };
        if name == "kvm-vm" {
            h.vm_fds.push(fd);
        } else if name == "kvm-vm-stats" {
            h.stats.push((fd, None));
        } else if let Some(n) = name.strip_prefix("kvm-vcpu-stats:") {
            if let Ok(n) = n.parse() {
                h.stats.push((fd, Some(n)));
            }
        }
    }
    h.vm_fds.sort_unstable();
    h.stats.sort_unstable();
    Ok(h)
}

fn comm(pid: u32) -> String {
    // Any process may name itself anything (`prctl(PR_SET_NAME)`): escape sequences too.
    fs::read(format!("/proc/{pid}/comm"))
        .map(|s| printable(String::from_utf8_lossy(&s).trim_end()).into_owned())
        .unwrap_or_else(|_| "?".into())
}

/// How often a long-running `statsfs kvm` looks for VMs started or ended.
pub(crate) const RESCAN: Duration = Duration::from_secs(5);

/// One stats file a VMM holds: `(pid, descriptor, vCPU number or None for a VM's)`.
type HeldFile = (u32, i32, Option<u32>);

/// What `/proc` shows: every process with KVM descriptors, and how many processes could
/// not be looked into.
struct Scan {
    found: Vec<(u32, Held)>,
    hidden: usize,
}

/// Reads `/proc/PID/fd` of `pid`, or of every process but this one (the descriptors this
/// tool duplicates carry the same names and would count twice).
fn scan(pid: Option<u32>) -> Result<Scan, CliError> {
    let pids: Vec<u32> = match pid {
        Some(p) => vec![p],
        None => {
            let mut v: Vec<u32> = fs::read_dir("/proc")
                .map_err(|source| CliError::Open {
                    path: "/proc".into(),
                    source,
                })?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            v.sort_unstable();
            v
        }
    };
    let own = std::process::id();
    let mut out = Scan {
        found: Vec::new(),
        hidden: 0,
    };
    for p in pids.into_iter().filter(|&p| pid.is_some() || p != own) {
        match held(p) {
            Ok(h) if h.stats.is_empty() && h.vm_fds.is_empty() => {}
            Ok(h) => out.found.push((p, h)),
            Err(source) if pid.is_some() => {
                return Err(CliError::Open {
                    path: format!("/proc/{p}/fd").into(),
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => out.hidden += 1,
            // A process that ended while scanning.
            Err(_) => {}
        }
    }
    Ok(out)
}

impl Scan {
    /// Every stats file found, in order: what changes when a VM starts or ends.
    fn signature(&self) -> Vec<HeldFile> {
        self.found
            .iter()
            .flat_map(|(p, h)| h.stats.iter().map(move |&(fd, vcpu)| (*p, fd, vcpu)))
            .collect()
    }
}

/// The files to read, where each goes, and what to fold.
pub(crate) struct Found {
    /// `(source path, file)`.
    pub files: Vec<(String, File)>,
    /// The sources that fold their subtrees, deepest first.
    pub fold_at: Vec<String>,
    vmms: usize,
}

/// Duplicates the stats files `scan` found and places them in the tree; says on `notes`
/// which VMMs hold none.
fn take(scan: &Scan, pid: Option<u32>, notes: &mut dyn Write) -> Result<Found, CliError> {
    let mut files: Vec<(String, File)> = Vec::new();
    let mut fold_at: Vec<String> = Vec::new();
    let mut vmms = 0;
    let mut unreadable: Option<NoVm> = None;
    let mut hidden = scan.hidden;
    for (p, h) in &scan.found {
        let p = *p;
        if h.stats.is_empty() {
            let line = NoVm::NoStatsFile {
                pid: p,
                comm: comm(p),
                vms: h.vm_fds.len(),
            };
            let _ = writeln!(notes, "statsfs kvm: {line}");
            unreadable.get_or_insert(line);
            continue;
        }
        let pid_nz = Pid::from_raw(p as i32).ok_or(CliError::NoVm(NoVm::BadPid(p)))?;
        let vm_stats = h.stats.iter().filter(|s| s.1.is_none()).count();
        let (mut mine, folds_before) = (Vec::new(), fold_at.len());
        let mut vm: Option<String> = None;
        let mut k = 0;
        for &(fd, vcpu) in &h.stats {
            let prefix = match vcpu {
                None => {
                    let name = match (h.vm_fds.len() == vm_stats).then(|| h.vm_fds[k]) {
                        Some(vmfd) => format!("{p}-{vmfd}"),
                        None => format!("{p}-vm{k}"),
                    };
                    k += 1;
                    let path = format!("kvm/{name}");
                    fold_at.push(path.clone());
                    vm = Some(path.clone());
                    path
                }
                Some(n) => {
                    let parent = vm.get_or_insert_with(|| {
                        let path = format!("kvm/{p}");
                        fold_at.push(path.clone());
                        path
                    });
                    format!("{parent}/vcpu{n}")
                }
            };
            match dup_fd(pid_nz, fd).and_then(|f| checked(f, p, fd, vcpu)) {
                Ok(f) => mine.push((prefix, f)),
                // A descriptor swapped between the listing and the taking: reported,
                // not read, whether one process was asked for or every one.
                Err(e @ CliError::Swapped { .. }) => {
                    if pid.is_some() {
                        return Err(e);
                    }
                    let _ = writeln!(notes, "statsfs kvm: {}", printable(&e.to_string()));
                    mine.clear();
                    break;
                }
                Err(e) if pid.is_some() => return Err(e),
                // Scanning: a process that ended, or one we may not take from, is left out.
                Err(_) => {
                    hidden += 1;
                    mine.clear();
                    break;
                }
            }
        }
        if mine.is_empty() {
            fold_at.truncate(folds_before);
            continue;
        }
        files.append(&mut mine);
        vmms += 1;
    }
    if files.is_empty() {
        return Err(CliError::NoVm(match (pid, unreadable) {
            (Some(_), Some(line)) => line,
            (Some(p), None) => NoVm::NotAVmm {
                pid: p,
                comm: comm(p),
            },
            (None, _) if hidden > 0 => NoVm::NotPermitted { hidden },
            (None, _) => NoVm::NoneRunning,
        }));
    }
    fold_at.push("kvm".into());
    Ok(Found {
        files,
        fold_at,
        vmms,
    })
}

/// `taken`, duplicated from descriptor `fd` of process `pid`, if it is what the listing
/// said (`/proc/PID/fd` is read before the descriptor is taken, and the process may have
/// put another file under that number meanwhile): the kernel's name of the file this
/// process now holds, which no other process can change, must be the KVM stats file's.
fn checked(
    taken: std::os::fd::OwnedFd,
    pid: u32,
    fd: i32,
    vcpu: Option<u32>,
) -> Result<File, CliError> {
    use std::os::fd::AsRawFd;
    let want = match vcpu {
        None => "anon_inode:kvm-vm-stats".to_owned(),
        Some(n) => format!("anon_inode:kvm-vcpu-stats:{n}"),
    };
    let is = fs::read_link(format!("/proc/self/fd/{}", taken.as_raw_fd()))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    if is != want {
        return Err(CliError::Swapped {
            what: format!("descriptor {fd} of process {pid} ({})", comm(pid)),
            listed: want,
            taken: printable(&is).into_owned(),
        });
    }
    Ok(File::from(taken))
}

/// Looks again, every [`RESCAN`], for VMs that started or ended.
#[derive(Debug)]
pub(crate) struct Watch {
    pid: Option<u32>,
    signature: Vec<HeldFile>,
    next: Instant,
}

impl Watch {
    /// The files to read now, when they are not those of the last look; `None` when
    /// nothing changed or it is not yet time to look.
    pub fn check(&mut self) -> Result<Option<Found>, CliError> {
        let now = Instant::now();
        if now < self.next {
            return Ok(None);
        }
        self.next = now + RESCAN;
        let scan = scan(self.pid)?;
        let signature = scan.signature();
        if signature == self.signature {
            return Ok(None);
        }
        let found = take(&scan, self.pid, &mut std::io::sink())?;
        self.signature = signature;
        Ok(Some(found))
    }
}

/// Finds the stats files of `pid` (or of every process) and says on `notes` which VMMs
/// hold none: the files, what the reader shows them as, and the watch that looks again
/// for VMs started or ended every [`RESCAN`] (`Reader::kvm` opens them).
pub(crate) fn find(
    pid: Option<u32>,
    notes: &mut dyn Write,
) -> Result<(Found, String, Watch), CliError> {
    let scan = scan(pid)?;
    let found = take(&scan, pid, notes)?;
    let label = match pid {
        Some(p) => format!("KVM stats of process {p} ({})", comm(p)),
        None => format!("KVM stats of {} process(es)", found.vmms),
    };
    let watch = Watch {
        pid,
        signature: scan.signature(),
        next: Instant::now() + RESCAN,
    };
    Ok((found, label, watch))
}
