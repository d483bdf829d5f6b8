//! SCSI passthrough with the `SG_IO` ioctl (`include/scsi/sg.h`), for
//! commands that must reach the device unfiltered by the block layer: since
//! Linux 6.10 zone write plugging fails a write that is not at the write
//! pointer before it is ever sent, so only passthrough tests the device's
//! own ZBC checks.

use std::{io, mem::size_of, os::fd::AsRawFd};

/// `struct sg_io_hdr` (88 bytes on 64-bit).
#[repr(C)]
#[derive(Debug)]
struct SgIoHdr {
    interface_id: i32,
    dxfer_direction: i32,
    cmd_len: u8,
    mx_sb_len: u8,
    iovec_count: u16,
    dxfer_len: u32,
    dxferp: *mut libc::c_void,
    cmdp: *const u8,
    sbp: *mut u8,
    timeout: u32,
    flags: u32,
    pack_id: i32,
    usr_ptr: *mut libc::c_void,
    status: u8,
    masked_status: u8,
    msg_status: u8,
    sb_len_wr: u8,
    host_status: u16,
    driver_status: u16,
    resid: i32,
    duration: u32,
    info: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<SgIoHdr>() == 88);

const SG_IO: u32 = 0x2285;
const SG_DXFER_NONE: i32 = -1;
const SG_DXFER_TO_DEV: i32 = -2;
const SG_DXFER_FROM_DEV: i32 = -3;

/// SCSI status CHECK CONDITION.
pub const CHECK_CONDITION: u8 = 0x02;
/// Sense key ILLEGAL REQUEST.
pub const ILLEGAL_REQUEST: u8 = 0x5;

/// Data phase of a command.
#[derive(Debug)]
pub enum Data<'a> {
    /// No data.
    None,
    /// Data out (to the device).
    ToDevice(&'a [u8]),
    /// Data in (from the device).
    FromDevice(&'a mut [u8]),
}

/// Sense key, ASC and ASCQ, decoded from fixed or descriptor format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl std::fmt::Display for Sense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sense key {:#x} asc/ascq {:02x}/{:02x}",
            self.key, self.asc, self.ascq
        )
    }
}

/// Decode sense data (SPC-5 4.4: response codes 70h/71h fixed, 72h/73h
/// descriptor).
pub fn decode_sense(sb: &[u8]) -> Option<Sense> {
    match sb.first()? & 0x7f {
        0x70 | 0x71 if sb.len() >= 14 => Some(Sense {
            key: sb[2] & 0xf,
            asc: sb[12],
            ascq: sb[13],
        }),
        0x72 | 0x73 if sb.len() >= 4 => Some(Sense {
            key: sb[1] & 0xf,
            asc: sb[2],
            ascq: sb[3],
        }),
        _ => None,
    }
}

/// What came back from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// SCSI status byte.
    pub status: u8,
    /// Host (transport) status; 0 is good.
    pub host_status: u16,
    /// Driver status; 0 or sense-valid.
    pub driver_status: u16,
    /// Decoded sense, if any was returned.
    pub sense: Option<Sense>,
    /// The sense bytes as returned (empty if none).
    pub sense_bytes: Vec<u8>,
    /// Data-in residual: bytes requested but not transferred.
    pub resid: i32,
}

impl std::fmt::Display for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:#04x} host {:#x} driver {:#x}",
            self.status, self.host_status, self.driver_status
        )?;
        if let Some(s) = self.sense {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

/// Send `cdb` with `data`; `Err` only if the ioctl itself failed.
pub fn command(
    fd: &impl AsRawFd,
    cdb: &[u8],
    data: Data<'_>,
    timeout_ms: u32,
) -> io::Result<Completion> {
    let mut sense = [0u8; 252];
    let (dir, ptr, len) = match data {
        Data::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0),
        Data::ToDevice(b) => (SG_DXFER_TO_DEV, b.as_ptr().cast_mut().cast(), b.len()),
        Data::FromDevice(b) => (SG_DXFER_FROM_DEV, b.as_mut_ptr().cast(), b.len()),
    };
    let mut hdr = SgIoHdr {
        interface_id: i32::from(b'S'),
        dxfer_direction: dir,
        cmd_len: u8::try_from(cdb.len()).map_err(|_| io::Error::other("CDB too long"))?,
        mx_sb_len: u8::try_from(sense.len()).unwrap_or(u8::MAX),
        iovec_count: 0,
        dxfer_len: u32::try_from(len).map_err(|_| io::Error::other("transfer too long"))?,
        dxferp: ptr,
        cmdp: cdb.as_ptr(),
        sbp: sense.as_mut_ptr(),
        timeout: timeout_ms,
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    // SAFETY: `hdr` is a valid struct sg_io_hdr; cmdp points at `cmd_len`
    // readable bytes, sbp at `mx_sb_len` writable bytes, dxferp at
    // `dxfer_len` bytes readable (to device) or writable (from device, from
    // a `&mut` borrow); all outlive the synchronous ioctl.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), SG_IO as _, &mut hdr as *mut SgIoHdr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::from(hdr.sb_len_wr).min(sense.len());
    Ok(Completion {
        status: hdr.status,
        host_status: hdr.host_status,
        driver_status: hdr.driver_status,
        sense: decode_sense(&sense[..n]),
        sense_bytes: sense[..n].to_vec(),
        resid: hdr.resid,
    })
}

/// A WRITE(16) CDB (SBC-4 5.50): opcode 8Ah, LBA in bytes 2..10, transfer
/// length in logical blocks in bytes 10..14, big-endian.
pub fn write16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x8a;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write16_bytes() {
        assert_eq!(
            write16(0x0102_0304_0506_0708, 0x0a0b_0c0d),
            [0x8a, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0]
        );
    }

    #[test]
    fn sense_formats() {
        // Fixed: ILLEGAL REQUEST, UNALIGNED WRITE COMMAND (21h/04h).
        let mut fixed = [0u8; 18];
        fixed[0] = 0x70;
        fixed[2] = 0x05;
        fixed[7] = 10;
        fixed[12] = 0x21;
        fixed[13] = 0x04;
        let want = Sense {
            key: 5,
            asc: 0x21,
            ascq: 4,
        };
        assert_eq!(decode_sense(&fixed), Some(want));
        // Descriptor format.
        assert_eq!(
            decode_sense(&[0x72, 0x05, 0x21, 0x04, 0, 0, 0, 0]),
            Some(want)
        );
        assert_eq!(decode_sense(&[0x70, 0, 5]), None);
        assert_eq!(decode_sense(&[]), None);
        assert_eq!(decode_sense(&[0x7f; 20]), None);
        assert_eq!(want.to_string(), "sense key 0x5 asc/ascq 21/04");
    }
}
