//! One QEMU boot: start it, stream its console line by line (to the log,
//! optionally to stdout, and into the KTAP parser), apply the timeout, stop
//! it. The outcome is what the guest printed, never QEMU's exit status.

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::{
    ktap::{LineKind, Parser, Report},
    proc,
    qemu::{QemuConfig, Serial},
};

/// Marker the guest prints at the end of run mode.
pub const EXIT_STATUS_PREFIX: &str = "zonecopy-exit-status:";

/// How to run one boot.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub qemu: QemuConfig,
    /// Overall limit, counted from QEMU's start; `None` = no limit.
    pub timeout: Option<Duration>,
    /// Copy the console to stdout as it arrives.
    pub echo: bool,
    pub console_log: PathBuf,
    /// QEMU's own stderr.
    pub qemu_log: PathBuf,
    /// How long the guest may take to power off after its last top-level
    /// KTAP result (or its exit-status line) before it is killed.
    pub poweroff_grace: Duration,
    /// Stop as soon as this text appears on the console (probe boots).
    pub stop_on: Option<String>,
    /// Kill QEMU (SIGKILL to its process group: no orderly vhost-user
    /// shutdown) as soon as this many KTAP result lines, at any depth, have
    /// arrived; `reconnect` uses it to cut a suite off mid-run.
    pub stop_after_results: Option<usize>,
}

/// What happened during the boot.
#[derive(Debug)]
pub struct VmOutcome {
    pub report: Report,
    /// When QEMU was started.
    pub started: Instant,
    /// When the first KTAP line arrived.
    pub first_ktap: Option<Instant>,
    pub timed_out: Option<Duration>,
    /// The signal that interrupted the runner.
    pub interrupted: Option<i32>,
    /// The guest did not power off after finishing.
    pub no_poweroff: Option<Duration>,
    /// `zonecopy-exit-status: N` from run mode.
    pub exit_status: Option<i32>,
    /// `stop_on` text was seen.
    pub stopped_on_marker: bool,
    /// QEMU was killed after this many result lines (`stop_after_results`).
    pub stopped_after_results: Option<usize>,
    /// QEMU's exit status: diagnostics only.
    pub qemu_status: Option<ExitStatus>,
    /// Last console lines.
    pub tail: Vec<String>,
}

const TAIL_LINES: usize = 400;

enum Event {
    Line(String),
    Eof,
}

/// Reads QEMU's stdout: raw bytes to the log (and stdout if `echo`, so
/// prompts without a newline show up at once), whole lines to `tx`.
fn reader(mut src: impl Read, mut log: File, echo: bool, tx: &mpsc::Sender<Event>) {
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    let stdout = io::stdout();
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        let _ = log.write_all(chunk);
        if echo {
            let mut out = stdout.lock();
            let _ = out.write_all(chunk);
            let _ = out.flush();
        }
        for &b in chunk {
            if b == b'\n' {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_owned();
                line.clear();
                if tx.send(Event::Line(text)).is_err() {
                    return;
                }
            } else {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\r')
            .to_owned();
        let _ = tx.send(Event::Line(text));
    }
    let _ = log.flush();
    let _ = tx.send(Event::Eof);
}

/// Parses `zonecopy-exit-status: N` anywhere in a line (console noise may
/// precede it).
pub fn parse_exit_status(line: &str) -> Option<i32> {
    let at = line.find(EXIT_STATUS_PREFIX)?;
    let rest = line[at + EXIT_STATUS_PREFIX.len()..].trim();
    let digits: String = rest
        .chars()
        .enumerate()
        .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && c == '-'))
        .map(|(_, c)| c)
        .collect();
    digits.parse().ok()
}

/// Boots QEMU per `spec` and follows it to the end.
pub fn run(spec: &VmSpec) -> io::Result<VmOutcome> {
    let log = File::create(&spec.console_log)?;
    let qemu_log = File::create(&spec.qemu_log)?;
    let interactive = spec.qemu.serial == Serial::Interactive;
    let mut cmd = Command::new(&spec.qemu.qemu);
    cmd.args(spec.qemu.args())
        .stdin(if interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::from(qemu_log));
    // Interactive QEMU reads the terminal, so it must stay in the
    // terminal's foreground process group.
    let mut child = proc::spawn(&mut cmd, !interactive).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot start {}: {e}", spec.qemu.qemu.display()),
        )
    })?;
    let started = Instant::now();
    let stdout = child
        .inner_mut()
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("QEMU stdout not piped"))?;
    let (tx, rx) = mpsc::channel();
    let echo = spec.echo;
    let reader_thread = thread::spawn(move || reader(stdout, log, echo, &tx));

    let mut parser = Parser::new();
    let mut out = VmOutcome {
        report: Report::default(),
        started,
        first_ktap: None,
        timed_out: None,
        interrupted: None,
        no_poweroff: None,
        exit_status: None,
        stopped_on_marker: false,
        stopped_after_results: None,
        qemu_status: None,
        tail: Vec::new(),
    };
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut done_at: Option<Instant> = None;
    let deadline = spec.timeout.map(|t| started + t);
    let tick = Duration::from_millis(100);
    let mut eof = false;
    loop {
        if let Some(sig) = proc::interrupted() {
            out.interrupted = Some(sig);
            break;
        }
        let now = Instant::now();
        if let (Some(d), Some(t)) = (deadline, spec.timeout) {
            if now >= d {
                out.timed_out = Some(t);
                break;
            }
        }
        if let Some(d) = done_at {
            if now.duration_since(d) >= spec.poweroff_grace {
                out.no_poweroff = Some(spec.poweroff_grace);
                break;
            }
        }
        let wait = deadline.map_or(tick, |d| tick.min(d.saturating_duration_since(now)));
        match rx.recv_timeout(wait) {
            Ok(Event::Line(line)) => {
                if parser.feed_at(&line, started.elapsed()) == LineKind::Ktap
                    && out.first_ktap.is_none()
                {
                    out.first_ktap = Some(Instant::now());
                }
                if out.exit_status.is_none() {
                    out.exit_status = parse_exit_status(&line);
                }
                if spec.stop_on.as_deref().is_some_and(|m| line.contains(m)) {
                    out.stopped_on_marker = true;
                    break;
                }
                if spec
                    .stop_after_results
                    .is_some_and(|n| parser.result_lines() >= n)
                {
                    out.stopped_after_results = Some(parser.result_lines());
                    push_tail(&mut tail, line);
                    break;
                }
                if done_at.is_none() && (parser.complete() || out.exit_status.is_some()) {
                    done_at = Some(Instant::now());
                }
                push_tail(&mut tail, line);
            }
            Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                eof = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    out.qemu_status = if eof {
        // The console closed: QEMU is exiting by itself; give it a moment.
        match child.wait_for(Duration::from_secs(5), false)? {
            Some(s) => Some(s),
            None => child.terminate(Duration::from_secs(2)),
        }
    } else if out.stopped_after_results.is_some() {
        // An abrupt end, like a crash: the backend sees the connection drop.
        child.kill()
    } else {
        // SIGTERM lets QEMU restore the terminal; SIGKILL if it hangs.
        child.terminate(Duration::from_secs(2))
    };
    drop(child);
    // QEMU (and its group) is gone, so the pipe is closed and the reader ends.
    let _ = reader_thread.join();
    // Lines that arrived before the reader ended still count (not after a
    // deliberate cut: the run is meant to end at that line).
    while let Ok(Event::Line(line)) = rx.try_recv() {
        if out.stopped_after_results.is_some() {
            break;
        }
        if parser.feed_at(&line, started.elapsed()) == LineKind::Ktap && out.first_ktap.is_none() {
            out.first_ktap = Some(Instant::now());
        }
        if out.exit_status.is_none() {
            out.exit_status = parse_exit_status(&line);
        }
        push_tail(&mut tail, line);
    }
    out.report = parser.finish();
    out.tail = tail.into_iter().collect();
    Ok(out)
}

fn push_tail(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// Last non-empty lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_lines() {
        assert_eq!(parse_exit_status("zonecopy-exit-status: 0"), Some(0));
        assert_eq!(
            parse_exit_status("[  1.0] x zonecopy-exit-status: 42\r"),
            Some(42)
        );
        assert_eq!(parse_exit_status("zonecopy-exit-status: -1"), Some(-1));
        assert_eq!(parse_exit_status("zonecopy-exit-status:"), None);
        assert_eq!(parse_exit_status("exit status 3"), None);
    }

    #[test]
    fn reader_splits_lines_and_logs_raw_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("console.log");
        let log = File::create(&log_path).unwrap();
        let (tx, rx) = mpsc::channel();
        let input: &[u8] = b"KTAP version 1\r\n1..1\nok 1 a\npartial";
        reader(input, log, false, &tx);
        let lines: Vec<String> = rx
            .try_iter()
            .filter_map(|e| match e {
                Event::Line(l) => Some(l),
                Event::Eof => None,
            })
            .collect();
        assert_eq!(lines, vec!["KTAP version 1", "1..1", "ok 1 a", "partial"]);
        assert_eq!(std::fs::read(&log_path).unwrap(), input);
    }

    /// A fake "QEMU": a shell script that ignores its arguments.
    fn fake(dir: &Path, body: &str, timeout: Duration, grace: Duration) -> VmSpec {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.join("fake-qemu");
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        VmSpec {
            qemu: QemuConfig {
                memory_mib: 64,
                ..QemuConfig::bare(script, "/k".into(), "/i".into(), String::new())
            },
            timeout: Some(timeout),
            echo: false,
            console_log: dir.join("console.log"),
            qemu_log: dir.join("qemu.log"),
            poweroff_grace: grace,
            stop_on: None,
            stop_after_results: None,
        }
    }

    /// Running (not a zombie waiting for init to reap it)?
    fn alive(pid_file: &Path) -> bool {
        let pid = std::fs::read_to_string(pid_file).unwrap();
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().chars().next());
        !matches!(state, None | Some(Some('Z' | 'X')))
    }

    #[test]
    fn streams_a_complete_run() {
        let d = tempfile::tempdir().unwrap();
        let spec = fake(
            d.path(),
            "echo noise; printf 'KTAP version 1\\r\\n1..1\\n'; echo 'ok 1 a'",
            Duration::from_secs(20),
            Duration::from_secs(20),
        );
        let o = run(&spec).unwrap();
        assert!(o.first_ktap.is_some());
        assert_eq!(o.timed_out, None);
        assert_eq!(o.no_poweroff, None);
        assert_eq!(o.report.plan, Some(1));
        assert_eq!(o.report.results.len(), 1);
        assert_eq!(o.tail.len(), 4);
        let log = std::fs::read_to_string(&spec.console_log).unwrap();
        assert!(log.starts_with("noise\nKTAP version 1\r\n"));
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let d = tempfile::tempdir().unwrap();
        let pid_file = d.path().join("bg.pid");
        let spec = fake(
            d.path(),
            &format!(
                "echo 'KTAP version 1'; sleep 100 & echo $! > {}; wait",
                pid_file.display()
            ),
            Duration::from_millis(800),
            Duration::from_secs(20),
        );
        let started = Instant::now();
        let o = run(&spec).unwrap();
        assert_eq!(o.timed_out, Some(Duration::from_millis(800)));
        assert!(started.elapsed() < Duration::from_secs(10));
        // SIGKILL is delivered asynchronously: give the orphan a moment to
        // die, but not long enough for a surviving `sleep 100` to pass.
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(&pid_file) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(&pid_file), "background child survived");
    }

    #[test]
    fn no_poweroff_after_the_last_result() {
        let d = tempfile::tempdir().unwrap();
        let spec = fake(
            d.path(),
            "echo 'KTAP version 1'; echo 1..1; echo 'ok 1 a'; exec sleep 100",
            Duration::from_secs(20),
            Duration::from_millis(300),
        );
        let o = run(&spec).unwrap();
        assert_eq!(o.no_poweroff, Some(Duration::from_millis(300)));
        assert_eq!(o.timed_out, None);
    }

    #[test]
    fn stops_after_n_result_lines() {
        let d = tempfile::tempdir().unwrap();
        let mut spec = fake(
            d.path(),
            "echo 'KTAP version 1'; echo 1..3; echo 'ok 1 a'; echo '    ok 1 b'; \
             echo 'ok 2 c'; sleep 0.5; echo 'ok 3 d'; exec sleep 100",
            Duration::from_secs(20),
            Duration::from_secs(20),
        );
        spec.stop_after_results = Some(2);
        let started = Instant::now();
        let o = run(&spec).unwrap();
        assert_eq!(o.stopped_after_results, Some(2));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(o.report.plan, Some(3));
        // `a`, and the block `b` was in, unfinished.
        assert_eq!(o.report.results.len(), 2);
        assert!(o.report.results[1].unfinished);
        assert_eq!(o.timed_out, None);
        assert_eq!(o.no_poweroff, None);
    }

    #[test]
    fn run_mode_exit_status_line() {
        let d = tempfile::tempdir().unwrap();
        let spec = fake(
            d.path(),
            "echo hello; echo 'zonecopy-exit-status: 3'",
            Duration::from_secs(20),
            Duration::from_secs(20),
        );
        assert_eq!(run(&spec).unwrap().exit_status, Some(3));
    }
}
