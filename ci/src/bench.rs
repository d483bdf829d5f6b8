//! What only the bench suite gets besides the rig: reference disks and
//! the discard sink (see [`BenchExtras`]).

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use crate::{
    lun::LunArg,
    ns::NsArg,
    qemu::{NvmeRef, ScsiHd},
    rig::{fail, SetupError},
    sink::Sink,
};

/// What only the bench suite gets: QEMU's scsi-hd on raw files the size
/// of the first plain disk LUN (the references its numbers are divided by),
/// and a loopback discard sink / zero source for user networking's raw
/// throughput. The sink's thread ends when this is dropped.
#[derive(Debug)]
pub struct BenchExtras {
    pub scsi_hd: Option<ScsiHd>,
    /// QEMU's NVMe controllers the size of the first plain namespace, when
    /// ours is on PCIe (the same bus as theirs).
    pub nvme_ref: Option<NvmeRef>,
    pub sink: Sink,
}

impl BenchExtras {
    /// Sparse raw files in `dir` the size and block size of the first
    /// `disk` LUN (none without one) and, with `pcie`, of the first plain
    /// namespace; and a started sink.
    pub(crate) fn prepare(
        luns: &[LunArg],
        namespaces: &[NsArg],
        pcie: bool,
        dir: &Path,
        sink_ip: Ipv4Addr,
    ) -> Result<Self, SetupError> {
        let scsi_hd = match luns.iter().find(|l| !l.spec.kind.is_zoned()) {
            Some(l) => {
                let (file, file_wb) = reference_files(dir, "scsi-hd", l.spec.size)?;
                Some(ScsiHd {
                    file,
                    file_wb,
                    size: l.spec.size,
                    bs: l.spec.block_size,
                })
            }
            None => None,
        };
        let nvme_ref = match namespaces.iter().find(|n| !n.spec.kind.is_zoned()) {
            Some(n) if pcie => {
                let (file, file_wb) = reference_files(dir, "nvme-ref", n.spec.size)?;
                Some(NvmeRef {
                    file,
                    file_wb,
                    size: n.spec.size,
                    bs: n.spec.block_size,
                })
            }
            _ => None,
        };
        let sink = Sink::start(sink_ip).map_err(|e| fail(format!("bench sink: {e}")))?;
        Ok(BenchExtras {
            scsi_hd,
            nvme_ref,
            sink,
        })
    }
}

/// Two sparse raw files `<stem>.img` and `<stem>-wb.img` of `size` bytes
/// in `dir` (a reference's `cache=none` and `cache=writeback` copies).
fn reference_files(dir: &Path, stem: &str, size: u64) -> Result<(PathBuf, PathBuf), SetupError> {
    let files = (
        dir.join(format!("{stem}.img")),
        dir.join(format!("{stem}-wb.img")),
    );
    for f in [&files.0, &files.1] {
        std::fs::File::create(f)
            .and_then(|h| h.set_len(size))
            .map_err(|e| fail(format!("cannot create {}: {e}", f.display())))?;
    }
    Ok(files)
}
