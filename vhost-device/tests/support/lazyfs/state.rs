//! What the lazy file system holds: the durable state is the backing
//! directory itself, everything written since the last sync lives here in
//! memory.
//!
//! - File data and size: pages written, punched or truncated since the
//!   file's last fsync/fdatasync are kept in `Inode::pages` (and
//!   `Inode::floor`, the lowest size since then); a sync writes them into
//!   the inode's backing file.
//! - Directory entries: created, renamed and unlinked names live in
//!   `State::names`; `State::durable` is the namespace as of the root
//!   directory's last fsync, which is exactly the backing directory's list
//!   of files. An inode with no durable name keeps its synced data in a
//!   hidden backing file (`.lazyfs-ino-N`), unreachable after a cut.
//! - A power cut drops all of that memory and every hidden file: the
//!   backing directory is then exactly the durable state, and the file
//!   system serves it again under new inode numbers (old handles get EIO).
//!
//! One flat directory (the mount root), regular files only, no hard links:
//! all a storage backend's files need.

use std::{
    collections::{BTreeMap, HashMap},
    ffi::{OsStr, OsString},
    fs::{File, OpenOptions},
    io,
    os::unix::{ffi::OsStrExt, fs::FileExt, io::AsRawFd},
    path::PathBuf,
};

/// Granule of the in-memory overlay.
pub const PAGE: u64 = 4096;
/// Backing-file name prefix of inodes with no durable name.
const HIDDEN: &str = ".lazyfs-ino-";

enum Page {
    Data(Box<[u8]>),
    Zero,
}

struct Inode {
    /// Backing file holding this inode's durable contents, if any.
    backing: Option<OsString>,
    file: Option<File>,
    size: u64,
    /// Backing bytes at or past this offset were truncated away since the
    /// last sync.
    floor: u64,
    pages: BTreeMap<u64, Page>,
    open: u32,
    linked: bool,
}

impl Inode {
    fn durable(name: OsString, size: u64) -> Self {
        Inode {
            backing: Some(name),
            file: None,
            size,
            floor: size,
            pages: BTreeMap::new(),
            open: 0,
            linked: true,
        }
    }
}

/// Counters a test can print.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub cuts: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
    /// Mutating requests refused because they came after a cut.
    pub refused: u64,
}

pub struct State {
    dir: PathBuf,
    names: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
    inodes: HashMap<u64, Inode>,
    handles: HashMap<u64, u64>,
    next_ino: u64,
    next_fh: u64,
    /// Cut power just before the mutating request this many requests
    /// from now (`State::arm_cut`).
    countdown: Option<u64>,
    pub counts: Counts,
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Any request on a handle or inode from before a cut.
pub fn stale() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

impl State {
    /// Serve `dir` as it is (power on).
    pub fn new(dir: PathBuf) -> io::Result<Self> {
        let mut s = State {
            dir,
            names: BTreeMap::new(),
            durable: BTreeMap::new(),
            inodes: HashMap::new(),
            handles: HashMap::new(),
            next_ino: 2,
            next_fh: 1,
            countdown: None,
            counts: Counts::default(),
        };
        s.power_on()?;
        Ok(s)
    }

    fn power_on(&mut self) -> io::Result<()> {
        self.names.clear();
        self.inodes.clear();
        self.handles.clear();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.as_bytes().starts_with(HIDDEN.as_bytes()) {
                std::fs::remove_file(entry.path())?;
                continue;
            }
            let ino = self.next_ino;
            self.next_ino += 1;
            let size = entry.metadata()?.len();
            self.inodes.insert(ino, Inode::durable(name.clone(), size));
            self.names.insert(name, ino);
        }
        self.durable = self.names.clone();
        Ok(())
    }

    /// Power cut: drop everything not synced.
    pub fn cut(&mut self) -> io::Result<()> {
        self.countdown = None;
        self.counts.cuts += 1;
        self.power_on()
    }

    /// Cut power just before the `n`th mutating request from now (n >= 1):
    /// that request and every later one on old handles fail with EIO.
    pub fn arm_cut(&mut self, n: u64) {
        self.countdown = Some(n.max(1));
    }

    pub fn disarm(&mut self) {
        self.countdown = None;
    }

    pub fn armed(&self) -> bool {
        self.countdown.is_some()
    }

    /// Called before each mutating request; Err when the power went.
    pub fn mutating(&mut self) -> io::Result<()> {
        if let Some(n) = self.countdown {
            if n <= 1 {
                self.cut()?;
                self.counts.refused += 1;
                return Err(stale());
            }
            self.countdown = Some(n - 1);
        }
        Ok(())
    }

    pub fn lookup(&self, name: &OsStr) -> Option<(u64, u64)> {
        let ino = *self.names.get(name)?;
        Some((ino, self.inodes.get(&ino)?.size))
    }

    pub fn size(&self, ino: u64) -> io::Result<u64> {
        Ok(self.inodes.get(&ino).ok_or_else(stale)?.size)
    }

    pub fn names(&self) -> Vec<(OsString, u64)> {
        self.names.iter().map(|(n, i)| (n.clone(), *i)).collect()
    }

    pub fn ino_of(&self, fh: u64) -> io::Result<u64> {
        self.handles.get(&fh).copied().ok_or_else(stale)
    }

    pub fn open(&mut self, ino: u64) -> io::Result<u64> {
        let inode = self.inodes.get_mut(&ino).ok_or_else(stale)?;
        inode.open += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, ino);
        Ok(fh)
    }

    pub fn release(&mut self, fh: u64) {
        if let Some(ino) = self.handles.remove(&fh) {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.open = inode.open.saturating_sub(1);
            }
            self.reap(ino);
        }
    }

    /// Create `name` (or return the inode it names).
    pub fn create(&mut self, name: &OsStr) -> io::Result<u64> {
        if name.as_bytes().starts_with(HIDDEN.as_bytes()) {
            return Err(einval());
        }
        if let Some(&ino) = self.names.get(name) {
            return Ok(ino);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut inode = Inode::durable(OsString::new(), 0);
        inode.backing = None;
        self.inodes.insert(ino, inode);
        self.names.insert(name.to_owned(), ino);
        Ok(ino)
    }

    pub fn unlink(&mut self, name: &OsStr) -> io::Result<()> {
        let ino = self
            .names
            .remove(name)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        self.unlinked(ino);
        Ok(())
    }

    pub fn rename(&mut self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        if to.as_bytes().starts_with(HIDDEN.as_bytes()) {
            return Err(einval());
        }
        let ino = self
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        if let Some(old) = self.names.insert(to.to_owned(), ino) {
            if old != ino {
                self.unlinked(old);
            }
        }
        Ok(())
    }

    fn unlinked(&mut self, ino: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.linked = false;
        }
        self.reap(ino);
    }

    /// Forget an inode nothing refers to any more (no name, no handle, no
    /// durable name): its hidden backing file goes too.
    fn reap(&mut self, ino: u64) {
        let gone = self
            .inodes
            .get(&ino)
            .is_some_and(|i| !i.linked && i.open == 0)
            && !self.durable.values().any(|&d| d == ino);
        if gone {
            if let Some(Inode {
                backing: Some(b), ..
            }) = self.inodes.remove(&ino)
            {
                let _ = std::fs::remove_file(self.dir.join(b));
            }
        }
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(stale)
    }

    /// The backing file of `ino`, opened (and created hidden) on demand.
    fn backing_file<'a>(
        dir: &std::path::Path,
        ino: u64,
        inode: &'a mut Inode,
    ) -> io::Result<&'a File> {
        if inode.file.is_none() {
            let name = inode
                .backing
                .get_or_insert_with(|| format!("{HIDDEN}{ino}").into());
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join(name))?;
            inode.file = Some(f);
        }
        inode.file.as_ref().ok_or_else(stale)
    }

    /// Page `p` as the file now holds it.
    fn page(&mut self, ino: u64, p: u64) -> io::Result<Vec<u8>> {
        let dir = self.dir.clone();
        let inode = self.inode(ino)?;
        match inode.pages.get(&p) {
            Some(Page::Data(d)) => return Ok(d.to_vec()),
            Some(Page::Zero) => return Ok(vec![0; PAGE as usize]),
            None => {}
        }
        let mut buf = vec![0u8; PAGE as usize];
        let off = p * PAGE;
        if inode.backing.is_none() || off >= inode.floor {
            return Ok(buf);
        }
        let want = (inode.floor - off).min(PAGE) as usize;
        let f = Self::backing_file(&dir, ino, inode)?;
        let mut got = 0;
        while got < want {
            let n = f.read_at(&mut buf[got..want], off + got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(buf)
    }

    pub fn read(&mut self, ino: u64, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let size = self.size(ino)?;
        let end = off.saturating_add(len).min(size);
        let mut out = Vec::with_capacity(end.saturating_sub(off) as usize);
        let mut pos = off;
        while pos < end {
            let p = pos / PAGE;
            let page = self.page(ino, p)?;
            let from = (pos - p * PAGE) as usize;
            let to = ((end - p * PAGE).min(PAGE)) as usize;
            out.extend_from_slice(&page[from..to]);
            pos = p * PAGE + to as u64;
        }
        Ok(out)
    }

    pub fn write(&mut self, ino: u64, off: u64, data: &[u8]) -> io::Result<()> {
        let end = off.checked_add(data.len() as u64).ok_or_else(einval)?;
        let mut pos = off;
        while pos < end {
            let p = pos / PAGE;
            let from = (pos - p * PAGE) as usize;
            let to = ((end - p * PAGE).min(PAGE)) as usize;
            let src = &data[(pos - off) as usize..(pos - off) as usize + (to - from)];
            let mut page = if from == 0 && to == PAGE as usize {
                vec![0u8; PAGE as usize]
            } else {
                self.page(ino, p)?
            };
            page[from..to].copy_from_slice(src);
            self.inode(ino)?
                .pages
                .insert(p, Page::Data(page.into_boxed_slice()));
            pos = p * PAGE + to as u64;
        }
        let inode = self.inode(ino)?;
        inode.size = inode.size.max(end);
        Ok(())
    }

    pub fn truncate(&mut self, ino: u64, size: u64) -> io::Result<()> {
        let cur = self.size(ino)?;
        if size < cur {
            if !size.is_multiple_of(PAGE) {
                let p = size / PAGE;
                let mut page = self.page(ino, p)?;
                page[(size % PAGE) as usize..].fill(0);
                self.inode(ino)?
                    .pages
                    .insert(p, Page::Data(page.into_boxed_slice()));
            }
            let inode = self.inode(ino)?;
            let keep = size.div_ceil(PAGE);
            inode.pages.retain(|&p, _| p < keep);
            inode.floor = inode.floor.min(size);
        }
        self.inode(ino)?.size = size;
        Ok(())
    }

    /// fallocate(2): mode 0 (allocate, may extend), KEEP_SIZE alone (no
    /// visible change) and PUNCH_HOLE|KEEP_SIZE; anything else EOPNOTSUPP.
    pub fn fallocate(&mut self, ino: u64, off: u64, len: u64, mode: i32) -> io::Result<()> {
        let end = off.checked_add(len).ok_or_else(einval)?;
        const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        match mode {
            0 => {
                let inode = self.inode(ino)?;
                inode.size = inode.size.max(end);
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => self.size(ino).map(drop),
            PUNCH => self.punch(ino, off, end),
            _ => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        }
    }

    fn punch(&mut self, ino: u64, off: u64, end: u64) -> io::Result<()> {
        let end = end.min(self.size(ino)?);
        let mut pos = off;
        while pos < end {
            let p = pos / PAGE;
            let from = (pos - p * PAGE) as usize;
            let to = ((end - p * PAGE).min(PAGE)) as usize;
            if from == 0 && to == PAGE as usize {
                self.inode(ino)?.pages.insert(p, Page::Zero);
            } else {
                let mut page = self.page(ino, p)?;
                page[from..to].fill(0);
                self.inode(ino)?
                    .pages
                    .insert(p, Page::Data(page.into_boxed_slice()));
            }
            pos = p * PAGE + to as u64;
        }
        Ok(())
    }

    /// Whether page `p` may hold data (for SEEK_DATA/SEEK_HOLE).
    fn page_has_data(&mut self, ino: u64, p: u64) -> io::Result<bool> {
        let dir = self.dir.clone();
        let inode = self.inode(ino)?;
        match inode.pages.get(&p) {
            Some(Page::Data(_)) => return Ok(true),
            Some(Page::Zero) => return Ok(false),
            None => {}
        }
        let off = p * PAGE;
        if inode.backing.is_none() || off >= inode.floor {
            return Ok(false);
        }
        let f = Self::backing_file(&dir, ino, inode)?;
        let pos = libc::off_t::try_from(off).map_err(|_| einval())?;
        // SAFETY: lseek only reads its integer arguments; the fd belongs to
        // `f`, open for the duration of the call.
        let r = unsafe { libc::lseek(f.as_raw_fd(), pos, libc::SEEK_DATA) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENXIO) => Ok(false),
                _ => Err(e),
            };
        }
        Ok((r as u64) < off + PAGE)
    }

    /// lseek SEEK_DATA (`data`) or SEEK_HOLE, page-granular.
    pub fn seek(&mut self, ino: u64, off: u64, data: bool) -> io::Result<u64> {
        let size = self.size(ino)?;
        if off >= size {
            return Err(io::Error::from_raw_os_error(libc::ENXIO));
        }
        for p in off / PAGE..size.div_ceil(PAGE) {
            if self.page_has_data(ino, p)? == data {
                return Ok(off.max(p * PAGE));
            }
        }
        if data {
            Err(io::Error::from_raw_os_error(libc::ENXIO))
        } else {
            Ok(size)
        }
    }

    /// fsync/fdatasync of one file: its data and size become durable.
    pub fn sync_file(&mut self, ino: u64) -> io::Result<()> {
        self.counts.file_syncs += 1;
        let dir = self.dir.clone();
        let inode = self.inode(ino)?;
        let pages = std::mem::take(&mut inode.pages);
        let (size, floor) = (inode.size, inode.floor);
        let f = Self::backing_file(&dir, ino, inode)?;
        if floor < f.metadata()?.len() {
            f.set_len(floor)?;
        }
        for (p, page) in pages {
            let off = p * PAGE;
            // Truncation drops pages past the size; none should be left.
            let Some(left) = size.checked_sub(off).filter(|&l| l > 0) else {
                continue;
            };
            let n = left.min(PAGE) as usize;
            match page {
                Page::Data(d) => f.write_all_at(&d[..n], off)?,
                Page::Zero => punch_hole(f, off, n as u64)?,
            }
        }
        f.set_len(size)?;
        inode.floor = size;
        Ok(())
    }

    /// fsync of the root directory: the namespace becomes durable.
    pub fn sync_dir(&mut self) -> io::Result<()> {
        self.counts.dir_syncs += 1;
        let durable = std::mem::take(&mut self.durable);
        // Durable names that no longer name their inode: park it hidden.
        for (name, ino) in &durable {
            if self.names.get(name) == Some(ino) {
                continue;
            }
            let hidden: OsString = format!("{HIDDEN}{ino}").into();
            std::fs::rename(self.dir.join(name), self.dir.join(&hidden))?;
            if let Some(inode) = self.inodes.get_mut(ino) {
                inode.backing = Some(hidden);
            }
        }
        // Names not yet durable: move their inode's backing file there.
        for (name, ino) in &self.names {
            if durable.get(name) == Some(ino) {
                continue;
            }
            let inode = self.inodes.get_mut(ino).ok_or_else(stale)?;
            Self::backing_file(&self.dir, *ino, inode)?;
            if let Some(b) = &inode.backing {
                std::fs::rename(self.dir.join(b), self.dir.join(name))?;
            }
            inode.backing = Some(name.clone());
        }
        self.durable = self.names.clone();
        for ino in durable.values() {
            self.reap(*ino);
        }
        Ok(())
    }
}

/// Deallocate `len` bytes of `f` at `off` (FALLOC_FL_PUNCH_HOLE, size
/// kept): they read as zeros.
pub fn punch_hole(f: &File, off: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(off), libc::off_t::try_from(len)) else {
        return Err(einval());
    };
    // SAFETY: fallocate only reads its integer arguments; the fd belongs to
    // `f`, open for the duration of the call.
    let r = unsafe {
        libc::fallocate(
            f.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
