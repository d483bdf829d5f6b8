//! The pure parts of the bench suite: how one large copy is cut into
//! commands within the device's advertised limits, and the `# bench` line
//! format.

use std::time::Duration;

/// One SCSI block-to-block segment (descriptor 02h): source LBA,
/// destination LBA, NUMBER OF BLOCKS.
pub type Seg = (u64, u64, u16);

/// Cut a copy of `blocks` logical blocks from `src` to `dst` into 02h
/// segments of at most `max_seg_blocks` blocks (and at most 65535, the
/// width of NUMBER OF BLOCKS), then into EXTENDED COPY lists of at most
/// `per_list` segments each. `Err` if a limit allows nothing.
pub fn scsi_lists(
    src: u64,
    dst: u64,
    blocks: u64,
    max_seg_blocks: u64,
    per_list: usize,
) -> Result<Vec<Vec<Seg>>, String> {
    let per = max_seg_blocks.min(u64::from(u16::MAX));
    if per == 0 || per_list == 0 {
        return Err(format!(
            "limits allow no copy: {max_seg_blocks} blocks per segment, {per_list} segments per list"
        ));
    }
    let mut segs = Vec::new();
    let mut done = 0;
    while done < blocks {
        let n = per.min(blocks - done);
        segs.push((src + done, dst + done, n as u16));
        done += n;
    }
    Ok(segs.chunks(per_list).map(<[Seg]>::to_vec).collect())
}

/// One NVMe Copy command: destination SDLBA and its source ranges (SLBA,
/// NLB 1-based), contiguous in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeCopy {
    /// Starting Destination LBA.
    pub sdlba: u64,
    /// (SLBA, number of logical blocks) of each source range.
    pub ranges: Vec<(u64, u32)>,
}

/// Cut a copy of `nlb` logical blocks from `src` to `dst` into Copy
/// commands within the namespace's limits (NVM CS 1.1, Identify Namespace):
/// each range at most MSSRL blocks (and 65536, the width of the 0's based
/// NLB), each command at most MSRC+1 ranges (`max_ranges`) and MCL blocks
/// in all. MSSRL or MCL of 0 is taken as "no limit beyond the field width".
pub fn nvme_copies(
    src: u64,
    dst: u64,
    nlb: u64,
    mssrl: u64,
    mcl: u64,
    max_ranges: u64,
) -> Result<Vec<NvmeCopy>, String> {
    let per_range = if mssrl == 0 { 65536 } else { mssrl.min(65536) };
    let per_cmd = if mcl == 0 { u64::MAX } else { mcl };
    if max_ranges == 0 {
        return Err("MSRC allows no range".into());
    }
    let mut out = Vec::new();
    let mut done = 0;
    while done < nlb {
        let mut cmd = NvmeCopy {
            sdlba: dst + done,
            ranges: Vec::new(),
        };
        let mut in_cmd = 0;
        while done < nlb && (cmd.ranges.len() as u64) < max_ranges && in_cmd < per_cmd {
            let n = per_range.min(nlb - done).min(per_cmd - in_cmd);
            cmd.ranges.push((src + done, n as u32));
            done += n;
            in_cmd += n;
        }
        out.push(cmd);
    }
    Ok(out)
}

/// Seconds with millisecond resolution, as printed.
pub fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// `a / b` with two decimals ("inf" if `b` is zero and `a` is not).
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else if a > 0.0 {
        "inf".into()
    } else {
        "0.00".into()
    }
}

/// Bytes per second as MiB/s with one decimal.
pub fn mib_per_s(bytes: u64, d: Duration) -> String {
    let s = d.as_secs_f64();
    if s > 0.0 {
        format!("{:.1}", bytes as f64 / s / (1 << 20) as f64)
    } else {
        "inf".into()
    }
}

/// The greppable result line (printed as a KTAP diagnostic, so it reads
/// `# bench NAME key=value ...` on the console). Keys and values must not
/// contain spaces; a space in either is replaced by `_`. A cell measured
/// in rounds is two fields, `KEY=<median> KEY_range=<min>..<max>`
/// ([`super::stats::Spread::fields`]).
pub fn bench_line(name: &str, fields: &[(&str, String)]) -> String {
    let clean = |s: &str| s.replace([' ', '\t', '\n'], "_");
    let mut s = format!("bench {}", clean(name));
    for (k, v) in fields {
        s.push(' ');
        s.push_str(&clean(k));
        s.push('=');
        s.push_str(&clean(v));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scsi_cut() {
        // 64 MiB of 4 KiB blocks in one 02h segment per 256 MiB limit.
        assert_eq!(
            scsi_lists(0, 16384, 16384, (256 << 20) / 4096, 256).unwrap(),
            vec![vec![(0, 16384, 16384)]]
        );
        // 512-byte blocks: 131072 blocks exceed NUMBER OF BLOCKS (u16).
        let l = scsi_lists(10, 1_000_000, 131_072, u64::MAX, 256).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].len(), 3);
        assert_eq!(l[0][0], (10, 1_000_000, 65535));
        assert_eq!(l[0][1], (65545, 1_065_535, 65535));
        assert_eq!(l[0][2], (131_080, 1_131_070, 2));
        // Two segments per list.
        let l = scsi_lists(0, 100, 10, 3, 2).unwrap();
        assert_eq!(
            l,
            vec![
                vec![(0, 100, 3), (3, 103, 3)],
                vec![(6, 106, 3), (9, 109, 1)]
            ]
        );
        assert!(scsi_lists(0, 0, 1, 0, 1).is_err());
        assert!(scsi_lists(0, 0, 1, 1, 0).is_err());
        assert_eq!(scsi_lists(0, 0, 0, 1, 1).unwrap(), Vec::<Vec<Seg>>::new());
    }

    fn total(c: &[NvmeCopy]) -> u64 {
        c.iter()
            .flat_map(|c| &c.ranges)
            .map(|r| u64::from(r.1))
            .sum()
    }

    #[test]
    fn nvme_cut_backend_defaults() {
        // The backend's defaults: MSSRL 4096, MCL 65536, MSRC 127 (128
        // ranges): 64 MiB of 4 KiB blocks is one command of 4 ranges.
        let c = nvme_copies(0, 32768, 16384, 4096, 65536, 128).unwrap();
        assert_eq!(
            c,
            vec![NvmeCopy {
                sdlba: 32768,
                ranges: vec![(0, 4096), (4096, 4096), (8192, 4096), (12288, 4096)]
            }]
        );
    }

    #[test]
    fn nvme_cut_tight_limits() {
        // MSSRL 256, MCL 1024, MSRC 7: ranges of 256, 4 per command (MCL).
        let c = nvme_copies(8, 5000, 3000, 256, 1024, 8).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(total(&c), 3000);
        for cmd in &c {
            assert!(cmd.ranges.len() <= 8);
            let n: u64 = cmd.ranges.iter().map(|r| u64::from(r.1)).sum();
            assert!(n <= 1024);
            assert!(cmd.ranges.iter().all(|r| r.1 <= 256 && r.1 > 0));
            // Contiguous: the destination follows the source offset.
            assert_eq!(cmd.sdlba - 5000, cmd.ranges[0].0 - 8);
        }
        assert_eq!(c[2].sdlba, 5000 + 2048);
        assert_eq!(c[2].ranges.last(), Some(&(8 + 2816, 184)));
        // MCL not a multiple of MSSRL: a short last range per command.
        let c = nvme_copies(0, 0, 1000, 300, 500, 8).unwrap();
        assert_eq!(c[0].ranges, vec![(0, 300), (300, 200)]);
        assert_eq!(c[1].ranges, vec![(500, 300), (800, 200)]);
        // MSRC 0 (one range): one command per range.
        let c = nvme_copies(0, 0, 10, 4, 0, 1).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].ranges, vec![(8, 2)]);
        // MSSRL 0: the NLB field's 65536.
        let c = nvme_copies(0, 0, 70000, 0, 0, 256).unwrap();
        assert_eq!(c[0].ranges, vec![(0, 65536), (65536, 4464)]);
        assert!(nvme_copies(0, 0, 1, 1, 1, 0).is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(secs(Duration::from_millis(83)), "0.083");
        assert_eq!(ratio(0.512, 0.083), "6.17");
        assert_eq!(ratio(1.0, 0.0), "inf");
        assert_eq!(ratio(0.0, 0.0), "0.00");
        assert_eq!(mib_per_s(64 << 20, Duration::from_secs(2)), "32.0");
        assert_eq!(
            bench_line(
                "scsi-xcopy-64MiB",
                &[("offload_s", "0.083".into()), ("note", "a b".into())]
            ),
            "bench scsi-xcopy-64MiB offload_s=0.083 note=a_b"
        );
    }
}
