//! What NVMe over PCIe adds to the controller model: a controller that
//! exists without Fabrics Connect, the queue creation and deletion admin
//! commands (NVMe Base 2.1, 5.4 to 5.7; PCIe only), and the transfer
//! length of each command (PRPs carry none, so it comes from the
//! command's own fields). The transport (transport/nvme_pcie) runs the
//! queues recorded here; it knows no opcode.

use std::{collections::BTreeMap, sync::Arc};

use super::{
    admin::FID_HOST_BEHAVIOR_SUPPORT,
    commands::{Done, Exec, Fail, Outcome, AT_CDW10, AT_CDW11},
    controller::{Controller, Kind, HBS_LEN},
    copy,
    status::Status,
    DataDirection, Queue, Sqe, Subsystem,
};

/// Identify data and other fixed-size structures (NVMe Base 2.1, 5.17).
const IDENTIFY_LEN: u32 = 4096;

/// Memory page size the controller runs with (CC.MPS = 0: 4 KiB, the only
/// value CAP.MPSMIN = CAP.MPSMAX = 0 allows).
pub const PAGE_SIZE: u64 = 4096;

/// An I/O submission queue the host created (Create I/O Submission
/// Queue, NVMe Base 2.1, 5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqDef {
    /// Guest physical address of the (physically contiguous) queue.
    pub base: u64,
    /// Entries (QSIZE + 1).
    pub entries: u16,
    /// The completion queue its completions go to.
    pub cqid: u16,
}

/// An I/O completion queue the host created (Create I/O Completion
/// Queue, NVMe Base 2.1, 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CqDef {
    pub base: u64,
    pub entries: u16,
    /// MSI-X vector.
    pub vector: u16,
    /// Interrupts enabled (IEN).
    pub interrupts: bool,
}

/// The buffers of Doorbell Buffer Config (7Ch, NVMe Base 2.1, 5.11):
/// guest physical addresses, page aligned. Entry
/// layout as the doorbell registers': SQ y tail at 2y, CQ y head at 2y + 1
/// dwords (CAP.DSTRD 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorbellBuffers {
    /// Shadow Doorbell buffer (PRP Entry 1): the host's tails and heads.
    pub shadow: u64,
    /// EventIdx buffer (PRP Entry 2): where the controller asks for a
    /// doorbell register write.
    pub eventidx: u64,
}

/// The I/O queues of a PCIe controller, by queue identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PcieQueues {
    pub sqs: BTreeMap<u16, SqDef>,
    pub cqs: BTreeMap<u16, CqDef>,
    /// Set by Doorbell Buffer Config; cleared by a controller reset.
    pub doorbell_buffers: Option<DoorbellBuffers>,
}

/// Does the controller offer Doorbell Buffer Config (PCIe only)?
pub fn shadow_doorbells(ctrl: &Controller) -> bool {
    ctrl.is_pcie() && ctrl.opts.shadow_doorbells
}

/// MSI-X vectors a controller of `subsystem` offers: one for the admin
/// queue and one per I/O queue it may have.
pub fn interrupt_vectors(subsystem: &Subsystem) -> u16 {
    subsystem.options().max_io_queues.saturating_add(1)
}

/// A new controller of `subsystem` for a PCIe function (no host NQN, no
/// keep alive), or `None` when no controller ID is left.
pub fn controller(subsystem: &Arc<Subsystem>) -> Option<Arc<Controller>> {
    subsystem.allocate_cntlid(|id| {
        Arc::new(Controller::new(
            id,
            Kind::Io,
            Some(Arc::clone(subsystem)),
            Vec::new(),
            String::new(),
            [0; 16],
            0,
        ))
    })
}

/// The [`Queue`] through which the transport runs the commands of
/// submission queue `qid` (0 = admin) with `entries` entries.
pub fn queue(ctrl: &Arc<Controller>, qid: u16, entries: u16) -> Queue {
    Queue::new(qid, entries.saturating_sub(1), Arc::clone(ctrl))
}

/// Write CC (enable, reset, shutdown): the same rules as the Fabrics
/// Property Set of CC (NVMe Base 2.1, 3.5 and 3.6).
pub fn set_cc(ctrl: &Controller, cc: u32) {
    super::fabrics::set_cc(ctrl, cc);
}

/// Data direction (opcode bits 1:0, NVMe Base 2.1 Figure 92) and length
/// of a command on PCIe.
pub fn data_direction(ctrl: &Controller, qid: u16, sqe: &Sqe) -> DataDirection {
    match (sqe.opcode() & 3, data_length(ctrl, qid, sqe)) {
        (_, 0) => DataDirection::None,
        (1, n) => DataDirection::HostToController(n),
        (2, n) => DataDirection::ControllerToHost(n),
        _ => DataDirection::None,
    }
}

/// The data bytes a command moves, from its own fields (PRP entries
/// describe memory, not a length). Commands that move no data, and
/// commands this controller does not know, move 0 bytes.
pub fn data_length(ctrl: &Controller, qid: u16, sqe: &Sqe) -> u32 {
    let len = if qid == 0 {
        admin_length(sqe)
    } else {
        io_length(ctrl, sqe)
    };
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn admin_length(sqe: &Sqe) -> u64 {
    let dw10 = sqe.dw(10);
    match sqe.opcode() {
        // Get Log Page: NUMDL CDW10 31:16, NUMDU CDW11 15:0, 0's based
        // dwords (Base 2.1, 5.16).
        0x02 => ((u64::from(dw10 >> 16) | (u64::from(sqe.dw(11) & 0xFFFF) << 16)) + 1) * 4,
        0x06 => u64::from(IDENTIFY_LEN),
        // Set/Get Features move data only for Host Behavior Support here.
        0x09 | 0x0A if dw10 as u8 == FID_HOST_BEHAVIOR_SUPPORT => HBS_LEN as u64,
        _ => 0,
    }
}

fn io_length(ctrl: &Controller, sqe: &Sqe) -> u64 {
    let dw10 = sqe.dw(10);
    let dw12 = sqe.dw(12);
    match sqe.opcode() {
        // Write, Read, Zone Append: NLB CDW12 15:0, 0's based (NVM CS 1.1,
        // 3.2.4 and 3.2.6; ZNS 1.1, 3.3.1).
        0x01 | 0x02 | 0x7D => ctrl.namespace(sqe.nsid()).map_or(0, |ns| {
            (u64::from(dw12 & 0xFFFF) + 1) * u64::from(ns.block_size())
        }),
        // Dataset Management: NR CDW10 7:0, 16-byte ranges (NVM CS 1.1,
        // 3.2.3).
        0x09 => (u64::from(dw10 & 0xFF) + 1) * 16,
        // Copy: NR CDW12 7:0, descriptor format CDW12 11:8.
        copy::OPCODE => {
            let size = if (dw12 >> 8) & 0xF == 1 || (dw12 >> 8) & 0xF == 3 {
                40
            } else {
                32
            };
            (u64::from(dw12 & 0xFF) + 1) * size
        }
        // Zone Management Receive: NUMD CDW12, 0's based dwords.
        0x7A => (u64::from(dw12) + 1) * 4,
        _ => 0,
    }
}

// ------------------------------------------------------ queue commands

/// QID (CDW10 15:0) and QSIZE (CDW10 31:16, 0's based) of a create
/// command, checked against the queues allocated (Number of Queues) and
/// CAP.MQES (Base 2.1, 5.4 and 5.5: Invalid Queue Identifier, Invalid
/// Queue Size).
fn qid_and_size(x: &Exec<'_>) -> Result<(u16, u16), Fail> {
    let dw10 = x.sqe.dw(10);
    let qid = dw10 as u16;
    let qsize = (dw10 >> 16) as u16;
    let allocated = x
        .ctrl
        .state()
        .features
        .queues_allocated
        .map_or(x.ctrl.opts.max_io_queues, |n| n.saturating_add(1));
    if qid == 0 || qid > allocated {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    if qsize == 0 || u32::from(qsize) + 1 > u32::from(x.ctrl.opts.max_queue_entries) {
        return Err(Fail::at(Status::INVALID_QUEUE_SIZE, AT_CDW10 + 2, 0));
    }
    Ok((qid, qsize + 1))
}

/// PRP Entry 1 of a create command: the queue's base, page aligned
/// (Base 2.1, 5.4 and 5.5: PC must be 1 since CAP.CQR = 1).
fn queue_base(x: &Exec<'_>) -> Result<u64, Fail> {
    if x.sqe.dw(11) & 1 == 0 {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW11, 0));
    }
    let base = x.sqe.qw(6);
    if base == 0 || base % PAGE_SIZE != 0 {
        return Err(Fail::at(Status::INVALID_PRP_OFFSET, 24, 0));
    }
    Ok(base)
}

/// Create I/O Completion Queue (05h), NVMe Base 2.1, 5.4. CDW11: IV
/// 31:16, IEN bit 1, PC bit 0.
pub fn create_cq(x: &mut Exec<'_>) -> Outcome {
    let (qid, entries) = qid_and_size(x)?;
    let base = queue_base(x)?;
    let dw11 = x.sqe.dw(11);
    let vector = (dw11 >> 16) as u16;
    let vectors = x.ctrl.subsystem.as_deref().map_or(1, interrupt_vectors);
    if vector >= vectors {
        return Err(Fail::at(Status::INVALID_INTERRUPT_VECTOR, AT_CDW11 + 2, 0));
    }
    let mut st = x.ctrl.state();
    if st.pcie.cqs.contains_key(&qid) {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    st.pcie.cqs.insert(
        qid,
        CqDef {
            base,
            entries,
            vector,
            interrupts: dw11 & 2 != 0,
        },
    );
    Ok(Done::OK)
}

/// Create I/O Submission Queue (01h), NVMe Base 2.1, 5.5. CDW11: CQID
/// 31:16, QPRIO 2:1 (ignored: round robin arbitration), PC bit 0.
pub fn create_sq(x: &mut Exec<'_>) -> Outcome {
    let (qid, entries) = qid_and_size(x)?;
    let base = queue_base(x)?;
    let cqid = (x.sqe.dw(11) >> 16) as u16;
    let mut st = x.ctrl.state();
    if cqid == 0 || !st.pcie.cqs.contains_key(&cqid) {
        return Err(Fail::at(Status::COMPLETION_QUEUE_INVALID, AT_CDW11 + 2, 0));
    }
    if st.pcie.sqs.contains_key(&qid) {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    st.pcie.sqs.insert(
        qid,
        SqDef {
            base,
            entries,
            cqid,
        },
    );
    st.io_queues.insert(qid);
    Ok(Done::OK)
}

/// Delete I/O Submission Queue (00h), NVMe Base 2.1, 5.7.
pub fn delete_sq(x: &mut Exec<'_>) -> Outcome {
    let qid = x.sqe.dw(10) as u16;
    let mut st = x.ctrl.state();
    if qid == 0 || st.pcie.sqs.remove(&qid).is_none() {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    st.io_queues.remove(&qid);
    Ok(Done::OK)
}

/// Doorbell Buffer Config (7Ch, NVMe Base 2.1, 5.11; OACS bit 8): PRP
/// Entry 1 the Shadow Doorbell buffer,
/// PRP Entry 2 the EventIdx buffer, each one memory page, page aligned,
/// else Invalid Field in Command (as QEMU hw/nvme answers). The I/O
/// queues use them from now on (the transport reads the host's values
/// from the shadow buffer and writes EventIdx); the admin queue keeps its
/// doorbell registers, as Linux nvme-pci expects.
pub fn doorbell_buffer_config(x: &mut Exec<'_>) -> Outcome {
    let (shadow, eventidx) = (x.sqe.qw(6), x.sqe.qw(8));
    if shadow % PAGE_SIZE != 0 {
        return Err(Fail::at(Status::INVALID_FIELD, 24, 0));
    }
    if eventidx % PAGE_SIZE != 0 {
        return Err(Fail::at(Status::INVALID_FIELD, 32, 0));
    }
    x.ctrl.state().pcie.doorbell_buffers = Some(DoorbellBuffers { shadow, eventidx });
    Ok(Done::OK)
}

/// Delete I/O Completion Queue (04h), NVMe Base 2.1, 5.6: Invalid Queue
/// Deletion while a submission queue still posts to it.
pub fn delete_cq(x: &mut Exec<'_>) -> Outcome {
    let qid = x.sqe.dw(10) as u16;
    let mut st = x.ctrl.state();
    if qid == 0 || !st.pcie.cqs.contains_key(&qid) {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    if st.pcie.sqs.values().any(|sq| sq.cqid == qid) {
        return Err(Fail::at(Status::INVALID_QUEUE_DELETION, AT_CDW10, 0));
    }
    st.pcie.cqs.remove(&qid);
    Ok(Done::OK)
}
