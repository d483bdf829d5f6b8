//! Area `faults`: EXTENDED COPY against faults injected in the backend
//! through the control socket (`fault` rules, vhost-device/src/storage/
//! fault.rs). Per SPC-4 (EXTENDED COPY, errors detected while processing
//! segment descriptors) a copy that stops in segment *i* ends in CHECK
//! CONDITION, COPY ABORTED, with the segment number in COMMAND-SPECIFIC
//! INFORMATION, the residual (what segment *i* did not process, in its
//! count field's unit) in INFORMATION with VALID set, and a segment
//! pointer; the ASC is that of the underlying error: WRITE ERROR (0C/00)
//! for a failed destination write, UNRECOVERED READ ERROR (11/00) for a
//! media error in the source. The segments before *i* are copied, and of
//! segment *i* the backend copies the blocks before the fault.
//!
//! A guard clears every rule when a test ends, however it ends.

use super::{b2b, need_sources, send_list, sense::key, CopyList, Ctx, Expect, Test, BS4K, SRC_OFF};
use crate::{
    control::FaultGuard,
    ktap::{ensure, Step, Verdict},
};

/// The tests of the area.
pub(super) const FAULTS: &[Test] = &[
    ("copy_fail_residual", |c| fault_copy(c, false), true),
    ("media_error_in_source", |c| fault_copy(c, true), true),
];

/// Source blocks (4 KiB) of the three segments: 8..12, 12..16, 16..20.
const FIRST_SRC_BLOCK: u64 = 8;
/// 4 KiB blocks per segment.
const SEG_BLOCKS: u64 = 4;

/// Three 4-block segments within LU A; `media`: a media error in the
/// source at segment 1's third block (LID4), else a copy-fail rule in
/// segment 2 after its first block (LID1).
fn fault_copy(c: &mut Ctx, media: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let addr = c
        .ctl
        .as_ref()
        .map(|x| x.addr())
        .ok_or_else(|| Verdict::skip(c.ctl_why.clone()))?;
    let mut g =
        FaultGuard::new(addr).map_err(|e| Verdict::fail(format!("clearing faults: {e}")))?;
    let r = run(c, a, media, &mut g);
    let cleared = g.finish();
    r?;
    cleared
        .map(|_| ())
        .map_err(|e| Verdict::fail(format!("clearing the faults: {e}")))
}

fn run(c: &mut Ctx, a: usize, media: bool, g: &mut FaultGuard) -> Step {
    let bs = c.devs[a].bs();
    let lps = BS4K / bs;
    let name = c.devs[a].name.clone();
    let dst = c.slot(a)?;
    let src = SRC_OFF + FIRST_SRC_BLOCK * BS4K;
    let seg_len = SEG_BLOCKS * BS4K;
    // (failing segment, 4 KiB blocks of it copied before the fault, rule,
    // ASC, segment pointer byte: SOURCE or DESTINATION BLOCK DEVICE LBA)
    let (failing, done, rule, asc, ptr) = if media {
        let bad = src / bs + (SEG_BLOCKS + 2) * lps;
        (
            1u64,
            2u64,
            format!(r#""kind":"media_error","lba":{bad},"blocks":{lps}"#),
            0x11,
            12,
        )
    } else {
        (
            2,
            1,
            format!(r#""kind":"copy_fail","segment":2,"after_blocks":{lps},"count":1"#),
            0x0c,
            20,
        )
    };
    // Copied: the segments before the failing one and `done` blocks of it;
    // the rest of the slot's first 12 blocks stays as it is.
    let copied = failing * seg_len + done * BS4K;
    let mut expects: Vec<Expect> = vec![c.expect_copy(a, src, a, dst, copied, false)?];
    expects.push(c.expect_unchanged(a, dst + copied, 3 * seg_len - copied, true)?);
    let id = g.client().fault_add(&name, &rule).map_err(Verdict::Fail)?;
    c.diag(format!("fault {id} on {name}: {rule}"));
    let counts0 = g.client().fault_counts(&name).map_err(Verdict::Fail)?;
    let segs = (0..3)
        .map(|i| b2b(0, 0, seg_len, src + i * seg_len, bs, dst + i * seg_len, bs))
        .collect();
    let list_id = c.list_id();
    let list = CopyList::new(list_id, &[c.cscd(a)?], segs);
    let (p, cdb, _) = send_list(media, &list);
    let sd = c
        .exec(
            a,
            &cdb,
            &p,
            &[a],
            &expects,
            &[(key::COPY_ABORTED, asc, 0x00)],
        )?
        .ok_or_else(|| Verdict::fail("no sense data"))?;
    let residual = (SEG_BLOCKS - done) * lps;
    ensure(sd.info == Some(residual), || {
        format!(
            "INFORMATION (residual) {:?}, expected {residual} blocks of segment {failing} not copied ({sd})",
            sd.info
        )
    })?;
    ensure(sd.csi.map(|v| v & 0xffff) == Some(failing), || {
        format!(
            "COMMAND-SPECIFIC INFORMATION {:?}, expected segment number {failing}",
            sd.csi
        )
    })?;
    let sks = sd
        .sks
        .filter(|s| s.valid())
        .ok_or_else(|| Verdict::fail(format!("no valid segment pointer: {sd}")))?;
    let (sd_bit, _, at) = sks.segment_pointer();
    ensure(sd_bit && at == ptr, || {
        format!(
            "segment pointer SD {} byte {at}, expected SD 1 byte {ptr} ({} BLOCK DEVICE LBA)",
            u8::from(sd_bit),
            if ptr == 12 { "SOURCE" } else { "DESTINATION" }
        )
    })?;
    crate::faultcheck::fired_once(g, &name, &counts0, media)?;
    c.diag(format!(
        "COPY ABORTED {asc:02X}h/00h in segment {failing}, residual {residual}, pointer byte {ptr}; \
         {copied} bytes copied before it"
    ));
    Ok(())
}
