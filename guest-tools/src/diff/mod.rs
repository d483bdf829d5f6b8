//! The `diff` suite: differential conformance. The same command sequence
//! goes through SG_IO to our device and to another implementation of the
//! same standard in the same guest, and the answers are compared field by
//! field ([`compare`]): status, every sense byte by name (INFORMATION,
//! SENSE KEY SPECIFIC), returned data (zone descriptors, VPD pages, copy
//! results) and the resulting zone state and data. A conformance suite
//! written by the same hands as the device only proves self-consistency;
//! the kernel's own emulators are independent readings of the standards.
//!
//! Peers:
//! - scsi_debug (ZBC), loaded by this suite with our LUN's geometry (from
//!   the `zonecopy.lun<N>=` contract and our VPD B6h): once host-managed,
//!   once host aware;
//! - LIO (EXTENDED COPY LID1 segment 02h with E4h CSCD descriptors,
//!   RECEIVE COPY RESULTS, VPD 8Fh): two fileio LUs in /tmp behind
//!   tcm_loop, set up through configfs. Debian kernels only.
//!
//! Every difference is masked by name, a listed peer deviation, or a
//! failure ([`tables`]). KTAP: `config`, then one subtest per peer run
//! with one result per command group, and one `# diff summary` line per
//! peer.

pub mod compare;
pub mod fields;
pub mod lio;
pub mod peer;
pub mod tables;
pub mod zbc;

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
    time::Duration,
};

use self::{
    compare::Comparer,
    fields::Dir,
    zbc::{Geo, Pair},
};
use crate::{
    blockio,
    cmdline::{Config, LunKind, LunSpec},
    ktap::{Ktap, Outcome},
    runner::Runner,
    sysfs,
    xcopy::cdb as xcdb,
    zbc::scsi,
};

/// Send one command to our device and to the peer (the CDB and data per
/// side: copy parameter lists name each side's own LUs) and compare the
/// answers decoded by `decode`. Returns both answers, `None` if a side
/// could not be asked (counted as a disagreement).
pub fn both(
    cmp: &mut Comparer,
    label: &str,
    ours: (&File, &[u8], &Dir),
    peer: (&File, &[u8], &Dir),
    decode: fn(&fields::Response) -> compare::Fields,
) -> Option<(fields::Response, fields::Response)> {
    let o = fields::send(ours.0, ours.1, ours.2);
    let p = fields::send(peer.0, peer.1, peer.2);
    match (o, p) {
        (Ok(o), Ok(p)) => {
            cmp.exchange(label, &decode(&o), &decode(&p));
            Some((o, p))
        }
        (Err(e), _) => {
            cmp.broken(label, &format!("ours: {e}"));
            None
        }
        (_, Err(e)) => {
            cmp.broken(label, &format!("peer: {e}"));
            None
        }
    }
}

/// How long to wait for our LUNs.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// One of our LUNs, opened.
struct Ours {
    n: u64,
    spec: LunSpec,
    file: File,
}

fn ours(cfg: &Config, sys_root: &Path) -> (Vec<Ours>, Vec<String>) {
    let want: Vec<u64> = cfg.luns.keys().copied().collect();
    let (disks, _) = sysfs::wait_for_luns(sys_root, &want, DISCOVERY_TIMEOUT);
    let mut v = Vec::new();
    let mut problems = Vec::new();
    for (&n, spec) in &cfg.luns {
        match sysfs::pick_lun(&disks, n) {
            Ok(d) => match blockio::open_direct(&d.dev_path()) {
                Ok(file) => v.push(Ours {
                    n,
                    spec: *spec,
                    file,
                }),
                Err(e) => problems.push(format!("lun{n}: open {}: {e}", d.dev_path().display())),
            },
            Err(e) => problems.push(format!("lun{n}: {e}")),
        }
    }
    (v, problems)
}

/// Our LUN's maximum open zones from its VPD B6h (`None`: no limit).
fn our_max_open(f: &File) -> Result<Option<u32>, String> {
    let r = fields::send(f, &xcdb::inquiry(Some(0xb6), 64), &Dir::In(64))?;
    if r.status != 0 {
        return Err(format!("VPD B6h: status {:#x}", r.status));
    }
    let b6 = scsi::parse_b6(&r.data)?;
    Ok((b6.max_open_swr != u32::MAX && b6.max_open_swr != 0).then_some(b6.max_open_swr))
}

fn print<W: Write>(k: &Runner<'_, W>, cmp: &mut Comparer) -> io::Result<()> {
    for d in cmp.take_diags() {
        k.diag(&d)?;
    }
    Ok(())
}

/// One scsi_debug run (host-managed or host aware) as a subtest.
fn scsi_debug_run<W: Write>(
    k: &Runner<'_, W>,
    cmp: &mut Comparer,
    name: &str,
    tag: &'static str,
    lun: Option<&Ours>,
) -> io::Result<()> {
    let Some(lun) = lun else {
        return k
            .result(name, &Outcome::Skip("no such LUN configured".into()))
            .map(|_| ());
    };
    let prep = || -> Result<(peer::ScsiDebug, File, Geo), String> {
        let z = lun.spec.zones.ok_or("not zoned")?;
        let host_aware = lun.spec.kind == LunKind::HostAware;
        let max_open = if host_aware {
            None
        } else {
            our_max_open(&lun.file)?
        };
        let sd = peer::ScsiDebug::load(peer::scsi_debug_params(&lun.spec, max_open)?)?;
        let f = sd.open()?;
        let bs = lun.spec.block_size;
        let g = Geo {
            bs,
            blocks: lun.spec.size / bs,
            zone: z.zone_size / bs,
            cap: z.capacity / bs,
            conv: z.conventional,
            max_open,
            host_aware,
        };
        Ok((sd, f, g))
    };
    let (sd, peer_file, g) = match prep() {
        Ok(x) => x,
        Err(e) => {
            return k
                .result(name, &Outcome::Fail(format!("scsi_debug set-up: {e}")))
                .map(|_| ())
        }
    };
    k.subtest(name, zbc::GROUPS.len(), || {
        k.diag(&format!(
            "lun{} vs scsi_debug {} ({}): {g:?}",
            lun.n,
            sd.disk.name,
            sd.params.join(" ")
        ))?;
        groups(k, cmp, tag, (&lun.file, &peer_file), &g)
    })?;
    drop(peer_file);
    drop(sd);
    Ok(())
}

/// The ZBC groups of one scsi_debug run, one result each.
fn groups<W: Write>(
    k: &Runner<'_, W>,
    cmp: &mut Comparer,
    tag: &'static str,
    (ours, peer): (&File, &File),
    g: &Geo,
) -> io::Result<()> {
    for (gname, f) in zbc::GROUPS {
        let mut p = Pair {
            ours,
            peer,
            cmp,
            tag,
        };
        let before = p.cmp.tally.compared;
        f(&mut p, g);
        let ran = cmp.tally.compared - before;
        print(k, cmp)?;
        let outcome = match cmp.end_group() {
            _ if ran == 0 => Outcome::Skip("not applicable to this LUN".into()),
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(e),
        };
        k.diag(&format!("{gname}: {ran} exchanges"))?;
        k.result(gname, &outcome)?;
    }
    Ok(())
}

fn lio_run<W: Write>(k: &Runner<'_, W>, cmp: &mut Comparer, disks: &[&Ours]) -> io::Result<()> {
    let name = "lio";
    let [a, b] = disks else {
        return k
            .result(name, &Outcome::Skip("needs two disk LUNs".into()))
            .map(|_| ());
    };
    let bs = a.spec.block_size;
    let prep = || -> Result<(peer::Lio, File, File), String> {
        let l = peer::Lio::setup(2, a.spec.size, bs)?;
        let open = |i: usize| {
            blockio::open_direct(&l.disks[i].dev_path()).map_err(|e| format!("open LIO {i}: {e}"))
        };
        let (x, y) = (open(0)?, open(1)?);
        Ok((l, x, y))
    };
    let (lio, la, lb) = match prep() {
        Ok(x) => x,
        Err(e) => {
            return k
                .result(name, &Outcome::Fail(format!("LIO set-up: {e}")))
                .map(|_| ())
        }
    };
    let cscds = |x: &File, y: &File| -> Result<[xcdb::CscdId; 2], String> {
        Ok([lio::cscd_of(x, bs as u32)?, lio::cscd_of(y, bs as u32)?])
    };
    let sides = cscds(&a.file, &b.file).and_then(|o| Ok((o, cscds(&la, &lb)?)));
    let (co, cp) = match sides {
        Ok(x) => x,
        Err(e) => {
            return k
                .result(name, &Outcome::Fail(format!("designators: {e}")))
                .map(|_| ())
        }
    };
    let ours = lio::Side {
        a: &a.file,
        b: &b.file,
        cscd: co,
    };
    let theirs = lio::Side {
        a: &la,
        b: &lb,
        cscd: cp,
    };
    k.subtest(name, 2, || {
        k.diag(&format!(
            "lun{} lun{} vs LIO {} {}",
            a.n, b.n, lio.disks[0], lio.disks[1]
        ))?;
        let r = lio::copies(cmp, &ours, &theirs, bs);
        print(k, cmp)?;
        let outcome = match (r, cmp.end_group()) {
            (Err(e), _) => Outcome::Fail(e),
            (_, Err(e)) => Outcome::Fail(e),
            _ => Outcome::Pass,
        };
        k.result("extended_copy", &outcome)?;
        lio::results(cmp, &ours, &theirs);
        print(k, cmp)?;
        let outcome = cmp
            .end_group()
            .map_or_else(Outcome::Fail, |()| Outcome::Pass);
        k.result("receive_copy_results", &outcome)
    })?;
    drop((la, lb));
    drop(lio);
    Ok(())
}

/// Run the suite.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    if cfg.luns.is_empty() {
        return crate::ktap::no_luns(k);
    }
    let k = &Runner::new(k);
    k.plan(4)?;
    let (luns, problems) = ours(cfg, sys_root);
    let find = |kind: LunKind| luns.iter().find(|l| l.spec.kind == kind);
    let hm = find(LunKind::HostManaged);
    let ha = find(LunKind::HostAware);
    let disks: Vec<&Ours> = luns
        .iter()
        .filter(|l| l.spec.kind == LunKind::Disk)
        .take(2)
        .collect();
    let config = if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(problems.join("; "))
    };
    k.result("config", &config)?;
    let mut sd = Comparer::new(
        "scsi_debug",
        tables::MASKS,
        tables::DEVIATIONS,
        tables::FIXED,
    );
    scsi_debug_run(k, &mut sd, "scsi_debug_host_managed", "hm", hm)?;
    scsi_debug_run(k, &mut sd, "scsi_debug_host_aware", "ha", ha)?;
    k.diag(&sd.summary())?;
    let mut lc = Comparer::new("lio", tables::MASKS, tables::DEVIATIONS, tables::FIXED);
    lio_run(k, &mut lc, &disks)?;
    k.diag(&lc.summary())?;
    Ok(!k.failed())
}
