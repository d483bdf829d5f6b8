//! Start-up, memory and REPORT ZONES of a large zoned device, against the
//! issue 4 targets, in one run:
//! `cargo bench -p zonecopy-vhost --bench startup [-- SIZE ZONE [rounds]]`
//! (defaults 1T 8M 5: 131072 zones).
//!
//! In a temp dir (removed at the end) it lays out a sparse device with
//! persisted zone metadata (writes into a spread of zones, some finished,
//! one closed, then a flush), then measures:
//! - (a) start-up of the real backend binary (`zonecopy-vhost --lun
//!   file=..,size=..,zone=.. --control ..`) until its control socket
//!   answers `devices`, the median of `rounds` starts; baseline: the same
//!   for a 1 GiB device of the same zone size. Each backend is stopped by
//!   its PID (SIGTERM, SIGKILL after 10 s) and waited for.
//! - (b) its resident memory (VmRSS, VmHWM from /proc/PID/status) after
//!   start-up and after every zone was reported through its control socket
//!   (`zones`, pages of 65536 zones: the only full report a process outside
//!   can ask for without a vhost-user front end; JSON, so it costs far more
//!   than REPORT ZONES);
//! - (c) a full REPORT ZONES in-process: `Device::report_zones` over all
//!   zones, and REPORT ZONES (95h/00h) through the SCSI front end
//!   (`scsi::Target::execute`, the entry the transport uses) with room for
//!   every descriptor, and what that command adds to the peak RSS (so
//!   the backend's peak while serving it is start-up RSS + that); plus
//!   where start-up goes: `Device::open` alone.
//!
//! Targets: start <= 1 s, RSS <= 100 MiB, REPORT ZONES <= 100 ms.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use zonecopy_vhost::{
    config::LunSpec,
    scsi::{Request, Status, Target},
    storage::{Device, DeviceConfig, Lba, ZoneAction, ZoneTarget},
};

const START_TARGET: Duration = Duration::from_secs(1);
const RSS_TARGET_KIB: u64 = 100 * 1024;
const REPORT_TARGET: Duration = Duration::from_millis(100);
/// How long one backend may take to answer before the run gives up.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Zones per control `zones` request (the control socket's cap).
const CONTROL_PAGE: u64 = 1 << 16;

/// A size argument (`1T`, `8M`): the contract's parser, as `--lun` reads it.
fn parse_size(s: &str) -> u64 {
    zonecopy_contract::size::parse_size(s).unwrap_or_else(|e| panic!("size {s}: {e}"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets"
    } else {
        "MISSES"
    }
}

/// The `--lun` spec the backend gets, and the storage configuration it
/// maps to (parsed by the backend's own parser, so the geometry matches
/// the persisted metadata exactly).
fn lun(path: &Path, size: &str, zone: &str) -> (String, DeviceConfig) {
    let spec = format!("file={},size={size},zone={zone}", path.display());
    let parsed: LunSpec = spec.parse().expect("--lun spec");
    (spec, parsed.device)
}

/// Write into a spread of zones (every 64th: 1..=16 blocks; every 256th
/// also finished; the last written one closed), then flush, so the
/// metadata file holds records a start-up must read and restore.
fn populate(cfg: &DeviceConfig) -> (Duration, usize) {
    let t = Instant::now();
    let dev = Device::open(cfg).expect("create device");
    let created = t.elapsed();
    let g = *dev.geometry();
    let zg = g.zones.expect("zoned");
    let nr = g.capacity.get() / zg.zone_len.get();
    let bs = g.block_size as usize;
    let mut written = 0;
    let mut last = None;
    for z in (u64::from(zg.conventional)..nr).step_by(64) {
        let start = Lba::new(z * zg.zone_len.get());
        let blocks = 1 + (z / 64) % 16;
        let buf = vec![(z % 251) as u8; blocks as usize * bs];
        dev.write(start, &buf, false).expect("write");
        if z % 256 == 0 {
            dev.zone_action(ZoneAction::Finish, ZoneTarget::One(start))
                .expect("finish");
        } else {
            last = Some(start);
        }
        written += 1;
    }
    if let Some(l) = last {
        dev.zone_action(ZoneAction::Close, ZoneTarget::One(l))
            .expect("close");
    }
    dev.flush().expect("flush");
    (created, written)
}

/// A running backend, stopped (SIGTERM by PID, then SIGKILL) and waited
/// for on drop.
struct Backend {
    child: Child,
}

impl Backend {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill(2) on the PID of our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request line on the control socket, the reply line.
fn control(stream: &mut UnixStream, line: &str) -> String {
    stream.write_all(line.as_bytes()).expect("control write");
    stream.write_all(b"\n").expect("control write");
    let mut reply = String::new();
    BufReader::new(&*stream)
        .read_line(&mut reply)
        .expect("control read");
    reply
}

/// Start the backend on `spec` and wait until its control socket answers
/// `devices`; returns it, the time taken and the connection.
fn start(dir: &Path, spec: &str) -> (Backend, Duration, UnixStream) {
    let sock = dir.join("vus.sock");
    let ctl = dir.join("control.sock");
    let _ = std::fs::remove_file(&ctl);
    let t = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_zonecopy-vhost"))
        .arg("--socket")
        .arg(&sock)
        .arg("--lun")
        .arg(spec)
        .arg("--control")
        .arg(&ctl)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn zonecopy-vhost");
    let mut b = Backend { child };
    loop {
        if let Ok(mut s) = UnixStream::connect(&ctl) {
            let reply = control(&mut s, r#"{"cmd":"devices"}"#);
            let took = t.elapsed();
            assert!(reply.contains(r#""ok":true"#), "devices: {reply}");
            return (b, took, s);
        }
        if let Ok(Some(st)) = b.child.try_wait() {
            panic!("the backend exited during start-up: {st}");
        }
        assert!(
            t.elapsed() < START_TIMEOUT,
            "no answer in {START_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Median start-up over `rounds` starts of `spec`.
fn startup(dir: &Path, spec: &str, rounds: usize) -> Duration {
    median(
        (0..rounds)
            .map(|_| {
                let (b, took, _) = start(dir, spec);
                drop(b);
                took
            })
            .collect(),
    )
}

/// REPORT ZONES (95h, service action 00h) from LBA 0, REPORTING OPTIONS
/// 00h (all zones), allocation length `alloc` (ZBC-2 5.x).
fn report_zones_cdb(alloc: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x95;
    cdb[10..14].copy_from_slice(&alloc.to_be_bytes());
    cdb
}

/// The run's shape: the large device, its 1 GiB baseline, both laid out
/// in `dir`.
struct Setup {
    dir: tempfile::TempDir,
    size: String,
    zone: String,
    zone_b: u64,
    nr_zones: u64,
    base_size: &'static str,
    base_zones: u64,
    rounds: usize,
    big_spec: String,
    big_cfg: DeviceConfig,
    small_spec: String,
    small_cfg: DeviceConfig,
}

impl Setup {
    /// From the command line (`SIZE ZONE [rounds]`), in a fresh temp dir.
    fn from_args() -> Setup {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let size = args.first().map_or("1T", String::as_str).to_owned();
        let zone = args.get(1).map_or("8M", String::as_str).to_owned();
        let rounds: usize = args.get(2).map_or(5, |r| r.parse().expect("rounds"));
        let (size_b, zone_b) = (parse_size(&size), parse_size(&zone));
        let base_size = "1G";
        let dir = tempfile::Builder::new()
            .prefix("zonecopy-startup.")
            .tempdir()
            .expect("temp dir");
        let big: PathBuf = dir.path().join("big.img");
        let small: PathBuf = dir.path().join("small.img");
        let (big_spec, big_cfg) = lun(&big, &size, &zone);
        let (small_spec, small_cfg) = lun(&small, base_size, &zone);
        Setup {
            nr_zones: size_b / zone_b,
            base_zones: parse_size(base_size) / zone_b,
            dir,
            size,
            zone,
            zone_b,
            base_size,
            rounds,
            big_spec,
            big_cfg,
            small_spec,
            small_cfg,
        }
    }

    /// The median over `rounds` runs of `f`.
    fn median_of(&self, mut f: impl FnMut() -> Duration) -> Duration {
        median((0..self.rounds).map(|_| f()).collect())
    }
}

fn main() {
    let s = Setup::from_args();
    println!(
        "startup: {} device, {} zones ({} zones), baseline {} ({} zones), {} starts each, in {}",
        s.size,
        s.zone,
        s.nr_zones,
        s.base_size,
        s.base_zones,
        s.rounds,
        s.dir.path().display()
    );
    let (created, written) = populate(&s.big_cfg);
    populate(&s.small_cfg);
    let meta_len = std::fs::metadata(format!("{}.zones", s.big_cfg.path.display()))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "  layout: first open (create) {}, {written} zones written, metadata file {} bytes",
        ms(created),
        meta_len
    );
    let (t_big, t_small, open) = startup_phase(&s);
    let mem = memory_phase(&s);
    let (core, scsi, scsi_peak) = report_phase(&s, mem);
    println!(
        "# bench startup zones={} start_ms={:.1} start_base_ms={:.1} open_ms={:.1} \
         rss_start_kib={} hwm_start_kib={} rss_report_kib={} hwm_report_kib={} \
         report_core_ms={:.2} report_scsi_ms={:.2} report_scsi_peak_kib={scsi_peak}",
        s.nr_zones,
        t_big.as_secs_f64() * 1e3,
        t_small.as_secs_f64() * 1e3,
        open.as_secs_f64() * 1e3,
        mem.rss0,
        mem.hwm0,
        mem.rss1,
        mem.hwm1,
        core.as_secs_f64() * 1e3,
        scsi.as_secs_f64() * 1e3,
    );
    s.dir.close().expect("remove the temp dir");
}

/// (a) Start-up of the real binary, and of it `Device::open` in-process.
/// Returns the large device's start, the baseline's, and the open.
fn startup_phase(s: &Setup) -> (Duration, Duration, Duration) {
    let open = s.median_of(|| {
        let t = Instant::now();
        drop(Device::open(&s.big_cfg).expect("reopen"));
        t.elapsed()
    });
    let open_small = s.median_of(|| {
        let t = Instant::now();
        drop(Device::open(&s.small_cfg).expect("reopen"));
        t.elapsed()
    });
    let t_small = startup(s.dir.path(), &s.small_spec, s.rounds);
    let t_big = startup(s.dir.path(), &s.big_spec, s.rounds);
    println!(
        "(a) start-up to control `devices`: {} (target <= {}: {}), baseline {} {} \
         (ratio {:.2}x); of it Device::open in-process {} (baseline {})",
        ms(t_big),
        ms(START_TARGET),
        verdict(t_big <= START_TARGET),
        s.base_size,
        ms(t_small),
        t_big.as_secs_f64() / t_small.as_secs_f64(),
        ms(open),
        ms(open_small),
    );
    (t_big, t_small, open)
}

/// Resident memory (KiB) after start-up (`rss0`, `hwm0`) and after every
/// zone was reported through the control socket (`rss1`, `hwm1`).
#[derive(Clone, Copy)]
struct Memory {
    rss0: u64,
    hwm0: u64,
    rss1: u64,
    hwm1: u64,
}

/// (b) Memory after start-up and after every zone was reported.
fn memory_phase(s: &Setup) -> Memory {
    let (b, _, mut sock) = start(s.dir.path(), &s.big_spec);
    let (rss0, hwm0) = rss(b.pid());
    let t = Instant::now();
    let mut reported = 0u64;
    let mut reply_bytes = 0usize;
    while reported < s.nr_zones {
        let lba = reported * (s.zone_b / u64::from(s.big_cfg.block_size));
        let r = control(
            &mut sock,
            &format!(r#"{{"cmd":"zones","dev":"lun0","lba":{lba},"max":{CONTROL_PAGE}}}"#),
        );
        assert!(
            r.contains(r#""ok":true"#),
            "zones: {}",
            &r[..r.len().min(200)]
        );
        let n = r.matches(r#""cond""#).count() as u64;
        assert!(n > 0, "zones from lba {lba}: none");
        reported += n;
        reply_bytes += r.len();
    }
    let control_report = t.elapsed();
    let (rss1, hwm1) = rss(b.pid());
    drop(sock);
    drop(b);
    let (rss_small, _) = {
        let (b, _, _s) = start(s.dir.path(), &s.small_spec);
        rss(b.pid())
    };
    println!(
        "(b) backend RSS after start-up {} (HWM {}) (target <= {}: {}); after a full zone \
         report through the control socket {} (HWM {}); baseline {} after start-up \
         {} (ratio {:.2}x); the control report of {reported} zones took {} ({reply_bytes} \
         bytes of JSON)",
        mib(rss0),
        mib(hwm0),
        mib(RSS_TARGET_KIB),
        verdict(hwm0 <= RSS_TARGET_KIB),
        mib(rss1),
        mib(hwm1),
        s.base_size,
        mib(rss_small),
        rss0 as f64 / rss_small.max(1) as f64,
        ms(control_report),
    );
    Memory {
        rss0,
        hwm0,
        rss1,
        hwm1,
    }
}

/// The median time of a full `Device::report_zones` of `dev`, which has
/// `zones` zones.
fn core_report(s: &Setup, dev: &Device, zones: u64) -> Duration {
    s.median_of(|| {
        let t = Instant::now();
        let z = dev
            .report_zones(Lba::new(0), usize::MAX, |_| true)
            .expect("report");
        let took = t.elapsed();
        assert_eq!(z.len() as u64, zones);
        took
    })
}

/// (c) A full REPORT ZONES in-process: through the core and through the
/// SCSI front end, and what the latter adds to the peak RSS. Returns the
/// core's time, the SCSI command's and that peak (KiB).
fn report_phase(s: &Setup, mem: Memory) -> (Duration, Duration, u64) {
    let dev = Arc::new(Device::open(&s.big_cfg).expect("reopen"));
    let core = core_report(s, &dev, s.nr_zones);
    let core_small = core_report(
        s,
        &Device::open(&s.small_cfg).expect("reopen"),
        s.base_zones,
    );
    let target = Target::new(vec![Arc::clone(&dev)]);
    let alloc = u32::try_from(64 + 64 * s.nr_zones).expect("allocation length");
    let cdb = report_zones_cdb(alloc);
    // What one SCSI REPORT ZONES adds to a process's peak RSS: reset the
    // peak (clear_refs 5), report once, read it again.
    let (rss_before, _) = rss(std::process::id());
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let scsi = s.median_of(|| {
        let mut out: &[u8] = &[];
        let mut data = Vec::with_capacity(alloc as usize);
        let t = Instant::now();
        let r = target.execute(Request {
            lun: 0,
            cdb: &cdb,
            data_out: &mut out,
            data_in: &mut data,
            data_in_len: alloc,
            direct: None,
        });
        let took = t.elapsed();
        assert_eq!(r.status, Status::Good, "sense {:02x?}", r.sense);
        assert_eq!(data.len(), alloc as usize);
        let list = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        assert_eq!(u64::from(list), 64 * s.nr_zones, "ZONE LIST LENGTH");
        took
    });
    let (_, hwm_after) = rss(std::process::id());
    let scsi_peak = hwm_after.saturating_sub(rss_before);
    let peak = mem.hwm0.max(mem.rss0 + scsi_peak);
    println!(
        "(c) full REPORT ZONES of {} zones: Device::report_zones {} (baseline \
         {} zones {}), SCSI REPORT ZONES with {alloc} bytes of data-in {} \
         (target <= {}: {}); it raises the peak RSS by {}{}, so the backend serving it \
         peaks near {} (target <= {}: {})",
        s.nr_zones,
        ms(core),
        s.base_zones,
        ms(core_small),
        ms(scsi),
        ms(REPORT_TARGET),
        verdict(scsi <= REPORT_TARGET && core <= REPORT_TARGET),
        mib(scsi_peak),
        if reset {
            ""
        } else {
            " (peak not reset: upper bound)"
        },
        mib(peak),
        mib(RSS_TARGET_KIB),
        verdict(peak <= RSS_TARGET_KIB),
    );
    (core, scsi, scsi_peak)
}
