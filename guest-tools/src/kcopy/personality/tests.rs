use super::*;

const FMT0: CopyCaps = CopyCaps {
    copy: true,
    ocfs: 0x1,
    cdfe: 0x4,
    mssrl: 4096,
    mcl: 65536,
    msrc: 127,
    lbs: 4096,
};

fn seen(seq: u64, sdlba: u64, format: u8, blocks: Option<(u64, u64)>) -> Seen {
    Seen {
        seq,
        sdlba,
        ranges: 1,
        format,
        cdw: vec![sdlba as u32, 0, u32::from(format) << 8, 0, 0, 0],
        invalid: None,
        blocks: blocks.map(|b| b.0),
        max_range_blocks: blocks.map(|b| b.1),
        status: blocks.map(|_| "success".into()),
    }
}

#[test]
fn usable_formats_need_ocfs_and_cdfe() {
    assert!(FMT0.usable(0) && !FMT0.usable(1) && !FMT0.usable(2));
    let v21 = CopyCaps {
        ocfs: 0xF,
        cdfe: 0,
        ..FMT0
    };
    assert!(v21.usable(0) && v21.usable(1) && !v21.usable(2) && !v21.usable(3));
    let fixed = CopyCaps { cdfe: 0x4, ..v21 };
    assert!(fixed.usable(2) && !fixed.usable(3));
    let none = CopyCaps {
        copy: false,
        ..fixed
    };
    assert!(!none.usable(0));
    assert_eq!(
        fixed.describe(),
        "Copy in ONCS, OCFS 0xf (formats 0 1 2 3), CDFE 0x4 (usable formats 0 1 2), MSSRL \
         4096 MCL 65536 MSRC 127 (128 ranges), 4096-byte blocks"
    );
    assert_eq!(none.describe(), "no Copy in ONCS");
}

#[test]
fn hw_limit_rules() {
    // Default limits: 16 MiB from MSSRL is right.
    let (_, _, f) = judge_hw("ns2", &FMT0, 16 * MIB);
    assert_eq!(f, Finding::Pass);
    // MSSRL 64 MCL 128: 256 KiB right, 512 KiB not.
    let small = CopyCaps {
        mssrl: 64,
        mcl: 128,
        msrc: 3,
        ..FMT0
    };
    assert_eq!(judge_hw("ns2", &small, 256 * KIB).2, Finding::Pass);
    assert!(matches!(
        judge_hw("ns2", &small, 512 * KIB).2,
        Finding::Fail(_)
    ));
    // MCL 64 < MSSRL 256: MSSRL-only is the known bug.
    let mcl = CopyCaps {
        mssrl: 256,
        mcl: 64,
        ..small
    };
    let (rule, did, f) = judge_hw("ns2", &mcl, MIB);
    assert!(rule.contains("a correct kernel must keep copy_max_hw_bytes <= min(MSSRL 256, MCL 64) x 4096 = 262144"), "{rule}");
    assert_eq!(
        did,
        "ns2: the kernel set copy_max_hw_bytes 1048576 (1.000 x MSSRL, 4.000 x MCL)"
    );
    assert!(matches!(f, Finding::Bug { id: BUG_MCL, .. }), "{f:?}");
    // Not offloading is always allowed; offloading without Copy is not.
    assert_eq!(judge_hw("ns2", &mcl, 0).2, Finding::Pass);
    let none = CopyCaps {
        copy: false,
        ..FMT0
    };
    assert_eq!(judge_hw("ns2", &none, 0).2, Finding::Pass);
    assert!(matches!(judge_hw("ns2", &none, 4096).2, Finding::Fail(_)));
}

#[test]
fn formats_seen() {
    let (rule, f) = judge_formats("ns2", &FMT0, &[seen(3, 448, 2, None)]);
    assert!(rule.contains("OCFS 0x1: 0"), "{rule}");
    match f {
        Finding::Bug { id, why } => {
            assert_eq!(id, BUG_OCFS);
            assert_eq!(
                why,
                "ns2: the backend received 1 Copy command(s), 1 in format 2: format 2 is not \
                 in OCFS 0x1; first: Copy seq 3: SDLBA 448, 1 range(s), format 2, CDW12 \
                 0x00000200, descriptors never arrived"
            );
        }
        f => panic!("{f:?}"),
    }
    assert_eq!(
        judge_formats("ns2", &FMT0, &[seen(0, 8, 0, Some((16, 16)))]).1,
        Finding::Pass
    );
    assert_eq!(judge_formats("ns2", &FMT0, &[]).1, Finding::Pass);
    // Format 2 supported but not enabled: the same bug, said so.
    let v21 = CopyCaps {
        ocfs: 0xF,
        cdfe: 0,
        ..FMT0
    };
    match judge_formats("ns2", &v21, &[seen(0, 8, 2, None)]).1 {
        Finding::Bug { why, .. } => {
            assert!(why.contains("format 2 is not enabled (CDFE 0x0)"), "{why}")
        }
        f => panic!("{f:?}"),
    }
    // Another wrong format is a plain failure.
    assert!(matches!(
        judge_formats("ns2", &FMT0, &[seen(0, 8, 1, None)]).1,
        Finding::Fail(_)
    ));
}

#[test]
fn stats_reply_parsed() {
    let r = r#"{"devices":{"ns2":{"read_bytes":0}},"nvme_copy":{"ns2":{"received":3,"recent":[
        {"seq":1,"sdlba":10,"ranges":1,"format":2,"cdw":[10,0,512,0,0,0],"invalid":"format 2 not in OCFS 0x1","executed":false,"blocks":null,"max_range_blocks":null,"status":null},
        {"seq":2,"sdlba":74,"ranges":1,"format":0,"cdw":[74,0,0,0,0,0],"invalid":null,"executed":true,"blocks":64,"max_range_blocks":64,"status":"success"}]}},"ok":true}"#;
    let (n, v) = parse_seen(r, "ns2", 2).unwrap().unwrap();
    assert_eq!(n, 3);
    assert_eq!(v, vec![seen(2, 74, 0, Some((64, 64)))]);
    let (_, v) = parse_seen(r, "ns2", 0).unwrap().unwrap();
    assert_eq!(v[0].invalid.as_deref(), Some("format 2 not in OCFS 0x1"));
    assert_eq!(parse_seen(r, "ns3", 0).unwrap(), Some((0, Vec::new())));
    assert_eq!(parse_seen(r#"{"ok":true}"#, "ns2", 0).unwrap(), None);
    assert!(parse_seen("{", "ns2", 0).is_err());
}

#[test]
fn blocks_from_sdlba_steps() {
    let v = [
        seen(0, 100, 2, None),
        seen(1, 164, 2, None),
        seen(2, 228, 2, None),
    ];
    assert_eq!(
        infer_blocks(&v, 100, 229),
        Some(vec![(100, 64), (164, 64), (228, 1)])
    );
    // A retry of the same Copy counts once; a gap at the start: unknown.
    let r = [seen(0, 100, 2, None), seen(1, 100, 2, None)];
    assert_eq!(infer_blocks(&r, 100, 229), Some(vec![(100, 129)]));
    assert_eq!(infer_blocks(&v[1..], 100, 229), None);
    assert_eq!(infer_blocks(&v, 100, 228), None);
}

#[test]
fn command_limit_rules() {
    let small = CopyCaps {
        mssrl: 64,
        mcl: 128,
        msrc: 3,
        ..FMT0
    };
    let ok = [
        seen(0, 100, 0, Some((64, 64))),
        seen(1, 164, 0, Some((64, 64))),
    ];
    let (rule, _, f) = judge_commands("ns2", &small, 256 * KIB, &ok, 100, 229);
    assert!(rule.contains("at most MSRC + 1 = 4 source ranges, each range at most MSSRL 64 blocks and each Copy at most MCL 128 blocks"), "{rule}");
    assert_eq!(f, Finding::Pass);
    // Five ranges > MSRC + 1.
    let mut five = seen(0, 100, 0, Some((5, 1)));
    five.ranges = 5;
    assert!(matches!(
        judge_commands("ns2", &small, 256 * KIB, &[five], 100, 105).2,
        Finding::Fail(_)
    ));
    // MCL 64 < MSSRL 256, the kernel used MSSRL: decoded 129 blocks.
    let mcl = CopyCaps {
        mssrl: 256,
        mcl: 64,
        ..small
    };
    let one = [seen(0, 100, 0, Some((129, 129)))];
    let (_, _, f) = judge_commands("ns2", &mcl, MIB, &one, 100, 229);
    assert!(matches!(f, Finding::Bug { id: BUG_MCL, .. }), "{f:?}");
    // The same from SDLBA steps when no descriptor arrived.
    let one = [seen(0, 100, 2, None)];
    let (_, notes, f) = judge_commands("ns2", &mcl, MIB, &one, 100, 229);
    assert_eq!(
        notes,
        vec!["descriptors never arrived; blocks per Copy from the SDLBA steps: 129 at 100"]
    );
    assert!(matches!(f, Finding::Bug { id: BUG_MCL, .. }), "{f:?}");
    // A step longer than the kernel's own limit is no evidence (a
    // Copy may be missing).
    let (_, _, f) = judge_commands("ns2", &mcl, 256 * KIB, &one, 100, 229);
    assert_eq!(f, Finding::Pass);
    // A range beyond MSSRL is a plain failure.
    let long = [seen(0, 100, 0, Some((300, 300)))];
    assert!(matches!(
        judge_commands("ns2", &mcl, 2 * MIB, &long, 100, 400).2,
        Finding::Fail(_)
    ));
}
