//! Host tools in the guest: fio, blkzone, sg3-utils, dmsetup, mkfs.f2fs.
//!
//! The runner shares the host root read-only over 9p for the suites that
//! need them (ci `HOST_TOOL_SUITES`) and images/init mounts it at [`ROOT`]
//! with the guest's /dev, /proc and /sys bound inside, so a host binary runs
//! against the guest's devices under `chroot /host`. The guest stays
//! self-contained otherwise: a suite whose host tool is missing reports
//! SKIP with the reason, never a pass.

use std::{
    path::Path,
    process::{Command, Output},
};

/// Where images/init mounts the host root.
pub const ROOT: &str = "/host";

/// Is the host root mounted (the runner shared it for this suite)?
pub fn root_available() -> bool {
    Path::new(ROOT).join("proc/self").exists() && Path::new(ROOT).join("usr/bin").is_dir()
}

/// Path of `tool` inside the host root (`/usr/sbin/...` first), if present.
pub fn find(tool: &str) -> Option<String> {
    ["usr/sbin", "usr/bin", "sbin", "bin"]
        .iter()
        .map(|d| format!("/{d}/{tool}"))
        .find(|p| Path::new(ROOT).join(&p[1..]).is_file())
}

/// Why `tool` cannot run here, or `None` when it can.
pub fn missing(tool: &str) -> Option<String> {
    if !root_available() {
        return Some(format!("{tool}: the host root is not mounted at {ROOT}"));
    }
    if find(tool).is_none() {
        return Some(format!("{tool}: not installed on the host"));
    }
    None
}

/// A command running the host's `tool` under `chroot /host` (device paths
/// are the guest's). Use [`missing`] first to report a SKIP.
pub fn command(tool: &str) -> Command {
    let path = find(tool).unwrap_or_else(|| format!("/usr/bin/{tool}"));
    let mut c = Command::new("/usr/sbin/chroot");
    c.arg(ROOT).arg(path);
    c.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C");
    c
}

/// Runs `tool args...` and returns its output; a spawn failure or a non-zero
/// exit is an error naming the command and its stderr.
pub fn run(tool: &str, args: &[&str]) -> Result<Output, String> {
    let out = command(tool)
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{tool} {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}
