//! Bad inputs to the mount, one table row each (`docs/HARDENING.md#bad-inputs-to-the-mount`),
//! and the security defaults (`docs/HARDENING.md#security-defaults`).
//!
//! Every row runs against a real mount of `common::tree()` and checks two things: what
//! the call returned (success or its errno), and which values of the whole tree changed,
//! read through the API before and after (`Source::get` of every value of every source,
//! hidden ones included), not only the file the row touched. A table's failures are
//! collected and reported together, each with its row's name.
//!
//! Every call of a row runs on a thread with a deadline, and every child process (the
//! rows run as another user, through `setpriv`) is killed and the test failed if it does
//! not exit in time: a regression fails, it does not hang.
//!
//! Needs root and /dev/fuse; without them every test says SKIPPED (`common::skip`).

use crate::common;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use statsfs::binary::Blob;
use statsfs::vfs::MountOptions;
use statsfs::Source;

use common::{can_mount, errno, mounted, write_once};

/// A clearable value (0644): vcpu0's exits, 10.
const VALUE: &str = "kvm/1234-5/vcpu0/exits";
/// A value that cannot be cleared (0444): vcpu0's pending interrupts, 3.
const READ_ONLY: &str = "kvm/1234-5/vcpu0/pending_irqs";
const VCPU: &str = "kvm/1234-5/vcpu0";
const VM: &str = "kvm/1234-5";
const TREE_BULK: &str = "kvm/1234-5/.tree.stats";
/// What clearing [`VALUE`] changes: it, and the two sums over it.
const CLEARED: &[&str] = &["kvm/1234-5/exits", "kvm/1234-5/vcpu0/exits", "kvm/exits"];
/// How long one row's call may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// Every value of the tree below `root` (hidden sources and values too), read through
/// the API: `path/name` → its words.
fn snapshot(root: &Source) -> BTreeMap<String, Vec<u64>> {
    fn walk(s: &Source, path: String, out: &mut BTreeMap<String, Vec<u64>>) {
        let mut names = Vec::new();
        s.for_each_descriptor(|d, _, _, _| names.push(d.name));
        for n in names {
            let v = s.get(n).unwrap_or_else(|e| panic!("{path}/{n}: {e}"));
            out.insert(format!("{path}/{n}"), v.words().to_vec());
        }
        for c in s.subordinates() {
            let p = format!("{path}/{}", c.name());
            walk(&c, p, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root.name().to_owned(), &mut out);
    out
}

/// The names whose values differ between two snapshots.
fn changed(before: &BTreeMap<String, Vec<u64>>, after: &BTreeMap<String, Vec<u64>>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// Puts back what a row that clears [`VALUE`] cleared.
fn restore(t: &common::Tree) {
    let exits = &t.vcpus[0].exits;
    if exits.get() == 0 {
        exits.add(10);
    }
    assert_eq!(exits.get(), 10, "vcpu0/exits is neither 10 nor 0");
}

/// Runs `f` on a thread; fails the test if it has not returned within [`DEADLINE`].
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: not done within {DEADLINE:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked (see above)"),
    }
}

fn show(r: &Result<(), i32>) -> String {
    match r {
        Ok(()) => "success".to_owned(),
        Err(e) => format!("{} ({e})", io::Error::from_raw_os_error(*e)),
    }
}

/// One bad input: a call on the mount (given the mount's root), what it returns, and the
/// values it changes (none, for almost every row).
struct Row {
    name: &'static str,
    op: fn(&Path) -> io::Result<()>,
    want: Result<(), i32>,
    changes: &'static [&'static str],
}

const fn row(name: &'static str, op: fn(&Path) -> io::Result<()>, want: i32) -> Row {
    Row {
        name,
        op,
        want: if want == 0 { Ok(()) } else { Err(want) },
        changes: &[],
    }
}

const fn clears(name: &'static str, op: fn(&Path) -> io::Result<()>) -> Row {
    Row {
        name,
        op,
        want: Ok(()),
        changes: CLEARED,
    }
}

/// Runs every row against the mount at `m` of the tree `t`; panics naming every row that
/// did not do what it says.
fn run(test: &str, t: &common::Tree, m: &Path, rows: &[Row]) {
    let mut failures = Vec::new();
    for row in rows {
        restore(t);
        let before = snapshot(&t.root);
        let (op, path) = (row.op, m.to_path_buf());
        let got = within(row.name, move || op(&path));
        let as_wanted = match (&got, row.want) {
            (Ok(()), Ok(())) => true,
            (Err(e), Err(want)) => e.raw_os_error() == Some(want),
            _ => false,
        };
        if !as_wanted {
            let got = got.map_or_else(|e| e.to_string(), |()| "success".to_owned());
            failures.push(format!(
                "`{}`: want {}, got {got}",
                row.name,
                show(&row.want)
            ));
        }
        let diff = changed(&before, &snapshot(&t.root));
        if diff != row.changes {
            failures.push(format!(
                "`{}`: want changed {:?}, got changed {diff:?}",
                row.name, row.changes
            ));
        }
    }
    restore(t);
    assert!(
        failures.is_empty(),
        "{test}: {} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// One `write(2)` of all of `data` to `p` opened write-only; a short write is an error.
fn write_all_once(p: &Path, data: &[u8]) -> io::Result<()> {
    let n = write_once(p, data)?;
    if n != data.len() {
        return Err(io::Error::other(format!(
            "short write: {n} of {}",
            data.len()
        )));
    }
    Ok(())
}

fn value_write(m: &Path, data: &[u8]) -> io::Result<()> {
    write_all_once(&m.join(VALUE), data)
}

fn pwrite(p: &Path, data: &[u8], offset: u64) -> io::Result<()> {
    let n = OpenOptions::new()
        .write(true)
        .open(p)?
        .write_at(data, offset)?;
    if n != data.len() {
        return Err(io::Error::other(format!(
            "short write: {n} of {}",
            data.len()
        )));
    }
    Ok(())
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A libc call's `-1` as the errno.
fn check(r: libc::c_long) -> io::Result<()> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A path outside the mount, in the same directory as the mount point's (`/tmp`).
fn outside(m: &Path, what: &str) -> PathBuf {
    let name = format!(
        "{}.{what}",
        m.file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches('.')
    );
    m.parent().unwrap().join(name)
}

#[test]
fn writes_to_a_value_file() {
    if !can_mount("writes_to_a_value_file") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let rows = [
        clears("`0`", |m| value_write(m, b"0")),
        clears("`0\\n`", |m| value_write(m, b"0\n")),
        row("`1`", |m| value_write(m, b"1"), libc::EINVAL),
        row("`-0`", |m| value_write(m, b"-0"), libc::EINVAL),
        row("`+0`", |m| value_write(m, b"+0"), libc::EINVAL),
        row("`0x0`", |m| value_write(m, b"0x0"), libc::EINVAL),
        row("` 0`", |m| value_write(m, b" 0"), libc::EINVAL),
        row("`00`", |m| value_write(m, b"00"), libc::EINVAL),
        row("`0 `", |m| value_write(m, b"0 "), libc::EINVAL),
        row("`0\\r\\n`", |m| value_write(m, b"0\r\n"), libc::EINVAL),
        row("`0\\0`", |m| value_write(m, b"0\0"), libc::EINVAL),
        row("`0\\n0\\n`", |m| value_write(m, b"0\n0\n"), libc::EINVAL),
        row("empty write", |m| value_write(m, b""), 0),
        row(
            "1 MiB of `0`",
            |m| value_write(m, &vec![b'0'; 1 << 20]),
            libc::EINVAL,
        ),
        clears("pwrite `0` at offset 1", |m| {
            pwrite(&m.join(VALUE), b"0", 1)
        }),
        clears("pwrite `0` at offset 4096", |m| {
            pwrite(&m.join(VALUE), b"0", 4096)
        }),
        clears("O_APPEND write `0`", |m| {
            OpenOptions::new()
                .append(true)
                .open(m.join(VALUE))?
                .write_all(b"0")
        }),
        row(
            "open O_TRUNC, no write",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(m.join(VALUE))
                    .map(drop)
            },
            0,
        ),
        row(
            "ftruncate to 0",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join(VALUE))?
                    .set_len(0)
            },
            0,
        ),
        row(
            "ftruncate to 5",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join(VALUE))?
                    .set_len(5)
            },
            libc::EINVAL,
        ),
        row(
            "truncate(2) to 4096",
            |m| {
                // SAFETY: a valid NUL-terminated path.
                check(unsafe { libc::truncate(cstr(&m.join(VALUE)).as_ptr(), 4096) }.into())
            },
            libc::EINVAL,
        ),
    ];
    run("writes_to_a_value_file", &t, m.path(), &rows);
}

#[test]
fn read_only_files_refuse_writers_even_root() {
    if !can_mount("read_only_files_refuse_writers_even_root") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let rows = [
        row(
            "open O_WRONLY a 0444 value",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join(READ_ONLY))
                    .map(drop)
            },
            libc::EACCES,
        ),
        row(
            "open O_RDWR a 0444 value",
            |m| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(m.join(READ_ONLY))
                    .map(drop)
            },
            libc::EACCES,
        ),
        row(
            "open O_WRONLY|O_TRUNC a 0444 value (`echo 0 >`)",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(m.join(READ_ONLY))
                    .map(drop)
            },
            libc::EACCES,
        ),
        row(
            "truncate(2) a 0444 value to 0",
            |m| {
                // SAFETY: a valid NUL-terminated path.
                check(unsafe { libc::truncate(cstr(&m.join(READ_ONLY)).as_ptr(), 0) }.into())
            },
            libc::EACCES,
        ),
        row(
            "access(W_OK) of a 0444 value, as root (says yes: root bypasses modes)",
            |m| {
                // SAFETY: a valid NUL-terminated path.
                check(unsafe { libc::access(cstr(&m.join(READ_ONLY)).as_ptr(), libc::W_OK) }.into())
            },
            0,
        ),
        row(
            "open O_WRONLY a block source's value (0444)",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join(VM).join("pages"))
                    .map(drop)
            },
            libc::EACCES,
        ),
        row(
            "open O_WRONLY a histogram's `.buckets` (0444)",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join(VCPU).join("exit_latency_ns.buckets"))
                    .map(drop)
            },
            libc::EACCES,
        ),
        row(
            "open O_WRONLY the catalogue `.schema` (0444)",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .open(m.join(".schema"))
                    .map(drop)
            },
            libc::EACCES,
        ),
        row(
            "open O_WRONLY a directory",
            |m| OpenOptions::new().write(true).open(m.join(VCPU)).map(drop),
            libc::EISDIR,
        ),
    ];
    run(
        "read_only_files_refuse_writers_even_root",
        &t,
        m.path(),
        &rows,
    );
}

/// One selection written to a bulk file on which `*/exits` was selected before.
struct Selection {
    name: &'static str,
    input: fn() -> Vec<u8>,
    /// Where to `pwrite` it (`None`: `write`).
    offset: Option<u64>,
    want: Result<(), i32>,
    /// The stats a read of the file holds afterwards; `None`: every stat.
    after: Option<&'static [&'static str]>,
}

/// What `*/exits` selects: the selection in force when a bad one is refused.
const KEPT: Option<&[&str]> = Some(&["vcpu0/exits"]);

fn sel(
    name: &'static str,
    input: fn() -> Vec<u8>,
    want: i32,
    after: Option<&'static [&'static str]>,
) -> Selection {
    Selection {
        name,
        input,
        offset: None,
        want: if want == 0 { Ok(()) } else { Err(want) },
        after,
    }
}

fn padded(len: usize) -> Vec<u8> {
    let mut v = b"pages".to_vec();
    v.resize(len, b' ');
    v
}

#[test]
fn selections_written_to_a_bulk_file() {
    if !can_mount("selections_written_to_a_bulk_file") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let bulk = m.path().join(TREE_BULK);
    let all = Blob::decode(&fs::read(&bulk).unwrap())
        .unwrap()
        .descriptors()
        .len();
    let rows = [
        sel("empty write", Vec::new, 0, KEPT),
        sel(
            "white space and commas only",
            || b" \n,\t".to_vec(),
            0,
            None,
        ),
        sel(
            "`no_such_stat`",
            || b"no_such_stat".to_vec(),
            libc::EINVAL,
            KEPT,
        ),
        sel(
            "glob matching nothing `zz*`",
            || b"zz*".to_vec(),
            libc::EINVAL,
            KEPT,
        ),
        sel(
            "invalid UTF-8",
            || vec![b'p', 0xff, 0xfe],
            libc::EINVAL,
            KEPT,
        ),
        sel(
            "with NUL `pages\\0`",
            || b"pages\0".to_vec(),
            libc::EINVAL,
            KEPT,
        ),
        sel(
            "with a control character",
            || b"pa\x07ges".to_vec(),
            libc::EINVAL,
            KEPT,
        ),
        sel(
            "64 KiB (the limit)",
            || padded(64 * 1024),
            0,
            Some(&["pages"]),
        ),
        sel("64 KiB + 1", || padded(64 * 1024 + 1), libc::EINVAL, KEPT),
        sel("1 MiB", || padded(1 << 20), libc::EINVAL, KEPT),
        sel(
            "one pattern matching, one not",
            || b"pages no_such".to_vec(),
            0,
            Some(&["pages"]),
        ),
        sel("`pages\\n`", || b"pages\n".to_vec(), 0, Some(&["pages"])),
        Selection {
            name: "pwrite `pages` at offset 100",
            input: || b"pages".to_vec(),
            offset: Some(100),
            want: Ok(()),
            after: Some(&["pages"]),
        },
    ];
    let mut failures = Vec::new();
    for row in &rows {
        let before = snapshot(&t.root);
        let (path, input, offset) = (bulk.clone(), row.input, row.offset);
        let (got, names) = within(row.name, move || {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            f.write_all(b"*/exits").unwrap();
            let data = input();
            let got = match offset {
                Some(at) => f.write_at(&data, at),
                None => f.write(&data),
            };
            let got = match got {
                Ok(n) if n == data.len() => Ok(()),
                Ok(n) => panic!("short write: {n} of {}", data.len()),
                Err(e) => Err(e.raw_os_error().unwrap()),
            };
            f.seek(SeekFrom::Start(0)).unwrap();
            let mut blob = Vec::new();
            f.read_to_end(&mut blob).unwrap();
            let names: Vec<String> = Blob::decode(&blob)
                .unwrap()
                .descriptors()
                .iter()
                .map(|d| d.name.clone())
                .collect();
            (got, names)
        });
        if got != row.want {
            failures.push(format!(
                "`{}`: want {}, got {}",
                row.name,
                show(&row.want),
                show(&got)
            ));
        }
        let ok = match row.after {
            Some(want) => names == want,
            None => names.len() == all,
        };
        if !ok {
            failures.push(format!(
                "`{}`: want {:?} selected after, got {names:?}",
                row.name,
                row.after.map_or(format!("all {all}"), |w| format!("{w:?}"))
            ));
        }
        let diff = changed(&before, &snapshot(&t.root));
        if !diff.is_empty() {
            failures.push(format!("`{}`: changed {diff:?}", row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn the_namespace_cannot_be_changed() {
    if !can_mount("the_namespace_cannot_be_changed") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let rows = [
        row(
            "mkdir a new name",
            |m| fs::create_dir(m.join(VM).join("new")),
            libc::EPERM,
        ),
        row(
            "mkdir in the mount's root",
            |m| fs::create_dir(m.join("new")),
            libc::EPERM,
        ),
        row(
            "mkdir an existing name",
            |m| fs::create_dir(m.join(VCPU)),
            libc::EEXIST,
        ),
        row(
            "rmdir a source",
            |m| fs::remove_dir(m.join(VCPU)),
            libc::EPERM,
        ),
        row(
            "rmdir a value",
            |m| fs::remove_dir(m.join(VALUE)),
            libc::ENOTDIR,
        ),
        row("rmdir the mount point", |m| fs::remove_dir(m), libc::EBUSY),
        row(
            "unlink a value",
            |m| fs::remove_file(m.join(VALUE)),
            libc::EPERM,
        ),
        row(
            "unlink `.stats`",
            |m| fs::remove_file(m.join(VM).join(".stats")),
            libc::EPERM,
        ),
        row(
            "unlink a source",
            |m| fs::remove_file(m.join(VCPU)),
            libc::EISDIR,
        ),
        row(
            "rename a value within",
            |m| fs::rename(m.join(VALUE), m.join(VCPU).join("x")),
            libc::EPERM,
        ),
        row(
            "rename a value onto another",
            |m| fs::rename(m.join(VALUE), m.join(READ_ONLY)),
            libc::EPERM,
        ),
        row(
            "rename a source within",
            |m| fs::rename(m.join(VCPU), m.join(VM).join("vcpu7")),
            libc::EPERM,
        ),
        row(
            "rename a value out of the mount",
            |m| fs::rename(m.join(VALUE), outside(m, "out")),
            libc::EXDEV,
        ),
        row(
            "rename a source out of the mount",
            |m| fs::rename(m.join(VCPU), outside(m, "out")),
            libc::EXDEV,
        ),
        row(
            "rename a file into the mount",
            |m| {
                let f = outside(m, "in");
                fs::write(&f, b"0")?;
                let r = fs::rename(&f, m.join(VM).join("in"));
                fs::remove_file(&f)?;
                r
            },
            libc::EXDEV,
        ),
        row(
            "link within",
            |m| fs::hard_link(m.join(VALUE), m.join(VCPU).join("x")),
            libc::EPERM,
        ),
        row(
            "link out of the mount",
            |m| fs::hard_link(m.join(VALUE), outside(m, "link")),
            libc::EXDEV,
        ),
        row(
            "symlink",
            |m| std::os::unix::fs::symlink("exits", m.join(VCPU).join("x")),
            libc::EPERM,
        ),
        row(
            "O_CREAT of a new name",
            |m| File::create(m.join(VCPU).join("x")).map(drop),
            libc::EPERM,
        ),
        row(
            "O_CREAT|O_EXCL of an existing name",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(m.join(VALUE))
                    .map(drop)
            },
            libc::EEXIST,
        ),
        row(
            "mkfifo",
            |m| {
                let p = cstr(&m.join(VCPU).join("fifo"));
                // SAFETY: a valid NUL-terminated path.
                check(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }.into())
            },
            libc::EPERM,
        ),
    ];
    run("the_namespace_cannot_be_changed", &t, m.path(), &rows);
    for what in ["out", "in", "link"] {
        let p = outside(m.path(), what);
        assert!(!p.exists(), "{} was left behind", p.display());
    }
}

fn getxattr(p: &Path, name: &std::ffi::CStr) -> io::Result<()> {
    let mut buf = [0u8; 64];
    // SAFETY: valid NUL-terminated strings, and `buf` is writable for its length.
    let r = unsafe {
        libc::getxattr(
            cstr(p).as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    check(r as libc::c_long)
}

#[test]
fn attributes_and_extended_attributes() {
    if !can_mount("attributes_and_extended_attributes") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let rows = [
        row(
            "chmod a value",
            |m| fs::set_permissions(m.join(VALUE), fs::Permissions::from_mode(0o666)),
            libc::EPERM,
        ),
        row(
            "chmod a source",
            |m| fs::set_permissions(m.join(VCPU), fs::Permissions::from_mode(0o777)),
            libc::EPERM,
        ),
        row(
            "chown a value (to its own owner)",
            |m| {
                let md = fs::metadata(m.join(VALUE))?;
                std::os::unix::fs::chown(m.join(VALUE), Some(md.uid()), Some(md.gid()))
            },
            libc::EPERM,
        ),
        row(
            "utimes a value (accepted, ignored)",
            |m| {
                let f = File::open(m.join(VALUE))?;
                f.set_modified(std::time::SystemTime::UNIX_EPOCH)
            },
            0,
        ),
        row(
            "setxattr",
            |m| {
                // SAFETY: valid NUL-terminated strings and a 1-byte value.
                let r = unsafe {
                    libc::setxattr(
                        cstr(&m.join(VALUE)).as_ptr(),
                        c"user.x".as_ptr(),
                        b"1".as_ptr().cast(),
                        1,
                        0,
                    )
                };
                check(r.into())
            },
            libc::EPERM,
        ),
        row(
            "removexattr",
            |m| {
                // SAFETY: valid NUL-terminated strings.
                let r =
                    unsafe { libc::removexattr(cstr(&m.join(VALUE)).as_ptr(), c"user.x".as_ptr()) };
                check(r.into())
            },
            libc::EPERM,
        ),
        row(
            "getxattr",
            |m| getxattr(&m.join(VALUE), c"user.x"),
            libc::ENODATA,
        ),
        row(
            "getxattr of a source",
            |m| getxattr(&m.join(VCPU), c"user.x"),
            libc::ENODATA,
        ),
        row(
            "getxattr `system.posix_acl_access` (what `ls -l` asks)",
            |m| getxattr(&m.join(VALUE), c"system.posix_acl_access"),
            libc::ENODATA,
        ),
        row(
            "getxattr `security.selinux`",
            |m| getxattr(&m.join(VALUE), c"security.selinux"),
            libc::ENODATA,
        ),
        row(
            "listxattr (empty list)",
            |m| {
                let mut buf = [0u8; 64];
                // SAFETY: a valid NUL-terminated path; `buf` is writable for its length.
                let n = unsafe {
                    libc::listxattr(
                        cstr(&m.join(VALUE)).as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                check(n as libc::c_long)?;
                if n != 0 {
                    return Err(io::Error::other(format!("{n} bytes of names")));
                }
                Ok(())
            },
            0,
        ),
    ];
    run("attributes_and_extended_attributes", &t, m.path(), &rows);
}

fn map(p: &Path, write: bool, prot: i32, flags: i32) -> io::Result<()> {
    let f = OpenOptions::new().read(true).write(write).open(p)?;
    // SAFETY: a fresh mapping of 4096 bytes of an open file, chosen by the kernel, not
    // touched here, and unmapped at once.
    unsafe {
        let addr = libc::mmap(std::ptr::null_mut(), 4096, prot, flags, f.as_raw_fd(), 0);
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        libc::munmap(addr, 4096);
    }
    Ok(())
}

#[test]
fn mappings_and_other_file_operations() {
    if !can_mount("mappings_and_other_file_operations") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let rows = [
        row(
            "O_TMPFILE in a source",
            |m| {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_TMPFILE)
                    .open(m.join(VCPU))
                    .map(drop)
            },
            libc::EOPNOTSUPP,
        ),
        row(
            "mmap PROT_READ, MAP_SHARED",
            |m| map(&m.join(VALUE), false, libc::PROT_READ, libc::MAP_SHARED),
            libc::ENODEV,
        ),
        row(
            "mmap PROT_READ, MAP_PRIVATE",
            |m| map(&m.join(VALUE), false, libc::PROT_READ, libc::MAP_PRIVATE),
            0,
        ),
        row(
            "mmap PROT_WRITE, MAP_SHARED (O_RDWR)",
            |m| {
                map(
                    &m.join(VALUE),
                    true,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                )
            },
            libc::ENODEV,
        ),
        row(
            "fallocate",
            |m| {
                let f = OpenOptions::new().write(true).open(m.join(VALUE))?;
                // SAFETY: an open descriptor.
                check(unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 4096) }.into())
            },
            libc::EOPNOTSUPP,
        ),
    ];
    run("mappings_and_other_file_operations", &t, m.path(), &rows);
}

#[test]
fn odd_names_in_lookup() {
    if !can_mount("odd_names_in_lookup") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    let rows = [
        row(
            "non-UTF-8 name",
            |m| fs::metadata(m.join(VCPU).join(OsStr::from_bytes(b"exits\xff"))).map(drop),
            libc::ENOENT,
        ),
        row(
            "255-byte name",
            |m| fs::metadata(m.join(VCPU).join("x".repeat(255))).map(drop),
            libc::ENOENT,
        ),
        row(
            "256-byte name",
            |m| fs::metadata(m.join(VCPU).join("x".repeat(256))).map(drop),
            libc::ENAMETOOLONG,
        ),
        row(
            "256-byte name in the mount's root",
            |m| fs::metadata(m.join("x".repeat(256))).map(drop),
            libc::ENAMETOOLONG,
        ),
        row(
            "2000-byte name",
            |m| fs::metadata(m.join(VCPU).join("x".repeat(2000))).map(drop),
            libc::ENAMETOOLONG,
        ),
        row(
            "a name below a value",
            |m| fs::metadata(m.join(VALUE).join("x")).map(drop),
            libc::ENOTDIR,
        ),
    ];
    run("odd_names_in_lookup", &t, m.path(), &rows);
}

// Another user: a child process, this test binary run as uid 65534 through `setpriv`.

const OTHER_OP: &str = "STATSFS_BAD_INPUTS_OP";
const OTHER_PATH: &str = "STATSFS_BAD_INPUTS_PATH";

/// When run with STATSFS_BAD_INPUTS_OP and STATSFS_BAD_INPUTS_PATH, this "test" does
/// that one operation (`stat`, `read`, `write0`, `mkdir`) on that path and prints
/// `RESULT ok <text read>` or `RESULT errno <n>`.
#[test]
fn as_another_user_entry() {
    let (Some(op), Some(path)) = (std::env::var(OTHER_OP).ok(), std::env::var_os(OTHER_PATH))
    else {
        return;
    };
    let path = PathBuf::from(path);
    let r = match op.as_str() {
        "stat" => fs::metadata(&path).map(|_| String::new()),
        "read" => fs::read_to_string(&path),
        "write0" => write_all_once(&path, b"0").map(|()| String::new()),
        "mkdir" => fs::create_dir(&path).map(|()| String::new()),
        other => panic!("unknown op {other}"),
    };
    match r {
        Ok(text) => println!("RESULT ok {}", text.escape_debug()),
        Err(e) => println!("RESULT errno {}", e.raw_os_error().unwrap_or(-1)),
    }
}

/// `op` on `path` as uid/gid 65534 with no supplementary groups: `Ok(text read)` or the
/// errno.
fn as_other_user(setpriv: &Path, op: &str, path: &Path) -> Result<String, i32> {
    let child = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bad_inputs::as_another_user_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(OTHER_OP, op)
        .env(OTHER_PATH, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: signalling our own child, not yet reaped (its waiter has not
            // returned).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!(
                "{op} {} as uid 65534: no exit within {DEADLINE:?}",
                path.display()
            );
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| {
            panic!(
                "{op} {} as uid 65534 said nothing ({}):\n{stdout}\n{}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    match line.split_once(' ') {
        Some(("ok", text)) => Ok(text.to_owned()),
        Some(("errno", n)) => Err(n.parse().unwrap()),
        _ => panic!("bad result line {line:?}"),
    }
}

/// Runs `(op, path below the mount, want)` rows as uid 65534; the whole tree's values
/// must not change.
fn run_as_other(test: &str, t: &common::Tree, m: &Path, rows: &[(&str, &str, Result<&str, i32>)]) {
    let Some(setpriv) = common::tool(test, "setpriv") else {
        return;
    };
    // The child is this test binary: every directory above it and the file itself must
    // be executable by others.
    let exe = std::env::current_exe().unwrap();
    if let Some(closed) = exe
        .ancestors()
        .find(|p| fs::metadata(p).is_ok_and(|md| md.permissions().mode() & 0o001 == 0))
    {
        return common::skip(
            test,
            &format!(
                "uid 65534 cannot run this test binary: {} is not o+x",
                closed.display()
            ),
        );
    }
    let before = snapshot(&t.root);
    let mut failures = Vec::new();
    for &(op, rel, want) in rows {
        let got = as_other_user(&setpriv, op, &m.join(rel));
        if got.as_deref().map_err(|e| *e) != want {
            failures.push(format!("`{op} {rel}`: want {want:?}, got {got:?}"));
        }
    }
    let diff = changed(&before, &snapshot(&t.root));
    assert!(
        failures.is_empty() && diff.is_empty(),
        "{test}: {}\nchanged: {diff:?}",
        failures.join("\n")
    );
}

#[test]
fn another_user_is_kept_out_by_default() {
    if !can_mount("another_user_is_kept_out_by_default") {
        return;
    }
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, MountOptions::default());
    run_as_other(
        "another_user_is_kept_out_by_default",
        &t,
        m.path(),
        &[
            ("stat", "", Err(libc::EACCES)),
            ("read", VALUE, Err(libc::EACCES)),
            ("write0", VALUE, Err(libc::EACCES)),
        ],
    );
}

#[test]
fn another_user_with_allow_other_reads_but_cannot_clear() {
    if !can_mount("another_user_with_allow_other_reads_but_cannot_clear") {
        return;
    }
    let t = common::tree();
    let options = MountOptions::default()
        .with_allow_other(true)
        .with_mode(0o755);
    let (_dir, m) = mounted(&t.root, options);
    run_as_other(
        "another_user_with_allow_other_reads_but_cannot_clear",
        &t,
        m.path(),
        &[
            ("stat", "", Ok("")),
            ("read", VALUE, Ok("10\\n")),
            ("read", READ_ONLY, Ok("3\\n")),
            ("write0", VALUE, Err(libc::EACCES)),
            ("write0", TREE_BULK, Err(libc::EACCES)),
            ("mkdir", "kvm/1234-5/new", Err(libc::EACCES)),
        ],
    );
}

// Security defaults.

/// The mount's line in /proc/self/mountinfo.
fn mountinfo_line(path: &Path) -> String {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == path.to_str())
        .unwrap_or_else(|| panic!("{} is not in /proc/self/mountinfo", path.display()))
        .to_owned()
}

#[test]
fn by_default_the_mount_is_the_mounting_users_alone() {
    if !can_mount("by_default_the_mount_is_the_mounting_users_alone") {
        return;
    }
    let o = MountOptions::default();
    // SAFETY: getuid and getgid take no arguments and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!(
        (o.uid, o.gid, o.mode, o.allow_other),
        (uid, gid, 0o700, false)
    );
    let t = common::tree();
    let (_dir, m) = mounted(&t.root, o);
    let md = fs::metadata(m.path()).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.permissions().mode() & 0o7777),
        (uid, gid, 0o700)
    );
    let f = fs::metadata(m.path().join(VALUE)).unwrap();
    assert_eq!((f.uid(), f.gid()), (uid, gid));
    let line = mountinfo_line(m.path());
    assert!(line.contains("default_permissions"), "{line}");
    assert!(!line.contains("allow_other"), "{line}");
}

#[test]
fn allow_other_only_when_asked_and_the_kernel_still_checks_modes() {
    if !can_mount("allow_other_only_when_asked_and_the_kernel_still_checks_modes") {
        return;
    }
    let t = common::tree();
    let options = MountOptions::default().with_allow_other(true);
    let (_dir, m) = mounted(&t.root, options);
    let line = mountinfo_line(m.path());
    assert!(line.contains("allow_other"), "{line}");
    assert!(line.contains("default_permissions"), "{line}");
    // Modes: 0644 for what may be cleared, 0444 for the rest.
    let mode = |rel: &str| {
        fs::metadata(m.path().join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(VALUE), 0o644);
    assert_eq!(mode(READ_ONLY), 0o444);
    assert_eq!(mode(TREE_BULK), 0o644);
    assert_eq!(mode(VCPU), 0o755);
    assert_eq!(
        errno(write_once(&m.path().join(READ_ONLY), b"0")),
        libc::EACCES
    );
}
