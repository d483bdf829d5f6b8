//! What only the bench suite gets besides the rig: reference disks and
//! the discard sink (see [`BenchExtras`]).

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use zonecopy_contract::fio::FioPlan;

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
    /// `--fio-rounds` / `--fio-runtime`, when either was given.
    pub fio: Option<FioPlan>,
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
            fio: None,
        })
    }

    /// The fio plan from the runner's options (the defaults for the one
    /// not given); none when neither was given, so the guest's default
    /// holds. Checked here, so a bad value fails before the boot.
    pub(crate) fn with_fio(
        mut self,
        rounds: Option<u32>,
        runtime_s: Option<u32>,
    ) -> Result<Self, SetupError> {
        if rounds.is_none() && runtime_s.is_none() {
            return Ok(self);
        }
        // The contract's parser holds the bounds.
        let p: FioPlan = FioPlan::from_options(rounds, runtime_s)
            .to_string()
            .parse()
            .map_err(|e| fail(format!("--fio-rounds/--fio-runtime: {e}")))?;
        self.fio = Some(p);
        Ok(self)
    }
}

/// Most devices the bench's fio measures: over PCIe our namespace, QEMU's
/// two NVMe controllers, our SCSI disk and QEMU's two scsi-hd (over TCP
/// four).
const MAX_FIO_DEVICES: u32 = 6;
/// What the bench suite needs besides fio, with room for a loaded host:
/// the boot, the copies, copy_file_range, the timing model and the
/// network throughput took ~50 s of an idle run.
const BENCH_REST_S: u64 = 240;

/// The least `--timeout` a bench run gets (a smaller one is raised to
/// it): its fio plan at most, plus the rest. The default 300 s would cut
/// the default plan over PCIe (6 devices x 6 jobs x 3 rounds x 2 s).
pub fn min_timeout(rounds: Option<u32>, runtime_s: Option<u32>) -> u64 {
    let p = FioPlan::from_options(rounds, runtime_s);
    let plan = FioPlan {
        rounds: p.rounds.min(zonecopy_contract::fio::MAX_ROUNDS),
        runtime_s: p.runtime_s.min(zonecopy_contract::fio::MAX_RUNTIME_S),
    };
    BENCH_REST_S + plan.max_seconds(MAX_FIO_DEVICES)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_timeout_covers_its_fio_plan() {
        // 3 rounds x 6 devices x 6 jobs x (2 + 1) s + 240 s.
        assert_eq!(min_timeout(None, None), 240 + 324);
        assert_eq!(min_timeout(Some(1), Some(1)), 240 + 72);
        // Out-of-bounds values fail later, in with_fio; capped here.
        assert_eq!(min_timeout(Some(99), Some(999)), 240 + 15 * 36 * 61);
    }

    #[test]
    fn fio_plan_from_the_runner_options() {
        let dir = tempfile::tempdir().unwrap();
        let b = || BenchExtras::prepare(&[], &[], false, dir.path(), Ipv4Addr::LOCALHOST).unwrap();
        assert_eq!(b().with_fio(None, None).unwrap().fio, None);
        assert_eq!(
            b().with_fio(Some(5), None).unwrap().fio,
            Some(FioPlan {
                rounds: 5,
                runtime_s: zonecopy_contract::fio::RUNTIME_S
            })
        );
        assert_eq!(
            b().with_fio(None, Some(4)).unwrap().fio.map(|p| p.rounds),
            Some(zonecopy_contract::fio::ROUNDS)
        );
        let e = b().with_fio(Some(0), None).unwrap_err().to_string();
        assert!(
            e.contains("--fio-rounds/--fio-runtime: rounds=0: not in 1..=15"),
            "{e}"
        );
    }
}
