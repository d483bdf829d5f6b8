//! A zoned (or plain) block device stored in a sparse backing file.

use std::{
    fs::{File, OpenOptions},
    os::unix::{fs::FileExt, io::AsRawFd},
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, Weak,
    },
};

use super::{
    cache::WriteCache,
    copy,
    error::{Result, StorageError},
    fault::{FaultSet, Op},
    meta::{sync_parent, MetaError, MetaGeometry, ZoneMeta},
    units::{BlockCount, Lba},
    zone::{
        Zone, ZoneAction, ZoneCondition, ZoneGeometry, ZoneRules, ZoneTable, ZoneTarget, ZoneType,
    },
};

/// Zone layout options of a zoned device, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZonedConfig {
    /// Zone size in bytes: a multiple of the block size.
    pub zone_size: u64,
    /// Writable bytes per sequential zone (<= `zone_size`).
    pub zone_capacity: u64,
    /// How many zones at the start of the device are conventional.
    pub conventional_zones: u32,
    /// Maximum open zones, 0 for no limit.
    pub max_open: u32,
    /// Maximum active zones, 0 for no limit.
    pub max_active: u32,
    /// The type of the zones after the conventional ones: sequential write
    /// required (host-managed) or sequential write preferred (host aware;
    /// needs `zone_capacity == zone_size`).
    pub sequential: ZoneType,
    /// Unrestricted reads in sequential write required zones (ZBC-2
    /// URSWRZ): reads may cross zones and read past the write pointer.
    pub unrestricted_reads: bool,
    /// Start over when the zone metadata cannot be trusted (missing or
    /// empty beside a data file with data in its sequential zones, or made
    /// for another geometry): every sequential zone EMPTY, its data
    /// discarded. Without it such a device refuses to open.
    pub reinit: bool,
}

impl Default for ZonedConfig {
    /// No zones yet (sizes 0), no limits, sequential write required zones,
    /// unrestricted reads: fill in the sizes.
    fn default() -> Self {
        ZonedConfig {
            zone_size: 0,
            zone_capacity: 0,
            conventional_zones: 0,
            max_open: 0,
            max_active: 0,
            sequential: ZoneType::SequentialWriteRequired,
            unrestricted_reads: true,
            reinit: false,
        }
    }
}

/// What a device is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The backing file; created (sparse) if missing, extended if short.
    /// A zoned device keeps its zone metadata beside it, in the same path
    /// with `.zones` appended.
    pub path: PathBuf,
    /// Device size in bytes: a multiple of the block size (and of the zone
    /// size when zoned).
    pub size: u64,
    /// Logical block size in bytes: 512 or 4096.
    pub block_size: u32,
    /// Zone layout, or `None` for a device without zones.
    pub zoned: Option<ZonedConfig>,
}

/// Why a device configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("block size {0} is not 512 or 4096")]
    BlockSize(u32),
    #[error("{what} ({value} bytes) is not a positive multiple of {unit} bytes")]
    NotMultiple {
        what: &'static str,
        value: u64,
        unit: u64,
    },
    #[error("zone capacity {cap} is larger than the zone size {size}")]
    CapacityAboveSize { cap: u64, size: u64 },
    #[error("{0} conventional zones leave no sequential zone")]
    TooManyConventional(u32),
    #[error("{0} zones are too many")]
    TooManyZones(u64),
    #[error("{0:?} zones cannot follow the conventional zones")]
    SequentialType(ZoneType),
    #[error("sequential write preferred zones need the zone capacity ({cap}) equal to the zone size ({size})")]
    PreferredWithCapacity { cap: u64, size: u64 },
    #[error(
        "backing file {0:?} is in use by another device (of this or another process): \
         two zone tables over one file would corrupt it"
    )]
    InUse(PathBuf),
    #[error("backing file {path:?}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(
        "backing file {path:?} holds data at byte {offset} in a sequential zone but its zone \
         metadata {meta:?} is missing or empty: the write pointers are unknown, refusing to start \
         (--reinit-zones starts over: every sequential zone EMPTY, its data discarded)"
    )]
    ZoneStateLost {
        path: PathBuf,
        meta: PathBuf,
        offset: u64,
    },
}

fn multiple(what: &'static str, value: u64, unit: u64) -> std::result::Result<(), ConfigError> {
    if value == 0 || value % unit != 0 {
        return Err(ConfigError::NotMultiple { what, value, unit });
    }
    Ok(())
}

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

    fn byte_offset(&self, lba: Lba) -> u64 {
        // In range by `check_range`: capacity * block_size is the file size.
        lba.get() * u64::from(self.block_size)
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

/// A block device backed by a file. All methods take `&self`: the zone
/// table is behind a mutex held across the check and the data transfer of a
/// write, so writes into one zone are serialized and the write pointer only
/// moves over data that reached the file.
///
/// Lock order: `meta`, then `zones`.
#[derive(Debug)]
pub struct Device {
    pub(super) file: File,
    geo: Geometry,
    pub(super) zones: Option<Mutex<ZoneTable>>,
    /// Zone metadata store; see `storage::meta` for the consistency rule.
    pub(super) meta: Option<Mutex<ZoneMeta>>,
    stats: DeviceStats,
    listeners: Listeners,
    /// Volatile write cache, off unless asked for (`storage::cache`).
    pub(super) cache: WriteCache,
    /// Injected faults (`storage::fault`).
    pub(super) faults: FaultSet,
}

impl Device {
    /// Open (creating if needed) the backing file and lay out the zones.
    pub fn open(cfg: &DeviceConfig) -> std::result::Result<Self, ConfigError> {
        if cfg.block_size != 512 && cfg.block_size != 4096 {
            return Err(ConfigError::BlockSize(cfg.block_size));
        }
        let bs = u64::from(cfg.block_size);
        multiple("device size", cfg.size, bs)?;
        let zones = match &cfg.zoned {
            None => None,
            Some(z) => {
                multiple("zone size", z.zone_size, bs)?;
                multiple("zone capacity", z.zone_capacity, bs)?;
                multiple("device size", cfg.size, z.zone_size)?;
                if z.zone_capacity > z.zone_size {
                    return Err(ConfigError::CapacityAboveSize {
                        cap: z.zone_capacity,
                        size: z.zone_size,
                    });
                }
                let nr = cfg.size / z.zone_size;
                let nr32 = u32::try_from(nr).map_err(|_| ConfigError::TooManyZones(nr))?;
                if u64::from(z.conventional_zones) >= nr {
                    return Err(ConfigError::TooManyConventional(z.conventional_zones));
                }
                match z.sequential {
                    ZoneType::SequentialWriteRequired => {}
                    ZoneType::SequentialWritePreferred => {
                        // Gap zones are a host-managed device's (ZBC-2
                        // 4.4.2.5); a host aware device has none.
                        if z.zone_capacity != z.zone_size {
                            return Err(ConfigError::PreferredWithCapacity {
                                cap: z.zone_capacity,
                                size: z.zone_size,
                            });
                        }
                    }
                    other => return Err(ConfigError::SequentialType(other)),
                }
                let geo = ZoneGeometry {
                    zone_len: BlockCount::new(z.zone_size / bs),
                    zone_cap: BlockCount::new(z.zone_capacity / bs),
                    conventional: z.conventional_zones,
                    max_open: z.max_open,
                    max_active: z.max_active,
                    sequential: z.sequential,
                    unrestricted_reads: z.unrestricted_reads,
                };
                Some(ZoneTable::new(geo, nr32))
            }
        };
        let file_err = |source| ConfigError::File {
            path: cfg.path.clone(),
            source,
        };
        let created = !cfg.path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&cfg.path)
            .map_err(file_err)?;
        // One device per file, whatever path names it: an exclusive lock
        // (flock), released when the file closes or the process dies.
        // (std's File::try_lock needs Rust 1.89, above this workspace's
        // rust-version.)
        // SAFETY: flock only reads its integer arguments; the fd is owned
        // by `file` and open for the duration of the call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => ConfigError::InUse(cfg.path.clone()),
                _ => file_err(err),
            });
        }
        let len = file.metadata().map_err(file_err)?.len();
        if len < cfg.size {
            file.set_len(cfg.size).map_err(file_err)?;
        }
        if created {
            // A new file's name is durable only once its directory is
            // synced: without this, a power cut after a completed flush
            // could take the whole file, flushed data and all.
            file.sync_all()
                .and_then(|()| sync_parent(&cfg.path))
                .map_err(file_err)?;
        }
        let capacity = BlockCount::new(cfg.size / bs);
        let mut meta = None;
        let mut discards = Vec::new();
        let zones = match zones {
            None => None,
            Some(mut table) => {
                let geo = MetaGeometry::new(
                    cfg.block_size,
                    capacity.get(),
                    table.geometry(),
                    table.zones().len() as u32,
                );
                let mut meta_path = cfg.path.clone().into_os_string();
                meta_path.push(".zones");
                let meta_path = PathBuf::from(meta_path);
                let reinit = cfg.zoned.as_ref().is_some_and(|z| z.reinit);
                if !reinit && ZoneMeta::is_new(&meta_path)? {
                    // A new zone table makes every sequential zone EMPTY and
                    // discards its data: only right for a file with none.
                    let seq_start = table
                        .zones()
                        .iter()
                        .find(|z| z.is_sequential())
                        .map_or(u64::MAX, |z| z.start.get().saturating_mul(bs));
                    let extents = data_extents(&file).map_err(file_err)?;
                    if let Some(&(s, _)) = extents.iter().find(|&&(_, e)| e > seq_start) {
                        return Err(ConfigError::ZoneStateLost {
                            path: cfg.path.clone(),
                            meta: meta_path,
                            offset: s.max(seq_start),
                        });
                    }
                }
                let (store, records) = ZoneMeta::open(&meta_path, geo, reinit)?;
                for (i, rec) in records.unwrap_or_default().into_iter().enumerate() {
                    if let Some(rec) = rec {
                        table.restore(i, rec.cond, rec.wp, rec.non_seq);
                    }
                }
                // Whatever lies past a write pointer was never made durable
                // (or predates the metadata): it must read as zeros.
                for z in table.zones().iter().filter(|z| z.is_sequential()) {
                    if !matches!(z.cond, ZoneCondition::ReadOnly | ZoneCondition::Offline)
                        && z.wp < z.end()
                    {
                        discards.push((z.wp, BlockCount::new(z.end().get() - z.wp.get())));
                    }
                }
                meta = Some(Mutex::new(store));
                Some(table)
            }
        };
        let dev = Device {
            file,
            geo: Geometry {
                block_size: cfg.block_size,
                capacity,
                zones: zones.as_ref().map(|t| *t.geometry()),
            },
            zones: zones.map(Mutex::new),
            meta,
            stats: DeviceStats::default(),
            listeners: Listeners::default(),
            cache: WriteCache::new(cfg.block_size),
            faults: FaultSet::default(),
        };
        dev.discard_stale(&discards).map_err(|e| match e {
            StorageError::Io(source) => file_err(source),
            other => file_err(std::io::Error::other(other.to_string())),
        })?;
        Ok(dev)
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
        if len % bs != 0 {
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
        let count = self.check_buf(lba, buf.len())?;
        if count.get() == 0 {
            return Ok(());
        }
        self.faults.delay(Op::Read, Some((lba, count)));
        if let Some(table) = &self.zones {
            lock(table).check_read(lba, count)?;
        }
        self.faults.check_read(lba, count)?;
        self.cache
            .read(&self.file, self.geo.byte_offset(lba), buf)?;
        self.stats
            .read_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Read whole blocks for the control plane: range-checked, but no zone
    /// rules and not counted in the statistics.
    pub fn read_uncounted(&self, lba: Lba, buf: &mut [u8]) -> Result<()> {
        self.check_buf(lba, buf.len())?;
        self.cache
            .read(&self.file, self.geo.byte_offset(lba), buf)?;
        Ok(())
    }

    /// Write whole blocks at `lba`, following the zone rules. Nothing is
    /// changed when the write is refused. Durable only after [`Self::flush`]
    /// (or with `fua`).
    pub fn write(&self, lba: Lba, data: &[u8], fua: bool) -> Result<()> {
        let count = self.check_buf(lba, data.len())?;
        if count.get() == 0 {
            return Ok(());
        }
        self.faults.delay(Op::Write, Some((lba, count)));
        self.faults.check_write(lba, count)?;
        self.locked_write(lba, count, || {
            self.cache
                .write(&self.file, self.geo.byte_offset(lba), data)
        })?;
        self.stats
            .written_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
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
        if data.is_empty() || data.len() % bs != 0 {
            return Err(StorageError::PartialBlock {
                len: data.len(),
                block_size: self.geo.block_size,
            });
        }
        let count = BlockCount::new((data.len() / bs) as u64);
        self.geo.check_range(zone, BlockCount::new(1))?;
        self.faults.delay(Op::Write, Some((zone, count)));
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
            self.faults.check_write(lba, count)?;
            self.cache
                .write(&self.file, self.geo.byte_offset(lba), data)?;
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
        let (bytes, dst_count) =
            copy::convert(src.geo.block_size, self.geo.block_size, src_lba, count)?;
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
        let src_off = src.geo.byte_offset(src_lba);
        let dst_off = self.geo.byte_offset(dst_lba);
        match (&self.zones, same) {
            (Some(table), true) => {
                // One lock for both checks and the copy.
                let mut table = lock(table);
                table.check_read(src_lba, count)?;
                let plan = table.check_write(dst_lba, dst_count)?;
                copy::copy_between(src, src_off, self, dst_off, bytes)?;
                table.commit_write(plan);
            }
            _ => self.locked_write(dst_lba, dst_count, || {
                copy::copy_between(src, src_off, self, dst_off, bytes)
            })?,
        }
        self.stats.copied_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Make every completed write durable, data and write pointers: take
    /// the write pointers, sync the data, then persist the pointers (the
    /// order `storage::meta` requires).
    pub fn flush(&self) -> Result<()> {
        self.faults.delay(Op::Flush, None);
        let (Some(meta), Some(table)) = (&self.meta, &self.zones) else {
            self.cache.write_back(&self.file)?;
            self.file.sync_data()?;
            self.stats.flushes.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let mut meta = lock(meta);
        let dirty = lock(table).take_dirty();
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        let res = self
            .cache
            .write_back(&self.file)
            .and_then(|()| self.file.sync_data())
            .map_err(StorageError::from)
            .and_then(|()| meta.persist(&dirty).map_err(meta_io))
            .map(|()| self.cache.persisted(&dirty));
        if res.is_err() {
            let mut table = lock(table);
            for (i, _) in &dirty {
                table.mark_dirty(*i);
            }
        }
        res
    }

    /// Persist every zone changed since the last persist: sync the data
    /// first, as a flush does, so the write pointers persisted stay behind
    /// the data. On failure the zones stay marked for the next attempt.
    pub(super) fn persist_dirty(&self, meta: &mut ZoneMeta, table: &mut ZoneTable) -> Result<()> {
        let dirty = table.take_dirty();
        let persisted = self
            .cache
            .write_back(&self.file)
            .and_then(|()| self.file.sync_data())
            .map_err(StorageError::from)
            .and_then(|()| meta.persist(&dirty).map_err(meta_io))
            .map(|()| self.cache.persisted(&dirty));
        if persisted.is_err() {
            for (i, _) in &dirty {
                table.mark_dirty(*i);
            }
        }
        persisted
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
    pub(super) fn notify_data_lost(&self) {
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

    /// Discard `ranges` (sorted by LBA, not overlapping) at start-up, but
    /// only where the file holds data: one pass over its data extents
    /// (SEEK_DATA/SEEK_HOLE) instead of a punch per zone, so a large device
    /// of mostly empty zones opens in milliseconds (131072 fallocate calls
    /// took ~0.5-0.9 s for a 1 TiB device of 8 MiB zones).
    fn discard_stale(&self, ranges: &[(Lba, BlockCount)]) -> Result<()> {
        let bs = u64::from(self.geo.block_size);
        let extents = match data_extents(&self.file) {
            Ok(e) => e,
            // No SEEK_DATA here: punch every range.
            Err(_) => vec![(0, u64::MAX)],
        };
        let mut next = extents.iter().peekable();
        for &(lba, count) in ranges {
            let (start, end) = (lba.get() * bs, (lba.get() + count.get()) * bs);
            // Extents ending before this range can matter to no later one.
            while next.peek().is_some_and(|&&(_, e_end)| e_end <= start) {
                next.next();
            }
            for &(e_start, e_end) in next.clone() {
                if e_start >= end {
                    break;
                }
                // Whole blocks: extents are page-granular, blocks divide pages.
                let from = e_start.max(start) / bs;
                let to = e_end.min(end).div_ceil(bs);
                self.discard(Lba::new(from), BlockCount::new(to - from))?;
            }
        }
        Ok(())
    }

    /// Punch a hole over the blocks so they read as zeros and use no space.
    pub(super) fn discard(&self, lba: Lba, count: BlockCount) -> Result<()> {
        let bs = u64::from(self.geo.block_size);
        let (Ok(off), Ok(len)) = (
            libc::off_t::try_from(lba.get() * bs),
            libc::off_t::try_from(count.get() * bs),
        ) else {
            return Err(StorageError::OutOfRange {
                lba,
                count,
                capacity: self.geo.capacity,
            });
        };
        // SAFETY: fallocate only reads its integer arguments; the fd is
        // owned by `self.file` and open for the duration of the call.
        let ret = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                len,
            )
        };
        if ret != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(err.into());
            }
            // No hole punching (e.g. tmpfs of old kernels): write zeros.
            let zeros = vec![0u8; 1 << 20];
            let mut pos = 0u64;
            let total = count.get() * bs;
            while pos < total {
                let n = (total - pos).min(zeros.len() as u64) as usize;
                self.file.write_all_at(&zeros[..n], lba.get() * bs + pos)?;
                pos += n as u64;
            }
        }
        Ok(())
    }
}

/// Lock a device mutex. A panic while holding one cannot leave a half-made
/// change (every change is checked before it is applied), so a poisoned lock
/// is still usable.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn meta_io(e: MetaError) -> StorageError {
    match e {
        MetaError::Io { source, .. } => StorageError::Io(source),
        other => StorageError::Io(std::io::Error::other(other.to_string())),
    }
}

/// The byte ranges of `file` that hold data, in order (holes skipped), by
/// SEEK_DATA/SEEK_HOLE. An error if the file system cannot tell.
fn data_extents(file: &File) -> std::io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let mut extents = Vec::new();
    let mut pos: libc::off_t = 0;
    loop {
        // SAFETY: lseek only reads its integer arguments; the fd is open
        // for the duration of the call. Moving the file offset is harmless:
        // all I/O here is positioned (pread/pwrite).
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENXIO) => Ok(extents), // no data past `pos`
                _ => Err(err),
            };
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(std::io::Error::last_os_error());
        }
        extents.push((data as u64, hole as u64));
        pos = hole;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::zone::ZoneCondition;

    /// Eight 16-block zones (12 writable), two conventional, in `dir`.
    fn zoned_config(dir: &tempfile::TempDir) -> DeviceConfig {
        DeviceConfig {
            path: dir.path().join("disk.img"),
            size: 8 * 65536,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 65536,
                zone_capacity: 49152,
                conventional_zones: 2,
                max_open: 0,
                max_active: 0,
                ..ZonedConfig::default()
            }),
        }
    }

    fn zoned(dir: &tempfile::TempDir) -> Device {
        Device::open(&zoned_config(dir)).unwrap()
    }

    /// Issue 15, finding 3: a 16 MiB image of 0xAB whose zone metadata is
    /// missing or empty was taken for a new device and every sequential
    /// zone hole-punched. It must refuse to open and change nothing, until
    /// asked to start over.
    #[test]
    fn lost_zone_metadata_never_wipes_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.img");
        let meta = dir.path().join("old.img.zones");
        let image = vec![0xABu8; 16 << 20];
        std::fs::write(&path, &image).unwrap();
        let mut cfg = DeviceConfig {
            path: path.clone(),
            size: 16 << 20,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 1 << 20,
                zone_capacity: 1 << 20,
                conventional_zones: 1,
                ..ZonedConfig::default()
            }),
        };
        for empty_sidecar in [false, true] {
            if empty_sidecar {
                std::fs::write(&meta, b"").unwrap();
            }
            match Device::open(&cfg) {
                Err(ConfigError::ZoneStateLost { offset, .. }) => assert_eq!(offset, 1 << 20),
                other => panic!("opened over lost zone metadata: {other:?}"),
            }
            assert!(std::fs::read(&path).unwrap() == image, "data changed");
            assert_eq!(
                std::fs::metadata(&meta).ok().map(|m| m.len()),
                empty_sidecar.then_some(0)
            );
        }
        // Data in the conventional zones only (a partition table, say):
        // nothing to lose, a new zone table is fine.
        std::fs::remove_file(&meta).unwrap();
        let head = dir.path().join("head.img");
        std::fs::write(&head, vec![0xABu8; 4096]).unwrap();
        let dev = Device::open(&DeviceConfig {
            path: head,
            ..cfg.clone()
        })
        .unwrap();
        let mut buf = vec![0u8; 4096];
        dev.read(Lba::new(0), &mut buf).unwrap();
        assert_eq!(buf[0], 0xAB);
        drop(dev);
        // Asked to start over: the sequential zones read as zeros, the
        // conventional zone keeps its data.
        if let Some(z) = cfg.zoned.as_mut() {
            z.reinit = true;
        }
        let dev = Device::open(&cfg).unwrap();
        dev.read(Lba::new(0), &mut buf).unwrap();
        assert_eq!(buf[0], 0xAB);
        dev.read(Lba::new(256), &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }

    /// Issue 15, finding 7: duplicates were found by comparing path text,
    /// so two names of one file gave two zone tables over it. The file is
    /// now locked: a second device on it is refused, whatever its path,
    /// until the first is closed.
    #[test]
    fn one_device_per_backing_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = zoned(&dir);
        let alias = dir.path().join("alias.img");
        std::os::unix::fs::symlink(dir.path().join("disk.img"), &alias).unwrap();
        let cfg = DeviceConfig {
            path: alias,
            size: 8 * 65536,
            block_size: 4096,
            zoned: None,
        };
        assert!(matches!(Device::open(&cfg), Err(ConfigError::InUse(_))));
        drop(first);
        Device::open(&cfg).unwrap();
    }

    /// Zone metadata made for another geometry is refused (the data stays),
    /// and started over only when asked.
    #[test]
    fn other_geometry_is_refused_unless_reinit() {
        let dir = tempfile::tempdir().unwrap();
        let dev = zoned(&dir);
        dev.write(Lba::new(32), &[7u8; 4096], true).unwrap();
        drop(dev);
        // The same file and zone size, another zone capacity.
        let mut cfg = zoned_config(&dir);
        if let Some(z) = cfg.zoned.as_mut() {
            z.zone_capacity = 65536;
        }
        let err = Device::open(&cfg).unwrap_err();
        assert!(matches!(err, ConfigError::Meta(MetaError::Mismatch(_))));
        assert!(err.to_string().contains("--reinit-zones"), "{err}");
        if let Some(z) = cfg.zoned.as_mut() {
            z.reinit = true;
        }
        let dev = Device::open(&cfg).unwrap();
        let z = dev.report_zones(Lba::new(32), 1, |_| true).unwrap();
        assert_eq!(z[0].cond, ZoneCondition::Empty);
        let mut buf = vec![1u8; 4096];
        dev.read(Lba::new(32), &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }

    #[test]
    fn config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = DeviceConfig {
            path: dir.path().join("x"),
            size: 1 << 20,
            block_size: 1000,
            zoned: None,
        };
        assert!(matches!(
            Device::open(&cfg),
            Err(ConfigError::BlockSize(1000))
        ));
        cfg.block_size = 512;
        cfg.zoned = Some(ZonedConfig {
            zone_size: 65536,
            zone_capacity: 65536 * 2,
            conventional_zones: 0,
            max_open: 0,
            max_active: 0,
            ..ZonedConfig::default()
        });
        assert!(matches!(
            Device::open(&cfg),
            Err(ConfigError::CapacityAboveSize { .. })
        ));
        if let Some(z) = cfg.zoned.as_mut() {
            z.zone_capacity = 65536;
            z.conventional_zones = 16;
        }
        assert!(matches!(
            Device::open(&cfg),
            Err(ConfigError::TooManyConventional(16))
        ));
    }

    #[test]
    fn write_read_reset() {
        let dir = tempfile::tempdir().unwrap();
        let dev = zoned(&dir);
        assert_eq!(dev.geometry().capacity, BlockCount::new(128));
        let data = vec![0xabu8; 8192];
        dev.write(Lba::new(32), &data, false).unwrap();
        let mut back = vec![0u8; 8192];
        dev.read(Lba::new(32), &mut back).unwrap();
        assert_eq!(back, data);
        // A refused write changes neither data nor the write pointer.
        assert!(dev.write(Lba::new(40), &data, false).is_err());
        let z = dev.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
        assert_eq!((z.cond, z.wp), (ZoneCondition::ImplicitOpen, Lba::new(34)));
        dev.zone_action(ZoneAction::Reset, ZoneTarget::One(Lba::new(32)))
            .unwrap();
        dev.read(Lba::new(32), &mut back).unwrap();
        assert!(back.iter().all(|&b| b == 0));
    }

    #[test]
    fn append_lands_at_the_write_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let dev = std::sync::Arc::new(zoned(&dir));
        // Zone 2 (LBA 32, capacity 12): concurrent single-block appends get
        // distinct LBAs and each block holds its own data.
        let handles: Vec<_> = (0..12u8)
            .map(|i| {
                let dev = std::sync::Arc::clone(&dev);
                std::thread::spawn(move || {
                    (i, dev.append(Lba::new(32), &[i; 4096], false).unwrap())
                })
            })
            .collect();
        let mut lbas = Vec::new();
        for h in handles {
            let (i, lba) = h.join().unwrap();
            let mut buf = vec![0u8; 4096];
            dev.read(lba, &mut buf).unwrap();
            assert_eq!(buf[0], i);
            lbas.push(lba.get());
        }
        lbas.sort_unstable();
        assert_eq!(lbas, (32..44).collect::<Vec<_>>());
        assert!(matches!(
            dev.append(Lba::new(32), &[0; 4096], false),
            Err(StorageError::ZoneFull { .. })
        ));
        assert!(matches!(
            dev.append(Lba::new(33), &[0; 4096], false),
            Err(StorageError::NotZoneStart { .. })
        ));
        assert!(matches!(
            dev.append(Lba::new(0), &[0; 4096], false),
            Err(StorageError::ConventionalZone { .. })
        ));
        assert!(matches!(
            dev.append(Lba::new(48), &[0; 13 * 4096], false),
            Err(StorageError::BeyondZoneCapacity { .. })
        ));
    }

    #[test]
    fn range_and_buffer_checks() {
        let dir = tempfile::tempdir().unwrap();
        let dev = zoned(&dir);
        let mut buf = vec![0u8; 4096];
        assert!(matches!(
            dev.read(Lba::new(128), &mut buf),
            Err(StorageError::OutOfRange { .. })
        ));
        assert!(matches!(
            dev.read(Lba::new(u64::MAX), &mut buf),
            Err(StorageError::OutOfRange { .. })
        ));
        assert!(matches!(
            dev.read(Lba::new(0), &mut buf[..100]),
            Err(StorageError::PartialBlock { .. })
        ));
        assert!(matches!(
            dev.zone_action(ZoneAction::Open, ZoneTarget::One(Lba::new(1 << 40))),
            Err(StorageError::OutOfRange { .. })
        ));
    }

    #[test]
    fn zone_state_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let dev = zoned(&dir);
            dev.write(Lba::new(0), &[1u8; 4096], true).unwrap();
            // Durable by FUA.
            dev.write(Lba::new(32), &[2u8; 4096], true).unwrap();
            // Durable by a later flush.
            dev.write(Lba::new(33), &[3u8; 4096], false).unwrap();
            dev.flush().unwrap();
            // Never made durable: the restart may drop it.
            dev.write(Lba::new(34), &[4u8; 4096], false).unwrap();
            dev.zone_action(ZoneAction::Finish, ZoneTarget::One(Lba::new(48)))
                .unwrap();
        }
        let dev = zoned(&dir);
        let mut buf = vec![0u8; 4096];
        dev.read(Lba::new(0), &mut buf).unwrap();
        assert_eq!(buf[0], 1, "conventional data is kept");
        dev.read(Lba::new(33), &mut buf).unwrap();
        assert_eq!(buf[0], 3, "flushed data is kept");
        let z = dev.report_zones(Lba::new(32), 2, |_| true).unwrap();
        // The zone action persisted every dirty zone, so LBA 34 made it too,
        // and the open zone comes back CLOSED as after a power cycle.
        assert_eq!((z[0].cond, z[0].wp), (ZoneCondition::Closed, Lba::new(35)));
        assert_eq!(z[1].cond, ZoneCondition::Full);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Lba>>);

    impl ZoneListener for Recorder {
        fn zone_changed(&self, zone: Lba) {
            lock(&self.0).push(zone);
        }
    }

    #[test]
    fn zone_condition_is_persisted_and_announced() {
        let dir = tempfile::tempdir().unwrap();
        {
            let dev = zoned(&dir);
            let rec = std::sync::Arc::new(Recorder::default());
            let weak: Weak<dyn ZoneListener> =
                std::sync::Arc::downgrade(&(rec.clone() as std::sync::Arc<dyn ZoneListener>));
            dev.add_zone_listener(weak);
            dev.write(Lba::new(32), &[7u8; 4096], false).unwrap();
            dev.set_zone_condition(Lba::new(32), ZoneCondition::ReadOnly)
                .unwrap();
            dev.set_zone_condition(Lba::new(32), ZoneCondition::ReadOnly)
                .unwrap();
            dev.set_zone_condition(Lba::new(48), ZoneCondition::Offline)
                .unwrap();
            assert!(dev
                .set_zone_condition(Lba::new(64), ZoneCondition::Empty)
                .is_err());
            assert!(dev
                .set_zone_condition(Lba::new(0), ZoneCondition::Offline)
                .is_err());
            assert_eq!(*lock(&rec.0), vec![Lba::new(32), Lba::new(48)]);
            drop(rec);
            // A dead listener is dropped, not called.
            dev.set_zone_condition(Lba::new(64), ZoneCondition::Offline)
                .unwrap();
            assert!(lock(&dev.listeners.0).is_empty());
        }
        let dev = zoned(&dir);
        let z = dev.report_zones(Lba::new(32), 3, |_| true).unwrap();
        assert_eq!(
            (z[0].cond, z[1].cond, z[2].cond),
            (
                ZoneCondition::ReadOnly,
                ZoneCondition::Offline,
                ZoneCondition::Offline
            )
        );
        // The READ ONLY zone keeps its data: no discard past its wp.
        let mut buf = vec![0u8; 4096];
        dev.read(Lba::new(32), &mut buf).unwrap();
        assert_eq!(buf[0], 7);
        assert!(matches!(
            dev.write(Lba::new(33), &buf, false),
            Err(StorageError::ZoneUnavailable { .. })
        ));
        assert!(matches!(
            dev.read(Lba::new(48), &mut buf),
            Err(StorageError::ZoneUnavailable { .. })
        ));
    }

    #[test]
    fn write_preferred_device_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DeviceConfig {
            path: dir.path().join("ha.img"),
            size: 8 * 65536,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 65536,
                zone_capacity: 65536,
                conventional_zones: 1,
                sequential: ZoneType::SequentialWritePreferred,
                ..ZonedConfig::default()
            }),
        };
        {
            let dev = Device::open(&cfg).unwrap();
            // Zone 1 written away from its write pointer, zone 2 in order.
            dev.write(Lba::new(20), &[1u8; 8192], false).unwrap();
            dev.write(Lba::new(32), &[2u8; 4096], false).unwrap();
            dev.flush().unwrap();
            // A range of two zones reset through the device discards both.
            dev.write(Lba::new(48), &[3u8; 4096], false).unwrap();
            dev.write(Lba::new(64), &[3u8; 4096], false).unwrap();
            dev.zone_action(
                ZoneAction::Reset,
                ZoneTarget::Range {
                    start: Lba::new(48),
                    count: 2,
                },
            )
            .unwrap();
        }
        let dev = Device::open(&cfg).unwrap();
        let z = dev.report_zones(Lba::new(16), 4, |_| true).unwrap();
        assert_eq!(z[0].zone_type, ZoneType::SequentialWritePreferred);
        assert_eq!(
            (z[0].cond, z[0].wp, z[0].non_seq),
            (ZoneCondition::Closed, Lba::new(22), true)
        );
        assert_eq!(
            (z[1].cond, z[1].wp, z[1].non_seq),
            (ZoneCondition::Closed, Lba::new(33), false)
        );
        assert_eq!(
            (z[2].cond, z[3].cond),
            (ZoneCondition::Empty, ZoneCondition::Empty)
        );
        let mut buf = vec![0u8; 4096];
        dev.read(Lba::new(21), &mut buf).unwrap();
        assert_eq!(buf[0], 1);
        dev.read(Lba::new(64), &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        // The metadata is for write preferred zones: a host-managed
        // configuration of the same file is refused.
        drop(dev);
        let mut hm = cfg.clone();
        if let Some(z) = hm.zoned.as_mut() {
            z.sequential = ZoneType::SequentialWriteRequired;
        }
        assert!(matches!(Device::open(&hm), Err(ConfigError::Meta(_))));
        // And write preferred zones with gaps are refused outright.
        let mut gaps = cfg.clone();
        if let Some(z) = gaps.zoned.as_mut() {
            z.zone_capacity = 32768;
        }
        assert!(matches!(
            Device::open(&gaps),
            Err(ConfigError::PreferredWithCapacity { .. })
        ));
    }

    #[test]
    fn unflushed_writes_past_persisted_wp_read_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        {
            let dev = zoned(&dir);
            dev.write(Lba::new(32), &[2u8; 4096], true).unwrap();
            dev.write(Lba::new(33), &[3u8; 4096], false).unwrap();
        }
        let dev = zoned(&dir);
        let z = dev.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
        assert_eq!((z.cond, z.wp), (ZoneCondition::Closed, Lba::new(33)));
        let mut buf = vec![0u8; 4096];
        dev.read(Lba::new(33), &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        dev.read(Lba::new(32), &mut buf).unwrap();
        assert_eq!(buf[0], 2);
    }

    #[test]
    fn stale_data_anywhere_past_write_pointers_is_discarded_at_open() {
        let dir = tempfile::tempdir().unwrap();
        drop(zoned(&dir));
        // Data the metadata knows nothing about: in a conventional zone
        // (kept), straddling two sequential zones, and at the very end.
        let f = OpenOptions::new()
            .write(true)
            .open(dir.path().join("disk.img"))
            .unwrap();
        f.write_all_at(&[7u8; 4096], 4096).unwrap();
        f.write_all_at(&[8u8; 3 * 4096], (3 * 16 + 14) * 4096)
            .unwrap();
        f.write_all_at(&[9u8; 4096], (8 * 16 - 1) * 4096).unwrap();
        drop(f);
        let dev = zoned(&dir);
        let mut buf = vec![0u8; 4096];
        dev.read(Lba::new(1), &mut buf).unwrap();
        assert_eq!(buf[0], 7, "conventional data must stay");
        for lba in [3 * 16 + 14, 3 * 16 + 15, 4 * 16, 8 * 16 - 1] {
            // Past capacity (blocks 12-15 of a zone) reads are refused;
            // read those through the file instead.
            let mut raw = vec![1u8; 4096];
            dev.file.read_exact_at(&mut raw, lba * 4096).unwrap();
            assert!(raw.iter().all(|&b| b == 0), "block {lba} kept stale data");
        }
    }
}
