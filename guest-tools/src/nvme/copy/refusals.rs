//! Limits, descriptor formats, Host Behavior Support, cross-namespace, partial, offload.

use super::*;

/// The namespace and block to aim refused copies at: the NVM namespace if
/// there is one, else the ZNS destination zone's write pointer.
pub(super) fn limit_target(c: &Ctx<'_>) -> Result<(u32, u64, u64), Verdict> {
    c.needs("copy/supported")?;
    if let Ok(nsid) = nvm_with_sources(c) {
        return Ok((nsid, DST_LIMITS, 0));
    }
    let (nsid, src, dst, _) = zns_copy_ctx(c)?;
    let lps = c.ns(nsid)?.lbas_per_stamp();
    let done = c.copy.zns_dst.unwrap_or(0);
    Ok((nsid, dst.lba / lps + done, src.lba / lps))
}

pub(super) fn t_limit_mssrl(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn t_limit_msrc(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn t_limit_mcl(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn t_format1(c: &mut Ctx<'_>) -> Step {
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

pub(super) fn get_hbs(c: &Ctx<'_>) -> Result<Vec<u8>, Verdict> {
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

pub(super) fn set_hbs(c: &Ctx<'_>, b: &[u8]) -> Result<Done, Verdict> {
    passthru::admin(
        c.ctrl()?,
        &passthru::set_features(FID_HOST_BEHAVIOR),
        Data::Out(b),
    )
    .map_err(fail("Set Features 16h"))
}

pub(super) fn hbs_text(b: &[u8]) -> String {
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
pub(super) fn cross_pair(c: &Ctx<'_>) -> Result<(u32, u32, u64), Verdict> {
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
pub(super) fn t_cross_refused(c: &mut Ctx<'_>) -> Step {
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
pub(super) fn t_cross_ns(c: &mut Ctx<'_>) -> Step {
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
pub(super) fn t_partial(c: &mut Ctx<'_>) -> Step {
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
pub(super) fn t_offload(c: &mut Ctx<'_>) -> Step {
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
