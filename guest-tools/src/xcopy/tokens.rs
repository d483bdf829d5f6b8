//! ROD token tests: POPULATE TOKEN and WRITE USING TOKEN (SBC-4 5.11, 5.43).

use super::*;

pub(super) fn token_support(c: &Ctx) -> Step {
    let t = c.tpc()?;
    if !t.supports(0x83, out_sa::POPULATE_TOKEN) {
        return Err(Verdict::skip("POPULATE TOKEN not advertised in VPD 8Fh"));
    }
    Ok(())
}

/// POPULATE TOKEN over `ranges` (bytes) of `dev`, then RECEIVE ROD TOKEN
/// INFORMATION: the token.
pub(super) fn populate(
    c: &mut Ctx,
    dev: usize,
    ranges: &[(u64, u64)],
) -> Result<[u8; 512], Verdict> {
    let bs = c.devs[dev].bs();
    let r: Vec<(u64, u32)> = ranges
        .iter()
        .map(|&(b, n)| (b / bs, (n / bs) as u32))
        .collect();
    let p = cdb::populate_token_params(0, None, &r);
    let id = c.list_id();
    let cdb = cdb::token_out(out_sa::POPULATE_TOKEN, id, p.len() as u32);
    let s0 = c.stats(&[dev]);
    let done = c.sg(dev, &cdb, sgio::Data::ToDevice(&p))?;
    ensure(done.status == 0, || {
        format!("POPULATE TOKEN: {done} sense [{}]", hex(&done.sense_bytes))
    })?;
    let alloc = 1024;
    let b = c.data_in(
        dev,
        &cdb::receive_lid4(in_sa::ROD_TOKEN_INFORMATION, id, alloc),
        alloc as usize,
        "RECEIVE ROD TOKEN INFORMATION",
    )?;
    let s1 = c.stats(&[dev]);
    let s = parse::status_lid4(&b, true)
        .map_err(|e| Verdict::fail(format!("RRTI [{}]: {e}", hex(&b[..b.len().min(64)]))))?;
    c.diag(format!(
        "RRTI: response to {:02X}h, status {:02X}h, count {} units {:02X}h, token [{}...]",
        s.response_to,
        s.status,
        s.count,
        s.units,
        s.token.map(|t| hex(&t[..16])).unwrap_or_default()
    ));
    ensure(s.response_to == out_sa::POPULATE_TOKEN, || {
        format!(
            "RESPONSE TO SERVICE ACTION {:02X}h, expected 10h",
            s.response_to
        )
    })?;
    ensure(s.status == 0x01, || {
        format!(
            "COPY OPERATION STATUS {:02X}h, expected 01h (completed, no errors)",
            s.status
        )
    })?;
    let total: u64 = ranges.iter().map(|r| r.1).sum();
    let tb = parse::transfer_bytes(s.units, s.count, bs);
    ensure(tb == Some(total), || {
        format!(
            "TRANSFER COUNT {} units {:02X}h = {tb:?} bytes, the ranges hold {total}",
            s.count, s.units
        )
    })?;
    let t = s
        .token
        .ok_or_else(|| Verdict::fail("RRTI returned no ROD token"))?;
    let rod_type = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
    ensure(u16::from_be_bytes([t[6], t[7]]) == 0x01f8, || {
        format!("ROD TOKEN LENGTH {:02x}{:02x}, expected 01F8h", t[6], t[7])
    })?;
    if let Some(types) = c.tpc.as_ref().and_then(|t| t.rod_types.clone()) {
        ensure(
            types.iter().any(|&(rt, _, out)| rt == rod_type && out),
            || {
                format!(
                    "ROD token type {rod_type:08X}h is not an advertised TOKEN_OUT type {types:x?}"
                )
            },
        )?;
    }
    // Populating reads nothing on behalf of the host.
    if let (Some(Ok(a)), Some(Ok(b))) = (s0, s1) {
        ensure(
            a[0].read_bytes == b[0].read_bytes && a[0].written_bytes == b[0].written_bytes,
            || format!("POPULATE TOKEN moved host counters: {} -> {}", a[0], b[0]),
        )?;
    }
    Ok(t)
}

pub(super) fn wut(
    c: &mut Ctx,
    dev: usize,
    token: &[u8; 512],
    ranges: &[(u64, u64)],
) -> (Vec<u8>, [u8; 16]) {
    let bs = c.devs[dev].bs();
    let r: Vec<(u64, u32)> = ranges
        .iter()
        .map(|&(b, n)| (b / bs, (n / bs) as u32))
        .collect();
    let p = cdb::write_using_token_params(token, 0, &r);
    let id = c.list_id();
    let cdb = cdb::token_out(out_sa::WRITE_USING_TOKEN, id, p.len() as u32);
    (p, cdb)
}

pub(super) fn token_copy(c: &mut Ctx, other: bool) -> Step {
    need_sources(c)?;
    token_support(c)?;
    let a = c.a()?;
    let d = if other { c.b()? } else { a };
    // Two source ranges, out of order, into one destination range.
    let r1 = (SRC_OFF + 44 * BS4K, 3 * BS4K);
    let r2 = (SRC_OFF + 36 * BS4K, 2 * BS4K);
    let dst = c.slot(d)?;
    // The ROD is the ranges in order: r1's bytes, then r2's.
    let mut data = c.read(a, r1.0, r1.1)?;
    data.extend_from_slice(&c.read(a, r2.0, r2.1)?);
    let e = Expect {
        dev: d,
        region: dst,
        data,
        stamps: None,
        copied: r1.1 + r2.1,
    };
    let token = populate(c, a, &[r1, r2])?;
    let (p, cdb) = wut(c, d, &token, &[(dst, r1.1 + r2.1)]);
    let remote = c.tpc.as_ref().and_then(|t| t.remote_tokens);
    let involved = if other { vec![a, d] } else { vec![a] };
    let r = c.exec(d, &cdb, &p, &involved, &[e], &[]);
    if let (true, Err(Verdict::Fail(why))) = (other, &r) {
        if why.contains("23h/02h") && remote == Some(0) {
            return Err(Verdict::skip(format!(
                "ROD Token Features REMOTE TOKENS 0 and the other LU refused the token with REMOTE TOKEN USAGE NOT SUPPORTED (consistent): {why}"
            )));
        }
    }
    r.map(|_| ())
}

pub(super) fn t_token_invalidated(c: &mut Ctx) -> Step {
    need_sources(c)?;
    token_support(c)?;
    let a = c.a()?;
    // Its own source blocks: they are rewritten here.
    let src = SRC_OFF + 56 * BS4K;
    let token = populate(c, a, &[(src, 4 * BS4K)])?;
    // Rewrite one block of the range (same stamp, a new write).
    blockio::write_stamped(&c.devs[a].file, src + BS4K, 1, c.devs[a].gen, 1)
        .map_err(fail("rewrite a source block"))?;
    let dst = c.slot(a)?;
    let e = c.expect_unchanged(a, dst, 4 * BS4K, true)?;
    let (p, cdb) = wut(c, a, &token, &[(dst, 4 * BS4K)]);
    // SBC-4 4.28 / SPC-4: a ROD token whose represented data changed is
    // invalid; WRITE USING TOKEN fails with ILLEGAL REQUEST, INVALID TOKEN
    // OPERATION, TOKEN CANCELLED (23h/08h)? Accept the 23h family, name it.
    let r = c.exec(
        a,
        &cdb,
        &p,
        &[a],
        &[e],
        &[(key::ILLEGAL_REQUEST, 0x23, 0x08)],
    );
    match r {
        Ok(_) => Ok(()),
        Err(Verdict::Fail(why)) => Err(Verdict::Fail(why)),
        Err(v) => Err(v),
    }
}

pub(super) fn t_zero_token(c: &mut Ctx) -> Step {
    need_sources(c)?;
    token_support(c)?;
    let t = c.tpc()?;
    if !t.rod_types.as_ref().is_some_and(|v| {
        v.iter()
            .any(|&(r, tin, _)| r == cdb::ROD_TYPE_BLOCK_ZERO && tin)
    }) {
        return Err(Verdict::skip(
            "block device zero ROD token (FFFF0001h) not advertised as TOKEN_IN",
        ));
    }
    let b = c.b()?;
    let dst = c.slot(b)?;
    // Fill the destination with stamps first so zeros are a change.
    blockio::write_stamped(&c.devs[b].file, dst, 4, c.devs[b].gen, 4).map_err(fail("pre-fill"))?;
    let e = Expect {
        dev: b,
        region: dst,
        data: vec![0u8; 4 * BLOCK_SIZE],
        stamps: None,
        copied: 4 * BS4K,
    };
    let (p, cdb) = wut(c, b, &cdb::zero_rod_token(), &[(dst, 4 * BS4K)]);
    c.zero_write = true;
    let r = c.exec(b, &cdb, &p, &[b], &[e], &[]);
    c.zero_write = false;
    r?;
    // Zeroing is not a copy: whether copied_bytes counts it is the
    // backend's choice; the host verdict above expected 4 blocks copied.
    Ok(())
}
