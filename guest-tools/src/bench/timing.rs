//! The device timing model's contrast (issue 17): on every namespace the
//! backend models (`--ns ...,timing=PROFILE`, control `stats` ->
//! `timing`), the published anchor workload, 16 ranges of 2 MiB, copied
//! twice: by the host (range i written while range i + 1 is read, both
//! submitted together with native AIO, O_DIRECT) and offloaded (one NVMe
//! Copy of the 16 ranges). Both destinations are verified block by block.
//! The modeled counters around each copy give what the device class would
//! take: MiB/s, offload gain, link use each way (`# bench timing-NAME`);
//! and the energy ledger (`# ledger timing-NAME`): link, media and DRAM
//! bytes, the guest's CPU seconds, and millijoules from the profile's
//! coefficients.
//!
//! Assumptions, stated in the ledger too: the modeled host is infinitely
//! fast (a command starts at the latest completion it has seen); every
//! link byte passes host DRAM once (DMA), copies inside the host's stack
//! are not counted; CPU time is this TCG guest's, far above a real host's,
//! so the ledger gives the total with and without it.

use std::collections::BTreeMap;

use zonecopy_contract::timing::{Counters, EnergyMj, Modeled};

use super::{ledger::Cpu, *};
use crate::aio;

/// The anchor: 16 ranges of 2 MiB.
const RANGE: u64 = 2 * MIB;
const RANGES: u64 = 16;
const BYTES: u64 = RANGE * RANGES;
/// Where each copy lands.
const DST_HOST: u64 = BYTES;
const DST_OFFLOAD: u64 = 2 * BYTES;
/// Bytes a modeled namespace needs.
pub const TIMING_NEED_BYTES: u64 = 3 * BYTES;

/// The `timing` section of a `stats` reply: device name -> model.
fn modeled(c: &mut Ctx<'_>) -> Result<BTreeMap<String, Modeled>, Verdict> {
    c.ctl
        .as_mut()
        .ok_or_else(|| Verdict::skip("no control socket (zonecopy.control=)"))?
        .timing()
        .map_err(Verdict::fail)
}

fn counters_of(c: &mut Ctx<'_>, name: &str) -> Result<Counters, Verdict> {
    modeled(c)?
        .remove(name)
        .map(|m| m.counters)
        .ok_or_else(|| Verdict::fail(format!("stats: no timing for {name}")))
}

/// One copy as the model and the guest saw it.
struct Copied {
    /// Modeled counters' growth.
    model: Counters,
    cpu_s: Option<f64>,
    wall: Duration,
}

impl Copied {
    fn mib_per_s(&self) -> f64 {
        BYTES as f64 / (self.model.elapsed_ns.max(1) as f64 / 1e9) / MIB as f64
    }
}

/// Host copy, pipelined as the anchor's: read range 0; then, in one
/// io_submit each, write range i and read range i + 1 (native AIO, so
/// both commands reach the device side by side: the backend's model sees
/// them arrive together, as an infinitely fast host would send them).
fn host_copy(file: &File) -> Result<(), String> {
    let aio = aio::Context::new(4).map_err(|e| format!("io_setup: {e}"))?;
    let mut bufs = [
        AlignedBuf::new(RANGE as usize),
        AlignedBuf::new(RANGE as usize),
    ];
    let [a, b] = &mut bufs;
    aio.run(file, &mut [aio::Op::Read(a, 0)])
        .map_err(|e| format!("read range 0: {e}"))?;
    let (mut full, mut empty) = (a, b);
    for i in 0..RANGES {
        let write = aio::Op::Write(full, DST_HOST + i * RANGE);
        let r = if i + 1 < RANGES {
            aio.run(file, &mut [write, aio::Op::Read(empty, (i + 1) * RANGE)])
        } else {
            aio.run(file, &mut [write])
        };
        r.map_err(|e| format!("write range {i} / read range {}: {e}", i + 1))?;
        std::mem::swap(&mut full, &mut empty);
    }
    Ok(())
}

/// Offload: one Copy (19h, format 0) of the 16 ranges.
fn offload(file: &File, nsid: u32, bs: u64) -> Result<(), String> {
    let ranges: Vec<ncopy::Range> = (0..RANGES)
        .map(|i| ncopy::Range {
            snsid: 0,
            slba: i * RANGE / bs,
            nlb: (RANGE / bs) as u32,
        })
        .collect();
    let data = ncopy::encode(0, &ranges)?;
    let sqe = ncopy::copy_cmd(nsid, DST_OFFLOAD / bs, ranges.len(), 0)?;
    passthru::io(file, &sqe, passthru::Data::Out(&data))
        .map_err(|e| format!("Copy passthrough: {e}"))?
        .ok("Copy")
        .map(|_| ())
}

/// The destination at `at` holds the source's stamped blocks.
fn verify_copy(file: &File, at: u64, gen: u64) -> Result<(), String> {
    let mut buf = AlignedBuf::new(RANGE as usize);
    for i in 0..RANGES {
        let n = file
            .read_at(buf.as_mut_slice(), at + i * RANGE)
            .map_err(|e| format!("read back range {i}: {e}"))?;
        if n as u64 != RANGE {
            return Err(format!("short read back {n} at range {i}"));
        }
        stamp::verify_range(buf.as_slice(), i * RANGE / BS4K, gen)
            .map_err(|(b, e)| format!("copy at byte {at}: source block {b}: {e}"))?;
    }
    Ok(())
}

/// Run `copy` between two counter snapshots.
fn measured(
    c: &mut Ctx<'_>,
    name: &str,
    copy: impl FnOnce() -> Result<(), String>,
) -> Result<Copied, Verdict> {
    let before = counters_of(c, name)?;
    let cpu = Cpu::now();
    let t = Instant::now();
    copy().map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
    let wall = t.elapsed();
    let cpu_s = cpu
        .zip(Cpu::now())
        .map(|(a, b)| b.since(&a).busy_time().as_secs_f64());
    let after = counters_of(c, name)?;
    Ok(Copied {
        model: after.since(&before),
        cpu_s,
        wall,
    })
}

pub(super) fn t_timing(c: &mut Ctx<'_>) -> Step {
    let conn = c.conn.ok_or_else(|| Verdict::skip("needs nvme_connect"))?;
    let models = modeled(c)?;
    if models.is_empty() {
        return Err(Verdict::skip(
            "no namespace has a timing profile (runner: --ns ...,timing=nvmeof-1gbe)",
        ));
    }
    let mut all = Vec::new();
    for (name, m) in &models {
        let nsid: u32 = name
            .strip_prefix("ns")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Verdict::fail(format!("stats timing: device {name:?} is no ns<N>")))?;
        let spec = c
            .cfg
            .namespaces
            .get(&nsid)
            .copied()
            .ok_or_else(|| Verdict::fail(format!("{name} is not in zonecopy.ns{nsid}=")))?;
        ensure(spec.size >= TIMING_NEED_BYTES, || {
            format!("{name}: {} bytes, needs {TIMING_NEED_BYTES}", spec.size)
        })?;
        let (_, file, _) = super::nvmecopy::open_namespace(&c.sys, conn, nsid)?;
        let gen = run_generation().wrapping_add(u64::from(nsid));
        blockio::write_stamped(&file, 0, BYTES / BS4K, gen, RANGE / BS4K)
            .map_err(fail(&format!("{name}: write source")))?;
        let host = measured(c, name, || host_copy(&file))?;
        let off = measured(c, name, || offload(&file, nsid, spec.block_size))?;
        for at in [DST_HOST, DST_OFFLOAD] {
            verify_copy(&file, at, gen).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        }
        // The offloaded copy kept its data off the modeled link.
        ensure(off.model.link_bytes() * 100 < BYTES, || {
            format!(
                "{name}: the Copy put {} bytes on the modeled link",
                off.model.link_bytes()
            )
        })?;
        let profile = m.profile.name.clone();
        c.diag(plan::bench_line(
            &format!("timing-{profile}"),
            &contrast(name, &host, &off),
        ));
        for line in energy_ledger(&profile, m, &host, &off) {
            c.diag(line);
        }
        all.push(profile);
    }
    c.diag(format!(
        "timing model: {} modeled namespaces ({})",
        all.len(),
        all.join(", ")
    ));
    Ok(())
}

/// The `# bench timing-NAME` fields.
fn contrast(dev: &str, host: &Copied, off: &Copied) -> Vec<(&'static str, String)> {
    let pct = |x: f64| format!("{:.2}", x * 100.0);
    let (hh, hc) = host.model.link_use();
    let (oh, oc) = off.model.link_use();
    vec![
        ("dev", dev.to_string()),
        ("bytes", BYTES.to_string()),
        ("host_MiBps", format!("{:.1}", host.mib_per_s())),
        ("offload_MiBps", format!("{:.1}", off.mib_per_s())),
        ("gain", format!("{:.2}", off.mib_per_s() / host.mib_per_s())),
        ("host_link_h2c_pct", pct(hh)),
        ("host_link_c2h_pct", pct(hc)),
        ("offload_link_h2c_pct", pct(oh)),
        ("offload_link_c2h_pct", pct(oc)),
        ("host_wall_s", plan::secs(host.wall)),
        ("offload_wall_s", plan::secs(off.wall)),
    ]
}

/// The energy ledger table (without the `# `): one column per copy.
fn energy_ledger(profile: &str, m: &Modeled, host: &Copied, off: &Copied) -> Vec<String> {
    let e = &m.profile.energy;
    // Every link byte passes host DRAM once (DMA in or out).
    let est = |c: &Copied| -> (EnergyMj, Option<EnergyMj>) {
        let dram = c.model.link_bytes();
        (
            e.estimate(&c.model, dram, 0.0),
            c.cpu_s.map(|s| e.estimate(&c.model, dram, s)),
        )
    };
    let (hj, hjc) = est(host);
    let (oj, ojc) = est(off);
    let mj = |x: f64| format!("{x:.3}");
    let cpu = |c: &Copied| c.cpu_s.map_or("n/a".into(), |s| format!("{s:.2}"));
    let with_cpu = |j: Option<EnergyMj>| j.map_or("n/a".into(), |j| mj(j.total()));
    let rows: Vec<(&str, String, String)> = vec![
        (
            "modeled time ms",
            format!("{:.2}", host.model.elapsed_ns as f64 / 1e6),
            format!("{:.2}", off.model.elapsed_ns as f64 / 1e6),
        ),
        (
            "link bytes",
            host.model.link_bytes().to_string(),
            off.model.link_bytes().to_string(),
        ),
        (
            "media read bytes",
            host.model.media_read_bytes.to_string(),
            off.model.media_read_bytes.to_string(),
        ),
        (
            "media programmed bytes",
            host.model.media_programmed_bytes.to_string(),
            off.model.media_programmed_bytes.to_string(),
        ),
        (
            "host DRAM bytes",
            host.model.link_bytes().to_string(),
            off.model.link_bytes().to_string(),
        ),
        ("guest CPU s (TCG)", cpu(host), cpu(off)),
        ("link mJ", mj(hj.link), mj(oj.link)),
        ("media read mJ", mj(hj.media_read), mj(oj.media_read)),
        (
            "media program mJ",
            mj(hj.media_program),
            mj(oj.media_program),
        ),
        ("DRAM mJ", mj(hj.dram), mj(oj.dram)),
        (
            "data movement mJ",
            mj(hj.data_movement()),
            mj(oj.data_movement()),
        ),
        (
            "CPU mJ",
            hjc.map_or("n/a".into(), |j| mj(j.cpu)),
            ojc.map_or("n/a".into(), |j| mj(j.cpu)),
        ),
        ("total mJ", with_cpu(hjc), with_cpu(ojc)),
    ];
    let mut out = vec![
        format!("ledger timing-{profile}: 16 x 2 MiB copied, modeled (host copy vs offload)"),
        format!("  {:<24} {:>14} {:>14}", "", "host copy", "offload"),
    ];
    for (label, a, b) in rows {
        out.push(format!("  {label:<24} {a:>14} {b:>14}"));
    }
    out.push(format!(
        "  assumptions: {profile} coefficients (link {} pJ/B, media read {} pJ/B, program {} pJ/B, DRAM {} pJ/B, CPU {} W); infinitely fast host; each link byte crosses host DRAM once; CPU is this TCG guest's",
        e.link_pj_per_byte, e.media_read_pj_per_byte, e.media_program_pj_per_byte,
        e.dram_pj_per_byte, e.host_cpu_w
    ));
    out
}

#[cfg(test)]
mod tests {
    use zonecopy_contract::timing::TimingProfile;

    use super::*;

    #[test]
    fn contrast_and_ledger_from_counter_deltas() {
        let copied = |elapsed_ns, link, media, cpu_s| Copied {
            model: Counters {
                elapsed_ns,
                link_h2c_bytes: link,
                link_c2h_busy_ns: elapsed_ns / 2,
                media_read_bytes: media,
                media_programmed_bytes: media,
                ..Counters::default()
            },
            cpu_s,
            wall: Duration::from_millis(5),
        };
        // 32 MiB in 320 ms (100 MiB/s) vs in 12.8 ms (2500 MiB/s).
        let host = copied(320_000_000, 2 * BYTES, BYTES, Some(1.5));
        let off = copied(12_800_000, 600, BYTES, None);
        let f = contrast("ns2", &host, &off);
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("host_MiBps"), Some("100.0"));
        assert_eq!(get("offload_MiBps"), Some("2500.0"));
        assert_eq!(get("gain"), Some("25.00"));
        assert_eq!(get("host_link_c2h_pct"), Some("50.00"));
        let m = Modeled {
            profile: TimingProfile::builtin("nvmeof-1gbe").unwrap(),
            counters: Counters::default(),
        };
        let l = energy_ledger("nvmeof-1gbe", &m, &host, &off);
        assert_eq!(l.len(), 16, "{l:#?}");
        assert!(l[0].starts_with("ledger timing-nvmeof-1gbe:"));
        // 64 MiB over the link at 12 800 pJ/B = 858.993 mJ; 600 B = 0.008.
        let link = l.iter().find(|r| r.contains("link mJ")).unwrap();
        assert!(link.ends_with("858.993          0.008"), "{link}");
        let cpu = l.iter().find(|r| r.contains("CPU mJ")).unwrap();
        assert!(cpu.ends_with("10500.000            n/a"), "{cpu}");
    }
}
