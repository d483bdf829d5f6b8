//! NVMe/TCP PDU codec (NVMe/TCP Transport Specification 1.1, section 3.6
//! "PDU formats"; field names follow it).
//!
//! Receiving is two steps, so a garbage length never makes us buffer
//! megabytes: [`check_common_header`] validates the 8-byte common header
//! (type, flags, HLEN, PDO, PLEN, in that order as 3.6.2.1 asks: "the
//! lowest incorrect field first") and says how many bytes the PDU has;
//! [`decode_host_pdu`] then checks the header digest and decodes the
//! type-specific header into a [`HostPdu`], with the data digest verdict.
//! Every error is a [`Fatal`]: the FES and FEI a C2HTermReq carries.
//!
//! Encoders write whole PDUs, digests included, to a `Vec<u8>`. The
//! host-side encoders and the controller-PDU decoder ([`host`]) exist for
//! tests and scripted hosts.

use crate::nvme::Sqe;

mod host;
pub use host::{decode_controller_pdu, encode_capsule_cmd, encode_h2c_data, ControllerPdu};

/// Bytes of the common header (CH): PDU-Type, FLAGS, HLEN, PDO, PLEN.
pub const CH_LEN: usize = 8;
/// Bytes of a header or data digest (CRC32C).
pub const DIGEST_LEN: usize = 4;
/// HLEN of ICReq and ICResp.
pub const IC_HLEN: usize = 128;
/// HLEN of CapsuleCmd: CH + 64-byte SQE.
pub const CAPSULE_CMD_HLEN: usize = 72;
/// HLEN of CapsuleResp: CH + 16-byte CQE.
pub const CAPSULE_RESP_HLEN: usize = 24;
/// HLEN of H2CData, C2HData and R2T.
pub const DATA_HLEN: usize = 24;
/// HLEN of H2CTermReq and C2HTermReq.
pub const TERM_HLEN: usize = 24;
/// Most bytes of the offending PDU header a termination request carries
/// (3.6.2.4: PLEN at most 152).
pub const TERM_MAX_DATA: usize = 128;
/// Protocol format version 1.0 (the only one).
pub const PFV_1_0: u16 = 0;

/// Flag: a header digest follows the header (HDGSTF).
pub const FLAG_HDGST: u8 = 1 << 0;
/// Flag: a data digest follows the data (DDGSTF).
pub const FLAG_DDGST: u8 = 1 << 1;
/// H2CData/C2HData flag: last PDU of the transfer (LAST_PDU).
pub const FLAG_LAST_PDU: u8 = 1 << 2;
/// C2HData flag: command completed successfully, no CapsuleResp follows
/// (SUCCESS, 3.6.2.9; only with LAST_PDU and SQ flow control disabled).
pub const FLAG_SUCCESS: u8 = 1 << 3;

/// ICReq/ICResp DGST bits.
pub const DGST_HDGSTE: u8 = 1 << 0;
pub const DGST_DDGSTE: u8 = 1 << 1;

/// PDU types (3.6.2.1 Figure "PDU Type values").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PduType {
    IcReq = 0x00,
    IcResp = 0x01,
    H2cTermReq = 0x02,
    C2hTermReq = 0x03,
    CapsuleCmd = 0x04,
    CapsuleResp = 0x05,
    H2cData = 0x06,
    C2hData = 0x07,
    R2t = 0x09,
}

impl PduType {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x00 => PduType::IcReq,
            0x01 => PduType::IcResp,
            0x02 => PduType::H2cTermReq,
            0x03 => PduType::C2hTermReq,
            0x04 => PduType::CapsuleCmd,
            0x05 => PduType::CapsuleResp,
            0x06 => PduType::H2cData,
            0x07 => PduType::C2hData,
            0x09 => PduType::R2t,
            _ => return None,
        })
    }
}

/// Fatal Error Status of a termination request (3.6.2.4/3.6.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Fes {
    InvalidHeaderField = 0x01,
    PduSequenceError = 0x02,
    HeaderDigestError = 0x03,
    DataTransferOutOfRange = 0x04,
    /// Also "R2T Limit Exceeded".
    DataTransferLimitExceeded = 0x05,
    UnsupportedParameter = 0x06,
}

impl Fes {
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0x01 => Fes::InvalidHeaderField,
            0x02 => Fes::PduSequenceError,
            0x03 => Fes::HeaderDigestError,
            0x04 => Fes::DataTransferOutOfRange,
            0x05 => Fes::DataTransferLimitExceeded,
            0x06 => Fes::UnsupportedParameter,
            _ => return None,
        })
    }
}

/// A fatal transport error: close the connection after sending a
/// C2HTermReq with these values. For [`Fes::InvalidHeaderField`] and
/// [`Fes::UnsupportedParameter`] `fei` is the byte offset of the field in
/// error; otherwise it is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fatal {
    pub fes: Fes,
    pub fei: u32,
}

impl Fatal {
    pub const fn field(offset: u32) -> Self {
        Fatal {
            fes: Fes::InvalidHeaderField,
            fei: offset,
        }
    }

    pub const fn of(fes: Fes) -> Self {
        Fatal { fes, fei: 0 }
    }
}

/// Byte offsets of common header fields (FEI values).
pub mod offset {
    pub const TYPE: u32 = 0;
    pub const FLAGS: u32 = 1;
    pub const HLEN: u32 = 2;
    pub const PDO: u32 = 3;
    pub const PLEN: u32 = 4;
    /// ICReq PFV.
    pub const ICREQ_PFV: u32 = 8;
    /// ICReq HPDA.
    pub const ICREQ_HPDA: u32 = 10;
    /// H2CData CCCID, TTAG, DATAO, DATAL.
    pub const CCCID: u32 = 8;
    pub const TTAG: u32 = 10;
    pub const DATAO: u32 = 12;
    pub const DATAL: u32 = 16;
}

/// Which digests the ICReq/ICResp exchange enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub header: bool,
    pub data: bool,
}

impl Digests {
    fn header_len(self) -> usize {
        if self.header {
            DIGEST_LEN
        } else {
            0
        }
    }

    fn data_len(self) -> usize {
        if self.data {
            DIGEST_LEN
        } else {
            0
        }
    }
}

/// CRC32C as both digests use it (seed all ones, final complement,
/// stored little-endian): 3.3.2.
pub fn digest(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// The decoded common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommonHeader {
    pub pdu_type: u8,
    pub flags: u8,
    pub hlen: u8,
    pub pdo: u8,
    pub plen: u32,
}

impl CommonHeader {
    pub fn parse(b: &[u8; CH_LEN]) -> Self {
        CommonHeader {
            pdu_type: b[0],
            flags: b[1],
            hlen: b[2],
            pdo: b[3],
            plen: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// What the receiver knows when it checks a common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxContext {
    /// `None` until ICReq/ICResp are exchanged.
    pub digests: Option<Digests>,
    /// Largest in-capsule data accepted in a CapsuleCmd.
    pub max_icd: u32,
    /// MAXH2CDATA the controller advertised.
    pub max_h2c_data: u32,
}

/// Where the parts of a PDU lie, from its common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub pdu_type: PduType,
    pub flags: u8,
    pub hlen: usize,
    pub plen: usize,
    /// Start and length of the data (0 length: no data).
    pub data_start: usize,
    pub data_len: usize,
}

/// Largest alignment padding a PDU may have (PDA up to 31 -> 128 bytes).
const MAX_PAD: usize = 128;

/// Check the common header of a PDU sent by a host; see the module doc.
/// The controller's CPDA is 0, so data must be dword aligned only.
pub fn check_common_header(ch: &CommonHeader, ctx: &RxContext) -> Result<Layout, Fatal> {
    // Type: controllers receive only host-to-controller (even) types.
    let pdu_type = match PduType::from_u8(ch.pdu_type) {
        Some(
            t @ (PduType::IcReq | PduType::H2cTermReq | PduType::CapsuleCmd | PduType::H2cData),
        ) => t,
        _ => return Err(Fatal::field(offset::TYPE)),
    };
    let plen = ch.plen as usize;
    match (ctx.digests, pdu_type) {
        (None, PduType::IcReq | PduType::H2cTermReq) => {}
        (None, _) | (Some(_), PduType::IcReq) => return Err(Fatal::of(Fes::PduSequenceError)),
        (Some(_), _) => {}
    }
    if matches!(pdu_type, PduType::IcReq) {
        // 3.6.2.2: HLEN and PLEN are 128, PDO 0, no digests; FLAGS reserved.
        if usize::from(ch.hlen) != IC_HLEN {
            return Err(Fatal::field(offset::HLEN));
        }
        if ch.pdo != 0 {
            return Err(Fatal::field(offset::PDO));
        }
        if plen != IC_HLEN {
            return Err(Fatal::field(offset::PLEN));
        }
        return Ok(Layout {
            pdu_type,
            flags: ch.flags,
            hlen: IC_HLEN,
            plen,
            data_start: 0,
            data_len: 0,
        });
    }
    let digests = ctx.digests.unwrap_or_default();
    let valid_flags = match pdu_type {
        PduType::H2cTermReq => 0,
        PduType::CapsuleCmd => FLAG_HDGST | FLAG_DDGST,
        _ => FLAG_HDGST | FLAG_DDGST | FLAG_LAST_PDU,
    };
    if ch.flags & !valid_flags != 0 {
        return Err(Fatal::field(offset::FLAGS));
    }
    let has_hdgst = ch.flags & FLAG_HDGST != 0;
    let has_ddgst = ch.flags & FLAG_DDGST != 0;
    if valid_flags & FLAG_HDGST != 0 && has_hdgst != digests.header {
        return Err(Fatal::field(offset::FLAGS));
    }
    if has_ddgst && !digests.data {
        return Err(Fatal::field(offset::FLAGS));
    }
    let hlen = match pdu_type {
        PduType::H2cTermReq => TERM_HLEN,
        PduType::CapsuleCmd => CAPSULE_CMD_HLEN,
        _ => DATA_HLEN,
    };
    if usize::from(ch.hlen) != hlen {
        return Err(Fatal::field(offset::HLEN));
    }
    if matches!(pdu_type, PduType::H2cTermReq) {
        // 3.6.2.5: no digests; a bad length closes the connection, but a
        // C2HTermReq in answer does no harm.
        if ch.pdo != 0 {
            return Err(Fatal::field(offset::PDO));
        }
        if !(TERM_HLEN..=TERM_HLEN + TERM_MAX_DATA).contains(&plen) {
            return Err(Fatal::field(offset::PLEN));
        }
        return Ok(Layout {
            pdu_type,
            flags: ch.flags,
            hlen,
            plen,
            data_start: TERM_HLEN,
            data_len: plen - TERM_HLEN,
        });
    }
    let full_hlen = hlen + if has_hdgst { DIGEST_LEN } else { 0 };
    let pdo = usize::from(ch.pdo);
    let no_data = plen == full_hlen;
    if !(no_data && (pdo == 0 || pdo == full_hlen))
        && (pdo < full_hlen || pdo >= plen || pdo % 4 != 0)
    {
        return Err(Fatal::field(offset::PDO));
    }
    if plen < full_hlen {
        return Err(Fatal::field(offset::PLEN));
    }
    let max_data = match pdu_type {
        PduType::CapsuleCmd => ctx.max_icd as usize,
        _ => ctx.max_h2c_data as usize,
    };
    if plen > full_hlen + MAX_PAD + max_data + DIGEST_LEN {
        return Err(Fatal::of(Fes::DataTransferLimitExceeded));
    }
    if no_data {
        if has_ddgst {
            return Err(Fatal::field(offset::FLAGS));
        }
        return Ok(Layout {
            pdu_type,
            flags: ch.flags,
            hlen,
            plen,
            data_start: plen,
            data_len: 0,
        });
    }
    // Data present: its digest must be too when enabled.
    if digests.data != has_ddgst {
        return Err(Fatal::field(offset::FLAGS));
    }
    let ddgst = if has_ddgst { DIGEST_LEN } else { 0 };
    let data_len = plen - pdo;
    if data_len <= ddgst {
        return Err(Fatal::field(offset::PLEN));
    }
    let data_len = data_len - ddgst;
    if data_len > max_data {
        return Err(Fatal::of(Fes::DataTransferLimitExceeded));
    }
    Ok(Layout {
        pdu_type,
        flags: ch.flags,
        hlen,
        plen,
        data_start: pdo,
        data_len,
    })
}

/// ICReq (3.6.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcReq {
    pub pfv: u16,
    /// Host PDU data alignment, dwords, 0's based (0..=31).
    pub hpda: u8,
    /// DGST: [`DGST_HDGSTE`], [`DGST_DDGSTE`].
    pub dgst: u8,
    /// Outstanding R2Ts per command the host accepts, 0's based.
    pub maxr2t: u32,
}

/// A termination request (H2CTermReq or C2HTermReq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermReq {
    /// Raw FES (unknown values kept for logging).
    pub fes: u16,
    pub fei: u32,
    /// The offending PDU header, as far as sent.
    pub data: Vec<u8>,
}

/// CapsuleCmd (3.6.2.6): the SQE and any in-capsule data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsuleCmd<'a> {
    pub sqe: Sqe,
    pub data: &'a [u8],
    /// False when a data digest is present and wrong.
    pub data_digest_ok: bool,
}

/// H2CData (3.6.2.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2cData<'a> {
    pub cccid: u16,
    pub ttag: u16,
    pub datao: u32,
    pub datal: u32,
    pub last: bool,
    pub data: &'a [u8],
    pub data_digest_ok: bool,
}

/// A decoded PDU a controller receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPdu<'a> {
    IcReq(IcReq),
    H2cTermReq(TermReq),
    CapsuleCmd(CapsuleCmd<'a>),
    H2cData(H2cData<'a>),
}

fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Check the header digest of `pdu` (which has `hlen` header bytes)
/// if `flags` says one is present.
fn check_header_digest(pdu: &[u8], hlen: usize, flags: u8) -> Result<(), Fatal> {
    if flags & FLAG_HDGST == 0 {
        return Ok(());
    }
    let (Some(header), Some(_)) = (pdu.get(..hlen), pdu.get(hlen..hlen + DIGEST_LEN)) else {
        return Err(Fatal::field(offset::PLEN));
    };
    if digest(header) != le32(pdu, hlen) {
        return Err(Fatal::of(Fes::HeaderDigestError));
    }
    Ok(())
}

/// Data and data digest verdict of a PDU laid out by `layout`.
fn data_of<'a>(pdu: &'a [u8], layout: &Layout) -> Result<(&'a [u8], bool), Fatal> {
    let end = layout.data_start + layout.data_len;
    let data = pdu
        .get(layout.data_start..end)
        .ok_or(Fatal::field(offset::PLEN))?;
    let ok = if layout.flags & FLAG_DDGST != 0 && !data.is_empty() {
        pdu.get(end..end + DIGEST_LEN)
            .ok_or(Fatal::field(offset::PLEN))?;
        digest(data) == le32(pdu, end)
    } else {
        true
    };
    Ok((data, ok))
}

/// Decode a whole PDU (`pdu.len() == layout.plen`) that
/// [`check_common_header`] accepted.
pub fn decode_host_pdu<'a>(pdu: &'a [u8], layout: &Layout) -> Result<HostPdu<'a>, Fatal> {
    if pdu.len() != layout.plen {
        return Err(Fatal::field(offset::PLEN));
    }
    match layout.pdu_type {
        PduType::IcReq => {
            let pfv = le16(pdu, 8);
            if pfv != PFV_1_0 {
                return Err(Fatal {
                    fes: Fes::UnsupportedParameter,
                    fei: offset::ICREQ_PFV,
                });
            }
            let hpda = pdu.get(10).copied().unwrap_or(0);
            if hpda > 31 {
                return Err(Fatal {
                    fes: Fes::UnsupportedParameter,
                    fei: offset::ICREQ_HPDA,
                });
            }
            Ok(HostPdu::IcReq(IcReq {
                pfv,
                hpda,
                dgst: pdu.get(11).copied().unwrap_or(0) & (DGST_HDGSTE | DGST_DDGSTE),
                maxr2t: le32(pdu, 12),
            }))
        }
        PduType::H2cTermReq => Ok(HostPdu::H2cTermReq(TermReq {
            fes: le16(pdu, 8),
            fei: le32(pdu, 10),
            data: pdu.get(TERM_HLEN..).unwrap_or_default().to_vec(),
        })),
        PduType::CapsuleCmd => {
            check_header_digest(pdu, layout.hlen, layout.flags)?;
            let mut sqe = [0u8; 64];
            sqe.copy_from_slice(
                pdu.get(CH_LEN..CAPSULE_CMD_HLEN)
                    .ok_or(Fatal::field(offset::PLEN))?,
            );
            let (data, data_digest_ok) = data_of(pdu, layout)?;
            Ok(HostPdu::CapsuleCmd(CapsuleCmd {
                sqe: Sqe(sqe),
                data,
                data_digest_ok,
            }))
        }
        PduType::H2cData => {
            check_header_digest(pdu, layout.hlen, layout.flags)?;
            let datal = le32(pdu, 16);
            if datal as usize != layout.data_len {
                return Err(Fatal::field(offset::DATAL));
            }
            let (data, data_digest_ok) = data_of(pdu, layout)?;
            Ok(HostPdu::H2cData(H2cData {
                cccid: le16(pdu, 8),
                ttag: le16(pdu, 10),
                datao: le32(pdu, 12),
                datal,
                last: layout.flags & FLAG_LAST_PDU != 0,
                data,
                data_digest_ok,
            }))
        }
        _ => Err(Fatal::field(offset::TYPE)),
    }
}

/// Write a common header.
fn put_ch(out: &mut Vec<u8>, t: PduType, flags: u8, hlen: usize, pdo: usize, plen: usize) {
    out.push(t as u8);
    out.push(flags);
    out.push(u8::try_from(hlen).unwrap_or(u8::MAX));
    out.push(u8::try_from(pdo).unwrap_or(u8::MAX));
    out.extend_from_slice(&u32::try_from(plen).unwrap_or(u32::MAX).to_le_bytes());
}

/// Append a PDU: `header` is the type-specific part after the common
/// header (HLEN - 8 bytes); `data` goes at a PDO aligned to `pda` dwords
/// (0's based); digests as `digests` says. Returns the number of bytes
/// that are not data (header, digests, padding).
pub fn encode_pdu(
    out: &mut Vec<u8>,
    t: PduType,
    extra_flags: u8,
    header: &[u8],
    data: &[u8],
    digests: Digests,
    pda: u8,
) -> usize {
    encode_pdu_parts(out, (t, extra_flags), header, (data, true), (digests, pda)).0
}

/// [`encode_pdu`], with the payload left out of `out` when `inline` is
/// false: the header, padding and data digest are written, and the
/// payload belongs at the returned position (the caller sends it from
/// its own buffer). Returns (non-data bytes, payload position).
fn encode_pdu_parts(
    out: &mut Vec<u8>,
    (t, extra_flags): (PduType, u8),
    header: &[u8],
    (data, inline): (&[u8], bool),
    (digests, pda): (Digests, u8),
) -> (usize, usize) {
    let hlen = CH_LEN + header.len();
    let hdgst = digests.header_len();
    let mut flags = extra_flags;
    if digests.header {
        flags |= FLAG_HDGST;
    }
    let (pdo, plen) = if data.is_empty() {
        (0, hlen + hdgst)
    } else {
        let align = (usize::from(pda) + 1) * 4;
        let pdo = (hlen + hdgst).div_ceil(align) * align;
        if digests.data {
            flags |= FLAG_DDGST;
        }
        (pdo, pdo + data.len() + digests.data_len())
    };
    let start = out.len();
    put_ch(out, t, flags, hlen, pdo, plen);
    out.extend_from_slice(header);
    if digests.header {
        let d = digest(&out[start..start + hlen]);
        out.extend_from_slice(&d.to_le_bytes());
    }
    let mut at = out.len();
    if !data.is_empty() {
        out.resize(start + pdo, 0);
        at = out.len();
        if inline {
            out.extend_from_slice(data);
        }
        if digests.data {
            out.extend_from_slice(&digest(data).to_le_bytes());
        }
    }
    (plen - data.len(), at)
}

/// ICResp (3.6.2.3). Never has digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcResp {
    pub pfv: u16,
    /// Controller PDU data alignment, dwords, 0's based.
    pub cpda: u8,
    pub dgst: u8,
    /// Most data bytes in one H2CData PDU.
    pub maxh2cdata: u32,
}

impl IcResp {
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let mut h = [0u8; IC_HLEN - CH_LEN];
        h[0..2].copy_from_slice(&self.pfv.to_le_bytes());
        h[2] = self.cpda;
        h[3] = self.dgst;
        h[4..8].copy_from_slice(&self.maxh2cdata.to_le_bytes());
        encode_pdu(out, PduType::IcResp, 0, &h, &[], Digests::default(), 0)
    }
}

/// The 16-byte completion queue entry of a CapsuleResp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cqe {
    pub dw0: u32,
    pub dw1: u32,
    pub sqhd: u16,
    pub sqid: u16,
    pub cid: u16,
    /// Status field bits 15:1 (phase tag 0), as [`crate::nvme::Completion`].
    pub status: u16,
}

impl Cqe {
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.dw0.to_le_bytes());
        b[4..8].copy_from_slice(&self.dw1.to_le_bytes());
        b[8..10].copy_from_slice(&self.sqhd.to_le_bytes());
        b[10..12].copy_from_slice(&self.sqid.to_le_bytes());
        b[12..14].copy_from_slice(&self.cid.to_le_bytes());
        b[14..16].copy_from_slice(&(self.status << 1).to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 16]) -> Self {
        Cqe {
            dw0: le32(b, 0),
            dw1: le32(b, 4),
            sqhd: le16(b, 8),
            sqid: le16(b, 10),
            cid: le16(b, 12),
            status: le16(b, 14) >> 1,
        }
    }
}

/// CapsuleResp (3.6.2.7).
pub fn encode_capsule_resp(out: &mut Vec<u8>, cqe: &Cqe, digests: Digests) -> usize {
    encode_pdu(
        out,
        PduType::CapsuleResp,
        0,
        &cqe.to_bytes(),
        &[],
        digests,
        0,
    )
}

fn data_header(cccid: u16, ttag: u16, offset: u32, len: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..2].copy_from_slice(&cccid.to_le_bytes());
    h[2..4].copy_from_slice(&ttag.to_le_bytes());
    h[4..8].copy_from_slice(&offset.to_le_bytes());
    h[8..12].copy_from_slice(&len.to_le_bytes());
    h
}

/// C2HData (3.6.2.9): TTAG reserved. `hpda` is the host's alignment. The
/// payload is left out when `inline` is false (see [`encode_pdu_parts`]).
/// Returns (non-data bytes, where the payload belongs in `out`).
#[allow(clippy::too_many_arguments)]
pub fn encode_c2h_data(
    out: &mut Vec<u8>,
    cccid: u16,
    datao: u32,
    data: &[u8],
    last: bool,
    success: bool,
    digests: Digests,
    hpda: u8,
    inline: bool,
) -> (usize, usize) {
    let mut flags = 0;
    if last {
        flags |= FLAG_LAST_PDU;
    }
    if success {
        flags |= FLAG_SUCCESS;
    }
    let datal = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let h = data_header(cccid, 0, datao, datal);
    encode_pdu_parts(
        out,
        (PduType::C2hData, flags),
        &h,
        (data, inline),
        (digests, hpda),
    )
}

/// R2T (3.6.2.10).
pub fn encode_r2t(
    out: &mut Vec<u8>,
    cccid: u16,
    ttag: u16,
    r2to: u32,
    r2tl: u32,
    digests: Digests,
) -> usize {
    let h = data_header(cccid, ttag, r2to, r2tl);
    encode_pdu(out, PduType::R2t, 0, &h, &[], digests, 0)
}

/// A termination request carrying up to 128 bytes of the offending header.
/// Never has digests.
pub fn encode_term_req(out: &mut Vec<u8>, t: PduType, fes: u16, fei: u32, header: &[u8]) -> usize {
    let mut h = [0u8; TERM_HLEN - CH_LEN];
    h[0..2].copy_from_slice(&fes.to_le_bytes());
    h[2..6].copy_from_slice(&fei.to_le_bytes());
    let data = &header[..header.len().min(TERM_MAX_DATA)];
    // The data follows the header directly; PDO stays 0 (3.6.2.4).
    let start = out.len();
    put_ch(out, t, 0, TERM_HLEN, 0, TERM_HLEN + data.len());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.len() - start - data.len()
}

#[cfg(test)]
mod tests;
