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
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use log::{debug, info, warn};

use super::{
    pdu::{
        self, check_common_header, decode_host_pdu, CommonHeader, Cqe, Digests, Fatal, Fes,
        HostPdu, IcResp, PduType, RxContext, CH_LEN, DGST_DDGSTE, DGST_HDGSTE,
    },
    stats::{CommandClass, Direction, FabricStats},
    Limits, StopSignal,
};
use crate::nvme::{Completion, ConnectOutcome, DataDirection, Queue, Sqe, Targets};

/// How often a blocked read wakes up to check for shutdown and deferred
/// completions.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// A host that stops reading for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a C2HTermReq, how long to wait for the host to close.
const TERM_LINGER: Duration = Duration::from_secs(2);
/// Flush the reply buffer once it holds this much.
const TX_FLUSH: usize = 256 * 1024;

/// Bytes of Connect command data (NVMe Base 2.1, 6.3).
const CONNECT_DATA_LEN: u32 = 1024;
/// Fabrics command opcode and the Connect FCTYPE.
const OPC_FABRICS: u8 = 0x7f;
const FCTYPE_CONNECT: u8 = 0x01;
/// Connect CATTR bit 2: disable SQ flow control.
const CATTR_DISABLE_SQ_FC: u8 = 1 << 2;

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

/// A connection not yet bound to a queue by Connect, counted against
/// [`Limits::max_handshaking`] until it connects or ends.
pub(super) struct Handshake {
    counter: Arc<AtomicUsize>,
    counted: bool,
}

impl Handshake {
    /// Count one more connection in its handshake, unless `max` are.
    pub(super) fn begin(counter: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Self {
            counter: Arc::clone(counter),
            counted: true,
        })
    }

    /// Connect bound the connection: it no longer counts.
    fn done(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.counter.fetch_sub(1, Ordering::AcqRel);
        }
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
    mut handshake: Handshake,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    stats.connection_accepted();
    let end = match run(&stream, targets, stats, limits, stop, &mut handshake) {
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
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
}

fn run(
    mut stream: &TcpStream,
    targets: &Targets,
    stats: &FabricStats,
    limits: &Limits,
    stop: &dyn StopSignal,
    handshake: &mut Handshake,
) -> io::Result<End> {
    let accepted = Instant::now();
    // When the first bytes of a PDU not yet complete arrived.
    let mut partial_since: Option<Instant> = None;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL_INTERVAL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut st = State {
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
    };
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
                    stream.write_all(&st.tx)?;
                    return Ok(End::Terminated);
                }
            };
            if avail.len() < layout.plen {
                break;
            }
            let pdu_bytes = &avail[..layout.plen];
            let result = decode_host_pdu(pdu_bytes, &layout).and_then(|p| st.handle(p, pdu_bytes));
            start += layout.plen;
            partial_since = None;
            match result {
                Ok(None) => {}
                Ok(Some(end)) => {
                    stream.write_all(&st.tx)?;
                    return Ok(end);
                }
                Err(fatal) => {
                    st.terminate(fatal, pdu_bytes, &ch);
                    stream.write_all(&st.tx)?;
                    return Ok(End::Terminated);
                }
            }
            if st.tx.len() >= TX_FLUSH {
                stream.write_all(&st.tx)?;
                st.tx.clear();
            }
        }
        st.deliver_deferred();
        if !st.tx.is_empty() {
            stream.write_all(&st.tx)?;
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
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

impl State<'_> {
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

    fn is_admin(&self, sqe: &Sqe) -> bool {
        match &self.queue {
            Some(q) => q.qid() == 0,
            // Connect: QID at bytes 43:42.
            None => sqe.0[42] == 0 && sqe.0[43] == 0,
        }
    }

    fn capsule(&mut self, sqe: Sqe, icd: &[u8], digest_ok: bool, plen: usize) {
        let class = CommandClass::of(self.is_admin(&sqe), &sqe);
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
        if let Some(q) = &self.queue {
            q.received(&sqe);
        }
        let (kind, wanted) = match &self.queue {
            None => {
                if sqe.opcode() != OPC_FABRICS || sqe.0[4] != FCTYPE_CONNECT {
                    self.respond_status(&sqe, class, status::COMMAND_SEQUENCE_ERROR | status::DNR);
                    return;
                }
                // SGL1 length, bytes 35:32: the Connect data is 1024
                // bytes (NVMe Base 2.1, 6.3, Connect Command Data); never
                // fetch more before the host is known.
                let len = u32::from_le_bytes([sqe.0[32], sqe.0[33], sqe.0[34], sqe.0[35]]);
                if len != CONNECT_DATA_LEN {
                    debug!("nvme-tcp: Connect with {len} data bytes, not {CONNECT_DATA_LEN}");
                    self.respond_status(&sqe, class, status::DATA_SGL_LENGTH_INVALID | status::DNR);
                    return;
                }
                (PendingKind::Connect, len)
            }
            Some(q) => match q.data_direction(&sqe) {
                // More than MDTS: never fetched; the front end refuses it
                // (Invalid Field in Command) before looking at data.
                DataDirection::HostToController(n) if n > self.limits.max_command_data => {
                    self.execute(sqe, class, &[]);
                    return;
                }
                DataDirection::HostToController(n) => (PendingKind::Command, n),
                // No host data wanted: in-capsule bytes, if any, are not
                // the front end's business.
                DataDirection::None | DataDirection::ControllerToHost(_) => {
                    self.execute(sqe, class, &[]);
                    return;
                }
            },
        };
        if icd.len() as u64 == u64::from(wanted) {
            match kind {
                PendingKind::Connect => self.connect(sqe, class, icd),
                PendingKind::Command => self.execute(sqe, class, icd),
            }
        } else if icd.is_empty() && wanted <= self.limits.max_command_data {
            self.start_pending(sqe, class, kind, wanted);
        } else {
            debug!(
                "nvme-tcp: cid {:#x}: {} bytes in capsule, command wants {wanted}",
                sqe.cid(),
                icd.len()
            );
            self.respond_status(&sqe, class, status::DATA_SGL_LENGTH_INVALID | status::DNR);
        }
    }

    fn start_pending(&mut self, sqe: Sqe, class: CommandClass, kind: PendingKind, expected: u32) {
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
                    match p.kind {
                        PendingKind::Connect => self.connect(p.sqe, p.class, &p.buf),
                        PendingKind::Command => self.execute(p.sqe, p.class, &p.buf),
                    }
                }
            }
            self.send_r2ts();
        }
        Ok(())
    }

    fn connect(&mut self, sqe: Sqe, class: CommandClass, data: &[u8]) {
        match self.targets.connect(&sqe, data) {
            ConnectOutcome::Connected(queue, completion) => {
                self.sq_flow_control = sqe.0[46] & CATTR_DISABLE_SQ_FC == 0;
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

    fn execute(&mut self, sqe: Sqe, class: CommandClass, data_out: &[u8]) {
        let Some(queue) = &self.queue else {
            self.respond_status(&sqe, class, status::COMMAND_SEQUENCE_ERROR | status::DNR);
            return;
        };
        let limit = match queue.data_direction(&sqe) {
            DataDirection::ControllerToHost(n) => n as usize,
            _ => 0,
        };
        let mut data_in = Vec::new();
        if let Some(completion) = queue.execute(&sqe, data_out, &mut data_in) {
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
