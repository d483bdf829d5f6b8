//! The `diff-nvme` suite: differential conformance of our NVMe ZNS and
//! Copy against QEMU's own NVMe controller in the same guest. Ours is
//! reached over NVMe/TCP (the kernel's nvme-tcp, as the `nvme` suite
//! does), QEMU's over PCIe (`zonecopy.peer-nvme=`: a zoned namespace of
//! the same geometry and limits as our ZNS one, a plain one like our NVM
//! one). Every command goes to both through passthrough; status, CQE
//! Dword 0 where defined, returned data and the resulting zone state and
//! data are compared field by field (`compare`): a difference neither
//! masked by name nor in the peer-deviation table fails the test.
//!
//! KTAP: `config`, `connect`, `identify`, `report_zones`, `zone_send`,
//! `io`, `limits`, `copy`, `summary` (the one `# diff summary ...`
//! line), `disconnect`.

pub mod compare;
mod copyseq;
pub mod exec;
mod ops;
mod seq;

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
    time::Duration,
};

use self::exec::{Pair, Side};
use crate::{
    cmdline::{Config, NsKind, PeerNvme},
    ktap::{ensure, Ktap, Step, Verdict},
    nvme::connect::{self, Connected, HostId},
    runner::{Context, Runner},
};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The peer's name in the summary line.
pub const PEER: &str = "qemu-nvme";

struct Run<'a> {
    cfg: &'a Config,
    sys: &'a Path,
    conn: Option<Connected>,
    pair: Option<Pair>,
    /// Diagnostics of the test being run.
    diags: Vec<String>,
}

impl Context for Run<'_> {
    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, _area: &str, _name: &str, _verdict: &Verdict) {}
}

fn peer_of(cfg: &Config) -> Result<(PeerNvme, u32, u32), Verdict> {
    let p = cfg
        .peer_nvme
        .clone()
        .ok_or_else(|| Verdict::fail("no zonecopy.peer-nvme= on the kernel command line"))?;
    cfg.nvme
        .as_ref()
        .ok_or_else(|| Verdict::fail("no zonecopy.nvme= on the kernel command line"))?;
    let find = |k: NsKind| {
        cfg.namespaces
            .iter()
            .find(|(_, n)| n.kind == k)
            .map(|(&id, n)| (id, *n))
            .ok_or_else(|| Verdict::fail(format!("no {k} namespace configured")))
    };
    let (zid, z) = find(NsKind::Zns)?;
    let (nid, n) = find(NsKind::Nvm)?;
    let zs = z.zones.ok_or_else(|| Verdict::fail("zns without zones"))?;
    // The same geometry on both sides, or nothing compares.
    ensure(
        (z.block_size, z.size, zs.zone_size, zs.capacity) == (p.bs, p.size, p.zone, p.cap)
            && (n.block_size, n.size) == (p.bs, p.nvm_size),
        || format!("peer geometry {p:?} differs from ours: ns{zid} {z:?}, ns{nid} {n:?}"),
    )?;
    Ok((p, zid, nid))
}

fn t_config(r: &mut Run<'_>, diags: &mut Vec<String>) -> Step {
    let (p, zid, nid) = peer_of(r.cfg)?;
    diags.push(format!(
        "peer serial {} bs {} zns {} zone {} cap {} max-open {} max-active {} nvm {} \
         mssrl {} mcl {} msrc {}; ours ns{zid} zns, ns{nid} nvm",
        p.serial,
        p.bs,
        p.size,
        p.zone,
        p.cap,
        p.max_open,
        p.max_active,
        p.nvm_size,
        p.mssrl,
        p.mcl,
        p.msrc
    ));
    Ok(())
}

/// The PCIe controller whose serial is `serial`.
fn find_peer(sys: &Path, serial: &str) -> Result<u32, Verdict> {
    let start = std::time::Instant::now();
    loop {
        let dir = sys.join("class/nvme");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(n) = name
                .strip_prefix("nvme")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let a = |k: &str| connect::attr(&e.path().join(k)).unwrap_or_default();
            if a("serial") == serial && a("transport") == "pcie" {
                return Ok(n);
            }
        }
        if start.elapsed() > TIMEOUT {
            return Err(Verdict::fail(format!(
                "no PCIe NVMe controller with serial {serial} in {} (is nvme-pci loaded?)",
                dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn open_side(
    sys: &Path,
    name: &'static str,
    instance: u32,
    zid: u32,
    nid: u32,
) -> Result<(Side, String), Verdict> {
    let (found, took) =
        connect::wait_for_namespaces(sys, Path::new("/dev"), instance, &[zid, nid], TIMEOUT);
    let dev = |id: u32| {
        found
            .iter()
            .find(|d| d.nsid == id)
            .map(|d| d.dev_path())
            .ok_or_else(|| Verdict::fail(format!("{name}: nvme{instance} has no NSID {id}")))
    };
    let (zp, np) = (dev(zid)?, dev(nid)?);
    let open = |p: &Path| {
        File::options()
            .read(true)
            .write(true)
            .open(p)
            .map_err(|e| Verdict::fail(format!("open {}: {e}", p.display())))
    };
    let side = Side {
        name,
        zns: open(&zp)?,
        nvm: open(&np)?,
        zns_nsid: zid,
        nvm_nsid: nid,
    };
    Ok((
        side,
        format!(
            "{name}: nvme{instance} zns {} nvm {} after {took:?}",
            zp.display(),
            np.display()
        ),
    ))
}

fn t_connect(r: &mut Run<'_>, diags: &mut Vec<String>) -> Step {
    let (p, zid, nid) = peer_of(r.cfg)?;
    let t = r
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let host = HostId::generate();
    let opts = connect::connect_options(&t, &t.nqn, &host);
    let conn = connect::fabrics_connect(&opts)
        .map_err(|e| Verdict::fail(format!("connect to {}:{}: {e}", t.traddr, t.trsvcid)))?;
    r.conn = Some(conn);
    let (ours, d) = open_side(r.sys, "ours", conn.instance, zid, nid)?;
    diags.push(d);
    let peer_instance = find_peer(r.sys, &p.serial)?;
    let (peer, d) = open_side(r.sys, "peer", peer_instance, 1, 2)?;
    diags.push(d);
    let lbas = |bytes: u64| bytes / p.bs;
    r.pair = Some(Pair {
        ours,
        peer,
        tally: crate::diffcore::Tally::default(),
        fixed: crate::diffcore::FixedSeen::new(compare::OURS_FIXED),
        diags: Vec::new(),
        failures: Vec::new(),
        trace: true,
        zone: lbas(p.zone),
        cap: lbas(p.cap),
        nzones: p.size / p.zone,
        nvm_lbas: lbas(p.nvm_size),
        bs: p.bs,
    });
    Ok(())
}

fn t_summary(r: &mut Run<'_>, diags: &mut Vec<String>) -> Step {
    let p = r
        .pair
        .as_ref()
        .ok_or_else(|| Verdict::skip("needs connect"))?;
    for f in compare::OURS_FIXED {
        diags.push(format!(
            "ours fixed: {} {} ({})",
            f.command, f.field, f.what
        ));
    }
    let tally = p.tally;
    diags.push(tally.summary(PEER));
    ensure(tally.compared > 0, || "nothing was compared".into())?;
    ensure(tally.failed == 0, || {
        format!("{} commands differ unexplained", tally.failed)
    })
}

fn t_disconnect(r: &mut Run<'_>, diags: &mut Vec<String>) -> Step {
    r.pair = None;
    let conn = r
        .conn
        .take()
        .ok_or_else(|| Verdict::skip("needs connect"))?;
    let took = connect::delete_controller(r.sys, conn.instance, TIMEOUT)
        .map_err(|e| Verdict::fail(format!("delete_controller: {e}")))?;
    diags.push(format!("nvme{} gone after {took:?}", conn.instance));
    Ok(())
}

type Seq = fn(&mut Pair) -> Step;

/// A comparison test: the sequence, then every unexplained difference.
fn compared(r: &mut Run<'_>, diags: &mut Vec<String>, f: Seq) -> Step {
    let p = r
        .pair
        .as_mut()
        .ok_or_else(|| Verdict::skip("needs connect"))?;
    let before = p.tally.compared;
    let res = f(p);
    diags.append(&mut p.diags);
    diags.push(format!("{} commands compared", p.tally.compared - before));
    let v = p.verdict();
    diags.append(&mut p.diags);
    res?;
    v
}

/// Run one test, whose body gathers its diagnostics in a list.
fn run_one<W: Write>(
    k: &Runner<'_, W>,
    r: &mut Run<'_>,
    name: &str,
    f: impl FnOnce(&mut Run<'_>, &mut Vec<String>) -> Step,
) -> io::Result<()> {
    k.test(r, "", name, |r| {
        let mut diags = Vec::new();
        let res = f(r, &mut diags);
        r.diags = diags;
        res
    })?;
    Ok(())
}

/// Run the suite. Returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    let mut r = Run {
        cfg,
        sys: sys_root,
        conn: None,
        pair: None,
        diags: Vec::new(),
    };
    let k = &Runner::new(k);
    if peer_of(cfg).is_err() {
        k.plan(1)?;
        run_one(k, &mut r, "config", t_config)?;
        return Ok(!k.failed());
    }
    let seqs: [(&str, Seq); 6] = [
        ("identify", seq::identify),
        ("report_zones", seq::report_zones),
        ("zone_send", seq::zone_send),
        ("io", seq::io),
        ("limits", seq::limits),
        ("copy", copyseq::copy),
    ];
    k.plan(4 + seqs.len())?;
    run_one(k, &mut r, "config", t_config)?;
    run_one(k, &mut r, "connect", t_connect)?;
    for (name, f) in seqs {
        run_one(k, &mut r, name, |r, d| compared(r, d, f))?;
    }
    run_one(k, &mut r, "summary", t_summary)?;
    run_one(k, &mut r, "disconnect", t_disconnect)?;
    Ok(!k.failed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline;

    #[test]
    fn missing_peer_is_a_failed_config() {
        let cfg = cmdline::parse("zonecopy.suite=diff-nvme").unwrap();
        let mut k = Ktap::new(Vec::new()).unwrap();
        assert!(!run(&mut k, &cfg, Path::new("/nonexistent")).unwrap());
        assert_eq!(
            String::from_utf8(k.into_inner()).unwrap(),
            "KTAP version 1\n1..1\nnot ok 1 config # no zonecopy.peer-nvme= on the kernel \
             command line\n"
        );
    }
}
