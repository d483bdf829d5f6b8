//! VERIFY (16) (SBC-4 r22 5.35, table "VERIFY (16) command"; BYTCHK as
//! VERIFY (10), 5.33)
//! from literal CDB bytes: every BYTCHK value, every error it names, and
//! ZBC-2's read rules on a host-managed LU.

use super::{fixed, fixture, invalid_cdb, six_zones, Status, NONE};
use crate::storage::{
    fault::{BlockRange, FaultKind},
    BlockCount, Lba, ZoneType,
};

/// MISCOMPARE, MISCOMPARE DURING VERIFY OPERATION, VALID with INFORMATION
/// `offset` (fixed format: bytes 3-6).
fn miscompare(offset: u32) -> Vec<u8> {
    let [a, b, c, d] = offset.to_be_bytes();
    vec![
        0xf0, 0, 0x0e, a, b, c, d, 0x0a, 0, 0, 0, 0, 0x1d, 0x00, 0, 0, 0, 0,
    ]
}

/// 512-byte blocks of a pattern for LBA `lba` onwards.
fn pattern(lba: u8, blocks: usize) -> Vec<u8> {
    (0..blocks * 512)
        .map(|i| (i as u8) ^ lba.wrapping_mul(0x35))
        .collect()
}

#[test]
fn verify16_medium_and_compare() {
    let f = fixture();
    // WRITE(16) LBA 4, 2 blocks, on the disk LU (512-byte blocks).
    let data = pattern(4, 2);
    let write = [0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0];
    assert_eq!(f.run_io(1, &write, &data, 0).0.status, Status::Good);
    // BYTCHK 00b: the medium only, no Data-Out, no data-in.
    let medium = [0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0];
    assert!(f.good(1, &medium).is_empty());
    // DPO set: nothing changes.
    let dpo = [0x8f, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0];
    assert!(f.good(1, &dpo).is_empty());
    // BYTCHK 01b: both blocks compared with the Data-Out.
    let compare = [0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0];
    let (resp, data_in) = f.run_io(1, &compare, &data, 0);
    assert_eq!((resp.status, data_in.len()), (Status::Good, 0));
    // One byte differs, at offset 700 of the Data-Out (block 1, byte
    // 188): MISCOMPARE with INFORMATION 700 (2BCh).
    let mut wrong = data.clone();
    wrong[700] ^= 0xff;
    assert_eq!(f.sense(1, &compare, &wrong), miscompare(700));
    // Data-Out shorter than VERIFICATION LENGTH blocks: the field at
    // byte 10.
    assert_eq!(f.sense(1, &compare, &data[..512]), invalid_cdb(10, Some(7)));
}

#[test]
fn verify16_one_block_against_every_block() {
    let f = fixture();
    // Three equal blocks at LBA 8.
    let block = pattern(8, 1);
    let three = block.repeat(3);
    let write = [0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0x03, 0, 0];
    assert_eq!(f.run_io(1, &write, &three, 0).0.status, Status::Good);
    // BYTCHK 11b: one block of Data-Out, compared with each of the three.
    let same = [0x8f, 0x06, 0, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0x03, 0, 0];
    assert!(f.run_io(1, &same, &block, 0).1.is_empty());
    assert_eq!(f.run_io(1, &same, &block, 0).0.status, Status::Good);
    // LBA 10 (the third block) changed at byte 5: offset 2 * 512 + 5 of
    // the duplicated Data-Out buffer (405h).
    let mut third = block.clone();
    third[5] ^= 1;
    let write1 = [0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0x01, 0, 0];
    assert_eq!(f.run_io(1, &write1, &third, 0).0.status, Status::Good);
    assert_eq!(f.sense(1, &same, &block), miscompare(0x405));
}

#[test]
fn verify16_cdb_errors() {
    let f = fixture();
    // VRPROTECT 001b without protection information: INVALID FIELD IN
    // CDB at byte 1, bit 7 (the field's first bit), whatever its value.
    let vrprotect = [0x8f, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0];
    assert_eq!(f.sense(1, &vrprotect, &[]), invalid_cdb(1, Some(7)));
    let vrprotect = [0x8f, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0];
    assert_eq!(f.sense(1, &vrprotect, &[]), invalid_cdb(1, Some(7)));
    // BYTCHK 10b is reserved: byte 1, bit 2.
    let bytchk10 = [0x8f, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0];
    assert_eq!(f.sense(1, &bytchk10, &[]), invalid_cdb(1, Some(2)));
    // Reserved bits of byte 1 (3 and 0), GROUP NUMBER, NACA.
    let reserved = [0x8f, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0];
    assert_eq!(f.sense(1, &reserved, &[]), invalid_cdb(1, Some(3)));
    let reserved = [0x8f, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0];
    assert_eq!(f.sense(1, &reserved, &[]), invalid_cdb(1, Some(0)));
    let group = [0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0];
    assert_eq!(f.sense(1, &group, &[]), invalid_cdb(14, Some(0)));
    let naca = [0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0x04];
    assert_eq!(f.sense(1, &naca, &[]), invalid_cdb(15, Some(2)));
    // LBA 2047 + 2 blocks passes the last LBA (2047): LBA OUT OF RANGE.
    let past = [0x8f, 0, 0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0, 0x02, 0, 0];
    assert_eq!(f.sense(1, &past, &[]), fixed(0x05, 0x21, 0x00, NONE));
    // VERIFICATION LENGTH 8193 passes the MAXIMUM TRANSFER LENGTH (8192
    // blocks of 512 bytes, VPD B0h): the field at byte 10.
    let long = [0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x01, 0, 0];
    assert_eq!(f.sense(1, &long, &[]), invalid_cdb(10, Some(7)));
    // VERIFICATION LENGTH 0: nothing verified, GOOD, even with BYTCHK 01b
    // and no Data-Out.
    let nothing = [0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0];
    assert!(f.good(1, &nothing).is_empty());
    // Too short for a 16-byte CDB.
    assert_eq!(
        f.run_io(1, &[0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0)
            .0
            .status,
        Status::CheckCondition
    );
}

#[test]
fn verify16_media_error() {
    let f = fixture();
    // A media error at LBA 5 (fires once): BYTCHK 00b over LBA 4-5 is
    // MEDIUM ERROR, UNRECOVERED READ ERROR, VALID, INFORMATION 5.
    let bad = BlockRange::new(Lba::new(5), BlockCount::new(1));
    f.device(1)
        .faults()
        .add(FaultKind::MediaError(bad), Some(1));
    let medium = [0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x02, 0, 0];
    #[rustfmt::skip]
    assert_eq!(f.sense(1, &medium, &[]), [
        0xf0, 0, 0x03, 0, 0, 0, 0x05, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0,
    ]);
    // The rule expired: the same command is GOOD.
    assert!(f.good(1, &medium).is_empty());
}

#[test]
fn verify16_follows_zbc_read_rules() {
    // Host-managed, URSWRZ 0: 512-byte blocks, zone 0 conventional, zones
    // of 16 blocks.
    let f = six_zones(ZoneType::SequentialWriteRequired, false);
    // WRITE(10) 4 blocks at the write pointer of zone 32.
    let write = [0x2a, 0, 0, 0, 0, 0x20, 0, 0, 0x04, 0];
    assert_eq!(f.run_io(0, &write, &[7u8; 2048], 0).0.status, Status::Good);
    // Below the write pointer: GOOD, and it compares.
    let below = [0x8f, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0x04, 0, 0];
    assert_eq!(f.run_io(0, &below, &[7u8; 2048], 0).0.status, Status::Good);
    // Past the write pointer: ATTEMPT TO READ INVALID DATA (21h/06h).
    let past_wp = [0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x22, 0, 0, 0, 0x03, 0, 0];
    assert_eq!(f.sense(0, &past_wp, &[]), fixed(0x05, 0x21, 0x06, NONE));
    // Conventional -> sequential, and across two sequential zones: READ
    // BOUNDARY VIOLATION (21h/07h).
    let cross = [0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x0f, 0, 0, 0, 0x02, 0, 0];
    assert_eq!(f.sense(0, &cross, &[]), fixed(0x05, 0x21, 0x07, NONE));
    let cross = [0x8f, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x1f, 0, 0, 0, 0x02, 0, 0];
    assert_eq!(f.sense(0, &cross, &[]), fixed(0x05, 0x21, 0x07, NONE));
}

#[test]
fn verify16_is_reported_from_its_row() {
    let f = fixture();
    // REPORT SUPPORTED OPERATION CODES, one command (001b), 8Fh: the CDB
    // USAGE DATA (VRPROTECT and GROUP NUMBER not supported).
    let d = f.good(1, &[0xa3, 0x0c, 0x01, 0x8f, 0, 0, 0, 0, 0x01, 0x00, 0, 0]);
    // SUPPORT 011b, CDB SIZE 16.
    assert_eq!(d[..4], [0x00, 0x03, 0x00, 0x10]);
    // Byte 1: DPO, BYTCHK; LBA and VERIFICATION LENGTH; no GROUP NUMBER.
    assert_eq!((d[4], d[5]), (0x8f, 0x16));
    assert!(d[6..18].iter().all(|&b| b == 0xff));
    assert_eq!(d[18..], [0x00, 0x00]);
}
