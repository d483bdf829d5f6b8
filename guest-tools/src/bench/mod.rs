//! The `bench` suite: what copy offload buys, measured in one guest run.
//!
//! - SCSI: 64 MiB copied within a `disk` LUN (plain, not zoned) by
//!   EXTENDED COPY(LID1) through SG_IO, and the same copy done by the guest
//!   reading and writing 1 MiB O_DIRECT chunks; both destinations verified
//!   block by block against the LBA-stamped source; the backend's counters
//!   (control `stats`) show what each copy cost the host path.
//! - NVMe over NVMe/TCP: 64 MiB copied within an `nvm` namespace by Copy
//!   (19h, descriptor format 0, ranges and commands cut to MSSRL, MSRC and
//!   MCL) through passthrough, and by read+write on the namespace's block
//!   device; both verified; fabric bytes (control `stats` -> `fabric`) of
//!   each. The offloaded copy must carry at most 1% of the copied bytes.
//! - The kernel's copy path ([`cfr`]): copy_file_range of the 64 MiB on
//!   each device with copy_max_bytes as set (offload path) and at 0 (the
//!   fallback baseline), next to the guest's read+write loop.
//! - fio (the host's, see [`fio`]) on every device of the guest, in the
//!   same interleaved rounds ([`fioset`]; `zonecopy.fio=` rounds, 3 by
//!   default): 4 KiB random read and write IOPS at QD1 and QD16 and
//!   sequential 1 MiB MiB/s, on our vhost-user-scsi disk, on QEMU's
//!   built-in scsi-hd over raw files of the same size (`zonecopy.scsihd=`,
//!   aio=io_uring; with cache=none, the production setting, and with
//!   cache=writeback, the host page cache as our backend uses it: `# bench
//!   scsi-vs-scsihd[-wb]` give ours / scsi-hd) and on the NVMe/TCP
//!   namespace (`# bench nvme-vs-scsi`); over PCIe also on QEMU's own NVMe
//!   controller ([`nvmeref`], `# bench nvme-vs-qemunvme[-wb]`). Each cell
//!   is the median over the rounds with its range, each ratio the median
//!   of the per-round ratios ([`stats`]).
//! - QEMU user networking's raw TCP throughput each way against the
//!   runner's sink (`zonecopy.sink=`, see [`net`]), printed next to the
//!   NVMe/TCP sequential numbers (`# bench nvme-vs-usernet`): how much of
//!   NVMe/TCP's gap is the network.
//!
//! - Where this guest's boot went ([`boot`], `# bench boot`).
//!
//! Each measurement is a KTAP test that passes only if its data verified
//! (copies: block by block; fio: every job ran without error and did I/O;
//! network: every byte arrived); numbers are diagnostics `# bench NAME
//! key=value ...` (see [`plan::bench_line`]), which `scripts/bench.sh`
//! collects. Slow numbers never fail a test. Layout of each device: source
//! at byte 0, offload destination at 64 MiB, read+write destination at 128
//! MiB (so 192 MiB are needed); fio runs after every copy verified and
//! overwrites all of it.

pub mod boot;
pub mod cfr;
pub mod fio;
mod fioset;
pub mod ledger;
pub mod net;
mod nvmecopy;
pub mod nvmeref;
pub mod plan;
mod scsicopy;
pub mod stats;
mod throughput;
mod timing;
use self::{nvmecopy::*, scsicopy::*, throughput::*};

use std::{
    fs::File,
    io::{self, Write},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    blockio::{self, AlignedBuf},
    cmdline::{Config, LunKind, NsKind},
    control,
    ktap::{ensure, fail, Ktap, Outcome, Step, Verdict},
    nvme::{
        connect::{self, Connected, HostId},
        copy::{self as ncopy, Fabric},
        ident::{self, IdNs},
        passthru,
    },
    runner::{Bugs, Context, Runner},
    sgio,
    stamp::{self, BLOCK_SIZE},
    sysfs,
    xcopy::{
        cdb::{self, CopyList, CscdId, ListIdUsage, Segment, CSCD_LEN},
        parse,
        sense::hex,
    },
};

const BS4K: u64 = BLOCK_SIZE as u64;
const MIB: u64 = 1 << 20;
/// Bytes copied by each copy benchmark.
pub const COPY_BYTES: u64 = 64 * MIB;
/// Where the offloaded copy lands.
const DST_OFFLOAD: u64 = COPY_BYTES;
/// Where the read+write copy lands.
const DST_RW: u64 = 2 * COPY_BYTES;
/// Bytes each device must have.
pub const NEED_BYTES: u64 = 3 * COPY_BYTES;
/// Read+write chunk.
const CHUNK: u64 = MIB;
/// Bytes moved each way by the user-networking throughput test.
const NET_BYTES: u64 = 128 * MIB;
/// INQUIRY PRODUCT IDENTIFICATION of the `cache=none` reference scsi-hd
/// (ci `qemu::SCSI_HD_PRODUCT`), the guest's `device/model`.
pub const SCSI_HD_PRODUCT: &str = "ZCBENCH-REF";
/// Likewise of the `cache=writeback` one (ci `qemu::SCSI_HD_WB_PRODUCT`).
pub const SCSI_HD_WB_PRODUCT: &str = "ZCBENCH-REF-WB";
/// SG_IO timeout of one EXTENDED COPY (TCG guests are slow).
const XCOPY_TIMEOUT_MS: u32 = 300_000;

/// One device under test (the SCSI disk LUN or the NVMe namespace).
struct Dev {
    /// Control-socket name (`lun<N>`, `ns<N>`).
    name: String,
    /// The block device node.
    path: PathBuf,
    /// Size in bytes, as configured.
    size: u64,
    file: File,
    /// Logical block size.
    bs: u64,
    /// Generation of the stamped source.
    gen: u64,
    /// Source written and verified.
    source: bool,
    /// Offloaded copy: time, and the backend's counters' deltas.
    offload: Option<Measured>,
    /// Read+write copy, likewise.
    rw: Option<Measured>,
}

/// One timed copy and what the backend counted.
#[derive(Debug, Clone, Default)]
struct Measured {
    took: Duration,
    /// Host-path (read, written, copied) byte deltas of the device.
    dev: Option<(u64, u64, u64)>,
    /// Fabric (data, total) byte deltas.
    fabric: Option<(u64, u64)>,
    /// Commands issued.
    commands: usize,
}

/// Suite state.
struct Ctx<'a> {
    cfg: &'a Config,
    sys: PathBuf,
    ctl: Option<control::Client>,
    scsi: Option<Dev>,
    /// Why there is no SCSI device.
    scsi_why: String,
    /// The NVMe controller and namespace.
    conn: Option<Connected>,
    ctrl: Option<File>,
    nvme: Option<Dev>,
    nsid: u32,
    id_ns: Option<IdNs>,
    nvme_why: String,
    /// User networking, MiB/s guest to host and host to guest.
    usernet: Option<(f64, f64)>,
    diags: Vec<String>,
    /// The known bugs a test met (XFAIL / XPASS, see [`cfr`]); taken by
    /// the runner.
    bugs: Bugs,
}

impl Ctx<'_> {
    fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    /// One `stats` reply: (read, written, copied) of `dev` and the fabric
    /// counters. `None` without a control socket.
    fn stats(&mut self, dev: &str) -> Option<Result<(control::DevStats, Option<Fabric>), String>> {
        let ctl = self.ctl.as_mut()?;
        Some(
            ctl.request(r#"{"cmd":"stats"}"#)
                .and_then(|r| Ok((control::parse_stats(&r, dev)?, ncopy::parse_fabric(&r)))),
        )
    }
}

type Stats = Option<Result<(control::DevStats, Option<Fabric>), String>>;

/// Counter deltas between two `stats` snapshots.
fn deltas(before: Stats, after: Stats, m: &mut Measured) -> Step {
    match (before, after) {
        (Some(Ok((a, fa))), Some(Ok((b, fb)))) => {
            m.dev = Some((
                b.read_bytes.wrapping_sub(a.read_bytes),
                b.written_bytes.wrapping_sub(a.written_bytes),
                b.copied_bytes.wrapping_sub(a.copied_bytes),
            ));
            if let (Some(fa), Some(fb)) = (fa, fb) {
                m.fabric = Some((
                    fb.data.wrapping_sub(fa.data),
                    fb.total.wrapping_sub(fa.total),
                ));
            }
            Ok(())
        }
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(Verdict::fail(format!("control stats: {e}"))),
        _ => Ok(()),
    }
}

/// The device counters of a measurement, for the diagnostics.
fn counters(m: &Measured) -> String {
    m.dev.map_or("n/a".into(), |(r, w, cp)| {
        format!("read +{r} written +{w} copied +{cp}")
    })
}

/// An offloaded copy moves no data through the host: the backend counts
/// only the copied bytes.
fn only_copied(name: &str, m: &Measured) -> Step {
    if let Some((r, w, cp)) = m.dev {
        ensure(r == 0 && w == 0 && cp == COPY_BYTES, || {
            format!(
                "{name}: the backend counted read +{r} written +{w} copied +{cp}, \
                 expected only copied +{COPY_BYTES}"
            )
        })?;
    }
    Ok(())
}

/// Write and verify the stamped source on the SCSI disk or the NVMe
/// namespace.
fn t_source(c: &mut Ctx<'_>, nvme: bool) -> Step {
    let why = if nvme {
        "needs nvme_connect".to_string()
    } else {
        c.scsi_why.clone()
    };
    let d = dev(if nvme { &mut c.nvme } else { &mut c.scsi }, &why)?;
    let took = write_source(d)?;
    let name = d.name.clone();
    c.diag(format!(
        "{name}: {COPY_BYTES} stamped bytes written in {} s and verified",
        plan::secs(took)
    ));
    Ok(())
}

/// The NVMe namespace or the SCSI disk.
fn slot<'c>(c: &'c Ctx<'_>, nvme: bool) -> Option<&'c Dev> {
    if nvme {
        c.nvme.as_ref()
    } else {
        c.scsi.as_ref()
    }
}

/// Send `commands` prepared copy commands (`send(dev, i)`) to the SCSI
/// disk or the NVMe namespace between two counter snapshots, then verify
/// the destination and record the measurement on the device.
fn offload_run(
    c: &mut Ctx<'_>,
    nvme: bool,
    commands: usize,
    mut send: impl FnMut(&Dev, usize) -> Step,
) -> Result<Measured, Verdict> {
    let gone = || Verdict::fail("suite bug: device gone");
    let name = slot(c, nvme).ok_or_else(gone)?.name.clone();
    let before = c.stats(&name);
    let d = slot(c, nvme).ok_or_else(gone)?;
    let t = Instant::now();
    for i in 0..commands {
        send(d, i)?;
    }
    let took = t.elapsed();
    let after = c.stats(&name);
    let mut m = Measured {
        took,
        commands,
        ..Measured::default()
    };
    deltas(before, after, &mut m)?;
    let d = if nvme {
        c.nvme.as_mut()
    } else {
        c.scsi.as_mut()
    }
    .ok_or_else(gone)?;
    verify(d, DST_OFFLOAD, 0)?;
    d.offload = Some(m.clone());
    Ok(m)
}

fn dev<'c>(d: &'c mut Option<Dev>, why: &str) -> Result<&'c mut Dev, Verdict> {
    d.as_mut().ok_or_else(|| Verdict::skip(why.to_string()))
}

// ------------------------------------------------------------ shared steps

/// Write the 64 MiB stamped source at byte 0 and read it back verified.
fn write_source(d: &mut Dev) -> Result<Duration, Verdict> {
    let t = Instant::now();
    blockio::write_stamped(&d.file, 0, COPY_BYTES / BS4K, d.gen, CHUNK / BS4K)
        .map_err(fail(&format!("{}: write source", d.name)))?;
    let took = t.elapsed();
    verify(d, 0, 0)?;
    d.source = true;
    Ok(took)
}

/// Check that the 64 MiB at `at` hold the source's stamped blocks from
/// source block `first`.
fn verify(d: &Dev, at: u64, first: u64) -> Step {
    let mut buf = AlignedBuf::new(CHUNK as usize);
    let mut off = 0;
    while off < COPY_BYTES {
        let n = d
            .file
            .read_at(buf.as_mut_slice(), at + off)
            .map_err(fail(&format!("{}: read at byte {}", d.name, at + off)))?;
        ensure(n as u64 == CHUNK, || {
            format!("{}: short read {n} at byte {}", d.name, at + off)
        })?;
        stamp::verify_range(buf.as_slice(), first + off / BS4K, d.gen).map_err(|(b, e)| {
            Verdict::fail(format!(
                "{}: byte {} should hold source block {b}: {e}",
                d.name,
                at + (b - first) * BS4K
            ))
        })?;
        off += CHUNK;
    }
    Ok(())
}

/// Copy 64 MiB from byte 0 to `DST_RW` by reading and writing 1 MiB
/// O_DIRECT chunks; returns the time.
fn read_write_copy(d: &Dev) -> Result<Duration, Verdict> {
    let mut buf = AlignedBuf::new(CHUNK as usize);
    let t = Instant::now();
    let mut off = 0;
    while off < COPY_BYTES {
        let n = d
            .file
            .read_at(buf.as_mut_slice(), off)
            .map_err(fail(&format!("{}: read at byte {off}", d.name)))?;
        ensure(n as u64 == CHUNK, || {
            format!("{}: short read {n} at byte {off}", d.name)
        })?;
        blockio::pwrite_exact(&d.file, buf.as_slice(), DST_RW + off).map_err(fail(&format!(
            "{}: write at byte {}",
            d.name,
            DST_RW + off
        )))?;
        off += CHUNK;
    }
    d.file.sync_all().map_err(fail("fsync"))?;
    Ok(t.elapsed())
}

/// The read+write copy test of `d`, with counters.
fn rw_test(c: &mut Ctx<'_>, nvme: bool) -> Step {
    let name = {
        let d = if nvme { &c.nvme } else { &c.scsi };
        match d {
            Some(d) if d.source => d.name.clone(),
            Some(_) => return Err(Verdict::skip("needs the source")),
            None => {
                return Err(Verdict::skip(if nvme {
                    c.nvme_why.clone()
                } else {
                    c.scsi_why.clone()
                }))
            }
        }
    };
    let before = c.stats(&name);
    let d = if nvme { &c.nvme } else { &c.scsi };
    let d = d
        .as_ref()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))?;
    let took = read_write_copy(d)?;
    let after = c.stats(&name);
    let mut m = Measured {
        took,
        commands: (COPY_BYTES / CHUNK) as usize * 2,
        ..Measured::default()
    };
    deltas(before, after, &mut m)?;
    if !nvme {
        // The fabric counters are NVMe/TCP's: nothing to do with SCSI.
        m.fabric = None;
    }
    let d = if nvme { &mut c.nvme } else { &mut c.scsi };
    let d = d
        .as_mut()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))?;
    verify(d, DST_RW, 0)?;
    d.rw = Some(m.clone());
    c.diag(format!(
        "{name}: read+write copy of {COPY_BYTES} bytes in {} s ({} MiB/s), counters {}{}",
        plan::secs(m.took),
        plan::mib_per_s(COPY_BYTES, m.took),
        m.dev.map_or("n/a".into(), |(r, w, cp)| format!(
            "read +{r} written +{w} copied +{cp}"
        )),
        m.fabric.map_or(String::new(), |(dt, t)| format!(
            ", fabric data +{dt} total +{t}"
        ))
    ));
    Ok(())
}

fn run_generation() -> u64 {
    crate::stamp::run_generation()
}

// ----------------------------------------------------------------- runner

type Test = (&'static str, fn(&mut Ctx<'_>) -> Step);

/// The tests, in order (after `config`).
const TESTS: &[Test] = &[
    ("scsi_source", |c| t_source(c, false)),
    ("scsi_xcopy_64MiB", t_scsi_offload),
    ("scsi_readwrite_64MiB", t_scsi_rw),
    ("scsi_cfr_64MiB", |c| cfr::t_cfr(c, false)),
    ("nvme_connect", t_nvme_connect),
    ("nvme_source", |c| t_source(c, true)),
    ("nvme_copy_64MiB", t_nvme_offload),
    ("nvme_readwrite_64MiB", t_nvme_rw),
    ("nvme_cfr_64MiB", |c| cfr::t_cfr(c, true)),
    ("nvme_timing_model", timing::t_timing),
    // Right before fio, so NVMe/TCP's numbers and the network's see the
    // same machine load.
    ("usernet_throughput", t_usernet),
    // Every device in the same rounds: after all copies verified (fio
    // overwrites the devices), before the namespace goes.
    ("fio_interleaved", fioset::t_fio),
    ("nvme_disconnect", t_nvme_disconnect),
    ("boot_breakdown", boot::t_boot),
];

impl Context for Ctx<'_> {
    fn xfail(&self) -> &[String] {
        &self.cfg.xfail
    }

    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, _area: &str, _name: &str, _verdict: &Verdict) {}

    fn take_bugs(&mut self) -> Bugs {
        std::mem::take(&mut self.bugs)
    }
}

/// Open the first `disk` LUN big enough, or say why not.
fn open_scsi(cfg: &Config, sys_root: &Path, gen: u64) -> Result<Dev, String> {
    let (n, spec) = cfg
        .luns
        .iter()
        .find(|(_, s)| s.kind == LunKind::Disk && s.size >= NEED_BYTES)
        .map(|(&n, &s)| (n, s))
        .ok_or_else(|| {
            format!(
                "no disk LUN of at least {NEED_BYTES} bytes (runner: --lun kind=disk,size=192M,bs=4096)"
            )
        })?;
    let (disks, errors) = sysfs::wait_for_luns(sys_root, &[n], crate::smoke::DISCOVERY_TIMEOUT);
    let d = sysfs::pick_lun(&disks, n).map_err(|e| {
        let errs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("lun{n}: {e} {}", errs.join("; "))
    })?;
    let file = blockio::open_direct(&d.dev_path())
        .map_err(|e| format!("lun{n}: open {}: {e}", d.dev_path().display()))?;
    Ok(Dev {
        name: format!("lun{n}"),
        path: d.dev_path(),
        size: spec.size,
        file,
        bs: spec.block_size,
        gen: gen.wrapping_add(n),
        source: false,
        offload: None,
        rw: None,
    })
}

/// Run the bench suite. Returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    let k = Runner::new(k);
    k.plan(TESTS.len() + 1)?;
    let gen = run_generation();
    let (scsi, scsi_why) = match open_scsi(cfg, sys_root, gen) {
        Ok(d) => (Some(d), String::new()),
        Err(e) => (None, e),
    };
    let nvme_why = if cfg.nvme.is_none() {
        "no zonecopy.nvme= (runner: --ns kind=nvm,size=192M)".to_string()
    } else {
        "needs nvme_connect".to_string()
    };
    let mut c = Ctx {
        cfg,
        sys: sys_root.to_path_buf(),
        ctl: cfg.control.map(control::Client::new),
        scsi,
        scsi_why,
        conn: None,
        ctrl: None,
        nvme: None,
        nsid: 0,
        id_ns: None,
        nvme_why,
        usernet: None,
        diags: Vec::new(),
        bugs: Bugs::default(),
    };
    k.diag(&format!(
        "generation {gen:#x}, control {}, scsi {}, nvme {}",
        cfg.control.map_or("none".to_string(), |a| a.to_string()),
        c.scsi.as_ref().map_or_else(
            || format!("none ({})", c.scsi_why),
            |d| format!("{} bs {}", d.name, d.bs)
        ),
        cfg.nvme.as_ref().map_or("none".to_string(), |t| format!(
            "{}:{} {}",
            t.traddr, t.trsvcid, t.nqn
        ))
    ))?;
    let config = if c.scsi.is_none() && cfg.nvme.is_none() {
        Outcome::Fail(format!(
            "nothing to measure: {}; {}",
            c.scsi_why, c.nvme_why
        ))
    } else {
        Outcome::Pass
    };
    k.result("config", &config)?;
    for &(name, f) in TESTS {
        k.test(&mut c, "", name, f)?;
    }
    Ok(!k.failed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline;

    #[test]
    fn nothing_configured_fails_config_and_skips_the_rest() {
        let cfg = cmdline::parse(
            "zonecopy.suite=bench zonecopy.lun0=hm:bs=4096,size=8388608,zone=4194304",
        )
        .unwrap();
        let mut k = Ktap::new(Vec::new()).unwrap();
        assert!(!run(&mut k, &cfg, Path::new("/nonexistent")).unwrap());
        let out = String::from_utf8(k.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], format!("1..{}", TESTS.len() + 1));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("not ok 1 config # nothing to measure")));
        assert!(lines.contains(&"ok 2 scsi_source # SKIP no disk LUN of at least 201326592 bytes (runner: --lun kind=disk,size=192M,bs=4096)"));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("ok 6 nvme_connect # SKIP no zonecopy.nvme=")));
        assert!(lines.contains(&"ok 12 usernet_throughput # SKIP no zonecopy.sink= (the runner gives one to a bench run)"));
        assert!(lines.contains(&"ok 5 scsi_cfr_64MiB # SKIP no disk LUN of at least 201326592 bytes (runner: --lun kind=disk,size=192M,bs=4096)"));
        assert!(lines.contains(
            &"ok 10 nvme_cfr_64MiB # SKIP no zonecopy.nvme= (runner: --ns kind=nvm,size=192M)"
        ));
        assert!(lines.contains(&"ok 11 nvme_timing_model # SKIP needs nvme_connect"));
        assert!(lines.iter().any(|l| l.starts_with(
            "ok 13 fio_interleaved # SKIP no device: no disk LUN of at least 201326592 bytes"
        )));
        assert!(lines.contains(&"ok 14 nvme_disconnect # SKIP not connected"));
    }
}
