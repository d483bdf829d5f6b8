//! The copies themselves: single, many ranges, into zones, capacity, write pointer.

use super::*;

pub(super) fn t_supported(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn t_sources(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn t_single(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    copy_and_verify(c, nsid, DST_SINGLE, &[(nsid, 10, 8)], 0)
}

pub(super) fn t_many(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn t_max_ranges(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn zns_copy_ctx(c: &Ctx<'_>) -> Result<(u32, zns::Zone, zns::Zone, File), Verdict> {
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
pub(super) fn t_into_zone(c: &mut Ctx<'_>) -> Step {
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
pub(super) fn zns_dst_intact(c: &mut Ctx<'_>, nsid: u32, dst: &zns::Zone) -> Step {
    let exp = c.copy.zns_dst_exp.clone();
    if exp.len() as u64 != c.copy.zns_dst.unwrap_or(0) || exp.is_empty() {
        return Ok(());
    }
    let lps = c.ns(nsid)?.lbas_per_stamp();
    verify_dest(c, nsid, dst.lba / lps, &exp)
        .map_err(|v| Verdict::fail(format!("earlier copies into the zone: {v:?}")))
}

/// Blocks copied into the ZNS destination zone so far, and LBAs per
/// stamped block of its namespace.
fn zns_done(c: &Ctx<'_>, nsid: u32) -> Result<(u64, u64), Verdict> {
    let done = c
        .copy
        .zns_dst
        .ok_or_else(|| Verdict::skip("needs copy/sources"))?;
    Ok((done, c.ns(nsid)?.lbas_per_stamp()))
}

/// Copies that would write past the zone capacity fail with Zone Boundary
/// Error and change nothing; a copy into a FULL zone fails with Zone Is
/// Full (ZNS Command Set 1.1, 2.3.1 and 3.3: Copy writes as a Write does).
pub(super) fn t_zone_capacity(c: &mut Ctx<'_>) -> Step {
    let (nsid, src, dst, f) = zns_copy_ctx(c)?;
    let (done, lps) = zns_done(c, nsid)?;
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
pub(super) fn t_not_at_wp(c: &mut Ctx<'_>) -> Step {
    let (nsid, src, dst, f) = zns_copy_ctx(c)?;
    let (done, lps) = zns_done(c, nsid)?;
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
