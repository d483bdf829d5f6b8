//! The commands the sequences send, each to both sides through
//! [`Pair::send`]: Identify, Get Log Page, Features, Read, Write, Write
//! Zeroes, Zone Append, Zone Management Send/Receive (ZNS Command Set 1.1,
//! 3.4), and the answer decoders they need.

use super::exec::{fields, le, no_data, raw_data, Dw0, Pair, Resp, Side, Target};
use crate::{
    diffcore::Fields,
    ktap::Verdict,
    nvme::{
        passthru::{self, io_op, Command},
        zns::{parse_zone_report, zone_mgmt_recv_cmd},
    },
};

/// Zone Send Actions (ZNS 1.1, Figure 'Zone Management Send - Command
/// Dword 13', ZSA).
pub mod zsa {
    pub const CLOSE: u8 = 0x01;
    pub const FINISH: u8 = 0x02;
    pub const OPEN: u8 = 0x03;
    pub const RESET: u8 = 0x04;
    pub const OFFLINE: u8 = 0x05;
    pub const SET_ZDE: u8 = 0x10;
}

/// Write Zeroes opcode (NVM Command Set 1.0, Figure 'Opcodes for NVM
/// Commands').
pub const WRITE_ZEROES: u8 = 0x08;

/// Report Zones data: the header's Number of Zones and every descriptor
/// the buffer holds (ZNS 1.1, Figures 'Report Zones Data Structure' and
/// 'Zone Descriptor Data Structure').
pub fn report_data(b: &[u8], a: &mut Fields) {
    match parse_zone_report(b) {
        Ok((nz, d)) => {
            a.num("rz.nz", nz);
            for (i, z) in d.iter().enumerate() {
                a.num(format!("rz.d{i}.zt"), u64::from(z.zt))
                    .num(format!("rz.d{i}.zs"), u64::from(z.zs))
                    .num(format!("rz.d{i}.za"), u64::from(z.za))
                    .num(format!("rz.d{i}.zcap"), z.zcap)
                    .num(format!("rz.d{i}.zslba"), z.zslba);
                // The write pointer is valid in ZSE, ZSIO, ZSEO and ZSC
                // only (ZNS 1.1, Figure 'Zone Descriptor Data Structure':
                // WP "not valid" for a zone in ZSF, ZSRO or ZSO; Linux
                // ignores it for full zones too). QEMU reports ~0 there,
                // we the zone start plus capacity: neither is compared.
                if (1..=4).contains(&z.zs) {
                    a.num(format!("rz.d{i}.wp"), z.wp);
                }
            }
        }
        Err(e) => {
            a.bytes("rz.undecodable", e.as_bytes());
        }
    }
}

/// Extended Report Zones: header, descriptors and extensions as bytes.
pub fn ext_report_data(b: &[u8], a: &mut Fields) {
    a.num("erz.nz", le(b, 0, 8));
    a.bytes("erz.rest", b.get(64..).unwrap_or_default());
}

/// A block's contents for `tag`: its LBA and the tag, then a fill byte.
pub fn pattern(slba: u64, nlb: u64, bs: u64, tag: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity((nlb * bs) as usize);
    for lba in slba..slba + nlb {
        let mut b = vec![(lba as u8) ^ tag; bs as usize];
        b[..8].copy_from_slice(&lba.to_le_bytes());
        b[8] = tag;
        v.extend_from_slice(&b);
    }
    v
}

fn nlb0(nlb: u64) -> u32 {
    u32::try_from(nlb.saturating_sub(1)).unwrap_or(u32::MAX) & 0xFFFF
}

fn ns(s: &Side, t: Target) -> u32 {
    s.nsid(t)
}

type R = Result<(Resp, Resp), Verdict>;

impl Pair {
    /// Write (01h) `nlb` blocks of pattern `tag` at `slba`.
    pub fn write(&mut self, label: &str, t: Target, slba: u64, nlb: u64, tag: u8) -> R {
        let data = pattern(slba, nlb, self.bs, tag);
        let build = move |s: &Side| {
            (
                Command::new(io_op::WRITE, ns(s, t))
                    .qw(10, slba)
                    .dw(12, nlb0(nlb)),
                data.clone(),
            )
        };
        self.send(label, t, &build, 0, Dw0::Undefined, no_data)
    }

    /// Read (02h): the data is compared.
    pub fn read(&mut self, label: &str, t: Target, slba: u64, nlb: u64) -> R {
        let build = move |s: &Side| {
            (
                Command::new(io_op::READ, ns(s, t))
                    .qw(10, slba)
                    .dw(12, nlb0(nlb)),
                Vec::new(),
            )
        };
        let len = (nlb * self.bs) as usize;
        self.send(label, t, &build, len, Dw0::Undefined, raw_data)
    }

    /// Write Zeroes (08h).
    pub fn write_zeroes(&mut self, label: &str, t: Target, slba: u64, nlb: u64) -> R {
        let build = move |s: &Side| {
            (
                Command::new(WRITE_ZEROES, ns(s, t))
                    .qw(10, slba)
                    .dw(12, nlb0(nlb)),
                Vec::new(),
            )
        };
        self.send(label, t, &build, 0, Dw0::Undefined, no_data)
    }

    /// Zone Append (7Dh) to the zone starting at `zslba`: ALBA compared.
    pub fn append(&mut self, label: &str, zslba: u64, nlb: u64, tag: u8) -> R {
        let data = pattern(zslba, nlb, self.bs, tag);
        let build = move |s: &Side| {
            (
                Command::new(io_op::ZONE_APPEND, s.zns_nsid)
                    .qw(10, zslba)
                    .dw(12, nlb0(nlb)),
                data.clone(),
            )
        };
        self.send(label, Target::Zns, &build, 0, Dw0::Alba, no_data)
    }

    /// Zone Management Send (79h): SLBA CDW10-11, ZSA CDW13 7:0, Select
    /// All bit 8.
    pub fn zms(&mut self, label: &str, slba: u64, action: u8, all: bool) -> R {
        let build = move |s: &Side| {
            (
                Command::new(io_op::ZONE_MGMT_SEND, s.zns_nsid)
                    .qw(10, slba)
                    .dw(13, u32::from(action) | (u32::from(all) << 8)),
                Vec::new(),
            )
        };
        self.send(label, Target::Zns, &build, 0, Dw0::Undefined, no_data)
    }

    /// Zone Management Receive (7Ah), Report Zones into `len` bytes.
    pub fn report(&mut self, label: &str, slba: u64, len: u32, zrasf: u8, partial: bool) -> R {
        let build = move |s: &Side| {
            (
                zone_mgmt_recv_cmd(s.zns_nsid, slba, len, zrasf, partial),
                Vec::new(),
            )
        };
        self.send(
            label,
            Target::Zns,
            &build,
            len as usize,
            Dw0::Undefined,
            report_data,
        )
    }

    /// The resulting zone state: every zone's descriptor compared.
    pub fn zones(&mut self, label: &str) -> R {
        let len = u32::try_from(64 + 64 * self.nzones).unwrap_or(u32::MAX);
        self.report(&format!("{label}/zones"), 0, len, 0, false)
    }

    /// Reset every zone on both (compared like any command).
    pub fn reset_all(&mut self, label: &str) -> R {
        self.zms(&format!("{label}/reset-all"), 0, zsa::RESET, true)
    }

    /// Identify CNS `cns` CSI `csi` of `t`'s NSID, decoded by `decode`.
    pub fn identify(
        &mut self,
        label: &str,
        t: Target,
        cns: u8,
        csi: u8,
        decode: fn(&[u8], &mut Fields),
    ) -> R {
        let build = move |s: &Side| {
            let nsid = match t {
                Target::Admin => 0,
                _ => s.nsid(t),
            };
            (passthru::identify(nsid, cns, csi), Vec::new())
        };
        self.send(label, Target::Admin, &build, 4096, Dw0::Undefined, decode)
    }

    /// Get Log Page `lid` of `len` bytes for command set `csi` (CDW14
    /// bits 31:24), raw data returned for the caller to compare.
    pub fn log_page(&mut self, label: &str, lid: u8, len: u32, csi: u8) -> R {
        let build = move |_: &Side| {
            (
                passthru::get_log_page(0, lid, len, 0).dw(14, u32::from(csi) << 24),
                Vec::new(),
            )
        };
        self.send(
            label,
            Target::Admin,
            &build,
            len as usize,
            Dw0::Undefined,
            no_data,
        )
    }
}

/// Identify Controller fields both claim (NVMe Base 2.1, Figure 'Identify
/// Controller Data Structure'), identity fields included to be masked.
pub fn id_ctrl(b: &[u8], a: &mut Fields) {
    fields(
        b,
        a,
        "idctrl",
        &[
            ("vid", 0, 2),
            ("ssvid", 2, 2),
            ("sn", 4, 20),
            ("mn", 24, 40),
            ("fr", 64, 8),
            ("mdts", 77, 1),
            ("ocfs", 534, 2),
            ("subnqn", 768, 256),
        ],
    );
    let oncs = le(b, 520, 2);
    a.num("idctrl.oncs.write_zeroes", (oncs >> 3) & 1)
        .num("idctrl.oncs.copy", (oncs >> 8) & 1);
}

/// Identify Namespace (NVM Command Set 1.0, Figure 'Identify Namespace
/// Data Structure, NVM Command Set'): geometry and capability fields, and
/// the LBA format in use.
pub fn id_ns(b: &[u8], a: &mut Fields) {
    fields(
        b,
        a,
        "idns",
        &[
            ("nsze", 0, 8),
            ("ncap", 8, 8),
            ("nuse", 16, 8),
            ("nlbaf", 25, 1),
            ("mc", 27, 1),
            ("dpc", 28, 1),
            ("dps", 29, 1),
            ("nmic", 30, 1),
            ("rescap", 31, 1),
            ("fpi", 32, 1),
            ("dlfeat", 33, 1),
            ("nawun", 34, 2),
            ("nawupf", 36, 2),
            ("nacwu", 38, 2),
            ("nabsn", 40, 2),
            ("nabo", 42, 2),
            ("nabspf", 44, 2),
            ("noiob", 46, 2),
            ("nvmcap", 48, 16),
            ("npwg", 64, 2),
            ("npwa", 66, 2),
            ("npdg", 68, 2),
            ("npda", 70, 2),
            ("nows", 72, 2),
            ("mssrl", 74, 2),
            ("mcl", 76, 4),
            ("msrc", 80, 1),
            ("nsattr", 99, 1),
            ("nguid", 104, 16),
            ("eui64", 120, 8),
        ],
    );
    // NSFEAT bit by bit: THINP 0, NSABP 1, DAE 2, UIDREUSE 3, OPTPERF 4,
    // and what later revisions added above.
    let nsfeat = le(b, 24, 1);
    for (bit, name) in [
        (0, "thinp"),
        (1, "nsabp"),
        (2, "dae"),
        (3, "uidreuse"),
        (4, "optperf"),
    ] {
        a.num(format!("idns.nsfeat.{name}"), (nsfeat >> bit) & 1);
    }
    a.num("idns.nsfeat.above4", nsfeat >> 5);
    let flbas = b.get(26).copied().unwrap_or(0);
    let idx = usize::from((flbas & 0x0F) | ((flbas >> 1) & 0x30));
    a.num("idns.flbas.index", idx as u64)
        .num("idns.flbas.extended", u64::from((flbas >> 4) & 1));
    let at = 128 + 4 * idx;
    a.num("idns.lbaf.ms", le(b, at, 2))
        .num("idns.lbaf.lbads", le(b, at + 2, 1))
        .num("idns.lbaf.rp", le(b, at + 3, 1) & 0x3);
}

/// ZNS Identify Namespace (ZNS 1.1, Figure 'Identify Namespace Data
/// Structure, Zoned Namespace Command Set'): ZOC, OZCS, MAR, MOR, RRL,
/// FRL, and the LBA Format Extension of format 0..=15 that has a zone
/// size (the one in use is the first non-zero here: the format index is
/// masked).
pub fn id_ns_zns(b: &[u8], a: &mut Fields) {
    fields(
        b,
        a,
        "idzns",
        &[
            ("zoc", 0, 2),
            ("ozcs", 2, 2),
            ("mar", 4, 4),
            ("mor", 8, 4),
            ("rrl", 12, 4),
            ("frl", 16, 4),
        ],
    );
    let lbafe = (0..64)
        .map(|i| 2816 + 16 * i)
        .find(|&at| le(b, at, 8) != 0)
        .unwrap_or(2816);
    a.num("idzns.lbafe.zsze", le(b, lbafe, 8))
        .num("idzns.lbafe.zdes", le(b, lbafe + 8, 1));
}

/// ZNS Identify Controller: ZASL (byte 0).
pub fn id_ctrl_zns(b: &[u8], a: &mut Fields) {
    a.num("idzctrl.zasl", le(b, 0, 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_stamps_lba_and_tag() {
        let p = pattern(7, 2, 512, 0xA5);
        assert_eq!(p.len(), 1024);
        assert_eq!(le(&p, 0, 8), 7);
        assert_eq!((p[8], p[9]), (0xA5, 7 ^ 0xA5));
        assert_eq!(le(&p, 512, 8), 8);
    }

    #[test]
    fn report_decoder_names_every_descriptor_field() {
        let mut b = vec![0u8; 128];
        b[0] = 1;
        b[64] = 2;
        b[65] = 0x10;
        b[72] = 0x30;
        let mut a = Fields::default();
        report_data(&b, &mut a);
        let names: Vec<&str> = a.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "rz.nz",
                "rz.d0.zt",
                "rz.d0.zs",
                "rz.d0.za",
                "rz.d0.zcap",
                "rz.d0.zslba",
                "rz.d0.wp"
            ]
        );
        assert_eq!(a.0[2].1, crate::diffcore::Val::Num(1));
        assert_eq!(a.0[4].1, crate::diffcore::Val::Num(0x30));
    }

    #[test]
    fn id_ns_reads_the_format_in_use() {
        let mut b = vec![0u8; 4096];
        b[26] = 0x01; // format 1
        b[128 + 4 + 2] = 12; // LBADS 12
        let mut a = Fields::default();
        id_ns(&b, &mut a);
        let get = |n: &str| a.0.iter().find(|(x, _)| x == n).unwrap().1.clone();
        assert_eq!(get("idns.flbas.index"), crate::diffcore::Val::Num(1));
        assert_eq!(get("idns.lbaf.lbads"), crate::diffcore::Val::Num(12));
    }
}
