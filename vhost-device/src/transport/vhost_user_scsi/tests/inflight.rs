//! Inflight tracking through the request queue: what a backend records in
//! the region, and a replacement backend serving what a killed one left in
//! flight (the region's bytes as vhost-user.rst lays them out).

use std::{fs::File, os::unix::fs::FileExt};

use super::*;
use crate::transport::inflight::queue_region_size;

/// Queue 2 (the request queue) of a region of 3 queues of [`QUEUE_SIZE`].
fn queue2() -> u64 {
    2 * queue_region_size(QUEUE_SIZE) as u64
}

fn region_header(f: &File) -> [u8; 16] {
    let mut h = [0u8; 16];
    f.read_exact_at(&mut h, queue2()).unwrap();
    h
}

fn desc_state(f: &File, head: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    f.read_exact_at(&mut d, queue2() + 16 + 16 * u64::from(head))
        .unwrap();
    d
}

fn tur_chain(rig: &Rig, at: u16, resp: u64) {
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(resp, CMD_RESP_SIZE as u32, true),
        ],
        at,
    );
}

#[test]
fn the_protocol_feature_is_offered() {
    let rig = Rig::new();
    assert!(rig
        .backend
        .protocol_features()
        .contains(VhostUserProtocolFeatures::INFLIGHT_SHMFD));
}

#[test]
fn a_completed_request_is_recorded_and_cleared() {
    let rig = Rig::new();
    let (reply, file) = rig
        .backend
        .get_inflight_fd(&VhostUserInflight::new(0, 0, 3, QUEUE_SIZE))
        .unwrap();
    assert_eq!(reply.mmap_size, 3 * queue_region_size(QUEUE_SIZE) as u64);
    assert_eq!(
        (reply.mmap_offset, reply.num_queues, reply.queue_size),
        (0, 3, QUEUE_SIZE)
    );
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    tur_chain(&rig, 3, RESP);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 1);
    // features 0, version 1, desc_num 16, last_batch_head 3, used_idx 1.
    assert_eq!(
        region_header(&file),
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 16, 0, 3, 0, 1, 0]
    );
    // Not in flight any more; counter 1 (the first taken: counters start
    // past the highest in the region, all 0 in a new one).
    assert_eq!(
        desc_state(&file, 3),
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[test]
fn a_replacement_backend_serves_what_the_killed_one_left_in_flight() {
    let mut rig = Rig::new();
    let (_, file) = rig
        .backend
        .get_inflight_fd(&VhostUserInflight::new(0, 0, 3, QUEUE_SIZE))
        .unwrap();
    // One request served (head 0, counter 1), then one taken (head 2,
    // counter 2) by a backend that died before answering it: as it left
    // the region. The ring base the frontend will send is past head 2.
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    tur_chain(&rig, 0, RESP);
    rig.kick_request_queue();
    tur_chain(&rig, 2, RESP + 0x100);
    file.write_all_at(&[1], queue2() + 16 + 32).unwrap();
    file.write_all_at(&2u64.to_le_bytes(), queue2() + 16 + 32 + 8)
        .unwrap();
    rig.vring.set_queue_next_avail(2);
    assert_eq!(rig.used_idx(), 1);

    // The replacement: a new backend, the same region handed back.
    rig.backend = ScsiBackend::new(rig.target.clone(), 1, rig.mem.clone());
    let size = 3 * queue_region_size(QUEUE_SIZE) as u64;
    rig.backend
        .set_inflight_fd(
            &VhostUserInflight::new(size, 0, 3, QUEUE_SIZE),
            file.try_clone().unwrap(),
        )
        .unwrap();
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 2, "the request in flight was answered");
    assert_eq!(rig.used(1), (2, CMD_RESP_SIZE as u32));
    let resp = parse_resp(&rig.read(RESP + 0x100, CMD_RESP_SIZE));
    expect_oracle(&rig, &TEST_UNIT_READY, &resp, &[], 0);
    // Taken again with counter 3, cleared; used_idx 2, last_batch_head 2;
    // the next chain taken gets counter 4.
    assert_eq!(
        desc_state(&file, 2),
        [0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(region_header(&file)[12..], [2, 0, 2, 0]);
    tur_chain(&rig, 4, RESP + 0x200);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 3);
    assert_eq!(desc_state(&file, 4)[8], 4);
}
