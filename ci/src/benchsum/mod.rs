//! `zonecopy-ci bench-summary FILE...`: the summary of bench logs
//! (`scripts/bench.sh` prints it after a run, and for `--table`).
//!
//! The logs are read once into [`parse::Record`]s ([`parse`]); each
//! section of the summary has its renderer ([`render`]), and issue 17's
//! targets, with their thresholds, are in [`targets`]. A section whose
//! lines are missing is left out; a summary with none of them says
//! `no # bench lines`.

mod parse;
mod render;
mod targets;
#[cfg(test)]
mod tests;

use std::io::Write as _;

use parse::{BenchLine, Kind, Record, RunLine};

use crate::cli::BenchSummaryArgs;

/// The records of the logs, by what the sections ask of them.
struct Logs<'a> {
    engine: Vec<&'a str>,
    ledger: Vec<&'a str>,
    runs: Vec<&'a RunLine>,
    benches: Vec<&'a BenchLine>,
}

impl<'a> Logs<'a> {
    fn new(records: &'a [Record]) -> Self {
        let mut l = Logs {
            engine: Vec::new(),
            ledger: Vec::new(),
            runs: Vec::new(),
            benches: Vec::new(),
        };
        for r in records {
            match r {
                Record::Engine(s) => l.engine.push(s),
                Record::Ledger(s) => l.ledger.push(s),
                Record::Run(r) => l.runs.push(r),
                Record::Bench(b) => l.benches.push(b),
            }
        }
        l
    }

    /// The `# bench` lines for which `pick` holds, in log order.
    fn of<'s, F>(&'s self, pick: F) -> impl Iterator<Item = &'a BenchLine> + 's
    where
        F: Fn(Kind<'_>) -> bool + 's,
    {
        self.benches.iter().copied().filter(move |b| pick(b.kind()))
    }

    /// The last `# bench` line of kind `kind` (a later line replaces an
    /// earlier one).
    fn last_of(&self, kind: Kind<'_>) -> Option<&'a BenchLine> {
        self.of(|k| k == kind).last()
    }

    /// The last `# bench NAME` line.
    fn last_named(&self, name: &str) -> Option<&'a BenchLine> {
        self.benches.iter().copied().rfind(|b| b.name == name)
    }

    /// The first runner line of `suite` (the run whose console log the
    /// boot breakdown reads).
    fn first_run(&self, suite: &str) -> Option<&'a RunLine> {
        self.runs.iter().copied().find(|r| r.suite == suite)
    }
}

/// The summary of `text`, the logs concatenated.
pub fn summarize(text: &str) -> String {
    let records = parse::parse(text);
    let logs = Logs::new(&records);
    let mut out = String::new();
    let o = &mut out;
    // Every section but the boot breakdown counts as a `# bench` line.
    let mut any = [
        render::recording(&logs, o),
        render::engine(&logs, o),
        render::startup(&logs, o),
        render::copies(&logs, o),
        render::cfr(&logs, o),
        render::fio(&logs, o),
        render::timing(&logs, o),
        render::ledger(&logs, o),
        render::network(&logs, o),
    ]
    .contains(&true);
    render::boot(&logs, o);
    any |= targets::render(&logs, o);
    if !any {
        out.push_str("no # bench lines\n");
    }
    out
}

pub fn cmd_bench_summary(a: &BenchSummaryArgs) -> i32 {
    let mut text = Vec::new();
    let mut status = 0;
    for f in &a.files {
        match std::fs::read(f) {
            Ok(b) => text.extend(b),
            Err(e) => {
                eprintln!("zonecopy-ci bench-summary: {}: {e}", f.display());
                status = 1;
            }
        }
    }
    let summary = summarize(&String::from_utf8_lossy(&text));
    if let Err(e) = std::io::stdout().lock().write_all(summary.as_bytes()) {
        eprintln!("zonecopy-ci bench-summary: stdout: {e}");
        return 1;
    }
    status
}
