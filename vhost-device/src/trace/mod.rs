//! Recording and replay: every command the backend executes, with its
//! device, transport, queue, times, CDB or SQE, status, sense or CQE and
//! data (whole or a CRC32C digest), the NVMe/TCP PDUs and the control
//! socket actions, in one file; a device image at trace start; and the
//! tool (`zonecopy-vhost trace print|stats|replay|pcap`) that reads it.
//!
//! Recording is off unless `--trace FILE` or the control command
//! `{"cmd":"trace","op":"start","file":PATH}` turns it on. Off, a hook
//! costs two atomic operations (the in-flight count that lets a trace
//! start between commands) and one flag load.
//!
//! # FORMAT (version 1)
//!
//! All integers little-endian. A file is a 12-byte header, then records:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..8 | magic `ZCTRACE\0` |
//! | 8..10 | format version (1) |
//! | 10..12 | reserved, 0 |
//!
//! A record is `len: u32` (bytes after this field), `kind: u8`, then the
//! body (`len - 1` bytes). Variable fields are `len: u32` + bytes
//! ("bytes"); a data field ("data") is `whole: u8` (0 or 1), `len: u32`,
//! `crc32c: u32`, then `len` bytes when whole.
//!
//! | kind | record | body |
//! | --- | --- | --- |
//! | 1 | meta | bytes: JSON `{"format":1,"part":N,"argv":[..],"data":"whole"\|"digest","start_unix_ns":T,"devices":[{"name","image","cache"}]}`, first in every file |
//! | 2 | SCSI command | seq u64, target u16, lun u16, queue u16, tag u64, arrive_ns u64, done_ns u64, cdb bytes, status u8, sense bytes, data_in_room u32 (the initiator's buffer), data-out data, data-in data |
//! | 3 | NVMe command | seq u64, queue handle u32, cntlid u16, qid u16, arrive_ns u64, done_ns u64, SQE 64 bytes, has_cqe u8 (then dw0 u32, dw1 u32, status u16), data-out data, data-in data |
//! | 4 | NVMe queue | handle u32 (numbers the queues of this trace), cntlid u16, qid u16, sqsize u16, transport u8 (0 TCP, 1 PCIe), hostid 16 bytes, subnqn bytes, hostnqn bytes: before a queue's first command |
//! | 5 | NVMe/TCP PDUs | conn u64 (peer port), dir u8 (0 host to controller, 1 back), t_ns u64, bytes: whole PDUs as they crossed the socket |
//! | 6 | control action | seq u64, t_ns u64, request bytes, response bytes (JSON lines) |
//! | 7 | final | t_ns u64, count u32, then per device: name bytes, crc32c u32, size u64 |
//!
//! Times are nanoseconds since the backend process started. Commands are
//! written when they complete, in completion order (the order a replay
//! follows); `seq` numbers them in that order. Unknown kinds are errors:
//! a new kind bumps the version.
//!
//! Rotation: with a size limit, FILE moves to FILE.1 (FILE.1 to FILE.2,
//! ...) when the next record would cross it; each part starts with the
//! header and the meta record (`part` counts up). A replay needs part 0.
//!
//! Images: at start the traced devices are flushed (so the zone metadata
//! file matches the zone state) and copied to `FILE.img/NAME.img` (plus
//! `NAME.img.zones`), by reflink where the file system can and a sparse
//! copy otherwise, while no command executes.

pub mod format;
// The pcapng writer: a stub here, its own branch (issue 16, pcap) at merge.
pub mod pcap;
pub mod replay;
pub mod snapshot;
mod to_pcap;
pub mod tool;

use std::{
    cell::Cell,
    collections::HashMap,
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, OnceLock, Weak,
    },
    time::{Duration, Instant},
};
use zonecopy_contract::control::{TraceData, TraceRequest};

use serde_json::{json, Value};

use self::format::{
    ControlRecord, Cqe, Data, FinalRecord, NvmeRecord, PduRecord, QueueRecord, Record, ScsiRecord,
    Writer,
};
use crate::{
    nvme::{Completion, Controller, Queue, Sqe, Transport},
    scsi::{Request, Response, Target},
    storage::{Device, Lba},
};

/// Whether a trace keeps the data or only its digest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DataMode {
    /// Every byte moved (needed to replay writes).
    #[default]
    Whole,
    /// Length and CRC32C only.
    Digest,
}

/// Command-line options of recording.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TraceArgs {
    /// Record every command, NVMe/TCP PDU and control action to FILE from
    /// start-up (format: src/trace/mod.rs); device images go to FILE.img/.
    /// `zonecopy-vhost trace --help` reads it.
    #[arg(long = "trace", value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// What a trace keeps of the data moved: whole or digest (length and
    /// CRC32C; such a trace cannot replay writes).
    #[arg(long, value_enum, value_name = "MODE", default_value = "whole")]
    pub trace_data: DataMode,
    /// Largest size of one trace file, in bytes; past it FILE moves to
    /// FILE.1 (and FILE.1 to FILE.2, ...). Default: no limit.
    #[arg(long, value_name = "BYTES")]
    pub trace_max_bytes: Option<u64>,
    /// How many rotated files (FILE.1 ... FILE.N) are kept.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub trace_keep: u32,
    /// The only folder a trace started through the control socket
    /// (`{"cmd":"trace","op":"start","file":NAME}`) may write to: NAME is a
    /// plain file name inside it. Without it such requests are refused (the
    /// guest holds a control token, so a path of its choosing would let it
    /// truncate host files).
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
}

/// Smallest `max_bytes` a trace accepts: below it every record would
/// rotate the files.
pub const MIN_MAX_BYTES: u64 = 1 << 20;

/// Most rotated parts a trace keeps.
pub const MAX_KEEP: u32 = 64;

/// Why a trace could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("a trace is already running to {0:?}")]
    Running(PathBuf),
    #[error("no trace is running")]
    NotRunning,
    #[error("max_bytes below {MIN_MAX_BYTES} or keep above {MAX_KEEP}")]
    Limits,
    #[error("commands did not quiesce within {0:?}")]
    Busy(Duration),
    #[error("device {name}: {what}")]
    Device { name: String, what: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One device a trace images and checksums.
#[derive(Clone)]
pub struct TracedDevice {
    /// The control socket name (`lun0`, `t1.lun0`, `ns1`).
    pub name: String,
    pub device: Arc<Device>,
    pub path: PathBuf,
}

struct Session {
    path: PathBuf,
    writer: Writer,
    whole: bool,
    seq: u64,
    /// Queues already described by a queue record: (controller address,
    /// qid) to the controller and the queue's handle.
    queues: HashMap<(usize, u16), (Weak<Controller>, u32)>,
}

/// The process's recorder: devices to image, the running session.
pub struct Recorder {
    on: AtomicBool,
    pausing: AtomicBool,
    inflight: AtomicUsize,
    setup: Mutex<(Vec<String>, Vec<TracedDevice>)>,
    session: Mutex<Option<Session>>,
    /// `--trace-dir`: where control-started traces go (none: refused).
    control_dir: Mutex<Option<PathBuf>>,
}

/// The recorder the hooks use.
pub static RECORDER: Recorder = Recorder::new();

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's first trace timestamp.
pub fn now_ns() -> u64 {
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command between [`Recorder::enter`] and its end.
struct InFlight<'r>(&'r Recorder);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

const QUIESCE_TIMEOUT: Duration = Duration::from_secs(30);

impl Recorder {
    pub const fn new() -> Self {
        Recorder {
            on: AtomicBool::new(false),
            pausing: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            setup: Mutex::new((Vec::new(), Vec::new())),
            session: Mutex::new(None),
            control_dir: Mutex::new(None),
        }
    }

    /// `--trace-dir`: the folder control-started traces are confined to.
    pub fn set_control_dir(&self, dir: Option<PathBuf>) {
        *lock(&self.control_dir) = dir;
    }

    /// The file a control request may trace to: `name` as a plain file
    /// name (no folder, no `..`, not hidden) inside `--trace-dir`.
    fn control_path(&self, name: &str) -> Result<PathBuf, String> {
        let dir = lock(&self.control_dir)
            .clone()
            .ok_or("tracing from the control socket needs the backend's --trace-dir")?;
        let plain = Path::new(name).file_name() == Some(std::ffi::OsStr::new(name));
        if !plain || name.starts_with('.') {
            return Err(format!(
                "\"file\" {name:?}: a plain file name inside --trace-dir"
            ));
        }
        Ok(dir.join(name))
    }

    /// What the backend runs with: its command line (a replay rebuilds
    /// the devices from it) and its devices by name.
    pub fn set_up(&self, argv: Vec<String>, devices: Vec<TracedDevice>) {
        *lock(&self.setup) = (argv, devices);
    }

    /// Whether a trace is running.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// A command starts: wait while a trace starts or stops.
    fn enter(&self) -> (InFlight<'_>, bool) {
        loop {
            self.inflight.fetch_add(1, Ordering::SeqCst);
            if !self.pausing.load(Ordering::SeqCst) {
                return (InFlight(self), self.on.load(Ordering::Relaxed));
            }
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            while self.pausing.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Run `f` with no command executing (new ones wait).
    fn quiesced<T>(&self, f: impl FnOnce() -> T) -> Result<T, TraceError> {
        let _one = lock(&self.setup);
        self.pausing.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + QUIESCE_TIMEOUT;
        while self.inflight.load(Ordering::SeqCst) != 0 {
            if Instant::now() > deadline {
                self.pausing.store(false, Ordering::SeqCst);
                return Err(TraceError::Busy(QUIESCE_TIMEOUT));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let out = f();
        self.pausing.store(false, Ordering::SeqCst);
        Ok(out)
    }

    /// Start a trace to `path`: image the devices between two commands,
    /// write the meta record, turn recording on.
    pub fn start(
        &self,
        path: &Path,
        data: DataMode,
        max_bytes: Option<u64>,
        keep: u32,
    ) -> Result<Value, TraceError> {
        if let Some(s) = lock(&self.session).as_ref() {
            return Err(TraceError::Running(s.path.clone()));
        }
        if max_bytes.is_some_and(|m| m < MIN_MAX_BYTES) || keep > MAX_KEEP {
            return Err(TraceError::Limits);
        }
        let (argv, devices) = lock(&self.setup).clone();
        self.quiesced(|| -> Result<Value, TraceError> {
            // Again, now that starts are serialised (the check above
            // answers early; two requests may both have passed it).
            if let Some(s) = lock(&self.session).as_ref() {
                return Err(TraceError::Running(s.path.clone()));
            }
            let images = image_dir(path);
            let _ = std::fs::remove_dir_all(&images);
            std::fs::create_dir_all(&images)?;
            let mut devs = Vec::new();
            let mut method = "reflink";
            for d in &devices {
                let (image, m) = image_device(d, &images)?;
                if m == snapshot::Method::SparseCopy {
                    method = "sparse-copy";
                }
                devs.push(json!({
                    "name": d.name,
                    "image": image,
                    "cache": d.device.volatile_cache(),
                }));
            }
            let meta = json!({
                "format": format::VERSION,
                "part": 0,
                "argv": argv,
                "data": match data { DataMode::Whole => "whole", DataMode::Digest => "digest" },
                "start_unix_ns": std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
                "start_ns": now_ns(),
                "devices": devs,
                "images": method,
            });
            let writer = Writer::create(path, Record::Meta(meta.to_string()), max_bytes, keep)?;
            *lock(&self.session) = Some(Session {
                path: path.to_path_buf(),
                writer,
                whole: data == DataMode::Whole,
                seq: 0,
                queues: HashMap::new(),
            });
            self.on.store(true, Ordering::SeqCst);
            log::info!("trace to {path:?} started ({method} images)");
            Ok(json!({"file": path, "images": images, "method": method}))
        })?
    }

    /// Stop the trace: the devices' checksums as a final record, then
    /// close the file.
    pub fn stop(&self) -> Result<Value, TraceError> {
        let (_, devices) = lock(&self.setup).clone();
        self.quiesced(|| -> Result<Value, TraceError> {
            let mut session = lock(&self.session).take().ok_or(TraceError::NotRunning)?;
            self.on.store(false, Ordering::SeqCst);
            let fin = FinalRecord {
                t_ns: now_ns(),
                devices: devices
                    .iter()
                    .map(|d| {
                        let (crc, len) = device_checksum(&d.device, &d.path);
                        (d.name.clone(), crc, len)
                    })
                    .collect(),
            };
            session.writer.write(&Record::Final(fin.clone()).encode())?;
            session.writer.flush()?;
            log::info!(
                "trace to {:?} stopped after {} records",
                session.path,
                session.seq
            );
            Ok(json!({"file": session.path, "records": session.seq}))
        })?
    }

    /// Append a record built from the session's next sequence number.
    fn write(&self, build: impl FnOnce(u64, bool) -> Vec<Record>) {
        let mut guard = lock(&self.session);
        let Some(s) = guard.as_mut() else { return };
        let seq = s.seq;
        for rec in build(seq, s.whole) {
            if let Err(e) = s.writer.write(&rec.encode()) {
                log::error!("trace {:?}: {e}; recording stops", s.path);
                self.on.store(false, Ordering::SeqCst);
                *guard = None;
                return;
            }
        }
        s.seq += 1;
    }

    /// The SCSI hook: run `f` (the target's execute path), recording the
    /// command when a trace runs.
    pub fn scsi(
        &self,
        target: &Target,
        req: Request<'_>,
        f: impl FnOnce(Request<'_>) -> Response,
    ) -> Response {
        let (_in_flight, on) = self.enter();
        if !on {
            return f(req);
        }
        let arrive_ns = now_ns();
        let (queue, tag) = SCSI_CONTEXT.with(Cell::get);
        let target_id = target
            .unit(0)
            .map_or(0, |u| ((u.identity.naa >> 16) & 0xFFFF) as u16);
        let (lun, cdb, room) = (req.lun, req.cdb, req.data_in_len);
        let mut tee_out = TeeRead {
            inner: req.data_out,
            seen: Vec::new(),
        };
        let mut tee_in = TeeWrite {
            inner: req.data_in,
            seen: Vec::with_capacity(room.min(1 << 20) as usize),
        };
        let resp = f(Request {
            lun,
            cdb,
            data_out: &mut tee_out,
            data_in: &mut tee_in,
            data_in_len: req.data_in_len,
            // Recorded data must pass the tees: no straight path.
            direct: None,
        });
        self.write(|seq, whole| {
            vec![Record::Scsi(ScsiRecord {
                seq,
                target: target_id,
                lun,
                queue,
                tag,
                arrive_ns,
                done_ns: now_ns(),
                cdb: cdb.to_vec(),
                status: resp.status as u8,
                sense: resp.sense.clone(),
                data_in_room: room,
                data_out: Data::of(&tee_out.seen, whole),
                data_in: Data::of(&tee_in.seen, whole),
            })]
        });
        resp
    }

    /// The NVMe hook: run `f` (the queue's execute path), recording the
    /// command (and, first time, its queue) when a trace runs.
    pub fn nvme(
        &self,
        queue: &Queue,
        sqe: &Sqe,
        data_out: &[u8],
        data_in: &mut Vec<u8>,
        f: impl FnOnce(&mut Vec<u8>) -> Option<Completion>,
    ) -> Option<Completion> {
        let (_in_flight, on) = self.enter();
        if !on {
            return f(data_in);
        }
        let arrive_ns = now_ns();
        let done = f(data_in);
        let ctrl = queue.controller();
        let key = (Arc::as_ptr(ctrl) as usize, queue.qid());
        let mut guard = lock(&self.session);
        let Some(s) = guard.as_mut() else { return done };
        // A live controller at that address is the same one.
        let known = s
            .queues
            .get(&key)
            .filter(|(w, _)| w.upgrade().is_some_and(|c| Arc::ptr_eq(&c, ctrl)))
            .map(|(_, h)| *h);
        let handle = known.unwrap_or(u32::try_from(s.queues.len()).unwrap_or(u32::MAX));
        if known.is_none() {
            s.queues.insert(key, (Arc::downgrade(ctrl), handle));
        }
        let known = known.is_some();
        drop(guard);
        self.write(|seq, whole| {
            let mut recs = Vec::with_capacity(2);
            if !known {
                recs.push(Record::Queue(QueueRecord {
                    handle,
                    cntlid: ctrl.cntlid,
                    qid: queue.qid(),
                    sqsize: queue.sqsize(),
                    transport: u8::from(ctrl.opts.transport == Transport::Pcie),
                    hostid: ctrl.hostid,
                    subnqn: ctrl
                        .subsystem
                        .as_ref()
                        .map_or(crate::nvme::DISCOVERY_NQN.to_owned(), |s| {
                            s.nqn().to_owned()
                        }),
                    hostnqn: ctrl.hostnqn.clone(),
                }));
            }
            recs.push(Record::Nvme(NvmeRecord {
                seq,
                handle,
                cntlid: ctrl.cntlid,
                qid: queue.qid(),
                arrive_ns,
                done_ns: now_ns(),
                sqe: sqe.0,
                cqe: done.map(|c| Cqe {
                    dw0: c.dw0,
                    dw1: c.dw1,
                    status: c.status,
                }),
                data_out: Data::of(data_out, whole),
                data_in: Data::of(data_in, whole),
            }));
            recs
        });
        done
    }

    /// The NVMe/TCP hook: whole PDUs that crossed connection `conn`
    /// (`dir` 0: from the host, 1: to it).
    pub fn pdu(&self, conn: u64, dir: u8, bytes: &[u8]) {
        if !self.is_on() || bytes.is_empty() {
            return;
        }
        let mut guard = lock(&self.session);
        let Some(s) = guard.as_mut() else { return };
        let rec = Record::Pdu(PduRecord {
            conn,
            dir,
            t_ns: now_ns(),
            bytes: bytes.to_vec(),
        });
        if let Err(e) = s.writer.write(&rec.encode()) {
            log::error!("trace {:?}: {e}", s.path);
        }
    }

    /// The control hook: run `f` (the dispatcher) and record actions that
    /// change something or report faults (not reads of data or stats).
    pub fn control(&self, line: &str, f: impl FnOnce() -> Value) -> Value {
        if !self.is_on() {
            return f();
        }
        let t_ns = now_ns();
        let resp = f();
        let cmd = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v["cmd"].as_str().map(str::to_owned));
        if matches!(
            cmd.as_deref(),
            Some("fault" | "power_cut" | "cache" | "zone_condition")
        ) {
            self.write(|seq, _| {
                vec![Record::Control(ControlRecord {
                    seq,
                    t_ns,
                    request: line.to_owned(),
                    response: resp.to_string(),
                })]
            });
        }
        resp
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

thread_local! {
    static SCSI_CONTEXT: Cell<(u16, u64)> = const { Cell::new((u16::MAX, 0)) };
}

/// The transport names the queue and task tag of the SCSI command it is
/// about to execute on this thread.
pub fn scsi_context(queue: u16, tag: u64) {
    SCSI_CONTEXT.with(|c| c.set((queue, tag)));
}

struct TeeRead<'a> {
    inner: &'a mut dyn Read,
    seen: Vec<u8>,
}

impl Read for TeeRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

struct TeeWrite<'a> {
    inner: &'a mut dyn Write,
    seen: Vec<u8>,
}

impl Write for TeeWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `FILE.img`, where a trace's device images go.
pub fn image_dir(trace: &Path) -> PathBuf {
    let mut s = trace.as_os_str().to_owned();
    s.push(".img");
    PathBuf::from(s)
}

fn image_device(d: &TracedDevice, dir: &Path) -> Result<(String, snapshot::Method), TraceError> {
    let err = |what: String| TraceError::Device {
        name: d.name.clone(),
        what,
    };
    d.device.flush().map_err(|e| err(format!("flush: {e}")))?;
    let image = format!("{}.img", d.name);
    let method = snapshot::clone_file(&d.path, &dir.join(&image))
        .map_err(|e| err(format!("image of {:?}: {e}", d.path)))?;
    let mut zones = d.path.as_os_str().to_owned();
    zones.push(".zones");
    let zones = PathBuf::from(zones);
    if zones.exists() {
        snapshot::clone_file(&zones, &dir.join(format!("{image}.zones")))
            .map_err(|e| err(format!("zone metadata {zones:?}: {e}")))?;
    }
    Ok((image, method))
}

/// CRC32C of a device's whole data as a reader sees it (the write cache
/// included), and its size in bytes. Chunks where the backing file `path`
/// has a hole (and the cache holds nothing) are zeros without a read, so
/// a large, mostly empty device checksums in milliseconds.
pub fn device_checksum(dev: &Device, path: &Path) -> (u32, u64) {
    let g = dev.geometry();
    let bs = u64::from(g.block_size);
    let chunk_blocks = (1u64 << 20) / bs;
    let extents = match dev.cached_blocks() {
        0 => snapshot::data_extents(path).ok(),
        _ => None,
    };
    let has_data = |from: u64, to: u64| {
        extents
            .as_ref()
            .is_none_or(|e| e.iter().any(|&(a, b)| a < to && b > from))
    };
    let mut buf = vec![0u8; 1 << 20];
    let zeros = vec![0u8; 1 << 20];
    let mut crc = 0u32;
    let mut lba = 0u64;
    while lba < g.capacity.get() {
        let n = chunk_blocks.min(g.capacity.get() - lba);
        let len = (n * bs) as usize;
        if has_data(lba * bs, (lba + n) * bs) {
            let part = &mut buf[..len];
            if dev.read_uncounted(Lba::new(lba), part).is_err() {
                part.fill(0);
            }
            crc = crc32c::crc32c_append(crc, part);
        } else {
            crc = crc32c::crc32c_append(crc, &zeros[..len]);
        }
        lba += n;
    }
    (crc, g.capacity.get() * bs)
}

/// The control command `{"cmd":"trace","op":"start"|"stop"|"status",...}`:
/// `start` takes `"file"`, optional `"data"` (`"whole"`, `"digest"`),
/// `"max_bytes"`, `"keep"`.
pub fn control_command(req: TraceRequest) -> Result<Value, String> {
    match req {
        TraceRequest::Start {
            file,
            data,
            max_bytes,
            keep,
        } => {
            let data = match data {
                TraceData::Whole => DataMode::Whole,
                TraceData::Digest => DataMode::Digest,
            };
            let path = RECORDER.control_path(&file)?;
            RECORDER
                .start(&path, data, max_bytes, keep.unwrap_or(8))
                .map_err(|e| e.to_string())
        }
        TraceRequest::Stop => RECORDER.stop().map_err(|e| e.to_string()),
        TraceRequest::Status => Ok(json!({"tracing": RECORDER.is_on()})),
    }
}

#[cfg(test)]
mod tests;
