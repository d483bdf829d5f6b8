//! REPORT ZONES: options, partial reports, allocation lengths, against the model.

use super::*;

pub(crate) const REPORT: &[Test] = &[
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

pub(super) fn t_report_setup(c: &mut Ctx) -> Step {
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

pub(super) fn report_ready(c: &Ctx) -> Result<usize, Verdict> {
    let li = main_lun(c)?;
    match c.done.get("report_zones.setup") {
        Some(true) => Ok(li),
        _ => Err(Verdict::skip("needs report_zones.setup")),
    }
}

/// REPORT ZONES from `start` with `alloc`, `opt`, `partial` checked
/// against the model: status, header, descriptors.
pub(crate) fn check_report(
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
    let diff = crate::zbc::model::diff_zones(&zones[..n.min(zones.len())], &got);
    ensure(diff.is_empty(), || format!("{what}: {}", diff.join("; ")))?;
    scsi::check_same(h.same, &got).map_err(|e| bad(format!("{what}: {e}")))?;
    c.diag(format!(
        "{what}: {n} descriptors, list length {}",
        h.list_len
    ));
    Ok(())
}

pub(crate) fn big_alloc(c: &Ctx, li: usize) -> u32 {
    u32::try_from(64 * (c.luns[li].model.zones.len() + 4)).unwrap_or(u32::MAX)
}

pub(super) fn report_option(c: &mut Ctx, opt: u8) -> Step {
    let li = report_ready(c)?;
    let alloc = big_alloc(c, li);
    check_report(c, li, 0, alloc, opt, false)?;
    // From the second write pointer zone, too.
    let z = c.luns[li].wz(1)?;
    check_report(c, li, z, alloc, opt, false)
}

pub(super) fn report_partial(c: &mut Ctx, opt: u8, partial: bool) -> Step {
    let li = report_ready(c)?;
    check_report(c, li, 0, 64 + 3 * 64, opt, partial)
}

pub(super) fn t_partial_filtered(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    for partial in [false, true] {
        check_report(c, li, 0, 64 + 2 * 64, 0x01, partial)?;
        check_report(c, li, 0, 64 + 64, 0x05, partial)?;
    }
    Ok(())
}

pub(super) fn t_start_mid_zone(c: &mut Ctx) -> Step {
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

pub(super) fn report_alloc(c: &mut Ctx, alloc: u32) -> Step {
    let li = report_ready(c)?;
    check_report(c, li, 0, alloc, 0x00, false)?;
    check_report(c, li, 0, alloc, 0x00, true)
}

pub(super) fn t_report_bad_option(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    for opt in [0x09, 0x20, 0x3d] {
        check_report(c, li, 0, 4096, opt, false)?;
    }
    c.check_zones(li, "after bad REPORT ZONES")
}

pub(super) fn t_report_past_end(c: &mut Ctx) -> Step {
    let li = report_ready(c)?;
    let end = c.luns[li].model.layout.blocks;
    check_report(c, li, end, 4096, 0x00, false)?;
    check_report(c, li, u64::MAX, 4096, 0x01, false)
}

/// Option 11h on a host aware LUN with a non-sequentially written zone.
pub(super) fn t_report_non_seq(c: &mut Ctx) -> Step {
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
