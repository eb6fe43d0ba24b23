//! The FUSE file system over the source tree (`fuser::Filesystem`).
//!
//! * **Directories**: the mount's root lists the registered roots; a source's directory
//!   lists its visible subordinates, its visible values, and the bulk files `.stats` and
//!   `.tree.stats` (dot names keep them out of `kvm_stat`-style walkers). Those two names
//!   are the bulk files' own: a subordinate or value so named is not shown, and a
//!   subordinate hides a value of the same name. Listings stream (`listing.rs`): each
//!   `readdir` resumes at a stable position, so a listing taken while the tree changes
//!   shows every entry that stayed exactly once, at a cost per call that does not grow
//!   with the directory.
//! * **Value files** are opened with direct I/O (no page cache: every `read` and `pread`
//!   reaches the tree). Each open file keeps the text of its last read at offset 0; a
//!   read further on continues from it, so a sequential reader (`cat`) never sees a value
//!   torn by a change of length between its two reads (what sysfs' seq_file does).
//! * **Writes**: `0` or `0\n` clears a value; anything else is `EINVAL`. `O_TRUNC`
//!   arrives as a `setattr` to size 0 and is accepted, so `echo 0 > file` works.
//! * **Permissions** are the kernel's (`default_permissions`); root bypasses mode bits,
//!   so opening a read-only file for writing is refused here too (`EACCES`).
//! * Everything that would change the shape (mkdir, create, mknod, unlink, rmdir,
//!   rename, link, symlink, chmod, chown, setxattr) is `EPERM`.
//! * **Removed sources**: a path whose source was removed is `ENOENT` at once (the
//!   kernel's cached entries are invalidated); a file opened before the removal keeps
//!   reading the source's current values, since an open file holds its source (`docs/MODEL.md#lifetime`).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, PollEvents, PollFlags,
    PollNotifier, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyPoll, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use statsfs_core::Scope;
use statsfs_core::Source;
use statsfs_text::openmetrics::Format;

use crate::files::{self, BulkFile};
use crate::inode::{
    Node, Table, BUCKETS_SUFFIX, BULK_NAME, CATALOGUE_NAME, METRICS_NAME, OPENMETRICS_NAME,
    REGION_NAME, TREE_BULK_NAME,
};
use crate::invalidate::Pollers;
use crate::listing::{self, DirHandle};
use crate::shapes::Shapes;
use crate::MountOptions;

/// The size `stat` reports for a value file (like sysfs): contents are computed at
/// read time, and with direct I/O the kernel does not clip reads to it.
const VALUE_FILE_SIZE: u64 = 4096;

/// The longest name a lookup accepts (`NAME_MAX`, what `statfs` reports).
const NAME_MAX: usize = 255;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum OpenFile {
    Value {
        source: Source,
        name: &'static str,
        /// The `<name>.buckets` form.
        buckets: bool,
        snapshot: Mutex<Vec<u8>>,
    },
    Bulk(Mutex<BulkFile>),
    /// Text fixed when the file was opened (the catalogue).
    Text(Vec<u8>),
}

/// State shared by the FUSE worker threads and the mount handle.
pub(crate) struct Shared {
    pub(crate) roots: Vec<Source>,
    opts: MountOptions,
    pub(crate) table: Mutex<Table>,
    files: RwLock<HashMap<u64, Arc<OpenFile>>>,
    dirs: RwLock<HashMap<u64, Arc<DirHandle>>>,
    next_fh: AtomicU64,
    created: SystemTime,
    /// Polls waiting for the tree to change shape.
    pub(crate) pollers: Arc<Pollers>,
    /// Bulk files' shapes, shared between opens.
    shapes: Shapes,
}

impl Shared {
    pub(crate) fn new(roots: Vec<Source>, opts: MountOptions) -> Self {
        Shared {
            roots,
            opts,
            table: Mutex::default(),
            files: RwLock::default(),
            dirs: RwLock::default(),
            next_fh: AtomicU64::new(1),
            created: SystemTime::now(),
            pollers: Arc::default(),
            shapes: Shapes::default(),
        }
    }

    /// One name in a directory.
    fn resolve(&self, dir: &Node, name: &str) -> Option<Node> {
        match dir {
            Node::Root if name == CATALOGUE_NAME => Some(Node::Catalogue),
            Node::Root if name == REGION_NAME && self.opts.region.is_some() => Some(Node::Region),
            Node::Root if name == METRICS_NAME => Some(Node::Metrics(Format::Prometheus)),
            Node::Root if name == OPENMETRICS_NAME => Some(Node::Metrics(Format::OpenMetrics)),
            Node::Root => self
                .roots
                .iter()
                .find(|r| r.name() == name && !r.is_hidden())
                .map(|r| Node::Dir(r.clone())),
            Node::Dir(src) => {
                if name == BULK_NAME || name == TREE_BULK_NAME {
                    let scope = if name == BULK_NAME {
                        Scope::Source
                    } else {
                        Scope::Subtree
                    };
                    return Some(Node::Bulk {
                        source: src.clone(),
                        scope,
                    });
                }
                if let Some(c) = src.inspect().find_subordinate(name, |c| !c.is_hidden()) {
                    return Some(Node::Dir(c));
                }
                // `<name>.buckets`: a histogram's buckets as text, not listed.
                let (want, buckets) = match name.strip_suffix(BUCKETS_SUFFIX) {
                    Some(stem) => (stem, true),
                    None => (name, false),
                };
                let mut found = None;
                src.for_each_descriptor(|d, _, _, group_hidden| {
                    if found.is_none()
                        && d.name == want
                        && !group_hidden
                        && !d.hidden
                        && (!buckets || d.kind.is_histogram())
                    {
                        found = Some(Node::Value {
                            source: src.clone(),
                            name: d.name,
                            clearable: d.clearable && !buckets,
                            buckets,
                        });
                    }
                });
                found
            }
            _ => None,
        }
    }

    fn attr(&self, ino: u64, node: &Node) -> FileAttr {
        let (kind, perm, size, nlink) = match node {
            Node::Root => (
                FileType::Directory,
                (self.opts.mode & 0o7777) as u16,
                0,
                2 + self.roots.len() as u32,
            ),
            Node::Dir(s) => {
                let subdirs = u32::try_from(s.visible_subordinate_count()).unwrap_or(u32::MAX - 2);
                (FileType::Directory, 0o755, 0, 2 + subdirs)
            }
            Node::Value { clearable, .. } => (
                FileType::RegularFile,
                statsfs_text::catalogue::file_mode(*clearable) as u16,
                VALUE_FILE_SIZE,
                1,
            ),
            Node::Bulk { source, scope } => (
                FileType::RegularFile,
                0o644,
                self.shapes.len(source, *scope),
                1,
            ),
            Node::Catalogue => (
                FileType::RegularFile,
                0o444,
                files::catalogue().len() as u64,
                1,
            ),
            Node::Region => (
                FileType::RegularFile,
                0o444,
                files::region(self.opts.region.as_deref()).len() as u64,
                1,
            ),
            // Encoded when opened, read with direct I/O: no size is promised (a stat
            // must not encode the whole tree).
            Node::Metrics(_) => (FileType::RegularFile, 0o444, 0, 1),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: 0,
            atime: self.created,
            mtime: self.created,
            ctime: self.created,
            crtime: self.created,
            kind,
            perm,
            nlink,
            uid: self.opts.uid,
            gid: self.opts.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn node(&self, ino: INodeNo) -> Option<Node> {
        lock(&self.table).node(ino.0)
    }

    fn open_file(&self, fh: FileHandle) -> Option<Arc<OpenFile>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh.0)
            .cloned()
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }
}

/// The `fuser::Filesystem`.
pub(crate) struct StatsFs(pub(crate) Arc<Shared>);

fn err(code: i32) -> Errno {
    Errno::from_i32(code)
}

impl Filesystem for StatsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Let lookups and readdirs in one directory run concurrently.
        if config
            .capabilities()
            .contains(InitFlags::FUSE_PARALLEL_DIROPS)
        {
            let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        // Longer than any name here can be: say so, as local file systems do (the kernel
        // passes FUSE names of up to 1024 bytes, and `ENOENT` would hide the mistake).
        if name.len() > NAME_MAX {
            return reply.error(err(libc::ENAMETOOLONG));
        }
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        let Some(dir) = self.0.node(parent) else {
            return reply.error(Errno::ENOENT);
        };
        if !dir.is_dir() {
            return reply.error(Errno::ENOTDIR);
        }
        // Resolve outside the table lock; an error reply is never cached, so a name that
        // appears later is found at once.
        let Some(node) = self.0.resolve(&dir, name) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(ino) = lock(&self.0.table).remember(parent.0, node.clone()) else {
            return reply.error(Errno::from_i32(libc::ENOSPC));
        };
        let attr = self.0.attr(ino, &node);
        reply.entry_with_ttls(&self.0.opts.ttl, &self.0.opts.ttl, &attr, Generation(0));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        lock(&self.0.table).forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(node) = self.0.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        reply.attr(&self.0.opts.ttl, &self.0.attr(ino.0, &node));
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some(node) = self.0.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if mode.is_some() || uid.is_some() || gid.is_some() {
            return reply.error(Errno::EPERM);
        }
        if let Some(size) = size {
            match &node {
                Node::Root | Node::Dir(_) => return reply.error(Errno::EISDIR),
                Node::Value {
                    clearable: false, ..
                }
                | Node::Catalogue
                | Node::Region
                | Node::Metrics(_) => return reply.error(Errno::EACCES),
                // O_TRUNC: nothing to do; the write that follows says what happens.
                _ if size == 0 => {}
                _ => return reply.error(Errno::EINVAL),
            }
        }
        // Timestamps (touch, or the mtime that comes with O_TRUNC) are accepted and
        // ignored.
        reply.attr(&self.0.opts.ttl, &self.0.attr(ino.0, &node));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let writing = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let file = match self.0.node(ino) {
            Some(Node::Value {
                source,
                name,
                clearable,
                buckets,
            }) => {
                if writing && !clearable {
                    return reply.error(Errno::EACCES);
                }
                OpenFile::Value {
                    source,
                    name,
                    buckets,
                    snapshot: Mutex::new(Vec::new()),
                }
            }
            Some(Node::Bulk { source, scope }) => match self.0.shapes.get(&source, scope) {
                Ok(shape) => OpenFile::Bulk(Mutex::new(BulkFile::open(source, scope, shape))),
                Err(_) => return reply.error(Errno::EIO),
            },
            Some(Node::Catalogue) if writing => return reply.error(Errno::EACCES),
            Some(Node::Catalogue) => OpenFile::Text(files::catalogue()),
            Some(Node::Region) if writing => return reply.error(Errno::EACCES),
            Some(Node::Region) => OpenFile::Text(files::region(self.0.opts.region.as_deref())),
            Some(Node::Metrics(_)) if writing => return reply.error(Errno::EACCES),
            Some(Node::Metrics(format)) => OpenFile::Text(files::metrics(&self.0.roots, format)),
            Some(_) => return reply.error(Errno::EISDIR),
            None => return reply.error(Errno::ENOENT),
        };
        let fh = self.0.new_fh();
        self.0
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(file));
        reply.opened(
            FileHandle(fh),
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH,
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(file) = self.0.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        match &*file {
            OpenFile::Value {
                source,
                name,
                buckets,
                snapshot,
            } => {
                let mut snap = lock(snapshot);
                if offset == 0 || snap.is_empty() {
                    match files::value_text(source, name, *buckets) {
                        Ok(text) => *snap = text,
                        Err(code) => return reply.error(err(code)),
                    }
                }
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(snap.len());
                let end = start.saturating_add(size as usize).min(snap.len());
                reply.data(&snap[start..end]);
            }
            OpenFile::Bulk(b) => reply.data(lock(b).read(offset, size)),
            OpenFile::Text(text) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(text.len());
                let end = start.saturating_add(size as usize).min(text.len());
                reply.data(&text[start..end]);
            }
        }
    }

    /// Every file is always readable and writable (`POLLIN | POLLOUT`, as for a regular
    /// file). A bulk file also reports `POLLPRI` once the tree below its source changed
    /// shape since its layout was made: re-open it to see the new shape. A poll that
    /// waits is woken at the next change of the tree.
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        _events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        let Some(file) = self.0.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        // What the kernel reports for a file system without poll (DEFAULT_POLLMASK).
        let mut revents = PollEvents::POLLIN
            | PollEvents::POLLOUT
            | PollEvents::POLLRDNORM
            | PollEvents::POLLWRNORM;
        if let OpenFile::Bulk(b) = &*file {
            // Registered before the check: a change between the two wakes it (at worst
            // once too often), and none is lost.
            if flags.contains(PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
                self.0.pollers.wait(fh.0, ph);
            }
            if !lock(b).is_current() {
                revents |= PollEvents::POLLPRI;
            }
        }
        reply.poll(revents);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // The offset is ignored: a write is a command (O_APPEND writes arrive at the
        // reported size).
        let Some(file) = self.0.open_file(fh) else {
            return reply.error(Errno::EBADF);
        };
        let r = match &*file {
            OpenFile::Value { source, name, .. } => files::value_write(source, name, data),
            OpenFile::Bulk(b) => lock(b).select(data),
            // Opened read-only (open refuses writers).
            OpenFile::Text(_) => Err(libc::EBADF),
        };
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(code) => reply.error(err(code)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.0
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
        self.0.pollers.forget(fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(dir) = self.0.node(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if !dir.is_dir() {
            return reply.error(Errno::ENOTDIR);
        }
        let parent = lock(&self.0.table).parent(ino.0);
        let handle = DirHandle {
            dir,
            ino: ino.0,
            parent,
        };
        let fh = self.0.new_fh();
        self.0
            .dirs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Arc::new(handle));
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(handle) = self
            .0
            .dirs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fh.0)
            .cloned()
        else {
            return reply.error(Errno::EBADF);
        };
        listing::list(&handle, &self.0.roots, offset, &self.0.table, |e| {
            reply.add(INodeNo(e.ino), e.next, e.kind, e.name)
        });
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.0
            .dirs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    // The shape of the tree belongs to the program that owns it: all refused.

    fn mknod(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _r: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn mkdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(Errno::EPERM);
    }

    fn create(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _f: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EPERM);
    }

    fn unlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn rmdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn symlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(Errno::EPERM);
    }

    fn rename(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _np: INodeNo,
        _nn: &OsStr,
        _f: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EPERM);
    }

    fn link(&self, _req: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EPERM);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _i: INodeNo,
        _n: &OsStr,
        _v: &[u8],
        _f: i32,
        _p: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EPERM);
    }

    fn removexattr(&self, _req: &Request, _i: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EPERM);
    }

    fn getxattr(&self, _req: &Request, _i: INodeNo, _n: &OsStr, _s: u32, reply: ReplyXattr) {
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, _req: &Request, _i: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }
}
