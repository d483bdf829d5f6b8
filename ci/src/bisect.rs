//! `zonecopy-ci bisect`: `git bisect run` over a `--kernel-tree` with the
//! runner as the test. Each step (`bisect-step`, run by git in the tree)
//! builds the checked-out kernel (or boots the one its
//! `.zonecopy-kernel` names), runs the suite and answers git with its exit
//! status: 0 good, 1 bad, 125 skip (the kernel did not build, the rig
//! could not be set up, the chosen test did not run), 128+signal to abort.
//! Each step's run is kept in `<out>/<commit>/`, one line per step in
//! `<out>/steps.log`; at the end the first bad commit is printed with the
//! evidence of its run, and the tree is reset (`git bisect reset`).

use std::{
    ffi::OsString,
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use crate::{
    cli::{BisectArgs, XfailAs},
    ktap::{Outcome, Verdict},
    report,
    suite::{default_out, prebuild_tree, run_suite, say, signal_exit, SuiteJob},
    timing,
};

/// `git bisect run`'s answers.
pub const GOOD: i32 = 0;
pub const BAD: i32 = 1;
pub const SKIP: i32 = 125;
/// The step's working directory (the user's, not the tree's).
const CWD_ENV: &str = "ZONECOPY_BISECT_CWD";

/// The answer for one judged run. `test`: judge by that case (and the
/// cases below it) alone.
pub fn step_exit(v: &Verdict, test: Option<&str>, xfail: XfailAs) -> i32 {
    let harness = v
        .run_reasons
        .iter()
        .any(|r| r.starts_with("set-up failed") || r.starts_with("QEMU: "));
    if harness {
        return SKIP;
    }
    let broke = v
        .run_reasons
        .iter()
        .any(|r| r.starts_with("kernel crash") || r.starts_with("timed out"));
    let Some(t) = test else {
        let bad = !v.pass || (xfail == XfailAs::Bad && v.counts.xfail > 0);
        return if bad { BAD } else { GOOD };
    };
    let mine: Vec<&Outcome> = v
        .cases
        .iter()
        .filter(|c| c.name == t || c.name.starts_with(&format!("{t}.")))
        .map(|c| &c.outcome)
        .collect();
    if mine.iter().any(|o| matches!(o, Outcome::Fail(_))) {
        return BAD;
    }
    if mine.iter().any(|o| matches!(o, Outcome::Xfail(_))) {
        return if xfail == XfailAs::Bad { BAD } else { GOOD };
    }
    if mine.iter().any(|o| matches!(o, Outcome::Pass)) {
        // A crash after the test passed still counts against the kernel.
        return if broke { BAD } else { GOOD };
    }
    // The test did not run (or only skipped): bad if the kernel broke
    // before it, else this commit cannot be judged.
    if broke {
        BAD
    } else {
        SKIP
    }
}

fn git(tree: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

/// `<sha> is the first bad commit` in `git bisect run`'s output.
pub fn first_bad(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let (sha, rest) = l.trim().split_once(' ')?;
        (rest.starts_with("is the first bad commit")
            && sha.len() == 40
            && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| sha.to_owned())
    })
}

/// The step's argv: ours with `bisect` turned into `bisect-step` and
/// `--out` made absolute.
pub fn step_argv(args: &[OsString], out: &Path) -> Vec<OsString> {
    let mut v = Vec::new();
    let mut it = args.iter().skip(1);
    let mut sub = false;
    while let Some(a) = it.next() {
        if !sub && a == "bisect" {
            v.push(OsString::from("bisect-step"));
            sub = true;
        } else if a == "--out" {
            it.next();
        } else if !a.to_string_lossy().starts_with("--out=") {
            v.push(a.clone());
        }
    }
    v.push("--out".into());
    v.push(out.into());
    v
}

pub fn cmd_bisect(a: &BisectArgs) -> i32 {
    match bisect(a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zonecopy-ci bisect: {e}");
            2
        }
    }
}

fn bisect(a: &BisectArgs) -> Result<i32, String> {
    let tree = a
        .run
        .vm
        .kernel_tree
        .clone()
        .ok_or("--kernel-tree DIR is required (a git work tree)")?;
    git(&tree, &["rev-parse", "--is-inside-work-tree"])?;
    if !git(&tree, &["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
        return Err(format!("{} has uncommitted changes", tree.display()));
    }
    let out = a
        .run
        .limits
        .out
        .clone()
        .unwrap_or_else(|| default_out(&format!("bisect-{}", a.suite)));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let out = std::fs::canonicalize(&out).map_err(|e| e.to_string())?;
    let started = Instant::now();
    git(&tree, &["bisect", "start", &a.bad, &a.good, "--"])?;
    let result = run_steps(&tree, &out);
    let log = git(&tree, &["bisect", "log"]).unwrap_or_default();
    let _ = std::fs::write(out.join("bisect.log"), log + "\n");
    if let Err(e) = git(&tree, &["bisect", "reset"]) {
        eprintln!("warning: {e}");
    }
    let (code, output) = result?;
    if code >= 128 {
        say(&format!(
            "bisect: stopped (exit {code}); {} is reset (bisect.log in {})",
            tree.display(),
            out.display()
        ));
        return Ok(code);
    }
    let steps = std::fs::read_to_string(out.join("steps.log")).unwrap_or_default();
    say(&format!(
        "bisect: {} steps in {}",
        steps.lines().count(),
        timing::secs(started.elapsed())
    ));
    let Some(sha) = first_bad(&output) else {
        say("bisect: no first bad commit found (see bisect.log)");
        return Ok(1);
    };
    say(&format!(
        "first bad commit: {}",
        git(&tree, &["show", "-s", "--format=%H %s", &sha]).unwrap_or(sha.clone())
    ));
    if let Some(l) = steps.lines().find(|l| l.starts_with(&sha)) {
        say(&format!("  judged: {}", &l[sha.len()..].trim()));
    }
    evidence(&out.join(&sha[..12]));
    say(&format!("steps: {}", out.join("steps.log").display()));
    Ok(0)
}

/// Runs `git bisect run` with our step; its output is echoed and returned.
fn run_steps(tree: &Path, out: &Path) -> Result<(i32, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let args: Vec<OsString> = std::env::args_os().collect();
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(["bisect", "run"])
        .arg(&exe)
        .args(step_argv(&args, out))
        .env(CWD_ENV, &cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("git bisect run: {e}"))?;
    let mut text = String::new();
    if let Some(o) = child.stdout.take() {
        for line in BufReader::new(o).lines().map_while(Result::ok) {
            let _ = writeln!(std::io::stdout(), "{line}");
            text.push_str(&line);
            text.push('\n');
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if let Some(sig) = crate::proc::interrupted() {
        return Ok((signal_exit(sig), text));
    }
    Ok((status.code().unwrap_or(1), text))
}

/// What the first bad commit's run showed.
fn evidence(dir: &Path) {
    let doc = std::fs::read_to_string(dir.join("kcidb.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    let Some(run) = doc.and_then(|d| report::parse_run(dir, &d, &console)) else {
        say(&format!("  evidence: see {}", dir.display()));
        return;
    };
    let [p, f, s, x] = run.counts;
    say(&format!(
        "  {} on {}: {} ({p} passed, {f} failed, {s} skipped, {x} xfail)",
        run.suite, run.kernel, run.status
    ));
    for (bug, path, _) in &run.known_bugs {
        say(&format!("  known bug {bug}: {path} (XFAIL)"));
    }
    for fl in &run.failures {
        say(&format!("  {} {}: {}", fl.status, fl.path, fl.comment));
        for e in &fl.evidence {
            say(&format!("    | {e}"));
        }
    }
    say(&format!("  logs: {}", dir.display()));
}

/// `bisect-step`: one commit.
pub fn cmd_step(a: &BisectArgs) -> i32 {
    if let Some(d) = std::env::var_os(CWD_ENV) {
        let _ = std::env::set_current_dir(d);
    }
    let Some(tree) = a.run.vm.kernel_tree.clone() else {
        return SKIP;
    };
    let sha = git(&tree, &["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".into());
    let out = a
        .run
        .limits
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(sha.get(..12).unwrap_or(&sha));
    let log_step = |code: i32, what: &str| {
        let line = format!("{sha} {code} {what}\n");
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out.parent().unwrap_or(Path::new(".")).join("steps.log"))
            .and_then(|mut f| f.write_all(line.as_bytes()));
        eprintln!(
            "bisect step {}: {what} -> {code}",
            &sha.get(..12).unwrap_or(&sha)
        );
    };
    let (kernel, vm) = match prebuild_tree("", &a.run.vm) {
        Ok(k) => k,
        Err(e) => {
            log_step(SKIP, &format!("no kernel ({e})"));
            return SKIP;
        }
    };
    let run = run_suite(&SuiteJob::new(
        &vm,
        &kernel,
        &a.suite,
        &a.run.limits,
        a.run.net,
        &out,
    ));
    if let Some(sig) = run.interrupted {
        return signal_exit(sig);
    }
    let code = step_exit(&run.record.verdict, a.test.as_deref(), a.xfail_as);
    let c = run.record.verdict.counts;
    log_step(
        code,
        &format!(
            "{} on {}: {} passed, {} failed, {} skipped, {} xfail",
            a.suite, kernel, c.passed, c.failed, c.skipped, c.xfail
        ),
    );
    code
}

#[cfg(test)]
#[path = "bisect_tests.rs"]
mod tests;
