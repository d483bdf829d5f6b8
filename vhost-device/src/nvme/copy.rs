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
//! `stats` under `nvme_copy`) twice: when its capsule arrives
//! ([`received`], CDW10-15 only: a host may never send the descriptors,
//! as nvme-tcp under the 7.2 copy-offload series does) and when it
//! executes (the descriptors decoded: range lengths, status). A refused
//! Copy is logged once at warn with CDW10-15 and the reason: on arrival
//! when its dwords alone decide the refusal ([`check_dwords`]), else when
//! it executes.

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    sync::{Mutex, MutexGuard},
};

use serde_json::{json, Value};

use super::{
    commands::{Done, Exec, Fail, Outcome},
    controller::Controller,
    namespace::Namespace,
    status::Status,
    Sqe,
};
use crate::storage::{copy, BlockCount, Lba, Segment};

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
        slba: Lba::new(u64::from_le_bytes(slba)),
        nlb: BlockCount::new(u64::from(u16::from_le_bytes([d[16], d[17]])) + 1),
    }
}

/// A Copy's command dwords, CDW10-15 (NVM CS 1.1, 3.2.2): CDW10-11 SDLBA,
/// CDW12 NR 7:0 (0's based), DESFMT 11:8, FUA bit 30.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyCmd {
    pub sdlba: Lba,
    /// Source ranges: NR + 1.
    pub ranges: usize,
    pub desfmt: u8,
    pub fua: bool,
    /// CDW10..=CDW15 as received.
    pub cdw: [u32; 6],
}

impl CopyCmd {
    pub fn decode(sqe: &Sqe) -> Self {
        let cdw = [10, 11, 12, 13, 14, 15].map(|n| sqe.dw(n));
        CopyCmd {
            sdlba: Lba::new(sqe.qw(10)),
            ranges: (cdw[2] & 0xFF) as usize + 1,
            desfmt: ((cdw[2] >> 8) & 0xF) as u8,
            fua: cdw[2] & (1 << 30) != 0,
            cdw,
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

/// Which command: controller, queue, command identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdKey {
    pub cntlid: u16,
    pub qid: u16,
    pub cid: u16,
}

/// What the descriptors said, as far as they were decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Descriptors decoded.
    pub decoded: usize,
    /// NLB + 1 of the longest range decoded.
    pub max_range_blocks: u64,
    /// Blocks of all ranges decoded.
    pub blocks: u64,
}

/// A Copy's capsule arrived on I/O queue `qid` of `ctrl` (before its
/// descriptors): count it, and if its dwords alone make it a refusal, log
/// that once at warn. A Copy to no active namespace is not counted (it is
/// refused with Invalid Namespace or Format like any command).
pub fn received(ctrl: &Controller, qid: u16, sqe: &Sqe) {
    let Some(ns) = ctrl.namespace(sqe.nsid()) else {
        return;
    };
    let cmd = CopyCmd::decode(sqe);
    let invalid = check_dwords(ctrl, ns, &cmd).err();
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
    ctrl.opts.copy_stats.received(key, ns.nsid, cmd, invalid);
}

/// Copy (19h).
pub fn copy(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let ctrl = x.ctrl;
    let cmd = CopyCmd::decode(x.sqe);
    let key = CmdKey {
        cntlid: ctrl.cntlid,
        qid: x.qid,
        cid: x.sqe.cid(),
    };
    let mut shape = Shape::default();
    let result = execute(ctrl, ns, &cmd, x.data_out, &mut shape);
    let refusal = result.as_ref().err().map(|(f, why)| Refusal {
        status: f.status,
        reason: why.clone(),
    });
    let warned = ctrl
        .opts
        .copy_stats
        .executed(key, ns.nsid, cmd, shape, refusal.as_ref());
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

/// Check and run one Copy: the bytes copied, or the failure and why.
/// `shape` collects what the descriptors said, as far as they were read.
fn execute(
    ctrl: &Controller,
    ns: &Namespace,
    cmd: &CopyCmd,
    data_out: &[u8],
    shape: &mut Shape,
) -> Result<u64, (Fail, String)> {
    let refuse = |status: Status, why: String| (Fail::from(status), why);
    check_dwords(ctrl, ns, cmd).map_err(|r| (r.status.into(), r.reason))?;
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

// ------------------------------------------------------------ counters

/// How many recent Copies per namespace the counters list.
pub const RECENT: usize = 32;

/// One Copy as counted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// Number among the namespace's Copies received, from 0.
    seq: u64,
    key: CmdKey,
    cmd: CopyCmd,
    /// The refusal its dwords decided on arrival.
    invalid: Option<Refusal>,
    /// Set once it executed: the descriptors and the status.
    shape: Option<Shape>,
    result: Option<Result<(), Refusal>>,
}

impl Seen {
    fn json(&self) -> Value {
        json!({
            "seq": self.seq,
            "cntlid": self.key.cntlid,
            "qid": self.key.qid,
            "cid": self.key.cid,
            "sdlba": self.cmd.sdlba.get(),
            "ranges": self.cmd.ranges,
            "format": self.cmd.desfmt,
            "cdw": self.cmd.cdw,
            "invalid": self.invalid.as_ref().map(|r| r.reason.clone()),
            "executed": self.result.is_some(),
            "decoded": self.shape.map(|s| s.decoded),
            "blocks": self.shape.map(|s| s.blocks),
            "max_range_blocks": self.shape.map(|s| s.max_range_blocks),
            "status": self.result.as_ref().map(|r| match r {
                Ok(()) => status_name(Status::SUCCESS),
                Err(e) => status_name(e.status),
            }),
            "reason": self.result.as_ref().and_then(|r| r.as_ref().err()).map(|e| e.reason.clone()),
        })
    }
}

/// The counters of one namespace.
#[derive(Clone, Debug, Default)]
struct NsCopies {
    received: u64,
    /// Received with dwords that decide a refusal.
    invalid_dwords: u64,
    executed: u64,
    succeeded: u64,
    /// Received, by descriptor format.
    by_format: BTreeMap<u8, u64>,
    /// Received, by NR + 1.
    by_ranges: BTreeMap<usize, u64>,
    max_ranges: usize,
    /// Over the executed ones (descriptors decoded).
    max_range_blocks: u64,
    max_blocks: u64,
    /// Executed and refused, by status name.
    refused: BTreeMap<String, u64>,
    /// The last refusal: on arrival (dwords) or executing.
    last_refused: Option<(Seen, &'static str)>,
    recent: VecDeque<Seen>,
}

impl NsCopies {
    fn push(&mut self, key: CmdKey, cmd: CopyCmd, invalid: Option<Refusal>) -> &mut Seen {
        let seen = Seen {
            seq: self.received,
            key,
            cmd,
            invalid,
            shape: None,
            result: None,
        };
        self.received += 1;
        *self.by_format.entry(cmd.desfmt).or_default() += 1;
        *self.by_ranges.entry(cmd.ranges).or_default() += 1;
        self.max_ranges = self.max_ranges.max(cmd.ranges);
        if seen.invalid.is_some() {
            self.invalid_dwords += 1;
            self.last_refused = Some((seen.clone(), "received"));
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(seen);
        let last = self.recent.len() - 1;
        &mut self.recent[last]
    }

    fn json(&self) -> Value {
        let last = self.last_refused.as_ref().map(|(s, stage)| {
            let r = match &s.result {
                Some(Err(r)) => Some(r),
                _ => s.invalid.as_ref(),
            };
            json!({
                "stage": stage,
                "seq": s.seq,
                "cid": s.key.cid,
                "cdw": s.cmd.cdw,
                "status": r.map(|r| status_name(r.status)),
                "status_field": r.map(|r| format!("{:#06x}", r.status.field())),
                "reason": r.map(|r| r.reason.clone()),
            })
        });
        json!({
            "received": self.received,
            "invalid_dwords": self.invalid_dwords,
            "executed": self.executed,
            "succeeded": self.succeeded,
            "by_format": self.by_format,
            "by_ranges": self.by_ranges,
            "max_ranges": self.max_ranges,
            "max_range_blocks": self.max_range_blocks,
            "max_blocks": self.max_blocks,
            "refused": self.refused,
            "last_refused": last,
            "recent": self.recent.iter().map(Seen::json).collect::<Vec<_>>(),
        })
    }
}

/// Copy counters per namespace (NSID), shared by every controller of a
/// subsystem; on the control socket as `stats` key `nvme_copy`, one
/// object per namespace that saw a Copy (`ns<NSID>`):
/// `received`, `invalid_dwords`, `executed`, `succeeded`, `by_format`
/// (format -> count), `by_ranges` (NR + 1 -> count), `max_ranges`,
/// `max_range_blocks` and `max_blocks` (executed ones), `refused` (status
/// name -> count, executed ones), `last_refused` (`stage` received or
/// executed, `cdw` CDW10-15, `status`, `status_field`, `reason`) and
/// `recent`, the last [`RECENT`] Copies.
#[derive(Default)]
pub struct CopyStats {
    per_ns: Mutex<BTreeMap<u32, NsCopies>>,
}

impl fmt::Debug for CopyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyStats").finish_non_exhaustive()
    }
}

impl CopyStats {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, NsCopies>> {
        self.per_ns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A Copy's capsule arrived.
    pub fn received(&self, key: CmdKey, nsid: u32, cmd: CopyCmd, invalid: Option<Refusal>) {
        self.lock().entry(nsid).or_default().push(key, cmd, invalid);
    }

    /// A Copy executed with `refusal` (`None`: success). Returns whether
    /// its arrival already logged this refusal (its dwords decided it).
    pub fn executed(
        &self,
        key: CmdKey,
        nsid: u32,
        cmd: CopyCmd,
        shape: Shape,
        refusal: Option<&Refusal>,
    ) -> bool {
        let mut all = self.lock();
        let ns = all.entry(nsid).or_default();
        ns.executed += 1;
        ns.max_range_blocks = ns.max_range_blocks.max(shape.max_range_blocks);
        ns.max_blocks = ns.max_blocks.max(shape.blocks);
        match refusal {
            None => ns.succeeded += 1,
            Some(r) => *ns.refused.entry(status_name(r.status)).or_default() += 1,
        }
        // The latest arrival of this command not yet executed; a transport
        // that did not report the arrival gets one counted now.
        let found = ns
            .recent
            .iter()
            .rposition(|s| s.key == key && s.cmd == cmd && s.result.is_none());
        let seen = match found {
            Some(i) => &mut ns.recent[i],
            None => ns.push(key, cmd, None),
        };
        let warned = refusal.is_some() && seen.invalid.is_some();
        seen.shape = Some(shape);
        seen.result = Some(refusal.map_or(Ok(()), |r| Err(r.clone())));
        if refusal.is_some() {
            let seen = seen.clone();
            ns.last_refused = Some((seen, "executed"));
        }
        warned
    }

    /// The counters as JSON, `ns<NSID>` -> counters.
    pub fn json(&self) -> Value {
        let all = self.lock();
        Value::Object(
            all.iter()
                .map(|(nsid, c)| (format!("ns{nsid}"), c.json()))
                .collect(),
        )
    }
}

impl crate::control::StatsSource for CopyStats {
    fn name(&self) -> &str {
        "nvme_copy"
    }

    fn snapshot(&self) -> Value {
        self.json()
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

    fn key(cid: u16) -> CmdKey {
        CmdKey {
            cntlid: 1,
            qid: 1,
            cid,
        }
    }

    #[test]
    fn counts_arrivals_executions_and_refusals() {
        let s = CopyStats::default();
        let cmd = CopyCmd::decode(&series_sqe());
        let cdfe = Refusal::new(Status::INVALID_FIELD, "format 2 not enabled");
        // Arrives with dwords that decide a refusal; its descriptors never
        // come (nvme-tcp refused the R2T).
        s.received(key(0x37), 2, cmd, Some(cdfe.clone()));
        // The same CID again after a reconnect; this time it executes.
        s.received(key(0x37), 2, cmd, Some(cdfe.clone()));
        let shape = Shape {
            decoded: 0,
            max_range_blocks: 0,
            blocks: 0,
        };
        assert!(s.executed(key(0x37), 2, cmd, shape, Some(&cdfe)));
        // A Copy the transport did not report: counted on execution.
        let mut ok = cmd;
        ok.desfmt = 0;
        let shape = Shape {
            decoded: 1,
            max_range_blocks: 64,
            blocks: 64,
        };
        assert!(!s.executed(key(0x40), 3, ok, shape, None));
        let j = s.json();
        let ns2 = &j["ns2"];
        assert_eq!(ns2["received"], 2);
        assert_eq!(ns2["invalid_dwords"], 2);
        assert_eq!(ns2["executed"], 1);
        assert_eq!(ns2["succeeded"], 0);
        assert_eq!(ns2["by_format"], json!({"2": 2}));
        assert_eq!(ns2["by_ranges"], json!({"1": 2}));
        assert_eq!(ns2["refused"], json!({"invalid_field": 1}));
        let last = &ns2["last_refused"];
        assert_eq!(last["stage"], "executed");
        assert_eq!(last["seq"], 1);
        assert_eq!(last["cdw"], json!([0x1C0, 0, 0x4000_0200, 0, 0, 0]));
        assert_eq!(last["status_field"], "0x4002");
        assert_eq!(last["reason"], "format 2 not enabled");
        // The first arrival stays unexecuted; the second took the result.
        let r = ns2["recent"].as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0]["executed"].clone(), r[0]["status"].clone()),
            (json!(false), Value::Null)
        );
        assert_eq!(r[0]["invalid"], "format 2 not enabled");
        assert_eq!(r[1]["status"], "invalid_field");
        assert_eq!(r[1]["sdlba"], 0x1C0);
        let ns3 = &j["ns3"];
        assert_eq!(
            (ns3["received"].clone(), ns3["succeeded"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(
            (ns3["max_blocks"].clone(), ns3["max_range_blocks"].clone()),
            (json!(64), json!(64))
        );
        assert_eq!(ns3["last_refused"], Value::Null);
        assert_eq!(ns3["recent"][0]["blocks"], 64);
    }

    #[test]
    fn recent_keeps_the_last_ones() {
        let s = CopyStats::default();
        let cmd = CopyCmd::decode(&series_sqe());
        for cid in 0..(RECENT as u16 + 5) {
            s.received(key(cid), 2, cmd, None);
        }
        let j = s.json();
        let r = j["ns2"]["recent"].as_array().unwrap();
        assert_eq!(r.len(), RECENT);
        assert_eq!(r[0]["seq"], 5);
        assert_eq!(j["ns2"]["received"], RECENT as u64 + 5);
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
