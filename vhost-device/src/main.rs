//! zonecopy-vhost: parse the command line, open the devices, serve
//! vhost-user-scsi and/or NVMe/TCP until SIGINT or SIGTERM.

use std::{net::TcpListener, process::ExitCode, sync::Arc, thread};

use clap::{error::ErrorKind, CommandFactory};
use log::{error, info, warn};
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};
use zonecopy_contract::timing::{ProfileError, TimingProfile};
use zonecopy_vhost::{
    config::{Args, Config, NvmeTcpConfig},
    control::{self, Registry},
    nvme::{
        copy::CopyStats, ControllerOptions, NamespaceSpec, Subsystem, SubsystemConfig, Targets,
        Transport,
    },
    scsi::Target,
    storage::{ConfigError as DeviceError, Device, DeviceConfig},
    timing::{DeviceTiming, TimingStats},
    trace::{self, TraceArgs, TracedDevice, RECORDER},
    transport::{
        nvme_pcie,
        nvme_tcp::{self, FabricStats, Limits, StopSignal},
        serve::{serve_scsi, ScsiEndpoint, ServeError, Shutdown},
    },
};

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("LUN {lun}: {source}")]
    Device { lun: usize, source: DeviceError },
    #[error("namespace {nsid}: {source}")]
    Namespace { nsid: usize, source: DeviceError },
    #[error("NVMe/TCP on {addr}: {source}")]
    NvmeTcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("NVMe over PCIe: {0}")]
    NvmePcie(std::io::Error),
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
    #[error("control socket: {0}")]
    Control(std::io::Error),
    #[error("trace: {0}")]
    Trace(trace::TraceError),
    #[error("namespace {nsid}: timing profile: {error}")]
    Timing { nsid: usize, error: ProfileError },
    #[error(transparent)]
    Serve(#[from] ServeError),
}

fn open_devices(config: &Config) -> Result<Vec<Arc<Device>>, Error> {
    let mut devices = Vec::with_capacity(config.luns.len());
    for (lun, cfg) in config.luns.iter().enumerate() {
        let dev = Device::open(cfg).map_err(|source| Error::Device { lun, source })?;
        if config.lun_volatile_cache.get(lun) == Some(&true) {
            volatile_cache(&dev, cfg).map_err(|source| Error::Device { lun, source })?;
        }
        info!("LUN {lun}: {}", describe(cfg));
        devices.push(Arc::new(dev));
    }
    Ok(devices)
}

/// `cache=volatile`: turn the device's volatile write cache on.
fn volatile_cache(dev: &Device, cfg: &DeviceConfig) -> Result<(), DeviceError> {
    info!("{:?}: volatile write cache on", cfg.path);
    dev.set_volatile_cache(true).map_err(|e| DeviceError::File {
        path: cfg.path.clone(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// One line about a device configuration (and a warning Linux would give).
fn describe(cfg: &DeviceConfig) -> String {
    let kind = match &cfg.zoned {
        Some(z) => {
            if !z.zone_size.is_power_of_two() {
                warn!(
                    "{:?}: zone size {} is not a power of two: Linux will not use the device",
                    cfg.path, z.zone_size
                );
            }
            format!(
                "zoned, zone {} cap {} conv {} max-open {} max-active {}",
                z.zone_size, z.zone_capacity, z.conventional_zones, z.max_open, z.max_active
            )
        }
        None => "not zoned".to_owned(),
    };
    format!(
        "{:?}, {} bytes, block size {}, {kind}",
        cfg.path, cfg.size, cfg.block_size
    )
}

/// Open the namespaces of the NVMe/TCP subsystem.
fn open_namespaces(nvme: &NvmeTcpConfig) -> Result<Vec<NamespaceSpec>, Error> {
    let mut specs = Vec::with_capacity(nvme.namespaces.len());
    for (i, ns) in nvme.namespaces.iter().enumerate() {
        let nsid = i + 1;
        let dev = Device::open(&ns.device).map_err(|source| Error::Namespace { nsid, source })?;
        if ns.volatile_cache {
            volatile_cache(&dev, &ns.device).map_err(|source| Error::Namespace { nsid, source })?;
        }
        info!(
            "namespace {nsid}: {}, copy limits {:?}",
            describe(&ns.device),
            ns.copy_limits
        );
        let timing = match &ns.timing {
            Some(name) => {
                let profile =
                    TimingProfile::load(name).map_err(|error| Error::Timing { nsid, error })?;
                info!("namespace {nsid}: timing model {profile}");
                Some(Arc::new(DeviceTiming::new(profile)))
            }
            None => None,
        };
        specs.push(NamespaceSpec {
            device: Arc::new(dev),
            copy_limits: ns.copy_limits,
            timing,
        });
    }
    Ok(specs)
}

/// Bind the NVMe/TCP listener and serve it on a thread until shutdown.
fn start_nvme_tcp(
    nvme: &NvmeTcpConfig,
    namespaces: Vec<NamespaceSpec>,
    stats: Arc<FabricStats>,
    copy_stats: Arc<CopyStats>,
    shutdown: &Arc<Shutdown>,
) -> Result<thread::JoinHandle<()>, Error> {
    let addr = nvme.listen;
    let listener = TcpListener::bind(addr).map_err(|source| Error::NvmeTcp { addr, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| Error::NvmeTcp { addr, source })?
        .port();
    let opts = ControllerOptions {
        personality: nvme.personality,
        copy_stats,
        ..ControllerOptions::default()
    };
    info!("NVMe personality: {}", nvme.personality);
    // Nothing larger than MDTS is fetched (0: no limit, the transport's
    // own default stays).
    let max_command_data = match opts.mdts {
        0 => Limits::default().max_command_data,
        m => u32::try_from(4096u64 << m.min(40)).unwrap_or(u32::MAX),
    };
    let limits = Limits {
        max_icd: Limits::default().max_icd.max(opts.in_capsule_data),
        max_command_data,
        max_pending_data: 4 * u64::from(max_command_data),
        ..Limits::default()
    };
    let subsystem = Subsystem::with_options(
        SubsystemConfig {
            nqn: nvme.nqn.clone(),
            traddr: nvme.advertise_addr.to_string(),
            trsvcid: port.to_string(),
            allowed_hosts: nvme.allowed_hosts.clone(),
        },
        opts,
        namespaces,
    );
    info!(
        "NVMe/TCP subsystem {} advertised as {}:{port}",
        nvme.nqn, nvme.advertise_addr
    );
    let targets = Arc::new(Targets {
        subsystems: vec![Arc::new(subsystem)],
    });
    let stop: Arc<dyn StopSignal> = shutdown.clone();
    let shutdown = Arc::clone(shutdown);
    thread::Builder::new()
        .name("nvme-tcp".to_owned())
        .spawn(move || {
            if let Err(e) = nvme_tcp::serve(listener, targets, stats, stop, limits) {
                error!("NVMe/TCP: {e}");
                shutdown.request();
            }
        })
        .map_err(|source| Error::NvmeTcp { addr, source })
}

/// Serve the namespaces as a PCIe NVMe controller over vfio-user (its
/// threads run until the process exits).
fn start_nvme_pcie(
    nvme: &NvmeTcpConfig,
    socket: &std::path::Path,
    namespaces: Vec<NamespaceSpec>,
    copy_stats: Arc<CopyStats>,
    stats: Arc<FabricStats>,
) -> Result<(), Error> {
    let opts = ControllerOptions {
        personality: nvme.personality,
        copy_stats,
        transport: Transport::Pcie,
        shadow_doorbells: nvme.shadow_doorbells,
        ..ControllerOptions::default()
    };
    let subsystem = Subsystem::with_options(
        SubsystemConfig {
            nqn: nvme.nqn.clone(),
            traddr: String::new(),
            trsvcid: String::new(),
            // No Connect on PCIe, so no host NQN to check: the socket's
            // permissions are the access control.
            allowed_hosts: Vec::new(),
        },
        opts,
        namespaces,
    );
    nvme_pcie::start(socket, Arc::new(subsystem), stats).map_err(Error::NvmePcie)?;
    info!("NVMe over PCIe (vfio-user) on {}", socket.display());
    Ok(())
}

/// SIGINT/SIGTERM: the first asks for a clean stop, a second exits at once.
fn handle_signals(shutdown: Arc<Shutdown>) -> Result<(), Error> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(Error::Signals)?;
    thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for sig in signals.forever() {
                if shutdown.is_requested() {
                    warn!("signal {sig} again: exiting without cleanup");
                    std::process::exit(130);
                }
                info!("signal {sig}: shutting down");
                shutdown.request();
            }
        })
        .map_err(Error::Signals)?;
    Ok(())
}

/// Serve the control protocol where asked; its threads live as long as
/// the process.
fn start_control(
    config: &Config,
    devices: &[Arc<Device>],
    namespaces: &[NamespaceSpec],
    sources: Vec<Arc<dyn control::StatsSource>>,
) -> Result<(), Error> {
    let mut reg = Registry::default();
    for source in sources {
        reg.add_source(source);
    }
    for (t, target) in config.targets.iter().enumerate() {
        for (lun, &i) in target.luns.iter().enumerate() {
            reg.add_device(lun_name(t, lun), Arc::clone(&devices[i]));
        }
    }
    for (i, ns) in namespaces.iter().enumerate() {
        reg.add_device(format!("ns{}", i + 1), Arc::clone(&ns.device));
    }
    let timed: Vec<_> = namespaces
        .iter()
        .enumerate()
        .filter_map(|(i, ns)| Some((format!("ns{}", i + 1), Arc::clone(ns.timing.as_ref()?))))
        .collect();
    if !timed.is_empty() {
        reg.add_source(Arc::new(TimingStats(timed)));
    }
    let reg = Arc::new(reg);
    if let Some(path) = &config.control {
        control::serve_unix(path, Arc::clone(&reg)).map_err(Error::Control)?;
        info!("control socket {path:?}");
    }
    if let Some(addr) = config.control_tcp {
        let token_file = config.control_token_file.as_deref().ok_or_else(|| {
            Error::Control(std::io::Error::other(
                "--control-tcp needs --control-token-file",
            ))
        })?;
        let token = control::read_token(token_file).map_err(Error::Control)?;
        if !addr.ip().is_loopback() {
            warn!("control on tcp {addr}: not loopback, reachable from the network");
        }
        let listener = std::net::TcpListener::bind(addr).map_err(Error::Control)?;
        info!(
            "control on tcp {} (token from {token_file:?})",
            listener.local_addr().map_err(Error::Control)?
        );
        control::serve_tcp(listener, reg, token);
    }
    Ok(())
}

/// Control-socket name of LUN `lun` of target `t`: `lun0`, `lun1`, ... on
/// the first vhost-user-scsi device, `t1.lun0`, ... on the others.
fn lun_name(t: usize, lun: usize) -> String {
    match t {
        0 => format!("lun{lun}"),
        _ => format!("t{t}.lun{lun}"),
    }
}

/// A stats source under another name (the second and later SCSI targets).
struct Renamed {
    name: String,
    inner: Arc<dyn control::StatsSource>,
}

impl control::StatsSource for Renamed {
    fn name(&self) -> &str {
        &self.name
    }

    fn snapshot(&self) -> serde_json::Value {
        self.inner.snapshot()
    }
}

/// Serve every vhost-user-scsi socket, one thread each, until shutdown;
/// when one ends (error or not) all stop, and NVMe/TCP with them. The
/// first error is returned.
fn serve_targets(
    config: &Config,
    targets: Vec<Arc<Target>>,
    shutdown: &Arc<Shutdown>,
) -> Result<(), ServeError> {
    let handles: Vec<_> = config
        .targets
        .iter()
        .zip(targets)
        .map(|(cfg, target)| {
            let endpoint = ScsiEndpoint {
                socket: cfg.socket.clone(),
                target,
                request_queues: config.request_queues,
                poll: config.poll,
            };
            let shutdown = Arc::clone(shutdown);
            thread::Builder::new()
                .name("vhost-user-scsi".to_owned())
                .spawn(move || {
                    let served = serve_scsi(&endpoint, &shutdown);
                    shutdown.request();
                    served
                })
        })
        .collect();
    let mut result = Ok(());
    for handle in handles {
        let served = match handle {
            Ok(h) => h.join().unwrap_or_else(|_| {
                error!("a vhost-user-scsi thread panicked");
                Ok(())
            }),
            Err(e) => {
                shutdown.request();
                Err(ServeError::Socket {
                    path: "(thread)".into(),
                    source: e,
                })
            }
        };
        if result.is_ok() {
            result = served;
        }
    }
    result
}

/// Name the devices for the recorder and start `--trace` if given (before
/// any command is served, so the images are taken at rest).
fn start_trace(
    config: &Config,
    devices: &[Arc<Device>],
    namespaces: &[NamespaceSpec],
    args: &TraceArgs,
) -> Result<(), Error> {
    let mut traced = Vec::new();
    for (t, target) in config.targets.iter().enumerate() {
        for (lun, &i) in target.luns.iter().enumerate() {
            traced.push(TracedDevice {
                name: lun_name(t, lun),
                device: Arc::clone(&devices[i]),
                path: config.luns[i].path.clone(),
            });
        }
    }
    let ns_paths = config.nvme_tcp.iter().flat_map(|n| &n.namespaces);
    for (i, (ns, cfg)) in namespaces.iter().zip(ns_paths).enumerate() {
        traced.push(TracedDevice {
            name: format!("ns{}", i + 1),
            device: Arc::clone(&ns.device),
            path: cfg.device.path.clone(),
        });
    }
    RECORDER.set_up(std::env::args().collect(), traced);
    RECORDER.set_control_dir(args.trace_dir.clone());
    if let Some(file) = &args.trace {
        RECORDER
            .start(file, args.trace_data, args.trace_max_bytes, args.trace_keep)
            .map_err(Error::Trace)?;
    }
    Ok(())
}

fn run(config: Config, tracing: &TraceArgs) -> Result<(), Error> {
    let devices = open_devices(&config)?;
    let namespaces = match &config.nvme_tcp {
        Some(nvme) => open_namespaces(nvme)?,
        None => Vec::new(),
    };
    let shutdown = Arc::new(Shutdown::new().map_err(Error::Signals)?);
    handle_signals(shutdown.clone())?;
    let scsi_targets: Vec<Arc<Target>> = config
        .targets
        .iter()
        .enumerate()
        .map(|(t, target)| {
            let luns = target
                .luns
                .iter()
                .map(|&i| Arc::clone(&devices[i]))
                .collect();
            Arc::new(Target::with_target_id(t as u32, luns))
        })
        .collect();
    let fabric_stats = Arc::new(FabricStats::new());
    let copy_stats = Arc::new(CopyStats::default());
    let mut sources: Vec<Arc<dyn control::StatsSource>> =
        vec![fabric_stats.clone(), copy_stats.clone()];
    for (t, target) in scsi_targets.iter().enumerate() {
        sources.push(match t {
            0 => target.stats_source(),
            _ => Arc::new(Renamed {
                name: format!("scsi.t{t}"),
                inner: target.stats_source(),
            }),
        });
    }
    start_control(&config, &devices, &namespaces, sources)?;
    start_trace(&config, &devices, &namespaces, tracing)?;
    let ns_devices: Vec<Arc<Device>> = namespaces.iter().map(|n| Arc::clone(&n.device)).collect();
    if let Some((nvme, socket)) = config
        .nvme_tcp
        .as_ref()
        .and_then(|n| Some((n, n.pcie.as_deref()?)))
    {
        start_nvme_pcie(
            nvme,
            socket,
            namespaces.clone(),
            copy_stats.clone(),
            fabric_stats.clone(),
        )?;
    }
    let nvme = match &config.nvme_tcp {
        Some(nvme) if nvme.serve_tcp => Some(start_nvme_tcp(
            nvme,
            namespaces,
            fabric_stats,
            copy_stats,
            &shutdown,
        )?),
        _ => None,
    };
    let served = serve_targets(&config, scsi_targets, &shutdown);
    if nvme.is_none() && config.targets.is_empty() {
        // NVMe over PCIe only: its threads serve until a signal.
        while !shutdown.is_requested() {
            thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    if let Some(nvme) = nvme {
        if nvme.join().is_err() {
            error!("NVMe/TCP thread panicked");
        }
    }
    let mut flushed = true;
    let named = devices
        .iter()
        .enumerate()
        .map(|(lun, d)| (format!("LUN {lun}"), d))
        .chain(
            ns_devices
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("namespace {}", i + 1), d)),
        );
    for (name, dev) in named {
        if let Err(e) = dev.flush() {
            error!("{name}: flush failed: {e}");
            flushed = false;
        }
    }
    if flushed {
        info!("devices flushed");
    }
    if RECORDER.is_on() {
        if let Err(e) = RECORDER.stop() {
            error!("trace: {e}");
        }
    }
    if let Some(path) = &config.control {
        let _ = std::fs::remove_file(path);
    }
    served.map_err(Error::from)
}

fn main() -> ExitCode {
    let tool = std::env::args_os().nth(1).is_some_and(|a| a == "trace");
    // The trace tool's replayed backend logs only errors unless asked.
    let level = if tool { "error" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if tool {
        return trace::tool::main(std::env::args_os().skip(1));
    }
    let args = Args::parse_grouped();
    let tracing = args.trace.clone();
    let config = match Config::try_from(args) {
        Ok(c) => c,
        Err(e) => Args::command().error(ErrorKind::ValueValidation, e).exit(),
    };
    match run(config, &tracing) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
