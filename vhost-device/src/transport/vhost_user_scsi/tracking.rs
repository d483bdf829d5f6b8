//! Inflight I/O tracking of the request queues (see [`crate::transport::inflight`]):
//! what each queue records in the region QEMU keeps, and how a backend that
//! replaces a killed one serves again what that one left in flight.
//!
//! Every queue of this device completes strictly in order: one worker pops
//! a chain, executes it and puts it on the used ring before it pops the
//! next. So the descriptors in flight when a backend dies are exactly the
//! available ring's entries from the used ring's idx on, in the order they
//! were taken, which is the region's counter order. Serving them again "in
//! order of their counter value" (vhost-user.rst) is popping again from the
//! used ring's idx; each popped head is checked against the region's list.
//! (virtio-queue 0.18 cannot build a chain from a bare head index anyway:
//! `DescriptorChain::new` is crate-private.) Where the ring base QEMU sent
//! differs from the used ring's idx, the region's account wins: a base
//! behind it would execute completed writes again over newer data, one
//! beyond it would lose the requests in flight.
//!
//! Seen with QEMU 10.0 over 100+ SIGKILLs: the base it sends after a crash
//! always equals the used ring's idx (its GET_VRING_BASE to the dead
//! backend fails, and vhost.c then rewinds to the used idx), so for these
//! in-order queues QEMU alone would already re-serve what was in flight;
//! the region makes that independent of the frontend, and checks it.

use std::{collections::VecDeque, sync::Arc};

use log::{info, warn};
use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::QueueT;

use super::GuestMemory;
use crate::transport::inflight::InflightRegion;

/// One queue's share of the tracking, kept under the queue's busy lock.
#[derive(Default)]
pub struct QueueTrack {
    /// The region QEMU handed over (VHOST_USER_SET_INFLIGHT_FD).
    region: Option<Arc<InflightRegion>>,
    /// The region was reconciled with the rings of this connection.
    recovered: bool,
    /// Heads to be served again, in counter order.
    resubmit: VecDeque<u16>,
    /// Counter for the next chain taken.
    counter: u64,
    /// Chains served again on this connection.
    pub resubmitted: u64,
}

impl QueueTrack {
    /// Track into `region` from now on (a new connection's region, or
    /// `None`).
    pub fn attach(&mut self, region: Option<Arc<InflightRegion>>) {
        *self = QueueTrack {
            region,
            ..QueueTrack::default()
        };
    }

    /// Before popping from `vring` (queue `queue`): on the first pop of a
    /// connection with a region, reconcile the region with the used ring
    /// and rewind the ring to the first descriptor in flight.
    pub fn before_pop<M>(&mut self, queue: usize, vring: &VringRwLock, mem: &M)
    where
        M: std::ops::Deref<Target = GuestMemory>,
    {
        let Some(region) = self.region.clone().filter(|_| !self.recovered) else {
            return;
        };
        self.recovered = true;
        let Ok(q) = u16::try_from(queue) else {
            return;
        };
        if q >= region.num_queues() {
            return;
        }
        let used = {
            let state = vring.get_ref();
            match state
                .get_queue()
                .used_idx(&**mem, std::sync::atomic::Ordering::Acquire)
            {
                Ok(u) => u.0,
                Err(e) => {
                    warn!("queue {queue}: cannot read the used ring for inflight recovery: {e}");
                    return;
                }
            }
        };
        let got = region.recover(q, used);
        let base = vring.queue_next_avail();
        info!(
            "queue {queue}: inflight region: {} descriptors in flight {:?}, used idx {used}, \
             ring base from the frontend {base}{}",
            got.heads.len(),
            got.heads,
            if got.fixed_last_batch {
                ", last batch had reached the used ring"
            } else {
                ""
            }
        );
        if base != used {
            warn!(
                "queue {queue}: frontend's ring base {base} != used idx {used}: resuming at {used}"
            );
        }
        vring.set_queue_next_avail(used);
        vring.set_queue_next_used(used);
        self.counter = got.next_counter;
        self.resubmit = got.heads.into();
    }

    /// Chain `head` of queue `queue` was popped: record it in flight.
    pub fn popped(&mut self, queue: usize, head: u16) {
        let Some(region) = &self.region else {
            return;
        };
        if let Some(expected) = self.resubmit.pop_front() {
            self.resubmitted += 1;
            if expected == head {
                info!("queue {queue}: serving descriptor {head} again (in flight when the previous backend stopped)");
            } else {
                warn!(
                    "queue {queue}: descriptor {head} popped where the inflight region \
                     has {expected} next; serving it"
                );
            }
        }
        let Ok(q) = u16::try_from(queue) else {
            return;
        };
        region.begin(q, head, self.counter);
        self.counter = self.counter.wrapping_add(1);
    }

    /// Chain `head` is about to go on the used ring.
    pub fn before_used(&self, queue: usize, head: u16) {
        if let (Some(region), Ok(q)) = (&self.region, u16::try_from(queue)) {
            region.before_used(q, head);
        }
    }

    /// Chain `head` is on the used ring, whose idx is now `used_idx`.
    pub fn after_used(&self, queue: usize, head: u16, used_idx: u16) {
        if let (Some(region), Ok(q)) = (&self.region, u16::try_from(queue)) {
            region.after_used(q, head, used_idx);
        }
    }
}
