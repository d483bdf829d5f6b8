//! LUN specifications: one parser for the `--lun SPEC` strings, which then
//! renders both what the backend is told (`zonecopy-vhost --lun ...`) and
//! what the guest is told (`zonecopy.lun<N>=...` on the kernel command line,
//! see ARCHITECTURE.md "The guest contract"). Both come from the same value,
//! so they cannot disagree.

use std::{fmt, path::PathBuf, str::FromStr};

/// Error in a `--lun` spec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LunError {
    #[error("`{0}` is not key=value")]
    NotKeyValue(String),
    #[error(
        "unknown key `{0}` (known: file, size, bs, kind, zone, cap, conv, max-open, max-active, urswrz)"
    )]
    UnknownKey(String),
    #[error("key `{0}` given twice")]
    Duplicate(String),
    #[error("bad size `{0}` (bytes, with optional suffix K, M, G or T = 2^10..2^40)")]
    BadSize(String),
    #[error("bad number `{0}`")]
    BadNumber(String),
    #[error("kind must be `hm`, `ha` or `disk`, not `{0}`")]
    BadKind(String),
    #[error("`{0}` is only valid for kind=hm (host aware zones have no gaps and no limits)")]
    NotHostManaged(&'static str),
    #[error("urswrz must be 0 or 1, not `{0}`")]
    BadFlag(String),
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("bs must be 512 or 4096, not {0}")]
    BadBlockSize(u64),
    #[error("`{0}` is only valid for kind=hm")]
    NotZoned(&'static str),
    #[error("{what} ({value} bytes) is not a multiple of {of} ({of_value} bytes)")]
    Misaligned {
        what: &'static str,
        value: u64,
        of: &'static str,
        of_value: u64,
    },
    #[error("zone capacity {cap} is larger than the zone size {zone}")]
    CapTooLarge { cap: u64, zone: u64 },
    #[error("{conv} conventional zones do not fit in {zones} zones")]
    TooManyConv { conv: u64, zones: u64 },
    #[error("size must not be zero")]
    Zero,
}

/// Zoned layout of a host-managed or host aware LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zoned {
    /// Host aware (kind=ha: peripheral type 00h, sequential write
    /// preferred zones, `cap == zone`, no limits) rather than host-managed.
    pub host_aware: bool,
    /// URSWRZ (VPD B6h): `None` = the backend's default (1).
    pub urswrz: Option<bool>,
    /// Zone size in bytes.
    pub zone: u64,
    /// Zone capacity in bytes (<= `zone`).
    pub cap: u64,
    /// Number of conventional zones at the start of the LUN.
    pub conv: u64,
    /// Open / active zone limits for the backend (0 = none); `None` = the
    /// backend's default. Not part of the guest contract.
    pub max_open: Option<u64>,
    pub max_active: Option<u64>,
}

/// Device kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LunKind {
    /// Zoned (ZBC): host-managed, or host aware when `host_aware` is set.
    HostManaged(Zoned),
    /// Plain (not zoned) disk.
    Disk,
}

/// One logical unit of the emulated SCSI target, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunSpec {
    /// Backing file; `None` = the runner picks one in its temp dir.
    pub file: Option<PathBuf>,
    /// Capacity in bytes.
    pub size: u64,
    /// Logical block size in bytes (512 or 4096).
    pub bs: u64,
    pub kind: LunKind,
}

/// LUNs used when none are given: two host-managed LUNs (the second with
/// zone capacity < zone size, and 512-byte blocks) and one plain disk.
pub const DEFAULT_LUNS: [&str; 3] = [
    "kind=hm,size=256M,bs=4096,zone=4M,cap=4M,conv=2",
    "kind=hm,size=128M,bs=512,zone=8M,cap=6M,conv=1",
    "kind=disk,size=64M,bs=512",
];

/// The `zbc` conformance suite's LUNs when none are given: a host-managed
/// LUN with gap zones (capacity < zone size) and open/active limits, a
/// 512-byte-block host-managed LUN with URSWRZ 0 and no gaps (restricted
/// reads, ZONE COUNT), a URSWRZ 0 LUN with gap zones, and a host aware
/// LUN (sequential write preferred zones).
pub const ZBC_LUNS: [&str; 4] = [
    "kind=hm,size=64M,bs=4096,zone=2M,cap=1536K,conv=2,max-open=4,max-active=6",
    "kind=hm,size=32M,bs=512,zone=1M,conv=1,urswrz=0",
    "kind=hm,size=8M,bs=4096,zone=1M,cap=512K,conv=0,urswrz=0",
    "kind=ha,size=16M,bs=4096,zone=1M,conv=1",
];

/// The `diff` suite's LUNs when none are given: what scsi_debug can be
/// given the same geometry of (whole MiB, power-of-two zones): a
/// host-managed LUN with gap zones and an open limit and no active limit
/// (scsi_debug has none), a host aware LUN, and two 4096-byte-block disks
/// for the EXTENDED COPY comparison with LIO.
pub const DIFF_LUNS: [&str; 4] = [
    "kind=hm,size=64M,bs=4096,zone=2M,cap=1M,conv=2,max-open=4,max-active=0",
    "kind=ha,size=32M,bs=4096,zone=2M,conv=1",
    "kind=disk,size=16M,bs=4096",
    "kind=disk,size=16M,bs=4096",
];

/// The LUN specs a suite gets when no `--lun` is given (the bench suite's
/// are in `rig::BENCH_LUNS`).
pub fn default_luns(suite: Option<&str>) -> &'static [&'static str] {
    match suite {
        Some("zbc") => &ZBC_LUNS,
        Some("diff") => &DIFF_LUNS,
        _ => &DEFAULT_LUNS,
    }
}

/// Parses a byte count with an optional binary suffix (K, M, G, T).
pub fn parse_size(s: &str) -> Result<u64, LunError> {
    let bad = || LunError::BadSize(s.to_owned());
    let t = s.trim();
    let (digits, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

fn check_multiple(
    what: &'static str,
    value: u64,
    of: &'static str,
    of_value: u64,
) -> Result<(), LunError> {
    if of_value == 0 || value % of_value != 0 {
        return Err(LunError::Misaligned {
            what,
            value,
            of,
            of_value,
        });
    }
    Ok(())
}

impl FromStr for LunSpec {
    type Err = LunError;

    fn from_str(spec: &str) -> Result<Self, LunError> {
        let mut file = None;
        let mut size = None;
        let mut bs = None;
        let mut kind = None;
        let mut zone = None;
        let mut cap = None;
        let mut conv = None;
        let mut max_open = None;
        let mut max_active = None;
        let mut urswrz = None;
        for item in spec.split(',').filter(|i| !i.trim().is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| LunError::NotKeyValue(item.to_owned()))?;
            let k = k.trim();
            let v = v.trim();
            let dup = |set: bool| {
                if set {
                    Err(LunError::Duplicate(k.to_owned()))
                } else {
                    Ok(())
                }
            };
            match k {
                "file" => {
                    dup(file.is_some())?;
                    file = Some(PathBuf::from(v));
                }
                "size" => {
                    dup(size.is_some())?;
                    size = Some(parse_size(v)?);
                }
                "bs" => {
                    dup(bs.is_some())?;
                    bs = Some(parse_size(v)?);
                }
                "zone" => {
                    dup(zone.is_some())?;
                    zone = Some(parse_size(v)?);
                }
                "cap" => {
                    dup(cap.is_some())?;
                    cap = Some(parse_size(v)?);
                }
                "conv" => {
                    dup(conv.is_some())?;
                    conv = Some(
                        v.parse::<u64>()
                            .map_err(|_| LunError::BadNumber(v.to_owned()))?,
                    );
                }
                "max-open" | "max-active" => {
                    let slot = if k == "max-open" {
                        &mut max_open
                    } else {
                        &mut max_active
                    };
                    dup(slot.is_some())?;
                    *slot = Some(
                        v.parse::<u64>()
                            .map_err(|_| LunError::BadNumber(v.to_owned()))?,
                    );
                }
                "kind" => {
                    dup(kind.is_some())?;
                    kind = Some(match v {
                        "hm" | "ha" | "disk" => v.to_owned(),
                        other => return Err(LunError::BadKind(other.to_owned())),
                    });
                }
                "urswrz" => {
                    dup(urswrz.is_some())?;
                    urswrz = Some(match v {
                        "0" => false,
                        "1" => true,
                        other => return Err(LunError::BadFlag(other.to_owned())),
                    });
                }
                other => return Err(LunError::UnknownKey(other.to_owned())),
            }
        }
        let size = size.ok_or(LunError::Missing("size"))?;
        if size == 0 {
            return Err(LunError::Zero);
        }
        // Defaults as in zonecopy-vhost: kind=hm, bs=4096, conv=1.
        let bs = bs.unwrap_or(4096);
        if bs != 512 && bs != 4096 {
            return Err(LunError::BadBlockSize(bs));
        }
        check_multiple("size", size, "bs", bs)?;
        let kind = kind.unwrap_or_else(|| "hm".to_owned());
        let kind = if kind != "disk" {
            let host_aware = kind == "ha";
            if host_aware {
                for (name, given) in [
                    ("cap", cap.is_some()),
                    ("max-open", max_open.is_some()),
                    ("max-active", max_active.is_some()),
                ] {
                    if given {
                        return Err(LunError::NotHostManaged(name));
                    }
                }
            }
            let zone = zone.ok_or(LunError::Missing("zone"))?;
            let cap = cap.unwrap_or(zone);
            let conv = conv.unwrap_or(1);
            check_multiple("zone", zone, "bs", bs)?;
            check_multiple("cap", cap, "bs", bs)?;
            if cap == 0 {
                return Err(LunError::Zero);
            }
            if cap > zone {
                return Err(LunError::CapTooLarge { cap, zone });
            }
            check_multiple("size", size, "zone", zone)?;
            let zones = size / zone;
            if conv > zones {
                return Err(LunError::TooManyConv { conv, zones });
            }
            LunKind::HostManaged(Zoned {
                host_aware,
                urswrz,
                zone,
                cap,
                conv,
                max_open,
                max_active,
            })
        } else {
            for (name, given) in [
                ("zone", zone.is_some()),
                ("cap", cap.is_some()),
                ("conv", conv.is_some()),
                ("max-open", max_open.is_some()),
                ("max-active", max_active.is_some()),
                ("urswrz", urswrz.is_some()),
            ] {
                if given {
                    return Err(LunError::NotZoned(name));
                }
            }
            LunKind::Disk
        };
        Ok(LunSpec {
            file,
            size,
            bs,
            kind,
        })
    }
}

impl LunSpec {
    /// The `--lun` argument for `zonecopy-vhost`, sizes in bytes. `file`
    /// must be set (the runner fills it in before starting the backend).
    pub fn backend_arg(&self) -> String {
        let mut s = String::new();
        if let Some(f) = &self.file {
            s.push_str(&format!("file={},", f.display()));
        }
        match self.kind {
            LunKind::HostManaged(z) if z.host_aware => {
                s.push_str(&format!(
                    "kind=ha,size={},bs={},zone={},conv={}",
                    self.size, self.bs, z.zone, z.conv
                ));
                if let Some(u) = z.urswrz {
                    s.push_str(&format!(",urswrz={}", u8::from(u)));
                }
            }
            LunKind::HostManaged(z) => {
                s.push_str(&format!(
                    "kind=hm,size={},bs={},zone={},cap={},conv={}",
                    self.size, self.bs, z.zone, z.cap, z.conv
                ));
                if let Some(u) = z.urswrz {
                    s.push_str(&format!(",urswrz={}", u8::from(u)));
                }
                if let Some(n) = z.max_open {
                    s.push_str(&format!(",max-open={n}"));
                }
                if let Some(n) = z.max_active {
                    s.push_str(&format!(",max-active={n}"));
                }
            }
            LunKind::Disk => s.push_str(&format!("kind=disk,size={},bs={}", self.size, self.bs)),
        }
        s
    }

    /// The kernel command line entry `zonecopy.lun<index>=...`.
    pub fn cmdline_entry(&self, index: usize) -> String {
        format!("zonecopy.lun{index}={self}")
    }
}

/// The guest-contract form: `hm:bs=..,size=..,zone=..,cap=..,conv=..`,
/// the same with `ha:` for a host aware LUN, or `disk:bs=..,size=..`, all
/// sizes in bytes; a zoned LUN with URSWRZ 0 ends in `,urswrz=0`.
impl fmt::Display for LunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LunKind::HostManaged(z) => {
                write!(
                    f,
                    "{}:bs={},size={},zone={},cap={},conv={}",
                    if z.host_aware { "ha" } else { "hm" },
                    self.bs,
                    self.size,
                    z.zone,
                    z.cap,
                    z.conv
                )?;
                if z.urswrz == Some(false) {
                    f.write_str(",urswrz=0")?;
                }
                Ok(())
            }
            LunKind::Disk => write!(f, "disk:bs={},size={}", self.bs, self.size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("256M"), Ok(268_435_456));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("99999999999999T").is_err());
    }

    #[test]
    fn defaults_render_to_the_guest_contract() {
        let luns: Vec<LunSpec> = DEFAULT_LUNS.iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(
            luns[0].cmdline_entry(0),
            "zonecopy.lun0=hm:bs=4096,size=268435456,zone=4194304,cap=4194304,conv=2"
        );
        assert_eq!(
            luns[1].cmdline_entry(1),
            "zonecopy.lun1=hm:bs=512,size=134217728,zone=8388608,cap=6291456,conv=1"
        );
        assert_eq!(
            luns[2].cmdline_entry(2),
            "zonecopy.lun2=disk:bs=512,size=67108864"
        );
    }

    #[test]
    fn diff_defaults_parse() {
        let l: Vec<LunSpec> = default_luns(Some("diff"))
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(l.len(), 4);
        // scsi_debug takes sizes in MiB.
        assert!(l.iter().all(|l| l.size % (1 << 20) == 0 && l.bs == 4096));
    }

    #[test]
    fn zbc_defaults_parse() {
        let l: Vec<LunSpec> = default_luns(Some("zbc"))
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            l[0].backend_arg(),
            "kind=hm,size=67108864,bs=4096,zone=2097152,cap=1572864,conv=2,max-open=4,max-active=6"
        );
        assert!(l[1].backend_arg().ends_with(",urswrz=0"));
        assert!(l[2].to_string().ends_with(",urswrz=0"));
        assert!(l[3].to_string().starts_with("ha:"));
        assert_eq!(default_luns(Some("smoke")), &DEFAULT_LUNS);
        assert_eq!(default_luns(None), &DEFAULT_LUNS);
    }

    #[test]
    fn backend_arg_is_normalised_to_bytes() {
        // Defaults as the backend's: kind=hm, bs=4096, conv=1.
        let mut l: LunSpec = "size=1M,zone=256K".parse().unwrap();
        assert_eq!(
            l.backend_arg(),
            "kind=hm,size=1048576,bs=4096,zone=262144,cap=262144,conv=1"
        );
        assert_eq!(
            l.to_string(),
            "hm:bs=4096,size=1048576,zone=262144,cap=262144,conv=1"
        );
        l.file = Some("/tmp/x/lun0.img".into());
        assert_eq!(
            l.backend_arg(),
            "file=/tmp/x/lun0.img,kind=hm,size=1048576,bs=4096,zone=262144,cap=262144,conv=1"
        );
        let m: LunSpec = "size=1M,zone=256K,bs=512,conv=0,max-open=2,max-active=3"
            .parse()
            .unwrap();
        assert_eq!(
            m.backend_arg(),
            "kind=hm,size=1048576,bs=512,zone=262144,cap=262144,conv=0,max-open=2,max-active=3"
        );
        assert_eq!(
            m.to_string(),
            "hm:bs=512,size=1048576,zone=262144,cap=262144,conv=0"
        );
        let d: LunSpec = "kind=disk,size=64M,file=/a/b,bs=512".parse().unwrap();
        assert_eq!(d.backend_arg(), "file=/a/b,kind=disk,size=67108864,bs=512");
    }

    #[test]
    fn rejects_bad_specs() {
        let e = |s: &str| s.parse::<LunSpec>().unwrap_err();
        assert_eq!(e("kind=hm,zone=4M"), LunError::Missing("size"));
        assert_eq!(
            e("kind=disk,size=4M,max-open=1"),
            LunError::NotZoned("max-open")
        );
        assert_eq!(e("kind=hm,size=4M"), LunError::Missing("zone"));
        assert_eq!(e("size=4M"), LunError::Missing("zone"));
        assert_eq!(e("kind=zz,size=4M"), LunError::BadKind("zz".into()));
        assert_eq!(e("kind=disk,size=4M,bs=1024"), LunError::BadBlockSize(1024));
        assert_eq!(e("kind=disk,size=4M,zone=1M"), LunError::NotZoned("zone"));
        assert_eq!(
            e("kind=disk,size=4M,foo=1"),
            LunError::UnknownKey("foo".into())
        );
        assert_eq!(
            e("kind=disk,size=4M,size=1M"),
            LunError::Duplicate("size".into())
        );
        assert_eq!(e("kind=disk,size"), LunError::NotKeyValue("size".into()));
        assert_eq!(
            e("kind=hm,size=16M,zone=4M,cap=5M,conv=0"),
            LunError::CapTooLarge {
                cap: 5 << 20,
                zone: 4 << 20
            }
        );
        assert_eq!(
            e("kind=hm,size=16M,zone=4M,conv=5"),
            LunError::TooManyConv { conv: 5, zones: 4 }
        );
        assert!(matches!(
            e("kind=hm,size=10M,zone=4M"),
            LunError::Misaligned { what: "size", .. }
        ));
        assert!(matches!(
            e("kind=hm,size=16M,zone=4M,bs=4096,cap=1000"),
            LunError::Misaligned { what: "cap", .. }
        ));
        assert_eq!(e("kind=disk,size=0"), LunError::Zero);
        assert_eq!(
            e("kind=ha,size=16M,zone=4M,cap=2M"),
            LunError::NotHostManaged("cap")
        );
        assert_eq!(
            e("kind=ha,size=16M,zone=4M,max-open=2"),
            LunError::NotHostManaged("max-open")
        );
        assert_eq!(
            e("kind=hm,size=16M,zone=4M,urswrz=2"),
            LunError::BadFlag("2".into())
        );
        assert_eq!(
            e("kind=disk,size=16M,urswrz=1"),
            LunError::NotZoned("urswrz")
        );
    }

    #[test]
    fn host_aware_and_urswrz() {
        let ha: LunSpec = "kind=ha,size=16M,zone=4M,conv=1".parse().unwrap();
        assert_eq!(
            ha.backend_arg(),
            "kind=ha,size=16777216,bs=4096,zone=4194304,conv=1"
        );
        assert_eq!(
            ha.cmdline_entry(3),
            "zonecopy.lun3=ha:bs=4096,size=16777216,zone=4194304,cap=4194304,conv=1"
        );
        let r: LunSpec = "kind=hm,size=16M,zone=4M,urswrz=0".parse().unwrap();
        assert_eq!(
            r.backend_arg(),
            "kind=hm,size=16777216,bs=4096,zone=4194304,cap=4194304,conv=1,urswrz=0"
        );
        assert_eq!(
            r.to_string(),
            "hm:bs=4096,size=16777216,zone=4194304,cap=4194304,conv=1,urswrz=0"
        );
        // URSWRZ 1 given explicitly: passed on, not in the guest contract.
        let u: LunSpec = "kind=ha,size=16M,zone=4M,urswrz=1".parse().unwrap();
        assert!(u.backend_arg().ends_with(",urswrz=1"));
        assert!(u.to_string().ends_with(",conv=1"));
    }
}
