//! The command tables: one per command set (admin, NVM, ZNS). Dispatch goes
//! through them and the Commands Supported and Effects log (05h) is built
//! from them, so what is advertised is what is handled.

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

/// Everything a handler sees.
pub struct Exec<'a> {
    pub ctrl: &'a Controller,
    pub qid: u16,
    pub sqe: &'a Sqe,
    pub data_out: &'a [u8],
    pub data_in: &'a mut Vec<u8>,
    /// The namespace an I/O command addresses (None for admin commands and
    /// for a Flush to all namespaces).
    pub ns: Option<&'a Namespace>,
}

impl Exec<'_> {
    /// The addressed namespace, or Invalid Namespace or Format.
    pub fn ns(&self) -> Result<&Namespace, Status> {
        self.ns.ok_or(Status::INVALID_NAMESPACE)
    }

    /// How many data bytes the host described for the command: SGL
    /// descriptor 1's length on Fabrics; on PCIe (PRPs carry no length)
    /// what the command's own fields say, which is what the transport
    /// moved.
    pub fn transfer_len(&self) -> u32 {
        if self.ctrl.is_pcie() {
            super::pcie::data_length(self.ctrl, self.qid, self.sqe)
        } else {
            self.sqe.sgl_length()
        }
    }
}

pub type Handler = fn(&mut Exec<'_>) -> Outcome;

/// Data transfer direction (opcode bits 1:0, NVMe Base 2.1 Figure 92).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xfer {
    None = 0,
    HostToController = 1,
    ControllerToHost = 2,
}

/// One supported command.
pub struct Command {
    pub opcode: u8,
    pub name: &'static str,
    pub xfer: Xfer,
    /// Commands Supported and Effects entry (NVMe Base 2.1 Figure 210).
    pub effects: u32,
    /// CDW10-11 hold the command's first LBA (SLBA, ZSLBA or SDLBA): the
    /// Error Information log reports it.
    pub slba: bool,
    pub handler: Handler,
    /// Whether the command exists on this controller (personality, kind).
    pub enabled: fn(&Controller) -> bool,
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

/// Whether CDW10-11 carry the first LBA ([`Command::slba`]).
const SLBA: bool = true;
const NO_LBA: bool = false;

const fn cmd(
    opcode: u8,
    name: &'static str,
    xfer: Xfer,
    effects: u32,
    slba: bool,
    handler: Handler,
    enabled: fn(&Controller) -> bool,
) -> Command {
    Command {
        opcode,
        name,
        xfer,
        effects,
        slba,
        handler,
        enabled,
    }
}

/// Admin commands (NVMe Base 2.1 Figure 84). Queue creation and deletion
/// exist on PCIe only; Keep Alive only on fabrics here (KAS = 0 on PCIe).
#[rustfmt::skip]
pub const ADMIN: &[Command] = &[
    cmd(0x00, "Delete I/O Submission Queue", Xfer::None, CSUPP, NO_LBA, pcie::delete_sq, pcie_only),
    cmd(0x01, "Create I/O Submission Queue", Xfer::HostToController, CSUPP, NO_LBA, pcie::create_sq, pcie_only),
    cmd(0x04, "Delete I/O Completion Queue", Xfer::None, CSUPP, NO_LBA, pcie::delete_cq, pcie_only),
    cmd(0x05, "Create I/O Completion Queue", Xfer::HostToController, CSUPP, NO_LBA, pcie::create_cq, pcie_only),
    cmd(0x02, "Get Log Page", Xfer::ControllerToHost, CSUPP, NO_LBA, admin::get_log_page, always),
    cmd(0x06, "Identify", Xfer::ControllerToHost, CSUPP, NO_LBA, admin::identify, always),
    cmd(0x08, "Abort", Xfer::None, CSUPP, NO_LBA, admin::abort, io_controller),
    cmd(0x09, "Set Features", Xfer::HostToController, CSUPP, NO_LBA, admin::set_features, always),
    cmd(0x0A, "Get Features", Xfer::ControllerToHost, CSUPP, NO_LBA, admin::get_features, always),
    cmd(0x0C, "Asynchronous Event Request", Xfer::None, CSUPP, NO_LBA, admin::async_event_request, always),
    cmd(0x18, "Keep Alive", Xfer::None, CSUPP, NO_LBA, admin::keep_alive, fabrics_only),
    cmd(0x7C, "Doorbell Buffer Config", Xfer::None, CSUPP, NO_LBA, pcie::doorbell_buffer_config, pcie::shadow_doorbells),
];

/// NVM Command Set I/O commands (NVM CS 1.1 Figure 14).
#[rustfmt::skip]
pub const NVM: &[Command] = &[
    cmd(0x00, "Flush", Xfer::None, CSUPP, NO_LBA, nvm::flush, always),
    cmd(0x01, "Write", Xfer::HostToController, CSUPP | LBCC, SLBA, nvm::write, always),
    cmd(0x02, "Read", Xfer::ControllerToHost, CSUPP, SLBA, nvm::read, always),
    cmd(0x08, "Write Zeroes", Xfer::None, CSUPP | LBCC, SLBA, nvm::write_zeroes, always),
    cmd(0x09, "Dataset Management", Xfer::HostToController, CSUPP | LBCC, NO_LBA, nvm::dataset_management, always),
    cmd(0x19, "Copy", Xfer::HostToController, CSUPP | LBCC, SLBA, copy::copy, copy_enabled),
];

/// Zoned Namespace Command Set I/O commands beyond the NVM ones (ZNS 1.1
/// Figure "Opcodes for Zoned Namespace Commands").
#[rustfmt::skip]
pub const ZNS: &[Command] = &[
    cmd(0x79, "Zone Management Send", Xfer::HostToController, CSUPP | LBCC, SLBA, zns::zone_management_send, always),
    cmd(0x7A, "Zone Management Receive", Xfer::ControllerToHost, CSUPP, SLBA, zns::zone_management_receive, always),
    cmd(0x7D, "Zone Append", Xfer::HostToController, CSUPP | LBCC, SLBA, zns::zone_append, always),
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
    tables
        .iter()
        .flat_map(|t| t.iter())
        .find(|c| c.opcode == opcode && (c.enabled)(ctrl))
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

/// Execute one command on queue `qid` of `ctrl`.
pub fn execute(
    ctrl: &Controller,
    qid: u16,
    sqe: &Sqe,
    data_out: &[u8],
    data_in: &mut Vec<u8>,
) -> Option<Completion> {
    ctrl.touch();
    let (found, outcome) = dispatch(ctrl, qid, sqe, data_out, data_in);
    match outcome {
        Ok(Done::Deferred) => None,
        Ok(Done::Complete { dw0, dw1 }) => Some(Completion {
            dw0,
            dw1,
            status: 0,
        }),
        Err(f) => {
            log::debug!(
                "ctrl {} qid {qid} {} refused with {:?} (dw0 {:#x}): sqe {}",
                ctrl.cntlid,
                found.name,
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
                    lba: if found.slba { sqe.qw(10) } else { 0 },
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
            Some(Completion {
                dw0: f.dw0,
                dw1: 0,
                status,
            })
        }
    }
}

/// What the dispatcher found for a command: its name (for logs) and
/// whether CDW10-11 name its first LBA.
#[derive(Clone, Copy, Debug)]
struct Found {
    name: &'static str,
    slba: bool,
}

impl Found {
    const fn named(name: &'static str) -> Found {
        Found { name, slba: false }
    }

    fn of(c: &Command) -> Found {
        Found {
            name: c.name,
            slba: c.slba,
        }
    }
}

fn dispatch(
    ctrl: &Controller,
    qid: u16,
    sqe: &Sqe,
    data_out: &[u8],
    data_in: &mut Vec<u8>,
) -> (Found, Outcome) {
    let flags = sqe.0[1];
    if sqe.opcode() == fabrics::OPCODE {
        return (Found::named("Fabrics"), fabrics::execute(ctrl, qid, sqe));
    }
    // Fused operations are not supported; NVMe over Fabrics uses SGLs only
    // (PSDT 01b or 10b), NVMe Base 2.1 4.1. On PCIe this controller
    // supports PRPs only (Identify SGLS = 0), so PSDT must be 00b (Base
    // 2.1, 4.1 Figure 91: "If SGLs are not supported ... Invalid Field").
    if flags & 3 != 0 {
        let f = Fail::at(Status::INVALID_FIELD, AT_FLAGS, 0);
        return (Found::named("command"), Err(f));
    }
    if ctrl.is_pcie() {
        if flags >> 6 != 0 {
            let f = Fail::at(Status::INVALID_FIELD, AT_FLAGS, 6);
            return (Found::named("command"), Err(f));
        }
    } else if flags >> 6 == 0 {
        let f = Fail::at(Status::INVALID_FIELD, AT_FLAGS, 6);
        return (Found::named("command"), Err(f));
    }
    if !ctrl.is_ready() {
        let f = Status::COMMAND_SEQUENCE_ERROR.into();
        return (Found::named("command"), Err(f));
    }
    if qid == 0 {
        let Some(c) = find(&[ADMIN], ctrl, sqe.opcode()) else {
            let f = Fail::at(Status::INVALID_OPCODE, AT_OPCODE, 0);
            return (Found::named("admin command"), Err(f));
        };
        let mut x = Exec {
            ctrl,
            qid,
            sqe,
            data_out,
            data_in,
            ns: None,
        };
        return (Found::of(c), (c.handler)(&mut x));
    }
    let io = Found::named("I/O command");
    if ctrl.kind != Kind::Io {
        return (io, Err(Fail::at(Status::INVALID_OPCODE, AT_OPCODE, 0)));
    }
    let nsid = sqe.nsid();
    let ns = ctrl.namespace(nsid);
    let csi = match ns {
        Some(ns) => ns.csi,
        // Flush may name every namespace (NVM CS 1.1, 3.2.1).
        None if nsid == 0xFFFF_FFFF && sqe.opcode() == 0x00 => CSI_NVM,
        None => return (io, Err(Fail::at(Status::INVALID_NAMESPACE, AT_NSID, 0))),
    };
    let Some(c) = find(io_tables(csi), ctrl, sqe.opcode()) else {
        return (io, Err(Fail::at(Status::INVALID_OPCODE, AT_OPCODE, 0)));
    };
    let mut x = Exec {
        ctrl,
        qid,
        sqe,
        data_out,
        data_in,
        ns,
    };
    (Found::of(c), (c.handler)(&mut x))
}
