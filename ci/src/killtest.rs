//! `zonecopy-ci kill`: acknowledged writes survive SIGKILL of the backend,
//! through the whole stack (guest kernel, the transport, QEMU, backend,
//! storage core).
//!
//! Besides the rig's usual backend (SCSI, control), a second backend - the
//! victim - serves the device the guest's `kill` suite writes stamped
//! blocks to. A thread here kills the victim with SIGKILL at pseudo-random
//! intervals (a fixed seed, so a run can be repeated) and starts a new one
//! on the same backing files at once. In the end the guest reads every
//! block back: the verdict is the guest's KTAP plus the kill count here,
//! which must reach [`MIN_KILLS`].
//!
//! - `--transport nvme`: the victim serves one NVMe namespace; the guest's
//!   nvme-tcp driver reconnects after each kill and requeues what the dead
//!   backend never answered.
//! - `--transport scsi`: the victim serves the vhost-user-scsi device QEMU
//!   attaches (its chardev reconnects); the guest never sees the kills: the
//!   new backend gets the inflight region back from QEMU
//!   (VHOST_USER_SET_INFLIGHT_FD) and serves again what the dead one left
//!   in flight. LUN 0 takes the writes; LUN 1 is a mailbox: before each
//!   restart the runner writes the kill count into its first block, which
//!   the guest reads to know how many kills it has lived through.

use zonecopy_contract::{cmdline::Config as Contract, nvme::NvmeTarget, Suite};

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
    cli::{KillArgs, KillTransport},
    lun::LunArg,
    ns::NsArg,
    suite::{boot, default_out, failed_run, judge, kernel_label, prepare, say, SuiteJob},
    timing,
};

/// Kills the guest suite must live through (its `MIN_RESETS`).
pub const MIN_KILLS: u32 = 50;
/// The victim's subsystem.
const VICTIM_NQN: &str = "nqn.2026-11.dev.zonecopy:victim";
/// How soon QEMU tries the vhost-user socket again after losing it.
const SCSI_RECONNECT_MS: u32 = 100;

/// What the killer needs to know about the victim.
#[derive(Debug, Clone)]
struct VictimKind {
    /// A line of the first victim's log that says the guest is using it
    /// (no kill before: a kill during the first connect fails it).
    ready: &'static str,
    /// SCSI: the mailbox LU's backing file (kill count in block 0).
    mailbox: Option<PathBuf>,
}

/// Write the kill count into the mailbox LU's first block, as ASCII
/// digits padded with zeros (the guest's `killtest` reads it back).
fn post_kills(mailbox: &Path, kills: u32) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let mut block = [0u8; 4096];
    let text = format!("{kills}\n");
    block[..text.len()].copy_from_slice(text.as_bytes());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(mailbox)
        .map_err(|e| format!("mailbox {}: {e}", mailbox.display()))?;
    f.write_all_at(&block, 0)
        .and_then(|()| f.sync_data())
        .map_err(|e| format!("mailbox {}: {e}", mailbox.display()))
}

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

/// What the guest prints when its write storm ends (guest-tools
/// src/killtest.rs: "N writes of 64 KiB acknowledged, ..."): from then on it
/// only reads back and powers off, which must not race a dying backend (a
/// kill during the guest's shutdown can hold nvme-tcp's teardown past the
/// power-off deadline).
const STORM_DONE: &str = " KiB acknowledged, ";

/// Whether the guest's console shows its write storm ended.
fn storm_done(console: &Path) -> bool {
    std::fs::read_to_string(console).is_ok_and(|c| c.contains(STORM_DONE))
}

/// Kill and restart the victim until `stop`, `max` kills, or the guest's
/// write storm ended (its console at `console`).
fn killer(
    bin: PathBuf,
    (cfg, kind): (BackendConfig, VictimKind),
    (logs, console): (PathBuf, PathBuf),
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
    while !std::fs::read_to_string(&first_log).is_ok_and(|l| l.contains(kind.ready))
        && Instant::now() < deadline
    {
        if stop.load(Ordering::Relaxed) {
            return k;
        }
        thread::sleep(Duration::from_millis(50));
    }
    while k.kills < max && !storm_done(&console) {
        let pause = min_ms + next(&mut seed) % (max_ms - min_ms + 1);
        let until = Instant::now() + Duration::from_millis(pause);
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return k;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if storm_done(&console) {
            break;
        }
        if let Some(status) = victim.exited() {
            k.error = Some(format!("the victim died on its own ({status})"));
            return k;
        }
        victim.kill();
        k.kills += 1;
        if let Some(m) = &kind.mailbox {
            if let Err(e) = post_kills(m, k.kills) {
                k.error = Some(e);
                return k;
            }
            // The dead backend's socket file: gone, so the start below
            // waits for the new one to be bound.
            let _ = std::fs::remove_file(&cfg.socket);
        }
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
        .limits
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
    let setup = victim_config(a.transport, a.vm.backend.as_deref(), data.path());
    let (bin, cfg, kind, append) = match setup {
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
    vm.append = format!("{} {append}", vm.append).trim().to_owned();
    let net = a.transport == KillTransport::Nvme;
    let job = SuiteJob::new(&vm, &a.kernel, Suite::Kill.as_str(), &a.limits, net, &out);
    let mut rig = match prepare(&job, started, wall) {
        Ok(r) => r,
        Err(failed) => {
            say(&failed.summary());
            return 1;
        }
    };
    if a.transport == KillTransport::Scsi {
        // QEMU's vhost-user-scsi device is the victim's, and reconnects.
        rig.socket = cfg.socket.clone();
        rig.vhost_reconnect_ms = Some(SCSI_RECONNECT_MS);
    }
    say(&format!(
        "kill: the kill suite on {}, victim backend ({}) killed with SIGKILL every {}-{} ms, up to {} times",
        a.kernel,
        match &cfg.nvme {
            Some(n) => format!("NVMe/TCP {}", n.listen),
            None => format!("vhost-user-scsi {}", cfg.socket.display()),
        },
        a.min_interval_ms,
        a.max_interval_ms,
        a.max_kills
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let killer = {
        let (bin, cfg, stop) = (bin.clone(), cfg.clone(), Arc::clone(&stop));
        let logs = (logs.clone(), out.join("console.log"));
        let params = (
            a.min_interval_ms,
            a.max_interval_ms.max(a.min_interval_ms),
            a.max_kills,
        );
        thread::spawn(move || killer(bin, (cfg, kind), logs, victim, params, stop))
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

/// The victim backend for `transport`, with files under `data`: (binary,
/// config, what the killer needs, kernel command line additions).
fn victim_config(
    transport: KillTransport,
    backend_bin: Option<&Path>,
    data: &Path,
) -> Result<(PathBuf, BackendConfig, VictimKind, String), String> {
    let bin = backend::locate(backend_bin).map_err(|e| e.to_string())?;
    let lun = |spec: &str, file: &str| -> Result<LunArg, String> {
        let mut l: LunArg = spec.parse().map_err(|e| format!("{e}"))?;
        l.file = Some(data.join(file));
        Ok(l)
    };
    let socket = data.join("victim.sock");
    match transport {
        KillTransport::Nvme => {
            let port = free_port()?;
            let mut ns: NsArg = "kind=nvm,size=32M".parse().map_err(|e| format!("{e}"))?;
            ns.file = Some(data.join("victim-ns1.img"));
            let cfg = BackendConfig {
                socket,
                control: None,
                control_tcp: None,
                control_token_file: None,
                luns: vec![lun("kind=disk,size=1M", "victim-lun0.img")?],
                nvme: Some(NvmeListen {
                    pcie: None,
                    listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    nqn: VICTIM_NQN.to_owned(),
                    personality: None,
                    namespaces: vec![ns],
                    shadow_doorbells: true,
                }),
                trace: None,
            };
            let kind = VictimKind {
                ready: " controller ",
                mailbox: None,
            };
            let append = Contract {
                nvme: Some(NvmeTarget::tcp(
                    GUEST_HOST_ADDR.to_string(),
                    port,
                    VICTIM_NQN,
                )),
                ..Contract::default()
            }
            .to_string();
            Ok((bin, cfg, kind, append))
        }
        KillTransport::Scsi => {
            let storm = lun("kind=disk,size=32M,bs=4096", "victim-lun0.img")?;
            let mailbox = lun("kind=disk,size=64K,bs=4096", "victim-lun1.img")?;
            let mailbox_file = data.join("victim-lun1.img");
            let cfg = BackendConfig {
                socket,
                control: None,
                control_tcp: None,
                control_token_file: None,
                luns: vec![storm, mailbox],
                nvme: None,
                trace: None,
            };
            // The first request on the request queue (logged with the
            // inflight region's state).
            let kind = VictimKind {
                ready: "queue 2: inflight region",
                mailbox: Some(mailbox_file),
            };
            Ok((bin, cfg, kind, String::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mailbox_block_is_the_count_in_ascii_then_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("lun1.img");
        std::fs::write(&f, vec![0xaa; 65536]).unwrap();
        post_kills(&f, 57).unwrap();
        let b = std::fs::read(&f).unwrap();
        assert_eq!(&b[..3], b"57\n");
        assert!(b[3..4096].iter().all(|&x| x == 0));
        assert!(b[4096..].iter().all(|&x| x == 0xaa));
        assert!(post_kills(&dir.path().join("missing"), 1).is_err());
    }
}
