//! iSCSI PDU layouts against RFC 7143's figures, and a session's
//! sequence numbers.

use super::exchange;
use crate::trace::pcap::{
    iscsi::{self, DataPos, Session, TargetSn},
    Direction::{self, ControllerToHost as C2H, HostToController as H2C},
    ScsiExchange,
};

const READ16: [u8; 16] = [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 2, 0, 0];

#[test]
fn scsi_command_pdu() {
    let x = ScsiExchange {
        data_in: &[0; 8192],
        ..exchange(1, 0x11, &READ16)
    };
    let p = iscsi::scsi_command(&x, 5, 9, &[], true);
    // RFC 7143 11.3: opcode 01h; F, R, ATTR Simple; TotalAHSLength 0,
    // DataSegmentLength 0; LUN; ITT; EDTL; CmdSN; ExpStatSN; CDB.
    #[rustfmt::skip]
    let want = [
        0x01, 0xC1, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0x11, 0, 0, 0x20, 0,
        0, 0, 0, 5, 0, 0, 0, 9,
        0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 2, 0, 0,
    ];
    assert_eq!(p, want);
}

#[test]
fn scsi_command_with_32_byte_cdb_and_immediate_data() {
    let mut cdb = [0u8; 32];
    cdb[0] = 0x7F;
    cdb[7] = 0x18;
    cdb[16..].copy_from_slice(&[0x10; 16]);
    let x = ScsiExchange {
        data_out: &[0xCC; 6],
        ..exchange(300, 1, &cdb)
    };
    let p = iscsi::scsi_command(&x, 0, 0, &[0xCC; 6], true);
    // W, TotalAHSLength 5 words (AHSLength, AHSType, reserved, 16 bytes),
    // DataSegmentLength 6; flat space LUN 300 (SAM-5 4.7.7).
    assert_eq!(&p[..10], &[0x01, 0xA1, 0, 0, 5, 0, 0, 6, 0x41, 0x2C]);
    assert_eq!(&p[20..24], &[0, 0, 0, 6]);
    // 11.2.2.3: AHSLength 17 (reserved byte + 16), AHSType 1, reserved,
    // CDB bytes 16-31.
    assert_eq!(&p[48..52], &[0, 17, 1, 0]);
    assert_eq!(&p[52..68], &[0x10; 16]);
    // Data segment padded to 4 bytes (11.2.3).
    assert_eq!(&p[68..], &[0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0, 0]);
}

#[test]
fn bidirectional_command_states_its_read_length() {
    let x = ScsiExchange {
        cdb: &[0; 10],
        data_out: &[1; 4],
        data_in: &[2; 512],
        ..Default::default()
    };
    let p = iscsi::scsi_command(&x, 0, 0, &[], false);
    assert_eq!((p[1], p[4]), (0x61, 2)); // R, W, not F; 8-byte AHS
                                         // 11.2.2.4: AHSLength 5, AHSType 2, reserved, read length.
    assert_eq!(&p[48..56], &[0, 5, 2, 0, 0, 0, 2, 0]);
    assert_eq!(&p[20..24], &[0, 0, 0, 4]);
}

#[test]
fn data_and_r2t_pdus() {
    let sn = TargetSn {
        stat_sn: 3,
        exp_cmd_sn: 7,
    };
    let pos = DataPos {
        ttt: 0xFFFF_FFFF,
        data_sn: 2,
        offset: 0x2_0000,
        final_: true,
    };
    let d = iscsi::data_in(0, 0x11, sn, pos, &[5; 3]);
    // 11.7: opcode 25h, F; TTT FFFFFFFFh; StatSN reserved (S = 0);
    // ExpCmdSN; MaxCmdSN; DataSN; Buffer Offset; Residual 0.
    #[rustfmt::skip]
    assert_eq!(&d[..], &[
        0x25, 0x80, 0, 0, 0, 0, 0, 3,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0x11, 0xFF, 0xFF, 0xFF, 0xFF,
        0, 0, 0, 0, 0, 0, 0, 7,
        0, 0, 0, 135, 0, 0, 0, 2,
        0, 2, 0, 0, 0, 0, 0, 0,
        5, 5, 5, 0,
    ]);
    let o = iscsi::data_out(
        1,
        0x12,
        4,
        DataPos {
            ttt: 9,
            data_sn: 0,
            offset: 0,
            final_: false,
        },
        &[1; 4],
    );
    assert_eq!(&o[..8], &[0x05, 0, 0, 0, 0, 0, 0, 4]);
    assert_eq!(
        &o[16..32],
        &[0, 0, 0, 0x12, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 4]
    );
    // 11.8: R2T with StatSN, R2TSN, offset, desired length.
    let r = iscsi::r2t(
        0,
        0x12,
        sn,
        DataPos {
            ttt: 1,
            data_sn: 0,
            offset: 64,
            final_: true,
        },
        512,
    );
    assert_eq!(&r[..2], &[0x31, 0x80]);
    assert_eq!(
        &r[20..48],
        &[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 135, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 2, 0]
    );
}

#[test]
fn scsi_response_carries_sense_length_and_sense() {
    let sense = [
        0x70, 0, 0x05, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x21, 0x04, 0, 0, 0, 0,
    ];
    let x = ScsiExchange {
        tag: 0x12,
        status: 0x02,
        sense: &sense,
        ..Default::default()
    };
    let p = iscsi::scsi_response(
        &x,
        TargetSn {
            stat_sn: 3,
            exp_cmd_sn: 3,
        },
        1,
    );
    // 11.4: opcode 21h, F, Response 00h, Status 02h, DataSegmentLength
    // 20; ITT; SNACK tag; StatSN; ExpCmdSN; MaxCmdSN; ExpDataSN.
    #[rustfmt::skip]
    assert_eq!(&p[..48], &[
        0x21, 0x80, 0x00, 0x02, 0, 0, 0, 20,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0x12, 0, 0, 0, 0,
        0, 0, 0, 3, 0, 0, 0, 3,
        0, 0, 0, 131, 0, 0, 0, 1,
        0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // 11.4.7: SenseLength, sense data, pad.
    assert_eq!(&p[48..50], &[0, 18]);
    assert_eq!(&p[50..68], &sense);
    assert_eq!(p.len(), 68);
}

#[test]
fn login_request_and_response() {
    let q = iscsi::login_request(2, 0, 0);
    // 11.12: 43h (immediate Login), T, CSG 1, NSG 3; ISID type 10b.
    assert_eq!(&q[..2], &[0x43, 0x87]);
    assert_eq!(&q[8..16], &[0x80, 0, 0, 0, 0, 2, 0, 0]);
    let text = String::from_utf8_lossy(&q[48..]);
    for key in [
        "SessionType=Normal",
        "HeaderDigest=None",
        "DataDigest=None",
        "InitialR2T=No",
    ] {
        assert!(text.contains(&format!("{key}\0")), "{key} in {text:?}");
    }
    let r = iscsi::login_response(
        2,
        0,
        TargetSn {
            stat_sn: 0,
            exp_cmd_sn: 0,
        },
    );
    // 11.13: 23h, TSIH non-zero, Status-Class/Detail 0 (success).
    assert_eq!(&r[..2], &[0x23, 0x87]);
    assert_eq!(&r[14..16], &[0, 3]);
    assert_eq!(&r[36..38], &[0, 0]);
}

/// Every PDU of `x` on a session: (direction, opcode, byte 1, the
/// sequence-number dwords at 24, 28, 36 and 40, data segment length).
fn pdus(s: &mut Session, x: &ScsiExchange<'_>) -> Vec<(Direction, u8, u8, [u32; 4], usize)> {
    let mut v = Vec::new();
    s.exchange(0, x, &mut |d, _, p| {
        let at = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
        v.push((
            d,
            p[0] & 0x3F,
            p[1],
            [at(24), at(28), at(36), at(40)],
            at(4) as usize & 0xFF_FFFF,
        ));
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn session_numbers_commands_statuses_and_data() {
    let mut s = Session::default();
    let read = vec![0u8; iscsi::MAX_RECV_DATA_SEGMENT + 100];
    let x = ScsiExchange {
        tag: 1,
        cdb: &READ16,
        data_in: &read,
        ..Default::default()
    };
    let m = iscsi::MAX_RECV_DATA_SEGMENT as u32;
    assert_eq!(
        pdus(&mut s, &x),
        [
            (H2C, 0x03, 0x87, [0, 0, 0, 0], 266),
            (C2H, 0x23, 0x87, [0, 0, 0, 0], 170),
            // CmdSN 0, ExpStatSN 1 (the login took StatSN 0); CDB.
            (H2C, 0x01, 0xC1, [0, 1, 0, 0x0040_0000], 0),
            // Data-In: ExpCmdSN 1, DataSN 0 and 1, offsets.
            (C2H, 0x25, 0x00, [0, 1, 0, 0], iscsi::MAX_RECV_DATA_SEGMENT),
            (C2H, 0x25, 0x80, [0, 1, 1, m], 100),
            // Response: StatSN 1, ExpDataSN 2.
            (C2H, 0x21, 0x80, [1, 1, 2, 0], 0),
        ]
    );
    let x = ScsiExchange {
        tag: 2,
        cdb: &[0; 6],
        ..Default::default()
    };
    assert_eq!(
        pdus(&mut s, &x),
        [
            (H2C, 0x01, 0x81, [1, 2, 0, 0], 0),
            (C2H, 0x21, 0x80, [2, 2, 0, 0], 0)
        ]
    );
}

#[test]
fn writes_go_immediate_unsolicited_then_solicited() {
    let mut s = Session::default();
    let m = iscsi::MAX_RECV_DATA_SEGMENT;
    let data = vec![0u8; iscsi::BURST + m + 1];
    let x = ScsiExchange {
        tag: 3,
        cdb: &[0x8A; 16],
        data_out: &data,
        ..Default::default()
    };
    let v = pdus(&mut s, &x);
    let v = &v[2..];
    // Immediate data, not final: unsolicited Data-Out follows.
    assert_eq!(v[0], (H2C, 0x01, 0x21, [0, 1, 0x8A8A_8A8A, 0x8A8A_8A8A], m));
    // Unsolicited Data-Out: TTT FFFFFFFFh, DataSN from 0, offsets from
    // the end of the immediate data, F on the FirstBurstLength'th byte.
    let unsolicited = iscsi::BURST.div_ceil(m) - 1;
    assert_eq!(v[1], (H2C, 0x05, 0x00, [0, 1, 0, m as u32], m));
    let last = v[unsolicited];
    assert_eq!(
        (last.1, last.2, last.3[2]),
        (0x05, 0x80, unsolicited as u32 - 1)
    );
    assert_eq!(last.3[3] as usize + last.4, iscsi::BURST);
    // Then an R2T for the rest (R2TSN 0, offset BURST, length m + 1) and
    // the Data-Out answering it (DataSN restarts at 0), then the status.
    let rest = &v[unsolicited + 1..];
    assert_eq!(
        rest[0],
        (C2H, 0x31, 0x80, [1, 1, 0, iscsi::BURST as u32], 0)
    );
    assert_eq!(
        rest[1],
        (H2C, 0x05, 0x00, [0, 1, 0, iscsi::BURST as u32], m)
    );
    assert_eq!(
        rest[2],
        (H2C, 0x05, 0x80, [0, 1, 1, (iscsi::BURST + m) as u32], 1)
    );
    assert_eq!(rest[3], (C2H, 0x21, 0x80, [1, 1, 1, 0], 0));
    assert_eq!(rest.len(), 4);
}

#[test]
fn lun_encoding() {
    assert_eq!(iscsi::lun_field(0), [0; 8]);
    assert_eq!(iscsi::lun_field(255), [0, 255, 0, 0, 0, 0, 0, 0]);
    assert_eq!(iscsi::lun_field(256), [0x41, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        iscsi::lun_field(0x0001_0203_0405_0607),
        [0, 1, 2, 3, 4, 5, 6, 7]
    );
}
