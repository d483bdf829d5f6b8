use super::*;

fn parse(text: &str) -> Report {
    let mut p = Parser::new();
    for line in text.lines() {
        p.feed(line);
    }
    p.finish()
}

#[test]
fn counts_result_lines_at_every_depth() {
    let mut p = Parser::new();
    for line in [
        "KTAP version 1",
        "1..2",
        "    KTAP version 1",
        "    1..2",
        "    ok 1 a",
        "    not ok 2 b",
        "[ 1.0] ok 3 noise",
        "     ok 9 bad indent",
        "not ok 1 parent",
    ] {
        p.feed(line);
    }
    assert_eq!(p.result_lines(), 3);
    assert!(!p.complete());
}

fn outcome_names(v: &Verdict) -> Vec<(String, Outcome)> {
    v.cases
        .iter()
        .map(|c| (c.name.clone(), c.outcome.clone()))
        .collect()
}

#[test]
fn flat_pass_with_noise() {
    let r = parse(
        "[    0.512345] virtio_scsi virtio0: something\r\n\
             KTAP version 1\r\n\
             1..3\n\
             [    1.000000] sd 0:0:0:0: [sda] Host-managed zoned block device\n\
             ok 1 report_zones\n\
             # note: zone 2 is conventional\n\
             ok 2 - reset_zone\n\
             random output line\n\
             ok 3 finish_zone # SKIP kernel lacks BLKFINISHZONE\n",
    );
    assert_eq!(r.version.as_deref(), Some("1"));
    assert_eq!(r.plan, Some(3));
    assert_eq!(r.results.len(), 3);
    assert_eq!(r.results[1].description, "reset_zone");
    assert_eq!(
        r.results[1].diagnostics,
        vec!["note: zone 2 is conventional".to_owned()]
    );
    assert_eq!(
        r.results[2].directive,
        Some(Directive::Skip("kernel lacks BLKFINISHZONE".into()))
    );
    let v = verdict(&r, &RunEnd::default());
    assert!(v.pass, "{:?}", v.reasons);
    assert_eq!(
        v.counts,
        Counts {
            passed: 2,
            failed: 0,
            skipped: 1,
            xfail: 0
        }
    );
}

#[test]
fn directives() {
    let r = parse(
        "KTAP version 1\n1..6\n\
             not ok 1 a # XFAIL known bug\n\
             ok 2 b # XPASS\n\
             not ok 3 c # TODO later\n\
             ok 4 d # TODO\n\
             not ok 5 e # TIMEOUT\n\
             ok 6 f \\# not a directive # also not\n",
    );
    let v = verdict(&r, &RunEnd::default());
    assert_eq!(
        outcome_names(&v),
        vec![
            ("a".into(), Outcome::Xfail("known bug".into())),
            ("b".into(), Outcome::Fail("unexpected pass (XPASS)".into())),
            ("c".into(), Outcome::Xfail("TODO later".into())),
            ("d".into(), Outcome::Pass),
            ("e".into(), Outcome::Fail("TIMEOUT ".into())),
            ("f # not a directive".into(), Outcome::Pass),
        ]
    );
    assert!(!v.pass);
    assert_eq!(v.counts.xfail, 2);
    assert_eq!(v.counts.failed, 2);
}

#[test]
fn nested_subtests_flatten_as_parent_child() {
    let r = parse(
        "KTAP version 1\n\
             1..2\n\
             \x20   KTAP version 1\n\
             \x20   # Subtest: zones\n\
             \x20   1..2\n\
             \x20   ok 1 report\n\
             [    2.0] kernel noise inside a subtest\n\
             \x20       KTAP version 1\n\
             \x20       1..1\n\
             \x20       not ok 1 deep # XFAIL waiting for fix\n\
             \x20   ok 2 reset\n\
             \x20   # zones: pass:2 fail:0\n\
             ok 1 zones\n\
             ok 2 copy\n",
    );
    assert_eq!(r.results.len(), 2);
    let zones = &r.results[0];
    assert_eq!(zones.subtests.len(), 2);
    assert_eq!(zones.subtest_plan, Some(2));
    assert_eq!(zones.subtests[1].subtests.len(), 1);
    assert!(zones
        .diagnostics
        .contains(&"zones: pass:2 fail:0".to_owned()));
    let v = verdict(&r, &RunEnd::default());
    assert!(v.pass, "{:?}", v.reasons);
    assert_eq!(
        outcome_names(&v),
        vec![
            ("zones.report".into(), Outcome::Pass),
            (
                "zones.reset.deep".into(),
                Outcome::Xfail("waiting for fix".into())
            ),
            ("copy".into(), Outcome::Pass),
        ]
    );
}

#[test]
fn failing_subtest_fails_the_run_once() {
    let r = parse(
        "KTAP version 1\n1..1\n\
             \x20   KTAP version 1\n\
             \x20   1..2\n\
             \x20   ok 1 a\n\
             \x20   not ok 2 b\n\
             not ok 1 group\n",
    );
    let v = verdict(&r, &RunEnd::default());
    assert!(!v.pass);
    assert_eq!(v.counts.failed, 1);
    assert_eq!(v.cases[1].name, "group.b");
    assert_eq!(v.reasons, vec!["1 failed: group.b".to_owned()]);
}

#[test]
fn parent_not_ok_with_passing_children_and_short_subtest_plan() {
    let r = parse(
        "KTAP version 1\n1..2\n\
             \x20   1..3\n\
             \x20   ok 1 a\n\
             ok 1 short\n\
             \x20   1..1\n\
             \x20   ok 1 a\n\
             not ok 2 parent\n",
    );
    let v = verdict(&r, &RunEnd::default());
    assert_eq!(
        outcome_names(&v),
        vec![
            ("short.a".into(), Outcome::Pass),
            (
                "short".into(),
                Outcome::Fail("subtest plan 1..3 but 1 results".into())
            ),
            ("parent.a".into(), Outcome::Pass),
            ("parent".into(), Outcome::Fail("not ok".into())),
        ]
    );
}

#[test]
fn missing_plan_and_no_output() {
    let v = verdict(&parse("Booting...\nok 1 x\n"), &RunEnd::default());
    assert!(!v.pass);
    assert_eq!(
        v.reasons,
        vec!["no top-level KTAP plan (1..N) from the guest".to_owned()]
    );
    let v = verdict(&parse("Booting...\n"), &RunEnd::default());
    assert_eq!(v.reasons, vec!["no KTAP output from the guest".to_owned()]);
}

#[test]
fn short_run_timeout_and_unfinished_subtest() {
    let r = parse(
        "KTAP version 1\n1..3\nok 1 a\n\
             \x20   KTAP version 1\n\
             \x20   # Subtest: copy\n\
             \x20   1..4\n\
             \x20   ok 1 x\n",
    );
    let end = RunEnd {
        timed_out: Some(Duration::from_secs(300)),
        ..RunEnd::default()
    };
    let v = verdict(&r, &end);
    assert!(!v.pass);
    assert_eq!(
        v.reasons,
        vec![
            "timed out after 300 s".to_owned(),
            "plan 1..3 but 1 top-level results".to_owned(),
            "1 failed: copy".to_owned(),
        ]
    );
    assert_eq!(v.cases[0].name, "a");
    assert_eq!(v.cases[1].name, "copy.x");
    assert_eq!(
        v.cases[2].outcome,
        Outcome::Fail("the guest stopped before this test finished".into())
    );
}

#[test]
fn kernel_panic_fails_even_with_all_results() {
    let mut p = Parser::new();
    assert_eq!(p.feed("KTAP version 1"), LineKind::Ktap);
    assert_eq!(p.feed("1..1"), LineKind::Ktap);
    assert!(!p.complete());
    assert_eq!(p.feed("ok 1 a"), LineKind::Ktap);
    assert!(p.complete());
    assert_eq!(
        p.feed("[    3.1] Kernel panic - not syncing: Attempted to kill init!"),
        LineKind::Crash
    );
    assert_eq!(
        p.feed("[    3.1] BUG: kernel NULL pointer dereference"),
        LineKind::Crash
    );
    let r = p.finish();
    let v = verdict(&r, &RunEnd::default());
    assert!(!v.pass);
    assert_eq!(
        v.reasons,
        vec![
            "kernel crash: [    3.1] Kernel panic - not syncing: Attempted to kill init!"
                .to_owned()
        ]
    );
}

#[test]
fn result_times_are_measured_between_results() {
    let mut p = Parser::new();
    let ms = Duration::from_millis;
    p.feed_at("KTAP version 1", ms(1000));
    p.feed_at("1..2", ms(1000));
    p.feed_at("ok 1 a", ms(1500));
    p.feed_at("    KTAP version 1", ms(1600));
    p.feed_at("    1..1", ms(1600));
    p.feed_at("    ok 1 x", ms(2600));
    p.feed_at("ok 2 b", ms(2700));
    let r = p.finish();
    assert_eq!(r.results[0].time, Some(ms(500)));
    assert_eq!(r.results[1].subtests[0].time, Some(ms(1000)));
    assert_eq!(r.results[1].time, Some(ms(1200)));
    let cases = flatten(&r.results);
    assert_eq!(cases[1].name, "b.x");
    assert_eq!(cases[1].time, Some(ms(1000)));
}

#[test]
fn noise_that_looks_almost_like_ktap() {
    let mut p = Parser::new();
    assert_eq!(p.feed("okay then"), LineKind::Noise);
    assert_eq!(p.feed("ok1 x"), LineKind::Noise);
    assert_eq!(p.feed("1..x"), LineKind::Noise);
    assert_eq!(p.feed("  ok 1 two-space indent"), LineKind::Noise);
    assert_eq!(
        p.feed("        ok 1 nested without parent"),
        LineKind::Noise
    );
    assert_eq!(p.feed("[    1.0] ok 1 kernel line"), LineKind::Noise);
    assert_eq!(p.feed("BUGS: none"), LineKind::Noise);
    assert_eq!(p.ktap_lines(), 0);
}

#[test]
fn bail_out_and_plan_zero() {
    let v = verdict(
        &parse("KTAP version 1\n1..2\nok 1 a\nBail out! no device\n"),
        &RunEnd::default(),
    );
    assert_eq!(
        v.reasons,
        vec![
            "guest bailed out: no device".to_owned(),
            "plan 1..2 but 1 top-level results".to_owned()
        ]
    );
    let v = verdict(
        &parse("KTAP version 1\n1..0 # SKIP nothing\n"),
        &RunEnd::default(),
    );
    assert!(v.pass);
}

#[test]
fn results_without_numbers_or_descriptions() {
    let r = parse("TAP version 14\n1..3\nok\nnot ok 2\nnot ok 3 present # no disk (found: none)\n");
    assert_eq!(r.version.as_deref(), Some("TAP version 14"));
    let v = verdict(&r, &RunEnd::default());
    assert_eq!(v.cases[0].name, "test");
    assert_eq!(v.cases[1].name, "test 2");
    assert_eq!(v.cases[2].name, "present");
    assert_eq!(
        v.cases[2].outcome,
        Outcome::Fail("not ok: no disk (found: none)".into())
    );
    assert_eq!(v.counts.failed, 2);
}

mod prop {
    use proptest::prelude::*;

    use super::*;

    /// KTAP-ish lines: real syntax at random depths, plus noise.
    fn line() -> impl Strategy<Value = String> {
        let body = prop_oneof![
            Just("KTAP version 1".to_owned()),
            (0u32..5).prop_map(|n| format!("1..{n}")),
            (any::<bool>(), 0u32..6, r"[a-z_ #\\]{0,12}")
                .prop_map(|(ok, n, d)| format!("{}ok {n} {d}", if ok { "" } else { "not " })),
            "[a-z ]{0,10}".prop_map(|d| format!("# {d}")),
            "[a-z]{0,6}".prop_map(|d| format!("# Subtest: {d}")),
            Just("Bail out! x".to_owned()),
            Just("[    1.0] Kernel panic - not syncing".to_owned()),
            "\\PC{0,30}",
        ];
        (0usize..4, 0usize..3, body).prop_map(|(depth, extra, b)| {
            format!("{}{}{b}", "    ".repeat(depth), " ".repeat(extra))
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_counts_are_consistent(lines in proptest::collection::vec(line(), 0..60)) {
            let mut p = Parser::new();
            for l in &lines {
                p.feed(l);
            }
            let r = p.finish();
            let v = verdict(&r, &RunEnd::default());
            let c = v.counts;
            prop_assert_eq!(c.passed + c.failed + c.skipped + c.xfail, v.cases.len());
            prop_assert_eq!(v.pass, v.reasons.is_empty());
            if v.pass {
                prop_assert!(r.plan.is_some());
                prop_assert_eq!(c.failed, 0);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let mut p = Parser::new();
            for l in text.split('\n') {
                p.feed(l);
            }
            let _ = verdict(&p.finish(), &RunEnd::default());
        }
    }
}
