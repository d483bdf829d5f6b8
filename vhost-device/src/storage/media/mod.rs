//! The media a device stores its blocks on: bytes addressed by offset,
//! with an opt-in volatile write cache in front ([`cache`]). The zoned
//! device (`storage::device`) sees a [`Media`] only, so it runs the same
//! over the backing file ([`FileMedia`]) and over memory ([`MemMedia`],
//! for tests).
//!
//! Every offset and length is a whole number of the block size the media
//! was made for; the device checks ranges before it calls in.

pub mod cache;
mod file;
mod mem;
pub mod vectored;

use std::{fmt, fs::File, io};

pub use cache::{Backing, WriteCache, CAPACITY};
pub use file::{copy_bytes, FileMedia};
pub use mem::MemMedia;
pub use vectored::{mem_len, MemSlice};

/// Byte storage with a volatile write cache in front (see [`cache`]).
pub trait Media: Send + Sync + fmt::Debug {
    /// Read whole blocks at byte `off`: the stored content with the held
    /// blocks over it.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Write whole blocks at byte `off`: held when the cache is on, else
    /// stored at once.
    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()>;

    /// [`Self::read_at`] into memory the caller does not own (`dst`, in
    /// order, whole blocks together). By default through a buffer; a file
    /// with nothing held reads straight into it.
    fn read_to(&self, off: u64, dst: &[MemSlice<'_>]) -> io::Result<()> {
        vectored::read_buffered(dst, |buf| self.read_at(off, buf))
    }

    /// [`Self::write_at`] from memory the caller does not own (`src`, in
    /// order, whole blocks together). By default through a buffer.
    fn write_from(&self, off: u64, src: &[MemSlice<'_>]) -> io::Result<()> {
        vectored::write_buffered(src, |buf| self.write_at(off, buf))
    }

    /// Store every held block (not synced).
    fn write_back(&self) -> io::Result<()>;

    /// Make what is stored durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;

    /// Make `len` bytes at `off` read as zeros, in the store (held blocks
    /// are not touched).
    fn discard(&self, off: u64, len: u64) -> io::Result<()>;

    /// The byte ranges of the store that may hold data, in order; an error
    /// if the media cannot tell.
    fn data_extents(&self) -> io::Result<Vec<(u64, u64)>>;

    /// Whether writes are held (the volatile write cache is on).
    fn volatile(&self) -> bool;

    /// Turn the volatile write cache on or off; turned off, every held
    /// block is stored first (not synced), with no write in between.
    fn set_volatile(&self, on: bool) -> io::Result<()>;

    /// Blocks held now.
    fn held_blocks(&self) -> u64;

    /// Drop every held block (a power cut); how many there were.
    fn drop_held(&self) -> u64;

    /// The backing file, when no cache stands in front of it: the copy
    /// fast path (`copy_file_range(2)`) may use it directly.
    fn direct_file(&self) -> Option<&File> {
        None
    }
}

/// Largest chunk moved by one `copy_file_range` call or bounce buffer.
pub(crate) const CHUNK: u64 = 1 << 20;

/// Copy `len` bytes from `src` at byte `src_off` to `dst` at `dst_off`:
/// between the backing files when both are files without a cache in
/// front, else through the media (reading held blocks, holding the written
/// ones). Overlapping ranges of one media are copied as if through a
/// temporary buffer.
pub fn copy(
    src: &dyn Media,
    src_off: u64,
    dst: &dyn Media,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    if let (Some(s), Some(d)) = (src.direct_file(), dst.direct_file()) {
        return copy_bytes(s, src_off, d, dst_off, len);
    }
    let same = std::ptr::eq(
        src as *const dyn Media as *const u8,
        dst as *const dyn Media as *const u8,
    );
    let overlapping = same && overlap(src_off, dst_off, len);
    bounce(
        len,
        overlapping && dst_off > src_off,
        |at, buf| src.read_at(src_off + at, buf),
        |at, buf| dst.write_at(dst_off + at, buf),
    )
}

/// Whether `len` bytes at `a` and at `b` overlap.
fn overlap(a: u64, b: u64, len: u64) -> bool {
    a < b.saturating_add(len) && b < a.saturating_add(len)
}

/// Move `len` bytes through a buffer in chunks of at most [`CHUNK`] (a
/// multiple of every block size): `read` and `write` take the offset from
/// the start of the copy. `backwards` runs the chunks from the end, so a
/// destination overlapping its source from above reads every source byte
/// before overwriting it.
fn bounce(
    len: u64,
    backwards: bool,
    mut read: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
    mut write: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    let mut done = 0u64;
    while done < len {
        let n = CHUNK.min(len - done);
        let at = if backwards { len - done - n } else { done };
        let chunk = &mut buf[..n as usize];
        read(at, chunk)?;
        write(at, chunk)?;
        done += n;
    }
    Ok(())
}
