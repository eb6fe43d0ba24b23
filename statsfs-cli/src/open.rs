//! Opening what a path names without waiting on it: the one way the tool opens a file.
//!
//! A FIFO, a socket or a device planted where the tool looks (the path given, or a
//! `.tree.stats`, `.schema` or `.region` in a directory given) would block an open or a
//! read forever. Every open is non-blocking and checked to be of a regular file before
//! anything is read.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};

/// `path` opened read-only, if it is a regular file (symbolic links followed); a FIFO,
/// socket, device or directory is an error of kind `InvalidInput` that says which it is,
/// and nothing is read from it.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty())?;
    let kind = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
    if kind != FileType::RegularFile {
        return Err(not_a_file(kind));
    }
    // Reads of a regular file do not block; clear the flag for the file systems that
    // pass it on (FUSE) anyway.
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    Ok(File::from(fd))
}

/// The text of the regular file `path` (at most `limit` bytes), if it is one and UTF-8:
/// for the small files the tool looks for (`.schema`, `.region`).
pub(crate) fn read_text(path: &Path, limit: usize) -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    open_regular(path)
        .ok()?
        .take(limit as u64)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Whether `path` is a directory or a regular file (symbolic links followed), checked
/// without opening it; else the error [`open_regular`] gives.
pub(crate) fn check_kind(path: &Path) -> io::Result<()> {
    let kind = FileType::from_raw_mode(rustix::fs::stat(path)?.st_mode);
    match kind {
        FileType::RegularFile | FileType::Directory => Ok(()),
        other => Err(not_a_file(other)),
    }
}

fn not_a_file(kind: FileType) -> io::Error {
    let what = match kind {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        _ => "not a regular file",
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not a statsfs mount, directory, bulk stats file or region: nothing read"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::TempDir::new().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = open_regular(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("a FIFO"), "{e}");
        assert!(check_kind(&fifo).is_err());
        assert!(check_kind(dir.path()).is_ok());
        assert!(open_regular(dir.path()).is_err());
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_regular(&file).is_ok());
    }
}
