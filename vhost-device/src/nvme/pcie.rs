//! What NVMe over PCIe adds to the controller model: a controller that
//! exists without Fabrics Connect, the queue creation and deletion admin
//! commands (NVMe Base 2.1, 5.4 to 5.7; PCIe only). The transfer length
//! of each command (PRPs carry none) comes from its typed command
//! ([`super::commands::Decode::data_len`]) through admission. The
//! transport (transport/nvme_pcie) runs the queues recorded here; it
//! knows no opcode.

use std::{collections::BTreeMap, sync::Arc};

use super::{
    commands::{Decode, Done, Exec, Fail, Outcome, AT_CDW10, AT_CDW11},
    controller::{Controller, Kind},
    status::Status,
    Queue, Sqe, Subsystem,
};

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
    Queue::new(qid, entries.saturating_sub(1), Arc::clone(ctrl), true)
}

/// Write CC (enable, reset, shutdown): the same rules as the Fabrics
/// Property Set of CC (NVMe Base 2.1, 3.5 and 3.6).
pub fn set_cc(ctrl: &Controller, cc: u32) {
    super::fabrics::set_cc(ctrl, cc);
}

// ------------------------------------------------------ queue commands

/// A create command's fields (NVMe Base 2.1, 5.4 and 5.5, Figures
/// "Create I/O Completion Queue - Command Dword 10/11" and "Create I/O
/// Submission Queue - Command Dword 10/11"): QID CDW10 15:0, QSIZE CDW10 31:16 (0's based),
/// PC CDW11 bit 0, PRP Entry 1 the queue's base; for a completion queue
/// IEN CDW11 bit 1 and IV 31:16, for a submission queue CQID CDW11 31:16
/// (QPRIO 2:1 ignored: round robin arbitration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateQueue {
    pub qid: u16,
    pub qsize: u16,
    pub contiguous: bool,
    pub base: u64,
    /// IEN (completion queue).
    pub interrupts: bool,
    /// IV (completion queue) or CQID (submission queue).
    pub dw11_high: u16,
}

impl Decode for CreateQueue {
    fn decode(sqe: &Sqe) -> CreateQueue {
        let (dw10, dw11) = (sqe.dw(10), sqe.dw(11));
        CreateQueue {
            qid: dw10 as u16,
            qsize: (dw10 >> 16) as u16,
            contiguous: dw11 & 1 != 0,
            base: sqe.qw(6),
            interrupts: dw11 & 2 != 0,
            dw11_high: (dw11 >> 16) as u16,
        }
    }
}

impl CreateQueue {
    /// QID and entries, checked against the queues allocated (Number of
    /// Queues) and CAP.MQES (Base 2.1, 5.4 and 5.5: Invalid Queue
    /// Identifier, Invalid Queue Size), then the base: page aligned, PC
    /// set since CAP.CQR = 1.
    fn check(&self, ctrl: &Controller) -> Result<(u16, u16, u64), Fail> {
        let allocated = ctrl
            .state()
            .features
            .queues_allocated
            .map_or(ctrl.opts.max_io_queues, |n| n.saturating_add(1));
        if self.qid == 0 || self.qid > allocated {
            return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
        }
        let qsize = self.qsize;
        if qsize == 0 || u32::from(qsize) + 1 > u32::from(ctrl.opts.max_queue_entries) {
            return Err(Fail::at(Status::INVALID_QUEUE_SIZE, AT_CDW10 + 2, 0));
        }
        if !self.contiguous {
            return Err(Fail::at(Status::INVALID_FIELD, AT_CDW11, 0));
        }
        if self.base == 0 || !self.base.is_multiple_of(PAGE_SIZE) {
            return Err(Fail::at(Status::INVALID_PRP_OFFSET, 24, 0));
        }
        Ok((self.qid, qsize + 1, self.base))
    }
}

/// Create I/O Completion Queue (05h), NVMe Base 2.1, 5.4.
pub fn create_cq(x: &mut Exec<'_>, c: CreateQueue) -> Outcome {
    let (qid, entries, base) = c.check(x.ctrl)?;
    let vector = c.dw11_high;
    let vectors = x.ctrl.subsystem.as_deref().map_or(1, interrupt_vectors);
    if vector >= vectors {
        return Err(Fail::at(Status::INVALID_INTERRUPT_VECTOR, AT_CDW11 + 2, 0));
    }
    let mut st = x.ctrl.state();
    if st.pcie.cqs.contains_key(&qid) {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    let cq = CqDef {
        base,
        entries,
        vector,
        interrupts: c.interrupts,
    };
    st.pcie.cqs.insert(qid, cq);
    Ok(Done::OK)
}

/// Create I/O Submission Queue (01h), NVMe Base 2.1, 5.5.
pub fn create_sq(x: &mut Exec<'_>, c: CreateQueue) -> Outcome {
    let (qid, entries, base) = c.check(x.ctrl)?;
    let cqid = c.dw11_high;
    let mut st = x.ctrl.state();
    if cqid == 0 || !st.pcie.cqs.contains_key(&cqid) {
        return Err(Fail::at(Status::COMPLETION_QUEUE_INVALID, AT_CDW11 + 2, 0));
    }
    if st.pcie.sqs.contains_key(&qid) {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    let sq = SqDef {
        base,
        entries,
        cqid,
    };
    st.pcie.sqs.insert(qid, sq);
    st.io_queues.insert(qid);
    Ok(Done::OK)
}

/// A delete command's QID (CDW10 15:0; NVMe Base 2.1, 5.6 and 5.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueId(pub u16);

impl Decode for QueueId {
    fn decode(sqe: &Sqe) -> QueueId {
        QueueId(sqe.dw(10) as u16)
    }
}

/// Delete I/O Submission Queue (00h), NVMe Base 2.1, 5.7.
pub fn delete_sq(x: &mut Exec<'_>, QueueId(qid): QueueId) -> Outcome {
    let mut st = x.ctrl.state();
    if qid == 0 || st.pcie.sqs.remove(&qid).is_none() {
        return Err(Fail::at(Status::INVALID_QUEUE_IDENTIFIER, AT_CDW10, 0));
    }
    st.io_queues.remove(&qid);
    Ok(Done::OK)
}

/// Doorbell Buffer Config's fields (7Ch, NVMe Base 2.1, 5.11): PRP Entry
/// 1 the Shadow Doorbell buffer, PRP Entry 2 the EventIdx buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoorbellBufferConfig {
    pub shadow: u64,
    pub eventidx: u64,
}

impl Decode for DoorbellBufferConfig {
    fn decode(sqe: &Sqe) -> Self {
        DoorbellBufferConfig {
            shadow: sqe.qw(6),
            eventidx: sqe.qw(8),
        }
    }
}

/// Doorbell Buffer Config (7Ch, NVMe Base 2.1, 5.11; OACS bit 8): each
/// buffer one memory page, page aligned, else Invalid Field in Command (as
/// QEMU hw/nvme answers). The I/O queues use them from now on (the
/// transport reads the host's values from the shadow buffer and writes
/// EventIdx); the admin queue keeps its doorbell registers, as Linux
/// nvme-pci expects.
pub fn doorbell_buffer_config(x: &mut Exec<'_>, c: DoorbellBufferConfig) -> Outcome {
    let DoorbellBufferConfig { shadow, eventidx } = c;
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
pub fn delete_cq(x: &mut Exec<'_>, QueueId(qid): QueueId) -> Outcome {
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
