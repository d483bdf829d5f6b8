//! The copy engine: copy ranges of blocks within a device or between
//! devices of this backend, without the data passing through a front end.
//!
//! Protocol-free: SCSI EXTENDED COPY / WRITE USING TOKEN and NVMe Copy build
//! a list of [`Segment`]s after checking their own limits and descriptors,
//! and map the [`CopyFailure`] to their status (COPY ABORTED with the
//! residual; NVMe status with the number of ranges done).
//!
//! Each segment is checked as a whole against the zone rules before any of
//! it is written (a destination in a sequential write required zone must
//! start at the write pointer), then copied with `copy_file_range(2)`
//! between the backing files where the kernel can (reflink or in-kernel
//! copy), else by reading and writing in chunks (always so when a device
//! has its volatile write cache on: `storage::media::cache`). Segments run in
//! order; the first failure stops the copy and says how far it got.
//!
//! Injected faults (`storage::fault`) stop a segment part way: a media
//! error in its source range, a write error in its destination range, or a
//! copy-fail rule of the destination device for this segment number (or
//! block count) of the command. The blocks before the earliest such stop
//! are copied (rounded down to whole blocks of both devices), then the
//! segment fails with the rule's error, and [`CopyFailure::progress`]
//! counts those bytes. A front end that runs a command's segments one call
//! at a time keeps one [`CopyCommand`] for it, so segment numbers and block
//! counts run over the whole command. A delay rule (on `copy`) of the
//! first segment's destination device sleeps before the command starts.

use super::{
    device::{convert, Device},
    error::StorageError,
    fault::{CopyFailError, Op},
    units::{BlockCount, Lba},
};

/// One contiguous range copied from `src` to `dst`.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: &'a Device,
    pub src_lba: Lba,
    pub dst: &'a Device,
    pub dst_lba: Lba,
    /// Length in blocks of the source device; it must be a whole number of
    /// the destination's blocks too.
    pub count: BlockCount,
}

/// How far a copy got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyProgress {
    /// Segments copied completely.
    pub segments_done: usize,
    /// Bytes copied, over all segments.
    pub bytes_done: u64,
}

/// A copy that stopped at segment `progress.segments_done`;
/// `progress.bytes_done` includes what that segment copied before it
/// stopped.
#[derive(Debug, thiserror::Error)]
#[error("copy stopped after {} segments ({} bytes): {error}", progress.segments_done, progress.bytes_done)]
pub struct CopyFailure {
    pub progress: CopyProgress,
    pub error: StorageError,
}

/// Copy every segment in order, as one copy command.
pub fn copy(segments: &[Segment<'_>]) -> std::result::Result<CopyProgress, CopyFailure> {
    CopyCommand::default().run(segments)
}

/// One copy command whose segments may be run a few at a time: segment
/// numbers and block counts (for the fault rules) run over all its calls.
#[derive(Debug, Default)]
pub struct CopyCommand {
    /// Number of the next segment.
    next: usize,
    /// Source blocks copied by the earlier segments.
    blocks: u64,
}

impl CopyCommand {
    /// Copy `segments` in order, as the command's next segments. The
    /// progress counts this call's segments only.
    pub fn run(
        &mut self,
        segments: &[Segment<'_>],
    ) -> std::result::Result<CopyProgress, CopyFailure> {
        let mut progress = CopyProgress::default();
        for seg in segments {
            if self.next == 0 {
                seg.dst
                    .faults()
                    .delay(Op::Copy, Some((seg.dst_lba, seg.count)));
            }
            match run_segment(self.next, self.blocks, seg) {
                Ok(bytes) => {
                    progress.segments_done += 1;
                    progress.bytes_done += bytes;
                    self.next += 1;
                    self.blocks = self.blocks.saturating_add(seg.count.get());
                }
                Err((bytes, error)) => {
                    progress.bytes_done += bytes;
                    return Err(CopyFailure { progress, error });
                }
            }
        }
        Ok(progress)
    }
}

/// Copy one segment, number `index` of its command, after `before` source
/// blocks of the command: the bytes copied, or those copied before it
/// failed and why.
fn run_segment(
    index: usize,
    before: u64,
    seg: &Segment<'_>,
) -> std::result::Result<u64, (u64, StorageError)> {
    let Some((blocks, error)) = injected_stop(index, before, seg) else {
        return seg
            .dst
            .copy_from(seg.dst_lba, seg.src, seg.src_lba, seg.count)
            .map_err(|e| (0, e));
    };
    let bytes = if blocks > 0 {
        seg.dst
            .copy_from(seg.dst_lba, seg.src, seg.src_lba, BlockCount::new(blocks))
            .map_err(|e| (0, e))?
    } else {
        0
    };
    Err((bytes, error))
}

/// The earliest injected fault of a segment, fired: how many of its source
/// blocks to copy first (whole blocks of both devices), and the error.
fn injected_stop(index: usize, before: u64, seg: &Segment<'_>) -> Option<(u64, StorageError)> {
    let sbs = u64::from(seg.src.geometry().block_size);
    let dbs = u64::from(seg.dst.geometry().block_size);
    // A malformed segment is the engine's to refuse, not a fault's.
    let (_, dst_count) = convert(sbs as u32, dbs as u32, seg.src_lba, seg.count).ok()?;
    // (source blocks before the stop, rule, error)
    let mut stops = Vec::new();
    if let Some((p, bad)) = seg.src.faults().peek_read(seg.src_lba, seg.count) {
        stops.push((
            bad.get() - seg.src_lba.get(),
            seg.src,
            p,
            StorageError::UnrecoveredRead { lba: bad },
        ));
    }
    if let Some((p, bad)) = seg.dst.faults().peek_write(seg.dst_lba, dst_count) {
        stops.push((
            (bad.get() - seg.dst_lba.get()) * dbs / sbs,
            seg.dst,
            p,
            StorageError::WriteFault { lba: bad },
        ));
    }
    if let Some((p, n, e)) = seg.dst.faults().peek_copy(index, before, seg.count) {
        let err = match e {
            CopyFailError::Read => StorageError::UnrecoveredRead {
                lba: Lba::new(seg.src_lba.get() + n),
            },
            // The first destination block not written, after rounding.
            CopyFailError::Write => StorageError::WriteFault {
                lba: Lba::new(seg.dst_lba.get() + n * sbs / dbs),
            },
        };
        stops.push((n, seg.dst, p, err));
    }
    let (n, dev, p, err) = stops.into_iter().min_by_key(|s| s.0)?;
    dev.faults().fire(
        p,
        &format!(
            "copy segment {index}: {} +{} -> {} +{dst_count}, {n} block(s) copied first",
            seg.src_lba, seg.count, seg.dst_lba
        ),
    );
    // Whole destination blocks only.
    let blocks = n * sbs / dbs * dbs / sbs;
    Some((blocks, err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{
        device::{DeviceConfig, ZonedConfig},
        fault::{BlockRange, CopyFailAt, FaultKind},
        zone::{ZoneAction, ZoneCondition, ZoneTarget},
    };

    fn dev(dir: &tempfile::TempDir, name: &str, bs: u32, zoned: bool) -> Device {
        Device::open(&DeviceConfig {
            path: dir.path().join(name),
            size: 1 << 20,
            block_size: bs,
            zoned: zoned.then_some(ZonedConfig {
                zone_size: 64 << 10,
                zone_capacity: 64 << 10,
                conventional_zones: 2,
                max_open: 0,
                max_active: 0,
                ..Default::default()
            }),
        })
        .unwrap()
    }

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    #[test]
    fn copy_within_and_across_devices() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev(&dir, "a", 4096, true);
        let b = dev(&dir, "b", 512, false);
        let data = pattern(3 * 4096, 7);
        a.write(Lba::new(1), &data, false).unwrap();
        let p = copy(&[
            // Conventional -> sequential zone at its write pointer.
            Segment {
                src: &a,
                src_lba: Lba::new(1),
                dst: &a,
                dst_lba: Lba::new(32),
                count: BlockCount::new(3),
            },
            // 4096-byte blocks -> 512-byte blocks on another device.
            Segment {
                src: &a,
                src_lba: Lba::new(1),
                dst: &b,
                dst_lba: Lba::new(5),
                count: BlockCount::new(3),
            },
        ])
        .unwrap();
        assert_eq!(p.segments_done, 2);
        assert_eq!(p.bytes_done, 2 * 3 * 4096);
        let mut back = vec![0u8; data.len()];
        a.read(Lba::new(32), &mut back).unwrap();
        assert_eq!(back, data);
        b.read(Lba::new(5), &mut back).unwrap();
        assert_eq!(back, data);
        let z = a.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
        assert_eq!((z.cond, z.wp), (ZoneCondition::ImplicitOpen, Lba::new(35)));
        assert_eq!(a.stats().copied_bytes(), 3 * 4096);
        assert_eq!(b.stats().copied_bytes(), 3 * 4096);
    }

    #[test]
    fn failure_reports_progress_and_changes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev(&dir, "a", 4096, true);
        a.write(Lba::new(0), &pattern(4096, 1), false).unwrap();
        let err = copy(&[
            Segment {
                src: &a,
                src_lba: Lba::new(0),
                dst: &a,
                dst_lba: Lba::new(32),
                count: BlockCount::new(1),
            },
            // Not at the write pointer (now 33).
            Segment {
                src: &a,
                src_lba: Lba::new(0),
                dst: &a,
                dst_lba: Lba::new(40),
                count: BlockCount::new(1),
            },
        ])
        .unwrap_err();
        assert_eq!(err.progress.segments_done, 1);
        assert!(matches!(err.error, StorageError::UnalignedWrite { .. }));
        let z = a.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
        assert_eq!(z.wp, Lba::new(33));
    }

    fn range(lba: u64, blocks: u64) -> BlockRange {
        BlockRange::new(Lba::new(lba), BlockCount::new(blocks))
    }

    /// Three 4-block segments from conventional LBA 0.. to one zone at its
    /// write pointer (LBA 32..44).
    fn three<'a>(a: &'a Device) -> Vec<Segment<'a>> {
        (0..3)
            .map(|i| Segment {
                src: a,
                src_lba: Lba::new(4 * i),
                dst: a,
                dst_lba: Lba::new(32 + 4 * i),
                count: BlockCount::new(4),
            })
            .collect()
    }

    #[test]
    fn media_error_in_a_source_copies_the_blocks_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev(&dir, "a", 4096, true);
        let data = pattern(12 * 4096, 9);
        a.write(Lba::new(0), &data, false).unwrap();
        a.faults().add(FaultKind::MediaError(range(6, 1)), Some(1));
        let err = copy(&three(&a)).unwrap_err();
        assert!(matches!(
            err.error,
            StorageError::UnrecoveredRead { lba } if lba == Lba::new(6)
        ));
        assert_eq!(
            err.progress,
            CopyProgress {
                segments_done: 1,
                bytes_done: 6 * 4096
            }
        );
        // Segment 0 and the first two blocks of segment 1 arrived, and the
        // write pointer covers exactly them.
        let mut back = vec![0u8; 6 * 4096];
        a.read(Lba::new(32), &mut back).unwrap();
        assert_eq!(back, data[..6 * 4096]);
        let z = a.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
        assert_eq!(z.wp, Lba::new(38));
        assert_eq!(a.faults().counts().media_error, 1);
        // Fired once: the rule is gone and a host read of LBA 6 works.
        a.read(Lba::new(6), &mut back[..4096]).unwrap();
    }

    #[test]
    fn copy_fail_counts_segments_over_a_whole_command() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev(&dir, "a", 4096, true);
        a.write(Lba::new(0), &pattern(12 * 4096, 1), false).unwrap();
        a.faults().add(
            FaultKind::copy_fail_in_segment(2, 0, CopyFailError::Write),
            None,
        );
        // Run one segment per call, as EXTENDED COPY does: the third call
        // is segment 2.
        let segs = three(&a);
        let mut cmd = CopyCommand::default();
        cmd.run(&segs[..1]).unwrap();
        cmd.run(&segs[1..2]).unwrap();
        let err = cmd.run(&segs[2..]).unwrap_err();
        assert!(matches!(
            err.error,
            StorageError::WriteFault { lba } if lba == Lba::new(40)
        ));
        assert_eq!(err.progress, CopyProgress::default());
        let z = a.report_zones(Lba::new(32), 1, |_| true).unwrap()[0];
        assert_eq!(z.wp, Lba::new(40));
        // By block count, with a read error: stops 5 blocks in (segment 1,
        // block 1), so segment 0 is done.
        a.faults().clear();
        a.zone_action(ZoneAction::Reset, ZoneTarget::One(Lba::new(32)))
            .unwrap();
        a.faults().add(
            FaultKind::CopyFail {
                at: CopyFailAt::Blocks(5),
                error: CopyFailError::Read,
            },
            Some(1),
        );
        let err = copy(&three(&a)).unwrap_err();
        assert!(matches!(
            err.error,
            StorageError::UnrecoveredRead { lba } if lba == Lba::new(5)
        ));
        assert_eq!(
            err.progress,
            CopyProgress {
                segments_done: 1,
                bytes_done: 5 * 4096
            }
        );
    }

    #[test]
    fn write_error_and_block_size_rounding() {
        let dir = tempfile::tempdir().unwrap();
        let small = dev(&dir, "s", 512, false);
        let big = dev(&dir, "b", 4096, false);
        small
            .write(Lba::new(0), &pattern(32 * 512, 4), false)
            .unwrap();
        // A media error at 512-byte block 9: 9 blocks are 4608 bytes, so
        // one whole 4096-byte destination block is copied.
        small
            .faults()
            .add(FaultKind::MediaError(range(9, 1)), Some(1));
        let seg = [Segment {
            src: &small,
            src_lba: Lba::new(0),
            dst: &big,
            dst_lba: Lba::new(10),
            count: BlockCount::new(32),
        }];
        let err = copy(&seg).unwrap_err();
        assert!(matches!(
            err.error,
            StorageError::UnrecoveredRead { lba } if lba == Lba::new(9)
        ));
        assert_eq!(err.progress.bytes_done, 4096);
        // A write error at destination block 12: two blocks copied.
        big.faults()
            .add(FaultKind::WriteError(range(12, 1)), Some(1));
        let err = copy(&seg).unwrap_err();
        assert!(matches!(
            err.error,
            StorageError::WriteFault { lba } if lba == Lba::new(12)
        ));
        assert_eq!(err.progress.bytes_done, 2 * 4096);
        // Both rules fired and expired: the copy now goes through.
        assert_eq!(copy(&seg).unwrap().bytes_done, 32 * 512);
    }

    #[test]
    fn overlapping_copy_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = dev(&dir, "b", 512, false);
        let data = pattern(8 * 512, 3);
        b.write(Lba::new(0), &data, false).unwrap();
        copy(&[Segment {
            src: &b,
            src_lba: Lba::new(0),
            dst: &b,
            dst_lba: Lba::new(2),
            count: BlockCount::new(8),
        }])
        .unwrap();
        let mut back = vec![0u8; data.len()];
        b.read(Lba::new(2), &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn range_and_block_size_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev(&dir, "a", 4096, false);
        let b = dev(&dir, "b", 512, false);
        let bad = |src: &Device, dst: &Device, s: u64, d: u64, n: u64| {
            copy(&[Segment {
                src,
                src_lba: Lba::new(s),
                dst,
                dst_lba: Lba::new(d),
                count: BlockCount::new(n),
            }])
            .unwrap_err()
            .error
        };
        assert!(matches!(
            bad(&a, &a, 255, 0, 2),
            StorageError::OutOfRange { .. }
        ));
        assert!(matches!(
            bad(&a, &a, 0, 255, 2),
            StorageError::OutOfRange { .. }
        ));
        assert!(matches!(
            bad(&b, &a, 0, 0, 1),
            StorageError::PartialBlock { .. }
        ));
        assert!(matches!(
            bad(&a, &a, u64::MAX, 0, 2),
            StorageError::OutOfRange { .. }
        ));
    }
}
