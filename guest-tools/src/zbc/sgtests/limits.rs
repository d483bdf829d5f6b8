//! Open and active zone limits: implicit and explicit opens, eviction, insufficient resources.

use super::*;

pub(crate) const LIMITS: &[Test] = &[
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
pub(super) fn limited(c: &mut Ctx) -> Result<(usize, usize, Option<usize>), Verdict> {
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
pub(super) fn imp_open(c: &mut Ctx, li: usize, n: usize) -> Step {
    let u = unit(c, li);
    for k in 0..n {
        let z = c.luns[li].wz(k)?;
        c.ok(li, Op::Write(z, u))?;
    }
    Ok(())
}

pub(super) fn t_imp_to_max(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    imp_open(c, li, mo)?;
    ensure(c.luns[li].model.open_count() == mo, || {
        "suite bug: open count".into()
    })
}

pub(super) fn t_imp_evicts(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    imp_open(c, li, mo + 1)?;
    ensure(c.last_eviction.is_some(), || {
        "suite bug: the model closed no zone".into()
    })
}

/// Which implicitly opened zone is closed is vendor specific (ZBC-2
/// 4.4.3.2); zonecopy closes the one implicitly opened longest ago (as
/// QEMU's ZNS does): zones opened one after the other, the first goes.
pub(super) fn t_evict_oldest(c: &mut Ctx) -> Step {
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
pub(super) fn at_active_limit(c: &mut Ctx) -> Result<(usize, usize, usize), Verdict> {
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

pub(super) fn t_active_write(c: &mut Ctx) -> Step {
    let (li, _, ma) = at_active_limit(c)?;
    let z = c.luns[li].wz(ma)?;
    c.err(
        li,
        Op::Write(z, unit(c, li)),
        Violation::InsufficientResources,
    )
}

pub(super) fn t_active_open(c: &mut Ctx) -> Step {
    let (li, _, ma) = at_active_limit(c)?;
    let z = c.luns[li].wz(ma)?;
    c.err(li, zone(Open, z), Violation::InsufficientResources)
}

pub(super) fn t_closed_write_reopens(c: &mut Ctx) -> Step {
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
pub(super) fn t_finish_frees(c: &mut Ctx) -> Step {
    let (li, mo, ma) = at_active_limit(c)?;
    let z0 = c.luns[li].wz(0)?;
    let open = c.luns[li].wz(ma - mo)?;
    let zn = c.luns[li].wz(ma)?;
    c.ok(li, zone(Close, open))?;
    c.ok(li, zone(Finish, z0))?;
    c.ok(li, Op::Write(zn, unit(c, li)))
}

pub(super) fn t_explicit_evicts(c: &mut Ctx) -> Step {
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

pub(super) fn all_explicit(c: &mut Ctx) -> Result<(usize, usize), Verdict> {
    let (li, mo, _) = limited(c)?;
    for k in 0..mo {
        let z = c.luns[li].wz(k)?;
        c.ok(li, zone(Open, z))?;
    }
    Ok((li, mo))
}

pub(super) fn t_explicit_insufficient(c: &mut Ctx) -> Step {
    let (li, mo) = all_explicit(c)?;
    let z = c.luns[li].wz(mo)?;
    c.err(li, zone(Open, z), Violation::InsufficientResources)
}

pub(super) fn t_write_insufficient(c: &mut Ctx) -> Step {
    let (li, mo) = all_explicit(c)?;
    let z = c.luns[li].wz(mo)?;
    c.err(
        li,
        Op::Write(z, unit(c, li)),
        Violation::InsufficientResources,
    )
}

pub(super) fn t_close_frees(c: &mut Ctx) -> Step {
    let (li, mo) = all_explicit(c)?;
    let z0 = c.luns[li].wz(0)?;
    let z = c.luns[li].wz(mo)?;
    c.ok(li, zone(Close, z0))?;
    c.ok(li, zone(Open, z))
}

/// `n` CLOSED zones (written, closed one by one).
pub(super) fn closed_zones(c: &mut Ctx, li: usize, n: usize) -> Step {
    let u = unit(c, li);
    for k in 0..n {
        let z = c.luns[li].wz(k)?;
        c.ok(li, Op::Write(z, u))?;
        c.ok(li, zone(Close, z))?;
    }
    Ok(())
}

pub(super) fn t_open_all_insufficient(c: &mut Ctx) -> Step {
    let (li, mo, ma) = limited(c)?;
    if ma.is_some_and(|a| a <= mo) {
        return Err(Verdict::skip(
            "max active does not allow max open + 1 closed zones",
        ));
    }
    closed_zones(c, li, mo + 1)?;
    c.err(li, all(Open), Violation::InsufficientResources)
}

pub(super) fn t_open_all_fits(c: &mut Ctx) -> Step {
    let (li, mo, _) = limited(c)?;
    closed_zones(c, li, mo)?;
    c.ok(li, all(Open))
}

/// Zone capacity below the zone size: FULL at the capacity; a write past
/// it crosses into the gap zone.
pub(super) fn t_capacity(c: &mut Ctx) -> Step {
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
