//! An opt-in volatile write cache, to emulate a power cut exactly.
//!
//! Off (the default), a write goes to the backing file at once and is
//! durable after the next flush (`storage::meta` has the rule).
//!
//! On (`cache=volatile` on the command line, or the control command
//! `cache`), a write that is not FUA is held in memory, block by block,
//! until a flush; reads see the held blocks, and zone write pointers
//! advance as usual (the zone table lives in memory in both modes). A
//! flush (SYNCHRONIZE CACHE, NVMe Flush, a FUA write, a zone action's
//! persist) writes every held block to the file, syncs it, then persists
//! the write pointers. Copies and appends go through the cache too.
//!
//! A power cut ([`Device::power_cut`]) drops every held block and rolls
//! every zone back to the state last persisted, with open zones coming back
//! CLOSED (ZBC-2 4.4.3.5, ZNS 2.1.1: open zones do not survive a power
//! cycle), and discards the data past the rolled-back write pointers: what
//! a restart after a real power loss finds. What was flushed (or written
//! with FUA) survives.
//!
//! The cache holds at most [`CAPACITY`] bytes; a write that would pass it
//! writes the held blocks to the file first, without persisting anything
//! (as a drive may write its cache back at any time): those blocks then
//! survive a power cut in conventional zones and on devices without zones,
//! and are discarded past the persisted write pointer of a sequential zone.
//!
//! Lock order: `meta`, `zones`, then the cache.

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

use super::{
    device::{lock, Device},
    error::Result,
    units::BlockCount,
    zone::{Zone, ZoneCondition},
};

/// Most bytes held before a write evicts them to the file.
pub const CAPACITY: usize = 64 << 20;

/// The blocks held and the zones as last persisted.
#[derive(Debug, Default)]
struct Held {
    /// Block number -> its data (one logical block).
    blocks: BTreeMap<u64, Box<[u8]>>,
    /// Every zone as last persisted (kept only while the cache is on).
    durable: Vec<Zone>,
}

/// A device's write cache (see the module documentation).
#[derive(Debug)]
pub struct WriteCache {
    block_size: usize,
    on: AtomicBool,
    held: Mutex<Held>,
}

/// What a power cut did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PowerCut {
    /// Written blocks never made durable, now gone.
    pub dropped_blocks: u64,
    /// Zones whose condition or write pointer went back.
    pub zones_rolled_back: u64,
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
    pub fn write(&self, file: &File, off: u64, data: &[u8]) -> io::Result<()> {
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
    pub fn read(&self, file: &File, off: u64, buf: &mut [u8]) -> io::Result<()> {
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
    pub fn write_back(&self, file: &File) -> io::Result<()> {
        let mut held = self.held();
        Self::write_back_held(&mut held, file, self.block_size)
    }

    /// Runs of consecutive held blocks go to the file in one write each.
    fn write_back_held(held: &mut Held, file: &File, bs: usize) -> io::Result<()> {
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

    /// Note the zones just persisted: a power cut goes back to them.
    pub fn persisted(&self, zones: &[(usize, Zone)]) {
        if !self.is_on() {
            return;
        }
        let mut held = self.held();
        for (i, z) in zones {
            if let Some(d) = held.durable.get_mut(*i) {
                *d = *z;
            }
        }
    }
}

impl Device {
    /// Whether the volatile write cache is on (see `storage::cache`).
    pub fn volatile_cache(&self) -> bool {
        self.cache.is_on()
    }

    /// Blocks written but not yet written back (0 with the cache off).
    pub fn cached_blocks(&self) -> u64 {
        self.cache.held_blocks()
    }

    /// Turn the volatile write cache on or off. Either way everything
    /// written so far is made durable first, as by a flush; turned on, that
    /// state is what a power cut goes back to. Meant for an idle device: a
    /// write racing the switch may land on either side of it.
    pub fn set_volatile_cache(&self, on: bool) -> Result<()> {
        if on == self.cache.is_on() {
            return Ok(());
        }
        if !on {
            self.flush()?;
            let mut held = self.cache.held();
            WriteCache::write_back_held(&mut held, &self.file, self.cache.block_size)?;
            held.durable.clear();
            self.cache.on.store(false, Ordering::Release);
            drop(held);
            self.file.sync_data()?;
            log::info!("volatile write cache off");
            return Ok(());
        }
        match (&self.meta, &self.zones) {
            (Some(meta), Some(table)) => {
                let mut meta = lock(meta);
                let mut table = lock(table);
                self.persist_dirty(&mut meta, &mut table)?;
                let mut held = self.cache.held();
                held.durable = table.zones().to_vec();
                self.cache.on.store(true, Ordering::Release);
            }
            _ => {
                self.file.sync_data()?;
                self.cache.on.store(true, Ordering::Release);
            }
        }
        log::info!("volatile write cache on: unflushed writes are lost at a power cut");
        Ok(())
    }

    /// Emulate a power loss (see `storage::cache`): drop every write not
    /// made durable, roll the zones back to their persisted state, discard
    /// the data past the rolled-back write pointers. `None` when the
    /// volatile write cache is off: then every completed write counts as
    /// durable and there is nothing to lose. Listeners hear of the loss
    /// ([`super::ZoneListener::data_lost`]) after the device is unlocked.
    pub fn power_cut(&self) -> Result<Option<PowerCut>> {
        let cut = self.drop_unflushed()?;
        if cut.is_some_and(|c| c.dropped_blocks > 0 || c.zones_rolled_back > 0) {
            self.notify_data_lost();
        }
        Ok(cut)
    }

    fn drop_unflushed(&self) -> Result<Option<PowerCut>> {
        if !self.cache.is_on() {
            return Ok(None);
        }
        let _meta = self.meta.as_ref().map(lock);
        let mut table = self.zones.as_ref().map(lock);
        let mut cut = PowerCut::default();
        let mut discards = Vec::new();
        {
            let mut held = self.cache.held();
            cut.dropped_blocks = held.blocks.len() as u64;
            held.blocks.clear();
            if let Some(table) = table.as_mut() {
                for (i, d) in held.durable.iter().enumerate() {
                    let Some(now) = table.zones().get(i).copied() else {
                        continue;
                    };
                    if !now.is_sequential() {
                        continue;
                    }
                    table.restore(i, d.cond, d.wp, d.non_seq);
                    let after = table.zones()[i];
                    if (after.cond, after.wp) != (now.cond, now.wp) {
                        cut.zones_rolled_back += 1;
                    }
                    if !matches!(after.cond, ZoneCondition::ReadOnly | ZoneCondition::Offline)
                        && after.wp < after.end()
                    {
                        discards.push((
                            after.wp,
                            BlockCount::new(after.end().get() - after.wp.get()),
                        ));
                    }
                }
                // The durable state now includes the open -> closed moves.
                held.durable = table.zones().to_vec();
            }
        }
        for (lba, count) in discards {
            self.discard(lba, count)?;
        }
        log::info!(
            "power cut: {} unflushed block(s) dropped, {} zone(s) rolled back",
            cut.dropped_blocks,
            cut.zones_rolled_back
        );
        Ok(Some(cut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{
        copy::{copy, Segment},
        device::{DeviceConfig, ZonedConfig},
        units::Lba,
        zone::{ZoneAction, ZoneTarget},
    };

    fn zoned(dir: &tempfile::TempDir) -> Device {
        // 4 KiB blocks, zones of 16 blocks, 2 conventional zones, 8 zones.
        Device::open(&DeviceConfig {
            path: dir.path().join("disk.img"),
            size: 8 * 65536,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 65536,
                zone_capacity: 65536,
                conventional_zones: 2,
                ..ZonedConfig::default()
            }),
        })
        .unwrap()
    }

    fn block(dev: &Device, lba: u64) -> u8 {
        let mut b = vec![0u8; 4096];
        dev.read(Lba::new(lba), &mut b).unwrap();
        assert!(b.iter().all(|&x| x == b[0]), "block {lba} is not uniform");
        b[0]
    }

    fn wp(dev: &Device, zone: u64) -> (ZoneCondition, Lba) {
        let z = dev.report_zones(Lba::new(zone), 1, |_| true).unwrap()[0];
        (z.cond, z.wp)
    }

    #[test]
    fn unflushed_writes_are_lost_and_the_write_pointer_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let dev = zoned(&dir);
        assert_eq!(dev.power_cut().unwrap(), None, "no cache: nothing to cut");
        dev.write(Lba::new(0), &[1u8; 4096], false).unwrap();
        dev.write(Lba::new(32), &[1u8; 4096], false).unwrap();
        dev.set_volatile_cache(true).unwrap();
        // Written, not flushed: visible to reads, write pointer moved.
        dev.write(Lba::new(0), &[2u8; 4096], false).unwrap();
        dev.write(Lba::new(33), &[2u8; 2 * 4096], false).unwrap();
        assert_eq!((block(&dev, 0), block(&dev, 34)), (2, 2));
        assert_eq!(wp(&dev, 32), (ZoneCondition::ImplicitOpen, Lba::new(35)));
        assert_eq!(dev.cached_blocks(), 3);
        let cut = dev.power_cut().unwrap().unwrap();
        assert_eq!(
            cut,
            PowerCut {
                dropped_blocks: 3,
                zones_rolled_back: 1
            }
        );
        // The old data, the old write pointer (the open zone comes back
        // CLOSED), and nothing readable past it.
        assert_eq!(block(&dev, 0), 1);
        assert_eq!(block(&dev, 32), 1);
        assert_eq!(wp(&dev, 32), (ZoneCondition::Closed, Lba::new(33)));
        assert_eq!(block(&dev, 33), 0);
        // The zone takes writes at the rolled-back write pointer.
        dev.write(Lba::new(33), &[3u8; 4096], false).unwrap();
        assert_eq!(block(&dev, 33), 3);
    }

    #[test]
    fn flushed_and_fua_writes_survive() {
        let dir = tempfile::tempdir().unwrap();
        let dev = zoned(&dir);
        dev.set_volatile_cache(true).unwrap();
        dev.write(Lba::new(1), &[5u8; 4096], false).unwrap();
        dev.write(Lba::new(48), &[5u8; 4096], false).unwrap();
        dev.flush().unwrap();
        assert_eq!(dev.cached_blocks(), 0);
        dev.write(Lba::new(49), &[6u8; 4096], true).unwrap();
        dev.write(Lba::new(2), &[7u8; 4096], false).unwrap();
        let cut = dev.power_cut().unwrap().unwrap();
        assert_eq!(cut.dropped_blocks, 1);
        assert_eq!((block(&dev, 1), block(&dev, 2)), (5, 0));
        assert_eq!((block(&dev, 48), block(&dev, 49)), (5, 6));
        assert_eq!(wp(&dev, 48), (ZoneCondition::Closed, Lba::new(50)));
        // A second cut finds nothing to drop.
        assert_eq!(dev.power_cut().unwrap().unwrap(), PowerCut::default());
    }

    #[test]
    fn zone_actions_copies_and_appends_go_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let dev = zoned(&dir);
        dev.write(Lba::new(0), &[9u8; 4 * 4096], false).unwrap();
        dev.set_volatile_cache(true).unwrap();
        // An append and a copy, held; the copy reads the appended blocks.
        let at = dev.append(Lba::new(64), &[4u8; 4096], false).unwrap();
        assert_eq!(at, Lba::new(64));
        copy(&[Segment {
            src: &dev,
            src_lba: Lba::new(64),
            dst: &dev,
            dst_lba: Lba::new(5),
            count: BlockCount::new(1),
        }])
        .unwrap();
        assert_eq!(block(&dev, 5), 4);
        assert_eq!(dev.cached_blocks(), 2);
        // A zone action persists: everything so far becomes durable.
        dev.zone_action(ZoneAction::Finish, ZoneTarget::One(Lba::new(80)))
            .unwrap();
        assert_eq!(dev.cached_blocks(), 0);
        dev.write(Lba::new(6), &[8u8; 4096], false).unwrap();
        dev.power_cut().unwrap().unwrap();
        assert_eq!((block(&dev, 5), block(&dev, 6), block(&dev, 64)), (4, 0, 4));
        assert_eq!(wp(&dev, 64), (ZoneCondition::Closed, Lba::new(65)));
        assert_eq!(wp(&dev, 80).0, ZoneCondition::Full);
        // Off: the cache is written back and durable.
        dev.write(Lba::new(7), &[1u8; 4096], false).unwrap();
        dev.set_volatile_cache(false).unwrap();
        assert_eq!(dev.cached_blocks(), 0);
        assert_eq!(block(&dev, 7), 1);
        assert_eq!(dev.power_cut().unwrap(), None);
    }

    #[test]
    fn the_cache_survives_a_restart_only_as_far_as_it_was_flushed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let dev = zoned(&dir);
            dev.set_volatile_cache(true).unwrap();
            dev.write(Lba::new(32), &[1u8; 4096], false).unwrap();
            dev.flush().unwrap();
            dev.write(Lba::new(33), &[2u8; 4096], false).unwrap();
            dev.write(Lba::new(3), &[2u8; 4096], false).unwrap();
            // Dropped without a flush: the held blocks never reach the file.
        }
        let dev = zoned(&dir);
        assert_eq!(wp(&dev, 32), (ZoneCondition::Closed, Lba::new(33)));
        assert_eq!(
            (block(&dev, 32), block(&dev, 33), block(&dev, 3)),
            (1, 0, 0)
        );
    }
}
