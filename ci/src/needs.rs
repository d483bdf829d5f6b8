//! What a suite asks of a boot, decided before anything starts: its
//! default LUNs and namespaces, whether it needs the guest network or the
//! host's root, the kernel modules its initramfs loads, and the known bugs
//! it expects (`zonecopy.xfail=`). [`crate::rig::Rig::prepare`] acts on it.

use zonecopy_contract::Suite;

use crate::{
    kernel::{self, Kernel},
    lun::{self, LunArg},
    ns::{NsArg, DEFAULT_NAMESPACES},
    peer::DIFF_NVME_NAMESPACES,
    rig::SetupError,
};

/// The bench suite's LUNs when none are given: one 4 KiB-block plain disk
/// of 192 MiB (the copy benchmarks' source, offload and read+write areas).
pub const BENCH_LUNS: [&str; 1] = ["kind=disk,size=192M,bs=4096"];
/// The bench suite's namespaces when none are given: the same as an nvm
/// namespace, with Copy limits (MSSRL and MCL 16384 blocks = 64 MiB) that
/// let one Copy carry the whole 64 MiB copy: with the backend's default
/// MSSRL (4096 blocks) the 7.2 kernels split the copy_file_range into
/// Copies that mq-deadline tries to merge, and the guest oopses
/// (`copy-merge-oops`, seen over PCIe on 7.2-fixed in bio_will_gap).
/// NSID 2 and 3 are modeled as NVMe/TCP targets on 1 and 100 GbE (the
/// backend's timing model): the guest's `nvme_timing_model` copies 16 x
/// 2 MiB on each, by the host and offloaded (96 MiB: source and two
/// destinations).
pub const BENCH_NAMESPACES: [&str; 3] = [
    "kind=nvm,size=192M,bs=4096,mssrl=16384,mcl=16384",
    "kind=nvm,size=96M,bs=4096,timing=nvmeof-1gbe",
    "kind=nvm,size=96M,bs=4096,timing=nvmeof-100gbe",
];

/// Parses `--lun` specs (the defaults when none are given: the suite's;
/// the bench suite gets [`BENCH_LUNS`], a reference scsi-hd and a discard
/// sink: [`BenchExtras`]).
pub fn parse_luns(specs: &[String], suite: Option<&str>) -> Result<Vec<LunArg>, SetupError> {
    let suite = Suite::named(suite);
    let defaults: &[&str] = if suite == Some(Suite::Bench) {
        &BENCH_LUNS
    } else {
        lun::default_luns(suite)
    };
    parse_specs("--lun", 0, specs, defaults)
}

/// `specs`, or `defaults` when none are given, parsed; an error names
/// the flag and the spec's number (LUN from 0, NSID from 1).
fn parse_specs<T: std::str::FromStr>(
    flag: &str,
    first: usize,
    specs: &[String],
    defaults: &[&str],
) -> Result<Vec<T>, SetupError>
where
    T::Err: std::fmt::Display,
{
    let given: Vec<&str> = if specs.is_empty() {
        defaults.to_vec()
    } else {
        specs.iter().map(String::as_str).collect()
    };
    given
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse()
                .map_err(|e| SetupError::Failed(format!("{flag} {} `{s}`: {e}", i + first)))
        })
        .collect()
}

/// Suites that talk to the backend over the network (control port,
/// NVMe/TCP): they get a NIC and `zonecopy.control=` without `--net`.
pub const NET_SUITES: &[Suite] = &[
    Suite::Xcopy,
    Suite::Nvme,
    Suite::Kcopy,
    Suite::Bench,
    Suite::Zbc,
    Suite::DiffNvme,
];
/// Suites that get [`DEFAULT_NAMESPACES`] when no `--ns` is given.
pub const NVME_SUITES: &[Suite] = &[Suite::Nvme, Suite::Kcopy];
/// The nvme-pci driver, for the diff-nvme suite's peer (a module on
/// Debian kernels; the builder skips it where it is built in).
const PCI_NVME_MODULE: &str = "nvme";
/// Suites that run host tools (fio, blkzone, sg3-utils, dmsetup,
/// mkfs.f2fs) from the host root, shared read-only over 9p and mounted at
/// /host in the guest (see images/init).
pub const HOST_TOOL_SUITES: &[Suite] = &[Suite::Zbc, Suite::Kcopy, Suite::Bench];
const HOST_TOOL_MODULES: &str = "9p 9pnet_virtio netfs fscache";

/// Does `suite` get the host root over 9p?
pub fn wants_hostroot(suite: Option<&str>) -> bool {
    Suite::named(suite).is_some_and(|s| HOST_TOOL_SUITES.contains(&s))
}

/// What a boot needs besides the VM options.
#[derive(Debug, Clone, Copy)]
pub struct Needs<'a> {
    /// The suite (`None`: run mode).
    pub suite: Option<&'a str>,
    /// `--net` (run mode: always).
    pub net: bool,
}

/// Parses `--ns` specs; without any, [`DEFAULT_NAMESPACES`] for the
/// [`NVME_SUITES`] (only with our own backend: an external one's NVMe/TCP
/// port is unknown to us).
pub fn parse_namespaces(
    specs: &[String],
    suite: Option<&str>,
    external_backend: bool,
) -> Result<Vec<NsArg>, SetupError> {
    if external_backend && !specs.is_empty() {
        return Err(SetupError::Failed(
            "--ns needs the runner's own backend (not --backend-socket)".into(),
        ));
    }
    let defaults: &[&str] = match Suite::named(suite) {
        _ if external_backend => &[],
        Some(s) if NVME_SUITES.contains(&s) => &DEFAULT_NAMESPACES,
        Some(Suite::Bench) => &BENCH_NAMESPACES,
        Some(Suite::DiffNvme) => &DIFF_NVME_NAMESPACES,
        _ => &[],
    };
    parse_specs("--ns", 1, specs, defaults)
}

/// Does the guest get a NIC (and, with our backend, the control port)?
pub fn wants_net(needs: Needs<'_>, namespaces: &[NsArg]) -> bool {
    needs.net
        || !namespaces.is_empty()
        || Suite::named(needs.suite).is_some_and(|s| NET_SUITES.contains(&s))
}

/// The builder's own default module set (images/build-initramfs.sh
/// DEFAULT_MODULES; a test keeps the two equal): run mode's 9p and friends.
pub const FULL_MODULES: &str = "virtio_pci virtio_scsi scsi_mod sd_mod sg t10_pi crc_t10dif \
     9p 9pnet_virtio netfs fscache virtio_net";
/// What every suite needs: the SCSI disks.
const BASE_MODULES: &str = "virtio_pci virtio_scsi sd_mod sg";
const NVME_MODULES: &str = "nvme_tcp nvme_fabrics nvme_core";
/// The `diff` suite's peers: scsi_debug (ZBC) and LIO with tcm_loop and
/// fileio backstores (EXTENDED COPY). /init loads scsi_debug with its
/// default parameters; the guest reloads it with our LUN's geometry.
const DIFF_MODULES: &str = "configfs target_core_mod target_core_file tcm_loop scsi_debug";

/// The `--modules` list for the initramfs (`None` = the builder's default).
/// Built-in and missing modules are skipped by the builder.
///
/// Every suite has a tailored list (fewer modules boot faster); run mode
/// and unknown names get the builder's full default set.
pub fn modules_for(name: Option<&str>, net: bool, nvme: bool) -> Option<String> {
    let suite = Suite::named(name);
    let mut m: Vec<&str> = match suite {
        Some(_) => BASE_MODULES.split(' ').collect(),
        _ if nvme => FULL_MODULES.split_whitespace().collect(),
        _ => return None,
    };
    if net && !m.contains(&"virtio_net") {
        m.push("virtio_net");
    }
    // `kill` talks NVMe/TCP to the victim backend of `zonecopy-ci kill`.
    if nvme || suite.is_some_and(|s| NVME_SUITES.contains(&s) || s == Suite::Kill) {
        m.extend(NVME_MODULES.split(' '));
        if !m.contains(&"virtio_net") {
            m.push("virtio_net");
        }
    }
    if suite == Some(Suite::DiffNvme) {
        m.push(PCI_NVME_MODULE);
    }
    if suite == Some(Suite::Kcopy) {
        // f2fs asks for the "crc32" shash and dm-crypt for "xts(aes)" at
        // run time (no modinfo dependency): modules on Debian kernels.
        m.extend(["dm_mod", "dm_crypt", "f2fs", "crc32_generic", "xts"]);
    }
    if suite == Some(Suite::Diff) {
        m.extend(DIFF_MODULES.split(' '));
    }
    if wants_hostroot(name) {
        m.extend(HOST_TOOL_MODULES.split(' '));
    }
    Some(m.join(" "))
}

/// `zonecopy.xfail=`: the kernel's known bugs, then `--xfail` ids, once each.
/// With `pcie`, the kernel's NVMe/TCP-only bugs ([`kernel::TCP_ONLY_BUGS`])
/// are left out (`--xfail` ids stay).
pub fn xfail_list(kernel: &Kernel, extra: &[String], pcie: bool) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let ids = kernel
        .known_bugs
        .iter()
        .filter(|b| !(pcie && kernel::TCP_ONLY_BUGS.contains(&b.id)))
        .map(|b| b.id.to_owned())
        .chain(
            extra
                .iter()
                .flat_map(|x| x.split(','))
                .map(|x| x.trim().to_owned()),
        );
    for id in ids {
        if !id.is_empty() && !v.contains(&id) {
            v.push(id);
        }
    }
    v
}

#[cfg(test)]
#[path = "needs_tests.rs"]
mod tests;
