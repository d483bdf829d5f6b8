//! The guest contract's kernel command line (ARCHITECTURE.md, "The guest
//! contract"):
//!
//! - `zonecopy.suite=NAME`
//! - `zonecopy.lun<N>=<kind>:bs=<bytes>,size=<bytes>[,zone=<bytes>,cap=<bytes>,conv=<count>,urswrz=0|1]`
//!   with `kind` `hm` (host-managed zoned), `ha` (host aware) or `disk`
//!   (not zoned)
//! - `zonecopy.run=<hex>` (run mode; parsed here only so it is not an error)
//! - `zonecopy.control=<ipv4>:<port>` (optional): the backend's control
//!   socket as the guest reaches it (QEMU user networking: `10.0.2.2:PORT`)
//! - `zonecopy.control_token=<secret>`: what a control client sends first
//!   (`{"cmd":"auth","token":...}`) on that socket
//! - `zonecopy.nvme=traddr=<ip>,trsvcid=<port>,nqn=<subsystem NQN>`: an
//!   NVMe/TCP subsystem to connect to
//! - `zonecopy.ns<N>=<kind>:bs=<bytes>,size=<bytes>[,zone=<bytes>,cap=<bytes>,conv=<count>]`
//!   one per namespace (N = NSID, from 1), `kind` `zns` or `nvm`
//! - `zonecopy.xfail=<id>[,<id>...]`: known bugs of the booted kernel
//! - `zonecopy.scsihd=bs=<bytes>,size=<bytes>`: the bench suite's reference
//!   disks (QEMU's scsi-hd, products `ZCBENCH-REF` and `ZCBENCH-REF-WB`)
//! - `zonecopy.sink=<ipv4>:<port>`: the bench suite's discard sink and zero
//!   source (ci/src/sink.rs)
//! - `zonecopy.nvmeref=bs=<bytes>,size=<bytes>`: the bench suite's reference
//!   NVMe namespaces over PCIe (QEMU's `-device nvme`, serials `ZCNVMEREF`
//!   and `ZCNVMEREF-WB`, NSID 1 each), given with our NVMe over PCIe
//! - `zonecopy.peer-nvme=serial=<S>,bs=..,size=..,zone=..,cap=..,max-open=..,max-active=..,nvm-size=..,mssrl=..,mcl=..,msrc=..`:
//!   the diff-nvme suite's peer, QEMU's own NVMe controller over PCIe
//!   (serial S; NSID 1 zoned, NSID 2 plain), every key once, decimal
//!
//! Numbers are plain decimal. Any other `zonecopy.` key, a repeated key or a
//! malformed value is an error naming the offending word; words without the
//! `zonecopy.` prefix belong to the kernel and are ignored.

use std::{collections::BTreeMap, fmt, net::SocketAddr};

/// Everything the host told the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `zonecopy.suite=`
    pub suite: Option<String>,
    /// `zonecopy.lun<N>=`, by LUN.
    pub luns: BTreeMap<u64, LunSpec>,
    /// `zonecopy.run=` (hex-encoded command, possibly empty).
    pub run: Option<String>,
    /// `zonecopy.control=`: the backend's control socket (TCP), if given.
    pub control: Option<SocketAddr>,
    /// `zonecopy.control_token=`: the secret to send first on it.
    pub control_token: Option<String>,
    /// `zonecopy.nvme=`: the NVMe/TCP subsystem, if given.
    pub nvme: Option<NvmeTarget>,
    /// `zonecopy.ns<N>=`, by NSID.
    pub namespaces: BTreeMap<u32, NsSpec>,
    /// `zonecopy.xfail=`: known-bug ids, in order given.
    pub xfail: Vec<String>,
    /// `zonecopy.scsihd=`: the reference scsi-hds' geometry (a `disk`), if
    /// attached.
    pub scsi_hd: Option<LunSpec>,
    /// `zonecopy.sink=`: the discard sink / zero source, if given.
    pub sink: Option<SocketAddr>,
    /// `zonecopy.nvmeref=`: the reference QEMU NVMe namespaces' geometry
    /// (a `disk`), if attached.
    pub nvme_ref: Option<LunSpec>,
    /// `zonecopy.peer-nvme=`: QEMU's NVMe controller, if attached.
    pub peer_nvme: Option<PeerNvme>,
}

/// `zonecopy.peer-nvme=`: the geometry and limits the runner gave QEMU's
/// NVMe controller (the same as our first ZNS and NVM namespaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNvme {
    /// Serial Number of the peer controller.
    pub serial: String,
    pub bs: u64,
    /// Size of the zoned namespace (NSID 1) in bytes.
    pub size: u64,
    pub zone: u64,
    pub cap: u64,
    /// 0 = no limit.
    pub max_open: u64,
    pub max_active: u64,
    /// Size of the plain namespace (NSID 2) in bytes.
    pub nvm_size: u64,
    pub mssrl: u64,
    pub mcl: u64,
    /// 0's based, as in Identify Namespace.
    pub msrc: u64,
}

/// Parse the value of `zonecopy.peer-nvme=`.
pub fn parse_peer_nvme(value: &str) -> Result<PeerNvme, String> {
    const KEYS: [&str; 10] = [
        "bs",
        "size",
        "zone",
        "cap",
        "max-open",
        "max-active",
        "nvm-size",
        "mssrl",
        "mcl",
        "msrc",
    ];
    let mut serial = None;
    let mut v: [Option<u64>; 10] = [None; 10];
    for item in value.split(',') {
        let (k, val) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not key=value"))?;
        if k == "serial" {
            if val.is_empty() || serial.replace(val.to_string()).is_some() {
                return Err("serial= empty or given twice".into());
            }
            continue;
        }
        let i = KEYS
            .iter()
            .position(|x| *x == k)
            .ok_or_else(|| format!("unknown key {k:?}"))?;
        if v[i].replace(number(val)?).is_some() {
            return Err(format!("{k} given twice"));
        }
    }
    let get = |i: usize| v[i].ok_or_else(|| format!("{}= is missing", KEYS[i]));
    let p = PeerNvme {
        serial: serial.ok_or("serial= is missing")?,
        bs: get(0)?,
        size: get(1)?,
        zone: get(2)?,
        cap: get(3)?,
        max_open: get(4)?,
        max_active: get(5)?,
        nvm_size: get(6)?,
        mssrl: get(7)?,
        mcl: get(8)?,
        msrc: get(9)?,
    };
    if p.bs == 0 || p.zone == 0 || p.cap > p.zone || p.size % p.zone != 0 {
        return Err("bs, zone, cap and size do not make a zone layout".into());
    }
    Ok(p)
}

/// `zonecopy.nvme=`: where the NVMe/TCP subsystem listens, or
/// (`transport=pcie`) that the subsystem's controller is a PCI function
/// the nvme-pci driver finds by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeTarget {
    /// `transport=pcie`: no fabrics connect; `traddr` is empty and
    /// `trsvcid` 0.
    pub pcie: bool,
    /// `traddr=`: transport address (an IP address).
    pub traddr: String,
    /// `trsvcid=`: transport service id (the TCP port).
    pub trsvcid: u16,
    /// `nqn=`: the subsystem NQN.
    pub nqn: String,
}

/// Whether a namespace is zoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    /// `zns`: Zoned Namespace command set.
    Zns,
    /// `nvm`: NVM command set, not zoned.
    Nvm,
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Zns => "zns",
            Self::Nvm => "nvm",
        })
    }
}

/// One namespace as the host configured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsSpec {
    /// `zns` or `nvm`.
    pub kind: NsKind,
    /// Logical block size in bytes (`bs=`).
    pub block_size: u64,
    /// Capacity in bytes (`size=`).
    pub size: u64,
    /// Zone layout; `Some` exactly for `zns`.
    pub zones: Option<ZoneSpec>,
}

impl NsSpec {
    /// Number of zones (the last may be smaller).
    pub fn nr_zones(&self) -> Option<u64> {
        self.zones.map(|z| self.size.div_ceil(z.zone_size))
    }
}

/// Parse the value of `zonecopy.nvme=`: `traddr`, `trsvcid` and `nqn`,
/// each exactly once, in any order.
pub fn parse_nvme(value: &str) -> Result<NvmeTarget, String> {
    let (mut traddr, mut trsvcid, mut nqn, mut transport) = (None, None, None, None);
    for item in value.split(',') {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not key=value"))?;
        if v.is_empty() {
            return Err(format!("{k}= is empty"));
        }
        let slot = match k {
            "traddr" => &mut traddr,
            "trsvcid" => &mut trsvcid,
            "nqn" => &mut nqn,
            "transport" => &mut transport,
            _ => {
                return Err(format!(
                    "unknown key {k:?} (expected traddr, trsvcid, nqn, transport)"
                ))
            }
        };
        if slot.replace(v.to_string()).is_some() {
            return Err(format!("{k} given twice"));
        }
    }
    match transport.as_deref() {
        None | Some("tcp") => {}
        Some("pcie") => {
            if traddr.is_some() || trsvcid.is_some() {
                return Err("transport=pcie takes no traddr= or trsvcid=".into());
            }
            let nqn = nqn.ok_or("nqn= is missing")?;
            return Ok(NvmeTarget {
                pcie: true,
                traddr: String::new(),
                trsvcid: 0,
                nqn,
            });
        }
        Some(t) => return Err(format!("transport={t} is not tcp or pcie")),
    }
    let traddr = traddr.ok_or("traddr= is missing")?;
    let port = trsvcid.ok_or("trsvcid= is missing")?;
    let trsvcid = number(&port)
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("trsvcid={port} is not a port number"))?;
    let nqn = nqn.ok_or("nqn= is missing")?;
    if !nqn.starts_with("nqn.") || nqn.len() > 223 {
        return Err(format!(
            "nqn={nqn} is not an NQN (nqn.yyyy-mm.<domain>..., at most 223 bytes)"
        ));
    }
    Ok(NvmeTarget {
        pcie: false,
        traddr,
        trsvcid,
        nqn,
    })
}

/// Parse the value of `zonecopy.ns<N>=`: the `zonecopy.lun<N>=` syntax
/// with kinds `zns` (zoned) and `nvm`.
pub fn parse_ns(value: &str) -> Result<NsSpec, String> {
    let (kind, params) = value
        .split_once(':')
        .ok_or("expected <kind>:bs=<bytes>,size=<bytes>[,...]")?;
    let (kind, lun_kind) = match kind {
        "zns" => (NsKind::Zns, "hm"),
        "nvm" => (NsKind::Nvm, "disk"),
        k => return Err(format!("unknown kind {k:?} (expected zns or nvm)")),
    };
    let l =
        parse_lun(&format!("{lun_kind}:{params}")).map_err(|e| e.replace("kind hm", "kind zns"))?;
    Ok(NsSpec {
        kind,
        block_size: l.block_size,
        size: l.size,
        zones: l.zones,
    })
}

/// Whether a LUN is zoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LunKind {
    /// `hm`: host-managed zoned (ZBC, peripheral device type 14h).
    HostManaged,
    /// `ha`: host aware zoned (peripheral device type 00h, sequential
    /// write preferred zones).
    HostAware,
    /// `disk`: a regular, not zoned disk.
    Disk,
}

impl fmt::Display for LunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HostManaged => "hm",
            Self::HostAware => "ha",
            Self::Disk => "disk",
        })
    }
}

/// The zone layout of a host-managed LUN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneSpec {
    /// Zone size in bytes (`zone=`).
    pub zone_size: u64,
    /// Writable capacity of each sequential zone in bytes (`cap=`, default
    /// the zone size).
    pub capacity: u64,
    /// Number of conventional zones at the start (`conv=`, default 0).
    pub conventional: u64,
    /// VPD B6h URSWRZ (`urswrz=0|1`, default 1).
    pub urswrz: bool,
}

/// One LUN as the host configured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LunSpec {
    /// `hm` or `disk`.
    pub kind: LunKind,
    /// Logical block size in bytes (`bs=`).
    pub block_size: u64,
    /// Capacity in bytes (`size=`).
    pub size: u64,
    /// Zone layout; `Some` exactly for `hm` and `ha`.
    pub zones: Option<ZoneSpec>,
}

impl LunSpec {
    /// Number of zones: the last zone may be smaller (a "runt" zone).
    pub fn nr_zones(&self) -> Option<u64> {
        self.zones.map(|z| self.size.div_ceil(z.zone_size))
    }
}

/// Why the command line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdlineError {
    /// The offending command-line word.
    pub word: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.word, self.reason)
    }
}

impl std::error::Error for CmdlineError {}

fn err(word: &str, reason: impl Into<String>) -> CmdlineError {
    CmdlineError {
        word: word.to_string(),
        reason: reason.into(),
    }
}

/// A decimal number, nothing else (no sign, no suffix, no spaces).
fn number(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a decimal number"));
    }
    s.parse::<u64>().map_err(|_| format!("{s} is out of range"))
}

/// Parse the value of `zonecopy.lun<N>=`.
pub fn parse_lun(value: &str) -> Result<LunSpec, String> {
    let (kind, params) = value
        .split_once(':')
        .ok_or("expected <kind>:bs=<bytes>,size=<bytes>[,...]")?;
    let kind = match kind {
        "hm" => LunKind::HostManaged,
        "ha" => LunKind::HostAware,
        "disk" => LunKind::Disk,
        k => return Err(format!("unknown kind {k:?} (expected hm, ha or disk)")),
    };
    let mut fields: BTreeMap<&str, u64> = BTreeMap::new();
    for item in params.split(',') {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not key=value"))?;
        if !matches!(k, "bs" | "size" | "zone" | "cap" | "conv" | "urswrz") {
            return Err(format!("unknown key {k:?}"));
        }
        let v = number(v).map_err(|e| format!("{k}: {e}"))?;
        if fields.insert(k, v).is_some() {
            return Err(format!("{k} given twice"));
        }
    }
    let bs = *fields.get("bs").ok_or("bs= is missing")?;
    let size = *fields.get("size").ok_or("size= is missing")?;
    if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
        return Err(format!("bs={bs} is not a power of two in 512..=65536"));
    }
    if size == 0 || size % bs != 0 {
        return Err(format!("size={size} is not a non-zero multiple of bs={bs}"));
    }
    let zones = match kind {
        LunKind::Disk => {
            if let Some(k) = ["zone", "cap", "conv", "urswrz"]
                .into_iter()
                .find(|k| fields.contains_key(k))
            {
                return Err(format!("{k}= is only valid for kind hm"));
            }
            None
        }
        LunKind::HostManaged | LunKind::HostAware => {
            let zone_size = *fields.get("zone").ok_or("zone= is missing for kind hm")?;
            if zone_size == 0 || zone_size % bs != 0 {
                return Err(format!(
                    "zone={zone_size} is not a non-zero multiple of bs={bs}"
                ));
            }
            let capacity = fields.get("cap").copied().unwrap_or(zone_size);
            if capacity == 0 || capacity > zone_size || capacity % bs != 0 {
                return Err(format!(
                    "cap={capacity} is not a non-zero multiple of bs={bs} up to zone={zone_size}"
                ));
            }
            let conventional = fields.get("conv").copied().unwrap_or(0);
            let nr_zones = size.div_ceil(zone_size);
            if conventional > nr_zones {
                return Err(format!("conv={conventional} exceeds the {nr_zones} zones"));
            }
            let urswrz = match fields.get("urswrz").copied().unwrap_or(1) {
                0 => false,
                1 => true,
                u => return Err(format!("urswrz={u} is not 0 or 1")),
            };
            Some(ZoneSpec {
                zone_size,
                capacity,
                conventional,
                urswrz,
            })
        }
    };
    Ok(LunSpec {
        kind,
        block_size: bs,
        size,
        zones,
    })
}

/// Parse a whole `/proc/cmdline`.
pub fn parse(cmdline: &str) -> Result<Config, CmdlineError> {
    let mut cfg = Config::default();
    for word in cmdline.split_whitespace() {
        let Some(rest) = word.strip_prefix("zonecopy.") else {
            continue;
        };
        let (key, value) = rest
            .split_once('=')
            .ok_or_else(|| err(word, "expected key=value"))?;
        if key == "suite" {
            if value.is_empty() {
                return Err(err(word, "empty suite name"));
            }
            if cfg.suite.replace(value.to_string()).is_some() {
                return Err(err(word, "zonecopy.suite given twice"));
            }
        } else if key == "run" {
            if cfg.run.replace(value.to_string()).is_some() {
                return Err(err(word, "zonecopy.run given twice"));
            }
        } else if key == "control" {
            let addr: SocketAddr = value
                .parse()
                .map_err(|_| err(word, format!("{value:?} is not <ip>:<port>")))?;
            if cfg.control.replace(addr).is_some() {
                return Err(err(word, "zonecopy.control given twice"));
            }
        } else if key == "control_token" {
            if value.is_empty() || value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(err(word, "expected 1-256 printable characters"));
            }
            if cfg.control_token.replace(value.to_string()).is_some() {
                return Err(err(word, "zonecopy.control_token given twice"));
            }
        } else if key == "nvme" {
            let t = parse_nvme(value).map_err(|e| err(word, e))?;
            if cfg.nvme.replace(t).is_some() {
                return Err(err(word, "zonecopy.nvme given twice"));
            }
        } else if key == "scsihd" {
            let l = parse_lun(&format!("disk:{value}")).map_err(|e| err(word, e))?;
            if cfg.scsi_hd.replace(l).is_some() {
                return Err(err(word, "zonecopy.scsihd given twice"));
            }
        } else if key == "nvmeref" {
            let l = parse_lun(&format!("disk:{value}")).map_err(|e| err(word, e))?;
            if cfg.nvme_ref.replace(l).is_some() {
                return Err(err(word, "zonecopy.nvmeref given twice"));
            }
        } else if key == "sink" {
            let addr: SocketAddr = value
                .parse()
                .map_err(|_| err(word, format!("{value:?} is not <ip>:<port>")))?;
            if cfg.sink.replace(addr).is_some() {
                return Err(err(word, "zonecopy.sink given twice"));
            }
        } else if key == "peer-nvme" {
            let p = parse_peer_nvme(value).map_err(|e| err(word, e))?;
            if cfg.peer_nvme.replace(p).is_some() {
                return Err(err(word, "zonecopy.peer-nvme given twice"));
            }
        } else if key == "xfail" {
            for id in value.split(',').filter(|s| !s.is_empty()) {
                if !cfg.xfail.iter().any(|x| x == id) {
                    cfg.xfail.push(id.to_string());
                }
            }
        } else if let Some(n) = key.strip_prefix("ns") {
            let nsid = number(n)
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|&v| v != 0 && v != u32::MAX)
                .ok_or_else(|| err(word, format!("NSID {n:?} is not in 1..=4294967294")))?;
            let spec = parse_ns(value).map_err(|e| err(word, e))?;
            if cfg.namespaces.insert(nsid, spec).is_some() {
                return Err(err(word, format!("namespace {nsid} given twice")));
            }
        } else if let Some(n) = key.strip_prefix("lun") {
            let lun = number(n).map_err(|e| err(word, format!("LUN number: {e}")))?;
            let spec = parse_lun(value).map_err(|e| err(word, e))?;
            if cfg.luns.insert(lun, spec).is_some() {
                return Err(err(word, format!("LUN {lun} given twice")));
            }
        } else {
            return Err(err(word, format!("unknown key zonecopy.{key}")));
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn peer_nvme() {
        let c = parse(
            "zonecopy.suite=diff-nvme zonecopy.peer-nvme=serial=ZCPEER0001,bs=4096,\
             size=67108864,zone=4194304,cap=3145728,max-open=4,max-active=6,\
             nvm-size=33554432,mssrl=16,mcl=64,msrc=7",
        )
        .unwrap();
        let p = c.peer_nvme.unwrap();
        assert_eq!(
            (p.serial.as_str(), p.bs, p.size),
            ("ZCPEER0001", 4096, 64 * MIB)
        );
        assert_eq!(
            (p.zone, p.cap, p.max_open, p.max_active),
            (4 * MIB, 3 * MIB, 4, 6)
        );
        assert_eq!((p.nvm_size, p.mssrl, p.mcl, p.msrc), (32 * MIB, 16, 64, 7));
        for bad in [
            "zonecopy.peer-nvme=serial=S,bs=4096",
            "zonecopy.peer-nvme=bs=4096,size=8,zone=4,cap=4,max-open=0,max-active=0,\
             nvm-size=1,mssrl=1,mcl=1,msrc=0",
            "zonecopy.peer-nvme=serial=S,bs=1,size=8,zone=4,cap=5,max-open=0,max-active=0,\
             nvm-size=1,mssrl=1,mcl=1,msrc=0",
            "zonecopy.peer-nvme=serial=S,bogus=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn full_line() {
        let c = parse(
            "console=ttyS0 quiet zonecopy.suite=smoke \
             zonecopy.lun0=hm:bs=4096,size=67108864,zone=4194304,cap=3145728,conv=2 \
             zonecopy.lun1=disk:bs=512,size=1048576\n",
        )
        .unwrap();
        assert_eq!(c.suite.as_deref(), Some("smoke"));
        assert_eq!(c.run, None);
        assert_eq!(
            c.luns[&0],
            LunSpec {
                kind: LunKind::HostManaged,
                block_size: 4096,
                size: 64 * MIB,
                zones: Some(ZoneSpec {
                    zone_size: 4 * MIB,
                    capacity: 3 * MIB,
                    conventional: 2,
                    urswrz: true
                }),
            }
        );
        assert_eq!(c.luns[&0].nr_zones(), Some(16));
        assert_eq!(
            c.luns[&1],
            LunSpec {
                kind: LunKind::Disk,
                block_size: 512,
                size: MIB,
                zones: None
            }
        );
        assert_eq!(c.luns[&1].nr_zones(), None);
    }

    #[test]
    fn bench_reference_disk_and_sink() {
        let c =
            parse("zonecopy.scsihd=bs=4096,size=201326592 zonecopy.sink=10.0.2.2:4000").unwrap();
        assert_eq!(
            c.scsi_hd,
            Some(LunSpec {
                kind: LunKind::Disk,
                block_size: 4096,
                size: 192 * MIB,
                zones: None
            })
        );
        assert_eq!(c.sink, Some("10.0.2.2:4000".parse().unwrap()));
        let r = parse("zonecopy.nvmeref=bs=4096,size=201326592").unwrap();
        assert_eq!(r.nvme_ref, c.scsi_hd);
        for bad in [
            "zonecopy.nvmeref=bs=4096",
            "zonecopy.nvmeref=bs=512,size=512 zonecopy.nvmeref=bs=512,size=512",
            "zonecopy.scsihd=bs=4096",
            "zonecopy.scsihd=bs=4096,size=4096,zone=4096",
            "zonecopy.scsihd=bs=512,size=512 zonecopy.scsihd=bs=512,size=512",
            "zonecopy.sink=10.0.2.2",
            "zonecopy.sink=1.2.3.4:1 zonecopy.sink=1.2.3.4:1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_runt_zone() {
        let s = parse_lun("hm:bs=512,size=10485760,zone=4194304").unwrap();
        let z = s.zones.unwrap();
        assert_eq!((z.capacity, z.conventional), (4 * MIB, 0));
        assert_eq!(s.nr_zones(), Some(3));
    }

    #[test]
    fn host_aware_and_urswrz() {
        let s = parse_lun("ha:bs=4096,size=16777216,zone=1048576,cap=1048576,conv=1").unwrap();
        assert_eq!(
            (s.kind, s.kind.to_string()),
            (LunKind::HostAware, "ha".into())
        );
        assert!(s.zones.unwrap().urswrz);
        let r = parse_lun("hm:bs=512,size=33554432,zone=1048576,urswrz=0").unwrap();
        assert!(!r.zones.unwrap().urswrz);
        assert!(parse_lun("hm:bs=512,size=33554432,zone=1048576,urswrz=2").is_err());
        assert!(parse_lun("disk:bs=512,size=1048576,urswrz=1").is_err());
    }

    #[test]
    fn empty_and_foreign() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(
            parse("root=/dev/sda zonecopy_x=1").unwrap(),
            Config::default()
        );
        let c = parse("zonecopy.run= zonecopy.suite=x").unwrap();
        assert_eq!(c.run.as_deref(), Some(""));
    }

    #[test]
    fn nvme_and_namespaces() {
        let c = parse(
            "zonecopy.suite=nvme zonecopy.nvme=traddr=10.0.2.2,trsvcid=4420,nqn=nqn.2026-11.dev.zonecopy:sub0 \
             zonecopy.ns1=zns:bs=4096,size=67108864,zone=4194304,cap=3145728 \
             zonecopy.ns2=nvm:bs=512,size=1048576 zonecopy.xfail=a,b zonecopy.xfail=b,c",
        )
        .unwrap();
        assert_eq!(
            c.nvme,
            Some(NvmeTarget {
                pcie: false,
                traddr: "10.0.2.2".into(),
                trsvcid: 4420,
                nqn: "nqn.2026-11.dev.zonecopy:sub0".into()
            })
        );
        assert_eq!(
            c.namespaces[&1],
            NsSpec {
                kind: NsKind::Zns,
                block_size: 4096,
                size: 64 * MIB,
                zones: Some(ZoneSpec {
                    zone_size: 4 * MIB,
                    capacity: 3 * MIB,
                    conventional: 0,
                    urswrz: true
                })
            }
        );
        assert_eq!(c.namespaces[&1].nr_zones(), Some(16));
        assert_eq!(c.namespaces[&2].kind, NsKind::Nvm);
        assert_eq!(c.namespaces[&2].zones, None);
        assert_eq!(c.xfail, vec!["a", "b", "c"]);
        for (line, needle) in [
            ("zonecopy.nvme=traddr=1.2.3.4,trsvcid=1", "nqn= is missing"),
            ("zonecopy.nvme=traddr=1.2.3.4,nqn=nqn.x", "trsvcid= is missing"),
            ("zonecopy.nvme=trsvcid=1,nqn=nqn.x", "traddr= is missing"),
            ("zonecopy.nvme=traddr=a,trsvcid=70000,nqn=nqn.x", "not a port"),
            ("zonecopy.nvme=traddr=a,trsvcid=0,nqn=nqn.x", "not a port"),
            ("zonecopy.nvme=traddr=a,trsvcid=1,nqn=foo", "not an NQN"),
            ("zonecopy.nvme=traddr=a,trsvcid=1,nqn=nqn.x,traddr=b", "twice"),
            ("zonecopy.nvme=traddr=a,trsvcid=1,nqn=nqn.x,hostnqn=y", "unknown key"),
            ("zonecopy.nvme=traddr=,trsvcid=1,nqn=nqn.x", "empty"),
            (
                "zonecopy.nvme=traddr=a,trsvcid=1,nqn=nqn.x zonecopy.nvme=traddr=a,trsvcid=1,nqn=nqn.x",
                "given twice",
            ),
            ("zonecopy.ns0=nvm:bs=512,size=512", "NSID"),
            ("zonecopy.nsx=nvm:bs=512,size=512", "NSID"),
            ("zonecopy.ns1=hm:bs=512,size=512", "unknown kind"),
            ("zonecopy.ns1=zns:bs=512,size=1024", "zone= is missing for kind zns"),
            ("zonecopy.ns1=nvm:bs=512,size=1024,zone=512", "only valid for kind zns"),
            (
                "zonecopy.ns1=nvm:bs=512,size=512 zonecopy.ns01=nvm:bs=512,size=512",
                "given twice",
            ),
        ] {
            let e = parse(line).expect_err(line);
            assert!(e.to_string().contains(needle), "{line}: {e} lacks {needle:?}");
        }
    }

    #[test]
    fn control_address() {
        let c = parse("zonecopy.control=10.0.2.2:4321").unwrap();
        assert_eq!(c.control, Some("10.0.2.2:4321".parse().unwrap()));
        assert_eq!(parse("").unwrap().control, None);
        for bad in [
            "zonecopy.control=10.0.2.2",
            "zonecopy.control=",
            "zonecopy.control=host:1",
            "zonecopy.control=1.2.3.4:1 zonecopy.control=1.2.3.4:2",
            "zonecopy.control_token=",
            "zonecopy.control_token=a\x01b",
            "zonecopy.control_token=a zonecopy.control_token=b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let c = parse("zonecopy.control=10.0.2.2:1 zonecopy.control_token=0a1b").unwrap();
        assert_eq!(c.control_token.as_deref(), Some("0a1b"));
    }

    #[test]
    fn malformed_is_an_error() {
        for (line, needle) in [
            ("zonecopy.suite", "key=value"),
            ("zonecopy.suite=", "empty"),
            ("zonecopy.suite=a zonecopy.suite=b", "twice"),
            ("zonecopy.bogus=1", "unknown key"),
            ("zonecopy.lun=hm:bs=512,size=512,zone=512", "LUN number"),
            ("zonecopy.lunx=hm:bs=512,size=512,zone=512", "LUN number"),
            ("zonecopy.lun0=hm", "expected <kind>"),
            ("zonecopy.lun0=zz:bs=512,size=512", "unknown kind"),
            ("zonecopy.lun0=disk:bs=512", "size= is missing"),
            ("zonecopy.lun0=disk:size=512", "bs= is missing"),
            ("zonecopy.lun0=disk:bs=512,size=512,bs=512", "twice"),
            ("zonecopy.lun0=disk:bs=512,size=-1", "not a decimal"),
            ("zonecopy.lun0=disk:bs=512,size=4k", "not a decimal"),
            ("zonecopy.lun0=disk:bs=512,size=", "not a decimal"),
            (
                "zonecopy.lun0=disk:bs=512,size=99999999999999999999",
                "out of range",
            ),
            ("zonecopy.lun0=disk:bs=500,size=1000", "power of two"),
            ("zonecopy.lun0=disk:bs=0,size=1000", "power of two"),
            ("zonecopy.lun0=disk:bs=512,size=1000", "multiple of bs"),
            ("zonecopy.lun0=disk:bs=512,size=0", "multiple of bs"),
            (
                "zonecopy.lun0=disk:bs=512,size=1024,zone=512",
                "only valid for kind hm",
            ),
            ("zonecopy.lun0=disk:bs=512,size=1024,speed=1", "unknown key"),
            ("zonecopy.lun0=disk:bs=512,size=1024,", "not key=value"),
            ("zonecopy.lun0=hm:bs=512,size=1024", "zone= is missing"),
            ("zonecopy.lun0=hm:bs=512,size=1024,zone=0", "zone=0"),
            (
                "zonecopy.lun0=hm:bs=512,size=1024,zone=512,cap=1024",
                "cap=1024",
            ),
            ("zonecopy.lun0=hm:bs=512,size=1024,zone=512,cap=0", "cap=0"),
            (
                "zonecopy.lun0=hm:bs=512,size=1024,zone=512,conv=3",
                "exceeds",
            ),
            (
                "zonecopy.lun0=disk:bs=512,size=512 zonecopy.lun00=disk:bs=512,size=512",
                "given twice",
            ),
        ] {
            let e = parse(line).expect_err(line);
            assert!(
                e.to_string().contains(needle),
                "{line}: {e} lacks {needle:?}"
            );
        }
    }

    #[test]
    fn never_panics_on_junk() {
        // A cheap fuzz: every prefix of a valid line, and byte mutations.
        let good = "zonecopy.lun0=hm:bs=4096,size=67108864,zone=4194304,cap=3145728,conv=2";
        for i in 0..=good.len() {
            let _ = parse(&good[..i]);
        }
        for i in 0..good.len() {
            for c in ['=', ':', ',', ' ', '0', 'x', '\u{e9}'] {
                let mut s = good.to_string();
                s.replace_range(i..i + 1, &c.to_string());
                let _ = parse(&s);
            }
        }
    }

    #[test]
    fn nvme_over_pcie() {
        let t = parse_nvme("transport=pcie,nqn=nqn.2026-11.dev.zonecopy:sub0").unwrap();
        assert!(t.pcie);
        assert_eq!(t.nqn, "nqn.2026-11.dev.zonecopy:sub0");
        assert!(
            !parse_nvme("transport=tcp,traddr=1.2.3.4,trsvcid=1,nqn=nqn.x")
                .unwrap()
                .pcie
        );
        for (v, why) in [
            ("transport=pcie", "nqn= is missing"),
            ("transport=pcie,traddr=1.2.3.4,nqn=nqn.x", "takes no traddr"),
            ("transport=rdma,nqn=nqn.x", "not tcp or pcie"),
        ] {
            let e = parse_nvme(v).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
    }
}
