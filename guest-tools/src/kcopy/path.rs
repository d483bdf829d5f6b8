//! Which way a copy went, judged from the backend's counters (control
//! `stats`) taken just before and just after the `copy_file_range` call.
//!
//! - offload: the destination's `copied_bytes` grew by the copied size,
//!   nothing was read from the source or written to the destination by
//!   ordinary commands, and (when the backend counts fabric bytes) almost no
//!   data crossed the fabric (only Copy descriptors, 32 or 40 bytes a range);
//! - fallback: the kernel read the source and wrote the destination;
//! - nothing: no counter moved (a copy that never reached the device);
//! - mixed: anything else, spelled out.

use std::{collections::BTreeMap, fmt};

/// One device's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DevCounters {
    /// Bytes read by ordinary read commands.
    pub read: u64,
    /// Bytes written by ordinary write commands.
    pub written: u64,
    /// Bytes written by offloaded copies.
    pub copied: u64,
}

/// The backend's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// By control device name (`ns1`, `lun0`, ...).
    pub devs: BTreeMap<String, DevCounters>,
    /// Data bytes that crossed the NVMe/TCP fabric both ways, if counted.
    pub fabric_data: Option<u64>,
    /// NVMe Copy commands received over the fabric, if counted.
    pub copy_commands: Option<u64>,
}

/// The way a copy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyPath {
    /// The device copied (NVMe Copy, SCSI XCOPY).
    Offload,
    /// The kernel read and wrote.
    Fallback,
    /// Nothing reached the device.
    Nothing,
    /// Some other mix of counters.
    Mixed,
}

impl fmt::Display for CopyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Offload => "offload",
            Self::Fallback => "fallback (read + write)",
            Self::Nothing => "nothing reached the device",
            Self::Mixed => "mixed",
        })
    }
}

/// Counter growth between two snapshots, for the devices of one copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    /// Read from the source.
    pub src_read: u64,
    /// Written to the destination.
    pub dst_written: u64,
    /// Copied into the destination by offload.
    pub dst_copied: u64,
    /// Read from the destination, written to the source (same device: the
    /// same numbers as above).
    pub other_io: u64,
    /// Fabric data bytes, if counted.
    pub fabric_data: Option<u64>,
    /// NVMe Copy commands, if counted.
    pub copy_commands: Option<u64>,
}

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "src read +{}, dst written +{}, dst copied +{}",
            self.src_read, self.dst_written, self.dst_copied
        )?;
        if self.other_io > 0 {
            write!(f, ", other I/O +{}", self.other_io)?;
        }
        if let Some(d) = self.fabric_data {
            write!(f, ", fabric data +{d}")?;
        }
        if let Some(c) = self.copy_commands {
            write!(f, ", NVMe Copy commands +{c}")?;
        }
        Ok(())
    }
}

/// Growth of the counters that matter for a copy `src` -> `dst`.
pub fn delta(before: &Counters, after: &Counters, src: &str, dst: &str) -> Delta {
    let get = |c: &Counters, n: &str| c.devs.get(n).copied().unwrap_or_default();
    let (sb, sa) = (get(before, src), get(after, src));
    let (db, da) = (get(before, dst), get(after, dst));
    let other_io = if src == dst {
        0
    } else {
        da.read.saturating_sub(db.read) + sa.written.saturating_sub(sb.written)
    };
    let sub = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
    Delta {
        src_read: sa.read.saturating_sub(sb.read),
        dst_written: da.written.saturating_sub(db.written),
        dst_copied: da.copied.saturating_sub(db.copied),
        other_io,
        fabric_data: sub(after.fabric_data, before.fabric_data),
        copy_commands: sub(after.copy_commands, before.copy_commands),
    }
}

/// Most fabric data bytes an offloaded copy of `len` bytes may move: only
/// its Copy descriptors (32 or 40 bytes per source range) cross the
/// fabric, so allow 1/64 of the length plus a page.
pub fn offload_fabric_allowance(len: u64) -> u64 {
    len / 64 + 4096
}

/// Classify a copy of `len` bytes from its counter growth.
pub fn classify(d: &Delta, len: u64) -> CopyPath {
    let fabric_quiet = !matches!(d.fabric_data, Some(f) if f > offload_fabric_allowance(len));
    if d.src_read == 0 && d.dst_written == 0 && d.dst_copied == 0 && d.other_io == 0 {
        CopyPath::Nothing
    } else if d.dst_copied >= len && d.src_read == 0 && d.dst_written == 0 && fabric_quiet {
        CopyPath::Offload
    } else if d.dst_copied == 0 && d.src_read >= len && d.dst_written >= len {
        CopyPath::Fallback
    } else {
        CopyPath::Mixed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(v: &[(&str, u64, u64, u64)], fabric: Option<u64>) -> Counters {
        Counters {
            devs: v
                .iter()
                .map(|&(n, read, written, copied)| {
                    (
                        n.to_string(),
                        DevCounters {
                            read,
                            written,
                            copied,
                        },
                    )
                })
                .collect(),
            fabric_data: fabric,
            copy_commands: fabric.map(|_| 7),
        }
    }

    #[test]
    fn offload_within_a_namespace() {
        let b = counters(&[("ns1", 100, 200, 0)], Some(1000));
        let a = counters(&[("ns1", 100, 200, 65536)], Some(1032));
        let d = delta(&b, &a, "ns1", "ns1");
        assert_eq!(d.dst_copied, 65536);
        assert_eq!(d.fabric_data, Some(32));
        assert_eq!(d.copy_commands, Some(0));
        assert_eq!(classify(&d, 65536), CopyPath::Offload);
        assert_eq!(
            d.to_string(),
            "src read +0, dst written +0, dst copied +65536, fabric data +32, NVMe Copy commands +0"
        );
    }

    #[test]
    fn offload_that_moved_data_over_the_fabric_is_not_one() {
        let b = counters(&[("ns1", 0, 0, 0)], Some(0));
        let a = counters(&[("ns1", 0, 0, 65536)], Some(65536));
        assert_eq!(
            classify(&delta(&b, &a, "ns1", "ns1"), 65536),
            CopyPath::Mixed
        );
    }

    #[test]
    fn fallback_across_devices() {
        let b = counters(&[("ns1", 0, 0, 0), ("lun1", 0, 0, 0)], None);
        let a = counters(&[("ns1", 8192, 0, 0), ("lun1", 0, 8192, 0)], None);
        let d = delta(&b, &a, "ns1", "lun1");
        assert_eq!((d.src_read, d.dst_written, d.other_io), (8192, 8192, 0));
        assert_eq!(classify(&d, 8192), CopyPath::Fallback);
    }

    #[test]
    fn nothing_and_mixed() {
        let b = counters(&[("ns1", 5, 5, 5)], Some(9));
        assert_eq!(
            classify(&delta(&b, &b, "ns1", "ns1"), 4096),
            CopyPath::Nothing
        );
        // Half offloaded, half by read/write.
        let a = counters(&[("ns1", 2053, 2053, 2053)], Some(9));
        assert_eq!(
            classify(&delta(&b, &a, "ns1", "ns1"), 4096),
            CopyPath::Mixed
        );
        // Unknown devices count as zero.
        let d = delta(&b, &a, "x", "y");
        assert_eq!((d.src_read, d.dst_written, d.dst_copied), (0, 0, 0));
        assert_eq!(d.fabric_data, Some(0));
    }
}
