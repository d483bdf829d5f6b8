//! The host's TSC frequency, for `tsc_early_khz=` on a TCG guest's
//! command line.
//!
//! Under TCG the guest's TSC is the host's (QEMU reads the host's
//! counter), but the guest kernel measures its frequency against the
//! emulated PIT and ACPI PM timer. On a loaded host the vCPU is descheduled
//! inside those windows and the result can be far off: guests on this
//! project's 2-core machine at load average ~10 booted with clocks running
//! up to 3.7 times too fast (27.7 s of guest uptime after 7.6 s of wall
//! time), so in-guest timeouts fired early and the boot breakdown was
//! wrong. Given the frequency the kernel skips those loops.
//!
//! The frequency comes from the host kernel's own log (`/dev/kmsg`; root
//! or `dmesg_restrict=0`): its refined calibration, else what it detected
//! at boot. Without either (log rotated, no permission) the guest
//! calibrates as before.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    os::unix::fs::OpenOptionsExt,
    sync::OnceLock,
};

/// The host TSC's frequency in kHz, read once per process.
pub fn khz() -> Option<u64> {
    static KHZ: OnceLock<Option<u64>> = OnceLock::new();
    *KHZ.get_or_init(|| {
        let f = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()?;
        // Each read returns one record; EPIPE marks records overwritten
        // while reading, WouldBlock the end of the log.
        let mut lines = BufReader::new(f).lines();
        let mut found = None;
        loop {
            match lines.next() {
                Some(Ok(line)) => found = from_line(&line).or(found),
                Some(Err(e)) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Some(Err(_)) | None => break,
            }
        }
        found
    })
}

/// kHz from a log line ("tsc: Detected 2596.148 MHz processor" or
/// "... MHz TSC", later "tsc: Refined TSC clocksource calibration:
/// 2596.149 MHz"); 100 MHz to 10 GHz only.
pub fn from_line(line: &str) -> Option<u64> {
    let msg = line.split_once(';').map_or(line, |(_, m)| m);
    let rest = msg
        .strip_prefix("tsc: Refined TSC clocksource calibration: ")
        .or_else(|| msg.strip_prefix("tsc: Detected "))?;
    let (mhz, unit) = rest.split_once(' ')?;
    if !unit.starts_with("MHz") {
        return None;
    }
    let (int, frac) = mhz.split_once('.').unwrap_or((mhz, "0"));
    let frac = format!("{frac:0<3}");
    let khz = int.parse::<u64>().ok()? * 1000 + frac.get(..3)?.parse::<u64>().ok()?;
    (100_000..=10_000_000).contains(&khz).then_some(khz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines() {
        assert_eq!(
            from_line("6,50,54,-;tsc: Detected 2596.148 MHz processor"),
            Some(2_596_148)
        );
        assert_eq!(from_line("tsc: Detected 3000.0 MHz TSC"), Some(3_000_000));
        assert_eq!(
            from_line("6,900,1399721,-;tsc: Refined TSC clocksource calibration: 2596.149 MHz"),
            Some(2_596_149)
        );
        assert_eq!(from_line("6,1,2,-;tsc: Fast TSC calibration failed"), None);
        assert_eq!(from_line("tsc: Detected 12.000 MHz processor"), None);
        assert_eq!(from_line("tsc: Detected x MHz processor"), None);
    }
}
