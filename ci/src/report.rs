//! `zonecopy-ci report DIR...`: merges runs (any directory tree holding
//! the `kcidb.json` each run writes: single runs, matrices, shards from
//! many CI jobs) into one summary: the kernel x suite table, the known
//! bugs each kernel hit, the failures with the first lines of their
//! evidence, and the `# bench NAME key=value` numbers the runs printed
//! (with SVG plots in the HTML). Writes `report.md` (fit for a pull
//! request comment) and `report.html` (one self-contained page).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde_json::Value;

use crate::{cli::ReportArgs, report_html, suite::default_out, timing};

/// A failed (or errored) test with the first lines of its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub path: String,
    pub status: String,
    pub comment: String,
    pub evidence: Vec<String>,
}

/// One `# bench NAME key=value ...` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Bench {
    pub name: String,
    pub values: Vec<(String, String)>,
}

/// One run, as its kcidb.json (and console.log) tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub dir: PathBuf,
    pub kernel: String,
    pub suite: String,
    pub personality: String,
    pub transport: String,
    pub status: String,
    pub pass: bool,
    /// passed, failed, skipped, xfail
    pub counts: [u64; 4],
    pub boot_s: Option<f64>,
    pub total_s: Option<f64>,
    pub release: Option<String>,
    pub commit: Option<String>,
    pub reasons: Vec<String>,
    /// (bug id, test path, what)
    pub known_bugs: Vec<(String, String, String)>,
    pub failures: Vec<Failure>,
    pub bench: Vec<Bench>,
}

/// Lines of evidence kept per failure.
pub const EVIDENCE_LINES: usize = 3;

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Parses one run's KCIDB document (`console` is its console log text).
pub fn parse_run(dir: &Path, doc: &Value, console: &str) -> Option<Run> {
    let tests = doc["tests"].as_array()?;
    let root = tests.first()?;
    let m = &root["misc"];
    let n = |k: &str| m[k].as_u64().unwrap_or(0);
    let mut known_bugs = Vec::new();
    let mut failures = Vec::new();
    for t in &tests[1..] {
        let x = &t["misc"]["expected_failure"];
        if x.is_object() {
            known_bugs.push((s(&x["known_bug"]), s(&t["path"]), s(&x["what"])));
        } else if matches!(t["status"].as_str(), Some("FAIL" | "ERROR")) {
            failures.push(Failure {
                path: s(&t["path"]),
                status: s(&t["status"]),
                comment: s(&t["comment"]),
                evidence: s(&t["log_excerpt"])
                    .lines()
                    .take(EVIDENCE_LINES)
                    .map(str::to_owned)
                    .collect(),
            });
        }
    }
    if !m["reasons"].as_array().is_some_and(|r| r.is_empty()) && failures.is_empty() {
        // The run failed without a failed case (timeout, crash, no KTAP).
        failures.push(Failure {
            path: s(&root["path"]),
            status: s(&root["status"]),
            comment: s(&root["comment"]),
            evidence: s(&root["log_excerpt"])
                .lines()
                .rev()
                .take(EVIDENCE_LINES)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(str::to_owned)
                .collect(),
        });
    }
    Some(Run {
        dir: dir.to_path_buf(),
        kernel: s(&m["kernel"]),
        suite: s(&m["suite"]),
        personality: s(&m["personality"]),
        transport: s(&m["transport"]),
        status: s(&root["status"]),
        pass: m["pass"].as_bool().unwrap_or(false),
        counts: [n("passed"), n("failed"), n("skipped"), n("xfail")],
        boot_s: m["boot_s"].as_f64(),
        total_s: m["total_s"].as_f64(),
        release: doc["builds"][0]["misc"]["release"]
            .as_str()
            .map(str::to_owned),
        commit: doc["checkouts"][0]["git_commit_hash"]
            .as_str()
            .map(str::to_owned),
        reasons: m["reasons"]
            .as_array()
            .map(|r| r.iter().map(s).collect())
            .unwrap_or_default(),
        known_bugs,
        failures,
        bench: bench_lines(console),
    })
}

/// The `# bench NAME key=value ...` lines of a console log.
pub fn bench_lines(console: &str) -> Vec<Bench> {
    console
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("# bench ")? + "# bench ".len()..];
            let mut words = rest.split_whitespace();
            let name = words.next()?.to_owned();
            let values: Vec<(String, String)> = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (!values.is_empty()).then_some(Bench { name, values })
        })
        .collect()
}

/// Every `kcidb.json` under `dirs` (a directory's own first), sorted.
pub fn find_documents(dirs: &[PathBuf]) -> Vec<PathBuf> {
    find_files(dirs, "kcidb.json")
}

/// Every file called `name` under `dirs` (a directory's own first).
pub fn find_files(dirs: &[PathBuf], name: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, name: &str, out: &mut Vec<PathBuf>, depth: usize) {
        let f = d.join(name);
        if f.is_file() {
            out.push(f);
        }
        if depth == 0 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut subs: Vec<PathBuf> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        subs.sort();
        for s in subs {
            walk(&s, name, out, depth - 1);
        }
    }
    let mut out = Vec::new();
    for d in dirs {
        walk(d, name, &mut out, 6);
    }
    out
}

/// Reads and parses the runs; unreadable documents are reported, not fatal.
pub fn load(dirs: &[PathBuf]) -> (Vec<Run>, Vec<String>) {
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for f in find_documents(dirs) {
        let dir = f.parent().unwrap_or(Path::new(".")).to_path_buf();
        let doc = std::fs::read_to_string(&f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()));
        let console = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
        match doc.map(|d| parse_run(&dir, &d, &console)) {
            Ok(Some(r)) => runs.push(r),
            Ok(None) => problems.push(format!("{}: no tests", f.display())),
            Err(e) => problems.push(format!("{}: {e}", f.display())),
        }
    }
    sort_runs(&mut runs);
    (runs, problems)
}

/// Orders text with embedded numbers numerically (6.1 < 6.12 < 7.2).
pub fn natural_key(s: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut num = String::new();
    let mut text = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !text.is_empty() {
                out.push((u64::MAX, std::mem::take(&mut text)));
            }
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((num.parse().unwrap_or(u64::MAX), String::new()));
                num.clear();
            }
            text.push(c);
        }
    }
    if !num.is_empty() {
        out.push((num.parse().unwrap_or(u64::MAX), String::new()));
    }
    if !text.is_empty() {
        out.push((u64::MAX, text));
    }
    out
}

pub fn sort_runs(runs: &mut [Run]) {
    runs.sort_by(|a, b| {
        (
            natural_key(&a.kernel),
            &a.suite,
            &a.personality,
            &a.transport,
            &a.dir,
        )
            .cmp(&(
                natural_key(&b.kernel),
                &b.suite,
                &b.personality,
                &b.transport,
                &b.dir,
            ))
    });
}

/// A table column: the suite, with personality/transport when not the defaults.
pub fn column(r: &Run) -> String {
    let mut c = r.suite.clone();
    if r.personality != "default" && !r.personality.is_empty() {
        c.push_str(&format!(" ({})", r.personality));
    }
    if r.transport != "-" && r.transport != crate::shard::TRANSPORTS[0] && !r.transport.is_empty() {
        c.push_str(&format!(" [{}]", r.transport));
    }
    c
}

/// `PASS 46/0/0/0`: verdict, passed/failed/skipped/xfail.
pub fn cell_text(r: &Run) -> String {
    let [p, f, s, x] = r.counts;
    format!(
        "{} {p}/{f}/{s}/{x}",
        if r.pass { "PASS" } else { &r.status }
    )
}

/// Row names (kernels), column names, and the runs of each (row, column).
pub type Pivot = (
    Vec<String>,
    Vec<String>,
    BTreeMap<(usize, usize), Vec<usize>>,
);

/// The kernel x suite table: rows kernels, columns suites; a cell holds
/// every run of that pair (repeated runs side by side).
pub fn pivot(runs: &[Run]) -> Pivot {
    let mut kernels: Vec<String> = Vec::new();
    let mut cols: Vec<String> = Vec::new();
    for r in runs {
        if !kernels.contains(&r.kernel) {
            kernels.push(r.kernel.clone());
        }
        let c = column(r);
        if !cols.contains(&c) {
            cols.push(c);
        }
    }
    cols.sort();
    let mut cells: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        let k = kernels.iter().position(|k| *k == r.kernel).unwrap_or(0);
        let c = cols.iter().position(|c| *c == column(r)).unwrap_or(0);
        cells.entry((k, c)).or_default().push(i);
    }
    (kernels, cols, cells)
}

/// Markdown cell text: no pipes or newlines.
pub fn md(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The results table (deterministic: no times, no paths).
pub fn results_table(runs: &[Run]) -> String {
    let (kernels, cols, cells) = pivot(runs);
    let mut t = format!(
        "| kernel | {} |\n|---|{}\n",
        cols.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | "),
        "---|".repeat(cols.len())
    );
    for (ki, k) in kernels.iter().enumerate() {
        let _ = write!(t, "| {}", md(k));
        for ci in 0..cols.len() {
            let text = cells
                .get(&(ki, ci))
                .map(|v| {
                    v.iter()
                        .map(|&i| cell_text(&runs[i]))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "-".into());
            let _ = write!(t, " | {text}");
        }
        t.push_str(" |\n");
    }
    t.push_str("\nCells: verdict passed/failed/skipped/xfail (expected failures of known bugs).\n");
    t
}

/// Known bugs hit, per kernel: (kernel, bug, what, tests).
pub fn known_bugs_by_kernel(runs: &[Run]) -> Vec<(String, String, String, Vec<String>)> {
    let mut out: Vec<(String, String, String, Vec<String>)> = Vec::new();
    for r in runs {
        for (bug, path, what) in &r.known_bugs {
            match out
                .iter_mut()
                .find(|(k, b, _, _)| *k == r.kernel && b == bug)
            {
                Some(e) => {
                    if !e.3.contains(path) {
                        e.3.push(path.clone());
                    }
                }
                None => out.push((
                    r.kernel.clone(),
                    bug.clone(),
                    what.clone(),
                    vec![path.clone()],
                )),
            }
        }
    }
    out
}

/// The whole Markdown report.
pub fn markdown(runs: &[Run], title: &str, generated: &str, coverage: &[String]) -> String {
    let mut m = format!(
        "# {}\n\n{} runs, {} passed; generated {generated}.\n\n",
        md(title),
        runs.len(),
        runs.iter().filter(|r| r.pass).count()
    );
    for c in coverage {
        let _ = writeln!(m, "- {}", md(c));
    }
    if !coverage.is_empty() {
        m.push('\n');
    }
    m.push_str(&results_table(runs));
    m.push_str("\n## Runs\n\n| kernel | version | suite | verdict | pass | fail | skip | xfail | boot s | total s |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for r in runs {
        let f = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
        let version = r.commit.as_deref().map_or_else(
            || r.release.clone().unwrap_or_default(),
            |c| c[..12.min(c.len())].to_owned(),
        );
        let [p, fl, s, x] = r.counts;
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {p} | {fl} | {s} | {x} | {} | {} |",
            md(&r.kernel),
            md(&version),
            md(&column(r)),
            md(&r.status),
            f(r.boot_s),
            f(r.total_s)
        );
    }
    let bugs = known_bugs_by_kernel(runs);
    if !bugs.is_empty() {
        m.push_str("\n## Known bugs hit (expected failures)\n\n| kernel | bug | tests | what |\n|---|---|---|---|\n");
        for (k, b, what, tests) in &bugs {
            let _ = writeln!(
                m,
                "| {} | `{}` | {} | {} |",
                md(k),
                md(b),
                tests.len(),
                md(what)
            );
        }
    }
    let failed: Vec<&Run> = runs.iter().filter(|r| !r.failures.is_empty()).collect();
    if !failed.is_empty() {
        m.push_str("\n## Failures\n");
        for r in failed {
            let _ = writeln!(
                m,
                "\n**{} on {}** ({})\n",
                md(&column(r)),
                md(&r.kernel),
                r.status
            );
            for f in &r.failures {
                let _ = writeln!(m, "- `{}` {}: {}", f.path, f.status, md(&f.comment));
                for e in &f.evidence {
                    let _ = writeln!(m, "  > {}", md(e));
                }
            }
        }
    }
    let bench = bench_table(runs);
    if !bench.is_empty() {
        m.push_str("\n## Benchmarks\n\n| run | bench | values |\n|---|---|---|\n");
        for (run, b) in bench {
            let vals: Vec<String> = b.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                md(&run),
                md(&b.name),
                md(&vals.join(" "))
            );
        }
    }
    m
}

/// (run label, bench line) of every run.
pub fn bench_table(runs: &[Run]) -> Vec<(String, &Bench)> {
    runs.iter()
        .flat_map(|r| {
            r.bench
                .iter()
                .map(move |b| (format!("{} {}", r.kernel, column(r)), b))
        })
        .collect()
}

pub fn cmd_report(a: &ReportArgs) -> i32 {
    let (runs, problems) = load(&a.dirs);
    for p in &problems {
        eprintln!("zonecopy-ci report: {p}");
    }
    if runs.is_empty() {
        eprintln!("zonecopy-ci report: no kcidb.json under the given directories");
        return 1;
    }
    if a.table {
        print!("{}", results_table(&runs));
        return i32::from(!problems.is_empty());
    }
    let coverage = crate::coverage::check(&find_files(&a.dirs, crate::coverage::FILE));
    for c in &coverage {
        eprintln!("zonecopy-ci report: {c}");
    }
    let out = a.out.clone().unwrap_or_else(|| default_out("report"));
    let generated = timing::iso8601(SystemTime::now());
    let html = report_html::page(&runs, &a.title, &generated, &out, &coverage);
    let md_text = markdown(&runs, &a.title, &generated, &coverage);
    let written = std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("report.html"), html))
        .and_then(|()| std::fs::write(out.join("report.md"), &md_text));
    if let Err(e) = written {
        eprintln!(
            "zonecopy-ci report: cannot write into {}: {e}",
            out.display()
        );
        return 1;
    }
    print!("{}", results_table(&runs));
    println!(
        "{} runs ({} passed) from {} directories: {} and report.md",
        runs.len(),
        runs.iter().filter(|r| r.pass).count(),
        a.dirs.len(),
        out.join("report.html").display()
    );
    i32::from(!problems.is_empty())
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
