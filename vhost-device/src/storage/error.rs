//! Errors of the storage core. Protocol front ends map each variant to their
//! own status (SCSI sense data, NVMe status) in one place each.

use std::io;

use super::{
    units::{BlockCount, Lba},
    zone::ZoneCondition,
};

/// Why the storage core refused or failed an operation. Every refusal is
/// detected before anything is changed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The range reaches past the end of the device.
    #[error("{lba} + {count} is beyond the device's {capacity}")]
    OutOfRange {
        lba: Lba,
        count: BlockCount,
        capacity: BlockCount,
    },
    /// A write into a sequential write required zone does not start at the
    /// zone's write pointer.
    #[error("write at {lba} is not at the write pointer {wp}")]
    UnalignedWrite { lba: Lba, wp: Lba },
    /// A write crosses the end of its zone (or of the zone's capacity), or
    /// spans a conventional and a sequential zone.
    #[error("write at {lba} for {count} crosses a zone boundary")]
    WriteBoundary { lba: Lba, count: BlockCount },
    /// An access touches the unusable part of a zone between its capacity
    /// and its size.
    #[error("access at {lba} for {count} touches the space past a zone's capacity")]
    BeyondZoneCapacity { lba: Lba, count: BlockCount },
    /// A write into a zone that is FULL.
    #[error("zone at {zone} is full")]
    ZoneFull { zone: Lba },
    /// The zone is READ ONLY or OFFLINE and cannot be written (or, if
    /// OFFLINE, read).
    #[error("zone at {zone} is {cond:?}")]
    ZoneUnavailable { zone: Lba, cond: ZoneCondition },
    /// A device-initiated zone condition change that the zone model does
    /// not allow (only READ ONLY and OFFLINE can be set, and an OFFLINE
    /// zone stays OFFLINE).
    #[error("zone at {zone} cannot go from {from:?} to {to:?}")]
    InvalidConditionChange {
        zone: Lba,
        from: ZoneCondition,
        to: ZoneCondition,
    },
    /// A read touches blocks past the write pointer of a sequential write
    /// required zone while unrestricted reads are off (ZBC-2 URSWRZ = 0).
    #[error("read at {lba} for {count} reaches past a write pointer")]
    UnwrittenRead { lba: Lba, count: BlockCount },
    /// A read crosses a zone boundary where the zone rules forbid it
    /// (ZBC-2 URSWRZ = 0: a read in a sequential write required zone may
    /// not leave it).
    #[error("read at {lba} for {count} crosses a zone boundary")]
    ReadBoundary { lba: Lba, count: BlockCount },
    /// Opening another zone would exceed the open or active zone limit.
    #[error("no zone resources left to open the zone at {zone}")]
    InsufficientZoneResources { zone: Lba },
    /// A zone operation names an LBA that is not the start of a zone.
    #[error("{lba} is not the start of a zone")]
    NotZoneStart { lba: Lba },
    /// A zone operation names a conventional zone.
    #[error("zone at {zone} is conventional")]
    ConventionalZone { zone: Lba },
    /// A zone operation on a device that has no zones.
    #[error("the device is not zoned")]
    NotZoned,
    /// A data buffer whose length is not a whole number of logical blocks.
    #[error("buffer of {len} bytes is not a multiple of the {block_size}-byte block")]
    PartialBlock { len: usize, block_size: u32 },
    /// A read met an unrecoverable medium error (an injected fault, see
    /// `storage::fault`); `lba` is the first block that could not be read.
    #[error("unrecovered read error at {lba}")]
    UnrecoveredRead { lba: Lba },
    /// A write failed on the medium (an injected fault, see
    /// `storage::fault`); `lba` is the first block not written.
    #[error("write fault at {lba}")]
    WriteFault { lba: Lba },
    /// The backing file failed.
    #[error("backing file I/O failed: {0}")]
    Io(#[from] io::Error),
}

/// Shorthand for results of the storage core.
pub type Result<T> = std::result::Result<T, StorageError>;
