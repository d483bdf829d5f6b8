//! Faults under the kernel's copy and I/O paths, injected in the backend
//! through the control socket (`fault`, `cache` and `power_cut`, see
//! vhost-device/src/control and storage/fault.rs, storage/cache.rs):
//!
//! - `fault_media_error`: a media error inside a copy_file_range source
//!   range. The copy must end in an error (EIO, or ENODATA: the block
//!   layer's BLK_STS_MEDIUM, which NVMe Unrecovered Read Error and SCSI
//!   MEDIUM ERROR map to), and every destination block must hold either
//!   its old content or the correct copy, never the block that could not
//!   be read. A kernel without copy_file_range between block devices
//!   refuses it; then the read path is checked instead.
//! - `fault_delay_timeout`: a read the device holds past the I/O timeout
//!   (lowered to 2 s on the namespace's path queue,
//!   `queue/io_timeout`). The kernel must time it out (its log says so),
//!   and the read must end in the right data (after reconnecting and
//!   retrying) or an error, never wrong data. The copy itself cannot be
//!   delayed over NVMe/TCP on the kernels this runs on: no Copy command
//!   reaches the device (`copy-tcp-r2t`; 6.12 has no copy offload), so the
//!   delay is put on the read path, which every copy fallback takes.
//! - `fault_power_cut`: with the namespace's volatile write cache on, an
//!   O_DIRECT write without fsync is gone after a power cut, the fsync'ed
//!   and the O_DSYNC (FUA) data survive.
//!
//! Every test clears its faults and restores what it changed (I/O timeout,
//! cache mode) when it ends, however it ends.

use std::{
    fs::OpenOptions,
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    fail, is_nvm, kmsg, probe, read_full, skip, verify, Finding, Step, Suite, BS, BUG, KIB,
};
use crate::{
    blockio::{self, AlignedBuf},
    control::{self, FaultGuard},
};

/// Errnos of a read of a block the device cannot read.
const MEDIA_ERRNOS: &[i32] = &[libc::EIO, libc::ENODATA];
/// copy_file_range between block devices not supported by the kernel.
const NO_BLOCK_CFR: &[i32] = &[libc::EINVAL, libc::EXDEV, libc::EOPNOTSUPP];
/// The I/O timeout the delay test sets, in milliseconds.
const IO_TIMEOUT_MS: u64 = 2000;
/// How much longer than the timeout the device holds the read.
const DELAY_PAST_MS: u64 = 3000;

fn errno_text(e: i32) -> String {
    match e {
        libc::ENODATA => "ENODATA".to_string(),
        libc::ENOLINK => "ENOLINK".to_string(),
        libc::ETIMEDOUT => "ETIMEDOUT".to_string(),
        _ => probe::errno_name(e),
    }
}

fn guard(s: &Suite<'_>) -> Step<FaultGuard> {
    let addr = s.cfg.control.ok_or_else(|| {
        skip("no zonecopy.control= (faults are injected through the control socket)")
    })?;
    FaultGuard::new(addr).map_err(|e| fail(format!("clearing faults: {e}")))
}

/// The test's finding first; then whether its faults were cleared.
fn finish(g: FaultGuard, r: Step) -> Finding {
    let cleared = g.finish();
    match (r, cleared) {
        (Err(f), _) => f,
        (Ok(()), Err(e)) => fail(format!("clearing the faults: {e}")),
        (Ok(()), Ok(_)) => Finding::Pass,
    }
}

/// Run `body` on an NVM namespace with a fault guard, whose faults are
/// cleared however `body` ends (a failure to clear fails a passing test).
fn guarded(s: &mut Suite<'_>, body: fn(&mut Suite<'_>, usize, &mut FaultGuard) -> Step) -> Finding {
    let a = match nvm(s) {
        Ok(a) => a,
        Err(f) => return f,
    };
    let mut g = match guard(s) {
        Ok(g) => g,
        Err(f) => return f,
    };
    let r = body(s, a, &mut g);
    finish(g, r)
}

/// An NVM namespace, after `devices`.
fn nvm(s: &Suite<'_>) -> Step<usize> {
    s.needs("devices")?;
    s.find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))
}

/// Read `buf.len()` bytes at `off`, waiting out a reconnecting controller
/// (a failed command makes nvme-tcp reconnect, and reads fail meanwhile).
fn read_back(s: &mut Suite<'_>, dev: usize, buf: &mut [u8], off: u64) -> Step {
    let mut attempt = 0;
    loop {
        match read_full(&s.devs[dev].file, buf, off) {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 && s.nvme_instance.is_some() => {
                attempt += 1;
                s.diag(format!(
                    "reading back {} at {off}: {e}; waiting for the controller (attempt {attempt})",
                    s.devs[dev].name
                ));
                std::thread::sleep(Duration::from_millis(500));
                s.wait_live();
            }
            Err(e) => {
                return Err(fail(format!(
                    "reading back {} at {off}: {e}",
                    s.devs[dev].name
                )))
            }
        }
    }
}

// ------------------------------------------------------------ media error

pub(super) fn t_media_error(s: &mut Suite<'_>) -> Finding {
    guarded(s, media_error)
}

/// What one destination block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Old,
    Copy,
    Other,
}

fn media_error(s: &mut Suite<'_>, a: usize, g: &mut FaultGuard) -> Step {
    let len = 256 * KIB;
    let nblk = len / BS;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[a].alloc(len)?;
    let (name, lbs) = (s.devs[a].name.clone(), s.devs[a].lbs);
    let gen_src = s.new_gen();
    blockio::write_stamped(&s.devs[a].file, so, nblk, gen_src, 64)
        .map_err(|e| fail(format!("stamping the source: {e}")))?;
    let gen_old = s.new_gen();
    blockio::write_stamped(&s.devs[a].file, dof, nblk, gen_old, 64)
        .map_err(|e| fail(format!("stamping the destination: {e}")))?;
    let src = verify::stamped_bytes(so / BS, gen_src, 0, len as usize);
    let old = verify::stamped_bytes(dof / BS, gen_old, 0, len as usize);
    // One unreadable 4 KiB block, 64 KiB into the source.
    let bad_blk = 16u64;
    let bad_lba = (so + bad_blk * BS) / lbs;
    let (c0, id) = crate::faultcheck::inject(
        g,
        &name,
        &format!(
            r#""kind":"media_error","lba":{bad_lba},"blocks":{}"#,
            BS / lbs
        ),
    )
    .map_err(fail)?;
    s.diag(format!(
        "fault {id}: media error at {name} LBA {bad_lba} (source block {bad_blk} of {nblk}); \
         copy_file_range {name} byte {so} -> byte {dof}, {len} bytes"
    ));
    if s.no_offload.is_none() && s.devs[a].limits.offload_enabled() {
        // The copy is offered to the device: the series loses its error.
        s.exposed = &[BUG];
    }
    let mut log = kmsg::Kmsg::start();
    let cfr = probe::copy_file_range(&s.devs[a].file, so, &s.devs[a].file, dof, len);
    s.wait_live();
    let klog = log.since();
    s.diag(format!("copy_file_range: {cfr}"));
    for l in klog.iter().take(8) {
        s.diag(format!("kernel: {l}"));
    }
    let fired = g.client().fault_counts(&name).map_err(fail)?.media_error - c0.media_error;
    s.diag(format!("the media error fired {fired} time(s)"));
    let mut got = AlignedBuf::new(len as usize);
    read_back(s, a, got.as_mut_slice(), dof)?;
    let b = BS as usize;
    let held: Vec<Held> = (0..nblk as usize)
        .map(|i| {
            let blk = &got.as_slice()[i * b..(i + 1) * b];
            if blk == &old[i * b..(i + 1) * b] {
                Held::Old
            } else if blk == &src[i * b..(i + 1) * b] {
                Held::Copy
            } else {
                Held::Other
            }
        })
        .collect();
    let copies = held.iter().filter(|h| **h == Held::Copy).count();
    s.diag(format!(
        "destination: {copies} block(s) copied, {} old, {} other",
        held.iter().filter(|h| **h == Held::Old).count(),
        held.iter().filter(|h| **h == Held::Other).count()
    ));
    if let Some(i) = held.iter().position(|h| *h == Held::Other) {
        return Err(fail(format!(
            "destination block {i} holds neither its old content nor the copy: {}",
            verify::describe_block(&got.as_slice()[i * b..(i + 1) * b])
        )));
    }
    if held[bad_blk as usize] == Held::Copy {
        return Err(fail(format!(
            "destination block {bad_blk} holds the copy of a block the device could not read"
        )));
    }
    match cfr.errno() {
        Some(e) if NO_BLOCK_CFR.contains(&e) && cfr.copied == 0 => {
            let m = Media {
                a,
                so,
                len,
                name: &name,
                before: c0.media_error,
            };
            refused(s, g, &m, e, copies)
        }
        Some(e) => failed(s, &cfr, e, fired, bad_blk, &held),
        None if copies == 0 && fired == 0 => Err(Finding::Bug {
            id: BUG,
            why: format!(
                "copy_file_range reported {} of {len} bytes copied over a block the device \
                 cannot read; the destination was never written and no read reached the \
                 device: the offload's error was lost",
                cfr.copied
            ),
        }),
        None => Err(fail(format!(
            "copy_file_range reported success ({} of {len} bytes) over a block the device \
             cannot read ({copies} block(s) copied, media error fired {fired} time(s))",
            cfr.copied
        ))),
    }
}

/// The source range of the media-error copy and the fault count before it.
struct Media<'n> {
    a: usize,
    so: u64,
    len: u64,
    name: &'n str,
    before: u64,
}

/// No copy_file_range between block devices here: the kernel's read path
/// must report the media error.
fn refused(s: &mut Suite<'_>, g: &mut FaultGuard, m: &Media<'_>, e: i32, copies: usize) -> Step {
    let Media {
        a, so, len, name, ..
    } = *m;
    s.diag(format!(
        "copy_file_range between block devices refused ({}): checking the read path",
        errno_text(e)
    ));
    if copies > 0 {
        return Err(fail("the refused copy changed the destination"));
    }
    let mut buf = AlignedBuf::new(len as usize);
    match s.devs[a].file.read_at(buf.as_mut_slice(), so) {
        Err(e) if e.raw_os_error().is_some_and(|n| MEDIA_ERRNOS.contains(&n)) => {
            s.diag(format!("O_DIRECT read over the media error: {e}"));
        }
        Err(e) => {
            return Err(fail(format!(
                "O_DIRECT read over the media error failed with {e}, expected EIO or ENODATA"
            )))
        }
        Ok(n) => {
            return Err(fail(format!(
                "O_DIRECT read over the media error returned {n} bytes"
            )))
        }
    }
    let fired = g.client().fault_counts(name).map_err(fail)?.media_error - m.before;
    if fired == 0 {
        return Err(fail("the read failed, but not at the injected media error"));
    }
    Ok(())
}

/// copy_file_range failed: with the media error's errno, after it fired,
/// and with no more reported copied than lies before the bad block.
fn failed(
    s: &mut Suite<'_>,
    cfr: &probe::Cfr,
    e: i32,
    fired: u64,
    bad_blk: u64,
    held: &[Held],
) -> Step {
    if !MEDIA_ERRNOS.contains(&e) {
        return Err(fail(format!(
            "copy_file_range failed with {} after {} bytes, expected EIO or ENODATA",
            errno_text(e),
            cfr.copied
        )));
    }
    if fired == 0 {
        return Err(fail(format!(
            "copy_file_range failed with {}, but the media error never fired",
            errno_text(e)
        )));
    }
    if cfr.copied > bad_blk * BS {
        return Err(fail(format!(
            "copy_file_range reported {} bytes copied, past the unreadable block at byte {}",
            cfr.copied,
            bad_blk * BS
        )));
    }
    // What it reports copied must be there.
    let done = (cfr.copied / BS) as usize;
    if let Some(i) = held[..done].iter().position(|h| *h != Held::Copy) {
        return Err(fail(format!(
            "copy_file_range reported {} bytes, but destination block {i} is not the copy",
            cfr.copied
        )));
    }
    s.diag(format!(
        "copy_file_range ended with {} after {} bytes, as it must",
        errno_text(e),
        cfr.copied
    ));
    Ok(())
}

// ------------------------------------------------------------ delay

pub(super) fn t_delay_timeout(s: &mut Suite<'_>) -> Finding {
    guarded(s, delay_timeout)
}

/// The `queue/io_timeout` the namespace's I/O times out by: the path
/// device's (`nvme<S>c<C>n<N>`, hidden) under native multipath, else the
/// disk's own.
fn io_timeout_path(sys: &Path, inst: u32, block: &str) -> Option<PathBuf> {
    let (prefix, ns) = block.rsplit_once('n')?;
    let path = format!("{prefix}c{inst}n{ns}");
    [path.as_str(), block]
        .iter()
        .map(|b| sys.join("block").join(b).join("queue/io_timeout"))
        .find(|p| p.exists())
}

/// Puts a sysfs value back when dropped.
struct Restore {
    path: PathBuf,
    old: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.old);
    }
}

fn delay_timeout(s: &mut Suite<'_>, a: usize, g: &mut FaultGuard) -> Step {
    let inst = s
        .nvme_instance
        .ok_or_else(|| skip("no NVMe controller connected"))?;
    let path = io_timeout_path(s.sys, inst, &s.devs[a].block).ok_or_else(|| {
        skip(format!(
            "no queue/io_timeout for {} (the default NVMe I/O timeout, 30 s, is too long here)",
            s.devs[a].block
        ))
    })?;
    let old = std::fs::read_to_string(&path)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?
        .trim()
        .to_string();
    std::fs::write(&path, IO_TIMEOUT_MS.to_string()).map_err(|e| {
        skip(format!(
            "cannot lower {} from {old} ms: {e} (the default NVMe I/O timeout, 30 s, is too long here)",
            path.display()
        ))
    })?;
    let _restore = Restore {
        path: path.clone(),
        old: old.clone(),
    };
    s.diag(format!("{}: {old} -> {IO_TIMEOUT_MS} ms", path.display()));
    // The suite runs with max_retries 0 (a failed command comes back at
    // once); allow retries here, so the timed-out read can be sent again
    // after the reconnect.
    let retries = s.sys.join("module/nvme_core/parameters/max_retries");
    let _retries = match std::fs::read_to_string(&retries) {
        Ok(v) if std::fs::write(&retries, "2").is_ok() => {
            s.diag(format!(
                "nvme_core max_retries {} -> 2 for this test",
                v.trim()
            ));
            Some(Restore {
                path: retries,
                old: v.trim().to_string(),
            })
        }
        _ => None,
    };
    let len = 64 * KIB;
    let so = s.devs[a].alloc(len)?;
    let (name, lbs) = (s.devs[a].name.clone(), s.devs[a].lbs);
    let gen = s.new_gen();
    blockio::write_stamped(&s.devs[a].file, so, len / BS, gen, 16)
        .map_err(|e| fail(format!("stamping: {e}")))?;
    let delay = IO_TIMEOUT_MS + DELAY_PAST_MS;
    let (c0, id) = crate::faultcheck::inject(
        g,
        &name,
        &format!(
            r#""kind":"delay","ms":{delay},"on":"read","lba":{},"blocks":{},"count":1"#,
            so / lbs,
            len / lbs
        ),
    )
    .map_err(fail)?;
    s.diag(format!(
        "fault {id}: the next read of {name} LBA {} +{} waits {delay} ms",
        so / lbs,
        len / lbs
    ));
    let mut log = kmsg::Kmsg::start();
    let t0 = Instant::now();
    let mut buf = AlignedBuf::new(len as usize);
    let r = read_full(&s.devs[a].file, buf.as_mut_slice(), so);
    let took = t0.elapsed();
    s.wait_live();
    let klog = log.since();
    for l in klog.iter().filter(|l| l.contains("nvme")).take(8) {
        s.diag(format!("kernel: {l}"));
    }
    let fired = g.client().fault_counts(&name).map_err(fail)?.delay - c0.delay;
    s.diag(format!(
        "read: {} after {:.1} s; the delay fired {fired} time(s)",
        match &r {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        },
        took.as_secs_f64()
    ));
    if fired != 1 {
        return Err(fail(format!(
            "the delay fired {fired} times, expected once: the read did not reach the device as asked"
        )));
    }
    let timed_out = klog
        .iter()
        .any(|l| l.contains("nvme") && (l.contains("timeout") || l.contains("timed out")));
    if !timed_out {
        return Err(fail(format!(
            "the device held the read {delay} ms, past the {IO_TIMEOUT_MS} ms I/O timeout, \
             but the kernel logged no timeout (read took {:.1} s)",
            took.as_secs_f64()
        )));
    }
    match r {
        Ok(()) => {
            crate::stamp::verify_range(buf.as_slice(), so / BS, gen).map_err(|(b, e)| {
                fail(format!(
                    "after the timeout the read returned wrong data at block {b}: {e}"
                ))
            })?;
            s.diag(
                "the timed-out read was retried after the reconnect and returned the right data",
            );
        }
        Err(e) => {
            s.diag(format!(
                "the timed-out read ended in an error ({e}), not in wrong data"
            ));
            // The device is fine again: the data reads back.
            let mut again = AlignedBuf::new(len as usize);
            read_back(s, a, again.as_mut_slice(), so)?;
            crate::stamp::verify_range(again.as_slice(), so / BS, gen).map_err(|(b, e)| {
                fail(format!("reading again after the timeout: block {b}: {e}"))
            })?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------ power cut

pub(super) fn t_power_cut(s: &mut Suite<'_>) -> Finding {
    let a = match nvm(s) {
        Ok(a) => a,
        Err(f) => return f,
    };
    let Some(addr) = s.cfg.control else {
        return skip("no zonecopy.control= (power cuts are made through the control socket)");
    };
    match power_cut(s, a, addr) {
        Ok(()) => Finding::Pass,
        Err(f) => f,
    }
}

/// Turns the volatile write cache back off when dropped (if the test
/// turned it on).
struct CacheOff {
    client: control::Client,
    dev: String,
}

impl Drop for CacheOff {
    fn drop(&mut self) {
        let _ = self.client.cache_mode(&self.dev, Some("none"));
    }
}

fn power_cut(s: &mut Suite<'_>, a: usize, addr: std::net::SocketAddr) -> Step {
    let (name, lbs) = (s.devs[a].name.clone(), s.devs[a].lbs);
    let mut ctl = control::Client::new(addr);
    let mode = ctl.cache_mode(&name, None).map_err(fail)?;
    let _off = if mode == "volatile" {
        None
    } else {
        let now = ctl.cache_mode(&name, Some("volatile")).map_err(fail)?;
        if now != "volatile" {
            return Err(fail(format!(
                "{name}: cache mode {now} after asking for volatile"
            )));
        }
        Some(CacheOff {
            client: control::Client::new(addr),
            dev: name.clone(),
        })
    };
    s.diag(format!("{name}: volatile write cache on (was {mode})"));
    let len = 64 * KIB;
    let nblk = len / BS;
    let off = s.devs[a].alloc(len)?;
    let file = s.devs[a]
        .file
        .try_clone()
        .map_err(|e| fail(format!("dup: {e}")))?;
    let per_blk = BS / lbs;
    // 1. Written and fsync'ed: durable.
    let gen1 = s.new_gen();
    blockio::write_stamped(&file, off, nblk, gen1, 16).map_err(|e| fail(format!("write: {e}")))?;
    file.sync_all().map_err(|e| fail(format!("fsync: {e}")))?;
    // 2. Written over its first half, O_DIRECT, no fsync: held.
    let gen2 = s.new_gen();
    blockio::write_stamped(&file, off, nblk / 2, gen2, 8)
        .map_err(|e| fail(format!("write: {e}")))?;
    blockio::read_verify(&file, off, nblk / 2, gen2).map_err(|e| {
        fail(format!(
            "before the power cut, reading the unflushed write: {e}"
        ))
    })?;
    let cut = ctl.power_cut(&name).map_err(fail)?;
    s.diag(format!(
        "power cut: {} block(s) dropped, {} zone(s) rolled back",
        cut.dropped_blocks, cut.zones_rolled_back
    ));
    if cut.dropped_blocks != nblk / 2 * per_blk {
        return Err(fail(format!(
            "the power cut dropped {} blocks, expected the {} written since the fsync",
            cut.dropped_blocks,
            nblk / 2 * per_blk
        )));
    }
    blockio::read_verify(&file, off, nblk, gen1).map_err(|e| {
        fail(format!(
            "after the power cut the fsync'ed data should be back, the unflushed write gone: {e}"
        ))
    })?;
    s.diag("unflushed O_DIRECT write lost, fsync'ed data kept");
    // 3. O_DSYNC (FUA) write, then a plain one after it: only the plain one
    // is lost.
    let path = Path::new("/dev").join(&s.devs[a].block);
    let dsync = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(&path)
        .map_err(|e| fail(format!("open {} O_DIRECT|O_DSYNC: {e}", path.display())))?;
    let gen3 = s.new_gen();
    blockio::write_stamped(&dsync, off, 4, gen3, 4).map_err(|e| fail(format!("write: {e}")))?;
    let gen4 = s.new_gen();
    blockio::write_stamped(&file, off + 4 * BS, 4, gen4, 4)
        .map_err(|e| fail(format!("write: {e}")))?;
    let cut = ctl.power_cut(&name).map_err(fail)?;
    if cut.dropped_blocks != 4 * per_blk {
        return Err(fail(format!(
            "the second power cut dropped {} blocks, expected the {} written after the O_DSYNC write",
            cut.dropped_blocks,
            4 * per_blk
        )));
    }
    blockio::read_verify(&file, off, 4, gen3).map_err(|e| {
        fail(format!(
            "the O_DSYNC (FUA) write did not survive the power cut: {e}"
        ))
    })?;
    blockio::read_verify(&file, off + 4 * BS, nblk - 4, gen1).map_err(|e| {
        fail(format!(
            "after the second power cut, the unflushed write should be gone: {e}"
        ))
    })?;
    s.diag("O_DSYNC (FUA) write kept, the plain write after it lost");
    drop(dsync);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_timeout_path_prefers_the_multipath_path_device() {
        let dir = std::env::temp_dir().join(format!("kcopy-faults-{}", std::process::id()));
        let q = |b: &str| dir.join("block").join(b).join("queue");
        std::fs::create_dir_all(q("nvme0n2")).unwrap();
        std::fs::write(q("nvme0n2").join("io_timeout"), "30000").unwrap();
        assert_eq!(
            io_timeout_path(&dir, 3, "nvme0n2"),
            Some(q("nvme0n2").join("io_timeout"))
        );
        std::fs::create_dir_all(q("nvme0c3n2")).unwrap();
        std::fs::write(q("nvme0c3n2").join("io_timeout"), "30000").unwrap();
        assert_eq!(
            io_timeout_path(&dir, 3, "nvme0n2"),
            Some(q("nvme0c3n2").join("io_timeout"))
        );
        assert_eq!(io_timeout_path(&dir, 3, "sdb"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
