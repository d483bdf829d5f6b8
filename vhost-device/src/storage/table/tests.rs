//! Tests of the zone state machine.

use super::*;
use crate::storage::zone::ZoneCondition::*;

fn geometry(max_open: u32, max_active: u32) -> ZoneGeometry {
    ZoneGeometry {
        zone_len: BlockCount::new(16),
        zone_cap: BlockCount::new(12),
        conventional: 1,
        max_open,
        max_active,
        sequential: ZoneType::SequentialWriteRequired,
        unrestricted_reads: true,
    }
}

fn table(max_open: u32, max_active: u32) -> ZoneTable {
    ZoneTable::new(geometry(max_open, max_active), 6)
}

/// Six 16-block zones, one conventional, sequential write preferred.
fn preferred(max_open: u32) -> ZoneTable {
    ZoneTable::new(
        ZoneGeometry {
            zone_cap: BlockCount::new(16),
            sequential: ZoneType::SequentialWritePreferred,
            ..geometry(max_open, 0)
        },
        6,
    )
}

/// Six 16-block zones (no gaps), one conventional, URSWRZ = 0.
fn restricted() -> ZoneTable {
    ZoneTable::new(
        ZoneGeometry {
            zone_cap: BlockCount::new(16),
            unrestricted_reads: false,
            ..geometry(0, 0)
        },
        6,
    )
}

fn write(t: &mut ZoneTable, lba: u64, n: u64) -> Result<()> {
    let plan = t.check_write(Lba::new(lba), BlockCount::new(n))?;
    t.commit_write(plan);
    Ok(())
}

fn cond(t: &ZoneTable, z: usize) -> ZoneCondition {
    t.zones()[z].cond
}

#[test]
fn layout() {
    let t = table(0, 0);
    assert_eq!(t.zones().len(), 6);
    assert_eq!(t.zones()[0].zone_type, ZoneType::Conventional);
    assert_eq!(t.zones()[0].cond, NotWritePointer);
    assert_eq!(t.zones()[1].zone_type, ZoneType::SequentialWriteRequired);
    assert_eq!(t.zones()[1].start, Lba::new(16));
    assert_eq!(t.zones()[1].cap, BlockCount::new(12));
    assert_eq!(t.zones()[5].end(), Lba::new(96));
}

#[test]
fn sequential_write_rules() {
    let mut t = table(0, 0);
    assert!(matches!(
        write(&mut t, 17, 1),
        Err(StorageError::UnalignedWrite { wp, .. }) if wp == Lba::new(16)
    ));
    write(&mut t, 16, 4).unwrap();
    assert_eq!(cond(&t, 1), ImplicitOpen);
    assert_eq!(t.zones()[1].wp, Lba::new(20));
    // Crossing the zone end is a boundary violation, whatever the wp.
    assert!(matches!(
        write(&mut t, 20, 13),
        Err(StorageError::WriteBoundary { .. })
    ));
    // Past the capacity but inside the zone.
    assert!(matches!(
        write(&mut t, 20, 9),
        Err(StorageError::BeyondZoneCapacity { .. })
    ));
    write(&mut t, 20, 8).unwrap();
    assert_eq!(cond(&t, 1), Full);
    assert_eq!(t.zones()[1].wp, Lba::new(28));
    assert!(matches!(
        write(&mut t, 28, 1),
        Err(StorageError::ZoneFull { zone }) if zone == Lba::new(16)
    ));
}

#[test]
fn conventional_writes_anywhere_but_not_into_sequential() {
    let mut t = table(0, 0);
    write(&mut t, 5, 3).unwrap();
    write(&mut t, 0, 16).unwrap();
    assert!(matches!(
        write(&mut t, 10, 8),
        Err(StorageError::WriteBoundary { .. })
    ));
    assert_eq!(cond(&t, 0), NotWritePointer);
}

#[test]
fn explicit_open_close_finish_reset() {
    let mut t = table(0, 0);
    t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert_eq!(cond(&t, 2), ExplicitOpen);
    // Closing an empty open zone makes it EMPTY.
    t.apply(ZoneAction::Close, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert_eq!(cond(&t, 2), Empty);
    write(&mut t, 32, 2).unwrap();
    t.apply(ZoneAction::Close, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert_eq!(cond(&t, 2), Closed);
    t.apply(ZoneAction::Finish, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert_eq!(cond(&t, 2), Full);
    assert_eq!(t.zones()[2].wp, Lba::new(44));
    let reset = t
        .apply(ZoneAction::Reset, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert_eq!(reset, vec![2]);
    assert_eq!(cond(&t, 2), Empty);
    assert_eq!(t.zones()[2].wp, Lba::new(32));
}

#[test]
fn zone_action_errors_change_nothing() {
    let mut t = table(0, 0);
    assert!(matches!(
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(17))),
        Err(StorageError::NotZoneStart { .. })
    ));
    assert!(matches!(
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(0))),
        Err(StorageError::ConventionalZone { .. })
    ));
    assert!(matches!(
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(96))),
        Err(StorageError::NotZoneStart { .. })
    ));
    assert!(t.zones().iter().skip(1).all(|z| z.cond == Empty));
}

#[test]
fn implicit_open_evicted_at_open_limit() {
    let mut t = table(2, 0);
    write(&mut t, 16, 1).unwrap();
    write(&mut t, 32, 1).unwrap();
    // A third implicit open closes the oldest implicitly open zone.
    write(&mut t, 48, 1).unwrap();
    assert_eq!(cond(&t, 1), Closed);
    assert_eq!(cond(&t, 2), ImplicitOpen);
    assert_eq!(cond(&t, 3), ImplicitOpen);
    // Explicit opens are not evicted.
    t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(64)))
        .unwrap();
    t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(80)))
        .unwrap();
    assert!(matches!(
        write(&mut t, 16 + 1, 1),
        Err(StorageError::InsufficientZoneResources { .. })
    ));
    assert_eq!(cond(&t, 1), Closed);
}

#[test]
fn active_limit() {
    let mut t = table(0, 2);
    write(&mut t, 16, 1).unwrap();
    t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert!(matches!(
        write(&mut t, 48, 1),
        Err(StorageError::InsufficientZoneResources { .. })
    ));
    assert!(matches!(
        t.apply(ZoneAction::Finish, ZoneTarget::One(Lba::new(48))),
        Err(StorageError::InsufficientZoneResources { .. })
    ));
    assert_eq!(cond(&t, 3), Empty);
}

#[test]
fn all_actions() {
    let mut t = table(0, 0);
    write(&mut t, 16, 1).unwrap();
    write(&mut t, 32, 1).unwrap();
    t.apply(ZoneAction::Close, ZoneTarget::All).unwrap();
    assert_eq!((cond(&t, 1), cond(&t, 2)), (Closed, Closed));
    t.apply(ZoneAction::Open, ZoneTarget::All).unwrap();
    assert_eq!((cond(&t, 1), cond(&t, 2)), (ExplicitOpen, ExplicitOpen));
    assert_eq!(cond(&t, 3), Empty);
    t.apply(ZoneAction::Finish, ZoneTarget::All).unwrap();
    assert_eq!((cond(&t, 1), cond(&t, 2), cond(&t, 3)), (Full, Full, Empty));
    let reset = t.apply(ZoneAction::Reset, ZoneTarget::All).unwrap();
    assert_eq!(reset, vec![1, 2]);
    assert!(t.zones().iter().skip(1).all(|z| z.cond == Empty));
}

#[test]
fn open_all_is_all_or_nothing() {
    let mut t = table(1, 0);
    write(&mut t, 16, 1).unwrap();
    write(&mut t, 32, 1).unwrap(); // evicts zone 1 -> CLOSED
    t.apply(ZoneAction::Close, ZoneTarget::All).unwrap();
    assert!(matches!(
        t.apply(ZoneAction::Open, ZoneTarget::All),
        Err(StorageError::InsufficientZoneResources { .. })
    ));
    assert_eq!((cond(&t, 1), cond(&t, 2)), (Closed, Closed));
}

#[test]
fn read_only_and_offline_release_resources_and_refuse() {
    let mut t = table(2, 2);
    write(&mut t, 16, 2).unwrap();
    t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    assert_eq!((t.open, t.active), (2, 2));
    assert!(t.set_unavailable(Lba::new(16), ReadOnly).unwrap());
    assert!(!t.set_unavailable(Lba::new(16), ReadOnly).unwrap());
    assert!(t.set_unavailable(Lba::new(32), Offline).unwrap());
    assert_eq!((t.open, t.active), (0, 0));
    assert!(t.implicit_lru.is_empty());
    // READ ONLY: readable, not writable, no zone action applies.
    t.check_read(Lba::new(16), BlockCount::new(4)).unwrap();
    assert!(matches!(
        write(&mut t, 18, 1),
        Err(StorageError::ZoneUnavailable { cond: ReadOnly, .. })
    ));
    for a in [
        ZoneAction::Open,
        ZoneAction::Close,
        ZoneAction::Finish,
        ZoneAction::Reset,
    ] {
        assert!(matches!(
            t.apply(a, ZoneTarget::One(Lba::new(16))),
            Err(StorageError::ZoneUnavailable { cond: ReadOnly, .. })
        ));
        assert!(matches!(
            t.apply(a, ZoneTarget::One(Lba::new(32))),
            Err(StorageError::ZoneUnavailable { cond: Offline, .. })
        ));
    }
    // OFFLINE: no reads either.
    assert!(matches!(
        t.check_read(Lba::new(32), BlockCount::new(4)),
        Err(StorageError::ZoneUnavailable { cond: Offline, .. })
    ));
    // ALL skips them.
    assert_eq!(
        t.apply(ZoneAction::Reset, ZoneTarget::All).unwrap(),
        Vec::<usize>::new()
    );
    t.apply(ZoneAction::Finish, ZoneTarget::All).unwrap();
    assert_eq!((cond(&t, 1), cond(&t, 2)), (ReadOnly, Offline));
    // READ ONLY may go OFFLINE; OFFLINE is final; nothing else is set.
    assert!(matches!(
        t.set_unavailable(Lba::new(32), ReadOnly),
        Err(StorageError::InvalidConditionChange { .. })
    ));
    assert!(matches!(
        t.set_unavailable(Lba::new(48), Full),
        Err(StorageError::InvalidConditionChange { .. })
    ));
    assert!(matches!(
        t.set_unavailable(Lba::new(0), Offline),
        Err(StorageError::ConventionalZone { .. })
    ));
    assert!(matches!(
        t.set_unavailable(Lba::new(49), Offline),
        Err(StorageError::NotZoneStart { .. })
    ));
    assert_eq!(cond(&t, 3), Empty);
    assert!(t.set_unavailable(Lba::new(16), Offline).unwrap());
}

#[test]
fn write_preferred_zones_take_writes_anywhere() {
    let mut t = preferred(1);
    assert_eq!(t.zones()[1].zone_type, ZoneType::SequentialWritePreferred);
    // At the write pointer: sequential, no NON_SEQ.
    write(&mut t, 16, 2).unwrap();
    assert_eq!(
        (cond(&t, 1), t.zones()[1].wp, t.zones()[1].non_seq),
        (ImplicitOpen, Lba::new(18), false)
    );
    // Away from it: allowed, NON_SEQ set, the write pointer moves to
    // the end of the write only if that is past it.
    write(&mut t, 24, 2).unwrap();
    assert_eq!(
        (t.zones()[1].wp, t.zones()[1].non_seq),
        (Lba::new(26), true)
    );
    write(&mut t, 16, 1).unwrap();
    assert_eq!(t.zones()[1].wp, Lba::new(26));
    // Across zones, from a conventional zone on, and into a FULL zone:
    // a host aware device takes writes like a disk. No open limit.
    write(&mut t, 10, 30).unwrap();
    assert_eq!((cond(&t, 1), cond(&t, 2)), (Full, ImplicitOpen));
    assert_eq!(
        (t.zones()[2].wp, t.zones()[2].non_seq),
        (Lba::new(40), false)
    );
    write(&mut t, 20, 1).unwrap();
    assert_eq!(cond(&t, 1), Full);
    write(&mut t, 52, 4).unwrap();
    assert_eq!(
        (cond(&t, 3), t.zones()[3].wp, t.zones()[3].non_seq),
        (ImplicitOpen, Lba::new(56), true)
    );
    assert_eq!((t.open, t.active), (0, 0));
    // OPEN ZONE and OPEN ALL are not limited either.
    t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(80)))
        .unwrap();
    t.apply(ZoneAction::Close, ZoneTarget::All).unwrap();
    t.apply(ZoneAction::Open, ZoneTarget::All).unwrap();
    assert_eq!(
        (cond(&t, 2), cond(&t, 3), cond(&t, 5)),
        (ExplicitOpen, ExplicitOpen, Empty)
    );
    // Reset ends the non-sequential write resources.
    t.apply(ZoneAction::Reset, ZoneTarget::One(Lba::new(48)))
        .unwrap();
    assert_eq!(
        (cond(&t, 3), t.zones()[3].wp, t.zones()[3].non_seq),
        (Empty, Lba::new(48), false)
    );
    // Still not into READ ONLY or OFFLINE zones, nor past the device.
    t.set_unavailable(Lba::new(80), ReadOnly).unwrap();
    assert!(matches!(
        write(&mut t, 78, 4),
        Err(StorageError::ZoneUnavailable { .. })
    ));
    assert!(matches!(
        write(&mut t, 95, 2),
        Err(StorageError::OutOfRange { .. })
    ));
}

#[test]
fn restricted_reads() {
    let mut t = restricted();
    write(&mut t, 16, 4).unwrap();
    // Below the write pointer: fine; reaching past it: unwritten.
    t.check_read(Lba::new(16), BlockCount::new(4)).unwrap();
    assert!(matches!(
        t.check_read(Lba::new(18), BlockCount::new(3)),
        Err(StorageError::UnwrittenRead { .. })
    ));
    assert!(matches!(
        t.check_read(Lba::new(40), BlockCount::new(1)),
        Err(StorageError::UnwrittenRead { .. })
    ));
    // Crossing a zone boundary is a boundary violation first, even
    // between two FULL zones.
    t.apply(ZoneAction::Finish, ZoneTarget::One(Lba::new(16)))
        .unwrap();
    t.apply(ZoneAction::Finish, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    t.check_read(Lba::new(16), BlockCount::new(16)).unwrap();
    assert!(matches!(
        t.check_read(Lba::new(30), BlockCount::new(4)),
        Err(StorageError::ReadBoundary { .. })
    ));
    // READ ONLY zones read whole; conventional zones are unrestricted.
    write(&mut t, 48, 1).unwrap();
    t.set_unavailable(Lba::new(48), ReadOnly).unwrap();
    t.check_read(Lba::new(48), BlockCount::new(16)).unwrap();
    t.check_read(Lba::new(0), BlockCount::new(16)).unwrap();
    // With URSWRZ = 1 all of these are fine.
    let mut t = ZoneTable::new(
        ZoneGeometry {
            zone_cap: BlockCount::new(16),
            ..geometry(0, 0)
        },
        6,
    );
    write(&mut t, 16, 4).unwrap();
    t.check_read(Lba::new(18), BlockCount::new(30)).unwrap();
}

#[test]
fn zone_ranges_are_all_or_nothing() {
    let mut t = table(3, 3);
    let range = |start: u64, count: u32| ZoneTarget::Range {
        start: Lba::new(start),
        count,
    };
    // Count 0 is one zone.
    t.apply(ZoneAction::Open, range(16, 0)).unwrap();
    assert_eq!((cond(&t, 1), cond(&t, 2)), (ExplicitOpen, Empty));
    t.apply(ZoneAction::Close, range(16, 1)).unwrap();
    // Past the last zone, from a conventional zone, or not a zone
    // start: refused, nothing changes.
    assert!(matches!(
        t.apply(ZoneAction::Finish, range(64, 3)),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        t.apply(ZoneAction::Finish, range(0, 2)),
        Err(StorageError::ConventionalZone { .. })
    ));
    assert!(matches!(
        t.apply(ZoneAction::Finish, range(17, 2)),
        Err(StorageError::NotZoneStart { .. })
    ));
    // A READ ONLY zone inside the range refuses the whole range.
    t.set_unavailable(Lba::new(80), ReadOnly).unwrap();
    assert!(matches!(
        t.apply(ZoneAction::Finish, range(64, 2)),
        Err(StorageError::ZoneUnavailable {
            zone,
            cond: ReadOnly
        }) if zone == Lba::new(80)
    ));
    assert_eq!(cond(&t, 4), Empty);
    // Four zones do not fit three open resources: none opens.
    write(&mut t, 16, 1).unwrap();
    assert!(matches!(
        t.apply(ZoneAction::Open, range(16, 4)),
        Err(StorageError::InsufficientZoneResources { .. })
    ));
    assert_eq!(
        (cond(&t, 1), cond(&t, 2), cond(&t, 3)),
        (ImplicitOpen, Empty, Empty)
    );
    // Three do, the implicitly open one included (it is not evicted).
    t.apply(ZoneAction::Open, range(16, 3)).unwrap();
    assert_eq!(
        (cond(&t, 1), cond(&t, 2), cond(&t, 3)),
        (ExplicitOpen, ExplicitOpen, ExplicitOpen)
    );
    let reset = t.apply(ZoneAction::Reset, range(16, 3)).unwrap();
    assert_eq!(reset, vec![1, 2, 3]);
    assert_eq!((t.open, t.active), (0, 0));
    // FINISH of EMPTY zones needs active resources: with 2 active
    // zones, two EMPTY zones do not fit a limit of 3, one does.
    write(&mut t, 16, 1).unwrap();
    write(&mut t, 32, 1).unwrap();
    assert!(matches!(
        t.apply(ZoneAction::Finish, range(48, 2)),
        Err(StorageError::InsufficientZoneResources { .. })
    ));
    assert_eq!((cond(&t, 3), cond(&t, 4)), (Empty, Empty));
    t.apply(ZoneAction::Finish, range(32, 2)).unwrap();
    assert_eq!((cond(&t, 2), cond(&t, 3)), (Full, Full));
    assert_eq!(t.active, 1);
}

/// The three places ZBC-2 and ZNS 1.1 differ, each a ZoneRules knob:
/// the default keeps ZBC-2's, all off gives ZNS's.
#[test]
fn zone_rules_pick_the_model() {
    let zns = ZoneRules {
        close_unwritten_to_empty: false,
        capacity_bounds_reads: false,
        finish_empty_takes_active: false,
    };
    for (rules, zbc) in [(ZoneRules::default(), true), (zns, false)] {
        // Close with the write pointer at the zone start: EMPTY (ZBC-2)
        // or CLOSED (ZNS).
        let mut t = table(0, 0);
        t.set_rules(rules);
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(16)))
            .unwrap();
        t.apply(ZoneAction::Close, ZoneTarget::One(Lba::new(16)))
            .unwrap();
        let want = if zbc {
            ZoneCondition::Empty
        } else {
            ZoneCondition::Closed
        };
        assert_eq!(t.zones()[1].cond, want, "{rules:?}");
        // A read from the capacity (12 blocks) into the rest of the
        // zone: a boundary violation only where that rest is a gap zone.
        assert_eq!(
            t.check_read(Lba::new(20), BlockCount::new(9)).is_err(),
            zbc,
            "{rules:?}"
        );
        // Finish of an EMPTY zone while the one active zone allowed is
        // taken: refused only where EMPTY -> FULL passes through active.
        let mut t = table(0, 1);
        t.set_rules(rules);
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba::new(16)))
            .unwrap();
        let r = t.apply(ZoneAction::Finish, ZoneTarget::One(Lba::new(32)));
        assert_eq!(r.is_err(), zbc, "{rules:?}: {r:?}");
    }
}

#[test]
fn reads_may_not_cross_into_the_gap() {
    let mut t = table(0, 0);
    t.check_read(Lba::new(0), BlockCount::new(28)).unwrap();
    // Crossing from capacity into the gap: two zone types.
    assert!(matches!(
        t.check_read(Lba::new(20), BlockCount::new(9)),
        Err(StorageError::ReadBoundary { .. })
    ));
    assert!(t.check_read(Lba::new(90), BlockCount::new(7)).is_err());
    // Wholly inside a gap: readable with unrestricted reads only.
    let gap = t.zones()[1].cap_end();
    t.check_read(gap, BlockCount::new(1)).unwrap();
    t.geo.unrestricted_reads = false;
    assert!(matches!(
        t.check_read(gap, BlockCount::new(1)),
        Err(StorageError::BeyondZoneCapacity { .. })
    ));
}
