//! Reads against the write pointer, restricted and not; sequential write preferred zones.

use super::*;

pub(crate) const READS: &[Test] = &[
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

pub(super) fn restricted(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let li = c.role(c.roles.restricted, "host-managed LUN with URSWRZ 0")?;
    let z = c.luns[li].wz(0)?;
    c.luns[li].wz(1)?;
    c.fresh(li)?;
    Ok((li, z, unit(c, li)))
}

pub(super) fn t_read_empty(c: &mut Ctx) -> Step {
    let (li, z, _) = restricted(c)?;
    c.err(li, Op::Read(z, 1), Violation::ReadInvalidData)
}

pub(super) fn t_read_below_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    c.ok(li, Op::Write(z, 2 * u))?;
    c.ok(li, Op::Read(z, 2 * u))?;
    c.ok(li, Op::Read(z + 1, u))
}

pub(super) fn t_read_past_wp(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    c.ok(li, Op::Write(z, 2 * u))?;
    c.err(li, Op::Read(z + u, 2 * u), Violation::ReadInvalidData)?;
    c.err(li, Op::Read(z + 2 * u, 1), Violation::ReadInvalidData)
}

pub(super) fn t_read_full(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, zone(Finish, z))?;
    c.ok(li, Op::Read(z, 4 * u))
}

pub(super) fn t_read_boundary(c: &mut Ctx) -> Step {
    let (li, z, u) = restricted(c)?;
    let z1 = c.luns[li].wz(1)?;
    c.ok(li, zone(Finish, z))?;
    c.ok(li, zone(Finish, z1))?;
    c.err(li, Op::Read(z1 - u, 2 * u), Violation::ReadBoundary)
}

pub(super) fn t_read_conv(c: &mut Ctx) -> Step {
    let (li, _, u) = restricted(c)?;
    if c.luns[li].model.layout.conventional == 0 {
        return Err(Verdict::skip("no conventional zones"));
    }
    c.ok(li, Op::Read(0, 2 * u))
}

pub(super) fn t_unrestricted_past_wp(c: &mut Ctx) -> Step {
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
pub(super) fn t_read_gap_restricted(c: &mut Ctx) -> Step {
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
pub(super) fn t_unrestricted_gap(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    if !c.luns[li].model.layout.urswrz {
        return Err(Verdict::skip("the main LUN has URSWRZ 0"));
    }
    let g = gap_start(c, li)?;
    c.ok(li, Op::Read(g, unit(c, li)))
}

/// Across two conventional zones: no boundary rule applies (libzbc 065).
pub(super) fn t_unrestricted_conv(c: &mut Ctx) -> Step {
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
pub(super) fn t_cross_type(c: &mut Ctx) -> Step {
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

pub(crate) const SWP: &[Test] = &[
    ("sequential_write", t_swp_seq),
    ("write_not_at_wp", t_swp_random),
    ("write_below_wp", t_swp_below),
    ("write_full_zone", t_swp_full),
    ("reset_clears_non_seq", t_swp_reset),
    ("open_close_finish", t_swp_actions),
];

pub(super) fn aware(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let li = c.role(c.roles.aware, "host aware LUN")?;
    let z = c.luns[li].wz(0)?;
    c.luns[li].wz(1)?;
    c.fresh(li)?;
    Ok((li, z, unit(c, li)))
}

pub(super) fn t_swp_seq(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, Op::Write(z + u, 2 * u))
}

pub(super) fn t_swp_random(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z + 4 * u, u))?;
    c.ok(li, Op::Read(z + 4 * u, u))
}

pub(super) fn t_swp_below(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z, 2 * u))?;
    c.ok(li, Op::Write(z, u))
}

/// A sequential write preferred zone that is FULL still takes writes
/// (ZBC-2 4.4.3.4): GOOD, data readable; its state after that is left to
/// the device, so it is reset before the zones are compared again.
pub(super) fn t_swp_full(c: &mut Ctx) -> Step {
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

pub(super) fn t_swp_reset(c: &mut Ctx) -> Step {
    let (li, z, u) = aware(c)?;
    c.ok(li, Op::Write(z + 2 * u, u))?;
    c.ok(li, zone(Reset, z))
}

pub(super) fn t_swp_actions(c: &mut Ctx) -> Step {
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
