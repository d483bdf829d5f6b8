//! Responses flattened into named fields for [`super::compare`]: status,
//! every byte of fixed-format sense (SPC-5 4.4.3, table 48) under a name,
//! and the data of the commands the suite compares, decoded with the
//! parsers of the `zbc` and `xcopy` suites.

use super::compare::{Fields, OUTCOME};
use crate::{
    sgio::{self, Data},
    xcopy::sense::SenseData,
    zbc::{model::Zone, scsi},
};

/// What one device answered to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// SCSI status.
    pub status: u8,
    /// Host (transport) status.
    pub host_status: u16,
    /// Sense bytes as returned.
    pub sense: Vec<u8>,
    /// Data-in bytes actually transferred (allocation length - residual).
    pub data: Vec<u8>,
}

/// Direction and size of a command's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dir {
    /// No data.
    None,
    /// Data out.
    Out(Vec<u8>),
    /// Data in, this allocation length.
    In(usize),
}

/// SG_IO timeout.
const TIMEOUT_MS: u32 = 30_000;

/// Send `cdb` to `fd`.
pub fn send(fd: &std::fs::File, cdb: &[u8], dir: &Dir) -> Result<Response, String> {
    let mut buf = match dir {
        Dir::In(n) => vec![0u8; *n],
        _ => Vec::new(),
    };
    let data = match dir {
        Dir::None => Data::None,
        Dir::Out(b) => Data::ToDevice(b),
        Dir::In(_) => Data::FromDevice(&mut buf),
    };
    let c = sgio::command(fd, cdb, data, TIMEOUT_MS).map_err(|e| format!("SG_IO: {e}"))?;
    if matches!(dir, Dir::In(_)) {
        let got = buf
            .len()
            .saturating_sub(usize::try_from(c.resid.max(0)).unwrap_or(0));
        buf.truncate(got);
    }
    Ok(Response {
        status: c.status,
        host_status: c.host_status,
        sense: c.sense_bytes,
        data: buf,
    })
}

fn push(f: &mut Fields, name: impl Into<String>, v: impl Into<String>) {
    f.text(name, v);
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))
}

/// Status, host status and the sense data, byte for byte, named. Fixed
/// format (SPC-5 table 48): VALID and INFORMATION (0, 3..7), FILEMARK/
/// EOM/ILI/SDAT_OVFL (2 bits 7..4), SENSE KEY, ADDITIONAL SENSE LENGTH
/// (7), COMMAND-SPECIFIC INFORMATION (8..12), ASC/ASCQ, FRU (14), SKSV
/// and SENSE KEY SPECIFIC (15..18), additional bytes. Descriptor format
/// is decoded into the same names where it has them.
pub fn status_fields(r: &Response) -> Fields {
    let mut f = Fields::new();
    // First, and compared alone when it differs (everything after follows
    // from it): GOOD, or the status with sense key/ASC/ASCQ.
    let outcome = match SenseData::decode(&r.sense) {
        _ if r.status == 0 => "GOOD".to_string(),
        Some(d) => format!(
            "status {:02X}h sense {:X}h/{:02X}h/{:02X}h",
            r.status, d.key, d.asc, d.ascq
        ),
        None => format!("status {:02X}h", r.status),
    };
    push(&mut f, OUTCOME, outcome);
    push(&mut f, "status", format!("{:02X}h", r.status));
    push(&mut f, "host_status", format!("{:#x}", r.host_status));
    if r.status == 0 && r.sense.is_empty() {
        return f;
    }
    let s = &r.sense;
    let Some(d) = SenseData::decode(s) else {
        push(&mut f, "sense", sgio_hex(s));
        return f;
    };
    push(
        &mut f,
        "sense.response_code",
        format!("{:02X}h", d.response_code),
    );
    push(&mut f, "sense.key", format!("{:X}h", d.key));
    push(&mut f, "sense.asc", format!("{:02X}h", d.asc));
    push(&mut f, "sense.ascq", format!("{:02X}h", d.ascq));
    push(
        &mut f,
        "sense.information",
        d.info.map_or("not valid".into(), |v| format!("{v:#x}")),
    );
    push(
        &mut f,
        "sense.command_specific",
        d.csi.map_or("absent".into(), |v| format!("{v:#x}")),
    );
    let sks = match d.sks {
        Some(k) if k.valid() => sgio_hex(&k.0),
        Some(_) => "SKSV 0".into(),
        None => "absent".into(),
    };
    push(&mut f, "sense.sense_key_specific", sks);
    if matches!(d.response_code, 0x70 | 0x71) {
        push(&mut f, "sense.flags", format!("{:#04x}", s[2] & 0xf0));
        push(&mut f, "sense.additional_length", s[7].to_string());
        push(&mut f, "sense.fru", format!("{:02X}h", s[14]));
        if s.len() > 18 {
            push(&mut f, "sense.additional_bytes", sgio_hex(&s[18..]));
        }
    }
    f
}

/// Hex of bytes, space separated.
pub fn sgio_hex(b: &[u8]) -> String {
    scsi::hex(b)
}

/// A short digest of data (FNV-1a 64) with its length: compares bulk data
/// without printing it.
pub fn digest(b: &[u8]) -> String {
    let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{} bytes fnv {h:016x}", b.len())
}

/// Status fields, plus the data when the command was GOOD: its length
/// and a digest of every 4 KiB, so a difference names the blocks.
pub fn data_fields(r: &Response, prefix: &str) -> Fields {
    let mut f = status_fields(r);
    if r.status == 0 {
        push(&mut f, format!("{prefix}.length"), r.data.len().to_string());
        for (i, c) in r.data.chunks(4096).enumerate() {
            push(&mut f, format!("{prefix}.data[{}]", i * 4096), digest(c));
        }
    }
    f
}

fn zone_fields(f: &mut Fields, p: &str, z: &Zone, raw: &[u8]) {
    push(f, format!("{p}.type"), format!("{:X}h", z.ztype.code()));
    push(f, format!("{p}.cond"), format!("{:X}h", z.cond.code()));
    push(f, format!("{p}.non_seq"), u8::from(z.non_seq).to_string());
    push(f, format!("{p}.reset"), u8::from(z.reset).to_string());
    push(f, format!("{p}.len"), format!("{:#x}", z.len));
    push(f, format!("{p}.start"), format!("{:#x}", z.start));
    push(f, format!("{p}.wp"), format!("{:#x}", z.wp));
    // Bits 7..4 of byte 0 and 3..2 of byte 1, bytes 2..8 and 32..64:
    // reserved (ZBC-2 6.4.3.3, table 35; ZBC-2 defines none for these
    // zone types).
    let mut rsv = vec![raw[0] & 0xf0, raw[1] & 0x0c];
    rsv.extend_from_slice(&raw[2..8]);
    rsv.extend_from_slice(&raw[32..64]);
    let v = if rsv.iter().all(|&b| b == 0) {
        "zero".to_string()
    } else {
        sgio_hex(&rsv)
    };
    push(f, format!("{p}.reserved"), v);
}

/// REPORT ZONES (ZBC-2 6.4.3, tables 34-35): the header (ZONE LIST
/// LENGTH, SAME, MAXIMUM LBA, ZONE STARTING LBA GRANULARITY, reserved
/// bytes), every whole descriptor
/// transferred, and the bytes of a descriptor the allocation length cut.
pub fn report_fields(r: &Response) -> Fields {
    let mut f = status_fields(r);
    if r.status != 0 {
        return f;
    }
    let b = &r.data;
    push(&mut f, "rz.transferred", b.len().to_string());
    if b.len() < 16 {
        push(&mut f, "rz.partial_header", sgio_hex(b));
        return f;
    }
    push(&mut f, "rz.list_len", be(&b[0..4]).to_string());
    push(&mut f, "rz.same", format!("{:X}h", b[4] & 0x0f));
    push(&mut f, "rz.max_lba", format!("{:#x}", be(&b[8..16])));
    if let Some(g) = b.get(16..24) {
        push(
            &mut f,
            "rz.zone_starting_lba_granularity",
            format!("{:#x}", be(g)),
        );
    }
    let mut rsv = vec![b[4] & 0xf0];
    rsv.extend_from_slice(&b[5..8]);
    rsv.extend_from_slice(b.get(24..64).unwrap_or(&[]));
    push(
        &mut f,
        "rz.header_reserved",
        if rsv.iter().all(|&x| x == 0) {
            "zero".into()
        } else {
            sgio_hex(&rsv)
        },
    );
    let descs = b.get(64..).unwrap_or(&[]);
    for (i, d) in descs.chunks(scsi::DESC).enumerate() {
        let p = format!("rz.zone[{i}]");
        if d.len() < scsi::DESC {
            push(&mut f, format!("{p}.cut"), sgio_hex(d));
            continue;
        }
        match scsi::decode_zone(d) {
            Ok(z) => zone_fields(&mut f, &p, &z, d),
            Err(e) => push(
                &mut f,
                format!("{p}.undecodable"),
                format!("{e}: {}", sgio_hex(d)),
            ),
        }
    }
    f
}

/// READ CAPACITY(16) (SBC-4 5.20.2, table 61 / ZBC-2 6.2): every field by
/// name, including RC BASIS, which ZBC-2 sets for zoned devices.
pub fn capacity_fields(r: &Response) -> Fields {
    let mut f = status_fields(r);
    if r.status != 0 {
        return f;
    }
    let b = &r.data;
    if b.len() < 32 {
        push(&mut f, "rc16.short", sgio_hex(b));
        return f;
    }
    push(&mut f, "rc16.returned_lba", format!("{:#x}", be(&b[0..8])));
    push(&mut f, "rc16.block_length", be(&b[8..12]).to_string());
    push(&mut f, "rc16.reserved_12_7_6", format!("{}", b[12] >> 6));
    push(&mut f, "rc16.rc_basis", format!("{}", (b[12] >> 4) & 3));
    push(&mut f, "rc16.p_type", format!("{}", (b[12] >> 1) & 7));
    push(&mut f, "rc16.prot_en", format!("{}", b[12] & 1));
    push(&mut f, "rc16.p_i_exponent", format!("{}", b[13] >> 4));
    push(&mut f, "rc16.lbppbe", format!("{}", b[13] & 0x0f));
    push(&mut f, "rc16.lbpme", format!("{}", b[14] >> 7));
    push(&mut f, "rc16.lbprz", format!("{}", (b[14] >> 6) & 1));
    push(
        &mut f,
        "rc16.lowest_aligned_lba",
        format!("{}", be(&[b[14] & 0x3f, b[15]])),
    );
    push(&mut f, "rc16.reserved_16_32", sgio_hex(&b[16..32]));
    f
}

/// A VPD page: the header, then each byte under `vpd<page>.byte[N]`
/// except where `names` gives a multi-byte field a name.
pub fn vpd_fields(r: &Response, names: &[(usize, usize, &str)]) -> Fields {
    let mut f = status_fields(r);
    if r.status != 0 {
        return f;
    }
    let b = &r.data;
    if b.len() < 4 {
        push(&mut f, "vpd.short", sgio_hex(b));
        return f;
    }
    let page = format!("vpd{:02x}", b[1]);
    push(&mut f, format!("{page}.pdt"), format!("{:02X}h", b[0]));
    push(
        &mut f,
        format!("{page}.page_length"),
        be(&b[2..4]).to_string(),
    );
    let mut i = 4;
    while i < b.len() {
        if let Some(&(s, e, n)) = names.iter().find(|(s, _, _)| *s == i) {
            let e = e.min(b.len());
            push(&mut f, format!("{page}.{n}"), sgio_hex(&b[s..e]));
            i = e;
        } else {
            push(
                &mut f,
                format!("{page}.byte[{i}]"),
                format!("{:02X}h", b[i]),
            );
            i += 1;
        }
    }
    f
}

/// Field names of the Block Device Characteristics VPD page (SBC-4
/// 6.6.2, table 263); bytes 7 and 8 are split by [`b1_fields`].
pub const B1_NAMES: &[(usize, usize, &str)] = &[(4, 6, "medium_rotation_rate")];

/// The Block Device Characteristics VPD page (SBC-4 6.6.2, table 263):
/// byte 7 WABEREQ (7..6), WACEREQ (5..4), NOMINAL FORM FACTOR (3..0);
/// byte 8 ZONED (5..4), FUAB (1), VBULS (0), the other bits.
pub fn b1_fields(r: &Response) -> Fields {
    let mut f = vpd_fields(r, B1_NAMES);
    let (Some(&b7), Some(&b8)) = (r.data.get(7), r.data.get(8)) else {
        return f;
    };
    f.0.retain(|(n, _)| n != "vpdb1.byte[7]" && n != "vpdb1.byte[8]");
    push(&mut f, "vpdb1.wabereq", (b7 >> 6).to_string());
    push(&mut f, "vpdb1.wacereq", ((b7 >> 4) & 3).to_string());
    push(&mut f, "vpdb1.nominal_form_factor", (b7 & 0x0f).to_string());
    push(&mut f, "vpdb1.zoned", ((b8 >> 4) & 3).to_string());
    push(&mut f, "vpdb1.fuab", ((b8 >> 1) & 1).to_string());
    push(&mut f, "vpdb1.vbuls", (b8 & 1).to_string());
    push(
        &mut f,
        "vpdb1.byte8_other_bits",
        format!("{:#04x}", b8 & 0xcc),
    );
    f
}
/// The Zoned Block Device Characteristics VPD page (ZBC-2 6.5.2, table
/// 41): byte 4 ZONED BLOCK DEVICE EXTENSION (7..4) and URSWRZ (0), byte
/// 23 ZONE ALIGNMENT METHOD (3..0) split out of the bytes.
pub fn b6_fields(r: &Response) -> Fields {
    let mut f = vpd_fields(r, B6_NAMES);
    let (Some(&b4), Some(&b23)) = (r.data.get(4), r.data.get(23)) else {
        return f;
    };
    f.0.retain(|(n, _)| n != "vpdb6.byte[4]" && n != "vpdb6.byte[23]");
    push(
        &mut f,
        "vpdb6.zoned_block_device_extension",
        (b4 >> 4).to_string(),
    );
    push(&mut f, "vpdb6.urswrz", (b4 & 1).to_string());
    push(
        &mut f,
        "vpdb6.byte4_other_bits",
        format!("{:#04x}", b4 & 0x0e),
    );
    push(
        &mut f,
        "vpdb6.zone_alignment_method",
        format!("{:X}h", b23 & 0x0f),
    );
    push(
        &mut f,
        "vpdb6.byte23_other_bits",
        format!("{:#04x}", b23 & 0xf0),
    );
    f
}

/// Field names of the Zoned Block Device Characteristics VPD page (ZBC-2
/// 6.5.2, table 41).
pub const B6_NAMES: &[(usize, usize, &str)] = &[
    (8, 12, "optimal_open_swp"),
    (12, 16, "optimal_nonseq_swp"),
    (16, 20, "max_open_swr"),
    (24, 32, "zone_starting_lba_granularity"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffcore::Val;

    fn resp(status: u8, sense: &[u8], data: &[u8]) -> Response {
        Response {
            status,
            host_status: 0,
            sense: sense.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn sense_by_name() {
        let mut s = [0u8; 18];
        s[0] = 0xf0;
        s[2] = 0x05;
        s[3..7].copy_from_slice(&0x1234u32.to_be_bytes());
        s[7] = 10;
        s[12] = 0x21;
        s[13] = 0x04;
        s[15] = 0xc0;
        s[17] = 2;
        let f = status_fields(&resp(2, &s, &[]));
        let get = |n: &str| f.get(n).unwrap().to_string();
        assert_eq!(get("status"), "02h");
        assert_eq!(get("sense.key"), "5h");
        assert_eq!(get("sense.asc"), "21h");
        assert_eq!(get("sense.information"), "0x1234");
        assert_eq!(get("sense.sense_key_specific"), "c0 00 02");
        assert_eq!(get("sense.additional_length"), "10");
        assert_eq!(status_fields(&resp(0, &[], &[])).0.len(), 3);
        assert_eq!(get("outcome"), "status 02h sense 5h/21h/04h");
    }

    /// `f` holds field `name` with the rendered value `v`.
    fn has(f: &Fields, name: &str, v: &str) -> bool {
        f.0.contains(&(name.into(), Val::Text(v.into())))
    }

    #[test]
    fn report_and_capacity() {
        let mut b = vec![0u8; 64];
        b[3] = 64;
        b[4] = 1;
        b[15] = 0xff;
        let mut d = vec![0u8; 64];
        d[0] = 2;
        d[1] = 0x10;
        d[15] = 8;
        b.extend(&d);
        b.extend(&[1, 2, 3]);
        let f = report_fields(&resp(0, &[], &b));
        let names: Vec<&str> = f.0.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"rz.zone[0].cond"));
        assert!(names.contains(&"rz.zone[1].cut"));
        assert!(has(&f, "rz.zone[0].len", "0x8"));
        assert!(has(&f, "rz.zone[0].reserved", "zero"));
        let mut c = vec![0u8; 32];
        c[7] = 0xff;
        c[10] = 0x10;
        c[12] = 0x10;
        let f = capacity_fields(&resp(0, &[], &c));
        assert!(has(&f, "rc16.rc_basis", "1"));
        assert!(has(&f, "rc16.block_length", "4096"));
        let v = vpd_fields(
            &resp(0, &[], &[0x14, 0xb6, 0, 0x3c, 1, 0, 0, 0, 0, 0, 0, 4]),
            B6_NAMES,
        );
        assert!(has(&v, "vpdb6.optimal_open_swp", "00 00 00 04"));
        assert!(has(&v, "vpdb6.byte[4]", "01h"));
    }
}
