//! Streaming KTAP (version 1) parser and the runner's verdict.
//!
//! The console interleaves kernel messages with the guest's KTAP, so every
//! line that is not KTAP is ignored (but checked for kernel crash markers).
//! Nesting follows KTAP: a subtest's lines are indented by 4 spaces per
//! level, and the subtest ends with the result line at its parent's depth.
//! See <https://docs.kernel.org/dev-tools/ktap.html>.

use std::time::Duration;

/// A test directive (`# SKIP reason`, ...). Unknown `#` text after a result
/// is kept in the description's comment, not treated as a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    Skip(String),
    Todo(String),
    Xfail(String),
    Xpass(String),
    Timeout(String),
    Error(String),
}

/// One `ok` / `not ok` line, with the subtests that preceded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test number; `None` when the line had none (plain TAP allows it).
    pub number: Option<u32>,
    pub ok: bool,
    pub description: String,
    pub directive: Option<Directive>,
    /// Text after ` # ` that is not a directive (KTAP "diagnostic data").
    pub comment: Option<String>,
    /// `#` lines at the same depth just before this result, and the trailing
    /// `#` lines of its subtest block.
    pub diagnostics: Vec<String>,
    pub subtests: Vec<TestResult>,
    /// The plan of the subtest block, if it had one.
    pub subtest_plan: Option<u32>,
    /// Synthesised by the runner: the guest stopped inside this subtest.
    pub unfinished: bool,
    /// Console time from the previous result at this level (or the start
    /// of the block) to this one, when the lines were fed with times.
    pub time: Option<Duration>,
}

/// How one test case ended, from the runner's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
    /// Expected failure (`# XFAIL`, or `not ok ... # TODO`): not a failure.
    Xfail(String),
}

impl TestResult {
    /// The outcome of this line alone (subtests not considered).
    pub fn own_outcome(&self) -> Outcome {
        if self.unfinished {
            return Outcome::Fail("the guest stopped before this test finished".into());
        }
        match (&self.directive, self.ok) {
            (Some(Directive::Skip(r)), _) => Outcome::Skip(r.clone()),
            (Some(Directive::Xfail(r)), _) => Outcome::Xfail(r.clone()),
            (Some(Directive::Todo(r)), false) => Outcome::Xfail(format!("TODO {r}")),
            (Some(Directive::Todo(_)), true) => Outcome::Pass,
            (Some(Directive::Xpass(r)), _) => {
                Outcome::Fail(format!("unexpected pass (XPASS) {r}").trim_end().into())
            }
            (Some(Directive::Timeout(r)), _) => Outcome::Fail(format!("TIMEOUT {r}")),
            (Some(Directive::Error(r)), _) => Outcome::Fail(format!("ERROR {r}")),
            (None, true) => Outcome::Pass,
            (None, false) => Outcome::Fail(match &self.comment {
                Some(c) => format!("not ok: {c}"),
                None => "not ok".into(),
            }),
        }
    }

    fn display_name(&self) -> String {
        if self.description.is_empty() {
            match self.number {
                Some(n) => format!("test {n}"),
                None => "test".into(),
            }
        } else {
            self.description.clone()
        }
    }
}

/// What kind of line the parser just saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Not KTAP (kernel messages, other output).
    Noise,
    /// A KTAP line.
    Ktap,
    /// A kernel crash marker (`Kernel panic`, `BUG:`, `Oops:`).
    Crash,
}

#[derive(Debug, Default)]
struct Level {
    plan: Option<u32>,
    results: Vec<TestResult>,
    /// `#` lines not yet attached to a result.
    pending_diag: Vec<String>,
    /// `# Subtest: name`.
    name: Option<String>,
    /// When the block started or its last result arrived.
    mark: Option<Duration>,
}

/// Streaming parser: feed console lines as they arrive, then `finish`.
#[derive(Debug, Default)]
pub struct Parser {
    levels: Vec<Level>,
    version: Option<String>,
    bail_out: Option<String>,
    crash: Option<String>,
    ktap_lines: usize,
    /// Result lines (`ok`/`not ok`) at any depth.
    result_lines: usize,
    warnings: Vec<String>,
    /// Arrival time of the line being fed.
    now: Option<Duration>,
}

/// Everything the guest said, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `KTAP version 1` (or `TAP version N`), if seen.
    pub version: Option<String>,
    /// The top-level plan `1..N`.
    pub plan: Option<u32>,
    /// Top-level results, subtests nested.
    pub results: Vec<TestResult>,
    pub bail_out: Option<String>,
    /// The first kernel crash line.
    pub crash: Option<String>,
    /// Number of KTAP lines seen.
    pub ktap_lines: usize,
    /// Malformed structure that was tolerated.
    pub warnings: Vec<String>,
}

enum Line<'a> {
    Version(&'a str),
    Plan(u32),
    Result(TestResult),
    SubtestName(&'a str),
    Diagnostic(&'a str),
    BailOut(&'a str),
}

/// Removes a leading kernel timestamp `[    1.234567] `.
fn strip_timestamp(line: &str) -> &str {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        if let Some((stamp, after)) = rest.split_once(']') {
            if stamp
                .trim()
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.')
            {
                return after.trim_start();
            }
        }
    }
    t
}

/// Is this (non-KTAP) console line a kernel crash?
pub fn is_crash_line(line: &str) -> bool {
    let msg = strip_timestamp(line);
    line.contains("Kernel panic")
        || msg.starts_with("BUG: ")
        || msg.starts_with("Oops: ")
        || msg.starts_with("general protection fault")
}

fn parse_directive(text: &str) -> Option<Directive> {
    let text = text.trim();
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let reason = rest.trim().to_owned();
    Some(match word.to_ascii_uppercase().as_str() {
        "SKIP" => Directive::Skip(reason),
        "TODO" => Directive::Todo(reason),
        "XFAIL" => Directive::Xfail(reason),
        "XPASS" => Directive::Xpass(reason),
        "TIMEOUT" => Directive::Timeout(reason),
        "ERROR" => Directive::Error(reason),
        _ => return None,
    })
}

/// Finds the first `#` not escaped with a backslash.
fn find_hash(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || b[i - 1] != b'\\'))
}

fn parse_result(rest: &str, ok: bool) -> Option<TestResult> {
    // `rest` follows "ok" / "not ok": " N[ - ]description[ # directive]"
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number = if digits > 0 {
        Some(rest[..digits].parse().ok()?)
    } else {
        None
    };
    let after = &rest[digits..];
    if digits > 0 && !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    let after = after.trim_start();
    let after = after.strip_prefix("- ").unwrap_or(after);
    let (desc, directive, comment) = match find_hash(after) {
        Some(i) => {
            let tail = &after[i + 1..];
            match parse_directive(tail) {
                Some(d) => (&after[..i], Some(d), None),
                None => (&after[..i], None, Some(tail.trim().to_owned())),
            }
        }
        None => (after, None, None),
    };
    Some(TestResult {
        number,
        ok,
        description: desc.trim().replace("\\#", "#"),
        directive,
        comment: comment.filter(|c| !c.is_empty()),
        diagnostics: Vec::new(),
        subtests: Vec::new(),
        subtest_plan: None,
        unfinished: false,
        time: None,
    })
}

fn classify(body: &str) -> Option<Line<'_>> {
    if let Some(v) = body.strip_prefix("KTAP version ") {
        return Some(Line::Version(v.trim()));
    }
    if body.starts_with("TAP version ") {
        return Some(Line::Version(body.trim()));
    }
    if let Some(rest) = body.strip_prefix("1..") {
        let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let tail = rest[n.len()..].trim_start();
        if !n.is_empty() && (tail.is_empty() || tail.starts_with('#')) {
            return n.parse().ok().map(Line::Plan);
        }
        return None;
    }
    if let Some(rest) = body.strip_prefix("not ok") {
        return parse_result(rest, false).map(Line::Result);
    }
    if let Some(rest) = body.strip_prefix("ok") {
        return parse_result(rest, true).map(Line::Result);
    }
    if let Some(rest) = body.strip_prefix("# Subtest:") {
        return Some(Line::SubtestName(rest.trim()));
    }
    if let Some(rest) = body.strip_prefix('#') {
        return Some(Line::Diagnostic(rest.trim()));
    }
    if let Some(rest) = body.strip_prefix("Bail out!") {
        return Some(Line::BailOut(rest.trim()));
    }
    None
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of KTAP lines so far.
    #[cfg(test)]
    pub fn ktap_lines(&self) -> usize {
        self.ktap_lines
    }

    /// Result lines (`ok` / `not ok`) seen so far, at any depth.
    pub fn result_lines(&self) -> usize {
        self.result_lines
    }

    /// Has the top level's plan been met (all top-level results in)?
    pub fn complete(&self) -> bool {
        if self.bail_out.is_some() {
            return true;
        }
        match self.levels.first() {
            Some(top) => {
                self.levels.len() == 1 && top.plan.is_some_and(|p| top.results.len() >= p as usize)
            }
            None => false,
        }
    }

    /// Feeds one console line that arrived `at` (since the run started);
    /// result times are measured between result lines.
    pub fn feed_at(&mut self, raw: &str, at: Duration) -> LineKind {
        self.now = Some(at);
        self.feed_inner(raw)
    }

    /// Feeds one console line (without its newline), untimed.
    #[cfg(test)]
    pub fn feed(&mut self, raw: &str) -> LineKind {
        self.now = None;
        self.feed_inner(raw)
    }

    fn feed_inner(&mut self, raw: &str) -> LineKind {
        let line = raw.trim_end_matches(['\r', '\n']).trim_end();
        let spaces = line.len() - line.trim_start_matches(' ').len();
        let body = &line[spaces..];
        let parsed = if spaces.is_multiple_of(4) {
            classify(body)
        } else {
            None
        };
        let Some(parsed) = parsed else {
            if is_crash_line(line) {
                if self.crash.is_none() {
                    self.crash = Some(line.trim().to_owned());
                }
                return LineKind::Crash;
            }
            return LineKind::Noise;
        };
        let depth = spaces / 4;
        // A nested line with no enclosing block at all is noise.
        if depth > self.levels.len() {
            return LineKind::Noise;
        }
        self.ktap_lines += 1;
        match parsed {
            Line::Version(v) => {
                if depth == 0 {
                    if self.version.is_some() && !self.levels.is_empty() {
                        self.warnings
                            .push("a second top-level KTAP version line".into());
                    }
                    self.version.get_or_insert_with(|| v.to_owned());
                }
                self.open(depth, true);
            }
            Line::Plan(n) => {
                self.open(depth, false);
                let level = &mut self.levels[depth];
                if level.plan.is_some() {
                    self.warnings
                        .push(format!("a second plan 1..{n} at depth {depth}"));
                }
                level.plan = Some(n);
            }
            Line::SubtestName(name) => {
                self.open(depth, false);
                let level = &mut self.levels[depth];
                if depth > 0 {
                    level.name = Some(name.to_owned());
                }
                level.pending_diag.push(format!("Subtest: {name}"));
            }
            Line::Diagnostic(text) => {
                self.open(depth, false);
                self.levels[depth].pending_diag.push(text.to_owned());
            }
            Line::BailOut(msg) => {
                self.bail_out.get_or_insert_with(|| msg.to_owned());
            }
            Line::Result(mut result) => {
                self.result_lines += 1;
                self.open(depth, false);
                // Close the subtest block that belongs to this result.
                if self.levels.len() > depth + 1 {
                    self.fold_deeper_than(depth + 1);
                    if let Some(sub) = self.levels.pop() {
                        result.subtests = sub.results;
                        result.subtest_plan = sub.plan;
                        result.diagnostics.extend(sub.pending_diag);
                    }
                }
                let level = &mut self.levels[depth];
                result.time = match (self.now, level.mark) {
                    (Some(now), Some(mark)) => Some(now.saturating_sub(mark)),
                    _ => None,
                };
                level.mark = self.now;
                let mut diags = std::mem::take(&mut level.pending_diag);
                diags.append(&mut result.diagnostics);
                result.diagnostics = diags;
                level.results.push(result);
            }
        }
        LineKind::Ktap
    }

    /// Makes sure a block exists at `depth`. `fresh`: a version line starts
    /// a new block there (dropping an unterminated one).
    fn open(&mut self, depth: usize, fresh: bool) {
        if fresh && depth > 0 && self.levels.len() > depth {
            let level = &self.levels[depth];
            if !level.results.is_empty() || level.plan.is_some() {
                self.fold_deeper_than(depth);
                if let Some(orphan) = self.levels.pop() {
                    self.warnings.push(format!(
                        "subtest block at depth {depth} ended without a result line ({} results dropped)",
                        orphan.results.len()
                    ));
                }
            }
        }
        while self.levels.len() <= depth {
            self.levels.push(Level {
                mark: self.now,
                ..Level::default()
            });
        }
    }

    /// Closes blocks deeper than `depth` that never got their result line,
    /// turning each into an unfinished result in its parent.
    fn fold_deeper_than(&mut self, depth: usize) {
        while self.levels.len() > depth + 1 {
            let Some(orphan) = self.levels.pop() else {
                break;
            };
            let Some(parent) = self.levels.last_mut() else {
                break;
            };
            let number = u32::try_from(parent.results.len() + 1).ok();
            parent.results.push(unfinished(orphan, number));
        }
    }

    /// Ends the stream: unterminated subtest blocks become unfinished
    /// results (the test that was running when the guest stopped).
    pub fn finish(mut self) -> Report {
        self.fold_deeper_than(0);
        let top = self.levels.pop().unwrap_or_default();
        Report {
            version: self.version,
            plan: top.plan,
            results: top.results,
            bail_out: self.bail_out,
            crash: self.crash,
            ktap_lines: self.ktap_lines,
            warnings: self.warnings,
        }
    }
}

fn unfinished(level: Level, number: Option<u32>) -> TestResult {
    TestResult {
        number,
        ok: false,
        description: level.name.unwrap_or_else(|| "(unfinished subtest)".into()),
        directive: None,
        comment: None,
        diagnostics: level.pending_diag,
        subtests: level.results,
        subtest_plan: level.plan,
        unfinished: true,
        time: None,
    }
}

/// One flattened test case (subtests named `parent.child`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub time: Option<Duration>,
    pub outcome: Outcome,
    pub diagnostics: Vec<String>,
}

/// Flattens results into cases: every leaf, plus a parent whose own failure
/// is not already explained by a failing child (e.g. `not ok` with all
/// subtests ok, or a subtest plan that was not met).
pub fn flatten(results: &[TestResult]) -> Vec<Case> {
    let mut out = Vec::new();
    for r in results {
        flatten_one(r, "", &mut out);
    }
    out
}

fn flatten_one(r: &TestResult, prefix: &str, out: &mut Vec<Case>) {
    let name = format!("{prefix}{}", r.display_name());
    if r.subtests.is_empty() {
        out.push(Case {
            name,
            time: r.time,
            outcome: r.own_outcome(),
            diagnostics: r.diagnostics.clone(),
        });
        return;
    }
    let before = out.len();
    let child_prefix = format!("{name}.");
    for s in &r.subtests {
        flatten_one(s, &child_prefix, out);
    }
    let child_failed = out[before..]
        .iter()
        .any(|c| matches!(c.outcome, Outcome::Fail(_)));
    let own = match r.subtest_plan {
        Some(p) if p as usize != r.subtests.len() && !r.unfinished => Outcome::Fail(format!(
            "subtest plan 1..{p} but {} results",
            r.subtests.len()
        )),
        _ => r.own_outcome(),
    };
    if matches!(own, Outcome::Fail(_)) && !child_failed {
        out.push(Case {
            name,
            time: r.time,
            outcome: own,
            diagnostics: r.diagnostics.clone(),
        });
    }
}

/// How the run ended, from the runner's side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnd {
    /// The overall timeout fired after this long.
    pub timed_out: Option<Duration>,
    /// The runner was interrupted by this signal (SIGINT/SIGTERM/SIGHUP).
    pub interrupted: Option<i32>,
    /// Extra failure reason from the runner (e.g. QEMU could not start).
    pub runner_error: Option<String>,
}

/// Test case counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub xfail: usize,
}

impl Counts {
    pub fn of(cases: &[Case]) -> Self {
        let mut c = Counts::default();
        for case in cases {
            match case.outcome {
                Outcome::Pass => c.passed += 1,
                Outcome::Fail(_) => c.failed += 1,
                Outcome::Skip(_) => c.skipped += 1,
                Outcome::Xfail(_) => c.xfail += 1,
            }
        }
        c
    }
}

/// The verdict: `pass` only if a top-level plan was seen, the number of
/// top-level results equals it, nothing failed (no `not ok` without a
/// SKIP/XFAIL/TODO directive, no XPASS), no bail-out, no kernel crash, no
/// timeout and no interruption. QEMU's exit status plays no part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub pass: bool,
    /// Why it failed (empty on pass): `run_reasons`, then failed cases.
    pub reasons: Vec<String>,
    /// Failure reasons that are not a failed test case (timeout, crash,
    /// missing plan, ...).
    pub run_reasons: Vec<String>,
    pub cases: Vec<Case>,
    pub counts: Counts,
}

pub fn verdict(report: &Report, end: &RunEnd) -> Verdict {
    let cases = flatten(&report.results);
    let counts = Counts::of(&cases);
    let mut reasons = Vec::new();
    if let Some(e) = &end.runner_error {
        reasons.push(e.clone());
    }
    if let Some(sig) = end.interrupted {
        reasons.push(format!("interrupted by signal {sig}"));
    }
    if let Some(t) = end.timed_out {
        reasons.push(format!("timed out after {} s", t.as_secs()));
    }
    if let Some(c) = &report.crash {
        reasons.push(format!("kernel crash: {c}"));
    }
    if let Some(b) = &report.bail_out {
        reasons.push(format!("guest bailed out: {b}"));
    }
    let top = report.results.iter().filter(|r| !r.unfinished).count();
    match report.plan {
        // The runner already said why nothing ran.
        None if report.ktap_lines == 0 && end.runner_error.is_some() => {}
        None if report.ktap_lines == 0 => {
            reasons.push("no KTAP output from the guest".into());
        }
        None => reasons.push("no top-level KTAP plan (1..N) from the guest".into()),
        Some(p) if p as usize != top => {
            reasons.push(format!("plan 1..{p} but {top} top-level results"));
        }
        Some(_) => {}
    }
    let run_reasons = reasons.clone();
    if counts.failed > 0 {
        let names: Vec<&str> = cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .map(|c| c.name.as_str())
            .take(5)
            .collect();
        let more = if counts.failed > names.len() {
            ", ..."
        } else {
            ""
        };
        reasons.push(format!(
            "{} failed: {}{more}",
            counts.failed,
            names.join(", ")
        ));
    }
    Verdict {
        pass: reasons.is_empty(),
        reasons,
        run_reasons,
        cases,
        counts,
    }
}

#[cfg(test)]
#[path = "ktap_tests.rs"]
mod tests;
