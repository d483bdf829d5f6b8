//! Where this guest's boot went (issue 17), from the kernel's own log and
//! /init's stamps, as `# bench boot ...` (seconds since the kernel's clock
//! started; what came before it, firmware and the earliest kernel set-up,
//! is the runner's time to the first KTAP line minus `guest_start_s`,
//! which `scripts/bench.sh` prints):
//!
//! - `kernel_s`: the kernel's clock start to "Run /init", in phases that
//!   add up to it: `k_setup_s` (memory, CPU features, patching the
//!   alternatives: to "Freeing SMP alternatives memory"), `k_cpu_s` (the
//!   boot CPU's bring-up: to "smpboot: CPU0:"), `k_pci_s` (the early
//!   initcalls, ACPI, up to the first PCI probe: "PCI host bridge to
//!   bus"), `k_initcalls_s` (to "Trying to unpack rootfs image"),
//!   `unpack_s` (unpacking the initramfs, to "Freeing initrd memory") and
//!   `k_late_s` (the remaining initcalls, freeing init memory, to "Run
//!   /init"). A phase whose mark a kernel does not log is `-` and the next
//!   one starts where the last mark was;
//! - `/init`'s steps (images/init writes `name=seconds` words to
//!   /run/zonecopy-boot): `mounts_s` (pseudo file systems), `modules_s`
//!   (modprobe), `net_s` (command line, lo, eth0), `hostroot_s` (the 9p
//!   mount, when the suite has one);
//! - `exec_s`: from /init's last stamp to this program's start (its
//!   start time in /proc/self/stat), `guest_start_s` that start;
//! - `luns_s` (the smoke suite's line only): from this program's start
//!   until every configured LUN's disk was there (the SCSI scan runs
//!   after /init's modprobe, in the background).
//!
//! The test passes only when every mark is there and they come in order
//! (within each clock: the log's and /proc/uptime's may differ by a few
//! milliseconds).

use std::{fs::File, io::Read, os::unix::fs::OpenOptionsExt};

use super::{plan, Ctx};
use crate::ktap::{Step, Verdict};

/// Where /init writes its stamps.
pub const STAMPS: &str = "/run/zonecopy-boot";
/// /init's stamps, in the order it takes them.
pub const STEPS: [&str; 5] = ["init", "mounts", "modules", "net", "hostroot"];
/// The kernel's log lines that bound its part (matched at the start of
/// the message).
const UNPACK_START: &str = "Trying to unpack rootfs image as initramfs";
const UNPACK_END: &str = "Freeing initrd memory";
const RUN_INIT: &str = "Run /init as init process";
/// The kernel's phases before the initramfs: (field, the log line that
/// ends it), in boot order.
const PHASES: [(&str, &str); 4] = [
    ("k_setup_s", "Freeing SMP alternatives memory"),
    ("k_cpu_s", "smpboot: CPU0: "),
    ("k_pci_s", "PCI host bridge to bus"),
    ("k_initcalls_s", UNPACK_START),
];
/// USER_HZ: the unit of /proc/<pid>/stat times (fixed at 100 on x86).
const USER_HZ: f64 = 100.0;

/// The seconds of the first /dev/kmsg record whose message starts with
/// `prefix` (records: `prio,seq,usec,flags;message`).
pub fn kmsg_time(records: &[String], prefix: &str) -> Option<f64> {
    records.iter().find_map(|r| {
        let (head, msg) = r.split_once(';')?;
        if !msg.starts_with(prefix) {
            return None;
        }
        let usec: u64 = head.split(',').nth(2)?.parse().ok()?;
        Some(usec as f64 / 1e6)
    })
}

/// `name=seconds` words.
pub fn parse_stamps(text: &str) -> Vec<(String, f64)> {
    text.split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Every record in the kernel's log buffer (each read of /dev/kmsg returns
/// one; EAGAIN at the end, EPIPE where records were overwritten).
fn read_kmsg() -> Result<Vec<String>, String> {
    let mut f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| format!("/dev/kmsg: {e}"))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).trim_end().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
            Err(e) => return Err(format!("/dev/kmsg: {e}")),
        }
    }
    Ok(out)
}

/// This process's start, seconds after boot (field 22 of /proc/self/stat).
fn own_start() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    let ticks: u64 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|t| t.parse().ok())
        .ok_or("no start time in /proc/self/stat")?;
    Ok(ticks as f64 / USER_HZ)
}

/// [`PHASES`]: each from the previous mark found (the first from the
/// clock's start) to its own, `-` when its mark is missing or early.
fn phases(records: &[String]) -> Vec<(&'static str, String)> {
    let mut prev = 0.0;
    PHASES
        .iter()
        .map(|&(name, mark)| match kmsg_time(records, mark) {
            Some(t) if t >= prev => {
                let d = t - prev;
                prev = t;
                (name, format!("{d:.3}"))
            }
            _ => (name, "-".to_string()),
        })
        .collect()
}

/// The `# bench boot` fields from the marks, or which one is missing or
/// out of order.
pub fn breakdown(
    records: &[String],
    stamps: &[(String, f64)],
    start: f64,
) -> Result<Vec<(&'static str, String)>, String> {
    let k = |p: &str| kmsg_time(records, p).ok_or(format!("no kernel log line {p:?}"));
    let (u0, u1, run_init) = (k(UNPACK_START)?, k(UNPACK_END)?, k(RUN_INIT)?);
    let mut fields = vec![("kernel_s", format!("{run_init:.3}"))];
    fields.extend(phases(records));
    let s = |n: &str| {
        stamps
            .iter()
            .find(|(k, _)| k == n)
            .map(|&(_, v)| v)
            .ok_or(format!("no /init stamp {n}"))
    };
    let (mounts, modules, net) = (s("mounts")?, s("modules")?, s("net")?);
    // Without a host root /init takes its last stamp all the same.
    let hostroot = s("hostroot")?;
    // Order within each clock: the log's (sched_clock) and the stamps'
    // (/proc/uptime, boot time) may differ by a few ms.
    let ordered = |m: &[f64]| m.windows(2).all(|w| w[0] <= w[1]);
    if !ordered(&[u0, u1, run_init]) || !ordered(&[mounts, modules, net, hostroot, start]) {
        return Err(format!(
            "marks out of order (unpack {u0}..{u1}, /init {run_init}, stamps {stamps:?}, \
             start {start})"
        ));
    }
    let f = |x: f64| format!("{x:.3}");
    fields.extend([
        ("unpack_s", f(u1 - u0)),
        ("k_late_s", f(run_init - u1)),
        ("mounts_s", f(mounts - run_init)),
        ("modules_s", f(modules - mounts)),
        ("net_s", f(net - modules)),
        ("hostroot_s", f(hostroot - net)),
        ("exec_s", f(start - hostroot)),
        ("guest_start_s", f(start)),
    ]);
    Ok(fields)
}

/// The fields of this boot: /init's stamps, the kernel's log, this
/// program's start. `Ok(None)` when there are no stamps (not zonecopy's
/// /init).
fn this_boot() -> Result<Option<Vec<(&'static str, String)>>, String> {
    let Ok(text) = std::fs::read_to_string(STAMPS) else {
        return Ok(None);
    };
    let records = read_kmsg()?;
    let start = own_start()?;
    breakdown(&records, &parse_stamps(&text), start).map(Some)
}

/// Seconds since boot (/proc/uptime), the clock of /init's stamps.
pub fn uptime() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/uptime").map_err(|e| format!("/proc/uptime: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or(format!("/proc/uptime: {text:?}"))
}

/// The `bench boot` line for the smoke suite, with `luns_s` (every LUN
/// there at `luns_ready`, /proc/uptime seconds), for scripts/bench.sh's
/// boot target: `None` without zonecopy's /init, a reason when a mark
/// is missing.
pub fn smoke_line(luns_ready: f64) -> Option<Result<String, String>> {
    let mut fields = match this_boot() {
        Ok(None) => return None,
        Ok(Some(f)) => f,
        Err(e) => return Some(Err(e)),
    };
    let start = own_start().unwrap_or(luns_ready);
    fields.push(("luns_s", format!("{:.3}", luns_ready - start)));
    fields.insert(0, ("suite", "smoke".to_string()));
    Some(Ok(plan::bench_line("boot", &fields)))
}

/// The boot breakdown test.
pub(super) fn t_boot(c: &mut Ctx<'_>) -> Step {
    let fields = this_boot()
        .map_err(Verdict::Fail)?
        .ok_or_else(|| Verdict::skip(format!("no {STAMPS} (not zonecopy's /init?)")))?;
    c.diag(plan::bench_line("boot", &fields));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Vec<String> {
        [
            "6,1,0,-;Linux version 6.12",
            "6,40,300000,-;Freeing SMP alternatives memory: 40K",
            "6,50,350000,-;smpboot: CPU0: AMD QEMU TCG CPU",
            "6,90,700000,-;PCI host bridge to bus 0000:00",
            "5,400,1200000,-;Trying to unpack rootfs image as initramfs...",
            "6,500,1451000,-;Freeing initrd memory: 7000K",
            "6,600,1900000,-;Run /init as init process",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn kernel_marks_and_stamps() {
        assert_eq!(kmsg_time(&log(), "Freeing initrd memory"), Some(1.451));
        assert_eq!(kmsg_time(&log(), "initrd"), None);
        let st = parse_stamps("init=1.95 mounts=1.97 modules=2.30 net=2.35 hostroot=2.35\n");
        assert_eq!(st.len(), 5);
        assert_eq!(st[2], ("modules".to_string(), 2.30));
        let b = breakdown(&log(), &st, 2.40).unwrap();
        let get = |k: &str| b.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("kernel_s"), "1.900");
        assert_eq!(get("k_setup_s"), "0.300");
        assert_eq!(get("k_cpu_s"), "0.050");
        assert_eq!(get("k_pci_s"), "0.350");
        assert_eq!(get("k_initcalls_s"), "0.500");
        assert_eq!(get("k_late_s"), "0.449");
        assert_eq!(get("unpack_s"), "0.251");
        assert_eq!(get("mounts_s"), "0.070");
        assert_eq!(get("modules_s"), "0.330");
        assert_eq!(get("exec_s"), "0.050");
        assert_eq!(get("guest_start_s"), "2.400");
    }

    #[test]
    fn a_missing_phase_mark_is_a_dash_and_the_next_phase_absorbs_it() {
        let mut log = log();
        log.remove(2); // no "smpboot: CPU0:"
        let p = phases(&log);
        assert_eq!(p[1], ("k_cpu_s", "-".to_string()));
        assert_eq!(p[2], ("k_pci_s", "0.400".to_string()));
        let names: Vec<&str> = p.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["k_setup_s", "k_cpu_s", "k_pci_s", "k_initcalls_s"]);
    }

    #[test]
    fn missing_or_disordered_marks_fail() {
        let st = parse_stamps("init=1.95 mounts=1.97 modules=2.30 net=2.35 hostroot=2.35");
        assert!(breakdown(&log()[..6], &st, 2.4)
            .unwrap_err()
            .contains("Run /init"));
        let no_net = parse_stamps("init=1.95 mounts=1.97 modules=2.30 hostroot=2.35");
        assert!(breakdown(&log(), &no_net, 2.4)
            .unwrap_err()
            .contains("no /init stamp net"));
        assert!(breakdown(&log(), &st, 2.0)
            .unwrap_err()
            .contains("out of order"));
    }
}
