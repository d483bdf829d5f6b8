//! Fixes found by the differential run against QEMU's NVMe controller
//! (guest-tools/src/diffnvme), each against the spec's own words.

use super::*;

/// ZNS 1.1, 2.1.1.3.3: "Transition ZSEO:ZSC: The zone shall transition
/// from the ZSEO:Explicitly Opened state to the ZSC:Closed state upon
/// successful completion of a Zone Management Send command with a Zone
/// Send Action of Close Zone" (2.1.1.3.2 likewise for ZSIO); unlike ZBC-2's
/// CLOSE ZONE there is no rule sending a zone whose write pointer is at
/// its start to Empty. A Closed zone holds an Active Resource (Figure 8).
#[test]
fn close_zone_keeps_an_unwritten_open_zone_closed() {
    let r = rig();
    // Explicitly open zone 1 (ZSLBA 16), nothing written.
    assert_eq!(status(&r.io, zms(16, 0x03, false), &[]), 0);
    let (st, d) = report(&r, 16, 128, 0, false);
    assert_eq!((st, zs(&d, 0)), (0, 0x3));
    // Close Zone: ZSC (4h), write pointer still at the zone start.
    assert_eq!(status(&r.io, zms(16, 0x01, false), &[]), 0);
    let (st, d) = report(&r, 16, 128, 0, false);
    assert_eq!((st, zs(&d, 0)), (0, 0x4));
    assert_eq!(u64_at(&d, 64 + 24), 16, "WP");
    // Listed by the Closed filter (ZRASF 04h), not by the Empty one.
    let (_, d) = report(&r, 0, 4096, 0x04, false);
    assert_eq!(u64_at(&d, 0), 1);
    let (_, d) = report(&r, 0, 4096, 0x01, false);
    assert_eq!(u64_at(&d, 0), 7);
    // With Select All too: open zone 2, close every open zone.
    assert_eq!(status(&r.io, zms(32, 0x03, false), &[]), 0);
    assert_eq!(status(&r.io, zms(0, 0x01, true), &[]), 0);
    let (_, d) = report(&r, 32, 128, 0, false);
    assert_eq!(zs(&d, 0), 0x4);
}

/// ZNS 1.1 Figure 17 (Read, Command Specific Status Values): "B8h Zone
/// Boundary Error: The command specifies logical blocks in more than one
/// zone", and Figure 11 note 1: Read is affected only "if the Read Across
/// Zone Boundaries bit ... is cleared". We set RAZB (OZCS bit 0), and ZNS
/// has no gap zones (the LBAs past ZCAP belong to the zone), so a read
/// from past zone 0's capacity into zone 1 succeeds (we returned Zone
/// Boundary Error, the ZBC-2 gap-zone rule).
#[test]
fn read_from_past_capacity_into_the_next_zone() {
    let r = rig();
    let (_, d) = identify(&r, 0x05, 1, 0x02);
    assert_eq!(u16_at(&d, 2) & 1, 1, "OZCS.RAZB");
    // Zone 0: LBAs 0..16, capacity 12; read LBAs 14..18.
    assert_eq!(status(&r.io, rw(0x02, 1, 14, 4, 4096), &[]), 0);
    // Wholly past the capacity, as before.
    assert_eq!(status(&r.io, rw(0x02, 1, 12, 4, 4096), &[]), 0);
}

/// ZNS 1.1, 2.1.1.3.1 "Transition ZSE:ZSF" on Finish Zone, and 2.1.1.4.1
/// g): "A transition from the ZSE:Empty state to the ZSF:Full state shall
/// not impact resource usage of Active Resources and Open Resources." So
/// at the active limit it succeeds (ZBC-2 4.4.3.5.5's EMPTY to FULL
/// through an active condition is a ZBC rule; we refused with Too Many
/// Active Zones).
#[test]
fn finish_of_an_empty_zone_needs_no_active_resource() {
    let r = rig();
    // Three active zones (the limit): 0 and 1 closed, 2 open.
    for z in [0u64, 16] {
        assert_eq!(status(&r.io, zms(z, 0x03, false), &[]), 0);
        assert_eq!(status(&r.io, zms(z, 0x01, false), &[]), 0);
    }
    assert_eq!(status(&r.io, zms(32, 0x03, false), &[]), 0);
    // Opening a fourth is refused: the limit is reached.
    assert_eq!(status(&r.io, zms(48, 0x03, false), &[]) & 0x7ff, 0x1bd);
    // Finishing the empty zone 3 is not.
    assert_eq!(status(&r.io, zms(48, 0x02, false), &[]), 0);
    let (_, d) = report(&r, 48, 128, 0, false);
    assert_eq!(zs(&d, 0), 0xE);
}
