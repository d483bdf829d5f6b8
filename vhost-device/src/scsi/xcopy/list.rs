//! EXTENDED COPY (LID1 and LID4) parameter lists (SPC-5): decoded and
//! checked as a whole first (errors: ILLEGAL REQUEST, nothing copied),
//! then executed segment by segment (errors: COPY ABORTED, the segments
//! before the failing one stay copied, nothing of it or after it is).
//!
//! LID1 header (16 bytes): 0 LIST IDENTIFIER; 1 bit 5 STR, bits 4-3 LIST
//! ID USAGE, bits 2-0 PRIORITY; 2-3 CSCD DESCRIPTOR LIST LENGTH; 4-7
//! reserved; 8-11 SEGMENT DESCRIPTOR LIST LENGTH; 12-15 INLINE DATA
//! LENGTH.
//!
//! LID4 header (48 bytes): 0 LIST FORMAT (01h); 1 as LID1; 2-3 HEADER CSCD
//! DESCRIPTOR LIST LENGTH (must be 0: no header CSCD descriptors); 4-14
//! reserved; 15 bit 1 G_SENSE, bit 0 IMMED; 16 HEADER CSCD DESCRIPTOR TYPE
//! CODE (ignored, as there are none); 17-19 reserved; 20-23 LIST
//! IDENTIFIER; 24-41 reserved; 42-43 CSCD DESCRIPTOR LIST LENGTH; 44-45
//! SEGMENT DESCRIPTOR LIST LENGTH; 46-47 INLINE DATA LENGTH.
//!
//! CSCD descriptor E4h (identification, 32 bytes): 0 E4h; 1 bits 7-6 LU ID
//! TYPE (ignored, SPC-4 on), bit 5 NUL (obsolete, ignored), bits 4-0
//! PERIPHERAL DEVICE TYPE (00h, or the LU's own 14h for a host-managed
//! LU); 2-3 RELATIVE INITIATOR PORT IDENTIFIER (ignored: one port); 4 bits
//! 3-0 CODE SET; 5 bits 5-4 ASSOCIATION, bits 3-0 DESIGNATOR TYPE; 7
//! DESIGNATOR LENGTH (at most 20); 8-27 DESIGNATOR; 28-31 block device
//! parameters: 28 bit 2 PAD (accepted; without effect, as inexact segments
//! are refused), 29-31 DISK BLOCK LENGTH (must equal the LU's).
//! A designator matches an LU when code set, association (0: the LU),
//! type and bytes equal one of its VPD 83h designators: NAA (binary, type
//! 3h, 8 bytes) or T10 vendor ID (ASCII, type 1h).
//!
//! CSCD descriptor IDs in segment descriptors: 0000h-07FFh index the CSCD
//! list; FFFFh is the LU that received the command; others are reserved.
//!
//! Segment descriptors: 02h block -> block (28 bytes, DESCRIPTOR LENGTH
//! 0018h): 1 bit 2 FCO (fast copy only, SPC-5 r20 on: every copy here is a
//! fast copy, so it is accepted and honoured), bit 1 DC, bit 0 CAT, bits 7-3
//! reserved; 4-5 SOURCE, 6-7 DESTINATION CSCD
//! DESCRIPTOR ID; 10-11 BLOCK DEVICE NUMBER OF BLOCKS (source blocks, or
//! destination blocks with DC); 12-19 SOURCE and 20-27 DESTINATION BLOCK
//! DEVICE LBA. CAT is accepted; no residue ever needs carrying because
//! every segment is whole blocks. Other segment types (0Ah, block with
//! offset, among them) are neither advertised (VPD 8Fh, RECEIVE COPY
//! OPERATING PARAMETERS) nor accepted: UNSUPPORTED SEGMENT DESCRIPTOR TYPE
//! CODE.

use super::{
    be16, be24, be32, be64, byte, cdb::ExtendedCopyLid1, cdb::ExtendedCopyLid4, check_reserved,
    ptr, read_params, Family, Key, Record, MAX_CSCDS, MAX_DESC_LIST_LEN, MAX_INLINE_LEN,
    MAX_SEGMENTS, MAX_SEGMENT_LEN,
};
use crate::{
    scsi::{
        sense::{copy_error_asc, Access, Asc, FieldPointer, Sense, SenseKey},
        zbc, Exec, LogicalUnit, Target,
    },
    storage::{copy, BlockCount, Lba, Segment, StorageError},
};

const CSCD_LEN: usize = 32;

/// One CSCD descriptor (type E4h).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cscd {
    /// Byte offset in the parameter list.
    pub offset: usize,
    pub pdt: u8,
    pub code_set: u8,
    pub assoc: u8,
    pub desig_type: u8,
    pub designator: Vec<u8>,
    pub block_len: u32,
}

/// How a segment descriptor counts what it copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Amount {
    /// 02h: NUMBER OF BLOCKS, of the destination with DC.
    Blocks { count: u16, dc: bool },
    /// 0Ah: NUMBER OF BYTES and the byte offsets.
    Bytes {
        count: u32,
        src_off: u16,
        dst_off: u16,
    },
}

/// One segment descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegDesc {
    /// Byte offset in the parameter list.
    pub offset: usize,
    pub src: u16,
    pub dst: u16,
    pub amount: Amount,
    pub src_lba: u64,
    pub dst_lba: u64,
}

/// LIST ID USAGE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListIdUsage {
    /// 00b, 01b, 10b: results are kept under the list identifier (there is
    /// never held data to discard).
    Tracked,
    /// 11b: nothing is kept; the list identifier is not used (SNLID).
    Untracked,
}

/// A decoded EXTENDED COPY parameter list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CopyList {
    pub family: Family,
    pub list_id: u32,
    pub usage: ListIdUsage,
    pub immed: bool,
    pub cscds: Vec<Cscd>,
    pub segs: Vec<SegDesc>,
}

/// Where the header puts things, for both header formats.
struct Layout {
    base: usize,
    cscd_len: usize,
    cscd_len_field: usize,
    seg_len: usize,
    seg_len_field: usize,
    inline_len: u32,
    inline_len_field: usize,
}

fn flags(p: &[u8]) -> Result<ListIdUsage, Sense> {
    let b = byte(p, 1);
    if b & 0xc0 != 0 {
        return Err(Sense::invalid_param(1, Some(7)));
    }
    // LIST ID USAGE (SPC-4 6.4.3.2): 00b and 10b keep the results under
    // the list identifier, 01b is reserved, 11b keeps nothing.
    match (b >> 3) & 3 {
        1 => Err(Sense::invalid_param(1, Some(4))),
        3 => Ok(ListIdUsage::Untracked),
        _ => Ok(ListIdUsage::Tracked),
    }
}

/// Decode and check a parameter list (`family` says which header).
pub(crate) fn parse(p: &[u8], family: Family) -> Result<CopyList, Sense> {
    let len_err = Sense::illegal(Asc::PARAMETER_LIST_LENGTH_ERROR);
    let (list_id, list_id_field, usage, immed, layout) = match family {
        Family::Lid1 => {
            if p.len() < 16 {
                return Err(len_err);
            }
            let usage = flags(p)?;
            check_reserved(p, 4, 4)?;
            (
                u32::from(byte(p, 0)),
                0,
                usage,
                false,
                Layout {
                    base: 16,
                    cscd_len: usize::from(be16(p, 2)),
                    cscd_len_field: 2,
                    seg_len: usize::try_from(be32(p, 8)).unwrap_or(usize::MAX),
                    seg_len_field: 8,
                    inline_len: be32(p, 12),
                    inline_len_field: 12,
                },
            )
        }
        Family::Lid4 => {
            if p.len() < 48 {
                return Err(len_err);
            }
            if byte(p, 0) != 0x01 {
                return Err(Sense::invalid_param(0, Some(7)));
            }
            let usage = flags(p)?;
            if be16(p, 2) != 0 {
                return Err(Sense::invalid_param(2, Some(7)));
            }
            check_reserved(p, 4, 11)?;
            if byte(p, 15) & 0xfc != 0 {
                return Err(Sense::invalid_param(15, Some(7)));
            }
            check_reserved(p, 17, 3)?;
            check_reserved(p, 24, 18)?;
            (
                be32(p, 20),
                20,
                usage,
                byte(p, 15) & 0x01 != 0,
                Layout {
                    base: 48,
                    cscd_len: usize::from(be16(p, 42)),
                    cscd_len_field: 42,
                    seg_len: usize::from(be16(p, 44)),
                    seg_len_field: 44,
                    inline_len: u32::from(be16(p, 46)),
                    inline_len_field: 46,
                },
            )
        }
    };
    // With LIST ID USAGE 11b the LIST IDENTIFIER must be zero.
    if usage == ListIdUsage::Untracked && list_id != 0 {
        return Err(Sense::invalid_param(list_id_field, Some(7)));
    }
    let l = layout;
    // The descriptor lists must fit the advertised MAXIMUM DESCRIPTOR LIST
    // LENGTH and the parameter list (SPC-5: PARAMETER LIST LENGTH ERROR).
    let desc_len = l.cscd_len.checked_add(l.seg_len).ok_or(len_err)?;
    if desc_len > MAX_DESC_LIST_LEN as usize {
        return Err(len_err);
    }
    if l.inline_len > MAX_INLINE_LEN {
        return Err(Sense::param(
            Asc::INLINE_DATA_LENGTH_EXCEEDED,
            ptr(l.inline_len_field),
            Some(7),
        ));
    }
    let end = l.base.checked_add(desc_len).ok_or(len_err)?;
    if end > p.len() {
        return Err(len_err);
    }
    if l.cscd_len % CSCD_LEN != 0 {
        return Err(Sense::invalid_param(ptr(l.cscd_len_field), Some(7)));
    }
    if l.cscd_len / CSCD_LEN > usize::from(MAX_CSCDS) {
        return Err(Sense::illegal(Asc::TOO_MANY_TARGET_DESCRIPTORS));
    }
    let mut cscds = Vec::new();
    for i in 0..l.cscd_len / CSCD_LEN {
        let off = l.base + i * CSCD_LEN;
        cscds.push(parse_cscd(p, off)?);
    }
    let mut segs = Vec::new();
    let mut off = l.base + l.cscd_len;
    let seg_end = off + l.seg_len;
    let seg_len_bad = Sense::invalid_param(ptr(l.seg_len_field), Some(7));
    while off < seg_end {
        if segs.len() >= usize::from(MAX_SEGMENTS) {
            return Err(Sense::illegal(Asc::TOO_MANY_SEGMENT_DESCRIPTORS));
        }
        if off + 4 > seg_end {
            return Err(seg_len_bad);
        }
        let code = byte(p, off);
        // 0Ah (block<o> -> block<o>) exists for byte offsets, which this
        // copy manager cannot do: it is neither advertised nor accepted.
        let want = match code {
            0x02 => 0x18,
            _ => {
                return Err(Sense::param(
                    Asc::UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE,
                    ptr(off),
                    Some(7),
                ))
            }
        };
        let dlen = usize::from(be16(p, off + 2));
        if dlen != want {
            return Err(Sense::invalid_param(ptr(off + 2), Some(7)));
        }
        let next = off + 4 + dlen;
        if next > seg_end {
            return Err(seg_len_bad);
        }
        segs.push(parse_segment(p, off, code)?);
        off = next;
    }
    Ok(CopyList {
        family,
        list_id,
        usage,
        immed,
        cscds,
        segs,
    })
}

fn parse_cscd(p: &[u8], off: usize) -> Result<Cscd, Sense> {
    let code = byte(p, off);
    if code != 0xe4 {
        return Err(Sense::param(
            Asc::UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE,
            ptr(off),
            Some(7),
        ));
    }
    let dlen = usize::from(byte(p, off + 7));
    if dlen > 20 {
        return Err(Sense::invalid_param(ptr(off + 7), Some(7)));
    }
    let designator = p.get(off + 8..off + 8 + dlen).unwrap_or_default().to_vec();
    Ok(Cscd {
        offset: off,
        pdt: byte(p, off + 1) & 0x1f,
        code_set: byte(p, off + 4) & 0x0f,
        assoc: (byte(p, off + 5) >> 4) & 0x03,
        desig_type: byte(p, off + 5) & 0x0f,
        designator,
        block_len: be24(p, off + 29),
    })
}

fn parse_segment(p: &[u8], off: usize, code: u8) -> Result<SegDesc, Sense> {
    let b1 = byte(p, off + 1);
    let amount = if code == 0x02 {
        // Bits 7-3 reserved; the BIT POINTER names the highest one set.
        let reserved = b1 & 0xf8;
        if reserved != 0 {
            let bit = 7 - reserved.leading_zeros() as u8;
            return Err(Sense::invalid_param(ptr(off + 1), Some(bit)));
        }
        check_reserved(p, off + 8, 2)?;
        Amount::Blocks {
            count: be16(p, off + 10),
            dc: b1 & 0x02 != 0,
        }
    } else {
        if b1 & 0xfe != 0 {
            return Err(Sense::invalid_param(ptr(off + 1), Some(7)));
        }
        let count = be32(p, off + 8);
        if count > MAX_SEGMENT_LEN {
            return Err(Sense::invalid_param(ptr(off + 8), Some(7)));
        }
        Amount::Bytes {
            count,
            src_off: be16(p, off + 28),
            dst_off: be16(p, off + 30),
        }
    };
    Ok(SegDesc {
        offset: off,
        src: be16(p, off + 4),
        dst: be16(p, off + 6),
        amount,
        src_lba: be64(p, off + 12),
        dst_lba: be64(p, off + 20),
    })
}

/// COPY ABORTED for segment descriptor `seg` (its number in
/// COMMAND-SPECIFIC INFORMATION bytes 2-3), with the segment pointer and
/// the residual (what the segment did not copy, in its own units) in
/// INFORMATION.
pub(crate) fn aborted(asc: Asc, seg: usize, field: FieldPointer, residual: u64) -> Sense {
    Sense {
        key: SenseKey::CopyAborted,
        asc,
        field: Some(field),
        info: Some(residual),
        csi: seg as u64,
    }
}

/// Does `lu` carry the designator `c` names (VPD 83h)?
fn designates(lu: &LogicalUnit, c: &Cscd) -> bool {
    if c.assoc != 0 {
        return false;
    }
    let id = &lu.identity;
    match (c.code_set, c.desig_type) {
        (0x1, 0x3) => c.designator == id.naa.to_be_bytes(),
        (0x2, 0x1) => {
            let mut t10 = id.vendor.to_vec();
            t10.extend_from_slice(id.serial.as_bytes());
            c.designator == t10
        }
        _ => false,
    }
}

/// A resolved copy segment: the engine segment and the LUNs involved.
struct Planned<'t> {
    seg: Segment<'t>,
    dst_lun: u16,
    dst_count: BlockCount,
}

struct Resolver<'t, 'l> {
    target: &'t Target,
    lun: u16,
    list: &'l CopyList,
}

impl<'t> Resolver<'t, '_> {
    /// The LU a segment's CSCD descriptor ID names; `field` is the ID's
    /// byte in the segment descriptor.
    fn unit(
        &self,
        i: usize,
        id: u16,
        field: u16,
        residual: u64,
    ) -> Result<(u16, &'t LogicalUnit), Sense> {
        let unreachable = |f| aborted(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, i, f, residual);
        let cscd = match id {
            0xffff => {
                let lu = self
                    .target
                    .unit(self.lun)
                    .ok_or(unreachable(FieldPointer::segment(field, Some(7))))?;
                return Ok((self.lun, lu));
            }
            0x0000..=0x07ff => self
                .list
                .cscds
                .get(usize::from(id))
                .ok_or(unreachable(FieldPointer::segment(field, Some(7))))?,
            _ => return Err(unreachable(FieldPointer::segment(field, Some(7)))),
        };
        let found = (0..self.target.lun_count()).find_map(|n| {
            let n = u16::try_from(n).ok()?;
            let lu = self.target.unit(n)?;
            designates(lu, cscd).then_some((n, lu))
        });
        let (n, lu) = found.ok_or(unreachable(FieldPointer::param(
            ptr(cscd.offset + 4),
            Some(3),
        )))?;
        if cscd.pdt != 0x00 && cscd.pdt != lu.kind.peripheral_type() {
            return Err(aborted(
                Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE,
                i,
                FieldPointer::param(ptr(cscd.offset + 1), Some(4)),
                residual,
            ));
        }
        if cscd.block_len != lu.device.geometry().block_size {
            // The device type specific parameters describe another device.
            return Err(aborted(
                Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE,
                i,
                FieldPointer::param(ptr(cscd.offset + 29), Some(7)),
                residual,
            ));
        }
        Ok((n, lu))
    }

    fn plan(&self, i: usize, s: &SegDesc) -> Result<Planned<'t>, Sense> {
        let residual = match s.amount {
            Amount::Blocks { count, .. } => u64::from(count),
            Amount::Bytes { count, .. } => u64::from(count),
        };
        let (_, src) = self.unit(i, s.src, 4, residual)?;
        let (dst_lun, dst) = self.unit(i, s.dst, 6, residual)?;
        let sbs = u64::from(src.device.geometry().block_size);
        let dbs = u64::from(dst.device.geometry().block_size);
        let inexact = |field| {
            aborted(
                Asc::UNEXPECTED_INEXACT_SEGMENT,
                i,
                FieldPointer::segment(field, Some(7)),
                residual,
            )
        };
        let bytes = match s.amount {
            Amount::Blocks { count, dc } => {
                u64::from(count).saturating_mul(if dc { dbs } else { sbs })
            }
            Amount::Bytes {
                count,
                src_off,
                dst_off,
            } => {
                if src_off != 0 {
                    return Err(inexact(28));
                }
                if dst_off != 0 {
                    return Err(inexact(30));
                }
                u64::from(count)
            }
        };
        let count_field = match s.amount {
            Amount::Blocks { .. } => 10,
            Amount::Bytes { .. } => 8,
        };
        if bytes % sbs != 0 || bytes % dbs != 0 {
            return Err(inexact(count_field));
        }
        let count = BlockCount::new(bytes / sbs);
        // Reads that ZBC-2 refuses before the core sees them (gap zones,
        // conventional into sequential).
        zbc::check_read(src.device.geometry(), Lba::new(s.src_lba), count.get())
            .map_err(|e| aborted(e.asc, i, FieldPointer::segment(12, Some(7)), residual))?;
        Ok(Planned {
            seg: Segment {
                src: &src.device,
                src_lba: Lba::new(s.src_lba),
                dst: &dst.device,
                dst_lba: Lba::new(s.dst_lba),
                count,
            },
            dst_lun,
            dst_count: BlockCount::new(bytes / dbs),
        })
    }
}

/// What an executed list did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub segments: usize,
    pub bytes: u64,
    pub failure: Option<Sense>,
}

/// The segment pointer and ASC for an engine failure of segment `i`.
pub(crate) fn engine_failure(
    i: usize,
    err: &StorageError,
    src_lba: u64,
    src_field: u16,
    dst_field: u16,
    residual: u64,
) -> Sense {
    let source = match err {
        StorageError::OutOfRange { lba, .. } | StorageError::BeyondZoneCapacity { lba, .. } => {
            lba.get() == src_lba
        }
        // A medium error reading the source (an injected media error).
        StorageError::UnrecoveredRead { .. } => true,
        _ => false,
    };
    let (access, field) = if source {
        (Access::Read, src_field)
    } else {
        (Access::Write, dst_field)
    };
    aborted(
        copy_error_asc(err, access),
        i,
        FieldPointer::segment(field, Some(7)),
        residual,
    )
}

/// The residual of segment `s` (SPC-4 EXTENDED COPY, errors while
/// processing segment descriptors: INFORMATION is what the segment did not
/// process) after `bytes` of it were copied, in the unit of its count
/// field: source blocks, destination blocks with DC, bytes for 0Ah.
fn residual(s: &SegDesc, bytes: u64, src_bs: u32, dst_bs: u32) -> u64 {
    match s.amount {
        Amount::Blocks { count, dc } => {
            let unit = u64::from(if dc { dst_bs } else { src_bs }).max(1);
            u64::from(count).saturating_sub(bytes / unit)
        }
        Amount::Bytes { count, .. } => u64::from(count).saturating_sub(bytes),
    }
}

/// Run the segments in order; stop at the first failure. A segment that
/// fails part way (an injected fault, `storage::fault`) keeps what it
/// copied: counted in the bytes, and the residual says how much is left.
pub(crate) fn execute(target: &Target, lun: u16, list: &CopyList) -> Outcome {
    let r = Resolver { target, lun, list };
    let mut out = Outcome::default();
    let mut cmd = copy::CopyCommand::default();
    for (i, s) in list.segs.iter().enumerate() {
        let planned = match r.plan(i, s) {
            Ok(p) => p,
            Err(sense) => {
                out.failure = Some(sense);
                break;
            }
        };
        match cmd.run(&[planned.seg]) {
            Ok(p) => {
                out.segments += 1;
                out.bytes = out.bytes.saturating_add(p.bytes_done);
                target
                    .copy
                    .invalidate(planned.dst_lun, planned.seg.dst_lba, planned.dst_count);
            }
            Err(f) => {
                let (sbs, dbs) = (
                    planned.seg.src.geometry().block_size,
                    planned.seg.dst.geometry().block_size,
                );
                let done = f.progress.bytes_done;
                if done > 0 {
                    out.bytes = out.bytes.saturating_add(done);
                    target.copy.invalidate(
                        planned.dst_lun,
                        planned.seg.dst_lba,
                        BlockCount::new(done / u64::from(dbs).max(1)),
                    );
                }
                let residual = residual(s, done, sbs, dbs);
                out.failure = Some(engine_failure(i, &f.error, s.src_lba, 12, 20, residual));
                break;
            }
        }
    }
    out
}

fn run(x: &mut Exec<'_, '_>, len: u32, family: Family, service_action: u8) -> Result<u32, Sense> {
    x.lu()?;
    if len == 0 {
        // SPC-5: no parameter data is not an error.
        return Ok(0);
    }
    let header = match family {
        Family::Lid1 => 16,
        Family::Lid4 => 48,
    };
    let max = header + MAX_DESC_LIST_LEN as usize + MAX_INLINE_LEN as usize;
    let p = read_params(x, len, max)?;
    let list = parse(&p, family)?;
    let key = Key {
        lun: x.lun,
        family,
        list_id: list.list_id,
    };
    let tracked = list.usage == ListIdUsage::Tracked;
    if tracked {
        x.target.copy.begin(key)?;
    }
    let out = execute(x.target, x.lun, &list);
    x.target
        .stats
        .copy_done(out.segments, out.bytes, out.failure.is_some());
    if tracked {
        x.target.copy.finish(
            Record {
                key,
                service_action,
                segments: out.segments,
                bytes: out.bytes,
                blocks: 0,
                sense: out.failure,
                token: None,
            },
            true,
        );
    }
    match out.failure {
        Some(_) if list.immed => Ok(0),
        Some(sense) => Err(sense),
        None => Ok(0),
    }
}

/// EXTENDED COPY (LID1) (SPC-5).
pub fn extended_copy_lid1(x: &mut Exec<'_, '_>, c: ExtendedCopyLid1) -> Result<u32, Sense> {
    run(x, c.len, Family::Lid1, 0x00)
}

/// EXTENDED COPY (LID4) (SPC-5).
pub fn extended_copy_lid4(x: &mut Exec<'_, '_>, c: ExtendedCopyLid4) -> Result<u32, Sense> {
    run(x, c.len, Family::Lid4, 0x01)
}

crate::scsi::commands::handlers! {
    ExtendedCopyLid1 => extended_copy_lid1,
    ExtendedCopyLid4 => extended_copy_lid4,
}
