//! THIRD-PARTY COPY IN (84h) data, COPY OPERATION ABORT and the
//! Third-party Copy VPD page (SPC-5).
//!
//! A LIST IDENTIFIER with no running operation and no kept result is
//! ILLEGAL REQUEST, INVALID FIELD IN CDB pointing at the LIST IDENTIFIER
//! field (byte 2). Results are kept per LUN: RECEIVE COPY RESULTS must be
//! sent to the LU that received the copy.

use super::token::{ROD_TYPE_BLOCK_ZERO, ROD_TYPE_PIT_CHANGE_VULNERABLE};
use super::{
    cdb::{
        CopyOperationAbort, ReceiveCopyDataLid1, ReceiveCopyFailureDetails,
        ReceiveCopyOperatingParameters, ReceiveCopyStatusLid1, ReceiveCopyStatusLid4,
        ReceiveRodTokenInformation, ReportAllRodTokens,
    },
    Family, Key, Record, CSCD_TYPES, DEFAULT_INACTIVITY_SECS, GRANULARITY_LOG2, HELD_DATA_LIMIT,
    MAX_CONCURRENT, MAX_CSCDS, MAX_DESC_LIST_LEN, MAX_INACTIVITY_SECS, MAX_INLINE_LEN, MAX_RANGES,
    MAX_SEGMENTS, MAX_SEGMENT_LEN, MAX_TOKEN_BYTES, SEGMENT_TYPES,
};
use crate::scsi::{commands::COMMANDS, sense::Sense, Exec, LogicalUnit};

fn record(x: &Exec<'_, '_>, family: Family, list_id: u32) -> Result<Record, Sense> {
    x.lu()?;
    x.target
        .copy
        .record(Key {
            lun: x.lun,
            family,
            list_id,
        })
        .ok_or(Sense::invalid_field(2, Some(7)))
}

fn alloc(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

fn be32(v: usize) -> [u8; 4] {
    u32::try_from(v).unwrap_or(u32::MAX).to_be_bytes()
}

/// RECEIVE COPY STATUS (LID1): 12 bytes. 0-3 AVAILABLE DATA (8); 4 bit 7
/// HDD (0: no held data), bits 6-0 COPY MANAGER STATUS (01h completed
/// without errors, 02h completed with errors); 5-6 SEGMENTS PROCESSED; 7
/// TRANSFER COUNT UNITS (00h bytes, or 02h mebibytes past 4 GiB); 8-11
/// TRANSFER COUNT.
pub fn receive_copy_status_lid1(
    x: &mut Exec<'_, '_>,
    c: ReceiveCopyStatusLid1,
) -> Result<u32, Sense> {
    let r = record(x, Family::Lid1, c.list_id)?;
    let mut d = vec![0, 0, 0, 8];
    d.push(if r.sense.is_some() { 0x02 } else { 0x01 });
    d.extend_from_slice(&u16::try_from(r.segments).unwrap_or(u16::MAX).to_be_bytes());
    let (units, count) = match u32::try_from(r.bytes) {
        Ok(b) => (0x00, b),
        Err(_) => (0x02, u32::try_from(r.bytes >> 20).unwrap_or(u32::MAX)),
    };
    d.push(units);
    d.extend_from_slice(&count.to_be_bytes());
    x.send(&d, alloc(c.len))
}

/// RECEIVE COPY DATA (LID1): no data is ever held (HELD DATA LIMIT 0), so
/// AVAILABLE DATA is 0.
pub fn receive_copy_data_lid1(x: &mut Exec<'_, '_>, c: ReceiveCopyDataLid1) -> Result<u32, Sense> {
    record(x, Family::Lid1, c.list_id)?;
    x.send(&[0, 0, 0, 0], alloc(c.len))
}

/// RECEIVE COPY FAILURE DETAILS (LID1): for a failed copy, 0-3 AVAILABLE
/// DATA, 4-55 reserved, 56 EXTENDED COPY COMMAND STATUS (02h CHECK
/// CONDITION), 58-59 SENSE DATA LENGTH (18), 60.. the fixed format sense
/// data; for a copy that succeeded, AVAILABLE DATA 0 and nothing else.
pub fn receive_copy_failure_details(
    x: &mut Exec<'_, '_>,
    c: ReceiveCopyFailureDetails,
) -> Result<u32, Sense> {
    let r = record(x, Family::Lid1, c.list_id)?;
    let d = match r.sense {
        None => vec![0, 0, 0, 0],
        Some(s) => {
            let sense = s.fixed();
            let mut d = vec![0u8; 60];
            d[0..4].copy_from_slice(&be32(56 + sense.len()));
            d[56] = 0x02;
            d[58..60].copy_from_slice(&(sense.len() as u16).to_be_bytes());
            d.extend_from_slice(&sense);
            d
        }
    };
    x.send(&d, alloc(c.len))
}

/// RECEIVE COPY OPERATING PARAMETERS: 44 bytes plus the implemented
/// descriptor type codes (02h, E4h; SPC-5 6.21.4).
pub fn receive_copy_operating_parameters(
    x: &mut Exec<'_, '_>,
    c: ReceiveCopyOperatingParameters,
) -> Result<u32, Sense> {
    x.lu()?;
    let mut d = vec![0u8; 44];
    d[4] = 0x01; // SNLID: LIST ID USAGE 11b is supported
    d[8..10].copy_from_slice(&MAX_CSCDS.to_be_bytes());
    d[10..12].copy_from_slice(&MAX_SEGMENTS.to_be_bytes());
    d[12..16].copy_from_slice(&MAX_DESC_LIST_LEN.to_be_bytes());
    d[16..20].copy_from_slice(&MAX_SEGMENT_LEN.to_be_bytes());
    d[20..24].copy_from_slice(&MAX_INLINE_LEN.to_be_bytes());
    d[24..28].copy_from_slice(&HELD_DATA_LIMIT.to_be_bytes());
    // 28-31 MAXIMUM STREAM DEVICE TRANSFER SIZE: 0, no stream devices.
    d[34..36].copy_from_slice(&u16::from(MAX_CONCURRENT).to_be_bytes());
    d[36] = MAX_CONCURRENT;
    d[37] = GRANULARITY_LOG2;
    d[38] = GRANULARITY_LOG2;
    d[39] = GRANULARITY_LOG2;
    let codes: Vec<u8> = SEGMENT_TYPES.iter().chain(&CSCD_TYPES).copied().collect();
    d[43] = codes.len() as u8;
    d.extend_from_slice(&codes);
    let n = d.len() - 4;
    d[0..4].copy_from_slice(&be32(n));
    x.send(&d, alloc(c.len))
}

/// The RECEIVE COPY STATUS (LID4) data of `r` (32 bytes plus sense data):
/// 0-3 AVAILABLE DATA; 4 RESPONSE TO SERVICE ACTION; 5 COPY OPERATION
/// STATUS (01h completed without errors, 02h completed with errors); 6-7
/// OPERATION COUNTER (0); 8-11 ESTIMATED STATUS UPDATE DELAY (0: done);
/// 12 EXTENDED COPY COMPLETION STATUS (00h GOOD, 02h CHECK CONDITION); 13
/// LENGTH OF THE SENSE DATA FIELD; 14 SENSE DATA LENGTH; 15 TRANSFER COUNT
/// UNITS (00h bytes for EXTENDED COPY, F1h logical blocks for the token
/// commands); 16-23 TRANSFER COUNT; 24-25 SEGMENTS PROCESSED; 32.. sense.
fn status_lid4(r: &Record) -> Vec<u8> {
    let sense = r.sense.map(|s| s.fixed().to_vec()).unwrap_or_default();
    let mut d = vec![0u8; 32];
    d[4] = r.service_action;
    d[5] = if r.sense.is_some() { 0x02 } else { 0x01 };
    d[12] = if r.sense.is_some() { 0x02 } else { 0x00 };
    d[13] = sense.len() as u8;
    d[14] = sense.len() as u8;
    let (units, count) = if r.service_action == 0x01 {
        (0x00, r.bytes)
    } else {
        (0xf1, r.blocks)
    };
    d[15] = units;
    d[16..24].copy_from_slice(&count.to_be_bytes());
    d[24..26].copy_from_slice(&u16::try_from(r.segments).unwrap_or(u16::MAX).to_be_bytes());
    d.extend_from_slice(&sense);
    d
}

/// RECEIVE COPY STATUS (LID4).
pub fn receive_copy_status_lid4(
    x: &mut Exec<'_, '_>,
    c: ReceiveCopyStatusLid4,
) -> Result<u32, Sense> {
    let r = record(x, Family::Lid4, c.list_id)?;
    let mut d = status_lid4(&r);
    let n = d.len() - 4;
    d[0..4].copy_from_slice(&be32(n));
    x.send(&d, alloc(c.len))
}

/// RECEIVE ROD TOKEN INFORMATION: the LID4 status, then 4 bytes ROD TOKEN
/// DESCRIPTORS LENGTH (0, or 514 after a POPULATE TOKEN), 2 reserved bytes
/// and the 512-byte ROD token.
pub fn receive_rod_token_information(
    x: &mut Exec<'_, '_>,
    c: ReceiveRodTokenInformation,
) -> Result<u32, Sense> {
    let r = record(x, Family::Lid4, c.list_id)?;
    let mut d = status_lid4(&r);
    match &r.token {
        Some(t) => {
            d.extend_from_slice(&be32(2 + t.len()));
            d.extend_from_slice(&[0, 0]);
            d.extend_from_slice(&t[..]);
        }
        None => d.extend_from_slice(&[0, 0, 0, 0]),
    }
    let n = d.len() - 4;
    d[0..4].copy_from_slice(&be32(n));
    x.send(&d, alloc(c.len))
}

/// REPORT ALL ROD TOKENS: ROD management tokens are not supported, so the
/// list is empty (AVAILABLE DATA 4: the reserved bytes).
pub fn report_all_rod_tokens(x: &mut Exec<'_, '_>, c: ReportAllRodTokens) -> Result<u32, Sense> {
    x.lu()?;
    x.send(&[0, 0, 0, 4, 0, 0, 0, 0], alloc(c.len))
}

/// COPY OPERATION ABORT (SPC-5). Copies finish inside their command, so
/// there is never one to stop: a known LID4 list identifier (running, or
/// with a kept result) is GOOD, and the ROD token its POPULATE TOKEN
/// created is deleted (INVALID TOKEN OPERATION, TOKEN DELETED from then
/// on); an unknown one is INVALID FIELD IN CDB at the LIST IDENTIFIER.
pub fn copy_operation_abort(x: &mut Exec<'_, '_>, c: CopyOperationAbort) -> Result<u32, Sense> {
    x.lu()?;
    let key = Key {
        lun: x.lun,
        family: Family::Lid4,
        list_id: c.list_id,
    };
    if !x.target.copy.known(key) {
        return Err(Sense::invalid_field(2, Some(7)));
    }
    x.target.copy.delete_token_of(key);
    Ok(0)
}

fn descriptor(d: &mut Vec<u8>, code: u16, body: &[u8]) {
    d.extend_from_slice(&code.to_be_bytes());
    d.extend_from_slice(&(body.len() as u16).to_be_bytes());
    d.extend_from_slice(body);
}

fn pad4(mut v: Vec<u8>) -> Vec<u8> {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
    v
}

/// Third-party Copy VPD page (8Fh) body, SPC-5 / SBC-4, descriptors in
/// this order:
///
/// - 0000h Block Device ROD Token Limits (SBC-4): MAXIMUM RANGE
///   DESCRIPTORS 64, MAXIMUM INACTIVITY TIMEOUT 600 s, DEFAULT INACTIVITY
///   TIMEOUT 60 s, MAXIMUM TOKEN TRANSFER SIZE and OPTIMAL TRANSFER COUNT
///   1 GiB in blocks of the LU.
/// - 0001h Supported Commands: 83h and 84h with the service actions of the
///   command table.
/// - 0004h Parameter Data: MAXIMUM CSCD DESCRIPTOR COUNT 16, MAXIMUM
///   SEGMENT DESCRIPTOR COUNT 256, MAXIMUM DESCRIPTOR LIST LENGTH 8704,
///   MAXIMUM INLINE DATA LENGTH 0.
/// - 0008h Supported Descriptors: 02h, E4h.
/// - 000Ch Supported CSCD Descriptor IDs: FFFFh (besides the list indexes).
/// - 0106h ROD Token Features: no remote tokens; MINIMUM TOKEN LIFETIME 1
///   s, MAXIMUM TOKEN LIFETIME FFFFFFFFh (none: a token lives while it is
///   used within its inactivity timeout), MAXIMUM TOKEN INACTIVITY TIMEOUT
///   600 s; block ROD device type features: MAXIMUM BYTES IN BLOCK ROD 1 GiB.
/// - 0108h Supported ROD Types: 00800001h (token in and out), FFFF0001h
///   (token in).
/// - 8001h General Copy Operations: TOTAL CONCURRENT COPIES 16, MAXIMUM
///   IDENTIFIED CONCURRENT COPIES 16, MAXIMUM SEGMENT LENGTH 256 MiB,
///   DATA and INLINE DATA SEGMENT GRANULARITY 2^9.
pub fn third_party_copy_vpd(lu: &LogicalUnit) -> Vec<u8> {
    let bs = u64::from(lu.device.geometry().block_size.max(1));
    let max_blocks = MAX_TOKEN_BYTES / bs;
    let mut d = Vec::new();

    let mut b = vec![0u8; 32];
    b[6..8].copy_from_slice(&MAX_RANGES.to_be_bytes());
    b[8..12].copy_from_slice(&MAX_INACTIVITY_SECS.to_be_bytes());
    b[12..16].copy_from_slice(&DEFAULT_INACTIVITY_SECS.to_be_bytes());
    b[16..24].copy_from_slice(&max_blocks.to_be_bytes());
    b[24..32].copy_from_slice(&max_blocks.to_be_bytes());
    descriptor(&mut d, 0x0000, &b);

    let mut list = Vec::new();
    for op in [0x83u8, 0x84] {
        let sas: Vec<u8> = COMMANDS
            .iter()
            .filter(|c| c.opcode == op)
            .filter_map(|c| c.service_action)
            .collect();
        list.push(op);
        list.push(sas.len() as u8);
        list.extend_from_slice(&sas);
    }
    let mut b = vec![list.len() as u8];
    b.extend_from_slice(&list);
    descriptor(&mut d, 0x0001, &pad4(b));

    let mut b = vec![0u8; 28];
    b[4..6].copy_from_slice(&MAX_CSCDS.to_be_bytes());
    b[6..8].copy_from_slice(&MAX_SEGMENTS.to_be_bytes());
    b[8..12].copy_from_slice(&MAX_DESC_LIST_LEN.to_be_bytes());
    b[12..16].copy_from_slice(&MAX_INLINE_LEN.to_be_bytes());
    descriptor(&mut d, 0x0004, &b);

    let codes: Vec<u8> = SEGMENT_TYPES.iter().chain(&CSCD_TYPES).copied().collect();
    let mut b = vec![codes.len() as u8];
    b.extend_from_slice(&codes);
    descriptor(&mut d, 0x0008, &pad4(b));

    descriptor(&mut d, 0x000c, &[0x00, 0x02, 0xff, 0xff]);

    let mut b = vec![0u8; 44];
    b[12..16].copy_from_slice(&1u32.to_be_bytes());
    b[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    b[20..24].copy_from_slice(&MAX_INACTIVITY_SECS.to_be_bytes());
    b[42..44].copy_from_slice(&48u16.to_be_bytes());
    let mut f = vec![0u8; 48];
    f[2..4].copy_from_slice(&0x002cu16.to_be_bytes());
    f[6..8].copy_from_slice(&1u16.to_be_bytes()); // OPTIMAL BLOCK ROD LENGTH GRANULARITY
    f[8..16].copy_from_slice(&MAX_TOKEN_BYTES.to_be_bytes());
    f[16..24].copy_from_slice(&MAX_TOKEN_BYTES.to_be_bytes());
    f[24..32].copy_from_slice(&MAX_TOKEN_BYTES.to_be_bytes());
    f[32..40].copy_from_slice(&MAX_TOKEN_BYTES.to_be_bytes());
    b.extend_from_slice(&f);
    descriptor(&mut d, 0x0106, &b);

    let mut b = vec![0u8; 4];
    b[2..4].copy_from_slice(&128u16.to_be_bytes());
    for (rod_type, flags) in [
        (ROD_TYPE_PIT_CHANGE_VULNERABLE, 0x03u8),
        (ROD_TYPE_BLOCK_ZERO, 0x02),
    ] {
        let mut r = vec![0u8; 64];
        r[0..4].copy_from_slice(&rod_type.to_be_bytes());
        r[4] = flags;
        b.extend_from_slice(&r);
    }
    descriptor(&mut d, 0x0108, &b);

    let mut b = vec![0u8; 32];
    b[0..4].copy_from_slice(&u32::from(MAX_CONCURRENT).to_be_bytes());
    b[4..8].copy_from_slice(&u32::from(MAX_CONCURRENT).to_be_bytes());
    b[8..12].copy_from_slice(&MAX_SEGMENT_LEN.to_be_bytes());
    b[12] = GRANULARITY_LOG2;
    b[13] = GRANULARITY_LOG2;
    descriptor(&mut d, 0x8001, &b);
    d
}

crate::scsi::commands::handlers! {
    ReceiveCopyStatusLid1 => receive_copy_status_lid1,
    ReceiveCopyDataLid1 => receive_copy_data_lid1,
    ReceiveCopyFailureDetails => receive_copy_failure_details,
    ReceiveCopyOperatingParameters => receive_copy_operating_parameters,
    ReceiveCopyStatusLid4 => receive_copy_status_lid4,
    ReceiveRodTokenInformation => receive_rod_token_information,
    ReportAllRodTokens => report_all_rod_tokens,
    CopyOperationAbort => copy_operation_abort,
}
