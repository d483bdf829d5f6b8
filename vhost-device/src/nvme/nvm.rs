//! NVM Command Set I/O commands: Read, Write, Flush, Write Zeroes, Dataset
//! Management, Verify (NVM CS 1.1, 3).

use super::{
    commands::{Decode, Done, Exec, Outcome},
    namespace::Namespace,
    status::Status,
    Sqe,
};
use crate::storage::{BlockCount, Lba};

/// The LBA range of a Read/Write/Write Zeroes/Zone Append command: CDW10-11
/// SLBA, CDW12 NLB bits 15:0 (0's based), FUA bit 30 (NVM CS 1.1 Figures
/// "Read - Command Dword 12", "Write - Command Dword 12"; ZNS 1.1 Zone
/// Append).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rw {
    pub slba: Lba,
    pub nlb: BlockCount,
    pub fua: bool,
}

impl Decode for Rw {
    fn decode(sqe: &Sqe) -> Rw {
        let dw12 = sqe.dw(12);
        Rw {
            slba: Lba::new(sqe.qw(10)),
            nlb: BlockCount::new(u64::from(dw12 & 0xFFFF) + 1),
            fua: dw12 & (1 << 30) != 0,
        }
    }

    /// NLB blocks of the namespace (NVM CS 1.1, 3.2.4 and 3.2.6; ZNS 1.1,
    /// 3.3.1); the row's direction says whether they move (Write Zeroes:
    /// none).
    fn data_len(&self, ns: Option<&Namespace>) -> u64 {
        ns.map_or(0, |ns| self.nlb.get() * u64::from(ns.block_size()))
    }
}

impl Rw {
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
pub fn read(x: &mut Exec<'_>, rw: Rw) -> Outcome {
    // Into the caller's buffer: a transport that keeps its buffers reuses
    // their memory.
    let mut buf = std::mem::take(x.data_in);
    let done = read_into(x, rw, &mut buf);
    if done.is_err() {
        // No data with an error, as before.
        buf.clear();
    }
    *x.data_in = buf;
    done
}

fn read_into(x: &mut Exec<'_>, rw: Rw, buf: &mut Vec<u8>) -> Outcome {
    let ns = x.ns()?;
    let bytes = rw.bytes(x, ns)?;
    if (x.transfer_len() as usize) < bytes {
        return Err(Status::DATA_SGL_LENGTH_INVALID.into());
    }
    buf.clear();
    buf.resize(bytes, 0);
    ns.device.read(rw.slba, buf).map_err(|e| ns.status(&e))?;
    Ok(Done::OK)
}

/// Write (01h).
pub fn write(x: &mut Exec<'_>, rw: Rw) -> Outcome {
    let ns = x.ns()?;
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

/// Flush (00h, NVM CS 1.1 3.2.1): no command specific fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flush;

impl Decode for Flush {
    fn decode(_: &Sqe) -> Flush {
        Flush
    }
}

/// Flush (00h); NSID FFFFFFFFh flushes every namespace.
pub fn flush(x: &mut Exec<'_>, _: Flush) -> Outcome {
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
pub fn write_zeroes(x: &mut Exec<'_>, rw: Rw) -> Outcome {
    let ns = x.ns()?;
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
        ns.device
            .write(
                // In range: checked above.
                rw.slba.saturating_add(BlockCount::new(done)),
                &zeros[..(n * bs) as usize],
                false,
            )
            .map_err(|e| ns.status(&e))?;
        done += n;
    }
    if fua {
        ns.device.flush().map_err(|e| ns.status(&e))?;
    }
    Ok(Done::OK)
}

/// Dataset Management's fields (09h, NVM CS 1.1 3.2.3, Figure "Dataset Management - Command Dword
/// 10"): CDW10
/// NR bits 7:0 (0's based), CDW11 AD bit 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetManagement {
    /// Ranges: NR + 1.
    pub ranges: usize,
    pub deallocate: bool,
}

impl Decode for DatasetManagement {
    fn decode(sqe: &Sqe) -> Self {
        DatasetManagement {
            ranges: (sqe.dw(10) & 0xFF) as usize + 1,
            deallocate: sqe.dw(11) & (1 << 2) != 0,
        }
    }

    /// 16 bytes per range.
    fn data_len(&self, _: Option<&Namespace>) -> u64 {
        self.ranges as u64 * 16
    }
}

/// Dataset Management (09h): 16-byte ranges (context attributes 3:0, NLB
/// 7:4 (1-based), SLBA 15:8). Every range is checked; deallocation is
/// accepted and changes nothing visible (DLFEAT reports no read-back value
/// for deallocated blocks, and a zoned namespace only deallocates by zone
/// reset).
pub fn dataset_management(x: &mut Exec<'_>, c: DatasetManagement) -> Outcome {
    let ns = x.ns()?;
    let nr = c.ranges;
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

/// Largest buffer Verify reads into at once.
const VERIFY_CHUNK: u64 = 1 << 20;

/// Verify's fields (0Ch, NVM CS 1.1 3.2.5, Figures "Verify - Command
/// Dword 10 and 11" and "Verify - Command Dword 12"): CDW10-11 SLBA, CDW12
/// NLB bits 15:0 (0's based), STC bit 24, PRINFO 29:26, FUA 30, LR 31.
/// STC and PRINFO (and CDW14-15, EILBRT/ELBAT/ELBATM) concern end-to-end
/// protection information and storage tags, which these namespaces do
/// not have (DPS = 0, STS = 0): ignored; LR (limited retry) changes
/// nothing here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verify {
    pub slba: Lba,
    pub nlb: BlockCount,
    pub fua: bool,
}

impl Decode for Verify {
    fn decode(sqe: &Sqe) -> Verify {
        let dw12 = sqe.dw(12);
        Verify {
            slba: Lba::new(sqe.qw(10)),
            nlb: BlockCount::new(u64::from(dw12 & 0xFFFF) + 1),
            fua: dw12 & (1 << 30) != 0,
        }
    }
}

/// Verify (0Ch, ONCS bit 7): reads the LBAs from the medium the way Read
/// does, by the same rules (zone boundaries and reads past the write
/// pointer on a zoned namespace), and moves no data. A range past the
/// namespace is LBA Out of Range; a block that cannot be read is
/// Unrecovered Read Error (02h/81h), as Read reports it. FUA: the range is
/// verified from non-volatile media, so cached writes are committed
/// first. No Verify Size Limit is advertised (Identify Controller NVM
/// VSL = 0): the range is read in chunks of [`VERIFY_CHUNK`].
pub fn verify(x: &mut Exec<'_>, v: Verify) -> Outcome {
    let ns = x.ns()?;
    let dev = &ns.device;
    dev.geometry()
        .check_range(v.slba, v.nlb)
        .map_err(|e| ns.status(&e))?;
    if v.fua {
        dev.flush().map_err(|e| ns.status(&e))?;
    }
    let bs = u64::from(ns.block_size());
    let step = (VERIFY_CHUNK / bs).max(1);
    let mut buf = vec![0u8; (step.min(v.nlb.get()) * bs) as usize];
    for first in (0..v.nlb.get()).step_by(step as usize) {
        let blocks = step.min(v.nlb.get() - first);
        let chunk = &mut buf[..(blocks * bs) as usize];
        // In range: checked above.
        dev.read(v.slba.saturating_add(BlockCount::new(first)), chunk)
            .map_err(|e| ns.status(&e))?;
    }
    Ok(Done::OK)
}
