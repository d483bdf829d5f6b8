//! What every Copy test uses: sources, the Copy, its checks and counters.

use super::*;

/// The namespace's copy limits from Identify: (MSSRL, MCL, MSRC+1).
pub(super) fn limits(c: &Ctx<'_>, nsid: u32) -> Result<(u64, u64, u64), Verdict> {
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

pub(super) fn nvm(c: &Ctx<'_>) -> Result<u32, Verdict> {
    c.needs("copy/supported")?;
    let nsid = c.first(NsKind::Nvm)?;
    c.ns(nsid)?.file()?;
    Ok(nsid)
}

pub(super) fn nvm_with_sources(c: &Ctx<'_>) -> Result<u32, Verdict> {
    let nsid = nvm(c)?;
    if c.copy.nvm_src.is_none() {
        return Err(Verdict::skip("needs copy/sources (NVM)"));
    }
    Ok(nsid)
}

/// Turn block ranges into LBA ranges for namespace block size `bs`.
pub(super) fn to_lba(ranges: &[BlockRange], lps: u64) -> Result<Vec<Range>, Verdict> {
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
pub(super) fn expected(c: &Ctx<'_>, ranges: &[BlockRange]) -> Result<Vec<(u64, u64)>, Verdict> {
    let mut v = Vec::new();
    for &(nsid, b, n) in ranges {
        let gen = c.ns(nsid)?.gen;
        v.extend((b..b + n).map(|x| (x, gen)));
    }
    Ok(v)
}

pub(super) fn expected_bytes(exp: &[(u64, u64)]) -> Result<Vec<u8>, Verdict> {
    let mut buf = vec![0u8; exp.len() * BLOCK_SIZE];
    for (chunk, &(b, g)) in buf.chunks_exact_mut(BLOCK_SIZE).zip(exp) {
        stamp::fill(chunk, b, g).map_err(fail("stamp"))?;
    }
    Ok(buf)
}

pub(super) fn read_blocks(f: &File, block: u64, n: u64) -> Result<blockio::AlignedBuf, Verdict> {
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
pub(super) fn verify_dest(c: &mut Ctx<'_>, nsid: u32, block: u64, exp: &[(u64, u64)]) -> Step {
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

pub(super) fn snapshot(c: &mut Ctx<'_>, devs: &[String]) -> Option<Snapshot> {
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
pub(super) fn check_offload(
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
pub(super) fn do_copy(
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
pub(super) fn copy_and_verify(
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
pub(super) fn pi_mismatch(c: &Ctx<'_>, nsid: u32, format: u8) -> bool {
    format % 2 == 1
        && c.ns(nsid)
            .ok()
            .and_then(|n| n.id)
            .is_some_and(|i| i.ms == 0)
}

/// As [`copy_and_verify`]; with `may_refuse`, Invalid Format (DNR) with
/// nothing written is also right (a 40-byte PI descriptor format on a
/// namespace without PI, refused as QEMU does).
pub(super) fn copy_or_refuse(
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
pub(super) fn dest_state(
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
pub(super) fn expect_refused(
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
