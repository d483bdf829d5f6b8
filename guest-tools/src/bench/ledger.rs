//! The per-copy ledger of the copy_file_range benchmark ([`super::cfr`]):
//! for (a) the offload path, (b) the forced fallback (copy_max_bytes 0)
//! and (c) the guest's read+write loop, what each copy of the same 64 MiB
//! cost, side by side: wall time, host-interface bytes (the control
//! socket's `fabric` section: PCIe DMA of data, SQEs and CQEs over PCIe,
//! PDU bytes over NVMe/TCP), media bytes read and written by the backend,
//! NVMe commands by class, and the guest's CPU time from `/proc/stat`
//! around the copy. This is the data of the copy-offload debate (does
//! offload save work?), printed as a table of `# ` diagnostics.
//!
//! Media bytes: a host Read reads its bytes, a Write writes them, and an
//! offloaded Copy within one device reads and writes `copied` bytes
//! (storage/device.rs `DeviceStats`): read = read + copied, written =
//! written + copied.

use std::time::Duration;

use super::cfr::Run;

/// `/proc/stat` ticks are in USER_HZ, which the kernel fixes at 100 for
/// every architecture's /proc ABI (include/asm-generic/param.h).
const USER_HZ: u64 = 100;

/// The aggregate `cpu` line of `/proc/stat`, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu {
    /// user + nice + system + irq + softirq + steal: time not idle.
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
}

impl Cpu {
    /// Parses the first (`cpu `) line of `/proc/stat` (proc(5): user nice
    /// system idle iowait irq softirq steal ...; guest time is already in
    /// user).
    pub fn parse(stat: &str) -> Option<Self> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        if v.len() < 4 {
            return None;
        }
        Some(Cpu {
            busy: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
            idle: at(3) + at(4),
        })
    }

    /// Now, or `None` if /proc/stat cannot be read.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Growth since `before`.
    pub fn since(&self, before: &Self) -> Self {
        Cpu {
            busy: self.busy.saturating_sub(before.busy),
            idle: self.idle.saturating_sub(before.idle),
        }
    }

    /// Busy time, every CPU summed.
    pub fn busy_time(&self) -> Duration {
        Duration::from_millis(self.busy * 1000 / USER_HZ)
    }
}

/// The ledger's rows: (label, value per column).
pub fn rows(runs: [Option<&Run>; 3]) -> Vec<(&'static str, [String; 3])> {
    type Cell = fn(&Run) -> Option<String>;
    let cells: [(&'static str, Cell); 9] = [
        ("wall time s", |r| {
            Some(format!("{:.3}", r.took.as_secs_f64()))
        }),
        ("guest CPU s", |r| {
            r.cpu.map(|c| format!("{:.2}", c.busy_time().as_secs_f64()))
        }),
        ("host-if bytes", |r| r.fabric.map(|f| f.total.to_string())),
        ("host-if data bytes", |r| {
            r.fabric.map(|f| f.data.to_string())
        }),
        ("media read bytes", |r| {
            r.dev.map(|(rd, _, cp)| (rd + cp).to_string())
        }),
        ("media written bytes", |r| {
            r.dev.map(|(_, w, cp)| (w + cp).to_string())
        }),
        ("device-copied bytes", |r| {
            r.dev.map(|(_, _, cp)| cp.to_string())
        }),
        ("NVMe I/O commands", |r| {
            r.fabric
                .map(|f| (f.read_cmds + f.write_cmds + f.copy_cmds).to_string())
        }),
        ("  read/write/Copy", |r| {
            r.fabric
                .map(|f| format!("{}/{}/{}", f.read_cmds, f.write_cmds, f.copy_cmds))
        }),
    ];
    cells
        .iter()
        .map(|(label, cell)| {
            (
                *label,
                runs.map(|r| r.and_then(cell).unwrap_or_else(|| "n/a".into())),
            )
        })
        .collect()
}

/// The ledger as lines of a table (without the `# `), titled `name`.
pub fn table(name: &str, runs: [Option<&Run>; 3]) -> Vec<String> {
    let mut out = vec![
        format!("ledger {name}: one 64 MiB copy each way"),
        format!(
            "  {:<20} {:>14} {:>14} {:>14}",
            "", "(a) offload", "(b) fallback", "(c) read+write"
        ),
    ];
    for (label, [a, b, c]) in rows(runs) {
        out.push(format!("  {label:<20} {a:>14} {b:>14} {c:>14}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cfr::{DataState, FabricCounts, Way};

    #[test]
    fn cpu_from_proc_stat() {
        let s = "cpu  100 2 30 400 5 6 7 8 0 0\ncpu0 50 1 15 200 2 3 3 4 0 0\nintr 1\n";
        let c = Cpu::parse(s).unwrap();
        assert_eq!(
            c,
            Cpu {
                busy: 153,
                idle: 405
            }
        );
        let later = Cpu {
            busy: 203,
            idle: 500,
        };
        assert_eq!(later.since(&c).busy_time(), Duration::from_millis(500));
        assert_eq!(Cpu::parse("cpu0 1 2 3 4\n"), None);
        assert_eq!(Cpu::parse("cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn table_columns_and_media_bytes() {
        let mib = 1 << 20;
        let r = |way, dev, fabric, cpu| Run {
            way,
            took: Duration::from_millis(43),
            cfr: None,
            sync_error: None,
            dev: Some(dev),
            fabric: Some(fabric),
            path: None,
            cause: None,
            data: DataState::Verified,
            cpu: Some(Cpu { busy: cpu, idle: 0 }),
        };
        let f = FabricCounts {
            total: 9000,
            data: 4096,
            read_cmds: 0,
            write_cmds: 1,
            copy_cmds: 64,
            ..FabricCounts::default()
        };
        let a = r(Way::Offload, (0, 0, 64 * mib), f, 3);
        let t = table("nvme-cfr-64MiB", [Some(&a), None, None]);
        assert_eq!(t.len(), 11, "{t:#?}");
        assert!(t[1].contains("(a) offload") && t[1].contains("(c) read+write"));
        assert_eq!(
            t[2],
            format!(
                "  {:<20} {:>14} {:>14} {:>14}",
                "wall time s", "0.043", "n/a", "n/a"
            )
        );
        assert!(
            t[3].ends_with("0.03            n/a            n/a"),
            "{}",
            t[3]
        );
        assert!(
            t[6].contains(&(64 * mib).to_string()),
            "media read: {}",
            t[6]
        );
        assert!(
            t[7].contains(&(64 * mib).to_string()),
            "media written: {}",
            t[7]
        );
        assert!(t[10].contains("0/1/64"), "{}", t[10]);
    }
}
