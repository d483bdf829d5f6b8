//! Connecting to an NVMe/TCP subsystem the way nvme-cli does: an option
//! string written to `/dev/nvme-fabrics` (drivers/nvme/host/fabrics.c),
//! whose answer `instance=N,cntlid=M` names the new controller
//! `/sys/class/nvme/nvmeN`; namespaces then appear as block devices; writing
//! `1` to the controller's `delete_controller` disconnects it. Also the
//! discovery log page (Get Log Page 70h) of a discovery controller.
//!
//! The sysfs root is a parameter so tests use a fake tree.

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::cmdline::NvmeTarget;

/// The well-known discovery subsystem NQN (NVMe Base 2.1, 4.7).
pub const DISCOVERY_NQN: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// Where the fabrics driver takes connect requests.
pub const FABRICS_DEV: &str = "/dev/nvme-fabrics";

/// A host identity: NQN and ID (kernels 6.12+ want both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostId {
    /// `nqn.2014-08.org.nvmexpress:uuid:<uuid>`
    pub hostnqn: String,
    /// The same UUID.
    pub hostid: String,
}

/// Whether `s` is a UUID in the 8-4-4-4-12 lower- or upper-case hex form.
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl HostId {
    /// The host identity for `uuid` (NVMe Base 2.1, 4.7: the UUID-based
    /// NQN format).
    pub fn from_uuid(uuid: &str) -> Result<Self, String> {
        let uuid = uuid.trim().to_ascii_lowercase();
        if !is_uuid(&uuid) {
            return Err(format!("{uuid:?} is not a UUID"));
        }
        Ok(Self {
            hostnqn: format!("nqn.2014-08.org.nvmexpress:uuid:{uuid}"),
            hostid: uuid,
        })
    }

    /// A fresh random identity: the kernel's random UUID, or else one made
    /// from the clock and PID (still a well-formed version-4 UUID).
    pub fn generate() -> Self {
        if let Some(h) = fs::read_to_string("/proc/sys/kernel/random/uuid")
            .ok()
            .and_then(|u| Self::from_uuid(&u).ok())
        {
            return h;
        }
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let x = t ^ (u128::from(std::process::id()) << 64);
        let x = (x & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        let h = format!("{x:032x}");
        let u = format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        Self {
            hostnqn: format!("nqn.2014-08.org.nvmexpress:uuid:{u}"),
            hostid: u,
        }
    }
}

/// The option string for `/dev/nvme-fabrics` to connect to `nqn` at the
/// target's address.
pub fn connect_options(t: &NvmeTarget, nqn: &str, host: &HostId) -> String {
    format!(
        "transport=tcp,traddr={},trsvcid={},nqn={nqn},hostnqn={},hostid={}",
        t.traddr, t.trsvcid, host.hostnqn, host.hostid
    )
}

/// The fabrics option asking the controller at Connect (CATTR bit 2) to
/// disable SQ flow control: no SQ head pointer updates, and a read may
/// complete on its last C2HData PDU (SUCCESS flag) without a CapsuleResp.
pub const DISABLE_SQFLOW: &str = "disable_sqflow";

/// The fabrics driver's answer to a connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected {
    /// N of `/sys/class/nvme/nvmeN`.
    pub instance: u32,
    /// The controller ID the target assigned.
    pub cntlid: u16,
}

/// Parse `instance=N,cntlid=M` (with a trailing newline, maybe more keys).
pub fn parse_connected(s: &str) -> Result<Connected, String> {
    let (mut instance, mut cntlid) = (None, None);
    for item in s.trim().split(',') {
        match item.split_once('=') {
            Some(("instance", v)) => instance = v.parse::<u32>().ok(),
            Some(("cntlid", v)) => cntlid = v.parse::<u16>().ok(),
            _ => {}
        }
    }
    match (instance, cntlid) {
        (Some(instance), Some(cntlid)) => Ok(Connected { instance, cntlid }),
        _ => Err(format!(
            "unexpected answer from {FABRICS_DEV}: {:?}",
            s.trim()
        )),
    }
}

/// Write `options` to the fabrics device and read back its answer on the
/// same file descriptor (that is how the driver returns it).
pub fn fabrics_connect(options: &str) -> io::Result<Connected> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(FABRICS_DEV)?;
    f.write_all(options.as_bytes())?;
    let mut answer = String::new();
    let mut buf = [0u8; 256];
    let n = f.read(&mut buf)?;
    answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    parse_connected(&answer).map_err(io::Error::other)
}

/// The controller of subsystem `nqn` that the nvme-pci driver probed
/// (`/sys/class/nvme/nvmeN` with transport `pcie`), waited for up to
/// `timeout`: over PCIe nothing connects, the driver finds the function.
pub fn find_pcie_controller(root: &Path, nqn: &str, timeout: Duration) -> io::Result<Connected> {
    let start = Instant::now();
    loop {
        let class = root.join("class/nvme");
        if let Ok(dir) = std::fs::read_dir(&class) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(instance) = name.strip_prefix("nvme").and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let d = class.join(&name);
                let a = |n: &str| attr(&d.join(n)).unwrap_or_default();
                if a("transport") == "pcie" && a("subsysnqn") == nqn && a("state") == "live" {
                    let cntlid = a("cntlid").parse().unwrap_or(0);
                    return Ok(Connected { instance, cntlid });
                }
            }
        }
        if start.elapsed() > timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no live PCIe controller of {nqn} after {timeout:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A namespace of a controller as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsDev {
    /// NSID.
    pub nsid: u32,
    /// The block device to use: `nvmeXnY` (the multipath head, or the
    /// namespace itself without native multipath).
    pub block: String,
    /// The per-controller path node, `nvmeXcZnY`, if native multipath made
    /// one.
    pub path: Option<String>,
}

impl NsDev {
    /// `/dev/<block>`.
    pub fn dev_path(&self) -> PathBuf {
        Path::new("/dev").join(&self.block)
    }
}

impl fmt::Display for NsDev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nsid {} /dev/{}", self.nsid, self.block)?;
        if let Some(p) = &self.path {
            write!(f, " (path {p})")?;
        }
        Ok(())
    }
}

/// Split `nvme<X>[c<Z>]n<Y>` into (X, Z, Y).
pub fn parse_ns_name(name: &str) -> Option<(u32, Option<u32>, u32)> {
    let rest = name.strip_prefix("nvme")?;
    let digits = |s: &str| -> Option<(u32, usize)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n > 0).then(|| s[..n].parse().ok().map(|v| (v, n)))?
    };
    let (x, n) = digits(rest)?;
    let mut rest = &rest[n..];
    let mut z = None;
    if let Some(r) = rest.strip_prefix('c') {
        let (v, n) = digits(r)?;
        z = Some(v);
        rest = &r[n..];
    }
    let r = rest.strip_prefix('n')?;
    let (y, n) = digits(r)?;
    (n == r.len()).then_some((x, z, y))
}

/// The namespaces sysfs lists under `<root>/class/nvme/nvme<instance>`.
pub fn namespaces(root: &Path, instance: u32) -> io::Result<Vec<NsDev>> {
    let dir = root.join("class/nvme").join(format!("nvme{instance}"));
    let mut out = Vec::new();
    for e in fs::read_dir(&dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let Some((x, z, y)) = parse_ns_name(&name) else {
            continue;
        };
        // The n<Y> of a name is the namespace head's instance in its
        // subsystem, which follows discovery order, not the NSID: the
        // `nsid` attribute says which namespace it is.
        let nsid = attr(&dir.join(&name).join("nsid"))
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(y);
        let ns = match z {
            Some(_) => NsDev {
                nsid,
                block: format!("nvme{x}n{y}"),
                path: Some(name),
            },
            None => NsDev {
                nsid,
                block: name,
                path: None,
            },
        };
        out.push(ns);
    }
    out.sort_by_key(|n| n.nsid);
    Ok(out)
}

/// Read a sysfs attribute, trimmed.
pub fn attr(p: &Path) -> io::Result<String> {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

/// `<root>/class/nvme/nvme<instance>`.
pub fn ctrl_dir(root: &Path, instance: u32) -> PathBuf {
    root.join("class/nvme").join(format!("nvme{instance}"))
}

/// Wait up to `timeout` until controller `instance` is `live` and every
/// NSID in `nsids` has a block device with a `/dev` node and a non-zero
/// size. Returns what was found and how long it took, whether complete
/// or not.
pub fn wait_for_namespaces(
    root: &Path,
    dev_root: &Path,
    instance: u32,
    nsids: &[u32],
    timeout: Duration,
) -> (Vec<NsDev>, Duration) {
    let start = Instant::now();
    loop {
        let live = attr(&ctrl_dir(root, instance).join("state")).is_ok_and(|s| s == "live");
        let found = namespaces(root, instance).unwrap_or_default();
        let ready = live
            && nsids.iter().all(|id| {
                found.iter().any(|n| {
                    n.nsid == *id
                        && dev_root.join(&n.block).exists()
                        && attr(&root.join("block").join(&n.block).join("size"))
                            .is_ok_and(|s| s != "0")
                })
            });
        if ready || start.elapsed() >= timeout {
            return (found, start.elapsed());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Disconnect controller `instance` and wait until its sysfs directory is
/// gone. Returns how long that took.
pub fn delete_controller(root: &Path, instance: u32, timeout: Duration) -> io::Result<Duration> {
    let dir = ctrl_dir(root, instance);
    let start = Instant::now();
    fs::write(dir.join("delete_controller"), "1").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{}/delete_controller: {e}", dir.display()),
        )
    })?;
    while dir.exists() {
        if start.elapsed() >= timeout {
            return Err(io::Error::other(format!(
                "{} still there {:?} after delete_controller",
                dir.display(),
                start.elapsed()
            )));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(start.elapsed())
}

/// Size of the discovery log page header and of each entry (NVMe Base
/// 2.1, Figures 'Discovery Log Page' and 'Discovery Log Page Entry').
pub const DISC_RECORD: usize = 1024;

/// One Discovery Log Page Entry, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscEntry {
    /// Transport Type (3 = TCP).
    pub trtype: u8,
    /// Address Family (1 = IPv4).
    pub adrfam: u8,
    /// Subsystem Type (1 referral, 2 NVM subsystem, 3 current discovery).
    pub subtype: u8,
    pub portid: u16,
    pub cntlid: u16,
    pub trsvcid: String,
    pub subnqn: String,
    pub traddr: String,
}

impl fmt::Display for DiscEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trtype {} adrfam {} subtype {} portid {} trsvcid {} traddr {} subnqn {}",
            self.trtype,
            self.adrfam,
            self.subtype,
            self.portid,
            self.trsvcid,
            self.traddr,
            self.subnqn
        )
    }
}

fn field(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// The header: (GENCTR, NUMREC).
pub fn parse_disc_header(b: &[u8]) -> Result<(u64, u64), String> {
    if b.len() < 16 {
        return Err(format!("discovery log of {} bytes", b.len()));
    }
    let mut g = [0; 8];
    g.copy_from_slice(&b[0..8]);
    let mut n = [0; 8];
    n.copy_from_slice(&b[8..16]);
    Ok((u64::from_le_bytes(g), u64::from_le_bytes(n)))
}

/// Decode one 1024-byte entry: TRTYPE 0, ADRFAM 1, SUBTYPE 2, PORTID 5:4,
/// CNTLID 7:6, TRSVCID 63:32, SUBNQN 511:256, TRADDR 767:512.
pub fn parse_disc_entry(e: &[u8]) -> Result<DiscEntry, String> {
    if e.len() < DISC_RECORD {
        return Err(format!("discovery entry of {} bytes", e.len()));
    }
    Ok(DiscEntry {
        trtype: e[0],
        adrfam: e[1],
        subtype: e[2],
        portid: u16::from_le_bytes([e[4], e[5]]),
        cntlid: u16::from_le_bytes([e[6], e[7]]),
        trsvcid: field(&e[32..64]),
        subnqn: field(&e[256..512]),
        traddr: field(&e[512..768]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> NvmeTarget {
        NvmeTarget {
            pcie: false,
            traddr: "10.0.2.2".into(),
            trsvcid: 4420,
            nqn: "nqn.2026-11.dev.zonecopy:sub0".into(),
        }
    }

    #[test]
    fn host_identity_and_options() {
        let h = HostId::from_uuid("3F2504E0-4F89-41D3-9A0C-0305E82C3301\n").unwrap();
        assert_eq!(
            h.hostnqn,
            "nqn.2014-08.org.nvmexpress:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301"
        );
        assert_eq!(h.hostid, "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
        assert_eq!(
            connect_options(&target(), "nqn.2026-11.dev.zonecopy:sub0", &h),
            "transport=tcp,traddr=10.0.2.2,trsvcid=4420,nqn=nqn.2026-11.dev.zonecopy:sub0,\
             hostnqn=nqn.2014-08.org.nvmexpress:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301,\
             hostid=3f2504e0-4f89-41d3-9a0c-0305e82c3301"
        );
        assert!(HostId::from_uuid("not-a-uuid").is_err());
        let g = HostId::generate();
        assert!(is_uuid(&g.hostid), "{g:?}");
        assert!(g.hostnqn.ends_with(&g.hostid));
    }

    #[test]
    fn connect_answer() {
        assert_eq!(
            parse_connected("instance=3,cntlid=17\n"),
            Ok(Connected {
                instance: 3,
                cntlid: 17
            })
        );
        assert!(parse_connected("instance=3\n").is_err());
        assert!(parse_connected("").is_err());
    }

    #[test]
    fn namespace_names() {
        assert_eq!(parse_ns_name("nvme0n1"), Some((0, None, 1)));
        assert_eq!(parse_ns_name("nvme1c2n13"), Some((1, Some(2), 13)));
        for bad in [
            "nvme0",
            "nvme0n",
            "nvme0n1p1",
            "ng0n1",
            "nvmec1n1",
            "nvme0c0",
        ] {
            assert_eq!(parse_ns_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn namespaces_from_a_fake_sysfs() {
        let root = std::env::temp_dir().join(format!("zonecopy-nvme-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let c = ctrl_dir(&root, 2);
        for d in ["nvme0c2n2", "nvme0c2n1", "hwmon3", "power"] {
            fs::create_dir_all(c.join(d)).unwrap();
        }
        // Head instances in discovery order: n1 is NSID 2, n2 NSID 1.
        fs::write(c.join("nvme0c2n1/nsid"), "2\n").unwrap();
        fs::write(c.join("nvme0c2n2/nsid"), "1\n").unwrap();
        fs::write(c.join("state"), "live\n").unwrap();
        let ns = namespaces(&root, 2).unwrap();
        assert_eq!(
            ns,
            vec![
                NsDev {
                    nsid: 1,
                    block: "nvme0n2".into(),
                    path: Some("nvme0c2n2".into())
                },
                NsDev {
                    nsid: 2,
                    block: "nvme0n1".into(),
                    path: Some("nvme0c2n1".into())
                },
            ]
        );
        assert_eq!(ns[0].to_string(), "nsid 1 /dev/nvme0n2 (path nvme0c2n2)");
        // No /dev nodes in the fake tree: the wait gives up, bounded.
        let (found, took) = wait_for_namespaces(
            &root,
            &root.join("dev"),
            2,
            &[1],
            Duration::from_millis(150),
        );
        assert_eq!(found.len(), 2);
        assert!(took >= Duration::from_millis(150));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn discovery_log() {
        let mut b = vec![0u8; 2 * DISC_RECORD];
        b[0..8].copy_from_slice(&7u64.to_le_bytes());
        b[8..16].copy_from_slice(&1u64.to_le_bytes());
        let e = &mut b[DISC_RECORD..];
        e[0] = 3;
        e[1] = 1;
        e[2] = 2;
        e[4..6].copy_from_slice(&1u16.to_le_bytes());
        e[6..8].copy_from_slice(&0xFFFFu16.to_le_bytes());
        e[32..36].copy_from_slice(b"4420");
        e[256..265].copy_from_slice(b"nqn.a:sub");
        e[512..520].copy_from_slice(b"10.0.2.2");
        assert_eq!(parse_disc_header(&b), Ok((7, 1)));
        let d = parse_disc_entry(&b[DISC_RECORD..]).unwrap();
        assert_eq!(
            d,
            DiscEntry {
                trtype: 3,
                adrfam: 1,
                subtype: 2,
                portid: 1,
                cntlid: 0xFFFF,
                trsvcid: "4420".into(),
                subnqn: "nqn.a:sub".into(),
                traddr: "10.0.2.2".into(),
            }
        );
        assert!(parse_disc_entry(&b[..100]).is_err());
        assert!(parse_disc_header(&b[..8]).is_err());
    }
}
