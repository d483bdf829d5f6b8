//! POPULATE TOKEN and WRITE USING TOKEN (SBC-4), and the ROD tokens.
//!
//! POPULATE TOKEN parameter list: 0-1 POPULATE TOKEN DATA LENGTH; 2 bit 1
//! RTV, bit 0 IMMED; 4-7 INACTIVITY TIMEOUT (seconds, 0: the default);
//! 8-11 ROD TYPE (with RTV); 14-15 BLOCK DEVICE RANGE DESCRIPTOR LENGTH;
//! 16.. block device range descriptors (0-7 LBA, 8-11 NUMBER OF LOGICAL
//! BLOCKS, 12-15 reserved).
//!
//! WRITE USING TOKEN parameter list: 0-1 WRITE USING TOKEN DATA LENGTH; 2
//! bit 1 DEL_TKN, bit 0 IMMED; 8-15 OFFSET INTO ROD (destination logical
//! blocks); 16-527 ROD TOKEN; 534-535 BLOCK DEVICE RANGE DESCRIPTOR
//! LENGTH; 536.. range descriptors.
//!
//! ROD token (512 bytes) this copy manager creates: 0-3 ROD TYPE 00800001h
//! (point in time copy, change vulnerable: the token represents the data
//! as populated and is cancelled when any of it changes); 6-7 ROD TOKEN
//! LENGTH 01F8h; 8-15 COPY MANAGER ROD TOKEN IDENTIFIER (a counter);
//! 16-47 CREATOR LOGICAL UNIT DESCRIPTOR (a CSCD descriptor E4h naming the
//! LU by its NAA designator, with its block length); 48-63 NUMBER OF
//! BYTES REPRESENTED; 96-127 DEVICE TYPE SPECIFIC DATA (READ CAPACITY(16)
//! data from byte 8 on: 96-99 LOGICAL BLOCK LENGTH); 128-511 random bytes
//! (an initiator cannot forge a token it was not given).
//!
//! The block device zero ROD token (ROD TYPE FFFF0001h, SBC-4) is accepted
//! by WRITE USING TOKEN and writes zeros (through the device's write path).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    be16, be32, be64, byte, cdb::PopulateToken, cdb::WriteUsingToken, check_reserved,
    list::aborted, ptr, read_params, Family, Key, Record, Token, TokenState,
    DEFAULT_INACTIVITY_SECS, MAX_INACTIVITY_SECS, MAX_RANGES, MAX_TOKEN_BYTES,
};
use crate::{
    scsi::{
        sense::{copy_error_asc, Access, Asc, FieldPointer, Sense},
        zbc, Exec, LogicalUnit,
    },
    storage::{copy, BlockCount, Geometry, Lba, Segment},
};

/// ROD token length in bytes.
pub const TOKEN_LEN: usize = 512;
/// The ROD TYPE of the tokens created here: point in time copy, change
/// vulnerable.
pub const ROD_TYPE_PIT_CHANGE_VULNERABLE: u32 = 0x0080_0001;
/// Block device zero ROD token type (SBC-4).
pub const ROD_TYPE_BLOCK_ZERO: u32 = 0xffff_0001;
/// ROD TYPE values POPULATE TOKEN accepts with RTV: point in time copy
/// default (the copy manager chooses: change vulnerable), change
/// vulnerable, and any point in time copy.
const ACCEPTED_ROD_TYPES: [u32; 3] = [0x0080_0000, 0x0080_0001, 0x0080_ffff];
/// ROD TOKEN LENGTH field value (bytes after byte 7).
const TOKEN_LENGTH_FIELD: u16 = 0x01f8;

/// The COPY MANAGER ROD TOKEN IDENTIFIER of a token.
pub fn token_id(token: &[u8]) -> u64 {
    be64(token, 8)
}

fn random_fill(buf: &mut [u8], seed: u64) {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut s = seed ^ nanos ^ 0x9e37_79b9_7f4a_7c15 ^ (buf.as_ptr() as u64);
    for b in buf.iter_mut() {
        // xorshift64*
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        *b = (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
    }
}

/// The token for `blocks` blocks of `lu`.
fn create(id: u64, lu: &LogicalUnit, blocks: u64) -> Box<[u8; TOKEN_LEN]> {
    let mut t = Box::new([0u8; TOKEN_LEN]);
    let bs = lu.device.geometry().block_size;
    t[0..4].copy_from_slice(&ROD_TYPE_PIT_CHANGE_VULNERABLE.to_be_bytes());
    t[6..8].copy_from_slice(&TOKEN_LENGTH_FIELD.to_be_bytes());
    t[8..16].copy_from_slice(&id.to_be_bytes());
    // CREATOR LOGICAL UNIT DESCRIPTOR: CSCD descriptor E4h.
    t[16] = 0xe4;
    t[17] = lu.kind.peripheral_type();
    t[20] = 0x01; // CODE SET binary
    t[21] = 0x03; // ASSOCIATION LU, DESIGNATOR TYPE NAA
    t[23] = 8;
    t[24..32].copy_from_slice(&lu.identity.naa.to_be_bytes());
    let [_, a, b, c] = bs.to_be_bytes();
    t[45..48].copy_from_slice(&[a, b, c]);
    let bytes = u128::from(blocks).saturating_mul(u128::from(bs));
    t[48..64].copy_from_slice(&bytes.to_be_bytes());
    t[96..100].copy_from_slice(&bs.to_be_bytes());
    random_fill(&mut t[128..], id);
    t
}

/// Parse `n` block device range descriptors at `at`: LBA OUT OF RANGE
/// (SBC-4) for a range past the end, INVALID FIELD IN PARAMETER LIST for
/// reserved bytes and overlapping ranges.
fn ranges(p: &[u8], at: usize, n: usize, geo: &Geometry) -> Result<Vec<(Lba, BlockCount)>, Sense> {
    let mut out: Vec<(Lba, BlockCount)> = Vec::with_capacity(n);
    for k in 0..n {
        let off = at + 16 * k;
        let lba = Lba::new(be64(p, off));
        let count = BlockCount::new(u64::from(be32(p, off + 8)));
        check_reserved(p, off + 12, 4)?;
        geo.check_range(lba, count)
            .map_err(|_| Sense::illegal(Asc::LBA_OUT_OF_RANGE))?;
        let end = lba.get().saturating_add(count.get());
        if count.get() > 0
            && out.iter().any(|(l, c)| {
                c.get() > 0 && l.get() < end && lba.get() < l.get().saturating_add(c.get())
            })
        {
            return Err(Sense::invalid_param(ptr(off), Some(7)));
        }
        out.push((lba, count));
    }
    Ok(out)
}

/// The range descriptor list at `at`, its length field at `len_field`.
fn range_list(p: &[u8], len_field: usize, at: usize) -> Result<usize, Sense> {
    let rdl = usize::from(be16(p, len_field));
    if rdl == 0 || rdl % 16 != 0 || at + rdl > p.len() {
        return Err(Sense::invalid_param(ptr(len_field), Some(7)));
    }
    let n = rdl / 16;
    if n > usize::from(MAX_RANGES) {
        return Err(Sense::illegal(Asc::TOO_MANY_SEGMENT_DESCRIPTORS));
    }
    Ok(n)
}

fn data_length(p: &[u8], min: usize) -> Result<(), Sense> {
    let len_err = Sense::illegal(Asc::PARAMETER_LIST_LENGTH_ERROR);
    if p.len() < min || usize::from(be16(p, 0)) + 2 > p.len() {
        return Err(len_err);
    }
    if byte(p, 2) & 0xfc != 0 {
        return Err(Sense::invalid_param(2, Some(7)));
    }
    Ok(())
}

/// POPULATE TOKEN (SBC-4).
pub fn populate_token(x: &mut Exec<'_, '_>, c: PopulateToken) -> Result<u32, Sense> {
    let lu =
        x.lu.ok_or(Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED))?;
    if c.len == 0 {
        return Ok(0);
    }
    let p = read_params(x, c.len, 16 + 0xffff)?;
    data_length(&p, 32)?;
    check_reserved(&p, 3, 1)?;
    let timeout = match be32(&p, 4) {
        0 => DEFAULT_INACTIVITY_SECS,
        t if t > MAX_INACTIVITY_SECS => return Err(Sense::invalid_param(4, Some(7))),
        t => t,
    };
    let rtv = byte(&p, 2) & 0x02 != 0;
    if rtv && !ACCEPTED_ROD_TYPES.contains(&be32(&p, 8)) {
        return Err(Sense::invalid_param(8, Some(7)));
    }
    check_reserved(&p, 12, 2)?;
    let n = range_list(&p, 14, 16)?;
    let geo = lu.device.geometry();
    let rs = ranges(&p, 16, n, geo)?;
    let mut blocks = 0u64;
    for (k, (lba, count)) in rs.iter().enumerate() {
        zbc::check_read(geo, *lba, count.get())?;
        blocks = blocks
            .checked_add(count.get())
            .ok_or(Sense::invalid_param(ptr(16 + 16 * k + 8), Some(7)))?;
    }
    let max_blocks = MAX_TOKEN_BYTES / u64::from(geo.block_size.max(1));
    if blocks > max_blocks {
        return Err(Sense::invalid_param(14, Some(7)));
    }
    let key = Key {
        lun: x.lun,
        family: Family::Lid4,
        list_id: c.list_id,
    };
    let mgr = &x.target.copy;
    mgr.begin(key)?;
    let id = mgr.next_token_id();
    let bytes = create(id, lu, blocks);
    mgr.add_token(Token {
        bytes: bytes.clone(),
        id,
        lun: x.lun,
        ranges: rs,
        inactivity: Duration::from_secs(u64::from(timeout)),
        last_used: mgr.now(),
        state: TokenState::Valid,
    });
    x.target.stats.token_created();
    mgr.finish(
        Record {
            key,
            service_action: 0x10,
            segments: n,
            bytes: blocks.saturating_mul(u64::from(geo.block_size)),
            blocks,
            sense: None,
            token: Some(bytes),
        },
        true,
    );
    Ok(0)
}

/// What a WRITE USING TOKEN reads from.
enum Source {
    Zero,
    Token {
        lun: u16,
        ranges: Vec<(Lba, BlockCount)>,
    },
}

/// Check the ROD token of a WRITE USING TOKEN (SPC-5 INVALID TOKEN
/// OPERATION codes) and note its use.
fn resolve_token(x: &Exec<'_, '_>, t: &[u8]) -> Result<Source, Sense> {
    let rod_type = be32(t, 0);
    let invalid = |asc| Sense::illegal(asc);
    if rod_type != ROD_TYPE_BLOCK_ZERO && rod_type != ROD_TYPE_PIT_CHANGE_VULNERABLE {
        return Err(invalid(Asc::INVALID_TOKEN_OPERATION_UNSUPPORTED_TOKEN_TYPE));
    }
    if be16(t, 6) != TOKEN_LENGTH_FIELD {
        return Err(invalid(Asc::INVALID_TOKEN_OPERATION_INVALID_TOKEN_LENGTH));
    }
    if rod_type == ROD_TYPE_BLOCK_ZERO {
        return Ok(Source::Zero);
    }
    let mgr = &x.target.copy;
    let now = mgr.now();
    mgr.with_token(token_id(t), |tok| {
        if tok.bytes[..] != *t {
            return Err(invalid(Asc::INVALID_TOKEN_OPERATION_TOKEN_CORRUPT));
        }
        match tok.state {
            TokenState::Cancelled => {
                return Err(invalid(Asc::INVALID_TOKEN_OPERATION_TOKEN_CANCELLED))
            }
            TokenState::Deleted => return Err(invalid(Asc::INVALID_TOKEN_OPERATION_TOKEN_DELETED)),
            TokenState::Valid => {}
        }
        let expires = tok.last_used.checked_add(tok.inactivity);
        if expires.is_some_and(|e| now > e) {
            return Err(invalid(Asc::INVALID_TOKEN_OPERATION_TOKEN_EXPIRED));
        }
        tok.last_used = now;
        Ok(Source::Token {
            lun: tok.lun,
            ranges: tok.ranges.clone(),
        })
    })
    .unwrap_or(Err(invalid(Asc::INVALID_TOKEN_OPERATION_TOKEN_UNKNOWN)))
}

/// What a WRITE USING TOKEN did.
#[derive(Default)]
struct Done {
    ranges: usize,
    blocks: u64,
    bytes: u64,
    failure: Option<Sense>,
}

/// Largest zero buffer written at once.
const ZERO_CHUNK: u64 = 1 << 20;

/// Range descriptor `k` of a WRITE USING TOKEN, for segment pointers.
fn range_field(k: usize) -> FieldPointer {
    FieldPointer::param(ptr(536 + 16 * k), Some(7))
}

fn write_zeros(x: &Exec<'_, '_>, dst: &LogicalUnit, rs: &[(Lba, BlockCount)]) -> Done {
    let mut d = Done::default();
    let bs = u64::from(dst.device.geometry().block_size);
    let per = (ZERO_CHUNK / bs).max(1);
    let zeros = vec![0u8; usize::try_from(per * bs).unwrap_or(0)];
    for (k, (lba, count)) in rs.iter().enumerate() {
        let mut done = 0u64;
        while done < count.get() {
            let n = per.min(count.get() - done);
            let at = Lba::new(lba.get().saturating_add(done));
            let len = usize::try_from(n * bs).unwrap_or(0);
            if let Err(e) = dst
                .device
                .write(at, zeros.get(..len).unwrap_or_default(), false)
            {
                d.failure = Some(aborted(
                    copy_error_asc(&e, Access::Write),
                    k,
                    range_field(k),
                    count.get() - done,
                ));
                return d;
            }
            x.target.copy.invalidate(x.lun, at, BlockCount::new(n));
            done += n;
            d.blocks += n;
            d.bytes += n * bs;
        }
        d.ranges += 1;
    }
    d
}

/// Copy from the token's ranges (the ROD, in order) starting `offset`
/// destination blocks in, into the destination ranges.
fn write_from_rod(
    x: &Exec<'_, '_>,
    src: &LogicalUnit,
    src_ranges: &[(Lba, BlockCount)],
    dst: &LogicalUnit,
    rs: &[(Lba, BlockCount)],
    offset: u64,
) -> Done {
    let mut d = Done::default();
    let sbs = u64::from(src.device.geometry().block_size);
    let dbs = u64::from(dst.device.geometry().block_size);
    let underrun = |k: usize, residual: u64| {
        aborted(
            Asc::COPY_TARGET_DEVICE_DATA_UNDERRUN,
            k,
            FieldPointer::param(8, Some(7)),
            residual,
        )
    };
    let Some(mut pos) = offset.checked_mul(dbs) else {
        d.failure = Some(underrun(0, rs.first().map_or(0, |r| r.1.get())));
        return d;
    };
    // One copy command for the fault rules: ranges are its segments.
    let mut cmd = copy::CopyCommand::default();
    for (k, (lba, count)) in rs.iter().enumerate() {
        let mut done = 0u64;
        while done < count.get() {
            // Find the source range holding ROD byte `pos`.
            let mut skip = pos;
            let mut found = None;
            for (l, n) in src_ranges {
                let len = n.get().saturating_mul(sbs);
                if skip < len {
                    found = Some((*l, len - skip, skip));
                    break;
                }
                skip -= len;
            }
            let Some((slba, avail, within)) = found else {
                d.failure = Some(underrun(k, count.get() - done));
                return d;
            };
            let want = (count.get() - done).saturating_mul(dbs);
            let chunk = avail.min(want);
            if within % sbs != 0 || chunk % sbs != 0 || chunk % dbs != 0 {
                d.failure = Some(aborted(
                    Asc::UNEXPECTED_INEXACT_SEGMENT,
                    k,
                    range_field(k),
                    count.get() - done,
                ));
                return d;
            }
            let seg = Segment {
                src: &src.device,
                src_lba: Lba::new(slba.get().saturating_add(within / sbs)),
                dst: &dst.device,
                dst_lba: Lba::new(lba.get().saturating_add(done)),
                count: BlockCount::new(chunk / sbs),
            };
            if let Err(f) = cmd.run(&[seg]) {
                let access = match f.error {
                    crate::storage::StorageError::OutOfRange { lba, .. } if lba == seg.src_lba => {
                        Access::Read
                    }
                    crate::storage::StorageError::UnrecoveredRead { .. } => Access::Read,
                    _ => Access::Write,
                };
                // What the range got before an injected fault stopped it.
                let part = f.progress.bytes_done / dbs;
                if part > 0 {
                    x.target
                        .copy
                        .invalidate(x.lun, seg.dst_lba, BlockCount::new(part));
                    d.blocks += part;
                    d.bytes += part * dbs;
                }
                d.failure = Some(aborted(
                    copy_error_asc(&f.error, access),
                    k,
                    range_field(k),
                    count.get() - done - part,
                ));
                return d;
            }
            x.target
                .copy
                .invalidate(x.lun, seg.dst_lba, BlockCount::new(chunk / dbs));
            done += chunk / dbs;
            pos = pos.saturating_add(chunk);
            d.blocks += chunk / dbs;
            d.bytes += chunk;
        }
        d.ranges += 1;
    }
    d
}

/// WRITE USING TOKEN (SBC-4).
pub fn write_using_token(x: &mut Exec<'_, '_>, c: WriteUsingToken) -> Result<u32, Sense> {
    let lu =
        x.lu.ok_or(Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED))?;
    if c.len == 0 {
        return Ok(0);
    }
    let p = read_params(x, c.len, 536 + 0xffff)?;
    data_length(&p, 552)?;
    check_reserved(&p, 3, 5)?;
    check_reserved(&p, 528, 6)?;
    let n = range_list(&p, 534, 536)?;
    let rs = ranges(&p, 536, n, lu.device.geometry())?;
    let immed = byte(&p, 2) & 0x01 != 0;
    let del_tkn = byte(&p, 2) & 0x02 != 0;
    let offset = be64(&p, 8);
    let token = p.get(16..16 + TOKEN_LEN).unwrap_or_default();
    let source = resolve_token(x, token)?;
    let key = Key {
        lun: x.lun,
        family: Family::Lid4,
        list_id: c.list_id,
    };
    x.target.copy.begin(key)?;
    let done = match &source {
        Source::Zero => write_zeros(x, lu, &rs),
        Source::Token { lun, ranges } => match x.target.unit(*lun) {
            Some(src) => write_from_rod(x, src, ranges, lu, &rs, offset),
            None => Done {
                failure: Some(aborted(
                    Asc::COPY_TARGET_DEVICE_NOT_REACHABLE,
                    0,
                    FieldPointer::param(16, Some(7)),
                    rs.first().map_or(0, |r| r.1.get()),
                )),
                ..Done::default()
            },
        },
    };
    if del_tkn && done.failure.is_none() {
        if let Source::Token { .. } = source {
            x.target.copy.with_token(token_id(token), |t| {
                t.state = TokenState::Deleted;
            });
        }
    }
    x.target
        .stats
        .copy_done(done.ranges, done.bytes, done.failure.is_some());
    x.target.copy.finish(
        Record {
            key,
            service_action: 0x11,
            segments: done.ranges,
            bytes: done.bytes,
            blocks: done.blocks,
            sense: done.failure,
            token: None,
        },
        true,
    );
    match done.failure {
        Some(_) if immed => Ok(0),
        Some(s) => Err(s),
        None => Ok(0),
    }
}

crate::scsi::commands::handlers! {
    PopulateToken => populate_token,
    WriteUsingToken => write_using_token,
}
