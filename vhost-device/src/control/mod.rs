//! The control socket: JSON lines over a unix socket (and optionally a
//! loopback TCP port, which a guest reaches through QEMU user networking).
//!
//! One request object per line, one response object per line:
//!
//! | request | response |
//! | --- | --- |
//! | `{"cmd":"devices"}` | name, block size, capacity and zone geometry of each device |
//! | `{"cmd":"stats"}` | per device bytes read, written, copied by offload, flushes; plus every registered stats source (SCSI commands, fabric bytes) |
//! | `{"cmd":"checksum","dev":"lun0","lba":0,"blocks":16}` | CRC32C of the range as stored, and of each 4 KiB of it with `"per_block":true` |
//! | `{"cmd":"zones","dev":"lun0","lba":0,"max":64}` | zone descriptors from the zone containing `lba` |
//!
//! Every response has `"ok":true` or `"ok":false` with `"error"`. Control
//! reads do not count in the device statistics, so a suite can read
//! checksums between two stats snapshots without disturbing them.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    os::unix::net::UnixListener,
    path::Path,
    sync::Arc,
    thread,
};

use serde_json::{json, Value};

use crate::storage::{Device, Lba, ZoneCondition, ZoneType};

/// Something that reports counters under a name in `stats`.
pub trait StatsSource: Send + Sync {
    /// Key in the `stats` response.
    fn name(&self) -> &str;
    /// The counters now.
    fn snapshot(&self) -> Value;
}

/// What the control socket can see.
#[derive(Default)]
pub struct Registry {
    devices: Vec<(String, Arc<Device>)>,
    sources: Vec<Arc<dyn StatsSource>>,
}

/// Longest request line accepted, in bytes.
const MAX_LINE: u64 = 64 * 1024;
/// Largest range one checksum request may read, in bytes.
const MAX_CHECKSUM_BYTES: u64 = 1 << 30;
/// Bytes per block in `per_block` checksums (the stamped block size).
const CHECKSUM_BLOCK: usize = 4096;

impl Registry {
    /// Make `dev` visible as `name` (e.g. `lun0`, `ns1`).
    pub fn add_device(&mut self, name: impl Into<String>, dev: Arc<Device>) {
        self.devices.push((name.into(), dev));
    }

    /// Add a stats source.
    pub fn add_source(&mut self, source: Arc<dyn StatsSource>) {
        self.sources.push(source);
    }

    fn device(&self, req: &Value) -> Result<&Arc<Device>, String> {
        let name = req["dev"].as_str().ok_or("missing \"dev\"")?;
        self.devices
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| format!("no device {name:?}"))
    }

    /// Answer one request line.
    pub fn handle(&self, line: &str) -> Value {
        let res = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("bad JSON: {e}"))
            .and_then(|req| match req["cmd"].as_str() {
                Some("devices") => Ok(self.devices_json()),
                Some("stats") => Ok(self.stats_json()),
                Some("checksum") => self.checksum(&req),
                Some("zones") => self.zones(&req),
                Some(other) => Err(format!("unknown cmd {other:?}")),
                None => Err("missing \"cmd\"".to_owned()),
            });
        match res {
            Ok(mut v) => {
                v["ok"] = json!(true);
                v
            }
            Err(e) => json!({"ok": false, "error": e}),
        }
    }

    fn devices_json(&self) -> Value {
        let devs: Vec<Value> = self
            .devices
            .iter()
            .map(|(name, d)| {
                let g = d.geometry();
                let zones = g.zones.map(|z| {
                    json!({
                        "zone_blocks": z.zone_len.0,
                        "zone_cap_blocks": z.zone_cap.0,
                        "conventional": z.conventional,
                        "max_open": z.max_open,
                        "max_active": z.max_active,
                    })
                });
                json!({
                    "name": name,
                    "block_size": g.block_size,
                    "blocks": g.capacity.0,
                    "zones": zones,
                })
            })
            .collect();
        json!({ "devices": devs })
    }

    fn stats_json(&self) -> Value {
        let mut devices = serde_json::Map::new();
        for (name, d) in &self.devices {
            let s = d.stats();
            devices.insert(
                name.clone(),
                json!({
                    "read_bytes": s.read_bytes(),
                    "written_bytes": s.written_bytes(),
                    "copied_bytes": s.copied_bytes(),
                    "flushes": s.flushes(),
                }),
            );
        }
        let mut out = json!({ "devices": devices });
        for src in &self.sources {
            out[src.name()] = src.snapshot();
        }
        out
    }

    fn checksum(&self, req: &Value) -> Result<Value, String> {
        let dev = self.device(req)?;
        let lba = req["lba"].as_u64().ok_or("missing \"lba\"")?;
        let blocks = req["blocks"].as_u64().ok_or("missing \"blocks\"")?;
        let bs = u64::from(dev.geometry().block_size);
        let bytes = blocks
            .checked_mul(bs)
            .filter(|&b| b <= MAX_CHECKSUM_BYTES)
            .ok_or("range too large")?;
        let mut buf = vec![0u8; usize::try_from(bytes).map_err(|_| "range too large")?];
        dev.read_uncounted(Lba(lba), &mut buf)
            .map_err(|e| e.to_string())?;
        let mut out = json!({ "crc32c": crc32c::crc32c(&buf) });
        if req["per_block"].as_bool() == Some(true) {
            let per: Vec<u32> = buf.chunks(CHECKSUM_BLOCK).map(crc32c::crc32c).collect();
            out["block_crc32c"] = json!(per);
        }
        Ok(out)
    }

    fn zones(&self, req: &Value) -> Result<Value, String> {
        let dev = self.device(req)?;
        let lba = req["lba"].as_u64().unwrap_or(0);
        let max = req["max"].as_u64().unwrap_or(64).min(1 << 16) as usize;
        let zones = dev
            .report_zones(Lba(lba), max, |_| true)
            .map_err(|e| e.to_string())?;
        let zones: Vec<Value> = zones
            .iter()
            .map(|z| {
                json!({
                    "type": match z.zone_type {
                        ZoneType::Conventional => "conventional",
                        ZoneType::SequentialWriteRequired => "seq-write-required",
                    },
                    "cond": cond_name(z.cond),
                    "start": z.start.0,
                    "len": z.len.0,
                    "cap": z.cap.0,
                    "wp": z.wp.0,
                })
            })
            .collect();
        Ok(json!({ "zones": zones }))
    }
}

fn cond_name(c: ZoneCondition) -> &'static str {
    match c {
        ZoneCondition::NotWritePointer => "not-write-pointer",
        ZoneCondition::Empty => "empty",
        ZoneCondition::ImplicitOpen => "implicit-open",
        ZoneCondition::ExplicitOpen => "explicit-open",
        ZoneCondition::Closed => "closed",
        ZoneCondition::ReadOnly => "read-only",
        ZoneCondition::Full => "full",
        ZoneCondition::Offline => "offline",
    }
}

/// Serve one client: a request per line until it hangs up. A line longer
/// than [`MAX_LINE`] ends the session.
fn session(reg: &Registry, stream: impl Read, mut out: impl Write) {
    let mut reader = BufReader::new(stream.take(u64::MAX));
    loop {
        let mut line = String::new();
        let mut limited = (&mut reader).take(MAX_LINE);
        match limited.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') && line.len() as u64 >= MAX_LINE => {
                let _ = writeln!(out, "{}", json!({"ok": false, "error": "line too long"}));
                return;
            }
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        let resp = reg.handle(line.trim());
        if writeln!(out, "{resp}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// Serve the control protocol on a unix socket at `path` (a stale socket
/// file is replaced), a thread per client.
pub fn serve_unix(path: &Path, reg: Arc<Registry>) -> std::io::Result<thread::JoinHandle<()>> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    Ok(thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let reg = Arc::clone(&reg);
            thread::spawn(move || {
                if let Ok(read) = stream.try_clone() {
                    session(&reg, read, stream);
                }
            });
        }
    }))
}

/// Serve the control protocol on a TCP listener (bind it to loopback), a
/// thread per client.
pub fn serve_tcp(listener: TcpListener, reg: Arc<Registry>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let reg = Arc::clone(&reg);
            thread::spawn(move || {
                if let Ok(read) = stream.try_clone() {
                    session(&reg, read, stream);
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
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
        dev.write(Lba(16), &data, false).unwrap();
        let r =
            reg.handle(r#"{"cmd":"checksum","dev":"lun0","lba":16,"blocks":2,"per_block":true}"#);
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
        dev.write(Lba(16), &[1u8; 4096], false).unwrap();
        let z = reg.handle(r#"{"cmd":"zones","dev":"lun0","lba":16,"max":2}"#);
        assert_eq!(z["zones"][0]["cond"], "implicit-open");
        assert_eq!(z["zones"][0]["wp"], 17);
        assert_eq!(z["zones"][1]["cond"], "empty");
        let d = reg.handle(r#"{"cmd":"devices"}"#);
        assert_eq!(d["devices"][0]["blocks"], 256);
        assert_eq!(d["devices"][0]["zones"]["zone_blocks"], 16);
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

    #[test]
    fn session_over_a_byte_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (reg, _) = registry(&dir);
        let input = b"{\"cmd\":\"stats\"}\n\n{\"cmd\":\"x\"}\n".to_vec();
        let mut out = Vec::new();
        session(&reg, &input[..], &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("\"ok\":true"));
        assert!(lines[1].contains("\"ok\":false"));
    }
}
