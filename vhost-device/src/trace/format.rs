//! The trace file format: records, their encoding and decoding, the
//! rotating writer and the reader. See the FORMAT section of
//! [`crate::trace`].

use std::{
    fs::File,
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

/// First 8 bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"ZCTRACE\0";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// File header length: magic, version, reserved.
pub const HEADER_LEN: usize = 12;
/// Largest record body accepted on read (a command's whole data plus its
/// fixed fields stays far below).
pub const MAX_RECORD: u32 = 64 << 20;

/// Record kinds (the byte after the length).
pub mod kind {
    pub const META: u8 = 1;
    pub const SCSI: u8 = 2;
    pub const NVME: u8 = 3;
    pub const NVME_QUEUE: u8 = 4;
    pub const PDU: u8 = 5;
    pub const CONTROL: u8 = 6;
    pub const FINAL: u8 = 7;
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a zonecopy trace (bad magic)")]
    Magic,
    #[error("trace format version {0}, this tool reads {VERSION}")]
    Version(u16),
    #[error("record at byte {at}: {what}")]
    Record { at: u64, what: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Data moved by one command: its length and CRC32C always, the bytes
/// themselves when the trace keeps whole data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Data {
    pub len: u32,
    pub crc: u32,
    pub bytes: Option<Vec<u8>>,
}

impl Data {
    /// `bytes` as recorded: whole (`keep`) or digest only.
    pub fn of(bytes: &[u8], keep: bool) -> Self {
        Data {
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            crc: crc32c::crc32c(bytes),
            bytes: keep.then(|| bytes.to_vec()),
        }
    }
}

/// One SCSI command (kind 2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScsiRecord {
    pub seq: u64,
    pub target: u16,
    pub lun: u16,
    /// Request virtqueue (u16::MAX: not known).
    pub queue: u16,
    /// The transport's task tag (virtio-scsi `id`).
    pub tag: u64,
    pub arrive_ns: u64,
    pub done_ns: u64,
    pub cdb: Vec<u8>,
    pub status: u8,
    pub sense: Vec<u8>,
    /// How many data-in bytes the initiator's buffer could take.
    pub data_in_room: u32,
    pub data_out: Data,
    pub data_in: Data,
}

/// The completion fields a command returned (NVMe Base 2.1, 4.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cqe {
    pub dw0: u32,
    pub dw1: u32,
    pub status: u16,
}

/// One NVMe command (kind 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvmeRecord {
    pub seq: u64,
    /// The queue's number in this trace (its queue record's `handle`):
    /// controller IDs repeat across subsystems (discovery, I/O) and time.
    pub handle: u32,
    pub cntlid: u16,
    pub qid: u16,
    pub arrive_ns: u64,
    pub done_ns: u64,
    pub sqe: [u8; 64],
    /// `None`: deferred (Asynchronous Event Request).
    pub cqe: Option<Cqe>,
    pub data_out: Data,
    pub data_in: Data,
}

/// A queue seen for the first time in this trace (kind 4): what a replay
/// needs to connect it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueRecord {
    pub handle: u32,
    pub cntlid: u16,
    pub qid: u16,
    pub sqsize: u16,
    /// 0 Fabrics, 1 PCIe.
    pub transport: u8,
    pub hostid: [u8; 16],
    pub subnqn: String,
    pub hostnqn: String,
}

/// Bytes that crossed an NVMe/TCP connection (kind 5): whole PDUs, one
/// or more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PduRecord {
    pub conn: u64,
    /// 0 host to controller, 1 controller to host.
    pub dir: u8,
    pub t_ns: u64,
    pub bytes: Vec<u8>,
}

/// One control socket action (kind 6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlRecord {
    pub seq: u64,
    pub t_ns: u64,
    pub request: String,
    pub response: String,
}

/// The devices' data checksums when the trace stopped (kind 7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FinalRecord {
    pub t_ns: u64,
    /// Device name, CRC32C of its whole data, bytes.
    pub devices: Vec<(String, u32, u64)>,
}

/// One record of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// JSON text (kind 1): see `trace::Meta`.
    Meta(String),
    Scsi(ScsiRecord),
    Nvme(NvmeRecord),
    Queue(QueueRecord),
    Pdu(PduRecord),
    Control(ControlRecord),
    Final(FinalRecord),
}

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    fn data(&mut self, d: &Data) {
        self.u8(u8::from(d.bytes.is_some()));
        self.u32(d.len);
        self.u32(d.crc);
        if let Some(b) = &d.bytes {
            self.0.extend_from_slice(b);
        }
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).ok_or("length overflow")?;
        let s = self
            .buf
            .get(self.at..end)
            .ok_or_else(|| format!("truncated: need {n} bytes at offset {}", self.at))?;
        self.at = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.arr::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?).map_err(|_| "string is not UTF-8".to_owned())
    }
    fn data(&mut self) -> Result<Data, String> {
        let whole = match self.u8()? {
            0 => false,
            1 => true,
            f => return Err(format!("data flag {f}")),
        };
        let len = self.u32()?;
        let crc = self.u32()?;
        let bytes = match whole {
            true => Some(self.take(len as usize)?.to_vec()),
            false => None,
        };
        Ok(Data { len, crc, bytes })
    }
}

impl Record {
    /// The record as stored: length (u32, of what follows the kind byte),
    /// kind, body.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![0; 5]);
        let k = match self {
            Record::Meta(json) => {
                e.bytes(json.as_bytes());
                kind::META
            }
            Record::Scsi(r) => {
                e.u64(r.seq);
                e.u16(r.target);
                e.u16(r.lun);
                e.u16(r.queue);
                e.u64(r.tag);
                e.u64(r.arrive_ns);
                e.u64(r.done_ns);
                e.bytes(&r.cdb);
                e.u8(r.status);
                e.bytes(&r.sense);
                e.u32(r.data_in_room);
                e.data(&r.data_out);
                e.data(&r.data_in);
                kind::SCSI
            }
            Record::Nvme(r) => {
                e.u64(r.seq);
                e.u32(r.handle);
                e.u16(r.cntlid);
                e.u16(r.qid);
                e.u64(r.arrive_ns);
                e.u64(r.done_ns);
                e.0.extend_from_slice(&r.sqe);
                match r.cqe {
                    None => e.u8(0),
                    Some(c) => {
                        e.u8(1);
                        e.u32(c.dw0);
                        e.u32(c.dw1);
                        e.u16(c.status);
                    }
                }
                e.data(&r.data_out);
                e.data(&r.data_in);
                kind::NVME
            }
            Record::Queue(q) => {
                e.u32(q.handle);
                e.u16(q.cntlid);
                e.u16(q.qid);
                e.u16(q.sqsize);
                e.u8(q.transport);
                e.0.extend_from_slice(&q.hostid);
                e.bytes(q.subnqn.as_bytes());
                e.bytes(q.hostnqn.as_bytes());
                kind::NVME_QUEUE
            }
            Record::Pdu(p) => {
                e.u64(p.conn);
                e.u8(p.dir);
                e.u64(p.t_ns);
                e.bytes(&p.bytes);
                kind::PDU
            }
            Record::Control(c) => {
                e.u64(c.seq);
                e.u64(c.t_ns);
                e.bytes(c.request.as_bytes());
                e.bytes(c.response.as_bytes());
                kind::CONTROL
            }
            Record::Final(f) => {
                e.u64(f.t_ns);
                e.u32(u32::try_from(f.devices.len()).unwrap_or(u32::MAX));
                for (name, crc, bytes) in &f.devices {
                    e.bytes(name.as_bytes());
                    e.u32(*crc);
                    e.u64(*bytes);
                }
                kind::FINAL
            }
        };
        let body = u32::try_from(e.0.len() - 4).unwrap_or(u32::MAX);
        e.0[..4].copy_from_slice(&body.to_le_bytes());
        e.0[4] = k;
        e.0
    }

    /// Decode one record body of kind `k`. Never panics: anything short,
    /// unknown or left over is an error.
    pub fn decode(k: u8, body: &[u8]) -> Result<Record, String> {
        let mut d = Dec { buf: body, at: 0 };
        let rec = match k {
            kind::META => Record::Meta(d.string()?),
            kind::SCSI => Record::Scsi(ScsiRecord {
                seq: d.u64()?,
                target: d.u16()?,
                lun: d.u16()?,
                queue: d.u16()?,
                tag: d.u64()?,
                arrive_ns: d.u64()?,
                done_ns: d.u64()?,
                cdb: d.bytes()?,
                status: d.u8()?,
                sense: d.bytes()?,
                data_in_room: d.u32()?,
                data_out: d.data()?,
                data_in: d.data()?,
            }),
            kind::NVME => Record::Nvme(NvmeRecord {
                seq: d.u64()?,
                handle: d.u32()?,
                cntlid: d.u16()?,
                qid: d.u16()?,
                arrive_ns: d.u64()?,
                done_ns: d.u64()?,
                sqe: d.arr()?,
                cqe: match d.u8()? {
                    0 => None,
                    1 => Some(Cqe {
                        dw0: d.u32()?,
                        dw1: d.u32()?,
                        status: d.u16()?,
                    }),
                    f => return Err(format!("CQE flag {f}")),
                },
                data_out: d.data()?,
                data_in: d.data()?,
            }),
            kind::NVME_QUEUE => Record::Queue(QueueRecord {
                handle: d.u32()?,
                cntlid: d.u16()?,
                qid: d.u16()?,
                sqsize: d.u16()?,
                transport: d.u8()?,
                hostid: d.arr()?,
                subnqn: d.string()?,
                hostnqn: d.string()?,
            }),
            kind::PDU => Record::Pdu(PduRecord {
                conn: d.u64()?,
                dir: d.u8()?,
                t_ns: d.u64()?,
                bytes: d.bytes()?,
            }),
            kind::CONTROL => Record::Control(ControlRecord {
                seq: d.u64()?,
                t_ns: d.u64()?,
                request: d.string()?,
                response: d.string()?,
            }),
            kind::FINAL => {
                let t_ns = d.u64()?;
                let n = d.u32()?;
                let mut devices = Vec::new();
                for _ in 0..n {
                    devices.push((d.string()?, d.u32()?, d.u64()?));
                }
                Record::Final(FinalRecord { t_ns, devices })
            }
            other => return Err(format!("unknown record kind {other}")),
        };
        if d.at != body.len() {
            return Err(format!("{} bytes left over", body.len() - d.at));
        }
        Ok(rec)
    }
}

/// The file header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Every record of one trace file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Vec<Record>, FormatError> {
    let h = bytes.get(..HEADER_LEN).ok_or(FormatError::Magic)?;
    if h[..8] != MAGIC {
        return Err(FormatError::Magic);
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION {
        return Err(FormatError::Version(version));
    }
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let err = |what: String| FormatError::Record {
            at: at as u64,
            what,
        };
        let head = bytes
            .get(at..at + 5)
            .ok_or_else(|| err("truncated record header".into()))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if len == 0 || len > MAX_RECORD {
            return Err(err(format!("record length {len}")));
        }
        let body = bytes
            .get(at + 5..at + 4 + len as usize)
            .ok_or_else(|| err(format!("truncated record of {len} bytes")))?;
        out.push(Record::decode(head[4], body).map_err(err)?);
        at += 4 + len as usize;
    }
    Ok(out)
}

/// Read one trace file.
pub fn read_file(path: &Path) -> Result<Vec<Record>, FormatError> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    parse(&bytes)
}

/// The parts of a rotated trace, oldest first: `FILE.N`, ..., `FILE.1`,
/// `FILE`.
pub fn parts(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for i in 1.. {
        let p = rotated(path, i);
        if !p.exists() {
            break;
        }
        v.push(p);
    }
    v.reverse();
    v.push(path.to_path_buf());
    v
}

/// Every record of a (possibly rotated) trace, oldest first.
pub fn read_all(path: &Path) -> Result<Vec<Record>, FormatError> {
    let mut out = Vec::new();
    for p in parts(path) {
        out.extend(read_file(&p)?);
    }
    Ok(out)
}

/// `FILE.i`.
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Writes records to FILE; past `max_bytes` moves FILE to FILE.1 (FILE.1
/// to FILE.2, ..., dropping what would become FILE.`keep`+1) and starts a
/// new FILE with the header and the meta record again.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    max_bytes: Option<u64>,
    keep: u32,
    meta: Record,
    /// Header plus encoded meta record: a file's size before any command.
    base: u64,
}

/// Write buffer: large, so a 4 KiB command's record is a copy, not a
/// system call.
const WRITE_BUFFER: usize = 1 << 20;

impl Writer {
    /// Create FILE (replacing it and any FILE.i) and write the header and
    /// `meta`.
    pub fn create(
        path: &Path,
        meta: Record,
        max_bytes: Option<u64>,
        keep: u32,
    ) -> io::Result<Self> {
        for p in parts(path) {
            if p != path {
                std::fs::remove_file(&p)?;
            }
        }
        let mut w = Writer {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(WRITE_BUFFER, File::create(path)?),
            written: 0,
            max_bytes,
            keep,
            meta,
            base: 0,
        };
        w.start_file()?;
        Ok(w)
    }

    fn start_file(&mut self) -> io::Result<()> {
        self.out.write_all(&header())?;
        let meta = self.meta.encode();
        self.out.write_all(&meta)?;
        self.base = (HEADER_LEN + meta.len()) as u64;
        self.written = self.base;
        Ok(())
    }

    /// Bytes in the current file.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Append one record (already encoded), rotating first if it would
    /// cross the size limit (a file holds at least one record).
    pub fn write(&mut self, rec: &[u8]) -> io::Result<()> {
        if let Some(max) = self.max_bytes {
            if self.written > self.base && self.written + rec.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.out.write_all(rec)?;
        self.written += rec.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, self.keep));
            for i in (1..self.keep).rev() {
                let from = rotated(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        // The meta record of a later part says which part it is, so a
        // reader knows whether the oldest part was dropped.
        if let Record::Meta(json) = &self.meta {
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(json) {
                v["part"] = serde_json::json!(v["part"].as_u64().unwrap_or(0) + 1);
                self.meta = Record::Meta(v.to_string());
            }
        }
        self.out = BufWriter::with_capacity(WRITE_BUFFER, File::create(&self.path)?);
        self.start_file()
    }

    /// Push buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
