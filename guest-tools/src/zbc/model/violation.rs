//! The violations the model finds, with the sense ZBC-2 names for each.

use super::*;

/// The field a SENSE KEY SPECIFIC field pointer names (SPC-4 4.5.2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Byte `0` of the CDB, bit pointer `1` if any.
    Cdb(u16, Option<u8>),
    /// The standard says the field pointer "should" be set and leaves
    /// which to the device: SKSV 0, or SKSV 1 with C/D 1 and any byte.
    Any,
}

/// A violation the device server reports with CHECK CONDITION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE (21h/00h).
    LbaOutOfRange,
    /// ILLEGAL REQUEST, INVALID FIELD IN CDB (24h/00h).
    InvalidField(Field),
    /// ILLEGAL REQUEST, UNALIGNED WRITE COMMAND (21h/04h).
    UnalignedWrite,
    /// ILLEGAL REQUEST, WRITE BOUNDARY VIOLATION (21h/05h).
    WriteBoundary,
    /// ILLEGAL REQUEST, ATTEMPT TO READ INVALID DATA (21h/06h).
    ReadInvalidData,
    /// ILLEGAL REQUEST, READ BOUNDARY VIOLATION (21h/07h).
    ReadBoundary,
    /// ILLEGAL REQUEST, ATTEMPT TO ACCESS GAP ZONE (21h/09h).
    GapZone,
    /// DATA PROTECT, ZONE IS READ ONLY (27h/08h).
    ReadOnly,
    /// DATA PROTECT, ZONE IS OFFLINE (2Ch/0Eh).
    Offline,
    /// DATA PROTECT, INSUFFICIENT ZONE RESOURCES (55h/0Eh).
    InsufficientResources,
}

/// Sense key ILLEGAL REQUEST.
pub const ILLEGAL_REQUEST: u8 = 0x5;
/// Sense key DATA PROTECT.
pub const DATA_PROTECT: u8 = 0x7;

impl Violation {
    /// Sense key, ASC, ASCQ.
    pub fn key_asc_ascq(self) -> (u8, u8, u8) {
        match self {
            Self::LbaOutOfRange => (ILLEGAL_REQUEST, 0x21, 0x00),
            Self::InvalidField(_) => (ILLEGAL_REQUEST, 0x24, 0x00),
            Self::UnalignedWrite => (ILLEGAL_REQUEST, 0x21, 0x04),
            Self::WriteBoundary => (ILLEGAL_REQUEST, 0x21, 0x05),
            Self::ReadInvalidData => (ILLEGAL_REQUEST, 0x21, 0x06),
            Self::ReadBoundary => (ILLEGAL_REQUEST, 0x21, 0x07),
            Self::GapZone => (ILLEGAL_REQUEST, 0x21, 0x09),
            Self::ReadOnly => (DATA_PROTECT, 0x27, 0x08),
            Self::Offline => (DATA_PROTECT, 0x2c, 0x0e),
            Self::InsufficientResources => (DATA_PROTECT, 0x55, 0x0e),
        }
    }

    /// The 18 bytes of fixed-format sense data (SPC-4 4.5.3, response code
    /// 70h, current error) the device server returns, INFORMATION not
    /// valid; the SENSE KEY SPECIFIC field holds the field pointer of
    /// [`Field::Cdb`] and is zero otherwise.
    pub fn fixed_sense(self) -> [u8; 18] {
        let (key, asc, ascq) = self.key_asc_ascq();
        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = key;
        s[7] = 10;
        s[12] = asc;
        s[13] = ascq;
        if let Self::InvalidField(Field::Cdb(byte, bit)) = self {
            // SKSV, C/D = 1 (CDB), BPV and BIT POINTER, FIELD POINTER.
            s[15] = 0x80 | 0x40 | bit.map_or(0, |b| 0x08 | (b & 7));
            s[16..18].copy_from_slice(&byte.to_be_bytes());
        }
        s
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, a, q) = self.key_asc_ascq();
        let name = match self {
            Self::LbaOutOfRange => "LBA OUT OF RANGE",
            Self::InvalidField(_) => "INVALID FIELD IN CDB",
            Self::UnalignedWrite => "UNALIGNED WRITE COMMAND",
            Self::WriteBoundary => "WRITE BOUNDARY VIOLATION",
            Self::ReadInvalidData => "ATTEMPT TO READ INVALID DATA",
            Self::ReadBoundary => "READ BOUNDARY VIOLATION",
            Self::GapZone => "ATTEMPT TO ACCESS GAP ZONE",
            Self::ReadOnly => "ZONE IS READ ONLY",
            Self::Offline => "ZONE IS OFFLINE",
            Self::InsufficientResources => "INSUFFICIENT ZONE RESOURCES",
        };
        write!(f, "{name} ({k:x}/{a:02x}/{q:02x})")?;
        if let Self::InvalidField(Field::Cdb(b, bit)) = self {
            write!(f, " field pointer byte {b}")?;
            if let Some(bit) = bit {
                write!(f, " bit {bit}")?;
            }
        }
        Ok(())
    }
}
