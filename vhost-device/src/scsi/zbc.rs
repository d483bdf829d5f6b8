//! ZBC-2 commands: REPORT ZONES (ZBC IN 95h/00h) and the zone actions
//! (ZBC OUT 94h: CLOSE ZONE, FINISH ZONE, OPEN ZONE, RESET WRITE POINTER),
//! for host-managed (sequential write required zones) and host aware
//! (sequential write preferred zones) logical units.
//!
//! Zone capacity: the storage core's sequential zones have a size and a
//! smaller writable capacity. ZBC-2 has no zone capacity field; it describes
//! the unusable tail of a zone as a separate GAP zone (zone type 5h). So
//! each core sequential zone with capacity < size is reported as a
//! sequential write required zone of length = capacity, followed by a gap
//! zone of length = size - capacity, and the Zoned Block Device
//! Characteristics VPD page reports ZONE ALIGNMENT METHOD 8h with ZONE
//! STARTING LBA GRANULARITY = zone size. Linux (sd_zbc, since 6.0) turns
//! that back into zones of the granularity's size with a capacity.

use std::cell::RefCell;

use super::{
    cdb::{ReportZones, ZoneActionCdb},
    sense::{storage_error_sense, Access, Asc, ErrorContext, Sense},
    Exec,
};
use crate::storage::{
    BlockCount, Geometry, Lba, StorageError, Zone, ZoneAction, ZoneCondition, ZoneTarget, ZoneType,
};

/// ZONE TYPE field values (ZBC-2).
const TYPE_CONVENTIONAL: u8 = 0x1;
const TYPE_SEQUENTIAL_WRITE_REQUIRED: u8 = 0x2;
const TYPE_SEQUENTIAL_WRITE_PREFERRED: u8 = 0x3;
const TYPE_GAP: u8 = 0x5;

/// ZONE CONDITION field value (ZBC-2).
fn condition_code(c: ZoneCondition) -> u8 {
    match c {
        ZoneCondition::NotWritePointer => 0x0,
        ZoneCondition::Empty => 0x1,
        ZoneCondition::ImplicitOpen => 0x2,
        ZoneCondition::ExplicitOpen => 0x3,
        ZoneCondition::Closed => 0x4,
        ZoneCondition::ReadOnly => 0xd,
        ZoneCondition::Full => 0xe,
        ZoneCondition::Offline => 0xf,
    }
}

/// A zone as ZBC-2 reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReportedZone {
    zone_type: u8,
    cond: u8,
    start: u64,
    len: u64,
    wp: u64,
    /// NON_SEQ: non-sequential write resources active.
    non_seq: bool,
}

/// An invalid WRITE POINTER LBA (zones without a write pointer, and the
/// READ ONLY and OFFLINE zones whose write pointer is invalid).
const NO_WP: u64 = u64::MAX;

impl ReportedZone {
    fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    /// Zone descriptor (ZBC-2), 64 bytes.
    fn descriptor(&self) -> [u8; 64] {
        let mut d = [0u8; 64];
        d[0] = self.zone_type;
        // Byte 1: ZONE CONDITION in bits 7-4, NON_SEQ bit 1; RESET (bit 0,
        // reset write pointer recommended) is never set.
        d[1] = (self.cond << 4) | (u8::from(self.non_seq) << 1);
        d[8..16].copy_from_slice(&self.len.to_be_bytes());
        d[16..24].copy_from_slice(&self.start.to_be_bytes());
        d[24..32].copy_from_slice(&self.wp.to_be_bytes());
        d
    }
}

/// The zones ZBC-2 reports for one core zone: itself, and a gap zone when
/// its capacity is below its size.
fn reported(z: &Zone) -> [Option<ReportedZone>; 2] {
    if z.zone_type == ZoneType::Conventional {
        return [
            Some(ReportedZone {
                zone_type: TYPE_CONVENTIONAL,
                cond: condition_code(ZoneCondition::NotWritePointer),
                start: z.start.get(),
                len: z.len.get(),
                wp: NO_WP,
                non_seq: false,
            }),
            None,
        ];
    }
    let wp = match z.cond {
        ZoneCondition::NotWritePointer | ZoneCondition::ReadOnly | ZoneCondition::Offline => NO_WP,
        _ => z.wp.get(),
    };
    let zone_type = match z.zone_type {
        ZoneType::SequentialWritePreferred => TYPE_SEQUENTIAL_WRITE_PREFERRED,
        _ => TYPE_SEQUENTIAL_WRITE_REQUIRED,
    };
    let seq = ReportedZone {
        zone_type,
        cond: condition_code(z.cond),
        start: z.start.get(),
        len: z.cap.get(),
        wp,
        non_seq: z.non_seq,
    };
    let gap = (z.cap.get() < z.len.get()).then(|| ReportedZone {
        zone_type: TYPE_GAP,
        cond: condition_code(ZoneCondition::NotWritePointer),
        start: z.cap_end().get(),
        len: z.len.get() - z.cap.get(),
        wp: NO_WP,
        non_seq: false,
    });
    [Some(seq), gap]
}

/// Whether `lba` (inside the device) lies in a gap zone.
pub fn in_gap_zone(geo: &Geometry, lba: Lba) -> bool {
    gap_offset(geo, lba).is_some()
}

/// The offset of `lba` (inside the device) in its gap zone, if it is in
/// one.
fn gap_offset(geo: &Geometry, lba: Lba) -> Option<u64> {
    let z = geo.zones?;
    if z.zone_len.get() == 0 || z.zone_cap.get() >= z.zone_len.get() {
        return None;
    }
    let index = lba.get() / z.zone_len.get();
    let offset = lba.get() % z.zone_len.get();
    (index >= u64::from(z.conventional) && offset >= z.zone_cap.get())
        .then(|| offset - z.zone_cap.get())
}

/// Zone type rules of a read of `count` (> 0) blocks at `lba`, inside the
/// device, beyond what the storage core checks (ZBC-2, as the libzbc
/// conformance tests read it):
/// - on a host-managed device, crossing from a conventional zone into a
///   sequential write required zone: READ BOUNDARY VIOLATION (reads may
///   not cross zone types, whatever URSWRZ). A host aware device reads
///   across its conventional and write preferred zones like a disk.
///
/// The storage core handles gap zones (URSWRZ = 1: a read wholly inside
/// one returns zeros, one crossing into or out of it is a READ BOUNDARY
/// VIOLATION; URSWRZ = 0: ATTEMPT TO ACCESS GAP ZONE), and, with
/// URSWRZ = 0, reads of
/// sequential write required zones that cross a zone boundary (READ
/// BOUNDARY VIOLATION) or reach past the write pointer (ATTEMPT TO READ
/// INVALID DATA).
pub fn check_read(geo: &Geometry, lba: Lba, count: u64) -> Result<(), Sense> {
    let Some(z) = geo.zones else {
        return Ok(());
    };
    // Gap zones are the storage core's call (a read wholly inside one
    // works with URSWRZ 1; see ZoneTable::check_read).
    if z.sequential != ZoneType::SequentialWriteRequired {
        return Ok(());
    }
    let conventional_end = u64::from(z.conventional).saturating_mul(z.zone_len.get());
    let last = lba.get().saturating_add(count.saturating_sub(1));
    if lba.get() < conventional_end && last >= conventional_end {
        return Err(Sense::illegal(Asc::READ_BOUNDARY_VIOLATION));
    }
    Ok(())
}

/// The REPORTING OPTIONS filter (ZBC-2 6.4.2 REPORT ZONES CDB, the REPORTING
/// OPTIONS field, table 33), or `None` for a reserved value.
///
/// 3Eh lists every zone EXCEPT gap zones, 3Fh every zone whose condition is
/// NOT WRITE POINTER (conventional and gap zones). scsi_debug (which added
/// gap zones from ZBC-2) and libzbc's `zbc_info` read 3Eh the same way; the
/// `diff` guest suite compares every option against scsi_debug.
fn reporting_filter(options: u8) -> Option<fn(&ReportedZone) -> bool> {
    Some(match options {
        0x00 => |_| true,
        0x01 => |z| z.cond == 0x1,
        0x02 => |z| z.cond == 0x2,
        0x03 => |z| z.cond == 0x3,
        0x04 => |z| z.cond == 0x4,
        0x05 => |z| z.cond == 0xe,
        0x06 => |z| z.cond == 0xd,
        0x07 => |z| z.cond == 0xf,
        // INACTIVE zones (zone domains), RESET WRITE POINTER RECOMMENDED:
        // there are none.
        0x08 | 0x10 => |_| false,
        // Non-sequential write resources active.
        0x11 => |z| z.non_seq,
        // Every zone but the gap zones.
        0x3e => |z| z.zone_type != TYPE_GAP,
        // Zone condition NOT WRITE POINTER (conventional and gap zones).
        0x3f => |z| z.cond == 0x0,
        _ => return None,
    })
}

/// What REPORT ZONES accumulates while walking the zone table.
struct Report {
    /// Descriptors that fit in the allocation length.
    descriptors: Vec<u8>,
    room: usize,
    /// All matching zones from the start LBA on.
    matching: u64,
    first: Option<(u8, u64)>,
    same_type: bool,
    same_len: bool,
}

/// REPORT ZONES (ZBC-2).
pub fn report_zones(x: &mut Exec<'_, '_>, c: ReportZones) -> Result<u32, Sense> {
    let dev = &x.lu()?.device;
    let geo = dev.geometry();
    if c.start >= geo.capacity.get() {
        return Err(Sense::illegal(Asc::LBA_OUT_OF_RANGE));
    }
    let filter = reporting_filter(c.options).ok_or(Sense::invalid_field(14, Some(5)))?;
    let alloc = usize::try_from(c.alloc_len).unwrap_or(usize::MAX);
    let report = RefCell::new(Report {
        descriptors: Vec::new(),
        // Whole descriptors, and the one the allocation length cuts.
        room: alloc.saturating_sub(64).div_ceil(64),
        matching: 0,
        first: None,
        same_type: true,
        same_len: true,
    });
    // Walk the table under its lock without copying it: the callback
    // records what it needs and declines every zone.
    dev.report_zones(Lba::new(c.start), usize::MAX, |z| {
        let mut r = report.borrow_mut();
        for rz in reported(z).into_iter().flatten() {
            if rz.end() <= c.start || !filter(&rz) {
                continue;
            }
            r.matching += 1;
            match r.first {
                None => r.first = Some((rz.zone_type, rz.len)),
                Some((t, l)) => {
                    r.same_type &= t == rz.zone_type;
                    r.same_len &= l == rz.len;
                }
            }
            if r.room > 0 {
                r.room -= 1;
                r.descriptors.extend_from_slice(&rz.descriptor());
            }
        }
        false
    })
    .map_err(|e| {
        storage_error_sense(
            &e,
            ErrorContext {
                access: Access::Read,
                lba_field: 2,
            },
        )
    })?;
    let r = report.into_inner();
    // ZONE LIST LENGTH: all matching zones, or with PARTIAL only the whole
    // descriptors returned.
    let listed = if c.partial {
        let whole = alloc.saturating_sub(64) / 64 * 64;
        r.descriptors.len().min(whole) as u64
    } else {
        r.matching.saturating_mul(64)
    };
    // SAME (ZBC-2): 1h all types and lengths equal the first's,
    // 3h lengths equal but types differ, else 0h (may differ).
    let same = match (r.first, r.same_type, r.same_len) {
        (Some(_), true, true) => 0x1,
        (Some(_), false, true) => 0x3,
        _ => 0x0,
    };
    let mut d = vec![0u8; 64];
    d[..4].copy_from_slice(&u32::try_from(listed).unwrap_or(u32::MAX).to_be_bytes());
    d[4] = same;
    d[8..16].copy_from_slice(&geo.capacity.get().saturating_sub(1).to_be_bytes());
    // Bytes 16-23 ZONE STARTING LBA GRANULARITY (ZBC-2 6.4.3.2, table
    // 34): the same value as in the Zoned Block Device Characteristics VPD
    // page, i.e. the zone size when gap zones follow the sequential zones
    // (ZONE ALIGNMENT METHOD 8h), else zero.
    if let Some(z) = geo.zones.filter(|z| z.zone_cap.get() < z.zone_len.get()) {
        d[16..24].copy_from_slice(&z.zone_len.get().to_be_bytes());
    }
    d.extend_from_slice(&r.descriptors);
    x.send(&d, alloc)
}

/// CLOSE ZONE, FINISH ZONE, OPEN ZONE, RESET WRITE POINTER (ZBC-2 5.3-5.6).
///
/// With ALL set, ZONE ID and ZONE COUNT are ignored. Otherwise the
/// checks, in this order, each refusing the whole command before any zone
/// changes:
/// 1. ZONE ID past the last LBA: LOGICAL BLOCK ADDRESS OUT OF RANGE;
/// 2. ZONE ID the start of a gap zone: ATTEMPT TO ACCESS GAP ZONE;
/// 3. ZONE ID not the start of a write pointer zone: INVALID FIELD IN CDB
///    pointing at ZONE ID;
/// 4. ZONE COUNT (0 means 1) zones from there running past the last zone,
///    or including a zone that is not a write pointer zone (with zone
///    capacity below the zone size every sequential zone is followed by a
///    gap zone, so only a count of 1 is possible): INVALID FIELD IN CDB
///    pointing at ZONE COUNT;
/// 5. a READ ONLY or OFFLINE zone in the range: DATA PROTECT, ZONE IS READ
///    ONLY / ZONE IS OFFLINE;
/// 6. the zones together exceeding the open or active limits: DATA
///    PROTECT, INSUFFICIENT ZONE RESOURCES.
pub fn zone_action(x: &mut Exec<'_, '_>, c: ZoneActionCdb) -> Result<u32, Sense> {
    let action = match c.action {
        0x01 => ZoneAction::Close,
        0x02 => ZoneAction::Finish,
        0x03 => ZoneAction::Open,
        _ => ZoneAction::Reset,
    };
    let dev = &x.lu()?.device;
    let geo = dev.geometry();
    let zone_id_sense = |e: &StorageError| {
        storage_error_sense(
            e,
            ErrorContext {
                access: Access::ZoneAction,
                lba_field: ZoneActionCdb::ZONE_ID_FIELD,
            },
        )
    };
    let count_field = Sense::invalid_field(ZoneActionCdb::ZONE_COUNT_FIELD, Some(7));
    let count = u32::from(c.zone_count.max(1));
    let target = if c.all {
        ZoneTarget::All
    } else {
        if c.zone_id >= geo.capacity.get() {
            return Err(Sense::illegal(Asc::LBA_OUT_OF_RANGE));
        }
        if gap_offset(geo, Lba::new(c.zone_id)) == Some(0) {
            return Err(Sense::illegal(Asc::ATTEMPT_TO_ACCESS_GAP_ZONE));
        }
        if count == 1 {
            ZoneTarget::One(Lba::new(c.zone_id))
        } else if let Some(z) = geo.zones.filter(|z| z.zone_cap < z.zone_len) {
            // The range includes the gap zone after the first zone. A
            // ZONE ID that does not start a sequential zone is the error
            // to report, which the storage core does for one zone.
            let seq_start = c.zone_id.is_multiple_of(z.zone_len.get())
                && c.zone_id / z.zone_len.get() >= u64::from(z.conventional);
            if seq_start {
                return Err(count_field);
            }
            ZoneTarget::One(Lba::new(c.zone_id))
        } else {
            ZoneTarget::Range {
                start: Lba::new(c.zone_id),
                count,
            }
        }
    };
    dev.zone_action(action, target)
        .map_err(|e| match (&e, target) {
            // ZONE ID is inside the device, so the range runs past its end.
            (StorageError::OutOfRange { .. }, ZoneTarget::Range { .. }) => count_field,
            // A zone after the first is not a write pointer zone.
            (StorageError::ConventionalZone { zone }, ZoneTarget::Range { start, .. })
                if *zone != start =>
            {
                count_field
            }
            _ => zone_id_sense(&e),
        })?;
    if action == ZoneAction::Reset {
        // The reset zones read as zeros now: cancel the ROD tokens that
        // represent any of them.
        let (start, len) = match (target, geo.zones) {
            (ZoneTarget::One(lba), Some(z)) => (lba, z.zone_len),
            (ZoneTarget::Range { start, count }, Some(z)) => (
                start,
                BlockCount::new(z.zone_len.get().saturating_mul(u64::from(count))),
            ),
            _ => (Lba::new(0), geo.capacity),
        };
        x.target.copy.invalidate(x.lun, start, len);
    }
    Ok(0)
}

super::commands::handlers! {
    ReportZones => report_zones,
    ZoneActionCdb => zone_action,
}
