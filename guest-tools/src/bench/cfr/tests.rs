use super::*;

fn block(n: u64, gen: u64) -> Vec<u8> {
    let mut b = vec![0; stamp::BLOCK_SIZE];
    stamp::fill(&mut b, n, gen).unwrap();
    b
}

#[test]
fn tally_tells_copied_stale_and_wrong() {
    // Destination at byte 8192 (block 2), source blocks 0.. of gen 7,
    // "before" blocks 2.. of gen 9.
    let mut buf = Vec::new();
    buf.extend(block(0, 7)); // copied
    buf.extend(block(3, 9)); // never written (before block of byte 12288)
    buf.extend(block(2, 7)); // source block 2 where 2 belongs: right
    let mut t = Tally::default();
    t.add(&buf, 8192, 0, 7, 9);
    assert_eq!((t.good, t.stale, t.wrong), (2, 1, 0));
    assert!(
        matches!(t.state(), DataState::Wrong(m) if m.starts_with("2 block(s) copied, 1 never written, 0 wrong"))
    );

    let mut t = Tally::default();
    t.add(&[block(2, 9), block(3, 9)].concat(), 8192, 0, 7, 9);
    assert_eq!(t.state(), DataState::NotWritten);

    let mut t = Tally::default();
    t.add(&[block(5, 7), block(6, 7)].concat(), 8192, 5, 7, 9);
    assert_eq!(t.state(), DataState::Verified);

    // Source block 1 where block 0 belongs: misdirected, wrong.
    let mut t = Tally::default();
    t.add(&[block(1, 7), vec![0; 4096]].concat(), 8192, 0, 7, 9);
    assert_eq!(t.wrong, 2);
    let DataState::Wrong(m) = t.state() else {
        panic!("not wrong")
    };
    assert!(
        m.contains("first wrong: byte 8192 should hold source block 0"),
        "{m}"
    );
}

#[test]
fn before_generations_differ_from_the_source() {
    for w in [Way::Offload, Way::Fallback, Way::ReadWrite] {
        assert_ne!(w.before_gen(42), 42);
        assert_ne!(w.before_gen(0), 0);
    }
}

const STATS: &str = r#"{"devices":{"ns1":{"copied_bytes":0,"read_bytes":10,"written_bytes":20}},"fabric":{"admin":{"commands":47,"data_c2h":33280,"data_h2c":1024,"header_c2h":1320,"header_h2c":3384},"connection_c2h":256,"connection_h2c":256,"connections":2,"copy":{"commands":1,"data_c2h":0,"data_h2c":128,"header_c2h":24,"header_h2c":72},"data_bytes":799533696,"other":{"commands":2,"data_c2h":0,"data_h2c":1024,"header_c2h":48,"header_h2c":144},"read":{"commands":11919,"data_c2h":531369984,"data_h2c":0,"header_c2h":605376,"header_h2c":858168},"terminations_sent":0,"total_bytes":802122680,"write":{"commands":11401,"data_c2h":0,"data_h2c":268128256,"header_c2h":278712,"header_h2c":841224}},"ok":true}"#;

#[test]
fn fabric_from_stats() {
    let f = parse_fabric(STATS).unwrap();
    assert_eq!(
        f,
        FabricCounts {
            total: 802_122_680,
            data: 799_533_696,
            read_c2h: 531_369_984,
            write_h2c: 268_128_256,
            read_cmds: 11919,
            write_cmds: 11401,
            copy_cmds: 1,
            copy_h2c: 128,
            connections: 2,
        }
    );
    let g = FabricCounts {
        total: 1000,
        connections: 4,
        ..f
    };
    assert_eq!(g.since(&f).connections, 2);
    assert_eq!(g.since(&f).total, 0);
    assert_eq!(parse_fabric(r#"{"devices":{}}"#), None);
}

fn run(way: Way, data: DataState, path: CopyPath, cause: Option<CopyCause>) -> Run {
    Run {
        way,
        took: Duration::from_millis(1500),
        cfr: (way != Way::ReadWrite).then(|| Cfr {
            len: COPY_BYTES,
            copied: COPY_BYTES,
            calls: vec![Ok(COPY_BYTES)],
            elapsed: Duration::from_millis(1400),
        }),
        sync_error: None,
        dev: Some(match path {
            CopyPath::Offload => (0, 0, COPY_BYTES),
            CopyPath::Nothing => (0, 0, 0),
            _ => (COPY_BYTES, COPY_BYTES, 0),
        }),
        fabric: None,
        path: Some(path),
        cause,
        data,
        cpu: None,
    }
}

#[test]
fn offload_findings() {
    let listed = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    // 7.2-series: reported copied, never written: copy-error-lost.
    let r = run(
        Way::Offload,
        DataState::NotWritten,
        CopyPath::Nothing,
        Some(CopyCause::TcpR2t),
    );
    let f = judge_offload(&r);
    assert!(
        matches!(&f, Finding::Bug { id, why } if *id == kcopy::BUG && why.contains("nvme-tcp never sent"))
    );
    let o = kcopy::outcome(
        f,
        &listed(&["copy-error-lost", "copy-tcp-r2t"]),
        kcopy::OFFLOAD_BUGS,
    );
    assert!(
        matches!(o, crate::ktap::Outcome::XFail(m) if m.starts_with("copy-error-lost: (a) copy_file_range reported 67108864 bytes"))
    );
    // 7.2-fixed: fell back after the R2T refusal: copy-tcp-r2t.
    let r = run(
        Way::Offload,
        DataState::Verified,
        CopyPath::Fallback,
        Some(CopyCause::TcpR2t),
    );
    let f = judge_offload(&r);
    assert!(matches!(&f, Finding::Bug { id, .. } if *id == kcopy::BUG_TCP));
    // Not listed: a failure.
    assert!(matches!(
        kcopy::outcome(f, &[], kcopy::OFFLOAD_BUGS),
        crate::ktap::Outcome::Fail(_)
    ));
    // Offloaded and verified: a pass; with the bug listed, an XPASS.
    let r = run(Way::Offload, DataState::Verified, CopyPath::Offload, None);
    assert_eq!(judge_offload(&r), Finding::Pass);
    assert!(matches!(
        kcopy::outcome(
            judge_offload(&r),
            &listed(&["copy-tcp-r2t"]),
            kcopy::OFFLOAD_BUGS
        ),
        crate::ktap::Outcome::XPass(_)
    ));
    // Wrong data is never a known bug.
    let r = run(
        Way::Offload,
        DataState::Wrong("x".into()),
        CopyPath::Mixed,
        Some(CopyCause::TcpR2t),
    );
    assert!(matches!(judge_offload(&r), Finding::Fail(_)));
    // An errno: a failure.
    let mut r = run(Way::Offload, DataState::NotWritten, CopyPath::Nothing, None);
    r.cfr = Some(Cfr {
        len: COPY_BYTES,
        copied: 0,
        calls: vec![Err(libc::EIO)],
        elapsed: Duration::ZERO,
    });
    assert!(matches!(judge_offload(&r), Finding::Fail(m) if m.contains("EIO")));
}

#[test]
fn baselines_must_verify_and_read_and_write() {
    let ok = run(Way::Fallback, DataState::Verified, CopyPath::Fallback, None);
    assert_eq!(judge_baseline(&ok), Ok(()));
    let lost = run(
        Way::Fallback,
        DataState::NotWritten,
        CopyPath::Nothing,
        None,
    );
    assert!(judge_baseline(&lost)
        .unwrap_err()
        .contains("never written: the numbers mean nothing"));
    let offloaded = run(Way::Fallback, DataState::Verified, CopyPath::Offload, None);
    assert!(judge_baseline(&offloaded)
        .unwrap_err()
        .contains("the counters show offload"));
    let rw = run(
        Way::ReadWrite,
        DataState::Wrong("w".into()),
        CopyPath::Fallback,
        None,
    );
    assert!(judge_baseline(&rw)
        .unwrap_err()
        .starts_with("(c) guest read+write"));
}

#[test]
fn bench_line_fields() {
    let mut a = run(
        Way::Offload,
        DataState::Verified,
        CopyPath::Fallback,
        Some(CopyCause::TcpR2t),
    );
    a.took = Duration::from_secs(12);
    a.fabric = Some(FabricCounts {
        total: 300,
        data: 200,
        connections: 2,
        copy_cmds: 4,
        ..FabricCounts::default()
    });
    let mut b = run(Way::Fallback, DataState::Verified, CopyPath::Fallback, None);
    b.took = Duration::from_secs(4);
    b.fabric = Some(FabricCounts {
        total: 100,
        data: 90,
        ..FabricCounts::default()
    });
    let c = run(
        Way::ReadWrite,
        DataState::Verified,
        CopyPath::Fallback,
        None,
    );
    let limits = Limits {
        max_bytes: Some(16 << 20),
        max_hw_bytes: Some(16 << 20),
    };
    let f = fields("ns1", &limits, [Some(&a), Some(&b), Some(&c)]);
    let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    assert_eq!(
        plan::bench_line("nvme-cfr-64MiB", &f),
        "bench nvme-cfr-64MiB dev=ns1 bytes=67108864 copy_max_bytes=16777216 \
         copy_max_hw_bytes=16777216 offload_s=12.000 offload_MiBps=5.3 offload_path=fallback \
         offload_data=verified offload_host_bytes=134217728 offload_copied_bytes=0 \
         offload_fabric_bytes=300 offload_fabric_data_bytes=200 offload_copy_cmds=4 \
         offload_new_connections=2 fallback_s=4.000 fallback_MiBps=16.0 fallback_path=fallback \
         fallback_data=verified fallback_host_bytes=134217728 fallback_copied_bytes=0 \
         fallback_fabric_bytes=100 fallback_fabric_data_bytes=90 fallback_copy_cmds=0 \
         fallback_new_connections=0 readwrite_s=1.500 readwrite_MiBps=42.7 readwrite_path=fallback \
         readwrite_data=verified readwrite_host_bytes=134217728 readwrite_copied_bytes=0 \
         offload_vs_fallback_time=3.00 offload_vs_fallback_fabric=3.00 \
         readwrite_vs_fallback_time=0.38"
    );
    // A kernel without copy offload: (a) and (b) n/a.
    let f = fields("lun0", &Limits::default(), [None, None, Some(&c)]);
    let f: Vec<(&str, String)> = f.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let line = plan::bench_line("scsi-cfr-64MiB", &f);
    assert!(line.starts_with(
        "bench scsi-cfr-64MiB dev=lun0 bytes=67108864 copy_max_bytes=absent \
         copy_max_hw_bytes=absent offload_s=n/a fallback_s=n/a readwrite_s=1.500"
    ));
    assert!(line.ends_with("offload_vs_fallback_time=n/a readwrite_vs_fallback_time=n/a"));
}
