//! The command tables: one per command set (admin, NVM, ZNS) plus the
//! Fabrics commands. Each row decodes (its typed command, [`Decode`]),
//! gates (enabled on this controller?) and describes (data direction,
//! transfer length, counter class, Commands Supported and Effects, ONCS or
//! OACS bit). Admission ([`super::admit`]), dispatch, Identify
//! Controller's ONCS/OACS/OCFS and the Commands Supported and Effects log
//! (05h) all read the rows, so what is advertised is what is handled.
//!
//! A new command is one row plus one handler `fn(&mut Exec, T) -> Outcome`
//! whose `T: Decode` the row names once (`&Typed::<T>(handler)`): a
//! handler that takes another type does not compile.

use std::any::Any;

use super::{
    admin,
    controller::{Controller, Kind},
    copy,
    error_log::{ErrorEntry, ParamLocation, NO_LOCATION},
    fabrics,
    namespace::{Namespace, CSI_NVM, CSI_ZNS},
    nvm, pcie, put32,
    status::Status,
    zns, Completion, Sqe,
};
use crate::stats::fabric::CommandClass;

/// How a handler finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Completed successfully with these command specific dwords.
    Complete { dw0: u32, dw1: u32 },
    /// The completion comes later (Asynchronous Event Request).
    Deferred,
}

impl Done {
    pub const OK: Done = Done::Complete { dw0: 0, dw1: 0 };

    pub fn dw0(dw0: u32) -> Done {
        Done::Complete { dw0, dw1: 0 }
    }
}

/// A command that failed: its status, Dword 0 (e.g. Copy's count of
/// source ranges copied) and, where known, the SQE field at fault (the
/// Error Information log's Parameter Error Location).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fail {
    pub status: Status,
    pub dw0: u32,
    pub location: Option<ParamLocation>,
}

impl Fail {
    /// `status` caused by the field at SQE `byte`, `bit`.
    pub fn at(status: Status, byte: u8, bit: u8) -> Fail {
        Fail {
            status,
            dw0: 0,
            location: Some(ParamLocation { byte, bit }),
        }
    }
}

impl From<Status> for Fail {
    fn from(status: Status) -> Self {
        Fail {
            status,
            dw0: 0,
            location: None,
        }
    }
}

// SQE byte offsets for Parameter Error Locations (Base 2.1, Figure
// "Common Command Format").
/// Opcode (CDW0 bits 7:0).
pub const AT_OPCODE: u8 = 0;
/// FUSE (CDW0 bits 9:8) and PSDT (bits 15:14) live in byte 1.
pub const AT_FLAGS: u8 = 1;
/// NSID (CDW1).
pub const AT_NSID: u8 = 4;
/// CDW10 .. CDW15.
pub const AT_CDW10: u8 = 40;
pub const AT_CDW11: u8 = 44;
pub const AT_CDW12: u8 = 48;
pub const AT_CDW13: u8 = 52;

pub type Outcome = Result<Done, Fail>;

/// Everything a handler sees besides its typed command.
pub struct Exec<'a> {
    pub ctrl: &'a Controller,
    pub qid: u16,
    pub sqe: &'a Sqe,
    pub data_out: &'a [u8],
    pub data_in: &'a mut Vec<u8>,
    /// The namespace an I/O command addresses (None for admin commands and
    /// for a Flush to all namespaces).
    pub ns: Option<&'a Namespace>,
    /// The data bytes admission said the command moves.
    transfer: u32,
}

impl Exec<'_> {
    /// The addressed namespace, or Invalid Namespace or Format.
    pub fn ns(&self) -> Result<&Namespace, Status> {
        self.ns.ok_or(Status::INVALID_NAMESPACE)
    }

    /// How many data bytes the host described for the command: SGL
    /// descriptor 1's length on Fabrics; on PCIe (PRPs carry no length)
    /// what the command's own fields say ([`Decode::data_len`]), which is
    /// what the transport moved.
    pub fn transfer_len(&self) -> u32 {
        self.transfer
    }
}

/// A command decoded from its SQE: what its handler receives, so no
/// handler reads dwords of its own.
pub trait Decode: Sized + Send + 'static {
    fn decode(sqe: &Sqe) -> Self;

    /// The data bytes the command moves by its own fields, in the
    /// namespace it addresses: the transfer length on PCIe, where PRP
    /// entries describe memory, not a length (NVMe Base 2.1, 4.3.1). None
    /// by default.
    fn data_len(&self, _ns: Option<&Namespace>) -> u64 {
        0
    }

    /// The capsule arrived on queue `qid`, before its data: a command
    /// whose data may never come (Copy) is seen here, once.
    fn arrive(&mut self, _ctrl: &Controller, _qid: u16, _sqe: &Sqe) {}
}

/// A decoded command, kept from admission to execution.
pub type Decoded = Box<dyn Any + Send>;

/// What a row runs: the typed command's decoder and handler, behind one
/// object so that the tables hold rows of different command types.
pub trait Handle: Sync {
    fn decode(&self, sqe: &Sqe) -> Decoded;
    fn arrive(&self, cmd: &mut Decoded, ctrl: &Controller, qid: u16, sqe: &Sqe);
    fn data_len(&self, cmd: &Decoded, ns: Option<&Namespace>) -> u64;
    fn run(&self, x: &mut Exec<'_>, cmd: Decoded) -> Outcome;
}

/// A handler of typed command `T`: a row says `&Typed::<T>(handler)`.
pub struct Typed<T>(pub fn(&mut Exec<'_>, T) -> Outcome);

impl<T: Decode> Handle for Typed<T> {
    fn decode(&self, sqe: &Sqe) -> Decoded {
        Box::new(T::decode(sqe))
    }

    fn arrive(&self, cmd: &mut Decoded, ctrl: &Controller, qid: u16, sqe: &Sqe) {
        if let Some(c) = cmd.downcast_mut::<T>() {
            c.arrive(ctrl, qid, sqe);
        }
    }

    fn data_len(&self, cmd: &Decoded, ns: Option<&Namespace>) -> u64 {
        cmd.downcast_ref::<T>().map_or(0, |c| c.data_len(ns))
    }

    fn run(&self, x: &mut Exec<'_>, cmd: Decoded) -> Outcome {
        match cmd.downcast::<T>() {
            Ok(c) => (self.0)(x, *c),
            // Decoded by this same row at admission: cannot happen.
            Err(_) => Err(Status::INTERNAL_ERROR.into()),
        }
    }
}

/// Data transfer direction (opcode bits 1:0, NVMe Base 2.1 Figure 92).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xfer {
    None = 0,
    HostToController = 1,
    ControllerToHost = 2,
}

impl Xfer {
    /// The direction bits 1:0 of an opcode (or of a Fabrics FCTYPE, Base
    /// 2.1 Figure 542) the tables do not know.
    pub fn of_bits(bits: u8) -> Xfer {
        match bits & 3 {
            1 => Xfer::HostToController,
            2 => Xfer::ControllerToHost,
            _ => Xfer::None,
        }
    }
}

/// Which Identify Controller capability bit a command sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Mandatory: no bit.
    Always,
    /// ONCS bit n (Identify Controller bytes 521:520, Base 2.1 Figure 313).
    Oncs(u8),
    /// OACS bit n (bytes 257:256).
    Oacs(u8),
}

/// One supported command.
pub struct Command {
    /// Opcode; FCTYPE for Fabrics commands.
    pub opcode: u8,
    pub name: &'static str,
    pub xfer: Xfer,
    /// Commands Supported and Effects entry (NVMe Base 2.1 Figure 210).
    pub effects: u32,
    /// CDW10-11 hold the command's first LBA (SLBA, ZSLBA or SDLBA): the
    /// Error Information log reports it.
    pub slba: bool,
    /// Counter class of an I/O queue command (admin queue: Admin).
    pub class: CommandClass,
    pub support: Support,
    /// Fabrics Disconnect: the queue ends once it completes.
    pub ends_queue: bool,
    pub handler: &'static dyn Handle,
    /// Whether the command exists on this controller (personality, kind).
    pub enabled: fn(&Controller) -> bool,
}

impl Command {
    /// A row; the builders below set what differs from the common case
    /// (no LBA, class Other, no capability bit, always enabled).
    const fn new(
        opcode: u8,
        name: &'static str,
        xfer: Xfer,
        effects: u32,
        handler: &'static dyn Handle,
    ) -> Command {
        Command {
            opcode,
            name,
            xfer,
            effects,
            slba: false,
            class: CommandClass::Other,
            support: Support::Always,
            ends_queue: false,
            handler,
            enabled: always,
        }
    }

    const fn lba(mut self) -> Command {
        self.slba = true;
        self
    }

    const fn class(mut self, class: CommandClass) -> Command {
        self.class = class;
        self
    }

    const fn oncs(mut self, bit: u8) -> Command {
        self.support = Support::Oncs(bit);
        self
    }

    const fn oacs(mut self, bit: u8) -> Command {
        self.support = Support::Oacs(bit);
        self
    }

    const fn when(mut self, enabled: fn(&Controller) -> bool) -> Command {
        self.enabled = enabled;
        self
    }

    const fn ends_queue(mut self) -> Command {
        self.ends_queue = true;
        self
    }
}

// Commands Supported and Effects bits.
pub const CSUPP: u32 = 1 << 0;
pub const LBCC: u32 = 1 << 1;
pub const NCC: u32 = 1 << 2;
pub const NIC: u32 = 1 << 3;
pub const CCC: u32 = 1 << 4;
/// CSE = 001b: no other command to the same namespace runs concurrently.
pub const CSE_SINGLE_NS: u32 = 1 << 16;

fn always(_: &Controller) -> bool {
    true
}

fn io_controller(c: &Controller) -> bool {
    c.kind == Kind::Io
}

fn pcie_only(c: &Controller) -> bool {
    c.is_pcie()
}

fn fabrics_only(c: &Controller) -> bool {
    !c.is_pcie()
}

fn copy_enabled(c: &Controller) -> bool {
    c.opts.personality.copy
}

use CommandClass::{Copy as CopyClass, Read as ReadClass, Write as WriteClass};
use Xfer::{ControllerToHost as C2H, HostToController as H2C, None as NoData};

/// Admin commands (NVMe Base 2.1 Figure 84). Queue creation and deletion
/// exist on PCIe only; Keep Alive only on fabrics here (KAS = 0 on PCIe).
#[rustfmt::skip]
pub const ADMIN: &[Command] = &[
    Command::new(0x00, "Delete I/O Submission Queue", NoData, CSUPP, &Typed::<pcie::QueueId>(pcie::delete_sq)).when(pcie_only),
    Command::new(0x01, "Create I/O Submission Queue", H2C, CSUPP, &Typed::<pcie::CreateQueue>(pcie::create_sq)).when(pcie_only),
    Command::new(0x04, "Delete I/O Completion Queue", NoData, CSUPP, &Typed::<pcie::QueueId>(pcie::delete_cq)).when(pcie_only),
    Command::new(0x05, "Create I/O Completion Queue", H2C, CSUPP, &Typed::<pcie::CreateQueue>(pcie::create_cq)).when(pcie_only),
    Command::new(0x02, "Get Log Page", C2H, CSUPP, &Typed::<admin::GetLogPage>(admin::get_log_page)),
    Command::new(0x06, "Identify", C2H, CSUPP, &Typed::<admin::Identify>(admin::identify)),
    Command::new(0x08, "Abort", NoData, CSUPP, &Typed::<admin::Abort>(admin::abort)).when(io_controller),
    Command::new(0x09, "Set Features", H2C, CSUPP, &Typed::<admin::Features>(admin::set_features)),
    Command::new(0x0A, "Get Features", C2H, CSUPP, &Typed::<admin::Features>(admin::get_features)),
    Command::new(0x0C, "Asynchronous Event Request", NoData, CSUPP, &Typed::<admin::NoFields>(admin::async_event_request)),
    Command::new(0x18, "Keep Alive", NoData, CSUPP, &Typed::<admin::NoFields>(admin::keep_alive)).when(fabrics_only),
    Command::new(0x7C, "Doorbell Buffer Config", NoData, CSUPP, &Typed::<pcie::DoorbellBufferConfig>(pcie::doorbell_buffer_config)).oacs(8).when(pcie::shadow_doorbells),
];

/// NVM Command Set I/O commands (NVM CS 1.1 Figure 14).
#[rustfmt::skip]
pub const NVM: &[Command] = &[
    Command::new(0x00, "Flush", NoData, CSUPP, &Typed::<nvm::Flush>(nvm::flush)),
    Command::new(0x01, "Write", H2C, CSUPP | LBCC, &Typed::<nvm::Rw>(nvm::write)).lba().class(WriteClass),
    Command::new(0x02, "Read", C2H, CSUPP, &Typed::<nvm::Rw>(nvm::read)).lba().class(ReadClass),
    Command::new(0x08, "Write Zeroes", NoData, CSUPP | LBCC, &Typed::<nvm::Rw>(nvm::write_zeroes)).lba().class(WriteClass).oncs(3),
    Command::new(0x09, "Dataset Management", H2C, CSUPP | LBCC, &Typed::<nvm::DatasetManagement>(nvm::dataset_management)).oncs(2),
    Command::new(0x0C, "Verify", NoData, CSUPP, &Typed::<nvm::Verify>(nvm::verify)).lba().oncs(7),
    Command::new(0x19, "Copy", H2C, CSUPP | LBCC, &Typed::<copy::CopyCmd>(copy::copy)).lba().class(CopyClass).oncs(8).when(copy_enabled),
];

/// Zoned Namespace Command Set I/O commands beyond the NVM ones (ZNS 1.1
/// Figure "Opcodes for Zoned Namespace Commands").
#[rustfmt::skip]
pub const ZNS: &[Command] = &[
    Command::new(0x79, "Zone Management Send", H2C, CSUPP | LBCC, &Typed::<zns::ZoneSend>(zns::zone_management_send)).lba(),
    Command::new(0x7A, "Zone Management Receive", C2H, CSUPP, &Typed::<zns::ZoneReceive>(zns::zone_management_receive)).lba(),
    Command::new(0x7D, "Zone Append", H2C, CSUPP | LBCC, &Typed::<nvm::Rw>(zns::zone_append)).lba().class(WriteClass),
];

/// Fabrics commands (opcode 7Fh), by FCTYPE (NVMe Base 2.1, 6 Figure
/// 542). Their transfer direction is FCTYPE bits 1:0.
#[rustfmt::skip]
pub const FABRICS: &[Command] = &[
    Command::new(fabrics::FCTYPE_PROPERTY_SET, "Property Set", NoData, CSUPP, &Typed::<fabrics::Property>(fabrics::property_set)),
    Command::new(fabrics::FCTYPE_CONNECT, "Connect", H2C, CSUPP, &Typed::<fabrics::Connect>(fabrics::connect_again)),
    Command::new(fabrics::FCTYPE_PROPERTY_GET, "Property Get", NoData, CSUPP, &Typed::<fabrics::Property>(fabrics::property_get)),
    Command::new(fabrics::FCTYPE_DISCONNECT, "Disconnect", NoData, CSUPP, &Typed::<fabrics::Disconnect>(fabrics::disconnect)).ends_queue(),
];

/// The I/O tables of a command set, or none for an unknown CSI.
pub fn io_tables(csi: u8) -> &'static [&'static [Command]] {
    match csi {
        CSI_NVM => &[NVM],
        CSI_ZNS => &[NVM, ZNS],
        _ => &[],
    }
}

fn find<'t>(tables: &[&'t [Command]], ctrl: &Controller, opcode: u8) -> Option<&'t Command> {
    find_in(tables, Some(ctrl), opcode)
}

/// The row of `opcode`: enabled on `ctrl`, or any row with `None`.
fn find_in<'t>(
    tables: &[&'t [Command]],
    ctrl: Option<&Controller>,
    opcode: u8,
) -> Option<&'t Command> {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|c| c.opcode == opcode && ctrl.is_none_or(|ctrl| (c.enabled)(ctrl)))
}

/// The capability bits of `table`'s rows enabled on `ctrl`: `pick` says
/// which bit a row's [`Support`] sets, if any.
fn support_bits(ctrl: &Controller, table: &[Command], pick: fn(Support) -> Option<u8>) -> u16 {
    table
        .iter()
        .filter(|c| (c.enabled)(ctrl))
        .filter_map(|c| pick(c.support))
        .fold(0, |bits, b| bits | (1 << b))
}

/// ONCS of an I/O controller (Identify Controller bytes 521:520): the
/// bits of the NVM command rows enabled on it.
pub fn oncs(ctrl: &Controller) -> u16 {
    support_bits(ctrl, NVM, |s| match s {
        Support::Oncs(b) => Some(b),
        _ => None,
    })
}

/// OACS (Identify Controller bytes 257:256): the bits of the admin rows
/// enabled on `ctrl`.
pub fn oacs(ctrl: &Controller) -> u16 {
    support_bits(ctrl, ADMIN, |s| match s {
        Support::Oacs(b) => Some(b),
        _ => None,
    })
}

/// Whether the I/O command `opcode` exists on `ctrl` (e.g. Copy, whose
/// row decides whether OCFS is reported).
pub fn io_enabled(ctrl: &Controller, opcode: u8) -> bool {
    find(&[NVM, ZNS], ctrl, opcode).is_some()
}

/// The Commands Supported and Effects log (05h) for command set `csi`:
/// admin entries at byte 0, I/O entries at byte 1024, 4 bytes each.
pub fn effects_log(ctrl: &Controller, csi: u8) -> Vec<u8> {
    let mut log = vec![0u8; 4096];
    for c in ADMIN.iter().filter(|c| (c.enabled)(ctrl)) {
        put32(&mut log, usize::from(c.opcode) * 4, c.effects);
    }
    if ctrl.kind == Kind::Io {
        for c in io_tables(csi)
            .iter()
            .flat_map(|t| t.iter())
            .filter(|c| (c.enabled)(ctrl))
        {
            put32(&mut log, 1024 + usize::from(c.opcode) * 4, c.effects);
        }
    }
    log
}

/// The opcode of the admin or I/O command `name` (as its row spells it),
/// so that tests acting as a host build SQEs from the table rather than
/// from a second list of numbers.
#[cfg(test)]
pub(crate) fn opcode(name: &str) -> u8 {
    [ADMIN, NVM, ZNS]
        .iter()
        .flat_map(|t| t.iter())
        .find(|c| c.name == name)
        .map(|c| c.opcode)
        .unwrap_or_else(|| panic!("no command {name:?} in the tables"))
}

/// The row of a Fabrics command type.
pub fn fabrics_row(fctype: u8) -> Option<&'static Command> {
    FABRICS.iter().find(|c| c.opcode == fctype)
}

/// The row of `sqe` on queue `qid` of `ctrl` and the namespace it
/// addresses, or the refusal: Invalid Command Opcode, Invalid Namespace or
/// Format. With `offered_only` false, a row this controller does not
/// offer (e.g. Copy without ONCS Copy) is found too.
pub(crate) fn lookup<'c>(
    ctrl: &'c Controller,
    qid: u16,
    sqe: &Sqe,
    offered_only: bool,
) -> Result<(&'static Command, Option<&'c Namespace>), Fail> {
    let gate = offered_only.then_some(ctrl);
    let invalid_opcode = || Fail::at(Status::INVALID_OPCODE, AT_OPCODE, 0);
    if sqe.opcode() == fabrics::OPCODE {
        return fabrics_row(sqe.0[4])
            .map(|c| (c, None))
            .ok_or_else(invalid_opcode);
    }
    if qid == 0 {
        return find_in(&[ADMIN], gate, sqe.opcode())
            .map(|c| (c, None))
            .ok_or_else(invalid_opcode);
    }
    if ctrl.kind != Kind::Io {
        return Err(invalid_opcode());
    }
    let nsid = sqe.nsid();
    let ns = ctrl.namespace(nsid);
    let csi = match ns {
        Some(ns) => ns.csi,
        // Flush may name every namespace (NVM CS 1.1, 3.2.1).
        None if nsid == 0xFFFF_FFFF && sqe.opcode() == 0x00 => CSI_NVM,
        None => return Err(Fail::at(Status::INVALID_NAMESPACE, AT_NSID, 0)),
    };
    find_in(io_tables(csi), gate, sqe.opcode())
        .map(|c| (c, ns))
        .ok_or_else(invalid_opcode)
}

/// A command the table found at admission: its row and the decoded
/// command.
pub(crate) struct Target {
    pub(crate) row: &'static Command,
    pub(crate) cmd: Decoded,
}

/// Execute one admitted command on queue `qid` of `ctrl`.
pub(crate) fn execute(
    ctrl: &Controller,
    qid: u16,
    sqe: &Sqe,
    target: Result<Target, Fail>,
    transfer: u32,
    data_out: &[u8],
    data_in: &mut Vec<u8>,
) -> Option<Completion> {
    ctrl.touch();
    let (name, slba) = match &target {
        Ok(t) => (t.row.name, t.row.slba),
        Err(_) if qid == 0 => ("admin command", false),
        Err(_) => ("I/O command", false),
    };
    let outcome = gate(ctrl, sqe).and_then(|()| {
        let t = target?;
        let ns = if qid == 0 {
            None
        } else {
            ctrl.namespace(sqe.nsid())
        };
        let mut x = Exec {
            ctrl,
            qid,
            sqe,
            data_out,
            data_in,
            ns,
            transfer,
        };
        t.row.handler.run(&mut x, t.cmd)
    });
    match outcome {
        Ok(Done::Deferred) => None,
        Ok(Done::Complete { dw0, dw1 }) => Some(Completion {
            dw0,
            dw1,
            status: 0,
        }),
        Err(f) => Some(failed(ctrl, qid, sqe, name, slba, f, data_in)),
    }
}

/// The checks before any command but a Fabrics one runs: fused
/// operations are not supported; NVMe over Fabrics uses SGLs only (PSDT
/// 01b or 10b), NVMe Base 2.1 4.1. On PCIe this controller supports PRPs
/// only (Identify SGLS = 0), so PSDT must be 00b (Base 2.1, 4.1 Figure 91:
/// "If SGLs are not supported ... Invalid Field"). Then the controller
/// must be ready.
fn gate(ctrl: &Controller, sqe: &Sqe) -> Result<(), Fail> {
    if sqe.opcode() == fabrics::OPCODE {
        return Ok(());
    }
    let flags = sqe.0[1];
    if flags & 3 != 0 {
        return Err(Fail::at(Status::INVALID_FIELD, AT_FLAGS, 0));
    }
    let sgl = flags >> 6 != 0;
    if sgl == ctrl.is_pcie() {
        return Err(Fail::at(Status::INVALID_FIELD, AT_FLAGS, 6));
    }
    if !ctrl.is_ready() {
        return Err(Status::COMMAND_SEQUENCE_ERROR.into());
    }
    Ok(())
}

/// The completion of a refused command, logged once, with an Error
/// Information log entry on an I/O controller.
fn failed(
    ctrl: &Controller,
    qid: u16,
    sqe: &Sqe,
    name: &str,
    slba: bool,
    f: Fail,
    data_in: &mut Vec<u8>,
) -> Completion {
    log::debug!(
        "ctrl {} qid {qid} {name} refused with {:?} (dw0 {:#x}): sqe {}",
        ctrl.cntlid,
        f.status,
        f.dw0,
        sqe.hex()
    );
    data_in.clear();
    let mut status = f.status.field();
    if ctrl.kind == Kind::Io {
        // An Error Information log entry, announced by More.
        status |= Status::MORE;
        let nsid = sqe.nsid();
        ctrl.record_error(ErrorEntry {
            sqid: qid,
            cid: sqe.cid(),
            status,
            location: f.location.map_or(NO_LOCATION, ParamLocation::field),
            lba: if slba { sqe.qw(10) } else { 0 },
            nsid,
            csi: if qid == 0 {
                0
            } else {
                ctrl.namespace(nsid).map_or(0, |ns| ns.csi)
            },
            opcode: sqe.opcode(),
            info: u64::from(f.dw0),
        });
    }
    Completion {
        dw0: f.dw0,
        dw1: 0,
        status,
    }
}
