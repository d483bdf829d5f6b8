//! SPC-5 commands: TEST UNIT READY, REQUEST SENSE, INQUIRY and its VPD
//! pages, REPORT LUNS, MODE SENSE(6)/(10), REPORT SUPPORTED OPERATION
//! CODES.

use super::{
    cdb::{
        Inquiry, ModeSense, ModeSense10, ModeSense6, ReportLuns, ReportSupportedOpcodes,
        RequestSense, TestUnitReady,
    },
    commands::{self, Command, COMMANDS},
    sbc,
    sense::{Asc, Sense},
    xcopy, Exec, LogicalUnit, LuKind,
};
use crate::storage::ZoneType;

/// TEST UNIT READY (SPC-5): the logical unit is always ready.
pub fn test_unit_ready(x: &mut Exec<'_, '_>, _: TestUnitReady) -> Result<u32, Sense> {
    x.lu()?;
    Ok(0)
}

/// REQUEST SENSE (SPC-5). There are no deferred errors and no pending
/// unit attentions, so the answer is NO SENSE; for a LUN without a logical
/// unit it is ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED, returned as data
/// with GOOD status (SPC-5).
pub fn request_sense(x: &mut Exec<'_, '_>, c: RequestSense) -> Result<u32, Sense> {
    let sense = match x.lu {
        Some(_) => Sense::NO_SENSE,
        None => Sense::illegal(Asc::LOGICAL_UNIT_NOT_SUPPORTED),
    };
    let data = if c.desc {
        sense.descriptor()
    } else {
        sense.fixed().to_vec()
    };
    x.send(&data, usize::from(c.alloc_len))
}

/// Version descriptors claimed in standard INQUIRY data (SPC-5,
/// "no version claimed" codes): SAM-5, SPC-5, SBC-4.
const VERSION_DESCRIPTORS: [u16; 3] = [0x00a0, 0x05c0, 0x0600];

/// Standard INQUIRY data (SPC-5), 96 bytes.
fn standard_inquiry(byte0: u8, vendor: &[u8; 8], product: &[u8; 16], rev: &[u8; 4]) -> Vec<u8> {
    let mut d = vec![0u8; 96];
    d[0] = byte0;
    d[2] = 0x07; // VERSION: SPC-5
    d[3] = 0x12; // HISUP, RESPONSE DATA FORMAT 2
    d[4] = 96 - 5; // ADDITIONAL LENGTH
    if byte0 != 0x7f {
        d[5] = 0x08; // 3PC: third-party copy (EXTENDED COPY) supported
    }
    d[7] = 0x02; // CMDQUE
    put(&mut d[8..], vendor);
    put(&mut d[16..], product);
    put(&mut d[32..], rev);
    for (i, v) in VERSION_DESCRIPTORS.iter().enumerate() {
        put(&mut d[58 + 2 * i..], &v.to_be_bytes());
    }
    d
}

fn put(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// INQUIRY (SPC-5).
pub fn inquiry(x: &mut Exec<'_, '_>, c: Inquiry) -> Result<u32, Sense> {
    let alloc = usize::from(c.alloc_len);
    if !c.evpd && c.page_code != 0 {
        return Err(Sense::invalid_field(2, Some(7)));
    }
    let Some(lu) = x.lu else {
        // No logical unit at this LUN: PERIPHERAL QUALIFIER 011b,
        // PERIPHERAL DEVICE TYPE 1Fh (SPC-5).
        let data = if c.evpd {
            vec![0x7f, c.page_code, 0, 0]
        } else {
            standard_inquiry(0x7f, b"ZONECOPY", &[b' '; 16], &[b' '; 4])
        };
        return x.send(&data, alloc);
    };
    let data = if c.evpd {
        vpd_page(lu, c.page_code).ok_or(Sense::invalid_field(2, Some(7)))?
    } else {
        let id = &lu.identity;
        standard_inquiry(
            lu.kind.peripheral_type(),
            &id.vendor,
            &id.product,
            &id.revision,
        )
    };
    x.send(&data, alloc)
}

/// The VPD pages a logical unit supports, in ascending order.
fn vpd_pages(kind: LuKind) -> &'static [u8] {
    match kind {
        LuKind::HostManaged | LuKind::HostAware => &[0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb6],
        LuKind::Disk => &[0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1],
    }
}

/// A VPD page with its 4-byte header (SPC-5), or `None` if the page
/// is not supported.
fn vpd_page(lu: &LogicalUnit, page: u8) -> Option<Vec<u8>> {
    if !vpd_pages(lu.kind).contains(&page) {
        return None;
    }
    let body = match page {
        0x00 => vpd_pages(lu.kind).to_vec(),
        0x80 => lu.identity.serial.as_bytes().to_vec(),
        0x83 => device_identification(lu),
        0x8f => xcopy::third_party_copy_vpd(lu),
        0xb0 => block_limits(lu),
        0xb1 => block_device_characteristics(lu.kind),
        0xb6 => zoned_characteristics(lu),
        _ => return None,
    };
    let len = u16::try_from(body.len()).ok()?;
    let mut d = vec![lu.kind.peripheral_type(), page];
    d.extend_from_slice(&len.to_be_bytes());
    d.extend_from_slice(&body);
    Some(d)
}

/// Device Identification VPD page (SPC-5) designators: an NAA
/// designator (binary code set, LU association, type 3h) and a T10 vendor
/// ID based designator (ASCII code set, LU association, type 1h: vendor
/// then the serial number).
fn device_identification(lu: &LogicalUnit) -> Vec<u8> {
    let id = &lu.identity;
    let mut d = vec![0x01, 0x03, 0x00, 0x08];
    d.extend_from_slice(&id.naa.to_be_bytes());
    let mut t10 = id.vendor.to_vec();
    t10.extend_from_slice(id.serial.as_bytes());
    d.extend_from_slice(&[0x02, 0x01, 0x00, t10.len().min(255) as u8]);
    d.extend_from_slice(t10.get(..255).unwrap_or(&t10));
    d
}

/// Block Limits VPD page body (SBC-4), page length 3Ch.
fn block_limits(lu: &LogicalUnit) -> Vec<u8> {
    let mut d = vec![0u8; 0x3c];
    // Byte 6-7 of the page: OPTIMAL TRANSFER LENGTH GRANULARITY, 1 block
    // (the physical block is the logical block).
    put(&mut d[2..], &1u16.to_be_bytes());
    // Bytes 8-11: MAXIMUM TRANSFER LENGTH. OPTIMAL TRANSFER LENGTH (12-15)
    // stays 0: not reported.
    let max = sbc::max_transfer_blocks(lu.device.geometry().block_size);
    put(&mut d[4..], &max.to_be_bytes());
    d
}

/// Block Device Characteristics VPD page body (SBC-4), page length
/// 3Ch: MEDIUM ROTATION RATE 0001h (non-rotating). The ZONED field (byte 8
/// bits 5-4) is 01b for a host aware device, 00b otherwise: also for
/// host-managed devices, whose peripheral device type (14h) says zoned
/// (SBC-4, ZBC-2).
fn block_device_characteristics(kind: LuKind) -> Vec<u8> {
    let mut d = vec![0u8; 0x3c];
    put(&mut d, &1u16.to_be_bytes());
    if kind == LuKind::HostAware {
        d[4] = 0x10;
    }
    d
}

/// Zoned Block Device Characteristics VPD page body (ZBC-2), page
/// length 3Ch. Byte offsets in the comments are of the whole page.
///
/// ZBC-2 has no field for a maximum number of active zones: a LUN's
/// `max-active` limit is enforced but cannot be reported (Linux sd sets
/// no active limit for SCSI disks).
fn zoned_characteristics(lu: &LogicalUnit) -> Vec<u8> {
    let mut d = vec![0u8; 0x3c];
    let zones = lu.device.geometry().zones;
    // Byte 4: bits 7-4 ZONED BLOCK DEVICE EXTENSION, 1h for the host aware
    // model, 0h (none) for host-managed; bit 1 AAORB 0 (no realms); bit 0
    // URSWRZ: reads of sequential write required zones are unrestricted
    // (beyond the write pointer they return zeros). Linux refuses
    // host-managed devices without URSWRZ ("constrained reads devices are
    // not supported").
    if lu.kind == LuKind::HostAware {
        d[0] |= 0x10;
    }
    if zones.is_none_or(|z| z.unrestricted_reads) {
        d[0] |= 0x01;
    }
    // Bytes 8-11 OPTIMAL NUMBER OF OPEN SEQUENTIAL WRITE PREFERRED ZONES and
    // 12-15 OPTIMAL NUMBER OF NON-SEQUENTIALLY WRITTEN SEQUENTIAL WRITE
    // PREFERRED ZONES: FFFF_FFFFh, not reported (write preferred zones
    // have no preferred limits here; host-managed devices have none).
    put(&mut d[4..], &u32::MAX.to_be_bytes());
    put(&mut d[8..], &u32::MAX.to_be_bytes());
    // Bytes 16-19 MAXIMUM NUMBER OF OPEN SEQUENTIAL WRITE REQUIRED ZONES:
    // FFFF_FFFFh means no limit (also for a host aware device: it has no
    // such zones, and write preferred zones are never limited).
    let max_open = match zones.map(|z| (z.max_open, z.sequential)) {
        Some((n, ZoneType::SequentialWriteRequired)) if n != 0 => n,
        _ => u32::MAX,
    };
    put(&mut d[12..], &max_open.to_be_bytes());
    if let Some(z) = zones {
        if z.zone_cap.get() < z.zone_len.get() {
            // Byte 23 bits 3-0 ZONE ALIGNMENT METHOD 8h: constant zone
            // starting LBA offsets, with gap zones; bytes 24-31 ZONE
            // STARTING LBA GRANULARITY: the zone size.
            d[19] = 0x08;
            put(&mut d[20..], &z.zone_len.get().to_be_bytes());
        } else {
            // 1h: constant zone lengths.
            d[19] = 0x01;
        }
    }
    d
}

/// REPORT LUNS (SPC-5).
pub fn report_luns(x: &mut Exec<'_, '_>, c: ReportLuns) -> Result<u32, Sense> {
    // SPC-5: an ALLOCATION LENGTH below 4 is an invalid field (SPC-3 said
    // 16; SPC-4 changed it to 4).
    if c.alloc_len < 4 {
        return Err(Sense::invalid_field(6, Some(7)));
    }
    let count = match c.select_report {
        // All logical units (there are no well known logical units).
        0x00 | 0x02 => x.target.lun_count(),
        // Well known LUs only; administrative LU; subsidiary LUs: none.
        0x01 | 0x10..=0x12 => 0,
        _ => return Err(Sense::invalid_field(2, Some(7))),
    };
    let mut d = vec![0u8; 8];
    let list_len = u32::try_from(count.saturating_mul(8)).unwrap_or(u32::MAX);
    put(&mut d, &list_len.to_be_bytes());
    for lun in 0..count {
        let lun = u16::try_from(lun).unwrap_or(u16::MAX);
        // SAM-5: single level LUN; peripheral device addressing for
        // LUNs below 256, flat space addressing (01b) above.
        let [hi, lo] = lun.to_be_bytes();
        let first = if lun < 256 { 0x00 } else { 0x40 | (hi & 0x3f) };
        d.extend_from_slice(&[first, lo, 0, 0, 0, 0, 0, 0]);
    }
    x.send(&d, usize::try_from(c.alloc_len).unwrap_or(usize::MAX))
}

/// MODE SENSE(6) (SPC-5).
pub fn mode_sense6(x: &mut Exec<'_, '_>, c: ModeSense6) -> Result<u32, Sense> {
    mode_sense(x, c.0)
}

/// MODE SENSE(10) (SPC-5).
pub fn mode_sense10(x: &mut Exec<'_, '_>, c: ModeSense10) -> Result<u32, Sense> {
    mode_sense(x, c.0)
}

/// Caching mode page (SBC-4), 14h bytes. Current and default: WCE
/// set (writes are cached until SYNCHRONIZE CACHE or FUA). Changeable:
/// nothing (no MODE SELECT).
fn caching_page(changeable: bool) -> Vec<u8> {
    let mut p = vec![0u8; 0x14];
    p[0] = 0x08;
    p[1] = 0x12;
    if !changeable {
        p[2] = 0x04; // WCE
    }
    p
}

/// Control mode page (SPC-5), 0Ch bytes. Current and default: GLTSD
/// (no log parameters saved), QUEUE ALGORITHM MODIFIER 1h (unrestricted
/// reordering), D_SENSE 0 (fixed format sense), BUSY TIMEOUT PERIOD
/// FFFFh (unlimited).
fn control_page(changeable: bool) -> Vec<u8> {
    let mut p = vec![0u8; 0x0c];
    p[0] = 0x0a;
    p[1] = 0x0a;
    if !changeable {
        p[2] = 0x02;
        p[3] = 0x10;
        p[8] = 0xff;
        p[9] = 0xff;
    }
    p
}

fn mode_sense(x: &mut Exec<'_, '_>, m: ModeSense) -> Result<u32, Sense> {
    let lu = x.lu()?;
    if m.pc == 3 {
        return Err(Sense::illegal(Asc::SAVING_PARAMETERS_NOT_SUPPORTED));
    }
    let changeable = m.pc == 1;
    let pages = match (m.page, m.subpage) {
        (0x08, 0x00) => caching_page(changeable),
        (0x0a, 0x00) => control_page(changeable),
        // All pages (subpage 00h) and all pages and subpages (FFh): there
        // are no subpages.
        (0x3f, 0x00 | 0xff) => {
            let mut p = caching_page(changeable);
            p.extend_from_slice(&control_page(changeable));
            p
        }
        (0x08 | 0x0a | 0x3f, _) => return Err(Sense::invalid_field(3, Some(7))),
        _ => return Err(Sense::invalid_field(2, Some(5))),
    };
    let geo = lu.device.geometry();
    let blocks = geo.capacity.get();
    // Block descriptor (SBC-4): short (8 bytes) or, with LLBAA in
    // MODE SENSE(10), long LBA (16 bytes).
    let long = m.ten && m.llbaa;
    let desc = match (m.dbd, long) {
        (true, _) => Vec::new(),
        (false, false) => {
            let n = u32::try_from(blocks).unwrap_or(u32::MAX);
            let mut d = n.to_be_bytes().to_vec();
            let [_, a, b, c] = geo.block_size.to_be_bytes();
            d.extend_from_slice(&[0, a, b, c]);
            d
        }
        (false, true) => {
            let mut d = blocks.to_be_bytes().to_vec();
            d.extend_from_slice(&[0; 4]);
            d.extend_from_slice(&geo.block_size.to_be_bytes());
            d
        }
    };
    // DEVICE-SPECIFIC PARAMETER (SBC-4): WP 0, DPOFUA 1.
    let dsp = 0x10;
    let mut d = if m.ten {
        let total = 8 + desc.len() + pages.len();
        let [hi, lo] = u16::try_from(total - 2).unwrap_or(u16::MAX).to_be_bytes();
        let [bh, bl] = u16::try_from(desc.len()).unwrap_or(0).to_be_bytes();
        vec![hi, lo, 0, dsp, u8::from(long), 0, bh, bl]
    } else {
        let total = 4 + desc.len() + pages.len();
        vec![
            u8::try_from(total - 1).unwrap_or(u8::MAX),
            0,
            dsp,
            desc.len() as u8,
        ]
    };
    d.extend_from_slice(&desc);
    d.extend_from_slice(&pages);
    x.send(&d, usize::from(m.alloc_len))
}

/// Command timeouts descriptor (SPC-5): no timeouts reported.
const TIMEOUTS: [u8; 12] = [0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// REPORT SUPPORTED OPERATION CODES (SPC-5), from the command table.
pub fn report_supported_opcodes(
    x: &mut Exec<'_, '_>,
    c: ReportSupportedOpcodes,
) -> Result<u32, Sense> {
    let kind = x.lu()?.kind;
    let supported = |cmd: &&Command| cmd.applies.to(kind);
    let alloc = usize::try_from(c.alloc_len).unwrap_or(usize::MAX);
    let has_sa = commands::has_service_actions(c.opcode);
    let options_field = Sense::invalid_field(2, Some(2));
    let one = match c.options {
        0 => {
            // All commands format (SPC-5).
            let mut list = Vec::new();
            for cmd in COMMANDS.iter().filter(supported) {
                let [sh, sl] = u16::from(cmd.service_action.unwrap_or(0)).to_be_bytes();
                let flags = (u8::from(c.rctd) << 1) | u8::from(cmd.service_action.is_some());
                let [lh, ll] = (cmd.cdb_len() as u16).to_be_bytes();
                list.extend_from_slice(&[cmd.opcode, 0, sh, sl, 0, flags, lh, ll]);
                if c.rctd {
                    list.extend_from_slice(&TIMEOUTS);
                }
            }
            let mut d = u32::try_from(list.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes()
                .to_vec();
            d.extend_from_slice(&list);
            return x.send(&d, alloc);
        }
        1 if has_sa => return Err(options_field),
        1 => commands::find(c.opcode, None),
        2 if !has_sa => return Err(options_field),
        2 | 3 if has_sa => commands::find(c.opcode, Some(c.service_action)),
        3 => commands::find(c.opcode, None),
        _ => return Err(options_field),
    };
    // One command format (SPC-5): SUPPORT 011b (supported as the
    // standard says) or 001b (not supported).
    let d = match one.filter(|cmd| cmd.applies.to(kind)) {
        Some(cmd) => {
            let [lh, ll] = (cmd.cdb_len() as u16).to_be_bytes();
            let mut d = vec![0, (u8::from(c.rctd) << 7) | 0x03, lh, ll];
            d.extend_from_slice(&cmd.usage_data());
            if c.rctd {
                d.extend_from_slice(&TIMEOUTS);
            }
            d
        }
        None => vec![0, 0x01, 0, 0],
    };
    x.send(&d, alloc)
}

super::commands::handlers! {
    TestUnitReady => test_unit_ready,
    RequestSense => request_sense,
    Inquiry => inquiry,
    ReportLuns => report_luns,
    ModeSense6 => mode_sense6,
    ModeSense10 => mode_sense10,
    ReportSupportedOpcodes => report_supported_opcodes,
}
