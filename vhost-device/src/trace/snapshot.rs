//! Device images at trace start: a reflink (FICLONE) where the file
//! system shares blocks, otherwise a sparse copy (only the data extents,
//! found with SEEK_DATA/SEEK_HOLE, so a mostly empty device stays small).

use std::{
    fs::{File, OpenOptions},
    io,
    os::{fd::AsRawFd, unix::fs::FileExt},
    path::Path,
};

/// How an image was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Reflink,
    SparseCopy,
}

/// Copy `src` to `dst` (created or truncated): reflink if possible, else a
/// sparse copy.
pub fn clone_file(src: &Path, dst: &Path) -> io::Result<Method> {
    let from = File::open(src)?;
    let to = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dst)?;
    // SAFETY: FICLONE takes the source descriptor as its argument and
    // reads no memory of ours; both descriptors are open for the call.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) };
    if rc == 0 {
        return Ok(Method::Reflink);
    }
    sparse_copy(&from, &to)?;
    Ok(Method::SparseCopy)
}

fn seek(f: &File, off: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let off = libc::off_t::try_from(off).map_err(io::Error::other)?;
    // SAFETY: lseek on a descriptor we own; no memory is passed.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(u64::try_from(r).ok())
}

/// The data extents of `path` as byte ranges [start, end), sorted.
pub fn data_extents(path: &Path) -> io::Result<Vec<(u64, u64)>> {
    extents(&File::open(path)?)
}

fn extents(f: &File) -> io::Result<Vec<(u64, u64)>> {
    let len = f.metadata()?.len();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let Some(start) = seek(f, pos, libc::SEEK_DATA)? else {
            break;
        };
        let end = seek(f, start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        out.push((start, end));
        pos = end.max(start + 1);
    }
    Ok(out)
}

fn sparse_copy(from: &File, to: &File) -> io::Result<()> {
    let len = from.metadata()?.len();
    to.set_len(len)?;
    let mut buf = vec![0u8; 1 << 20];
    for (start, end) in extents(from)? {
        let mut at = start;
        while at < end {
            let n = usize::try_from((end - at).min(buf.len() as u64)).unwrap_or(buf.len());
            from.read_exact_at(&mut buf[..n], at)?;
            to.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
    }
    to.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a");
        let f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        drop(f);
        let dst = dir.path().join("b");
        clone_file(&src, &dst).unwrap();
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap());
    }
}
