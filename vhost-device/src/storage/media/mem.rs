//! [`MemMedia`]: blocks in memory, with the same write cache as a file,
//! for tests of the layers above that need no backing file.

use std::{io, sync::Mutex};

use super::{
    cache::{lock, Backing, WriteCache},
    Media,
};

/// Bytes in memory behind a write cache.
#[derive(Debug)]
pub struct MemMedia {
    store: Store,
    cache: WriteCache,
}

/// The stored bytes; zero where nothing was stored.
#[derive(Debug)]
struct Store(Mutex<Vec<u8>>);

impl Backing for Store {
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        let data = lock(&self.0);
        let src = range(data.len(), off, buf.len())?;
        buf.copy_from_slice(&data[src]);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        let mut data = lock(&self.0);
        let dst = range(data.len(), off, buf.len())?;
        data[dst].copy_from_slice(buf);
        Ok(())
    }
}

/// `len` bytes at `off` inside `size` bytes, or the error a short file
/// gives.
fn range(size: usize, off: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
    usize::try_from(off)
        .ok()
        .and_then(|o| Some(o..o.checked_add(len)?))
        .filter(|r| r.end <= size)
        .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
}

impl MemMedia {
    /// `size` bytes of zeros in blocks of `block_size` bytes, the cache off.
    pub fn new(size: usize, block_size: u32) -> Self {
        MemMedia {
            store: Store(Mutex::new(vec![0; size])),
            cache: WriteCache::new(block_size),
        }
    }
}

impl Media for MemMedia {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.cache.read(&self.store, off, buf)
    }

    fn write_at(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.cache.write(&self.store, off, data)
    }

    fn write_back(&self) -> io::Result<()> {
        self.cache.write_back(&self.store)
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn discard(&self, off: u64, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut data = lock(&self.store.0);
        let r = range(data.len(), off, len)?;
        data[r].fill(0);
        Ok(())
    }

    fn data_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        Ok(vec![(0, lock(&self.store.0).len() as u64)])
    }

    fn volatile(&self) -> bool {
        self.cache.is_on()
    }

    fn set_volatile(&self, on: bool) -> io::Result<()> {
        self.cache.set_on(on, &self.store)
    }

    fn held_blocks(&self) -> u64 {
        self.cache.held_blocks()
    }

    fn drop_held(&self) -> u64 {
        self.cache.drop_held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_blocks_shadow_the_store_until_written_back_or_dropped() {
        let m = MemMedia::new(4 * 512, 512);
        m.write_at(512, &[1u8; 512]).unwrap();
        m.set_volatile(true).unwrap();
        m.write_at(512, &[2u8; 512]).unwrap();
        m.write_at(1024, &[3u8; 1024]).unwrap();
        let mut buf = vec![0u8; 3 * 512];
        m.read_at(512, &mut buf).unwrap();
        assert_eq!((buf[0], buf[512], buf[1024]), (2, 3, 3));
        assert_eq!(m.held_blocks(), 3);
        assert_eq!(m.drop_held(), 3);
        m.read_at(512, &mut buf).unwrap();
        assert_eq!((buf[0], buf[512]), (1, 0));
        m.write_at(0, &[4u8; 512]).unwrap();
        m.set_volatile(false).unwrap();
        assert_eq!(m.held_blocks(), 0);
        m.drop_held();
        m.read_at(0, &mut buf[..512]).unwrap();
        assert_eq!(buf[0], 4, "turned off: written back");
        assert!(m.read_at(4 * 512, &mut buf[..512]).is_err());
        m.discard(0, 512).unwrap();
        m.read_at(0, &mut buf[..512]).unwrap();
        assert_eq!(buf[0], 0);
    }
}
