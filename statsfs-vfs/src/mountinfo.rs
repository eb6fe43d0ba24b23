//! Reading `/proc/self/mountinfo`, and recovering from a dead mount.

use std::fs;
use std::io;
use std::path::Path;

/// `/proc/self/mountinfo` as (`major:minor`, mount point) pairs, in mount order (a
/// later entry at the same path covers an earlier one).
pub(crate) fn read() -> io::Result<Vec<(String, Vec<u8>)>> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ').skip(2);
            let dev = f.next()?.to_owned();
            let _root = f.next()?;
            Some((dev, unescape(f.next()?)))
        })
        .collect())
}

/// Whether `path` is a mount point in this process' mount namespace. Only the parent
/// directory is resolved, never `path` itself, so this is safe on a dead mount; a path
/// whose parent does not exist is no mount point.
///
/// ```
/// use std::path::Path;
/// assert!(statsfs_vfs::is_mounted(Path::new("/proc")).unwrap());
/// assert!(!statsfs_vfs::is_mounted(Path::new("/no/such/dir")).unwrap());
/// ```
pub fn is_mounted(path: &Path) -> io::Result<bool> {
    let path = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => match fs::canonicalize(dir) {
            Ok(dir) => dir.join(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        },
        _ => path.to_path_buf(),
    };
    let want = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    Ok(read()?.iter().any(|(_, mp)| mp.as_slice() == want))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescape() {
        assert_eq!(super::unescape(r"/tmp/a\040b"), b"/tmp/a b");
        assert_eq!(super::unescape(r"/x\134y"), b"/x\\y");
        assert_eq!(super::unescape(r"/end\"), b"/end\\");
    }
}
