//! Decoders for what the copy manager returns: VPD 83h designators, VPD
//! 8Fh third-party copy descriptors, RECEIVE COPY RESULTS parameter data,
//! REPORT SUPPORTED OPERATION CODES (one command). Every decoder checks
//! the lengths it is given and says what is wrong, never panics.

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

fn short(what: &str) -> String {
    format!("{what}: truncated")
}

/// One designation descriptor of VPD 83h.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Designator {
    /// CODE SET.
    pub code_set: u8,
    /// PIV.
    pub piv: bool,
    /// ASSOCIATION (00b logical unit, 01b target port, 10b target device).
    pub association: u8,
    /// DESIGNATOR TYPE.
    pub designator_type: u8,
    /// The designator.
    pub designator: Vec<u8>,
}

/// Check a VPD page's header (page code `code`, named `name`, and a page
/// length within the bytes read); the end of its descriptors.
fn vpd_end(p: &[u8], code: u8, name: &str) -> Result<usize, String> {
    if p.len() < 4 || p[1] != code {
        return Err(format!(
            "not a VPD {name} page: {:02x?}",
            &p[..p.len().min(4)]
        ));
    }
    let end = 4 + usize::from(be16(p, 2).ok_or_else(|| short(&format!("VPD {name}")))?);
    if end > p.len() {
        return Err(format!(
            "VPD {name}: page length {} exceeds the {} bytes read",
            end - 4,
            p.len()
        ));
    }
    Ok(end)
}

/// Decode VPD page 83h.
pub fn vpd83(p: &[u8]) -> Result<Vec<Designator>, String> {
    let end = vpd_end(p, 0x83, "83h")?;
    let mut v = Vec::new();
    let mut i = 4;
    while i < end {
        if i + 4 > end {
            return Err(format!("VPD 83h: descriptor header at {i} crosses the end"));
        }
        let n = usize::from(p[i + 3]);
        if i + 4 + n > end {
            return Err(format!(
                "VPD 83h: descriptor at {i} (length {n}) crosses the end {end}"
            ));
        }
        v.push(Designator {
            code_set: p[i] & 0x0f,
            piv: p[i + 1] & 0x80 != 0,
            association: (p[i + 1] >> 4) & 3,
            designator_type: p[i + 1] & 0x0f,
            designator: p[i + 4..i + 4 + n].to_vec(),
        });
        i += 4 + n;
    }
    Ok(v)
}

/// The designator to put in an E4h CSCD descriptor: logical-unit
/// association, a type that names the LU (NAA 3h, EUI-64 2h, T10 vendor
/// 1h, SCSI name string 8h, in that order of preference), at most 20 bytes.
pub fn lu_designator(d: &[Designator]) -> Option<&Designator> {
    [3u8, 2, 1, 8].iter().find_map(|&t| {
        d.iter()
            .find(|x| x.association == 0 && x.designator_type == t && x.designator.len() <= 20)
    })
}

/// One third-party copy descriptor of VPD 8Fh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpcDescriptor {
    /// THIRD-PARTY COPY DESCRIPTOR TYPE.
    pub kind: u16,
    /// The bytes after the 4-byte header.
    pub body: Vec<u8>,
}

/// Decode VPD page 8Fh into its descriptors; `Err` if any length is
/// inconsistent (page length vs data, descriptor crossing the end,
/// descriptor length not a multiple of 4).
pub fn vpd8f(p: &[u8]) -> Result<Vec<TpcDescriptor>, String> {
    let end = vpd_end(p, 0x8f, "8Fh")?;
    let mut v = Vec::new();
    let mut i = 4;
    while i < end {
        if i + 4 > end {
            return Err(format!(
                "VPD 8Fh: descriptor header at byte {i} crosses the page end {end}"
            ));
        }
        let kind = be16(p, i).unwrap_or(0);
        let n = usize::from(be16(p, i + 2).unwrap_or(0));
        if i + 4 + n > end {
            return Err(format!(
                "VPD 8Fh: descriptor {kind:04x}h at byte {i} (length {n}) crosses the page end {end}"
            ));
        }
        if n % 4 != 0 {
            return Err(format!(
                "VPD 8Fh: descriptor {kind:04x}h at byte {i}: DESCRIPTOR LENGTH {n} is not a multiple of 4"
            ));
        }
        v.push(TpcDescriptor {
            kind,
            body: p[i + 4..i + 4 + n].to_vec(),
        });
        i += 4 + n;
    }
    Ok(v)
}

/// What VPD 8Fh advertises, decoded from its descriptors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tpc {
    /// Supported Commands (0001h): (operation code, service actions).
    pub commands: Vec<(u8, Vec<u8>)>,
    /// Parameter Data (0004h): MAXIMUM CSCD DESCRIPTOR COUNT.
    pub max_cscd: Option<u16>,
    /// Parameter Data: MAXIMUM SEGMENT DESCRIPTOR COUNT.
    pub max_segments: Option<u16>,
    /// Parameter Data: MAXIMUM DESCRIPTOR LIST LENGTH.
    pub max_list_len: Option<u32>,
    /// Parameter Data: MAXIMUM INLINE DATA LENGTH.
    pub max_inline: Option<u32>,
    /// Supported Descriptors (0008h): descriptor type codes.
    pub descriptors: Option<Vec<u8>>,
    /// Supported CSCD Descriptor IDs (000Ch).
    pub cscd_ids: Option<Vec<u16>>,
    /// Block Device ROD Token Limits (0000h): MAXIMUM RANGE DESCRIPTORS.
    pub max_ranges: Option<u16>,
    /// Block Device ROD Token Limits: MAXIMUM TOKEN TRANSFER SIZE (blocks).
    pub max_token_transfer: Option<u64>,
    /// ROD Token Features (0106h): REMOTE TOKENS field.
    pub remote_tokens: Option<u8>,
    /// Supported ROD Token and ROD Types (0108h): (ROD type, TOKEN_IN,
    /// TOKEN_OUT).
    pub rod_types: Option<Vec<(u32, bool, bool)>>,
    /// General Copy Operations (8001h): MAXIMUM SEGMENT LENGTH.
    pub max_segment_len: Option<u32>,
    /// Descriptor types seen, in order.
    pub kinds: Vec<u16>,
}

impl Tpc {
    /// Whether `op`/`sa` is in the Supported Commands descriptor.
    pub fn supports(&self, op: u8, sa: u8) -> bool {
        self.commands
            .iter()
            .any(|(o, sas)| *o == op && sas.contains(&sa))
    }

    /// Whether a segment or CSCD descriptor type code is advertised.
    pub fn supports_descriptor(&self, code: u8) -> bool {
        self.descriptors.as_ref().is_some_and(|d| d.contains(&code))
    }
}

/// Decode the descriptors of VPD 8Fh this suite uses; `Err` on a
/// malformed one.
pub fn tpc(descs: &[TpcDescriptor]) -> Result<Tpc, String> {
    let mut t = Tpc::default();
    for d in descs {
        t.kinds.push(d.kind);
        let b = &d.body;
        let bad = |what: &str| format!("VPD 8Fh descriptor {:04x}h: {what}", d.kind);
        match d.kind {
            0x0000 => {
                t.max_ranges = Some(be16(b, 6).ok_or_else(|| bad("short"))?);
                t.max_token_transfer = Some(be64(b, 16).ok_or_else(|| bad("short"))?);
            }
            0x0001 => {
                let n = usize::from(*b.first().ok_or_else(|| bad("short"))?);
                let list = b
                    .get(1..1 + n)
                    .ok_or_else(|| bad("COMMANDS SUPPORTED LIST LENGTH exceeds the descriptor"))?;
                let mut i = 0;
                while i < list.len() {
                    let op = list[i];
                    let k = usize::from(
                        *list
                            .get(i + 1)
                            .ok_or_else(|| bad("command entry truncated"))?,
                    );
                    let sas = list
                        .get(i + 2..i + 2 + k)
                        .ok_or_else(|| bad("service action list crosses the list end"))?;
                    t.commands.push((op, sas.to_vec()));
                    i += 2 + k;
                }
            }
            0x0004 => {
                t.max_cscd = Some(be16(b, 4).ok_or_else(|| bad("short"))?);
                t.max_segments = Some(be16(b, 6).ok_or_else(|| bad("short"))?);
                t.max_list_len = Some(be32(b, 8).ok_or_else(|| bad("short"))?);
                t.max_inline = Some(be32(b, 12).ok_or_else(|| bad("short"))?);
            }
            0x0008 => {
                let n = usize::from(*b.first().ok_or_else(|| bad("short"))?);
                t.descriptors = Some(
                    b.get(1..1 + n)
                        .ok_or_else(|| bad("list crosses the end"))?
                        .to_vec(),
                );
            }
            0x000c => {
                let n = usize::from(be16(b, 0).ok_or_else(|| bad("short"))?);
                if n % 2 != 0 {
                    return Err(bad("odd SUPPORTED CSCD IDS LIST LENGTH"));
                }
                let l = b.get(2..2 + n).ok_or_else(|| bad("list crosses the end"))?;
                t.cscd_ids = Some(
                    l.chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                );
            }
            0x0106 => {
                t.remote_tokens = Some(b.first().ok_or_else(|| bad("short"))? & 0x0f);
            }
            0x0108 => {
                let n = usize::from(be16(b, 2).ok_or_else(|| bad("short"))?);
                let l = b
                    .get(4..4 + n)
                    .ok_or_else(|| bad("ROD type list crosses the end"))?;
                if n % 64 != 0 {
                    return Err(bad("ROD TYPE DESCRIPTORS LENGTH not a multiple of 64"));
                }
                t.rod_types = Some(
                    l.chunks(64)
                        .map(|c| (be32(c, 0).unwrap_or(0), c[4] & 0x02 != 0, c[4] & 0x01 != 0))
                        .collect(),
                );
            }
            0x8001 => {
                t.max_segment_len = Some(be32(b, 8).ok_or_else(|| bad("short"))?);
            }
            _ => {}
        }
    }
    Ok(t)
}

/// RECEIVE COPY OPERATING PARAMETERS (84h/03h) parameter data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatingParameters {
    /// SNLID.
    pub snlid: bool,
    /// MAXIMUM CSCD DESCRIPTOR COUNT.
    pub max_cscd: u16,
    /// MAXIMUM SEGMENT DESCRIPTOR COUNT.
    pub max_segments: u16,
    /// MAXIMUM DESCRIPTOR LIST LENGTH.
    pub max_list_len: u32,
    /// MAXIMUM SEGMENT LENGTH.
    pub max_segment_len: u32,
    /// MAXIMUM INLINE DATA LENGTH.
    pub max_inline: u32,
    /// HELD DATA LIMIT.
    pub held_data_limit: u32,
    /// IMPLEMENTED DESCRIPTOR TYPE CODES.
    pub implemented: Vec<u8>,
}

/// Decode 84h/03h data: 0..4 AVAILABLE DATA, 4 SNLID, 8..10 MAXIMUM CSCD
/// DESCRIPTOR COUNT, 10..12 MAXIMUM SEGMENT DESCRIPTOR COUNT, 12..16
/// MAXIMUM DESCRIPTOR LIST LENGTH, 16..20 MAXIMUM SEGMENT LENGTH, 20..24
/// MAXIMUM INLINE DATA LENGTH, 24..28 HELD DATA LIMIT, 28..32 MAXIMUM
/// STREAM DEVICE TRANSFER SIZE, 34..36 TOTAL CONCURRENT COPIES, 36
/// MAXIMUM CONCURRENT COPIES, 37..40 granularities, 43 IMPLEMENTED
/// DESCRIPTOR LIST LENGTH, 44.. codes.
pub fn operating_parameters(b: &[u8]) -> Result<OperatingParameters, String> {
    let avail = be32(b, 0).ok_or_else(|| short("operating parameters"))? as usize;
    if b.len() < 44 || avail + 4 < 44 {
        return Err(format!(
            "operating parameters: {} bytes, AVAILABLE DATA {avail}: shorter than the 44-byte header",
            b.len()
        ));
    }
    let n = usize::from(b[43]);
    if avail + 4 != 44 + n {
        return Err(format!(
            "operating parameters: AVAILABLE DATA {avail} != 40 + IMPLEMENTED DESCRIPTOR LIST LENGTH {n}"
        ));
    }
    let implemented = b
        .get(44..44 + n)
        .ok_or_else(|| {
            format!(
                "operating parameters: {n} descriptor codes, {} bytes read",
                b.len()
            )
        })?
        .to_vec();
    Ok(OperatingParameters {
        snlid: b[4] & 1 != 0,
        max_cscd: be16(b, 8).unwrap_or(0),
        max_segments: be16(b, 10).unwrap_or(0),
        max_list_len: be32(b, 12).unwrap_or(0),
        max_segment_len: be32(b, 16).unwrap_or(0),
        max_inline: be32(b, 20).unwrap_or(0),
        held_data_limit: be32(b, 24).unwrap_or(0),
        implemented,
    })
}

/// REPORT SUPPORTED OPERATION CODES, one command format: byte 1 SUPPORT
/// (bits 2..0), 2..4 CDB SIZE, 4.. CDB USAGE DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneCommand {
    /// SUPPORT: 001b not supported, 011b supported per standard, 101b
    /// supported vendor specific.
    pub support: u8,
    /// CDB USAGE DATA.
    pub usage: Vec<u8>,
}

/// Decode a one-command RSOC response.
pub fn rsoc_one(b: &[u8]) -> Result<OneCommand, String> {
    if b.len() < 4 {
        return Err(short("REPORT SUPPORTED OPERATION CODES"));
    }
    let n = usize::from(be16(b, 2).unwrap_or(0));
    let support = b[1] & 7;
    let usage = b
        .get(4..4 + n)
        .ok_or_else(|| format!("RSOC: CDB SIZE {n} but {} bytes", b.len()))?;
    Ok(OneCommand {
        support,
        usage: usage.to_vec(),
    })
}

/// RECEIVE COPY STATUS(LID1) (84h/00h) data: 0..4 AVAILABLE DATA (8), 4
/// HDD / COPY MANAGER STATUS, 5..7 SEGMENTS PROCESSED, 7 TRANSFER COUNT
/// UNITS, 8..12 TRANSFER COUNT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLid1 {
    /// AVAILABLE DATA.
    pub available: u32,
    /// COPY MANAGER STATUS (bits 6..0): 00h in progress, 01h completed
    /// without error, 02h completed with error.
    pub status: u8,
    /// SEGMENTS PROCESSED.
    pub segments: u16,
    /// TRANSFER COUNT UNITS.
    pub units: u8,
    /// TRANSFER COUNT.
    pub count: u32,
}

/// Decode 84h/00h data.
pub fn status_lid1(b: &[u8]) -> Result<StatusLid1, String> {
    if b.len() < 12 {
        return Err(short("RECEIVE COPY STATUS(LID1)"));
    }
    Ok(StatusLid1 {
        available: be32(b, 0).unwrap_or(0),
        status: b[4] & 0x7f,
        segments: be16(b, 5).unwrap_or(0),
        units: b[7],
        count: be32(b, 8).unwrap_or(0),
    })
}

/// Bytes of a transfer count in `units` (SPC-4: 00h bytes, 01h KiB, 02h
/// MiB, 03h GiB, 04h TiB, 05h PiB, 06h EiB, F1h logical blocks of
/// `block_size`).
pub fn transfer_bytes(units: u8, count: u64, block_size: u64) -> Option<u64> {
    match units {
        0..=6 => count.checked_mul(1u64 << (10 * u32::from(units))),
        0xf1 => count.checked_mul(block_size),
        _ => None,
    }
}

/// RECEIVE COPY STATUS(LID4) (84h/05h) and the first part of RECEIVE ROD
/// TOKEN INFORMATION (84h/07h) data: 0..4 AVAILABLE DATA, 4 RESPONSE TO
/// SERVICE ACTION, 5 COPY OPERATION STATUS, 6..8 OPERATION COUNTER, 8..12
/// ESTIMATED STATUS UPDATE DELAY, 12 EXTENDED COPY COMPLETION STATUS, 13
/// LENGTH OF THE SENSE DATA FIELD, 14 SENSE DATA LENGTH, 15 TRANSFER COUNT
/// UNITS, 16..24 TRANSFER COUNT, 24..26 SEGMENTS PROCESSED, 32.. sense
/// data; for 07h then ROD TOKEN DESCRIPTORS LENGTH (4) and descriptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLid4 {
    /// AVAILABLE DATA.
    pub available: u32,
    /// RESPONSE TO SERVICE ACTION.
    pub response_to: u8,
    /// COPY OPERATION STATUS.
    pub status: u8,
    /// EXTENDED COPY COMPLETION STATUS (the SCSI status of the command).
    pub completion_status: u8,
    /// TRANSFER COUNT UNITS.
    pub units: u8,
    /// TRANSFER COUNT.
    pub count: u64,
    /// SEGMENTS PROCESSED.
    pub segments: u16,
    /// SENSE DATA (SENSE DATA LENGTH bytes).
    pub sense: Vec<u8>,
    /// ROD token (for 07h, if a descriptor holds one).
    pub token: Option<[u8; 512]>,
}

/// Decode 84h/05h or 84h/07h data.
pub fn status_lid4(b: &[u8], with_token: bool) -> Result<StatusLid4, String> {
    if b.len() < 32 {
        return Err(format!(
            "copy status (LID4): {} bytes, header is 32",
            b.len()
        ));
    }
    let avail = be32(b, 0).unwrap_or(0);
    let field = usize::from(b[13]);
    let slen = usize::from(b[14]);
    if slen > field {
        return Err(format!(
            "SENSE DATA LENGTH {slen} > LENGTH OF THE SENSE DATA FIELD {field}"
        ));
    }
    let sense = b
        .get(32..32 + slen)
        .ok_or_else(|| short("sense data"))?
        .to_vec();
    let mut token = None;
    if with_token {
        let at = 32 + field;
        let tl = be32(b, at).ok_or_else(|| short("ROD TOKEN DESCRIPTORS LENGTH"))? as usize;
        if avail as usize + 4 != at + 4 + tl {
            return Err(format!(
                "AVAILABLE DATA {avail} != {} (header, sense field {field}, ROD token descriptors {tl})",
                at + tl
            ));
        }
        if tl > 0 {
            if tl < 514 {
                return Err(format!("ROD TOKEN DESCRIPTORS LENGTH {tl} < 514"));
            }
            let t = b
                .get(at + 6..at + 6 + 512)
                .ok_or_else(|| short("ROD token"))?;
            let mut a = [0u8; 512];
            a.copy_from_slice(t);
            token = Some(a);
        }
    } else if avail as usize + 4 != 32 + field {
        return Err(format!(
            "AVAILABLE DATA {avail} != 28 + LENGTH OF THE SENSE DATA FIELD {field}"
        ));
    }
    Ok(StatusLid4 {
        available: avail,
        response_to: b[4] & 0x1f,
        status: b[5] & 0x7f,
        completion_status: b[12],
        units: b[15],
        count: be64(b, 16).unwrap_or(0),
        segments: be16(b, 24).unwrap_or(0),
        sense,
        token,
    })
}

/// RECEIVE COPY FAILURE DETAILS (84h/04h) data: 0..4 AVAILABLE DATA, 4..56
/// reserved, 56 COPY COMMAND STATUS, 58..60 SENSE DATA LENGTH, 60.. sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureDetails {
    /// AVAILABLE DATA.
    pub available: u32,
    /// COPY COMMAND STATUS.
    pub status: u8,
    /// SENSE DATA.
    pub sense: Vec<u8>,
}

/// Decode 84h/04h data.
pub fn failure_details(b: &[u8]) -> Result<FailureDetails, String> {
    let available = be32(b, 0).ok_or_else(|| short("failure details"))?;
    if available == 0 {
        return Ok(FailureDetails {
            available,
            status: 0,
            sense: Vec::new(),
        });
    }
    if b.len() < 60 {
        return Err(format!("failure details: {} bytes, header is 60", b.len()));
    }
    let n = usize::from(be16(b, 58).unwrap_or(0));
    if available as usize + 4 != 60 + n {
        return Err(format!(
            "failure details: AVAILABLE DATA {available} != 56 + SENSE DATA LENGTH {n}"
        ));
    }
    Ok(FailureDetails {
        available,
        status: b[56] & 0x7f,
        sense: b
            .get(60..60 + n)
            .ok_or_else(|| short("failure details sense"))?
            .to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpd83_designators() {
        let p = [
            0x14, 0x83, 0, 28, // PDT 14h, page 83h, length
            0x01, 0x03, 0, 8, 0x50, 1, 2, 3, 4, 5, 6, 7, // binary, LU, NAA
            0x61, 0x93, 0, 4, 0, 0, 0, 1, // SAS, PIV, target port, relative port
            0x02, 0x01, 0, 4, b'A', b'B', b'C', b'D', // ASCII, LU, T10 vendor id
        ];
        let d = vpd83(&p).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[1].association, 1);
        assert!(d[1].piv);
        let lu = lu_designator(&d).unwrap();
        assert_eq!((lu.code_set, lu.designator_type), (1, 3));
        assert_eq!(lu.designator, vec![0x50, 1, 2, 3, 4, 5, 6, 7]);
        let mut bad = p;
        bad[3] = 29;
        assert!(vpd83(&bad).is_err());
        bad[3] = 27;
        assert!(vpd83(&bad).unwrap_err().contains("crosses"));
    }

    fn page8f() -> Vec<u8> {
        let mut p = vec![0x14, 0x8f, 0, 0];
        // Supported Commands: 83h {00,01,10,11,1C}, 84h {00,03,04,05,07}.
        let list = [0x83, 5, 0, 1, 0x10, 0x11, 0x1c, 0x84, 5, 0, 3, 4, 5, 7];
        let mut d = vec![0, 1, 0, 0, list.len() as u8];
        d.extend_from_slice(&list);
        while (d.len() - 4) % 4 != 0 {
            d.push(0);
        }
        let n = (d.len() - 4) as u16;
        d[2..4].copy_from_slice(&n.to_be_bytes());
        p.extend_from_slice(&d);
        // Parameter Data: 4 CSCDs, 8 segments, 1024 bytes, no inline.
        let mut d = vec![0, 4, 0, 28, 0, 0, 0, 0, 0, 4, 0, 8, 0, 0, 4, 0, 0, 0, 0, 0];
        d.resize(32, 0);
        p.extend_from_slice(&d);
        // Supported Descriptors: 02h, 0Ah, E4h.
        p.extend_from_slice(&[0, 8, 0, 4, 3, 0x02, 0x0a, 0xe4]);
        // Supported CSCD IDs: FFFFh.
        p.extend_from_slice(&[0, 0x0c, 0, 4, 0, 2, 0xff, 0xff]);
        // ROD types: AUR in/out and block zero in.
        let mut d = vec![0x01, 0x08, 0, 132, 0, 0, 0, 128];
        let mut t = [0u8; 64];
        t[..4].copy_from_slice(&[0, 1, 0, 0]);
        t[4] = 3;
        d.extend_from_slice(&t);
        t[..4].copy_from_slice(&[0xff, 0xff, 0, 1]);
        t[4] = 2;
        d.extend_from_slice(&t);
        p.extend_from_slice(&d);
        let n = (p.len() - 4) as u16;
        p[2..4].copy_from_slice(&n.to_be_bytes());
        p
    }

    #[test]
    fn vpd8f_decoded() {
        let p = page8f();
        let t = tpc(&vpd8f(&p).unwrap()).unwrap();
        assert_eq!(t.kinds, vec![0x0001, 0x0004, 0x0008, 0x000c, 0x0108]);
        assert!(t.supports(0x83, 0x1c) && t.supports(0x84, 0x07) && !t.supports(0x84, 0x01));
        assert_eq!((t.max_cscd, t.max_segments), (Some(4), Some(8)));
        assert_eq!((t.max_list_len, t.max_inline), (Some(1024), Some(0)));
        assert_eq!(t.descriptors, Some(vec![0x02, 0x0a, 0xe4]));
        assert_eq!(t.cscd_ids, Some(vec![0xffff]));
        assert_eq!(
            t.rod_types,
            Some(vec![(0x0001_0000, true, true), (0xffff_0001, true, false)])
        );
        // Length errors are named.
        let mut bad = p.clone();
        bad[3] += 4;
        assert!(vpd8f(&bad).unwrap_err().contains("exceeds"));
        let mut bad = p.clone();
        bad[7] = 17; // first descriptor length not a multiple of 4
        assert!(vpd8f(&bad).is_err());
        for n in 0..p.len() {
            let _ = vpd8f(&p[..n]).map(|d| tpc(&d));
        }
    }

    #[test]
    fn operating_parameters_decoded() {
        let mut b = vec![0u8; 46];
        b[..4].copy_from_slice(&42u32.to_be_bytes()); // AVAILABLE DATA
        b[4] = 1; // SNLID
        b[8..10].copy_from_slice(&[0, 4]);
        b[10..12].copy_from_slice(&[0, 8]);
        b[12..16].copy_from_slice(&[0, 0, 4, 0]);
        b[43] = 2;
        b[44] = 0x02;
        b[45] = 0xe4;
        let o = operating_parameters(&b).unwrap();
        assert!(o.snlid);
        assert_eq!((o.max_cscd, o.max_segments, o.max_list_len), (4, 8, 1024));
        assert_eq!(o.implemented, vec![0x02, 0xe4]);
        b[3] = 41;
        assert!(operating_parameters(&b).is_err());
    }

    #[test]
    fn statuses() {
        let b = [0, 0, 0, 8, 0x01, 0, 2, 0x00, 0, 0, 0x80, 0];
        assert_eq!(
            status_lid1(&b).unwrap(),
            StatusLid1 {
                available: 8,
                status: 1,
                segments: 2,
                units: 0,
                count: 0x8000
            }
        );
        assert_eq!(transfer_bytes(0, 5, 512), Some(5));
        assert_eq!(transfer_bytes(2, 3, 512), Some(3 << 20));
        assert_eq!(transfer_bytes(0xf1, 3, 512), Some(1536));
        assert_eq!(transfer_bytes(0x07, 3, 512), None);

        let mut b = vec![0u8; 32 + 18];
        b[..4].copy_from_slice(&(28u32 + 18).to_be_bytes());
        b[4] = 0x01;
        b[5] = 0x02;
        b[12] = 0x02;
        b[13] = 18;
        b[14] = 18;
        b[16..24].copy_from_slice(&4096u64.to_be_bytes());
        b[24..26].copy_from_slice(&[0, 1]);
        b[32] = 0x70;
        let s = status_lid4(&b, false).unwrap();
        assert_eq!((s.response_to, s.status, s.completion_status), (1, 2, 2));
        assert_eq!((s.count, s.segments, s.sense.len()), (4096, 1, 18));

        // ROD token information with a token.
        let mut b = vec![0u8; 32 + 4 + 514];
        b[..4].copy_from_slice(&(32u32 + 514).to_be_bytes());
        b[4] = 0x10;
        b[5] = 0x01;
        b[32..36].copy_from_slice(&514u32.to_be_bytes());
        b[38] = 0xab;
        let s = status_lid4(&b, true).unwrap();
        assert_eq!(s.token.unwrap()[0], 0xab);
        b[3] ^= 1;
        assert!(status_lid4(&b, true).is_err());

        let mut b = vec![0u8; 60 + 18];
        b[..4].copy_from_slice(&(56u32 + 18).to_be_bytes());
        b[56] = 2;
        b[58..60].copy_from_slice(&[0, 18]);
        b[60] = 0x70;
        let f = failure_details(&b).unwrap();
        assert_eq!((f.status, f.sense.len()), (2, 18));
        assert_eq!(failure_details(&[0, 0, 0, 0]).unwrap().available, 0);

        let r = rsoc_one(&[0, 0x03, 0, 2, 0x83, 0x1f]).unwrap();
        assert_eq!((r.support, r.usage), (3, vec![0x83, 0x1f]));
        assert!(rsoc_one(&[0, 3, 0, 16]).is_err());
    }
}
