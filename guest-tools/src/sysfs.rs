//! SCSI disk discovery through sysfs: `/sys/block/sd*`, the SCSI address
//! H:C:T:L at the end of the `device` link's target, the host's driver
//! (`/sys/class/scsi_host/hostH/proc_name`) and the queue attributes the
//! suites check. The root is a parameter so tests use a fake tree.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

/// A SCSI address `host:channel:target:lun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScsiAddr {
    /// Host adapter number (the N of `hostN`).
    pub host: u32,
    /// Channel (bus).
    pub channel: u32,
    /// Target id.
    pub target: u32,
    /// Logical unit number.
    pub lun: u64,
}

impl fmt::Display for ScsiAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.host, self.channel, self.target, self.lun
        )
    }
}

impl ScsiAddr {
    /// Parse `H:C:T:L`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split(':');
        let a = Self {
            host: it.next()?.parse().ok()?,
            channel: it.next()?.parse().ok()?,
            target: it.next()?.parse().ok()?,
            lun: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(a)
    }
}

/// One `/sys/block/sdX` and what the suites check about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name, e.g. `sda`.
    pub name: String,
    /// SCSI address.
    pub addr: ScsiAddr,
    /// `proc_name` of the SCSI host (`virtio_scsi`, `scsi_debug`, ...).
    pub host_driver: String,
    /// `device/vendor`, trimmed.
    pub vendor: String,
    /// `device/model`, trimmed.
    pub model: String,
    /// `queue/zoned`: `none`, `host-aware` or `host-managed`.
    pub zoned: String,
    /// `queue/nr_zones` (absent on kernels without zoned support).
    pub nr_zones: Option<u64>,
    /// `queue/chunk_sectors`.
    pub chunk_sectors: u64,
    /// `queue/logical_block_size` in bytes.
    pub logical_block_size: u64,
    /// `size` in 512-byte sectors.
    pub sectors: u64,
}

impl Disk {
    /// `/dev/<name>`.
    pub fn dev_path(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}) {:?} {:?} zoned={} nr_zones={} chunk_sectors={} lbs={} sectors={}",
            self.name,
            self.addr,
            self.host_driver,
            self.vendor,
            self.model,
            self.zoned,
            self.nr_zones
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            self.chunk_sectors,
            self.logical_block_size,
            self.sectors
        )
    }
}

fn read_str(p: &Path) -> io::Result<String> {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

fn read_u64(p: &Path) -> io::Result<u64> {
    let s = read_str(p)?;
    s.parse()
        .map_err(|_| io::Error::other(format!("{}: {s:?} is not a number", p.display())))
}

/// The SCSI address of a block device directory: the last component of the
/// `device` link's target, or else `device/scsi_device/<H:C:T:L>`.
fn scsi_addr(dir: &Path) -> io::Result<ScsiAddr> {
    if let Ok(target) = fs::read_link(dir.join("device")) {
        if let Some(a) = target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(ScsiAddr::parse)
        {
            return Ok(a);
        }
    }
    let sd = dir.join("device/scsi_device");
    for e in
        fs::read_dir(&sd).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", sd.display())))?
    {
        if let Some(a) = e?.file_name().to_str().and_then(ScsiAddr::parse) {
            return Ok(a);
        }
    }
    Err(io::Error::other(format!(
        "{}: no SCSI address",
        dir.display()
    )))
}

/// Read one `<root>/block/<name>`; `root` is normally `/sys`.
pub fn read_disk(root: &Path, name: &str) -> io::Result<Disk> {
    let dir = root.join("block").join(name);
    let addr = scsi_addr(&dir)?;
    let host_driver = read_str(
        &root
            .join("class/scsi_host")
            .join(format!("host{}", addr.host))
            .join("proc_name"),
    )
    .unwrap_or_default();
    let q = dir.join("queue");
    let nr_zones = match read_u64(&q.join("nr_zones")) {
        Ok(n) => Some(n),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    Ok(Disk {
        name: name.to_string(),
        addr,
        host_driver,
        vendor: read_str(&dir.join("device/vendor")).unwrap_or_default(),
        model: read_str(&dir.join("device/model")).unwrap_or_default(),
        zoned: read_str(&q.join("zoned"))?,
        nr_zones,
        chunk_sectors: read_u64(&q.join("chunk_sectors"))?,
        logical_block_size: read_u64(&q.join("logical_block_size"))?,
        sectors: read_u64(&dir.join("size"))?,
    })
}

/// All `sd*` disks under `<root>/block`, sorted by SCSI address. Disks that
/// cannot be read are returned as errors beside the good ones.
pub fn scsi_disks(root: &Path) -> io::Result<(Vec<Disk>, Vec<io::Error>)> {
    let mut disks = Vec::new();
    let mut errors = Vec::new();
    for e in fs::read_dir(root.join("block"))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if !name.starts_with("sd") {
            continue;
        }
        match read_disk(root, &name) {
            Ok(d) => disks.push(d),
            Err(e) => errors.push(e),
        }
    }
    disks.sort_by_key(|d| d.addr);
    Ok((disks, errors))
}

/// Pick the disk of LUN `lun` on target 0. If several hosts have one (say
/// `scsi_debug` beside the backend's `virtio_scsi`), prefer `virtio_scsi`;
/// if still ambiguous, an error lists the candidates.
pub fn pick_lun(disks: &[Disk], lun: u64) -> Result<&Disk, String> {
    let all: Vec<&Disk> = disks
        .iter()
        .filter(|d| d.addr.lun == lun && d.addr.target == 0)
        .collect();
    let virtio: Vec<&Disk> = all
        .iter()
        .copied()
        .filter(|d| d.host_driver == "virtio_scsi")
        .collect();
    let pick = if virtio.is_empty() { all } else { virtio };
    match pick.as_slice() {
        [d] => Ok(d),
        [] => Err(format!(
            "no disk with LUN {lun} on target 0 (found: {})",
            if disks.is_empty() {
                "none".to_string()
            } else {
                disks
                    .iter()
                    .map(|d| format!("{} {}", d.name, d.addr))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
        many => Err(format!(
            "LUN {lun} is ambiguous: {}",
            many.iter()
                .map(|d| format!("{} {} ({})", d.name, d.addr, d.host_driver))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Wait up to `timeout` until every LUN in `luns` maps to a disk (SCSI
/// scanning is asynchronous: /init may run before it ends) whose `/dev`
/// node exists. Returns the last scan either way.
pub fn wait_for_luns(root: &Path, luns: &[u64], timeout: Duration) -> (Vec<Disk>, Vec<io::Error>) {
    let start = Instant::now();
    loop {
        let (disks, errors) = scsi_disks(root).unwrap_or_else(|e| (Vec::new(), vec![e]));
        let ready = luns
            .iter()
            .all(|&l| pick_lun(&disks, l).is_ok_and(|d| d.sectors > 0 && d.dev_path().exists()));
        if ready || start.elapsed() >= timeout {
            return (disks, errors);
        }
        // Short: the scan usually ends within a few polls of /init's
        // modprobe, and every poll past it delays the first test.
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree(PathBuf);
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(p: PathBuf, s: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }

    /// A fake /sys with the kernel's layout for one disk.
    fn fake_disk(root: &Path, name: &str, hctl: &str, driver: &str, zoned: &str, via_link: bool) {
        let host = hctl.split(':').next().unwrap();
        let dev = root.join(format!(
            "devices/pci0000:00/0000:00:03.0/virtio0/host{host}/target{host}:0:0/{hctl}"
        ));
        write(dev.join("vendor"), "ZONECOPY\n");
        write(dev.join("model"), "ZBC disk        \n");
        fs::create_dir_all(dev.join("scsi_device").join(hctl)).unwrap();
        let blk = root.join("block").join(name);
        fs::create_dir_all(blk.join("queue")).unwrap();
        if via_link {
            std::os::unix::fs::symlink(&dev, blk.join("device")).unwrap();
        } else {
            // No parsable link target: fall back to device/scsi_device/.
            let other = root.join("elsewhere").join(name);
            fs::create_dir_all(&other).unwrap();
            std::os::unix::fs::symlink(&dev, other.join("dev")).unwrap();
            std::os::unix::fs::symlink(other.join("dev"), blk.join("device")).unwrap();
        }
        write(blk.join("queue/zoned"), &format!("{zoned}\n"));
        write(blk.join("queue/nr_zones"), "16\n");
        write(blk.join("queue/chunk_sectors"), "8192\n");
        write(blk.join("queue/logical_block_size"), "4096\n");
        write(blk.join("size"), "131072\n");
        write(
            root.join(format!("class/scsi_host/host{host}/proc_name")),
            &format!("{driver}\n"),
        );
    }

    fn tree(tag: &str) -> Tree {
        let p = std::env::temp_dir().join(format!("zonecopy-sysfs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("block")).unwrap();
        Tree(p)
    }

    #[test]
    fn addr_parse() {
        assert_eq!(
            ScsiAddr::parse("2:0:0:5"),
            Some(ScsiAddr {
                host: 2,
                channel: 0,
                target: 0,
                lun: 5
            })
        );
        for bad in ["", "1:2:3", "1:2:3:4:5", "a:0:0:0", "target0:0:0"] {
            assert_eq!(ScsiAddr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn discovers_and_picks() {
        let t = tree("pick");
        fake_disk(&t.0, "sda", "0:0:0:0", "scsi_debug", "host-managed", true);
        fake_disk(&t.0, "sdb", "1:0:0:0", "virtio_scsi", "host-managed", false);
        fake_disk(&t.0, "sdc", "1:0:0:1", "virtio_scsi", "none", true);
        fs::create_dir_all(t.0.join("block/loop0")).unwrap();
        let (disks, errors) = scsi_disks(&t.0).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(disks.len(), 3);
        let a = &disks[0];
        assert_eq!(a.name, "sda");
        assert_eq!(a.vendor, "ZONECOPY");
        assert_eq!(a.model, "ZBC disk");
        assert_eq!(a.zoned, "host-managed");
        assert_eq!(a.nr_zones, Some(16));
        assert_eq!(
            (a.chunk_sectors, a.logical_block_size, a.sectors),
            (8192, 4096, 131072)
        );
        assert_eq!(disks[1].addr.to_string(), "1:0:0:0");
        // LUN 0 exists on two hosts: virtio_scsi wins.
        assert_eq!(pick_lun(&disks, 0).unwrap().name, "sdb");
        assert_eq!(pick_lun(&disks, 1).unwrap().name, "sdc");
        assert!(pick_lun(&disks, 2)
            .unwrap_err()
            .contains("no disk with LUN 2"));
        // Two non-virtio candidates are ambiguous.
        let mut two = vec![disks[0].clone(), disks[0].clone()];
        two[1].addr.host = 5;
        assert!(pick_lun(&two, 0).unwrap_err().contains("ambiguous"));
        assert!(pick_lun(&[], 0).unwrap_err().contains("none"));
    }

    #[test]
    fn unreadable_disk_is_an_error_not_a_panic() {
        let t = tree("bad");
        fake_disk(&t.0, "sda", "0:0:0:0", "virtio_scsi", "host-managed", true);
        write(t.0.join("block/sda/size"), "lots\n");
        fs::create_dir_all(t.0.join("block/sdz")).unwrap();
        let (disks, errors) = scsi_disks(&t.0).unwrap();
        assert!(disks.is_empty());
        assert_eq!(errors.len(), 2);
        assert!(errors
            .iter()
            .any(|e| e.to_string().contains("not a number")));
        assert!(scsi_disks(&t.0.join("nope")).is_err());
    }
}
