//! Issue 17's targets: each with its ratio, the range of that ratio over
//! the fio rounds, and whether it is met. A target is met only when the
//! whole range clears it and missed only when the whole range misses it;
//! a range that straddles it decides nothing ("undecided").

use std::fmt;

use zonecopy_contract::Suite;

use super::{
    parse::{num, BenchLine, Cell, MISSING},
    render::{awk_str, fixed, FIO_4K_JOBS, FIO_JOBS},
    Logs,
};

/// Our SCSI disk vs QEMU's scsi-hd (cache=writeback) in the same guest,
/// 4 KiB random read and write at QD1 and QD16: at least this ratio
/// (issue 17, "What to build", vhost-user-scsi).
pub const SCSI_4K_VS_SCSI_HD: f64 = 1.2;
/// The same for 1 MiB sequential read and write (issue 17: ">= 1.0x
/// sequential").
pub const SCSI_SEQ_VS_SCSI_HD: f64 = 1.0;
/// NVMe/TCP 1 MiB sequential read and write: at least this many times the
/// baseline (issue 17, NVMe/TCP off slirp: "sequential >= 5x today").
pub const NVME_SEQ_VS_BASELINE: f64 = 5.0;
/// Issue 17's baseline, the run that filed it (6.12 guest, NVMe/TCP over
/// slirp): sequential read in MiB/s.
pub const BASELINE_SEQ_READ_MIBPS: f64 = 81.0;
/// The same run's sequential write in MiB/s.
pub const BASELINE_SEQ_WRITE_MIBPS: f64 = 32.0;
/// NVMe/TCP 4 KiB QD1 IOPS vs our SCSI disk's, read and write: at least
/// this ratio (issue 17: "QD1 IOPS >= 0.8x our SCSI disk").
pub const NVME_QD1_VS_SCSI: f64 = 0.8;
/// Boot to the first test on 6.12 under TCG, the median of the smoke
/// runs: at most this many seconds (issue 17: "<= 2 s to the first test").
pub const BOOT_S: f64 = 2.0;
/// The timing model reproduces issue 17's NVMe/TCP contrast when the
/// offload gain on the 1 GbE profile is at least this ... (the published
/// anchor issue 17 quotes: 100 -> 2655 MiB/s, 26.5x) ...
pub const GAIN_1GBE_MIN: f64 = 10.0;
/// ... and on the 100 GbE profile at most this (the anchor: 1027 -> 1183
/// MiB/s, 1.15x). Issue 17 asks for "large" vs "small"; these bounds say
/// what that means with room on both sides.
pub const GAIN_100GBE_MAX: f64 = 1.5;

/// The `# bench` lines the targets read.
const FIO_NVME: &str = "fio-nvme";
const NVME_VS_SCSI: &str = "nvme-vs-scsi";
const SCSI_VS_SCSI_HD_WB: &str = "scsi-vs-scsihd-wb";
pub(super) const TIMING_1GBE: &str = "timing-nvmeof-1gbe";
pub(super) const TIMING_100GBE: &str = "timing-nvmeof-100gbe";
/// The suite whose runs time the boot.
const BOOT_SUITE: Suite = Suite::Smoke;

/// Whether a measured range meets a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole range is on the right side of the target.
    Met,
    /// The whole range is on the wrong side.
    NotMet,
    /// The range straddles the target; whether the median is on the right
    /// side.
    Undecided { median_met: bool },
}

impl Verdict {
    /// A number that must be at least `want`: `median` within `lo..=hi`.
    pub fn at_least(median: f64, lo: f64, hi: f64, want: f64) -> Verdict {
        if lo >= want {
            Verdict::Met
        } else if hi < want {
            Verdict::NotMet
        } else {
            Verdict::Undecided {
                median_met: median >= want,
            }
        }
    }

    /// A number that must be at most `want`.
    pub fn at_most(median: f64, lo: f64, hi: f64, want: f64) -> Verdict {
        if hi <= want {
            Verdict::Met
        } else if lo > want {
            Verdict::NotMet
        } else {
            Verdict::Undecided {
                median_met: median <= want,
            }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT met",
            Verdict::Undecided { median_met: true } => "undecided (median met, range straddles)",
            Verdict::Undecided { median_met: false } => {
                "undecided (median NOT met, range straddles)"
            }
        })
    }
}

/// `[min..max]` of a ratio, empty when they are one number.
fn range_text(lo: &str, hi: &str) -> String {
    if lo == hi {
        String::new()
    } else {
        format!("[{lo}..{hi}]")
    }
}

/// A line's cell `key` when it has a value.
fn measured<'a>(b: Option<&'a BenchLine>, key: &str) -> Option<(&'a BenchLine, Cell<'a>)> {
    let b = b?;
    let c = b.cell(key);
    (!c.median.is_empty() && c.median != MISSING).then_some((b, c))
}

/// The verdict of a cell that must be at least `want`.
fn cell_at_least(c: &Cell<'_>, want: f64) -> Verdict {
    Verdict::at_least(num(c.median), num(c.lo()), num(c.hi()), want)
}

/// Ratio targets of one line: a row `SUBJECT = RATIO x VERSUS [MIN..MAX]
/// GOAL VERDICT` for each (subject, cell key, least ratio, goal text).
fn ratio_targets<'k>(
    b: &BenchLine,
    versus: &str,
    rows: impl IntoIterator<Item = (String, &'k str, f64, String)>,
) -> Vec<String> {
    rows.into_iter()
        .map(|(subject, key, want, goal)| {
            let c = b.cell(key);
            format!(
                "{subject} = {:>5} x {versus} {:<12} {goal:<17}{}",
                c.median,
                range_text(c.lo(), c.hi()),
                cell_at_least(&c, want)
            )
        })
        .collect()
}

/// Our SCSI disk vs scsi-hd (writeback), job by job.
fn scsi(logs: &Logs<'_>) -> Vec<String> {
    let what = [
        "4 KiB rand read QD1",
        "4 KiB rand write QD1",
        "4 KiB rand read QD16",
        "4 KiB rand write QD16",
        "1 MiB seq read",
        "1 MiB seq write",
    ];
    let Some((b, _)) = measured(logs.last_named(SCSI_VS_SCSI_HD_WB), FIO_JOBS[0]) else {
        return Vec::new();
    };
    let rows = FIO_JOBS
        .iter()
        .zip(what)
        .enumerate()
        .map(|(i, (job, what))| {
            let want = if i < FIO_4K_JOBS {
                SCSI_4K_VS_SCSI_HD
            } else {
                SCSI_SEQ_VS_SCSI_HD
            };
            let goal = format!("target >= {}x", fixed(want, 1));
            (format!("SCSI {what:<22}"), *job, want, goal)
        });
    ratio_targets(b, "scsi-hd (writeback)", rows)
}

/// NVMe/TCP's sequential MiB/s against issue 17's baseline.
fn nvme_seq(logs: &Logs<'_>) -> Vec<String> {
    let Some((b, _)) = measured(logs.last_named(FIO_NVME), "seqread_1M_MiBps") else {
        return Vec::new();
    };
    [
        ("read", "seqread_1M_MiBps", BASELINE_SEQ_READ_MIBPS),
        ("write", "seqwrite_1M_MiBps", BASELINE_SEQ_WRITE_MIBPS),
    ]
    .into_iter()
    .map(|(what, key, base)| {
        let c = b.cell(key);
        let (x, lo, hi) = (num(c.median) / base, num(c.lo()) / base, num(c.hi()) / base);
        let goal = format!("target >= {}x", awk_str(NVME_SEQ_VS_BASELINE));
        format!(
            "NVMe/TCP seq {what:<5} {:>7} MiB/s = {:>5} x {} (slirp) {:<14} {goal:<17}{}",
            fixed(num(c.median), 1),
            fixed(x, 2),
            awk_str(base),
            range_text(&fixed(lo, 2), &fixed(hi, 2)),
            Verdict::at_least(x, lo, hi, NVME_SEQ_VS_BASELINE)
        )
    })
    .collect()
}

/// NVMe/TCP's QD1 IOPS vs our SCSI disk's.
fn nvme_qd1(logs: &Logs<'_>) -> Vec<String> {
    let Some((b, _)) = measured(logs.last_named(NVME_VS_SCSI), FIO_JOBS[0]) else {
        return Vec::new();
    };
    let goal = format!("target >= {}x", awk_str(NVME_QD1_VS_SCSI));
    let rows = [("read", FIO_JOBS[0]), ("write", FIO_JOBS[1])].map(|(what, key)| {
        let subject = format!("NVMe/TCP QD1 {what:<5} IOPS");
        (subject, key, NVME_QD1_VS_SCSI, goal.clone())
    });
    ratio_targets(b, "our SCSI disk", rows)
}

/// The boot: the median of the smoke runs (bench.sh boots it several
/// times; the first may also rebuild the initramfs), with their range.
fn boot(logs: &Logs<'_>) -> Option<String> {
    let mut runs: Vec<f64> = logs
        .runs
        .iter()
        .filter(|r| r.suite == BOOT_SUITE.as_str())
        .map(|r| num(&r.boot))
        .collect();
    runs.sort_by(f64::total_cmp);
    let n = runs.len();
    let (lo, hi) = (*runs.first()?, *runs.last()?);
    let median = if n % 2 == 1 {
        runs[n / 2]
    } else {
        (runs[n / 2 - 1] + runs[n / 2]) / 2.0
    };
    let suite = BOOT_SUITE.as_str();
    let kernel = logs.first_run(suite).map_or("", |r| r.kernel.as_str());
    // Compared as numbers, printed as awk prints them.
    let range = if lo == hi {
        String::new()
    } else {
        format!("[{}..{}]", awk_str(lo), awk_str(hi))
    };
    let goal = format!("target <= {} s", awk_str(BOOT_S));
    Some(format!(
        "boot to the first test ({suite}, {kernel}) {} s of {n} runs {range:<10} {goal:<17}{}",
        fixed(median, 1),
        Verdict::at_most(median, lo, hi, BOOT_S)
    ))
}

/// The timing model's 1 GbE vs 100 GbE contrast.
fn contrast(logs: &Logs<'_>) -> Option<String> {
    let g1 = logs.last_named(TIMING_1GBE)?;
    let g100 = logs.last_named(TIMING_100GBE)?;
    let (gain1, gain100) = (g1.field("gain"), g100.field("gain"));
    if gain1.is_empty() || gain100.is_empty() {
        return None;
    }
    let reproduced = num(gain1) >= GAIN_1GBE_MIN && num(gain100) <= GAIN_100GBE_MAX;
    Some(format!(
        "timing contrast: offload gain 1 GbE {gain1}x (link {}% -> {}%), 100 GbE {gain100}x   \
         target >= {}x and <= {}x   {}",
        g1.field("host_link_c2h_pct"),
        g1.field("offload_link_h2c_pct"),
        awk_str(GAIN_1GBE_MIN),
        awk_str(GAIN_100GBE_MAX),
        if reproduced {
            "reproduced"
        } else {
            "NOT reproduced"
        }
    ))
}

/// The targets that the logs have numbers for; whether there were any.
pub(super) fn render(logs: &Logs<'_>, out: &mut String) -> bool {
    let mut rows = scsi(logs);
    rows.extend(nvme_seq(logs));
    rows.extend(nvme_qd1(logs));
    rows.extend(boot(logs));
    rows.extend(contrast(logs));
    if rows.is_empty() {
        return false;
    }
    out.push_str("targets (issue 17):\n");
    for r in rows {
        out.push_str("  ");
        out.push_str(&r);
        out.push('\n');
    }
    true
}
