use super::*;
use crate::ktap::{verdict, Parser, RunEnd};

pub fn record(kernel: &str, suite: &str, ktap: &str, end: &RunEnd, xfail: &str) -> SuiteRecord {
    let mut p = Parser::new();
    for l in ktap.lines() {
        p.feed(l);
    }
    let mut properties = vec![("kernel_image".to_owned(), "/nonexistent/vmlinux".to_owned())];
    if !xfail.is_empty() {
        properties.push(("xfail".into(), xfail.into()));
    }
    SuiteRecord {
        suite: suite.into(),
        kernel: kernel.into(),
        timestamp: "2026-12-06T17:00:00Z".into(),
        total: Duration::from_millis(9500),
        verdict: verdict(&p.finish(), end),
        properties,
        console_excerpt: "last console line".into(),
    }
}

const NVME: &str = "KTAP version 1\n1..3\n\
    ok 1 identify\n\
    \x20   KTAP version 1\n\
    \x20   1..2\n\
    \x20   # wrote 4 blocks\n\
    \x20   ok 1 write_after_error # XFAIL zwplug-error-stuck: write at wp failed: EIO\n\
    \x20   ok 2 copy fmt/2 # SKIP no CDFE\n\
    ok 2 zns\n\
    \x20   1..1\n\
    \x20   # expected 16 got 0\n\
    \x20   not ok 1 single_range # ERROR no device\n\
    not ok 3 kcopy\n";

#[test]
fn document_maps_statuses_paths_and_known_bugs() {
    let r = record(
        "6.12",
        "nvme",
        NVME,
        &RunEnd::default(),
        "zwplug-error-stuck",
    );
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&RunInput {
        record: &r,
        personality: None,
        transport: Some("tcp"),
        boot: Some(Duration::from_secs(4)),
        out: dir.path(),
        image: Some(PathBuf::from("/c/kernels/6.12/vmlinux")),
        version: Some("6.12.57+deb12-amd64 (debian-kernel@lists.debian.org) #1 SMP".into()),
        tree: None,
        log_base: Some("https://ci.invalid/job/7/".into()),
    });
    assert_eq!(doc["version"], json!({"major": 5, "minor": 3}));
    let c = &doc["checkouts"][0];
    assert_eq!(c["tree_name"], "6.12");
    assert_eq!(c["comment"], "kernel 6.12.57+deb12-amd64");
    let b = &doc["builds"][0];
    assert_eq!(b["checkout_id"], c["id"]);
    assert_eq!(b["misc"]["release"], "6.12.57+deb12-amd64");
    let t = doc["tests"].as_array().unwrap();
    let got: Vec<(&str, &str)> = t
        .iter()
        .map(|t| (t["path"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("zonecopy.nvme", "FAIL"),
            ("zonecopy.nvme.identify", "PASS"),
            ("zonecopy.nvme.zns.write_after_error", "FAIL"),
            ("zonecopy.nvme.zns.copy_fmt_2", "SKIP"),
            ("zonecopy.nvme.kcopy.single_range", "ERROR"),
        ]
    );
    assert!(t.iter().all(|x| x["build_id"] == b["id"]
        && x["log_url"]
            == format!(
                "https://ci.invalid/job/7/{}/console.log",
                dir.path().file_name().unwrap().to_str().unwrap()
            )));
    let x = &t[2];
    assert_eq!(
        x["misc"]["expected_failure"]["known_bug"],
        "zwplug-error-stuck"
    );
    assert!(x["misc"]["expected_failure"]["what"]
        .as_str()
        .unwrap()
        .contains("zone"));
    assert_eq!(x["log_excerpt"], "wrote 4 blocks\n");
    assert_eq!(t[3]["misc"]["ktap_name"], "zns.copy fmt/2");
    assert_eq!(t[4]["log_excerpt"], "expected 16 got 0\n");
    let m = &t[0]["misc"];
    assert_eq!(
        (m["passed"].clone(), m["failed"].clone(), m["xfail"].clone()),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(m["boot_s"], 4.0);
    assert_eq!(doc["issues"][0]["id"], "zonecopy:zwplug-error-stuck");
    assert_eq!(doc["incidents"][0]["test_id"], x["id"]);
    assert_eq!(doc["incidents"].as_array().unwrap().len(), 1);
    // Ids are unique.
    let mut ids: Vec<&str> = t.iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), t.len());
}

#[test]
fn runs_without_a_verdict_are_errors_and_trees_give_commits() {
    let end = RunEnd {
        timed_out: Some(Duration::from_secs(300)),
        ..RunEnd::default()
    };
    let r = record(
        "bzImage",
        "smoke",
        "KTAP version 1\n1..2\nok 1 a\n",
        &end,
        "",
    );
    assert_eq!(run_status(&r.verdict), "ERROR");
    let crash = record(
        "x",
        "smoke",
        "KTAP version 1\n1..1\nok 1 a\nKernel panic - not syncing\n",
        &RunEnd::default(),
        "",
    );
    assert_eq!(run_status(&crash.verdict), "FAIL");
    let tree = TreeSource {
        tree: PathBuf::from("/src/linux"),
        commit: Some("a".repeat(40)),
        describe: Some("v6.13-rc1-5-gaaaa".into()),
        url: None,
        branch: Some("master".into()),
        subject: Some("block: fix".into()),
    };
    let dir = tempfile::tempdir().unwrap();
    let doc = document(&RunInput {
        record: &r,
        personality: Some("no-copy"),
        transport: None,
        boot: None,
        out: dir.path(),
        image: None,
        version: None,
        tree: Some(tree),
        log_base: None,
    });
    assert!(doc["tests"][0].get("log_url").is_none());
    assert_eq!(
        doc["tests"][0]["misc"]["logs"]["console.log"],
        "console.log"
    );
    let c = &doc["checkouts"][0];
    assert_eq!(c["git_commit_hash"], "a".repeat(40));
    assert_eq!(c["tree_name"], "linux");
    assert_eq!(
        doc["tests"][0]["comment"],
        "timed out after 300 s; plan 1..2 but 1 top-level results"
    );
    assert_eq!(doc["tests"][0]["misc"]["personality"], "no-copy");
    assert_eq!(doc["tests"][0]["log_excerpt"], "last console line\n");
}

#[test]
fn names_and_bug_ids() {
    assert_eq!(segment("copy fmt/2"), "copy_fmt_2");
    assert_eq!(segment(""), "_");
    assert_eq!(
        test_path("kcopy", "single_range"),
        "zonecopy.kcopy.single_range"
    );
    assert_eq!(test_path("zbc", "lun0..x"), "zonecopy.zbc.lun0._.x");
    let ids = vec!["copy-tcp-r2t".to_owned(), "copy-error-lost".to_owned()];
    assert_eq!(
        known_bug_of("copy-error-lost: reported 4096", &ids),
        "copy-error-lost"
    );
    assert_eq!(
        known_bug_of("sent in-capsule? copy-tcp-r2t", &ids),
        "copy-tcp-r2t"
    );
    assert_eq!(known_bug_of("TODO later", &ids), "later");
    assert_eq!(
        case_status(&Outcome::Fail("TIMEOUT ".into()), &ids).0,
        "ERROR"
    );
    assert_eq!(
        case_status(&Outcome::Fail("unexpected pass (XPASS) x".into()), &ids).0,
        "FAIL"
    );
}

#[test]
fn bzimage_header_version() {
    let mut b = vec![0u8; 0x1000];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    let at: u16 = 0x800 - 0x200;
    b[0x20e..0x210].copy_from_slice(&at.to_le_bytes());
    let v = b"6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
    b[0x800..0x800 + v.len()].copy_from_slice(v);
    assert_eq!(
        bzimage_version(&b).as_deref(),
        Some("6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP")
    );
    b[0x202] = b'X';
    assert_eq!(bzimage_version(&b), None);
    let dir = tempfile::tempdir().unwrap();
    let vm = dir.path().join("vmlinux");
    std::fs::write(&vm, b"\x7fELF....Linux version 7.2.0-test (me@host) #1\n\0").unwrap();
    assert_eq!(
        kernel_version(&vm).as_deref(),
        Some("7.2.0-test (me@host) #1")
    );
}
