//! Zone conditions: every transition of ZBC-2 4.4.3, and zone counts of ZBC OUT.

use super::*;

pub(crate) const TRANSITIONS: &[Test] = &[
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
pub(super) fn fresh_zone(c: &mut Ctx, k: usize) -> Result<(usize, u64), Verdict> {
    let li = main_lun(c)?;
    let z = c.luns[li].wz(k)?;
    c.fresh(li)?;
    Ok((li, z))
}

pub(super) fn t_empty_open(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))
}

pub(super) fn t_exp_close_empty(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, zone(Close, z))
}

pub(super) fn t_empty_write(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, Op::Write(z + u, 2 * u))
}

pub(super) fn t_imp_open(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Open, z))
}

pub(super) fn t_exp_write(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, Op::Write(z, unit(c, li)))
}

pub(super) fn t_exp_close(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Open, z))?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Close, z))
}

pub(super) fn t_imp_close(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Close, z))
}

pub(super) fn closed_zone(c: &mut Ctx) -> Result<(usize, u64), Verdict> {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Close, z))?;
    Ok((li, z))
}

pub(super) fn t_closed_write(c: &mut Ctx) -> Step {
    let (li, z) = closed_zone(c)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z + u, u))
}

pub(super) fn t_closed_open(c: &mut Ctx) -> Step {
    let (li, z) = closed_zone(c)?;
    c.ok(li, zone(Open, z))
}

pub(super) fn t_closed_close(c: &mut Ctx) -> Step {
    let (li, z) = closed_zone(c)?;
    c.ok(li, zone(Close, z))
}

pub(super) fn t_empty_close_reset(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, zone(Close, z))?;
    c.ok(li, zone(Reset, z))
}

/// Four zones EMPTY, IMPLICITLY OPENED, EXPLICITLY OPENED, CLOSED.
pub(super) fn four_states(c: &mut Ctx) -> Result<(usize, [u64; 4]), Verdict> {
    let (li, z0) = fresh_zone(c, 0)?;
    let z = [z0, c.luns[li].wz(1)?, c.luns[li].wz(2)?, c.luns[li].wz(3)?];
    let u = unit(c, li);
    c.ok(li, Op::Write(z[1], u))?;
    c.ok(li, zone(Open, z[2]))?;
    c.ok(li, Op::Write(z[3], u))?;
    c.ok(li, zone(Close, z[3]))?;
    Ok((li, z))
}

pub(super) fn t_finish_each(c: &mut Ctx) -> Step {
    let (li, z) = four_states(c)?;
    for z in z {
        c.ok(li, zone(Finish, z))?;
    }
    Ok(())
}

pub(super) fn t_full_no_change(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    c.ok(li, Op::Write(z, unit(c, li)))?;
    c.ok(li, zone(Finish, z))?;
    for a in [Open, Close, Finish] {
        c.ok(li, zone(a, z))?;
    }
    Ok(())
}

pub(super) fn t_reset_each(c: &mut Ctx) -> Step {
    let (li, z) = four_states(c)?;
    c.ok(li, zone(Finish, z[0]))?;
    for z in z {
        c.ok(li, zone(Reset, z))?;
    }
    Ok(())
}

pub(super) fn t_write_to_capacity(c: &mut Ctx) -> Step {
    let (li, z) = fresh_zone(c, 0)?;
    let cap = c.luns[li].cap();
    let piece = (cap / 4).max(unit(c, li));
    fill(c, li, z, cap, piece)
}

/// EMPTY, IMPLICITLY OPENED, CLOSED, FULL, EXPLICITLY OPENED (written).
pub(crate) fn five_states(c: &mut Ctx) -> Result<(usize, [u64; 5]), Verdict> {
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

pub(super) fn t_open_all(c: &mut Ctx) -> Step {
    let (li, _) = five_states(c)?;
    c.ok(li, all(Open))
}

pub(super) fn t_close_all(c: &mut Ctx) -> Step {
    let (li, z) = five_states(c)?;
    // And an explicitly opened zone with nothing written: EMPTY again.
    c.ok(li, zone(Open, z[0]))?;
    c.ok(li, all(Close))
}

pub(super) fn t_finish_all(c: &mut Ctx) -> Step {
    let (li, _) = five_states(c)?;
    c.ok(li, all(Finish))
}

pub(super) fn t_reset_all(c: &mut Ctx) -> Step {
    let (li, _) = five_states(c)?;
    c.ok(li, all(Reset))
}

// -------------------------------------------------------------- zone count

pub(crate) const ZONE_COUNT: &[Test] = &[
    ("count_zero_and_one", t_count_one),
    ("count_open", t_count_open),
    ("count_close", t_count_close),
    ("count_finish", t_count_finish),
    ("count_reset", t_count_reset),
    ("count_past_last_zone", t_count_past_last),
];

pub(super) fn counted(c: &mut Ctx) -> Result<(usize, u64), Verdict> {
    let li = c.role(
        c.roles.counted,
        "host-managed LUN without gap zones whose RSOC shows ZONE COUNT",
    )?;
    let z = c.luns[li].wz(0)?;
    c.luns[li].wz(3)?;
    c.fresh(li)?;
    Ok((li, z))
}

pub(super) fn t_count_one(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    c.ok(li, Op::Zone(Open, z, 1, false))?;
    c.ok(li, Op::Zone(Finish, z, 0, false))?;
    c.ok(li, Op::Zone(Reset, z, 1, false))
}

pub(super) fn t_count_open(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    c.ok(li, Op::Zone(Open, z, 3, false))
}

pub(super) fn t_count_close(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    let u = unit(c, li);
    let z1 = c.luns[li].wz(1)?;
    c.ok(li, Op::Write(z, u))?;
    c.ok(li, zone(Open, z1))?;
    c.ok(li, Op::Zone(Close, z, 3, false))
}

pub(super) fn t_count_finish(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    let u = unit(c, li);
    let z2 = c.luns[li].wz(2)?;
    c.ok(li, Op::Write(z2, u))?;
    c.ok(li, Op::Zone(Finish, z, 4, false))
}

pub(super) fn t_count_reset(c: &mut Ctx) -> Step {
    let (li, z) = counted(c)?;
    c.ok(li, Op::Zone(Finish, z, 3, false))?;
    c.ok(li, Op::Write(c.luns[li].wz(3)?, unit(c, li)))?;
    c.ok(li, Op::Zone(Reset, z, 4, false))
}

/// ZONE COUNT running past the last zone: ILLEGAL REQUEST, nothing done.
/// ZBC-2 names INVALID FIELD IN CDB; LOGICAL BLOCK ADDRESS OUT OF RANGE
/// (the end of the range) is accepted too.
pub(super) fn t_count_past_last(c: &mut Ctx) -> Step {
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
