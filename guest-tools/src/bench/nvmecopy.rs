//! NVMe: connect, the namespace's source, Copy offload against read and write, disconnect.

use super::*;

pub(super) fn t_nvme_connect(c: &mut Ctx<'_>) -> Step {
    let t = c
        .cfg
        .nvme
        .clone()
        .ok_or_else(|| Verdict::skip(c.nvme_why.clone()))?;
    let (nsid, spec) = c
        .cfg
        .namespaces
        .iter()
        .find(|(_, s)| s.kind == NsKind::Nvm && s.size >= NEED_BYTES)
        .map(|(&n, &s)| (n, s))
        .ok_or_else(|| {
            Verdict::skip(format!(
                "no nvm namespace of at least {NEED_BYTES} bytes (runner: --ns kind=nvm,size=192M)"
            ))
        })?;
    let conn = if t.pcie {
        connect::find_pcie_controller(&c.sys, &t.nqn, crate::nvme::CONNECT_TIMEOUT)
            .map_err(fail(&format!("PCIe controller of {}", t.nqn)))?
    } else {
        let host = HostId::generate();
        let opts = connect::connect_options(&t, &t.nqn, &host);
        connect::fabrics_connect(&opts).map_err(fail(&format!(
            "connect {}:{} {}",
            t.traddr, t.trsvcid, t.nqn
        )))?
    };
    c.conn = Some(conn);
    let ctrl_path = Path::new("/dev").join(format!("nvme{}", conn.instance));
    let (ns, file, took) = open_namespace(&c.sys, conn, nsid)?;
    let ctrl = File::options()
        .read(true)
        .write(true)
        .open(&ctrl_path)
        .map_err(fail(&format!("open {}", ctrl_path.display())))?;
    let mut b = vec![0u8; ident::IDENTIFY_LEN];
    passthru::admin(
        &ctrl,
        &passthru::identify(nsid, ident::cns::NAMESPACE, 0),
        passthru::Data::In(&mut b),
    )
    .map_err(fail("Identify Namespace"))?
    .ok("Identify Namespace")
    .map_err(Verdict::Fail)?;
    let id = IdNs::parse(&b).map_err(Verdict::Fail)?;
    c.diag(format!(
        "nvme{} ns{nsid} = {} after {took:?}: bs {} MSSRL {} MCL {} MSRC {} (0's based)",
        conn.instance,
        ns.dev_path().display(),
        id.block_size(),
        id.mssrl,
        id.mcl,
        id.msrc
    ));
    ensure(id.block_size() == spec.block_size, || {
        format!(
            "Identify says {}-byte blocks, configured {}",
            id.block_size(),
            spec.block_size
        )
    })?;
    c.ctrl = Some(ctrl);
    c.nsid = nsid;
    c.id_ns = Some(id);
    c.nvme = Some(Dev {
        name: format!("ns{nsid}"),
        path: ns.dev_path(),
        size: spec.size,
        file,
        bs: spec.block_size,
        gen: run_generation().wrapping_add(u64::from(nsid)),
        source: false,
        offload: None,
        rw: None,
    });
    Ok(())
}

/// Wait for namespace `nsid` of the connected controller and open its
/// block device O_DIRECT; how long it took to appear.
pub(super) fn open_namespace(
    sys: &Path,
    conn: Connected,
    nsid: u32,
) -> Result<(connect::NsDev, File, Duration), Verdict> {
    let (found, took) = connect::wait_for_namespaces(
        sys,
        Path::new("/dev"),
        conn.instance,
        &[nsid],
        crate::nvme::CONNECT_TIMEOUT,
    );
    let ns = found
        .into_iter()
        .find(|n| n.nsid == nsid)
        .ok_or_else(|| Verdict::fail(format!("ns{nsid} did not appear within {took:?}")))?;
    let file = blockio::open_direct(&ns.dev_path())
        .map_err(fail(&format!("open {}", ns.dev_path().display())))?;
    Ok((ns, file, took))
}

/// Copy (19h), descriptor format 0, of the source to `DST_OFFLOAD`.
pub(super) fn t_nvme_offload(c: &mut Ctx<'_>) -> Step {
    let nsid = c.nsid;
    let id = c.id_ns.ok_or_else(|| Verdict::skip("needs nvme_connect"))?;
    let d = dev(&mut c.nvme, "needs nvme_connect")?;
    if !d.source {
        return Err(Verdict::skip("needs nvme_source"));
    }
    let bs = d.bs;
    let cmds = plan::nvme_copies(
        0,
        DST_OFFLOAD / bs,
        COPY_BYTES / bs,
        u64::from(id.mssrl),
        u64::from(id.mcl),
        u64::from(id.msrc) + 1,
    )
    .map_err(Verdict::Fail)?;
    let mut encoded = Vec::new();
    for cmd in &cmds {
        let ranges: Vec<ncopy::Range> = cmd
            .ranges
            .iter()
            .map(|&(slba, nlb)| ncopy::Range {
                snsid: 0,
                slba,
                nlb,
            })
            .collect();
        let data = ncopy::encode(0, &ranges).map_err(Verdict::Fail)?;
        let sqe = ncopy::copy_cmd(nsid, cmd.sdlba, ranges.len(), 0).map_err(Verdict::Fail)?;
        encoded.push((sqe, data));
    }
    let name = d.name.clone();
    let m = offload_run(c, true, encoded.len(), |d, i| {
        let (sqe, data) = &encoded[i];
        passthru::io(&d.file, sqe, passthru::Data::Out(data))
            .map_err(fail("Copy passthrough"))?
            .ok(&format!("Copy {} of {}", i + 1, encoded.len()))
            .map(|_| ())
            .map_err(Verdict::Fail)
    })?;
    let took = m.took;
    let ranges: usize = cmds.iter().map(|c| c.ranges.len()).sum();
    c.diag(format!(
        "{name}: Copy of {COPY_BYTES} bytes: {} commands, {ranges} ranges, {} s ({} MiB/s), \
         counters {}{}",
        m.commands,
        plan::secs(took),
        plan::mib_per_s(COPY_BYTES, took),
        counters(&m),
        m.fabric.map_or(String::new(), |(dt, t)| format!(
            ", fabric data +{dt} total +{t}"
        ))
    ));
    only_copied(&name, &m)?;
    if let Some((_, total)) = m.fabric {
        ensure(total.saturating_mul(100) <= COPY_BYTES, || {
            format!("the offloaded copy moved {total} fabric bytes, over 1% of {COPY_BYTES}")
        })?;
    }
    Ok(())
}

pub(super) fn t_nvme_rw(c: &mut Ctx<'_>) -> Step {
    rw_test(c, true)?;
    summary(c, true);
    Ok(())
}

pub(super) fn t_nvme_disconnect(c: &mut Ctx<'_>) -> Step {
    let conn = c.conn.ok_or_else(|| Verdict::skip("not connected"))?;
    if c.cfg.nvme.as_ref().is_some_and(|t| t.pcie) {
        return Err(Verdict::skip(crate::nvme::FABRICS_ONLY));
    }
    c.nvme = None;
    c.ctrl = None;
    let took = connect::delete_controller(&c.sys, conn.instance, crate::nvme::DISCONNECT_TIMEOUT)
        .map_err(fail("delete_controller"))?;
    c.diag(format!("nvme{} gone after {took:?}", conn.instance));
    Ok(())
}
