//! Command tests against literal bytes: CDBs written out byte by byte,
//! expected data and sense as literals from SPC-5 / SBC-4 / ZBC-2, never
//! computed from the implementation's constants.
//!
//! LUN 0: host-managed, 4096-byte blocks, 8 zones of 16 blocks, capacity
//! 12 blocks, 1 conventional zone, at most 2 open zones: 128 blocks.
//! LUN 1: disk, 512-byte blocks, 2048 blocks.

use std::sync::Arc;

use super::{DirectData, Request, Response, Status, Target};
use crate::storage::{media::MemSlice, Device, DeviceConfig, ZonedConfig};

mod direct;
mod verify;

struct Fixture {
    _dir: tempfile::TempDir,
    target: Target,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let hm = Device::open(&DeviceConfig {
        path: dir.path().join("hm.img"),
        size: 8 * 65536,
        block_size: 4096,
        zoned: Some(ZonedConfig {
            zone_size: 65536,
            zone_capacity: 49152,
            conventional_zones: 1,
            max_open: 2,
            max_active: 0,
            ..Default::default()
        }),
    })
    .unwrap();
    let disk = Device::open(&DeviceConfig {
        path: dir.path().join("disk.img"),
        size: 1 << 20,
        block_size: 512,
        zoned: None,
    })
    .unwrap();
    Fixture {
        _dir: dir,
        target: Target::new(vec![Arc::new(hm), Arc::new(disk)]),
    }
}

impl Fixture {
    /// Run `cdb` on `lun` with `data_out`, data-in room `room`.
    fn run_io(&self, lun: u16, cdb: &[u8], data_out: &[u8], room: u32) -> (Response, Vec<u8>) {
        let (resp, data_in) = execute(&self.target, lun, cdb, data_out, room);
        assert_eq!(resp.data_in_written as usize, data_in.len());
        (resp, data_in)
    }

    /// Run a command without data-out that must succeed; its data-in.
    fn good(&self, lun: u16, cdb: &[u8]) -> Vec<u8> {
        let (resp, data) = self.run_io(lun, cdb, &[], 1 << 20);
        assert_eq!(resp.status, Status::Good, "sense {:02x?}", resp.sense);
        data
    }

    /// Run a command that must fail; its sense data.
    fn sense(&self, lun: u16, cdb: &[u8], data_out: &[u8]) -> Vec<u8> {
        let (resp, data) = self.run_io(lun, cdb, data_out, 1 << 20);
        assert_eq!(resp.status, Status::CheckCondition);
        assert!(data.is_empty());
        resp.sense
    }
}

/// Run `cdb` on `lun` of `target` with `data_out`, data-in room `room`:
/// the response and the data-in (for every command test of the SCSI
/// front end). The data buffers are offered as memory too ([`VecMemory`]),
/// so READ and WRITE take the straight path; [`execute_via`] with `None`
/// runs without it.
pub(super) fn execute(
    target: &Target,
    lun: u16,
    cdb: &[u8],
    data_out: &[u8],
    room: u32,
) -> (Response, Vec<u8>) {
    let mut mem = VecMemory::new(data_out, room);
    let (resp, streamed) = execute_via(target, lun, cdb, data_out, room, Some(&mut mem));
    // One data-in buffer: a command fills it one way or the other.
    assert!(mem.sent == 0 || streamed.is_empty());
    if mem.sent > 0 {
        mem.data_in.truncate(mem.sent);
        return (resp, mem.data_in);
    }
    (resp, streamed)
}

/// Run a command with the data buffers as streams, and as `memory` too
/// when given.
pub(super) fn execute_via(
    target: &Target,
    lun: u16,
    cdb: &[u8],
    mut data_out: &[u8],
    room: u32,
    memory: Option<&mut VecMemory>,
) -> (Response, Vec<u8>) {
    let mut data_in = Vec::new();
    let resp = target.execute(Request {
        lun,
        cdb,
        data_out: &mut data_out,
        data_in: &mut data_in,
        data_in_len: room,
        direct: memory.map(|d| -> &mut dyn DirectData { d }),
    });
    (resp, data_in)
}

/// A transport's data buffers as memory, over byte vectors; each handed
/// out in two slices (a split at 512 bytes), as a chain of two
/// descriptors would be.
pub(super) struct VecMemory {
    data_out: Vec<u8>,
    received: usize,
    data_in: Vec<u8>,
    sent: usize,
}

impl VecMemory {
    fn new(data_out: &[u8], room: u32) -> Self {
        VecMemory {
            data_out: data_out.to_vec(),
            received: 0,
            data_in: vec![0; room as usize],
            sent: 0,
        }
    }
}

/// `len` bytes of `buf` from `at`, in two slices.
fn two_slices(buf: &mut [u8], at: usize, len: usize) -> Option<Vec<MemSlice<'_>>> {
    let part = buf.get_mut(at..at.checked_add(len)?)?;
    let (a, b) = part.split_at_mut(len.min(512));
    Some(vec![MemSlice::from(a), MemSlice::from(b)])
}

impl DirectData for VecMemory {
    fn data_in(&mut self, len: usize) -> Option<Vec<MemSlice<'_>>> {
        two_slices(&mut self.data_in, self.sent, len)
    }

    fn sent(&mut self, len: usize) {
        self.sent += len;
    }

    fn data_out(&mut self, len: usize) -> Option<Vec<MemSlice<'_>>> {
        two_slices(&mut self.data_out, self.received, len)
    }

    fn received(&mut self, len: usize) {
        self.received += len;
    }
}

/// Fixed format sense data, 18 bytes, for a sense key, ASC, ASCQ and the
/// three sense-key specific bytes.
fn fixed(key: u8, asc: u8, ascq: u8, sks: [u8; 3]) -> Vec<u8> {
    vec![
        0x70, 0, key, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, sks[0], sks[1], sks[2],
    ]
}

/// ILLEGAL REQUEST, INVALID FIELD IN CDB, field pointer with C/D=1.
fn invalid_cdb(byte: u8, bit: Option<u8>) -> Vec<u8> {
    let b0 = match bit {
        Some(b) => 0xc8 | b,
        None => 0xc0,
    };
    fixed(0x05, 0x24, 0x00, [b0, 0, byte])
}

const NONE: [u8; 3] = [0, 0, 0];

// ---------------------------------------------------------------- dispatch

#[test]
fn unknown_opcodes_and_luns() {
    let f = fixture();
    // ATA PASS-THROUGH(16), as Linux may probe: INVALID COMMAND OPERATION CODE.
    let ata16 = [0x85, 0x08, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xec, 0];
    assert_eq!(f.sense(0, &ata16, &[]), fixed(0x05, 0x20, 0x00, NONE));
    // RECEIVE DIAGNOSTIC RESULTS.
    assert_eq!(
        f.sense(1, &[0x1c, 0x01, 0x00, 0x00, 0xff, 0x00], &[]),
        fixed(0x05, 0x20, 0x00, NONE)
    );
    // Empty CDB.
    assert_eq!(f.sense(0, &[], &[]), fixed(0x05, 0x20, 0x00, NONE));
    // TEST UNIT READY to LUN 2 (no logical unit): LOGICAL UNIT NOT SUPPORTED.
    assert_eq!(
        f.sense(2, &[0x00, 0, 0, 0, 0, 0], &[]),
        fixed(0x05, 0x25, 0x00, NONE)
    );
    // Unknown opcode to LUN 2: still LOGICAL UNIT NOT SUPPORTED.
    assert_eq!(
        f.sense(2, &[0xa1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]),
        fixed(0x05, 0x25, 0x00, NONE)
    );
    // ZBC IN on the disk LU: not supported there.
    let mut rz = [0u8; 16];
    rz[0] = 0x95;
    rz[13] = 0x40;
    assert_eq!(f.sense(1, &rz, &[]), fixed(0x05, 0x20, 0x00, NONE));
}

#[test]
fn cdb_checks() {
    let f = fixture();
    // TEST UNIT READY.
    assert!(f.good(0, &[0x00, 0, 0, 0, 0, 0]).is_empty());
    // NACA set in the CONTROL byte: byte 5, bit 2.
    assert_eq!(
        f.sense(0, &[0x00, 0, 0, 0, 0, 0x04], &[]),
        invalid_cdb(5, Some(2))
    );
    // Reserved bit in TEST UNIT READY byte 3.
    assert_eq!(
        f.sense(0, &[0x00, 0, 0, 0x01, 0, 0], &[]),
        invalid_cdb(3, Some(0))
    );
    // READ(16) cut to 10 bytes: the operation code's length is not met.
    assert_eq!(
        f.sense(0, &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]),
        invalid_cdb(0, Some(7))
    );
    // SERVICE ACTION IN(16) 12h (GET LBA STATUS): unsupported service action.
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9e;
    cdb[1] = 0x12;
    cdb[13] = 0x20;
    assert_eq!(f.sense(0, &cdb, &[]), invalid_cdb(1, Some(4)));
}

// ---------------------------------------------------------------- INQUIRY

#[test]
fn inquiry_standard() {
    let f = fixture();
    let d = f.good(0, &[0x12, 0x00, 0x00, 0x00, 0x60, 0x00]);
    assert_eq!(d.len(), 96);
    #[rustfmt::skip]
    let head: [u8; 36] = [
        0x14, // PQ 000b, PERIPHERAL DEVICE TYPE 14h host managed zoned
        0x00, // RMB 0
        0x07, // VERSION: SPC-5
        0x12, // HISUP, RESPONSE DATA FORMAT 2
        0x5b, // ADDITIONAL LENGTH 91
        0x08, // 3PC: third-party copy supported
        0x00,
        0x02, // CMDQUE
        b'Z', b'O', b'N', b'E', b'C', b'O', b'P', b'Y',
        b'Z', b'B', b'C', b' ', b'H', b'M', b' ', b'D', b'I', b'S', b'K', b' ', b' ', b' ', b' ', b' ',
        b'0', b'1', b'0', b' ',
    ];
    assert_eq!(d[..36], head);
    // Version descriptors: SAM-5, SPC-5, SBC-4.
    assert_eq!(d[58..66], [0x00, 0xa0, 0x05, 0xc0, 0x06, 0x00, 0x00, 0x00]);
    // The disk LU: peripheral device type 00h.
    assert_eq!(f.good(1, &[0x12, 0, 0, 0, 0x24, 0])[0], 0x00);
}

#[test]
fn inquiry_allocation_length_and_room() {
    let f = fixture();
    // ALLOCATION LENGTH 36: 36 bytes.
    assert_eq!(f.good(0, &[0x12, 0, 0, 0x00, 0x24, 0]).len(), 36);
    // ALLOCATION LENGTH 0: no data, not an error.
    assert!(f.good(0, &[0x12, 0, 0, 0, 0, 0]).is_empty());
    // Data-in room 5 < ALLOCATION LENGTH 255: truncated to 5.
    let (resp, d) = f.run_io(0, &[0x12, 0, 0, 0, 0xff, 0], &[], 5);
    assert_eq!(resp.status, Status::Good);
    assert_eq!(d, [0x14, 0x00, 0x07, 0x12, 0x5b]);
}

#[test]
fn inquiry_errors() {
    let f = fixture();
    // CMDDT: byte 1 bit 1.
    assert_eq!(
        f.sense(0, &[0x12, 0x02, 0, 0, 0x24, 0], &[]),
        invalid_cdb(1, Some(1))
    );
    // PAGE CODE without EVPD: byte 2.
    assert_eq!(
        f.sense(0, &[0x12, 0x00, 0x80, 0, 0x24, 0], &[]),
        invalid_cdb(2, Some(7))
    );
    // Unsupported VPD page 89h (ATA information): byte 2.
    assert_eq!(
        f.sense(0, &[0x12, 0x01, 0x89, 0, 0xff, 0], &[]),
        invalid_cdb(2, Some(7))
    );
    // Zoned characteristics on the disk LU: not supported there.
    assert_eq!(
        f.sense(1, &[0x12, 0x01, 0xb6, 0, 0xff, 0], &[]),
        invalid_cdb(2, Some(7))
    );
    // No logical unit at LUN 3: PERIPHERAL QUALIFIER 011b, type 1Fh.
    let d = f.good(3, &[0x12, 0, 0, 0, 0x24, 0]);
    assert_eq!(d[..5], [0x7f, 0x00, 0x07, 0x12, 0x5b]);
}

#[test]
fn vpd_pages() {
    let f = fixture();
    // Supported VPD pages.
    assert_eq!(
        f.good(0, &[0x12, 0x01, 0x00, 0x00, 0xff, 0x00]),
        [0x14, 0x00, 0x00, 0x07, 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb6]
    );
    assert_eq!(
        f.good(1, &[0x12, 0x01, 0x00, 0x00, 0xff, 0x00]),
        [0x00, 0x00, 0x00, 0x06, 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1]
    );
    // Unit serial number.
    let mut want = vec![0x00, 0x80, 0x00, 0x0e];
    want.extend_from_slice(b"ZC000000000001");
    assert_eq!(f.good(1, &[0x12, 0x01, 0x80, 0x00, 0xff, 0x00]), want);
    // Device identification: NAA (locally assigned) + T10 vendor ID.
    #[rustfmt::skip]
    let mut want = vec![
        0x14, 0x83, 0x00, 0x26,
        0x01, // PROTOCOL IDENTIFIER 0, CODE SET 1h binary
        0x03, // PIV 0, ASSOCIATION 00b (LU), DESIGNATOR TYPE 3h NAA
        0x00, 0x08,
        0x35, 0xac, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, // CODE SET 2h ASCII
        0x01, // ASSOCIATION 00b, DESIGNATOR TYPE 1h T10 vendor ID
        0x00, 0x16,
    ];
    want.extend_from_slice(b"ZONECOPYZC000000000000");
    assert_eq!(f.good(0, &[0x12, 0x01, 0x83, 0x00, 0xff, 0x00]), want);
}

#[test]
fn vpd_block_pages() {
    let f = fixture();
    // Block limits, 4096-byte blocks.
    let d = f.good(0, &[0x12, 0x01, 0xb0, 0x00, 0xff, 0x00]);
    assert_eq!(d.len(), 64);
    #[rustfmt::skip]
    assert_eq!(d[..16], [
        0x14, 0xb0, 0x00, 0x3c,
        0x00, 0x00, // WSNZ, MAXIMUM COMPARE AND WRITE LENGTH
        0x00, 0x01, // OPTIMAL TRANSFER LENGTH GRANULARITY
        0x00, 0x00, 0x04, 0x00, // MAXIMUM TRANSFER LENGTH 1024 blocks (4 MiB)
        0x00, 0x00, 0x00, 0x00, // OPTIMAL TRANSFER LENGTH: not reported
    ]);
    assert!(d[16..].iter().all(|&b| b == 0));
    // Block device characteristics: non-rotating, ZONED 00b.
    let d = f.good(0, &[0x12, 0x01, 0xb1, 0x00, 0xff, 0x00]);
    let mut want = vec![0u8; 64];
    want[..6].copy_from_slice(&[0x14, 0xb1, 0x00, 0x3c, 0x00, 0x01]);
    assert_eq!(d, want);
    // Zoned block device characteristics.
    let d = f.good(0, &[0x12, 0x01, 0xb6, 0x00, 0xff, 0x00]);
    #[rustfmt::skip]
    let want_head: [u8; 32] = [
        0x14, 0xb6, 0x00, 0x3c,
        0x01, 0x00, 0x00, 0x00, // URSWRZ
        0xff, 0xff, 0xff, 0xff, // OPTIMAL NUMBER OF OPEN SWP ZONES: not reported
        0xff, 0xff, 0xff, 0xff, // OPTIMAL NUMBER OF NON-SEQ. WRITTEN SWP ZONES
        0x00, 0x00, 0x00, 0x02, // MAXIMUM NUMBER OF OPEN SWR ZONES
        0x00, 0x00, 0x00,
        0x08, // ZONE ALIGNMENT METHOD: constant zone starting LBA offsets
        0, 0, 0, 0, 0, 0, 0, 0x10, // ZONE STARTING LBA GRANULARITY: 16 blocks
    ];
    assert_eq!(d.len(), 64);
    assert_eq!(d[..32], want_head);
    assert!(d[32..].iter().all(|&b| b == 0));
}

// ---------------------------------------------------------------- REPORT LUNS, REQUEST SENSE

#[test]
fn report_luns() {
    let f = fixture();
    let cdb = [0xa0, 0, 0x00, 0, 0, 0, 0x00, 0x00, 0x01, 0x00, 0, 0];
    #[rustfmt::skip]
    let want = [
        0x00, 0x00, 0x00, 0x10, 0, 0, 0, 0, // LUN LIST LENGTH 16
        0x00, 0x00, 0, 0, 0, 0, 0, 0, // LUN 0
        0x00, 0x01, 0, 0, 0, 0, 0, 0, // LUN 1
    ];
    assert_eq!(f.good(0, &cdb), want);
    // To a LUN with no logical unit, too.
    assert_eq!(f.good(9, &cdb), want);
    // Well known LUs only: none.
    assert_eq!(
        f.good(0, &[0xa0, 0, 0x01, 0, 0, 0, 0, 0, 0x01, 0x00, 0, 0]),
        [0, 0, 0, 0, 0, 0, 0, 0]
    );
    // ALLOCATION LENGTH 3 < 4.
    assert_eq!(
        f.sense(0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0], &[]),
        invalid_cdb(6, Some(7))
    );
    // Reserved SELECT REPORT 03h.
    assert_eq!(
        f.sense(0, &[0xa0, 0, 0x03, 0, 0, 0, 0, 0, 0x01, 0x00, 0, 0], &[]),
        invalid_cdb(2, Some(7))
    );
    // ALLOCATION LENGTH 12: truncated list, LUN LIST LENGTH still 16.
    assert_eq!(
        f.good(0, &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0]),
        [0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn request_sense() {
    let f = fixture();
    assert_eq!(
        f.good(0, &[0x03, 0x00, 0, 0, 0xfc, 0]),
        fixed(0x00, 0x00, 0x00, NONE)
    );
    // DESC: descriptor format.
    assert_eq!(
        f.good(0, &[0x03, 0x01, 0, 0, 0xfc, 0]),
        [0x72, 0, 0, 0, 0, 0, 0, 0]
    );
    // No logical unit: LOGICAL UNIT NOT SUPPORTED as data, GOOD status.
    assert_eq!(
        f.good(4, &[0x03, 0x00, 0, 0, 0x12, 0]),
        fixed(0x05, 0x25, 0x00, NONE)
    );
}

// ---------------------------------------------------------------- MODE SENSE

#[test]
fn mode_sense() {
    let f = fixture();
    // MODE SENSE(6), caching page, disk LU (2048 blocks of 512 bytes).
    #[rustfmt::skip]
    let mut want = vec![
        0x1f, 0x00, 0x10, 0x08, // MODE DATA LENGTH 31, DPOFUA, BLOCK DESCRIPTOR LENGTH 8
        0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00, // 2048 blocks, 512 bytes
        0x08, 0x12, 0x04, // caching page, WCE
    ];
    want.resize(32, 0);
    assert_eq!(f.good(1, &[0x1a, 0x00, 0x08, 0x00, 0xff, 0x00]), want);
    // MODE SENSE(10), all pages, DBD, host-managed LU.
    #[rustfmt::skip]
    let mut want = vec![
        0x00, 0x26, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, // MODE DATA LENGTH 38, no descriptors
        0x08, 0x12, 0x04,
    ];
    want.resize(28, 0);
    want.extend_from_slice(&[0x0a, 0x0a, 0x02, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
    assert_eq!(
        f.good(0, &[0x5a, 0x08, 0x3f, 0x00, 0, 0, 0, 0x01, 0x00, 0x00]),
        want
    );
    // MODE SENSE(10) LLBAA: long LBA block descriptor, LONGLBA set.
    let d = f.good(0, &[0x5a, 0x10, 0x0a, 0x00, 0, 0, 0, 0x01, 0x00, 0x00]);
    #[rustfmt::skip]
    assert_eq!(d[..24], [
        0x00, 0x22, 0x00, 0x10, 0x01, 0x00, 0x00, 0x10,
        0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0x00, 0x00, 0x10, 0x00,
    ]);
    // Changeable values: nothing is changeable.
    let d = f.good(0, &[0x1a, 0x08, 0x48, 0x00, 0xff, 0x00]);
    assert_eq!(
        d,
        [
            0x17, 0x00, 0x10, 0x00, 0x08, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0
        ]
    );
    // Header only (ALLOCATION LENGTH 4), as Linux asks first.
    assert_eq!(
        f.good(1, &[0x1a, 0x00, 0x3f, 0x00, 0x04, 0x00]),
        [0x2b, 0x00, 0x10, 0x08]
    );
    // Saved values: SAVING PARAMETERS NOT SUPPORTED.
    assert_eq!(
        f.sense(0, &[0x1a, 0x00, 0xc8, 0x00, 0xff, 0x00], &[]),
        fixed(0x05, 0x39, 0x00, NONE)
    );
    // Unsupported page 1Ch: PAGE CODE, byte 2 bit 5.
    assert_eq!(
        f.sense(0, &[0x1a, 0x00, 0x1c, 0x00, 0xff, 0x00], &[]),
        invalid_cdb(2, Some(5))
    );
    // Unsupported subpage 05h of the control page.
    assert_eq!(
        f.sense(0, &[0x5a, 0x00, 0x0a, 0x05, 0, 0, 0, 0x01, 0x00, 0x00], &[]),
        invalid_cdb(3, Some(7))
    );
}

// ---------------------------------------------------------------- capacity

#[test]
fn read_capacity() {
    let f = fixture();
    let rc16 = [
        0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x20, 0, 0,
    ];
    #[rustfmt::skip]
    let mut want = vec![
        0, 0, 0, 0, 0, 0, 0x00, 0x7f, // RETURNED LOGICAL BLOCK ADDRESS 127
        0x00, 0x00, 0x10, 0x00, // LOGICAL BLOCK LENGTH 4096
        0x10, // RC BASIS 01b, P_TYPE 0, PROT_EN 0
        0x00, // P_I_EXPONENT 0, LBPPBE 0
        0x00, 0x00, // LBPME 0, LBPRZ 0, LOWEST ALIGNED LBA 0
    ];
    want.resize(32, 0);
    assert_eq!(f.good(0, &rc16), want);
    // ALLOCATION LENGTH 12.
    let mut short = rc16;
    short[13] = 0x0c;
    assert_eq!(
        f.good(1, &short),
        [0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0x02, 0]
    );
    // READ CAPACITY(10).
    assert_eq!(
        f.good(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        [0x00, 0x00, 0x07, 0xff, 0x00, 0x00, 0x02, 0x00]
    );
    // LBA without PMI.
    assert_eq!(
        f.sense(1, &[0x25, 0, 0, 0, 0, 0x01, 0, 0, 0, 0], &[]),
        invalid_cdb(2, Some(7))
    );
}

// ---------------------------------------------------------------- READ / WRITE

fn write16(lba: u8, blocks: u8) -> [u8; 16] {
    [0x8a, 0x00, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, blocks, 0, 0]
}

fn read16(lba: u8, blocks: u8) -> [u8; 16] {
    [0x88, 0x00, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, blocks, 0, 0]
}

#[test]
fn write_then_read() {
    let f = fixture();
    let data: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
    // WRITE(16) 2 blocks at the write pointer of zone 1 (LBA 16).
    let (resp, _) = f.run_io(0, &write16(0x10, 2), &data, 0);
    assert_eq!(resp.status, Status::Good);
    // READ(10) them back.
    assert_eq!(
        f.good(0, &[0x28, 0x00, 0, 0, 0, 0x10, 0, 0x00, 0x02, 0]),
        data
    );
    // WRITE(10) FUA, next 1 block; READ(6).
    let (resp, _) = f.run_io(
        0,
        &[0x2a, 0x08, 0, 0, 0, 0x12, 0, 0x00, 0x01, 0],
        &data[..4096],
        0,
    );
    assert_eq!(resp.status, Status::Good);
    assert_eq!(
        f.good(0, &[0x08, 0x00, 0x00, 0x12, 0x01, 0x00]),
        data[..4096]
    );
    // Data-in room of one block for a 2-block read: truncated, GOOD.
    let (resp, d) = f.run_io(0, &read16(0x10, 2), &[], 4096);
    assert_eq!(resp.status, Status::Good);
    assert_eq!(d, data[..4096]);
    // Transfer length 0: nothing, GOOD, and the write pointer stays.
    let (resp, _) = f.run_io(0, &write16(0x13, 0), &[], 0);
    assert_eq!(resp.status, Status::Good);
    // WRITE(6) and READ(6) on the disk LU.
    let (resp, _) = f.run_io(1, &[0x0a, 0x00, 0x00, 0x05, 0x01, 0x00], &data[..512], 0);
    assert_eq!(resp.status, Status::Good);
    assert_eq!(
        f.good(1, &[0x08, 0x00, 0x00, 0x05, 0x01, 0x00]),
        data[..512]
    );
}

#[test]
fn zoned_write_errors() {
    let f = fixture();
    let block = vec![0xa5u8; 4096];
    // Not at the write pointer (16): UNALIGNED WRITE COMMAND.
    assert_eq!(
        f.sense(0, &write16(0x11, 1), &block),
        fixed(0x05, 0x21, 0x04, NONE)
    );
    // From the write pointer past the capacity into the gap zone: WRITE
    // BOUNDARY VIOLATION.
    let big = vec![0u8; 13 * 4096];
    assert_eq!(
        f.sense(0, &write16(0x10, 13), &big),
        fixed(0x05, 0x21, 0x05, NONE)
    );
    // Starting in the gap zone (LBA 28-31): ATTEMPT TO ACCESS GAP ZONE.
    assert_eq!(
        f.sense(0, &write16(0x1c, 1), &block),
        fixed(0x05, 0x21, 0x09, NONE)
    );
    // From the conventional zone into zone 1: WRITE BOUNDARY VIOLATION.
    assert_eq!(
        f.sense(0, &write16(0x0f, 2), &big[..8192]),
        fixed(0x05, 0x21, 0x05, NONE)
    );
    // Past the end: LOGICAL BLOCK ADDRESS OUT OF RANGE.
    assert_eq!(
        f.sense(0, &write16(0x80, 1), &block),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    // LBA FFFF_FFFF_FFFF_FFFFh + 1 overflows: out of range, no panic.
    let mut cdb = [0xffu8; 16];
    cdb[0] = 0x8a;
    cdb[1] = 0;
    cdb[10..14].copy_from_slice(&[0, 0, 0, 1]);
    cdb[14] = 0;
    cdb[15] = 0;
    assert_eq!(f.sense(0, &cdb, &block), fixed(0x05, 0x21, 0x00, NONE));
    // TRANSFER LENGTH above the MAXIMUM TRANSFER LENGTH (1024).
    let mut cdb = write16(0x10, 0);
    cdb[12] = 0x04;
    cdb[13] = 0x01;
    assert_eq!(f.sense(0, &cdb, &[]), invalid_cdb(10, Some(7)));
    // Data-out shorter than the transfer length: refused, nothing written.
    assert_eq!(
        f.sense(0, &write16(0x10, 2), &block),
        invalid_cdb(10, Some(7))
    );
    // WRPROTECT: byte 1 bit 5.
    let mut cdb = write16(0x10, 1);
    cdb[1] = 0x20;
    assert_eq!(f.sense(0, &cdb, &block), invalid_cdb(1, Some(5)));
    // None of it moved the write pointer: a write at 16 works.
    let (resp, _) = f.run_io(0, &write16(0x10, 1), &block, 0);
    assert_eq!(resp.status, Status::Good);
}

#[test]
fn zoned_read_errors() {
    let f = fixture();
    // Reading an empty zone past its write pointer is allowed (URSWRZ).
    assert_eq!(f.good(0, &read16(0x10, 12)), vec![0u8; 12 * 4096]);
    // Into the gap zone at 28: zones of two types, READ BOUNDARY VIOLATION.
    assert_eq!(
        f.sense(0, &read16(0x1a, 4), &[]),
        fixed(0x05, 0x21, 0x07, NONE)
    );
    // Wholly inside the gap zone: with URSWRZ 1 it reads (zeros).
    assert_eq!(f.good(0, &read16(0x1d, 1)), vec![0u8; 4096]);
    // From the conventional zone into a sequential zone: READ BOUNDARY
    // VIOLATION (reads may not cross zone types).
    assert_eq!(
        f.sense(0, &read16(0x0f, 2), &[]),
        fixed(0x05, 0x21, 0x07, NONE)
    );
    // Within the conventional zone: fine.
    assert_eq!(f.good(0, &read16(0x00, 16)).len(), 16 * 4096);
    // Past the end.
    assert_eq!(
        f.sense(0, &read16(0x7f, 2), &[]),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    // READ(10) RARC: byte 1 bit 2.
    assert_eq!(
        f.sense(0, &[0x28, 0x04, 0, 0, 0, 0x10, 0, 0, 1, 0], &[]),
        invalid_cdb(1, Some(2))
    );
}

#[test]
fn full_zone_and_zone_resources() {
    let f = fixture();
    let block = vec![1u8; 4096];
    // FINISH ZONE 16, then write at its start: INVALID FIELD IN CDB at the
    // LBA.
    let mut finish = [0u8; 16];
    finish[0] = 0x94;
    finish[1] = 0x02;
    finish[9] = 0x10;
    f.good(0, &finish);
    assert_eq!(
        f.sense(0, &write16(0x10, 1), &block),
        invalid_cdb(2, Some(7))
    );
    // Two explicit opens use up the open limit of 2; an implicit open of a
    // third zone: DATA PROTECT, INSUFFICIENT ZONE RESOURCES.
    let mut open = [0u8; 16];
    open[0] = 0x94;
    open[1] = 0x03;
    open[9] = 0x20;
    f.good(0, &open);
    open[9] = 0x30;
    f.good(0, &open);
    assert_eq!(
        f.sense(0, &write16(0x40, 1), &block),
        fixed(0x07, 0x55, 0x0e, NONE)
    );
    open[9] = 0x40;
    assert_eq!(f.sense(0, &open, &[]), fixed(0x07, 0x55, 0x0e, NONE));
}

#[test]
fn synchronize_cache() {
    let f = fixture();
    assert!(f.good(0, &[0x35, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]).is_empty());
    assert!(f
        .good(
            1,
            &[0x91, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0, 0]
        )
        .is_empty());
    // Past the end (2048 blocks on LUN 1).
    assert_eq!(
        f.sense(1, &[0x35, 0x00, 0, 0, 0x08, 0x00, 0, 0, 0, 0], &[]),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    assert_eq!(
        f.sense(1, &[0x35, 0x00, 0, 0, 0x07, 0xff, 0, 0, 0x02, 0], &[]),
        fixed(0x05, 0x21, 0x00, NONE)
    );
}

// ---------------------------------------------------------------- REPORT ZONES

fn report_zones(start: u8, alloc: u16, options: u8) -> [u8; 16] {
    let [hi, lo] = alloc.to_be_bytes();
    [
        0x95, 0x00, 0, 0, 0, 0, 0, 0, 0, start, 0, 0, hi, lo, options, 0,
    ]
}

#[rustfmt::skip]
const CONV0: [u8; 32] = [
    0x01, 0x00, 0, 0, 0, 0, 0, 0, // CONVENTIONAL, NOT WRITE POINTER
    0, 0, 0, 0, 0, 0, 0, 0x10, // ZONE LENGTH 16
    0, 0, 0, 0, 0, 0, 0, 0x00, // ZONE START LBA 0
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // WRITE POINTER LBA: invalid
];

#[rustfmt::skip]
const SWR16_EMPTY: [u8; 32] = [
    0x02, 0x10, 0, 0, 0, 0, 0, 0, // SEQUENTIAL WRITE REQUIRED, EMPTY
    0, 0, 0, 0, 0, 0, 0, 0x0c, // ZONE LENGTH 12 (the capacity)
    0, 0, 0, 0, 0, 0, 0, 0x10, // ZONE START LBA 16
    0, 0, 0, 0, 0, 0, 0, 0x10, // WRITE POINTER LBA 16
];

#[rustfmt::skip]
const GAP28: [u8; 32] = [
    0x05, 0x00, 0, 0, 0, 0, 0, 0, // GAP, NOT WRITE POINTER
    0, 0, 0, 0, 0, 0, 0, 0x04, // ZONE LENGTH 4
    0, 0, 0, 0, 0, 0, 0, 0x1c, // ZONE START LBA 28
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

fn descriptor(d: &[u8], i: usize) -> &[u8] {
    &d[64 + 64 * i..64 + 64 * i + 32]
}

#[test]
fn report_zones_all() {
    let f = fixture();
    let d = f.good(0, &report_zones(0, 4096, 0x00));
    // 1 conventional + 7 x (sequential + gap) = 15 zones.
    assert_eq!(d.len(), 64 + 15 * 64);
    #[rustfmt::skip]
    assert_eq!(d[..24], [
        0x00, 0x00, 0x03, 0xc0, // ZONE LIST LENGTH 960
        0x00, 0, 0, 0, // SAME 0h: types and lengths differ
        0, 0, 0, 0, 0, 0, 0, 0x7f, // MAXIMUM LBA 127
        // ZBC-2 6.4.3.2, table 34, bytes 16-23 ZONE STARTING LBA
        // GRANULARITY: as VPD B6h reports it, the zone size (16 blocks)
        // with gap zones. (Found by the diff suite: scsi_debug sets it.)
        0, 0, 0, 0, 0, 0, 0, 0x10,
    ]);
    assert!(d[24..64].iter().all(|&b| b == 0), "reserved");
    assert_eq!(descriptor(&d, 0), CONV0);
    assert_eq!(descriptor(&d, 1), SWR16_EMPTY);
    assert_eq!(descriptor(&d, 2), GAP28);
    assert!(d[64 * 4 + 32..64 * 5].iter().all(|&b| b == 0));
    // The last zone is a gap zone at 124.
    assert_eq!(d[64 * 15 + 16..64 * 15 + 24], [0, 0, 0, 0, 0, 0, 0, 0x7c]);
}

#[test]
fn report_zones_truncation_and_partial() {
    let f = fixture();
    // ALLOCATION LENGTH 64: the header only, ZONE LIST LENGTH of all zones.
    let d = f.good(0, &report_zones(0, 64, 0x00));
    assert_eq!(d.len(), 64);
    assert_eq!(d[..4], [0x00, 0x00, 0x03, 0xc0]);
    // ALLOCATION LENGTH 10: the header cut short.
    assert_eq!(
        f.good(0, &report_zones(0, 10, 0x00)),
        [0x00, 0x00, 0x03, 0xc0, 0, 0, 0, 0, 0, 0]
    );
    // PARTIAL with room for 2 descriptors: ZONE LIST LENGTH 128.
    let d = f.good(0, &report_zones(0, 192, 0x80));
    assert_eq!(d.len(), 192);
    assert_eq!(d[..4], [0x00, 0x00, 0x00, 0x80]);
    // Without PARTIAL, 150 bytes: one whole descriptor and a cut one.
    let d = f.good(0, &report_zones(0, 150, 0x00));
    assert_eq!(d.len(), 150);
    assert_eq!(d[..4], [0x00, 0x00, 0x03, 0xc0]);
    assert_eq!(d[128..150], SWR16_EMPTY[..22]);
    // PARTIAL, 150 bytes: ZONE LIST LENGTH counts the whole descriptor only.
    let d = f.good(0, &report_zones(0, 150, 0x80));
    assert_eq!(d.len(), 150);
    assert_eq!(d[..4], [0x00, 0x00, 0x00, 0x40]);
}

#[test]
fn report_zones_start_and_options() {
    let f = fixture();
    // Start LBA 30, inside the gap zone 28-31: the list starts there.
    let d = f.good(0, &report_zones(30, 4096, 0x00));
    assert_eq!(d[..4], [0x00, 0x00, 0x03, 0x40]); // 13 zones
    assert_eq!(descriptor(&d, 0), GAP28);
    // ZBC-2 6.4.2, table 33, REPORTING OPTIONS: "3Eh: list all zones except
    // gap zones".
    // The conventional zone and the 7 sequential zones (a 12-block capacity
    // each), 8 zones: types and lengths differ, SAME 0h.
    let d = f.good(0, &report_zones(0, 4096, 0x3e));
    assert_eq!(d[..5], [0x00, 0x00, 0x02, 0x00, 0x00]);
    assert_eq!(d.len(), 64 + 8 * 64);
    assert!((0..8).all(|i| descriptor(&d, i)[0] != 0x05), "no gap zone");
    assert_eq!(descriptor(&d, 1), SWR16_EMPTY);
    // From LBA 30, inside the gap zone 28-31: that gap is not listed either,
    // the list starts with the next sequential zone at 32.
    let d = f.good(0, &report_zones(30, 4096, 0x3e));
    assert_eq!(d[..4], [0x00, 0x00, 0x01, 0x80]); // 6 zones
    assert_eq!(descriptor(&d, 0)[16..24], [0, 0, 0, 0, 0, 0, 0, 0x20]);
    // 3Fh: NOT WRITE POINTER: the conventional zone and the 7 gap zones.
    let d = f.good(0, &report_zones(0, 4096, 0x3f));
    assert_eq!(d[..4], [0x00, 0x00, 0x02, 0x00]);
    // 01h EMPTY: the 7 sequential zones, same type and length.
    let d = f.good(0, &report_zones(0, 4096, 0x01));
    assert_eq!(d[..5], [0x00, 0x00, 0x01, 0xc0, 0x01]);
    assert_eq!(descriptor(&d, 0), SWR16_EMPTY);
    // 05h FULL: none.
    let d = f.good(0, &report_zones(0, 4096, 0x05));
    #[rustfmt::skip]
    assert_eq!(d, [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, // no zones, MAXIMUM LBA 127
        0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, // GRANULARITY 16
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // Reserved option 09h: byte 14, bit 5.
    assert_eq!(
        f.sense(0, &report_zones(0, 4096, 0x09), &[]),
        invalid_cdb(14, Some(5))
    );
    // Start LBA 128: past the end.
    assert_eq!(
        f.sense(0, &report_zones(0x80, 4096, 0x00), &[]),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    // Reserved bit 6 of byte 14.
    assert_eq!(
        f.sense(0, &report_zones(0, 4096, 0x40), &[]),
        invalid_cdb(14, Some(6))
    );
}

// ---------------------------------------------------------------- zone actions

fn zbc_out(sa: u8, zone_id: u8, all: bool) -> [u8; 16] {
    [
        0x94,
        sa,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        zone_id,
        0,
        0,
        0,
        0,
        u8::from(all),
        0,
    ]
}

#[test]
fn zone_actions() {
    let f = fixture();
    // OPEN ZONE 32: EXPLICITLY OPENED.
    f.good(0, &zbc_out(0x03, 0x20, false));
    let d = f.good(0, &report_zones(0x20, 128, 0x00));
    assert_eq!(d[64..66], [0x02, 0x30]);
    // CLOSE ZONE 32 (nothing written): EMPTY again.
    f.good(0, &zbc_out(0x01, 0x20, false));
    let d = f.good(0, &report_zones(0x20, 128, 0x00));
    assert_eq!(d[64..66], [0x02, 0x10]);
    // FINISH ZONE 32: FULL, write pointer at the end of the capacity.
    f.good(0, &zbc_out(0x02, 0x20, false));
    let d = f.good(0, &report_zones(0x20, 128, 0x00));
    assert_eq!(d[64..66], [0x02, 0xe0]);
    assert_eq!(d[64 + 24..64 + 32], [0, 0, 0, 0, 0, 0, 0, 0x2c]);
    // RESET WRITE POINTER, ALL (ZONE ID ignored).
    f.good(0, &zbc_out(0x04, 0x55, true));
    let d = f.good(0, &report_zones(0, 4096, 0x05));
    assert_eq!(d[..4], [0, 0, 0, 0]);
}

#[test]
fn zone_action_errors() {
    let f = fixture();
    // The start of a gap zone: ATTEMPT TO ACCESS GAP ZONE.
    assert_eq!(
        f.sense(0, &zbc_out(0x01, 0x1c, false), &[]),
        fixed(0x05, 0x21, 0x09, NONE)
    );
    // Not the start of a zone (in a sequential zone, in a gap zone), the
    // conventional zone: INVALID FIELD IN CDB at the ZONE ID.
    for id in [0x21, 0x1d, 0x00] {
        assert_eq!(
            f.sense(0, &zbc_out(0x03, id, false), &[]),
            invalid_cdb(2, Some(7)),
            "zone id {id:#x}"
        );
    }
    // Past the end.
    assert_eq!(
        f.sense(0, &zbc_out(0x03, 0x80, false), &[]),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    // ZONE COUNT 2: not supported.
    let mut cdb = zbc_out(0x03, 0x20, false);
    cdb[13] = 2;
    assert_eq!(f.sense(0, &cdb, &[]), invalid_cdb(12, Some(7)));
    // ZONE COUNT 1 is one zone.
    cdb[13] = 1;
    f.good(0, &cdb);
    // SEQUENTIALIZE ZONE (05h): unsupported service action.
    assert_eq!(
        f.sense(0, &zbc_out(0x05, 0x20, false), &[]),
        invalid_cdb(1, Some(4))
    );
    // Reserved byte 10.
    let mut cdb = zbc_out(0x04, 0x20, false);
    cdb[10] = 0x80;
    assert_eq!(f.sense(0, &cdb, &[]), invalid_cdb(10, Some(7)));
    // To the disk LU: not supported there.
    assert_eq!(
        f.sense(1, &zbc_out(0x04, 0x00, true), &[]),
        fixed(0x05, 0x20, 0x00, NONE)
    );
}

// ---------------------------------------------------------------- REPORT SUPPORTED OPERATION CODES

#[test]
fn report_supported_operation_codes() {
    let f = fixture();
    // One command, READ(16) (REPORTING OPTIONS 001b).
    let d = f.good(0, &[0xa3, 0x0c, 0x01, 0x88, 0, 0, 0, 0, 0x01, 0x00, 0, 0]);
    #[rustfmt::skip]
    assert_eq!(d, [
        0x00, 0x03, 0x00, 0x10, // SUPPORT 011b, CDB SIZE 16
        0x88, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
    ]);
    // REPORT ZONES (REPORTING OPTIONS 010b, service action 00h).
    let cdb = [0xa3, 0x0c, 0x02, 0x95, 0x00, 0x00, 0, 0, 0x01, 0x00, 0, 0];
    assert_eq!(f.good(0, &cdb)[..4], [0x00, 0x03, 0x00, 0x10]);
    // On the disk LU it is not supported.
    assert_eq!(f.good(1, &cdb), [0x00, 0x01, 0x00, 0x00]);
    // WRITE SAME(16): not supported.
    assert_eq!(
        f.good(0, &[0xa3, 0x0c, 0x01, 0x93, 0, 0, 0, 0, 0x01, 0x00, 0, 0]),
        [0x00, 0x01, 0x00, 0x00]
    );
    // 001b for an operation code with service actions: invalid field.
    assert_eq!(
        f.sense(
            0,
            &[0xa3, 0x0c, 0x01, 0x9e, 0, 0, 0, 0, 0x01, 0x00, 0, 0],
            &[]
        ),
        invalid_cdb(2, Some(2))
    );
    // 011b with RCTD for INQUIRY (no service actions): with timeouts.
    let d = f.good(0, &[0xa3, 0x0c, 0x83, 0x12, 0, 0, 0, 0, 0x01, 0x00, 0, 0]);
    #[rustfmt::skip]
    assert_eq!(d, [
        0x00, 0x83, 0x00, 0x06, 0x12, 0x01, 0xff, 0xff, 0xff, 0x00,
        0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // All commands: 35 on the host-managed LU, 30 on the disk LU.
    let all = [0xa3, 0x0c, 0x00, 0, 0, 0, 0, 0, 0x10, 0x00, 0, 0];
    let d = f.good(0, &all);
    assert_eq!(d[..4], [0x00, 0x00, 0x01, 0x18]);
    // First descriptor: TEST UNIT READY, no service action, CDB LENGTH 6.
    assert_eq!(d[4..12], [0x00, 0, 0, 0, 0, 0x00, 0x00, 0x06]);
    assert_eq!(f.good(1, &all)[..4], [0x00, 0x00, 0x00, 0xf0]);
}

// ---------------------------------------------------------------- zones without gaps

#[test]
fn zones_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::open(&DeviceConfig {
        path: dir.path().join("hm.img"),
        size: 4 * 65536,
        block_size: 512,
        zoned: Some(ZonedConfig {
            zone_size: 65536,
            zone_capacity: 65536,
            conventional_zones: 1,
            max_open: 0,
            max_active: 0,
            ..Default::default()
        }),
    })
    .unwrap();
    let f = Fixture {
        _dir: dir,
        target: Target::new(vec![Arc::new(dev)]),
    };
    let d = f.good(0, &[0x12, 0x01, 0xb6, 0x00, 0xff, 0x00]);
    #[rustfmt::skip]
    assert_eq!(d[16..32], [
        0xff, 0xff, 0xff, 0xff, // MAXIMUM NUMBER OF OPEN SWR ZONES: no limit
        0x00, 0x00, 0x00,
        0x01, // ZONE ALIGNMENT METHOD: constant zone lengths
        0, 0, 0, 0, 0, 0, 0, 0, // ZONE STARTING LBA GRANULARITY: none
    ]);
    // 4 zones of 128 blocks, types differ, lengths equal: SAME 3h.
    let d = f.good(0, &report_zones(0, 4096, 0x00));
    // No gap zones: ZONE STARTING LBA GRANULARITY zero, as in VPD B6h.
    assert!(d[16..64].iter().all(|&b| b == 0));
    #[rustfmt::skip]
    assert_eq!(d[..16], [
        0x00, 0x00, 0x01, 0x00, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff,
    ]);
    #[rustfmt::skip]
    assert_eq!(d[128..160], [
        0x02, 0x10, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0x80,
        0, 0, 0, 0, 0, 0, 0, 0x80,
        0, 0, 0, 0, 0, 0, 0, 0x80,
    ]);
    // LBA 255 is in zone 1, whose write pointer is 128: unaligned.
    assert_eq!(
        f.sense(0, &write16(0xff, 1), &[0u8; 512]),
        fixed(0x05, 0x21, 0x04, NONE)
    );
}

// ---------------------------------------------------------------- READ ONLY, OFFLINE, ZONE COUNT, URSWRZ, host aware

use crate::storage::{ZoneCondition, ZoneType};

/// One LU of 512-byte blocks: 6 zones of 16 blocks without gaps, the first
/// conventional, at most 2 open zones, `sequential` zones, URSWRZ
/// `urswrz`.
fn six_zones(sequential: ZoneType, urswrz: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::open(&DeviceConfig {
        path: dir.path().join("z.img"),
        size: 6 * 16 * 512,
        block_size: 512,
        zoned: Some(ZonedConfig {
            zone_size: 16 * 512,
            zone_capacity: 16 * 512,
            conventional_zones: 1,
            max_open: if sequential == ZoneType::SequentialWriteRequired {
                2
            } else {
                0
            },
            max_active: 0,
            sequential,
            unrestricted_reads: urswrz,
            ..ZonedConfig::default()
        }),
    })
    .unwrap();
    Fixture {
        _dir: dir,
        target: Target::new(vec![Arc::new(dev)]),
    }
}

impl Fixture {
    fn device(&self, lun: u16) -> &Device {
        &self.target.unit(lun).unwrap().device
    }

    /// Bytes 0-1 (type, condition | NON_SEQ) and the WRITE POINTER LBA of
    /// the zone descriptor of the zone at `start`.
    fn zone(&self, lun: u16, start: u8) -> ([u8; 2], [u8; 8]) {
        let d = self.good(lun, &report_zones(start, 128, 0x00));
        (
            d[64..66].try_into().unwrap(),
            d[64 + 24..64 + 32].try_into().unwrap(),
        )
    }
}

/// ZBC OUT with ZONE COUNT `count` (bytes 12-13).
fn zbc_out_count(sa: u8, zone_id: u8, count: u16, all: bool) -> [u8; 16] {
    let mut c = zbc_out(sa, zone_id, all);
    c[12..14].copy_from_slice(&count.to_be_bytes());
    c
}

fn write10(lba: u8, blocks: u8) -> [u8; 10] {
    [0x2a, 0, 0, 0, 0, lba, 0, 0, blocks, 0]
}

fn read10(lba: u8, blocks: u8) -> [u8; 10] {
    [0x28, 0, 0, 0, 0, lba, 0, 0, blocks, 0]
}

const INVALID_WP: [u8; 8] = [0xff; 8];

#[test]
fn read_only_and_offline_zones() {
    let f = fixture();
    // Zone 32 with 2 blocks written, then READ ONLY; zone 48 OFFLINE.
    let (resp, _) = f.run_io(0, &write16(0x20, 2), &[0x5a; 8192], 0);
    assert_eq!(resp.status, Status::Good);
    f.device(0)
        .set_zone_condition(crate::storage::Lba::new(32), ZoneCondition::ReadOnly)
        .unwrap();
    f.device(0)
        .set_zone_condition(crate::storage::Lba::new(48), ZoneCondition::Offline)
        .unwrap();
    // REPORT ZONES: READ ONLY Dh and OFFLINE Fh, write pointer invalid.
    assert_eq!(f.zone(0, 0x20), ([0x02, 0xd0], INVALID_WP));
    assert_eq!(f.zone(0, 0x30), ([0x02, 0xf0], INVALID_WP));
    // Options 06h (READ ONLY) and 07h (OFFLINE) list one zone each.
    let d = f.good(0, &report_zones(0, 4096, 0x06));
    assert_eq!(d[..4], [0, 0, 0, 0x40]);
    assert_eq!(d[64 + 16..64 + 24], [0, 0, 0, 0, 0, 0, 0, 0x20]);
    let d = f.good(0, &report_zones(0, 4096, 0x07));
    assert_eq!(d[..4], [0, 0, 0, 0x40]);
    assert_eq!(d[64 + 16..64 + 24], [0, 0, 0, 0, 0, 0, 0, 0x30]);
    // READ ONLY: reads work, writes and every zone action fail with DATA
    // PROTECT, ZONE IS READ ONLY (27h/08h).
    assert_eq!(f.good(0, &read16(0x20, 3)).len(), 3 * 4096);
    let read_only = fixed(0x07, 0x27, 0x08, NONE);
    assert_eq!(f.sense(0, &write16(0x22, 1), &[0u8; 4096]), read_only);
    // OFFLINE: reads and writes fail with ZONE IS OFFLINE (2Ch/0Eh).
    let offline = fixed(0x07, 0x2c, 0x0e, NONE);
    assert_eq!(f.sense(0, &read16(0x30, 1), &[]), offline);
    assert_eq!(f.sense(0, &write16(0x30, 1), &[0u8; 4096]), offline);
    for sa in 1..=4 {
        assert_eq!(
            f.sense(0, &zbc_out(sa, 0x20, false), &[]),
            read_only,
            "{sa}"
        );
        assert_eq!(f.sense(0, &zbc_out(sa, 0x30, false), &[]), offline, "{sa}");
    }
    // With ALL they are skipped: FINISH ALL and RESET ALL succeed and leave
    // them as they are.
    f.good(0, &zbc_out(0x02, 0x00, true));
    f.good(0, &zbc_out(0x04, 0x00, true));
    assert_eq!(f.zone(0, 0x20).0, [0x02, 0xd0]);
    assert_eq!(f.zone(0, 0x30).0, [0x02, 0xf0]);
    assert_eq!(f.zone(0, 0x40).0, [0x02, 0x10]);
}

#[test]
fn zone_count() {
    let f = six_zones(ZoneType::SequentialWriteRequired, true);
    // OPEN ZONE 16, ZONE COUNT 2: zones 16 and 32 EXPLICITLY OPENED.
    f.good(
        0,
        &[
            0x94, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0x00, 0x02, 0x00, 0x00,
        ],
    );
    assert_eq!(f.zone(0, 0x10).0, [0x02, 0x30]);
    assert_eq!(f.zone(0, 0x20).0, [0x02, 0x30]);
    // CLOSE ZONE 16, ZONE COUNT 0: one zone (zone 16 EMPTY again).
    f.good(0, &zbc_out_count(0x01, 0x10, 0, false));
    assert_eq!(f.zone(0, 0x10).0, [0x02, 0x10]);
    assert_eq!(f.zone(0, 0x20).0, [0x02, 0x30]);
    // OPEN ZONE 48, ZONE COUNT 2 with zone 32 open and a limit of 2:
    // INSUFFICIENT ZONE RESOURCES, and neither zone opens.
    assert_eq!(
        f.sense(0, &zbc_out_count(0x03, 0x30, 2, false), &[]),
        fixed(0x07, 0x55, 0x0e, NONE)
    );
    assert_eq!(f.zone(0, 0x30).0, [0x02, 0x10]);
    assert_eq!(f.zone(0, 0x40).0, [0x02, 0x10]);
    // The range running past the last zone (zone 80 is the last): INVALID
    // FIELD IN CDB at ZONE COUNT (byte 12, bit 7), nothing changes.
    assert_eq!(
        f.sense(0, &zbc_out_count(0x02, 0x40, 3, false), &[]),
        invalid_cdb(12, Some(7))
    );
    assert_eq!(f.zone(0, 0x40).0, [0x02, 0x10]);
    // ZONE ID errors come first: the conventional zone, not a zone start,
    // past the end.
    assert_eq!(
        f.sense(0, &zbc_out_count(0x02, 0x00, 2, false), &[]),
        invalid_cdb(2, Some(7))
    );
    assert_eq!(
        f.sense(0, &zbc_out_count(0x02, 0x11, 0xffff, false), &[]),
        invalid_cdb(2, Some(7))
    );
    assert_eq!(
        f.sense(0, &zbc_out_count(0x02, 0x60, 2, false), &[]),
        fixed(0x05, 0x21, 0x00, NONE)
    );
    // A READ ONLY zone in the range: DATA PROTECT, nothing changes.
    f.device(0)
        .set_zone_condition(crate::storage::Lba::new(80), ZoneCondition::ReadOnly)
        .unwrap();
    assert_eq!(
        f.sense(0, &zbc_out_count(0x02, 0x40, 2, false), &[]),
        fixed(0x07, 0x27, 0x08, NONE)
    );
    assert_eq!(f.zone(0, 0x40).0, [0x02, 0x10]);
    // FINISH ZONE 48, ZONE COUNT 2: both FULL.
    f.good(0, &zbc_out_count(0x02, 0x30, 2, false));
    assert_eq!(f.zone(0, 0x30), ([0x02, 0xe0], [0, 0, 0, 0, 0, 0, 0, 0x40]));
    assert_eq!(f.zone(0, 0x40).0, [0x02, 0xe0]);
    // RESET WRITE POINTER 16, ZONE COUNT 4: every zone of the range EMPTY.
    f.good(0, &zbc_out_count(0x04, 0x10, 4, false));
    for z in [0x10, 0x20, 0x30, 0x40] {
        assert_eq!(f.zone(0, z).0, [0x02, 0x10], "zone {z:#x}");
    }
    // ALL: ZONE ID and ZONE COUNT ignored.
    f.good(0, &zbc_out_count(0x02, 0x61, 0xffff, true));
    assert_eq!(f.zone(0, 0x10).0, [0x02, 0x10]);
}

#[test]
fn restricted_reads_urswrz_0() {
    let f = six_zones(ZoneType::SequentialWriteRequired, false);
    // VPD B6h byte 4: URSWRZ 0.
    let d = f.good(0, &[0x12, 0x01, 0xb6, 0x00, 0xff, 0x00]);
    assert_eq!(d[4], 0x00);
    // Zone 16 FULL, zone 32 with 4 blocks written.
    f.good(0, &zbc_out(0x02, 0x10, false));
    let (resp, _) = f.run_io(0, &write10(0x20, 4), &[7u8; 2048], 0);
    assert_eq!(resp.status, Status::Good);
    // Below the write pointer: fine.
    assert_eq!(f.good(0, &read10(0x20, 4)), [7u8; 2048]);
    assert_eq!(f.good(0, &read10(0x10, 16)).len(), 16 * 512);
    // Past the write pointer: ATTEMPT TO READ INVALID DATA (21h/06h).
    let invalid_data = fixed(0x05, 0x21, 0x06, NONE);
    assert_eq!(f.sense(0, &read10(0x22, 3), &[]), invalid_data);
    assert_eq!(f.sense(0, &read10(0x30, 1), &[]), invalid_data);
    // Across a zone boundary, even FULL -> OPEN below the write pointer:
    // READ BOUNDARY VIOLATION (21h/07h).
    assert_eq!(
        f.sense(0, &read10(0x1f, 2), &[]),
        fixed(0x05, 0x21, 0x07, NONE)
    );
    // Conventional zone -> sequential: READ BOUNDARY VIOLATION as well.
    assert_eq!(
        f.sense(0, &read10(0x0f, 2), &[]),
        fixed(0x05, 0x21, 0x07, NONE)
    );
    // The default (URSWRZ 1) reads all of these.
    let f = six_zones(ZoneType::SequentialWriteRequired, true);
    assert_eq!(f.good(0, &[0x12, 0x01, 0xb6, 0x00, 0xff, 0x00])[4], 0x01);
    assert_eq!(f.good(0, &read10(0x10, 40)), vec![0u8; 40 * 512]);
}

#[test]
fn host_aware_lu() {
    let f = six_zones(ZoneType::SequentialWritePreferred, true);
    // INQUIRY: PERIPHERAL DEVICE TYPE 00h.
    assert_eq!(f.good(0, &[0x12, 0x00, 0x00, 0x00, 0x24, 0x00])[0], 0x00);
    // Supported VPD pages include B6h.
    assert_eq!(
        f.good(0, &[0x12, 0x01, 0x00, 0x00, 0xff, 0x00]),
        [0x00, 0x00, 0x00, 0x07, 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb6]
    );
    // Block Device Characteristics: ZONED 01b (byte 8 bits 5-4).
    let d = f.good(0, &[0x12, 0x01, 0xb1, 0x00, 0xff, 0x00]);
    assert_eq!(d[..9], [0x00, 0xb1, 0x00, 0x3c, 0x00, 0x01, 0, 0, 0x10]);
    // Zoned Block Device Characteristics: ZONED BLOCK DEVICE EXTENSION 1h
    // (host aware), URSWRZ 1; optimal numbers not reported, no open limit.
    let d = f.good(0, &[0x12, 0x01, 0xb6, 0x00, 0xff, 0x00]);
    #[rustfmt::skip]
    assert_eq!(d[..24], [
        0x00, 0xb6, 0x00, 0x3c,
        0x11, 0x00, 0x00, 0x00,
        0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff,
        0x00, 0x00, 0x00, 0x01,
    ]);
    // REPORT ZONES: SEQUENTIAL WRITE PREFERRED (3h), EMPTY.
    assert_eq!(f.zone(0, 0x10), ([0x03, 0x10], [0, 0, 0, 0, 0, 0, 0, 0x10]));
    // A write away from the write pointer: accepted. Zone 16 IMPLICITLY
    // OPENED with NON_SEQ, write pointer after the write.
    let (resp, _) = f.run_io(0, &write10(0x14, 2), &[9u8; 1024], 0);
    assert_eq!(resp.status, Status::Good, "{:02x?}", resp.sense);
    assert_eq!(f.zone(0, 0x10), ([0x03, 0x22], [0, 0, 0, 0, 0, 0, 0, 0x16]));
    // Across two zones: zone 16 FULL (still NON_SEQ), zone 32 written from
    // its start, so sequentially.
    let (resp, _) = f.run_io(0, &write10(0x1e, 4), &[9u8; 2048], 0);
    assert_eq!(resp.status, Status::Good, "{:02x?}", resp.sense);
    assert_eq!(f.zone(0, 0x10), ([0x03, 0xe2], [0, 0, 0, 0, 0, 0, 0, 0x20]));
    assert_eq!(f.zone(0, 0x20), ([0x03, 0x20], [0, 0, 0, 0, 0, 0, 0, 0x22]));
    // Option 11h: the zones with NON_SEQ.
    let d = f.good(0, &report_zones(0, 4096, 0x11));
    assert_eq!(d[..4], [0, 0, 0, 0x40]);
    assert_eq!(d[64..66], [0x03, 0xe2]);
    // Reads cross the conventional / write preferred boundary and past
    // write pointers like a disk's.
    assert_eq!(f.good(0, &read10(0x0f, 20)).len(), 20 * 512);
    // RESET WRITE POINTER ends NON_SEQ.
    f.good(0, &zbc_out(0x04, 0x10, false));
    assert_eq!(f.zone(0, 0x10), ([0x03, 0x10], [0, 0, 0, 0, 0, 0, 0, 0x10]));
    // The ZBC commands are supported and reported: REPORT ZONES in RSOC,
    // and as many commands as on a host-managed LU.
    let cdb = [0xa3, 0x0c, 0x02, 0x95, 0x00, 0x00, 0, 0, 0x01, 0x00, 0, 0];
    assert_eq!(f.good(0, &cdb)[..4], [0x00, 0x03, 0x00, 0x10]);
    let cdb = [0xa3, 0x0c, 0x02, 0x94, 0x00, 0x04, 0, 0, 0x01, 0x00, 0, 0];
    #[rustfmt::skip]
    assert_eq!(f.good(0, &cdb), [
        0x00, 0x03, 0x00, 0x10,
        // RESET WRITE POINTER usage data: ZONE ID, ZONE COUNT, ALL.
        0x94, 0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff, 0x01, 0x00,
    ]);
    let all = [0xa3, 0x0c, 0x00, 0, 0, 0, 0, 0, 0x10, 0x00, 0, 0];
    assert_eq!(f.good(0, &all)[..4], [0x00, 0x00, 0x01, 0x18]);
}

// ---------------------------------------------------------------- any input

mod any_input {
    use proptest::prelude::*;

    use super::*;
    use crate::scsi::commands::COMMANDS;

    fn cdb() -> impl Strategy<Value = Vec<u8>> {
        let opcodes: Vec<u8> = COMMANDS.iter().map(|c| c.opcode).collect();
        (
            prop_oneof![any::<u8>(), proptest::sample::select(opcodes)],
            proptest::collection::vec(any::<u8>(), 0..32),
        )
            .prop_map(|(op, mut rest)| {
                rest.insert(0, op);
                rest
            })
    }

    proptest! {
        #![proptest_config(crate::testing::cases(512))]

        /// Whatever the CDB, LUN, data-out and data-in room: no panic, no
        /// more data-in than room, and fixed format sense exactly when
        /// CHECK CONDITION.
        #[test]
        fn never_panics(
            cdb in cdb(),
            lun in 0u16..4,
            data_out in proptest::collection::vec(any::<u8>(), 0..9000),
            room in 0u32..70000,
        ) {
            // One target for every case: what earlier cases wrote and did
            // to zones carries over (more states reached), and a case
            // costs no device set-up (the long mode runs a million).
            static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
            let f = F.get_or_init(fixture);
            let (resp, data) = f.run_io(lun, &cdb, &data_out, room);
            prop_assert!(data.len() <= room as usize);
            match resp.status {
                Status::Good => prop_assert!(resp.sense.is_empty()),
                Status::CheckCondition => {
                    prop_assert_eq!(resp.sense.len(), 18);
                    prop_assert_eq!(resp.sense[0], 0x70);
                    prop_assert!(data.is_empty());
                }
                other => prop_assert!(false, "status {:?}", other),
            }
        }
    }
}

#[test]
fn read_capacity10_of_a_large_disk() {
    let dir = tempfile::tempdir().unwrap();
    // 2^32 + 1 blocks of 512 bytes (sparse): the last LBA, 1_0000_0000h,
    // does not fit in READ CAPACITY(10).
    let dev = Device::open(&DeviceConfig {
        path: dir.path().join("big.img"),
        size: ((1u64 << 32) + 1) * 512,
        block_size: 512,
        zoned: None,
    })
    .unwrap();
    let f = Fixture {
        _dir: dir,
        target: Target::new(vec![Arc::new(dev)]),
    };
    assert_eq!(
        f.good(0, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        [0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x02, 0x00]
    );
    let d = f.good(
        0,
        &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0],
    );
    assert_eq!(d[..12], [0, 0, 0, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0x02, 0x00]);
    // The short block descriptor of MODE SENSE(6) says FFFF_FFFFh blocks.
    let d = f.good(0, &[0x1a, 0x00, 0x08, 0x00, 0xff, 0x00]);
    assert_eq!(d[4..12], [0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x02, 0x00]);
}
