//! Notifications per batch (2.7.10) and adaptive polling, through the
//! same `handle_event` path the workers use. The call descriptor is one
//! end of a socket pair: every signal writes an 8-byte counter to it, so
//! the bytes waiting on the other end count the signals.

use std::{
    fs::File,
    io::{ErrorKind, Read},
    os::{fd::OwnedFd, unix::net::UnixStream},
    time::Duration,
};

use super::*;

/// Give the rig's vring a call descriptor; returns the end to count on.
fn counted_call(rig: &Rig) -> UnixStream {
    let (call, count) = UnixStream::pair().unwrap();
    rig.vring.set_call(Some(File::from(OwnedFd::from(call))));
    count.set_nonblocking(true).unwrap();
    count
}

/// Signals sent since the last look.
fn signals(count: &mut UnixStream) -> usize {
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        match count.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(n % 8, 0, "partial signal");
    n / 8
}

/// `n` TEST UNIT READY chains on the available ring.
fn push_tur(rig: &Rig, n: u16) {
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    let base = rig.used_idx();
    for i in 0..n {
        rig.push(
            &[
                desc(REQ, CMD_REQ_SIZE as u32, false),
                desc(RESP, CMD_RESP_SIZE as u32, true),
            ],
            2 * ((base + i) % (QUEUE_SIZE / 2)),
        );
    }
}

/// Set the driver's used_event (the word after the available ring).
fn set_used_event(rig: &Rig, v: u16) {
    let avail = rig.rings.1;
    rig.mem
        .memory()
        .write_obj(v, avail.unchecked_add(4 + 2 * u64::from(QUEUE_SIZE)))
        .unwrap();
}

#[test]
fn without_event_idx_one_signal_per_batch() {
    let rig = Rig::new();
    let mut count = counted_call(&rig);
    push_tur(&rig, 5);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 5);
    // One per batch, not one per chain.
    assert_eq!(signals(&mut count), 1);
    // A kick with nothing new sends nothing.
    rig.kick_request_queue();
    assert_eq!(signals(&mut count), 0);
    push_tur(&rig, 2);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 7);
    assert_eq!(signals(&mut count), 1);
}

#[test]
fn event_idx_signals_only_when_the_batch_crosses_used_event() {
    let rig = Rig::new();
    rig.vring.set_queue_event_idx(true);
    let mut count = counted_call(&rig);
    // The driver wants to hear after used entry 10: a batch of 4 does not
    // reach it.
    set_used_event(&rig, 10);
    push_tur(&rig, 4);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 4);
    assert_eq!(signals(&mut count), 0);
    // used_event 5 lies in the next batch (entries 4..8): one signal.
    set_used_event(&rig, 5);
    push_tur(&rig, 4);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 8);
    assert_eq!(signals(&mut count), 1);
    // used_event 7 was passed already: nothing for the next batch.
    // (Checked after each completion: entry 6 passes 5, and 7, 8 do not
    // ask again.)
    push_tur(&rig, 3);
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 11);
    assert_eq!(signals(&mut count), 0);
}

#[test]
fn polling_backend_serves_and_signals_like_one_without() {
    let rig = Rig::new();
    let backend = ScsiBackend::new(rig.target.clone(), 1, rig.mem.clone())
        .with_poll(Duration::from_micros(200));
    let mut count = counted_call(&rig);
    for round in 1..=6u16 {
        push_tur(&rig, 2);
        backend
            .handle_event(0, EventSet::IN, std::slice::from_ref(&rig.vring), 1)
            .unwrap();
        assert_eq!(rig.used_idx(), 2 * round);
        assert_eq!(signals(&mut count), 1, "round {round}");
        let (_, len) = rig.used(u64::from(2 * round - 1));
        assert_eq!(len, CMD_RESP_SIZE as u32);
    }
    // The window never exceeds the maximum, and the control queue never
    // polls.
    assert!(lock(&backend.polls[FIRST_REQUEST_QUEUE]).window() <= Duration::from_micros(200));
    assert_eq!(lock(&backend.polls[CONTROL_QUEUE]).window(), Duration::ZERO);
}
