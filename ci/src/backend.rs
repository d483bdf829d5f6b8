//! The `zonecopy-vhost` backend process.

use std::{
    fs::File,
    os::unix::fs::FileTypeExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{lun::LunSpec, proc, vm::log_tail};

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

/// The backend argv (without the program name).
pub fn args(socket: &Path, control: Option<&Path>, luns: &[LunSpec]) -> Vec<String> {
    let mut a = vec!["--socket".to_owned(), socket.display().to_string()];
    if let Some(c) = control {
        a.push("--control".into());
        a.push(c.display().to_string());
    }
    for l in luns {
        a.push("--lun".into());
        a.push(l.backend_arg());
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
        socket: &Path,
        control: Option<&Path>,
        luns: &[LunSpec],
        log: &Path,
        timeout: Duration,
    ) -> Result<Self, BackendError> {
        let log_err = |source| BackendError::Log {
            path: log.display().to_string(),
            source,
        };
        let out = File::create(log).map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let mut cmd = Command::new(bin);
        cmd.args(args(socket, control, luns))
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
                return Err(BackendError::Exited {
                    status: status.to_string(),
                    log: log_tail(log, 10),
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

    #[test]
    fn argv() {
        let mut l: LunSpec = "kind=disk,size=1M,bs=512".parse().unwrap();
        l.file = Some("/t/lun0.img".into());
        assert_eq!(
            args(Path::new("/t/vus.sock"), None, &[l.clone()]),
            vec![
                "--socket",
                "/t/vus.sock",
                "--lun",
                "file=/t/lun0.img,kind=disk,size=1048576,bs=512"
            ]
        );
        assert_eq!(
            args(Path::new("/t/vus.sock"), Some(Path::new("/t/c.sock")), &[l]),
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
}
