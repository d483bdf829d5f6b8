//! Third-party copy tests against literal bytes: parameter lists written
//! out field by field, expected data and sense as literals from SPC-5 /
//! SBC-4, never computed from the implementation's constants.
//!
//! LUN 0: host-managed, 4096-byte blocks, 8 zones of 16 blocks, 2
//! conventional (LBA 0-31), sequential write required zones from LBA 32.
//! LUN 1: disk, 512-byte blocks, 2048 blocks.
//! LUN 2: disk, 4096-byte blocks, 256 blocks.
//! NAA designator of LUN n: 35 AC 00 00 00 00 00 0n.

use std::{sync::Arc, time::Duration};

use proptest::prelude::*;

use crate::{
    scsi::{Response, Status, Target},
    storage::{Device, DeviceConfig, Lba, ZonedConfig},
};

struct Fixture {
    _dir: tempfile::TempDir,
    target: Target,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str, size: u64, bs: u32, zoned: bool| {
        Arc::new(
            Device::open(&DeviceConfig {
                path: dir.path().join(name),
                size,
                block_size: bs,
                zoned: zoned.then_some(ZonedConfig {
                    zone_size: 65536,
                    zone_capacity: 65536,
                    conventional_zones: 2,
                    max_open: 0,
                    max_active: 0,
                    ..Default::default()
                }),
            })
            .unwrap(),
        )
    };
    let hm = open("hm.img", 8 * 65536, 4096, true);
    let d512 = open("d512.img", 1 << 20, 512, false);
    let d4k = open("d4k.img", 1 << 20, 4096, false);
    Fixture {
        target: Target::new(vec![hm, d512, d4k]),
        _dir: dir,
    }
}

impl Fixture {
    fn run(&self, lun: u16, cdb: &[u8], data_out: &[u8]) -> (Response, Vec<u8>) {
        crate::scsi::tests::execute(&self.target, lun, cdb, data_out, 1 << 20)
    }

    fn good(&self, lun: u16, cdb: &[u8], data_out: &[u8]) -> Vec<u8> {
        let (resp, d) = self.run(lun, cdb, data_out);
        assert_eq!(resp.status, Status::Good, "sense {:02x?}", resp.sense);
        d
    }

    fn sense(&self, lun: u16, cdb: &[u8], data_out: &[u8]) -> Vec<u8> {
        let (resp, _) = self.run(lun, cdb, data_out);
        assert_eq!(resp.status, Status::CheckCondition);
        resp.sense
    }

    fn dev(&self, lun: u16) -> &Device {
        &self.target.unit(lun).unwrap().device
    }

    /// WRITE(16) through the front end.
    fn write(&self, lun: u16, lba: u64, data: &[u8]) {
        let bs = self.dev(lun).geometry().block_size as usize;
        let n = (data.len() / bs) as u32;
        let mut cdb = vec![0x8a, 0];
        cdb.extend_from_slice(&lba.to_be_bytes());
        cdb.extend_from_slice(&n.to_be_bytes());
        cdb.extend_from_slice(&[0, 0]);
        self.good(lun, &cdb, data);
    }

    fn read(&self, lun: u16, lba: u64, bytes: usize) -> Vec<u8> {
        let mut buf = vec![0u8; bytes];
        self.dev(lun)
            .read_uncounted(Lba::new(lba), &mut buf)
            .unwrap();
        buf
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ ((i >> 9) as u8))
        .collect()
}

/// CSCD descriptor E4h (identification) for LUN `lun` of target 0.
fn e4(lun: u8, pdt: u8, block_len: u32) -> Vec<u8> {
    let [_, a, b, c] = block_len.to_be_bytes();
    let mut d = vec![
        0xe4, // DESCRIPTOR TYPE CODE: identification
        pdt,  // LU ID TYPE 00b, NUL 0, PERIPHERAL DEVICE TYPE
        0x00, 0x00, // RELATIVE INITIATOR PORT IDENTIFIER
        0x01, // CODE SET 1h binary
        0x03, // ASSOCIATION 00b (LU), DESIGNATOR TYPE 3h NAA
        0x00, // reserved
        0x08, // DESIGNATOR LENGTH
        0x35, 0xac, 0x00, 0x00, 0x00, 0x00, 0x00, lun, // NAA 3h designator
    ];
    d.extend_from_slice(&[0; 12]); // the rest of the 20-byte DESIGNATOR
    d.extend_from_slice(&[0x00, a, b, c]); // PAD 0, DISK BLOCK LENGTH
    assert_eq!(d.len(), 32);
    d
}

/// Segment descriptor 02h (block -> block).
fn seg02(src: u16, dst: u16, dc: bool, blocks: u16, src_lba: u64, dst_lba: u64) -> Vec<u8> {
    let mut d = vec![
        0x02,              // DESCRIPTOR TYPE CODE
        u8::from(dc) << 1, // DC, CAT 0
        0x00,
        0x18, // DESCRIPTOR LENGTH
    ];
    d.extend_from_slice(&src.to_be_bytes()); // SOURCE CSCD DESCRIPTOR ID
    d.extend_from_slice(&dst.to_be_bytes()); // DESTINATION CSCD DESCRIPTOR ID
    d.extend_from_slice(&[0, 0]); // reserved
    d.extend_from_slice(&blocks.to_be_bytes()); // BLOCK DEVICE NUMBER OF BLOCKS
    d.extend_from_slice(&src_lba.to_be_bytes());
    d.extend_from_slice(&dst_lba.to_be_bytes());
    d
}

/// Segment descriptor 0Ah (block with offset -> block with offset).
fn seg0a(src: u16, dst: u16, bytes: u32, src_lba: u64, dst_lba: u64, offs: [u16; 2]) -> Vec<u8> {
    let mut d = vec![0x0a, 0x00, 0x00, 0x1c];
    d.extend_from_slice(&src.to_be_bytes());
    d.extend_from_slice(&dst.to_be_bytes());
    d.extend_from_slice(&bytes.to_be_bytes()); // NUMBER OF BYTES
    d.extend_from_slice(&src_lba.to_be_bytes());
    d.extend_from_slice(&dst_lba.to_be_bytes());
    d.extend_from_slice(&offs[0].to_be_bytes()); // SOURCE BYTE OFFSET
    d.extend_from_slice(&offs[1].to_be_bytes()); // DESTINATION BYTE OFFSET
    d
}

/// LID1 parameter list: header, CSCD descriptors, segment descriptors.
fn lid1(list_id: u8, flags: u8, cscds: &[Vec<u8>], segs: &[Vec<u8>]) -> Vec<u8> {
    let c: Vec<u8> = cscds.concat();
    let s: Vec<u8> = segs.concat();
    let mut p = vec![list_id, flags];
    p.extend_from_slice(&(c.len() as u16).to_be_bytes()); // CSCD DESCRIPTOR LIST LENGTH
    p.extend_from_slice(&[0, 0, 0, 0]); // reserved
    p.extend_from_slice(&(s.len() as u32).to_be_bytes()); // SEGMENT DESCRIPTOR LIST LENGTH
    p.extend_from_slice(&[0, 0, 0, 0]); // INLINE DATA LENGTH
    p.extend_from_slice(&c);
    p.extend_from_slice(&s);
    p
}

/// LID4 parameter list.
fn lid4(list_id: u32, flags: u8, immed: bool, cscds: &[Vec<u8>], segs: &[Vec<u8>]) -> Vec<u8> {
    let c: Vec<u8> = cscds.concat();
    let s: Vec<u8> = segs.concat();
    let mut p = vec![0x01, flags, 0x00, 0x00]; // LIST FORMAT, flags, HEADER CSCD DESCRIPTOR LIST LENGTH
    p.extend_from_slice(&[0; 11]); // reserved
    p.push(u8::from(immed)); // G_SENSE 0, IMMED
    p.extend_from_slice(&[0, 0, 0, 0]); // HEADER CSCD DESCRIPTOR TYPE CODE, reserved
    p.extend_from_slice(&list_id.to_be_bytes()); // LIST IDENTIFIER
    p.extend_from_slice(&[0; 18]); // reserved
    p.extend_from_slice(&(c.len() as u16).to_be_bytes());
    p.extend_from_slice(&(s.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]); // INLINE DATA LENGTH
    assert_eq!(p.len(), 48);
    p.extend_from_slice(&c);
    p.extend_from_slice(&s);
    p
}

/// EXTENDED COPY CDB (83h, SA 00h LID1 or 01h LID4).
fn xcopy(sa: u8, len: usize) -> Vec<u8> {
    let mut c = vec![0x83, sa, 0, 0, 0, 0, 0, 0, 0, 0];
    c.extend_from_slice(&(len as u32).to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// RECEIVE COPY RESULTS / THIRD-PARTY COPY IN CDB.
fn rcr(sa: u8, list_id: u32, alloc: u32) -> Vec<u8> {
    let mut c = vec![0x84, sa, 0, 0, 0, 0, 0, 0, 0, 0];
    match sa {
        0x00 | 0x01 | 0x04 => c[2] = list_id as u8,
        0x05 | 0x07 => c[2..6].copy_from_slice(&list_id.to_be_bytes()),
        _ => {}
    }
    c.extend_from_slice(&alloc.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// Fixed format sense data.
fn fixed(key: u8, asc: u8, ascq: u8, sks: [u8; 3]) -> Vec<u8> {
    vec![
        0x70, 0, key, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, sks[0], sks[1], sks[2],
    ]
}

/// COPY ABORTED: VALID, INFORMATION = residual, COMMAND-SPECIFIC
/// INFORMATION bytes 2-3 = segment number, segment pointer.
fn copy_aborted(asc: u8, ascq: u8, residual: u32, segment: u16, sks: [u8; 3]) -> Vec<u8> {
    let [r0, r1, r2, r3] = residual.to_be_bytes();
    let [s0, s1] = segment.to_be_bytes();
    vec![
        0xf0, 0, 0x0a, r0, r1, r2, r3, 0x0a, 0, 0, s0, s1, asc, ascq, 0, sks[0], sks[1], sks[2],
    ]
}

const NONE: [u8; 3] = [0, 0, 0];

// ---------------------------------------------------------------- LID1

/// SPC-5 (r20 on) segment descriptor byte 1 bit 2, FCO (fast copy only):
/// sg_xcopy sets it with `fco=1`. Every copy of this copy manager is a
/// fast copy, so the segment completes as without it.
#[test]
fn lid1_fast_copy_only() {
    let f = fixture();
    let data = pattern(4 * 512, 3);
    f.write(1, 0, &data);
    let mut seg = seg02(0, 0, false, 4, 0, 40);
    seg[1] |= 0x04; // FCO
    let p = lid1(0x21, 0x00, &[e4(1, 0x00, 512)], &[seg]);
    assert!(f.good(1, &xcopy(0x00, p.len()), &p).is_empty());
    assert_eq!(f.read(1, 40, 4 * 512), data);
}

#[test]
fn lid1_within_a_lu() {
    let f = fixture();
    let data = pattern(8 * 512, 1);
    f.write(1, 0, &data);
    let written = f.dev(1).stats().written_bytes();
    let p = lid1(
        0x11,
        0x00, // LIST ID USAGE 00b
        &[e4(1, 0x00, 512)],
        &[seg02(0, 0, false, 8, 0, 100)],
    );
    assert!(f.good(1, &xcopy(0x00, p.len()), &p).is_empty());
    assert_eq!(f.read(1, 100, 8 * 512), data);
    // The copy moved through the engine, not as host writes.
    assert_eq!(f.dev(1).stats().written_bytes(), written);
    assert_eq!(f.dev(1).stats().copied_bytes(), 4096);
    // RECEIVE COPY STATUS (LID1).
    assert_eq!(
        f.good(1, &rcr(0x00, 0x11, 12), &[]),
        [
            0x00, 0x00, 0x00, 0x08, // AVAILABLE DATA
            0x01, // HDD 0, COPY MANAGER STATUS: completed without errors
            0x00, 0x01, // SEGMENTS PROCESSED
            0x00, // TRANSFER COUNT UNITS: bytes
            0x00, 0x00, 0x10, 0x00, // TRANSFER COUNT 4096
        ]
    );
    // RECEIVE COPY DATA: nothing held.
    assert_eq!(f.good(1, &rcr(0x01, 0x11, 64), &[]), [0, 0, 0, 0]);
    // FAILED SEGMENT DETAILS of a copy without failure: AVAILABLE DATA 0.
    assert_eq!(f.good(1, &rcr(0x04, 0x11, 64), &[]), [0, 0, 0, 0]);
    // Another list identifier: INVALID FIELD IN CDB at byte 2.
    assert_eq!(
        f.sense(1, &rcr(0x00, 0x12, 12), &[]),
        fixed(0x05, 0x24, 0x00, [0xcf, 0x00, 0x02])
    );
    // Results belong to the LU that received the copy.
    assert_eq!(
        f.sense(2, &rcr(0x00, 0x11, 12), &[]),
        fixed(0x05, 0x24, 0x00, [0xcf, 0x00, 0x02])
    );
}

#[test]
fn lid1_across_lus_and_block_sizes() {
    let f = fixture();
    let data = pattern(2 * 4096, 2);
    f.write(2, 10, &data);
    let p = lid1(
        1,
        0x00,
        &[e4(2, 0x00, 4096), e4(1, 0x00, 512)],
        &[
            // 2 source (4096-byte) blocks from LUN 2 to LUN 1 LBA 16.
            seg02(0, 1, false, 2, 10, 16),
            // DC: 16 destination (512-byte) blocks, LUN 2 -> LUN 1 LBA 64.
            seg02(0, 1, true, 16, 10, 64),
            // And back from LUN 1 to LUN 2 LBA 100, FFFFh: this LU (LUN 2).
            seg02(1, 0xffff, false, 16, 16, 100),
        ],
    );
    f.good(2, &xcopy(0x00, p.len()), &p);
    assert_eq!(f.read(1, 16, data.len()), data);
    assert_eq!(f.read(1, 64, data.len()), data);
    assert_eq!(f.read(2, 100, data.len()), data);
    let st = f.good(2, &rcr(0x00, 1, 12), &[]);
    assert_eq!(st[4..12], [0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x60, 0x00]);
}

#[test]
fn lid1_conventional_to_sequential_zone() {
    let f = fixture();
    let data = pattern(4 * 4096, 3);
    f.write(0, 0, &data);
    let cscd = e4(0, 0x14, 4096);
    // At the write pointer of the zone at LBA 32, then at 33: fine.
    let p = lid1(
        2,
        0x00,
        std::slice::from_ref(&cscd),
        &[seg02(0, 0, false, 1, 0, 32), seg02(0, 0, false, 1, 1, 33)],
    );
    f.good(0, &xcopy(0x00, p.len()), &p);
    assert_eq!(f.read(0, 32, 2 * 4096), data[..2 * 4096]);
    // Segment 0 at the write pointer (34), segment 1 at 40: not at the
    // write pointer (35 by then).
    let p = lid1(
        3,
        0x00,
        std::slice::from_ref(&cscd),
        &[seg02(0, 0, false, 1, 2, 34), seg02(0, 0, false, 2, 2, 40)],
    );
    assert_eq!(
        f.sense(0, &xcopy(0x00, p.len()), &p),
        copy_aborted(
            0x21,
            0x04,               // UNALIGNED WRITE COMMAND
            2,                  // residual: segment 1's 2 blocks
            1,                  // segment 1
            [0xaf, 0x00, 0x14], // SKSV, SD, BPV bit 7, byte 20 (DESTINATION LBA)
        )
    );
    // Segment 0 happened, segment 1 did not.
    let z = f.dev(0).report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
    assert_eq!(z.wp, Lba::new(35));
    assert_eq!(f.read(0, 34, 4096), data[2 * 4096..3 * 4096]);
    assert_eq!(f.read(0, 40, 4096), vec![0u8; 4096]);
    // RECEIVE COPY STATUS: completed with errors, 1 segment, 4096 bytes.
    assert_eq!(
        f.good(0, &rcr(0x00, 3, 12), &[]),
        [0, 0, 0, 8, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00]
    );
    // FAILED SEGMENT DETAILS: the sense data.
    let d = f.good(0, &rcr(0x04, 3, 255), &[]);
    assert_eq!(d[..4], [0x00, 0x00, 0x00, 0x4a]); // 56 + 18
    assert!(d[4..56].iter().all(|&b| b == 0));
    assert_eq!(d[56..60], [0x02, 0x00, 0x00, 0x12]); // CHECK CONDITION, 18 bytes
    assert_eq!(
        d[60..],
        copy_aborted(0x21, 0x04, 2, 1, [0xaf, 0x00, 0x14])[..]
    );
    // Across the end of the zone (wp 35, zone ends at 48): WRITE BOUNDARY
    // VIOLATION.
    let p = lid1(4, 0x00, &[cscd], &[seg02(0, 0, false, 14, 0, 35)]);
    assert_eq!(
        f.sense(0, &xcopy(0x00, p.len()), &p),
        copy_aborted(0x21, 0x05, 14, 0, [0xaf, 0x00, 0x14])
    );
}

#[test]
fn many_segments() {
    let f = fixture();
    let data = pattern(200 * 512, 4);
    f.write(1, 0, &data);
    // 200 one-block segments copying LBA i to 1000 + 199 - i.
    let segs: Vec<Vec<u8>> = (0..200u64)
        .map(|i| seg02(0, 0, false, 1, i, 1000 + 199 - i))
        .collect();
    let p = lid1(5, 0x00, &[e4(1, 0x00, 512)], &segs);
    f.good(1, &xcopy(0x00, p.len()), &p);
    let back = f.read(1, 1000, 200 * 512);
    for i in 0..200 {
        assert_eq!(
            back[(199 - i) * 512..(200 - i) * 512],
            data[i * 512..(i + 1) * 512]
        );
    }
    let st = f.good(1, &rcr(0x00, 5, 12), &[]);
    assert_eq!(st[5..7], [0x00, 0xc8]);
}

#[test]
fn segment_0a_is_not_supported() {
    let f = fixture();
    // 0Ah (byte offsets) is not in the implemented descriptor list, so it
    // is refused like any unsupported type: 26/09 at the type byte (16).
    let p = lid1(
        6,
        0x00,
        &[e4(2, 0x00, 4096), e4(1, 0x00, 512)],
        &[seg0a(0, 1, 4096, 0, 8, [0, 0])],
    );
    assert_eq!(
        f.sense(2, &xcopy(0x00, p.len()), &p),
        fixed(0x05, 0x26, 0x09, [0x8f, 0x00, 0x50])
    );
    assert_eq!(f.read(1, 8, 4096), vec![0u8; 4096]);
    // 02h: one 512-byte block into a 4096-byte LU.
    let p = lid1(
        8,
        0x00,
        &[e4(1, 0x00, 512), e4(2, 0x00, 4096)],
        &[seg02(0, 1, false, 1, 0, 0)],
    );
    assert_eq!(
        f.sense(1, &xcopy(0x00, p.len()), &p),
        copy_aborted(0x26, 0x0a, 1, 0, [0xaf, 0x00, 0x0a])
    );
}

#[test]
fn list_id_usage_11b_keeps_nothing() {
    let f = fixture();
    let p = lid1(0, 0x18, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    f.good(1, &xcopy(0x00, p.len()), &p);
    assert_eq!(
        f.sense(1, &rcr(0x00, 0, 12), &[]),
        fixed(0x05, 0x24, 0x00, [0xcf, 0x00, 0x02])
    );
    // PARAMETER LIST LENGTH 0: nothing happens, GOOD.
    f.good(1, &xcopy(0x00, 0), &[]);
    // 11b needs LIST IDENTIFIER 0: 26/00 at byte 0 (SKSV, C/D 0, BPV, bit 7).
    let p = lid1(5, 0x18, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(
        f.sense(1, &xcopy(0x00, p.len()), &p),
        fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x00])
    );
    // 01b is reserved: 26/00 at byte 1, bit 4.
    let p = lid1(5, 0x08, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(
        f.sense(1, &xcopy(0x00, p.len()), &p),
        fixed(0x05, 0x26, 0x00, [0x8c, 0x00, 0x01])
    );
}

// ---------------------------------------------------------------- parameter list errors

fn list_error(p: &[u8]) -> Vec<u8> {
    let f = fixture();
    f.sense(1, &xcopy(0x00, p.len()), p)
}

#[test]
fn parameter_list_length_errors() {
    // Shorter than the header.
    assert_eq!(list_error(&[0; 10]), fixed(0x05, 0x1a, 0x00, NONE));
    // The header names more descriptors than the list holds.
    let mut p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    p.truncate(p.len() - 4);
    let f = fixture();
    let mut cdb = xcopy(0x00, p.len());
    assert_eq!(f.sense(1, &cdb, &p), fixed(0x05, 0x1a, 0x00, NONE));
    // Data-out shorter than the PARAMETER LIST LENGTH.
    cdb[13] = cdb[13].wrapping_add(8);
    assert_eq!(f.sense(1, &cdb, &p), fixed(0x05, 0x1a, 0x00, NONE));
    // Descriptor lists longer than MAXIMUM DESCRIPTOR LIST LENGTH (8704).
    let mut p = vec![
        1, 0, 0x00, 0x20, 0, 0, 0, 0, 0x00, 0x00, 0x22, 0x00, 0, 0, 0, 0,
    ];
    p.resize(16 + 32 + 0x2200, 0);
    assert_eq!(list_error(&p), fixed(0x05, 0x1a, 0x00, NONE));
}

#[test]
fn invalid_header_fields() {
    // Reserved bit 6 of byte 1: INVALID FIELD IN PARAMETER LIST, C/D 0.
    let p = lid1(1, 0x40, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x01]));
    // CSCD DESCRIPTOR LIST LENGTH not a multiple of 32.
    let mut p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    p[3] = 0x1f;
    p[11] += 1;
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x02]));
    // INLINE DATA LENGTH 4 > MAXIMUM INLINE DATA LENGTH 0.
    let mut p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    p[15] = 4;
    p.extend_from_slice(&[0; 4]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x0b, [0x8f, 0x00, 0x0c]));
}

#[test]
fn too_many_descriptors() {
    // 17 CSCD descriptors (maximum 16).
    let cscds = vec![e4(1, 0, 512); 17];
    let p = lid1(1, 0, &cscds, &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x06, NONE));
    // 257 segment descriptors (maximum 256).
    let segs = vec![seg02(0, 0, false, 1, 0, 1); 257];
    let p = lid1(1, 0, &[e4(1, 0, 512)], &segs);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x08, NONE));
}

#[test]
fn unsupported_descriptor_type_codes() {
    // CSCD descriptor E0h (Fibre Channel N_Port_Name) at byte 16.
    let mut cscd = e4(1, 0, 512);
    cscd[0] = 0xe0;
    let p = lid1(1, 0, &[cscd], &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x07, [0x8f, 0x00, 0x10]));
    // Segment descriptors 00h (block -> stream), 04h (inline -> stream),
    // 0Dh (block -> block and hold data), at byte 48.
    for code in [0x00u8, 0x04, 0x0d] {
        let mut seg = seg02(0, 0, false, 1, 0, 1);
        seg[0] = code;
        let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg]);
        assert_eq!(
            list_error(&p),
            fixed(0x05, 0x26, 0x09, [0x8f, 0x00, 0x30]),
            "{code:02x}"
        );
    }
}

#[test]
fn invalid_segment_fields() {
    // DESCRIPTOR LENGTH 001Ch for a 02h descriptor: byte 50.
    let mut seg = seg02(0, 0, false, 1, 0, 1);
    seg[3] = 0x1c;
    seg.extend_from_slice(&[0; 4]);
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x32]));
    // Reserved bit 3 of byte 1: byte 49, bit 3 (SKSV|C/D 0|BPV|bit 3).
    let mut seg = seg02(0, 0, false, 1, 0, 1);
    seg[1] = 0x08;
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x00, [0x8b, 0x00, 0x31]));
    // Reserved bits 6 and 3: the pointer names bit 6.
    let mut seg = seg02(0, 0, false, 1, 0, 1);
    seg[1] = 0x48;
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x00, [0x8e, 0x00, 0x31]));
    // DESIGNATOR LENGTH 21: byte 23.
    let mut cscd = e4(1, 0, 512);
    cscd[7] = 21;
    let p = lid1(1, 0, &[cscd], &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(list_error(&p), fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x17]));
}

#[test]
fn copy_target_errors() {
    let seg = seg02(0, 0, false, 3, 0, 1);
    // A designator of target 1 (another target): not reachable (CVE-2020-28374).
    let mut cscd = e4(1, 0, 512);
    cscd[13] = 0x01;
    let p = lid1(1, 0, &[cscd], std::slice::from_ref(&seg));
    // SD 0: byte 20 (the CSCD's CODE SET) of the parameter list, bit 3.
    assert_eq!(
        list_error(&p),
        copy_aborted(0x0d, 0x02, 3, 0, [0x8b, 0x00, 0x14])
    );
    // An LUN the target does not have.
    let p = lid1(1, 0, &[e4(9, 0, 512)], std::slice::from_ref(&seg));
    assert_eq!(
        list_error(&p),
        copy_aborted(0x0d, 0x02, 3, 0, [0x8b, 0x00, 0x14])
    );
    // CSCD descriptor ID 1 with one CSCD descriptor: SD 1, byte 6.
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 1, false, 3, 0, 1)]);
    assert_eq!(
        list_error(&p),
        copy_aborted(0x0d, 0x02, 3, 0, [0xaf, 0x00, 0x06])
    );
    // Reserved CSCD descriptor ID 0800h as source: byte 4.
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0x0800, 0, false, 3, 0, 1)]);
    assert_eq!(
        list_error(&p),
        copy_aborted(0x0d, 0x02, 3, 0, [0xaf, 0x00, 0x04])
    );
    // PERIPHERAL DEVICE TYPE 01h (tape): INCORRECT COPY TARGET DEVICE TYPE.
    let p = lid1(1, 0, &[e4(1, 0x01, 512)], std::slice::from_ref(&seg));
    assert_eq!(
        list_error(&p),
        copy_aborted(0x0d, 0x03, 3, 0, [0x8c, 0x00, 0x11])
    );
    // DISK BLOCK LENGTH 4096 for a 512-byte LU: byte 45.
    let p = lid1(1, 0, &[e4(1, 0x00, 4096)], std::slice::from_ref(&seg));
    assert_eq!(
        list_error(&p),
        copy_aborted(0x0d, 0x03, 3, 0, [0x8f, 0x00, 0x2d])
    );
    // Destination past the end: LOGICAL BLOCK ADDRESS OUT OF RANGE, SD 1
    // byte 20.
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 3, 0, 2046)]);
    assert_eq!(
        list_error(&p),
        copy_aborted(0x21, 0x00, 3, 0, [0xaf, 0x00, 0x14])
    );
    // Source past the end: byte 12.
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 3, 2047, 0)]);
    assert_eq!(
        list_error(&p),
        copy_aborted(0x21, 0x00, 3, 0, [0xaf, 0x00, 0x0c])
    );
    // The host-managed LU named with PERIPHERAL DEVICE TYPE 14h works.
    let f = fixture();
    let p = lid1(1, 0, &[e4(0, 0x14, 4096)], &[seg02(0, 0, false, 1, 0, 1)]);
    f.good(0, &xcopy(0x00, p.len()), &p);
}

// ---------------------------------------------------------------- faults

#[test]
fn injected_faults_abort_with_residual_and_segment_pointer() {
    use crate::storage::{
        fault::{BlockRange, CopyFailError, FaultKind},
        BlockCount,
    };
    let f = fixture();
    let data = pattern(24 * 512, 7);
    f.write(1, 0, &data);
    let segs = [
        seg02(0, 0, false, 8, 0, 100),
        seg02(0, 0, false, 8, 8, 108),
        seg02(0, 0, false, 8, 16, 116),
    ];
    let p = lid1(1, 0, &[e4(1, 0, 512)], &segs);
    // copy_fail in segment 2 after 3 blocks: COPY ABORTED, WRITE ERROR
    // (0C/00), residual 5 of 8, segment 2, SD 1 pointer at byte 20 (the
    // DESTINATION BLOCK DEVICE LBA).
    f.dev(1).faults().add(
        FaultKind::copy_fail_in_segment(2, 3, CopyFailError::Write),
        Some(1),
    );
    assert_eq!(
        f.sense(1, &xcopy(0x00, p.len()), &p),
        [
            0xf0, 0x00, 0x0a, // VALID, current, COPY ABORTED
            0x00, 0x00, 0x00, 0x05, // INFORMATION: residual 5 blocks
            0x0a, // additional sense length
            0x00, 0x00, 0x00, 0x02, // COMMAND-SPECIFIC INFORMATION: segment 2
            0x0c, 0x00, 0x00, // WRITE ERROR, FRU
            0xaf, 0x00, 0x14, // SKSV|SD|BPV|bit 7, segment byte 20
        ]
    );
    // Segments 0 and 1 and 3 blocks of segment 2 arrived, nothing more.
    assert_eq!(f.read(1, 100, 19 * 512), data[..19 * 512]);
    assert_eq!(f.read(1, 119, 5 * 512), vec![0u8; 5 * 512]);
    // RECEIVE COPY STATUS: failed, 2 segments processed, bytes copied.
    assert_eq!(
        f.good(1, &rcr(0x00, 1, 12), &[]),
        [
            0x00, 0x00, 0x00, 0x08, // AVAILABLE DATA
            0x02, // COPY MANAGER STATUS: completed with errors
            0x00, 0x02, // SEGMENTS PROCESSED
            0x00, // TRANSFER COUNT UNITS: bytes
            0x00, 0x00, 0x26, 0x00, // TRANSFER COUNT: 19 blocks of 512
        ]
    );
    // A media error at LBA 10 (segment 1, block 2) of the source: COPY
    // ABORTED, UNRECOVERED READ ERROR (11/00), residual 6, segment 1,
    // pointer at byte 12 (the SOURCE BLOCK DEVICE LBA).
    f.dev(1).faults().add(
        FaultKind::MediaError(BlockRange::new(Lba::new(10), BlockCount::new(1))),
        Some(1),
    );
    let p = lid1(
        2,
        0,
        &[e4(1, 0, 512)],
        &[seg02(0, 0, false, 8, 0, 200), seg02(0, 0, false, 8, 8, 208)],
    );
    assert_eq!(
        f.sense(1, &xcopy(0x00, p.len()), &p),
        [
            0xf0, 0x00, 0x0a, // VALID, current, COPY ABORTED
            0x00, 0x00, 0x00, 0x06, // INFORMATION: residual 6 blocks
            0x0a, // additional sense length
            0x00, 0x00, 0x00, 0x01, // COMMAND-SPECIFIC INFORMATION: segment 1
            0x11, 0x00, 0x00, // UNRECOVERED READ ERROR, FRU
            0xaf, 0x00, 0x0c, // SKSV|SD|BPV|bit 7, segment byte 12
        ]
    );
    assert_eq!(f.read(1, 200, 10 * 512), data[..10 * 512]);
    assert_eq!(f.read(1, 210, 6 * 512), vec![0u8; 6 * 512]);
    // A host READ(16) of the bad block (rule used up: count 1) now works;
    // with a new rule it fails: MEDIUM ERROR 11/00, VALID, INFORMATION =
    // the first bad LBA.
    f.dev(1).faults().add(
        FaultKind::MediaError(BlockRange::new(Lba::new(12), BlockCount::new(2))),
        None,
    );
    let mut read16 = vec![0x88, 0];
    read16.extend_from_slice(&10u64.to_be_bytes());
    read16.extend_from_slice(&8u32.to_be_bytes());
    read16.extend_from_slice(&[0, 0]);
    assert_eq!(
        f.sense(1, &read16, &[]),
        [
            0xf0, 0x00, 0x03, // VALID, current, MEDIUM ERROR
            0x00, 0x00, 0x00, 0x0c, // INFORMATION: LBA 12
            0x0a, 0x00, 0x00, 0x00, 0x00, // additional length, CSI
            0x11, 0x00, 0x00, 0x00, 0x00, 0x00, // UNRECOVERED READ ERROR
        ]
    );
    assert_eq!(f.dev(1).faults().counts().media_error, 2);
    assert_eq!(f.dev(1).faults().counts().copy_fail, 1);
    f.dev(1).faults().clear();
    f.good(1, &read16, &[]);
}

#[test]
fn operation_in_progress() {
    let f = fixture();
    let key = super::Key {
        lun: 1,
        family: super::Family::Lid1,
        list_id: 9,
    };
    f.target.copy.begin(key).unwrap();
    let p = lid1(9, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    assert_eq!(
        f.sense(1, &xcopy(0x00, p.len()), &p),
        fixed(0x05, 0x00, 0x16, NONE)
    );
}

// ---------------------------------------------------------------- LID4

#[test]
fn lid4_copy_and_status() {
    let f = fixture();
    let data = pattern(8 * 512, 6);
    f.write(1, 0, &data);
    let p = lid4(
        0x0102_0304,
        0x00,
        false,
        &[e4(1, 0, 512), e4(2, 0, 4096)],
        &[seg02(0, 1, false, 8, 0, 7)],
    );
    f.good(1, &xcopy(0x01, p.len()), &p);
    assert_eq!(f.read(2, 7, 4096), data);
    #[rustfmt::skip]
    assert_eq!(f.good(1, &rcr(0x05, 0x0102_0304, 255), &[]), [
        0x00, 0x00, 0x00, 0x1c, // AVAILABLE DATA 28
        0x01, // RESPONSE TO SERVICE ACTION: EXTENDED COPY (LID4)
        0x01, // COPY OPERATION STATUS: completed without errors
        0x00, 0x00, // OPERATION COUNTER
        0x00, 0x00, 0x00, 0x00, // ESTIMATED STATUS UPDATE DELAY
        0x00, // EXTENDED COPY COMPLETION STATUS: GOOD
        0x00, 0x00, // LENGTH OF THE SENSE DATA FIELD, SENSE DATA LENGTH
        0x00, // TRANSFER COUNT UNITS: bytes
        0, 0, 0, 0, 0, 0, 0x10, 0x00, // TRANSFER COUNT 4096
        0x00, 0x01, // SEGMENTS PROCESSED
        0, 0, 0, 0, 0, 0,
    ]);
    // LID1 and LID4 list identifiers are separate.
    assert_eq!(
        f.sense(1, &rcr(0x00, 4, 12), &[]),
        fixed(0x05, 0x24, 0x00, [0xcf, 0x00, 0x02])
    );
}

#[test]
fn lid4_immed_reports_failure_through_status() {
    let f = fixture();
    let p = lid4(
        7,
        0x00,
        true,
        &[e4(1, 0, 512)],
        &[seg02(0, 0, false, 1, 0, 1), seg02(0, 0, false, 4, 0, 2046)],
    );
    // IMMED: GOOD, the failure is in RECEIVE COPY STATUS (LID4).
    f.good(1, &xcopy(0x01, p.len()), &p);
    let d = f.good(1, &rcr(0x05, 7, 255), &[]);
    assert_eq!(d[..4], [0x00, 0x00, 0x00, 0x2e]); // 28 + 18
    assert_eq!(d[4..6], [0x01, 0x02]); // completed with errors
    assert_eq!(d[12..16], [0x02, 0x12, 0x12, 0x00]);
    assert_eq!(d[16..26], [0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x00, 0x01]);
    // Segment pointer into the 2nd segment descriptor (SD 1, byte 20).
    assert_eq!(
        d[32..],
        copy_aborted(0x21, 0x00, 4, 1, [0xaf, 0x00, 0x14])[..]
    );
    // A wrong LIST FORMAT.
    let mut p = lid4(
        8,
        0,
        false,
        &[e4(1, 0, 512)],
        &[seg02(0, 0, false, 1, 0, 1)],
    );
    p[0] = 0x02;
    assert_eq!(
        f.sense(1, &xcopy(0x01, p.len()), &p),
        fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x00])
    );
    // Header CSCD descriptors are not supported.
    let mut p = lid4(
        8,
        0,
        false,
        &[e4(1, 0, 512)],
        &[seg02(0, 0, false, 1, 0, 1)],
    );
    p[3] = 0x20;
    assert_eq!(
        f.sense(1, &xcopy(0x01, p.len()), &p),
        fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x02])
    );
}

// ---------------------------------------------------------------- operating parameters, VPD, opcodes

#[test]
fn receive_copy_operating_parameters() {
    let f = fixture();
    #[rustfmt::skip]
    assert_eq!(f.good(1, &rcr(0x03, 0, 255), &[]), [
        0x00, 0x00, 0x00, 0x2a, // AVAILABLE DATA 42
        0x01, 0x00, 0x00, 0x00, // SNLID
        0x00, 0x10, // MAXIMUM CSCD DESCRIPTOR COUNT 16
        0x01, 0x00, // MAXIMUM SEGMENT DESCRIPTOR COUNT 256
        0x00, 0x00, 0x22, 0x00, // MAXIMUM DESCRIPTOR LIST LENGTH 8704
        0x10, 0x00, 0x00, 0x00, // MAXIMUM SEGMENT LENGTH 256 MiB
        0x00, 0x00, 0x00, 0x00, // MAXIMUM INLINE DATA LENGTH 0
        0x00, 0x00, 0x00, 0x00, // HELD DATA LIMIT 0
        0x00, 0x00, 0x00, 0x00, // MAXIMUM STREAM DEVICE TRANSFER SIZE 0
        0x00, 0x00, 0x00, 0x10, // reserved, TOTAL CONCURRENT COPIES 16
        0x10, // MAXIMUM CONCURRENT COPIES 16
        0x09, 0x09, 0x09, // DATA SEGMENT, INLINE DATA, HELD DATA GRANULARITY 2^9
        0x00, 0x00, 0x00, // reserved
        0x02, 0x02, 0xe4, // IMPLEMENTED DESCRIPTOR LIST
    ]);
    // ALLOCATION LENGTH 8.
    assert_eq!(f.good(1, &rcr(0x03, 0, 8), &[]).len(), 8);
    // REPORT ALL ROD TOKENS: AVAILABLE DATA 4, no ROD management tokens.
    assert_eq!(f.good(1, &rcr(0x08, 0, 64), &[]), [0, 0, 0, 4, 0, 0, 0, 0]);
}

#[test]
fn third_party_copy_vpd_page() {
    let f = fixture();
    let d = f.good(1, &[0x12, 0x01, 0x8f, 0x02, 0x00, 0x00], &[]);
    assert_eq!(d[..4], [0x00, 0x8f, 0x01, 0x78]);
    assert_eq!(d.len(), 4 + 0x178);
    #[rustfmt::skip]
    assert_eq!(d[4..64], [
        // Block Device ROD Token Limits.
        0x00, 0x00, 0x00, 0x20,
        0, 0, 0, 0, 0, 0,
        0x00, 0x40, // MAXIMUM RANGE DESCRIPTORS 64
        0x00, 0x00, 0x02, 0x58, // MAXIMUM INACTIVITY TIMEOUT 600
        0x00, 0x00, 0x00, 0x3c, // DEFAULT INACTIVITY TIMEOUT 60
        0, 0, 0, 0, 0x00, 0x20, 0x00, 0x00, // MAXIMUM TOKEN TRANSFER SIZE 2 Mi blocks (1 GiB)
        0, 0, 0, 0, 0x00, 0x20, 0x00, 0x00, // OPTIMAL TRANSFER COUNT
        // Supported Commands.
        0x00, 0x01, 0x00, 0x14,
        0x10, // COMMANDS SUPPORTED LIST LENGTH
        0x83, 0x05, 0x00, 0x01, 0x10, 0x11, 0x1c,
        0x84, 0x07, 0x00, 0x01, 0x03, 0x04, 0x05, 0x07, 0x08,
        0x00, 0x00, 0x00,
    ]);
    #[rustfmt::skip]
    assert_eq!(d[64..112], [
        // Parameter Data.
        0x00, 0x04, 0x00, 0x1c,
        0, 0, 0, 0,
        0x00, 0x10, 0x01, 0x00, // MAXIMUM CSCD / SEGMENT DESCRIPTOR COUNT
        0x00, 0x00, 0x22, 0x00, // MAXIMUM DESCRIPTOR LIST LENGTH
        0x00, 0x00, 0x00, 0x00, // MAXIMUM INLINE DATA LENGTH
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        // Supported Descriptors.
        0x00, 0x08, 0x00, 0x04, 0x02, 0x02, 0xe4, 0x00,
        // Supported CSCD Descriptor IDs.
        0x00, 0x0c, 0x00, 0x04, 0x00, 0x02, 0xff, 0xff,
    ]);
    // ROD Token Features, Supported ROD Types, General Copy Operations.
    assert_eq!(d[112..116], [0x01, 0x06, 0x00, 0x5c]);
    assert_eq!(
        d[128..140],
        [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x02, 0x58]
    );
    assert_eq!(
        d[208..216],
        [0x01, 0x08, 0x00, 0x84, 0x00, 0x00, 0x00, 0x80]
    );
    assert_eq!(d[216..222], [0x00, 0x80, 0x00, 0x01, 0x03, 0x00]);
    assert_eq!(d[280..286], [0xff, 0xff, 0x00, 0x01, 0x02, 0x00]);
    #[rustfmt::skip]
    assert_eq!(d[344..], [
        0x80, 0x01, 0x00, 0x20,
        0x00, 0x00, 0x00, 0x10, // TOTAL CONCURRENT COPIES
        0x00, 0x00, 0x00, 0x10, // MAXIMUM IDENTIFIED CONCURRENT COPIES
        0x10, 0x00, 0x00, 0x00, // MAXIMUM SEGMENT LENGTH
        0x09, 0x09, // DATA SEGMENT, INLINE DATA GRANULARITY
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
}

#[test]
fn report_supported_operation_codes_lists_copy_commands() {
    let f = fixture();
    // EXTENDED COPY (LID4): REPORTING OPTIONS 010b, service action 01h.
    let d = f.good(
        1,
        &[0xa3, 0x0c, 0x02, 0x83, 0x00, 0x01, 0, 0, 0, 0xff, 0, 0],
        &[],
    );
    #[rustfmt::skip]
    assert_eq!(d, [
        0x00, 0x03, 0x00, 0x10,
        // Byte 1 holds the service action code, not the field's mask
        // (SPC-5 6.39.3).
        0x83, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
    ]);
    // WRITE USING TOKEN.
    let d = f.good(
        1,
        &[0xa3, 0x0c, 0x02, 0x83, 0x00, 0x11, 0, 0, 0, 0xff, 0, 0],
        &[],
    );
    assert_eq!(
        d[4..],
        [0x83, 0x11, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]
    );
    // Service action 02h of 83h: not supported.
    let d = f.good(
        1,
        &[0xa3, 0x0c, 0x02, 0x83, 0x00, 0x02, 0, 0, 0, 0xff, 0, 0],
        &[],
    );
    assert_eq!(d, [0x00, 0x01, 0x00, 0x00]);
    // And dispatch agrees: INVALID FIELD IN CDB at the SERVICE ACTION.
    assert_eq!(
        f.sense(1, &xcopy(0x02, 0), &[]),
        fixed(0x05, 0x24, 0x00, [0xcc, 0x00, 0x01])
    );
}

// ---------------------------------------------------------------- tokens

/// POPULATE TOKEN parameter list for `ranges` (LBA, blocks).
fn pt_list(flags: u8, timeout: u32, rod_type: u32, ranges: &[(u64, u32)]) -> Vec<u8> {
    let n = (16 * ranges.len()) as u16;
    let mut p = Vec::new();
    p.extend_from_slice(&(14 + n).to_be_bytes()); // POPULATE TOKEN DATA LENGTH
    p.push(flags); // RTV, IMMED
    p.push(0);
    p.extend_from_slice(&timeout.to_be_bytes()); // INACTIVITY TIMEOUT
    p.extend_from_slice(&rod_type.to_be_bytes()); // ROD TYPE
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&n.to_be_bytes()); // BLOCK DEVICE RANGE DESCRIPTOR LENGTH
    for (lba, blocks) in ranges {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&blocks.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    p
}

/// WRITE USING TOKEN parameter list.
fn wut_list(flags: u8, offset: u64, token: &[u8], ranges: &[(u64, u32)]) -> Vec<u8> {
    let n = (16 * ranges.len()) as u16;
    let mut p = Vec::new();
    p.extend_from_slice(&(534 + n).to_be_bytes()); // WRITE USING TOKEN DATA LENGTH
    p.push(flags); // DEL_TKN, IMMED
    p.extend_from_slice(&[0; 5]);
    p.extend_from_slice(&offset.to_be_bytes()); // OFFSET INTO ROD
    p.extend_from_slice(token);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&n.to_be_bytes());
    for (lba, blocks) in ranges {
        p.extend_from_slice(&lba.to_be_bytes());
        p.extend_from_slice(&blocks.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
    }
    assert_eq!(p.len(), 536 + 16 * ranges.len());
    p
}

fn tok_cdb(sa: u8, list_id: u32, len: usize) -> Vec<u8> {
    let mut c = vec![0x83, sa, 0, 0, 0, 0];
    c.extend_from_slice(&list_id.to_be_bytes());
    c.extend_from_slice(&(len as u32).to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// POPULATE TOKEN on `lun`, then the token from RECEIVE ROD TOKEN
/// INFORMATION.
fn populate(f: &Fixture, lun: u16, list_id: u32, p: &[u8]) -> Vec<u8> {
    f.good(lun, &tok_cdb(0x10, list_id, p.len()), p);
    let d = f.good(lun, &rcr(0x07, list_id, 1024), &[]);
    assert_eq!(d[..4], [0x00, 0x00, 0x02, 0x22]); // 546
    assert_eq!(d[32..38], [0x00, 0x00, 0x02, 0x02, 0x00, 0x00]); // 514, reserved
    d[38..550].to_vec()
}

#[test]
fn populate_and_write_using_token_across_lus() {
    let f = fixture();
    let data = pattern(16 * 512, 7);
    f.write(1, 0, &data);
    // Two ranges of LUN 1: blocks 0-7 and 8-15 (in reverse order).
    let p = pt_list(0x00, 0, 0, &[(8, 8), (0, 8)]);
    let token = populate(&f, 1, 0x55, &p);
    let d = f.good(1, &rcr(0x07, 0x55, 1024), &[]);
    #[rustfmt::skip]
    assert_eq!(d[4..32], [
        0x10, // RESPONSE TO SERVICE ACTION: POPULATE TOKEN
        0x01, // completed without errors
        0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00,
        0xf1, // TRANSFER COUNT UNITS: logical blocks
        0, 0, 0, 0, 0, 0, 0, 0x10, // 16 blocks
        0x00, 0x02, // 2 ranges
        0, 0, 0, 0, 0, 0,
    ]);
    #[rustfmt::skip]
    assert_eq!(token[..64], [
        0x00, 0x80, 0x00, 0x01, // ROD TYPE: point in time copy, change vulnerable
        0x00, 0x00, 0x01, 0xf8, // ROD TOKEN LENGTH 504
        0, 0, 0, 0, 0, 0, 0, 1, // COPY MANAGER ROD TOKEN IDENTIFIER
        // CREATOR LOGICAL UNIT DESCRIPTOR: E4h, LUN 1.
        0xe4, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x08,
        0x35, 0xac, 0, 0, 0, 0, 0, 0x01,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x02, 0x00,
        // NUMBER OF BYTES REPRESENTED 8192.
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00,
    ]);
    assert_eq!(token[96..100], [0x00, 0x00, 0x02, 0x00]); // LOGICAL BLOCK LENGTH
                                                          // WRITE USING TOKEN into LUN 2 (4096-byte blocks): 2 blocks at 50.
    let w = wut_list(0x00, 0, &token, &[(50, 2)]);
    f.good(2, &tok_cdb(0x11, 0x56, w.len()), &w);
    let mut want = data[8 * 512..].to_vec();
    want.extend_from_slice(&data[..8 * 512]);
    assert_eq!(f.read(2, 50, 8192), want);
    // OFFSET INTO ROD 1 (a 4096-byte block): the second half, at 60.
    let w = wut_list(0x00, 1, &token, &[(60, 1)]);
    f.good(2, &tok_cdb(0x11, 0x57, w.len()), &w);
    assert_eq!(f.read(2, 60, 4096), data[..8 * 512]);
    let d = f.good(2, &rcr(0x05, 0x57, 64), &[]);
    assert_eq!(d[4..6], [0x11, 0x01]);
    assert_eq!(d[15..26], [0xf1, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01]);
    // More than the ROD holds: COPY TARGET DEVICE DATA UNDERRUN after
    // writing what there is.
    let w = wut_list(0x00, 1, &token, &[(70, 2)]);
    assert_eq!(
        f.sense(2, &tok_cdb(0x11, 0x58, w.len()), &w),
        copy_aborted(0x0d, 0x04, 1, 0, [0x8f, 0x00, 0x08])
    );
    assert_eq!(f.read(2, 70, 4096), data[..8 * 512]);
    // Stats.
    let (copies, failed) = f.target.stats().copies();
    assert_eq!((copies, failed), (3, 1));
}

#[test]
fn token_invalidation_and_lifetime() {
    let f = fixture();
    f.write(1, 0, &pattern(8 * 512, 8));
    let wut = |token: &[u8], flags: u8| {
        let w = wut_list(flags, 0, token, &[(100, 8)]);
        f.run(1, &tok_cdb(0x11, 1, w.len()), &w).0
    };
    let invalid = |ascq| fixed(0x05, 0x23, ascq, NONE);
    // A write to a source range cancels the token.
    let token = populate(&f, 1, 1, &pt_list(0, 0, 0, &[(0, 8)]));
    f.write(1, 7, &[0xaa; 512]);
    assert_eq!(wut(&token, 0).sense, invalid(0x08));
    // A write elsewhere does not.
    let token = populate(&f, 1, 2, &pt_list(0, 0, 0, &[(0, 8)]));
    f.write(1, 8, &[0xaa; 512]);
    assert_eq!(wut(&token, 0).status, Status::Good);
    // A copy into a source range cancels it too.
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 500, 3)]);
    f.good(1, &xcopy(0x00, p.len()), &p);
    assert_eq!(wut(&token, 0).sense, invalid(0x08));
    // Inactivity timeout 1 s: expired 2 s later.
    let token = populate(&f, 1, 3, &pt_list(0, 1, 0, &[(0, 8)]));
    f.target.copy.advance(Duration::from_secs(2));
    assert_eq!(wut(&token, 0).sense, invalid(0x07));
    // Default 60 s: still valid after 50 s, as use restarts the timer.
    let token = populate(&f, 1, 4, &pt_list(0, 0, 0, &[(0, 8)]));
    f.target.copy.advance(Duration::from_secs(50));
    assert_eq!(wut(&token, 0).status, Status::Good);
    f.target.copy.advance(Duration::from_secs(50));
    // DEL_TKN: deleted after use.
    assert_eq!(wut(&token, 0x02).status, Status::Good);
    assert_eq!(wut(&token, 0).sense, invalid(0x09));
    // Unknown identifier, corrupt body, wrong length, unsupported type.
    let mut t = token.clone();
    t[15] ^= 0x40;
    assert_eq!(wut(&t, 0).sense, invalid(0x04));
    let token = populate(&f, 1, 5, &pt_list(0, 0, 0, &[(0, 8)]));
    let mut t = token.clone();
    t[300] ^= 1;
    assert_eq!(wut(&t, 0).sense, invalid(0x05));
    let mut t = token.clone();
    t[7] = 0xf0;
    assert_eq!(wut(&t, 0).sense, invalid(0x0a));
    let mut t = token.clone();
    t[1] = 0x01; // 00010000h access upon reference: not a type of ours
    t[3] = 0x00;
    assert_eq!(wut(&t, 0).sense, invalid(0x01));
    // COPY OPERATION ABORT of the POPULATE TOKEN deletes its token.
    f.good(
        1,
        &[0x83, 0x1c, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[],
    );
    assert_eq!(wut(&token, 0).sense, invalid(0x09));
    // An unknown list identifier: INVALID FIELD IN CDB at byte 2.
    assert_eq!(
        f.sense(
            1,
            &[0x83, 0x1c, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[]
        ),
        fixed(0x05, 0x24, 0x00, [0xcf, 0x00, 0x02])
    );
}

#[test]
fn zone_reset_cancels_tokens_and_zero_token() {
    let f = fixture();
    let data = pattern(2 * 4096, 9);
    f.write(0, 32, &data);
    let token = populate(&f, 0, 1, &pt_list(0, 0, 0, &[(32, 2)]));
    // RESET WRITE POINTER of the zone at 32.
    f.good(
        0,
        &[0x94, 0x04, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0],
        &[],
    );
    let w = wut_list(0, 0, &token, &[(5, 2)]);
    assert_eq!(
        f.sense(0, &tok_cdb(0x11, 2, w.len()), &w),
        fixed(0x05, 0x23, 0x08, NONE)
    );
    // The block device zero ROD token writes zeros.
    f.write(1, 0, &pattern(4 * 512, 1));
    let mut zero = vec![0u8; 512];
    zero[0..4].copy_from_slice(&[0xff, 0xff, 0x00, 0x01]);
    zero[6..8].copy_from_slice(&[0x01, 0xf8]);
    let w = wut_list(0, 0, &zero, &[(1, 2)]);
    f.good(1, &tok_cdb(0x11, 3, w.len()), &w);
    assert_eq!(f.read(1, 1, 1024), vec![0u8; 1024]);
    assert_ne!(f.read(1, 0, 512), vec![0u8; 512]);
    // A token into a sequential zone not at its write pointer: COPY
    // ABORTED, UNALIGNED WRITE COMMAND, pointing at the range descriptor.
    let token = populate(&f, 1, 4, &pt_list(0, 0, 0, &[(0, 8)]));
    let w = wut_list(0, 0, &token, &[(40, 1)]);
    assert_eq!(
        f.sense(0, &tok_cdb(0x11, 5, w.len()), &w),
        copy_aborted(0x21, 0x04, 1, 0, [0x8f, 0x02, 0x18])
    );
    // At the write pointer: fine.
    let w = wut_list(0, 0, &token, &[(32, 1)]);
    f.good(0, &tok_cdb(0x11, 6, w.len()), &w);
}

/// Issue 15, finding 7: ROD tokens outlived a zone going READ ONLY (set
/// through the control socket) and a power cut that dropped the data they
/// stood for. Both now cancel the tokens over the changed blocks only.
#[test]
fn zone_condition_and_power_cut_cancel_tokens() {
    let f = fixture();
    f.write(0, 32, &pattern(2 * 4096, 3));
    f.write(0, 48, &pattern(2 * 4096, 4));
    let in_32 = populate(&f, 0, 1, &pt_list(0, 0, 0, &[(32, 2)]));
    let in_48 = populate(&f, 0, 2, &pt_list(0, 0, 0, &[(48, 2)]));
    f.dev(0)
        .set_zone_condition(Lba::new(32), crate::storage::ZoneCondition::ReadOnly)
        .unwrap();
    let cancelled = fixed(0x05, 0x23, 0x08, NONE);
    let w = wut_list(0, 0, &in_32, &[(0, 2)]);
    assert_eq!(f.sense(2, &tok_cdb(0x11, 3, w.len()), &w), cancelled);
    // The zone at 48 did not change: its token still works.
    let w = wut_list(0, 0, &in_48, &[(8, 2)]);
    f.good(2, &tok_cdb(0x11, 4, w.len()), &w);
    assert_eq!(f.read(2, 8, 2 * 4096), pattern(2 * 4096, 4));

    // A power cut of LUN 1's volatile cache drops an unflushed write:
    // the token over it is cancelled.
    f.dev(1).set_volatile_cache(true).unwrap();
    f.write(1, 0, &pattern(8 * 512, 5));
    let lost = populate(&f, 1, 5, &pt_list(0, 0, 0, &[(0, 8)]));
    let cut = f.dev(1).power_cut().unwrap().unwrap();
    assert_eq!(cut.dropped_blocks, 8);
    let w = wut_list(0, 0, &lost, &[(20, 1)]);
    assert_eq!(f.sense(2, &tok_cdb(0x11, 6, w.len()), &w), cancelled);
}

#[test]
fn populate_token_errors() {
    let f = fixture();
    let pt = |p: &[u8]| f.sense(1, &tok_cdb(0x10, 1, p.len()), p);
    // INACTIVITY TIMEOUT 601 > 600: byte 4.
    assert_eq!(
        pt(&pt_list(0, 601, 0, &[(0, 1)])),
        fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x04])
    );
    // RTV with ROD TYPE 00010000h (access upon reference): byte 8.
    assert_eq!(
        pt(&pt_list(0x02, 0, 0x0001_0000, &[(0, 1)])),
        fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x08])
    );
    // RTV with point in time copy default is fine.
    f.good(
        1,
        &tok_cdb(0x10, 1, 32),
        &pt_list(0x02, 0, 0x0080_0000, &[(0, 1)]),
    );
    // 65 ranges: TOO MANY SEGMENT DESCRIPTORS.
    let many: Vec<(u64, u32)> = (0..65).map(|i| (i, 1)).collect();
    assert_eq!(pt(&pt_list(0, 0, 0, &many)), fixed(0x05, 0x26, 0x08, NONE));
    // Overlapping ranges: the second descriptor, byte 32.
    assert_eq!(
        pt(&pt_list(0, 0, 0, &[(0, 4), (3, 4)])),
        fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x20])
    );
    // Past the end: LOGICAL BLOCK ADDRESS OUT OF RANGE.
    assert_eq!(
        pt(&pt_list(0, 0, 0, &[(2047, 2)])),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    // Shorter than a header and one range: PARAMETER LIST LENGTH ERROR.
    assert_eq!(
        pt(&[0x00, 0x0e, 0, 0, 0, 0, 0, 0]),
        fixed(0x05, 0x1a, 0x00, NONE)
    );
    // RANGE DESCRIPTOR LENGTH not a multiple of 16: byte 14.
    let mut p = pt_list(0, 0, 0, &[(0, 1)]);
    p[15] = 0x0f;
    assert_eq!(pt(&p), fixed(0x05, 0x26, 0x00, [0x8f, 0x00, 0x0e]));
    // WRITE USING TOKEN with too short a list.
    assert_eq!(
        f.sense(1, &tok_cdb(0x11, 1, 40), &[0; 40]),
        fixed(0x05, 0x1a, 0x00, NONE)
    );
}

#[test]
fn stats_source_counts_commands_and_copies() {
    let f = fixture();
    f.write(1, 0, &pattern(512, 1));
    let p = lid1(1, 0, &[e4(1, 0, 512)], &[seg02(0, 0, false, 1, 0, 1)]);
    f.good(1, &xcopy(0x00, p.len()), &p);
    let s = f.target.stats_source();
    assert_eq!(s.name(), "scsi");
    let v = s.snapshot();
    assert_eq!(v["commands"]["EXTENDED COPY(LID1)"], 1);
    assert_eq!(v["commands"]["WRITE(16)"], 1);
    assert_eq!(v["copies"], 1);
    assert_eq!(v["copy_segments"], 1);
    assert_eq!(v["copied_bytes"], 512);
    assert_eq!(v["failed_copies"], 0);
}

// ---------------------------------------------------------------- property

fn arb_segment() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x02u8, 0x0a, 0x04, 0x0d]),
        any::<bool>(),
        prop::sample::select(vec![0u16, 1, 2, 0xffff, 0x0800]),
        prop::sample::select(vec![0u16, 1, 2, 0xffff]),
        0u32..40,
        prop_oneof![0u64..2100, Just(u64::MAX), Just(u64::MAX - 3)],
        prop_oneof![0u64..2100, Just(u64::MAX)],
    )
        .prop_map(|(code, dc, s, d, n, sl, dl)| {
            if code == 0x0a {
                seg0a(s, d, n * 512, sl, dl, [0, 0])
            } else {
                let mut v = seg02(s, d, dc, n as u16, sl, dl);
                v[0] = code;
                v
            }
        })
}

proptest! {
    #![proptest_config(crate::testing::cases(64))]

    /// Random lists never panic, and write nothing outside the destination
    /// ranges their segment descriptors name (nothing at all if the list
    /// does not decode).
    #[test]
    fn random_lists_stay_in_named_ranges(
        cscd_luns in prop::collection::vec((0u8..4, prop::sample::select(vec![512u32, 4096])), 0..4),
        segs in prop::collection::vec(arb_segment(), 0..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        lid4_header in any::<bool>(),
    ) {
        let f = fixture();
        f.dev(1).write(Lba::new(0), &pattern(1 << 20, 0x11), false).unwrap();
        f.dev(2).write(Lba::new(0), &pattern(1 << 20, 0x77), false).unwrap();
        f.dev(0).write(Lba::new(0), &pattern(32 * 4096, 0x33), false).unwrap();
        let before: Vec<Vec<u8>> = [(0u16, 128 * 4096), (1, 1 << 20), (2, 1 << 20)]
            .iter()
            .map(|(l, n)| f.read(*l, 0, *n))
            .collect();
        let cscds: Vec<Vec<u8>> = cscd_luns.iter().map(|(l, bs)| e4(*l, 0, *bs)).collect();
        let mut p = if lid4_header {
            lid4(1, 0, false, &cscds, &segs)
        } else {
            lid1(1, 0, &cscds, &segs)
        };
        for (i, v) in &flips {
            let at = i.index(p.len());
            p[at] ^= v;
        }
        let sa = u8::from(lid4_header);
        let family = if lid4_header { super::Family::Lid4 } else { super::Family::Lid1 };
        let (resp, _) = f.run(1, &xcopy(sa, p.len()), &p);
        prop_assert!(resp.status == Status::Good || resp.sense.len() == 18);
        let parsed = super::list::parse(&p, family);
        for (lun, before) in before.iter().enumerate() {
            let lun = lun as u16;
            let bs = u64::from(f.dev(lun).geometry().block_size);
            let after = f.read(lun, 0, before.len());
            for (blk, (a, b)) in after.chunks(bs as usize).zip(before.chunks(bs as usize)).enumerate() {
                if a == b {
                    continue;
                }
                let at = blk as u64 * bs;
                let named = match &parsed {
                    Err(_) => false,
                    Ok(list) => list.segs.iter().any(|s| {
                        let bytes = match s.amount {
                            super::list::Amount::Blocks { count, .. } => u64::from(count) * 4096,
                            super::list::Amount::Bytes { count, .. } => u64::from(count),
                        };
                        let start = s.dst_lba.saturating_mul(bs);
                        start <= at && at < start.saturating_add(bytes)
                    }),
                };
                prop_assert!(named, "LUN {} block {} changed outside the named ranges", lun, blk);
            }
        }
    }
}

proptest! {
    #![proptest_config(crate::testing::cases(256))]

    /// Any third-party copy command with any parameter data never panics
    /// and answers GOOD or CHECK CONDITION with 18 bytes of sense data.
    #[test]
    fn any_command_and_data_never_panics(
        sa in prop::sample::select(vec![
            (0x83u8, 0x00u8), (0x83, 0x01), (0x83, 0x10), (0x83, 0x11), (0x83, 0x1c),
            (0x84, 0x00), (0x84, 0x01), (0x84, 0x03), (0x84, 0x04), (0x84, 0x05),
            (0x84, 0x07), (0x84, 0x08),
        ]),
        list_id in 0u32..4,
        data in prop::collection::vec(any::<u8>(), 0..700),
        lun in 0u16..4,
    ) {
        // One target for every case: earlier copies, results and tokens
        // carry over, and a case costs no device set-up.
        static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        let f = F.get_or_init(fixture);
        let mut cdb = vec![sa.0, sa.1, 0, 0, 0, 0];
        cdb.extend_from_slice(&list_id.to_be_bytes());
        cdb.extend_from_slice(&(data.len() as u32).to_be_bytes());
        cdb.extend_from_slice(&[0, 0]);
        if sa.0 == 0x83 && sa.1 < 0x10 {
            cdb[6..10].copy_from_slice(&[0; 4]);
        }
        let (resp, _) = f.run(lun, &cdb, &data);
        prop_assert!(resp.status == Status::Good || resp.sense.len() == 18);
    }
}

proptest! {
    #![proptest_config(crate::testing::cases(64))]

    /// WRITE USING TOKEN with random ranges and offsets writes only inside
    /// the destination ranges it names, and never panics.
    #[test]
    fn write_using_token_stays_in_named_ranges(
        src in prop::collection::vec((0u64..300, 0u32..20), 1..4),
        dst in prop::collection::vec((prop_oneof![0u64..300, Just(u64::MAX - 1)], 0u32..20), 1..5),
        offset in prop_oneof![0u64..30, Just(u64::MAX)],
        dst_lun in 1u16..3,
    ) {
        let f = fixture();
        f.dev(1).write(Lba::new(0), &pattern(1 << 20, 0x21), false).unwrap();
        f.dev(2).write(Lba::new(0), &pattern(1 << 20, 0x42), false).unwrap();
        let (resp, _) = {
            let p = pt_list(0, 0, 0, &src);
            f.run(1, &tok_cdb(0x10, 1, p.len()), &p)
        };
        if resp.status != Status::Good {
            return Ok(());
        }
        let token = f.good(1, &rcr(0x07, 1, 1024), &[])[38..550].to_vec();
        let before = f.read(dst_lun, 0, 1 << 20);
        let w = wut_list(0, offset, &token, &dst);
        let (resp, _) = f.run(dst_lun, &tok_cdb(0x11, 2, w.len()), &w);
        prop_assert!(resp.status == Status::Good || resp.sense.len() == 18);
        let bs = u64::from(f.dev(dst_lun).geometry().block_size);
        let after = f.read(dst_lun, 0, 1 << 20);
        for (blk, (a, b)) in after.chunks(bs as usize).zip(before.chunks(bs as usize)).enumerate() {
            if a != b {
                let blk = blk as u64;
                prop_assert!(
                    dst.iter().any(|(l, n)| *l <= blk && blk < l.saturating_add(u64::from(*n))),
                    "LUN {} block {} written outside the ranges", dst_lun, blk
                );
            }
        }
    }
}
