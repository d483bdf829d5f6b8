//! Deterministic fault injection: rules a test adds to one device (through
//! the control socket) that make its reads, writes and copies fail, or wait,
//! exactly where and as often as the rule says.
//!
//! Kinds:
//! - `MediaError(range)`: a read touching the range fails with
//!   [`StorageError::UnrecoveredRead`] at its first block inside the range;
//!   host reads and the source reads of copies alike (a copy copies the
//!   blocks before it, then stops).
//! - `WriteError(range)`: a write touching the range fails with
//!   [`StorageError::WriteFault`] at its first block inside it (host
//!   writes and appends: nothing written; a copy destination: the blocks
//!   before it are copied).
//! - `CopyFail { at, error }`: a copy into this device stops at segment
//!   (source range) `index` after `blocks` of its blocks, or after `blocks`
//!   blocks of the whole copy command, with a write fault at the first
//!   destination block not written (or an unrecovered read error at the
//!   first source block not read).
//! - `Delay { ms, on, range }`: an operation (`on`, any if `None`),
//!   touching `range` if given, first sleeps `ms` milliseconds, holding no
//!   lock.
//!
//! Each rule may carry a count: it fires that many times, then expires. No
//! randomness: whether a rule fires depends only on the LBAs, the segment
//! numbers and the count. Of several rules that could stop one operation,
//! the one stopping it earliest fires (the lowest rule id on a tie); only
//! that one is counted. Every firing is counted per kind and logged once
//! (`log::info`).

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Mutex, MutexGuard,
    },
    time::Duration,
};

use super::{
    error::{Result, StorageError},
    media::{Media, MemSlice},
    units::{BlockCount, Lba},
};

/// The longest delay a rule may ask for, in milliseconds (ten minutes).
pub const MAX_DELAY_MS: u64 = 600_000;

/// A range of logical blocks, `blocks` > 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    pub lba: Lba,
    pub blocks: BlockCount,
}

impl BlockRange {
    /// `blocks` blocks from `lba`.
    pub const fn new(lba: Lba, blocks: BlockCount) -> Self {
        BlockRange { lba, blocks }
    }

    fn end(&self) -> u64 {
        self.lba.get().saturating_add(self.blocks.get())
    }

    /// The first block of `count` blocks at `lba` that lies in this range.
    pub fn first_hit(&self, lba: Lba, count: BlockCount) -> Option<Lba> {
        let start = lba.get().max(self.lba.get());
        let end = lba.get().saturating_add(count.get()).min(self.end());
        (start < end).then_some(Lba::new(start))
    }
}

/// An operation a delay applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Copy,
    Flush,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Copy => "copy",
            Op::Flush => "flush",
        }
    }
}

/// Where a `CopyFail` stops a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFailAt {
    /// In segment (source range) `index` of the copy command, counted from
    /// 0, after `blocks` of its (source) blocks; `blocks` at or past the
    /// segment's length never fires.
    Segment { index: usize, blocks: u64 },
    /// After `blocks` (source) blocks of the whole copy command.
    Blocks(u64),
}

/// What a stopped copy reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFailError {
    /// [`StorageError::WriteFault`] at the first destination block not
    /// written.
    Write,
    /// [`StorageError::UnrecoveredRead`] at the first source block not read.
    Read,
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    MediaError(BlockRange),
    WriteError(BlockRange),
    CopyFail {
        at: CopyFailAt,
        error: CopyFailError,
    },
    Delay {
        ms: u64,
        on: Option<Op>,
        range: Option<BlockRange>,
    },
}

impl FaultKind {
    /// A `CopyFail` rule that stops segment `index` after `blocks` of its
    /// blocks with `error`.
    pub const fn copy_fail_in_segment(index: usize, blocks: u64, error: CopyFailError) -> Self {
        FaultKind::CopyFail {
            at: CopyFailAt::Segment { index, blocks },
            error,
        }
    }

    /// The kind's name in the control protocol and the statistics.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::MediaError(_) => "media_error",
            FaultKind::WriteError(_) => "write_error",
            FaultKind::CopyFail { .. } => "copy_fail",
            FaultKind::Delay { .. } => "delay",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::MediaError(r) | FaultKind::WriteError(r) => {
                write!(f, "{} at {} +{}", self.name(), r.lba, r.blocks)
            }
            FaultKind::CopyFail { at, error } => {
                write!(f, "copy_fail ")?;
                match at {
                    CopyFailAt::Segment { index, blocks } => {
                        write!(f, "in segment {index} after {blocks} blocks")?
                    }
                    CopyFailAt::Blocks(n) => write!(f, "after {n} blocks")?,
                }
                match error {
                    CopyFailError::Write => write!(f, " (write fault)"),
                    CopyFailError::Read => write!(f, " (read error)"),
                }
            }
            FaultKind::Delay { ms, on, range } => {
                write!(f, "delay {ms} ms on {}", on.map_or("any", Op::name))?;
                if let Some(r) = range {
                    write!(f, " at {} +{}", r.lba, r.blocks)?;
                }
                Ok(())
            }
        }
    }
}

/// A rule as listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: u64,
    pub kind: FaultKind,
    /// Firings left before the rule expires; `None`: never expires.
    pub remaining: Option<u64>,
    /// Times it fired so far.
    pub fired: u64,
}

/// Firings so far, by kind (expired and cleared rules included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub media_error: u64,
    pub write_error: u64,
    pub copy_fail: u64,
    pub delay: u64,
}

/// A rule that matched an operation, found but not fired yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    id: u64,
    /// Where it stops the operation (an LBA, or blocks into a copy
    /// segment); lower fires first.
    at: u64,
}

/// The fault rules of one device.
#[derive(Debug, Default)]
pub struct FaultSet {
    rules: Mutex<Vec<Rule>>,
    /// Rules in `rules`: lets the data path skip the lock when there are
    /// none.
    armed: AtomicUsize,
    next_id: AtomicU64,
    media_error: AtomicU64,
    write_error: AtomicU64,
    copy_fail: AtomicU64,
    delay: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most rules one device holds at once: every I/O walks them, and the
/// control socket must not grow memory without bound.
pub const MAX_RULES: usize = 256;

impl FaultSet {
    /// Add a rule that fires `count` times (`None`: until removed).
    /// Returns its id (from 1). A count of 0, or a set already holding
    /// [`MAX_RULES`] rules, adds nothing and returns 0.
    pub fn add(&self, kind: FaultKind, count: Option<u64>) -> u64 {
        if count == Some(0) {
            return 0;
        }
        let mut rules = lock(&self.rules);
        if rules.len() >= MAX_RULES {
            return 0;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        rules.push(Rule {
            id,
            kind,
            remaining: count,
            fired: 0,
        });
        self.armed.store(rules.len(), Ordering::Release);
        log::info!("fault {id} added: {kind}{}", count_text(count));
        id
    }

    /// Remove rule `id`; whether it was there.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = lock(&self.rules);
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.armed.store(rules.len(), Ordering::Release);
        rules.len() != before
    }

    /// Remove every rule; how many there were.
    pub fn clear(&self) -> usize {
        let mut rules = lock(&self.rules);
        let n = rules.len();
        rules.clear();
        self.armed.store(0, Ordering::Release);
        if n > 0 {
            log::info!("faults cleared: {n} rule(s)");
        }
        n
    }

    /// The rules in force, oldest first.
    pub fn list(&self) -> Vec<Rule> {
        lock(&self.rules).clone()
    }

    /// Firings so far, by kind.
    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            media_error: self.media_error.load(Ordering::Relaxed),
            write_error: self.write_error.load(Ordering::Relaxed),
            copy_fail: self.copy_fail.load(Ordering::Relaxed),
            delay: self.delay.load(Ordering::Relaxed),
        }
    }

    fn idle(&self) -> bool {
        self.armed.load(Ordering::Acquire) == 0
    }

    /// The rule for which `at` gives the earliest stop (lowest id on a
    /// tie), not fired.
    fn find(&self, at: impl Fn(&FaultKind) -> Option<u64>) -> Option<(Pending, FaultKind)> {
        if self.idle() {
            return None;
        }
        let rules = lock(&self.rules);
        rules
            .iter()
            .filter_map(|r| at(&r.kind).map(|a| (Pending { id: r.id, at: a }, r.kind)))
            .min_by_key(|(p, _)| (p.at, p.id))
    }

    /// Fire a rule [`Self::find`] found: count it, use up its count, log
    /// it with `what`. False if it was removed meanwhile.
    pub fn fire(&self, p: Pending, what: &str) -> bool {
        let mut rules = lock(&self.rules);
        let Some(idx) = rules.iter().position(|r| r.id == p.id) else {
            return false;
        };
        let rule = &mut rules[idx];
        rule.fired += 1;
        let kind = rule.kind;
        let expired = match &mut rule.remaining {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        let fired = rule.fired;
        if expired {
            rules.remove(idx);
            self.armed.store(rules.len(), Ordering::Release);
        }
        drop(rules);
        let counter = match kind {
            FaultKind::MediaError(_) => &self.media_error,
            FaultKind::WriteError(_) => &self.write_error,
            FaultKind::CopyFail { .. } => &self.copy_fail,
            FaultKind::Delay { .. } => &self.delay,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        log::info!(
            "fault {} ({kind}) fired{}: {what}{}",
            p.id,
            if fired > 1 {
                format!(" (time {fired})")
            } else {
                String::new()
            },
            if expired { "; rule expired" } else { "" }
        );
        true
    }

    /// [`Self::find`], then [`Self::fire`].
    fn fire_first(
        &self,
        at: impl Fn(&FaultKind) -> Option<u64>,
        what: &str,
    ) -> Option<(u64, FaultKind)> {
        let (p, kind) = self.find(at)?;
        self.fire(p, what);
        Some((p.at, kind))
    }

    /// The media error rule that stops a read of `count` blocks at `lba`
    /// earliest, not fired: with the first block that cannot be read.
    pub fn peek_read(&self, lba: Lba, count: BlockCount) -> Option<(Pending, Lba)> {
        self.find(|k| match k {
            FaultKind::MediaError(r) => r.first_hit(lba, count).map(|l| l.get()),
            _ => None,
        })
        .map(|(p, _)| (p, Lba::new(p.at)))
    }

    /// The write error rule that stops a write of `count` blocks at `lba`
    /// earliest, not fired: with the first block that cannot be written.
    pub fn peek_write(&self, lba: Lba, count: BlockCount) -> Option<(Pending, Lba)> {
        self.find(|k| match k {
            FaultKind::WriteError(r) => r.first_hit(lba, count).map(|l| l.get()),
            _ => None,
        })
        .map(|(p, _)| (p, Lba::new(p.at)))
    }

    /// The copy-fail rule that stops segment `index` of a copy command
    /// earliest, not fired: the segment is `count` source blocks long and
    /// comes after `before` blocks of the command's earlier segments.
    /// Returns how many of its blocks are copied first, and what it
    /// reports.
    pub fn peek_copy(
        &self,
        index: usize,
        before: u64,
        count: BlockCount,
    ) -> Option<(Pending, u64, CopyFailError)> {
        self.find(|k| match *k {
            FaultKind::CopyFail {
                at: CopyFailAt::Segment { index: i, blocks },
                ..
            } if i == index && blocks < count.get() => Some(blocks),
            FaultKind::CopyFail {
                at: CopyFailAt::Blocks(n),
                ..
            } if n >= before && n - before < count.get() => Some(n - before),
            _ => None,
        })
        .and_then(|(p, kind)| match kind {
            FaultKind::CopyFail { error, .. } => Some((p, p.at, error)),
            _ => None,
        })
    }

    /// A media error rule for a read of `count` blocks at `lba`: the first
    /// block that cannot be read (the rule fires).
    pub fn read_fault(&self, lba: Lba, count: BlockCount) -> Option<Lba> {
        if self.idle() {
            return None;
        }
        let what = format!("read at {lba} +{count}");
        self.fire_first(
            |k| match k {
                FaultKind::MediaError(r) => r.first_hit(lba, count).map(|l| l.get()),
                _ => None,
            },
            &what,
        )
        .map(|(at, _)| Lba::new(at))
    }

    /// A write error rule for a write of `count` blocks at `lba`: the first
    /// block that cannot be written (the rule fires).
    pub fn write_fault(&self, lba: Lba, count: BlockCount) -> Option<Lba> {
        if self.idle() {
            return None;
        }
        let what = format!("write at {lba} +{count}");
        self.fire_first(
            |k| match k {
                FaultKind::WriteError(r) => r.first_hit(lba, count).map(|l| l.get()),
                _ => None,
            },
            &what,
        )
        .map(|(at, _)| Lba::new(at))
    }

    /// [`Self::read_fault`] as an error.
    pub fn check_read(&self, lba: Lba, count: BlockCount) -> Result<()> {
        match self.read_fault(lba, count) {
            Some(lba) => Err(StorageError::UnrecoveredRead { lba }),
            None => Ok(()),
        }
    }

    /// [`Self::write_fault`] as an error.
    pub fn check_write(&self, lba: Lba, count: BlockCount) -> Result<()> {
        match self.write_fault(lba, count) {
            Some(lba) => Err(StorageError::WriteFault { lba }),
            None => Ok(()),
        }
    }

    /// Sleep as a delay rule for `op` (touching `count` blocks at `lba`,
    /// if given) says; returns the time slept. Call with no lock held.
    pub fn delay(&self, op: Op, range: Option<(Lba, BlockCount)>) -> Duration {
        if self.idle() {
            return Duration::ZERO;
        }
        let what = match range {
            Some((lba, count)) => format!("{} at {lba} +{count}", op.name()),
            None => op.name().to_owned(),
        };
        let hit = self.fire_first(
            |k| match *k {
                FaultKind::Delay { on, range: r, .. } if on.is_none_or(|o| o == op) => {
                    match (r, range) {
                        (None, _) => Some(0),
                        (Some(r), Some((lba, count))) => r.first_hit(lba, count).map(|_| 0),
                        (Some(_), None) => None,
                    }
                }
                _ => None,
            },
            &what,
        );
        match hit {
            Some((_, FaultKind::Delay { ms, .. })) => {
                let d = Duration::from_millis(ms.min(MAX_DELAY_MS));
                std::thread::sleep(d);
                d
            }
            _ => Duration::ZERO,
        }
    }
}

/// A media with the fault rules as a layer around it: block-addressed
/// I/O that fails or waits where a rule says. The device above reaches
/// its media only through here, so no read or write can skip the rules.
#[derive(Debug)]
pub struct FaultyMedia {
    media: Box<dyn Media>,
    rules: FaultSet,
    block_size: u32,
}

impl FaultyMedia {
    /// `media` of blocks of `block_size` bytes, no rules yet.
    pub fn new(media: Box<dyn Media>, block_size: u32) -> Self {
        FaultyMedia {
            media,
            rules: FaultSet::default(),
            block_size,
        }
    }

    /// The fault rules.
    pub fn rules(&self) -> &FaultSet {
        &self.rules
    }

    /// The media under the rules, for what no rule covers: flushes, the
    /// cache switch, discards and the copy engine's byte moves.
    pub fn media(&self) -> &dyn Media {
        self.media.as_ref()
    }

    /// The byte offset of `lba`.
    pub fn offset(&self, lba: Lba) -> std::io::Result<u64> {
        lba.byte_offset(self.block_size)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EOVERFLOW))
    }

    /// Sleep as a delay rule for `op` says (see [`FaultSet::delay`]).
    pub fn delay(&self, op: Op, range: Option<(Lba, BlockCount)>) -> Duration {
        self.rules.delay(op, range)
    }

    /// Read `count` whole blocks at `lba` into `buf`, unless a media error
    /// rule stops the read (it fires).
    pub fn read(&self, lba: Lba, count: BlockCount, buf: &mut [u8]) -> Result<()> {
        self.rules.check_read(lba, count)?;
        self.read_unchecked(lba, buf)
    }

    /// [`Self::read`] into memory the caller does not own.
    pub fn read_to(&self, lba: Lba, count: BlockCount, dst: &[MemSlice<'_>]) -> Result<()> {
        self.rules.check_read(lba, count)?;
        Ok(self.media.read_to(self.offset(lba)?, dst)?)
    }

    /// Read whole blocks at `lba` past the rules (the control plane's view).
    pub fn read_unchecked(&self, lba: Lba, buf: &mut [u8]) -> Result<()> {
        Ok(self.media.read_at(self.offset(lba)?, buf)?)
    }

    /// Whether a write of `count` blocks at `lba` passes the write error
    /// rules (the stopping one fires). Checked before the zone rules, so
    /// the write itself ([`Self::write`]) can run under the zone lock.
    pub fn admit_write(&self, lba: Lba, count: BlockCount) -> Result<()> {
        self.rules.check_write(lba, count)
    }

    /// Write whole blocks at `lba`, admitted by [`Self::admit_write`].
    pub fn write(&self, lba: Lba, data: &[u8]) -> std::io::Result<()> {
        self.media.write_at(self.offset(lba)?, data)
    }

    /// [`Self::write`] from memory the caller does not own.
    pub fn write_from(&self, lba: Lba, src: &[MemSlice<'_>]) -> std::io::Result<()> {
        self.media.write_from(self.offset(lba)?, src)
    }
}

fn count_text(count: Option<u64>) -> String {
    match count {
        Some(n) => format!(", fires {n} time(s)"),
        None => ", until cleared".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lba: u64, blocks: u64) -> BlockRange {
        BlockRange::new(Lba::new(lba), BlockCount::new(blocks))
    }

    #[test]
    fn media_error_reports_the_first_failing_block_and_expires() {
        let f = FaultSet::default();
        assert_eq!(f.read_fault(Lba::new(0), BlockCount::new(100)), None);
        let id = f.add(FaultKind::MediaError(range(10, 4)), Some(2));
        assert_eq!(id, 1);
        // Touching only the blocks before or after: no fault.
        assert_eq!(f.read_fault(Lba::new(0), BlockCount::new(10)), None);
        assert_eq!(f.read_fault(Lba::new(14), BlockCount::new(10)), None);
        assert_eq!(
            f.read_fault(Lba::new(8), BlockCount::new(4)),
            Some(Lba::new(10))
        );
        assert!(matches!(
            f.check_read(Lba::new(12), BlockCount::new(1)),
            Err(StorageError::UnrecoveredRead { lba }) if lba == Lba::new(12)
        ));
        // Fired twice: expired.
        assert_eq!(f.read_fault(Lba::new(10), BlockCount::new(1)), None);
        assert!(f.list().is_empty());
        assert_eq!(f.counts().media_error, 2);
        // Writes do not trip media errors, reads not write errors.
        f.add(FaultKind::MediaError(range(0, 1)), None);
        assert!(f.check_write(Lba::new(0), BlockCount::new(1)).is_ok());
        f.add(FaultKind::WriteError(range(5, 1)), None);
        assert!(matches!(
            f.check_write(Lba::new(0), BlockCount::new(8)),
            Err(StorageError::WriteFault { lba }) if lba == Lba::new(5)
        ));
        assert_eq!(f.clear(), 2);
        assert!(f.check_read(Lba::new(0), BlockCount::new(1)).is_ok());
        assert_eq!(
            f.counts(),
            FaultCounts {
                media_error: 2,
                write_error: 1,
                copy_fail: 0,
                delay: 0
            }
        );
    }

    #[test]
    fn earliest_stop_fires_alone() {
        let f = FaultSet::default();
        let late = f.add(FaultKind::MediaError(range(20, 1)), Some(1));
        f.add(FaultKind::MediaError(range(15, 1)), Some(1));
        assert_eq!(
            f.read_fault(Lba::new(0), BlockCount::new(32)),
            Some(Lba::new(15))
        );
        // The later rule did not fire and is still there.
        assert_eq!(f.list().len(), 1);
        assert_eq!(f.list()[0].id, late);
        assert_eq!(f.list()[0].fired, 0);
        assert!(f.remove(late));
        assert!(!f.remove(late));
    }

    #[test]
    fn copy_fail_by_segment_and_by_blocks() {
        let f = FaultSet::default();
        f.add(
            FaultKind::copy_fail_in_segment(2, 3, CopyFailError::Write),
            Some(1),
        );
        let fire = |index, before, count| {
            let (p, n, e) = f.peek_copy(index, before, BlockCount::new(count))?;
            assert!(f.fire(p, "test"));
            Some((n, e))
        };
        assert_eq!(fire(0, 0, 8), None);
        // Segment 2 is 3 blocks long: stopping after 3 would be after it.
        assert_eq!(fire(2, 16, 3), None);
        // Found but not fired: still there.
        assert!(f.peek_copy(2, 16, BlockCount::new(8)).is_some());
        assert_eq!(fire(2, 16, 8), Some((3, CopyFailError::Write)));
        assert_eq!(fire(2, 16, 8), None);
        f.add(
            FaultKind::CopyFail {
                at: CopyFailAt::Blocks(10),
                error: CopyFailError::Read,
            },
            None,
        );
        assert_eq!(fire(0, 0, 8), None);
        assert_eq!(fire(1, 8, 8), Some((2, CopyFailError::Read)));
        assert_eq!(fire(2, 16, 8), None);
        assert_eq!(f.counts().copy_fail, 2);
    }

    #[test]
    fn delay_matches_op_and_range() {
        let f = FaultSet::default();
        assert_eq!(f.delay(Op::Read, None), Duration::ZERO);
        f.add(
            FaultKind::Delay {
                ms: 5,
                on: Some(Op::Read),
                range: Some(range(100, 8)),
            },
            Some(1),
        );
        assert_eq!(
            f.delay(Op::Write, Some((Lba::new(100), BlockCount::new(1)))),
            Duration::ZERO
        );
        assert_eq!(
            f.delay(Op::Read, Some((Lba::new(0), BlockCount::new(100)))),
            Duration::ZERO
        );
        assert_eq!(
            f.delay(Op::Read, Some((Lba::new(99), BlockCount::new(2)))),
            Duration::from_millis(5)
        );
        assert_eq!(
            f.delay(Op::Read, Some((Lba::new(99), BlockCount::new(2)))),
            Duration::ZERO
        );
        f.add(
            FaultKind::Delay {
                ms: 1,
                on: None,
                range: None,
            },
            None,
        );
        assert_eq!(f.delay(Op::Flush, None), Duration::from_millis(1));
        assert_eq!(f.counts().delay, 2);
        assert_eq!(f.add(FaultKind::MediaError(range(0, 1)), Some(0)), 0);
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            FaultKind::copy_fail_in_segment(2, 0, CopyFailError::Write).to_string(),
            "copy_fail in segment 2 after 0 blocks (write fault)"
        );
        assert_eq!(
            FaultKind::Delay {
                ms: 3,
                on: Some(Op::Copy),
                range: None
            }
            .to_string(),
            "delay 3 ms on copy"
        );
    }
}
