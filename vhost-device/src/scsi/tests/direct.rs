//! READ and WRITE through the transport's memory ([`super::VecMemory`],
//! which [`super::execute`] offers) against the same commands through the
//! streams ([`super::execute_via`] without memory): the same blocks, the same sense
//! data (SBC-4 READ (16) 5.16, WRITE (16) 5.51) from literal bytes.

use super::{execute, execute_via, fixed, fixture, invalid_cdb, Response, Status, Target};
use crate::storage::{
    fault::{BlockRange, FaultKind},
    BlockCount, Lba,
};

/// READ (16) / WRITE (16) of `blocks` blocks at `lba` (SBC-4 tables
/// "READ (16) command", "WRITE (16) command").
fn rw16(op: u8, lba: u8, blocks: u8) -> [u8; 16] {
    [op, 0, 0, 0, 0, 0, 0, 0, 0, lba, 0, 0, 0, blocks, 0, 0]
}

/// `cdb` with the data buffers as streams only.
fn execute_streams(t: &Target, cdb: &[u8], data_out: &[u8], room: u32) -> (Response, Vec<u8>) {
    execute_via(t, 1, cdb, data_out, room, None)
}

/// LUN 1 has 512-byte blocks.
fn pattern(seed: u8, blocks: usize) -> Vec<u8> {
    (0..blocks * 512).map(|i| (i % 251) as u8 ^ seed).collect()
}

#[test]
fn memory_and_streams_move_the_same_blocks() {
    let f = fixture();
    let t = &f.target;
    let a = pattern(0x11, 8);
    let b = pattern(0x22, 8);
    // Written through memory, read through the streams; and back.
    let (w, _) = execute(t, 1, &rw16(0x8a, 0, 8), &a, 0);
    assert_eq!(w.status, Status::Good);
    let (w, _) = execute_streams(t, &rw16(0x8a, 8, 8), &b, 0);
    assert_eq!(w.status, Status::Good);
    let (r, data) = execute_streams(t, &rw16(0x88, 0, 8), &[], 4096);
    assert_eq!((r.status, r.data_in_written), (Status::Good, 4096));
    assert_eq!(data, a);
    let (r, data) = execute(t, 1, &rw16(0x88, 8, 8), &[], 4096);
    assert_eq!((r.status, r.data_in_written), (Status::Good, 4096));
    assert_eq!(data, b);
    // Both at once, across the two writes.
    let (_, data) = execute(t, 1, &rw16(0x88, 4, 8), &[], 4096);
    assert_eq!(data[..2048], a[2048..]);
    assert_eq!(data[2048..], b[..2048]);
    // Data-in smaller than the transfer: the streams' path sends what fits.
    let (r, data) = execute(t, 1, &rw16(0x88, 0, 8), &[], 1000);
    assert_eq!((r.status, r.data_in_written), (Status::Good, 1000));
    assert_eq!(data, a[..1000]);
}

#[test]
fn memory_path_errors_keep_their_sense() {
    let f = fixture();
    let t = &f.target;
    let dev = &t.unit(1).unwrap().device;
    // Data-out shorter than the TRANSFER LENGTH: INVALID FIELD IN CDB at
    // byte 10 (WRITE (16) TRANSFER LENGTH), nothing written.
    let (r, _) = execute(t, 1, &rw16(0x8a, 0, 2), &[0x5a; 600], 0);
    assert_eq!(r.status, Status::CheckCondition);
    assert_eq!(r.sense, invalid_cdb(10, Some(7)));
    // A media error at LBA 5: MEDIUM ERROR, UNRECOVERED READ ERROR, VALID,
    // INFORMATION 5; no data-in.
    let bad = BlockRange::new(Lba::new(5), BlockCount::new(1));
    dev.faults().add(FaultKind::MediaError(bad), Some(1));
    let (r, data) = execute(t, 1, &rw16(0x88, 4, 2), &[], 1024);
    #[rustfmt::skip]
    assert_eq!(r.sense, [
        0xf0, 0, 0x03, 0, 0, 0, 0x05, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0,
    ]);
    assert!(data.is_empty());
    // A write error at LBA 7: MEDIUM ERROR, WRITE ERROR, INFORMATION 7.
    let bad = BlockRange::new(Lba::new(7), BlockCount::new(1));
    dev.faults().add(FaultKind::WriteError(bad), Some(1));
    let (r, _) = execute(t, 1, &rw16(0x8a, 6, 2), &pattern(1, 2), 0);
    #[rustfmt::skip]
    assert_eq!(r.sense, [
        0xf0, 0, 0x03, 0, 0, 0, 0x07, 0x0a, 0, 0, 0, 0, 0x0c, 0x00, 0, 0, 0, 0,
    ]);
    // Past the capacity (2048 blocks): LBA OUT OF RANGE.
    let mut far = rw16(0x88, 0, 1);
    far[6..10].copy_from_slice(&2048u32.to_be_bytes());
    let (r, _) = execute(t, 1, &far, &[], 512);
    assert_eq!(r.sense, fixed(0x05, 0x21, 0x00, [0, 0, 0]));
}
