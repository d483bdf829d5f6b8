//! The SCSI front end: SPC-5, SBC-4 and ZBC-2 commands translated into
//! storage core calls. Knows nothing of virtio: data moves through
//! `&mut dyn Read` (data-out) and `&mut dyn Write` (data-in), so tests drive
//! it with byte vectors.
//!
//! - [`commands`]: the command table that drives dispatch and REPORT
//!   SUPPORTED OPERATION CODES.
//! - [`cdb`]: one typed struct per CDB.
//! - [`sense`]: sense data and the one StorageError -> sense mapping.
//! - `spc`, `sbc`, `zbc`: the handlers, one module per command set.
//!
//! Data-in shorter than the data: every command computes its whole
//! response (and, for reads, checks the whole range) and then writes as much
//! as fits in `data_in_len`; `Response::data_in_written` tells the
//! transport how much, and the transport reports the rest as residual
//! (virtio-scsi `resid`), as SAM-5 and QEMU's scsi-disk do. A
//! data-out shorter than a WRITE's transfer length is refused before
//! anything is written, with INVALID FIELD IN CDB at the TRANSFER LENGTH.

pub mod cdb;
pub mod commands;
pub mod sense;
pub mod xcopy;

mod sbc;
mod spc;
pub(crate) mod zbc;

#[cfg(test)]
mod tests;

use std::{
    fmt::Write as _,
    io::{Read, Write},
    sync::Arc,
};

use self::{
    commands::Lookup,
    sense::{Asc, Sense, SenseKey},
};
use crate::{
    stats::StatsSource,
    storage::{media::MemSlice, BlockCount, Device, Lba, ZoneListener},
};

/// SCSI status byte values (SAM-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Good = 0x00,
    CheckCondition = 0x02,
    Busy = 0x08,
    TaskSetFull = 0x28,
}

/// One command as the transport hands it over.
pub struct Request<'a> {
    /// The logical unit number (flat, 0-based) the command is addressed to.
    pub lun: u16,
    /// The CDB bytes as received (the transport's CDB area, possibly longer
    /// than the command's own CDB length).
    pub cdb: &'a [u8],
    /// Data-out buffer (initiator to target).
    pub data_out: &'a mut dyn Read,
    /// Data-in buffer (target to initiator).
    pub data_in: &'a mut dyn Write,
    /// How many bytes `data_in` can take.
    pub data_in_len: u32,
    /// The same data buffers as memory, when the transport has them so
    /// (see [`DirectData`]); `None`: everything goes through `data_out` and
    /// `data_in`.
    pub direct: Option<&'a mut dyn DirectData>,
}

/// A command's data buffers as memory that READ and WRITE move blocks to
/// and from without a copy through [`Request::data_in`] and
/// [`Request::data_out`] (the transport's guest buffers: the backing file
/// is read straight into them). The data a command takes this way and
/// through the streams is one buffer: a command uses one or the other.
pub trait DirectData {
    /// The next `len` bytes of the data-in buffer; `None` when it holds
    /// fewer (or they cannot be reached as memory): use `data_in`. Nothing
    /// counts as transferred before [`DirectData::sent`].
    fn data_in(&mut self, len: usize) -> Option<Vec<MemSlice<'_>>>;

    /// `len` bytes of the data-in buffer were filled.
    fn sent(&mut self, len: usize);

    /// The next `len` bytes of the data-out buffer; `None` when it holds
    /// fewer (or they cannot be reached as memory): use `data_out`.
    fn data_out(&mut self, len: usize) -> Option<Vec<MemSlice<'_>>>;

    /// `len` bytes of the data-out buffer were taken.
    fn received(&mut self, len: usize);
}

/// The outcome of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    /// Sense data (fixed format, SPC-5) when `status` is CHECK
    /// CONDITION, else empty.
    pub sense: Vec<u8>,
    /// Bytes written to `data_in`.
    pub data_in_written: u32,
}

/// The peripheral device type a logical unit reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LuKind {
    /// Host-managed zoned block device (ZBC-2), peripheral type 14h.
    HostManaged,
    /// Host aware zoned block device (ZBC-2): peripheral type 00h, ZONED
    /// 01b in the Block Device Characteristics VPD page, sequential write
    /// preferred zones.
    HostAware,
    /// Direct access block device (SBC-4), peripheral type 00h.
    Disk,
}

impl LuKind {
    /// The kind of a device: one with sequential write preferred zones
    /// is host aware, one with other zones host-managed.
    pub fn of(device: &Device) -> Self {
        match device.geometry().zones.map(|z| z.sequential) {
            Some(crate::storage::ZoneType::SequentialWritePreferred) => LuKind::HostAware,
            Some(_) => LuKind::HostManaged,
            None => LuKind::Disk,
        }
    }

    /// Whether the ZBC-2 commands apply (host-managed or host aware).
    pub fn is_zoned(self) -> bool {
        self != LuKind::Disk
    }

    /// PERIPHERAL DEVICE TYPE (SPC-5).
    pub fn peripheral_type(self) -> u8 {
        match self {
            LuKind::HostManaged => 0x14,
            LuKind::HostAware | LuKind::Disk => 0x00,
        }
    }
}

/// What a logical unit says about itself in INQUIRY data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuIdentity {
    /// T10 VENDOR IDENTIFICATION (ASCII, space padded).
    pub vendor: [u8; 8],
    /// PRODUCT IDENTIFICATION.
    pub product: [u8; 16],
    /// PRODUCT REVISION LEVEL.
    pub revision: [u8; 4],
    /// Unit serial number (VPD 80h), printable ASCII.
    pub serial: String,
    /// The NAA designator (VPD 83h), 8 bytes, NAA field 3h.
    pub naa: u64,
}

fn padded<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    for (o, c) in out.iter_mut().zip(s.bytes()) {
        *o = c;
    }
    out
}

impl LuIdentity {
    /// The identity of LUN `lun` of target `target_id`: vendor "ZONECOPY",
    /// a product naming the kind, serial and NAA designator derived from the
    /// target id and the LUN so that every LU of a host is distinct.
    ///
    /// The NAA designator uses NAA 3h, "locally assigned" (SPC-5):
    /// an IEEE Registered (5h) designator needs an IEEE company ID that
    /// zonecopy does not own. Layout: NAA 3h, 12 bits 5ACh ("zonecopy"
    /// tag), 32 bits target id, 16 bits LUN.
    pub fn derived(kind: LuKind, target_id: u32, lun: u16) -> Self {
        let product = match kind {
            LuKind::HostManaged => "ZBC HM DISK",
            LuKind::HostAware => "ZBC HA DISK",
            LuKind::Disk => "DISK",
        };
        LuIdentity {
            vendor: padded("ZONECOPY"),
            product: padded(product),
            revision: padded(&env!("CARGO_PKG_VERSION").replace('.', "")),
            serial: format!("ZC{target_id:08X}{lun:04X}"),
            naa: (0x3u64 << 60) | (0x5acu64 << 48) | (u64::from(target_id) << 16) | u64::from(lun),
        }
    }
}

/// One logical unit: a device and how it presents itself.
pub struct LogicalUnit {
    pub device: Arc<Device>,
    pub kind: LuKind,
    pub identity: LuIdentity,
}

impl LogicalUnit {
    /// LUN `lun` of target `target_id`, with its kind from the device and
    /// the derived identity.
    pub fn new(device: Arc<Device>, target_id: u32, lun: u16) -> Self {
        let kind = LuKind::of(&device);
        LogicalUnit {
            device,
            kind,
            identity: LuIdentity::derived(kind, target_id, lun),
        }
    }
}

/// A SCSI target: the logical units served on one vhost-user-scsi device,
/// and its copy manager (third-party copy between them).
pub struct Target {
    units: Vec<LogicalUnit>,
    copy: Arc<xcopy::CopyManager>,
    stats: Arc<xcopy::ScsiStats>,
    /// Kept alive here; each device holds it weakly.
    _listeners: Vec<Arc<dyn ZoneListener>>,
}

/// A LU's device changing under the copy manager's ROD tokens without a
/// command of this target (a zone going READ ONLY or OFFLINE, a power cut):
/// the tokens that represent the changed blocks are cancelled, as for a
/// write into them (a ROD token stands for data as it was when populated).
struct TokenGuard {
    lun: u16,
    zone_len: BlockCount,
    copy: std::sync::Weak<xcopy::CopyManager>,
}

impl ZoneListener for TokenGuard {
    fn zone_changed(&self, zone: Lba) {
        if let Some(copy) = self.copy.upgrade() {
            copy.invalidate(self.lun, zone, self.zone_len);
        }
    }

    fn data_lost(&self) {
        if let Some(copy) = self.copy.upgrade() {
            copy.invalidate(self.lun, Lba::new(0), BlockCount::new(u64::MAX));
        }
    }
}

impl Target {
    /// A target (id 0) whose LUN `i` is `luns[i]`.
    pub fn new(luns: Vec<Arc<Device>>) -> Self {
        Self::with_target_id(0, luns)
    }

    /// A target whose LUN `i` is `luns[i]`, identities derived from
    /// `target_id`.
    pub fn with_target_id(target_id: u32, luns: Vec<Arc<Device>>) -> Self {
        let units = luns
            .into_iter()
            .enumerate()
            .map(|(i, d)| LogicalUnit::new(d, target_id, u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        Self::with_units(units)
    }

    /// A target whose LUN `i` is `units[i]`.
    pub fn with_units(units: Vec<LogicalUnit>) -> Self {
        let copy = Arc::new(xcopy::CopyManager::default());
        let listeners = units
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let guard: Arc<dyn ZoneListener> = Arc::new(TokenGuard {
                    lun: u16::try_from(i).unwrap_or(u16::MAX),
                    zone_len: u
                        .device
                        .geometry()
                        .zones
                        .map_or(BlockCount::new(u64::MAX), |z| z.zone_len),
                    copy: Arc::downgrade(&copy),
                });
                u.device.add_zone_listener(Arc::downgrade(&guard));
                guard
            })
            .collect();
        Target {
            units,
            copy,
            stats: Arc::default(),
            _listeners: listeners,
        }
    }

    /// Command and copy counters.
    pub fn stats(&self) -> &Arc<xcopy::ScsiStats> {
        &self.stats
    }

    /// The counters as a control socket stats source (key `scsi`).
    pub fn stats_source(&self) -> Arc<dyn StatsSource> {
        self.stats.clone()
    }

    /// Number of logical units.
    pub fn lun_count(&self) -> usize {
        self.units.len()
    }

    /// The logical unit at `lun`.
    pub fn unit(&self, lun: u16) -> Option<&LogicalUnit> {
        self.units.get(usize::from(lun))
    }

    /// Execute one command. Never panics on any input.
    pub fn execute(&self, req: Request<'_>) -> Response {
        crate::trace::RECORDER.scsi(self, req, |req| self.execute_untraced(req))
    }

    /// [`Target::execute`] without the trace hook (what a replay runs).
    pub fn execute_untraced(&self, req: Request<'_>) -> Response {
        let lu = self.unit(req.lun);
        let (name, cdb_len, result) = Self::dispatch(lu, req.cdb);
        self.stats.count_command(name);
        let result = match result {
            Ok(handler) => {
                let mut x = Exec {
                    target: self,
                    lun: req.lun,
                    lu,
                    cdb: req.cdb,
                    data_out: req.data_out,
                    data_in: req.data_in,
                    data_in_len: req.data_in_len,
                    direct: req.direct,
                };
                handler(&mut x)
            }
            Err(sense) => Err(sense),
        };
        match result {
            Ok(n) => Response {
                status: Status::Good,
                sense: Vec::new(),
                data_in_written: n,
            },
            Err(sense) => {
                let cdb = hex(req.cdb.get(..cdb_len).unwrap_or(req.cdb));
                if matches!(sense.key, SenseKey::HardwareError | SenseKey::MediumError) {
                    log::warn!("LUN {} {name} [{cdb}]: {sense}", req.lun);
                } else {
                    log::debug!("LUN {} {name} [{cdb}]: {sense}", req.lun);
                }
                Response {
                    status: Status::CheckCondition,
                    sense: sense.fixed().to_vec(),
                    data_in_written: 0,
                }
            }
        }
    }

    /// Find the handler for a CDB: the command's name, its CDB length (for
    /// logging) and the handler or the sense data refusing the command.
    fn dispatch(
        lu: Option<&LogicalUnit>,
        cdb: &[u8],
    ) -> (&'static str, usize, Result<commands::Handler, Sense>) {
        let unknown = Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE);
        // SAM-5 / SPC-5: a command other than INQUIRY, REPORT
        // LUNS and REQUEST SENSE to a LUN with no logical unit.
        let no_lu = Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED);
        let too_short = |need| {
            Sense::from(cdb::DecodeError::TooShort {
                need,
                got: cdb.len(),
            })
        };
        let lookup = commands::lookup(cdb);
        let (name, len) = match &lookup {
            Lookup::Found(c) => (c.name, c.cdb_len()),
            _ => ("unsupported command", cdb.len().min(16)),
        };
        let result = match (lookup, lu) {
            (Lookup::Found(c), Some(lu)) if !c.applies.to(lu.kind) => Err(unknown),
            (Lookup::Found(c), None) if !c.without_lu => Err(no_lu),
            (Lookup::Found(c), _) if cdb.len() < c.cdb_len() => Err(too_short(c.cdb_len())),
            (Lookup::Found(c), _) => Ok(c.handler),
            (_, None) => Err(no_lu),
            (Lookup::UnknownOpcode, _) => Err(unknown),
            (Lookup::UnknownServiceAction, _) => Err(Sense::invalid_field(1, Some(4))),
            (Lookup::Truncated, _) => Err(too_short(2)),
        };
        (name, len, result)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One command being executed: what a handler sees.
pub struct Exec<'t, 'r> {
    pub target: &'t Target,
    pub lun: u16,
    /// The addressed logical unit; `None` only for the commands the table
    /// marks `without_lu`.
    pub lu: Option<&'t LogicalUnit>,
    pub cdb: &'r [u8],
    pub data_out: &'r mut dyn Read,
    pub data_in: &'r mut dyn Write,
    pub data_in_len: u32,
    /// The data buffers as memory, if the transport has them so.
    pub direct: Option<&'r mut dyn DirectData>,
}

impl<'t> Exec<'t, '_> {
    /// The addressed logical unit (LOGICAL UNIT NOT SUPPORTED if none).
    pub fn lu(&self) -> Result<&'t LogicalUnit, Sense> {
        self.lu
            .ok_or(Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED))
    }

    /// Send `data`, truncated to the command's allocation length (SPC-5
    /// 4.2.5.6) and to what data-in can take. Returns the bytes sent.
    pub fn send(&mut self, data: &[u8], alloc_len: usize) -> Result<u32, Sense> {
        let room = usize::try_from(self.data_in_len).unwrap_or(usize::MAX);
        let n = data.len().min(alloc_len).min(room);
        let part = data.get(..n).unwrap_or_default();
        if let Err(e) = self.data_in.write_all(part) {
            log::warn!("LUN {}: data-in write failed: {e}", self.lun);
            return Err(Sense::new(
                SenseKey::HardwareError,
                Asc::INTERNAL_TARGET_FAILURE,
            ));
        }
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
