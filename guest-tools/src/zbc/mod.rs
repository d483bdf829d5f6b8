//! The `zbc` suite: conformance of the zoned SCSI logical units to ZBC-2
//! and SBC-4, checked against an independent model ([`model`]) of their
//! zones, through SG_IO (every zone condition transition, ALL and ZONE
//! COUNT, the write pointer rules, sense data byte for byte, REPORT ZONES
//! with every reporting option, open and active limits, READ ONLY and
//! OFFLINE zones set through the control socket) and through the kernel's
//! zone ioctls on a separate zone range, with host tools (blkzone,
//! sg_rep_zones, sg_zone, sg_reset_wp, fio in zoned mode) as cross-checks
//! and LBA-stamped data read back and compared with the host's CRC32C.
//!
//! Every step drives the model with what it sends the device, expects the
//! completion the model predicts (GOOD, or CHECK CONDITION with the exact
//! fixed-format sense bytes), then reads every zone with REPORT ZONES and
//! compares it with the model.
//!
//! KTAP: test 1 `config`, then one subtest per area ([`AREAS`]). Tests
//! set up their own zone state (most start with a RESET WRITE POINTER
//! ALL), so one failure does not cascade.
//!
//! Roles of the LUNs (from what the host configured and the device
//! reports): `main` the first host-managed LUN (preferably one with open
//! limits and gap zones), `restricted` a host-managed LUN with URSWRZ 0
//! (`restricted_gap` one with gap zones), `counted` a host-managed LUN without gap zones whose RSOC shows ZONE
//! COUNT, `aware` a host aware LUN. A test whose LUN is missing SKIPs
//! naming it.

mod ctx;
mod discover;
mod ktests;
pub mod model;
pub mod scsi;
mod sgtests;
pub mod tools;
pub use self::{ctx::*, discover::*};

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, Write},
    path::Path,
    time::{Duration, Instant},
};

use self::{
    model::{Action, Layout, Model, Violation},
    scsi::{hex, VpdB6},
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    blockio,
    cmdline::{Config, LunSpec},
    control,
    ktap::{ensure, fail, Ktap, Outcome, Step, Verdict},
    runner::{Context, Diags, Done, Runner},
    sgio::{self, Completion, Data},
    stamp::{self, BLOCK_SIZE},
    sysfs::{self, Disk},
    xcopy::{cdb as xcdb, parse as xparse},
};

const BS4K: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;
/// The most data one command moves (below every queue's max_hw_sectors).
pub const MAX_XFER: u64 = 64 * 1024;
/// SG_IO timeout.
const TIMEOUT_MS: u32 = 30_000;
/// How long to wait for SCSI scanning.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// One operation on a LUN, as sent through SG_IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// WRITE(16) of `n` blocks at an LBA.
    Write(u64, u64),
    /// READ(16) of `n` blocks at an LBA.
    Read(u64, u64),
    /// ZBC OUT: action, ZONE ID, ZONE COUNT, ALL.
    Zone(Action, u64, u16, bool),
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(l, n) => write!(f, "WRITE(16) lba {l} +{n}"),
            Self::Read(l, n) => write!(f, "READ(16) lba {l} +{n}"),
            Self::Zone(a, id, c, all) => {
                write!(f, "{}", a.name())?;
                if *all {
                    write!(f, " ALL")?;
                    if *id != 0 {
                        write!(f, " (zone id {id})")?;
                    }
                    Ok(())
                } else if *c > 1 {
                    write!(f, " {id} count {c}")
                } else {
                    write!(f, " {id}")
                }
            }
        }
    }
}

/// One zoned LUN under test.
pub struct Lun {
    /// LUN number.
    pub n: u64,
    /// Its control-socket name (`lun<N>`).
    pub name: String,
    /// What the host configured.
    pub spec: LunSpec,
    /// The kernel's disk.
    pub disk: Disk,
    /// `/dev/sdX`, O_RDWR | O_DIRECT.
    pub file: File,
    /// The zones as they should be.
    pub model: Model,
    /// INQUIRY PERIPHERAL DEVICE TYPE.
    pub pdt: u8,
    /// VPD B6h as read at discovery.
    pub b6: Option<VpdB6>,
    /// Maximum active zones per the control socket (`None`: not known).
    pub ctl_max_active: Option<Option<u32>>,
    /// Maximum open zones per the control socket.
    pub ctl_max_open: Option<Option<u32>>,
    /// RSOC: the ZBC OUT CDB usage data shows ZONE COUNT.
    pub zone_count: Option<bool>,
    /// The kernel drives it as a host-managed zoned disk.
    pub kernel_zoned: bool,
    /// Stamped 4 KiB blocks on the device: block number -> generation.
    pub written: BTreeMap<u64, u64>,
}

impl Lun {
    /// Logical block size.
    pub fn bs(&self) -> u64 {
        self.model.layout.block_size
    }

    /// Start LBA of the `k`-th write pointer zone.
    pub fn wz(&self, k: usize) -> Result<u64, Verdict> {
        let w = self.model.wp_zones();
        w.get(k).map(|&i| self.model.zones[i].start).ok_or_else(|| {
            Verdict::skip(format!(
                "{} has {} write pointer zones, the test needs {}",
                self.name,
                w.len(),
                k + 1
            ))
        })
    }

    /// Writable blocks of a write pointer zone.
    pub fn cap(&self) -> u64 {
        self.model.layout.cap_blocks
    }

    /// Logical blocks per stamped 4 KiB block (0 if blocks are larger).
    fn per4k(&self) -> u64 {
        BS4K / self.bs()
    }
}

type Test = (&'static str, fn(&mut Ctx) -> Step);

/// LUN roles (indices into [`Ctx::luns`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Roles {
    /// Host-managed, preferably with open limits and gap zones.
    pub main: Option<usize>,
    /// Host-managed with URSWRZ 0, preferably without gap zones.
    pub restricted: Option<usize>,
    /// Host-managed with URSWRZ 0 and gap zones.
    pub restricted_gap: Option<usize>,
    /// Host-managed without gap zones, ZONE COUNT supported.
    pub counted: Option<usize>,
    /// Host aware.
    pub aware: Option<usize>,
}

/// Shared state of the suite.
pub struct Ctx {
    /// Zoned LUNs found.
    pub luns: Vec<Lun>,
    /// Roles.
    pub roles: Roles,
    /// The control socket.
    pub ctl: Option<control::Client>,
    /// Why there is none.
    pub ctl_why: String,
    gen_next: u64,
    /// Diagnostics for the current test.
    pub diags: Vec<String>,
    /// Stamped blocks written by the current test: (LUN, 4 KiB block).
    fresh: Vec<(usize, u64)>,
    /// The last eviction: (LUN, zone the model would close = the oldest
    /// implicitly open one, zone the device closed), as zone start LBAs.
    pub last_eviction: Option<(usize, u64, u64)>,
    /// Results so far, by `area.test`.
    done: Done,
}

/// Areas, in order.
const AREAS: &[(&str, &[Test])] = &[
    ("device", sgtests::DEVICE),
    ("transitions", sgtests::TRANSITIONS),
    ("zone_count", sgtests::ZONE_COUNT),
    ("violations", sgtests::VIOLATIONS),
    ("limits", sgtests::LIMITS),
    ("report_zones", sgtests::REPORT),
    ("reads", sgtests::READS),
    ("swp", sgtests::SWP),
    ("kernel", ktests::KERNEL),
    ("tools", ktests::TOOLS),
    ("conditions", ktests::CONDITIONS),
    ("data", ktests::DATA),
];

impl Context for Ctx {
    fn before_test(&mut self) {
        self.fresh.clear();
        self.last_eviction = None;
    }

    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, area: &str, name: &str, verdict: &Verdict) {
        self.done
            .record(format!("{area}.{name}"), *verdict == Verdict::Pass);
    }

    /// Steps are many: print them only for a failure, else the count.
    fn diags(&self) -> Diags {
        Diags::Summary
    }
}

/// An area's tests, each ending with a check of the zones it wrote
/// against the model.
fn checked(tests: &[Test]) -> impl ExactSizeIterator<Item = (&str, impl FnOnce(&mut Ctx) -> Step)> {
    tests.iter().map(|&(tname, f)| {
        (tname, move |c: &mut Ctx| {
            f(c)?;
            c.verify_fresh()
        })
    })
}

/// Run the zbc suite. Returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    if cfg.luns.is_empty() {
        return crate::ktap::no_luns(k);
    }
    let k = Runner::new(k);
    k.plan(AREAS.len() + 1)?;
    let gen = crate::stamp::run_generation();
    let mut c = Ctx::new(cfg.control, gen);
    let problems = discover(&mut c, cfg, sys_root);
    for d in std::mem::take(&mut c.diags) {
        k.diag(&d)?;
    }
    let r = c.roles;
    let name = |i: Option<usize>| i.map_or("none".to_string(), |i| c.luns[i].name.clone());
    k.diag(&format!(
        "roles: main {} restricted {} restricted_gap {} counted {} aware {}; control {}",
        name(r.main),
        name(r.restricted),
        name(r.restricted_gap),
        name(r.counted),
        name(r.aware),
        cfg.control.map_or("none".into(), |a| a.to_string())
    ))?;
    if problems.is_empty() && !c.luns.is_empty() {
        k.result("config", &Outcome::Pass)?;
    } else if c.luns.is_empty() && problems.is_empty() {
        k.result("config", &Outcome::Fail("no zoned LUN configured".into()))?;
    } else {
        k.result("config", &Outcome::Fail(problems.join("; ")))?;
    }
    for (name, tests) in AREAS {
        k.area(&mut c, name, checked(tests))?;
    }
    Ok(!k.failed())
}

/// Shorthand for a failure with a message.
pub fn bad(msg: impl Into<String>) -> Verdict {
    Verdict::fail(msg)
}

/// BLKREPORTZONE of every zone, as [`model::KZone`]s, and whether the
/// report carried capacities.
pub fn kernel_zones(l: &Lun) -> Result<(Vec<model::KZone>, bool), Verdict> {
    let want = l.model.kernel_view().len();
    let nr = u32::try_from(want).map_err(|_| bad("too many zones"))?;
    let (flags, zones) = bz::report_all(&l.file, nr).map_err(fail("BLKREPORTZONE"))?;
    Ok((
        zones
            .iter()
            .map(|z| model::KZone {
                start: z.start,
                len: z.len,
                capacity: z.capacity,
                wp: Some(z.wp),
                type_: z.type_,
                cond: z.cond,
                non_seq: z.non_seq != 0,
                reset: z.reset != 0,
            })
            .collect(),
        flags & bz::BLK_ZONE_REP_CAPACITY != 0,
    ))
}

/// The sectors of the kernel zone holding LBA `lba`.
pub fn kernel_range(l: &Lun, lba: u64, zones: u64) -> (u64, u64) {
    let spb = l.bs() / SECTOR;
    (lba * spb, zones * l.model.layout.zone_blocks * spb)
}

/// The kernel zone management ioctl for an action.
pub fn zone_op(a: Action) -> ZoneOp {
    match a {
        Action::Open => ZoneOp::Open,
        Action::Close => ZoneOp::Close,
        Action::Finish => ZoneOp::Finish,
        Action::Reset => ZoneOp::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgio::Sense;

    fn completion(status: u8, sense: &[u8]) -> Completion {
        Completion {
            status,
            host_status: 0,
            driver_status: 0,
            sense: sgio::decode_sense(sense),
            sense_bytes: sense.to_vec(),
            resid: 0,
        }
    }

    #[test]
    fn sense_is_checked_byte_for_byte() {
        let v = Violation::UnalignedWrite;
        let mut s = v.fixed_sense().to_vec();
        s.extend([0u8; 78]);
        assert_eq!(check_sense(&completion(2, &s), v, "w"), Ok(()));
        assert_eq!(
            completion(2, &s).sense,
            Some(Sense {
                key: 5,
                asc: 0x21,
                ascq: 4
            })
        );
        // INFORMATION set, a descriptor format, trailing garbage, GOOD.
        let mut info = s.clone();
        info[0] = 0xf0;
        info[6] = 8;
        assert!(check_sense(&completion(2, &info), v, "w").is_err());
        assert!(check_sense(&completion(2, &[0x72, 5, 0x21, 4, 0, 0, 0, 0]), v, "w").is_err());
        let mut tail = s.clone();
        tail[20] = 1;
        assert!(check_sense(&completion(2, &tail), v, "w").is_err());
        assert!(check_sense(&completion(0, &[]), v, "w").is_err());
        // Field pointers: exact where named, SKSV 0 or C/D set for Any.
        let f = Violation::InvalidField(model::Field::Cdb(2, Some(7)));
        let fs = f.fixed_sense();
        assert_eq!(fs[15..18], [0xcf, 0, 2]);
        assert!(check_sense(&completion(2, &fs), f, "z").is_ok());
        let mut no_bpv = fs;
        no_bpv[15] = 0xc0;
        assert!(check_sense(&completion(2, &no_bpv), f, "z").is_ok());
        let mut wrong_bit = fs;
        wrong_bit[15] = 0xcb;
        assert!(check_sense(&completion(2, &wrong_bit), f, "z").is_err());
        let mut no_sks = fs;
        no_sks[15..18].fill(0);
        assert!(check_sense(&completion(2, &no_sks), f, "z").is_err());
        let any = Violation::InvalidField(model::Field::Any);
        assert!(check_sense(&completion(2, &no_sks), any, "z").is_ok());
        assert!(check_sense(&completion(2, &fs), any, "z").is_ok());
        let mut param = fs;
        param[15] = 0x80; // C/D 0: the parameter list
        assert!(check_sense(&completion(2, &param), any, "z").is_err());
        assert_eq!(check_completion(&completion(0, &[]), &Ok(()), "x"), Ok(()));
        assert!(check_completion(&completion(2, &s), &Ok(()), "x").is_err());
    }

    #[test]
    fn runs_of_blocks() {
        assert_eq!(
            runs(&[1, 2, 3, 7, 8, 10], 64),
            vec![(1, 3), (7, 2), (10, 1)]
        );
        assert_eq!(runs(&[1, 2, 3], 2), vec![(1, 2), (3, 1)]);
        assert!(runs(&[], 4).is_empty());
    }

    #[test]
    fn op_names() {
        assert_eq!(Op::Write(5, 2).to_string(), "WRITE(16) lba 5 +2");
        assert_eq!(
            Op::Zone(Action::Open, 99, 0, true).to_string(),
            "OPEN ZONE ALL (zone id 99)"
        );
        assert_eq!(
            Op::Zone(Action::Reset, 16, 3, false).to_string(),
            "RESET WRITE POINTER 16 count 3"
        );
    }

    #[test]
    fn without_devices_everything_skips() {
        let mut c = Ctx::new(None, 1);
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(AREAS.len() as u32).unwrap();
        let r = Runner::new(&mut k);
        for (name, tests) in AREAS {
            r.area(&mut c, name, checked(tests)).unwrap();
        }
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(!out.contains("panicked"), "{out}");
        assert!(!out.contains("not ok"), "{out}");
        for (_, tests) in AREAS {
            crate::runner::assert_unique(tests.iter().map(|t| t.0));
        }
    }
}
