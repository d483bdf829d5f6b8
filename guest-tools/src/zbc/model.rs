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

/// The field a SENSE KEY SPECIFIC field pointer names (SPC-4 4.5.2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Byte `0` of the CDB, bit pointer `1` if any.
    Cdb(u16, Option<u8>),
    /// The standard says the field pointer "should" be set and leaves
    /// which to the device: SKSV 0, or SKSV 1 with C/D 1 and any byte.
    Any,
}

/// A violation the device server reports with CHECK CONDITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE (21h/00h).
    LbaOutOfRange,
    /// ILLEGAL REQUEST, INVALID FIELD IN CDB (24h/00h).
    InvalidField(Field),
    /// ILLEGAL REQUEST, UNALIGNED WRITE COMMAND (21h/04h).
    UnalignedWrite,
    /// ILLEGAL REQUEST, WRITE BOUNDARY VIOLATION (21h/05h).
    WriteBoundary,
    /// ILLEGAL REQUEST, ATTEMPT TO READ INVALID DATA (21h/06h).
    ReadInvalidData,
    /// ILLEGAL REQUEST, READ BOUNDARY VIOLATION (21h/07h).
    ReadBoundary,
    /// ILLEGAL REQUEST, ATTEMPT TO ACCESS GAP ZONE (21h/09h).
    GapZone,
    /// DATA PROTECT, ZONE IS READ ONLY (27h/08h).
    ReadOnly,
    /// DATA PROTECT, ZONE IS OFFLINE (2Ch/0Eh).
    Offline,
    /// DATA PROTECT, INSUFFICIENT ZONE RESOURCES (55h/0Eh).
    InsufficientResources,
}

/// Sense key ILLEGAL REQUEST.
pub const ILLEGAL_REQUEST: u8 = 0x5;
/// Sense key DATA PROTECT.
pub const DATA_PROTECT: u8 = 0x7;

impl Violation {
    /// Sense key, ASC, ASCQ.
    pub fn key_asc_ascq(self) -> (u8, u8, u8) {
        match self {
            Self::LbaOutOfRange => (ILLEGAL_REQUEST, 0x21, 0x00),
            Self::InvalidField(_) => (ILLEGAL_REQUEST, 0x24, 0x00),
            Self::UnalignedWrite => (ILLEGAL_REQUEST, 0x21, 0x04),
            Self::WriteBoundary => (ILLEGAL_REQUEST, 0x21, 0x05),
            Self::ReadInvalidData => (ILLEGAL_REQUEST, 0x21, 0x06),
            Self::ReadBoundary => (ILLEGAL_REQUEST, 0x21, 0x07),
            Self::GapZone => (ILLEGAL_REQUEST, 0x21, 0x09),
            Self::ReadOnly => (DATA_PROTECT, 0x27, 0x08),
            Self::Offline => (DATA_PROTECT, 0x2c, 0x0e),
            Self::InsufficientResources => (DATA_PROTECT, 0x55, 0x0e),
        }
    }

    /// The 18 bytes of fixed-format sense data (SPC-4 4.5.3, response code
    /// 70h, current error) the device server returns, INFORMATION not
    /// valid; the SENSE KEY SPECIFIC field holds the field pointer of
    /// [`Field::Cdb`] and is zero otherwise.
    pub fn fixed_sense(self) -> [u8; 18] {
        let (key, asc, ascq) = self.key_asc_ascq();
        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = key;
        s[7] = 10;
        s[12] = asc;
        s[13] = ascq;
        if let Self::InvalidField(Field::Cdb(byte, bit)) = self {
            // SKSV, C/D = 1 (CDB), BPV and BIT POINTER, FIELD POINTER.
            s[15] = 0x80 | 0x40 | bit.map_or(0, |b| 0x08 | (b & 7));
            s[16..18].copy_from_slice(&byte.to_be_bytes());
        }
        s
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, a, q) = self.key_asc_ascq();
        let name = match self {
            Self::LbaOutOfRange => "LBA OUT OF RANGE",
            Self::InvalidField(_) => "INVALID FIELD IN CDB",
            Self::UnalignedWrite => "UNALIGNED WRITE COMMAND",
            Self::WriteBoundary => "WRITE BOUNDARY VIOLATION",
            Self::ReadInvalidData => "ATTEMPT TO READ INVALID DATA",
            Self::ReadBoundary => "READ BOUNDARY VIOLATION",
            Self::GapZone => "ATTEMPT TO ACCESS GAP ZONE",
            Self::ReadOnly => "ZONE IS READ ONLY",
            Self::Offline => "ZONE IS OFFLINE",
            Self::InsufficientResources => "INSUFFICIENT ZONE RESOURCES",
        };
        write!(f, "{name} ({k:x}/{a:02x}/{q:02x})")?;
        if let Self::InvalidField(Field::Cdb(b, bit)) = self {
            write!(f, " field pointer byte {b}")?;
            if let Some(bit) = bit {
                write!(f, " bit {bit}")?;
            }
        }
        Ok(())
    }
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

    /// The device put zone `i` in READ ONLY or OFFLINE on its own (ZBC-2
    /// 4.4.3.2.6, 4.4.3.2.8): it no longer holds resources, and its write
    /// pointer is invalid.
    pub fn set_condition(&mut self, i: usize, cond: Cond) {
        self.set_cond(i, cond);
    }

    /// Whether `z` matches REPORT ZONES reporting option `opt`.
    pub fn matches(z: &Zone, opt: u8) -> bool {
        match opt {
            0x00 => true,
            0x01 => z.cond == Cond::Empty,
            0x02 => z.cond == Cond::ImpOpen,
            0x03 => z.cond == Cond::ExpOpen,
            0x04 => z.cond == Cond::Closed,
            0x05 => z.cond == Cond::Full,
            0x06 => z.cond == Cond::ReadOnly,
            0x07 => z.cond == Cond::Offline,
            // INACTIVE: a condition of zone domains devices only; these
            // logical units have none.
            0x08 => false,
            0x10 => z.reset,
            0x11 => z.non_seq,
            // "List all zones except gap zones" (not: only gap zones).
            0x3e => z.ztype != ZoneType::Gap,
            0x3f => z.cond == Cond::NotWp,
            _ => false,
        }
    }

    /// REPORT ZONES (ZBC-2 6.4): the zones matching `opt` from the one
    /// containing `start` to the last.
    pub fn report(&self, start: u64, opt: u8) -> Result<Vec<Zone>, Violation> {
        if !REPORT_OPTIONS.contains(&opt) {
            return Err(Violation::InvalidField(Field::Any));
        }
        let i = self.zone_index(start).ok_or(Violation::LbaOutOfRange)?;
        Ok(self.zones[i..]
            .iter()
            .filter(|z| Self::matches(z, opt))
            .copied()
            .collect())
    }

    /// The ZONE LIST LENGTH REPORT ZONES must return for `matching` zones
    /// and allocation length `alloc` (ZBC-2 6.4.3.2: with PARTIAL 0 the
    /// whole list whatever the allocation length, with PARTIAL 1 only the
    /// descriptors that fit).
    pub fn zone_list_length(matching: usize, alloc: u32, partial: bool) -> u64 {
        let all = matching as u64;
        let n = if partial {
            all.min(u64::from(alloc).saturating_sub(64) / 64)
        } else {
            all
        };
        n * 64
    }

    /// After a device step: if the last operation closed an implicitly
    /// opened zone and the device closed another of the candidates, take
    /// the device's choice (ZBC-2 leaves it to the device server). Returns
    /// the zone the device closed, if it differs from the model's choice.
    pub fn adopt_eviction(&mut self, device: &[Zone]) -> Option<usize> {
        let ev = self.last_eviction.clone()?;
        let closed_by_device = |j: usize| {
            device
                .iter()
                .find(|d| d.start == self.zones[j].start)
                .is_some_and(|d| d.cond == Cond::Closed)
        };
        if closed_by_device(ev.chosen) {
            return None;
        }
        let other = ev
            .candidates
            .iter()
            .copied()
            .find(|&j| j != ev.chosen && closed_by_device(j))?;
        // Undo the model's choice, make the device's.
        self.zones[ev.chosen].cond = Cond::ImpOpen;
        self.zones[other].cond = Cond::Closed;
        self.imp_order.retain(|&j| j != other);
        let pos = ev
            .candidates
            .iter()
            .position(|&j| j == ev.chosen)
            .unwrap_or(0);
        self.imp_order
            .insert(pos.min(self.imp_order.len()), ev.chosen);
        self.last_eviction = Some(Eviction {
            chosen: other,
            candidates: ev.candidates,
        });
        Some(other)
    }

    /// Differences between the device's zones (a full REPORT ZONES from LBA
    /// 0 with option 00h) and the model, one line each; empty if equal.
    pub fn diff(&self, device: &[Zone]) -> Vec<String> {
        diff_zones(&self.zones, device)
    }
}

/// Differences between `want` (the model) and `got` (the device), field by
/// field, the write pointer only where it is valid.
pub fn diff_zones(want: &[Zone], got: &[Zone]) -> Vec<String> {
    let mut out = Vec::new();
    if want.len() != got.len() {
        out.push(format!(
            "{} zones reported, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        let mut bad = Vec::new();
        if g.start != w.start {
            bad.push(format!("start {} (expected {})", g.start, w.start));
        }
        if g.len != w.len {
            bad.push(format!("len {} (expected {})", g.len, w.len));
        }
        if g.ztype != w.ztype {
            bad.push(format!(
                "type {} (expected {})",
                type_name(g.ztype.code()),
                type_name(w.ztype.code())
            ));
        }
        if g.cond != w.cond {
            bad.push(format!(
                "cond {} (expected {})",
                cond_name(g.cond.code()),
                cond_name(w.cond.code())
            ));
        }
        if w.wp_valid() && g.wp != w.wp {
            bad.push(format!("wp {} (expected {})", g.wp, w.wp));
        }
        if g.non_seq != w.non_seq {
            bad.push(format!("non_seq {} (expected {})", g.non_seq, w.non_seq));
        }
        if g.reset != w.reset {
            bad.push(format!("reset {} (expected {})", g.reset, w.reset));
        }
        if !bad.is_empty() {
            out.push(format!("zone {i} at {}: {}", w.start, bad.join(", ")));
        }
    }
    out
}

/// A zone as the kernel reports it (`struct blk_zone`), in 512-byte
/// sectors: gap zones hidden, each write pointer zone as long as the zone
/// starting LBA granularity with its writable part as the capacity, the
/// write pointer of a FULL zone at the zone end (Linux sd_zbc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KZone {
    /// Start sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Write pointer, where the model knows it.
    pub wp: Option<u64>,
    /// `BLK_ZONE_TYPE_*` (the ZBC zone type code).
    pub type_: u8,
    /// `BLK_ZONE_COND_*` (the ZBC zone condition code).
    pub cond: u8,
    /// Non-sequential write resources active.
    pub non_seq: bool,
    /// Reset recommended.
    pub reset: bool,
}

impl Model {
    /// The kernel's view of the zones (see [`KZone`]).
    pub fn kernel_view(&self) -> Vec<KZone> {
        let spb = (self.layout.block_size / 512).max(1);
        let mut out = Vec::new();
        for z in &self.zones {
            if z.ztype == ZoneType::Gap {
                continue;
            }
            let len = if z.ztype.has_wp() {
                self.layout.zone_blocks.min(self.layout.blocks - z.start)
            } else {
                z.len
            };
            let wp = if z.cond == Cond::Full {
                Some(z.start + len)
            } else if z.wp_valid() {
                Some(z.wp)
            } else {
                None
            };
            out.push(KZone {
                start: z.start * spb,
                len: len * spb,
                capacity: z.len * spb,
                wp: wp.map(|w| w * spb),
                type_: z.ztype.code(),
                cond: z.cond.code(),
                non_seq: z.non_seq,
                reset: z.reset,
            });
        }
        out
    }
}

/// Differences between the kernel's zones and [`Model::kernel_view`]; the
/// capacity only if `with_capacity` (the report carried it).
pub fn diff_kernel(want: &[KZone], got: &[KZone], with_capacity: bool) -> Vec<String> {
    let mut out = Vec::new();
    if want.len() != got.len() {
        out.push(format!(
            "{} zones reported, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        let mut bad = Vec::new();
        if g.start != w.start || g.len != w.len {
            bad.push(format!(
                "start {} len {} (expected {} {})",
                g.start, g.len, w.start, w.len
            ));
        }
        if with_capacity && g.capacity != w.capacity {
            bad.push(format!("cap {} (expected {})", g.capacity, w.capacity));
        }
        if g.type_ != w.type_ {
            bad.push(format!(
                "type {} (expected {})",
                type_name(g.type_),
                type_name(w.type_)
            ));
        }
        if g.cond != w.cond {
            bad.push(format!(
                "cond {} (expected {})",
                cond_name(g.cond),
                cond_name(w.cond)
            ));
        }
        if let Some(wp) = w.wp {
            if g.wp != Some(wp) {
                bad.push(format!(
                    "wp {} (expected {wp})",
                    g.wp.map_or("?".into(), |v| v.to_string())
                ));
            }
        }
        if g.non_seq != w.non_seq || g.reset != w.reset {
            bad.push(format!(
                "non_seq {} reset {} (expected {} {})",
                g.non_seq, g.reset, w.non_seq, w.reset
            ));
        }
        if !bad.is_empty() {
            out.push(format!(
                "zone {i} at sector {}: {}",
                w.start,
                bad.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
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
}
