//! The `nvme` suite: connect to the backend's NVMe/TCP subsystem with the
//! kernel's own nvme-tcp driver, check what the controller and the kernel
//! report against the configured geometry, run zone conformance and Zone
//! Append on a ZNS namespace, and Copy (19h) through passthrough, every
//! copy verified block by block and against the backend's checksums and
//! counters.
//!
//! KTAP layout: `config`, then subtests `connect`, `identify`, `zns`,
//! `copy`, the test `verify` (Verify, 0Ch, through passthrough), `events` (zones the device takes out of service, the Changed
//! Zone List, the Error Information log, Zone Descriptor Changed notices),
//! `sqflow_on` (the PDUs of 4 KiB reads and writes), `disconnect` (so the
//! suite can run again against the same backend) and `sqflow_off` (a
//! connection of its own with SQ flow control disabled: reads complete on
//! the C2HData SUCCESS flag; it disconnects at its end). A test whose prerequisite did not pass is a SKIP naming
//! it; the failure is reported once, where it happened.

mod attach;
pub mod connect;
pub mod copy;
pub mod events;
pub mod ident;
pub mod passthru;
mod sqflow;
pub mod verify;
pub mod zns;
pub use self::attach::*;

use std::{
    collections::BTreeMap,
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use self::{
    connect::{Connected, HostId, NsDev},
    ident::{IdCtrl, IdNs, IdNsZns},
};
use crate::{
    cmdline::{Config, NsKind, NsSpec},
    control,
    ktap::{Ktap, Verdict},
    runner::{Bugs, Context, Done, Runner},
};

pub use crate::ktap::{ensure, fail, Step};

/// How long the controller and its namespaces may take to appear.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a disconnect may take.
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One configured namespace and what the suite learned about it.
#[derive(Debug)]
pub struct Ns {
    pub nsid: u32,
    pub spec: NsSpec,
    /// Its block device, once found.
    pub dev: Option<NsDev>,
    /// The block device opened O_RDWR|O_DIRECT.
    pub file: Option<File>,
    pub id: Option<IdNs>,
    pub zid: Option<IdNsZns>,
    /// Generation stamped into every block this run writes here.
    pub gen: u64,
}

impl Ns {
    /// The open block device.
    pub fn file(&self) -> Result<&File, Verdict> {
        self.file
            .as_ref()
            .ok_or_else(|| Verdict::skip(format!("ns{} not open", self.nsid)))
    }

    /// Logical blocks per 4 KiB stamped block.
    pub fn lbas_per_stamp(&self) -> u64 {
        (crate::stamp::BLOCK_SIZE as u64 / self.spec.block_size).max(1)
    }

    /// Control-socket device name (`ns<N>`).
    pub fn ctl_name(&self) -> String {
        format!("ns{}", self.nsid)
    }
}

/// State shared by the suite's tests.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub sys: PathBuf,
    pub dev_root: PathBuf,
    pub host: HostId,
    pub conn: Option<Connected>,
    /// `/dev/nvmeN`, opened for admin passthrough.
    pub ctrl: Option<File>,
    pub id_ctrl: Option<IdCtrl>,
    pub ns: BTreeMap<u32, Ns>,
    pub control: Option<control::Client>,
    /// Tests run so far, by `subtest/name`, and whether they passed.
    pub done: Done,
    /// Diagnostics for the current result.
    pub diags: Vec<String>,
    pub zns: zns::State,
    pub copy: copy::State,
    pub events: events::State,
    /// Set by a test whose failure would be the named known kernel bug:
    /// if `zonecopy.xfail=` lists it, the result is XFAIL/XPASS.
    pub known_bug: Option<&'static str>,
    /// Known bugs the running test could hit (if listed and the test
    /// passes: XPASS).
    pub exposes: &'static [&'static str],
}

impl Ctx<'_> {
    /// Add a diagnostic line before the current result.
    pub fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    /// SKIP unless test `name` (`group/test`) ran and passed.
    pub fn needs(&self, name: &str) -> Step {
        match self.done.get(name) {
            Some(true) => Ok(()),
            Some(false) => Err(Verdict::skip(format!("needs {name}"))),
            None => Err(Verdict::skip(format!("{name} did not run"))),
        }
    }

    /// Whether test `name` ran and passed.
    pub fn passed(&self, name: &str) -> bool {
        self.needs(name).is_ok()
    }

    /// The controller device.
    pub fn ctrl(&self) -> Result<&File, Verdict> {
        self.ctrl
            .as_ref()
            .ok_or_else(|| Verdict::skip("controller not connected"))
    }

    /// Namespace `nsid`.
    pub fn ns(&self, nsid: u32) -> Result<&Ns, Verdict> {
        self.ns
            .get(&nsid)
            .ok_or_else(|| Verdict::fail(format!("suite bug: no ns{nsid}")))
    }

    /// The first configured namespace of `kind`.
    pub fn first(&self, kind: NsKind) -> Result<u32, Verdict> {
        self.ns
            .values()
            .find(|n| n.spec.kind == kind)
            .map(|n| n.nsid)
            .ok_or_else(|| Verdict::skip(format!("no {kind} namespace configured")))
    }

    /// The control client, or a SKIP.
    pub fn control(&mut self) -> Result<&mut control::Client, Verdict> {
        self.control
            .as_mut()
            .ok_or_else(|| Verdict::skip("no zonecopy.control= on the kernel command line"))
    }
}

impl Context for Ctx<'_> {
    fn xfail(&self) -> &[String] {
        &self.cfg.xfail
    }

    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, area: &str, name: &str, verdict: &Verdict) {
        self.done
            .record(format!("{area}/{name}"), *verdict == Verdict::Pass);
    }

    fn take_bugs(&mut self) -> Bugs {
        Bugs {
            hit: self.known_bug.take(),
            exposed: std::mem::take(&mut self.exposes),
        }
    }
}

/// A test of a subtest list.
pub type Test = (String, Box<dyn FnOnce(&mut Ctx<'_>) -> Step>);

/// Shorthand to make a [`Test`].
pub fn test(name: impl Into<String>, f: impl FnOnce(&mut Ctx<'_>) -> Step + 'static) -> Test {
    (name.into(), Box::new(f))
}

fn run_generation() -> u64 {
    crate::stamp::run_generation()
}

fn t_config(c: &mut Ctx<'_>) -> Step {
    let t = c
        .cfg
        .nvme
        .as_ref()
        .ok_or_else(|| Verdict::fail("no zonecopy.nvme= on the kernel command line"))?;
    if t.pcie {
        c.diag(format!("target: PCIe controller of {}", t.nqn));
    } else {
        c.diag(format!(
            "target traddr {} trsvcid {} nqn {}",
            t.traddr, t.trsvcid, t.nqn
        ));
    }
    ensure(!c.cfg.namespaces.is_empty(), || {
        "no zonecopy.ns<N>= on the kernel command line".into()
    })?;
    for (id, n) in &c.cfg.namespaces {
        ensure(n.block_size <= crate::stamp::BLOCK_SIZE as u64, || {
            format!("ns{id}: bs={} above the 4096-byte stamp size", n.block_size)
        })?;
    }
    let ns: Vec<String> =
        c.ns.values()
            .map(|n| {
                format!(
                    "ns{} {} bs {} size {}{} generation {:#x}",
                    n.nsid,
                    n.spec.kind,
                    n.spec.block_size,
                    n.spec.size,
                    n.spec.zones.map_or(String::new(), |z| format!(
                        " zone {} cap {}",
                        z.zone_size, z.capacity
                    )),
                    n.gen
                )
            })
            .collect();
    for d in ns {
        c.diag(d);
    }
    match c.cfg.control {
        Some(a) => c.diag(format!("control socket {a}")),
        None => c.diag("no zonecopy.control=: host-side checks SKIP"),
    }
    Ok(())
}

/// Run the nvme suite. Returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    let gen = run_generation();
    let ns = cfg
        .namespaces
        .iter()
        .map(|(&nsid, &spec)| {
            (
                nsid,
                Ns {
                    nsid,
                    spec,
                    dev: None,
                    file: None,
                    id: None,
                    zid: None,
                    gen: gen.wrapping_add(u64::from(nsid)),
                },
            )
        })
        .collect();
    let mut c = Ctx {
        cfg,
        sys: sys_root.to_path_buf(),
        dev_root: PathBuf::from("/dev"),
        host: HostId::generate(),
        conn: None,
        ctrl: None,
        id_ctrl: None,
        ns,
        control: cfg.control.map(control::Client::new),
        done: Done::default(),
        diags: Vec::new(),
        zns: zns::State::default(),
        copy: copy::State::default(),
        events: events::State::default(),
        known_bug: None,
        exposes: &[],
    };
    let k = Runner::new(k);
    if cfg.nvme.is_none() || cfg.namespaces.is_empty() {
        k.plan(1)?;
        k.test(&mut c, "", "config", t_config)?;
        return Ok(!k.failed());
    }
    k.plan(10)?;
    k.test(&mut c, "", "config", t_config)?;
    let tests = connect_tests(&c);
    k.area(&mut c, "connect", tests)?;
    let tests = identify_tests(&c);
    k.area(&mut c, "identify", tests)?;
    k.area(&mut c, "zns", zns::tests())?;
    k.area(&mut c, "copy", copy::tests())?;
    k.test(&mut c, "", "verify", verify::t_verify)?;
    k.area(&mut c, "events", events::tests())?;
    k.test(&mut c, "", "sqflow_on", sqflow::t_sqflow_on)?;
    k.test(&mut c, "", "disconnect", t_disconnect)?;
    k.test(&mut c, "", "sqflow_off", sqflow::t_sqflow_off)?;
    Ok(!k.failed())
}

// ---------------------------------------------------------------- identify

fn identify_tests(c: &Ctx<'_>) -> Vec<Test> {
    let mut v = vec![test("controller", t_id_ctrl)];
    for (&nsid, n) in &c.ns {
        v.push(test(format!("ns{nsid}"), move |c| t_id_ns(c, nsid)));
        if n.spec.kind == NsKind::Zns {
            v.push(test(format!("ns{nsid}_zns"), move |c| t_id_zns(c, nsid)));
        }
        v.push(test(format!("ns{nsid}_sysfs"), move |c| {
            t_ns_sysfs(c, nsid)
        }));
    }
    v
}

/// Identify through passthrough: the 4096 bytes of CNS `cns`.
pub fn identify(c: &Ctx<'_>, nsid: u32, cns: u8, csi: u8) -> Result<Vec<u8>, Verdict> {
    let mut b = vec![0u8; ident::IDENTIFY_LEN];
    let what = format!("Identify CNS {cns:#04x} CSI {csi:#04x} NSID {nsid}");
    passthru::admin(
        c.ctrl()?,
        &passthru::identify(nsid, cns, csi),
        passthru::Data::In(&mut b),
    )
    .map_err(fail(&what))?
    .ok(&what)
    .map_err(Verdict::Fail)?;
    Ok(b)
}

fn t_id_ctrl(c: &mut Ctx<'_>) -> Step {
    c.needs("connect/controller")?;
    let b = identify(c, 0, ident::cns::CONTROLLER, 0)?;
    let id = IdCtrl::parse(&b).map_err(Verdict::Fail)?;
    c.diag(format!(
        "model {:?} serial {:?} version {}.{}.{} cntlid {} mdts {} nn {} oncs {:#06x} \
         (copy {}) ocfs {:#06x}",
        id.model,
        id.serial,
        id.ver >> 16,
        (id.ver >> 8) & 0xFF,
        id.ver & 0xFF,
        id.cntlid,
        id.mdts,
        id.nn,
        id.oncs,
        id.copy_supported(),
        id.ocfs
    ));
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let res = (|| {
        ensure(id.subnqn == t.nqn, || {
            format!("SUBNQN {:?}, expected {:?}", id.subnqn, t.nqn)
        })?;
        if let Some(conn) = c.conn {
            ensure(id.cntlid == conn.cntlid, || {
                format!(
                    "CNTLID {} differs from the Connect answer {}",
                    id.cntlid, conn.cntlid
                )
            })?;
        }
        let max = c.ns.keys().max().copied().unwrap_or(0);
        ensure(id.nn >= max, || {
            format!("NN {} is below the highest configured NSID {max}", id.nn)
        })?;
        // NVM Command Set 1.0: Copy support means descriptor format 0h.
        ensure(!id.copy_supported() || id.format_supported(0), || {
            format!(
                "ONCS advertises Copy but OCFS {:#06x} lacks format 0h",
                id.ocfs
            )
        })?;
        ensure(id.copy_supported() || id.ocfs == 0, || {
            format!("OCFS {:#06x} without Copy in ONCS", id.ocfs)
        })
    })();
    c.id_ctrl = Some(id);
    res
}

fn t_id_ns(c: &mut Ctx<'_>, nsid: u32) -> Step {
    c.needs("connect/controller")?;
    let b = identify(c, nsid, ident::cns::NAMESPACE, 0)?;
    let id = IdNs::parse(&b).map_err(Verdict::Fail)?;
    c.diag(format!(
        "NSZE {} NCAP {} NUSE {} LBAF {} (of {}) LBADS {} MS {} MSSRL {} MCL {} MSRC {}",
        id.nsze,
        id.ncap,
        id.nuse,
        id.lbaf_index,
        u16::from(id.nlbaf) + 1,
        id.lbads,
        id.ms,
        id.mssrl,
        id.mcl,
        id.msrc
    ));
    let spec = c.ns(nsid)?.spec;
    let copy = c.id_ctrl.as_ref().is_some_and(IdCtrl::copy_supported);
    if let Some(n) = c.ns.get_mut(&nsid) {
        n.id = Some(id);
    }
    ensure(id.block_size() == spec.block_size, || {
        format!(
            "LBA format {} has {}-byte blocks (LBADS {}), expected {}",
            id.lbaf_index,
            id.block_size(),
            id.lbads,
            spec.block_size
        )
    })?;
    ensure(id.ms == 0, || {
        format!("{} metadata bytes per block, expected 0", id.ms)
    })?;
    ensure(
        id.nsze.checked_mul(spec.block_size) == Some(spec.size),
        || {
            format!(
                "NSZE {} blocks of {} = {} bytes, expected {}",
                id.nsze,
                spec.block_size,
                id.nsze.saturating_mul(spec.block_size),
                spec.size
            )
        },
    )?;
    ensure(id.ncap <= id.nsze && id.nuse <= id.ncap, || {
        format!(
            "NCAP {} / NUSE {} exceed NSZE {}",
            id.ncap, id.nuse, id.nsze
        )
    })?;
    if copy {
        // NVM Command Set 1.0, Identify Namespace: MCL >= MSSRL, both
        // non-zero when Copy is supported.
        ensure(id.mssrl > 0 && id.mcl >= u32::from(id.mssrl), || {
            format!(
                "copy limits MSSRL {} MCL {}: expected 0 < MSSRL <= MCL",
                id.mssrl, id.mcl
            )
        })?;
    }
    Ok(())
}

fn t_id_zns(c: &mut Ctx<'_>, nsid: u32) -> Step {
    let id = c
        .ns(nsid)?
        .id
        .ok_or_else(|| Verdict::skip(format!("needs ns{nsid}")))?;
    let b = identify(c, nsid, ident::cns::CSI_NAMESPACE, ident::CSI_ZNS)?;
    let z = IdNsZns::parse(&b, id.lbaf_index).map_err(Verdict::Fail)?;
    c.diag(format!(
        "ZOC {:#x} OZCS {:#x} MAR {:#x} MOR {:#x} ZSZE {} ZDES {}",
        z.zoc, z.ozcs, z.mar, z.mor, z.zsze, z.zdes
    ));
    if let Ok(cb) = identify(c, 0, ident::cns::CSI_CONTROLLER, ident::CSI_ZNS) {
        c.diag(format!("ZNS Identify Controller: ZASL {}", cb[0]));
    }
    let spec = c.ns(nsid)?.spec;
    if let Some(n) = c.ns.get_mut(&nsid) {
        n.zid = Some(z);
    }
    let zs = spec
        .zones
        .ok_or_else(|| Verdict::fail("no zone layout configured"))?;
    ensure(
        z.zsze.checked_mul(spec.block_size) == Some(zs.zone_size),
        || {
            format!(
                "ZSZE {} blocks = {} bytes, expected zone={}",
                z.zsze,
                z.zsze.saturating_mul(spec.block_size),
                zs.zone_size
            )
        },
    )?;
    ensure(
        z.mor == u32::MAX || z.mar == u32::MAX || z.mor <= z.mar,
        || format!("MOR {} above MAR {}", z.mor, z.mar),
    )
}

fn t_ns_sysfs(c: &mut Ctx<'_>, nsid: u32) -> Step {
    let n = c.ns(nsid)?;
    let dev = n
        .dev
        .clone()
        .ok_or_else(|| Verdict::skip("needs connect/namespaces"))?;
    let spec = n.spec;
    let zid = n.zid;
    let dir = c.sys.join("block").join(&dev.block);
    let q = dir.join("queue");
    let a = |p: PathBuf| connect::attr(&p).map_err(|e| Verdict::fail(e.to_string()));
    let num = |p: PathBuf| -> Result<u64, Verdict> {
        let s = a(p.clone())?;
        s.parse()
            .map_err(|_| Verdict::fail(format!("{}: {s:?} is not a number", p.display())))
    };
    let zoned = a(q.join("zoned"))?;
    let lbs = num(q.join("logical_block_size"))?;
    let size = num(dir.join("size"))?;
    let chunk = num(q.join("chunk_sectors"))?;
    let nr_zones = num(q.join("nr_zones")).ok();
    let sysfs_nsid = num(dir.join("nsid")).ok();
    let mut d = format!(
        "{}: zoned {zoned} lbs {lbs} size {size} chunk_sectors {chunk} nr_zones {nr_zones:?}",
        dev.block
    );
    for extra in [
        "max_open_zones",
        "max_active_zones",
        "zone_append_max_bytes",
        "copy_max_bytes",
        "copy_max_hw_bytes",
        "max_hw_sectors_kb",
    ] {
        if let Ok(v) = connect::attr(&q.join(extra)) {
            d.push_str(&format!(" {extra} {v}"));
        }
    }
    c.diag(d);
    if let Some(id) = sysfs_nsid {
        ensure(id == u64::from(nsid), || {
            format!("{}/nsid is {id}, expected {nsid}", dev.block)
        })?;
    }
    ensure(lbs == spec.block_size, || {
        format!("logical_block_size {lbs}, expected {}", spec.block_size)
    })?;
    ensure(size.checked_mul(512) == Some(spec.size), || {
        format!("size {size} sectors, expected {} bytes", spec.size)
    })?;
    match spec.kind {
        NsKind::Nvm => ensure(zoned == "none", || {
            format!("queue/zoned {zoned:?}, expected \"none\"")
        }),
        NsKind::Zns => {
            let zs = spec
                .zones
                .ok_or_else(|| Verdict::fail("no zone layout configured"))?;
            ensure(zoned == "host-managed", || {
                format!("queue/zoned {zoned:?}, expected \"host-managed\"")
            })?;
            ensure(chunk * 512 == zs.zone_size, || {
                format!("chunk_sectors {chunk}, expected {}", zs.zone_size / 512)
            })?;
            let want = spec.nr_zones().unwrap_or(0);
            ensure(nr_zones == Some(want), || {
                format!("nr_zones {nr_zones:?}, expected {want}")
            })?;
            if let Some(z) = zid {
                for (attr_name, v) in [("max_open_zones", z.mor), ("max_active_zones", z.mar)] {
                    if let Ok(got) = num(q.join(attr_name)) {
                        let want = IdNsZns::linux_limit(v);
                        ensure(got == want, || {
                            format!("{attr_name} {got}, expected {want} from Identify ({v:#x})")
                        })?;
                    }
                }
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- end

fn t_disconnect(c: &mut Ctx<'_>) -> Step {
    if is_pcie(c) {
        copy::restore_host_behavior(c);
        return Err(Verdict::skip(FABRICS_ONLY));
    }
    let conn = c
        .conn
        .ok_or_else(|| Verdict::skip("needs fabrics_connect"))?;
    copy::restore_host_behavior(c);
    for n in c.ns.values_mut() {
        n.file = None;
    }
    c.ctrl = None;
    let took = connect::delete_controller(&c.sys, conn.instance, DISCONNECT_TIMEOUT)
        .map_err(fail("delete_controller"))?;
    c.diag(format!("nvme{} gone after {took:?}", conn.instance));
    let left: Vec<String> =
        c.ns.values()
            .filter_map(|n| n.dev.as_ref())
            .filter(|d| c.sys.join("block").join(&d.block).exists())
            .map(|d| d.block.clone())
            .collect();
    ensure(left.is_empty(), || {
        format!("block devices still present after disconnect: {left:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline;

    #[test]
    fn missing_config_prints_a_plan() {
        let cfg = cmdline::parse("zonecopy.suite=nvme").unwrap();
        let mut k = Ktap::new(Vec::new()).unwrap();
        assert!(!run(&mut k, &cfg, Path::new("/nonexistent")).unwrap());
        assert_eq!(
            String::from_utf8(k.into_inner()).unwrap(),
            "KTAP version 1\n1..1\nnot ok 1 config # no zonecopy.nvme= on the kernel command line\n"
        );
    }
}
