//! NVMe passthrough: `NVME_IOCTL_ADMIN_CMD` and `NVME_IOCTL_IO64_CMD`
//! (`include/uapi/linux/nvme_ioctl.h`), defined here with their layouts
//! checked at compile time, and the completion status decoded per NVMe Base
//! 2.1, 4.2.3 "Status Field Definition".
//!
//! The ioctl returns -1/errno when the command never completed (no
//! permission, bad buffer, controller gone), 0 on success, or the positive
//! 15-bit status field (CQE DW3 bits 31:17: SC 7:0, SCT 10:8, CRD 12:11,
//! More 13, DNR 14) when the controller completed it with an error. Dword
//! 0 (and 1, for the 64-bit variant) of the completion come back in
//! `result` either way.

use std::{fmt, io, mem::size_of, os::fd::AsRawFd};

/// The fields `struct nvme_passthru_cmd` and `struct nvme_passthru_cmd64`
/// share, bytes 0..68 of both (packed to 4 so that the 64-bit variant's
/// `rsvd2` follows at byte 68, as in the kernel's layout).
#[repr(C, packed(4))]
#[derive(Debug, Clone, Copy, Default)]
pub struct PassthruHead {
    pub opcode: u8,
    pub flags: u8,
    pub rsvd1: u16,
    pub nsid: u32,
    pub cdw2: u32,
    pub cdw3: u32,
    pub metadata: u64,
    pub addr: u64,
    pub metadata_len: u32,
    pub data_len: u32,
    pub cdw10: u32,
    pub cdw11: u32,
    pub cdw12: u32,
    pub cdw13: u32,
    pub cdw14: u32,
    pub cdw15: u32,
    pub timeout_ms: u32,
}

impl PassthruHead {
    /// `cmd` with its data at `addr` (`data_len` bytes).
    fn of(cmd: &Command, addr: u64, data_len: u32) -> Self {
        Self {
            opcode: cmd.opcode,
            nsid: cmd.nsid,
            addr,
            data_len,
            cdw10: cmd.cdw[0],
            cdw11: cmd.cdw[1],
            cdw12: cmd.cdw[2],
            cdw13: cmd.cdw[3],
            cdw14: cmd.cdw[4],
            cdw15: cmd.cdw[5],
            timeout_ms: TIMEOUT_MS,
            ..Self::default()
        }
    }
}

/// `struct nvme_passthru_cmd` (72 bytes), also `struct nvme_admin_cmd`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PassthruCmd {
    pub head: PassthruHead,
    /// Completion Dword 0.
    pub result: u32,
}

/// `struct nvme_passthru_cmd64` (80 bytes): the same with a 64-bit result
/// (completion Dwords 0 and 1, e.g. Zone Append's assigned LBA).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PassthruCmd64 {
    pub head: PassthruHead,
    pub rsvd2: u32,
    /// Completion Dwords 0 (low) and 1 (high).
    pub result: u64,
}

const _: () = assert!(size_of::<PassthruHead>() == 68);
const _: () = assert!(size_of::<PassthruCmd>() == 72);
const _: () = assert!(size_of::<PassthruCmd64>() == 80);
const _: () = assert!(std::mem::offset_of!(PassthruHead, metadata) == 16);
const _: () = assert!(std::mem::offset_of!(PassthruHead, addr) == 24);
const _: () = assert!(std::mem::offset_of!(PassthruHead, data_len) == 36);
const _: () = assert!(std::mem::offset_of!(PassthruHead, cdw10) == 40);
const _: () = assert!(std::mem::offset_of!(PassthruHead, timeout_ms) == 64);
const _: () = assert!(std::mem::offset_of!(PassthruCmd, result) == 68);
const _: () = assert!(std::mem::offset_of!(PassthruCmd64, rsvd2) == 68);
const _: () = assert!(std::mem::offset_of!(PassthruCmd64, result) == 72);

const fn iowr(ty: u32, nr: u32, size: usize) -> u32 {
    (3 << 30) | ((size as u32) << 16) | (ty << 8) | nr
}

/// `NVME_IOCTL_ADMIN_CMD _IOWR('N', 0x41, struct nvme_admin_cmd)`
pub const NVME_IOCTL_ADMIN_CMD: u32 = iowr(b'N' as u32, 0x41, size_of::<PassthruCmd>());
/// `NVME_IOCTL_IO_CMD _IOWR('N', 0x43, struct nvme_passthru_cmd)`
pub const NVME_IOCTL_IO_CMD: u32 = iowr(b'N' as u32, 0x43, size_of::<PassthruCmd>());
/// `NVME_IOCTL_IO64_CMD _IOWR('N', 0x48, struct nvme_passthru_cmd64)`
pub const NVME_IOCTL_IO64_CMD: u32 = iowr(b'N' as u32, 0x48, size_of::<PassthruCmd64>());

/// A command to send: opcode, NSID and CDW10-15 (CDW2/3 stay zero).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Command {
    pub opcode: u8,
    pub nsid: u32,
    /// CDW10..=CDW15.
    pub cdw: [u32; 6],
}

impl Command {
    /// A command with opcode and NSID, other dwords zero.
    pub fn new(opcode: u8, nsid: u32) -> Self {
        Self {
            opcode,
            nsid,
            cdw: [0; 6],
        }
    }

    /// Set CDW`n` (10..=15).
    pub fn dw(mut self, n: usize, v: u32) -> Self {
        if let Some(d) = n.checked_sub(10).and_then(|i| self.cdw.get_mut(i)) {
            *d = v;
        }
        self
    }

    /// Set CDW`n` and CDW`n+1` to a 64-bit value (low dword first).
    pub fn qw(self, n: usize, v: u64) -> Self {
        self.dw(n, v as u32).dw(n + 1, (v >> 32) as u32)
    }

    /// Bits 1:0 of the opcode: 01b host to controller, 10b controller to
    /// host (NVMe Base 2.1, Figure 'Opcodes for Admin Commands').
    pub fn writes_data(&self) -> bool {
        self.opcode & 0b11 == 0b01
    }
}

/// The 15-bit completion status field: SC 7:0, SCT 10:8, CRD 12:11,
/// More 13, DNR 14 (CQE DW3 bits 31:17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status(pub u16);

impl Status {
    /// Successful Completion.
    pub const SUCCESS: Status = Status(0);

    /// Status Code.
    pub fn sc(self) -> u8 {
        self.0 as u8
    }
    /// Status Code Type.
    pub fn sct(self) -> u8 {
        ((self.0 >> 8) & 0x7) as u8
    }
    /// Do Not Retry.
    pub fn dnr(self) -> bool {
        self.0 & (1 << 14) != 0
    }
    /// More (a log page has more about it).
    pub fn more(self) -> bool {
        self.0 & (1 << 13) != 0
    }
    /// SCT and SC alone, without CRD, More and DNR: `(sct << 8) | sc`.
    pub fn code(self) -> u16 {
        self.0 & 0x7FF
    }
    /// Whether it is a success.
    pub fn is_success(self) -> bool {
        self.code() == 0
    }
    /// The spec's name for the SCT/SC pair, if this suite knows it.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.code() {
            0x0000 => "Successful Completion",
            0x0001 => "Invalid Command Opcode",
            0x0002 => "Invalid Field in Command",
            0x0004 => "Data Transfer Error",
            0x0006 => "Internal Error",
            0x000B => "Invalid Namespace or Format",
            0x000D => "Invalid SGL Segment Descriptor",
            0x000F => "Data SGL Length Invalid",
            0x0080 => "LBA Out of Range",
            0x0081 => "Capacity Exceeded",
            0x0082 => "Namespace Not Ready",
            0x0109 => "Invalid Log Page",
            0x010A => "Invalid Format",
            0x010D => "Feature Identifier Not Saveable",
            0x010E => "Feature Not Changeable",
            0x0180 => "Conflicting Attributes",
            0x0181 => "Invalid Protection Information",
            0x0182 => "Attempted Write to Read Only Range",
            0x0183 => "Command Size Limit Exceeded",
            0x01B8 => "Zone Boundary Error",
            0x01B9 => "Zone Is Full",
            0x01BA => "Zone Is Read Only",
            0x01BB => "Zone Is Offline",
            0x01BC => "Zone Invalid Write",
            0x01BD => "Too Many Active Zones",
            0x01BE => "Too Many Open Zones",
            0x01BF => "Invalid Zone State Transition",
            0x0281 => "Unrecovered Read Error",
            _ => return None,
        })
    }
}

/// Generic Command Status (SCT 0h), NVMe Base 2.1 Figure 102.
pub mod sc {
    /// Invalid Field in Command (SCT 0h, SC 02h).
    pub const INVALID_FIELD: u16 = 0x0002;
    /// Invalid Namespace or Format (SCT 0h, SC 0Bh).
    pub const INVALID_NAMESPACE_OR_FORMAT: u16 = 0x000B;
    /// LBA Out of Range (SCT 0h, SC 80h; NVM Command Set).
    pub const LBA_OUT_OF_RANGE: u16 = 0x0080;
    /// Invalid Format (SCT 1h, SC 0Ah), what QEMU returns for a Copy
    /// descriptor format that does not fit the namespace's PI format.
    pub const INVALID_FORMAT: u16 = 0x010A;
    /// Command Size Limit Exceeded (SCT 1h, SC 83h; NVM Command Set 1.0,
    /// Figure 'NVM Command Set Command Specific Status Values': Copy).
    pub const COMMAND_SIZE_LIMIT_EXCEEDED: u16 = 0x0183;
    /// Zone Boundary Error (SCT 1h, SC B8h; ZNS Command Set 1.1).
    pub const ZONE_BOUNDARY_ERROR: u16 = 0x01B8;
    /// Zone Is Full (SCT 1h, SC B9h).
    pub const ZONE_IS_FULL: u16 = 0x01B9;
    /// Zone Invalid Write (SCT 1h, SC BCh).
    pub const ZONE_INVALID_WRITE: u16 = 0x01BC;
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status {:#06x} (SCT {:#x} SC {:#04x}",
            self.0,
            self.sct(),
            self.sc()
        )?;
        if let Some(n) = self.name() {
            write!(f, " {n}")?;
        }
        if self.more() {
            f.write_str(", More")?;
        }
        if self.dnr() {
            f.write_str(", DNR")?;
        }
        f.write_str(")")
    }
}

/// What came back from a passthrough command the controller completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The status field (0 = success).
    pub status: Status,
    /// Completion Dword 0 (and Dword 1 in the high half for I/O commands).
    pub result: u64,
}

impl Done {
    /// Dword 0.
    pub fn dw0(&self) -> u32 {
        self.result as u32
    }

    /// `Ok(self)` on success, else an error naming `what` and the status.
    pub fn ok(self, what: &str) -> Result<Self, String> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(format!("{what}: {}", self.status))
        }
    }
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} dw0 {:#x}", self.status, self.dw0())?;
        if self.result >> 32 != 0 {
            write!(f, " dw1 {:#x}", self.result >> 32)?;
        }
        Ok(())
    }
}

/// Data moved by a command.
#[derive(Debug)]
pub enum Data<'a> {
    /// No data.
    None,
    /// Host to controller (opcode bits 1:0 = 01b).
    Out(&'a [u8]),
    /// Controller to host (opcode bits 1:0 = 10b).
    In(&'a mut [u8]),
}

impl Data<'_> {
    fn ptr_len(&mut self) -> io::Result<(u64, u32)> {
        let (p, l) = match self {
            Data::None => (0, 0),
            Data::Out(b) => (b.as_ptr() as u64, b.len()),
            Data::In(b) => (b.as_mut_ptr() as u64, b.len()),
        };
        let l = u32::try_from(l).map_err(|_| io::Error::other("data buffer over 4 GiB"))?;
        Ok((p, l))
    }
}

/// Default command timeout: long enough for TCG guests and big copies.
pub const TIMEOUT_MS: u32 = 60_000;

fn check_direction(cmd: &Command, data: &Data<'_>) -> io::Result<()> {
    let ok = match data {
        Data::None => true,
        Data::Out(_) => cmd.writes_data(),
        Data::In(_) => cmd.opcode & 0b11 == 0b10,
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "opcode {:#04x} moves data the other way",
            cmd.opcode
        )))
    }
}

fn finish(rc: libc::c_int, result: u64) -> io::Result<Done> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Done {
        status: Status(u16::try_from(rc).unwrap_or(u16::MAX)),
        result,
    })
}

/// An admin command through `NVME_IOCTL_ADMIN_CMD` on a controller
/// (`/dev/nvmeN`) or namespace device.
pub fn admin(fd: &impl AsRawFd, cmd: &Command, mut data: Data<'_>) -> io::Result<Done> {
    check_direction(cmd, &data)?;
    let (addr, data_len) = data.ptr_len()?;
    let mut c = PassthruCmd {
        head: PassthruHead::of(cmd, addr, data_len),
        result: 0,
    };
    // SAFETY: NVME_IOCTL_ADMIN_CMD reads and writes one struct
    // nvme_passthru_cmd (`c`, alive for the call) and moves at most
    // `data_len` bytes at `addr`, which points into `data`'s buffer: read
    // only for Out, written for In (direction checked above against the
    // opcode the kernel uses to pick the DMA direction).
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            NVME_IOCTL_ADMIN_CMD as _,
            &mut c as *mut PassthruCmd,
        )
    };
    finish(rc, u64::from(c.result))
}

/// An I/O command through `NVME_IOCTL_IO64_CMD` (64-bit result) on a
/// namespace device (`/dev/nvmeXnY` or `/dev/ngXnY`).
pub fn io(fd: &impl AsRawFd, cmd: &Command, mut data: Data<'_>) -> io::Result<Done> {
    check_direction(cmd, &data)?;
    let (addr, data_len) = data.ptr_len()?;
    let mut c = PassthruCmd64 {
        head: PassthruHead::of(cmd, addr, data_len),
        ..PassthruCmd64::default()
    };
    // SAFETY: NVME_IOCTL_IO64_CMD reads and writes one struct
    // nvme_passthru_cmd64 (`c`, alive for the call) and moves at most
    // `data_len` bytes at `addr`, inside `data`'s buffer, in the direction
    // checked above.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            NVME_IOCTL_IO64_CMD as _,
            &mut c as *mut PassthruCmd64,
        )
    };
    finish(rc, c.result)
}

/// Admin opcodes (NVMe Base 2.1, Figure 'Opcodes for Admin Commands').
pub mod admin_op {
    /// Get Log Page.
    pub const GET_LOG_PAGE: u8 = 0x02;
    /// Identify.
    pub const IDENTIFY: u8 = 0x06;
    /// Set Features.
    pub const SET_FEATURES: u8 = 0x09;
    /// Get Features.
    pub const GET_FEATURES: u8 = 0x0A;
}

/// I/O opcodes (NVM and ZNS Command Sets).
pub mod io_op {
    /// Write.
    pub const WRITE: u8 = 0x01;
    /// Read.
    pub const READ: u8 = 0x02;
    /// Copy (NVM Command Set 1.0, 3.2.2).
    pub const COPY: u8 = 0x19;
    /// Zone Management Send (ZNS 1.1, 3.4.3).
    pub const ZONE_MGMT_SEND: u8 = 0x79;
    /// Zone Management Receive (ZNS 1.1, 3.4.2).
    pub const ZONE_MGMT_RECV: u8 = 0x7A;
    /// Zone Append (ZNS 1.1, 3.4.1).
    pub const ZONE_APPEND: u8 = 0x7D;
}

/// Identify (06h): CNS in CDW10 bits 7:0, CSI in CDW11 bits 31:24; 4096
/// bytes back.
pub fn identify(nsid: u32, cns: u8, csi: u8) -> Command {
    Command::new(admin_op::IDENTIFY, nsid)
        .dw(10, u32::from(cns))
        .dw(11, u32::from(csi) << 24)
}

/// Get Log Page (02h) of `len` bytes (a multiple of 4) at offset `lpo`:
/// LID CDW10 7:0, NUMDL CDW10 31:16, NUMDU CDW11 15:0 (0's based dwords),
/// LPO CDW12-13.
pub fn get_log_page(nsid: u32, lid: u8, len: u32, lpo: u64) -> Command {
    let numd = (len / 4).saturating_sub(1);
    Command::new(admin_op::GET_LOG_PAGE, nsid)
        .dw(10, u32::from(lid) | ((numd & 0xFFFF) << 16))
        .dw(11, numd >> 16)
        .qw(12, lpo)
}

/// Get Features (0Ah) of feature `fid`, SEL 000b (current).
pub fn get_features(fid: u8) -> Command {
    Command::new(admin_op::GET_FEATURES, 0).dw(10, u32::from(fid))
}

/// Set Features (09h) of feature `fid`, not saved.
pub fn set_features(fid: u8) -> Command {
    Command::new(admin_op::SET_FEATURES, 0).dw(10, u32::from(fid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel() {
        // From include/uapi/linux/nvme_ioctl.h as compiled on x86_64.
        assert_eq!(NVME_IOCTL_ADMIN_CMD, 0xC048_4E41);
        assert_eq!(NVME_IOCTL_IO_CMD, 0xC048_4E43);
        assert_eq!(NVME_IOCTL_IO64_CMD, 0xC050_4E48);
    }

    #[test]
    fn status_decoding() {
        // Command Size Limit Exceeded with DNR: SCT 1h SC 83h, bit 14.
        let s = Status(0x4183);
        assert_eq!((s.sct(), s.sc(), s.dnr(), s.more()), (1, 0x83, true, false));
        assert_eq!(s.code(), sc::COMMAND_SIZE_LIMIT_EXCEEDED);
        assert_eq!(
            s.to_string(),
            "status 0x4183 (SCT 0x1 SC 0x83 Command Size Limit Exceeded, DNR)"
        );
        // Invalid Field in Command with DNR, as the brief's 0x4002.
        let s = Status(0x4002);
        assert_eq!((s.sct(), s.sc(), s.dnr()), (0, 0x02, true));
        assert_eq!(s.name(), Some("Invalid Field in Command"));
        // Zone Invalid Write, More set, CRD 1.
        let s = Status(0x21BC | (1 << 11));
        assert_eq!(s.code(), sc::ZONE_INVALID_WRITE);
        assert!(s.more() && !s.dnr());
        assert!(Status(0).is_success() && !Status(0x4000 | 0x80).is_success());
        assert_eq!(Status(0x7FF).name(), None);
    }

    #[test]
    fn command_dwords() {
        let c = identify(1, 0x05, 0x02);
        assert_eq!(
            (c.opcode, c.nsid, c.cdw[0], c.cdw[1]),
            (0x06, 1, 5, 0x0200_0000)
        );
        // 4096 bytes = 1024 dwords, 0's based 1023 = 0x3FF in NUMDL.
        let c = get_log_page(0, 0x70, 4096, 0x1_0000_0400);
        assert_eq!(c.cdw[0], 0x03FF_0070);
        assert_eq!(c.cdw[1], 0);
        assert_eq!((c.cdw[2], c.cdw[3]), (0x400, 1));
        let c = get_log_page(0, 0x70, 1 << 20, 0);
        assert_eq!((c.cdw[0] >> 16, c.cdw[1]), (0xFFFF, 0x3));
        assert_eq!(Command::new(0x19, 1).qw(10, 0x1_0000_0002).cdw[..2], [2, 1]);
        assert!(Command::new(0x19, 1).writes_data());
        assert!(Command::new(0x7D, 1).writes_data());
        assert!(!Command::new(0x7A, 1).writes_data());
        assert!(check_direction(&Command::new(0x7A, 1), &Data::Out(&[])).is_err());
        assert!(check_direction(&Command::new(0x19, 1), &Data::In(&mut [])).is_err());
    }
}
