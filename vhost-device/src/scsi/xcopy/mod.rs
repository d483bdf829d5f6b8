//! Third-party copy (SPC-5 "copy manager", SBC-4 token copies): EXTENDED
//! COPY (LID1, LID4), POPULATE TOKEN, WRITE USING TOKEN, COPY OPERATION
//! ABORT, RECEIVE COPY RESULTS / THIRD-PARTY COPY IN, the Third-party Copy
//! VPD page (8Fh). Copies move data with the storage core's copy engine
//! ([`crate::storage::copy`]): nothing passes through the front end.
//!
//! - [`cdb`]: the 83h/84h CDBs.
//! - `list`: EXTENDED COPY parameter lists (LID1 and LID4 headers, CSCD
//!   descriptor E4h, segment descriptors 02h and 0Ah) and their execution.
//! - `token`: POPULATE TOKEN, WRITE USING TOKEN and the ROD tokens.
//! - `results`: RECEIVE COPY RESULTS data and the VPD page.
//!
//! Copies run to completion inside the command (IMMED is accepted: the
//! command still returns when the copy is done, and a LID4 copy with
//! IMMED set reports a copy failure through RECEIVE COPY STATUS (LID4)
//! instead of CHECK CONDITION). The copy manager keeps the results of the
//! last [`MAX_RECORDS`] operations per target (keyed by LUN, LID1 or LID4
//! list identifier space, list identifier) for RECEIVE COPY RESULTS, and
//! the ROD tokens it created (at most [`MAX_TOKENS`]).
//!
//! Security (CVE-2020-28374 in LIO): a CSCD descriptor is resolved only
//! against the logical units of the target that received the command;
//! a designator of any other device is COPY TARGET DEVICE NOT REACHABLE,
//! and ROD tokens are looked up only in this target's copy manager.

pub mod cdb;
mod list;
mod results;
mod token;

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use serde_json::{json, Value};

pub use self::{
    list::{extended_copy_lid1, extended_copy_lid4},
    results::{
        copy_operation_abort, receive_copy_data_lid1, receive_copy_failure_details,
        receive_copy_operating_parameters, receive_copy_status_lid1, receive_copy_status_lid4,
        receive_rod_token_information, report_all_rod_tokens, third_party_copy_vpd,
    },
    token::{populate_token, write_using_token},
};
use super::{
    sense::{Asc, Sense},
    Exec,
};
use crate::{
    control::StatsSource,
    storage::{BlockCount, Lba},
};

/// MAXIMUM CSCD DESCRIPTOR COUNT.
pub const MAX_CSCDS: u16 = 16;
/// MAXIMUM SEGMENT DESCRIPTOR COUNT.
pub const MAX_SEGMENTS: u16 = 256;
/// MAXIMUM DESCRIPTOR LIST LENGTH in bytes (CSCD plus segment descriptor
/// lists): room for every CSCD and segment descriptor allowed.
pub const MAX_DESC_LIST_LEN: u32 = 32 * (MAX_CSCDS as u32) + 32 * (MAX_SEGMENTS as u32);
/// MAXIMUM SEGMENT LENGTH in bytes (a 02h descriptor of 65535 blocks of
/// 4096 bytes fits).
pub const MAX_SEGMENT_LEN: u32 = 256 << 20;
/// MAXIMUM INLINE DATA LENGTH: inline data is not supported.
pub const MAX_INLINE_LEN: u32 = 0;
/// HELD DATA LIMIT: no data is held for the application client.
pub const HELD_DATA_LIMIT: u32 = 0;
/// TOTAL CONCURRENT COPIES and MAXIMUM CONCURRENT COPIES.
pub const MAX_CONCURRENT: u8 = 16;
/// DATA SEGMENT GRANULARITY, INLINE DATA GRANULARITY, HELD DATA
/// GRANULARITY, as powers of two: 512 bytes.
pub const GRANULARITY_LOG2: u8 = 9;
/// Segment descriptor type codes implemented: block -> block (02h). 0Ah
/// (block<o> -> block<o>) exists for byte offsets, which the block-granular
/// copy engine cannot do, so it is not advertised and is refused.
pub const SEGMENT_TYPES: [u8; 1] = [0x02];
/// CSCD descriptor type codes implemented: identification descriptor.
pub const CSCD_TYPES: [u8; 1] = [0xe4];
/// MAXIMUM RANGE DESCRIPTORS of POPULATE TOKEN / WRITE USING TOKEN.
pub const MAX_RANGES: u16 = 64;
/// DEFAULT INACTIVITY TIMEOUT of a ROD token, seconds.
pub const DEFAULT_INACTIVITY_SECS: u32 = 60;
/// MAXIMUM INACTIVITY TIMEOUT of a ROD token, seconds.
pub const MAX_INACTIVITY_SECS: u32 = 600;
/// Bytes one ROD token may represent (MAXIMUM TOKEN TRANSFER SIZE is this
/// in logical blocks of the LU).
pub const MAX_TOKEN_BYTES: u64 = 1 << 30;
/// Operation results kept for RECEIVE COPY RESULTS.
pub const MAX_RECORDS: usize = 64;
/// ROD tokens kept (valid or not, for precise INVALID TOKEN OPERATION
/// codes); the oldest is forgotten first.
pub const MAX_TOKENS: usize = 256;

/// A list identifier namespace: EXTENDED COPY (LID1) has one, and LID4,
/// POPULATE TOKEN and WRITE USING TOKEN share the other (SPC-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Lid1,
    Lid4,
}

/// Which operation a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub lun: u16,
    pub family: Family,
    pub list_id: u32,
}

/// The result of one copy operation, for RECEIVE COPY RESULTS.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub key: Key,
    /// The service action that started it (RESPONSE TO SERVICE ACTION).
    pub service_action: u8,
    /// Segment descriptors (or ranges) processed completely.
    pub segments: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// Logical blocks moved (POPULATE TOKEN: represented), reported with
    /// TRANSFER COUNT UNITS F1h for the token commands.
    pub blocks: u64,
    /// The sense data of a failure, if it failed.
    pub sense: Option<Sense>,
    /// The ROD token it created (POPULATE TOKEN).
    pub token: Option<Box<[u8; token::TOKEN_LEN]>>,
}

/// A ROD token this copy manager created.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub bytes: Box<[u8; token::TOKEN_LEN]>,
    pub id: u64,
    /// The LU whose ranges it represents.
    pub lun: u16,
    pub ranges: Vec<(Lba, BlockCount)>,
    pub inactivity: Duration,
    pub last_used: Instant,
    pub state: TokenState,
}

/// Why a token no longer represents data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenState {
    Valid,
    /// A source range was written or reset (INVALID TOKEN OPERATION, TOKEN
    /// CANCELLED).
    Cancelled,
    /// WRITE USING TOKEN with DEL_TKN, or COPY OPERATION ABORT of its
    /// POPULATE TOKEN (TOKEN DELETED).
    Deleted,
}

#[derive(Default)]
struct State {
    records: VecDeque<Record>,
    active: Vec<Key>,
    tokens: VecDeque<Token>,
    next_token_id: u64,
}

/// Copy counters and per-command counts, for the control socket.
#[derive(Debug, Default)]
pub struct ScsiStats {
    commands: Mutex<BTreeMap<&'static str, u64>>,
    copies: AtomicU64,
    copy_failures: AtomicU64,
    copy_segments: AtomicU64,
    copy_bytes: AtomicU64,
    tokens_created: AtomicU64,
}

impl ScsiStats {
    /// Count one command by name.
    pub fn count_command(&self, name: &'static str) {
        let mut m = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(name).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Commands executed, by name.
    pub fn commands(&self) -> BTreeMap<&'static str, u64> {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Copy operations (EXTENDED COPY, WRITE USING TOKEN) finished, and of
    /// those the failed ones.
    pub fn copies(&self) -> (u64, u64) {
        (
            self.copies.load(Ordering::Relaxed),
            self.copy_failures.load(Ordering::Relaxed),
        )
    }

    /// Segments copied completely, and bytes copied by offload.
    pub fn copied(&self) -> (u64, u64) {
        (
            self.copy_segments.load(Ordering::Relaxed),
            self.copy_bytes.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn token_created(&self) {
        self.tokens_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn copy_done(&self, segments: usize, bytes: u64, failed: bool) {
        self.copies.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.copy_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.copy_segments
            .fetch_add(segments as u64, Ordering::Relaxed);
        self.copy_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl StatsSource for ScsiStats {
    fn name(&self) -> &str {
        "scsi"
    }

    fn snapshot(&self) -> Value {
        let (copies, failed) = self.copies();
        let (segments, bytes) = self.copied();
        json!({
            "commands": self.commands(),
            "copies": copies,
            "failed_copies": failed,
            "copy_segments": segments,
            "copied_bytes": bytes,
            "tokens_created": self.tokens_created.load(Ordering::Relaxed),
        })
    }
}

/// The copy manager of one target: operation results and ROD tokens.
#[derive(Default)]
pub struct CopyManager {
    state: Mutex<State>,
    /// Added to the clock, so tests can let tokens expire.
    skew: Mutex<Duration>,
}

impl CopyManager {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> Instant {
        let skew = *self.skew.lock().unwrap_or_else(|e| e.into_inner());
        Instant::now()
            .checked_add(skew)
            .unwrap_or_else(Instant::now)
    }

    /// Move the copy manager's clock forward (tests of token lifetime).
    #[cfg(test)]
    pub(crate) fn advance(&self, by: Duration) {
        let mut s = self.skew.lock().unwrap_or_else(|e| e.into_inner());
        *s = s.saturating_add(by);
    }

    /// Start an operation under `key`: OPERATION IN PROGRESS if one with
    /// the same list identifier is running (SPC-5); the previous result
    /// under `key` is discarded.
    pub(crate) fn begin(&self, key: Key) -> Result<(), Sense> {
        let mut s = self.state();
        if s.active.contains(&key) {
            return Err(Sense::illegal(Asc::OPERATION_IN_PROGRESS));
        }
        s.records.retain(|r| r.key != key);
        s.active.push(key);
        Ok(())
    }

    /// End the operation under `record.key`, keeping its result.
    pub(crate) fn finish(&self, record: Record, keep: bool) {
        let mut s = self.state();
        s.active.retain(|k| *k != record.key);
        if keep {
            while s.records.len() >= MAX_RECORDS {
                s.records.pop_front();
            }
            s.records.push_back(record);
        }
    }

    /// Is an operation under `key` running or its result kept?
    pub(crate) fn known(&self, key: Key) -> bool {
        let s = self.state();
        s.active.contains(&key) || s.records.iter().any(|r| r.key == key)
    }

    /// The result kept under `key`.
    pub(crate) fn record(&self, key: Key) -> Option<Record> {
        self.state().records.iter().find(|r| r.key == key).cloned()
    }

    /// Remember a new token; returns its copy manager ROD token identifier.
    pub(crate) fn next_token_id(&self) -> u64 {
        let mut s = self.state();
        s.next_token_id = s.next_token_id.wrapping_add(1);
        s.next_token_id
    }

    pub(crate) fn add_token(&self, t: Token) {
        let mut s = self.state();
        while s.tokens.len() >= MAX_TOKENS {
            // Forget an invalid token first, else the oldest.
            let victim = s
                .tokens
                .iter()
                .position(|t| t.state != TokenState::Valid)
                .unwrap_or(0);
            s.tokens.remove(victim);
        }
        s.tokens.push_back(t);
    }

    /// Run `f` on the token with identifier `id`, if known.
    pub(crate) fn with_token<R>(&self, id: u64, f: impl FnOnce(&mut Token) -> R) -> Option<R> {
        let mut s = self.state();
        s.tokens.iter_mut().find(|t| t.id == id).map(f)
    }

    /// Data at `count` blocks from `lba` of LU `lun` changed (a write, a
    /// copy into it, a zone reset): cancel the tokens that represent any
    /// of it.
    pub fn invalidate(&self, lun: u16, lba: Lba, count: BlockCount) {
        let end = lba.get().saturating_add(count.get());
        let mut s = self.state();
        for t in s.tokens.iter_mut() {
            if t.lun == lun
                && t.state == TokenState::Valid
                && t.ranges.iter().any(|(l, n)| {
                    let e = l.get().saturating_add(n.get());
                    l.get() < end && lba.get() < e
                })
            {
                t.state = TokenState::Cancelled;
            }
        }
    }

    /// Delete the token a POPULATE TOKEN under `key` created, if any.
    pub(crate) fn delete_token_of(&self, key: Key) {
        let mut s = self.state();
        let ids: Vec<u64> = s
            .records
            .iter()
            .filter(|r| r.key == key)
            .filter_map(|r| r.token.as_ref().map(|t| token::token_id(&t[..])))
            .collect();
        for t in s.tokens.iter_mut().filter(|t| ids.contains(&t.id)) {
            t.state = TokenState::Deleted;
        }
    }
}

/// Read a parameter list of `len` bytes from data-out: PARAMETER LIST
/// LENGTH ERROR if it is longer than `max` (SPC-5: the list cannot hold
/// more than the advertised limits) or the data-out is shorter.
pub(crate) fn read_params(x: &mut Exec<'_, '_>, len: u32, max: usize) -> Result<Vec<u8>, Sense> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > max {
        return Err(Sense::illegal(Asc::PARAMETER_LIST_LENGTH_ERROR));
    }
    let mut buf = vec![0u8; len];
    x.data_out
        .read_exact(&mut buf)
        .map_err(|_| Sense::illegal(Asc::PARAMETER_LIST_LENGTH_ERROR))?;
    Ok(buf)
}

/// `N` big-endian bytes at `at` of `p`, zeros where `p` is shorter (callers
/// check lengths first; this only keeps indexing panic-free).
pub(crate) fn bytes<const N: usize>(p: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = at.checked_add(N).and_then(|end| p.get(at..end)) {
        out.copy_from_slice(s);
    }
    out
}

pub(crate) fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes(p, at))
}

pub(crate) fn be24(p: &[u8], at: usize) -> u32 {
    let [a, b, c] = bytes(p, at);
    u32::from_be_bytes([0, a, b, c])
}

pub(crate) fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes(p, at))
}

pub(crate) fn be64(p: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes(p, at))
}

pub(crate) fn byte(p: &[u8], at: usize) -> u8 {
    p.get(at).copied().unwrap_or(0)
}

/// A parameter list offset as a FIELD POINTER value.
pub(crate) fn ptr(at: usize) -> u16 {
    u16::try_from(at).unwrap_or(u16::MAX)
}

/// INVALID FIELD IN PARAMETER LIST at the first non-zero byte of the
/// reserved bytes `at..at + n`.
pub(crate) fn check_reserved(p: &[u8], at: usize, n: usize) -> Result<(), Sense> {
    for i in at..at.saturating_add(n) {
        let b = byte(p, i);
        if b != 0 {
            let bit = 7 - b.leading_zeros() as u8;
            return Err(Sense::invalid_param(ptr(i), Some(bit)));
        }
    }
    Ok(())
}
