//! zonecopy-vhost: parse the command line, open the devices, serve
//! vhost-user-scsi until SIGINT or SIGTERM.

use std::{process::ExitCode, sync::Arc, thread};

use clap::{error::ErrorKind, CommandFactory, Parser};
use log::{error, info, warn};
use signal_hook::{
    consts::{SIGINT, SIGTERM},
    iterator::Signals,
};
use zonecopy_vhost::{
    config::{Args, Config},
    control::{self, Registry},
    scsi::Target,
    storage::{ConfigError as DeviceError, Device},
    transport::serve::{serve_scsi, ScsiEndpoint, ServeError, Shutdown},
};

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("LUN {lun}: {source}")]
    Device { lun: usize, source: DeviceError },
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
    #[error("control socket: {0}")]
    Control(std::io::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

fn open_devices(config: &Config) -> Result<Vec<Arc<Device>>, Error> {
    let mut devices = Vec::with_capacity(config.luns.len());
    for (lun, cfg) in config.luns.iter().enumerate() {
        let dev = Device::open(cfg).map_err(|source| Error::Device { lun, source })?;
        let kind = match &cfg.zoned {
            Some(z) => {
                if !z.zone_size.is_power_of_two() {
                    warn!(
                        "LUN {lun}: zone size {} is not a power of two: Linux will not use the device",
                        z.zone_size
                    );
                }
                format!(
                    "host-managed, zone {} cap {} conv {} max-open {} max-active {}",
                    z.zone_size, z.zone_capacity, z.conventional_zones, z.max_open, z.max_active
                )
            }
            None => "not zoned".to_owned(),
        };
        info!(
            "LUN {lun}: {:?}, {} bytes, block size {}, {kind}",
            cfg.path, cfg.size, cfg.block_size
        );
        devices.push(Arc::new(dev));
    }
    Ok(devices)
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
fn start_control(config: &Config, devices: &[Arc<Device>]) -> Result<(), Error> {
    let mut reg = Registry::default();
    for (lun, dev) in devices.iter().enumerate() {
        reg.add_device(format!("lun{lun}"), Arc::clone(dev));
    }
    let reg = Arc::new(reg);
    if let Some(path) = &config.control {
        control::serve_unix(path, Arc::clone(&reg)).map_err(Error::Control)?;
        info!("control socket {path:?}");
    }
    if let Some(addr) = config.control_tcp {
        let listener = std::net::TcpListener::bind(addr).map_err(Error::Control)?;
        info!(
            "control on tcp {}",
            listener.local_addr().map_err(Error::Control)?
        );
        control::serve_tcp(listener, reg);
    }
    Ok(())
}

fn run(config: Config) -> Result<(), Error> {
    let devices = open_devices(&config)?;
    let shutdown = Arc::new(Shutdown::new().map_err(Error::Signals)?);
    handle_signals(shutdown.clone())?;
    start_control(&config, &devices)?;
    let endpoint = ScsiEndpoint {
        socket: config.socket.clone(),
        target: Arc::new(Target::new(devices.clone())),
        request_queues: config.request_queues,
    };
    let served = serve_scsi(&endpoint, &shutdown);
    drop(endpoint);
    let mut flushed = true;
    for (lun, dev) in devices.iter().enumerate() {
        if let Err(e) = dev.flush() {
            error!("LUN {lun}: flush failed: {e}");
            flushed = false;
        }
    }
    if flushed {
        info!("devices flushed");
    }
    if let Some(path) = &config.control {
        let _ = std::fs::remove_file(path);
    }
    served.map_err(Error::from)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::try_from(Args::parse()) {
        Ok(c) => c,
        Err(e) => Args::command().error(ErrorKind::ValueValidation, e).exit(),
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
