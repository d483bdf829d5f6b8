//! `suite` and `matrix`: boot, read the KTAP verdict, write junit.xml and
//! print the summary.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use zonecopy_contract::Suite;

use crate::{
    cli::{BootArgs, Limits, SuiteArgs, VmArgs},
    junit::{self, SuiteRecord},
    ktap::{verdict, Report, RunEnd, Verdict},
    needs::Needs,
    qemu::Serial,
    rig::{workspace_root, Rig, SetupError},
    timing,
    util::shell_join,
    vm::{self, VmOutcome, VmSpec},
};

/// One finished suite run.
#[derive(Debug)]
pub struct SuiteRun {
    pub record: SuiteRecord,
    pub out: PathBuf,
    /// Runner start to the first KTAP line.
    pub boot: Option<Duration>,
    pub interrupted: Option<i32>,
    /// Things worth knowing that do not change the verdict (e.g. the
    /// backend's control socket did not answer).
    pub notes: Vec<String>,
}

impl SuiteRun {
    pub fn pass(&self) -> bool {
        self.record.verdict.pass
    }

    /// `smoke on 6.1: 14 passed, 0 failed, 1 skipped, 0 xfail (boot 3.2 s, total 9.8 s)`
    pub fn summary(&self) -> String {
        let c = self.record.verdict.counts;
        let boot = self.boot.map_or_else(|| "-".to_owned(), timing::secs);
        let mut s = format!(
            "{} on {}: {} passed, {} failed, {} skipped, {} xfail (boot {boot}, total {})",
            self.record.suite,
            self.record.kernel,
            c.passed,
            c.failed,
            c.skipped,
            c.xfail,
            timing::secs(self.record.total)
        );
        if self.pass() {
            s.push_str("\n  PASS");
        } else {
            for r in &self.record.verdict.reasons {
                let _ = write!(s, "\n  FAIL: {r}");
            }
        }
        if let Some((_, ids)) = self.record.properties.iter().find(|(k, _)| k == "xfail") {
            let _ = write!(s, "\n  known bugs (zonecopy.xfail): {ids}");
        }
        for n in &self.notes {
            let _ = write!(s, "\n  note: {n}");
        }
        let _ = write!(s, "\n  logs: {}", self.out.display());
        s
    }
}

/// Default output directory: `<workspace>/out/<name>-<UTC time>`, created
/// here. Two runs of the same name started within the same second (the
/// parallel steps of scripts/test-all.sh: both kill tests, both `run`s)
/// must not share it: the directory is claimed with an exclusive create,
/// and a taken name gets `-2`, `-3`, ... appended.
pub fn default_out(name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = format!("{safe}-{}", timing::compact(SystemTime::now()));
    claim_dir(&workspace_root().join("out"), &stem)
}

/// `parent/stem`, or `parent/stem-N` for the first N from 2 whose directory
/// did not exist yet, created. Should `parent` be unwritable, the first
/// name is returned uncreated: the caller's own create reports the error.
fn claim_dir(parent: &Path, stem: &str) -> PathBuf {
    let first = parent.join(stem);
    if fs::create_dir_all(parent).is_err() {
        return first;
    }
    for n in 1..1000 {
        let dir = if n == 1 {
            first.clone()
        } else {
            parent.join(format!("{stem}-{n}"))
        };
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return dir,
        }
    }
    first
}

/// Options of one suite run.
#[derive(Debug, Clone)]
pub struct SuiteJob<'a> {
    pub vm: &'a VmArgs,
    pub kernel: &'a str,
    pub suite: &'a str,
    pub timeout: Duration,
    pub net: bool,
    pub out: &'a Path,
}

impl<'a> SuiteJob<'a> {
    pub fn new(
        vm: &'a VmArgs,
        kernel: &'a str,
        suite: &'a str,
        limits: &Limits,
        net: bool,
        out: &'a Path,
    ) -> Self {
        let mut timeout = limits.timeout;
        if Suite::named(Some(suite)) == Some(Suite::Bench) {
            let least = crate::bench::min_timeout(vm.fio_rounds, vm.fio_runtime);
            if timeout < least {
                eprintln!("bench: --timeout {timeout} s raised to {least} s for its fio plan");
                timeout = least;
            }
        }
        SuiteJob {
            vm,
            kernel,
            suite,
            timeout: Duration::from_secs(timeout),
            net,
            out,
        }
    }
}

impl BootArgs {
    /// The job of these options, logging to `out`.
    pub fn job<'a>(&'a self, out: &'a Path) -> SuiteJob<'a> {
        SuiteJob::new(
            &self.run.vm,
            &self.kernel,
            &self.suite,
            &self.run.limits,
            self.run.net,
            out,
        )
    }
}

pub fn failed_run(
    job: &SuiteJob<'_>,
    started: Instant,
    wall: SystemTime,
    reason: String,
) -> SuiteRun {
    let end = RunEnd {
        runner_error: Some(reason),
        ..RunEnd::default()
    };
    finish(
        job,
        started,
        wall,
        &Report::default(),
        &end,
        None,
        Vec::new(),
        Vec::new(),
    )
}

/// What one boot of a suite produced, before it is judged.
#[derive(Debug)]
pub struct Booted {
    pub vm: VmOutcome,
    /// Failure reasons seen from the runner's side (QEMU ended early, no
    /// KTAP, no power-off, the backend died).
    pub errors: Vec<String>,
    /// JUnit properties (kernel image, accelerator, command line, ...).
    pub properties: Vec<(String, String)>,
}

/// Boots `job.suite` once against `rig`'s backend: console, QEMU log and
/// `qemu-cmdline.txt` go to `job.out`. `stop_after_results`: kill QEMU once
/// that many KTAP result lines have arrived (see [`VmSpec`]). The part
/// `suite`, `matrix`, `reconnect` and `restart` share.
pub fn boot(
    rig: &mut Rig,
    job: &SuiteJob<'_>,
    stop_after_results: Option<usize>,
) -> Result<Booted, String> {
    fs::create_dir_all(job.out).map_err(|e| format!("cannot create {}: {e}", job.out.display()))?;
    let append = rig.cmdline(Some(job.suite), None, &job.vm.append);
    let qemu = rig.qemu(
        job.vm,
        append,
        crate::needs::wants_hostroot(Some(job.suite)),
        Serial::Stdio,
    );
    let mut argv = vec![qemu.qemu.display().to_string()];
    argv.extend(qemu.args().iter().map(|a| a.to_string_lossy().into_owned()));
    let _ = fs::write(job.out.join("qemu-cmdline.txt"), shell_join(&argv) + "\n");
    let mut properties: Vec<(String, String)> = vec![
        (
            "kernel_image".to_owned(),
            rig.kernel.image.display().to_string(),
        ),
        ("accel".to_owned(), rig.accel.name().to_owned()),
        ("kernel_cmdline".to_owned(), qemu.append.clone()),
    ];
    if let Some(p) = rig.backend_pid() {
        properties.push(("backend_pid".into(), p.to_string()));
    }
    if !rig.xfail.is_empty() {
        properties.push(("xfail".into(), rig.xfail.join(",")));
    }
    let spec = VmSpec {
        qemu,
        timeout: Some(job.timeout),
        echo: job.vm.verbose,
        console_log: job.out.join("console.log"),
        qemu_log: job.out.join("qemu.log"),
        poweroff_grace: Duration::from_secs(job.vm.poweroff_grace),
        stop_on: None,
        stop_after_results,
    };
    let outcome = vm::run(&spec);
    let backend_death = rig.backend_died();
    let o = outcome.map_err(|e| format!("QEMU: {e}"))?;
    let mut errors = Vec::new();
    if let Some(d) = o.no_poweroff {
        errors.push(format!(
            "the guest did not power off within {} after its last result",
            timing::secs(d)
        ));
    }
    if let Some(s) = backend_death {
        errors.push(format!("the backend died during the run ({s})"));
    }
    let finished = o
        .report
        .plan
        .is_some_and(|p| o.report.results.len() >= p as usize);
    if o.report.ktap_lines > 0
        && !finished
        && o.report.crash.is_none()
        && o.report.bail_out.is_none()
        && o.timed_out.is_none()
        && o.interrupted.is_none()
        && o.stopped_after_results.is_none()
    {
        let status = o
            .qemu_status
            .map_or_else(|| "?".to_owned(), |s| s.to_string());
        errors.push(format!("QEMU ended ({status}) before the guest finished"));
    }
    if o.report.ktap_lines == 0 && o.timed_out.is_none() && o.interrupted.is_none() {
        let qlog = vm::log_tail(&spec.qemu_log, 5);
        let status = o
            .qemu_status
            .map_or_else(|| "?".to_owned(), |s| s.to_string());
        errors.push(format!(
            "QEMU ended ({status}) without KTAP output{}",
            if qlog.is_empty() {
                String::new()
            } else {
                format!("; qemu.log: {qlog}")
            }
        ));
    }
    Ok(Booted {
        vm: o,
        errors,
        properties,
    })
}

/// Turns a boot into a verdict and writes `<out>/junit.xml`. `started`:
/// when this run began (the boot time is measured from it); `setup`: how
/// much of it went to setting up the rig.
pub fn judge(
    job: &SuiteJob<'_>,
    started: Instant,
    wall: SystemTime,
    setup: Duration,
    b: Booted,
) -> SuiteRun {
    let o = b.vm;
    let mut properties = b.properties;
    let end = RunEnd {
        timed_out: o.timed_out,
        interrupted: o.interrupted,
        runner_error: (!b.errors.is_empty()).then(|| b.errors.join("; ")),
    };
    let boot = o.first_ktap.map(|t| t.duration_since(started));
    // Where the boot time went: set-up (backend, initramfs, accel) vs guest.
    properties.push(("setup_s".into(), format!("{:.3}", setup.as_secs_f64())));
    if let Some(t) = o.first_ktap {
        properties.push((
            "qemu_to_first_ktap_s".into(),
            format!("{:.3}", t.duration_since(o.started).as_secs_f64()),
        ));
    }
    let mut run = finish(
        job, started, wall, &o.report, &end, boot, o.tail, properties,
    );
    run.interrupted = o.interrupted;
    run
}

/// Prepares a rig for `job`; a set-up failure becomes a failed run.
pub fn prepare(
    job: &SuiteJob<'_>,
    started: Instant,
    wall: SystemTime,
) -> Result<Rig, Box<SuiteRun>> {
    let needs = Needs {
        suite: Some(job.suite),
        net: job.net,
    };
    match Rig::prepare(job.vm, job.kernel, needs, job.out) {
        Ok(r) => Ok(r),
        Err(SetupError::Interrupted(sig)) => {
            let mut r = failed_run(job, started, wall, format!("interrupted by signal {sig}"));
            r.interrupted = Some(sig);
            Err(Box::new(r))
        }
        Err(SetupError::Failed(e)) => Err(Box::new(failed_run(
            job,
            started,
            wall,
            format!("set-up failed: {e}"),
        ))),
    }
}

/// Runs one suite on one kernel; never fails: set-up errors become the
/// run's failure reason. Writes `<out>/junit.xml`, and the backend's
/// control dumps (stats.json, zones-lun<N>.json) before it is stopped.
pub fn run_suite(job: &SuiteJob<'_>) -> SuiteRun {
    let started = Instant::now();
    let wall = SystemTime::now();
    let mut rig = match prepare(job, started, wall) {
        Ok(r) => r,
        Err(failed) => return *failed,
    };
    let setup = started.elapsed();
    let booted = boot(&mut rig, job, None);
    let notes = rig.save_control_dumps(job.out);
    let mut run = match booted {
        Ok(b) => judge(job, started, wall, setup, b),
        Err(e) => failed_run(job, started, wall, e),
    };
    let keep = !run.pass() || job.vm.keep_trace;
    let (problems, kept) = rig.shutdown_keeping_trace(keep.then_some(job.out));
    run.notes = notes;
    if let Some(trace) = kept {
        run.notes.push(format!(
            "trace of this run kept in {} (zonecopy-ci replay {})",
            trace.display(),
            job.out.display()
        ));
    }
    for p in problems {
        eprintln!("warning: {p}");
    }
    run
}

#[allow(clippy::too_many_arguments)]
fn finish(
    job: &SuiteJob<'_>,
    started: Instant,
    wall: SystemTime,
    report: &Report,
    end: &RunEnd,
    boot: Option<Duration>,
    tail: Vec<String>,
    properties: Vec<(String, String)>,
) -> SuiteRun {
    let v: Verdict = verdict(report, end);
    for w in &report.warnings {
        eprintln!("ktap warning: {w}");
    }
    let record = SuiteRecord {
        suite: job.suite.to_owned(),
        kernel: job.kernel.to_owned(),
        timestamp: timing::iso8601(wall),
        total: started.elapsed(),
        verdict: v,
        properties,
        console_excerpt: tail.join("\n"),
    };
    let _ = fs::create_dir_all(job.out);
    if let Err(e) = fs::write(
        job.out.join("junit.xml"),
        junit::render(std::slice::from_ref(&record)),
    ) {
        eprintln!("warning: cannot write junit.xml: {e}");
    }
    crate::kcidb::write(job.out, &record, job.vm.personality.as_deref(), boot);
    SuiteRun {
        record,
        out: job.out.to_path_buf(),
        boot,
        interrupted: None,
        notes: Vec::new(),
    }
}

/// Prints a line to stdout; a closed stdout (`| head`) is not an error.
pub fn say(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Exit code for an interrupted runner: 128 + signal.
pub fn signal_exit(sig: i32) -> i32 {
    128 + sig
}

/// `zonecopy-ci suite`
/// Build the kernel first when `kernel` (or `--kernel-tree`) names a Linux
/// source tree, so the build counts as neither boot nor suite time: returns
/// the image to boot and the VM options pointing at its modules. Other
/// kernels pass through unchanged.
pub fn prebuild_tree(kernel: &str, vm: &VmArgs) -> Result<(String, VmArgs), String> {
    let tree = vm.kernel_tree.clone().or_else(|| {
        let p = Path::new(kernel);
        crate::kernel::is_kernel_tree(p).then(|| p.to_path_buf())
    });
    let Some(tree) = tree else {
        return Ok((kernel.to_owned(), vm.clone()));
    };
    if let Some(spec) = crate::kernel::marker_kernel(&tree, vm.modules_dir.as_deref()) {
        // A tree that names a ready kernel: boot it by that name (so it
        // keeps its known bugs), no build.
        let spec = spec?;
        say(&format!("kernel of {}: {spec}", tree.display()));
        crate::kcidb::note_tree(&spec, &tree);
        let mut vm = vm.clone();
        vm.kernel_tree = None;
        return Ok((spec, vm));
    }
    let started = Instant::now();
    let cache = crate::kernel::cache_dir();
    let mut log = crate::kernel::tree_build_dir(&cache, &tree).into_os_string();
    log.push(".log");
    let log = std::path::PathBuf::from(log);
    let k = crate::kernel::build_tree(&tree, &crate::rig::workspace_root(), &cache, &log)
        .map_err(|e| e.to_string())?;
    say(&format!(
        "kernel built from {} in {} ({})",
        tree.display(),
        timing::secs(started.elapsed()),
        k.image.display()
    ));
    let mut vm = vm.clone();
    vm.kernel_tree = None;
    if vm.modules_dir.is_none() {
        vm.modules_dir = k.modules;
    }
    let image = k.image.display().to_string();
    crate::kcidb::note_tree(&image, &tree);
    Ok((image, vm))
}

pub fn cmd_suite(a: &SuiteArgs) -> i32 {
    let b = &a.boot;
    let (kernel, vm) = match prebuild_tree(&b.kernel, &b.run.vm) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("zonecopy-ci suite: {e}");
            return 1;
        }
    };
    let out = b
        .run
        .limits
        .out
        .clone()
        .unwrap_or_else(|| default_out(&format!("{}-{}", b.suite, kernel_label(&kernel))));
    let run = run_suite(&SuiteJob::new(
        &vm,
        &kernel,
        &b.suite,
        &b.run.limits,
        b.run.net,
        &out,
    ));
    say(&run.summary());
    match run.interrupted {
        Some(sig) => signal_exit(sig),
        None => i32::from(!run.pass()),
    }
}

pub fn kernel_label(spec: &str) -> String {
    Path::new(spec)
        .file_name()
        .map_or_else(|| spec.to_owned(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight runs of one name in the same second (threads at once): eight
    /// directories, each created, none shared.
    #[test]
    fn same_name_same_second_gets_its_own_directory() {
        let t = tempfile::tempdir().unwrap();
        let parent = t.path().join("out");
        let dirs: Vec<PathBuf> = (0..8)
            .map(|_| {
                let p = parent.clone();
                std::thread::spawn(move || claim_dir(&p, "kill-6.12-20261207-001500"))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let mut names: Vec<String> = dirs
            .iter()
            .map(|d| {
                assert!(d.is_dir(), "{} created", d.display());
                d.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        let mut want = vec!["kill-6.12-20261207-001500".to_owned()];
        want.extend((2..=8).map(|n| format!("kill-6.12-20261207-001500-{n}")));
        want.sort();
        assert_eq!(names, want);
    }
}
