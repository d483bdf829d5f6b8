//! Suite `kill`: no acknowledged write is lost when the backend dies.
//!
//! The runner (`zonecopy-ci kill`) serves the device from a second backend
//! process and kills it with SIGKILL every couple of seconds, starting a
//! new one on the same backing files each time. The guest writes
//! LBA-stamped 4 KiB blocks with O_DIRECT|O_DSYNC in passes over the
//! device, each pass a new generation. A write the kernel completed is
//! acknowledged durable (the device has no volatile write cache, and
//! O_DSYNC would flush one), so once the writer has lived through
//! [`MIN_RESETS`] kills every block must hold the generation of its last
//! acknowledged write.
//!
//! Two victims, chosen by the command line:
//! - `zonecopy.nvme=` given: an NVMe namespace over NVMe/TCP. The guest
//!   connects with `reconnect_delay=1,ctrl_loss_tmo=-1`, so nvme-tcp
//!   reconnects after every kill and requeues the commands the dead backend
//!   never answered; a kill is a controller reset seen in sysfs.
//! - otherwise: the vhost-user-scsi device (LUN 0). QEMU reconnects to the
//!   new backend, which serves again what the dead one left in flight; the
//!   guest sees no reset at all, so the runner posts the kill count in the
//!   first block of LUN 1 (ASCII digits), read here with O_DIRECT.
//!
//! Results: the kills seen (they reached the guest), the writes all
//! completed (none failed through a kill), and the read-back count of
//! acknowledged writes lost, which must be 0.

use std::{
    fs::{self, File},
    io::{self, Write},
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use crate::{
    blockio::AlignedBuf,
    cmdline::{Config, NvmeTarget},
    ktap::{Ktap, Outcome},
    nvme::connect::{self, HostId},
    runner::Runner,
    stamp::{self, BLOCK_SIZE},
    sysfs,
};

/// Controller resets the writer must live through.
pub const MIN_RESETS: u32 = 50;
/// Longest the writer keeps going while waiting for resets.
const WRITE_LIMIT: Duration = Duration::from_secs(420);
/// Blocks per write (64 KiB).
const PER_WRITE: u64 = 16;
/// How long to wait for the namespace to appear, and to be live again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Extra fabrics options: reconnect one second after a loss, forever.
const RECONNECT_OPTIONS: &str = "reconnect_delay=1,ctrl_loss_tmo=-1";

/// What the writer did.
#[derive(Debug, Default)]
struct Written {
    /// Generation of the last acknowledged write of each block (0: never).
    acked: Vec<u64>,
    /// Writes acknowledged.
    writes: u64,
    /// Writes that returned an error (with the first error).
    failed: u64,
    first_error: Option<String>,
}

/// Counts the kills seen, polling `count` (kills so far) every 20 ms.
struct ResetWatch {
    resets: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

/// NVMe: counts transitions of the controller's `state` out of `live`.
fn controller_resets(state_file: PathBuf) -> Box<dyn FnMut() -> u32 + Send> {
    let (mut was_live, mut n) = (true, 0);
    Box::new(move || {
        let live = fs::read_to_string(&state_file).is_ok_and(|st| st.trim() == "live");
        if was_live && !live {
            n += 1;
        }
        was_live = live;
        n
    })
}

/// SCSI: the kill count the runner posts in the mailbox LU's first block.
fn mailbox_kills(mailbox: File) -> Box<dyn FnMut() -> u32 + Send> {
    let mut buf = AlignedBuf::new(BLOCK_SIZE);
    let mut last = 0;
    Box::new(move || {
        if mailbox.read_exact_at(buf.as_mut_slice(), 0).is_ok() {
            let digits: String = buf
                .as_mut_slice()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| char::from(b))
                .collect();
            last = digits.parse().unwrap_or(last);
        }
        last
    })
}

impl ResetWatch {
    fn start(mut count: Box<dyn FnMut() -> u32 + Send>) -> Self {
        let resets = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&resets), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                r.store(count(), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(20));
            }
        });
        ResetWatch {
            resets,
            stop,
            thread: Some(thread),
        }
    }

    fn resets(&self) -> u32 {
        self.resets.load(Ordering::Relaxed)
    }
}

impl Drop for ResetWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Wait until `state_file` says `live` again.
fn wait_live(state_file: &Path, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if fs::read_to_string(state_file).is_ok_and(|s| s.trim() == "live") {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Write passes of stamped blocks until `resets` reaches [`MIN_RESETS`] or
/// the time limit.
fn write_storm(f: &File, blocks: u64, watch: &ResetWatch) -> Written {
    let mut w = Written {
        acked: vec![0; usize::try_from(blocks).unwrap_or(0)],
        ..Written::default()
    };
    let start = Instant::now();
    let mut buf = AlignedBuf::new(PER_WRITE as usize * BLOCK_SIZE);
    let mut gen = 1u64;
    'passes: loop {
        let mut lba = 0;
        while lba < blocks {
            if watch.resets() >= MIN_RESETS || start.elapsed() > WRITE_LIMIT {
                break 'passes;
            }
            let n = PER_WRITE.min(blocks - lba);
            let bytes = &mut buf.as_mut_slice()[..n as usize * BLOCK_SIZE];
            if let Err(e) = stamp::fill_range(bytes, lba, gen) {
                w.first_error.get_or_insert(e.to_string());
                w.failed += 1;
                break 'passes;
            }
            match f.write_at(bytes, lba * BLOCK_SIZE as u64) {
                Ok(len) if len == bytes.len() => {
                    w.writes += 1;
                    for b in lba..lba + n {
                        w.acked[b as usize] = gen;
                    }
                }
                Ok(len) => {
                    w.failed += 1;
                    w.first_error
                        .get_or_insert(format!("short write of {len} bytes at block {lba}"));
                }
                Err(e) => {
                    w.failed += 1;
                    w.first_error
                        .get_or_insert(format!("write at block {lba}: {e}"));
                }
            }
            lba += n;
        }
        gen += 1;
    }
    w
}

/// Read every block back; return (blocks lost, first loss described).
fn count_lost(f: &File, acked: &[u64]) -> io::Result<(u64, Option<String>)> {
    let mut lost = 0;
    let mut first = None;
    let mut buf = AlignedBuf::new(PER_WRITE as usize * BLOCK_SIZE);
    for (chunk_no, chunk) in acked.chunks(PER_WRITE as usize).enumerate() {
        let lba = chunk_no as u64 * PER_WRITE;
        let bytes = &mut buf.as_mut_slice()[..chunk.len() * BLOCK_SIZE];
        f.read_exact_at(bytes, lba * BLOCK_SIZE as u64)?;
        for (i, &gen) in chunk.iter().enumerate() {
            if gen == 0 {
                continue;
            }
            let block = &bytes[i * BLOCK_SIZE..(i + 1) * BLOCK_SIZE];
            if let Err(e) = stamp::verify(block, lba + i as u64, gen) {
                lost += 1;
                first.get_or_insert(format!(
                    "block {} (acknowledged at generation {gen}): {e}",
                    lba + i as u64
                ));
            }
        }
    }
    Ok((lost, first))
}

/// Run the suite; returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    let k = &Runner::new(k);
    k.plan(3)?;
    let fail_all = |k: &Runner<'_, W>, why: String| -> io::Result<bool> {
        for name in [
            "resets_seen",
            "writes_completed",
            "acknowledged_writes_kept",
        ] {
            k.result(name, &Outcome::Fail(why.clone()))?;
        }
        Ok(false)
    };
    let victim = match cfg.nvme.as_ref() {
        Some(t) => nvme_victim(t, sys_root),
        None => scsi_victim(sys_root),
    };
    let v = match victim {
        Ok(v) => v,
        Err(why) => return fail_all(k, why),
    };
    let file = &v.file;
    let blocks = v.blocks;
    k.diag(&format!(
        "writing {blocks} blocks of {} in passes with O_DIRECT|O_DSYNC until {MIN_RESETS} {}",
        v.name, v.kills_are
    ))?;

    let watch = ResetWatch::start(v.count);
    let started = Instant::now();
    let w = write_storm(file, blocks, &watch);
    let resets = watch.resets();
    drop(watch);
    k.diag(&format!(
        "{} writes of {} KiB acknowledged, {} failed, {resets} {}, {:.0} s",
        w.writes,
        PER_WRITE * BLOCK_SIZE as u64 / 1024,
        w.failed,
        v.kills_are,
        started.elapsed().as_secs_f64()
    ))?;
    let mut all_ok = true;
    let resets_outcome = if resets >= MIN_RESETS {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "only {resets} {} seen in {} s (wanted {MIN_RESETS})",
            v.kills_are,
            WRITE_LIMIT.as_secs()
        ))
    };
    all_ok &= !resets_outcome.is_failure();
    k.result("resets_seen", &resets_outcome)?;
    let writes_outcome = match (&w.first_error, w.writes) {
        (Some(e), _) => Outcome::Fail(format!("{} writes failed, first: {e}", w.failed)),
        (None, 0) => Outcome::Fail("no write completed".into()),
        (None, _) => Outcome::Pass,
    };
    all_ok &= !writes_outcome.is_failure();
    k.result("writes_completed", &writes_outcome)?;

    // The last kill may have just happened: read back once live again.
    let live = match &v.nvme {
        Some((state_file, _)) => wait_live(state_file, CONNECT_TIMEOUT),
        None => true,
    };
    let kept = if !live {
        Outcome::Fail("the controller did not come back live to read back".into())
    } else {
        match count_lost(file, &w.acked) {
            Ok((0, _)) => {
                let acked = w.acked.iter().filter(|&&g| g != 0).count();
                k.diag(&format!(
                    "acknowledged durable writes lost: 0 of {} ({acked} blocks checked) over {resets} backend kills",
                    w.writes
                ))?;
                Outcome::Pass
            }
            Ok((lost, first)) => Outcome::Fail(format!(
                "{lost} acknowledged blocks lost over {resets} backend kills; first: {}",
                first.unwrap_or_default()
            )),
            Err(e) => Outcome::Fail(format!("read back: {e}")),
        }
    };
    all_ok &= !kept.is_failure();
    k.result("acknowledged_writes_kept", &kept)?;
    if let Some((_, instance)) = v.nvme {
        drop(v.file);
        if let Err(e) = connect::delete_controller(sys_root, instance, CONNECT_TIMEOUT) {
            k.diag(&format!("disconnect: {e}"))?;
        }
    }
    Ok(all_ok)
}

/// The device the storm writes to, and how kills are counted.
struct Victim {
    file: File,
    /// Block device name.
    name: String,
    blocks: u64,
    /// Kills seen so far.
    count: Box<dyn FnMut() -> u32 + Send>,
    /// What a kill looks like from here ("controller resets", ...).
    kills_are: &'static str,
    /// NVMe: the controller's state file and instance.
    nvme: Option<(PathBuf, u32)>,
}

fn open_direct(path: &Path) -> Result<File, String> {
    File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
        .map_err(|e| format!("open {}: {e}", path.display()))
}

fn blocks_of(sys_root: &Path, block: &str) -> Result<u64, String> {
    match fs::read_to_string(sys_root.join("block").join(block).join("size")) {
        Ok(s) => Ok(s.trim().parse::<u64>().unwrap_or(0) * 512 / BLOCK_SIZE as u64),
        Err(e) => Err(format!("size of {block}: {e}")),
    }
}

/// Connect to the NVMe/TCP victim; kills are controller resets.
fn nvme_victim(t: &NvmeTarget, sys_root: &Path) -> Result<Victim, String> {
    let host = HostId::generate();
    let opts = format!(
        "{},{RECONNECT_OPTIONS}",
        connect::connect_options(t, &t.nqn, &host)
    );
    let conn = connect::fabrics_connect(&opts).map_err(|e| format!("connect ({opts}): {e}"))?;
    let (found, _) = connect::wait_for_namespaces(
        sys_root,
        Path::new("/dev"),
        conn.instance,
        &[1],
        CONNECT_TIMEOUT,
    );
    let ns = found.first().ok_or("namespace 1 did not appear")?;
    let state_file = connect::ctrl_dir(sys_root, conn.instance).join("state");
    Ok(Victim {
        file: open_direct(&ns.dev_path())?,
        name: ns.block.clone(),
        blocks: blocks_of(sys_root, &ns.block)?,
        count: controller_resets(state_file.clone()),
        kills_are: "controller resets",
        nvme: Some((state_file, conn.instance)),
    })
}

/// The vhost-user-scsi victim: LUN 0 takes the storm, LUN 1 is the
/// runner's kill count mailbox.
fn scsi_victim(sys_root: &Path) -> Result<Victim, String> {
    let (disks, _) = sysfs::wait_for_luns(sys_root, &[0, 1], CONNECT_TIMEOUT);
    let storm = sysfs::pick_lun(&disks, 0)?;
    let mailbox = sysfs::pick_lun(&disks, 1)?;
    let mailbox = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(mailbox.dev_path())
        .map_err(|e| format!("open {}: {e}", mailbox.dev_path().display()))?;
    Ok(Victim {
        file: open_direct(&storm.dev_path())?,
        name: storm.name.clone(),
        blocks: blocks_of(sys_root, &storm.name)?,
        count: mailbox_kills(mailbox),
        kills_are: "backend kills (runner's mailbox)",
        nvme: None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn the_mailbox_count_is_the_leading_digits_and_sticks_on_garbage() {
        let path = std::env::temp_dir().join(format!("zonecopy-mailbox-{}", std::process::id()));
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        fs::remove_file(&path).unwrap();
        let mut count = mailbox_kills(f.try_clone().unwrap());
        // An empty (short) device: no count yet.
        assert_eq!(count(), 0);
        let mut block = vec![0u8; BLOCK_SIZE];
        block[..3].copy_from_slice(b"42\n");
        f.write_all(&block).unwrap();
        assert_eq!(count(), 42);
        // Garbage keeps the last good count.
        f.write_all_at(b"x", 0).unwrap();
        assert_eq!(count(), 42);
    }
}
