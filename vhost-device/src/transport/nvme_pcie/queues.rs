//! Submission and completion queue rings in guest memory (NVMe Base 2.1,
//! 3.3 and 4.1/4.2): fetch SQEs at the head, post CQEs with the phase tag.

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use crate::nvme::{Completion, Queue, Sqe};

/// A submission queue the transport runs.
pub struct Sq {
    pub base: u64,
    pub entries: u16,
    pub cqid: u16,
    pub head: u16,
    pub tail: u16,
    /// The model's view of the queue (runs the commands).
    pub queue: std::sync::Arc<Queue>,
}

impl Sq {
    /// The SQE at the head, if any is pending and readable.
    pub fn fetch(&self, mem: &GuestMemoryMmap) -> Option<Result<Sqe, GuestMemoryError>> {
        if self.head == self.tail {
            return None;
        }
        let mut b = [0u8; 64];
        let addr = self.base + u64::from(self.head) * 64;
        Some(mem.read_slice(&mut b, GuestAddress(addr)).map(|()| Sqe(b)))
    }

    /// Consume the head entry.
    pub fn advance(&mut self) {
        self.head = (self.head + 1) % self.entries;
    }
}

/// A completion queue.
pub struct Cq {
    pub base: u64,
    pub entries: u16,
    pub vector: u16,
    pub interrupts: bool,
    pub head: u16,
    pub tail: u16,
    /// Phase tag of the entries being posted (starts at 1).
    pub phase: bool,
}

impl Cq {
    pub fn new(base: u64, entries: u16, vector: u16, interrupts: bool) -> Self {
        Cq {
            base,
            entries,
            vector,
            interrupts,
            head: 0,
            tail: 0,
            phase: true,
        }
    }

    /// No room for another entry (one slot stays empty, Base 2.1, 3.3.1.5).
    pub fn is_full(&self) -> bool {
        (self.tail + 1) % self.entries == self.head
    }

    /// Post a completion (Base 2.1, 4.2): DW0, DW1, SQ head and SQ ID,
    /// then CID with phase and status last, so the host never sees a new
    /// phase before the rest is written.
    pub fn post(
        &mut self,
        mem: &GuestMemoryMmap,
        sqid: u16,
        sqhd: u16,
        cid: u16,
        c: &Completion,
    ) -> Result<(), GuestMemoryError> {
        let addr = self.base + u64::from(self.tail) * 16;
        let mut first = [0u8; 12];
        first[0..4].copy_from_slice(&c.dw0.to_le_bytes());
        first[4..8].copy_from_slice(&c.dw1.to_le_bytes());
        first[8..10].copy_from_slice(&sqhd.to_le_bytes());
        first[10..12].copy_from_slice(&sqid.to_le_bytes());
        let dw3 = u32::from(cid) | (u32::from(self.phase) << 16) | (u32::from(c.status) << 17);
        mem.write_slice(&first, GuestAddress(addr))
            .and_then(|()| mem.write_obj(dw3.to_le(), GuestAddress(addr + 12)))?;
        self.tail += 1;
        if self.tail == self.entries {
            self.tail = 0;
            self.phase = !self.phase;
        }
        Ok(())
    }
}
