//! The `zonecopy-vhost` backend process.

use std::{
    fs::File,
    net::SocketAddr,
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{lun::LunArg, ns::NsArg, proc, vm::log_tail};

/// Errors starting the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "backend binary {0} not found (build it: cargo build -p zonecopy-vhost, or pass --backend PATH)"
    )]
    NotFound(String),
    #[error("cannot start the backend {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("cannot create {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("the backend exited ({status}) before creating its socket; backend.log ends:\n{log}")]
    Exited { status: String, log: String },
    #[error(
        "the backend could not bind a TCP port (taken since we picked it); backend.log ends:\n{0}"
    )]
    AddrInUse(String),
    #[error("the backend did not create {socket} within {secs} s; backend.log ends:\n{log}")]
    NoSocket {
        socket: String,
        secs: u64,
        log: String,
    },
    #[error("backend socket {0} does not exist or is not a socket")]
    NotASocket(String),
    #[error("interrupted")]
    Interrupted,
}

/// Where the backend binary is: `--backend PATH`, else next to this
/// executable (same cargo target directory).
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, BackendError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("zonecopy-vhost")))
            .unwrap_or_else(|| PathBuf::from("zonecopy-vhost")),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(BackendError::NotFound(path.display().to_string()))
    }
}

/// Is `path` a unix socket?
pub fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The host as a guest with QEMU user networking sees it: the backend's
/// TCP ports on 127.0.0.1 are reached there.
pub const GUEST_HOST_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 2, 2);

/// The NVMe/TCP subsystem the backend serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeListen {
    pub listen: SocketAddr,
    /// Serve the namespaces over PCIe (vfio-user socket) instead of
    /// NVMe/TCP on `listen`.
    pub pcie: Option<PathBuf>,
    pub nqn: String,
    /// `--personality` for the backend, `None` = its default.
    pub personality: Option<String>,
    pub namespaces: Vec<NsArg>,
    /// PCIe: offer Doorbell Buffer Config (the backend's default).
    pub shadow_doorbells: bool,
}

/// Everything the backend is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// vhost-user-scsi socket.
    pub socket: PathBuf,
    /// Control protocol on a unix socket (the runner's dumps).
    pub control: Option<PathBuf>,
    /// Control protocol on TCP, for the guest.
    pub control_tcp: Option<SocketAddr>,
    /// The secret a TCP control client sends first (mode 0600 file;
    /// needed with `control_tcp`).
    pub control_token_file: Option<PathBuf>,
    pub luns: Vec<LunArg>,
    pub nvme: Option<NvmeListen>,
    /// Record a trace here (`--trace`; images beside it in FILE.img/).
    pub trace: Option<PathBuf>,
}

/// Write a fresh random control token (32 hex digits from /dev/urandom)
/// to `path`, mode 0600, for `--control-token-file`.
pub fn write_token_file(path: &Path) -> std::io::Result<()> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, hex.as_bytes())
}

/// The token `write_token_file` wrote.
pub fn read_token_file(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

/// The backend argv (without the program name).
pub fn args(cfg: &BackendConfig) -> Vec<String> {
    let mut a = vec!["--socket".to_owned(), cfg.socket.display().to_string()];
    if let Some(c) = &cfg.control {
        a.push("--control".into());
        a.push(c.display().to_string());
    }
    if let Some(t) = cfg.control_tcp {
        a.push("--control-tcp".into());
        a.push(t.to_string());
    }
    if let Some(f) = &cfg.control_token_file {
        a.push("--control-token-file".into());
        a.push(f.display().to_string());
    }
    for l in &cfg.luns {
        a.push("--lun".into());
        a.push(l.to_string());
    }
    if let Some(n) = &cfg.nvme {
        match &n.pcie {
            Some(sock) => {
                a.extend(["--nvme-pcie".to_owned(), sock.display().to_string()]);
                if !n.shadow_doorbells {
                    a.push("--nvme-pcie-no-shadow-doorbells".to_owned());
                }
            }
            None => a.extend([
                "--nvme-tcp".to_owned(),
                n.listen.to_string(),
                "--advertise-addr".to_owned(),
                GUEST_HOST_ADDR.to_string(),
            ]),
        }
        a.extend(["--nqn".to_owned(), n.nqn.clone()]);
        if let Some(p) = &n.personality {
            a.extend(["--personality".to_owned(), p.clone()]);
        }
        for ns in &n.namespaces {
            a.push("--ns".into());
            a.push(ns.to_string());
        }
    }
    if let Some(t) = &cfg.trace {
        a.extend(["--trace".to_owned(), t.display().to_string()]);
    }
    a
}

/// Did a backend stopped with SIGTERM end the way it should (exit 0 after
/// its clean shutdown, or killed by the SIGTERM itself)?
pub fn clean_stop(status: &str) -> bool {
    status.contains("SIGTERM") || status.contains("exit status: 0")
}

/// A running backend; stopped (SIGTERM, then SIGKILL) on `stop` or drop.
#[derive(Debug)]
pub struct Backend {
    child: proc::Child,
}

/// How long the backend gets to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

impl Backend {
    /// Starts `bin`, stdout+stderr to `log` (RUST_LOG is inherited), and
    /// waits up to `timeout` for `socket` to appear (the backend binds its
    /// control socket first, so that one is there too).
    pub fn start(
        bin: &Path,
        cfg: &BackendConfig,
        log: &Path,
        timeout: Duration,
    ) -> Result<Self, BackendError> {
        let socket = cfg.socket.as_path();
        let log_err = |source| BackendError::Log {
            path: log.display().to_string(),
            source,
        };
        let out = File::create(log).map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let mut cmd = Command::new(bin);
        cmd.args(args(cfg))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = proc::spawn(&mut cmd, true).map_err(|source| BackendError::Spawn {
            bin: bin.display().to_string(),
            source,
        })?;
        let mut backend = Backend { child };
        let start = Instant::now();
        loop {
            if is_socket(socket) {
                return Ok(backend);
            }
            if let Ok(Some(status)) = backend.child.try_wait() {
                let tail = log_tail(log, 10);
                if tail.contains("Address already in use") || tail.contains("os error 98") {
                    return Err(BackendError::AddrInUse(tail));
                }
                return Err(BackendError::Exited {
                    status: status.to_string(),
                    log: tail,
                });
            }
            if proc::interrupted().is_some() {
                return Err(BackendError::Interrupted);
            }
            if start.elapsed() >= timeout {
                return Err(BackendError::NoSocket {
                    socket: socket.display().to_string(),
                    secs: timeout.as_secs(),
                    log: log_tail(log, 10),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Has it died (it should keep serving until we stop it)?
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            _ => None,
        }
    }

    /// SIGKILL (no cleanup, as a crash) and reap.
    pub fn kill(mut self) -> String {
        match self.child.kill() {
            Some(s) => s.to_string(),
            None => "unknown".into(),
        }
    }

    /// SIGTERM, SIGKILL after [`STOP_GRACE`]; returns how it ended.
    pub fn stop(mut self) -> String {
        match self.child.terminate(STOP_GRACE) {
            Some(s) => s.to_string(),
            None => "unknown".into(),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.child.terminate(STOP_GRACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(luns: Vec<LunArg>) -> BackendConfig {
        BackendConfig {
            socket: "/t/vus.sock".into(),
            control: None,
            control_tcp: None,
            control_token_file: None,
            luns,
            nvme: None,
            trace: None,
        }
    }

    #[test]
    fn argv() {
        let mut l: LunArg = "kind=disk,size=1M,bs=512".parse().unwrap();
        l.file = Some("/t/lun0.img".into());
        assert_eq!(
            args(&cfg(vec![l.clone()])),
            vec![
                "--socket",
                "/t/vus.sock",
                "--lun",
                "file=/t/lun0.img,kind=disk,size=1048576,bs=512"
            ]
        );
        let mut c = cfg(vec![l]);
        c.control = Some("/t/c.sock".into());
        assert_eq!(
            args(&c),
            vec![
                "--socket",
                "/t/vus.sock",
                "--control",
                "/t/c.sock",
                "--lun",
                "file=/t/lun0.img,kind=disk,size=1048576,bs=512"
            ]
        );
    }

    #[test]
    fn argv_with_tcp_control_and_nvme() {
        let mut l: LunArg = "kind=disk,size=1M,bs=512".parse().unwrap();
        l.file = Some("/t/lun0.img".into());
        let mut ns: NsArg = "kind=nvm,size=2M,mssrl=8".parse().unwrap();
        ns.file = Some("/t/ns1.img".into());
        let mut c = cfg(vec![l]);
        c.control = Some("/t/c.sock".into());
        c.control_tcp = Some("127.0.0.1:40001".parse().unwrap());
        c.control_token_file = Some("/t/control.token".into());
        c.nvme = Some(NvmeListen {
            pcie: None,
            listen: "127.0.0.1:40002".parse().unwrap(),
            nqn: "nqn.x:y".into(),
            personality: Some("nvme-2.0-fmt0".into()),
            shadow_doorbells: true,
            namespaces: vec![ns],
        });
        assert_eq!(
            args(&c).join(" "),
            "--socket /t/vus.sock --control /t/c.sock --control-tcp 127.0.0.1:40001 \
             --control-token-file /t/control.token \
             --lun file=/t/lun0.img,kind=disk,size=1048576,bs=512 \
             --nvme-tcp 127.0.0.1:40002 --advertise-addr 10.0.2.2 --nqn nqn.x:y \
             --personality nvme-2.0-fmt0 \
             --ns file=/t/ns1.img,kind=nvm,size=2097152,bs=4096,mssrl=8"
        );
    }

    #[test]
    fn argv_with_nvme_over_pcie() {
        let mut ns: NsArg = "kind=nvm,size=2M".parse().unwrap();
        ns.file = Some("/t/ns1.img".into());
        let mut c = cfg(vec![]);
        c.nvme = Some(NvmeListen {
            pcie: Some("/t/pcie.sock".into()),
            listen: "127.0.0.1:0".parse().unwrap(),
            nqn: "nqn.x:y".into(),
            personality: None,
            shadow_doorbells: true,
            namespaces: vec![ns],
        });
        assert_eq!(
            args(&c).join(" "),
            "--socket /t/vus.sock --nvme-pcie /t/pcie.sock --nqn nqn.x:y \
             --ns file=/t/ns1.img,kind=nvm,size=2097152,bs=4096"
        );
        if let Some(n) = c.nvme.as_mut() {
            n.shadow_doorbells = false;
        }
        assert!(args(&c)
            .join(" ")
            .contains("--nvme-pcie /t/pcie.sock --nvme-pcie-no-shadow-doorbells "));
    }

    /// A backend that loses the port race exits with "Address already in
    /// use"; that must be told apart from other failures (it is retried).
    #[test]
    fn a_taken_port_is_reported_as_such() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fake = |name: &str, msg: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\necho '{msg}'\nexit 1\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let mut c = cfg(Vec::new());
        c.socket = dir.path().join("vus.sock");
        let log = dir.path().join("backend.log");
        let taken = fake(
            "taken",
            "[ERROR zonecopy_vhost] NVMe/TCP on 127.0.0.1:4420: Address already in use (os error 98)",
        );
        assert!(matches!(
            Backend::start(&taken, &c, &log, Duration::from_secs(5)),
            Err(BackendError::AddrInUse(_))
        ));
        let other = fake("other", "[ERROR zonecopy_vhost] LUN 0: no space");
        assert!(matches!(
            Backend::start(&other, &c, &log, Duration::from_secs(5)),
            Err(BackendError::Exited { .. })
        ));
    }
}
