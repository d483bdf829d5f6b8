//! Fixes found by the differential run against QEMU's NVMe controller
//! (guest-tools/src/diffnvme), each against the spec's own words.

use super::*;

/// ZNS 1.1, 2.1.1.3 (zone state machine): "ZSIO:ZSC" and "ZSEO:ZSC" — an
/// implicitly or explicitly opened zone transitions to Closed as a result
/// of a Close Zone; unlike ZBC-2's CLOSE ZONE there is no rule sending a
/// zone whose write pointer is at its start to Empty. A Closed zone stays
/// active (it counts against MAR) until reset or finished.
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
