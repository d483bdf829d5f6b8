//! Finding QEMU's reference scsi-hds, and the user network's throughput.

use super::*;

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
