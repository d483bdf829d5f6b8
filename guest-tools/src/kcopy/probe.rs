//! Which copy interface the running kernel offers for a block device:
//!
//! - the "Block storage copy offloading" series: `queue/copy_max_bytes`
//!   (read-write, 0 disables offload) and `queue/copy_max_hw_bytes`, with
//!   copy offload reached through `copy_file_range(2)` on O_DIRECT fds;
//! - earlier series: the `BLKCPY` ioctl, `_IOWR(0x12, 142, __u64[3])`
//!   (`{dst, src, nr_sectors}`), probed with a zero-length copy, so a kernel
//!   that has it copies nothing and one that lacks it says `ENOTTY`;
//! - neither: copy_file_range between block devices is either refused
//!   (`EINVAL`/`EXDEV`, no block-device support in the VFS) or done by the
//!   kernel reading and writing.

use std::{
    fmt, fs,
    fs::File,
    io,
    os::fd::AsRawFd,
    path::Path,
    time::{Duration, Instant},
};

/// `_IOWR(0x12, 142, __u64[3])`.
pub const BLKCPY: u32 = (3 << 30) | (24 << 16) | (0x12 << 8) | 142;

/// The copy limits sysfs shows for one disk (`None`: attribute absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `queue/copy_max_bytes`.
    pub max_bytes: Option<u64>,
    /// `queue/copy_max_hw_bytes`.
    pub max_hw_bytes: Option<u64>,
}

impl Limits {
    /// Whether the kernel has the series' queue limits.
    pub fn present(&self) -> bool {
        self.max_bytes.is_some()
    }

    /// Whether this queue lets copies be offloaded now.
    pub fn offload_enabled(&self) -> bool {
        self.max_bytes.unwrap_or(0) > 0
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or_else(|| "absent".to_string(), |n| n.to_string());
        write!(
            f,
            "copy_max_bytes {} copy_max_hw_bytes {}",
            show(self.max_bytes),
            show(self.max_hw_bytes)
        )
    }
}

fn read_opt_u64(p: &Path) -> io::Result<Option<u64>> {
    match fs::read_to_string(p) {
        Ok(s) => s.trim().parse().map(Some).map_err(|_| {
            io::Error::other(format!("{}: {:?} is not a number", p.display(), s.trim()))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
    }
}

/// Read `<sys>/block/<disk>/queue/copy_max{,_hw}_bytes`.
pub fn limits(sys: &Path, disk: &str) -> io::Result<Limits> {
    let q = sys.join("block").join(disk).join("queue");
    Ok(Limits {
        max_bytes: read_opt_u64(&q.join("copy_max_bytes"))?,
        max_hw_bytes: read_opt_u64(&q.join("copy_max_hw_bytes"))?,
    })
}

/// Write `queue/copy_max_bytes`.
pub fn set_max_bytes(sys: &Path, disk: &str, v: u64) -> io::Result<()> {
    let p = sys.join("block").join(disk).join("queue/copy_max_bytes");
    fs::write(&p, format!("{v}\n"))
        .map_err(|e| io::Error::new(e.kind(), format!("write {v} to {}: {e}", p.display())))
}

/// What the BLKCPY probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blkcpy {
    /// BLKCPY got the same answer as an ioctl number no kernel defines
    /// (`ENOTTY` from the block layer or NVMe, `EINVAL` from sd): absent.
    Absent(i32),
    /// The ioctl exists: it accepted the empty copy (`None`) or refused it
    /// with an errno other than the driver's answer to an unknown ioctl.
    Present(Option<i32>),
}

impl fmt::Display for Blkcpy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent(e) => write!(
                f,
                "BLKCPY absent ({}, as for an unknown ioctl)",
                errno_name(*e)
            ),
            Self::Present(None) => f.write_str("BLKCPY present (accepted an empty copy)"),
            Self::Present(Some(e)) => write!(
                f,
                "BLKCPY present (empty copy refused with {}, an unknown ioctl gets another errno)",
                errno_name(*e)
            ),
        }
    }
}

/// `_IOWR(0x12, 254, __u64[3])`: a block ioctl number nobody defines.
const UNKNOWN_BLK_IOCTL: u32 = (3 << 30) | (24 << 16) | (0x12 << 8) | 254;

fn ioctl_u64x3(f: &File, request: u32) -> Option<i32> {
    let mut range = [0u64; 3];
    // SAFETY: BLKCPY (where it exists) reads and may write back one
    // __u64[3], which `range` is, alive for the call; an undefined number
    // is rejected without touching memory.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), request as _, range.as_mut_ptr()) };
    if rc == 0 {
        None
    } else {
        Some(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }
}

/// Probe BLKCPY with `{dst 0, src 0, nr_sectors 0}` (moves no data) and
/// compare its answer with an undefined ioctl number's: the driver below
/// the block layer answers unknown numbers its own way (`ENOTTY` for nvme,
/// `EINVAL` for sd), so only a different answer proves BLKCPY exists.
pub fn blkcpy(f: &File) -> Blkcpy {
    let unknown = ioctl_u64x3(f, UNKNOWN_BLK_IOCTL);
    match (ioctl_u64x3(f, BLKCPY), unknown) {
        (Some(e), _) if e == libc::ENOTTY => Blkcpy::Absent(e),
        (Some(e), Some(u)) if e == u => Blkcpy::Absent(e),
        (r, _) => Blkcpy::Present(r),
    }
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// What `copy_file_range(2)` calls did for one logical copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cfr {
    /// The length asked for.
    pub len: u64,
    /// Bytes reported copied, over all calls.
    pub copied: u64,
    /// Each call's return: bytes or errno.
    pub calls: Vec<Result<u64, i32>>,
    /// Wall time of all calls.
    pub elapsed: Duration,
}

impl Cfr {
    /// The errno that ended the copy, if one did.
    pub fn errno(&self) -> Option<i32> {
        self.calls.last().and_then(|r| r.err())
    }

    /// Whether every byte was reported copied.
    pub fn complete(&self) -> bool {
        self.copied == self.len
    }
}

/// An errno's symbolic name, for the common ones.
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EINVAL => "EINVAL",
        libc::EXDEV => "EXDEV",
        libc::EIO => "EIO",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOSYS => "ENOSYS",
        libc::EBADF => "EBADF",
        libc::ENOSPC => "ENOSPC",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::ENOTTY => "ENOTTY",
        libc::EFBIG => "EFBIG",
        libc::EOVERFLOW => "EOVERFLOW",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

impl fmt::Display for Cfr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|r| match r {
                Ok(n) => n.to_string(),
                Err(e) => errno_name(*e),
            })
            .collect();
        write!(
            f,
            "{} of {} bytes in {} call(s) [{}], {:.1} ms",
            self.copied,
            self.len,
            self.calls.len(),
            calls.join(", "),
            self.elapsed.as_secs_f64() * 1000.0
        )
    }
}

/// Copy `len` bytes with `copy_file_range(src, &off_in, dst, &off_out,
/// len, 0)`, calling again after a short count as a program would, until
/// done, an error, or a call that copies nothing.
pub fn copy_file_range(src: &File, off_in: u64, dst: &File, off_out: u64, len: u64) -> Cfr {
    let start = Instant::now();
    let mut calls = Vec::new();
    let mut copied = 0u64;
    while copied < len && calls.len() < 100_000 {
        let (Ok(mut i), Ok(mut o)) = (
            libc::loff_t::try_from(off_in + copied),
            libc::loff_t::try_from(off_out + copied),
        ) else {
            calls.push(Err(libc::EOVERFLOW));
            break;
        };
        let want = usize::try_from(len - copied).unwrap_or(usize::MAX);
        // SAFETY: both fds are open for the call; the offset pointers point
        // at two live loff_t the kernel reads and updates; flags 0.
        let n = unsafe {
            libc::copy_file_range(src.as_raw_fd(), &mut i, dst.as_raw_fd(), &mut o, want, 0)
        };
        if n < 0 {
            calls.push(Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)));
            break;
        }
        let n = n as u64;
        calls.push(Ok(n));
        if n == 0 {
            break;
        }
        copied += n;
    }
    Cfr {
        len,
        copied,
        calls,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number() {
        // _IOWR(0x12, 142, __u64[3]) as the earlier series defined it.
        assert_eq!(BLKCPY, 0xc018_128e);
    }

    #[test]
    fn limits_from_a_fake_sysfs() {
        let root =
            std::env::temp_dir().join(format!("zonecopy-kcopy-probe-{}", std::process::id()));
        let q = root.join("block/nvme0n1/queue");
        fs::create_dir_all(&q).unwrap();
        fs::create_dir_all(root.join("block/sda/queue")).unwrap();
        fs::write(q.join("copy_max_bytes"), "16777216\n").unwrap();
        fs::write(q.join("copy_max_hw_bytes"), "16777216\n").unwrap();
        let l = limits(&root, "nvme0n1").unwrap();
        assert!(l.present() && l.offload_enabled());
        assert_eq!(
            l.to_string(),
            "copy_max_bytes 16777216 copy_max_hw_bytes 16777216"
        );
        set_max_bytes(&root, "nvme0n1", 0).unwrap();
        let l = limits(&root, "nvme0n1").unwrap();
        assert!(l.present() && !l.offload_enabled());
        let none = limits(&root, "sda").unwrap();
        assert_eq!(none, Limits::default());
        assert!(!none.present());
        assert_eq!(
            none.to_string(),
            "copy_max_bytes absent copy_max_hw_bytes absent"
        );
        fs::write(q.join("copy_max_bytes"), "lots\n").unwrap();
        assert!(limits(&root, "nvme0n1").is_err());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn blkcpy_on_a_regular_file_is_enotty() {
        let f = File::open("/proc/self/status").unwrap();
        assert_eq!(blkcpy(&f), Blkcpy::Absent(libc::ENOTTY));
        assert_eq!(
            Blkcpy::Absent(libc::EINVAL).to_string(),
            "BLKCPY absent (EINVAL, as for an unknown ioctl)"
        );
    }

    #[test]
    fn copy_file_range_between_files() {
        let dir = std::env::temp_dir();
        let a = dir.join(format!("zonecopy-kcopy-cfr-a-{}", std::process::id()));
        let b = dir.join(format!("zonecopy-kcopy-cfr-b-{}", std::process::id()));
        fs::write(&a, vec![7u8; 10000]).unwrap();
        fs::write(&b, vec![0u8; 10000]).unwrap();
        let fa = File::open(&a).unwrap();
        let fb = fs::OpenOptions::new().write(true).open(&b).unwrap();
        let r = copy_file_range(&fa, 100, &fb, 5000, 3000);
        assert!(r.complete(), "{r}");
        assert_eq!(r.errno(), None);
        let got = fs::read(&b).unwrap();
        assert!(got[5000..8000].iter().all(|&x| x == 7));
        assert!(got[..5000].iter().all(|&x| x == 0));
        // A read-only destination: EBADF on the first call.
        let ro = File::open(&b).unwrap();
        let r = copy_file_range(&fa, 0, &ro, 0, 10);
        assert_eq!(r.errno(), Some(libc::EBADF));
        assert!(r
            .to_string()
            .starts_with("0 of 10 bytes in 1 call(s) [EBADF]"));
        fs::remove_file(a).unwrap();
        fs::remove_file(b).unwrap();
    }
}
