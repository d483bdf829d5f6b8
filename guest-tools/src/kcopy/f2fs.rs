//! `f2fs_gc`: F2FS on the zoned namespace, its garbage collection forced,
//! and what moved the data: the device (copy offload, `copied_bytes`) or
//! the host (reads and writes).
//!
//! Layout: `mkfs.f2fs -f -m -c /dev/<zoned> /dev/<conventional>` (the
//! host's f2fs-tools under `chroot /host`): `-m` turns on the zoned block
//! device feature, the positional device is device 0 and holds the
//! metadata (checkpoint, SIT, NAT, SSA must be randomly writable), `-c`
//! adds the zoned namespace as device 1; a section is one zone (4 MiB
//! zones: 2 segments of 2 MiB), so the zone size must be a power of two.
//! The conventional device is the smallest NVM namespace (the default 64
//! MiB one holds the metadata of 64 MiB + 256 MiB easily).
//!
//! Then: [`FILES`] files of [`FILE_BLOCKS`] stamped 4 KiB blocks each (block
//! `j` of file `i` stamped as block `i * FILE_BLOCKS + j`), every other one
//! deleted, a checkpoint, the page cache dropped (GC must read what it
//! moves), `F2FS_IOC_GARBAGE_COLLECT` (sync, foreground) until F2FS finds
//! no victim (`ENODATA`), the backend's counters before and after, a
//! remount, every remaining file verified block by block.
//!
//! The copy-offload series gives F2FS no copy path, so the expected answer
//! today is "all by host I/O"; the test reports the numbers and asserts
//! only what must hold whatever the path: GC moved blocks, the devices
//! received at least that many bytes by writes or copies, and the data is
//! intact.

use std::{
    ffi::CString,
    fs, io,
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
    time::Instant,
};

use super::{
    fail, is_nvm, kmsg,
    path::{Counters, DevCounters},
    skip, Step, Suite, SECTOR,
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    hosttool, stamp,
};

/// `F2FS_IOC_GARBAGE_COLLECT`: `_IOW(0xf5, 6, __u32)`, argument 1 = sync
/// (foreground GC of one section).
pub const F2FS_IOC_GARBAGE_COLLECT: u32 = (1 << 30) | (4 << 16) | (0xf5 << 8) | 6;
/// Files written.
pub const FILES: u64 = 24;
/// 4 KiB blocks per file (1 MiB).
pub const FILE_BLOCKS: u64 = 256;
/// Where the file system is mounted in the guest.
const MOUNT: &str = "/tmp/zonecopy-f2fs";
/// At most this many GC calls (each frees at most one section).
const GC_CALLS: usize = 64;

/// A mounted file system, unmounted (detached) when dropped.
struct Mounted {
    dir: PathBuf,
    live: bool,
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

impl Mounted {
    fn mount(dev: &Path, dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let (d, t, ty) = (cstr(dev)?, cstr(dir)?, CString::new("f2fs")?);
        // SAFETY: three NUL-terminated strings alive for the call, no
        // mount data (null pointer is allowed).
        let rc = unsafe { libc::mount(d.as_ptr(), t.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            live: true,
        })
    }

    fn umount(&mut self, flags: libc::c_int) -> io::Result<()> {
        if !self.live {
            return Ok(());
        }
        let t = cstr(&self.dir)?;
        // SAFETY: a NUL-terminated path alive for the call.
        if unsafe { libc::umount2(t.as_ptr(), flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.live = false;
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.umount(libc::MNT_DETACH);
    }
}

/// Forced foreground GC until F2FS has no victim: (successful calls, the
/// errno that ended it, if any).
fn gc_until_done(dir: &Path) -> io::Result<(usize, Option<i32>)> {
    let f = fs::File::open(dir)?;
    let mut ok = 0;
    for _ in 0..GC_CALLS {
        let sync: u32 = 1;
        // SAFETY: F2FS_IOC_GARBAGE_COLLECT reads one __u32, which `sync`
        // is, alive for the call.
        let rc = unsafe {
            libc::ioctl(
                f.as_raw_fd(),
                F2FS_IOC_GARBAGE_COLLECT as _,
                &sync as *const u32,
            )
        };
        if rc != 0 {
            return Ok((ok, io::Error::last_os_error().raw_os_error()));
        }
        ok += 1;
    }
    Ok((ok, None))
}

fn syncfs(dir: &Path) -> io::Result<()> {
    let f = fs::File::open(dir)?;
    // SAFETY: syncfs takes an open fd, alive for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The bytes of file `i`.
pub fn file_bytes(i: u64, gen: u64) -> Vec<u8> {
    let mut b = vec![0u8; (FILE_BLOCKS as usize) * stamp::BLOCK_SIZE];
    // fill_range only fails on a length that is not whole blocks.
    let _ = stamp::fill_range(&mut b, i * FILE_BLOCKS, gen);
    b
}

/// Check file `i` as read back.
pub fn check_file(i: u64, gen: u64, got: &[u8]) -> Result<(), String> {
    let want = FILE_BLOCKS as usize * stamp::BLOCK_SIZE;
    if got.len() != want {
        return Err(format!("f{i}: {} bytes, expected {want}", got.len()));
    }
    stamp::verify_range(got, i * FILE_BLOCKS, gen).map_err(|(b, e)| {
        format!(
            "f{i}: block {} of the file (stamp {b}): {e}",
            b - i * FILE_BLOCKS
        )
    })
}

/// One device's counter growth.
fn grown(a: &Counters, b: &Counters, dev: &str) -> DevCounters {
    let (x, y) = (
        a.devs.get(dev).copied().unwrap_or_default(),
        b.devs.get(dev).copied().unwrap_or_default(),
    );
    DevCounters {
        read: y.read.saturating_sub(x.read),
        written: y.written.saturating_sub(x.written),
        copied: y.copied.saturating_sub(x.copied),
    }
}

fn show(d: &DevCounters) -> String {
    format!(
        "read +{}, written +{}, copied +{}",
        d.read, d.written, d.copied
    )
}

/// `moved_blocks_foreground + moved_blocks_background` of the file system
/// whose first device is `disk`, if the kernel has them.
fn moved_blocks(sys: &Path, disk: &str) -> Option<u64> {
    let d = sys.join("fs/f2fs").join(disk);
    let num = |a: &str| -> Option<u64> { fs::read_to_string(d.join(a)).ok()?.trim().parse().ok() };
    Some(num("moved_blocks_foreground")? + num("moved_blocks_background")?)
}

fn snapshot(s: &mut Suite<'_>) -> Step<Option<Counters>> {
    match s.counters() {
        None => Ok(None),
        Some(Ok(c)) => Ok(Some(c)),
        Some(Err(e)) => Err(fail(format!("stats: {e}"))),
    }
}

/// F2FS on a ZNS namespace with its metadata on an NVM one: fill, delete
/// every other file, garbage-collect (F2FS moves the valid blocks, by copy
/// offload where the kernel has it), then check every file after a remount.
pub(super) fn t_f2fs_gc(s: &mut Suite<'_>) -> Step {
    let (z, c) = f2fs_devices(s)?;
    let (zname, cname) = (s.devs[z].name.clone(), s.devs[c].name.clone());
    let cdev = format!("/dev/{}", s.devs[c].block);
    let dir = Path::new(MOUNT);
    let mut m = mkfs_and_mount(s, z, c)?;
    let gen = fill_and_thin(s, dir, &zname, &cname)?;
    collect(s, dir, c, &zname, &cname)?;
    // Verify after a remount: nothing comes from the page cache.
    m.umount(0)
        .map_err(|e| fail(format!("umount {MOUNT}: {e}")))?;
    let mut m = Mounted::mount(Path::new(&cdev), dir)
        .map_err(|e| fail(format!("mounting {cdev} again: {e}")))?;
    let mut checked = 0;
    for i in 0..FILES {
        let p = dir.join(format!("f{i}"));
        if i % 2 == 0 {
            if p.exists() {
                return Err(fail(format!(
                    "f{i} was deleted but is back after the remount"
                )));
            }
            continue;
        }
        let got = fs::read(&p).map_err(|e| fail(format!("reading f{i}: {e}")))?;
        check_file(i, gen, &got).map_err(|e| fail(format!("after GC and a remount: {e}")))?;
        checked += 1;
    }
    s.diag(format!(
        "after GC and a remount: {checked} files, {} stamped blocks verified",
        checked * FILE_BLOCKS
    ));
    m.umount(0)
        .map_err(|e| fail(format!("umount {MOUNT}: {e}")))?;
    // Leave the zoned namespace empty for whatever runs next.
    bz::zone_mgmt(&s.devs[z].file, ZoneOp::Reset, 0, s.devs[z].size / SECTOR)
        .map_err(|e| fail(format!("{zname}: resetting every zone after the test: {e}")))?;
    s.devs[z].next_zone = 0;
    Ok(())
}

/// The ZNS namespace and the NVM one for the metadata, or why not.
fn f2fs_devices(s: &mut Suite<'_>) -> Step<(usize, usize)> {
    s.needs("devices")?;
    let z = s
        .find(&[], |d| d.nvme && d.zones.is_some())
        .ok_or_else(|| skip("needs a ZNS namespace"))?;
    let c = (0..s.devs.len())
        .filter(|&i| is_nvm(&s.devs[i]))
        .min_by_key(|&i| s.devs[i].size)
        .ok_or_else(|| skip("needs an NVM namespace for the metadata"))?;
    if let Some(why) = hosttool::missing("mkfs.f2fs") {
        return Err(skip(why));
    }
    let filesystems = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !filesystems.split_whitespace().any(|w| w == "f2fs") {
        return Err(skip("no f2fs in this kernel (/proc/filesystems)"));
    }
    let zs = s.devs[z]
        .zones
        .ok_or_else(|| fail("suite bug: not zoned"))?;
    if !zs.zone_size.is_power_of_two() {
        return Err(skip(format!(
            "{}: zone size {} is not a power of two (F2FS needs one)",
            s.devs[z].name, zs.zone_size
        )));
    }
    Ok((z, c))
}

/// mkfs.f2fs over the two devices and mount it at [`MOUNT`].
fn mkfs_and_mount(s: &mut Suite<'_>, z: usize, c: usize) -> Step<Mounted> {
    let zs = s.devs[z]
        .zones
        .ok_or_else(|| fail("suite bug: not zoned"))?;
    let (zname, cname) = (s.devs[z].name.clone(), s.devs[c].name.clone());
    let zdev = format!("/dev/{}", s.devs[z].block);
    let cdev = format!("/dev/{}", s.devs[c].block);
    s.diag(format!(
        "f2fs: metadata on {cname} ({cdev}, {} bytes), zoned {zname} ({zdev}, {} bytes, zone {} cap {})",
        s.devs[c].size, s.devs[z].size, zs.zone_size, zs.capacity
    ));
    let out = hosttool::run("mkfs.f2fs", &["-f", "-m", "-c", &zdev, &cdev])
        .map_err(|e| fail(format!("mkfs.f2fs: {e}")))?;
    for l in String::from_utf8_lossy(&out.stdout).lines().filter(|l| {
        l.contains("zones,") || l.contains("per section") || l.contains("Overprovision")
    }) {
        s.diag(format!("mkfs.f2fs: {}", l.trim()));
    }
    let dir = Path::new(MOUNT);
    let mut log = kmsg::Kmsg::start();
    let m = Mounted::mount(Path::new(&cdev), dir).map_err(|e| {
        let k = log.since();
        fail(format!(
            "mount -t f2fs {cdev} {MOUNT}: {e}{}",
            k.last()
                .map_or(String::new(), |l| format!(" (kernel: {l})"))
        ))
    })?;
    let policy = fs::read_to_string(
        s.sys
            .join("fs/f2fs")
            .join(&s.devs[c].block)
            .join("blkzone_alloc_policy"),
    )
    .map(|v| format!("blkzone_alloc_policy {}", v.trim()))
    .unwrap_or_else(|_| "no blkzone_alloc_policy".to_string());
    s.diag(format!("mounted at {MOUNT}; {policy}"));

    Ok(m)
}

/// Write [`FILES`] stamped files, then delete every other one: each
/// section keeps half its blocks valid. Returns the stamp generation.
fn fill_and_thin(s: &mut Suite<'_>, dir: &Path, zname: &str, cname: &str) -> Step<u64> {
    let gen = s.new_gen();
    let t0 = Instant::now();
    let a = snapshot(s)?;
    for i in 0..FILES {
        fs::write(dir.join(format!("f{i}")), file_bytes(i, gen))
            .map_err(|e| fail(format!("writing {MOUNT}/f{i}: {e}")))?;
    }
    syncfs(dir).map_err(|e| fail(format!("syncfs: {e}")))?;
    let b = snapshot(s)?;
    let filled = FILES * FILE_BLOCKS * stamp::BLOCK_SIZE as u64;
    if let (Some(a), Some(b)) = (&a, &b) {
        s.diag(format!(
            "fill: {FILES} files, {filled} bytes in {:.1} s; {zname} {}; {cname} {}",
            t0.elapsed().as_secs_f64(),
            show(&grown(a, b, zname)),
            show(&grown(a, b, cname))
        ));
    }
    // Every other file deleted: each section keeps half its blocks valid.
    for i in (0..FILES).step_by(2) {
        fs::remove_file(dir.join(format!("f{i}")))
            .map_err(|e| fail(format!("deleting f{i}: {e}")))?;
    }
    syncfs(dir).map_err(|e| fail(format!("syncfs: {e}")))?;
    fs::write("/proc/sys/vm/drop_caches", "3").map_err(|e| fail(format!("drop_caches: {e}")))?;

    Ok(gen)
}

/// Garbage-collect until F2FS finds no victim; F2FS must have moved
/// blocks, and the devices must have received at least that much.
fn collect(s: &mut Suite<'_>, dir: &Path, c: usize, zname: &str, cname: &str) -> Step {
    let disk = s.devs[c].block.clone();
    let moved0 = moved_blocks(s.sys, &disk);
    let c0 = snapshot(s)?;
    let t1 = Instant::now();
    let (calls, end) = gc_until_done(dir).map_err(|e| fail(format!("open {MOUNT}: {e}")))?;
    syncfs(dir).map_err(|e| fail(format!("syncfs: {e}")))?;
    let took = t1.elapsed();
    let c1 = snapshot(s)?;
    let moved = match (moved0, moved_blocks(s.sys, &disk)) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x)),
        _ => None,
    };
    let end_name = match end {
        None => format!("no error after {GC_CALLS} calls"),
        Some(libc::ENODATA) => "ENODATA (no victim section left)".to_string(),
        Some(e) => super::probe::errno_name(e),
    };
    s.diag(format!(
        "GC: {calls} F2FS_IOC_GARBAGE_COLLECT call(s) in {:.1} s, then {end_name}; F2FS moved {}",
        took.as_secs_f64(),
        moved.map_or(
            "? blocks (no moved_blocks_* in sysfs)".to_string(),
            |m| format!("{m} blocks ({} bytes)", m * stamp::BLOCK_SIZE as u64)
        )
    ));
    if calls == 0 {
        return Err(fail(format!(
            "F2FS_IOC_GARBAGE_COLLECT failed at once with {end_name}"
        )));
    }
    if let Some(e) = end {
        if e != libc::ENODATA && e != libc::EAGAIN {
            return Err(fail(format!(
                "F2FS_IOC_GARBAGE_COLLECT failed with {end_name} after {calls} call(s)"
            )));
        }
    }
    if moved == Some(0) {
        return Err(fail(format!(
            "GC moved no block although {} of {FILES} files were deleted",
            FILES.div_ceil(2)
        )));
    }
    if let (Some(c0), Some(c1)) = (&c0, &c1) {
        let (zd, cd) = (grown(c0, c1, zname), grown(c0, c1, cname));
        let fabric = match (c0.fabric_data, c1.fabric_data) {
            (Some(x), Some(y)) => format!("; fabric data +{}", y.saturating_sub(x)),
            _ => String::new(),
        };
        s.diag(format!(
            "GC counters: {zname} (zoned) {}; {cname} {}{fabric}",
            show(&zd),
            show(&cd)
        ));
        let copied = zd.copied + cd.copied;
        let by_host = zd.written + cd.written;
        s.diag(format!(
            "GC moved data by device copy (offload): {copied} bytes; by host I/O: {} bytes read, {by_host} bytes written",
            zd.read + cd.read
        ));
        if let Some(m) = moved {
            let bytes = m * stamp::BLOCK_SIZE as u64;
            if copied + by_host < bytes {
                return Err(fail(format!(
                    "F2FS says GC moved {bytes} bytes, but the devices received only \
                     {by_host} bytes of writes and {copied} bytes of copies"
                )));
            }
        }
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number() {
        // _IOW(0xf5, 6, __u32) from include/uapi/linux/f2fs.h.
        assert_eq!(F2FS_IOC_GARBAGE_COLLECT, 0x4004_f506);
    }

    #[test]
    fn files_are_stamped_per_file() {
        let a = file_bytes(3, 7);
        assert_eq!(a.len(), 1 << 20);
        assert_eq!(check_file(3, 7, &a), Ok(()));
        // Another file's bytes, a stale generation, a short file.
        let e = check_file(4, 7, &a).unwrap_err();
        assert!(e.starts_with("f4: block 0 of the file"), "{e}");
        assert!(check_file(3, 8, &a).unwrap_err().contains("generation"));
        let e = check_file(3, 7, &a[..4096]).unwrap_err();
        assert_eq!(e, format!("f3: 4096 bytes, expected {}", 1 << 20));
        // One block swapped with its neighbour: named.
        let mut b = a.clone();
        b.copy_within(0..4096, 8192);
        let e = check_file(3, 7, &b).unwrap_err();
        assert!(e.starts_with("f3: block 2 of the file (stamp 770)"), "{e}");
    }

    #[test]
    fn counter_growth() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        a.devs.insert(
            "ns1".into(),
            DevCounters {
                read: 10,
                written: 20,
                copied: 5,
            },
        );
        b.devs.insert(
            "ns1".into(),
            DevCounters {
                read: 4106,
                written: 8212,
                copied: 5,
            },
        );
        let g = grown(&a, &b, "ns1");
        assert_eq!(show(&g), "read +4096, written +8192, copied +0");
        assert_eq!(grown(&a, &b, "ns9"), DevCounters::default());
    }
}
