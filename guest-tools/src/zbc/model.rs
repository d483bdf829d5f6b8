//! An independent model of the zones of a ZBC logical unit, written from
//! ZBC-2 (INCITS 550) and SBC-4, not from the backend: zone types and
//! conditions (4.4.3), the write pointer, open and active zone resources
//! with the implicit-open eviction of 4.4.3.2, zone capacity below the zone
//! size as ZBC-2 gap zones (zone alignment method 8h, zone starting LBA
//! granularity), unrestricted reads (URSWRZ), and the reporting options of
//! REPORT ZONES (6.4.3.2, table 33).
//!
//! The suite drives the model with the operations it sends the device and
//! compares every REPORT ZONES answer with it. A violation the standard
//! names is a [`Violation`], whose sense data the suite expects byte for
//! byte.
//!
//! Where ZBC-2 leaves a choice to the device server the model does not
//! guess: which implicitly opened zone is closed to free an open zone
//! resource is "vendor specific", so the model closes the one implicitly
//! opened longest ago and remembers the alternatives ([`Eviction`]); the
//! suite accepts any of them ([`Model::adopt_eviction`]) and checks the
//! oldest-first choice zonecopy documents in a test of its own.
//!
//! Active zones are not a ZBC-2 notion (ZNS has them): a LUN given a
//! maximum number of active zones is modelled as ZNS counts them (zones
//! IMPLICITLY OPENED, EXPLICITLY OPENED or CLOSED), an exceeded limit
//! reported as INSUFFICIENT ZONE RESOURCES like the open limit.

mod report;
mod violation;
pub use self::{report::*, violation::*};

use std::fmt;

/// ZONE TYPE (ZBC-2 6.4.3.3, table 36).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneType {
    /// 1h CONVENTIONAL.
    Conventional,
    /// 2h SEQUENTIAL WRITE REQUIRED.
    SeqRequired,
    /// 3h SEQUENTIAL WRITE PREFERRED.
    SeqPreferred,
    /// 5h GAP.
    Gap,
}

impl ZoneType {
    /// The ZONE TYPE code.
    pub fn code(self) -> u8 {
        match self {
            Self::Conventional => 1,
            Self::SeqRequired => 2,
            Self::SeqPreferred => 3,
            Self::Gap => 5,
        }
    }

    /// A write pointer zone (sequential write required or preferred).
    pub fn has_wp(self) -> bool {
        matches!(self, Self::SeqRequired | Self::SeqPreferred)
    }
}

/// ZONE CONDITION (ZBC-2 6.4.3.3, table 37).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// 0h NOT WRITE POINTER.
    NotWp,
    /// 1h EMPTY.
    Empty,
    /// 2h IMPLICITLY OPENED.
    ImpOpen,
    /// 3h EXPLICITLY OPENED.
    ExpOpen,
    /// 4h CLOSED.
    Closed,
    /// Dh READ ONLY.
    ReadOnly,
    /// Eh FULL.
    Full,
    /// Fh OFFLINE.
    Offline,
}

impl Cond {
    /// The ZONE CONDITION code.
    pub fn code(self) -> u8 {
        match self {
            Self::NotWp => 0x0,
            Self::Empty => 0x1,
            Self::ImpOpen => 0x2,
            Self::ExpOpen => 0x3,
            Self::Closed => 0x4,
            Self::ReadOnly => 0xd,
            Self::Full => 0xe,
            Self::Offline => 0xf,
        }
    }

    /// The zone holds an open zone resource.
    pub fn is_open(self) -> bool {
        matches!(self, Self::ImpOpen | Self::ExpOpen)
    }

    /// The zone is active (ZNS sense: open or closed).
    pub fn is_active(self) -> bool {
        matches!(self, Self::ImpOpen | Self::ExpOpen | Self::Closed)
    }
}

/// Name of a ZONE CONDITION code, for messages.
pub fn cond_name(code: u8) -> String {
    match code {
        0x0 => "NOT_WP".into(),
        0x1 => "EMPTY".into(),
        0x2 => "IMP_OPEN".into(),
        0x3 => "EXP_OPEN".into(),
        0x4 => "CLOSED".into(),
        0x5 => "INACTIVE".into(),
        0xd => "READ_ONLY".into(),
        0xe => "FULL".into(),
        0xf => "OFFLINE".into(),
        c => format!("cond {c:#x}"),
    }
}

/// Name of a ZONE TYPE code, for messages.
pub fn type_name(code: u8) -> String {
    match code {
        1 => "CONV".into(),
        2 => "SWR".into(),
        3 => "SWP".into(),
        4 => "SOBR".into(),
        5 => "GAP".into(),
        t => format!("type {t:#x}"),
    }
}

/// One zone as REPORT ZONES describes it (ZBC-2 6.4.3.3), in logical
/// blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    /// ZONE START LBA.
    pub start: u64,
    /// ZONE LENGTH.
    pub len: u64,
    /// ZONE TYPE.
    pub ztype: ZoneType,
    /// ZONE CONDITION.
    pub cond: Cond,
    /// WRITE POINTER LBA (meaningful only when [`Zone::wp_valid`]).
    pub wp: u64,
    /// NON_SEQ: non-sequential write resources active.
    pub non_seq: bool,
    /// RESET: reset write pointer recommended.
    pub reset: bool,
    /// The write pointer is known: false after a write that was not at the
    /// write pointer of a sequential write preferred zone (ZBC-2 4.4.3.3:
    /// its write pointer is then vendor specific).
    pub wp_known: bool,
}

impl Zone {
    /// One past the last LBA of the zone.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }

    /// Whether `lba` is in the zone.
    pub fn contains(&self, lba: u64) -> bool {
        lba >= self.start && lba < self.end()
    }

    /// Whether the WRITE POINTER LBA field is valid (ZBC-2 6.4.3.3: it is
    /// invalid for conventional and gap zones and for zones that are
    /// FULL, READ ONLY or OFFLINE).
    pub fn wp_valid(&self) -> bool {
        self.ztype.has_wp()
            && self.wp_known
            && matches!(
                self.cond,
                Cond::Empty | Cond::ImpOpen | Cond::ExpOpen | Cond::Closed
            )
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} start {} len {}",
            type_name(self.ztype.code()),
            cond_name(self.cond.code()),
            self.start,
            self.len
        )?;
        if self.wp_valid() {
            write!(f, " wp {}", self.wp)?;
        }
        if self.non_seq {
            f.write_str(" non_seq")?;
        }
        if self.reset {
            f.write_str(" reset")?;
        }
        Ok(())
    }
}

/// What the host configured, in logical blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Logical block size in bytes.
    pub block_size: u64,
    /// Capacity in logical blocks.
    pub blocks: u64,
    /// Zone size (the zone starting LBA granularity) in blocks.
    pub zone_blocks: u64,
    /// Writable blocks of each write pointer zone (<= `zone_blocks`); the
    /// rest of each such zone is a gap zone.
    pub cap_blocks: u64,
    /// Conventional zones at the start.
    pub conventional: u64,
    /// Host aware: sequential write preferred zones, no open limit.
    pub host_aware: bool,
    /// URSWRZ (VPD B6h): reads in sequential write required zones are
    /// unrestricted.
    pub urswrz: bool,
    /// Maximum open sequential write required zones (`None`: no limit).
    pub max_open: Option<u32>,
    /// Maximum active zones (`None`: no limit).
    pub max_active: Option<u32>,
}

/// A zone management action (ZBC-2 5.2-5.5: ZBC OUT service actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 01h CLOSE ZONE.
    Close,
    /// 02h FINISH ZONE.
    Finish,
    /// 03h OPEN ZONE.
    Open,
    /// 04h RESET WRITE POINTER.
    Reset,
}

impl Action {
    /// The ZBC OUT service action.
    pub fn service_action(self) -> u8 {
        match self {
            Self::Close => 0x01,
            Self::Finish => 0x02,
            Self::Open => 0x03,
            Self::Reset => 0x04,
        }
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Close => "CLOSE ZONE",
            Self::Finish => "FINISH ZONE",
            Self::Open => "OPEN ZONE",
            Self::Reset => "RESET WRITE POINTER",
        }
    }
}

/// An implicitly opened zone closed to free an open zone resource: the
/// one the model chose and the ones the device server could have chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// Index of the zone the model closed (the oldest implicitly opened).
    pub chosen: usize,
    /// Indices of every zone that was IMPLICITLY OPENED, oldest first.
    pub candidates: Vec<usize>,
}

/// The reporting options of REPORT ZONES the model knows (ZBC-2 6.4.2, the
/// REPORTING OPTIONS field, table 33); every other value is reserved.
pub const REPORT_OPTIONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x11, 0x3e, 0x3f,
];

/// The zones of one logical unit.
#[derive(Debug, Clone)]
pub struct Model {
    /// What the host configured.
    pub layout: Layout,
    /// Every zone in LBA order, gap zones included.
    pub zones: Vec<Zone>,
    /// Implicitly opened zones, in the order they became so.
    imp_order: Vec<usize>,
    /// The eviction done by the last operation, if any.
    pub last_eviction: Option<Eviction>,
}

impl Model {
    /// A freshly formatted unit: conventional zones, then write pointer
    /// zones (sequential write required, or preferred when host aware),
    /// each followed by a gap zone when the capacity is below the zone
    /// size; every write pointer zone EMPTY.
    pub fn new(layout: Layout) -> Self {
        let mut zones = Vec::new();
        let mut start = 0;
        let mut i = 0u64;
        let z = layout.zone_blocks.max(1);
        while start < layout.blocks {
            let len = z.min(layout.blocks - start);
            if i < layout.conventional {
                zones.push(Zone {
                    start,
                    len,
                    ztype: ZoneType::Conventional,
                    cond: Cond::NotWp,
                    wp: start,
                    non_seq: false,
                    reset: false,
                    wp_known: false,
                });
            } else {
                let cap = layout.cap_blocks.min(len).max(1);
                zones.push(Zone {
                    start,
                    len: cap,
                    ztype: if layout.host_aware {
                        ZoneType::SeqPreferred
                    } else {
                        ZoneType::SeqRequired
                    },
                    cond: Cond::Empty,
                    wp: start,
                    non_seq: false,
                    reset: false,
                    wp_known: true,
                });
                if cap < len {
                    zones.push(Zone {
                        start: start + cap,
                        len: len - cap,
                        ztype: ZoneType::Gap,
                        cond: Cond::NotWp,
                        wp: start + cap,
                        non_seq: false,
                        reset: false,
                        wp_known: false,
                    });
                }
            }
            start += len;
            i += 1;
        }
        Self {
            layout,
            zones,
            imp_order: Vec::new(),
            last_eviction: None,
        }
    }

    /// Index of the zone containing `lba`.
    pub fn zone_index(&self, lba: u64) -> Option<usize> {
        let i = self.zones.partition_point(|z| z.start <= lba);
        (i > 0 && self.zones[i - 1].contains(lba)).then(|| i - 1)
    }

    /// The zone containing `lba`.
    pub fn zone_at(&self, lba: u64) -> Option<&Zone> {
        self.zone_index(lba).map(|i| &self.zones[i])
    }

    /// Indices of the write pointer zones, in order.
    pub fn wp_zones(&self) -> Vec<usize> {
        (0..self.zones.len())
            .filter(|&i| self.zones[i].ztype.has_wp())
            .collect()
    }

    /// Zones holding an open zone resource (sequential write required only:
    /// ZBC-2 limits open sequential write required zones).
    pub fn open_count(&self) -> usize {
        self.zones
            .iter()
            .filter(|z| z.ztype == ZoneType::SeqRequired && z.cond.is_open())
            .count()
    }

    /// Active sequential write required zones.
    pub fn active_count(&self) -> usize {
        self.zones
            .iter()
            .filter(|z| z.ztype == ZoneType::SeqRequired && z.cond.is_active())
            .count()
    }

    fn set_cond(&mut self, i: usize, cond: Cond) {
        let was = self.zones[i].cond;
        self.zones[i].cond = cond;
        if was == Cond::ImpOpen && cond != Cond::ImpOpen {
            self.imp_order.retain(|&j| j != i);
        }
        if was != Cond::ImpOpen && cond == Cond::ImpOpen {
            self.imp_order.push(i);
        }
    }

    /// Resources for zone `i` to become open (ZBC-2 4.4.3.2: an EMPTY or
    /// CLOSED sequential write required zone being opened, implicitly by a
    /// write or explicitly). May close the oldest implicitly opened zone.
    fn acquire_open(&mut self, i: usize) -> Result<(), Violation> {
        let z = self.zones[i];
        if z.ztype != ZoneType::SeqRequired {
            return Ok(());
        }
        if z.cond == Cond::Empty {
            if let Some(max) = self.layout.max_active {
                if self.active_count() >= max as usize {
                    return Err(Violation::InsufficientResources);
                }
            }
        }
        if let Some(max) = self.layout.max_open {
            if self.open_count() >= max as usize {
                let candidates: Vec<usize> = self
                    .imp_order
                    .iter()
                    .copied()
                    .filter(|&j| self.zones[j].ztype == ZoneType::SeqRequired)
                    .collect();
                let Some(&victim) = candidates.first() else {
                    return Err(Violation::InsufficientResources);
                };
                self.close_zone(victim);
                self.last_eviction = Some(Eviction {
                    chosen: victim,
                    candidates,
                });
            }
        }
        Ok(())
    }

    /// An open zone becomes CLOSED, or EMPTY if nothing was written.
    fn close_zone(&mut self, i: usize) {
        let z = self.zones[i];
        let to = if z.wp_known && z.wp == z.start && !z.non_seq {
            Cond::Empty
        } else {
            Cond::Closed
        };
        self.set_cond(i, to);
    }

    fn make_full(&mut self, i: usize) {
        self.set_cond(i, Cond::Full);
        let z = &mut self.zones[i];
        z.wp = z.end();
        z.wp_known = true;
    }

    fn reset_zone(&mut self, i: usize) {
        self.set_cond(i, Cond::Empty);
        let z = &mut self.zones[i];
        z.wp = z.start;
        z.wp_known = true;
        z.non_seq = false;
        z.reset = false;
    }

    /// WRITE(16) of `n` blocks at `lba` (SBC-4 5.53, ZBC-2 4.4.3.3 and
    /// 4.4.3.4).
    pub fn write(&mut self, lba: u64, n: u64) -> Result<(), Violation> {
        self.last_eviction = None;
        let end = lba.checked_add(n).ok_or(Violation::LbaOutOfRange)?;
        if end > self.layout.blocks {
            return Err(Violation::LbaOutOfRange);
        }
        if n == 0 {
            return Ok(());
        }
        let i = self.zone_index(lba).ok_or(Violation::LbaOutOfRange)?;
        let z = self.zones[i];
        match z.ztype {
            ZoneType::Gap => Err(Violation::GapZone),
            ZoneType::Conventional => {
                // Across conventional zones only.
                let mut j = i;
                while self.zones[j].end() < end {
                    j += 1;
                    if self.zones[j].ztype != ZoneType::Conventional {
                        return Err(Violation::WriteBoundary);
                    }
                }
                Ok(())
            }
            ZoneType::SeqRequired => {
                match z.cond {
                    Cond::Offline => return Err(Violation::Offline),
                    Cond::ReadOnly => return Err(Violation::ReadOnly),
                    // ZBC-2 4.4.3.3.2: no write pointer to write at.
                    Cond::Full => return Err(Violation::InvalidField(Field::Any)),
                    _ => {}
                }
                if lba != z.wp {
                    return Err(Violation::UnalignedWrite);
                }
                if end > z.end() {
                    return Err(Violation::WriteBoundary);
                }
                if matches!(z.cond, Cond::Empty | Cond::Closed) {
                    self.acquire_open(i)?;
                    self.set_cond(i, Cond::ImpOpen);
                }
                self.zones[i].wp = end;
                if end == z.end() {
                    self.make_full(i);
                }
                Ok(())
            }
            ZoneType::SeqPreferred => {
                match z.cond {
                    Cond::Offline => return Err(Violation::Offline),
                    Cond::ReadOnly => return Err(Violation::ReadOnly),
                    _ => {}
                }
                // Sequential write preferred zones take writes anywhere
                // (ZBC-2 4.4.3.4); one within the zone is modelled.
                if end > z.end() || z.cond == Cond::Full {
                    // Not modelled: the zone's state is left as is and the
                    // suite does not write like this.
                    return Ok(());
                }
                let sequential = z.wp_known && lba == z.wp && !z.non_seq;
                if matches!(z.cond, Cond::Empty | Cond::Closed) {
                    self.set_cond(i, Cond::ImpOpen);
                }
                if sequential {
                    self.zones[i].wp = end;
                    if end == z.end() {
                        self.make_full(i);
                    }
                } else {
                    self.zones[i].non_seq = true;
                    self.zones[i].wp_known = false;
                }
                Ok(())
            }
        }
    }

    /// READ(16) of `n` blocks at `lba`. A read across the boundary of two
    /// zones of different types is a READ BOUNDARY VIOLATION whatever
    /// URSWRZ (ZBC-2 4.4.3.4.2; libzbc test 062 accepts ATTEMPT TO READ
    /// INVALID DATA, ZBC-1's answer, too). With URSWRZ 0 (4.4.3.3.3) a
    /// gap zone cannot be read, a read may not cross from one sequential
    /// write required zone into the next, nor read at or past the write
    /// pointer of a zone that is not FULL; with URSWRZ 1 all of that reads
    /// (libzbc tests 363, 064).
    pub fn read(&self, lba: u64, n: u64) -> Result<(), Violation> {
        let end = lba.checked_add(n).ok_or(Violation::LbaOutOfRange)?;
        if end > self.layout.blocks {
            return Err(Violation::LbaOutOfRange);
        }
        if n == 0 {
            return Ok(());
        }
        let first = self.zone_index(lba).ok_or(Violation::LbaOutOfRange)?;
        let last = self.zone_index(end - 1).ok_or(Violation::LbaOutOfRange)?;
        let touched = &self.zones[first..=last];
        if touched.iter().any(|z| z.cond == Cond::Offline) {
            return Err(Violation::Offline);
        }
        if touched.iter().any(|z| z.ztype != touched[0].ztype) {
            return Err(Violation::ReadBoundary);
        }
        if self.layout.urswrz || self.layout.host_aware {
            return Ok(());
        }
        if touched.iter().any(|z| z.ztype == ZoneType::Gap) {
            return Err(Violation::GapZone);
        }
        if touched.len() > 1 && touched.iter().any(|z| z.ztype == ZoneType::SeqRequired) {
            return Err(Violation::ReadBoundary);
        }
        for z in touched {
            if z.ztype == ZoneType::SeqRequired
                && matches!(
                    z.cond,
                    Cond::Empty | Cond::ImpOpen | Cond::ExpOpen | Cond::Closed
                )
                && end > z.wp
            {
                return Err(Violation::ReadInvalidData);
            }
        }
        Ok(())
    }

    /// The zones a zone action with ALL 0 applies to: `count` zones (0
    /// means 1, ZBC-2 5.2) from the one starting at `zone_id`.
    fn targets(&self, zone_id: u64, count: u16) -> Result<Vec<usize>, Violation> {
        if zone_id >= self.layout.blocks {
            return Err(Violation::LbaOutOfRange);
        }
        let i = self.zone_index(zone_id).ok_or(Violation::LbaOutOfRange)?;
        let z = self.zones[i];
        if z.start != zone_id || z.ztype == ZoneType::Conventional {
            return Err(Violation::InvalidField(Field::Cdb(2, Some(7))));
        }
        if z.ztype == ZoneType::Gap {
            return Err(Violation::GapZone);
        }
        let n = usize::from(count.max(1));
        if i + n > self.zones.len() {
            return Err(Violation::InvalidField(Field::Any));
        }
        let t: Vec<usize> = (i..i + n).collect();
        if t.iter().any(|&j| !self.zones[j].ztype.has_wp()) {
            return Err(Violation::InvalidField(Field::Any));
        }
        Ok(t)
    }

    /// A ZBC OUT zone action (ZBC-2 5.2 CLOSE ZONE, 5.3 FINISH ZONE, 5.4
    /// OPEN ZONE, 5.5 RESET WRITE POINTER). All-or-nothing: on a violation
    /// no zone changes.
    pub fn zone_action(
        &mut self,
        act: Action,
        zone_id: u64,
        count: u16,
        all: bool,
    ) -> Result<(), Violation> {
        self.last_eviction = None;
        let before = (self.zones.clone(), self.imp_order.clone());
        let r = if all {
            self.action_all(act)
        } else {
            self.targets(zone_id, count)
                .and_then(|t| t.into_iter().try_for_each(|i| self.action_one(act, i)))
        };
        if r.is_err() {
            (self.zones, self.imp_order) = before;
            self.last_eviction = None;
        }
        r
    }

    fn action_one(&mut self, act: Action, i: usize) -> Result<(), Violation> {
        let z = self.zones[i];
        match (act, z.cond) {
            (_, Cond::Offline) => Err(Violation::Offline),
            (_, Cond::ReadOnly) => Err(Violation::ReadOnly),
            (Action::Open, Cond::Empty | Cond::Closed) => {
                self.acquire_open(i)?;
                self.set_cond(i, Cond::ExpOpen);
                Ok(())
            }
            (Action::Open, Cond::ImpOpen) => {
                self.set_cond(i, Cond::ExpOpen);
                Ok(())
            }
            (Action::Close, Cond::ImpOpen | Cond::ExpOpen) => {
                self.close_zone(i);
                Ok(())
            }
            (Action::Finish, Cond::Empty | Cond::ImpOpen | Cond::ExpOpen | Cond::Closed) => {
                self.make_full(i);
                Ok(())
            }
            (
                Action::Reset,
                Cond::Empty | Cond::ImpOpen | Cond::ExpOpen | Cond::Closed | Cond::Full,
            ) => {
                self.reset_zone(i);
                Ok(())
            }
            // OPEN of an open or FULL zone, CLOSE of an EMPTY, CLOSED or
            // FULL zone, FINISH of a FULL zone: no change, GOOD.
            _ => Ok(()),
        }
    }

    /// ALL set: OPEN opens every CLOSED zone (INSUFFICIENT ZONE RESOURCES,
    /// nothing opened, if they do not all fit beside the zones already
    /// open), CLOSE closes every open zone, FINISH finishes every open or
    /// CLOSED zone, RESET resets every open, CLOSED or FULL zone; READ
    /// ONLY and OFFLINE zones are left alone.
    fn action_all(&mut self, act: Action) -> Result<(), Violation> {
        let wp: Vec<usize> = self.wp_zones();
        match act {
            Action::Open => {
                let closed: Vec<usize> = wp
                    .iter()
                    .copied()
                    .filter(|&i| self.zones[i].cond == Cond::Closed)
                    .collect();
                let swr_closed = closed
                    .iter()
                    .filter(|&&i| self.zones[i].ztype == ZoneType::SeqRequired)
                    .count();
                if let Some(max) = self.layout.max_open {
                    if self.open_count() + swr_closed > max as usize {
                        return Err(Violation::InsufficientResources);
                    }
                }
                for i in closed {
                    self.set_cond(i, Cond::ExpOpen);
                }
            }
            Action::Close => {
                for i in wp {
                    if self.zones[i].cond.is_open() {
                        self.close_zone(i);
                    }
                }
            }
            Action::Finish => {
                for i in wp {
                    if self.zones[i].cond.is_active() {
                        self.make_full(i);
                    }
                }
            }
            Action::Reset => {
                for i in wp {
                    if matches!(
                        self.zones[i].cond,
                        Cond::ImpOpen | Cond::ExpOpen | Cond::Closed | Cond::Full
                    ) {
                        self.reset_zone(i);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
