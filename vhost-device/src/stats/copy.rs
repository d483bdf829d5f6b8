//! Copy (NVMe 19h) counters per namespace, on the control socket as
//! `stats` key `nvme_copy`. The NVMe front end reports each Copy twice:
//! when its capsule arrives (its dwords only: a host may never send the
//! descriptors, as nvme-tcp under the 7.2 copy-offload series does) and
//! when it executes (the descriptors decoded: range lengths, status).

use std::{
    collections::{BTreeMap, VecDeque},
    fmt,
    sync::{Mutex, MutexGuard},
};

use serde_json::{json, Value};

use super::StatsSource;

/// Which command: controller, queue, command identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdKey {
    pub cntlid: u16,
    pub qid: u16,
    pub cid: u16,
}

/// A Copy's command dwords as the counters keep them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyDwords {
    /// SDLBA.
    pub sdlba: u64,
    /// Source ranges (NR + 1).
    pub ranges: usize,
    /// Descriptor format (DESFMT).
    pub format: u8,
    /// CDW10..=CDW15 as received.
    pub cdw: [u32; 6],
}

/// A refused Copy: the status's name (a key of `refused`), the status
/// field and the reason in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub status: String,
    pub field: u16,
    pub reason: String,
}

/// What the descriptors said, as far as they were decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Descriptors decoded.
    pub decoded: usize,
    /// NLB + 1 of the longest range decoded.
    pub max_range_blocks: u64,
    /// Blocks of all ranges decoded.
    pub blocks: u64,
}

/// The `status` of a Copy that succeeded.
const SUCCESS: &str = "success";

/// How many recent Copies per namespace the counters list.
pub const RECENT: usize = 32;

/// One Copy as counted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// Number among the namespace's Copies received, from 0.
    seq: u64,
    key: CmdKey,
    cmd: CopyDwords,
    /// The refusal its dwords decided on arrival.
    invalid: Option<Refused>,
    /// Set once it executed: the descriptors and the status.
    shape: Option<Shape>,
    result: Option<Result<(), Refused>>,
}

impl Seen {
    fn json(&self) -> Value {
        json!({
            "seq": self.seq,
            "cntlid": self.key.cntlid,
            "qid": self.key.qid,
            "cid": self.key.cid,
            "sdlba": self.cmd.sdlba,
            "ranges": self.cmd.ranges,
            "format": self.cmd.format,
            "cdw": self.cmd.cdw,
            "invalid": self.invalid.as_ref().map(|r| r.reason.clone()),
            "executed": self.result.is_some(),
            "decoded": self.shape.map(|s| s.decoded),
            "blocks": self.shape.map(|s| s.blocks),
            "max_range_blocks": self.shape.map(|s| s.max_range_blocks),
            "status": self.result.as_ref().map(|r| match r {
                Ok(()) => SUCCESS.to_owned(),
                Err(e) => e.status.clone(),
            }),
            "reason": self.result.as_ref().and_then(|r| r.as_ref().err()).map(|e| e.reason.clone()),
        })
    }
}

/// What the arrivals of one namespace's Copies said (their dwords).
#[derive(Clone, Debug, Default)]
struct Arrivals {
    count: u64,
    /// With dwords that decide a refusal.
    invalid_dwords: u64,
    /// By descriptor format, by NR + 1.
    by_format: BTreeMap<u8, u64>,
    by_ranges: BTreeMap<usize, u64>,
    max_ranges: usize,
}

/// What the executions of one namespace's Copies said (descriptors
/// decoded, status).
#[derive(Clone, Debug, Default)]
struct Executions {
    count: u64,
    succeeded: u64,
    max_range_blocks: u64,
    max_blocks: u64,
    /// Refused, by status name.
    refused: BTreeMap<String, u64>,
}

/// The counters of one namespace: arrivals, executions, the last refusal
/// (on arrival by the dwords, or executing) and the recent Copies.
#[derive(Clone, Debug, Default)]
struct NsCopies {
    arrived: Arrivals,
    executed: Executions,
    last_refused: Option<(Seen, &'static str)>,
    recent: VecDeque<Seen>,
}

impl NsCopies {
    fn push(&mut self, key: CmdKey, cmd: CopyDwords, invalid: Option<Refused>) -> &mut Seen {
        let a = &mut self.arrived;
        let seen = Seen {
            seq: a.count,
            key,
            cmd,
            invalid,
            shape: None,
            result: None,
        };
        a.count += 1;
        *a.by_format.entry(cmd.format).or_default() += 1;
        *a.by_ranges.entry(cmd.ranges).or_default() += 1;
        a.max_ranges = a.max_ranges.max(cmd.ranges);
        if seen.invalid.is_some() {
            a.invalid_dwords += 1;
            self.last_refused = Some((seen.clone(), "received"));
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(seen);
        let last = self.recent.len() - 1;
        &mut self.recent[last]
    }

    fn json(&self) -> Value {
        let last = self.last_refused.as_ref().map(|(s, stage)| {
            let r = match &s.result {
                Some(Err(r)) => Some(r),
                _ => s.invalid.as_ref(),
            };
            json!({
                "stage": stage,
                "seq": s.seq,
                "cid": s.key.cid,
                "cdw": s.cmd.cdw,
                "status": r.map(|r| r.status.clone()),
                "status_field": r.map(|r| format!("{:#06x}", r.field)),
                "reason": r.map(|r| r.reason.clone()),
            })
        });
        let (a, e) = (&self.arrived, &self.executed);
        json!({
            "received": a.count,
            "invalid_dwords": a.invalid_dwords,
            "executed": e.count,
            "succeeded": e.succeeded,
            "by_format": a.by_format,
            "by_ranges": a.by_ranges,
            "max_ranges": a.max_ranges,
            "max_range_blocks": e.max_range_blocks,
            "max_blocks": e.max_blocks,
            "refused": e.refused,
            "last_refused": last,
            "recent": self.recent.iter().map(Seen::json).collect::<Vec<_>>(),
        })
    }
}

/// Copy counters per namespace (NSID), shared by every controller of a
/// subsystem; on the control socket as `stats` key `nvme_copy`, one
/// object per namespace that saw a Copy (`ns<NSID>`):
/// `received`, `invalid_dwords`, `executed`, `succeeded`, `by_format`
/// (format -> count), `by_ranges` (NR + 1 -> count), `max_ranges`,
/// `max_range_blocks` and `max_blocks` (executed ones), `refused` (status
/// name -> count, executed ones), `last_refused` (`stage` received or
/// executed, `cdw` CDW10-15, `status`, `status_field`, `reason`) and
/// `recent`, the last [`RECENT`] Copies.
#[derive(Default)]
pub struct CopyStats {
    per_ns: Mutex<BTreeMap<u32, NsCopies>>,
}

impl fmt::Debug for CopyStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyStats").finish_non_exhaustive()
    }
}

impl CopyStats {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, NsCopies>> {
        self.per_ns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A Copy's capsule arrived.
    pub fn received(&self, key: CmdKey, nsid: u32, cmd: CopyDwords, invalid: Option<Refused>) {
        self.lock().entry(nsid).or_default().push(key, cmd, invalid);
    }

    /// A Copy executed with `refusal` (`None`: success). Returns whether
    /// its arrival already logged this refusal (its dwords decided it).
    pub fn executed(
        &self,
        key: CmdKey,
        nsid: u32,
        cmd: CopyDwords,
        shape: Shape,
        refusal: Option<&Refused>,
    ) -> bool {
        let mut all = self.lock();
        let ns = all.entry(nsid).or_default();
        let e = &mut ns.executed;
        e.count += 1;
        e.max_range_blocks = e.max_range_blocks.max(shape.max_range_blocks);
        e.max_blocks = e.max_blocks.max(shape.blocks);
        match refusal {
            None => e.succeeded += 1,
            Some(r) => *e.refused.entry(r.status.clone()).or_default() += 1,
        }
        // The latest arrival of this command not yet executed; a transport
        // that did not report the arrival gets one counted now.
        let found = ns
            .recent
            .iter()
            .rposition(|s| s.key == key && s.cmd == cmd && s.result.is_none());
        let seen = match found {
            Some(i) => &mut ns.recent[i],
            None => ns.push(key, cmd, None),
        };
        let warned = refusal.is_some() && seen.invalid.is_some();
        seen.shape = Some(shape);
        seen.result = Some(refusal.map_or(Ok(()), |r| Err(r.clone())));
        if refusal.is_some() {
            let seen = seen.clone();
            ns.last_refused = Some((seen, "executed"));
        }
        warned
    }

    /// The counters as JSON, `ns<NSID>` -> counters.
    pub fn json(&self) -> Value {
        let all = self.lock();
        Value::Object(
            all.iter()
                .map(|(nsid, c)| (format!("ns{nsid}"), c.json()))
                .collect(),
        )
    }
}

impl StatsSource for CopyStats {
    fn name(&self) -> &str {
        "nvme_copy"
    }

    fn snapshot(&self) -> Value {
        self.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dwords of the Copy the Linux 7.2 copy-offload series sends:
    /// SDLBA 1C0h, NR 0, DESFMT 2h, FUA.
    fn series() -> CopyDwords {
        CopyDwords {
            sdlba: 0x1C0,
            ranges: 1,
            format: 2,
            cdw: [0x1C0, 0, 0x4000_0200, 0, 0, 0],
        }
    }

    fn key(cid: u16) -> CmdKey {
        CmdKey {
            cntlid: 1,
            qid: 1,
            cid,
        }
    }

    #[test]
    fn counts_arrivals_executions_and_refusals() {
        let s = CopyStats::default();
        let cmd = series();
        let cdfe = Refused {
            status: "invalid_field".into(),
            field: 0x4002,
            reason: "format 2 not enabled".into(),
        };
        // Arrives with dwords that decide a refusal; its descriptors never
        // come (nvme-tcp refused the R2T).
        s.received(key(0x37), 2, cmd, Some(cdfe.clone()));
        // The same CID again after a reconnect; this time it executes.
        s.received(key(0x37), 2, cmd, Some(cdfe.clone()));
        let shape = Shape {
            decoded: 0,
            max_range_blocks: 0,
            blocks: 0,
        };
        assert!(s.executed(key(0x37), 2, cmd, shape, Some(&cdfe)));
        // A Copy the transport did not report: counted on execution.
        let mut ok = cmd;
        ok.format = 0;
        let shape = Shape {
            decoded: 1,
            max_range_blocks: 64,
            blocks: 64,
        };
        assert!(!s.executed(key(0x40), 3, ok, shape, None));
        let j = s.json();
        let ns2 = &j["ns2"];
        assert_eq!(ns2["received"], 2);
        assert_eq!(ns2["invalid_dwords"], 2);
        assert_eq!(ns2["executed"], 1);
        assert_eq!(ns2["succeeded"], 0);
        assert_eq!(ns2["by_format"], json!({"2": 2}));
        assert_eq!(ns2["by_ranges"], json!({"1": 2}));
        assert_eq!(ns2["refused"], json!({"invalid_field": 1}));
        let last = &ns2["last_refused"];
        assert_eq!(last["stage"], "executed");
        assert_eq!(last["seq"], 1);
        assert_eq!(last["cdw"], json!([0x1C0, 0, 0x4000_0200, 0, 0, 0]));
        assert_eq!(last["status_field"], "0x4002");
        assert_eq!(last["reason"], "format 2 not enabled");
        // The first arrival stays unexecuted; the second took the result.
        let r = ns2["recent"].as_array().unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0]["executed"].clone(), r[0]["status"].clone()),
            (json!(false), Value::Null)
        );
        assert_eq!(r[0]["invalid"], "format 2 not enabled");
        assert_eq!(r[1]["status"], "invalid_field");
        assert_eq!(r[1]["sdlba"], 0x1C0);
        let ns3 = &j["ns3"];
        assert_eq!(
            (ns3["received"].clone(), ns3["succeeded"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(
            (ns3["max_blocks"].clone(), ns3["max_range_blocks"].clone()),
            (json!(64), json!(64))
        );
        assert_eq!(ns3["last_refused"], Value::Null);
        assert_eq!(ns3["recent"][0]["blocks"], 64);
    }

    #[test]
    fn recent_keeps_the_last_ones() {
        let s = CopyStats::default();
        let cmd = series();
        for cid in 0..(RECENT as u16 + 5) {
            s.received(key(cid), 2, cmd, None);
        }
        let j = s.json();
        let r = j["ns2"]["recent"].as_array().unwrap();
        assert_eq!(r.len(), RECENT);
        assert_eq!(r[0]["seq"], 5);
        assert_eq!(j["ns2"]["received"], RECENT as u64 + 5);
    }
}
