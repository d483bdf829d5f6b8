//! The NVMe front end: admin, NVM, ZNS and Fabrics commands translated into
//! storage core calls. Knows nothing of TCP: a transport hands over each
//! submission queue entry with its host-to-controller data already
//! gathered, and sends back the completion and controller-to-host data.
//!
//! Layout: [`commands`] is the one command table per command set (it drives
//! dispatch and the Commands Supported and Effects log); [`status`] the
//! status values and the one storage error mapping; [`fabrics`] Connect,
//! Property Get/Set and Disconnect; [`controller`] the per-host controller
//! state; [`events`] Asynchronous Event Requests and the Changed Zone List;
//! [`error_log`] the Error Information log; [`namespace`] the NVM or ZNS
//! view of a storage device; [`admin`], [`nvm`], [`zns`], [`copy`] and
//! [`discovery`] the command families.
//!
//! Transport contract: a transport knows no opcode; it asks one question
//! per capsule, admission, and moves what the answer says.
//! - an unbound connection's first capsule goes to [`Targets::admit`]: a
//!   Connect is [`Admitted`] with the 1024 data bytes to gather, anything
//!   else is refused with the completion to send; then
//!   [`Targets::connect`] with the data: `Connected` gives the [`Queue`]
//!   (queue 0 creates a controller with a dynamic controller ID; I/O
//!   queues name it and must come from the same host), `Refused` the
//!   completion to send before closing;
//! - every later SQE: [`Queue::admit`] once, when the capsule arrives
//!   (before its data: a Copy whose descriptors never come is still seen).
//!   The [`Admitted`] answer says which way data moves and how much
//!   (`direction`: what to gather, or how much may go back) and the
//!   command's counter class (`class`); [`Queue::run`] then runs it with
//!   the gathered data (Fabrics Property Get/Set/Disconnect included);
//!   `None` is a deferred Asynchronous Event Request, collected later with
//!   [`Queue::take_deferred`] on queue 0
//!   (poll it: an event may come from another thread, e.g. the control
//!   socket setting a zone READ ONLY);
//! - [`Queue::should_close`] turns true after Disconnect, when the admin
//!   queue of the controller went away, or when its keep alive timer
//!   expired (poll it);
//! - the in-capsule data size to accept is
//!   [`ControllerOptions::in_capsule_data`] (Identify IOCCSZ says so), the
//!   queue size limit `max_queue_entries` (CAP.MQES + 1).
//!
//! Everything refused is logged once at debug level with the SQE in hex
//! (Connect refusals and Copy format refusals at warn), changes nothing,
//! and completes with the status of [`status`]; nothing here panics on any
//! SQE or data.

pub mod admin;
mod admit;
pub mod commands;
pub mod controller;
pub mod copy;
pub mod discovery;
pub mod error_log;
pub mod events;
pub mod fabrics;
pub mod namespace;
pub mod nvm;
pub mod pcie;
pub mod status;
mod timed;
pub mod zns;

#[cfg(test)]
mod tests;

use std::{
    collections::{hash_map::Entry, HashMap},
    fmt,
    str::FromStr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
};

pub use admit::{Admitted, DataDirection, Refused};
pub use controller::Controller;
pub use namespace::{CopyLimits, Namespace};
pub use status::Status;

use crate::{
    stats::fabric::CommandClass,
    storage::{Device, ZoneListener},
};

/// The NQN of the well-known discovery subsystem (NVMe Base 2.1, 4.7).
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// A 64-byte submission queue entry (NVMe Base 2.1, 4.1 "Submission Queue
/// Entry"), as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sqe(pub [u8; 64]);

impl Sqe {
    /// Command Dword 0 bits 07:00.
    pub fn opcode(&self) -> u8 {
        self.0[0]
    }

    /// Command Dword 0 bits 31:16.
    pub fn cid(&self) -> u16 {
        u16::from_le_bytes([self.0[2], self.0[3]])
    }

    /// Dword `n` (0..=15), little-endian.
    pub fn dw(&self, n: usize) -> u32 {
        let i = (n % 16) * 4;
        u32::from_le_bytes([self.0[i], self.0[i + 1], self.0[i + 2], self.0[i + 3]])
    }

    /// Namespace Identifier (Dword 1).
    pub fn nsid(&self) -> u32 {
        self.dw(1)
    }

    /// Dwords `lo` and `lo + 1` as one little-endian 64-bit value.
    pub fn qw(&self, lo: usize) -> u64 {
        u64::from(self.dw(lo)) | (u64::from(self.dw(lo + 1)) << 32)
    }

    /// The length field of SGL descriptor 1 (bytes 35:32), the number of
    /// data bytes the command moves (NVMe Base 2.1, 4.3.2).
    pub fn sgl_length(&self) -> u32 {
        self.dw(8)
    }

    /// The SQE as hex, for logging a refused command.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The completion of one command, without the fields the transport owns
/// (SQ head pointer, SQ identifier, phase). NVMe Base 2.1, 4.2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// Command specific Dword 0.
    pub dw0: u32,
    /// Command specific Dword 1.
    pub dw1: u32,
    /// Status field bits 15:1 as the 16-bit value of CQE Dword 3 bits 31:17
    /// shifted down by one: bits 7:0 Status Code, 10:8 Status Code Type,
    /// 12:11 Command Retry Delay, 13 More, 14 Do Not Retry.
    pub status: u16,
}

impl Completion {
    /// A completion with `status` and zero dwords.
    pub fn with_status(status: Status) -> Self {
        Completion {
            status: status.field(),
            ..Completion::default()
        }
    }
}

/// Subsystem-wide configuration.
#[derive(Clone, Debug, Default)]
pub struct SubsystemConfig {
    /// The subsystem NQN.
    pub nqn: String,
    /// Transport address advertised in the discovery log (e.g. "10.0.2.2"
    /// as the guest sees the host) and service id (TCP port).
    pub traddr: String,
    pub trsvcid: String,
    /// Host NQNs allowed to connect; empty: any host.
    pub allowed_hosts: Vec<String>,
}

impl SubsystemConfig {
    /// Whether the host `hostnqn` may connect (and discover it).
    pub fn allows(&self, hostnqn: &str) -> bool {
        self.allowed_hosts.is_empty() || self.allowed_hosts.iter().any(|h| h == hostnqn)
    }
}

/// What the controller claims to implement: the spec version and the Copy
/// descriptor formats it offers, since real controllers differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Personality {
    /// VS: major, minor.
    pub version: (u16, u8),
    /// ONCS bit 8: the Copy command exists.
    pub copy: bool,
    /// OCFS (Identify Controller bytes 535:534): bit n = Copy descriptor
    /// format n supported.
    pub ocfs: u16,
    /// Formats 2h and 3h are refused unless the host enabled them in Host
    /// Behavior Support CDFE (NVMe Base 2.1 5.27.1.18), as the spec says.
    pub cdfe_required: bool,
    /// Formats 1h and 3h (for 32b/64b Guard protection information) are
    /// accepted on namespaces without such protection information. A
    /// spec-following controller (and QEMU) refuses them with Invalid
    /// Format.
    pub fmt13_without_pi: bool,
}

impl Personality {
    /// The names [`FromStr`] accepts.
    pub const NAMES: &'static [&'static str] = &[
        "nvme-2.1",
        "nvme-2.0-fmt0",
        "nvme-2.0-fmt01",
        "nvme-2.1-lax",
        "no-copy",
    ];

    /// NVMe 2.1, formats 0h-3h, 2h/3h only after CDFE (spec-following).
    pub const NVME_2_1: Personality = Personality {
        version: (2, 1),
        copy: true,
        ocfs: 0b1111,
        cdfe_required: true,
        fmt13_without_pi: false,
    };
}

impl Default for Personality {
    fn default() -> Self {
        Personality::NVME_2_1
    }
}

impl FromStr for Personality {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let p = |version, copy, ocfs, cdfe_required, fmt13_without_pi| Personality {
            version,
            copy,
            ocfs,
            cdfe_required,
            fmt13_without_pi,
        };
        Ok(match s {
            "nvme-2.1" => Personality::NVME_2_1,
            "nvme-2.0-fmt0" => p((2, 0), true, 0b0001, true, false),
            "nvme-2.0-fmt01" => p((2, 0), true, 0b0011, true, true),
            // Formats 2h/3h without CDFE, 1h/3h without protection
            // information: a lenient controller.
            "nvme-2.1-lax" => p((2, 1), true, 0b1111, false, true),
            "no-copy" => p((2, 1), false, 0, true, false),
            _ => {
                return Err(format!(
                    "unknown personality {s:?} (one of {})",
                    Personality::NAMES.join(", ")
                ))
            }
        })
    }
}

impl fmt::Display for Personality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NVMe {}.{} copy={} ocfs={:#x} cdfe_required={} fmt13_without_pi={}",
            self.version.0,
            self.version.1,
            self.copy,
            self.ocfs,
            self.cdfe_required,
            self.fmt13_without_pi
        )
    }
}

/// Controller options of a subsystem, beyond [`SubsystemConfig`].
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    pub personality: Personality,
    /// Serial Number (ASCII, at most 20 bytes).
    pub serial: String,
    /// Model Number (ASCII, at most 40 bytes).
    pub model: String,
    /// MDTS: maximum data transfer size as a power of two of 4 KiB
    /// (CAP.MPSMIN), 0 for no limit.
    pub mdts: u8,
    /// Most I/O queues one controller may have (Number of Queues feature).
    pub max_io_queues: u16,
    /// Largest queue size (entries) a host may ask for; CAP.MQES + 1.
    pub max_queue_entries: u16,
    /// In-capsule data the transport accepts with a command, in bytes
    /// (IOCCSZ is 64 + this, in 16-byte units).
    pub in_capsule_data: u32,
    /// Most outstanding Asynchronous Event Requests (AERL + 1).
    pub async_event_limit: u8,
    /// ZASL: Zone Append size limit as a power of two of 4 KiB, 0 = MDTS.
    pub zasl: u8,
    /// Copy counters per namespace, shared by the subsystem's controllers
    /// (and the control socket).
    pub copy_stats: Arc<copy::CopyStats>,
    /// How the host reaches the controllers: what Identify advertises and
    /// how a command's data is described (SGLs on Fabrics, PRPs on PCIe).
    pub transport: Transport,
    /// PCIe only: offer Doorbell Buffer Config (OACS bit 8), so a host
    /// driver may keep its doorbells in memory and ring the register only
    /// when the controller's EventIdx asks for it.
    pub shadow_doorbells: bool,
}

/// The transport a subsystem's controllers are reached over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// NVMe over Fabrics (TCP): Connect, properties, SGLs only.
    #[default]
    Fabrics,
    /// NVMe over PCIe (vfio-user): registers, created queues, PRPs only.
    Pcie,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            personality: Personality::default(),
            serial: "zonecopy0001".into(),
            model: "zonecopy NVMe".into(),
            mdts: 8,
            max_io_queues: 8,
            max_queue_entries: 128,
            in_capsule_data: 8192,
            async_event_limit: 4,
            zasl: 0,
            copy_stats: Arc::default(),
            transport: Transport::Fabrics,
            shadow_doorbells: true,
        }
    }
}

/// One namespace to attach: its device and its Copy limits.
#[derive(Clone, Debug)]
pub struct NamespaceSpec {
    pub device: Arc<Device>,
    pub copy_limits: CopyLimits,
    /// The device timing model (`--timing`), if on.
    pub timing: Option<Arc<crate::timing::DeviceTiming>>,
}

/// An NVM subsystem with its namespaces (NSID i+1 is `namespaces[i]`).
pub struct Subsystem {
    cfg: SubsystemConfig,
    opts: ControllerOptions,
    /// `None`: the NSID is valid but no namespace is attached (a device
    /// the NVMe front end cannot serve, e.g. zoned with conventional zones).
    namespaces: Vec<Option<Namespace>>,
    controllers: Arc<Mutex<Registry>>,
    /// The zone listeners registered with the zoned namespaces' devices
    /// (the devices hold them weakly).
    _zone_listeners: Vec<Arc<events::ZoneChanges>>,
}

#[derive(Default)]
struct Registry {
    next: u16,
    live: HashMap<u16, Weak<Controller>>,
}

impl Subsystem {
    pub fn new(cfg: SubsystemConfig, namespaces: Vec<Arc<Device>>) -> Self {
        let specs = namespaces
            .into_iter()
            .map(|device| NamespaceSpec {
                device,
                copy_limits: CopyLimits::default(),
                timing: None,
            })
            .collect();
        Subsystem::with_options(cfg, ControllerOptions::default(), specs)
    }

    /// A subsystem with explicit controller options and per-namespace
    /// limits. A device that cannot be served as a namespace (a zoned
    /// device with conventional zones: ZNS has none) is logged and leaves
    /// its NSID inactive.
    pub fn with_options(
        cfg: SubsystemConfig,
        opts: ControllerOptions,
        namespaces: Vec<NamespaceSpec>,
    ) -> Self {
        let namespaces = namespaces
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let nsid = u32::try_from(i + 1).unwrap_or(u32::MAX);
                match Namespace::new(&cfg.nqn, nsid, spec.device, spec.copy_limits) {
                    Ok(ns) => Some(Namespace {
                        timing: spec.timing,
                        ..ns
                    }),
                    Err(why) => {
                        log::error!("{}: namespace {nsid} left inactive: {why}", cfg.nqn);
                        None
                    }
                }
            })
            .collect::<Vec<_>>();
        let controllers = Arc::new(Mutex::new(Registry::default()));
        let zone_listeners = namespaces
            .iter()
            .flatten()
            .filter(|ns| ns.is_zoned())
            .map(|ns| {
                let l = Arc::new(events::ZoneChanges {
                    nsid: ns.nsid,
                    registry: Arc::downgrade(&controllers),
                });
                let weak: Weak<dyn ZoneListener> =
                    Arc::downgrade(&(Arc::clone(&l) as Arc<dyn ZoneListener>));
                ns.device.add_zone_listener(weak);
                l
            })
            .collect();
        Subsystem {
            cfg,
            opts,
            namespaces,
            controllers,
            _zone_listeners: zone_listeners,
        }
    }

    /// The subsystem NQN.
    pub fn nqn(&self) -> &str {
        &self.cfg.nqn
    }

    /// Number of namespaces.
    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }

    /// The subsystem configuration.
    pub fn config(&self) -> &SubsystemConfig {
        &self.cfg
    }

    /// The controller options.
    pub fn options(&self) -> &ControllerOptions {
        &self.opts
    }

    /// The active namespace `nsid`, if any.
    pub fn namespace(&self, nsid: u32) -> Option<&Namespace> {
        let idx = usize::try_from(nsid.checked_sub(1)?).ok()?;
        self.namespaces.get(idx)?.as_ref()
    }

    /// All active namespaces in NSID order.
    pub fn active_namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.iter().flatten()
    }

    /// Number of Namespaces (NN): the largest valid NSID.
    pub fn nn(&self) -> u32 {
        u32::try_from(self.namespaces.len()).unwrap_or(u32::MAX)
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.controllers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A controller ID not in use (1..=FFEFh, NVMe Base 2.1 3.1.2: FFF0h
    /// and above are reserved).
    fn allocate_cntlid(
        &self,
        ctrl: impl FnOnce(u16) -> Arc<Controller>,
    ) -> Option<Arc<Controller>> {
        let mut reg = self.registry();
        reg.live.retain(|_, c| c.strong_count() > 0);
        for _ in 0..0xFFEF {
            reg.next = if reg.next >= 0xFFEF { 1 } else { reg.next + 1 };
            let id = reg.next;
            if let Entry::Vacant(slot) = reg.live.entry(id) {
                let c = ctrl(id);
                slot.insert(Arc::downgrade(&c));
                return Some(c);
            }
        }
        None
    }

    fn controller(&self, cntlid: u16) -> Option<Arc<Controller>> {
        self.registry().live.get(&cntlid)?.upgrade()
    }
}

/// All subsystems a transport serves, plus the discovery subsystem.
pub struct Targets {
    pub subsystems: Vec<Arc<Subsystem>>,
}

/// One submission/completion queue pair bound to a controller by Fabrics
/// Connect. Queue 0 is the admin queue.
pub struct Queue {
    qid: u16,
    sqsize: u16,
    ctrl: Arc<Controller>,
    /// The host sent Fabrics Disconnect on this queue.
    disconnected: AtomicBool,
    sq_flow_control: bool,
}

/// What Fabrics Connect answered.
pub enum ConnectOutcome {
    /// The queue is bound; send this completion (DW0 carries the
    /// controller ID for an admin queue).
    Connected(Queue, Completion),
    /// Refused; send this completion and keep the connection unbound.
    Refused(Completion),
}

impl Targets {
    /// Admission of an unbound connection's capsule: only Fabrics Connect
    /// (opcode 7Fh, FCTYPE 01h, NVMe Base 2.1, 6.3) with its 1024 data
    /// bytes (Figure 546) is admitted; anything else is a Command Sequence
    /// Error, a Connect with another SGL length Data SGL Length Invalid
    /// (both DNR): never fetch more before the host is known.
    pub fn admit(&self, sqe: &Sqe) -> Result<Admitted, Refused> {
        let connect = fabrics::Connect::decode_capsule(sqe);
        let class = match connect {
            Some(c) if c.qid != 0 => CommandClass::Other,
            _ => CommandClass::Admin,
        };
        let refuse = |status: Status| Refused {
            class,
            completion: Completion::with_status(status),
        };
        let Some(connect) = connect else {
            return Err(refuse(Status::COMMAND_SEQUENCE_ERROR));
        };
        let len = sqe.sgl_length();
        if len as usize != fabrics::CONNECT_DATA_LEN {
            log::debug!(
                "Connect with {len} data bytes, not {}",
                fabrics::CONNECT_DATA_LEN
            );
            return Err(refuse(Status::DATA_SGL_LENGTH_INVALID));
        }
        let row = commands::fabrics_row(fabrics::FCTYPE_CONNECT);
        Ok(Admitted {
            direction: DataDirection::HostToController(len),
            class,
            sqe: *sqe,
            target: row
                .map(|row| commands::Target {
                    row,
                    cmd: Box::new(connect),
                })
                .ok_or_else(|| Status::INVALID_OPCODE.into()),
            arrived: None,
        })
    }

    /// Run an admitted Connect with its 1024-byte data (host ID,
    /// controller ID, SUBNQN, HOSTNQN). NVMe Base 2.1, 6.3 "Connect
    /// command and response".
    pub fn connect_admitted(&self, a: Admitted, data: &[u8]) -> ConnectOutcome {
        let connect = a
            .target
            .ok()
            .and_then(|t| t.cmd.downcast::<fabrics::Connect>().ok());
        match connect {
            Some(c) => fabrics::connect(self, &c, &a.sqe, data),
            None => fabrics::refuse(&a.sqe, "not a Connect", Status::INVALID_OPCODE, None),
        }
    }

    /// Connect for callers that hold the data already (no SGL to check):
    /// `sqe` must be a Connect.
    pub fn connect(&self, sqe: &Sqe, data: &[u8]) -> ConnectOutcome {
        match fabrics::Connect::decode_capsule(sqe) {
            Some(c) => fabrics::connect(self, &c, sqe, data),
            None => fabrics::refuse(sqe, "not a Connect", Status::INVALID_OPCODE, None),
        }
    }

    /// The subsystem named `nqn`.
    pub fn subsystem(&self, nqn: &str) -> Option<&Arc<Subsystem>> {
        self.subsystems.iter().find(|s| s.nqn() == nqn)
    }
}

impl Queue {
    fn new(qid: u16, sqsize: u16, ctrl: Arc<Controller>, sq_flow_control: bool) -> Self {
        Queue {
            qid,
            sqsize,
            ctrl,
            disconnected: AtomicBool::new(false),
            sq_flow_control,
        }
    }

    /// Queue identifier (0 = admin).
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// Queue size (0's based SQSIZE from Connect).
    pub fn sqsize(&self) -> u16 {
        self.sqsize
    }

    /// The controller this queue belongs to.
    pub fn controller(&self) -> &Arc<Controller> {
        &self.ctrl
    }

    /// Admission: a command capsule arrived on this queue, before its host
    /// data is gathered; the transport calls this once per capsule. The
    /// answer says what to gather (or how much may go back) and the
    /// command's counter class; [`Queue::run`] takes it back.
    pub fn admit(&self, sqe: &Sqe) -> Admitted {
        Admitted::new(&self.ctrl, self.qid, sqe)
    }

    /// Run one admitted command (admin, I/O, or Fabrics Property Get/Set
    /// / Disconnect). `data_out` is the host-to-controller data, `data_in`
    /// receives controller-to-host data (no more than admission said).
    /// `None` means the completion is deferred (Asynchronous Event
    /// Request); it is completed later through [`Queue::take_deferred`] or
    /// dropped when the queue goes away.
    pub fn run(&self, a: Admitted, data_out: &[u8], data_in: &mut Vec<u8>) -> Option<Completion> {
        let sqe = *a.sqe();
        crate::trace::RECORDER.nvme(self, &sqe, data_out, data_in, |d| {
            self.run_untraced(a, data_out, d)
        })
    }

    /// [`Queue::run`] without the trace hook (what a replay runs).
    pub fn run_untraced(
        &self,
        a: Admitted,
        data_out: &[u8],
        data_in: &mut Vec<u8>,
    ) -> Option<Completion> {
        data_in.clear();
        if a.ends_queue() {
            self.disconnected.store(true, Ordering::Relaxed);
            if self.qid == 0 {
                self.ctrl.kill();
            }
        }
        let transfer = a.direction.bytes();
        let ns = (self.qid != 0)
            .then(|| self.ctrl.namespace(a.sqe.nsid()))
            .flatten();
        let done = timed::run(ns, a.direction, a.arrived, || {
            commands::execute(
                &self.ctrl, self.qid, &a.sqe, a.target, transfer, data_out, data_in,
            )
        });
        if let DataDirection::ControllerToHost(n) = a.direction {
            data_in.truncate(n as usize);
        } else {
            data_in.clear();
        }
        done
    }

    /// [`Queue::admit`] and [`Queue::run`] in one, for callers that hold
    /// the command's data already.
    pub fn execute(&self, sqe: &Sqe, data_out: &[u8], data_in: &mut Vec<u8>) -> Option<Completion> {
        self.run(self.admit(sqe), data_out, data_in)
    }

    /// Whether the host asked for SQ flow control at Connect (CATTR bit
    /// 2 clear, NVMe Base 2.1 Figure 545); always on PCIe.
    pub fn sq_flow_control(&self) -> bool {
        self.sq_flow_control
    }

    /// Completions of deferred commands that became ready, with their CIDs.
    pub fn take_deferred(&self) -> Vec<(u16, Completion)> {
        if self.qid == 0 {
            self.ctrl.take_deferred()
        } else {
            Vec::new()
        }
    }

    /// Whether the host disconnected this queue (Fabrics Disconnect) or the
    /// keep alive timer of its controller expired: the transport should
    /// close the connection.
    pub fn should_close(&self) -> bool {
        self.disconnected.load(Ordering::Relaxed)
            || self.ctrl.is_dead()
            || (self.qid == 0 && self.ctrl.keep_alive_expired())
    }
}

/// Little-endian writers into a zeroed data structure.
pub(crate) fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Copy an ASCII string into a field, padded with spaces (Identify strings,
/// discovery TRADDR/TRSVCID).
pub(crate) fn put_ascii(buf: &mut [u8], at: usize, len: usize, s: &str) {
    let field = &mut buf[at..at + len];
    field.fill(b' ');
    let n = s.len().min(len);
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Copy a string into a field, padded with NULs (NQNs).
pub(crate) fn put_nul(buf: &mut [u8], at: usize, len: usize, s: &str) {
    let field = &mut buf[at..at + len];
    field.fill(0);
    let n = s.len().min(len.saturating_sub(1));
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}
