//! Writes and zone IDs that must fail, with the sense ZBC-2 names.

use super::*;

pub(crate) const VIOLATIONS: &[Test] = &[
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

pub(super) fn written_zone(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let (li, z) = fresh_zone(c, 0)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, 2 * u))?;
    Ok((li, z, u))
}

pub(super) fn t_write_above_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = written_zone(c)?;
    c.err(li, Op::Write(z + 3 * u, u), Violation::UnalignedWrite)?;
    c.err(li, Op::Write(z + 2 * u + 1, 1), Violation::UnalignedWrite)
}

pub(super) fn t_write_below_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = written_zone(c)?;
    c.err(li, Op::Write(z, u), Violation::UnalignedWrite)?;
    // Starting below and ending past the write pointer.
    c.err(li, Op::Write(z + u, 2 * u), Violation::UnalignedWrite)
}

pub(super) fn t_write_empty_off_start(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 1)?;
    let u = unit(c, li);
    c.err(li, Op::Write(z + u, u), Violation::UnalignedWrite)
}

/// A write at the write pointer that does not fit: WRITE BOUNDARY
/// VIOLATION, whether the next zone is a gap zone or a sequential one.
pub(super) fn t_write_boundary(c: &mut Ctx) -> Step {
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

pub(super) fn t_write_full(c: &mut Ctx) -> Step {
    let (li, z, u) = written_zone(c)?;
    c.ok(li, zone(Finish, z))?;
    let full = Violation::InvalidField(Field::Any);
    c.err(li, Op::Write(z, u), full)?;
    c.err(li, Op::Write(z + 2 * u, u), full)
}

pub(super) fn gap_start(c: &Ctx, li: usize) -> Result<u64, Verdict> {
    c.luns[li]
        .model
        .zones
        .iter()
        .find(|z| z.ztype == crate::zbc::model::ZoneType::Gap)
        .map(|z| z.start)
        .ok_or_else(|| {
            Verdict::skip(format!(
                "{} has no gap zones (capacity = zone size)",
                c.luns[li].name
            ))
        })
}

pub(super) fn t_write_gap(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let g = gap_start(c, li)?;
    c.fresh(li)?;
    c.err(li, Op::Write(g, unit(c, li)), Violation::GapZone)
}

pub(super) fn t_write_past_end(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let end = c.luns[li].model.layout.blocks;
    c.err(li, Op::Write(end - 1, 2), Violation::LbaOutOfRange)?;
    c.err(li, Op::Write(end, 1), Violation::LbaOutOfRange)
}

pub(super) fn t_read_past_end(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let end = c.luns[li].model.layout.blocks;
    c.err(li, Op::Read(end - 1, 2), Violation::LbaOutOfRange)
}

pub(super) const ACTIONS: [Action; 4] = [Open, Close, Finish, Reset];

/// INVALID FIELD IN CDB pointing at the ZONE ID field (byte 2, its most
/// significant bit 7).
pub(super) const ZONE_ID: Violation = Violation::InvalidField(Field::Cdb(2, Some(7)));

pub(super) fn zone_id_field(c: &mut Ctx, li: usize, id: u64) -> Step {
    for a in ACTIONS {
        c.err(li, zone(a, id), ZONE_ID)?;
    }
    Ok(())
}

pub(super) fn t_zone_id_mid(c: &mut Ctx) -> Step {
    let (li, z, _) = written_zone(c)?;
    zone_id_field(c, li, z + 1)
}

pub(super) fn t_zone_id_conv(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    if c.luns[li].model.layout.conventional == 0 {
        return Err(Verdict::skip("no conventional zones"));
    }
    zone_id_field(c, li, 0)
}

/// A zone action on a gap zone: ATTEMPT TO ACCESS GAP ZONE (ZBC-2; as
/// libzbc's tests 323/333/343/353 expect); inside one: not a zone start.
pub(super) fn t_zone_id_gap(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let g = gap_start(c, li)?;
    for a in ACTIONS {
        c.err(li, zone(a, g), Violation::GapZone)?;
    }
    zone_id_field(c, li, g + 1)
}

pub(super) fn t_zone_id_past_end(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let end = c.luns[li].model.layout.blocks;
    for a in ACTIONS {
        c.err(li, zone(a, end), Violation::LbaOutOfRange)?;
        c.err(li, zone(a, u64::MAX), Violation::LbaOutOfRange)?;
    }
    Ok(())
}

/// With ALL set the ZONE ID field is ignored (ZBC-2 5.2-5.5).
pub(super) fn t_all_ignores_id(c: &mut Ctx) -> Step {
    let (li, _, _) = written_zone(c)?;
    let bogus = c.luns[li].model.layout.blocks + 7;
    for a in [Close, Open, Finish, Reset] {
        c.ok(li, Op::Zone(a, bogus, 0, true))?;
    }
    Ok(())
}
