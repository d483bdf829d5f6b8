//! The `--lun` and `--ns` specs of `zonecopy-vhost` and `zonecopy-ci`:
//! comma-separated KEY=VALUE pairs, sizes with K/M/G/T suffixes. A spec is
//! the guest-contract geometry ([`LunSpec`], [`NsSpec`]) plus what only the
//! backend needs: the backing file, zone limits, copy limits and the write
//! cache. `Display` writes the normalised form (sizes in bytes, defaults
//! filled in), which parses back to the same value: the runner hands it to
//! the backend.

use std::{collections::BTreeMap, fmt, path::PathBuf, str::FromStr};

use crate::{
    size::{parse_size, SizeError},
    spec::{LunKind, LunSpec, NsKind, NsSpec, ZoneSpec},
};

/// Default logical block size of every kind.
pub const DEFAULT_BLOCK_SIZE: u64 = 4096;
/// Default number of conventional zones at the start of a zoned LUN (a
/// ZNS namespace has none).
pub const DEFAULT_CONVENTIONAL_ZONES: u64 = 1;
/// The backend's copy limits when a `--ns` leaves them out (Identify
/// Namespace MSSRL, MCL in blocks; MSRC 0's based).
pub const DEFAULT_MSSRL: u16 = 4096;
pub const DEFAULT_MCL: u32 = 65536;
pub const DEFAULT_MSRC: u8 = 127;

/// Why a `--lun` or `--ns` spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("'{0}' is not KEY=VALUE")]
    NotKeyValue(String),
    #[error("unknown key '{key}' (known: {known})")]
    UnknownKey { key: String, known: String },
    #[error("key '{0}' given twice")]
    Duplicate(String),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{key}={source}")]
    Size {
        key: &'static str,
        source: SizeError,
    },
    #[error("{key}={value}: not a count (a non-negative integer below 2^32)")]
    BadCount { key: &'static str, value: String },
    #[error("{key}={value}: more than {max}")]
    Limit {
        key: &'static str,
        value: String,
        max: u64,
    },
    #[error("kind={value}: expected {expected}")]
    BadKind {
        value: String,
        expected: &'static str,
    },
    #[error("bs={0}: expected 512 or 4096")]
    BadBlockSize(String),
    #[error("{0}= applies to zoned kinds (hm, ha, zns) only")]
    ZonedKeyOnDisk(&'static str),
    #[error("{0}= applies to kind=hm only (sequential write preferred zones have no gap zones and no open/active limits)")]
    HostManagedKey(&'static str),
    #[error("{key}={value}: expected 0 or 1")]
    BadFlag { key: &'static str, value: String },
    #[error("cache={0}: expected volatile or none")]
    BadCache(String),
    #[error("{0} must not be zero")]
    Zero(&'static str),
    #[error("{what} ({value} bytes) is not a multiple of {of} ({of_value} bytes)")]
    Misaligned {
        what: &'static str,
        value: u64,
        of: &'static str,
        of_value: u64,
    },
    #[error("zone capacity {cap} is larger than the zone size {zone}")]
    CapTooLarge { cap: u64, zone: u64 },
    #[error("{conv} conventional zones leave no sequential zone of {zones}")]
    TooManyConv { conv: u64, zones: u64 },
    #[error("conv={0}: ZNS namespaces have no conventional zones")]
    Conventional(u64),
}

/// The volatile write cache (`cache=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cache {
    /// Every write is durable when it completes.
    #[default]
    None,
    /// Writes without FUA are held in memory until a flush
    /// (`storage::cache`), so a `power_cut` loses them.
    Volatile,
}

/// Open / active zone limits (0 = none; `None` = the backend's default,
/// none). Not part of the guest contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZoneLimits {
    pub max_open: Option<u32>,
    pub max_active: Option<u32>,
}

/// Copy limits of a namespace (Identify Namespace MSSRL, MCL, MSRC);
/// `None` = the backend's default ([`DEFAULT_MSSRL`], ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyLimits {
    pub mssrl: Option<u16>,
    pub mcl: Option<u32>,
    pub msrc: Option<u8>,
}

impl CopyLimits {
    /// (MSSRL, MCL, MSRC) with the defaults filled in.
    pub fn resolved(&self) -> (u16, u32, u8) {
        (
            self.mssrl.unwrap_or(DEFAULT_MSSRL),
            self.mcl.unwrap_or(DEFAULT_MCL),
            self.msrc.unwrap_or(DEFAULT_MSRC),
        )
    }
}

/// One `--lun`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunArg {
    /// Backing file; `None` = not given (the runner picks one in its temp
    /// dir; the backend requires it).
    pub file: Option<PathBuf>,
    /// What the guest is told.
    pub spec: LunSpec,
    pub limits: ZoneLimits,
    pub cache: Cache,
}

/// One `--ns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsArg {
    pub file: Option<PathBuf>,
    pub spec: NsSpec,
    pub limits: ZoneLimits,
    pub copy: CopyLimits,
    pub cache: Cache,
    /// `timing=PROFILE`: the device timing model's profile for this
    /// namespace (a built-in name or a file path, see
    /// [`crate::timing`]); `None` = the backend's `--timing`, if any.
    pub timing: Option<String>,
}

/// The keys of every spec; then the LUN's and the namespace's own.
const DEVICE_KEYS: &[&str] = &[
    "file",
    "size",
    "kind",
    "bs",
    "zone",
    "cap",
    "conv",
    "max-open",
    "max-active",
];
const LUN_KEYS: [&[&str]; 2] = [DEVICE_KEYS, &["urswrz", "cache"]];
const NS_KEYS: [&[&str]; 2] = [DEVICE_KEYS, &["mssrl", "mcl", "msrc", "cache", "timing"]];
const ZONED_KEYS: [&str; 6] = ["zone", "cap", "conv", "max-open", "max-active", "urswrz"];
/// Keys of host-managed LUNs (and ZNS namespaces) only.
const HM_KEYS: [&str; 3] = ["cap", "max-open", "max-active"];

/// The pairs of one spec, each key known and given once.
struct Pairs<'a>(BTreeMap<&'static str, &'a str>);

impl<'a> Pairs<'a> {
    fn parse(spec: &'a str, known: [&'static [&'static str]; 2]) -> Result<Self, ArgError> {
        let mut kv = BTreeMap::new();
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| ArgError::NotKeyValue(item.to_owned()))?;
            let key = known
                .iter()
                .flat_map(|k| k.iter().copied())
                .find(|k| *k == key)
                .ok_or_else(|| ArgError::UnknownKey {
                    key: key.to_owned(),
                    known: known.concat().join(", "),
                })?;
            if kv.insert(key, value).is_some() {
                return Err(ArgError::Duplicate(key.to_owned()));
            }
        }
        Ok(Pairs(kv))
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn size(&self, key: &'static str) -> Result<Option<u64>, ArgError> {
        self.0
            .get(key)
            .map(|v| parse_size(v).map_err(|source| ArgError::Size { key, source }))
            .transpose()
    }

    /// A decimal count up to `max`.
    fn count(&self, key: &'static str, max: u64) -> Result<Option<u64>, ArgError> {
        let Some(v) = self.0.get(key) else {
            return Ok(None);
        };
        let n: u64 = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse().ok().filter(|&n| n <= u64::from(u32::MAX))
        } else {
            None
        }
        .ok_or_else(|| ArgError::BadCount {
            key,
            value: (*v).to_owned(),
        })?;
        if n > max {
            return Err(ArgError::Limit {
                key,
                value: (*v).to_owned(),
                max,
            });
        }
        Ok(Some(n))
    }

    fn count32(&self, key: &'static str) -> Result<Option<u32>, ArgError> {
        Ok(self
            .count(key, u64::from(u32::MAX))?
            .and_then(|n| u32::try_from(n).ok()))
    }

    fn file(&self) -> Option<PathBuf> {
        self.0
            .get("file")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// `timing=`: a profile name or path, checked when loaded (the
    /// backend); here only that it is there.
    fn timing(&self) -> Result<Option<String>, ArgError> {
        match self.0.get("timing") {
            None => Ok(None),
            Some(&"") => Err(ArgError::Missing("a profile after timing=")),
            Some(t) => Ok(Some((*t).to_owned())),
        }
    }

    fn cache(&self) -> Result<Cache, ArgError> {
        match self.0.get("cache").copied() {
            None | Some("none") => Ok(Cache::None),
            Some("volatile") => Ok(Cache::Volatile),
            Some(other) => Err(ArgError::BadCache(other.to_owned())),
        }
    }

    /// `kind=`, `default` when not given.
    fn kind<K: FromStr>(&self, default: K, expected: &'static str) -> Result<K, ArgError> {
        match self.0.get("kind") {
            None => Ok(default),
            Some(k) => k.parse().map_err(|_| ArgError::BadKind {
                value: (*k).to_owned(),
                expected,
            }),
        }
    }

    /// Block size, size and, for a zoned kind, the zones (`host_aware`:
    /// no cap and no limits; `conv_default`: conventional zones when
    /// `conv=` is not given).
    fn geometry(
        &self,
        zoned: bool,
        host_aware: bool,
        conv_default: u64,
    ) -> Result<(u64, u64, Option<ZoneSpec>, ZoneLimits), ArgError> {
        let size = self.size("size")?.ok_or(ArgError::Missing("size=BYTES"))?;
        let bs = match self.0.get("bs") {
            None => DEFAULT_BLOCK_SIZE,
            Some(v) => match parse_size(v) {
                Ok(b @ (512 | 4096)) => b,
                _ => return Err(ArgError::BadBlockSize((*v).to_owned())),
            },
        };
        if size == 0 {
            return Err(ArgError::Zero("size"));
        }
        multiple("size", size, "bs", bs)?;
        if !zoned {
            if let Some(k) = ZONED_KEYS.into_iter().find(|k| self.has(k)) {
                return Err(ArgError::ZonedKeyOnDisk(k));
            }
            return Ok((bs, size, None, ZoneLimits::default()));
        }
        if host_aware {
            if let Some(k) = HM_KEYS.into_iter().find(|k| self.has(k)) {
                return Err(ArgError::HostManagedKey(k));
            }
        }
        let zone = self.size("zone")?.ok_or(ArgError::Missing(
            "zone=BYTES (required for kind=hm, kind=ha and kind=zns)",
        ))?;
        let cap = self.size("cap")?.unwrap_or(zone);
        for (what, v) in [("zone", zone), ("cap", cap)] {
            if v == 0 {
                return Err(ArgError::Zero(what));
            }
            multiple(what, v, "bs", bs)?;
        }
        if cap > zone {
            return Err(ArgError::CapTooLarge { cap, zone });
        }
        multiple("size", size, "zone", zone)?;
        let conv = self
            .count("conv", u64::from(u32::MAX))?
            .unwrap_or(conv_default);
        let zones = size / zone;
        if conv >= zones {
            return Err(ArgError::TooManyConv { conv, zones });
        }
        let urswrz = match self.0.get("urswrz").copied() {
            None | Some("1") => true,
            Some("0") => false,
            Some(other) => {
                return Err(ArgError::BadFlag {
                    key: "urswrz",
                    value: other.to_owned(),
                })
            }
        };
        let limits = ZoneLimits {
            max_open: self.count32("max-open")?,
            max_active: self.count32("max-active")?,
        };
        let z = ZoneSpec {
            zone_size: zone,
            capacity: cap,
            conventional: conv,
            urswrz,
        };
        Ok((bs, size, Some(z), limits))
    }
}

fn multiple(
    what: &'static str,
    value: u64,
    of: &'static str,
    of_value: u64,
) -> Result<(), ArgError> {
    if of_value == 0 || !value.is_multiple_of(of_value) {
        return Err(ArgError::Misaligned {
            what,
            value,
            of,
            of_value,
        });
    }
    Ok(())
}

impl FromStr for LunArg {
    type Err = ArgError;

    /// Defaults: kind=hm, bs=4096, conv=1, urswrz=1, cap=zone.
    fn from_str(spec: &str) -> Result<Self, ArgError> {
        let kv = Pairs::parse(spec, LUN_KEYS)?;
        let kind = kv.kind(LunKind::HostManaged, "hm, ha or disk")?;
        let (block_size, size, zones, limits) = kv.geometry(
            kind.is_zoned(),
            kind == LunKind::HostAware,
            DEFAULT_CONVENTIONAL_ZONES,
        )?;
        Ok(LunArg {
            file: kv.file(),
            spec: LunSpec {
                kind,
                block_size,
                size,
                zones,
            },
            limits,
            cache: kv.cache()?,
        })
    }
}

impl FromStr for NsArg {
    type Err = ArgError;

    /// The `--lun` keys with kind=zns|nvm (default zns; no conventional
    /// zones, no urswrz: ZNS reads past the write pointer always succeed)
    /// plus the copy limits.
    fn from_str(spec: &str) -> Result<Self, ArgError> {
        let kv = Pairs::parse(spec, NS_KEYS)?;
        let kind = kv.kind(NsKind::Zns, "zns or nvm")?;
        if let Some(conv) = kv.count("conv", u64::from(u32::MAX))?.filter(|&c| c > 0) {
            return Err(ArgError::Conventional(conv));
        }
        let (block_size, size, zones, limits) = kv.geometry(kind.is_zoned(), false, 0)?;
        let narrow = |n: Option<u64>| n.map(|n| n as u32);
        let copy = CopyLimits {
            mssrl: kv.count("mssrl", u64::from(u16::MAX))?.map(|n| n as u16),
            mcl: narrow(kv.count("mcl", u64::from(u32::MAX))?),
            msrc: kv.count("msrc", u64::from(u8::MAX))?.map(|n| n as u8),
        };
        Ok(NsArg {
            file: kv.file(),
            spec: NsSpec {
                kind,
                block_size,
                size,
                zones,
            },
            limits,
            copy,
            cache: kv.cache()?,
            timing: kv.timing()?,
        })
    }
}

/// The keys every normalised spec shares: file, kind, size, bs, the zones
/// (`cap` only where it may differ from `zone`, `conv` only for LUNs) and
/// their limits. `cache` is written by the caller, last.
fn fmt_common(
    f: &mut fmt::Formatter<'_>,
    file: &Option<PathBuf>,
    kind: &str,
    (bs, size): (u64, u64),
    zones: Option<(ZoneSpec, bool, bool)>,
    limits: &ZoneLimits,
) -> fmt::Result {
    if let Some(p) = file {
        write!(f, "file={},", p.display())?;
    }
    write!(f, "kind={kind},size={size},bs={bs}")?;
    if let Some((z, with_cap, with_conv)) = zones {
        write!(f, ",zone={}", z.zone_size)?;
        if with_cap {
            write!(f, ",cap={}", z.capacity)?;
        }
        if with_conv {
            write!(f, ",conv={}", z.conventional)?;
        }
        if !z.urswrz {
            f.write_str(",urswrz=0")?;
        }
    }
    for (k, v) in [
        ("max-open", limits.max_open),
        ("max-active", limits.max_active),
    ] {
        if let Some(n) = v {
            write!(f, ",{k}={n}")?;
        }
    }
    Ok(())
}

fn fmt_cache(f: &mut fmt::Formatter<'_>, cache: Cache) -> fmt::Result {
    match cache {
        Cache::None => Ok(()),
        Cache::Volatile => f.write_str(",cache=volatile"),
    }
}

impl fmt::Display for LunArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        let hm = s.kind == LunKind::HostManaged;
        fmt_common(
            f,
            &self.file,
            s.kind.as_str(),
            (s.block_size, s.size),
            s.zones.map(|z| (z, hm, true)),
            &self.limits,
        )?;
        fmt_cache(f, self.cache)
    }
}

impl fmt::Display for NsArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        fmt_common(
            f,
            &self.file,
            s.kind.as_str(),
            (s.block_size, s.size),
            s.zones.map(|z| (z, true, false)),
            &self.limits,
        )?;
        for (k, v) in [
            ("mssrl", self.copy.mssrl.map(u64::from)),
            ("mcl", self.copy.mcl.map(u64::from)),
            ("msrc", self.copy.msrc.map(u64::from)),
        ] {
            if let Some(n) = v {
                write!(f, ",{k}={n}")?;
            }
        }
        fmt_cache(f, self.cache)?;
        match &self.timing {
            Some(t) => write!(f, ",timing={t}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lun_defaults_and_normal_form() {
        let mut l: LunArg = "size=1M,zone=256K".parse().unwrap();
        assert_eq!(
            l.to_string(),
            "kind=hm,size=1048576,bs=4096,zone=262144,cap=262144,conv=1"
        );
        assert_eq!(
            l.spec.to_string(),
            "hm:bs=4096,size=1048576,zone=262144,cap=262144,conv=1"
        );
        l.file = Some("/tmp/x/lun0.img".into());
        assert!(l.to_string().starts_with("file=/tmp/x/lun0.img,kind=hm,"));
        let ha: LunArg = "kind=ha,size=16M,zone=4M,urswrz=0,cache=volatile"
            .parse()
            .unwrap();
        assert_eq!(
            ha.to_string(),
            "kind=ha,size=16777216,bs=4096,zone=4194304,conv=1,urswrz=0,cache=volatile"
        );
        let d: LunArg = "kind=disk,size=64M,file=/a/b=c,bs=512".parse().unwrap();
        assert_eq!(d.to_string(), "file=/a/b=c,kind=disk,size=67108864,bs=512");
    }

    #[test]
    fn ns_defaults_and_normal_form() {
        let n: NsArg = "size=64M,zone=8M,cap=6M,bs=512,mssrl=256,mcl=1024,msrc=7,max-open=4"
            .parse()
            .unwrap();
        assert_eq!(
            n.to_string(),
            "kind=zns,size=67108864,bs=512,zone=8388608,cap=6291456,max-open=4,\
             mssrl=256,mcl=1024,msrc=7"
        );
        assert_eq!(
            n.spec.to_string(),
            "zns:bs=512,size=67108864,zone=8388608,cap=6291456,conv=0"
        );
        assert_eq!(n.copy.resolved(), (256, 1024, 7));
        assert_eq!(CopyLimits::default().resolved(), (4096, 65536, 127));
        let v: NsArg = "kind=nvm,size=128M".parse().unwrap();
        assert_eq!(v.to_string(), "kind=nvm,size=134217728,bs=4096");
        assert_eq!(v.spec.to_string(), "nvm:bs=4096,size=134217728");
    }

    #[test]
    fn lun_errors_say_what_is_wrong() {
        let e = |s: &str| s.parse::<LunArg>().unwrap_err().to_string();
        assert_eq!(e("file=a,zone=64M"), "missing size=BYTES");
        assert_eq!(
            e("file=a,size=1G"),
            "missing zone=BYTES (required for kind=hm, kind=ha and kind=zns)"
        );
        assert_eq!(
            e("size=1G,zone=64M,zonesize=1"),
            "unknown key 'zonesize' (known: file, size, kind, bs, zone, cap, conv, \
             max-open, max-active, urswrz, cache)"
        );
        assert_eq!(e("size=1G,zone"), "'zone' is not KEY=VALUE");
        assert_eq!(e("file=a,file=b,size=1G"), "key 'file' given twice");
        assert_eq!(
            e("size=1Q,zone=64M"),
            "size=1Q: not a size in bytes (a number with an optional K, M, G or T suffix)"
        );
        assert_eq!(
            e("size=1G,zone=64M,conv=-1"),
            "conv=-1: not a count (a non-negative integer below 2^32)"
        );
        assert_eq!(
            e("size=1G,zone=64M,max-open=4294967296"),
            "max-open=4294967296: not a count (a non-negative integer below 2^32)"
        );
        assert_eq!(e("size=1G,kind=hA"), "kind=hA: expected hm, ha or disk");
        assert_eq!(
            e("size=1G,zone=64M,bs=1024"),
            "bs=1024: expected 512 or 4096"
        );
        assert_eq!(
            e("size=1G,kind=disk,zone=64M"),
            "zone= applies to zoned kinds (hm, ha, zns) only"
        );
        assert_eq!(e("size=1G,zone=64M,urswrz=2"), "urswrz=2: expected 0 or 1");
        for key in ["cap=32M", "max-open=2", "max-active=2"] {
            let m = e(&format!("kind=ha,size=1G,zone=64M,{key}"));
            assert!(m.contains("applies to kind=hm only"), "{key}: {m}");
        }
        assert_eq!(
            e("size=16M,zone=4M,cap=5M,conv=0"),
            "zone capacity 5242880 is larger than the zone size 4194304"
        );
        assert_eq!(
            e("size=16M,zone=4M,conv=4"),
            "4 conventional zones leave no sequential zone of 4"
        );
        assert!(e("size=10M,zone=4M").contains("not a multiple of zone"));
        assert!(e("size=16M,zone=4M,cap=1000").contains("cap (1000 bytes)"));
        assert_eq!(e("kind=disk,size=0"), "size must not be zero");
        assert_eq!(
            e("kind=disk,size=1M,cache=wb"),
            "cache=wb: expected volatile or none"
        );
    }

    #[test]
    fn ns_errors_say_what_is_wrong() {
        let e = |s: &str| s.parse::<NsArg>().unwrap_err().to_string();
        assert_eq!(e("kind=hm,size=4M"), "kind=hm: expected zns or nvm");
        assert_eq!(
            e("size=16M,zone=4M,conv=1"),
            "conv=1: ZNS namespaces have no conventional zones"
        );
        assert_eq!(e("kind=nvm,kind=zns,size=1M"), "key 'kind' given twice");
        assert_eq!(e("kind=nvm,size=1M,msrc=256"), "msrc=256: more than 255");
        assert_eq!(
            e("kind=nvm,size=1M,mssrl=65536"),
            "mssrl=65536: more than 65535"
        );
        assert!(e("size=16M,zone=4M,urswrz=0").starts_with("unknown key 'urswrz'"));
        assert_eq!(
            e("kind=nvm,size=4M,zone=1M"),
            "zone= applies to zoned kinds (hm, ha, zns) only"
        );
        assert!("size=64M,zone=8M,conv=0".parse::<NsArg>().is_ok());
    }

    fn lun_arg() -> impl Strategy<Value = LunArg> {
        (
            prop::sample::select(LunKind::ALL.to_vec()),
            prop::sample::select(vec![512u64, 4096]),
            1u64..16,
            2u64..16,
            0u64..16,
            0u64..16,
            any::<(bool, bool, Option<u32>, Option<u32>, bool)>(),
        )
            .prop_map(
                |(kind, bs, zb, n, less, conv, (urswrz, file, mo, ma, vol))| {
                    let zoned = kind.is_zoned();
                    let hm = kind == LunKind::HostManaged;
                    LunArg {
                        file: file.then(|| PathBuf::from("/tmp/a=b.img")),
                        spec: LunSpec {
                            kind,
                            block_size: bs,
                            size: zb * bs * n,
                            zones: zoned.then(|| ZoneSpec {
                                zone_size: zb * bs,
                                capacity: if hm { (zb - less % zb) * bs } else { zb * bs },
                                conventional: conv % n,
                                urswrz,
                            }),
                        },
                        limits: ZoneLimits {
                            max_open: mo.filter(|_| hm),
                            max_active: ma.filter(|_| hm),
                        },
                        cache: if vol { Cache::Volatile } else { Cache::None },
                    }
                },
            )
    }

    fn ns_arg() -> impl Strategy<Value = NsArg> {
        (
            lun_arg(),
            any::<(Option<u16>, Option<u32>, Option<u8>)>(),
            proptest::option::of("[a-z0-9./_-]{1,20}"),
        )
            .prop_map(|(l, (mssrl, mcl, msrc), timing)| {
                let zns = l.spec.kind == LunKind::HostManaged;
                NsArg {
                    file: l.file,
                    spec: NsSpec {
                        kind: if zns { NsKind::Zns } else { NsKind::Nvm },
                        block_size: l.spec.block_size,
                        size: l.spec.size,
                        zones: l.spec.zones.filter(|_| zns).map(|z| ZoneSpec {
                            conventional: 0,
                            urswrz: true,
                            ..z
                        }),
                    },
                    limits: l.limits,
                    copy: CopyLimits { mssrl, mcl, msrc },
                    cache: l.cache,
                    timing,
                }
            })
    }

    proptest! {
        #[test]
        fn lun_arg_round_trips(l in lun_arg()) {
            prop_assert_eq!(l.to_string().parse::<LunArg>(), Ok(l));
        }

        #[test]
        fn ns_arg_round_trips(n in ns_arg()) {
            prop_assert_eq!(n.to_string().parse::<NsArg>(), Ok(n));
        }

        #[test]
        fn junk_is_an_error_not_a_panic(s in "[a-z=,0-9KMG-]{0,60}") {
            let _ = s.parse::<LunArg>();
            let _ = s.parse::<NsArg>();
        }
    }
}
