//! The kernel log around one operation, from `/dev/kmsg`: open it, skip
//! what is already there, and after the operation read the records that
//! arrived (each read returns one record, `prio,seq,usec,flags;text`).
//! Copy failures leave their only trace there (the nvme driver's "I/O
//! Cmd(0x19) ... Invalid Field", nvme-tcp's "unexpected r2t"), so the suite
//! quotes it as evidence.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
};

/// A reader positioned after the records that existed when it was made.
#[derive(Debug)]
pub struct Kmsg {
    f: Option<File>,
}

impl Kmsg {
    /// Start watching (no-op where `/dev/kmsg` cannot be read).
    pub fn start() -> Self {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()
            .and_then(|mut f| f.seek(SeekFrom::End(0)).ok().map(|_| f));
        Self { f }
    }

    /// The message texts logged since [`Kmsg::start`] (or the last call).
    pub fn since(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(f) = self.f.as_mut() else {
            return out;
        };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.push(record_text(&String::from_utf8_lossy(&buf[..n]))),
                // EPIPE: records were overwritten; keep reading.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
            if out.len() > 10_000 {
                break;
            }
        }
        out
    }
}

/// The text of one `/dev/kmsg` record: after the first `;`, up to the
/// first newline (continuation lines carry key=value device info).
pub fn record_text(rec: &str) -> String {
    let text = rec.split_once(';').map_or(rec, |(_, t)| t);
    text.lines().next().unwrap_or("").trim_end().to_string()
}

/// Why an NVMe copy failed, as far as the kernel log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyCause {
    /// The controller completed Copy with Invalid Field (sct 0, sc 2).
    InvalidField,
    /// nvme-tcp refused the controller's R2T for the Copy's descriptors:
    /// the copy request is not a write-direction request, so the host
    /// never sends the source range list.
    TcpR2t,
}

/// Look for a known copy failure in kernel log texts.
pub fn copy_cause(lines: &[String]) -> Option<CopyCause> {
    if lines
        .iter()
        .any(|l| l.contains("unexpected r2t for a non-write command"))
    {
        return Some(CopyCause::TcpR2t);
    }
    if lines.iter().any(|l| {
        l.contains("Cmd(0x19)") && (l.contains("Invalid Field") || l.contains("sct 0x0 / sc 0x2)"))
    }) {
        return Some(CopyCause::InvalidField);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_causes() {
        assert_eq!(
            record_text("3,745,213464769,-;nvme0n2: I/O Cmd(0x19) @ LBA 320, 64 blocks, I/O Error (sct 0x3 / sc 0x71) \n SUBSYSTEM=block\n"),
            "nvme0n2: I/O Cmd(0x19) @ LBA 320, 64 blocks, I/O Error (sct 0x3 / sc 0x71)"
        );
        assert_eq!(record_text("no separator"), "no separator");
        let r2t = vec![
            "nvme nvme0: req 42 unexpected r2t for a non-write command".to_string(),
            "nvme nvme0: receive failed:  -71".to_string(),
        ];
        assert_eq!(copy_cause(&r2t), Some(CopyCause::TcpR2t));
        let inval = vec![
            "nvme0n1: I/O Cmd(0x19) @ LBA 256, 64 blocks, Invalid Field in Command (sct 0x0 / sc 0x2) DNR".to_string(),
        ];
        assert_eq!(copy_cause(&inval), Some(CopyCause::InvalidField));
        let terse = vec![
            "nvme0n1: I/O Cmd(0x19) @ LBA 0, 1 blocks, I/O Error (sct 0x0 / sc 0x2) DNR"
                .to_string(),
        ];
        assert_eq!(copy_cause(&terse), Some(CopyCause::InvalidField));
        assert_eq!(copy_cause(&["hello".to_string()]), None);
    }

    #[test]
    fn start_without_permission_is_harmless() {
        let mut k = Kmsg::start();
        let _ = k.since();
    }
}
