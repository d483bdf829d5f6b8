//! The SG_IO areas: the device's own data, zone condition transitions,
//! ZONE COUNT, violations with their sense data, open and active limits,
//! REPORT ZONES, restricted reads and sequential write preferred zones.

use super::{
    bad, check_sense,
    model::{Action, Field, Model, Violation},
    scsi::{self, hex},
    Ctx, Op, Test,
};
use crate::{
    ktap::{ensure, Step, Verdict},
    sgio::Data,
    xcopy::{cdb as xcdb, parse as xparse},
};

use Action::{Close, Finish, Open, Reset};

pub(super) fn main_lun(c: &Ctx) -> Result<usize, Verdict> {
    c.role(c.roles.main, "host-managed LUN")
}

pub(super) fn zone(a: Action, id: u64) -> Op {
    Op::Zone(a, id, 0, false)
}

pub(super) fn all(a: Action) -> Op {
    Op::Zone(a, 0, 0, true)
}

/// Write `n` blocks at the write pointer of the zone starting at `z`, in
/// pieces of at most `piece` blocks.
pub(super) fn fill(c: &mut Ctx, li: usize, z: u64, n: u64, piece: u64) -> Step {
    let i = c.luns[li]
        .model
        .zone_index(z)
        .ok_or_else(|| bad(format!("no zone at {z}")))?;
    let mut wp = c.luns[li].model.zones[i].wp;
    let end = wp + n;
    let piece = piece.min(super::MAX_XFER / c.luns[li].bs()).max(1);
    while wp < end {
        let k = piece.min(end - wp);
        c.ok(li, Op::Write(wp, k))?;
        wp += k;
    }
    Ok(())
}

/// Blocks of one stamped 4 KiB unit (the smallest write the suite makes).
pub(super) fn unit(c: &Ctx, li: usize) -> u64 {
    (4096 / c.luns[li].bs()).max(1)
}

// ------------------------------------------------------------------ device

pub(super) const DEVICE: &[Test] = &[
    ("inquiry", t_inquiry),
    ("read_capacity", t_read_capacity),
    ("vpd_b6", t_vpd_b6),
    ("rsoc_zbc", t_rsoc),
    ("initial_zones", t_initial_zones),
];

fn any_lun(c: &Ctx) -> Step {
    if c.luns.is_empty() {
        return Err(Verdict::skip("no zoned LUN"));
    }
    Ok(())
}

fn t_inquiry(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        let l = &c.luns[li];
        let kind = l.spec.kind.to_string();
        let want = if kind == "ha" { 0x00 } else { 0x14 };
        ensure(l.pdt == want, || {
            format!(
                "{}: PERIPHERAL DEVICE TYPE {:#04x}, expected {want:#04x} for kind {kind}",
                l.name, l.pdt
            )
        })?;
        if l.pdt == 0x00 {
            // SBC-4 6.6.2 Block Device Characteristics: ZONED 01b = host aware.
            let mut p = [0u8; 64];
            let r = c.sg(li, &xcdb::inquiry(Some(0xb1), 64), Data::FromDevice(&mut p))?;
            let name = c.luns[li].name.clone();
            ensure(r.status == 0 && p[1] == 0xb1, || {
                format!("{name}: VPD B1h: {r}")
            })?;
            ensure((p[8] >> 4) & 3 == 1, || {
                format!(
                    "{name}: VPD B1h ZONED {}, expected 01b (host aware)",
                    (p[8] >> 4) & 3
                )
            })?;
        }
    }
    Ok(())
}

fn t_read_capacity(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        let mut b = [0u8; 32];
        let r = c.sg(li, &scsi::read_capacity16(32), Data::FromDevice(&mut b))?;
        let l = &c.luns[li];
        ensure(r.status == 0, || {
            format!("{}: READ CAPACITY(16): {r}", l.name)
        })?;
        let (last, bs) = scsi::parse_capacity16(&b).map_err(bad)?;
        ensure(
            last + 1 == l.model.layout.blocks && u64::from(bs) == l.bs(),
            || {
                format!(
                    "{}: READ CAPACITY(16) last LBA {last} block length {bs}, expected {} and {}",
                    l.name,
                    l.model.layout.blocks - 1,
                    l.bs()
                )
            },
        )?;
    }
    Ok(())
}

/// VPD B6h against what the host configured: the open limit (as the
/// control socket reports the configuration), the zone alignment method
/// and granularity of gap zones, the host aware extension.
fn t_vpd_b6(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for l in &c.luns {
        let v =
            l.b6.ok_or_else(|| bad(format!("{}: no VPD B6h page", l.name)))?;
        c.diags.push(format!("{}: {v:?}", l.name));
        let lay = l.model.layout;
        let want_urswrz = l.spec.zones.map_or(true, |z| z.urswrz);
        ensure(v.urswrz == want_urswrz, || {
            format!(
                "{}: URSWRZ {}, configured {}",
                l.name,
                u8::from(v.urswrz),
                u8::from(want_urswrz)
            )
        })?;
        if lay.host_aware {
            ensure(v.zbd_ext == 1, || {
                format!(
                    "{}: ZONED BLOCK DEVICE EXTENSION {}, expected 1h (host aware)",
                    l.name, v.zbd_ext
                )
            })?;
        } else {
            ensure(v.zbd_ext == 0, || {
                format!(
                    "{}: ZONED BLOCK DEVICE EXTENSION {}, expected 0h",
                    l.name, v.zbd_ext
                )
            })?;
            if let Some(open) = l.ctl_max_open {
                let want = open.unwrap_or(u32::MAX);
                ensure(v.max_open_swr == want, || {
                    format!(
                        "{}: MAXIMUM NUMBER OF OPEN SEQUENTIAL WRITE REQUIRED ZONES {:#x}, configured {want:#x}",
                        l.name, v.max_open_swr
                    )
                })?;
            }
        }
        if lay.cap_blocks < lay.zone_blocks {
            ensure(v.zam == 8 && v.granularity == lay.zone_blocks, || {
                format!(
                    "{}: zone capacity < zone size needs ZONE ALIGNMENT METHOD 8h and granularity {}, got {:#x} and {}",
                    l.name, lay.zone_blocks, v.zam, v.granularity
                )
            })?;
        } else {
            ensure(
                v.zam <= 1 || (v.zam == 8 && v.granularity == lay.zone_blocks),
                || {
                    format!(
                        "{}: ZONE ALIGNMENT METHOD {:#x} granularity {}",
                        l.name, v.zam, v.granularity
                    )
                },
            )?;
        }
    }
    Ok(())
}

/// REPORT SUPPORTED OPERATION CODES for each ZBC OUT service action and
/// REPORT ZONES: supported, 16-byte CDBs whose usage data covers ZONE ID,
/// ALL, PARTIAL and REPORTING OPTIONS.
fn t_rsoc(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        let name = c.luns[li].name.clone();
        for (op, sa) in [(0x94u8, 1u16), (0x94, 2), (0x94, 3), (0x94, 4), (0x95, 0)] {
            let mut b = [0u8; 64];
            let r = c.sg(li, &xcdb::rsoc_one(op, sa, 64), Data::FromDevice(&mut b))?;
            ensure(r.status == 0, || {
                format!("{name}: RSOC {op:02x}h/{sa:02x}h: {r}")
            })?;
            let one = xparse::rsoc_one(&b).map_err(bad)?;
            let u = &one.usage;
            let ok = one.support == 0b011
                && u.len() == 16
                && u[0] == op
                // SPC-4 6.35.3: the service action itself in its field.
                && u16::from(u[1] & 0x1f) == sa
                && u[2..10].iter().all(|&x| x == 0xff)
                && if op == 0x94 {
                    u[14] & 1 == 1
                } else {
                    u[10..14].iter().all(|&x| x == 0xff) && u[14] & 0xbf == 0xbf
                };
            ensure(ok, || {
                format!(
                    "{name}: RSOC {op:02x}h/{sa:02x}h: SUPPORT {:03b}, usage [{}]",
                    one.support,
                    hex(u)
                )
            })?;
        }
        let zc = c.luns[li].zone_count;
        c.diag(format!("{name}: ZONE COUNT in the CDB usage data: {zc:?}"));
    }
    Ok(())
}

fn t_initial_zones(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        c.fresh(li)?;
    }
    Ok(())
}

// ------------------------------------------------------------- transitions

pub(super) const TRANSITIONS: &[Test] = &[
    ("empty_open", t_empty_open),
    ("exp_open_close_to_empty", t_exp_close_empty),
    ("empty_write", t_empty_write),
    ("imp_open_open", t_imp_open),
    ("exp_open_write", t_exp_write),
    ("exp_open_close", t_exp_close),
    ("imp_open_close", t_imp_close),
    ("closed_write", t_closed_write),
    ("closed_open", t_closed_open),
    ("closed_close", t_closed_close),
    ("empty_close_reset", t_empty_close_reset),
    ("finish_each", t_finish_each),
    ("full_open_close_finish", t_full_no_change),
    ("reset_each", t_reset_each),
    ("write_to_capacity", t_write_to_capacity),
    ("open_all", t_open_all),
    ("close_all", t_close_all),
    ("finish_all", t_finish_all),
    ("reset_all", t_reset_all),
];

/// The main LUN, fresh, and the start of its `k`-th write pointer zone.
fn fresh_zone(c: &mut Ctx, k: usize) -> Result<(usize, u64), Verdict> {
    let li = main_lun(c)?;
    let z = c.luns[li].wz(k)?;
    c.fresh(li)?;
    Ok((li, z))
}

fn t_empty_open(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))
}

fn t_exp_close_empty(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, zone(Close, z))
}

fn t_empty_write(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, Op::Write(z + u, 2 * u))
}

fn t_imp_open(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Open, z))
}

fn t_exp_write(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, Op::Write(z, unit(c, li)))
}

fn t_exp_close(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Close, z))
}

fn t_imp_close(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Close, z))
}

fn closed_zone(c: &mut Ctx) -> Result<(usize, u64), Verdict> {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Close, z))?;
    Ok((li, z))
}

fn t_closed_write(c: &mut Ctx) -> Step {
    let (li, z) = closed_zone(c)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z + u, u))
}

fn t_closed_open(c: &mut Ctx) -> Step {
    let (li, z) = closed_zone(c)?;
    c.ok(li, zone(Open, z))
}

fn t_closed_close(c: &mut Ctx) -> Step {
    let (li, z) = closed_zone(c)?;
    c.ok(li, zone(Close, z))
}

fn t_empty_close_reset(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Close, z))?;
    c.ok(li, zone(Reset, z))
}

/// Four zones EMPTY, IMPLICITLY OPENED, EXPLICITLY OPENED, CLOSED.
fn four_states(c: &mut Ctx) -> Result<(usize, [u64; 4]), Verdict> {
    let (li, z0) = fresh_zone(c, 0)?;
    let z = [z0, c.luns[li].wz(1)?, c.luns[li].wz(2)?, c.luns[li].wz(3)?];
    let u = unit(c, li);
    c.ok(li, Op::Write(z[1], u))?;
    c.ok(li, zone(Open, z[2]))?;
    c.ok(li, Op::Write(z[3], u))?;
    c.ok(li, zone(Close, z[3]))?;
    Ok((li, z))
}

fn t_finish_each(c: &mut Ctx) -> Step {
    let (li, z) = four_states(c)?;
    for z in z {
        c.ok(li, zone(Finish, z))?;
    }
    Ok(())
}

fn t_full_no_change(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Finish, z))?;
    for a in [Open, Close, Finish] {
        c.ok(li, zone(a, z))?;
    }
    Ok(())
}

fn t_reset_each(c: &mut Ctx) -> Step {
    let (li, z) = four_states(c)?;
    c.ok(li, zone(Finish, z[0]))?;
    for z in z {
        c.ok(li, zone(Reset, z))?;
    }
    Ok(())
}

fn t_write_to_capacity(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let cap = c.luns[li].cap();
    let piece = (cap / 4).max(unit(c, li));
    fill(c, li, z, cap, piece)
}

/// EMPTY, IMPLICITLY OPENED, CLOSED, FULL, EXPLICITLY OPENED (written).
pub(super) fn five_states(c: &mut Ctx) -> Result<(usize, [u64; 5]), Verdict> {
    let (li, z0) = fresh_zone(c, 0)?;
    let l = &c.luns[li];
    let z = [z0, l.wz(1)?, l.wz(2)?, l.wz(3)?, l.wz(4)?];
    let u = unit(c, li);
    c.ok(li, Op::Write(z[1], u))?;
    c.ok(li, Op::Write(z[2], u))?;
    c.ok(li, zone(Close, z[2]))?;
    c.ok(li, zone(Finish, z[3]))?;
    c.ok(li, zone(Open, z[4]))?;
    c.ok(li, Op::Write(z[4], u))?;
    Ok((li, z))
}

fn t_open_all(c: &mut Ctx) -> Step {
    let (li, _) = five_states(c)?;
    c.ok(li, all(Open))
}

fn t_close_all(c: &mut Ctx) -> Step {
    let (li, z) = five_states(c)?;
    // And an explicitly opened zone with nothing written: EMPTY again.
    c.ok(li, zone(Open, z[0]))?;
    c.ok(li, all(Close))
}

fn t_finish_all(c: &mut Ctx) -> Step {
    let (li, _) = five_states(c)?;
    c.ok(li, all(Finish))
}

fn t_reset_all(c: &mut Ctx) -> Step {
    let (li, _) = five_states(c)?;
    c.ok(li, all(Reset))
}

// -------------------------------------------------------------- zone count

pub(super) const ZONE_COUNT: &[Test] = &[
    ("count_zero_and_one", t_count_one),
    ("count_open", t_count_open),
    ("count_close", t_count_close),
    ("count_finish", t_count_finish),
    ("count_reset", t_count_reset),
    ("count_past_last_zone", t_count_past_last),
];

fn counted(c: &mut Ctx) -> Result<(usize, u64), Verdict> {
    let li = c.role(
        c.roles.counted,
        "host-managed LUN without gap zones whose RSOC shows ZONE COUNT",
    )?;
    let z = c.luns[li].wz(0)?;
    c.luns[li].wz(3)?;
    c.fresh(li)?;
    Ok((li, z))
}

fn t_count_one(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    c.ok(li, Op::Zone(Open, z, 1, false))?;
    c.ok(li, Op::Zone(Finish, z, 0, false))?;
    c.ok(li, Op::Zone(Reset, z, 1, false))
}

fn t_count_open(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    c.ok(li, Op::Zone(Open, z, 3, false))
}

fn t_count_close(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    let u = unit(c, li);
    let z1 = c.luns[li].wz(1)?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, zone(Open, z1))?;
    c.ok(li, Op::Zone(Close, z, 3, false))
}

fn t_count_finish(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    let u = unit(c, li);
    let z2 = c.luns[li].wz(2)?;
    c.ok(li, Op::Write(z2, u))?;
    c.ok(li, Op::Zone(Finish, z, 4, false))
}

fn t_count_reset(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    c.ok(li, Op::Zone(Finish, z, 3, false))?;
    c.ok(li, Op::Write(c.luns[li].wz(3)?, unit(c, li)))?;
    c.ok(li, Op::Zone(Reset, z, 4, false))
}

/// ZONE COUNT running past the last zone: ILLEGAL REQUEST, nothing done.
/// ZBC-2 names INVALID FIELD IN CDB; LOGICAL BLOCK ADDRESS OUT OF RANGE
/// (the end of the range) is accepted too.
fn t_count_past_last(c: &mut Ctx) -> Step {
    let (li, _) = counted(c)?;
    let n = c.luns[li].model.wp_zones().len();
    let last = c.luns[li].wz(n - 1)?;
    let prev = c.luns[li].wz(n - 2)?;
    for (a, id, count) in [(Open, last, 2u16), (Reset, prev, 3), (Finish, last, 0xffff)] {
        let op = Op::Zone(a, id, count, false);
        c.err_any(
            li,
            op,
            &[
                Violation::InvalidField(Field::Any),
                Violation::LbaOutOfRange,
            ],
        )?;
    }
    Ok(())
}

// -------------------------------------------------------------- violations

pub(super) const VIOLATIONS: &[Test] = &[
    ("write_above_wp", t_write_above_wp),
    ("write_below_wp", t_write_below_wp),
    ("write_empty_not_at_start", t_write_empty_off_start),
    ("write_boundary", t_write_boundary),
    ("write_full_zone", t_write_full),
    ("write_gap_zone", t_write_gap),
    ("write_past_end", t_write_past_end),
    ("read_past_end", t_read_past_end),
    ("zone_id_mid_zone", t_zone_id_mid),
    ("zone_id_conventional", t_zone_id_conv),
    ("zone_id_gap", t_zone_id_gap),
    ("zone_id_past_end", t_zone_id_past_end),
    ("all_ignores_zone_id", t_all_ignores_id),
];

fn written_zone(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let (li, z) = fresh_zone(c, 0)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, 2 * u))?;
    Ok((li, z, u))
}

fn t_write_above_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = written_zone(c)?;
    c.err(li, Op::Write(z + 3 * u, u), Violation::UnalignedWrite)?;
    c.err(li, Op::Write(z + 2 * u + 1, 1), Violation::UnalignedWrite)
}

fn t_write_below_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = written_zone(c)?;
    c.err(li, Op::Write(z, u), Violation::UnalignedWrite)?;
    // Starting below and ending past the write pointer.
    c.err(li, Op::Write(z + u, 2 * u), Violation::UnalignedWrite)
}

fn t_write_empty_off_start(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 1)?;
    let u = unit(c, li);
    c.err(li, Op::Write(z + u, u), Violation::UnalignedWrite)
}

/// A write at the write pointer that does not fit: WRITE BOUNDARY
/// VIOLATION, whether the next zone is a gap zone or a sequential one.
fn t_write_boundary(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let u = unit(c, li);
    let cap = c.luns[li].cap();
    ensure(cap >= 2 * u, || {
        "zone capacity below two 4 KiB units".into()
    })?;
    fill(c, li, z, cap - u, (cap / 3).max(u))?;
    c.err(li, Op::Write(z + cap - u, 2 * u), Violation::WriteBoundary)?;
    c.ok(li, Op::Write(z + cap - u, u))
}

fn t_write_full(c: &mut Ctx) -> Step {
    let (li, z, u) = written_zone(c)?;
    c.ok(li, zone(Finish, z))?;
    let full = Violation::InvalidField(Field::Any);
    c.err(li, Op::Write(z, u), full)?;
    c.err(li, Op::Write(z + 2 * u, u), full)
}

fn gap_start(c: &Ctx, li: usize) -> Result<u64, Verdict> {
    c.luns[li]
        .model
        .zones
        .iter()
        .find(|z| z.ztype == super::model::ZoneType::Gap)
        .map(|z| z.start)
        .ok_or_else(|| {
            Verdict::skip(format!(
                "{} has no gap zones (capacity = zone size)",
                c.luns[li].name
            ))
        })
}

fn t_write_gap(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let g = gap_start(c, li)?;
    c.fresh(li)?;
    c.err(li, Op::Write(g, unit(c, li)), Violation::GapZone)
}

fn t_write_past_end(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let end = c.luns[li].model.layout.blocks;
    c.err(li, Op::Write(end - 1, 2), Violation::LbaOutOfRange)?;
    c.err(li, Op::Write(end, 1), Violation::LbaOutOfRange)
}

fn t_read_past_end(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let end = c.luns[li].model.layout.blocks;
    c.err(li, Op::Read(end - 1, 2), Violation::LbaOutOfRange)
}

const ACTIONS: [Action; 4] = [Open, Close, Finish, Reset];

/// INVALID FIELD IN CDB pointing at the ZONE ID field (byte 2, its most
/// significant bit 7).
const ZONE_ID: Violation = Violation::InvalidField(Field::Cdb(2, Some(7)));

fn zone_id_field(c: &mut Ctx, li: usize, id: u64) -> Step {
    for a in ACTIONS {
        c.err(li, zone(a, id), ZONE_ID)?;
    }
    Ok(())
}

fn t_zone_id_mid(c: &mut Ctx) -> Step {
    let (li, z, _) = written_zone(c)?;
    zone_id_field(c, li, z + 1)
}

fn t_zone_id_conv(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    if c.luns[li].model.layout.conventional == 0 {
        return Err(Verdict::skip("no conventional zones"));
    }
    zone_id_field(c, li, 0)
}

/// A zone action on a gap zone: ATTEMPT TO ACCESS GAP ZONE (ZBC-2; as
/// libzbc's tests 323/333/343/353 expect); inside one: not a zone start.
fn t_zone_id_gap(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let g = gap_start(c, li)?;
    for a in ACTIONS {
        c.err(li, zone(a, g), Violation::GapZone)?;
    }
    zone_id_field(c, li, g + 1)
}

fn t_zone_id_past_end(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let end = c.luns[li].model.layout.blocks;
    for a in ACTIONS {
        c.err(li, zone(a, end), Violation::LbaOutOfRange)?;
        c.err(li, zone(a, u64::MAX), Violation::LbaOutOfRange)?;
    }
    Ok(())
}

/// With ALL set the ZONE ID field is ignored (ZBC-2 5.2-5.5).
fn t_all_ignores_id(c: &mut Ctx) -> Step {
    let (li, _, _) = written_zone(c)?;
    let bogus = c.luns[li].model.layout.blocks + 7;
    for a in [Close, Open, Finish, Reset] {
        c.ok(li, Op::Zone(a, bogus, 0, true))?;
    }
    Ok(())
}

// ------------------------------------------------------------------ limits

pub(super) const LIMITS: &[Test] = &[
    ("implicit_open_to_max", t_imp_to_max),
    ("implicit_open_closes_one", t_imp_evicts),
    ("evict_oldest_implicit", t_evict_oldest),
    ("active_limit_write", t_active_write),
    ("active_limit_open", t_active_open),
    ("closed_write_needs_open_only", t_closed_write_reopens),
    ("finish_frees_active", t_finish_frees),
    ("explicit_open_closes_implicit", t_explicit_evicts),
    ("explicit_open_insufficient", t_explicit_insufficient),
    ("write_insufficient", t_write_insufficient),
    ("close_frees_open", t_close_frees),
    ("open_all_insufficient", t_open_all_insufficient),
    ("open_all_fits", t_open_all_fits),
    ("capacity", t_capacity),
];

/// The main LUN with an open limit: (LUN, max open, max active).
fn limited(c: &mut Ctx) -> Result<(usize, usize, Option<usize>), Verdict> {
    let li = main_lun(c)?;
    let l = &c.luns[li].model.layout;
    let mo = l
        .max_open
        .ok_or_else(|| Verdict::skip(format!("{} has no open zone limit", c.luns[li].name)))?
        as usize;
    let ma = l.max_active.map(|a| a as usize);
    if mo < 2 {
        return Err(Verdict::skip("max open below 2"));
    }
    c.luns[li].wz(ma.unwrap_or(mo) + 2)?;
    c.fresh(li)?;
    Ok((li, mo, ma))
}

/// Implicitly open zones 0..n, one unit each.
fn imp_open(c: &mut Ctx, li: usize, n: usize) -> Step {
    let u = unit(c, li);
    for k in 0..n {
        let z = c.luns[li].wz(k)?;
        c.ok(li, Op::Write(z, u))?;
    }
    Ok(())
}

fn t_imp_to_max(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    imp_open(c, li, mo)?;
    ensure(c.luns[li].model.open_count() == mo, || {
        "suite bug: open count".into()
    })
}

fn t_imp_evicts(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    imp_open(c, li, mo + 1)?;
    ensure(c.last_eviction.is_some(), || {
        "suite bug: the model closed no zone".into()
    })
}

/// Which implicitly opened zone is closed is vendor specific (ZBC-2
/// 4.4.3.2); zonecopy closes the one implicitly opened longest ago (as
/// QEMU's ZNS does): zones opened one after the other, the first goes.
fn t_evict_oldest(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    imp_open(c, li, mo + 1)?;
    let (_, oldest, got) = c
        .last_eviction
        .ok_or_else(|| bad("suite bug: the model closed no zone"))?;
    ensure(got == oldest, || {
        format!(
            "the device closed implicitly open zone {got}, not the oldest one {oldest} \
             (allowed by ZBC-2, not zonecopy's documented choice)"
        )
    })
}

/// The main LUN with `max active` zones active (the last `max open` of
/// them implicitly open, the others closed by evictions).
fn at_active_limit(c: &mut Ctx) -> Result<(usize, usize, usize), Verdict> {
    let (li, mo, ma) = limited(c)?;
    let ma = ma.ok_or_else(|| Verdict::skip("no active zone limit"))?;
    if ma <= mo {
        return Err(Verdict::skip(format!(
            "max active {ma} is not above max open {mo}"
        )));
    }
    imp_open(c, li, ma)?;
    ensure(c.luns[li].model.active_count() == ma, || {
        "suite bug: active count".into()
    })?;
    Ok((li, mo, ma))
}

fn t_active_write(c: &mut Ctx) -> Step {
    let (li, _, ma) = at_active_limit(c)?;
    let z = c.luns[li].wz(ma)?;
    c.err(
        li,
        Op::Write(z, unit(c, li)),
        Violation::InsufficientResources,
    )
}

fn t_active_open(c: &mut Ctx) -> Step {
    let (li, _, ma) = at_active_limit(c)?;
    let z = c.luns[li].wz(ma)?;
    c.err(li, zone(Open, z), Violation::InsufficientResources)
}

fn t_closed_write_reopens(c: &mut Ctx) -> Step {
    let (li, _, _) = at_active_limit(c)?;
    // Zone 0 was closed to make room; writing it again needs an open
    // resource (another implicitly open zone is closed), no active one.
    let z = c.luns[li].wz(0)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z + u, u))
}

/// FINISH of a CLOSED zone frees its active resource. An open one is made
/// free first: whether finishing a CLOSED zone needs an open resource is
/// not settled by ZBC-2 (libzbc accepts both answers).
fn t_finish_frees(c: &mut Ctx) -> Step {
    let (li, mo, ma) = at_active_limit(c)?;
    let z0 = c.luns[li].wz(0)?;
    let open = c.luns[li].wz(ma - mo)?;
    let zn = c.luns[li].wz(ma)?;
    c.ok(li, zone(Close, open))?;
    c.ok(li, zone(Finish, z0))?;
    c.ok(li, Op::Write(zn, unit(c, li)))
}

fn t_explicit_evicts(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    imp_open(c, li, 1)?;
    for k in 1..mo {
        let z = c.luns[li].wz(k)?;
        c.ok(li, zone(Open, z))?;
    }
    let z = c.luns[li].wz(mo)?;
    c.ok(li, zone(Open, z))?;
    ensure(c.last_eviction.is_some(), || {
        "suite bug: the model closed no zone".into()
    })
}

fn all_explicit(c: &mut Ctx) -> Result<(usize, usize), Verdict> {
    let (li, mo, _) = limited(c)?;
    for k in 0..mo {
        let z = c.luns[li].wz(k)?;
        c.ok(li, zone(Open, z))?;
    }
    Ok((li, mo))
}

fn t_explicit_insufficient(c: &mut Ctx) -> Step {
    let (li, mo) = all_explicit(c)?;
    let z = c.luns[li].wz(mo)?;
    c.err(li, zone(Open, z), Violation::InsufficientResources)
}

fn t_write_insufficient(c: &mut Ctx) -> Step {
    let (li, mo) = all_explicit(c)?;
    let z = c.luns[li].wz(mo)?;
    c.err(
        li,
        Op::Write(z, unit(c, li)),
        Violation::InsufficientResources,
    )
}

fn t_close_frees(c: &mut Ctx) -> Step {
    let (li, mo) = all_explicit(c)?;
    let z0 = c.luns[li].wz(0)?;
    let z = c.luns[li].wz(mo)?;
    c.ok(li, zone(Close, z0))?;
    c.ok(li, zone(Open, z))
}

/// `n` CLOSED zones (written, closed one by one).
fn closed_zones(c: &mut Ctx, li: usize, n: usize) -> Step {
    let u = unit(c, li);
    for k in 0..n {
        let z = c.luns[li].wz(k)?;
        c.ok(li, Op::Write(z, u))?;
        c.ok(li, zone(Close, z))?;
    }
    Ok(())
}

fn t_open_all_insufficient(c: &mut Ctx) -> Step {
    let (li, mo, ma) = limited(c)?;
    if ma.is_some_and(|a| a <= mo) {
        return Err(Verdict::skip(
            "max active does not allow max open + 1 closed zones",
        ));
    }
    closed_zones(c, li, mo + 1)?;
    c.err(li, all(Open), Violation::InsufficientResources)
}

fn t_open_all_fits(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    closed_zones(c, li, mo)?;
    c.ok(li, all(Open))
}

/// Zone capacity below the zone size: FULL at the capacity; a write past
/// it crosses into the gap zone.
fn t_capacity(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let lay = c.luns[li].model.layout;
    if lay.cap_blocks == lay.zone_blocks {
        return Err(Verdict::skip("zone capacity = zone size"));
    }
    let u = unit(c, li);
    let cap = lay.cap_blocks;
    fill(c, li, z, cap - u, (cap / 3).max(u))?;
    c.err(li, Op::Write(z + cap - u, 2 * u), Violation::WriteBoundary)?;
    c.ok(li, Op::Write(z + cap - u, u))?;
    c.err(li, Op::Write(z + cap, u), Violation::GapZone)?;
    c.err(li, Op::Write(z, u), Violation::InvalidField(Field::Any))
}

// ------------------------------------------------------------ report zones

pub(super) const REPORT: &[Test] = &[
    ("setup", t_report_setup),
    ("option_00_all", |c| report_option(c, 0x00)),
    ("option_01_empty", |c| report_option(c, 0x01)),
    ("option_02_imp_open", |c| report_option(c, 0x02)),
    ("option_03_exp_open", |c| report_option(c, 0x03)),
    ("option_04_closed", |c| report_option(c, 0x04)),
    ("option_05_full", |c| report_option(c, 0x05)),
    ("option_06_read_only", |c| report_option(c, 0x06)),
    ("option_07_offline", |c| report_option(c, 0x07)),
    ("option_08_inactive", |c| report_option(c, 0x08)),
    ("option_10_reset", |c| report_option(c, 0x10)),
    ("option_11_non_seq", |c| report_option(c, 0x11)),
    ("option_3e_not_gap", |c| report_option(c, 0x3e)),
    ("option_3f_not_wp", |c| report_option(c, 0x3f)),
    ("partial_0", |c| report_partial(c, 0x00, false)),
    ("partial_1", |c| report_partial(c, 0x00, true)),
    ("partial_filtered", t_partial_filtered),
    ("start_mid_zone", t_start_mid_zone),
    ("alloc_header_only", |c| report_alloc(c, 64)),
    ("alloc_short_header", |c| report_alloc(c, 16)),
    ("alloc_odd", |c| report_alloc(c, 64 + 64 + 10)),
    ("bad_option", t_report_bad_option),
    ("start_past_end", t_report_past_end),
    ("non_seq_swp", t_report_non_seq),
];

fn t_report_setup(c: &mut Ctx) -> Step {
    let (li, z) = five_states(c)?;
    // A FULL zone written to capacity, too.
    let z5 = c.luns[li].wz(5)?;
    let cap = c.luns[li].cap();
    fill(c, li, z5, cap, (cap / 2).max(1))?;
    c.diag(format!(
        "zones from {}: EMPTY IMP CLOSED FULL EXP FULL",
        z[0]
    ));
    Ok(())
}

fn report_ready(c: &Ctx) -> Result<usize, Verdict> {
    let li = main_lun(c)?;
    match c.done.get("report_zones.setup") {
        Some(true) => Ok(li),
        _ => Err(Verdict::skip("needs report_zones.setup")),
    }
}

/// REPORT ZONES from `start` with `alloc`, `opt`, `partial` checked
/// against the model: status, header, descriptors.
pub(super) fn check_report(
    c: &mut Ctx,
    li: usize,
    start: u64,
    alloc: u32,
    opt: u8,
    partial: bool,
) -> Step {
    let what = format!(
        "{}: REPORT ZONES start {start} alloc {alloc} option {opt:#04x} partial {}",
        c.luns[li].name,
        u8::from(partial)
    );
    let m = c.luns[li].model.clone();
    let want = m.report(start, opt);
    let (r, buf) = c.report(li, start, alloc, opt, partial)?;
    let zones = match want {
        Err(v) => return check_sense(&r, v, &what),
        Ok(z) => z,
    };
    ensure(r.status == 0, || {
        format!("{what}: {r} sense [{}]", hex(&r.sense_bytes))
    })?;
    let list = Model::zone_list_length(zones.len(), alloc, partial);
    // All the parameter data up to the allocation length; with PARTIAL
    // set the data may end after the descriptors the list length counts.
    let full = (alloc as usize).min(64 + 64 * zones.len());
    let least = if partial {
        (alloc as usize).min(64 + list as usize)
    } else {
        full
    };
    ensure(buf.len() >= least && buf.len() <= full, || {
        format!(
            "{what}: {} bytes transferred, expected {}",
            buf.len(),
            if least == full {
                full.to_string()
            } else {
                format!("{least}..={full}")
            }
        )
    })?;
    let (h, got) = scsi::parse_report(&buf).map_err(|e| bad(format!("{what}: {e}")))?;
    ensure(u64::from(h.list_len) == list, || {
        format!(
            "{what}: ZONE LIST LENGTH {}, expected {list} ({} zones match)",
            h.list_len,
            zones.len()
        )
    })?;
    if buf.len() >= 16 {
        ensure(h.max_lba == m.layout.blocks - 1, || {
            format!(
                "{what}: MAXIMUM LBA {}, expected {}",
                h.max_lba,
                m.layout.blocks - 1
            )
        })?;
    }
    let n = got.len();
    let diff = super::model::diff_zones(&zones[..n.min(zones.len())], &got);
    ensure(diff.is_empty(), || format!("{what}: {}", diff.join("; ")))?;
    scsi::check_same(h.same, &got).map_err(|e| bad(format!("{what}: {e}")))?;
    c.diag(format!(
        "{what}: {n} descriptors, list length {}",
        h.list_len
    ));
    Ok(())
}

pub(super) fn big_alloc(c: &Ctx, li: usize) -> u32 {
    u32::try_from(64 * (c.luns[li].model.zones.len() + 4)).unwrap_or(u32::MAX)
}

fn report_option(c: &mut Ctx, opt: u8) -> Step {
    let li = report_ready(c)?;
    let alloc = big_alloc(c, li);
    check_report(c, li, 0, alloc, opt, false)?;
    // From the second write pointer zone, too.
    let z = c.luns[li].wz(1)?;
    check_report(c, li, z, alloc, opt, false)
}

fn report_partial(c: &mut Ctx, opt: u8, partial: bool) -> Step {
    let li = report_ready(c)?;
    check_report(c, li, 0, 64 + 3 * 64, opt, partial)
}

fn t_partial_filtered(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    for partial in [false, true] {
        check_report(c, li, 0, 64 + 2 * 64, 0x01, partial)?;
        check_report(c, li, 0, 64 + 64, 0x05, partial)?;
    }
    Ok(())
}

fn t_start_mid_zone(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    let alloc = big_alloc(c, li);
    let z1 = c.luns[li].wz(1)?;
    check_report(c, li, z1 + 1, alloc, 0x00, false)?;
    check_report(c, li, z1 + 1, alloc, 0x01, false)?;
    check_report(c, li, z1 + 1, alloc, 0x02, false)?;
    let last = c.luns[li].model.layout.blocks - 1;
    check_report(c, li, last, alloc, 0x00, false)?;
    if let Ok(g) = gap_start(c, li) {
        check_report(c, li, g + 1, alloc, 0x00, false)?;
    }
    Ok(())
}

fn report_alloc(c: &mut Ctx, alloc: u32) -> Step {
    let li = report_ready(c)?;
    check_report(c, li, 0, alloc, 0x00, false)?;
    check_report(c, li, 0, alloc, 0x00, true)
}

fn t_report_bad_option(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    for opt in [0x09, 0x20, 0x3d] {
        check_report(c, li, 0, 4096, opt, false)?;
    }
    c.check_zones(li, "after bad REPORT ZONES")
}

fn t_report_past_end(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    let end = c.luns[li].model.layout.blocks;
    check_report(c, li, end, 4096, 0x00, false)?;
    check_report(c, li, u64::MAX, 4096, 0x01, false)
}

/// Option 11h on a host aware LUN with a non-sequentially written zone.
fn t_report_non_seq(c: &mut Ctx) -> Step {
    let li = c.role(c.roles.aware, "host aware LUN")?;
    let z = c.luns[li].wz(1)?;
    c.fresh(li)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, Op::Write(z + 4 * u, u))?;
    let alloc = big_alloc(c, li);
    check_report(c, li, 0, alloc, 0x11, false)?;
    check_report(c, li, 0, alloc, 0x02, false)
}

// ------------------------------------------------------------------- reads

pub(super) const READS: &[Test] = &[
    ("restricted_empty_zone", t_read_empty),
    ("restricted_below_wp", t_read_below_wp),
    ("restricted_past_wp", t_read_past_wp),
    ("restricted_full_zone", t_read_full),
    ("restricted_boundary", t_read_boundary),
    ("restricted_conventional", t_read_conv),
    ("restricted_gap_zone", t_read_gap_restricted),
    ("unrestricted_past_wp", t_unrestricted_past_wp),
    ("unrestricted_gap_zone", t_unrestricted_gap),
    ("unrestricted_conventional_boundary", t_unrestricted_conv),
    ("cross_type_boundary", t_cross_type),
];

fn restricted(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let li = c.role(c.roles.restricted, "host-managed LUN with URSWRZ 0")?;
    let z = c.luns[li].wz(0)?;
    c.luns[li].wz(1)?;
    c.fresh(li)?;
    Ok((li, z, unit(c, li)))
}

fn t_read_empty(c: &mut Ctx) -> Step {
    let (li, z, _) = restricted(c)?;
    c.err(li, Op::Read(z, 1), Violation::ReadInvalidData)
}

fn t_read_below_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    c.ok(li, Op::Write(z, 2 * u))?;
    c.ok(li, Op::Read(z, 2 * u))?;
    c.ok(li, Op::Read(z + 1, u))
}

fn t_read_past_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    c.ok(li, Op::Write(z, 2 * u))?;
    c.err(li, Op::Read(z + u, 2 * u), Violation::ReadInvalidData)?;
    c.err(li, Op::Read(z + 2 * u, 1), Violation::ReadInvalidData)
}

fn t_read_full(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, zone(Finish, z))?;
    c.ok(li, Op::Read(z, 4 * u))
}

fn t_read_boundary(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    let z1 = c.luns[li].wz(1)?;
    c.ok(li, zone(Finish, z))?;
    c.ok(li, zone(Finish, z1))?;
    c.err(li, Op::Read(z1 - u, 2 * u), Violation::ReadBoundary)
}

fn t_read_conv(c: &mut Ctx) -> Step {
    let (li, _, u) = restricted(c)?;
    if c.luns[li].model.layout.conventional == 0 {
        return Err(Verdict::skip("no conventional zones"));
    }
    c.ok(li, Op::Read(0, 2 * u))
}

fn t_unrestricted_past_wp(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    if !c.luns[li].model.layout.urswrz {
        return Err(Verdict::skip("the main LUN has URSWRZ 0"));
    }
    let u = unit(c, li);
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, Op::Read(z, 4 * u))?;
    c.ok(li, Op::Read(z + 2 * u, u))
}

/// A gap zone on a URSWRZ 0 LUN: ATTEMPT TO ACCESS GAP ZONE (libzbc 363).
fn t_read_gap_restricted(c: &mut Ctx) -> Step {
    let li = c.role(
        c.roles.restricted_gap,
        "host-managed LUN with URSWRZ 0 and gap zones",
    )?;
    let g = gap_start(c, li)?;
    let u = unit(c, li);
    let z = c.luns[li].wz(0)?;
    c.fresh(li)?;
    c.err(li, Op::Read(g, u), Violation::GapZone)?;
    // From a FULL zone into its gap zone.
    c.ok(li, zone(Finish, z))?;
    c.err_any(
        li,
        Op::Read(g - u, 2 * u),
        &[
            Violation::ReadBoundary,
            Violation::ReadInvalidData,
            Violation::GapZone,
        ],
    )
}

/// With URSWRZ 1 a gap zone reads like any other LBA (libzbc 363; Linux
/// drives only URSWRZ 1 disks, whose gap zones it shows as the part of a
/// zone past its capacity, readable).
fn t_unrestricted_gap(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    if !c.luns[li].model.layout.urswrz {
        return Err(Verdict::skip("the main LUN has URSWRZ 0"));
    }
    let g = gap_start(c, li)?;
    c.ok(li, Op::Read(g, unit(c, li)))
}

/// Across two conventional zones: no boundary rule applies (libzbc 065).
fn t_unrestricted_conv(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let lay = c.luns[li].model.layout;
    if lay.conventional < 2 {
        return Err(Verdict::skip("fewer than two conventional zones"));
    }
    let u = unit(c, li);
    c.ok(li, Op::Read(lay.zone_blocks - u, 2 * u))
}

/// From the end of a FULL sequential write required zone into its gap
/// zone: zones of different types, READ BOUNDARY VIOLATION whatever URSWRZ
/// (ZBC-2 4.4.3.4.2, libzbc 062, which also takes ZBC-1's ATTEMPT TO READ
/// INVALID DATA).
fn t_cross_type(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let g = gap_start(c, li)?;
    let u = unit(c, li);
    c.ok(li, zone(Finish, z))?;
    c.err_any(
        li,
        Op::Read(g - u, 2 * u),
        &[Violation::ReadBoundary, Violation::ReadInvalidData],
    )
}

// --------------------------------------------------------------------- swp

pub(super) const SWP: &[Test] = &[
    ("sequential_write", t_swp_seq),
    ("write_not_at_wp", t_swp_random),
    ("write_below_wp", t_swp_below),
    ("write_full_zone", t_swp_full),
    ("reset_clears_non_seq", t_swp_reset),
    ("open_close_finish", t_swp_actions),
];

fn aware(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let li = c.role(c.roles.aware, "host aware LUN")?;
    let z = c.luns[li].wz(0)?;
    c.luns[li].wz(1)?;
    c.fresh(li)?;
    Ok((li, z, unit(c, li)))
}

fn t_swp_seq(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, Op::Write(z + u, 2 * u))
}

fn t_swp_random(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z + 4 * u, u))?;
    c.ok(li, Op::Read(z + 4 * u, u))
}

fn t_swp_below(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z, 2 * u))?;
    c.ok(li, Op::Write(z, u))
}

/// A sequential write preferred zone that is FULL still takes writes
/// (ZBC-2 4.4.3.4): GOOD, data readable; its state after that is left to
/// the device, so it is reset before the zones are compared again.
fn t_swp_full(c: &mut Ctx) -> Step {
    let (li, _, u) = aware(c)?;
    let z1 = c.luns[li].wz(1)?;
    c.ok(li, zone(Finish, z1))?;
    let (r, _) = c.send(li, Op::Write(z1 + u, u))?;
    ensure(r.status == 0, || {
        format!(
            "WRITE(16) into a FULL sequential write preferred zone: {r} sense [{}]",
            hex(&r.sense_bytes)
        )
    })?;
    let (r, check) = c.send(li, Op::Read(z1 + u, u))?;
    ensure(r.status == 0, || format!("READ(16) back: {r}"))?;
    check.map_err(bad)?;
    // The data is verified; the zone is reset and compared.
    c.ok(li, zone(Reset, z1))
}

fn t_swp_reset(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z + 2 * u, u))?;
    c.ok(li, zone(Reset, z))
}

fn t_swp_actions(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    let z1 = c.luns[li].wz(1)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, zone(Close, z))?;
    c.ok(li, Op::Write(z1, u))?;
    c.ok(li, zone(Finish, z1))?;
    c.ok(li, all(Close))?;
    c.ok(li, all(Reset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zbc::model::REPORT_OPTIONS;

    /// Every reporting option the model knows is listed in a test.
    #[test]
    fn every_option_has_a_test() {
        for opt in REPORT_OPTIONS {
            let name = format!("option_{opt:02x}_");
            assert!(REPORT.iter().any(|(n, _)| n.starts_with(&name)), "{name}");
        }
    }
}
