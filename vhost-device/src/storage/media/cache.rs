//! An opt-in volatile write cache, to emulate a power cut exactly.
//!
//! Off (the default), a write goes to the store at once and is durable
//! after the next sync (`storage::meta` has the rule).
//!
//! On (`cache=volatile` on the command line, or the control command
//! `cache`), a write is held in memory, block by block, until it is
//! written back; reads see the held blocks. The device above
//! (`storage::device`) writes back and syncs on every flush (SYNCHRONIZE
//! CACHE, NVMe Flush, a FUA write, a zone action's persist), and at a
//! power cut drops every held block and rolls its zones back to the state
//! last persisted (`Device::power_cut`).
//!
//! The cache holds at most [`CAPACITY`] bytes; a write that would pass it
//! writes the held blocks to the store first, without syncing anything (as
//! a drive may write its cache back at any time): those blocks then
//! survive a power cut in conventional zones and on devices without zones,
//! and are discarded past the persisted write pointer of a sequential zone.
//!
//! Lock order: the device's `meta`, its `zones`, then the cache.

use std::{
    collections::BTreeMap,
    fs::File,
    io,
    os::unix::fs::FileExt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex, MutexGuard,
    },
};

/// Where held blocks go when written back: positioned whole-block I/O.
pub trait Backing {
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()>;
}

impl Backing for File {
    fn read_exact_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, off)
    }

    fn write_all_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, off)
    }
}

/// Lock a mutex. A panic while holding one cannot leave a half-made change
/// (every change is checked before it is applied), so a poisoned lock is
/// still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most bytes held before a write evicts them to the file.
pub const CAPACITY: usize = 64 << 20;

/// The blocks held.
#[derive(Debug, Default)]
struct Held {
    /// Block number -> its data (one logical block).
    blocks: BTreeMap<u64, Box<[u8]>>,
}

/// A device's write cache (see the module documentation).
#[derive(Debug)]
pub struct WriteCache {
    block_size: usize,
    on: AtomicBool,
    held: Mutex<Held>,
}

impl WriteCache {
    /// An empty cache, off, for blocks of `block_size` bytes.
    pub fn new(block_size: u32) -> Self {
        WriteCache {
            block_size: (block_size as usize).max(1),
            on: AtomicBool::new(false),
            held: Mutex::new(Held::default()),
        }
    }

    /// Whether writes are held.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Blocks held now.
    pub fn held_blocks(&self) -> u64 {
        lock(&self.held).blocks.len() as u64
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        lock(&self.held)
    }

    /// Write whole blocks of `data` at byte `off`: held when the cache is
    /// on, else straight to `file`.
    pub fn write(&self, file: &impl Backing, off: u64, data: &[u8]) -> io::Result<()> {
        if !self.is_on() {
            return file.write_all_at(data, off);
        }
        let mut held = self.held();
        // Turned off meanwhile: it wrote everything back.
        if !self.is_on() {
            return file.write_all_at(data, off);
        }
        let bs = self.block_size;
        if (held.blocks.len() + data.len() / bs) * bs > CAPACITY {
            Self::write_back_held(&mut held, file, bs)?;
        }
        let first = off / bs as u64;
        for (i, b) in data.chunks(bs).enumerate() {
            held.blocks.insert(first + i as u64, b.into());
        }
        Ok(())
    }

    /// Read whole blocks at byte `off` into `buf`: the file's content with
    /// the held blocks over it.
    pub fn read(&self, file: &impl Backing, off: u64, buf: &mut [u8]) -> io::Result<()> {
        if !self.is_on() {
            return file.read_exact_at(buf, off);
        }
        let held = self.held();
        file.read_exact_at(buf, off)?;
        let bs = self.block_size;
        let first = off / bs as u64;
        let n = (buf.len() / bs) as u64;
        for (blk, data) in held.blocks.range(first..first.saturating_add(n)) {
            let at = ((blk - first) as usize) * bs;
            if let Some(dst) = buf.get_mut(at..at + bs) {
                dst.copy_from_slice(data);
            }
        }
        Ok(())
    }

    /// Write every held block to `file` (not synced).
    pub fn write_back(&self, file: &impl Backing) -> io::Result<()> {
        let mut held = self.held();
        Self::write_back_held(&mut held, file, self.block_size)
    }

    /// Runs of consecutive held blocks go to the file in one write each.
    fn write_back_held(held: &mut Held, file: &impl Backing, bs: usize) -> io::Result<()> {
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0u64;
        let mut next = None;
        for (&blk, data) in &held.blocks {
            if next != Some(blk) && !run.is_empty() {
                file.write_all_at(&run, run_start * bs as u64)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = blk;
            }
            run.extend_from_slice(data);
            next = Some(blk + 1);
            if run.len() >= 1 << 20 {
                file.write_all_at(&run, run_start * bs as u64)?;
                run.clear();
                next = None;
            }
        }
        if !run.is_empty() {
            file.write_all_at(&run, run_start * bs as u64)?;
        }
        held.blocks.clear();
        Ok(())
    }

    /// Turn the cache on, or off: turned off, every held block is written
    /// to `file` first (not synced), with no write in between.
    pub fn set_on(&self, on: bool, file: &impl Backing) -> io::Result<()> {
        let mut held = self.held();
        if !on {
            Self::write_back_held(&mut held, file, self.block_size)?;
        }
        self.on.store(on, Ordering::Release);
        Ok(())
    }

    /// Drop every held block (a power cut); how many there were.
    pub fn drop_held(&self) -> u64 {
        let mut held = self.held();
        let n = held.blocks.len() as u64;
        held.blocks.clear();
        n
    }
}
