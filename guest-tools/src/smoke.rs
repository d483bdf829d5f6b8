//! The `smoke` suite: does the kernel see each configured LUN exactly as
//! the host configured it, and do the zone ioctls, sequential-write rules
//! and zone state machine behave as ZBC and the block layer say?
//!
//! KTAP layout: test 1 `config`, then one subtest per configured LUN
//! (`lun<N>`), whose tests depend on its kind (see `HM_TESTS` and
//! `DISK_TESTS`). A test whose prerequisite failed is a SKIP naming it;
//! the failure itself is reported once.

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
    time::Duration,
};

use crate::{
    blkzoned::{self as bz, BlkZone, ZoneOp},
    blockio,
    cmdline::{Config, LunKind, LunSpec, ZoneSpec},
    ktap::{ensure, fail, Ktap, Outcome, Step, Verdict},
    runner::{Context, Done, Runner},
    sgio,
    stamp::BLOCK_SIZE,
    sysfs::{self, Disk},
    zonecheck,
};

/// How long to wait for SCSI scanning to bring up the configured LUNs.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

const BS: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;

/// State shared by the tests of one LUN.
struct Lun {
    n: u64,
    spec: LunSpec,
    disk: Option<Disk>,
    file: Option<File>,
    /// Generation stamped into every block this run writes.
    gen: u64,
    /// Blocks written at the start of the first sequential zone so far.
    seq_written: Option<u64>,
    /// Every test run so far and whether it passed, recorded by the runner.
    done: Done,
    /// Diagnostics to print before the current result line.
    diags: Vec<String>,
    /// Discovery's error, if the LUN was not found.
    missing: Option<String>,
}

impl Lun {
    fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    fn disk(&self) -> Result<&Disk, Verdict> {
        self.disk
            .as_ref()
            .ok_or_else(|| Verdict::skip("LUN not present"))
    }

    fn file(&self) -> Result<&File, Verdict> {
        self.file
            .as_ref()
            .ok_or_else(|| Verdict::skip("device not open"))
    }

    fn zs(&self) -> Result<ZoneSpec, Verdict> {
        self.spec
            .zones
            .ok_or_else(|| Verdict::fail("no zone layout configured"))
    }

    fn nr_zones(&self) -> u64 {
        self.spec.nr_zones().unwrap_or(0)
    }

    /// Start and length (sectors) of zone `idx` per the configuration.
    fn zone_range(&self, idx: u64) -> Result<(u64, u64), Verdict> {
        let zs = self.zs()?;
        let start = idx * zs.zone_size;
        let len = zs.zone_size.min(self.spec.size - start);
        Ok((start / SECTOR, len / SECTOR))
    }

    /// Index of the `k`-th sequential zone, if it exists and is full-sized.
    fn seq_zone(&self, k: u64) -> Result<u64, Verdict> {
        let zs = self.zs()?;
        let idx = zs.conventional + k;
        if (idx + 1) * zs.zone_size > self.spec.size {
            return Err(Verdict::skip(format!(
                "needs {} full-sized sequential zones",
                k + 1
            )));
        }
        Ok(idx)
    }

    fn report(&self, sector: u64) -> Result<BlkZone, Verdict> {
        bz::report_one(self.file()?, sector).map_err(fail("BLKREPORTZONE"))
    }

    fn expect_zone(&mut self, sector: u64, cond: u8, wp: u64, when: &str) -> Step {
        let mut diags = Vec::new();
        let r = zonecheck::expect_zone(self.file()?, sector, (cond, wp), when, &mut diags);
        self.diags.append(&mut diags);
        r
    }

    fn mgmt(&self, op: ZoneOp, sector: u64, nr: u64) -> Step {
        bz::zone_mgmt(self.file()?, op, sector, nr)
            .map_err(|e| Verdict::fail(format!("{} sector {sector} +{nr}: {e}", op.name())))
    }

    fn needs(&self, step: &str) -> Step {
        self.done.needs(step)
    }
}

impl Context for Lun {
    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, _area: &str, name: &str, verdict: &Verdict) {
        self.done.record(name, *verdict == Verdict::Pass);
    }
}

type Test = (&'static str, fn(&mut Lun) -> Step);

/// Tests of a host-managed (`hm`) LUN, in order.
const HM_TESTS: &[Test] = &[
    ("present", t_present),
    ("zoned_model", t_zoned_model),
    ("logical_block_size", t_lbs),
    ("capacity", t_capacity),
    ("chunk_sectors", t_chunk_sectors),
    ("nr_zones", t_nr_zones),
    ("zone_ioctls", t_zone_ioctls),
    ("report_zones", t_report_zones),
    ("reset_all", t_reset_all),
    ("seq_write", t_seq_write),
    ("out_of_order_write", t_out_of_order),
    ("out_of_order_passthrough", t_out_of_order_sgio),
    ("write_after_error", t_write_after_error),
    ("conv_write", t_conv_write),
    ("open_empty", t_open_empty),
    ("close_empty", t_close_empty),
    ("open", t_open),
    ("close", t_close),
    ("finish", t_finish),
    ("reset_zone", t_reset_zone),
];

/// Tests of a host aware (`ha`) LUN: Linux 6.10+ drives it as a plain
/// disk, older kernels as zoned; the zbc suite tests its zones.
const HA_TESTS: &[Test] = &[
    ("present", t_present),
    ("logical_block_size", t_lbs),
    ("capacity", t_capacity),
];

/// Tests of a not zoned (`disk`) LUN, in order.
const DISK_TESTS: &[Test] = &[
    ("present", t_present),
    ("not_zoned", t_not_zoned),
    ("logical_block_size", t_lbs),
    ("capacity", t_capacity),
    ("write", t_disk_write),
];

fn t_present(l: &mut Lun) -> Step {
    if let Some(why) = &l.missing {
        return Err(Verdict::Fail(why.clone()));
    }
    let d = l.disk()?.clone();
    l.diag(format!("{d}"));
    let f = blockio::open_direct(&d.dev_path()).map_err(fail(&format!(
        "open {} O_RDWR|O_DIRECT",
        d.dev_path().display()
    )))?;
    l.file = Some(f);
    Ok(())
}

fn t_zoned_model(l: &mut Lun) -> Step {
    let d = l.disk()?;
    ensure(d.zoned == "host-managed", || {
        format!("queue/zoned is {:?}, expected \"host-managed\"", d.zoned)
    })
}

fn t_not_zoned(l: &mut Lun) -> Step {
    let d = l.disk()?;
    ensure(d.zoned == "none", || {
        format!("queue/zoned is {:?}, expected \"none\"", d.zoned)
    })?;
    let zsz = bz::zone_size_sectors(l.file()?).map_err(fail("BLKGETZONESZ"))?;
    ensure(zsz == 0, || format!("BLKGETZONESZ is {zsz}, expected 0"))
}

fn t_lbs(l: &mut Lun) -> Step {
    let d = l.disk()?;
    ensure(d.logical_block_size == l.spec.block_size, || {
        format!(
            "queue/logical_block_size is {}, expected {}",
            d.logical_block_size, l.spec.block_size
        )
    })
}

fn t_capacity(l: &mut Lun) -> Step {
    let d = l.disk()?;
    ensure(d.sectors.checked_mul(SECTOR) == Some(l.spec.size), || {
        format!(
            "size is {} sectors ({} bytes), expected {} bytes",
            d.sectors,
            d.sectors.saturating_mul(SECTOR),
            l.spec.size
        )
    })
}

fn t_chunk_sectors(l: &mut Lun) -> Step {
    let want = l.zs()?.zone_size / SECTOR;
    let d = l.disk()?;
    ensure(d.chunk_sectors == want, || {
        format!(
            "queue/chunk_sectors is {}, expected {want}",
            d.chunk_sectors
        )
    })
}

fn t_nr_zones(l: &mut Lun) -> Step {
    let want = l.nr_zones();
    let d = l.disk()?;
    ensure(d.nr_zones == Some(want), || match d.nr_zones {
        Some(n) => format!("queue/nr_zones is {n}, expected {want}"),
        None => "queue/nr_zones does not exist".to_string(),
    })
}

fn t_zone_ioctls(l: &mut Lun) -> Step {
    let want_sz = l.zs()?.zone_size / SECTOR;
    let want_nr = l.nr_zones();
    let f = l.file()?;
    let sz = bz::zone_size_sectors(f).map_err(fail("BLKGETZONESZ"))?;
    let nr = bz::nr_zones(f).map_err(fail("BLKGETNRZONES"))?;
    l.diag(format!("BLKGETZONESZ {sz} BLKGETNRZONES {nr}"));
    ensure(u64::from(sz) == want_sz, || {
        format!("BLKGETZONESZ is {sz}, expected {want_sz}")
    })?;
    ensure(u64::from(nr) == want_nr, || {
        format!("BLKGETNRZONES is {nr}, expected {want_nr}")
    })
}

fn t_report_zones(l: &mut Lun) -> Step {
    let zs = l.zs()?;
    let mut diags = Vec::new();
    let r = zonecheck::layout(l.file()?, l.spec.size, &zs, &mut diags);
    for d in diags {
        l.diag(d);
    }
    r
}

fn t_reset_all(l: &mut Lun) -> Step {
    // Destructive steps run only on a device whose zones are the configured
    // ones: otherwise they would act on the wrong zones.
    l.needs("report_zones")?;
    let nr_sectors = l.spec.size / SECTOR;
    l.mgmt(ZoneOp::Reset, 0, nr_sectors)?;
    let nr = u32::try_from(l.nr_zones()).map_err(|_| Verdict::fail("too many zones"))?;
    let (_, zones) = bz::report_all(l.file()?, nr).map_err(fail("BLKREPORTZONE"))?;
    let bad: Vec<String> = zones
        .iter()
        .filter(|z| {
            z.type_ != bz::BLK_ZONE_TYPE_CONVENTIONAL
                && (z.cond != bz::BLK_ZONE_COND_EMPTY || z.wp != z.start)
        })
        .map(|z| z.to_string())
        .collect();
    ensure(bad.is_empty(), || {
        format!(
            "{} sequential zones not EMPTY with wp == start after reset, first: {}",
            bad.len(),
            bad.first().map_or("", |s| s.as_str())
        )
    })?;
    Ok(())
}

/// Blocks written by `seq_write`, in writes of `SEQ_PER_WRITE`.
const SEQ_BLOCKS: u64 = 16;
const SEQ_PER_WRITE: u64 = 4;

fn t_seq_write(l: &mut Lun) -> Step {
    l.needs("reset_all")?;
    let idx = l.seq_zone(0)?;
    let (start, _) = l.zone_range(idx)?;
    let cap = l.zs()?.capacity;
    if cap < (SEQ_BLOCKS + 2) * BS {
        return Err(Verdict::skip(format!(
            "zone capacity {cap} is below the {} bytes this test writes",
            (SEQ_BLOCKS + 2) * BS
        )));
    }
    let byte = start * SECTOR;
    blockio::write_stamped(l.file()?, byte, SEQ_BLOCKS, l.gen, SEQ_PER_WRITE).map_err(fail(
        &format!("O_DIRECT write at the write pointer (byte {byte})"),
    ))?;
    let wp = start + SEQ_BLOCKS * BS / SECTOR;
    l.expect_zone(start, bz::BLK_ZONE_COND_IMP_OPEN, wp, "after write")?;
    blockio::read_verify(l.file()?, byte, SEQ_BLOCKS, l.gen).map_err(Verdict::Fail)?;
    l.seq_written = Some(SEQ_BLOCKS);
    Ok(())
}

/// The first sequential zone after seq_write: its start sector, the
/// blocks written, its write pointer (sector), and the byte one block past it.
fn past_wp(l: &Lun) -> Result<(u64, u64, u64, u64), Verdict> {
    let written = l
        .seq_written
        .ok_or_else(|| Verdict::skip("needs seq_write"))?;
    let (start, _) = l.zone_range(l.seq_zone(0)?)?;
    let wp = start + written * BS / SECTOR;
    Ok((start, written, wp, wp * SECTOR + BS))
}

/// A refused write changed nothing: same write pointer, same data.
fn unchanged(l: &mut Lun, start: u64, written: u64, wp: u64) -> Step {
    let z = l.report(start)?;
    l.diag(format!("after: {z}"));
    ensure(z.wp == wp, || {
        format!("write pointer moved: {} -> {}", wp, z.wp)
    })?;
    blockio::read_verify(l.file()?, start * SECTOR, written, l.gen)
        .map_err(|e| Verdict::fail(format!("earlier data: {e}")))
}

fn t_out_of_order(l: &mut Lun) -> Step {
    let (start, written, wp, byte) = past_wp(l)?;
    let e = zonecheck::write_past_wp(l.file()?, byte, l.gen)?;
    l.diag(format!("write past wp: {e}"));
    unchanged(l, start, written, wp)
}

/// The device's own check, past the block layer: a WRITE(16) through SG_IO
/// one block past the write pointer must end in CHECK CONDITION, ILLEGAL
/// REQUEST, UNALIGNED WRITE COMMAND (ZBC-2: 21h/04h), changing nothing.
fn t_out_of_order_sgio(l: &mut Lun) -> Step {
    let (start, written, wp, byte) = past_wp(l)?;
    let bs = l.spec.block_size;
    let mut buf = blockio::AlignedBuf::new(BLOCK_SIZE);
    crate::stamp::fill(buf.as_mut_slice(), byte / BS, l.gen).map_err(fail("stamp"))?;
    let blocks = u32::try_from(BS / bs).unwrap_or(1).max(1);
    let data = &buf.as_slice()[..(u64::from(blocks) * bs).min(BS) as usize];
    let cdb = sgio::write16(byte / bs, blocks);
    let c = sgio::command(l.file()?, &cdb, sgio::Data::ToDevice(data), 30_000)
        .map_err(fail("SG_IO WRITE(16)"))?;
    l.diag(format!("WRITE(16) lba {} past wp: {c}", byte / bs));
    let want = sgio::Sense {
        key: sgio::ILLEGAL_REQUEST,
        asc: 0x21,
        ascq: 0x04,
    };
    ensure(
        c.status == sgio::CHECK_CONDITION && c.sense == Some(want),
        || {
            format!("WRITE(16) one block past the write pointer: {c}, expected CHECK CONDITION with {want}")
        },
    )?;
    unchanged(l, start, written, wp)
}

fn t_write_after_error(l: &mut Lun) -> Step {
    let written = l
        .seq_written
        .ok_or_else(|| Verdict::skip("needs seq_write"))?;
    let (start, _) = l.zone_range(l.seq_zone(0)?)?;
    let byte = start * SECTOR + written * BS;
    blockio::write_stamped(l.file()?, byte, 1, l.gen, 1).map_err(fail(&format!(
        "write at the write pointer (byte {byte}) after a failed write"
    )))?;
    l.seq_written = Some(written + 1);
    let wp = start + (written + 1) * BS / SECTOR;
    l.expect_zone(start, bz::BLK_ZONE_COND_IMP_OPEN, wp, "after write")?;
    blockio::read_verify(l.file()?, start * SECTOR, written + 1, l.gen).map_err(Verdict::Fail)
}

fn t_conv_write(l: &mut Lun) -> Step {
    let zs = l.zs()?;
    if zs.conventional == 0 {
        return Err(Verdict::skip("no conventional zones configured"));
    }
    l.needs("report_zones")?;
    let (start, len) = l.zone_range(zs.conventional - 1)?;
    // Somewhere in the middle, not zone- or chunk-aligned; higher block
    // first, then a lower one: no write pointer applies.
    let mid = (start * SECTOR + len * SECTOR / 2) / BS * BS + 3 * BS;
    let f = l.file()?;
    blockio::write_stamped(f, mid + 4 * BS, 2, l.gen, 2)
        .map_err(fail(&format!("write at byte {}", mid + 4 * BS)))?;
    blockio::write_stamped(f, mid, 3, l.gen, 3).map_err(fail(&format!("write at byte {mid}")))?;
    blockio::read_verify(f, mid, 3, l.gen).map_err(Verdict::Fail)?;
    blockio::read_verify(f, mid + 4 * BS, 2, l.gen).map_err(Verdict::Fail)?;
    let z = l.report(start)?;
    ensure(z.cond == bz::BLK_ZONE_COND_NOT_WP, || {
        format!("conventional zone after write: {z}, expected NOT_WP")
    })
}

/// The zone the state machine tests use: the second sequential zone.
fn state_zone(l: &Lun) -> Result<(u64, u64), Verdict> {
    l.zone_range(l.seq_zone(1)?)
}

fn t_open_empty(l: &mut Lun) -> Step {
    l.needs("reset_all")?;
    let (start, len) = state_zone(l)?;
    l.mgmt(ZoneOp::Open, start, len)?;
    l.expect_zone(
        start,
        bz::BLK_ZONE_COND_EXP_OPEN,
        start,
        "after BLKOPENZONE",
    )?;
    Ok(())
}

fn t_close_empty(l: &mut Lun) -> Step {
    l.needs("open_empty")?;
    let (start, len) = state_zone(l)?;
    l.mgmt(ZoneOp::Close, start, len)?;
    // ZBC: closing an open zone whose write pointer is at its start makes
    // it EMPTY, not CLOSED.
    l.expect_zone(start, bz::BLK_ZONE_COND_EMPTY, start, "after BLKCLOSEZONE")
}

/// Blocks the state machine tests write into their zone.
const STATE_BLOCKS: u64 = 2;

fn t_open(l: &mut Lun) -> Step {
    l.needs("reset_all")?;
    let (start, len) = state_zone(l)?;
    let z = l.report(start)?;
    ensure(z.cond == bz::BLK_ZONE_COND_EMPTY, || {
        format!("zone not EMPTY before the test: {z}")
    })?;
    blockio::write_stamped(l.file()?, start * SECTOR, STATE_BLOCKS, l.gen, STATE_BLOCKS)
        .map_err(fail("write at the write pointer"))?;
    let wp = start + STATE_BLOCKS * BS / SECTOR;
    l.expect_zone(start, bz::BLK_ZONE_COND_IMP_OPEN, wp, "after write")?;
    l.mgmt(ZoneOp::Open, start, len)?;
    l.expect_zone(start, bz::BLK_ZONE_COND_EXP_OPEN, wp, "after BLKOPENZONE")?;
    Ok(())
}

fn t_close(l: &mut Lun) -> Step {
    l.needs("open")?;
    let (start, len) = state_zone(l)?;
    l.mgmt(ZoneOp::Close, start, len)?;
    let wp = start + STATE_BLOCKS * BS / SECTOR;
    l.expect_zone(start, bz::BLK_ZONE_COND_CLOSED, wp, "after BLKCLOSEZONE")?;
    blockio::read_verify(l.file()?, start * SECTOR, STATE_BLOCKS, l.gen).map_err(Verdict::Fail)
}

fn t_finish(l: &mut Lun) -> Step {
    l.needs("reset_all")?;
    let (start, len) = state_zone(l)?;
    l.mgmt(ZoneOp::Finish, start, len)?;
    // The kernel reports a FULL zone's write pointer as the zone end.
    l.expect_zone(
        start,
        bz::BLK_ZONE_COND_FULL,
        start + len,
        "after BLKFINISHZONE",
    )?;
    if l.needs("close").is_ok() {
        blockio::read_verify(l.file()?, start * SECTOR, STATE_BLOCKS, l.gen)
            .map_err(Verdict::Fail)?;
    }
    Ok(())
}

fn t_reset_zone(l: &mut Lun) -> Step {
    l.needs("reset_all")?;
    let (start, len) = state_zone(l)?;
    l.mgmt(ZoneOp::Reset, start, len)?;
    l.expect_zone(start, bz::BLK_ZONE_COND_EMPTY, start, "after BLKRESETZONE")
}

fn t_disk_write(l: &mut Lun) -> Step {
    let f = l.file()?;
    let blocks = l.spec.size / BS;
    ensure(blocks >= 16, || {
        format!("{} bytes is too small for this test", l.spec.size)
    })?;
    // An arbitrary, not power-of-two offset in the middle, then one block
    // below it: a plain disk takes writes in any order.
    let at = (blocks / 2 + 3) * BS;
    blockio::write_stamped(f, at, 5, l.gen, 5).map_err(fail(&format!("write at byte {at}")))?;
    blockio::write_stamped(f, at - BS, 1, l.gen, 1)
        .map_err(fail(&format!("write at byte {}", at - BS)))?;
    blockio::read_verify(f, at - BS, 6, l.gen).map_err(Verdict::Fail)
}

/// Run `tests` for one LUN as a KTAP subtest.
fn run_lun<W: Write>(r: &Runner<'_, W>, l: &mut Lun, tests: &[Test]) -> io::Result<Outcome> {
    let about = format!(
        "kind {} bs {} size {}{} generation {:#x}",
        l.spec.kind,
        l.spec.block_size,
        l.spec.size,
        l.spec.zones.map_or(String::new(), |z| format!(
            " zone {} cap {} conv {}",
            z.zone_size, z.capacity, z.conventional
        )),
        l.gen
    );
    let name = format!("lun{}", l.n);
    r.subtest(&name, tests.len(), || {
        r.diag(&about)?;
        for &(tname, f) in tests {
            r.test(l, &name, tname, f)?;
        }
        Ok(())
    })
}

/// Run the smoke suite against `/sys` (`sys_root`). Returns whether every
/// result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    if cfg.luns.is_empty() {
        return crate::ktap::no_luns(k);
    }
    let k = Runner::new(k);
    k.plan(cfg.luns.len() + 1)?;
    let gen = crate::stamp::run_generation();
    k.result("config", &Outcome::Pass)?;

    let luns: Vec<u64> = cfg.luns.keys().copied().collect();
    let (disks, errors) = sysfs::wait_for_luns(sys_root, &luns, DISCOVERY_TIMEOUT);
    // Where this boot went (scripts/bench.sh's boot target is this suite's
    // time to its first KTAP line): a diagnostic, not a test.
    let ready = crate::bench::boot::uptime();
    match ready.map(crate::bench::boot::smoke_line) {
        Ok(Some(Ok(line))) => k.diag(&line)?,
        Ok(Some(Err(e))) | Err(e) => k.diag(&format!("no boot breakdown: {e}"))?,
        Ok(None) => {}
    }
    for d in &disks {
        k.diag(&format!("found {d}"))?;
    }
    for e in &errors {
        k.diag(&format!("sysfs: {e}"))?;
    }
    for (&n, spec) in &cfg.luns {
        let (disk, missing) = match sysfs::pick_lun(&disks, n) {
            Ok(d) => (Some(d.clone()), None),
            Err(e) => (None, Some(e)),
        };
        let mut l = Lun {
            n,
            spec: *spec,
            disk,
            file: None,
            // Per LUN, so a write that lands on another LUN at the same
            // offset does not verify there.
            gen: gen.wrapping_add(n),
            seq_written: None,
            done: Done::default(),
            diags: Vec::new(),
            missing,
        };
        let tests = match spec.kind {
            LunKind::HostManaged => HM_TESTS,
            LunKind::HostAware => HA_TESTS,
            LunKind::Disk => DISK_TESTS,
        };
        run_lun(&k, &mut l, tests)?;
    }
    Ok(!k.failed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline;

    /// LUN `n` of `cfg` as discovery leaves a LUN it did not find.
    fn absent(cfg: &Config, n: u64, missing: &str) -> Lun {
        Lun {
            n,
            spec: cfg.luns[&n],
            disk: None,
            file: None,
            gen: 1,
            seq_written: None,
            done: Done::default(),
            diags: Vec::new(),
            missing: Some(missing.into()),
        }
    }

    #[test]
    fn missing_lun_fails_present_and_skips_the_rest() {
        // Discovery itself would wait DISCOVERY_TIMEOUT; drive one LUN's
        // subtest directly, as `run` does after discovery found nothing.
        let cfg = cmdline::parse("zonecopy.lun3=disk:bs=512,size=1048576").unwrap();
        let mut l = absent(&cfg, 3, "no disk with LUN 3 on target 0 (found: none)");
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(1).unwrap();
        let o = run_lun(&Runner::new(&mut k), &mut l, DISK_TESTS).unwrap();
        assert!(o.is_failure());
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert_eq!(
            out,
            "KTAP version 1\n\
             1..1\n    \
                 KTAP version 1\n    \
                 # Subtest: lun3\n    \
                 1..5\n    \
                 # kind disk bs 512 size 1048576 generation 0x1\n    \
                 not ok 1 present # no disk with LUN 3 on target 0 (found: none)\n    \
                 ok 2 not_zoned # SKIP LUN not present\n    \
                 ok 3 logical_block_size # SKIP LUN not present\n    \
                 ok 4 capacity # SKIP LUN not present\n    \
                 ok 5 write # SKIP device not open\n\
             not ok 1 lun3\n"
        );
    }

    #[test]
    fn hm_tests_without_a_device_never_panic() {
        let cfg =
            cmdline::parse("zonecopy.lun0=hm:bs=4096,size=16777216,zone=4194304,conv=1").unwrap();
        let mut l = absent(&cfg, 0, "absent");
        let mut k = Ktap::new(Vec::new()).unwrap();
        run_lun(&Runner::new(&mut k), &mut l, HM_TESTS).unwrap();
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(
            out.contains(&format!("    1..{}\n", HM_TESTS.len())),
            "{out}"
        );
        assert!(out.contains("not ok 1 present # absent"), "{out}");
        // Everything after `present` is skipped, nothing else fails.
        assert_eq!(out.matches("not ok").count(), 2, "{out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}
