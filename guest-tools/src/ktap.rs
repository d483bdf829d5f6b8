//! KTAP version 1 writer (Documentation/dev-tools/ktap.rst in the kernel).
//!
//! Every line is written with one `write_all` and flushed at once, so a
//! guest that dies mid-suite still leaves every finished result on the
//! console, and kernel console messages do not split a line of ours.
//!
//! ```text
//! KTAP version 1
//! 1..2
//! ok 1 config
//!     KTAP version 1
//!     # Subtest: lun0
//!     1..2
//!     ok 1 present
//!     not ok 2 zoned_model # queue/zoned is "none", expected "host-managed"
//! not ok 2 lun0
//! ```
//!
//! Result lines: `ok N name`, `not ok N name # reason`, `ok N name # SKIP
//! reason`. Expected failures follow kselftest: a test that fails as expected
//! prints `ok N name # XFAIL reason`; one that passes although a failure was
//! expected prints `not ok N name # XPASS reason`, so it counts as an error
//! and someone looks at why the known bug went away. The runner
//! ([`crate::runner`]) decides which.

use std::io::{self, Write};

/// What a test found, before any expected-failure annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything the test asserted held.
    Pass,
    /// An assertion failed; the reason says which and with what values.
    Fail(String),
    /// The test could not run (missing prerequisite, not configured).
    Skip(String),
}

/// The outcome of one check inside a test: `Err` carries the verdict of a
/// test that did not pass. Shared by every suite.
pub type Step = Result<(), Verdict>;

/// Run a test body, turning a panic into `on_panic(message)`: one broken
/// test must not take the suite's KTAP plan down with it.
pub fn catch<T>(f: impl FnOnce() -> T, on_panic: impl FnOnce(String) -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        on_panic(msg)
    })
}

/// [`catch`] for a test step: a panic is a failure naming its message.
pub fn catch_step<T>(f: impl FnOnce() -> Result<T, Verdict>) -> Result<T, Verdict> {
    catch(f, |msg| Err(Verdict::Fail(format!("panicked: {msg}"))))
}

/// `Ok` if `cond` holds, else a failure with the message.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Step {
    if cond {
        Ok(())
    } else {
        Err(Verdict::Fail(msg()))
    }
}

/// Map an error to a failure that says what was being done.
pub fn fail<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> Verdict + '_ {
    move |e| Verdict::Fail(format!("{what}: {e}"))
}

impl Verdict {
    /// Shorthand for `Verdict::Fail(reason.into())`.
    pub fn fail(reason: impl Into<String>) -> Self {
        Self::Fail(reason.into())
    }

    /// Shorthand for `Verdict::Skip(reason.into())`.
    pub fn skip(reason: impl Into<String>) -> Self {
        Self::Skip(reason.into())
    }
}

/// The one-result document of a SCSI suite started without LUNs on the
/// kernel command line: `1..1`, `not ok 1 config # ...`. Returns `false`
/// (the suite failed) for the caller to pass on.
pub fn no_luns<W: Write>(k: &mut Ktap<W>) -> io::Result<bool> {
    k.plan(1)?;
    k.result(
        "config",
        &Outcome::Fail("no zonecopy.lun<N>= on the kernel command line".into()),
    )?;
    Ok(false)
}

/// A test's final result, as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ok N name`
    Pass,
    /// `not ok N name # reason`
    Fail(String),
    /// `ok N name # SKIP reason`
    Skip(String),
    /// `ok N name # XFAIL reason`: failed, as expected.
    XFail(String),
    /// `not ok N name # XPASS reason`: passed although a failure was expected.
    XPass(String),
}

impl Outcome {
    /// Whether this result counts against the run (`not ok`).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Fail(_) | Self::XPass(_))
    }
}

impl From<Verdict> for Outcome {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Pass => Self::Pass,
            Verdict::Fail(r) => Self::Fail(r),
            Verdict::Skip(r) => Self::Skip(r),
        }
    }
}

/// One level of nesting: its test counter and whether anything failed.
#[derive(Debug, Default)]
struct Level {
    name: String,
    next: u32,
    failed: bool,
}

/// Writes a KTAP v1 document; subtests nest by four spaces.
#[derive(Debug)]
pub struct Ktap<W: Write> {
    out: W,
    levels: Vec<Level>,
}

/// Test names and reasons stay on one line and never contain a `#`, which
/// would start a directive.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '#' => '_',
            c if c.is_control() => '?',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// A failure reason must not be mistaken for a directive (`# SKIP ...`;
/// the runner also knows `TIMEOUT` and `ERROR`).
fn clean_reason(s: &str) -> String {
    let r = clean(s);
    let first = r
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if matches!(
        first.as_str(),
        "SKIP" | "TODO" | "XFAIL" | "XPASS" | "TIMEOUT" | "ERROR"
    ) {
        format!("failed: {r}")
    } else {
        r
    }
}

impl<W: Write> Ktap<W> {
    /// Start a document: prints `KTAP version 1`.
    pub fn new(out: W) -> io::Result<Self> {
        let mut k = Self {
            out,
            levels: vec![Level::default()],
        };
        k.line("KTAP version 1")?;
        Ok(k)
    }

    /// Give back the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Current nesting depth (0 = top level).
    pub fn depth(&self) -> usize {
        self.levels.len() - 1
    }

    /// Whether any result at the current level was `not ok` so far.
    pub fn failed(&self) -> bool {
        self.levels.last().is_some_and(|l| l.failed)
    }

    fn line(&mut self, text: &str) -> io::Result<()> {
        let indent = "    ".repeat(self.depth());
        let mut buf = String::with_capacity(indent.len() + text.len() + 1);
        buf.push_str(&indent);
        buf.push_str(text);
        buf.push('\n');
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }

    /// The plan `1..count` for the current level.
    pub fn plan(&mut self, count: u32) -> io::Result<()> {
        self.line(&format!("1..{count}"))
    }

    /// A diagnostic line `# text` (one per input line).
    pub fn diag(&mut self, text: &str) -> io::Result<()> {
        for l in text.lines() {
            let l = l.replace(['\r', '\t'], " ");
            self.line(format!("# {}", l.trim_end()).trim_end())?;
        }
        Ok(())
    }

    /// Print the next result at the current level; returns its number.
    pub fn result(&mut self, name: &str, outcome: &Outcome) -> io::Result<u32> {
        let level = self
            .levels
            .last_mut()
            .ok_or_else(|| io::Error::other("no KTAP level"))?;
        level.next += 1;
        let n = level.next;
        if outcome.is_failure() {
            level.failed = true;
        }
        let name = clean(name);
        let text = match outcome {
            Outcome::Pass => format!("ok {n} {name}"),
            Outcome::Fail(r) => match clean_reason(r) {
                r if r.is_empty() => format!("not ok {n} {name}"),
                r => format!("not ok {n} {name} # {r}"),
            },
            Outcome::Skip(r) => format!("ok {n} {name} # SKIP {}", clean(r)),
            Outcome::XFail(r) => format!("ok {n} {name} # XFAIL {}", clean(r)),
            Outcome::XPass(r) => format!("not ok {n} {name} # XPASS {}", clean(r)),
        };
        self.line(text.trim_end())?;
        Ok(n)
    }

    /// Open a nested subtest: prints the indented `KTAP version 1` and
    /// `# Subtest: name`; follow with [`Ktap::plan`] and results, then
    /// [`Ktap::end_subtest`].
    pub fn begin_subtest(&mut self, name: &str) -> io::Result<()> {
        self.levels.push(Level {
            name: clean(name),
            ..Level::default()
        });
        self.line("KTAP version 1")?;
        self.line(&format!("# Subtest: {}", clean(name)))
    }

    /// Close the innermost subtest and print its result line in the parent:
    /// `not ok` if any of its results was `not ok`, else `ok`. Returns the
    /// outcome printed.
    pub fn end_subtest(&mut self) -> io::Result<Outcome> {
        if self.levels.len() < 2 {
            return Err(io::Error::other("end_subtest without begin_subtest"));
        }
        let level = self.levels.pop().unwrap_or_default();
        if level.failed {
            // The reasons are on the child lines; the parent line stays terse.
            let outcome = Outcome::Fail(String::new());
            self.result(&level.name, &outcome)?;
            Ok(outcome)
        } else {
            self.result(&level.name, &Outcome::Pass)?;
            Ok(Outcome::Pass)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_step_is_a_failure_with_its_message() {
        assert_eq!(
            catch_step(|| -> Step { panic!("boom {}", 7) }),
            Err(Verdict::Fail("panicked: boom 7".into()))
        );
        assert_eq!(
            catch_step(|| -> Step { panic!("plain") }),
            Err(Verdict::Fail("panicked: plain".into()))
        );
        assert_eq!(catch_step(|| Ok(3)), Ok(3));
        assert_eq!(catch(|| 1, |_| 2), 1);
    }

    fn text(k: Ktap<Vec<u8>>) -> String {
        String::from_utf8(k.into_inner()).unwrap()
    }

    #[test]
    fn header_plan_and_results() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(5).unwrap();
        k.result("a", &Outcome::Pass).unwrap();
        k.result("b", &Outcome::Fail("wp 8 != 16".into())).unwrap();
        k.result("c", &Outcome::Skip("no disk LUN".into())).unwrap();
        k.diag("two\nlines").unwrap();
        k.result("d", &Outcome::XFail("known bug: EIO".into()))
            .unwrap();
        k.result("e", &Outcome::XPass("known bug".into())).unwrap();
        assert!(k.failed());
        assert_eq!(
            text(k),
            "KTAP version 1\n\
             1..5\n\
             ok 1 a\n\
             not ok 2 b # wp 8 != 16\n\
             ok 3 c # SKIP no disk LUN\n\
             # two\n\
             # lines\n\
             ok 4 d # XFAIL known bug: EIO\n\
             not ok 5 e # XPASS known bug\n"
        );
    }

    #[test]
    fn nested_subtests() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(3).unwrap();
        k.result("config", &Outcome::Pass).unwrap();
        k.begin_subtest("lun0").unwrap();
        k.plan(2).unwrap();
        k.result("present", &Outcome::Pass).unwrap();
        k.result("zoned", &Outcome::Skip("x".into())).unwrap();
        assert_eq!(k.end_subtest().unwrap(), Outcome::Pass);
        k.begin_subtest("lun1").unwrap();
        k.plan(1).unwrap();
        k.begin_subtest("deep").unwrap();
        k.plan(1).unwrap();
        k.result("leaf", &Outcome::Fail("bad".into())).unwrap();
        assert!(k.end_subtest().unwrap().is_failure());
        assert!(k.end_subtest().unwrap().is_failure());
        assert!(k.failed());
        assert!(k.end_subtest().is_err());
        assert_eq!(
            text(k),
            "KTAP version 1\n\
             1..3\n\
             ok 1 config\n    \
                 KTAP version 1\n    \
                 # Subtest: lun0\n    \
                 1..2\n    \
                 ok 1 present\n    \
                 ok 2 zoned # SKIP x\n\
             ok 2 lun0\n    \
                 KTAP version 1\n    \
                 # Subtest: lun1\n    \
                 1..1\n        \
                     KTAP version 1\n        \
                     # Subtest: deep\n        \
                     1..1\n        \
                     not ok 1 leaf # bad\n    \
                 not ok 1 deep\n\
             not ok 3 lun1\n"
        );
    }

    #[test]
    fn names_and_reasons_stay_on_one_line() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.result("a#b\nc", &Outcome::Fail("SKIP this\nnot".into()))
            .unwrap();
        k.result("d", &Outcome::Fail(String::new())).unwrap();
        k.result("e", &Outcome::Fail("error 5".into())).unwrap();
        k.diag("").unwrap();
        assert_eq!(
            text(k),
            "KTAP version 1\n\
             not ok 1 a_b c # failed: SKIP this not\n\
             not ok 2 d\n\
             not ok 3 e # failed: error 5\n"
        );
    }

    /// A writer that records each write call, to prove one write per line.
    struct Calls(Vec<Vec<u8>>, usize);
    impl Write for Calls {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    #[test]
    fn one_write_and_flush_per_line() {
        let mut k = Ktap::new(Calls(Vec::new(), 0)).unwrap();
        k.plan(1).unwrap();
        k.result("x", &Outcome::Pass).unwrap();
        let c = k.into_inner();
        assert_eq!(
            c.0,
            vec![
                b"KTAP version 1\n".to_vec(),
                b"1..1\n".to_vec(),
                b"ok 1 x\n".to_vec()
            ]
        );
        assert_eq!(c.1, 3);
    }
}
