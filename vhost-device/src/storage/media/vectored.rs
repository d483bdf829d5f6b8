//! Blocks moved between the media and memory this process does not own
//! (a guest's buffers, as [`MemSlice`]s) without a bounce buffer of the
//! caller's: `preadv(2)`/`pwritev(2)` straight over the slices when the
//! media is a file with nothing held in front of it, else through a buffer.
//!
//! By hand, because no crate here does positioned vectored I/O into
//! volatile memory: vm-memory's `ReadVolatile`/`WriteVolatile` for `File`
//! move one slice per call at the file's cursor (read(2)/write(2)), so a
//! command spanning several descriptors would take several syscalls and a
//! shared cursor between the queues' workers.

use std::{fs::File, io, os::fd::AsRawFd};

/// A run of memory that blocks move to or from: a guest's buffer, mapped
/// into this process, which the guest may change at any time (hence
/// volatile: never seen as a Rust slice).
pub type MemSlice<'a> = vm_memory::VolatileSlice<'a, ()>;

/// Most slices handed to one `preadv`/`pwritev` (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Total bytes of `slices`.
pub fn mem_len(slices: &[MemSlice<'_>]) -> usize {
    slices.iter().map(MemSlice::len).sum()
}

/// Read `mem_len(dst)` bytes with `read` into a buffer, then into `dst`.
pub fn read_buffered(
    dst: &[MemSlice<'_>],
    read: impl FnOnce(&mut [u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; mem_len(dst)];
    read(&mut buf)?;
    scatter(&buf, dst);
    Ok(())
}

/// Copy `src` into a buffer (once: the guest may change `src`
/// meanwhile, and what was read is what is written), then `write` it.
pub fn write_buffered(
    src: &[MemSlice<'_>],
    write: impl FnOnce(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; mem_len(src)];
    gather(src, &mut buf);
    write(&buf)
}

/// Copy `src` into `dst` in order (`src` as long as `dst` together).
pub fn scatter(src: &[u8], dst: &[MemSlice<'_>]) {
    let mut rest = src;
    for s in dst {
        let n = s.len().min(rest.len());
        s.copy_from(&rest[..n]);
        rest = &rest[n..];
    }
}

/// Copy `src` in order into `dst` (as long as `src` together).
pub fn gather(src: &[MemSlice<'_>], dst: &mut [u8]) {
    let mut rest = dst;
    for s in src {
        let n = s.len().min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        s.copy_to(head);
        rest = tail;
    }
}

/// Read `mem_len(dst)` bytes of `file` at `off` into `dst`; a file that
/// ends first is `UnexpectedEof`, as `read_exact_at` reports it.
pub fn pread_all(file: &File, off: u64, dst: &[MemSlice<'_>]) -> io::Result<()> {
    vectored(file, off, dst, false)
}

/// Write `src` to `file` at `off`, all of it.
pub fn pwrite_all(file: &File, off: u64, src: &[MemSlice<'_>]) -> io::Result<()> {
    vectored(file, off, src, true)
}

fn vectored(file: &File, mut off: u64, slices: &[MemSlice<'_>], write: bool) -> io::Result<()> {
    // The guards keep each slice's pointer valid until the calls are done.
    let guards: Vec<_> = slices
        .iter()
        .filter(|s| !s.is_empty())
        .map(MemSlice::ptr_guard_mut)
        .collect();
    let mut iov: Vec<libc::iovec> = guards
        .iter()
        .map(|g| libc::iovec {
            iov_base: g.as_ptr().cast(),
            iov_len: g.len(),
        })
        .collect();
    let mut at = 0usize;
    while at < iov.len() {
        let batch = &iov[at..iov.len().min(at + IOV_MAX)];
        let Ok(pos) = libc::off_t::try_from(off) else {
            return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
        };
        let count = libc::c_int::try_from(batch.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: every iovec points into a slice whose guard is alive in
        // `guards` for the whole call, `iov_len` bytes long; the kernel
        // reads (pwritev) or writes (preadv) only those bytes, and the
        // memory is mapped shared with the guest, never a Rust reference.
        let n = unsafe {
            if write {
                libc::pwritev(file.as_raw_fd(), batch.as_ptr(), count, pos)
            } else {
                libc::preadv(file.as_raw_fd(), batch.as_ptr(), count, pos)
            }
        };
        let n = match usize::try_from(n) {
            Ok(0) if write => return Err(io::ErrorKind::WriteZero.into()),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        };
        off += n as u64;
        at = advance(&mut iov, at, n);
    }
    Ok(())
}

/// Skip `n` done bytes of `iov` from entry `at`: whole entries are passed,
/// a partly done one is shortened from the front. Returns the first entry
/// with bytes left.
fn advance(iov: &mut [libc::iovec], mut at: usize, mut n: usize) -> usize {
    while let Some(v) = iov.get_mut(at) {
        if n < v.iov_len {
            // SAFETY: `n` is less than the entry's length: the new base
            // stays inside the same slice.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n) }.cast();
            v.iov_len -= n;
            break;
        }
        n -= v.iov_len;
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slices of `lens` bytes each, over `buf`, in order.
    fn slices<'a>(buf: &'a mut [u8], lens: &[usize]) -> Vec<MemSlice<'a>> {
        let mut out = Vec::new();
        let mut rest = buf;
        for &n in lens {
            let (head, tail) = rest.split_at_mut(n);
            out.push(MemSlice::from(head));
            rest = tail;
        }
        out
    }

    #[test]
    fn preadv_and_pwritev_move_every_byte_across_uneven_slices() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut src = data.clone();
        let lens = [1, 0, 999, 1500, 500];
        pwrite_all(&file, 100, &slices(&mut src, &lens)).unwrap();
        let mut back = vec![0u8; 3000];
        pread_all(&file, 100, &slices(&mut back, &[3000])).unwrap();
        assert_eq!(back, data);
        let mut split = vec![0u8; 3000];
        pread_all(&file, 100, &slices(&mut split, &lens)).unwrap();
        assert_eq!(split, data);
        // Past the end of the file: as read_exact_at says it.
        let mut past = vec![0u8; 200];
        let e = pread_all(&file, 3000, &slices(&mut past, &[200])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn advance_skips_whole_entries_and_shortens_a_partial_one() {
        let mut buf = [0u8; 10];
        let base = buf.as_mut_ptr();
        let mut iov = [
            libc::iovec {
                iov_base: base.cast(),
                iov_len: 3,
            },
            libc::iovec {
                iov_base: base.wrapping_add(3).cast(),
                iov_len: 7,
            },
        ];
        assert_eq!(advance(&mut iov, 0, 5), 1);
        assert_eq!(iov[1].iov_len, 5);
        assert_eq!(iov[1].iov_base.cast::<u8>(), base.wrapping_add(5));
        assert_eq!(advance(&mut iov, 1, 5), 2);
    }

    #[test]
    fn scatter_and_gather_are_inverse() {
        let data: Vec<u8> = (0..100u8).collect();
        let mut mem = vec![0u8; 100];
        scatter(&data, &slices(&mut mem, &[10, 0, 90]));
        assert_eq!(mem, data);
        let mut back = vec![0u8; 100];
        gather(&slices(&mut mem, &[33, 67]), &mut back);
        assert_eq!(back, data);
    }
}
