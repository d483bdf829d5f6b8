//! fio on SCSI, NVMe and QEMU's disks, and the user network's throughput.

use super::*;

/// fio on our SCSI disk (after its copies verified: fio overwrites it).
pub(super) fn t_scsi_fio(c: &mut Ctx<'_>) -> Step {
    let d = c
        .scsi
        .as_ref()
        .ok_or_else(|| Verdict::skip(c.scsi_why.clone()))?;
    let (r, took) = run_fio(&d.path, d.size)?;
    let line = fio_line("scsi", &d.name, &r, took);
    c.diag(line);
    c.fio_scsi = Some(r);
    Ok(())
}

/// Wait for the reference scsi-hd `product` to appear.
pub(super) fn find_scsi_hd(sys: &Path, product: &str) -> Result<sysfs::Disk, String> {
    let start = Instant::now();
    loop {
        let (disks, errors) = sysfs::scsi_disks(sys).map_err(|e| format!("sysfs: {e}"))?;
        if let Some(d) = disks.iter().find(|d| d.model == product) {
            if d.dev_path().exists() {
                return Ok(d.clone());
            }
        }
        if start.elapsed() >= crate::smoke::DISCOVERY_TIMEOUT {
            let seen: Vec<String> = disks.iter().map(ToString::to_string).collect();
            let errs: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(format!(
                "no disk with model {product:?} after {:?} (disks: {}; {})",
                start.elapsed(),
                seen.join("; "),
                errs.join("; ")
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// fio on QEMU's scsi-hd (`cache=none`, or `cache=writeback` with `wb`),
/// then ours / scsi-hd for each job.
pub(super) fn t_scsihd_fio(c: &mut Ctx<'_>, wb: bool) -> Step {
    let spec = c.cfg.scsi_hd.ok_or_else(|| {
        Verdict::skip(
            "no zonecopy.scsihd= (the runner attaches one for a bench run with a disk LUN)",
        )
    })?;
    let (product, kind) = if wb {
        (SCSI_HD_WB_PRODUCT, "scsihd-wb")
    } else {
        (SCSI_HD_PRODUCT, "scsihd")
    };
    let d = find_scsi_hd(&c.sys, product).map_err(Verdict::Fail)?;
    ensure(
        d.sectors * 512 == spec.size && d.logical_block_size == spec.block_size,
        || {
            format!(
                "{}: {} bytes of {}-byte blocks, configured {} bytes of {}",
                d.name,
                d.sectors * 512,
                d.logical_block_size,
                spec.size,
                spec.block_size
            )
        },
    )?;
    let (r, took) = run_fio(&d.dev_path(), spec.size)?;
    c.diag(format!("reference: {d}"));
    c.diag(fio_line(kind, &d.name, &r, took));
    if let Some(ours) = &c.fio_scsi {
        let line = ratio_line(&format!("scsi-vs-{kind}"), &ours.ratios(&r));
        c.diag(line);
    }
    Ok(())
}

/// Raw TCP throughput of user networking, each way.
pub(super) fn t_usernet(c: &mut Ctx<'_>) -> Step {
    let addr = c
        .cfg
        .sink
        .ok_or_else(|| Verdict::skip("no zonecopy.sink= (the runner gives one to a bench run)"))?;
    let sent = net::send(addr, NET_BYTES).map_err(Verdict::Fail)?;
    let recv = net::receive(addr, NET_BYTES).map_err(Verdict::Fail)?;
    let mibps = |d: Duration| NET_BYTES as f64 / f64::from(1u32 << 20) / d.as_secs_f64();
    c.usernet = Some((mibps(sent), mibps(recv)));
    let line = plan::bench_line(
        "usernet",
        &[
            ("bytes", NET_BYTES.to_string()),
            ("send_MiBps", plan::mib_per_s(NET_BYTES, sent)),
            ("recv_MiBps", plan::mib_per_s(NET_BYTES, recv)),
            ("send_s", plan::secs(sent)),
            ("recv_s", plan::secs(recv)),
        ],
    );
    c.diag(line);
    Ok(())
}

/// fio on the NVMe namespace, against our SCSI disk and (NVMe/TCP)
/// against raw user networking.
pub(super) fn t_nvme_fio(c: &mut Ctx<'_>) -> Step {
    let d = c
        .nvme
        .as_ref()
        .ok_or_else(|| Verdict::skip(c.nvme_why.clone()))?;
    let (r, took) = run_fio(&d.path, d.size)?;
    let mut lines = vec![fio_line("nvme", &d.name, &r, took)];
    if let Some(scsi) = &c.fio_scsi {
        lines.push(ratio_line("nvme-vs-scsi", &r.ratios(scsi)));
    }
    // The network is NVMe/TCP's only: over PCIe there is none to compare.
    let tcp = c.cfg.nvme.as_ref().is_some_and(|t| !t.pcie);
    if let Some((send, recv)) = c.usernet.filter(|_| tcp) {
        let (rd, wr) = r.seq_mib_per_s();
        lines.push(plan::bench_line(
            "nvme-vs-usernet",
            &[
                ("seqread_MiBps", format!("{rd:.1}")),
                ("usernet_recv_MiBps", format!("{recv:.1}")),
                ("seqread_of_usernet", plan::ratio(rd, recv)),
                ("seqwrite_MiBps", format!("{wr:.1}")),
                ("usernet_send_MiBps", format!("{send:.1}")),
                ("seqwrite_of_usernet", plan::ratio(wr, send)),
            ],
        ));
    }
    for l in lines {
        c.diag(l);
    }
    c.fio_nvme = Some(r);
    Ok(())
}
