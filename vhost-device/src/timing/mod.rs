//! The device timing model (`--timing PROFILE`, `timing=` per device; off
//! by default): what a device class would take for the commands this
//! backend serves, in virtual time, so offload vs host-copy ratios model a
//! phone's UFS device or an NVMe-oF target rather than this host.
//!
//! [`model`] is the deterministic core. [`DeviceTiming`] puts one device's
//! model behind a lock and gives commands their virtual start: the
//! device's virtual "now", the latest virtual completion already handed to
//! the host when the command arrived. This models an infinitely fast host
//! (it issues the next command the moment it sees a completion) and is
//! the stated assumption behind every modeled rate. The front end that
//! serves a device charges its link bytes and per-command latency, and
//! the media bytes the storage core counted for the command
//! (`DeviceStats`); nothing here knows a protocol.

pub mod model;

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, MutexGuard,
};

pub use model::{Counters, Model, Work};
use serde_json::{json, Value};
use zonecopy_contract::timing::TimingProfile;

use crate::stats::StatsSource;

/// One device's model and its virtual "now".
#[derive(Debug)]
pub struct DeviceTiming {
    model: Mutex<Model>,
    /// Latest virtual completion handed to the host (ns).
    now: AtomicU64,
}

/// A command being modeled: holds the device's model until it is charged,
/// so the media bytes the storage core counts meanwhile are this
/// command's.
pub struct InFlight<'a> {
    model: MutexGuard<'a, Model>,
    start: u64,
    owner: &'a DeviceTiming,
}

impl DeviceTiming {
    pub fn new(profile: TimingProfile) -> Self {
        DeviceTiming {
            model: Mutex::new(Model::new(profile)),
            now: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device's virtual now: the latest virtual completion handed to
    /// the host. A front end reads it when a command arrives (NVMe: at
    /// admission, before the transport gathers the command's data).
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }

    /// A command that arrived at virtual `arrived` (`None`: now) runs.
    /// Commands on this device run one at a time until
    /// [`InFlight::charge`] (only with timing on).
    pub fn begin(&self, arrived: Option<u64>) -> InFlight<'_> {
        let start = arrived.unwrap_or_else(|| self.now());
        InFlight {
            model: self.lock(),
            start,
            owner: self,
        }
    }

    /// The profile's name and numbers, and the counters.
    pub fn snapshot(&self) -> Value {
        let m = self.lock();
        json!({
            "profile": m.profile(),
            "counters": m.counters(),
        })
    }

    pub fn counters(&self) -> Counters {
        self.lock().counters()
    }
}

impl InFlight<'_> {
    /// The device's profile.
    pub fn profile(&self) -> &TimingProfile {
        self.model.profile()
    }

    /// Charge the command's work; its completion becomes the device's
    /// now (the transport posts it right after). Returns the virtual
    /// completion in ns.
    pub fn charge(mut self, w: &Work) -> u64 {
        let done = self.model.run(self.start, w);
        self.owner.now.fetch_max(done, Ordering::AcqRel);
        done
    }
}

/// The modeled devices on the control socket, under `timing`: per device
/// name (`ns1`, ...) its profile and [`Counters`].
pub struct TimingStats(pub Vec<(String, Arc<DeviceTiming>)>);

impl StatsSource for TimingStats {
    fn name(&self) -> &str {
        "timing"
    }

    fn snapshot(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(name, t)| (name.clone(), t.snapshot()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod stats_tests {
    use super::*;

    #[test]
    fn stats_name_the_profile_and_the_counters() {
        let t = Arc::new(DeviceTiming::new(
            TimingProfile::builtin("ufs-phone").expect("built-in"),
        ));
        let flight = t.begin(None);
        let done = flight.charge(&Work {
            h2c_bytes: 32,
            c2h_bytes: 4096 + 52,
            media_read: 4096,
            ..Work::default()
        });
        // The next command starts at that completion.
        let next = t.begin(None);
        assert_eq!(next.start, done);
        drop(next);
        // One that arrived before that completion was handed out starts
        // where it arrived.
        assert_eq!(t.begin(Some(0)).start, 0);
        let s = TimingStats(vec![("ns1".into(), t)]);
        let v = s.snapshot();
        assert_eq!(v["ns1"]["profile"]["name"], "ufs-phone");
        assert_eq!(v["ns1"]["profile"]["energy"]["host_cpu_w"], 2.0);
        assert_eq!(v["ns1"]["counters"]["commands"], 1);
        assert_eq!(v["ns1"]["counters"]["elapsed_ns"], done);
        assert_eq!(v["ns1"]["counters"]["media_read_bytes"], 4096);
    }
}
