//! Copy (19h) through `NVME_IOCTL_IO64_CMD`, per the NVM Command Set 1.1,
//! 3.2.2: CDW10-11 SDLBA, CDW12 NR bits 7:0 (0's based) and Descriptor
//! Format bits 11:8; the data is NR+1 Source Range Entries:
//!
//! | format | size | SNSID | SLBA  | NLB (0's based) |
//! |--------|------|-------|-------|-----------------|
//! | 0h     | 32   | -     | 15:8  | 17:16           |
//! | 1h     | 40   | -     | 15:8  | 17:16           |
//! | 2h     | 32   | 3:0   | 15:8  | 17:16           |
//! | 3h     | 40   | 3:0   | 15:8  | 17:16           |
//!
//! (Figures 'Copy - Source Range Entries Descriptor Format 0h..3h'; the
//! protection information fields stay zero.) Formats 2h/3h name another
//! namespace as the source and must be enabled by the host in the Host
//! Behavior Support feature (16h), bytes 5:4 CDFE, bit n for format n
//! (NVMe Base 2.1, 5.27.1.18).
//!
//! Every copy is verified twice: the destination read back through the
//! kernel must hold exactly the source's stamped blocks, and the backend's
//! CRC32C of the stored destination range (control `checksum`) must match
//! them. Offload is proven by the backend's counters: the destination's
//! `copied_bytes` grows by the copied size while `read_bytes` and
//! `written_bytes` of both namespaces stay put, and the fabric carries only
//! the descriptors.

use std::fs::File;

use super::{
    ensure, fail,
    passthru::{self, io_op, sc, Command, Data, Done},
    test,
    zns::{self, expect_zone, seq_zone},
    Ctx, Step, Test,
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    blockio,
    cmdline::NsKind,
    control,
    ktap::Verdict,
    stamp::{self, BLOCK_SIZE},
};

const BS: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;

/// Host Behavior Support feature identifier.
pub const FID_HOST_BEHAVIOR: u8 = 0x16;
/// Size of the Host Behavior Support data structure.
pub const HBS_LEN: usize = 512;

/// One source range, in logical blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Source namespace (formats 2h/3h only).
    pub snsid: u32,
    pub slba: u64,
    /// Number of logical blocks, 1-based (encoded 0's based).
    pub nlb: u32,
}

/// Descriptor size of a format: 32 bytes for 0h/2h, 40 for 1h/3h.
pub fn descriptor_len(format: u8) -> usize {
    if format % 2 == 0 {
        32
    } else {
        40
    }
}

/// Encode the Source Range Entries. An NLB of 0 or above 65536 cannot be
/// encoded: it is an error.
pub fn encode(format: u8, ranges: &[Range]) -> Result<Vec<u8>, String> {
    if format > 3 {
        return Err(format!("descriptor format {format} is not defined"));
    }
    let len = descriptor_len(format);
    let mut out = vec![0u8; len * ranges.len()];
    for (d, r) in out.chunks_exact_mut(len).zip(ranges) {
        let nlb = r
            .nlb
            .checked_sub(1)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| format!("NLB {} not in 1..=65536", r.nlb))?;
        if format >= 2 {
            d[0..4].copy_from_slice(&r.snsid.to_le_bytes());
        }
        d[8..16].copy_from_slice(&r.slba.to_le_bytes());
        d[16..18].copy_from_slice(&nlb.to_le_bytes());
    }
    Ok(out)
}

/// The Copy command for `nr` ranges of `format` to `sdlba` of `nsid`.
pub fn copy_cmd(nsid: u32, sdlba: u64, nr: usize, format: u8) -> Result<Command, String> {
    let nr0 = nr
        .checked_sub(1)
        .filter(|&v| v <= 255)
        .ok_or_else(|| format!("{nr} ranges not in 1..=256"))?;
    Ok(Command::new(io_op::COPY, nsid)
        .qw(10, sdlba)
        .dw(12, nr0 as u32 | (u32::from(format & 0xF) << 8)))
}

/// What the copy tests share.
#[derive(Debug, Default)]
pub struct State {
    /// The Host Behavior Support data as found (restored at the end).
    pub hbs_orig: Option<Vec<u8>>,
    /// Stamped source blocks written in the NVM namespace, from block 0.
    pub nvm_src: Option<u64>,
    /// Stamped source blocks at the start of ZNS sequential zone 4.
    pub zns_src: Option<u64>,
    /// Blocks copied into ZNS sequential zone 5 so far.
    pub zns_dst: Option<u64>,
    /// What those blocks should hold: (block number, generation).
    pub zns_dst_exp: Vec<(u64, u64)>,
}

/// The copy tests, in order.
pub fn tests() -> Vec<Test> {
    vec![
        test("supported", t_supported),
        test("sources", t_sources),
        test("single_range", t_single),
        test("many_ranges", t_many),
        test("max_ranges", t_max_ranges),
        test("into_zone", t_into_zone),
        test("not_at_write_pointer", t_not_at_wp),
        test("zone_capacity", t_zone_capacity),
        test("limit_mssrl", t_limit_mssrl),
        test("limit_msrc", t_limit_msrc),
        test("limit_mcl", t_limit_mcl),
        test("format1", t_format1),
        test("cross_ns_refused", t_cross_refused),
        test("cross_ns", t_cross_ns),
        test("partial_failure", t_partial),
        test("offload", t_offload),
        test("fault_read_media_error", t_fault_read),
        test("fault_copy_fail", t_fault_copy_fail),
        test("fault_copy_media_error", t_fault_copy_media),
    ]
}

// Layout of the NVM namespace, in 4 KiB blocks.
const NVM_SRC_BLOCKS: u64 = 256;
const DST_SINGLE: u64 = 1024;
const DST_MANY: u64 = 1280;
const DST_MAX: u64 = 1536;
const DST_LIMITS: u64 = 2048;
const DST_FORMAT1: u64 = 2304;
const DST_CROSS: u64 = 2560;
const DST_PARTIAL: u64 = 2816;
const DST_OFFLOAD: u64 = 3072;
const DST_FAULT: u64 = DST_OFFLOAD + NVM_SRC_BLOCKS;
const DST_FAULT_MEDIA: u64 = DST_FAULT + 64;
/// The NVM namespace must hold the layout above.
const NVM_MIN_BLOCKS: u64 = DST_FAULT_MEDIA + 64;
/// Stamped blocks written at the start of the ZNS source zone.
const ZNS_SRC_BLOCKS: u64 = 32;

/// A copy expressed in 4 KiB blocks: (source NSID, first block, count).
type BlockRange = (u32, u64, u64);

/// The namespace's copy limits from Identify: (MSSRL, MCL, MSRC+1).
fn limits(c: &Ctx<'_>, nsid: u32) -> Result<(u64, u64, u64), Verdict> {
    let id = c
        .ns(nsid)?
        .id
        .ok_or_else(|| Verdict::skip(format!("needs identify/ns{nsid}")))?;
    Ok((
        u64::from(id.mssrl),
        u64::from(id.mcl),
        u64::from(id.msrc) + 1,
    ))
}

fn nvm(c: &Ctx<'_>) -> Result<u32, Verdict> {
    c.needs("copy/supported")?;
    let nsid = c.first(NsKind::Nvm)?;
    c.ns(nsid)?.file()?;
    Ok(nsid)
}

fn nvm_with_sources(c: &Ctx<'_>) -> Result<u32, Verdict> {
    let nsid = nvm(c)?;
    if c.copy.nvm_src.is_none() {
        return Err(Verdict::skip("needs copy/sources (NVM)"));
    }
    Ok(nsid)
}

/// Turn block ranges into LBA ranges for namespace block size `bs`.
fn to_lba(ranges: &[BlockRange], lps: u64) -> Result<Vec<Range>, Verdict> {
    ranges
        .iter()
        .map(|&(snsid, b, n)| {
            Ok(Range {
                snsid,
                slba: b * lps,
                nlb: u32::try_from(n * lps).map_err(|_| Verdict::fail("range too long"))?,
            })
        })
        .collect()
}

/// The stamped blocks a copy of `ranges` should leave at its destination:
/// (block number, generation) in order.
fn expected(c: &Ctx<'_>, ranges: &[BlockRange]) -> Result<Vec<(u64, u64)>, Verdict> {
    let mut v = Vec::new();
    for &(nsid, b, n) in ranges {
        let gen = c.ns(nsid)?.gen;
        v.extend((b..b + n).map(|x| (x, gen)));
    }
    Ok(v)
}

fn expected_bytes(exp: &[(u64, u64)]) -> Result<Vec<u8>, Verdict> {
    let mut buf = vec![0u8; exp.len() * BLOCK_SIZE];
    for (chunk, &(b, g)) in buf.chunks_exact_mut(BLOCK_SIZE).zip(exp) {
        stamp::fill(chunk, b, g).map_err(fail("stamp"))?;
    }
    Ok(buf)
}

fn read_blocks(f: &File, block: u64, n: u64) -> Result<blockio::AlignedBuf, Verdict> {
    use std::os::unix::fs::FileExt;
    let len = n as usize * BLOCK_SIZE;
    let mut buf = blockio::AlignedBuf::new(len);
    let got = f
        .read_at(buf.as_mut_slice(), block * BS)
        .map_err(fail(&format!("read of {n} blocks at block {block}")))?;
    ensure(got == len, || format!("short read: {got} of {len} bytes"))?;
    Ok(buf)
}

/// Check the destination: read through the kernel and via the backend's
/// checksum.
fn verify_dest(c: &mut Ctx<'_>, nsid: u32, block: u64, exp: &[(u64, u64)]) -> Step {
    let n = c.ns(nsid)?;
    let f = n.file()?.try_clone().map_err(fail("dup"))?;
    let lps = n.lbas_per_stamp();
    let name = n.ctl_name();
    let buf = read_blocks(&f, block, exp.len() as u64)?;
    for (i, (chunk, &(b, g))) in buf.as_slice().chunks_exact(BLOCK_SIZE).zip(exp).enumerate() {
        stamp::verify(chunk, b, g).map_err(|e| {
            Verdict::fail(format!(
                "ns{nsid} block {} (copy block {i}) should hold source block {b}: {e}",
                block + i as u64
            ))
        })?;
    }
    if let Ok(ctl) = c.control() {
        let want = expected_bytes(exp)?;
        let sum = ctl
            .checksum(&name, block * lps, exp.len() as u64 * lps)
            .map_err(Verdict::Fail)?;
        let crc = crc32c::crc32c(&want);
        ensure(sum.crc == crc, || {
            format!(
                "backend CRC32C of {name} LBA {} +{}: {:#010x}, expected {crc:#010x}",
                block * lps,
                exp.len() as u64 * lps,
                sum.crc
            )
        })?;
    }
    Ok(())
}

/// Backend counters around one command.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub devs: Vec<(String, control::DevStats)>,
    /// Fabric data bytes (both ways, every command class) and all bytes.
    pub fabric: Option<Fabric>,
}

fn snapshot(c: &mut Ctx<'_>, devs: &[String]) -> Option<Snapshot> {
    let ctl = c.control.as_mut()?;
    let reply = ctl.request(r#"{"cmd":"stats"}"#).ok()?;
    let mut s = Snapshot {
        fabric: parse_fabric(&reply),
        ..Snapshot::default()
    };
    for d in devs {
        s.devs
            .push((d.clone(), control::parse_stats(&reply, d).ok()?));
    }
    Some(s)
}

/// The fabric counters of a `stats` reply (section `fabric`, from the
/// NVMe/TCP transport): data bytes and all bytes both ways, and the Copy
/// command class's commands and data bytes each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fabric {
    pub data: u64,
    pub total: u64,
    pub copy_cmds: u64,
    pub copy_h2c: u64,
    pub copy_c2h: u64,
}

/// Parse the `fabric` section of a `stats` reply.
pub fn parse_fabric(reply: &str) -> Option<Fabric> {
    let sect = control::find_value(reply, "fabric")?;
    let num = |obj: &str, k: &str| control::find_value(obj, k)?.trim().parse::<u64>().ok();
    let copy = control::find_value(sect, "copy")?;
    Some(Fabric {
        data: num(sect, "data_bytes")?,
        total: num(sect, "total_bytes")?,
        copy_cmds: num(copy, "commands")?,
        copy_h2c: num(copy, "data_h2c")?,
        copy_c2h: num(copy, "data_c2h")?,
    })
}

/// Check the counters say the copy of `bytes` into `dst` was offloaded:
/// `copied_bytes` of `dst` grew by exactly `bytes`, no device read or
/// wrote through the host path, and the fabric carried at most 1% of it.
fn check_offload(
    c: &mut Ctx<'_>,
    before: Option<Snapshot>,
    after: Option<Snapshot>,
    dst: &str,
    bytes: u64,
    desc_bytes: u64,
) -> Step {
    let (Some(b), Some(a)) = (before, after) else {
        if c.control.is_some() {
            return Err(Verdict::fail("control stats unavailable"));
        }
        c.diag("no control socket: offload counters not checked");
        return Ok(());
    };
    for ((name, x), (_, y)) in b.devs.iter().zip(&a.devs) {
        let d = (
            y.read_bytes.wrapping_sub(x.read_bytes),
            y.written_bytes.wrapping_sub(x.written_bytes),
            y.copied_bytes.wrapping_sub(x.copied_bytes),
        );
        c.diag(format!(
            "{name}: read +{} written +{} copied +{}",
            d.0, d.1, d.2
        ));
        ensure(d.0 == 0 && d.1 == 0, || {
            format!(
                "{name}: the copy read {} and wrote {} bytes through the host path",
                d.0, d.1
            )
        })?;
        let want = if name == dst { bytes } else { 0 };
        ensure(d.2 == want, || {
            format!("{name}: copied_bytes grew by {}, expected {want}", d.2)
        })?;
    }
    match (b.fabric, a.fabric) {
        (Some(f0), Some(f1)) => {
            let data = f1.data.wrapping_sub(f0.data);
            let all = f1.total.wrapping_sub(f0.total);
            let cmds = f1.copy_cmds.wrapping_sub(f0.copy_cmds);
            let h2c = f1.copy_h2c.wrapping_sub(f0.copy_h2c);
            let c2h = f1.copy_c2h.wrapping_sub(f0.copy_c2h);
            c.diag(format!(
                "fabric: {data} data bytes, {all} bytes in all ({:.3}% of the {bytes} bytes \
                 copied); Copy class: {cmds} commands, {h2c} bytes h2c, {c2h} bytes c2h",
                all as f64 * 100.0 / bytes.max(1) as f64
            ));
            ensure(cmds == 1 && h2c == desc_bytes && c2h == 0, || {
                format!(
                    "the Copy moved {h2c} bytes host to controller and {c2h} back in {cmds} \
                     commands, expected its {desc_bytes} descriptor bytes in 1"
                )
            })?;
            ensure(data.saturating_mul(100) <= bytes, || {
                format!("fabric carried {data} data bytes for a {bytes}-byte copy (> 1%)")
            })?;
            // Keep-alives may fall into the window: count every byte only
            // for copies large enough that they cannot matter.
            ensure(
                bytes < (1 << 20) || all.saturating_mul(100) <= bytes,
                || format!("fabric carried {all} bytes for a {bytes}-byte copy (> 1%)"),
            )
        }
        _ => {
            c.diag("stats have no fabric section: fabric bytes not checked");
            Ok(())
        }
    }
}

/// Issue a Copy on `nsid` to `sdlba` with `ranges` in `format`.
fn do_copy(
    c: &Ctx<'_>,
    nsid: u32,
    sdlba: u64,
    ranges: &[Range],
    format: u8,
) -> Result<Done, Verdict> {
    let f = c.ns(nsid)?.file()?;
    let data = encode(format, ranges).map_err(Verdict::Fail)?;
    let cmd = copy_cmd(nsid, sdlba, ranges.len(), format).map_err(Verdict::Fail)?;
    passthru::io(f, &cmd, Data::Out(&data)).map_err(fail("Copy passthrough"))
}

/// Copy block ranges into `dst_nsid` at block `dst`, expecting success,
/// and verify everything.
fn copy_and_verify(
    c: &mut Ctx<'_>,
    dst_nsid: u32,
    dst: u64,
    ranges: &[BlockRange],
    format: u8,
) -> Step {
    copy_or_refuse(c, dst_nsid, dst, ranges, format, false)
}

/// Whether descriptor format `format` carries protection information the
/// namespace does not have: formats 1h/3h are the 32b/64b Guard layouts
/// (NVM CS 1.1, 3.2.2), and a namespace without metadata has no PI.
fn pi_mismatch(c: &Ctx<'_>, nsid: u32, format: u8) -> bool {
    format % 2 == 1
        && c.ns(nsid)
            .ok()
            .and_then(|n| n.id)
            .is_some_and(|i| i.ms == 0)
}

/// As [`copy_and_verify`]; with `may_refuse`, Invalid Format (DNR) with
/// nothing written is also right (a 40-byte PI descriptor format on a
/// namespace without PI, refused as QEMU does).
fn copy_or_refuse(
    c: &mut Ctx<'_>,
    dst_nsid: u32,
    dst: u64,
    ranges: &[BlockRange],
    format: u8,
    may_refuse: bool,
) -> Step {
    let lps = c.ns(dst_nsid)?.lbas_per_stamp();
    let prior = if may_refuse {
        Some(dest_state(
            c,
            dst_nsid,
            dst,
            ranges.iter().map(|r| r.2).sum(),
        )?)
    } else {
        None
    };
    let lranges = to_lba(ranges, lps)?;
    let exp = expected(c, ranges)?;
    let bytes = exp.len() as u64 * BS;
    let mut names: Vec<String> = vec![c.ns(dst_nsid)?.ctl_name()];
    for &(s, _, _) in ranges {
        let n = c.ns(s)?.ctl_name();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let before = snapshot(c, &names);
    let d = do_copy(c, dst_nsid, dst * lps, &lranges, format)?;
    let after = snapshot(c, &names);
    c.diag(format!(
        "Copy format {format} of {} ranges ({bytes} bytes) to ns{dst_nsid} LBA {}: {d}",
        ranges.len(),
        dst * lps
    ));
    if let Some(prior) = prior.filter(|_| d.status.code() == sc::INVALID_FORMAT) {
        ensure(d.status.dnr(), || format!("{}: DNR not set", d.status))?;
        let now = dest_state(c, dst_nsid, dst, exp.len() as u64)?;
        ensure(now == prior, || {
            "the refused copy changed the destination".into()
        })?;
        c.diag(format!(
            "format {format} refused with Invalid Format: the namespace has no protection \
             information (QEMU does the same); nothing written"
        ));
        return Ok(());
    }
    d.ok("Copy").map_err(Verdict::Fail)?;
    verify_dest(c, dst_nsid, dst, &exp)?;
    let dst_name = names[0].clone();
    let desc_bytes = (descriptor_len(format) * ranges.len()) as u64;
    check_offload(c, before, after, &dst_name, bytes, desc_bytes)
}

/// Bytes of `n` blocks at `block`, through the kernel, for "nothing
/// changed" checks; plus the backend CRC when available.
fn dest_state(
    c: &mut Ctx<'_>,
    nsid: u32,
    block: u64,
    n: u64,
) -> Result<(Vec<u8>, Option<u32>), Verdict> {
    let ns = c.ns(nsid)?;
    let f = ns.file()?.try_clone().map_err(fail("dup"))?;
    let (lps, name) = (ns.lbas_per_stamp(), ns.ctl_name());
    let bytes = read_blocks(&f, block, n)?.as_slice().to_vec();
    let crc = match c.control.as_mut() {
        Some(ctl) => Some(
            ctl.checksum(&name, block * lps, n * lps)
                .map_err(Verdict::Fail)?
                .crc,
        ),
        None => None,
    };
    Ok((bytes, crc))
}

/// A copy that must be refused with `want` (SCT/SC) and change nothing at
/// the destination (`check_blocks` blocks from `dst`).
fn expect_refused(
    c: &mut Ctx<'_>,
    dst_nsid: u32,
    dst: u64,
    lranges: &[Range],
    format: u8,
    want: &[u16],
    check_blocks: u64,
) -> Result<Done, Verdict> {
    let lps = c.ns(dst_nsid)?.lbas_per_stamp();
    let before = dest_state(c, dst_nsid, dst, check_blocks)?;
    let d = do_copy(c, dst_nsid, dst * lps, lranges, format)?;
    let total: u64 = lranges.iter().map(|r| u64::from(r.nlb)).sum();
    c.diag(format!(
        "Copy format {format} of {} ranges ({total} LBAs) to ns{dst_nsid} LBA {}: {d}",
        lranges.len(),
        dst * lps
    ));
    ensure(want.contains(&d.status.code()), || {
        format!(
            "{}, expected {}",
            d.status,
            want.iter()
                .map(|w| format!("{w:#06x} ({})", passthru::Status(*w).name().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    })?;
    ensure(d.status.dnr(), || format!("{}: DNR not set", d.status))?;
    let after = dest_state(c, dst_nsid, dst, check_blocks)?;
    ensure(before.0 == after.0, || {
        format!("the refused copy changed ns{dst_nsid} blocks {dst}..+{check_blocks}")
    })?;
    ensure(before.1 == after.1, || {
        format!(
            "the refused copy changed the backend's CRC of ns{dst_nsid} blocks {dst}..: {:?} -> {:?}",
            before.1, after.1
        )
    })?;
    Ok(d)
}

fn t_supported(c: &mut Ctx<'_>) -> Step {
    let id = c
        .id_ctrl
        .clone()
        .ok_or_else(|| Verdict::skip("needs identify/controller"))?;
    c.diag(format!("ONCS {:#06x} OCFS {:#06x}", id.oncs, id.ocfs));
    for n in c.ns.values() {
        if let Some(i) = n.id {
            let bs = n.spec.block_size;
            c.diags.push(format!(
                "ns{}: MSSRL {} MCL {} MSRC {} ({} ranges; {} and {} bytes)",
                n.nsid,
                i.mssrl,
                i.mcl,
                i.msrc,
                u16::from(i.msrc) + 1,
                u64::from(i.mssrl) * bs,
                u64::from(i.mcl) * bs
            ));
        }
    }
    ensure(id.copy_supported(), || {
        format!("ONCS {:#06x} lacks Copy (bit 8)", id.oncs)
    })
}

fn t_sources(c: &mut Ctx<'_>) -> Step {
    c.needs("copy/supported")?;
    let mut did = Vec::new();
    if let Ok(nsid) = c.first(NsKind::Nvm) {
        let n = c.ns(nsid)?;
        let f = n.file()?.try_clone().map_err(fail("dup"))?;
        ensure(n.spec.size / BS >= NVM_MIN_BLOCKS, || {
            format!(
                "ns{nsid} holds {} blocks, the copy tests need {NVM_MIN_BLOCKS} (size >= {} bytes)",
                n.spec.size / BS,
                NVM_MIN_BLOCKS * BS
            )
        })?;
        blockio::write_stamped(&f, 0, NVM_SRC_BLOCKS, n.gen, 64)
            .map_err(fail("write the NVM source blocks"))?;
        blockio::read_verify(&f, 0, NVM_SRC_BLOCKS, n.gen).map_err(Verdict::Fail)?;
        c.copy.nvm_src = Some(NVM_SRC_BLOCKS);
        did.push(format!("ns{nsid} blocks 0..{NVM_SRC_BLOCKS}"));
    }
    if let Ok(nsid) = zns::zns_nsid(c) {
        if c.passed("zns/reset_all") {
            let (src, dst) = (seq_zone(c, nsid, 4)?, seq_zone(c, nsid, 5)?);
            let n = c.ns(nsid)?;
            let f = n.file()?.try_clone().map_err(fail("dup"))?;
            ensure(src.cap * src.bs >= ZNS_SRC_BLOCKS * BS, || {
                "zone capacity below the ZNS source blocks".into()
            })?;
            for z in [&src, &dst] {
                bz::zone_mgmt(&f, ZoneOp::Reset, z.sector, z.sectors)
                    .map_err(fail("BLKRESETZONE"))?;
            }
            blockio::write_stamped(&f, src.byte(), ZNS_SRC_BLOCKS, n.gen, 8)
                .map_err(fail("write the ZNS source blocks"))?;
            blockio::read_verify(&f, src.byte(), ZNS_SRC_BLOCKS, n.gen).map_err(Verdict::Fail)?;
            c.copy.zns_src = Some(ZNS_SRC_BLOCKS);
            c.copy.zns_dst = Some(0);
            did.push(format!(
                "ns{nsid} zone at sector {} blocks 0..{ZNS_SRC_BLOCKS}",
                src.sector
            ));
        }
    }
    c.diag(format!("sources: {}", did.join("; ")));
    ensure(!did.is_empty(), || "no namespace to copy in".into())
}

fn t_single(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    copy_and_verify(c, nsid, DST_SINGLE, &[(nsid, 10, 8)], 0)
}

fn t_many(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let (_, _, nr) = limits(c, nsid)?;
    // Eight ranges, out of order, different lengths, one repeated.
    let ranges: Vec<BlockRange> = [
        (200, 1),
        (3, 3),
        (100, 2),
        (40, 1),
        (150, 4),
        (3, 2),
        (77, 1),
        (250, 2),
    ]
    .iter()
    .map(|&(b, n)| (nsid, b, n))
    .collect();
    if nr < 8 {
        return Err(Verdict::skip(format!(
            "MSRC allows {nr} ranges, test needs 8"
        )));
    }
    copy_and_verify(c, nsid, DST_MANY, &ranges, 0)
}

fn t_max_ranges(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let (mssrl, mcl, nr) = limits(c, nsid)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    ensure(mssrl >= lps && mcl >= nr * lps, || {
        format!("MSSRL {mssrl} / MCL {mcl} too small for {nr} one-block ranges")
    })?;
    if nr > 256 {
        return Err(Verdict::fail(format!(
            "MSRC+1 = {nr} ranges cannot be encoded"
        )));
    }
    let ranges: Vec<BlockRange> = (0..nr)
        .map(|i| (nsid, (i * 37) % NVM_SRC_BLOCKS, 1))
        .collect();
    copy_and_verify(c, nsid, DST_MAX, &ranges, 0)
}

fn zns_copy_ctx(c: &Ctx<'_>) -> Result<(u32, zns::Zone, zns::Zone, File), Verdict> {
    c.needs("copy/supported")?;
    let nsid = zns::zns_nsid(c)?;
    if c.copy.zns_src.is_none() {
        return Err(Verdict::skip("needs copy/sources (ZNS)"));
    }
    let f = c.ns(nsid)?.file()?.try_clone().map_err(fail("dup"))?;
    Ok((nsid, seq_zone(c, nsid, 4)?, seq_zone(c, nsid, 5)?, f))
}

/// Copy into a sequential zone at its write pointer, twice: the write
/// pointer advances by the copied length each time and the data is there.
fn t_into_zone(c: &mut Ctx<'_>) -> Step {
    let (nsid, src, dst, f) = zns_copy_ctx(c)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let sb = src.lba / lps; // source zone start, in blocks
    let db = dst.lba / lps;
    let first: Vec<BlockRange> = vec![(nsid, sb + 4, 3), (nsid, sb, 2), (nsid, sb + 20, 5)];
    copy_and_verify(c, nsid, db, &first, 0)?;
    let done = 10;
    expect_zone(
        c,
        &f,
        dst.sector,
        bz::BLK_ZONE_COND_IMP_OPEN,
        dst.sector + done * BS / SECTOR,
        "after the first copy",
    )?;
    c.copy.zns_dst = Some(done);
    let second: Vec<BlockRange> = vec![(nsid, sb + 30, 2), (nsid, sb + 9, 4)];
    copy_and_verify(c, nsid, db + done, &second, 0)?;
    let done = done + 6;
    expect_zone(
        c,
        &f,
        dst.sector,
        bz::BLK_ZONE_COND_IMP_OPEN,
        dst.sector + done * BS / SECTOR,
        "after the second copy",
    )?;
    c.copy.zns_dst = Some(done);
    let mut all = first;
    all.extend(second);
    let exp = expected(c, &all)?;
    verify_dest(c, nsid, db, &exp)?;
    c.copy.zns_dst_exp = exp;
    Ok(())
}

/// The blocks copied into the ZNS destination zone so far are intact.
fn zns_dst_intact(c: &mut Ctx<'_>, nsid: u32, dst: &zns::Zone) -> Step {
    let exp = c.copy.zns_dst_exp.clone();
    if exp.len() as u64 != c.copy.zns_dst.unwrap_or(0) || exp.is_empty() {
        return Ok(());
    }
    let lps = c.ns(nsid)?.lbas_per_stamp();
    verify_dest(c, nsid, dst.lba / lps, &exp)
        .map_err(|v| Verdict::fail(format!("earlier copies into the zone: {v:?}")))
}

/// Copies that would write past the zone capacity fail with Zone Boundary
/// Error and change nothing; a copy into a FULL zone fails with Zone Is
/// Full (ZNS Command Set 1.1, 2.3.1 and 3.3: Copy writes as a Write does).
fn t_zone_capacity(c: &mut Ctx<'_>) -> Step {
    let (nsid, src, dst, f) = zns_copy_ctx(c)?;
    let done = c
        .copy
        .zns_dst
        .ok_or_else(|| Verdict::skip("needs copy/sources"))?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let (mssrl, mcl, nr) = limits(c, nsid)?;
    let left = dst.cap / lps - done;
    let per = (mssrl / lps).min(ZNS_SRC_BLOCKS);
    let want = left + 1;
    let count = want.div_ceil(per.max(1));
    if per == 0 || count > nr || count > 256 || want * lps > mcl {
        return Err(Verdict::skip(format!(
            "{want} blocks past the capacity need {count} ranges of {per} blocks: \
             beyond MSRC/MCL"
        )));
    }
    let sb = src.lba / lps;
    let mut ranges = Vec::new();
    let mut n = want;
    while n > 0 {
        let k = n.min(per);
        ranges.push((nsid, sb, k));
        n -= k;
    }
    let r = to_lba(&ranges, lps)?;
    let at = dst.lba / lps + done;
    let before = dest_state(c, nsid, at, left)?;
    let d = do_copy(c, nsid, at * lps, &r, 0)?;
    c.diag(format!(
        "Copy of {} ranges ({want} blocks, {left} left in the zone) at the write pointer: {d}",
        r.len()
    ));
    ensure(
        d.status.code() == sc::ZONE_BOUNDARY_ERROR && d.status.dnr(),
        || {
            format!(
                "{}, expected Zone Boundary Error (0x1b8) with DNR",
                d.status
            )
        },
    )?;
    // NVM CS 1.1, 3.2.2: Dword 0 is the lowest numbered range not copied;
    // the ones before it were copied (QEMU copies range by range too).
    let k = d.dw0() as usize;
    ensure(k < ranges.len(), || {
        format!("Dword 0 = {k}: every range copied, yet the command failed")
    })?;
    let prefix: u64 = ranges[..k].iter().map(|r| r.2).sum();
    if k > 0 {
        c.diag(format!(
            "the controller copied ranges 0..{k} ({prefix} blocks) before failing"
        ));
        let exp = expected(c, &ranges[..k])?;
        verify_dest(c, nsid, at, &exp)
            .map_err(|v| Verdict::fail(format!("Dword 0 = {k} but: {v:?}")))?;
        c.copy.zns_dst = Some(done + prefix);
        c.copy.zns_dst_exp.extend(exp);
    }
    let wp = dst.sector + (done + prefix) * BS / SECTOR;
    let z = bz::report_one(&f, dst.sector).map_err(fail("BLKREPORTZONE"))?;
    c.diag(format!("after: {z}"));
    ensure(z.wp == wp, || {
        format!(
            "write pointer {} after copying {prefix} blocks, expected {wp}",
            z.wp
        )
    })?;
    let after = dest_state(c, nsid, at, left)?;
    let off = (prefix * BS) as usize;
    ensure(before.0[off..] == after.0[off..], || {
        format!("blocks past the {prefix} copied ones changed")
    })?;
    zns_dst_intact(c, nsid, &dst)?;
    // A FULL zone: the one append_at_capacity filled, if it did.
    if c.passed("zns/append_at_capacity") {
        let full = seq_zone(c, nsid, 3)?;
        let r = to_lba(&[(nsid, sb, 1)], lps)?;
        let before = bz::report_one(&f, full.sector).map_err(fail("BLKREPORTZONE"))?;
        let d = do_copy(c, nsid, full.lba, &r, 0)?;
        c.diag(format!("Copy into the FULL zone at LBA {}: {d}", full.lba));
        ensure(d.status.code() == sc::ZONE_IS_FULL, || {
            format!("{}, expected Zone Is Full (0x1b9)", d.status)
        })?;
        let after = bz::report_one(&f, full.sector).map_err(fail("BLKREPORTZONE"))?;
        ensure(before == after, || {
            format!("zone changed: {before} -> {after}")
        })?;
    }
    Ok(())
}

/// A copy whose destination is not the zone's write pointer: Zone Invalid
/// Write, write pointer and data unchanged.
fn t_not_at_wp(c: &mut Ctx<'_>) -> Step {
    let (nsid, src, dst, f) = zns_copy_ctx(c)?;
    let done = c
        .copy
        .zns_dst
        .ok_or_else(|| Verdict::skip("needs copy/sources"))?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let wp = dst.sector + done * BS / SECTOR;
    let ranges = to_lba(&[(nsid, src.lba / lps, 2)], lps)?;
    // One block past the write pointer.
    expect_refused(
        c,
        nsid,
        dst.lba / lps + done + 1,
        &ranges,
        0,
        &[sc::ZONE_INVALID_WRITE],
        2,
    )?;
    let z = bz::report_one(&f, dst.sector).map_err(fail("BLKREPORTZONE"))?;
    c.diag(format!("after: {z}"));
    ensure(z.wp == wp, || {
        format!("write pointer moved: {wp} -> {}", z.wp)
    })?;
    zns_dst_intact(c, nsid, &dst)
}

/// The namespace and block to aim refused copies at: the NVM namespace if
/// there is one, else the ZNS destination zone's write pointer.
fn limit_target(c: &Ctx<'_>) -> Result<(u32, u64, u64), Verdict> {
    c.needs("copy/supported")?;
    if let Ok(nsid) = nvm_with_sources(c) {
        return Ok((nsid, DST_LIMITS, 0));
    }
    let (nsid, src, dst, _) = zns_copy_ctx(c)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let done = c.copy.zns_dst.unwrap_or(0);
    Ok((nsid, dst.lba / lps + done, src.lba / lps))
}

fn t_limit_mssrl(c: &mut Ctx<'_>) -> Step {
    let (nsid, dst, src) = limit_target(c)?;
    let (mssrl, _, _) = limits(c, nsid)?;
    let nsze = c.ns(nsid)?.id.map_or(0, |i| i.nsze);
    let nlb = mssrl + 1;
    if nlb > 65536 || nlb > nsze {
        return Err(Verdict::skip(format!(
            "MSSRL {mssrl}: a longer range cannot be encoded or does not fit"
        )));
    }
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let r = [Range {
        snsid: 0,
        slba: src * lps,
        nlb: nlb as u32,
    }];
    expect_refused(c, nsid, dst, &r, 0, &[sc::COMMAND_SIZE_LIMIT_EXCEEDED], 4).map(|_| ())
}

fn t_limit_msrc(c: &mut Ctx<'_>) -> Step {
    let (nsid, dst, src) = limit_target(c)?;
    let (_, _, nr) = limits(c, nsid)?;
    if nr + 1 > 256 {
        return Err(Verdict::skip(
            "MSRC is 255: one more range cannot be encoded",
        ));
    }
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let r: Vec<Range> = (0..nr + 1)
        .map(|i| Range {
            snsid: 0,
            slba: (src + i % 8) * lps,
            nlb: lps as u32,
        })
        .collect();
    expect_refused(c, nsid, dst, &r, 0, &[sc::COMMAND_SIZE_LIMIT_EXCEEDED], 4).map(|_| ())
}

fn t_limit_mcl(c: &mut Ctx<'_>) -> Step {
    let (nsid, dst, src) = limit_target(c)?;
    let (mssrl, mcl, nr) = limits(c, nsid)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let nsze = c.ns(nsid)?.id.map_or(0, |i| i.nsze);
    let total = mcl + 1;
    let per = mssrl.min(65536);
    let count = total.div_ceil(per);
    if per == 0 || count > nr || count > 256 {
        return Err(Verdict::skip(format!(
            "MCL {mcl} + 1 needs {count} ranges of at most MSSRL {mssrl}, MSRC allows {nr}"
        )));
    }
    // Ranges may overlap: each reads from the same source.
    let src_lba = if src * lps + per <= nsze {
        src * lps
    } else {
        0
    };
    let mut left = total;
    let mut r = Vec::new();
    while left > 0 {
        let n = left.min(per);
        r.push(Range {
            snsid: 0,
            slba: src_lba,
            nlb: n as u32,
        });
        left -= n;
    }
    // If the destination range itself runs past the namespace, LBA Out of
    // Range is as right as the size limit: the spec does not order them.
    let fits = dst * lps + total <= nsze;
    let want: &[u16] = if fits {
        &[sc::COMMAND_SIZE_LIMIT_EXCEEDED]
    } else {
        c.diag(format!(
            "destination LBA {} + {total} runs past NSZE {nsze}: LBA Out of Range also accepted",
            dst * lps
        ));
        &[sc::COMMAND_SIZE_LIMIT_EXCEEDED, sc::LBA_OUT_OF_RANGE]
    };
    expect_refused(c, nsid, dst, &r, 0, want, 4).map(|_| ())
}

fn t_format1(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let ocfs = c.id_ctrl.as_ref().map_or(0, |i| i.ocfs);
    let ranges: Vec<BlockRange> = vec![(nsid, 60, 2), (nsid, 30, 3)];
    if ocfs & 0b10 == 0 {
        // Not advertised: the controller must refuse it.
        let lps = c.ns(nsid)?.lbas_per_stamp();
        let r = to_lba(&ranges, lps)?;
        expect_refused(c, nsid, DST_FORMAT1, &r, 1, &[sc::INVALID_FIELD], 5)?;
        return Ok(());
    }
    let may_refuse = pi_mismatch(c, nsid, 1);
    copy_or_refuse(c, nsid, DST_FORMAT1, &ranges, 1, may_refuse)
}

fn get_hbs(c: &Ctx<'_>) -> Result<Vec<u8>, Verdict> {
    let mut b = vec![0u8; HBS_LEN];
    passthru::admin(
        c.ctrl()?,
        &passthru::get_features(FID_HOST_BEHAVIOR),
        Data::In(&mut b),
    )
    .map_err(fail("Get Features 16h"))?
    .ok("Get Features Host Behavior Support")
    .map_err(Verdict::Fail)?;
    Ok(b)
}

fn set_hbs(c: &Ctx<'_>, b: &[u8]) -> Result<Done, Verdict> {
    passthru::admin(
        c.ctrl()?,
        &passthru::set_features(FID_HOST_BEHAVIOR),
        Data::Out(b),
    )
    .map_err(fail("Set Features 16h"))
}

fn hbs_text(b: &[u8]) -> String {
    format!(
        "ACRE {} ETDAS {} LBAFEE {} HDISNS {} CDFE {:#06x}",
        b[0],
        b[1],
        b[2],
        b[3],
        u16::from_le_bytes([b[4], b[5]])
    )
}

/// The pair of namespaces for cross-namespace copies: (source ZNS or any,
/// destination NVM).
fn cross_pair(c: &Ctx<'_>) -> Result<(u32, u32, u64), Verdict> {
    let dst = nvm_with_sources(c)?;
    if let Ok((src, z, _, _)) = zns_copy_ctx(c) {
        let lps = c.ns(src)?.lbas_per_stamp();
        return Ok((src, dst, z.lba / lps));
    }
    let other =
        c.ns.keys()
            .copied()
            .find(|&n| n != dst)
            .ok_or_else(|| Verdict::skip("needs two namespaces"))?;
    Err(Verdict::skip(format!("needs copy sources in ns{other}")))
}

/// Formats 2h/3h before the host enabled them (or when OCFS lacks them):
/// Invalid Field in Command with DNR, nothing written.
fn t_cross_refused(c: &mut Ctx<'_>) -> Step {
    let (src, dst, sb) = cross_pair(c)?;
    let ocfs = c.id_ctrl.as_ref().map_or(0, |i| i.ocfs);
    let hbs = get_hbs(c)?;
    c.diag(format!(
        "Host Behavior Support as the kernel left it: {}",
        hbs_text(&hbs)
    ));
    let cdfe = u16::from_le_bytes([hbs[4], hbs[5]]);
    let lps = c.ns(dst)?.lbas_per_stamp();
    for format in [2u8, 3] {
        if cdfe & (1 << format) != 0 {
            c.diag(format!(
                "CDFE already enables format {format}: its refusal cannot be tested"
            ));
            continue;
        }
        if ocfs & (1 << format) == 0 {
            c.diag(format!(
                "OCFS lacks format {format}: must be refused anyway"
            ));
        }
        let r = to_lba(&[(src, sb, 2)], lps)?;
        expect_refused(c, dst, DST_CROSS, &r, format, &[sc::INVALID_FIELD], 4)?;
    }
    Ok(())
}

/// Enable the formats OCFS advertises in CDFE (read-modify-write), read it
/// back, and copy ns(src) -> ns(dst) with each.
fn t_cross_ns(c: &mut Ctx<'_>) -> Step {
    let (src, dst, sb) = cross_pair(c)?;
    let ocfs = c.id_ctrl.as_ref().map_or(0, |i| i.ocfs);
    let formats: Vec<u8> = [2u8, 3]
        .into_iter()
        .filter(|f| ocfs & (1 << f) != 0)
        .collect();
    if formats.is_empty() {
        return Err(Verdict::skip(format!(
            "OCFS {ocfs:#06x} has no cross-namespace format"
        )));
    }
    let mut hbs = get_hbs(c)?;
    if c.copy.hbs_orig.is_none() {
        c.copy.hbs_orig = Some(hbs.clone());
    }
    let was = u16::from_le_bytes([hbs[4], hbs[5]]);
    let mut cdfe = was;
    for f in &formats {
        cdfe |= 1 << f;
    }
    let mut enabled = formats.clone();
    if cdfe == was {
        c.diag(format!("CDFE {was:#06x} already enables {formats:?}"));
    } else {
        hbs[4..6].copy_from_slice(&cdfe.to_le_bytes());
        match set_hbs(c, &hbs) {
            Ok(d) => {
                c.diag(format!("Set Features 16h {}: {d}", hbs_text(&hbs)));
                d.ok("Set Features Host Behavior Support")
                    .map_err(Verdict::Fail)?;
                let back = get_hbs(c)?;
                c.diag(format!("read back: {}", hbs_text(&back)));
                ensure(back[..6] == hbs[..6], || {
                    format!(
                        "Host Behavior Support reads back as {}, set {}",
                        hbs_text(&back),
                        hbs_text(&hbs)
                    )
                })?;
            }
            Err(v) => {
                // Some kernels refuse Set Features passthrough outright
                // (Linux 7.2: EACCES even with CAP_SYS_ADMIN): test the
                // formats the kernel enabled itself.
                c.copy.hbs_orig = None;
                c.diag(format!(
                    "the kernel refused Set Features Host Behavior Support ({v:?}); \
                     testing only the formats it enabled (CDFE {was:#06x})"
                ));
                enabled.retain(|f| was & (1 << f) != 0);
            }
        }
    }
    if enabled.is_empty() {
        return Err(Verdict::skip(format!(
            "cannot enable formats {formats:?}: Set Features refused, CDFE {was:#06x}"
        )));
    }
    let mut at = DST_CROSS;
    for &f in &enabled {
        let ranges: Vec<BlockRange> = vec![(src, sb + 5, 3), (src, sb + 1, 2), (dst, 90, 1)];
        let may_refuse = pi_mismatch(c, dst, f);
        copy_or_refuse(c, dst, at, &ranges, f, may_refuse)?;
        at += 8;
    }
    // The other way, into the ZNS zone at its write pointer: the command
    // goes to the zoned namespace, the sources are in the NVM one.
    if let (Ok((zns_nsid, _, zdst, zf)), Some(done)) = (zns_copy_ctx(c), c.copy.zns_dst) {
        if zns_nsid == src && enabled.contains(&2) {
            let lps = c.ns(zns_nsid)?.lbas_per_stamp();
            if zdst.cap / lps >= done + 4 {
                let ranges: Vec<BlockRange> = vec![(dst, 200, 2), (dst, 7, 2)];
                copy_and_verify(c, zns_nsid, zdst.lba / lps + done, &ranges, 2)?;
                let exp = expected(c, &ranges)?;
                c.copy.zns_dst = Some(done + 4);
                c.copy.zns_dst_exp.extend(exp);
                expect_zone(
                    c,
                    &zf,
                    zdst.sector,
                    bz::BLK_ZONE_COND_IMP_OPEN,
                    zdst.sector + (done + 4) * BS / SECTOR,
                    "after the cross-namespace copy into the zone",
                )?;
                zns_dst_intact(c, zns_nsid, &zdst)?;
            }
        }
    }
    Ok(())
}

/// A copy whose second range reads past the end of the namespace: LBA Out
/// of Range, and Dword 0 the lowest numbered range not copied (NVM Command
/// Set 1.1, 3.2.2); the ranges before it must really be there.
fn t_partial(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let nsze = c.ns(nsid)?.id.map_or(0, |i| i.nsze);
    let good: Vec<BlockRange> = vec![(nsid, 120, 2)];
    let mut r = to_lba(&good, lps)?;
    r.push(Range {
        snsid: 0,
        slba: nsze - lps,
        nlb: (2 * lps) as u32,
    });
    r.extend(to_lba(&[(nsid, 130, 2)], lps)?);
    let before = dest_state(c, nsid, DST_PARTIAL, 6)?;
    let done = do_copy(c, nsid, DST_PARTIAL * lps, &r, 0)?;
    c.diag(format!("Copy with range 1 past NSZE {nsze}: {done}"));
    ensure(done.status.code() == sc::LBA_OUT_OF_RANGE, || {
        format!("{}, expected LBA Out of Range (0x0080)", done.status)
    })?;
    let k = done.dw0();
    ensure(k <= 1, || {
        format!("Dword 0 says {k} ranges were copied, but range 1 cannot be")
    })?;
    if k == 1 {
        let exp = expected(c, &good)?;
        verify_dest(c, nsid, DST_PARTIAL, &exp)
            .map_err(|v| Verdict::fail(format!("Dword 0 = 1 but range 0 is not there: {v:?}")))?;
        c.diag("range 0 was copied before the failure, as Dword 0 says");
    } else {
        let after = dest_state(c, nsid, DST_PARTIAL, 6)?;
        ensure(before == after, || {
            "Dword 0 = 0 but the destination changed".to_string()
        })?;
        c.diag("nothing copied (the ranges were checked before any data moved)");
    }
    Ok(())
}

/// A large copy: fabric bytes near zero against the bytes copied.
fn t_offload(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    if c.control.is_none() {
        return Err(Verdict::skip("no zonecopy.control=: counters unavailable"));
    }
    let (mssrl, mcl, nr) = limits(c, nsid)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let per = (mssrl / lps).max(1);
    let max_blocks = (mcl / lps).min(per * nr).min(NVM_SRC_BLOCKS);
    ensure(max_blocks > 0, || "limits allow no whole block".into())?;
    let mut ranges = Vec::new();
    let mut b = 0;
    while b < max_blocks {
        let n = per.min(max_blocks - b);
        ranges.push((nsid, b, n));
        b += n;
    }
    copy_and_verify(c, nsid, DST_OFFLOAD, &ranges, 0)
}

/// Put Host Behavior Support back as the kernel left it (best effort: the
/// controller is about to go away anyway).
pub fn restore_host_behavior(c: &mut Ctx<'_>) {
    if let Some(orig) = c.copy.hbs_orig.take() {
        match set_hbs(c, &orig) {
            Ok(d) => c.diag(format!("Host Behavior Support restored: {d}")),
            Err(v) => c.diag(format!("Host Behavior Support not restored: {v:?}")),
        }
    }
}

// ------------------------------------------------------------------ faults
//
// Faults are injected through the control socket (`fault` rules of the
// backend, see vhost-device/src/storage/fault.rs); a guard clears every
// rule when the test ends, however it ends.

/// Media and Data Integrity Errors (SCT 2h), NVMe Base 2.1 Figure 104.
const WRITE_FAULT: u16 = 0x0280;
const UNRECOVERED_READ_ERROR: u16 = 0x0281;

fn fault_guard(c: &mut Ctx<'_>) -> Result<control::FaultGuard, Verdict> {
    let addr = c.control()?.addr();
    control::FaultGuard::new(addr).map_err(|e| Verdict::fail(format!("clearing faults: {e}")))
}

/// The test's own verdict first; then whether its faults were cleared.
fn finish(g: control::FaultGuard, r: Step) -> Step {
    let cleared = g.finish();
    r?;
    cleared
        .map(|_| ())
        .map_err(|e| Verdict::fail(format!("clearing the faults: {e}")))
}

/// Read (02h) of `nlb` LBAs at `slba` through passthrough.
fn read_cmd(f: &File, nsid: u32, slba: u64, nlb: u64, buf: &mut [u8]) -> Result<Done, Verdict> {
    let nlb0 = u32::try_from(nlb - 1).map_err(|_| Verdict::fail("read too long"))?;
    let cmd = Command::new(io_op::READ, nsid).qw(10, slba).dw(12, nlb0);
    passthru::io(f, &cmd, Data::In(buf)).map_err(fail("Read passthrough"))
}

fn expect_status(d: &Done, want: u16, what: &str) -> Step {
    ensure(d.status.code() == want && d.status.dnr(), || {
        format!(
            "{what}: {}, expected {want:#06x} ({}) with DNR",
            d.status,
            if want == WRITE_FAULT {
                "Write Fault"
            } else {
                "Unrecovered Read Error"
            }
        )
    })
}

/// A Read touching an LBA with a media error: Unrecovered Read Error (SCT
/// 2h, SC 81h, NVMe Base 2.1 Figure 104), DNR; a Read beside it is fine.
fn t_fault_read(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let mut g = fault_guard(c)?;
    let r = fault_read(c, nsid, &mut g);
    finish(g, r)
}

fn fault_read(c: &mut Ctx<'_>, nsid: u32, g: &mut control::FaultGuard) -> Step {
    let ns = c.ns(nsid)?;
    let (lps, name, gen) = (ns.lbas_per_stamp(), ns.ctl_name(), ns.gen);
    let f = ns.file()?.try_clone().map_err(fail("dup"))?;
    // The last LBA of stamped block 200.
    let bad = 201 * lps - 1;
    let before = g.client().fault_counts(&name).map_err(Verdict::Fail)?;
    let id = g
        .client()
        .fault_add(
            &name,
            &format!(r#""kind":"media_error","lba":{bad},"blocks":1"#),
        )
        .map_err(Verdict::Fail)?;
    c.diag(format!("fault {id}: media error at {name} LBA {bad}"));
    let mut buf = blockio::AlignedBuf::new(4 * BLOCK_SIZE);
    let d = read_cmd(&f, nsid, 196 * lps, 4 * lps, buf.as_mut_slice())?;
    c.diag(format!("Read blocks 196..200 (beside it): {d}"));
    d.ok("Read beside the media error").map_err(Verdict::Fail)?;
    for (i, chunk) in buf.as_slice().chunks_exact(BLOCK_SIZE).enumerate() {
        stamp::verify(chunk, 196 + i as u64, gen)
            .map_err(|e| Verdict::fail(format!("block {}: {e}", 196 + i)))?;
    }
    let d = read_cmd(&f, nsid, 198 * lps, 4 * lps, buf.as_mut_slice())?;
    c.diag(format!("Read blocks 198..202 (over it): {d}"));
    expect_status(&d, UNRECOVERED_READ_ERROR, "Read over the media error")?;
    let after = g.client().fault_counts(&name).map_err(Verdict::Fail)?;
    ensure(after.media_error == before.media_error + 1, || {
        format!(
            "the backend counted {} media error firings, expected exactly 1",
            after.media_error - before.media_error
        )
    })
}

/// Four 2-block ranges from the NVM source blocks.
fn fault_ranges(nsid: u32) -> [BlockRange; 4] {
    [(nsid, 10, 2), (nsid, 20, 2), (nsid, 30, 2), (nsid, 40, 2)]
}

/// A Copy of 4 ranges with a copy-fail rule at range 2, after its first
/// block: Write Fault (SCT 2h, SC 80h), Dword 0 = 2, the lowest numbered
/// range not copied (NVM Command Set 1.1, 3.3.2.5 "Command Completion");
/// ranges 0 and 1 are at the destination, range 3 is not. (Of range 2 the
/// backend copies the block before the fault; the spec allows either.)
fn t_fault_copy_fail(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let mut g = fault_guard(c)?;
    let r = fault_copy(c, nsid, &mut g, DST_FAULT, None);
    finish(g, r)
}

/// The same Copy with a media error in its source range 2 (its second
/// block): Unrecovered Read Error, Dword 0 = 2.
fn t_fault_copy_media(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let mut g = fault_guard(c)?;
    let r = fault_copy(c, nsid, &mut g, DST_FAULT_MEDIA, Some(31));
    finish(g, r)
}

/// `media`: the source block with a media error, else a copy-fail rule.
fn fault_copy(
    c: &mut Ctx<'_>,
    nsid: u32,
    g: &mut control::FaultGuard,
    dst: u64,
    media: Option<u64>,
) -> Step {
    let ns = c.ns(nsid)?;
    let (lps, name) = (ns.lbas_per_stamp(), ns.ctl_name());
    let ranges = fault_ranges(nsid);
    let before = dest_state(c, nsid, dst, 8)?;
    let counts0 = g.client().fault_counts(&name).map_err(Verdict::Fail)?;
    let (rule, want) = match media {
        Some(b) => (
            format!(r#""kind":"media_error","lba":{},"blocks":{lps}"#, b * lps),
            UNRECOVERED_READ_ERROR,
        ),
        None => (
            format!(r#""kind":"copy_fail","segment":2,"after_blocks":{lps},"count":1"#),
            WRITE_FAULT,
        ),
    };
    let id = g.client().fault_add(&name, &rule).map_err(Verdict::Fail)?;
    c.diag(format!("fault {id} on {name}: {rule}"));
    let d = do_copy(c, nsid, dst * lps, &to_lba(&ranges, lps)?, 0)?;
    c.diag(format!("Copy of 4 ranges to block {dst}: {d}"));
    expect_status(&d, want, "Copy")?;
    ensure(d.dw0() == 2, || {
        format!(
            "Dword 0 = {}, expected 2: the lowest numbered source range not copied",
            d.dw0()
        )
    })?;
    // Ranges 0 and 1, then the first block of range 2.
    let mut exp = expected(c, &ranges[..2])?;
    exp.extend(expected(c, &[(nsid, 30, 1)])?);
    verify_dest(c, nsid, dst, &exp)?;
    let now = dest_state(c, nsid, dst, 8)?;
    let tail = 5 * BLOCK_SIZE;
    ensure(now.0[tail..] == before.0[tail..], || {
        format!("blocks {}..{} past the fault changed", dst + 5, dst + 8)
    })?;
    let counts = g.client().fault_counts(&name).map_err(Verdict::Fail)?;
    let fired = if media.is_some() {
        counts.media_error - counts0.media_error
    } else {
        counts.copy_fail - counts0.copy_fail
    };
    ensure(fired == 1, || {
        format!("the backend counted {fired} firings, expected 1")
    })?;
    if let Some(b) = media {
        // Cleared, the block reads again.
        g.client().faults_clear().map_err(Verdict::Fail)?;
        let f = c.ns(nsid)?.file()?.try_clone().map_err(fail("dup"))?;
        let mut buf = blockio::AlignedBuf::new(BLOCK_SIZE);
        read_cmd(&f, nsid, b * lps, lps, buf.as_mut_slice())?
            .ok("Read after clearing the fault")
            .map_err(Verdict::Fail)?;
        stamp::verify(buf.as_slice(), b, c.ns(nsid)?.gen)
            .map_err(|e| Verdict::fail(format!("block {b} after clearing: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format0_descriptor_bytes() {
        // NVM CS 1.1 Figure 'Source Range Entries Descriptor Format 0h':
        // 7:0 reserved, 15:8 SLBA, 17:16 NLB (0's based), 31:18 PI fields.
        let d = encode(
            0,
            &[Range {
                snsid: 9, // ignored in format 0h
                slba: 0x0102_0304_0506_0708,
                nlb: 0x100,
            }],
        )
        .unwrap();
        let mut want = [0u8; 32];
        want[8..16].copy_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]);
        want[16..18].copy_from_slice(&[0xFF, 0x00]);
        assert_eq!(d, want);
    }

    #[test]
    fn format1_descriptor_bytes() {
        let d = encode(
            1,
            &[
                Range {
                    snsid: 0,
                    slba: 5,
                    nlb: 1,
                },
                Range {
                    snsid: 0,
                    slba: 6,
                    nlb: 65536,
                },
            ],
        )
        .unwrap();
        assert_eq!(d.len(), 80);
        assert_eq!(&d[8..18], &[5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&d[48..58], &[6, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]);
        assert!(d[18..40].iter().all(|&b| b == 0));
    }

    #[test]
    fn format2_and_3_carry_the_source_namespace() {
        // Format 2h/3h: SNSID in bytes 3:0.
        let r = [Range {
            snsid: 0x0A0B_0C0D,
            slba: 0x10,
            nlb: 2,
        }];
        let d = encode(2, &r).unwrap();
        let mut want = [0u8; 32];
        want[0..4].copy_from_slice(&[0x0D, 0x0C, 0x0B, 0x0A]);
        want[8] = 0x10;
        want[16] = 0x01;
        assert_eq!(d, want);
        let d = encode(3, &r).unwrap();
        assert_eq!(d.len(), 40);
        assert_eq!(&d[..32], &want);
        assert!(encode(4, &r).is_err());
        assert!(encode(
            0,
            &[Range {
                snsid: 0,
                slba: 0,
                nlb: 0
            }]
        )
        .is_err());
        assert!(encode(
            0,
            &[Range {
                snsid: 0,
                slba: 0,
                nlb: 65537
            }]
        )
        .is_err());
    }

    #[test]
    fn copy_command_dwords() {
        // SDLBA in CDW10-11; CDW12: NR 0's based in 7:0, format in 11:8.
        let c = copy_cmd(2, 0x1_0000_0010, 8, 3).unwrap();
        assert_eq!((c.opcode, c.nsid), (0x19, 2));
        assert_eq!(c.cdw, [0x10, 1, 0x0307, 0, 0, 0]);
        assert_eq!(copy_cmd(1, 0, 256, 0).unwrap().cdw[2], 0xFF);
        assert!(copy_cmd(1, 0, 0, 0).is_err());
        assert!(copy_cmd(1, 0, 257, 0).is_err());
    }

    #[test]
    fn fabric_section() {
        let r = r#"{"devices":{"ns1":{"read_bytes":1}},"fabric":{"admin":{"commands":3},"copy":{"commands":1,"data_h2c":32,"data_c2h":0,"header_h2c":72,"header_c2h":24},"read":{"data_c2h":4096},"connection_h2c":128,"data_bytes":4128,"total_bytes":4376},"ok":true}"#;
        assert_eq!(
            parse_fabric(r),
            Some(Fabric {
                data: 4128,
                total: 4376,
                copy_cmds: 1,
                copy_h2c: 32,
                copy_c2h: 0
            })
        );
        assert_eq!(parse_fabric(r#"{"devices":{}}"#), None);
    }
}
