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
mod tests;
