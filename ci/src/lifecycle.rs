//! Backend lifecycle tests built from the `suite` pieces (prepare a rig,
//! boot, judge): `reconnect` (QEMU killed mid-suite, the same backend
//! serves a second full run) and `restart` (zone state and data survive a
//! backend restart on the same backing files).

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant, SystemTime},
};

use crate::{
    backend,
    cli::{BootArgs, ReconnectArgs, RestartArgs, VmArgs},
    control::{self, Zone},
    ktap::Report,
    rig::Rig,
    suite::{
        boot, default_out, failed_run, judge, kernel_label, prepare, say, signal_exit, SuiteRun,
    },
    timing,
};

/// How long the backend gets to notice the killed connection before we
/// check that it is still alive.
const SETTLE: Duration = Duration::from_millis(500);

/// The closing line: `NAME: P passed, F failed (...)`.
fn closing(name: &str, passed: usize, failed: usize, started: Instant, out: &Path) -> String {
    format!(
        "{name}: {passed} passed, {failed} failed (total {}; logs in {})",
        timing::secs(started.elapsed()),
        out.display()
    )
}

fn refuse_external_backend(name: &str, vm: &VmArgs) -> Option<i32> {
    vm.backend_socket.as_ref().map(|_| {
        eprintln!("zonecopy-ci {name}: starts and checks its own backend; --backend-socket is not supported");
        2
    })
}

/// Why the cut-off first boot does not show a mid-suite interruption
/// (empty: it does). `stopped_after`: result lines when QEMU was killed.
pub fn check_cut(report: &Report, stopped_after: Option<usize>, errors: &[String]) -> Vec<String> {
    let mut why: Vec<String> = errors.to_vec();
    if let Some(c) = &report.crash {
        why.push(format!("kernel crash: {c}"));
    }
    if stopped_after.is_none() {
        why.push("QEMU was not killed: the guest never printed enough result lines".into());
    }
    match report.plan {
        None => why.push("no top-level KTAP plan before the cut".into()),
        Some(p) if report.results.iter().filter(|r| !r.unfinished).count() >= p as usize => {
            why.push(format!(
                "all {p} top-level results arrived: the suite was not interrupted"
            ));
        }
        Some(_) => {}
    }
    why
}

/// The start-up `reconnect` and `restart` share: our own backend (not
/// `--backend-socket`), the output directory `<name>-<suite>-<kernel>`
/// unless `--out` names one, and the rig with the backend running. `Err`:
/// the exit code, with the reason said.
fn start_rig(name: &str, b: &BootArgs, started: Instant) -> Result<(PathBuf, Rig), i32> {
    if let Some(code) = refuse_external_backend(name, &b.run.vm) {
        return Err(code);
    }
    let out =
        b.run.limits.out.clone().unwrap_or_else(|| {
            default_out(&format!("{name}-{}-{}", b.suite, kernel_label(&b.kernel)))
        });
    match prepare(&b.job(&out), started, SystemTime::now()) {
        Ok(rig) => Ok((out, rig)),
        Err(failed) => {
            say(&failed.summary());
            say(&closing(name, 0, 1, started, &out));
            Err(failed.interrupted.map_or(1, signal_exit))
        }
    }
}

/// `zonecopy-ci reconnect`
pub fn cmd_reconnect(a: &ReconnectArgs) -> i32 {
    let started = Instant::now();
    let b = &a.boot;
    let (out, mut rig) = match start_rig("reconnect", b, started) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let job = |dir| b.job(dir);
    let (cut_dir, full_dir) = (out.join("1-cut"), out.join("2-full"));
    let pid = rig.backend_pid().unwrap_or(0);
    say(&format!(
        "reconnect: {} on {}, one backend (pid {pid}) for both boots, QEMU killed after {} result lines",
        b.suite, b.kernel, a.kill_after_results
    ));

    // Phase 1: cut off mid-suite.
    let p1 = Instant::now();
    let n = usize::try_from(a.kill_after_results).unwrap_or(usize::MAX);
    let cut_job = job(&cut_dir);
    let cut = boot(&mut rig, &cut_job, Some(n));
    thread::sleep(SETTLE);
    let mut problems = match &cut {
        Ok(b) => check_cut(&b.vm.report, b.vm.stopped_after_results, &b.errors),
        Err(e) => vec![e.clone()],
    };
    let interrupted = cut.as_ref().ok().and_then(|b| b.vm.interrupted);
    if let Some(sig) = interrupted {
        problems.insert(0, format!("interrupted by signal {sig}"));
    }
    if let Some(s) = rig.backend_died() {
        problems.push(format!("the backend died after QEMU was killed ({s})"));
    }
    let answers = rig
        .control
        .as_deref()
        .map(|c| control::query(c, control::STATS_REQUEST));
    if let Some(Err(e)) = &answers {
        problems.push(format!(
            "the backend does not answer on its control socket: {e}"
        ));
    }
    let notes = rig.save_control_dumps(&cut_dir);
    say(&cut_summary(&cut, &problems, p1, &cut_dir));
    for n in &notes {
        say(&format!("  note: {n}"));
    }

    // Phase 2: the whole suite against the same backend.
    let mut full: Option<SuiteRun> = None;
    if interrupted.is_none() && rig.backend_died().is_none() {
        let p2 = Instant::now();
        let full_job = job(&full_dir);
        let booted = boot(&mut rig, &full_job, None);
        let notes = rig.save_control_dumps(&full_dir);
        let mut run = match booted {
            Ok(b) => judge(&full_job, p2, SystemTime::now(), Duration::ZERO, b),
            Err(e) => failed_run(&full_job, p2, SystemTime::now(), e),
        };
        run.notes = notes;
        say(&format!(
            "phase 2, full run on the same backend: {}",
            run.summary()
        ));
        full = Some(run);
    } else {
        say("phase 2, full run on the same backend: not run (the backend is gone or the runner was interrupted)");
    }
    for p in rig.shutdown() {
        eprintln!("warning: {p}");
    }
    let interrupted = interrupted.or_else(|| full.as_ref().and_then(|r| r.interrupted));
    let pass = problems.is_empty() && full.as_ref().is_some_and(SuiteRun::pass);
    say(&closing(
        "reconnect",
        usize::from(pass),
        usize::from(!pass),
        started,
        &out,
    ));
    match interrupted {
        Some(sig) => signal_exit(sig),
        None => i32::from(!pass),
    }
}

fn cut_summary(
    cut: &Result<crate::suite::Booted, String>,
    problems: &[String],
    started: Instant,
    dir: &Path,
) -> String {
    let what = match cut {
        Ok(b) => {
            let top = b.vm.report.results.iter().filter(|r| !r.unfinished).count();
            let plan =
                b.vm.report
                    .plan
                    .map_or_else(|| "?".to_owned(), |p| p.to_string());
            let cut = b.vm.stopped_after_results.map_or_else(
                || "QEMU was not killed".to_owned(),
                |n| format!("QEMU killed after {n} result lines"),
            );
            let boot = b.vm.first_ktap.map_or_else(
                || "-".to_owned(),
                |t| timing::secs(t.duration_since(started)),
            );
            format!(
                "{cut}, {top} of {plan} top-level results (boot {boot}, total {})",
                timing::secs(started.elapsed())
            )
        }
        Err(_) => "did not boot".to_owned(),
    };
    let mut s = format!("phase 1, cut off mid-suite: {what}");
    if problems.is_empty() {
        s.push_str("\n  PASS (interrupted mid-suite; the backend is alive and answering)");
    }
    for p in problems {
        s.push_str(&format!("\n  FAIL: {p}"));
    }
    s.push_str(&format!("\n  logs: {}", dir.display()));
    s
}

/// One check of `restart`: a name and what went wrong (empty = passed),
/// plus detail lines.
struct Check {
    name: String,
    problems: Vec<String>,
}

/// One zoned LUN's zones and the checksums of their written parts.
struct LunSnapshot {
    lun: usize,
    zones: Vec<Zone>,
    /// `(lba, blocks)`
    ranges: Vec<(u64, u64)>,
    /// CRC32C of each range.
    sums: Vec<u64>,
}

/// Every zoned LUN.
struct Snapshot {
    luns: Vec<LunSnapshot>,
}

/// Reads the zone dumps saved in `dir` and checksums the written ranges.
fn snapshot(rig: &Rig, dir: &Path, ranges_from: Option<&Snapshot>) -> Result<Snapshot, String> {
    let socket = rig.control.as_deref().ok_or("no control socket")?;
    let mut luns = Vec::new();
    for (i, l) in rig.luns.iter().enumerate() {
        if control::zones_request(i, l).is_none() {
            continue;
        }
        let file = dir.join(control::zones_file(i));
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("no zone dump {}: {e}", file.display()))?;
        let zones = control::parse_zones(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        // After the restart, checksum the ranges written before it.
        let ranges = match ranges_from.and_then(|s| s.luns.iter().find(|x| x.lun == i)) {
            Some(prev) => prev.ranges.clone(),
            None => control::written_ranges(&zones),
        };
        let sums = control::checksums(socket, i, &ranges)?;
        luns.push(LunSnapshot {
            lun: i,
            zones,
            ranges,
            sums,
        });
    }
    Ok(Snapshot { luns })
}

/// Compares the snapshots of one LUN before and after the restart.
fn compare_lun(before: &LunSnapshot, after: Option<&LunSnapshot>) -> Check {
    let LunSnapshot {
        lun: i,
        zones,
        ranges,
        sums,
    } = before;
    let mut c = Check {
        name: format!(
            "lun{i}: {} zones ({}), {} written ranges",
            zones.len(),
            control::condition_counts(zones),
            ranges.len()
        ),
        problems: Vec::new(),
    };
    let Some(after) = after else {
        c.problems.push("missing after the restart".into());
        return c;
    };
    c.problems = control::compare(zones, &after.zones);
    for ((lba, blocks), (a, b)) in ranges.iter().zip(sums.iter().zip(&after.sums)) {
        if a != b {
            c.problems.push(format!(
                "data at LBA {lba} (+{blocks} blocks): crc32c {a:#010x} before, {b:#010x} after"
            ));
        }
    }
    c
}

/// `zonecopy-ci restart`
pub fn cmd_restart(a: &RestartArgs) -> i32 {
    let started = Instant::now();
    let b = &a.boot;
    let (out, mut rig) = match start_rig("restart", b, started) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let job = |dir| b.job(dir);
    let (boot_dir, after_dir) = (out.join("1-boot"), out.join("2-restarted"));
    let files: Vec<String> = rig
        .luns
        .iter()
        .filter_map(|l| l.file.as_ref().map(|f| f.display().to_string()))
        .collect();
    say(&format!(
        "restart: {} on {}, then the backend restarted on {}",
        b.suite,
        b.kernel,
        files.join(", ")
    ));
    let mut checks = Vec::new();

    // Boot 1, then what the first backend reports right before it stops.
    let boot_job = job(&boot_dir);
    let p1 = Instant::now();
    let booted = boot(&mut rig, &boot_job, None);
    let notes = rig.save_control_dumps(&boot_dir);
    let mut run = match booted {
        Ok(b) => judge(&boot_job, p1, SystemTime::now(), Duration::ZERO, b),
        Err(e) => failed_run(&boot_job, p1, SystemTime::now(), e),
    };
    run.notes = notes;
    say(&run.summary());
    checks.push(Check {
        name: format!("{} on {} passed", b.suite, b.kernel),
        problems: run.record.verdict.reasons.clone(),
    });
    let before = if run.interrupted.is_none() {
        snapshot(&rig, &boot_dir, None)
    } else {
        Err("interrupted".into())
    };
    if let Err(e) = &before {
        checks.push(Check {
            name: "zone state before the restart".into(),
            problems: vec![e.clone()],
        });
    }

    // Restart and compare.
    if let (Ok(before), None) = (&before, run.interrupted) {
        let old_pid = rig.backend_pid().unwrap_or(0);
        let restarted = rig.restart_backend(&out.join("backend-2.log"));
        let mut c = Check {
            name: format!("backend {old_pid} stopped by SIGTERM, a new one started"),
            problems: Vec::new(),
        };
        match &restarted {
            Ok(status) if backend::clean_stop(status) => {
                c.name = format!(
                    "backend {old_pid} stopped ({status}), backend {} started on the same files",
                    rig.backend_pid().unwrap_or(0)
                );
            }
            Ok(status) => c
                .problems
                .push(format!("the first backend ended with {status}")),
            Err(e) => c.problems.push(e.clone()),
        }
        checks.push(c);
        if restarted.is_ok() {
            let _ = std::fs::create_dir_all(&after_dir);
            for n in rig.save_control_dumps(&after_dir) {
                say(&format!("  note: {n}"));
            }
            match snapshot(&rig, &after_dir, Some(before)) {
                Ok(after) => {
                    for b in &before.luns {
                        checks.push(compare_lun(b, after.luns.iter().find(|x| x.lun == b.lun)));
                    }
                }
                Err(e) => checks.push(Check {
                    name: "zone state after the restart".into(),
                    problems: vec![e],
                }),
            }
        }
    }
    for p in rig.shutdown() {
        eprintln!("warning: {p}");
    }
    for c in &checks {
        let mark = if c.problems.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        say(&format!("  {mark} {}", c.name));
        for p in c.problems.iter().take(10) {
            say(&format!("       {p}"));
        }
        if c.problems.len() > 10 {
            say(&format!("       ... {} more", c.problems.len() - 10));
        }
    }
    let failed = checks.iter().filter(|c| !c.problems.is_empty()).count();
    say(&closing(
        "restart",
        checks.len() - failed,
        failed,
        started,
        &out,
    ));
    match run.interrupted {
        Some(sig) => signal_exit(sig),
        None => i32::from(failed > 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ktap::Parser;

    fn report(lines: &[&str]) -> Report {
        let mut p = Parser::new();
        for l in lines {
            p.feed(l);
        }
        p.finish()
    }

    #[test]
    fn a_cut_mid_suite_passes() {
        let r = report(&["KTAP version 1", "1..2", "ok 1 a", "    ok 1 b"]);
        assert!(check_cut(&r, Some(2), &[]).is_empty());
    }

    #[test]
    fn a_complete_or_uncut_run_is_not_an_interruption() {
        let done = report(&["KTAP version 1", "1..2", "ok 1 a", "ok 2 b"]);
        let why = check_cut(&done, Some(2), &[]);
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("not interrupted"), "{why:?}");

        let short = report(&["KTAP version 1", "1..9", "ok 1 a"]);
        let why = check_cut(&short, None, &["QEMU ended".into()]);
        assert_eq!(why.len(), 2, "{why:?}");

        let none = report(&["ok 1 a", "ok 2 b"]);
        assert!(check_cut(&none, Some(2), &[])[0].contains("no top-level"));

        let crash = report(&["KTAP version 1", "1..3", "ok 1 a", "Kernel panic - x"]);
        assert!(check_cut(&crash, Some(1), &[])[0].contains("crash"));
    }
}
