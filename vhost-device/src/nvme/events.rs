//! Asynchronous events of one controller (NVMe Base 2.1, 5.2 Asynchronous
//! Event Request) and the Changed Zone List each controller keeps per zoned
//! namespace (ZNS 1.1, 4.1.1 and 4.1.4.1), fed by the storage core's
//! [`ZoneListener`] when a zone goes READ ONLY or OFFLINE by itself.
//!
//! Rules kept here:
//! - at most AERL + 1 Asynchronous Event Requests are outstanding; more is
//!   Asynchronous Event Request Limit Exceeded;
//! - an event completes the oldest outstanding request; once reported,
//!   further events of the same Asynchronous Event Type are masked until
//!   the host clears it by reading the associated log page with RAE
//!   cleared (Base 2.1, 5.2 "subsequent events of that event type are
//!   automatically masked ... until the host clears that event");
//! - reading that log page also consumes queued events that point at it
//!   (the read returned what they announce), so no empty-list notice
//!   follows;
//! - Abort of an outstanding request completes it with Command Abort
//!   Requested (Base 2.1, 5.1);
//! - a Zone Descriptor Changed notice (type 2h, information EFh, log page
//!   BFh, Dword 1 = NSID: ZNS 1.1 Figures 42 and 43) is raised only when
//!   the host set Asynchronous Event Configuration bit 27 (Figure 44); the
//!   zone is listed in the Changed Zone List either way;
//! - zone changes made by the host's own Zone Management Send are neither
//!   listed nor announced (ZNS 1.1 Figure 42 a and b).

use std::{
    cell::Cell,
    collections::VecDeque,
    sync::{Mutex, Weak},
};

use super::{put16, put64, status::Status, Completion, Registry};
use crate::storage::{Lba, ZoneListener};

/// Asynchronous Event Type: Notice (Base 2.1, 5.2.1, Asynchronous Event
/// Request completion Dword 0).
pub const TYPE_NOTICE: u8 = 0x2;
/// Asynchronous Event Type: Error status (Base 2.1, 5.2.1).
pub const TYPE_ERROR: u8 = 0x0;
/// The Error Information log page, which clears Error status events.
pub const LID_ERROR_INFORMATION: u8 = 0x01;
/// Asynchronous Event Information - Notice: Zone Descriptor Changed (ZNS
/// 1.1 Figure 42).
pub const NOTICE_ZONE_DESCRIPTOR_CHANGED: u8 = 0xEF;
/// Log page identifiers the events here point at.
pub const LID_CHANGED_NS_LIST: u8 = 0x04;
pub const LID_CHANGED_ZONE_LIST: u8 = 0xBF;
/// Asynchronous Event Configuration (Set Features 0Bh, CDW11) and OAES
/// bits: Namespace Attribute Notices (Base 2.1, 5.27.1, FID 0Bh, bit 8) and Zone
/// Descriptor Changed Notices (ZNS 1.1 Figure 44, bit 27).
pub const AEC_NS_ATTRIBUTE: u32 = 1 << 8;
pub const AEC_ZONE_DESCRIPTOR_CHANGED: u32 = 1 << 27;

/// Events queued while none can be reported; beyond this, identical ones
/// are already queued or the host is not listening, and the newest are
/// dropped (the log pages still hold the information).
pub const MAX_QUEUED_EVENTS: usize = 16;

/// One asynchronous event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncEvent {
    /// Asynchronous Event Type (3 bits).
    pub kind: u8,
    /// Asynchronous Event Information.
    pub info: u8,
    /// The log page that tells more and clears the event.
    pub lid: u8,
    /// The namespace the event occurred on, 0 for a controller event.
    pub nsid: u32,
}

impl AsyncEvent {
    /// A Zone Descriptor Changed notice for namespace `nsid`.
    pub fn zone_descriptor_changed(nsid: u32) -> Self {
        AsyncEvent {
            kind: TYPE_NOTICE,
            info: NOTICE_ZONE_DESCRIPTOR_CHANGED,
            lid: LID_CHANGED_ZONE_LIST,
            nsid,
        }
    }

    /// Completion Dword 0 (Base 2.1, 5.2.1): type bits 2:0,
    /// information 15:8, log page identifier 23:16.
    pub fn dw0(&self) -> u32 {
        u32::from(self.kind & 7) | (u32::from(self.info) << 8) | (u32::from(self.lid) << 16)
    }

    /// Whether reading log `lid` of namespace `nsid` clears this event.
    fn cleared_by(&self, lid: u8, nsid: u32) -> bool {
        self.lid == lid && (self.nsid == 0 || self.nsid == nsid)
    }
}

/// Outstanding Asynchronous Event Requests and the events waiting for one.
#[derive(Debug, Default)]
pub struct AsyncEvents {
    /// CIDs of outstanding requests, oldest first.
    waiting: VecDeque<u16>,
    /// Events not yet reported, oldest first.
    queued: VecDeque<AsyncEvent>,
    /// Per Asynchronous Event Type: the event reported and not yet cleared.
    /// While set, events of that type stay queued.
    reported: [Option<AsyncEvent>; 8],
    /// Completions ready for the transport: (CID, completion).
    ready: Vec<(u16, Completion)>,
}

impl AsyncEvents {
    /// Accept request `cid`, at most `limit` outstanding (AERL + 1).
    pub fn request(&mut self, cid: u16, limit: usize) -> Result<(), Status> {
        if self.waiting.len() >= limit {
            return Err(Status::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED);
        }
        self.waiting.push_back(cid);
        self.deliver();
        Ok(())
    }

    /// Queue `ev` (once: an identical queued event already announces it).
    pub fn post(&mut self, ev: AsyncEvent) {
        if !self.queued.contains(&ev) {
            if self.queued.len() >= MAX_QUEUED_EVENTS {
                log::warn!("asynchronous event {:#x} dropped: queue full", ev.dw0());
                return;
            }
            self.queued.push_back(ev);
        }
        self.deliver();
    }

    /// The host read log page `lid` of namespace `nsid` with RAE cleared:
    /// events reported through it are cleared (unmasking their type), and
    /// queued ones pointing at it are consumed.
    pub fn log_read(&mut self, lid: u8, nsid: u32) {
        for slot in &mut self.reported {
            if slot.is_some_and(|ev| ev.cleared_by(lid, nsid)) {
                *slot = None;
            }
        }
        self.queued.retain(|ev| !ev.cleared_by(lid, nsid));
        self.deliver();
    }

    /// Abort the outstanding request `cid`: it completes with Command Abort
    /// Requested. Whether it was outstanding.
    pub fn abort(&mut self, cid: u16) -> bool {
        let Some(i) = self.waiting.iter().position(|&c| c == cid) else {
            return false;
        };
        self.waiting.remove(i);
        self.ready.push((
            cid,
            Completion::with_status(Status::COMMAND_ABORT_REQUESTED),
        ));
        true
    }

    /// Completions to send, oldest first.
    pub fn take_ready(&mut self) -> Vec<(u16, Completion)> {
        std::mem::take(&mut self.ready)
    }

    /// Outstanding requests.
    pub fn outstanding(&self) -> usize {
        self.waiting.len()
    }

    /// Controller reset or teardown: outstanding requests end without a
    /// completion and the event state starts over.
    pub fn clear(&mut self) {
        *self = AsyncEvents::default();
    }

    /// Complete requests with the oldest queued events whose type is not
    /// masked.
    fn deliver(&mut self) {
        while !self.waiting.is_empty() {
            let Some(i) = self
                .queued
                .iter()
                .position(|ev| self.reported[usize::from(ev.kind & 7)].is_none())
            else {
                return;
            };
            let (Some(ev), Some(cid)) = (self.queued.remove(i), self.waiting.pop_front()) else {
                return;
            };
            self.reported[usize::from(ev.kind & 7)] = Some(ev);
            self.ready.push((
                cid,
                Completion {
                    dw0: ev.dw0(),
                    dw1: ev.nsid,
                    status: 0,
                },
            ));
        }
    }
}

/// Most Zone Identifiers in the Changed Zone List (ZNS 1.1, 4.1.4.1).
pub const CHANGED_ZONES_MAX: usize = 511;
/// The Changed Zone List log page size.
pub const CHANGED_ZONE_LIST_LEN: usize = 4096;

/// Zones whose descriptor changed since the host last read the Changed
/// Zone List of one namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedZones {
    zones: Vec<Lba>,
    /// More than 511 zones changed: the list reads as FFFFh zone IDs.
    overflow: bool,
}

impl ChangedZones {
    /// Note the zone starting at `zslba` (each ZSLBA at most once).
    pub fn add(&mut self, zslba: Lba) {
        if self.overflow || self.zones.contains(&zslba) {
            return;
        }
        if self.zones.len() >= CHANGED_ZONES_MAX {
            self.overflow = true;
            self.zones.clear();
        } else {
            self.zones.push(zslba);
        }
    }

    /// The log page (ZNS 1.1 Figure 46): Number of Zone Identifiers at
    /// bytes 1:0 (FFFFh with a zero-filled list after an overflow), the
    /// ZSLBAs from byte 8, unused entries zero.
    pub fn page(&self) -> Vec<u8> {
        let mut d = vec![0u8; CHANGED_ZONE_LIST_LEN];
        if self.overflow {
            put16(&mut d, 0, 0xFFFF);
            return d;
        }
        put16(&mut d, 0, self.zones.len() as u16);
        for (i, z) in self.zones.iter().enumerate() {
            put64(&mut d, 8 + i * 8, z.get());
        }
        d
    }
}

thread_local! {
    /// Set while the Zone Management Send handler changes zones through
    /// the core, so the notice the core gives on this thread is recognized
    /// as the host's own.
    static HOST_ZONE_ACTION: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` (a zone change the host asked for) without it reaching the
/// Changed Zone Lists (ZNS 1.1 Figure 42 a, b).
pub fn host_zone_action<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HOST_ZONE_ACTION.with(|h| h.set(false));
        }
    }
    HOST_ZONE_ACTION.with(|h| h.set(true));
    let _reset = Reset;
    f()
}

/// The storage core's zone notices for one namespace, fanned out to every
/// live controller of the subsystem.
pub struct ZoneChanges {
    pub(super) nsid: u32,
    pub(super) registry: Weak<Mutex<Registry>>,
}

impl ZoneListener for ZoneChanges {
    fn zone_changed(&self, zone: Lba) {
        if HOST_ZONE_ACTION.with(Cell::get) {
            return;
        }
        let Some(reg) = self.registry.upgrade() else {
            return;
        };
        let live: Vec<_> = {
            let reg = reg.lock().unwrap_or_else(|e| e.into_inner());
            reg.live.values().filter_map(Weak::upgrade).collect()
        };
        for ctrl in live {
            ctrl.zone_changed(self.nsid, zone);
        }
    }
}
