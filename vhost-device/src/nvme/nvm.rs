//! NVM Command Set I/O commands: Read, Write, Flush, Write Zeroes, Dataset
//! Management (NVM CS 1.1, 3).

use super::{
    commands::{Done, Exec, Outcome},
    namespace::Namespace,
    status::Status,
};
use crate::storage::{BlockCount, Lba};

/// The LBA range of a Read/Write/Write Zeroes/Zone Append command: CDW10-11
/// SLBA, CDW12 NLB bits 15:0 (0's based), FUA bit 30.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rw {
    pub slba: Lba,
    pub nlb: BlockCount,
    pub fua: bool,
}

impl Rw {
    pub fn decode(x: &Exec<'_>) -> Rw {
        let dw12 = x.sqe.dw(12);
        Rw {
            slba: Lba::new(x.sqe.qw(10)),
            nlb: BlockCount::new(u64::from(dw12 & 0xFFFF) + 1),
            fua: dw12 & (1 << 30) != 0,
        }
    }

    /// Bytes moved, refused past MDTS (Invalid Field in Command, checked
    /// first as QEMU does) and past the namespace (LBA Out of Range), with
    /// checked arithmetic.
    pub fn bytes(&self, x: &Exec<'_>, ns: &Namespace) -> Result<usize, Status> {
        let bytes = self
            .nlb
            .bytes(ns.block_size())
            .ok_or(Status::LBA_OUT_OF_RANGE)?;
        check_mdts(x, bytes)?;
        ns.device
            .geometry()
            .check_range(self.slba, self.nlb)
            .map_err(|e| ns.status(&e))?;
        usize::try_from(bytes).map_err(|_| Status::INVALID_FIELD)
    }
}

/// Refuse a transfer beyond MDTS (2^MDTS units of 4 KiB; 0 = no limit).
pub fn check_mdts(x: &Exec<'_>, bytes: u64) -> Result<(), Status> {
    let mdts = x.ctrl.opts.mdts;
    if mdts != 0 && bytes > 4096u64 << mdts.min(40) {
        return Err(Status::INVALID_FIELD);
    }
    Ok(())
}

/// Whether writes must be made durable at once: FUA, or the volatile write
/// cache was disabled (Set Features 06h).
fn durable(x: &Exec<'_>, fua: bool) -> bool {
    fua || !x.ctrl.state().features.volatile_write_cache
}

/// Read (02h).
pub fn read(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let rw = Rw::decode(x);
    let bytes = rw.bytes(x, ns)?;
    if (x.transfer_len() as usize) < bytes {
        return Err(Status::DATA_SGL_LENGTH_INVALID.into());
    }
    let mut buf = vec![0u8; bytes];
    ns.device
        .read(rw.slba, &mut buf)
        .map_err(|e| ns.status(&e))?;
    *x.data_in = buf;
    Ok(Done::OK)
}

/// Write (01h).
pub fn write(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let rw = Rw::decode(x);
    let bytes = rw.bytes(x, ns)?;
    if x.data_out.len() != bytes {
        return Err(Status::DATA_SGL_LENGTH_INVALID.into());
    }
    let fua = durable(x, rw.fua);
    ns.device
        .write(rw.slba, x.data_out, fua)
        .map_err(|e| ns.status(&e))?;
    Ok(Done::OK)
}

/// Flush (00h); NSID FFFFFFFFh flushes every namespace.
pub fn flush(x: &mut Exec<'_>) -> Outcome {
    let result = match x.ns {
        Some(ns) => ns.device.flush().map_err(|e| ns.status(&e)),
        None => match &x.ctrl.subsystem {
            Some(s) => s
                .active_namespaces()
                .try_for_each(|ns| ns.device.flush().map_err(|e| ns.status(&e))),
            None => Err(Status::INVALID_NAMESPACE),
        },
    };
    result?;
    Ok(Done::OK)
}

/// Largest zero buffer written at once by Write Zeroes.
const ZERO_CHUNK: u64 = 1 << 20;

/// Write Zeroes (08h): writes zeros through the core (so zone rules and
/// write pointers apply), in chunks of at most 1 MiB. A zoned destination
/// is checked by the first chunk; a failure part way leaves the zeros
/// already written (as a device may).
pub fn write_zeroes(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let rw = Rw::decode(x);
    ns.device
        .geometry()
        .check_range(rw.slba, rw.nlb)
        .map_err(|e| ns.status(&e))?;
    let bs = u64::from(ns.block_size());
    let per_chunk = (ZERO_CHUNK / bs).max(1);
    let zeros = vec![0u8; (per_chunk * bs) as usize];
    let fua = durable(x, rw.fua);
    let mut done = 0u64;
    while done < rw.nlb.get() {
        let n = per_chunk.min(rw.nlb.get() - done);
        // In range: checked above.
        let lba = rw.slba.saturating_add(BlockCount::new(done));
        ns.device
            .write(lba, &zeros[..(n * bs) as usize], false)
            .map_err(|e| ns.status(&e))?;
        done += n;
    }
    if fua {
        ns.device.flush().map_err(|e| ns.status(&e))?;
    }
    Ok(Done::OK)
}

/// Dataset Management (09h): CDW10 NR bits 7:0 (0's based), CDW11 AD bit
/// 2; 16-byte ranges (context attributes 3:0, NLB 7:4 (1-based), SLBA
/// 15:8). Every range is checked; deallocation is accepted and changes
/// nothing visible (DLFEAT reports no read-back value for deallocated
/// blocks, and a zoned namespace only deallocates by zone reset).
pub fn dataset_management(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let nr = (x.sqe.dw(10) & 0xFF) as usize + 1;
    let Some(ranges) = x.data_out.get(..nr * 16) else {
        return Err(Status::DATA_SGL_LENGTH_INVALID.into());
    };
    for r in ranges.chunks_exact(16) {
        let nlb = u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        let mut slba = [0u8; 8];
        slba.copy_from_slice(&r[8..16]);
        let slba = u64::from_le_bytes(slba);
        ns.device
            .geometry()
            .check_range(Lba::new(slba), BlockCount::new(u64::from(nlb)))
            .map_err(|e| ns.status(&e))?;
    }
    Ok(Done::OK)
}
