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
//!
//! Every Copy is counted per namespace ([`CopyStats`], the control socket's
//! `stats` under `nvme_copy`, owned by [`crate::stats::copy`]) twice: when its capsule arrives
//! ([`received`], CDW10-15 only: a host may never send the descriptors,
//! as nvme-tcp under the 7.2 copy-offload series does) and when it
//! executes (the descriptors decoded: range lengths, status). A refused
//! Copy is logged once at warn with CDW10-15 and the reason: on arrival
//! when its dwords alone decide the refusal ([`check_dwords`], run once,
//! on arrival), else when it executes.

use std::fmt;

use super::{
    commands::{Decode, Done, Exec, Fail, Outcome},
    controller::Controller,
    namespace::Namespace,
    status::Status,
    Sqe,
};
pub use crate::stats::copy::CopyStats;
use crate::{
    stats::copy::{CmdKey, CopyDwords, Refused, Shape},
    storage::{copy, BlockCount, Lba, Segment},
};

/// Opcode of Copy (NVM CS 1.1, Figure 14).
pub const OPCODE: u8 = 0x19;

/// One decoded source range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRange {
    pub snsid: u32,
    pub slba: Lba,
    pub nlb: BlockCount,
}

/// Descriptor size of a format.
pub fn descriptor_len(desfmt: u8) -> usize {
    if desfmt.is_multiple_of(2) {
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
        slba: Lba::new(u64::from_le_bytes(slba)),
        nlb: BlockCount::new(u64::from(u16::from_le_bytes([d[16], d[17]])) + 1),
    }
}

/// A Copy's command dwords, CDW10-15 (NVM CS 1.1, 3.2.2, Figures "Copy -
/// Command Dword 10 and 11" and "Copy - Command Dword 12"):
/// CDW10-11 SDLBA, CDW12 NR 7:0 (0's based), DESFMT 11:8, FUA bit 30.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyCmd {
    pub sdlba: Lba,
    /// Source ranges: NR + 1.
    pub ranges: usize,
    pub desfmt: u8,
    pub fua: bool,
    /// CDW10..=CDW15 as received.
    pub cdw: [u32; 6],
    /// What [`check_dwords`] said when the capsule arrived (the one time
    /// the dwords are checked); `None` before.
    pub verdict: Option<Result<(), Refusal>>,
}

impl Decode for CopyCmd {
    fn decode(sqe: &Sqe) -> Self {
        let cdw = [10, 11, 12, 13, 14, 15].map(|n| sqe.dw(n));
        CopyCmd {
            sdlba: Lba::new(sqe.qw(10)),
            ranges: (cdw[2] & 0xFF) as usize + 1,
            desfmt: ((cdw[2] >> 8) & 0xF) as u8,
            fua: cdw[2] & (1 << 30) != 0,
            cdw,
            verdict: None,
        }
    }

    /// NR + 1 descriptors of the format's size.
    fn data_len(&self, _: Option<&Namespace>) -> u64 {
        self.ranges as u64 * descriptor_len(self.desfmt) as u64
    }

    fn arrive(&mut self, ctrl: &Controller, qid: u16, sqe: &Sqe) {
        received(ctrl, qid, sqe, self);
    }
}

impl CopyCmd {
    /// The dwords as the counters keep them.
    fn record(&self) -> CopyDwords {
        CopyDwords {
            sdlba: self.sdlba.get(),
            ranges: self.ranges,
            format: self.desfmt,
            cdw: self.cdw,
        }
    }
}

impl fmt::Display for CopyCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SDLBA {}, {} range(s), format {}, CDW10-15",
            self.sdlba.get(),
            self.ranges,
            self.desfmt
        )?;
        for d in self.cdw {
            write!(f, " {d:08x}")?;
        }
        Ok(())
    }
}

/// Why a Copy is refused: its status and, for the log and the counters,
/// the reason in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub reason: String,
}

impl Refusal {
    /// The refusal as the counters keep it.
    fn record(&self) -> Refused {
        Refused {
            status: status_name(self.status),
            field: self.status.field(),
            reason: self.reason.clone(),
        }
    }

    fn new(status: Status, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

/// Name of a status a Copy completes with (a key in the counters).
pub fn status_name(s: Status) -> String {
    let name = match s {
        Status::SUCCESS => "success",
        Status::INVALID_OPCODE => "invalid_opcode",
        Status::INVALID_FIELD => "invalid_field",
        Status::INVALID_FORMAT => "invalid_format",
        Status::INVALID_NAMESPACE => "invalid_namespace",
        Status::COMMAND_SIZE_LIMIT_EXCEEDED => "command_size_limit_exceeded",
        Status::INCOMPATIBLE_NAMESPACE_OR_FORMAT => "incompatible_namespace_or_format",
        Status::LBA_OUT_OF_RANGE => "lba_out_of_range",
        Status::DATA_SGL_LENGTH_INVALID => "data_sgl_length_invalid",
        _ => return format!("status_{:#06x}", s.field()),
    };
    name.to_owned()
}

/// The checks CDW10-15 alone decide, before any descriptor is read, in
/// this order: Copy in ONCS (else Invalid Command Opcode), DESFMT in OCFS
/// and, for 2h/3h, enabled by Host Behavior Support CDFE when the
/// personality requires it (else Invalid Field in Command), at most MSRC
/// plus one source ranges (else Command Size Limit Exceeded), 1h/3h only
/// with protection information or a lenient personality (else Invalid
/// Format).
pub fn check_dwords(ctrl: &Controller, ns: &Namespace, c: &CopyCmd) -> Result<(), Refusal> {
    let p = ctrl.opts.personality;
    if !p.copy {
        return Err(Refusal::new(
            Status::INVALID_OPCODE,
            "the controller has no Copy (ONCS bit 8 clear)",
        ));
    }
    if p.ocfs & (1 << c.desfmt) == 0 {
        return Err(Refusal::new(
            Status::INVALID_FIELD,
            format!("descriptor format {} not in OCFS {:#x}", c.desfmt, p.ocfs),
        ));
    }
    if c.desfmt >= 2 && p.cdfe_required {
        let cdfe = ctrl.state().features.cdfe();
        if cdfe & (1 << c.desfmt) == 0 {
            return Err(Refusal::new(
                Status::INVALID_FIELD,
                format!(
                    "descriptor format {} not enabled by the host (Host Behavior Support CDFE \
                     {cdfe:#x})",
                    c.desfmt
                ),
            ));
        }
    }
    let limits = ns.copy_limits;
    if c.ranges > usize::from(limits.msrc) + 1 {
        return Err(Refusal::new(
            Status::COMMAND_SIZE_LIMIT_EXCEEDED,
            format!(
                "NR + 1 = {} source ranges > MSRC + 1 = {}",
                c.ranges,
                u16::from(limits.msrc) + 1
            ),
        ));
    }
    // Formats 1h/3h carry 32b/64b Guard protection information fields;
    // these namespaces have no protection information (NVM CS 1.1 3.2.2,
    // QEMU's nvme_copy: Invalid Format).
    if c.desfmt % 2 == 1 && !p.fmt13_without_pi {
        return Err(Refusal::new(
            Status::INVALID_FORMAT,
            format!(
                "descriptor format {} needs protection information, the namespace has none",
                c.desfmt
            ),
        ));
    }
    Ok(())
}

/// A Copy's capsule arrived on I/O queue `qid` of `ctrl` (before its
/// descriptors): check its dwords (once: the verdict stays with `cmd`),
/// count it, and if its dwords alone make it a refusal, log that once at
/// warn. A Copy to no active namespace is not counted (it is refused with
/// Invalid Namespace or Format like any command).
fn received(ctrl: &Controller, qid: u16, sqe: &Sqe, cmd: &mut CopyCmd) {
    let Some(ns) = ctrl.namespace(sqe.nsid()) else {
        return;
    };
    let invalid = check_dwords(ctrl, ns, cmd).err();
    cmd.verdict = Some(invalid.clone().map_or(Ok(()), Err));
    if let Some(r) = &invalid {
        log::warn!(
            "ctrl {} qid {qid} cid {:#x}: Copy to namespace {} refused by its dwords: {} \
             ({}, status {:#06x}); {cmd}",
            ctrl.cntlid,
            sqe.cid(),
            ns.nsid,
            r.reason,
            status_name(r.status),
            r.status.field()
        );
    }
    let key = CmdKey {
        cntlid: ctrl.cntlid,
        qid,
        cid: sqe.cid(),
    };
    ctrl.opts
        .copy_stats
        .received(key, ns.nsid, cmd.record(), invalid.map(|r| r.record()));
}

/// Copy (19h).
pub fn copy(x: &mut Exec<'_>, mut cmd: CopyCmd) -> Outcome {
    let ns = x.ns()?;
    let ctrl = x.ctrl;
    let verdict = cmd
        .verdict
        .take()
        .unwrap_or_else(|| check_dwords(ctrl, ns, &cmd));
    let key = CmdKey {
        cntlid: ctrl.cntlid,
        qid: x.qid,
        cid: x.sqe.cid(),
    };
    let mut shape = Shape::default();
    let result = verdict
        .map_err(|r| (r.status.into(), r.reason))
        .and_then(|()| execute(ctrl, ns, &cmd, x.data_out, &mut shape));
    let refusal = result.as_ref().err().map(|(f, why)| {
        Refusal {
            status: f.status,
            reason: why.clone(),
        }
        .record()
    });
    let warned = ctrl
        .opts
        .copy_stats
        .executed(key, ns.nsid, cmd.record(), shape, refusal.as_ref());
    match result {
        Ok(bytes) => {
            log::debug!(
                "ctrl {}: Copy of {} ranges (format {}), {bytes} bytes to {}",
                ctrl.cntlid,
                cmd.ranges,
                cmd.desfmt,
                cmd.sdlba
            );
            Ok(Done::OK)
        }
        Err((fail, why)) => {
            if warned {
                log::debug!(
                    "ctrl {} qid {} cid {:#x}: Copy refused (logged on arrival): {why}",
                    ctrl.cntlid,
                    x.qid,
                    key.cid
                );
            } else {
                log::warn!(
                    "ctrl {} qid {} cid {:#x}: Copy to namespace {} refused: {why} ({}, status \
                     {:#06x}); {cmd}",
                    ctrl.cntlid,
                    x.qid,
                    key.cid,
                    ns.nsid,
                    status_name(fail.status),
                    fail.status.field()
                );
            }
            Err(fail)
        }
    }
}

/// Run one Copy whose dwords passed [`check_dwords`]: the bytes copied,
/// or the failure and why.
/// `shape` collects what the descriptors said, as far as they were read.
fn execute(
    ctrl: &Controller,
    ns: &Namespace,
    cmd: &CopyCmd,
    data_out: &[u8],
    shape: &mut Shape,
) -> Result<u64, (Fail, String)> {
    let refuse = |status: Status, why: String| (Fail::from(status), why);
    let limits = ns.copy_limits;
    let nr = cmd.ranges;
    let dlen = descriptor_len(cmd.desfmt);
    let Some(descs) = data_out.get(..nr * dlen) else {
        return Err(refuse(
            Status::DATA_SGL_LENGTH_INVALID,
            format!(
                "{} descriptor bytes for {nr} range(s) of {dlen} bytes",
                data_out.len()
            ),
        ));
    };
    let mut total = 0u64;
    let mut segments = Vec::with_capacity(nr);
    for (i, d) in descs.chunks_exact(dlen).enumerate() {
        let r = decode(cmd.desfmt, d, ns.nsid);
        shape.decoded = i + 1;
        shape.max_range_blocks = shape.max_range_blocks.max(r.nlb.get());
        shape.blocks = shape.blocks.saturating_add(r.nlb.get());
        let Some(src) = ctrl.namespace(r.snsid) else {
            return Err(refuse(
                Status::INVALID_NAMESPACE,
                format!("source range {i}: SNSID {} is no active namespace", r.snsid),
            ));
        };
        if src.block_size() != ns.block_size() {
            return Err(refuse(
                Status::INCOMPATIBLE_NAMESPACE_OR_FORMAT,
                format!(
                    "source range {i}: namespace {} has {}-byte blocks, the destination {}",
                    r.snsid,
                    src.block_size(),
                    ns.block_size()
                ),
            ));
        }
        if r.nlb.get() > u64::from(limits.mssrl) {
            return Err(refuse(
                Status::COMMAND_SIZE_LIMIT_EXCEEDED,
                format!(
                    "source range {i}: NLB + 1 = {} blocks > MSSRL {}",
                    r.nlb.get(),
                    limits.mssrl
                ),
            ));
        }
        src.device
            .geometry()
            .check_range(r.slba, r.nlb)
            .map_err(|e| {
                refuse(
                    src.status(&e),
                    format!("source range {i} ({} +{}): {e}", r.slba, r.nlb.get()),
                )
            })?;
        let dst_lba = cmd
            .sdlba
            .checked_add(BlockCount::new(total))
            .ok_or_else(|| {
                refuse(
                    Status::LBA_OUT_OF_RANGE,
                    format!("destination of source range {i} past LBA 2^64"),
                )
            })?;
        total += r.nlb.get();
        if total > u64::from(limits.mcl) {
            return Err(refuse(
                Status::COMMAND_SIZE_LIMIT_EXCEEDED,
                format!("{total} blocks in source ranges 0-{i} > MCL {}", limits.mcl),
            ));
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
        .check_range(cmd.sdlba, BlockCount::new(total))
        .map_err(|e| {
            refuse(
                ns.status(&e),
                format!("destination {} +{total}: {e}", cmd.sdlba),
            )
        })?;
    match copy::copy(&segments) {
        Ok(progress) => {
            if cmd.fua || !ctrl.state().features.volatile_write_cache {
                ns.device
                    .flush()
                    .map_err(|e| refuse(ns.status(&e), format!("flush after the copy: {e}")))?;
            }
            Ok(progress.bytes_done)
        }
        Err(f) => Err((
            Fail {
                status: ns.status(&f.error),
                dw0: u32::try_from(f.progress.segments_done).unwrap_or(u32::MAX),
                location: None,
            },
            format!(
                "copying source range {}: {}",
                f.progress.segments_done, f.error
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Copy the Linux 7.2 copy-offload series sends: NSID 2, CID 37h,
    /// SDLBA 1C0h, NR 0, DESFMT 2h, 32 descriptor bytes.
    fn series_sqe() -> Sqe {
        let mut b = [0u8; 64];
        b[..4].copy_from_slice(&[0x19, 0x40, 0x37, 0x00]); // OPC, PSDT SGL, CID
        b[4..8].copy_from_slice(&[0x02, 0, 0, 0]); // NSID 2
        b[32..36].copy_from_slice(&[0x20, 0, 0, 0]); // SGL1 length 32
        b[39] = 0x5A;
        b[40..44].copy_from_slice(&[0xC0, 0x01, 0, 0]); // CDW10 SDLBA low
        b[48..52].copy_from_slice(&[0x00, 0x02, 0x00, 0x40]); // CDW12: NR 0, DESFMT 2, FUA
        Sqe(b)
    }

    #[test]
    fn dwords_decode() {
        let c = CopyCmd::decode(&series_sqe());
        assert_eq!(
            (c.sdlba, c.ranges, c.desfmt, c.fua),
            (Lba::new(0x1C0), 1, 2, true)
        );
        assert_eq!(c.cdw, [0x1C0, 0, 0x4000_0200, 0, 0, 0]);
        assert_eq!(
            c.to_string(),
            "SDLBA 448, 1 range(s), format 2, CDW10-15 000001c0 00000000 40000200 00000000 \
             00000000 00000000"
        );
        // NR FFh: 256 ranges; DESFMT Fh; SDLBA from both dwords.
        let mut b = series_sqe().0;
        b[44..48].copy_from_slice(&[1, 0, 0, 0]);
        b[48..52].copy_from_slice(&[0xFF, 0x0F, 0, 0]);
        let c = CopyCmd::decode(&Sqe(b));
        assert_eq!(
            (c.sdlba, c.ranges, c.desfmt, c.fua),
            (Lba::new((1 << 32) | 0x1C0), 256, 15, false)
        );
    }

    #[test]
    fn status_names() {
        assert_eq!(
            status_name(Status::COMMAND_SIZE_LIMIT_EXCEEDED),
            "command_size_limit_exceeded"
        );
        assert_eq!(status_name(Status::ZONE_IS_FULL), "status_0x41b9");
    }
}
