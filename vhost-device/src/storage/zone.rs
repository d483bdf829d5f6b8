//! The zone model: zone types, conditions and the zone state machine.
//!
//! The conditions and transitions follow ZBC-2 (T10 BSR INCITS 550) 4.4.3
//! "Zone model", and are the same as the NVMe ZNS command set's zone states,
//! so both front ends share them. All condition changes go through
//! `ZoneTable::set_condition` (`storage::table`), and all open/active resource checks through
//! `ZoneTable::check_resources`.
//!
//! Open and active zone limits apply to sequential write required zones
//! only: sequential write preferred zones take no part in the open zone
//! resource management (ZBC-2 4.4.3.4: the limit is the MAXIMUM NUMBER OF
//! OPEN SEQUENTIAL WRITE REQUIRED ZONES; for sequential write preferred
//! zones there are only optimal numbers), so opening them never fails.

use super::units::{BlockCount, Lba};

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
    pub fn uses_resources(&self) -> bool {
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
