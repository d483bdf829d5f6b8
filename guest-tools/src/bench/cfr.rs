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

mod judge;
pub use self::judge::*;

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
mod tests;
