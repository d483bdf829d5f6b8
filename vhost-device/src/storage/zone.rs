//! The zone model: zone types, conditions and the zone state machine.
//!
//! The conditions and transitions follow ZBC-2 (T10 BSR INCITS 550) 4.4.3
//! "Zone model", and are the same as the NVMe ZNS command set's zone states,
//! so both front ends share them. All condition changes go through
//! [`ZoneTable::set_condition`], and all open/active resource checks through
//! [`ZoneTable::check_resources`].
//!
//! Open and active zone limits apply to sequential write required zones
//! only: sequential write preferred zones take no part in the open zone
//! resource management (ZBC-2 4.4.3.4: the limit is the MAXIMUM NUMBER OF
//! OPEN SEQUENTIAL WRITE REQUIRED ZONES; for sequential write preferred
//! zones there are only optimal numbers), so opening them never fails.

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
    /// Has a write pointer, but may be written anywhere (ZBC-2 4.4.2.3:
    /// writes away from the write pointer are allowed and use
    /// non-sequential write resources).
    SequentialWritePreferred,
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

    /// READ ONLY or OFFLINE: conditions only the device (not a host
    /// command) puts a zone in (ZBC-2 4.4.3.2.6, 4.4.3.2.8; ZNS 2.1.1.4,
    /// 2.1.1.6).
    pub fn is_unavailable(self) -> bool {
        matches!(self, Self::ReadOnly | Self::Offline)
    }
}

/// A zone management action (ZBC-2 5.x ZONE ACTIONS; NVMe ZNS Zone
/// Management Send).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneAction {
    Open,
    /// Close: an open zone becomes CLOSED, or EMPTY when its write pointer
    /// is at its start and [`ZoneRules::close_unwritten_to_empty`] holds.
    Close,
    Finish,
    Reset,
}

/// Where the zone models this core serves differ. The front end that owns
/// a device picks; the default is the rules of ZBC-2 zoned block devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneRules {
    /// Close of an open zone whose write pointer is at its start makes it
    /// EMPTY (ZBC-2 5.2 CLOSE ZONE) instead of CLOSED.
    pub close_unwritten_to_empty: bool,
    /// The LBAs from a zone's capacity to its end are a zone of their own
    /// for reads (ZBC-2 gap zones: a read crossing into or out of them is a
    /// boundary violation) instead of part of the zone.
    pub capacity_bounds_reads: bool,
    /// Finish of an EMPTY zone passes through an active state, so the
    /// active limit applies (ZBC-2 4.4.3.5.5).
    pub finish_empty_takes_active: bool,
}

impl Default for ZoneRules {
    fn default() -> Self {
        Self {
            close_unwritten_to_empty: true,
            capacity_bounds_reads: true,
            finish_empty_takes_active: true,
        }
    }
}

/// Which zones a zone action applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneTarget {
    /// The zone starting at this LBA.
    One(Lba),
    /// `count` adjacent zones, the first starting at `start` (ZBC-2
    /// ZONE COUNT). A count of 0 means 1.
    Range { start: Lba, count: u32 },
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
    /// A sequential write preferred zone written away from its write
    /// pointer since it was last EMPTY: ZBC-2 "Non-Sequential Write
    /// Resources Active" (the NON_SEQ bit of REPORT ZONES).
    pub non_seq: bool,
}

impl Zone {
    /// One past the last writable LBA.
    pub fn cap_end(&self) -> Lba {
        self.start.saturating_add(self.cap)
    }

    /// One past the last LBA of the zone.
    pub fn end(&self) -> Lba {
        self.start.saturating_add(self.len)
    }

    /// Whether this is a write pointer zone (sequential write required or
    /// preferred).
    pub fn is_sequential(&self) -> bool {
        self.zone_type != ZoneType::Conventional
    }

    /// Whether this zone takes part in open/active zone resource
    /// management: sequential write required zones only.
    fn uses_resources(&self) -> bool {
        self.zone_type == ZoneType::SequentialWriteRequired
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
    /// The type of every zone after the conventional ones: sequential
    /// write required or sequential write preferred.
    pub sequential: ZoneType,
    /// Reads of sequential write required zones are unrestricted (ZBC-2
    /// URSWRZ = 1): they may cross zone boundaries and read past the write
    /// pointer (zeros). When false, such reads are refused.
    pub unrestricted_reads: bool,
}

/// A write that [`ZoneTable::check_write`] accepted, to hand to
/// [`ZoneTable::commit_write`] once the data is in the backing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePlan {
    first: usize,
    last: usize,
    lba: Lba,
    count: BlockCount,
}

impl WritePlan {
    /// Index of the zone the write starts in.
    pub fn zone(&self) -> usize {
        self.first
    }
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
    /// Where zone models differ (see [`ZoneRules`]).
    rules: ZoneRules,
}

/// Counts of a range of zones, as u32 (a device has at most u32::MAX
/// zones).
fn count32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ZoneTable {
    /// Lay out `nr_zones` zones of `geo`, all EMPTY (or NOT WRITE POINTER).
    pub fn new(geo: ZoneGeometry, nr_zones: u32) -> Self {
        let zones: Vec<Zone> = (0..u64::from(nr_zones))
            .map(|i| {
                let start = Lba::new(i * geo.zone_len.get());
                if i < u64::from(geo.conventional) {
                    Zone {
                        zone_type: ZoneType::Conventional,
                        cond: ZoneCondition::NotWritePointer,
                        start,
                        len: geo.zone_len,
                        cap: geo.zone_len,
                        wp: start,
                        non_seq: false,
                    }
                } else {
                    Zone {
                        zone_type: geo.sequential,
                        cond: ZoneCondition::Empty,
                        start,
                        len: geo.zone_len,
                        cap: geo.zone_cap,
                        wp: start,
                        non_seq: false,
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
            rules: ZoneRules::default(),
        }
    }

    /// Follow `rules` where zone models differ.
    pub fn set_rules(&mut self, rules: ZoneRules) {
        self.rules = rules;
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
        let idx = usize::try_from(lba.get() / self.geo.zone_len.get()).ok()?;
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
    /// room for an open closes the oldest implicitly open zone;
    /// `pinned` of them are about to be opened explicitly and cannot be
    /// evicted.
    fn check_resources(
        &self,
        zone: Lba,
        extra_open: u32,
        extra_active: u32,
        pinned: u32,
    ) -> Result<()> {
        let g = &self.geo;
        if g.max_active != 0
            && u64::from(self.active) + u64::from(extra_active) > u64::from(g.max_active)
        {
            return Err(StorageError::InsufficientZoneResources { zone });
        }
        let evictable = count32(self.implicit_lru.len()).saturating_sub(pinned);
        if g.max_open != 0
            && u64::from(self.open) + u64::from(extra_open)
                > u64::from(g.max_open) + u64::from(evictable)
        {
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
    /// counts (of zones that use resources) and marks the zone for
    /// persisting. EMPTY puts the write pointer at the start and ends the
    /// non-sequential write resources; FULL puts it at the capacity.
    fn set_condition(&mut self, idx: usize, cond: ZoneCondition) {
        let zone = &mut self.zones[idx];
        log::trace!("zone {}: {:?} -> {:?}", zone.start, zone.cond, cond);
        let old = zone.cond;
        let counted = zone.uses_resources();
        zone.cond = cond;
        match cond {
            ZoneCondition::Empty => {
                zone.wp = zone.start;
                zone.non_seq = false;
            }
            ZoneCondition::Full => zone.wp = zone.cap_end(),
            _ => {}
        }
        if counted {
            // Counts stay within the zone count, itself a u32.
            self.open = self.open + u32::from(cond.is_open()) - u32::from(old.is_open());
            self.active = self.active + u32::from(cond.is_active()) - u32::from(old.is_active());
            if old == ZoneCondition::ImplicitOpen {
                self.implicit_lru.retain(|&i| i != idx);
            }
            if cond == ZoneCondition::ImplicitOpen {
                self.implicit_lru.push(idx);
            }
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
    pub fn restore(&mut self, idx: usize, cond: ZoneCondition, wp: Lba, non_seq: bool) {
        let Some(zone) = self.zones.get(idx).copied() else {
            return;
        };
        if !zone.is_sequential() {
            return;
        }
        let wp = Lba::new(wp.get().clamp(zone.start.get(), zone.cap_end().get()));
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
        // Only a write preferred zone that is not EMPTY has non-sequential
        // write resources.
        self.zones[idx].non_seq = non_seq
            && zone.zone_type == ZoneType::SequentialWritePreferred
            && cond != ZoneCondition::Empty;
        self.is_dirty[idx] = false;
        self.dirty.retain(|&i| i != idx);
    }

    /// A device-initiated change of the write pointer zone starting at
    /// `zone` to READ ONLY or OFFLINE (ZBC-2 4.4.3.2.6 and 4.4.3.2.8: the
    /// device server, not a command, moves a zone there, from any
    /// condition; ZNS 2.1.1.4, 2.1.1.6: ZSRO may further go to ZSO, and
    /// ZSO is final). The zone gives up any open or active resource.
    /// Returns whether the condition changed (false if it already was
    /// `cond`).
    pub fn set_unavailable(&mut self, zone: Lba, cond: ZoneCondition) -> Result<bool> {
        let idx = self.index_of_start(zone)?;
        let z = self.zones[idx];
        if !z.is_sequential() {
            return Err(StorageError::ConventionalZone { zone });
        }
        if !cond.is_unavailable() || (z.cond == ZoneCondition::Offline && cond != z.cond) {
            return Err(StorageError::InvalidConditionChange {
                zone,
                from: z.cond,
                to: cond,
            });
        }
        if z.cond == cond {
            return Ok(false);
        }
        self.set_condition(idx, cond);
        Ok(true)
    }

    /// The indexes of the first and last zone of `count` (>= 1) blocks at
    /// `lba`, or `OutOfRange`.
    fn span(&self, lba: Lba, count: BlockCount) -> Result<(usize, usize)> {
        let last = lba
            .checked_add(BlockCount::new(count.get().saturating_sub(1)))
            .ok_or_else(|| out_of_range(lba, count))?;
        match (self.index_of(lba), self.index_of(last)) {
            (Some(first), Some(last)) => Ok((first, last)),
            _ => Err(out_of_range(lba, count)),
        }
    }

    /// Validate a write of `count` blocks at `lba` against the zone rules
    /// without changing anything. `count` must be at least 1 and the range
    /// inside the device.
    ///
    /// - Sequential write required (ZBC-2 4.4.3.3): only at the write
    ///   pointer, inside one zone and its capacity, not FULL, and the zone
    ///   must get an open (and active) resource if it has none.
    /// - Conventional and sequential write preferred (ZBC-2 4.4.2.3: a
    ///   host aware device must take writes anywhere, as a disk does):
    ///   anywhere, across zones of these two types, but not into a
    ///   sequential write required zone or past a zone's capacity.
    /// - READ ONLY and OFFLINE zones take no writes.
    pub fn check_write(&self, lba: Lba, count: BlockCount) -> Result<WritePlan> {
        let (first, last) = self.span(lba, count)?;
        let plan = WritePlan {
            first,
            last,
            lba,
            count,
        };
        let end = lba.saturating_add(count);
        let zone = &self.zones[first];
        if zone.cond.is_unavailable() {
            return Err(StorageError::ZoneUnavailable {
                zone: zone.start,
                cond: zone.cond,
            });
        }
        if zone.zone_type != ZoneType::SequentialWriteRequired {
            for z in &self.zones[first..=last] {
                if z.zone_type == ZoneType::SequentialWriteRequired {
                    return Err(StorageError::WriteBoundary { lba, count });
                }
                if z.cond.is_unavailable() {
                    return Err(StorageError::ZoneUnavailable {
                        zone: z.start,
                        cond: z.cond,
                    });
                }
                if z.cap < z.len && lba < z.end() && end > z.cap_end() {
                    return Err(StorageError::BeyondZoneCapacity { lba, count });
                }
            }
            return Ok(plan);
        }
        if last != first {
            return Err(StorageError::WriteBoundary { lba, count });
        }
        if zone.cond == ZoneCondition::Full {
            return Err(StorageError::ZoneFull { zone: zone.start });
        }
        if lba != zone.wp {
            return Err(StorageError::UnalignedWrite { lba, wp: zone.wp });
        }
        if end > zone.cap_end() {
            return Err(StorageError::BeyondZoneCapacity { lba, count });
        }
        match zone.cond {
            ZoneCondition::Empty => self.check_resources(zone.start, 1, 1, 0)?,
            ZoneCondition::Closed => self.check_resources(zone.start, 1, 0, 0)?,
            _ => {}
        }
        Ok(plan)
    }

    /// Account a write that [`Self::check_write`] accepted and that has
    /// reached the backing file: open the written zones implicitly, move
    /// their write pointers, and make them FULL when the write pointer
    /// reaches the capacity.
    ///
    /// In a sequential write preferred zone the write pointer after a
    /// write away from it is vendor specific in ZBC-2 (4.4.3.3); here it
    /// moves to the end of the write if that is past it (as Linux
    /// scsi_debug does), so it always is one past the highest LBA written,
    /// and the zone gets non-sequential write resources. A FULL zone stays
    /// FULL.
    pub fn commit_write(&mut self, plan: WritePlan) {
        // Inside the device: `check_write` made the plan.
        let end = plan.lba.saturating_add(plan.count);
        for idx in plan.first..=plan.last {
            let zone = self.zones[idx];
            if !zone.is_sequential() {
                continue;
            }
            let start = plan.lba.max(zone.start);
            let stop = end.min(zone.cap_end());
            if zone.cond == ZoneCondition::Full {
                // Only write preferred zones take writes when FULL.
                self.zones[idx].non_seq = true;
                self.mark_dirty(idx);
                continue;
            }
            if matches!(zone.cond, ZoneCondition::Empty | ZoneCondition::Closed) {
                if zone.uses_resources() {
                    self.make_room_for_open();
                }
                self.set_condition(idx, ZoneCondition::ImplicitOpen);
            }
            let z = &mut self.zones[idx];
            if start != z.wp {
                z.non_seq = true;
            }
            z.wp = z.wp.max(stop);
            if z.wp >= z.cap_end() {
                self.set_condition(idx, ZoneCondition::Full);
            }
            self.mark_dirty(idx);
        }
    }

    /// Validate a read of `count` (>= 1) blocks at `lba`: it may not touch
    /// an OFFLINE zone or the space between a zone's capacity and its end.
    /// Without unrestricted reads (ZBC-2 URSWRZ = 0, 4.4.3.3), a read that
    /// touches a sequential write required zone may not cross a zone
    /// boundary (checked first) nor read past the write pointer of a zone
    /// that has a valid one (EMPTY, open or CLOSED; FULL and READ ONLY
    /// zones read whole).
    pub fn check_read(&self, lba: Lba, count: BlockCount) -> Result<()> {
        let (first, last) = self.span(lba, count)?;
        // Inside the device: `span` checked it.
        let end = lba.saturating_add(count);
        let zones = &self.zones[first..=last];
        for zone in zones {
            if zone.cond == ZoneCondition::Offline {
                return Err(StorageError::ZoneUnavailable {
                    zone: zone.start,
                    cond: zone.cond,
                });
            }
            // The gap [cap_end, end) of this zone (a ZBC-2 gap zone),
            // intersected with the read. With unrestricted reads a read
            // wholly inside it is allowed and one crossing into or out of
            // it crosses zone types: READ BOUNDARY VIOLATION (ZBC-2
            // 4.4.3.4.2; libzbc tests 363 and 062). Restricted: no access.
            if zone.cap < zone.len && lba < zone.end() && end > zone.cap_end() {
                if !self.geo.unrestricted_reads {
                    return Err(StorageError::BeyondZoneCapacity { lba, count });
                }
                if self.rules.capacity_bounds_reads && (lba < zone.cap_end() || end > zone.end()) {
                    return Err(StorageError::ReadBoundary { lba, count });
                }
            }
        }
        if self.geo.unrestricted_reads {
            return Ok(());
        }
        let required = |z: &Zone| z.zone_type == ZoneType::SequentialWriteRequired;
        if first != last && zones.iter().any(required) {
            return Err(StorageError::ReadBoundary { lba, count });
        }
        let zone = &zones[0];
        let wp_valid = matches!(
            zone.cond,
            ZoneCondition::Empty
                | ZoneCondition::ImplicitOpen
                | ZoneCondition::ExplicitOpen
                | ZoneCondition::Closed
        );
        if required(zone) && wp_valid && end > zone.wp {
            return Err(StorageError::UnwrittenRead { lba, count });
        }
        Ok(())
    }

    /// Apply a zone action (ZBC-2 5.x CLOSE ZONE, FINISH ZONE, OPEN ZONE,
    /// RESET WRITE POINTER; NVMe ZNS Zone Management Send). Either every
    /// zone named changes or, on error, none does. Returns the indexes of
    /// the zones whose write pointer went back to the start (for the
    /// caller to discard their data).
    ///
    /// For one zone or a range, every zone must be a write pointer zone
    /// (`ConventionalZone`) that is not READ ONLY or OFFLINE
    /// (`ZoneUnavailable`), the range must end inside the device
    /// (`OutOfRange`), and the zones together must fit the open/active
    /// limits (`InsufficientZoneResources`); all is checked before any
    /// zone changes.
    pub fn apply(&mut self, action: ZoneAction, target: ZoneTarget) -> Result<Vec<usize>> {
        match target {
            ZoneTarget::One(lba) => {
                let idx = self.index_of_start(lba)?;
                self.apply_range(action, idx, 1)
            }
            ZoneTarget::Range { start, count } => {
                let idx = self.index_of_start(start)?;
                let n = count.max(1) as usize;
                if idx.checked_add(n).map_or(true, |e| e > self.zones.len()) {
                    let blocks = u64::from(count.max(1)).saturating_mul(self.geo.zone_len.get());
                    return Err(out_of_range(start, BlockCount::new(blocks)));
                }
                self.apply_range(action, idx, n)
            }
            ZoneTarget::All => self.apply_all(action),
        }
    }

    /// Apply `action` to zones `first..first + n` (inside the table), all
    /// or nothing.
    fn apply_range(&mut self, action: ZoneAction, first: usize, n: usize) -> Result<Vec<usize>> {
        use ZoneCondition::*;
        let range = first..first + n;
        for z in &self.zones[range.clone()] {
            if !z.is_sequential() {
                return Err(StorageError::ConventionalZone { zone: z.start });
            }
            if z.cond.is_unavailable() {
                return Err(StorageError::ZoneUnavailable {
                    zone: z.start,
                    cond: z.cond,
                });
            }
        }
        let counted: Vec<&Zone> = self.zones[range.clone()]
            .iter()
            .filter(|z| z.uses_resources())
            .collect();
        let with = |conds: &[ZoneCondition]| {
            count32(counted.iter().filter(|z| conds.contains(&z.cond)).count())
        };
        let start = self.zones[first].start;
        match action {
            ZoneAction::Open => self.check_resources(
                start,
                with(&[Empty, Closed]),
                with(&[Empty]),
                with(&[ImplicitOpen]),
            )?,
            // EMPTY -> FULL passes through an active state (ZBC-2
            // 4.4.3.5.5), so the active limit applies.
            ZoneAction::Finish if self.rules.finish_empty_takes_active => {
                self.check_resources(start, 0, with(&[Empty]), 0)?
            }
            ZoneAction::Finish | ZoneAction::Close | ZoneAction::Reset => {}
        }
        // Implicitly open zones of the range first, so that making room
        // for the others never evicts one of them.
        let (mut order, rest): (Vec<usize>, Vec<usize>) =
            range.partition(|&i| self.zones[i].cond == ImplicitOpen);
        order.extend(rest);
        let mut reset = Vec::new();
        for idx in order {
            if self.transition(idx, action) {
                reset.push(idx);
            }
        }
        reset.sort_unstable();
        Ok(reset)
    }

    /// One zone's transition for `action`, resources already checked.
    /// Returns whether the zone was reset.
    fn transition(&mut self, idx: usize, action: ZoneAction) -> bool {
        use ZoneCondition::*;
        let zone = self.zones[idx];
        match (action, zone.cond) {
            (ZoneAction::Open, Empty | Closed) => {
                if zone.uses_resources() {
                    self.make_room_for_open();
                }
                self.set_condition(idx, ExplicitOpen);
            }
            (ZoneAction::Open, ImplicitOpen) => self.set_condition(idx, ExplicitOpen),
            (ZoneAction::Close, ImplicitOpen | ExplicitOpen) => {
                let cond = if self.rules.close_unwritten_to_empty {
                    self.closed_or_empty(idx)
                } else {
                    Closed
                };
                self.set_condition(idx, cond);
            }
            (ZoneAction::Finish, Empty | ImplicitOpen | ExplicitOpen | Closed) => {
                self.set_condition(idx, Full)
            }
            (ZoneAction::Reset, ImplicitOpen | ExplicitOpen | Closed | Full) => {
                self.set_condition(idx, Empty);
                return true;
            }
            // Everything else leaves the zone as it is: opening an
            // explicitly open or full zone, closing an empty, closed or full
            // zone, finishing a full zone, resetting an empty zone.
            _ => {}
        }
        false
    }

    fn apply_all(&mut self, action: ZoneAction) -> Result<Vec<usize>> {
        use ZoneCondition::*;
        // With ALL, each action applies to the zones in these conditions
        // (ZBC-2 5.3 CLOSE ZONE, 5.4 FINISH ZONE, 5.5 OPEN ZONE, 5.6 RESET
        // WRITE POINTER: "if the ALL bit is set to one ..."); READ ONLY and
        // OFFLINE zones are never among them.
        let applies = |c: ZoneCondition| match action {
            ZoneAction::Open => c == Closed,
            ZoneAction::Close => c.is_open(),
            ZoneAction::Finish => c.is_active(),
            ZoneAction::Reset => c.is_active() || c == Full,
        };
        let picked: Vec<usize> = (0..self.zones.len())
            .filter(|&i| self.zones[i].is_sequential() && applies(self.zones[i].cond))
            .collect();
        if action == ZoneAction::Open {
            // All or nothing: the closed zones that use resources must all
            // fit as open zones.
            let counted: Vec<usize> = picked
                .iter()
                .copied()
                .filter(|&i| self.zones[i].uses_resources())
                .collect();
            let n = count32(counted.len());
            if let Some(&first) = counted.first() {
                if self.geo.max_open != 0 && self.open.saturating_add(n) > self.geo.max_open {
                    return Err(StorageError::InsufficientZoneResources {
                        zone: self.zones[first].start,
                    });
                }
            }
        }
        let mut reset = Vec::new();
        for idx in picked {
            if self.transition(idx, action) {
                reset.push(idx);
            }
        }
        Ok(reset)
    }
}

fn out_of_range(lba: Lba, count: BlockCount) -> StorageError {
    StorageError::OutOfRange {
        lba,
        count,
        capacity: BlockCount::new(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ZoneCondition::*;

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
}
