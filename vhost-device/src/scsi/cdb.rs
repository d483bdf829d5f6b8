//! Typed CDB decoding: one struct per CDB, decoded from big-endian bytes.
//!
//! Each CDB type carries its CDB USAGE DATA bitmap (SPC-5, the bits
//! the device server evaluates, byte 0 being the operation code). Decoding
//! checks the length, the operation code (and service action), and that no
//! bit outside the usage bitmap is set: a set reserved bit, an unsupported
//! option bit such as RDPROTECT, or NACA in the CONTROL byte is reported as
//! an [`DecodeError::InvalidField`] naming the byte and the bit, which
//! becomes INVALID FIELD IN CDB with a field pointer. The same bitmaps are
//! what REPORT SUPPORTED OPERATION CODES returns, through the command
//! table.

use std::fmt::Debug;

/// Why a CDB was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The CDB is shorter than its operation code's CDB length.
    TooShort { need: usize, got: usize },
    /// A field holds a value that is reserved or not supported; `bit` is
    /// the most significant offending bit, if the error is about bits.
    InvalidField { byte: u16, bit: Option<u8> },
}

pub(super) fn invalid(byte: u16, bit: Option<u8>) -> DecodeError {
    DecodeError::InvalidField { byte, bit }
}

/// The first `N` bytes of `cdb`, checked against `usage` (which must be `N`
/// bytes long): the operation code must equal `usage[0]`, and no bit outside
/// `usage` may be set in the other bytes.
pub(super) fn prefix<const N: usize>(cdb: &[u8], usage: &[u8]) -> Result<[u8; N], DecodeError> {
    let b: [u8; N] = cdb
        .get(..N)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError::TooShort {
            need: N,
            got: cdb.len(),
        })?;
    if b.first() != usage.first() {
        return Err(invalid(0, Some(7)));
    }
    for (i, (&v, &u)) in b.iter().zip(usage).enumerate().skip(1) {
        let bad = v & !u;
        if bad != 0 {
            // The highest set bit of `bad`: 7 - leading zeros, in 0..=7.
            let bit = 7 - bad.leading_zeros() as u8;
            return Err(invalid(i as u16, Some(bit)));
        }
    }
    Ok(b)
}

/// Check the 5-bit SERVICE ACTION field in byte 1.
pub(super) fn service_action(b1: u8, sa: u8) -> Result<(), DecodeError> {
    if b1 & 0x1f != sa {
        return Err(invalid(1, Some(4)));
    }
    Ok(())
}

fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

fn be64(b: [u8; 8]) -> u64 {
    u64::from_be_bytes(b)
}

fn put(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

fn bit(v: bool, mask: u8) -> u8 {
    if v {
        mask
    } else {
        0
    }
}

/// A CDB type.
pub trait Cdb: Sized + Copy + PartialEq + Debug {
    /// Operation code.
    const OPCODE: u8;
    /// Service action, for operation codes that have them.
    const SERVICE_ACTION: Option<u8> = None;
    /// The CDB USAGE DATA: as many bytes as the CDB, byte 0 the operation
    /// code, else a bit set for each bit the device server evaluates.
    const USAGE: &'static [u8];
    /// Decode from the start of `cdb` (which may be longer).
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError>;
    /// The CDB bytes (CONTROL byte zero).
    fn encode(&self) -> Vec<u8>;
}

/// TEST UNIT READY (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestUnitReady;

impl Cdb for TestUnitReady {
    const OPCODE: u8 = 0x00;
    const USAGE: &'static [u8] = &[0x00, 0, 0, 0, 0, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        prefix::<6>(cdb, Self::USAGE)?;
        Ok(TestUnitReady)
    }
    fn encode(&self) -> Vec<u8> {
        vec![Self::OPCODE, 0, 0, 0, 0, 0]
    }
}

/// REQUEST SENSE (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSense {
    pub desc: bool,
    pub alloc_len: u8,
}

impl Cdb for RequestSense {
    const OPCODE: u8 = 0x03;
    const USAGE: &'static [u8] = &[0x03, 0x01, 0, 0, 0xff, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<6>(cdb, Self::USAGE)?;
        Ok(RequestSense {
            desc: b[1] & 1 != 0,
            alloc_len: b[4],
        })
    }
    fn encode(&self) -> Vec<u8> {
        vec![Self::OPCODE, bit(self.desc, 1), 0, 0, self.alloc_len, 0]
    }
}

/// INQUIRY (SPC-5). CMDDT (byte 1 bit 1) is not in the usage bitmap, so
/// a set CMDDT is refused with a field pointer at byte 1 bit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inquiry {
    pub evpd: bool,
    pub page_code: u8,
    pub alloc_len: u16,
}

impl Cdb for Inquiry {
    const OPCODE: u8 = 0x12;
    const USAGE: &'static [u8] = &[0x12, 0x01, 0xff, 0xff, 0xff, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<6>(cdb, Self::USAGE)?;
        Ok(Inquiry {
            evpd: b[1] & 1 != 0,
            page_code: b[2],
            alloc_len: be16([b[3], b[4]]),
        })
    }
    fn encode(&self) -> Vec<u8> {
        let [hi, lo] = self.alloc_len.to_be_bytes();
        vec![Self::OPCODE, bit(self.evpd, 1), self.page_code, hi, lo, 0]
    }
}

/// The fields MODE SENSE(6) and MODE SENSE(10) share (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense {
    /// MODE SENSE(10) (else (6)).
    pub ten: bool,
    pub llbaa: bool,
    pub dbd: bool,
    /// PAGE CONTROL: 0 current, 1 changeable, 2 default, 3 saved.
    pub pc: u8,
    pub page: u8,
    pub subpage: u8,
    pub alloc_len: u16,
}

/// MODE SENSE(6) (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense6(pub ModeSense);

impl Cdb for ModeSense6 {
    const OPCODE: u8 = 0x1a;
    const USAGE: &'static [u8] = &[0x1a, 0x08, 0xff, 0xff, 0xff, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<6>(cdb, Self::USAGE)?;
        Ok(ModeSense6(ModeSense {
            ten: false,
            llbaa: false,
            dbd: b[1] & 0x08 != 0,
            pc: b[2] >> 6,
            page: b[2] & 0x3f,
            subpage: b[3],
            alloc_len: u16::from(b[4]),
        }))
    }
    fn encode(&self) -> Vec<u8> {
        let m = &self.0;
        vec![
            Self::OPCODE,
            bit(m.dbd, 0x08),
            (m.pc << 6) | (m.page & 0x3f),
            m.subpage,
            m.alloc_len as u8,
            0,
        ]
    }
}

/// MODE SENSE(10) (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSense10(pub ModeSense);

impl Cdb for ModeSense10 {
    const OPCODE: u8 = 0x5a;
    const USAGE: &'static [u8] = &[0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<10>(cdb, Self::USAGE)?;
        Ok(ModeSense10(ModeSense {
            ten: true,
            llbaa: b[1] & 0x10 != 0,
            dbd: b[1] & 0x08 != 0,
            pc: b[2] >> 6,
            page: b[2] & 0x3f,
            subpage: b[3],
            alloc_len: be16([b[7], b[8]]),
        }))
    }
    fn encode(&self) -> Vec<u8> {
        let m = &self.0;
        let [hi, lo] = m.alloc_len.to_be_bytes();
        vec![
            Self::OPCODE,
            bit(m.llbaa, 0x10) | bit(m.dbd, 0x08),
            (m.pc << 6) | (m.page & 0x3f),
            m.subpage,
            0,
            0,
            0,
            hi,
            lo,
            0,
        ]
    }
}

/// REPORT LUNS (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportLuns {
    pub select_report: u8,
    pub alloc_len: u32,
}

impl Cdb for ReportLuns {
    const OPCODE: u8 = 0xa0;
    const USAGE: &'static [u8] = &[0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<12>(cdb, Self::USAGE)?;
        Ok(ReportLuns {
            select_report: b[2],
            alloc_len: be32([b[6], b[7], b[8], b[9]]),
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 12];
        put(&mut c, &[Self::OPCODE, 0, self.select_report]);
        put(&mut c[6..], &self.alloc_len.to_be_bytes());
        c
    }
}

/// REPORT SUPPORTED OPERATION CODES (SPC-5), MAINTENANCE IN A3h/0Ch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportSupportedOpcodes {
    pub rctd: bool,
    pub options: u8,
    pub opcode: u8,
    pub service_action: u16,
    pub alloc_len: u32,
}

impl Cdb for ReportSupportedOpcodes {
    const OPCODE: u8 = 0xa3;
    const SERVICE_ACTION: Option<u8> = Some(0x0c);
    const USAGE: &'static [u8] = &[
        0xa3, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
    ];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<12>(cdb, Self::USAGE)?;
        service_action(b[1], 0x0c)?;
        Ok(ReportSupportedOpcodes {
            rctd: b[2] & 0x80 != 0,
            options: b[2] & 0x07,
            opcode: b[3],
            service_action: be16([b[4], b[5]]),
            alloc_len: be32([b[6], b[7], b[8], b[9]]),
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 12];
        put(
            &mut c,
            &[
                Self::OPCODE,
                0x0c,
                bit(self.rctd, 0x80) | (self.options & 0x07),
                self.opcode,
            ],
        );
        put(&mut c[4..], &self.service_action.to_be_bytes());
        put(&mut c[6..], &self.alloc_len.to_be_bytes());
        c
    }
}

/// READ CAPACITY(10) (SBC-4). The LBA field and the PMI bit are
/// obsolete in SBC-4; the SBC-3 rule (LBA non-zero with PMI zero is an
/// invalid field) is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCapacity10 {
    pub lba: u32,
    pub pmi: bool,
}

impl Cdb for ReadCapacity10 {
    const OPCODE: u8 = 0x25;
    const USAGE: &'static [u8] = &[0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<10>(cdb, Self::USAGE)?;
        Ok(ReadCapacity10 {
            lba: be32([b[2], b[3], b[4], b[5]]),
            pmi: b[8] & 1 != 0,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 10];
        c[0] = Self::OPCODE;
        put(&mut c[2..], &self.lba.to_be_bytes());
        c[8] = u8::from(self.pmi);
        c
    }
}

/// READ CAPACITY(16) (SBC-4), SERVICE ACTION IN(16) 9Eh/10h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadCapacity16 {
    pub lba: u64,
    pub alloc_len: u32,
    pub pmi: bool,
}

impl Cdb for ReadCapacity16 {
    const OPCODE: u8 = 0x9e;
    const SERVICE_ACTION: Option<u8> = Some(0x10);
    const USAGE: &'static [u8] = &[
        0x9e, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
    ];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<16>(cdb, Self::USAGE)?;
        service_action(b[1], 0x10)?;
        Ok(ReadCapacity16 {
            lba: be64([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            alloc_len: be32([b[10], b[11], b[12], b[13]]),
            pmi: b[14] & 1 != 0,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 16];
        put(&mut c, &[Self::OPCODE, 0x10]);
        put(&mut c[2..], &self.lba.to_be_bytes());
        put(&mut c[10..], &self.alloc_len.to_be_bytes());
        c[14] = u8::from(self.pmi);
        c
    }
}

/// What READ and WRITE of every size share, for the SBC handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RwArgs {
    pub lba: u64,
    /// Transfer length in logical blocks (READ(6)/WRITE(6) 0 already
    /// turned into 256).
    pub blocks: u32,
    pub fua: bool,
    /// CDB byte of the LBA field, for field pointers.
    pub lba_field: u16,
    /// CDB byte of the TRANSFER LENGTH field, for field pointers.
    pub len_field: u16,
}

macro_rules! rw6 {
    ($(#[$doc:meta])* $name:ident, $op:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            /// 21-bit LBA.
            pub lba: u32,
            /// TRANSFER LENGTH as in the CDB: 0 means 256 blocks.
            pub len: u8,
        }

        impl Cdb for $name {
            const OPCODE: u8 = $op;
            const USAGE: &'static [u8] = &[$op, 0x1f, 0xff, 0xff, 0xff, 0];
            fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
                let b = prefix::<6>(cdb, Self::USAGE)?;
                Ok($name {
                    lba: be32([0, b[1] & 0x1f, b[2], b[3]]),
                    len: b[4],
                })
            }
            fn encode(&self) -> Vec<u8> {
                let [_, a, b, c] = (self.lba & 0x1f_ffff).to_be_bytes();
                vec![Self::OPCODE, a, b, c, self.len, 0]
            }
        }

        impl From<$name> for RwArgs {
            fn from(c: $name) -> RwArgs {
                RwArgs {
                    lba: u64::from(c.lba),
                    blocks: if c.len == 0 { 256 } else { u32::from(c.len) },
                    fua: false,
                    lba_field: 1,
                    len_field: 4,
                }
            }
        }
    };
}

macro_rules! rw10 {
    ($(#[$doc:meta])* $name:ident, $op:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            pub lba: u32,
            pub len: u16,
            pub dpo: bool,
            pub fua: bool,
        }

        impl Cdb for $name {
            const OPCODE: u8 = $op;
            const USAGE: &'static [u8] = &[$op, 0x18, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0];
            fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
                let b = prefix::<10>(cdb, Self::USAGE)?;
                Ok($name {
                    dpo: b[1] & 0x10 != 0,
                    fua: b[1] & 0x08 != 0,
                    lba: be32([b[2], b[3], b[4], b[5]]),
                    len: be16([b[7], b[8]]),
                })
            }
            fn encode(&self) -> Vec<u8> {
                let mut c = vec![0u8; 10];
                c[0] = Self::OPCODE;
                c[1] = bit(self.dpo, 0x10) | bit(self.fua, 0x08);
                put(&mut c[2..], &self.lba.to_be_bytes());
                put(&mut c[7..], &self.len.to_be_bytes());
                c
            }
        }

        impl From<$name> for RwArgs {
            fn from(c: $name) -> RwArgs {
                RwArgs {
                    lba: u64::from(c.lba),
                    blocks: u32::from(c.len),
                    fua: c.fua,
                    lba_field: 2,
                    len_field: 7,
                }
            }
        }
    };
}

macro_rules! rw16 {
    ($(#[$doc:meta])* $name:ident, $op:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            pub lba: u64,
            pub len: u32,
            pub dpo: bool,
            pub fua: bool,
        }

        impl Cdb for $name {
            const OPCODE: u8 = $op;
            const USAGE: &'static [u8] = &[
                $op, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0, 0,
            ];
            fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
                let b = prefix::<16>(cdb, Self::USAGE)?;
                Ok($name {
                    dpo: b[1] & 0x10 != 0,
                    fua: b[1] & 0x08 != 0,
                    lba: be64([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
                    len: be32([b[10], b[11], b[12], b[13]]),
                })
            }
            fn encode(&self) -> Vec<u8> {
                let mut c = vec![0u8; 16];
                c[0] = Self::OPCODE;
                c[1] = bit(self.dpo, 0x10) | bit(self.fua, 0x08);
                put(&mut c[2..], &self.lba.to_be_bytes());
                put(&mut c[10..], &self.len.to_be_bytes());
                c
            }
        }

        impl From<$name> for RwArgs {
            fn from(c: $name) -> RwArgs {
                RwArgs {
                    lba: c.lba,
                    blocks: c.len,
                    fua: c.fua,
                    lba_field: 2,
                    len_field: 10,
                }
            }
        }
    };
}

rw6!(
    /// READ(6) (SBC-4).
    Read6,
    0x08
);
rw6!(
    /// WRITE(6) (SBC-4).
    Write6,
    0x0a
);
rw10!(
    /// READ(10) (SBC-4). RDPROTECT and RARC are refused (no protection
    /// information, no rebuild assist).
    Read10,
    0x28
);
rw10!(
    /// WRITE(10) (SBC-4). WRPROTECT is refused.
    Write10,
    0x2a
);
rw16!(
    /// READ(16) (SBC-4). RDPROTECT, RARC, DLD and GROUP NUMBER are
    /// refused.
    Read16,
    0x88
);
rw16!(
    /// WRITE(16) (SBC-4). WRPROTECT, DLD and GROUP NUMBER are refused.
    Write16,
    0x8a
);

/// BYTCHK of VERIFY (SBC-4 r22 5.33 VERIFY (10) command, the
/// BYTCHK field table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteCheck {
    /// 00b: verify the medium; no Data-Out.
    Medium,
    /// 01b: compare the medium with VERIFICATION LENGTH blocks of Data-Out.
    DataOut,
    /// 11b: compare every block with the one block of Data-Out.
    OneBlock,
}

/// VERIFY (16) (SBC-4 r22 5.35, table "VERIFY (16) command"; the
/// fields as VERIFY (10), 5.33). VRPROTECT (byte 1, bits 7-5) must be 000b
/// (no protection information) and BYTCHK 10b is reserved: both INVALID
/// FIELD IN CDB pointing at the field's first bit. GROUP NUMBER is refused,
/// DPO needs nothing (there is no read cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verify16 {
    pub dpo: bool,
    pub bytchk: ByteCheck,
    pub lba: u64,
    /// VERIFICATION LENGTH in logical blocks; 0 verifies nothing.
    pub len: u32,
}

impl Verify16 {
    /// The bits decode reads: USAGE plus VRPROTECT, so a set VRPROTECT is
    /// named as the field (bit 7), not as its highest set bit.
    const FIELDS: [u8; 16] = [
        0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
    ];
}

impl Cdb for Verify16 {
    const OPCODE: u8 = 0x8f;
    const USAGE: &'static [u8] = &[
        0x8f, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
    ];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<16>(cdb, &Self::FIELDS)?;
        if b[1] & 0xe0 != 0 {
            return Err(invalid(1, Some(7)));
        }
        let bytchk = match (b[1] >> 1) & 0x03 {
            0b00 => ByteCheck::Medium,
            0b01 => ByteCheck::DataOut,
            0b11 => ByteCheck::OneBlock,
            _ => return Err(invalid(1, Some(2))),
        };
        Ok(Verify16 {
            dpo: b[1] & 0x10 != 0,
            bytchk,
            lba: be64([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            len: be32([b[10], b[11], b[12], b[13]]),
        })
    }
    fn encode(&self) -> Vec<u8> {
        let bytchk = match self.bytchk {
            ByteCheck::Medium => 0b000,
            ByteCheck::DataOut => 0b010,
            ByteCheck::OneBlock => 0b110,
        };
        let mut c = vec![0u8; 16];
        c[0] = Self::OPCODE;
        c[1] = bit(self.dpo, 0x10) | bytchk;
        put(&mut c[2..], &self.lba.to_be_bytes());
        put(&mut c[10..], &self.len.to_be_bytes());
        c
    }
}

/// SYNCHRONIZE CACHE(10) (SBC-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncCache10 {
    pub immed: bool,
    pub lba: u32,
    pub blocks: u16,
}

impl Cdb for SyncCache10 {
    const OPCODE: u8 = 0x35;
    const USAGE: &'static [u8] = &[0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<10>(cdb, Self::USAGE)?;
        Ok(SyncCache10 {
            immed: b[1] & 0x02 != 0,
            lba: be32([b[2], b[3], b[4], b[5]]),
            blocks: be16([b[7], b[8]]),
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 10];
        c[0] = Self::OPCODE;
        c[1] = bit(self.immed, 0x02);
        put(&mut c[2..], &self.lba.to_be_bytes());
        put(&mut c[7..], &self.blocks.to_be_bytes());
        c
    }
}

/// SYNCHRONIZE CACHE(16) (SBC-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncCache16 {
    pub immed: bool,
    pub lba: u64,
    pub blocks: u32,
}

impl Cdb for SyncCache16 {
    const OPCODE: u8 = 0x91;
    const USAGE: &'static [u8] = &[
        0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0,
    ];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<16>(cdb, Self::USAGE)?;
        Ok(SyncCache16 {
            immed: b[1] & 0x02 != 0,
            lba: be64([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            blocks: be32([b[10], b[11], b[12], b[13]]),
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 16];
        c[0] = Self::OPCODE;
        c[1] = bit(self.immed, 0x02);
        put(&mut c[2..], &self.lba.to_be_bytes());
        put(&mut c[10..], &self.blocks.to_be_bytes());
        c
    }
}

/// REPORT ZONES (ZBC-2), ZBC IN 95h/00h.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportZones {
    pub start: u64,
    pub alloc_len: u32,
    pub partial: bool,
    /// REPORTING OPTIONS (6 bits).
    pub options: u8,
}

impl Cdb for ReportZones {
    const OPCODE: u8 = 0x95;
    const SERVICE_ACTION: Option<u8> = Some(0x00);
    const USAGE: &'static [u8] = &[
        0x95, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbf, 0,
    ];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<16>(cdb, Self::USAGE)?;
        service_action(b[1], 0x00)?;
        Ok(ReportZones {
            start: be64([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            alloc_len: be32([b[10], b[11], b[12], b[13]]),
            partial: b[14] & 0x80 != 0,
            options: b[14] & 0x3f,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 16];
        c[0] = Self::OPCODE;
        put(&mut c[2..], &self.start.to_be_bytes());
        put(&mut c[10..], &self.alloc_len.to_be_bytes());
        c[14] = bit(self.partial, 0x80) | (self.options & 0x3f);
        c
    }
}

/// The ZBC OUT (94h) zone actions: CLOSE ZONE (SA 01h, ZBC-2), FINISH
/// ZONE (02h, 5.4), OPEN ZONE (03h, 5.5), RESET WRITE POINTER (04h, 5.6).
/// They share one layout: ZONE ID in bytes 2-9, ZONE COUNT in 12-13, ALL in
/// byte 14 bit 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneActionCdb {
    /// The service action (1..=4).
    pub action: u8,
    pub zone_id: u64,
    pub zone_count: u16,
    pub all: bool,
}

impl ZoneActionCdb {
    pub const ZONE_ID_FIELD: u16 = 2;
    pub const ZONE_COUNT_FIELD: u16 = 12;
}

impl Cdb for ZoneActionCdb {
    const OPCODE: u8 = 0x94;
    const USAGE: &'static [u8] = &[
        0x94, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0x01, 0,
    ];
    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<16>(cdb, Self::USAGE)?;
        let action = b[1] & 0x1f;
        if !(0x01..=0x04).contains(&action) {
            return Err(invalid(1, Some(4)));
        }
        Ok(ZoneActionCdb {
            action,
            zone_id: be64([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            zone_count: be16([b[12], b[13]]),
            all: b[14] & 1 != 0,
        })
    }
    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 16];
        c[0] = Self::OPCODE;
        c[1] = self.action & 0x1f;
        put(&mut c[2..], &self.zone_id.to_be_bytes());
        put(&mut c[12..], &self.zone_count.to_be_bytes());
        c[14] = u8::from(self.all);
        c
    }
}

#[cfg(test)]
mod tests;
