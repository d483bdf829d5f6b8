//! The device: INQUIRY, READ CAPACITY, VPD B6h, supported operation codes, first zones.

use super::*;

pub(crate) const DEVICE: &[Test] = &[
    ("inquiry", t_inquiry),
    ("read_capacity", t_read_capacity),
    ("vpd_b6", t_vpd_b6),
    ("rsoc_zbc", t_rsoc),
    ("initial_zones", t_initial_zones),
];

pub(super) fn any_lun(c: &Ctx) -> Step {
    if c.luns.is_empty() {
        return Err(Verdict::skip("no zoned LUN"));
    }
    Ok(())
}

pub(super) fn t_inquiry(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        let l = &c.luns[li];
        let kind = l.spec.kind.to_string();
        let want = if kind == "ha" { 0x00 } else { 0x14 };
        ensure(l.pdt == want, || {
            format!(
                "{}: PERIPHERAL DEVICE TYPE {:#04x}, expected {want:#04x} for kind {kind}",
                l.name, l.pdt
            )
        })?;
        if l.pdt == 0x00 {
            // SBC-4 6.6.2 Block Device Characteristics: ZONED 01b = host aware.
            let mut p = [0u8; 64];
            let r = c.sg(li, &xcdb::inquiry(Some(0xb1), 64), Data::FromDevice(&mut p))?;
            let name = c.luns[li].name.clone();
            ensure(r.status == 0 && p[1] == 0xb1, || {
                format!("{name}: VPD B1h: {r}")
            })?;
            ensure((p[8] >> 4) & 3 == 1, || {
                format!(
                    "{name}: VPD B1h ZONED {}, expected 01b (host aware)",
                    (p[8] >> 4) & 3
                )
            })?;
        }
    }
    Ok(())
}

pub(super) fn t_read_capacity(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        let mut b = [0u8; 32];
        let r = c.sg(li, &scsi::read_capacity16(32), Data::FromDevice(&mut b))?;
        let l = &c.luns[li];
        ensure(r.status == 0, || {
            format!("{}: READ CAPACITY(16): {r}", l.name)
        })?;
        let (last, bs) = scsi::parse_capacity16(&b).map_err(bad)?;
        ensure(
            last + 1 == l.model.layout.blocks && u64::from(bs) == l.bs(),
            || {
                format!(
                    "{}: READ CAPACITY(16) last LBA {last} block length {bs}, expected {} and {}",
                    l.name,
                    l.model.layout.blocks - 1,
                    l.bs()
                )
            },
        )?;
    }
    Ok(())
}

/// VPD B6h against what the host configured: the open limit (as the
/// control socket reports the configuration), the zone alignment method
/// and granularity of gap zones, the host aware extension.
pub(super) fn t_vpd_b6(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for l in &c.luns {
        let v =
            l.b6.ok_or_else(|| bad(format!("{}: no VPD B6h page", l.name)))?;
        c.diags.push(format!("{}: {v:?}", l.name));
        let lay = l.model.layout;
        let want_urswrz = l.spec.zones.is_none_or(|z| z.urswrz);
        ensure(v.urswrz == want_urswrz, || {
            format!(
                "{}: URSWRZ {}, configured {}",
                l.name,
                u8::from(v.urswrz),
                u8::from(want_urswrz)
            )
        })?;
        if lay.host_aware {
            ensure(v.zbd_ext == 1, || {
                format!(
                    "{}: ZONED BLOCK DEVICE EXTENSION {}, expected 1h (host aware)",
                    l.name, v.zbd_ext
                )
            })?;
        } else {
            ensure(v.zbd_ext == 0, || {
                format!(
                    "{}: ZONED BLOCK DEVICE EXTENSION {}, expected 0h",
                    l.name, v.zbd_ext
                )
            })?;
            if let Some(open) = l.ctl_max_open {
                let want = open.unwrap_or(u32::MAX);
                ensure(v.max_open_swr == want, || {
                    format!(
                        "{}: MAXIMUM NUMBER OF OPEN SEQUENTIAL WRITE REQUIRED ZONES {:#x}, configured {want:#x}",
                        l.name, v.max_open_swr
                    )
                })?;
            }
        }
        if lay.cap_blocks < lay.zone_blocks {
            ensure(v.zam == 8 && v.granularity == lay.zone_blocks, || {
                format!(
                    "{}: zone capacity < zone size needs ZONE ALIGNMENT METHOD 8h and granularity {}, got {:#x} and {}",
                    l.name, lay.zone_blocks, v.zam, v.granularity
                )
            })?;
        } else {
            ensure(
                v.zam <= 1 || (v.zam == 8 && v.granularity == lay.zone_blocks),
                || {
                    format!(
                        "{}: ZONE ALIGNMENT METHOD {:#x} granularity {}",
                        l.name, v.zam, v.granularity
                    )
                },
            )?;
        }
    }
    Ok(())
}

/// REPORT SUPPORTED OPERATION CODES for each ZBC OUT service action and
/// REPORT ZONES: supported, 16-byte CDBs whose usage data covers ZONE ID,
/// ALL, PARTIAL and REPORTING OPTIONS.
pub(super) fn t_rsoc(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        let name = c.luns[li].name.clone();
        for (op, sa) in [(0x94u8, 1u16), (0x94, 2), (0x94, 3), (0x94, 4), (0x95, 0)] {
            let mut b = [0u8; 64];
            let r = c.sg(li, &xcdb::rsoc_one(op, sa, 64), Data::FromDevice(&mut b))?;
            ensure(r.status == 0, || {
                format!("{name}: RSOC {op:02x}h/{sa:02x}h: {r}")
            })?;
            let one = xparse::rsoc_one(&b).map_err(bad)?;
            let u = &one.usage;
            let ok = one.support == 0b011
                && u.len() == 16
                && u[0] == op
                // SPC-4 6.35.3: the service action itself in its field.
                && u16::from(u[1] & 0x1f) == sa
                && u[2..10].iter().all(|&x| x == 0xff)
                && if op == 0x94 {
                    u[14] & 1 == 1
                } else {
                    u[10..14].iter().all(|&x| x == 0xff) && u[14] & 0xbf == 0xbf
                };
            ensure(ok, || {
                format!(
                    "{name}: RSOC {op:02x}h/{sa:02x}h: SUPPORT {:03b}, usage [{}]",
                    one.support,
                    hex(u)
                )
            })?;
        }
        let zc = c.luns[li].zone_count;
        c.diag(format!("{name}: ZONE COUNT in the CDB usage data: {zc:?}"));
    }
    Ok(())
}

pub(super) fn t_initial_zones(c: &mut Ctx) -> Step {
    any_lun(c)?;
    for li in 0..c.luns.len() {
        c.fresh(li)?;
    }
    Ok(())
}
