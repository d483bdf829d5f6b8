use std::net::Ipv4Addr;

use super::*;
use crate::{bench::BenchExtras, rig::workspace_root};

fn kernel(bugs: &'static [kernel::KnownBug]) -> Kernel {
    Kernel {
        label: "k".into(),
        image: "/k".into(),
        modules: None,
        known_bugs: bugs,
    }
}

#[test]
fn namespaces_default_for_nvme_suites_only() {
    let n = parse_namespaces(&[], Some("nvme"), false).unwrap();
    assert_eq!(n.len(), 3);
    assert!(n[0].spec.zones.is_some() && n[1].spec.zones.is_none() && n[2].spec.zones.is_none());
    assert_eq!(
        parse_namespaces(&[], Some("kcopy"), false).unwrap().len(),
        3
    );
    assert!(parse_namespaces(&[], Some("smoke"), false)
        .unwrap()
        .is_empty());
    assert!(parse_namespaces(&[], None, false).unwrap().is_empty());
    // An external backend: no defaults, and --ns is refused.
    assert!(parse_namespaces(&[], Some("nvme"), true)
        .unwrap()
        .is_empty());
    assert!(parse_namespaces(&["kind=nvm,size=1M".into()], Some("nvme"), true).is_err());
    let given = parse_namespaces(&["kind=nvm,size=1M".into()], Some("nvme"), false).unwrap();
    assert_eq!(given.len(), 1);
    let Err(SetupError::Failed(e)) = parse_namespaces(&["kind=x".into()], None, false) else {
        panic!("accepted")
    };
    assert!(e.starts_with("--ns 1 `kind=x`"), "{e}");
}

#[test]
fn bench_defaults_a_disk_and_a_namespace() {
    let l = parse_luns(&[], Some("bench")).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0].spec.kind, l[0].spec.size, l[0].spec.block_size),
        (zonecopy_contract::spec::LunKind::Disk, 192 << 20, 4096)
    );
    assert_eq!(parse_luns(&[], Some("smoke")).unwrap().len(), 3);
    assert_eq!(
        parse_luns(&["kind=disk,size=1M".into()], Some("bench"))
            .unwrap()
            .len(),
        1
    );
    let n = parse_namespaces(&[], Some("bench"), false).unwrap();
    assert_eq!(n.len(), 3);
    assert!(n[0].spec.zones.is_none());
    // NSID 2 and 3: the timing model's 1 GbE and 100 GbE targets, each
    // a profile the backend has built in.
    let timing: Vec<_> = n.iter().map(|n| n.timing.as_deref()).collect();
    assert_eq!(timing, [None, Some("nvmeof-1gbe"), Some("nvmeof-100gbe")]);
    for t in timing.into_iter().flatten() {
        assert!(zonecopy_contract::timing::TimingProfile::builtin(t).is_some());
    }
    assert!(parse_namespaces(&[], Some("bench"), true)
        .unwrap()
        .is_empty());
    // The reference scsi-hd follows the first disk LUN.
    let dir = tempfile::tempdir().unwrap();
    let b = BenchExtras::prepare(&l, &n, false, dir.path(), Ipv4Addr::LOCALHOST).unwrap();
    let hd = b.scsi_hd.clone().unwrap();
    assert_eq!((hd.size, hd.bs), (192 << 20, 4096));
    assert_eq!(std::fs::metadata(&hd.file).unwrap().len(), 192 << 20);
    assert_eq!(std::fs::metadata(&hd.file_wb).unwrap().len(), 192 << 20);
    assert!(b.sink.port() > 0);
    assert_eq!(b.nvme_ref, None, "QEMU's NVMe only beside ours on PCIe");
    // Over PCIe: QEMU's NVMe controllers the size of the namespace.
    let p = BenchExtras::prepare(&l, &n, true, dir.path(), Ipv4Addr::LOCALHOST).unwrap();
    let r = p.nvme_ref.clone().unwrap();
    assert_eq!((r.size, r.bs), (192 << 20, 4096));
    assert_eq!(std::fs::metadata(&r.file).unwrap().len(), 192 << 20);
    assert_eq!(std::fs::metadata(&r.file_wb).unwrap().len(), 192 << 20);
    // One Copy carries the 64 MiB (copy-merge-oops otherwise).
    assert_eq!(n[0].copy.mssrl, Some(16384));
    let hm = parse_luns(&[], Some("smoke")).unwrap();
    assert_eq!(
        BenchExtras::prepare(&hm[..2], &[], true, dir.path(), Ipv4Addr::LOCALHOST)
            .unwrap()
            .scsi_hd,
        None
    );
}

#[test]
fn networking_when_a_suite_or_namespace_needs_it() {
    let ns = parse_namespaces(&[], Some("nvme"), false).unwrap();
    let n = |suite, net| Needs { suite, net };
    assert!(!wants_net(n(Some("smoke"), false), &[]));
    assert!(wants_net(n(Some("smoke"), true), &[]));
    assert!(wants_net(n(Some("smoke"), false), &ns));
    for s in ["xcopy", "nvme", "kcopy", "zbc"] {
        assert!(wants_net(n(Some(s), false), &[]), "{s}");
    }
}

#[test]
fn module_lists_per_suite() {
    let m = |s, net, nvme| modules_for(s, net, nvme);
    assert_eq!(
        m(Some("smoke"), false, false).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg"
    );
    assert_eq!(
        m(Some("xcopy"), true, false).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg virtio_net"
    );
    assert_eq!(
        m(Some("nvme"), true, true).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg virtio_net nvme_tcp nvme_fabrics nvme_core"
    );
    assert_eq!(
        m(Some("kcopy"), true, true).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg virtio_net nvme_tcp nvme_fabrics nvme_core \
         dm_mod dm_crypt f2fs crc32_generic xts 9p 9pnet_virtio netfs fscache"
    );
    assert_eq!(
        m(Some("zbc"), false, false).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg 9p 9pnet_virtio netfs fscache"
    );
    assert!(wants_hostroot(Some("zbc")) && !wants_hostroot(Some("smoke")));
    assert_eq!(
        m(Some("diff"), false, false).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg configfs target_core_mod target_core_file \
         tcm_loop scsi_debug"
    );
    // --ns on smoke brings the NVMe modules along.
    assert!(m(Some("smoke"), true, true).unwrap().contains("nvme_tcp"));
    // Run mode and unknown suites: the builder's full set.
    assert_eq!(m(None, true, false), None);
    assert_eq!(m(Some("f2fs"), false, false), None);
    assert_eq!(
        m(Some("diff-nvme"), true, true).unwrap(),
        "virtio_pci virtio_scsi sd_mod sg virtio_net nvme_tcp nvme_fabrics nvme_core nvme"
    );
    let run_nvme = m(None, true, true).unwrap();
    assert!(run_nvme.starts_with(FULL_MODULES) && run_nvme.ends_with("nvme_core"));
}

#[test]
fn full_module_set_matches_the_builders_default() {
    let script =
        std::fs::read_to_string(workspace_root().join("images/build-initramfs.sh")).unwrap();
    let at = script.find("DEFAULT_MODULES=\"").unwrap() + "DEFAULT_MODULES=\"".len();
    let list: Vec<&str> = script[at..][..script[at..].find('"').unwrap()]
        .split_whitespace()
        .collect();
    assert_eq!(list, FULL_MODULES.split_whitespace().collect::<Vec<_>>());
}

#[test]
fn xfail_is_known_bugs_then_user_ids_once_each() {
    let k = kernel(kernel::known_bugs("7.2-series"));
    // The table's ids in its order, the series' corruption first.
    let known: Vec<&str> = kernel::known_bugs("7.2-series")
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(known[0], "copy-error-lost");
    assert_eq!(xfail_list(&k, &[], false), known);
    assert_eq!(
        xfail_list(&k, &["mine".into(), "copy-error-lost,other".into()], false),
        [known, vec!["mine", "other"]].concat()
    );
    assert!(xfail_list(&kernel(&[]), &[], false).is_empty());
    // Over PCIe the NVMe/TCP-only bugs are not expected.
    let pcie = xfail_list(&k, &["copy-tcp-r2t".into()], true);
    assert!(pcie.contains(&"copy-error-lost".to_owned()));
    assert_eq!(
        pcie.iter().filter(|id| *id == "copy-tcp-r2t").count(),
        1,
        "given with --xfail it stays"
    );
    assert!(!xfail_list(&k, &[], true).contains(&"copy-tcp-r2t".to_owned()));
}
