//! Accelerator choice. `auto` is TCG unless a probe boot under KVM reaches
//! userspace; the probe result is cached per (kernel image, QEMU version)
//! under `$ZONECOPY_CACHE/accel-probe/`, so it costs one boot, once.
//! (DESIGN.md: the nested KVM on these machines aborts QEMU, so auto ends
//! on TCG there.)

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use clap::ValueEnum;

use crate::{
    initramfs,
    kernel::Kernel,
    proc,
    qemu::{cmdline, Accel, QemuConfig},
    timing,
    util::Fnv,
    vm::{self, VmSpec},
};

/// `--accel`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelChoice {
    /// TCG unless a (cached) KVM probe boot reaches userspace.
    Auto,
    /// Always TCG (emulation).
    Tcg,
    /// Always KVM, no probe.
    Kvm,
}

/// How long a probe boot may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// `qemu-system-x86_64 --version`, first line.
fn qemu_version(qemu: &Path) -> String {
    Command::new(qemu)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_default()
}

/// The cache key: kernel path, size and mtime, and QEMU's version.
pub fn probe_key(kernel: &Path, qemu_version: &str) -> String {
    let mut h = Fnv::default();
    let canon = fs::canonicalize(kernel).unwrap_or_else(|_| kernel.to_path_buf());
    h.add(canon.as_os_str().as_encoded_bytes());
    if let Ok(m) = fs::metadata(&canon) {
        h.add(&m.len().to_le_bytes()).add(&m.mtime().to_le_bytes());
    }
    h.add(qemu_version.as_bytes());
    h.hex()
}

/// Parses a cached probe result.
fn parse_cached(text: &str) -> Option<Accel> {
    match text.split_whitespace().next()? {
        "kvm" => Some(Accel::Kvm),
        "tcg" => Some(Accel::Tcg),
        _ => None,
    }
}

/// Picks the accelerator for `kernel`. Probe output goes to `work` (a
/// temp dir); progress to stderr.
pub fn choose(
    choice: AccelChoice,
    kernel: &Kernel,
    qemu: &Path,
    bios: Option<&Path>,
    cache: &Path,
    work: &Path,
) -> Accel {
    match choice {
        AccelChoice::Tcg => return Accel::Tcg,
        AccelChoice::Kvm => return Accel::Kvm,
        AccelChoice::Auto => {}
    }
    // No usable /dev/kvm: nothing to probe.
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Accel::Tcg;
    }
    let key = probe_key(&kernel.image, &qemu_version(qemu));
    let cache_file = cache.join("accel-probe").join(&key);
    if let Some(a) = fs::read_to_string(&cache_file)
        .ok()
        .as_deref()
        .and_then(parse_cached)
    {
        return a;
    }
    eprintln!(
        "accel: probing KVM with {} (at most {}) ...",
        kernel.image.display(),
        timing::secs(PROBE_TIMEOUT)
    );
    let started = Instant::now();
    let (accel, why) = match probe(kernel, qemu, bios, work, Accel::Kvm, PROBE_TIMEOUT) {
        Ok((true, _)) => (Accel::Kvm, "guest reached userspace".to_owned()),
        Ok((false, detail)) => (Accel::Tcg, format!("guest did not reach userspace{detail}")),
        Err(e) => (Accel::Tcg, format!("probe failed: {e}")),
    };
    if proc::interrupted().is_some() {
        // Not a real answer: do not cache it.
        return Accel::Tcg;
    }
    eprintln!(
        "accel: {} ({why}, {}); cached in {}",
        accel.name(),
        timing::secs(started.elapsed()),
        cache_file.display()
    );
    let _ = fs::create_dir_all(cache_file.parent().unwrap_or(cache))
        .and_then(|()| fs::write(&cache_file, format!("{}\n{why}\n", accel.name())));
    accel
}

/// One boot under KVM with the probe image; true if userspace ran, else
/// QEMU's last complaint.
fn probe(
    kernel: &Kernel,
    qemu: &Path,
    bios: Option<&Path>,
    work: &Path,
    accel: Accel,
    timeout: Duration,
) -> std::io::Result<(bool, String)> {
    let dir = work.join("accel-probe");
    fs::create_dir_all(&dir)?;
    let image =
        initramfs::write_probe_image(Path::new("/usr/bin/busybox"), &dir.join("probe.cpio"))
            .map_err(std::io::Error::other)?;
    let spec = VmSpec {
        qemu: QemuConfig {
            bios: bios.map(PathBuf::from),
            accel,
            memory_mib: 256,
            ..QemuConfig::bare(
                qemu.to_path_buf(),
                kernel.image.clone(),
                image,
                cmdline(&Default::default(), ""),
            )
        },
        timeout: Some(timeout),
        echo: false,
        console_log: dir.join("console.log"),
        qemu_log: dir.join("qemu.log"),
        poweroff_grace: Duration::from_secs(1),
        stop_on: Some(initramfs::PROBE_MARKER.to_owned()),
        stop_after_results: None,
    };
    let o = vm::run(&spec)?;
    let mut detail = vm::log_tail(&spec.qemu_log, 1);
    if detail.is_empty() && o.timed_out.is_some() {
        detail = format!("timed out after {}", timing::secs(timeout));
    }
    if !detail.is_empty() {
        detail = format!(": {detail}");
    }
    Ok((o.stopped_on_marker, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_values() {
        assert_eq!(
            parse_cached("kvm\nguest reached userspace\n"),
            Some(Accel::Kvm)
        );
        assert_eq!(parse_cached("tcg\n"), Some(Accel::Tcg));
        assert_eq!(parse_cached(""), None);
        assert_eq!(parse_cached("garbage"), None);
    }

    #[test]
    fn key_depends_on_kernel_and_qemu() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("vmlinux");
        fs::write(&k, b"one").unwrap();
        let a = probe_key(&k, "QEMU 10.0.2");
        assert_eq!(a, probe_key(&k, "QEMU 10.0.2"));
        assert_ne!(a, probe_key(&k, "QEMU 9.2"));
        fs::write(&k, b"longer").unwrap();
        assert_ne!(a, probe_key(&k, "QEMU 10.0.2"));
    }

    /// The probe image really boots to userspace (under TCG, so it runs on
    /// any machine with QEMU and a cached kernel).
    #[test]
    #[ignore = "boots QEMU: needs qemu-system-x86_64, busybox-static and a cached 6.1 kernel"]
    fn probe_image_reaches_userspace_under_tcg() {
        let kernel = crate::kernel::resolve(
            "6.1",
            None,
            &crate::kernel::cache_dir(),
            Path::new("/nonexistent"),
        )
        .unwrap();
        let work = tempfile::tempdir().unwrap();
        let (ok, detail) = probe(
            &kernel,
            Path::new("qemu-system-x86_64"),
            Some(Path::new(crate::qemu::DEFAULT_BIOS)),
            work.path(),
            Accel::Tcg,
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(ok, "{detail}");
    }
}
