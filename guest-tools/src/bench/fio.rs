//! The fio part of the bench suite: one fio run per device (the host's fio
//! through [`crate::hosttool`], `--output-format=json`), six stonewalled
//! time-based jobs with `ioengine=libaio` and `direct=1`, and the numbers
//! read back from fio's JSON with serde_json.
//!
//! Jobs run in this order, so every read lands on written blocks on every
//! device (a sparse file's holes would read faster than data): sequential
//! 1 MiB writes over the whole device, 4 KiB random writes at QD1 and
//! QD16, 4 KiB random reads at QD1 and QD16, sequential 1 MiB reads.

use serde_json::Value;

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

/// The set, in run order.
pub const JOBS: [Job; 6] = [
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

/// fio's arguments for the set on `dev` (`size` bytes of it), each job
/// `runtime` seconds.
pub fn args(dev: &str, size: u64, runtime: u32) -> Vec<String> {
    let mut a: Vec<String> = [
        "--output-format=json".to_string(),
        "--ioengine=libaio".into(),
        "--direct=1".into(),
        "--time_based".into(),
        format!("--runtime={runtime}"),
        format!("--filename={dev}"),
        format!("--size={size}"),
        "--randrepeat=0".into(),
        "--norandommap".into(),
    ]
    .into();
    for j in JOBS {
        a.extend([
            format!("--name={}", j.name),
            format!("--rw={}", j.rw),
            format!("--bs={}", j.bs),
            format!("--iodepth={}", j.iodepth),
            "--stonewall".into(),
        ]);
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

/// Parse fio's `--output-format=json` output (anything before the first
/// `{`, such as a fio notice, is skipped): every job of [`JOBS`] must be
/// there, with `error` 0 and at least one I/O in its direction.
pub fn parse(out: &str) -> Result<Results, String> {
    let at = out.find('{').ok_or("fio printed no JSON")?;
    let v: Value = serde_json::from_str(&out[at..]).map_err(|e| format!("fio JSON: {e}"))?;
    let jobs = v["jobs"].as_array().ok_or("fio JSON: no \"jobs\" array")?;
    let mut res = Vec::new();
    for j in JOBS {
        let job = jobs
            .iter()
            .find(|x| x["jobname"].as_str() == Some(j.name))
            .ok_or_else(|| format!("fio JSON: no job {}", j.name))?;
        let err = job["error"]
            .as_i64()
            .ok_or_else(|| format!("{}: no \"error\"", j.name))?;
        if err != 0 {
            return Err(format!("fio job {} ended with error {err}", j.name));
        }
        let dir = &job[if j.write { "write" } else { "read" }];
        let num = |k: &str| {
            dir[k]
                .as_f64()
                .ok_or_else(|| format!("fio JSON: {}: no number {k:?}", j.name))
        };
        let total_ios = dir["total_ios"]
            .as_u64()
            .ok_or_else(|| format!("fio JSON: {}: no \"total_ios\"", j.name))?;
        if total_ios == 0 {
            return Err(format!("fio job {} did no I/O", j.name));
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

    /// The `# bench` fields: IOPS of the 4 KiB jobs (and mean latency at
    /// QD1), MiB/s of the 1 MiB ones.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut f = Vec::new();
        for j in JOBS {
            let Some(r) = self.get(j.name) else { continue };
            if j.bs == "4k" {
                f.push((format!("{}_iops", j.name), format!("{:.0}", r.iops)));
                if j.iodepth == 1 {
                    f.push((
                        format!("{}_lat_us", j.name),
                        format!("{:.1}", r.lat_mean_ns / 1000.0),
                    ));
                }
            } else {
                f.push((format!("{}_MiBps", j.name), format!("{:.1}", r.mib_per_s())));
            }
        }
        f
    }

    /// `self / base` for each job (IOPS, or bandwidth for 1 MiB jobs).
    pub fn ratios(&self, base: &Results) -> Vec<(String, String)> {
        JOBS.iter()
            .filter_map(|j| {
                let (a, b) = (self.get(j.name)?, base.get(j.name)?);
                let (x, y) = if j.bs == "4k" {
                    (a.iops, b.iops)
                } else {
                    (a.bw_bytes, b.bw_bytes)
                };
                Some((j.name.to_string(), super::plan::ratio(x, y)))
            })
            .collect()
    }

    /// MiB/s of the sequential jobs: (read, write).
    pub fn seq_mib_per_s(&self) -> (f64, f64) {
        (
            self.get("seqread_1M").map_or(0.0, JobResult::mib_per_s),
            self.get("seqwrite_1M").map_or(0.0, JobResult::mib_per_s),
        )
    }
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

    fn sample(err_in: &str, ios: u64) -> String {
        let jobs: Vec<String> = JOBS
            .iter()
            .enumerate()
            .map(|(i, j)| {
                let bs = if j.bs == "4k" { 4096 } else { 1 << 20 };
                let iops = 1000.0 * (i + 1) as f64;
                job(
                    j.name,
                    j.write,
                    iops,
                    (iops as u64) * bs,
                    ios,
                    i32::from(j.name == err_in),
                )
            })
            .collect();
        format!(
            "note: a fio notice\n{{\"fio version\":\"fio-3.33\",\"global options\":{{}},\"jobs\":[{}],\"disk_util\":[]}}\n",
            jobs.join(",")
        )
    }

    #[test]
    fn args_are_six_stonewalled_jobs() {
        let a = args("/dev/sdb", 201_326_592, 5);
        assert_eq!(
            a[..9],
            [
                "--output-format=json",
                "--ioengine=libaio",
                "--direct=1",
                "--time_based",
                "--runtime=5",
                "--filename=/dev/sdb",
                "--size=201326592",
                "--randrepeat=0",
                "--norandommap"
            ]
        );
        assert_eq!(a.iter().filter(|x| *x == "--stonewall").count(), 6);
        assert_eq!(
            a[9..14],
            [
                "--name=seqwrite_1M",
                "--rw=write",
                "--bs=1M",
                "--iodepth=4",
                "--stonewall"
            ]
        );
        assert!(a.contains(&"--name=randread_qd16".to_string()));
    }

    #[test]
    fn parses_each_job_in_its_direction() {
        let r = parse(&sample("", 10)).unwrap();
        assert_eq!(r.0.len(), 6);
        assert_eq!(r.0[0].name, "seqwrite_1M");
        assert_eq!(r.0[0].iops, 1000.0);
        assert_eq!(r.0[0].mib_per_s(), 1000.0);
        assert_eq!(r.0[3].name, "randread_qd1");
        assert_eq!(r.0[3].iops, 4000.0);
        assert_eq!(r.0[3].lat_mean_ns, 1500.5);
        let f = r.fields();
        assert_eq!(
            f[0],
            ("seqwrite_1M_MiBps".to_string(), "1000.0".to_string())
        );
        assert_eq!(f[1], ("randwrite_qd1_iops".to_string(), "2000".to_string()));
        assert_eq!(
            f[2],
            ("randwrite_qd1_lat_us".to_string(), "1.5".to_string())
        );
        assert_eq!(f.len(), 8);
        assert_eq!(r.seq_mib_per_s(), (6000.0, 1000.0));
    }

    #[test]
    fn ratios_per_job() {
        let a = parse(&sample("", 10)).unwrap();
        let mut b = a.clone();
        b.0[1].iops = 4000.0;
        b.0[5].bw_bytes *= 4.0;
        let r = a.ratios(&b);
        assert_eq!(r[0].1, "1.00");
        assert_eq!(r[1], ("randwrite_qd1".to_string(), "0.50".to_string()));
        assert_eq!(r[5], ("seqread_1M".to_string(), "0.25".to_string()));
    }

    #[test]
    fn refuses_errors_idle_jobs_and_junk() {
        assert!(parse(&sample("randread_qd16", 10))
            .unwrap_err()
            .contains("randread_qd16 ended with error 1"));
        assert!(parse(&sample("", 0)).unwrap_err().contains("did no I/O"));
        assert!(parse("fio: cannot open /dev/sdz").is_err());
        assert!(parse("{\"jobs\":[]}")
            .unwrap_err()
            .contains("no job seqwrite_1M"));
        assert!(parse("{\"jobs\":3}").is_err());
        assert!(parse("{not json").is_err());
    }
}
