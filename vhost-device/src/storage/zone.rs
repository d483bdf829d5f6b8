//! The zone model: zone types, conditions and the zone state machine.
//!
//! The conditions and transitions follow ZBC-2 (T10 BSR INCITS 550) 4.4.3
//! "Zone model", and are the same as the NVMe ZNS command set's zone states,
//! so both front ends share them. All condition changes go through
//! [`ZoneTable::set_condition`], and all open/active resource checks through
//! [`ZoneTable::check_resources`].

use super::{
    error::{Result, StorageError},
    units::{BlockCount, Lba},
};

/// The type of a zone (ZBC-2 4.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneType {
    /// Written anywhere, no write pointer.
    Conventional,
    /// Written only at the write pointer.
    SequentialWriteRequired,
}

/// The condition of a zone (ZBC-2 4.4.3.2, NVMe ZNS 2.1.1 zone states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZoneCondition {
    /// Conventional zones have no write pointer.
    NotWritePointer,
    Empty,
    ImplicitOpen,
    ExplicitOpen,
    Closed,
    ReadOnly,
    Full,
    Offline,
}

impl ZoneCondition {
    /// Whether the zone holds an open resource.
    pub fn is_open(self) -> bool {
        matches!(self, Self::ImplicitOpen | Self::ExplicitOpen)
    }

    /// Whether the zone holds an active resource (open or closed).
    pub fn is_active(self) -> bool {
        self.is_open() || self == Self::Closed
    }
}

/// A zone management action (ZBC-2 5.x ZONE ACTIONS; NVMe ZNS Zone
/// Management Send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneAction {
    Open,
    Close,
    Finish,
    Reset,
}

/// Which zones a zone action applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneTarget {
    /// The zone starting at this LBA.
    One(Lba),
    /// Every zone the action applies to (the ALL bit).
    All,
}

/// One zone's descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zone {
    pub zone_type: ZoneType,
    pub cond: ZoneCondition,
    /// First LBA of the zone.
    pub start: Lba,
    /// Zone size: the distance to the next zone's start.
    pub len: BlockCount,
    /// Writable blocks from `start` (capacity <= size).
    pub cap: BlockCount,
    /// Write pointer (meaningful for sequential zones that are not FULL,
    /// READ ONLY or OFFLINE).
    pub wp: Lba,
}

impl Zone {
    /// One past the last writable LBA.
    pub fn cap_end(&self) -> Lba {
        Lba(self.start.0 + self.cap.0)
    }

    /// One past the last LBA of the zone.
    pub fn end(&self) -> Lba {
        Lba(self.start.0 + self.len.0)
    }

    /// Whether this is a sequential zone.
    pub fn is_sequential(&self) -> bool {
        self.zone_type != ZoneType::Conventional
    }
}

/// Zone geometry of a device, in logical blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneGeometry {
    /// Size of every zone.
    pub zone_len: BlockCount,
    /// Writable capacity of every sequential zone (<= `zone_len`).
    pub zone_cap: BlockCount,
    /// The first `conventional` zones are conventional.
    pub conventional: u32,
    /// Maximum number of open zones, 0 for no limit.
    pub max_open: u32,
    /// Maximum number of active zones, 0 for no limit.
    pub max_active: u32,
}

/// The zones of one device and their state.
#[derive(Debug)]
pub struct ZoneTable {
    geo: ZoneGeometry,
    zones: Vec<Zone>,
    /// Implicitly opened zones, oldest first, for eviction when the open
    /// limit is reached.
    implicit_lru: Vec<usize>,
    /// Zones holding an open resource (IMPLICIT or EXPLICIT OPEN).
    open: u32,
    /// Zones holding an active resource (open or CLOSED).
    active: u32,
    /// Zones changed since the last [`ZoneTable::take_dirty`].
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
}

impl ZoneTable {
    /// Lay out `nr_zones` zones of `geo`, all EMPTY (or NOT WRITE POINTER).
    pub fn new(geo: ZoneGeometry, nr_zones: u32) -> Self {
        let zones: Vec<Zone> = (0..u64::from(nr_zones))
            .map(|i| {
                let start = Lba(i * geo.zone_len.0);
                if i < u64::from(geo.conventional) {
                    Zone {
                        zone_type: ZoneType::Conventional,
                        cond: ZoneCondition::NotWritePointer,
                        start,
                        len: geo.zone_len,
                        cap: geo.zone_len,
                        wp: start,
                    }
                } else {
                    Zone {
                        zone_type: ZoneType::SequentialWriteRequired,
                        cond: ZoneCondition::Empty,
                        start,
                        len: geo.zone_len,
                        cap: geo.zone_cap,
                        wp: start,
                    }
                }
            })
            .collect();
        let n = zones.len();
        ZoneTable {
            geo,
            zones,
            implicit_lru: Vec::new(),
            open: 0,
            active: 0,
            dirty: Vec::new(),
            is_dirty: vec![false; n],
        }
    }

    /// The zone geometry.
    pub fn geometry(&self) -> &ZoneGeometry {
        &self.geo
    }

    /// All zones in LBA order.
    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }

    /// Index of the zone containing `lba`, if any.
    pub fn index_of(&self, lba: Lba) -> Option<usize> {
        let idx = usize::try_from(lba.0 / self.geo.zone_len.0).ok()?;
        (idx < self.zones.len()).then_some(idx)
    }

    /// Index of the zone starting exactly at `lba`.
    fn index_of_start(&self, lba: Lba) -> Result<usize> {
        match self.index_of(lba) {
            Some(i) if self.zones[i].start == lba => Ok(i),
            _ => Err(StorageError::NotZoneStart { lba }),
        }
    }

    /// Check that `extra_open` more open zones and `extra_active` more
    /// active zones fit in the limits (ZBC-2 4.4.3.4 "managing zone
    /// resources"). Implicitly open zones are counted as evictable: making
    /// room for an open closes the oldest implicitly open zone.
    fn check_resources(&self, zone: Lba, extra_open: u32, extra_active: u32) -> Result<()> {
        let g = &self.geo;
        if g.max_active != 0 && self.active + extra_active > g.max_active {
            return Err(StorageError::InsufficientZoneResources { zone });
        }
        let evictable = self.implicit_lru.len() as u32;
        if g.max_open != 0 && self.open + extra_open > g.max_open + evictable {
            return Err(StorageError::InsufficientZoneResources { zone });
        }
        Ok(())
    }

    /// Close implicitly open zones, oldest first, until one more zone can
    /// be opened. Call only after `check_resources` succeeded.
    fn make_room_for_open(&mut self) {
        if self.geo.max_open == 0 {
            return;
        }
        while self.open >= self.geo.max_open {
            let Some(&victim) = self.implicit_lru.first() else {
                return;
            };
            let cond = self.closed_or_empty(victim);
            self.set_condition(victim, cond);
        }
    }

    fn closed_or_empty(&self, idx: usize) -> ZoneCondition {
        if self.zones[idx].wp == self.zones[idx].start {
            ZoneCondition::Empty
        } else {
            ZoneCondition::Closed
        }
    }

    /// The one place a zone's condition changes; it keeps the resource
    /// counts and marks the zone for persisting.
    fn set_condition(&mut self, idx: usize, cond: ZoneCondition) {
        let zone = &mut self.zones[idx];
        log::trace!("zone {}: {:?} -> {:?}", zone.start, zone.cond, cond);
        let old = zone.cond;
        // Counts stay within the zone count, itself a u32.
        self.open = self.open + u32::from(cond.is_open()) - u32::from(old.is_open());
        self.active = self.active + u32::from(cond.is_active()) - u32::from(old.is_active());
        zone.cond = cond;
        match cond {
            ZoneCondition::Empty => zone.wp = zone.start,
            ZoneCondition::Full => zone.wp = zone.cap_end(),
            _ => {}
        }
        if old == ZoneCondition::ImplicitOpen {
            self.implicit_lru.retain(|&i| i != idx);
        }
        if cond == ZoneCondition::ImplicitOpen {
            self.implicit_lru.push(idx);
        }
        self.mark_dirty(idx);
    }

    /// Note that zone `idx` changed and must be persisted.
    pub fn mark_dirty(&mut self, idx: usize) {
        if let Some(d) = self.is_dirty.get_mut(idx) {
            if !*d {
                *d = true;
                self.dirty.push(idx);
            }
        }
    }

    /// The zones changed since the last call, as they are now.
    pub fn take_dirty(&mut self) -> Vec<(usize, Zone)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|i| {
                self.is_dirty[i] = false;
                (i, self.zones[i])
            })
            .collect()
    }

    /// Set a sequential zone's state as recovered from persistent
    /// metadata. Open zones come back CLOSED (or EMPTY), as after a power
    /// cycle (ZBC-2 4.4.3.5: open zones do not survive a power on reset).
    pub fn restore(&mut self, idx: usize, cond: ZoneCondition, wp: Lba) {
        let Some(zone) = self.zones.get(idx).copied() else {
            return;
        };
        if !zone.is_sequential() {
            return;
        }
        let wp = Lba(wp.0.clamp(zone.start.0, zone.cap_end().0));
        let cond = match cond {
            ZoneCondition::NotWritePointer => return,
            ZoneCondition::ImplicitOpen | ZoneCondition::ExplicitOpen | ZoneCondition::Closed => {
                if wp == zone.start {
                    ZoneCondition::Empty
                } else if wp == zone.cap_end() {
                    ZoneCondition::Full
                } else {
                    ZoneCondition::Closed
                }
            }
            other => other,
        };
        self.zones[idx].wp = wp;
        self.set_condition(idx, cond);
        self.is_dirty[idx] = false;
        self.dirty.retain(|&i| i != idx);
    }

    /// Validate a write of `count` blocks at `lba` against the zone rules
    /// without changing anything. Returns the index of the zone written.
    /// `count` must be at least 1 and the range inside the device.
    pub fn check_write(&self, lba: Lba, count: BlockCount) -> Result<usize> {
        let idx = self.index_of(lba).ok_or(StorageError::OutOfRange {
            lba,
            count,
            capacity: BlockCount(0),
        })?;
        let zone = &self.zones[idx];
        let last = Lba(lba.0 + count.0 - 1);
        match zone.cond {
            ZoneCondition::ReadOnly | ZoneCondition::Offline => {
                return Err(StorageError::ZoneUnavailable {
                    zone: zone.start,
                    cond: zone.cond,
                })
            }
            _ => {}
        }
        if !zone.is_sequential() {
            // A conventional zone may be written anywhere, but the write may
            // not run into a sequential zone.
            match self.index_of(last) {
                Some(j) if !self.zones[j].is_sequential() => return Ok(idx),
                _ => return Err(StorageError::WriteBoundary { lba, count }),
            }
        }
        if last >= zone.end() {
            return Err(StorageError::WriteBoundary { lba, count });
        }
        if zone.cond == ZoneCondition::Full {
            return Err(StorageError::ZoneFull { zone: zone.start });
        }
        if lba != zone.wp {
            return Err(StorageError::UnalignedWrite { lba, wp: zone.wp });
        }
        if last >= zone.cap_end() {
            return Err(StorageError::BeyondZoneCapacity { lba, count });
        }
        match zone.cond {
            ZoneCondition::Empty => self.check_resources(zone.start, 1, 1)?,
            ZoneCondition::Closed => self.check_resources(zone.start, 1, 0)?,
            _ => {}
        }
        Ok(idx)
    }

    /// Account a write that [`Self::check_write`] accepted and that has
    /// reached the backing file: open the zone implicitly, advance the write
    /// pointer, and make the zone FULL when it reaches the capacity.
    pub fn commit_write(&mut self, idx: usize, count: BlockCount) {
        if !self.zones[idx].is_sequential() {
            return;
        }
        if matches!(
            self.zones[idx].cond,
            ZoneCondition::Empty | ZoneCondition::Closed
        ) {
            self.make_room_for_open();
            self.set_condition(idx, ZoneCondition::ImplicitOpen);
        }
        let zone = &mut self.zones[idx];
        zone.wp = Lba(zone.wp.0 + count.0);
        if zone.wp >= zone.cap_end() {
            self.set_condition(idx, ZoneCondition::Full);
        }
        self.mark_dirty(idx);
    }

    /// Validate a read of `count` blocks at `lba`: it may not touch an
    /// OFFLINE zone or the space between a zone's capacity and its end.
    pub fn check_read(&self, lba: Lba, count: BlockCount) -> Result<()> {
        let (Some(first), Some(last)) =
            (self.index_of(lba), self.index_of(Lba(lba.0 + count.0 - 1)))
        else {
            return Err(StorageError::OutOfRange {
                lba,
                count,
                capacity: BlockCount(0),
            });
        };
        let end = lba.0 + count.0;
        for zone in &self.zones[first..=last] {
            if zone.cond == ZoneCondition::Offline {
                return Err(StorageError::ZoneUnavailable {
                    zone: zone.start,
                    cond: zone.cond,
                });
            }
            // The gap [cap_end, end) of this zone, intersected with the read.
            if zone.cap < zone.len && lba.0 < zone.end().0 && end > zone.cap_end().0 {
                return Err(StorageError::BeyondZoneCapacity { lba, count });
            }
        }
        Ok(())
    }

    /// Apply a zone action (ZBC-2 5.x CLOSE ZONE, FINISH ZONE, OPEN ZONE,
    /// RESET WRITE POINTER; NVMe ZNS Zone Management Send). Either every
    /// zone named changes or, on error, none does. Returns the indexes of
    /// the zones whose write pointer went back to the start (for the
    /// caller to discard their data).
    pub fn apply(&mut self, action: ZoneAction, target: ZoneTarget) -> Result<Vec<usize>> {
        match target {
            ZoneTarget::One(lba) => {
                let idx = self.index_of_start(lba)?;
                let zone = self.zones[idx];
                if !zone.is_sequential() {
                    return Err(StorageError::ConventionalZone { zone: zone.start });
                }
                if matches!(zone.cond, ZoneCondition::ReadOnly | ZoneCondition::Offline) {
                    return Err(StorageError::ZoneUnavailable {
                        zone: zone.start,
                        cond: zone.cond,
                    });
                }
                self.apply_one(idx, action)
            }
            ZoneTarget::All => self.apply_all(action),
        }
    }

    fn apply_one(&mut self, idx: usize, action: ZoneAction) -> Result<Vec<usize>> {
        use ZoneCondition::*;
        let zone = self.zones[idx];
        match (action, zone.cond) {
            (ZoneAction::Open, Empty) => {
                self.check_resources(zone.start, 1, 1)?;
                self.make_room_for_open();
                self.set_condition(idx, ExplicitOpen);
            }
            (ZoneAction::Open, Closed) => {
                self.check_resources(zone.start, 1, 0)?;
                self.make_room_for_open();
                self.set_condition(idx, ExplicitOpen);
            }
            (ZoneAction::Open, ImplicitOpen) => self.set_condition(idx, ExplicitOpen),
            (ZoneAction::Close, ImplicitOpen | ExplicitOpen) => {
                let cond = self.closed_or_empty(idx);
                self.set_condition(idx, cond);
            }
            (ZoneAction::Finish, Empty) => {
                // EMPTY -> FULL passes through an active state (ZBC-2
                // 4.4.3.5.5), so the active limit applies.
                self.check_resources(zone.start, 0, 1)?;
                self.set_condition(idx, Full);
            }
            (ZoneAction::Finish, ImplicitOpen | ExplicitOpen | Closed) => {
                self.set_condition(idx, Full)
            }
            (ZoneAction::Reset, ImplicitOpen | ExplicitOpen | Closed | Full) => {
                self.set_condition(idx, Empty);
                return Ok(vec![idx]);
            }
            // Everything else leaves the zone as it is: opening an
            // explicitly open or full zone, closing an empty, closed or full
            // zone, finishing a full zone, resetting an empty zone.
            _ => {}
        }
        Ok(Vec::new())
    }

    fn apply_all(&mut self, action: ZoneAction) -> Result<Vec<usize>> {
        use ZoneCondition::*;
        // With ALL, each action applies to the zones in these conditions
        // (ZBC-2 5.3 CLOSE ZONE, 5.4 FINISH ZONE, 5.5 OPEN ZONE, 5.6 RESET
        // WRITE POINTER: "if the ALL bit is set to one ...").
        let applies = |c: ZoneCondition| match action {
            ZoneAction::Open => c == Closed,
            ZoneAction::Close => c.is_open(),
            ZoneAction::Finish => c.is_active(),
            ZoneAction::Reset => c.is_active() || c == Full,
        };
        let picked: Vec<usize> = (0..self.zones.len())
            .filter(|&i| self.zones[i].is_sequential() && applies(self.zones[i].cond))
            .collect();
        if action == ZoneAction::Open && !picked.is_empty() {
            // All or nothing: the closed zones must all fit as open zones.
            let n = u32::try_from(picked.len()).unwrap_or(u32::MAX);
            if self.geo.max_open != 0 && self.open.saturating_add(n) > self.geo.max_open {
                return Err(StorageError::InsufficientZoneResources {
                    zone: self.zones[picked[0]].start,
                });
            }
        }
        let mut reset = Vec::new();
        for idx in picked {
            reset.extend(self.apply_one(idx, action)?);
        }
        Ok(reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ZoneCondition::*;

    fn table(max_open: u32, max_active: u32) -> ZoneTable {
        ZoneTable::new(
            ZoneGeometry {
                zone_len: BlockCount(16),
                zone_cap: BlockCount(12),
                conventional: 1,
                max_open,
                max_active,
            },
            6,
        )
    }

    fn write(t: &mut ZoneTable, lba: u64, n: u64) -> Result<()> {
        let idx = t.check_write(Lba(lba), BlockCount(n))?;
        t.commit_write(idx, BlockCount(n));
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
        assert_eq!(t.zones()[1].start, Lba(16));
        assert_eq!(t.zones()[1].cap, BlockCount(12));
        assert_eq!(t.zones()[5].end(), Lba(96));
    }

    #[test]
    fn sequential_write_rules() {
        let mut t = table(0, 0);
        assert!(matches!(
            write(&mut t, 17, 1),
            Err(StorageError::UnalignedWrite { wp: Lba(16), .. })
        ));
        write(&mut t, 16, 4).unwrap();
        assert_eq!(cond(&t, 1), ImplicitOpen);
        assert_eq!(t.zones()[1].wp, Lba(20));
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
        assert_eq!(t.zones()[1].wp, Lba(28));
        assert!(matches!(
            write(&mut t, 28, 1),
            Err(StorageError::ZoneFull { zone: Lba(16) })
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
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba(32))).unwrap();
        assert_eq!(cond(&t, 2), ExplicitOpen);
        // Closing an empty open zone makes it EMPTY.
        t.apply(ZoneAction::Close, ZoneTarget::One(Lba(32)))
            .unwrap();
        assert_eq!(cond(&t, 2), Empty);
        write(&mut t, 32, 2).unwrap();
        t.apply(ZoneAction::Close, ZoneTarget::One(Lba(32)))
            .unwrap();
        assert_eq!(cond(&t, 2), Closed);
        t.apply(ZoneAction::Finish, ZoneTarget::One(Lba(32)))
            .unwrap();
        assert_eq!(cond(&t, 2), Full);
        assert_eq!(t.zones()[2].wp, Lba(44));
        let reset = t
            .apply(ZoneAction::Reset, ZoneTarget::One(Lba(32)))
            .unwrap();
        assert_eq!(reset, vec![2]);
        assert_eq!(cond(&t, 2), Empty);
        assert_eq!(t.zones()[2].wp, Lba(32));
    }

    #[test]
    fn zone_action_errors_change_nothing() {
        let mut t = table(0, 0);
        assert!(matches!(
            t.apply(ZoneAction::Open, ZoneTarget::One(Lba(17))),
            Err(StorageError::NotZoneStart { .. })
        ));
        assert!(matches!(
            t.apply(ZoneAction::Open, ZoneTarget::One(Lba(0))),
            Err(StorageError::ConventionalZone { .. })
        ));
        assert!(matches!(
            t.apply(ZoneAction::Open, ZoneTarget::One(Lba(96))),
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
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba(64))).unwrap();
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba(80))).unwrap();
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
        t.apply(ZoneAction::Open, ZoneTarget::One(Lba(32))).unwrap();
        assert!(matches!(
            write(&mut t, 48, 1),
            Err(StorageError::InsufficientZoneResources { .. })
        ));
        assert!(matches!(
            t.apply(ZoneAction::Finish, ZoneTarget::One(Lba(48))),
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
    fn reads_may_not_touch_the_gap() {
        let t = table(0, 0);
        t.check_read(Lba(0), BlockCount(28)).unwrap();
        assert!(matches!(
            t.check_read(Lba(20), BlockCount(9)),
            Err(StorageError::BeyondZoneCapacity { .. })
        ));
        assert!(t.check_read(Lba(90), BlockCount(7)).is_err());
    }
}
