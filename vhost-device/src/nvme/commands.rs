//! The command tables: one per command set (admin, NVM, ZNS). Dispatch goes
//! through them and the Commands Supported and Effects log (05h) is built
//! from them, so what is advertised is what is handled.

use super::{
    admin,
    controller::{Controller, Kind},
    copy, fabrics,
    namespace::{Namespace, CSI_NVM, CSI_ZNS},
    nvm, put32,
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

/// A command that failed: its status and Dword 0 (e.g. Copy's count of
/// source ranges copied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fail {
    pub status: Status,
    pub dw0: u32,
}

impl From<Status> for Fail {
    fn from(status: Status) -> Self {
        Fail { status, dw0: 0 }
    }
}

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

fn copy_enabled(c: &Controller) -> bool {
    c.opts.personality.copy
}

const fn cmd(
    opcode: u8,
    name: &'static str,
    xfer: Xfer,
    effects: u32,
    handler: Handler,
    enabled: fn(&Controller) -> bool,
) -> Command {
    Command {
        opcode,
        name,
        xfer,
        effects,
        handler,
        enabled,
    }
}

/// Admin commands (NVMe Base 2.1 Figure 84). Queue creation and deletion
/// do not exist on fabrics.
#[rustfmt::skip]
pub const ADMIN: &[Command] = &[
    cmd(0x02, "Get Log Page", Xfer::ControllerToHost, CSUPP, admin::get_log_page, always),
    cmd(0x06, "Identify", Xfer::ControllerToHost, CSUPP, admin::identify, always),
    cmd(0x08, "Abort", Xfer::None, CSUPP, admin::abort, io_controller),
    cmd(0x09, "Set Features", Xfer::HostToController, CSUPP, admin::set_features, always),
    cmd(0x0A, "Get Features", Xfer::ControllerToHost, CSUPP, admin::get_features, always),
    cmd(0x0C, "Asynchronous Event Request", Xfer::None, CSUPP, admin::async_event_request, always),
    cmd(0x18, "Keep Alive", Xfer::None, CSUPP, admin::keep_alive, always),
];

/// NVM Command Set I/O commands (NVM CS 1.1 Figure 14).
#[rustfmt::skip]
pub const NVM: &[Command] = &[
    cmd(0x00, "Flush", Xfer::None, CSUPP, nvm::flush, always),
    cmd(0x01, "Write", Xfer::HostToController, CSUPP | LBCC, nvm::write, always),
    cmd(0x02, "Read", Xfer::ControllerToHost, CSUPP, nvm::read, always),
    cmd(0x08, "Write Zeroes", Xfer::None, CSUPP | LBCC, nvm::write_zeroes, always),
    cmd(0x09, "Dataset Management", Xfer::HostToController, CSUPP | LBCC, nvm::dataset_management, always),
    cmd(0x19, "Copy", Xfer::HostToController, CSUPP | LBCC, copy::copy, copy_enabled),
];

/// Zoned Namespace Command Set I/O commands beyond the NVM ones (ZNS 1.1
/// Figure "Opcodes for Zoned Namespace Commands").
#[rustfmt::skip]
pub const ZNS: &[Command] = &[
    cmd(0x79, "Zone Management Send", Xfer::HostToController, CSUPP | LBCC, zns::zone_management_send, always),
    cmd(0x7A, "Zone Management Receive", Xfer::ControllerToHost, CSUPP, zns::zone_management_receive, always),
    cmd(0x7D, "Zone Append", Xfer::HostToController, CSUPP | LBCC, zns::zone_append, always),
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
    let (name, outcome) = dispatch(ctrl, qid, sqe, data_out, data_in);
    match outcome {
        Ok(Done::Deferred) => None,
        Ok(Done::Complete { dw0, dw1 }) => Some(Completion {
            dw0,
            dw1,
            status: 0,
        }),
        Err(f) => {
            log::debug!(
                "ctrl {} qid {qid} {name} refused with {:?} (dw0 {:#x}): sqe {}",
                ctrl.cntlid,
                f.status,
                f.dw0,
                sqe.hex()
            );
            data_in.clear();
            Some(Completion {
                dw0: f.dw0,
                dw1: 0,
                status: f.status.field(),
            })
        }
    }
}

fn dispatch(
    ctrl: &Controller,
    qid: u16,
    sqe: &Sqe,
    data_out: &[u8],
    data_in: &mut Vec<u8>,
) -> (&'static str, Outcome) {
    let flags = sqe.0[1];
    if sqe.opcode() == fabrics::OPCODE {
        return ("Fabrics", fabrics::execute(ctrl, qid, sqe));
    }
    // Fused operations are not supported; NVMe over Fabrics uses SGLs only
    // (PSDT 01b or 10b), NVMe Base 2.1 4.1.
    if flags & 3 != 0 || flags >> 6 == 0 {
        return ("command", Err(Status::INVALID_FIELD.into()));
    }
    if !ctrl.is_ready() {
        return ("command", Err(Status::COMMAND_SEQUENCE_ERROR.into()));
    }
    if qid == 0 {
        let Some(c) = find(&[ADMIN], ctrl, sqe.opcode()) else {
            return ("admin command", Err(Status::INVALID_OPCODE.into()));
        };
        let mut x = Exec {
            ctrl,
            qid,
            sqe,
            data_out,
            data_in,
            ns: None,
        };
        return (c.name, (c.handler)(&mut x));
    }
    if ctrl.kind != Kind::Io {
        return ("I/O command", Err(Status::INVALID_OPCODE.into()));
    }
    let nsid = sqe.nsid();
    let ns = ctrl.namespace(nsid);
    let csi = match ns {
        Some(ns) => ns.csi,
        // Flush may name every namespace (NVM CS 1.1, 3.2.1).
        None if nsid == 0xFFFF_FFFF && sqe.opcode() == 0x00 => CSI_NVM,
        None => return ("I/O command", Err(Status::INVALID_NAMESPACE.into())),
    };
    let Some(c) = find(io_tables(csi), ctrl, sqe.opcode()) else {
        return ("I/O command", Err(Status::INVALID_OPCODE.into()));
    };
    let mut x = Exec {
        ctrl,
        qid,
        sqe,
        data_out,
        data_in,
        ns,
    };
    (c.name, (c.handler)(&mut x))
}
