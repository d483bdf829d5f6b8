//! Controller state: CC/CSTS, features, keep alive, Asynchronous Event
//! Requests and Host Behavior Support, one controller per host association
//! (NVMe Base 2.1, 3.1 dynamic controller model).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use super::{
    error_log::{ErrorEntry, ErrorLog},
    events::{AsyncEvent, AsyncEvents, ChangedZones, AEC_ZONE_DESCRIPTOR_CHANGED},
    status::Status,
    Completion, ControllerOptions, Namespace, Subsystem, DISCOVERY_NQN,
};
use crate::storage::Lba;

/// What kind of controller (Identify Controller CNTRLTYPE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An I/O controller of an NVM subsystem (CNTRLTYPE 1h).
    Io,
    /// A controller of the discovery subsystem (CNTRLTYPE 2h).
    Discovery,
}

/// Host Behavior Support data (NVMe Base 2.1, 5.27.1.18, 512 bytes).
pub const HBS_LEN: usize = 512;

/// Current values of the features the controller keeps.
#[derive(Clone, Debug)]
pub struct Features {
    pub arbitration: u32,
    pub power_management: u32,
    /// Temperature thresholds in kelvins: over, under (composite sensor).
    pub temp_over: u16,
    pub temp_under: u16,
    pub error_recovery: u32,
    pub volatile_write_cache: bool,
    /// Number of Queues as allocated (0's based NSQA, NCQA), once set.
    pub queues_allocated: Option<u16>,
    pub write_atomicity: u32,
    pub async_event_config: u32,
    pub hbs: [u8; HBS_LEN],
}

impl Default for Features {
    fn default() -> Self {
        Features {
            arbitration: 0,
            power_management: 0,
            temp_over: 0x0157,
            temp_under: 0,
            error_recovery: 0,
            volatile_write_cache: true,
            queues_allocated: None,
            write_atomicity: 0,
            async_event_config: 0,
            hbs: [0; HBS_LEN],
        }
    }
}

impl Features {
    /// Host Behavior Support CDFE (bytes 5:4): Copy Descriptor Formats
    /// Enable, bit n = format n.
    pub fn cdfe(&self) -> u16 {
        u16::from_le_bytes([self.hbs[4], self.hbs[5]])
    }
}

/// Mutable controller state.
#[derive(Debug)]
pub struct State {
    pub cc: u32,
    pub csts: u32,
    pub features: Features,
    /// Outstanding Asynchronous Event Requests and events.
    pub events: AsyncEvents,
    /// Changed Zone List per zoned namespace (NSID), since the host last
    /// read it.
    pub changed_zones: HashMap<u32, ChangedZones>,
    /// Error Information log.
    pub errors: ErrorLog,
    pub kato_ms: u32,
    pub last_seen: Instant,
    /// I/O queue IDs connected.
    pub io_queues: HashSet<u16>,
    /// The host disconnected the admin queue.
    pub dead: bool,
    /// PCIe only: the I/O queues the host created (the transport runs
    /// them).
    pub pcie: super::pcie::PcieQueues,
}

/// One controller.
pub struct Controller {
    pub cntlid: u16,
    pub kind: Kind,
    /// The subsystem (for a discovery controller: none).
    pub subsystem: Option<Arc<Subsystem>>,
    /// For a discovery controller: the subsystems it reports.
    pub discoverable: Vec<Arc<Subsystem>>,
    pub hostnqn: String,
    pub hostid: [u8; 16],
    pub opts: ControllerOptions,
    state: Mutex<State>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("cntlid", &self.cntlid)
            .field("kind", &self.kind)
            .field("hostnqn", &self.hostnqn)
            .finish_non_exhaustive()
    }
}

// CC fields (NVMe Base 2.1, 3.1.4.5).
pub const CC_EN: u32 = 1;
pub const CC_CSS_SHIFT: u32 = 4;
pub const CC_SHN_SHIFT: u32 = 14;
// CSTS fields (3.1.4.6).
pub const CSTS_RDY: u32 = 1;
pub const CSTS_CFS: u32 = 1 << 1;
pub const CSTS_SHST_COMPLETE: u32 = 2 << 2;

impl Controller {
    pub(crate) fn new(
        cntlid: u16,
        kind: Kind,
        subsystem: Option<Arc<Subsystem>>,
        discoverable: Vec<Arc<Subsystem>>,
        hostnqn: String,
        hostid: [u8; 16],
        kato_ms: u32,
    ) -> Self {
        let opts = subsystem
            .as_ref()
            .map(|s| s.options().clone())
            .unwrap_or_default();
        Controller {
            cntlid,
            kind,
            subsystem,
            discoverable,
            hostnqn,
            hostid,
            opts,
            state: Mutex::new(State {
                cc: 0,
                csts: 0,
                features: Features::default(),
                events: AsyncEvents::default(),
                changed_zones: HashMap::new(),
                errors: ErrorLog::default(),
                kato_ms,
                last_seen: Instant::now(),
                io_queues: HashSet::new(),
                dead: false,
                pcie: super::pcie::PcieQueues::default(),
            }),
        }
    }

    /// Lock the state. A panic while holding it cannot leave a half-made
    /// change that matters, so a poisoned lock is still used.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The subsystem NQN this controller reports.
    pub fn subnqn(&self) -> &str {
        self.subsystem
            .as_ref()
            .map(|s| s.nqn())
            .unwrap_or(DISCOVERY_NQN)
    }

    /// The active namespace `nsid` (I/O controllers only).
    pub fn namespace(&self, nsid: u32) -> Option<&Namespace> {
        self.subsystem.as_ref()?.namespace(nsid)
    }

    /// Number of Namespaces (0 for a discovery controller).
    pub fn nn(&self) -> u32 {
        self.subsystem.as_ref().map_or(0, |s| s.nn())
    }

    /// CC.EN = 1 and CSTS.RDY = 1.
    pub fn is_ready(&self) -> bool {
        let st = self.state();
        st.cc & CC_EN != 0 && st.csts & CSTS_RDY != 0
    }

    /// Note host activity for the keep alive timer.
    pub fn touch(&self) {
        self.state().last_seen = Instant::now();
    }

    /// Whether the Keep Alive Timeout expired without a command. Checked
    /// generously (twice KATO) since a TCG guest may be slow.
    pub fn keep_alive_expired(&self) -> bool {
        let st = self.state();
        st.kato_ms != 0 && st.last_seen.elapsed() > Duration::from_millis(u64::from(st.kato_ms) * 2)
    }

    /// Whether the host disconnected the admin queue.
    pub fn is_dead(&self) -> bool {
        self.state().dead
    }

    /// The admin queue went away: outstanding Asynchronous Event Requests
    /// can never complete, and no more are taken.
    pub(crate) fn kill(&self) {
        let mut st = self.state();
        st.dead = true;
        st.events.clear();
    }

    /// Queue an Asynchronous Event Request; completes at once when an
    /// event is pending. NVMe Base 2.1, 5.2.
    pub(crate) fn async_event_request(&self, cid: u16) -> Result<(), Status> {
        let limit = usize::from(self.opts.async_event_limit);
        self.state().events.request(cid, limit)
    }

    /// Report an asynchronous event.
    pub fn post_event(&self, ev: AsyncEvent) {
        self.state().events.post(ev);
    }

    /// Completions of Asynchronous Event Requests that became ready.
    pub(crate) fn take_deferred(&self) -> Vec<(u16, Completion)> {
        self.state().events.take_ready()
    }

    /// The zone starting at `zone` of namespace `nsid` changed without the
    /// host asking (the storage core set it READ ONLY or OFFLINE): list it
    /// in the Changed Zone List, and raise a Zone Descriptor Changed notice
    /// if the host enabled them (ZNS 1.1, 4.1.1 and 4.1.3).
    pub fn zone_changed(&self, nsid: u32, zone: Lba) {
        let mut st = self.state();
        st.changed_zones.entry(nsid).or_default().add(zone);
        let notice = st.features.async_event_config & AEC_ZONE_DESCRIPTOR_CHANGED != 0;
        log::debug!(
            "ctrl {}: ns {nsid} zone {zone} changed (notice {})",
            self.cntlid,
            if notice { "raised" } else { "not enabled" }
        );
        if notice {
            st.events.post(AsyncEvent::zone_descriptor_changed(nsid));
        }
    }

    /// Add an Error Information log entry.
    pub(crate) fn record_error(&self, e: ErrorEntry) {
        self.state().errors.record(e);
    }

    /// Controller reset (CC.EN 1 -> 0): back to the state after Connect.
    /// Outstanding commands (Asynchronous Event Requests) end without a
    /// completion; the logs stay.
    pub(crate) fn reset(st: &mut State) {
        st.csts = 0;
        st.features = Features::default();
        st.events.clear();
        st.io_queues.clear();
        st.pcie = super::pcie::PcieQueues::default();
    }

    /// Whether the host reaches this controller over PCIe (else Fabrics).
    pub fn is_pcie(&self) -> bool {
        self.opts.transport == super::Transport::Pcie
    }

    /// Controller Fatal Status (CSTS.CFS): the transport found the host
    /// broke a rule it cannot answer with a completion (NVMe Base 2.1,
    /// 3.1.4.6 and 9.5).
    pub fn fatal(&self, why: &str) {
        log::warn!("ctrl {}: controller fatal status: {why}", self.cntlid);
        self.state().csts |= CSTS_CFS;
    }
}
