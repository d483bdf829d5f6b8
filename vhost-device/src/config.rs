//! Command line: clap arguments, the `--lun` and `--ns` spec parsers, and
//! `TryFrom<Args> for Config`.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    str::FromStr,
};

use clap::Parser;
pub use zonecopy_contract::{arg::ArgError, nvme::DEFAULT_NQN};
use zonecopy_contract::{
    arg::{Cache, LunArg, NsArg, ZoneLimits},
    spec::{LunKind, ZoneSpec},
    timing::{ProfileError, TimingProfile},
};

use crate::{
    nvme::CopyLimits,
    storage::{DeviceConfig, ZoneType, ZonedConfig},
    transport::vhost_user_scsi::MAX_REQUEST_QUEUES,
};

/// Default logical block size of every kind.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;
/// Default number of request queues offered.
pub const DEFAULT_REQUEST_QUEUES: u16 = 8;
/// Most logical units one target addresses (14-bit flat space LUNs).
pub const MAX_LUNS: usize = 16384;
/// `--poll-us` default: a 6.12 guest under TCG asks for its next 4 KiB
/// request 150-250 us after the last completion at QD1; a window that
/// catches it saves the guest's kick and the worker's wake-up. In the
/// bench suite on an idle 2-core host (issue 17), 4 KiB QD1 reads went
/// from 0.88-0.92x of QEMU's scsi-hd (writeback) to 1.03-1.24x and QD16
/// reads from 0.72-0.79x to 0.83-1.11x (2 runs without, 5 with); the
/// preemption back-off keeps a busy host from paying for it (see
/// transport::vhost_user_scsi::poll).
pub const DEFAULT_POLL_US: u32 = 500;
/// NVMe/TCP listen address when `--nvme-tcp` is given without one.
pub const DEFAULT_NVME_TCP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 4420);
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

  For kind=zns only (ZNS has no conventional zones: conv=0 if given):
  zone=BYTES, cap=BYTES, max-open=N, max-active=N as for --lun

  Copy limits (Identify Namespace):
  mssrl=N          Maximum Single Source Range Length, blocks [default: 4096]
  mcl=N            Maximum Copy Length, blocks [default: 65536]
  msrc=N           Maximum Source Range Count, 0's based [default: 127]

  timing=PROFILE   the device timing model for this namespace (a built-in
                   profile or a profile file; see --timing) [default:
                   --timing's, else off]

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

    /// Adaptive polling of each request queue after a batch, in
    /// microseconds: the most a worker looks at the available ring for the
    /// guest's next request (yielding its CPU between looks) before it
    /// sleeps until a kick. The window adapts (doubles while requests come
    /// soon after it, halves towards 0 while the guest is quiet), so an
    /// idle guest burns no CPU, and a poll that finds its CPU wanted
    /// elsewhere (preempted) turns polling off for 20 ms. 0 = off, at most
    /// 10000 (10 ms: past that a sleep and a kick cost less). The default
    /// covers the gap between a TCG guest's 4 KiB requests at QD1.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = DEFAULT_POLL_US,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub poll_us: u32,

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

    /// Model every --ns as this device class (off by default): a built-in
    /// profile (ufs-phone, nvme-ssd, nvmeof-1gbe, nvmeof-100gbe) or a
    /// profile file (TOML: link bandwidth in bytes/s per direction and
    /// per-command latency in us; media read/write/copy bytes/s, read and
    /// program latency in us, channels; energy in pJ/byte and W; see
    /// vhost-device/contract/profiles/). The model charges each command's
    /// link and media bytes in virtual time and reports modeled busy and
    /// elapsed ns under `timing` in the control socket's stats. Commands
    /// are not delayed to the modeled time, but a modeled namespace runs
    /// its commands one at a time. A namespace's timing= wins.
    #[arg(long, value_name = "PROFILE")]
    pub timing: Option<String>,

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

/// Why a `--lun` or `--ns` spec was refused (the contract crate parses
/// both, for the runner too).
pub type SpecError = ArgError;

/// One parsed `--ns` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsSpec {
    pub device: DeviceConfig,
    pub copy_limits: CopyLimits,
    /// `cache=volatile`: the volatile write cache (`storage::cache`) is on.
    pub volatile_cache: bool,
    /// `timing=PROFILE` (then `--timing`): the timing model's profile.
    pub timing: Option<String>,
}

impl FromStr for NsSpec {
    type Err = SpecError;

    /// [`NsArg`]: the `--lun` keys with kind=zns|nvm (no conventional
    /// zones) plus the copy limits; `file=` is required here.
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let ns: NsArg = spec.parse()?;
        let (mssrl, mcl, msrc) = ns.copy.resolved();
        let zoned = ns.spec.zones.map(|z| zoned_config(z, ns.limits, false));
        Ok(NsSpec {
            device: device_config(ns.file, ns.spec.size, ns.spec.block_size, zoned)?,
            copy_limits: CopyLimits { mssrl, mcl, msrc },
            volatile_cache: ns.cache == Cache::Volatile,
            timing: ns.timing,
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

impl FromStr for LunSpec {
    type Err = SpecError;

    /// [`LunArg`] with `file=` required.
    fn from_str(spec: &str) -> Result<Self, SpecError> {
        let lun: LunArg = spec.parse()?;
        let host_aware = lun.spec.kind == LunKind::HostAware;
        let zoned = lun
            .spec
            .zones
            .map(|z| zoned_config(z, lun.limits, host_aware));
        Ok(LunSpec {
            device: device_config(lun.file, lun.spec.size, lun.spec.block_size, zoned)?,
            volatile_cache: lun.cache == Cache::Volatile,
        })
    }
}

/// The storage core's zone layout for a spec's zones and limits.
fn zoned_config(z: ZoneSpec, limits: ZoneLimits, host_aware: bool) -> ZonedConfig {
    // The contract parser bounds conv by the zone count (< 2^32 zones).
    let conventional_zones = u32::try_from(z.conventional).unwrap_or(u32::MAX);
    ZonedConfig {
        zone_size: z.zone_size,
        zone_capacity: z.capacity,
        conventional_zones,
        max_open: limits.max_open.unwrap_or(0),
        max_active: limits.max_active.unwrap_or(0),
        sequential: if host_aware {
            ZoneType::SequentialWritePreferred
        } else {
            ZoneType::SequentialWriteRequired
        },
        unrestricted_reads: z.urswrz,
        reinit: false,
    }
}

fn device_config(
    file: Option<PathBuf>,
    size: u64,
    block_size: u64,
    zoned: Option<ZonedConfig>,
) -> Result<DeviceConfig, SpecError> {
    Ok(DeviceConfig {
        path: file.ok_or(SpecError::Missing("file=PATH"))?,
        size,
        // The contract parser takes 512 or 4096 only.
        block_size: u32::try_from(block_size).unwrap_or(DEFAULT_BLOCK_SIZE),
        zoned,
    })
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
    /// `--poll-us`: the longest adaptive polling window per request queue.
    pub poll: std::time::Duration,
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
    #[error("namespace {nsid}: timing profile: {error}")]
    Timing { nsid: usize, error: ProfileError },
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
                for (i, ns) in args.namespaces.iter_mut().enumerate() {
                    ns.timing = ns.timing.take().or_else(|| args.timing.clone());
                    if let Some(Err(error)) = ns.timing.as_deref().map(TimingProfile::load) {
                        return Err(ConfigError::Timing { nsid: i + 1, error });
                    }
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
            poll: std::time::Duration::from_micros(u64::from(args.poll_us)),
            control: args.control,
            control_tcp: args.control_tcp,
            control_token_file: args.control_token_file,
            nvme_tcp,
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
