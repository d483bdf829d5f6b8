//! The backend's control protocol (vhost-device/src/control): one JSON
//! request a line, one JSON reply a line with `"ok"` and, on failure,
//! `"error"`. The server parses [`Request`]; the runner's and the guest's
//! clients build it and read the replies below.

use serde::{Deserialize, Serialize};

/// One request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// First line of a TCP session: the secret of `--control-token-file`.
    Auth { token: String },
    /// Name, block size, capacity and zone geometry of each device.
    Devices,
    /// Per-device counters and every registered stats source.
    Stats,
    /// CRC32C of `blocks` blocks from `lba` as stored, and of each 4 KiB
    /// of them with `per_block`.
    Checksum {
        dev: String,
        lba: u64,
        blocks: u64,
        #[serde(default, skip_serializing_if = "is_false")]
        per_block: bool,
    },
    /// Up to `max` zone descriptors from the zone containing `lba`.
    Zones {
        dev: String,
        #[serde(default)]
        lba: u64,
        #[serde(default = "default_max_zones")]
        max: u64,
    },
    /// Puts the zone starting at `lba` in READ ONLY or OFFLINE as the
    /// device would on its own.
    ZoneCondition {
        dev: String,
        lba: u64,
        cond: ForcedCondition,
    },
    /// Adds, removes, clears or lists fault rules.
    Fault(FaultRequest),
    /// Drops the unflushed writes of a device with a volatile write cache.
    PowerCut { dev: String },
    /// Reports the volatile write cache, or switches it with `mode`.
    Cache {
        dev: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<CacheMode>,
    },
    /// Starts, stops or reports the command trace (vhost-device
    /// src/trace; the backend's `--trace` starts one at start-up).
    Trace(TraceRequest),
}

/// `trace` requests, by `op`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TraceRequest {
    /// Record into `file` (the backend's path) from now on: `data` whole
    /// (default) or `digest` only; rotated at `max_bytes` (none: no
    /// rotation), keeping `keep` old parts (default 8, at most 1000).
    Start {
        file: String,
        #[serde(default)]
        data: TraceData,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<u32>,
    },
    /// End the trace (and write its final checksums).
    Stop,
    /// `{"tracing": bool}`.
    Status,
}

/// What a trace keeps of each command's data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceData {
    /// Every byte.
    #[default]
    Whole,
    /// A digest only.
    Digest,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `zones` without `max`.
pub const DEFAULT_MAX_ZONES: u64 = 64;

fn default_max_zones() -> u64 {
    DEFAULT_MAX_ZONES
}

impl Request {
    /// The request as one line (without the newline).
    pub fn line(&self) -> String {
        // A request is strings and numbers only: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What `zone_condition` may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForcedCondition {
    ReadOnly,
    Offline,
}

/// `cache`'s `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    Volatile,
    None,
}

/// `fault`: `op`, the device (all devices for `clear` and `list` without
/// one) and the rule's members (`kind`, `lba`, `blocks`, `count`, ...; `id`
/// for `remove`), which the server checks against the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRequest {
    pub op: FaultOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(flatten)]
    pub rule: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultOp {
    Add,
    Remove,
    Clear,
    List,
}

/// One zone of a `zones` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// `conventional`, `seq-write-required` or `seq-write-preferred`.
    #[serde(rename = "type")]
    pub zone_type: String,
    /// `empty`, `implicit-open`, `full`, ... (ZBC/ZNS condition names).
    pub cond: String,
    /// Start, length, capacity and write pointer in logical blocks.
    pub start: u64,
    pub len: u64,
    pub cap: u64,
    pub wp: u64,
}

/// The `zones` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonesReply {
    pub zones: Vec<Zone>,
}

/// The `checksum` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumReply {
    pub crc32c: u32,
    /// CRC32C of each 4096 bytes, with `per_block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_crc32c: Option<Vec<u32>>,
}

/// The `power_cut` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerCutReply {
    /// Unflushed blocks dropped.
    pub dropped_blocks: u64,
    /// Zones whose condition or write pointer went back.
    pub zones_rolled_back: u64,
}

/// The `cache` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheReply {
    pub cache: CacheMode,
    pub held_blocks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_as_the_protocol_writes_them() {
        let r = |s: &str| serde_json::from_str::<Request>(s).unwrap();
        for (req, line) in [
            (Request::Stats, r#"{"cmd":"stats"}"#),
            (
                Request::Auth { token: "ab".into() },
                r#"{"cmd":"auth","token":"ab"}"#,
            ),
            (
                Request::Checksum {
                    dev: "lun0".into(),
                    lba: 16,
                    blocks: 2,
                    per_block: true,
                },
                r#"{"cmd":"checksum","dev":"lun0","lba":16,"blocks":2,"per_block":true}"#,
            ),
            (
                Request::Zones {
                    dev: "ns1".into(),
                    lba: 0,
                    max: 16,
                },
                r#"{"cmd":"zones","dev":"ns1","lba":0,"max":16}"#,
            ),
            (
                Request::ZoneCondition {
                    dev: "lun0".into(),
                    lba: 32,
                    cond: ForcedCondition::ReadOnly,
                },
                r#"{"cmd":"zone_condition","dev":"lun0","lba":32,"cond":"read_only"}"#,
            ),
            (
                Request::Cache {
                    dev: "ns3".into(),
                    mode: Some(CacheMode::Volatile),
                },
                r#"{"cmd":"cache","dev":"ns3","mode":"volatile"}"#,
            ),
            (
                Request::PowerCut { dev: "ns3".into() },
                r#"{"cmd":"power_cut","dev":"ns3"}"#,
            ),
        ] {
            assert_eq!(req.line(), line);
            assert_eq!(r(line), req);
        }
        assert_eq!(
            r(r#"{"cmd":"zones","dev":"lun0"}"#),
            Request::Zones {
                dev: "lun0".into(),
                lba: 0,
                max: DEFAULT_MAX_ZONES
            }
        );
        let f = r(r#"{"cmd":"fault","dev":"ns1","op":"add","kind":"delay","ms":5}"#);
        let Request::Fault(f) = f else {
            panic!("{f:?}")
        };
        assert_eq!((f.op, f.dev.as_deref()), (FaultOp::Add, Some("ns1")));
        assert_eq!(f.rule["ms"], 5);
        for bad in [
            r#"{"cmd":"bogus"}"#,
            r#"{"cmd":"checksum","dev":"lun0","lba":1}"#,
            r#"{"cmd":"zone_condition","dev":"lun0","lba":0,"cond":"full"}"#,
            r#"{"cmd":"fault","op":"smash"}"#,
            r#"{"dev":"lun0"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies() {
        let z: ZonesReply = serde_json::from_str(
            r#"{"ok":true,"zones":[{"type":"conventional","cond":"not-write-pointer","start":0,"len":16,"cap":16,"wp":0}]}"#,
        )
        .unwrap();
        assert_eq!(z.zones[0].zone_type, "conventional");
        let c: ChecksumReply =
            serde_json::from_str(r#"{"ok":true,"crc32c":7,"block_crc32c":[1,2]}"#).unwrap();
        assert_eq!(c.block_crc32c, Some(vec![1, 2]));
        let c: CacheReply = serde_json::from_str(r#"{"cache":"none","held_blocks":0}"#).unwrap();
        assert_eq!(c.cache, CacheMode::None);
    }
}
