//! One NVMe/TCP connection: ICReq/ICResp, then Fabrics Connect binds it to
//! a [`Queue`], then command capsules, R2T/H2CData, C2HData and response
//! capsules until the host goes away or sends garbage.
//!
//! A connection is served by one thread with blocking reads (a short read
//! timeout lets it notice shutdown and deliver deferred completions such
//! as Asynchronous Event Requests). Commands execute in the order their
//! data becomes complete; while one write waits for its H2CData the host
//! may pipeline more capsules, which are decoded and executed meanwhile.
//! Replies are gathered in a [`TxQueue`] and written once per batch of
//! received PDUs (one `writev`: large read data goes from the buffer the
//! command read it into).

use std::{
    collections::{HashMap, VecDeque},
    io::{self, Read},
    net::{Shutdown as NetShutdown, TcpStream},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use log::{debug, info, warn};

use super::{
    pdu::{
        self, check_common_header, decode_host_pdu, CommonHeader, Cqe, Digests, Fatal, Fes,
        HostPdu, IcResp, PduType, RxContext, CH_LEN, DGST_DDGSTE, DGST_HDGSTE,
    },
    tx::{TxQueue, BY_REFERENCE_MIN},
    Limits, StopSignal,
};
use crate::{
    nvme::{Admitted, Completion, ConnectOutcome, DataDirection, Queue, Sqe, Targets},
    stats::fabric::{CommandClass, Direction, FabricStats},
};

mod respond;

/// How often a blocked read wakes up to check for shutdown and deferred
/// completions.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// A host that stops reading for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a C2HTermReq, how long to wait for the host to close.
const TERM_LINGER: Duration = Duration::from_secs(2);
/// Flush the reply buffer once it holds this much.
const TX_FLUSH: usize = 256 * 1024;

/// NVMe status values (Completion::status: SC bits 7:0, SCT 10:8, DNR 14),
/// generic command status (NVMe Base 2.1, Figure 102).
mod status {
    pub const DNR: u16 = 1 << 14;
    pub const COMMAND_SEQUENCE_ERROR: u16 = 0x0c;
    pub const DATA_SGL_LENGTH_INVALID: u16 = 0x0f;
    pub const COMMAND_INTERRUPTED: u16 = 0x21;
    pub const TRANSIENT_TRANSPORT_ERROR: u16 = 0x22;
}

/// What ICReq negotiated.
#[derive(Clone, Copy, Debug)]
struct Negotiated {
    digests: Digests,
    hpda: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PendingKind {
    Connect,
    Command,
}

/// A command waiting for its host-to-controller data by R2T.
struct Pending {
    sqe: Sqe,
    class: CommandClass,
    kind: PendingKind,
    admitted: Admitted,
    expected: u32,
    received: u32,
    buf: Vec<u8>,
    /// A data digest error: complete with Transient Transport Error.
    failed: bool,
    /// The R2T went out (else it waits for the data budget).
    started: bool,
}

/// Everything about a connection but the receive buffer.
struct State<'a> {
    targets: &'a Targets,
    stats: &'a FabricStats,
    limits: &'a Limits,
    tx: TxQueue,
    ic: Option<Negotiated>,
    queue: Option<Queue>,
    sq_flow_control: bool,
    sqhd: u16,
    pending: HashMap<u16, Pending>,
    waiting: VecDeque<u16>,
    pending_bytes: u64,
    next_ttag: u16,
}

/// The connections not yet bound to a queue by Connect, oldest first, at
/// most [`Limits::max_handshaking`]. A new connection past that evicts the
/// oldest (it closes at its next poll): hosts that never finish a handshake
/// cannot keep a well-formed host from starting one, and one that finishes
/// in milliseconds is out of the list long before it would be the oldest.
pub(super) struct Handshakes {
    slots: Mutex<VecDeque<Arc<Slot>>>,
    max: usize,
}

#[derive(Default)]
struct Slot {
    evicted: AtomicBool,
    done: AtomicBool,
}

/// One connection's place among the [`Handshakes`].
pub(super) struct Handshake(Arc<Slot>);

impl Handshakes {
    pub(super) fn new(max: usize) -> Self {
        Self {
            slots: Mutex::new(VecDeque::new()),
            max: max.max(1),
        }
    }

    /// A new connection's place; evicts the oldest when all are taken.
    pub(super) fn begin(&self) -> Handshake {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| !s.done.load(Ordering::Acquire));
        while slots.len() >= self.max {
            if let Some(old) = slots.pop_front() {
                old.evicted.store(true, Ordering::Release);
            }
        }
        let slot = Arc::new(Slot::default());
        slots.push_back(Arc::clone(&slot));
        Handshake(slot)
    }
}

impl Handshake {
    /// Connect bound the connection (or it ended): it leaves the list.
    fn done(&self) {
        self.0.done.store(true, Ordering::Release);
    }

    /// A newer connection took this one's place.
    fn evicted(&self) -> bool {
        self.0.evicted.load(Ordering::Acquire)
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.done();
    }
}

/// Why a connection ends.
enum End {
    /// The host closed, or the socket failed.
    Closed,
    /// Fabrics Disconnect, the admin queue gone, or the keep alive timer
    /// expired (`Queue::should_close`).
    Disconnected,
    /// No Connect within the handshake deadline, or a PDU left half-sent
    /// past its deadline (slowloris).
    TimedOut(&'static str),
    /// We sent a C2HTermReq.
    Terminated,
    /// H2CTermReq from the host.
    HostTerminated,
    Stopped,
}

/// Serve one accepted connection until it ends.
pub(super) fn serve_connection(
    stream: TcpStream,
    targets: &Targets,
    stats: &FabricStats,
    limits: &Limits,
    stop: &dyn StopSignal,
    handshake: Handshake,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    stats.connection_accepted();
    let end = match run(&stream, targets, stats, limits, stop, &handshake) {
        Ok(end) => end,
        Err(e) => {
            debug!("nvme-tcp {peer}: {e}");
            End::Closed
        }
    };
    match end {
        End::Closed => debug!("nvme-tcp {peer}: closed"),
        End::Stopped => debug!("nvme-tcp {peer}: shutdown"),
        End::Disconnected => info!("nvme-tcp {peer}: disconnected or keep alive expired, closing"),
        End::TimedOut(why) => info!("nvme-tcp {peer}: {why}, closing"),
        End::HostTerminated => info!("nvme-tcp {peer}: host sent H2CTermReq, closing"),
        End::Terminated => {
            info!("nvme-tcp {peer}: fatal transport error, sent C2HTermReq");
            linger(&stream);
        }
    }
}

/// A read that timed out (the poll interval) or was interrupted: try
/// again.
fn poll_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// After a C2HTermReq: stop sending, wait for the host to close (3.6.2.4:
/// the controller closes after the host has had a chance to read it).
fn linger(mut stream: &TcpStream) {
    let _ = stream.shutdown(NetShutdown::Write);
    let deadline = Instant::now() + TERM_LINGER;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if poll_timeout(&e) => {}
            Err(_) => break,
        }
    }
}

/// Send what is queued for the host (whole PDUs), traced, and empty the
/// queue.
fn send(stream: &TcpStream, conn: u64, tx: &mut TxQueue) -> io::Result<()> {
    if crate::trace::RECORDER.is_on() {
        crate::trace::RECORDER.pdu(conn, 1, &tx.contiguous());
    }
    tx.send(stream)
}

fn run(
    mut stream: &TcpStream,
    targets: &Targets,
    stats: &FabricStats,
    limits: &Limits,
    stop: &dyn StopSignal,
    handshake: &Handshake,
) -> io::Result<End> {
    let accepted = Instant::now();
    // The connection in a trace: the host's port.
    let conn = stream.peer_addr().map_or(0, |a| u64::from(a.port()));
    // When the first bytes of a PDU not yet complete arrived.
    let mut partial_since: Option<Instant> = None;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL_INTERVAL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut st = State::new(targets, stats, limits);
    // Big enough for the largest PDU the header check lets through, plus
    // room to read ahead.
    let max_data = limits.max_icd.max(limits.max_h2c_data) as usize;
    let mut rx = vec![0u8; max_data + 512 + 64 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        // Decode every complete PDU in the buffer.
        loop {
            let avail = &rx[start..end];
            let Some(ch_bytes) = avail
                .get(..CH_LEN)
                .and_then(|s| <&[u8; CH_LEN]>::try_from(s).ok())
            else {
                break;
            };
            let ch = CommonHeader::parse(ch_bytes);
            let ctx = RxContext {
                digests: st.ic.map(|n| n.digests),
                max_icd: limits.max_icd,
                max_h2c_data: limits.max_h2c_data,
            };
            let layout = match check_common_header(&ch, &ctx) {
                Ok(l) => l,
                Err(fatal) => {
                    st.terminate(fatal, avail, &ch);
                    send(stream, conn, &mut st.tx)?;
                    return Ok(End::Terminated);
                }
            };
            if avail.len() < layout.plen {
                break;
            }
            let pdu_bytes = &avail[..layout.plen];
            crate::trace::RECORDER.pdu(conn, 0, pdu_bytes);
            let result = decode_host_pdu(pdu_bytes, &layout).and_then(|p| st.handle(p, pdu_bytes));
            start += layout.plen;
            partial_since = None;
            match result {
                Ok(None) => {}
                Ok(Some(end)) => {
                    send(stream, conn, &mut st.tx)?;
                    return Ok(end);
                }
                Err(fatal) => {
                    st.terminate(fatal, pdu_bytes, &ch);
                    send(stream, conn, &mut st.tx)?;
                    return Ok(End::Terminated);
                }
            }
            if st.tx.len() >= TX_FLUSH {
                send(stream, conn, &mut st.tx)?;
            }
        }
        st.deliver_deferred();
        if !st.tx.is_empty() {
            send(stream, conn, &mut st.tx)?;
        }
        if stop.is_stopped() {
            return Ok(End::Stopped);
        }
        match &st.queue {
            Some(q) if q.should_close() => return Ok(End::Disconnected),
            Some(_) => handshake.done(),
            None if accepted.elapsed() > limits.handshake_timeout => {
                return Ok(End::TimedOut("no Connect within the handshake deadline"))
            }
            None if handshake.evicted() => {
                return Ok(End::TimedOut(
                    "evicted by a newer connection, still without Connect",
                ))
            }
            None => {}
        }
        if start != end {
            let since = *partial_since.get_or_insert_with(Instant::now);
            if since.elapsed() > limits.pdu_timeout {
                return Ok(End::TimedOut("a PDU left incomplete past its deadline"));
            }
        }
        // Make room: move a partial PDU to the front.
        if start == end {
            start = 0;
            end = 0;
        } else if rx.len() - end < 16 * 1024 || start > rx.len() / 2 {
            rx.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        match stream.read(&mut rx[end..]) {
            Ok(0) => return Ok(End::Closed),
            Ok(n) => end += n,
            Err(e) if poll_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

impl<'a> State<'a> {
    fn new(targets: &'a Targets, stats: &'a FabricStats, limits: &'a Limits) -> Self {
        State {
            targets,
            stats,
            limits,
            tx: TxQueue::new(limits.max_command_data as usize),
            ic: None,
            queue: None,
            sq_flow_control: true,
            sqhd: 0,
            pending: HashMap::new(),
            waiting: VecDeque::new(),
            pending_bytes: 0,
            next_ttag: 0,
        }
    }

    fn digests(&self) -> Digests {
        self.ic.map(|n| n.digests).unwrap_or_default()
    }

    /// Queue a C2HTermReq for `fatal` about the PDU starting `bytes`.
    fn terminate(&mut self, fatal: Fatal, bytes: &[u8], ch: &CommonHeader) {
        warn!(
            "nvme-tcp: {:?} (FEI {}) in PDU type {:#04x}, hlen {}, plen {}",
            fatal.fes, fatal.fei, ch.pdu_type, ch.hlen, ch.plen
        );
        // The offending header: HLEN bytes if sane, else the common header.
        let hlen = usize::from(ch.hlen);
        let take = if hlen >= CH_LEN && hlen as u64 <= u64::from(ch.plen) {
            hlen
        } else {
            CH_LEN
        };
        let header = &bytes[..take.min(bytes.len())];
        let n = pdu::encode_term_req(
            &mut self.tx.bytes,
            PduType::C2hTermReq,
            fatal.fes as u16,
            fatal.fei,
            header,
        );
        self.stats.connection_pdu(
            Direction::ControllerToHost,
            n + header.len().min(pdu::TERM_MAX_DATA),
        );
        self.stats.termination_sent();
    }

    /// Handle one decoded PDU; `Some` ends the connection.
    fn handle(&mut self, p: HostPdu<'_>, raw: &[u8]) -> Result<Option<End>, Fatal> {
        match p {
            HostPdu::IcReq(req) => {
                self.stats
                    .connection_pdu(Direction::HostToController, raw.len());
                let digests = Digests {
                    header: req.dgst & DGST_HDGSTE != 0,
                    data: req.dgst & DGST_DDGSTE != 0,
                };
                debug!(
                    "nvme-tcp: ICReq hpda {} dgst {:#x} maxr2t {}",
                    req.hpda, req.dgst, req.maxr2t
                );
                self.ic = Some(Negotiated {
                    digests,
                    hpda: req.hpda,
                });
                let n = IcResp {
                    pfv: pdu::PFV_1_0,
                    cpda: 0,
                    dgst: req.dgst,
                    maxh2cdata: self.limits.max_h2c_data,
                }
                .encode(&mut self.tx.bytes);
                self.stats.connection_pdu(Direction::ControllerToHost, n);
                Ok(None)
            }
            HostPdu::H2cTermReq(t) => {
                self.stats
                    .connection_pdu(Direction::HostToController, raw.len());
                warn!("nvme-tcp: H2CTermReq FES {:#x} FEI {:#x}", t.fes, t.fei);
                Ok(Some(End::HostTerminated))
            }
            HostPdu::CapsuleCmd(c) => {
                self.capsule(c.sqe, c.data, c.data_digest_ok, raw.len());
                Ok(None)
            }
            HostPdu::H2cData(d) => {
                self.h2c_data(&d, raw.len())?;
                Ok(None)
            }
        }
    }

    /// A command capsule: admission (the queue's, or Connect's before
    /// any queue exists) says what data to gather and the command's class.
    fn capsule(&mut self, sqe: Sqe, icd: &[u8], digest_ok: bool, plen: usize) {
        let admission = match &self.queue {
            Some(q) => Ok(q.admit(&sqe)),
            None => self.targets.admit(&sqe),
        };
        let class = match &admission {
            Ok(a) => a.class,
            Err(r) => r.class,
        };
        self.stats.command(class);
        self.stats.pdu(
            class,
            Direction::HostToController,
            icd.len(),
            plen - icd.len(),
        );
        if !digest_ok {
            warn!(
                "nvme-tcp: data digest error in capsule cid {:#x}",
                sqe.cid()
            );
            self.respond_status(&sqe, class, status::TRANSIENT_TRANSPORT_ERROR);
            return;
        }
        let a = match admission {
            Ok(a) => a,
            Err(r) => {
                self.respond(&sqe, class, r.completion, &[]);
                return;
            }
        };
        let kind = if self.queue.is_some() {
            PendingKind::Command
        } else {
            PendingKind::Connect
        };
        let wanted = match a.direction {
            DataDirection::HostToController(n) => n,
            // No host data wanted: in-capsule bytes, if any, are not
            // the front end's business.
            DataDirection::None | DataDirection::ControllerToHost(_) => {
                return self.complete(kind, a, &[]);
            }
        };
        if wanted > self.limits.max_command_data {
            // More than MDTS: never fetched; the front end refuses it
            // (Invalid Field in Command) before looking at data.
            self.complete(kind, a, &[]);
        } else if icd.len() as u64 == u64::from(wanted) {
            self.complete(kind, a, icd);
        } else if icd.is_empty() {
            self.start_pending(a, kind, wanted);
        } else {
            debug!(
                "nvme-tcp: cid {:#x}: {} bytes in capsule, command wants {wanted}",
                sqe.cid(),
                icd.len()
            );
            self.respond_status(&sqe, class, status::DATA_SGL_LENGTH_INVALID | status::DNR);
        }
    }

    /// Run an admitted command with its data.
    fn complete(&mut self, kind: PendingKind, a: Admitted, data: &[u8]) {
        match kind {
            PendingKind::Connect => self.connect(a, data),
            PendingKind::Command => self.execute(a, data),
        }
    }

    fn start_pending(&mut self, a: Admitted, kind: PendingKind, expected: u32) {
        let (sqe, class) = (*a.sqe(), a.class);
        if self.pending.len() >= self.limits.max_pending_commands {
            warn!(
                "nvme-tcp: more than {} commands wait for data",
                self.limits.max_pending_commands
            );
            self.respond_status(&sqe, class, status::COMMAND_INTERRUPTED);
            return;
        }
        let mut ttag = self.next_ttag;
        while self.pending.contains_key(&ttag) {
            ttag = ttag.wrapping_add(1);
        }
        self.next_ttag = ttag.wrapping_add(1);
        self.pending.insert(
            ttag,
            Pending {
                sqe,
                class,
                kind,
                admitted: a,
                expected,
                received: 0,
                buf: Vec::new(),
                failed: false,
                started: false,
            },
        );
        self.waiting.push_back(ttag);
        self.send_r2ts();
    }

    /// Send R2Ts to waiting commands while the data budget allows (one
    /// command may always be in flight, whatever its size). One R2T per
    /// command for all its data, so the host's MAXR2T (0's based) is
    /// never exceeded.
    fn send_r2ts(&mut self) {
        while let Some(&ttag) = self.waiting.front() {
            let Some(p) = self.pending.get_mut(&ttag) else {
                self.waiting.pop_front();
                continue;
            };
            let need = u64::from(p.expected);
            if self.pending_bytes != 0 && self.pending_bytes + need > self.limits.max_pending_data {
                break;
            }
            self.waiting.pop_front();
            self.pending_bytes += need;
            p.started = true;
            if p.expected as usize >= BY_REFERENCE_MIN {
                // A large transfer: into a kept buffer, not fresh pages.
                p.buf = self.tx.buffer();
            }
            p.buf.reserve_exact(p.expected as usize);
            let (cid, class, expected) = (p.sqe.cid(), p.class, p.expected);
            let digests = self.digests();
            let n = pdu::encode_r2t(&mut self.tx.bytes, cid, ttag, 0, expected, digests);
            self.stats.pdu(class, Direction::ControllerToHost, 0, n);
        }
    }

    fn h2c_data(&mut self, d: &pdu::H2cData<'_>, plen: usize) -> Result<(), Fatal> {
        let Some(p) = self.pending.get_mut(&d.ttag).filter(|p| p.started) else {
            self.stats.pdu(
                CommandClass::Other,
                Direction::HostToController,
                d.data.len(),
                plen - d.data.len(),
            );
            return Err(Fatal::field(pdu::offset::TTAG));
        };
        self.stats.pdu(
            p.class,
            Direction::HostToController,
            d.data.len(),
            plen - d.data.len(),
        );
        if d.cccid != p.sqe.cid() {
            return Err(Fatal::field(pdu::offset::CCCID));
        }
        match d.datao.checked_add(d.datal) {
            Some(end) if end <= p.expected => {}
            _ => return Err(Fatal::of(Fes::DataTransferOutOfRange)),
        }
        if d.datao != p.received {
            return Err(Fatal::of(Fes::PduSequenceError));
        }
        p.received += d.datal;
        if d.last != (p.received == p.expected) {
            return Err(Fatal::of(Fes::PduSequenceError));
        }
        if !d.data_digest_ok {
            warn!("nvme-tcp: data digest error in H2CData cid {:#x}", d.cccid);
            p.failed = true;
        }
        if !p.failed {
            p.buf.extend_from_slice(d.data);
        }
        if p.received == p.expected {
            let ttag = d.ttag;
            if let Some(p) = self.pending.remove(&ttag) {
                self.pending_bytes -= u64::from(p.expected);
                if p.failed {
                    self.respond_status(&p.sqe, p.class, status::TRANSIENT_TRANSPORT_ERROR);
                } else {
                    self.complete(p.kind, p.admitted, &p.buf);
                }
                self.tx.recycle(p.buf);
            }
            self.send_r2ts();
        }
        Ok(())
    }

    fn connect(&mut self, a: Admitted, data: &[u8]) {
        let (sqe, class) = (*a.sqe(), a.class);
        match self.targets.connect_admitted(a, data) {
            ConnectOutcome::Connected(queue, completion) => {
                self.sq_flow_control = queue.sq_flow_control();
                self.sqhd = 0;
                debug!(
                    "nvme-tcp: connected queue {} sqsize {} sq flow control {}",
                    queue.qid(),
                    queue.sqsize(),
                    self.sq_flow_control
                );
                self.queue = Some(queue);
                self.respond(&sqe, class, completion, &[]);
            }
            ConnectOutcome::Refused(completion) => {
                debug!("nvme-tcp: connect refused, status {:#x}", completion.status);
                self.respond(&sqe, class, completion, &[]);
            }
        }
    }

    fn execute(&mut self, a: Admitted, data_out: &[u8]) {
        let (sqe, class) = (*a.sqe(), a.class);
        let Some(queue) = &self.queue else {
            self.respond_status(&sqe, class, status::COMMAND_SEQUENCE_ERROR | status::DNR);
            return;
        };
        let limit = match a.direction {
            DataDirection::ControllerToHost(n) => n as usize,
            _ => 0,
        };
        let mut data_in = self.tx.buffer();
        if let Some(completion) = queue.run(a, data_out, &mut data_in) {
            if data_in.len() > limit {
                debug!(
                    "nvme-tcp: cid {:#x}: front end returned {} bytes, {limit} allowed",
                    sqe.cid(),
                    data_in.len()
                );
                data_in.truncate(limit);
            }
            self.respond_owned(&sqe, class, completion, data_in);
        } else {
            self.tx.recycle(data_in);
        }
    }
}

#[cfg(test)]
mod state_machine_tests;
