//! The host's side of the codec: the PDUs a scripted host sends (ICReq,
//! CapsuleCmd, H2CData) and a lenient decoder of those it receives. The
//! backend never runs this; unit tests, tests/hostile_clients.rs and the
//! state-machine tests drive a connection with it.

use super::*;

impl IcReq {
    /// Host side: an ICReq.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let mut h = [0u8; IC_HLEN - CH_LEN];
        h[0..2].copy_from_slice(&self.pfv.to_le_bytes());
        h[2] = self.hpda;
        h[3] = self.dgst;
        h[4..8].copy_from_slice(&self.maxr2t.to_le_bytes());
        encode_pdu(out, PduType::IcReq, 0, &h, &[], Digests::default(), 0)
    }
}

/// Host side: H2CData.
#[allow(clippy::too_many_arguments)]
pub fn encode_h2c_data(
    out: &mut Vec<u8>,
    cccid: u16,
    ttag: u16,
    datao: u32,
    data: &[u8],
    last: bool,
    digests: Digests,
) -> usize {
    let datal = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let h = data_header(cccid, ttag, datao, datal);
    let flags = if last { FLAG_LAST_PDU } else { 0 };
    encode_pdu(out, PduType::H2cData, flags, &h, data, digests, 0)
}

/// Host side: CapsuleCmd with optional in-capsule data.
pub fn encode_capsule_cmd(out: &mut Vec<u8>, sqe: &Sqe, data: &[u8], digests: Digests) -> usize {
    encode_pdu(out, PduType::CapsuleCmd, 0, &sqe.0, data, digests, 0)
}

/// A decoded PDU a host receives (for scripted hosts and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerPdu {
    IcResp(IcResp),
    C2hTermReq(TermReq),
    CapsuleResp(Cqe),
    C2hData {
        cccid: u16,
        datao: u32,
        last: bool,
        success: bool,
        data: Vec<u8>,
        data_digest_ok: bool,
    },
    R2t {
        cccid: u16,
        ttag: u16,
        r2to: u32,
        r2tl: u32,
    },
}

/// Host side: decode one whole controller PDU (lenient: for tests). The
/// error is a description.
pub fn decode_controller_pdu(pdu: &[u8]) -> Result<ControllerPdu, String> {
    let ch: &[u8; CH_LEN] = pdu
        .get(..CH_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or("short common header")?;
    let ch = CommonHeader::parse(ch);
    if ch.plen as usize != pdu.len() {
        return Err(format!("plen {} but {} bytes", ch.plen, pdu.len()));
    }
    let hlen = usize::from(ch.hlen);
    if ch.flags & FLAG_HDGST != 0 {
        check_header_digest(pdu, hlen, ch.flags).map_err(|e| format!("{e:?}"))?;
    }
    let t = PduType::from_u8(ch.pdu_type).ok_or(format!("type {}", ch.pdu_type))?;
    match t {
        PduType::IcResp => Ok(ControllerPdu::IcResp(IcResp {
            pfv: le16(pdu, 8),
            cpda: pdu.get(10).copied().unwrap_or(0),
            dgst: pdu.get(11).copied().unwrap_or(0),
            maxh2cdata: le32(pdu, 12),
        })),
        PduType::C2hTermReq => Ok(ControllerPdu::C2hTermReq(TermReq {
            fes: le16(pdu, 8),
            fei: le32(pdu, 10),
            data: pdu.get(TERM_HLEN..).unwrap_or_default().to_vec(),
        })),
        PduType::CapsuleResp => {
            let b: &[u8; 16] = pdu
                .get(8..24)
                .and_then(|s| s.try_into().ok())
                .ok_or("short CQE")?;
            Ok(ControllerPdu::CapsuleResp(Cqe::from_bytes(b)))
        }
        PduType::R2t => Ok(ControllerPdu::R2t {
            cccid: le16(pdu, 8),
            ttag: le16(pdu, 10),
            r2to: le32(pdu, 12),
            r2tl: le32(pdu, 16),
        }),
        PduType::C2hData => {
            let datal = le32(pdu, 16) as usize;
            let pdo = usize::from(ch.pdo);
            let data = pdu.get(pdo..pdo + datal).ok_or("data out of PDU")?.to_vec();
            let data_digest_ok = if ch.flags & FLAG_DDGST != 0 {
                digest(&data) == le32(pdu, pdo + datal)
            } else {
                true
            };
            Ok(ControllerPdu::C2hData {
                cccid: le16(pdu, 8),
                datao: le32(pdu, 12),
                last: ch.flags & FLAG_LAST_PDU != 0,
                success: ch.flags & FLAG_SUCCESS != 0,
                data,
                data_digest_ok,
            })
        }
        other => Err(format!("unexpected {other:?}")),
    }
}
