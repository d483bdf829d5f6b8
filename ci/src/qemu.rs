//! The QEMU command line (DESIGN.md "Boot recipe that worked").

use std::{ffi::OsString, path::PathBuf};

use zonecopy_contract::cmdline::Config as Contract;

use crate::{
    peer::PeerNvme,
    tapnet::{self, NetPath, TapNet},
};

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
    /// A vfio-user socket to attach as `vfio-user-pci` (QEMU 10.1+).
    pub vfio_user: Option<PathBuf>,
    pub vhost_socket: Option<PathBuf>,
    /// Reconnect to the vhost-user-scsi backend this many ms after it goes
    /// away (chardev `reconnect-ms`); `None` = the device stays down.
    pub vhost_reconnect_ms: Option<u32>,
    /// A virtio-net device on user networking or the runner's tap.
    pub net: Option<NetPath>,
    /// Share the host root read-only over 9p (mount tag `hostroot`).
    pub hostroot: bool,
    /// QEMU's own scsi-hd on raw files, the bench suite's reference disks.
    pub scsi_hd: Option<ScsiHd>,
    /// QEMU's own NVMe controller, the diff-nvme suite's peer.
    pub peer_nvme: Option<PeerNvme>,
    /// QEMU's own NVMe controllers, the bench suite's references over PCIe.
    pub nvme_ref: Option<NvmeRef>,
    pub serial: Serial,
}

/// The bench suite's references when our NVMe controller is on PCIe:
/// QEMU's own `-device nvme` twice, each with one namespace (NSID 1) on a
/// raw file the size and block size of our first plain namespace, both
/// with `aio=io_uring`: `cache=none` (serial [`NVME_REF_SERIAL`]) and
/// `cache=writeback` (serial [`NVME_REF_WB_SERIAL`], the host page cache
/// as our backend uses it). MDTS as ours. The guest finds each by serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeRef {
    pub file: PathBuf,
    pub file_wb: PathBuf,
    pub size: u64,
    /// Logical (and physical) block size in bytes.
    pub bs: u64,
}

/// Serial Number of the `cache=none` NVMe reference (guest
/// `bench::nvmeref::NVME_REF_SERIAL`).
pub const NVME_REF_SERIAL: &str = "ZCNVMEREF";
/// Likewise of the `cache=writeback` one.
pub const NVME_REF_WB_SERIAL: &str = "ZCNVMEREF-WB";

impl NvmeRef {
    fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        for (i, file, cache, serial) in [
            (1, &self.file, "none", NVME_REF_SERIAL),
            (2, &self.file_wb, "writeback", NVME_REF_WB_SERIAL),
        ] {
            a.extend([
                "-drive".to_owned(),
                format!(
                    "file={},format=raw,if=none,id=zcnref{i},cache={cache},aio=io_uring",
                    qemu_opt_escape(&file.display().to_string())
                ),
                "-device".to_owned(),
                format!("nvme,id=zcnref{i},serial={serial},mdts=8"),
                "-device".to_owned(),
                format!(
                    "nvme-ns,drive=zcnref{i},bus=zcnref{i},nsid=1,\
                     logical_block_size={bs},physical_block_size={bs}",
                    bs = self.bs
                ),
            ]);
        }
        a
    }
}

/// The bench suite's references: QEMU's built-in scsi-hd on two raw files
/// of the same geometry, on their own virtio-scsi-pci controller, both
/// with `aio=io_uring`:
/// - `cache=none` (O_DIRECT on the host: the production setting), product
///   [`SCSI_HD_PRODUCT`], SCSI target 1;
/// - `cache=writeback` (the host page cache, as our backend uses it), product
///   [`SCSI_HD_WB_PRODUCT`], SCSI target 2.
///
/// Target 0 stays our backend's alone; the guest finds each by its product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiHd {
    /// Raw file of the `cache=none` disk.
    pub file: PathBuf,
    /// Raw file of the `cache=writeback` disk.
    pub file_wb: PathBuf,
    pub size: u64,
    /// Logical (and physical) block size in bytes.
    pub bs: u64,
}

/// INQUIRY PRODUCT IDENTIFICATION of the `cache=none` reference (at most 16
/// characters; the guest's `device/model`).
pub const SCSI_HD_PRODUCT: &str = "ZCBENCH-REF";
/// Likewise of the `cache=writeback` reference.
pub const SCSI_HD_WB_PRODUCT: &str = "ZCBENCH-REF-WB";

impl ScsiHd {
    fn args(&self) -> Vec<String> {
        let mut a = vec!["-device".to_owned(), "virtio-scsi-pci,id=zcref".to_owned()];
        for (target, file, cache, product) in [
            (1, &self.file, "none", SCSI_HD_PRODUCT),
            (2, &self.file_wb, "writeback", SCSI_HD_WB_PRODUCT),
        ] {
            a.extend([
                "-drive".to_owned(),
                format!(
                    "file={},format=raw,if=none,id=zcref{target},cache={cache},aio=io_uring",
                    qemu_opt_escape(&file.display().to_string())
                ),
                "-device".to_owned(),
                format!(
                    "scsi-hd,bus=zcref.0,scsi-id={target},lun=0,drive=zcref{target},\
                     logical_block_size={bs},physical_block_size={bs},product={product}",
                    bs = self.bs
                ),
            ]);
        }
        a
    }
}

pub const DEFAULT_BIOS: &str = "/usr/share/qemu/qboot.rom";

/// The machine: q35 without the on-board devices no suite uses, each of
/// which the kernel would otherwise probe (issue 17, 6.12 under TCG):
/// - `hpet=off`: no HPET; the kernel calibrates the TSC against the ACPI
///   PM timer and ticks with the PIT (see `noapictimer` in [`FAST_BOOT`]).
///   With the HPET as the early clock event, start_kernel ran ~80 M more
///   guest instructions before the alternatives were patched (-icount);
/// - `sata=off`, `smbus=off`: no ICH9 AHCI or SMBus function to enumerate
///   and probe; `i8042=off` (its probe is blacklisted anyway) and
///   `vmport=off`: no keyboard controller or VMware port I/O.
pub const MACHINE: &str = "q35,hpet=off,sata=off,smbus=off,i8042=off,vmport=off";

/// The CPU model under TCG: everything QEMU emulates, less the fast-string
/// features (see [`QemuConfig::args`]).
pub const TCG_CPU: &str = "max,-erms,-fsrm";

/// The guest's vCPUs (`-smp`), and so the request queues of our
/// vhost-user-scsi device (`num_queues`): one per vCPU, as blk-mq maps
/// them, each served by its own backend worker. One: under TCG a second
/// vCPU thread competes with the backend and QEMU's main loop for the
/// host's cores (DESIGN.md: `-smp 2` boots slower).
pub const GUEST_CPUS: u32 = 1;
// FAST_BOOT's `noapictimer` (with the HPET off) leaves secondary CPUs no
// clock event device: more than one CPU needs that option dropped first.
const _: () = assert!(GUEST_CPUS == 1);

impl QemuConfig {
    /// A boot of `kernel` with `initrd` and no devices: TCG, 1 GiB,
    /// QEMU's default firmware, the console on stdio.
    pub fn bare(qemu: PathBuf, kernel: PathBuf, initrd: PathBuf, append: String) -> Self {
        QemuConfig {
            qemu,
            bios: None,
            accel: Accel::Tcg,
            memory_mib: 1024,
            kernel,
            initrd,
            append,
            vfio_user: None,
            vhost_socket: None,
            vhost_reconnect_ms: None,
            net: None,
            hostroot: false,
            scsi_hd: None,
            peer_nvme: None,
            nvme_ref: None,
            serial: Serial::Stdio,
        }
    }

    /// The full argv (without the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        push(&["-machine", MACHINE]);
        let bios = self.bios.as_ref().map(|b| b.display().to_string());
        if let Some(b) = &bios {
            push(&["-bios", b]);
        }
        match self.accel {
            // Without ERMS/FSRM the guest kernel copies and clears with
            // 8-byte moves instead of `rep movsb`/`rep stosb`, which TCG
            // runs a byte at a time: raw TCP into a 6.12 guest went from
            // 139 to 447 MiB/s, the boot to the first test ~20% faster.
            Accel::Tcg => push(&["-accel", "tcg", "-cpu", TCG_CPU]),
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        }
        let mem = format!("{}M", self.memory_mib);
        push(&[
            "-m",
            &mem,
            "-smp",
            &GUEST_CPUS.to_string(),
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
                    "socket,id=vus,path={}{}",
                    qemu_opt_escape(&sock.display().to_string()),
                    self.vhost_reconnect_ms
                        .map(|ms| format!(",reconnect-ms={ms}"))
                        .unwrap_or_default()
                ),
                "-device",
                &format!("vhost-user-scsi-pci,chardev=vus,num_queues={GUEST_CPUS}"),
            ]);
        }
        if let Some(sock) = &self.vfio_user {
            // The socket property takes an object (JSON -device syntax).
            let dev = serde_json::json!({
                "driver": "vfio-user-pci",
                "socket": {"type": "unix", "path": sock.display().to_string()},
            });
            push(&["-device", &dev.to_string()]);
        }
        match self.net {
            Some(NetPath::User) => push(&[
                "-netdev",
                "user,id=n0",
                "-device",
                "virtio-net-pci,netdev=n0",
            ]),
            // The guest's MTU from the device (VIRTIO_NET_F_MTU), as the tap's.
            Some(NetPath::Tap) => push(&[
                "-netdev",
                &TapNet::netdev("n0", tapnet::vhost_net_usable()),
                "-device",
                &format!("virtio-net-pci,netdev=n0,host_mtu={}", tapnet::MTU),
            ]),
            None => {}
        }
        if let Some(hd) = &self.scsi_hd {
            let args = hd.args();
            push(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        if let Some(p) = &self.peer_nvme {
            let args = p.args();
            push(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        if let Some(r) = &self.nvme_ref {
            let args = r.args();
            push(&args.iter().map(String::as_str).collect::<Vec<_>>());
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

/// Kernel parameters that only make the boot faster (measured by the
/// images helper: 6.1 from ~3.9 s to ~3.3 s under TCG): no crypto
/// self-tests, no CPU-bug mitigations, and two slow initcalls skipped (an
/// unknown initcall name is ignored, so kernels without them are fine).
/// Then (issue 17, 6.12 under TCG, initcall_debug): Debian kernels zero
/// every page they allocate (`init_on_alloc=1` by default), which under
/// TCG costs more than anything the zeroing protects a test VM from;
/// IPv6 set-up (`inet6_init`, ~0.1 s) serves nothing here (every guest
/// address is IPv4); one 8250 UART is probed instead of four; the IO-APIC
/// timer check and the TSC watchdog (which a loaded host can trip into
/// the HPET, slow to read under TCG) are skipped. Four more initcalls
/// that set up what no suite uses: encrypted keys (`init_encrypted`,
/// instantiates its hash at boot), the tracing enum maps
/// (`trace_eval_init`), the PS/2 controller probe and the VGA arbiter.
///
/// Then, from the same measurements with `-icount` (deterministic guest
/// instruction counts, unlike wall times on a loaded host):
/// - `rodata=off`: the kernel neither write-protects its text and rodata
///   nor walks every page table for W+X mappings afterwards (~125 M guest
///   instructions, ~0.15 s), and module loading skips its `set_memory_ro`
///   calls; a test VM has no attacker to keep out of kernel text;
/// - `noapictimer`: no 100 ms LAPIC timer calibration (a busy loop under
///   TCG, which has no TSC-deadline timer); the guest has one CPU, so the
///   PIT serves as its clock event device (the machine has no HPET,
///   [`MACHINE`]);
/// - more blacklisted initcalls: the BPF kfunc registrations
///   (`bpf_tcp_ca_kfunc_init` and friends: the first one parses the whole
///   vmlinux BTF, ~40 M instructions; no suite runs BPF) and the built-in
///   X.509 certificate list (`load_system_certificate_list`, ~25 M: the
///   image's modules carry no signatures to check).
///
/// Then (issue 17, third round; guest RIP sampled through the monitor
/// during a wall-clock boot, and `-icount shift=0` for instruction counts):
/// - `noreplace-smp`: with one CPU the kernel rewrites each of its ~10 k
///   `lock` prefixes into a no-op prefix, each through `text_poke`, which
///   switches to the poking page tables and back: two CR3 writes, each of
///   which flushes TCG's whole TLB and jump cache. That was a fifth of
///   the wall time before the first PCI probe; QEMU's CPU time to the
///   first KTAP line went down by 0.13-0.4 s (5 runs each, load average
///   5-9). The prefixes stay: `lock` costs TCG nothing with one vCPU;
/// - `ftrace_check_for_weak_functions` blacklisted: its work item looks up
///   each of the ~45 k ftrace records in kallsyms (~86 M instructions, run
///   while the init task waits in `oom_init`; Run /init at 0.291 -> 0.205 s
///   of guest instructions together with the line above). It only marks
///   records of overridden weak functions so the function tracer skips
///   them; no suite uses the function tracer (the NVMe suite's trace
///   events are tracepoints).
pub const FAST_BOOT: &str = "cryptomgr.notests mitigations=off \
     initcall_blacklist=crypto_kdf108_init,jent_mod_init,init_encrypted,trace_eval_init,\
     i8042_init,vga_arb_device_init,bpf_tcp_ca_kfunc_init,bpf_dummy_struct_ops_init,\
     kfunc_init,cpumask_kfunc_init,bpf_global_ma_init,load_system_certificate_list,\
     ftrace_check_for_weak_functions \
     init_on_alloc=0 ipv6.disable=1 8250.nr_uarts=1 no_timer_check tsc=reliable \
     rodata=off noapictimer noreplace-smp";

/// The kernel command line: console, boot-speed options, the guest
/// contract's entries (ARCHITECTURE.md "The guest contract", rendered by
/// the contract crate), then `extra`. `panic=-1` makes a panicking guest
/// reboot at once, which `-no-reboot` turns into a QEMU exit, so a crash
/// does not wait for the timeout.
pub fn cmdline(contract: &Contract, extra: &str) -> String {
    let mut parts = vec![
        "console=ttyS0".to_owned(),
        "quiet".to_owned(),
        "panic=-1".to_owned(),
        FAST_BOOT.to_owned(),
    ];
    if contract.peer_nvme.is_some() {
        // Without native multipath each namespace is its own /dev/nvmeXnY
        // (PEERS.md: the multipath head hides the zone limits).
        parts.push("nvme_core.multipath=N".to_owned());
    }
    let entries = contract.to_string();
    if !entries.is_empty() {
        parts.push(entries);
    }
    if !extra.trim().is_empty() {
        parts.push(extra.trim().to_owned());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{lun::LunArg, ns::NsArg};

    fn cfg() -> QemuConfig {
        QemuConfig {
            bios: Some(DEFAULT_BIOS.into()),
            vhost_socket: Some("/tmp/x/vus.sock".into()),
            ..QemuConfig::bare(
                "qemu-system-x86_64".into(),
                "/k/vmlinux".into(),
                "/i/initrd.cpio".into(),
                "console=ttyS0".into(),
            )
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
            "-machine q35,hpet=off,sata=off,smbus=off,i8042=off,vmport=off \
             -bios /usr/share/qemu/qboot.rom -accel tcg -cpu max,-erms,-fsrm -m 1024M \
             -smp 1 \
             -nodefaults -no-user-config -display none -serial stdio -no-reboot \
             -object memory-backend-memfd,id=mem,size=1024M,share=on -numa node,memdev=mem \
             -chardev socket,id=vus,path=/tmp/x/vus.sock \
             -device vhost-user-scsi-pci,chardev=vus,num_queues=1 \
             -kernel /k/vmlinux -initrd /i/initrd.cpio -append console=ttyS0"
        );
    }

    #[test]
    fn reconnect_ms_goes_on_the_vhost_user_chardev() {
        let mut c = cfg();
        c.vhost_reconnect_ms = Some(100);
        assert!(
            joined(&c).contains("-chardev socket,id=vus,path=/tmp/x/vus.sock,reconnect-ms=100 ")
        );
    }

    #[test]
    fn run_mode_adds_net_9p_and_interactive_serial() {
        let mut c = cfg();
        c.net = Some(NetPath::User);
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
    fn tap_nic_with_the_taps_mtu() {
        let mut c = cfg();
        c.net = Some(NetPath::Tap);
        // vhost-net when this host has it.
        let vhost = if tapnet::vhost_net_usable() {
            "on"
        } else {
            "off"
        };
        assert!(joined(&c).contains(&format!(
            "-netdev tap,id=n0,ifname=zc0,script=no,downscript=no,vhost={vhost} \
             -device virtio-net-pci,netdev=n0,host_mtu=65520 -kernel"
        )));
    }

    #[test]
    fn bench_reference_scsi_hd() {
        let mut c = cfg();
        c.scsi_hd = Some(ScsiHd {
            file: "/t/a,b/ref.img".into(),
            file_wb: "/t/wb.img".into(),
            size: 201_326_592,
            bs: 4096,
        });
        assert!(joined(&c).contains(
            "-device vhost-user-scsi-pci,chardev=vus,num_queues=1 \
             -device virtio-scsi-pci,id=zcref \
             -drive file=/t/a,,b/ref.img,format=raw,if=none,id=zcref1,cache=none,aio=io_uring \
             -device scsi-hd,bus=zcref.0,scsi-id=1,lun=0,drive=zcref1,logical_block_size=4096,\
             physical_block_size=4096,product=ZCBENCH-REF \
             -drive file=/t/wb.img,format=raw,if=none,id=zcref2,cache=writeback,aio=io_uring \
             -device scsi-hd,bus=zcref.0,scsi-id=2,lun=0,drive=zcref2,logical_block_size=4096,\
             physical_block_size=4096,product=ZCBENCH-REF-WB -kernel"
        ));
    }

    #[test]
    fn bench_reference_nvme() {
        let mut c = cfg();
        c.nvme_ref = Some(NvmeRef {
            file: "/t/n,1.img".into(),
            file_wb: "/t/n2.img".into(),
            size: 192 << 20,
            bs: 4096,
        });
        assert!(joined(&c).contains(
            "-drive file=/t/n,,1.img,format=raw,if=none,id=zcnref1,cache=none,aio=io_uring \
             -device nvme,id=zcnref1,serial=ZCNVMEREF,mdts=8 \
             -device nvme-ns,drive=zcnref1,bus=zcnref1,nsid=1,logical_block_size=4096,\
             physical_block_size=4096 \
             -drive file=/t/n2.img,format=raw,if=none,id=zcnref2,cache=writeback,aio=io_uring \
             -device nvme,id=zcnref2,serial=ZCNVMEREF-WB,mdts=8 \
             -device nvme-ns,drive=zcnref2,bus=zcnref2,nsid=1,logical_block_size=4096,\
             physical_block_size=4096 -kernel"
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
        let luns: Vec<LunArg> = [
            "kind=hm,size=16M,zone=4M,cap=2M,conv=1,bs=4096",
            "kind=disk,size=1M,bs=512",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let contract = Contract {
            suite: Some("smoke".into()),
            luns: (0..).zip(luns.iter().map(|l| l.spec)).collect(),
            ..Contract::default()
        };
        assert_eq!(
            cmdline(&contract, ""),
            format!(
                "console=ttyS0 quiet panic=-1 {FAST_BOOT} zonecopy.suite=smoke \
             zonecopy.lun0=hm:bs=4096,size=16777216,zone=4194304,cap=2097152,conv=1 \
             zonecopy.lun1=disk:bs=512,size=1048576"
            )
        );
        let run = Contract {
            run: Some(String::new()),
            ..Contract::default()
        };
        assert_eq!(
            cmdline(&run, " loglevel=7 "),
            format!("console=ttyS0 quiet panic=-1 {FAST_BOOT} zonecopy.run= loglevel=7")
        );
        assert_eq!(
            cmdline(&Contract::default(), ""),
            format!("console=ttyS0 quiet panic=-1 {FAST_BOOT}")
        );
    }

    #[test]
    fn nvme_over_pcie_contract_and_device() {
        let mut q = cfg();
        q.vfio_user = Some("/tmp/x/pcie.sock".into());
        let a: Vec<String> = q
            .args()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let i = a.iter().position(|s| s.contains("vfio-user-pci")).unwrap();
        assert_eq!(a[i - 1], "-device");
        let v: serde_json::Value = serde_json::from_str(&a[i]).unwrap();
        assert_eq!(v["socket"]["path"], "/tmp/x/pcie.sock");
        assert_eq!(v["socket"]["type"], "unix");
    }

    #[test]
    fn peer_nvme_turns_native_multipath_off() {
        let dir = tempfile::tempdir().unwrap();
        let ns: Vec<NsArg> = crate::peer::DIFF_NVME_NAMESPACES
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let p = PeerNvme::prepare(&ns, dir.path()).unwrap();
        let contract = Contract {
            peer_nvme: Some(p.spec),
            ..Contract::default()
        };
        let line = cmdline(&contract, "");
        assert!(
            line.contains(&format!(
                "{FAST_BOOT} nvme_core.multipath=N zonecopy.peer-nvme="
            )),
            "{line}"
        );
    }
}
