//! Fabrics commands (opcode 7Fh): Connect, Property Get/Set, Disconnect.
//! NVMe Base 2.1, 6 "Fabrics Command Set".

use std::sync::Arc;

use super::{
    commands::{Done, Fail, Outcome},
    controller::{
        Controller, Kind, CC_CSS_SHIFT, CC_EN, CC_SHN_SHIFT, CSTS_CFS, CSTS_RDY, CSTS_SHST_COMPLETE,
    },
    status::Status,
    Completion, ConnectOutcome, Queue, Sqe, Targets, DISCOVERY_NQN,
};

/// The Fabrics command opcode.
pub const OPCODE: u8 = 0x7F;

// Fabrics Command Types (FCTYPE, SQE byte 4), NVMe Base 2.1 Figure 542.
pub const FCTYPE_PROPERTY_SET: u8 = 0x00;
pub const FCTYPE_CONNECT: u8 = 0x01;
pub const FCTYPE_PROPERTY_GET: u8 = 0x04;
pub const FCTYPE_DISCONNECT: u8 = 0x08;

// Property offsets (NVMe Base 2.1, 3.1.4 Figure 35).
pub const PROP_CAP: u32 = 0x00;
pub const PROP_VS: u32 = 0x08;
pub const PROP_CC: u32 = 0x14;
pub const PROP_CSTS: u32 = 0x1C;

/// Connect data size (NVMe Base 2.1 Figure 546).
pub const CONNECT_DATA_LEN: usize = 1024;

fn nqn_field(data: &[u8], at: usize) -> String {
    let f = &data[at..at + 256];
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// A Connect refusal with the Invalid Parameter Offset in Dword 0
/// (NVMe Base 2.1 Figure 548): bits 15:0 IPO, bit 16 IATTR (1 = the offset
/// is in the Connect data, 0 = in the SQE).
fn refuse(sqe: &Sqe, why: &str, status: Status, ipo: Option<(bool, u16)>) -> ConnectOutcome {
    log::warn!("Connect refused ({why}): {:?} sqe {}", status, sqe.hex());
    let dw0 = ipo.map_or(0, |(in_data, off)| {
        (u32::from(in_data) << 16) | u32::from(off)
    });
    ConnectOutcome::Refused(Completion {
        dw0,
        dw1: 0,
        status: status.field(),
    })
}

/// Fabrics Connect (NVMe Base 2.1, 6.3).
pub fn connect(targets: &Targets, sqe: &Sqe, data: &[u8]) -> ConnectOutcome {
    if sqe.opcode() != OPCODE || sqe.0[4] != FCTYPE_CONNECT {
        return refuse(sqe, "not a Connect", Status::INVALID_OPCODE, None);
    }
    if data.len() < CONNECT_DATA_LEN {
        return refuse(sqe, "short data", Status::DATA_SGL_LENGTH_INVALID, None);
    }
    let recfmt = u16::from_le_bytes([sqe.0[40], sqe.0[41]]);
    let qid = u16::from_le_bytes([sqe.0[42], sqe.0[43]]);
    let sqsize = u16::from_le_bytes([sqe.0[44], sqe.0[45]]);
    let kato = sqe.dw(12);
    if recfmt != 0 {
        return refuse(sqe, "RECFMT", Status::CONNECT_INCOMPATIBLE_FORMAT, None);
    }
    let mut hostid = [0u8; 16];
    hostid.copy_from_slice(&data[0..16]);
    let cntlid = u16::from_le_bytes([data[16], data[17]]);
    let subnqn = nqn_field(data, 256);
    let hostnqn = nqn_field(data, 512);
    if hostnqn.is_empty() {
        return refuse(
            sqe,
            "empty HOSTNQN",
            Status::CONNECT_INVALID_HOST,
            Some((true, 512)),
        );
    }
    let (subsystem, discoverable, max_entries) = if subnqn == DISCOVERY_NQN {
        // A host discovers only the subsystems it may connect to.
        let allowed = targets
            .subsystems
            .iter()
            .filter(|s| s.config().allows(&hostnqn))
            .cloned()
            .collect();
        (None, allowed, 128u16)
    } else {
        match targets.subsystem(&subnqn) {
            Some(s) if !s.config().allows(&hostnqn) => {
                return refuse(
                    sqe,
                    "HOSTNQN not allowed",
                    Status::CONNECT_INVALID_HOST,
                    Some((true, 512)),
                )
            }
            Some(s) => (
                Some(Arc::clone(s)),
                Vec::new(),
                s.options().max_queue_entries,
            ),
            None => {
                return refuse(
                    sqe,
                    "unknown SUBNQN",
                    Status::CONNECT_INVALID_PARAMETERS,
                    Some((true, 256)),
                )
            }
        }
    };
    if sqsize == 0 || u32::from(sqsize) + 1 > u32::from(max_entries) {
        return refuse(
            sqe,
            "SQSIZE",
            Status::CONNECT_INVALID_PARAMETERS,
            Some((false, 44)),
        );
    }
    if qid == 0 {
        if cntlid != 0xFFFF {
            return refuse(
                sqe,
                "static controller ID on the dynamic model",
                Status::CONNECT_INVALID_PARAMETERS,
                Some((true, 16)),
            );
        }
        let ctrl = match &subsystem {
            Some(s) => s.allocate_cntlid(|id| {
                Arc::new(Controller::new(
                    id,
                    Kind::Io,
                    Some(Arc::clone(s)),
                    Vec::new(),
                    hostnqn.clone(),
                    hostid,
                    kato,
                ))
            }),
            None => Some(Arc::new(Controller::new(
                discovery_cntlid(),
                Kind::Discovery,
                None,
                discoverable,
                hostnqn.clone(),
                hostid,
                kato,
            ))),
        };
        let Some(ctrl) = ctrl else {
            return refuse(
                sqe,
                "no controller ID left",
                Status::CONNECT_CONTROLLER_BUSY,
                None,
            );
        };
        log::info!(
            "{}: controller {} for {hostnqn} (KATO {kato} ms)",
            ctrl.subnqn(),
            ctrl.cntlid
        );
        let dw0 = u32::from(ctrl.cntlid);
        return ConnectOutcome::Connected(
            Queue::new(qid, sqsize, ctrl),
            Completion {
                dw0,
                ..Completion::default()
            },
        );
    }
    // An I/O queue names an existing controller of the same host.
    let Some(s) = subsystem else {
        return refuse(
            sqe,
            "I/O queue to the discovery subsystem",
            Status::CONNECT_INVALID_PARAMETERS,
            Some((false, 42)),
        );
    };
    let Some(ctrl) = s.controller(cntlid) else {
        return refuse(
            sqe,
            "unknown CNTLID",
            Status::CONNECT_INVALID_PARAMETERS,
            Some((true, 16)),
        );
    };
    if ctrl.is_dead() {
        return refuse(
            sqe,
            "controller's admin queue is gone",
            Status::CONNECT_INVALID_PARAMETERS,
            Some((true, 16)),
        );
    }
    if ctrl.hostnqn != hostnqn || ctrl.hostid != hostid {
        return refuse(
            sqe,
            "host does not own the controller",
            Status::CONNECT_INVALID_PARAMETERS,
            Some((true, 512)),
        );
    }
    if !ctrl.is_ready() {
        return refuse(
            sqe,
            "controller not enabled",
            Status::COMMAND_SEQUENCE_ERROR,
            None,
        );
    }
    let mut st = ctrl.state();
    let allowed = st
        .features
        .queues_allocated
        .map_or(s.options().max_io_queues, |n| n.saturating_add(1));
    if qid > allowed {
        drop(st);
        return refuse(
            sqe,
            "QID beyond the queues allocated",
            Status::CONNECT_INVALID_PARAMETERS,
            Some((false, 42)),
        );
    }
    if !st.io_queues.insert(qid) {
        drop(st);
        return refuse(
            sqe,
            "QID connected twice",
            Status::COMMAND_SEQUENCE_ERROR,
            None,
        );
    }
    drop(st);
    ConnectOutcome::Connected(Queue::new(qid, sqsize, ctrl), Completion::default())
}

/// Controller IDs of discovery controllers: they never take I/O queues,
/// so they need not be looked up, only be distinct.
fn discovery_cntlid() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    (NEXT.fetch_add(1, Ordering::Relaxed) % 0xFFEF) + 1
}

impl Drop for Queue {
    fn drop(&mut self) {
        if self.qid != 0 {
            self.ctrl.state().io_queues.remove(&self.qid);
        } else {
            self.ctrl.kill();
        }
    }
}

/// The CAP property (NVMe Base 2.1, 3.1.4.1).
pub fn cap(ctrl: &Controller) -> u64 {
    let mqes = u64::from(ctrl.opts.max_queue_entries.saturating_sub(1));
    let mut cap = mqes
        | (1 << 16) // CQR: contiguous queues required
        | (15 << 24) // TO: 7.5 s
        | (1 << 37); // CSS bit 0: NVM Command Set
    if ctrl.kind == Kind::Io {
        cap |= 1 << 43; // CSS bit 6: one or more I/O Command Sets
    }
    cap
}

/// The VS property.
pub fn vs(ctrl: &Controller) -> u32 {
    let (major, minor) = ctrl.opts.personality.version;
    (u32::from(major) << 16) | (u32::from(minor) << 8)
}

/// Property Get / Property Set / Disconnect on a bound queue. Connect here
/// is a Command Sequence Error: the queue is already connected.
pub fn execute(ctrl: &Controller, qid: u16, sqe: &Sqe) -> Outcome {
    let fctype = sqe.0[4];
    let attrib = sqe.0[40] & 7;
    let ofst = sqe.dw(11);
    match fctype {
        FCTYPE_CONNECT => Err(Status::COMMAND_SEQUENCE_ERROR.into()),
        FCTYPE_DISCONNECT => Ok(Done::OK),
        FCTYPE_PROPERTY_GET if qid == 0 => {
            let st = ctrl.state();
            let v: u64 = match (attrib, ofst) {
                (1, PROP_CAP) => cap(ctrl),
                (0, PROP_VS) => u64::from(vs(ctrl)),
                (0, PROP_CC) => u64::from(st.cc),
                (0, PROP_CSTS) => u64::from(st.csts),
                _ => return Err(Status::INVALID_FIELD.into()),
            };
            Ok(Done::Complete {
                dw0: v as u32,
                dw1: (v >> 32) as u32,
            })
        }
        FCTYPE_PROPERTY_SET if qid == 0 => {
            if (attrib, ofst) != (0, PROP_CC) {
                return Err(Status::INVALID_FIELD.into());
            }
            set_cc(ctrl, sqe.dw(12));
            Ok(Done::OK)
        }
        _ => Err(Fail::from(Status::INVALID_OPCODE)),
    }
}

/// Write CC: enable (CSTS.RDY, or CSTS.CFS for a setting we cannot run),
/// reset, shutdown notification (NVMe Base 2.1, 3.5 and 3.6).
pub(crate) fn set_cc(ctrl: &Controller, new: u32) {
    let mut st = ctrl.state();
    let old = st.cc;
    st.cc = new;
    if new & CC_EN != 0 && old & CC_EN == 0 {
        let css = (new >> CC_CSS_SHIFT) & 7;
        let css_ok = css == 0 || (css == 6 && cap(ctrl) & (1 << 43) != 0);
        let mps = (new >> 7) & 0xF;
        let ams = (new >> 11) & 7;
        let iosqes = (new >> 16) & 0xF;
        let iocqes = (new >> 20) & 0xF;
        if css_ok && mps == 0 && ams == 0 && iosqes == 6 && iocqes == 4 {
            st.csts |= CSTS_RDY;
        } else {
            log::warn!("CC {new:#x} cannot be run: controller fatal status");
            st.csts |= CSTS_CFS;
        }
    } else if new & CC_EN == 0 && old & CC_EN != 0 {
        Controller::reset(&mut st);
    }
    let shn = (new >> CC_SHN_SHIFT) & 3;
    if shn != 0 && (old >> CC_SHN_SHIFT) & 3 == 0 {
        drop(st);
        if let Some(s) = &ctrl.subsystem {
            for ns in s.active_namespaces() {
                if let Err(e) = ns.device.flush() {
                    log::error!("shutdown flush of namespace {}: {e}", ns.nsid);
                }
            }
        }
        ctrl.state().csts |= CSTS_SHST_COMPLETE;
    } else if shn == 0 {
        st.csts &= !CSTS_SHST_COMPLETE;
    }
}
