//! Everything a boot needs besides QEMU itself: the kernel, the LUNs, a
//! temp dir, the backend (ours or an already running one), the initramfs
//! and the accelerator. Dropping a [`Rig`] stops the backend and then
//! removes the temp dir (fields drop in declaration order).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use tempfile::TempDir;

use crate::{
    accel,
    backend::{self, Backend},
    cli::VmArgs,
    control,
    initramfs::{self, BuildRequest},
    kernel::{self, Kernel},
    lun::{LunSpec, DEFAULT_LUNS},
    proc,
    qemu::{Accel, QemuConfig, Serial},
    util::Fnv,
};

/// A set-up failure, reported as the run's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Failed(String),
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
}

fn fail(e: impl std::fmt::Display) -> SetupError {
    match proc::interrupted() {
        Some(sig) => SetupError::Interrupted(sig),
        None => SetupError::Failed(e.to_string()),
    }
}

/// The workspace root (for default paths), from this crate's location.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Parses `--lun` specs (the defaults when none are given).
pub fn parse_luns(specs: &[String]) -> Result<Vec<LunSpec>, SetupError> {
    let given: Vec<&str> = if specs.is_empty() {
        DEFAULT_LUNS.to_vec()
    } else {
        specs.iter().map(String::as_str).collect()
    };
    given
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse()
                .map_err(|e| SetupError::Failed(format!("--lun {i} `{s}`: {e}")))
        })
        .collect()
}

#[derive(Debug)]
pub struct Rig {
    pub kernel: Kernel,
    pub luns: Vec<LunSpec>,
    pub socket: PathBuf,
    pub initrd: PathBuf,
    pub accel: Accel,
    /// Our backend's control socket (`None` with `--backend-socket`).
    pub control: Option<PathBuf>,
    /// How our backend was started, to start it again (`restart`).
    launch: Option<Launch>,
    /// Our backend (`None` with `--backend-socket`). Dropped before `tmp`.
    backend: Option<Backend>,
    tmp: TempDir,
}

#[derive(Debug)]
struct Launch {
    bin: PathBuf,
    wait: Duration,
}

impl Rig {
    /// Sets everything up; logs go to `out` (backend.log, initramfs.log).
    pub fn prepare(vm: &VmArgs, kernel_spec: &str, out: &Path) -> Result<Rig, SetupError> {
        let cache = kernel::cache_dir();
        let kernel =
            kernel::resolve(kernel_spec, vm.modules_dir.as_deref(), &cache).map_err(fail)?;
        let mut luns = parse_luns(&vm.luns)?;
        std::fs::create_dir_all(out)
            .map_err(|e| fail(format!("cannot create {}: {e}", out.display())))?;
        sweep_stale_temp_dirs(&std::env::temp_dir());
        let tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempdir()
            .map_err(|e| fail(format!("cannot create a temp dir: {e}")))?;
        if let Some(owner) = owner_tag(std::process::id()) {
            let _ = std::fs::write(tmp.path().join(OWNER_FILE), owner);
        }
        for (i, l) in luns.iter_mut().enumerate() {
            if l.file.is_none() {
                l.file = Some(tmp.path().join(format!("lun{i}.img")));
            }
        }

        let (socket, control, launch, backend) = match &vm.backend_socket {
            Some(s) => {
                if !backend::is_socket(s) {
                    return Err(fail(backend::BackendError::NotASocket(
                        s.display().to_string(),
                    )));
                }
                (s.clone(), None, None, None)
            }
            None => {
                let launch = Launch {
                    bin: backend::locate(vm.backend.as_deref()).map_err(fail)?,
                    wait: Duration::from_secs(vm.backend_wait),
                };
                let socket = tmp.path().join("vhost-scsi.sock");
                let control = tmp.path().join("control.sock");
                let b = Backend::start(
                    &launch.bin,
                    &socket,
                    Some(&control),
                    &luns,
                    &out.join("backend.log"),
                    launch.wait,
                )
                .map_err(fail)?;
                (socket, Some(control), Some(launch), Some(b))
            }
        };

        let initrd = match &vm.initrd {
            Some(i) if i.is_file() => i.clone(),
            Some(i) => return Err(fail(format!("initramfs {} does not exist", i.display()))),
            None => {
                let root = workspace_root();
                let guest_bin = vm.guest_bin.clone().unwrap_or_else(|| {
                    root.join("target/x86_64-unknown-linux-gnu/release/zonecopy-guest")
                });
                let script = vm
                    .initramfs_script
                    .clone()
                    .unwrap_or_else(|| root.join("images/build-initramfs.sh"));
                let image = initramfs_path(&cache, &kernel, &guest_bin, vm.modules.as_deref())
                    .unwrap_or_else(|| tmp.path().join("initramfs.img"));
                initramfs::build(&BuildRequest {
                    script: &script,
                    guest_bin: &guest_bin,
                    out: &image,
                    modules_dir: kernel.modules.as_deref(),
                    modules: vm.modules.as_deref(),
                    log: &out.join("initramfs.log"),
                })
                .map_err(fail)?;
                image
            }
        };

        let accel = accel::choose(
            vm.accel,
            &kernel,
            &vm.qemu,
            bios(vm).as_deref(),
            &cache,
            tmp.path(),
        );
        if let Some(sig) = proc::interrupted() {
            return Err(SetupError::Interrupted(sig));
        }
        Ok(Rig {
            kernel,
            luns,
            socket,
            initrd,
            accel,
            control,
            launch,
            backend,
            tmp,
        })
    }

    /// The QEMU configuration for this rig.
    pub fn qemu(
        &self,
        vm: &VmArgs,
        append: String,
        net: bool,
        hostroot: bool,
        serial: Serial,
    ) -> QemuConfig {
        QemuConfig {
            qemu: vm.qemu.clone(),
            bios: bios(vm),
            accel: self.accel,
            memory_mib: vm.memory,
            kernel: self.kernel.image.clone(),
            initrd: self.initrd.clone(),
            append,
            vhost_socket: Some(self.socket.clone()),
            net,
            hostroot,
            serial,
        }
    }

    /// Did our backend die while it should have been serving?
    pub fn backend_died(&mut self) -> Option<String> {
        self.backend.as_mut().and_then(Backend::exited)
    }

    pub fn backend_pid(&self) -> Option<u32> {
        self.backend.as_ref().map(Backend::pid)
    }

    /// Saves the backend's `stats` and `zones` answers into `out`
    /// (stats.json, zones-lun<N>.json). Returns notes on what could not be
    /// saved: a debugging aid, never part of a verdict.
    pub fn save_control_dumps(&self, out: &Path) -> Vec<String> {
        match &self.control {
            Some(c) => control::save_dumps(c, &self.luns, out),
            None => vec!["no control socket: the backend is not ours (--backend-socket)".into()],
        }
    }

    /// Stops our backend (SIGTERM; it flushes and persists zone state) and
    /// starts a new one on the same backing files, socket and control
    /// socket, logging to `log`. Returns how the old one ended.
    pub fn restart_backend(&mut self, log: &Path) -> Result<String, String> {
        let (Some(old), Some(launch)) = (self.backend.take(), &self.launch) else {
            return Err("the backend is not ours (--backend-socket)".into());
        };
        let status = old.stop();
        let new = Backend::start(
            &launch.bin,
            &self.socket,
            self.control.as_deref(),
            &self.luns,
            log,
            launch.wait,
        )
        .map_err(|e| e.to_string())?;
        self.backend = Some(new);
        Ok(status)
    }

    /// Stops the backend, removes the temp dir. Returns problems, if any.
    pub fn shutdown(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(b) = self.backend.take() {
            let status = b.stop();
            // SIGTERM is how we stop it; anything else is worth a note.
            if !backend::clean_stop(&status) {
                problems.push(format!("backend ended with {status}"));
            }
        }
        if let Err(e) = self.tmp.close() {
            problems.push(format!("cannot remove the temp dir: {e}"));
        }
        problems
    }
}

fn bios(vm: &VmArgs) -> Option<PathBuf> {
    (!vm.bios.as_os_str().is_empty()).then(|| vm.bios.clone())
}

/// `$ZONECOPY_CACHE/initramfs/<kernel>-<hash of the inputs>.img`, or `None`
/// when the cache is not writable.
fn initramfs_path(
    cache: &Path,
    kernel: &Kernel,
    guest_bin: &Path,
    modules: Option<&str>,
) -> Option<PathBuf> {
    let dir = cache.join("initramfs");
    std::fs::create_dir_all(&dir).ok()?;
    let probe = dir.join(".writable");
    std::fs::write(&probe, b"").ok()?;
    let mut h = Fnv::default();
    h.add(
        kernel
            .modules
            .as_deref()
            .map(|m| m.as_os_str().as_encoded_bytes())
            .unwrap_or_default(),
    )
    .add(guest_bin.as_os_str().as_encoded_bytes())
    .add(modules.unwrap_or_default().as_bytes());
    let label: String = kernel
        .label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(dir.join(format!("{label}-{}.img", h.hex())))
}

const TMP_PREFIX: &str = "zonecopy-ci.";
const OWNER_FILE: &str = "owner";

/// `<pid> <start time in clock ticks>` of a process (from /proc), which
/// identifies it even if the PID is reused later.
fn owner_tag(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime); fields after the `)` of the command name start
    // at field 3.
    let after = stat.rsplit_once(')')?.1;
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid} {start}\n"))
}

/// Removes temp dirs left by runners that were SIGKILLed (nothing else can
/// skip our cleanup): a dir whose `owner` process no longer exists. Dirs
/// without an owner file (just being created) are left alone.
pub fn sweep_stale_temp_dirs(tmp_root: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp_root) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            continue;
        }
        let dir = e.path();
        let Ok(owner) = std::fs::read_to_string(dir.join(OWNER_FILE)) else {
            continue;
        };
        let alive = owner
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .and_then(owner_tag)
            .is_some_and(|now| now == owner);
        if !alive {
            eprintln!(
                "removing stale temp dir {} (its runner is gone)",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_tag_of_self() {
        let tag = owner_tag(std::process::id()).unwrap();
        assert!(tag.starts_with(&format!("{} ", std::process::id())));
    }

    #[test]
    fn sweeps_only_dead_owners() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join("zonecopy-ci.live");
        let dead = root.path().join("zonecopy-ci.dead");
        let fresh = root.path().join("zonecopy-ci.fresh");
        let other = root.path().join("other.dead");
        for d in [&live, &dead, &fresh, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(
            live.join(OWNER_FILE),
            owner_tag(std::process::id()).unwrap(),
        )
        .unwrap();
        // Our PID with a different start time: a reused PID, owner gone.
        std::fs::write(dead.join(OWNER_FILE), format!("{} 1\n", std::process::id())).unwrap();
        std::fs::write(other.join(OWNER_FILE), "1 1\n").unwrap();
        sweep_stale_temp_dirs(root.path());
        assert!(live.exists());
        assert!(!dead.exists());
        assert!(fresh.exists());
        assert!(other.exists());
    }
}
