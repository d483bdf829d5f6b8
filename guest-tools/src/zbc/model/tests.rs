use super::*;

/// 8 zones of 16 blocks, capacity 12 (gap zones of 4), 2 conventional,
/// max open 2, max active 3.
fn gappy() -> Model {
    Model::new(Layout {
        block_size: 4096,
        blocks: 128,
        zone_blocks: 16,
        cap_blocks: 12,
        conventional: 2,
        host_aware: false,
        urswrz: true,
        max_open: Some(2),
        max_active: Some(3),
    })
}

fn plain(urswrz: bool) -> Model {
    Model::new(Layout {
        block_size: 512,
        blocks: 64,
        zone_blocks: 16,
        cap_blocks: 16,
        conventional: 1,
        host_aware: false,
        urswrz,
        max_open: None,
        max_active: None,
    })
}

fn conds(m: &Model) -> Vec<u8> {
    m.zones.iter().map(|z| z.cond.code()).collect()
}

#[test]
fn layout_with_gap_zones() {
    let m = gappy();
    // 2 conventional + 6 x (SWR + GAP).
    assert_eq!(m.zones.len(), 14);
    assert_eq!(m.zones[1].ztype, ZoneType::Conventional);
    assert_eq!((m.zones[2].start, m.zones[2].len), (32, 12));
    assert_eq!(m.zones[3].ztype, ZoneType::Gap);
    assert_eq!((m.zones[3].start, m.zones[3].len), (44, 4));
    assert_eq!(m.zones[13].end(), 128);
    assert_eq!(m.zone_index(47), Some(3));
    assert_eq!(m.zone_index(48), Some(4));
    assert_eq!(m.zone_index(128), None);
    let k = m.kernel_view();
    assert_eq!(k.len(), 8);
    assert_eq!((k[2].start, k[2].len, k[2].capacity), (256, 128, 96));
    assert_eq!(k[2].wp, Some(256));
}

#[test]
fn write_rules() {
    let mut m = gappy();
    assert_eq!(m.write(32, 4), Ok(()));
    assert_eq!(m.zones[2].cond, Cond::ImpOpen);
    assert_eq!(m.zones[2].wp, 36);
    assert_eq!(m.write(40, 1), Err(Violation::UnalignedWrite));
    assert_eq!(m.write(33, 1), Err(Violation::UnalignedWrite));
    assert_eq!(m.write(36, 9), Err(Violation::WriteBoundary));
    assert_eq!(m.write(44, 1), Err(Violation::GapZone));
    assert_eq!(m.write(127, 2), Err(Violation::LbaOutOfRange));
    assert_eq!(m.write(u64::MAX, 2), Err(Violation::LbaOutOfRange));
    assert_eq!(m.write(36, 8), Ok(()));
    assert_eq!(m.zones[2].cond, Cond::Full);
    assert_eq!(m.write(32, 1), Err(Violation::InvalidField(Field::Any)));
    // Conventional: anywhere, not into the first sequential zone.
    assert_eq!(m.write(5, 20), Ok(()));
    assert_eq!(m.write(30, 4), Err(Violation::WriteBoundary));
}

#[test]
fn implicit_open_evicts_the_oldest_and_active_limit_holds() {
    let mut m = gappy();
    m.write(32, 1).unwrap(); // zone 2
    m.write(48, 1).unwrap(); // zone 4
    assert_eq!(m.open_count(), 2);
    m.write(64, 1).unwrap(); // zone 6: evicts zone 2
    assert_eq!(
        m.last_eviction,
        Some(Eviction {
            chosen: 2,
            candidates: vec![2, 4]
        })
    );
    assert_eq!(m.zones[2].cond, Cond::Closed);
    assert_eq!(m.active_count(), 3);
    // A fourth active zone: refused, nothing closed.
    let before = conds(&m);
    assert_eq!(m.write(80, 1), Err(Violation::InsufficientResources));
    assert_eq!(conds(&m), before);
    assert_eq!(m.last_eviction, None);
    // Writing the CLOSED zone needs an open resource only: evicts 4.
    m.write(33, 1).unwrap();
    assert_eq!(m.zones[2].cond, Cond::ImpOpen);
    assert_eq!(m.zones[4].cond, Cond::Closed);
    // Explicitly open zones are never evicted.
    m.zone_action(Action::Open, 64, 0, false).unwrap();
    m.zone_action(Action::Open, 32, 0, false).unwrap();
    assert_eq!(
        m.zone_action(Action::Open, 48, 0, false),
        Err(Violation::InsufficientResources)
    );
    assert_eq!(m.write(49, 1), Err(Violation::InsufficientResources));
}

#[test]
fn adopting_the_devices_eviction() {
    let mut m = gappy();
    m.write(32, 1).unwrap();
    m.write(48, 1).unwrap();
    m.write(64, 1).unwrap();
    let mut dev = m.zones.clone();
    dev[2].cond = Cond::ImpOpen;
    dev[4].cond = Cond::Closed;
    assert_eq!(m.adopt_eviction(&dev), Some(4));
    assert!(m.diff(&dev).is_empty(), "{:?}", m.diff(&dev));
    // Zone 2 is again the oldest implicitly open one.
    m.zone_action(Action::Reset, 48, 0, false).unwrap();
    m.write(48, 1).unwrap();
    assert_eq!(m.zones[2].cond, Cond::Closed);
}

#[test]
fn transitions() {
    let mut m = plain(true);
    let z = 16;
    let c = |m: &Model| m.zones[1].cond;
    m.zone_action(Action::Open, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::ExpOpen);
    m.zone_action(Action::Close, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::Empty);
    m.zone_action(Action::Close, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::Empty);
    m.write(z, 2).unwrap();
    m.zone_action(Action::Open, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::ExpOpen);
    m.write(z + 2, 2).unwrap();
    assert_eq!(c(&m), Cond::ExpOpen);
    m.zone_action(Action::Close, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::Closed);
    m.write(z + 4, 1).unwrap();
    assert_eq!(c(&m), Cond::ImpOpen);
    m.zone_action(Action::Finish, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::Full);
    assert!(!m.zones[1].wp_valid());
    for a in [Action::Open, Action::Close, Action::Finish] {
        m.zone_action(a, z, 0, false).unwrap();
        assert_eq!(c(&m), Cond::Full);
    }
    m.zone_action(Action::Reset, z, 0, false).unwrap();
    assert_eq!((c(&m), m.zones[1].wp), (Cond::Empty, z));
    m.zone_action(Action::Finish, z, 0, false).unwrap();
    assert_eq!(c(&m), Cond::Full);
}

#[test]
fn all_bit() {
    let mut m = plain(true);
    m.write(16, 1).unwrap(); // IMP
    m.write(32, 1).unwrap();
    m.zone_action(Action::Close, 32, 0, false).unwrap(); // CLOSED
    m.zone_action(Action::Open, 999, 0, true).unwrap();
    assert_eq!(conds(&m), vec![0, 2, 3, 1]);
    m.zone_action(Action::Close, 0, 0, true).unwrap();
    assert_eq!(conds(&m), vec![0, 4, 4, 1]);
    m.zone_action(Action::Finish, 0, 0, true).unwrap();
    assert_eq!(conds(&m), vec![0, 0xe, 0xe, 1]);
    m.zone_action(Action::Reset, 0, 0, true).unwrap();
    assert_eq!(conds(&m), vec![0, 1, 1, 1]);
    // OPEN ALL beyond the open limit: nothing opened.
    let mut g = gappy();
    for z in [32, 48] {
        g.write(z, 1).unwrap();
        g.zone_action(Action::Close, z, 0, false).unwrap();
    }
    g.zone_action(Action::Open, 0, 0, true).unwrap();
    assert_eq!(g.open_count(), 2);
    g.zone_action(Action::Close, 0, 0, true).unwrap();
    g.write(64, 1).unwrap();
    g.zone_action(Action::Close, 64, 0, false).unwrap();
    let before = conds(&g);
    assert_eq!(
        g.zone_action(Action::Open, 0, 0, true),
        Err(Violation::InsufficientResources)
    );
    assert_eq!(conds(&g), before);
}

#[test]
fn zone_ids_and_counts() {
    let mut m = plain(true);
    let bad = Violation::InvalidField(Field::Cdb(2, Some(7)));
    assert_eq!(m.zone_action(Action::Open, 17, 0, false), Err(bad));
    assert_eq!(m.zone_action(Action::Open, 0, 0, false), Err(bad));
    assert_eq!(
        m.zone_action(Action::Open, 64, 0, false),
        Err(Violation::LbaOutOfRange)
    );
    assert_eq!(
        m.zone_action(Action::Open, 32, 3, false),
        Err(Violation::InvalidField(Field::Any))
    );
    assert_eq!(conds(&m), vec![0, 1, 1, 1]);
    m.zone_action(Action::Open, 16, 3, false).unwrap();
    assert_eq!(conds(&m), vec![0, 3, 3, 3]);
    m.zone_action(Action::Finish, 32, 2, false).unwrap();
    assert_eq!(conds(&m), vec![0, 3, 0xe, 0xe]);
    // Gap zones: not a target.
    let mut g = gappy();
    assert_eq!(
        g.zone_action(Action::Open, 44, 0, false),
        Err(Violation::GapZone)
    );
    assert_eq!(g.zone_action(Action::Open, 45, 0, false), Err(bad));
    assert_eq!(
        g.zone_action(Action::Open, 32, 2, false),
        Err(Violation::InvalidField(Field::Any))
    );
}

#[test]
fn reads() {
    let mut m = plain(false);
    assert_eq!(m.read(16, 1), Err(Violation::ReadInvalidData));
    m.write(16, 4).unwrap();
    assert_eq!(m.read(16, 4), Ok(()));
    assert_eq!(m.read(18, 3), Err(Violation::ReadInvalidData));
    m.zone_action(Action::Finish, 16, 2, false).unwrap();
    assert_eq!(m.read(20, 12), Ok(()));
    assert_eq!(m.read(30, 4), Err(Violation::ReadBoundary));
    assert_eq!(m.read(0, 16), Ok(()));
    assert_eq!(m.read(60, 5), Err(Violation::LbaOutOfRange));
    let u = plain(true);
    assert_eq!(u.read(16, 40), Ok(()));
    let mut g = gappy();
    assert_eq!(g.read(44, 4), Ok(()));
    assert_eq!(g.read(43, 2), Err(Violation::ReadBoundary));
    assert_eq!(g.read(30, 4), Err(Violation::ReadBoundary));
    g.layout.urswrz = false;
    g.write(32, 12).unwrap();
    assert_eq!(g.read(44, 1), Err(Violation::GapZone));
    assert_eq!(g.read(43, 2), Err(Violation::ReadBoundary));
    g.set_condition(2, Cond::Offline);
    assert_eq!(g.read(32, 1), Err(Violation::Offline));
    assert_eq!(g.write(32, 1), Err(Violation::Offline));
}

#[test]
fn read_only_and_offline_leave_resources_and_all() {
    let mut g = gappy();
    g.write(32, 1).unwrap();
    g.set_condition(2, Cond::ReadOnly);
    assert_eq!(g.open_count(), 0);
    assert_eq!(g.write(33, 1), Err(Violation::ReadOnly));
    g.zone_action(Action::Reset, 0, 0, true).unwrap();
    assert_eq!(g.zones[2].cond, Cond::ReadOnly);
    assert_eq!(g.report(0, 0x06).unwrap().len(), 1);
}

#[test]
fn host_aware_writes() {
    let mut m = Model::new(Layout {
        block_size: 4096,
        blocks: 64,
        zone_blocks: 16,
        cap_blocks: 16,
        conventional: 1,
        host_aware: true,
        urswrz: true,
        max_open: None,
        max_active: None,
    });
    assert_eq!(m.zones[1].ztype, ZoneType::SeqPreferred);
    m.write(16, 2).unwrap();
    assert_eq!((m.zones[1].cond, m.zones[1].wp), (Cond::ImpOpen, 18));
    m.write(24, 1).unwrap();
    assert!(m.zones[1].non_seq && !m.zones[1].wp_valid());
    assert_eq!(m.report(0, 0x11).unwrap().len(), 1);
    m.zone_action(Action::Reset, 16, 0, false).unwrap();
    assert!(!m.zones[1].non_seq && m.zones[1].wp_valid());
    // No open limit applies.
    for z in [16, 32, 48] {
        m.write(z, 1).unwrap();
    }
    assert_eq!(m.report(0, 0x02).unwrap().len(), 3);
}

#[test]
fn report_filters_and_lengths() {
    let mut g = gappy();
    g.write(32, 1).unwrap();
    g.zone_action(Action::Open, 48, 0, false).unwrap();
    assert_eq!(g.report(0, 0x00).unwrap().len(), 14);
    assert_eq!(g.report(0, 0x3f).unwrap().len(), 8);
    // 3Eh: the 2 conventional and 6 sequential zones, no gap zone.
    let not_gap = g.report(0, 0x3e).unwrap();
    assert_eq!(not_gap.len(), 8);
    assert!(not_gap.iter().all(|z| z.ztype != ZoneType::Gap));
    assert_eq!(g.report(0, 0x08).unwrap().len(), 0);
    assert_eq!(g.report(0, 0x02).unwrap()[0].start, 32);
    assert_eq!(g.report(0, 0x03).unwrap()[0].start, 48);
    // From the middle of a zone: that zone first.
    assert_eq!(g.report(50, 0x00).unwrap()[0].start, 48);
    assert_eq!(g.report(46, 0x00).unwrap()[0].start, 44);
    assert_eq!(g.report(50, 0x01).unwrap()[0].start, 64);
    assert_eq!(g.report(128, 0), Err(Violation::LbaOutOfRange));
    assert_eq!(g.report(0, 0x20), Err(Violation::InvalidField(Field::Any)));
    assert_eq!(Model::zone_list_length(14, 64 + 3 * 64, false), 14 * 64);
    assert_eq!(Model::zone_list_length(14, 64 + 3 * 64, true), 3 * 64);
    assert_eq!(Model::zone_list_length(14, 32, true), 0);
    assert_eq!(Model::zone_list_length(2, 8192, true), 128);
}

#[test]
fn sense_bytes() {
    assert_eq!(
        Violation::UnalignedWrite.fixed_sense(),
        [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x04, 0, 0, 0, 0]
    );
    assert_eq!(
        Violation::InsufficientResources.fixed_sense(),
        [0x70, 0, 7, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x55, 0x0e, 0, 0, 0, 0]
    );
    assert_eq!(
        Violation::InvalidField(Field::Cdb(2, None)).fixed_sense(),
        [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0xc0, 0, 2]
    );
    assert_eq!(
        Violation::InvalidField(Field::Cdb(14, Some(5))).fixed_sense()[15..],
        [0xcd, 0, 14]
    );
    assert_eq!(Violation::Offline.to_string(), "ZONE IS OFFLINE (7/2c/0e)");
}

#[test]
fn diff_names_fields() {
    let m = gappy();
    let mut d = m.zones.clone();
    d[2].cond = Cond::Closed;
    d[4].wp = 50;
    let diff = m.diff(&d);
    assert_eq!(diff.len(), 2, "{diff:?}");
    assert!(diff[0].contains("cond CLOSED (expected EMPTY)"), "{diff:?}");
    assert!(diff[1].contains("wp 50 (expected 48)"), "{diff:?}");
    assert_eq!(m.diff(&d[..3]).len(), 2);
}
