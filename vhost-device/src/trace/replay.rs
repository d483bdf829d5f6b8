//! Replay: a fresh in-process backend built from a trace's device images
//! and the recorded command line, every command executed again in the
//! recorded order through the SCSI target and the NVMe queues directly (no
//! transport), each result compared with the recorded one.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Arc,
};

use serde_json::Value;

use super::format::{self, Cqe, Data, NvmeRecord, QueueRecord, Record, ScsiRecord};
use crate::{
    config::{Args, Config},
    control::Registry,
    nvme::{
        ConnectOutcome, ControllerOptions, NamespaceSpec, Queue, Sqe, Subsystem, SubsystemConfig,
        Targets,
    },
    scsi::{Request, Target},
    storage::{Device, DeviceConfig},
};

/// Why a replay could not run (a divergence is not an error: see
/// [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error("trace: {0}")]
    Trace(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a replay found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Commands and control actions executed again.
    pub replayed: u64,
    /// Records not replayed (NVMe over PCIe queues), by reason.
    pub skipped: BTreeMap<String, u64>,
    /// How many results differed from the recorded ones.
    pub divergences: u64,
    /// The first divergence, described.
    pub first: Option<String>,
    /// Results other than success, as replayed: description -> count.
    pub errors: BTreeMap<String, u64>,
    /// Per device: name, CRC32C after the replay, size, recorded CRC32C
    /// (if the trace was stopped cleanly).
    pub checksums: Vec<(String, u32, u64, Option<u32>)>,
}

impl Outcome {
    fn diverge(&mut self, what: String) {
        self.divergences += 1;
        if self.first.is_none() {
            self.first = Some(what);
        }
    }

    /// Whether something was replayed, every result matched, and every
    /// device's final checksum was recorded and matched (a trace that
    /// replays nothing, or ends without its final record, proves nothing).
    pub fn clean(&self) -> bool {
        self.replayed > 0
            && self.divergences == 0
            && !self.checksums.is_empty()
            && self
                .checksums
                .iter()
                .all(|(_, crc, _, rec)| *rec == Some(*crc))
    }
}

/// The backend a replay drives.
struct Backend {
    /// Name, device, backing file.
    devices: Vec<(String, Arc<Device>, PathBuf)>,
    scsi: Vec<Target>,
    nvme: Option<Targets>,
    control: Registry,
    /// Recorded queue handle -> replayed queue; recorded (subsystem,
    /// cntlid) -> replayed cntlid.
    queues: HashMap<u32, Queue>,
    cntlids: HashMap<(String, u16), u16>,
    /// ROD tokens (SPC-5 8.3.8.3, 512 bytes, partly random) as recorded
    /// and as the replay's copy manager made them: a later WRITE USING
    /// TOKEN names the recorded one, which the replay must translate.
    tokens: Vec<(Vec<u8>, Vec<u8>)>,
}

/// ROD token length (SPC-5 8.3.8.3).
const ROD_TOKEN: usize = 512;

/// RECEIVE ROD TOKEN INFORMATION (RECEIVE COPY RESULTS, 84h, service
/// action 07h): its parameter data ends with the ROD token.
fn is_rrti(cdb: &[u8]) -> bool {
    cdb.first() == Some(&0x84) && cdb.get(1).map(|b| b & 0x1F) == Some(0x07)
}

/// Replace each recorded token in `data` (the data-out of a third-party
/// copy command, 83h) with the replay's.
fn translate(data: &[u8], tokens: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = data.to_vec();
    for (rec, new) in tokens {
        let mut at = 0;
        while let Some(i) = out[at..]
            .windows(ROD_TOKEN)
            .position(|w| w == rec.as_slice())
        {
            out[at + i..at + i + ROD_TOKEN].copy_from_slice(new);
            at += i + ROD_TOKEN;
        }
    }
    out
}

/// Copy the images into `work` and build the backend from the recorded
/// command line with those images as backing files.
fn build(trace: &Path, meta: &Value, work: &Path) -> Result<Backend, ReplayError> {
    let bad = |what: &str| ReplayError::Trace(what.to_owned());
    let argv: Vec<String> = meta["argv"]
        .as_array()
        .ok_or_else(|| bad("meta without argv"))?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let args = Args::try_parse_grouped_from(&argv)
        .map_err(|e| ReplayError::Trace(format!("recorded command line: {e}")))?;
    let mut config = Config::try_from(args)
        .map_err(|e| ReplayError::Trace(format!("recorded command line: {e}")))?;
    let images = super::image_dir(trace);
    let image = |name: &str, cfg: &mut DeviceConfig| -> Result<bool, ReplayError> {
        let dev = meta["devices"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["name"] == name))
            .ok_or_else(|| ReplayError::Trace(format!("no image of {name}")))?;
        // The image is `<device>.img` in the trace's image folder (as
        // `trace::image_device` names it); anything else in an untrusted
        // trace (an absolute path, `..`) is refused, not followed.
        let file = dev["image"].as_str().ok_or_else(|| bad("image name"))?;
        if file != format!("{name}.img") || Path::new(file).file_name() != Some(file.as_ref()) {
            return Err(ReplayError::Trace(format!(
                "device {name}: image {file:?} is not {name}.img"
            )));
        }
        let to = work.join(file);
        super::snapshot::clone_file(&images.join(file), &to)?;
        let zones = images.join(format!("{file}.zones"));
        if zones.exists() {
            super::snapshot::clone_file(&zones, &work.join(format!("{file}.zones")))?;
        }
        cfg.path = to;
        if let Some(z) = cfg.zoned.as_mut() {
            z.reinit = false;
        }
        Ok(dev["cache"].as_bool().unwrap_or(false))
    };
    let mut devices = Vec::new();
    let mut scsi = Vec::new();
    for (t, target) in config.targets.clone().iter().enumerate() {
        let mut luns = Vec::new();
        for (lun, &i) in target.luns.iter().enumerate() {
            let name = match t {
                0 => format!("lun{lun}"),
                _ => format!("t{t}.lun{lun}"),
            };
            let cache = image(&name, &mut config.luns[i])?;
            let dev = open(&name, &config.luns[i], cache)?;
            devices.push((name, Arc::clone(&dev), config.luns[i].path.clone()));
            luns.push(dev);
        }
        scsi.push(Target::with_target_id(u32::try_from(t).unwrap_or(0), luns));
    }
    let nvme = match config.nvme_tcp.as_mut() {
        None => None,
        Some(n) => {
            let mut specs = Vec::new();
            for (i, ns) in n.namespaces.iter_mut().enumerate() {
                let name = format!("ns{}", i + 1);
                let cache = image(&name, &mut ns.device)?;
                let dev = open(&name, &ns.device, cache)?;
                devices.push((name, Arc::clone(&dev), ns.device.path.clone()));
                specs.push(NamespaceSpec {
                    device: dev,
                    copy_limits: ns.copy_limits,
                    // A replay checks answers, not modeled time.
                    timing: None,
                });
            }
            let opts = ControllerOptions {
                personality: n.personality,
                ..ControllerOptions::default()
            };
            let sub = Subsystem::with_options(
                SubsystemConfig {
                    nqn: n.nqn.clone(),
                    traddr: n.advertise_addr.to_string(),
                    trsvcid: n.listen.port().to_string(),
                    allowed_hosts: n.allowed_hosts.clone(),
                },
                opts,
                specs,
            );
            Some(Targets {
                subsystems: vec![Arc::new(sub)],
            })
        }
    };
    let mut control = Registry::default();
    for (name, dev, _) in &devices {
        control.add_device(name.clone(), Arc::clone(dev));
    }
    Ok(Backend {
        devices,
        scsi,
        nvme,
        control,
        queues: HashMap::new(),
        cntlids: HashMap::new(),
        tokens: Vec::new(),
    })
}

fn open(name: &str, cfg: &DeviceConfig, cache: bool) -> Result<Arc<Device>, ReplayError> {
    let dev = Device::open(cfg).map_err(|e| ReplayError::Trace(format!("{name}: {e}")))?;
    if cache {
        dev.set_volatile_cache(true)
            .map_err(|e| ReplayError::Trace(format!("{name}: cache: {e}")))?;
    }
    Ok(Arc::new(dev))
}

/// Data-out as recorded; `None` if the trace kept only its digest.
fn bytes_of(d: &Data) -> Option<&[u8]> {
    match (&d.bytes, d.len) {
        (Some(b), _) => Some(b),
        (None, 0) => Some(&[]),
        (None, _) => None,
    }
}

fn same(d: &Data, got: &[u8]) -> bool {
    d.len as usize == got.len() && d.crc == crc32c::crc32c(got)
}

impl Backend {
    fn scsi(&mut self, r: &ScsiRecord, out: &mut Outcome) -> Result<(), ReplayError> {
        let Some(target) = self.scsi.get(usize::from(r.target)) else {
            return Err(ReplayError::Trace(format!(
                "#{}: no SCSI target {}",
                r.seq, r.target
            )));
        };
        let data_out = bytes_of(&r.data_out).ok_or_else(|| {
            ReplayError::Trace(format!("#{}: data-out kept as a digest only", r.seq))
        })?;
        let translated;
        let mut reader = match r.cdb.first() {
            Some(0x83) if !self.tokens.is_empty() => {
                translated = translate(data_out, &self.tokens);
                translated.as_slice()
            }
            _ => data_out,
        };
        let mut data_in = Vec::new();
        let resp = target.execute_untraced(Request {
            lun: r.lun,
            cdb: &r.cdb,
            data_out: &mut reader,
            data_in: &mut data_in,
            data_in_len: r.data_in_room,
            direct: None,
        });
        out.replayed += 1;
        let status = resp.status as u8;
        if status != 0 {
            let key = match resp.sense.as_slice() {
                [_, _, key, .., _] if resp.sense.len() >= 14 => format!(
                    "SCSI status {status:#04x} sense {:x}/{:02x}/{:02x}",
                    key & 0xF,
                    resp.sense[12],
                    resp.sense[13]
                ),
                _ => format!("SCSI status {status:#04x}"),
            };
            *out.errors.entry(key).or_default() += 1;
        }
        let data_same = match (&r.data_in.bytes, is_rrti(&r.cdb)) {
            (Some(rec), true) if rec.len() == data_in.len() && rec.len() >= ROD_TOKEN => {
                let cut = rec.len() - ROD_TOKEN;
                if rec[cut..] != data_in[cut..] {
                    self.tokens
                        .push((rec[cut..].to_vec(), data_in[cut..].to_vec()));
                }
                rec[..cut] == data_in[..cut]
            }
            _ => same(&r.data_in, &data_in),
        };
        if status != r.status || resp.sense != r.sense || !data_same {
            out.diverge(format!(
                "#{} LUN {} CDB {}: recorded status {:#04x} sense {} data-in {} bytes crc {:08x}, \
                 replayed status {status:#04x} sense {} data-in {} bytes crc {:08x}",
                r.seq,
                r.lun,
                hex(&r.cdb),
                r.status,
                hex(&r.sense),
                r.data_in.len,
                r.data_in.crc,
                hex(&resp.sense),
                data_in.len(),
                crc32c::crc32c(&data_in)
            ));
        }
        Ok(())
    }

    fn connect(&mut self, q: &QueueRecord, out: &mut Outcome) -> Result<(), ReplayError> {
        if q.transport != 0 {
            *out.skipped
                .entry("NVMe over PCIe queue".into())
                .or_default() += 1;
            return Ok(());
        }
        let targets = self
            .nvme
            .as_ref()
            .ok_or_else(|| ReplayError::Trace("NVMe queue but no --ns".into()))?;
        let mut sqe = [0u8; 64];
        sqe[0] = crate::nvme::fabrics::OPCODE;
        sqe[4] = crate::nvme::fabrics::FCTYPE_CONNECT;
        sqe[42..44].copy_from_slice(&q.qid.to_le_bytes());
        sqe[44..46].copy_from_slice(&q.sqsize.to_le_bytes());
        let mut data = vec![0u8; 1024];
        data[..16].copy_from_slice(&q.hostid);
        let cntlid = match q.qid {
            0 => 0xFFFF,
            _ => self
                .cntlids
                .get(&(q.subnqn.clone(), q.cntlid))
                .copied()
                .unwrap_or(q.cntlid),
        };
        data[16..18].copy_from_slice(&cntlid.to_le_bytes());
        let put = |data: &mut [u8], at: usize, s: &str| {
            let n = s.len().min(255);
            data[at..at + n].copy_from_slice(&s.as_bytes()[..n]);
        };
        put(&mut data, 256, &q.subnqn);
        put(&mut data, 512, &q.hostnqn);
        match targets.connect(&Sqe(sqe), &data) {
            ConnectOutcome::Connected(queue, c) => {
                if q.qid == 0 {
                    self.cntlids
                        .insert((q.subnqn.clone(), q.cntlid), (c.dw0 & 0xFFFF) as u16);
                }
                self.queues.insert(q.handle, queue);
            }
            ConnectOutcome::Refused(c) => out.diverge(format!(
                "Connect of queue {} of controller {} refused (status {:#x})",
                q.qid, q.cntlid, c.status
            )),
        }
        Ok(())
    }

    fn nvme(&mut self, r: &NvmeRecord, out: &mut Outcome) -> Result<(), ReplayError> {
        let Some(queue) = self.queues.get(&r.handle) else {
            *out.skipped
                .entry("command on a queue not replayed".into())
                .or_default() += 1;
            return Ok(());
        };
        let data_out = bytes_of(&r.data_out).ok_or_else(|| {
            ReplayError::Trace(format!("#{}: data-out kept as a digest only", r.seq))
        })?;
        let sqe = Sqe(r.sqe);
        let mut data_in = Vec::new();
        let done = queue.run_untraced(queue.admit(&sqe), data_out, &mut data_in);
        out.replayed += 1;
        let got = done.map(|c| Cqe {
            dw0: c.dw0,
            dw1: c.dw1,
            status: c.status,
        });
        if let Some(c) = got.filter(|c| c.status & 0x7FF != 0) {
            let key = format!(
                "NVMe status SCT {:x}h SC {:02x}h",
                (c.status >> 8) & 7,
                c.status & 0xFF
            );
            *out.errors.entry(key).or_default() += 1;
        }
        if got != r.cqe || !same(&r.data_in, &data_in) {
            out.diverge(format!(
                "#{} controller {} queue {} SQE {}: recorded {:?} data-in {} bytes crc {:08x}, \
                 replayed {got:?} data-in {} bytes crc {:08x}",
                r.seq,
                r.cntlid,
                r.qid,
                hex(&r.sqe),
                r.cqe,
                r.data_in.len,
                r.data_in.crc,
                data_in.len(),
                crc32c::crc32c(&data_in)
            ));
        }
        Ok(())
    }

    fn control(&self, seq: u64, request: &str, response: &str, out: &mut Outcome) {
        let got = self.control.handle_untraced(request);
        out.replayed += 1;
        let recorded: Value = serde_json::from_str(response).unwrap_or(Value::Null);
        if got != recorded {
            out.diverge(format!(
                "#{seq} control {request}: recorded {recorded}, replayed {got}"
            ));
        }
    }
}

/// Replay `trace` (with its rotated parts), working on copies of its
/// images in `work` (which must exist; left as the replay ends).
pub fn replay(trace: &Path, work: &Path) -> Result<Outcome, ReplayError> {
    let records = format::read_all(trace)?;
    let meta = match records.first() {
        Some(Record::Meta(json)) => serde_json::from_str::<Value>(json)
            .map_err(|e| ReplayError::Trace(format!("meta: {e}")))?,
        _ => return Err(ReplayError::Trace("no meta record first".into())),
    };
    if meta["part"].as_u64() != Some(0) {
        return Err(ReplayError::Trace(format!(
            "the oldest part kept is part {} (rotation dropped the start): cannot replay",
            meta["part"]
        )));
    }
    let mut backend = build(trace, &meta, work)?;
    let mut out = Outcome::default();
    let mut recorded_final = None;
    for rec in &records {
        match rec {
            Record::Meta(_) | Record::Pdu(_) => {}
            Record::Scsi(r) => backend.scsi(r, &mut out)?,
            Record::Queue(q) => backend.connect(q, &mut out)?,
            Record::Nvme(r) => backend.nvme(r, &mut out)?,
            Record::Control(c) => backend.control(c.seq, &c.request, &c.response, &mut out),
            Record::Final(f) => recorded_final = Some(f.clone()),
        }
    }
    for (name, dev, path) in &backend.devices {
        let (crc, len) = super::device_checksum(dev, path);
        let rec = recorded_final
            .as_ref()
            .and_then(|f| f.devices.iter().find(|d| &d.0 == name).map(|d| d.1));
        out.checksums.push((name.clone(), crc, len, rec));
    }
    Ok(out)
}

/// A scratch folder removed when dropped.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn new() -> std::io::Result<Self> {
        let p = std::env::temp_dir().join(format!(
            "zonecopy-replay-{}-{}",
            std::process::id(),
            super::now_ns()
        ));
        // create_dir, not create_dir_all: a folder (or link) someone
        // planted under the name is an error, not a place to write.
        std::fs::create_dir(&p)?;
        Ok(WorkDir(p))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}
