//! Setting the peers up in the guest: scsi_debug loaded with our LUN's
//! geometry, and LIO fileio logical units behind tcm_loop configured
//! through configfs (recipes measured in /work/shared/PEERS.md). Every
//! set-up has a teardown that undoes it (unload, rmdir, remove files).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::{
    blockio,
    cmdline::{LunKind, LunSpec},
    sysfs::{self, Disk},
};

const MIB: u64 = 1 << 20;
/// How long a peer's disk may take to appear or go.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {} {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

fn whole_mib(what: &str, bytes: u64) -> Result<u64, String> {
    if bytes == 0 || !bytes.is_multiple_of(MIB) {
        return Err(format!(
            "{what} {bytes} is not a whole number of MiB (scsi_debug's unit)"
        ));
    }
    Ok(bytes / MIB)
}

/// The scsi_debug module parameters that give the geometry of `spec`
/// (with `max_open` from our VPD B6h; `None`: no limit).
pub fn scsi_debug_params(spec: &LunSpec, max_open: Option<u32>) -> Result<Vec<String>, String> {
    let z = spec.zones.ok_or("not a zoned LUN")?;
    let model = match spec.kind {
        LunKind::HostManaged => "host-managed",
        LunKind::HostAware => "host-aware",
        LunKind::Disk => return Err("not a zoned LUN".into()),
    };
    let mut p = vec![
        format!("zbc={model}"),
        format!("dev_size_mb={}", whole_mib("size", spec.size)?),
        format!("zone_size_mb={}", whole_mib("zone size", z.zone_size)?),
        format!("zone_nr_conv={}", z.conventional),
        format!("sector_size={}", spec.block_size),
        // Without delay=0 every command waits ~4 ms.
        "delay=0".into(),
    ];
    if z.capacity != z.zone_size {
        p.push(format!(
            "zone_cap_mb={}",
            whole_mib("zone capacity", z.capacity)?
        ));
    }
    if spec.kind == LunKind::HostManaged {
        p.push(format!("zone_max_open={}", max_open.unwrap_or(0)));
    }
    Ok(p)
}

/// Wait for a disk matching `pick` to appear (`Some`) with its /dev node.
fn wait_disk(pick: impl Fn(&Disk) -> bool) -> Result<Disk, String> {
    let t = Instant::now();
    loop {
        let (disks, _) = sysfs::scsi_disks(Path::new("/sys")).unwrap_or_default();
        if let Some(d) = disks
            .into_iter()
            .find(|d| pick(d) && d.sectors > 0 && d.dev_path().exists())
        {
            return Ok(d);
        }
        if t.elapsed() >= SCAN_TIMEOUT {
            return Err("no such disk appeared within 30 s".into());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Is this the scsi_debug disk (INQUIRY vendor "Linux", product
/// "scsi_debug")?
pub fn is_scsi_debug(d: &Disk) -> bool {
    d.vendor == "Linux" && d.model == "scsi_debug"
}

/// A loaded scsi_debug; unloaded on drop.
#[derive(Debug)]
pub struct ScsiDebug {
    /// Its disk.
    pub disk: Disk,
    /// The parameters it was loaded with.
    pub params: Vec<String>,
}

impl ScsiDebug {
    /// Load scsi_debug with `params` and wait for its disk.
    pub fn load(params: Vec<String>) -> Result<Self, String> {
        // A previous instance (another run in this boot) goes first.
        if Path::new("/sys/module/scsi_debug").exists() {
            run("rmmod", &["scsi_debug"])?;
        }
        let mut args = vec!["scsi_debug"];
        args.extend(params.iter().map(String::as_str));
        run("modprobe", &args)?;
        let disk = wait_disk(is_scsi_debug).map_err(|e| format!("scsi_debug: {e}"))?;
        Ok(Self { disk, params })
    }

    /// Open its disk for SG_IO.
    pub fn open(&self) -> Result<fs::File, String> {
        blockio::open_direct(&self.disk.dev_path())
            .map_err(|e| format!("open {}: {e}", self.disk.dev_path().display()))
    }
}

impl Drop for ScsiDebug {
    fn drop(&mut self) {
        if let Err(e) = run("rmmod", &["scsi_debug"]) {
            eprintln!("zonecopy-guest: unloading scsi_debug: {e}");
        }
    }
}

const CONFIGFS: &str = "/sys/kernel/config";
const LOOP_WWN: &str = "naa.50014059d1ff0001";
const NEXUS_WWN: &str = "naa.50014059d1ff0002";

/// LIO fileio logical units exported through tcm_loop; torn down on drop.
#[derive(Debug)]
pub struct Lio {
    names: Vec<String>,
    files: Vec<PathBuf>,
    tpg: PathBuf,
    /// The disks, in the order asked for.
    pub disks: Vec<Disk>,
}

fn write(p: &Path, v: &str) -> Result<(), String> {
    fs::write(p, v).map_err(|e| format!("write {v:?} to {}: {e}", p.display()))
}

fn mkdir(p: &Path) -> Result<(), String> {
    fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

impl Lio {
    /// Create `count` fileio LUs of `size` bytes and `block_size`-byte
    /// blocks in /tmp, export them as LUNs 0.. of one loopback target.
    /// Unit serials differ in their first digit: LIO builds its NAA
    /// designator from the serial's first 25 hex digits only.
    pub fn setup(count: usize, size: u64, block_size: u64) -> Result<Self, String> {
        let cfg = Path::new(CONFIGFS);
        if !cfg.join("target").exists() {
            if !cfg.exists() {
                return Err(format!("{CONFIGFS} missing (no configfs)"));
            }
            run("mount", &["-t", "configfs", "configfs", CONFIGFS])?;
        }
        let target = cfg.join("target");
        if !target.exists() {
            return Err("no /sys/kernel/config/target: target_core_mod not loaded".into());
        }
        let tpg = target.join("loopback").join(LOOP_WWN).join("tpgt_1");
        let mut me = Self {
            names: Vec::new(),
            files: Vec::new(),
            tpg: tpg.clone(),
            disks: Vec::new(),
        };
        for i in 0..count {
            let name = format!("zcdiff{i}");
            let file = PathBuf::from(format!("/tmp/{name}.img"));
            let dev = target.join("core/fileio_0").join(&name);
            mkdir(&dev)?;
            me.names.push(name.clone());
            me.files.push(file.clone());
            write(
                &dev.join("control"),
                &format!("fd_dev_name={},fd_dev_size={size}", file.display()),
            )?;
            write(
                &dev.join("wwn/vpd_unit_serial"),
                &format!("{:x}0c0ffee{i:08x}", i + 1),
            )?;
            write(&dev.join("enable"), "1")?;
            write(&dev.join("attrib/block_size"), &block_size.to_string())?;
        }
        mkdir(&tpg)?;
        write(&tpg.join("nexus"), NEXUS_WWN)?;
        for (i, name) in me.names.iter().enumerate() {
            let lun = tpg.join(format!("lun/lun_{i}"));
            mkdir(&lun)?;
            let dev = target.join("core/fileio_0").join(name);
            std::os::unix::fs::symlink(&dev, lun.join(name))
                .map_err(|e| format!("link {}: {e}", lun.display()))?;
        }
        for i in 0..count {
            let d = wait_disk(|d| d.vendor == "LIO-ORG" && d.addr.lun == i as u64)
                .map_err(|e| format!("LIO LUN {i}: {e}"))?;
            me.disks.push(d);
        }
        Ok(me)
    }
}

impl Drop for Lio {
    fn drop(&mut self) {
        let target = Path::new(CONFIGFS).join("target");
        for (i, name) in self.names.iter().enumerate() {
            let lun = self.tpg.join(format!("lun/lun_{i}"));
            let _ = fs::remove_file(lun.join(name));
            let _ = fs::remove_dir(&lun);
        }
        let _ = fs::remove_dir(&self.tpg);
        if let Some(wwn) = self.tpg.parent() {
            let _ = fs::remove_dir(wwn);
        }
        for name in &self.names {
            let _ = fs::remove_dir(target.join("core/fileio_0").join(name));
        }
        let _ = fs::remove_dir(target.join("core/fileio_0"));
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
        let left: Vec<String> = [self.tpg.clone(), target.join("core/fileio_0")]
            .into_iter()
            .chain(self.files.iter().cloned())
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !left.is_empty() {
            eprintln!("zonecopy-guest: LIO teardown left {}", left.join(", "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::parse_lun;

    #[test]
    fn params_from_our_geometry() {
        let hm = parse_lun("hm:bs=4096,size=67108864,zone=2097152,cap=1048576,conv=2").unwrap();
        assert_eq!(
            scsi_debug_params(&hm, Some(4)).unwrap().join(" "),
            "zbc=host-managed dev_size_mb=64 zone_size_mb=2 zone_nr_conv=2 sector_size=4096 \
             delay=0 zone_cap_mb=1 zone_max_open=4"
        );
        let ha = parse_lun("ha:bs=4096,size=33554432,zone=2097152,conv=1").unwrap();
        assert_eq!(
            scsi_debug_params(&ha, None).unwrap().join(" "),
            "zbc=host-aware dev_size_mb=32 zone_size_mb=2 zone_nr_conv=1 sector_size=4096 delay=0"
        );
        let odd = parse_lun("hm:bs=4096,size=67108864,zone=2097152,cap=1572864").unwrap();
        assert!(scsi_debug_params(&odd, None).unwrap_err().contains("MiB"));
        let disk = parse_lun("disk:bs=512,size=1048576").unwrap();
        assert!(scsi_debug_params(&disk, None).is_err());
    }
}
