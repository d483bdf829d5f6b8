//! Initramfs images: the real one comes from `images/build-initramfs.sh`;
//! the tiny KVM probe image is written here (cpio "newc").

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{initramfs_quick, proc, vm::log_tail};

/// Errors building the initramfs.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("{what} {path} not found{hint}")]
    Missing {
        what: &'static str,
        path: String,
        hint: &'static str,
    },
    #[error("cannot run {script}: {source}")]
    Spawn { script: String, source: io::Error },
    #[error("initramfs build failed ({status}); initramfs.log ends:\n{log}")]
    Failed { status: String, log: String },
    #[error("initramfs build did not finish within {0} s")]
    Timeout(u64),
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Inputs of `build-initramfs.sh`.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    pub script: &'a Path,
    pub guest_bin: &'a Path,
    pub out: &'a Path,
    pub modules_dir: Option<&'a Path>,
    pub modules: Option<&'a str>,
    pub log: &'a Path,
}

/// How long an image build may take.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `build-initramfs.sh --guest-bin .. --out .. [--modules-dir ..]
/// [--modules ..]` (which caches by input hash), output to `log`, unless
/// the runner's own check of the inputs' metadata
/// ([`initramfs_quick::is_current`]) finds the image current.
pub fn build(req: &BuildRequest<'_>) -> Result<(), InitramfsError> {
    if !req.script.is_file() {
        return Err(InitramfsError::Missing {
            what: "initramfs builder",
            path: req.script.display().to_string(),
            hint: " (pass --initramfs-script PATH or a ready image with --initrd FILE)",
        });
    }
    if !req.guest_bin.is_file() {
        return Err(InitramfsError::Missing {
            what: "guest binary",
            path: req.guest_bin.display().to_string(),
            hint: " (build it: RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release \
                   -p zonecopy-guest --target x86_64-unknown-linux-gnu, or pass --guest-bin PATH)",
        });
    }
    if let Some(parent) = req.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let log = File::create(req.log)?;
    let before = initramfs_quick::inputs(req);
    if initramfs_quick::is_current(req, &before) {
        writeln!(
            &log,
            "{} is up to date (the runner's check of its inputs' metadata)",
            req.out.display()
        )?;
        return Ok(());
    }
    let mut cmd = Command::new("bash");
    cmd.arg(req.script)
        .arg("--guest-bin")
        .arg(req.guest_bin)
        .arg("--out")
        .arg(req.out);
    if let Some(m) = req.modules_dir {
        cmd.arg("--modules-dir").arg(m);
    }
    if let Some(m) = req.modules {
        cmd.arg("--modules").arg(m);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    let mut child = proc::spawn(&mut cmd, true).map_err(|source| InitramfsError::Spawn {
        script: req.script.display().to_string(),
        source,
    })?;
    match child.wait_for(BUILD_TIMEOUT, true)? {
        Some(s) if s.success() && req.out.is_file() => {
            initramfs_quick::record(req, &before);
            Ok(())
        }
        Some(s) => Err(InitramfsError::Failed {
            status: s.to_string(),
            log: log_tail(req.log, 15),
        }),
        None if proc::interrupted().is_some() => Err(InitramfsError::Interrupted),
        None => Err(InitramfsError::Timeout(BUILD_TIMEOUT.as_secs())),
    }
    // `child` dropped here: killed (with its group) if still running.
}

/// Writes a cpio "newc" archive.
#[derive(Debug, Default)]
pub struct Newc {
    buf: Vec<u8>,
    ino: u32,
}

fn pad4(buf: &mut Vec<u8>) {
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

impl Newc {
    /// Appends one entry. `mode` includes the file type bits; `rdev` is
    /// (major, minor) for device nodes.
    pub fn entry(
        &mut self,
        name: &str,
        mode: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> io::Result<()> {
        self.ino += 1;
        let size = u32::try_from(data.len()).map_err(io::Error::other)?;
        let namesize = u32::try_from(name.len() + 1).map_err(io::Error::other)?;
        let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
        let fields = [
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        pad4(&mut self.buf);
        self.buf.extend_from_slice(data);
        pad4(&mut self.buf);
        Ok(())
    }

    /// Adds the trailer and returns the archive.
    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[], (0, 0))?;
        Ok(self.buf)
    }
}

/// What the probe image prints once it runs in userspace.
pub const PROBE_MARKER: &str = "zonecopy-probe: userspace reached";

/// Writes the KVM probe initramfs: a static busybox, `/dev/console` and an
/// `/init` that prints [`PROBE_MARKER`] and powers off.
pub fn write_probe_image(busybox: &Path, out: &Path) -> Result<PathBuf, InitramfsError> {
    let bb = std::fs::read(busybox).map_err(|_| InitramfsError::Missing {
        what: "static busybox",
        path: busybox.display().to_string(),
        hint: " (apt-get install busybox-static)",
    })?;
    let init = format!(
        "#!/bin/busybox sh\n/bin/busybox echo '{PROBE_MARKER}'\n/bin/busybox poweroff -f\n"
    );
    let mut c = Newc::default();
    c.entry("dev", 0o040_755, &[], (0, 0))?;
    c.entry("dev/console", 0o020_600, &[], (5, 1))?;
    c.entry("bin", 0o040_755, &[], (0, 0))?;
    c.entry("bin/busybox", 0o100_755, &bb, (0, 0))?;
    c.entry("init", 0o100_755, init.as_bytes(), (0, 0))?;
    let bytes = c.finish()?;
    let mut f = File::create(out)?;
    f.write_all(&bytes)?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let mut c = Newc::default();
        c.entry("init", 0o100_755, b"hi\n", (0, 0)).unwrap();
        let b = c.finish().unwrap();
        let header = std::str::from_utf8(&b[..110]).unwrap();
        assert_eq!(
            header,
            "070701\
             00000001\
             000081ed\
             00000000\
             00000000\
             00000001\
             00000000\
             00000003\
             00000000\
             00000000\
             00000000\
             00000000\
             00000005\
             00000000"
        );
        // name "init\0" -> 115 bytes, padded to 116; data 3 -> 119, padded 120.
        assert_eq!(&b[110..115], b"init\0");
        assert_eq!(&b[116..119], b"hi\n");
        assert_eq!(&b[120..126], b"070701");
        assert!(b.windows(10).any(|w| w == b"TRAILER!!!"));
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn device_node_rdev() {
        let mut c = Newc::default();
        c.entry("dev/console", 0o020_600, &[], (5, 1)).unwrap();
        let h = std::str::from_utf8(&c.buf[..110]).unwrap();
        assert_eq!(&h[14..22], "00002180");
        assert_eq!(&h[78..86], "00000005");
        assert_eq!(&h[86..94], "00000001");
    }
}
