//! The `xcopy` suite: SCSI third-party copy (SPC-4 EXTENDED COPY LID1 and
//! LID4, SBC-4 POPULATE TOKEN / WRITE USING TOKEN, RECEIVE COPY RESULTS,
//! COPY OPERATION ABORT) through SG_IO, checked from the standard, with
//! every destination verified byte for byte against the LBA-stamped source
//! and, through the backend's control socket (`zonecopy.control=`), by
//! host-side CRC32C and by the offload counters (the destination's
//! `copied_bytes` grows by exactly the bytes copied while `read_bytes` /
//! `written_bytes` of every LU involved stay put).
//!
//! KTAP: test 1 `config`, then one subtest per area (see [`areas`]). A copy
//! test is followed by `<name>.host`, its host-side half, which is a SKIP
//! naming the reason when there is no control socket.

pub mod cdb;
mod copies;
mod ctx;
mod discovery;
mod errors;
mod faults;
pub mod parse;
mod results;
pub mod sense;
mod tokens;
use self::{copies::*, discovery::*, errors::*, results::*, tokens::*};

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
};

use self::{
    cdb::{in_sa, out_sa, CopyList, CscdId, Segment, CSCD_LEN, LID1_HEADER, LID4_HEADER},
    parse::{Designator, OperatingParameters, Tpc},
    sense::{hex, key, SenseData},
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    blockio::{self, AlignedBuf},
    cmdline::{Config, LunKind, LunSpec},
    control::{self, DevStats},
    ktap::{ensure, fail, Ktap, Outcome, Step, Verdict},
    runner::{Context, Done, Runner},
    sgio, stamp,
    stamp::BLOCK_SIZE,
    sysfs,
};

const BS4K: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// Byte offset of each LU's stamped source area (in its conventional space).
const SRC_OFF: u64 = MIB;
/// Stamped 4 KiB blocks in each source area.
const SRC_BLOCKS: u64 = 64;
/// Destination slots start here, one slot per test.
const DST_OFF: u64 = 2 * MIB;
/// Bytes per destination slot.
const SLOT: u64 = 128 * 1024;
/// SG_IO timeout for copy commands.
const TIMEOUT_MS: u32 = 60_000;

/// One LU under test.
struct Dev {
    n: u64,
    name: String,
    spec: LunSpec,
    file: File,
    pdt: u8,
    designator: Option<Designator>,
    gen: u64,
    /// Next free destination slot.
    slot: u64,
}

impl Dev {
    fn bs(&self) -> u64 {
        self.spec.block_size
    }

    /// Bytes of conventional (randomly writable) space from the start.
    fn conv_bytes(&self) -> u64 {
        match self.spec.zones {
            Some(z) => (z.conventional * z.zone_size).min(self.spec.size),
            None => self.spec.size,
        }
    }

    /// Start byte of the `k`-th sequential zone, if full-sized.
    fn seq_zone(&self, k: u64) -> Option<u64> {
        let z = self.spec.zones?;
        let start = (z.conventional + k) * z.zone_size;
        (start + z.zone_size <= self.spec.size).then_some(start)
    }
}

/// A destination span and what must be there afterwards.
struct Expect {
    dev: usize,
    /// First byte of the 4 KiB-aligned region checked.
    region: u64,
    /// The region's expected content.
    data: Vec<u8>,
    /// Stamps: (offset of the first copied byte in the region, source
    /// block number, generation, 4 KiB blocks) when the copied span is
    /// 4 KiB-aligned and carries stamps.
    stamps: Option<(usize, u64, u64, u64)>,
    /// Bytes the offload writes into this device (copied_bytes delta).
    copied: u64,
}

type Test = (&'static str, fn(&mut Ctx) -> Step, bool);

/// Shared state of the suite.
struct Ctx {
    devs: Vec<Dev>,
    /// Indices of the host-managed LUs (first two are "A" 4K and "B").
    hm: Vec<usize>,
    disk: Option<usize>,
    tpc: Option<Tpc>,
    op: Option<OperatingParameters>,
    ctl: Option<control::Client>,
    ctl_why: String,
    done: Done,
    diags: Vec<String>,
    /// The host-side verdict of the copy test just run.
    host: Option<Verdict>,
    next_list: u32,
    /// (list id, segments, bytes, LU it was sent to) of a completed LID1 /
    /// LID4 list.
    lid1_ok: Option<(u32, u16, u64, usize)>,
    lid4_ok: Option<(u32, u16, u64, usize)>,
    /// Count zero-token writes as host writes or offload (see t_zero_token).
    zero_write: bool,
    /// (list id, segments processed, bytes done, sense) of failed lists.
    lid1_failed: Option<(u32, u16, u64, SenseData)>,
    lid1_failed_single: Option<(u32, SenseData)>,
    lid4_failed: Option<(u32, u16, u64, SenseData)>,
    /// Source areas written and verified.
    sources: bool,
    /// Stamped blocks at the start of the second sequential zone of A.
    seq_source: Option<u64>,
}

/// Areas, in order: each a KTAP subtest.
fn areas() -> [(&'static str, Vec<Test>); 9] {
    [
        ("discovery", DISCOVERY.to_vec()),
        ("data", DATA.to_vec()),
        ("lid1", copies::<false>()),
        ("lid4", copies::<true>()),
        ("tokens", TOKENS.to_vec()),
        ("zone_errors", ZONE_ERRORS.to_vec()),
        ("bad_lists", BAD_LISTS.to_vec()),
        ("copy_results", COPY_RESULTS.to_vec()),
        ("faults", faults::FAULTS.to_vec()),
    ]
}
const DISCOVERY: &[Test] = &[
    ("luns", t_luns, false),
    ("inquiry", t_inquiry, false),
    ("vpd_pages", t_vpd_pages, false),
    ("vpd_83", t_vpd83, false),
    ("vpd_8f", t_vpd8f, false),
    ("operating_parameters", t_opparams, false),
    ("limits_consistent", t_limits, false),
    ("supported_opcodes", t_rsoc, false),
];

const DATA: &[Test] = &[
    ("control", t_control, false),
    ("reset_seq_zones", t_reset, false),
    ("sources", t_sources, true),
    ("seq_source", t_seq_source, false),
];

/// The copies of EXTENDED COPY(LID1) and (LID4) alike; LID1 then names
/// a CSCD descriptor by FFFFh as well.
fn copies<const LID4: bool>() -> Vec<Test> {
    let both: [Test; 11] = [
        ("conv_to_conv", |c| copy_same_lu(c, LID4, false), true),
        ("conv_to_seq_at_wp", |c| copy_to_seq(c, LID4, false), true),
        ("cross_to_seq_at_wp", |c| copy_to_seq(c, LID4, true), true),
        ("seq_to_conv", |c| copy_from_seq(c, LID4), true),
        ("cross_4k_to_512", |c| copy_cross(c, LID4, false), true),
        ("cross_4k_to_512_dc", |c| copy_cross(c, LID4, true), true),
        ("cross_512_to_4k", |c| copy_cross_back(c, LID4), true),
        ("to_disk_lu", |c| copy_to_disk(c, LID4), true),
        ("multi_segment", |c| copy_multi(c, LID4), true),
        (
            "byte_offsets_0a",
            |c| copy_offsets(c, LID4, Off::Exact),
            true,
        ),
        (
            "byte_offsets_0a_inexact",
            |c| copy_offsets(c, LID4, Off::Inexact),
            true,
        ),
    ];
    let mut v = both.to_vec();
    if !LID4 {
        v.push(("cscd_id_ffff", |c| copy_same_lu(c, false, true), true));
    }
    v
}

const TOKENS: &[Test] = &[
    ("same_lu", |c| token_copy(c, false), true),
    ("other_lu", |c| token_copy(c, true), true),
    ("invalidated_by_write", t_token_invalidated, true),
    ("zero_token", t_zero_token, true),
];

const ZONE_ERRORS: &[Test] = &[
    ("lid1_not_at_wp", |c| not_at_wp(c, false, false), true),
    (
        "lid1_second_segment_fails",
        |c| not_at_wp(c, false, true),
        true,
    ),
    (
        "lid4_second_segment_fails",
        |c| not_at_wp(c, true, true),
        true,
    ),
];

const BAD_LISTS: &[Test] = &[
    ("list_truncated", |c| bad(c, Bad::Truncated), true),
    ("unsupported_cscd_type", |c| bad(c, Bad::CscdType), true),
    (
        "unsupported_segment_type",
        |c| bad(c, Bad::SegmentType),
        true,
    ),
    ("too_many_cscds", |c| bad(c, Bad::TooManyCscds), true),
    ("too_many_segments", |c| bad(c, Bad::TooManySegments), true),
    ("inline_data_too_long", |c| bad(c, Bad::Inline), true),
    ("unknown_lu", |c| bad(c, Bad::UnknownLu), true),
    ("cscd_index_out_of_range", |c| bad(c, Bad::CscdIndex), true),
    ("block_length_mismatch", |c| bad(c, Bad::BlockLength), true),
    ("beyond_capacity", |c| bad(c, Bad::BeyondCapacity), true),
    (
        "lid4_unsupported_segment_type",
        |c| bad(c, Bad::Lid4SegmentType),
        true,
    ),
    (
        "no_list_id_but_nonzero",
        |c| bad(c, Bad::NoListIdNonzero),
        true,
    ),
    ("list_id_reused_after_completion", t_list_id_reuse, true),
    ("list_id_in_use", t_list_id_in_use, false),
];

const COPY_RESULTS: &[Test] = &[
    ("status_lid1_completed", t_status_lid1_ok, false),
    ("status_lid1_failed", t_status_lid1_failed, false),
    ("failed_segment_details", t_failure_details, false),
    ("status_lid4_completed", t_status_lid4_ok, false),
    ("status_lid4_failed", t_status_lid4_failed, false),
    ("status_unknown_list", t_status_unknown, false),
    ("abort_unknown_list", t_abort_unknown, false),
];

// ------------------------------------------------------------------ runner

impl Context for Ctx {
    fn before_test(&mut self) {
        self.host = None;
    }

    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, _area: &str, name: &str, verdict: &Verdict) {
        self.done.record(name, *verdict == Verdict::Pass);
    }
}

/// One area as a KTAP subtest; a copy test is followed by its host half.
fn run_area<W: Write>(
    r: &Runner<'_, W>,
    c: &mut Ctx,
    name: &str,
    tests: &[Test],
) -> io::Result<()> {
    let n: usize = tests.iter().map(|t| if t.2 { 2 } else { 1 }).sum();
    r.subtest(name, n, || {
        for &(tname, f, host) in tests {
            let v = r.test(c, name, tname, f)?;
            if host {
                let hv = match (v, c.host.take()) {
                    (_, Some(h)) => h,
                    (Verdict::Pass, None) => Verdict::fail("suite bug: no host verdict"),
                    (Verdict::Skip(why), None) => Verdict::Skip(why),
                    (Verdict::Fail(_), None) => Verdict::skip(format!("needs {tname}")),
                };
                r.result(&format!("{tname}.host"), &hv.into())?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Run the xcopy suite. Returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    if cfg.luns.is_empty() {
        return crate::ktap::no_luns(k);
    }
    let k = Runner::new(k);
    let areas = areas();
    k.plan(areas.len() + 1)?;
    let gen = crate::stamp::run_generation();
    let luns: Vec<u64> = cfg.luns.keys().copied().collect();
    let (disks, errors) = sysfs::wait_for_luns(sys_root, &luns, crate::smoke::DISCOVERY_TIMEOUT);
    let mut c = Ctx {
        devs: Vec::new(),
        hm: Vec::new(),
        disk: None,
        tpc: None,
        op: None,
        ctl: cfg.control.map(control::Client::new),
        ctl_why: if cfg.control.is_some() {
            String::new()
        } else {
            "no zonecopy.control= on the kernel command line: host checksums and offload counters not checked".into()
        },
        done: Done::default(),
        diags: Vec::new(),
        host: None,
        next_list: (gen as u32) & 0x00ff_ff00,
        lid1_ok: None,
        lid4_ok: None,
        zero_write: false,
        lid1_failed: None,
        lid1_failed_single: None,
        lid4_failed: None,
        sources: false,
        seq_source: None,
    };
    let mut problems = Vec::new();
    for e in &errors {
        k.diag(&format!("sysfs: {e}"))?;
    }
    for (&n, spec) in &cfg.luns {
        match sysfs::pick_lun(&disks, n) {
            Ok(d) => match blockio::open_direct(&d.dev_path()) {
                Ok(file) => {
                    k.diag(&format!("lun{n}: {d}"))?;
                    let i = c.devs.len();
                    match spec.kind {
                        LunKind::HostManaged => c.hm.push(i),
                        LunKind::HostAware => {}
                        LunKind::Disk => {
                            if c.disk.is_none() {
                                c.disk = Some(i);
                            }
                        }
                    }
                    c.devs.push(Dev {
                        n,
                        name: format!("lun{n}"),
                        spec: *spec,
                        file,
                        pdt: 0,
                        designator: None,
                        gen: gen.wrapping_add(n),
                        slot: 0,
                    });
                }
                Err(e) => problems.push(format!("lun{n}: open {}: {e}", d.dev_path().display())),
            },
            Err(e) => problems.push(format!("lun{n}: {e}")),
        }
    }
    // A as the 4 KiB-block LU if there is one: copies go 4K -> 512.
    c.hm.sort_by_key(|&i| std::cmp::Reverse(c.devs[i].bs()));
    if problems.is_empty() {
        k.result("config", &Outcome::Pass)?;
    } else {
        k.result("config", &Outcome::Fail(problems.join("; ")))?;
    }
    k.diag(&format!(
        "generation {gen:#x}, control {}",
        cfg.control.map_or("none".to_string(), |a| a.to_string())
    ))?;
    for d in &c.devs {
        k.diag(&format!(
            "{} = LUN {} {} bs {}",
            d.name,
            d.n,
            d.spec.kind,
            d.bs()
        ))?;
    }
    for (name, tests) in &areas {
        run_area(&k, &mut c, name, tests)?;
    }
    Ok(!k.failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_host_halves() {
        let lid1 = copies::<false>();
        let n: usize = lid1.iter().map(|t| if t.2 { 2 } else { 1 }).sum();
        assert_eq!(n, 2 * lid1.len());
        assert_eq!(lid1.len(), copies::<true>().len() + 1);
        for (_, tests) in areas() {
            crate::runner::assert_unique(tests.iter().map(|t| t.0));
        }
    }

    #[test]
    fn without_devices_everything_skips_or_fails_cleanly() {
        // Drive the areas with no devices: nothing panics, every test
        // prints one line (two for copy tests).
        let mut c = Ctx {
            devs: Vec::new(),
            hm: Vec::new(),
            disk: None,
            tpc: None,
            op: None,
            ctl: None,
            ctl_why: "no control".into(),
            done: Done::default(),
            diags: Vec::new(),
            host: None,
            next_list: 0,
            lid1_ok: None,
            lid4_ok: None,
            zero_write: false,
            lid1_failed: None,
            lid1_failed_single: None,
            lid4_failed: None,
            sources: false,
            seq_source: None,
        };
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(areas().len() as u32).unwrap();
        let r = Runner::new(&mut k);
        for (name, tests) in &areas() {
            run_area(&r, &mut c, name, tests).unwrap();
        }
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(!out.contains("panicked"), "{out}");
        assert!(!out.contains("suite bug"), "{out}");
        assert!(
            out.contains("ok 1 conv_to_conv # SKIP needs data.sources"),
            "{out}"
        );
        assert!(
            out.contains("ok 2 conv_to_conv.host # SKIP needs data.sources"),
            "{out}"
        );
    }
}
