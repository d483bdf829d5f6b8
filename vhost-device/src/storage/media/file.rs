//! [`FileMedia`]: a sparse backing file with the write cache in front,
//! and the file-to-file copy (`copy_file_range(2)`).

use std::{
    fs::File,
    io,
    os::unix::{fs::FileExt, io::AsRawFd},
};

use super::{bounce, cache::WriteCache, overlap, vectored, Media, MemSlice, CHUNK};

/// A backing file and its volatile write cache.
#[derive(Debug)]
pub struct FileMedia {
    file: File,
    cache: WriteCache,
}

impl FileMedia {
    /// Blocks of `block_size` bytes in `file`, the cache off.
    pub fn new(file: File, block_size: u32) -> Self {
        FileMedia {
            file,
            cache: WriteCache::new(block_size),
        }
    }
}

impl Media for FileMedia {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.cache.read(&self.file, off, buf)
    }

    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.cache.write(&self.file, off, data)
    }

    /// Straight from the file into `dst` (`preadv`) while the cache is
    /// off; with it on, through a buffer, so held blocks are read.
    fn read_to(&self, off: u64, dst: &[MemSlice<'_>]) -> io::Result<()> {
        if self.cache.is_on() {
            return vectored::read_buffered(dst, |buf| self.cache.read(&self.file, off, buf));
        }
        vectored::pread_all(&self.file, off, dst)
    }

    /// Straight from `src` to the file (`pwritev`) while the cache is
    /// off (the same unlocked check as [`WriteCache::write`]); with it
    /// on, through a buffer into the held blocks.
    fn write_from(&self, off: u64, src: &[MemSlice<'_>]) -> io::Result<()> {
        if self.cache.is_on() {
            return vectored::write_buffered(src, |buf| self.cache.write(&self.file, off, buf));
        }
        vectored::pwrite_all(&self.file, off, src)
    }

    fn write_back(&self) -> io::Result<()> {
        self.cache.write_back(&self.file)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Punch a hole, so the range uses no space; zeros written where the
    /// file system cannot punch.
    fn discard(&self, off: u64, len: u64) -> io::Result<()> {
        let (Ok(o), Ok(l)) = (libc::off_t::try_from(off), libc::off_t::try_from(len)) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        // SAFETY: fallocate only reads its integer arguments; the fd is
        // owned by `self.file` and open for the duration of the call.
        let ret = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                o,
                l,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(err);
        }
        // No hole punching (e.g. tmpfs of old kernels): write zeros.
        let zeros = vec![0u8; CHUNK as usize];
        let mut pos = 0u64;
        while pos < len {
            let n = (len - pos).min(CHUNK) as usize;
            self.file.write_all_at(&zeros[..n], off + pos)?;
            pos += n as u64;
        }
        Ok(())
    }

    fn data_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        data_extents(&self.file)
    }

    fn volatile(&self) -> bool {
        self.cache.is_on()
    }

    fn set_volatile(&self, on: bool) -> io::Result<()> {
        self.cache.set_on(on, &self.file)
    }

    fn held_blocks(&self) -> u64 {
        self.cache.held_blocks()
    }

    fn drop_held(&self) -> u64 {
        self.cache.drop_held()
    }

    fn direct_file(&self) -> Option<&File> {
        (!self.cache.is_on()).then_some(&self.file)
    }
}

/// The byte ranges of `file` that hold data, in order (holes skipped), by
/// SEEK_DATA/SEEK_HOLE. An error if the file system cannot tell.
pub fn data_extents(file: &File) -> io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let mut extents = Vec::new();
    let mut pos: libc::off_t = 0;
    loop {
        // SAFETY: lseek only reads its integer arguments; the fd is open
        // for the duration of the call. Moving the file offset is harmless:
        // all I/O here is positioned (pread/pwrite).
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENXIO) => Ok(extents), // no data past `pos`
                _ => Err(err),
            };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        extents.push((data as u64, hole as u64));
        pos = hole;
    }
}

/// Copy `len` bytes from `src` at `src_off` to `dst` at `dst_off`. Uses
/// `copy_file_range(2)` and falls back to reading and writing where the
/// kernel refuses it (another filesystem, overlapping ranges in one file).
/// Overlapping ranges are copied as if through a temporary buffer.
pub fn copy_bytes(src: &File, src_off: u64, dst: &File, dst_off: u64, len: u64) -> io::Result<()> {
    let overlapping = same_file(src, dst)? && overlap(src_off, dst_off, len);
    if !overlapping {
        match copy_file_range_all(src, src_off, dst, dst_off, len) {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    bounce(
        len,
        overlapping && dst_off > src_off,
        |at, buf| src.read_exact_at(buf, src_off + at),
        |at, buf| dst.write_all_at(buf, dst_off + at),
    )
}

fn same_file(a: &File, b: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (a.metadata()?, b.metadata()?);
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

fn copy_file_range_all(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let to_off = |v: u64| {
            libc::loff_t::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        };
        let mut off_in = to_off(src_off + done)?;
        let mut off_out = to_off(dst_off + done)?;
        let n = (len - done).min(CHUNK) as usize;
        // SAFETY: both fds are open for the duration of the call and the
        // offset pointers point to live locals; the kernel copies between
        // the files without touching our memory otherwise.
        let ret = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                n,
                0,
            )
        };
        match ret {
            r if r < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            0 => {
                // Source shorter than expected: the backing file is sized to
                // the device, so this is an I/O error, not EOF semantics.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "copy_file_range copied nothing",
                ));
            }
            r => done += r as u64,
        }
    }
    Ok(())
}
