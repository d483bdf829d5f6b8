//! Copies that must fail: not at the write pointer (ZBC-2), malformed lists (SPC-4 6.4).

use super::*;

pub(super) fn not_at_wp(c: &mut Ctx, lid4: bool, two: bool) -> Step {
    need_sources(c)?;
    c.needs("reset_seq_zones")?;
    let a = c.a()?;
    let b = c.b()?;
    let bs = c.devs[b].bs();
    let zone = c.devs[b]
        .seq_zone(0)
        .ok_or_else(|| Verdict::skip("B has no sequential zone"))?;
    // Give the zone a write pointer that is not its start.
    let z0 = c.wp(b, zone)?;
    if z0.wp == zone / SECTOR {
        c.write_sgio(b, zone, 2)?;
    }
    let z = c.wp(b, zone)?;
    let bad_dst = z.wp * SECTOR + BS4K; // one 4 KiB past the write pointer
    let mut expects = Vec::new();
    let mut segs = Vec::new();
    let abs = c.devs[a].bs();
    let mut ok_bytes = 0;
    if two {
        let dst = c.slot(b)?;
        let e = c.expect_copy(a, SRC_OFF, b, dst, 2 * BS4K, false)?;
        ok_bytes = 2 * BS4K;
        expects.push(e);
        segs.push(Segment::a_to_b(
            (2 * BS4K / abs) as u16,
            SRC_OFF / abs,
            dst / bs,
        ));
    }
    let before = c.expect_unchanged(b, z.wp * SECTOR, 0, false)?;
    expects.push(before);
    segs.push(Segment::a_to_b(
        (2 * BS4K / abs) as u16,
        (SRC_OFF + 2 * BS4K) / abs,
        bad_dst / bs,
    ));
    let id = c.list_id();
    let list = CopyList::new(id, &[c.cscd(a)?, c.cscd(b)?], segs);
    let (p, cdb, h) = send_list(lid4, &list);
    let failing = list.segments.len() - 1;
    let seg_at = list.segment_offset(h, failing);
    let sd = c
        .exec(
            b,
            &cdb,
            &p,
            &[a, b],
            &expects,
            &[(key::COPY_ABORTED, 0x21, 0x04)],
        )?
        .ok_or_else(|| Verdict::fail("no sense"))?;
    let z2 = c.wp(b, zone)?;
    ensure(z2.wp == z.wp && z2.cond == z.cond, || {
        format!("zone changed: {z} -> {z2}")
    })?;
    // The data below the write pointer is intact.
    blockio::read_verify(
        &c.devs[b].file,
        zone,
        (z.wp * SECTOR - zone) / BS4K,
        c.devs[b].gen,
    )
    .map_err(|e| Verdict::fail(format!("data below the write pointer: {e}")))?;
    // Sense-key specific: segment pointer (SPC-4 4.5.2.4.6) at the failing
    // segment descriptor.
    let sks = sd.sks.filter(|s| s.valid()).ok_or_else(|| {
        Verdict::fail(format!(
            "COPY ABORTED without a valid segment pointer: {sd}"
        ))
    })?;
    let (sd_bit, _, ptr) = sks.segment_pointer();
    let seg_len = 28;
    let ok = if sd_bit {
        usize::from(ptr) < seg_len
    } else {
        (seg_at..seg_at + seg_len).contains(&usize::from(ptr))
    };
    ensure(ok, || {
        format!(
            "segment pointer SD {} byte {ptr}: not within the failing segment descriptor {failing} at byte {seg_at}",
            u8::from(sd_bit)
        )
    })?;
    if let Some(csi) = sd.csi {
        c.diag(format!(
            "COMMAND-SPECIFIC INFORMATION {csi:#x} (failing segment {failing})"
        ));
    }
    match (lid4, two) {
        (false, false) => c.lid1_failed_single = Some((id, sd)),
        (false, true) => c.lid1_failed = Some((id, 1, ok_bytes, sd)),
        (true, _) => c.lid4_failed = Some((id, 1, ok_bytes, sd)),
    }
    Ok(())
}

// --------------------------------------------------------------- bad lists

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    Truncated,
    CscdType,
    SegmentType,
    TooManyCscds,
    TooManySegments,
    Inline,
    UnknownLu,
    CscdIndex,
    BlockLength,
    BeyondCapacity,
    Lid4SegmentType,
    NoListIdNonzero,
}

/// What every malformed list starts from: the two LUs, their limits,
/// and a good segment copying from A's source area to a slot of B.
struct Setup {
    a: usize,
    b: usize,
    abs: u64,
    bbs: u64,
    tpc: Tpc,
    op: OperatingParameters,
    dst: u64,
    len: u64,
    good_seg: Segment,
    /// Parameter-list header length (LID1 or LID4).
    h: usize,
}

/// The sense codes a malformed list may get, and the parameter-list byte
/// the field pointer must name if SPC asks for one.
type Want = (Vec<(u8, u8, u8)>, Option<usize>);

pub(super) fn bad(c: &mut Ctx, what: Bad) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (abs, bbs) = (c.devs[a].bs(), c.devs[b].bs());
    let tpc = c.tpc()?.clone();
    let op =
        c.op.clone()
            .ok_or_else(|| Verdict::skip("needs operating_parameters"))?;
    let dst = c.slot(b)?;
    let len = 2 * BS4K;
    let good_seg = Segment::a_to_b((len / abs) as u16, SRC_OFF / abs, dst / bbs);
    let mut list = CopyList::new(
        c.list_id(),
        &[c.cscd(a)?, c.cscd(b)?],
        vec![good_seg.clone()],
    );
    let lid4 = what == Bad::Lid4SegmentType;
    let h = if lid4 { LID4_HEADER } else { LID1_HEADER };
    let s = Setup {
        a,
        b,
        abs,
        bbs,
        tpc,
        op,
        dst,
        len,
        good_seg,
        h,
    };
    let (want, ptr) = corrupt(c, what, &s, &mut list)?;
    let (mut p, cdb_bytes, _) = send_list(lid4, &list);
    let mut cdb_arr = cdb_bytes;
    if what == Bad::Truncated {
        // Cut the last segment descriptor short: the PARAMETER LIST LENGTH
        // ends inside it.
        p.truncate(p.len() - 10);
        cdb_arr = cdb::extended_copy(out_sa::LID1, p.len() as u32);
    }
    let e = c.expect_unchanged(b, dst, len, true)?;
    let sd = c
        .exec(a, &cdb_arr, &p, &[a, b], &[e], &want)?
        .ok_or_else(|| Verdict::fail("no sense"))?;
    match ptr {
        Some(at) => check_pointer(c, &sd, &list, h, at),
        None => Ok(()),
    }
}

/// Break `list` the way `what` says; the sense it must get.
fn corrupt(c: &mut Ctx, what: Bad, s: &Setup, list: &mut CopyList) -> Result<Want, Verdict> {
    let ill = key::ILLEGAL_REQUEST;
    Ok(match what {
        Bad::Truncated => (vec![(ill, 0x1a, 0x00)], None),
        Bad::CscdType => {
            let code = [0xe0u8, 0xe1, 0xe2, 0xe3, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9]
                .into_iter()
                .find(|x| !s.tpc.supports_descriptor(*x))
                .ok_or_else(|| Verdict::skip("every CSCD type code E0h..E9h is advertised"))?;
            list.cscds[1][0] = code;
            c.diag(format!("CSCD 1 type code {code:02X}h"));
            (vec![(ill, 0x26, 0x07)], Some(s.h + CSCD_LEN))
        }
        Bad::SegmentType | Bad::Lid4SegmentType => {
            let code = [0x01u8, 0x03, 0x07, 0x0b, 0x0c, 0x0d]
                .into_iter()
                .find(|x| !s.tpc.supports_descriptor(*x))
                .ok_or_else(|| Verdict::skip("no unadvertised segment type code to try"))?;
            let mut raw = s.good_seg.encode();
            raw[0] = code;
            list.segments = vec![Segment::Raw(raw)];
            c.diag(format!("segment 0 type code {code:02X}h"));
            (vec![(ill, 0x26, 0x09)], Some(s.h + 2 * CSCD_LEN))
        }
        Bad::TooManyCscds => {
            let n = usize::from(s.op.max_cscd) + 1;
            if (n * CSCD_LEN + 28) as u64 > u64::from(s.op.max_list_len) {
                return Err(Verdict::skip(format!(
                    "{n} CSCDs exceed MAXIMUM DESCRIPTOR LIST LENGTH {}: the list-length error would come first",
                    s.op.max_list_len
                )));
            }
            let one = list.cscds[1].clone();
            list.cscds.resize(n, one);
            (vec![(ill, 0x26, 0x06)], None)
        }
        Bad::TooManySegments => {
            let n = usize::from(s.op.max_segments) + 1;
            if (2 * CSCD_LEN + n * 28) as u64 > u64::from(s.op.max_list_len) {
                return Err(Verdict::skip(format!(
                    "{n} segments exceed MAXIMUM DESCRIPTOR LIST LENGTH {}",
                    s.op.max_list_len
                )));
            }
            list.segments = vec![s.good_seg.clone(); n];
            (vec![(ill, 0x26, 0x08)], None)
        }
        Bad::Inline => {
            list.inline = vec![0x5a; (s.op.max_inline as usize + 4).div_ceil(4) * 4];
            (vec![(ill, 0x26, 0x0b)], None)
        }
        Bad::UnknownLu => {
            // A designator of the same type no LU of this target has.
            let mut cs = c.cscd(s.b)?;
            for x in cs.designator.iter_mut().skip(1) {
                *x ^= 0x5a;
            }
            list.cscds[1] = cs.encode().to_vec();
            (vec![(key::COPY_ABORTED, 0x0d, 0x02)], None)
        }
        Bad::CscdIndex => {
            list.segments = vec![Segment::B2B {
                src: 0,
                dst: 5,
                dc: false,
                blocks: (s.len / s.abs) as u16,
                src_lba: SRC_OFF / s.abs,
                dst_lba: s.dst / s.bbs,
            }];
            // The CSCD index names no descriptor: INVALID FIELD IN
            // PARAMETER LIST at the DESTINATION CSCD DESCRIPTOR ID.
            // SPC-4 names no single code here: an unknown CSCD is
            // unreachable (LIO: COPY ABORTED 0Dh/02h; FreeBSD CTL: COPY
            // ABORTED 08h/04h UNREACHABLE COPY TARGET), or the field is
            // invalid (ILLEGAL REQUEST 26h/00h). The pointer must name the
            // DESTINATION CSCD DESCRIPTOR ID either way.
            (
                vec![
                    (key::COPY_ABORTED, 0x0d, 0x02),
                    (key::COPY_ABORTED, 0x08, 0x04),
                    (ill, 0x26, 0x00),
                ],
                Some(s.h + 2 * CSCD_LEN + 6),
            )
        }
        Bad::BlockLength => {
            // B's CSCD claims 4096-byte blocks (or 512 if it has 4096).
            let other = if s.bbs == 4096 { 512u32 } else { 4096 };
            let mut cs = c.cscd(s.b)?;
            cs.block_len = other;
            list.cscds[1] = cs.encode().to_vec();
            c.diag(format!(
                "CSCD 1 DISK BLOCK LENGTH {other}, the LU has {}",
                s.bbs
            ));
            // A CSCD that does not describe the LU it names: COPY ABORTED,
            // INCORRECT COPY TARGET DEVICE TYPE, or a parameter-list field
            // error (ILLEGAL REQUEST 26h/00h) at DISK BLOCK LENGTH (CSCD
            // byte 29). COPY ABORTED is for errors at the source or
            // destination (SPC-4 4.5.6), not for parameter-list fields.
            (
                vec![(key::COPY_ABORTED, 0x0d, 0x03), (ill, 0x26, 0x00)],
                Some(s.h + CSCD_LEN + 29),
            )
        }
        Bad::NoListIdNonzero => {
            // SPC-4 6.4.3.2: LIST ID USAGE 11b requires LIST IDENTIFIER 0.
            list.usage = cdb::ListIdUsage::None;
            list.list_id |= 1;
            (vec![(ill, 0x26, 0x00)], Some(0))
        }
        Bad::BeyondCapacity => {
            let last = c.devs[s.a].spec.size / s.abs;
            list.segments = vec![Segment::a_to_b(
                (s.len / s.abs) as u16,
                last - 1,
                s.dst / s.bbs,
            )];
            (vec![(key::COPY_ABORTED, 0x21, 0x00)], None)
        }
    })
}

/// The pointer in the sense-key specific bytes must name parameter-list
/// byte `at`.
fn check_pointer(c: &mut Ctx, sd: &SenseData, list: &CopyList, h: usize, at: usize) -> Step {
    // SPC-4 4.5.2.4.2: if SKSV is set, C/D 0 and the pointer at the
    // offending byte of the parameter list.
    // COPY ABORTED carries a segment pointer instead (4.5.2.4.6): SD 1
    // makes it relative to the (first, here the only) segment.
    match sd.sks.filter(|s| s.valid()) {
        Some(s) if sd.key == key::COPY_ABORTED => {
            let (sd_bit, _, f) = s.segment_pointer();
            let abs = if sd_bit {
                usize::from(f) + list.segment_offset(h, 0)
            } else {
                usize::from(f)
            };
            ensure(abs == at, || {
                format!(
                    "segment pointer SD {} byte {f} = list byte {abs}, expected list byte {at}",
                    u8::from(sd_bit)
                )
            })?;
        }
        Some(s) => {
            let (cd, _, f) = s.field_pointer();
            ensure(!cd && usize::from(f) == at, || {
                format!(
                    "field pointer C/D {} byte {f}, expected parameter-list byte {at}",
                    u8::from(cd)
                )
            })?;
        }
        None => c.diag(format!(
            "no field pointer (SKSV 0); byte {at} would be the one"
        )),
    }
    Ok(())
}

/// A list identifier is unique among operations in progress only: a
/// completed list's identifier may be used again (SPC-4 6.4.3.2).
pub(super) fn t_list_id_reuse(c: &mut Ctx) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let bs = c.devs[a].bs();
    let id = c.list_id();
    let mut first_host = None;
    for round in 0..2 {
        let dst = c.slot(a)?;
        let src = SRC_OFF + (24 + 2 * round) * BS4K;
        let e = c.expect_copy(a, src, a, dst, 2 * BS4K, false)?;
        let list = CopyList::new(
            id,
            &[c.cscd(a)?],
            vec![Segment::B2B {
                src: 0,
                dst: 0,
                dc: false,
                blocks: (2 * BS4K / bs) as u16,
                src_lba: src / bs,
                dst_lba: dst / bs,
            }],
        );
        let (p, cdb, _) = send_list(false, &list);
        c.exec(a, &cdb, &p, &[a], &[e], &[]).map_err(|v| match v {
            Verdict::Fail(w) => {
                Verdict::Fail(format!("round {round} with list {:02x}: {w}", id as u8))
            }
            v => v,
        })?;
        if round == 0 {
            first_host = c.host.take();
        }
    }
    // Report the first round's host failure if it had one.
    if let Some(Verdict::Fail(w)) = first_host {
        c.host = Some(Verdict::Fail(format!("round 0: {w}")));
    }
    Ok(())
}

pub(super) fn t_list_id_in_use(_c: &mut Ctx) -> Step {
    Err(Verdict::skip(
        "SG_IO is synchronous: a second list with the same identifier cannot be sent while the first runs",
    ))
}
