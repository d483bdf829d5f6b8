//! Data set-up and the copies themselves (EXTENDED COPY LID1 and LID4).

use super::*;

pub(super) fn t_control(c: &mut Ctx) -> Step {
    if c.ctl.is_none() {
        return Err(Verdict::skip(c.ctl_why.clone()));
    }
    for i in 0..c.devs.len() {
        let name = c.devs[i].name.clone();
        let s = c.ctl.as_mut().map(|k| k.stats(&name));
        match s {
            Some(Ok(s)) => c.diag(format!("{name}: {s}")),
            Some(Err(e)) => {
                // Host checks cannot run: say so once here, SKIP them later.
                c.ctl_why = format!("control socket unusable: {e}");
                c.ctl = None;
                return Err(Verdict::Fail(e));
            }
            None => {}
        }
    }
    Ok(())
}

pub(super) fn t_reset(c: &mut Ctx) -> Step {
    c.a()?;
    for &i in &c.hm.clone() {
        let d = &c.devs[i];
        let z = d.spec.zones.ok_or_else(|| Verdict::fail("no zones"))?;
        for k in 0..2 {
            let Some(start) = d.seq_zone(k) else { continue };
            bz::zone_mgmt(&d.file, ZoneOp::Reset, start / SECTOR, z.zone_size / SECTOR)
                .map_err(fail(&format!("{}: BLKRESETZONE at byte {start}", d.name)))?;
            let zone = c.wp(i, start)?;
            ensure(
                zone.cond == bz::BLK_ZONE_COND_EMPTY && zone.wp == start / SECTOR,
                || format!("{}: after reset: {zone}", c.devs[i].name),
            )?;
        }
    }
    Ok(())
}

pub(super) fn t_sources(c: &mut Ctx) -> Step {
    c.a()?;
    let mut expects = Vec::new();
    for i in 0..c.devs.len() {
        let d = &c.devs[i];
        ensure(d.conv_bytes() >= DST_OFF + SLOT, || {
            format!(
                "{}: {} bytes of conventional space, the suite needs {}",
                d.name,
                d.conv_bytes(),
                DST_OFF + SLOT
            )
        })?;
        blockio::write_stamped(&d.file, SRC_OFF, SRC_BLOCKS, d.gen, 16)
            .map_err(fail(&format!("{}: write source", d.name)))?;
        blockio::read_verify(&d.file, SRC_OFF, SRC_BLOCKS, d.gen)
            .map_err(|e| Verdict::fail(format!("{}: {e}", d.name)))?;
        let data = c.read(i, SRC_OFF, SRC_BLOCKS * BS4K)?;
        expects.push(Expect {
            dev: i,
            region: SRC_OFF,
            data,
            stamps: None,
            copied: 0,
        });
    }
    c.sources = true;
    // Host side: what the host stores is what the guest wrote.
    let mut v = Verdict::Pass;
    if c.ctl.is_none() {
        v = Verdict::skip(c.ctl_why.clone());
    } else {
        for e in &expects {
            let want = crc32c::crc32c(&e.data);
            match c.host_checksum(e.dev, e.region, e.data.len() as u64) {
                Ok(k) if k.crc == want => {}
                Ok(k) => {
                    v = Verdict::fail(format!(
                        "{}: host CRC32C {:#010x}, guest data {want:#010x}",
                        c.devs[e.dev].name, k.crc
                    ));
                    break;
                }
                Err(e) => {
                    v = Verdict::fail(e);
                    break;
                }
            }
        }
    }
    c.host = Some(v);
    Ok(())
}

/// Blocks of stamped data at the start of A's second sequential zone.
pub(super) const SEQ_SRC_BLOCKS: u64 = 16;

pub(super) fn t_seq_source(c: &mut Ctx) -> Step {
    c.needs("reset_seq_zones")?;
    let a = c.a()?;
    let start = c.devs[a]
        .seq_zone(1)
        .ok_or_else(|| Verdict::skip("needs two sequential zones on A"))?;
    c.write_sgio(a, start, SEQ_SRC_BLOCKS)?;
    let z = c.wp(a, start)?;
    ensure(
        z.wp == start / SECTOR + SEQ_SRC_BLOCKS * BS4K / SECTOR,
        || format!("after writing {SEQ_SRC_BLOCKS} blocks: {z}"),
    )?;
    blockio::read_verify(&c.devs[a].file, start, SEQ_SRC_BLOCKS, c.devs[a].gen)
        .map_err(Verdict::Fail)?;
    c.seq_source = Some(start);
    Ok(())
}

// ----------------------------------------------------------------- copies

pub(super) fn need_sources(c: &Ctx) -> Step {
    if c.sources {
        Ok(())
    } else {
        Err(Verdict::skip("needs data.sources"))
    }
}

pub(super) fn send_list(lid4: bool, list: &CopyList) -> (Vec<u8>, [u8; 16], usize) {
    let (p, h) = if lid4 {
        (list.lid4(), LID4_HEADER)
    } else {
        (list.lid1(), LID1_HEADER)
    };
    let cdb = cdb::extended_copy(
        if lid4 { out_sa::LID4 } else { out_sa::LID1 },
        p.len() as u32,
    );
    (p, cdb, h)
}

pub(super) fn record_ok(c: &mut Ctx, lid4: bool, id: u32, segs: u16, bytes: u64, via: usize) {
    if lid4 {
        c.lid4_ok = Some((id, segs, bytes, via));
    } else {
        c.lid1_ok = Some((id, segs, bytes, via));
    }
}

/// A 02h block -> block segment of `len` bytes from byte `src` of CSCD
/// `s` (block size `sbs`) to byte `dst` of CSCD `d` (block size `dbs`),
/// NUMBER OF BLOCKS in source blocks (DC 0).
pub(super) fn b2b(s: u16, d: u16, len: u64, src: u64, sbs: u64, dst: u64, dbs: u64) -> Segment {
    Segment::B2B {
        src: s,
        dst: d,
        dc: false,
        blocks: (len / sbs) as u16,
        src_lba: src / sbs,
        dst_lba: dst / dbs,
    }
}

pub(super) fn copy_same_lu(c: &mut Ctx, lid4: bool, ffff: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    if ffff
        && !c
            .tpc()?
            .cscd_ids
            .as_ref()
            .is_some_and(|v| v.contains(&0xffff))
    {
        return Err(Verdict::skip(
            "CSCD ID FFFFh (the LU that received the command) not advertised in VPD 8Fh 000Ch",
        ));
    }
    let bs = c.devs[a].bs();
    let dst = c.slot(a)?;
    let (src, len) = (SRC_OFF + 4 * BS4K, 8 * BS4K);
    let e = c.expect_copy(a, src, a, dst, len, false)?;
    let id = c.list_id();
    let cs = if ffff { 0xffff } else { 0 };
    let list = CopyList::new(
        id,
        &if ffff { vec![] } else { vec![c.cscd(a)?] },
        vec![b2b(cs, cs, len, src, bs, dst, bs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(a, &cdb, &p, &[a], &[e], &[])?;
    if !ffff {
        record_ok(c, lid4, id, 1, len, a);
    }
    Ok(())
}

pub(super) fn copy_to_seq(c: &mut Ctx, lid4: bool, cross: bool) -> Step {
    need_sources(c)?;
    c.needs("reset_seq_zones")?;
    let a = c.a()?;
    // Same LU: A's first sequential zone; across: B's second one.
    let (d, k) = if cross { (c.b()?, 1) } else { (a, 0) };
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[d].bs());
    let zone = c.devs[d]
        .seq_zone(k)
        .ok_or_else(|| Verdict::skip(format!("{} has no sequential zone {k}", c.devs[d].name)))?;
    let z = c.wp(d, zone)?;
    let dst = z.wp * SECTOR;
    let (src, len) = (SRC_OFF + 16 * BS4K, 4 * BS4K);
    let e = c.expect_copy(a, src, d, dst, len, true)?;
    let id = c.list_id();
    let cscds = if cross {
        vec![c.cscd(a)?, c.cscd(d)?]
    } else {
        vec![c.cscd(a)?]
    };
    let list = CopyList::new(
        id,
        &cscds,
        vec![b2b(0, u16::from(cross), len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    let involved = if cross { vec![a, d] } else { vec![a] };
    c.exec(d, &cdb, &p, &involved, &[e], &[])?;
    let z2 = c.wp(d, zone)?;
    c.diag(format!("zone after: {z2}"));
    ensure(z2.wp == z.wp + len / SECTOR, || {
        format!(
            "write pointer {} -> {}, expected +{} sectors",
            z.wp,
            z2.wp,
            len / SECTOR
        )
    })
}

pub(super) fn copy_from_seq(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let start = c
        .seq_source
        .ok_or_else(|| Verdict::skip("needs data.seq_source"))?;
    let a = c.a()?;
    let b = c.b()?;
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[b].bs());
    let dst = c.slot(b)?;
    let len = 8 * BS4K;
    let src = start + 4 * BS4K;
    let e = c.expect_copy(a, src, b, dst, len, false)?;
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![b2b(0, 1, len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(b, &cdb, &p, &[a, b], &[e], &[]).map(|_| ())
}

pub(super) fn copy_cross(c: &mut Ctx, lid4: bool, dc: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[b].bs());
    let dst = c.slot(b)?;
    let (src, len) = (SRC_OFF + 8 * BS4K, 8 * BS4K);
    let e = c.expect_copy(a, src, b, dst, len, false)?;
    // DC 0: NUMBER OF BLOCKS counts source blocks; DC 1: destination blocks.
    let blocks = if dc { len / dbs } else { len / sbs };
    c.diag(format!(
        "{} -> {}: {} bytes as {blocks} {} blocks (DC {})",
        c.devs[a].name,
        c.devs[b].name,
        len,
        if dc { "destination" } else { "source" },
        u8::from(dc)
    ));
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![Segment::B2B {
            src: 0,
            dst: 1,
            dc,
            blocks: blocks as u16,
            src_lba: src / sbs,
            dst_lba: dst / dbs,
        }],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    // Sent to the source LU: the copy manager pushes to another LU.
    c.exec(a, &cdb, &p, &[a, b], &[e], &[]).map(|_| ())
}

pub(super) fn copy_cross_back(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (sbs, dbs) = (c.devs[b].bs(), c.devs[a].bs());
    let dst = c.slot(a)?;
    let (src, len) = (SRC_OFF + 12 * BS4K, 4 * BS4K);
    let e = c.expect_copy(b, src, a, dst, len, false)?;
    let id = c.list_id();
    // CSCD list in the other order than the forward test.
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![b2b(1, 0, len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(a, &cdb, &p, &[a, b], &[e], &[]).map(|_| ())
}

pub(super) fn copy_to_disk(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let d = c
        .disk
        .ok_or_else(|| Verdict::skip("no disk LUN configured"))?;
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[d].bs());
    let dst = c.slot(d)?;
    let (src, len) = (SRC_OFF + 20 * BS4K, 6 * BS4K);
    let e = c.expect_copy(a, src, d, dst, len, false)?;
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(d)?, c.cscd(a)?],
        vec![b2b(1, 0, len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    // Sent to the destination, the not zoned LU.
    c.exec(d, &cdb, &p, &[a, d], &[e], &[]).map(|_| ())
}

pub(super) fn copy_multi(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (abs, bbs) = (c.devs[a].bs(), c.devs[b].bs());
    let max = c.op.as_ref().map_or(1, |o| o.max_segments);
    if max < 3 {
        return Err(Verdict::skip(format!(
            "MAXIMUM SEGMENT DESCRIPTOR COUNT {max} < 3"
        )));
    }
    let da = c.slot(a)?;
    let db = c.slot(b)?;
    // seg 0: A -> A (2 blocks out of order: the second half first),
    // seg 1: A -> B, seg 2: B -> A right after seg 0's span.
    let e1 = c.expect_copy(a, SRC_OFF + 30 * BS4K, b, db, 3 * BS4K, false)?;
    let id = c.list_id();
    let segs = vec![
        Segment::B2B {
            src: 0,
            dst: 0,
            dc: false,
            blocks: (2 * BS4K / abs) as u16,
            src_lba: (SRC_OFF + 40 * BS4K) / abs,
            dst_lba: (da + 2 * BS4K) / abs,
        },
        Segment::a_to_b(
            (3 * BS4K / abs) as u16,
            (SRC_OFF + 30 * BS4K) / abs,
            db / bbs,
        ),
        Segment::B2B {
            src: 1,
            dst: 0,
            dc: false,
            blocks: (2 * BS4K / bbs) as u16,
            src_lba: (SRC_OFF + 50 * BS4K) / bbs,
            dst_lba: da / abs,
        },
    ];
    // Expected A region: [da, da + 4 blocks): B's 50..52 then A's 40..42.
    let mut ea = c.expect_copy(a, SRC_OFF + 40 * BS4K, a, da + 2 * BS4K, 2 * BS4K, false)?;
    let from_b = c.read(b, SRC_OFF + 50 * BS4K, 2 * BS4K)?;
    let region_a = c.read(a, da, 4 * BS4K)?;
    let mut data = region_a;
    data[..2 * BLOCK_SIZE].copy_from_slice(&from_b);
    data[2 * BLOCK_SIZE..].copy_from_slice(&ea.data);
    ea.region = da;
    ea.data = data;
    ea.stamps = None;
    ea.copied = 4 * BS4K;
    let list = CopyList::new(id, &[c.cscd(a)?, c.cscd(b)?], segs);
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(b, &cdb, &p, &[a, b], &[ea, e1], &[])?;
    // Stamps: the source block numbers, per segment.
    let got = c.read(a, da, 4 * BS4K)?;
    for i in 0..2 {
        stamp::verify(
            &got[i * BLOCK_SIZE..(i + 1) * BLOCK_SIZE],
            SRC_OFF / BS4K + 50 + i as u64,
            c.devs[b].gen,
        )
        .map_err(|e| Verdict::fail(format!("segment 2 block {i}: {e}")))?;
        stamp::verify(
            &got[(2 + i) * BLOCK_SIZE..(3 + i) * BLOCK_SIZE],
            SRC_OFF / BS4K + 40 + i as u64,
            c.devs[a].gen,
        )
        .map_err(|e| Verdict::fail(format!("segment 0 block {i}: {e}")))?;
    }
    record_ok(c, lid4, id, 3, 7 * BS4K, b);
    Ok(())
}

/// Variants of the 0Ah (byte offset) copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Off {
    /// Source and destination start 100 bytes into a block; the copy
    /// ends on a block boundary of both LUs: no residue anywhere (bytes
    /// before the destination offset are kept).
    Exact,
    /// Ends inside a destination block: with PAD 0 and CAT 0 that is an
    /// inexact segment, COPY ABORTED, UNEXPECTED INEXACT SEGMENT (26h/0Ah;
    /// SPC-4 table "PAD and CAT bits"), nothing written.
    Inexact,
}

pub(super) fn copy_offsets(c: &mut Ctx, lid4: bool, v: Off) -> Step {
    need_sources(c)?;
    if !c.tpc()?.supports_descriptor(0x0a) {
        return Err(Verdict::skip("segment descriptor 0Ah not advertised"));
    }
    let a = c.a()?;
    let b = c.b()?;
    let (abs, bbs) = (c.devs[a].bs(), c.devs[b].bs());
    let db = c.slot(b)?;
    // Source: A, 100 bytes into the block at SRC + 4 blocks; destination B.
    let (src_off, dst_off, n) = match v {
        // 100 + 12188 = 3 * 4096 = 24 * 512.
        Off::Exact => (100u64, 100u64, 3 * 4096 - 100u64),
        Off::Inexact => (100, 300, 8192 + 1000),
    };
    let src_lba = (SRC_OFF + 4 * BS4K) / abs;
    let dst_lba = db / bbs;
    let e = if v == Off::Inexact {
        c.expect_unchanged(b, db, 3 * BS4K, true)?
    } else {
        c.expect_copy(
            a,
            src_lba * abs + src_off,
            b,
            dst_lba * bbs + dst_off,
            n,
            false,
        )?
    };
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![Segment::B2BOffset {
            src: 0,
            dst: 1,
            bytes: n as u32,
            src_lba,
            dst_lba,
            src_off: src_off as u16,
            dst_off: dst_off as u16,
        }],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    let want: &[(u8, u8, u8)] = if v == Off::Inexact {
        &[(key::COPY_ABORTED, 0x26, 0x0a)]
    } else {
        &[]
    };
    c.exec(b, &cdb, &p, &[a, b], &[e], want).map(|_| ())
}
