//! The ZBC commands and data the suite sends and decodes, from ZBC-2's
//! tables (5.2-5.5 ZBC OUT, 6.4 REPORT ZONES, 6.5.2 Zoned Block Device
//! Characteristics VPD page) and SBC-4 (READ CAPACITY(16)). Multi-byte
//! fields are big-endian.

use super::model::{Action, Cond, Zone, ZoneType};

/// ZBC OUT operation code.
pub const OP_ZBC_OUT: u8 = 0x94;
/// ZBC IN operation code (REPORT ZONES is service action 00h).
pub const OP_ZBC_IN: u8 = 0x95;

/// Length of the REPORT ZONES header and of each zone descriptor.
pub const DESC: usize = 64;

/// ZBC OUT CDB (ZBC-2 5.2-5.5): 94h, SERVICE ACTION in byte 1 bits 4..0,
/// ZONE ID in 2..10, ZONE COUNT in 12..14, ALL in byte 14 bit 0.
pub fn zbc_out(act: Action, zone_id: u64, count: u16, all: bool) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_ZBC_OUT;
    c[1] = act.service_action();
    c[2..10].copy_from_slice(&zone_id.to_be_bytes());
    c[12..14].copy_from_slice(&count.to_be_bytes());
    c[14] = u8::from(all);
    c
}

/// REPORT ZONES CDB (ZBC-2 6.4.2): 95h, 00h, ZONE START LBA in 2..10,
/// ALLOCATION LENGTH in 10..14, PARTIAL in byte 14 bit 7, REPORTING
/// OPTIONS in byte 14 bits 5..0.
pub fn report_zones(start: u64, alloc: u32, opt: u8, partial: bool) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = OP_ZBC_IN;
    c[2..10].copy_from_slice(&start.to_be_bytes());
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c[14] = (opt & 0x3f) | if partial { 0x80 } else { 0 };
    c
}

/// READ CAPACITY(16) CDB (SBC-4 5.16): 9Eh/10h, ALLOCATION LENGTH 10..14.
pub fn read_capacity16(alloc: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x9e;
    c[1] = 0x10;
    c[10..14].copy_from_slice(&alloc.to_be_bytes());
    c
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(v)
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

/// The REPORT ZONES parameter data header (ZBC-2 6.4.3.2, table 34).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportHeader {
    /// ZONE LIST LENGTH (bytes 0..4).
    pub list_len: u32,
    /// SAME (byte 4 bits 3..0).
    pub same: u8,
    /// MAXIMUM LBA (bytes 8..16).
    pub max_lba: u64,
}

/// Decode one zone descriptor (ZBC-2 6.4.3.3, table 35).
pub fn decode_zone(d: &[u8]) -> Result<Zone, String> {
    if d.len() < DESC {
        return Err(format!("zone descriptor of {} bytes", d.len()));
    }
    let ztype = match d[0] & 0x0f {
        1 => ZoneType::Conventional,
        2 => ZoneType::SeqRequired,
        3 => ZoneType::SeqPreferred,
        5 => ZoneType::Gap,
        t => return Err(format!("zone type {t:#x}")),
    };
    let cond = match d[1] >> 4 {
        0x0 => Cond::NotWp,
        0x1 => Cond::Empty,
        0x2 => Cond::ImpOpen,
        0x3 => Cond::ExpOpen,
        0x4 => Cond::Closed,
        0xd => Cond::ReadOnly,
        0xe => Cond::Full,
        0xf => Cond::Offline,
        c => return Err(format!("zone condition {c:#x}")),
    };
    Ok(Zone {
        start: be64(d, 16),
        len: be64(d, 8),
        ztype,
        cond,
        wp: be64(d, 24),
        non_seq: d[1] & 0x02 != 0,
        reset: d[1] & 0x01 != 0,
        wp_known: true,
    })
}

/// Decode REPORT ZONES parameter data: the header (at least its first 16
/// bytes must be there) and every complete descriptor that is both in
/// `buf` and within the ZONE LIST LENGTH.
pub fn parse_report(buf: &[u8]) -> Result<(ReportHeader, Vec<Zone>), String> {
    if buf.len() < 16 {
        return Err(format!("REPORT ZONES data of {} bytes", buf.len()));
    }
    let h = ReportHeader {
        list_len: be32(buf, 0),
        same: buf[4] & 0x0f,
        max_lba: be64(buf, 8),
    };
    let listed = h.list_len as usize / DESC;
    let present = buf.len().saturating_sub(DESC) / DESC;
    let zones = buf
        .get(DESC..)
        .unwrap_or(&[])
        .chunks_exact(DESC)
        .take(listed.min(present))
        .enumerate()
        .map(|(i, d)| decode_zone(d).map_err(|e| format!("descriptor {i}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((h, zones))
}

/// Check the SAME field against the zones listed (ZBC-2 6.4.3.2, table
/// 34): 0h is always allowed; 1h all the same type and length; 2h the
/// same type and length but the last length; 3h the same length.
pub fn check_same(same: u8, zones: &[Zone]) -> Result<(), String> {
    let Some(first) = zones.first() else {
        return Ok(());
    };
    let same_type = zones.iter().all(|z| z.ztype == first.ztype);
    let len_all = zones.iter().all(|z| z.len == first.len);
    let len_but_last = zones[..zones.len() - 1].iter().all(|z| z.len == first.len);
    let ok = match same {
        0 => true,
        1 => same_type && len_all,
        2 => same_type && len_but_last,
        3 => len_all,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("SAME {same:#x} does not describe the zones listed"))
    }
}

/// The Zoned Block Device Characteristics VPD page (ZBC-2 6.5.2, table
/// 41).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpdB6 {
    /// ZONED BLOCK DEVICE EXTENSION (byte 4 bits 7..4): 1h host aware.
    pub zbd_ext: u8,
    /// URSWRZ (byte 4 bit 0).
    pub urswrz: bool,
    /// OPTIMAL NUMBER OF OPEN SEQUENTIAL WRITE PREFERRED ZONES (8..12).
    pub optimal_open_swp: u32,
    /// OPTIMAL NUMBER OF NON-SEQUENTIALLY WRITTEN SEQUENTIAL WRITE
    /// PREFERRED ZONES (12..16).
    pub optimal_nonseq_swp: u32,
    /// MAXIMUM NUMBER OF OPEN SEQUENTIAL WRITE REQUIRED ZONES (16..20);
    /// FFFF_FFFFh: no limit.
    pub max_open_swr: u32,
    /// ZONE ALIGNMENT METHOD (byte 23 bits 3..0): 1h constant zone length,
    /// 8h zone starting LBA granularity.
    pub zam: u8,
    /// ZONE STARTING LBA GRANULARITY (24..32).
    pub granularity: u64,
}

/// Decode VPD page B6h.
pub fn parse_b6(p: &[u8]) -> Result<VpdB6, String> {
    if p.len() < 32 || p[1] != 0xb6 {
        return Err(format!(
            "VPD B6h: {} bytes, page code {:#x}",
            p.len(),
            p.get(1).copied().unwrap_or(0)
        ));
    }
    let page_len = u16::from_be_bytes([p[2], p[3]]);
    if page_len != 0x3c {
        return Err(format!("VPD B6h PAGE LENGTH {page_len:#x}, expected 3Ch"));
    }
    Ok(VpdB6 {
        zbd_ext: p[4] >> 4,
        urswrz: p[4] & 1 != 0,
        optimal_open_swp: be32(p, 8),
        optimal_nonseq_swp: be32(p, 12),
        max_open_swr: be32(p, 16),
        zam: p[23] & 0x0f,
        granularity: be64(p, 24),
    })
}

/// READ CAPACITY(16) data (SBC-4 5.16.2): RETURNED LOGICAL BLOCK ADDRESS
/// and LOGICAL BLOCK LENGTH IN BYTES.
pub fn parse_capacity16(b: &[u8]) -> Result<(u64, u32), String> {
    if b.len() < 12 {
        return Err(format!("READ CAPACITY(16) data of {} bytes", b.len()));
    }
    Ok((be64(b, 0), be32(b, 8)))
}

/// Human-readable hex of sense or data bytes.
pub use crate::xcopy::sense::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdbs() {
        assert_eq!(
            zbc_out(Action::Open, 0x0102_0304_0506_0708, 0x090a, false),
            [0x94, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x09, 0x0a, 0, 0]
        );
        assert_eq!(
            zbc_out(Action::Reset, 0, 0, true),
            [0x94, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]
        );
        assert_eq!(zbc_out(Action::Close, 0, 0, false)[1], 0x01);
        assert_eq!(zbc_out(Action::Finish, 0, 0, false)[1], 0x02);
        assert_eq!(
            report_zones(0x1000, 0x0001_0040, 0x3f, true),
            [0x95, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 0, 0x40, 0xbf, 0]
        );
        assert_eq!(report_zones(0, 64, 0x11, false)[14], 0x11);
        assert_eq!(
            read_capacity16(32),
            [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]
        );
    }

    fn desc(t: u8, c: u8, flags: u8, len: u64, start: u64, wp: u64) -> Vec<u8> {
        let mut d = vec![0u8; 64];
        d[0] = t;
        d[1] = (c << 4) | flags;
        d[8..16].copy_from_slice(&len.to_be_bytes());
        d[16..24].copy_from_slice(&start.to_be_bytes());
        d[24..32].copy_from_slice(&wp.to_be_bytes());
        d
    }

    #[test]
    fn report_data() {
        let mut b = vec![0u8; 64];
        b[0..4].copy_from_slice(&(3u32 * 64).to_be_bytes());
        b[4] = 0x03;
        b[8..16].copy_from_slice(&0x3ffu64.to_be_bytes());
        b.extend(desc(1, 0, 0, 0x100, 0, u64::MAX));
        b.extend(desc(2, 2, 0x02, 0x100, 0x100, 0x108));
        // Only two of the three listed descriptors were transferred.
        let (h, z) = parse_report(&b).unwrap();
        assert_eq!(
            h,
            ReportHeader {
                list_len: 192,
                same: 3,
                max_lba: 0x3ff
            }
        );
        assert_eq!(z.len(), 2);
        assert_eq!(z[1].ztype, ZoneType::SeqRequired);
        assert_eq!(z[1].cond, Cond::ImpOpen);
        assert_eq!((z[1].start, z[1].len, z[1].wp), (0x100, 0x100, 0x108));
        assert!(z[1].non_seq && !z[1].reset);
        assert!(check_same(h.same, &z).is_ok());
        assert!(check_same(1, &z).is_err());
        // A truncated header still gives the list length.
        let (h, z) = parse_report(&b[..16]).unwrap();
        assert_eq!((h.list_len, z.len()), (192, 0));
        assert!(parse_report(&b[..15]).is_err());
        // Gap zones and bad codes.
        assert_eq!(
            decode_zone(&desc(5, 0, 0, 4, 12, 0)).unwrap().ztype,
            ZoneType::Gap
        );
        assert!(decode_zone(&desc(7, 0, 0, 4, 12, 0)).is_err());
        assert!(decode_zone(&desc(2, 5, 0, 4, 12, 0)).is_err());
    }

    #[test]
    fn vpd_b6() {
        let mut p = vec![0u8; 64];
        p[0] = 0x14;
        p[1] = 0xb6;
        p[3] = 0x3c;
        p[4] = 0x01;
        p[16..20].copy_from_slice(&4u32.to_be_bytes());
        p[23] = 0x08;
        p[24..32].copy_from_slice(&512u64.to_be_bytes());
        let v = parse_b6(&p).unwrap();
        assert!(v.urswrz);
        assert_eq!((v.max_open_swr, v.zam, v.granularity), (4, 8, 512));
        p[3] = 0x30;
        assert!(parse_b6(&p).is_err());
        assert!(parse_b6(&p[..20]).is_err());
        assert_eq!(
            parse_capacity16(&[0, 0, 0, 0, 0, 0, 0x3f, 0xff, 0, 0, 0x10, 0]).unwrap(),
            (0x3fff, 4096)
        );
    }
}
