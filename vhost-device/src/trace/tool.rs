//! `zonecopy-vhost trace ...`: print, stats and replay of a recorded
//! trace.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use serde_json::Value;

use super::{
    format::{self, NvmeRecord, Record, ScsiRecord},
    replay::{self, WorkDir},
};
use crate::scsi::commands::{lookup, Lookup};

/// Read a trace that `zonecopy-vhost --trace FILE` (or the control command
/// `{"cmd":"trace","op":"start"}`) recorded. Times are seconds since the
/// backend started, latencies microseconds, LBAs and lengths logical blocks
/// of the addressed device.
#[derive(Parser, Debug)]
#[command(name = "zonecopy-vhost trace")]
pub struct TraceCli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// One line per command or control action, in completion order:
    /// device, queue, sequence number, completion time (s), latency (us),
    /// command, LBA+blocks, result.
    Print {
        /// The trace file (FILE.1, FILE.2, ... are read too, oldest first).
        file: PathBuf,
        #[command(flatten)]
        filter: Filter,
    },
    /// Counts, bytes (data-out plus data-in) and latency min/avg/max/p99
    /// in microseconds, per command.
    Stats { file: PathBuf },
    /// Execute the commands again, in order, against copies of the images
    /// taken at trace start, on a fresh in-process backend (no transport);
    /// compare every status, sense, CQE and data-in digest; print the first
    /// divergence and each device's data checksum (CRC32C). Exit status 1
    /// on any divergence.
    Replay { file: PathBuf },
    /// Write the trace as pcapng for Wireshark/tshark: the NVMe/TCP PDUs
    /// as they crossed each connection (port 4420), each SCSI command as
    /// iSCSI PDUs (port 3260; whole-data traces carry the data).
    Pcap {
        file: PathBuf,
        /// The pcapng file to write.
        out: PathBuf,
    },
}

/// Which commands `print` shows (all given must match).
#[derive(clap::Args, Debug, Default)]
struct Filter {
    /// Device name: lun0, t1.lun0, ns1 (NVMe admin commands: ctrlN).
    #[arg(long, value_name = "NAME")]
    dev: Option<String>,
    /// Command name (case-insensitive substring, e.g. "write", "copy") or
    /// opcode in hex (0x8a).
    #[arg(long, value_name = "NAME|0xOP")]
    op: Option<String>,
    /// good, error, or a status in hex: the SCSI status byte (0x02) or the
    /// NVMe status field, SCT and SC ((SCT << 8) | SC, e.g. 0x281).
    #[arg(long, value_name = "good|error|0xS")]
    status: Option<String>,
    /// Only commands touching logical blocks START..=END (END default:
    /// START).
    #[arg(long, value_name = "START[-END]")]
    lba: Option<String>,
}

/// One command, summarized.
struct Line {
    dev: String,
    queue: String,
    seq: u64,
    done_ns: u64,
    latency_ns: u64,
    name: String,
    opcode: u8,
    lba: Option<(u64, u64)>,
    good: bool,
    status: u16,
    result: String,
    bytes: u64,
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x))
}

/// LBA and block count of the SCSI commands that have them (SBC-4 and
/// ZBC-2 CDB layouts).
fn scsi_lba(cdb: &[u8]) -> Option<(u64, u64)> {
    let g = |r: std::ops::Range<usize>| cdb.get(r).map(be);
    match *cdb.first()? {
        0x08 | 0x0A => Some((g(1..4)? & 0x1F_FFFF, g(4..5)?)),
        0x28 | 0x2A | 0x2F | 0x41 => Some((g(2..6)?, g(7..9)?)),
        0x88 | 0x8A | 0x8F | 0x93 => Some((g(2..10)?, g(10..14)?)),
        0x94 | 0x95 => Some((g(2..10)?, 0)),
        _ => None,
    }
}

fn scsi_line(r: &ScsiRecord, dev: String) -> Line {
    let name = match lookup(&r.cdb) {
        Lookup::Found(c) => c.name.to_owned(),
        _ => "unsupported".to_owned(),
    };
    let result = match (r.status, r.sense.get(2), r.sense.get(12), r.sense.get(13)) {
        (0, ..) => "GOOD".to_owned(),
        (s, Some(k), Some(a), Some(q)) => {
            format!("status {s:#04x} sense {:x}/{a:02x}/{q:02x}", k & 0xF)
        }
        (s, ..) => format!("status {s:#04x}"),
    };
    Line {
        dev,
        queue: format!("q{}", r.queue),
        seq: r.seq,
        done_ns: r.done_ns,
        latency_ns: r.done_ns.saturating_sub(r.arrive_ns),
        name,
        opcode: r.cdb.first().copied().unwrap_or(0),
        lba: scsi_lba(&r.cdb),
        good: r.status == 0,
        status: u16::from(r.status),
        result,
        bytes: u64::from(r.data_out.len) + u64::from(r.data_in.len),
    }
}

/// NVMe command names (NVMe Base 2.1 Figures 28 and 91, ZNS 2.1 Figure
/// 29, Fabrics 6.1).
fn nvme_name(admin: bool, op: u8) -> &'static str {
    match (admin, op) {
        (_, 0x7F) => "Fabrics",
        (true, 0x02) => "Get Log Page",
        (true, 0x06) => "Identify",
        (true, 0x09) => "Set Features",
        (true, 0x0A) => "Get Features",
        (true, 0x0C) => "Asynchronous Event Request",
        (true, 0x18) => "Keep Alive",
        (true, _) => "admin",
        (false, 0x00) => "Flush",
        (false, 0x01) => "Write",
        (false, 0x02) => "Read",
        (false, 0x08) => "Write Zeroes",
        (false, 0x09) => "Dataset Management",
        (false, 0x19) => "Copy",
        (false, 0x79) => "Zone Management Send",
        (false, 0x7A) => "Zone Management Receive",
        (false, 0x7D) => "Zone Append",
        (false, _) => "I/O",
    }
}

fn nvme_line(r: &NvmeRecord) -> Line {
    let admin = r.qid == 0;
    let op = r.sqe[0];
    let sqe = crate::nvme::Sqe(r.sqe);
    let lba = match op {
        0x01 | 0x02 | 0x08 | 0x7D if !admin => {
            Some((sqe.qw(10), u64::from(sqe.dw(12) & 0xFFFF) + 1))
        }
        0x19 | 0x79 | 0x7A if !admin => Some((sqe.qw(10), 0)),
        _ => None,
    };
    let status = r.cqe.map_or(0, |c| c.status & 0x7FF);
    let result = match r.cqe {
        None => "deferred".to_owned(),
        Some(_) if status == 0 => "SUCCESS".to_owned(),
        Some(c) => format!(
            "SCT {:x}h SC {:02x}h (dw0 {:#x})",
            status >> 8,
            status & 0xFF,
            c.dw0
        ),
    };
    let nsid = sqe.nsid();
    let dev = if admin || nsid == 0 || nsid == u32::MAX {
        format!("ctrl{}", r.cntlid)
    } else {
        format!("ns{nsid}")
    };
    Line {
        dev,
        queue: format!("c{}q{}", r.cntlid, r.qid),
        seq: r.seq,
        done_ns: r.done_ns,
        latency_ns: r.done_ns.saturating_sub(r.arrive_ns),
        name: nvme_name(admin, op).to_owned(),
        opcode: op,
        lba,
        good: status == 0,
        status,
        result,
        bytes: u64::from(r.data_out.len) + u64::from(r.data_in.len),
    }
}

fn lines(records: &[Record], meta: &Value) -> Vec<Line> {
    let start = meta["start_ns"].as_u64().unwrap_or(0);
    records
        .iter()
        .filter_map(|rec| {
            let mut l = match rec {
                Record::Scsi(r) => {
                    let dev = match r.target {
                        0 => format!("lun{}", r.lun),
                        t => format!("t{t}.lun{}", r.lun),
                    };
                    scsi_line(r, dev)
                }
                Record::Nvme(r) => nvme_line(r),
                Record::Control(c) => Line {
                    dev: "control".into(),
                    queue: "-".into(),
                    seq: c.seq,
                    done_ns: c.t_ns,
                    latency_ns: 0,
                    name: c.request.clone(),
                    opcode: 0,
                    lba: None,
                    good: c.response.contains("\"ok\":true"),
                    status: 0,
                    result: c.response.clone(),
                    bytes: 0,
                },
                _ => return None,
            };
            l.done_ns = l.done_ns.saturating_sub(start);
            Some(l)
        })
        .collect()
}

fn parse_hex(s: &str) -> Option<u64> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u64::from_str_radix(t, 16).ok()
}

impl Filter {
    fn matches(&self, l: &Line) -> Result<bool, String> {
        if self.dev.as_ref().is_some_and(|d| *d != l.dev) {
            return Ok(false);
        }
        if let Some(op) = &self.op {
            let ok = match op.starts_with("0x").then(|| parse_hex(op)).flatten() {
                Some(v) => u64::from(l.opcode) == v && l.dev != "control",
                None => l.name.to_lowercase().contains(&op.to_lowercase()),
            };
            if !ok {
                return Ok(false);
            }
        }
        if let Some(s) = &self.status {
            let ok = match s.as_str() {
                "good" => l.good,
                "error" => !l.good,
                x => u64::from(l.status) == parse_hex(x).ok_or(format!("--status {x:?}"))?,
            };
            if !ok {
                return Ok(false);
            }
        }
        if let Some(r) = &self.lba {
            let (a, b) = match r.split_once('-') {
                Some((a, b)) => (a, b),
                None => (r.as_str(), r.as_str()),
            };
            let num = |x: &str| {
                parse_hex(x)
                    .filter(|_| x.starts_with("0x"))
                    .or_else(|| x.parse().ok())
                    .ok_or(format!("--lba {r:?}"))
            };
            let (lo, hi) = (num(a)?, num(b)?);
            match l.lba {
                Some((start, n)) if start <= hi && start.saturating_add(n.max(1)) > lo => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}

fn load(file: &Path) -> Result<(Vec<Record>, Value), String> {
    let records = format::read_all(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let meta = match records.first() {
        Some(Record::Meta(j)) => serde_json::from_str(j).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Ok((records, meta))
}

fn print(file: &Path, filter: &Filter) -> Result<(), String> {
    let (records, meta) = load(file)?;
    for l in lines(&records, &meta) {
        if !filter.matches(&l)? {
            continue;
        }
        let lba = l.lba.map_or(String::new(), |(a, n)| format!("{a}+{n}"));
        println!(
            "{:>8} {:>6} {:>7} {:>5}.{:09} {:>8} {:<28} {:<16} {}",
            l.dev,
            l.queue,
            l.seq,
            l.done_ns / 1_000_000_000,
            l.done_ns % 1_000_000_000,
            l.latency_ns / 1000,
            l.name,
            lba,
            l.result
        );
    }
    Ok(())
}

fn stats(file: &Path) -> Result<(), String> {
    let (records, meta) = load(file)?;
    let mut by: BTreeMap<String, (u64, u64, Vec<u64>)> = BTreeMap::new();
    let mut pdus = (0u64, 0u64);
    for r in &records {
        if let Record::Pdu(p) = r {
            pdus.0 += 1;
            pdus.1 += p.bytes.len() as u64;
        }
    }
    for l in lines(&records, &meta)
        .into_iter()
        .filter(|l| l.dev != "control")
    {
        let e = by.entry(l.name).or_default();
        e.0 += 1;
        e.1 += l.bytes;
        e.2.push(l.latency_ns);
    }
    println!(
        "{:<34} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9}",
        "command", "count", "bytes", "min_us", "avg_us", "max_us", "p99_us"
    );
    for (name, (n, bytes, mut lat)) in by {
        lat.sort_unstable();
        let avg = lat.iter().sum::<u64>() / n.max(1);
        let p99 = lat
            .get(((lat.len() * 99).div_ceil(100)).saturating_sub(1))
            .copied()
            .unwrap_or(0);
        println!(
            "{name:<34} {n:>8} {bytes:>12} {:>9} {:>9} {:>9} {:>9}",
            lat.first().copied().unwrap_or(0) / 1000,
            avg / 1000,
            lat.last().copied().unwrap_or(0) / 1000,
            p99 / 1000
        );
    }
    println!("NVMe/TCP PDU records: {} ({} bytes)", pdus.0, pdus.1);
    Ok(())
}

fn run_replay(file: &Path) -> Result<bool, String> {
    let work = WorkDir::new().map_err(|e| format!("scratch folder: {e}"))?;
    let out = replay::replay(file, &work.0).map_err(|e| e.to_string())?;
    println!("replayed {} commands and control actions", out.replayed);
    for (why, n) in &out.skipped {
        println!("skipped {n}: {why}");
    }
    for (what, n) in &out.errors {
        println!("result {what}: {n}");
    }
    match &out.first {
        None => println!("divergences: 0"),
        Some(first) => {
            println!("divergences: {}", out.divergences);
            println!("first divergence: {first}");
        }
    }
    for (name, crc, len, rec) in &out.checksums {
        let verdict = match rec {
            None => "no recorded checksum".to_owned(),
            Some(r) if r == crc => "matches the recording".to_owned(),
            Some(r) => format!("DIFFERS from the recorded {r:08x}"),
        };
        println!("checksum {name} {len} bytes crc32c {crc:08x}: {verdict}");
    }
    Ok(out.clean())
}

/// Run `zonecopy-vhost trace ARGS...` (`argv[0]` is "trace").
pub fn main(argv: impl Iterator<Item = OsString>) -> ExitCode {
    let cli = TraceCli::parse_from(argv);
    let res = match &cli.cmd {
        Cmd::Print { file, filter } => print(file, filter).map(|()| true),
        Cmd::Stats { file } => stats(file).map(|()| true),
        Cmd::Replay { file } => run_replay(file),
        Cmd::Pcap { file, out } => super::to_pcap::convert(file, out).map(|(pdus, cmds)| {
            println!(
                "{}: {pdus} NVMe/TCP PDUs, {cmds} SCSI commands",
                out.display()
            );
            true
        }),
    };
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("zonecopy-vhost trace: {e}");
            ExitCode::from(2)
        }
    }
}
