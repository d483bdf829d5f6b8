//! The interleaved fio test: every device of the guest (our SCSI disk,
//! QEMU's scsi-hd with cache=none and cache=writeback, our NVMe namespace
//! and, over PCIe, QEMU's NVMe controllers) measured in the same rounds
//! ([`fio::round_args`]), then per device `# bench fio-<label>` with each
//! cell's median and range over the rounds, per comparison `# bench
//! A-vs-B` with each job's median of the per-round ratios and their range
//! ([`fio::paired_ratios`], [`stats::Spread::fields`]), and `# bench fio`
//! with the plan and the time it all took.

use std::time::Instant;

use super::{
    fio::{self, Results, Target},
    nvmeref, plan,
    throughput::find_scsi_hd,
    Ctx, SCSI_HD_PRODUCT, SCSI_HD_WB_PRODUCT,
};
use crate::{
    hosttool,
    ktap::{ensure, Step, Verdict},
};

/// The comparisons (numerator, denominator), each printed when both
/// devices were measured.
const PAIRS: [(&str, &str); 5] = [
    ("scsi", "scsihd"),
    ("scsi", "scsihd-wb"),
    ("nvme", "scsi"),
    ("nvme", "qemunvme"),
    ("nvme", "qemunvme-wb"),
];

/// The devices this guest has, in the order of a round's first turn. A
/// reference the runner announced but the guest cannot find fails.
fn targets(c: &Ctx<'_>) -> Result<Vec<(Target, String)>, Verdict> {
    let mut t = Vec::new();
    let mut add = |label: &str, dev: String, path: String, size: u64| {
        t.push((
            Target {
                label: label.into(),
                path,
                size,
            },
            dev,
        ))
    };
    if let Some(d) = &c.scsi {
        add("scsi", d.name.clone(), d.path.display().to_string(), d.size);
    }
    if let Some(spec) = c.cfg.scsi_hd {
        for (label, product) in [
            ("scsihd", SCSI_HD_PRODUCT),
            ("scsihd-wb", SCSI_HD_WB_PRODUCT),
        ] {
            let d = find_scsi_hd(&c.sys, product).map_err(Verdict::Fail)?;
            let bytes = d.sectors * 512;
            ensure(
                bytes == spec.size && d.logical_block_size == spec.block_size,
                || {
                    format!(
                        "{}: {bytes} bytes of {}-byte blocks, configured {} bytes of {}",
                        d.name, d.logical_block_size, spec.size, spec.block_size
                    )
                },
            )?;
            add(
                label,
                d.name.clone(),
                d.dev_path().display().to_string(),
                spec.size,
            );
        }
    }
    if let Some(d) = &c.nvme {
        add("nvme", d.name.clone(), d.path.display().to_string(), d.size);
    }
    if let Some(spec) = c.cfg.nvme_ref {
        for (label, wb) in [("qemunvme", false), ("qemunvme-wb", true)] {
            let path = nvmeref::reference(&c.sys, spec, wb).map_err(Verdict::Fail)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            add(label, name, path.display().to_string(), spec.size);
        }
    }
    Ok(t)
}

/// fio on every device, interleaved, `zonecopy.fio=` rounds (after the
/// copies verified: fio overwrites the devices).
pub(super) fn t_fio(c: &mut Ctx<'_>) -> Step {
    let devs = targets(c)?;
    if devs.is_empty() {
        return Err(Verdict::skip(format!(
            "no device: {}; {}",
            c.scsi_why, c.nvme_why
        )));
    }
    if let Some(why) = hosttool::missing("fio") {
        return Err(Verdict::skip(why));
    }
    let plan = c.cfg.fio.unwrap_or_default();
    let labels: Vec<&str> = devs.iter().map(|(t, _)| t.label.as_str()).collect();
    let targets: Vec<Target> = devs.iter().map(|(t, _)| t.clone()).collect();
    let start = Instant::now();
    // rounds[r][d]: round r of device d.
    let mut rounds: Vec<Vec<Results>> = Vec::new();
    for r in 0..plan.rounds as usize {
        let args = fio::round_args(&targets, r, plan.runtime_s);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let out = hosttool::run("fio", &argv).map_err(Verdict::Fail)?;
        let res = fio::parse_round(&String::from_utf8_lossy(&out.stdout), &labels)
            .map_err(|e| Verdict::fail(format!("round {}: {e}", r + 1)))?;
        for (l, x) in labels.iter().zip(&res) {
            let m: Vec<String> = x
                .metrics()
                .iter()
                .map(|(k, v, _)| format!("{k}={v:.1}"))
                .collect();
            c.diag(format!(
                "fio round {}/{} {l}: {}",
                r + 1,
                plan.rounds,
                m.join(" ")
            ));
        }
        c.diag(format!(
            "fio round {} took {} s",
            r + 1,
            plan::secs(t.elapsed())
        ));
        rounds.push(res);
    }
    let took = start.elapsed();
    // by_dev[d][r]
    let by_dev: Vec<Vec<Results>> = (0..devs.len())
        .map(|d| rounds.iter().map(|r| r[d].clone()).collect())
        .collect();
    let mut lines = vec![plan::bench_line(
        "fio",
        &[
            ("rounds", plan.rounds.to_string()),
            ("runtime_s", plan.runtime_s.to_string()),
            ("devices", labels.join(",")),
            ("fio_s", plan::secs(took)),
        ],
    )];
    for ((t, dev), runs) in devs.iter().zip(&by_dev) {
        let mut f = vec![("dev".to_string(), dev.clone())];
        for (key, s, dec) in fio::cells(runs) {
            f.extend(s.fields(&key, dec));
        }
        lines.push(line(&format!("fio-{}", t.label), &f));
    }
    let of = |l: &str| labels.iter().position(|x| *x == l).map(|i| &by_dev[i]);
    for (a, b) in PAIRS {
        let (Some(x), Some(y)) = (of(a), of(b)) else {
            continue;
        };
        let mut f = Vec::new();
        // Three decimals: the summary decides met / NOT met on the
        // printed range, and 1.196 must not round up to a met 1.20.
        for (key, s) in fio::paired_ratios(x, y) {
            f.extend(s.fields(&key, 3));
        }
        lines.push(line(&format!("{a}-vs-{b}"), &f));
    }
    if let Some(l) = of("nvme").and_then(|n| usernet_line(c, n)) {
        lines.push(l);
    }
    for l in lines {
        c.diag(l);
    }
    Ok(())
}

/// A `# bench` line of owned fields.
fn line(name: &str, f: &[(String, String)]) -> String {
    let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    plan::bench_line(name, &f)
}

/// NVMe/TCP's sequential medians against raw networking (`# bench
/// nvme-vs-usernet`): how much of the gap is the network. None over PCIe
/// (no network to compare) or without the usernet test's numbers.
fn usernet_line(c: &Ctx<'_>, nvme: &[Results]) -> Option<String> {
    let tcp = c.cfg.nvme.as_ref().is_some_and(|t| !t.pcie);
    let (send, recv) = c.usernet.filter(|_| tcp)?;
    let cells = fio::cells(nvme);
    let median = |key: &str| {
        cells
            .iter()
            .find(|(k, _, _)| k == key)
            .map_or(0.0, |(_, s, _)| s.median)
    };
    let (rd, wr) = (median("seqread_1M_MiBps"), median("seqwrite_1M_MiBps"));
    Some(plan::bench_line(
        "nvme-vs-usernet",
        &[
            ("seqread_MiBps", format!("{rd:.1}")),
            ("usernet_recv_MiBps", format!("{recv:.1}")),
            ("seqread_of_usernet", plan::ratio(rd, recv)),
            ("seqwrite_MiBps", format!("{wr:.1}")),
            ("usernet_send_MiBps", format!("{send:.1}")),
            ("seqwrite_of_usernet", plan::ratio(wr, send)),
        ],
    ))
}
