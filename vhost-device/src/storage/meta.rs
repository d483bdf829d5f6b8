//! Crash-consistent zone metadata, stored beside the data file.
//!
//! # Consistency rule
//!
//! After a crash at any point, for every sequential zone:
//! 1. no acknowledged durable write is lost: a write is acknowledged as
//!    durable only by a completed flush (SYNCHRONIZE CACHE, NVMe Flush) or
//!    a FUA write, and a flush persists the write pointers it covers before
//!    it completes;
//! 2. the persisted write pointer is never ahead of data that reached stable
//!    storage: a flush takes its snapshot of write pointers first, then
//!    syncs the data file, then writes and syncs the snapshot.
//!
//! Data past a recovered write pointer (written but never made durable) is
//! discarded at recovery, so it reads as zeros like any unwritten block.
//!
//! # Format
//!
//! A 4 KiB header (magic, version, geometry, CRC32C), then two 32-byte
//! record slots per zone. An update writes the slot not holding the newest
//! record, so a torn write can destroy only the record being written and the
//! previous one survives. A record: sequence number (u64), write pointer
//! (u64), condition (u8), 11 reserved bytes, CRC32C of the first 28 bytes;
//! all little-endian. A slot that fails its CRC (all zeros, torn) is
//! ignored; a zone with no valid slot is EMPTY.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use super::{
    units::Lba,
    zone::{Zone, ZoneCondition, ZoneGeometry},
};

const MAGIC: [u8; 8] = *b"ZCPYZMD1";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 4096;
const SLOT_LEN: u64 = 32;

/// The geometry a metadata file was made for; it must match on reopen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaGeometry {
    pub block_size: u32,
    pub capacity: u64,
    pub zone_len: u64,
    pub zone_cap: u64,
    pub conventional: u32,
    pub nr_zones: u32,
}

impl MetaGeometry {
    pub fn new(block_size: u32, capacity: u64, geo: &ZoneGeometry, nr_zones: u32) -> Self {
        MetaGeometry {
            block_size,
            capacity,
            zone_len: geo.zone_len.0,
            zone_cap: geo.zone_cap.0,
            conventional: geo.conventional,
            nr_zones,
        }
    }

    fn encode(&self) -> [u8; 48] {
        let mut h = [0u8; 48];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.block_size.to_le_bytes());
        h[16..24].copy_from_slice(&self.capacity.to_le_bytes());
        h[24..32].copy_from_slice(&self.zone_len.to_le_bytes());
        h[32..40].copy_from_slice(&self.zone_cap.to_le_bytes());
        h[40..44].copy_from_slice(&self.conventional.to_le_bytes());
        h[44..48].copy_from_slice(&self.nr_zones.to_le_bytes());
        h
    }
}

/// Why the metadata file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(
        "zone metadata {0:?} was made for another geometry or version; remove it to start over"
    )]
    Mismatch(PathBuf),
    #[error("zone metadata {path:?}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A recovered zone record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub cond: ZoneCondition,
    pub wp: Lba,
}

fn cond_code(c: ZoneCondition) -> u8 {
    match c {
        ZoneCondition::NotWritePointer => 0,
        ZoneCondition::Empty => 1,
        ZoneCondition::ImplicitOpen => 2,
        ZoneCondition::ExplicitOpen => 3,
        ZoneCondition::Closed => 4,
        ZoneCondition::ReadOnly => 0xd,
        ZoneCondition::Full => 0xe,
        ZoneCondition::Offline => 0xf,
    }
}

fn code_cond(c: u8) -> Option<ZoneCondition> {
    Some(match c {
        0 => ZoneCondition::NotWritePointer,
        1 => ZoneCondition::Empty,
        2 => ZoneCondition::ImplicitOpen,
        3 => ZoneCondition::ExplicitOpen,
        4 => ZoneCondition::Closed,
        0xd => ZoneCondition::ReadOnly,
        0xe => ZoneCondition::Full,
        0xf => ZoneCondition::Offline,
        _ => return None,
    })
}

fn encode_slot(seq: u64, zone: &Zone) -> [u8; SLOT_LEN as usize] {
    let mut b = [0u8; SLOT_LEN as usize];
    b[0..8].copy_from_slice(&seq.to_le_bytes());
    b[8..16].copy_from_slice(&zone.wp.0.to_le_bytes());
    b[16] = cond_code(zone.cond);
    let crc = crc32c::crc32c(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode_slot(b: &[u8]) -> Option<(u64, Record)> {
    let (body, crc) = b.split_at_checked(28)?;
    if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let seq = u64::from_le_bytes(body[0..8].try_into().ok()?);
    let wp = u64::from_le_bytes(body[8..16].try_into().ok()?);
    let cond = code_cond(body[16])?;
    Some((seq, Record { cond, wp: Lba(wp) }))
}

/// Each zone's newest valid record, `None` where there is none; absent for
/// a metadata file just created.
pub type Recovered = Option<Vec<Option<Record>>>;

/// The open metadata file and, per zone, which slot holds the newest
/// record and its sequence number.
#[derive(Debug)]
pub struct ZoneMeta {
    path: PathBuf,
    file: File,
    newest: Vec<(u8, u64)>,
}

impl ZoneMeta {
    /// Open the metadata at `path`, creating it for `geo` if absent.
    /// Returns the store and, for an existing file, each zone's newest
    /// record (`None` where no valid record exists).
    pub fn open(path: &Path, geo: MetaGeometry) -> Result<(Self, Recovered), MetaError> {
        let io_err = |source| MetaError::Io {
            path: path.to_owned(),
            source,
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        let nr = geo.nr_zones as usize;
        let size = HEADER_LEN + u64::from(geo.nr_zones) * 2 * SLOT_LEN;
        let mut meta = ZoneMeta {
            path: path.to_owned(),
            file,
            newest: vec![(1, 0); nr],
        };
        let header = geo.encode();
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&crc32c::crc32c(&header).to_le_bytes());
        if !existed || meta.file.metadata().map_err(io_err)?.len() == 0 {
            meta.file.set_len(size).map_err(io_err)?;
            meta.file.write_all_at(&header, 0).map_err(io_err)?;
            meta.file.write_all_at(&crc, 48).map_err(io_err)?;
            meta.file.sync_all().map_err(io_err)?;
            return Ok((meta, None));
        }
        let mut on_disk = [0u8; 52];
        meta.file.read_exact_at(&mut on_disk, 0).map_err(io_err)?;
        if on_disk[..48] != header || on_disk[48..52] != crc {
            return Err(MetaError::Mismatch(path.to_owned()));
        }
        let mut slots = vec![0u8; nr * 2 * SLOT_LEN as usize];
        meta.file
            .read_exact_at(&mut slots, HEADER_LEN)
            .map_err(io_err)?;
        let mut records = Vec::with_capacity(nr);
        for (i, pair) in slots.chunks_exact(2 * SLOT_LEN as usize).enumerate() {
            let (a, b) = pair.split_at(SLOT_LEN as usize);
            let best = match (decode_slot(a), decode_slot(b)) {
                (Some(x), Some(y)) if y.0 > x.0 => Some((1u8, y)),
                (Some(x), _) => Some((0u8, x)),
                (None, Some(y)) => Some((1u8, y)),
                (None, None) => None,
            };
            if let Some((slot, (seq, _))) = best {
                meta.newest[i] = (slot, seq);
            }
            records.push(best.map(|(_, (_, r))| r));
        }
        Ok((meta, Some(records)))
    }

    /// Write the records of `zones` (index, state) into their free slots and
    /// make them durable.
    pub fn persist(&mut self, zones: &[(usize, Zone)]) -> Result<(), MetaError> {
        if zones.is_empty() {
            return Ok(());
        }
        let io_err = |source| MetaError::Io {
            path: self.path.clone(),
            source,
        };
        for (idx, zone) in zones {
            let Some(&(slot, seq)) = self.newest.get(*idx) else {
                continue;
            };
            let next = 1 - slot;
            let off = HEADER_LEN + (*idx as u64 * 2 + u64::from(next)) * SLOT_LEN;
            let bytes = encode_slot(seq + 1, zone);
            self.file.write_all_at(&bytes, off).map_err(io_err)?;
            self.newest[*idx] = (next, seq + 1);
        }
        self.file.sync_data().map_err(io_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{units::BlockCount, zone::ZoneType};

    fn geo() -> MetaGeometry {
        MetaGeometry {
            block_size: 4096,
            capacity: 64,
            zone_len: 16,
            zone_cap: 12,
            conventional: 1,
            nr_zones: 4,
        }
    }

    fn zone(start: u64, wp: u64, cond: ZoneCondition) -> Zone {
        Zone {
            zone_type: ZoneType::SequentialWriteRequired,
            cond,
            start: Lba(start),
            len: BlockCount(16),
            cap: BlockCount(12),
            wp: Lba(wp),
        }
    }

    #[test]
    fn roundtrip_and_newest_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let (mut m, recs) = ZoneMeta::open(&path, geo()).unwrap();
        assert!(recs.is_none());
        m.persist(&[(1, zone(16, 20, ZoneCondition::Closed))])
            .unwrap();
        m.persist(&[(1, zone(16, 24, ZoneCondition::Closed))])
            .unwrap();
        m.persist(&[(2, zone(32, 44, ZoneCondition::Full))])
            .unwrap();
        drop(m);
        let (_, recs) = ZoneMeta::open(&path, geo()).unwrap();
        let recs = recs.unwrap();
        assert_eq!(recs[0], None);
        assert_eq!(
            recs[1],
            Some(Record {
                cond: ZoneCondition::Closed,
                wp: Lba(24)
            })
        );
        assert_eq!(recs[2].unwrap().cond, ZoneCondition::Full);
    }

    #[test]
    fn torn_newest_slot_falls_back_to_previous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let (mut m, _) = ZoneMeta::open(&path, geo()).unwrap();
        m.persist(&[(1, zone(16, 20, ZoneCondition::Closed))])
            .unwrap();
        m.persist(&[(1, zone(16, 24, ZoneCondition::Closed))])
            .unwrap();
        drop(m);
        // Tear the newest record (slot 1 of zone 1): flip a byte.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff], HEADER_LEN + 3 * SLOT_LEN + 9)
            .unwrap();
        let (_, recs) = ZoneMeta::open(&path, geo()).unwrap();
        assert_eq!(recs.unwrap()[1].unwrap().wp, Lba(20));
    }

    #[test]
    fn geometry_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        drop(ZoneMeta::open(&path, geo()).unwrap());
        let mut other = geo();
        other.zone_cap = 16;
        assert!(matches!(
            ZoneMeta::open(&path, other),
            Err(MetaError::Mismatch(_))
        ));
    }
}
