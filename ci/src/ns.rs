//! NVMe namespace specifications: one parser for the `--ns SPEC` strings,
//! rendering both the backend's `zonecopy-vhost --ns ...` and the guest's
//! `zonecopy.ns<N>=...` (ARCHITECTURE.md "The guest contract"), so the two
//! cannot disagree. The keys are `--lun`'s with `kind=zns|nvm` (parsed by
//! [`LunSpec`] as hm|disk) plus the copy limits.

use std::{fmt, path::PathBuf, str::FromStr};

use crate::lun::{LunError, LunKind, LunSpec, Zoned};

/// Subsystem NQN when `--nqn` is not given (the backend's default too).
pub const DEFAULT_NQN: &str = "nqn.2026-11.dev.zonecopy:sub0";

/// Namespaces for suites that need NVMe (`nvme`, `kcopy`) when no `--ns`
/// is given: a zoned namespace (NSID 1) and two conventional ones (NSID 2
/// and 3, so copies can cross namespaces).
pub const DEFAULT_NAMESPACES: [&str; 3] = [
    "kind=zns,size=256M,bs=4096,zone=4M,cap=4M",
    "kind=nvm,size=128M,bs=4096",
    "kind=nvm,size=64M,bs=4096",
];

/// Error in a `--ns` spec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NsError {
    #[error("kind must be `zns` or `nvm`, not `{0}`")]
    BadKind(String),
    #[error("key `{0}` given twice")]
    Duplicate(String),
    #[error("{key}={value}: not a number up to {max}")]
    BadLimit {
        key: &'static str,
        value: String,
        max: u64,
    },
    #[error(
        "conv={0}: ZNS namespaces have no conventional zones (the backend would leave it inactive)"
    )]
    Conventional(u64),
    #[error("{}", lun_error_text(.0))]
    Lun(LunError),
}

/// `--lun` wording (hm/disk) translated to `--ns` wording (zns/nvm).
fn lun_error_text(e: &LunError) -> String {
    e.to_string()
        .replace("kind=hm", "kind=zns")
        .replace("kind=disk", "kind=nvm")
}

/// Copy limits of a namespace (Identify Namespace MSSRL, MCL, MSRC);
/// `None` = the backend's default. Not part of the guest contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyLimits {
    pub mssrl: Option<u64>,
    pub mcl: Option<u64>,
    pub msrc: Option<u64>,
}

/// One namespace of the NVMe/TCP subsystem, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsSpec {
    /// Geometry and backing file; `kind` HostManaged = zns, Disk = nvm.
    pub dev: LunSpec,
    pub limits: CopyLimits,
}

impl FromStr for NsSpec {
    type Err = NsError;

    fn from_str(spec: &str) -> Result<Self, NsError> {
        let mut rest: Vec<String> = Vec::new();
        let mut kind = None;
        let mut limits = CopyLimits::default();
        for item in spec.split(',').filter(|i| !i.trim().is_empty()) {
            let Some((k, v)) = item.split_once('=') else {
                rest.push(item.to_owned());
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            let (slot, max, key) = match k {
                "kind" => {
                    if kind.is_some() {
                        return Err(NsError::Duplicate(k.to_owned()));
                    }
                    kind = Some(match v {
                        "zns" => "hm",
                        "nvm" => "disk",
                        other => return Err(NsError::BadKind(other.to_owned())),
                    });
                    continue;
                }
                "mssrl" => (&mut limits.mssrl, u64::from(u16::MAX), "mssrl"),
                "mcl" => (&mut limits.mcl, u64::from(u32::MAX), "mcl"),
                "msrc" => (&mut limits.msrc, u64::from(u8::MAX), "msrc"),
                _ => {
                    rest.push(item.to_owned());
                    continue;
                }
            };
            if slot.is_some() {
                return Err(NsError::Duplicate(k.to_owned()));
            }
            let n =
                v.parse::<u64>()
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or_else(|| NsError::BadLimit {
                        key,
                        value: v.to_owned(),
                        max,
                    })?;
            *slot = Some(n);
        }
        let kind = kind.unwrap_or("hm");
        let zoned = kind == "hm";
        // ZNS has no conventional zones: conv defaults to 0 (the --lun
        // default is 1) and anything else is refused.
        let conv_given = rest.iter().any(|i| i.trim_start().starts_with("conv="));
        rest.push(format!("kind={kind}"));
        if zoned && !conv_given {
            rest.push("conv=0".into());
        }
        let dev: LunSpec = rest.join(",").parse().map_err(NsError::Lun)?;
        if let LunKind::HostManaged(Zoned { conv, .. }) = dev.kind {
            if conv > 0 {
                return Err(NsError::Conventional(conv));
            }
        }
        Ok(NsSpec { dev, limits })
    }
}

impl NsSpec {
    pub fn zoned(&self) -> Option<Zoned> {
        match self.dev.kind {
            LunKind::HostManaged(z) => Some(z),
            LunKind::Disk => None,
        }
    }

    /// The `--ns` argument for `zonecopy-vhost`, sizes in bytes.
    pub fn backend_arg(&self) -> String {
        let mut s = String::new();
        if let Some(f) = &self.dev.file {
            s.push_str(&format!("file={},", f.display()));
        }
        match self.zoned() {
            Some(z) => {
                s.push_str(&format!(
                    "kind=zns,size={},bs={},zone={},cap={}",
                    self.dev.size, self.dev.bs, z.zone, z.cap
                ));
                if let Some(n) = z.max_open {
                    s.push_str(&format!(",max-open={n}"));
                }
                if let Some(n) = z.max_active {
                    s.push_str(&format!(",max-active={n}"));
                }
            }
            None => s.push_str(&format!(
                "kind=nvm,size={},bs={}",
                self.dev.size, self.dev.bs
            )),
        }
        for (k, v) in [
            ("mssrl", self.limits.mssrl),
            ("mcl", self.limits.mcl),
            ("msrc", self.limits.msrc),
        ] {
            if let Some(n) = v {
                s.push_str(&format!(",{k}={n}"));
            }
        }
        s
    }

    /// The kernel command line entry `zonecopy.ns<nsid>=...`.
    pub fn cmdline_entry(&self, nsid: usize) -> String {
        format!("zonecopy.ns{nsid}={self}")
    }

    /// Default backing file name in the runner's temp dir.
    pub fn default_file(nsid: usize) -> PathBuf {
        PathBuf::from(format!("ns{nsid}.img"))
    }
}

/// The guest-contract form: `zns:bs=..,size=..,zone=..,cap=..,conv=0` or
/// `nvm:bs=..,size=..`, sizes in bytes.
impl fmt::Display for NsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.zoned() {
            Some(z) => write!(
                f,
                "zns:bs={},size={},zone={},cap={},conv={}",
                self.dev.bs, self.dev.size, z.zone, z.cap, z.conv
            ),
            None => write!(f, "nvm:bs={},size={}", self.dev.bs, self.dev.size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_to_both_sides() {
        let ns: Vec<NsSpec> = DEFAULT_NAMESPACES
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            ns[0].cmdline_entry(1),
            "zonecopy.ns1=zns:bs=4096,size=268435456,zone=4194304,cap=4194304,conv=0"
        );
        assert_eq!(
            ns[1].cmdline_entry(2),
            "zonecopy.ns2=nvm:bs=4096,size=134217728"
        );
        assert_eq!(
            ns[0].backend_arg(),
            "kind=zns,size=268435456,bs=4096,zone=4194304,cap=4194304"
        );
        assert_eq!(ns[1].backend_arg(), "kind=nvm,size=134217728,bs=4096");
    }

    #[test]
    fn zns_is_the_default_kind_and_limits_pass_through() {
        let mut ns: NsSpec = "size=64M,zone=8M,cap=6M,bs=512,mssrl=256,mcl=1024,msrc=7,max-open=4"
            .parse()
            .unwrap();
        ns.dev.file = Some("/t/ns1.img".into());
        assert_eq!(
            ns.backend_arg(),
            "file=/t/ns1.img,kind=zns,size=67108864,bs=512,zone=8388608,cap=6291456,\
             max-open=4,mssrl=256,mcl=1024,msrc=7"
        );
        assert_eq!(
            ns.to_string(),
            "zns:bs=512,size=67108864,zone=8388608,cap=6291456,conv=0"
        );
        let explicit_zero: NsSpec = "size=64M,zone=8M,conv=0".parse().unwrap();
        assert_eq!(explicit_zero.zoned().unwrap().conv, 0);
    }

    #[test]
    fn rejects_bad_specs() {
        let e = |s: &str| s.parse::<NsSpec>().unwrap_err();
        assert_eq!(e("kind=hm,size=4M"), NsError::BadKind("hm".into()));
        assert_eq!(e("size=16M,zone=4M,conv=1"), NsError::Conventional(1));
        assert_eq!(
            e("kind=nvm,kind=zns,size=1M"),
            NsError::Duplicate("kind".into())
        );
        assert_eq!(
            e("kind=nvm,size=1M,msrc=256"),
            NsError::BadLimit {
                key: "msrc",
                value: "256".into(),
                max: 255
            }
        );
        assert_eq!(
            e("kind=nvm,size=1M,mssrl=1,mssrl=2"),
            NsError::Duplicate("mssrl".into())
        );
        assert_eq!(
            e("kind=nvm,size=4M,zone=1M").to_string(),
            "`zone` is only valid for kind=zns"
        );
        assert_eq!(
            e("kind=zns,size=4M"),
            NsError::Lun(LunError::Missing("zone"))
        );
    }
}
