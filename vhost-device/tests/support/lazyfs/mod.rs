//! lazyfs: a FUSE file system for power-loss tests, after Jepsen's LazyFS.
//! It passes files through to a backing directory but keeps everything not
//! yet synced (file data and size since the file's last fsync/fdatasync,
//! directory entries since the directory's last fsync) in memory, and a
//! power cut ([`LazyFs::power_cut`], or [`LazyFs::arm_cut`] to cut just
//! before the n-th mutating request, in the middle of whatever the client
//! is doing) throws all of that away. See `state.rs` for the model.
//!
//! Mounted in-process with `fuser` (its own mount(2) call as root, no
//! fusermount or libfuse needed), served by one background thread. Files
//! are opened with FOPEN_DIRECT_IO and every entry and attribute has a zero
//! TTL, so the kernel caches nothing that could outlive a cut.

mod state;

use std::{
    ffi::OsStr,
    io,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, UNIX_EPOCH},
};

use fuser::{
    BackgroundSession, Config, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLseek,
    ReplyOpen, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
/// Used by the lazyfs tests, not by every test that mounts one.
#[allow(unused_imports)]
pub use state::punch_hole;
pub use state::Counts;
use state::State;

const TTL: Duration = Duration::ZERO;

/// A mounted lazyfs over a backing directory of its own; unmounted on drop.
pub struct LazyFs {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    /// The FUSE connection number (the mount's minor device number).
    conn: Option<u32>,
    mnt: tempfile::TempDir,
    backing: tempfile::TempDir,
}

impl LazyFs {
    /// Why lazyfs cannot run here, if it cannot: only a missing /dev/fuse.
    pub fn unavailable() -> Option<&'static str> {
        (!Path::new("/dev/fuse").exists()).then_some("/dev/fuse is absent")
    }

    pub fn mount() -> io::Result<Self> {
        let backing = tempfile::tempdir()?;
        let mnt = tempfile::tempdir()?;
        let state = Arc::new(Mutex::new(State::new(backing.path().to_owned())?));
        let mut cfg = Config::default();
        cfg.mount_options = vec![
            MountOption::FSName("lazyfs".into()),
            MountOption::Subtype("lazyfs".into()),
        ];
        let fs = Fs(Arc::clone(&state));
        let session = fuser::spawn_mount(fs, mnt.path(), &cfg)?;
        let conn = std::fs::metadata(mnt.path())
            .ok()
            .map(|m| libc::minor(m.dev()));
        Ok(LazyFs {
            state,
            session: Some(session),
            conn,
            mnt,
            backing,
        })
    }

    /// Where the file system is mounted.
    pub fn path(&self) -> &Path {
        self.mnt.path()
    }

    /// The backing directory: between cuts, exactly the durable state.
    pub fn backing(&self) -> PathBuf {
        self.backing.path().to_owned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Cut power now.
    pub fn power_cut(&self) -> io::Result<()> {
        self.lock().cut()
    }

    /// Cut power just before the `n`th mutating request (write, truncate,
    /// fallocate, copy, fsync, create, rename, unlink) from now.
    pub fn arm_cut(&self, n: u64) {
        self.lock().arm_cut(n);
    }

    /// Call off an armed cut that has not happened.
    pub fn disarm(&self) {
        self.lock().disarm();
    }

    /// Still armed: the cut has not happened yet.
    pub fn armed(&self) -> bool {
        self.lock().armed()
    }

    pub fn counts(&self) -> Counts {
        self.lock().counts
    }
}

impl Drop for LazyFs {
    /// Unmount by path, then wait for the serving thread. It ends when the
    /// kernel closes the connection, which it does only once no mount
    /// namespace holds a copy of the mount: a process that cloned its
    /// namespace while we were mounted (a VM runner sharing the host root,
    /// say) keeps the connection open until it exits. Then the connection
    /// is aborted through fusectl if that is mounted; if not, the thread is
    /// left to end with the test process, which closes /dev/fuse.
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if let Err(e) = umount(self.mnt.path()) {
            eprintln!("lazyfs: unmounting {:?}: {e}", self.mnt.path());
        }
        let start = Instant::now();
        while !session.guard.is_finished() && start.elapsed() < Duration::from_secs(2) {
            // The thread still runs, so the connection number is still
            // ours: no other file system can have taken it.
            if let Some(conn) = self
                .conn
                .filter(|_| start.elapsed() > Duration::from_millis(200))
            {
                let abort = format!("/sys/fs/fuse/connections/{conn}/abort");
                let _ = std::fs::write(abort, "1");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if session.guard.is_finished() {
            if let Err(e) = session.join() {
                eprintln!("lazyfs: serving thread: {e}");
            }
        } else {
            eprintln!(
                "lazyfs: {:?} unmounted here but still held by another mount namespace; \
                 its serving thread ends with this process",
                self.mnt.path()
            );
        }
    }
}

/// umount(2) by path; a lazy detach if the mount is busy.
fn umount(path: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let first = io::Error::last_os_error();
    if first.raw_os_error() != Some(libc::EBUSY) {
        return Err(first);
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn errno(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn attr(ino: u64, size: u64) -> FileAttr {
    let dir = ino == 1;
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: if dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if dir { 0o755 } else { 0o644 },
        nlink: if dir { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: state::PAGE as u32,
    }
}

/// The fuser side: every request locks the state and runs one call.
struct Fs(Arc<Mutex<State>>);

impl Fs {
    fn st(&self) -> MutexGuard<'_, State> {
        lock(&self.0)
    }

    /// Run a mutating request (or fail it if the power goes first).
    fn mutate<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.st();
        st.mutating()?;
        f(&mut st)
    }
}

fn root(parent: INodeNo) -> Result<(), Errno> {
    if u64::from(parent) == 1 {
        Ok(())
    } else {
        Err(Errno::ENOENT)
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if let Err(e) = root(parent) {
            return reply.error(e);
        }
        match self.st().lookup(name) {
            Some((ino, size)) => reply.entry(&TTL, &attr(ino, size), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ino = u64::from(ino);
        if ino == 1 {
            return reply.attr(&TTL, &attr(1, 0));
        }
        match self.st().size(ino) {
            Ok(size) => reply.attr(&TTL, &attr(ino, size)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let ino = u64::from(ino);
        if ino == 1 {
            return reply.attr(&TTL, &attr(1, 0));
        }
        let res = match size {
            Some(s) => self.mutate(|st| st.truncate(ino, s).and_then(|()| st.size(ino))),
            None => self.st().size(ino),
        };
        match res {
            Ok(size) => reply.attr(&TTL, &attr(ino, size)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.st().open(u64::from(ino)) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        if let Err(e) = root(parent) {
            return reply.error(e);
        }
        let res = self.mutate(|st| {
            let ino = st.create(name)?;
            Ok((ino, st.open(ino)?, st.size(ino)?))
        });
        match res {
            Ok((ino, fh, size)) => reply.created(
                &TTL,
                &attr(ino, size),
                Generation(0),
                FileHandle(fh),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(errno(&e)),
        }
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
        let mut st = self.st();
        match st
            .ino_of(u64::from(fh))
            .and_then(|ino| st.read(ino, offset, u64::from(size)))
        {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let res = self.mutate(|st| st.write(st.ino_of(u64::from(fh))?, offset, data));
        match res {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(&e)),
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
        self.st().release(u64::from(fh));
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.mutate(|st| st.sync_file(st.ino_of(u64::from(fh))?)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match root(ino) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if let Err(e) = root(ino) {
            return reply.error(e);
        }
        let mut entries = vec![
            (1, FileType::Directory, ".".into()),
            (1, FileType::Directory, "..".into()),
        ];
        for (name, ino) in self.st().names() {
            entries.push((ino, FileType::RegularFile, name));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        if let Err(e) = root(ino) {
            return reply.error(e);
        }
        match self.mutate(State::sync_dir) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        if let Err(e) = root(parent) {
            return reply.error(e);
        }
        match self.mutate(|st| st.unlink(name)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if let Err(e) = root(parent).and_then(|()| root(newparent)) {
            return reply.error(e);
        }
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        match self.mutate(|st| st.rename(name, newname)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        match self.mutate(|st| st.fallocate(st.ino_of(u64::from(fh))?, offset, length, mode)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let Ok(off) = u64::try_from(offset) else {
            return reply.error(Errno::EINVAL);
        };
        let data = match whence {
            libc::SEEK_DATA => true,
            libc::SEEK_HOLE => false,
            _ => return reply.error(Errno::EINVAL),
        };
        let mut st = self.st();
        match st
            .ino_of(u64::from(fh))
            .and_then(|ino| st.seek(ino, off, data))
        {
            Ok(pos) => match i64::try_from(pos) {
                Ok(p) => reply.offset(p),
                Err(_) => reply.error(Errno::EOVERFLOW),
            },
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let len = len.min(1 << 30);
        let res = self.mutate(|st| {
            let src = st.ino_of(u64::from(fh_in))?;
            let dst = st.ino_of(u64::from(fh_out))?;
            let data = st.read(src, offset_in, len)?;
            st.write(dst, offset_out, &data)?;
            Ok(data.len() as u32)
        });
        match res {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
