//! Child processes and signals.
//!
//! Every child the runner starts is a [`Child`] guard: it runs in its own
//! process group (unless it must share the terminal), gets SIGKILL if the
//! runner dies (`PR_SET_PDEATHSIG`), and is killed — by process group, by
//! PID, never by name — and reaped when the guard is stopped or dropped.
//! SIGINT/SIGTERM/SIGHUP to the runner only set a flag; the main loops poll
//! it and unwind normally so every guard and temp dir is cleaned up. A
//! second signal exits at once (children still die via PDEATHSIG).

use std::{
    io,
    os::unix::process::CommandExt,
    process::{Command, ExitStatus},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, OnceLock,
    },
    thread,
    time::{Duration, Instant},
};

static SIGNALLED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the SIGINT/SIGTERM/SIGHUP handlers (once).
pub fn install_signal_handlers() -> io::Result<()> {
    let num = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // Runs first: on a second signal, exit at once with 128+sig.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&seen))?;
        signal_hook::flag::register(sig, Arc::clone(&seen))?;
        signal_hook::flag::register_usize(
            sig,
            Arc::clone(&num),
            usize::try_from(sig).unwrap_or(0),
        )?;
    }
    let _ = SIGNALLED.set(num);
    Ok(())
}

/// The signal that interrupted the runner, if any.
pub fn interrupted() -> Option<i32> {
    let n = SIGNALLED.get()?.load(Ordering::SeqCst);
    (n != 0).then(|| i32::try_from(n).unwrap_or(libc::SIGTERM))
}

/// Sends `sig` to a process group (`pgid`) or a single process.
fn send(pid: libc::pid_t, group: bool, sig: libc::c_int) {
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is a child
    // of ours (or its process group) that has not been reaped yet (callers
    // check), so the PID cannot have been reused by an unrelated process.
    unsafe {
        libc::kill(target, sig);
    }
}

/// A running child process, cleaned up on drop.
#[derive(Debug)]
pub struct Child {
    inner: std::process::Child,
    pid: libc::pid_t,
    own_group: bool,
    status: Option<ExitStatus>,
}

/// Spawns `cmd`. `own_group`: put it in a new process group, so that
/// killing the group also kills whatever it started (and terminal SIGINT
/// does not reach it). Interactive QEMU must stay in the terminal's
/// foreground group, so it passes `false`.
pub fn spawn(cmd: &mut Command, own_group: bool) -> io::Result<Child> {
    if own_group {
        cmd.process_group(0);
    }
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls the async-signal-safe syscalls prctl(2) and getppid(2).
    unsafe {
        cmd.pre_exec(move || {
            // Die with the runner, even if it is SIGKILLed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The runner may have died before prctl took effect.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    let inner = cmd.spawn()?;
    let pid = libc::pid_t::try_from(inner.id()).map_err(io::Error::other)?;
    Ok(Child {
        inner,
        pid,
        own_group,
        status: None,
    })
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    pub fn inner_mut(&mut self) -> &mut std::process::Child {
        &mut self.inner
    }

    /// Reaps the child if it exited (then kills stragglers in its group).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = self.inner.try_wait()?;
        if let Some(s) = s {
            self.reaped(s);
        }
        Ok(s)
    }

    fn reaped(&mut self, s: ExitStatus) {
        self.status = Some(s);
        if self.own_group {
            // Anything the child left behind in its group. The group ID
            // stays reserved while members remain, so this cannot hit a
            // stranger; with no members left it is a harmless ESRCH.
            send(self.pid, true, libc::SIGKILL);
        }
    }

    /// Waits up to `timeout` for the child to exit; `None` if it did not.
    /// Returns early (with `None`) when the runner is interrupted and
    /// `interruptible`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        interruptible: bool,
    ) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline || (interruptible && interrupted().is_some()) {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the child's process group (or the child alone).
    pub fn signal(&mut self, sig: libc::c_int) {
        if self.status.is_none() {
            send(self.pid, self.own_group, sig);
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; always reaps.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(s)) = self.try_wait() {
            return Some(s);
        }
        self.signal(libc::SIGTERM);
        if let Ok(Some(s)) = self.wait_for(grace, false) {
            return Some(s);
        }
        self.kill()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(s)) = self.try_wait() {
            return Some(s);
        }
        self.signal(libc::SIGKILL);
        match self.inner.wait() {
            Ok(s) => {
                self.reaped(s);
                Some(s)
            }
            Err(_) => None,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}
