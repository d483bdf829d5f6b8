//! The region against literal bytes of the layout in vhost-user.rst
//! ("Inflight I/O tracking", split virtqueue).

use std::{
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::FileExt,
};

use super::*;

fn bytes(f: &mut File) -> Vec<u8> {
    let mut v = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn queue_regions_are_header_plus_16_bytes_per_descriptor_rounded_to_64() {
    assert_eq!(queue_region_size(4), 128); // 16 + 4 * 16 = 80 -> 128
    assert_eq!(queue_region_size(128), 2112); // 16 + 2048 = 2064 -> 2112
    assert_eq!(queue_region_size(1024), 16448);
}

#[test]
fn a_new_region_has_version_1_and_desc_num_in_every_queue_header() {
    let (_r, mut f, size) = InflightRegion::create(2, 4).unwrap();
    assert_eq!(size, 256);
    let b = bytes(&mut f);
    assert_eq!(b.len(), 256);
    for q in [0usize, 128] {
        #[rustfmt::skip]
        let header = [
            0, 0, 0, 0, 0, 0, 0, 0, // features
            1, 0,                   // version 1
            4, 0,                   // desc_num 4
            0, 0,                   // last_batch_head
            0, 0,                   // used_idx
        ];
        assert_eq!(b[q..q + 16], header);
        assert!(b[q + 16..q + 128].iter().all(|&x| x == 0));
    }
    assert!(matches!(
        InflightRegion::create(1, 6),
        Err(InflightError::BadQueueSize(6))
    ));
}

#[test]
fn take_and_complete_write_the_documented_fields() {
    let (r, mut f, _) = InflightRegion::create(2, 4).unwrap();
    // Queue 1, head 2 taken with counter 0x0102030405060708.
    r.begin(1, 2, 0x0102_0304_0506_0708);
    let b = bytes(&mut f);
    let d = 128 + 16 + 2 * 16;
    #[rustfmt::skip]
    let taken = [
        1,                                    // inflight
        0, 0, 0, 0, 0,                        // padding
        0, 0,                                 // next
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // counter, LE
    ];
    assert_eq!(b[d..d + 16], taken);
    // Queue 0 untouched.
    assert!(b[16..128].iter().all(|&x| x == 0));

    // Head 3 taken, then head 2 and head 3 completed: used idx 1, then 2.
    r.begin(1, 3, 9);
    r.before_used(1, 2);
    r.after_used(1, 2, 1);
    r.before_used(1, 3);
    let b = bytes(&mut f);
    // last_batch_head 3, used_idx still 1; desc[3].next = 2 (the previous
    // last_batch_head), still in flight.
    assert_eq!(b[128 + 12..128 + 16], [3, 0, 1, 0]);
    assert_eq!(b[d], 0);
    let d3 = 128 + 16 + 3 * 16;
    assert_eq!(
        b[d3..d3 + 16],
        [1, 0, 0, 0, 0, 0, 2, 0, 9, 0, 0, 0, 0, 0, 0, 0]
    );
    r.after_used(1, 3, 2);
    let b = bytes(&mut f);
    assert_eq!(b[128 + 12..128 + 16], [3, 0, 2, 0]);
    assert_eq!(b[d3], 0);
}

/// A region as a dead backend left it, written byte by byte.
fn dead_backend_region(used_idx: u16, last_batch_head: u16) -> File {
    let mut f = tmpfile().unwrap();
    let mut b = vec![0u8; 128];
    b[8] = 1; // version
    b[10] = 4; // desc_num
    b[12..14].copy_from_slice(&last_batch_head.to_le_bytes());
    b[14..16].copy_from_slice(&used_idx.to_le_bytes());
    // desc[0]: in flight, counter 7. desc[1]: in flight, counter 5.
    // desc[2]: done (counter 6). desc[3]: in flight, counter 8, next 1.
    for (head, inflight, next, counter) in
        [(0, 1, 0, 7u64), (1, 1, 0, 5), (2, 0, 0, 6), (3, 1, 1, 8)]
    {
        let d = 16 + 16 * head;
        b[d] = inflight;
        b[d + 6..d + 8].copy_from_slice(&u16::to_le_bytes(next));
        b[d + 8..d + 16].copy_from_slice(&counter.to_le_bytes());
    }
    f.write_all(&b).unwrap();
    f
}

#[test]
fn recovery_lists_inflight_heads_in_counter_order() {
    let f = dead_backend_region(10, 2);
    let r = InflightRegion::map(f.try_clone().unwrap(), 0, 128, 1, 4).unwrap();
    // The used ring agrees with the region: nothing to fix.
    let got = r.recover(0, 10);
    assert_eq!(
        got,
        Recovered {
            heads: vec![1, 0, 3],
            next_counter: 9,
            fixed_last_batch: false,
        }
    );
}

#[test]
fn recovery_clears_a_last_batch_that_reached_the_used_ring() {
    // The backend put heads 3 then 1 on the used ring (idx 10 -> 12) and
    // died before clearing them: last_batch_head 3, desc[3].next = 1.
    let f = dead_backend_region(10, 3);
    let r = InflightRegion::map(f.try_clone().unwrap(), 0, 128, 1, 4).unwrap();
    let got = r.recover(0, 12);
    assert_eq!(got.heads, vec![0]);
    assert!(got.fixed_last_batch);
    let mut hdr = [0u8; 4];
    f.read_exact_at(&mut hdr, 12).unwrap();
    assert_eq!(hdr, [3, 0, 12, 0]); // used_idx now 12
    let mut d = [0u8; 1];
    f.read_exact_at(&mut d, 16 + 16 * 3).unwrap();
    assert_eq!(d, [0]);
    f.read_exact_at(&mut d, 16 + 16).unwrap();
    assert_eq!(d, [0]);
    // Nothing left to fix the second time.
    assert!(!r.recover(0, 12).fixed_last_batch);
}

#[test]
fn a_region_too_small_for_its_queues_is_refused() {
    let f = dead_backend_region(0, 0);
    assert!(matches!(
        InflightRegion::map(f, 0, 128, 2, 4),
        Err(InflightError::TooSmall {
            need: 256,
            have: 128,
            ..
        })
    ));
}

#[test]
fn accesses_past_the_last_queue_or_descriptor_are_ignored() {
    let (r, mut f, _) = InflightRegion::create(1, 4).unwrap();
    r.begin(1, 0, 5);
    r.begin(0, 4, 5);
    r.before_used(0, 9);
    r.after_used(3, 0, 1);
    assert_eq!(r.recover(2, 0), Recovered::default());
    let b = bytes(&mut f);
    assert!(b[16..].iter().all(|&x| x == 0));
}
