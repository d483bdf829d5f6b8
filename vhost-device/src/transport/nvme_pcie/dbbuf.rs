//! Shadow doorbells (Doorbell Buffer Config, NVMe Base 2.1, 5.11): the
//! host keeps each I/O queue's SQ tail and CQ head in the Shadow Doorbell
//! buffer and writes the doorbell register only when the value passes the
//! controller's EventIdx for that queue. Over vfio-user every register
//! write is a message on the socket and a wait for its answer, so a
//! doorbell not written is a round trip saved.
//!
//! Both buffers are laid out as the doorbell registers (CAP.DSTRD 0): SQ
//! y at dword 2y, CQ y at dword 2y + 1. What this controller does (as
//! QEMU hw/nvme's nvme_update_sq_eventidx, plus a lazy CQ side):
//! - SQ: before looking for work it reads the shadow tail; it then sets
//!   the SQ's EventIdx to that tail and reads the tail once more, so a
//!   host that wrote a new tail without ringing (it saw the old EventIdx)
//!   is seen now: the host rings again only when the controller has run
//!   out of work and would otherwise sleep.
//! - CQ: the shadow head is read whenever the controller needs room; the
//!   CQ's EventIdx is set (to the head read) only when the queue is full,
//!   so the host's head updates ring the register only then (the host
//!   otherwise rings at most once per pass through the queue, when its
//!   head passes the stale EventIdx).

use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemoryError, GuestMemoryMmap};

use crate::nvme::pcie::DoorbellBuffers;

/// The byte offset of queue `qid`'s entry in either buffer: SQ tail at
/// dword 2y, CQ head at dword 2y + 1 (CAP.DSTRD 0: 4-byte stride).
pub fn offset(qid: u16, cq: bool) -> u64 {
    (2 * u64::from(qid) + u64::from(cq)) * 4
}

/// The host's rule for ringing after moving a value from `old` to `new`
/// with EventIdx `event_idx` (16-bit wrapping, as virtio's
/// `vring_need_event` and Linux nvme-pci's `nvme_dbbuf_need_event`): the
/// register is written iff `event_idx` lies in `[old, new)`.
pub fn need_event(event_idx: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event_idx).wrapping_sub(1) < new.wrapping_sub(old)
}

/// The host's value for queue `qid` (SQ tail, or CQ head with `cq`).
pub fn read(
    mem: &GuestMemoryMmap,
    b: &DoorbellBuffers,
    qid: u16,
    cq: bool,
) -> Result<u32, GuestMemoryError> {
    // Acquire: what the host wrote before the value (SQEs) is read after.
    let v: u32 = mem.read_obj(GuestAddress(b.shadow + offset(qid, cq)))?;
    fence(Ordering::Acquire);
    Ok(u32::from_le(v))
}

/// The two buffers of Doorbell Buffer Config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// The host's tails and heads; the controller writes its own view
    /// there when the buffers arrive after the queue (as QEMU does, so the
    /// host starts from the value the controller has).
    Shadow,
    /// Where the controller asks for a doorbell register write; a full
    /// fence follows, so the shadow value read next is not one read before
    /// the host could see this EventIdx.
    EventIdx,
}

/// Write `v` as queue `qid`'s little-endian dword (SQ tail, or CQ head
/// with `cq`) in buffer `buf`.
pub fn write(
    mem: &GuestMemoryMmap,
    b: &DoorbellBuffers,
    buf: Buffer,
    qid: u16,
    cq: bool,
    v: u16,
) -> Result<(), GuestMemoryError> {
    let base = match buf {
        Buffer::Shadow => b.shadow,
        Buffer::EventIdx => b.eventidx,
    };
    mem.write_obj(u32::from(v).to_le(), GuestAddress(base + offset(qid, cq)))?;
    if buf == Buffer::EventIdx {
        fence(Ordering::SeqCst);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_doorbell_registers() {
        // SQ0 tail 0h, CQ0 head 4h, SQ1 tail 8h, CQ1 head Ch, ...
        assert_eq!(offset(0, false), 0);
        assert_eq!(offset(0, true), 4);
        assert_eq!(offset(1, false), 8);
        assert_eq!(offset(1, true), 12);
        assert_eq!(offset(8, true), 68);
        // The largest queue ID still fits one 4 KiB page only up to 511:
        // the buffers are one page each.
        assert_eq!(offset(511, true), 4092);
    }

    #[test]
    fn the_host_rings_only_when_passing_event_idx() {
        // EventIdx at the old value: the first new entry rings.
        assert!(need_event(5, 6, 5));
        // Already past EventIdx before: no ring.
        assert!(!need_event(5, 7, 6));
        // A batch over EventIdx rings once.
        assert!(need_event(5, 9, 3));
        // Not reached yet.
        assert!(!need_event(9, 8, 3));
        // Wrapping at 16 bits.
        assert!(need_event(0xFFFF, 1, 0xFFFE));
        assert!(!need_event(2, 1, 0xFFFE));
    }

    #[test]
    fn values_are_little_endian_dwords() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x3000)]).unwrap();
        let b = DoorbellBuffers {
            shadow: 0x1000,
            eventidx: 0x2000,
        };
        mem.write_slice(&[7, 1, 0, 0], GuestAddress(0x1000 + 12))
            .unwrap();
        assert_eq!(read(&mem, &b, 1, true).unwrap(), 0x107);
        write(&mem, &b, Buffer::EventIdx, 2, false, 0x0203).unwrap();
        let mut e = [0u8; 4];
        mem.read_slice(&mut e, GuestAddress(0x2000 + 16)).unwrap();
        assert_eq!(e, [3, 2, 0, 0]);
        write(&mem, &b, Buffer::Shadow, 0, false, 9).unwrap();
        assert_eq!(read(&mem, &b, 0, false).unwrap(), 9);
        let outside = DoorbellBuffers {
            shadow: 0x3000,
            eventidx: 0x3000,
        };
        assert!(read(&mem, &outside, 1, false).is_err());
        assert!(write(&mem, &outside, Buffer::EventIdx, 1, false, 0).is_err());
    }
}
