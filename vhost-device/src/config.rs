//! Command line: clap arguments, the `--lun` and `--ns` spec parsers, and
//! `TryFrom<Args> for Config`.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use clap::Parser;

use crate::{
    nvme::CopyLimits,
    storage::{DeviceConfig, ZoneType, ZonedConfig},
    transport::vhost_user_scsi::MAX_REQUEST_QUEUES,
};

/// Default logical block size of every kind.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;
/// Default number of conventional zones at the start of a zoned LUN.
pub const DEFAULT_CONVENTIONAL_ZONES: u32 = 1;
/// Default number of request queues offered.
pub const DEFAULT_REQUEST_QUEUES: u16 = 8;
/// Most logical units one target addresses (14-bit flat space LUNs).
pub const MAX_LUNS: usize = 16384;
/// NVMe/TCP listen address when `--nvme-tcp` is given without one.
pub const DEFAULT_NVME_TCP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4420);
/// Default subsystem NQN.
pub const DEFAULT_NQN: &str = "nqn.2026-11.dev.zonecopy:sub0";
/// Default transport address in the discovery log: the host as a QEMU
/// user-networking guest sees it.
pub const DEFAULT_ADVERTISE_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2));
/// Most namespaces of the subsystem.
pub const MAX_NAMESPACES: usize = 1024;

const NS_HELP: &str = "\
An NVMe namespace of the NVMe/TCP subsystem, as comma-separated KEY=VALUE \
pairs. Repeat for more: the first --ns is NSID 1, the second NSID 2, ...

  file=PATH        backing file (required)
  size=BYTES       namespace size (required)
  kind=zns|nvm     zns: zoned (ZNS); nvm: conventional [default: zns]
  bs=512|4096      logical block size in bytes [default: 4096]

  For kind=zns only (ZNS has no conventional zones, so conv defaults to 0):
  zone=BYTES, cap=BYTES, max-open=N, max-active=N as for --lun

  Copy limits (Identify Namespace):
  mssrl=N          Maximum Single Source Range Length, blocks [default: 4096]
  mcl=N            Maximum Copy Length, blocks [default: 65536]
  msrc=N           Maximum Source Range Count, 0's based [default: 127]

Example: --ns file=/var/tmp/zns0.img,size=1G,zone=64M,mssrl=256";

const LUN_HELP: &str = "\
A logical unit, as comma-separated KEY=VALUE pairs. Repeat for more LUNs: \
the first --lun is LUN 0, the second LUN 1, and so on.

  file=PATH        backing file (required); created sparse if missing,
                   extended if shorter than size
  size=BYTES       device size (required): a multiple of bs, and of zone
                   when zoned
  kind=hm|ha|disk  hm: host-managed zoned (ZBC, peripheral type 14h,
                   sequential write required zones); ha: host aware zoned
                   (peripheral type 00h, VPD B1h ZONED 01b, sequential
                   write preferred zones: written anywhere, like a disk);
                   disk: not zoned [default: hm]
  bs=512|4096      logical block size in bytes [default: 4096]
  cache=volatile|none  volatile: writes not FUA are held in memory until a
                   flush, so the control command power_cut loses them as a
                   drive losing power would [default: none]

  For kind=hm and kind=ha:
  zone=BYTES       zone size (required); Linux needs a power of two
  conv=N           number of conventional zones at the start of the device
                   [default: 1]
  urswrz=0|1       VPD B6h URSWRZ: 1 = reads in sequential write required
                   zones are unrestricted (past the write pointer they
                   return zeros); 0 = a read past the write pointer fails
                   with ATTEMPT TO READ INVALID DATA, one crossing a zone
                   boundary with READ BOUNDARY VIOLATION. Linux drives only
                   urswrz=1 host-managed disks [default: 1]

  For kind=hm only:
  cap=BYTES        zone capacity: writable bytes of each sequential zone,
                   at most zone (the rest is reported as a gap zone)
                   [default: zone]
  max-open=N       maximum open sequential write required zones, 0 = no
                   limit [default: 0]
  max-active=N     maximum active zones, 0 = no limit [default: 0]

BYTES is a number of bytes with an optional K, M, G or T suffix (powers of \
1024), e.g. 256M.
Example: --lun file=/var/tmp/zbc0.img,size=1G,zone=64M,conv=2,max-open=8";

/// vhost-user-scsi backend emulating zoned (ZBC host-managed) and plain
/// SCSI disks for QEMU's vhost-user-scsi-pci device.
///
/// The backend serves one QEMU at a time on --socket and keeps running when
/// QEMU disconnects: the next QEMU finds the same devices in the same
/// state. SIGINT or SIGTERM stop it (a second one exits at once). Logging
/// is set with RUST_LOG (default: info), e.g. RUST_LOG=debug.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "zonecopy-vhost",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Args {
    /// vhost-user Unix socket to listen on (QEMU: -chardev
    /// socket,id=vus,path=PATH). A stale socket file from an earlier run is
    /// replaced; any other existing file is an error. Repeat it for several
    /// vhost-user-scsi devices (one per QEMU device, each its own SCSI
    /// target) from one process: each --lun belongs to the --socket before
    /// it (LUNs given before any --socket belong to the first), and each
    /// socket's LUNs are numbered from 0.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present_any = ["nvme_tcp", "nvme_pcie", "namespaces"],
        requires = "luns"
    )]
    pub socket: Vec<PathBuf>,

    /// A logical unit: comma-separated KEY=VALUE pairs (file, size, kind,
    /// bs, zone, cap, conv, max-open, max-active). See --help for the keys.
    #[arg(
        long = "lun",
        value_name = "SPEC",
        requires = "socket",
        value_parser = LunSpec::from_str,
        long_help = LUN_HELP
    )]
    pub luns: Vec<LunSpec>,

    /// Request virtqueues offered to QEMU, one worker thread each. QEMU's
    /// num_queues (default: one per vCPU) must not exceed it.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_REQUEST_QUEUES,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_REQUEST_QUEUES))
    )]
    pub queues: u16,

    /// Control socket (JSON lines: stats, checksums, zone dumps; see
    /// src/control). A stale socket file is replaced.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,

    /// Also serve the control protocol on this TCP address, for guests
    /// (QEMU user networking maps the host's 127.0.0.1 to 10.0.2.2). Needs
    /// --control-token-file: a TCP client must authenticate first. Keep it
    /// on loopback (a guest behind user networking reaches it anyway).
    #[arg(long, value_name = "ADDR:PORT", requires = "control_token_file")]
    pub control_tcp: Option<std::net::SocketAddr>,

    /// File holding the secret a TCP control client must send first
    /// (`{"cmd":"auth","token":"SECRET"}`); mode 0600 (no group or other
    /// access), at most 256 bytes, surrounding whitespace ignored. The unix
    /// control socket needs none: its 0600 mode is its access control.
    #[arg(long, value_name = "PATH", requires = "control_tcp")]
    pub control_token_file: Option<PathBuf>,

    /// Serve NVMe/TCP on this address (default 127.0.0.1:4420 when given
    /// without a value, or when only --ns is). Keep it on loopback: the
    /// guest reaches it through QEMU user networking.
    #[arg(long, value_name = "ADDR:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:4420")]
    pub nvme_tcp: Option<SocketAddr>,

    /// Serve the --ns namespaces as a PCI NVMe controller over vfio-user on
    /// this Unix socket (QEMU 10.1 or later: -device '{"driver":
    /// "vfio-user-pci","socket":{"type":"unix","path":"PATH"}}', with guest
    /// RAM a shared memfd). Without --nvme-tcp, NVMe/TCP is then not
    /// served. A stale socket file is replaced; the next QEMU attaches
    /// again after one leaves.
    #[arg(long, value_name = "PATH")]
    pub nvme_pcie: Option<PathBuf>,

    /// Do not offer Doorbell Buffer Config (OACS bit 8) on --nvme-pcie:
    /// the host then writes every doorbell register, one vfio-user message
    /// each (to measure what shadow doorbells save).
    #[arg(long)]
    pub nvme_pcie_no_shadow_doorbells: bool,

    /// NQN of the NVMe subsystem served over NVMe/TCP.
    #[arg(long, value_name = "NQN", default_value = DEFAULT_NQN)]
    pub nqn: String,

    /// A host NQN allowed to connect to the subsystem (repeatable). Any
    /// other host's Connect fails with Connect Invalid Host (SCT 1h, SC
    /// 84h), and the discovery log does not show it the subsystem. Without
    /// it any host may connect.
    #[arg(long, value_name = "HOSTNQN")]
    pub allow_host: Vec<String>,

    /// An NVMe namespace: comma-separated KEY=VALUE pairs (file, size,
    /// kind, bs, zone, cap, max-open, max-active, mssrl, mcl, msrc). See
    /// --help for the keys.
    #[arg(
        long = "ns",
        value_name = "SPEC",
        value_parser = NsSpec::from_str,
        long_help = NS_HELP
    )]
    pub namespaces: Vec<NsSpec>,

    /// Transport address the discovery log page gives for the subsystem
    /// (the host as the guest sees it).
    #[arg(long, value_name = "IP", default_value_t = DEFAULT_ADVERTISE_ADDR)]
    pub advertise_addr: IpAddr,

    /// What the NVMe controller claims, since real controllers differ:
    /// nvme-2.1 (Copy formats 0-3, formats 2/3 only once enabled through
    /// Host Behavior Support CDFE, as NVMe 2.x requires), nvme-2.0-fmt0
    /// (format 0 only), nvme-2.0-fmt01 (formats 0 and 1), nvme-2.1-lax
    /// (formats 0-3 with no CDFE needed), no-copy (ONCS without Copy).
    #[arg(long, value_name = "NAME", default_value = "nvme-2.1",
          value_parser = crate::nvme::Personality::from_str)]
    pub personality: crate::nvme::Personality,

    /// Start over on zoned devices whose zone metadata (FILE.zones) is
    /// missing, empty or made for another geometry: every sequential zone
    /// becomes EMPTY and its data is discarded. Without it such a device
    /// refuses to start when its sequential zones hold data, so a lost
    /// sidecar never wipes a disk image.
    #[arg(long)]
    pub reinit_zones: bool,

    /// Recording (--trace FILE and its options).
    #[command(flatten)]
    pub trace: crate::trace::TraceArgs,

    /// For each --lun, the index of the --socket it belongs to (filled by
    /// [`Args::parse_grouped`] from the order of the options; empty means
    /// all belong to the first).
    #[arg(skip)]
    pub lun_socket: Vec<usize>,
}

impl Args {
    /// Parse the process's arguments, recording which --socket each --lun
    /// follows (clap alone keeps no order between two options).
    pub fn parse_grouped() -> Self {
        Self::try_parse_grouped_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// [`Args::parse_grouped`] over `argv`.
    pub fn try_parse_grouped_from<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command().try_get_matches_from(argv)?;
        let mut args = Self::from_arg_matches(&matches)?;
        let sockets: Vec<usize> = matches
            .indices_of("socket")
            .map(Iterator::collect)
            .unwrap_or_default();
        args.lun_socket = matches
            .indices_of("luns")
            .map(|luns| {
                luns.map(|at| {
                    sockets
                        .iter()
                        .filter(|&&s| s < at)
                        .count()
                        .saturating_sub(1)
                })
                .collect()
            })
            .unwrap_or_default();
        Ok(args)
    }
}

/// One vhost-user-scsi device: its socket and which LUNs it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScsiTargetConfig {
    pub socket: PathBuf,
    /// Indexes into [`Config::luns`]; the first is this target's LUN 0.
    pub luns: Vec<usize>,
}

/// One parsed `--ns` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsSpec {
    pub device: DeviceConfig,
    pub copy_limits: CopyLimits,
    /// `cache=volatile`: the volatile write cache (`storage::cache`) is on.
    pub volatile_cache: bool,
}

impl FromStr for NsSpec {
    type Err = SpecError;

    /// The `--lun` keys with kind=zns|nvm (mapped to hm|disk, conv=0 by
    /// default) plus the copy limits.
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let mut copy_limits = CopyLimits::default();
        let mut rest: Vec<String> = Vec::new();
        let (mut kind, mut conv, mut seen) = (None, false, Vec::new());
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                rest.push(item.to_owned());
                continue;
            };
            if ["kind", "mssrl", "mcl", "msrc"].contains(&key) {
                if seen.contains(&key) {
                    return Err(SpecError::Duplicate(key.to_owned()));
                }
                seen.push(key);
            }
            let range = |max: u32| {
                let n = parse_count(key, value)?;
                if n > max {
                    return Err(SpecError::Overflow {
                        key: key.to_owned(),
                        value: value.to_owned(),
                    });
                }
                Ok(n)
            };
            match key {
                "kind" => match value {
                    "zns" => kind = Some("hm"),
                    "nvm" => kind = Some("disk"),
                    other => return Err(SpecError::BadNsKind(other.to_owned())),
                },
                "mssrl" => copy_limits.mssrl = range(u32::from(u16::MAX))? as u16,
                "mcl" => copy_limits.mcl = range(u32::MAX)?,
                // ZNS reads past the write pointer always succeed.
                "urswrz" => return Err(SpecError::UnknownKey(key.to_owned())),
                "msrc" => copy_limits.msrc = range(u32::from(u8::MAX))? as u8,
                _ => {
                    conv |= key == "conv";
                    rest.push(item.to_owned());
                }
            }
        }
        let kind = kind.unwrap_or("hm");
        rest.push(format!("kind={kind}"));
        if kind == "hm" && !conv {
            rest.push("conv=0".to_owned());
        }
        let lun: LunSpec = rest.join(",").parse()?;
        Ok(NsSpec {
            device: lun.device,
            copy_limits,
            volatile_cache: lun.volatile_cache,
        })
    }
}

/// One parsed `--lun` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LunSpec {
    /// The storage core configuration it maps to.
    pub device: DeviceConfig,
    /// `cache=volatile`: the volatile write cache (`storage::cache`) is on.
    pub volatile_cache: bool,
}

/// Why a `--lun` spec was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("'{0}' is not KEY=VALUE")]
    NotKeyValue(String),
    #[error(
        "unknown key '{0}' (known: file, size, kind, bs, zone, cap, conv, max-open, max-active, urswrz, cache)"
    )]
    UnknownKey(String),
    #[error("key '{0}' given twice")]
    Duplicate(String),
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{key}={value}: not a size in bytes (a number with an optional K, M, G or T suffix)")]
    BadSize { key: String, value: String },
    #[error("{key}={value}: too large")]
    Overflow { key: String, value: String },
    #[error("{key}={value}: not a count (a non-negative integer below 2^32)")]
    BadCount { key: String, value: String },
    #[error("kind={0}: expected hm, ha or disk")]
    BadKind(String),
    #[error("bs={0}: expected 512 or 4096")]
    BadBlockSize(String),
    #[error("{0}= applies to zoned kinds (hm, ha) only")]
    ZonedKeyOnDisk(&'static str),
    #[error("{0}= applies to kind=hm only (sequential write preferred zones have no gap zones and no open/active limits)")]
    HostManagedKey(&'static str),
    #[error("{key}={value}: expected 0 or 1")]
    BadFlag { key: String, value: String },
    #[error("kind={0}: expected zns or nvm")]
    BadNsKind(String),
    #[error("cache={0}: expected volatile or none")]
    BadCache(String),
}

/// Parse a size: decimal digits with an optional K, M, G or T suffix
/// (binary multiples, either case).
pub fn parse_size(key: &str, value: &str) -> Result<u64, SpecError> {
    let bad = || SpecError::BadSize {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    let (digits, shift) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&value[..i], shift)
        }
        _ => (value, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let overflow = || SpecError::Overflow {
        key: key.to_owned(),
        value: value.to_owned(),
    };
    let n: u64 = digits.parse().map_err(|_| overflow())?;
    n.checked_mul(1u64 << shift).ok_or_else(overflow)
}

fn parse_count(key: &str, value: &str) -> Result<u32, SpecError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpecError::BadCount {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    value.parse().map_err(|_| SpecError::BadCount {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

const KEYS: [&str; 11] = [
    "cache",
    "file",
    "size",
    "kind",
    "bs",
    "zone",
    "cap",
    "conv",
    "max-open",
    "max-active",
    "urswrz",
];
const ZONED_KEYS: [&str; 6] = ["zone", "cap", "conv", "max-open", "max-active", "urswrz"];
/// Keys of host-managed LUNs only.
const HM_KEYS: [&str; 3] = ["cap", "max-open", "max-active"];

fn parse_flag(key: &str, value: &str) -> Result<bool, SpecError> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(SpecError::BadFlag {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

impl FromStr for LunSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let mut kv: BTreeMap<&'static str, &str> = BTreeMap::new();
        for item in spec.split(',').filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| SpecError::NotKeyValue(item.to_owned()))?;
            let key = KEYS
                .iter()
                .copied()
                .find(|k| *k == key)
                .ok_or_else(|| SpecError::UnknownKey(key.to_owned()))?;
            if kv.insert(key, value).is_some() {
                return Err(SpecError::Duplicate(key.to_owned()));
            }
        }
        let path = match kv.get("file") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => return Err(SpecError::Missing("file=PATH")),
        };
        let size = match kv.get("size") {
            Some(v) => parse_size("size", v)?,
            None => return Err(SpecError::Missing("size=BYTES")),
        };
        let block_size = match kv.get("bs") {
            None => DEFAULT_BLOCK_SIZE,
            Some(v) => match parse_size("bs", v) {
                Ok(512) => 512,
                Ok(4096) => 4096,
                _ => return Err(SpecError::BadBlockSize((*v).to_owned())),
            },
        };
        let kind = kv.get("kind").copied().unwrap_or("hm");
        let zoned = match kind {
            "hm" | "ha" => {
                if kind == "ha" {
                    if let Some(k) = HM_KEYS.iter().find(|k| kv.contains_key(*k)) {
                        return Err(SpecError::HostManagedKey(k));
                    }
                }
                let zone_size = match kv.get("zone") {
                    Some(v) => parse_size("zone", v)?,
                    None => {
                        return Err(SpecError::Missing(
                            "zone=BYTES (required for kind=hm and kind=ha)",
                        ))
                    }
                };
                let zone_capacity = match kv.get("cap") {
                    Some(v) => parse_size("cap", v)?,
                    None => zone_size,
                };
                let count = |key: &'static str, default: u32| match kv.get(key) {
                    Some(v) => parse_count(key, v),
                    None => Ok(default),
                };
                Some(ZonedConfig {
                    zone_size,
                    zone_capacity,
                    conventional_zones: count("conv", DEFAULT_CONVENTIONAL_ZONES)?,
                    max_open: count("max-open", 0)?,
                    max_active: count("max-active", 0)?,
                    sequential: if kind == "ha" {
                        ZoneType::SequentialWritePreferred
                    } else {
                        ZoneType::SequentialWriteRequired
                    },
                    unrestricted_reads: match kv.get("urswrz") {
                        Some(v) => parse_flag("urswrz", v)?,
                        None => true,
                    },
                    reinit: false,
                })
            }
            "disk" => {
                if let Some(k) = ZONED_KEYS.iter().find(|k| kv.contains_key(*k)) {
                    return Err(SpecError::ZonedKeyOnDisk(k));
                }
                None
            }
            other => return Err(SpecError::BadKind(other.to_owned())),
        };
        let volatile_cache = match kv.get("cache").copied() {
            None | Some("none") => false,
            Some("volatile") => true,
            Some(other) => return Err(SpecError::BadCache(other.to_owned())),
        };
        Ok(LunSpec {
            device: DeviceConfig {
                path,
                size,
                block_size,
                zoned,
            },
            volatile_cache,
        })
    }
}

/// The NVMe/TCP side of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmeTcpConfig {
    pub listen: SocketAddr,
    /// Whether NVMe/TCP is served on `listen` (not when only --nvme-pcie
    /// asked for the namespaces).
    pub serve_tcp: bool,
    /// The vfio-user socket of the NVMe-over-PCIe controller, if served.
    pub pcie: Option<PathBuf>,
    /// Offer shadow doorbells on PCIe (not --nvme-pcie-no-shadow-doorbells).
    pub shadow_doorbells: bool,
    pub nqn: String,
    pub advertise_addr: IpAddr,
    /// What the controller advertises and enforces.
    pub personality: crate::nvme::Personality,
    /// NSID `i + 1` is `namespaces[i]`.
    pub namespaces: Vec<NsSpec>,
    /// Host NQNs allowed to connect (empty: any).
    pub allowed_hosts: Vec<String>,
}

/// What the backend runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The vhost-user-scsi devices served (none: NVMe/TCP only).
    pub targets: Vec<ScsiTargetConfig>,
    /// Every LUN of every target, in command-line order.
    pub luns: Vec<DeviceConfig>,
    /// `cache=volatile` of each of `luns`.
    pub lun_volatile_cache: Vec<bool>,
    pub request_queues: u16,
    pub control: Option<PathBuf>,
    pub control_tcp: Option<std::net::SocketAddr>,
    pub control_token_file: Option<PathBuf>,
    /// NVMe/TCP, if served.
    pub nvme_tcp: Option<NvmeTcpConfig>,
}

/// A command line that parses but cannot work.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} LUNs are too many (at most {MAX_LUNS})")]
    TooManyLuns(usize),
    #[error("LUN {first} and LUN {second} use the same backing file {path:?}")]
    SharedFile {
        first: usize,
        second: usize,
        path: PathBuf,
    },
    #[error("--socket needs at least one --lun")]
    NoLuns,
    #[error("--socket {0:?} has no --lun after it")]
    SocketWithoutLuns(PathBuf),
    #[error("--socket {0:?} is given twice")]
    DuplicateSocket(PathBuf),
    #[error("--nvme-tcp and --nvme-pcie need at least one --ns")]
    NoNamespaces,
    #[error("{0} namespaces are too many (at most {MAX_NAMESPACES})")]
    TooManyNamespaces(usize),
    #[error("namespace {nsid} uses the backing file {path:?} of {other}")]
    NsSharedFile {
        nsid: usize,
        other: String,
        path: PathBuf,
    },
}

/// Split the LUNs over the sockets: LUN `i` goes to socket
/// `lun_socket[i]` (all to the first when `lun_socket` is empty).
fn group_luns(
    sockets: &[PathBuf],
    lun_socket: &[usize],
    nr_luns: usize,
) -> Result<Vec<ScsiTargetConfig>, ConfigError> {
    let mut targets: Vec<ScsiTargetConfig> = Vec::with_capacity(sockets.len());
    for socket in sockets {
        if targets.iter().any(|t| &t.socket == socket) {
            return Err(ConfigError::DuplicateSocket(socket.clone()));
        }
        targets.push(ScsiTargetConfig {
            socket: socket.clone(),
            luns: Vec::new(),
        });
    }
    for lun in 0..nr_luns {
        let at = lun_socket.get(lun).copied().unwrap_or(0);
        if let Some(t) = targets.get_mut(at) {
            t.luns.push(lun);
        }
    }
    match targets.iter().find(|t| t.luns.is_empty()) {
        Some(t) => Err(ConfigError::SocketWithoutLuns(t.socket.clone())),
        None => Ok(targets),
    }
}

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(mut args: Args) -> Result<Self, ConfigError> {
        if args.luns.len() > MAX_LUNS {
            return Err(ConfigError::TooManyLuns(args.luns.len()));
        }
        let lun_volatile_cache: Vec<bool> = args.luns.iter().map(|l| l.volatile_cache).collect();
        let reinit = args.reinit_zones;
        let with_reinit = |mut d: DeviceConfig| {
            if let Some(z) = d.zoned.as_mut() {
                z.reinit = reinit;
            }
            d
        };
        for ns in &mut args.namespaces {
            ns.device = with_reinit(ns.device.clone());
        }
        let luns: Vec<DeviceConfig> = std::mem::take(&mut args.luns)
            .into_iter()
            .map(|l| with_reinit(l.device))
            .collect();
        for (second, lun) in luns.iter().enumerate() {
            if let Some(first) = luns[..second].iter().position(|l| l.path == lun.path) {
                return Err(ConfigError::SharedFile {
                    first,
                    second,
                    path: lun.path.clone(),
                });
            }
        }
        if !args.socket.is_empty() && luns.is_empty() {
            return Err(ConfigError::NoLuns);
        }
        let targets = group_luns(&args.socket, &args.lun_socket, luns.len())?;
        let nvme_tcp =
            if args.nvme_tcp.is_some() || args.nvme_pcie.is_some() || !args.namespaces.is_empty() {
                if args.namespaces.is_empty() {
                    return Err(ConfigError::NoNamespaces);
                }
                if args.namespaces.len() > MAX_NAMESPACES {
                    return Err(ConfigError::TooManyNamespaces(args.namespaces.len()));
                }
                for (i, ns) in args.namespaces.iter().enumerate() {
                    let path = &ns.device.path;
                    let other = if let Some(lun) = luns.iter().position(|l| &l.path == path) {
                        format!("LUN {lun}")
                    } else if let Some(j) = args.namespaces[..i]
                        .iter()
                        .position(|n| &n.device.path == path)
                    {
                        format!("namespace {}", j + 1)
                    } else {
                        continue;
                    };
                    return Err(ConfigError::NsSharedFile {
                        nsid: i + 1,
                        other,
                        path: path.clone(),
                    });
                }
                Some(NvmeTcpConfig {
                    listen: args.nvme_tcp.unwrap_or(DEFAULT_NVME_TCP),
                    serve_tcp: args.nvme_tcp.is_some() || args.nvme_pcie.is_none(),
                    pcie: args.nvme_pcie,
                    shadow_doorbells: !args.nvme_pcie_no_shadow_doorbells,
                    nqn: args.nqn,
                    advertise_addr: args.advertise_addr,
                    personality: args.personality,
                    allowed_hosts: std::mem::take(&mut args.allow_host),
                    namespaces: args.namespaces,
                })
            } else {
                None
            };
        Ok(Config {
            targets,
            luns,
            lun_volatile_cache,
            request_queues: args.queues,
            control: args.control,
            control_tcp: args.control_tcp,
            control_token_file: args.control_token_file,
            nvme_tcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn spec(s: &str) -> Result<DeviceConfig, SpecError> {
        s.parse::<LunSpec>().map(|l| l.device)
    }

    fn err(s: &str) -> String {
        spec(s).unwrap_err().to_string()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("size", "0"), Ok(0));
        assert_eq!(parse_size("size", "4096"), Ok(4096));
        assert_eq!(parse_size("size", "4K"), Ok(4096));
        assert_eq!(parse_size("size", "4k"), Ok(4096));
        assert_eq!(parse_size("size", "64M"), Ok(64 << 20));
        assert_eq!(parse_size("size", "1G"), Ok(1 << 30));
        assert_eq!(parse_size("size", "2T"), Ok(2 << 40));
        for bad in ["", "M", "1.5G", "-1", "1KB", "1X", " 1G", "0x10"] {
            assert!(
                matches!(parse_size("size", bad), Err(SpecError::BadSize { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            parse_size("size", "16777216T"),
            Err(SpecError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("size", "99999999999999999999"),
            Err(SpecError::Overflow { .. })
        ));
    }

    #[test]
    fn zoned_spec_with_defaults() {
        assert_eq!(
            spec("file=/tmp/a.img,size=1G,zone=64M").unwrap(),
            DeviceConfig {
                path: "/tmp/a.img".into(),
                size: 1 << 30,
                block_size: 4096,
                zoned: Some(ZonedConfig {
                    zone_size: 64 << 20,
                    zone_capacity: 64 << 20,
                    conventional_zones: 1,
                    max_open: 0,
                    max_active: 0,
                    ..Default::default()
                }),
            }
        );
    }

    #[test]
    fn zoned_spec_with_every_key() {
        assert_eq!(
            spec("kind=hm,file=z.img,size=512M,bs=512,zone=32M,cap=24M,conv=0,max-open=4,max-active=6")
                .unwrap(),
            DeviceConfig {
                path: "z.img".into(),
                size: 512 << 20,
                block_size: 512,
                zoned: Some(ZonedConfig {
                    zone_size: 32 << 20,
                    zone_capacity: 24 << 20,
                    conventional_zones: 0,
                    max_open: 4,
                    max_active: 6,
                    ..Default::default()
                }),
            }
        );
    }

    #[test]
    fn disk_spec() {
        assert_eq!(
            spec("file=d.img,size=100M,kind=disk,bs=512").unwrap(),
            DeviceConfig {
                path: "d.img".into(),
                size: 100 << 20,
                block_size: 512,
                zoned: None,
            }
        );
        assert_eq!(
            spec("kind=disk,file=d.img,size=4K,bs=4K")
                .unwrap()
                .block_size,
            4096
        );
    }

    #[test]
    fn spec_errors_say_what_is_wrong() {
        assert_eq!(err("size=1G,zone=64M"), "missing file=PATH");
        assert_eq!(err("file=,size=1G,zone=64M"), "missing file=PATH");
        assert_eq!(err("file=a,zone=64M"), "missing size=BYTES");
        assert_eq!(
            err("file=a,size=1G"),
            "missing zone=BYTES (required for kind=hm and kind=ha)"
        );
        assert_eq!(
            err("file=a,size=1G,zone=64M,zonesize=1"),
            "unknown key 'zonesize' (known: file, size, kind, bs, zone, cap, conv, max-open, max-active, urswrz, cache)"
        );
        assert_eq!(err("file=a,size=1G,zone"), "'zone' is not KEY=VALUE");
        assert_eq!(err("file=a,file=b,size=1G"), "key 'file' given twice");
        assert_eq!(
            err("file=a,size=1Q,zone=64M"),
            "size=1Q: not a size in bytes (a number with an optional K, M, G or T suffix)"
        );
        assert_eq!(
            err("file=a,size=1G,zone=64M,conv=-1"),
            "conv=-1: not a count (a non-negative integer below 2^32)"
        );
        assert_eq!(
            err("file=a,size=1G,zone=64M,max-open=4294967296"),
            "max-open=4294967296: not a count (a non-negative integer below 2^32)"
        );
        assert_eq!(
            err("file=a,size=1G,kind=hA"),
            "kind=hA: expected hm, ha or disk"
        );
        assert_eq!(
            err("file=a,size=1G,zone=64M,bs=1024"),
            "bs=1024: expected 512 or 4096"
        );
        assert_eq!(
            err("file=a,size=1G,kind=disk,zone=64M"),
            "zone= applies to zoned kinds (hm, ha) only"
        );
        assert_eq!(
            err("file=a,size=1G,kind=disk,max-active=2"),
            "max-active= applies to zoned kinds (hm, ha) only"
        );
    }

    #[test]
    fn host_aware_and_urswrz_specs() {
        assert_eq!(
            spec("kind=ha,file=h.img,size=1G,zone=64M,conv=2").unwrap(),
            DeviceConfig {
                path: "h.img".into(),
                size: 1 << 30,
                block_size: 4096,
                zoned: Some(ZonedConfig {
                    zone_size: 64 << 20,
                    zone_capacity: 64 << 20,
                    conventional_zones: 2,
                    sequential: ZoneType::SequentialWritePreferred,
                    ..Default::default()
                }),
            }
        );
        let z = |s: &str| spec(s).unwrap().zoned.unwrap();
        assert!(z("file=a,size=1G,zone=64M").unrestricted_reads);
        assert!(!z("file=a,size=1G,zone=64M,urswrz=0").unrestricted_reads);
        assert!(z("file=a,size=1G,zone=64M,urswrz=1").unrestricted_reads);
        assert!(!z("kind=ha,file=a,size=1G,zone=64M,urswrz=0").unrestricted_reads);
        assert_eq!(
            err("file=a,size=1G,zone=64M,urswrz=2"),
            "urswrz=2: expected 0 or 1"
        );
        assert_eq!(
            err("file=a,size=1G,kind=disk,urswrz=1"),
            "urswrz= applies to zoned kinds (hm, ha) only"
        );
        for key in ["cap=32M", "max-open=2", "max-active=2"] {
            let e = err(&format!("kind=ha,file=a,size=1G,zone=64M,{key}"));
            assert!(e.contains("applies to kind=hm only"), "{key}: {e}");
        }
        // NVMe namespaces have no URSWRZ: ZNS reads past the write pointer
        // always succeed.
        assert!(NsSpec::from_str("file=n,size=1G,zone=64M,urswrz=0").is_err());
    }

    proptest::proptest! {
        /// Any text: a spec or an error, never a panic; and for specs built
        /// from valid keys, the parsed values are the ones written.
        #[test]
        fn lun_spec_parser(
            text in "[a-z=,0-9KMG-]{0,60}",
            kind in proptest::sample::select(vec!["hm", "ha"]),
            zone_mib in 1u64..64,
            zones in 2u64..64,
            conv in 0u32..2,
            urswrz in proptest::option::of(0u8..2),
        ) {
            let _ = LunSpec::from_str(&text);
            let mut s = format!(
                "file=f,kind={kind},size={}M,zone={zone_mib}M,conv={conv}",
                zone_mib * zones
            );
            if let Some(u) = urswrz {
                s.push_str(&format!(",urswrz={u}"));
            }
            let z = spec(&s).unwrap().zoned.unwrap();
            proptest::prop_assert_eq!(z.zone_size, zone_mib << 20);
            proptest::prop_assert_eq!(z.zone_capacity, zone_mib << 20);
            proptest::prop_assert_eq!(z.conventional_zones, conv);
            proptest::prop_assert_eq!(z.unrestricted_reads, urswrz != Some(0));
            proptest::prop_assert_eq!(
                z.sequential == ZoneType::SequentialWritePreferred,
                kind == "ha"
            );
        }
    }

    #[test]
    fn file_paths_may_contain_equals_signs() {
        assert_eq!(
            spec("file=/tmp/a=b.img,size=4K,kind=disk").unwrap().path,
            PathBuf::from("/tmp/a=b.img")
        );
    }

    #[test]
    fn command_line_to_config() {
        let args = Args::try_parse_from([
            "zonecopy-vhost",
            "--socket",
            "/tmp/vus.sock",
            "--lun",
            "file=a.img,size=1G,zone=64M",
            "--lun",
            "file=b.img,size=1G,kind=disk",
        ])
        .unwrap();
        let cfg = Config::try_from(args).unwrap();
        assert_eq!(
            cfg.targets,
            [ScsiTargetConfig {
                socket: PathBuf::from("/tmp/vus.sock"),
                luns: vec![0, 1]
            }]
        );
        assert_eq!(cfg.nvme_tcp, None);
        assert_eq!(cfg.luns.len(), 2);
        assert_eq!(cfg.luns[0].path, PathBuf::from("a.img"));
        assert!(cfg.luns[1].zoned.is_none());
        assert_eq!(cfg.request_queues, DEFAULT_REQUEST_QUEUES);
    }

    #[test]
    fn several_sockets_each_take_the_luns_after_them() {
        let parse = |argv: &[&str]| {
            let mut all = vec!["zonecopy-vhost"];
            all.extend_from_slice(argv);
            Args::try_parse_grouped_from(all).map(Config::try_from)
        };
        let cfg = parse(&[
            "--lun",
            "file=a,size=1M,kind=disk",
            "--socket",
            "s0",
            "--lun",
            "file=b,size=1M,kind=disk",
            "--socket",
            "s1",
            "--lun",
            "file=c,size=1M,kind=disk",
            "--lun",
            "file=d,size=1M,kind=disk",
        ])
        .unwrap()
        .unwrap();
        let t = |socket: &str, luns: Vec<usize>| ScsiTargetConfig {
            socket: socket.into(),
            luns,
        };
        assert_eq!(cfg.targets, [t("s0", vec![0, 1]), t("s1", vec![2, 3])]);
        // A socket without LUNs, and one given twice, are refused.
        let lun = "file=a,size=1M,kind=disk";
        let e = parse(&["--socket", "s0", "--socket", "s1", "--lun", lun]).unwrap();
        assert_eq!(e, Err(ConfigError::SocketWithoutLuns("s0".into())));
        let e = parse(&[
            "--socket",
            "s0",
            "--lun",
            lun,
            "--socket",
            "s0",
            "--lun",
            "file=b,size=1M,kind=disk",
        ])
        .unwrap();
        assert_eq!(e, Err(ConfigError::DuplicateSocket("s0".into())));
    }

    #[test]
    fn command_line_errors() {
        // No --lun at all.
        assert!(Args::try_parse_from(["zonecopy-vhost", "--socket", "s"]).is_err());
        // A bad spec names the option and the problem.
        let e = Args::try_parse_from(["zonecopy-vhost", "--socket", "s", "--lun", "file=a"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--lun <SPEC>"), "{e}");
        assert!(e.contains("missing size=BYTES"), "{e}");
        // Queue count range.
        for q in ["0", "63"] {
            assert!(Args::try_parse_from([
                "zonecopy-vhost",
                "--socket",
                "s",
                "--lun",
                "file=a,size=4K,kind=disk",
                "--queues",
                q
            ])
            .is_err());
        }
        let args = Args::try_parse_from([
            "zonecopy-vhost",
            "--socket",
            "s",
            "--lun",
            "file=a,size=4K,kind=disk",
            "--lun",
            "file=a,size=8K,kind=disk",
        ])
        .unwrap();
        assert_eq!(
            Config::try_from(args).unwrap_err().to_string(),
            "LUN 0 and LUN 1 use the same backing file \"a\""
        );
    }

    #[test]
    fn ns_specs() {
        let ns: NsSpec = "file=z.img,size=1G,zone=64M,mssrl=256,mcl=1024,msrc=7"
            .parse()
            .unwrap();
        let z = ns.device.zoned.unwrap();
        assert_eq!((z.zone_size, z.conventional_zones), (64 << 20, 0));
        assert_eq!(
            ns.copy_limits,
            CopyLimits {
                mssrl: 256,
                mcl: 1024,
                msrc: 7
            }
        );
        let ns: NsSpec = "kind=nvm,file=n.img,size=64M,bs=512".parse().unwrap();
        assert!(ns.device.zoned.is_none());
        assert_eq!(ns.copy_limits, CopyLimits::default());
        assert!(!ns.volatile_cache);
        let ns: NsSpec = "kind=nvm,file=n.img,size=64M,cache=volatile"
            .parse()
            .unwrap();
        assert!(ns.volatile_cache);
        let e = |s: &str| s.parse::<NsSpec>().unwrap_err().to_string();
        assert_eq!(e("kind=hm,file=a,size=1G"), "kind=hm: expected zns or nvm");
        assert_eq!(e("file=a,size=1G,zone=64M,msrc=256"), "msrc=256: too large");
        assert_eq!(
            e("file=a,size=1G,zone=64M,mcl=1,mcl=2"),
            "key 'mcl' given twice"
        );
        assert_eq!(
            e("kind=nvm,file=a,size=1G,zone=64M"),
            "zone= applies to zoned kinds (hm, ha) only"
        );
        assert_eq!(
            e("kind=nvm,file=a,size=1G,cache=fast"),
            "cache=fast: expected volatile or none"
        );
    }

    #[test]
    fn nvme_tcp_command_line() {
        let cfg = |args: &[&str]| {
            let mut v = vec!["zonecopy-vhost"];
            v.extend_from_slice(args);
            Args::try_parse_from(v)
                .map_err(|e| e.to_string())
                .and_then(|a| Config::try_from(a).map_err(|e| e.to_string()))
        };
        // NVMe only: no socket needed; the listen address defaults to loopback.
        let c = cfg(&["--ns", "file=a,size=1G,zone=64M"]).unwrap();
        assert!(c.targets.is_empty());
        let n = c.nvme_tcp.unwrap();
        assert_eq!(n.listen, DEFAULT_NVME_TCP);
        assert_eq!(n.nqn, DEFAULT_NQN);
        assert_eq!(n.advertise_addr, DEFAULT_ADVERTISE_ADDR);
        assert_eq!(n.personality, crate::nvme::Personality::NVME_2_1);
        // A controller that only offers Copy descriptor format 0.
        let c = cfg(&[
            "--ns",
            "kind=nvm,file=a,size=1G",
            "--personality",
            "nvme-2.0-fmt0",
        ])
        .unwrap();
        let p = c.nvme_tcp.unwrap().personality;
        assert_eq!((p.version, p.ocfs), ((2, 0), 0b0001));
        assert!(
            cfg(&["--ns", "kind=nvm,file=a,size=1G", "--personality", "nvme-9"])
                .unwrap_err()
                .contains("unknown personality")
        );
        let c = cfg(&[
            "--socket",
            "s",
            "--lun",
            "file=l,size=1G,zone=64M",
            "--nvme-tcp",
            "127.0.0.1:4421",
            "--nqn",
            "nqn.x:y",
            "--advertise-addr",
            "10.0.2.3",
            "--ns",
            "file=a,size=1G,zone=64M",
            "--ns",
            "kind=nvm,file=b,size=64M",
        ])
        .unwrap();
        let n = c.nvme_tcp.unwrap();
        assert_eq!(
            (n.listen.port(), n.nqn.as_str(), n.namespaces.len()),
            (4421, "nqn.x:y", 2)
        );
        assert_eq!(
            cfg(&["--nvme-tcp"]).unwrap_err(),
            "--nvme-tcp and --nvme-pcie need at least one --ns"
        );
        assert!(cfg(&[]).is_err(), "nothing to serve");
        assert_eq!(
            cfg(&[
                "--socket",
                "s",
                "--lun",
                "file=a,size=1G,zone=64M",
                "--ns",
                "file=a,size=1G,zone=64M"
            ])
            .unwrap_err(),
            "namespace 1 uses the backing file \"a\" of LUN 0"
        );
    }
}
