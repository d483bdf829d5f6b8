//! The counts and data of one run, and the verdicts on them.

use super::*;

/// NVMe/TCP fabric counters (control `stats` -> `fabric`), bytes both ways
/// unless named by direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FabricCounts {
    /// Every byte on every connection (PDU headers included).
    pub total: u64,
    /// Data bytes, every command class.
    pub data: u64,
    /// Read data, controller to host.
    pub read_c2h: u64,
    /// Write data, host to controller.
    pub write_h2c: u64,
    /// Read commands.
    pub read_cmds: u64,
    /// Write commands.
    pub write_cmds: u64,
    /// Copy commands.
    pub copy_cmds: u64,
    /// Copy data (source range descriptors), host to controller.
    pub copy_h2c: u64,
    /// Connections accepted (admin and I/O queues): grows on reconnects.
    pub connections: u64,
}

impl FabricCounts {
    /// Growth since `before`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            total: self.total.saturating_sub(before.total),
            data: self.data.saturating_sub(before.data),
            read_c2h: self.read_c2h.saturating_sub(before.read_c2h),
            write_h2c: self.write_h2c.saturating_sub(before.write_h2c),
            read_cmds: self.read_cmds.saturating_sub(before.read_cmds),
            write_cmds: self.write_cmds.saturating_sub(before.write_cmds),
            copy_cmds: self.copy_cmds.saturating_sub(before.copy_cmds),
            copy_h2c: self.copy_h2c.saturating_sub(before.copy_h2c),
            connections: self.connections.saturating_sub(before.connections),
        }
    }
}

/// The fabric section of a `stats` reply, if the backend has one.
pub fn parse_fabric(reply: &str) -> Option<FabricCounts> {
    let f = control::find_value(reply, "fabric")?;
    let num = |obj: &str, k: &str| control::find_value(obj, k)?.trim().parse::<u64>().ok();
    let class = |c: &str, k: &str| num(control::find_value(f, c)?, k);
    Some(FabricCounts {
        total: num(f, "total_bytes")?,
        data: num(f, "data_bytes")?,
        read_c2h: class("read", "data_c2h")?,
        write_h2c: class("write", "data_h2c")?,
        read_cmds: class("read", "commands")?,
        write_cmds: class("write", "commands")?,
        copy_cmds: class("copy", "commands")?,
        copy_h2c: class("copy", "data_h2c")?,
        connections: num(f, "connections")?,
    })
}

/// How the destination read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataState {
    /// Every block is the source's.
    Verified,
    /// Every block still holds what was there before the copy.
    NotWritten,
    /// Anything else, spelled out.
    Wrong(String),
}

impl DataState {
    /// Short word for the `# bench` line.
    pub fn word(&self) -> &'static str {
        match self {
            DataState::Verified => "verified",
            DataState::NotWritten => "not-written",
            DataState::Wrong(_) => "wrong",
        }
    }
}

/// Block counts of a destination read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The source's block.
    pub good: u64,
    /// The "before" block of that place.
    pub stale: u64,
    /// Neither.
    pub wrong: u64,
    /// The first wrong block: destination byte and why.
    pub first_wrong: Option<String>,
}

impl Tally {
    /// Count the 4 KiB blocks of `buf`, read at destination byte `at`,
    /// holding source blocks from `src_block` (generation `gen`) or, if not
    /// copied, the "before" blocks of generation `before_gen`.
    pub fn add(&mut self, buf: &[u8], at: u64, src_block: u64, gen: u64, before_gen: u64) {
        for (i, b) in (0u64..).zip(buf.chunks(stamp::BLOCK_SIZE)) {
            if stamp::verify(b, src_block + i, gen).is_ok() {
                self.good += 1;
            } else if stamp::verify(b, at / BS4K + i, before_gen).is_ok() {
                self.stale += 1;
            } else {
                self.wrong += 1;
                if self.first_wrong.is_none() {
                    let e = stamp::verify(b, src_block + i, gen)
                        .err()
                        .map_or_else(String::new, |e| e.to_string());
                    self.first_wrong = Some(format!(
                        "byte {} should hold source block {}: {e}",
                        at + i * BS4K,
                        src_block + i
                    ));
                }
            }
        }
    }

    /// The verdict on the data.
    pub fn state(&self) -> DataState {
        match (self.good, self.stale, self.wrong) {
            (_, 0, 0) => DataState::Verified,
            (0, _, 0) => DataState::NotWritten,
            (g, s, w) => DataState::Wrong(format!(
                "{g} block(s) copied, {s} never written, {w} wrong{}",
                self.first_wrong
                    .as_ref()
                    .map_or_else(String::new, |f| format!("; first wrong: {f}"))
            )),
        }
    }
}

/// What one copy measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub way: Way,
    /// Copy (+ fsync) wall time.
    pub took: Duration,
    /// The copy_file_range calls ((a), (b)).
    pub cfr: Option<Cfr>,
    /// An fsync error after the copy.
    pub sync_error: Option<String>,
    /// Backend (read, written, copied) byte deltas of the device.
    pub dev: Option<(u64, u64, u64)>,
    /// Fabric deltas (NVMe only).
    pub fabric: Option<FabricCounts>,
    /// The path the counters show.
    pub path: Option<CopyPath>,
    /// What the kernel log says about a failed Copy.
    pub cause: Option<CopyCause>,
    pub data: DataState,
    /// The guest's CPU ticks during the copy (`/proc/stat`).
    pub cpu: Option<Cpu>,
}

impl Run {
    pub(super) fn errno(&self) -> Option<i32> {
        self.cfr.as_ref().and_then(Cfr::errno)
    }

    pub(super) fn reported(&self) -> u64 {
        self.cfr.as_ref().map_or(COPY_BYTES, |c| c.copied)
    }
}

/// The finding of (a): the known bugs' signatures, a plain failure for any
/// other wrong copy, else a pass (offloaded or fallen back: the path is
/// reported, not judged).
pub fn judge_offload(r: &Run) -> Finding {
    if let Some(e) = r.errno() {
        return Finding::Fail(format!(
            "(a) copy_file_range failed with {} after {} of {COPY_BYTES} bytes",
            probe::errno_name(e),
            r.reported()
        ));
    }
    if r.reported() != COPY_BYTES {
        return Finding::Fail(format!(
            "(a) copy_file_range stopped at {} of {COPY_BYTES} bytes (a call returned 0)",
            r.reported()
        ));
    }
    if let Some(e) = &r.sync_error {
        return Finding::Fail(format!("(a) fsync after the copy: {e}"));
    }
    match &r.data {
        DataState::NotWritten => Finding::Bug {
            id: kcopy::BUG,
            why: format!(
                "(a) copy_file_range reported {} bytes but the destination was never written ({})",
                r.reported(),
                if r.cause == Some(CopyCause::TcpR2t) {
                    kcopy::BUG_CAUSE_TCP
                } else {
                    kcopy::BUG_CAUSE
                }
            ),
        },
        DataState::Wrong(m) => Finding::Fail(format!(
            "(a) destination wrong after copy_file_range reported {} bytes: {m}",
            r.reported()
        )),
        DataState::Verified => match (r.path, r.cause) {
            (Some(p), Some(CopyCause::TcpR2t)) if p != CopyPath::Offload => Finding::Bug {
                id: kcopy::BUG_TCP,
                why: format!(
                    "(a) the offload path fell back ({p}) after nvme-tcp refused the \
                     controller's R2T for the Copy descriptors ('unexpected r2t for a \
                     non-write command'), {} s for {COPY_BYTES} bytes",
                    plan::secs(r.took)
                ),
            },
            _ => Finding::Pass,
        },
    }
}

/// (b) and (c) must be complete, verified read/write copies.
pub fn judge_baseline(r: &Run) -> Result<(), String> {
    let what = r.way.what();
    if let Some(e) = r.errno() {
        return Err(format!(
            "{what}: failed with {} after {} of {COPY_BYTES} bytes",
            probe::errno_name(e),
            r.reported()
        ));
    }
    if r.reported() != COPY_BYTES {
        return Err(format!(
            "{what}: stopped at {} of {COPY_BYTES} bytes",
            r.reported()
        ));
    }
    if let Some(e) = &r.sync_error {
        return Err(format!("{what}: fsync: {e}"));
    }
    match &r.data {
        DataState::Verified => {}
        DataState::NotWritten => {
            return Err(format!(
                "{what}: destination never written: the numbers mean nothing"
            ))
        }
        DataState::Wrong(m) => {
            return Err(format!(
                "{what}: destination wrong ({m}): the numbers mean nothing"
            ))
        }
    }
    match r.path {
        Some(p) if p != CopyPath::Fallback => Err(format!(
            "{what}: the counters show {p}, expected the source read and the destination written{}",
            r.dev.map_or_else(String::new, |(rd, w, c)| format!(
                " (read +{rd} written +{w} copied +{c})"
            ))
        )),
        _ => Ok(()),
    }
}
