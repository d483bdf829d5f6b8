//! Linux native AIO (io_setup(2), io_submit(2), io_getevents(2)) for
//! O_DIRECT reads and writes that must reach the device together: one
//! io_submit of several iocbs is dispatched under one plug, so a transport
//! sees their commands side by side (the timing bench's pipelined host
//! copy, [`crate::bench`]). libc has the syscall numbers but not the
//! structures; they are include/uapi/linux/aio_abi.h's.

use std::{fs::File, io, os::fd::AsRawFd, ptr};

use crate::blockio::AlignedBuf;

/// IOCB_CMD_PREAD / IOCB_CMD_PWRITE (aio_abi.h).
const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;

/// `struct iocb` (aio_abi.h), little-endian layout: 64 bytes.
#[repr(C)]
#[derive(Default)]
struct Iocb {
    data: u64,
    key: u32,
    rw_flags: i32,
    lio_opcode: u16,
    reqprio: i16,
    fildes: u32,
    buf: u64,
    nbytes: u64,
    offset: i64,
    reserved2: u64,
    flags: u32,
    resfd: u32,
}

/// `struct io_event` (aio_abi.h).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

/// One I/O: read into or write from `buf` at byte `offset`.
pub enum Op<'a> {
    Read(&'a mut AlignedBuf, u64),
    Write(&'a AlignedBuf, u64),
}

/// An AIO context, destroyed on drop.
pub struct Context {
    /// The kernel's context id; 0 once destroyed.
    ctx: std::cell::Cell<libc::c_ulong>,
}

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Context {
    /// A context for up to `depth` I/Os in flight.
    pub fn new(depth: u32) -> io::Result<Self> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the new context id into `ctx`, a live
        // local of the aio_context_t type (unsigned long).
        check(unsafe { libc::syscall(libc::SYS_io_setup, depth, &mut ctx as *mut libc::c_ulong) })?;
        Ok(Context {
            ctx: std::cell::Cell::new(ctx),
        })
    }

    /// Submit `ops` in one io_submit and wait for all of them; each must
    /// move its whole buffer.
    pub fn run(&self, file: &File, ops: &mut [Op<'_>]) -> io::Result<()> {
        let fd = u32::try_from(file.as_raw_fd()).map_err(|_| io::Error::other("bad fd"))?;
        let long = |v: usize| libc::c_long::try_from(v).map_err(|_| io::Error::other("too many"));
        let mut iocbs: Vec<Iocb> = ops
            .iter_mut()
            .enumerate()
            .map(|(i, op)| -> io::Result<Iocb> {
                let (opcode, buf, len, offset) = match op {
                    Op::Read(b, at) => {
                        let s = b.as_mut_slice();
                        (IOCB_CMD_PREAD, s.as_mut_ptr() as u64, s.len(), *at)
                    }
                    Op::Write(b, at) => {
                        let s = b.as_slice();
                        (IOCB_CMD_PWRITE, s.as_ptr() as u64, s.len(), *at)
                    }
                };
                Ok(Iocb {
                    data: i as u64,
                    lio_opcode: opcode,
                    fildes: fd,
                    buf,
                    nbytes: len as u64,
                    offset: i64::try_from(offset).map_err(|_| io::Error::other("offset"))?,
                    ..Iocb::default()
                })
            })
            .collect::<io::Result<_>>()?;
        let mut ptrs: Vec<*mut Iocb> = iocbs.iter_mut().map(|c| c as *mut Iocb).collect();
        let n = ptrs.len();
        let n_long = long(n)?;
        // SAFETY: `ptrs` points at `n` initialised iocbs whose buffers are
        // borrowed from `ops` (mutably for reads) until this function
        // returns, and it returns only after io_getevents below reaped all
        // `n` (or the submission failed, then none is in flight).
        let submitted = check(unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.ctx.get(),
                n_long,
                ptrs.as_mut_ptr(),
            )
        })?;
        let mut events = vec![IoEvent::default(); n];
        let mut done = 0usize;
        while done < submitted as usize {
            // SAFETY: `events` has room for `n - done` more events; no
            // timeout (null): it waits for at least one.
            let got = check(unsafe {
                libc::syscall(
                    libc::SYS_io_getevents,
                    self.ctx.get(),
                    1 as libc::c_long,
                    long(n - done)?,
                    events[done..].as_mut_ptr(),
                    ptr::null_mut::<libc::timespec>(),
                )
            });
            match got {
                Ok(g) => done += g as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // I/Os may still be in flight into `ops`' buffers,
                    // which the caller may free once this returns:
                    // io_destroy waits for them (io_destroy(2)).
                    self.destroy();
                    return Err(e);
                }
            }
        }
        if (submitted as usize) < n {
            return Err(io::Error::other(format!(
                "io_submit took {submitted} of {n}"
            )));
        }
        for e in &events {
            let want = iocbs.get(e.data as usize).map_or(0, |c| c.nbytes);
            if e.res < 0 {
                return Err(io::Error::from_raw_os_error(-e.res as i32));
            }
            if e.res as u64 != want {
                return Err(io::Error::other(format!(
                    "short I/O: {} of {want} bytes",
                    e.res
                )));
            }
        }
        Ok(())
    }
}

impl Context {
    /// Destroy the kernel's context (waiting for what is in flight); later
    /// `run`s fail with EINVAL.
    fn destroy(&self) {
        let ctx = self.ctx.replace(0);
        if ctx != 0 {
            // SAFETY: the context is ours; the kernel waits for its
            // in-flight I/Os before it returns.
            unsafe { libc::syscall(libc::SYS_io_destroy, ctx) };
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        self.destroy();
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write, os::unix::fs::FileExt};

    use super::*;

    #[test]
    fn iocb_is_the_kernels_64_bytes() {
        assert_eq!(std::mem::size_of::<Iocb>(), 64);
        assert_eq!(std::mem::size_of::<IoEvent>(), 32);
    }

    #[test]
    fn a_read_and_a_write_in_one_submission() {
        let dir = std::env::temp_dir().join(format!("zc-aio-{}", std::process::id()));
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&dir)
            .unwrap();
        f.write_all(&[7u8; 8192]).unwrap();
        let ctx = Context::new(4).unwrap();
        let mut rd = AlignedBuf::new(4096);
        let mut wr = AlignedBuf::new(4096);
        wr.as_mut_slice().fill(9);
        ctx.run(&f, &mut [Op::Read(&mut rd, 0), Op::Write(&wr, 4096)])
            .unwrap();
        assert!(rd.as_slice().iter().all(|&b| b == 7));
        let mut back = [0u8; 4096];
        f.read_exact_at(&mut back, 4096).unwrap();
        assert!(back.iter().all(|&b| b == 9));
        // Past the end: a short read is an error.
        let mut past = AlignedBuf::new(4096);
        assert!(ctx.run(&f, &mut [Op::Read(&mut past, 1 << 20)]).is_err());
        drop(f);
        std::fs::remove_file(&dir).unwrap();
    }
}
