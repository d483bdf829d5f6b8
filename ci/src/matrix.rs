//! `zonecopy-ci matrix`: the expanded matrix (kernels x suites x
//! personalities x transports, see [`crate::shard`]) or one shard of it,
//! run cell by cell with a progress line; a table and a combined junit.xml
//! at the end, each run's own junit.xml and kcidb.json in its directory.

use std::fs;

use crate::{
    cli::MatrixArgs,
    coverage,
    junit::{self, SuiteRecord},
    progress::Progress,
    shard::{self, Cell},
    suite::{
        default_out, kernel_label, prebuild_tree, run_suite, say, signal_exit, SuiteJob, SuiteRun,
    },
    timing,
};

/// `matrix-<suites>[-shard-K-of-N]`
fn default_name(a: &MatrixArgs) -> String {
    let mut s = format!("matrix-{}", a.suites.join("+"));
    if let Some(sh) = a.shard {
        s.push_str(&format!("-shard-{}-of-{}", sh.index, sh.count));
    }
    s
}

/// The final line counts suite runs (cells), not test cases.
pub fn cmd_matrix(a: &MatrixArgs) -> i32 {
    let all = match shard::expand(&a.kernels, &a.suites, &a.personalities, &a.transports) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zonecopy-ci matrix: {e}");
            return 2;
        }
    };
    if a.list {
        say(shard::listing(&all, a.shard.map(|s| s.count)).trim_end());
        return 0;
    }
    let cells = shard::slice(&all, a.shard);
    let out = a
        .run
        .limits
        .out
        .clone()
        .unwrap_or_else(|| default_out(&default_name(a)));
    if let Err(e) = fs::create_dir_all(&out) {
        eprintln!("zonecopy-ci matrix: cannot create {}: {e}", out.display());
        return 1;
    }
    let names: Vec<String> = cells
        .iter()
        .map(|c| c.dir_name(&kernel_label(&c.kernel)))
        .collect();
    let axes = [
        &a.kernels[..],
        &a.suites[..],
        &a.personalities[..],
        &a.transports[..],
    ];
    let doc = coverage::document(axes, all.len(), a.shard, &names);
    if let Err(e) = fs::write(out.join(coverage::FILE), doc.to_string() + "\n") {
        eprintln!(
            "warning: cannot write {}: {e}",
            out.join(coverage::FILE).display()
        );
    }
    let which = a
        .shard
        .map_or_else(String::new, |s| format!(" (shard {s})"));
    say(&format!(
        "matrix: {} of {} cells{which}",
        cells.len(),
        all.len()
    ));
    let progress = Progress::new(cells.len(), a.run.vm.verbose);
    let mut runs = Vec::new();
    let mut interrupted = None;
    for (i, cell) in cells.iter().enumerate() {
        let tick = progress.step(i + 1, &cell.to_string());
        let run = match run_cell(a, cell, &out) {
            Ok(r) => r,
            Err(e) => {
                drop(tick);
                eprintln!("zonecopy-ci matrix: {e}");
                return 1;
            }
        };
        tick.done(if run.pass() { "PASS" } else { "FAIL" });
        say(&run.summary());
        interrupted = run.interrupted;
        runs.push(run);
        if interrupted.is_some() {
            break;
        }
    }
    let records: Vec<SuiteRecord> = runs.iter().map(|r| r.record.clone()).collect();
    if let Err(e) = fs::write(out.join("junit.xml"), junit::render(&records)) {
        eprintln!(
            "warning: cannot write {}: {e}",
            out.join("junit.xml").display()
        );
    }
    say(&matrix_table(&runs));
    let passed = runs.iter().filter(|r| r.pass()).count();
    let failed = runs.len() - passed;
    say(&format!(
        "{passed} passed, {failed} failed (suite runs; logs in {})",
        out.display()
    ));
    match interrupted {
        Some(sig) => signal_exit(sig),
        None => i32::from(failed > 0 || runs.len() < cells.len()),
    }
}

fn run_cell(a: &MatrixArgs, cell: &Cell, out: &std::path::Path) -> Result<SuiteRun, String> {
    let (k, mut vm) = prebuild_tree(&cell.kernel, &a.run.vm)?;
    if cell.personality.is_some() {
        vm.personality.clone_from(&cell.personality);
    }
    let dir = out.join(cell.dir_name(&kernel_label(&cell.kernel)));
    Ok(run_suite(&SuiteJob::new(
        &vm,
        &k,
        &cell.suite,
        &a.run.limits,
        a.run.net,
        &dir,
    )))
}

fn matrix_table(runs: &[SuiteRun]) -> String {
    let mut rows = vec![[
        "kernel", "suite", "verdict", "pass", "fail", "skip", "xfail", "boot", "total",
    ]
    .map(str::to_owned)];
    for r in runs {
        let c = r.record.verdict.counts;
        rows.push([
            r.record.kernel.clone(),
            r.record.suite.clone(),
            if r.pass() { "PASS" } else { "FAIL" }.to_owned(),
            c.passed.to_string(),
            c.failed.to_string(),
            c.skipped.to_string(),
            c.xfail.to_string(),
            r.boot.map_or_else(|| "-".to_owned(), timing::secs),
            timing::secs(r.record.total),
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    rows.iter()
        .map(|row| {
            row.iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
