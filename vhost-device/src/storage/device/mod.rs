//! A zoned (or plain) block device: the zone state machine and the zone
//! metadata over a [`Media`] (a sparse backing file, or memory in tests),
//! reached through the fault layer ([`FaultyMedia`]).
//!
//! Opening one from its configuration is in [`config`]; the volatile
//! write cache switch and the power cut are in [`power`].

mod config;
mod power;
#[cfg(test)]
mod tests;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Mutex, MutexGuard, Weak,
};

pub use config::{ConfigError, DeviceConfig, ZonedConfig};
pub use power::PowerCut;

use super::{
    error::{Result, StorageError},
    fault::{FaultSet, FaultyMedia, Op},
    media::{self, mem_len, Media, MemMedia, MemSlice},
    meta::{MetaError, ZoneMeta},
    table::ZoneTable,
    units::{BlockCount, Lba},
    zone::{Zone, ZoneAction, ZoneCondition, ZoneGeometry, ZoneRules, ZoneTarget},
};

/// Static facts about a device, in logical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Number of logical blocks.
    pub capacity: BlockCount,
    /// Zone layout, if zoned.
    pub zones: Option<ZoneGeometry>,
}

impl Geometry {
    /// Check that `count` blocks at `lba` lie inside the device.
    pub fn check_range(&self, lba: Lba, count: BlockCount) -> Result<()> {
        match lba.checked_add(count) {
            Some(end) if end.get() <= self.capacity.get() => Ok(()),
            _ => Err(StorageError::OutOfRange {
                lba,
                count,
                capacity: self.capacity,
            }),
        }
    }
}

/// What a device moved, for the control socket and the tests that prove an
/// offloaded copy did not pass through the host.
#[derive(Debug, Default)]
pub struct DeviceStats {
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
    copied_bytes: AtomicU64,
    flushes: AtomicU64,
}

impl DeviceStats {
    /// Bytes read by the host (READ commands).
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes.load(Ordering::Relaxed)
    }

    /// Bytes written by the host (WRITE commands).
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes.load(Ordering::Relaxed)
    }

    /// Bytes written into this device by the copy engine (offload).
    pub fn copied_bytes(&self) -> u64 {
        self.copied_bytes.load(Ordering::Relaxed)
    }

    /// Completed flushes.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

/// Told about zone changes the device makes by itself (not as the result
/// of a host command), such as a zone going READ ONLY or OFFLINE: a front
/// end turns them into its own notices (NVMe Changed Zone List, ...).
pub trait ZoneListener: Send + Sync {
    /// The zone starting at `zone` changed. Called after the change, with
    /// no device lock held, so the listener may call back into the device.
    fn zone_changed(&self, zone: Lba);

    /// The device lost data nobody overwrote (a power cut dropped
    /// unflushed writes and rolled zones back): anything derived from the
    /// old contents is stale. Called like [`Self::zone_changed`].
    fn data_lost(&self) {}
}

/// The registered zone listeners (weak: a listener that is gone is
/// dropped at the next notice).
#[derive(Default)]
struct Listeners(Mutex<Vec<Weak<dyn ZoneListener>>>);

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listeners({})", lock(&self.0).len())
    }
}

/// A block device over a media. All methods take `&self`: the zone table
/// is behind a mutex held across the check and the data transfer of a
/// write, so writes into one zone are serialized and the write pointer only
/// moves over data that reached the media.
///
/// Lock order: `meta`, then `zones` (then the media's cache).
#[derive(Debug)]
pub struct Device {
    /// The media, with the fault rules around it (`storage::fault`).
    io: FaultyMedia,
    geo: Geometry,
    zones: Option<Mutex<ZoneTable>>,
    /// Zone metadata store; see `storage::meta` for the consistency rule.
    meta: Option<Mutex<Persisted>>,
    stats: DeviceStats,
    listeners: Listeners,
}

/// The zone metadata store, and the zones as last persisted while the
/// volatile write cache is on (what a power cut goes back to).
#[derive(Debug)]
struct Persisted {
    store: ZoneMeta,
    durable: Option<Vec<Zone>>,
}

impl Persisted {
    fn new(store: ZoneMeta) -> Self {
        Persisted {
            store,
            durable: None,
        }
    }

    /// Persist `dirty` zones; a power cut now goes back to them.
    fn persist(&mut self, dirty: &[(usize, Zone)]) -> Result<()> {
        self.store.persist(dirty).map_err(meta_io)?;
        if let Some(durable) = self.durable.as_mut() {
            for (i, z) in dirty {
                if let Some(d) = durable.get_mut(*i) {
                    *d = *z;
                }
            }
        }
        Ok(())
    }
}

impl Device {
    /// A device of `capacity` blocks over `media`, with `zones` (and their
    /// metadata store) if zoned.
    fn new(
        media: Box<dyn Media>,
        block_size: u32,
        capacity: BlockCount,
        zones: Option<ZoneTable>,
        meta: Option<Persisted>,
    ) -> Self {
        Device {
            io: FaultyMedia::new(media, block_size),
            geo: Geometry {
                block_size,
                capacity,
                zones: zones.as_ref().map(|t| *t.geometry()),
            },
            zones: zones.map(Mutex::new),
            meta: meta.map(Mutex::new),
            stats: DeviceStats::default(),
            listeners: Listeners::default(),
        }
    }

    /// A device without zones of `capacity` blocks in memory ([`MemMedia`]),
    /// for tests.
    pub fn in_memory(block_size: u32, capacity: BlockCount) -> Option<Self> {
        let size = usize::try_from(capacity.bytes(block_size)?).ok()?;
        let media = MemMedia::new(size, block_size);
        Some(Device::new(
            Box::new(media),
            block_size,
            capacity,
            None,
            None,
        ))
    }

    /// The media under the fault rules.
    fn media(&self) -> &dyn Media {
        self.io.media()
    }

    /// The device's fault rules.
    pub fn faults(&self) -> &FaultSet {
        self.io.rules()
    }

    /// The device's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Follow `rules` where zone models differ (ZBC-2's by default).
    pub fn set_zone_rules(&self, rules: ZoneRules) {
        if let Some(t) = &self.zones {
            lock(t).set_rules(rules);
        }
    }

    /// What the device moved so far.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    fn check_buf(&self, lba: Lba, len: usize) -> Result<BlockCount> {
        let bs = self.geo.block_size as usize;
        if !len.is_multiple_of(bs) {
            return Err(StorageError::PartialBlock {
                len,
                block_size: self.geo.block_size,
            });
        }
        let count = BlockCount::new((len / bs) as u64);
        self.geo.check_range(lba, count)?;
        Ok(count)
    }

    /// Read whole blocks at `lba` into `buf`. Blocks never written read as
    /// zeros.
    pub fn read(&self, lba: Lba, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        self.read_with(lba, len, |count| self.io.read(lba, count, buf))
    }

    /// [`Self::read`] straight into memory the caller does not own (a
    /// guest's buffers): the same checks, faults, delays and statistics.
    pub fn read_to(&self, lba: Lba, dst: &[MemSlice<'_>]) -> Result<()> {
        let len = mem_len(dst);
        self.read_with(lba, len, |count| self.io.read_to(lba, count, dst))
    }

    /// A read of `len` bytes at `lba`: checked, delayed, zone rules, then
    /// `io` with the block count, then counted.
    fn read_with(
        &self,
        lba: Lba,
        len: usize,
        io: impl FnOnce(BlockCount) -> Result<()>,
    ) -> Result<()> {
        let count = self.check_buf(lba, len)?;
        if count.get() == 0 {
            return Ok(());
        }
        self.io.delay(Op::Read, Some((lba, count)));
        if let Some(table) = &self.zones {
            lock(table).check_read(lba, count)?;
        }
        io(count)?;
        self.stats
            .read_bytes
            .fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Read whole blocks for the control plane: range-checked, but no zone
    /// rules and not counted in the statistics.
    pub fn read_uncounted(&self, lba: Lba, buf: &mut [u8]) -> Result<()> {
        self.check_buf(lba, buf.len())?;
        self.io.read_unchecked(lba, buf)
    }

    /// Write whole blocks at `lba`, following the zone rules. Nothing is
    /// changed when the write is refused. Durable only after [`Self::flush`]
    /// (or with `fua`).
    pub fn write(&self, lba: Lba, data: &[u8], fua: bool) -> Result<()> {
        self.write_with(lba, data.len(), fua, || self.io.write(lba, data))
    }

    /// [`Self::write`] straight from memory the caller does not own (a
    /// guest's buffers): the same checks, faults, delays and statistics.
    pub fn write_from(&self, lba: Lba, src: &[MemSlice<'_>], fua: bool) -> Result<()> {
        let len = mem_len(src);
        self.write_with(lba, len, fua, || self.io.write_from(lba, src))
    }

    /// A write of `len` bytes at `lba`: checked, delayed, write faults,
    /// then `io` under the zone rules, counted, flushed for `fua`.
    fn write_with(
        &self,
        lba: Lba,
        len: usize,
        fua: bool,
        io: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<()> {
        let count = self.check_buf(lba, len)?;
        if count.get() == 0 {
            return Ok(());
        }
        self.io.delay(Op::Write, Some((lba, count)));
        self.io.admit_write(lba, count)?;
        self.locked_write(lba, count, io)?;
        self.stats
            .written_bytes
            .fetch_add(len as u64, Ordering::Relaxed);
        if fua {
            self.flush()?;
        }
        Ok(())
    }

    /// Run `io`, which puts `count` blocks at `lba` into the backing file,
    /// under the zone rules: checked first, write pointer moved after.
    fn locked_write(
        &self,
        lba: Lba,
        count: BlockCount,
        io: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<()> {
        let Some(table) = &self.zones else {
            return Ok(io()?);
        };
        let mut table = lock(table);
        let plan = table.check_write(lba, count)?;
        io()?;
        table.commit_write(plan);
        Ok(())
    }

    /// Append whole blocks to the sequential zone starting at `zone`: the
    /// data lands at the zone's write pointer, read under the zone lock, so
    /// concurrent appends to one zone never collide (NVMe ZNS 1.1, 3.4.1
    /// "Zone Append command"). Returns the LBA of the first block written.
    /// Nothing is changed when it is refused.
    pub fn append(&self, zone: Lba, data: &[u8], fua: bool) -> Result<Lba> {
        let table = self.zones.as_ref().ok_or(StorageError::NotZoned)?;
        let bs = self.geo.block_size as usize;
        if data.is_empty() || !data.len().is_multiple_of(bs) {
            return Err(StorageError::PartialBlock {
                len: data.len(),
                block_size: self.geo.block_size,
            });
        }
        let count = BlockCount::new((data.len() / bs) as u64);
        self.geo.check_range(zone, BlockCount::new(1))?;
        self.io.delay(Op::Write, Some((zone, count)));
        let lba = {
            let mut table = lock(table);
            let idx = match table.index_of(zone) {
                Some(i) if table.zones()[i].start == zone => i,
                _ => return Err(StorageError::NotZoneStart { lba: zone }),
            };
            let z = table.zones()[idx];
            if !z.is_sequential() {
                return Err(StorageError::ConventionalZone { zone });
            }
            if z.cond == ZoneCondition::Full {
                return Err(StorageError::ZoneFull { zone });
            }
            let lba = z.wp;
            let plan = table.check_write(lba, count)?;
            self.io.admit_write(lba, count)?;
            self.io.write(lba, data)?;
            table.commit_write(plan);
            lba
        };
        self.stats
            .written_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if fua {
            self.flush()?;
        }
        Ok(lba)
    }

    /// Copy `count` blocks (of `src`'s size) from `src` at `src_lba` into
    /// this device at `dst_lba`, following the zone rules of both; `src`
    /// may be this device. The data does not pass through any front end.
    /// Returns the bytes copied. Nothing is changed when it is refused.
    pub fn copy_from(
        &self,
        dst_lba: Lba,
        src: &Device,
        src_lba: Lba,
        count: BlockCount,
    ) -> Result<u64> {
        let (bytes, dst_count) = convert(src.geo.block_size, self.geo.block_size, src_lba, count)?;
        src.geo.check_range(src_lba, count)?;
        self.geo.check_range(dst_lba, dst_count)?;
        if bytes == 0 {
            return Ok(0);
        }
        let same = std::ptr::eq(self, src);
        if let Some(table) = &src.zones {
            if !same {
                lock(table).check_read(src_lba, count)?;
            }
        }
        let src_off = src.io.offset(src_lba)?;
        let dst_off = self.io.offset(dst_lba)?;
        match (&self.zones, same) {
            (Some(table), true) => {
                // One lock for both checks and the copy.
                let mut table = lock(table);
                table.check_read(src_lba, count)?;
                let plan = table.check_write(dst_lba, dst_count)?;
                media::copy(src.media(), src_off, self.media(), dst_off, bytes)?;
                table.commit_write(plan);
            }
            _ => self.locked_write(dst_lba, dst_count, || {
                media::copy(src.media(), src_off, self.media(), dst_off, bytes)
            })?,
        }
        self.stats.copied_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Make every completed write durable, data and write pointers: take
    /// the write pointers, sync the data, then persist the pointers (the
    /// order `storage::meta` requires). The zone table is not locked while
    /// the data syncs.
    pub fn flush(&self) -> Result<()> {
        self.io.delay(Op::Flush, None);
        let (Some(meta), Some(table)) = (&self.meta, &self.zones) else {
            self.media().write_back()?;
            self.media().sync()?;
            self.stats.flushes.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let mut meta = lock(meta);
        let dirty = lock(table).take_dirty();
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        let res = self.persist(&mut meta, &dirty);
        if res.is_err() {
            let mut table = lock(table);
            for (i, _) in &dirty {
                table.mark_dirty(*i);
            }
        }
        res
    }

    /// Persist every zone changed since the last persist, as a flush
    /// does, with the zone table locked throughout. On failure the zones
    /// stay marked for the next attempt.
    fn persist_dirty(&self, meta: &mut Persisted, table: &mut ZoneTable) -> Result<()> {
        let dirty = table.take_dirty();
        let res = self.persist(meta, &dirty);
        if res.is_err() {
            for (i, _) in &dirty {
                table.mark_dirty(*i);
            }
        }
        res
    }

    /// Write back and sync the data first, then persist the `dirty`
    /// zones, so the write pointers persisted stay behind the data.
    fn persist(&self, meta: &mut Persisted, dirty: &[(usize, Zone)]) -> Result<()> {
        self.media().write_back()?;
        self.media().sync()?;
        meta.persist(dirty)
    }

    /// Apply a zone action. Zones that are reset have their data discarded
    /// so they read as zeros again.
    pub fn zone_action(&self, action: ZoneAction, target: ZoneTarget) -> Result<()> {
        let (Some(table), Some(meta)) = (&self.zones, &self.meta) else {
            return Err(StorageError::NotZoned);
        };
        if let ZoneTarget::One(lba) | ZoneTarget::Range { start: lba, .. } = target {
            self.geo.check_range(lba, BlockCount::new(1))?;
        }
        let mut meta = lock(meta);
        let mut table = lock(table);
        let reset = table.apply(action, target)?;
        // Persist the new states before discarding data: a crash in between
        // recovers the zones EMPTY and discards past their write pointers.
        self.persist_dirty(&mut meta, &mut table)?;
        for idx in reset {
            let z = table.zones()[idx];
            self.discard(z.start, z.len)?;
        }
        Ok(())
    }

    /// Controller-initiated change of the write pointer zone starting at
    /// `zone` to READ ONLY or OFFLINE (ZBC-2 4.4.3.2.6, 4.4.3.2.8; ZNS
    /// 2.1.1.4, 2.1.1.6), for testing error paths. The zone gives up its
    /// open or active resource, and the change is persisted in the zone
    /// metadata before this returns. Any other condition, a READ ONLY or
    /// OFFLINE change of an OFFLINE zone, a conventional zone or an LBA
    /// that does not start a zone is an error and changes nothing. The
    /// listeners are told after the change (not when the zone already was
    /// in `cond`).
    pub fn set_zone_condition(&self, zone: Lba, cond: ZoneCondition) -> Result<()> {
        let (Some(table), Some(meta)) = (&self.zones, &self.meta) else {
            return Err(StorageError::NotZoned);
        };
        self.geo.check_range(zone, BlockCount::new(1))?;
        let changed = {
            let mut meta = lock(meta);
            let mut table = lock(table);
            let changed = table.set_unavailable(zone, cond)?;
            self.persist_dirty(&mut meta, &mut table)?;
            changed
        };
        if changed {
            log::info!("zone {zone} is now {cond:?}");
            self.notify(zone);
        }
        Ok(())
    }

    /// Register a listener for controller-initiated zone changes (see
    /// [`ZoneListener`]).
    pub fn add_zone_listener(&self, l: Weak<dyn ZoneListener>) {
        lock(&self.listeners.0).push(l);
    }

    /// The live listeners; forgets the dead ones.
    fn live_listeners(&self) -> Vec<std::sync::Arc<dyn ZoneListener>> {
        let mut ls = lock(&self.listeners.0);
        ls.retain(|l| l.strong_count() > 0);
        ls.iter().filter_map(Weak::upgrade).collect()
    }

    /// Tell the live listeners that `zone` changed. Called with no zone
    /// lock held.
    fn notify(&self, zone: Lba) {
        for l in self.live_listeners() {
            l.zone_changed(zone);
        }
    }

    /// Tell the live listeners that data was lost. Called with no lock held.
    fn notify_data_lost(&self) {
        for l in self.live_listeners() {
            l.data_lost();
        }
    }

    /// Copies of the zone descriptors from the zone containing `start` on,
    /// at most `max` of them, for which `filter` holds.
    pub fn report_zones(
        &self,
        start: Lba,
        max: usize,
        filter: impl Fn(&Zone) -> bool,
    ) -> Result<Vec<Zone>> {
        let table = self.zones.as_ref().ok_or(StorageError::NotZoned)?;
        self.geo.check_range(start, BlockCount::new(1))?;
        let table = lock(table);
        let first = table.index_of(start).unwrap_or(table.zones().len());
        Ok(table.zones()[first..]
            .iter()
            .filter(|z| filter(z))
            .take(max)
            .copied()
            .collect())
    }

    /// Make the blocks read as zeros (a hole in a backing file).
    fn discard(&self, lba: Lba, count: BlockCount) -> Result<()> {
        let bs = self.geo.block_size;
        let (Some(off), Some(len)) = (lba.byte_offset(bs), count.bytes(bs)) else {
            return Err(StorageError::OutOfRange {
                lba,
                count,
                capacity: self.geo.capacity,
            });
        };
        Ok(self.media().discard(off, len)?)
    }
}

/// Lock a device mutex. A panic while holding one cannot leave a half-made
/// change (every change is checked before it is applied), so a poisoned lock
/// is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn meta_io(e: MetaError) -> StorageError {
    match e {
        MetaError::Io { source, .. } => StorageError::Io(source),
        other => StorageError::Io(std::io::Error::other(other.to_string())),
    }
}

/// Bytes in `count` blocks of `src_bs` bytes, and that length in blocks of
/// `dst_bs` bytes: an error unless it is a whole number of them.
pub fn convert(src_bs: u32, dst_bs: u32, lba: Lba, count: BlockCount) -> Result<(u64, BlockCount)> {
    let bytes = count.bytes(src_bs).ok_or(StorageError::OutOfRange {
        lba,
        count,
        capacity: BlockCount::new(0),
    })?;
    BlockCount::from_bytes(bytes, dst_bs)
        .map(|n| (bytes, n))
        .ok_or(StorageError::PartialBlock {
            len: usize::try_from(bytes).unwrap_or(usize::MAX),
            block_size: dst_bs,
        })
}
