//! The backend's control socket seen from the runner: one JSON request
//! line, one JSON response line (the protocol is in
//! vhost-device/src/control). The runner saves the backend's statistics and
//! zone dumps after every boot, and compares zone dumps across a backend
//! restart.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use serde_json::Value;

pub use zonecopy_contract::control::Zone;
use zonecopy_contract::control::{ChecksumReply, Request, ZonesReply};

use crate::{lun::LunArg, ns::NsArg};

/// How long one request may take (connect, send, answer).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one request line, returns the response line (without its
/// newline) if it says `"ok":true`.
pub fn query(socket: &Path, request: &str) -> Result<String, String> {
    let mut s = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("cannot set a timeout: {e}"))?;
    s.write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("{request}: cannot send: {e}"))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| format!("{request}: no answer: {e}"))?;
    let line = line.trim_end().to_owned();
    check_response(request, &line)?;
    Ok(line)
}

/// A response must be a JSON object with `"ok":true`.
fn check_response(request: &str, line: &str) -> Result<(), String> {
    if line.is_empty() {
        return Err(format!("{request}: the backend closed the connection"));
    }
    let v: Value =
        serde_json::from_str(line).map_err(|e| format!("{request}: bad JSON answer: {e}"))?;
    if v["ok"] == Value::Bool(true) {
        Ok(())
    } else {
        Err(format!("{request}: {}", v["error"]))
    }
}

/// The `zones` request for LUN `index`: every zone, from LBA 0. `None` for
/// a LUN without zones.
pub fn zones_request(index: usize, lun: &LunArg) -> Option<String> {
    every_zone(&format!("lun{index}"), lun.spec.nr_zones()?)
}

/// A `zones` request for `zones` zones of `dev` from LBA 0.
fn every_zone(dev: &str, zones: u64) -> Option<String> {
    let req = Request::Zones {
        dev: dev.to_owned(),
        lba: 0,
        max: zones,
    };
    Some(req.line())
}

/// File name of LUN `index`'s zone dump.
pub fn zones_file(index: usize) -> String {
    format!("zones-lun{index}.json")
}

pub const STATS_REQUEST: &str = r#"{"cmd":"stats"}"#;
pub const STATS_FILE: &str = "stats.json";

/// The `zones` request for namespace `nsid` (device `ns<NSID>`), and its
/// file name `zones-ns<NSID>.json`; `None` for a conventional namespace.
pub fn ns_zones_request(nsid: usize, ns: &NsArg) -> Option<(String, String)> {
    let request = every_zone(&format!("ns{nsid}"), ns.spec.nr_zones()?)?;
    Some((format!("zones-ns{nsid}.json"), request))
}

/// Saves `stats.json`, `zones-lun<N>.json` (zoned LUNs) and
/// `zones-ns<NSID>.json` (zoned namespaces) into `out`. Returns what could
/// not be saved; never fails otherwise.
pub fn save_dumps(socket: &Path, luns: &[LunArg], namespaces: &[NsArg], out: &Path) -> Vec<String> {
    let mut requests = vec![(STATS_FILE.to_owned(), STATS_REQUEST.to_owned())];
    for (i, l) in luns.iter().enumerate() {
        if let Some(r) = zones_request(i, l) {
            requests.push((zones_file(i), r));
        }
    }
    for (i, n) in namespaces.iter().enumerate() {
        requests.extend(ns_zones_request(i + 1, n));
    }
    let mut notes = Vec::new();
    for (file, request) in requests {
        let saved = query(socket, &request).and_then(|line| {
            std::fs::write(out.join(&file), line + "\n")
                .map_err(|e| format!("cannot write {file}: {e}"))
        });
        if let Err(e) = saved {
            notes.push(format!("control socket: {e}"));
        }
    }
    notes
}

/// One zone as the `zones` request reports it.
/// Parses a `zones` response line.
pub fn parse_zones(line: &str) -> Result<Vec<Zone>, String> {
    serde_json::from_str::<ZonesReply>(line)
        .map(|r| r.zones)
        .map_err(|e| format!("bad zones reply: {e}"))
}

/// What a zone must look like after the backend restarts: the same write
/// pointer; an open zone (implicit or explicit) comes back CLOSED, or EMPTY
/// / FULL when its write pointer is at its start / capacity end (ZBC power
/// on; zonecopy-vhost's `ZoneTable::restore`). Other conditions stay.
pub fn after_restart(z: &Zone) -> Zone {
    let mut e = z.clone();
    if matches!(
        z.cond.as_str(),
        "implicit-open" | "explicit-open" | "closed"
    ) {
        e.cond = if z.wp == z.start {
            "empty"
        } else if z.wp == z.start.saturating_add(z.cap) {
            "full"
        } else {
            "closed"
        }
        .to_owned();
    }
    e
}

/// Differences between the zones before a restart (mapped through
/// [`after_restart`]) and after it, one line each; empty = intact.
pub fn compare(before: &[Zone], after: &[Zone]) -> Vec<String> {
    let mut diffs = Vec::new();
    if before.len() != after.len() {
        diffs.push(format!(
            "{} zones before, {} after",
            before.len(),
            after.len()
        ));
    }
    let layout = |z: &Zone| format!("{} {}+{} cap {}", z.zone_type, z.start, z.len, z.cap);
    for (b, a) in before.iter().zip(after) {
        let want = after_restart(b);
        if want == *a {
            continue;
        }
        let moved = if layout(&want) == layout(a) {
            String::new()
        } else {
            format!(" (layout {} became {})", layout(&want), layout(a))
        };
        diffs.push(format!(
            "zone at {}: expected {} wp {} (was {} wp {}), got {} wp {}{moved}",
            b.start, want.cond, want.wp, b.cond, b.wp, a.cond, a.wp
        ));
    }
    diffs
}

/// The written part of each zone: from its start to its write pointer
/// (a conventional zone: all of it), as `(start, blocks)`; empty parts
/// are left out.
pub fn written_ranges(zones: &[Zone]) -> Vec<(u64, u64)> {
    zones
        .iter()
        .map(|z| {
            if z.zone_type == "conventional" {
                (z.start, z.len)
            } else {
                (z.start, z.wp.saturating_sub(z.start))
            }
        })
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// CRC32C of each range of LUN `index`, as the backend stores it (a
/// control read: it does not count in the statistics).
pub fn checksums(socket: &Path, index: usize, ranges: &[(u64, u64)]) -> Result<Vec<u64>, String> {
    ranges
        .iter()
        .map(|&(lba, blocks)| {
            let req = Request::Checksum {
                dev: format!("lun{index}"),
                lba,
                blocks,
                per_block: false,
            }
            .line();
            let line = query(socket, &req)?;
            serde_json::from_str::<ChecksumReply>(&line)
                .map(|r| u64::from(r.crc32c))
                .map_err(|e| format!("{req}: {e}"))
        })
        .collect()
}

/// `3 empty, 1 closed, 2 full`: how many zones are in each condition.
pub fn condition_counts(zones: &[Zone]) -> String {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for z in zones {
        *m.entry(z.cond.as_str()).or_default() += 1;
    }
    m.iter()
        .map(|(c, n)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::{os::unix::net::UnixListener, thread};

    use super::*;

    fn zone(cond: &str, start: u64, wp: u64) -> Zone {
        Zone {
            zone_type: "seq-write-required".into(),
            cond: cond.into(),
            start,
            len: 16,
            cap: 12,
            wp,
        }
    }

    #[test]
    fn zones_requests_follow_the_lun_geometry() {
        let hm: LunArg = "kind=hm,size=128M,bs=512,zone=8M,cap=6M".parse().unwrap();
        let disk: LunArg = "kind=disk,size=64M,bs=512".parse().unwrap();
        assert_eq!(
            zones_request(1, &hm).unwrap(),
            r#"{"cmd":"zones","dev":"lun1","lba":0,"max":16}"#
        );
        assert_eq!(zones_request(2, &disk), None);
        assert_eq!(zones_file(1), "zones-lun1.json");
        let zns: NsArg = "kind=zns,size=64M,zone=4M".parse().unwrap();
        let nvm: NsArg = "kind=nvm,size=64M".parse().unwrap();
        assert_eq!(
            ns_zones_request(1, &zns).unwrap(),
            (
                "zones-ns1.json".to_owned(),
                r#"{"cmd":"zones","dev":"ns1","lba":0,"max":16}"#.to_owned()
            )
        );
        assert_eq!(ns_zones_request(2, &nvm), None);
    }

    #[test]
    fn stats_request_is_the_contracts() {
        assert_eq!(STATS_REQUEST, Request::Stats.line());
    }

    #[test]
    fn parses_the_backends_zone_dump() {
        let line = r#"{"ok":true,"zones":[{"type":"conventional","cond":"not-write-pointer","start":0,"len":16,"cap":16,"wp":0},{"type":"seq-write-required","cond":"implicit-open","start":16,"len":16,"cap":12,"wp":17}]}"#;
        let z = parse_zones(line).unwrap();
        assert_eq!(z.len(), 2);
        assert_eq!(z[1], zone("implicit-open", 16, 17));
        assert!(parse_zones(r#"{"ok":true}"#).is_err());
        assert!(parse_zones(r#"{"zones":[{"type":"x"}]}"#).is_err());
    }

    #[test]
    fn open_zones_come_back_closed_empty_or_full() {
        assert_eq!(after_restart(&zone("implicit-open", 16, 20)).cond, "closed");
        assert_eq!(after_restart(&zone("explicit-open", 16, 16)).cond, "empty");
        assert_eq!(after_restart(&zone("implicit-open", 16, 28)).cond, "full");
        assert_eq!(after_restart(&zone("full", 16, 28)).cond, "full");
        assert_eq!(after_restart(&zone("read-only", 16, 20)).cond, "read-only");
        assert_eq!(after_restart(&zone("implicit-open", 16, 20)).wp, 20);
    }

    #[test]
    fn compare_reports_each_difference() {
        let before = vec![zone("implicit-open", 0, 4), zone("empty", 16, 16)];
        let same = vec![zone("closed", 0, 4), zone("empty", 16, 16)];
        assert!(compare(&before, &same).is_empty());
        let moved = vec![zone("closed", 0, 3), zone("empty", 16, 16)];
        let d = compare(&before, &moved);
        assert_eq!(d.len(), 1);
        assert!(d[0].contains("expected closed wp 4"), "{d:?}");
        assert!(d[0].contains("got closed wp 3"), "{d:?}");
        assert_eq!(compare(&before, &same[..1]).len(), 1);
        assert_eq!(condition_counts(&before), "1 empty, 1 implicit-open");
    }

    #[test]
    fn written_ranges_of_zones() {
        let mut conv = zone("not-write-pointer", 0, 0);
        conv.zone_type = "conventional".into();
        let zones = vec![conv, zone("closed", 16, 20), zone("empty", 32, 32)];
        assert_eq!(written_ranges(&zones), vec![(0, 16), (16, 4)]);
    }

    #[test]
    fn query_and_save_against_a_fake_backend() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("c.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = thread::spawn(move || {
            // stats, then zones (an error), then nothing: hang up.
            for answer in [
                r#"{"ok":true,"devices":{}}"#,
                r#"{"ok":false,"error":"not zoned"}"#,
            ] {
                let (s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut req = String::new();
                r.read_line(&mut req).unwrap();
                assert!(req.ends_with('\n'));
                writeln!(&s, "{answer}").unwrap();
            }
        });
        let luns: Vec<LunArg> = vec!["kind=hm,size=8M,zone=4M".parse().unwrap()];
        let notes = save_dumps(&sock, &luns, &[], dir.path());
        server.join().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(STATS_FILE)).unwrap(),
            "{\"ok\":true,\"devices\":{}}\n"
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("not zoned"), "{notes:?}");
        assert!(!dir.path().join(zones_file(0)).exists());
        let gone = save_dumps(&dir.path().join("none.sock"), &luns, &[], dir.path());
        assert_eq!(gone.len(), 2);
    }
}
