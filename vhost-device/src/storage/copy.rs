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
//! copy), else by reading and writing in chunks. Segments run in order;
//! the first failure stops the copy and says how far it got.

use std::{
    fs::File,
    io,
    os::unix::{fs::FileExt, io::AsRawFd},
};

use super::{
    device::Device,
    error::{Result, StorageError},
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

/// A copy that stopped at segment `progress.segments_done`.
#[derive(Debug, thiserror::Error)]
#[error("copy stopped after {} segments ({} bytes): {error}", progress.segments_done, progress.bytes_done)]
pub struct CopyFailure {
    pub progress: CopyProgress,
    pub error: StorageError,
}

/// Copy every segment in order.
pub fn copy(segments: &[Segment<'_>]) -> std::result::Result<CopyProgress, CopyFailure> {
    let mut progress = CopyProgress::default();
    for seg in segments {
        match seg
            .dst
            .copy_from(seg.dst_lba, seg.src, seg.src_lba, seg.count)
        {
            Ok(bytes) => {
                progress.segments_done += 1;
                progress.bytes_done += bytes;
            }
            Err(error) => return Err(CopyFailure { progress, error }),
        }
    }
    Ok(progress)
}

/// Largest chunk moved by one `copy_file_range` call or bounce buffer.
const CHUNK: u64 = 1 << 20;

/// Copy `len` bytes from `src` at `src_off` to `dst` at `dst_off`. Uses
/// `copy_file_range(2)` and falls back to reading and writing where the
/// kernel refuses it (another filesystem, overlapping ranges in one file).
/// Overlapping ranges are copied as if through a temporary buffer.
pub(super) fn copy_bytes(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    let overlapping = same_file(src, dst)? && src_off < dst_off + len && dst_off < src_off + len;
    if !overlapping {
        match copy_file_range_all(src, src_off, dst, dst_off, len) {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let mut buf = vec![0u8; CHUNK.min(len) as usize];
    // Copy backwards when the destination overlaps the source from above,
    // so no source byte is overwritten before it is read.
    let backwards = overlapping && dst_off > src_off;
    let mut done = 0u64;
    while done < len {
        let n = CHUNK.min(len - done);
        let at = if backwards { len - done - n } else { done };
        let chunk = &mut buf[..n as usize];
        src.read_exact_at(chunk, src_off + at)?;
        dst.write_all_at(chunk, dst_off + at)?;
        done += n;
    }
    Ok(())
}

fn same_file(a: &File, b: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (a.metadata()?, b.metadata()?);
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

fn copy_file_range_all(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let to_off = |v: u64| {
            libc::loff_t::try_from(v).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        };
        let mut off_in = to_off(src_off + done)?;
        let mut off_out = to_off(dst_off + done)?;
        let n = (len - done).min(CHUNK) as usize;
        // SAFETY: both fds are open for the duration of the call and the
        // offset pointers point to live locals; the kernel copies between
        // the files without touching our memory otherwise.
        let ret = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                n,
                0,
            )
        };
        match ret {
            r if r < 0 => {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            0 => {
                // Source shorter than expected: the backing file is sized to
                // the device, so this is an I/O error, not EOF semantics.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "copy_file_range copied nothing",
                ));
            }
            r => done += r as u64,
        }
    }
    Ok(())
}

/// Bytes in `count` blocks of `src`, and that length in blocks of `dst`.
pub(super) fn convert(
    src_bs: u32,
    dst_bs: u32,
    lba: Lba,
    count: BlockCount,
) -> Result<(u64, BlockCount)> {
    let bytes = count.bytes(src_bs).ok_or(StorageError::OutOfRange {
        lba,
        count,
        capacity: BlockCount(0),
    })?;
    if bytes % u64::from(dst_bs) != 0 {
        return Err(StorageError::PartialBlock {
            len: usize::try_from(bytes).unwrap_or(usize::MAX),
            block_size: dst_bs,
        });
    }
    Ok((bytes, BlockCount(bytes / u64::from(dst_bs))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{
        device::{DeviceConfig, ZonedConfig},
        zone::ZoneCondition,
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
        a.write(Lba(1), &data, false).unwrap();
        let p = copy(&[
            // Conventional -> sequential zone at its write pointer.
            Segment {
                src: &a,
                src_lba: Lba(1),
                dst: &a,
                dst_lba: Lba(32),
                count: BlockCount(3),
            },
            // 4096-byte blocks -> 512-byte blocks on another device.
            Segment {
                src: &a,
                src_lba: Lba(1),
                dst: &b,
                dst_lba: Lba(5),
                count: BlockCount(3),
            },
        ])
        .unwrap();
        assert_eq!(p.segments_done, 2);
        assert_eq!(p.bytes_done, 2 * 3 * 4096);
        let mut back = vec![0u8; data.len()];
        a.read(Lba(32), &mut back).unwrap();
        assert_eq!(back, data);
        b.read(Lba(5), &mut back).unwrap();
        assert_eq!(back, data);
        let z = a.report_zones(Lba(32), 1, |_| true).unwrap()[0];
        assert_eq!((z.cond, z.wp), (ZoneCondition::ImplicitOpen, Lba(35)));
        assert_eq!(a.stats().copied_bytes(), 3 * 4096);
        assert_eq!(b.stats().copied_bytes(), 3 * 4096);
    }

    #[test]
    fn failure_reports_progress_and_changes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let a = dev(&dir, "a", 4096, true);
        a.write(Lba(0), &pattern(4096, 1), false).unwrap();
        let err = copy(&[
            Segment {
                src: &a,
                src_lba: Lba(0),
                dst: &a,
                dst_lba: Lba(32),
                count: BlockCount(1),
            },
            // Not at the write pointer (now 33).
            Segment {
                src: &a,
                src_lba: Lba(0),
                dst: &a,
                dst_lba: Lba(40),
                count: BlockCount(1),
            },
        ])
        .unwrap_err();
        assert_eq!(err.progress.segments_done, 1);
        assert!(matches!(err.error, StorageError::UnalignedWrite { .. }));
        let z = a.report_zones(Lba(32), 1, |_| true).unwrap()[0];
        assert_eq!(z.wp, Lba(33));
    }

    #[test]
    fn overlapping_copy_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = dev(&dir, "b", 512, false);
        let data = pattern(8 * 512, 3);
        b.write(Lba(0), &data, false).unwrap();
        copy(&[Segment {
            src: &b,
            src_lba: Lba(0),
            dst: &b,
            dst_lba: Lba(2),
            count: BlockCount(8),
        }])
        .unwrap();
        let mut back = vec![0u8; data.len()];
        b.read(Lba(2), &mut back).unwrap();
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
                src_lba: Lba(s),
                dst,
                dst_lba: Lba(d),
                count: BlockCount(n),
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
