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

mod copies;
mod ctx;
pub mod f2fs;
mod faults;
pub mod kmsg;
pub mod path;
pub mod personality;
pub mod probe;
mod setup;
pub mod stacks;
pub mod verify;
use self::copies::*;
pub use self::{ctx::*, setup::*};

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
    /// As a test step: `Ok` for a pass.
    fn step(self) -> Step {
        match self {
            Self::Pass => Ok(()),
            f => Err(f),
        }
    }

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

type Test = (&'static str, fn(&mut Suite<'_>) -> Step);

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
    ("config", |s| t_config(s).step()),
    ("devices", |s| t_devices(s).step()),
    ("control", |s| t_control(s).step()),
    ("probe", |s| t_probe(s).step()),
    ("host_behavior", t_host_behavior),
    ("personality_limits", |s| personality::t_limits(s).step()),
    ("personality_formats", personality::t_formats),
    ("personality_command_limits", personality::t_command_limits),
    ("fallback_sanity", |s| t_fallback_sanity(s).step()),
    ("scsi_fallback", t_scsi_fallback),
    ("scsi_zone_at_wp", t_scsi_zone_at_wp),
    ("forced_fallback", t_forced_fallback),
    ("single_range", t_single_range),
    ("cross_namespace", t_cross_namespace),
    ("unaligned", t_unaligned),
    ("zns_at_wp", t_zns_at_wp),
    ("fault_media_error", |s| faults::t_media_error(s).step()),
    ("fault_delay_timeout", |s| faults::t_delay_timeout(s).step()),
    ("fault_power_cut", |s| faults::t_power_cut(s).step()),
    ("split_hw", |s| t_split_hw(s).step()),
    ("dm_linear", |s| stacks::t_dm_linear(s).step()),
    ("dm_crypt", |s| stacks::t_dm_crypt(s).step()),
    ("dm_cross_device", |s| stacks::t_dm_cross_device(s).step()),
    ("f2fs_gc", f2fs::t_f2fs_gc),
    ("split_lowered", |s| t_split_lowered(s).step()),
];

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
            let (verdict, hit) = test(s).err().unwrap_or(Finding::Pass).split();
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
