//! The one test runner every suite uses: it runs a test body behind the
//! panic guard, prints the diagnostics the test gathered, times it, turns
//! its verdict into the printed outcome (known bugs listed by
//! `zonecopy.xfail=` become `XFAIL`, or `XPASS` when they did not
//! reproduce), records it for later tests' prerequisites, and prints the
//! KTAP result; areas are KTAP subtests with their plan.
//!
//! The KTAP writer sits behind a `RefCell` so a suite can also print a
//! diagnostic the moment it happens ([`Runner::sink`]): if the kernel
//! crashes mid-test, the console still shows what the test was doing.

use std::{
    cell::RefCell,
    io::{self, Write},
    time::{Duration, Instant},
};

use crate::ktap::{catch_step, Ktap, Outcome, Step, Verdict};

/// A test that takes at least this long gets a diagnostic with its time.
const SLOW: Duration = Duration::from_secs(2);

/// Known bugs a test met, set by the test while it runs and taken by the
/// runner (see [`expected`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// A failure of this test is this known bug.
    pub hit: Option<&'static str>,
    /// Bugs this test could have hit: if one of them is listed and the test
    /// passed, the bug did not reproduce (`XPASS`).
    pub exposed: &'static [&'static str],
}

/// How a finished test's diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diags {
    /// Every line, before the result.
    All,
    /// Every line for a failure; otherwise one line with the count of
    /// steps, the time and the last step (suites that log every command).
    Summary,
}

/// What a suite's context tells the runner.
pub trait Context {
    /// The known-bug ids the command line lists (`zonecopy.xfail=`).
    fn xfail(&self) -> &[String] {
        &[]
    }
    /// Reset per-test state before a test runs.
    fn before_test(&mut self) {}
    /// Diagnostics the test gathered, taken.
    fn take_diags(&mut self) -> Vec<String>;
    /// Remember how test `name` of `area` ended, for later prerequisites.
    fn record(&mut self, area: &str, name: &str, verdict: &Verdict);
    /// The known bugs the test just run met, taken.
    fn take_bugs(&mut self) -> Bugs {
        Bugs::default()
    }
    /// How to print a finished test's diagnostics.
    fn diags(&self) -> Diags {
        Diags::All
    }
}

/// The printed outcome of `verdict` given the test's known bugs and the
/// ids `listed` on the command line: a failure that is a listed bug is
/// `XFAIL` naming it; a pass that a listed bug should have spoiled is
/// `XPASS` (counted as a failure, so someone looks at why it went away).
pub fn expected(verdict: Verdict, bugs: Bugs, listed: &[String]) -> Outcome {
    let is_listed = |id: &str| listed.iter().any(|l| l == id);
    match verdict {
        Verdict::Fail(why) => match bugs.hit {
            Some(id) if is_listed(id) => Outcome::XFail(format!("{id}: {why}")),
            _ => Outcome::Fail(why),
        },
        Verdict::Pass => {
            let missed: Vec<&str> = bugs
                .exposed
                .iter()
                .copied()
                .chain(bugs.hit)
                .filter(|b| is_listed(b))
                .fold(Vec::new(), |mut v, b| {
                    if !v.contains(&b) {
                        v.push(b);
                    }
                    v
                });
            if missed.is_empty() {
                Outcome::Pass
            } else {
                Outcome::XPass(format!("{} did not reproduce", missed.join(", ")))
            }
        }
        Verdict::Skip(why) => Outcome::Skip(why),
    }
}

/// The tests run so far and whether they passed: later tests' prerequisites.
#[derive(Debug, Clone, Default)]
pub struct Done(Vec<(String, bool)>);

impl Done {
    /// Remember that test `name` passed or not.
    pub fn record(&mut self, name: impl Into<String>, passed: bool) {
        self.0.push((name.into(), passed));
    }

    /// Whether test `name` ran (`None` if not) and passed.
    pub fn get(&self, name: &str) -> Option<bool> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|&(_, p)| p)
    }

    /// SKIP unless test `name` passed; a test that has not run is a bug
    /// in the suite's order, never a silent skip.
    pub fn needs(&self, name: &str) -> Step {
        match self.get(name) {
            Some(true) => Ok(()),
            Some(false) => Err(Verdict::skip(format!("needs {name}"))),
            None => Err(Verdict::fail(format!("suite bug: {name} has not run"))),
        }
    }
}

/// Runs tests and prints their KTAP.
#[derive(Debug)]
pub struct Runner<'k, W: Write> {
    k: RefCell<&'k mut Ktap<W>>,
}

impl<'k, W: Write> Runner<'k, W> {
    /// A runner printing to `k`.
    pub fn new(k: &'k mut Ktap<W>) -> Self {
        Self { k: RefCell::new(k) }
    }

    /// The plan `1..count` of the current level.
    pub fn plan(&self, count: usize) -> io::Result<()> {
        self.k
            .borrow_mut()
            .plan(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// A diagnostic line (or several).
    pub fn diag(&self, text: &str) -> io::Result<()> {
        self.k.borrow_mut().diag(text)
    }

    /// Print a result that no test body produced (`config`, a set-up that
    /// failed).
    pub fn result(&self, name: &str, outcome: &Outcome) -> io::Result<()> {
        self.k.borrow_mut().result(name, outcome).map(|_| ())
    }

    /// Whether any result at the current level was `not ok`.
    pub fn failed(&self) -> bool {
        self.k.borrow().failed()
    }

    /// A function printing one diagnostic at once; a failed write shows up
    /// at the next result's write.
    pub fn sink(&self) -> impl Fn(&str) + use<'_, 'k, W> {
        |line| {
            let _ = self.k.borrow_mut().diag(line);
        }
    }

    /// The KTAP subtest `name`: its plan `1..plan`, the results `body`
    /// prints, then its own result line. Returns that result.
    pub fn subtest(
        &self,
        name: &str,
        plan: usize,
        body: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<Outcome> {
        self.k.borrow_mut().begin_subtest(name)?;
        self.plan(plan)?;
        body()?;
        self.k.borrow_mut().end_subtest()
    }

    /// Run one test of `area` ("" at the top level): the body behind the
    /// panic guard, then its diagnostics and result. Returns its verdict.
    pub fn test<C: Context + ?Sized>(
        &self,
        c: &mut C,
        area: &str,
        name: &str,
        f: impl FnOnce(&mut C) -> Step,
    ) -> io::Result<Verdict> {
        c.before_test();
        let start = Instant::now();
        let verdict = catch_step(|| f(c)).err().unwrap_or(Verdict::Pass);
        let took = start.elapsed();
        self.print_diags(c.diags(), c.take_diags(), &verdict, took)?;
        c.record(area, name, &verdict);
        let outcome = expected(verdict.clone(), c.take_bugs(), c.xfail());
        self.result(name, &outcome)?;
        Ok(verdict)
    }

    /// Run `tests` as the KTAP subtest `area`.
    pub fn area<C, I, N, F>(&self, c: &mut C, area: &str, tests: I) -> io::Result<Outcome>
    where
        I: IntoIterator<Item = (N, F)>,
        I::IntoIter: ExactSizeIterator,
        C: Context + ?Sized,
        N: AsRef<str>,
        F: FnOnce(&mut C) -> Step,
    {
        let tests = tests.into_iter();
        self.subtest(area, tests.len(), || {
            for (name, f) in tests {
                self.test(c, area, name.as_ref(), f)?;
            }
            Ok(())
        })
    }

    fn print_diags(
        &self,
        mode: Diags,
        diags: Vec<String>,
        verdict: &Verdict,
        took: Duration,
    ) -> io::Result<()> {
        let ms = took.as_millis();
        match mode {
            Diags::Summary if !matches!(verdict, Verdict::Fail(_)) => {
                if let Some(last) = diags.last() {
                    return self.diag(&format!("{} steps in {ms} ms; last: {last}", diags.len()));
                }
            }
            _ => {
                for d in &diags {
                    self.diag(d)?;
                }
            }
        }
        if took >= SLOW {
            self.diag(&format!("took {ms} ms"))?;
        }
        Ok(())
    }
}

/// Test names must be unique within an area (reports key on them).
#[cfg(test)]
pub fn assert_unique<'a>(names: impl IntoIterator<Item = &'a str>) {
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        assert!(seen.insert(n), "test name {n} twice in one area");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Ctx {
        xfail: Vec<String>,
        diags: Vec<String>,
        done: Vec<String>,
        bugs: Bugs,
        before: u32,
        summary: bool,
    }

    impl Context for Ctx {
        fn xfail(&self) -> &[String] {
            &self.xfail
        }
        fn before_test(&mut self) {
            self.before += 1;
        }
        fn take_diags(&mut self) -> Vec<String> {
            std::mem::take(&mut self.diags)
        }
        fn record(&mut self, area: &str, name: &str, verdict: &Verdict) {
            self.done
                .push(format!("{area}/{name} {}", *verdict == Verdict::Pass));
        }
        fn take_bugs(&mut self) -> Bugs {
            std::mem::take(&mut self.bugs)
        }
        fn diags(&self) -> Diags {
            if self.summary {
                Diags::Summary
            } else {
                Diags::All
            }
        }
    }

    fn text(k: Ktap<Vec<u8>>) -> String {
        String::from_utf8(k.into_inner()).unwrap()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Every suite that needs LUNs prints a one-result plan without them.
    #[test]
    fn lun_suites_without_luns() {
        type Run =
            fn(&mut Ktap<Vec<u8>>, &crate::cmdline::Config, &std::path::Path) -> io::Result<bool>;
        let suites: [(&str, Run); 4] = [
            ("smoke", crate::smoke::run),
            ("xcopy", crate::xcopy::run),
            ("zbc", crate::zbc::run),
            ("diff", crate::diff::run),
        ];
        for (name, run) in suites {
            let mut k = Ktap::new(Vec::new()).unwrap();
            let cfg = crate::cmdline::Config::default();
            assert!(!run(&mut k, &cfg, std::path::Path::new("/nonexistent")).unwrap());
            assert_eq!(
                text(k),
                "KTAP version 1\n1..1\nnot ok 1 config # no zonecopy.lun<N>= on the kernel command line\n",
                "{name}"
            );
        }
    }

    #[test]
    fn known_bugs() {
        let hit = Bugs {
            hit: Some("b"),
            exposed: &[],
        };
        let listed = ids(&["b"]);
        assert_eq!(
            expected(Verdict::fail("EIO"), hit, &listed),
            Outcome::XFail("b: EIO".into())
        );
        assert_eq!(
            expected(Verdict::fail("EIO"), hit, &[]),
            Outcome::Fail("EIO".into())
        );
        assert_eq!(
            expected(Verdict::Pass, hit, &listed),
            Outcome::XPass("b did not reproduce".into())
        );
        assert_eq!(
            expected(Verdict::skip("no"), hit, &listed),
            Outcome::Skip("no".into())
        );
        let exposed = Bugs {
            hit: None,
            exposed: &["a", "b"],
        };
        assert_eq!(
            expected(Verdict::Pass, exposed, &ids(&["x", "b", "a"])),
            Outcome::XPass("a, b did not reproduce".into())
        );
        assert_eq!(
            expected(Verdict::Pass, exposed, &ids(&["x"])),
            Outcome::Pass
        );
        // A failure that is no known bug stays a failure, listed or not.
        assert_eq!(
            expected(Verdict::fail("junk"), exposed, &listed),
            Outcome::Fail("junk".into())
        );
    }

    #[test]
    fn areas_results_and_panics() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        let mut c = Ctx {
            xfail: ids(&["bug"]),
            ..Ctx::default()
        };
        {
            let r = Runner::new(&mut k);
            r.plan(2).unwrap();
            r.result("config", &Outcome::Pass).unwrap();
            type T = fn(&mut Ctx) -> Step;
            let tests: [(&str, T); 4] = [
                ("a", |c| {
                    c.diags.push("step one".into());
                    Ok(())
                }),
                ("b", |_| panic!("boom")),
                ("c", |c| {
                    c.bugs.hit = Some("bug");
                    Err(Verdict::fail("EIO"))
                }),
                ("d", |_| Err(Verdict::skip("no disk"))),
            ];
            assert!(r.area(&mut c, "x", tests).unwrap().is_failure());
            assert!(r.failed());
        }
        assert_eq!(c.before, 4);
        assert_eq!(c.done, ["x/a true", "x/b false", "x/c false", "x/d false"]);
        assert_eq!(
            text(k),
            "KTAP version 1\n\
             1..2\n\
             ok 1 config\n    \
                 KTAP version 1\n    \
                 # Subtest: x\n    \
                 1..4\n    \
                 # step one\n    \
                 ok 1 a\n    \
                 not ok 2 b # panicked: boom\n    \
                 ok 3 c # XFAIL bug: EIO\n    \
                 ok 4 d # SKIP no disk\n\
             not ok 2 x\n"
        );
    }

    #[test]
    fn summarised_diagnostics() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        let mut c = Ctx {
            summary: true,
            ..Ctx::default()
        };
        {
            let r = Runner::new(&mut k);
            let two = |c: &mut Ctx| {
                c.diags.extend(["s1".to_string(), "s2".to_string()]);
                Ok(())
            };
            r.test(&mut c, "", "p", two).unwrap();
            r.test(&mut c, "", "f", |c: &mut Ctx| {
                two(c)?;
                Err(Verdict::fail("bad"))
            })
            .unwrap();
            (r.sink())("live");
        }
        let out = text(k);
        assert!(out.contains("# 2 steps in "), "{out}");
        assert!(out.contains(" ms; last: s2\nok 1 p\n# s1\n# s2\nnot ok 2 f # bad\n# live\n"));
    }
}
