//! One NVMe/TCP connection: ICReq/ICResp, then Fabrics Connect binds it to
//! a [`Queue`], then command capsules, R2T/H2CData, C2HData and response
//! capsules until the host goes away or sends garbage.
//!
//! A connection is served by one thread with blocking reads (a short read
//! timeout lets it notice shutdown and deliver deferred completions such
//! as Asynchronous Event Requests). Commands execute in the order their
//! data becomes complete; while one write waits for its H2CData the host
//! may pipeline more capsules, which are decoded and executed meanwhile.
//! Replies are gathered in one buffer and written once per batch of
//! received PDUs.

use std::{
    collections::{HashMap, VecDeque},
    io::{self, Read, Write},
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
    Limits, StopSignal,
};
use crate::{
    nvme::{Admitted, Completion, ConnectOutcome, DataDirection, Queue, Sqe, Targets},
    stats::fabric::{CommandClass, Direction, FabricStats},
};

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
    tx: Vec<u8>,
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

/// Send what is queued for the host (whole PDUs), traced.
fn send(mut stream: &TcpStream, conn: u64, tx: &[u8]) -> io::Result<()> {
    crate::trace::RECORDER.pdu(conn, 1, tx);
    stream.write_all(tx)
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
                    send(stream, conn, &st.tx)?;
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
                    send(stream, conn, &st.tx)?;
                    return Ok(end);
                }
                Err(fatal) => {
                    st.terminate(fatal, pdu_bytes, &ch);
                    send(stream, conn, &st.tx)?;
                    return Ok(End::Terminated);
                }
            }
            if st.tx.len() >= TX_FLUSH {
                send(stream, conn, &st.tx)?;
                st.tx.clear();
            }
        }
        st.deliver_deferred();
        if !st.tx.is_empty() {
            send(stream, conn, &st.tx)?;
            st.tx.clear();
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
            tx: Vec::with_capacity(64 * 1024),
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
            &mut self.tx,
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
                .encode(&mut self.tx);
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
            p.buf.reserve_exact(p.expected as usize);
            let (cid, class, expected) = (p.sqe.cid(), p.class, p.expected);
            let digests = self.digests();
            let n = pdu::encode_r2t(&mut self.tx, cid, ttag, 0, expected, digests);
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
        let mut data_in = Vec::new();
        if let Some(completion) = queue.run(a, data_out, &mut data_in) {
            if data_in.len() > limit {
                debug!(
                    "nvme-tcp: cid {:#x}: front end returned {} bytes, {limit} allowed",
                    sqe.cid(),
                    data_in.len()
                );
                data_in.truncate(limit);
            }
            self.respond(&sqe, class, completion, &data_in);
        }
    }

    fn respond_status(&mut self, sqe: &Sqe, class: CommandClass, status: u16) {
        let completion = Completion {
            status,
            ..Completion::default()
        };
        self.respond(sqe, class, completion, &[]);
    }

    /// Send `data` in C2HData PDUs, then the response capsule unless the
    /// last C2HData can carry SUCCESS (SQ flow control disabled and a
    /// completion with nothing in it).
    fn respond(&mut self, sqe: &Sqe, class: CommandClass, completion: Completion, data: &[u8]) {
        let digests = self.digests();
        let hpda = self.ic.map_or(0, |n| n.hpda);
        let data = if completion.status == 0 { data } else { &[] };
        let success =
            !data.is_empty() && !self.sq_flow_control && completion == Completion::default();
        let chunk = self.limits.c2h_chunk.max(1);
        let count = data.len().div_ceil(chunk);
        for (i, piece) in data.chunks(chunk).enumerate() {
            let last = i + 1 == count;
            let datao = u32::try_from(i * chunk).unwrap_or(u32::MAX);
            let n = pdu::encode_c2h_data(
                &mut self.tx,
                sqe.cid(),
                datao,
                piece,
                last,
                last && success,
                digests,
                hpda,
            );
            self.stats
                .pdu(class, Direction::ControllerToHost, piece.len(), n);
        }
        if !success {
            self.send_cqe(sqe.cid(), class, completion);
        }
    }

    fn send_cqe(&mut self, cid: u16, class: CommandClass, completion: Completion) {
        let (sqid, qsize) = self
            .queue
            .as_ref()
            .map_or((0, 1), |q| (q.qid(), u32::from(q.sqsize()) + 1));
        let sqhd = if self.sq_flow_control {
            let next = (u32::from(self.sqhd) + 1) % qsize;
            self.sqhd = u16::try_from(next).unwrap_or(0);
            self.sqhd
        } else {
            0
        };
        let cqe = Cqe {
            dw0: completion.dw0,
            dw1: completion.dw1,
            sqhd,
            sqid,
            cid,
            status: completion.status,
        };
        let digests = self.digests();
        let n = pdu::encode_capsule_resp(&mut self.tx, &cqe, digests);
        self.stats.pdu(class, Direction::ControllerToHost, 0, n);
    }

    /// Response capsules for deferred commands that completed (AER).
    fn deliver_deferred(&mut self) {
        let Some(queue) = &self.queue else {
            return;
        };
        let done = queue.take_deferred();
        let class = if queue.qid() == 0 {
            CommandClass::Admin
        } else {
            CommandClass::Other
        };
        for (cid, completion) in done {
            self.send_cqe(cid, class, completion);
        }
    }
}

/// The connection state machine driven by generated PDU sequences, exactly
/// as `run` feeds it (header check, decode, `State::handle`), without a
/// socket so that the long mode can run a million sequences.
#[cfg(test)]
mod state_machine_tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::{
        nvme::{
            fabrics::{CONNECT_DATA_LEN, FCTYPE_CONNECT, OPCODE as OPC_FABRICS},
            Subsystem, SubsystemConfig,
        },
        storage::{Device, DeviceConfig},
    };

    const SUBNQN: &str = "nqn.2026-11.dev.zonecopy:prop";

    /// One 1 MiB namespace shared by every case (opened once).
    fn device() -> Arc<Device> {
        static DEV: OnceLock<(tempfile::TempDir, Arc<Device>)> = OnceLock::new();
        let (_, d) = DEV.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let dev = Device::open(&DeviceConfig {
                path: dir.path().join("ns.img"),
                size: 1 << 20,
                block_size: 4096,
                zoned: None,
            })
            .unwrap();
            (dir, Arc::new(dev))
        });
        Arc::clone(d)
    }

    /// What a host may send, valid or not.
    #[derive(Clone, Debug)]
    enum Step {
        IcReq {
            dgst: u8,
        },
        Connect {
            qid: u16,
            cntlid: u16,
            sgl_len: u32,
            in_capsule: bool,
        },
        Command {
            sqe: [u8; 64],
            icd: usize,
        },
        /// A well-formed Write of `nlb + 1` blocks, its data by R2T.
        Write {
            cid: u16,
            slba: u8,
            nlb: u8,
        },
        H2cData {
            ttag: u16,
            cccid: u16,
            datao: u32,
            len: usize,
            last: bool,
        },
        TermReq,
        Garbage(Vec<u8>),
    }

    /// Opcodes worth sending: every admin and NVM row, Fabrics, and one
    /// nothing implements.
    fn fuzz_opcodes() -> Vec<u8> {
        let named = crate::nvme::commands::ADMIN
            .iter()
            .chain(crate::nvme::commands::NVM)
            .map(|c| c.opcode);
        named.chain([OPC_FABRICS, u8::MAX]).collect()
    }

    fn step() -> impl Strategy<Value = Step> {
        let sqe = (
            prop::sample::select(fuzz_opcodes()),
            any::<[u8; 63]>(),
            prop::sample::select(vec![0u32, 512, 4096, 32 * 1024, 64 * 1024, u32::MAX]),
            any::<bool>(),
        )
            .prop_map(|(op, rest, len, nsid1)| {
                let mut s = [0u8; 64];
                s[0] = op;
                s[1..].copy_from_slice(&rest);
                s[1] = 0x40; // SGL, as NVMe/TCP requires
                if nsid1 {
                    s[4..8].copy_from_slice(&1u32.to_le_bytes());
                }
                if len != u32::MAX {
                    // A plausible data length (SGL1 length, bytes 35:32).
                    s[32..36].copy_from_slice(&len.to_le_bytes());
                }
                s
            });
        prop_oneof![
            (0u8..4).prop_map(|dgst| Step::IcReq { dgst }),
            (
                0u16..3,
                any::<u16>(),
                prop::sample::select(vec![0u32, 512, 1024, 4096, 32 << 20]),
                any::<bool>()
            )
                .prop_map(|(qid, cntlid, sgl_len, in_capsule)| Step::Connect {
                    qid,
                    cntlid,
                    sgl_len,
                    in_capsule
                }),
            (sqe, 0usize..2048).prop_map(|(sqe, icd)| Step::Command { sqe, icd }),
            (
                0u16..4,
                any::<u16>(),
                0u32..(1 << 21),
                0usize..8192,
                any::<bool>()
            )
                .prop_map(|(ttag, cccid, datao, len, last)| Step::H2cData {
                    ttag,
                    cccid,
                    datao,
                    len,
                    last
                }),
            (0u16..12, any::<u8>(), 0u8..8).prop_map(|(cid, slba, nlb)| Step::Write {
                cid,
                slba,
                nlb
            }),
            Just(Step::TermReq),
            proptest::collection::vec(any::<u8>(), 0..160).prop_map(Step::Garbage),
        ]
    }

    /// An admin queue of a new controller, enabled (CC.EN) with one I/O
    /// queue, and its controller ID.
    fn enabled_controller(targets: &Targets) -> (Queue, u16) {
        let mut s = [0u8; 64];
        s[0] = OPC_FABRICS;
        s[4] = FCTYPE_CONNECT;
        s[44..46].copy_from_slice(&31u16.to_le_bytes());
        let mut d = vec![0u8; 1024];
        d[16..18].copy_from_slice(&0xffffu16.to_le_bytes());
        d[256..256 + SUBNQN.len()].copy_from_slice(SUBNQN.as_bytes());
        d[512..515].copy_from_slice(b"nqn");
        let ConnectOutcome::Connected(admin, c) = targets.connect(&Sqe(s), &d) else {
            panic!("admin Connect refused");
        };
        let mut out = Vec::new();
        // Property Set CC = EN | IOSQES 6 | IOCQES 4.
        let mut p = [0u8; 64];
        p[0] = OPC_FABRICS;
        p[44..48].copy_from_slice(&0x14u32.to_le_bytes());
        p[48..52].copy_from_slice(&0x0046_0001u32.to_le_bytes());
        assert_eq!(
            admin.execute(&Sqe(p), &[], &mut out).map(|c| c.status),
            Some(0)
        );
        // Set Features Number of Queues.
        let mut f = [0u8; 64];
        f[0] = crate::nvme::commands::opcode("Set Features");
        f[1] = 0x40; // SGL (PSDT 01b), as Fabrics requires
        f[39] = 0x5a;
        f[40] = 0x07;
        assert_eq!(
            admin.execute(&Sqe(f), &[], &mut out).map(|c| c.status),
            Some(0)
        );
        (admin, c.dw0 as u16)
    }

    fn encode(step: &Step, digests: Digests) -> Vec<u8> {
        let mut b = Vec::new();
        match step {
            Step::IcReq { dgst } => {
                pdu::IcReq {
                    pfv: 0,
                    hpda: 0,
                    dgst: *dgst,
                    maxr2t: 0,
                }
                .encode(&mut b);
            }
            Step::Connect {
                qid,
                cntlid,
                sgl_len,
                in_capsule,
            } => {
                let mut s = [0u8; 64];
                s[0] = OPC_FABRICS;
                s[1] = 0x40;
                s[4] = FCTYPE_CONNECT;
                s[32..36].copy_from_slice(&sgl_len.to_le_bytes());
                s[39] = if *in_capsule { 0x01 } else { 0x5a };
                s[42..44].copy_from_slice(&qid.to_le_bytes());
                s[44..46].copy_from_slice(&31u16.to_le_bytes());
                let mut d = vec![0u8; if *in_capsule { 1024 } else { 0 }];
                if *in_capsule {
                    d[16..18].copy_from_slice(&cntlid.to_le_bytes());
                    d[256..256 + SUBNQN.len()].copy_from_slice(SUBNQN.as_bytes());
                    d[512..515].copy_from_slice(b"nqn");
                }
                pdu::encode_capsule_cmd(&mut b, &Sqe(s), &d, digests);
            }
            Step::Command { sqe, icd } => {
                pdu::encode_capsule_cmd(&mut b, &Sqe(*sqe), &vec![0xa5; *icd], digests);
            }
            Step::H2cData {
                ttag,
                cccid,
                datao,
                len,
                last,
            } => {
                pdu::encode_h2c_data(
                    &mut b,
                    *cccid,
                    *ttag,
                    *datao,
                    &vec![0x5a; *len],
                    *last,
                    digests,
                );
            }
            Step::Write { cid, slba, nlb } => {
                let mut s = [0u8; 64];
                s[0] = crate::nvme::commands::opcode("Write");
                s[1] = 0x40;
                s[2..4].copy_from_slice(&cid.to_le_bytes());
                s[4..8].copy_from_slice(&1u32.to_le_bytes());
                let len = (u32::from(*nlb) + 1) * 4096;
                s[32..36].copy_from_slice(&len.to_le_bytes());
                s[39] = 0x5a;
                s[40..48].copy_from_slice(&u64::from(*slba).to_le_bytes());
                s[48..52].copy_from_slice(&u32::from(*nlb).to_le_bytes());
                pdu::encode_capsule_cmd(&mut b, &Sqe(s), &[], digests);
            }
            Step::TermReq => {
                pdu::encode_term_req(&mut b, PduType::H2cTermReq, 1, 0, &[0; 8]);
            }
            Step::Garbage(g) => b.extend_from_slice(g),
        }
        b
    }

    proptest! {
            #![proptest_config(crate::testing::cases(256))]

            /// Whatever a host sends, in whatever order: no panic, and the
            /// memory the connection holds stays within its limits (pending
            /// commands, R2T data, each buffer no larger than its command).
            #[test]
            fn pdu_sequences_keep_the_limits(
                connected: bool,
                dgst in 0u8..4,
                tail in proptest::collection::vec(step(), 1..24),
            ) {
                let sub = Subsystem::new(
                    SubsystemConfig { nqn: SUBNQN.into(), ..Default::default() },
                    vec![device()],
                );
                let targets = Targets { subsystems: vec![Arc::new(sub)] };
                // Half the sequences run on an I/O queue of an enabled
                // controller (handshake and Connect first), so the command and
                // R2T/H2CData paths are reached too.
                let mut steps = Vec::new();
                let _admin = if connected {
                    let (admin, cntlid) = enabled_controller(&targets);
                    steps.push(Step::IcReq { dgst });
                    steps.push(Step::Connect { qid: 1, cntlid, sgl_len: 1024, in_capsule: true });
                    Some(admin)
                } else {
                    None
                };
                steps.extend(tail);
                let stats = FabricStats::new();
                let limits = Limits {
                    max_pending_commands: 3,
                    max_pending_data: 16 * 1024,
                    max_command_data: 32 * 1024,
                    ..Limits::default()
                };
                let mut st = State::new(&targets, &stats, &limits);
                for s in &steps {
                    let bytes = encode(s, st.digests());
                    let Some(ch) = bytes.get(..CH_LEN).and_then(|h| <&[u8; CH_LEN]>::try_from(h).ok()) else {
                        continue;
                    };
                    let ctx = RxContext {
                        digests: st.ic.map(|n| n.digests),
                        max_icd: limits.max_icd,
                        max_h2c_data: limits.max_h2c_data,
                    };
                    let ch = CommonHeader::parse(ch);
                    let Ok(layout) = check_common_header(&ch, &ctx) else { break };
                    let Some(pdu) = bytes.get(..layout.plen) else { continue };
                    let end = decode_host_pdu(pdu, &layout).and_then(|p| st.handle(p, pdu));
                    st.tx.clear();
                    prop_assert!(st.pending.len() <= limits.max_pending_commands);
    // R2T data outstanding stays in the budget, except that one
                    // command may always be in flight, whatever its size.
                    let started = st.pending.values().filter(|p| p.started).count();
                    prop_assert!(st.pending_bytes <= limits.max_pending_data || started == 1);
                    for p in st.pending.values() {
                        prop_assert!(p.expected <= limits.max_command_data || p.kind == PendingKind::Connect);
                        prop_assert!(p.buf.capacity() <= p.expected as usize);
                        prop_assert!(p.kind != PendingKind::Connect || p.expected as usize == CONNECT_DATA_LEN);
                    }
                    if !matches!(end, Ok(None)) {
                        break;
                    }
                }
            }
        }
}
