//! Time formatting (no date crate needed for UTC stamps).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `3.2 s`
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// UTC broken down: (year, month, day, hour, minute, second).
fn utc(t: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let s = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let days = i64::try_from(s / 86_400).unwrap_or(0);
    let rem = s % 86_400;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `2026-11-25T18:27:33Z`
pub fn iso8601(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20261125-182733` (for directory names)
pub fn compact(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_631_253);
        assert_eq!(iso8601(t), "2026-11-25T18:27:33Z");
        assert_eq!(compact(t), "20261125-182733");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        // Leap day.
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(secs(Duration::from_millis(3240)), "3.2 s");
    }
}
