//! Encoders for the third-party copy commands and their parameter lists
//! (SPC-4 6.4 EXTENDED COPY, 6.18 RECEIVE COPY RESULTS / RECEIVE ROD TOKEN
//! INFORMATION, 6.3 COPY OPERATION ABORT; SBC-4 5.11 POPULATE TOKEN, 5.51
//! WRITE USING TOKEN), written from the standard's tables. All multi-byte
//! fields are big-endian.

/// EXTENDED COPY / POPULATE TOKEN / WRITE USING TOKEN / COPY OPERATION
/// ABORT operation code (third-party copy OUT).
pub const OP_TPC_OUT: u8 = 0x83;
/// RECEIVE COPY RESULTS family operation code (third-party copy IN).
pub const OP_TPC_IN: u8 = 0x84;

/// Service actions of 83h.
pub mod out_sa {
    /// EXTENDED COPY(LID1).
    pub const LID1: u8 = 0x00;
    /// EXTENDED COPY(LID4).
    pub const LID4: u8 = 0x01;
    /// POPULATE TOKEN.
    pub const POPULATE_TOKEN: u8 = 0x10;
    /// WRITE USING TOKEN.
    pub const WRITE_USING_TOKEN: u8 = 0x11;
    /// COPY OPERATION ABORT.
    pub const COPY_OPERATION_ABORT: u8 = 0x1c;
}

/// Service actions of 84h.
pub mod in_sa {
    /// RECEIVE COPY STATUS(LID1).
    pub const COPY_STATUS_LID1: u8 = 0x00;
    /// RECEIVE COPY DATA(LID1).
    pub const COPY_DATA_LID1: u8 = 0x01;
    /// RECEIVE COPY OPERATING PARAMETERS.
    pub const OPERATING_PARAMETERS: u8 = 0x03;
    /// RECEIVE COPY FAILURE DETAILS(LID1).
    pub const FAILED_SEGMENT_DETAILS: u8 = 0x04;
    /// RECEIVE COPY STATUS(LID4).
    pub const COPY_STATUS_LID4: u8 = 0x05;
    /// RECEIVE COPY DATA(LID4).
    pub const COPY_DATA_LID4: u8 = 0x06;
    /// RECEIVE ROD TOKEN INFORMATION.
    pub const ROD_TOKEN_INFORMATION: u8 = 0x07;
    /// REPORT ALL ROD TOKENS.
    pub const ALL_ROD_TOKENS: u8 = 0x08;
}

/// EXTENDED COPY(LID1 or LID4) CDB: 83h, SA, bytes 2..10 reserved,
/// PARAMETER LIST LENGTH in 10..14, 14 reserved, 15 CONTROL.
pub fn extended_copy(sa: u8, param_len: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_TPC_OUT;
    c[1] = sa & 0x1f;
    c[10..14].copy_from_slice(&param_len.to_be_bytes());
    c
}

/// POPULATE TOKEN / WRITE USING TOKEN CDB (SBC-4): 83h, SA, 2..6 reserved,
/// LIST IDENTIFIER in 6..10, PARAMETER LIST LENGTH in 10..14, 14 GROUP
/// NUMBER, 15 CONTROL.
pub fn token_out(sa: u8, list_id: u32, param_len: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_TPC_OUT;
    c[1] = sa & 0x1f;
    c[6..10].copy_from_slice(&list_id.to_be_bytes());
    c[10..14].copy_from_slice(&param_len.to_be_bytes());
    c
}

/// COPY OPERATION ABORT CDB: 83h, 1Ch, LIST IDENTIFIER in 2..6.
pub fn copy_operation_abort(list_id: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_TPC_OUT;
    c[1] = out_sa::COPY_OPERATION_ABORT;
    c[2..6].copy_from_slice(&list_id.to_be_bytes());
    c
}

/// RECEIVE COPY STATUS(LID1) / FAILURE DETAILS / COPY DATA(LID1) and
/// OPERATING PARAMETERS CDB: 84h, SA, one-byte LIST IDENTIFIER in byte 2
/// (reserved for 03h), ALLOCATION LENGTH in 10..14.
pub fn receive_lid1(sa: u8, list_id: u8, alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_TPC_IN;
    c[1] = sa & 0x1f;
    c[2] = list_id;
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// RECEIVE COPY STATUS(LID4) / RECEIVE ROD TOKEN INFORMATION CDB: 84h, SA,
/// four-byte LIST IDENTIFIER in 2..6, ALLOCATION LENGTH in 10..14.
pub fn receive_lid4(sa: u8, list_id: u32, alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_TPC_IN;
    c[1] = sa & 0x1f;
    c[2..6].copy_from_slice(&list_id.to_be_bytes());
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// INQUIRY CDB (SPC-4 6.6): EVPD bit 0 of byte 1, PAGE CODE byte 2,
/// ALLOCATION LENGTH bytes 3..5.
pub fn inquiry(vpd: Option<u8>, alloc: u16) -> [u8; 6] {
    let mut c = [0x12, 0, 0, 0, 0, 0];
    if let Some(p) = vpd {
        c[1] = 1;
        c[2] = p;
    }
    c[3..5].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35: A3h/0Ch), REPORTING
/// OPTIONS 010b (one command, with service action): byte 2 bits 2..0,
/// REQUESTED OPERATION CODE byte 3, REQUESTED SERVICE ACTION 4..6,
/// ALLOCATION LENGTH 6..10.
pub fn rsoc_one(op: u8, sa: u16, alloc: u32) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = 0xa3;
    c[1] = 0x0c;
    c[2] = 0x02;
    c[3] = op;
    c[4..6].copy_from_slice(&sa.to_be_bytes());
    c[6..10].copy_from_slice(&alloc.to_be_bytes());
    c
}

/// READ(16) CDB (SBC-4 5.16).
pub fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x88;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// LIST ID USAGE (byte 1 bits 4..3 of both list headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListIdUsage {
    /// 00b: the copy manager holds status and data for RECEIVE COPY RESULTS.
    Hold,
    /// 10b: list identifier unique, nothing held.
    NoHold,
    /// 11b: no list identifier (it must be zero).
    None,
}

impl ListIdUsage {
    fn bits(self) -> u8 {
        match self {
            Self::Hold => 0b00 << 3,
            Self::NoHold => 0b10 << 3,
            Self::None => 0b11 << 3,
        }
    }
}

/// Identification descriptor CSCD descriptor (E4h, 32 bytes; SPC-4
/// 6.4.5.? "Identification descriptor CSCD descriptor format").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CscdId {
    /// PERIPHERAL DEVICE TYPE (byte 1 bits 4..0): 00h disk, 14h ZBC hm.
    pub pdt: u8,
    /// NUL bit (byte 1 bit 5).
    pub nul: bool,
    /// CODE SET (byte 4 bits 3..0) of the designator, from VPD 83h.
    pub code_set: u8,
    /// ASSOCIATION (byte 5 bits 5..4), 00b logical unit.
    pub association: u8,
    /// DESIGNATOR TYPE (byte 5 bits 3..0).
    pub designator_type: u8,
    /// The designator (at most 20 bytes), from VPD 83h.
    pub designator: Vec<u8>,
    /// DISK BLOCK LENGTH (bytes 29..32 of the block device type specific
    /// parameters).
    pub block_len: u32,
    /// Override the descriptor type code (E4h) for error tests.
    pub type_code: u8,
}

/// Length of every fixed-size CSCD descriptor.
pub const CSCD_LEN: usize = 32;

impl CscdId {
    /// An E4h descriptor for an LU with this designator.
    pub fn new(
        pdt: u8,
        code_set: u8,
        designator_type: u8,
        designator: &[u8],
        block_len: u32,
    ) -> Self {
        Self {
            pdt,
            nul: false,
            code_set,
            association: 0,
            designator_type,
            designator: designator.to_vec(),
            block_len,
            type_code: 0xe4,
        }
    }

    /// The 32 bytes.
    pub fn encode(&self) -> [u8; CSCD_LEN] {
        let mut d = [0u8; CSCD_LEN];
        d[0] = self.type_code;
        // LU ID TYPE 00b (bits 7..6), NUL, PERIPHERAL DEVICE TYPE.
        d[1] = (u8::from(self.nul) << 5) | (self.pdt & 0x1f);
        // 2..4 RELATIVE INITIATOR PORT IDENTIFIER: 0 (any port).
        d[4] = self.code_set & 0x0f;
        d[5] = ((self.association & 3) << 4) | (self.designator_type & 0x0f);
        let n = self.designator.len().min(20);
        d[7] = n as u8;
        d[8..8 + n].copy_from_slice(&self.designator[..n]);
        // 28: PAD etc. zero; 29..32 DISK BLOCK LENGTH.
        d[28..32].copy_from_slice(&self.block_len.to_be_bytes());
        d[28] = 0;
        d
    }
}

/// Segment descriptors this suite sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// 02h block device to block device (28 bytes). `blocks` counts
    /// source blocks, or destination blocks when `dc`.
    B2B {
        /// Source CSCD descriptor ID (index into the CSCD list, or FFFFh).
        src: u16,
        /// Destination CSCD descriptor ID.
        dst: u16,
        /// DC bit (byte 1 bit 1).
        dc: bool,
        /// NUMBER OF BLOCKS.
        blocks: u16,
        /// SOURCE LOGICAL BLOCK ADDRESS.
        src_lba: u64,
        /// DESTINATION LOGICAL BLOCK ADDRESS.
        dst_lba: u64,
    },
    /// 0Ah block device to block device with byte offsets (32 bytes).
    B2BOffset {
        /// Source CSCD descriptor ID.
        src: u16,
        /// Destination CSCD descriptor ID.
        dst: u16,
        /// NUMBER OF BYTES.
        bytes: u32,
        /// SOURCE LOGICAL BLOCK ADDRESS.
        src_lba: u64,
        /// DESTINATION LOGICAL BLOCK ADDRESS.
        dst_lba: u64,
        /// SOURCE BYTE OFFSET.
        src_off: u16,
        /// DESTINATION BYTE OFFSET.
        dst_off: u16,
    },
    /// Any bytes (for unsupported type codes and malformed descriptors).
    Raw(Vec<u8>),
}

impl Segment {
    /// Block to block (02h) from CSCD 0 to CSCD 1 without DC: the copy
    /// most tests send.
    pub fn a_to_b(blocks: u16, src_lba: u64, dst_lba: u64) -> Self {
        Self::B2B {
            src: 0,
            dst: 1,
            dc: false,
            blocks,
            src_lba,
            dst_lba,
        }
    }

    /// The descriptor bytes.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Self::B2B {
                src,
                dst,
                dc,
                blocks,
                src_lba,
                dst_lba,
            } => {
                let mut d = vec![0u8; 28];
                d[0] = 0x02;
                d[1] = u8::from(dc) << 1;
                d[2..4].copy_from_slice(&24u16.to_be_bytes());
                d[4..6].copy_from_slice(&src.to_be_bytes());
                d[6..8].copy_from_slice(&dst.to_be_bytes());
                d[10..12].copy_from_slice(&blocks.to_be_bytes());
                d[12..20].copy_from_slice(&src_lba.to_be_bytes());
                d[20..28].copy_from_slice(&dst_lba.to_be_bytes());
                d
            }
            Self::B2BOffset {
                src,
                dst,
                bytes,
                src_lba,
                dst_lba,
                src_off,
                dst_off,
            } => {
                let mut d = vec![0u8; 32];
                d[0] = 0x0a;
                d[2..4].copy_from_slice(&28u16.to_be_bytes());
                d[4..6].copy_from_slice(&src.to_be_bytes());
                d[6..8].copy_from_slice(&dst.to_be_bytes());
                d[8..12].copy_from_slice(&bytes.to_be_bytes());
                d[12..20].copy_from_slice(&src_lba.to_be_bytes());
                d[20..28].copy_from_slice(&dst_lba.to_be_bytes());
                d[28..30].copy_from_slice(&src_off.to_be_bytes());
                d[30..32].copy_from_slice(&dst_off.to_be_bytes());
                d
            }
            Self::Raw(ref v) => v.clone(),
        }
    }
}

/// An EXTENDED COPY parameter list, either header format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyList {
    /// LIST IDENTIFIER (LID1: low byte only).
    pub list_id: u32,
    /// LIST ID USAGE.
    pub usage: ListIdUsage,
    /// CSCD descriptors, raw (each normally 32 bytes).
    pub cscds: Vec<Vec<u8>>,
    /// Segment descriptors.
    pub segments: Vec<Segment>,
    /// Inline data.
    pub inline: Vec<u8>,
}

/// Header lengths.
pub const LID1_HEADER: usize = 16;
/// LID4 header length.
pub const LID4_HEADER: usize = 48;

impl CopyList {
    /// A list with no inline data, holding status under `list_id`.
    pub fn new(list_id: u32, cscds: &[CscdId], segments: Vec<Segment>) -> Self {
        Self {
            list_id,
            usage: ListIdUsage::Hold,
            cscds: cscds.iter().map(|c| c.encode().to_vec()).collect(),
            segments,
            inline: Vec::new(),
        }
    }

    fn body(&self) -> (Vec<u8>, usize, usize) {
        let c: Vec<u8> = self.cscds.concat();
        let s: Vec<u8> = self.segments.iter().flat_map(Segment::encode).collect();
        let (cl, sl) = (c.len(), s.len());
        let mut b = c;
        b.extend_from_slice(&s);
        b.extend_from_slice(&self.inline);
        (b, cl, sl)
    }

    /// Byte offset of segment `i` in the encoded list with `header` bytes
    /// of header.
    pub fn segment_offset(&self, header: usize, i: usize) -> usize {
        header
            + self.cscds.iter().map(Vec::len).sum::<usize>()
            + self.segments[..i]
                .iter()
                .map(|s| s.encode().len())
                .sum::<usize>()
    }

    /// LID1 parameter list (SPC-4 table "EXTENDED COPY(LID1) parameter
    /// list"): 0 LIST IDENTIFIER, 1 STR/LIST ID USAGE/PRIORITY, 2..4 CSCD
    /// DESCRIPTOR LIST LENGTH, 4..8 reserved, 8..12 SEGMENT DESCRIPTOR LIST
    /// LENGTH, 12..16 INLINE DATA LENGTH, then descriptors and inline data.
    pub fn lid1(&self) -> Vec<u8> {
        let (body, cl, sl) = self.body();
        let mut p = vec![0u8; LID1_HEADER];
        p[0] = self.list_id as u8;
        p[1] = self.usage.bits();
        p[2..4].copy_from_slice(&(cl as u16).to_be_bytes());
        p[8..12].copy_from_slice(&(sl as u32).to_be_bytes());
        p[12..16].copy_from_slice(&(self.inline.len() as u32).to_be_bytes());
        p.extend_from_slice(&body);
        p
    }

    /// LID4 parameter list (SPC-4 table "EXTENDED COPY(LID4) parameter
    /// list"): 0 LIST FORMAT (01h), 1 STR/LIST ID USAGE/PRIORITY, 2..4
    /// HEADER CSCD DESCRIPTOR LIST LENGTH (0), 4..15 reserved, 15 G_SENSE/
    /// IMMED, 16 HEADER CSCD TYPE CODE, 17..20 reserved, 20..24 LIST
    /// IDENTIFIER, 24..42 reserved, 42..44 CSCD DESCRIPTOR LIST LENGTH,
    /// 44..46 SEGMENT DESCRIPTOR LIST LENGTH, 46..48 INLINE DATA LENGTH.
    pub fn lid4(&self) -> Vec<u8> {
        let (body, cl, sl) = self.body();
        let mut p = vec![0u8; LID4_HEADER];
        p[0] = 0x01;
        p[1] = self.usage.bits();
        p[20..24].copy_from_slice(&self.list_id.to_be_bytes());
        p[42..44].copy_from_slice(&(cl as u16).to_be_bytes());
        p[44..46].copy_from_slice(&(sl as u16).to_be_bytes());
        p[46..48].copy_from_slice(&(self.inline.len() as u16).to_be_bytes());
        p.extend_from_slice(&body);
        p
    }
}

/// A block device range descriptor (SBC-4 5.11.?): LBA 0..8, NUMBER OF
/// LOGICAL BLOCKS 8..12, 12..16 reserved.
pub fn range_descriptor(lba: u64, blocks: u32) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&lba.to_be_bytes());
    d[8..12].copy_from_slice(&blocks.to_be_bytes());
    d
}

/// POPULATE TOKEN parameter list (SBC-4): 0..2 POPULATE TOKEN DATA LENGTH
/// (n - 1), 2 RTV (bit 1) / IMMED (bit 0), 3 reserved, 4..8 INACTIVITY
/// TIMEOUT, 8..12 ROD TYPE, 12..14 reserved, 14..16 BLOCK DEVICE RANGE
/// DESCRIPTOR LIST LENGTH, 16.. range descriptors.
pub fn populate_token_params(
    inactivity_timeout: u32,
    rod_type: Option<u32>,
    ranges: &[(u64, u32)],
) -> Vec<u8> {
    let mut p = vec![0u8; 16];
    if let Some(t) = rod_type {
        p[2] |= 0x02;
        p[8..12].copy_from_slice(&t.to_be_bytes());
    }
    p[4..8].copy_from_slice(&inactivity_timeout.to_be_bytes());
    p[14..16].copy_from_slice(&((ranges.len() * 16) as u16).to_be_bytes());
    for &(lba, n) in ranges {
        p.extend_from_slice(&range_descriptor(lba, n));
    }
    let dl = (p.len() - 2) as u16;
    p[0..2].copy_from_slice(&dl.to_be_bytes());
    p
}

/// WRITE USING TOKEN parameter list (SBC-4): 0..2 WRITE USING TOKEN DATA
/// LENGTH (n - 1), 2 DEL_TKN (bit 1) / IMMED (bit 0), 3..8 reserved, 8..16
/// OFFSET INTO ROD, 16..528 ROD TOKEN, 528..534 reserved, 534..536 BLOCK
/// DEVICE RANGE DESCRIPTOR LIST LENGTH, 536.. range descriptors.
pub fn write_using_token_params(
    token: &[u8; 512],
    offset_into_rod: u64,
    ranges: &[(u64, u32)],
) -> Vec<u8> {
    let mut p = vec![0u8; 536];
    p[8..16].copy_from_slice(&offset_into_rod.to_be_bytes());
    p[16..528].copy_from_slice(token);
    p[534..536].copy_from_slice(&((ranges.len() * 16) as u16).to_be_bytes());
    for &(lba, n) in ranges {
        p.extend_from_slice(&range_descriptor(lba, n));
    }
    let dl = (p.len() - 2) as u16;
    p[0..2].copy_from_slice(&dl.to_be_bytes());
    p
}

/// ROD TYPE of the block device zero ROD token (SBC-4 4.?; SPC-4 table
/// "ROD type codes": FFFF0001h).
pub const ROD_TYPE_BLOCK_ZERO: u32 = 0xffff_0001;

/// The block device zero ROD token: ROD TYPE FFFF0001h, ROD TOKEN LENGTH
/// 01F8h, every other byte zero.
pub fn zero_rod_token() -> [u8; 512] {
    let mut t = [0u8; 512];
    t[..4].copy_from_slice(&ROD_TYPE_BLOCK_ZERO.to_be_bytes());
    t[6..8].copy_from_slice(&0x01f8u16.to_be_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdbs() {
        assert_eq!(
            extended_copy(out_sa::LID4, 0x0102_0304),
            [
                0x83, 0x01, // EXTENDED COPY(LID4)
                0, 0, 0, 0, 0, 0, 0, 0, // reserved
                1, 2, 3, 4, // PARAMETER LIST LENGTH
                0, 0, // reserved, CONTROL
            ]
        );
        assert_eq!(
            token_out(out_sa::WRITE_USING_TOKEN, 0xa1b2_c3d4, 0x228),
            [
                0x83, 0x11, 0, 0, 0, 0, // WRITE USING TOKEN, reserved
                0xa1, 0xb2, 0xc3, 0xd4, // LIST IDENTIFIER
                0, 0, 0x02, 0x28, // PARAMETER LIST LENGTH
                0, 0, // GROUP NUMBER, CONTROL
            ]
        );
        assert_eq!(
            copy_operation_abort(7),
            [0x83, 0x1c, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            receive_lid1(in_sa::COPY_STATUS_LID1, 0x5a, 0x100),
            [0x84, 0x00, 0x5a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            receive_lid4(in_sa::ROD_TOKEN_INFORMATION, 0x0102_0304, 0x1000),
            [0x84, 0x07, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]
        );
        assert_eq!(inquiry(Some(0x8f), 0x1000), [0x12, 1, 0x8f, 0x10, 0, 0]);
        assert_eq!(inquiry(None, 96), [0x12, 0, 0, 0, 96, 0]);
        assert_eq!(
            rsoc_one(0x84, 0x07, 64),
            [0xa3, 0x0c, 0x02, 0x84, 0, 7, 0, 0, 0, 64, 0, 0]
        );
        assert_eq!(
            read16(0x10, 8),
            [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0]
        );
    }

    fn naa() -> CscdId {
        CscdId::new(
            0x14,
            1,
            3,
            &[0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
            4096,
        )
    }

    #[test]
    fn cscd_e4() {
        let d = naa().encode();
        assert_eq!(
            d,
            [
                0xe4, // DESCRIPTOR TYPE CODE: identification descriptor
                0x14, // LU ID TYPE 00b, NUL 0, PERIPHERAL DEVICE TYPE 14h
                0, 0,    // RELATIVE INITIATOR PORT IDENTIFIER
                0x01, // CODE SET binary
                0x03, // ASSOCIATION 00b (LU), DESIGNATOR TYPE 3h (NAA)
                0,    // reserved
                16,   // DESIGNATOR LENGTH
                0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, // NAA
                0, 0, 0, 0, // designator padding to 20 bytes
                0, // PAD 0
                0, 0x10, 0, // DISK BLOCK LENGTH 4096
            ]
        );
    }

    #[test]
    fn segments() {
        let s = Segment::B2B {
            src: 0,
            dst: 1,
            dc: true,
            blocks: 0x20,
            src_lba: 0x100,
            dst_lba: 0x0102_0304_0506_0708,
        };
        assert_eq!(
            s.encode(),
            vec![
                0x02, // block device to block device
                0x02, // DC 1, CAT 0
                0x00, 0x18, // DESCRIPTOR LENGTH 24
                0, 0, // SOURCE CSCD DESCRIPTOR ID
                0, 1, // DESTINATION CSCD DESCRIPTOR ID
                0, 0, // reserved
                0, 0x20, // NUMBER OF BLOCKS
                0, 0, 0, 0, 0, 0, 1, 0, // SOURCE LBA
                1, 2, 3, 4, 5, 6, 7, 8, // DESTINATION LBA
            ]
        );
        let s = Segment::B2BOffset {
            src: 1,
            dst: 0,
            bytes: 0x1234,
            src_lba: 2,
            dst_lba: 3,
            src_off: 0x10,
            dst_off: 0x200,
        };
        assert_eq!(
            s.encode(),
            vec![
                0x0a, 0, // block -> block with offsets, CAT 0
                0x00, 0x1c, // DESCRIPTOR LENGTH 28
                0, 1, 0, 0, // SOURCE / DESTINATION CSCD DESCRIPTOR ID
                0, 0, 0x12, 0x34, // NUMBER OF BYTES
                0, 0, 0, 0, 0, 0, 0, 2, // SOURCE LBA
                0, 0, 0, 0, 0, 0, 0, 3, // DESTINATION LBA
                0, 0x10, 0x02, 0x00, // SOURCE / DESTINATION BYTE OFFSET
            ]
        );
    }

    #[test]
    fn lists() {
        let seg = Segment::B2B {
            src: 0,
            dst: 0,
            dc: false,
            blocks: 1,
            src_lba: 0,
            dst_lba: 1,
        };
        let mut l = CopyList::new(0x1234_56ab, &[naa()], vec![seg.clone(), seg]);
        l.inline = vec![0xee; 4];
        let p = l.lid1();
        assert_eq!(
            &p[..16],
            &[
                0xab, // LIST IDENTIFIER (one byte)
                0x00, // STR 0, LIST ID USAGE 00b, PRIORITY 0
                0, 32, // CSCD DESCRIPTOR LIST LENGTH
                0, 0, 0, 0, // reserved
                0, 0, 0, 56, // SEGMENT DESCRIPTOR LIST LENGTH
                0, 0, 0, 4, // INLINE DATA LENGTH
            ]
        );
        assert_eq!(p.len(), 16 + 32 + 56 + 4);
        assert_eq!(p[16], 0xe4);
        assert_eq!(p[48], 0x02);
        assert_eq!(p[76], 0x02);
        assert_eq!(&p[104..], &[0xee; 4]);
        assert_eq!(l.segment_offset(LID1_HEADER, 1), 76);
        let p = l.lid4();
        let mut want = [0u8; 48];
        want[0] = 0x01; // LIST FORMAT
        want[20..24].copy_from_slice(&[0x12, 0x34, 0x56, 0xab]); // LIST IDENTIFIER
        want[42..44].copy_from_slice(&[0, 32]); // CSCD DESCRIPTOR LIST LENGTH
        want[44..46].copy_from_slice(&[0, 56]); // SEGMENT DESCRIPTOR LIST LENGTH
        want[46..48].copy_from_slice(&[0, 4]); // INLINE DATA LENGTH
        assert_eq!(&p[..48], &want);
        assert_eq!(p.len(), 48 + 32 + 56 + 4);
        assert_eq!(p[48], 0xe4);
        l.usage = ListIdUsage::None;
        assert_eq!(l.lid1()[1], 0x18);
        l.usage = ListIdUsage::NoHold;
        assert_eq!(l.lid4()[1], 0x10);
    }

    #[test]
    fn token_lists() {
        let p = populate_token_params(30, None, &[(0x10, 8), (0x40, 2)]);
        assert_eq!(
            &p[..16],
            &[
                0, 46, // POPULATE TOKEN DATA LENGTH: 48 - 2
                0, 0, // RTV 0, IMMED 0, reserved
                0, 0, 0, 30, // INACTIVITY TIMEOUT
                0, 0, 0, 0, // ROD TYPE (ignored without RTV)
                0, 0, // reserved
                0, 32, // BLOCK DEVICE RANGE DESCRIPTOR LIST LENGTH
            ]
        );
        assert_eq!(
            &p[16..32],
            &[0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0]
        );
        let p = populate_token_params(0, Some(0x0001_0000), &[(0, 1)]);
        assert_eq!((p[2], &p[8..12]), (0x02, &[0u8, 1, 0, 0][..]));

        let t = zero_rod_token();
        assert_eq!(&t[..8], &[0xff, 0xff, 0, 1, 0, 0, 0x01, 0xf8]);
        assert!(t[8..].iter().all(|&b| b == 0));
        let p = write_using_token_params(&t, 5, &[(0x20, 16)]);
        assert_eq!(p.len(), 552);
        assert_eq!(&p[..2], &[0x02, 0x26]); // 552 - 2
        assert_eq!(&p[8..16], &[0, 0, 0, 0, 0, 0, 0, 5]); // OFFSET INTO ROD
        assert_eq!(&p[16..24], &t[..8]); // ROD TOKEN
        assert_eq!(&p[534..536], &[0, 16]); // range list length
        assert_eq!(&p[536..548], &[0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 16]);
    }
}
