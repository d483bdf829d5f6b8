//! `copy_file_range(2)` of 64 MiB through the kernel's copy path, on the
//! `nvm` namespace (NVMe/TCP) and on the SCSI disk, three ways, each timed
//! and counted in the same run:
//!
//! - (a) the offload path: `queue/copy_max_bytes` as the kernel set it,
//!   whatever the kernel then does (offload, or an attempt and a fallback);
//! - (b) the baseline: `copy_max_bytes` = 0, the kernel's own read/write
//!   fallback (restored afterwards);
//! - (c) for reference, the guest's read+write loop of 1 MiB O_DIRECT
//!   chunks (the `*_readwrite_64MiB` loop).
//!
//! Each destination is first overwritten with stamped blocks of another
//! generation, so a copy that never wrote is told apart from a wrong one.
//! Printed per copy: wall time (copy + fsync), MiB/s, the backend's
//! read/written/copied deltas, fabric byte deltas (NVMe/TCP: total, data,
//! by command class, new connections = reconnects), the path the counters
//! show and whether the destination verified; then one `# bench
//! <kind>-cfr-64MiB` line with (a)/(b) time and fabric ratios.
//!
//! Verdict: (b) and (c) must verify (else the numbers mean nothing: `not
//! ok`). (a) is a finding: the known bugs' signatures are XFAIL with their
//! ids (`copy-error-lost`: reported copied, never written;
//! `copy-tcp-r2t`: the Copy descriptors refused on R2T, fallen back), XPASS
//! if listed and not seen; any other wrong copy fails. A kernel without
//! block-layer copy offload (no `queue/copy_max_bytes`: 6.1, 6.12, plain
//! 7.2) gets one line saying so; (a) and (b) are not run, (c) still is.

use std::{
    fs::File,
    os::unix::fs::FileExt,
    path::Path,
    time::{Duration, Instant},
};

use super::{
    ledger::{self, Cpu},
    plan, read_write_copy, Ctx, Dev, BS4K, CHUNK, COPY_BYTES, DST_OFFLOAD, DST_RW,
};
use crate::{
    blockio::{self, AlignedBuf},
    control::{self, DevStats},
    kcopy::{
        self, kmsg,
        kmsg::CopyCause,
        path::{self as kpath, CopyPath},
        probe::{self, Cfr, Limits},
        Finding,
    },
    ktap::{fail, Step, Verdict},
    nvme::connect::Connected,
    runner::Bugs,
    stamp,
};

/// One of the three copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// (a) copy_file_range, copy_max_bytes as the kernel set it.
    Offload,
    /// (b) copy_file_range, copy_max_bytes = 0.
    Fallback,
    /// (c) the guest's read+write loop.
    ReadWrite,
}

impl Way {
    /// Key prefix in the `# bench` line.
    pub fn key(self) -> &'static str {
        match self {
            Way::Offload => "offload",
            Way::Fallback => "fallback",
            Way::ReadWrite => "readwrite",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Way::Offload => "(a) copy_file_range, offload path (copy_max_bytes as set)",
            Way::Fallback => "(b) copy_file_range, copy_max_bytes 0 (kernel fallback)",
            Way::ReadWrite => "(c) guest read+write loop, 1 MiB O_DIRECT",
        }
    }

    /// Where this copy lands: (c) reuses [`read_write_copy`], which writes
    /// at [`DST_RW`].
    fn dst(self) -> u64 {
        match self {
            Way::Offload => DST_OFFLOAD,
            Way::Fallback | Way::ReadWrite => DST_RW,
        }
    }

    /// A generation for the destination's "before" blocks, never the
    /// source's.
    fn before_gen(self, src_gen: u64) -> u64 {
        src_gen
            ^ (0x0bef_0000
                | match self {
                    Way::Offload => 1,
                    Way::Fallback => 2,
                    Way::ReadWrite => 3,
                })
    }
}

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
    fn errno(&self) -> Option<i32> {
        self.cfr.as_ref().and_then(Cfr::errno)
    }

    fn reported(&self) -> u64 {
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

/// Restores a queue's copy_max_bytes when dropped (or by [`MaxBytes::restore`],
/// which checks it).
struct MaxBytes<'a> {
    sys: &'a Path,
    block: &'a str,
    orig: u64,
    done: bool,
}

impl<'a> MaxBytes<'a> {
    fn set(sys: &'a Path, block: &'a str, v: u64, orig: u64) -> Result<Self, Verdict> {
        let g = Self {
            sys,
            block,
            orig,
            done: false,
        };
        probe::set_max_bytes(sys, block, v).map_err(fail(block))?;
        let now = probe::limits(sys, block).map_err(fail(block))?;
        if now.max_bytes != Some(v) {
            return Err(Verdict::fail(format!(
                "{block}: wrote {v} to queue/copy_max_bytes, it reads {:?}",
                now.max_bytes
            )));
        }
        Ok(g)
    }

    fn restore(mut self) -> Step {
        self.done = true;
        probe::set_max_bytes(self.sys, self.block, self.orig).map_err(fail(self.block))?;
        let now = probe::limits(self.sys, self.block).map_err(fail(self.block))?;
        if now.max_bytes != Some(self.orig) {
            return Err(Verdict::fail(format!(
                "{}: queue/copy_max_bytes not restored: reads {:?}, was {}",
                self.block, now.max_bytes, self.orig
            )));
        }
        Ok(())
    }
}

impl Drop for MaxBytes<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = probe::set_max_bytes(self.sys, self.block, self.orig);
        }
    }
}

/// Wait (up to 60 s) for controller `conn` to be live again: a failed Copy
/// makes nvme-tcp reconnect. Says what it saw when it was not live.
fn wait_live(sys: &Path, conn: Option<Connected>) -> Option<String> {
    let conn = conn?;
    let state = sys.join(format!("class/nvme/nvme{}/state", conn.instance));
    let read = || std::fs::read_to_string(&state).map(|s| s.trim().to_string());
    let first = read().unwrap_or_default();
    if first == "live" {
        return None;
    }
    let start = Instant::now();
    let mut now = first.clone();
    while now != "live" && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        now = read().unwrap_or_default();
    }
    Some(format!(
        "controller nvme{} was {first} after the copy; {now} after {:.1} s",
        conn.instance,
        start.elapsed().as_secs_f64()
    ))
}

/// Read the 64 MiB at `at` back and tally its blocks. A read refused while
/// the controller reconnects is retried (5 times) once it is live.
fn read_back(
    d: &Dev,
    at: u64,
    before_gen: u64,
    sys: &Path,
    conn: Option<Connected>,
    diags: &mut Vec<String>,
) -> Result<DataState, Verdict> {
    let mut t = Tally::default();
    let mut buf = AlignedBuf::new(CHUNK as usize);
    let mut off = 0;
    let mut retries = 0;
    while off < COPY_BYTES {
        match d.file.read_at(buf.as_mut_slice(), at + off) {
            Ok(n) if n as u64 == CHUNK => {
                t.add(buf.as_slice(), at + off, off / BS4K, d.gen, before_gen);
                off += CHUNK;
            }
            Ok(n) => {
                return Err(Verdict::fail(format!(
                    "{}: short read {n} at byte {}",
                    d.name,
                    at + off
                )))
            }
            Err(e) if conn.is_some() && retries < 5 => {
                retries += 1;
                diags.push(format!(
                    "reading back {} at byte {}: {e}; waiting for the controller (retry {retries})",
                    d.name,
                    at + off
                ));
                std::thread::sleep(Duration::from_millis(500));
                diags.extend(wait_live(sys, conn));
            }
            Err(e) => {
                return Err(Verdict::fail(format!(
                    "{}: reading back at byte {}: {e}",
                    d.name,
                    at + off
                )))
            }
        }
    }
    Ok(t.state())
}

/// One `stats` snapshot: the device's counters and the fabric's.
fn snapshot(
    c: &mut Ctx<'_>,
    dev: &str,
) -> Result<Option<(DevStats, Option<FabricCounts>)>, Verdict> {
    let Some(ctl) = c.ctl.as_mut() else {
        return Ok(None);
    };
    let r = ctl
        .request(r#"{"cmd":"stats"}"#)
        .map_err(fail("control stats"))?;
    let s = control::parse_stats(&r, dev).map_err(Verdict::Fail)?;
    Ok(Some((s, parse_fabric(&r))))
}

fn device<'c>(c: &'c Ctx<'_>, nvme: bool) -> Result<&'c Dev, Verdict> {
    let d = if nvme { &c.nvme } else { &c.scsi };
    d.as_ref()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))
}

/// Stamp the destination with "before" blocks, copy `way`, read back.
fn one(c: &mut Ctx<'_>, nvme: bool, way: Way) -> Result<Run, Verdict> {
    let dst = way.dst();
    let (name, before_gen) = {
        let d = device(c, nvme)?;
        let g = way.before_gen(d.gen);
        blockio::write_stamped(&d.file, dst, COPY_BYTES / BS4K, g, CHUNK / BS4K).map_err(fail(
            &format!("{}: stamping the destination at byte {dst}", d.name),
        ))?;
        (d.name.clone(), g)
    };
    let before = snapshot(c, &name)?;
    let mut log = kmsg::Kmsg::start();
    let d = device(c, nvme)?;
    let cpu0 = Cpu::now();
    let t = Instant::now();
    let (cfr, sync_error) = match way {
        Way::ReadWrite => (
            None,
            read_write_copy(d).err().map(|v| match v {
                Verdict::Fail(m) | Verdict::Skip(m) => m,
                Verdict::Pass => String::new(),
            }),
        ),
        Way::Offload | Way::Fallback => {
            let r = probe::copy_file_range(&d.file, 0, &d.file, dst, COPY_BYTES);
            (Some(r), sync(&d.file))
        }
    };
    let took = t.elapsed();
    let cpu = Cpu::now().zip(cpu0).map(|(b, a)| b.since(&a));
    let after = snapshot(c, &name)?;
    let klog = log.since();
    let mut diags = Vec::new();
    diags.extend(wait_live(&c.sys, c.conn.filter(|_| nvme)));
    let d = device(c, nvme)?;
    let data = read_back(
        d,
        dst,
        before_gen,
        &c.sys,
        c.conn.filter(|_| nvme),
        &mut diags,
    )?;
    let (dev, fabric) = match (before, after) {
        (Some((a, fa)), Some((b, fb))) => (
            Some((
                b.read_bytes.saturating_sub(a.read_bytes),
                b.written_bytes.saturating_sub(a.written_bytes),
                b.copied_bytes.saturating_sub(a.copied_bytes),
            )),
            // The fabric is NVMe/TCP's: nothing to do with the SCSI disk.
            match (nvme, fa, fb) {
                (true, Some(fa), Some(fb)) => Some(fb.since(&fa)),
                _ => None,
            },
        ),
        _ => (None, None),
    };
    let path = dev.map(|(r, w, cp)| {
        kpath::classify(
            &kpath::Delta {
                src_read: r,
                dst_written: w,
                dst_copied: cp,
                other_io: 0,
                fabric_data: fabric.map(|f| f.data),
                copy_commands: fabric.map(|f| f.copy_cmds),
            },
            COPY_BYTES,
        )
    });
    let run = Run {
        way,
        took,
        cfr,
        sync_error,
        dev,
        fabric,
        path,
        cause: kmsg::copy_cause(&klog),
        data,
        cpu,
    };
    c.diag(format!("{name}: {}", describe(&run)));
    for l in klog.iter().take(6) {
        c.diag(format!("kernel: {l}"));
    }
    if klog.len() > 6 {
        c.diag(format!("kernel: ... {} more line(s)", klog.len() - 6));
    }
    for l in diags {
        c.diag(l);
    }
    Ok(run)
}

fn sync(f: &File) -> Option<String> {
    f.sync_all().err().map(|e| e.to_string())
}

/// One diagnostic line for a copy.
pub fn describe(r: &Run) -> String {
    let mut s = format!(
        "{}: {} s ({} MiB/s)",
        r.way.what(),
        plan::secs(r.took),
        plan::mib_per_s(COPY_BYTES, r.took)
    );
    if let Some(cfr) = &r.cfr {
        s.push_str(&format!("; copy_file_range {cfr}"));
    }
    if let Some(e) = &r.sync_error {
        s.push_str(&format!("; error: {e}"));
    }
    match r.dev {
        Some((rd, w, cp)) => {
            s.push_str(&format!("; counters read +{rd} written +{w} copied +{cp}"))
        }
        None => s.push_str("; counters n/a (no zonecopy.control=)"),
    }
    if let Some(f) = r.fabric {
        s.push_str(&format!(
            "; fabric total +{} data +{} (read c2h +{}, write h2c +{}, Copy commands +{} h2c +{}), \
             new connections +{}",
            f.total, f.data, f.read_c2h, f.write_h2c, f.copy_cmds, f.copy_h2c, f.connections
        ));
    }
    if let Some(p) = r.path {
        s.push_str(&format!("; path {p}"));
    }
    s.push_str(&format!(
        "; data {}",
        match &r.data {
            DataState::Wrong(m) => format!("wrong: {m}"),
            d => d.word().to_string(),
        }
    ));
    s
}

fn path_word(p: Option<CopyPath>) -> String {
    match p {
        Some(CopyPath::Offload) => "offload",
        Some(CopyPath::Fallback) => "fallback",
        Some(CopyPath::Nothing) => "nothing",
        Some(CopyPath::Mixed) => "mixed",
        None => "n/a",
    }
    .to_string()
}

/// The `# bench <kind>-cfr-64MiB` fields: per copy (`offload_`, `fallback_`,
/// `readwrite_`) time, MiB/s, path, data, host and fabric bytes; then (a)/(b)
/// time and fabric ratios and (c)/(b) time. A copy not run reads `n/a`.
pub fn fields(dev: &str, limits: &Limits, runs: [Option<&Run>; 3]) -> Vec<(String, String)> {
    let show = |v: Option<u64>| v.map_or_else(|| "absent".to_string(), |n| n.to_string());
    let mut f: Vec<(String, String)> = vec![
        ("dev".into(), dev.into()),
        ("bytes".into(), COPY_BYTES.to_string()),
        ("copy_max_bytes".into(), show(limits.max_bytes)),
        ("copy_max_hw_bytes".into(), show(limits.max_hw_bytes)),
    ];
    let na = || "n/a".to_string();
    for (r, way) in runs
        .iter()
        .zip([Way::Offload, Way::Fallback, Way::ReadWrite])
    {
        let k = |s: &str| format!("{}_{s}", way.key());
        match r {
            None => f.push((k("s"), na())),
            Some(r) => {
                f.push((k("s"), plan::secs(r.took)));
                f.push((k("MiBps"), plan::mib_per_s(COPY_BYTES, r.took)));
                f.push((k("path"), path_word(r.path)));
                f.push((k("data"), r.data.word().into()));
                if let Some(cpu) = r.cpu {
                    f.push((k("cpu_s"), format!("{:.2}", cpu.busy_time().as_secs_f64())));
                }
                if let Some((rd, w, cp)) = r.dev {
                    f.push((k("host_bytes"), (rd + w).to_string()));
                    f.push((k("copied_bytes"), cp.to_string()));
                }
                if let Some(fb) = r.fabric {
                    f.push((k("fabric_bytes"), fb.total.to_string()));
                    f.push((k("fabric_data_bytes"), fb.data.to_string()));
                    f.push((k("copy_cmds"), fb.copy_cmds.to_string()));
                    f.push((k("new_connections"), fb.connections.to_string()));
                }
            }
        }
    }
    let [a, b, c] = runs;
    let secs = |r: &Run| r.took.as_secs_f64();
    f.push((
        "offload_vs_fallback_time".into(),
        a.zip(b)
            .map_or_else(na, |(a, b)| plan::ratio(secs(a), secs(b))),
    ));
    if let (Some(fa), Some(fb)) = (a.and_then(|r| r.fabric), b.and_then(|r| r.fabric)) {
        f.push((
            "offload_vs_fallback_fabric".into(),
            plan::ratio(fa.total as f64, fb.total as f64),
        ));
    }
    f.push((
        "readwrite_vs_fallback_time".into(),
        c.zip(b)
            .map_or_else(na, |(c, b)| plan::ratio(secs(c), secs(b))),
    ));
    f
}

/// The copy_file_range benchmark of the SCSI disk (`nvme` false) or the
/// NVMe namespace.
pub(super) fn t_cfr(c: &mut Ctx<'_>, nvme: bool) -> Step {
    let (name, block) = {
        let (d, why) = if nvme {
            (&c.nvme, &c.nvme_why)
        } else {
            (&c.scsi, &c.scsi_why)
        };
        let d = d.as_ref().ok_or_else(|| Verdict::skip(why.clone()))?;
        if !d.source {
            return Err(Verdict::skip(if nvme {
                "needs nvme_source"
            } else {
                "needs scsi_source"
            }));
        }
        let block = d
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Verdict::fail(format!("{}: no disk name", d.path.display())))?;
        (d.name.clone(), block)
    };
    let sys = c.sys.clone();
    let limits = probe::limits(&sys, &block).map_err(fail(&format!("{name} limits")))?;
    c.diag(format!("{name} (/dev/{block}): {limits}"));
    let mut a = None;
    let mut b = None;
    let mut finding = Finding::Pass;
    let mut exposed: &'static [&'static str] = &[];
    if !limits.present() {
        c.diag(format!(
            "{name}: copy_file_range offload vs fallback not applicable: no block-layer copy \
             offload in kernel {} (no queue/copy_max_bytes); (a) and (b) not run, (c) measured",
            probe::kernel_release()
        ));
    } else {
        // A copy the kernel splits (copy_max_bytes below its length) can
        // oops the 7.2 kernels (copy-merge-oops): (a) is not run then.
        let split_oops = c.cfg.xfail.iter().any(|b| b == kcopy::BUG_MERGE_OOPS)
            && limits.max_bytes.is_some_and(|m| m < COPY_BYTES);
        if split_oops {
            c.diag(format!(
                "{name}: {} listed and copy_max_bytes {:?} < {COPY_BYTES}: the kernel would \
                 split the copy into Copies that can oops it; (a) not run (raise the \
                 namespace's mssrl/mcl, e.g. --ns ...,mssrl=16384,mcl=16384)",
                kcopy::BUG_MERGE_OOPS,
                limits.max_bytes
            ));
        } else if limits.offload_enabled() {
            if nvme {
                exposed = kcopy::OFFLOAD_BUGS;
            }
            let r = one(c, nvme, Way::Offload)?;
            finding = judge_offload(&r);
            match &finding {
                Finding::Pass => c.diag(format!(
                    "{name}: finding: (a) verified, path {}",
                    path_word(r.path)
                )),
                Finding::Bug { id, why } => c.diag(format!("{name}: finding ({id}): {why}")),
                Finding::Fail(why) | Finding::Skip(why) => {
                    c.diag(format!("{name}: finding: {why}"))
                }
            }
            a = Some(r);
        } else {
            c.diag(format!(
                "{name}: the kernel offers no copy offload on /dev/{block} (copy_max_bytes 0): \
                 (a) would be (b), not run"
            ));
        }
        let orig = limits.max_bytes.unwrap_or(0);
        let g = MaxBytes::set(&sys, &block, 0, orig)?;
        let r = one(c, nvme, Way::Fallback);
        g.restore()?;
        let r = r?;
        judge_baseline(&r).map_err(Verdict::Fail)?;
        b = Some(r);
    }
    let r = one(c, nvme, Way::ReadWrite)?;
    judge_baseline(&r).map_err(Verdict::Fail)?;
    let f = fields(&name, &limits, [a.as_ref(), b.as_ref(), Some(&r)]);
    let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let kind = if nvme { "nvme" } else { "scsi" };
    c.diag(plan::bench_line(&format!("{kind}-cfr-64MiB"), &f));
    for l in ledger::table(
        &format!("{kind}-cfr-64MiB"),
        [a.as_ref(), b.as_ref(), Some(&r)],
    ) {
        c.diag(l);
    }
    if a.is_none() {
        return Ok(());
    }
    let (verdict, hit) = finding.split();
    c.bugs = Bugs { hit, exposed };
    match verdict {
        Verdict::Pass => Ok(()),
        v => Err(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64, gen: u64) -> Vec<u8> {
        let mut b = vec![0; stamp::BLOCK_SIZE];
        stamp::fill(&mut b, n, gen).unwrap();
        b
    }

    #[test]
    fn tally_tells_copied_stale_and_wrong() {
        // Destination at byte 8192 (block 2), source blocks 0.. of gen 7,
        // "before" blocks 2.. of gen 9.
        let mut buf = Vec::new();
        buf.extend(block(0, 7)); // copied
        buf.extend(block(3, 9)); // never written (before block of byte 12288)
        buf.extend(block(2, 7)); // source block 2 where 2 belongs: right
        let mut t = Tally::default();
        t.add(&buf, 8192, 0, 7, 9);
        assert_eq!((t.good, t.stale, t.wrong), (2, 1, 0));
        assert!(
            matches!(t.state(), DataState::Wrong(m) if m.starts_with("2 block(s) copied, 1 never written, 0 wrong"))
        );

        let mut t = Tally::default();
        t.add(&[block(2, 9), block(3, 9)].concat(), 8192, 0, 7, 9);
        assert_eq!(t.state(), DataState::NotWritten);

        let mut t = Tally::default();
        t.add(&[block(5, 7), block(6, 7)].concat(), 8192, 5, 7, 9);
        assert_eq!(t.state(), DataState::Verified);

        // Source block 1 where block 0 belongs: misdirected, wrong.
        let mut t = Tally::default();
        t.add(&[block(1, 7), vec![0; 4096]].concat(), 8192, 0, 7, 9);
        assert_eq!(t.wrong, 2);
        let DataState::Wrong(m) = t.state() else {
            panic!("not wrong")
        };
        assert!(
            m.contains("first wrong: byte 8192 should hold source block 0"),
            "{m}"
        );
    }

    #[test]
    fn before_generations_differ_from_the_source() {
        for w in [Way::Offload, Way::Fallback, Way::ReadWrite] {
            assert_ne!(w.before_gen(42), 42);
            assert_ne!(w.before_gen(0), 0);
        }
    }

    const STATS: &str = r#"{"devices":{"ns1":{"copied_bytes":0,"read_bytes":10,"written_bytes":20}},"fabric":{"admin":{"commands":47,"data_c2h":33280,"data_h2c":1024,"header_c2h":1320,"header_h2c":3384},"connection_c2h":256,"connection_h2c":256,"connections":2,"copy":{"commands":1,"data_c2h":0,"data_h2c":128,"header_c2h":24,"header_h2c":72},"data_bytes":799533696,"other":{"commands":2,"data_c2h":0,"data_h2c":1024,"header_c2h":48,"header_h2c":144},"read":{"commands":11919,"data_c2h":531369984,"data_h2c":0,"header_c2h":605376,"header_h2c":858168},"terminations_sent":0,"total_bytes":802122680,"write":{"commands":11401,"data_c2h":0,"data_h2c":268128256,"header_c2h":278712,"header_h2c":841224}},"ok":true}"#;

    #[test]
    fn fabric_from_stats() {
        let f = parse_fabric(STATS).unwrap();
        assert_eq!(
            f,
            FabricCounts {
                total: 802_122_680,
                data: 799_533_696,
                read_c2h: 531_369_984,
                write_h2c: 268_128_256,
                read_cmds: 11919,
                write_cmds: 11401,
                copy_cmds: 1,
                copy_h2c: 128,
                connections: 2,
            }
        );
        let g = FabricCounts {
            total: 1000,
            connections: 4,
            ..f
        };
        assert_eq!(g.since(&f).connections, 2);
        assert_eq!(g.since(&f).total, 0);
        assert_eq!(parse_fabric(r#"{"devices":{}}"#), None);
    }

    fn run(way: Way, data: DataState, path: CopyPath, cause: Option<CopyCause>) -> Run {
        Run {
            way,
            took: Duration::from_millis(1500),
            cfr: (way != Way::ReadWrite).then(|| Cfr {
                len: COPY_BYTES,
                copied: COPY_BYTES,
                calls: vec![Ok(COPY_BYTES)],
                elapsed: Duration::from_millis(1400),
            }),
            sync_error: None,
            dev: Some(match path {
                CopyPath::Offload => (0, 0, COPY_BYTES),
                CopyPath::Nothing => (0, 0, 0),
                _ => (COPY_BYTES, COPY_BYTES, 0),
            }),
            fabric: None,
            path: Some(path),
            cause,
            data,
            cpu: None,
        }
    }

    #[test]
    fn offload_findings() {
        let listed = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        // 7.2-series: reported copied, never written: copy-error-lost.
        let r = run(
            Way::Offload,
            DataState::NotWritten,
            CopyPath::Nothing,
            Some(CopyCause::TcpR2t),
        );
        let f = judge_offload(&r);
        assert!(
            matches!(&f, Finding::Bug { id, why } if *id == kcopy::BUG && why.contains("nvme-tcp never sent"))
        );
        let o = kcopy::outcome(
            f,
            &listed(&["copy-error-lost", "copy-tcp-r2t"]),
            kcopy::OFFLOAD_BUGS,
        );
        assert!(
            matches!(o, crate::ktap::Outcome::XFail(m) if m.starts_with("copy-error-lost: (a) copy_file_range reported 67108864 bytes"))
        );
        // 7.2-fixed: fell back after the R2T refusal: copy-tcp-r2t.
        let r = run(
            Way::Offload,
            DataState::Verified,
            CopyPath::Fallback,
            Some(CopyCause::TcpR2t),
        );
        let f = judge_offload(&r);
        assert!(matches!(&f, Finding::Bug { id, .. } if *id == kcopy::BUG_TCP));
        // Not listed: a failure.
        assert!(matches!(
            kcopy::outcome(f, &[], kcopy::OFFLOAD_BUGS),
            crate::ktap::Outcome::Fail(_)
        ));
        // Offloaded and verified: a pass; with the bug listed, an XPASS.
        let r = run(Way::Offload, DataState::Verified, CopyPath::Offload, None);
        assert_eq!(judge_offload(&r), Finding::Pass);
        assert!(matches!(
            kcopy::outcome(
                judge_offload(&r),
                &listed(&["copy-tcp-r2t"]),
                kcopy::OFFLOAD_BUGS
            ),
            crate::ktap::Outcome::XPass(_)
        ));
        // Wrong data is never a known bug.
        let r = run(
            Way::Offload,
            DataState::Wrong("x".into()),
            CopyPath::Mixed,
            Some(CopyCause::TcpR2t),
        );
        assert!(matches!(judge_offload(&r), Finding::Fail(_)));
        // An errno: a failure.
        let mut r = run(Way::Offload, DataState::NotWritten, CopyPath::Nothing, None);
        r.cfr = Some(Cfr {
            len: COPY_BYTES,
            copied: 0,
            calls: vec![Err(libc::EIO)],
            elapsed: Duration::ZERO,
        });
        assert!(matches!(judge_offload(&r), Finding::Fail(m) if m.contains("EIO")));
    }

    #[test]
    fn baselines_must_verify_and_read_and_write() {
        let ok = run(Way::Fallback, DataState::Verified, CopyPath::Fallback, None);
        assert_eq!(judge_baseline(&ok), Ok(()));
        let lost = run(
            Way::Fallback,
            DataState::NotWritten,
            CopyPath::Nothing,
            None,
        );
        assert!(judge_baseline(&lost)
            .unwrap_err()
            .contains("never written: the numbers mean nothing"));
        let offloaded = run(Way::Fallback, DataState::Verified, CopyPath::Offload, None);
        assert!(judge_baseline(&offloaded)
            .unwrap_err()
            .contains("the counters show offload"));
        let rw = run(
            Way::ReadWrite,
            DataState::Wrong("w".into()),
            CopyPath::Fallback,
            None,
        );
        assert!(judge_baseline(&rw)
            .unwrap_err()
            .starts_with("(c) guest read+write"));
    }

    #[test]
    fn bench_line_fields() {
        let mut a = run(
            Way::Offload,
            DataState::Verified,
            CopyPath::Fallback,
            Some(CopyCause::TcpR2t),
        );
        a.took = Duration::from_secs(12);
        a.fabric = Some(FabricCounts {
            total: 300,
            data: 200,
            connections: 2,
            copy_cmds: 4,
            ..FabricCounts::default()
        });
        let mut b = run(Way::Fallback, DataState::Verified, CopyPath::Fallback, None);
        b.took = Duration::from_secs(4);
        b.fabric = Some(FabricCounts {
            total: 100,
            data: 90,
            ..FabricCounts::default()
        });
        let c = run(
            Way::ReadWrite,
            DataState::Verified,
            CopyPath::Fallback,
            None,
        );
        let limits = Limits {
            max_bytes: Some(16 << 20),
            max_hw_bytes: Some(16 << 20),
        };
        let f = fields("ns1", &limits, [Some(&a), Some(&b), Some(&c)]);
        let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            plan::bench_line("nvme-cfr-64MiB", &f),
            "bench nvme-cfr-64MiB dev=ns1 bytes=67108864 copy_max_bytes=16777216 \
             copy_max_hw_bytes=16777216 offload_s=12.000 offload_MiBps=5.3 offload_path=fallback \
             offload_data=verified offload_host_bytes=134217728 offload_copied_bytes=0 \
             offload_fabric_bytes=300 offload_fabric_data_bytes=200 offload_copy_cmds=4 \
             offload_new_connections=2 fallback_s=4.000 fallback_MiBps=16.0 fallback_path=fallback \
             fallback_data=verified fallback_host_bytes=134217728 fallback_copied_bytes=0 \
             fallback_fabric_bytes=100 fallback_fabric_data_bytes=90 fallback_copy_cmds=0 \
             fallback_new_connections=0 readwrite_s=1.500 readwrite_MiBps=42.7 readwrite_path=fallback \
             readwrite_data=verified readwrite_host_bytes=134217728 readwrite_copied_bytes=0 \
             offload_vs_fallback_time=3.00 offload_vs_fallback_fabric=3.00 \
             readwrite_vs_fallback_time=0.38"
        );
        // A kernel without copy offload: (a) and (b) n/a.
        let f = fields("lun0", &Limits::default(), [None, None, Some(&c)]);
        let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let line = plan::bench_line("scsi-cfr-64MiB", &f);
        assert!(line.starts_with(
            "bench scsi-cfr-64MiB dev=lun0 bytes=67108864 copy_max_bytes=absent \
             copy_max_hw_bytes=absent offload_s=n/a fallback_s=n/a readwrite_s=1.500"
        ));
        assert!(line.ends_with("offload_vs_fallback_time=n/a readwrite_vs_fallback_time=n/a"));
    }
}
