//! NVMe/TCP transport (NVMe/TCP Transport Specification 1.1; NVMe over
//! Fabrics as in NVMe Base 2.1): the target side a Linux host's nvme-tcp
//! driver connects to.
//!
//! - [`pdu`]: PDU layouts, checked decoding, encoding, digests.
//! - `conn`: one connection's state machine (one thread each).
//! - `tx`: its queued output (PDU bytes, large payloads by reference,
//!   a few kept data buffers).
//! - [`stats`]: fabric byte counters.
//! - [`serve`]: the accept loop.
//!
//! The transport knows PDUs, not NVMe: every command, Fabrics Connect
//! included, goes to [`crate::nvme`] ([`Targets::connect`], then
//! [`crate::nvme::Queue`]). What the transport decides itself:
//!
//! - ICResp: PFV 0, CPDA 0 (no alignment asked of the host), the digests
//!   the host asked for (both supported), MAXH2CDATA [`Limits::max_h2c_data`].
//! - In-capsule data up to [`Limits::max_icd`] bytes on any queue (the
//!   front end should advertise IOCCSZ = (64 + that) / 16; Linux sends
//!   Fabrics and admin data up to 8 KiB in-capsule regardless).
//! - Larger host data by one R2T per command for all its bytes (so any
//!   MAXR2T works), while the connection's outstanding R2T data stays
//!   within [`Limits::max_pending_data`].
//! - Controller data in C2HData PDUs of [`Limits::c2h_chunk`] bytes; the
//!   last one carries SUCCESS instead of a response capsule when the host
//!   disabled SQ flow control in Connect and the completion is all zero.
//! - Malformed PDUs: a C2HTermReq with the FES and the offset of the bad
//!   field, then that connection closes; the others keep serving.
//!   A data digest error fails only its command (Transient Transport
//!   Error).

use std::{
    io,
    net::TcpListener,
    os::fd::AsRawFd,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::Duration,
};

use log::{error, info, warn};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use crate::{nvme::Targets, transport::serve::AcceptBackoff};

mod conn;
pub mod pdu;
#[cfg(test)]
mod tests;
mod tx;

pub use crate::stats::fabric::{ClassBytes, CommandClass, Direction, FabricSnapshot, FabricStats};

/// The IANA port for NVMe/TCP I/O controllers.
pub const DEFAULT_PORT: u16 = 4420;

/// Something the serve loop and its connections poll to know when to stop.
pub trait StopSignal: Send + Sync {
    fn is_stopped(&self) -> bool;
}

impl StopSignal for AtomicBool {
    fn is_stopped(&self) -> bool {
        self.load(Ordering::SeqCst)
    }
}

impl StopSignal for crate::transport::serve::Shutdown {
    fn is_stopped(&self) -> bool {
        self.is_requested()
    }
}

/// Transport limits and sizes.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest in-capsule data accepted (bytes).
    pub max_icd: u32,
    /// MAXH2CDATA advertised in ICResp (bytes, a multiple of 4, >= 4096).
    pub max_h2c_data: u32,
    /// Data bytes per C2HData PDU.
    pub c2h_chunk: usize,
    /// Most host-to-controller bytes one command may ask for.
    pub max_command_data: u32,
    /// Most R2T data outstanding on one connection.
    pub max_pending_data: u64,
    /// Most commands waiting for R2T data on one connection.
    pub max_pending_commands: usize,
    /// Most connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Most of those not yet bound by a Connect; a new connection past
    /// that evicts the oldest, so hosts that never connect cannot take
    /// every slot from hosts that do.
    pub max_handshaking: usize,
    /// A connection must complete ICReq and Connect within this.
    pub handshake_timeout: Duration,
    /// A PDU whose first bytes arrived must be complete within this.
    pub pdu_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_icd: 16 * 1024,
            max_h2c_data: 256 * 1024,
            c2h_chunk: 256 * 1024,
            // MDTS of the default controller (1 MiB): nothing larger is
            // fetched; main.rs sets it from the controller's MDTS.
            max_command_data: 1024 * 1024,
            max_pending_data: 4 * 1024 * 1024,
            max_pending_commands: 4096,
            max_connections: 256,
            max_handshaking: 64,
            handshake_timeout: Duration::from_secs(10),
            pdu_timeout: Duration::from_secs(30),
        }
    }
}

/// How often the accept loop checks the stop signal (ms).
const ACCEPT_POLL_MS: i32 = 100;

/// Accept NVMe/TCP connections on `listener` (bound by the caller, to
/// loopback by default) and serve each on its own thread until `stop`
/// says so; then wait for the connection threads (they notice within
/// their poll interval) and return. A connection that fails or sends
/// garbage ends alone.
pub fn serve(
    listener: TcpListener,
    targets: Arc<Targets>,
    stats: Arc<FabricStats>,
    stop: Arc<dyn StopSignal>,
    limits: Limits,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new()?;
    epoll.ctl(
        ControlOperation::Add,
        listener.as_raw_fd(),
        EpollEvent::new(EventSet::IN, 0),
    )?;
    if let Ok(addr) = listener.local_addr() {
        info!("nvme-tcp: listening on {addr}");
    }
    let limits = Arc::new(limits);
    let handshakes = conn::Handshakes::new(limits.max_handshaking);
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut events = [EpollEvent::default(); 1];
    let mut backoff = AcceptBackoff::new("nvme-tcp");
    let result = loop {
        if stop.is_stopped() {
            break Ok(());
        }
        match epoll.wait(ACCEPT_POLL_MS, &mut events) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
        workers.retain(|w| !w.is_finished());
        loop {
            let (stream, peer) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE...: keep serving the others, without spinning
                    // on a listener that stays readable.
                    backoff.failed(&e);
                    break;
                }
            };
            backoff.succeeded();
            if workers.len() >= limits.max_connections {
                warn!(
                    "nvme-tcp: {peer}: refused, {} connections open",
                    workers.len()
                );
                continue;
            }
            if let Err(e) = stream.set_nonblocking(false) {
                warn!("nvme-tcp: {peer}: {e}");
                continue;
            }
            let handshake = handshakes.begin();
            let (targets, stats, stop, limits) =
                (targets.clone(), stats.clone(), stop.clone(), limits.clone());
            match thread::Builder::new()
                .name(format!("nvme-tcp {peer}"))
                .spawn(move || {
                    conn::serve_connection(stream, &targets, &stats, &limits, &*stop, handshake)
                }) {
                Ok(w) => workers.push(w),
                Err(e) => error!("nvme-tcp: {peer}: cannot start a thread: {e}"),
            }
        }
    };
    for w in workers {
        let _ = w.join();
    }
    info!("nvme-tcp: stopped; fabric bytes {:?}", stats.snapshot());
    result
}
