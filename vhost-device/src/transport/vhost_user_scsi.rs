//! The vhost-user-scsi device: virtio-scsi virtqueues (virtio 1.2, 5.6 SCSI
//! Host Device) served to a [`Target`] through vhost-user-backend.
//!
//! Queue layout (5.6.2): queue 0 is the control queue, 1 the event queue,
//! 2.. the request queues. The control and event queues share worker thread
//! 0; every request queue has a worker thread of its own, so the guest's
//! blk-mq hardware queues run in parallel.
//!
//! Each request is executed synchronously on its queue's worker: pop a
//! descriptor chain, read the request header, run the command, write the
//! response, put the chain on the used ring, and signal the guest when
//! EVENT_IDX's used_event asks for it (without EVENT_IDX, once per batch,
//! when the available ring is empty). The worker then polls the ring a
//! little before it sleeps (`--poll-us`, adaptive, backing off when its
//! CPU is wanted elsewhere; see [`poll`]). Guest memory is
//! reached only through vm-memory's checked accessors (virtio-queue's [`Reader`] and
//! [`Writer`] over the chain, [`Bytes::write_slice`]); a chain that does not
//! fit the virtio-scsi layout is completed with the right virtio-scsi
//! response when the response area allows it, otherwise returned with a
//! used length of 0. Nothing the guest writes can panic the backend.

use std::{
    fs::File,
    io::{self, Read, Write},
    ops::Deref,
    os::fd::{AsRawFd, RawFd},
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::{Duration, Instant},
};

use log::{debug, error, info, trace, warn};
use vhost::vhost_user::message::{
    VhostUserInflight, VhostUserProtocolFeatures, VhostUserVirtioFeatures,
};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::{
    virtio_config::VIRTIO_F_VERSION_1,
    virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC},
    virtio_scsi::VIRTIO_SCSI_F_CHANGE,
};
use virtio_queue::{DescriptorChain, QueueT, Reader, Writer};
use vm_memory::{Bytes, GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::{
    epoll::EventSet,
    event::{new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier},
};

use super::virtio_scsi::{CmdReq, CmdResp, LunAddress, Response, CMD_REQ_SIZE, CMD_RESP_SIZE};
use crate::{
    scsi::{self, Target},
    transport::inflight::InflightRegion,
};

mod control;
mod direct;
pub mod poll;
mod tracking;
use direct::GuestData;
use poll::PollWindow;
use tracking::QueueTrack;

/// Guest memory as vhost-user-backend maps it (no dirty-page bitmap).
pub type GuestMemory = GuestMemoryMmap<()>;

/// Index of the control queue (5.6.2).
pub const CONTROL_QUEUE: usize = 0;
/// Index of the event queue (5.6.2).
pub const EVENT_QUEUE: usize = 1;
/// Index of the first request queue (5.6.2).
pub const FIRST_REQUEST_QUEUE: usize = 2;
/// Most request queues one device offers: vhost-user-backend assigns
/// queues to worker threads with a 64-bit mask, two bits of which are the
/// control and event queues.
pub const MAX_REQUEST_QUEUES: u16 = 62;
/// Largest virtqueue size accepted (QEMU's `virtqueue_size` maximum).
pub const MAX_QUEUE_SIZE: u16 = 1024;

/// Why a descriptor chain could not be served as the guest meant it. Each
/// kind is logged at warn level the first time it happens on a connection,
/// at debug level after that, so a misbehaving guest cannot flood the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Malformed {
    /// The chain ends in a descriptor whose NEXT flag could not be
    /// followed (next index out of range, a loop, a bad indirect table or
    /// more than 2^32 bytes), or has no descriptor at all.
    BrokenChain,
    /// A device-readable descriptor follows a device-writable one
    /// (2.7.4.2: "The driver MUST place any device-writable descriptor
    /// elements after any device-readable descriptor elements").
    WritableBeforeReadable,
    /// Fewer device-readable bytes than the request header.
    ShortRequest { need: usize, have: u64 },
    /// Fewer device-writable bytes than the response header.
    ShortResponse { need: usize, have: u64 },
    /// A device-readable descriptor points outside guest memory.
    BadReadableAddress,
    /// A device-writable descriptor points outside guest memory.
    BadWritableAddress,
    /// A control request of a type 5.6.6.2 does not define.
    UnknownControlType(u32),
}

impl Malformed {
    fn bit(self) -> u32 {
        match self {
            Malformed::BrokenChain => 1 << 0,
            Malformed::WritableBeforeReadable => 1 << 1,
            Malformed::ShortRequest { .. } => 1 << 2,
            Malformed::ShortResponse { .. } => 1 << 3,
            Malformed::BadReadableAddress => 1 << 4,
            Malformed::BadWritableAddress => 1 << 5,
            Malformed::UnknownControlType(_) => 1 << 6,
        }
    }
}

/// The shape of a descriptor chain, found by walking it once.
#[derive(Clone, Copy, Debug, Default)]
struct ChainLayout {
    /// Bytes in device-readable descriptors.
    readable: u64,
    /// Bytes in device-writable descriptors.
    writable: u64,
    /// A device-readable descriptor came after a device-writable one.
    misordered: bool,
    /// The walk stopped before the end of the chain (see
    /// [`Malformed::BrokenChain`]), or the chain is empty.
    broken: bool,
}

impl ChainLayout {
    fn of<M>(chain: DescriptorChain<M>) -> Self
    where
        M: Deref<Target = GuestMemory>,
    {
        let mut l = ChainLayout::default();
        let mut seen_writable = false;
        let mut count = 0usize;
        let mut last_has_next = false;
        for desc in chain {
            count += 1;
            let len = u64::from(desc.len());
            if desc.is_write_only() {
                seen_writable = true;
                l.writable += len;
            } else {
                l.misordered |= seen_writable;
                l.readable += len;
            }
            last_has_next = desc.has_next();
        }
        // The iterator yields `None` both at the end of a chain and when it
        // cannot follow a NEXT link; only the former ends on a descriptor
        // without NEXT.
        l.broken = count == 0 || last_has_next;
        l
    }
}

/// A data-in sink that remembers whether the target tried to write more
/// than the driver's buffer holds (VIRTIO_SCSI_S_OVERRUN).
struct DataIn<'a, 'b> {
    inner: &'b mut Writer<'a>,
    overrun: bool,
}

impl Write for DataIn<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n < buf.len() {
            self.overrun = true;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How the current pass over a queue went.
enum Step {
    /// One chain was completed.
    Completed,
    /// No chain was available (or the queue is stopped).
    Empty,
    /// The used ring could not be written: stop until the next kick.
    Broken,
}

/// The vhost-user-scsi device backend for one connection. The [`Target`]
/// (and with it the devices and their zone state) is shared and outlives
/// connections; everything else here is per connection.
pub struct ScsiBackend {
    target: Arc<Target>,
    request_queues: u16,
    mem: GuestMemoryAtomic<GuestMemory>,
    /// Adaptive polling state of queue `i` (see [`poll`]).
    polls: Vec<Mutex<PollWindow>>,
    /// Held while a request of queue `i` is between pop and used ring, so
    /// `stop_vring` and task management functions can wait for it; holds
    /// the queue's inflight tracking.
    busy: Vec<Mutex<QueueTrack>>,
    /// [`Malformed::bit`]s already logged at warn level.
    warned: AtomicU32,
    /// The worker exit event fds handed out by [`VhostUserBackend::exit_event`].
    exit_fds: Mutex<Vec<RawFd>>,
}

impl ScsiBackend {
    /// A backend offering `request_queues` request queues (1 to
    /// [`MAX_REQUEST_QUEUES`]; out-of-range values are clamped) in front of
    /// `target`. `mem` must be the object handed to
    /// `VhostUserDaemon::new`: vhost-user-backend replaces its contents on
    /// every memory table change.
    pub fn new(
        target: Arc<Target>,
        request_queues: u16,
        mem: GuestMemoryAtomic<GuestMemory>,
    ) -> Self {
        let request_queues = request_queues.clamp(1, MAX_REQUEST_QUEUES);
        let queues = FIRST_REQUEST_QUEUE + usize::from(request_queues);
        ScsiBackend {
            target,
            request_queues,
            mem,
            polls: (0..queues)
                .map(|_| Mutex::new(PollWindow::new(Duration::ZERO)))
                .collect(),
            busy: (0..queues).map(|_| Mutex::default()).collect(),
            warned: AtomicU32::new(0),
            exit_fds: Mutex::new(Vec::new()),
        }
    }

    /// Poll each request queue's available ring for at most `max` after a
    /// batch (see [`poll`]; `Duration::ZERO`, the default, never polls).
    #[must_use]
    pub fn with_poll(mut self, max: Duration) -> Self {
        self.polls = (0..self.busy.len())
            .map(|q| {
                let max = if q >= FIRST_REQUEST_QUEUE {
                    max
                } else {
                    Duration::ZERO
                };
                Mutex::new(PollWindow::new(max))
            })
            .collect();
        self
    }

    /// The descriptors of the exit events handed to vhost-user-backend.
    ///
    /// vhost-user-backend 0.24 registers each exit event consumer with its
    /// worker's epoll through `into_raw_fd()` and never closes it: one fd
    /// per worker thread per connection would leak. The serve loop closes
    /// them once the daemon and its workers are gone.
    pub fn take_exit_fds(&self) -> Vec<RawFd> {
        std::mem::take(&mut *self.exit_fds.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Track every queue into `region` from now on.
    fn attach_inflight(&self, region: Option<Arc<InflightRegion>>) {
        for busy in &self.busy {
            lock(busy).attach(region.clone());
        }
    }

    fn malformed(&self, queue: usize, head: u16, what: Malformed) {
        let first = self.warned.fetch_or(what.bit(), Ordering::Relaxed) & what.bit() == 0;
        if first {
            warn!(
                "queue {queue}, descriptor {head}: malformed request: {what:?} \
                 (further ones of this kind are logged at debug level)"
            );
        } else {
            debug!("queue {queue}, descriptor {head}: malformed request: {what:?}");
        }
    }

    /// Process every available chain of queue `queue`, signal the guest
    /// (with EVENT_IDX: as each completion passes used_event, 2.7.10;
    /// without: once for the batch),
    /// poll the available ring for the queue's adaptive window (see
    /// [`poll`]), then re-enable notifications; loop if the driver added
    /// chains in between (2.7.10, needed for VIRTIO_RING_F_EVENT_IDX,
    /// harmless without it).
    pub fn process_queue(&self, queue: usize, vring: &VringRwLock) {
        let mem = self.mem.memory();
        let mut poll = self.polls.get(queue).map(lock);
        if let Some(p) = poll.as_mut() {
            p.busy(Instant::now());
        }
        loop {
            if let Err(e) = vring.disable_notification() {
                error!("queue {queue}: cannot disable notifications: {e}");
                return;
            }
            let (completed, broken) = self.drain(queue, vring, &mem);
            if completed > 0 {
                signal(queue, vring);
            }
            if broken {
                return;
            }
            if let Some(p) = poll.as_mut() {
                p.quiet(Instant::now());
                // A queue stopped meanwhile (GET_VRING_BASE) ends the poll,
                // and the worker leaves its ring alone from then on: the
                // front end may reuse that memory.
                let woke = p.poll(|| !queue_ready(vring) || chain_available(vring, &mem));
                if !queue_ready(vring) {
                    return;
                }
                if woke {
                    continue;
                }
            }
            match vring.enable_notification() {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    error!("queue {queue}: cannot enable notifications: {e}");
                    return;
                }
            }
        }
    }

    /// Complete every chain available on queue `queue`; returns how many,
    /// and whether the used ring could not be written (stop until the next
    /// kick).
    fn drain<M>(&self, queue: usize, vring: &VringRwLock, mem: &M) -> (usize, bool)
    where
        M: Deref<Target = GuestMemory> + Clone,
    {
        // With VIRTIO_RING_F_EVENT_IDX the driver's used_event already
        // coalesces interrupts (2.7.10): ask after every completion, so the
        // first one the driver waits for reaches it while the rest of the
        // batch runs (a deep queue of 1 MiB requests halved its throughput
        // when the whole batch waited for one signal at the end). Without
        // it every check would be a signal: one per batch, at the end.
        let event_idx = vring.get_ref().get_queue().event_idx_enabled();
        let mut completed = 0;
        loop {
            match self.process_one(queue, vring, mem) {
                Step::Completed => {
                    completed += 1;
                    if event_idx {
                        signal(queue, vring);
                    }
                }
                Step::Empty => return (completed, false),
                Step::Broken => return (completed, true),
            }
        }
    }

    fn process_one<M>(&self, queue: usize, vring: &VringRwLock, mem: &M) -> Step
    where
        M: Deref<Target = GuestMemory> + Clone,
    {
        let Some(busy) = self.busy.get(queue) else {
            return Step::Empty;
        };
        let mut track = lock(busy);
        track.before_pop(queue, vring, mem);
        let Some(chain) = vring
            .get_mut()
            .get_queue_mut()
            .pop_descriptor_chain(mem.clone())
        else {
            return Step::Empty;
        };
        let head = chain.head_index();
        track.popped(queue, head);
        let layout = ChainLayout::of(chain.clone());
        let len = if layout.broken {
            self.malformed(queue, head, Malformed::BrokenChain);
            0
        } else if queue == CONTROL_QUEUE {
            self.complete_ctrl(queue, mem, chain)
        } else {
            self.complete_cmd(queue, mem, chain, &layout)
        };
        track.before_used(queue, head);
        match vring.add_used(head, len) {
            Ok(()) => {
                let used = vring.get_ref().get_queue().next_used();
                track.after_used(queue, head, used);
                Step::Completed
            }
            Err(e) => {
                error!("queue {queue}: cannot complete descriptor {head}: {e}");
                Step::Broken
            }
        }
    }

    /// Serve one command request (5.6.6.1) whose chain `layout` is not
    /// broken, and return the used length.
    fn complete_cmd<M>(
        &self,
        queue: usize,
        mem: &GuestMemory,
        chain: DescriptorChain<M>,
        layout: &ChainLayout,
    ) -> u32
    where
        M: Deref<Target = GuestMemory> + Clone,
    {
        let head = chain.head_index();
        if layout.writable < CMD_RESP_SIZE as u64 {
            self.malformed(
                queue,
                head,
                Malformed::ShortResponse {
                    need: CMD_RESP_SIZE,
                    have: layout.writable,
                },
            );
            return 0;
        }
        let mut writer = match Writer::new(mem, chain.clone()) {
            Ok(w) => w,
            Err(_) => {
                // Some device-writable descriptor is outside guest memory,
                // maybe only a data-in one: try the response header alone.
                self.malformed(queue, head, Malformed::BadWritableAddress);
                let resp = CmdResp::transport_error(Response::Failure, 0).encode();
                return write_prefix(mem, chain, &resp);
            }
        };
        let Ok(mut data_in) = writer.split_at(CMD_RESP_SIZE) else {
            // Not reached: `writable` covers the response header.
            return 0;
        };
        let (resp, written) = self.execute_cmd(queue, mem, chain, layout, &mut data_in);
        match writer.write_all(&resp.encode()) {
            Ok(()) => {
                let total = CMD_RESP_SIZE + written;
                u32::try_from(total).unwrap_or(u32::MAX)
            }
            Err(e) => {
                error!("queue {queue}, descriptor {head}: cannot write the response: {e}");
                0
            }
        }
    }

    /// Decode and execute the command of a chain whose response area is
    /// usable; returns the response header to write and the data-in bytes
    /// filled (through `data_in` or straight into guest memory).
    fn execute_cmd<M>(
        &self,
        queue: usize,
        mem: &GuestMemory,
        chain: DescriptorChain<M>,
        layout: &ChainLayout,
        data_in: &mut Writer<'_>,
    ) -> (CmdResp, usize)
    where
        M: Deref<Target = GuestMemory> + Clone,
    {
        let head = chain.head_index();
        let data_in_len = u32::try_from(data_in.available_bytes()).unwrap_or(u32::MAX);
        // Nothing transferred: the residual is the whole data buffer.
        let untouched = if data_in_len > 0 {
            data_in_len
        } else {
            let out = layout.readable.saturating_sub(CMD_REQ_SIZE as u64);
            u32::try_from(out).unwrap_or(u32::MAX)
        };
        let fail = |what| {
            self.malformed(queue, head, what);
            (CmdResp::transport_error(Response::Failure, untouched), 0)
        };
        if layout.misordered {
            return fail(Malformed::WritableBeforeReadable);
        }
        if layout.readable < CMD_REQ_SIZE as u64 {
            return fail(Malformed::ShortRequest {
                need: CMD_REQ_SIZE,
                have: layout.readable,
            });
        }
        let Ok(mut reader) = Reader::new(mem, chain.clone()) else {
            return fail(Malformed::BadReadableAddress);
        };
        let mut hdr = [0u8; CMD_REQ_SIZE];
        if reader.read_exact(&mut hdr).is_err() {
            return fail(Malformed::BadReadableAddress);
        }
        let req = CmdReq::decode(&hdr);
        let lun = match LunAddress::decode(&req.lun) {
            LunAddress::Lun { target: 0, lun } => lun,
            other => {
                debug!(
                    "queue {queue}: tag {:#x}: no such target: {other:?}",
                    req.id
                );
                return (CmdResp::transport_error(Response::BadTarget, untouched), 0);
            }
        };
        trace!(
            "queue {queue}: tag {:#x} lun {lun} attr {} prio {} crn {} cdb {:02x?}",
            req.id,
            req.task_attr,
            req.prio,
            req.crn,
            &req.cdb[..]
        );
        let data_out_len = reader.available_bytes();
        let mut sink = DataIn {
            inner: data_in,
            overrun: false,
        };
        let mut direct = GuestData::new(mem, chain);
        crate::trace::scsi_context(u16::try_from(queue).unwrap_or(u16::MAX), req.id);
        let out = self.target.execute(scsi::Request {
            lun,
            cdb: &req.cdb,
            data_out: &mut reader,
            data_in: &mut sink,
            data_in_len,
            direct: Some(&mut direct),
        });
        let overrun = sink.overrun;
        let written = data_in.bytes_written() + direct.sent;
        if u64::from(out.data_in_written) != written as u64 {
            debug!(
                "queue {queue}: tag {:#x}: target reports {} data-in bytes, wrote {written}",
                req.id, out.data_in_written
            );
        }
        // 5.6.6.1: residual = data_length - number_of_transferred_bytes, of
        // the data-in buffer when there is one, else of the data-out one.
        let residual = if data_in_len > 0 {
            let w = u32::try_from(written).unwrap_or(u32::MAX);
            data_in_len.saturating_sub(w)
        } else {
            // `bytes_read` counts the header too.
            let consumed = reader.bytes_read().saturating_sub(CMD_REQ_SIZE) + direct.received;
            u32::try_from(data_out_len.saturating_sub(consumed)).unwrap_or(u32::MAX)
        };
        debug!(
            "queue {queue}: tag {:#x} lun {lun} cdb {:02x}: status {:?}, {written} bytes in, residual {residual}{}",
            req.id,
            req.cdb[0],
            out.status,
            if overrun { ", OVERRUN" } else { "" }
        );
        let resp = CmdResp {
            sense: out.sense,
            residual,
            status_qualifier: 0,
            status: out.status as u8,
            response: if overrun {
                Response::Overrun
            } else {
                Response::Ok
            },
        };
        (resp, written)
    }

    /// The global queue index of event `device_event` of worker `thread`:
    /// vhost-user-backend numbers a worker's queues 0.. in the order of the
    /// set bits of its [`VhostUserBackend::queues_per_thread`] mask.
    fn queue_index(&self, thread: usize, device_event: u16) -> Option<usize> {
        let mask = *self.queues_per_thread().get(thread)?;
        (0..64)
            .filter(|bit| mask >> bit & 1 == 1)
            .nth(usize::from(device_event))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Signal the guest that queue `queue` has used buffers, if it wants to
/// hear it: with EVENT_IDX only when the batch put on the used ring since
/// the last check crossed the driver's used_event (2.7.10), else always.
fn signal(queue: usize, vring: &VringRwLock) {
    match vring.needs_notification() {
        Ok(true) => {
            if let Err(e) = vring.signal_used_queue() {
                error!("queue {queue}: cannot signal the guest: {e}");
            }
        }
        Ok(false) => {}
        Err(e) => error!("queue {queue}: cannot read the used event index: {e}"),
    }
}

/// Whether the queue is running (not reset or stopped by the front end).
fn queue_ready(vring: &VringRwLock) -> bool {
    vring.get_ref().get_queue().ready()
}

/// Whether the driver has made a chain available that this queue has not
/// taken yet (a stopped queue has none).
fn chain_available(vring: &VringRwLock, mem: &GuestMemory) -> bool {
    let state = vring.get_ref();
    let q = state.get_queue();
    q.ready()
        && q.avail_idx(mem, Ordering::Acquire)
            .is_ok_and(|idx| idx.0 != q.next_avail())
}

/// Write `bytes` to the start of the device-writable part of `chain`,
/// descriptor by descriptor through the checked [`Bytes::write_slice`],
/// for chains where some later writable descriptor is unusable. Returns the
/// used length: `bytes.len()`, or 0 if the bytes did not all fit in valid
/// descriptors.
fn write_prefix<M>(mem: &GuestMemory, chain: DescriptorChain<M>, bytes: &[u8]) -> u32
where
    M: Deref<Target = GuestMemory>,
{
    let mut rest = bytes;
    for desc in chain.writable() {
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(desc.len() as usize);
        if mem.write_slice(&rest[..n], desc.addr()).is_err() {
            return 0;
        }
        rest = &rest[n..];
    }
    if rest.is_empty() {
        u32::try_from(bytes.len()).unwrap_or(0)
    } else {
        0
    }
}

impl VhostUserBackend for ScsiBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        FIRST_REQUEST_QUEUE + usize::from(self.request_queues)
    }

    fn max_queue_size(&self) -> usize {
        usize::from(MAX_QUEUE_SIZE)
    }

    /// VIRTIO_SCSI_F_CHANGE (5.6.3) is accepted because QEMU offers it to
    /// the guest by default (`param_change=on`); the device never sends a
    /// parameter change event. VIRTIO_SCSI_F_HOTPLUG is not offered: the
    /// LUN set is fixed, and QEMU then hides the bit from the guest.
    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | (1 << VIRTIO_SCSI_F_CHANGE)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn acked_features(&self, features: u64) {
        info!("features acknowledged: {features:#x}");
    }

    /// MQ: QEMU asks how many queues the backend has (GET_QUEUE_NUM) and
    /// refuses to start if its `num_queues` needs more. REPLY_ACK: QEMU
    /// waits for each message to be applied. No CONFIG: QEMU's
    /// vhost-user-scsi builds the configuration space (5.6.4) itself.
    /// INFLIGHT_SHMFD: QEMU keeps the inflight region (see
    /// [`crate::transport::inflight`]) across backend restarts, so a
    /// backend that replaces a killed one serves again what it left in
    /// flight.
    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::INFLIGHT_SHMFD
    }

    /// VHOST_USER_GET_INFLIGHT_FD: a new zeroed region for the frontend's
    /// queue count and size.
    fn get_inflight_fd(&self, req: &VhostUserInflight) -> io::Result<(VhostUserInflight, File)> {
        let (region, file, size) = InflightRegion::create(req.num_queues, req.queue_size)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        info!(
            "GET_INFLIGHT_FD: {} queues of {}: new region of {size} bytes",
            req.num_queues, req.queue_size
        );
        self.attach_inflight(Some(Arc::new(region)));
        Ok((
            VhostUserInflight::new(size, 0, req.num_queues, req.queue_size),
            file,
        ))
    }

    /// VHOST_USER_SET_INFLIGHT_FD: track into the region the frontend
    /// kept (after a backend restart, with what the previous one left).
    fn set_inflight_fd(&self, req: &VhostUserInflight, file: File) -> io::Result<()> {
        let size = usize::try_from(req.mmap_size).unwrap_or(usize::MAX);
        let region =
            InflightRegion::map(file, req.mmap_offset, size, req.num_queues, req.queue_size)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        info!(
            "SET_INFLIGHT_FD: {} queues of {}, {size} bytes at offset {}",
            req.num_queues, req.queue_size, req.mmap_offset
        );
        self.attach_inflight(Some(Arc::new(region)));
        Ok(())
    }

    fn set_event_idx(&self, enabled: bool) {
        // vhost-user-backend sets the flag on every vring, where
        // `needs_notification` consults it.
        debug!(
            "VIRTIO_RING_F_EVENT_IDX {}",
            if enabled { "on" } else { "off" }
        );
    }

    fn update_memory(&self, _mem: GuestMemoryAtomic<GuestMemory>) -> io::Result<()> {
        // Same object as `self.mem`, whose contents were just replaced.
        info!("guest memory table updated");
        Ok(())
    }

    fn queues_per_thread(&self) -> Vec<u64> {
        let mut masks = vec![(1 << CONTROL_QUEUE) | (1 << EVENT_QUEUE)];
        masks.extend(
            (0..usize::from(self.request_queues)).map(|i| 1u64 << (FIRST_REQUEST_QUEUE + i)),
        );
        masks
    }

    fn exit_event(&self, thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        match new_event_consumer_and_notifier(EventFlag::NONBLOCK | EventFlag::CLOEXEC) {
            Ok(pair) => {
                self.exit_fds
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(pair.0.as_raw_fd());
                Some(pair)
            }
            Err(e) => {
                error!("worker {thread_index}: cannot create its exit event: {e}");
                None
            }
        }
    }

    /// Called on VHOST_USER_GET_VRING_BASE after the ring was marked not
    /// ready: wait for a request in flight on it to reach the used ring, so
    /// the returned ring base is final.
    fn stop_vring(&self, queue_index: u32) -> io::Result<()> {
        if let Some(busy) = usize::try_from(queue_index)
            .ok()
            .and_then(|i| self.busy.get(i))
        {
            drop(lock(busy));
        }
        Ok(())
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        thread_id: usize,
    ) -> io::Result<()> {
        // Errors are logged, never returned: an error would end the worker
        // thread and with it every queue it serves until QEMU reconnects.
        let (Some(queue), Some(vring)) = (
            self.queue_index(thread_id, device_event),
            vrings.get(usize::from(device_event)),
        ) else {
            warn!("worker {thread_id}: event {device_event} for no queue");
            return Ok(());
        };
        match queue {
            // 5.6.6.3: the driver keeps the event queue stocked with
            // buffers; the device holds them until it has an event, and
            // this one never has.
            EVENT_QUEUE => trace!("event queue kicked"),
            _ => self.process_queue(queue, vring),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
