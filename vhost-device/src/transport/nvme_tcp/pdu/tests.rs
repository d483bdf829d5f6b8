//! PDU codec tests against literal bytes laid out as the NVMe/TCP 1.1
//! figures give them, plus property tests on the decoder.

use proptest::prelude::*;

use super::*;

const NO_DIGESTS: Digests = Digests {
    header: false,
    data: false,
};
const BOTH: Digests = Digests {
    header: true,
    data: true,
};

fn ctx(digests: Option<Digests>) -> RxContext {
    RxContext {
        digests,
        max_icd: 8192,
        max_h2c_data: 65536,
    }
}

fn ch(bytes: &[u8]) -> CommonHeader {
    CommonHeader::parse(bytes[..CH_LEN].try_into().unwrap())
}

/// Check and decode a whole PDU as a controller would.
fn decode(bytes: &[u8], digests: Option<Digests>) -> Result<HostPdu<'_>, Fatal> {
    let layout = check_common_header(&ch(bytes), &ctx(digests))?;
    assert_eq!(layout.plen, bytes.len(), "test PDU length");
    decode_host_pdu(bytes, &layout)
}

#[test]
fn crc32c_check_value() {
    // The CRC-32C check value (RFC 3720 B.4 / iSCSI).
    assert_eq!(digest(b"123456789"), 0xe306_9283);
    assert_eq!(digest(&[0u8; 32]), 0x8a91_36aa);
}

#[test]
fn icreq_from_linux() {
    let mut b = vec![
        0x00, // PDU-Type: ICReq
        0x00, // FLAGS
        0x80, // HLEN 128
        0x00, // PDO
        0x80, 0x00, 0x00, 0x00, // PLEN 128
        0x00, 0x00, // PFV 0
        0x00, // HPDA 0
        0x03, // DGST: HDGSTE | DDGSTE
        0x00, 0x00, 0x00, 0x00, // MAXR2T 0 (one R2T per command)
    ];
    b.resize(128, 0);
    let HostPdu::IcReq(req) = decode(&b, None).unwrap() else {
        panic!("not an ICReq");
    };
    assert_eq!(
        req,
        IcReq {
            pfv: 0,
            hpda: 0,
            dgst: DGST_HDGSTE | DGST_DDGSTE,
            maxr2t: 0
        }
    );
    let mut again = Vec::new();
    assert_eq!(req.encode(&mut again), 128);
    assert_eq!(again, b);
}

#[test]
fn icreq_bad_fields() {
    let mut b = Vec::new();
    IcReq {
        pfv: 0,
        hpda: 0,
        dgst: 0,
        maxr2t: 0,
    }
    .encode(&mut b);
    let mut pfv1 = b.clone();
    pfv1[8] = 1;
    assert_eq!(
        decode(&pfv1, None),
        Err(Fatal {
            fes: Fes::UnsupportedParameter,
            fei: 8
        })
    );
    let mut hpda = b.clone();
    hpda[10] = 32;
    assert_eq!(
        decode(&hpda, None),
        Err(Fatal {
            fes: Fes::UnsupportedParameter,
            fei: 10
        })
    );
    let mut plen = b.clone();
    plen[4] = 0x7c;
    assert_eq!(
        check_common_header(&ch(&plen), &ctx(None)),
        Err(Fatal::field(4))
    );
    // A second ICReq once the connection is up.
    assert_eq!(
        check_common_header(&ch(&b), &ctx(Some(NO_DIGESTS))),
        Err(Fatal::of(Fes::PduSequenceError))
    );
}

#[test]
fn icresp_bytes() {
    let mut b = Vec::new();
    let n = IcResp {
        pfv: 0,
        cpda: 0,
        dgst: DGST_HDGSTE,
        maxh2cdata: 0x40000,
    }
    .encode(&mut b);
    assert_eq!(n, 128);
    assert_eq!(b.len(), 128);
    assert_eq!(
        &b[..16],
        &[
            0x01, // PDU-Type: ICResp
            0x00, // FLAGS
            0x80, // HLEN
            0x00, // PDO
            0x80, 0x00, 0x00, 0x00, // PLEN 128
            0x00, 0x00, // PFV 0
            0x00, // CPDA 0
            0x01, // DGST: HDGSTE
            0x00, 0x00, 0x04, 0x00, // MAXH2CDATA 256 KiB
        ]
    );
    assert!(b[16..].iter().all(|&x| x == 0));
}

#[test]
fn capsule_resp_bytes() {
    let cqe = Cqe {
        dw0: 0x0000_0001,
        dw1: 0,
        sqhd: 0x0002,
        sqid: 0x0001,
        cid: 0x1234,
        status: 0x4002, // DNR, Invalid Field in Command
    };
    let mut b = Vec::new();
    assert_eq!(encode_capsule_resp(&mut b, &cqe, NO_DIGESTS), 24);
    assert_eq!(
        b,
        [
            0x05, // PDU-Type: CapsuleResp
            0x00, // FLAGS
            0x18, // HLEN 24
            0x00, // PDO
            0x18, 0x00, 0x00, 0x00, // PLEN 24
            0x01, 0x00, 0x00, 0x00, // CQE DW0
            0x00, 0x00, 0x00, 0x00, // DW1
            0x02, 0x00, // SQHD
            0x01, 0x00, // SQID
            0x34, 0x12, // CID
            0x04, 0x80, // status 4002h << 1, phase 0
        ]
    );
    assert_eq!(
        decode_controller_pdu(&b),
        Ok(ControllerPdu::CapsuleResp(cqe))
    );
    // With a header digest: HDGSTF, PLEN 28, CRC32C of the 24 bytes.
    let mut h = Vec::new();
    assert_eq!(encode_capsule_resp(&mut h, &cqe, BOTH), 28);
    assert_eq!(h[1], FLAG_HDGST);
    assert_eq!(h[4], 28);
    let mut expect = b.clone();
    expect[1] = FLAG_HDGST;
    expect[4] = 28;
    let d = digest(&expect);
    expect.extend_from_slice(&d.to_le_bytes());
    assert_eq!(h, expect);
}

#[test]
fn r2t_bytes() {
    let mut b = Vec::new();
    assert_eq!(
        encode_r2t(&mut b, 0x0007, 0x0003, 0, 0x0010_0000, NO_DIGESTS),
        24
    );
    assert_eq!(
        b,
        [
            0x09, // PDU-Type: R2T
            0x00, // FLAGS
            0x18, // HLEN
            0x00, // PDO
            0x18, 0x00, 0x00, 0x00, // PLEN
            0x07, 0x00, // CCCID
            0x03, 0x00, // TTAG
            0x00, 0x00, 0x00, 0x00, // R2TO
            0x00, 0x00, 0x10, 0x00, // R2TL 1 MiB
            0x00, 0x00, 0x00, 0x00, // reserved
        ]
    );
}

#[test]
fn c2h_data_bytes_with_digests_and_alignment() {
    let mut b = Vec::new();
    // HPDA 3: data at a multiple of 16 bytes; header 24 + digest 4 -> PDO 32.
    let (n, _) = encode_c2h_data(
        &mut b,
        0x0042,
        0x1000,
        &[1, 2, 3, 4],
        true,
        false,
        BOTH,
        3,
        true,
    );
    assert_eq!(
        &b[..24],
        &[
            0x07, // PDU-Type: C2HData
            0x07, // FLAGS: HDGSTF | DDGSTF | LAST_PDU
            0x18, // HLEN
            0x20, // PDO 32
            0x28, 0x00, 0x00, 0x00, // PLEN 32 + 4 data + 4 digest
            0x42, 0x00, // CCCID
            0x00, 0x00, // reserved (TTAG)
            0x00, 0x10, 0x00, 0x00, // DATAO
            0x04, 0x00, 0x00, 0x00, // DATAL
            0x00, 0x00, 0x00, 0x00, // reserved
        ]
    );
    assert_eq!(&b[24..28], &digest(&b[..24]).to_le_bytes());
    assert_eq!(&b[28..32], &[0, 0, 0, 0]); // pad
    assert_eq!(&b[32..36], &[1, 2, 3, 4]);
    assert_eq!(&b[36..40], &digest(&[1, 2, 3, 4]).to_le_bytes());
    assert_eq!(n, 36);
    let ControllerPdu::C2hData {
        cccid,
        datao,
        last,
        success,
        data,
        data_digest_ok,
    } = decode_controller_pdu(&b).unwrap()
    else {
        panic!("not C2HData");
    };
    assert_eq!(
        (cccid, datao, last, success, data_digest_ok),
        (0x42, 0x1000, true, false, true)
    );
    assert_eq!(data, [1, 2, 3, 4]);
    // SUCCESS always with LAST_PDU.
    let mut s = Vec::new();
    encode_c2h_data(&mut s, 1, 0, &[9; 8], true, true, NO_DIGESTS, 0, true);
    assert_eq!(s[1], FLAG_LAST_PDU | FLAG_SUCCESS);
    assert_eq!(s[3], 24);
}

#[test]
fn c2h_term_req_bytes() {
    let bad = [0x04, 0x00, 0x47, 0x00, 0x48, 0x00, 0x00, 0x00];
    let mut b = Vec::new();
    let n = encode_term_req(
        &mut b,
        PduType::C2hTermReq,
        Fes::InvalidHeaderField as u16,
        2,
        &bad,
    );
    assert_eq!(n, 24);
    assert_eq!(
        &b[..24],
        &[
            0x03, // PDU-Type: C2HTermReq
            0x00, // FLAGS
            0x18, // HLEN
            0x00, // PDO
            0x20, 0x00, 0x00, 0x00, // PLEN 24 + 8
            0x01, 0x00, // FES: Invalid PDU Header Field
            0x02, 0x00, 0x00, 0x00, // FEI: byte 2 (HLEN)
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // reserved
        ]
    );
    assert_eq!(&b[24..], &bad);
    // Never more than 128 bytes of the offending header (PLEN <= 152).
    let mut big = Vec::new();
    encode_term_req(&mut big, PduType::C2hTermReq, 2, 0, &[0xee; 300]);
    assert_eq!(big.len(), 152);
}

fn capsule_bytes(data: &[u8], digests: Digests) -> Vec<u8> {
    let mut sqe = [0u8; 64];
    sqe[0] = 0x01; // Write
    sqe[2] = 0x05; // CID 5
    let mut b = Vec::new();
    encode_capsule_cmd(&mut b, &Sqe(sqe), data, digests);
    b
}

#[test]
fn capsule_cmd_with_in_capsule_data() {
    let b = capsule_bytes(&[0x5a; 16], NO_DIGESTS);
    assert_eq!(
        &b[..8],
        &[
            0x04, // PDU-Type: CapsuleCmd
            0x00, // FLAGS
            0x48, // HLEN 72
            0x48, // PDO 72
            0x58, 0x00, 0x00, 0x00, // PLEN 72 + 16
        ]
    );
    let HostPdu::CapsuleCmd(c) = decode(&b, Some(NO_DIGESTS)).unwrap() else {
        panic!("not a capsule");
    };
    assert_eq!(c.sqe.cid(), 5);
    assert_eq!(c.data, &[0x5a; 16]);
    assert!(c.data_digest_ok);

    // Digests on: PDO 76, data digest at the end.
    let b = capsule_bytes(&[0x5a; 16], BOTH);
    assert_eq!((b[1], b[3], b[4]), (FLAG_HDGST | FLAG_DDGST, 76, 96));
    let HostPdu::CapsuleCmd(c) = decode(&b, Some(BOTH)).unwrap() else {
        panic!("not a capsule");
    };
    assert!(c.data_digest_ok);
    // No data: PDO 0, no DDGSTF even with data digests on (as Linux sends).
    let b = capsule_bytes(&[], BOTH);
    assert_eq!((b[1], b[3], b[4]), (FLAG_HDGST, 0, 76));
    assert!(decode(&b, Some(BOTH)).is_ok());
}

#[test]
fn digest_errors() {
    let mut b = capsule_bytes(&[0x5a; 16], BOTH);
    b[72] ^= 1; // header digest
    assert_eq!(
        decode(&b, Some(BOTH)),
        Err(Fatal::of(Fes::HeaderDigestError))
    );
    let mut b = capsule_bytes(&[0x5a; 16], BOTH);
    b[80] ^= 1; // a data byte
    let HostPdu::CapsuleCmd(c) = decode(&b, Some(BOTH)).unwrap() else {
        panic!("not a capsule");
    };
    assert!(!c.data_digest_ok, "a data digest error is not fatal");
}

#[test]
fn header_field_errors_name_the_field() {
    let good = capsule_bytes(&[0x5a; 16], NO_DIGESTS);
    let est = ctx(Some(NO_DIGESTS));
    let with = |i: usize, v: u8| {
        let mut b = good.clone();
        b[i] = v;
        check_common_header(&ch(&b), &est)
    };
    assert!(with(0, 0x04).is_ok());
    assert_eq!(
        with(0, 0x05),
        Err(Fatal::field(0)),
        "CapsuleResp from a host"
    );
    assert_eq!(with(0, 0x08), Err(Fatal::field(0)), "no such type");
    assert_eq!(
        with(1, FLAG_LAST_PDU),
        Err(Fatal::field(1)),
        "LAST_PDU on a capsule"
    );
    assert_eq!(
        with(1, FLAG_HDGST),
        Err(Fatal::field(1)),
        "digest not negotiated"
    );
    assert_eq!(with(2, 71), Err(Fatal::field(2)));
    assert_eq!(with(3, 74), Err(Fatal::field(3)), "PDO not dword aligned");
    assert_eq!(with(3, 68), Err(Fatal::field(3)), "PDO inside the header");
    assert_eq!(with(4, 0x40), Err(Fatal::field(3)), "PLEN below PDO");
    // Too much in-capsule data for the context.
    let big = capsule_bytes(&[0; 8196], NO_DIGESTS);
    assert_eq!(
        check_common_header(&ch(&big), &est),
        Err(Fatal::of(Fes::DataTransferLimitExceeded))
    );
    // A capsule before ICReq.
    assert_eq!(
        check_common_header(&ch(&good), &ctx(None)),
        Err(Fatal::of(Fes::PduSequenceError))
    );
}

#[test]
fn h2c_data_roundtrip_and_datal_check() {
    let mut b = Vec::new();
    encode_h2c_data(&mut b, 7, 3, 4096, &[0xa5; 100], true, BOTH);
    let HostPdu::H2cData(d) = decode(&b, Some(BOTH)).unwrap() else {
        panic!("not H2CData");
    };
    assert_eq!(
        (d.cccid, d.ttag, d.datao, d.datal, d.last),
        (7, 3, 4096, 100, true)
    );
    assert!(d.data_digest_ok);
    // DATAL disagreeing with PLEN: header digest recomputed so only DATAL is wrong.
    let mut bad = Vec::new();
    encode_h2c_data(&mut bad, 7, 3, 4096, &[0xa5; 100], true, NO_DIGESTS);
    bad[16] = 99;
    assert_eq!(decode(&bad, Some(NO_DIGESTS)), Err(Fatal::field(16)));
}

#[test]
fn h2c_term_req_is_decoded() {
    let mut b = Vec::new();
    encode_term_req(&mut b, PduType::H2cTermReq, 3, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let HostPdu::H2cTermReq(t) = decode(&b, Some(BOTH)).unwrap() else {
        panic!("not a term req");
    };
    assert_eq!((t.fes, t.fei, t.data.len()), (3, 0, 8));
}

proptest! {
    /// Whatever bytes arrive, the receive path (header check, then decode
    /// of each complete PDU) returns a value, never panics.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), hd: bool, dd: bool, established: bool) {
        let ctx = ctx(established.then_some(Digests { header: hd, data: dd }));
        let mut at = 0;
        while let Some(h) = bytes.get(at..at + CH_LEN) {
            let ch = ch(h);
            match check_common_header(&ch, &ctx) {
                Ok(layout) => {
                    prop_assert!(layout.plen >= CH_LEN);
                    let Some(pdu) = bytes.get(at..at + layout.plen) else { break };
                    let _ = decode_host_pdu(pdu, &layout);
                    at += layout.plen;
                }
                Err(_) => break,
            }
        }
    }

    /// Random bytes behind a plausible common header exercise the
    /// type-specific decoders.
    #[test]
    fn plausible_headers_never_panic(
        t in prop::sample::select(vec![0u8, 2, 4, 6]),
        flags in 0u8..16,
        pdo in any::<u8>(),
        body in proptest::collection::vec(any::<u8>(), 0..400),
        hd: bool,
        dd: bool,
    ) {
        let hlen: u8 = match t { 0 => 128, 4 => 72, _ => 24 };
        let plen = (CH_LEN + body.len()) as u32;
        let mut b = vec![t, flags, hlen, pdo];
        b.extend_from_slice(&plen.to_le_bytes());
        b.extend_from_slice(&body);
        let digests = (t != 0).then_some(Digests { header: hd, data: dd });
        if let Ok(layout) = check_common_header(&ch(&b), &ctx(digests)) {
            prop_assert_eq!(layout.plen, b.len());
            prop_assert!(layout.data_start + layout.data_len <= layout.plen);
            let _ = decode_host_pdu(&b, &layout);
        }
    }

    /// H2CData survives encode -> check -> decode with any digests.
    #[test]
    fn h2c_data_roundtrip(data in proptest::collection::vec(any::<u8>(), 1..2000), off in any::<u32>(), last: bool, hd: bool, dd: bool) {
        let digests = Digests { header: hd, data: dd };
        let mut b = Vec::new();
        encode_h2c_data(&mut b, 9, 4, off, &data, last, digests);
        let HostPdu::H2cData(d) = decode(&b, Some(digests)).unwrap() else {
            panic!("not H2CData");
        };
        prop_assert_eq!(d.data, &data[..]);
        prop_assert_eq!((d.datao, d.last, d.data_digest_ok), (off, last, true));
    }
}

#[test]
fn c2h_data_without_its_payload_is_the_same_pdu_with_a_gap() {
    let data: Vec<u8> = (0..100u8).collect();
    for (digests, hpda) in [(NO_DIGESTS, 0), (BOTH, 0), (BOTH, 3), (NO_DIGESTS, 31)] {
        let mut whole = Vec::new();
        let (n, at) = encode_c2h_data(&mut whole, 7, 4096, &data, true, false, digests, hpda, true);
        let mut parts = Vec::new();
        let (m, gap) = encode_c2h_data(
            &mut parts, 7, 4096, &data, true, false, digests, hpda, false,
        );
        assert_eq!((n, at), (m, gap));
        assert_eq!(parts.len(), n, "header, padding and data digest only");
        parts.splice(gap..gap, data.iter().copied());
        assert_eq!(parts, whole, "{digests:?} hpda {hpda}");
        assert_eq!(&whole[at..at + data.len()], &data[..]);
    }
}
