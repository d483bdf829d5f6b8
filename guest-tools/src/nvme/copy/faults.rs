//! Copies under injected faults: a failing read, a failing Copy, a media error.
//!
//! Faults are injected through the control socket (`fault` rules of the
//! backend, see vhost-device/src/storage/fault.rs); a guard clears every
//! rule when the test ends, however it ends.

use super::*;

/// Media and Data Integrity Errors (SCT 2h), NVMe Base 2.1 Figure 104.
pub(super) const WRITE_FAULT: u16 = 0x0280;
pub(super) const UNRECOVERED_READ_ERROR: u16 = 0x0281;

pub(super) fn fault_guard(c: &mut Ctx<'_>) -> Result<control::FaultGuard, Verdict> {
    let addr = c.control()?.addr();
    control::FaultGuard::new(addr).map_err(|e| Verdict::fail(format!("clearing faults: {e}")))
}

/// The test's own verdict first; then whether its faults were cleared.
pub(super) fn finish(g: control::FaultGuard, r: Step) -> Step {
    let cleared = g.finish();
    r?;
    cleared
        .map(|_| ())
        .map_err(|e| Verdict::fail(format!("clearing the faults: {e}")))
}

/// Read (02h) of `nlb` LBAs at `slba` through passthrough.
pub(super) fn read_cmd(
    f: &File,
    nsid: u32,
    slba: u64,
    nlb: u64,
    buf: &mut [u8],
) -> Result<Done, Verdict> {
    let nlb0 = u32::try_from(nlb - 1).map_err(|_| Verdict::fail("read too long"))?;
    let cmd = Command::new(io_op::READ, nsid).qw(10, slba).dw(12, nlb0);
    passthru::io(f, &cmd, Data::In(buf)).map_err(fail("Read passthrough"))
}

pub(super) fn expect_status(d: &Done, want: u16, what: &str) -> Step {
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
pub(super) fn t_fault_read(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let mut g = fault_guard(c)?;
    let r = fault_read(c, nsid, &mut g);
    finish(g, r)
}

pub(super) fn fault_read(c: &mut Ctx<'_>, nsid: u32, g: &mut control::FaultGuard) -> Step {
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
pub(super) fn fault_ranges(nsid: u32) -> [BlockRange; 4] {
    [(nsid, 10, 2), (nsid, 20, 2), (nsid, 30, 2), (nsid, 40, 2)]
}

/// A Copy of 4 ranges with a copy-fail rule at range 2, after its first
/// block: Write Fault (SCT 2h, SC 80h), Dword 0 = 2, the lowest numbered
/// range not copied (NVM Command Set 1.1, 3.3.2.5 "Command Completion");
/// ranges 0 and 1 are at the destination, range 3 is not. (Of range 2 the
/// backend copies the block before the fault; the spec allows either.)
pub(super) fn t_fault_copy_fail(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let mut g = fault_guard(c)?;
    let r = fault_copy(c, nsid, &mut g, DST_FAULT, None);
    finish(g, r)
}

/// The same Copy with a media error in its source range 2 (its second
/// block): Unrecovered Read Error, Dword 0 = 2.
pub(super) fn t_fault_copy_media(c: &mut Ctx<'_>) -> Step {
    let nsid = nvm_with_sources(c)?;
    let mut g = fault_guard(c)?;
    let r = fault_copy(c, nsid, &mut g, DST_FAULT_MEDIA, Some(31));
    finish(g, r)
}

/// `media`: the source block with a media error, else a copy-fail rule.
pub(super) fn fault_copy(
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
    crate::faultcheck::fired_once(g, &name, &counts0, media.is_some())?;
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
