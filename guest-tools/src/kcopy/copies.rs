//! The copies: fallback, single range, cross namespace, splits, zones, SCSI.

use super::*;

pub(super) fn is_nvm(d: &Dev) -> bool {
    d.nvme && d.zones.is_none()
}

pub(super) fn t_fallback_sanity(s: &mut Suite<'_>) -> Finding {
    if let Err(f) = s.needs("probe") {
        return f;
    }
    // Two devices that cannot copy to each other: different transports
    // if there are, else any two with random access.
    let random = |d: &Dev| d.random_end() > 2 * MIB;
    let Some(a) = s
        .find(&[], |d| random(d) && d.nvme)
        .or_else(|| s.find(&[], random))
    else {
        return skip("needs a device with randomly writable space");
    };
    let a_nvme = s.devs[a].nvme;
    let Some(b) = s
        .find(&[a], |d| random(d) && d.nvme != a_nvme)
        .or_else(|| s.find(&[a], random))
    else {
        return skip("needs two block devices with randomly writable space");
    };
    let len = 256 * KIB;
    let r = (|| {
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[b].alloc(len)?;
        let expect = if s.devs[a].nvme && s.devs[b].nvme && s.no_offload.is_none() {
            Expect::Either
        } else {
            Expect::Fallback
        };
        let c = s.copy(
            "fallback",
            &Case::new(a, so, b, dof, len, expect).refusing(&[
                libc::EINVAL,
                libc::EXDEV,
                libc::EOPNOTSUPP,
            ]),
        )?;
        match c.cfr.errno() {
            Some(e) => s.diag(format!(
                "the kernel refused copy_file_range between two block devices ({}); destination unchanged",
                probe::errno_name(e)
            )),
            None => s.diag(format!(
                "the kernel copied {} bytes between two block devices by {}",
                c.cfr.copied,
                c.path.map_or("an unknown path".to_string(), |p| p.to_string())
            )),
        }
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

pub(super) fn t_single_range(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let a = s
        .find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))?;
    // No Copy in ONCS: a fallback (personality_* judge the limits).
    let expect = personality::expect_for(s, a);
    if expect == Expect::Offload && !s.devs[a].limits.offload_enabled() {
        return Err(fail(format!(
            "{}: copy_max_bytes is 0 on an NVMe namespace",
            s.devs[a].name
        )));
    }
    let len = 256 * KIB;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[a].alloc(len)?;
    s.copy("single range", &Case::new(a, so, a, dof, len, expect))?;
    Ok(())
}

pub(super) fn t_cross_namespace(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let a = s
        .find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))?;
    let b = s
        .find(&[a], is_nvm)
        .ok_or_else(|| skip("needs two NVM namespaces"))?;
    let len = 256 * KIB;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[b].alloc(len)?;
    // Descriptor format 2 names the source namespace in each range: one
    // controller copies across its namespaces, so this is offloaded too.
    let expect = personality::expect_for(s, b);
    let (sn, dn) = (s.devs[a].name.clone(), s.devs[b].name.clone());
    let before = (
        personality::received(s, &sn)?,
        personality::received(s, &dn)?,
    );
    // What the source namespace holds where the destination's LBAs
    // fall: a Copy sent to the wrong namespace writes there.
    let victim = xns_victim_crc(s, a, dof, len)?;
    let copied = s.copy("cross namespace", &Case::new(a, so, b, dof, len, expect));
    let after = (
        personality::received(s, &sn)?,
        personality::received(s, &dn)?,
    );
    if let ((Some(sb), Some(db)), (Some(sa), Some(da))) = (before, after) {
        let (to_src, to_dst) = (sa.saturating_sub(sb), da.saturating_sub(db));
        s.diag(format!(
            "a correct kernel must send a cross-namespace Copy to the destination \
             namespace (the command's NSID is the destination; each format 2 range \
             names its source): {sn} (source) received {to_src}, {dn} (destination) \
             received {to_dst}"
        ));
        if to_src > 0 && to_dst == 0 {
            let now = xns_victim_crc(s, a, dof, len)?;
            let damage = match (victim, now) {
                (Some(v), Some(n)) if v != n => format!(
                    "it overwrote {sn} bytes {dof}..{} (host crc32c {v:#010x} -> \
                     {n:#010x}): silent corruption of the source namespace",
                    dof + len
                ),
                (Some(_), Some(_)) => {
                    format!(
                        "{sn} bytes {dof}..{} unchanged (the Copy did not run)",
                        dof + len
                    )
                }
                _ => format!("its SDLBA would overwrite {sn} (no host checksum)"),
            };
            return Err(Finding::Bug {
                id: BUG_XNS,
                why: format!(
                    "the Copy for {sn} -> {dn} went to the source namespace {sn} \
                     ({to_src} Copy command(s)); {damage}"
                ),
            });
        }
        if to_dst > 0 {
            s.exposed = XNS_BUGS;
        }
    }
    copied.map(|_| ())
}

/// The host's crc32c of `len` bytes of device `a` at byte `off`, or `None`
/// without a control socket or a host view of the device.
pub(super) fn xns_victim_crc(
    s: &mut Suite<'_>,
    a: usize,
    off: u64,
    len: u64,
) -> Result<Option<u32>, Finding> {
    let (name, lbs) = (s.devs[a].name.clone(), s.devs[a].lbs);
    if off + len > s.devs[a].random_end() {
        return Ok(None);
    }
    let (Some(h), Some(base)) = (s.host.as_mut(), s.devs[a].host_base) else {
        return Ok(None);
    };
    h.checksum(&name, (base + off) / lbs, len / lbs)
        .map(|c| Some(c.crc))
        .map_err(|e| fail(format!("host checksum of {name}: {e}")))
}

pub(super) fn t_unaligned(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let a = s
        .find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))?;
    // 64 KiB and 100 bytes: a multiple of no logical block size.
    let len = 64 * KIB + 100;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[a].alloc(len)?;
    let c = s.copy(
        "unaligned length",
        &Case::new(a, so, a, dof, len, Expect::Either).refusing(&[libc::EINVAL]),
    )?;
    let what = match (c.cfr.errno(), c.path) {
        (Some(e), Some(p)) if c.cfr.copied > 0 => format!(
            "copied the first {} bytes by {p}, then refused the rest with {}",
            c.cfr.copied,
            probe::errno_name(e)
        ),
        (Some(e), _) => format!(
            "refused it with {} after {} bytes",
            probe::errno_name(e),
            c.cfr.copied
        ),
        (None, Some(p)) => format!("copied all {} bytes by {p}", c.cfr.copied),
        (None, None) => format!("copied all {} bytes", c.cfr.copied),
    };
    s.diag(format!("unaligned length {len}: the kernel {what}"));
    Ok(())
}

/// Restores a queue's copy_max_bytes when dropped.
pub(super) struct MaxBytes<'a> {
    sys: &'a Path,
    block: String,
    orig: u64,
}

impl<'a> MaxBytes<'a> {
    pub(super) fn set(sys: &'a Path, d: &Dev, v: u64) -> Step<Self> {
        let orig = d
            .limits
            .max_bytes
            .ok_or_else(|| skip(format!("{}: no queue/copy_max_bytes", d.name)))?;
        probe::set_max_bytes(sys, &d.block, v).map_err(|e| fail(e.to_string()))?;
        let now = probe::limits(sys, &d.block).map_err(|e| fail(e.to_string()))?;
        let g = Self {
            sys,
            block: d.block.clone(),
            orig,
        };
        if now.max_bytes != Some(v) {
            return Err(fail(format!(
                "{}: wrote {v} to copy_max_bytes, it reads {:?}",
                d.name, now.max_bytes
            )));
        }
        Ok(g)
    }
}

impl Drop for MaxBytes<'_> {
    fn drop(&mut self) {
        let _ = probe::set_max_bytes(self.sys, &self.block, self.orig);
    }
}

/// The NVM namespace the split tests use, its hardware limit and the
/// lowered limit (64 KiB, at least one block).
pub(super) fn split_setup(s: &mut Suite<'_>) -> Step<(usize, u64, u64)> {
    s.needs_offload()?;
    let a = s
        .find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))?;
    let hw = s.devs[a].limits.max_hw_bytes.unwrap_or(0);
    let max = (64 * KIB).max(s.devs[a].lbs);
    if hw < 2 * max {
        return Err(skip(format!(
            "copy_max_hw_bytes {hw} is too small to split"
        )));
    }
    let sched = std::fs::read_to_string(
        s.sys
            .join("block")
            .join(&s.devs[a].block)
            .join("queue/scheduler"),
    )
    .unwrap_or_default();
    s.diag(format!(
        "{}: I/O scheduler {}",
        s.devs[a].name,
        sched.trim()
    ));
    Ok((a, hw, max))
}

/// A copy beyond copy_max_hw_bytes, as any large copy is: the kernel must
/// split it into several Copy commands.
pub(super) fn t_split_hw(s: &mut Suite<'_>) -> Finding {
    // Over nvme-tcp each Copy of the split fails at the R2T and starts error
    // recovery; the second failing while the first reconnect completes once
    // left the 7.2 controller wedged (no reconnect, then ENOLINK for every
    // later I/O of the suite). Nothing is offloaded there anyway.
    if s.cfg.xfail.iter().any(|b| b == BUG_TCP) {
        return Finding::Skip(format!(
            "{BUG_TCP} listed: every Copy of the split fails over nvme-tcp and two \
             back-to-back recoveries can wedge the controller; not run so the suite can finish"
        ));
    }
    // Over PCIe the split Copies reach the device, and 7.2 with the series
    // oopses merging them (bio_will_gap from blk_mq_sched_try_merge in
    // blkdev_copy_offload), as with a lowered copy_max_bytes.
    if s.cfg.xfail.iter().any(|b| b == BUG_MERGE_OOPS) {
        return Finding::Skip(format!(
            "{BUG_MERGE_OOPS} listed: the split copy bios are merged and the kernel oopses \
             (bio_will_gap via blk_mq_sched_try_merge, seen over PCIe); not run so the suite \
             can finish"
        ));
    }
    let r = (|| {
        let (a, hw, _) = split_setup(s)?;
        let len = hw + 64 * KIB;
        if hw > 32 * MIB || s.devs[a].random_end() < s.devs[a].next_off + 2 * len + 4 * MIB {
            return Err(skip(format!(
                "no room for two copies of copy_max_hw_bytes ({hw}) + 64 KiB"
            )));
        }
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let c = s.copy(
            "beyond copy_max_hw_bytes",
            &Case::new(a, so, a, dof, len, Expect::Offload),
        )?;
        check_split(s, &c, len, hw)
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// copy_max_bytes lowered to 64 KiB, a 1 MiB + 4 KiB copy: at least 17
/// Copy commands (7.2 with the series oopses here merging copy bios).
pub(super) fn t_split_lowered(s: &mut Suite<'_>) -> Finding {
    if s.cfg.xfail.iter().any(|b| b == BUG_MERGE_OOPS) {
        return Finding::Skip(format!(
            "{BUG_MERGE_OOPS} listed: this copy oopses the kernel (copy bios merged in \
             bio_attempt_back_merge); not run so the suite can finish"
        ));
    }
    let r = (|| {
        let (a, _, max) = split_setup(s)?;
        let len = MIB + 4 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let _g = MaxBytes::set(s.sys, &s.devs[a], max)?;
        s.diag(format!(
            "{}: copy_max_bytes lowered to {max} (7.2 with the series oopsed on this copy, merging copy bios)",
            s.devs[a].name
        ));
        let c = s.copy(
            "beyond copy_max_bytes",
            &Case::new(a, so, a, dof, len, Expect::Offload),
        )?;
        check_split(s, &c, len, max)
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// A copy of `len` bytes with at most `max` bytes per command needs at
/// least ceil(len / max) NVMe Copy commands.
pub(super) fn check_split(s: &mut Suite<'_>, c: &Copied, len: u64, max: u64) -> Step {
    let need = len.div_ceil(max);
    match c.delta.and_then(|d| d.copy_commands) {
        Some(n) => {
            s.diag(format!(
                "{n} NVMe Copy commands for {len} bytes with at most {max} per copy (at least {need} needed)"
            ));
            if n < need {
                return Err(fail(format!(
                    "{n} NVMe Copy commands carried {len} bytes, but at most {max} bytes fit in one: at least {need} expected"
                )));
            }
        }
        None => s.diag(format!(
            "Copy commands not counted by the backend; {need} or more expected"
        )),
    }
    Ok(())
}

pub(super) fn t_forced_fallback(s: &mut Suite<'_>) -> Step {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        let len = 256 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let sys = s.sys;
        let _g = MaxBytes::set(sys, &s.devs[a], 0)?;
        s.diag(format!("{}: copy_max_bytes set to 0", s.devs[a].name));
        s.copy(
            "forced fallback",
            &Case::new(a, so, a, dof, len, Expect::Fallback),
        )?;
        Ok(())
    })();
    let name = s
        .find(&[], is_nvm)
        .map(|a| (s.devs[a].block.clone(), s.devs[a].limits.max_bytes));
    if let Some((block, Some(orig))) = name {
        match probe::limits(s.sys, &block) {
            Ok(l) if l.max_bytes == Some(orig) => {}
            Ok(l) => {
                return Err(fail(format!(
                    "copy_max_bytes not restored: {:?}, was {orig}",
                    l.max_bytes
                )))
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    r
}

pub(super) fn t_zns_at_wp(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let z = s
        .find(&[], |d| d.nvme && d.zones.is_some())
        .ok_or_else(|| skip("needs a ZNS namespace"))?;
    let len = 256 * KIB;
    let (za, cap) = s.devs[z].alloc_zone()?;
    if cap < len {
        return Err(skip(format!("zone capacity {cap} < {len}")));
    }
    let (zb, _) = s.devs[z].alloc_zone()?;
    let expect = if s.devs[z].limits.offload_enabled() {
        Expect::Offload
    } else {
        Expect::Either
    };
    s.copy(
        "zone to zone at the write pointer",
        &Case::new(z, za, z, zb, len, expect).at_wp(),
    )?;
    s.expect_wp(z, zb, zb + len)?;
    Ok(())
}

pub(super) fn scsi_random(d: &Dev) -> bool {
    !d.nvme && d.random_end() >= 2 * MIB
}

pub(super) fn t_scsi_fallback(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let a = s
        .find(&[], scsi_random)
        .ok_or_else(|| skip("needs a SCSI LUN with randomly writable space"))?;
    let len = 256 * KIB;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[a].alloc(len)?;
    let expect = if s.devs[a].limits.offload_enabled() {
        Expect::Either
    } else {
        Expect::Fallback
    };
    s.copy("within a SCSI LUN", &Case::new(a, so, a, dof, len, expect))?;
    Ok(())
}

pub(super) fn t_scsi_zone_at_wp(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let h = s
        .find(&[], |d| !d.nvme && d.zones.is_some())
        .ok_or_else(|| skip("needs a host-managed SCSI LUN"))?;
    let len = 256 * KIB;
    let src = s
        .find(&[], scsi_random)
        .ok_or_else(|| skip("needs SCSI randomly writable space for the source"))?;
    let so = s.devs[src].alloc(len)?;
    let (zb, cap) = s.devs[h].alloc_zone()?;
    if cap < len {
        return Err(skip(format!("zone capacity {cap} < {len}")));
    }
    let expect = if s.devs[h].limits.offload_enabled() {
        Expect::Either
    } else {
        Expect::Fallback
    };
    s.copy(
        "into a ZBC zone at the write pointer",
        &Case::new(src, so, h, zb, len, expect).at_wp(),
    )?;
    s.expect_wp(h, zb, zb + len)?;
    Ok(())
}
