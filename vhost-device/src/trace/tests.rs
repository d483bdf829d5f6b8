//! Format round trip, the parser on random bytes, rotation, and replay
//! (clean, and a tampered record caught as a divergence).

use std::{path::Path, sync::Arc};

use proptest::prelude::*;

use super::{
    format::{
        self, ControlRecord, Cqe, Data, FinalRecord, NvmeRecord, PduRecord, QueueRecord, Record,
        ScsiRecord, Writer,
    },
    replay, DataMode, Recorder, TracedDevice,
};
use crate::{
    config::{Args, Config},
    scsi::{Request, Target},
    storage::Device,
};

fn samples() -> Vec<Record> {
    vec![
        Record::Meta(r#"{"format":1,"part":0}"#.into()),
        Record::Scsi(ScsiRecord {
            seq: 7,
            target: 1,
            lun: 2,
            queue: 3,
            tag: 0xdead_beef,
            arrive_ns: 10,
            done_ns: 20,
            cdb: vec![0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0],
            status: 2,
            sense: vec![0x70, 0, 3, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0],
            data_in_room: 512,
            data_out: Data::of(&[1, 2, 3], true),
            data_in: Data::of(&[4, 5], false),
        }),
        Record::Nvme(NvmeRecord {
            seq: 8,
            handle: 1,
            cntlid: 1,
            qid: 2,
            arrive_ns: 30,
            done_ns: 40,
            sqe: [0x19; 64],
            cqe: Some(Cqe {
                dw0: 1,
                dw1: 2,
                status: 0x281,
            }),
            data_out: Data::of(&[9; 40], true),
            data_in: Data::default(),
        }),
        Record::Nvme(NvmeRecord {
            seq: 9,
            handle: 0,
            cntlid: 1,
            qid: 0,
            arrive_ns: 30,
            done_ns: 40,
            sqe: [0x0c; 64],
            cqe: None,
            data_out: Data::default(),
            data_in: Data::default(),
        }),
        Record::Queue(QueueRecord {
            handle: 0,
            cntlid: 1,
            qid: 0,
            sqsize: 31,
            transport: 0,
            hostid: [7; 16],
            subnqn: "nqn.sub".into(),
            hostnqn: "nqn.host".into(),
        }),
        Record::Pdu(PduRecord {
            conn: 4420,
            dir: 1,
            t_ns: 5,
            bytes: vec![5; 24],
        }),
        Record::Control(ControlRecord {
            seq: 10,
            t_ns: 50,
            request: r#"{"cmd":"power_cut","dev":"ns1"}"#.into(),
            response: r#"{"ok":true}"#.into(),
        }),
        Record::Final(FinalRecord {
            t_ns: 60,
            devices: vec![("lun0".into(), 0x1234, 1 << 20)],
        }),
    ]
}

fn file_of(records: &[Record]) -> Vec<u8> {
    let mut bytes = format::header().to_vec();
    for r in records {
        bytes.extend(r.encode());
    }
    bytes
}

#[test]
fn round_trip() {
    let records = samples();
    assert_eq!(format::parse(&file_of(&records)).unwrap(), records);
}

#[test]
fn header_is_checked() {
    let mut bytes = file_of(&samples());
    bytes[8] = 2;
    assert!(matches!(
        format::parse(&bytes),
        Err(format::FormatError::Version(2))
    ));
    bytes[0] = b'X';
    assert!(matches!(
        format::parse(&bytes),
        Err(format::FormatError::Magic)
    ));
    // A record cut short is an error, not a panic or a silent stop.
    let whole = file_of(&samples());
    assert!(format::parse(&whole[..whole.len() - 1]).is_err());
}

proptest! {
    #![proptest_config(crate::testing::cases(2000))]

    /// Random bytes after a valid header: records or an error, never a
    /// panic.
    #[test]
    fn parser_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = format::header().to_vec();
        bytes.extend(tail);
        let _ = format::parse(&bytes);
    }

    /// Random bodies of every kind decode or fail as values.
    #[test]
    fn record_decoder_never_panics(kind in 0u8..10, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Record::decode(kind, &body);
    }

    /// A valid trace with one byte flipped: records or an error.
    #[test]
    fn flipped_byte_never_panics(at in 0usize..1000, bit in 0u8..8) {
        let mut bytes = file_of(&samples());
        let i = at % bytes.len();
        bytes[i] ^= 1 << bit;
        let _ = format::parse(&bytes);
    }
}

#[test]
fn rotation_bounds_every_file_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let max = 4096u64;
    let keep = 3;
    let meta = Record::Meta(r#"{"format":1,"part":0}"#.into());
    let mut w = Writer::create(&path, meta, Some(max), keep).unwrap();
    let rec = Record::Pdu(PduRecord {
        conn: 1,
        dir: 0,
        t_ns: 0,
        bytes: vec![0xAB; 300],
    })
    .encode();
    for _ in 0..200 {
        w.write(&rec).unwrap();
    }
    w.flush().unwrap();
    let parts = format::parts(&path);
    assert_eq!(parts.len(), keep as usize + 1, "{parts:?}");
    assert!(!format::rotated(&path, keep + 1).exists());
    for p in &parts {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= max, "{p:?} is {len} bytes");
    }
    // Every part is a whole trace whose meta names its part; the oldest
    // kept is not part 0 (rotation dropped the start).
    let records = format::read_all(&path).unwrap();
    let Record::Meta(m) = &records[0] else {
        panic!("no meta first")
    };
    assert!(!m.contains("\"part\":0"), "{m}");
}

/// A one-LUN backend: the argv the recorder keeps and its target.
fn backend(dir: &Path) -> (Vec<String>, Arc<Device>, Target) {
    let file = dir.join("lun0.raw");
    let argv: Vec<String> = [
        "zonecopy-vhost",
        "--socket",
        &dir.join("s").to_string_lossy(),
        "--lun",
        &format!("file={},size=16M,zone=1M,conv=1", file.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let config = Config::try_from(Args::try_parse_grouped_from(&argv).unwrap()).unwrap();
    let dev = Arc::new(Device::open(&config.luns[0]).unwrap());
    let target = Target::new(vec![Arc::clone(&dev)]);
    (argv, dev, target)
}

fn run(rec: &Recorder, target: &Target, cdb: &[u8], data_out: &[u8]) -> u8 {
    let mut out = data_out;
    let mut data_in = Vec::new();
    let resp = rec.scsi(
        target,
        Request {
            lun: 0,
            cdb,
            data_out: &mut out,
            data_in: &mut data_in,
            data_in_len: 4096,
            direct: None,
        },
        |r| target.execute_untraced(r),
    );
    resp.status as u8
}

fn write16(lba: u64, blocks: u32) -> Vec<u8> {
    let mut cdb = vec![0x8a, 0];
    cdb.extend(lba.to_be_bytes());
    cdb.extend(blocks.to_be_bytes());
    cdb.extend([0, 0]);
    cdb
}

fn read16(lba: u64, blocks: u32) -> Vec<u8> {
    let mut cdb = write16(lba, blocks);
    cdb[0] = 0x88;
    cdb
}

/// Record a short session: data written before the trace (in the image),
/// writes, a read, an error (a write off the write pointer) and a
/// media error injected through the control path.
fn record(dir: &Path) -> std::path::PathBuf {
    let (argv, dev, target) = backend(dir);
    // Before the trace: in the image only.
    dev.write(crate::storage::Lba::new(0), &[0x11; 4096], false)
        .unwrap();
    let rec = Recorder::new();
    rec.set_up(
        argv,
        vec![TracedDevice {
            name: "lun0".into(),
            device: Arc::clone(&dev),
            path: dir.join("lun0.raw"),
        }],
    );
    let trace = dir.join("trace");
    rec.start(&trace, DataMode::Whole, None, 8).unwrap();
    assert_eq!(run(&rec, &target, &write16(256, 1), &[0x22; 4096]), 0);
    assert_eq!(run(&rec, &target, &write16(300, 1), &[0x33; 4096]), 2);
    let mut reg = crate::control::Registry::default();
    reg.add_device("lun0", Arc::clone(&dev));
    let req = r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":0}"#;
    let resp = rec.control(req, || reg.handle_untraced(req));
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(run(&rec, &target, &read16(0, 1), &[]), 2);
    assert_eq!(run(&rec, &target, &read16(256, 1), &[]), 0);
    rec.stop().unwrap();
    trace
}

#[test]
fn replay_reproduces_statuses_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let trace = record(dir.path());
    for _ in 0..2 {
        let work = tempfile::tempdir().unwrap();
        let out = replay::replay(&trace, work.path()).unwrap();
        assert!(out.clean(), "{out:?}");
        assert_eq!(out.replayed, 5);
        // The injected medium error (sense key 3h, ASC 11h) came back.
        assert!(
            out.errors.keys().any(|k| k.contains("sense 3/11/00")),
            "{:?}",
            out.errors
        );
        assert!(out.checksums.iter().all(|c| c.3 == Some(c.1)));
    }
}

#[test]
fn replay_reports_a_tampered_result_as_the_first_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let trace = record(dir.path());
    let mut records = format::read_file(&trace).unwrap();
    // Claim the first write failed.
    for r in &mut records {
        if let Record::Scsi(s) = r {
            s.status = 8;
            break;
        }
    }
    std::fs::write(&trace, file_of(&records)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = replay::replay(&trace, work.path()).unwrap();
    assert!(!out.clean());
    assert_eq!(out.divergences, 1);
    let first = out.first.unwrap();
    assert!(first.starts_with("#0 LUN 0"), "{first}");
    assert!(first.contains("recorded status 0x08"), "{first}");
}

#[test]
fn replay_refuses_a_trace_whose_start_was_rotated_away() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t");
    let meta = Record::Meta(r#"{"format":1,"part":3,"argv":[]}"#.into());
    Writer::create(&trace, meta, None, 1)
        .unwrap()
        .flush()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let err = replay::replay(&trace, work.path()).unwrap_err();
    assert!(err.to_string().contains("part 3"), "{err}");
}

#[test]
fn control_command_checks_its_arguments() {
    use zonecopy_contract::control::Request;
    let req = |s: &str| match serde_json::from_str::<Request>(s) {
        Ok(Request::Trace(t)) => Ok(t),
        Ok(other) => panic!("{s}: {other:?}"),
        Err(e) => Err(e.to_string()),
    };
    assert_eq!(
        super::control_command(req(r#"{"cmd":"trace","op":"status"}"#).unwrap()).unwrap()
            ["tracing"],
        false
    );
    // Malformed: refused by the request's own parser.
    for bad in [
        r#"{"cmd":"trace"}"#,
        r#"{"cmd":"trace","op":"start"}"#,
        r#"{"cmd":"trace","op":"start","file":"/nonexistent/t","data":"half"}"#,
    ] {
        assert!(req(bad).is_err(), "{bad}");
    }
    // Well formed but impossible now: refused by the recorder.
    for bad in [
        r#"{"cmd":"trace","op":"stop"}"#,
        r#"{"cmd":"trace","op":"start","file":"/dev/null/t"}"#,
    ] {
        assert!(super::control_command(req(bad).unwrap()).is_err(), "{bad}");
    }
}

#[test]
fn a_second_start_and_a_stop_without_start_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Recorder::new();
    assert!(rec.stop().is_err());
    rec.start(&dir.path().join("t"), DataMode::Digest, None, 0)
        .unwrap();
    assert!(rec.is_on());
    let again = rec.start(&dir.path().join("u"), DataMode::Whole, None, 0);
    assert!(matches!(again, Err(super::TraceError::Running(_))));
    rec.stop().unwrap();
    assert!(!rec.is_on());
    // Nothing but the meta and the final record.
    let records = format::read_file(&dir.path().join("t")).unwrap();
    assert!(matches!(
        records.as_slice(),
        [Record::Meta(_), Record::Final(_)]
    ));
}

#[test]
fn control_traces_stay_in_the_trace_dir() {
    let r = super::Recorder::new();
    assert!(r.control_path("t").is_err(), "refused without --trace-dir");
    r.set_control_dir(Some("/srv/traces".into()));
    assert_eq!(
        r.control_path("t").unwrap(),
        std::path::Path::new("/srv/traces/t")
    );
    for bad in ["/etc/shadow", "../t", "a/b", ".hidden", "..", ""] {
        assert!(r.control_path(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn limits_are_refused_before_anything_is_written() {
    let r = super::Recorder::new();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t");
    for (max, keep) in [(Some(1), 8), (None, super::MAX_KEEP + 1)] {
        assert!(matches!(
            r.start(&f, super::DataMode::Digest, max, keep),
            Err(super::TraceError::Limits)
        ));
    }
    assert!(!f.exists() && !super::image_dir(&f).exists());
}
