//! `zonecopy-ci kill`: acknowledged writes survive SIGKILL of the backend,
//! through the whole stack (guest kernel, nvme-tcp, QEMU user networking,
//! backend, storage core).
//!
//! Besides the rig's usual backend (SCSI, control), a second backend - the
//! victim - serves one NVMe namespace. While the guest's `kill` suite writes
//! stamped blocks to it, a thread here kills the victim with SIGKILL at
//! pseudo-random intervals (a fixed seed, so a run can be repeated) and
//! starts a new one on the same backing file and port at once. The guest
//! reconnects after each kill and in the end reads every block back: the
//! verdict is the guest's KTAP plus the kill count here, which must reach
//! [`MIN_KILLS`].

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    backend::{self, Backend, BackendConfig, NvmeListen, GUEST_HOST_ADDR},
    cli::KillArgs,
    lun::LunSpec,
    ns::NsSpec,
    suite::{boot, default_out, failed_run, judge, kernel_label, prepare, say, SuiteJob},
    timing,
};

/// Kills the guest suite must live through (its `MIN_RESETS`).
pub const MIN_KILLS: u32 = 50;
/// The victim's subsystem.
const VICTIM_NQN: &str = "nqn.2026-11.dev.zonecopy:victim";

/// What the killer thread did.
#[derive(Debug, Default)]
struct Killed {
    kills: u32,
    /// A restart that failed (the run cannot go on).
    error: Option<String>,
}

/// xorshift64: the pause before each kill, from a fixed seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot pick a free TCP port: {e}"))
}

/// Start the victim, retrying a port that is still held for a moment by
/// the killed process's sockets.
fn start_victim(bin: &Path, cfg: &BackendConfig, log: &Path) -> Result<Backend, String> {
    let mut last = String::new();
    for _ in 0..20 {
        match Backend::start(bin, cfg, log, Duration::from_secs(10)) {
            Ok(b) => return Ok(b),
            Err(backend::BackendError::AddrInUse(e)) => {
                last = e;
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("port still in use after 2 s: {last}"))
}

/// Kill and restart the victim until `stop` or `max` kills.
fn killer(
    bin: PathBuf,
    cfg: BackendConfig,
    logs: PathBuf,
    mut victim: Backend,
    args: (u64, u64, u32),
    stop: Arc<AtomicBool>,
) -> Killed {
    let (min_ms, max_ms, max) = args;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut k = Killed::default();
    // No kill before the guest has connected: a kill during its first
    // connect fails the connect (the kernel retries only once connected).
    // (Seen in the victim's info log; a minute at most, should RUST_LOG hide it.)
    let first_log = logs.join("000.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&first_log).is_ok_and(|l| l.contains(" controller "))
        && Instant::now() < deadline
    {
        if stop.load(Ordering::Relaxed) {
            return k;
        }
        thread::sleep(Duration::from_millis(50));
    }
    while k.kills < max {
        let pause = min_ms + next(&mut seed) % (max_ms - min_ms + 1);
        let until = Instant::now() + Duration::from_millis(pause);
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return k;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(status) = victim.exited() {
            k.error = Some(format!("the victim died on its own ({status})"));
            return k;
        }
        victim.kill();
        k.kills += 1;
        match start_victim(&bin, &cfg, &logs.join(format!("{:03}.log", k.kills))) {
            Ok(b) => victim = b,
            Err(e) => {
                k.error = Some(format!("restart after kill {}: {e}", k.kills));
                return k;
            }
        }
    }
    // Let the guest finish against the last victim; stop it afterwards.
    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50));
    }
    k
}

pub fn cmd_kill(a: &KillArgs) -> i32 {
    let started = Instant::now();
    let wall = SystemTime::now();
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| default_out(&format!("kill-{}", kernel_label(&a.kernel))));
    let logs = out.join("victim");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("cannot create {}: {e}", logs.display());
        return 1;
    }
    let data = match tempfile::Builder::new().prefix("zonecopy-kill-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temp dir: {e}");
            return 1;
        }
    };
    let setup = (|| -> Result<(PathBuf, BackendConfig, u16), String> {
        let bin = backend::locate(a.vm.backend.as_deref()).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let mut ns: NsSpec = "kind=nvm,size=32M".parse().map_err(|e| format!("{e}"))?;
        ns.dev.file = Some(data.path().join("victim-ns1.img"));
        let mut lun: LunSpec = "kind=disk,size=1M".parse().map_err(|e| format!("{e}"))?;
        lun.file = Some(data.path().join("victim-lun0.img"));
        let cfg = BackendConfig {
            socket: data.path().join("victim.sock"),
            control: None,
            control_tcp: None,
            luns: vec![lun],
            nvme: Some(NvmeListen {
                pcie: None,
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                nqn: VICTIM_NQN.to_owned(),
                personality: None,
                namespaces: vec![ns],
            }),
        };
        Ok((bin, cfg, port))
    })();
    let (bin, cfg, port) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zonecopy-ci kill: {e}");
            return 1;
        }
    };
    let victim = match start_victim(&bin, &cfg, &logs.join("000.log")) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("zonecopy-ci kill: cannot start the victim backend: {e}");
            return 1;
        }
    };
    let mut vm = a.vm.clone();
    vm.append = format!(
        "{} zonecopy.nvme=traddr={GUEST_HOST_ADDR},trsvcid={port},nqn={VICTIM_NQN}",
        vm.append
    )
    .trim()
    .to_owned();
    let job = SuiteJob {
        vm: &vm,
        kernel: &a.kernel,
        suite: "kill",
        timeout: Duration::from_secs(a.timeout),
        net: true,
        out: &out,
    };
    let mut rig = match prepare(&job, started, wall) {
        Ok(r) => r,
        Err(failed) => {
            say(&failed.summary());
            return 1;
        }
    };
    say(&format!(
        "kill: the kill suite on {}, victim backend (NVMe/TCP 127.0.0.1:{port}) killed with SIGKILL every {}-{} ms, up to {} times",
        a.kernel, a.min_interval_ms, a.max_interval_ms, a.max_kills
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let (bin, cfg, logs, stop) = (bin.clone(), cfg.clone(), logs.clone(), Arc::clone(&stop));
        let params = (
            a.min_interval_ms,
            a.max_interval_ms.max(a.min_interval_ms),
            a.max_kills,
        );
        thread::spawn(move || killer(bin, cfg, logs, victim, params, stop))
    };
    let booted = boot(&mut rig, &job, None);
    stop.store(true, Ordering::Relaxed);
    let killed = killer.join().unwrap_or_else(|_| Killed {
        kills: 0,
        error: Some("the killer thread panicked".into()),
    });
    let run = match booted {
        Ok(b) => judge(&job, started, SystemTime::now(), Duration::ZERO, b),
        Err(e) => failed_run(&job, started, SystemTime::now(), e),
    };
    for p in rig.shutdown() {
        eprintln!("warning: {p}");
    }
    let mut problems = Vec::new();
    if killed.kills < MIN_KILLS {
        problems.push(format!(
            "only {} kills (at least {MIN_KILLS} wanted)",
            killed.kills
        ));
    }
    problems.extend(killed.error);
    say(&format!("guest: {}", run.summary()));
    say(&format!("backend kills (SIGKILL): {}", killed.kills));
    for p in &problems {
        say(&format!("  problem: {p}"));
    }
    let pass = run.pass() && problems.is_empty();
    say(&format!(
        "kill: {} passed, {} failed (total {}; logs in {})",
        usize::from(pass),
        usize::from(!pass),
        timing::secs(started.elapsed()),
        out.display()
    ));
    i32::from(!pass)
}
