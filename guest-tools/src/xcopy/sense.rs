//! Sense data, fully decoded (SPC-4 4.5): fixed (70h/71h) and descriptor
//! (72h/73h) formats, with the INFORMATION, COMMAND-SPECIFIC INFORMATION
//! and SENSE KEY SPECIFIC fields the copy commands report.

use std::fmt;

/// Sense keys used here.
pub mod key {
    /// ILLEGAL REQUEST.
    pub const ILLEGAL_REQUEST: u8 = 0x05;
    /// UNIT ATTENTION.
    pub const UNIT_ATTENTION: u8 = 0x06;
    /// COPY ABORTED.
    pub const COPY_ABORTED: u8 = 0x0a;
}

/// The SENSE KEY SPECIFIC field (3 bytes, SKSV in bit 7 of the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sks(pub [u8; 3]);

impl Sks {
    /// SKSV: the field is valid.
    pub fn valid(&self) -> bool {
        self.0[0] & 0x80 != 0
    }

    /// Field pointer (ILLEGAL REQUEST, SPC-4 4.5.2.4.2): C/D bit (true: the
    /// CDB, false: the parameter list), bit pointer if BPV, byte offset.
    pub fn field_pointer(&self) -> (bool, Option<u8>, u16) {
        let b = self.0[0];
        (
            b & 0x40 != 0,
            (b & 0x08 != 0).then_some(b & 7),
            u16::from_be_bytes([self.0[1], self.0[2]]),
        )
    }

    /// Segment pointer (COPY ABORTED, SPC-4 4.5.2.4.6): SD bit (true: the
    /// pointer is relative to the start of the segment descriptor, false:
    /// to the start of the parameter list), bit pointer if BPV, byte
    /// offset.
    pub fn segment_pointer(&self) -> (bool, Option<u8>, u16) {
        let b = self.0[0];
        (
            b & 0x20 != 0,
            (b & 0x08 != 0).then_some(b & 7),
            u16::from_be_bytes([self.0[1], self.0[2]]),
        )
    }
}

/// Decoded sense data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenseData {
    /// RESPONSE CODE (70h, 71h, 72h, 73h).
    pub response_code: u8,
    /// SENSE KEY.
    pub key: u8,
    /// ADDITIONAL SENSE CODE.
    pub asc: u8,
    /// ADDITIONAL SENSE CODE QUALIFIER.
    pub ascq: u8,
    /// INFORMATION, if valid.
    pub info: Option<u64>,
    /// COMMAND-SPECIFIC INFORMATION (fixed: always present; descriptor:
    /// if the 01h descriptor is there).
    pub csi: Option<u64>,
    /// SENSE KEY SPECIFIC, if present (valid or not).
    pub sks: Option<Sks>,
}

impl SenseData {
    /// Decode `b`; `None` for an unknown response code or short buffer.
    pub fn decode(b: &[u8]) -> Option<Self> {
        match b.first()? & 0x7f {
            c @ (0x70 | 0x71) => {
                if b.len() < 14 {
                    return None;
                }
                let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                Some(Self {
                    response_code: c,
                    key: b[2] & 0x0f,
                    asc: b[12],
                    ascq: b[13],
                    info: (b[0] & 0x80 != 0).then(|| u64::from(u32_at(3))),
                    csi: Some(u64::from(u32_at(8))),
                    sks: (b.len() >= 18).then(|| Sks([b[15], b[16], b[17]])),
                })
            }
            c @ (0x72 | 0x73) => {
                if b.len() < 8 {
                    return None;
                }
                let mut s = Self {
                    response_code: c,
                    key: b[1] & 0x0f,
                    asc: b[2],
                    ascq: b[3],
                    info: None,
                    csi: None,
                    sks: None,
                };
                let end = (8 + usize::from(b[7])).min(b.len());
                let mut i = 8;
                while i + 2 <= end {
                    let (t, l) = (b[i], usize::from(b[i + 1]));
                    let d = &b[i..(i + 2 + l).min(end)];
                    let u64_at = |d: &[u8]| {
                        d.get(4..12)
                            .map(|x| u64::from_be_bytes(x.try_into().unwrap_or([0; 8])))
                    };
                    match t {
                        0x00 if d.len() >= 12 && d[2] & 0x80 != 0 => s.info = u64_at(d),
                        0x01 if d.len() >= 12 => s.csi = u64_at(d),
                        0x02 if d.len() >= 7 => s.sks = Some(Sks([d[4], d[5], d[6]])),
                        _ => {}
                    }
                    i += 2 + l;
                }
                Some(s)
            }
            _ => None,
        }
    }
}

impl fmt::Display for SenseData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {:02X}h asc/ascq {:02X}h/{:02X}h",
            self.key, self.asc, self.ascq
        )?;
        if let Some(i) = self.info {
            write!(f, " info {i:#x}")?;
        }
        if let Some(c) = self.csi {
            write!(f, " csi {c:#x}")?;
        }
        if let Some(s) = self.sks {
            write!(f, " sks {:02x} {:02x} {:02x}", s.0[0], s.0[1], s.0[2])?;
        }
        Ok(())
    }
}

/// Hex of a byte slice, space-separated (for diagnostics).
pub fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_with_field_pointer() {
        // ILLEGAL REQUEST, UNSUPPORTED TARGET DESCRIPTOR TYPE CODE (26h/07h),
        // SKSV 1, C/D 0 (parameter list), field pointer 0x0030.
        let b = [
            0x70, 0, 0x05, 0, 0, 0, 0, 10, // response code, key, info, add. length
            0, 0, 0, 0, // COMMAND-SPECIFIC INFORMATION
            0x26, 0x07, 0, // ASC, ASCQ, FRU
            0x80, 0x00, 0x30, // SKSV, C/D 0, FIELD POINTER
        ];
        let s = SenseData::decode(&b).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (5, 0x26, 7));
        assert_eq!(s.info, None);
        assert_eq!(s.csi, Some(0));
        let k = s.sks.unwrap();
        assert!(k.valid());
        assert_eq!(k.field_pointer(), (false, None, 0x30));
        assert_eq!(
            s.to_string(),
            "key 05h asc/ascq 26h/07h csi 0x0 sks 80 00 30"
        );
    }

    #[test]
    fn fixed_copy_aborted_segment_pointer() {
        // COPY ABORTED, UNALIGNED WRITE COMMAND (21h/04h), VALID info 0x1234,
        // CSI 1 (segment 1), segment pointer SD=0, BPV=1 bit 3, byte 0x4c.
        let b = [
            0xf0, 0, 0x0a, 0, 0, 0x12, 0x34, 10, 0, 0, 0, 1, 0x21, 0x04, 0, 0x8b, 0x00, 0x4c,
        ];
        let s = SenseData::decode(&b).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (0x0a, 0x21, 4));
        assert_eq!(s.info, Some(0x1234));
        assert_eq!(s.csi, Some(1));
        assert_eq!(s.sks.unwrap().segment_pointer(), (false, Some(3), 0x4c));
        let b2 = [
            0x70, 0, 0x0a, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x04, 0, 0xa0, 0, 4,
        ];
        assert_eq!(
            SenseData::decode(&b2)
                .unwrap()
                .sks
                .unwrap()
                .segment_pointer(),
            (true, None, 4)
        );
    }

    #[test]
    fn descriptor_format() {
        let b = [
            0x72, 0x0a, 0x0d, 0x02, 0, 0, 0, 32, // header, additional length 32
            0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x99, // information
            0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // command-specific information
            0x02, 0x06, 0, 0, 0x80, 0, 0x10, 0, // sense key specific
            0xff, 0xff, // trailing junk beyond the additional length
        ];
        let s = SenseData::decode(&b).unwrap();
        assert_eq!(
            (s.response_code, s.key, s.asc, s.ascq),
            (0x72, 0x0a, 0x0d, 2)
        );
        assert_eq!((s.info, s.csi), (Some(0x99), Some(2)));
        assert_eq!(s.sks, Some(Sks([0x80, 0, 0x10])));
        // Truncated descriptors do not panic.
        for n in 0..b.len() {
            let _ = SenseData::decode(&b[..n]);
        }
        assert_eq!(SenseData::decode(&[0x7e; 20]), None);
        assert_eq!(hex(&[1, 0xab]), "01 ab");
    }
}
