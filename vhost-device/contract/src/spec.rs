//! Device geometry as the guest contract writes it (`zonecopy.lun<N>=`,
//! `zonecopy.ns<N>=`, `zonecopy.scsihd=`, `zonecopy.nvmeref=`):
//! `<kind>:bs=<bytes>,size=<bytes>[,zone=<bytes>,cap=<bytes>,conv=<count>,urswrz=0|1]`,
//! plain decimal numbers. Each spec has one parser (`FromStr`) and one
//! `Display`, and the two round-trip.

use std::{collections::BTreeMap, fmt, str::FromStr};

/// Why a geometry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("expected <kind>:bs=<bytes>,size=<bytes>[,...]")]
    NoKind,
    #[error("unknown kind {0:?} (expected {1})")]
    UnknownKind(String, &'static str),
    #[error("{0:?} is not key=value")]
    NotKeyValue(String),
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("{0}: {1:?} is not a decimal number")]
    NotANumber(String, String),
    #[error("{0}: {1} is out of range")]
    OutOfRange(String, String),
    #[error("{0} given twice")]
    Duplicate(String),
    #[error("{0}= is missing")]
    Missing(&'static str),
    #[error("bs={0} is not a power of two in 512..=65536")]
    BlockSize(u64),
    #[error("size={size} is not a non-zero multiple of bs={bs}")]
    Size { size: u64, bs: u64 },
    #[error("{key}= is only valid for kind {zoned}")]
    ZonedOnly {
        key: &'static str,
        zoned: &'static str,
    },
    #[error("zone= is missing for kind {0}")]
    NoZone(&'static str),
    #[error("zone={zone} is not a non-zero multiple of bs={bs}")]
    Zone { zone: u64, bs: u64 },
    #[error("cap={cap} is not a non-zero multiple of bs={bs} up to zone={zone}")]
    Cap { cap: u64, bs: u64, zone: u64 },
    #[error("conv={conv} exceeds the {zones} zones")]
    Conv { conv: u64, zones: u64 },
    #[error("urswrz={0} is not 0 or 1")]
    Urswrz(u64),
}

/// A decimal number, nothing else (no sign, no suffix, no spaces).
pub fn number(key: &str, s: &str) -> Result<u64, SpecError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpecError::NotANumber(key.to_owned(), s.to_owned()));
    }
    s.parse::<u64>()
        .map_err(|_| SpecError::OutOfRange(key.to_owned(), s.to_owned()))
}

/// Whether and how a LUN is zoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LunKind {
    /// `hm`: host-managed zoned (ZBC, peripheral device type 14h).
    HostManaged,
    /// `ha`: host aware zoned (peripheral device type 00h, sequential
    /// write preferred zones).
    HostAware,
    /// `disk`: a regular, not zoned disk.
    Disk,
}

impl LunKind {
    pub const ALL: [LunKind; 3] = [Self::HostManaged, Self::HostAware, Self::Disk];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HostManaged => "hm",
            Self::HostAware => "ha",
            Self::Disk => "disk",
        }
    }

    pub fn is_zoned(self) -> bool {
        self != Self::Disk
    }
}

impl fmt::Display for LunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LunKind {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| SpecError::UnknownKind(s.to_owned(), "hm, ha or disk"))
    }
}

/// Whether a namespace is zoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsKind {
    /// `zns`: Zoned Namespace command set.
    Zns,
    /// `nvm`: NVM command set, not zoned.
    Nvm,
}

impl NsKind {
    pub const ALL: [NsKind; 2] = [Self::Zns, Self::Nvm];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zns => "zns",
            Self::Nvm => "nvm",
        }
    }

    pub fn is_zoned(self) -> bool {
        self == Self::Zns
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NsKind {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| SpecError::UnknownKind(s.to_owned(), "zns or nvm"))
    }
}

/// The zone layout of a zoned LUN or namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneSpec {
    /// Zone size in bytes (`zone=`).
    pub zone_size: u64,
    /// Writable capacity of each sequential zone in bytes (`cap=`, default
    /// the zone size).
    pub capacity: u64,
    /// Number of conventional zones at the start (`conv=`, default 0).
    pub conventional: u64,
    /// VPD B6h URSWRZ (`urswrz=0|1`, default 1).
    pub urswrz: bool,
}

/// Block size, capacity and zones: what every spec kind shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    block_size: u64,
    size: u64,
    zones: Option<ZoneSpec>,
}

const KEYS: [&str; 6] = ["bs", "size", "zone", "cap", "conv", "urswrz"];

impl Geometry {
    /// `params` is what follows `<kind>:`; `zoned` names the zoned kind (for
    /// messages) when the spec is zoned.
    fn parse(
        params: &str,
        zoned: Option<&'static str>,
        zoned_name: &'static str,
    ) -> Result<Self, SpecError> {
        let mut fields: BTreeMap<&str, u64> = BTreeMap::new();
        for item in params.split(',') {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| SpecError::NotKeyValue(item.to_owned()))?;
            let k = KEYS
                .into_iter()
                .find(|x| *x == k)
                .ok_or_else(|| SpecError::UnknownKey(k.to_owned()))?;
            if fields.insert(k, number(k, v)?).is_some() {
                return Err(SpecError::Duplicate(k.to_owned()));
            }
        }
        let bs = *fields.get("bs").ok_or(SpecError::Missing("bs"))?;
        let size = *fields.get("size").ok_or(SpecError::Missing("size"))?;
        if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
            return Err(SpecError::BlockSize(bs));
        }
        if size == 0 || size % bs != 0 {
            return Err(SpecError::Size { size, bs });
        }
        let Some(kind) = zoned else {
            if let Some(key) = KEYS[2..].iter().copied().find(|k| fields.contains_key(k)) {
                return Err(SpecError::ZonedOnly {
                    key,
                    zoned: zoned_name,
                });
            }
            return Ok(Geometry {
                block_size: bs,
                size,
                zones: None,
            });
        };
        let zone = *fields.get("zone").ok_or(SpecError::NoZone(kind))?;
        if zone == 0 || zone % bs != 0 {
            return Err(SpecError::Zone { zone, bs });
        }
        let cap = fields.get("cap").copied().unwrap_or(zone);
        if cap == 0 || cap > zone || cap % bs != 0 {
            return Err(SpecError::Cap { cap, bs, zone });
        }
        let conv = fields.get("conv").copied().unwrap_or(0);
        let zones = size.div_ceil(zone);
        if conv > zones {
            return Err(SpecError::Conv { conv, zones });
        }
        let urswrz = match fields.get("urswrz").copied().unwrap_or(1) {
            0 => false,
            1 => true,
            u => return Err(SpecError::Urswrz(u)),
        };
        Ok(Geometry {
            block_size: bs,
            size,
            zones: Some(ZoneSpec {
                zone_size: zone,
                capacity: cap,
                conventional: conv,
                urswrz,
            }),
        })
    }
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bs={},size={}", self.block_size, self.size)?;
        if let Some(z) = self.zones {
            write!(
                f,
                ",zone={},cap={},conv={}",
                z.zone_size, z.capacity, z.conventional
            )?;
            if !z.urswrz {
                f.write_str(",urswrz=0")?;
            }
        }
        Ok(())
    }
}

/// Splits `<kind>:<params>`.
fn split_kind(value: &str) -> Result<(&str, &str), SpecError> {
    value.split_once(':').ok_or(SpecError::NoKind)
}

/// One LUN as the host configured it: `zonecopy.lun<N>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LunSpec {
    /// `hm`, `ha` or `disk`.
    pub kind: LunKind,
    /// Logical block size in bytes (`bs=`).
    pub block_size: u64,
    /// Capacity in bytes (`size=`).
    pub size: u64,
    /// Zone layout; `Some` exactly for `hm` and `ha`.
    pub zones: Option<ZoneSpec>,
}

impl LunSpec {
    /// Number of zones: the last zone may be smaller (a "runt" zone).
    pub fn nr_zones(&self) -> Option<u64> {
        self.zones.map(|z| self.size.div_ceil(z.zone_size))
    }

    /// A plain disk.
    pub fn disk(block_size: u64, size: u64) -> Self {
        LunSpec {
            kind: LunKind::Disk,
            block_size,
            size,
            zones: None,
        }
    }

    /// What follows `<kind>:`: `bs=..,size=..[,zone=..]` (also the whole
    /// value of `zonecopy.scsihd=` and `zonecopy.nvmeref=`).
    pub fn params(&self) -> impl fmt::Display {
        self.geometry()
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            block_size: self.block_size,
            size: self.size,
            zones: self.zones,
        }
    }
}

impl FromStr for LunSpec {
    type Err = SpecError;
    fn from_str(value: &str) -> Result<Self, SpecError> {
        let (kind, params) = split_kind(value)?;
        let kind: LunKind = kind.parse()?;
        let g = Geometry::parse(params, kind.is_zoned().then_some(kind.as_str()), "hm")?;
        Ok(LunSpec {
            kind,
            block_size: g.block_size,
            size: g.size,
            zones: g.zones,
        })
    }
}

impl fmt::Display for LunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.geometry())
    }
}

/// One namespace as the host configured it: `zonecopy.ns<N>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsSpec {
    /// `zns` or `nvm`.
    pub kind: NsKind,
    /// Logical block size in bytes (`bs=`).
    pub block_size: u64,
    /// Capacity in bytes (`size=`).
    pub size: u64,
    /// Zone layout; `Some` exactly for `zns`.
    pub zones: Option<ZoneSpec>,
}

impl NsSpec {
    /// Number of zones (the last may be smaller).
    pub fn nr_zones(&self) -> Option<u64> {
        self.zones.map(|z| self.size.div_ceil(z.zone_size))
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            block_size: self.block_size,
            size: self.size,
            zones: self.zones,
        }
    }
}

impl FromStr for NsSpec {
    type Err = SpecError;
    fn from_str(value: &str) -> Result<Self, SpecError> {
        let (kind, params) = split_kind(value)?;
        let kind: NsKind = kind.parse()?;
        let g = Geometry::parse(params, kind.is_zoned().then_some(kind.as_str()), "zns")?;
        Ok(NsSpec {
            kind,
            block_size: g.block_size,
            size: g.size,
            zones: g.zones,
        })
    }
}

impl fmt::Display for NsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.geometry())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIB: u64 = 1 << 20;

    /// Valid zone layouts for a block size: (size, zones).
    pub(crate) fn zones(zoned: bool) -> impl Strategy<Value = (u64, u64, Option<ZoneSpec>)> {
        (
            prop::sample::select(vec![512u64, 4096, 65536]),
            1u64..64,
            1u64..64,
            0u64..64,
            0u64..8,
            any::<bool>(),
        )
            .prop_map(move |(bs, zone_blocks, n, cap_less, conv, urswrz)| {
                let zone = zone_blocks * bs;
                let zones = zoned.then(|| ZoneSpec {
                    zone_size: zone,
                    capacity: zone - (cap_less % zone_blocks) * bs,
                    conventional: conv.min(n),
                    urswrz,
                });
                (bs, zone * n, zones)
            })
    }

    proptest! {
        #[test]
        fn lun_round_trips(kind in prop::sample::select(LunKind::ALL.to_vec()), g in zones(true)) {
            let (bs, size, zones) = g;
            let l = LunSpec { kind, block_size: bs, size, zones: zones.filter(|_| kind.is_zoned()) };
            prop_assert_eq!(l.to_string().parse::<LunSpec>(), Ok(l));
        }

        #[test]
        fn ns_round_trips(kind in prop::sample::select(NsKind::ALL.to_vec()), g in zones(true)) {
            let (bs, size, zones) = g;
            let n = NsSpec { kind, block_size: bs, size, zones: zones.filter(|_| kind.is_zoned()) };
            prop_assert_eq!(n.to_string().parse::<NsSpec>(), Ok(n));
        }

        #[test]
        fn junk_is_an_error_not_a_panic(s in "[a-z:=,0-9]{0,40}") {
            let _ = s.parse::<LunSpec>();
            let _ = s.parse::<NsSpec>();
        }
    }

    #[test]
    fn defaults_and_runt_zone() {
        let s: LunSpec = "hm:bs=512,size=10485760,zone=4194304".parse().unwrap();
        let z = s.zones.unwrap();
        assert_eq!((z.capacity, z.conventional, z.urswrz), (4 * MIB, 0, true));
        assert_eq!(s.nr_zones(), Some(3));
        assert_eq!(
            s.to_string(),
            "hm:bs=512,size=10485760,zone=4194304,cap=4194304,conv=0"
        );
        let d = LunSpec::disk(4096, 192 * MIB);
        assert_eq!(d.params().to_string(), "bs=4096,size=201326592");
        assert_eq!(d.nr_zones(), None);
    }

    #[test]
    fn namespaces() {
        let n: NsSpec = "zns:bs=4096,size=67108864,zone=4194304,cap=3145728"
            .parse()
            .unwrap();
        assert_eq!(n.nr_zones(), Some(16));
        let e = |s: &str| s.parse::<NsSpec>().unwrap_err().to_string();
        assert_eq!(
            e("hm:bs=512,size=512"),
            "unknown kind \"hm\" (expected zns or nvm)"
        );
        assert_eq!(e("zns:bs=512,size=1024"), "zone= is missing for kind zns");
        assert_eq!(
            e("nvm:bs=512,size=1024,zone=512"),
            "zone= is only valid for kind zns"
        );
    }

    #[test]
    fn lun_errors() {
        for (spec, needle) in [
            ("hm", "expected <kind>"),
            ("zz:bs=512,size=512", "unknown kind"),
            ("disk:bs=512", "size= is missing"),
            ("disk:size=512", "bs= is missing"),
            ("disk:bs=512,size=512,bs=512", "twice"),
            ("disk:bs=512,size=-1", "not a decimal"),
            ("disk:bs=512,size=4k", "not a decimal"),
            ("disk:bs=512,size=", "not a decimal"),
            ("disk:bs=512,size=99999999999999999999", "out of range"),
            ("disk:bs=500,size=1000", "power of two"),
            ("disk:bs=0,size=1000", "power of two"),
            ("disk:bs=512,size=1000", "multiple of bs"),
            ("disk:bs=512,size=0", "multiple of bs"),
            ("disk:bs=512,size=1024,zone=512", "only valid for kind hm"),
            ("disk:bs=512,size=1024,speed=1", "unknown key"),
            ("disk:bs=512,size=1024,", "not key=value"),
            ("hm:bs=512,size=1024", "zone= is missing"),
            ("hm:bs=512,size=1024,zone=0", "zone=0"),
            ("hm:bs=512,size=1024,zone=512,cap=1024", "cap=1024"),
            ("hm:bs=512,size=1024,zone=512,cap=0", "cap=0"),
            ("hm:bs=512,size=1024,zone=512,conv=3", "exceeds"),
            (
                "hm:bs=512,size=33554432,zone=1048576,urswrz=2",
                "not 0 or 1",
            ),
            (
                "disk:bs=512,size=1048576,urswrz=1",
                "only valid for kind hm",
            ),
        ] {
            let e = spec.parse::<LunSpec>().expect_err(spec).to_string();
            assert!(e.contains(needle), "{spec}: {e} lacks {needle:?}");
        }
    }
}
