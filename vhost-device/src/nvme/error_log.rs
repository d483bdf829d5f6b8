//! The Error Information log page (Log Identifier 01h, NVMe Base 2.1
//! 5.16.1.2, controller scope): one 64-byte entry per command the
//! controller completed with an error status, the most recent first, at
//! most ELPE + 1 of them. Completions with an entry carry the More bit
//! (Base 2.1, 4.2.3: "there is more status information for this command as
//! part of the Error Information log page").

use std::collections::VecDeque;

use super::{put16, put32, put64};

/// Entries kept: Identify Controller ELPE + 1.
pub const ENTRIES: usize = 64;
/// Size of one entry.
pub const ENTRY_LEN: usize = 64;
/// Parameter Error Location when the error is not tied to one field.
pub const NO_LOCATION: u16 = 0xFFFF;
/// Log Page Version of the entries written here (with CSI and Opcode).
pub const LOG_PAGE_VERSION: u8 = 1;

/// Where in the SQE the error is: byte 0..=63 and bit 0..=7 (Parameter
/// Error Location bits 7:0 and 10:8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamLocation {
    pub byte: u8,
    pub bit: u8,
}

impl ParamLocation {
    /// The 16-bit Parameter Error Location field.
    pub fn field(self) -> u16 {
        u16::from(self.byte) | (u16::from(self.bit & 7) << 8)
    }
}

/// What one entry records about a failed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorEntry {
    /// Submission Queue ID.
    pub sqid: u16,
    /// Command ID.
    pub cid: u16,
    /// The 15-bit status field of the completion (More and DNR included).
    pub status: u16,
    /// Parameter Error Location ([`NO_LOCATION`] if not specific).
    pub location: u16,
    /// First LBA of the command, if it names one (else 0).
    pub lba: u64,
    /// Namespace of the command (0 if none).
    pub nsid: u32,
    /// Command Set Identifier of the command's namespace.
    pub csi: u8,
    /// Opcode of the command.
    pub opcode: u8,
    /// Command Specific Information: the failed completion's Dword 0 (for
    /// Copy, the lowest numbered source range not copied).
    pub info: u64,
}

/// The ring of entries of one controller.
#[derive(Debug, Default)]
pub struct ErrorLog {
    /// Error Count of the newest entry (0: no error yet).
    count: u64,
    /// (error count, entry), newest first.
    entries: VecDeque<(u64, ErrorEntry)>,
}

impl ErrorLog {
    /// Record an error; returns its Error Count (from 1).
    pub fn record(&mut self, e: ErrorEntry) -> u64 {
        self.count = self.count.saturating_add(1);
        self.entries.push_front((self.count, e));
        self.entries.truncate(ENTRIES);
        self.count
    }

    /// Errors recorded over the life of the controller (SMART / Health
    /// Information, Number of Error Information Log Entries).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The log page: [`ENTRIES`] entries of 64 bytes, newest first; slots
    /// without an error have Error Count 0 (an invalid entry).
    ///
    /// Entry layout (Base 2.1, Figure "Error Information Log Entry Data
    /// Structure"): Error Count 7:0, SQID 9:8, CID 11:10, Status Field
    /// 13:12 (status in bits 15:1, phase tag bit 0 = 0), Parameter Error
    /// Location 15:14, LBA 23:16, Namespace 27:24, Vendor Specific
    /// Information Available 28 (0), Transport Type 29 (0: not a transport
    /// error), CSI 30, Opcode 31, Command Specific Information 39:32,
    /// Transport Type Specific Information 41:40 (0), Log Page Version 63.
    pub fn page(&self) -> Vec<u8> {
        let mut d = vec![0u8; ENTRIES * ENTRY_LEN];
        for (i, (count, e)) in self.entries.iter().enumerate() {
            let at = i * ENTRY_LEN;
            put64(&mut d, at, *count);
            put16(&mut d, at + 8, e.sqid);
            put16(&mut d, at + 10, e.cid);
            put16(&mut d, at + 12, e.status << 1);
            put16(&mut d, at + 14, e.location);
            put64(&mut d, at + 16, e.lba);
            put32(&mut d, at + 24, e.nsid);
            d[at + 30] = e.csi;
            d[at + 31] = e.opcode;
            put64(&mut d, at + 32, e.info);
            d[at + 63] = LOG_PAGE_VERSION;
        }
        d
    }
}
