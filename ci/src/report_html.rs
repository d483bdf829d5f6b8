//! The HTML page of `zonecopy-ci report`: one self-contained file (inline
//! CSS and SVG, no scripts, nothing fetched), with `data-*` attributes on
//! the table cells so a browser's DOM can be checked against the runs.

use std::{fmt::Write as _, path::Path};

use crate::{
    junit::escape,
    report::{bench_table, cell_text, column, known_bugs_by_kernel, pivot, Bench, Run},
};

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#eee}.PASS{background:#d9f2d9}.FAIL{background:#f7d4d4}\
.ERROR{background:#f7e3c4}.num{text-align:right}pre{margin:.2em 0;color:#555}\
svg{display:block;margin:.5em 0 1.5em}";

/// A link to a run's file, relative to the report when it can be.
fn href(report_dir: &Path, file: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(report_dir), abs(file));
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let mut rel = "../".repeat(ups);
    let rest: Vec<String> = to
        .components()
        .skip(common)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    rel.push_str(&rest.join("/"));
    escape(&rel)
}

/// The page.
pub fn page(
    runs: &[Run],
    title: &str,
    generated: &str,
    report_dir: &Path,
    coverage: &[String],
) -> String {
    let mut h = String::new();
    let passed = runs.iter().filter(|r| r.pass).count();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n\
         <p id=\"summary\" data-runs=\"{}\" data-passed=\"{passed}\">{} runs, {passed} passed; generated {}.</p>\n",
        runs.len(),
        runs.len(),
        escape(generated),
        t = escape(title)
    );
    if !coverage.is_empty() {
        h.push_str("<ul id=\"coverage\">");
        for c in coverage {
            let class = if c.contains("INCOMPLETE") {
                " class=\"FAIL\""
            } else {
                ""
            };
            let _ = write!(h, "<li{class}>{}</li>", escape(c));
        }
        h.push_str("</ul>\n");
    }
    results(&mut h, runs);
    runs_table(&mut h, runs, report_dir);
    bugs(&mut h, runs);
    failures(&mut h, runs);
    benches(&mut h, runs);
    h.push_str("</body></html>\n");
    h
}

fn results(h: &mut String, runs: &[Run]) {
    let (kernels, cols, cells) = pivot(runs);
    h.push_str("<h2>Kernel x suite</h2>\n<table id=\"results\"><tr><th>kernel</th>");
    for c in &cols {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>\n");
    for (ki, k) in kernels.iter().enumerate() {
        let _ = write!(h, "<tr><th>{}</th>", escape(k));
        for (ci, c) in cols.iter().enumerate() {
            let Some(ix) = cells.get(&(ki, ci)) else {
                h.push_str("<td>-</td>");
                continue;
            };
            // One cell per kernel and suite; repeated runs one under another.
            h.push_str("<td>");
            for (n, &i) in ix.iter().enumerate() {
                let r = &runs[i];
                let [p, f, s, x] = r.counts;
                if n > 0 {
                    h.push_str("<br>");
                }
                let _ = write!(
                    h,
                    "<span class=\"cell {st}\" data-kernel=\"{}\" data-suite=\"{}\" data-column=\"{}\" \
                     data-status=\"{st}\" data-passed=\"{p}\" data-failed=\"{f}\" data-skipped=\"{s}\" \
                     data-xfail=\"{x}\">{}</span>",
                    escape(&r.kernel),
                    escape(&r.suite),
                    escape(c),
                    escape(&cell_text(r)),
                    st = escape(&r.status)
                );
            }
            h.push_str("</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<p>Cells: verdict passed/failed/skipped/xfail (expected failures of known bugs).</p>\n");
}

fn runs_table(h: &mut String, runs: &[Run], report_dir: &Path) {
    h.push_str(
        "<h2>Runs</h2>\n<table id=\"runs\"><tr><th>kernel</th><th>version / commit</th><th>suite</th>\
         <th>verdict</th><th>pass</th><th>fail</th><th>skip</th><th>xfail</th><th>boot s</th>\
         <th>total s</th><th>logs</th></tr>\n",
    );
    for r in runs {
        let f = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
        let version = match (&r.commit, &r.release) {
            (Some(c), Some(v)) => format!("{} ({v})", &c[..12.min(c.len())]),
            (Some(c), None) => c.clone(),
            (None, v) => v.clone().unwrap_or_default(),
        };
        let [p, fl, s, x] = r.counts;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{st}\">{st}</td><td class=\"num\">{p}</td>\
             <td class=\"num\">{fl}</td><td class=\"num\">{s}</td><td class=\"num\">{x}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td><a href=\"{}\">console</a> \
             <a href=\"{}\">junit</a> <a href=\"{}\">kcidb</a></td></tr>",
            escape(&r.kernel),
            escape(&version),
            escape(&column(r)),
            f(r.boot_s),
            f(r.total_s),
            href(report_dir, &r.dir.join("console.log")),
            href(report_dir, &r.dir.join("junit.xml")),
            href(report_dir, &r.dir.join("kcidb.json")),
            st = escape(&r.status)
        );
    }
    h.push_str("</table>\n");
}

fn bugs(h: &mut String, runs: &[Run]) {
    let bugs = known_bugs_by_kernel(runs);
    if bugs.is_empty() {
        return;
    }
    h.push_str("<h2>Known bugs hit (expected failures)</h2>\n<table id=\"known-bugs\"><tr><th>kernel</th><th>bug</th><th>tests</th><th>what</th></tr>\n");
    for (k, b, what, tests) in bugs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td title=\"{}\">{}</td><td>{}</td></tr>",
            escape(&k),
            escape(&b),
            escape(&tests.join(" ")),
            tests.len(),
            escape(&what)
        );
    }
    h.push_str("</table>\n");
}

fn failures(h: &mut String, runs: &[Run]) {
    let failed: Vec<&Run> = runs.iter().filter(|r| !r.failures.is_empty()).collect();
    if failed.is_empty() {
        return;
    }
    h.push_str("<h2>Failures</h2>\n");
    for r in failed {
        let _ = writeln!(
            h,
            "<h3>{} on {} ({})</h3><ul>",
            escape(&column(r)),
            escape(&r.kernel),
            escape(&r.status)
        );
        for f in &r.failures {
            let _ = write!(
                h,
                "<li><code>{}</code> {}: {}",
                escape(&f.path),
                escape(&f.status),
                escape(&f.comment)
            );
            if !f.evidence.is_empty() {
                let _ = write!(h, "<pre>{}</pre>", escape(&f.evidence.join("\n")));
            }
            h.push_str("</li>\n");
        }
        h.push_str("</ul>\n");
    }
}

fn benches(h: &mut String, runs: &[Run]) {
    let rows = bench_table(runs);
    if rows.is_empty() {
        return;
    }
    h.push_str("<h2>Benchmarks</h2>\n");
    if let Some(svg) = offload_svg(&rows) {
        h.push_str("<h3>Copy: offload vs read+write fallback</h3>\n");
        h.push_str(&svg);
    }
    let mut names: Vec<&str> = Vec::new();
    for (_, b) in &rows {
        if !names.contains(&b.name.as_str()) {
            names.push(&b.name);
        }
    }
    for name in names {
        let of: Vec<(String, &Bench)> = rows
            .iter()
            .filter(|(_, b)| b.name == name)
            .map(|(r, b)| (r.clone(), *b))
            .collect();
        let _ = writeln!(h, "<h3>{}</h3>", escape(name));
        h.push_str(&bench_svg(name, &of));
    }
}

/// Numeric keys of a bench line worth a bar (times, rates, ratios).
fn plottable(key: &str) -> bool {
    !matches!(key, "dev" | "bytes") && !key.ends_with("_bytes") && !key.ends_with("_cmds")
}

/// Offload against the read+write fallback: for every bench line with
/// both `offload_s` and `readwrite_s`, the two times side by side on one
/// scale, per run (kernel, suite, transport in the label).
pub fn offload_svg(rows: &[(String, &Bench)]) -> Option<String> {
    let get = |b: &Bench, k: &str| {
        b.values
            .iter()
            .find(|(kk, _)| kk == k)
            .and_then(|(_, v)| v.parse::<f64>().ok())
    };
    let pairs: Vec<(String, f64, f64)> = rows
        .iter()
        .filter_map(|(run, b)| {
            Some((
                format!("{run} {}", b.name),
                get(b, "offload_s")?,
                get(b, "readwrite_s")?,
            ))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let max = pairs.iter().fold(0.0_f64, |m, p| m.max(p.1).max(p.2));
    let (bar, label_w, plot_w) = (13.0, 300.0, 330.0);
    let height = pairs.len() as f64 * (2.0 * bar + 12.0) + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"offload-vs-fallback\" width=\"{}\" height=\"{height:.0}\" \
         role=\"img\" aria-label=\"offload vs read+write seconds\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect x=\"{label_w}\" y=\"2\" width=\"10\" height=\"10\" fill=\"#2e8b57\"/><text x=\"{}\" y=\"11\">offload s</text>\
         <rect x=\"{}\" y=\"2\" width=\"10\" height=\"10\" fill=\"#c0504d\"/><text x=\"{}\" y=\"11\">read+write s</text>\n",
        label_w + plot_w + 90.0,
        label_w + 14.0,
        label_w + 90.0,
        label_w + 104.0
    );
    let mut y = 22.0;
    for (label, off, rw) in &pairs {
        let _ = writeln!(
            s,
            "<text x=\"0\" y=\"{:.1}\">{}</text>",
            y + bar + 3.0,
            escape(label)
        );
        for (v, colour) in [(off, "#2e8b57"), (rw, "#c0504d")] {
            let w = if max > 0.0 { v / max * plot_w } else { 0.0 };
            let _ = writeln!(
                s,
                "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{v}</text>",
                label_w + w + 4.0,
                y + 10.0
            );
            y += bar;
        }
        y += 12.0;
    }
    s.push_str("</svg>\n");
    Some(s)
}

/// One SVG per bench name: a block per numeric key, a bar per run,
/// scaled to that key's largest value, with the number beside it.
pub fn bench_svg(name: &str, of: &[(String, &Bench)]) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for (_, b) in of {
        for (k, v) in &b.values {
            if plottable(k) && v.parse::<f64>().is_ok() && !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    let (bar, gap, label_w, plot_w) = (14.0, 22.0, 230.0, 330.0);
    let block = |n: usize| gap + bar * 1.4 * n as f64;
    let height: f64 = keys.len() as f64 * block(of.len()) + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"bench\" data-bench=\"{}\" width=\"{}\" height=\"{height:.0}\" \
         role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        escape(name),
        label_w + plot_w + 90.0,
        escape(name)
    );
    let mut y = 0.0;
    for k in keys {
        let vals: Vec<Option<f64>> = of
            .iter()
            .map(|(_, b)| {
                b.values
                    .iter()
                    .find(|(kk, _)| kk == k)
                    .and_then(|(_, v)| v.parse().ok())
            })
            .collect();
        let max = vals.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
        let _ = writeln!(
            s,
            "<text x=\"0\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            y + 14.0,
            escape(k)
        );
        y += gap;
        for ((run, _), v) in of.iter().zip(&vals) {
            let w = match v {
                Some(v) if max > 0.0 => v.abs() / max * plot_w,
                _ => 0.0,
            };
            let _ = writeln!(
                s,
                "<text x=\"8\" y=\"{:.1}\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bar}\" fill=\"#4a7fb5\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                y + 11.0,
                escape(run),
                label_w + w + 4.0,
                y + 11.0,
                v.map_or_else(|| "-".into(), |v| format!("{v}"))
            );
            y += bar * 1.4;
        }
    }
    s.push_str("</svg>\n");
    s
}
