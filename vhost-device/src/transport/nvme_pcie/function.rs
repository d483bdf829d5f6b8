//! The NVMe PCIe function: BAR0 (controller registers, doorbells, MSI-X
//! table and PBA), the queues it runs and the interrupts it raises.
//! Commands go to the model ([`crate::nvme::Queue`]); the transport owns
//! rings, PRPs and registers only.

use std::{collections::BTreeMap, fs::File, io::Write, sync::Arc};

use super::{
    config::PciConfig,
    dbbuf::{self, Buffer},
    memory::DmaMemory,
    prp,
    queues::{Cq, Sq},
};
use crate::nvme::{
    self,
    pcie::{self, DoorbellBuffers, PcieQueues},
    Completion, Controller, DataDirection, Subsystem,
};
use crate::stats::fabric::{Direction, FabricStats};

/// BAR0 layout: registers (0h), doorbells (1000h, CAP.DSTRD = 0: 4
/// bytes apart), MSI-X table (2000h) and PBA (3000h).
pub const BAR0_SIZE: u64 = 0x4000;
pub const DOORBELLS: u64 = 0x1000;
pub const MSIX_TABLE: u64 = 0x2000;
pub const MSIX_PBA: u64 = 0x3000;

// Controller register offsets (NVMe Base 2.1, 3.1.4 Figure 35).
const REG_CAP: u64 = 0x00;
const REG_VS: u64 = 0x08;
const REG_INTMS: u64 = 0x0C;
const REG_INTMC: u64 = 0x10;
const REG_CC: u64 = 0x14;
const REG_CSTS: u64 = 0x1C;
const REG_AQA: u64 = 0x24;
const REG_ASQ: u64 = 0x28;
const REG_ACQ: u64 = 0x30;

/// Asynchronous Event Information for Error status events (NVMe Base
/// 2.1, 5.2.1 Figure 150): write to an invalid doorbell register, invalid
/// doorbell write value.
const AEI_INVALID_DOORBELL_REGISTER: u8 = 0x00;
const AEI_INVALID_DOORBELL_VALUE: u8 = 0x01;

/// A generation number no function used before (a new client gets a new
/// function, and its commands must not meet an old one's completions).
fn next_generation() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One NVMe function as one client (QEMU) sees it.
pub struct Function {
    subsystem: Arc<Subsystem>,
    /// Host-interface bytes by command class: PCIe DMA of data, SQEs and
    /// CQEs (the control socket's `fabric` section, as on NVMe/TCP, so
    /// "offloaded" means the same on both).
    stats: Arc<FabricStats>,
    ctrl: Arc<Controller>,
    pub config: PciConfig,
    pub memory: DmaMemory,
    /// MSI-X vector eventfds (SET_IRQS).
    pub vectors: Vec<Option<File>>,
    msix_table: Vec<u8>,
    aqa: u32,
    asq: u64,
    acq: u64,
    intms: u32,
    sqs: BTreeMap<u16, Sq>,
    cqs: BTreeMap<u16, Cq>,
    /// The I/O queues last seen in the model.
    synced: PcieQueues,
    /// Changes on every controller reset: completions of commands taken
    /// before it are dropped.
    generation: u64,
    /// Where the round robin over submission queues goes on.
    next_sq: u16,
    /// Shadow doorbells of the I/O queues (Doorbell Buffer Config).
    dbbuf: Option<DoorbellBuffers>,
    /// The last invalid shadow value reported (queue, CQ, value): one
    /// Asynchronous Event per bad value, not one per look.
    shadow_bad: Option<(u16, bool, u32)>,
}

impl Function {
    /// A function serving `subsystem` with a fresh controller, or `None`
    /// when the subsystem has no controller ID left.
    pub fn new(subsystem: Arc<Subsystem>, stats: Arc<FabricStats>) -> Option<Self> {
        let ctrl = pcie::controller(&subsystem)?;
        let n = pcie::interrupt_vectors(&subsystem);
        Some(Function {
            config: PciConfig::new(BAR0_SIZE, n, MSIX_TABLE as u32, MSIX_PBA as u32),
            memory: DmaMemory::default(),
            vectors: (0..n).map(|_| None).collect(),
            msix_table: vec![0; usize::from(n) * 16],
            subsystem,
            stats,
            ctrl,
            aqa: 0,
            asq: 0,
            acq: 0,
            intms: 0,
            sqs: BTreeMap::new(),
            cqs: BTreeMap::new(),
            synced: PcieQueues::default(),
            generation: next_generation(),
            next_sq: 0,
            dbbuf: None,
            shadow_bad: None,
        })
    }

    /// The controller behind the function.
    pub fn controller(&self) -> &Arc<Controller> {
        &self.ctrl
    }

    /// Number of MSI-X vectors.
    pub fn vector_count(&self) -> u16 {
        pcie::interrupt_vectors(&self.subsystem)
    }

    fn register(&self, offset: u64) -> u32 {
        let cap = nvme::fabrics::cap(&self.ctrl);
        let st = self.ctrl.state();
        match offset {
            REG_CAP => cap as u32,
            o if o == REG_CAP + 4 => (cap >> 32) as u32,
            REG_VS => nvme::fabrics::vs(&self.ctrl),
            REG_INTMS | REG_INTMC => self.intms,
            REG_CC => st.cc,
            REG_CSTS => st.csts,
            REG_AQA => self.aqa,
            REG_ASQ => self.asq as u32,
            o if o == REG_ASQ + 4 => (self.asq >> 32) as u32,
            REG_ACQ => self.acq as u32,
            o if o == REG_ACQ + 4 => (self.acq >> 32) as u32,
            _ => 0,
        }
    }

    /// A BAR0 read. Registers answer 4-byte reads at dword offsets and
    /// 8-byte reads at qword offsets; other widths and offsets read 0
    /// (NVMe Base 2.1, 3.1.4: registers are accessed at their size).
    pub fn bar_read(&self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset >= MSIX_TABLE {
            self.msix_read(offset, data);
            return;
        }
        let aligned = offset.is_multiple_of(data.len().max(1) as u64);
        if offset >= DOORBELLS || !aligned || !(data.len() == 4 || data.len() == 8) {
            // Doorbells are write-only; reads return 0.
            if offset < DOORBELLS {
                log::debug!(
                    "nvme-pcie: BAR0 read of {} bytes at {offset:#x} ignored",
                    data.len()
                );
            }
            return;
        }
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&self.register(offset + i as u64 * 4).to_le_bytes());
        }
    }

    /// A BAR0 write.
    pub fn bar_write(&mut self, offset: u64, data: &[u8]) {
        if offset >= MSIX_TABLE {
            self.msix_write(offset, data);
            return;
        }
        let aligned = offset.is_multiple_of(data.len().max(1) as u64);
        if !aligned || !(data.len() == 4 || data.len() == 8) {
            log::debug!(
                "nvme-pcie: BAR0 write of {} bytes at {offset:#x} ignored",
                data.len()
            );
            return;
        }
        let mut v = [0u8; 8];
        v[..data.len()].copy_from_slice(data);
        let v = u64::from_le_bytes(v);
        if offset >= DOORBELLS {
            self.doorbell(offset - DOORBELLS, v as u32);
            return;
        }
        match offset {
            REG_INTMS => self.intms |= v as u32,
            REG_INTMC => self.intms &= !(v as u32),
            REG_CC => self.write_cc(v as u32),
            REG_AQA => self.aqa = v as u32 & 0x0FFF_0FFF,
            REG_ASQ if data.len() == 8 => self.asq = v,
            REG_ASQ => self.asq = (self.asq & !0xFFFF_FFFF) | (v & 0xFFFF_FFFF),
            o if o == REG_ASQ + 4 => self.asq = (self.asq & 0xFFFF_FFFF) | (v << 32),
            REG_ACQ if data.len() == 8 => self.acq = v,
            REG_ACQ => self.acq = (self.acq & !0xFFFF_FFFF) | (v & 0xFFFF_FFFF),
            o if o == REG_ACQ + 4 => self.acq = (self.acq & 0xFFFF_FFFF) | (v << 32),
            _ => log::debug!("nvme-pcie: write {v:#x} to read-only register {offset:#x} ignored"),
        }
    }

    /// CC: enabling sets up the admin queue from AQA/ASQ/ACQ (a setting
    /// that cannot run is Controller Fatal Status, Base 2.1, 3.5.1);
    /// disabling resets the controller and drops every queue; shutdown
    /// completes at once (the model flushes and sets CSTS.SHST).
    fn write_cc(&mut self, cc: u32) {
        let was = self.ctrl.state().cc & 1 != 0;
        let en = cc & 1 != 0;
        if en && !was {
            let sq_entries = (self.aqa & 0xFFF) as u16 + 1;
            let cq_entries = ((self.aqa >> 16) & 0xFFF) as u16 + 1;
            let mqes = self.ctrl.opts.max_queue_entries;
            let page = pcie::PAGE_SIZE;
            let bad = sq_entries < 2
                || cq_entries < 2
                || sq_entries > mqes
                || cq_entries > mqes
                || self.asq == 0
                || self.acq == 0
                || !self.asq.is_multiple_of(page)
                || !self.acq.is_multiple_of(page);
            pcie::set_cc(&self.ctrl, cc);
            if bad {
                self.ctrl
                    .fatal("admin queue attributes (AQA/ASQ/ACQ) invalid");
                return;
            }
            self.sqs.insert(
                0,
                Sq {
                    base: self.asq,
                    entries: sq_entries,
                    cqid: 0,
                    head: 0,
                    tail: 0,
                    queue: Arc::new(pcie::queue(&self.ctrl, 0, sq_entries)),
                },
            );
            self.cqs.insert(0, Cq::new(self.acq, cq_entries, 0, true));
            return;
        }
        if !en && was {
            self.sqs.clear();
            self.cqs.clear();
            self.synced = PcieQueues::default();
            self.dbbuf = None;
            self.shadow_bad = None;
            self.generation = next_generation();
        }
        pcie::set_cc(&self.ctrl, cc);
    }

    /// A doorbell write: SQyTDBL at 2y, CQyHDBL at 2y+1 (dwords). A
    /// doorbell of a queue that does not exist, or a value beyond the
    /// queue, is reported as an Error status Asynchronous Event (Base 2.1,
    /// 3.1.4.20/21 and 5.2.1) and otherwise ignored.
    fn doorbell(&mut self, offset: u64, value: u32) {
        self.stats.doorbell_write();
        if !self.ctrl.is_ready() {
            return;
        }
        let idx = offset / 4;
        let qid = u16::try_from(idx / 2).unwrap_or(u16::MAX);
        let is_cq = idx % 2 == 1;
        let entries = if is_cq {
            self.cqs.get(&qid).map(|q| q.entries)
        } else {
            self.sqs.get(&qid).map(|q| q.entries)
        };
        let Some(entries) = entries else {
            self.doorbell_error(AEI_INVALID_DOORBELL_REGISTER, qid);
            return;
        };
        if !offset.is_multiple_of(4) || value >= u32::from(entries) {
            self.doorbell_error(AEI_INVALID_DOORBELL_VALUE, qid);
            return;
        }
        let value = value as u16;
        // Only the pointer moves here: the commands run on the executor
        // thread ([`Function::take_work`]), so a slow command never holds
        // the guest's MMIO write (and its vCPU).
        if is_cq {
            if let Some(cq) = self.cqs.get_mut(&qid) {
                cq.head = value;
            }
        } else if let Some(sq) = self.sqs.get_mut(&qid) {
            sq.tail = value;
        }
    }

    fn doorbell_error(&mut self, info: u8, qid: u16) {
        log::warn!("nvme-pcie: invalid doorbell write (queue {qid}, info {info})");
        self.ctrl.post_event(nvme::events::AsyncEvent {
            kind: nvme::events::TYPE_ERROR,
            info,
            lid: nvme::events::LID_ERROR_INFORMATION,
            nsid: 0,
        });
        self.deliver_deferred();
    }

    /// The next command to run, round robin over the submission queues
    /// that have one pending and room in their completion queue. The SQ
    /// head moves past it now; [`Work::run`] runs it without the lock and
    /// [`Function::finish`] posts its completion.
    pub fn take_work(&mut self) -> Option<Work> {
        if !self.ctrl.is_ready() {
            return None;
        }
        let ids: Vec<u16> = self
            .sqs
            .range(self.next_sq..)
            .chain(self.sqs.range(..self.next_sq))
            .map(|(&id, _)| id)
            .collect();
        for qid in ids {
            if !self.shadow_sq_tail(qid) {
                return None;
            }
            let Some(sq) = self.sqs.get(&qid) else {
                continue;
            };
            let cqid = sq.cqid;
            if !self.shadow_cq_head(cqid) {
                return None;
            }
            let Some(sq) = self.sqs.get(&qid) else {
                continue;
            };
            let cq_full = self.cqs.get(&sq.cqid).is_none_or(Cq::is_full);
            if sq.head == sq.tail || cq_full {
                continue;
            }
            let Some(Ok(sqe)) = sq.fetch(self.memory.mem()) else {
                self.ctrl
                    .fatal("submission queue entry outside guest memory");
                return None;
            };
            let Some(sq) = self.sqs.get_mut(&qid) else {
                continue;
            };
            sq.advance();
            self.next_sq = qid.wrapping_add(1);
            return Some(Work {
                generation: self.generation,
                qid,
                cqid: sq.cqid,
                sqhd: sq.head,
                sqe,
                queue: Arc::clone(&sq.queue),
                mem: self.memory.mem().clone(),
                stats: Arc::clone(&self.stats),
                mdts: self.ctrl.opts.mdts,
            });
        }
        None
    }

    /// Post the completion of `work` (unless the controller was reset or
    /// the queues changed generation meanwhile) and, after an admin
    /// command, create or drop the rings of the I/O queues.
    pub fn finish(&mut self, work: &Work, done: Option<Completion>) {
        if work.generation != self.generation {
            log::debug!(
                "nvme-pcie: completion of qid {} dropped: controller reset",
                work.qid
            );
            return;
        }
        // Rings first: a queue exists before the host learns it does.
        if work.qid == 0 {
            self.sync_queues();
        }
        if let Some(c) = done {
            self.complete(work.cqid, work.qid, work.sqhd, work.sqe.cid(), &c);
        }
        self.deliver_deferred();
    }

    /// Run every pending command here and now (tests; the executor thread
    /// does the same with the lock released around [`Work::run`]).
    #[cfg(test)]
    pub(crate) fn drain(&mut self) {
        while let Some(w) = self.take_work() {
            let done = w.run();
            self.finish(&w, done);
        }
    }

    fn complete(&mut self, cqid: u16, sqid: u16, sqhd: u16, cid: u16, c: &Completion) {
        let Some(cq) = self.cqs.get_mut(&cqid) else {
            return;
        };
        if cq.post(self.memory.mem(), sqid, sqhd, cid, c).is_err() {
            self.ctrl.fatal("completion queue outside guest memory");
            return;
        }
        let (vector, on) = (cq.vector, cq.interrupts);
        if on {
            self.interrupt(vector);
        }
    }

    /// Signal MSI-X vector `v` (QEMU masks and sets the PBA itself).
    fn interrupt(&mut self, v: u16) {
        if let Some(Some(fd)) = self.vectors.get_mut(usize::from(v)) {
            if let Err(e) = fd.write_all(&1u64.to_ne_bytes()) {
                log::warn!("nvme-pcie: interrupt vector {v}: {e}");
            }
        }
    }

    /// Complete Asynchronous Event Requests that became ready.
    pub fn deliver_deferred(&mut self) {
        let Some(admin) = self.sqs.get(&0) else {
            return;
        };
        let ready = admin.queue.take_deferred();
        let sqhd = admin.head;
        for (cid, c) in ready {
            self.complete(0, 0, sqhd, cid, &c);
        }
    }

    /// Create and drop the transport's rings after an admin command
    /// changed the model's I/O queues.
    fn sync_queues(&mut self) {
        let now = self.ctrl.state().pcie.clone();
        if now == self.synced {
            return;
        }
        self.sqs
            .retain(|id, _| *id == 0 || now.sqs.contains_key(id));
        self.cqs
            .retain(|id, _| *id == 0 || now.cqs.contains_key(id));
        let new_buffers = now.doorbell_buffers != self.synced.doorbell_buffers;
        let mut fresh = Vec::new();
        for (&id, d) in &now.cqs {
            if !self.cqs.contains_key(&id) {
                fresh.push((id, true));
            }
            self.cqs
                .entry(id)
                .or_insert_with(|| Cq::new(d.base, d.entries, d.vector, d.interrupts));
        }
        for (&id, d) in &now.sqs {
            if !self.sqs.contains_key(&id) {
                fresh.push((id, false));
            }
            let ctrl = &self.ctrl;
            self.sqs.entry(id).or_insert_with(|| Sq {
                base: d.base,
                entries: d.entries,
                cqid: d.cqid,
                head: 0,
                tail: 0,
                queue: Arc::new(pcie::queue(ctrl, id, d.entries)),
            });
        }
        self.dbbuf = now.doorbell_buffers;
        self.synced = now;
        // The host starts from the controller's values: every I/O queue's
        // when the buffers arrive (as QEMU's nvme_dbbuf_config), a new
        // queue's when it is created (a recreated queue's shadow slot may
        // still hold the old queue's value).
        let seed: Vec<(u16, bool)> = if new_buffers {
            let sqs = self.sqs.keys().map(|&id| (id, false));
            sqs.chain(self.cqs.keys().map(|&id| (id, true)))
                .filter(|&(id, _)| id != 0)
                .collect()
        } else {
            fresh
        };
        self.seed_shadow(&seed);
    }

    /// Write the controller's SQ tail / CQ head of `queues` into the
    /// shadow buffer and the EventIdx buffer.
    fn seed_shadow(&mut self, queues: &[(u16, bool)]) {
        let Some(b) = self.dbbuf else {
            return;
        };
        for &(qid, cq) in queues {
            let v = if cq {
                self.cqs.get(&qid).map(|q| q.head)
            } else {
                self.sqs.get(&qid).map(|q| q.tail)
            };
            let Some(v) = v else {
                continue;
            };
            let mem = self.memory.mem();
            if dbbuf::write(mem, &b, Buffer::Shadow, qid, cq, v)
                .and_then(|()| dbbuf::write(mem, &b, Buffer::EventIdx, qid, cq, v))
                .is_err()
            {
                self.ctrl.fatal("doorbell buffers outside guest memory");
                return;
            }
        }
    }

    /// The host's shadow value of I/O queue `qid` (SQ tail, or CQ head),
    /// checked against the queue size: `Ok(None)` without shadow
    /// doorbells, for the admin queue, or for a value beyond the queue
    /// (reported once as an Invalid Doorbell Write Value error event, as a
    /// register write of it would be).
    fn shadow_value(&mut self, qid: u16, cq: bool, entries: u16) -> Result<Option<u16>, ()> {
        let Some(b) = self.dbbuf.filter(|_| qid != 0) else {
            return Ok(None);
        };
        let Ok(v) = dbbuf::read(self.memory.mem(), &b, qid, cq) else {
            self.ctrl
                .fatal("shadow doorbell buffer outside guest memory");
            return Err(());
        };
        if v >= u32::from(entries) {
            if self.shadow_bad != Some((qid, cq, v)) {
                self.shadow_bad = Some((qid, cq, v));
                self.doorbell_error(AEI_INVALID_DOORBELL_VALUE, qid);
            }
            return Ok(None);
        }
        Ok(Some(v as u16))
    }

    /// With shadow doorbells: take SQ `qid`'s tail from the shadow buffer,
    /// set its EventIdx to it and look once more (see [`dbbuf`]). False
    /// when the buffers are unusable (Controller Fatal Status).
    fn shadow_sq_tail(&mut self, qid: u16) -> bool {
        let Some(entries) = self.sqs.get(&qid).map(|q| q.entries) else {
            return true;
        };
        let tail = match self.shadow_value(qid, false, entries) {
            Ok(Some(t)) => t,
            Ok(None) => return true,
            Err(()) => return false,
        };
        let Some(b) = self.dbbuf else {
            return true;
        };
        if dbbuf::write(self.memory.mem(), &b, Buffer::EventIdx, qid, false, tail).is_err() {
            self.ctrl.fatal("EventIdx buffer outside guest memory");
            return false;
        }
        let tail = match self.shadow_value(qid, false, entries) {
            Ok(Some(again)) => again,
            Ok(None) => tail,
            Err(()) => return false,
        };
        if let Some(sq) = self.sqs.get_mut(&qid) {
            sq.tail = tail;
        }
        true
    }

    /// With shadow doorbells: take CQ `cqid`'s head from the shadow
    /// buffer; if the queue is still full, ask for a doorbell at that head
    /// (EventIdx) and look once more.
    fn shadow_cq_head(&mut self, cqid: u16) -> bool {
        for attempt in 0..2 {
            let Some(entries) = self.cqs.get(&cqid).map(|q| q.entries) else {
                return true;
            };
            let head = match self.shadow_value(cqid, true, entries) {
                Ok(Some(h)) => h,
                Ok(None) => return true,
                Err(()) => return false,
            };
            let Some(cq) = self.cqs.get_mut(&cqid) else {
                return true;
            };
            cq.head = head;
            if !cq.is_full() || attempt == 1 {
                return true;
            }
            let Some(b) = self.dbbuf else {
                return true;
            };
            if dbbuf::write(self.memory.mem(), &b, Buffer::EventIdx, cqid, true, head).is_err() {
                self.ctrl.fatal("EventIdx buffer outside guest memory");
                return false;
            }
        }
        true
    }

    fn msix_read(&self, offset: u64, data: &mut [u8]) {
        if offset >= MSIX_PBA {
            // Pending bits: interrupts are never held back here.
            return;
        }
        let at = (offset - MSIX_TABLE) as usize;
        for (i, d) in data.iter_mut().enumerate() {
            *d = self.msix_table.get(at + i).copied().unwrap_or(0);
        }
    }

    fn msix_write(&mut self, offset: u64, data: &[u8]) {
        if offset >= MSIX_PBA {
            return;
        }
        let at = (offset - MSIX_TABLE) as usize;
        for (i, &d) in data.iter().enumerate() {
            if let Some(b) = self.msix_table.get_mut(at + i) {
                *b = d;
            }
        }
    }

    /// MSI-X eventfds from SET_IRQS: `fds[i]` for vector `start + i`; no
    /// descriptors with a count disables those vectors.
    pub fn set_vectors(&mut self, start: u32, count: u32, fds: Vec<File>) {
        let mut fds = fds.into_iter();
        for v in start..start.saturating_add(count) {
            let fd = fds.next();
            if let Some(slot) = self.vectors.get_mut(v as usize) {
                *slot = fd;
            }
        }
    }

    /// Function level reset (vfio-user DEVICE_RESET): controller disabled,
    /// queues gone, registers back to their defaults.
    pub fn reset(&mut self) {
        self.write_cc(0);
        self.aqa = 0;
        self.asq = 0;
        self.acq = 0;
        self.intms = 0;
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> u32 {
        self.ctrl.state().csts
    }

    #[cfg(test)]
    pub(crate) fn queue_ids(&self) -> (Vec<u16>, Vec<u16>) {
        (
            self.sqs.keys().copied().collect(),
            self.cqs.keys().copied().collect(),
        )
    }
}

/// One command taken from a submission queue, with what running it needs
/// (the guest memory and the model's queue are shared, not locked).
pub struct Work {
    generation: u64,
    qid: u16,
    cqid: u16,
    sqhd: u16,
    sqe: nvme::Sqe,
    queue: Arc<nvme::Queue>,
    mem: vm_memory::GuestMemoryMmap,
    stats: Arc<FabricStats>,
    mdts: u8,
}

impl Work {
    /// Move the command's data through its PRPs and run it.
    pub fn run(&self) -> Option<Completion> {
        let (q, sqe, mem, stats) = (&self.queue, &self.sqe, &self.mem, &self.stats);
        let a = q.admit(sqe);
        let class = a.class;
        stats.command(class);
        // The SQE fetched and the CQE posted cross the bus with the data.
        stats.pdu(class, Direction::HostToController, 0, 64);
        stats.pdu(class, Direction::ControllerToHost, 0, 16);
        let (prp1, prp2) = (sqe.qw(6), sqe.qw(8));
        let mdts = match self.mdts {
            0 => usize::MAX,
            m => (pcie::PAGE_SIZE as usize) << m,
        };
        let mut data_in = Vec::new();
        // PSDT other than PRPs: no PRP walk, the model refuses the command.
        let prps = sqe.0[1] >> 6 == 0;
        match a.direction {
            DataDirection::HostToController(n) if prps && (n as usize) <= mdts => {
                let data = prp::segments(mem, prp1, prp2, n as usize)
                    .and_then(|segs| prp::gather(mem, &segs));
                match data {
                    Ok(data) => {
                        stats.pdu(class, Direction::HostToController, data.len(), 0);
                        q.run(a, &data, &mut data_in)
                    }
                    Err(s) => Some(Completion::with_status(s)),
                }
            }
            DataDirection::ControllerToHost(n) if prps && (n as usize) <= mdts => {
                let segs = match prp::segments(mem, prp1, prp2, n as usize) {
                    Ok(s) => s,
                    Err(s) => return Some(Completion::with_status(s)),
                };
                let done = q.run(a, &[], &mut data_in);
                match prp::scatter(mem, &segs, &data_in) {
                    Ok(()) => {
                        stats.pdu(class, Direction::ControllerToHost, data_in.len(), 0);
                        done
                    }
                    Err(s) => Some(Completion::with_status(s)),
                }
            }
            _ => q.run(a, &[], &mut data_in),
        }
    }
}
