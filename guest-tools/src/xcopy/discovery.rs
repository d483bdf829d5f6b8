//! Discovery: INQUIRY, VPD pages 83h and 8Fh, operating parameters, RSOC.

use super::*;

pub(super) fn t_luns(c: &mut Ctx) -> Step {
    ensure(c.hm.len() >= 2, || {
        format!(
            "{} host-managed LUNs found and opened, the suite needs 2 (cross-LU copies)",
            c.hm.len()
        )
    })?;
    let a = &c.devs[c.hm[0]];
    let b = &c.devs[c.hm[1]];
    c.diag(format!(
        "A = {} (bs {}), B = {} (bs {}), disk = {}",
        a.name,
        a.bs(),
        b.name,
        b.bs(),
        c.disk.map_or("none".into(), |d| c.devs[d].name.clone())
    ));
    if c.disk.is_none() {
        c.diag("no disk LUN: to_disk_lu tests will SKIP");
    }
    Ok(())
}

pub(super) fn t_inquiry(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(None, 96), 96, "INQUIRY")?;
        ensure(b.len() >= 8, || {
            format!("INQUIRY returned {} bytes", b.len())
        })?;
        let d = &mut c.devs[i];
        d.pdt = b[0] & 0x1f;
        let want = match d.spec.kind {
            LunKind::HostManaged => 0x14,
            LunKind::HostAware | LunKind::Disk => 0x00,
        };
        let name = d.name.clone();
        ensure(d.pdt == want, || {
            format!(
                "{name}: PERIPHERAL DEVICE TYPE {:02X}h, expected {want:02X}h",
                b[0] & 0x1f
            )
        })?;
        // SPC-4 6.6.2: 3PC (byte 5 bit 3) = the LU contains a copy manager.
        ensure(b[5] & 0x08 != 0, || {
            format!(
                "{name}: standard INQUIRY byte 5 is {:02x}: 3PC bit not set",
                b[5]
            )
        })?;
    }
    Ok(())
}

pub(super) fn t_vpd_pages(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(Some(0), 255), 255, "INQUIRY VPD 00h")?;
        let n = usize::from(*b.get(3).unwrap_or(&0));
        let pages = b.get(4..4 + n).unwrap_or(&[]);
        let name = c.devs[i].name.clone();
        c.diag(format!("{name}: VPD pages {}", hex(pages)));
        ensure(pages.contains(&0x83) && pages.contains(&0x8f), || {
            format!("{name}: supported VPD pages {} lack 83h or 8Fh", hex(pages))
        })?;
    }
    Ok(())
}

pub(super) fn t_vpd83(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(Some(0x83), 1024), 1024, "INQUIRY VPD 83h")?;
        let name = c.devs[i].name.clone();
        let ds = parse::vpd83(&b).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        for d in &ds {
            c.diag(format!(
                "{name}: designator assoc {} type {} code set {} [{}]",
                d.association,
                d.designator_type,
                d.code_set,
                hex(&d.designator)
            ));
        }
        let lu = parse::lu_designator(&ds).cloned().ok_or_else(|| {
            Verdict::fail(format!(
                "{name}: no logical-unit designator (NAA, EUI-64, T10 or SCSI name, <= 20 bytes) for an E4h CSCD"
            ))
        })?;
        if let Some((other, _)) = seen.iter().find(|(_, d)| *d == lu.designator) {
            return Err(Verdict::fail(format!(
                "{name} and {other} share the designator [{}]",
                hex(&lu.designator)
            )));
        }
        seen.push((name, lu.designator.clone()));
        c.devs[i].designator = Some(lu);
    }
    Ok(())
}

pub(super) fn t_vpd8f(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    let mut first: Option<Vec<parse::TpcDescriptor>> = None;
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(Some(0x8f), 4096), 4096, "INQUIRY VPD 8Fh")?;
        let name = c.devs[i].name.clone();
        let descs = parse::vpd8f(&b).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        let t = parse::tpc(&descs).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        if first.is_none() {
            c.diag(format!("{name}: VPD 8Fh [{}]", hex(&b)));
            c.diag(format!("{name}: {t:?}"));
            // SPC-4 7.8.17: a copy manager supporting EXTENDED COPY reports
            // Supported Commands, Parameter Data, Supported Descriptors,
            // Supported CSCD Descriptor IDs and General Copy Operations.
            for (k, what) in [
                (0x0001u16, "Supported Commands"),
                (0x0004, "Parameter Data"),
                (0x0008, "Supported Descriptors"),
                (0x000c, "Supported CSCD Descriptor IDs"),
                (0x8001, "General Copy Operations"),
            ] {
                ensure(t.kinds.contains(&k), || {
                    format!("{name}: VPD 8Fh lacks the {what} descriptor ({k:04X}h)")
                })?;
            }
            for sa in [out_sa::LID1, out_sa::LID4] {
                ensure(t.supports(0x83, sa), || {
                    format!("{name}: Supported Commands lacks 83h/{sa:02X}h")
                })?;
            }
            for sa in [
                in_sa::COPY_STATUS_LID1,
                in_sa::OPERATING_PARAMETERS,
                in_sa::FAILED_SEGMENT_DETAILS,
                in_sa::COPY_STATUS_LID4,
            ] {
                ensure(t.supports(0x84, sa), || {
                    format!("{name}: Supported Commands lacks 84h/{sa:02X}h")
                })?;
            }
            for code in [0x02u8, 0xe4] {
                ensure(t.supports_descriptor(code), || {
                    format!("{name}: Supported Descriptors lacks {code:02X}h")
                })?;
            }
            // Tokens: the token descriptors are there iff the commands are.
            let tokens = t.supports(0x83, out_sa::POPULATE_TOKEN)
                || t.supports(0x83, out_sa::WRITE_USING_TOKEN);
            if tokens {
                for (k, what) in [
                    (0x0000u16, "Block Device ROD Token Limits"),
                    (0x0106, "ROD Token Features"),
                    (0x0108, "Supported ROD Token and ROD Types"),
                ] {
                    ensure(t.kinds.contains(&k), || {
                        format!("{name}: POPULATE TOKEN / WRITE USING TOKEN advertised but VPD 8Fh lacks {what} ({k:04X}h)")
                    })?;
                }
                ensure(
                    t.supports(0x83, out_sa::POPULATE_TOKEN)
                        && t.supports(0x83, out_sa::WRITE_USING_TOKEN)
                        && t.supports(0x84, in_sa::ROD_TOKEN_INFORMATION),
                    || {
                        format!("{name}: token commands advertised only in part (83h/10h, 83h/11h, 84h/07h)")
                    },
                )?;
            }
            first = Some(comparable(&descs));
            c.tpc = Some(t);
        } else if first.as_ref() != Some(&comparable(&descs)) {
            // One copy manager per target: every LU describes it alike.
            c.diag(format!("{name}: VPD 8Fh [{}]", hex(&b)));
            return Err(Verdict::fail(format!(
                "{name}: VPD 8Fh differs from {}'s",
                c.devs[0].name
            )));
        }
    }
    Ok(())
}

/// VPD 8Fh without the Block Device ROD Token Limits descriptor, whose
/// sizes count logical blocks of each LU: what must be equal across LUs of
/// one copy manager.
pub(super) fn comparable(descs: &[parse::TpcDescriptor]) -> Vec<parse::TpcDescriptor> {
    descs.iter().filter(|d| d.kind != 0x0000).cloned().collect()
}

pub(super) fn t_opparams(c: &mut Ctx) -> Step {
    let a = c.a()?;
    let b = c.data_in(
        a,
        &cdb::receive_lid1(in_sa::OPERATING_PARAMETERS, 0, 1024),
        1024,
        "RECEIVE COPY OPERATING PARAMETERS",
    )?;
    c.diag(format!("operating parameters [{}]", hex(&b)));
    let o = parse::operating_parameters(&b).map_err(Verdict::Fail)?;
    ensure(o.max_cscd >= 2, || {
        format!("MAXIMUM CSCD DESCRIPTOR COUNT {} < 2", o.max_cscd)
    })?;
    ensure(o.max_segments >= 1, || {
        "MAXIMUM SEGMENT DESCRIPTOR COUNT 0".into()
    })?;
    ensure(
        o.implemented.contains(&0x02) && o.implemented.contains(&0xe4),
        || {
            format!(
                "IMPLEMENTED DESCRIPTOR TYPE CODES {} lack 02h or E4h",
                hex(&o.implemented)
            )
        },
    )?;
    c.op = Some(o);
    Ok(())
}

pub(super) fn t_limits(c: &mut Ctx) -> Step {
    c.needs("vpd_8f")?;
    c.needs("operating_parameters")?;
    let (t, o) = match (&c.tpc, &c.op) {
        (Some(t), Some(o)) => (t.clone(), o.clone()),
        _ => return Err(Verdict::skip("needs vpd_8f and operating_parameters")),
    };
    let pairs = [
        (
            "MAXIMUM CSCD DESCRIPTOR COUNT",
            t.max_cscd.map(u32::from),
            u32::from(o.max_cscd),
        ),
        (
            "MAXIMUM SEGMENT DESCRIPTOR COUNT",
            t.max_segments.map(u32::from),
            u32::from(o.max_segments),
        ),
        (
            "MAXIMUM DESCRIPTOR LIST LENGTH",
            t.max_list_len,
            o.max_list_len,
        ),
        ("MAXIMUM INLINE DATA LENGTH", t.max_inline, o.max_inline),
        (
            "MAXIMUM SEGMENT LENGTH",
            t.max_segment_len,
            o.max_segment_len,
        ),
    ];
    for (what, vpd, rcr) in pairs {
        ensure(vpd == Some(rcr), || {
            format!("{what}: VPD 8Fh says {vpd:?}, RECEIVE COPY OPERATING PARAMETERS says {rcr}")
        })?;
    }
    let mut v = t.descriptors.clone().unwrap_or_default();
    let mut r = o.implemented.clone();
    v.sort_unstable();
    r.sort_unstable();
    ensure(v == r, || {
        format!(
            "descriptor type codes: VPD 8Fh {} vs operating parameters {}",
            hex(&v),
            hex(&r)
        )
    })?;
    // The list must be able to hold what it allows.
    let need = 2 * CSCD_LEN as u64 + 28;
    ensure(u64::from(o.max_list_len) >= need, || {
        format!(
            "MAXIMUM DESCRIPTOR LIST LENGTH {} cannot hold 2 CSCDs and a segment",
            o.max_list_len
        )
    })?;
    if let Some(ids) = &t.cscd_ids {
        c.diag(format!("supported CSCD IDs {ids:04x?}"));
    }
    Ok(())
}

pub(super) fn t_rsoc(c: &mut Ctx) -> Step {
    let a = c.a()?;
    let t = c.tpc()?.clone();
    let mut report = Vec::new();
    let mut bad = Vec::new();
    for (op, sas) in [(0x83u8, 0u8..=0x1f), (0x84, 0..=0x1f)] {
        for sa in sas {
            let b = c.data_in(
                a,
                &cdb::rsoc_one(op, u16::from(sa), 64),
                64,
                "REPORT SUPPORTED OPERATION CODES",
            )?;
            let r = parse::rsoc_one(&b).map_err(Verdict::Fail)?;
            let advertised = t.supports(op, sa);
            let supported = r.support == 0b011 || r.support == 0b101;
            if supported {
                report.push(format!("{op:02X}h/{sa:02X}h"));
                // SPC-4 6.35.3: byte 0 of CDB USAGE DATA is the operation
                // code, and the service action code sits where the
                // SERVICE ACTION field is (byte 1 bits 4..0); the rest is a
                // usage bit map.
                if !(r.usage.len() == 16 && r.usage[0] == op && r.usage[1] & 0x1f == sa) {
                    bad.push(format!(
                        "{op:02X}h/{sa:02X}h: CDB USAGE DATA [{}] does not start {op:02x} {sa:02x} (16 bytes)",
                        hex(&r.usage)
                    ));
                }
            }
            if advertised != supported {
                bad.push(format!(
                    "{op:02X}h/{sa:02X}h: REPORT SUPPORTED OPERATION CODES SUPPORT {:03b}, VPD 8Fh Supported Commands {}",
                    r.support,
                    if advertised { "lists it" } else { "does not list it" }
                ));
            }
        }
    }
    c.diag(format!("supported: {}", report.join(" ")));
    for b in &bad {
        c.diag(b.clone());
    }
    ensure(bad.is_empty(), || {
        format!("{} mismatches, first: {}", bad.len(), bad[0])
    })
}
