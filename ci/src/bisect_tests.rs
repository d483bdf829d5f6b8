use std::{ffi::OsString, time::Duration};

use super::*;
use crate::ktap::{verdict, Parser, RunEnd};

fn v(ktap: &str, end: &RunEnd) -> Verdict {
    let mut p = Parser::new();
    for l in ktap.lines() {
        p.feed(l);
    }
    verdict(&p.finish(), end)
}

const XF: &str = "KTAP version 1\n1..2\nok 1 a\n\
    \x20   1..2\n\
    \x20   ok 1 w # XFAIL zwplug-error-stuck: EIO\n\
    \x20   ok 2 r\n\
    ok 2 zns\n";

#[test]
fn exit_codes() {
    let ok = RunEnd::default();
    let pass = v("KTAP version 1\n1..1\nok 1 a\n", &ok);
    let fail = v("KTAP version 1\n1..2\nok 1 a\nnot ok 2 b\n", &ok);
    let xf = v(XF, &ok);
    let (g, b) = (XfailAs::Good, XfailAs::Bad);
    assert_eq!(step_exit(&pass, None, g), GOOD);
    assert_eq!(step_exit(&fail, None, g), BAD);
    assert_eq!(step_exit(&xf, None, g), GOOD);
    assert_eq!(step_exit(&xf, None, b), BAD);
    // One test decides.
    assert_eq!(step_exit(&fail, Some("a"), g), GOOD);
    assert_eq!(step_exit(&fail, Some("b"), g), BAD);
    assert_eq!(step_exit(&xf, Some("zns.w"), b), BAD);
    assert_eq!(step_exit(&xf, Some("zns.w"), g), GOOD);
    assert_eq!(
        step_exit(&xf, Some("zns"), b),
        BAD,
        "a parent takes its children"
    );
    assert_eq!(step_exit(&xf, Some("zns.r"), b), GOOD);
    assert_eq!(
        step_exit(&xf, Some("nosuch"), g),
        SKIP,
        "not run: cannot judge"
    );
    let skip = v("KTAP version 1\n1..1\nok 1 a # SKIP no disk\n", &ok);
    assert_eq!(step_exit(&skip, Some("a"), g), SKIP);
    // The harness failing skips; the kernel failing is bad.
    let setup = v(
        "",
        &RunEnd {
            runner_error: Some("set-up failed: no initramfs".into()),
            ..ok.clone()
        },
    );
    assert_eq!(step_exit(&setup, None, g), SKIP);
    assert_eq!(step_exit(&setup, Some("a"), g), SKIP);
    let qemu = v(
        "",
        &RunEnd {
            runner_error: Some("QEMU: cannot start".into()),
            ..ok.clone()
        },
    );
    assert_eq!(step_exit(&qemu, None, g), SKIP);
    let panic = v("Kernel panic - not syncing: VFS\n", &ok);
    assert_eq!(step_exit(&panic, None, g), BAD);
    assert_eq!(step_exit(&panic, Some("a"), g), BAD);
    let hang = v(
        "KTAP version 1\n1..2\nok 1 a\n",
        &RunEnd {
            timed_out: Some(Duration::from_secs(9)),
            ..ok.clone()
        },
    );
    assert_eq!(step_exit(&hang, Some("b"), g), BAD);
    assert_eq!(step_exit(&hang, Some("a"), g), BAD, "passed, then hung");
    let silent = v("", &ok);
    assert_eq!(
        step_exit(&silent, None, g),
        BAD,
        "no KTAP at all: the kernel did not get there"
    );
}

#[test]
fn git_output_and_argv() {
    let out = "running x\nBisecting: 0 revisions left\n\
        0123456789abcdef0123456789abcdef01234567 is the first bad commit\ncommit 0123\n";
    assert_eq!(
        first_bad(out).as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(
        first_bad("There are only 'skip'ped commits left to test.\n"),
        None
    );
    let args: Vec<OsString> = [
        "zonecopy-ci",
        "bisect",
        "--kernel-tree",
        "t",
        "--out",
        "o",
        "--suite",
        "bisect",
        "--out=p",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let got = step_argv(&args, Path::new("/abs/o"));
    let got: Vec<&str> = got.iter().map(|a| a.to_str().unwrap()).collect();
    assert_eq!(
        got,
        [
            "bisect-step",
            "--kernel-tree",
            "t",
            "--suite",
            "bisect",
            "--out",
            "/abs/o"
        ]
    );
}
