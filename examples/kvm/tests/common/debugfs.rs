//! How the kernel's `kvm_stat` reads debugfs (its `DebugfsProvider`, in its debugfs mode
//! `-d`), written down as rules for the tests; kvm_stat itself is not vendored.
//!
//! * Its **fields** are the names of the files directly in `kvm/` (dot-files included).
//! * Without `-p`, its **paths** are the basenames of every directory at any depth under
//!   `kvm/`; with `-p PID`, the top-level directories whose names contain `PID-`.
//! * For each path and field it reads `kvm/<path>/<field>` with `int(open(...).read())`:
//!   a missing file counts 0, a file that is not one integer crashes it.
//! * Totals are the sums over the paths; the top-level files are only the field list.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// What kvm_stat would show: each field's total, and the paths it summed.
pub struct Reading {
    pub totals: BTreeMap<String, u64>,
    pub paths: Vec<String>,
}

fn names(dir: &Path, dirs: bool) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry"))
        .filter(|e| e.file_type().expect("a file type").is_dir() == dirs)
        .map(|e| e.file_name().into_string().expect("a UTF-8 name"))
        .collect();
    out.sort();
    out
}

/// Every directory's basename at any depth below `dir`, as `os.walk` yields them.
fn basenames(dir: &Path, out: &mut Vec<String>) {
    for d in names(dir, true) {
        basenames(&dir.join(&d), out);
        out.push(d);
    }
}

/// Reads `kvm` as kvm_stat's debugfs provider does, with or without `-p pid`. Panics
/// where kvm_stat would crash: a listed file that is not one integer.
pub fn read(kvm: &Path, pid: Option<u32>) -> Reading {
    let fields = names(kvm, false);
    let paths = match pid {
        Some(pid) => names(kvm, true)
            .into_iter()
            .filter(|d| d.contains(&format!("{pid}-")))
            .collect(),
        None => {
            let mut all = Vec::new();
            basenames(kvm, &mut all);
            all
        }
    };
    let mut totals = BTreeMap::new();
    for field in &fields {
        let mut total = 0u64;
        for path in &paths {
            let file = kvm.join(path).join(field);
            match fs::read_to_string(&file) {
                Ok(text) => {
                    let v: u64 = text.trim().parse().unwrap_or_else(|e| {
                        panic!("kvm_stat would crash on {}: {text:?} ({e})", file.display())
                    });
                    total += v;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => panic!("read {}: {e}", file.display()),
            }
        }
        totals.insert(field.clone(), total);
    }
    Reading { totals, paths }
}
