//! Zone conformance on the first ZNS namespace, through the kernel (zone
//! ioctls, O_DIRECT writes at the write pointer) and through passthrough
//! (Write 01h past the write pointer, Zone Append 7Dh, Zone Management
//! Receive 7Ah), per the ZNS Command Set 1.1.
//!
//! Zones used (k-th sequential zone): 0 sequential writes and the
//! out-of-order checks, 1 the state machine, 2 Zone Append, 3 Zone Append
//! at the zone capacity. The copy tests use zones 4 and 5. Passthrough
//! writes bypass the kernel's zone write plugs, so a zone written through
//! passthrough is never written through the block layer again before a
//! reset.

use std::fs::File;

use super::{
    ensure, fail,
    passthru::{self, io_op, sc, Command, Data},
    test, Ctx, Step, Test,
};
use crate::{
    blkzoned::{self as bz, BlkZone, ZoneOp},
    blockio,
    cmdline::NsKind,
    ktap::Verdict,
    stamp::{self, BLOCK_SIZE},
    zonecheck,
};

const SECTOR: u64 = 512;
const BS: u64 = BLOCK_SIZE as u64;

/// What the zone tests learned, for later ones.
#[derive(Debug, Default)]
pub struct State {
    /// Stamped blocks written at the start of sequential zone 0.
    pub seq_written: Option<u64>,
}

/// The zone tests, in order.
pub fn tests() -> Vec<Test> {
    vec![
        test("report_zones", t_report_zones),
        test("reset_all", t_reset_all),
        test("seq_write", t_seq_write),
        test("out_of_order_write", t_out_of_order),
        test("write_after_error", t_write_after_error),
        test("out_of_order_passthrough", t_out_of_order_passthru),
        test("write_after_passthrough_error", t_write_after_error),
        test("open_empty", t_open_empty),
        test("close_empty", t_close_empty),
        test("open", t_open),
        test("close", t_close),
        test("finish", t_finish),
        test("reset_zone", t_reset_zone),
        test("zone_append", t_zone_append),
        test("zone_mgmt_recv", t_zone_mgmt_recv),
        test("append_at_capacity", t_append_capacity),
    ]
}

/// One zone of a namespace, in both units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// First sector (512 bytes).
    pub sector: u64,
    /// Length in sectors.
    pub sectors: u64,
    /// First LBA.
    pub lba: u64,
    /// Writable capacity in LBAs.
    pub cap: u64,
    /// Logical block size.
    pub bs: u64,
}

impl Zone {
    /// Byte offset of the zone start.
    pub fn byte(&self) -> u64 {
        self.sector * SECTOR
    }

    /// Sector of LBA `lba`.
    pub fn sector_of(&self, lba: u64) -> u64 {
        lba * self.bs / SECTOR
    }
}

/// The ZNS namespace under test: its NSID.
pub fn zns_nsid(c: &Ctx<'_>) -> Result<u32, Verdict> {
    let nsid = c.first(NsKind::Zns)?;
    c.ns(nsid)?.file()?;
    Ok(nsid)
}

/// The `k`-th sequential zone of namespace `nsid` per the configuration,
/// if it exists and is full-sized.
pub fn seq_zone(c: &Ctx<'_>, nsid: u32, k: u64) -> Result<Zone, Verdict> {
    let n = c.ns(nsid)?;
    let zs = n
        .spec
        .zones
        .ok_or_else(|| Verdict::fail("no zone layout configured"))?;
    let idx = zs.conventional + k;
    if (idx + 1) * zs.zone_size > n.spec.size {
        return Err(Verdict::skip(format!(
            "needs {} full-sized sequential zones",
            k + 1
        )));
    }
    let bs = n.spec.block_size;
    Ok(Zone {
        sector: idx * zs.zone_size / SECTOR,
        sectors: zs.zone_size / SECTOR,
        lba: idx * zs.zone_size / bs,
        cap: zs.capacity / bs,
        bs,
    })
}

fn report(f: &File, sector: u64) -> Result<BlkZone, Verdict> {
    bz::report_one(f, sector).map_err(fail("BLKREPORTZONE"))
}

/// Check the zone at `sector` is `cond` with write pointer `wp` (sector).
pub fn expect_zone(c: &mut Ctx<'_>, f: &File, sector: u64, cond: u8, wp: u64, when: &str) -> Step {
    zonecheck::expect_zone(f, sector, (cond, wp), when, &mut c.diags)
}

/// Zone operation `op` on zone `z`, which must then be in `cond` with its
/// write pointer at `wp`.
fn op_expect(c: &mut Ctx<'_>, f: &File, z: &Zone, op: ZoneOp, cond: u8, wp: u64) -> Step {
    mgmt(f, op, z)?;
    expect_zone(c, f, z.sector, cond, wp, &format!("after {}", op.name()))
}

fn mgmt(f: &File, op: ZoneOp, z: &Zone) -> Step {
    bz::zone_mgmt(f, op, z.sector, z.sectors)
        .map_err(|e| Verdict::fail(format!("{} sector {}: {e}", op.name(), z.sector)))
}

fn t_report_zones(c: &mut Ctx<'_>) -> Step {
    c.needs("connect/namespaces")?;
    let nsid = zns_nsid(c)?;
    let n = c.ns(nsid)?;
    let spec = n.spec;
    let zs = spec.zones.ok_or_else(|| Verdict::fail("no zones"))?;
    let mut diags = Vec::new();
    let r = zonecheck::layout(n.file()?, spec.size, &zs, &mut diags);
    for d in diags {
        c.diag(d);
    }
    r
}

fn t_reset_all(c: &mut Ctx<'_>) -> Step {
    // Destructive steps only on zones proven to be the configured ones.
    c.needs("zns/report_zones")?;
    let nsid = zns_nsid(c)?;
    let n = c.ns(nsid)?;
    let spec = n.spec;
    let f = n.file()?;
    bz::zone_mgmt(f, ZoneOp::Reset, 0, spec.size / SECTOR).map_err(fail("BLKRESETZONE all"))?;
    let nr = u32::try_from(spec.nr_zones().unwrap_or(0)).unwrap_or(u32::MAX);
    let (_, zones) = bz::report_all(f, nr).map_err(fail("BLKREPORTZONE"))?;
    // READ ONLY and OFFLINE zones (from the events tests of an earlier run
    // against the same backend) are not reset by a reset of all zones
    // (ZNS 1.1, 3.4.3.1.4) and stay as they are.
    let unavailable = |c: u8| matches!(c, bz::BLK_ZONE_COND_READONLY | bz::BLK_ZONE_COND_OFFLINE);
    let kept = zones.iter().filter(|z| unavailable(z.cond)).count();
    if kept > 0 {
        c.diag(format!(
            "{kept} READ ONLY or OFFLINE zones left as they are"
        ));
    }
    let bad: Vec<String> = zones
        .iter()
        .filter(|z| {
            z.type_ != bz::BLK_ZONE_TYPE_CONVENTIONAL
                && !unavailable(z.cond)
                && (z.cond != bz::BLK_ZONE_COND_EMPTY || z.wp != z.start)
        })
        .map(ToString::to_string)
        .collect();
    ensure(bad.is_empty(), || {
        format!(
            "{} sequential zones not EMPTY with wp == start after reset, first: {}",
            bad.len(),
            bad.first().map_or("", String::as_str)
        )
    })
}

/// Known-bug id (`zonecopy.xfail=`): Linux 6.12's zone write plug error
/// recovery leaves an NVMe multipath zone unwritable through the block
/// layer after one rejected out-of-order write (every later write at the
/// write pointer fails with EIO before reaching the device; 7.2 is fine).
pub const ZWPLUG_BUG: &str = "zwplug-error-stuck";

const SEQ_BLOCKS: u64 = 16;
const SEQ_PER_WRITE: u64 = 4;

fn t_seq_write(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let nsid = zns_nsid(c)?;
    let z = seq_zone(c, nsid, 0)?;
    if z.cap * z.bs < (SEQ_BLOCKS + 2) * BS {
        return Err(Verdict::skip("zone capacity below what this test writes"));
    }
    let n = c.ns(nsid)?;
    let (gen, f) = (n.gen, n.file()?.try_clone().map_err(fail("dup"))?);
    blockio::write_stamped(&f, z.byte(), SEQ_BLOCKS, gen, SEQ_PER_WRITE).map_err(fail(
        &format!("O_DIRECT write at the write pointer (byte {})", z.byte()),
    ))?;
    written_to(c, &f, &z, SEQ_BLOCKS, gen)?;
    c.zns.seq_written = Some(SEQ_BLOCKS);
    Ok(())
}

/// The first `blocks` stamped blocks of zone `z` are written: the zone is
/// implicitly open with its write pointer after them, and they read back.
fn written_to(c: &mut Ctx<'_>, f: &File, z: &Zone, blocks: u64, gen: u64) -> Step {
    let wp = z.sector + blocks * BS / SECTOR;
    expect_zone(
        c,
        f,
        z.sector,
        bz::BLK_ZONE_COND_IMP_OPEN,
        wp,
        "after write",
    )?;
    blockio::read_verify(f, z.byte(), blocks, gen).map_err(Verdict::Fail)
}

fn seq_state(c: &Ctx<'_>) -> Result<(u32, Zone, u64, File, u64), Verdict> {
    let written = c
        .zns
        .seq_written
        .ok_or_else(|| Verdict::skip("needs seq_write"))?;
    let nsid = zns_nsid(c)?;
    let z = seq_zone(c, nsid, 0)?;
    let n = c.ns(nsid)?;
    let f = n.file()?.try_clone().map_err(fail("dup"))?;
    Ok((nsid, z, written, f, n.gen))
}

fn t_out_of_order(c: &mut Ctx<'_>) -> Step {
    let (_, z, written, f, gen) = seq_state(c)?;
    let wp = z.sector + written * BS / SECTOR;
    let byte = wp * SECTOR + BS;
    let e = crate::zonecheck::write_past_wp(&f, byte, gen)?;
    c.diag(format!("write past wp: {e}"));
    let zr = report(&f, z.sector)?;
    ensure(zr.wp == wp, || {
        format!("write pointer moved: {wp} -> {}", zr.wp)
    })?;
    blockio::read_verify(&f, z.byte(), written, gen)
        .map_err(|e| Verdict::fail(format!("earlier data: {e}")))
}

/// NVMe Write (01h) of `blocks` stamped 4 KiB blocks at `lba` through
/// passthrough; stamps name the byte offset they are written to.
pub fn write_passthru(
    f: &File,
    nsid: u32,
    bs: u64,
    lba: u64,
    blocks: u64,
    gen: u64,
) -> Result<passthru::Done, Verdict> {
    let at = Stamped { bs, blocks, gen };
    at.send(f, Command::new(io_op::WRITE, nsid), lba, lba, "NVMe Write")
}

/// `blocks` stamped 4 KiB blocks of generation `gen` on a `bs` namespace.
struct Stamped {
    bs: u64,
    blocks: u64,
    gen: u64,
}

impl Stamped {
    /// `cmd` (a Write or a Zone Append) at `slba` carrying the blocks,
    /// stamped for `stamp_lba` (where they should land).
    fn send(
        &self,
        f: &File,
        cmd: Command,
        slba: u64,
        stamp_lba: u64,
        what: &str,
    ) -> Result<passthru::Done, Verdict> {
        let mut buf = blockio::AlignedBuf::new(self.blocks as usize * BLOCK_SIZE);
        stamp::fill_range(buf.as_mut_slice(), stamp_lba * self.bs / BS, self.gen)
            .map_err(fail("stamp"))?;
        let nlb = self.blocks * BS / self.bs;
        let cmd = cmd.qw(10, slba).dw(12, (nlb - 1) as u32);
        passthru::io(f, &cmd, Data::Out(buf.as_slice()))
            .map_err(fail(&format!("{what} passthrough")))
    }
}

/// The device's own check, past the kernel's zone write plugs: a Write one
/// block past the write pointer fails with Zone Invalid Write (ZNS 1.1,
/// 2.3.1.1) and changes nothing.
fn t_out_of_order_passthru(c: &mut Ctx<'_>) -> Step {
    let (nsid, z, written, f, gen) = seq_state(c)?;
    let wp_lba = z.lba + written * BS / z.bs;
    let lba = wp_lba + BS / z.bs;
    let d = write_passthru(&f, nsid, z.bs, lba, 1, gen)?;
    c.diag(format!("Write LBA {lba} (wp {wp_lba}): {d}"));
    ensure(d.status.code() == sc::ZONE_INVALID_WRITE, || {
        format!(
            "Write one block past the write pointer: {}, expected Zone Invalid Write (0x1bc)",
            d.status
        )
    })?;
    let zr = report(&f, z.sector)?;
    let wp = z.sector_of(wp_lba);
    ensure(zr.wp == wp, || {
        format!("write pointer moved: {wp} -> {}", zr.wp)
    })?;
    blockio::read_verify(&f, z.byte(), written, gen)
        .map_err(|e| Verdict::fail(format!("earlier data: {e}")))
}

fn t_write_after_error(c: &mut Ctx<'_>) -> Step {
    let (_, z, written, f, gen) = seq_state(c)?;
    let byte = z.byte() + written * BS;
    // A pass with the bug listed is XPASS; only the refused write is it.
    c.exposes = &[ZWPLUG_BUG];
    if let Err(e) = blockio::write_stamped(&f, byte, 1, gen, 1) {
        c.known_bug = Some(ZWPLUG_BUG);
        // Diagnose before failing: does the kernel accept the write once
        // the zone was reported again (its write plug resynchronised)?
        let zr = report(&f, z.sector)?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        let retry = blockio::write_stamped(&f, byte, 1, gen, 1);
        c.diag(format!(
            "write at the write pointer failed: {e}; zone then: {zr}; retried after a \
             report and 1 s: {}",
            match &retry {
                Ok(()) => "ok".to_string(),
                Err(e) => e.to_string(),
            }
        ));
        if retry.is_ok() {
            c.zns.seq_written = Some(written + 1);
        }
        return Err(Verdict::fail(format!(
            "write at the write pointer (byte {byte}) after a failed write: {e}"
        )));
    }
    c.zns.seq_written = Some(written + 1);
    written_to(c, &f, &z, written + 1, gen)
}

fn state_zone(c: &Ctx<'_>) -> Result<(Zone, File, u64), Verdict> {
    let nsid = zns_nsid(c)?;
    let z = seq_zone(c, nsid, 1)?;
    let n = c.ns(nsid)?;
    Ok((z, n.file()?.try_clone().map_err(fail("dup"))?, n.gen))
}

fn t_open_empty(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let (z, f, _) = state_zone(c)?;
    op_expect(
        c,
        &f,
        &z,
        ZoneOp::Open,
        bz::BLK_ZONE_COND_EXP_OPEN,
        z.sector,
    )
}

fn t_close_empty(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/open_empty")?;
    let (z, f, _) = state_zone(c)?;
    // ZNS 1.1, 2.1.1.3.3 "Transition ZSEO:ZSC": an explicitly opened zone
    // goes to Closed on Close Zone, with no exception for a write pointer
    // at the zone start (that exception is ZBC-2's CLOSE ZONE; QEMU's
    // NVMe controller agrees, see the diff-nvme suite). Then reset it, so
    // the next test finds it EMPTY.
    let closed = op_expect(c, &f, &z, ZoneOp::Close, bz::BLK_ZONE_COND_CLOSED, z.sector);
    mgmt(&f, ZoneOp::Reset, &z)?;
    closed
}

const STATE_BLOCKS: u64 = 2;

fn t_open(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let (z, f, gen) = state_zone(c)?;
    let zr = report(&f, z.sector)?;
    ensure(zr.cond == bz::BLK_ZONE_COND_EMPTY, || {
        format!("zone not EMPTY before the test: {zr}")
    })?;
    blockio::write_stamped(&f, z.byte(), STATE_BLOCKS, gen, STATE_BLOCKS)
        .map_err(fail("write at the write pointer"))?;
    let wp = z.sector + STATE_BLOCKS * BS / SECTOR;
    expect_zone(
        c,
        &f,
        z.sector,
        bz::BLK_ZONE_COND_IMP_OPEN,
        wp,
        "after write",
    )?;
    op_expect(c, &f, &z, ZoneOp::Open, bz::BLK_ZONE_COND_EXP_OPEN, wp)
}

fn t_close(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/open")?;
    let (z, f, gen) = state_zone(c)?;
    mgmt(&f, ZoneOp::Close, &z)?;
    let wp = z.sector + STATE_BLOCKS * BS / SECTOR;
    expect_zone(
        c,
        &f,
        z.sector,
        bz::BLK_ZONE_COND_CLOSED,
        wp,
        "after BLKCLOSEZONE",
    )?;
    blockio::read_verify(&f, z.byte(), STATE_BLOCKS, gen).map_err(Verdict::Fail)
}

fn t_finish(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let (z, f, gen) = state_zone(c)?;
    // The kernel reports a FULL zone's write pointer as the zone end.
    op_expect(
        c,
        &f,
        &z,
        ZoneOp::Finish,
        bz::BLK_ZONE_COND_FULL,
        z.sector + z.sectors,
    )?;
    if c.passed("zns/close") {
        blockio::read_verify(&f, z.byte(), STATE_BLOCKS, gen).map_err(Verdict::Fail)?;
    }
    Ok(())
}

fn t_reset_zone(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let (z, f, _) = state_zone(c)?;
    op_expect(c, &f, &z, ZoneOp::Reset, bz::BLK_ZONE_COND_EMPTY, z.sector)
}

/// Zone Append (7Dh) of `blocks` stamped blocks into the zone starting at
/// `zslba`, stamped for `expect_lba` (where they should land).
pub fn append(
    f: &File,
    nsid: u32,
    bs: u64,
    zslba: u64,
    expect_lba: u64,
    blocks: u64,
    gen: u64,
) -> Result<passthru::Done, Verdict> {
    let at = Stamped { bs, blocks, gen };
    let cmd = Command::new(io_op::ZONE_APPEND, nsid);
    at.send(f, cmd, zslba, expect_lba, "Zone Append")
}

const APPEND_BLOCKS: u64 = 4;

fn t_zone_append(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let nsid = zns_nsid(c)?;
    let z = seq_zone(c, nsid, 2)?;
    if z.cap * z.bs < 3 * APPEND_BLOCKS * BS {
        return Err(Verdict::skip("zone capacity too small"));
    }
    let n = c.ns(nsid)?;
    let (f, gen) = (n.file()?.try_clone().map_err(fail("dup"))?, n.gen);
    let mut wp_lba = z.lba;
    for i in 0..2 {
        let d = append(&f, nsid, z.bs, z.lba, wp_lba, APPEND_BLOCKS, gen)?;
        c.diag(format!("append {i} of {APPEND_BLOCKS} blocks: {d}"));
        d.ok("Zone Append").map_err(Verdict::Fail)?;
        // ZNS 1.1, 3.4.1: Dwords 0-1 of the completion hold the LBA of the
        // first block written, the write pointer before the append.
        ensure(d.result == wp_lba, || {
            format!(
                "append {i}: assigned LBA {} (dw0 {:#x} dw1 {:#x}), expected the old write pointer {wp_lba}",
                d.result,
                d.dw0(),
                d.result >> 32
            )
        })?;
        wp_lba += APPEND_BLOCKS * BS / z.bs;
        expect_zone(
            c,
            &f,
            z.sector,
            bz::BLK_ZONE_COND_IMP_OPEN,
            z.sector_of(wp_lba),
            &format!("after append {i}"),
        )?;
    }
    blockio::read_verify(&f, z.byte(), 2 * APPEND_BLOCKS, gen).map_err(Verdict::Fail)
}

/// A zone descriptor from Zone Management Receive (ZNS 1.1, Figure 'Zone
/// Descriptor Data Structure').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneDesc {
    /// Zone Type (bits 3:0 of byte 0; 2h sequential write required).
    pub zt: u8,
    /// Zone State (bits 7:4 of byte 1).
    pub zs: u8,
    /// Zone Attributes.
    pub za: u8,
    pub zcap: u64,
    pub zslba: u64,
    pub wp: u64,
}

/// Decode a Zone Management Receive report: header (Number of Zones, bytes
/// 7:0) and 64-byte descriptors from byte 64.
pub fn parse_zone_report(b: &[u8]) -> Result<(u64, Vec<ZoneDesc>), String> {
    if b.len() < 64 {
        return Err(format!("report of {} bytes", b.len()));
    }
    let q = |at: usize| {
        let mut v = [0; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(v)
    };
    let nr = q(0);
    let room = (b.len() - 64) / 64;
    let descs = (0..room.min(usize::try_from(nr).unwrap_or(usize::MAX)))
        .map(|i| {
            let at = 64 + 64 * i;
            ZoneDesc {
                zt: b[at] & 0x0F,
                zs: b[at + 1] >> 4,
                za: b[at + 2],
                zcap: q(at + 8),
                zslba: q(at + 16),
                wp: q(at + 24),
            }
        })
        .collect();
    Ok((nr, descs))
}

/// Zone Management Receive (7Ah), Report Zones (ZRA 00h) from `slba` with
/// state filter `zrasf` (0 all, 1 empty, 2 implicitly open, 3 explicitly
/// open, 4 closed, 5 full, 6 read only, 7 offline) and the Partial Report
/// bit, into `len` bytes: SLBA CDW10-11, NUMD CDW12 (0's based dwords),
/// ZRA CDW13 7:0, ZRASF 15:8, Partial Report bit 16.
pub fn zone_mgmt_recv_cmd(nsid: u32, slba: u64, len: u32, zrasf: u8, partial: bool) -> Command {
    Command::new(io_op::ZONE_MGMT_RECV, nsid)
        .qw(10, slba)
        .dw(12, len / 4 - 1)
        .dw(13, (u32::from(zrasf) << 8) | (u32::from(partial) << 16))
}

fn t_zone_mgmt_recv(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let nsid = zns_nsid(c)?;
    let n = c.ns(nsid)?;
    let spec = n.spec;
    let f = n.file()?.try_clone().map_err(fail("dup"))?;
    let bs = spec.block_size;
    let nr = spec.nr_zones().unwrap_or(0);
    let (_, kzones) =
        bz::report_all(&f, u32::try_from(nr).unwrap_or(u32::MAX)).map_err(fail("BLKREPORTZONE"))?;
    let len = u32::try_from(64 + 64 * nr).map_err(|_| Verdict::fail("too many zones"))?;
    // (filter, kernel condition it selects)
    for (zrasf, cond) in [
        (1u8, bz::BLK_ZONE_COND_EMPTY),
        (2, bz::BLK_ZONE_COND_IMP_OPEN),
        (5, bz::BLK_ZONE_COND_FULL),
    ] {
        let mut buf = vec![0u8; len as usize];
        let d = passthru::io(
            &f,
            &zone_mgmt_recv_cmd(nsid, 0, len, zrasf, false),
            Data::In(&mut buf),
        )
        .map_err(fail("Zone Management Receive"))?;
        d.ok(&format!("Zone Management Receive ZRASF {zrasf}"))
            .map_err(Verdict::Fail)?;
        let (count, descs) = parse_zone_report(&buf).map_err(Verdict::Fail)?;
        let want: Vec<u64> = kzones
            .iter()
            .filter(|z| z.cond == cond && z.type_ == bz::BLK_ZONE_TYPE_SEQWRITE_REQ)
            .map(|z| z.start * SECTOR / bs)
            .collect();
        let got: Vec<u64> = descs.iter().map(|d| d.zslba).collect();
        c.diag(format!(
            "ZRASF {zrasf} ({}): {count} zones, kernel shows {}",
            bz::cond_name(cond),
            want.len()
        ));
        ensure(got == want && count == want.len() as u64, || {
            format!(
                "ZRASF {zrasf}: device reports {count} zones {got:?}, kernel {} zones {want:?}",
                want.len()
            )
        })?;
        ensure(descs.iter().all(|d| d.zs == cond && d.zt == 2), || {
            format!("ZRASF {zrasf}: descriptors not all state {cond:#x}: {descs:?}")
        })?;
    }
    // Partial Report: with room for one descriptor, Number of Zones is 1
    // with the bit set, and every matching zone from SLBA without it.
    for partial in [false, true] {
        let mut buf = vec![0u8; 128];
        passthru::io(
            &f,
            &zone_mgmt_recv_cmd(nsid, 0, 128, 0, partial),
            Data::In(&mut buf),
        )
        .map_err(fail("Zone Management Receive"))?
        .ok("Zone Management Receive")
        .map_err(Verdict::Fail)?;
        let (count, descs) = parse_zone_report(&buf).map_err(Verdict::Fail)?;
        let want = if partial { 1 } else { nr };
        ensure(count == want, || {
            format!("Partial Report {partial}: Number of Zones {count}, expected {want}")
        })?;
        ensure(descs.first().is_some_and(|d| d.zslba == 0), || {
            format!("Partial Report {partial}: first descriptor {descs:?}")
        })?;
    }
    Ok(())
}

/// Zone Append that would cross the zone capacity fails with Zone Boundary
/// Error (ZNS 1.1, 3.4.1: the write would exceed the capacity) and changes
/// nothing; one that fills the zone exactly makes it FULL; a further one
/// fails with Zone Is Full.
fn t_append_capacity(c: &mut Ctx<'_>) -> Step {
    c.needs("zns/reset_all")?;
    let nsid = zns_nsid(c)?;
    let z = seq_zone(c, nsid, 3)?;
    let cap_blocks = z.cap * z.bs / BS;
    if cap_blocks < 8 || (z.cap * z.bs) % BS != 0 {
        return Err(Verdict::skip("needs a capacity of 8+ whole 4 KiB blocks"));
    }
    if cap_blocks > 16384 {
        return Err(Verdict::skip(
            "zone capacity above 64 MiB: too slow to fill",
        ));
    }
    let n = c.ns(nsid)?;
    let (f, gen) = (n.file()?.try_clone().map_err(fail("dup"))?, n.gen);
    // Fill all but two blocks through the kernel.
    let fill = cap_blocks - 2;
    blockio::write_stamped(&f, z.byte(), fill, gen, 64).map_err(fail("fill the zone"))?;
    let wp_lba = z.lba + fill * BS / z.bs;
    expect_zone(
        c,
        &f,
        z.sector,
        bz::BLK_ZONE_COND_IMP_OPEN,
        z.sector_of(wp_lba),
        "after filling",
    )?;
    let d = append(&f, nsid, z.bs, z.lba, wp_lba, 4, gen)?;
    c.diag(format!("append of 4 blocks with 2 left: {d}"));
    ensure(d.status.code() == sc::ZONE_BOUNDARY_ERROR, || {
        format!(
            "append across the zone capacity: {}, expected Zone Boundary Error (0x1b8)",
            d.status
        )
    })?;
    expect_zone(
        c,
        &f,
        z.sector,
        bz::BLK_ZONE_COND_IMP_OPEN,
        z.sector_of(wp_lba),
        "after the failed append",
    )?;
    let d = append(&f, nsid, z.bs, z.lba, wp_lba, 2, gen)?;
    c.diag(format!("append of the last 2 blocks: {d}"));
    d.ok("append up to the capacity").map_err(Verdict::Fail)?;
    ensure(d.result == wp_lba, || {
        format!("assigned LBA {}, expected {wp_lba}", d.result)
    })?;
    expect_zone(
        c,
        &f,
        z.sector,
        bz::BLK_ZONE_COND_FULL,
        z.sector + z.sectors,
        "after filling the capacity",
    )?;
    let d = append(&f, nsid, z.bs, z.lba, z.lba + z.cap, 1, gen)?;
    c.diag(format!("append to the full zone: {d}"));
    ensure(d.status.code() == sc::ZONE_IS_FULL, || {
        format!(
            "append to a FULL zone: {}, expected Zone Is Full (0x1b9)",
            d.status
        )
    })?;
    blockio::read_verify(&f, z.byte(), cap_blocks, gen).map_err(Verdict::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_mgmt_recv_encoding() {
        // 128 bytes = 32 dwords, 0's based 31; ZRASF 2 in bits 15:8,
        // Partial Report bit 16.
        let c = zone_mgmt_recv_cmd(1, 0x1_0000_0200, 128, 2, true);
        assert_eq!(c.opcode, 0x7A);
        assert_eq!(c.cdw, [0x200, 1, 31, 0x0001_0200, 0, 0]);
        assert_eq!(zone_mgmt_recv_cmd(1, 0, 64, 0, false).cdw[3], 0);
    }

    #[test]
    fn zone_report_decoding() {
        let mut b = vec![0u8; 64 + 2 * 64];
        b[0..8].copy_from_slice(&5u64.to_le_bytes()); // more zones than room
        let d = &mut b[64..128];
        d[0] = 0x02;
        d[1] = 0x20; // implicitly opened
        d[8..16].copy_from_slice(&192u64.to_le_bytes());
        d[16..24].copy_from_slice(&256u64.to_le_bytes());
        d[24..32].copy_from_slice(&260u64.to_le_bytes());
        b[129] = 0xE0; // full
        let (nr, descs) = parse_zone_report(&b).unwrap();
        assert_eq!(nr, 5);
        assert_eq!(descs.len(), 2);
        assert_eq!(
            descs[0],
            ZoneDesc {
                zt: 2,
                zs: 2,
                za: 0,
                zcap: 192,
                zslba: 256,
                wp: 260
            }
        );
        assert_eq!(descs[1].zs, 0xE);
        assert!(parse_zone_report(&b[..10]).is_err());
    }

    #[test]
    fn zone_units() {
        let z = Zone {
            sector: 2048,
            sectors: 2048,
            lba: 256,
            cap: 192,
            bs: 4096,
        };
        assert_eq!(z.byte(), 1 << 20);
        assert_eq!(z.sector_of(260), 2080);
    }
}
