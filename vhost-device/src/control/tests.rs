use super::*;
use crate::storage::{DeviceConfig, ZonedConfig};

fn registry(dir: &tempfile::TempDir) -> (Registry, Arc<Device>) {
    let dev = Arc::new(
        Device::open(&DeviceConfig {
            path: dir.path().join("d"),
            size: 1 << 20,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 64 << 10,
                zone_capacity: 64 << 10,
                conventional_zones: 1,
                max_open: 0,
                max_active: 0,
                ..Default::default()
            }),
        })
        .unwrap(),
    );
    let mut reg = Registry::default();
    reg.add_device("lun0", Arc::clone(&dev));
    (reg, dev)
}

#[test]
fn checksum_matches_data_and_does_not_count_as_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, dev) = registry(&dir);
    let data = vec![0x5au8; 8192];
    dev.write(Lba::new(16), &data, false).unwrap();
    let r = reg.handle(r#"{"cmd":"checksum","dev":"lun0","lba":16,"blocks":2,"per_block":true}"#);
    assert_eq!(r["ok"], true);
    assert_eq!(r["crc32c"], crc32c::crc32c(&data));
    assert_eq!(r["block_crc32c"][1], crc32c::crc32c(&data[4096..]));
    let s = reg.handle(r#"{"cmd":"stats"}"#);
    assert_eq!(s["devices"]["lun0"]["read_bytes"], 0);
    assert_eq!(s["devices"]["lun0"]["written_bytes"], 8192);
}

#[test]
fn zones_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, dev) = registry(&dir);
    dev.write(Lba::new(16), &[1u8; 4096], false).unwrap();
    let z = reg.handle(r#"{"cmd":"zones","dev":"lun0","lba":16,"max":2}"#);
    assert_eq!(z["zones"][0]["cond"], "implicit-open");
    assert_eq!(z["zones"][0]["wp"], 17);
    assert_eq!(z["zones"][1]["cond"], "empty");
    let d = reg.handle(r#"{"cmd":"devices"}"#);
    assert_eq!(d["devices"][0]["blocks"], 256);
    assert_eq!(d["devices"][0]["zones"]["zone_blocks"], 16);
}

#[test]
fn zone_condition_command() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, dev) = registry(&dir);
    let r = reg.handle(r#"{"cmd":"zone_condition","dev":"lun0","lba":32,"cond":"read_only"}"#);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["zones"][0]["cond"], "read-only");
    let r = reg.handle(r#"{"cmd":"zone_condition","dev":"lun0","lba":48,"cond":"offline"}"#);
    assert_eq!(r["zones"][0]["cond"], "offline");
    assert!(dev.write(Lba::new(32), &[0; 4096], false).is_err());
    for bad in [
        r#"{"cmd":"zone_condition","dev":"lun0","lba":33,"cond":"offline"}"#,
        r#"{"cmd":"zone_condition","dev":"lun0","lba":0,"cond":"offline"}"#,
        r#"{"cmd":"zone_condition","dev":"lun0","lba":64,"cond":"full"}"#,
        r#"{"cmd":"zone_condition","dev":"lun0","lba":48,"cond":"read_only"}"#,
        r#"{"cmd":"zone_condition","dev":"lun0","lba":4096,"cond":"offline"}"#,
        r#"{"cmd":"zone_condition","dev":"lun0","cond":"offline"}"#,
        r#"{"cmd":"zone_condition","dev":"lun0","lba":64}"#,
    ] {
        let r = reg.handle(bad);
        assert_eq!(r["ok"], false, "{bad}");
    }
    let z = reg.handle(r#"{"cmd":"zones","dev":"lun0","lba":64,"max":1}"#);
    assert_eq!(z["zones"][0]["cond"], "empty");
}

#[test]
fn fault_rules_fire_count_and_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, dev) = registry(&dir);
    let r = reg.handle(
            r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":20,"blocks":2,"count":1}"#,
        );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["id"], 1);
    let r = reg.handle(
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"copy_fail","segment":2,"error":"read"}"#,
    );
    assert_eq!(r["id"], 2);
    let r =
        reg.handle(r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"delay","ms":1,"on":"flush"}"#);
    assert_eq!(r["id"], 3);
    let l = reg.handle(r#"{"cmd":"fault","op":"list"}"#);
    assert_eq!(l["faults"][0]["kind"], "media_error");
    assert_eq!(l["faults"][0]["remaining"], 1);
    assert_eq!(l["faults"][1]["segment"], 2);
    assert_eq!(l["faults"][1]["after_blocks"], 0);
    assert_eq!(l["faults"][1]["remaining"], Value::Null);
    assert_eq!(l["faults"][2]["on"], "flush");
    let mut buf = vec![0u8; 4 * 4096];
    assert!(matches!(
        dev.read(Lba::new(18), &mut buf),
        Err(crate::storage::StorageError::UnrecoveredRead { lba }) if lba == Lba::new(20)
    ));
    dev.read(Lba::new(18), &mut buf).unwrap();
    dev.flush().unwrap();
    let s = reg.handle(r#"{"cmd":"stats"}"#);
    assert_eq!(s["devices"]["lun0"]["faults"]["media_error"], 1);
    assert_eq!(s["devices"]["lun0"]["faults"]["delay"], 1);
    let r = reg.handle(r#"{"cmd":"fault","dev":"lun0","op":"remove","id":3}"#);
    assert_eq!(r["ok"], true);
    let r = reg.handle(r#"{"cmd":"fault","op":"clear"}"#);
    assert_eq!(r["cleared"], 1);
    for bad in [
        r#"{"cmd":"fault","dev":"lun0"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":255,"blocks":2}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":1,"blocks":0}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":-1}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":1,"count":0}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"copy_fail"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"copy_fail","segment":1,"error":"x"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"delay","ms":600001}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"delay","ms":5,"on":"trim"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"sparks"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"remove","id":99}"#,
        r#"{"cmd":"fault","dev":"lun9","op":"clear"}"#,
        r#"{"cmd":"fault","dev":"lun0","op":"zap"}"#,
    ] {
        let r = reg.handle(bad);
        assert_eq!(r["ok"], false, "{bad}");
    }
}

#[test]
fn cache_and_power_cut_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, dev) = registry(&dir);
    let r = reg.handle(r#"{"cmd":"power_cut","dev":"lun0"}"#);
    assert_eq!(r["ok"], false, "{r}");
    let r = reg.handle(r#"{"cmd":"cache","dev":"lun0","mode":"volatile"}"#);
    assert_eq!(r["cache"], "volatile", "{r}");
    let d = reg.handle(r#"{"cmd":"devices"}"#);
    assert_eq!(d["devices"][0]["cache"], "volatile");
    dev.write(Lba::new(16), &[1u8; 8192], false).unwrap();
    let s = reg.handle(r#"{"cmd":"stats"}"#);
    assert_eq!(s["devices"]["lun0"]["cache_held_blocks"], 2);
    // The checksum sees the held data, as the guest does.
    let c = reg.handle(r#"{"cmd":"checksum","dev":"lun0","lba":16,"blocks":2}"#);
    assert_eq!(c["crc32c"], crc32c::crc32c(&[1u8; 8192]));
    let r = reg.handle(r#"{"cmd":"power_cut","dev":"lun0"}"#);
    assert_eq!(r["dropped_blocks"], 2, "{r}");
    assert_eq!(r["zones_rolled_back"], 1);
    let z = reg.handle(r#"{"cmd":"zones","dev":"lun0","lba":16,"max":1}"#);
    assert_eq!(z["zones"][0]["wp"], 16);
    let r = reg.handle(r#"{"cmd":"cache","dev":"lun0","mode":"none"}"#);
    assert_eq!(r["cache"], "none");
    let r = reg.handle(r#"{"cmd":"cache","dev":"lun0"}"#);
    assert_eq!(
        (r["cache"].as_str(), r["held_blocks"].as_u64()),
        (Some("none"), Some(0))
    );
    let r = reg.handle(r#"{"cmd":"cache","dev":"lun0","mode":"fast"}"#);
    assert_eq!(r["ok"], false);
}

#[test]
fn bad_requests_are_answered_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = registry(&dir);
    for bad in [
        "not json",
        "{}",
        r#"{"cmd":"nope"}"#,
        r#"{"cmd":"checksum","dev":"lun9","lba":0,"blocks":1}"#,
        r#"{"cmd":"checksum","dev":"lun0","lba":255,"blocks":2}"#,
        r#"{"cmd":"checksum","dev":"lun0","lba":0,"blocks":18446744073709551615}"#,
    ] {
        let r = reg.handle(bad);
        assert_eq!(r["ok"], false, "{bad}");
        assert!(r["error"].is_string());
    }
}

/// Control lines, generated: any bytes, and JSON objects built from
/// the real commands and keys with values of every type. Every line
/// gets exactly one JSON reply with a boolean "ok"; nothing panics.
mod lines {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..300).prop_map(Value::from),
            "[a-z_0-9.]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "lun0",
                "ns1",
                "read_only",
                "offline",
                "add",
                "remove",
                "clear",
                "list",
                "media_error",
                "write_error",
                "copy_fail",
                "delay",
                "volatile",
                "none",
            ])
            .prop_map(Value::from),
        ]
    }

    fn request() -> impl Strategy<Value = String> {
        let keys = prop::sample::select(vec![
            "dev",
            "lba",
            "blocks",
            "max",
            "cond",
            "op",
            "kind",
            "count",
            "id",
            "segment",
            "after_blocks",
            "error",
            "ms",
            "on",
            "mode",
            "per_block",
            "token",
        ]);
        let cmd = prop::sample::select(vec![
            "devices",
            "stats",
            "checksum",
            "zones",
            "zone_condition",
            "fault",
            "power_cut",
            "cache",
            "auth",
            "bogus",
        ]);
        (cmd, proptest::collection::vec((keys, value()), 0..6)).prop_map(|(cmd, kv)| {
            let mut o = serde_json::Map::new();
            o.insert("cmd".into(), Value::from(cmd));
            for (k, v) in kv {
                o.insert(k.into(), v);
            }
            Value::Object(o).to_string()
        })
    }

    proptest! {
        #![proptest_config(crate::testing::cases(256))]

        #[test]
        fn every_line_gets_one_reply(
            reqs in proptest::collection::vec(request(), 1..8),
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            // One registry for every case: the state requests leave
            // (faults, cache modes, zone conditions) carries over, as
            // it would on a long-lived socket, and a case costs no
            // device set-up (the long mode runs a million).
            static REG: std::sync::OnceLock<(tempfile::TempDir, Registry)> =
                std::sync::OnceLock::new();
            let (_, reg) = REG.get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let (reg, _) = registry(&dir);
                (dir, reg)
            });
            let mut input = Vec::new();
            for r in &reqs {
                input.extend_from_slice(r.as_bytes());
                input.push(b'\n');
            }
            // Noise without newlines, as one more (bad) line.
            input.extend(noise.iter().filter(|&&b| b != b'\n'));
            input.push(b'\n');
            // The noise line is answered unless it is blank as the
            // session sees it (str::trim: Unicode white space); bytes
            // that are not UTF-8 get an error reply.
            let bytes: Vec<u8> = noise.iter().copied().filter(|&b| b != b'\n').collect();
            let noise_line = std::str::from_utf8(&bytes).map_or(true, |t| !t.trim().is_empty());
            let mut out = Vec::new();
            session(reg, &input[..], &mut out, None);
            let replies: Vec<Value> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            prop_assert_eq!(replies.len(), reqs.len() + usize::from(noise_line));
            for r in &replies {
                prop_assert!(r["ok"].is_boolean(), "{}", r);
            }
        }
    }
}

/// Issue 15, finding 6: over TCP the control socket answered anyone
/// (a guest included). Now a session must send the token first; a
/// wrong one closes it.
#[test]
fn a_token_session_must_authenticate_first() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = registry(&dir);
    let lines = |input: &str| {
        let mut out = Vec::new();
        session(&reg, input.as_bytes(), &mut out, Some("s3cret"));
        String::from_utf8(out).unwrap()
    };
    let fault = r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":1}"#;
    // Nothing before auth, not even a fault.
    let out = lines(&format!("{fault}\n{{\"cmd\":\"devices\"}}\n"));
    assert_eq!(out.matches("authenticate first").count(), 2, "{out}");
    assert_eq!(
        reg.handle(r#"{"cmd":"fault","op":"list"}"#)["faults"],
        json!([])
    );
    // A wrong token ends the session: the request after it is unread.
    let out = lines("{\"cmd\":\"auth\",\"token\":\"s3cre\"}\n{\"cmd\":\"devices\"}\n");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("wrong token"));
    // The right one opens it.
    let out = lines("{\"cmd\":\"auth\",\"token\":\"s3cret\"}\n{\"cmd\":\"devices\"}\n");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], r#"{"ok":true}"#);
    assert!(l[1].starts_with(r#"{"devices""#), "{out}");
}

#[test]
fn token_files_must_be_private_and_not_empty() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "  abc123\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = read_token(&path).unwrap_err().to_string();
    assert!(e.contains("0600"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(&*read_token(&path).unwrap(), "abc123");
    std::fs::write(&path, "\n").unwrap();
    assert!(read_token(&path).unwrap_err().to_string().contains("empty"));
    std::fs::write(&path, "x".repeat(300)).unwrap();
    assert!(read_token(&path).is_err());
    assert!(read_token(&dir.path().join("missing")).is_err());
}

/// Issue 15, finding 7: a line that is not UTF-8 closed the session
/// with no reply.
#[test]
fn non_utf8_line_is_answered_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = registry(&dir);
    let mut out = Vec::new();
    session(
        &reg,
        &b"\xff\xfe{\n{\"cmd\":\"devices\"}\n"[..],
        &mut out,
        None,
    );
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("not UTF-8"), "{}", lines[0]);
    assert!(lines[1].starts_with("{\"devices\""), "{}", lines[1]);
}

/// Issue 15, finding 4: a checksum of a range larger than one chunk
/// reads it piecewise and gives the CRC of the whole.
#[test]
fn checksum_in_chunks_is_the_crc_of_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let bs = 4096;
    let blocks = (CHECKSUM_CHUNK * 2 + 3 * bs) / bs;
    let dev = Arc::new(
        Device::open(&DeviceConfig {
            path: dir.path().join("big"),
            size: (blocks * bs) as u64,
            block_size: bs as u32,
            zoned: None,
        })
        .unwrap(),
    );
    let mut reg = Registry::default();
    reg.add_device("lun0", Arc::clone(&dev));
    let data: Vec<u8> = (0..blocks * bs).map(|i| (i * 7 % 251) as u8).collect();
    dev.write(Lba::new(0), &data, false).unwrap();
    let v: Value = serde_json::from_value(reg.handle(&format!(
        r#"{{"cmd":"checksum","dev":"lun0","lba":0,"blocks":{blocks},"per_block":true}}"#
    )))
    .unwrap();
    assert_eq!(v["crc32c"], json!(crc32c::crc32c(&data)), "{v}");
    let per: Vec<u32> = data.chunks(CHECKSUM_BLOCK).map(crc32c::crc32c).collect();
    assert_eq!(v["block_crc32c"], json!(per));
    // More than MAX_CHECKSUM_BYTES: refused before reading anything.
    let huge = MAX_CHECKSUM_BYTES / bs as u64 + 1;
    let v = reg.handle(&format!(
        r#"{{"cmd":"checksum","dev":"lun0","lba":0,"blocks":{huge}}}"#
    ));
    assert_eq!(v["ok"], json!(false));
}

/// Issue 15, finding 4: fault rules are bounded per device.
#[test]
fn fault_rules_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = registry(&dir);
    let add = r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"media_error","lba":1}"#;
    for _ in 0..MAX_RULES {
        assert_eq!(reg.handle(add)["ok"], json!(true));
    }
    let v = reg.handle(add);
    assert_eq!(v["ok"], json!(false), "{v}");
    assert!(v["error"].as_str().unwrap().contains("fault rules"));
    reg.handle(r#"{"cmd":"fault","op":"clear"}"#);
    assert_eq!(reg.handle(add)["ok"], json!(true));
}

/// Issue 15, finding 4: failed accepts (EMFILE...) back off instead of
/// spinning, and the loop serves again once they stop failing; past
/// MAX_SESSIONS a client gets an error line.
#[test]
fn accept_failures_back_off_and_sessions_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = registry(&dir);
    let reg = Arc::new(reg);
    // 1. Every accept fails for 300 ms: a few dozen tries, not millions.
    let tries = std::cell::Cell::new(0u32);
    let t0 = std::time::Instant::now();
    accept_loop::<UnixStream>(
        "test",
        Arc::clone(&reg),
        None,
        || {
            tries.set(tries.get() + 1);
            Err(std::io::Error::from_raw_os_error(libc::EMFILE))
        },
        || t0.elapsed() > Duration::from_millis(300),
    );
    assert!((2..=20).contains(&tries.get()), "{} accepts", tries.get());
    // 2. MAX_SESSIONS clients hold their sessions; the next is refused.
    let mut held = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..=MAX_SESSIONS {
        let (a, b) = UnixStream::pair().unwrap();
        held.push(a);
        pending.push(b);
    }
    let mut refused = held.pop().unwrap();
    pending.reverse();
    let done = std::cell::Cell::new(false);
    accept_loop(
        "test",
        Arc::clone(&reg),
        None,
        || {
            pending.pop().ok_or_else(|| {
                done.set(true);
                std::io::Error::other("no more clients")
            })
        },
        || done.get(),
    );
    let mut line = String::new();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    BufReader::new(&mut refused).read_line(&mut line).unwrap();
    assert!(line.contains("control connections open"), "{line}");
    // A held session is served.
    let s = &mut held[0];
    s.write_all(b"{\"cmd\":\"devices\"}\n").unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    assert!(reply.starts_with("{\"devices\""), "{reply}");
}

#[test]
fn session_over_a_byte_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = registry(&dir);
    let input = b"{\"cmd\":\"stats\"}\n\n{\"cmd\":\"x\"}\n".to_vec();
    let mut out = Vec::new();
    session(&reg, &input[..], &mut out, None);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"ok\":true"));
    assert!(lines[1].contains("\"ok\":false"));
}
