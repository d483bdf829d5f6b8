//! Fabrics commands (opcode 7Fh): Connect, Property Get/Set, Disconnect,
//! each a typed command of the FABRICS table (commands.rs).
//! NVMe Base 2.1, 6 "Fabrics Command Set".

use std::sync::Arc;

use super::{
    commands::{Decode, Done, Exec, Outcome},
    controller::{
        Controller, Kind, CC_CSS_SHIFT, CC_EN, CC_SHN_SHIFT, CSTS_CFS, CSTS_RDY, CSTS_SHST_COMPLETE,
    },
    namespace::Namespace,
    status::Status,
    Completion, ConnectOutcome, Queue, Sqe, Subsystem, Targets, DISCOVERY_NQN,
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

/// Fabrics Connect's SQE fields (NVMe Base 2.1, 6.3 Figure 545): RECFMT
/// bytes 41:40, QID 43:42, SQSIZE 45:44 (0's based), CATTR byte 46, KATO
/// CDW12.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect {
    pub recfmt: u16,
    pub qid: u16,
    pub sqsize: u16,
    pub cattr: u8,
    /// Keep Alive Timeout, ms.
    pub kato: u32,
}

impl Connect {
    /// The Connect a capsule carries, if it is one (opcode 7Fh, FCTYPE
    /// 01h).
    pub fn decode_capsule(sqe: &Sqe) -> Option<Connect> {
        (sqe.opcode() == OPCODE && sqe.0[4] == FCTYPE_CONNECT).then(|| Connect::decode(sqe))
    }

    /// SQ flow control stays on unless CATTR bit 2 disables it.
    pub fn sq_flow_control(&self) -> bool {
        self.cattr & CATTR_DISABLE_SQ_FC == 0
    }
}

impl Decode for Connect {
    fn decode(sqe: &Sqe) -> Connect {
        let b = &sqe.0;
        Connect {
            recfmt: u16::from_le_bytes([b[40], b[41]]),
            qid: u16::from_le_bytes([b[42], b[43]]),
            sqsize: u16::from_le_bytes([b[44], b[45]]),
            cattr: b[46],
            kato: sqe.dw(12),
        }
    }

    fn data_len(&self, _: Option<&Namespace>) -> u64 {
        CONNECT_DATA_LEN as u64
    }
}

/// Connect CATTR bit 2: disable SQ flow control.
const CATTR_DISABLE_SQ_FC: u8 = 1 << 2;

/// Connect's data (NVMe Base 2.1 Figure 546): HOSTID bytes 15:0, CNTLID
/// 17:16, SUBNQN 511:256, HOSTNQN 767:512.
struct ConnectData {
    hostid: [u8; 16],
    cntlid: u16,
    subnqn: String,
    hostnqn: String,
}

impl ConnectData {
    fn decode(data: &[u8]) -> Option<ConnectData> {
        let data = data.get(..CONNECT_DATA_LEN)?;
        let mut hostid = [0u8; 16];
        hostid.copy_from_slice(&data[0..16]);
        Some(ConnectData {
            hostid,
            cntlid: u16::from_le_bytes([data[16], data[17]]),
            subnqn: nqn_field(data, 256),
            hostnqn: nqn_field(data, 512),
        })
    }
}

fn nqn_field(data: &[u8], at: usize) -> String {
    let f = &data[at..at + 256];
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

/// Why a Connect is refused: words for the log, the status, and the
/// Invalid Parameter Offset (in the data?, offset).
type Why = (&'static str, Status, Option<(bool, u16)>);

/// A Connect refusal with the Invalid Parameter Offset in Dword 0
/// (NVMe Base 2.1 Figure 548): bits 15:0 IPO, bit 16 IATTR (1 = the offset
/// is in the Connect data, 0 = in the SQE).
pub(crate) fn refuse(
    sqe: &Sqe,
    why: &str,
    status: Status,
    ipo: Option<(bool, u16)>,
) -> ConnectOutcome {
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

/// Fabrics Connect (NVMe Base 2.1, 6.3), admitted by
/// [`Targets::admit`](super::Targets::admit), with its data.
pub fn connect(targets: &Targets, c: &Connect, sqe: &Sqe, data: &[u8]) -> ConnectOutcome {
    match bind(targets, c, data) {
        Ok((queue, dw0)) => ConnectOutcome::Connected(
            queue,
            Completion {
                dw0,
                ..Completion::default()
            },
        ),
        Err((why, status, ipo)) => refuse(sqe, why, status, ipo),
    }
}

/// The queue a Connect binds and the completion's Dword 0 (the controller
/// ID of a new admin queue), or why not.
fn bind(targets: &Targets, c: &Connect, data: &[u8]) -> Result<(Queue, u32), Why> {
    let Some(d) = ConnectData::decode(data) else {
        return Err(("short data", Status::DATA_SGL_LENGTH_INVALID, None));
    };
    if c.recfmt != 0 {
        return Err(("RECFMT", Status::CONNECT_INCOMPATIBLE_FORMAT, None));
    }
    if d.hostnqn.is_empty() {
        let why = "empty HOSTNQN";
        return Err((why, Status::CONNECT_INVALID_HOST, Some((true, 512))));
    }
    let (subsystem, discoverable, max_entries) = resolve(targets, &d)?;
    if c.sqsize == 0 || u32::from(c.sqsize) + 1 > u32::from(max_entries) {
        let why = "SQSIZE";
        return Err((why, Status::CONNECT_INVALID_PARAMETERS, Some((false, 44))));
    }
    if c.qid == 0 {
        let ctrl = admin_controller(subsystem, discoverable, c, d)?;
        let dw0 = u32::from(ctrl.cntlid);
        return Ok((Queue::new(0, c.sqsize, ctrl, c.sq_flow_control()), dw0));
    }
    let ctrl = io_controller(subsystem, c, &d)?;
    Ok((Queue::new(c.qid, c.sqsize, ctrl, c.sq_flow_control()), 0))
}

/// What SUBNQN names: the subsystem (None: discovery), the subsystems the
/// host may discover, and the largest queue.
type Resolved = (Option<Arc<Subsystem>>, Vec<Arc<Subsystem>>, u16);

/// The subsystem SUBNQN names, or why not.
fn resolve(targets: &Targets, d: &ConnectData) -> Result<Resolved, Why> {
    if d.subnqn == DISCOVERY_NQN {
        // A host discovers only the subsystems it may connect to.
        let allowed = targets
            .subsystems
            .iter()
            .filter(|s| s.config().allows(&d.hostnqn))
            .cloned()
            .collect();
        return Ok((None, allowed, 128u16));
    }
    match targets.subsystem(&d.subnqn) {
        Some(s) if !s.config().allows(&d.hostnqn) => {
            let why = "HOSTNQN not allowed";
            Err((why, Status::CONNECT_INVALID_HOST, Some((true, 512))))
        }
        Some(s) => Ok((
            Some(Arc::clone(s)),
            Vec::new(),
            s.options().max_queue_entries,
        )),
        None => {
            let why = "unknown SUBNQN";
            Err((why, Status::CONNECT_INVALID_PARAMETERS, Some((true, 256))))
        }
    }
}

/// A new controller for an admin queue Connect (the dynamic controller
/// model: CNTLID FFFFh), or why not.
fn admin_controller(
    subsystem: Option<Arc<Subsystem>>,
    discoverable: Vec<Arc<Subsystem>>,
    c: &Connect,
    d: ConnectData,
) -> Result<Arc<Controller>, Why> {
    if d.cntlid != 0xFFFF {
        let why = "static controller ID on the dynamic model";
        return Err((why, Status::CONNECT_INVALID_PARAMETERS, Some((true, 16))));
    }
    let ctrl = match &subsystem {
        Some(s) => s.allocate_cntlid(|id| {
            Arc::new(Controller::new(
                id,
                Kind::Io,
                Some(Arc::clone(s)),
                Vec::new(),
                d.hostnqn.clone(),
                d.hostid,
                c.kato,
            ))
        }),
        None => Some(Arc::new(Controller::new(
            discovery_cntlid(),
            Kind::Discovery,
            None,
            discoverable,
            d.hostnqn.clone(),
            d.hostid,
            c.kato,
        ))),
    };
    let ctrl = ctrl.ok_or((
        "no controller ID left",
        Status::CONNECT_CONTROLLER_BUSY,
        None,
    ))?;
    log::info!(
        "{}: controller {} for {} (KATO {} ms)",
        ctrl.subnqn(),
        ctrl.cntlid,
        d.hostnqn,
        c.kato
    );
    Ok(ctrl)
}

/// The existing controller of the same host an I/O queue Connect names,
/// with the queue counted, or why not.
fn io_controller(
    subsystem: Option<Arc<Subsystem>>,
    c: &Connect,
    d: &ConnectData,
) -> Result<Arc<Controller>, Why> {
    let invalid = Status::CONNECT_INVALID_PARAMETERS;
    let Some(s) = subsystem else {
        let why = "I/O queue to the discovery subsystem";
        return Err((why, invalid, Some((false, 42))));
    };
    let Some(ctrl) = s.controller(d.cntlid) else {
        return Err(("unknown CNTLID", invalid, Some((true, 16))));
    };
    if ctrl.is_dead() {
        let why = "controller's admin queue is gone";
        return Err((why, invalid, Some((true, 16))));
    }
    if ctrl.hostnqn != d.hostnqn || ctrl.hostid != d.hostid {
        let why = "host does not own the controller";
        return Err((why, invalid, Some((true, 512))));
    }
    if !ctrl.is_ready() {
        return Err((
            "controller not enabled",
            Status::COMMAND_SEQUENCE_ERROR,
            None,
        ));
    }
    let mut st = ctrl.state();
    let allowed = st
        .features
        .queues_allocated
        .map_or(s.options().max_io_queues, |n| n.saturating_add(1));
    if c.qid > allowed {
        let why = "QID beyond the queues allocated";
        return Err((why, invalid, Some((false, 42))));
    }
    if !st.io_queues.insert(c.qid) {
        return Err(("QID connected twice", Status::COMMAND_SEQUENCE_ERROR, None));
    }
    drop(st);
    Ok(ctrl)
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

/// Property Get/Set's SQE fields (NVMe Base 2.1, 6.5 and 6.6): ATTRIB
/// byte 40 bits 2:0 (size: 0 four bytes, 1 eight), OFST CDW11, VALUE
/// CDW12-13 (Set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property {
    pub attrib: u8,
    pub ofst: u32,
    pub value: u64,
}

impl Decode for Property {
    fn decode(sqe: &Sqe) -> Property {
        Property {
            attrib: sqe.0[40] & 7,
            ofst: sqe.dw(11),
            value: sqe.qw(12),
        }
    }
}

/// Property Get (FCTYPE 04h), on the admin queue only.
pub fn property_get(x: &mut Exec<'_>, p: Property) -> Outcome {
    if x.qid != 0 {
        return Err(Status::INVALID_OPCODE.into());
    }
    let ctrl = x.ctrl;
    let st = ctrl.state();
    let v: u64 = match (p.attrib, p.ofst) {
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

/// Property Set (FCTYPE 00h), on the admin queue only: CC is the one
/// writable property.
pub fn property_set(x: &mut Exec<'_>, p: Property) -> Outcome {
    if x.qid != 0 {
        return Err(Status::INVALID_OPCODE.into());
    }
    if (p.attrib, p.ofst) != (0, PROP_CC) {
        return Err(Status::INVALID_FIELD.into());
    }
    set_cc(x.ctrl, p.value as u32);
    Ok(Done::OK)
}

/// Connect on a bound queue: a Command Sequence Error, the queue is
/// already connected.
pub fn connect_again(_: &mut Exec<'_>, _: Connect) -> Outcome {
    Err(Status::COMMAND_SEQUENCE_ERROR.into())
}

/// Disconnect (FCTYPE 08h, NVMe Base 2.1, 6.4): no fields; the queue ends
/// once it completes (its row says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnect;

impl Decode for Disconnect {
    fn decode(_: &Sqe) -> Disconnect {
        Disconnect
    }
}

/// Disconnect.
pub fn disconnect(_: &mut Exec<'_>, _: Disconnect) -> Outcome {
    Ok(Done::OK)
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
