//! fio on QEMU's own NVMe controller over PCIe (`-device nvme`), the
//! reference of our NVMe-over-PCIe controller's numbers: the runner
//! attaches two when the bench suite's NVMe transport is PCIe
//! (`zonecopy.nvmeref=`, ci/src/qemu.rs `NvmeRef`), each with one
//! namespace the size and block size of ours, on raw files with
//! `aio=io_uring`: serial [`NVME_REF_SERIAL`] with `cache=none` (the
//! production setting) and [`NVME_REF_WB_SERIAL`] with `cache=writeback`
//! (the host page cache, as our backend uses it). The interleaved fio
//! test ([`super::fioset`]) measures them with the others: `# bench
//! nvme-vs-qemunvme[-wb]` give ours / QEMU's for each fio job.

use std::{
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::cmdline::LunSpec;

/// Serial Number of the `cache=none` reference (ci `qemu::NVME_REF_SERIAL`).
pub const NVME_REF_SERIAL: &str = "ZCNVMEREF";
/// Likewise of the `cache=writeback` one.
pub const NVME_REF_WB_SERIAL: &str = "ZCNVMEREF-WB";

/// Is `name` a namespace block device a guest can open: `nvme<C>n<N>`
/// (a multipath head or a namespace without native multipath), not a
/// hidden path `nvme<S>c<C>n<N>`?
pub fn is_namespace_disk(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("nvme") else {
        return false;
    };
    let Some((ctrl, ns)) = rest.split_once('n') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(ctrl) && digits(ns)
}

/// The namespace disk under `sys`/block whose controller (or, for a
/// multipath head, subsystem) reports Serial Number `serial`.
pub fn find_disk(sys: &Path, serial: &str) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(sys.join("block"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_namespace_disk(n))
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        fs::read_to_string(sys.join("block").join(n).join("device/serial"))
            .is_ok_and(|s| s.trim() == serial)
    })
}

/// Wait for the reference namespace with `serial` (nvme-pci probes it
/// asynchronously).
fn wait_disk(sys: &Path, serial: &str) -> Result<PathBuf, String> {
    let start = Instant::now();
    loop {
        if let Some(n) = find_disk(sys, serial) {
            let p = PathBuf::from("/dev").join(&n);
            if p.exists() {
                return Ok(p);
            }
        }
        if start.elapsed() >= crate::smoke::DISCOVERY_TIMEOUT {
            return Err(format!(
                "no NVMe namespace of a controller with serial {serial} after {:?} \
                 (is nvme-pci loaded?)",
                start.elapsed()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// QEMU's NVMe namespace (`cache=none`, or `cache=writeback` with
/// `wb`), checked against the geometry the runner announced (`spec`).
pub(super) fn reference(sys: &Path, spec: LunSpec, wb: bool) -> Result<PathBuf, String> {
    let serial = if wb {
        NVME_REF_WB_SERIAL
    } else {
        NVME_REF_SERIAL
    };
    let path = wait_disk(sys, serial)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let block = sys.join("block").join(&name);
    let read = |f: &Path| {
        fs::read_to_string(f)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    let sectors = read(&block.join("size"));
    let lbs = read(&block.join("queue/logical_block_size"));
    if sectors.map(|s| s * 512) != Some(spec.size) || lbs != Some(spec.block_size) {
        return Err(format!(
            "{name} (serial {serial}): {sectors:?} sectors of 512, {lbs:?}-byte blocks; \
             configured {} bytes of {}",
            spec.size, spec.block_size
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_disks_not_hidden_paths() {
        for ok in ["nvme0n1", "nvme12n3"] {
            assert!(is_namespace_disk(ok), "{ok}");
        }
        for no in ["nvme0c0n1", "nvme0", "nvmen1", "nvme0n", "sda", "nvme0n1p1"] {
            assert!(!is_namespace_disk(no), "{no}");
        }
    }

    struct Tree(PathBuf);
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn finds_the_disk_by_serial() {
        let root = std::env::temp_dir().join(format!("zonecopy-nvmeref-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let d = Tree(root);
        for (disk, serial) in [
            ("nvme0n1", "ZC0001"),
            ("nvme1c1n1", NVME_REF_SERIAL),
            ("nvme1n1", NVME_REF_SERIAL),
            ("nvme2n1", "ZCNVMEREF-WB  "),
        ] {
            let dev = d.0.as_path().join("block").join(disk).join("device");
            fs::create_dir_all(&dev).unwrap();
            fs::write(dev.join("serial"), format!("{serial}\n")).unwrap();
        }
        assert_eq!(
            find_disk(d.0.as_path(), NVME_REF_SERIAL).as_deref(),
            Some("nvme1n1")
        );
        assert_eq!(
            find_disk(d.0.as_path(), NVME_REF_WB_SERIAL).as_deref(),
            Some("nvme2n1")
        );
        assert_eq!(find_disk(d.0.as_path(), "NOPE"), None);
    }
}
