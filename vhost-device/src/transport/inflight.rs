//! Inflight I/O tracking for split virtqueues: the shared memory of
//! VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD (QEMU docs/interop/vhost-user.rst,
//! "Inflight I/O tracking").
//!
//! The backend creates the region on VHOST_USER_GET_INFLIGHT_FD; QEMU keeps
//! it across backend restarts and hands it back with
//! VHOST_USER_SET_INFLIGHT_FD to the next backend process, which finds there
//! the descriptors the dead one had taken from the available ring but never
//! put on the used ring, and serves them again. The region lives in a tmpfs
//! file, so it outlives a SIGKILLed backend.
//!
//! Layout, one queue region per virtqueue, little-endian (vhost-user.rst):
//!
//! ```text
//! struct DescStateSplit {          struct QueueRegionSplit {
//!     uint8_t  inflight;               uint64_t features;        // 0
//!     uint8_t  padding[5];             uint16_t version;         // 1
//!     uint16_t next;                   uint16_t desc_num;
//!     uint64_t counter;                uint16_t last_batch_head;
//! };  // 16 bytes                      uint16_t used_idx;
//!                                      DescStateSplit desc[desc_num];
//!                                  };
//! ```
//!
//! Queue regions follow each other, each rounded up to [`QUEUE_ALIGN`]
//! bytes, as libvhost-user lays them out.

use std::{
    fs::{File, OpenOptions},
    io,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::atomic::{fence, Ordering},
};

use vm_memory::{
    mmap::MmapRegion, volatile_memory::VolatileMemory, Bytes, FileOffset, VolatileSlice,
};

/// Size of `QueueRegionSplit` without its descriptors.
pub const QUEUE_HEADER: usize = 16;
/// Size of one `DescStateSplit`.
pub const DESC_STATE: usize = 16;
/// Queue regions start on this boundary (libvhost-user's
/// INFLIGHT_ALIGNMENT).
pub const QUEUE_ALIGN: usize = 64;
/// `QueueRegionSplit.version` of the documented layout.
pub const VERSION: u16 = 1;

// Field offsets in QueueRegionSplit and DescStateSplit.
const Q_FEATURES: usize = 0;
const Q_VERSION: usize = 8;
const Q_DESC_NUM: usize = 10;
const Q_LAST_BATCH_HEAD: usize = 12;
const Q_USED_IDX: usize = 14;
const D_INFLIGHT: usize = 0;
const D_NEXT: usize = 6;
const D_COUNTER: usize = 8;

/// Bytes of one queue region for `queue_size` descriptors.
pub fn queue_region_size(queue_size: u16) -> usize {
    let raw = QUEUE_HEADER + DESC_STATE * usize::from(queue_size);
    raw.div_ceil(QUEUE_ALIGN) * QUEUE_ALIGN
}

/// Why a region cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InflightError {
    #[error("creating the inflight file: {0}")]
    Create(io::Error),
    #[error("mapping the inflight region: {0}")]
    Map(String),
    #[error(
        "{num_queues} queues of {queue_size} descriptors need {need} bytes, the region has {have}"
    )]
    TooSmall {
        num_queues: u16,
        queue_size: u16,
        need: usize,
        have: usize,
    },
    #[error("queue size {0} is not a power of 2 between 1 and 32768")]
    BadQueueSize(u16),
}

/// What [`InflightRegion::recover`] found in a queue region.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Heads of the descriptors still in flight, lowest counter first.
    pub heads: Vec<u16>,
    /// The counter for the next descriptor taken (past every one seen).
    pub next_counter: u64,
    /// The last batch had reached the used ring but the region had not
    /// recorded it (the backend died between the two).
    pub fixed_last_batch: bool,
}

/// A mapped inflight region of `num_queues` split queues.
pub struct InflightRegion {
    map: MmapRegion<()>,
    num_queues: u16,
    queue_size: u16,
}

impl InflightRegion {
    /// A new zeroed region in a fresh unnamed tmpfs file (memfd-like:
    /// `O_TMPFILE` in /dev/shm, else the temp directory), every queue
    /// region's header initialised; returns it with its file and size.
    pub fn create(num_queues: u16, queue_size: u16) -> Result<(Self, File, u64), InflightError> {
        if !queue_size.is_power_of_two() {
            return Err(InflightError::BadQueueSize(queue_size));
        }
        let size = usize::from(num_queues) * queue_region_size(queue_size);
        let file = tmpfile().map_err(InflightError::Create)?;
        file.set_len(size as u64).map_err(InflightError::Create)?;
        let map_file = file.try_clone().map_err(InflightError::Create)?;
        let region = Self::map(map_file, 0, size, num_queues, queue_size)?;
        for s in (0..num_queues).filter_map(|q| region.queue(q)) {
            let _ = s.write_obj(0u64.to_le(), Q_FEATURES);
            let _ = s.write_obj(VERSION.to_le(), Q_VERSION);
            let _ = s.write_obj(queue_size.to_le(), Q_DESC_NUM);
        }
        Ok((region, file, size as u64))
    }

    /// Map a region QEMU handed back (VHOST_USER_SET_INFLIGHT_FD).
    pub fn map(
        file: File,
        offset: u64,
        size: usize,
        num_queues: u16,
        queue_size: u16,
    ) -> Result<Self, InflightError> {
        if !queue_size.is_power_of_two() {
            return Err(InflightError::BadQueueSize(queue_size));
        }
        let need = usize::from(num_queues) * queue_region_size(queue_size);
        if size < need || need == 0 {
            return Err(InflightError::TooSmall {
                num_queues,
                queue_size,
                need,
                have: size,
            });
        }
        let map = MmapRegion::from_file(FileOffset::new(file, offset), size)
            .map_err(|e| InflightError::Map(e.to_string()))?;
        Ok(InflightRegion {
            map,
            num_queues,
            queue_size,
        })
    }

    pub fn num_queues(&self) -> u16 {
        self.num_queues
    }

    pub fn queue_size(&self) -> u16 {
        self.queue_size
    }

    /// The bytes of queue `q`'s region (`None` past the last queue).
    fn queue(&self, q: u16) -> Option<VolatileSlice<'_>> {
        if q >= self.num_queues {
            return None;
        }
        let len = queue_region_size(self.queue_size);
        self.map.get_slice(usize::from(q) * len, len).ok()
    }

    fn desc(head: u16) -> usize {
        QUEUE_HEADER + DESC_STATE * usize::from(head)
    }

    /// A descriptor chain with head `head` was taken from the available
    /// ring: record it as in flight with `counter` ("Set desc[i].counter to
    /// the value of global counter ... Set desc[i].inflight to 1").
    pub fn begin(&self, q: u16, head: u16, counter: u64) {
        let Some(s) = self.queue(q).filter(|_| head < self.queue_size) else {
            return;
        };
        let d = Self::desc(head);
        let _ = s.store(counter.to_le(), d + D_COUNTER, Ordering::Relaxed);
        let _ = s.store(1u8, d + D_INFLIGHT, Ordering::Release);
    }

    /// Before putting `head` on the used ring: make it the last batch
    /// ("Set desc[i].next to last_batch_head; set last_batch_head to i").
    pub fn before_used(&self, q: u16, head: u16) {
        let Some(s) = self.queue(q).filter(|_| head < self.queue_size) else {
            return;
        };
        let last: u16 = s
            .load::<u16>(Q_LAST_BATCH_HEAD, Ordering::Relaxed)
            .map(u16::from_le)
            .unwrap_or(0);
        let _ = s.store(last.to_le(), Self::desc(head) + D_NEXT, Ordering::Relaxed);
        let _ = s.store(head.to_le(), Q_LAST_BATCH_HEAD, Ordering::Release);
        fence(Ordering::SeqCst);
    }

    /// After the used ring's idx became `used_idx` with `head` on it: "Set
    /// the inflight field ... to 0; set used_idx to the idx value of used
    /// ring".
    pub fn after_used(&self, q: u16, head: u16, used_idx: u16) {
        fence(Ordering::SeqCst);
        let Some(s) = self.queue(q) else {
            return;
        };
        if head < self.queue_size {
            let _ = s.store(0u8, Self::desc(head) + D_INFLIGHT, Ordering::Release);
        }
        let _ = s.store(used_idx.to_le(), Q_USED_IDX, Ordering::Release);
    }

    /// On reconnect, with `ring_used_idx` read from the used ring: fix the
    /// last batch if the dead backend published it on the used ring but not
    /// here ("Subtract the value of used_idx from the idx value of used
    /// ring to get last batch size ... set the inflight field of each entry
    /// to 0 in last batch list which starts from last_batch_head ... set
    /// used_idx"), then list what is still in flight in counter order.
    pub fn recover(&self, q: u16, ring_used_idx: u16) -> Recovered {
        let mut r = Recovered::default();
        let Some(s) = self.queue(q) else {
            return r;
        };
        let ld16 = |off| {
            s.load::<u16>(off, Ordering::Acquire)
                .map(u16::from_le)
                .unwrap_or(0)
        };
        let region_used = ld16(Q_USED_IDX);
        if region_used != ring_used_idx {
            let batch = ring_used_idx.wrapping_sub(region_used);
            let mut head = ld16(Q_LAST_BATCH_HEAD);
            for _ in 0..batch.min(self.queue_size) {
                if head >= self.queue_size {
                    break;
                }
                let _ = s.store(0u8, Self::desc(head) + D_INFLIGHT, Ordering::Release);
                head = ld16(Self::desc(head) + D_NEXT);
            }
            let _ = s.store(ring_used_idx.to_le(), Q_USED_IDX, Ordering::Release);
            r.fixed_last_batch = true;
        }
        let mut inflight = Vec::new();
        for head in 0..self.queue_size {
            let d = Self::desc(head);
            let counter = s
                .load::<u64>(d + D_COUNTER, Ordering::Acquire)
                .map(u64::from_le)
                .unwrap_or(0);
            r.next_counter = r.next_counter.max(counter.wrapping_add(1));
            if matches!(s.load::<u8>(d + D_INFLIGHT, Ordering::Acquire), Ok(1)) {
                inflight.push((counter, head));
            }
        }
        inflight.sort_unstable();
        r.heads = inflight.into_iter().map(|(_, h)| h).collect();
        r
    }
}

/// An unnamed file on tmpfs (shared memory that outlives this process as
/// long as QEMU holds a descriptor).
fn tmpfile() -> io::Result<File> {
    let open = |dir: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir)
    };
    open(Path::new("/dev/shm")).or_else(|_| open(&std::env::temp_dir()))
}

#[cfg(test)]
mod tests;
