//! Attaching the controller: PCI probe or fabrics connect, controller, namespaces, discovery.

use super::*;

/// Over PCIe nothing connects: the nvme-pci driver probes the function
/// (`pci_probe`), and the fabrics-only tests report SKIP with that reason.
pub(super) fn connect_tests(c: &Ctx<'_>) -> Vec<Test> {
    let pcie = c.cfg.nvme.as_ref().is_some_and(|t| t.pcie);
    let first = if pcie {
        test("pci_probe", t_pci_probe)
    } else {
        test("fabrics_connect", t_fabrics_connect)
    };
    vec![
        first,
        test("controller", t_controller),
        test("namespaces", t_namespaces),
        test("discovery", t_discovery),
    ]
}

/// SKIP reason of a test that exists for NVMe over Fabrics only.
pub const FABRICS_ONLY: &str = "fabrics only: over PCIe the nvme-pci driver probes the controller";

/// Whether the target is a PCIe controller.
pub fn is_pcie(c: &Ctx<'_>) -> bool {
    c.cfg.nvme.as_ref().is_some_and(|t| t.pcie)
}

pub(super) fn t_pci_probe(c: &mut Ctx<'_>) -> Step {
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let start = std::time::Instant::now();
    let conn = connect::find_pcie_controller(&c.sys, &t.nqn, CONNECT_TIMEOUT)
        .map_err(|e| Verdict::fail(format!("nvme-pci: {e}")))?;
    c.diag(format!(
        "nvme{} cntlid {} (PCIe) after {:?}",
        conn.instance,
        conn.cntlid,
        start.elapsed()
    ));
    c.conn = Some(conn);
    Ok(())
}

pub(super) fn t_fabrics_connect(c: &mut Ctx<'_>) -> Step {
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let opts = connect::connect_options(&t, &t.nqn, &c.host);
    c.diag(format!("{} <- {opts}", connect::FABRICS_DEV));
    let start = std::time::Instant::now();
    let conn = connect::fabrics_connect(&opts).map_err(|e| {
        Verdict::fail(format!(
            "connect to {}:{} {}: {e} (after {:?})",
            t.traddr,
            t.trsvcid,
            t.nqn,
            start.elapsed()
        ))
    })?;
    c.diag(format!(
        "instance={},cntlid={} after {:?}",
        conn.instance,
        conn.cntlid,
        start.elapsed()
    ));
    c.conn = Some(conn);
    Ok(())
}

pub(super) fn t_controller(c: &mut Ctx<'_>) -> Step {
    let conn = c
        .conn
        .ok_or_else(|| Verdict::skip("needs fabrics_connect or pci_probe"))?;
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let dir = connect::ctrl_dir(&c.sys, conn.instance);
    let a = |n: &str| connect::attr(&dir.join(n)).unwrap_or_else(|e| format!("<{e}>"));
    let (state, transport, subsysnqn, address, cntlid) = (
        a("state"),
        a("transport"),
        a("subsysnqn"),
        a("address"),
        a("cntlid"),
    );
    c.diag(format!(
        "nvme{}: state {state} transport {transport} cntlid {cntlid} address {address} \
         model {:?} serial {:?} firmware {:?}",
        conn.instance,
        a("model"),
        a("serial"),
        a("firmware_rev")
    ));
    ensure(state == "live", || {
        format!("state is {state:?}, expected live")
    })?;
    let want = if t.pcie { "pcie" } else { "tcp" };
    ensure(transport == want, || {
        format!("transport is {transport:?}, expected {want}")
    })?;
    ensure(subsysnqn == t.nqn, || {
        format!("subsysnqn is {subsysnqn:?}, expected {:?}", t.nqn)
    })?;
    ensure(cntlid == conn.cntlid.to_string(), || {
        format!(
            "sysfs cntlid {cntlid} differs from the connect answer {}",
            conn.cntlid
        )
    })?;
    // The fabrics address and host NQN exist for a connected controller
    // only; a PCIe controller's address is its PCI function.
    if !t.pcie {
        let want_addr = format!("traddr={},trsvcid={}", t.traddr, t.trsvcid);
        ensure(address.starts_with(&want_addr), || {
            format!("address is {address:?}, expected it to start with {want_addr:?}")
        })?;
        let hostnqn = a("hostnqn");
        ensure(hostnqn == c.host.hostnqn, || {
            format!("hostnqn is {hostnqn:?}, expected {:?}", c.host.hostnqn)
        })?;
    }
    let path = c.dev_root.join(format!("nvme{}", conn.instance));
    let f = File::options()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(fail(&format!("open {}", path.display())))?;
    c.ctrl = Some(f);
    Ok(())
}

pub(super) fn t_namespaces(c: &mut Ctx<'_>) -> Step {
    let conn = c
        .conn
        .ok_or_else(|| Verdict::skip("needs fabrics_connect or pci_probe"))?;
    let want: Vec<u32> = c.ns.keys().copied().collect();
    let (found, took) =
        connect::wait_for_namespaces(&c.sys, &c.dev_root, conn.instance, &want, CONNECT_TIMEOUT);
    c.diag(format!(
        "after {:.1} s: {}",
        took.as_secs_f64(),
        if found.is_empty() {
            "no namespaces".to_string()
        } else {
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    let mut missing = Vec::new();
    for (nsid, n) in c.ns.iter_mut() {
        let Some(d) = found.iter().find(|d| d.nsid == *nsid) else {
            missing.push(format!("ns{nsid}"));
            continue;
        };
        n.dev = Some(d.clone());
        match crate::blockio::open_direct(&d.dev_path()) {
            Ok(f) => n.file = Some(f),
            Err(e) => missing.push(format!("ns{nsid} ({}: {e})", d.dev_path().display())),
        }
    }
    let extra: Vec<u32> = found
        .iter()
        .map(|d| d.nsid)
        .filter(|id| !c.ns.contains_key(id))
        .collect();
    ensure(missing.is_empty(), || {
        format!(
            "not usable within {:?}: {}",
            CONNECT_TIMEOUT,
            missing.join(", ")
        )
    })?;
    ensure(extra.is_empty(), || {
        format!("namespaces not configured: {extra:?}")
    })
}

/// Connect to the discovery subsystem, read the whole discovery log and
/// find the configured subsystem in it, then disconnect.
pub(super) fn t_discovery(c: &mut Ctx<'_>) -> Step {
    if is_pcie(c) {
        return Err(Verdict::skip(FABRICS_ONLY));
    }
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip("no target"))?;
    let opts = connect::connect_options(&t, connect::DISCOVERY_NQN, &c.host);
    let conn =
        connect::fabrics_connect(&opts).map_err(fail("connect to the discovery subsystem"))?;
    c.diag(format!(
        "discovery controller nvme{} cntlid {}",
        conn.instance, conn.cntlid
    ));
    let res = read_discovery(c, conn.instance, &t);
    let del = connect::delete_controller(&c.sys, conn.instance, DISCONNECT_TIMEOUT);
    res?;
    del.map_err(fail("disconnect the discovery controller"))?;
    Ok(())
}

pub(super) fn read_discovery(
    c: &mut Ctx<'_>,
    instance: u32,
    t: &crate::cmdline::NvmeTarget,
) -> Step {
    let path = c.dev_root.join(format!("nvme{instance}"));
    // The node may lag the connect answer by a moment.
    let start = std::time::Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let f = File::options()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(fail(&format!("open {}", path.display())))?;
    let mut hdr = vec![0u8; connect::DISC_RECORD];
    let d = passthru::admin(
        &f,
        &passthru::get_log_page(0, 0x70, connect::DISC_RECORD as u32, 0),
        passthru::Data::In(&mut hdr),
    )
    .map_err(fail("Get Log Page 70h"))?;
    d.ok("Get Log Page 70h (header)").map_err(Verdict::Fail)?;
    let (genctr, numrec) = connect::parse_disc_header(&hdr).map_err(Verdict::Fail)?;
    c.diag(format!("discovery log: GENCTR {genctr} NUMREC {numrec}"));
    ensure((1..=64).contains(&numrec), || {
        format!("NUMREC {numrec}, expected 1..=64")
    })?;
    let len = connect::DISC_RECORD * (1 + numrec as usize);
    let mut all = vec![0u8; len];
    passthru::admin(
        &f,
        &passthru::get_log_page(0, 0x70, len as u32, 0),
        passthru::Data::In(&mut all),
    )
    .map_err(fail("Get Log Page 70h"))?
    .ok("Get Log Page 70h")
    .map_err(Verdict::Fail)?;
    let mut entries = Vec::new();
    for e in all[connect::DISC_RECORD..].chunks_exact(connect::DISC_RECORD) {
        let e = connect::parse_disc_entry(e).map_err(Verdict::Fail)?;
        c.diag(format!("entry: {e}"));
        entries.push(e);
    }
    let port = t.trsvcid.to_string();
    ensure(
        entries.iter().any(|e| {
            e.subnqn == t.nqn
                && e.trtype == 3
                && e.adrfam == 1
                && e.subtype == 2
                && e.trsvcid == port
                && e.traddr == t.traddr
        }),
        || {
            format!(
                "no entry for {} (TCP, IPv4, NVM subsystem, {}:{port})",
                t.nqn, t.traddr
            )
        },
    )
}
