use std::{path::PathBuf, time::Duration};

use super::*;
use crate::{
    kcidb::{self, RunInput},
    ktap::RunEnd,
};

fn doc(kernel: &str, suite: &str, ktap: &str, xfail: &str, dir: &Path) -> Value {
    let r = crate::kcidb::tests::record(kernel, suite, ktap, &RunEnd::default(), xfail);
    kcidb::document(&RunInput {
        record: &r,
        personality: None,
        transport: None,
        boot: Some(Duration::from_millis(4200)),
        out: dir,
        image: None,
        version: Some(format!("{kernel}.0-1-amd64 (x) #1")),
        tree: None,
        log_base: None,
    })
}

const PASS: &str = "KTAP version 1\n1..2\nok 1 a\nok 2 b # SKIP no disk\n";
const FAIL: &str = "KTAP version 1\n1..2\nok 1 a\n# expected 4\n# got 0\n# at lba 8\n# more\nnot ok 2 b # short read\n";
const XF: &str = "KTAP version 1\n1..1\nok 1 w # XFAIL zwplug-error-stuck: EIO\n";

/// Writes run directories as the runner would (kcidb.json, console.log).
fn write_runs(root: &Path, runs: &[(&str, &str, &str, &str, &str)]) {
    for (sub, kernel, suite, ktap, xfail) in runs {
        let d = root.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        let doc = doc(kernel, suite, ktap, xfail, &d);
        std::fs::write(d.join("kcidb.json"), serde_json::to_string(&doc).unwrap()).unwrap();
        std::fs::write(
            d.join("console.log"),
            format!("{ktap}# bench copy-64MiB dev=lun0 offload_s=0.5 readwrite_s=2.0 ratio=4.0\n"),
        )
        .unwrap();
    }
}

#[test]
fn shards_merge_to_the_unsharded_table() {
    let t = tempfile::tempdir().unwrap();
    let all = [
        ("m/smoke-6.1", "6.1", "smoke", PASS, ""),
        ("m/smoke-6.12", "6.12", "smoke", FAIL, ""),
        ("m/nvme-6.12", "6.12", "nvme", XF, "zwplug-error-stuck"),
        ("m/smoke-7.2", "7.2", "smoke", PASS, ""),
    ];
    write_runs(t.path(), &all);
    let shards = [
        ("s1/smoke-7.2", "7.2", "smoke", PASS, ""),
        ("s1/nvme-6.12", "6.12", "nvme", XF, "zwplug-error-stuck"),
        ("s2/smoke-6.12", "6.12", "smoke", FAIL, ""),
        ("s3/smoke-6.1", "6.1", "smoke", PASS, ""),
    ];
    write_runs(t.path(), &shards);
    let (whole, p1) = load(&[t.path().join("m")]);
    let (merged, p2) = load(&[
        t.path().join("s3"),
        t.path().join("s1"),
        t.path().join("s2"),
    ]);
    assert!(p1.is_empty() && p2.is_empty(), "{p1:?} {p2:?}");
    assert_eq!(whole.len(), 4);
    assert_eq!(results_table(&whole), results_table(&merged));
    let table = results_table(&whole);
    assert_eq!(
        table.lines().take(5).collect::<Vec<_>>(),
        [
            "| kernel | nvme | smoke |",
            "|---|---|---|",
            "| 6.1 | - | PASS 1/0/1/0 |",
            "| 6.12 | PASS 0/0/0/1 | FAIL 1/1/0/0 |",
            "| 7.2 | - | PASS 1/0/1/0 |",
        ]
    );
    // Known bugs per kernel, failures with the first lines of evidence.
    assert_eq!(known_bugs_by_kernel(&whole)[0].0, "6.12");
    assert_eq!(known_bugs_by_kernel(&whole)[0].1, "zwplug-error-stuck");
    let f = &whole.iter().find(|r| r.status == "FAIL").unwrap().failures[0];
    assert_eq!(f.path, "zonecopy.smoke.b");
    assert_eq!(f.evidence, ["expected 4", "got 0", "at lba 8"]);
    let md = markdown(&whole, "t", "now", &["matrix smoke: complete".into()]);
    assert!(md.contains("\n- matrix smoke: complete\n"), "{md}");
    assert!(md.contains("| 6.12 | `zwplug-error-stuck` | 1 |"), "{md}");
    assert!(md.contains("  > got 0"), "{md}");
    assert!(
        md.contains("| 6.1 smoke | copy-64MiB | dev=lun0 offload_s=0.5"),
        "{md}"
    );
    // The page holds the numbers and a plot, and links logs relatively.
    let html = crate::report_html::page(&whole, "t <x>", "now", &t.path().join("r"), &[]);
    assert!(html.contains("class=\"cell FAIL\" data-kernel=\"6.12\" data-suite=\"smoke\" data-column=\"smoke\" data-status=\"FAIL\" data-passed=\"1\" data-failed=\"1\""), "{html}");
    assert!(html.contains("<title>t &lt;x&gt;</title>"));
    assert!(
        html.contains("href=\"../m/smoke-6.1/console.log\""),
        "{html}"
    );
    assert!(html.contains("<svg") && html.contains("data-bench=\"copy-64MiB\""));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    // Repeated runs share their cell: every row keeps one cell per column.
    let mut both = whole.clone();
    both.extend(merged);
    sort_runs(&mut both);
    let html = crate::report_html::page(&both, "t", "now", t.path(), &["x INCOMPLETE".into()]);
    assert!(html.contains("<li class=\"FAIL\">x INCOMPLETE</li>"));
    let start = html.find("id=\"results\"").unwrap();
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    for row in table.split("<tr>").skip(2) {
        assert_eq!(row.matches("<td").count(), 2, "{row}");
    }
    assert_eq!(table.matches("class=\"cell ").count(), 8);
}

#[test]
fn bench_lines_and_plots() {
    let b = bench_lines("[ 3.1] x\n# bench fio-scsi dev=lun0 randread_qd1_iops=900 seq_MiBps=150.5\n# benchmark no\n# bench empty\n");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].name, "fio-scsi");
    assert_eq!(
        b[0].values[1],
        ("randread_qd1_iops".to_owned(), "900".to_owned())
    );
    let other = Bench {
        name: "fio-scsi".into(),
        values: vec![("randread_qd1_iops".into(), "450".into())],
    };
    let svg = crate::report_html::bench_svg(
        "fio-scsi",
        &[("6.1".into(), &b[0]), ("6.12".into(), &other)],
    );
    // Two numeric keys (dev is not plotted); the larger value gets the full width.
    assert_eq!(svg.matches("font-weight=\"bold\"").count(), 2);
    assert!(svg.contains("width=\"330.0\""), "{svg}");
    assert!(svg.contains("width=\"165.0\""), "{svg}");
    assert!(svg.contains(">-</text>"), "a run without the key shows -");
    let copy = bench_lines(
        "# bench scsi-xcopy-64MiB dev=lun0 offload_s=0.5 readwrite_s=2.0 offload_copied_bytes=9\n",
    );
    assert_eq!(
        crate::report_html::offload_svg(&[("6.1 fio".into(), &b[0])]),
        None
    );
    let svg = crate::report_html::offload_svg(&[("6.12 bench".into(), &copy[0])]).unwrap();
    assert!(svg.contains(">6.12 bench scsi-xcopy-64MiB</text>"), "{svg}");
    assert!(
        svg.contains("width=\"82.5\" height=\"13\" fill=\"#2e8b57\""),
        "{svg}"
    );
    assert!(
        svg.contains("width=\"330.0\" height=\"13\" fill=\"#c0504d\""),
        "{svg}"
    );
}

#[test]
fn natural_order_and_columns() {
    let mut v = vec!["7.2", "6.12", "6.1", "7.2-fixed", "bzImage"];
    v.sort_by_key(|s| natural_key(s));
    assert_eq!(v, ["6.1", "6.12", "7.2", "7.2-fixed", "bzImage"]);
    let _ = PathBuf::new();
}
