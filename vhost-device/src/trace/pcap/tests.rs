//! Byte layouts against the standards' figures, checksums, sequence
//! numbers and segmenting.

mod iscsi;

use super::{
    nvme_tcp, pcapng,
    tcp::{self, Flow, Segment, ACK, FIN, MAX_SEGMENT, PSH, SYN},
    Direction::{self, ControllerToHost as C2H, HostToController as H2C},
    ScsiExchange, Writer,
};

// ---------------------------------------------------------------- pcapng

#[test]
fn section_header_block() {
    let mut b = Vec::new();
    pcapng::section_header(&mut b);
    #[rustfmt::skip]
    let want = [
        0x0A, 0x0D, 0x0D, 0x0A, // block type
        28, 0, 0, 0,            // block total length
        0x4D, 0x3C, 0x2B, 0x1A, // byte-order magic
        1, 0, 0, 0,             // major 1, minor 0
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // section length -1
        28, 0, 0, 0,
    ];
    assert_eq!(b, want);
}

#[test]
fn interface_description_block() {
    let mut b = Vec::new();
    pcapng::interface(&mut b, "zc");
    #[rustfmt::skip]
    let want = [
        1, 0, 0, 0, 40, 0, 0, 0,
        1, 0, 0, 0,             // LINKTYPE_ETHERNET, reserved
        0, 0, 0, 0,             // SnapLen 0: no limit
        2, 0, 2, 0, b'z', b'c', 0, 0, // if_name
        9, 0, 1, 0, 9, 0, 0, 0, // if_tsresol 10^-9
        0, 0, 0, 0,             // opt_endofopt
        40, 0, 0, 0,
    ];
    assert_eq!(b, want);
}

#[test]
fn enhanced_packet_block_pads_and_splits_the_timestamp() {
    let mut b = Vec::new();
    pcapng::packet(&mut b, 0x0000_0001_0000_0002, &[0xAA; 5]);
    #[rustfmt::skip]
    let want = [
        6, 0, 0, 0, 40, 0, 0, 0,
        0, 0, 0, 0,             // interface 0
        1, 0, 0, 0, 2, 0, 0, 0, // timestamp high, low
        5, 0, 0, 0, 5, 0, 0, 0, // captured, original length
        0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0, 0, 0,
        40, 0, 0, 0,
    ];
    assert_eq!(b, want);
}

// ------------------------------------------------------------ IPv4 / TCP

#[test]
fn internet_checksum_examples() {
    // RFC 1071 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
    assert_eq!(
        tcp::checksum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        !0xddf2
    );
    // An IPv4 header (192.168.0.1 -> 192.168.0.199, UDP) with its
    // checksum field zeroed: b861.
    let h = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(tcp::checksum(0, &h), 0xb861);
    // An odd length pads with a zero byte.
    assert_eq!(tcp::checksum(0, &[0x01]), !0x0100);
}

fn seg(dir: Direction, flags: u8) -> Segment {
    Segment {
        dir,
        host_port: 49153,
        target_port: 4420,
        seq: 0x0102_0304,
        ack: 0x0A0B_0C0D,
        flags,
        ip_id: 7,
    }
}

#[test]
fn frame_layout_and_checksums() {
    let mut f = Vec::new();
    tcp::frame(&mut f, &seg(C2H, ACK | PSH), b"abc");
    assert_eq!(f.len(), 14 + 20 + 20 + 3);
    assert_eq!(
        &f[..14],
        &[0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x55, 0x0a, 0, 2, 2, 0x08, 0x00]
    );
    #[rustfmt::skip]
    assert_eq!(&f[14..24], &[
        0x45, 0x00, 0x00, 43,   // version/IHL, DSCP, total length
        0x00, 0x07, 0x40, 0x00, // identification, DF
        64, 6,                  // TTL, TCP
    ]);
    assert_eq!(&f[26..34], &[10, 0, 2, 2, 10, 0, 2, 15]);
    // A header with a right checksum sums to zero.
    assert_eq!(tcp::checksum(0, &f[14..34]), 0);
    #[rustfmt::skip]
    assert_eq!(&f[34..50], &[
        0x11, 0x44, 0xC0, 0x01, // 4420 -> 49153
        1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D,
        0x50, 0x18, 0xFF, 0xFF, // 5 words, PSH|ACK, window
    ]);
    // TCP checksum over pseudo-header + segment also sums to zero.
    let mut pseudo = vec![10, 0, 2, 2, 10, 0, 2, 15, 0, 6, 0, 23];
    pseudo.extend_from_slice(&f[34..]);
    assert_eq!(tcp::checksum(0, &pseudo), 0);
}

#[test]
fn syn_carries_mss_and_window_scale() {
    let mut f = Vec::new();
    tcp::frame(&mut f, &seg(H2C, SYN), &[]);
    assert_eq!(f[34 + 12], 7 << 4);
    assert_eq!(&f[54..62], &[2, 4, 0xFF, 0xD7, 1, 3, 3, 7]);
    assert_eq!(tcp::checksum(0, &f[14..34]), 0);
}

/// The segments a flow emits: (direction, flags, seq, ack, length).
fn segments(
    flow: &mut Flow,
    dir: Direction,
    payload: &[u8],
) -> Vec<(Direction, u8, u32, u32, usize)> {
    let mut v = Vec::new();
    flow.send(dir, payload, |s, p| {
        v.push((s.dir, s.flags, s.seq, s.ack, p.len()));
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn handshake_then_sequence_numbers_advance_per_direction() {
    let mut flow = Flow::new(49153, 4420);
    let (h, t) = (flow.next_seq(H2C), flow.next_seq(C2H));
    assert_ne!(h, t);
    let s = segments(&mut flow, H2C, &[0; 100]);
    assert_eq!(
        s,
        [
            (H2C, SYN, h, 0, 0),
            (C2H, SYN | ACK, t, h + 1, 0),
            (H2C, ACK, h + 1, t + 1, 0),
            (H2C, ACK | PSH, h + 1, t + 1, 100),
        ]
    );
    assert_eq!(
        segments(&mut flow, C2H, &[0; 24]),
        [(C2H, ACK | PSH, t + 1, h + 101, 24)]
    );
    assert_eq!(
        segments(&mut flow, H2C, &[0; 8]),
        [(H2C, ACK | PSH, h + 101, t + 25, 8)]
    );
    assert_eq!((flow.next_seq(H2C), flow.next_seq(C2H)), (h + 109, t + 25));
}

#[test]
fn large_payloads_are_split_into_datagram_sized_segments() {
    let mut flow = Flow::new(49153, 4420);
    segments(&mut flow, H2C, &[0; 1]);
    let start = flow.next_seq(C2H);
    let s = segments(&mut flow, C2H, &vec![0; 2 * MAX_SEGMENT + 10]);
    let m = MAX_SEGMENT as u32;
    let ack = s[0].3;
    assert_eq!(
        s,
        [
            (C2H, ACK, start, ack, MAX_SEGMENT),
            (C2H, ACK, start + m, ack, MAX_SEGMENT),
            (C2H, ACK | PSH, start + 2 * m, ack, 10),
        ]
    );
    // The largest segment still fits the IPv4 Total Length.
    let mut f = Vec::new();
    tcp::frame(&mut f, &seg(C2H, ACK), &vec![0; MAX_SEGMENT]);
    assert_eq!(&f[16..18], &[0xFF, 0xFF]);
}

#[test]
fn close_then_reopen_with_a_new_initial_sequence_number() {
    let mut flow = Flow::new(49153, 4420);
    let mut closes = Vec::new();
    flow.close(|s| {
        closes.push(s.flags);
        Ok(())
    })
    .unwrap();
    assert!(closes.is_empty(), "nothing to close before the first PDU");
    segments(&mut flow, H2C, &[0; 10]);
    let (h, t) = (flow.next_seq(H2C), flow.next_seq(C2H));
    let mut v = Vec::new();
    flow.close(|s| {
        v.push((s.dir, s.flags, s.seq, s.ack));
        Ok(())
    })
    .unwrap();
    // RFC 9293 3.6: each FIN takes one sequence number.
    assert_eq!(
        v,
        [
            (H2C, FIN | ACK, h, t),
            (C2H, FIN | ACK, t, h + 1),
            (H2C, ACK, h + 1, t + 1),
        ]
    );
    let s = segments(&mut flow, C2H, &[0; 4]);
    assert_eq!(s[0], (H2C, SYN, h + 1, 0, 0));
    assert_eq!(s[1], (C2H, SYN | ACK, t + 1, h + 2, 0));
    assert_eq!(s[3], (C2H, ACK | PSH, t + 2, h + 2, 4));
}

#[test]
fn sequence_numbers_wrap() {
    let mut flow = Flow::new(0xFFFF, 0xFFFF);
    segments(&mut flow, H2C, &[]);
    let mut at = flow.next_seq(H2C);
    for _ in 0..70_000 {
        segments(&mut flow, H2C, &[0; MAX_SEGMENT]);
        at = at.wrapping_add(MAX_SEGMENT as u32);
    }
    assert_eq!(flow.next_seq(H2C), at);
}

// --------------------------------------------------------------- NVMe/TCP

#[test]
fn nvme_tcp_icreq_and_icresp() {
    // NVMe/TCP 1.0 Figure 26: CH (type 0, flags, HLEN 128, PDO 0, PLEN
    // 128), PFV, HPDA, DGST, MAXR2T, reserved to byte 127.
    let q = nvme_tcp::icreq(3);
    assert_eq!(q.len(), 128);
    assert_eq!(
        &q[..16],
        &[0, 0, 128, 0, 128, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]
    );
    assert!(q[16..].iter().all(|&b| b == 0));
    // Figure 27: MAXH2CDATA at bytes 12-15.
    let r = nvme_tcp::icresp(0x2_0000);
    assert_eq!(
        &r[..16],
        &[1, 0, 128, 0, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]
    );
}

#[test]
fn nvme_tcp_capsules() {
    let mut sqe = [0u8; 64];
    sqe[0] = 0x19;
    sqe[63] = 0xEE;
    // Figure 30: HLEN 72, PDO 72 with in-capsule data, PLEN 72 + data.
    let c = nvme_tcp::capsule_cmd(&sqe, &[1, 2, 3, 4]);
    assert_eq!(&c[..9], &[4, 0, 72, 72, 76, 0, 0, 0, 0x19]);
    assert_eq!((c[71], &c[72..]), (0xEE, &[1u8, 2, 3, 4][..]));
    // Without data PDO is 0.
    assert_eq!(
        &nvme_tcp::capsule_cmd(&sqe, &[])[..8],
        &[4, 0, 72, 0, 72, 0, 0, 0]
    );
    // Figure 31: HLEN 24, the CQE at bytes 8-23.
    let r = nvme_tcp::capsule_resp(&[0xAB; 16]);
    assert_eq!(&r[..8], &[5, 0, 24, 0, 24, 0, 0, 0]);
    assert_eq!(&r[8..], &[0xAB; 16]);
}

#[test]
fn nvme_tcp_data_pdus() {
    // Figure 33 (C2HData): CCCID, reserved, DATAO, DATAL, reserved.
    let d = nvme_tcp::c2h_data(0x1234, 0x1000, &[9; 4], true, true);
    #[rustfmt::skip]
    assert_eq!(&d[..], &[
        7, 0x0C, 24, 24, 28, 0, 0, 0,
        0x34, 0x12, 0, 0, 0, 0x10, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
        9, 9, 9, 9,
    ]);
    // SUCCESS only with LAST_PDU (3.6.2.9).
    assert_eq!(nvme_tcp::c2h_data(1, 0, &[0], false, true)[1], 0);
    // Figure 32 (H2CData) with TTAG; Figure 34 (R2T) without data.
    let h = nvme_tcp::h2c_data(2, 0x55, 8, &[7], true);
    assert_eq!(
        &h[..16],
        &[6, 0x04, 24, 24, 25, 0, 0, 0, 2, 0, 0x55, 0, 8, 0, 0, 0]
    );
    let r = nvme_tcp::r2t(2, 0x55, 0, 0x2000);
    assert_eq!(
        &r[..],
        &[9, 0, 24, 0, 24, 0, 0, 0, 2, 0, 0x55, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn nvme_tcp_connect() {
    let c = nvme_tcp::connect(3, 2, 31, "nqn.a", "nqn.b");
    assert_eq!(c.len(), 72 + 1024);
    assert_eq!(&c[..8], &[4, 0, 72, 72, 0x48, 4, 0, 0]);
    // NVMe-oF 1.1 Figure 19: OPC 7Fh, PSDT SGL, CID; FCTYPE 01h; SGL1
    // length 1024, Data Block/Offset; RECFMT 0, QID 2, SQSIZE 31.
    let sqe = &c[8..72];
    assert_eq!(&sqe[..5], &[0x7F, 0x40, 3, 0, 1]);
    assert_eq!(&sqe[32..40], &[0, 4, 0, 0, 0, 0, 0, 0x01]);
    assert_eq!(&sqe[40..46], &[0, 0, 2, 0, 31, 0]);
    // Figure 20: CNTLID FFFFh at 16, SUBNQN at 256, HOSTNQN at 512.
    let d = &c[72..];
    assert_eq!(&d[16..18], &[0xFF, 0xFF]);
    assert_eq!(&d[256..262], b"nqn.a\0");
    assert_eq!(&d[512..518], b"nqn.b\0");
    let r = nvme_tcp::connect_response(3, 2);
    assert_eq!(&r[8..], &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0]);
}

pub(super) fn exchange(lun: u64, tag: u32, cdb: &[u8]) -> ScsiExchange<'_> {
    ScsiExchange {
        lun,
        tag,
        cdb,
        ..Default::default()
    }
}

// ----------------------------------------------------------------- Writer

#[test]
fn writer_frames_each_connection_once() {
    let mut w = Writer::new(Vec::new()).unwrap();
    w.nvme_tcp_pdu(1, H2C, 10, &nvme_tcp::icreq(0)).unwrap();
    w.nvme_tcp_pdu(1, C2H, 20, &nvme_tcp::icresp(4096)).unwrap();
    w.nvme_tcp_pdu(2, H2C, 30, &nvme_tcp::icreq(0)).unwrap();
    w.nvme_tcp_pdu(2, H2C, 40, &[]).unwrap();
    // After the SHB and IDB: a handshake and 2 PDUs, a handshake and 1.
    let frames: Vec<_> = parse_capture(&w.into_inner().unwrap())
        .into_iter()
        .map(|(ts, dir, port, _, flags, data)| (ts, dir, port, flags, data.len()))
        .collect();
    #[rustfmt::skip]
    assert_eq!(frames, [
        (10, H2C, 49153, SYN, 0), (10, C2H, 49153, SYN | ACK, 0), (10, H2C, 49153, ACK, 0),
        (10, H2C, 49153, ACK | PSH, 128), (20, C2H, 49153, ACK | PSH, 128),
        (30, H2C, 49154, SYN, 0), (30, C2H, 49154, SYN | ACK, 0), (30, H2C, 49154, ACK, 0),
        (30, H2C, 49154, ACK | PSH, 128),
    ]);
}

/// One frame read back from a capture: (timestamp, direction, host port,
/// seq, flags, payload), after checking both checksums.
type Parsed = (u64, Direction, u16, u32, u8, Vec<u8>);

/// Parses every Enhanced Packet Block after the SHB and IDB.
fn parse_capture(b: &[u8]) -> Vec<Parsed> {
    let mut at = 28 + 44;
    let mut out = Vec::new();
    while at < b.len() {
        assert_eq!(&b[at..at + 4], &[6, 0, 0, 0], "an EPB");
        let word = |i: usize| u32::from_le_bytes(b[at + i..at + i + 4].try_into().unwrap());
        let (len, cap) = (word(4) as usize, word(20) as usize);
        let ts = (u64::from(word(12)) << 32) | u64::from(word(16));
        let f = &b[at + 28..at + 28 + cap];
        assert_eq!(tcp::checksum(0, &f[14..34]), 0, "IPv4 header checksum");
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&((cap - 34) as u16).to_be_bytes());
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(tcp::checksum(0, &pseudo), 0, "TCP checksum");
        // The source address 10.0.2.15 is the host.
        let dir = if f[29] == 15 { H2C } else { C2H };
        let port = |i: usize| u16::from_be_bytes([f[i], f[i + 1]]);
        let host_port = if dir == H2C { port(34) } else { port(36) };
        let seq = u32::from_be_bytes(f[38..42].try_into().unwrap());
        let data = 34 + usize::from(f[46] >> 4) * 4;
        out.push((ts, dir, host_port, seq, f[47], f[data..].to_vec()));
        at += len;
    }
    out
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::testing::cases(64))]

        /// Whatever PDUs go in, each connection's two byte streams come
        /// back whole and in order from the frames' sequence numbers, with
        /// right checksums, after one handshake per connection.
        #[test]
        fn streams_reassemble(
            pdus in proptest::collection::vec(
                (0u32..3, any::<bool>(), 1usize..150_000, any::<u8>()),
                1..12,
            )
        ) {
            let mut w = Writer::new(Vec::new()).unwrap();
            let mut want: std::collections::HashMap<(u16, bool), Vec<u8>> = Default::default();
            for (i, &(conn, h2c, len, fill)) in pdus.iter().enumerate() {
                let dir = if h2c { H2C } else { C2H };
                let pdu = vec![fill; len];
                w.nvme_tcp_pdu(conn, dir, i as u64, &pdu).unwrap();
                want.entry((49152 + conn as u16, h2c)).or_default().extend_from_slice(&pdu);
            }
            let frames = parse_capture(&w.into_inner().unwrap());
            let mut got: std::collections::HashMap<(u16, bool), (u32, Vec<u8>)> = Default::default();
            for (_, dir, port, seq, flags, payload) in frames {
                let key = (port, dir == H2C);
                if flags & SYN != 0 {
                    prop_assert!(!got.contains_key(&key), "one handshake per connection");
                    got.insert(key, (seq.wrapping_add(1), Vec::new()));
                    continue;
                }
                let (next, bytes) = got.get_mut(&key).expect("SYN first");
                prop_assert_eq!(seq, *next);
                *next = next.wrapping_add(payload.len() as u32);
                prop_assert!(payload.len() <= MAX_SEGMENT);
                bytes.extend_from_slice(&payload);
            }
            for (key, bytes) in want {
                prop_assert_eq!(&got[&key].1, &bytes);
            }
        }
    }
}

#[test]
fn closed_scsi_session_logs_in_again() {
    let mut w = Writer::new(Vec::new()).unwrap();
    let tur = exchange(0, 1, &[0; 6]);
    w.scsi_exchange(&tur).unwrap();
    w.scsi_exchange(&tur).unwrap();
    w.close_scsi_session(0, 5).unwrap();
    w.scsi_exchange(&tur).unwrap();
    let frames = parse_capture(&w.into_inner().unwrap());
    let flags: Vec<u8> = frames.iter().map(|f| f.4).collect();
    let first: Vec<u8> = frames
        .iter()
        .filter(|f| !f.5.is_empty())
        .map(|f| f.5[0])
        .collect();
    // Login, 2 x (Command, Response), then after the FINs a new Login.
    assert_eq!(
        first,
        [0x43, 0x23, 0x01, 0x21, 0x01, 0x21, 0x43, 0x23, 0x01, 0x21]
    );
    assert_eq!(flags.iter().filter(|&&f| f & FIN != 0).count(), 2);
    assert_eq!(flags.iter().filter(|&&f| f & SYN != 0).count(), 4);
}
