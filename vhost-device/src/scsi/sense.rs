//! Sense data (SPC-5) as typed values, and the one place where storage
//! core errors and CDB decode errors become sense data.
//!
//! Sense key, ASC and ASCQ values are from SPC-5 (sense key descriptions)
//! and the T10 ASC/ASCQ assignments (<https://www.t10.org/lists/asc-num.htm>);
//! the zoned ones (21h/04h-09h, 27h/08h, 2Ch/0Eh, 55h/0Eh) are those ZBC-2
//! (INCITS 550) requires.

use std::fmt;

use super::cdb::DecodeError;
use crate::storage::{StorageError, ZoneCondition};

/// The SENSE KEY field (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SenseKey {
    /// Nothing to report (REQUEST SENSE with nothing pending).
    NoSense = 0x0,
    /// The logical unit cannot be accessed.
    NotReady = 0x2,
    /// A flaw in the medium or the recorded data (an unreadable block).
    MediumError = 0x3,
    /// A failure of the device itself (an I/O error of the backing file).
    HardwareError = 0x4,
    /// A bad CDB or parameter list; nothing was done.
    IllegalRequest = 0x5,
    /// A change the initiator should know of (a reset, new parameters).
    UnitAttention = 0x6,
    /// A write to a write-protected block (a READ ONLY zone).
    DataProtect = 0x7,
    /// An EXTENDED COPY or WRITE USING TOKEN stopped part way.
    CopyAborted = 0xa,
    /// The device server aborted the command.
    AbortedCommand = 0xb,
    /// The source data did not match the medium (VERIFY).
    Miscompare = 0xe,
}

/// An ADDITIONAL SENSE CODE and ADDITIONAL SENSE CODE QUALIFIER pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asc {
    pub asc: u8,
    pub ascq: u8,
}

const fn asc(asc: u8, ascq: u8) -> Asc {
    Asc { asc, ascq }
}

impl Asc {
    pub const NO_ADDITIONAL_SENSE: Asc = asc(0x00, 0x00);
    pub const OPERATION_IN_PROGRESS: Asc = asc(0x00, 0x16);
    pub const COPY_TARGET_DEVICE_NOT_REACHABLE: Asc = asc(0x0d, 0x02);
    pub const INCORRECT_COPY_TARGET_DEVICE_TYPE: Asc = asc(0x0d, 0x03);
    pub const COPY_TARGET_DEVICE_DATA_UNDERRUN: Asc = asc(0x0d, 0x04);
    pub const COPY_TARGET_DEVICE_DATA_OVERRUN: Asc = asc(0x0d, 0x05);
    pub const WRITE_ERROR: Asc = asc(0x0c, 0x00);
    pub const UNRECOVERED_READ_ERROR: Asc = asc(0x11, 0x00);
    pub const MISCOMPARE_DURING_VERIFY_OPERATION: Asc = asc(0x1d, 0x00);
    pub const PARAMETER_LIST_LENGTH_ERROR: Asc = asc(0x1a, 0x00);
    pub const INVALID_COMMAND_OPERATION_CODE: Asc = asc(0x20, 0x00);
    pub const LBA_OUT_OF_RANGE: Asc = asc(0x21, 0x00);
    pub const UNALIGNED_WRITE_COMMAND: Asc = asc(0x21, 0x04);
    pub const WRITE_BOUNDARY_VIOLATION: Asc = asc(0x21, 0x05);
    pub const ATTEMPT_TO_READ_INVALID_DATA: Asc = asc(0x21, 0x06);
    pub const READ_BOUNDARY_VIOLATION: Asc = asc(0x21, 0x07);
    pub const ATTEMPT_TO_ACCESS_GAP_ZONE: Asc = asc(0x21, 0x09);
    pub const INVALID_TOKEN_OPERATION_CAUSE_NOT_REPORTABLE: Asc = asc(0x23, 0x00);
    pub const INVALID_TOKEN_OPERATION_UNSUPPORTED_TOKEN_TYPE: Asc = asc(0x23, 0x01);
    pub const INVALID_TOKEN_OPERATION_TOKEN_UNKNOWN: Asc = asc(0x23, 0x04);
    pub const INVALID_TOKEN_OPERATION_TOKEN_CORRUPT: Asc = asc(0x23, 0x05);
    pub const INVALID_TOKEN_OPERATION_TOKEN_EXPIRED: Asc = asc(0x23, 0x07);
    pub const INVALID_TOKEN_OPERATION_TOKEN_CANCELLED: Asc = asc(0x23, 0x08);
    pub const INVALID_TOKEN_OPERATION_TOKEN_DELETED: Asc = asc(0x23, 0x09);
    pub const INVALID_TOKEN_OPERATION_INVALID_TOKEN_LENGTH: Asc = asc(0x23, 0x0a);
    pub const INVALID_FIELD_IN_CDB: Asc = asc(0x24, 0x00);
    pub const LOGICAL_UNIT_NOT_SUPPORTED: Asc = asc(0x25, 0x00);
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Asc = asc(0x26, 0x00);
    pub const TOO_MANY_TARGET_DESCRIPTORS: Asc = asc(0x26, 0x06);
    pub const UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE: Asc = asc(0x26, 0x07);
    pub const TOO_MANY_SEGMENT_DESCRIPTORS: Asc = asc(0x26, 0x08);
    pub const UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE: Asc = asc(0x26, 0x09);
    pub const UNEXPECTED_INEXACT_SEGMENT: Asc = asc(0x26, 0x0a);
    pub const INLINE_DATA_LENGTH_EXCEEDED: Asc = asc(0x26, 0x0b);
    pub const WRITE_PROTECTED: Asc = asc(0x27, 0x00);
    pub const SPACE_ALLOCATION_FAILED_WRITE_PROTECT: Asc = asc(0x27, 0x07);
    pub const ZONE_IS_READ_ONLY: Asc = asc(0x27, 0x08);
    pub const ZONE_IS_OFFLINE: Asc = asc(0x2c, 0x0e);
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Asc = asc(0x39, 0x00);
    pub const INTERNAL_TARGET_FAILURE: Asc = asc(0x44, 0x00);
    pub const INSUFFICIENT_ZONE_RESOURCES: Asc = asc(0x55, 0x0e);
}

/// Where a sense-key-specific FIELD POINTER points (SPC-5, field pointer
/// sense key specific data): a byte of the CDB (C/D = 1) or of the parameter list (C/D = 0), and
/// optionally the most significant bit of the offending field (BPV = 1).
///
/// With the COPY ABORTED sense key the same three bytes are the SEGMENT
/// POINTER (SPC-5): bit 5 is SD, set when the FIELD POINTER is relative to
/// the start of the segment descriptor whose number is in bytes 2-3 of the
/// COMMAND-SPECIFIC INFORMATION field, clear when it is relative to the
/// start of the parameter list; bit 6 is reserved there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldPointer {
    pub in_cdb: bool,
    /// SD of a segment pointer (COPY ABORTED only).
    pub in_segment: bool,
    pub byte: u16,
    pub bit: Option<u8>,
}

impl FieldPointer {
    /// A field of the CDB.
    pub const fn cdb(byte: u16, bit: Option<u8>) -> Self {
        FieldPointer {
            in_cdb: true,
            in_segment: false,
            byte,
            bit,
        }
    }

    /// A field of the parameter list (C/D = 0; with COPY ABORTED, a
    /// segment pointer with SD = 0).
    pub const fn param(byte: u16, bit: Option<u8>) -> Self {
        FieldPointer {
            in_cdb: false,
            in_segment: false,
            byte,
            bit,
        }
    }

    /// A segment pointer (COPY ABORTED) with SD = 1: `byte` of the segment
    /// descriptor named by the COMMAND-SPECIFIC INFORMATION.
    pub const fn segment(byte: u16, bit: Option<u8>) -> Self {
        FieldPointer {
            in_cdb: false,
            in_segment: true,
            byte,
            bit,
        }
    }

    /// The three sense-key specific bytes, SKSV set (SPC-5).
    fn bytes(self) -> [u8; 3] {
        let mut b0 = 0x80;
        if self.in_cdb {
            b0 |= 0x40;
        }
        if self.in_segment {
            b0 |= 0x20;
        }
        if let Some(bit) = self.bit {
            b0 |= 0x08 | (bit & 0x07);
        }
        let [hi, lo] = self.byte.to_be_bytes();
        [b0, hi, lo]
    }
}

/// Sense data to return with CHECK CONDITION (or as REQUEST SENSE data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: SenseKey,
    pub asc: Asc,
    pub field: Option<FieldPointer>,
    /// INFORMATION field, VALID set when present (fixed format keeps the
    /// low 32 bits).
    pub info: Option<u64>,
    /// COMMAND-SPECIFIC INFORMATION field (0: none).
    pub csi: u64,
}

impl Sense {
    pub const fn new(key: SenseKey, asc: Asc) -> Self {
        Sense {
            key,
            asc,
            field: None,
            info: None,
            csi: 0,
        }
    }

    /// ILLEGAL REQUEST with `asc` and a field pointer into the parameter
    /// list (C/D = 0).
    pub const fn param(asc: Asc, byte: u16, bit: Option<u8>) -> Self {
        Sense {
            key: SenseKey::IllegalRequest,
            asc,
            field: Some(FieldPointer::param(byte, bit)),
            info: None,
            csi: 0,
        }
    }

    /// ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST, field pointer at
    /// `byte` (and `bit`) of the parameter list.
    pub const fn invalid_param(byte: u16, bit: Option<u8>) -> Self {
        Sense::param(Asc::INVALID_FIELD_IN_PARAMETER_LIST, byte, bit)
    }

    /// ILLEGAL REQUEST, INVALID FIELD IN CDB, with the field pointer at
    /// `byte` (and `bit`, the field's most significant bit, if given).
    pub const fn invalid_field(byte: u16, bit: Option<u8>) -> Self {
        Sense {
            key: SenseKey::IllegalRequest,
            asc: Asc::INVALID_FIELD_IN_CDB,
            field: Some(FieldPointer::cdb(byte, bit)),
            info: None,
            csi: 0,
        }
    }

    pub const fn illegal(asc: Asc) -> Self {
        Sense::new(SenseKey::IllegalRequest, asc)
    }

    /// NO SENSE: what REQUEST SENSE returns when nothing is pending.
    pub const NO_SENSE: Sense = Sense::new(SenseKey::NoSense, Asc::NO_ADDITIONAL_SENSE);

    /// Fixed format sense data (SPC-5): 18 bytes, response
    /// code 70h (current error), ADDITIONAL SENSE LENGTH 0Ah.
    pub fn fixed(&self) -> [u8; 18] {
        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = self.key as u8;
        // A value that does not fit the 4-byte field is not reported
        // (VALID 0), as SPC-5 asks.
        if let Some(info) = self.info.and_then(|i| u32::try_from(i).ok()) {
            s[0] |= 0x80;
            s[3..7].copy_from_slice(&info.to_be_bytes());
        }
        s[7] = 10;
        s[8..12].copy_from_slice(&(self.csi as u32).to_be_bytes());
        s[12] = self.asc.asc;
        s[13] = self.asc.ascq;
        if let Some(f) = self.field {
            let [a, b, c] = f.bytes();
            s[15] = a;
            s[16] = b;
            s[17] = c;
        }
        s
    }

    /// Descriptor format sense data (SPC-5): response code
    /// 72h, plus a sense key specific descriptor (SPC-5, descriptor type 02h)
    /// when there is a field pointer.
    pub fn descriptor(&self) -> Vec<u8> {
        let mut s = vec![
            0x72,
            self.key as u8,
            self.asc.asc,
            self.asc.ascq,
            0,
            0,
            0,
            0,
        ];
        if let Some(info) = self.info {
            // Information descriptor (type 00h), VALID set.
            s.extend_from_slice(&[0x00, 0x0a, 0x80, 0]);
            s.extend_from_slice(&info.to_be_bytes());
        }
        if self.csi != 0 {
            // Command-specific information descriptor (type 01h).
            s.extend_from_slice(&[0x01, 0x0a, 0, 0]);
            s.extend_from_slice(&self.csi.to_be_bytes());
        }
        if let Some(f) = self.field {
            let [a, b, c] = f.bytes();
            s.extend_from_slice(&[0x02, 0x06, 0, 0, a, b, c, 0]);
        }
        s[7] = u8::try_from(s.len() - 8).unwrap_or(u8::MAX);
        s
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:02x}h/{:02x}h",
            self.key, self.asc.asc, self.asc.ascq
        )?;
        if let Some(p) = self.field {
            write!(f, " field byte {}", p.byte)?;
            if let Some(bit) = p.bit {
                write!(f, " bit {bit}")?;
            }
        }
        Ok(())
    }
}

impl From<DecodeError> for Sense {
    /// A CDB that cannot be decoded.
    fn from(e: DecodeError) -> Self {
        match e {
            // A CDB shorter than its operation code's CDB length. SAM-5 has
            // no dedicated code for a truncated CDB; it is the OPERATION CODE
            // (byte 0) whose implied length cannot be met.
            DecodeError::TooShort { .. } => Sense::invalid_field(0, Some(7)),
            DecodeError::InvalidField { byte, bit } => Sense::invalid_field(byte, bit),
        }
    }
}

/// What the failed storage call was doing, which picks among sense codes
/// that the storage core does not distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Flush,
    ZoneAction,
}

/// Context for [`storage_error_sense`]: the access and the CDB byte of the
/// LBA (or ZONE ID) field, for field pointers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorContext {
    pub access: Access,
    pub lba_field: u16,
}

/// The one mapping from storage core errors to sense data.
///
/// | StorageError | Sense key | ASC/ASCQ | Source |
/// |---|---|---|---|
/// | OutOfRange | ILLEGAL REQUEST | 21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE | SBC-4 (LBA range checks of each command) |
/// | UnalignedWrite | ILLEGAL REQUEST | 21/04 UNALIGNED WRITE COMMAND | ZBC-2 (writes in sequential write required zones) |
/// | WriteBoundary | ILLEGAL REQUEST | 21/05 WRITE BOUNDARY VIOLATION | ZBC-2 (same) |
/// | BeyondZoneCapacity, write (from a sequential zone into its gap zone) | ILLEGAL REQUEST | 21/05 WRITE BOUNDARY VIOLATION | ZBC-2 (a write may not cross its zone's end) |
/// | BeyondZoneCapacity, read (touches a gap zone with URSWRZ 0) | ILLEGAL REQUEST | 21/09 ATTEMPT TO ACCESS GAP ZONE | ZBC-2 (gap zones) |
/// | ZoneFull | ILLEGAL REQUEST | 24/00 INVALID FIELD IN CDB, pointer at the LBA | as Linux scsi_debug's ZBC emulation |
/// | ZoneUnavailable READ ONLY | DATA PROTECT | 27/08 ZONE IS READ ONLY | ZBC-2 (READ ONLY zones) |
/// | ZoneUnavailable OFFLINE | DATA PROTECT | 2C/0E ZONE IS OFFLINE | ZBC-2 (OFFLINE zones) |
/// | InsufficientZoneResources | DATA PROTECT | 55/0E INSUFFICIENT ZONE RESOURCES | ZBC-2 (managing open zone resources) |
/// | NotZoneStart, ConventionalZone | ILLEGAL REQUEST | 24/00 INVALID FIELD IN CDB, pointer at ZONE ID | ZBC-2 (CLOSE/FINISH/OPEN ZONE, RESET WRITE POINTER) |
/// | NotZoned | ILLEGAL REQUEST | 20/00 INVALID COMMAND OPERATION CODE | SPC-5 (command not supported by the LU) |
/// | UnwrittenRead (URSWRZ 0, past a write pointer) | ILLEGAL REQUEST | 21/06 ATTEMPT TO READ INVALID DATA | ZBC-2 (reads of sequential write required zones) |
/// | ReadBoundary (URSWRZ 0, across zones) | ILLEGAL REQUEST | 21/07 READ BOUNDARY VIOLATION | ZBC-2 (same) |
/// | InvalidConditionChange (not from a command) | HARDWARE ERROR | 44/00 INTERNAL TARGET FAILURE | SPC-5 |
/// | PartialBlock (a front end bug) | HARDWARE ERROR | 44/00 INTERNAL TARGET FAILURE | SPC-5 |
/// | UnrecoveredRead (injected media error) | MEDIUM ERROR | 11/00 UNRECOVERED READ ERROR, VALID, INFORMATION = first failing LBA | SPC-4 4.5 sense data, SBC-4 error reporting: INFORMATION holds the LBA of the first block in error |
/// | WriteFault (injected write error) | MEDIUM ERROR | 0C/00 WRITE ERROR, VALID, INFORMATION = first failing LBA | same |
/// | Io ENOSPC/EDQUOT | DATA PROTECT | 27/07 SPACE ALLOCATION FAILED WRITE PROTECT | SBC-4 (thin provisioning) |
/// | Io, read | MEDIUM ERROR | 11/00 UNRECOVERED READ ERROR | SBC-4 |
/// | Io, write or flush | MEDIUM ERROR | 0C/00 WRITE ERROR | SBC-4 |
/// | Io, zone action | HARDWARE ERROR | 44/00 INTERNAL TARGET FAILURE | SPC-5 |
///
/// Checks the front end makes before calling the core (zone layout facts
/// the core does not see, because it has no gap zones):
///
/// | Condition | Sense key | ASC/ASCQ |
/// |---|---|---|
/// | READ or WRITE starting in a gap zone | ILLEGAL REQUEST | 21/09 ATTEMPT TO ACCESS GAP ZONE |
/// | zone action naming the start of a gap zone | ILLEGAL REQUEST | 21/09 ATTEMPT TO ACCESS GAP ZONE |
/// | READ from a conventional into a sequential write required zone | ILLEGAL REQUEST | 21/07 READ BOUNDARY VIOLATION |
/// | zone action with ZONE ID past the last LBA | ILLEGAL REQUEST | 21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE |
/// | ZONE COUNT running past the last zone, or over a gap zone | ILLEGAL REQUEST | 24/00 INVALID FIELD IN CDB, pointer at ZONE COUNT |
///
/// (These and the zoned rows above agree with the expectations of libzbc's
/// ZBC conformance scripts, test/scripts/01_sk_ascq_check and
/// 05_xmr_per_activation.)
pub fn storage_error_sense(err: &StorageError, ctx: ErrorContext) -> Sense {
    use SenseKey::{DataProtect, HardwareError, MediumError};
    let lba_pointer = Sense::invalid_field(ctx.lba_field, Some(7));
    match err {
        StorageError::OutOfRange { .. } => Sense::illegal(Asc::LBA_OUT_OF_RANGE),
        StorageError::UnalignedWrite { .. } => Sense::illegal(Asc::UNALIGNED_WRITE_COMMAND),
        StorageError::WriteBoundary { .. } => Sense::illegal(Asc::WRITE_BOUNDARY_VIOLATION),
        StorageError::BeyondZoneCapacity { .. } => match ctx.access {
            Access::Write => Sense::illegal(Asc::WRITE_BOUNDARY_VIOLATION),
            _ => Sense::illegal(Asc::ATTEMPT_TO_ACCESS_GAP_ZONE),
        },
        StorageError::ZoneFull { .. } => lba_pointer,
        StorageError::ZoneUnavailable { cond, .. } => match cond {
            ZoneCondition::ReadOnly => Sense::new(DataProtect, Asc::ZONE_IS_READ_ONLY),
            ZoneCondition::Offline => Sense::new(DataProtect, Asc::ZONE_IS_OFFLINE),
            _ => Sense::new(HardwareError, Asc::INTERNAL_TARGET_FAILURE),
        },
        StorageError::InsufficientZoneResources { .. } => {
            Sense::new(DataProtect, Asc::INSUFFICIENT_ZONE_RESOURCES)
        }
        StorageError::NotZoneStart { .. } | StorageError::ConventionalZone { .. } => lba_pointer,
        StorageError::NotZoned => Sense::illegal(Asc::INVALID_COMMAND_OPERATION_CODE),
        StorageError::UnwrittenRead { .. } => Sense::illegal(Asc::ATTEMPT_TO_READ_INVALID_DATA),
        StorageError::ReadBoundary { .. } => Sense::illegal(Asc::READ_BOUNDARY_VIOLATION),
        StorageError::InvalidConditionChange { .. } => {
            Sense::new(HardwareError, Asc::INTERNAL_TARGET_FAILURE)
        }
        StorageError::PartialBlock { .. } => {
            Sense::new(HardwareError, Asc::INTERNAL_TARGET_FAILURE)
        }
        StorageError::UnrecoveredRead { lba } => Sense {
            info: Some(lba.get()),
            ..Sense::new(MediumError, Asc::UNRECOVERED_READ_ERROR)
        },
        StorageError::WriteFault { lba } => Sense {
            info: Some(lba.get()),
            ..Sense::new(MediumError, Asc::WRITE_ERROR)
        },
        StorageError::Io(e) => match (e.raw_os_error(), ctx.access) {
            (Some(libc::ENOSPC | libc::EDQUOT), _) => {
                Sense::new(DataProtect, Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT)
            }
            (_, Access::Read) => Sense::new(MediumError, Asc::UNRECOVERED_READ_ERROR),
            (_, Access::Write | Access::Flush) => Sense::new(MediumError, Asc::WRITE_ERROR),
            (_, Access::ZoneAction) => Sense::new(HardwareError, Asc::INTERNAL_TARGET_FAILURE),
        },
    }
}

/// The one mapping from storage core errors met while copying (EXTENDED
/// COPY segments, WRITE USING TOKEN ranges) to an additional sense code.
/// The sense key is COPY ABORTED (SPC-5: errors while processing segment
/// descriptors), with the segment pointer and the residual; the ASC is the
/// one the same failure of a READ (`Access::Read`, the source) or a WRITE
/// (`Access::Write`, the destination) carries in [`storage_error_sense`],
/// except:
///
/// | StorageError | ASC/ASCQ | Why |
/// |---|---|---|
/// | ZoneFull | 21/05 WRITE BOUNDARY VIOLATION | a CDB field pointer (24/00) means nothing in a copy; the write crosses the zone's end |
/// | PartialBlock | 26/0A UNEXPECTED INEXACT SEGMENT | the segment is not a whole number of the destination's blocks |
///
/// So a copy into a sequential write required zone away from its write
/// pointer is COPY ABORTED, 21/04 UNALIGNED WRITE COMMAND; across its end,
/// COPY ABORTED, 21/05 WRITE BOUNDARY VIOLATION; past the capacity, COPY
/// ABORTED, 21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE.
pub fn copy_error_asc(err: &StorageError, access: Access) -> Asc {
    match err {
        StorageError::ZoneFull { .. } => Asc::WRITE_BOUNDARY_VIOLATION,
        StorageError::PartialBlock { .. } => Asc::UNEXPECTED_INEXACT_SEGMENT,
        other => {
            storage_error_sense(
                other,
                ErrorContext {
                    access,
                    lba_field: 0,
                },
            )
            .asc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{BlockCount, Lba};

    const WRITE16: ErrorContext = ErrorContext {
        access: Access::Write,
        lba_field: 2,
    };

    #[test]
    fn fixed_format_with_field_pointer() {
        // SPC-5: INVALID FIELD IN CDB, C/D=1, BPV=1,
        // bit 1 of byte 1.
        assert_eq!(
            Sense::invalid_field(1, Some(1)).fixed(),
            [
                0x70, 0x00, 0x05, 0, 0, 0, 0,    // response code, key, INFORMATION
                0x0a, // additional sense length
                0, 0, 0, 0, // command-specific information
                0x24, 0x00, // ASC/ASCQ
                0x00, // FRU
                0xc9, 0x00, 0x01, // SKSV|C/D|BPV|bit 1, field pointer 0001h
            ]
        );
    }

    #[test]
    fn descriptor_format() {
        assert_eq!(
            Sense::invalid_field(14, None).descriptor(),
            [
                0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0x08, // header
                0x02, 0x06, 0, 0, 0xc0, 0x00, 0x0e, 0x00, // sense key specific
            ]
        );
        assert_eq!(Sense::NO_SENSE.descriptor(), [0x72, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn copy_aborted_with_information_and_segment_pointer() {
        let s = Sense {
            key: SenseKey::CopyAborted,
            asc: Asc::UNALIGNED_WRITE_COMMAND,
            field: Some(FieldPointer::segment(20, Some(7))),
            info: Some(3),
            csi: 2,
        };
        assert_eq!(
            s.fixed(),
            [
                0xf0, 0x00, 0x0a, // VALID, current, COPY ABORTED
                0x00, 0x00, 0x00, 0x03, // INFORMATION: residual 3
                0x0a, // additional sense length
                0x00, 0x00, 0x00, 0x02, // COMMAND-SPECIFIC INFORMATION: segment 2
                0x21, 0x04, 0x00, // ASC/ASCQ, FRU
                0xaf, 0x00, 0x14, // SKSV|SD|BPV|bit 7, byte 20 of the segment
            ]
        );
        assert_eq!(
            s.descriptor(),
            [
                0x72, 0x0a, 0x21, 0x04, 0, 0, 0, 0x20, // header
                0x00, 0x0a, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x03, // information
                0x01, 0x0a, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x02, // command-specific
                0x02, 0x06, 0x00, 0x00, 0xaf, 0x00, 0x14, 0x00, // sense key specific
            ]
        );
        // An INFORMATION value past 32 bits: VALID 0 in fixed format.
        let big = Sense {
            info: Some(1 << 32),
            ..s
        };
        assert_eq!(big.fixed()[..7], [0x70, 0x00, 0x0a, 0, 0, 0, 0]);
    }

    #[test]
    fn storage_errors() {
        let lba = Lba::new(5);
        let count = BlockCount::new(1);
        let f = |e: StorageError, ctx| storage_error_sense(&e, ctx).fixed();
        let write = f(StorageError::UnalignedWrite { lba, wp: lba }, WRITE16);
        assert_eq!((write[2], write[12], write[13]), (0x05, 0x21, 0x04));
        let gap_read = f(
            StorageError::BeyondZoneCapacity { lba, count },
            ErrorContext {
                access: Access::Read,
                lba_field: 2,
            },
        );
        assert_eq!(
            (gap_read[2], gap_read[12], gap_read[13]),
            (0x05, 0x21, 0x09)
        );
        let ro = f(
            StorageError::ZoneUnavailable {
                zone: lba,
                cond: ZoneCondition::ReadOnly,
            },
            WRITE16,
        );
        assert_eq!((ro[2], ro[12], ro[13]), (0x07, 0x27, 0x08));
        let off = f(
            StorageError::ZoneUnavailable {
                zone: lba,
                cond: ZoneCondition::Offline,
            },
            WRITE16,
        );
        assert_eq!((off[2], off[12], off[13]), (0x07, 0x2c, 0x0e));
        let res = f(
            StorageError::InsufficientZoneResources { zone: lba },
            WRITE16,
        );
        assert_eq!((res[2], res[12], res[13]), (0x07, 0x55, 0x0e));
        let full = f(StorageError::ZoneFull { zone: lba }, WRITE16);
        assert_eq!(&full[12..], &[0x24, 0x00, 0x00, 0xcf, 0x00, 0x02]);
        let unwritten = f(StorageError::UnwrittenRead { lba, count }, WRITE16);
        assert_eq!(
            (unwritten[2], unwritten[12], unwritten[13]),
            (0x05, 0x21, 0x06)
        );
        let boundary = f(StorageError::ReadBoundary { lba, count }, WRITE16);
        assert_eq!(
            (boundary[2], boundary[12], boundary[13]),
            (0x05, 0x21, 0x07)
        );
        let nospc = f(
            StorageError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            WRITE16,
        );
        assert_eq!((nospc[2], nospc[12], nospc[13]), (0x07, 0x27, 0x07));
    }
}
