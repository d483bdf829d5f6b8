//! NVMe/TCP PDUs (NVMe/TCP Transport Specification 1.0, 3.6) without
//! digests, for a trace that recorded SQEs, CQEs and data rather than the
//! PDUs themselves (e.g. a PCIe namespace) and for tests. All fields are
//! little-endian (1.4).

use crate::transport::nvme_tcp::pdu::{
    PduType, CAPSULE_CMD_HLEN, CAPSULE_RESP_HLEN, DATA_HLEN, FLAG_LAST_PDU, FLAG_SUCCESS, IC_HLEN,
};

/// A PDU of `kind` with header length `hlen`, its header-specific bytes
/// (from offset 8) and `data` right after the header (PDO = HLEN, which
/// every HPDA/CPDA of 0 allows, 3.6.2.1).
fn pdu(kind: PduType, flags: u8, h: usize, specific: &[u8], data: &[u8]) -> Vec<u8> {
    // Every HLEN is at most 128 (3.6.2.1).
    let hlen = h as u8;
    let mut b = vec![0u8; h];
    b[0] = kind as u8;
    b[1] = flags;
    b[2] = hlen;
    b[3] = if data.is_empty() { 0 } else { hlen };
    // PLEN is 32 bits; PDUs we build carry at most one command's data.
    b[4..8].copy_from_slice(&((h + data.len()) as u32).to_le_bytes());
    b[8..8 + specific.len()].copy_from_slice(specific);
    b.extend_from_slice(data);
    b
}

/// ICReq (3.6.2.2, Figure 26): PFV 0, HPDA 0, no digests, MAXR2T
/// `maxr2t` (0's based).
pub fn icreq(maxr2t: u32) -> Vec<u8> {
    let mut s = [0u8; 8];
    s[4..8].copy_from_slice(&maxr2t.to_le_bytes());
    pdu(PduType::IcReq, 0, IC_HLEN, &s, &[])
}

/// ICResp (3.6.2.3, Figure 27): PFV 0, CPDA 0, no digests, MAXH2CDATA.
pub fn icresp(maxh2cdata: u32) -> Vec<u8> {
    let mut s = [0u8; 8];
    s[4..8].copy_from_slice(&maxh2cdata.to_le_bytes());
    pdu(PduType::IcResp, 0, IC_HLEN, &s, &[])
}

/// CapsuleCmd (3.6.2.6, Figure 30): the 64-byte SQE and in-capsule data.
pub fn capsule_cmd(sqe: &[u8; 64], data: &[u8]) -> Vec<u8> {
    pdu(PduType::CapsuleCmd, 0, CAPSULE_CMD_HLEN, sqe, data)
}

/// CapsuleResp (3.6.2.7, Figure 31): the 16-byte CQE.
pub fn capsule_resp(cqe: &[u8; 16]) -> Vec<u8> {
    pdu(PduType::CapsuleResp, 0, CAPSULE_RESP_HLEN, cqe, &[])
}

/// The specific header of a data or R2T PDU: CCCID, TTAG (reserved in
/// C2HData), offset, length.
fn data_header(cccid: u16, ttag: u16, offset: u32, len: usize) -> [u8; 12] {
    let mut s = [0u8; 12];
    s[0..2].copy_from_slice(&cccid.to_le_bytes());
    s[2..4].copy_from_slice(&ttag.to_le_bytes());
    s[4..8].copy_from_slice(&offset.to_le_bytes());
    s[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    s
}

/// C2HData (3.6.2.9, Figure 33): `data` at DATAO `offset` of command
/// `cccid`; `last` sets LAST_PDU, `success` (only with `last`) SUCCESS,
/// meaning no CapsuleResp follows (allowed only when the Connect disabled
/// SQ flow control).
pub fn c2h_data(cccid: u16, offset: u32, data: &[u8], last: bool, success: bool) -> Vec<u8> {
    let mut flags = 0;
    if last {
        flags |= FLAG_LAST_PDU;
        if success {
            flags |= FLAG_SUCCESS;
        }
    }
    pdu(
        PduType::C2hData,
        flags,
        DATA_HLEN,
        &data_header(cccid, 0, offset, data.len()),
        data,
    )
}

/// H2CData (3.6.2.8, Figure 32): `data` at DATAO `offset` for the R2T
/// with tag `ttag` of command `cccid`.
pub fn h2c_data(cccid: u16, ttag: u16, offset: u32, data: &[u8], last: bool) -> Vec<u8> {
    let flags = if last { FLAG_LAST_PDU } else { 0 };
    pdu(
        PduType::H2cData,
        flags,
        DATA_HLEN,
        &data_header(cccid, ttag, offset, data.len()),
        data,
    )
}

/// R2T (3.6.2.10, Figure 34): `len` bytes at `offset` of command `cccid`.
pub fn r2t(cccid: u16, ttag: u16, offset: u32, len: u32) -> Vec<u8> {
    pdu(
        PduType::R2t,
        0,
        DATA_HLEN,
        &data_header(cccid, ttag, offset, len as usize),
        &[],
    )
}

/// Fabrics Connect (NVMe over Fabrics 1.1, 3.3): a CapsuleCmd with the
/// Connect SQE (OPC 7Fh, FCTYPE 01h, SGL1 an in-capsule data block of
/// 1024 bytes, QID, SQSIZE) and its Connect data (Figure 20: HOSTID,
/// CNTLID FFFFh for the dynamic controller model, SUBNQN, HOSTNQN).
pub fn connect(cid: u16, qid: u16, sqsize: u16, subnqn: &str, hostnqn: &str) -> Vec<u8> {
    let mut sqe = [0u8; 64];
    sqe[0] = 0x7F;
    sqe[1] = 0x40; // PSDT: SGL
    sqe[2..4].copy_from_slice(&cid.to_le_bytes());
    sqe[4] = 0x01; // FCTYPE: Connect
    sqe[32..36].copy_from_slice(&1024u32.to_le_bytes());
    sqe[39] = 0x01; // Data Block, Offset
    sqe[42..44].copy_from_slice(&qid.to_le_bytes());
    sqe[44..46].copy_from_slice(&sqsize.to_le_bytes());
    let mut data = vec![0u8; 1024];
    data[16..18].copy_from_slice(&0xFFFFu16.to_le_bytes());
    // NQNs are at most 223 bytes in 256-byte fields (NVMe Base 2.0 4.5).
    let put = |d: &mut [u8], at: usize, s: &str| {
        let n = s.len().min(223);
        d[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
    };
    put(&mut data, 256, subnqn);
    put(&mut data, 512, hostnqn);
    capsule_cmd(&sqe, &data)
}

/// A successful Connect response for `qid`: CQE with CNTLID 1 in DW0,
/// SQID `qid`, CID `cid`.
pub fn connect_response(cid: u16, qid: u16) -> Vec<u8> {
    let mut cqe = [0u8; 16];
    cqe[0] = 1;
    cqe[10..12].copy_from_slice(&qid.to_le_bytes());
    cqe[12..14].copy_from_slice(&cid.to_le_bytes());
    capsule_resp(&cqe)
}
