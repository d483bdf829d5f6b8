//! Tests of the device: opening, zones, persistence, the write cache and
//! the power cut.

use std::{fs::OpenOptions, os::unix::fs::FileExt};

use super::*;
use crate::storage::zone::{ZoneAction, ZoneCondition, ZoneTarget, ZoneType};

/// Eight 16-block zones (12 writable), two conventional, in `dir`.
fn zoned_config(dir: &tempfile::TempDir) -> DeviceConfig {
    DeviceConfig {
        path: dir.path().join("disk.img"),
        size: 8 * 65536,
        block_size: 4096,
        zoned: Some(ZonedConfig {
            zone_size: 65536,
            zone_capacity: 49152,
            conventional_zones: 2,
            max_open: 0,
            max_active: 0,
            ..ZonedConfig::default()
        }),
    }
}

fn zoned(dir: &tempfile::TempDir) -> Device {
    Device::open(&zoned_config(dir)).unwrap()
}

/// Issue 15, finding 3: a 16 MiB image of 0xAB whose zone metadata is
/// missing or empty was taken for a new device and every sequential
/// zone hole-punched. It must refuse to open and change nothing, until
/// asked to start over.
#[test]
fn lost_zone_metadata_never_wipes_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.img");
    let meta = dir.path().join("old.img.zones");
    let image = vec![0xABu8; 16 << 20];
    std::fs::write(&path, &image).unwrap();
    let mut cfg = DeviceConfig {
        path: path.clone(),
        size: 16 << 20,
        block_size: 4096,
        zoned: Some(ZonedConfig {
            zone_size: 1 << 20,
            zone_capacity: 1 << 20,
            conventional_zones: 1,
            ..ZonedConfig::default()
        }),
    };
    for empty_sidecar in [false, true] {
        if empty_sidecar {
            std::fs::write(&meta, b"").unwrap();
        }
        match Device::open(&cfg) {
            Err(ConfigError::ZoneStateLost { offset, .. }) => assert_eq!(offset, 1 << 20),
            other => panic!("opened over lost zone metadata: {other:?}"),
        }
        assert!(std::fs::read(&path).unwrap() == image, "data changed");
        assert_eq!(
            std::fs::metadata(&meta).ok().map(|m| m.len()),
            empty_sidecar.then_some(0)
        );
    }
    // Data in the conventional zones only (a partition table, say):
    // nothing to lose, a new zone table is fine.
    std::fs::remove_file(&meta).unwrap();
    let head = dir.path().join("head.img");
    std::fs::write(&head, vec![0xABu8; 4096]).unwrap();
    let dev = Device::open(&DeviceConfig {
        path: head,
        ..cfg.clone()
    })
    .unwrap();
    let mut buf = vec![0u8; 4096];
    dev.read(Lba::new(0), &mut buf).unwrap();
    assert_eq!(buf[0], 0xAB);
    drop(dev);
    // Asked to start over: the sequential zones read as zeros, the
    // conventional zone keeps its data.
    if let Some(z) = cfg.zoned.as_mut() {
        z.reinit = true;
    }
    let dev = Device::open(&cfg).unwrap();
    dev.read(Lba::new(0), &mut buf).unwrap();
    assert_eq!(buf[0], 0xAB);
    dev.read(Lba::new(256), &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

/// Issue 15, finding 7: duplicates were found by comparing path text,
/// so two names of one file gave two zone tables over it. The file is
/// now locked: a second device on it is refused, whatever its path,
/// until the first is closed.
#[test]
fn one_device_per_backing_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = zoned(&dir);
    let alias = dir.path().join("alias.img");
    std::os::unix::fs::symlink(dir.path().join("disk.img"), &alias).unwrap();
    let cfg = DeviceConfig {
        path: alias,
        size: 8 * 65536,
        block_size: 4096,
        zoned: None,
    };
    assert!(matches!(Device::open(&cfg), Err(ConfigError::InUse(_))));
    drop(first);
    Device::open(&cfg).unwrap();
}

/// Zone metadata made for another geometry is refused (the data stays),
/// and started over only when asked.
#[test]
fn other_geometry_is_refused_unless_reinit() {
    let dir = tempfile::tempdir().unwrap();
    let dev = zoned(&dir);
    dev.write(Lba::new(32), &[7u8; 4096], true).unwrap();
    drop(dev);
    // The same file and zone size, another zone capacity.
    let mut cfg = zoned_config(&dir);
    if let Some(z) = cfg.zoned.as_mut() {
        z.zone_capacity = 65536;
    }
    let err = Device::open(&cfg).unwrap_err();
    assert!(matches!(err, ConfigError::Meta(MetaError::Mismatch(_))));
    assert!(err.to_string().contains("--reinit-zones"), "{err}");
    if let Some(z) = cfg.zoned.as_mut() {
        z.reinit = true;
    }
    let dev = Device::open(&cfg).unwrap();
    let z = dev.report_zones(Lba::new(32), 1, |_| true).unwrap();
    assert_eq!(z[0].cond, ZoneCondition::Empty);
    let mut buf = vec![1u8; 4096];
    dev.read(Lba::new(32), &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
}

#[test]
fn config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = DeviceConfig {
        path: dir.path().join("x"),
        size: 1 << 20,
        block_size: 1000,
        zoned: None,
    };
    assert!(matches!(
        Device::open(&cfg),
        Err(ConfigError::BlockSize(1000))
    ));
    cfg.block_size = 512;
    cfg.zoned = Some(ZonedConfig {
        zone_size: 65536,
        zone_capacity: 65536 * 2,
        conventional_zones: 0,
        max_open: 0,
        max_active: 0,
        ..ZonedConfig::default()
    });
    assert!(matches!(
        Device::open(&cfg),
        Err(ConfigError::CapacityAboveSize { .. })
    ));
    if let Some(z) = cfg.zoned.as_mut() {
        z.zone_capacity = 65536;
        z.conventional_zones = 16;
    }
    assert!(matches!(
        Device::open(&cfg),
        Err(ConfigError::TooManyConventional(16))
    ));
}

#[test]
fn write_read_reset() {
    let dir = tempfile::tempdir().unwrap();
    let dev = zoned(&dir);
    assert_eq!(dev.geometry().capacity, BlockCount::new(128));
    let data = vec![0xabu8; 8192];
    dev.write(Lba::new(32), &data, false).unwrap();
    let mut back = vec![0u8; 8192];
    dev.read(Lba::new(32), &mut back).unwrap();
    assert_eq!(back, data);
    // A refused write changes neither data nor the write pointer.
    assert!(dev.write(Lba::new(40), &data, false).is_err());
    let z = dev.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
    assert_eq!((z.cond, z.wp), (ZoneCondition::ImplicitOpen, Lba::new(34)));
    dev.zone_action(ZoneAction::Reset, ZoneTarget::One(Lba::new(32)))
        .unwrap();
    dev.read(Lba::new(32), &mut back).unwrap();
    assert!(back.iter().all(|&b| b == 0));
}

#[test]
fn append_lands_at_the_write_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let dev = std::sync::Arc::new(zoned(&dir));
    // Zone 2 (LBA 32, capacity 12): concurrent single-block appends get
    // distinct LBAs and each block holds its own data.
    let handles: Vec<_> = (0..12u8)
        .map(|i| {
            let dev = std::sync::Arc::clone(&dev);
            std::thread::spawn(move || (i, dev.append(Lba::new(32), &[i; 4096], false).unwrap()))
        })
        .collect();
    let mut lbas = Vec::new();
    for h in handles {
        let (i, lba) = h.join().unwrap();
        let mut buf = vec![0u8; 4096];
        dev.read(lba, &mut buf).unwrap();
        assert_eq!(buf[0], i);
        lbas.push(lba.get());
    }
    lbas.sort_unstable();
    assert_eq!(lbas, (32..44).collect::<Vec<_>>());
    assert!(matches!(
        dev.append(Lba::new(32), &[0; 4096], false),
        Err(StorageError::ZoneFull { .. })
    ));
    assert!(matches!(
        dev.append(Lba::new(33), &[0; 4096], false),
        Err(StorageError::NotZoneStart { .. })
    ));
    assert!(matches!(
        dev.append(Lba::new(0), &[0; 4096], false),
        Err(StorageError::ConventionalZone { .. })
    ));
    assert!(matches!(
        dev.append(Lba::new(48), &[0; 13 * 4096], false),
        Err(StorageError::BeyondZoneCapacity { .. })
    ));
}

#[test]
fn range_and_buffer_checks() {
    let dir = tempfile::tempdir().unwrap();
    let dev = zoned(&dir);
    let mut buf = vec![0u8; 4096];
    assert!(matches!(
        dev.read(Lba::new(128), &mut buf),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        dev.read(Lba::new(u64::MAX), &mut buf),
        Err(StorageError::OutOfRange { .. })
    ));
    assert!(matches!(
        dev.read(Lba::new(0), &mut buf[..100]),
        Err(StorageError::PartialBlock { .. })
    ));
    assert!(matches!(
        dev.zone_action(ZoneAction::Open, ZoneTarget::One(Lba::new(1 << 40))),
        Err(StorageError::OutOfRange { .. })
    ));
}

#[test]
fn zone_state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let dev = zoned(&dir);
        dev.write(Lba::new(0), &[1u8; 4096], true).unwrap();
        // Durable by FUA.
        dev.write(Lba::new(32), &[2u8; 4096], true).unwrap();
        // Durable by a later flush.
        dev.write(Lba::new(33), &[3u8; 4096], false).unwrap();
        dev.flush().unwrap();
        // Never made durable: the restart may drop it.
        dev.write(Lba::new(34), &[4u8; 4096], false).unwrap();
        dev.zone_action(ZoneAction::Finish, ZoneTarget::One(Lba::new(48)))
            .unwrap();
    }
    let dev = zoned(&dir);
    let mut buf = vec![0u8; 4096];
    dev.read(Lba::new(0), &mut buf).unwrap();
    assert_eq!(buf[0], 1, "conventional data is kept");
    dev.read(Lba::new(33), &mut buf).unwrap();
    assert_eq!(buf[0], 3, "flushed data is kept");
    let z = dev.report_zones(Lba::new(32), 2, |_| true).unwrap();
    // The zone action persisted every dirty zone, so LBA 34 made it too,
    // and the open zone comes back CLOSED as after a power cycle.
    assert_eq!((z[0].cond, z[0].wp), (ZoneCondition::Closed, Lba::new(35)));
    assert_eq!(z[1].cond, ZoneCondition::Full);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Lba>>);

impl ZoneListener for Recorder {
    fn zone_changed(&self, zone: Lba) {
        lock(&self.0).push(zone);
    }
}

#[test]
fn zone_condition_is_persisted_and_announced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let dev = zoned(&dir);
        let rec = std::sync::Arc::new(Recorder::default());
        let weak: Weak<dyn ZoneListener> =
            std::sync::Arc::downgrade(&(rec.clone() as std::sync::Arc<dyn ZoneListener>));
        dev.add_zone_listener(weak);
        dev.write(Lba::new(32), &[7u8; 4096], false).unwrap();
        dev.set_zone_condition(Lba::new(32), ZoneCondition::ReadOnly)
            .unwrap();
        dev.set_zone_condition(Lba::new(32), ZoneCondition::ReadOnly)
            .unwrap();
        dev.set_zone_condition(Lba::new(48), ZoneCondition::Offline)
            .unwrap();
        assert!(dev
            .set_zone_condition(Lba::new(64), ZoneCondition::Empty)
            .is_err());
        assert!(dev
            .set_zone_condition(Lba::new(0), ZoneCondition::Offline)
            .is_err());
        assert_eq!(*lock(&rec.0), vec![Lba::new(32), Lba::new(48)]);
        drop(rec);
        // A dead listener is dropped, not called.
        dev.set_zone_condition(Lba::new(64), ZoneCondition::Offline)
            .unwrap();
        assert!(lock(&dev.listeners.0).is_empty());
    }
    let dev = zoned(&dir);
    let z = dev.report_zones(Lba::new(32), 3, |_| true).unwrap();
    assert_eq!(
        (z[0].cond, z[1].cond, z[2].cond),
        (
            ZoneCondition::ReadOnly,
            ZoneCondition::Offline,
            ZoneCondition::Offline
        )
    );
    // The READ ONLY zone keeps its data: no discard past its wp.
    let mut buf = vec![0u8; 4096];
    dev.read(Lba::new(32), &mut buf).unwrap();
    assert_eq!(buf[0], 7);
    assert!(matches!(
        dev.write(Lba::new(33), &buf, false),
        Err(StorageError::ZoneUnavailable { .. })
    ));
    assert!(matches!(
        dev.read(Lba::new(48), &mut buf),
        Err(StorageError::ZoneUnavailable { .. })
    ));
}

#[test]
fn write_preferred_device_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DeviceConfig {
        path: dir.path().join("ha.img"),
        size: 8 * 65536,
        block_size: 4096,
        zoned: Some(ZonedConfig {
            zone_size: 65536,
            zone_capacity: 65536,
            conventional_zones: 1,
            sequential: ZoneType::SequentialWritePreferred,
            ..ZonedConfig::default()
        }),
    };
    {
        let dev = Device::open(&cfg).unwrap();
        // Zone 1 written away from its write pointer, zone 2 in order.
        dev.write(Lba::new(20), &[1u8; 8192], false).unwrap();
        dev.write(Lba::new(32), &[2u8; 4096], false).unwrap();
        dev.flush().unwrap();
        // A range of two zones reset through the device discards both.
        dev.write(Lba::new(48), &[3u8; 4096], false).unwrap();
        dev.write(Lba::new(64), &[3u8; 4096], false).unwrap();
        dev.zone_action(
            ZoneAction::Reset,
            ZoneTarget::Range {
                start: Lba::new(48),
                count: 2,
            },
        )
        .unwrap();
    }
    let dev = Device::open(&cfg).unwrap();
    let z = dev.report_zones(Lba::new(16), 4, |_| true).unwrap();
    assert_eq!(z[0].zone_type, ZoneType::SequentialWritePreferred);
    assert_eq!(
        (z[0].cond, z[0].wp, z[0].non_seq),
        (ZoneCondition::Closed, Lba::new(22), true)
    );
    assert_eq!(
        (z[1].cond, z[1].wp, z[1].non_seq),
        (ZoneCondition::Closed, Lba::new(33), false)
    );
    assert_eq!(
        (z[2].cond, z[3].cond),
        (ZoneCondition::Empty, ZoneCondition::Empty)
    );
    let mut buf = vec![0u8; 4096];
    dev.read(Lba::new(21), &mut buf).unwrap();
    assert_eq!(buf[0], 1);
    dev.read(Lba::new(64), &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    // The metadata is for write preferred zones: a host-managed
    // configuration of the same file is refused.
    drop(dev);
    let mut hm = cfg.clone();
    if let Some(z) = hm.zoned.as_mut() {
        z.sequential = ZoneType::SequentialWriteRequired;
    }
    assert!(matches!(Device::open(&hm), Err(ConfigError::Meta(_))));
    // And write preferred zones with gaps are refused outright.
    let mut gaps = cfg.clone();
    if let Some(z) = gaps.zoned.as_mut() {
        z.zone_capacity = 32768;
    }
    assert!(matches!(
        Device::open(&gaps),
        Err(ConfigError::PreferredWithCapacity { .. })
    ));
}

#[test]
fn unflushed_writes_past_persisted_wp_read_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    {
        let dev = zoned(&dir);
        dev.write(Lba::new(32), &[2u8; 4096], true).unwrap();
        dev.write(Lba::new(33), &[3u8; 4096], false).unwrap();
    }
    let dev = zoned(&dir);
    let z = dev.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
    assert_eq!((z.cond, z.wp), (ZoneCondition::Closed, Lba::new(33)));
    let mut buf = vec![0u8; 4096];
    dev.read(Lba::new(33), &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    dev.read(Lba::new(32), &mut buf).unwrap();
    assert_eq!(buf[0], 2);
}

#[test]
fn stale_data_anywhere_past_write_pointers_is_discarded_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(zoned(&dir));
    // Data the metadata knows nothing about: in a conventional zone
    // (kept), straddling two sequential zones, and at the very end.
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("disk.img"))
        .unwrap();
    f.write_all_at(&[7u8; 4096], 4096).unwrap();
    f.write_all_at(&[8u8; 3 * 4096], (3 * 16 + 14) * 4096)
        .unwrap();
    f.write_all_at(&[9u8; 4096], (8 * 16 - 1) * 4096).unwrap();
    drop(f);
    let dev = zoned(&dir);
    let mut buf = vec![0u8; 4096];
    dev.read(Lba::new(1), &mut buf).unwrap();
    assert_eq!(buf[0], 7, "conventional data must stay");
    for lba in [3 * 16 + 14, 3 * 16 + 15, 4 * 16, 8 * 16 - 1] {
        // Past capacity (blocks 12-15 of a zone) reads are refused;
        // read those through the file instead.
        let mut raw = vec![1u8; 4096];
        dev.media().read_at(lba * 4096, &mut raw).unwrap();
        assert!(raw.iter().all(|&b| b == 0), "block {lba} kept stale data");
    }
}

// The volatile write cache and the power cut (`power`).

fn zoned_whole(dir: &tempfile::TempDir) -> Device {
    // The zones of `zoned`, at full capacity (no gaps).
    let mut cfg = zoned_config(dir);
    if let Some(z) = cfg.zoned.as_mut() {
        z.zone_capacity = z.zone_size;
    }
    Device::open(&cfg).unwrap()
}

fn block(dev: &Device, lba: u64) -> u8 {
    let mut b = vec![0u8; 4096];
    dev.read(Lba::new(lba), &mut b).unwrap();
    assert!(b.iter().all(|&x| x == b[0]), "block {lba} is not uniform");
    b[0]
}

fn wp(dev: &Device, zone: u64) -> (ZoneCondition, Lba) {
    let z = dev.report_zones(Lba::new(zone), 1, |_| true).unwrap()[0];
    (z.cond, z.wp)
}

#[test]
fn unflushed_writes_are_lost_and_the_write_pointer_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let dev = zoned_whole(&dir);
    assert_eq!(dev.power_cut().unwrap(), None, "no cache: nothing to cut");
    dev.write(Lba::new(0), &[1u8; 4096], false).unwrap();
    dev.write(Lba::new(32), &[1u8; 4096], false).unwrap();
    dev.set_volatile_cache(true).unwrap();
    // Written, not flushed: visible to reads, write pointer moved.
    dev.write(Lba::new(0), &[2u8; 4096], false).unwrap();
    dev.write(Lba::new(33), &[2u8; 2 * 4096], false).unwrap();
    assert_eq!((block(&dev, 0), block(&dev, 34)), (2, 2));
    assert_eq!(wp(&dev, 32), (ZoneCondition::ImplicitOpen, Lba::new(35)));
    assert_eq!(dev.cached_blocks(), 3);
    let cut = dev.power_cut().unwrap().unwrap();
    assert_eq!(
        cut,
        PowerCut {
            dropped_blocks: 3,
            zones_rolled_back: 1
        }
    );
    // The old data, the old write pointer (the open zone comes back
    // CLOSED), and nothing readable past it.
    assert_eq!(block(&dev, 0), 1);
    assert_eq!(block(&dev, 32), 1);
    assert_eq!(wp(&dev, 32), (ZoneCondition::Closed, Lba::new(33)));
    assert_eq!(block(&dev, 33), 0);
    // The zone takes writes at the rolled-back write pointer.
    dev.write(Lba::new(33), &[3u8; 4096], false).unwrap();
    assert_eq!(block(&dev, 33), 3);
}

#[test]
fn flushed_and_fua_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let dev = zoned_whole(&dir);
    dev.set_volatile_cache(true).unwrap();
    dev.write(Lba::new(1), &[5u8; 4096], false).unwrap();
    dev.write(Lba::new(48), &[5u8; 4096], false).unwrap();
    dev.flush().unwrap();
    assert_eq!(dev.cached_blocks(), 0);
    dev.write(Lba::new(49), &[6u8; 4096], true).unwrap();
    dev.write(Lba::new(2), &[7u8; 4096], false).unwrap();
    let cut = dev.power_cut().unwrap().unwrap();
    assert_eq!(cut.dropped_blocks, 1);
    assert_eq!((block(&dev, 1), block(&dev, 2)), (5, 0));
    assert_eq!((block(&dev, 48), block(&dev, 49)), (5, 6));
    assert_eq!(wp(&dev, 48), (ZoneCondition::Closed, Lba::new(50)));
    // A second cut finds nothing to drop.
    assert_eq!(dev.power_cut().unwrap().unwrap(), PowerCut::default());
}

#[test]
fn zone_actions_copies_and_appends_go_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let dev = zoned_whole(&dir);
    dev.write(Lba::new(0), &[9u8; 4 * 4096], false).unwrap();
    dev.set_volatile_cache(true).unwrap();
    // An append and a copy, held; the copy reads the appended blocks.
    let at = dev.append(Lba::new(64), &[4u8; 4096], false).unwrap();
    assert_eq!(at, Lba::new(64));
    dev.copy_from(Lba::new(5), &dev, Lba::new(64), BlockCount::new(1))
        .unwrap();
    assert_eq!(block(&dev, 5), 4);
    assert_eq!(dev.cached_blocks(), 2);
    // A zone action persists: everything so far becomes durable.
    dev.zone_action(ZoneAction::Finish, ZoneTarget::One(Lba::new(80)))
        .unwrap();
    assert_eq!(dev.cached_blocks(), 0);
    dev.write(Lba::new(6), &[8u8; 4096], false).unwrap();
    dev.power_cut().unwrap().unwrap();
    assert_eq!((block(&dev, 5), block(&dev, 6), block(&dev, 64)), (4, 0, 4));
    assert_eq!(wp(&dev, 64), (ZoneCondition::Closed, Lba::new(65)));
    assert_eq!(wp(&dev, 80).0, ZoneCondition::Full);
    // Off: the cache is written back and durable.
    dev.write(Lba::new(7), &[1u8; 4096], false).unwrap();
    dev.set_volatile_cache(false).unwrap();
    assert_eq!(dev.cached_blocks(), 0);
    assert_eq!(block(&dev, 7), 1);
    assert_eq!(dev.power_cut().unwrap(), None);
}

#[test]
fn the_cache_survives_a_restart_only_as_far_as_it_was_flushed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let dev = zoned_whole(&dir);
        dev.set_volatile_cache(true).unwrap();
        dev.write(Lba::new(32), &[1u8; 4096], false).unwrap();
        dev.flush().unwrap();
        dev.write(Lba::new(33), &[2u8; 4096], false).unwrap();
        dev.write(Lba::new(3), &[2u8; 4096], false).unwrap();
        // Dropped without a flush: the held blocks never reach the file.
    }
    let dev = zoned_whole(&dir);
    assert_eq!(wp(&dev, 32), (ZoneCondition::Closed, Lba::new(33)));
    assert_eq!(
        (block(&dev, 32), block(&dev, 33), block(&dev, 3)),
        (1, 0, 0)
    );
}

/// The device runs the same over memory (`MemMedia`): range checks, the
/// fault layer, the cache and the power cut.
#[test]
fn in_memory_device_follows_the_same_rules() {
    use crate::storage::fault::{BlockRange, FaultKind};
    let dev = Device::in_memory(512, BlockCount::new(64)).unwrap();
    dev.write(Lba::new(3), &[1u8; 1024], false).unwrap();
    let mut buf = vec![0u8; 1024];
    dev.read(Lba::new(3), &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1));
    assert!(matches!(
        dev.read(Lba::new(63), &mut buf),
        Err(StorageError::OutOfRange { .. })
    ));
    let bad = BlockRange::new(Lba::new(4), BlockCount::new(1));
    dev.faults().add(FaultKind::MediaError(bad), Some(1));
    assert!(matches!(
        dev.read(Lba::new(3), &mut buf),
        Err(StorageError::UnrecoveredRead { lba }) if lba == Lba::new(4)
    ));
    dev.read(Lba::new(3), &mut buf).unwrap();
    dev.set_volatile_cache(true).unwrap();
    dev.write(Lba::new(3), &[2u8; 512], false).unwrap();
    assert_eq!(dev.cached_blocks(), 1);
    let cut = dev.power_cut().unwrap().unwrap();
    assert_eq!(cut.dropped_blocks, 1);
    dev.read(Lba::new(3), &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 1), "the unflushed write is gone");
    assert!(Device::in_memory(4096, BlockCount::new(u64::MAX)).is_none());
}
