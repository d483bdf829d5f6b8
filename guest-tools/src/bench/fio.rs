//! The fio part of the bench suite: the host's fio through
//! [`crate::hosttool`] (`--output-format=json`), six stonewalled
//! time-based jobs with `ioengine=libaio` and `direct=1` on each device,
//! and the numbers read back from fio's JSON with serde_json.
//!
//! One fio run is one round ([`round_args`]): job by job, each device in
//! turn (the order rotated per round, [`stats::order`]), so the cells that
//! a ratio compares run seconds apart and a slow spell of the shared host
//! hits the devices alike. Jobs run in this order, so every read lands on
//! written blocks on every device (a sparse file's holes would read faster
//! than data): sequential 1 MiB writes over the whole device, 4 KiB random
//! writes at QD1 and QD16, 4 KiB random reads at QD1 and QD16, sequential
//! 1 MiB reads. [`cells`] and [`paired_ratios`] reduce the rounds to
//! medians and spreads.

use serde_json::Value;

use super::stats::{self, Spread};

/// One fio job of the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// fio `--name`, also the key prefix in `# bench` lines.
    pub name: &'static str,
    /// fio `--rw`.
    pub rw: &'static str,
    /// fio `--bs`.
    pub bs: &'static str,
    pub iodepth: u32,
    /// Whether the job writes (its numbers are fio's `write` section).
    pub write: bool,
}

/// The set, in run order (the runner sizes the bench's timeout by the
/// contract's count of it).
pub const JOBS: [Job; zonecopy_contract::fio::JOBS_PER_DEVICE as usize] = [
    Job {
        name: "seqwrite_1M",
        rw: "write",
        bs: "1M",
        iodepth: 4,
        write: true,
    },
    Job {
        name: "randwrite_qd1",
        rw: "randwrite",
        bs: "4k",
        iodepth: 1,
        write: true,
    },
    Job {
        name: "randwrite_qd16",
        rw: "randwrite",
        bs: "4k",
        iodepth: 16,
        write: true,
    },
    Job {
        name: "randread_qd1",
        rw: "randread",
        bs: "4k",
        iodepth: 1,
        write: false,
    },
    Job {
        name: "randread_qd16",
        rw: "randread",
        bs: "4k",
        iodepth: 16,
        write: false,
    },
    Job {
        name: "seqread_1M",
        rw: "read",
        bs: "1M",
        iodepth: 4,
        write: false,
    },
];

/// One device of a round: `label` names its jobs (`<label>.<job>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub label: String,
    pub path: String,
    /// Bytes of it the jobs use.
    pub size: u64,
}

/// fio's arguments for round `round` (0-based) over `targets`, each job
/// `runtime` seconds: for each job of [`JOBS`], one stonewalled job per
/// device in [`stats::order`].
pub fn round_args(targets: &[Target], round: usize, runtime: u32) -> Vec<String> {
    let mut a: Vec<String> = [
        "--output-format=json".to_string(),
        "--ioengine=libaio".into(),
        "--direct=1".into(),
        "--time_based".into(),
        format!("--runtime={runtime}"),
        "--randrepeat=0".into(),
        "--norandommap".into(),
    ]
    .into();
    let order = stats::order(targets.len(), round);
    for j in JOBS {
        for &i in &order {
            let t = &targets[i];
            a.extend([
                format!("--name={}.{}", t.label, j.name),
                format!("--filename={}", t.path),
                format!("--size={}", t.size),
                format!("--rw={}", j.rw),
                format!("--bs={}", j.bs),
                format!("--iodepth={}", j.iodepth),
                "--stonewall".into(),
            ]);
        }
    }
    a
}

/// One job's numbers from fio's JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct JobResult {
    pub name: String,
    /// Operations per second.
    pub iops: f64,
    /// Bytes per second.
    pub bw_bytes: f64,
    /// Mean completion latency (submission to completion) in ns.
    pub lat_mean_ns: f64,
    pub total_ios: u64,
}

impl JobResult {
    /// MiB/s.
    pub fn mib_per_s(&self) -> f64 {
        self.bw_bytes / f64::from(1u32 << 20)
    }
}

/// The results of the whole set, in [`JOBS`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Results(pub Vec<JobResult>);

/// Parse fio's `--output-format=json` output of one round (anything
/// before the first `{`, such as a fio notice, is skipped) into the
/// results of each of `labels`, in that order: every job of [`JOBS`] must
/// be there for each, with `error` 0 and at least one I/O in its
/// direction.
pub fn parse_round(out: &str, labels: &[&str]) -> Result<Vec<Results>, String> {
    let at = out.find('{').ok_or("fio printed no JSON")?;
    let v: Value = serde_json::from_str(&out[at..]).map_err(|e| format!("fio JSON: {e}"))?;
    let jobs = v["jobs"].as_array().ok_or("fio JSON: no \"jobs\" array")?;
    labels.iter().map(|l| parse_device(jobs, l)).collect()
}

/// The jobs `<label>.<job>` of one device.
fn parse_device(jobs: &[Value], label: &str) -> Result<Results, String> {
    let mut res = Vec::new();
    for j in JOBS {
        let name = format!("{label}.{}", j.name);
        let job = jobs
            .iter()
            .find(|x| x["jobname"].as_str() == Some(name.as_str()))
            .ok_or_else(|| format!("fio JSON: no job {name}"))?;
        let err = job["error"]
            .as_i64()
            .ok_or_else(|| format!("{name}: no \"error\""))?;
        if err != 0 {
            return Err(format!("fio job {name} ended with error {err}"));
        }
        let dir = &job[if j.write { "write" } else { "read" }];
        let num = |k: &str| {
            dir[k]
                .as_f64()
                .ok_or_else(|| format!("fio JSON: {name}: no number {k:?}"))
        };
        let total_ios = dir["total_ios"]
            .as_u64()
            .ok_or_else(|| format!("fio JSON: {name}: no \"total_ios\""))?;
        if total_ios == 0 {
            return Err(format!("fio job {name} did no I/O"));
        }
        res.push(JobResult {
            name: j.name.to_string(),
            iops: num("iops")?,
            bw_bytes: num("bw_bytes")?,
            lat_mean_ns: dir["lat_ns"]["mean"].as_f64().unwrap_or(0.0),
            total_ios,
        });
    }
    Ok(Results(res))
}

impl Results {
    fn get(&self, name: &str) -> Option<&JobResult> {
        self.0.iter().find(|r| r.name == name)
    }

    /// The numbers of one run, as `# bench` keys with their decimals:
    /// IOPS of the 4 KiB jobs (and mean latency in us at QD1), MiB/s of
    /// the 1 MiB ones.
    pub fn metrics(&self) -> Vec<(String, f64, usize)> {
        let mut f = Vec::new();
        for j in JOBS {
            let Some(r) = self.get(j.name) else { continue };
            if j.bs == "4k" {
                f.push((format!("{}_iops", j.name), r.iops, 0));
                if j.iodepth == 1 {
                    f.push((format!("{}_lat_us", j.name), r.lat_mean_ns / 1000.0, 1));
                }
            } else {
                f.push((format!("{}_MiBps", j.name), r.mib_per_s(), 1));
            }
        }
        f
    }

    /// `self / base` for each job (IOPS, or bandwidth for 1 MiB jobs).
    pub fn ratios(&self, base: &Results) -> Vec<(String, f64)> {
        JOBS.iter()
            .filter_map(|j| {
                let (a, b) = (self.get(j.name)?, base.get(j.name)?);
                let (x, y) = if j.bs == "4k" {
                    (a.iops, b.iops)
                } else {
                    (a.bw_bytes, b.bw_bytes)
                };
                Some((j.name.to_string(), stats::ratio(x, y)))
            })
            .collect()
    }
}

/// Each metric of one device over its rounds: (key, median and spread,
/// decimals), in [`Results::metrics`] order.
pub fn cells(rounds: &[Results]) -> Vec<(String, Spread, usize)> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .metrics()
        .into_iter()
        .enumerate()
        .filter_map(|(i, (key, _, dec))| {
            let xs: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r.metrics().get(i).map(|m| m.1))
                .collect();
            Some((key, Spread::of(&xs)?, dec))
        })
        .collect()
}

/// `num / den` per job as the median (and spread) of the per-round
/// ratios, round `r` of `num` paired with round `r` of `den`.
///
/// Why not the ratio of the two medians: within a round the two cells of
/// a job run back to back, seconds apart, so a slow spell of the shared
/// host (another VM booting, a build) scales both and cancels in their
/// ratio; the median then drops a round whose pair a load change split.
/// A ratio of medians may divide one device's fast round by the other's
/// slow one, and carries both cells' noise where the paired ratio carries
/// only what the pair did not share.
pub fn paired_ratios(num: &[Results], den: &[Results]) -> Vec<(String, Spread)> {
    let per_round: Vec<Vec<(String, f64)>> =
        num.iter().zip(den).map(|(a, b)| a.ratios(b)).collect();
    let Some(first) = per_round.first() else {
        return Vec::new();
    };
    first
        .iter()
        .enumerate()
        .filter_map(|(i, (key, _))| {
            let xs: Vec<f64> = per_round
                .iter()
                .filter_map(|r| r.get(i).map(|x| x.1))
                .collect();
            Some((key.clone(), Spread::of(&xs)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fio 3.33's shape, trimmed: two sections per job, the keys read.
    fn job(name: &str, write: bool, iops: f64, bw: u64, ios: u64, err: i32) -> String {
        let busy = format!(
            r#"{{"io_bytes":{bw},"bw_bytes":{bw},"iops":{iops},"runtime":1000,"total_ios":{ios},"lat_ns":{{"min":1,"max":9,"mean":1500.5}}}}"#
        );
        let idle = r#"{"io_bytes":0,"bw_bytes":0,"iops":0.0,"runtime":0,"total_ios":0,"lat_ns":{"min":0,"max":0,"mean":0.0}}"#;
        let (r, w) = if write {
            (idle, busy.as_str())
        } else {
            (busy.as_str(), idle)
        };
        format!(
            r#"{{"jobname":"{name}","groupid":0,"error":{err},"job options":{{"rw":"x"}},"read":{r},"write":{w},"trim":{idle}}}"#
        )
    }

    /// One round's JSON: the jobs of each of `devs` (label, IOPS
    /// factor), job `i`'s IOPS 1000 * (i + 1) * factor; `err_in` (a fio
    /// job name) ends with error 1.
    fn sample(devs: &[(&str, f64)], err_in: &str, ios: u64) -> String {
        let mut jobs = Vec::new();
        for (label, k) in devs {
            for (i, j) in JOBS.iter().enumerate() {
                let bs = if j.bs == "4k" {
                    4096.0
                } else {
                    f64::from(1u32 << 20)
                };
                let iops = 1000.0 * (i + 1) as f64 * k;
                let name = format!("{label}.{}", j.name);
                let err = i32::from(name == err_in);
                jobs.push(job(&name, j.write, iops, (iops * bs) as u64, ios, err));
            }
        }
        format!(
            "note: a fio notice\n{{\"fio version\":\"fio-3.33\",\"global options\":{{}},\"jobs\":[{}],\"disk_util\":[]}}\n",
            jobs.join(",")
        )
    }

    fn targets() -> Vec<Target> {
        ["scsi", "scsihd-wb", "nvme"]
            .iter()
            .enumerate()
            .map(|(i, l)| Target {
                label: l.to_string(),
                path: format!("/dev/sd{}", (b'a' + i as u8) as char),
                size: 201_326_592,
            })
            .collect()
    }

    #[test]
    fn a_round_interleaves_the_devices_job_by_job() {
        let t = targets();
        let a = round_args(&t, 1, 2);
        assert_eq!(
            a[..7],
            [
                "--output-format=json",
                "--ioengine=libaio",
                "--direct=1",
                "--time_based",
                "--runtime=2",
                "--randrepeat=0",
                "--norandommap"
            ]
        );
        assert_eq!(a.iter().filter(|x| *x == "--stonewall").count(), 18);
        assert_eq!(
            a[7..14],
            [
                "--name=scsihd-wb.seqwrite_1M",
                "--filename=/dev/sdb",
                "--size=201326592",
                "--rw=write",
                "--bs=1M",
                "--iodepth=4",
                "--stonewall"
            ]
        );
        let names: Vec<&str> = a.iter().filter_map(|x| x.strip_prefix("--name=")).collect();
        // Round 1 starts each job with the second device; each job on
        // every device before the next job.
        assert_eq!(
            names[..7],
            [
                "scsihd-wb.seqwrite_1M",
                "nvme.seqwrite_1M",
                "scsi.seqwrite_1M",
                "scsihd-wb.randwrite_qd1",
                "nvme.randwrite_qd1",
                "scsi.randwrite_qd1",
                "scsihd-wb.randwrite_qd16"
            ]
        );
        assert_eq!(names[17], "scsi.seqread_1M");
        assert_eq!(round_args(&t, 0, 2)[7], "--name=scsi.seqwrite_1M");
    }

    #[test]
    fn parses_each_device_and_job_in_its_direction() {
        let out = sample(&[("scsi", 1.0), ("nvme", 0.5)], "", 10);
        let r = parse_round(&out, &["nvme", "scsi"]).unwrap();
        assert_eq!(r.len(), 2);
        let (nvme, scsi) = (&r[0], &r[1]);
        assert_eq!(scsi.0.len(), 6);
        assert_eq!(scsi.0[0].name, "seqwrite_1M");
        assert_eq!(scsi.0[0].iops, 1000.0);
        assert_eq!(scsi.0[0].mib_per_s(), 1000.0);
        assert_eq!(scsi.0[3].name, "randread_qd1");
        assert_eq!(scsi.0[3].iops, 4000.0);
        assert_eq!(scsi.0[3].lat_mean_ns, 1500.5);
        assert_eq!(nvme.0[3].iops, 2000.0);
        let m = scsi.metrics();
        assert_eq!(m[0], ("seqwrite_1M_MiBps".to_string(), 1000.0, 1));
        assert_eq!(m[1], ("randwrite_qd1_iops".to_string(), 2000.0, 0));
        assert_eq!(m[2], ("randwrite_qd1_lat_us".to_string(), 1.5005, 1));
        assert_eq!(m.len(), 8);
    }

    #[test]
    fn ratios_per_job() {
        let out = sample(&[("a", 1.0)], "", 10);
        let a = parse_round(&out, &["a"]).unwrap().remove(0);
        let mut b = a.clone();
        b.0[1].iops = 4000.0;
        b.0[5].bw_bytes *= 4.0;
        let r = a.ratios(&b);
        assert_eq!(r[0].1, 1.0);
        assert_eq!(r[1], ("randwrite_qd1".to_string(), 0.5));
        assert_eq!(r[5], ("seqread_1M".to_string(), 0.25));
    }

    /// Three rounds of two devices with literal IOPS (randread_qd1 only
    /// differs): ours 3781, 1900 (a slow round), 3700; theirs 3000, 1000,
    /// 3100.
    fn three_rounds() -> (Vec<Results>, Vec<Results>) {
        let base = parse_round(&sample(&[("x", 1.0)], "", 10), &["x"])
            .unwrap()
            .remove(0);
        let with = |iops: f64| {
            let mut r = base.clone();
            r.0[3].iops = iops;
            r
        };
        (
            vec![with(3781.0), with(1900.0), with(3700.0)],
            vec![with(3000.0), with(1000.0), with(3100.0)],
        )
    }

    #[test]
    fn cells_are_medians_over_the_rounds() {
        let (ours, _) = three_rounds();
        let c = cells(&ours);
        assert_eq!(c.len(), 8);
        let rr = c.iter().find(|x| x.0 == "randread_qd1_iops").unwrap();
        assert_eq!(
            rr.1,
            Spread {
                median: 3700.0,
                min: 1900.0,
                max: 3781.0
            }
        );
        assert_eq!(rr.2, 0);
        // A cell the rounds agree on has no spread.
        assert_eq!(c[0].1.relative(), 0.0);
        assert!(cells(&[]).is_empty());
    }

    #[test]
    fn ratios_are_medians_of_the_paired_rounds() {
        let (ours, theirs) = three_rounds();
        let r = paired_ratios(&ours, &theirs);
        assert_eq!(r.len(), 6);
        let (key, s) = &r[3];
        assert_eq!(key, "randread_qd1");
        // Per round 1.2603.., 1.9, 1.1935..: the median is round 0's.
        assert!((s.median - 3781.0 / 3000.0).abs() < 1e-12);
        assert!((s.min - 3700.0 / 3100.0).abs() < 1e-12);
        assert_eq!(s.max, 1.9);
        // Not the ratio of the medians (3700 / 3000).
        assert!((s.median - 3700.0 / 3000.0).abs() > 0.02);
        assert_eq!(r[0].1.median, 1.0);
        // Rounds beyond the shorter side are not paired.
        assert_eq!(paired_ratios(&ours[..1], &theirs)[3].1.max, 3781.0 / 3000.0);
    }

    #[test]
    fn refuses_errors_idle_jobs_and_junk() {
        let devs = [("scsi", 1.0), ("nvme", 1.0)];
        assert!(
            parse_round(&sample(&devs, "nvme.randread_qd16", 10), &["scsi", "nvme"])
                .unwrap_err()
                .contains("nvme.randread_qd16 ended with error 1")
        );
        assert!(parse_round(&sample(&devs, "", 0), &["scsi"])
            .unwrap_err()
            .contains("did no I/O"));
        assert!(parse_round(&sample(&devs, "", 10), &["scsihd"])
            .unwrap_err()
            .contains("no job scsihd.seqwrite_1M"));
        assert!(parse_round("fio: cannot open /dev/sdz", &["a"]).is_err());
        assert!(parse_round("{\"jobs\":3}", &["a"]).is_err());
        assert!(parse_round("{not json", &["a"]).is_err());
    }
}
