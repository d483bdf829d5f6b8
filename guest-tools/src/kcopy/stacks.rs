//! Copies through device-mapper stacks.
//!
//! - `dm_linear`: a dm-linear table at a non-zero offset of an NVM
//!   namespace. The series stacks the copy limits through dm and lets
//!   dm-linear pass copies down, so the dm device must show the namespace's
//!   limits and a copy within it is expected offloaded; every destination
//!   block is checked on the host at the REMAPPED LBAs (table offset + dm
//!   offset), and the kernel log shows the LBA the NVMe Copy went to.
//! - `dm_crypt`: dm-crypt (aes-xts-plain64, a fixed key) over dm-linear. Its
//!   sectors are encrypted with an IV from their own sector number, so the
//!   ciphertext of the same plaintext differs from place to place and a copy
//!   the device did on ciphertext would decrypt to garbage: dm-crypt must
//!   advertise `copy_max_bytes` 0 and the kernel must copy by reading and
//!   writing. The test shows the ciphertext of source and destination differ
//!   (host checksums) and that the source's ciphertext put at the
//!   destination does not decrypt to the plaintext.
//! - `dm_cross_device`: from a dm-linear device (copy-capable) to a SCSI LUN
//!   (no SCSI copy in the series): the kernel must fall back, nothing is
//!   copied by the device.
//!
//! The dm devices come from the host's `dmsetup` (run under `chroot /host`,
//! [`crate::hosttool`]), without udev (`--noudevsync`: devtmpfs makes
//! `/dev/dm-N`), and are removed at the end of each test.
//!
//! Known bug [`BUG_DM_CRYPT`]: on the 7.2 copy-offload kernels dm-crypt
//! keeps the copy limits stacked from below (16 MiB over dm-linear over
//! NVMe) and a copy_file_range on it oopses the kernel in `crypt_convert`
//! (the copy bios carry no data pages). The test never sends that copy: it
//! reports the limit, forces `copy_max_bytes` to 0 and checks the fallback.

use std::{
    fs::File,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use super::{
    fail, is_nvm, kmsg, probe, read_full, skip, Case, Dev, Expect, Finding, MaxBytes, Step, Suite,
    BS, KIB, MIB, SECTOR,
};
use crate::{blockio, hosttool, stamp};

/// Known-bug id: dm-crypt advertises the copy limits of the device below
/// and maps copy bios as data bios (oops in crypt_convert).
pub const BUG_DM_CRYPT: &str = "copy-dm-crypt-oops";

/// The dm-crypt key: 512 bits for aes-xts-plain64 (two AES-256 keys), a
/// fixed test value.
pub const CRYPT_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
                             f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100";

/// Bytes of the namespace each dm-linear table maps.
const MAP_LEN: u64 = 4 * MIB;
/// The copy every stack test makes: 256 KiB from dm byte 128 KiB to 2 MiB.
const COPY_LEN: u64 = 256 * KIB;
const COPY_SRC: u64 = 128 * KIB;
const COPY_DST: u64 = 2 * MIB;

/// One device-mapper device this suite made.
#[derive(Debug, Clone)]
struct Mapped {
    name: String,
    /// Kernel disk name (`dm-0`).
    block: String,
    /// `major:minor`, to stack another table on it.
    devno: String,
}

/// The dm devices of one test, removed top first.
#[derive(Debug, Default)]
struct Stack {
    maps: Vec<Mapped>,
}

impl Stack {
    /// `dmsetup create NAME --table TABLE` and find its disk.
    fn create(&mut self, sys: &Path, name: &str, table: &str) -> Step<Mapped> {
        hosttool::run(
            "dmsetup",
            &["create", name, "--noudevsync", "--table", table],
        )
        .map_err(|e| fail(format!("dmsetup create {name} ({table}): {e}")))?;
        // The table is live once dmsetup returns; the disk is in sysfs.
        let Some(block) = dm_disk(sys, name) else {
            let _ = remove(name);
            return Err(fail(format!(
                "dmsetup created {name} but no {}/block/dm-*/dm/name says so",
                sys.display()
            )));
        };
        let devno = read_trim(&sys.join("block").join(&block).join("dev")).unwrap_or_default();
        let m = Mapped {
            name: name.to_string(),
            block,
            devno,
        };
        self.maps.push(m.clone());
        Ok(m)
    }

    /// Remove every device, top first; the errors, if any.
    fn teardown(&mut self) -> Result<(), String> {
        let mut errs = Vec::new();
        while let Some(m) = self.maps.pop() {
            if let Err(e) = remove(&m.name) {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// `dmsetup remove`, retried while the device is still busy (a just
/// closed fd, a reconnecting controller).
fn remove(name: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match hosttool::run("dmsetup", &["remove", "--noudevsync", name]) {
            Ok(_) => return Ok(()),
            Err(e) if start.elapsed() > Duration::from_secs(5) => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn read_trim(p: &Path) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The disk (`dm-N`) whose `dm/name` is `name`.
fn dm_disk(sys: &Path, name: &str) -> Option<String> {
    let dir = std::fs::read_dir(sys.join("block")).ok()?;
    dir.flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|d| d.starts_with("dm-"))
        .find(|d| read_trim(&sys.join("block").join(d).join("dm/name")).as_deref() == Some(name))
}

/// A dm-linear table mapping `len` bytes of the disk `devno` from byte
/// `off` (both multiples of 512).
pub fn linear_table(devno: &str, off: u64, len: u64) -> String {
    format!("0 {} linear {devno} {}", len / SECTOR, off / SECTOR)
}

/// A dm-crypt table (aes-xts-plain64, [`CRYPT_KEY`], IV offset 0) over all
/// `len` bytes of the disk `devno`.
pub fn crypt_table(devno: &str, len: u64) -> String {
    format!(
        "0 {} crypt aes-xts-plain64 {CRYPT_KEY} 0 {devno} 0",
        len / SECTOR
    )
}

/// Open the dm disk `m` as a suite device that the backend knows as
/// `backend` (its counters and checksums), its byte 0 at `host_base` there.
fn push_dev(
    s: &mut Suite<'_>,
    m: &Mapped,
    backend: &str,
    nvme: bool,
    host_base: Option<u64>,
) -> Step<usize> {
    let q = s.sys.join("block").join(&m.block);
    let num = |p: &str| -> Step<u64> {
        read_trim(&q.join(p))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| fail(format!("{}/{p}: unreadable", q.display())))
    };
    let lbs = num("queue/logical_block_size")?;
    let size = num("size")? * SECTOR;
    let path = Path::new("/dev").join(&m.block);
    let file = blockio::open_direct(&path)
        .map_err(|e| fail(format!("open {} O_RDWR|O_DIRECT: {e}", path.display())))?;
    let limits = probe::limits(s.sys, &m.block).map_err(|e| fail(e.to_string()))?;
    s.devs.push(Dev {
        name: backend.to_string(),
        nvme,
        block: m.block.clone(),
        lbs,
        size,
        zones: None,
        file,
        limits,
        next_off: 0,
        next_zone: 0,
        host_base,
    });
    Ok(s.devs.len() - 1)
}

/// A dm-linear device over [`MAP_LEN`] fresh bytes of `s.devs[under]`
/// (never at its byte 0), opened as a suite device: (index, offset).
fn linear_over(s: &mut Suite<'_>, st: &mut Stack, under: usize, name: &str) -> Step<(usize, u64)> {
    let off = s.devs[under].alloc(MAP_LEN)?;
    if off == 0 {
        return Err(fail("suite bug: a dm-linear test wants a non-zero offset"));
    }
    let (bname, block, nvme) = (
        s.devs[under].name.clone(),
        s.devs[under].block.clone(),
        s.devs[under].nvme,
    );
    let devno = read_trim(&s.sys.join("block").join(&block).join("dev"))
        .ok_or_else(|| fail(format!("{bname}: no {block}/dev in sysfs")))?;
    let table = linear_table(&devno, off, MAP_LEN);
    let m = st.create(s.sys, name, &table)?;
    let i = push_dev(s, &m, &bname, nvme, Some(off))?;
    s.diag(format!(
        "{name} = /dev/{} ({}): '{table}' = {bname} (/dev/{block}) bytes {off}..{}; {}",
        m.block,
        m.devno,
        off + MAP_LEN,
        s.devs[i].limits
    ));
    Ok((i, off))
}

/// Run `body` with a fresh [`Stack`]; afterwards close the dm devices the
/// body opened and remove them. A failed removal fails a passing test.
fn with_stack(s: &mut Suite<'_>, body: impl FnOnce(&mut Suite<'_>, &mut Stack) -> Step) -> Finding {
    let r = (|| {
        s.needs_offload()?;
        if let Some(why) = hosttool::missing("dmsetup") {
            return Err(skip(why));
        }
        Ok(())
    })();
    if let Err(f) = r {
        return f;
    }
    let keep = s.devs.len();
    let mut st = Stack::default();
    let r = body(s, &mut st);
    // Close the dm devices' fds before removing them.
    s.devs.truncate(keep);
    let down = st.teardown();
    match (r, down) {
        (Err(f), Err(e)) => {
            s.diag(format!("removing the dm devices: {e}"));
            f
        }
        (Err(f), Ok(())) => f,
        (Ok(()), Err(e)) => fail(format!("removing the dm devices: {e}")),
        (Ok(()), Ok(())) => Finding::Pass,
    }
}

/// The LBAs of NVMe Copy commands (opcode 19h) the kernel logged as failed
/// (`nvme0n1: I/O Cmd(0x19) @ LBA 1280, 16 blocks, ...`).
pub fn logged_copy_lbas(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.split_once("I/O Cmd(0x19) @ LBA ")?.1;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

// ---------------------------------------------------------------- tests

pub(super) fn t_dm_linear(s: &mut Suite<'_>) -> Finding {
    with_stack(s, |s, st| {
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        let (d, base) = linear_over(s, st, a, "zonecopy-linear")?;
        let (dl, bl) = (s.devs[d].limits, s.devs[a].limits);
        let bname = s.devs[a].name.clone();
        if !dl.present() {
            return Err(fail(format!(
                "the dm-linear device has no queue/copy_max_bytes ({bname}: {bl})"
            )));
        }
        if bl.offload_enabled() && !dl.offload_enabled() {
            return Err(fail(format!(
                "dm-linear did not stack the copy limits: {dl}, {bname} below has {bl}"
            )));
        }
        if dl.max_hw_bytes > bl.max_hw_bytes || dl.max_bytes > bl.max_bytes {
            return Err(fail(format!(
                "dm-linear allows more than the device below: {dl}, {bname} has {bl}"
            )));
        }
        let expect = if dl.offload_enabled() {
            Expect::Offload
        } else {
            Expect::Either
        };
        let lbs = s.devs[a].lbs;
        s.diag(format!(
            "copy within the dm device, dm byte {COPY_SRC} -> {COPY_DST}: {bname} LBA {} -> {} \
             after the remap (the copy's lines below give dm offsets under the backend's name)",
            (base + COPY_SRC) / lbs,
            (base + COPY_DST) / lbs
        ));
        let mut log = kmsg::Kmsg::start();
        let r = s.copy(
            "through dm-linear",
            &Case::new(d, COPY_SRC, d, COPY_DST, COPY_LEN, expect),
        );
        // Where the NVMe Copy went, as far as the kernel logged it: dm must
        // have remapped the copy bios by the table offset.
        let lbas = logged_copy_lbas(&log.since());
        if !lbas.is_empty() {
            let want = [(base + COPY_SRC) / lbs, (base + COPY_DST) / lbs];
            s.diag(format!(
                "dm-linear passed the copy down: NVMe Copy at {bname} LBA {} (remapped source {} / destination {})",
                lbas.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                want[0],
                want[1]
            ));
            if let Some(bad) = lbas.iter().find(|l| !want.contains(l)) {
                return Err(fail(format!(
                    "an NVMe Copy for the dm-linear copy went to {bname} LBA {bad}, \
                     neither the remapped source {} nor destination {}",
                    want[0], want[1]
                )));
            }
        }
        r.map(|_| ())
    })
}

pub(super) fn t_dm_crypt(s: &mut Suite<'_>) -> Finding {
    with_stack(s, |s, st| {
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        let (l, base) = linear_over(s, st, a, "zonecopy-crypt-lower")?;
        let lower = st
            .maps
            .last()
            .cloned()
            .ok_or_else(|| fail("suite bug: no lower device"))?;
        let table = crypt_table(&lower.devno, MAP_LEN);
        let m = st.create(s.sys, "zonecopy-crypt", &table)?;
        let (bname, nvme) = (s.devs[a].name.clone(), s.devs[a].nvme);
        let c = push_dev(s, &m, &bname, nvme, None)?;
        let lim = s.devs[c].limits;
        s.diag(format!(
            "zonecopy-crypt = /dev/{} ({}): aes-xts-plain64 over {}; {lim}; {} below: {}",
            m.block, m.devno, lower.name, lower.name, s.devs[l].limits
        ));
        // Nothing to stack below a namespace without copy offload (no Copy
        // in ONCS): the bug cannot show.
        if s.devs[l].limits.offload_enabled() {
            s.exposed = &[BUG_DM_CRYPT];
        }
        let sys = s.sys;
        let bug = lim.offload_enabled().then(|| Finding::Bug {
            id: BUG_DM_CRYPT,
            why: format!(
                "dm-crypt advertises copy_max_bytes {} (copy_max_hw_bytes {}), stacked from {} \
                 below, though the device cannot copy its ciphertext: copy_file_range on it sends \
                 copy bios into dm-crypt (NULL pointer dereference in crypt_convert from \
                 kcryptd_crypt, 7.2); the copy was checked with copy_max_bytes forced to 0",
                lim.max_bytes.unwrap_or(0),
                lim.max_hw_bytes.unwrap_or(0),
                lower.name
            ),
        });
        let _forced = match &bug {
            None => None,
            Some(b) => match MaxBytes::set(sys, &s.devs[c], 0) {
                Ok(g) => {
                    s.diag(
                        "zonecopy-crypt: copy_max_bytes forced to 0 (a copy offload through \
                         dm-crypt oopses this kernel)",
                    );
                    Some(g)
                }
                Err(f) => {
                    s.diag(format!(
                        "cannot set copy_max_bytes of the dm-crypt device to 0 ({f:?}): \
                         no copy sent"
                    ));
                    return Err(b.clone());
                }
            },
        };
        let done = s.copy(
            "through dm-crypt",
            &Case::new(c, COPY_SRC, c, COPY_DST, COPY_LEN, Expect::Fallback),
        )?;
        match done.delta {
            Some(d) if d.dst_copied > 0 => {
                return Err(fail(format!(
                    "{bname} copied {} bytes by offload for a copy through dm-crypt: {d}",
                    d.dst_copied
                )))
            }
            Some(_) => {}
            None => s.diag("no counters: whether the device copied is not known"),
        }
        ciphertext_checks(s, a, c, base)?;
        bug.map_or(Ok(()), Err)
    })
}

/// The same plaintext at [`COPY_SRC`] and [`COPY_DST`] of the crypt device
/// `c` (over `s.devs[a]` from byte `base`) must be different ciphertext on
/// the device, and the source's ciphertext placed elsewhere must not
/// decrypt to it: an offloaded copy of ciphertext would be wrong.
fn ciphertext_checks(s: &mut Suite<'_>, a: usize, c: usize, base: u64) -> Step {
    let span = COPY_LEN.div_ceil(BS) * BS;
    let n = usize::try_from(span).map_err(|_| fail("span"))?;
    let read = |f: &File, off: u64, what: &str| -> Step<Vec<u8>> {
        let mut b = blockio::AlignedBuf::new(n);
        read_full(f, b.as_mut_slice(), off).map_err(|e| fail(format!("reading {what}: {e}")))?;
        Ok(b.as_slice().to_vec())
    };
    let plain = read(&s.devs[c].file, COPY_DST, "the plaintext")?;
    let ct_src = read(&s.devs[a].file, base + COPY_SRC, "the source ciphertext")?;
    let ct_dst = read(
        &s.devs[a].file,
        base + COPY_DST,
        "the destination ciphertext",
    )?;
    let (pc, sc, dc) = (
        crc32c::crc32c(&plain),
        crc32c::crc32c(&ct_src),
        crc32c::crc32c(&ct_dst),
    );
    let bname = s.devs[a].name.clone();
    let lbs = s.devs[a].lbs;
    // The host's view of both ranges.
    if let Some(h) = s.host.as_mut() {
        let hs = h
            .checksum(&bname, (base + COPY_SRC) / lbs, span / lbs)
            .map_err(|e| fail(format!("host checksum: {e}")))?
            .crc;
        let hd = h
            .checksum(&bname, (base + COPY_DST) / lbs, span / lbs)
            .map_err(|e| fail(format!("host checksum: {e}")))?
            .crc;
        if (hs, hd) != (sc, dc) {
            return Err(fail(format!(
                "{bname}: the guest reads ciphertext crc32c {sc:#010x} / {dc:#010x}, \
                 the host has {hs:#010x} / {hd:#010x}"
            )));
        }
    }
    s.diag(format!(
        "{bname} ciphertext: source LBA {} crc32c {sc:#010x}, destination LBA {} crc32c \
         {dc:#010x}; plaintext crc32c {pc:#010x}",
        (base + COPY_SRC) / lbs,
        (base + COPY_DST) / lbs
    ));
    if ct_dst == plain || ct_src == plain {
        return Err(fail(format!(
            "{bname} holds the plaintext under dm-crypt: nothing was encrypted"
        )));
    }
    if ct_src == ct_dst {
        return Err(fail(
            "the same plaintext has the same ciphertext at two sectors: the IV does not \
             depend on the sector (aes-xts-plain64 should)",
        ));
    }
    // What an offloaded copy would have done: the source's ciphertext,
    // byte for byte, at another place (3 MiB), read back through dm-crypt.
    let other = 3 * MIB;
    let mut moved = blockio::AlignedBuf::new(n);
    moved.as_mut_slice().copy_from_slice(&ct_src);
    blockio::pwrite_exact(&s.devs[a].file, moved.as_slice(), base + other)
        .map_err(|e| fail(format!("writing ciphertext to {bname}: {e}")))?;
    let got = read(&s.devs[c].file, other, "the moved ciphertext")?;
    let first = got
        .chunks_exact(stamp::BLOCK_SIZE)
        .next()
        .map(super::verify::describe_block)
        .unwrap_or_default();
    if got == plain {
        return Err(fail(
            "the source's ciphertext moved to another sector decrypts to the plaintext: \
             dm-crypt's IV does not depend on the sector",
        ));
    }
    s.diag(format!(
        "the source's ciphertext copied as is to dm byte {other} decrypts to garbage \
         (first block: {first}): an offloaded copy through dm-crypt would corrupt the data"
    ));
    Ok(())
}

pub(super) fn t_dm_cross_device(s: &mut Suite<'_>) -> Finding {
    with_stack(s, |s, st| {
        let a = s
            .find(&[], is_nvm)
            .ok_or_else(|| skip("needs an NVM namespace"))?;
        let b = s
            .find(&[], |d| !d.nvme && d.random_end() >= 2 * MIB)
            .ok_or_else(|| skip("needs a SCSI LUN with randomly writable space"))?;
        let (d, _) = linear_over(s, st, a, "zonecopy-cross")?;
        let dof = s.devs[b].alloc(COPY_LEN)?;
        s.diag(format!(
            "{} (/dev/{}): {}; the dm device can copy, the LUN cannot",
            s.devs[b].name, s.devs[b].block, s.devs[b].limits
        ));
        let c = s.copy(
            "dm-linear to a SCSI LUN",
            &Case::new(d, COPY_SRC, b, dof, COPY_LEN, Expect::Fallback),
        )?;
        if let Some(x) = c.delta {
            if x.dst_copied > 0 {
                return Err(fail(format!(
                    "{} counted {} bytes copied by offload from another device: {x}",
                    s.devs[b].name, x.dst_copied
                )));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        assert_eq!(
            linear_table("259:1", 4 * MIB, MAP_LEN),
            "0 8192 linear 259:1 8192"
        );
        let t = crypt_table("251:0", MAP_LEN);
        assert!(
            t.starts_with("0 8192 crypt aes-xts-plain64 00010203"),
            "{t}"
        );
        assert!(t.ends_with(" 0 251:0 0"), "{t}");
        // 512-bit key: 128 hex digits.
        assert_eq!(CRYPT_KEY.len(), 128);
        assert!(CRYPT_KEY.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn copy_lbas_from_the_kernel_log() {
        let lines = vec![
            "nvme nvme0: req 59 unexpected r2t for a non-write command".to_string(),
            "nvme0n1: I/O Cmd(0x19) @ LBA 1280, 16 blocks, I/O Error (sct 0x3 / sc 0x71) "
                .to_string(),
            "I/O error, dev nvme0n1, sector 10240 op 0x14:(COPY_SRC) flags 0x0".to_string(),
            "nvme0n2: I/O Cmd(0x2) @ LBA 7, 1 blocks, ...".to_string(),
        ];
        assert_eq!(logged_copy_lbas(&lines), vec![1280]);
        assert!(logged_copy_lbas(&[]).is_empty());
    }

    #[test]
    fn dm_disk_by_name() {
        let root =
            std::env::temp_dir().join(format!("zonecopy-kcopy-stacks-{}", std::process::id()));
        for (d, n) in [("dm-0", "other"), ("dm-3", "zonecopy-linear")] {
            std::fs::create_dir_all(root.join("block").join(d).join("dm")).unwrap();
            std::fs::write(root.join("block").join(d).join("dm/name"), format!("{n}\n")).unwrap();
        }
        std::fs::create_dir_all(root.join("block/nvme0n1")).unwrap();
        assert_eq!(dm_disk(&root, "zonecopy-linear").as_deref(), Some("dm-3"));
        assert_eq!(dm_disk(&root, "missing"), None);
        std::fs::remove_dir_all(root).unwrap();
    }
}
