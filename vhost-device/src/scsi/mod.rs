//! The SCSI front end: SPC-5, SBC-4 and ZBC-2 commands translated into
//! storage core calls. Knows nothing of virtio: data moves through
//! `&mut dyn Read` (data-out) and `&mut dyn Write` (data-in), so tests drive
//! it with byte vectors.
//!
//! INTERFACE STUB: the command set is being written; `Target::execute`
//! currently answers every command with INVALID COMMAND OPERATION CODE.

use std::{
    io::{Read, Write},
    sync::Arc,
};

use crate::storage::Device;

/// SCSI status byte values (SAM-5 5.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Good = 0x00,
    CheckCondition = 0x02,
    Busy = 0x08,
    TaskSetFull = 0x28,
}

/// One command as the transport hands it over.
pub struct Request<'a> {
    /// The logical unit number (flat, 0-based) the command is addressed to.
    pub lun: u16,
    /// The CDB bytes as received (the transport's CDB area, possibly longer
    /// than the command's own CDB length).
    pub cdb: &'a [u8],
    /// Data-out buffer (initiator to target).
    pub data_out: &'a mut dyn Read,
    /// Data-in buffer (target to initiator).
    pub data_in: &'a mut dyn Write,
    /// How many bytes `data_in` can take.
    pub data_in_len: u32,
}

/// The outcome of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    /// Sense data (fixed format, SPC-5 4.4.3) when `status` is CHECK
    /// CONDITION, else empty.
    pub sense: Vec<u8>,
    /// Bytes written to `data_in`.
    pub data_in_written: u32,
}

/// A SCSI target: the logical units served on one vhost-user-scsi device.
pub struct Target {
    luns: Vec<Arc<Device>>,
}

impl Target {
    /// A target whose LUN `i` is `luns[i]`.
    pub fn new(luns: Vec<Arc<Device>>) -> Self {
        Target { luns }
    }

    /// Number of logical units.
    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// Execute one command. Never panics on any input.
    pub fn execute(&self, req: Request<'_>) -> Response {
        let _ = (&req.cdb, req.lun);
        // ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE (20h/00h).
        let mut sense = vec![0u8; 18];
        sense[0] = 0x70;
        sense[2] = 0x05;
        sense[7] = 10;
        sense[12] = 0x20;
        Response {
            status: Status::CheckCondition,
            sense,
            data_in_written: 0,
        }
    }
}
