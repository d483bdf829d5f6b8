//! The summary against literal logs and literal expected text.

use super::{
    parse::{self, BenchLine, Record},
    render::FIO_JOBS,
    summarize,
    targets::{self, Verdict},
};

/// A guest console log (CRLF line ends) with a line of every kind,
/// including lines that look like bench lines and are not.
const CONSOLE: &str = r#"KTAP version 1
# bench scsi-xcopy-64MiB dev=lun0 bytes=67108864 offload_s=0.083 readwrite_s=0.512 ratio=6.17 offload_MiBps=771.1
ok 3 scsi_readwrite_64MiB
# benchmark is not a bench line
# bench fio rounds=3 runtime_s=2 devices=scsi,scsihd,nvme fio_s=160.2
# bench fio-scsi dev=lun0 seqwrite_1M_MiBps=150.5 seqwrite_1M_MiBps_range=140.0..160.0 randwrite_qd1_iops=900 randwrite_qd1_iops_range=850..990 randwrite_qd1_lat_us=1000.1 randwrite_qd1_lat_us_range=900.0..1100.0 randwrite_qd16_iops=3000 randwrite_qd16_iops_range=2900..3100 randread_qd1_iops=1000 randread_qd1_iops_range=950..1050 randread_qd1_lat_us=900.0 randread_qd1_lat_us_range=880.0..950.0 randread_qd16_iops=4000 randread_qd16_iops_range=3000..4400 seqread_1M_MiBps=200.0 seqread_1M_MiBps_range=190.0..210.0
# bench fio-scsihd dev=sdb seqwrite_1M_MiBps=100.0 seqwrite_1M_MiBps_range=100.0..100.0 randwrite_qd1_iops=450 randwrite_qd1_iops_range=440..460 randwrite_qd1_lat_us=2000.2 randwrite_qd1_lat_us_range=1990.0..2100.0 randwrite_qd16_iops=1500 randwrite_qd16_iops_range=1400..1500 randread_qd1_iops=500 randread_qd1_iops_range=500..500 randread_qd1_lat_us=1800.0 randread_qd1_lat_us_range=1800.0..1800.0 randread_qd16_iops=2000 randread_qd16_iops_range=1900..2100 seqread_1M_MiBps=100.0 seqread_1M_MiBps_range=90.0..100.0
# bench scsi-vs-scsihd seqwrite_1M=1.50 seqwrite_1M_range=1.40..1.60 randwrite_qd1=2.00 randwrite_qd1_range=1.95..2.05 randwrite_qd16=2.00 randwrite_qd16_range=2.00..2.00 randread_qd1=2.00 randread_qd1_range=1.90..2.10 randread_qd16=2.00 randread_qd16_range=1.80..2.20 seqread_1M=2.00 seqread_1M_range=2.00..2.10
# bench scsi-vs-scsihd-wb seqwrite_1M=0.95 seqwrite_1M_range=0.90..0.99 randwrite_qd1=1.20 randwrite_qd1_range=1.10..1.30 randwrite_qd16=1.10 randwrite_qd16_range=1.00..1.25 randread_qd1=1.40 randread_qd1_range=1.30..1.50 randread_qd16=1.50 randread_qd16_range=1.45..1.55 seqread_1M=1.60 seqread_1M_range=1.50..1.70
# bench fio-nvme dev=ns1 seqwrite_1M_MiBps=170.0 seqwrite_1M_MiBps_range=165.0..175.0 randwrite_qd1_iops=800 randwrite_qd1_iops_range=780..820 randwrite_qd1_lat_us=1200.0 randwrite_qd1_lat_us_range=1150.0..1250.0 randwrite_qd16_iops=2000 randwrite_qd16_iops_range=2000..2000 randread_qd1_iops=900 randread_qd1_iops_range=850..950 randread_qd1_lat_us=1000.0 randread_qd1_lat_us_range=950.0..1050.0 randread_qd16_iops=3000 randread_qd16_iops_range=2900..3200 seqread_1M_MiBps=420.0 seqread_1M_MiBps_range=400.0..430.0
# bench nvme-vs-scsi seqwrite_1M=1.13 seqwrite_1M_range=1.10..1.20 randwrite_qd1=0.79 randwrite_qd1_range=0.70..0.82 randwrite_qd16=0.67 randwrite_qd16_range=0.60..0.70 randread_qd1=0.90 randread_qd1_range=0.85..0.95 randread_qd16=0.75 randread_qd16_range=0.70..0.80 seqread_1M=2.10 seqread_1M_range=2.00..2.20
# bench usernet bytes=134217728 send_MiBps=80.0 recv_MiBps=60.0 send_s=1.600 recv_s=2.133
# bench boot kernel_s=1.100 k_setup_s=0.300 k_cpu_s=0.020 k_pci_s=0.250 k_initcalls_s=0.200 unpack_s=0.150 k_late_s=0.180 mounts_s=0.020 modules_s=0.300 net_s=0.010 hostroot_s=0.050 exec_s=0.030 guest_start_s=1.510
# bench boot suite=smoke kernel_s=1.000 k_setup_s=0.300 k_cpu_s=0.020 unpack_s=0.100 mounts_s=0.020 modules_s=0.130 net_s=0.010 hostroot_s=0.000 exec_s=0.010 guest_start_s=1.170 luns_s=0.040
# bench nvme-copy-64MiB dev=ns1 offload_s=0.020 readwrite_s=4.000 ratio=200.00 offload_fabric_bytes=1024 readwrite_fabric_bytes=134217728 fabric_ratio=131072.00 offload_fabric_pct=0.0015
# bench nvme-cfr-64MiB dev=ns1 bytes=67108864 offload_s=12.000 offload_path=fallback offload_data=verified offload_fabric_bytes=300 fallback_s=4.000 fallback_fabric_bytes=100 readwrite_s=1.500 offload_vs_fallback_time=3.00 offload_vs_fallback_fabric=3.00
# bench scsi-cfr-64MiB dev=lun0 bytes=67108864 offload_s=n/a fallback_s=n/a readwrite_s=0.500 offload_vs_fallback_time=n/a
# bench nvme-vs-usernet seqread_MiBps=12.0 usernet_recv_MiBps=60.0 seqread_of_usernet=0.20 seqwrite_MiBps=8.0 usernet_send_MiBps=80.0 seqwrite_of_usernet=0.10
# ledger nvme-cfr-64MiB: one 64 MiB copy each way
#                           (a) offload   (b) fallback (c) read+write
#   wall time s                   0.043          1.230          0.300
ok 12 nvme_cfr_64MiB
#   not a ledger row
# bench timing-nvmeof-1gbe dev=ns2 bytes=33554432 host_MiBps=105.0 offload_MiBps=2628.6 gain=25.03 host_link_h2c_pct=93.58 host_link_c2h_pct=93.57 offload_link_h2c_pct=0.04 offload_link_c2h_pct=0.00 host_wall_s=1.200 offload_wall_s=0.100
# bench timing-nvmeof-100gbe dev=ns3 bytes=33554432 host_MiBps=1098.8 offload_MiBps=1179.2 gain=1.07 host_link_h2c_pct=9.79 host_link_c2h_pct=9.79 offload_link_h2c_pct=0.00 offload_link_c2h_pct=0.00 host_wall_s=1.100 offload_wall_s=0.100
# ledger timing-nvmeof-1gbe: 16 x 2 MiB copied, modeled (host copy vs offload)
#   link mJ                          858.993          0.007
"#;

/// cargo bench and runner output (LF line ends).
const HOST: &str = r#"copy engine benchmark: 64 MiB, median of 5
  copy_file_range (baseline)     40.0 ms     1600 MiB/s
# bench guest-net path=tap mtu=65520
bench on 6.12: 20 passed, 0 failed, 0 skipped, 0 xfail (boot 2.3 s, total 300.0 s)
smoke on 6.12: 46 passed, 0 failed, 0 skipped, 0 xfail (boot 1.9 s, total 2.5 s)
smoke on 6.12: 46 passed, 0 failed, 0 skipped, 0 xfail (boot 2.4 s, total 2.9 s)
smoke on 6.12: 46 passed, 0 failed, 0 skipped, 0 xfail (boot 1.8 s, total 2.3 s)
# bench startup zones=131072 start_ms=556.3 start_base_ms=4.3 open_ms=473.1 rss_start_kib=13256 hwm_start_kib=21032 rss_report_kib=134600 hwm_report_kib=134600 report_core_ms=0.60 report_scsi_ms=13.17 report_scsi_peak_kib=14216
"#;

/// What scripts/bench.sh's awk printed for `bench.sh --table host.log
/// console.log`.
const WANT: &str = r#"copy engine (host, cargo bench copy_engine):
  copy_file_range (baseline)     40.0 ms     1600 MiB/s

large zoned device (host, cargo bench startup):
  backend start-up, 131072 zones: 556.3 ms (target <= 1000; 1 GiB: 4.3 ms), of it Device::open 473.1 ms
  RSS after start-up 13256 KiB (HWM 21032), + 14216 KiB peak for one full SCSI REPORT ZONES (target <= 102400 KiB)
  full REPORT ZONES: core 0.60 ms, SCSI front end 13.17 ms (target <= 100)

copy               dev    offload_s  readwrite_s  speedup    fabric_off     fabric_rw fab_ratio    off_fab_%
scsi-xcopy-64MiB   lun0       0.083        0.512     6.17             -             -         -            -
nvme-copy-64MiB    ns1        0.020        4.000   200.00          1024     134217728 131072.00       0.0015

copy_file_range (a) offload path, (b) copy_max_bytes 0, (c) guest read+write:
cfr              dev         a_s        b_s         c_s    a/b_s     fabric_a     fabric_b  a/b_fab a_path    a_data
nvme-cfr-64MiB   ns1      12.000      4.000       1.500     3.00          300          100     3.00 fallback  verified
scsi-cfr-64MiB   lun0        n/a        n/a       0.500      n/a            -            -        - -         -

fio, median of 3 interleaved rounds x 2 s per job (4 KiB IOPS, 1 MiB MiB/s; -vs- rows: first / second, the median of the per-round ratios; spread: (max - min) / median):
device            dev      rr_qd1    rw_qd1   rr_qd16   rw_qd16     seq_r     seq_w  rlat_us  wlat_us
scsi              lun0       1000       900      4000      3000     200.0     150.5    900.0   1000.1
  spread                      10%       16%       35%        7%       10%       13%       8%      20%
scsihd            sdb         500       450      2000      1500     100.0     100.0   1800.0   2000.2
  spread                       0%        4%       10%        7%       10%        0%       0%       5%
scsi-vs-scsihd    -          2.00      2.00      2.00      2.00      2.00      1.50        -        -
  spread                      10%        5%       20%        0%        5%       13%        -        -
scsi-vs-scsihd-wb -          1.40      1.20      1.50      1.10      1.60      0.95        -        -
  spread                      14%       17%        7%       23%       12%        9%        -        -
nvme              ns1         900       800      3000      2000     420.0     170.0   1000.0   1200.0
  spread                      11%        5%       10%        0%        7%        6%      10%       8%
nvme-vs-scsi      -          0.90      0.79      0.75      0.67      2.10      1.13        -        -
  spread                      11%       15%       13%       15%       10%        9%        -        -

timing model (modeled device classes, 16 x 2 MiB; link use % each way):
profile         dev   host_MiBs  off_MiBs    gain host_h2c% host_c2h%  off_h2c%  off_c2h%
nvmeof-1gbe     ns2       105.0    2628.6   25.03     93.58     93.57      0.04      0.00
nvmeof-100gbe   ns3      1098.8    1179.2    1.07      9.79      9.79      0.00      0.00

ledger nvme-cfr-64MiB: one 64 MiB copy each way
                          (a) offload   (b) fallback (c) read+write
  wall time s                   0.043          1.230          0.300
ledger timing-nvmeof-1gbe: 16 x 2 MiB copied, modeled (host copy vs offload)
  link mJ                          858.993          0.007

guest network tap (MTU 65520) raw TCP: guest->host 80.0 MiB/s, host->guest 60.0 MiB/s (134217728 bytes each way)
NVMe/TCP seq 1 MiB: read 12.0 MiB/s = 0.20 x raw host->guest; write 8.0 MiB/s = 0.10 x raw guest->host

boot breakdown (seconds; the smoke run is the boot target's):
  bench: run start to the first KTAP line 2.3 (runner) = set-up, QEMU and firmware before the kernel's clock 0.79 + kernel 1.100 + /init 0.38 + exec 0.030 (tool started at 1.510)
    kernel: setup 0.300, CPU 0.020, to the first PCI probe 0.250, initcalls 0.200, unpack the initramfs 0.150, late initcalls and freeing 0.180
    /init: mounts 0.020, modprobe 0.300, network 0.010, host root 0.050
  smoke: run start to the first KTAP line 1.9 (runner) = set-up, QEMU and firmware before the kernel's clock 0.73 + kernel 1.000 + /init 0.16 + exec 0.010 (tool started at 1.170)
    kernel: setup 0.300, CPU 0.020, to the first PCI probe -, initcalls -, unpack the initramfs 0.100, late initcalls and freeing -
    /init: mounts 0.020, modprobe 0.130, network 0.010, host root 0.000; every LUN there 0.040 after the tool started

targets (issue 17):
  SCSI 4 KiB rand read QD1    =  1.40 x scsi-hd (writeback) [1.30..1.50] target >= 1.2x   met
  SCSI 4 KiB rand write QD1   =  1.20 x scsi-hd (writeback) [1.10..1.30] target >= 1.2x   undecided (median met, range straddles)
  SCSI 4 KiB rand read QD16   =  1.50 x scsi-hd (writeback) [1.45..1.55] target >= 1.2x   met
  SCSI 4 KiB rand write QD16  =  1.10 x scsi-hd (writeback) [1.00..1.25] target >= 1.2x   undecided (median NOT met, range straddles)
  SCSI 1 MiB seq read         =  1.60 x scsi-hd (writeback) [1.50..1.70] target >= 1.0x   met
  SCSI 1 MiB seq write        =  0.95 x scsi-hd (writeback) [0.90..0.99] target >= 1.0x   NOT met
  NVMe/TCP seq read    420.0 MiB/s =  5.19 x 81 (slirp) [4.94..5.31]   target >= 5x     undecided (median met, range straddles)
  NVMe/TCP seq write   170.0 MiB/s =  5.31 x 32 (slirp) [5.16..5.47]   target >= 5x     met
  NVMe/TCP QD1 read  IOPS =  0.90 x our SCSI disk [0.85..0.95] target >= 0.8x   met
  NVMe/TCP QD1 write IOPS =  0.79 x our SCSI disk [0.70..0.82] target >= 0.8x   undecided (median NOT met, range straddles)
  boot to the first test (smoke, 6.12) 1.9 s of 3 runs [1.8..2.4] target <= 2 s    undecided (median met, range straddles)
  timing contrast: offload gain 1 GbE 25.03x (link 93.57% -> 0.04%), 100 GbE 1.07x   target >= 10x and <= 1.5x   reproduced
"#;

/// The logs in the order bench.sh passes them: host output, then the
/// console log.
fn sample() -> String {
    format!("{HOST}{}", CONSOLE.replace('\n', "\r\n"))
}

#[test]
fn prints_what_the_awk_printed() {
    let got = summarize(&sample());
    if got != WANT {
        for (i, (g, w)) in got.lines().zip(WANT.lines()).enumerate() {
            assert_eq!(g, w, "line {}", i + 1);
        }
        assert_eq!(got, WANT);
    }
}

#[test]
fn says_so_when_there_is_nothing() {
    assert_eq!(summarize(""), "no # bench lines\n");
    assert_eq!(summarize("no output\n"), "no # bench lines\n");
    assert_eq!(
        summarize("# benchmark x=1\n# bench guest-net path=tap mtu=1500\n"),
        "no # bench lines\n",
        "the network path alone prints nothing"
    );
}

#[test]
fn the_boot_breakdown_alone_is_no_bench_line() {
    let got = summarize("# bench boot kernel_s=1.0 exec_s=0.1 guest_start_s=1.5 suite=smoke\n");
    assert_eq!(
        got,
        "boot breakdown (seconds; the smoke run is the boot target's):\n  \
         smoke: kernel 1.0 + /init 0.40 + exec 0.1 = tool started at 1.5 on the kernel's clock\n    \
         kernel: setup -, CPU -, to the first PCI probe -, initcalls -, unpack the initramfs -, \
         late initcalls and freeing -\n    \
         /init: mounts -, modprobe -, network -, host root -\n\n\
         no # bench lines\n"
    );
}

#[test]
fn verdicts_need_the_whole_range() {
    use Verdict::*;
    let undecided = |median_met| Undecided { median_met };
    // (median, min, max, verdict): at least 1.2 is met only when the
    // minimum clears it, NOT met only when the maximum misses it.
    for (m, lo, hi, want) in [
        (1.3, 1.2, 1.4, Met),
        (1.3, 1.19, 1.4, undecided(true)),
        (1.1, 1.0, 1.2, undecided(false)),
        (1.1, 1.0, 1.19, NotMet),
        (1.2, 1.2, 1.2, Met),
    ] {
        assert_eq!(
            Verdict::at_least(m, lo, hi, 1.2),
            want,
            "{m} [{lo}..{hi}] >= 1.2"
        );
    }
    // At most 2 s: met only when the maximum is at most 2.
    for (m, lo, hi, want) in [
        (1.5, 1.0, 2.0, Met),
        (1.9, 1.8, 2.4, undecided(true)),
        (2.1, 1.8, 2.4, undecided(false)),
        (2.5, 2.01, 3.0, NotMet),
    ] {
        assert_eq!(
            Verdict::at_most(m, lo, hi, 2.0),
            want,
            "{m} [{lo}..{hi}] <= 2"
        );
    }
    assert_eq!(
        undecided(false).to_string(),
        "undecided (median NOT met, range straddles)"
    );
}

/// The targets section of a summary.
fn targets(text: &str) -> Vec<String> {
    let s = summarize(text);
    s.split_once("targets (issue 17):\n")
        .map(|(_, t)| t.lines().map(|l| l.trim_start().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn each_target_reads_its_range() {
    let t = targets(
        "# bench scsi-vs-scsihd-wb randread_qd1=1.25 randread_qd1_range=1.20..1.30 \
         randwrite_qd1=1.25 randwrite_qd1_range=1.10..1.30 randread_qd16=1.10 \
         randread_qd16_range=1.00..1.19 randwrite_qd16=1.3 seqread_1M=0.99 \
         seqread_1M_range=0.90..1.00 seqwrite_1M=1.00\n",
    );
    let verdicts: Vec<&str> = t
        .iter()
        .map(|l| l.split_once("x   ").map_or("", |v| v.1))
        .collect();
    assert_eq!(
        verdicts,
        [
            "met",
            "undecided (median met, range straddles)",
            "NOT met",
            "met",
            "undecided (median NOT met, range straddles)",
            "met",
        ],
        "{t:#?}"
    );
    assert_eq!(
        t[3],
        "SCSI 4 KiB rand write QD16  =   1.3 x scsi-hd (writeback)              target >= 1.2x   met",
        "no range: the median decides"
    );

    // NVMe/TCP sequential: 5 x 81 = 405 MiB/s read, 5 x 32 = 160 write.
    let t = targets(
        "# bench fio-nvme seqread_1M_MiBps=405.0 seqread_1M_MiBps_range=405.0..500.0 \
         seqwrite_1M_MiBps=150.0 seqwrite_1M_MiBps_range=100.0..159.9\n",
    );
    assert!(
        t[0].ends_with("5.00 x 81 (slirp) [5.00..6.17]   target >= 5x     met"),
        "{}",
        t[0]
    );
    assert!(t[1].ends_with("target >= 5x     NOT met"), "{}", t[1]);

    // QD1 IOPS: a line without ranges decides on its median.
    let t = targets("# bench nvme-vs-scsi randread_qd1=0.80 randwrite_qd1=0.79\n");
    assert!(
        t[0].ends_with("0.80 x our SCSI disk              target >= 0.8x   met"),
        "{}",
        t[0]
    );
    assert!(t[1].ends_with("NOT met"), "{}", t[1]);
}

#[test]
fn the_boot_target_is_the_median_of_the_smoke_runs() {
    let run = |s: &str| format!("smoke on 6.12: 46 passed, 0 failed (boot {s} s, total 3.0 s)\n");
    let t = targets(
        &[
            run("2.2"),
            run("1.9"),
            "bench on 7.2: x (boot 9.0 s)\n".into(),
            run("2.0"),
            run("1.5"),
        ]
        .concat(),
    );
    assert_eq!(
        t,
        [
            "boot to the first test (smoke, 6.12) 1.9 s of 4 runs [1.5..2.2] target <= 2 s    \
          undecided (median met, range straddles)"
        ]
    );
    let t = targets(&run("2.01"));
    assert_eq!(t, ["boot to the first test (smoke, 6.12) 2.0 s of 1 runs            target <= 2 s    NOT met"]);
}

#[test]
fn the_contrast_needs_both_profiles() {
    let one =
        "# bench timing-nvmeof-1gbe gain=25.0 host_link_c2h_pct=90 offload_link_h2c_pct=0.1\n";
    let hundred = "# bench timing-nvmeof-100gbe gain=1.6\n";
    assert!(targets(one).is_empty());
    assert_eq!(
        targets(&format!("{one}{hundred}")),
        [
            "timing contrast: offload gain 1 GbE 25.0x (link 90% -> 0.1%), 100 GbE 1.6x   \
          target >= 10x and <= 1.5x   NOT reproduced"
        ]
    );
}

#[test]
fn partial_lines_print_placeholders() {
    // A fio line without ranges has no spread row; missing cells are "-".
    let s = summarize("# bench fio-scsi dev=lun0 randread_qd1_iops=1000\n");
    assert_eq!(
        s,
        "fio (4 KiB IOPS, 1 MiB MiB/s; -vs- rows: first / second):\n\
         device            dev      rr_qd1    rw_qd1   rr_qd16   rw_qd16     seq_r     seq_w  rlat_us  wlat_us\n\
         scsi              lun0       1000         -         -         -         -         -        -        -\n\n"
    );
    // A target whose number is missing is left out.
    assert!(targets("# bench scsi-vs-scsihd-wb seqread_1M=1.0\n").is_empty());
    assert!(targets("# bench fio-nvme seqread_1M_MiBps=-\n").is_empty());
}

/// The job names are the guest's (guest-tools `bench::fio::JOBS`), and so
/// are the range suffix and the timing profiles.
#[test]
fn keys_are_the_guests() {
    let mut ours = FIO_JOBS.to_vec();
    let mut guest: Vec<&str> = zonecopy_guest::bench::fio::JOBS
        .iter()
        .map(|j| j.name)
        .collect();
    ours.sort_unstable();
    guest.sort_unstable();
    assert_eq!(ours, guest);
    assert_eq!(
        parse::RANGE_SUFFIX,
        zonecopy_guest::bench::stats::RANGE_SUFFIX
    );
    // The guest names a timing line `timing-PROFILE` after the contract's
    // profile.
    let profiles: Vec<&str> = zonecopy_contract::timing::BUILTIN
        .iter()
        .map(|p| p.0)
        .collect();
    for line in [targets::TIMING_1GBE, targets::TIMING_100GBE] {
        let profile = line.strip_prefix("timing-").unwrap_or(line);
        assert!(profiles.contains(&profile), "{line}: not a builtin profile");
    }
}

#[test]
fn the_sample_parses_into_its_records() {
    let records = parse::parse(&sample());
    let names: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Bench(BenchLine { name, .. }) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 19, "{names:?}");
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::Run(_)))
            .count(),
        4
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| matches!(r, Record::Ledger(_)))
            .count(),
        5
    );
}

#[test]
fn a_nan_meets_nothing() {
    // A cell without data: no spread, and the target is not met.
    let t = targets(
        "# bench nvme-vs-scsi randread_qd1=nan randread_qd1_range=nan..1.0 randwrite_qd1=0.9\n",
    );
    assert!(
        t[0].ends_with("undecided (median NOT met, range straddles)"),
        "{}",
        t[0]
    );
    let s = summarize("# bench fio-scsi randread_qd1_iops=nan randread_qd1_iops_range=1..2\n");
    assert!(
        s.contains("\n  spread                        -         -"),
        "{s}"
    );
    let t = targets("# bench timing-nvmeof-1gbe gain=25\n# bench timing-nvmeof-100gbe gain=nan\n");
    assert!(t[0].ends_with("NOT reproduced"), "{}", t[0]);
}

#[test]
fn numbers_print_as_awk_printed_them() {
    use super::render::{awk_str, fixed};
    let got: Vec<String> = [
        1.8,
        2.0,
        10000000.5,
        0.0001234567,
        1234567.0,
        0.5,
        123456.75,
        0.00001,
        2.30,
        -1.25,
    ]
    .map(awk_str)
    .to_vec();
    // mawk's "%s" of each (CONVFMT %.6g, integers as integers).
    assert_eq!(
        got,
        [
            "1.8",
            "2",
            "1e+07",
            "0.000123457",
            "1234567",
            "0.5",
            "123457",
            "1e-05",
            "2.3",
            "-1.25"
        ]
    );
    assert_eq!(fixed(0.125, 2), "0.12", "ties to even, as C");
    assert_eq!(fixed(f64::NAN, 1), "nan");
    assert_eq!(fixed(f64::NEG_INFINITY, 1), "-inf");
}
