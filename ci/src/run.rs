//! `zonecopy-ci run -- CMD...`: boot with the test devices, the host root
//! over 9p and networking; the guest runs CMD in a chroot of the host root
//! and prints `zonecopy-exit-status: N`, which becomes our exit status.

use std::time::Duration;

use crate::{
    cli::RunArgs,
    needs::Needs,
    qemu::Serial,
    rig::{Rig, SetupError},
    suite::{default_out, signal_exit},
    util::{hex, shell_join},
    vm::{self, VmSpec, EXIT_STATUS_PREFIX},
};

/// Exit status when the guest's status is unknown (no status line, set-up
/// failure, timeout).
pub const UNKNOWN_STATUS: i32 = 125;

/// The `zonecopy.run=` value: hex of the shell-joined command.
pub fn run_param(cmd: &[String]) -> String {
    hex(shell_join(cmd).as_bytes())
}

pub fn cmd_run(a: &RunArgs) -> i32 {
    let interactive = a.cmd.is_empty();
    let out = a.limits.out.clone().unwrap_or_else(|| {
        default_out(&format!(
            "run-{}",
            std::path::Path::new(&a.kernel)
                .file_name()
                .map_or_else(|| a.kernel.clone(), |n| n.to_string_lossy().into_owned())
        ))
    });
    let needs = Needs {
        suite: None,
        net: true,
    };
    let rig = match Rig::prepare(&a.vm, &a.kernel, needs, &out) {
        Ok(r) => r,
        Err(SetupError::Interrupted(sig)) => return signal_exit(sig),
        Err(SetupError::Failed(e)) => {
            eprintln!("zonecopy-ci run: set-up failed: {e}");
            return UNKNOWN_STATUS;
        }
    };
    let append = rig.cmdline(None, Some(&run_param(&a.cmd)), &a.vm.append);
    let serial = if interactive {
        Serial::Interactive
    } else {
        Serial::Stdio
    };
    let spec = VmSpec {
        qemu: rig.qemu(&a.vm, append, true, serial),
        timeout: (a.limits.timeout > 0).then(|| Duration::from_secs(a.limits.timeout)),
        echo: true,
        console_log: out.join("console.log"),
        qemu_log: out.join("qemu.log"),
        poweroff_grace: Duration::from_secs(a.vm.poweroff_grace),
        stop_on: None,
        stop_after_results: None,
    };
    let mut argv = vec![spec.qemu.qemu.display().to_string()];
    argv.extend(
        spec.qemu
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    let _ = std::fs::write(out.join("qemu-cmdline.txt"), shell_join(&argv) + "\n");
    let outcome = vm::run(&spec);
    for p in rig.shutdown() {
        eprintln!("warning: {p}");
    }
    let o = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("zonecopy-ci run: {e}");
            return UNKNOWN_STATUS;
        }
    };
    if let Some(sig) = o.interrupted {
        return signal_exit(sig);
    }
    match o.exit_status {
        Some(s) => {
            if let Some(c) = &o.report.crash {
                eprintln!("zonecopy-ci run: kernel crash: {c}");
            }
            s.clamp(0, 255)
        }
        None => {
            let why = if let Some(t) = o.timed_out {
                format!("timed out after {} s", t.as_secs())
            } else if let Some(c) = &o.report.crash {
                format!("kernel crash: {c}")
            } else {
                let q = vm::log_tail(&spec.qemu_log, 3);
                if q.is_empty() {
                    "the guest stopped".to_owned()
                } else {
                    format!("qemu.log: {q}")
                }
            };
            eprintln!(
                "zonecopy-ci run: no `{EXIT_STATUS_PREFIX} N` line from the guest ({why}); logs in {}",
                out.display()
            );
            UNKNOWN_STATUS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_parameter() {
        assert_eq!(run_param(&[]), "");
        assert_eq!(
            run_param(&["echo".into(), "a b".into()]),
            hex(b"echo 'a b'")
        );
        assert_eq!(run_param(&["true".into()]), "74727565");
    }
}
