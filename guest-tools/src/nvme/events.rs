//! Zones the device takes out of service by itself, and what the host is
//! told about them: the backend's control socket (`zone_condition`) plays
//! the controller setting a zone READ ONLY, then the suite checks through
//! passthrough (NVME_IOCTL_ADMIN_CMD / IO64_CMD):
//!
//! - writes to it fail with Zone Is Read Only (ZNS 1.1, 3.3.7.1), reads
//!   work, the zone reports ZS Dh (and the kernel BLK_ZONE_COND_READONLY);
//! - the Changed Zone List (Log Identifier BFh, ZNS 1.1 4.1.4.1) lists it,
//!   and is empty once read with RAE cleared;
//! - Zone Management Send, Offline (ZSA 05h) turns it OFFLINE (ZS Fh),
//!   reads then fail with Zone Is Offline, and the host's own change is not
//!   listed (ZNS 1.1 Figure 42);
//! - the Error Information log (01h) has an entry for a deliberately bad
//!   command: SQID, CID (from the kernel's nvme_complete_rq trace event),
//!   status with More, Parameter Error Location, opcode;
//! - with Zone Descriptor Changed notices enabled in Asynchronous Event
//!   Configuration bit 27 (which Linux never sets itself: it enables only
//!   the notices it handles), the kernel's own outstanding Asynchronous
//!   Event Request completes with type 2h, information EFh, log page BFh,
//!   and Linux logs "async event result 00bfef02"; further notices wait
//!   until the log is read.
//!
//! Zones used: four EMPTY sequential zones from the end of the namespace
//! (the zns tests use zones 0-3, the copy tests 4 and 5). An OFFLINE zone
//! never comes back, so a later run against the same backend picks others.

use std::{
    ffi::CString,
    fs::{self, File},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    ensure, fail,
    ident::{cns, IdCtrl},
    passthru::{self, admin_op, io_op, Command, Data, Done},
    test,
    zns::{self, Zone},
    Ctx, Step, Test,
};
use crate::{
    blkzoned as bz, blockio,
    kcopy::kmsg::Kmsg,
    ktap::Verdict,
    stamp::{self, BLOCK_SIZE},
};

const BS: u64 = BLOCK_SIZE as u64;

/// Asynchronous Event Configuration (Set/Get Features FID 0Bh).
pub const FID_ASYNC_EVENT_CONFIG: u8 = 0x0B;
/// OAES / AEC bit 8: Namespace Attribute Notices (NVMe Base 2.1).
pub const NS_ATTRIBUTE_NOTICES: u32 = 1 << 8;
/// OAES / AEC bit 27: Zone Descriptor Changed Notices (ZNS 1.1 Figure 44).
pub const ZONE_DESCRIPTOR_CHANGED_NOTICES: u32 = 1 << 27;
/// Log Identifiers.
pub const LID_ERROR_INFORMATION: u8 = 0x01;
pub const LID_SMART: u8 = 0x02;
pub const LID_CHANGED_ZONE_LIST: u8 = 0xBF;
/// Zone States (ZNS 1.1 Figure 37).
pub const ZS_EMPTY: u8 = 0x1;
pub const ZS_READ_ONLY: u8 = 0xD;
pub const ZS_OFFLINE: u8 = 0xF;
/// Status codes (SCT << 8 | SC).
pub const SC_INVALID_LOG_PAGE: u16 = 0x0109;
pub const SC_ZONE_IS_READ_ONLY: u16 = 0x01BA;
pub const SC_ZONE_IS_OFFLINE: u16 = 0x01BB;
pub const SC_INVALID_ZONE_STATE_TRANSITION: u16 = 0x01BF;
/// A log page nobody defines (reserved in NVMe Base 2.1 Figure 202).
pub const LID_UNDEFINED: u8 = 0x42;
/// What Linux logs for a notice it does not handle (nvme_handle_aen_notice
/// in drivers/nvme/host/core.c): Dword 0 of a Zone Descriptor Changed
/// notice, 00BF_EF02h.
pub const ZDC_NOTICE_LOG: &str = "async event result 00bfef02";
/// How long a notice may take to reach the kernel log.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for a notice that must not come.
const QUIET_WAIT: Duration = Duration::from_secs(3);

/// What the events tests learned, for later ones.
#[derive(Debug, Default)]
pub struct State {
    /// EMPTY zones picked: the READ ONLY test zone, then three for notices.
    pub zones: Vec<Zone>,
    /// Asynchronous Event Configuration as the kernel left it.
    pub kernel_aec: Option<u32>,
    /// LBA of the write refused in the READ ONLY zone.
    pub refused_write: Option<u64>,
}

/// The events tests, in order.
pub fn tests() -> Vec<Test> {
    vec![
        test("advertised", t_advertised),
        test("read_only", t_read_only),
        test("changed_zone_list", t_changed_zone_list),
        test("offline", t_offline),
        test("error_log", t_error_log),
        test("zone_notice", t_zone_notice),
    ]
}

fn admin(c: &Ctx<'_>, cmd: &Command, data: Data<'_>, what: &str) -> Result<Done, Verdict> {
    passthru::admin(c.ctrl()?, cmd, data).map_err(fail(what))
}

/// Get Log Page of `len` bytes, with RAE (CDW10 bit 15) as given.
fn get_log(c: &Ctx<'_>, nsid: u32, lid: u8, len: u32, rae: bool) -> Result<Vec<u8>, Verdict> {
    let mut cmd = passthru::get_log_page(nsid, lid, len, 0);
    cmd.cdw[0] |= u32::from(rae) << 15;
    let mut b = vec![0u8; len as usize];
    let what = format!("Get Log Page {lid:#04x} NSID {nsid}");
    admin(c, &cmd, Data::In(&mut b), &what)?
        .ok(&what)
        .map_err(Verdict::Fail)?;
    Ok(b)
}

/// The Changed Zone List of `nsid`: Number of Zone Identifiers (bytes
/// 1:0) and the ZSLBAs listed from byte 8 (ZNS 1.1 Figure 46).
fn changed_zones(c: &Ctx<'_>, nsid: u32, rae: bool) -> Result<(u16, Vec<u64>), Verdict> {
    let b = get_log(c, nsid, LID_CHANGED_ZONE_LIST, 4096, rae)?;
    let n = u16::from_le_bytes([b[0], b[1]]);
    let ids = b[8..]
        .chunks_exact(8)
        .take(usize::from(n).min(511))
        .map(|e| u64::from_le_bytes(e.try_into().unwrap_or([0; 8])))
        .collect();
    Ok((n, ids))
}

fn get_aec(c: &Ctx<'_>) -> Result<u32, Verdict> {
    let what = "Get Features 0Bh (Asynchronous Event Configuration)";
    let d = admin(
        c,
        &passthru::get_features(FID_ASYNC_EVENT_CONFIG),
        Data::None,
        what,
    )?
    .ok(what)
    .map_err(Verdict::Fail)?;
    Ok(d.dw0())
}

fn set_aec(c: &Ctx<'_>, aec: u32) -> Step {
    let what = format!("Set Features 0Bh (Asynchronous Event Configuration) to {aec:#x}");
    admin(
        c,
        &passthru::set_features(FID_ASYNC_EVENT_CONFIG).dw(11, aec),
        Data::None,
        &what,
    )?
    .ok(&what)
    .map_err(Verdict::Fail)?;
    Ok(())
}

/// The device's descriptor of the zone starting at `zslba` (Zone
/// Management Receive, room for one descriptor).
fn zone_desc(f: &File, nsid: u32, zslba: u64) -> Result<zns::ZoneDesc, Verdict> {
    let mut b = vec![0u8; 128];
    passthru::io(
        f,
        &zns::zone_mgmt_recv_cmd(nsid, zslba, 128, 0, true),
        Data::In(&mut b),
    )
    .map_err(fail("Zone Management Receive"))?
    .ok("Zone Management Receive")
    .map_err(Verdict::Fail)?;
    let (_, descs) = zns::parse_zone_report(&b).map_err(Verdict::Fail)?;
    descs
        .first()
        .copied()
        .filter(|d| d.zslba == zslba)
        .ok_or_else(|| Verdict::fail(format!("no descriptor for the zone at LBA {zslba}")))
}

/// The ZNS namespace and the zones picked for these tests (picked once).
fn picks(c: &mut Ctx<'_>) -> Result<(u32, Vec<Zone>), Verdict> {
    c.needs("zns/report_zones")?;
    let nsid = zns::zns_nsid(c)?;
    if c.events.zones.len() == 4 {
        return Ok((nsid, c.events.zones.clone()));
    }
    let n = c.ns(nsid)?;
    let f = n.file()?.try_clone().map_err(fail("dup"))?;
    let nr = n.spec.nr_zones().unwrap_or(0);
    let mut zones = Vec::new();
    for k in (6..nr).rev() {
        let Ok(z) = zns::seq_zone(c, nsid, k) else {
            continue;
        };
        if z.cap * z.bs < 2 * BS {
            return Err(Verdict::skip("zone capacity below two 4 KiB blocks"));
        }
        if zone_desc(&f, nsid, z.lba)?.zs == ZS_EMPTY {
            zones.push(z);
        }
        if zones.len() == 4 {
            break;
        }
    }
    ensure(zones.len() == 4, || {
        format!(
            "{} EMPTY sequential zones past the six other tests use, 4 needed",
            zones.len()
        )
    })?;
    c.diag(format!(
        "zones at LBA {}",
        zones
            .iter()
            .map(|z| z.lba.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    c.events.zones = zones.clone();
    Ok((nsid, zones))
}

/// Ask the backend to set the zone at `lba` of `nsid` to `cond`, as the
/// controller would on its own.
fn device_sets(c: &mut Ctx<'_>, nsid: u32, lba: u64, cond: &str, want: &str) -> Step {
    let dev = c.ns(nsid)?.ctl_name();
    let got = c
        .control()?
        .zone_condition(&dev, lba, cond)
        .map_err(Verdict::Fail)?;
    ensure(got == want, || {
        format!("control zone_condition {cond} of {dev} LBA {lba}: zone is {got}, expected {want}")
    })
}

fn t_advertised(c: &mut Ctx<'_>) -> Step {
    c.needs("connect/controller")?;
    let id = IdCtrl::parse(&super::identify(c, 0, cns::CONTROLLER, 0)?).map_err(Verdict::Fail)?;
    let aec = get_aec(c)?;
    c.diag(format!(
        "OAES {:#010x} AERL {} ELPE {}; the kernel set AEC {aec:#010x} (Zone Descriptor Changed \
         notices {})",
        id.oaes,
        id.aerl,
        id.elpe,
        if aec & ZONE_DESCRIPTOR_CHANGED_NOTICES != 0 {
            "on"
        } else {
            "off"
        }
    ));
    c.events.kernel_aec = Some(aec);
    ensure(id.oaes & ZONE_DESCRIPTOR_CHANGED_NOTICES != 0, || {
        format!(
            "OAES {:#x} lacks bit 27 (Zone Descriptor Changed Notices)",
            id.oaes
        )
    })?;
    ensure(id.oaes & NS_ATTRIBUTE_NOTICES != 0, || {
        format!(
            "OAES {:#x} lacks bit 8 (Namespace Attribute Notices)",
            id.oaes
        )
    })?;
    // Bits 7:0 are SMART / Health critical warnings, always supported.
    ensure(aec & !(id.oaes | 0xFF) == 0, || {
        format!(
            "the kernel enabled notices the controller does not offer: AEC {aec:#x}, OAES {:#x}",
            id.oaes
        )
    })
}

fn t_read_only(c: &mut Ctx<'_>) -> Step {
    let (nsid, zones) = picks(c)?;
    let z = zones[0];
    let n = c.ns(nsid)?;
    let (f, gen) = (n.file()?.try_clone().map_err(fail("dup"))?, n.gen);
    let blocks = 2;
    zns::write_passthru(&f, nsid, z.bs, z.lba, blocks, gen)?
        .ok("Write at the zone start")
        .map_err(Verdict::Fail)?;
    device_sets(c, nsid, z.lba, "read_only", "read-only")?;
    let d = zone_desc(&f, nsid, z.lba)?;
    ensure(d.zs == ZS_READ_ONLY, || {
        format!(
            "zone at LBA {} has ZS {:#x}, expected Dh (Read Only)",
            z.lba, d.zs
        )
    })?;
    let k = bz::report_one(&f, z.sector).map_err(fail("BLKREPORTZONE"))?;
    c.diag(format!("kernel report: {k}"));
    ensure(k.cond == bz::BLK_ZONE_COND_READONLY, || {
        format!(
            "the kernel reports {}, expected READONLY",
            bz::cond_name(k.cond)
        )
    })?;
    // Writing at the old write pointer, and appending: Zone Is Read Only.
    let wp = z.lba + blocks * BS / z.bs;
    let d = zns::write_passthru(&f, nsid, z.bs, wp, 1, gen)?;
    c.diag(format!("Write at LBA {wp}: {d}"));
    ensure(d.status.code() == SC_ZONE_IS_READ_ONLY, || {
        format!(
            "Write to a READ ONLY zone: {}, expected Zone Is Read Only (0x1ba)",
            d.status
        )
    })?;
    c.events.refused_write = Some(wp);
    let d = zns::append(&f, nsid, z.bs, z.lba, wp, 1, gen)?;
    ensure(d.status.code() == SC_ZONE_IS_READ_ONLY, || {
        format!(
            "Zone Append to a READ ONLY zone: {}, expected Zone Is Read Only (0x1ba)",
            d.status
        )
    })?;
    // The data written before stays readable.
    let mut buf = blockio::AlignedBuf::new(blocks as usize * BLOCK_SIZE);
    let nlb = blocks * BS / z.bs;
    passthru::io(
        &f,
        &Command::new(io_op::READ, nsid)
            .qw(10, z.lba)
            .dw(12, (nlb - 1) as u32),
        Data::In(buf.as_mut_slice()),
    )
    .map_err(fail("Read passthrough"))?
    .ok("Read of a READ ONLY zone")
    .map_err(Verdict::Fail)?;
    stamp::verify_range(buf.as_slice(), z.lba * z.bs / BS, gen)
        .map_err(|(i, e)| Verdict::fail(format!("block {i} read back from the zone: {e}")))
}

fn t_changed_zone_list(c: &mut Ctx<'_>) -> Step {
    c.needs("events/read_only")?;
    let (nsid, zones) = picks(c)?;
    let z = zones[0].lba;
    // RAE set: listed and kept.
    let (n, ids) = changed_zones(c, nsid, true)?;
    c.diag(format!("with RAE: {n} zone IDs {ids:?}"));
    ensure(ids.contains(&z), || {
        format!("Changed Zone List ({n} IDs {ids:?}) lacks the zone at LBA {z}")
    })?;
    // RAE cleared: the same list (the only zone the device changed), then
    // an empty one.
    let (n, ids) = changed_zones(c, nsid, false)?;
    ensure(n == 1 && ids == [z], || {
        format!("Changed Zone List has {n} IDs {ids:?}, expected [{z}]")
    })?;
    let (n, ids) = changed_zones(c, nsid, false)?;
    ensure(n == 0, || {
        format!("after a read without RAE the list still has {n} IDs {ids:?}")
    })
}

fn t_offline(c: &mut Ctx<'_>) -> Step {
    c.needs("events/read_only")?;
    let (nsid, zones) = picks(c)?;
    let (z, other) = (zones[0], zones[1]);
    let f = c.ns(nsid)?.file()?.try_clone().map_err(fail("dup"))?;
    let offline = |lba: u64| {
        Command::new(io_op::ZONE_MGMT_SEND, nsid)
            .qw(10, lba)
            .dw(13, 0x05)
    };
    // Offline of an EMPTY zone: Invalid Zone State Transition.
    let d =
        passthru::io(&f, &offline(other.lba), Data::None).map_err(fail("Zone Management Send"))?;
    ensure(d.status.code() == SC_INVALID_ZONE_STATE_TRANSITION, || {
        format!(
            "Offline of an EMPTY zone: {}, expected Invalid Zone State Transition (0x1bf)",
            d.status
        )
    })?;
    passthru::io(&f, &offline(z.lba), Data::None)
        .map_err(fail("Zone Management Send"))?
        .ok("Zone Management Send, Offline of a READ ONLY zone")
        .map_err(Verdict::Fail)?;
    let d = zone_desc(&f, nsid, z.lba)?;
    ensure(d.zs == ZS_OFFLINE, || {
        format!(
            "zone at LBA {} has ZS {:#x}, expected Fh (Offline)",
            z.lba, d.zs
        )
    })?;
    let k = bz::report_one(&f, z.sector).map_err(fail("BLKREPORTZONE"))?;
    ensure(k.cond == bz::BLK_ZONE_COND_OFFLINE, || {
        format!(
            "the kernel reports {}, expected OFFLINE",
            bz::cond_name(k.cond)
        )
    })?;
    let mut buf = blockio::AlignedBuf::new(BLOCK_SIZE);
    let d = passthru::io(
        &f,
        &Command::new(io_op::READ, nsid)
            .qw(10, z.lba)
            .dw(12, (BS / z.bs - 1) as u32),
        Data::In(buf.as_mut_slice()),
    )
    .map_err(fail("Read passthrough"))?;
    c.diag(format!("Read of the OFFLINE zone: {d}"));
    ensure(d.status.code() == SC_ZONE_IS_OFFLINE, || {
        format!(
            "Read of an OFFLINE zone: {}, expected Zone Is Offline (0x1bb)",
            d.status
        )
    })?;
    // The host's own change is not a Zone Descriptor Changed event.
    let (n, ids) = changed_zones(c, nsid, false)?;
    ensure(n == 0, || {
        format!("the host's Offline was listed in the Changed Zone List: {n} IDs {ids:?}")
    })
}

/// One Error Information log entry (NVMe Base 2.1, "Error Information Log
/// Entry Data Structure").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ErrorEntry {
    count: u64,
    sqid: u16,
    cid: u16,
    /// Status field: bits 15:1 status, bit 0 phase tag.
    status: u16,
    location: u16,
    lba: u64,
    nsid: u32,
    csi: u8,
    opcode: u8,
    version: u8,
}

impl ErrorEntry {
    fn parse(e: &[u8]) -> Self {
        let u16_at = |i: usize| u16::from_le_bytes([e[i], e[i + 1]]);
        let u64_at = |i: usize| u64::from_le_bytes(e[i..i + 8].try_into().unwrap_or([0; 8]));
        ErrorEntry {
            count: u64_at(0),
            sqid: u16_at(8),
            cid: u16_at(10),
            status: u16_at(12),
            location: u16_at(14),
            lba: u64_at(16),
            nsid: u32::from_le_bytes([e[24], e[25], e[26], e[27]]),
            csi: e[30],
            opcode: e[31],
            version: e[63],
        }
    }

    /// The completion status as the ioctl returns it (bits 14:0).
    fn status(&self) -> passthru::Status {
        passthru::Status(self.status >> 1)
    }
}

fn t_error_log(c: &mut Ctx<'_>) -> Step {
    c.needs("events/advertised")?;
    let trace = NvmeTrace::start();
    if let Err(e) = &trace {
        c.diag(format!(
            "nvme trace events unavailable ({e}): the CID is not checked"
        ));
    }
    let smart = |c: &Ctx<'_>| -> Result<u64, Verdict> {
        let s = get_log(c, 0xFFFF_FFFF, LID_SMART, 512, false)?;
        Ok(u64::from_le_bytes(s[176..184].try_into().unwrap_or([0; 8])))
    };
    let before = smart(c)?;
    // A Get Log Page of an undefined log page: Invalid Log Page.
    let d = admin(
        c,
        &passthru::get_log_page(0, LID_UNDEFINED, 512, 0),
        Data::In(&mut vec![0u8; 512]),
        "Get Log Page 42h",
    )?;
    c.diag(format!("Get Log Page {LID_UNDEFINED:#04x}: {d}"));
    let traced = trace.as_ref().ok().map(|t| {
        t.completions()
            .into_iter()
            .rev()
            .find(|e| e.qid == 0 && e.status & 0x7FF == SC_INVALID_LOG_PAGE)
    });
    drop(trace);
    ensure(
        d.status.code() == SC_INVALID_LOG_PAGE && d.status.more(),
        || format!("{}: expected Invalid Log Page (0x109) with More", d.status),
    )?;
    let b = get_log(c, 0, LID_ERROR_INFORMATION, 4096, false)?;
    let after = smart(c)?;
    let entries: Vec<ErrorEntry> = b
        .chunks_exact(64)
        .map(ErrorEntry::parse)
        .take_while(|e| e.count != 0)
        .collect();
    c.diag(format!(
        "{} entries, newest count {}; SMART Number of Error Information Log Entries {before} -> \
         {after}",
        entries.len(),
        entries.first().map_or(0, |e| e.count)
    ));
    ensure(entries.windows(2).all(|w| w[0].count > w[1].count), || {
        "entries are not newest first".into()
    })?;
    ensure(
        entries.first().map(|e| e.count) == Some(after) && after > before,
        || {
            format!(
                "newest entry count {:?}, SMART count {after} (was {before})",
                entries.first().map(|e| e.count)
            )
        },
    )?;
    let e = entries
        .iter()
        .find(|e| e.opcode == admin_op::GET_LOG_PAGE && e.status().code() == SC_INVALID_LOG_PAGE)
        .copied()
        .ok_or_else(|| {
            Verdict::fail("no entry for the Get Log Page refused with Invalid Log Page")
        })?;
    c.diag(format!("entry: {e:x?}"));
    ensure(
        e.count > before
            && e.sqid == 0
            && e.status().more()
            && e.status & 1 == 0
            && e.location == 40
            && e.version == 1,
        || {
            format!(
                "entry {e:x?}: expected a count above {before}, SQID 0, More set, phase 0, \
                 location 40 (CDW10, the LID), log page version 1"
            )
        },
    )?;
    match traced {
        Some(Some(t)) => {
            ensure(t.cid == e.cid, || {
                format!(
                    "the kernel sent the command as CID {}, the entry says {}",
                    t.cid, e.cid
                )
            })?;
            c.diag(format!(
                "CID {:#x} as the kernel's nvme_complete_rq trace shows",
                t.cid
            ));
        }
        Some(None) => {
            return Err(Verdict::fail(
                "the nvme_complete_rq trace shows no admin completion with Invalid Log Page",
            ))
        }
        None => {}
    }
    // The write refused in the READ ONLY zone, on an I/O queue.
    if let Some(lba) = c.events.refused_write {
        let nsid = zns::zns_nsid(c)?;
        let w = entries
            .iter()
            .find(|e| e.opcode == io_op::WRITE && e.lba == lba)
            .copied()
            .ok_or_else(|| Verdict::fail(format!("no entry for the Write at LBA {lba}")))?;
        c.diag(format!("write entry: {w:x?}"));
        ensure(
            w.sqid >= 1
                && w.nsid == nsid
                && w.csi == 2
                && w.status().code() == SC_ZONE_IS_READ_ONLY
                && w.location == 0xFFFF,
            || {
                format!(
                    "write entry {w:x?}: expected an I/O SQID, NSID {nsid}, CSI 2, Zone Is Read \
                     Only, no parameter location"
                )
            },
        )?;
    }
    Ok(())
}

/// Kernel log lines since `k` started that show the notice.
fn notices(k: &mut Kmsg, seen: &mut Vec<String>) -> usize {
    let new: Vec<String> = k
        .since()
        .into_iter()
        .filter(|l| l.contains(ZDC_NOTICE_LOG))
        .collect();
    let n = new.len();
    seen.extend(new);
    n
}

/// Wait up to `limit` for a notice in the kernel log.
fn wait_notice(k: &mut Kmsg, seen: &mut Vec<String>, limit: Duration) -> (usize, Duration) {
    let start = Instant::now();
    loop {
        let n = notices(k, seen);
        if n > 0 || start.elapsed() > limit {
            return (n, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn t_zone_notice(c: &mut Ctx<'_>) -> Step {
    c.needs("events/advertised")?;
    let kernel_aec = c
        .events
        .kernel_aec
        .ok_or_else(|| Verdict::skip("needs events/advertised"))?;
    let (nsid, zones) = picks(c)?;
    let (a, b, z3) = (zones[1].lba, zones[2].lba, zones[3].lba);
    // Clear what earlier tests left in the list.
    changed_zones(c, nsid, false)?;
    let mut k = Kmsg::start();
    set_aec(c, kernel_aec | ZONE_DESCRIPTOR_CHANGED_NOTICES)?;
    let res = notice_steps(c, nsid, (a, b, z3), &mut k);
    let restore = set_aec(c, kernel_aec);
    res?;
    restore
}

fn notice_steps(c: &mut Ctx<'_>, nsid: u32, (a, b, z3): (u64, u64, u64), k: &mut Kmsg) -> Step {
    let mut seen = Vec::new();
    let aec = get_aec(c)?;
    ensure(aec & ZONE_DESCRIPTOR_CHANGED_NOTICES != 0, || {
        format!("AEC reads back {aec:#x} after setting bit 27")
    })?;
    // The first change: the kernel's outstanding request completes.
    device_sets(c, nsid, a, "read_only", "read-only")?;
    let (n, took) = wait_notice(k, &mut seen, NOTICE_TIMEOUT);
    c.diag(format!(
        "zone {a} READ ONLY: {n} notice(s) after {took:?}: {seen:?}"
    ));
    ensure(n == 1, || {
        format!(
            "expected one \"{ZDC_NOTICE_LOG}\" in the kernel log within {NOTICE_TIMEOUT:?}, \
             saw {n} (the kernel sends Asynchronous Event Requests only when it enabled a notice \
             it handles; AEC was {aec:#x})"
        )
    })?;
    // A second change before the log is read: masked.
    device_sets(c, nsid, b, "read_only", "read-only")?;
    std::thread::sleep(QUIET_WAIT);
    let n = notices(k, &mut seen);
    ensure(n == 0, || {
        format!("a second notice came before the Changed Zone List was read: {seen:?}")
    })?;
    let (n, ids) = changed_zones(c, nsid, false)?;
    ensure(n == 2 && ids == [a, b], || {
        format!("Changed Zone List has {n} IDs {ids:?}, expected [{a}, {b}]")
    })?;
    // Read without RAE: the next change is announced again.
    device_sets(c, nsid, z3, "read_only", "read-only")?;
    let (n, took) = wait_notice(k, &mut seen, NOTICE_TIMEOUT);
    c.diag(format!(
        "zone {z3} READ ONLY after the log was read: {n} notice(s) after {took:?}"
    ));
    ensure(n == 1, || {
        format!("no notice for a change after the Changed Zone List was read: {seen:?}")
    })?;
    let (n, ids) = changed_zones(c, nsid, false)?;
    ensure(n == 1 && ids == [z3], || {
        format!("Changed Zone List has {n} IDs {ids:?}, expected [{z3}]")
    })
}

/// One `nvme_complete_rq` trace record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TracedCompletion {
    qid: u16,
    cid: u16,
    /// `nvme_req(req)->status`: the 15-bit status field.
    status: u16,
}

/// Parse `... nvme_complete_rq: nvme0: [disk=nvme0n1, ]qid=0, cmdid=12,
/// res=0x0, retries=0, flags=0x2, status=0x6109` (drivers/nvme/host/trace.h).
fn parse_completion(line: &str) -> Option<TracedCompletion> {
    let rest = &line[line.find("nvme_complete_rq:")?..];
    let field = |key: &str| -> Option<&str> {
        let at = rest.find(key)? + key.len();
        let v = &rest[at..];
        Some(v[..v.find([',', ' ']).unwrap_or(v.len())].trim())
    };
    Some(TracedCompletion {
        qid: field(" qid=")?.parse().ok()?,
        cid: field(" cmdid=")?.parse().ok()?,
        status: u16::from_str_radix(field(" status=")?.trim_start_matches("0x"), 16).ok()?,
    })
}

/// The kernel's nvme_complete_rq trace event, on while this lives.
struct NvmeTrace {
    dir: PathBuf,
}

impl NvmeTrace {
    const EVENT: &'static str = "events/nvme/nvme_complete_rq/enable";

    fn start() -> Result<Self, String> {
        let dir = tracefs()?;
        if !dir.join(Self::EVENT).exists() {
            return Err(format!("no {}", dir.join(Self::EVENT).display()));
        }
        // Opening `trace` for writing with truncation clears the buffer.
        File::create(dir.join("trace")).map_err(|e| format!("clear trace: {e}"))?;
        fs::write(dir.join(Self::EVENT), "1").map_err(|e| format!("enable: {e}"))?;
        fs::write(dir.join("tracing_on"), "1").map_err(|e| format!("tracing_on: {e}"))?;
        Ok(NvmeTrace { dir })
    }

    fn completions(&self) -> Vec<TracedCompletion> {
        fs::read_to_string(self.dir.join("trace"))
            .unwrap_or_default()
            .lines()
            .filter_map(parse_completion)
            .collect()
    }
}

impl Drop for NvmeTrace {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join(Self::EVENT), "0");
    }
}

/// The tracefs mount, mounted at /sys/kernel/tracing if nothing is.
fn tracefs() -> Result<PathBuf, String> {
    for d in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(d).join("trace").exists() {
            return Ok(PathBuf::from(d));
        }
    }
    let target = "/sys/kernel/tracing";
    if !Path::new(target).is_dir() {
        return Err(format!("{target} does not exist (no CONFIG_TRACING?)"));
    }
    let (src, dst, fstype) = (
        CString::new("nodev").map_err(|e| e.to_string())?,
        CString::new(target).map_err(|e| e.to_string())?,
        CString::new("tracefs").map_err(|e| e.to_string())?,
    );
    // SAFETY: mount(2) with three NUL-terminated strings that outlive the
    // call, no flags and no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mount tracefs on {target}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(PathBuf::from(target))
}

#[cfg(test)]
mod tests;
