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

use std::fs::{self, File};
use std::io::Write;

use rustix::process::Pid;

use super::error::CliError;
use super::reader::{dup_fd, Reader};

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
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| "?".into())
}

/// Finds the stats files of `pid` (or of every process), says on `notes` which VMMs
/// hold none, and opens a reader over the rest.
pub(crate) fn open(pid: Option<u32>, notes: &mut dyn Write) -> Result<Reader, CliError> {
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
    // Scanning every process, the tool leaves itself out: the descriptors it duplicates
    // carry the same names and would count twice.
    let own = std::process::id();
    let mut files: Vec<(String, File)> = Vec::new();
    let mut fold_at: Vec<String> = Vec::new();
    let mut vmms = 0;
    let mut unreadable: Option<String> = None;
    // Processes whose descriptors this user may not list (another user's, without root).
    let mut hidden = 0usize;
    for p in pids.into_iter().filter(|&p| pid.is_some() || p != own) {
        let h = match held(p) {
            Ok(h) => h,
            Err(source) if pid.is_some() => {
                return Err(CliError::Open {
                    path: format!("/proc/{p}/fd").into(),
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                hidden += 1;
                continue;
            }
            // A process that ended while scanning.
            Err(_) => continue,
        };
        if h.stats.is_empty() {
            if !h.vm_fds.is_empty() {
                let line = format!(
                    "process {p} ({}) runs {} VM(s) but holds no KVM stats file, and KVM \
                     makes one only for the process that owns the VM: its statistics cannot \
                     be read this way",
                    comm(p),
                    h.vm_fds.len()
                );
                let _ = writeln!(notes, "statsfs kvm: {line}");
                unreadable.get_or_insert(line);
            }
            continue;
        }
        let pid_nz =
            Pid::from_raw(p as i32).ok_or_else(|| CliError::NoVm(format!("bad pid {p}")))?;
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
            match dup_fd(pid_nz, fd) {
                Ok(f) => mine.push((prefix, File::from(f))),
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
            (Some(p), None) => format!("process {p} ({}) holds no KVM stats file", comm(p)),
            (None, _) if hidden > 0 => format!(
                "no process that this user may look into holds a KVM stats file \
                 ({hidden} processes could not be looked into: run as root)"
            ),
            (None, _) => {
                "no process holds a KVM stats file (no VMM runs, or none opened one)".into()
            }
        }));
    }
    fold_at.push("kvm".into());
    let label = match pid {
        Some(p) => format!("KVM stats of process {p} ({})", comm(p)),
        None => format!("KVM stats of {vmms} process(es)"),
    };
    Reader::of_files(files, fold_at, label)
}
