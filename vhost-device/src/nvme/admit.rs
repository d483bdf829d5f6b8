//! Admission: the one question a transport asks about a command, before
//! its data moves. The command's row (`commands`) answers: which way data
//! moves (NVMe Base 2.1 Figure 92, opcode bits 1:0), how many bytes (SGL
//! descriptor 1 on Fabrics, Base 2.1 4.3.2; the command's own fields on
//! PCIe, where PRPs carry no length, 4.3.1) and the counter class; the
//! decoded command travels with the answer to [`super::Queue::run`].

use super::{
    commands::{self, Fail},
    fabrics, Completion, Controller, Sqe,
};
use crate::stats::fabric::CommandClass;

/// Which way a command moves data, and how many bytes, as its SGL (or
/// the transport's rules) says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataDirection {
    None,
    /// Host to controller: the transport gathers this many bytes (in-capsule
    /// or by R2T) before calling [`Queue::execute`].
    HostToController(u32),
    /// Controller to host: at most this many bytes go back.
    ControllerToHost(u32),
}

impl DataDirection {
    /// The bytes moved either way.
    pub fn bytes(&self) -> u32 {
        match *self {
            DataDirection::None => 0,
            DataDirection::HostToController(n) | DataDirection::ControllerToHost(n) => n,
        }
    }

    pub(super) fn of(xfer: commands::Xfer, len: u32) -> DataDirection {
        match (xfer, len) {
            (_, 0) | (commands::Xfer::None, _) => DataDirection::None,
            (commands::Xfer::HostToController, n) => DataDirection::HostToController(n),
            (commands::Xfer::ControllerToHost, n) => DataDirection::ControllerToHost(n),
        }
    }
}

/// Admission's answer for one command: what the transport needs, decided
/// by the command's row (NVMe Base 2.1 Figure 92 direction; the length
/// from SGL descriptor 1 on Fabrics, from the command's own fields on
/// PCIe), plus the decoded command for [`Queue::run`].
pub struct Admitted {
    /// Which way data moves and how many bytes.
    pub direction: DataDirection,
    /// The counter class of the command.
    pub class: CommandClass,
    pub(super) sqe: Sqe,
    pub(super) target: Result<commands::Target, Fail>,
    /// The timing model's virtual now when the command arrived, if its
    /// namespace is modeled (`crate::timing`).
    pub(super) arrived: Option<u64>,
}

impl Admitted {
    /// Ask the command table about `sqe` on queue `qid` of `ctrl`.
    pub(super) fn new(ctrl: &Controller, qid: u16, sqe: &Sqe) -> Admitted {
        let pcie = ctrl.is_pcie();
        let mut arrived = None;
        let (xfer, class, len, target) = match commands::lookup(ctrl, qid, sqe, true) {
            Ok((row, ns)) => {
                arrived = ns.and_then(|n| n.timing.as_deref()).map(|t| t.now());
                let mut cmd = row.handler.decode(sqe);
                row.handler.arrive(&mut cmd, ctrl, qid, sqe);
                let len = if pcie {
                    u32::try_from(row.handler.data_len(&cmd, ns)).unwrap_or(u32::MAX)
                } else {
                    sqe.sgl_length()
                };
                let target = commands::Target { row, cmd };
                (row.xfer, row.class, len, Ok(target))
            }
            Err(f) => {
                // A command this controller does not offer is still seen
                // arriving (its counters show a host that sends it anyway,
                // e.g. Copy without ONCS Copy).
                // Its fabric bytes count under its own class too (a Copy
                // sent without ONCS Copy is still Copy traffic); only an
                // opcode no table knows is Other.
                let class = match commands::lookup(ctrl, qid, sqe, false) {
                    Ok((row, _)) => {
                        let mut cmd = row.handler.decode(sqe);
                        row.handler.arrive(&mut cmd, ctrl, qid, sqe);
                        row.class
                    }
                    Err(_) => CommandClass::Other,
                };
                // Unknown: refused when it runs; the direction bits and
                // the SGL say what the host will send meanwhile.
                let bits = if sqe.opcode() == fabrics::OPCODE {
                    sqe.0[4]
                } else {
                    sqe.opcode()
                };
                let len = if pcie { 0 } else { sqe.sgl_length() };
                (commands::Xfer::of_bits(bits), class, len, Err(f))
            }
        };
        Admitted {
            direction: DataDirection::of(xfer, len),
            class: if qid == 0 { CommandClass::Admin } else { class },
            sqe: *sqe,
            target,
            arrived,
        }
    }

    /// The command.
    pub fn sqe(&self) -> &Sqe {
        &self.sqe
    }

    /// Fabrics Disconnect: the queue ends with it.
    pub(super) fn ends_queue(&self) -> bool {
        self.target.as_ref().is_ok_and(|t| t.row.ends_queue)
    }
}

/// A capsule refused before any queue exists: its class and the
/// completion to send.
pub struct Refused {
    pub class: CommandClass,
    pub completion: Completion,
}
