//! Physical Region Page entries and lists (NVMe Base 2.1, 4.3.1): turn
//! PRP Entry 1 and 2 of a command plus its length into the guest memory
//! segments that hold the data, checking every rule the host could break.

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, Permissions};

use crate::nvme::{pcie::PAGE_SIZE, Status};

/// One contiguous piece of a transfer in guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: usize,
}

/// Entries in one PRP list page.
const ENTRIES_PER_PAGE: u64 = PAGE_SIZE / 8;

fn in_memory(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Result<(), Status> {
    if mem.check_range(GuestAddress(addr), len, Permissions::ReadWrite) {
        Ok(())
    } else {
        // Base 2.1 Figure 102: Data Transfer Error, the controller could
        // not move the data (an address outside guest memory).
        Err(Status::DATA_TRANSFER_ERROR)
    }
}

/// The segments of a `len`-byte transfer described by `prp1` and `prp2`.
/// - PRP Entry 1 may start anywhere dword aligned in a page (bits 1:0
///   zero, else Invalid PRP Offset);
/// - every later data entry is page aligned (Invalid PRP Offset);
/// - when the data spans more than two pages, PRP Entry 2 points at a PRP
///   list (qword aligned), whose last entry points at the next list page
///   when more entries follow (page aligned);
/// - every address must be in guest memory (Data Transfer Error).
///
/// A list that points back at itself ends, since every list page read
/// must yield data entries and the length is finite.
pub fn segments(
    mem: &GuestMemoryMmap,
    prp1: u64,
    prp2: u64,
    len: usize,
) -> Result<Vec<Segment>, Status> {
    let mut out = Vec::new();
    if len == 0 {
        return Ok(out);
    }
    if prp1 & 3 != 0 {
        return Err(Status::INVALID_PRP_OFFSET);
    }
    let page = PAGE_SIZE as usize;
    let first = len.min(page - (prp1 % PAGE_SIZE) as usize);
    in_memory(mem, prp1, first)?;
    out.push(Segment {
        addr: prp1,
        len: first,
    });
    let mut left = len - first;
    if left == 0 {
        return Ok(out);
    }
    if left <= page {
        if !prp2.is_multiple_of(PAGE_SIZE) {
            return Err(Status::INVALID_PRP_OFFSET);
        }
        in_memory(mem, prp2, left)?;
        out.push(Segment {
            addr: prp2,
            len: left,
        });
        return Ok(out);
    }
    // A PRP list: qword aligned, may start inside its page.
    if prp2 & 7 != 0 {
        return Err(Status::INVALID_PRP_OFFSET);
    }
    let mut list = prp2;
    let pages_left = left.div_ceil(page) as u64;
    // Each list page yields at least one data entry, so more list pages
    // than data pages can only be a malformed chain.
    let mut hops = 0u64;
    while left > 0 {
        hops += 1;
        if hops > pages_left + 1 {
            return Err(Status::DATA_TRANSFER_ERROR);
        }
        let slots = ENTRIES_PER_PAGE - (list % PAGE_SIZE) / 8;
        let needed = left.div_ceil(page) as u64;
        let (data_slots, chained) = if needed > slots {
            (slots - 1, true)
        } else {
            (needed, false)
        };
        if data_slots == 0 {
            return Err(Status::INVALID_PRP_OFFSET);
        }
        for i in 0..data_slots {
            let entry = read_entry(mem, list + i * 8)?;
            if entry % PAGE_SIZE != 0 {
                return Err(Status::INVALID_PRP_OFFSET);
            }
            let n = left.min(page);
            in_memory(mem, entry, n)?;
            out.push(Segment {
                addr: entry,
                len: n,
            });
            left -= n;
        }
        if chained {
            let next = read_entry(mem, list + data_slots * 8)?;
            if next % PAGE_SIZE != 0 {
                return Err(Status::INVALID_PRP_OFFSET);
            }
            list = next;
        }
    }
    Ok(out)
}

fn read_entry(mem: &GuestMemoryMmap, addr: u64) -> Result<u64, Status> {
    mem.read_obj::<u64>(GuestAddress(addr))
        .map(u64::from_le)
        .map_err(|_| Status::DATA_TRANSFER_ERROR)
}

/// Gather the bytes of `segs` from guest memory.
pub fn gather(mem: &GuestMemoryMmap, segs: &[Segment]) -> Result<Vec<u8>, Status> {
    let total = segs.iter().map(|s| s.len).sum();
    let mut data = vec![0u8; total];
    let mut at = 0;
    for s in segs {
        mem.read_slice(&mut data[at..at + s.len], GuestAddress(s.addr))
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        at += s.len;
    }
    Ok(data)
}

/// Scatter `data` into `segs` (no further than either goes).
pub fn scatter(mem: &GuestMemoryMmap, segs: &[Segment], data: &[u8]) -> Result<(), Status> {
    let mut at = 0;
    for s in segs {
        if at >= data.len() {
            break;
        }
        let n = s.len.min(data.len() - at);
        mem.write_slice(&data[at..at + n], GuestAddress(s.addr))
            .map_err(|_| Status::DATA_TRANSFER_ERROR)?;
        at += n;
    }
    Ok(())
}
