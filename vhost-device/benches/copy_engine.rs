//! The storage copy engine against its baseline, in one run:
//! `cargo bench -p zonecopy-vhost --bench copy_engine [-- MiB [rounds]]`.
//!
//! Copies 64 MiB (default) between two backing files on the same file
//! system three ways and prints the median time of each and the ratios:
//! - `copy_file_range`: the raw syscall loop on the bare files (baseline);
//! - `engine`: `storage::copy` between two devices on the same files, into
//!   a plain device and into a sequential zone at its write pointer (the
//!   zone checks, locking and accounting on top of the same syscall);
//! - `read+write`: a 1 MiB bounce buffer, what a host-side copy costs.
//!
//! Target (issue 5): engine >= 0.9x the speed of copy_file_range.

use std::{
    fs::File,
    io,
    os::unix::{fs::FileExt, io::AsRawFd},
    path::Path,
    time::{Duration, Instant},
};

use zonecopy_vhost::storage::{
    copy::copy, BlockCount, Device, DeviceConfig, Lba, Segment, ZoneAction, ZoneTarget, ZonedConfig,
};

const BS: u32 = 4096;

fn device(path: &Path, size: u64, zoned: bool) -> Device {
    Device::open(&DeviceConfig {
        path: path.to_owned(),
        size,
        block_size: BS,
        zoned: zoned.then_some(ZonedConfig {
            zone_size: size / 2,
            zone_capacity: size / 2,
            conventional_zones: 1,
            max_open: 0,
            max_active: 0,
            ..Default::default()
        }),
    })
    .expect("open device")
}

fn copy_file_range_all(src: &File, dst: &File, dst_off: u64, len: u64) -> io::Result<()> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = i64::try_from(done).map_err(io::Error::other)?;
        let mut off_out = i64::try_from(dst_off + done).map_err(io::Error::other)?;
        // SAFETY: both fds are open for the call; the offsets are live
        // locals the kernel updates.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                (len - done).min(1 << 30) as usize,
                0,
            )
        };
        if n <= 0 {
            return Err(io::Error::last_os_error());
        }
        done += n as u64;
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mibps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let len = mib << 20;
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .expect("temp dir");
    let src_path = dir.path().join("src.img");
    let dst_path = dir.path().join("dst.img");

    // Source data: non-zero, so nothing can be skipped as a hole.
    let src_dev = device(&src_path, len, false);
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8 + 1).collect();
    for off in (0..len).step_by(chunk.len()) {
        src_dev
            .write(Lba::new(off / u64::from(BS)), &chunk, false)
            .expect("fill source");
    }
    src_dev.flush().expect("flush source");
    let count = BlockCount::new(len / u64::from(BS));

    let mut raw = Vec::new();
    let mut engine_plain = Vec::new();
    let mut engine_zoned = Vec::new();
    let mut bounce = Vec::new();
    for _ in 0..rounds {
        // Baseline: the bare syscall between the files.
        let src = File::open(&src_path).expect("open src");
        let dst = fresh_dst(&dst_path, len);
        let t = Instant::now();
        copy_file_range_all(&src, &dst, 0, len).expect("copy_file_range");
        raw.push(t.elapsed());
        drop(dst);

        // Engine into a plain device.
        let _ = std::fs::remove_file(&dst_path);
        let dst_dev = device(&dst_path, len, false);
        let t = Instant::now();
        copy(&[Segment {
            src: &src_dev,
            src_lba: Lba::new(0),
            dst: &dst_dev,
            dst_lba: Lba::new(0),
            count,
        }])
        .expect("engine copy");
        engine_plain.push(t.elapsed());
        drop(dst_dev);

        // Engine into the sequential zone of a zoned device (half the
        // source: the zone is half the device).
        let _ = std::fs::remove_file(&dst_path);
        let mut zones = dst_path.clone().into_os_string();
        zones.push(".zones");
        let _ = std::fs::remove_file(&zones);
        let zdev = device(&dst_path, len, true);
        zdev.zone_action(ZoneAction::Reset, ZoneTarget::All)
            .expect("reset");
        let half = BlockCount::new(count.get() / 2);
        let t = Instant::now();
        copy(&[Segment {
            src: &src_dev,
            src_lba: Lba::new(0),
            dst: &zdev,
            dst_lba: Lba::new(half.get()),
            count: half,
        }])
        .expect("engine copy into zone");
        // Scale to the full length for comparison.
        engine_zoned.push(t.elapsed() * 2);
        drop(zdev);

        // Host copy through a bounce buffer.
        let dst = fresh_dst(&dst_path, len);
        let mut buf = vec![0u8; 1 << 20];
        let t = Instant::now();
        for off in (0..len).step_by(buf.len()) {
            src.read_exact_at(&mut buf, off).expect("read");
            dst.write_all_at(&buf, off).expect("write");
        }
        bounce.push(t.elapsed());
    }
    let (r, ep, ez, b) = (
        median(raw),
        median(engine_plain),
        median(engine_zoned),
        median(bounce),
    );
    println!(
        "copy engine benchmark: {mib} MiB, median of {rounds}, files in {:?}",
        dir.path()
    );
    println!(
        "  copy_file_range (baseline) {:>8.1} ms {:>8.0} MiB/s",
        r.as_secs_f64() * 1e3,
        mibps(len, r)
    );
    println!(
        "  engine, plain device       {:>8.1} ms {:>8.0} MiB/s  {:.2}x baseline",
        ep.as_secs_f64() * 1e3,
        mibps(len, ep),
        r.as_secs_f64() / ep.as_secs_f64()
    );
    println!(
        "  engine, sequential zone    {:>8.1} ms {:>8.0} MiB/s  {:.2}x baseline",
        ez.as_secs_f64() * 1e3,
        mibps(len, ez),
        r.as_secs_f64() / ez.as_secs_f64()
    );
    println!(
        "  read+write, 1 MiB buffer   {:>8.1} ms {:>8.0} MiB/s  {:.2}x baseline",
        b.as_secs_f64() * 1e3,
        mibps(len, b),
        r.as_secs_f64() / b.as_secs_f64()
    );
}

/// A new, empty destination file of `len` bytes at `path` (a previous
/// round's removed first, so no blocks are shared with it).
fn fresh_dst(path: &std::path::Path, len: u64) -> File {
    let _ = std::fs::remove_file(path);
    let dst = File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("open dst");
    dst.set_len(len).expect("size dst");
    dst
}
