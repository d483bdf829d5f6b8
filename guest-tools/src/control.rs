//! A client for the backend's control socket (JSON lines over TCP; see
//! `vhost-device/src/control`), reached from the guest through QEMU user
//! networking at the address given by `zonecopy.control=`.
//!
//! Requests are the contract crate's `control::Request`; the replies it
//! types (checksum, power cut, cache, the stats' timing section) are read
//! with serde, the rest (the other stats) with a tiny JSON scanner. A reply whose `"ok"` is not `true` is
//! an error carrying the backend's `"error"` text.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use zonecopy_contract::control::{
    CacheMode, CacheReply, ChecksumReply, FaultOp, FaultRequest, ForcedCondition, PowerCutReply,
    Request,
};
use zonecopy_contract::timing::Modeled;

/// Per-device counters from `{"cmd":"stats"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevStats {
    /// Bytes read by the initiator (host I/O).
    pub read_bytes: u64,
    /// Bytes written by the initiator.
    pub written_bytes: u64,
    /// Bytes written by offloaded copies into this device.
    pub copied_bytes: u64,
}

impl std::fmt::Display for DevStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {} written {} copied {}",
            self.read_bytes, self.written_bytes, self.copied_bytes
        )
    }
}

/// CRC32C of a stored range and of each 4 KiB of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// CRC32C of the whole range.
    pub crc: u32,
    /// CRC32C of each 4096 bytes (empty unless asked for).
    pub blocks: Vec<u32>,
}

/// The secret sent first on every control connection
/// (`zonecopy.control_token=`). Process-wide like the kernel command line
/// it comes from: set once by [`set_token`] when the suite starts, so every
/// client of the suite authenticates without each test passing it along.
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Set the control token (from the kernel command line); first call wins.
pub fn set_token(token: &str) {
    let _ = TOKEN.set(token.to_owned());
}

/// One request line out on `conn`, one reply line back.
fn roundtrip(conn: &mut (BufReader<TcpStream>, TcpStream), line: &str) -> Result<String, String> {
    let (r, w) = conn;
    w.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = String::new();
    match r.read_line(&mut reply) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) => Ok(reply),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// A connection to the control socket.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    conn: Option<(BufReader<TcpStream>, TcpStream)>,
}

const TIMEOUT: Duration = Duration::from_secs(20);

impl Client {
    /// A client for `addr`; connects on first use.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, conn: None }
    }

    /// Where this client connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn connect(&mut self) -> Result<&mut (BufReader<TcpStream>, TcpStream), String> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, TIMEOUT)
                .map_err(|e| format!("control {}: connect: {e}", self.addr))?;
            s.set_read_timeout(Some(TIMEOUT)).ok();
            s.set_write_timeout(Some(TIMEOUT)).ok();
            s.set_nodelay(true).ok();
            let r = s
                .try_clone()
                .map_err(|e| format!("control {}: {e}", self.addr))?;
            let mut conn = (BufReader::new(r), s);
            if let Some(token) = TOKEN.get() {
                let auth = Request::Auth {
                    token: token.clone(),
                };
                let reply = roundtrip(&mut conn, &auth.line())
                    .map_err(|e| format!("control {}: auth: {e}", self.addr))?;
                if find_value(&reply, "ok").map(str::trim) != Some("true") {
                    return Err(format!(
                        "control {}: auth refused: {}",
                        self.addr,
                        reply.trim()
                    ));
                }
            }
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| "control: not connected".to_string())
    }

    /// Send one request line, return the reply line (checked for `"ok":true`).
    /// A connection kept from an earlier request may have been closed by
    /// the backend meanwhile (it closes idle ones): then the request is
    /// sent once more on a new connection. The backend closes only while
    /// waiting for a line, so the first attempt was never executed.
    pub fn request(&mut self, line: &str) -> Result<String, String> {
        let reused = self.conn.is_some();
        let reply = match self.exchange(line) {
            Err(_) if reused => self.exchange(line)?,
            other => other?,
        };
        if find_value(&reply, "ok").map(str::trim) != Some("true") {
            let why = find_value(&reply, "error").unwrap_or(reply.trim());
            return Err(format!("control {line}: {why}"));
        }
        Ok(reply)
    }

    /// One request line out, one reply line back; drops the connection on
    /// any failure.
    fn exchange(&mut self, line: &str) -> Result<String, String> {
        let addr = self.addr;
        let res = self
            .connect()
            .and_then(|conn| roundtrip(conn, line).map_err(|e| format!("control {addr}: {e}")));
        if res.is_err() {
            self.conn = None;
        }
        res
    }

    /// Counters of device `dev` (`lun0`, ...).
    pub fn stats(&mut self, dev: &str) -> Result<DevStats, String> {
        let reply = self.request(&Request::Stats.line())?;
        parse_stats(&reply, dev)
    }

    /// The timing model of every modeled device (the `stats` reply's
    /// `timing` section: device name -> profile and counters); empty if
    /// none is modeled.
    pub fn timing(&mut self) -> Result<BTreeMap<String, Modeled>, String> {
        let reply = self.request(&Request::Stats.line())?;
        let v: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| format!("stats reply: {e}"))?;
        match v.get("stats").unwrap_or(&v).get("timing") {
            None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
            Some(section) => {
                serde_json::from_value(section.clone()).map_err(|e| format!("stats timing: {e}"))
            }
        }
    }

    /// CRC32C of `blocks` logical blocks from `lba` of `dev`, and of each
    /// 4 KiB of them.
    pub fn checksum(&mut self, dev: &str, lba: u64, blocks: u64) -> Result<Checksum, String> {
        let req = Request::Checksum {
            dev: dev.to_owned(),
            lba,
            blocks,
            per_block: true,
        };
        parse_checksum(&self.request(&req.line())?)
    }

    /// Put the zone starting at `lba` of `dev` in `cond` (`read_only` or
    /// `offline`) as the device would on its own; returns the zone's new
    /// condition as the backend names it (`read-only`, `offline`).
    pub fn zone_condition(&mut self, dev: &str, lba: u64, cond: &str) -> Result<String, String> {
        let cond = match cond {
            "read_only" => ForcedCondition::ReadOnly,
            "offline" => ForcedCondition::Offline,
            other => {
                return Err(format!(
                    "zone_condition: {other:?} is not read_only or offline"
                ))
            }
        };
        let req = Request::ZoneCondition {
            dev: dev.to_owned(),
            lba,
            cond,
        };
        let reply = self.request(&req.line())?;
        find_value(&reply, "cond")
            .map(str::to_owned)
            .ok_or_else(|| format!("zone_condition: no \"cond\" in {}", reply.trim()))
    }
}

/// Fault firings of one device, by kind (`stats` → `faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    pub media_error: u64,
    pub write_error: u64,
    pub copy_fail: u64,
    pub delay: u64,
}

/// What `{"cmd":"power_cut"}` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PowerCut {
    /// Unflushed blocks dropped.
    pub dropped_blocks: u64,
    /// Zones whose condition or write pointer went back.
    pub zones_rolled_back: u64,
}

impl Client {
    /// Add a fault rule to `dev`: `members` are the rule's JSON members,
    /// e.g. `"kind":"media_error","lba":8,"blocks":2,"count":1`. Returns
    /// its id.
    pub fn fault_add(&mut self, dev: &str, members: &str) -> Result<u64, String> {
        let rule = serde_json::from_str(&format!("{{{members}}}"))
            .map_err(|e| format!("fault rule {members}: {e}"))?;
        let req = Request::Fault(FaultRequest {
            op: FaultOp::Add,
            dev: Some(dev.to_owned()),
            rule,
        });
        num(&self.request(&req.line())?, "id")
    }

    /// Remove every fault rule of every device; how many there were.
    pub fn faults_clear(&mut self) -> Result<u64, String> {
        let req = Request::Fault(FaultRequest {
            op: FaultOp::Clear,
            dev: None,
            rule: Default::default(),
        });
        let reply = self.request(&req.line())?;
        num(&reply, "cleared")
    }

    /// Fault firings of `dev` so far.
    pub fn fault_counts(&mut self, dev: &str) -> Result<FaultCounts, String> {
        let reply = self.request(&Request::Stats.line())?;
        parse_fault_counts(&reply, dev)
    }

    /// Switch the volatile write cache of `dev` (`"volatile"` or
    /// `"none"`), or only report it (`None`); returns the mode now.
    pub fn cache_mode(&mut self, dev: &str, mode: Option<&str>) -> Result<String, String> {
        let mode = match mode {
            None => None,
            Some("volatile") => Some(CacheMode::Volatile),
            Some("none") => Some(CacheMode::None),
            Some(other) => return Err(format!("cache: {other:?} is not volatile or none")),
        };
        let req = Request::Cache {
            dev: dev.to_owned(),
            mode,
        };
        let reply: CacheReply = typed(&self.request(&req.line())?)?;
        Ok(match reply.cache {
            CacheMode::Volatile => "volatile",
            CacheMode::None => "none",
        }
        .to_owned())
    }

    /// Emulate a power loss of `dev` (its volatile write cache must be on).
    pub fn power_cut(&mut self, dev: &str) -> Result<PowerCut, String> {
        let req = Request::PowerCut {
            dev: dev.to_owned(),
        };
        let reply: PowerCutReply = typed(&self.request(&req.line())?)?;
        Ok(PowerCut {
            dropped_blocks: reply.dropped_blocks,
            zones_rolled_back: reply.zones_rolled_back,
        })
    }
}

/// Clears every fault rule when dropped (a test that fails or panics part
/// way still leaves the backend clean), over its own connection.
#[derive(Debug)]
pub struct FaultGuard {
    client: Client,
    armed: bool,
}

impl FaultGuard {
    /// A guard for the backend at `addr`; it clears any rule left over
    /// first, so a test starts clean.
    pub fn new(addr: SocketAddr) -> Result<Self, String> {
        let mut client = Client::new(addr);
        client.faults_clear()?;
        Ok(FaultGuard {
            client,
            armed: true,
        })
    }

    /// The guard's connection, to add rules with.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Clear now and say whether that worked.
    pub fn finish(mut self) -> Result<u64, String> {
        self.armed = false;
        self.client.faults_clear()
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.client.faults_clear();
        }
    }
}

fn num(reply: &str, key: &str) -> Result<u64, String> {
    find_value(reply, key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no number {key:?} in {}", reply.trim()))
}

/// The `faults` counters of one device in a stats reply.
pub fn parse_fault_counts(reply: &str, dev: &str) -> Result<FaultCounts, String> {
    let devices = find_value(reply, "devices").ok_or("stats: no \"devices\"")?;
    let d = find_value(devices, dev).ok_or_else(|| format!("stats: no device {dev:?}"))?;
    let f = find_value(d, "faults").ok_or_else(|| format!("stats: {dev}: no \"faults\""))?;
    Ok(FaultCounts {
        media_error: num(f, "media_error")?,
        write_error: num(f, "write_error")?,
        copy_fail: num(f, "copy_fail")?,
        delay: num(f, "delay")?,
    })
}

/// Parse the stats reply for one device.
pub fn parse_stats(reply: &str, dev: &str) -> Result<DevStats, String> {
    let devices = find_value(reply, "devices").ok_or("stats: no \"devices\"")?;
    let d = find_value(devices, dev).ok_or_else(|| format!("stats: no device {dev:?}"))?;
    let num = |k: &str| {
        find_value(d, k)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("stats: {dev}: no number {k:?}"))
    };
    Ok(DevStats {
        read_bytes: num("read_bytes")?,
        written_bytes: num("written_bytes")?,
        copied_bytes: num("copied_bytes")?,
    })
}

/// A reply as the contract types it.
fn typed<T: serde::de::DeserializeOwned>(reply: &str) -> Result<T, String> {
    serde_json::from_str(reply).map_err(|e| format!("bad reply {}: {e}", reply.trim()))
}

/// Parse a checksum reply.
pub fn parse_checksum(reply: &str) -> Result<Checksum, String> {
    let r: ChecksumReply = typed(reply)?;
    Ok(Checksum {
        crc: r.crc32c,
        blocks: r.block_crc32c.unwrap_or_default(),
    })
}

/// The raw text of the value of the first member `key` found at any depth
/// of `json` (strings unquoted, objects and arrays with their brackets).
/// Enough for the backend's replies; not a general JSON parser.
pub fn find_value<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let b = json.as_bytes();
    let mut from = 0;
    while let Some(i) = json[from..].find(&pat) {
        let mut j = from + i + pat.len();
        from = j;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b':') {
            continue; // a string value equal to the key, not a member name
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        return value_end(b, j).map(|(s, e)| &json[s..e]);
    }
    None
}

/// Start and end of the value beginning at `j` (string contents without
/// quotes).
fn value_end(b: &[u8], j: usize) -> Option<(usize, usize)> {
    match b.get(j)? {
        b'"' => {
            let mut k = j + 1;
            while k < b.len() {
                match b[k] {
                    b'\\' => k += 2,
                    b'"' => return Some((j + 1, k)),
                    _ => k += 1,
                }
            }
            None
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut k = j;
            let mut in_str = false;
            while k < b.len() {
                let c = b[k];
                if in_str {
                    match c {
                        b'\\' => k += 1,
                        b'"' => in_str = false,
                        _ => {}
                    }
                } else {
                    match c {
                        b'"' => in_str = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return Some((j, k + 1));
                            }
                        }
                        _ => {}
                    }
                }
                k += 1;
            }
            None
        }
        _ => {
            let mut k = j;
            while k < b.len() && !matches!(b[k], b',' | b'}' | b']') {
                k += 1;
            }
            Some((j, k))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = r#"{"devices":{"lun0":{"copied_bytes":8192,"flushes":1,"read_bytes":4096,"written_bytes":12288},"lun1":{"copied_bytes":0,"flushes":0,"read_bytes":7,"written_bytes":9}},"scsi":{"commands":{"lun0":3}},"ok":true}"#;

    #[test]
    fn stats_by_device() {
        assert_eq!(
            parse_stats(STATS, "lun0").unwrap(),
            DevStats {
                read_bytes: 4096,
                written_bytes: 12288,
                copied_bytes: 8192
            }
        );
        assert_eq!(parse_stats(STATS, "lun1").unwrap().written_bytes, 9);
        assert!(parse_stats(STATS, "lun7").is_err());
    }

    #[test]
    fn fault_counts_by_device() {
        let reply = r#"{"devices":{"ns1":{"cache_held_blocks":0,"copied_bytes":0,"faults":{"copy_fail":1,"delay":0,"media_error":2,"write_error":0},"flushes":0,"read_bytes":0,"written_bytes":0}},"ok":true}"#;
        assert_eq!(
            parse_fault_counts(reply, "ns1").unwrap(),
            FaultCounts {
                media_error: 2,
                write_error: 0,
                copy_fail: 1,
                delay: 0
            }
        );
        assert_eq!(parse_stats(reply, "ns1").unwrap().read_bytes, 0);
        assert!(parse_fault_counts(reply, "ns2").is_err());
        assert!(parse_fault_counts(STATS, "lun0").is_err());
    }

    #[test]
    fn checksum_reply() {
        let c =
            parse_checksum(r#"{"block_crc32c":[1, 2,4294967295],"crc32c":3,"ok":true}"#).unwrap();
        assert_eq!(c.crc, 3);
        assert_eq!(c.blocks, vec![1, 2, u32::MAX]);
        assert_eq!(
            parse_checksum(r#"{"crc32c":5,"ok":true}"#).unwrap().blocks,
            Vec::<u32>::new()
        );
        assert!(parse_checksum(r#"{"ok":true}"#).is_err());
    }

    /// The backend closes idle control connections: the next request goes
    /// out again on a new connection instead of failing the test.
    #[test]
    fn request_reconnects_after_the_backend_closed_an_idle_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            // First connection: answer one request, then close it as idle.
            for close_after_one in [true, false] {
                let (s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                w.write_all(b"{\"n\":1,\"ok\":true}\n").unwrap();
                if close_after_one {
                    continue;
                }
                line.clear();
                r.read_line(&mut line).unwrap();
                w.write_all(b"{\"n\":2,\"ok\":true}\n").unwrap();
            }
        });
        let mut c = Client::new(addr);
        assert!(c.request("{}").unwrap().contains("\"n\":1"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(c.request("{}").unwrap().contains("\"n\":1"));
        assert!(c.request("{}").unwrap().contains("\"n\":2"));
        server.join().unwrap();
    }

    #[test]
    fn scanner() {
        let j = r#"{"a":"x\"y","error":"no device \"lun9\"","ok" : false, "n":{"k":[1,{"z":2}]}}"#;
        assert_eq!(find_value(j, "a"), Some(r#"x\"y"#));
        assert_eq!(find_value(j, "ok"), Some("false"));
        assert_eq!(find_value(j, "n"), Some(r#"{"k":[1,{"z":2}]}"#));
        assert_eq!(find_value(j, "z"), Some("2"));
        assert_eq!(find_value(j, "missing"), None);
        // A string equal to a key is not a member.
        assert_eq!(find_value(r#"{"a":"b","b":1}"#, "b"), Some("1"));
        assert_eq!(find_value(r#"{"a":[1,2"#, "a"), None);
    }
}
