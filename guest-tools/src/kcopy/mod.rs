//! The `kcopy` suite: copies through the kernel's copy path
//! (`copy_file_range(2)` on O_DIRECT block device fds), every destination
//! block verified against its stamped source, host-side checksums compared
//! through the control socket, and the backend's counters telling whether
//! the device copied (offload) or the kernel read and wrote (fallback).
//!
//! KTAP: one flat list, see [`TESTS`]. On a kernel without block-layer copy
//! offload (no `queue/copy_max_bytes`) the copy tests SKIP with the reason
//! `probe` found, and `fallback_sanity` still checks what copy_file_range
//! between two block devices does there.
//!
//! Known bug `copy-error-lost` (`zonecopy.xfail=copy-error-lost`): the
//! copy-offload series as posted sends NVMe Copy with descriptor format 2
//! without enabling it (Host Behavior Support CDFE), the controller rejects
//! it, the block layer drops the error and copy_file_range reports the full
//! length with the destination never written. A test that expects an
//! offload and sees exactly that reports `# XFAIL copy-error-lost: ...`; one
//! that expects an offload and passes reports `# XPASS`. Any other wrong
//! copy is a plain failure, listed bug or not.
//!
//! Known bug `copy-tcp-r2t`: over NVMe/TCP the series never delivers a
//! Copy's source range descriptors (the copy request is read-direction, so
//! nvme-tcp sends no in-capsule data and refuses the controller's R2T:
//! "unexpected r2t for a non-write command"); a kernel that propagates the
//! error then falls back. A test expecting an offload that sees this in the
//! kernel log reports `# XFAIL copy-tcp-r2t` when listed, else `not ok`.

pub mod f2fs;
mod faults;
pub mod kmsg;
pub mod path;
pub mod personality;
pub mod probe;
pub mod stacks;
pub mod verify;

use std::{
    fs::File,
    io::{self, Write},
    os::unix::fs::FileExt,
    path::Path,
    time::Duration,
};

use self::{
    path::{CopyPath, Counters, Delta, DevCounters},
    probe::{Blkcpy, Cfr, Limits},
    verify::DataCheck,
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    blockio::{self, AlignedBuf},
    cmdline::{Config, LunKind, NsKind, ZoneSpec},
    control,
    ktap::{Ktap, Outcome, Verdict},
    nvme::{connect, ident, passthru},
    runner::{self, Bugs, Context, Done, Runner},
    stamp::BLOCK_SIZE,
    sysfs,
};

/// The known-bug id of the series as posted: a failed offload reported as
/// a successful copy.
pub const BUG: &str = "copy-error-lost";
/// What causes it against a spec-following controller, for the XFAIL line.
pub const BUG_CAUSE: &str = "NVMe Copy rejected: descriptor format 2 used without Host \
                             Behavior Support CDFE; error dropped in blkdev_copy_offload";
/// The cause when the kernel log shows nvme-tcp refusing the R2T.
pub const BUG_CAUSE_TCP: &str = "NVMe Copy failed: nvme-tcp never sent the Copy's source \
                                 range descriptors (the copy request is not write-direction: \
                                 'unexpected r2t for a non-write command'); error dropped in \
                                 blkdev_copy_offload";
/// Known-bug id: over NVMe/TCP the series cannot offload at all (the Copy
/// descriptors ride a read-direction request, so nvme-tcp refuses the
/// controller's R2T, reconnects, retries, gives up).
pub const BUG_TCP: &str = "copy-tcp-r2t";
/// Every known-bug id an offloaded copy can hit.
pub const OFFLOAD_BUGS: &[&str] = &[BUG, BUG_TCP];
/// Known-bug id: with copy_max_bytes lowered below a copy's length the
/// series oopses (NULL bvec in bio_get_last_bvec via bio_attempt_back_merge
/// from blkdev_copy_offload: the block layer tries to merge copy bios that
/// carry no pages). A kernel crash cannot be reported as a result, so when
/// it is listed `split_lowered` is not run and says why.
pub const BUG_MERGE_OOPS: &str = "copy-merge-oops";
/// The series sends a cross-namespace Copy to the source namespace (its
/// SDLBA is then a destination LBA in the wrong namespace).
pub const BUG_XNS: &str = "copy-xns-wrong-ns";
/// What a cross-namespace copy that reached the device could expose.
const XNS_BUGS: &[&str] = &[BUG, BUG_TCP, BUG_XNS];

const BS: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// How long to wait for SCSI scanning and NVMe namespaces.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a test found, before the known-bug annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Every assertion held.
    Pass,
    /// An assertion failed.
    Fail(String),
    /// Could not run.
    Skip(String),
    /// A known bug's signature: [`BUG`] when copy_file_range reported every
    /// byte copied and the destination still holds what it held before;
    /// [`BUG_TCP`] when an offload fell back because nvme-tcp refused R2T.
    Bug {
        /// The known-bug id.
        id: &'static str,
        /// The evidence, for the result line.
        why: String,
    },
}

/// The KTAP outcome of a finding: `listed` are the `zonecopy.xfail=` ids;
/// `exposed` the known bugs this test could have hit (an expected offload
/// exposes [`OFFLOAD_BUGS`]): a pass with one of those listed is an XPASS.
pub fn outcome(f: Finding, listed: &[String], exposed: &'static [&'static str]) -> Outcome {
    let (verdict, hit) = f.split();
    runner::expected(verdict, Bugs { hit, exposed }, listed)
}

impl From<Verdict> for Finding {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Pass => Self::Pass,
            Verdict::Fail(why) => Self::Fail(why),
            Verdict::Skip(why) => Self::Skip(why),
        }
    }
}

impl Finding {
    /// The runner's verdict, and the known bug a failure is.
    pub fn split(self) -> (Verdict, Option<&'static str>) {
        match self {
            Self::Pass => (Verdict::Pass, None),
            Self::Fail(why) => (Verdict::Fail(why), None),
            Self::Skip(why) => (Verdict::Skip(why), None),
            Self::Bug { id, why } => (Verdict::Fail(why), Some(id)),
        }
    }
}

type Step<T = ()> = Result<T, Finding>;

fn fail(why: impl Into<String>) -> Finding {
    Finding::Fail(why.into())
}

fn skip(why: impl Into<String>) -> Finding {
    Finding::Skip(why.into())
}

/// One device the suite copies on.
struct Dev {
    /// The backend's name for it: `ns<NSID>` or `lun<N>`.
    name: String,
    nvme: bool,
    /// Kernel disk name (`nvme0n1`, `sdb`).
    block: String,
    /// Logical block size.
    lbs: u64,
    size: u64,
    zones: Option<ZoneSpec>,
    file: File,
    limits: Limits,
    /// Next free byte of the randomly writable space (conventional zones
    /// of a zoned device, all of a plain one).
    next_off: u64,
    /// Next unused sequential zone (index among the sequential ones).
    next_zone: u64,
    /// Where this device's byte 0 lies on the backend's device `name` (a
    /// dm-linear table's offset), or `None` when the backend holds other
    /// bytes than the guest reads (dm-crypt): no host checksum then.
    host_base: Option<u64>,
}

impl Dev {
    /// End of the randomly writable space.
    fn random_end(&self) -> u64 {
        match self.zones {
            Some(z) => z.conventional * z.zone_size,
            None => self.size,
        }
    }

    /// `len` bytes of randomly writable space, 64 KiB aligned.
    fn alloc(&mut self, len: u64) -> Step<u64> {
        let off = self.next_off.next_multiple_of(64 * KIB);
        if off + len > self.random_end() {
            return Err(skip(format!(
                "{}: no {len} bytes of randomly writable space left (used {off} of {})",
                self.name,
                self.random_end()
            )));
        }
        self.next_off = off + len;
        Ok(off)
    }

    /// The next full-sized sequential zone, reset: (start byte, capacity).
    fn alloc_zone(&mut self) -> Step<(u64, u64)> {
        let z = self
            .zones
            .ok_or_else(|| fail(format!("{} is not zoned", self.name)))?;
        let idx = z.conventional + self.next_zone;
        let start = idx * z.zone_size;
        if start + z.zone_size > self.size {
            return Err(skip(format!("{}: no sequential zone left", self.name)));
        }
        self.next_zone += 1;
        bz::zone_mgmt(
            &self.file,
            ZoneOp::Reset,
            start / SECTOR,
            z.zone_size / SECTOR,
        )
        .map_err(|e| fail(format!("{}: BLKRESETZONE at byte {start}: {e}", self.name)))?;
        Ok((start, z.capacity))
    }
}

/// How a copy should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Offload,
    Fallback,
    /// Either is right; the diagnostics say which it was.
    Either,
}

/// One copy to run and judge.
struct Case<'a> {
    src: usize,
    src_off: u64,
    dst: usize,
    dst_off: u64,
    /// Bytes to copy (need not be a multiple of anything).
    len: u64,
    /// The destination is a freshly reset zone's write pointer: it reads
    /// zeros before the copy and its write pointer must advance.
    dst_at_wp: bool,
    /// Errnos accepted as the end of the copy (the destination must then
    /// hold exactly the bytes reported copied, and the rest unchanged).
    refusals: &'a [i32],
    expect: Expect,
}

impl<'a> Case<'a> {
    /// `len` bytes from `src` at `src_off` to `dst` at `dst_off`, expected
    /// to take path `expect`; not into a zone, no errno accepted.
    fn new(src: usize, src_off: u64, dst: usize, dst_off: u64, len: u64, expect: Expect) -> Self {
        Case {
            src,
            src_off,
            dst,
            dst_off,
            len,
            dst_at_wp: false,
            refusals: &[],
            expect,
        }
    }

    /// The destination is a freshly reset zone's write pointer.
    fn at_wp(self) -> Self {
        Case {
            dst_at_wp: true,
            ..self
        }
    }

    /// These errnos are accepted as the end of the copy.
    fn refusing(self, refusals: &'a [i32]) -> Self {
        Case { refusals, ..self }
    }
}

/// What a copy did, for the test to check further.
struct Copied {
    cfr: Cfr,
    delta: Option<Delta>,
    path: Option<CopyPath>,
}

struct Suite<'a> {
    cfg: &'a Config,
    sys: &'a Path,
    devs: Vec<Dev>,
    host: Option<control::Client>,
    gen: u64,
    /// `None` if the kernel has block-layer copy offload, else why not.
    no_offload: Option<String>,
    /// Diagnostics not yet printed.
    diags: Vec<String>,
    /// Prints one diagnostic line at once (so the console shows what the
    /// suite was doing if the kernel crashes).
    sink: &'a dyn Fn(&str),
    done: Done,
    /// The known bug the current test's failure is (taken by the runner).
    hit: Option<&'static str>,
    /// Known bugs the current test could hit (set by a copy that should be
    /// offloaded: [`OFFLOAD_BUGS`]).
    exposed: &'static [&'static str],
    /// The NVMe controller instance (`nvme<N>`), once connected.
    nvme_instance: Option<u32>,
}

type Test = (&'static str, fn(&mut Suite<'_>) -> Finding);

/// The tests, in order.
pub const TESTS: &[(&str, &str)] = &[
    ("config", "the command line names devices"),
    (
        "devices",
        "NVMe/TCP connect, namespaces and LUNs as configured",
    ),
    (
        "control",
        "the backend's control socket lists the same devices",
    ),
    (
        "probe",
        "which copy interface the kernel has, and its limits",
    ),
    (
        "host_behavior",
        "descriptor format 2 enabled (Host Behavior Support CDFE) before use",
    ),
    (
        "personality_limits",
        "copy_max_hw_bytes follows the controller: 0 without Copy, <= min(MSSRL, MCL) blocks",
    ),
    (
        "personality_formats",
        "each Copy in a descriptor format the controller supports and enabled (OCFS, CDFE)",
    ),
    (
        "personality_command_limits",
        "each Copy within MSRC ranges, MSSRL blocks a range, MCL blocks a command",
    ),
    (
        "fallback_sanity",
        "copy_file_range between two block devices that cannot offload",
    ),
    (
        "scsi_fallback",
        "within a SCSI LUN: no SCSI offload, fallback",
    ),
    (
        "scsi_zone_at_wp",
        "into a ZBC sequential zone at its write pointer",
    ),
    (
        "forced_fallback",
        "copy_max_bytes = 0: the kernel reads and writes",
    ),
    (
        "single_range",
        "one range within an NVM namespace: offloaded",
    ),
    ("cross_namespace", "one range from one namespace to another"),
    (
        "unaligned",
        "a length that is not a multiple of the logical block size",
    ),
    (
        "zns_at_wp",
        "into a ZNS sequential zone at its write pointer",
    ),
    (
        "fault_media_error",
        "a media error in a source range: the copy fails, no block the device could not read arrives",
    ),
    (
        "fault_delay_timeout",
        "a read held past the I/O timeout: timeout, reconnect, then the right data or an error",
    ),
    (
        "fault_power_cut",
        "volatile write cache: unflushed O_DIRECT writes lost at a power cut, fsync'ed and FUA kept",
    ),
    (
        "split_hw",
        "beyond copy_max_hw_bytes: split into several Copy commands, all bytes arrive",
    ),
    (
        "dm_linear",
        "dm-linear at an offset: limits stacked, copy passed down, remapped LBAs verified",
    ),
    (
        "dm_crypt",
        "dm-crypt over dm-linear: no copy offload, read+write, ciphertext differs by sector",
    ),
    (
        "dm_cross_device",
        "dm-linear (NVMe) to a SCSI LUN: fallback, nothing copied by a device",
    ),
    (
        "f2fs_gc",
        "F2FS on ZNS + a conventional namespace: forced GC, data intact, offload vs host I/O",
    ),
    (
        "split_lowered",
        "copy_max_bytes lowered to 64 KiB: split, all bytes arrive (last: it oopsed 7.2)",
    ),
];

const RUN: &[Test] = &[
    ("config", t_config),
    ("devices", t_devices),
    ("control", t_control),
    ("probe", t_probe),
    ("host_behavior", t_host_behavior),
    ("personality_limits", personality::t_limits),
    ("personality_formats", personality::t_formats),
    ("personality_command_limits", personality::t_command_limits),
    ("fallback_sanity", t_fallback_sanity),
    ("scsi_fallback", t_scsi_fallback),
    ("scsi_zone_at_wp", t_scsi_zone_at_wp),
    ("forced_fallback", t_forced_fallback),
    ("single_range", t_single_range),
    ("cross_namespace", t_cross_namespace),
    ("unaligned", t_unaligned),
    ("zns_at_wp", t_zns_at_wp),
    ("fault_media_error", faults::t_media_error),
    ("fault_delay_timeout", faults::t_delay_timeout),
    ("fault_power_cut", faults::t_power_cut),
    ("split_hw", t_split_hw),
    ("dm_linear", stacks::t_dm_linear),
    ("dm_crypt", stacks::t_dm_crypt),
    ("dm_cross_device", stacks::t_dm_cross_device),
    ("f2fs_gc", f2fs::t_f2fs_gc),
    ("split_lowered", t_split_lowered),
];

impl Suite<'_> {
    fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
        self.flush();
    }

    fn flush(&mut self) {
        for d in std::mem::take(&mut self.diags) {
            (self.sink)(&d);
        }
    }

    fn needs(&self, step: &str) -> Step {
        self.done.needs(step).map_err(Finding::from)
    }

    /// The kernel has the series' copy offload, else SKIP with why not.
    fn needs_offload(&self) -> Step {
        self.needs("probe")?;
        match &self.no_offload {
            None => Ok(()),
            Some(why) => Err(skip(why.clone())),
        }
    }

    fn new_gen(&mut self) -> u64 {
        self.gen = self.gen.wrapping_add(1);
        self.gen
    }

    /// Index of the first device matching `pred`, not in `except`.
    fn find(&self, except: &[usize], pred: impl Fn(&Dev) -> bool) -> Option<usize> {
        (0..self.devs.len()).find(|i| !except.contains(i) && pred(&self.devs[*i]))
    }

    fn counters(&mut self) -> Option<Result<Counters, String>> {
        let names: Vec<String> = self.devs.iter().map(|d| d.name.clone()).collect();
        let host = self.host.as_mut()?;
        Some(host.request(r#"{"cmd":"stats"}"#).and_then(|reply| {
            let mut c = Counters::default();
            for n in names {
                let s = control::parse_stats(&reply, &n)?;
                c.devs.insert(
                    n,
                    DevCounters {
                        read: s.read_bytes,
                        written: s.written_bytes,
                        copied: s.copied_bytes,
                    },
                );
            }
            let (data, copies) = fabric_counters(&reply);
            c.fabric_data = data;
            c.copy_commands = copies;
            Ok(c)
        }))
    }

    /// Write stamped source blocks and the destination's "before" content,
    /// copy, read back, compare, checksum on the host, classify the path.
    fn copy(&mut self, what: &str, c: &Case<'_>) -> Result<Copied, Finding> {
        let span = c.len.div_ceil(BS) * BS;
        let nblk = span / BS;
        let (sname, dname) = (self.devs[c.src].name.clone(), self.devs[c.dst].name.clone());
        self.diag(format!(
            "{what}: {sname} byte {} -> {dname} byte {}, {} bytes{}",
            c.src_off,
            c.dst_off,
            c.len,
            if c.dst_at_wp {
                " (destination at a zone's write pointer)"
            } else {
                ""
            }
        ));
        if c.expect == Expect::Offload {
            self.exposed = OFFLOAD_BUGS;
        }
        let gen_src = self.new_gen();
        blockio::write_stamped(&self.devs[c.src].file, c.src_off, nblk, gen_src, 256)
            .map_err(|e| fail(format!("stamping the source {sname} at {}: {e}", c.src_off)))?;
        let before = if c.dst_at_wp {
            vec![0u8; span as usize]
        } else {
            let gen_before = self.new_gen();
            blockio::write_stamped(&self.devs[c.dst].file, c.dst_off, nblk, gen_before, 256)
                .map_err(|e| {
                    fail(format!(
                        "stamping the destination {dname} at {}: {e}",
                        c.dst_off
                    ))
                })?;
            verify::stamped_bytes(c.dst_off / BS, gen_before, 0, span as usize)
        };
        let src_bytes = verify::stamped_bytes(c.src_off / BS, gen_src, 0, span as usize);
        let c0 = self.counters();
        let mut log = kmsg::Kmsg::start();
        let cfr = probe::copy_file_range(
            &self.devs[c.src].file,
            c.src_off,
            &self.devs[c.dst].file,
            c.dst_off,
            c.len,
        );
        let c1 = self.counters();
        self.wait_live();
        let klog = log.since();
        self.diag(format!("copy_file_range: {cfr}"));
        for l in klog.iter().take(8) {
            self.diag(format!("kernel: {l}"));
        }
        if klog.len() > 8 {
            self.diag(format!("kernel: ... {} more line(s)", klog.len() - 8));
        }
        let cause = kmsg::copy_cause(&klog);
        let (delta, path) = match (c0, c1) {
            (Some(Ok(a)), Some(Ok(b))) => {
                let d = path::delta(&a, &b, &sname, &dname);
                let p = path::classify(&d, cfr.copied.max(1));
                self.diag(format!("counters: {d}"));
                self.diag(format!("path: {p}"));
                (Some(d), Some(p))
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => return Err(fail(format!("stats: {e}"))),
            _ => {
                self.diag("path: unknown (no zonecopy.control=)");
                (None, None)
            }
        };
        // Read back every destination block.
        let mut got = AlignedBuf::new(span as usize);
        // A failed Copy makes nvme-tcp reconnect, and the copy call may
        // return before that starts: with max_retries 0, I/O in that window
        // fails at once (ENOLINK). Wait for the controller and read again;
        // a read that keeps failing is still a failure.
        let mut attempt = 0;
        while let Err(e) = read_full(&self.devs[c.dst].file, got.as_mut_slice(), c.dst_off) {
            attempt += 1;
            if self.nvme_instance.is_none() || attempt > 5 {
                return Err(fail(format!("reading back {dname} at {}: {e}", c.dst_off)));
            }
            self.diag(format!(
                "reading back {dname}: {e}; waiting for the controller (attempt {attempt})"
            ));
            std::thread::sleep(Duration::from_millis(500));
            self.wait_live();
        }
        let copied = usize::try_from(cfr.copied).unwrap_or(usize::MAX);
        let expected = verify::after_copy(&src_bytes, &before, copied);
        let data = verify::check(&expected, &before, got.as_slice(), c.dst_off);
        // The host's view of the same blocks.
        let host_crc = match (self.host.as_mut(), self.devs[c.dst].host_base) {
            (None, _) | (_, None) => None,
            (Some(h), Some(base)) => {
                let lbs = self.devs[c.dst].lbs;
                Some(
                    h.checksum(&dname, (base + c.dst_off) / lbs, span / lbs)
                        .map_err(|e| fail(format!("host checksum: {e}")))?
                        .crc,
                )
            }
        };
        let want_crc = crc32c::crc32c(&expected);
        match &data {
            DataCheck::Good => self.diag(format!(
                "data: {nblk} destination block(s) verified{}",
                host_crc.map_or(String::new(), |h| format!(
                    "; host crc32c {h:#010x} (expected {want_crc:#010x})"
                ))
            )),
            DataCheck::NotWritten(m) | DataCheck::Wrong(m) => {
                self.diag(format!("data: {m}"));
                if let Some(h) = host_crc {
                    self.diag(format!(
                        "host crc32c of the destination {h:#010x}, expected {want_crc:#010x}"
                    ));
                }
            }
        }
        // Judge: errors first, then data, then the host, then the path.
        if let Some(e) = cfr.errno() {
            let name = probe::errno_name(e);
            if !c.refusals.contains(&e) {
                return Err(fail(format!(
                    "copy_file_range failed with {name} after {} of {} bytes",
                    cfr.copied, c.len
                )));
            }
            self.diag(format!(
                "the kernel refused the copy{}: {name}",
                if cfr.copied > 0 {
                    format!(" after {} bytes", cfr.copied)
                } else {
                    String::new()
                }
            ));
        } else if !cfr.complete() {
            return Err(fail(format!(
                "copy_file_range stopped at {} of {} bytes (a call returned 0)",
                cfr.copied, c.len
            )));
        }
        match data {
            DataCheck::Good => {}
            DataCheck::NotWritten(m) if cfr.complete() && cfr.copied > 0 => {
                self.diag(format!(
                    "evidence: first mismatching block at byte {}: expected {}, found {}",
                    m.byte, m.expected, m.found
                ));
                let why = match cause {
                    Some(kmsg::CopyCause::TcpR2t) => BUG_CAUSE_TCP,
                    _ => BUG_CAUSE,
                };
                return Err(Finding::Bug {
                    id: BUG,
                    why: format!(
                        "copy_file_range reported {} bytes but the destination was never written ({why})",
                        cfr.copied
                    ),
                });
            }
            DataCheck::NotWritten(m) | DataCheck::Wrong(m) => {
                return Err(fail(format!(
                    "destination {dname} wrong after copy_file_range reported {} bytes: {m}",
                    cfr.copied
                )));
            }
        }
        if let Some(h) = host_crc {
            if h != want_crc {
                return Err(fail(format!(
                    "the guest reads the right data but the host's crc32c of {dname} \
                     lba {} +{} is {h:#010x}, expected {want_crc:#010x}",
                    (self.devs[c.dst].host_base.unwrap_or(0) + c.dst_off) / self.devs[c.dst].lbs,
                    span / self.devs[c.dst].lbs
                )));
            }
        }
        if cfr.copied > 0 {
            match (c.expect, path) {
                (Expect::Offload, Some(p))
                    if p != CopyPath::Offload && cause == Some(kmsg::CopyCause::TcpR2t) =>
                {
                    return Err(Finding::Bug {
                        id: BUG_TCP,
                        why: format!(
                            "expected an offloaded copy, the kernel fell back ({p}) after nvme-tcp \
                             refused the controller's R2T for the Copy descriptors ('unexpected r2t \
                             for a non-write command': the copy request is read-direction), took {:.1} s",
                            cfr.elapsed.as_secs_f64()
                        ),
                    });
                }
                (Expect::Offload, Some(p)) if p != CopyPath::Offload => {
                    return Err(fail(format!(
                        "expected an offloaded copy, the counters show {p}: {}",
                        delta.map(|d| d.to_string()).unwrap_or_default()
                    )));
                }
                (Expect::Fallback, Some(p)) if p != CopyPath::Fallback => {
                    return Err(fail(format!(
                        "expected a read/write fallback, the counters show {p}: {}",
                        delta.map(|d| d.to_string()).unwrap_or_default()
                    )));
                }
                _ => {}
            }
        }
        Ok(Copied { cfr, delta, path })
    }

    /// After a copy, wait (up to 60 s) until the NVMe controller is live
    /// again: a failed Copy can leave it reconnecting, and I/O fails then.
    fn wait_live(&mut self) {
        let Some(inst) = self.nvme_instance else {
            return;
        };
        let state = self.sys.join(format!("class/nvme/nvme{inst}/state"));
        let read = || std::fs::read_to_string(&state).map(|s| s.trim().to_string());
        let first = read().unwrap_or_default();
        if first == "live" {
            return;
        }
        let start = std::time::Instant::now();
        let mut now = first.clone();
        while now != "live" && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
            now = read().unwrap_or_default();
        }
        self.diag(format!(
            "controller nvme{inst} was {first} after the copy; {now} after {:.1} s",
            start.elapsed().as_secs_f64()
        ));
    }

    /// Check a zone's write pointer (byte offsets).
    fn expect_wp(&mut self, dev: usize, zone_start: u64, wp: u64) -> Step {
        let z = bz::report_one(&self.devs[dev].file, zone_start / SECTOR)
            .map_err(|e| fail(format!("BLKREPORTZONE: {e}")))?;
        self.diag(format!("{} zone after the copy: {z}", self.devs[dev].name));
        if z.wp * SECTOR != wp {
            return Err(fail(format!(
                "{} zone at byte {zone_start}: write pointer at byte {}, expected {wp}",
                self.devs[dev].name,
                z.wp * SECTOR
            )));
        }
        Ok(())
    }
}

/// Read exactly `buf.len()` bytes at `off`.
fn read_full(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = f.read_at(&mut buf[done..], off + done as u64)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "short read: {done} of {} bytes",
                buf.len()
            )));
        }
        done += n;
    }
    Ok(())
}

/// Fabric data bytes and Copy commands from a stats reply, if the backend
/// reports them (section `fabric`: `data_bytes`, and per command class
/// `commands`, `data_h2c`, `data_c2h`, ...).
pub fn fabric_counters(reply: &str) -> (Option<u64>, Option<u64>) {
    let Some(f) = control::find_value(reply, "fabric") else {
        return (None, None);
    };
    let num =
        |s: &str, k: &str| control::find_value(s, k).and_then(|v| v.trim().parse::<u64>().ok());
    let data = num(f, "data_bytes");
    let copies = control::find_value(f, "copy").and_then(|c| num(c, "commands"));
    (data, copies)
}

// ---------------------------------------------------------------- tests

fn t_config(s: &mut Suite<'_>) -> Finding {
    s.diag(format!("kernel {}", probe::kernel_release()));
    if !s.cfg.xfail.is_empty() {
        s.diag(format!("known bugs listed: {}", s.cfg.xfail.join(", ")));
    }
    if s.cfg.nvme.is_none() && s.cfg.luns.is_empty() {
        return fail("neither zonecopy.nvme= nor zonecopy.lun<N>= on the kernel command line");
    }
    if s.cfg.nvme.is_some() && s.cfg.namespaces.is_empty() {
        return fail("zonecopy.nvme= without any zonecopy.ns<N>=");
    }
    Finding::Pass
}

fn t_devices(s: &mut Suite<'_>) -> Finding {
    if let Err(f) = s.needs("config") {
        return f;
    }
    let mut problems = Vec::new();
    if let Some(t) = s.cfg.nvme.clone() {
        // A Copy the transport cannot carry fails, the driver reconnects and
        // retries it nvme_core.max_retries (5) times about 31 s apart: minutes
        // per copy. Judge the first failure instead.
        let p = s.sys.join("module/nvme_core/parameters/max_retries");
        if let Ok(old) = std::fs::read_to_string(&p) {
            match std::fs::write(&p, "0") {
                Ok(()) => s.diag(format!(
                    "nvme_core max_retries {} -> 0 (a failing Copy comes back at once)",
                    old.trim()
                )),
                Err(e) => s.diag(format!("nvme_core max_retries stays {}: {e}", old.trim())),
            }
        }
        let found = if t.pcie {
            // Over PCIe the nvme-pci driver probes the controller itself.
            s.diag(format!("PCIe controller of {}", t.nqn));
            connect::find_pcie_controller(s.sys, &t.nqn, DISCOVERY_TIMEOUT)
                .map_err(|e| format!("nvme-pci: {e}"))
        } else {
            let host = connect::HostId::generate();
            // Reconnect after 1 s instead of 10 s: a Copy the transport
            // cannot carry makes the driver reconnect and retry it several
            // times before the block layer sees the error.
            let opts = format!(
                "{},reconnect_delay=1",
                connect::connect_options(&t, &t.nqn, &host)
            );
            s.diag(format!("connect: {opts}"));
            connect::fabrics_connect(&opts)
                .map_err(|e| format!("NVMe/TCP connect to {}:{}: {e}", t.traddr, t.trsvcid))
        };
        match found {
            Err(e) => problems.push(e),
            Ok(c) => {
                s.diag(format!("controller nvme{} cntlid {}", c.instance, c.cntlid));
                s.nvme_instance = Some(c.instance);
                let nsids: Vec<u32> = s.cfg.namespaces.keys().copied().collect();
                let (found, took) = connect::wait_for_namespaces(
                    s.sys,
                    Path::new("/dev"),
                    c.instance,
                    &nsids,
                    DISCOVERY_TIMEOUT,
                );
                s.diag(format!(
                    "namespaces after {:.1} s: {}",
                    took.as_secs_f64(),
                    found
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                // The disk name's number is the kernel's instance counter,
                // not the NSID (namespaces are scanned concurrently): read
                // the NSID from sysfs.
                let by_nsid: Vec<(u32, String)> = found
                    .iter()
                    .map(|n| {
                        (
                            disk_nsid(s.sys, &n.block).unwrap_or(n.nsid),
                            n.block.clone(),
                        )
                    })
                    .collect();
                s.diags.push(format!(
                    "by NSID: {}",
                    by_nsid
                        .iter()
                        .map(|(id, b)| format!("{id} = /dev/{b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                for (&nsid, spec) in &s.cfg.namespaces {
                    let Some((_, block)) = by_nsid.iter().find(|(id, _)| *id == nsid) else {
                        problems.push(format!("ns{nsid}: no block device"));
                        continue;
                    };
                    let zoned = spec.kind == NsKind::Zns;
                    match open_dev(
                        s.sys,
                        &format!("ns{nsid}"),
                        block,
                        true,
                        spec.block_size,
                        spec.size,
                        zoned,
                        spec.zones,
                    ) {
                        Ok(d) => s.devs.push(d),
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
    }
    if !s.cfg.luns.is_empty() {
        let luns: Vec<u64> = s.cfg.luns.keys().copied().collect();
        let (disks, errors) = sysfs::wait_for_luns(s.sys, &luns, DISCOVERY_TIMEOUT);
        for e in errors {
            s.diag(format!("sysfs: {e}"));
        }
        for (&n, spec) in &s.cfg.luns {
            match sysfs::pick_lun(&disks, n) {
                Err(e) => problems.push(format!("lun{n}: {e}")),
                Ok(d) => {
                    let zoned = spec.kind == LunKind::HostManaged;
                    match open_dev(
                        s.sys,
                        &format!("lun{n}"),
                        &d.name,
                        false,
                        spec.block_size,
                        spec.size,
                        zoned,
                        spec.zones,
                    ) {
                        Ok(d) => s.devs.push(d),
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
    }
    for d in &s.devs {
        let line = format!(
            "{} = /dev/{} lbs {} size {}{}",
            d.name,
            d.block,
            d.lbs,
            d.size,
            d.zones.map_or(String::new(), |z| format!(
                " zoned: zone {} cap {} conv {}",
                z.zone_size, z.capacity, z.conventional
            ))
        );
        s.diags.push(line);
    }
    if problems.is_empty() {
        Finding::Pass
    } else {
        fail(problems.join("; "))
    }
}

/// `<sys>/block/<disk>/nsid`, the namespace's NSID.
fn disk_nsid(sys: &Path, disk: &str) -> Option<u32> {
    std::fs::read_to_string(sys.join("block").join(disk).join("nsid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Open a device O_DIRECT and check it is what the host configured.
#[allow(clippy::too_many_arguments)]
fn open_dev(
    sys: &Path,
    name: &str,
    block: &str,
    nvme: bool,
    lbs: u64,
    size: u64,
    zoned: bool,
    zones: Option<ZoneSpec>,
) -> Result<Dev, String> {
    let q = sys.join("block").join(block);
    let read = |p: &str| -> Result<String, String> {
        std::fs::read_to_string(q.join(p))
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{name}: {}/{p}: {e}", q.display()))
    };
    let got_lbs: u64 = read("queue/logical_block_size")?.parse().unwrap_or(0);
    let got_size = read("size")?.parse::<u64>().unwrap_or(0) * SECTOR;
    let model = read("queue/zoned")?;
    let mut bad = Vec::new();
    if got_lbs != lbs {
        bad.push(format!("logical block size {got_lbs}, configured {lbs}"));
    }
    if got_size != size {
        bad.push(format!("size {got_size}, configured {size}"));
    }
    if zoned != (model == "host-managed") {
        bad.push(format!("queue/zoned {model}, configured zoned={zoned}"));
    }
    if !bad.is_empty() {
        return Err(format!("{name} (/dev/{block}): {}", bad.join(", ")));
    }
    let path = Path::new("/dev").join(block);
    let file = blockio::open_direct(&path)
        .map_err(|e| format!("{name}: open {} O_RDWR|O_DIRECT: {e}", path.display()))?;
    let limits = probe::limits(sys, block).map_err(|e| format!("{name}: {e}"))?;
    Ok(Dev {
        name: name.to_string(),
        nvme,
        block: block.to_string(),
        lbs,
        size,
        zones: if zoned { zones } else { None },
        file,
        limits,
        next_off: if zoned { 0 } else { MIB.min(size / 2) },
        next_zone: 0,
        host_base: Some(0),
    })
}

/// The `{"cmd":"devices"}` reply as (name, block size, blocks).
pub fn parse_devices(reply: &str) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let Some(arr) = control::find_value(reply, "devices") else {
        return out;
    };
    // Split the array into its top-level objects.
    let (mut depth, mut start) = (0usize, None);
    let mut in_str = false;
    let b = arr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' => {
                    depth += 1;
                    if depth == 1 {
                        start = Some(i);
                    }
                }
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        if let Some(st) = start.take() {
                            let o = &arr[st..=i];
                            let num = |k: &str| {
                                control::find_value(o, k)
                                    .and_then(|v| v.trim().parse::<u64>().ok())
                                    .unwrap_or(0)
                            };
                            if let Some(n) = control::find_value(o, "name") {
                                out.push((n.to_string(), num("block_size"), num("blocks")));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out
}

fn t_control(s: &mut Suite<'_>) -> Finding {
    let Some(addr) = s.cfg.control else {
        return skip("no zonecopy.control= (host-side checks off)");
    };
    if let Err(f) = s.needs("devices") {
        if s.devs.is_empty() {
            return f;
        }
    }
    let mut c = control::Client::new(addr);
    let reply = match c.request(r#"{"cmd":"devices"}"#) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let listed = parse_devices(&reply);
    s.diag(format!(
        "backend devices: {}",
        listed
            .iter()
            .map(|(n, bs, b)| format!("{n} ({bs} x {b})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut bad = Vec::new();
    for d in &s.devs {
        match listed.iter().find(|(n, _, _)| *n == d.name) {
            None => bad.push(format!("{} not listed by the backend", d.name)),
            Some((_, bs, blocks)) if *bs != d.lbs || bs * blocks != d.size => bad.push(format!(
                "{}: backend says {bs} x {blocks}, the guest sees {} x {}",
                d.name,
                d.lbs,
                d.size / d.lbs.max(1)
            )),
            _ => {}
        }
    }
    s.host = Some(c);
    match s.counters() {
        Some(Ok(c)) => s.diags.push(format!(
            "fabric counters: {}",
            match (c.fabric_data, c.copy_commands) {
                (Some(d), Some(k)) => format!("{d} data bytes, {k} Copy commands so far"),
                _ => "not reported by this backend".to_string(),
            }
        )),
        Some(Err(e)) => bad.push(format!("stats: {e}")),
        None => {}
    }
    if bad.is_empty() {
        Finding::Pass
    } else {
        s.host = None;
        fail(bad.join("; "))
    }
}

fn t_probe(s: &mut Suite<'_>) -> Finding {
    if s.devs.is_empty() {
        return skip("needs devices");
    }
    let mut bad = Vec::new();
    let mut any_sysfs = false;
    let mut any_blkcpy = false;
    let mut lines = Vec::new();
    for d in &mut s.devs {
        match probe::limits(s.sys, &d.block) {
            Ok(l) => d.limits = l,
            Err(e) => bad.push(format!("{}: {e}", d.name)),
        }
        let b = probe::blkcpy(&d.file);
        any_sysfs |= d.limits.present();
        any_blkcpy |= matches!(b, Blkcpy::Present(_));
        lines.push(format!("{} (/dev/{}): {}; {b}", d.name, d.block, d.limits));
        if let (Some(m), Some(h)) = (d.limits.max_bytes, d.limits.max_hw_bytes) {
            if m > h {
                bad.push(format!(
                    "{}: copy_max_bytes {m} > copy_max_hw_bytes {h}",
                    d.name
                ));
            }
        }
    }
    s.diags.extend(lines);
    // What the controller advertises, and what the kernel made of it.
    for i in 0..s.devs.len() {
        if !s.devs[i].nvme {
            continue;
        }
        let d = &s.devs[i];
        let nsid: u32 = d.name.trim_start_matches("ns").parse().unwrap_or(0);
        match identify(&d.file, nsid) {
            Err(e) => bad.push(format!("{}: {e}", d.name)),
            Ok((c, n)) => {
                let line = format!(
                    "{}: ONCS {:#x} (Copy {}), OCFS {:#x} (formats:{}{}{}{}), MSSRL {} MCL {} MSRC {} (0's based), lbs {}",
                    d.name,
                    c.oncs,
                    if c.copy_supported() { "yes" } else { "no" },
                    c.ocfs,
                    if c.format_supported(0) { " 0" } else { "" },
                    if c.format_supported(1) { " 1" } else { "" },
                    if c.format_supported(2) { " 2" } else { "" },
                    if c.format_supported(3) { " 3" } else { "" },
                    n.mssrl,
                    n.mcl,
                    n.msrc,
                    n.block_size()
                );
                let (lbs, limits, name) = (d.lbs, d.limits, d.name.clone());
                s.diag(line);
                if let Some(hw) = limits.max_hw_bytes {
                    let mssrl = u64::from(n.mssrl) * lbs;
                    let mcl = u64::from(n.mcl) * lbs;
                    s.diag(format!(
                        "{name}: copy_max_hw_bytes {hw} = {} x MSSRL bytes; MCL allows {mcl}",
                        if mssrl > 0 {
                            format!("{:.3}", hw as f64 / mssrl as f64)
                        } else {
                            "-".into()
                        }
                    ));
                    // Judged against ONCS, MSSRL and MCL by personality_limits.
                }
            }
        }
    }
    s.no_offload = if any_sysfs {
        s.diag("interface: block-layer copy offload (queue/copy_max_bytes; copy_file_range on O_DIRECT block fds)");
        None
    } else if any_blkcpy {
        s.diag("interface: BLKCPY ioctl only (an earlier series)");
        Some("this kernel has only the BLKCPY ioctl (an earlier copy-offload series), not queue/copy_max_bytes".to_string())
    } else {
        s.diag("interface: none (no queue/copy_max_bytes, no BLKCPY)");
        Some("no block-layer copy offload in this kernel (no queue/copy_max_bytes)".to_string())
    };
    if bad.is_empty() {
        Finding::Pass
    } else {
        fail(bad.join("; "))
    }
}

/// Identify Controller and Identify Namespace through the admin passthru
/// ioctl on a namespace's block device.
fn identify(f: &File, nsid: u32) -> Result<(ident::IdCtrl, ident::IdNs), String> {
    let mut buf = vec![0u8; ident::IDENTIFY_LEN];
    passthru::admin(
        f,
        &passthru::identify(0, ident::cns::CONTROLLER, 0),
        passthru::Data::In(&mut buf),
    )
    .map_err(|e| format!("Identify Controller: {e}"))?
    .ok("Identify Controller")?;
    let c = ident::IdCtrl::parse(&buf)?;
    let mut buf = vec![0u8; ident::IDENTIFY_LEN];
    passthru::admin(
        f,
        &passthru::identify(nsid, ident::cns::NAMESPACE, 0),
        passthru::Data::In(&mut buf),
    )
    .map_err(|e| format!("Identify Namespace {nsid}: {e}"))?
    .ok("Identify Namespace")?;
    Ok((c, ident::IdNs::parse(&buf)?))
}

/// Host Behavior Support (feature 16h) as the host set it: 512 bytes,
/// CDFE (Copy Descriptor Formats Enable) in bytes 5:4, bit n = format n.
fn host_behavior_cdfe(f: &File) -> Result<u16, String> {
    let mut buf = vec![0u8; 512];
    passthru::admin(
        f,
        &passthru::get_features(0x16),
        passthru::Data::In(&mut buf),
    )
    .map_err(|e| format!("Get Features Host Behavior Support: {e}"))?
    .ok("Get Features Host Behavior Support")?;
    Ok(u16::from_le_bytes([buf[4], buf[5]]))
}

/// A kernel with copy offload builds NVMe Copy with descriptor format 2
/// (NSID per source range); NVMe 2.x lets a controller refuse formats 2
/// and 3 until the host enables them in Host Behavior Support, so the
/// kernel must have set CDFE bit 2 when the controller supports Copy.
fn t_host_behavior(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], |d| d.nvme && d.limits.offload_enabled())
            .ok_or_else(|| skip("needs an NVMe namespace with copy offload enabled"))?;
        let nsid: u32 = s.devs[a].name.trim_start_matches("ns").parse().unwrap_or(0);
        let (c, _) = identify(&s.devs[a].file, nsid).map_err(fail)?;
        if !c.format_supported(2) {
            s.diag(format!(
                "OCFS {:#x}: no format 2, nothing to enable",
                c.ocfs
            ));
            return Ok(());
        }
        s.exposed = &[BUG];
        let cdfe = host_behavior_cdfe(&s.devs[a].file).map_err(fail)?;
        s.diag(format!(
            "Host Behavior Support CDFE {cdfe:#x} (format 2 {}), OCFS {:#x}",
            if cdfe & 4 != 0 {
                "enabled"
            } else {
                "not enabled"
            },
            c.ocfs
        ));
        if cdfe & 4 == 0 {
            return Err(Finding::Bug {
                id: BUG,
                why: format!(
                    "Host Behavior Support CDFE is {cdfe:#x}: descriptor format 2 not enabled, \
                     yet the kernel builds every Copy with format 2 (a spec-following controller \
                     rejects them with Invalid Field)"
                ),
            });
        }
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

fn is_nvm(d: &Dev) -> bool {
    d.nvme && d.zones.is_none()
}

fn t_fallback_sanity(s: &mut Suite<'_>) -> Finding {
    if let Err(f) = s.needs("probe") {
        return f;
    }
    // Two devices that cannot copy to each other: different transports
    // if there are, else any two with random access.
    let random = |d: &Dev| d.random_end() > 2 * MIB;
    let Some(a) = s
        .find(&[], |d| random(d) && d.nvme)
        .or_else(|| s.find(&[], random))
    else {
        return skip("needs a device with randomly writable space");
    };
    let a_nvme = s.devs[a].nvme;
    let Some(b) = s
        .find(&[a], |d| random(d) && d.nvme != a_nvme)
        .or_else(|| s.find(&[a], random))
    else {
        return skip("needs two block devices with randomly writable space");
    };
    let len = 256 * KIB;
    let r = (|| {
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[b].alloc(len)?;
        let expect = if s.devs[a].nvme && s.devs[b].nvme && s.no_offload.is_none() {
            Expect::Either
        } else {
            Expect::Fallback
        };
        let c = s.copy(
            "fallback",
            &Case::new(a, so, b, dof, len, expect).refusing(&[
                libc::EINVAL,
                libc::EXDEV,
                libc::EOPNOTSUPP,
            ]),
        )?;
        match c.cfr.errno() {
            Some(e) => s.diag(format!(
                "the kernel refused copy_file_range between two block devices ({}); destination unchanged",
                probe::errno_name(e)
            )),
            None => s.diag(format!(
                "the kernel copied {} bytes between two block devices by {}",
                c.cfr.copied,
                c.path.map_or("an unknown path".to_string(), |p| p.to_string())
            )),
        }
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

fn t_single_range(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        // No Copy in ONCS: a fallback (personality_* judge the limits).
        let expect = personality::expect_for(s, a);
        if expect == Expect::Offload && !s.devs[a].limits.offload_enabled() {
            return Err(fail(format!(
                "{}: copy_max_bytes is 0 on an NVMe namespace",
                s.devs[a].name
            )));
        }
        let len = 256 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        s.copy("single range", &Case::new(a, so, a, dof, len, expect))?;
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

fn t_cross_namespace(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        let b = s
            .find(&[a], is_nvm)
            .ok_or_else(|| skip("needs two NVM namespaces"))?;
        let len = 256 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[b].alloc(len)?;
        // Descriptor format 2 names the source namespace in each range: one
        // controller copies across its namespaces, so this is offloaded too.
        let expect = personality::expect_for(s, b);
        let (sn, dn) = (s.devs[a].name.clone(), s.devs[b].name.clone());
        let before = (
            personality::received(s, &sn)?,
            personality::received(s, &dn)?,
        );
        // What the source namespace holds where the destination's LBAs
        // fall: a Copy sent to the wrong namespace writes there.
        let victim = xns_victim_crc(s, a, dof, len)?;
        let copied = s.copy("cross namespace", &Case::new(a, so, b, dof, len, expect));
        let after = (
            personality::received(s, &sn)?,
            personality::received(s, &dn)?,
        );
        if let ((Some(sb), Some(db)), (Some(sa), Some(da))) = (before, after) {
            let (to_src, to_dst) = (sa.saturating_sub(sb), da.saturating_sub(db));
            s.diag(format!(
                "a correct kernel must send a cross-namespace Copy to the destination \
                 namespace (the command's NSID is the destination; each format 2 range \
                 names its source): {sn} (source) received {to_src}, {dn} (destination) \
                 received {to_dst}"
            ));
            if to_src > 0 && to_dst == 0 {
                let now = xns_victim_crc(s, a, dof, len)?;
                let damage = match (victim, now) {
                    (Some(v), Some(n)) if v != n => format!(
                        "it overwrote {sn} bytes {dof}..{} (host crc32c {v:#010x} -> \
                         {n:#010x}): silent corruption of the source namespace",
                        dof + len
                    ),
                    (Some(_), Some(_)) => {
                        format!(
                            "{sn} bytes {dof}..{} unchanged (the Copy did not run)",
                            dof + len
                        )
                    }
                    _ => format!("its SDLBA would overwrite {sn} (no host checksum)"),
                };
                return Err(Finding::Bug {
                    id: BUG_XNS,
                    why: format!(
                        "the Copy for {sn} -> {dn} went to the source namespace {sn} \
                         ({to_src} Copy command(s)); {damage}"
                    ),
                });
            }
            if to_dst > 0 {
                s.exposed = XNS_BUGS;
            }
        }
        copied.map(|_| ())
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// The host's crc32c of `len` bytes of device `a` at byte `off`, or `None`
/// without a control socket or a host view of the device.
fn xns_victim_crc(s: &mut Suite<'_>, a: usize, off: u64, len: u64) -> Result<Option<u32>, Finding> {
    let (name, lbs) = (s.devs[a].name.clone(), s.devs[a].lbs);
    if off + len > s.devs[a].random_end() {
        return Ok(None);
    }
    let (Some(h), Some(base)) = (s.host.as_mut(), s.devs[a].host_base) else {
        return Ok(None);
    };
    h.checksum(&name, (base + off) / lbs, len / lbs)
        .map(|c| Some(c.crc))
        .map_err(|e| fail(format!("host checksum of {name}: {e}")))
}

fn t_unaligned(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        // 64 KiB and 100 bytes: a multiple of no logical block size.
        let len = 64 * KIB + 100;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let c = s.copy(
            "unaligned length",
            &Case::new(a, so, a, dof, len, Expect::Either).refusing(&[libc::EINVAL]),
        )?;
        let what = match (c.cfr.errno(), c.path) {
            (Some(e), Some(p)) if c.cfr.copied > 0 => format!(
                "copied the first {} bytes by {p}, then refused the rest with {}",
                c.cfr.copied,
                probe::errno_name(e)
            ),
            (Some(e), _) => format!(
                "refused it with {} after {} bytes",
                probe::errno_name(e),
                c.cfr.copied
            ),
            (None, Some(p)) => format!("copied all {} bytes by {p}", c.cfr.copied),
            (None, None) => format!("copied all {} bytes", c.cfr.copied),
        };
        s.diag(format!("unaligned length {len}: the kernel {what}"));
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// Restores a queue's copy_max_bytes when dropped.
struct MaxBytes<'a> {
    sys: &'a Path,
    block: String,
    orig: u64,
}

impl<'a> MaxBytes<'a> {
    fn set(sys: &'a Path, d: &Dev, v: u64) -> Step<Self> {
        let orig = d
            .limits
            .max_bytes
            .ok_or_else(|| skip(format!("{}: no queue/copy_max_bytes", d.name)))?;
        probe::set_max_bytes(sys, &d.block, v).map_err(|e| fail(e.to_string()))?;
        let now = probe::limits(sys, &d.block).map_err(|e| fail(e.to_string()))?;
        let g = Self {
            sys,
            block: d.block.clone(),
            orig,
        };
        if now.max_bytes != Some(v) {
            return Err(fail(format!(
                "{}: wrote {v} to copy_max_bytes, it reads {:?}",
                d.name, now.max_bytes
            )));
        }
        Ok(g)
    }
}

impl Drop for MaxBytes<'_> {
    fn drop(&mut self) {
        let _ = probe::set_max_bytes(self.sys, &self.block, self.orig);
    }
}

/// The NVM namespace the split tests use, its hardware limit and the
/// lowered limit (64 KiB, at least one block).
fn split_setup(s: &mut Suite<'_>) -> Step<(usize, u64, u64)> {
    s.needs_offload()?;
    let a = s
        .find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))?;
    let hw = s.devs[a].limits.max_hw_bytes.unwrap_or(0);
    let max = (64 * KIB).max(s.devs[a].lbs);
    if hw < 2 * max {
        return Err(skip(format!(
            "copy_max_hw_bytes {hw} is too small to split"
        )));
    }
    let sched = std::fs::read_to_string(
        s.sys
            .join("block")
            .join(&s.devs[a].block)
            .join("queue/scheduler"),
    )
    .unwrap_or_default();
    s.diag(format!(
        "{}: I/O scheduler {}",
        s.devs[a].name,
        sched.trim()
    ));
    Ok((a, hw, max))
}

/// A copy beyond copy_max_hw_bytes, as any large copy is: the kernel must
/// split it into several Copy commands.
fn t_split_hw(s: &mut Suite<'_>) -> Finding {
    // Over nvme-tcp each Copy of the split fails at the R2T and starts error
    // recovery; the second failing while the first reconnect completes once
    // left the 7.2 controller wedged (no reconnect, then ENOLINK for every
    // later I/O of the suite). Nothing is offloaded there anyway.
    if s.cfg.xfail.iter().any(|b| b == BUG_TCP) {
        return Finding::Skip(format!(
            "{BUG_TCP} listed: every Copy of the split fails over nvme-tcp and two \
             back-to-back recoveries can wedge the controller; not run so the suite can finish"
        ));
    }
    // Over PCIe the split Copies reach the device, and 7.2 with the series
    // oopses merging them (bio_will_gap from blk_mq_sched_try_merge in
    // blkdev_copy_offload), as with a lowered copy_max_bytes.
    if s.cfg.xfail.iter().any(|b| b == BUG_MERGE_OOPS) {
        return Finding::Skip(format!(
            "{BUG_MERGE_OOPS} listed: the split copy bios are merged and the kernel oopses \
             (bio_will_gap via blk_mq_sched_try_merge, seen over PCIe); not run so the suite \
             can finish"
        ));
    }
    let r = (|| {
        let (a, hw, _) = split_setup(s)?;
        let len = hw + 64 * KIB;
        if hw > 32 * MIB || s.devs[a].random_end() < s.devs[a].next_off + 2 * len + 4 * MIB {
            return Err(skip(format!(
                "no room for two copies of copy_max_hw_bytes ({hw}) + 64 KiB"
            )));
        }
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let c = s.copy(
            "beyond copy_max_hw_bytes",
            &Case::new(a, so, a, dof, len, Expect::Offload),
        )?;
        check_split(s, &c, len, hw)
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// copy_max_bytes lowered to 64 KiB, a 1 MiB + 4 KiB copy: at least 17
/// Copy commands (7.2 with the series oopses here merging copy bios).
fn t_split_lowered(s: &mut Suite<'_>) -> Finding {
    if s.cfg.xfail.iter().any(|b| b == BUG_MERGE_OOPS) {
        return Finding::Skip(format!(
            "{BUG_MERGE_OOPS} listed: this copy oopses the kernel (copy bios merged in \
             bio_attempt_back_merge); not run so the suite can finish"
        ));
    }
    let r = (|| {
        let (a, _, max) = split_setup(s)?;
        let len = MIB + 4 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let _g = MaxBytes::set(s.sys, &s.devs[a], max)?;
        s.diag(format!(
            "{}: copy_max_bytes lowered to {max} (7.2 with the series oopsed on this copy, merging copy bios)",
            s.devs[a].name
        ));
        let c = s.copy(
            "beyond copy_max_bytes",
            &Case::new(a, so, a, dof, len, Expect::Offload),
        )?;
        check_split(s, &c, len, max)
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// A copy of `len` bytes with at most `max` bytes per command needs at
/// least ceil(len / max) NVMe Copy commands.
fn check_split(s: &mut Suite<'_>, c: &Copied, len: u64, max: u64) -> Step {
    let need = len.div_ceil(max);
    match c.delta.and_then(|d| d.copy_commands) {
        Some(n) => {
            s.diag(format!(
                "{n} NVMe Copy commands for {len} bytes with at most {max} per copy (at least {need} needed)"
            ));
            if n < need {
                return Err(fail(format!(
                    "{n} NVMe Copy commands carried {len} bytes, but at most {max} bytes fit in one: at least {need} expected"
                )));
            }
        }
        None => s.diag(format!(
            "Copy commands not counted by the backend; {need} or more expected"
        )),
    }
    Ok(())
}

fn t_forced_fallback(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        let len = 256 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let sys = s.sys;
        let _g = MaxBytes::set(sys, &s.devs[a], 0)?;
        s.diag(format!("{}: copy_max_bytes set to 0", s.devs[a].name));
        s.copy(
            "forced fallback",
            &Case::new(a, so, a, dof, len, Expect::Fallback),
        )?;
        Ok(())
    })();
    let name = s
        .find(&[], is_nvm)
        .map(|a| (s.devs[a].block.clone(), s.devs[a].limits.max_bytes));
    if let Some((block, Some(orig))) = name {
        match probe::limits(s.sys, &block) {
            Ok(l) if l.max_bytes == Some(orig) => {}
            Ok(l) => {
                return fail(format!(
                    "copy_max_bytes not restored: {:?}, was {orig}",
                    l.max_bytes
                ))
            }
            Err(e) => return fail(e.to_string()),
        }
    }
    r.err().unwrap_or(Finding::Pass)
}

fn t_zns_at_wp(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let z = s
            .find(&[], |d| d.nvme && d.zones.is_some())
            .ok_or_else(|| skip("needs a ZNS namespace"))?;
        let len = 256 * KIB;
        let (za, cap) = s.devs[z].alloc_zone()?;
        if cap < len {
            return Err(skip(format!("zone capacity {cap} < {len}")));
        }
        let (zb, _) = s.devs[z].alloc_zone()?;
        let expect = if s.devs[z].limits.offload_enabled() {
            Expect::Offload
        } else {
            Expect::Either
        };
        s.copy(
            "zone to zone at the write pointer",
            &Case::new(z, za, z, zb, len, expect).at_wp(),
        )?;
        s.expect_wp(z, zb, zb + len)?;
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

fn scsi_random(d: &Dev) -> bool {
    !d.nvme && d.random_end() >= 2 * MIB
}

fn t_scsi_fallback(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let a = s
            .find(&[], scsi_random)
            .ok_or_else(|| skip("needs a SCSI LUN with randomly writable space"))?;
        let len = 256 * KIB;
        let so = s.devs[a].alloc(len)?;
        let dof = s.devs[a].alloc(len)?;
        let expect = if s.devs[a].limits.offload_enabled() {
            Expect::Either
        } else {
            Expect::Fallback
        };
        s.copy("within a SCSI LUN", &Case::new(a, so, a, dof, len, expect))?;
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

fn t_scsi_zone_at_wp(s: &mut Suite<'_>) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        let h = s
            .find(&[], |d| !d.nvme && d.zones.is_some())
            .ok_or_else(|| skip("needs a host-managed SCSI LUN"))?;
        let len = 256 * KIB;
        let src = s
            .find(&[], scsi_random)
            .ok_or_else(|| skip("needs SCSI randomly writable space for the source"))?;
        let so = s.devs[src].alloc(len)?;
        let (zb, cap) = s.devs[h].alloc_zone()?;
        if cap < len {
            return Err(skip(format!("zone capacity {cap} < {len}")));
        }
        let expect = if s.devs[h].limits.offload_enabled() {
            Expect::Either
        } else {
            Expect::Fallback
        };
        s.copy(
            "into a ZBC zone at the write pointer",
            &Case::new(src, so, h, zb, len, expect).at_wp(),
        )?;
        s.expect_wp(h, zb, zb + len)?;
        Ok(())
    })();
    r.err().unwrap_or(Finding::Pass)
}

// ---------------------------------------------------------------- runner

/// A generation for this run (see the smoke suite: fresh per boot).
fn run_generation() -> u64 {
    crate::stamp::run_generation() << 8
}

/// Run the `kcopy` suite against `/sys` (`sys`). Returns whether every
/// result was `ok` (XFAIL counts as ok).
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys: &Path) -> io::Result<bool> {
    let r = Runner::new(k);
    r.plan(RUN.len())?;
    let sink = r.sink();
    let mut s = Suite {
        sink: &sink,
        cfg,
        sys,
        devs: Vec::new(),
        host: None,
        gen: run_generation(),
        no_offload: None,
        diags: Vec::new(),
        done: Done::default(),
        hit: None,
        exposed: &[],
        nvme_instance: None,
    };
    for &(name, test) in RUN {
        r.test(&mut s, "", name, |s| {
            let (verdict, hit) = test(s).split();
            s.hit = hit;
            match verdict {
                Verdict::Pass => Ok(()),
                v => Err(v),
            }
        })?;
    }
    Ok(!r.failed())
}

impl Context for Suite<'_> {
    fn xfail(&self) -> &[String] {
        &self.cfg.xfail
    }

    fn before_test(&mut self) {
        self.exposed = &[];
        self.hit = None;
        // The previous test may have left nvme-tcp reconnecting.
        self.wait_live();
    }

    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, _area: &str, name: &str, verdict: &Verdict) {
        self.done.record(name, *verdict == Verdict::Pass);
    }

    fn take_bugs(&mut self) -> Bugs {
        Bugs {
            hit: self.hit.take(),
            exposed: std::mem::take(&mut self.exposed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_bug_annotation() {
        let lost = || Finding::Bug {
            id: BUG,
            why: "copy_file_range reported 4096 bytes but".into(),
        };
        let listed = ids(&[BUG]);
        assert_eq!(
            outcome(lost(), &listed, OFFLOAD_BUGS),
            Outcome::XFail(format!("{BUG}: copy_file_range reported 4096 bytes but"))
        );
        // Not listed (or another id listed): a plain failure with the evidence.
        assert!(matches!(
            outcome(lost(), &[], OFFLOAD_BUGS),
            Outcome::Fail(_)
        ));
        assert!(matches!(
            outcome(lost(), &ids(&[BUG_TCP]), OFFLOAD_BUGS),
            Outcome::Fail(_)
        ));
        // Listed but the copy was right: XPASS, counted as a failure.
        let o = outcome(Finding::Pass, &listed, OFFLOAD_BUGS);
        assert_eq!(o, Outcome::XPass(format!("{BUG} did not reproduce")));
        assert!(o.is_failure());
        assert_eq!(
            outcome(Finding::Pass, &ids(&["other", BUG_TCP, BUG]), OFFLOAD_BUGS),
            Outcome::XPass(format!("{BUG}, {BUG_TCP} did not reproduce"))
        );
        // Tests that expect no offload cannot hit the bug; host_behavior
        // can hit only copy-error-lost.
        assert_eq!(
            outcome(Finding::Pass, &ids(&[BUG_TCP]), &[BUG]),
            Outcome::Pass
        );
        assert_eq!(outcome(Finding::Pass, &listed, &[]), Outcome::Pass);
        assert_eq!(
            outcome(Finding::Pass, &ids(&["other"]), OFFLOAD_BUGS),
            Outcome::Pass
        );
        // Any other failure stays a failure, listed or not.
        assert_eq!(
            outcome(Finding::Fail("garbage".into()), &listed, OFFLOAD_BUGS),
            Outcome::Fail("garbage".into())
        );
        assert_eq!(
            outcome(Finding::Skip("no".into()), &listed, OFFLOAD_BUGS),
            Outcome::Skip("no".into())
        );
    }

    #[test]
    fn xfail_line_as_printed() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        let why = format!(
            "copy_file_range reported 262144 bytes but the destination was never written ({BUG_CAUSE})"
        );
        let listed = ids(&[BUG]);
        k.result(
            "single_range",
            &outcome(Finding::Bug { id: BUG, why }, &listed, OFFLOAD_BUGS),
        )
        .unwrap();
        k.result("split", &outcome(Finding::Pass, &listed, OFFLOAD_BUGS))
            .unwrap();
        assert_eq!(
            String::from_utf8(k.into_inner()).unwrap(),
            "KTAP version 1\n\
             ok 1 single_range # XFAIL copy-error-lost: copy_file_range reported 262144 bytes \
             but the destination was never written (NVMe Copy rejected: descriptor format 2 \
             used without Host Behavior Support CDFE; error dropped in blkdev_copy_offload)\n\
             not ok 2 split # XPASS copy-error-lost did not reproduce\n"
        );
    }

    #[test]
    fn devices_reply() {
        let r = r#"{"devices":[{"block_size":4096,"blocks":16384,"name":"lun0","zones":{"conventional":2,"max_open":0,"zone_blocks":1024}},{"block_size":512,"blocks":131072,"name":"ns1","zones":null}],"ok":true}"#;
        assert_eq!(
            parse_devices(r),
            vec![
                ("lun0".to_string(), 4096, 16384),
                ("ns1".to_string(), 512, 131072)
            ]
        );
        assert!(parse_devices(r#"{"ok":true}"#).is_empty());
    }

    #[test]
    fn fabric_counters_from_stats() {
        let r = r#"{"devices":{"ns1":{"copied_bytes":0,"flushes":0,"read_bytes":0,"written_bytes":0}},"fabric":{"admin":{"commands":5,"data_c2h":8192,"data_h2c":1024},"connection_c2h":128,"copy":{"commands":3,"data_c2h":0,"data_h2c":96},"data_bytes":13408,"read":{"commands":1,"data_c2h":4096,"data_h2c":0},"total_bytes":20000},"ok":true}"#;
        assert_eq!(fabric_counters(r), (Some(13408), Some(3)));
        assert_eq!(fabric_counters(r#"{"devices":{},"ok":true}"#), (None, None));
    }

    #[test]
    fn without_devices_every_test_still_reports() {
        let cfg = crate::cmdline::parse("zonecopy.suite=kcopy").unwrap();
        let mut k = Ktap::new(Vec::new()).unwrap();
        let ok = run(&mut k, &cfg, Path::new("/nonexistent")).unwrap();
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(!ok);
        assert!(out.contains(&format!("1..{}\n", RUN.len())), "{out}");
        assert!(
            out.contains("not ok 1 config # neither zonecopy.nvme="),
            "{out}"
        );
        assert!(out.contains("ok 9 fallback_sanity # SKIP"), "{out}");
        assert_eq!(
            out.lines()
                .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
                .count(),
            RUN.len()
        );
        assert_eq!(TESTS.len(), RUN.len());
        for ((a, _), (b, _)) in TESTS.iter().zip(RUN) {
            assert_eq!(a, b);
        }
    }
}
