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

mod ktests;
pub mod model;
pub mod scsi;
mod sgtests;
pub mod tools;

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

impl Ctx {
    /// A new, empty context.
    fn new(ctl: Option<std::net::SocketAddr>, gen: u64) -> Self {
        Self {
            luns: Vec::new(),
            roles: Roles::default(),
            ctl: ctl.map(control::Client::new),
            ctl_why: if ctl.is_some() {
                String::new()
            } else {
                "no zonecopy.control= on the kernel command line".into()
            },
            gen_next: gen,
            diags: Vec::new(),
            fresh: Vec::new(),
            last_eviction: None,
            done: Done::default(),
        }
    }

    /// A diagnostic line for the current test.
    pub fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    /// The LUN in `role`, or a SKIP naming the role.
    pub fn role(&self, r: Option<usize>, what: &str) -> Result<usize, Verdict> {
        r.ok_or_else(|| Verdict::skip(format!("no {what}")))
    }

    /// The control client, or a SKIP saying why there is none.
    pub fn ctl(&mut self) -> Result<&mut control::Client, Verdict> {
        let why = self.ctl_why.clone();
        self.ctl.as_mut().ok_or_else(|| Verdict::skip(why))
    }

    fn next_gen(&mut self) -> u64 {
        self.gen_next = self.gen_next.wrapping_add(1);
        self.gen_next
    }

    /// Send a CDB to LUN `li`; `Err` only if SG_IO itself failed.
    pub fn sg(&mut self, li: usize, cdb: &[u8], data: Data<'_>) -> Result<Completion, Verdict> {
        sgio::command(&self.luns[li].file, cdb, data, TIMEOUT_MS).map_err(fail(&format!(
            "{}: SG_IO {:02x}h",
            self.luns[li].name, cdb[0]
        )))
    }

    /// Send `op` to the device only (no model), with stamped data for a
    /// write of whole 4 KiB blocks (recorded if it succeeds) and a
    /// pattern otherwise; a successful read of whole 4 KiB blocks is
    /// checked against the stamps recorded for them.
    pub fn send(&mut self, li: usize, op: Op) -> Result<(Completion, Result<(), String>), Verdict> {
        let bs = self.luns[li].bs();
        match op {
            Op::Write(lba, n) => {
                let len = usize::try_from(n * bs).map_err(|_| Verdict::fail("write too long"))?;
                let mut buf = vec![0xa5u8; len];
                let byte = lba * bs;
                let stamped = byte % BS4K == 0 && (n * bs) % BS4K == 0;
                let gen = self.next_gen();
                if stamped {
                    stamp::fill_range(&mut buf, byte / BS4K, gen).map_err(fail("stamp"))?;
                }
                let blocks = u32::try_from(n).map_err(|_| Verdict::fail("write too long"))?;
                let c = self.sg(li, &sgio::write16(lba, blocks), Data::ToDevice(&buf))?;
                if c.status == 0 {
                    let first = byte / BS4K;
                    let last = (byte + n * bs).div_ceil(BS4K);
                    let l = &mut self.luns[li];
                    for b in first..last {
                        if stamped {
                            l.written.insert(b, gen);
                            self.fresh.push((li, b));
                        } else {
                            l.written.remove(&b);
                        }
                    }
                }
                Ok((c, Ok(())))
            }
            Op::Read(lba, n) => {
                let len = usize::try_from(n * bs).map_err(|_| Verdict::fail("read too long"))?;
                let mut buf = vec![0u8; len];
                let blocks = u32::try_from(n).map_err(|_| Verdict::fail("read too long"))?;
                let c = self.sg(li, &xcdb::read16(lba, blocks), Data::FromDevice(&mut buf))?;
                let mut check = Ok(());
                if c.status == 0 {
                    check = self.check_stamps(li, lba * bs, &buf);
                }
                Ok((c, check))
            }
            Op::Zone(a, id, count, all) => {
                let c = self.sg(li, &scsi::zbc_out(a, id, count, all), Data::None)?;
                Ok((c, Ok(())))
            }
        }
    }

    /// Check the recorded stamped blocks inside `buf`, read from `byte`.
    fn check_stamps(&self, li: usize, byte: u64, buf: &[u8]) -> Result<(), String> {
        let l = &self.luns[li];
        let first = byte.div_ceil(BS4K);
        let end = (byte + buf.len() as u64) / BS4K;
        for b in first..end {
            let Some(&gen) = l.written.get(&b) else {
                continue;
            };
            let at = usize::try_from(b * BS4K - byte).unwrap_or(usize::MAX);
            let blk = buf
                .get(at..at + BLOCK_SIZE)
                .ok_or_else(|| "read buffer too short".to_string())?;
            stamp::verify(blk, b, gen)
                .map_err(|e| format!("{}: 4 KiB block {b} (byte {}): {e}", l.name, b * BS4K))?;
        }
        Ok(())
    }

    /// Apply `op` to the model and the device, expect the model's
    /// completion, then compare every zone. Returns what the model said.
    pub fn step(&mut self, li: usize, op: Op) -> Result<Result<(), Violation>, Verdict> {
        let want = match op {
            Op::Write(lba, n) => self.luns[li].model.write(lba, n),
            Op::Read(lba, n) => self.luns[li].model.read(lba, n),
            Op::Zone(a, id, c, all) => self.luns[li].model.zone_action(a, id, c, all),
        };
        let evicted = self.luns[li].model.last_eviction.clone();
        let (c, data) = self.send(li, op)?;
        let what = format!("{}: {op}", self.luns[li].name);
        self.diag(format!(
            "{what}: {}",
            match &want {
                Ok(()) => "GOOD".to_string(),
                Err(v) => v.to_string(),
            }
        ));
        check_completion(&c, &want, &what)?;
        data.map_err(|e| Verdict::fail(format!("{what}: data: {e}")))?;
        self.prune(li);
        self.check_zones(li, &what)?;
        if let Some(ev) = evicted {
            let m = &self.luns[li].model;
            let oldest = m.zones[ev.chosen].start;
            let got = m
                .last_eviction
                .as_ref()
                .map_or(oldest, |e| m.zones[e.chosen].start);
            self.last_eviction = Some((li, oldest, got));
            self.diag(format!(
                "{what}: closed implicitly open zone {got} (oldest: {oldest})"
            ));
        }
        Ok(want)
    }

    /// [`Ctx::step`] where the test itself names the outcome: the model
    /// must agree (else the test is wrong), then the device.
    pub fn expect(&mut self, li: usize, op: Op, want: Result<(), Violation>) -> Step {
        let mut m = self.luns[li].model.clone();
        let model = match op {
            Op::Write(lba, n) => m.write(lba, n),
            Op::Read(lba, n) => m.read(lba, n),
            Op::Zone(a, id, c, all) => m.zone_action(a, id, c, all),
        };
        if model != want {
            return Err(Verdict::fail(format!(
                "suite bug: {op}: the model says {model:?}, the test expects {want:?}"
            )));
        }
        self.step(li, op).map(|_| ())
    }

    /// Expect GOOD.
    pub fn ok(&mut self, li: usize, op: Op) -> Step {
        self.expect(li, op, Ok(()))
    }

    /// Expect a violation.
    pub fn err(&mut self, li: usize, op: Op, v: Violation) -> Step {
        self.expect(li, op, Err(v))
    }

    /// Expect the first of `vs` (the model's answer), accepting any of
    /// them from the device: for the cases where two checks apply and
    /// the standard does not order them.
    pub fn err_any(&mut self, li: usize, op: Op, vs: &[Violation]) -> Step {
        let first = *vs.first().ok_or_else(|| bad("suite bug: no violation"))?;
        let mut m = self.luns[li].model.clone();
        let model = match op {
            Op::Write(lba, n) => m.write(lba, n),
            Op::Read(lba, n) => m.read(lba, n),
            Op::Zone(a, id, c, all) => m.zone_action(a, id, c, all),
        };
        if model != Err(first) {
            return Err(bad(format!(
                "suite bug: {op}: the model says {model:?}, the test expects {first}"
            )));
        }
        self.luns[li].model = m;
        let (c, _) = self.send(li, op)?;
        let what = format!("{}: {op}", self.luns[li].name);
        self.diag(format!(
            "{what}: {c} sense [{}], any of {}",
            hex(&c.sense_bytes),
            vs.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let ok = vs.iter().any(|&v| check_sense(&c, v, &what).is_ok());
        if !ok {
            check_sense(&c, first, &what)?;
        }
        self.check_zones(li, &what)
    }

    /// Forget stamped blocks whose zone was reset or went offline.
    pub fn prune(&mut self, li: usize) {
        let l = &mut self.luns[li];
        let bs = l.model.layout.block_size;
        let m = &l.model;
        l.written.retain(|&b, _| {
            let lba = b * BS4K / bs;
            match m.zone_at(lba) {
                Some(z) if z.ztype.has_wp() => match z.cond {
                    model::Cond::Empty | model::Cond::Offline => false,
                    model::Cond::ImpOpen | model::Cond::ExpOpen | model::Cond::Closed => {
                        !z.wp_valid() || lba < z.wp
                    }
                    _ => true,
                },
                Some(_) => true,
                None => false,
            }
        });
    }

    /// REPORT ZONES to LUN `li`: the completion and the bytes transferred.
    pub fn report(
        &mut self,
        li: usize,
        start: u64,
        alloc: u32,
        opt: u8,
        partial: bool,
    ) -> Result<(Completion, Vec<u8>), Verdict> {
        let mut buf = vec![0u8; alloc as usize];
        let c = self.sg(
            li,
            &scsi::report_zones(start, alloc, opt, partial),
            Data::FromDevice(&mut buf),
        )?;
        let got = usize::try_from(i64::from(alloc) - i64::from(c.resid.max(0)))
            .unwrap_or(0)
            .min(buf.len());
        buf.truncate(got);
        Ok((c, buf))
    }

    /// Every zone of LUN `li` as REPORT ZONES gives it (option 00h from
    /// LBA 0), with the header checked against the model.
    pub fn device_zones(&mut self, li: usize, what: &str) -> Result<Vec<model::Zone>, Verdict> {
        let nz = self.luns[li].model.zones.len();
        let alloc = u32::try_from(64 * (nz + 2)).map_err(|_| Verdict::fail("too many zones"))?;
        let (c, buf) = self.report(li, 0, alloc, 0, false)?;
        ensure(c.status == 0, || {
            format!("{what}: REPORT ZONES: {c} sense {}", hex(&c.sense_bytes))
        })?;
        let (h, zones) =
            scsi::parse_report(&buf).map_err(|e| Verdict::fail(format!("{what}: {e}")))?;
        let blocks = self.luns[li].model.layout.blocks;
        ensure(h.max_lba == blocks - 1, || {
            format!(
                "{what}: REPORT ZONES MAXIMUM LBA {}, expected {}",
                h.max_lba,
                blocks - 1
            )
        })?;
        ensure(h.list_len as usize == 64 * zones.len(), || {
            format!(
                "{what}: REPORT ZONES ZONE LIST LENGTH {} for {} descriptors returned",
                h.list_len,
                zones.len()
            )
        })?;
        scsi::check_same(h.same, &zones).map_err(|e| Verdict::fail(format!("{what}: {e}")))?;
        Ok(zones)
    }

    /// Compare every zone of LUN `li` with the model (taking the device's
    /// choice of implicitly open zone to close, which ZBC-2 leaves to it).
    pub fn check_zones(&mut self, li: usize, what: &str) -> Step {
        let zones = self.device_zones(li, what)?;
        self.luns[li].model.adopt_eviction(&zones);
        let diff = self.luns[li].model.diff(&zones);
        ensure(diff.is_empty(), || {
            format!(
                "{what}: the zones differ from the model: {}{}",
                diff.iter().take(4).cloned().collect::<Vec<_>>().join("; "),
                if diff.len() > 4 {
                    format!(" (+{} more)", diff.len() - 4)
                } else {
                    String::new()
                }
            )
        })
    }

    /// RESET WRITE POINTER with ALL through SG_IO: every write pointer
    /// zone that is not READ ONLY or OFFLINE becomes EMPTY.
    pub fn fresh(&mut self, li: usize) -> Step {
        self.ok(li, Op::Zone(Action::Reset, 0, 0, true))
    }

    /// Verify the stamped blocks written by the current test: read back
    /// through SG_IO, and the host's CRC32C of the same ranges.
    fn verify_fresh(&mut self) -> Step {
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.sort_unstable();
        fresh.dedup();
        let mut by_lun: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for (li, b) in fresh {
            if self.luns[li].written.contains_key(&b) {
                by_lun.entry(li).or_default().push(b);
            }
        }
        for (li, blocks) in by_lun {
            self.verify_blocks(li, &blocks)?;
        }
        Ok(())
    }

    /// Read back and host-checksum the recorded stamped `blocks` (sorted
    /// 4 KiB block numbers) of LUN `li`.
    pub fn verify_blocks(&mut self, li: usize, blocks: &[u64]) -> Step {
        // One read never crosses a zone boundary (a boundary violation
        // with URSWRZ 0, or between zone types).
        let bs = self.luns[li].bs();
        let mut all_runs = Vec::new();
        for run in runs(blocks, MAX_XFER / BS4K) {
            let mut start = run.0;
            let end = run.0 + run.1;
            while start < end {
                let zi = self.luns[li].model.zone_index(start * BS4K / bs);
                let mut stop = start + 1;
                while stop < end && self.luns[li].model.zone_index(stop * BS4K / bs) == zi {
                    stop += 1;
                }
                all_runs.push((start, stop - start));
                start = stop;
            }
        }
        for run in all_runs {
            let (b0, nb) = run;
            let per = self.luns[li].per4k();
            if per == 0 {
                return Ok(());
            }
            let (lba, n) = (b0 * per, nb * per);
            let (c, check) = self.send(li, Op::Read(lba, n))?;
            let name = self.luns[li].name.clone();
            ensure(c.status == 0, || {
                format!(
                    "{name}: read back lba {lba} +{n}: {c} sense {}",
                    hex(&c.sense_bytes)
                )
            })?;
            check.map_err(|e| Verdict::fail(format!("read back: {e}")))?;
            if self.ctl.is_some() {
                let mut crc = 0u32;
                let mut blk = vec![0u8; BLOCK_SIZE];
                for b in b0..b0 + nb {
                    let gen = self.luns[li].written.get(&b).copied().unwrap_or(0);
                    stamp::fill(&mut blk, b, gen).map_err(fail("stamp"))?;
                    crc = crc32c::crc32c_append(crc, &blk);
                }
                let got = self
                    .ctl()?
                    .checksum(&name, lba, n)
                    .map_err(|e| Verdict::fail(format!("control checksum: {e}")))?;
                ensure(got.crc == crc, || {
                    format!(
                        "{name}: host CRC32C of lba {lba} +{n} is {:#010x}, the stamped data's is {crc:#010x}",
                        got.crc
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// Runs of consecutive numbers in sorted `v`, at most `max` long: (first,
/// length).
pub fn runs(v: &[u64], max: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &x in v {
        match out.last_mut() {
            Some((s, n)) if *s + *n == x && *n < max => *n += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

/// Check a completion against the model's prediction: GOOD, or CHECK
/// CONDITION with the violation's fixed-format sense data byte for byte
/// (SPC-4 4.5.3; bytes past the 18 must be zero).
pub fn check_completion(c: &Completion, want: &Result<(), Violation>, what: &str) -> Step {
    match want {
        Ok(()) => ensure(c.status == 0 && c.host_status == 0, || {
            format!(
                "{what}: expected GOOD, got {c}, sense {}",
                hex(&c.sense_bytes)
            )
        }),
        Err(v) => check_sense(c, *v, what),
    }
}

/// CHECK CONDITION with exactly `v`'s sense bytes.
pub fn check_sense(c: &Completion, v: Violation, what: &str) -> Step {
    let want = v.fixed_sense();
    let s = &c.sense_bytes;
    let bad = || {
        format!(
            "{what}: got status {:#04x} sense [{}], expected CHECK CONDITION with {v} [{}]",
            c.status,
            hex(&s[..s.len().min(32)]),
            hex(&want)
        )
    };
    ensure(c.status == sgio::CHECK_CONDITION && s.len() >= 18, bad)?;
    ensure(s[..15] == want[..15], bad)?;
    ensure(s[18..].iter().all(|&b| b == 0), bad)?;
    match v {
        Violation::InvalidField(model::Field::Any) => {
            ensure(s[15..18] == [0, 0, 0] || s[15] & 0xc0 == 0xc0, bad)
        }
        // The bit pointer is optional (SPC-4 4.5.2.4.2: BPV 0).
        Violation::InvalidField(model::Field::Cdb(_, Some(_))) => ensure(
            s[15..18] == want[15..18] || (s[15] == 0xc0 && s[16..18] == want[16..18]),
            bad,
        ),
        _ => ensure(s[15..18] == want[15..18], bad),
    }
}

/// Discover the zoned LUNs, read what the device says about itself and
/// build their models. Returns the problems found.
fn discover(c: &mut Ctx, cfg: &Config, sys_root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let want: Vec<u64> = cfg.luns.keys().copied().collect();
    let t = Instant::now();
    let disks = loop {
        let (disks, _) = sysfs::scsi_disks(sys_root).unwrap_or_default();
        let ready = want
            .iter()
            .all(|&l| sysfs::pick_lun(&disks, l).is_ok_and(|d| d.dev_path().exists()));
        if ready || t.elapsed() >= DISCOVERY_TIMEOUT {
            break disks;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let devices = c
        .ctl
        .as_mut()
        .map(|ctl| ctl.request(r#"{"cmd":"devices"}"#));
    if let Some(Err(e)) = &devices {
        problems.push(format!("control devices: {e}"));
    }
    for (&n, spec) in &cfg.luns {
        let Some(zs) = spec.zones else {
            c.diag(format!("lun{n}: {} (not zoned): not tested", spec.kind));
            continue;
        };
        let disk = match sysfs::pick_lun(&disks, n) {
            Ok(d) => d.clone(),
            Err(e) => {
                problems.push(format!("lun{n}: {e}"));
                continue;
            }
        };
        let file = match blockio::open_direct(&disk.dev_path()) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("lun{n}: open {}: {e}", disk.dev_path().display()));
                continue;
            }
        };
        let name = format!("lun{n}");
        let bs = spec.block_size;
        let mut std_inq = [0u8; 36];
        let pdt = match sgio::command(
            &file,
            &xcdb::inquiry(None, 36),
            Data::FromDevice(&mut std_inq),
            TIMEOUT_MS,
        ) {
            Ok(r) if r.status == 0 => std_inq[0] & 0x1f,
            Ok(r) => {
                problems.push(format!("{name}: INQUIRY: {r}"));
                0xff
            }
            Err(e) => {
                problems.push(format!("{name}: INQUIRY: {e}"));
                0xff
            }
        };
        let mut page = [0u8; 64];
        let b6 = match sgio::command(
            &file,
            &xcdb::inquiry(Some(0xb6), 64),
            Data::FromDevice(&mut page),
            TIMEOUT_MS,
        ) {
            Ok(r) if r.status == 0 => match scsi::parse_b6(&page) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    None
                }
            },
            Ok(r) => {
                problems.push(format!("{name}: VPD B6h: {r}"));
                None
            }
            Err(e) => {
                problems.push(format!("{name}: VPD B6h: {e}"));
                None
            }
        };
        let (ctl_open, ctl_active) = match &devices {
            Some(Ok(reply)) => match tools::control_limits(reply, &name) {
                Ok((o, a)) => (Some(o), Some(a)),
                Err(e) => {
                    problems.push(e);
                    (None, None)
                }
            },
            _ => (None, None),
        };
        let host_aware = pdt == 0x00;
        let layout = Layout {
            block_size: bs,
            blocks: spec.size / bs,
            zone_blocks: zs.zone_size / bs,
            cap_blocks: zs.capacity / bs,
            conventional: zs.conventional,
            host_aware,
            urswrz: b6.map_or(true, |v| v.urswrz),
            max_open: if host_aware {
                None
            } else {
                b6.and_then(|v| (v.max_open_swr != u32::MAX).then_some(v.max_open_swr))
            },
            max_active: ctl_active.flatten(),
        };
        let kernel_zoned = disk.zoned == "host-managed" && disk.sectors > 0;
        let zone_count = zone_count_support(&file);
        c.diag(format!(
            "{name}: {disk}; {} pdt {pdt:#x} urswrz {} max_open {:?} max_active {:?} zone_count {:?}",
            spec.kind, layout.urswrz, layout.max_open, layout.max_active, zone_count
        ));
        c.luns.push(Lun {
            n,
            name,
            spec: *spec,
            disk,
            file,
            model: Model::new(layout),
            pdt,
            b6,
            ctl_max_active: ctl_active,
            ctl_max_open: ctl_open,
            zone_count,
            kernel_zoned,
            written: BTreeMap::new(),
        });
    }
    c.roles = pick_roles(&c.luns);
    problems
}

/// Does the ZBC OUT CDB usage data (RSOC, one command) cover ZONE COUNT
/// (bytes 12..14)? `None` if RSOC does not answer.
fn zone_count_support(file: &File) -> Option<bool> {
    let mut b = [0u8; 64];
    let r = sgio::command(
        file,
        &xcdb::rsoc_one(
            scsi::OP_ZBC_OUT,
            u16::from(Action::Open.service_action()),
            64,
        ),
        Data::FromDevice(&mut b),
        TIMEOUT_MS,
    )
    .ok()?;
    if r.status != 0 {
        return None;
    }
    let one = xparse::rsoc_one(&b).ok()?;
    Some(one.support == 0b011 && one.usage.get(12..14) == Some(&[0xff, 0xff]))
}

/// Assign roles: see the module documentation.
pub fn pick_roles(luns: &[Lun]) -> Roles {
    let hm: Vec<usize> = (0..luns.len())
        .filter(|&i| !luns[i].model.layout.host_aware)
        .collect();
    let gaps = |i: usize| {
        let l = &luns[i].model.layout;
        l.cap_blocks < l.zone_blocks
    };
    let main = hm
        .iter()
        .copied()
        .find(|&i| luns[i].model.layout.max_open.is_some() && gaps(i))
        .or_else(|| {
            hm.iter()
                .copied()
                .find(|&i| luns[i].model.layout.max_open.is_some())
        })
        .or_else(|| hm.first().copied());
    let restricted = |gap: bool| {
        hm.iter()
            .copied()
            .find(|&i| !luns[i].model.layout.urswrz && gaps(i) == gap)
    };
    Roles {
        main,
        restricted: restricted(false).or_else(|| restricted(true)),
        restricted_gap: restricted(true),
        counted: hm
            .iter()
            .copied()
            .find(|&i| !gaps(i) && luns[i].zone_count == Some(true)),
        aware: (0..luns.len()).find(|&i| luns[i].model.layout.host_aware),
    }
}

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

/// One area as a KTAP subtest; every test ends checking the zones it
/// wrote against the model.
fn run_area<W: Write>(
    r: &Runner<'_, W>,
    c: &mut Ctx,
    name: &str,
    tests: &[Test],
) -> io::Result<()> {
    let tests = tests.iter().map(|&(tname, f)| {
        (tname, move |c: &mut Ctx| {
            f(c)?;
            c.verify_fresh()
        })
    });
    r.area(c, name, tests)?;
    Ok(())
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
        run_area(&k, &mut c, name, tests)?;
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
    fn no_luns_still_prints_a_plan() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        let ok = run(&mut k, &Config::default(), Path::new("/nonexistent")).unwrap();
        assert!(!ok);
        assert_eq!(
            String::from_utf8(k.into_inner()).unwrap(),
            "KTAP version 1\n1..1\nnot ok 1 config # no zonecopy.lun<N>= on the kernel command line\n"
        );
    }

    #[test]
    fn without_devices_everything_skips() {
        let mut c = Ctx::new(None, 1);
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(AREAS.len() as u32).unwrap();
        let r = Runner::new(&mut k);
        for (name, tests) in AREAS {
            run_area(&r, &mut c, name, tests).unwrap();
        }
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(!out.contains("panicked"), "{out}");
        assert!(!out.contains("not ok"), "{out}");
        // Names are unique within an area.
        for (_, tests) in AREAS {
            let mut names: Vec<&str> = tests.iter().map(|t| t.0).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), tests.len());
        }
    }
}
