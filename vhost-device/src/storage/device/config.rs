//! Opening a device: its configuration, checked, and the backing file,
//! zone table and zone metadata it opens.

use std::{
    fs::{File, OpenOptions, TryLockError},
    path::PathBuf,
};

use super::{Device, Persisted};
use crate::storage::{
    error::StorageError,
    media::{FileMedia, Media},
    meta::{sync_parent, MetaError, MetaGeometry, ZoneMeta},
    table::ZoneTable,
    units::{BlockCount, Lba},
    zone::{ZoneCondition, ZoneGeometry, ZoneType},
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

fn multiple(what: &'static str, value: u64, unit: u64) -> Result<(), ConfigError> {
    if value == 0 || !value.is_multiple_of(unit) {
        return Err(ConfigError::NotMultiple { what, value, unit });
    }
    Ok(())
}

/// Byte ranges that must read as zeros: past the write pointers.
type Discards = Vec<(Lba, BlockCount)>;

impl Device {
    /// Open (creating if needed) the backing file and lay out the zones.
    pub fn open(cfg: &DeviceConfig) -> Result<Self, ConfigError> {
        let table = zone_table(cfg)?;
        let file = open_file(cfg)?;
        let media = FileMedia::new(file, cfg.block_size);
        let capacity = BlockCount::new(cfg.size / u64::from(cfg.block_size));
        let (table, meta, discards) = match table {
            None => (None, None, Vec::new()),
            Some(mut table) => {
                let (meta, discards) = open_zones(cfg, &mut table, &media, capacity)?;
                (Some(table), Some(meta), discards)
            }
        };
        let dev = Device::new(Box::new(media), cfg.block_size, capacity, table, meta);
        dev.discard_stale(&discards).map_err(|e| match e {
            StorageError::Io(source) => file_error(cfg, source),
            other => file_error(cfg, std::io::Error::other(other.to_string())),
        })?;
        Ok(dev)
    }

    /// Discard `ranges` (sorted by LBA, not overlapping) at start-up, but
    /// only where the media holds data: one pass over its data extents
    /// (SEEK_DATA/SEEK_HOLE) instead of a punch per zone, so a large device
    /// of mostly empty zones opens in milliseconds (131072 fallocate calls
    /// took ~0.5-0.9 s for a 1 TiB device of 8 MiB zones).
    fn discard_stale(&self, ranges: &[(Lba, BlockCount)]) -> crate::storage::error::Result<()> {
        let bs = u64::from(self.geometry().block_size);
        let extents = match self.media().data_extents() {
            Ok(e) => e,
            // No SEEK_DATA here: punch every range.
            Err(_) => vec![(0, u64::MAX)],
        };
        let mut next = extents.iter().peekable();
        for &(lba, count) in ranges {
            // Inside the device: ranges of its zones.
            let start = lba.get().saturating_mul(bs);
            let end = lba.saturating_add(count).get().saturating_mul(bs);
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
}

fn file_error(cfg: &DeviceConfig, source: std::io::Error) -> ConfigError {
    ConfigError::File {
        path: cfg.path.clone(),
        source,
    }
}

/// The zone table `cfg` asks for, all zones EMPTY, after checking the
/// sizes; `None` for a device without zones.
fn zone_table(cfg: &DeviceConfig) -> Result<Option<ZoneTable>, ConfigError> {
    if cfg.block_size != 512 && cfg.block_size != 4096 {
        return Err(ConfigError::BlockSize(cfg.block_size));
    }
    let bs = u64::from(cfg.block_size);
    multiple("device size", cfg.size, bs)?;
    let Some(z) = &cfg.zoned else {
        return Ok(None);
    };
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
            // Gap zones are a host-managed device's (ZBC-2 4.4.2.5); a
            // host aware device has none.
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
    Ok(Some(ZoneTable::new(geo, nr32)))
}

/// Open (creating, sparse, if needed) and lock the backing file, at least
/// `cfg.size` bytes long; a new file's name is made durable.
fn open_file(cfg: &DeviceConfig) -> Result<File, ConfigError> {
    let file_err = |source| file_error(cfg, source);
    let created = !cfg.path.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&cfg.path)
        .map_err(file_err)?;
    // One device per file, whatever path names it: an exclusive lock
    // (flock(2) on Linux), released when the file closes or the process
    // dies.
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(ConfigError::InUse(cfg.path.clone())),
        Err(TryLockError::Error(e)) => return Err(file_err(e)),
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
    Ok(file)
}

/// Open the zone metadata beside the backing file and restore `table`
/// from it; with the ranges past the write pointers, which must read as
/// zeros.
fn open_zones(
    cfg: &DeviceConfig,
    table: &mut ZoneTable,
    media: &dyn Media,
    capacity: BlockCount,
) -> Result<(Persisted, Discards), ConfigError> {
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
        refuse_lost_zone_state(cfg, table, media, meta_path.clone())?;
    }
    let (store, records) = ZoneMeta::open(&meta_path, geo, reinit)?;
    for (i, rec) in records.unwrap_or_default().into_iter().enumerate() {
        if let Some(rec) = rec {
            table.restore(i, rec.cond, rec.wp, rec.non_seq);
        }
    }
    // Whatever lies past a write pointer was never made durable (or
    // predates the metadata): it must read as zeros.
    let discards = table
        .zones()
        .iter()
        .filter(|z| z.is_sequential())
        .filter(|z| !matches!(z.cond, ZoneCondition::ReadOnly | ZoneCondition::Offline))
        .filter_map(|z| Some((z.wp, z.end().blocks_since(z.wp).filter(|n| !n.is_zero())?)))
        .collect();
    Ok((Persisted::new(store), discards))
}

/// A new zone table makes every sequential zone EMPTY and discards its
/// data: only right for a file with none there.
fn refuse_lost_zone_state(
    cfg: &DeviceConfig,
    table: &ZoneTable,
    media: &dyn Media,
    meta: PathBuf,
) -> Result<(), ConfigError> {
    let bs = u64::from(cfg.block_size);
    let seq_start = table
        .zones()
        .iter()
        .find(|z| z.is_sequential())
        .map_or(u64::MAX, |z| z.start.get().saturating_mul(bs));
    let extents = media.data_extents().map_err(|e| file_error(cfg, e))?;
    match extents.iter().find(|&&(_, e)| e > seq_start) {
        Some(&(s, _)) => Err(ConfigError::ZoneStateLost {
            path: cfg.path.clone(),
            meta,
            offset: s.max(seq_start),
        }),
        None => Ok(()),
    }
}
