//! The Identify data structures this suite reads, decoded from the 4096
//! bytes the controller returns (all fields little-endian).
//!
//! - Identify Controller, CNS 01h (NVMe Base 2.1, Figure 'Identify
//!   Controller Data Structure'): CNTLID 79:78, VER 83:80, OAES 95:92 (bit
//!   8 Namespace Attribute Notices, bit 27 Zone Descriptor Changed Notices),
//!   AERL 259 (0's based), ELPE 262 (0's based), NN 519:516, ONCS 521:520
//!   (bit 8 Copy), OCFS 535:534 (bit n: descriptor format n), SUBNQN
//!   1023:768.
//! - Identify Namespace, CNS 00h (NVM Command Set 1.1, Figure 'Identify
//!   Namespace Data Structure, NVM Command Set'): NSZE 7:0, NCAP 15:8, NUSE
//!   23:16, NLBAF 25, FLBAS 26 (format index bits 3:0, high bits 6:5),
//!   MSSRL 75:74, MCL 79:76, MSRC 80 (0's based), LBAF0.. from 128, 4 bytes
//!   each (MS 15:0, LBADS 23:16).
//! - ZNS Identify Namespace, CNS 05h CSI 02h (ZNS Command Set 1.1, Figure
//!   'Identify Namespace Data Structure, Zoned Namespace Command Set'): ZOC
//!   1:0, OZCS 3:2, MAR 7:4, MOR 11:8 (0's based, FFFFFFFFh = no limit),
//!   LBAFE0.. from 2816, 16 bytes each (ZSZE 7:0 in logical blocks, ZDES 8).
//! - ZNS Identify Controller, CNS 06h CSI 02h: ZASL byte 0.

/// Identify CNS values.
pub mod cns {
    /// Identify Namespace (NVM).
    pub const NAMESPACE: u8 = 0x00;
    /// Identify Controller.
    pub const CONTROLLER: u8 = 0x01;
    /// I/O Command Set specific Identify Namespace.
    pub const CSI_NAMESPACE: u8 = 0x05;
    /// I/O Command Set specific Identify Controller.
    pub const CSI_CONTROLLER: u8 = 0x06;
}

/// Command Set Identifier of the Zoned Namespace Command Set.
pub const CSI_ZNS: u8 = 0x02;

/// Size of every Identify data structure.
pub const IDENTIFY_LEN: usize = 4096;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

fn check_len(b: &[u8]) -> Result<(), String> {
    if b.len() < IDENTIFY_LEN {
        return Err(format!(
            "identify data is {} bytes, not {IDENTIFY_LEN}",
            b.len()
        ));
    }
    Ok(())
}

/// The Identify Controller fields the suite uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCtrl {
    pub serial: String,
    pub model: String,
    pub cntlid: u16,
    /// Version: major 31:16, minor 15:8, tertiary 7:0.
    pub ver: u32,
    /// Optional Asynchronous Events Supported.
    pub oaes: u32,
    /// Asynchronous Event Request Limit, 0's based.
    pub aerl: u8,
    /// Error Log Page Entries, 0's based.
    pub elpe: u8,
    /// Maximum Data Transfer Size (2^n pages; 0 = no limit).
    pub mdts: u8,
    /// Number of Namespaces.
    pub nn: u32,
    /// Optional NVM Command Support.
    pub oncs: u16,
    /// Optional Copy Formats Supported.
    pub ocfs: u16,
    pub subnqn: String,
}

impl IdCtrl {
    /// ONCS bit 8: the Copy command is supported.
    pub fn copy_supported(&self) -> bool {
        self.oncs & (1 << 8) != 0
    }

    /// OCFS bit `f`: Copy descriptor format `f` is supported.
    pub fn format_supported(&self, f: u8) -> bool {
        f < 16 && self.ocfs & (1 << f) != 0
    }

    /// Decode from the 4096-byte structure.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        check_len(b)?;
        Ok(Self {
            serial: ascii(&b[4..24]),
            model: ascii(&b[24..64]),
            mdts: b[77],
            cntlid: u16_at(b, 78),
            ver: u32_at(b, 80),
            oaes: u32_at(b, 92),
            aerl: b[259],
            elpe: b[262],
            nn: u32_at(b, 516),
            oncs: u16_at(b, 520),
            ocfs: u16_at(b, 534),
            subnqn: ascii(&b[768..1024]),
        })
    }
}

/// The Identify Namespace (NVM) fields the suite uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdNs {
    pub nsze: u64,
    pub ncap: u64,
    pub nuse: u64,
    /// Number of LBA formats, 0's based.
    pub nlbaf: u8,
    /// The LBA format in use (FLBAS bits 3:0 plus bits 6:5 as 5:4).
    pub lbaf_index: u8,
    /// Metadata bytes per block of the format in use.
    pub ms: u16,
    /// log2 of the logical block size of the format in use.
    pub lbads: u8,
    /// Maximum Single Source Range Length (logical blocks).
    pub mssrl: u16,
    /// Maximum Copy Length (logical blocks).
    pub mcl: u32,
    /// Maximum Source Range Count, 0's based.
    pub msrc: u8,
}

impl IdNs {
    /// Logical block size in bytes (0 if LBADS is out of range).
    pub fn block_size(&self) -> u64 {
        if (9..=30).contains(&self.lbads) {
            1 << self.lbads
        } else {
            0
        }
    }

    /// Decode from the 4096-byte structure.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        check_len(b)?;
        let flbas = b[26];
        let lbaf_index = (flbas & 0x0F) | ((flbas >> 1) & 0x30);
        let at = 128 + 4 * usize::from(lbaf_index);
        Ok(Self {
            nsze: u64_at(b, 0),
            ncap: u64_at(b, 8),
            nuse: u64_at(b, 16),
            nlbaf: b[25],
            lbaf_index,
            ms: u16_at(b, at),
            lbads: b[at + 2],
            mssrl: u16_at(b, 74),
            mcl: u32_at(b, 76),
            msrc: b[80],
        })
    }
}

/// The ZNS Identify Namespace fields the suite uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdNsZns {
    /// Zone Operation Characteristics.
    pub zoc: u16,
    /// Optional Zoned Command Support.
    pub ozcs: u16,
    /// Maximum Active Resources, 0's based; `u32::MAX` = no limit.
    pub mar: u32,
    /// Maximum Open Resources, 0's based; `u32::MAX` = no limit.
    pub mor: u32,
    /// Zone Size of the LBA format in use, in logical blocks.
    pub zsze: u64,
    /// Zone Descriptor Extension Size of the format in use (64-byte units).
    pub zdes: u8,
}

impl IdNsZns {
    /// Decode from the 4096-byte structure; `lbaf_index` is the format in
    /// use (from Identify Namespace).
    pub fn parse(b: &[u8], lbaf_index: u8) -> Result<Self, String> {
        check_len(b)?;
        let at = 2816 + 16 * usize::from(lbaf_index);
        if at + 16 > b.len() {
            return Err(format!("LBA format {lbaf_index} has no extension"));
        }
        Ok(Self {
            zoc: u16_at(b, 0),
            ozcs: u16_at(b, 2),
            mar: u32_at(b, 4),
            mor: u32_at(b, 8),
            zsze: u64_at(b, at),
            zdes: b[at + 8],
        })
    }

    /// What Linux makes of a 0's based resource limit (its
    /// `max_open_zones`/`max_active_zones`): limit + 1, 0 for none.
    pub fn linux_limit(v: u32) -> u64 {
        if v == u32::MAX {
            0
        } else {
            u64::from(v) + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_fields_at_their_offsets() {
        let mut b = vec![0u8; IDENTIFY_LEN];
        b[4..10].copy_from_slice(b"SN0001");
        b[24..32].copy_from_slice(b"zonecopy");
        b[77] = 5;
        b[78..80].copy_from_slice(&[0x02, 0x00]); // CNTLID 2
        b[80..84].copy_from_slice(&[0x00, 0x01, 0x02, 0x00]); // 2.1.0
        b[92..96].copy_from_slice(&[0x00, 0x01, 0x00, 0x08]); // OAES bits 8, 27
        b[259] = 3; // AERL
        b[262] = 63; // ELPE
        b[516..520].copy_from_slice(&[2, 0, 0, 0]);
        b[520..522].copy_from_slice(&[0x00, 0x01]); // ONCS bit 8
        b[534..536].copy_from_slice(&[0x05, 0x00]); // formats 0 and 2
        b[768..781].copy_from_slice(b"nqn.2014-08.x");
        let c = IdCtrl::parse(&b).unwrap();
        assert_eq!(c.serial, "SN0001");
        assert_eq!(c.model, "zonecopy");
        assert_eq!((c.mdts, c.cntlid, c.ver, c.nn), (5, 2, 0x0002_0100, 2));
        assert_eq!((c.oaes, c.aerl, c.elpe), (0x0800_0100, 3, 63));
        assert!(c.copy_supported());
        assert!(c.format_supported(0) && !c.format_supported(1) && c.format_supported(2));
        assert!(!c.format_supported(16));
        assert_eq!(c.subnqn, "nqn.2014-08.x");
        assert!(IdCtrl::parse(&b[..100]).is_err());
    }

    #[test]
    fn namespace_fields_at_their_offsets() {
        let mut b = vec![0u8; IDENTIFY_LEN];
        b[0..8].copy_from_slice(&16384u64.to_le_bytes());
        b[8..16].copy_from_slice(&16384u64.to_le_bytes());
        b[25] = 1; // two formats
        b[26] = 0x01; // format 1
        b[74..76].copy_from_slice(&[0x00, 0x01]); // MSSRL 256
        b[76..80].copy_from_slice(&[0x00, 0x04, 0x00, 0x00]); // MCL 1024
        b[80] = 15; // MSRC: 16 ranges
        b[128..132].copy_from_slice(&[0, 0, 9, 0]); // LBAF0: 512
        b[132..136].copy_from_slice(&[8, 0, 12, 0]); // LBAF1: 4096 + 8
        let n = IdNs::parse(&b).unwrap();
        assert_eq!((n.nsze, n.lbaf_index, n.lbads, n.ms), (16384, 1, 12, 8));
        assert_eq!(n.block_size(), 4096);
        assert_eq!((n.mssrl, n.mcl, n.msrc), (256, 1024, 15));
        // FLBAS bits 6:5 are format index bits 5:4.
        b[26] = 0x21;
        assert_eq!(IdNs::parse(&b).unwrap().lbaf_index, 0x11);
    }

    #[test]
    fn zns_fields_at_their_offsets() {
        let mut b = vec![0u8; IDENTIFY_LEN];
        b[4..8].copy_from_slice(&13u32.to_le_bytes());
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        b[2816 + 16..2816 + 24].copy_from_slice(&256u64.to_le_bytes());
        b[2816 + 24] = 2;
        let z = IdNsZns::parse(&b, 1).unwrap();
        assert_eq!((z.mar, z.mor, z.zsze, z.zdes), (13, u32::MAX, 256, 2));
        assert_eq!(IdNsZns::linux_limit(z.mar), 14);
        assert_eq!(IdNsZns::linux_limit(z.mor), 0);
        assert!(IdNsZns::parse(&b[..100], 0).is_err());
    }
}
