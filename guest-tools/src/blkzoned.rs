//! The zoned block device ioctls of `include/uapi/linux/blkzoned.h`,
//! defined here (libc does not carry them), with their struct layouts
//! checked at compile time. All sector values are 512-byte sectors,
//! whatever the device's logical block size.

use std::{fmt, io, mem::size_of, os::fd::AsRawFd};

/// `struct blk_zone` (uapi, 64 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkZone {
    /// Zone start sector.
    pub start: u64,
    /// Zone length in sectors.
    pub len: u64,
    /// Write pointer position (sector).
    pub wp: u64,
    /// `BLK_ZONE_TYPE_*`.
    pub type_: u8,
    /// `BLK_ZONE_COND_*`.
    pub cond: u8,
    /// Non-sequential write resources active.
    pub non_seq: u8,
    /// Reset write pointer recommended.
    pub reset: u8,
    /// Padding.
    pub resv: [u8; 4],
    /// Zone capacity in sectors (valid with `BLK_ZONE_REP_CAPACITY`).
    pub capacity: u64,
    /// Padding.
    pub reserved: [u8; 24],
}

/// `struct blk_zone_report` header (16 bytes), followed by `nr_zones`
/// `struct blk_zone`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BlkZoneReport {
    /// First sector to report from.
    pub sector: u64,
    /// In: room for this many zones; out: zones reported.
    pub nr_zones: u32,
    /// Out: `BLK_ZONE_REP_*`.
    pub flags: u32,
}

/// `struct blk_zone_range`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BlkZoneRange {
    /// First sector (a zone start).
    pub sector: u64,
    /// Length in sectors (whole zones).
    pub nr_sectors: u64,
}

const _: () = assert!(size_of::<BlkZone>() == 64);
const _: () = assert!(size_of::<BlkZoneReport>() == 16);
const _: () = assert!(size_of::<BlkZoneRange>() == 16);

/// `BLK_ZONE_REP_CAPACITY`: the report's `capacity` fields are valid.
pub const BLK_ZONE_REP_CAPACITY: u32 = 1 << 0;

/// `BLK_ZONE_TYPE_CONVENTIONAL`
pub const BLK_ZONE_TYPE_CONVENTIONAL: u8 = 0x1;
/// `BLK_ZONE_TYPE_SEQWRITE_REQ`
pub const BLK_ZONE_TYPE_SEQWRITE_REQ: u8 = 0x2;
/// `BLK_ZONE_TYPE_SEQWRITE_PREF`
pub const BLK_ZONE_TYPE_SEQWRITE_PREF: u8 = 0x3;

/// `BLK_ZONE_COND_NOT_WP`
pub const BLK_ZONE_COND_NOT_WP: u8 = 0x0;
/// `BLK_ZONE_COND_EMPTY`
pub const BLK_ZONE_COND_EMPTY: u8 = 0x1;
/// `BLK_ZONE_COND_IMP_OPEN`
pub const BLK_ZONE_COND_IMP_OPEN: u8 = 0x2;
/// `BLK_ZONE_COND_EXP_OPEN`
pub const BLK_ZONE_COND_EXP_OPEN: u8 = 0x3;
/// `BLK_ZONE_COND_CLOSED`
pub const BLK_ZONE_COND_CLOSED: u8 = 0x4;
/// `BLK_ZONE_COND_READONLY`
pub const BLK_ZONE_COND_READONLY: u8 = 0xD;
/// `BLK_ZONE_COND_FULL`
pub const BLK_ZONE_COND_FULL: u8 = 0xE;
/// `BLK_ZONE_COND_OFFLINE`
pub const BLK_ZONE_COND_OFFLINE: u8 = 0xF;

/// Name of a zone condition, for messages.
pub fn cond_name(cond: u8) -> String {
    match cond {
        BLK_ZONE_COND_NOT_WP => "NOT_WP".into(),
        BLK_ZONE_COND_EMPTY => "EMPTY".into(),
        BLK_ZONE_COND_IMP_OPEN => "IMP_OPEN".into(),
        BLK_ZONE_COND_EXP_OPEN => "EXP_OPEN".into(),
        BLK_ZONE_COND_CLOSED => "CLOSED".into(),
        BLK_ZONE_COND_READONLY => "READONLY".into(),
        BLK_ZONE_COND_FULL => "FULL".into(),
        BLK_ZONE_COND_OFFLINE => "OFFLINE".into(),
        c => format!("cond {c:#x}"),
    }
}

/// Name of a zone type, for messages.
pub fn type_name(t: u8) -> String {
    match t {
        BLK_ZONE_TYPE_CONVENTIONAL => "CONVENTIONAL".into(),
        BLK_ZONE_TYPE_SEQWRITE_REQ => "SEQWRITE_REQ".into(),
        BLK_ZONE_TYPE_SEQWRITE_PREF => "SEQWRITE_PREF".into(),
        t => format!("type {t:#x}"),
    }
}

impl fmt::Display for BlkZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "start {} len {} wp {} cap {} {} {}",
            self.start,
            self.len,
            self.wp,
            self.capacity,
            type_name(self.type_),
            cond_name(self.cond)
        )
    }
}

/// `_IOC(dir, type, nr, size)` from `asm-generic/ioctl.h` (x86, arm64,
/// riscv: 2 direction bits at 30, 14 size bits at 16).
const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (ty << 8) | nr
}
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `BLKREPORTZONE _IOWR(0x12, 130, struct blk_zone_report)`
pub const BLKREPORTZONE: u32 = ioc(IOC_READ | IOC_WRITE, 0x12, 130, size_of::<BlkZoneReport>());
/// `BLKRESETZONE _IOW(0x12, 131, struct blk_zone_range)`
pub const BLKRESETZONE: u32 = ioc(IOC_WRITE, 0x12, 131, size_of::<BlkZoneRange>());
/// `BLKGETZONESZ _IOR(0x12, 132, __u32)`
pub const BLKGETZONESZ: u32 = ioc(IOC_READ, 0x12, 132, size_of::<u32>());
/// `BLKGETNRZONES _IOR(0x12, 133, __u32)`
pub const BLKGETNRZONES: u32 = ioc(IOC_READ, 0x12, 133, size_of::<u32>());
/// `BLKOPENZONE _IOW(0x12, 134, struct blk_zone_range)`
pub const BLKOPENZONE: u32 = ioc(IOC_WRITE, 0x12, 134, size_of::<BlkZoneRange>());
/// `BLKCLOSEZONE _IOW(0x12, 135, struct blk_zone_range)`
pub const BLKCLOSEZONE: u32 = ioc(IOC_WRITE, 0x12, 135, size_of::<BlkZoneRange>());
/// `BLKFINISHZONE _IOW(0x12, 136, struct blk_zone_range)`
pub const BLKFINISHZONE: u32 = ioc(IOC_WRITE, 0x12, 136, size_of::<BlkZoneRange>());

/// A zone management action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneOp {
    /// `BLKRESETZONE`
    Reset,
    /// `BLKOPENZONE`
    Open,
    /// `BLKCLOSEZONE`
    Close,
    /// `BLKFINISHZONE`
    Finish,
}

impl ZoneOp {
    fn request(self) -> u32 {
        match self {
            Self::Reset => BLKRESETZONE,
            Self::Open => BLKOPENZONE,
            Self::Close => BLKCLOSEZONE,
            Self::Finish => BLKFINISHZONE,
        }
    }

    /// The ioctl's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reset => "BLKRESETZONE",
            Self::Open => "BLKOPENZONE",
            Self::Close => "BLKCLOSEZONE",
            Self::Finish => "BLKFINISHZONE",
        }
    }
}

/// Why a report buffer could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the 16-byte header.
    Short(usize),
    /// The header claims more zones than the buffer holds.
    TooManyZones {
        /// `nr_zones` in the header.
        claimed: u32,
        /// Zones that fit in the buffer.
        room: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short(n) => write!(f, "report buffer of {n} bytes has no header"),
            Self::TooManyZones { claimed, room } => {
                write!(f, "report claims {claimed} zones, buffer holds {room}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(v)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(v)
}

/// Decode a `struct blk_zone_report` + zones as the kernel filled it
/// (native byte order). Returns the header's flags and the zones.
pub fn decode_report(buf: &[u8]) -> Result<(u32, Vec<BlkZone>), DecodeError> {
    const HDR: usize = size_of::<BlkZoneReport>();
    const ZONE: usize = size_of::<BlkZone>();
    if buf.len() < HDR {
        return Err(DecodeError::Short(buf.len()));
    }
    let nr = u32_at(buf, 8);
    let flags = u32_at(buf, 12);
    let room = (buf.len() - HDR) / ZONE;
    if nr as usize > room {
        return Err(DecodeError::TooManyZones { claimed: nr, room });
    }
    let zones = buf[HDR..]
        .chunks_exact(ZONE)
        .take(nr as usize)
        .map(|z| {
            let mut resv = [0; 4];
            resv.copy_from_slice(&z[28..32]);
            let mut reserved = [0; 24];
            reserved.copy_from_slice(&z[40..64]);
            BlkZone {
                start: u64_at(z, 0),
                len: u64_at(z, 8),
                wp: u64_at(z, 16),
                type_: z[24],
                cond: z[25],
                non_seq: z[26],
                reset: z[27],
                resv,
                capacity: u64_at(z, 32),
                reserved,
            }
        })
        .collect();
    Ok((flags, zones))
}

/// Encode a report the way the kernel lays it out (for tests and fakes).
pub fn encode_report(flags: u32, zones: &[BlkZone]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + 64 * zones.len());
    b.extend_from_slice(&0u64.to_ne_bytes());
    b.extend_from_slice(&u32::try_from(zones.len()).unwrap_or(u32::MAX).to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    for z in zones {
        b.extend_from_slice(&z.start.to_ne_bytes());
        b.extend_from_slice(&z.len.to_ne_bytes());
        b.extend_from_slice(&z.wp.to_ne_bytes());
        b.extend_from_slice(&[z.type_, z.cond, z.non_seq, z.reset]);
        b.extend_from_slice(&z.resv);
        b.extend_from_slice(&z.capacity.to_ne_bytes());
        b.extend_from_slice(&z.reserved);
    }
    b
}

/// `BLKREPORTZONE` from `sector`, room for `max` zones. Returns the report
/// flags and the zones reported (possibly fewer than `max`).
pub fn report_zones(fd: &impl AsRawFd, sector: u64, max: u32) -> io::Result<(u32, Vec<BlkZone>)> {
    const HDR: usize = size_of::<BlkZoneReport>();
    let len = HDR + size_of::<BlkZone>() * max as usize;
    // u64 storage: the header and zones hold u64 fields, so 8-byte aligned.
    let mut words = vec![0u64; len.div_ceil(8)];
    words[0] = sector;
    words[1] = u64::from(max); // nr_zones = max, flags = 0 (little-endian)
    if cfg!(target_endian = "big") {
        words[1] = u64::from(max) << 32;
    }
    let ptr = words.as_mut_ptr();
    // SAFETY: BLKREPORTZONE reads the 16-byte header at `ptr` and writes at
    // most `nr_zones` (= max) struct blk_zone after it; the allocation is
    // `len` bytes rounded up, exactly that size, and lives across the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), BLKREPORTZONE as _, ptr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    decode_report(&bytes[..len]).map_err(io::Error::other)
}

/// All zones of a device with `nr_zones` zones, in several calls if the
/// kernel returns fewer per call.
pub fn report_all(fd: &impl AsRawFd, nr_zones: u32) -> io::Result<(u32, Vec<BlkZone>)> {
    let mut zones: Vec<BlkZone> = Vec::with_capacity(nr_zones as usize);
    let mut sector = 0;
    let mut flags = 0;
    while zones.len() < nr_zones as usize {
        let left = nr_zones - u32::try_from(zones.len()).unwrap_or(nr_zones);
        let (f, got) = report_zones(fd, sector, left.min(4096))?;
        flags = f;
        let Some(last) = got.last() else { break };
        sector = last.start.saturating_add(last.len);
        zones.extend(got);
    }
    Ok((flags, zones))
}

/// One zone: the zone containing `sector`.
pub fn report_one(fd: &impl AsRawFd, sector: u64) -> io::Result<BlkZone> {
    let (_, z) = report_zones(fd, sector, 1)?;
    z.first().copied().ok_or_else(|| {
        io::Error::other(format!("BLKREPORTZONE at sector {sector} reported no zone"))
    })
}

/// Run a zone management ioctl on `nr_sectors` from `sector`.
pub fn zone_mgmt(fd: &impl AsRawFd, op: ZoneOp, sector: u64, nr_sectors: u64) -> io::Result<()> {
    let range = BlkZoneRange { sector, nr_sectors };
    // SAFETY: the zone management ioctls only read one struct
    // blk_zone_range, which `range` is, alive for the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            op.request() as _,
            &range as *const BlkZoneRange,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn get_u32(fd: &impl AsRawFd, request: u32) -> io::Result<u32> {
    let mut v: u32 = 0;
    // SAFETY: BLKGETZONESZ / BLKGETNRZONES write one __u32 to the pointer,
    // which points at `v`, alive for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &mut v as *mut u32) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// `BLKGETZONESZ`: zone size in sectors (0 if not zoned).
pub fn zone_size_sectors(fd: &impl AsRawFd) -> io::Result<u32> {
    get_u32(fd, BLKGETZONESZ)
}

/// `BLKGETNRZONES`: number of zones (0 if not zoned).
pub fn nr_zones(fd: &impl AsRawFd) -> io::Result<u32> {
    get_u32(fd, BLKGETNRZONES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel() {
        // Values as computed by the kernel headers on x86_64.
        assert_eq!(BLKREPORTZONE, 0xC010_1282);
        assert_eq!(BLKRESETZONE, 0x4010_1283);
        assert_eq!(BLKGETZONESZ, 0x8004_1284);
        assert_eq!(BLKGETNRZONES, 0x8004_1285);
        assert_eq!(BLKOPENZONE, 0x4010_1286);
        assert_eq!(BLKCLOSEZONE, 0x4010_1287);
        assert_eq!(BLKFINISHZONE, 0x4010_1288);
    }

    #[test]
    fn decode_a_kernel_layout_buffer() {
        // Hand-laid bytes of a report with two zones (x86_64, little-endian).
        let mut b = vec![0u8; 16 + 2 * 64];
        b[0..8].copy_from_slice(&0u64.to_le_bytes()); // sector
        b[8..12].copy_from_slice(&2u32.to_le_bytes()); // nr_zones
        b[12..16].copy_from_slice(&1u32.to_le_bytes()); // flags: CAPACITY
        let z = &mut b[16..80];
        z[0..8].copy_from_slice(&0u64.to_le_bytes());
        z[8..16].copy_from_slice(&8192u64.to_le_bytes());
        z[16..24].copy_from_slice(&8192u64.to_le_bytes());
        z[24] = 1; // conventional
        z[25] = 0; // NOT_WP
        z[32..40].copy_from_slice(&8192u64.to_le_bytes());
        let z = &mut b[80..144];
        z[0..8].copy_from_slice(&8192u64.to_le_bytes());
        z[8..16].copy_from_slice(&8192u64.to_le_bytes());
        z[16..24].copy_from_slice(&8200u64.to_le_bytes());
        z[24] = 2; // SWR
        z[25] = 2; // IMP_OPEN
        z[26] = 1;
        z[27] = 1;
        z[32..40].copy_from_slice(&6144u64.to_le_bytes());
        let (flags, zones) = decode_report(&b).unwrap();
        assert_eq!(flags, BLK_ZONE_REP_CAPACITY);
        assert_eq!(zones.len(), 2);
        assert_eq!(
            zones[1],
            BlkZone {
                start: 8192,
                len: 8192,
                wp: 8200,
                type_: BLK_ZONE_TYPE_SEQWRITE_REQ,
                cond: BLK_ZONE_COND_IMP_OPEN,
                non_seq: 1,
                reset: 1,
                capacity: 6144,
                ..BlkZone::default()
            }
        );
        assert_eq!(zones[0].type_, BLK_ZONE_TYPE_CONVENTIONAL);
        assert_eq!(
            zones[1].to_string(),
            "start 8192 len 8192 wp 8200 cap 6144 SEQWRITE_REQ IMP_OPEN"
        );
        assert_eq!(encode_report(flags, &zones)[8..], b[8..]);
    }

    #[test]
    fn decode_rejects_bad_buffers() {
        assert_eq!(decode_report(&[0; 15]), Err(DecodeError::Short(15)));
        let mut b = vec![0u8; 16 + 64 + 10];
        b[8..12].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(
            decode_report(&b),
            Err(DecodeError::TooManyZones {
                claimed: 2,
                room: 1
            })
        );
        // Fewer zones than room: only nr_zones are returned.
        b[8..12].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(decode_report(&b).unwrap().1.len(), 0);
    }

    #[test]
    fn names() {
        assert_eq!(cond_name(BLK_ZONE_COND_FULL), "FULL");
        assert_eq!(cond_name(0x7), "cond 0x7");
        assert_eq!(type_name(BLK_ZONE_TYPE_SEQWRITE_PREF), "SEQWRITE_PREF");
    }
}
