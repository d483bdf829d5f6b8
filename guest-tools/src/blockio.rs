//! O_DIRECT block I/O of stamped blocks, without unsafe: buffers are
//! aligned by slicing an over-allocated `Vec`.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::Path,
};

use crate::stamp::{self, BLOCK_SIZE};

/// Alignment of every I/O buffer: enough for any logical block size up to
/// 4096 and for the DMA alignment of every driver we meet.
pub const ALIGN: usize = 4096;

/// A zeroed buffer of `len` bytes whose start is [`ALIGN`]-aligned.
#[derive(Debug)]
pub struct AlignedBuf {
    storage: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    /// Allocate `len` zeroed bytes, aligned.
    pub fn new(len: usize) -> Self {
        let storage = vec![0u8; len + ALIGN];
        let off = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { storage, off, len }
    }

    /// The aligned bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.off..self.off + self.len]
    }

    /// The aligned bytes, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.off..self.off + self.len]
    }
}

/// Open a block device read-write with O_DIRECT (the zone management
/// ioctls need a writable fd).
pub fn open_direct(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// One pwrite of exactly `buf`; a short write is an error.
pub fn pwrite_exact(f: &File, buf: &[u8], byte_off: u64) -> io::Result<()> {
    let n = f.write_at(buf, byte_off)?;
    if n != buf.len() {
        return Err(io::Error::other(format!(
            "short write: {n} of {} bytes at byte {byte_off}",
            buf.len()
        )));
    }
    Ok(())
}

/// Write `nblocks` stamped blocks of generation `gen` at `byte_off` (a
/// multiple of 4096), `per_write` blocks per pwrite.
pub fn write_stamped(
    f: &File,
    byte_off: u64,
    nblocks: u64,
    gen: u64,
    per_write: u64,
) -> io::Result<()> {
    let per_write = per_write.max(1);
    let mut done = 0;
    while done < nblocks {
        let n = per_write.min(nblocks - done);
        let off = byte_off + done * BLOCK_SIZE as u64;
        let mut buf = AlignedBuf::new(n as usize * BLOCK_SIZE);
        stamp::fill_range(buf.as_mut_slice(), off / BLOCK_SIZE as u64, gen)
            .map_err(|e| io::Error::other(e.to_string()))?;
        pwrite_exact(f, buf.as_slice(), off)?;
        done += n;
    }
    Ok(())
}

/// Read `nblocks` at `byte_off` and verify each is the stamped block of
/// generation `gen` for its place. The error names the block and why.
pub fn read_verify(f: &File, byte_off: u64, nblocks: u64, gen: u64) -> Result<(), String> {
    let len = nblocks as usize * BLOCK_SIZE;
    let mut buf = AlignedBuf::new(len);
    let n = f
        .read_at(buf.as_mut_slice(), byte_off)
        .map_err(|e| format!("read of {len} bytes at byte {byte_off}: {e}"))?;
    if n != len {
        return Err(format!("short read: {n} of {len} bytes at byte {byte_off}"));
    }
    stamp::verify_range(buf.as_slice(), byte_off / BLOCK_SIZE as u64, gen)
        .map_err(|(b, e)| format!("block {b} (byte {}): {e}", b * BLOCK_SIZE as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned() {
        for len in [0, 1, 4096, 12345] {
            let mut b = AlignedBuf::new(len);
            assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
            assert_eq!(b.as_mut_slice().len(), len);
        }
    }

    #[test]
    fn stamped_file_roundtrip() {
        // A regular file without O_DIRECT (tmpfs may refuse it).
        let p = std::env::temp_dir().join(format!("zonecopy-blockio-{}", std::process::id()));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        write_stamped(&f, 8192, 5, 3, 2).unwrap();
        assert_eq!(read_verify(&f, 8192, 5, 3), Ok(()));
        assert_eq!(read_verify(&f, 12288, 4, 3), Ok(()));
        let e = read_verify(&f, 8192, 5, 4).unwrap_err();
        assert!(
            e.starts_with("block 2 (byte 8192): wrong generation"),
            "{e}"
        );
        let e = read_verify(&f, 0, 1, 3).unwrap_err();
        assert!(e.contains("all zeros"), "{e}");
        let e = read_verify(&f, 8192, 6, 3).unwrap_err();
        assert!(e.contains("short read"), "{e}");
        drop(f);
        std::fs::remove_file(p).unwrap();
    }
}
