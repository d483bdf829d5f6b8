//! KCIDB (KernelCI's results database) I/O schema v5: every suite run
//! writes `kcidb.json` beside `junit.xml`, with
//! - one checkout: the kernel's source (a `--kernel-tree`'s git commit, or
//!   the named kernel and its version);
//! - one build: the booted image (its version from the bzImage header);
//! - tests: `zonecopy.<suite>` for the run as a whole (its `misc` holds the
//!   counts, times and failure reasons `zonecopy-ci report` merges), then
//!   one per KTAP case, path `zonecopy.<suite>.<parent>.<child>`;
//! - issues and incidents: each known bug (XFAIL) the run hit, linked to
//!   the tests that hit it.
//!
//! Status mapping: ok -> PASS; `# SKIP` -> SKIP; `not ok` and `# XPASS` ->
//! FAIL; `# ERROR`, `# TIMEOUT` and a run the runner could not judge
//! (no KTAP, timeout, QEMU failed) -> ERROR. An XFAIL is a failure that is
//! known: FAIL, with `misc.expected_failure` naming the bug and an
//! incident tying the test to that bug's issue (KCIDB's way to triage a
//! failure), so nothing reads it as an unexplained failure or as a pass.
//! Logs: the schema wants `log_url` to be an absolute URI (kcidb-io checks
//! the `uri` format), which a run on a CI machine cannot know. So every
//! test's `misc.logs` holds paths relative to the run's directory
//! (`console.log`, `junit.xml`), and `log_url` is written only when
//! `$ZONECOPY_LOG_BASE` gives the URL its directory will be published
//! under (e.g. a CI job's artifact URL): `<base>/<run dir name>/console.log`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
};

use serde_json::{json, Map, Value};

use crate::{
    junit::SuiteRecord,
    kernel,
    ktap::{Case, Outcome, Verdict},
    util::Fnv,
};

/// `origin` of everything we submit.
pub const ORIGIN: &str = "zonecopy";
/// Schema version written.
pub const SCHEMA: (u32, u32) = (5, 3);
/// Largest `log_excerpt` the schema takes.
const EXCERPT_MAX: usize = 16384;

/// Where a kernel built from a git tree came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSource {
    pub tree: PathBuf,
    pub commit: Option<String>,
    pub describe: Option<String>,
    pub branch: Option<String>,
    /// `remote.origin.url`, only when it is an https URL (the schema's rule).
    pub url: Option<String>,
    pub subject: Option<String>,
}

fn git(tree: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    (o.status.success() && !s.is_empty()).then_some(s)
}

impl TreeSource {
    pub fn of(tree: &Path) -> Self {
        TreeSource {
            tree: tree.to_path_buf(),
            commit: git(tree, &["rev-parse", "HEAD"]).filter(|c| c.len() == 40),
            describe: git(tree, &["describe", "--always", "--tags", "--dirty"]),
            branch: git(tree, &["symbolic-ref", "--short", "-q", "HEAD"]),
            url: git(tree, &["config", "remote.origin.url"]).filter(|u| u.starts_with("https://")),
            subject: git(tree, &["show", "-s", "--format=%s", "HEAD"]),
        }
    }
}

/// Kernel specs (as given to a suite run) that came from a source tree.
static TREES: Mutex<Vec<(String, TreeSource)>> = Mutex::new(Vec::new());

/// Remembers that runs of `kernel_spec` boot a kernel from `tree` (called
/// where the tree is built or its marker resolved).
pub fn note_tree(kernel_spec: &str, tree: &Path) {
    let src = TreeSource::of(tree);
    if let Ok(mut t) = TREES.lock() {
        t.retain(|(k, _)| k != kernel_spec);
        t.push((kernel_spec.to_owned(), src));
    }
}

fn tree_of(kernel_spec: &str) -> Option<TreeSource> {
    TREES
        .lock()
        .ok()?
        .iter()
        .find(|(k, _)| k == kernel_spec)
        .map(|(_, s)| s.clone())
}

/// The version banner of a kernel image: the bzImage header's
/// `kernel_version` string (boot protocol 2.00+, Documentation/arch/x86/
/// boot.rst: "HdrS" at 0x202, pointer at 0x20E, + 0x200); for a vmlinux the
/// bzImage beside it, else the `Linux version ` banner in the file.
pub fn kernel_version(image: &Path) -> Option<String> {
    let bz = if image.file_name().is_some_and(|n| n == "vmlinux") {
        image.with_file_name("bzImage")
    } else {
        image.to_path_buf()
    };
    if let Some(v) = std::fs::read(&bz).ok().and_then(|b| bzimage_version(&b)) {
        return Some(v);
    }
    let bytes = std::fs::read(image).ok()?;
    let pat = b"Linux version ";
    let at = bytes.windows(pat.len()).position(|w| w == pat)? + pat.len();
    let end = bytes[at..].iter().position(|&b| b == 0 || b == b'\n')? + at;
    Some(String::from_utf8_lossy(&bytes[at..end]).trim().to_owned())
}

/// `kernel_version` of a bzImage's setup header.
pub fn bzimage_version(b: &[u8]) -> Option<String> {
    if b.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = usize::from(u16::from_le_bytes([*b.get(0x20e)?, *b.get(0x20f)?])) + 0x200;
    let tail = b.get(ptr..)?;
    let end = tail.iter().take(256).position(|&c| c == 0)?;
    let s = String::from_utf8_lossy(&tail[..end]).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// One path segment: `[a-zA-Z0-9_-]+` as the schema's path pattern wants.
pub fn segment(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// `zonecopy.<suite>.<case a.b.c>`, each part a clean segment.
pub fn test_path(suite: &str, case: &str) -> String {
    let mut p = format!("{ORIGIN}.{}", segment(suite));
    for part in case.split('.') {
        p.push('.');
        p.push_str(&segment(part));
    }
    p
}

/// KCIDB status of one case, and the known bug an XFAIL names.
pub fn case_status(outcome: &Outcome, xfail_ids: &[String]) -> (&'static str, Option<String>) {
    match outcome {
        Outcome::Pass => ("PASS", None),
        Outcome::Skip(_) => ("SKIP", None),
        Outcome::Xfail(reason) => ("FAIL", Some(known_bug_of(reason, xfail_ids))),
        Outcome::Fail(r) if r.starts_with("ERROR") || r.starts_with("TIMEOUT") => ("ERROR", None),
        Outcome::Fail(_) => ("FAIL", None),
    }
}

/// The bug id an XFAIL reason starts with (`copy-tcp-r2t: ...`), else the
/// first listed id the reason mentions, else the reason's first word.
pub fn known_bug_of(reason: &str, xfail_ids: &[String]) -> String {
    let first: String = reason
        .trim_start_matches("TODO")
        .trim()
        .split([':', ' '])
        .next()
        .unwrap_or("")
        .to_owned();
    if xfail_ids.contains(&first) {
        return first;
    }
    xfail_ids
        .iter()
        .find(|id| reason.contains(id.as_str()))
        .cloned()
        .unwrap_or(if first.is_empty() {
            "unnamed".into()
        } else {
            first
        })
}

/// Status of the run as a whole: PASS, FAIL (a case failed or the kernel
/// crashed), or ERROR (the runner could not get a verdict from the guest).
pub fn run_status(v: &Verdict) -> &'static str {
    if v.pass {
        "PASS"
    } else if v.counts.failed > 0 || v.run_reasons.iter().any(|r| r.starts_with("kernel crash")) {
        "FAIL"
    } else {
        "ERROR"
    }
}

fn excerpt(lines: &[String]) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let mut s = String::new();
    for l in lines {
        if s.len() + l.len() + 1 > EXCERPT_MAX {
            break;
        }
        s.push_str(&l.replace('\0', ""));
        s.push('\n');
    }
    Some(s)
}

/// What a run document is built from.
#[derive(Debug)]
pub struct RunInput<'a> {
    pub record: &'a SuiteRecord,
    pub personality: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub boot: Option<Duration>,
    /// The run's directory (ids are unique per directory and start time).
    pub out: &'a Path,
    pub image: Option<PathBuf>,
    pub version: Option<String>,
    pub tree: Option<TreeSource>,
    /// URL of the directory the run's directory is published in.
    pub log_base: Option<String>,
}

/// `<base>/<dir name>/<file>` when a base is known.
pub fn log_url(base: Option<&str>, out: &Path, file: &str) -> Option<String> {
    let base = base?.trim_end_matches('/');
    let dir = out.file_name()?.to_string_lossy();
    Some(format!("{base}/{dir}/{file}"))
}

/// Relative paths of the run's logs, for `misc.logs`.
fn logs(files: &[&str]) -> Value {
    Value::Object(
        files
            .iter()
            .map(|f| ((*f).to_owned(), Value::from(*f)))
            .collect(),
    )
}

fn prop<'a>(r: &'a SuiteRecord, key: &str) -> Option<&'a str> {
    r.properties
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        m.insert(key.to_owned(), v.into());
    }
}

/// The whole document for one run.
pub fn document(i: &RunInput<'_>) -> Value {
    let r = i.record;
    let dir = std::fs::canonicalize(i.out).unwrap_or_else(|_| i.out.to_path_buf());
    let run_id = Fnv::default()
        .add(r.timestamp.as_bytes())
        .add(r.kernel.as_bytes())
        .add(r.suite.as_bytes())
        .add(dir.as_os_str().as_encoded_bytes())
        .hex();
    let version = i.version.clone();
    let release = version
        .as_deref()
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_owned);
    let checkout = checkout(i, &release);
    let checkout_id = checkout["id"].as_str().unwrap_or_default().to_owned();
    let build_id = format!(
        "{ORIGIN}:build-{}",
        Fnv::default()
            .add(checkout_id.as_bytes())
            .add(
                i.image
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .as_os_str()
                    .as_encoded_bytes()
            )
            .hex()
    );
    let mut build = Map::new();
    build.insert("id".into(), build_id.clone().into());
    build.insert("origin".into(), ORIGIN.into());
    build.insert("checkout_id".into(), checkout_id.into());
    build.insert("architecture".into(), "x86_64".into());
    build.insert("status".into(), "PASS".into());
    put(&mut build, "comment", version.clone());
    if i.tree.is_some() && i.out.join("kernel-build.log").is_file() {
        put(
            &mut build,
            "log_url",
            log_url(i.log_base.as_deref(), i.out, "kernel-build.log"),
        );
    }
    let mut bmisc = Map::new();
    put(&mut bmisc, "kernel", Some(r.kernel.clone()));
    put(
        &mut bmisc,
        "image",
        i.image.as_ref().map(|p| p.display().to_string()),
    );
    put(&mut bmisc, "release", release);
    build.insert("misc".into(), bmisc.into());

    let xfail_ids: Vec<String> = prop(r, "xfail")
        .map(|x| x.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let (tests, hits) = tests(i, &run_id, &build_id, &xfail_ids);
    let (issues, incidents) = known_bugs(&r.kernel, &hits, &build_id);
    json!({
        "version": {"major": SCHEMA.0, "minor": SCHEMA.1},
        "checkouts": [checkout],
        "builds": [Value::Object(build)],
        "tests": tests,
        "issues": issues,
        "incidents": incidents,
    })
}

fn checkout(i: &RunInput<'_>, release: &Option<String>) -> Value {
    let r = i.record;
    let mut c = Map::new();
    c.insert("origin".into(), ORIGIN.into());
    c.insert("start_time".into(), r.timestamp.clone().into());
    c.insert("valid".into(), true.into());
    let id_key = match &i.tree {
        Some(t) => {
            put(&mut c, "git_commit_hash", t.commit.clone());
            put(&mut c, "git_commit_name", t.describe.clone());
            put(&mut c, "git_repository_branch", t.branch.clone());
            put(&mut c, "git_repository_url", t.url.clone());
            put(&mut c, "comment", t.subject.clone());
            c.insert(
                "tree_name".into(),
                segment(
                    &t.tree
                        .file_name()
                        .map_or_else(|| "tree".into(), |n| n.to_string_lossy().into_owned()),
                )
                .into(),
            );
            t.commit
                .clone()
                .unwrap_or_else(|| t.tree.display().to_string())
        }
        None => {
            c.insert("tree_name".into(), r.kernel.clone().into());
            put(
                &mut c,
                "comment",
                release.clone().map(|v| format!("kernel {v}")),
            );
            format!("{}-{}", r.kernel, release.as_deref().unwrap_or("unknown"))
        }
    };
    let mut misc = Map::new();
    put(&mut misc, "kernel_version", i.version.clone());
    c.insert("misc".into(), misc.into());
    c.insert(
        "id".into(),
        format!(
            "{ORIGIN}:checkout-{}",
            Fnv::default().add(id_key.as_bytes()).hex()
        )
        .into(),
    );
    Value::Object(c)
}

/// (test id, bug id) of every XFAIL case.
type Hits = Vec<(String, String)>;

fn tests(
    i: &RunInput<'_>,
    run_id: &str,
    build_id: &str,
    xfail_ids: &[String],
) -> (Vec<Value>, Hits) {
    let r = i.record;
    let v = &r.verdict;
    let c = v.counts;
    let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    let mut root = json!({
        "id": format!("{ORIGIN}:{run_id}"),
        "origin": ORIGIN,
        "build_id": build_id,
        "path": format!("{ORIGIN}.{}", segment(&r.suite)),
        "status": run_status(v),
        "start_time": r.timestamp,
        "duration": secs(r.total),
        "misc": {
            "logs": logs(&["console.log", "junit.xml", "backend.log", "qemu.log"]),
            "kernel": r.kernel, "suite": r.suite,
            "personality": i.personality.unwrap_or("default"),
            "transport": i.transport.unwrap_or("-"),
            "pass": v.pass,
            "passed": c.passed, "failed": c.failed, "skipped": c.skipped, "xfail": c.xfail,
            "boot_s": i.boot.map(secs), "total_s": secs(r.total),
            "reasons": v.reasons, "known_bugs": xfail_ids,
        },
    });
    if let Some(u) = log_url(i.log_base.as_deref(), i.out, "console.log") {
        root["log_url"] = u.into();
    }
    if !v.run_reasons.is_empty() {
        root["comment"] = v.run_reasons.join("; ").into();
        if !r.console_excerpt.is_empty() {
            let tail: Vec<String> = r.console_excerpt.lines().map(str::to_owned).collect();
            root["log_excerpt"] = excerpt(&tail).into();
        }
    }
    let url = root.get("log_url").cloned();
    let mut out = vec![root];
    let mut hits = Vec::new();
    for (n, case) in v.cases.iter().enumerate() {
        let id = format!("{ORIGIN}:{run_id}.{}", n + 1);
        let mut t = case_test(case, &r.suite, &id, build_id, xfail_ids, &mut hits);
        if let Some(u) = &url {
            t["log_url"] = u.clone();
        }
        out.push(t);
    }
    (out, hits)
}

fn case_test(
    case: &Case,
    suite: &str,
    id: &str,
    build_id: &str,
    xfail_ids: &[String],
    hits: &mut Hits,
) -> Value {
    let (status, bug) = case_status(&case.outcome, xfail_ids);
    let mut t = json!({
        "id": id, "origin": ORIGIN, "build_id": build_id,
        "path": test_path(suite, &case.name),
        "status": status,
        "misc": {"ktap_name": case.name, "logs": logs(&["console.log"])},
    });
    if let Some(d) = case.time {
        t["duration"] = ((d.as_secs_f64() * 1000.0).round() / 1000.0).into();
    }
    let reason = match &case.outcome {
        Outcome::Pass => None,
        Outcome::Skip(r) => Some(format!("SKIP {r}")),
        Outcome::Xfail(r) => Some(format!("XFAIL {r}")),
        Outcome::Fail(r) => Some(r.clone()),
    };
    if let Some(r) = reason {
        t["comment"] = r.trim().replace('\0', "").into();
    }
    if let Some(b) = bug {
        t["misc"]["expected_failure"] = json!({
            "known_bug": b,
            "what": kernel_bug_text(&b),
            "note": "an expected failure (KTAP XFAIL): the kernel's known bug showed as it should; \
                     it does not fail the run, and its going away would (XPASS)",
        });
        hits.push((id.to_owned(), b));
    }
    if matches!(case.outcome, Outcome::Fail(_) | Outcome::Xfail(_)) {
        if let Some(e) = excerpt(&case.diagnostics) {
            t["log_excerpt"] = e.into();
        }
    }
    t
}

/// The known-bugs table's description of `id`, any kernel.
fn kernel_bug_text(id: &str) -> Option<&'static str> {
    kernel::KNOWN_BUGS
        .iter()
        .flat_map(|(_, bugs)| bugs.iter())
        .find(|b| b.id == id)
        .map(|b| b.what)
}

fn known_bugs(kernel: &str, hits: &Hits, build_id: &str) -> (Vec<Value>, Vec<Value>) {
    let mut issues: Vec<Value> = Vec::new();
    let mut incidents = Vec::new();
    for (test_id, bug) in hits {
        let issue_id = format!("{ORIGIN}:{bug}");
        if !issues.iter().any(|i| i["id"] == issue_id.as_str()) {
            let mut i = json!({
                "id": issue_id, "version": 1, "origin": ORIGIN,
                "culprit": {"code": true, "tool": false, "harness": false},
                "misc": {"kernel": kernel},
            });
            if let Some(w) = kernel_bug_text(bug) {
                i["report_subject"] = w.into();
            }
            issues.push(i);
        }
        incidents.push(json!({
            "id": format!("{test_id}.{bug}"), "origin": ORIGIN,
            "issue_id": issue_id, "issue_version": 1,
            "build_id": build_id, "test_id": test_id, "present": true,
        }));
    }
    (issues, incidents)
}

/// Writes `<out>/kcidb.json` for a finished run (called beside junit.xml).
pub fn write(out: &Path, record: &SuiteRecord, personality: Option<&str>, boot: Option<Duration>) {
    let image = prop(record, "kernel_image").map(PathBuf::from);
    let version = image.as_deref().and_then(kernel_version);
    let transport = zonecopy_contract::Suite::named(Some(&record.suite))
        .is_some_and(|s| crate::needs::NVME_SUITES.contains(&s))
        .then_some(crate::shard::TRANSPORTS[0]);
    let doc = document(&RunInput {
        record,
        personality,
        transport,
        boot,
        out,
        image,
        version,
        tree: tree_of(&record.kernel),
        log_base: std::env::var("ZONECOPY_LOG_BASE")
            .ok()
            .filter(|b| !b.is_empty()),
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if let Err(e) = std::fs::write(out.join("kcidb.json"), text + "\n") {
        eprintln!(
            "warning: cannot write {}: {e}",
            out.join("kcidb.json").display()
        );
    }
}

#[cfg(test)]
#[path = "kcidb_tests.rs"]
pub mod tests;
