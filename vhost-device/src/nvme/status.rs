//! NVMe completion status values, and the one mapping from storage core
//! errors to them.
//!
//! A status is a Status Code Type (SCT) and a Status Code (SC) plus the Do
//! Not Retry bit (NVMe Base 2.1, 4.2.3 "Status Field Definition", Figure 101
//! and the tables that follow it).

use crate::storage::{StorageError, ZoneCondition};

/// A completion status: SCT, SC and DNR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Status Code Type (3 bits): 0 generic, 1 command specific, 2 media
    /// and data integrity errors, 3 path related.
    pub sct: u8,
    /// Status Code.
    pub sc: u8,
    /// Do Not Retry.
    pub dnr: bool,
}

const fn generic(sc: u8) -> Status {
    Status {
        sct: 0,
        sc,
        dnr: true,
    }
}

const fn specific(sc: u8) -> Status {
    Status {
        sct: 1,
        sc,
        dnr: true,
    }
}

const fn media(sc: u8) -> Status {
    Status {
        sct: 2,
        sc,
        dnr: true,
    }
}

impl Status {
    // Generic Command Status values (SCT 0h), NVMe Base 2.1 Figure 102.
    pub const SUCCESS: Status = Status {
        sct: 0,
        sc: 0x00,
        dnr: false,
    };
    pub const INVALID_OPCODE: Status = generic(0x01);
    pub const INVALID_FIELD: Status = generic(0x02);
    pub const DATA_TRANSFER_ERROR: Status = generic(0x04);
    pub const INTERNAL_ERROR: Status = Status {
        sct: 0,
        sc: 0x06,
        dnr: false,
    };
    /// Command Abort Requested: the command was aborted by an Abort
    /// command (Base 2.1, 5.1). Not DNR: the host may send it again.
    pub const COMMAND_ABORT_REQUESTED: Status = Status {
        sct: 0,
        sc: 0x07,
        dnr: false,
    };
    /// Invalid Namespace or Format.
    pub const INVALID_NAMESPACE: Status = generic(0x0B);
    pub const COMMAND_SEQUENCE_ERROR: Status = generic(0x0C);
    /// Data SGL Length Invalid.
    pub const DATA_SGL_LENGTH_INVALID: Status = generic(0x0F);
    /// SGL Descriptor Type Invalid.
    pub const SGL_DESCRIPTOR_TYPE_INVALID: Status = generic(0x11);
    /// Invalid PRP Offset (PCIe: a PRP entry or list pointer whose offset
    /// is not what NVMe Base 2.1, 4.3.1 allows).
    pub const INVALID_PRP_OFFSET: Status = generic(0x13);
    // Generic Command Status values, NVM Command Set (NVM CS 1.1 Figure
    // "Status Code - Generic Command Status Values").
    pub const LBA_OUT_OF_RANGE: Status = generic(0x80);

    // Media and Data Integrity Errors (SCT 2h), NVMe Base 2.1 Figure 104.
    // DNR: the same command fails again (the medium error stays).
    pub const WRITE_FAULT: Status = media(0x80);
    pub const UNRECOVERED_READ_ERROR: Status = media(0x81);

    // Command Specific Status values (SCT 1h), NVMe Base 2.1 Figure 103.
    /// Completion Queue Invalid (Create I/O Submission Queue).
    pub const COMPLETION_QUEUE_INVALID: Status = specific(0x00);
    pub const INVALID_QUEUE_IDENTIFIER: Status = specific(0x01);
    pub const INVALID_QUEUE_SIZE: Status = specific(0x02);
    pub const ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED: Status = specific(0x05);
    pub const INVALID_LOG_PAGE: Status = specific(0x09);
    pub const INVALID_FORMAT: Status = specific(0x0A);
    /// Invalid Interrupt Vector (Create I/O Completion Queue).
    pub const INVALID_INTERRUPT_VECTOR: Status = specific(0x08);
    /// Invalid Queue Deletion (Delete I/O Completion Queue with a
    /// submission queue still on it).
    pub const INVALID_QUEUE_DELETION: Status = specific(0x0C);
    pub const FEATURE_NOT_SAVEABLE: Status = specific(0x0D);
    // Fabrics Connect (NVMe Base 2.1 Figure 103, 80h-84h for Connect).
    pub const CONNECT_INCOMPATIBLE_FORMAT: Status = specific(0x80);
    pub const CONNECT_CONTROLLER_BUSY: Status = specific(0x81);
    pub const CONNECT_INVALID_PARAMETERS: Status = specific(0x82);
    pub const CONNECT_INVALID_HOST: Status = specific(0x84);
    // NVM Command Set specific (NVM CS 1.1 Figure "Status Code - Command
    // Specific Status Values").
    pub const COMMAND_SIZE_LIMIT_EXCEEDED: Status = specific(0x83);
    pub const INCOMPATIBLE_NAMESPACE_OR_FORMAT: Status = specific(0x85);
    // Zoned Namespace Command Set specific (ZNS 1.1 Figure "Status Code -
    // Command Specific Status Values").
    pub const ZONE_BOUNDARY_ERROR: Status = specific(0xB8);
    pub const ZONE_IS_FULL: Status = specific(0xB9);
    pub const ZONE_IS_READ_ONLY: Status = specific(0xBA);
    pub const ZONE_IS_OFFLINE: Status = specific(0xBB);
    pub const ZONE_INVALID_WRITE: Status = specific(0xBC);
    pub const TOO_MANY_ACTIVE_ZONES: Status = specific(0xBD);
    pub const TOO_MANY_OPEN_ZONES: Status = specific(0xBE);
    pub const INVALID_ZONE_STATE_TRANSITION: Status = specific(0xBF);

    /// The More bit of the status field (bit 13 of
    /// [`super::Completion::status`]): the Error Information log page has
    /// an entry for the command.
    pub const MORE: u16 = 1 << 13;

    /// The 15-bit status field as [`super::Completion::status`] holds it:
    /// SC in bits 7:0, SCT in 10:8, DNR in bit 14.
    pub fn field(self) -> u16 {
        u16::from(self.sc) | (u16::from(self.sct & 7) << 8) | (u16::from(self.dnr) << 14)
    }

    /// Whether this is Successful Completion.
    pub fn is_success(self) -> bool {
        self.sct == 0 && self.sc == 0
    }
}

/// Which zone resource limit a refused zone operation hit; the storage core
/// reports one error for both, so the namespace tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneResource {
    Open,
    Active,
}

/// The one mapping from a storage core error to an NVMe status.
///
/// | StorageError | Status | Spec |
/// |---|---|---|
/// | OutOfRange | 0/80h LBA Out of Range | NVM CS 1.1, generic status values |
/// | UnalignedWrite | 1/BCh Zone Invalid Write | ZNS 1.1, 2.1.1.1 writes not at the write pointer |
/// | WriteBoundary | 1/B8h Zone Boundary Error | ZNS 1.1, crossing a zone boundary |
/// | BeyondZoneCapacity | 1/B8h Zone Boundary Error | ZNS 1.1, past the zone capacity |
/// | ZoneFull | 1/B9h Zone Is Full | ZNS 1.1, write to ZSF |
/// | ZoneUnavailable READ ONLY | 1/BAh Zone Is Read Only | ZNS 1.1, write to ZSRO |
/// | ZoneUnavailable OFFLINE | 1/BBh Zone Is Offline | ZNS 1.1, access to ZSO |
/// | InsufficientZoneResources, open | 1/BEh Too Many Open Zones | ZNS 1.1, MOR exceeded |
/// | InsufficientZoneResources, active | 1/BDh Too Many Active Zones | ZNS 1.1, MAR exceeded |
/// | NotZoneStart | 0/02h Invalid Field in Command | ZNS 1.1, SLBA not the lowest LBA of a zone |
/// | ConventionalZone | 0/02h Invalid Field in Command | (ZNS has no conventional zones) |
/// | NotZoned | 0/01h Invalid Command Opcode | zone command on an NVM namespace |
/// | PartialBlock | 0/0Fh Data SGL Length Invalid | Base 2.1, generic status values |
/// | UnrecoveredRead (injected media error) | 2/81h Unrecovered Read Error, DNR | Base 2.1, media and data integrity errors |
/// | WriteFault (injected write error) | 2/80h Write Fault, DNR | Base 2.1, media and data integrity errors |
/// | Io | 0/06h Internal Error | Base 2.1, generic status values |
pub fn storage_status(e: &StorageError, resource: impl FnOnce() -> ZoneResource) -> Status {
    match e {
        StorageError::OutOfRange { .. } => Status::LBA_OUT_OF_RANGE,
        StorageError::UnalignedWrite { .. } => Status::ZONE_INVALID_WRITE,
        StorageError::WriteBoundary { .. } | StorageError::BeyondZoneCapacity { .. } => {
            Status::ZONE_BOUNDARY_ERROR
        }
        StorageError::ZoneFull { .. } => Status::ZONE_IS_FULL,
        StorageError::ZoneUnavailable { cond, .. } => match cond {
            ZoneCondition::ReadOnly => Status::ZONE_IS_READ_ONLY,
            ZoneCondition::Offline => Status::ZONE_IS_OFFLINE,
            ZoneCondition::NotWritePointer
            | ZoneCondition::Empty
            | ZoneCondition::ImplicitOpen
            | ZoneCondition::ExplicitOpen
            | ZoneCondition::Closed
            | ZoneCondition::Full => Status::INTERNAL_ERROR,
        },
        StorageError::InsufficientZoneResources { .. } => match resource() {
            ZoneResource::Open => Status::TOO_MANY_OPEN_ZONES,
            ZoneResource::Active => Status::TOO_MANY_ACTIVE_ZONES,
        },
        StorageError::NotZoneStart { .. } | StorageError::ConventionalZone { .. } => {
            Status::INVALID_FIELD
        }
        StorageError::NotZoned => Status::INVALID_OPCODE,
        StorageError::InvalidConditionChange { .. } => Status::INVALID_ZONE_STATE_TRANSITION,
        // Only with ZBC's URSWRZ = 0, which namespaces never set.
        StorageError::UnwrittenRead { .. } | StorageError::ReadBoundary { .. } => {
            Status::ZONE_BOUNDARY_ERROR
        }
        StorageError::PartialBlock { .. } => Status::DATA_SGL_LENGTH_INVALID,
        StorageError::UnrecoveredRead { .. } => Status::UNRECOVERED_READ_ERROR,
        StorageError::WriteFault { .. } => Status::WRITE_FAULT,
        StorageError::Io(_) => Status::INTERNAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{BlockCount, Lba};

    #[test]
    fn status_fields_are_the_spec_values() {
        // Literal 15-bit status field values (SC | SCT << 8 | DNR << 14) as
        // Linux include/linux/nvme.h spells them, plus DNR 0x4000.
        assert_eq!(Status::INVALID_OPCODE.field(), 0x4001);
        assert_eq!(Status::INVALID_FIELD.field(), 0x4002);
        assert_eq!(Status::INVALID_NAMESPACE.field(), 0x400b);
        assert_eq!(Status::LBA_OUT_OF_RANGE.field(), 0x4080);
        assert_eq!(Status::COMMAND_SIZE_LIMIT_EXCEEDED.field(), 0x4183);
        assert_eq!(Status::INVALID_LOG_PAGE.field(), 0x4109);
        assert_eq!(Status::INVALID_FORMAT.field(), 0x410a);
        assert_eq!(Status::INCOMPATIBLE_NAMESPACE_OR_FORMAT.field(), 0x4185);
        assert_eq!(Status::ZONE_BOUNDARY_ERROR.field(), 0x41b8);
        assert_eq!(Status::ZONE_IS_FULL.field(), 0x41b9);
        assert_eq!(Status::ZONE_IS_READ_ONLY.field(), 0x41ba);
        assert_eq!(Status::ZONE_IS_OFFLINE.field(), 0x41bb);
        assert_eq!(Status::ZONE_INVALID_WRITE.field(), 0x41bc);
        assert_eq!(Status::TOO_MANY_ACTIVE_ZONES.field(), 0x41bd);
        assert_eq!(Status::TOO_MANY_OPEN_ZONES.field(), 0x41be);
        assert_eq!(Status::INVALID_ZONE_STATE_TRANSITION.field(), 0x41bf);
        assert_eq!(Status::CONNECT_INVALID_PARAMETERS.field(), 0x4182);
        assert_eq!(Status::SUCCESS.field(), 0);
        assert_eq!(Status::COMMAND_ABORT_REQUESTED.field(), 0x0007);
        assert_eq!(Status::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED.field(), 0x4105);
        assert_eq!(Status::MORE, 0x2000);
        assert_eq!(Status::UNRECOVERED_READ_ERROR.field(), 0x4281);
        assert_eq!(Status::WRITE_FAULT.field(), 0x4280);
    }

    #[test]
    fn storage_errors_map() {
        let open = || ZoneResource::Open;
        let cases: Vec<(StorageError, u16)> = vec![
            (
                StorageError::OutOfRange {
                    lba: Lba::new(1),
                    count: BlockCount::new(1),
                    capacity: BlockCount::new(1),
                },
                0x4080,
            ),
            (
                StorageError::UnalignedWrite {
                    lba: Lba::new(1),
                    wp: Lba::new(0),
                },
                0x41bc,
            ),
            (
                StorageError::WriteBoundary {
                    lba: Lba::new(1),
                    count: BlockCount::new(1),
                },
                0x41b8,
            ),
            (StorageError::ZoneFull { zone: Lba::new(0) }, 0x41b9),
            (
                StorageError::ZoneUnavailable {
                    zone: Lba::new(0),
                    cond: ZoneCondition::ReadOnly,
                },
                0x41ba,
            ),
            (
                StorageError::ZoneUnavailable {
                    zone: Lba::new(0),
                    cond: ZoneCondition::Offline,
                },
                0x41bb,
            ),
            (
                StorageError::InsufficientZoneResources { zone: Lba::new(0) },
                0x41be,
            ),
            (StorageError::UnrecoveredRead { lba: Lba::new(7) }, 0x4281),
            (StorageError::WriteFault { lba: Lba::new(7) }, 0x4280),
        ];
        for (e, want) in cases {
            assert_eq!(storage_status(&e, open).field(), want, "{e}");
        }
        let e = StorageError::InsufficientZoneResources { zone: Lba::new(0) };
        assert_eq!(storage_status(&e, || ZoneResource::Active).field(), 0x41bd);
    }
}
