//! RECEIVE COPY RESULTS and COPY OPERATION ABORT tests (SPC-4 6.18, 6.3.5).

use super::*;

/// RECEIVE COPY STATUS(LID1) of list `id` through LU `dev`.
fn status_lid1(c: &mut Ctx, dev: usize, id: u32) -> Result<parse::StatusLid1, Verdict> {
    let b = c.data_in(
        dev,
        &cdb::receive_lid1(in_sa::COPY_STATUS_LID1, id as u8, 64),
        64,
        "RECEIVE COPY STATUS(LID1)",
    )?;
    c.diag(format!("list {:02x}: [{}]", id as u8, hex(&b)));
    parse::status_lid1(&b).map_err(Verdict::Fail)
}

/// RECEIVE COPY STATUS(LID4) of list `id` through LU `dev`, which must
/// answer for EXTENDED COPY(LID4).
fn status_lid4(c: &mut Ctx, dev: usize, id: u32) -> Result<parse::StatusLid4, Verdict> {
    let d = c.data_in(
        dev,
        &cdb::receive_lid4(in_sa::COPY_STATUS_LID4, id, 1024),
        1024,
        "RECEIVE COPY STATUS(LID4)",
    )?;
    c.diag(format!("list {id:08x}: [{}]", hex(&d)));
    let s = parse::status_lid4(&d, false).map_err(Verdict::Fail)?;
    ensure(s.response_to == out_sa::LID4, || {
        format!(
            "RESPONSE TO SERVICE ACTION {:02X}h, expected 01h",
            s.response_to
        )
    })?;
    Ok(s)
}

/// SEGMENTS PROCESSED and TRANSFER COUNT (in its units, on a `bs` LU)
/// against what the list did.
fn progress(segments: u16, units: u8, count: u64, bs: u64, want: (u16, u64)) -> Step {
    let (segs, bytes) = want;
    ensure(segments == segs, || {
        format!("SEGMENTS PROCESSED {segments}, expected {segs}")
    })?;
    let tb = parse::transfer_bytes(units, count, bs);
    ensure(tb == Some(bytes), || {
        format!("TRANSFER COUNT {count} units {units:02X}h = {tb:?} bytes, expected {bytes}")
    })
}

/// The sense data a copy status holds must be the failed command's.
fn same_sense(held: &[u8], sd: &SenseData, what: &str) -> Step {
    let fs = SenseData::decode(held)
        .ok_or_else(|| Verdict::fail(format!("sense [{}] does not decode", hex(held))))?;
    ensure(
        (fs.key, fs.asc, fs.ascq) == (sd.key, sd.asc, sd.ascq),
        || format!("{what} sense {fs} differs from the command's {sd}"),
    )
}

pub(super) fn t_status_lid1_ok(c: &mut Ctx) -> Step {
    let (id, segs, bytes, a) = c
        .lid1_ok
        .ok_or_else(|| Verdict::skip("needs a completed LID1 copy"))?;
    let s = status_lid1(c, a, id)?;
    ensure(s.available == 8, || {
        format!("AVAILABLE DATA {}, expected 8", s.available)
    })?;
    ensure(s.status == 0x01, || {
        format!("COPY MANAGER STATUS {:02X}h, expected 01h", s.status)
    })?;
    let bs = c.devs[a].bs();
    progress(s.segments, s.units, u64::from(s.count), bs, (segs, bytes))
}

pub(super) fn t_status_lid1_failed(c: &mut Ctx) -> Step {
    let (id, segs, bytes, _) = c
        .lid1_failed
        .clone()
        .ok_or_else(|| Verdict::skip("needs zone_errors.lid1_second_segment_fails"))?;
    let b = c.b()?;
    let s = status_lid1(c, b, id)?;
    ensure(s.status == 0x02, || {
        format!(
            "COPY MANAGER STATUS {:02X}h, expected 02h (completed with error)",
            s.status
        )
    })?;
    let bs = c.devs[b].bs();
    progress(s.segments, s.units, u64::from(s.count), bs, (segs, bytes))
}

pub(super) fn t_failure_details(c: &mut Ctx) -> Step {
    let (id, sd) = c
        .lid1_failed_single
        .clone()
        .ok_or_else(|| Verdict::skip("needs zone_errors.lid1_not_at_wp"))?;
    let b = c.b()?;
    let d = c.data_in(
        b,
        &cdb::receive_lid1(in_sa::FAILED_SEGMENT_DETAILS, id as u8, 1024),
        1024,
        "RECEIVE COPY FAILURE DETAILS",
    )?;
    c.diag(format!("list {:02x}: [{}]", id as u8, hex(&d)));
    let f = parse::failure_details(&d).map_err(Verdict::Fail)?;
    ensure(f.available > 0, || {
        "AVAILABLE DATA 0 for a failed list".into()
    })?;
    ensure(f.status == 0x02, || {
        format!("COPY COMMAND STATUS {:02X}h, expected 02h", f.status)
    })?;
    same_sense(&f.sense, &sd, "held")
}

pub(super) fn t_status_lid4_ok(c: &mut Ctx) -> Step {
    let (id, segs, bytes, a) = c
        .lid4_ok
        .ok_or_else(|| Verdict::skip("needs a completed LID4 copy"))?;
    let s = status_lid4(c, a, id)?;
    ensure(s.status == 0x01, || {
        format!("COPY OPERATION STATUS {:02X}h, expected 01h", s.status)
    })?;
    ensure(s.completion_status == 0, || {
        format!(
            "EXTENDED COPY COMPLETION STATUS {:02X}h, expected 00h GOOD",
            s.completion_status
        )
    })?;
    progress(s.segments, s.units, s.count, c.devs[a].bs(), (segs, bytes))
}

pub(super) fn t_status_lid4_failed(c: &mut Ctx) -> Step {
    let (id, segs, bytes, sd) = c
        .lid4_failed
        .clone()
        .ok_or_else(|| Verdict::skip("needs zone_errors.lid4_second_segment_fails"))?;
    let b = c.b()?;
    let s = status_lid4(c, b, id)?;
    ensure(s.status == 0x02, || {
        format!(
            "COPY OPERATION STATUS {:02X}h, expected 02h (completed with error)",
            s.status
        )
    })?;
    ensure(s.completion_status == sgio::CHECK_CONDITION, || {
        format!(
            "EXTENDED COPY COMPLETION STATUS {:02X}h, expected 02h CHECK CONDITION",
            s.completion_status
        )
    })?;
    progress(s.segments, s.units, s.count, c.devs[b].bs(), (segs, bytes))?;
    same_sense(&s.sense, &sd, "status")
}

/// ILLEGAL REQUEST, INVALID FIELD IN CDB with the field pointer at CDB
/// byte 2 (the LIST IDENTIFIER) if SKSV.
pub(super) fn expect_invalid_list_id(c: &mut Ctx, dev: usize, cdb: &[u8], dir_in: bool) -> Step {
    let mut buf = vec![0u8; 64];
    let data = if dir_in {
        sgio::Data::FromDevice(&mut buf)
    } else {
        sgio::Data::None
    };
    let done = c.sg(dev, cdb, data)?;
    let sd = SenseData::decode(&done.sense_bytes);
    c.diag(format!(
        "status {:#04x} sense [{}]",
        done.status,
        hex(&done.sense_bytes)
    ));
    let s = sd.ok_or_else(|| {
        Verdict::fail(format!("expected CHECK CONDITION 05h 24h/00h, got {done}"))
    })?;
    ensure(
        done.status == sgio::CHECK_CONDITION
            && (s.key, s.asc, s.ascq) == (key::ILLEGAL_REQUEST, 0x24, 0),
        || format!("expected CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB; got {s}"),
    )?;
    if let Some(k) = s.sks.filter(|k| k.valid()) {
        let (cd, _, f) = k.field_pointer();
        ensure(cd && f == 2, || {
            format!(
                "field pointer C/D {} byte {f}, expected CDB byte 2",
                u8::from(cd)
            )
        })?;
    }
    Ok(())
}

pub(super) fn t_status_unknown(c: &mut Ctx) -> Step {
    let a = c.a()?;
    // A list identifier this run never used (LID4 space is large).
    let id = c.list_id() ^ 0x8000_0000;
    expect_invalid_list_id(
        c,
        a,
        &cdb::receive_lid4(in_sa::COPY_STATUS_LID4, id, 64),
        true,
    )
}

pub(super) fn t_abort_unknown(c: &mut Ctx) -> Step {
    let a = c.a()?;
    if !c.tpc()?.supports(0x83, out_sa::COPY_OPERATION_ABORT) {
        return Err(Verdict::skip("COPY OPERATION ABORT not advertised"));
    }
    let id = c.list_id() ^ 0x8000_0000;
    expect_invalid_list_id(c, a, &cdb::copy_operation_abort(id), false)
}
