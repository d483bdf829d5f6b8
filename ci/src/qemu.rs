//! The QEMU command line (DESIGN.md "Boot recipe that worked").

use std::{ffi::OsString, path::PathBuf};

use crate::lun::LunSpec;

/// CPU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Emulation: slow, works everywhere (`-accel tcg -cpu max`).
    Tcg,
    /// Hardware (`-accel kvm -cpu host`); only after a probe boot succeeded.
    Kvm,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// How the guest's serial console is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serial {
    /// `-serial stdio`: output only, read by the runner.
    Stdio,
    /// `-serial mon:stdio`: interactive (terminal input reaches the guest;
    /// Ctrl-A X quits QEMU).
    Interactive,
}

/// Everything that varies between QEMU invocations.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    pub qemu: PathBuf,
    pub bios: Option<PathBuf>,
    pub accel: Accel,
    pub memory_mib: u64,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
    /// vhost-user-scsi backend socket; `None` = no SCSI device (probe boots).
    pub vhost_socket: Option<PathBuf>,
    /// User-mode networking with a virtio-net device.
    pub net: bool,
    /// Share the host root read-only over 9p (mount tag `hostroot`).
    pub hostroot: bool,
    pub serial: Serial,
}

pub const DEFAULT_BIOS: &str = "/usr/share/qemu/qboot.rom";

impl QemuConfig {
    /// The full argv (without the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        push(&["-machine", "q35"]);
        let bios = self.bios.as_ref().map(|b| b.display().to_string());
        if let Some(b) = &bios {
            push(&["-bios", b]);
        }
        match self.accel {
            Accel::Tcg => push(&["-accel", "tcg", "-cpu", "max"]),
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        }
        let mem = format!("{}M", self.memory_mib);
        push(&[
            "-m",
            &mem,
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            match self.serial {
                Serial::Stdio => "stdio",
                Serial::Interactive => "mon:stdio",
            },
            "-no-reboot",
        ]);
        // vhost-user needs guest RAM the backend can map: shared memfd.
        push(&[
            "-object",
            &format!("memory-backend-memfd,id=mem,size={mem},share=on"),
            "-numa",
            "node,memdev=mem",
        ]);
        if let Some(sock) = &self.vhost_socket {
            push(&[
                "-chardev",
                &format!(
                    "socket,id=vus,path={}",
                    qemu_opt_escape(&sock.display().to_string())
                ),
                "-device",
                "vhost-user-scsi-pci,chardev=vus,num_queues=1",
            ]);
        }
        if self.net {
            push(&[
                "-netdev",
                "user,id=n0",
                "-device",
                "virtio-net-pci,netdev=n0",
            ]);
        }
        if self.hostroot {
            push(&[
                "-fsdev",
                "local,id=fs0,path=/,readonly=on,security_model=none,multidevs=remap",
                "-device",
                "virtio-9p-pci,fsdev=fs0,mount_tag=hostroot",
            ]);
        }
        a.push("-kernel".into());
        a.push(self.kernel.clone().into());
        a.push("-initrd".into());
        // Plain file names (no QemuOpts parsing for a Linux boot).
        a.push(self.initrd.clone().into());
        a.push("-append".into());
        a.push(self.append.clone().into());
        a
    }
}

/// QEMU option values use `,` as separator; a literal comma is `,,`.
fn qemu_opt_escape(s: &str) -> String {
    s.replace(',', ",,")
}

/// The kernel command line: console, guest-contract entries, then extra.
/// `panic=-1` makes a panicking guest reboot at once, which `-no-reboot`
/// turns into a QEMU exit, so a crash does not wait for the timeout.
pub fn cmdline(suite: Option<&str>, luns: &[LunSpec], run: Option<&str>, extra: &str) -> String {
    let mut parts = vec![
        "console=ttyS0".to_owned(),
        "quiet".to_owned(),
        "panic=-1".to_owned(),
    ];
    if let Some(s) = suite {
        parts.push(format!("zonecopy.suite={s}"));
    }
    parts.extend(luns.iter().enumerate().map(|(i, l)| l.cmdline_entry(i)));
    if let Some(r) = run {
        parts.push(format!("zonecopy.run={r}"));
    }
    if !extra.trim().is_empty() {
        parts.push(extra.trim().to_owned());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> QemuConfig {
        QemuConfig {
            qemu: "qemu-system-x86_64".into(),
            bios: Some(DEFAULT_BIOS.into()),
            accel: Accel::Tcg,
            memory_mib: 1024,
            kernel: "/k/vmlinux".into(),
            initrd: "/i/initrd.cpio".into(),
            append: "console=ttyS0".into(),
            vhost_socket: Some("/tmp/x/vus.sock".into()),
            net: false,
            hostroot: false,
            serial: Serial::Stdio,
        }
    }

    fn joined(c: &QemuConfig) -> String {
        c.args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn suite_argv_is_the_design_recipe() {
        assert_eq!(
            joined(&cfg()),
            "-machine q35 -bios /usr/share/qemu/qboot.rom -accel tcg -cpu max -m 1024M -smp 1 \
             -nodefaults -no-user-config -display none -serial stdio -no-reboot \
             -object memory-backend-memfd,id=mem,size=1024M,share=on -numa node,memdev=mem \
             -chardev socket,id=vus,path=/tmp/x/vus.sock \
             -device vhost-user-scsi-pci,chardev=vus,num_queues=1 \
             -kernel /k/vmlinux -initrd /i/initrd.cpio -append console=ttyS0"
        );
    }

    #[test]
    fn run_mode_adds_net_9p_and_interactive_serial() {
        let mut c = cfg();
        c.net = true;
        c.hostroot = true;
        c.serial = Serial::Interactive;
        c.accel = Accel::Kvm;
        c.vhost_socket = Some("/tmp/a,b/s".into());
        let j = joined(&c);
        assert!(j.contains("-accel kvm -cpu host"));
        assert!(j.contains("-serial mon:stdio"));
        assert!(j.contains("-chardev socket,id=vus,path=/tmp/a,,b/s"));
        assert!(j.contains("-netdev user,id=n0 -device virtio-net-pci,netdev=n0"));
        assert!(j.contains(
            "-fsdev local,id=fs0,path=/,readonly=on,security_model=none,multidevs=remap \
             -device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot"
        ));
    }

    #[test]
    fn probe_argv_has_no_scsi_device() {
        let mut c = cfg();
        c.vhost_socket = None;
        assert!(!joined(&c).contains("vhost-user-scsi"));
    }

    #[test]
    fn kernel_cmdline() {
        let luns: Vec<LunSpec> = [
            "kind=hm,size=16M,zone=4M,cap=2M,conv=1,bs=4096",
            "kind=disk,size=1M,bs=512",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(
            cmdline(Some("smoke"), &luns, None, ""),
            "console=ttyS0 quiet panic=-1 zonecopy.suite=smoke \
             zonecopy.lun0=hm:bs=4096,size=16777216,zone=4194304,cap=2097152,conv=1 \
             zonecopy.lun1=disk:bs=512,size=1048576"
        );
        assert_eq!(
            cmdline(None, &[], Some(""), " loglevel=7 "),
            "console=ttyS0 quiet panic=-1 zonecopy.run= loglevel=7"
        );
    }
}
