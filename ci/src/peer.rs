//! The `diff-nvme` suite's peer: QEMU's own NVMe controller (`-device
//! nvme`, over PCIe) with a zoned namespace of the same geometry, zone
//! limits and Copy limits as our first ZNS namespace (NSID 1) and a plain
//! namespace like our first NVM one (NSID 2), on raw files in the runner's
//! temp dir. The guest sends both the same commands and compares the
//! answers field by field (guest-tools/src/diffnvme).

use std::path::{Path, PathBuf};

use zonecopy_contract::nvme::{self, PEER_NVME_SERIAL};

use crate::ns::NsArg;

/// The suite's namespaces when no `--ns` is given: zone capacity below the
/// zone size, open/active limits and small Copy limits, so every limit can
/// be reached with a few commands.
pub const DIFF_NVME_NAMESPACES: [&str; 2] = [
    "kind=zns,size=64M,bs=4096,zone=4M,cap=3M,max-open=4,max-active=6,mssrl=16,mcl=64,msrc=7",
    "kind=nvm,size=32M,bs=4096,mssrl=16,mcl=64,msrc=7",
];

/// Our backend's MDTS (`ControllerOptions::default`): the peer gets the
/// same. Copy limits a `--ns` leaves out are the contract's defaults, as
/// the backend's.
const MDTS: u8 = 8;

/// QEMU's NVMe controller and its two namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNvme {
    pub zns_file: PathBuf,
    pub nvm_file: PathBuf,
    /// What the guest is told (`zonecopy.peer-nvme=`).
    pub spec: nvme::PeerNvme,
}

impl PeerNvme {
    /// The peer of our first ZNS and first NVM namespace, with sparse raw
    /// files created in `dir`. Copy limits are the ZNS namespace's (the
    /// NVM one must have the same: QEMU sets them per namespace, and one
    /// set keeps the guest contract short).
    pub fn prepare(namespaces: &[NsArg], dir: &Path) -> Result<Self, String> {
        let find = |zoned: bool| namespaces.iter().find(|n| n.spec.zones.is_some() == zoned);
        let zns = find(true).ok_or("diff-nvme needs a zns namespace")?;
        let nvm = find(false).ok_or("diff-nvme needs an nvm namespace")?;
        if zns.copy != nvm.copy || zns.spec.block_size != nvm.spec.block_size {
            return Err(
                "diff-nvme: the zns and nvm namespaces need the same bs and copy limits".into(),
            );
        }
        let z = zns.spec.zones.ok_or("zns namespace without zones")?;
        let (zns_file, nvm_file) = (dir.join("peer-zns.img"), dir.join("peer-nvm.img"));
        for (f, size) in [(&zns_file, zns.spec.size), (&nvm_file, nvm.spec.size)] {
            std::fs::File::create(f)
                .and_then(|h| h.set_len(size))
                .map_err(|e| format!("cannot create {}: {e}", f.display()))?;
        }
        let (mssrl, mcl, msrc) = zns.copy.resolved();
        Ok(PeerNvme {
            zns_file,
            nvm_file,
            spec: nvme::PeerNvme {
                serial: PEER_NVME_SERIAL.to_owned(),
                bs: zns.spec.block_size,
                size: zns.spec.size,
                zone: z.zone_size,
                cap: z.capacity,
                max_open: zns.limits.max_open.map_or(0, u64::from),
                max_active: zns.limits.max_active.map_or(0, u64::from),
                nvm_size: nvm.spec.size,
                mssrl: mssrl.into(),
                mcl: mcl.into(),
                msrc: msrc.into(),
            },
        })
    }

    /// QEMU arguments: the controller (MDTS as ours, ZASL 0 = MDTS as
    /// ours), then NSID 1 zoned (reads across zone boundaries allowed, as
    /// ours: OZCS.RAZB 1) and NSID 2 plain.
    pub fn args(&self) -> Vec<String> {
        let esc = |p: &Path| p.display().to_string().replace(',', ",,");
        let p = &self.spec;
        let common = format!(
            "logical_block_size={bs},physical_block_size={bs},mssrl={},mcl={},msrc={}",
            p.mssrl,
            p.mcl,
            p.msrc,
            bs = p.bs
        );
        vec![
            "-drive".into(),
            format!("file={},format=raw,if=none,id=zcpeer1", esc(&self.zns_file)),
            "-drive".into(),
            format!("file={},format=raw,if=none,id=zcpeer2", esc(&self.nvm_file)),
            "-device".into(),
            format!(
                "nvme,id=zcpeer,serial={},mdts={MDTS},zoned.zasl=0",
                p.serial
            ),
            "-device".into(),
            format!(
                "nvme-ns,drive=zcpeer1,bus=zcpeer,nsid=1,zoned=true,zoned.zone_size={},\
                 zoned.zone_capacity={},zoned.max_open={},zoned.max_active={},\
                 zoned.cross_read=on,{common}",
                p.zone, p.cap, p.max_open, p.max_active
            ),
            "-device".into(),
            format!("nvme-ns,drive=zcpeer2,bus=zcpeer,nsid=2,{common}"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_matches_our_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let ns: Vec<NsArg> = DIFF_NVME_NAMESPACES
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
            format!("zonecopy.peer-nvme={}", p.spec),
            "zonecopy.peer-nvme=serial=ZCPEER0001,bs=4096,size=67108864,zone=4194304,\
             cap=3145728,max-open=4,max-active=6,nvm-size=33554432,mssrl=16,mcl=64,msrc=7"
        );
    }

    #[test]
    fn peer_needs_both_kinds_and_one_set_of_limits() {
        let dir = tempfile::tempdir().unwrap();
        let only: Vec<NsArg> = vec!["kind=nvm,size=1M".parse().unwrap()];
        assert!(PeerNvme::prepare(&only, dir.path()).is_err());
        let differ: Vec<NsArg> = vec![
            "kind=zns,size=8M,zone=4M,mssrl=8".parse().unwrap(),
            "kind=nvm,size=1M".parse().unwrap(),
        ];
        assert!(PeerNvme::prepare(&differ, dir.path()).is_err());
    }
}
