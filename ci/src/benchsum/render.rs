//! The summary's sections but the targets, one renderer each: a renderer
//! appends its section (ending with an empty line) to `out` and returns
//! whether it printed anything.

use zonecopy_contract::Suite;

use super::{
    parse::{num, BenchLine, Kind, MISSING},
    Logs,
};

/// The fio jobs (guest-tools `bench::fio::JOBS`) in the order of the fio
/// table's columns and of the SCSI targets: 4 KiB random read and write at
/// QD1 and QD16, then 1 MiB sequential read and write.
pub const FIO_JOBS: [&str; 6] = [
    "randread_qd1",
    "randwrite_qd1",
    "randread_qd16",
    "randwrite_qd16",
    "seqread_1M",
    "seqwrite_1M",
];
/// How many of [`FIO_JOBS`] are 4 KiB jobs (IOPS); the rest are 1 MiB
/// (MiB/s).
pub const FIO_4K_JOBS: usize = 4;
/// The QD1 latency cells of a device's fio line, read then write.
const FIO_LATENCY_KEYS: [&str; 2] = ["randread_qd1_lat_us", "randwrite_qd1_lat_us"];

/// C's `%.Nf`, with C's spelling of infinities and NaNs.
pub fn fixed(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    format!("{x:.decimals$}")
}

/// A number as awk prints it with `%s`: an integer as one, anything else
/// as C's `%.6g`.
pub fn awk_str(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        // In range and integral: the cast is exact.
        return format!("{}", x as i64);
    }
    if !x.is_finite() {
        return fixed(x, 0);
    }
    // %.6g: 6 significant digits, exponent form outside 1e-4..1e6,
    // trailing zeros dropped.
    let e = format!("{x:.5e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        trim(&format!("{x:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    }
}

/// `c` padded to `width` (right-aligned; a negative width left-aligns,
/// 0 does not pad), as C's `%Ns` / `%-Ns` / `%s`.
fn pad(c: &str, width: isize) -> String {
    let n = width.unsigned_abs();
    if width < 0 {
        format!("{c:<n$}")
    } else {
        format!("{c:>n$}")
    }
}

/// One table row: each cell padded to its width ([`pad`]), one space
/// apart.
fn row<S: AsRef<str>>(widths: &[isize], cells: &[S]) -> String {
    let cells: Vec<String> = widths
        .iter()
        .zip(cells)
        .map(|(w, c)| pad(c.as_ref(), *w))
        .collect();
    cells.join(" ") + "\n"
}

/// A table: the first column is the line's label, each other column a
/// field of the line.
struct Table {
    /// The first column's head and width.
    label: (&'static str, isize),
    /// Each other column's head, the field it shows and its width.
    columns: &'static [(&'static str, &'static str, isize)],
}

impl Table {
    fn widths(&self) -> Vec<isize> {
        std::iter::once(self.label.1)
            .chain(self.columns.iter().map(|c| c.2))
            .collect()
    }

    fn head(&self) -> String {
        let heads: Vec<&str> = std::iter::once(self.label.0)
            .chain(self.columns.iter().map(|c| c.0))
            .collect();
        row(&self.widths(), &heads)
    }

    fn line(&self, label: &str, b: &BenchLine) -> String {
        let cells: Vec<&str> = std::iter::once(label)
            .chain(self.columns.iter().map(|c| b.field(c.1)))
            .collect();
        row(&self.widths(), &cells)
    }
}

/// The offloaded copies vs guest read+write (`# bench NAME-64MiB`).
const COPIES: Table = Table {
    label: ("copy", -18),
    columns: &[
        ("dev", "dev", -5),
        ("offload_s", "offload_s", 10),
        ("readwrite_s", "readwrite_s", 12),
        ("speedup", "ratio", 8),
        ("fabric_off", "offload_fabric_bytes", 13),
        ("fabric_rw", "readwrite_fabric_bytes", 13),
        ("fab_ratio", "fabric_ratio", 9),
        ("off_fab_%", "offload_fabric_pct", 12),
    ],
};

/// copy_file_range's three ways (`# bench KIND-cfr-64MiB`).
const CFR: Table = Table {
    label: ("cfr", -16),
    columns: &[
        ("dev", "dev", -5),
        ("a_s", "offload_s", 9),
        ("b_s", "fallback_s", 10),
        ("c_s", "readwrite_s", 11),
        ("a/b_s", "offload_vs_fallback_time", 8),
        ("fabric_a", "offload_fabric_bytes", 12),
        ("fabric_b", "fallback_fabric_bytes", 12),
        ("a/b_fab", "offload_vs_fallback_fabric", 8),
        ("a_path", "offload_path", -9),
        ("a_data", "offload_data", 0),
    ],
};

/// The timing model's profiles (`# bench timing-PROFILE`).
const TIMING: Table = Table {
    label: ("profile", -15),
    columns: &[
        ("dev", "dev", -5),
        ("host_MiBs", "host_MiBps", 9),
        ("off_MiBs", "offload_MiBps", 9),
        ("gain", "gain", 7),
        ("host_h2c%", "host_link_h2c_pct", 9),
        ("host_c2h%", "host_link_c2h_pct", 9),
        ("off_h2c%", "offload_link_h2c_pct", 9),
        ("off_c2h%", "offload_link_c2h_pct", 9),
    ],
};

/// The fio table's widths: label, dev, the jobs, the two latencies.
const FIO_WIDTHS: [isize; 10] = [-17, -5, 9, 9, 9, 9, 9, 9, 8, 8];

/// `heading`, the rows and an empty line, if there are rows.
fn section(out: &mut String, heading: &str, rows: &[String]) -> bool {
    if rows.is_empty() {
        return false;
    }
    out.push_str(heading);
    for r in rows {
        out.push_str(r);
    }
    out.push('\n');
    true
}

/// The lines as they are, one per row.
fn lines(rows: &[&str], indent: &str) -> Vec<String> {
    rows.iter().map(|r| format!("{indent}{r}\n")).collect()
}

/// The cost of recording (`# bench trace_overhead`), and what it comes
/// to at the guest's 4 KiB QD1 write latency (`# bench fio-scsi`).
pub(super) fn recording(logs: &Logs<'_>, out: &mut String) -> bool {
    let Some(t) = logs.last_of(Kind::TraceOverhead) else {
        return false;
    };
    let tov = t.field("overhead_us");
    let mut rows = vec![format!(
        "  4 KiB QD1 in-process (scsi::Target::execute): off {} IOPS, whole data {} IOPS \
         (on/off {}), digest {} IOPS (on/off {}); +{tov} us per command\n",
        t.field("iops_off"),
        t.field("iops_whole"),
        t.field("ratio_whole"),
        t.field("iops_digest"),
        t.field("ratio_digest"),
    )];
    let wlat = logs
        .last_named("fio-scsi")
        .map(|b| b.field("randwrite_qd1_lat_us"));
    if let Some(w) = wlat.filter(|w| !w.is_empty() && *w != MISSING) {
        rows.push(format!(
            "  at the guest's 4 KiB QD1 write latency (fio-scsi, {w} us): on/off {} \
             (estimated: latency / (latency + {tov} us))\n",
            fixed(num(w) / (num(w) + num(tov)), 3)
        ));
    }
    section(
        out,
        "recording (host, cargo bench trace_overhead):\n",
        &rows,
    )
}

/// The copy engine's rows (cargo bench copy_engine).
pub(super) fn engine(logs: &Logs<'_>, out: &mut String) -> bool {
    let rows = lines(&logs.engine, "");
    section(out, "copy engine (host, cargo bench copy_engine):\n", &rows)
}

/// The large zoned device against issue 4's targets (`# bench startup`).
pub(super) fn startup(logs: &Logs<'_>, out: &mut String) -> bool {
    let mut rows = Vec::new();
    for s in logs.of(|k| k == Kind::Startup) {
        let f = |k| s.field(k);
        rows.push(format!(
            "  backend start-up, {} zones: {} ms (target <= 1000; 1 GiB: {} ms), of it Device::open {} ms\n",
            f("zones"),
            f("start_ms"),
            f("start_base_ms"),
            f("open_ms")
        ));
        rows.push(format!(
            "  RSS after start-up {} KiB (HWM {}), + {} KiB peak for one full SCSI REPORT ZONES \
             (target <= 102400 KiB)\n",
            f("rss_start_kib"),
            f("hwm_start_kib"),
            f("report_scsi_peak_kib")
        ));
        rows.push(format!(
            "  full REPORT ZONES: core {} ms, SCSI front end {} ms (target <= 100)\n",
            f("report_core_ms"),
            f("report_scsi_ms")
        ));
    }
    section(
        out,
        "large zoned device (host, cargo bench startup):\n",
        &rows,
    )
}

/// Offloaded copies vs guest read+write.
pub(super) fn copies(logs: &Logs<'_>, out: &mut String) -> bool {
    let rows: Vec<String> = logs
        .of(|k| k == Kind::Copy)
        .map(|b| COPIES.line(&b.name, b))
        .collect();
    section(out, &COPIES.head(), &rows)
}

/// copy_file_range: offload path, fallback, guest read+write.
pub(super) fn cfr(logs: &Logs<'_>, out: &mut String) -> bool {
    let rows: Vec<String> = logs
        .of(|k| k == Kind::Cfr)
        .map(|b| CFR.line(&b.name, b))
        .collect();
    let heading = "copy_file_range (a) offload path, (b) copy_max_bytes 0, (c) guest read+write:\n"
        .to_owned()
        + &CFR.head();
    section(out, &heading, &rows)
}

/// `(max - min) / median` of a cell in percent, `-` without a range or a
/// positive median (a NaN median has none).
fn spread(b: &BenchLine, key: &str) -> String {
    let c = b.cell(key);
    let median = num(c.median);
    if c.range.is_none() || median.is_nan() || median <= 0.0 {
        return MISSING.into();
    }
    fixed((num(c.hi()) - num(c.lo())) / median * 100.0, 0) + "%"
}

/// A fio row (and its spread row when the cells have ranges): a device's
/// IOPS and MiB/s (`fio-DEVICE`, `ratios` false) or the ratios of two
/// (`A-vs-B`).
fn fio_rows(label: &str, b: &BenchLine, ratios: bool) -> Vec<String> {
    let keys: Vec<String> = FIO_JOBS
        .iter()
        .enumerate()
        .map(|(i, j)| match (ratios, i < FIO_4K_JOBS) {
            (true, _) => (*j).to_owned(),
            (false, true) => format!("{j}_iops"),
            (false, false) => format!("{j}_MiBps"),
        })
        .chain(FIO_LATENCY_KEYS.iter().map(|k| (*k).to_owned()))
        .collect();
    let cells = [label, b.field("dev")]
        .into_iter()
        .chain(keys.iter().map(|k| b.field(k)));
    let cells: Vec<&str> = cells.collect();
    let mut rows = vec![row(&FIO_WIDTHS, &cells)];
    if b.cell(&keys[0]).range.is_some() {
        let spreads = ["  spread".to_owned(), String::new()]
            .into_iter()
            .chain(keys.iter().map(|k| spread(b, k)));
        rows.push(row(&FIO_WIDTHS, &spreads.collect::<Vec<_>>()));
    }
    rows
}

/// fio on every device, and the ratios of pairs of them.
pub(super) fn fio(logs: &Logs<'_>, out: &mut String) -> bool {
    let mut rows = Vec::new();
    for b in logs.of(|k| matches!(k, Kind::FioDevice(_) | Kind::FioRatio)) {
        rows.extend(match b.kind() {
            Kind::FioDevice(dev) => fio_rows(dev, b, false),
            _ => fio_rows(&b.name, b, true),
        });
    }
    let heading = match logs.last_of(Kind::FioPlan) {
        None => "fio (4 KiB IOPS, 1 MiB MiB/s; -vs- rows: first / second):\n".to_owned(),
        Some(p) => format!(
            "fio, median of {} interleaved rounds x {} s per job (4 KiB IOPS, 1 MiB MiB/s; \
             -vs- rows: first / second, the median of the per-round ratios; spread: \
             (max - min) / median):\n",
            p.field("rounds"),
            p.field("runtime_s")
        ),
    };
    let heads = [
        "device", "dev", "rr_qd1", "rw_qd1", "rr_qd16", "rw_qd16", "seq_r", "seq_w", "rlat_us",
        "wlat_us",
    ];
    section(out, &(heading + &row(&FIO_WIDTHS, &heads)), &rows)
}

/// The device timing model's profiles.
pub(super) fn timing(logs: &Logs<'_>, out: &mut String) -> bool {
    let rows: Vec<String> = logs
        .benches
        .iter()
        .filter_map(|b| match b.kind() {
            Kind::Timing(profile) => Some(TIMING.line(profile, b)),
            _ => None,
        })
        .collect();
    let heading = "timing model (modeled device classes, 16 x 2 MiB; link use % each way):\n"
        .to_owned()
        + &TIMING.head();
    section(out, &heading, &rows)
}

/// The per-copy ledger blocks, as the guest printed them.
pub(super) fn ledger(logs: &Logs<'_>, out: &mut String) -> bool {
    section(out, "", &lines(&logs.ledger, ""))
}

/// Raw TCP between guest and host over the guest's network path, and
/// NVMe/TCP's sequential numbers against it.
pub(super) fn network(logs: &Logs<'_>, out: &mut String) -> bool {
    let path = logs.last_of(Kind::GuestNet).map_or_else(
        || "user networking".to_owned(),
        |n| format!("guest network {} (MTU {})", n.field("path"), n.field("mtu")),
    );
    let mut rows = Vec::new();
    for b in logs.of(|k| matches!(k, Kind::Usernet | Kind::NvmeVsUsernet)) {
        let f = |k| b.field(k);
        rows.push(if b.kind() == Kind::Usernet {
            format!(
                "{path} raw TCP: guest->host {} MiB/s, host->guest {} MiB/s ({} bytes each way)\n",
                f("send_MiBps"),
                f("recv_MiBps"),
                f("bytes")
            )
        } else {
            format!(
                "NVMe/TCP seq 1 MiB: read {} MiB/s = {} x raw host->guest; write {} MiB/s = {} x \
                 raw guest->host\n",
                f("seqread_MiBps"),
                f("seqread_of_usernet"),
                f("seqwrite_MiBps"),
                f("seqwrite_of_usernet")
            )
        });
    }
    section(out, "", &rows)
}

/// Where each guest's boot went (`# bench boot`, one per suite: the
/// smoke run's `suite=smoke`, the bench guest's without), against the
/// runner's time to the first KTAP line of that suite's first run.
pub(super) fn boot(logs: &Logs<'_>, out: &mut String) -> bool {
    // Each suite in the order of its first line, with its last line.
    let mut suites: Vec<(&str, &BenchLine)> = Vec::new();
    for b in logs.of(|k| k == Kind::Boot) {
        let su = match b.field("suite") {
            MISSING => Suite::Bench.as_str(),
            s => s,
        };
        match suites.iter_mut().find(|(s, _)| *s == su) {
            Some(e) => e.1 = b,
            None => suites.push((su, b)),
        }
    }
    let mut rows = Vec::new();
    for (su, b) in suites {
        let f = |k| b.field(k);
        let (start, kernel, exec) = (f("guest_start_s"), f("kernel_s"), f("exec_s"));
        let init = fixed(num(start) - num(kernel) - num(exec), 2);
        rows.push(match logs.first_run(su) {
            Some(r) => format!(
                "  {su}: run start to the first KTAP line {} (runner) = set-up, QEMU and firmware \
                 before the kernel's clock {} + kernel {kernel} + /init {init} + exec {exec} \
                 (tool started at {start})\n",
                r.boot,
                fixed(num(&r.boot) - num(start), 2)
            ),
            None => format!(
                "  {su}: kernel {kernel} + /init {init} + exec {exec} = tool started at {start} \
                 on the kernel's clock\n"
            ),
        });
        rows.push(format!(
            "    kernel: setup {}, CPU {}, to the first PCI probe {}, initcalls {}, unpack the \
             initramfs {}, late initcalls and freeing {}\n",
            f("k_setup_s"),
            f("k_cpu_s"),
            f("k_pci_s"),
            f("k_initcalls_s"),
            f("unpack_s"),
            f("k_late_s")
        ));
        let luns = f("luns_s");
        let luns = if luns == MISSING {
            String::new()
        } else {
            format!("; every LUN there {luns} after the tool started")
        };
        rows.push(format!(
            "    /init: mounts {}, modprobe {}, network {}, host root {}{luns}\n",
            f("mounts_s"),
            f("modules_s"),
            f("net_s"),
            f("hostroot_s")
        ));
    }
    section(
        out,
        "boot breakdown (seconds; the smoke run is the boot target's):\n",
        &rows,
    )
}
