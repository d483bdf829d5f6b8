//! JUnit XML: one `<testsuite>` per suite run (suite x kernel), one
//! `<testcase>` per flattened KTAP result (`parent.child`), plus a
//! `(run)` test case carrying failures that are not a test case's (timeout,
//! kernel crash, missing plan). The console excerpt goes to `<system-out>`.

use std::{fmt::Write as _, time::Duration};

use crate::ktap::{Outcome, Verdict};

/// One suite run, ready to be written.
#[derive(Debug, Clone)]
pub struct SuiteRecord {
    pub suite: String,
    pub kernel: String,
    /// ISO 8601 start time (UTC).
    pub timestamp: String,
    pub total: Duration,
    pub verdict: Verdict,
    pub properties: Vec<(String, String)>,
    /// Tail of the console log.
    pub console_excerpt: String,
}

/// Escapes text for XML 1.0 element content and attribute values. Characters
/// XML 1.0 cannot carry at all (most C0 controls, e.g. the ESC of terminal
/// colour codes on the console) are written as `\xNN`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Renders a complete JUnit document for the given suite runs.
pub fn render(records: &[SuiteRecord]) -> String {
    let mut tests = 0;
    let mut failures = 0;
    let mut skipped = 0;
    let mut time = Duration::ZERO;
    let mut body = String::new();
    for r in records {
        let (t, f, s) = render_suite(r, &mut body);
        tests += t;
        failures += f;
        skipped += s;
        time += r.total;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"zonecopy\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\">\n\
         {body}</testsuites>\n",
        secs(time)
    )
}

fn render_suite(r: &SuiteRecord, out: &mut String) -> (usize, usize, usize) {
    let classname = escape(&format!("{}.{}", r.suite, r.kernel));
    let mut cases = String::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for case in &r.verdict.cases {
        tests += 1;
        let name = escape(&case.name);
        let details = escape(&case.diagnostics.join("\n"));
        let _ = write!(
            cases,
            "    <testcase classname=\"{classname}\" name=\"{name}\" time=\"{}\"",
            secs(case.time.unwrap_or_default())
        );
        match &case.outcome {
            Outcome::Pass => cases.push_str("/>\n"),
            Outcome::Fail(reason) => {
                failures += 1;
                let _ = write!(
                    cases,
                    ">\n      <failure message=\"{}\" type=\"ktap\">{details}</failure>\n    </testcase>\n",
                    escape(reason)
                );
            }
            Outcome::Skip(reason) => {
                skipped += 1;
                let _ = write!(
                    cases,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    escape(reason)
                );
            }
            Outcome::Xfail(reason) => {
                // Expected failure: passes, and says so.
                let _ = write!(
                    cases,
                    ">\n      <system-out>XFAIL {}\n{details}</system-out>\n    </testcase>\n",
                    escape(reason)
                );
            }
        }
    }
    if !r.verdict.run_reasons.is_empty() {
        tests += 1;
        failures += 1;
        let msg = escape(&r.verdict.run_reasons.join("; "));
        let _ = write!(
            cases,
            "    <testcase classname=\"{classname}\" name=\"(run)\" time=\"{}\">\n      <failure message=\"{msg}\" type=\"run\">{msg}</failure>\n    </testcase>\n",
            secs(r.total)
        );
    }
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
        escape(&format!("{} on {}", r.suite, r.kernel)),
        secs(r.total),
        escape(&r.timestamp)
    );
    if !r.properties.is_empty() {
        out.push_str("    <properties>\n");
        for (k, v) in &r.properties {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                escape(k),
                escape(v)
            );
        }
        out.push_str("    </properties>\n");
    }
    out.push_str(&cases);
    let _ = writeln!(
        out,
        "    <system-out>{}</system-out>",
        escape(&r.console_excerpt)
    );
    out.push_str("  </testsuite>\n");
    (tests, failures, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ktap::{verdict, Parser, RunEnd};

    fn record(ktap: &str, end: &RunEnd) -> SuiteRecord {
        let mut p = Parser::new();
        for l in ktap.lines() {
            p.feed(l);
        }
        SuiteRecord {
            suite: "smoke".into(),
            kernel: "6.1".into(),
            timestamp: "2026-11-25T18:00:00Z".into(),
            total: Duration::from_millis(9800),
            verdict: verdict(&p.finish(), end),
            properties: vec![("kernel_path".into(), "/k/<vmlinux>".into())],
            console_excerpt: "boot \x1b[1mbold\x1b[0m & done".into(),
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a<b>&\"c\" 'd'\x1b\x00\tok\n"),
            "a&lt;b&gt;&amp;&quot;c&quot; &apos;d&apos;\\x1b\\x00\tok\n"
        );
    }

    #[test]
    fn document() {
        let r = record(
            "KTAP version 1\n1..3\n# why: <expected 0>\nnot ok 1 zones & \"more\"\n\
             ok 2 copy # SKIP no BLKCPY\nnot ok 3 x # XFAIL bug\n",
            &RunEnd::default(),
        );
        let xml = render(&[r]);
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<testsuites name=\"zonecopy\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"9.800\">\n\
\x20 <testsuite name=\"smoke on 6.1\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"9.800\" timestamp=\"2026-11-25T18:00:00Z\">\n\
\x20   <properties>\n\
\x20     <property name=\"kernel_path\" value=\"/k/&lt;vmlinux&gt;\"/>\n\
\x20   </properties>\n\
\x20   <testcase classname=\"smoke.6.1\" name=\"zones &amp; &quot;more&quot;\" time=\"0.000\">\n\
\x20     <failure message=\"not ok\" type=\"ktap\">why: &lt;expected 0&gt;</failure>\n\
\x20   </testcase>\n\
\x20   <testcase classname=\"smoke.6.1\" name=\"copy\" time=\"0.000\">\n\
\x20     <skipped message=\"no BLKCPY\"/>\n\
\x20   </testcase>\n\
\x20   <testcase classname=\"smoke.6.1\" name=\"x\" time=\"0.000\">\n\
\x20     <system-out>XFAIL bug\n</system-out>\n\
\x20   </testcase>\n\
\x20   <system-out>boot \\x1b[1mbold\\x1b[0m &amp; done</system-out>\n\
\x20 </testsuite>\n\
</testsuites>\n";
        assert_eq!(xml, expected);
    }

    #[test]
    fn run_level_failure_is_a_test_case() {
        let end = RunEnd {
            timed_out: Some(Duration::from_secs(5)),
            ..RunEnd::default()
        };
        let xml = render(&[record("KTAP version 1\n1..2\nok 1 a\n", &end)]);
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml.contains(
            "name=\"(run)\" time=\"9.800\">\n      <failure message=\"timed out after 5 s; plan 1..2 but 1 top-level results\" type=\"run\">"
        ));
    }
}
