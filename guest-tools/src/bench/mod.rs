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
//! - fio (the host's, see [`fio`]) on three devices in the same guest:
//!   4 KiB random read and write IOPS at QD1 and QD16 and sequential 1 MiB
//!   MiB/s, on our vhost-user-scsi disk, on QEMU's built-in scsi-hd over
//!   raw files of the same size (`zonecopy.scsihd=`, aio=io_uring; with
//!   cache=none, the production setting, and with cache=writeback, the host
//!   page cache as our backend uses it: `# bench scsi-vs-scsihd[-wb]` give
//!   ours / scsi-hd) and on the NVMe/TCP namespace (`# bench
//!   nvme-vs-scsi`); over PCIe also on QEMU's own NVMe controller
//!   ([`nvmeref`], `# bench nvme-vs-qemunvme[-wb]`).
//! - QEMU user networking's raw TCP throughput each way against the
//!   runner's sink (`zonecopy.sink=`, see [`net`]), printed next to the
//!   NVMe/TCP sequential numbers (`# bench nvme-vs-usernet`): how much of
//!   NVMe/TCP's gap is the network.
//!
//! Each measurement is a KTAP test that passes only if its data verified
//! (copies: block by block; fio: every job ran without error and did I/O;
//! network: every byte arrived); numbers are diagnostics `# bench NAME
//! key=value ...` (see [`plan::bench_line`]), which `scripts/bench.sh`
//! collects. Slow numbers never fail a test. Layout of each device: source
//! at byte 0, offload destination at 64 MiB, read+write destination at 128
//! MiB (so 192 MiB are needed); fio runs after both copies of a device
//! verified and overwrites all of it.

pub mod cfr;
pub mod fio;
pub mod ledger;
pub mod net;
pub mod nvmeref;
pub mod plan;

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
    control, hosttool,
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
/// Seconds of each fio job (six per device).
const FIO_RUNTIME_S: u32 = 5;
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
    /// fio on our SCSI disk, the baseline of the NVMe/TCP ratios.
    fio_scsi: Option<fio::Results>,
    /// fio on our NVMe namespace, the numerator of the QEMU NVMe ratios.
    fio_nvme: Option<fio::Results>,
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

/// Run the fio set ([`fio::JOBS`]) on `path`, `size` bytes of it. SKIP
/// when the host's fio cannot run here (no host root, not installed).
fn run_fio(path: &Path, size: u64) -> Result<(fio::Results, Duration), Verdict> {
    if let Some(why) = hosttool::missing("fio") {
        return Err(Verdict::skip(why));
    }
    let args = fio::args(&path.display().to_string(), size, FIO_RUNTIME_S);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    let out = hosttool::run("fio", &argv).map_err(Verdict::Fail)?;
    let r = fio::parse(&String::from_utf8_lossy(&out.stdout)).map_err(Verdict::Fail)?;
    Ok((r, t.elapsed()))
}

/// The `# bench fio-<kind>` line of one device.
fn fio_line(kind: &str, dev: &str, r: &fio::Results, took: Duration) -> String {
    let mut f = vec![("dev".to_string(), dev.to_string())];
    f.extend(r.fields());
    f.push(("fio_s".into(), plan::secs(took)));
    let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    plan::bench_line(&format!("fio-{kind}"), &f)
}

/// A `# bench NAME job=ratio ...` line.
fn ratio_line(name: &str, ratios: &[(String, String)]) -> String {
    let f: Vec<(&str, String)> = ratios
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    plan::bench_line(name, &f)
}

fn run_generation() -> u64 {
    crate::stamp::run_generation()
}

// ------------------------------------------------------------------- SCSI

fn t_scsi_source(c: &mut Ctx<'_>) -> Step {
    let why = c.scsi_why.clone();
    let d = dev(&mut c.scsi, &why)?;
    let took = write_source(d)?;
    let name = d.name.clone();
    c.diag(format!(
        "{name}: {COPY_BYTES} stamped bytes written in {} s and verified",
        plan::secs(took)
    ));
    Ok(())
}

/// EXTENDED COPY(LID1) of the 64 MiB source to `DST_OFFLOAD`, within the
/// LU: one E4h CSCD naming it (VPD 83h designator) and 02h segments, cut
/// to the copy manager's operating parameters.
fn t_scsi_offload(c: &mut Ctx<'_>) -> Step {
    let why = c.scsi_why.clone();
    let d = dev(&mut c.scsi, &why)?;
    if !d.source {
        return Err(Verdict::skip("needs scsi_source"));
    }
    let sg = |d: &Dev, cdb: &[u8], data: sgio::Data<'_>, what: &str| {
        let c = sgio::command(&d.file, cdb, data, XCOPY_TIMEOUT_MS)
            .map_err(fail(&format!("SG_IO {what}")))?;
        ensure(c.status == 0 && c.host_status == 0, || {
            format!("{what}: {c} sense [{}]", hex(&c.sense_bytes))
        })
    };
    let mut inq = vec![0u8; 96];
    sg(
        d,
        &cdb::inquiry(None, 96),
        sgio::Data::FromDevice(&mut inq),
        "INQUIRY",
    )?;
    let pdt = inq[0] & 0x1f;
    let mut vpd = vec![0u8; 1024];
    sg(
        d,
        &cdb::inquiry(Some(0x83), 1024),
        sgio::Data::FromDevice(&mut vpd),
        "INQUIRY VPD 83h",
    )?;
    let ds = parse::vpd83(&vpd).map_err(Verdict::Fail)?;
    let des = parse::lu_designator(&ds)
        .cloned()
        .ok_or_else(|| Verdict::fail("VPD 83h has no LU designator for an E4h CSCD"))?;
    let mut op = vec![0u8; 1024];
    sg(
        d,
        &cdb::receive_lid1(cdb::in_sa::OPERATING_PARAMETERS, 0, 1024),
        sgio::Data::FromDevice(&mut op),
        "RECEIVE COPY OPERATING PARAMETERS",
    )?;
    let op = parse::operating_parameters(&op).map_err(Verdict::Fail)?;
    let bs = d.bs;
    // One CSCD (32 bytes) and 28-byte 02h segments must fit the list.
    let by_len = (op.max_list_len as usize).saturating_sub(CSCD_LEN) / 28;
    let per_list = usize::from(op.max_segments).min(by_len);
    let lists = plan::scsi_lists(
        0,
        DST_OFFLOAD / bs,
        COPY_BYTES / bs,
        u64::from(op.max_segment_len) / bs,
        per_list,
    )
    .map_err(Verdict::Fail)?;
    let cscd = CscdId::new(
        pdt,
        des.code_set,
        des.designator_type,
        &des.designator,
        bs as u32,
    );
    let params: Vec<Vec<u8>> = lists
        .iter()
        .map(|segs| {
            let mut l = CopyList::new(
                0,
                std::slice::from_ref(&cscd),
                segs.iter()
                    .map(|&(s, t, n)| Segment::B2B {
                        src: 0,
                        dst: 0,
                        dc: false,
                        blocks: n,
                        src_lba: s,
                        dst_lba: t,
                    })
                    .collect(),
            );
            // 11b: no list identifier, nothing held afterwards.
            l.usage = ListIdUsage::None;
            l.lid1()
        })
        .collect();
    let segments: usize = lists.iter().map(Vec::len).sum();
    let name = d.name.clone();
    let before = c.stats(&name);
    let t = Instant::now();
    let d = c
        .scsi
        .as_ref()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))?;
    for p in &params {
        let cdb = cdb::extended_copy(cdb::out_sa::LID1, p.len() as u32);
        sg(d, &cdb, sgio::Data::ToDevice(p), "EXTENDED COPY(LID1)")?;
    }
    let took = t.elapsed();
    let after = c.stats(&name);
    let mut m = Measured {
        took,
        commands: params.len(),
        ..Measured::default()
    };
    deltas(before, after, &mut m)?;
    let d = c
        .scsi
        .as_mut()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))?;
    verify(d, DST_OFFLOAD, 0)?;
    d.offload = Some(m.clone());
    c.diag(format!(
        "{name}: EXTENDED COPY(LID1) of {COPY_BYTES} bytes: {} commands, {segments} segments \
         (max segment {} bytes, {} segments per list), {} s ({} MiB/s), counters {}",
        m.commands,
        op.max_segment_len,
        per_list,
        plan::secs(took),
        plan::mib_per_s(COPY_BYTES, took),
        m.dev.map_or("n/a".into(), |(r, w, cp)| format!(
            "read +{r} written +{w} copied +{cp}"
        )),
    ));
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

fn t_scsi_rw(c: &mut Ctx<'_>) -> Step {
    rw_test(c, false)?;
    summary(c, false);
    Ok(())
}

/// The `# bench <kind>-64MiB ...` line, once both copies of a device
/// verified.
fn summary(c: &mut Ctx<'_>, nvme: bool) {
    let d = if nvme { &c.nvme } else { &c.scsi };
    let Some((d, o, rw)) = d
        .as_ref()
        .and_then(|d| Some((d, d.offload.clone()?, d.rw.clone()?)))
    else {
        return;
    };
    let mut f = vec![
        ("dev", d.name.clone()),
        ("bytes", COPY_BYTES.to_string()),
        ("offload_s", plan::secs(o.took)),
        ("readwrite_s", plan::secs(rw.took)),
        (
            "ratio",
            plan::ratio(rw.took.as_secs_f64(), o.took.as_secs_f64()),
        ),
        ("offload_MiBps", plan::mib_per_s(COPY_BYTES, o.took)),
        ("readwrite_MiBps", plan::mib_per_s(COPY_BYTES, rw.took)),
        ("offload_cmds", o.commands.to_string()),
    ];
    if let (Some(a), Some(b)) = (o.dev, rw.dev) {
        f.extend([
            ("offload_copied_bytes", a.2.to_string()),
            ("offload_host_bytes", (a.0 + a.1).to_string()),
            ("readwrite_copied_bytes", b.2.to_string()),
            ("readwrite_host_bytes", (b.0 + b.1).to_string()),
        ]);
    }
    // Fabric bytes count NVMe/TCP traffic only: meaningless for SCSI.
    if let (true, Some(a), Some(b)) = (nvme, o.fabric, rw.fabric) {
        f.extend([
            ("offload_fabric_data_bytes", a.0.to_string()),
            ("offload_fabric_bytes", a.1.to_string()),
            ("readwrite_fabric_data_bytes", b.0.to_string()),
            ("readwrite_fabric_bytes", b.1.to_string()),
            ("fabric_ratio", plan::ratio(b.1 as f64, a.1 as f64)),
            (
                "offload_fabric_pct",
                format!("{:.4}", a.1 as f64 * 100.0 / COPY_BYTES as f64),
            ),
            ("readwrite_fabric_MiBps", plan::mib_per_s(b.1, rw.took)),
        ]);
    }
    let name = if nvme {
        "nvme-copy-64MiB"
    } else {
        "scsi-xcopy-64MiB"
    };
    let line = plan::bench_line(name, &f);
    c.diag(line);
}

// -------------------------------------------------------- fio and network

/// fio on our SCSI disk (after its copies verified: fio overwrites it).
fn t_scsi_fio(c: &mut Ctx<'_>) -> Step {
    let d = c
        .scsi
        .as_ref()
        .ok_or_else(|| Verdict::skip(c.scsi_why.clone()))?;
    let (r, took) = run_fio(&d.path, d.size)?;
    let line = fio_line("scsi", &d.name, &r, took);
    c.diag(line);
    c.fio_scsi = Some(r);
    Ok(())
}

/// Wait for the reference scsi-hd `product` to appear.
fn find_scsi_hd(sys: &Path, product: &str) -> Result<sysfs::Disk, String> {
    let start = Instant::now();
    loop {
        let (disks, errors) = sysfs::scsi_disks(sys).map_err(|e| format!("sysfs: {e}"))?;
        if let Some(d) = disks.iter().find(|d| d.model == product) {
            if d.dev_path().exists() {
                return Ok(d.clone());
            }
        }
        if start.elapsed() >= crate::smoke::DISCOVERY_TIMEOUT {
            let seen: Vec<String> = disks.iter().map(ToString::to_string).collect();
            let errs: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(format!(
                "no disk with model {product:?} after {:?} (disks: {}; {})",
                start.elapsed(),
                seen.join("; "),
                errs.join("; ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// fio on QEMU's scsi-hd (`cache=none`, or `cache=writeback` with `wb`),
/// then ours / scsi-hd for each job.
fn t_scsihd_fio(c: &mut Ctx<'_>, wb: bool) -> Step {
    let spec = c.cfg.scsi_hd.ok_or_else(|| {
        Verdict::skip(
            "no zonecopy.scsihd= (the runner attaches one for a bench run with a disk LUN)",
        )
    })?;
    let (product, kind) = if wb {
        (SCSI_HD_WB_PRODUCT, "scsihd-wb")
    } else {
        (SCSI_HD_PRODUCT, "scsihd")
    };
    let d = find_scsi_hd(&c.sys, product).map_err(Verdict::Fail)?;
    ensure(
        d.sectors * 512 == spec.size && d.logical_block_size == spec.block_size,
        || {
            format!(
                "{}: {} bytes of {}-byte blocks, configured {} bytes of {}",
                d.name,
                d.sectors * 512,
                d.logical_block_size,
                spec.size,
                spec.block_size
            )
        },
    )?;
    let (r, took) = run_fio(&d.dev_path(), spec.size)?;
    c.diag(format!("reference: {d}"));
    c.diag(fio_line(kind, &d.name, &r, took));
    if let Some(ours) = &c.fio_scsi {
        let line = ratio_line(&format!("scsi-vs-{kind}"), &ours.ratios(&r));
        c.diag(line);
    }
    Ok(())
}

/// Raw TCP throughput of user networking, each way.
fn t_usernet(c: &mut Ctx<'_>) -> Step {
    let addr = c
        .cfg
        .sink
        .ok_or_else(|| Verdict::skip("no zonecopy.sink= (the runner gives one to a bench run)"))?;
    let sent = net::send(addr, NET_BYTES).map_err(Verdict::Fail)?;
    let recv = net::receive(addr, NET_BYTES).map_err(Verdict::Fail)?;
    let mibps = |d: Duration| NET_BYTES as f64 / f64::from(1u32 << 20) / d.as_secs_f64();
    c.usernet = Some((mibps(sent), mibps(recv)));
    let line = plan::bench_line(
        "usernet",
        &[
            ("bytes", NET_BYTES.to_string()),
            ("send_MiBps", plan::mib_per_s(NET_BYTES, sent)),
            ("recv_MiBps", plan::mib_per_s(NET_BYTES, recv)),
            ("send_s", plan::secs(sent)),
            ("recv_s", plan::secs(recv)),
        ],
    );
    c.diag(line);
    Ok(())
}

/// fio on the NVMe namespace, against our SCSI disk and (NVMe/TCP)
/// against raw user networking.
fn t_nvme_fio(c: &mut Ctx<'_>) -> Step {
    let d = c
        .nvme
        .as_ref()
        .ok_or_else(|| Verdict::skip(c.nvme_why.clone()))?;
    let (r, took) = run_fio(&d.path, d.size)?;
    let mut lines = vec![fio_line("nvme", &d.name, &r, took)];
    if let Some(scsi) = &c.fio_scsi {
        lines.push(ratio_line("nvme-vs-scsi", &r.ratios(scsi)));
    }
    // The network is NVMe/TCP's only: over PCIe there is none to compare.
    let tcp = c.cfg.nvme.as_ref().is_some_and(|t| !t.pcie);
    if let Some((send, recv)) = c.usernet.filter(|_| tcp) {
        let (rd, wr) = r.seq_mib_per_s();
        lines.push(plan::bench_line(
            "nvme-vs-usernet",
            &[
                ("seqread_MiBps", format!("{rd:.1}")),
                ("usernet_recv_MiBps", format!("{recv:.1}")),
                ("seqread_of_usernet", plan::ratio(rd, recv)),
                ("seqwrite_MiBps", format!("{wr:.1}")),
                ("usernet_send_MiBps", format!("{send:.1}")),
                ("seqwrite_of_usernet", plan::ratio(wr, send)),
            ],
        ));
    }
    for l in lines {
        c.diag(l);
    }
    c.fio_nvme = Some(r);
    Ok(())
}

// ------------------------------------------------------------------- NVMe

fn t_nvme_connect(c: &mut Ctx<'_>) -> Step {
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip(c.nvme_why.clone()))?;
    let (nsid, spec) = c
        .cfg
        .namespaces
        .iter()
        .find(|(_, s)| s.kind == NsKind::Nvm && s.size >= NEED_BYTES)
        .map(|(&n, &s)| (n, s))
        .ok_or_else(|| {
            Verdict::skip(format!(
                "no nvm namespace of at least {NEED_BYTES} bytes (runner: --ns kind=nvm,size=192M)"
            ))
        })?;
    let conn = if t.pcie {
        connect::find_pcie_controller(&c.sys, &t.nqn, crate::nvme::CONNECT_TIMEOUT)
            .map_err(fail(&format!("PCIe controller of {}", t.nqn)))?
    } else {
        let host = HostId::generate();
        let opts = connect::connect_options(&t, &t.nqn, &host);
        connect::fabrics_connect(&opts).map_err(fail(&format!(
            "connect {}:{} {}",
            t.traddr, t.trsvcid, t.nqn
        )))?
    };
    c.conn = Some(conn);
    let ctrl_path = Path::new("/dev").join(format!("nvme{}", conn.instance));
    let (found, took) = connect::wait_for_namespaces(
        &c.sys,
        Path::new("/dev"),
        conn.instance,
        &[nsid],
        crate::nvme::CONNECT_TIMEOUT,
    );
    let ns = found
        .iter()
        .find(|n| n.nsid == nsid)
        .ok_or_else(|| Verdict::fail(format!("ns{nsid} did not appear within {took:?}")))?;
    let file = blockio::open_direct(&ns.dev_path())
        .map_err(fail(&format!("open {}", ns.dev_path().display())))?;
    let ctrl = File::options()
        .read(true)
        .write(true)
        .open(&ctrl_path)
        .map_err(fail(&format!("open {}", ctrl_path.display())))?;
    let mut b = vec![0u8; ident::IDENTIFY_LEN];
    passthru::admin(
        &ctrl,
        &passthru::identify(nsid, ident::cns::NAMESPACE, 0),
        passthru::Data::In(&mut b),
    )
    .map_err(fail("Identify Namespace"))?
    .ok("Identify Namespace")
    .map_err(Verdict::Fail)?;
    let id = IdNs::parse(&b).map_err(Verdict::Fail)?;
    c.diag(format!(
        "nvme{} ns{nsid} = {} after {took:?}: bs {} MSSRL {} MCL {} MSRC {} (0's based)",
        conn.instance,
        ns.dev_path().display(),
        id.block_size(),
        id.mssrl,
        id.mcl,
        id.msrc
    ));
    ensure(id.block_size() == spec.block_size, || {
        format!(
            "Identify says {}-byte blocks, configured {}",
            id.block_size(),
            spec.block_size
        )
    })?;
    c.ctrl = Some(ctrl);
    c.nsid = nsid;
    c.id_ns = Some(id);
    c.nvme = Some(Dev {
        name: format!("ns{nsid}"),
        path: ns.dev_path(),
        size: spec.size,
        file,
        bs: spec.block_size,
        gen: run_generation().wrapping_add(u64::from(nsid)),
        source: false,
        offload: None,
        rw: None,
    });
    Ok(())
}

fn t_nvme_source(c: &mut Ctx<'_>) -> Step {
    let d = dev(&mut c.nvme, "needs nvme_connect")?;
    let took = write_source(d)?;
    let name = d.name.clone();
    c.diag(format!(
        "{name}: {COPY_BYTES} stamped bytes written in {} s and verified",
        plan::secs(took)
    ));
    Ok(())
}

/// Copy (19h), descriptor format 0, of the source to `DST_OFFLOAD`.
fn t_nvme_offload(c: &mut Ctx<'_>) -> Step {
    let nsid = c.nsid;
    let id = c.id_ns.ok_or_else(|| Verdict::skip("needs nvme_connect"))?;
    let d = dev(&mut c.nvme, "needs nvme_connect")?;
    if !d.source {
        return Err(Verdict::skip("needs nvme_source"));
    }
    let bs = d.bs;
    let cmds = plan::nvme_copies(
        0,
        DST_OFFLOAD / bs,
        COPY_BYTES / bs,
        u64::from(id.mssrl),
        u64::from(id.mcl),
        u64::from(id.msrc) + 1,
    )
    .map_err(Verdict::Fail)?;
    let mut encoded = Vec::new();
    for cmd in &cmds {
        let ranges: Vec<ncopy::Range> = cmd
            .ranges
            .iter()
            .map(|&(slba, nlb)| ncopy::Range {
                snsid: 0,
                slba,
                nlb,
            })
            .collect();
        let data = ncopy::encode(0, &ranges).map_err(Verdict::Fail)?;
        let sqe = ncopy::copy_cmd(nsid, cmd.sdlba, ranges.len(), 0).map_err(Verdict::Fail)?;
        encoded.push((sqe, data));
    }
    let name = d.name.clone();
    let before = c.stats(&name);
    let d = c
        .nvme
        .as_ref()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))?;
    let t = Instant::now();
    for (i, (sqe, data)) in encoded.iter().enumerate() {
        passthru::io(&d.file, sqe, passthru::Data::Out(data))
            .map_err(fail("Copy passthrough"))?
            .ok(&format!("Copy {} of {}", i + 1, encoded.len()))
            .map_err(Verdict::Fail)?;
    }
    let took = t.elapsed();
    let after = c.stats(&name);
    let mut m = Measured {
        took,
        commands: cmds.len(),
        ..Measured::default()
    };
    deltas(before, after, &mut m)?;
    let d = c
        .nvme
        .as_mut()
        .ok_or_else(|| Verdict::fail("suite bug: device gone"))?;
    verify(d, DST_OFFLOAD, 0)?;
    d.offload = Some(m.clone());
    let ranges: usize = cmds.iter().map(|c| c.ranges.len()).sum();
    c.diag(format!(
        "{name}: Copy of {COPY_BYTES} bytes: {} commands, {ranges} ranges, {} s ({} MiB/s), \
         counters {}{}",
        m.commands,
        plan::secs(took),
        plan::mib_per_s(COPY_BYTES, took),
        m.dev.map_or("n/a".into(), |(r, w, cp)| format!(
            "read +{r} written +{w} copied +{cp}"
        )),
        m.fabric.map_or(String::new(), |(dt, t)| format!(
            ", fabric data +{dt} total +{t}"
        ))
    ));
    if let Some((r, w, cp)) = m.dev {
        ensure(r == 0 && w == 0 && cp == COPY_BYTES, || {
            format!(
                "{name}: the backend counted read +{r} written +{w} copied +{cp}, \
                 expected only copied +{COPY_BYTES}"
            )
        })?;
    }
    if let Some((_, total)) = m.fabric {
        ensure(total.saturating_mul(100) <= COPY_BYTES, || {
            format!("the offloaded copy moved {total} fabric bytes, over 1% of {COPY_BYTES}")
        })?;
    }
    Ok(())
}

fn t_nvme_rw(c: &mut Ctx<'_>) -> Step {
    rw_test(c, true)?;
    summary(c, true);
    Ok(())
}

fn t_nvme_disconnect(c: &mut Ctx<'_>) -> Step {
    let conn = c.conn.ok_or_else(|| Verdict::skip("not connected"))?;
    if c.cfg.nvme.as_ref().is_some_and(|t| t.pcie) {
        return Err(Verdict::skip(crate::nvme::FABRICS_ONLY));
    }
    c.nvme = None;
    c.ctrl = None;
    let took = connect::delete_controller(&c.sys, conn.instance, crate::nvme::DISCONNECT_TIMEOUT)
        .map_err(fail("delete_controller"))?;
    c.diag(format!("nvme{} gone after {took:?}", conn.instance));
    Ok(())
}

// ----------------------------------------------------------------- runner

type Test = (&'static str, fn(&mut Ctx<'_>) -> Step);

/// The tests, in order (after `config`).
const TESTS: &[Test] = &[
    ("scsi_source", t_scsi_source),
    ("scsi_xcopy_64MiB", t_scsi_offload),
    ("scsi_readwrite_64MiB", t_scsi_rw),
    ("scsi_cfr_64MiB", |c| cfr::t_cfr(c, false)),
    ("scsi_fio", t_scsi_fio),
    ("scsihd_fio", |c| t_scsihd_fio(c, false)),
    ("scsihd_wb_fio", |c| t_scsihd_fio(c, true)),
    ("nvme_connect", t_nvme_connect),
    ("nvme_source", t_nvme_source),
    ("nvme_copy_64MiB", t_nvme_offload),
    ("nvme_readwrite_64MiB", t_nvme_rw),
    ("nvme_cfr_64MiB", |c| cfr::t_cfr(c, true)),
    // Right before nvme_fio, so both see the same machine load.
    ("usernet_throughput", t_usernet),
    ("nvme_fio", t_nvme_fio),
    ("qemunvme_fio", |c| nvmeref::t_fio(c, false)),
    ("qemunvme_wb_fio", |c| nvmeref::t_fio(c, true)),
    ("nvme_disconnect", t_nvme_disconnect),
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
        fio_scsi: None,
        fio_nvme: None,
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
            .any(|l| l.starts_with("ok 9 nvme_connect # SKIP no zonecopy.nvme=")));
        assert!(lines.contains(&"ok 8 scsihd_wb_fio # SKIP no zonecopy.scsihd= (the runner attaches one for a bench run with a disk LUN)"));
        assert!(lines.contains(&"ok 14 usernet_throughput # SKIP no zonecopy.sink= (the runner gives one to a bench run)"));
        assert!(lines.contains(&"ok 5 scsi_cfr_64MiB # SKIP no disk LUN of at least 201326592 bytes (runner: --lun kind=disk,size=192M,bs=4096)"));
        assert!(lines.contains(
            &"ok 13 nvme_cfr_64MiB # SKIP no zonecopy.nvme= (runner: --ns kind=nvm,size=192M)"
        ));
        assert!(lines.contains(&"ok 16 qemunvme_fio # SKIP no zonecopy.nvmeref= (the runner attaches one for a bench run over PCIe)"));
        assert!(lines.contains(&"ok 18 nvme_disconnect # SKIP not connected"));
    }
}
