//! The control socket: JSON lines over a unix socket (and optionally a
//! loopback TCP port, which a guest reaches through QEMU user networking).
//!
//! One request object per line, one response object per line:
//!
//! | request | response |
//! | --- | --- |
//! | `{"cmd":"devices"}` | name, block size, capacity and zone geometry of each device |
//! | `{"cmd":"stats"}` | per device bytes read, written, copied by offload, flushes; plus every registered stats source (SCSI commands, fabric bytes, `timing`: per modeled namespace its profile and modeled counters, see src/timing) |
//! | `{"cmd":"checksum","dev":"lun0","lba":0,"blocks":16}` | CRC32C of the range as stored, and of each 4 KiB of it with `"per_block":true` |
//! | `{"cmd":"zones","dev":"lun0","lba":0,"max":64}` | zone descriptors from the zone containing `lba` |
//! | `{"cmd":"zone_condition","dev":"lun0","lba":N,"cond":"read_only"}` | puts the write pointer zone starting at `lba` in READ ONLY (or `"offline"`) as the device would on its own (ZBC-2 4.4.3.2.6/4.4.3.2.8, ZNS 2.1.1.4/2.1.1.6), persisted; `lba` not a zone start, a conventional zone, another `cond`, or OFFLINE -> READ ONLY is an error; answers the zone as `zones` does |
//!
//! | `{"cmd":"fault","dev":"ns1","op":"add","kind":K,...,"count":N}` | adds a fault rule (`storage::fault`), answers its `"id"`; `count` (optional): fires N times then expires. Kinds and their keys: `"media_error"` and `"write_error"`: `"lba"`, `"blocks"` (default 1); `"copy_fail"`: `"segment"` (0-based source range / segment descriptor number) and/or `"after_blocks"` (without `segment`: blocks of the whole command; with it: of that segment, default 0), `"error"`: `"write"` (default) or `"read"`; `"delay"`: `"ms"` (at most 600000), `"on"`: `"read"`, `"write"`, `"copy"`, `"flush"` or `"any"` (default), optional `"lba"`, `"blocks"` |
//! | `{"cmd":"fault","dev":"ns1","op":"remove","id":N}` | removes rule N |
//! | `{"cmd":"fault","op":"clear"}` | removes every rule (of `"dev"` if given, else of every device), answers `"cleared"` |
//! | `{"cmd":"fault","op":"list"}` | the rules in force (of `"dev"` if given), each with `"dev"`, `"id"`, `"kind"`, its keys, `"remaining"` (null: until cleared) and `"fired"` |
//! | `{"cmd":"cache","dev":"ns3","mode":"volatile"}` | turns the volatile write cache on (`"volatile"`) or off (`"none"`), making everything written so far durable first; without `"mode"` only reports; answers `"cache"` and `"held_blocks"` |
//! | `{"cmd":"power_cut","dev":"ns3"}` | emulates a power loss of a device with its volatile write cache on: unflushed writes are dropped, zones go back to their persisted state; answers `"dropped_blocks"`, `"zones_rolled_back"`; an error without the cache |
//!
//! | `{"cmd":"trace","op":"start","file":PATH}` | starts recording (`src/trace`), between two commands, imaging the devices; optional `"data"` (`"whole"`, `"digest"`), `"max_bytes"`, `"keep"`; `"op":"stop"` ends it, `"op":"status"` reports |
//!
//! `stats` also has, per device, `"faults"` (firings by kind) and
//! `"cache_held_blocks"`; `devices` has each device's `"cache"` mode.
//!
//! Every response has `"ok":true` or `"ok":false` with `"error"`. Control
//! reads do not count in the device statistics, so a suite can read
//! checksums between two stats snapshots without disturbing them.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::net::UnixStream,
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use serde::Deserialize;
use serde_json::{json, Value};
use zonecopy_contract::control::{
    CacheMode, ChecksumReply, ForcedCondition, PowerCutReply, Request, Zone, ZonesReply,
};

use crate::transport::serve::AcceptBackoff;

use crate::storage::{
    fault::{BlockRange, CopyFailAt, CopyFailError, FaultKind, Op, Rule, MAX_DELAY_MS, MAX_RULES},
    BlockCount, Device, Lba, ZoneCondition, ZoneType,
};

/// Something that reports counters under a name in `stats`: owned by
/// [`crate::stats`], below the front ends; the control socket only reads.
pub use crate::stats::StatsSource;

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
/// Bytes a checksum request reads at a time.
const CHECKSUM_CHUNK: usize = 1 << 20;
/// Most control connections served at once; more are answered with an
/// error and closed.
pub const MAX_SESSIONS: usize = 16;
/// A connection that sends nothing for this long is closed (clients
/// reconnect; the runner and the guest hold one across a whole suite and
/// retry once on a closed connection).
const SESSION_IDLE: Duration = Duration::from_secs(300);

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
        self.named(name)
    }

    fn named(&self, name: &str) -> Result<&Arc<Device>, String> {
        self.devices
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| format!("no device {name:?}"))
    }

    /// Answer one request line (a [`Request`] of the contract crate).
    pub fn handle(&self, line: &str) -> Value {
        crate::trace::RECORDER.control(line, || self.handle_untraced(line))
    }

    /// [`Registry::handle`] without the trace hook (what a replay runs).
    pub fn handle_untraced(&self, line: &str) -> Value {
        let res = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("bad JSON: {e}"))
            .and_then(|v| {
                let req = Request::deserialize(&v).map_err(|e| format!("bad request: {e}"))?;
                self.answer(req, &v)
            });
        match res {
            Ok(mut v) => {
                v["ok"] = json!(true);
                v
            }
            Err(e) => json!({"ok": false, "error": e}),
        }
    }

    /// `raw`: the request as sent (a fault rule's members).
    fn answer(&self, req: Request, raw: &Value) -> Result<Value, String> {
        match req {
            Request::Devices => Ok(self.devices_json()),
            Request::Stats => Ok(self.stats_json()),
            Request::Checksum {
                dev,
                lba,
                blocks,
                per_block,
            } => self.checksum(&dev, lba, blocks, per_block),
            Request::Zones { dev, lba, max } => self.zones(&dev, lba, max),
            Request::ZoneCondition { dev, lba, cond } => self.zone_condition(&dev, lba, cond),
            Request::Fault(_) => self.fault(raw),
            Request::PowerCut { dev } => self.power_cut(&dev),
            Request::Cache { dev, mode } => self.cache(&dev, mode),
            Request::Trace(t) => crate::trace::control_command(t),
            Request::Auth { .. } => Err("auth comes first on a TCP connection, and once".into()),
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
                        "zone_blocks": z.zone_len.get(),
                        "zone_cap_blocks": z.zone_cap.get(),
                        "conventional": z.conventional,
                        "max_open": z.max_open,
                        "max_active": z.max_active,
                    })
                });
                json!({
                    "name": name,
                    "block_size": g.block_size,
                    "blocks": g.capacity.get(),
                    "zones": zones,
                    "cache": cache_mode(d),
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
                    "faults": fault_counts(d),
                    "cache_held_blocks": d.cached_blocks(),
                }),
            );
        }
        let mut out = json!({ "devices": devices });
        for src in &self.sources {
            out[src.name()] = src.snapshot();
        }
        out
    }

    fn checksum(&self, dev: &str, lba: u64, blocks: u64, per_block: bool) -> Result<Value, String> {
        let dev = self.named(dev)?;
        let bs = u64::from(dev.geometry().block_size);
        let bytes = blocks
            .checked_mul(bs)
            .filter(|&b| b <= MAX_CHECKSUM_BYTES)
            .ok_or("range too large")?;
        // Read in chunks: a 1 GiB range costs one chunk of memory, not
        // 1 GiB (and the per-block list 4 bytes a block).
        let chunk_blocks = (CHECKSUM_CHUNK as u64 / bs).max(1);
        let mut buf = vec![0u8; (chunk_blocks * bs).min(bytes) as usize];
        let (mut crc, mut per) = (0u32, Vec::new());
        let mut done = 0u64;
        while done < blocks {
            let n = chunk_blocks.min(blocks - done);
            let part = &mut buf[..(n * bs) as usize];
            let at = lba.checked_add(done).ok_or("range too large")?;
            dev.read_uncounted(Lba::new(at), part)
                .map_err(|e| e.to_string())?;
            crc = crc32c::crc32c_append(crc, part);
            if per_block {
                per.extend(part.chunks(CHECKSUM_BLOCK).map(crc32c::crc32c));
            }
            done += n;
        }
        let reply = ChecksumReply {
            crc32c: crc,
            block_crc32c: per_block.then_some(per),
        };
        serde_json::to_value(reply).map_err(|e| e.to_string())
    }

    fn zones(&self, dev: &str, lba: u64, max: u64) -> Result<Value, String> {
        let dev = self.named(dev)?;
        let max = max.min(1 << 16) as usize;
        let zones = dev
            .report_zones(Lba::new(lba), max, |_| true)
            .map_err(|e| e.to_string())?;
        let zones = zones
            .iter()
            .map(|z| Zone {
                zone_type: match z.zone_type {
                    ZoneType::Conventional => "conventional",
                    ZoneType::SequentialWriteRequired => "seq-write-required",
                    ZoneType::SequentialWritePreferred => "seq-write-preferred",
                }
                .to_owned(),
                cond: cond_name(z.cond).to_owned(),
                start: z.start.get(),
                len: z.len.get(),
                cap: z.cap.get(),
                wp: z.wp.get(),
            })
            .collect();
        serde_json::to_value(ZonesReply { zones }).map_err(|e| e.to_string())
    }
}

impl Registry {
    /// `zone_condition`: a controller-initiated READ ONLY or OFFLINE zone.
    fn zone_condition(&self, name: &str, lba: u64, cond: ForcedCondition) -> Result<Value, String> {
        let dev = self.named(name)?;
        let cond = match cond {
            ForcedCondition::ReadOnly => ZoneCondition::ReadOnly,
            ForcedCondition::Offline => ZoneCondition::Offline,
        };
        dev.set_zone_condition(Lba::new(lba), cond)
            .map_err(|e| e.to_string())?;
        self.zones(name, lba, 1)
    }
}

impl Registry {
    /// The devices a request names (`"dev"`), or all of them without one.
    fn devices_named(&self, req: &Value) -> Result<Vec<&(String, Arc<Device>)>, String> {
        match req.get("dev") {
            None | Some(Value::Null) => Ok(self.devices.iter().collect()),
            Some(_) => {
                let d = self.device(req)?;
                Ok(self
                    .devices
                    .iter()
                    .filter(|(_, x)| Arc::ptr_eq(x, d))
                    .collect())
            }
        }
    }

    /// `fault`: add, remove, clear or list fault rules.
    fn fault(&self, req: &Value) -> Result<Value, String> {
        match req["op"].as_str() {
            Some("add") => {
                let dev = self.device(req)?;
                let kind = parse_fault(req, dev)?;
                let count = opt_u64(req, "count")?;
                if count == Some(0) {
                    return Err("\"count\" must be at least 1".into());
                }
                match dev.faults().add(kind, count) {
                    0 => Err(format!(
                        "{} holds {MAX_RULES} fault rules already",
                        req["dev"]
                    )),
                    id => Ok(json!({ "id": id })),
                }
            }
            Some("remove") => {
                let dev = self.device(req)?;
                let id = req["id"].as_u64().ok_or("missing \"id\"")?;
                if !dev.faults().remove(id) {
                    return Err(format!("no fault {id} on {}", req["dev"]));
                }
                Ok(json!({}))
            }
            Some("clear") => {
                let n: usize = self
                    .devices_named(req)?
                    .iter()
                    .map(|(_, d)| d.faults().clear())
                    .sum();
                Ok(json!({ "cleared": n }))
            }
            Some("list") => {
                let mut out = Vec::new();
                for (name, d) in self.devices_named(req)? {
                    out.extend(d.faults().list().iter().map(|r| rule_json(name, r)));
                }
                Ok(json!({ "faults": out }))
            }
            Some(other) => Err(format!(
                "op {other:?} is not \"add\", \"remove\", \"clear\" or \"list\""
            )),
            None => Err("missing \"op\" (add, remove, clear, list)".into()),
        }
    }

    /// `power_cut`: drop the unflushed writes of a device with a volatile
    /// write cache.
    fn power_cut(&self, name: &str) -> Result<Value, String> {
        let dev = self.named(name)?;
        match dev.power_cut().map_err(|e| e.to_string())? {
            Some(cut) => serde_json::to_value(PowerCutReply {
                dropped_blocks: cut.dropped_blocks,
                zones_rolled_back: cut.zones_rolled_back,
            })
            .map_err(|e| e.to_string()),
            None => Err(format!(
                "{name:?} has no volatile write cache (cache=volatile, or {{\"cmd\":\"cache\",\"mode\":\"volatile\"}})"
            )),
        }
    }

    /// `cache`: report or switch the volatile write cache.
    fn cache(&self, name: &str, mode: Option<CacheMode>) -> Result<Value, String> {
        let dev = self.named(name)?;
        if let Some(mode) = mode {
            dev.set_volatile_cache(mode == CacheMode::Volatile)
                .map_err(|e| e.to_string())?;
        }
        Ok(json!({
            "cache": cache_mode(dev),
            "held_blocks": dev.cached_blocks(),
        }))
    }
}

fn cache_mode(d: &Device) -> &'static str {
    if d.volatile_cache() {
        "volatile"
    } else {
        "none"
    }
}

fn fault_counts(d: &Device) -> Value {
    let c = d.faults().counts();
    json!({
        "media_error": c.media_error,
        "write_error": c.write_error,
        "copy_fail": c.copy_fail,
        "delay": c.delay,
    })
}

/// An optional unsigned number: absent or null is `None`, anything but a
/// non-negative integer an error.
fn opt_u64(req: &Value, key: &str) -> Result<Option<u64>, String> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("\"{key}\" must be a non-negative integer, not {v}")),
    }
}

/// `"lba"` and `"blocks"` (default 1) as a range inside `dev`.
fn parse_range(req: &Value, dev: &Device) -> Result<BlockRange, String> {
    let lba = opt_u64(req, "lba")?.ok_or("missing \"lba\"")?;
    let blocks = opt_u64(req, "blocks")?.unwrap_or(1);
    if blocks == 0 {
        return Err("\"blocks\" must be at least 1".into());
    }
    dev.geometry()
        .check_range(Lba::new(lba), BlockCount::new(blocks))
        .map_err(|e| e.to_string())?;
    Ok(BlockRange {
        lba: Lba::new(lba),
        blocks: BlockCount::new(blocks),
    })
}

/// The fault a `fault` `add` request describes.
fn parse_fault(req: &Value, dev: &Device) -> Result<FaultKind, String> {
    match req["kind"].as_str() {
        Some("media_error") => Ok(FaultKind::MediaError(parse_range(req, dev)?)),
        Some("write_error") => Ok(FaultKind::WriteError(parse_range(req, dev)?)),
        Some("copy_fail") => {
            let segment = opt_u64(req, "segment")?;
            let after = opt_u64(req, "after_blocks")?;
            let at = match (segment, after) {
                (Some(i), blocks) => CopyFailAt::Segment {
                    index: usize::try_from(i).map_err(|_| "\"segment\" too large")?,
                    blocks: blocks.unwrap_or(0),
                },
                (None, Some(n)) => CopyFailAt::Blocks(n),
                (None, None) => {
                    return Err("copy_fail needs \"segment\" or \"after_blocks\"".into())
                }
            };
            let error = match req.get("error").and_then(Value::as_str) {
                None | Some("write") => CopyFailError::Write,
                Some("read") => CopyFailError::Read,
                Some(other) => {
                    return Err(format!("\"error\" {other:?} is not \"write\" or \"read\""))
                }
            };
            Ok(FaultKind::CopyFail { at, error })
        }
        Some("delay") => {
            let ms = opt_u64(req, "ms")?.ok_or("missing \"ms\"")?;
            if ms > MAX_DELAY_MS {
                return Err(format!("\"ms\" {ms} is more than {MAX_DELAY_MS}"));
            }
            let on = match req.get("on").and_then(Value::as_str) {
                None | Some("any") => None,
                Some("read") => Some(Op::Read),
                Some("write") => Some(Op::Write),
                Some("copy") => Some(Op::Copy),
                Some("flush") => Some(Op::Flush),
                Some(other) => return Err(format!("\"on\" {other:?} is not an operation")),
            };
            let range = match req.get("lba") {
                None | Some(Value::Null) => None,
                Some(_) => Some(parse_range(req, dev)?),
            };
            Ok(FaultKind::Delay { ms, on, range })
        }
        Some(other) => Err(format!(
            "kind {other:?} is not media_error, write_error, copy_fail or delay"
        )),
        None => Err("missing \"kind\"".into()),
    }
}

fn rule_json(dev: &str, r: &Rule) -> Value {
    let mut v = json!({
        "dev": dev,
        "id": r.id,
        "kind": r.kind.name(),
        "remaining": r.remaining,
        "fired": r.fired,
    });
    match r.kind {
        FaultKind::MediaError(g) | FaultKind::WriteError(g) => {
            v["lba"] = json!(g.lba.get());
            v["blocks"] = json!(g.blocks.get());
        }
        FaultKind::CopyFail { at, error } => {
            match at {
                CopyFailAt::Segment { index, blocks } => {
                    v["segment"] = json!(index);
                    v["after_blocks"] = json!(blocks);
                }
                CopyFailAt::Blocks(n) => v["after_blocks"] = json!(n),
            }
            v["error"] = json!(match error {
                CopyFailError::Write => "write",
                CopyFailError::Read => "read",
            });
        }
        FaultKind::Delay { ms, on, range } => {
            v["ms"] = json!(ms);
            v["on"] = json!(on.map_or("any", Op::name));
            if let Some(g) = range {
                v["lba"] = json!(g.lba.get());
                v["blocks"] = json!(g.blocks.get());
            }
        }
    }
    v
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

/// Longest token accepted from a token file, in bytes.
const MAX_TOKEN: u64 = 256;

/// The TCP control token from `path`: a file only its owner may read
/// (mode 0600 or stricter), at most [`MAX_TOKEN`] bytes, trimmed, not empty.
pub fn read_token(path: &Path) -> std::io::Result<Arc<str>> {
    use std::os::unix::fs::PermissionsExt;
    let bad = |why: String| std::io::Error::other(format!("control token file {path:?}: {why}"));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "mode {mode:o} lets others read it; make it 0600"
        )));
    }
    if meta.len() > MAX_TOKEN {
        return Err(bad(format!("longer than {MAX_TOKEN} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bad("empty".into()));
    }
    Ok(Arc::from(token))
}

/// Equal, in time that depends on the lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where a session stands with its token.
enum Auth<'t> {
    /// No token needed (the unix socket), or sent already.
    Open,
    /// `{"cmd":"auth","token":...}` must come first.
    Required(&'t str),
}

impl Auth<'_> {
    /// Gate one request line: `Ok(None)` to handle it, `Ok(Some(reply))`
    /// to answer without handling it, `Err(reply)` to answer and close (a
    /// wrong token).
    fn gate(&mut self, line: &str) -> Result<Option<Value>, Value> {
        let Auth::Required(token) = *self else {
            return Ok(None);
        };
        let req: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if req["cmd"].as_str() != Some("auth") {
            return Ok(Some(json!({
                "ok": false,
                "error": "authenticate first: {\"cmd\":\"auth\",\"token\":\"...\"}",
            })));
        }
        let sent = req["token"].as_str().unwrap_or_default();
        if !same_secret(sent.as_bytes(), token.as_bytes()) {
            log::warn!("control: wrong token, closing the connection");
            return Err(json!({"ok": false, "error": "wrong token"}));
        }
        *self = Auth::Open;
        Ok(Some(json!({"ok": true})))
    }
}

/// Serve one client: a request per line until it hangs up. A line longer
/// than [`MAX_LINE`] ends the session; a line that is not UTF-8 is answered
/// with an error and the session goes on. With a `token`, the first
/// request must be `auth` with it; a wrong one ends the session.
fn session(reg: &Registry, stream: impl Read, out: impl Write, token: Option<&str>) {
    let mut auth = token.map_or(Auth::Open, Auth::Required);
    // One write per reply, not one per JSON token (a `zones` dump of 100k
    // zones took 14-27 s unbuffered).
    let mut out = std::io::BufWriter::new(out);
    let mut reader = BufReader::new(stream);
    loop {
        let mut raw = Vec::new();
        let mut limited = (&mut reader).take(MAX_LINE);
        match limited.read_until(b'\n', &mut raw) {
            // Hung up, idle past SESSION_IDLE, or failed.
            Ok(0) | Err(_) => return,
            Ok(_) if raw.last() != Some(&b'\n') && raw.len() as u64 >= MAX_LINE => {
                let _ = writeln!(out, "{}", json!({"ok": false, "error": "line too long"}));
                return;
            }
            Ok(_) => {}
        }
        let resp = match std::str::from_utf8(&raw) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => match auth.gate(line.trim()) {
                Ok(None) => reg.handle(line.trim()),
                Ok(Some(reply)) => reply,
                Err(reply) => {
                    let _ = writeln!(out, "{reply}").and_then(|()| out.flush());
                    return;
                }
            },
            Err(e) => {
                log::debug!("control: request is not UTF-8: {e}");
                json!({"ok": false, "error": format!("request is not UTF-8: {e}")})
            }
        };
        if writeln!(out, "{resp}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// A connection the control protocol can be served on.
trait Conn: Read + Write + Send + Sized + 'static {
    fn try_clone(&self) -> std::io::Result<Self>;
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()>;
}

impl Conn for UnixStream {
    fn try_clone(&self) -> std::io::Result<Self> {
        UnixStream::try_clone(self)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
}

impl Conn for TcpStream {
    fn try_clone(&self) -> std::io::Result<Self> {
        TcpStream::try_clone(self)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
}

/// Accept connections with `accept` for ever, a thread per client, at most
/// [`MAX_SESSIONS`] at once. A failed accept (EMFILE, ENFILE, ENOMEM) is
/// logged once per run of failures and backed off, never fatal: the
/// listener keeps serving once descriptors are free again.
fn accept_loop<C: Conn>(
    what: &'static str,
    reg: Arc<Registry>,
    token: Option<Arc<str>>,
    mut accept: impl FnMut() -> std::io::Result<C>,
    stop: impl Fn() -> bool,
) {
    let live = Arc::new(AtomicUsize::new(0));
    let mut backoff = AcceptBackoff::new(what);
    while !stop() {
        let stream = match accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                backoff.failed(&e);
                continue;
            }
        };
        backoff.succeeded();
        if live.fetch_add(1, Ordering::AcqRel) >= MAX_SESSIONS {
            live.fetch_sub(1, Ordering::AcqRel);
            log::warn!("{what}: refused, {MAX_SESSIONS} connections open");
            let mut s = stream;
            let _ = writeln!(
                s,
                "{}",
                json!({"ok": false, "error": format!("{MAX_SESSIONS} control connections open already")})
            );
            continue;
        }
        let (reg, live, token) = (Arc::clone(&reg), Arc::clone(&live), token.clone());
        let spawned = thread::Builder::new()
            .name(what.to_string())
            .spawn(move || {
                if stream.set_read_timeout(Some(SESSION_IDLE)).is_ok() {
                    if let Ok(read) = stream.try_clone() {
                        session(&reg, read, stream, token.as_deref());
                    }
                }
                live.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            log::error!("{what}: cannot start a thread: {e}");
        }
    }
}

/// Serve the control protocol on a unix socket at `path` (a stale socket
/// file is replaced; any other file, or a socket someone listens on, is an
/// error), mode 0600, a thread per client.
pub fn serve_unix(path: &Path, reg: Arc<Registry>) -> std::io::Result<thread::JoinHandle<()>> {
    let listener = crate::transport::serve::bind_private(path)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(thread::spawn(move || {
        accept_loop(
            "control unix",
            reg,
            None,
            || listener.accept().map(|(s, _)| s),
            || false,
        )
    }))
}

/// Serve the control protocol on a TCP listener (bind it to loopback), a
/// thread per client; every client must send `token` first.
pub fn serve_tcp(
    listener: TcpListener,
    reg: Arc<Registry>,
    token: Arc<str>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        accept_loop(
            "control tcp",
            reg,
            Some(token),
            || {
                listener.accept().map(|(s, _)| {
                    // Replies are one line each: send them at once.
                    let _ = s.set_nodelay(true);
                    s
                })
            },
            || false,
        )
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
        let r = reg.handle(
            r#"{"cmd":"fault","dev":"lun0","op":"add","kind":"delay","ms":1,"on":"flush"}"#,
        );
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
}
