//! The kernel's zone ioctls on a zone range of their own, the host tools
//! cross-checks, READ ONLY and OFFLINE zones set through the control
//! socket, and the final read-back of every stamped block.

use super::{
    bad, kernel_range, kernel_zones,
    model::{self, Action, Cond, Violation},
    sgtests::{all, big_alloc, check_report, five_states, main_lun, unit, zone},
    tools, zone_op, Ctx, Op, Test,
};
use crate::{
    blkzoned as bz, blockio, hosttool,
    ktap::{ensure, fail, Step, Verdict},
};

use Action::{Close, Finish, Open, Reset};

/// The kernel's zones: write pointer zones from this index (the SG_IO
/// areas use the ones below).
const KBASE: usize = 14;
/// fio's zones.
const FBASE: usize = 20;
// SG_IO areas use write pointer zones 0..KBASE (up to 9), the kernel
// KBASE..KBASE+6, fio FBASE..FBASE+4, the conditions area the last two.
const _: () = assert!(KBASE >= 9 && KBASE + 6 <= FBASE);

/// The main LUN if the kernel drives it as a host-managed zoned disk.
fn kernel_lun(c: &Ctx) -> Result<usize, Verdict> {
    let li = main_lun(c)?;
    let l = &c.luns[li];
    if !l.kernel_zoned {
        return Err(Verdict::skip(format!(
            "the kernel does not drive {} as a host-managed zoned disk (queue/zoned {}, {} sectors)",
            l.name, l.disk.zoned, l.disk.sectors
        )));
    }
    l.wz(FBASE + 3)?;
    Ok(li)
}

/// Compare the kernel's BLKREPORTZONE with the model's kernel view.
fn check_kernel(c: &mut Ctx, li: usize, what: &str) -> Step {
    let (got, cap) = kernel_zones(&c.luns[li])?;
    let want = c.luns[li].model.kernel_view();
    let diff = model::diff_kernel(&want, &got, cap);
    ensure(cap, || {
        format!("{what}: BLKREPORTZONE without BLK_ZONE_REP_CAPACITY")
    })?;
    ensure(diff.is_empty(), || {
        format!(
            "{what}: BLKREPORTZONE differs from the model: {}",
            diff.iter().take(4).cloned().collect::<Vec<_>>().join("; ")
        )
    })
}

fn check_both(c: &mut Ctx, li: usize, what: &str) -> Step {
    c.check_zones(li, what)?;
    check_kernel(c, li, what)
}

/// A zone management ioctl on `zones` kernel zones from the one at `lba`;
/// the model applies the action to each zone in turn, as the kernel sends
/// one command per zone.
fn kop(c: &mut Ctx, li: usize, a: Action, lba: u64, zones: u64) -> Step {
    let zb = c.luns[li].model.layout.zone_blocks;
    for k in 0..zones {
        let r = c.luns[li].model.zone_action(a, lba + k * zb, 0, false);
        ensure(r.is_ok(), || {
            format!("suite bug: {} at {lba}: {r:?}", a.name())
        })?;
    }
    let (sector, nr) = kernel_range(&c.luns[li], lba, zones);
    let op = zone_op(a);
    let what = format!("{}: {} sector {sector} +{nr}", c.luns[li].name, op.name());
    c.diag(what.clone());
    bz::zone_mgmt(&c.luns[li].file, op, sector, nr).map_err(fail(&what))?;
    c.prune(li);
    check_both(c, li, &what)
}

/// BLKRESETZONE of the whole device (REQ_OP_ZONE_RESET_ALL).
fn kreset_all(c: &mut Ctx, li: usize) -> Step {
    c.luns[li]
        .model
        .zone_action(Reset, 0, 0, true)
        .map_err(|v| bad(format!("suite bug: reset all: {v}")))?;
    let sectors = c.luns[li].disk.sectors;
    let what = format!("{}: BLKRESETZONE 0 +{sectors}", c.luns[li].name);
    c.diag(what.clone());
    bz::zone_mgmt(&c.luns[li].file, bz::ZoneOp::Reset, 0, sectors).map_err(fail(&what))?;
    c.prune(li);
    check_both(c, li, &what)
}

/// An O_DIRECT pwrite of `n` stamped blocks at `lba` (4 KiB aligned),
/// `per` 4 KiB blocks per call.
fn kwrite(c: &mut Ctx, li: usize, lba: u64, n: u64, per: u64) -> Step {
    let bs = c.luns[li].bs();
    let byte = lba * bs;
    ensure(
        byte.is_multiple_of(4096) && (n * bs).is_multiple_of(4096),
        || format!("suite bug: kernel write at lba {lba} +{n} not 4 KiB aligned"),
    )?;
    let r = c.luns[li].model.write(lba, n);
    ensure(r.is_ok(), || format!("suite bug: write {lba} +{n}: {r:?}"))?;
    let nb = n * bs / 4096;
    let gen = c.next_gen();
    let what = format!(
        "{}: pwrite O_DIRECT byte {byte} +{}",
        c.luns[li].name,
        n * bs
    );
    c.diag(what.clone());
    blockio::write_stamped(&c.luns[li].file, byte, nb, gen, per).map_err(fail(&what))?;
    for b in byte / 4096..byte / 4096 + nb {
        c.luns[li].written.insert(b, gen);
        c.fresh.push((li, b));
    }
    check_both(c, li, &what)
}

/// The kernel range's first zones reset (BLKRESETZONE over 6 zones).
fn kfresh(c: &mut Ctx) -> Result<(usize, [u64; 6]), Verdict> {
    let li = kernel_lun(c)?;
    let l = &c.luns[li];
    let k = [
        l.wz(KBASE)?,
        l.wz(KBASE + 1)?,
        l.wz(KBASE + 2)?,
        l.wz(KBASE + 3)?,
        l.wz(KBASE + 4)?,
        l.wz(KBASE + 5)?,
    ];
    kop(c, li, Reset, k[0], 6)?;
    Ok((li, k))
}

pub(super) const KERNEL: &[Test] = &[
    ("report_matches_model", t_k_report),
    ("reset_all", t_k_reset_all),
    ("write", t_k_write),
    ("open", t_k_open),
    ("close", t_k_close),
    ("write_closed", t_k_write_closed),
    ("finish", t_k_finish),
    ("reset", t_k_reset),
    ("zone_ranges", t_k_ranges),
    ("fill_to_capacity", t_k_fill),
    ("read_back", t_k_read_back),
];

fn t_k_report(c: &mut Ctx) -> Step {
    let li = kernel_lun(c)?;
    check_both(c, li, "state left by the SG_IO areas")
}

fn t_k_reset_all(c: &mut Ctx) -> Step {
    let li = kernel_lun(c)?;
    kreset_all(c, li)
}

fn t_k_write(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    let u = unit(c, li);
    kwrite(c, li, k[0], 2 * u, 1)?;
    kwrite(c, li, k[0] + 2 * u, 4 * u, 4)
}

fn t_k_open(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    kwrite(c, li, k[0], unit(c, li), 1)?;
    kop(c, li, Open, k[0], 1)?;
    kop(c, li, Open, k[1], 1)
}

fn t_k_close(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    kwrite(c, li, k[0], unit(c, li), 1)?;
    kop(c, li, Open, k[1], 1)?;
    kop(c, li, Close, k[0], 1)?;
    kop(c, li, Close, k[1], 1)
}

fn t_k_write_closed(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    let u = unit(c, li);
    kwrite(c, li, k[0], u, 1)?;
    kop(c, li, Close, k[0], 1)?;
    kwrite(c, li, k[0] + u, u, 1)
}

fn t_k_finish(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    kwrite(c, li, k[0], unit(c, li), 1)?;
    kop(c, li, Finish, k[0], 1)?;
    kop(c, li, Finish, k[1], 1)
}

fn t_k_reset(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    kwrite(c, li, k[0], unit(c, li), 1)?;
    kop(c, li, Reset, k[0], 1)?;
    kop(c, li, Finish, k[1], 1)?;
    kop(c, li, Reset, k[1], 1)
}

fn t_k_ranges(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    kop(c, li, Open, k[2], 3)?;
    kop(c, li, Close, k[2], 3)?;
    kop(c, li, Finish, k[2], 3)?;
    kop(c, li, Reset, k[2], 3)
}

fn t_k_fill(c: &mut Ctx) -> Step {
    let (li, k) = kfresh(c)?;
    let cap = c.luns[li].cap();
    let u = unit(c, li);
    let piece = (cap / 4 / u).max(1) * u;
    let mut at = k[5];
    while at < k[5] + cap {
        let n = piece.min(k[5] + cap - at);
        kwrite(c, li, at, n, 8)?;
        at += n;
    }
    Ok(())
}

/// Every stamped block of the kernel's zones, read back through the
/// kernel (O_DIRECT).
fn t_k_read_back(c: &mut Ctx) -> Step {
    let li = kernel_lun(c)?;
    let l = &c.luns[li];
    let lo = l.wz(KBASE)? * l.bs() / 4096;
    let hi = l.wz(FBASE)? * l.bs() / 4096;
    let blocks: Vec<(u64, u64)> = l.written.range(lo..hi).map(|(&b, &g)| (b, g)).collect();
    if blocks.is_empty() {
        return Err(bad(
            "no stamped block left in the kernel's zones (fill_to_capacity leaves some)",
        ));
    }
    for (b, g) in &blocks {
        blockio::read_verify(&l.file, b * 4096, 1, *g).map_err(bad)?;
    }
    c.diag(format!(
        "{} stamped blocks read back through the kernel",
        blocks.len()
    ));
    Ok(())
}

// ------------------------------------------------------------------- tools

pub(super) const TOOLS: &[Test] = &[
    ("blkzone_report", t_blkzone),
    ("sg_rep_zones", t_sg_rep_zones),
    ("sg_zone_sg_reset_wp", t_sg_zone),
    ("fio_zbd_verify", t_fio),
];

fn tool_ready(tool: &str) -> Step {
    match hosttool::missing(tool) {
        Some(why) => Err(Verdict::skip(why)),
        None => Ok(()),
    }
}

fn dev_path(c: &Ctx, li: usize) -> String {
    c.luns[li].disk.dev_path().display().to_string()
}

fn t_blkzone(c: &mut Ctx) -> Step {
    tool_ready("blkzone")?;
    let li = kernel_lun(c)?;
    kreset_all(c, li)?;
    five_states(c)?;
    let dev = dev_path(c, li);
    let out = hosttool::run("blkzone", &["report", &dev]).map_err(bad)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (got, cap) = tools::parse_blkzone(&text).map_err(bad)?;
    let want = c.luns[li].model.kernel_view();
    let diff = model::diff_kernel(&want, &got, cap);
    c.diag(format!(
        "blkzone report: {} zones, capacities {cap}",
        got.len()
    ));
    ensure(cap, || "blkzone report printed no zone capacities".into())?;
    ensure(diff.is_empty(), || {
        format!(
            "blkzone report differs from the model: {}",
            diff.iter().take(4).cloned().collect::<Vec<_>>().join("; ")
        )
    })
}

fn t_sg_rep_zones(c: &mut Ctx) -> Step {
    tool_ready("sg_rep_zones")?;
    let (li, _) = five_states(c)?;
    let dev = dev_path(c, li);
    let out = hosttool::run("sg_rep_zones", &[&dev]).map_err(bad)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (max_lba, got) = tools::parse_sg_rep_zones(&text).map_err(bad)?;
    let m = &c.luns[li].model;
    ensure(max_lba + 1 == m.layout.blocks, || {
        format!(
            "sg_rep_zones: Maximum LBA {max_lba}, expected {}",
            m.layout.blocks - 1
        )
    })?;
    let diff = model::diff_zones(&m.zones, &got);
    c.diag(format!("sg_rep_zones: {} descriptors", got.len()));
    ensure(diff.is_empty(), || {
        format!(
            "sg_rep_zones differs from the model: {}",
            diff.iter().take(4).cloned().collect::<Vec<_>>().join("; ")
        )
    })
}

/// Run an sg3_utils zone tool; the model applies the action; GOOD must
/// be exit status 0, ILLEGAL REQUEST exit status 5 (SG_LIB_CAT_ILLEGAL_REQ).
fn sg_tool(
    c: &mut Ctx,
    li: usize,
    tool: &str,
    args: &[String],
    a: Action,
    id: u64,
    all_: bool,
) -> Step {
    let want = c.luns[li].model.zone_action(a, id, 0, all_);
    let dev = dev_path(c, li);
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.push(&dev);
    let out = hosttool::command(tool)
        .args(&argv)
        .output()
        .map_err(|e| bad(format!("{tool}: cannot run: {e}")))?;
    let what = format!("{tool} {}", argv.join(" "));
    let code = out.status.code();
    c.diag(format!("{what}: exit {code:?}, model {want:?}"));
    let expect = match want {
        Ok(()) => 0,
        Err(v) if v.key_asc_ascq().0 == model::ILLEGAL_REQUEST => 5,
        Err(v) => return Err(bad(format!("suite bug: {what}: {v}"))),
    };
    ensure(code == Some(expect), || {
        format!(
            "{what}: exit status {code:?}, expected {expect}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    c.prune(li);
    c.check_zones(li, &what)
}

fn t_sg_zone(c: &mut Ctx) -> Step {
    tool_ready("sg_zone")?;
    tool_ready("sg_reset_wp")?;
    let li = main_lun(c)?;
    let z = c.luns[li].wz(0)?;
    c.fresh(li)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, u))?;
    let zid = format!("--zone={z}");
    for (tool, flag, a) in [
        ("sg_zone", "--open", Open),
        ("sg_zone", "--close", Close),
        ("sg_zone", "--finish", Finish),
        ("sg_reset_wp", "", Reset),
    ] {
        let mut args = vec![zid.clone()];
        if !flag.is_empty() {
            args.insert(0, flag.to_string());
        }
        sg_tool(c, li, tool, &args, a, z, false)?;
    }
    c.ok(li, Op::Write(z, u))?;
    sg_tool(
        c,
        li,
        "sg_zone",
        &["--close".into(), "--all".into()],
        Close,
        0,
        true,
    )?;
    sg_tool(c, li, "sg_reset_wp", &["--all".into()], Reset, 0, true)?;
    // A ZONE ID inside a zone: ILLEGAL REQUEST, nothing changes.
    sg_tool(
        c,
        li,
        "sg_zone",
        &["--open".into(), format!("--zone={}", z + 1)],
        Open,
        z + 1,
        false,
    )
}

/// fio in zoned mode: a sequential write with CRC32C verify of two and a
/// half zone capacities over four zones; the write pointers end where the
/// model says.
fn t_fio(c: &mut Ctx) -> Step {
    tool_ready("fio")?;
    let li = kernel_lun(c)?;
    kreset_all(c, li)?;
    let l = &c.luns[li];
    let bs = l.bs();
    let f = [l.wz(FBASE)?, l.wz(FBASE + 1)?, l.wz(FBASE + 2)?];
    let cap = l.cap();
    let zb = l.model.layout.zone_blocks;
    let half = cap / 2;
    let fio_bs = if (half * bs).is_multiple_of(65536) {
        65536
    } else {
        4096
    };
    ensure((half * bs).is_multiple_of(fio_bs), || {
        format!(
            "zone capacity {} bytes does not halve into fio blocks",
            cap * bs
        )
    })?;
    let args = tools::fio_args(
        &dev_path(c, li),
        f[0] * bs,
        4 * zb * bs,
        (2 * cap + half) * bs,
        fio_bs,
    );
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    c.diag(format!("fio {}", argv.join(" ")));
    let out = hosttool::run("fio", &argv).map_err(bad)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if let Some(l) = text.lines().find(|l| l.contains("err=")) {
        c.diag(l.trim().to_string());
    }
    for (z, n) in [(f[0], cap), (f[1], cap), (f[2], half)] {
        let r = c.luns[li].model.write(z, n);
        ensure(r.is_ok(), || {
            format!("suite bug: model write {z} +{n}: {r:?}")
        })?;
    }
    check_both(c, li, "after fio")
}

// -------------------------------------------------------------- conditions

pub(super) const CONDITIONS: &[Test] = &[
    ("read_only", t_read_only),
    ("read_only_write", t_ro_write),
    ("read_only_read", t_ro_read),
    ("offline", t_offline),
    ("offline_write", t_off_write),
    ("offline_read", t_off_read),
    ("all_leaves_them", t_all_leaves),
    ("report_options_06_07", t_cond_report),
    ("kernel_view", t_cond_kernel),
];

/// The main LUN's zones made READ ONLY and OFFLINE: the last two write
/// pointer zones.
fn cond_zones(c: &mut Ctx) -> Result<(usize, u64, u64), Verdict> {
    let li = main_lun(c)?;
    c.ctl()?;
    let n = c.luns[li].model.wp_zones().len();
    if n < FBASE + 6 {
        return Err(Verdict::skip(format!(
            "{} has {n} write pointer zones, the test needs {}",
            c.luns[li].name,
            FBASE + 6
        )));
    }
    Ok((li, c.luns[li].wz(n - 2)?, c.luns[li].wz(n - 1)?))
}

fn cond_ready(c: &Ctx, li: usize, lba: u64, cond: Cond) -> Step {
    let z = c.luns[li]
        .model
        .zone_at(lba)
        .ok_or_else(|| bad("no zone"))?;
    if z.cond != cond {
        return Err(Verdict::skip(format!(
            "zone {lba} is not {} (needs the test that makes it so)",
            model::cond_name(cond.code())
        )));
    }
    Ok(())
}

/// Make the zone at `lba` READ ONLY or OFFLINE through the control socket.
fn set_cond(c: &mut Ctx, li: usize, lba: u64, cond: Cond) -> Step {
    let name = c.luns[li].name.clone();
    let word = if cond == Cond::ReadOnly {
        "read_only"
    } else {
        "offline"
    };
    let got = c
        .ctl()?
        .zone_condition(&name, lba, word)
        .map_err(|e| bad(format!("control zone_condition: {e}")))?;
    c.diag(format!(
        "{name}: zone {lba} -> {word}: control answers {got:?}"
    ));
    let i = c.luns[li]
        .model
        .zone_index(lba)
        .ok_or_else(|| bad("no zone"))?;
    c.luns[li].model.set_condition(i, cond);
    c.prune(li);
    c.check_zones(li, &format!("{name}: zone {lba} {word}"))
}

fn t_read_only(c: &mut Ctx) -> Step {
    let (li, ro, _) = cond_zones(c)?;
    c.fresh(li)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(ro, 2 * u))?;
    set_cond(c, li, ro, Cond::ReadOnly)
}

fn t_ro_write(c: &mut Ctx) -> Step {
    let (li, ro, _) = cond_zones(c)?;
    cond_ready(c, li, ro, Cond::ReadOnly)?;
    let u = unit(c, li);
    c.err(li, Op::Write(ro + 2 * u, u), Violation::ReadOnly)?;
    c.err(li, Op::Write(ro, u), Violation::ReadOnly)
}

fn t_ro_read(c: &mut Ctx) -> Step {
    let (li, ro, _) = cond_zones(c)?;
    cond_ready(c, li, ro, Cond::ReadOnly)?;
    let u = unit(c, li);
    let have = c.luns[li]
        .written
        .contains_key(&(ro * c.luns[li].bs() / 4096));
    ensure(have, || {
        "the READ ONLY zone's stamped data is not recorded".into()
    })?;
    c.ok(li, Op::Read(ro, 2 * u))
}

fn t_offline(c: &mut Ctx) -> Step {
    let (li, _, off) = cond_zones(c)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(off, u))?;
    set_cond(c, li, off, Cond::Offline)
}

fn t_off_write(c: &mut Ctx) -> Step {
    let (li, _, off) = cond_zones(c)?;
    cond_ready(c, li, off, Cond::Offline)?;
    let u = unit(c, li);
    c.err(li, Op::Write(off, u), Violation::Offline)?;
    c.err(li, Op::Write(off + u, u), Violation::Offline)
}

fn t_off_read(c: &mut Ctx) -> Step {
    let (li, _, off) = cond_zones(c)?;
    cond_ready(c, li, off, Cond::Offline)?;
    c.err(li, Op::Read(off, 1), Violation::Offline)
}

fn t_all_leaves(c: &mut Ctx) -> Step {
    let (li, ro, off) = cond_zones(c)?;
    cond_ready(c, li, ro, Cond::ReadOnly)?;
    cond_ready(c, li, off, Cond::Offline)?;
    let z = c.luns[li].wz(0)?;
    let u = unit(c, li);
    c.ok(li, Op::Write(z, u))?;
    for a in [Close, Open, Finish, Reset] {
        c.ok(li, all(a))?;
    }
    c.ok(li, zone(Open, z))?;
    c.ok(li, all(Reset))
}

fn t_cond_report(c: &mut Ctx) -> Step {
    let (li, ro, off) = cond_zones(c)?;
    cond_ready(c, li, ro, Cond::ReadOnly)?;
    cond_ready(c, li, off, Cond::Offline)?;
    let alloc = big_alloc(c, li);
    for opt in [0x06, 0x07, 0x00, 0x3f] {
        check_report(c, li, 0, alloc, opt, false)?;
    }
    check_report(c, li, ro, alloc, 0x07, true)
}

fn t_cond_kernel(c: &mut Ctx) -> Step {
    let (li, ro, off) = cond_zones(c)?;
    cond_ready(c, li, ro, Cond::ReadOnly)?;
    cond_ready(c, li, off, Cond::Offline)?;
    kernel_lun(c)?;
    check_kernel(c, li, "READ ONLY and OFFLINE zones")
}

// -------------------------------------------------------------------- data

pub(super) const DATA: &[Test] = &[
    ("conventional_any_order", t_conv_data),
    ("stamps_and_host_crc32c", t_data),
];

/// Every stamped block still on the devices: read back through SG_IO and
/// compared with the host's CRC32C.
fn t_data(c: &mut Ctx) -> Step {
    if c.luns.is_empty() {
        return Err(Verdict::skip("no zoned LUN"));
    }
    let mut total = 0;
    for li in 0..c.luns.len() {
        let blocks: Vec<u64> = c.luns[li].written.keys().copied().collect();
        total += blocks.len();
        c.verify_blocks(li, &blocks)?;
    }
    c.diag(format!(
        "{total} stamped 4 KiB blocks verified{}",
        if c.ctl.is_some() {
            " with host CRC32C"
        } else {
            " (no control socket: no host CRC32C)"
        }
    ));
    ensure(total > 0, || "no stamped block is left to verify".into())
}

/// Conventional zones take writes anywhere, in any order; read back and
/// host-checksummed like the rest.
fn t_conv_data(c: &mut Ctx) -> Step {
    let li = main_lun(c)?;
    let lay = c.luns[li].model.layout;
    if lay.conventional == 0 {
        return Err(Verdict::skip("no conventional zones"));
    }
    let u = unit(c, li);
    let mid = (lay.zone_blocks * lay.conventional / 2 / u) * u;
    c.ok(li, Op::Write(mid + 3 * u, 2 * u))?;
    c.ok(li, Op::Write(mid, 3 * u))?;
    // Across the two conventional zones, if there are two.
    if lay.conventional >= 2 {
        c.ok(li, Op::Write(lay.zone_blocks - u, 2 * u))?;
    }
    c.ok(li, Op::Read(mid, 5 * u))
}
