//! Copy (19h), NVM CS 1.1 3.2.2: source ranges (descriptor formats 0h-3h)
//! copied to one contiguous destination starting at SDLBA, by the storage
//! core's copy engine, so no data crosses the fabric.
//!
//! CDW10-11 SDLBA; CDW12 NR bits 7:0 (0's based), DESFMT bits 11:8,
//! PRINFOR 15:12, DTYPE 23:20, PRINFOW 29:26, FUA bit 30, LR bit 31.
//!
//! Source Range Entry layouts (NVM CS 1.1 Figures 41-44): formats 0h and 2h
//! are 32 bytes, 1h and 3h 40 bytes; SLBA at bytes 15:8 and NLB (0's
//! based) at bytes 17:16 in all four; formats 2h and 3h carry the Source
//! Namespace Identifier (SNSID) in bytes 3:0.
//!
//! Checks, each refusing the command before anything is copied:
//! - DESFMT not in OCFS, or 2h/3h without the Host Behavior Support CDFE
//!   bit when the personality requires it: Invalid Field in Command (DNR);
//! - 1h/3h (32b/64b Guard protection information layouts) on these
//!   namespaces without protection information: Invalid Format, unless the
//!   personality is lenient;
//! - NR + 1 > MSRC + 1, any NLB + 1 > MSSRL, or the sum > MCL: Command Size
//!   Limit Exceeded (DNR);
//! - an SNSID that names no active namespace: Invalid Namespace or Format;
//!   a source namespace with another LBA format: Incompatible Namespace or
//!   Format;
//! - a source or destination range past its namespace: LBA Out of Range.
//!
//! A failure while copying completes with the status of the storage error
//! and Dword 0 = the number of the lowest numbered source range not copied
//! (the ranges before it were copied completely).

use super::{
    commands::{Done, Exec, Fail, Outcome},
    status::Status,
};
use crate::storage::{copy, BlockCount, Lba, Segment};

/// One decoded source range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRange {
    pub snsid: u32,
    pub slba: Lba,
    pub nlb: BlockCount,
}

/// Descriptor size of a format.
pub fn descriptor_len(desfmt: u8) -> usize {
    if desfmt % 2 == 0 {
        32
    } else {
        40
    }
}

/// Decode one descriptor; `nsid` is the command's namespace (the source
/// for formats 0h and 1h).
pub fn decode(desfmt: u8, d: &[u8], nsid: u32) -> SourceRange {
    let mut slba = [0u8; 8];
    slba.copy_from_slice(&d[8..16]);
    let snsid = if desfmt >= 2 {
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    } else {
        nsid
    };
    SourceRange {
        snsid,
        slba: Lba(u64::from_le_bytes(slba)),
        nlb: BlockCount(u64::from(u16::from_le_bytes([d[16], d[17]])) + 1),
    }
}

/// Copy (19h).
pub fn copy(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let ctrl = x.ctrl;
    let sdlba = Lba(x.sqe.qw(10));
    let dw12 = x.sqe.dw(12);
    let nr = (dw12 & 0xFF) as usize + 1;
    let desfmt = ((dw12 >> 8) & 0xF) as u8;
    let fua = dw12 & (1 << 30) != 0;
    let p = ctrl.opts.personality;
    if desfmt > 15 || p.ocfs & (1 << desfmt) == 0 {
        log::warn!(
            "ctrl {}: Copy with descriptor format {desfmt} not in OCFS {:#x}",
            ctrl.cntlid,
            p.ocfs
        );
        return Err(Status::INVALID_FIELD.into());
    }
    if desfmt >= 2 && p.cdfe_required {
        let cdfe = ctrl.state().features.cdfe();
        if cdfe & (1 << desfmt) == 0 {
            log::warn!(
                "ctrl {}: Copy with descriptor format {desfmt} but the host did not enable it \
                 (Host Behavior Support CDFE {cdfe:#x}): Invalid Field in Command",
                ctrl.cntlid
            );
            return Err(Status::INVALID_FIELD.into());
        }
    }
    let limits = ns.copy_limits;
    if nr > usize::from(limits.msrc) + 1 {
        return Err(Status::COMMAND_SIZE_LIMIT_EXCEEDED.into());
    }
    // Formats 1h/3h carry 32b/64b Guard protection information fields;
    // these namespaces have no protection information (NVM CS 1.1 3.2.2,
    // QEMU's nvme_copy: Invalid Format).
    if desfmt % 2 == 1 && !p.fmt13_without_pi {
        return Err(Status::INVALID_FORMAT.into());
    }
    let dlen = descriptor_len(desfmt);
    let Some(descs) = x.data_out.get(..nr * dlen) else {
        return Err(Status::DATA_SGL_LENGTH_INVALID.into());
    };
    let mut total = 0u64;
    let mut segments = Vec::with_capacity(nr);
    for d in descs.chunks_exact(dlen) {
        let r = decode(desfmt, d, ns.nsid);
        let src = ctrl.namespace(r.snsid).ok_or(Status::INVALID_NAMESPACE)?;
        if src.block_size() != ns.block_size() {
            return Err(Status::INCOMPATIBLE_NAMESPACE_OR_FORMAT.into());
        }
        if r.nlb.0 > u64::from(limits.mssrl) {
            return Err(Status::COMMAND_SIZE_LIMIT_EXCEEDED.into());
        }
        src.device
            .geometry()
            .check_range(r.slba, r.nlb)
            .map_err(|e| src.status(&e))?;
        let dst_lba = sdlba
            .checked_add(BlockCount(total))
            .ok_or(Status::LBA_OUT_OF_RANGE)?;
        total += r.nlb.0;
        if total > u64::from(limits.mcl) {
            return Err(Status::COMMAND_SIZE_LIMIT_EXCEEDED.into());
        }
        segments.push(Segment {
            src: &src.device,
            src_lba: r.slba,
            dst: &ns.device,
            dst_lba,
            count: r.nlb,
        });
    }
    ns.device
        .geometry()
        .check_range(sdlba, BlockCount(total))
        .map_err(|e| ns.status(&e))?;
    match copy::copy(&segments) {
        Ok(progress) => {
            log::debug!(
                "ctrl {}: Copy of {nr} ranges (format {desfmt}), {} bytes to {sdlba}",
                ctrl.cntlid,
                progress.bytes_done
            );
            if fua || !ctrl.state().features.volatile_write_cache {
                ns.device.flush().map_err(|e| ns.status(&e))?;
            }
            Ok(Done::OK)
        }
        Err(f) => Err(Fail {
            status: ns.status(&f.error),
            dw0: u32::try_from(f.progress.segments_done).unwrap_or(u32::MAX),
            location: None,
        }),
    }
}
