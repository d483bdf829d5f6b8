//! Everything a boot needs besides QEMU itself: the kernel, the LUNs, a
//! temp dir, the backend (ours or an already running one), the initramfs
//! and the accelerator. Dropping a [`Rig`] stops the backend and then
//! removes the temp dir (fields drop in declaration order).

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use tempfile::TempDir;
use zonecopy_contract::{cmdline::Config as Contract, nvme::NvmeTarget, spec::LunSpec, Suite};

use crate::{
    accel,
    backend::{self, Backend, BackendConfig, BackendError, NvmeListen, GUEST_HOST_ADDR},
    bench::BenchExtras,
    cli::{GuestNet, NvmeTransport, VmArgs, DEFAULT_QEMU},
    control,
    initramfs::{self, BuildRequest},
    kernel::{self, Kernel},
    lun::LunArg,
    needs::{modules_for, parse_luns, parse_namespaces, wants_net, xfail_list, Needs},
    ns::{self, NsArg},
    peer::PeerNvme,
    proc,
    qemu::{cmdline, Accel, QemuConfig, Serial},
    tapnet::{self, NetPath, TapNet},
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

pub(crate) fn fail(e: impl std::fmt::Display) -> SetupError {
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

/// Picks `n` distinct free loopback ports: bind port 0, read it, close
/// (all held until all are chosen, so they differ). Another process may
/// take one before the backend binds it: the backend then exits with
/// "Address already in use" and is started again with new ports.
fn free_ports(n: usize) -> Result<Vec<u16>, SetupError> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("cannot pick a free TCP port: {e}")))?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        // `held` is dropped (the ports closed) on return.
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("cannot pick a free TCP port: {e}")))
}

/// How often the backend is started again with new ports when one it was
/// given got taken in between (a bind race).
const PORT_ATTEMPTS: usize = 5;

#[derive(Debug)]
pub struct Rig {
    pub kernel: Kernel,
    pub luns: Vec<LunArg>,
    /// NVMe namespaces, NSID = index + 1 (empty: no NVMe/TCP).
    pub namespaces: Vec<NsArg>,
    pub nqn: String,
    /// The guest has a NIC (user networking).
    pub net: bool,
    /// The backend's control protocol on 127.0.0.1:PORT (our backend with
    /// networking only).
    pub control_port: Option<u16>,
    /// The secret the guest sends first on the control port.
    pub control_token: Option<String>,
    /// The backend's NVMe/TCP port on 127.0.0.1.
    pub nvme_port: Option<u16>,
    /// The backend's NVMe-over-PCIe (vfio-user) socket.
    pub nvme_pcie: Option<PathBuf>,
    /// `zonecopy.xfail=` ids.
    pub xfail: Vec<String>,
    /// The bench suite's reference disk and sink.
    pub bench: Option<BenchExtras>,
    /// The diff-nvme suite's QEMU NVMe controller.
    pub peer_nvme: Option<PeerNvme>,
    /// The vhost-user-scsi socket QEMU connects to (our backend's, unless
    /// a test points it elsewhere).
    pub socket: PathBuf,
    /// QEMU reconnects to `socket` this many ms after the backend goes
    /// away (`zonecopy-ci kill --transport scsi`); `None`: no reconnect.
    pub vhost_reconnect_ms: Option<u32>,
    pub initrd: PathBuf,
    pub accel: Accel,
    /// Our backend's control socket (`None` with `--backend-socket`).
    pub control: Option<PathBuf>,
    /// How our backend was started, to start it again (`restart`).
    launch: Option<Launch>,
    /// Our backend (`None` with `--backend-socket`). Dropped before `tmp`.
    backend: Option<Backend>,
    /// The private network namespace the runner's thread is in while this
    /// rig lives (NVMe/TCP over a tap device); dropped after the backend.
    tapnet: Option<TapNet>,
    tmp: TempDir,
}

/// This run's temp dir (stale ones of dead runs swept first), tagged
/// with its owner.
fn temp_dir() -> Result<TempDir, SetupError> {
    sweep_stale_temp_dirs(&std::env::temp_dir());
    let tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .map_err(|e| fail(format!("cannot create a temp dir: {e}")))?;
    if let Some(owner) = owner_tag(std::process::id()) {
        let _ = std::fs::write(tmp.path().join(OWNER_FILE), owner);
    }
    Ok(tmp)
}

/// Builds (or finds in the cache) the initramfs for this boot: the guest
/// binary and the suite's modules (nvme-pci too with PCIe).
fn build_initrd(
    vm: &VmArgs,
    kernel: &Kernel,
    needs: Needs<'_>,
    net: bool,
    nvme: bool,
    tmp: &Path,
    out: &Path,
) -> Result<PathBuf, SetupError> {
    let cache = kernel::cache_dir();
    let pcie = vm.nvme_transport == NvmeTransport::Pcie;
    let root = workspace_root();
    let guest_bin = vm
        .guest_bin
        .clone()
        .unwrap_or_else(|| root.join("target/x86_64-unknown-linux-gnu/release/zonecopy-guest"));
    let script = vm
        .initramfs_script
        .clone()
        .unwrap_or_else(|| root.join("images/build-initramfs.sh"));
    let modules = vm
        .modules
        .clone()
        .or_else(|| modules_for(needs.suite, net, nvme))
        // nvme-pci for the PCIe controller.
        .map(|m| if pcie { format!("{m} nvme") } else { m });
    let image = initramfs_path(&cache, kernel, &guest_bin, modules.as_deref())
        .unwrap_or_else(|| tmp.join("initramfs.img"));
    initramfs::build(&BuildRequest {
        script: &script,
        guest_bin: &guest_bin,
        out: &image,
        modules_dir: kernel.modules.as_deref(),
        modules: modules.as_deref(),
        log: &out.join("initramfs.log"),
    })
    .map_err(fail)?;
    Ok(image)
}

/// Backing files in `tmp` for the LUNs and namespaces given none.
fn default_files(luns: &mut [LunArg], namespaces: &mut [NsArg], tmp: &Path) {
    for (i, l) in luns.iter_mut().enumerate() {
        l.file
            .get_or_insert_with(|| tmp.join(format!("lun{i}.img")));
    }
    for (i, n) in namespaces.iter_mut().enumerate() {
        n.file
            .get_or_insert_with(|| tmp.join(ns::default_file(i + 1)));
    }
}

/// Where the backend listens, for [`start_backend`].
#[derive(Clone, Copy, Debug)]
struct Listen {
    /// The guest has a NIC: the control protocol over TCP too.
    net: bool,
    /// The address the guest reaches as 10.0.2.2 ([`listen_addr`]).
    host_ip: Ipv4Addr,
}

/// The one way the runner starts its own backend: sockets and the control
/// token in `tmp`, free ports on `listen`'s address for the control protocol
/// (with `net`) and NVMe/TCP, started again with new ports when one was taken
/// before the backend bound it; recording into `trace` if given. Logs to
/// `out`/backend.log.
fn start_backend(
    vm: &VmArgs,
    tmp: &Path,
    luns: &[LunArg],
    namespaces: &[NsArg],
    listen: Listen,
    trace: Option<PathBuf>,
    out: &Path,
) -> Result<(Launch, Backend), SetupError> {
    let Listen { net, host_ip } = listen;
    let pcie = vm.nvme_transport == NvmeTransport::Pcie;
    let bin = backend::locate(vm.backend.as_deref()).map_err(fail)?;
    let wait = Duration::from_secs(vm.backend_wait);
    let socket = tmp.join("vhost-scsi.sock");
    let control = tmp.join("control.sock");
    let token_file = tmp.join("control.token");
    if net {
        backend::write_token_file(&token_file).map_err(fail)?;
    }
    let mut attempt = 1;
    let (cfg, b) = loop {
        let nvme = !namespaces.is_empty();
        let tcp = nvme && !pcie;
        let mut ports = free_ports(usize::from(net) + usize::from(tcp))?.into_iter();
        let loopback = |p: u16| SocketAddr::from((host_ip, p));
        let cfg = BackendConfig {
            socket: socket.clone(),
            control: Some(control.clone()),
            control_tcp: if net {
                ports.next().map(loopback)
            } else {
                None
            },
            control_token_file: net.then(|| token_file.clone()),
            luns: luns.to_vec(),
            nvme: if nvme {
                Some(NvmeListen {
                    listen: loopback(if tcp { ports.next().unwrap_or(0) } else { 0 }),
                    pcie: pcie.then(|| tmp.join("nvme-pcie.sock")),
                    nqn: vm.nqn.clone(),
                    personality: vm.personality.clone(),
                    namespaces: namespaces.to_vec(),
                    shadow_doorbells: !vm.no_shadow_doorbells,
                })
            } else {
                None
            },
            trace: trace.clone(),
        };
        match Backend::start(&bin, &cfg, &out.join("backend.log"), wait) {
            Ok(b) => break (cfg, b),
            Err(BackendError::AddrInUse(_)) if attempt < PORT_ATTEMPTS => {
                eprintln!("note: a TCP port was taken before the backend bound it; retrying");
                attempt += 1;
            }
            Err(e) => return Err(fail(e)),
        }
    };
    Ok((Launch { bin, wait, cfg }, b))
}

/// The vhost-user socket, the control socket, how the backend was launched
/// and its process: `--backend-socket`'s (a backend running already; the
/// rest `None`) or a backend started here ([`start_backend`]).
type Started = (PathBuf, Option<PathBuf>, Option<Launch>, Option<Backend>);

fn backend_or_socket(
    socket: Option<&Path>,
    start: impl FnOnce() -> Result<(Launch, Backend), SetupError>,
) -> Result<Started, SetupError> {
    if let Some(s) = socket {
        if !backend::is_socket(s) {
            return Err(fail(backend::BackendError::NotASocket(
                s.display().to_string(),
            )));
        }
        return Ok((s.to_path_buf(), None, None, None));
    }
    let (launch, b) = start()?;
    Ok((
        launch.cfg.socket.clone(),
        launch.cfg.control.clone(),
        Some(launch),
        Some(b),
    ))
}

#[derive(Debug)]
struct Launch {
    bin: PathBuf,
    wait: Duration,
    cfg: BackendConfig,
}

impl Rig {
    /// Sets everything up; logs go to `out` (backend.log, initramfs.log).
    pub fn prepare(
        vm: &VmArgs,
        kernel_spec: &str,
        needs: Needs<'_>,
        out: &Path,
    ) -> Result<Rig, SetupError> {
        let cache = kernel::cache_dir();
        let shared = kernel::shared_dir(&workspace_root());
        let tree = vm.kernel_tree.clone().or_else(|| {
            let p = Path::new(kernel_spec);
            kernel::is_kernel_tree(p).then(|| p.to_path_buf())
        });
        let kernel = match tree {
            Some(t) => {
                std::fs::create_dir_all(out)
                    .map_err(|e| fail(format!("cannot create {}: {e}", out.display())))?;
                kernel::build_tree(&t, &workspace_root(), &cache, &out.join("kernel-build.log"))
            }
            None => kernel::resolve(kernel_spec, vm.modules_dir.as_deref(), &cache, &shared),
        }
        .map_err(fail)?;
        let mut luns = parse_luns(&vm.luns, needs.suite)?;
        let mut namespaces =
            parse_namespaces(&vm.namespaces, needs.suite, vm.backend_socket.is_some())?;
        let net = wants_net(needs, &namespaces);
        let xfail = xfail_list(&kernel, &vm.xfail, vm.nvme_transport == NvmeTransport::Pcie);
        std::fs::create_dir_all(out)
            .map_err(|e| fail(format!("cannot create {}: {e}", out.display())))?;
        let tmp = temp_dir()?;
        default_files(&mut luns, &mut namespaces, tmp.path());
        let pcie = vm.nvme_transport == NvmeTransport::Pcie;
        let tapnet = enter_tapnet(vm, needs, net && !pcie && !namespaces.is_empty())?;
        let host_ip = listen_addr(tapnet.as_ref());
        // The initramfs (usually only the runner's metadata check that the
        // cached image is current, initramfs_quick; else the builder's
        // check by content, ~0.28 s, or a build) while the backend starts
        // (~0.1 s until its socket is there): both are set-up time before
        // QEMU starts, which counts toward the boot (issue 17). A backend
        // that fails at once is reported after the image is done.
        let nvme = !namespaces.is_empty();
        let (started, initrd) = std::thread::scope(|s| {
            let initrd = s.spawn(|| match &vm.initrd {
                Some(i) if i.is_file() => Ok(i.clone()),
                Some(i) => Err(fail(format!("initramfs {} does not exist", i.display()))),
                None => build_initrd(vm, &kernel, needs, net, nvme, tmp.path(), out),
            });
            let trace = traced(needs.suite, vm).then(|| tmp.path().join(TRACE_FILE));
            let listen = Listen { net, host_ip };
            let started = backend_or_socket(vm.backend_socket.as_deref(), || {
                start_backend(vm, tmp.path(), &luns, &namespaces, listen, trace, out)
            });
            let initrd = initrd
                .join()
                .unwrap_or_else(|_| Err(fail("the initramfs build thread panicked")));
            (started, initrd)
        });
        let (socket, control, launch, backend) = started?;
        let initrd = initrd?;
        let bench = if Suite::named(needs.suite) == Some(Suite::Bench) {
            Some(
                BenchExtras::prepare(&luns, &namespaces, pcie, tmp.path(), host_ip)?
                    .with_fio(vm.fio_rounds, vm.fio_runtime)?,
            )
        } else {
            None
        };
        let peer_nvme = if Suite::named(needs.suite) == Some(Suite::DiffNvme) {
            Some(PeerNvme::prepare(&namespaces, tmp.path()).map_err(fail)?)
        } else {
            None
        };
        let control_port = launch
            .as_ref()
            .and_then(|l| l.cfg.control_tcp.map(|a| a.port()));
        let control_token = launch
            .as_ref()
            .and_then(|l| l.cfg.control_token_file.as_deref())
            .map(backend::read_token_file)
            .transpose()
            .map_err(fail)?;
        let nvme_port = launch.as_ref().and_then(|l| {
            l.cfg
                .nvme
                .as_ref()
                .filter(|n| n.pcie.is_none())
                .map(|n| n.listen.port())
        });
        let nvme_pcie = launch
            .as_ref()
            .and_then(|l| l.cfg.nvme.as_ref().and_then(|n| n.pcie.clone()));

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
            namespaces,
            nqn: vm.nqn.clone(),
            net,
            control_port,
            control_token,
            nvme_port,
            nvme_pcie,
            xfail,
            bench,
            peer_nvme,
            socket,
            vhost_reconnect_ms: None,
            initrd,
            accel,
            control,
            launch,
            backend,
            tapnet,
            tmp,
        })
    }

    /// The kernel command line for this rig (ARCHITECTURE.md "The guest
    /// contract"): `suite` or `run` (hex), `extra` appended.
    pub fn cmdline(&self, suite: Option<&str>, run: Option<&str>, extra: &str) -> String {
        let host = |port: u16| SocketAddr::from((GUEST_HOST_ADDR, port));
        let nvme = match (&self.nvme_pcie, self.nvme_port) {
            (Some(_), _) => Some(NvmeTarget::pcie(&self.nqn)),
            (None, Some(p)) => Some(NvmeTarget::tcp(GUEST_HOST_ADDR.to_string(), p, &self.nqn)),
            (None, None) => None,
        };
        let bench = self.bench.as_ref();
        let contract = Contract {
            suite: suite.map(str::to_owned),
            luns: (0u64..).zip(self.luns.iter().map(|l| l.spec)).collect(),
            run: run.map(str::to_owned),
            control: self.control_port.map(host),
            control_token: self.control_token.clone(),
            nvme,
            namespaces: (1u32..)
                .zip(self.namespaces.iter().map(|n| n.spec))
                .collect(),
            xfail: self.xfail.clone(),
            scsi_hd: bench
                .and_then(|b| b.scsi_hd.as_ref())
                .map(|d| LunSpec::disk(d.bs, d.size)),
            sink: bench.filter(|_| self.net).map(|b| host(b.sink.port())),
            nvme_ref: bench
                .and_then(|b| b.nvme_ref.as_ref())
                .map(|d| LunSpec::disk(d.bs, d.size)),
            fio: bench.and_then(|b| b.fio),
            peer_nvme: self.peer_nvme.as_ref().map(|p| p.spec.clone()),
        };
        // Under TCG the guest's TSC runs at the host's rate: tell the
        // guest kernel instead of letting it calibrate (crate::hosttsc).
        // Before `extra`, so a user's own value wins.
        match crate::hosttsc::khz().filter(|_| self.accel == Accel::Tcg) {
            Some(khz) => cmdline(&contract, &format!("tsc_early_khz={khz} {extra}")),
            None => cmdline(&contract, extra),
        }
    }

    /// The QEMU configuration for this rig (a NIC when the rig has
    /// networking).
    pub fn qemu(&self, vm: &VmArgs, append: String, hostroot: bool, serial: Serial) -> QemuConfig {
        QemuConfig {
            qemu: self.qemu_binary(vm),
            bios: bios(vm),
            accel: self.accel,
            memory_mib: vm.memory,
            kernel: self.kernel.image.clone(),
            initrd: self.initrd.clone(),
            append,
            vhost_socket: Some(self.socket.clone()),
            vhost_reconnect_ms: self.vhost_reconnect_ms,
            vfio_user: self.nvme_pcie.clone(),
            net: self.net.then_some(if self.tapnet.is_some() {
                NetPath::Tap
            } else {
                NetPath::User
            }),
            hostroot,
            scsi_hd: self.bench.as_ref().and_then(|b| b.scsi_hd.clone()),
            peer_nvme: self.peer_nvme.clone(),
            nvme_ref: self.bench.as_ref().and_then(|b| b.nvme_ref.clone()),
            serial,
        }
    }

    /// The QEMU to run: with NVMe over PCIe and the default --qemu, the
    /// sid QEMU (vfio-user client) through scripts/qemu-sid.
    pub fn qemu_binary(&self, vm: &VmArgs) -> PathBuf {
        if self.nvme_pcie.is_some() && vm.qemu == Path::new(DEFAULT_QEMU) {
            workspace_root().join("scripts/qemu-sid")
        } else {
            vm.qemu.clone()
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
            Some(c) => control::save_dumps(c, &self.luns, &self.namespaces, out),
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
        // The same ports: the guest's command line named them.
        let new = Backend::start(&launch.bin, &launch.cfg, log, launch.wait)
            .map_err(|e| e.to_string())?;
        self.backend = Some(new);
        Ok(status)
    }

    /// Stops the backend, removes the temp dir. Returns problems, if any.
    pub fn shutdown(self) -> Vec<String> {
        self.shutdown_keeping_trace(None).0
    }

    /// [`Rig::shutdown`], first moving the backend's trace (and its device
    /// images) into `keep`/trace when given and recorded; returns the
    /// trace file kept.
    pub fn shutdown_keeping_trace(mut self, keep: Option<&Path>) -> (Vec<String>, Option<PathBuf>) {
        let mut problems = Vec::new();
        let mut kept = None;
        if let Some(b) = self.backend.take() {
            let status = b.stop();
            if !backend::clean_stop(&status) {
                problems.push(format!("backend ended with {status}"));
            }
        }
        let trace = self.launch.as_ref().and_then(|l| l.cfg.trace.clone());
        if let (Some(out), Some(trace)) = (keep, trace.filter(|t| t.exists())) {
            match keep_trace(&trace, &out.join("trace")) {
                Ok(file) => kept = Some(file),
                Err(e) => problems.push(format!("cannot keep the trace: {e}")),
            }
        }
        problems.extend(self.shutdown_rest());
        (problems, kept)
    }

    fn shutdown_rest(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(b) = self.bench.take() {
            eprintln!("{}", b.sink.stop());
        }
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

/// With NVMe/TCP in a suite run (`tcp_nvme`, our own backend), the
/// runner's thread enters a private network namespace with a tap device
/// ([`TapNet`]) unless `--guest-net user`; when that is impossible (no
/// root, no /dev/net/tun) the guest keeps user networking, with a note
/// (`--guest-net tap` makes it an error).
fn enter_tapnet(
    vm: &VmArgs,
    needs: Needs<'_>,
    tcp_nvme: bool,
) -> Result<Option<TapNet>, SetupError> {
    let wanted = match vm.guest_net {
        GuestNet::User => false,
        GuestNet::Tap => true,
        GuestNet::Auto => tcp_nvme && needs.suite.is_some() && vm.backend_socket.is_none(),
    };
    if !wanted {
        return Ok(None);
    }
    match TapNet::enter() {
        Ok(t) => {
            if Suite::named(needs.suite) == Some(Suite::Bench) {
                println!("# bench guest-net path=tap mtu={}", tapnet::MTU);
            }
            Ok(Some(t))
        }
        Err(e) if vm.guest_net == GuestNet::Tap => {
            Err(fail(format!("--guest-net tap: cannot set the tap up: {e}")))
        }
        Err(e) => {
            eprintln!("note: NVMe/TCP through QEMU user networking (no tap: {e})");
            Ok(None)
        }
    }
}

/// Where the backend listens: the tap's address in the namespace, or the
/// host's loopback that slirp reaches as 10.0.2.2.
fn listen_addr(tapnet: Option<&TapNet>) -> Ipv4Addr {
    if tapnet.is_some() {
        tapnet::HOST_ADDR
    } else {
        Ipv4Addr::LOCALHOST
    }
}

/// The backend's trace in the run's temp dir.
const TRACE_FILE: &str = "backend.trace";

/// Whether a run records a trace: every suite but the benchmark (whose
/// numbers would include the recording), unless --no-trace.
fn traced(suite: Option<&str>, vm: &VmArgs) -> bool {
    Suite::named(suite) != Some(Suite::Bench) && suite.is_some() && !vm.no_trace
}

/// Move `trace` (its rotated parts and its FILE.img/ images) into `dir`;
/// a copy when they are on another file system. Returns the kept file.
fn keep_trace(trace: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let parent = trace.parent().unwrap_or(Path::new("."));
    let name = trace
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    for entry in std::fs::read_dir(parent)? {
        let entry = entry?;
        if !entry.file_name().to_string_lossy().starts_with(&name) {
            continue;
        }
        let to = dir.join(entry.file_name());
        if std::fs::rename(entry.path(), &to).is_err() {
            let status = std::process::Command::new("cp")
                .args(["-a", "--sparse=always"])
                .arg(entry.path())
                .arg(&to)
                .status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!("cp ended with {status}")));
            }
        }
    }
    Ok(dir.join(name))
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
#[path = "rig_tests.rs"]
mod tests;
