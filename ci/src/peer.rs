//! The `diff-nvme` suite's peer: QEMU's own NVMe controller (`-device
//! nvme`, over PCIe) with a zoned namespace of the same geometry, zone
//! limits and Copy limits as our first ZNS namespace (NSID 1) and a plain
//! namespace like our first NVM one (NSID 2), on raw files in the runner's
//! temp dir. The guest sends both the same commands and compares the
//! answers field by field (guest-tools/src/diffnvme).

use std::path::{Path, PathBuf};

use crate::ns::NsSpec;

/// The suite that gets a peer.
pub const DIFF_NVME_SUITE: &str = "diff-nvme";

/// The suite's namespaces when no `--ns` is given: zone capacity below the
/// zone size, open/active limits and small Copy limits, so every limit can
/// be reached with a few commands.
pub const DIFF_NVME_NAMESPACES: [&str; 2] = [
    "kind=zns,size=64M,bs=4096,zone=4M,cap=3M,max-open=4,max-active=6,mssrl=16,mcl=64,msrc=7",
    "kind=nvm,size=32M,bs=4096,mssrl=16,mcl=64,msrc=7",
];

/// Serial Number of the peer controller: how the guest tells it apart.
pub const PEER_NVME_SERIAL: &str = "ZCPEER0001";

/// Our backend's defaults for what a `--ns` spec leaves out
/// (vhost-device/src/nvme/namespace.rs `CopyLimits::default`, MDTS 8 in
/// `ControllerOptions::default`): the peer gets the same.
const DEFAULT_MSSRL: u64 = 4096;
const DEFAULT_MCL: u64 = 65536;
const DEFAULT_MSRC: u64 = 127;
const MDTS: u8 = 8;

/// QEMU's NVMe controller and its two namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNvme {
    pub zns_file: PathBuf,
    pub nvm_file: PathBuf,
    pub bs: u64,
    pub zns_size: u64,
    pub zone: u64,
    pub cap: u64,
    /// 0 = no limit (as ours and QEMU's).
    pub max_open: u64,
    pub max_active: u64,
    pub nvm_size: u64,
    pub mssrl: u64,
    pub mcl: u64,
    pub msrc: u64,
}

impl PeerNvme {
    /// The peer of our first ZNS and first NVM namespace, with sparse raw
    /// files created in `dir`. Copy limits are the ZNS namespace's (the
    /// NVM one must have the same: QEMU sets them per namespace, and one
    /// set keeps the guest contract short).
    pub fn prepare(namespaces: &[NsSpec], dir: &Path) -> Result<Self, String> {
        let zns = namespaces
            .iter()
            .find(|n| n.zoned().is_some())
            .ok_or("diff-nvme needs a zns namespace")?;
        let nvm = namespaces
            .iter()
            .find(|n| n.zoned().is_none())
            .ok_or("diff-nvme needs an nvm namespace")?;
        if zns.limits != nvm.limits || zns.dev.bs != nvm.dev.bs {
            return Err(
                "diff-nvme: the zns and nvm namespaces need the same bs and copy limits".into(),
            );
        }
        let z = zns.zoned().ok_or("zns namespace without zones")?;
        let (zns_file, nvm_file) = (dir.join("peer-zns.img"), dir.join("peer-nvm.img"));
        for (f, size) in [(&zns_file, zns.dev.size), (&nvm_file, nvm.dev.size)] {
            std::fs::File::create(f)
                .and_then(|h| h.set_len(size))
                .map_err(|e| format!("cannot create {}: {e}", f.display()))?;
        }
        Ok(PeerNvme {
            zns_file,
            nvm_file,
            bs: zns.dev.bs,
            zns_size: zns.dev.size,
            zone: z.zone,
            cap: z.cap,
            max_open: z.max_open.unwrap_or(0),
            max_active: z.max_active.unwrap_or(0),
            nvm_size: nvm.dev.size,
            mssrl: zns.limits.mssrl.unwrap_or(DEFAULT_MSSRL),
            mcl: zns.limits.mcl.unwrap_or(DEFAULT_MCL),
            msrc: zns.limits.msrc.unwrap_or(DEFAULT_MSRC),
        })
    }

    /// QEMU arguments: the controller (MDTS as ours, ZASL 0 = MDTS as
    /// ours), then NSID 1 zoned (reads across zone boundaries allowed, as
    /// ours: OZCS.RAZB 1) and NSID 2 plain.
    pub fn args(&self) -> Vec<String> {
        let esc = |p: &Path| p.display().to_string().replace(',', ",,");
        let common = format!(
            "logical_block_size={bs},physical_block_size={bs},mssrl={},mcl={},msrc={}",
            self.mssrl,
            self.mcl,
            self.msrc,
            bs = self.bs
        );
        vec![
            "-drive".into(),
            format!("file={},format=raw,if=none,id=zcpeer1", esc(&self.zns_file)),
            "-drive".into(),
            format!("file={},format=raw,if=none,id=zcpeer2", esc(&self.nvm_file)),
            "-device".into(),
            format!("nvme,id=zcpeer,serial={PEER_NVME_SERIAL},mdts={MDTS},zoned.zasl=0"),
            "-device".into(),
            format!(
                "nvme-ns,drive=zcpeer1,bus=zcpeer,nsid=1,zoned=true,zoned.zone_size={},\
                 zoned.zone_capacity={},zoned.max_open={},zoned.max_active={},\
                 zoned.cross_read=on,{common}",
                self.zone, self.cap, self.max_open, self.max_active
            ),
            "-device".into(),
            format!("nvme-ns,drive=zcpeer2,bus=zcpeer,nsid=2,{common}"),
        ]
    }

    /// `zonecopy.peer-nvme=...` (ARCHITECTURE.md "The guest contract").
    pub fn cmdline_entry(&self) -> String {
        format!(
            "zonecopy.peer-nvme=serial={PEER_NVME_SERIAL},bs={},size={},zone={},cap={},\
             max-open={},max-active={},nvm-size={},mssrl={},mcl={},msrc={}",
            self.bs,
            self.zns_size,
            self.zone,
            self.cap,
            self.max_open,
            self.max_active,
            self.nvm_size,
            self.mssrl,
            self.mcl,
            self.msrc
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_matches_our_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let ns: Vec<NsSpec> = DIFF_NVME_NAMESPACES
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let p = PeerNvme::prepare(&ns, dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&p.zns_file).unwrap().len(), 64 << 20);
        assert_eq!(std::fs::metadata(&p.nvm_file).unwrap().len(), 32 << 20);
        let a = p.args().join(" ");
        assert!(a.contains(
            "-device nvme,id=zcpeer,serial=ZCPEER0001,mdts=8,zoned.zasl=0 \
             -device nvme-ns,drive=zcpeer1,bus=zcpeer,nsid=1,zoned=true,\
             zoned.zone_size=4194304,zoned.zone_capacity=3145728,zoned.max_open=4,\
             zoned.max_active=6,zoned.cross_read=on,logical_block_size=4096,physical_block_size=4096,mssrl=16,\
             mcl=64,msrc=7 -device nvme-ns,drive=zcpeer2,bus=zcpeer,nsid=2,\
             logical_block_size=4096,physical_block_size=4096,mssrl=16,mcl=64,msrc=7"
        ));
        assert_eq!(
            p.cmdline_entry(),
            "zonecopy.peer-nvme=serial=ZCPEER0001,bs=4096,size=67108864,zone=4194304,\
             cap=3145728,max-open=4,max-active=6,nvm-size=33554432,mssrl=16,mcl=64,msrc=7"
        );
    }

    #[test]
    fn peer_needs_both_kinds_and_one_set_of_limits() {
        let dir = tempfile::tempdir().unwrap();
        let only: Vec<NsSpec> = vec!["kind=nvm,size=1M".parse().unwrap()];
        assert!(PeerNvme::prepare(&only, dir.path()).is_err());
        let differ: Vec<NsSpec> = vec![
            "kind=zns,size=8M,zone=4M,mssrl=8".parse().unwrap(),
            "kind=nvm,size=1M".parse().unwrap(),
        ];
        assert!(PeerNvme::prepare(&differ, dir.path()).is_err());
    }
}
