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
//! (u64), condition (u8, the ZBC-2 ZONE CONDITION code), flags (u8: bit 0
//! non-sequential write resources active), 10 reserved bytes, CRC32C of
//! the first 28 bytes; all little-endian. A slot that fails its CRC (all
//! zeros, torn) is ignored; a zone with no valid slot is EMPTY.
//!
//! Versions: version 1 (sequential write required zones) has the geometry
//! in bytes 8-47 and its CRC32C in bytes 48-51. Version 2 (sequential
//! write preferred zones) adds the sequential zone type (u32, the ZBC-2
//! ZONE TYPE code 3h) in bytes 48-51 and has the CRC32C in bytes 52-55.
//! A device with sequential write required zones still writes version 1,
//! so files of earlier releases load unchanged (their flags byte is 0);
//! a file made for the other zone type is refused as a mismatch.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use super::{
    units::Lba,
    zone::{Zone, ZoneCondition, ZoneGeometry, ZoneType},
};

const MAGIC: [u8; 8] = *b"ZCPYZMD1";
/// Version of files for sequential write required zones.
const VERSION_REQUIRED: u32 = 1;
/// Version of files for sequential write preferred zones.
const VERSION_PREFERRED: u32 = 2;
/// ZONE TYPE code of sequential write preferred zones (ZBC-2).
const TYPE_PREFERRED: u32 = 3;
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
    /// The sequential zones are write preferred (version 2 file).
    pub write_preferred: bool,
}

impl MetaGeometry {
    pub fn new(block_size: u32, capacity: u64, geo: &ZoneGeometry, nr_zones: u32) -> Self {
        MetaGeometry {
            block_size,
            capacity,
            zone_len: geo.zone_len.get(),
            zone_cap: geo.zone_cap.get(),
            conventional: geo.conventional,
            nr_zones,
            write_preferred: geo.sequential == ZoneType::SequentialWritePreferred,
        }
    }

    /// The header as stored: geometry then its CRC32C.
    fn encode(&self) -> Vec<u8> {
        let mut h = vec![0u8; 48];
        let version = if self.write_preferred {
            VERSION_PREFERRED
        } else {
            VERSION_REQUIRED
        };
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&version.to_le_bytes());
        h[12..16].copy_from_slice(&self.block_size.to_le_bytes());
        h[16..24].copy_from_slice(&self.capacity.to_le_bytes());
        h[24..32].copy_from_slice(&self.zone_len.to_le_bytes());
        h[32..40].copy_from_slice(&self.zone_cap.to_le_bytes());
        h[40..44].copy_from_slice(&self.conventional.to_le_bytes());
        h[44..48].copy_from_slice(&self.nr_zones.to_le_bytes());
        if self.write_preferred {
            h.extend_from_slice(&TYPE_PREFERRED.to_le_bytes());
        }
        let crc = crc32c::crc32c(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h
    }
}

/// Why the metadata file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(
        "zone metadata {0:?} was made for another geometry or version; refusing to start \
         (--reinit-zones starts over: every sequential zone EMPTY, its data discarded)"
    )]
    Mismatch(PathBuf),
    #[error("zone metadata {path:?}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// fsync the directory holding `path`, so that a file just created there
/// is found after a power loss.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// A recovered zone record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub cond: ZoneCondition,
    pub wp: Lba,
    /// Non-sequential write resources active (write preferred zones).
    pub non_seq: bool,
}

/// Record flags byte: non-sequential write resources active.
const FLAG_NON_SEQ: u8 = 0x01;

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
    b[8..16].copy_from_slice(&zone.wp.get().to_le_bytes());
    b[16] = cond_code(zone.cond);
    if zone.non_seq {
        b[17] |= FLAG_NON_SEQ;
    }
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
    let non_seq = body[17] & FLAG_NON_SEQ != 0;
    Some((
        seq,
        Record {
            cond,
            wp: Lba::new(wp),
            non_seq,
        },
    ))
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
    /// Whether the metadata at `path` is missing or empty, so that opening
    /// it would start a new zone table (every sequential zone EMPTY).
    pub fn is_new(path: &Path) -> Result<bool, MetaError> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(m.len() == 0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(source) => Err(MetaError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Open the metadata at `path`, creating it for `geo` if absent.
    /// Returns the store and, for an existing file, each zone's newest
    /// record (`None` where no valid record exists). A file made for
    /// another geometry is refused, or with `reinit` started over.
    pub fn open(
        path: &Path,
        geo: MetaGeometry,
        reinit: bool,
    ) -> Result<(Self, Recovered), MetaError> {
        let io_err = |source| MetaError::Io {
            path: path.to_owned(),
            source,
        };
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
        let len = meta.file.metadata().map_err(io_err)?.len();
        // A short file (cut before its header) is another geometry too.
        let mut on_disk = vec![0u8; header.len()];
        let same = len > 0 && meta.file.read_exact_at(&mut on_disk, 0).is_ok() && on_disk == header;
        if len > 0 && !same {
            if !reinit {
                return Err(MetaError::Mismatch(path.to_owned()));
            }
            log::warn!("zone metadata {path:?}: another geometry, starting over (--reinit-zones)");
            meta.file.set_len(0).map_err(io_err)?;
        }
        if !same {
            meta.file.set_len(size).map_err(io_err)?;
            meta.file.write_all_at(&header, 0).map_err(io_err)?;
            meta.file.sync_all().map_err(io_err)?;
            // The new file's directory entry must survive a crash too.
            sync_parent(path).map_err(io_err)?;
            return Ok((meta, None));
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
            write_preferred: false,
        }
    }

    fn zone(start: u64, wp: u64, cond: ZoneCondition) -> Zone {
        Zone {
            zone_type: ZoneType::SequentialWriteRequired,
            cond,
            start: Lba::new(start),
            len: BlockCount::new(16),
            cap: BlockCount::new(12),
            wp: Lba::new(wp),
            non_seq: false,
        }
    }

    #[test]
    fn roundtrip_and_newest_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let (mut m, recs) = ZoneMeta::open(&path, geo(), false).unwrap();
        assert!(recs.is_none());
        m.persist(&[(1, zone(16, 20, ZoneCondition::Closed))])
            .unwrap();
        m.persist(&[(1, zone(16, 24, ZoneCondition::Closed))])
            .unwrap();
        m.persist(&[(2, zone(32, 44, ZoneCondition::Full))])
            .unwrap();
        drop(m);
        let (_, recs) = ZoneMeta::open(&path, geo(), false).unwrap();
        let recs = recs.unwrap();
        assert_eq!(recs[0], None);
        assert_eq!(
            recs[1],
            Some(Record {
                cond: ZoneCondition::Closed,
                wp: Lba::new(24),
                non_seq: false,
            })
        );
        assert_eq!(recs[2].unwrap().cond, ZoneCondition::Full);
    }

    #[test]
    fn torn_newest_slot_falls_back_to_previous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let (mut m, _) = ZoneMeta::open(&path, geo(), false).unwrap();
        m.persist(&[(1, zone(16, 20, ZoneCondition::Closed))])
            .unwrap();
        m.persist(&[(1, zone(16, 24, ZoneCondition::Closed))])
            .unwrap();
        drop(m);
        // Tear the newest record (slot 1 of zone 1): flip a byte.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xff], HEADER_LEN + 3 * SLOT_LEN + 9)
            .unwrap();
        let (_, recs) = ZoneMeta::open(&path, geo(), false).unwrap();
        assert_eq!(recs.unwrap()[1].unwrap().wp, Lba::new(20));
    }

    #[test]
    fn version_1_file_still_loads() {
        // A file as the first release wrote it: version 1 header (no zone
        // type), one record for zone 1 (CLOSED, wp 20) with a zero flags
        // byte.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        #[rustfmt::skip]
        let mut header = vec![
            b'Z', b'C', b'P', b'Y', b'Z', b'M', b'D', b'1',
            1, 0, 0, 0, // version 1
            0x00, 0x10, 0, 0, // block size 4096
            64, 0, 0, 0, 0, 0, 0, 0, // capacity
            16, 0, 0, 0, 0, 0, 0, 0, // zone length
            12, 0, 0, 0, 0, 0, 0, 0, // zone capacity
            1, 0, 0, 0, // conventional zones
            4, 0, 0, 0, // zones
        ];
        let crc = crc32c::crc32c(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        #[rustfmt::skip]
        let mut rec = vec![
            1, 0, 0, 0, 0, 0, 0, 0, // sequence 1
            20, 0, 0, 0, 0, 0, 0, 0, // write pointer 20
            0x04, // CLOSED
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // reserved
        ];
        let crc = crc32c::crc32c(&rec);
        rec.extend_from_slice(&crc.to_le_bytes());
        let f = File::create(&path).unwrap();
        f.set_len(HEADER_LEN + 4 * 2 * SLOT_LEN).unwrap();
        f.write_all_at(&header, 0).unwrap();
        f.write_all_at(&rec, HEADER_LEN + 2 * SLOT_LEN).unwrap();
        drop(f);
        let (_, recs) = ZoneMeta::open(&path, geo(), false).unwrap();
        assert_eq!(
            recs.unwrap()[1],
            Some(Record {
                cond: ZoneCondition::Closed,
                wp: Lba::new(20),
                non_seq: false,
            })
        );
        // The same file is not one for write preferred zones.
        let swp = MetaGeometry {
            write_preferred: true,
            ..geo()
        };
        assert!(matches!(
            ZoneMeta::open(&path, swp, false),
            Err(MetaError::Mismatch(_))
        ));
    }

    #[test]
    fn write_preferred_header_and_non_seq_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        let swp = MetaGeometry {
            write_preferred: true,
            ..geo()
        };
        let (mut m, _) = ZoneMeta::open(&path, swp, false).unwrap();
        let mut z = zone(16, 24, ZoneCondition::Closed);
        z.zone_type = ZoneType::SequentialWritePreferred;
        z.non_seq = true;
        m.persist(&[(1, z)]).unwrap();
        drop(m);
        let mut head = [0u8; 56];
        File::open(&path)
            .unwrap()
            .read_exact_at(&mut head, 0)
            .unwrap();
        // Version 2, zone type 3h after the version 1 fields, then the CRC.
        assert_eq!(head[8..12], [2, 0, 0, 0]);
        assert_eq!(head[48..52], [3, 0, 0, 0]);
        assert_eq!(head[52..56], crc32c::crc32c(&head[..52]).to_le_bytes());
        let (_, recs) = ZoneMeta::open(&path, swp, false).unwrap();
        assert!(recs.unwrap()[1].unwrap().non_seq);
        assert!(matches!(
            ZoneMeta::open(&path, geo(), false),
            Err(MetaError::Mismatch(_))
        ));
    }

    #[test]
    fn geometry_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        drop(ZoneMeta::open(&path, geo(), false).unwrap());
        let mut other = geo();
        other.zone_cap = 16;
        assert!(matches!(
            ZoneMeta::open(&path, other, false),
            Err(MetaError::Mismatch(_))
        ));
    }
}
