//! The C2HData SUCCESS flag on the wire (NVMe/TCP Transport Specification
//! 1.0, 3.6.2.9 C2HData PDU, FLAGS bit 3; TP 8000): a controller may end a
//! read's last C2HData PDU with SUCCESS, and then sends no CapsuleResp,
//! only when the host disabled SQ flow control at Connect (NVMe over
//! Fabrics 1.1, Connect command CATTR bit 2): without SQ head pointer
//! updates the CapsuleResp carries nothing the host needs. SUCCESS comes
//! with LAST_PDU (Linux's host refuses it otherwise: nvme_tcp_handle_c2h_data,
//! "SUCCESS set but not last PDU"). Linux's target does the same
//! (nvmet_setup_c2h_data_pdu: `sqhd_disabled`).

use super::*;

/// Connect CATTR bit 2: disable SQ flow control.
const CATTR_DISABLE_SQFLOW: u8 = 1 << 2;

/// Read exactly `n` raw bytes from the host's socket.
fn raw(h: &mut Host, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    h.s.read_exact(&mut b).unwrap();
    b
}

/// The 24 bytes of a CapsuleResp with no digests: CH, then the CQE.
fn capsule_resp(sqhd: u16, cid: u16, status: u16) -> Vec<u8> {
    let mut b = vec![
        0x05, // PDU-Type: CapsuleResp
        0x00, // FLAGS
        0x18, // HLEN 24
        0x00, // PDO
        0x18, 0x00, 0x00, 0x00, // PLEN 24
        0x00, 0x00, 0x00, 0x00, // CQE DW0
        0x00, 0x00, 0x00, 0x00, // CQE DW1
    ];
    b.extend_from_slice(&sqhd.to_le_bytes()); // SQHD
    b.extend_from_slice(&1u16.to_le_bytes()); // SQID 1
    b.extend_from_slice(&cid.to_le_bytes()); // CID
    b.extend_from_slice(&(status << 1).to_le_bytes()); // status, phase 0
    b
}

/// The 24-byte C2HData header of a whole 4 KiB read at DATAO 0.
fn c2h_data_header(flags: u8, cid: u16) -> Vec<u8> {
    let mut b = vec![
        0x07, // PDU-Type: C2HData
        flags, 0x18, // HLEN 24
        0x18, // PDO 24 (HPDA 0, no header digest)
        0x18, 0x10, 0x00, 0x00, // PLEN 24 + 4096
    ];
    b.extend_from_slice(&cid.to_le_bytes()); // CCCID
    b.extend_from_slice(&[
        0x00, 0x00, // reserved (TTAG)
        0x00, 0x00, 0x00, 0x00, // DATAO 0
        0x00, 0x10, 0x00, 0x00, // DATAL 4096
        0x00, 0x00, 0x00, 0x00, // reserved
    ]);
    b
}

/// One in-capsule 4 KiB write at `slba`: its CapsuleResp, byte for byte.
fn write_in_capsule(h: &mut Host, slba: u64, data: &[u8], sqhd: u16) {
    let sqe = h.rw_sqe(op("Write"), slba, BS, true);
    h.capsule(&sqe, data);
    assert_eq!(raw(h, 24), capsule_resp(sqhd, sqe.cid(), 0), "write");
}

/// With SQ flow control disabled, a 4 KiB read is one C2HData PDU with
/// LAST_PDU | SUCCESS and nothing after it: the next bytes on the wire are
/// the response to the next command. A failed read still gets its
/// CapsuleResp (and no data).
#[test]
fn success_replaces_the_response_capsule_byte_for_byte() {
    let t = target();
    let mut admin = Host::connect(&t);
    let cntlid = admin.admin(Digests::default());
    let mut io = Host::io(&t, cntlid, Digests::default(), CATTR_DISABLE_SQFLOW);
    let data = pattern(BS, 9);
    // SQHD is not updated with SQ flow control off: 0 throughout.
    write_in_capsule(&mut io, 3, &data, 0);
    let sqe = io.rw_sqe(op("Read"), 3, BS, false);
    io.capsule(&sqe, &[]);
    assert_eq!(raw(&mut io, 24), c2h_data_header(0x0c, sqe.cid())); // LAST_PDU | SUCCESS
    assert!(raw(&mut io, BS) == data);
    write_in_capsule(&mut io, 4, &data, 0);
    // Past the end of the 16 MiB namespace: LBA Out of Range (SCT 0h, SC
    // 80h, NVMe Base 2.1 Figure 102) with DNR and More (an Error
    // Information log entry), in a CapsuleResp, no data.
    let sqe = io.rw_sqe(op("Read"), (16 << 20) / BS as u64, BS, false);
    io.capsule(&sqe, &[]);
    assert_eq!(raw(&mut io, 24), capsule_resp(0, sqe.cid(), 0x6080));
}

/// With SQ flow control on (the default), the read's C2HData has LAST_PDU
/// only and a CapsuleResp with the new SQ head follows.
#[test]
fn response_capsule_follows_with_sq_flow_control() {
    let t = target();
    let mut admin = Host::connect(&t);
    let cntlid = admin.admin(Digests::default());
    let mut io = Host::io(&t, cntlid, Digests::default(), 0);
    let data = pattern(BS, 11);
    // The Connect was SQ entry 0: its response said SQHD 1.
    write_in_capsule(&mut io, 5, &data, 2);
    let sqe = io.rw_sqe(op("Read"), 5, BS, false);
    io.capsule(&sqe, &[]);
    assert_eq!(raw(&mut io, 24), c2h_data_header(0x04, sqe.cid())); // LAST_PDU
    assert!(raw(&mut io, BS) == data);
    assert_eq!(raw(&mut io, 24), capsule_resp(3, sqe.cid(), 0));
}

#[test]
fn success_flag_when_sq_flow_control_is_disabled() {
    let t = target();
    let mut admin = Host::connect(&t);
    let cntlid = admin.admin(Digests::default());
    let mut io = Host::io(&t, cntlid, Digests::default(), CATTR_DISABLE_SQFLOW);
    let data = pattern(2 * BS, 5);
    assert_eq!(io.write_r2t(0, &data, 4096).status, 0);
    let (back, cqe) = io.read(0, data.len());
    assert_eq!(cqe, None, "C2HData carried SUCCESS, no CapsuleResp");
    assert!(back == data);
    // Also on a payload sent from its own buffer (>= 16 KiB).
    let data = pattern(16 * BS, 6);
    assert_eq!(io.write_r2t(0, &data, 16 * BS).status, 0);
    let (back, cqe) = io.read(0, data.len());
    assert_eq!(cqe, None, "C2HData carried SUCCESS, no CapsuleResp");
    assert!(back == data);
}
