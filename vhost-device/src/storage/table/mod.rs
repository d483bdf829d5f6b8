//! The zone table: the zones of one device and their state machine (the
//! types are in `storage::zone`). All condition changes go through
//! [`ZoneTable::set_condition`], and all open/active resource checks
//! through [`ZoneTable::check_resources`].

use super::{
    error::{Result, StorageError},
    units::{BlockCount, Lba},
    zone::{Zone, ZoneAction, ZoneCondition, ZoneGeometry, ZoneRules, ZoneTarget, ZoneType},
};

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
                if idx.checked_add(n).is_none_or(|e| e > self.zones.len()) {
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
mod tests;
