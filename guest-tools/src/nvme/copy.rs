//! Copy (19h) through `NVME_IOCTL_IO64_CMD`, per the NVM Command Set 1.1,
//! 3.2.2: CDW10-11 SDLBA, CDW12 NR bits 7:0 (0's based) and Descriptor
//! Format bits 11:8; the data is NR+1 Source Range Entries:
//!
//! | format | size | SNSID | SLBA  | NLB (0's based) |
//! |--------|------|-------|-------|-----------------|
//! | 0h     | 32   | -     | 15:8  | 17:16           |
//! | 1h     | 40   | -     | 15:8  | 17:16           |
//! | 2h     | 32   | 3:0   | 15:8  | 17:16           |
//! | 3h     | 40   | 3:0   | 15:8  | 17:16           |
//!
//! (Figures 'Copy - Source Range Entries Descriptor Format 0h..3h'; the
//! protection information fields stay zero.) Formats 2h/3h name another
//! namespace as the source and must be enabled by the host in the Host
//! Behavior Support feature (16h), bytes 5:4 CDFE, bit n for format n
//! (NVMe Base 2.1, 5.27.1.18).
//!
//! Every copy is verified twice: the destination read back through the
//! kernel must hold exactly the source's stamped blocks, and the backend's
//! CRC32C of the stored destination range (control `checksum`) must match
//! them. Offload is proven by the backend's counters: the destination's
//! `copied_bytes` grows by the copied size while `read_bytes` and
//! `written_bytes` of both namespaces stay put, and the fabric carries only
//! the descriptors.

mod basic;
mod check;
mod faults;
mod refusals;
use self::{basic::*, faults::*};
pub use self::{check::*, refusals::*};

use std::fs::File;

use super::{
    ensure, fail,
    passthru::{self, io_op, sc, Command, Data, Done},
    test,
    zns::{self, expect_zone, seq_zone},
    Ctx, Step, Test,
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    blockio,
    cmdline::NsKind,
    control,
    ktap::Verdict,
    stamp::{self, BLOCK_SIZE},
};

const BS: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;

/// Host Behavior Support feature identifier.
pub const FID_HOST_BEHAVIOR: u8 = 0x16;
/// Size of the Host Behavior Support data structure.
pub const HBS_LEN: usize = 512;

/// One source range, in logical blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Source namespace (formats 2h/3h only).
    pub snsid: u32,
    pub slba: u64,
    /// Number of logical blocks, 1-based (encoded 0's based).
    pub nlb: u32,
}

/// Descriptor size of a format: 32 bytes for 0h/2h, 40 for 1h/3h.
pub fn descriptor_len(format: u8) -> usize {
    if format.is_multiple_of(2) {
        32
    } else {
        40
    }
}

/// Encode the Source Range Entries. An NLB of 0 or above 65536 cannot be
/// encoded: it is an error.
pub fn encode(format: u8, ranges: &[Range]) -> Result<Vec<u8>, String> {
    if format > 3 {
        return Err(format!("descriptor format {format} is not defined"));
    }
    let len = descriptor_len(format);
    let mut out = vec![0u8; len * ranges.len()];
    for (d, r) in out.chunks_exact_mut(len).zip(ranges) {
        let nlb = r
            .nlb
            .checked_sub(1)
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| format!("NLB {} not in 1..=65536", r.nlb))?;
        if format >= 2 {
            d[0..4].copy_from_slice(&r.snsid.to_le_bytes());
        }
        d[8..16].copy_from_slice(&r.slba.to_le_bytes());
        d[16..18].copy_from_slice(&nlb.to_le_bytes());
    }
    Ok(out)
}

/// The Copy command for `nr` ranges of `format` to `sdlba` of `nsid`.
pub fn copy_cmd(nsid: u32, sdlba: u64, nr: usize, format: u8) -> Result<Command, String> {
    let nr0 = nr
        .checked_sub(1)
        .filter(|&v| v <= 255)
        .ok_or_else(|| format!("{nr} ranges not in 1..=256"))?;
    Ok(Command::new(io_op::COPY, nsid)
        .qw(10, sdlba)
        .dw(12, nr0 as u32 | (u32::from(format & 0xF) << 8)))
}

/// What the copy tests share.
#[derive(Debug, Default)]
pub struct State {
    /// The Host Behavior Support data as found (restored at the end).
    pub hbs_orig: Option<Vec<u8>>,
    /// Stamped source blocks written in the NVM namespace, from block 0.
    pub nvm_src: Option<u64>,
    /// Stamped source blocks at the start of ZNS sequential zone 4.
    pub zns_src: Option<u64>,
    /// Blocks copied into ZNS sequential zone 5 so far.
    pub zns_dst: Option<u64>,
    /// What those blocks should hold: (block number, generation).
    pub zns_dst_exp: Vec<(u64, u64)>,
}

/// The copy tests, in order.
pub fn tests() -> Vec<Test> {
    vec![
        test("supported", t_supported),
        test("sources", t_sources),
        test("single_range", t_single),
        test("many_ranges", t_many),
        test("max_ranges", t_max_ranges),
        test("into_zone", t_into_zone),
        test("not_at_write_pointer", t_not_at_wp),
        test("zone_capacity", t_zone_capacity),
        test("limit_mssrl", t_limit_mssrl),
        test("limit_msrc", t_limit_msrc),
        test("limit_mcl", t_limit_mcl),
        test("format1", t_format1),
        test("cross_ns_refused", t_cross_refused),
        test("cross_ns", t_cross_ns),
        test("partial_failure", t_partial),
        test("offload", t_offload),
        test("fault_read_media_error", t_fault_read),
        test("fault_copy_fail", t_fault_copy_fail),
        test("fault_copy_media_error", t_fault_copy_media),
    ]
}

// Layout of the NVM namespace, in 4 KiB blocks.
const NVM_SRC_BLOCKS: u64 = 256;
const DST_SINGLE: u64 = 1024;
const DST_MANY: u64 = 1280;
const DST_MAX: u64 = 1536;
const DST_LIMITS: u64 = 2048;
const DST_FORMAT1: u64 = 2304;
const DST_CROSS: u64 = 2560;
const DST_PARTIAL: u64 = 2816;
const DST_OFFLOAD: u64 = 3072;
const DST_FAULT: u64 = DST_OFFLOAD + NVM_SRC_BLOCKS;
const DST_FAULT_MEDIA: u64 = DST_FAULT + 64;
/// The NVM namespace must hold the layout above.
const NVM_MIN_BLOCKS: u64 = DST_FAULT_MEDIA + 64;
/// Stamped blocks written at the start of the ZNS source zone.
const ZNS_SRC_BLOCKS: u64 = 32;

/// A copy expressed in 4 KiB blocks: (source NSID, first block, count).
type BlockRange = (u32, u64, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format0_descriptor_bytes() {
        // NVM CS 1.1 Figure 'Source Range Entries Descriptor Format 0h':
        // 7:0 reserved, 15:8 SLBA, 17:16 NLB (0's based), 31:18 PI fields.
        let d = encode(
            0,
            &[Range {
                snsid: 9, // ignored in format 0h
                slba: 0x0102_0304_0506_0708,
                nlb: 0x100,
            }],
        )
        .unwrap();
        let mut want = [0u8; 32];
        want[8..16].copy_from_slice(&[0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]);
        want[16..18].copy_from_slice(&[0xFF, 0x00]);
        assert_eq!(d, want);
    }

    #[test]
    fn format1_descriptor_bytes() {
        let d = encode(
            1,
            &[
                Range {
                    snsid: 0,
                    slba: 5,
                    nlb: 1,
                },
                Range {
                    snsid: 0,
                    slba: 6,
                    nlb: 65536,
                },
            ],
        )
        .unwrap();
        assert_eq!(d.len(), 80);
        assert_eq!(&d[8..18], &[5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&d[48..58], &[6, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]);
        assert!(d[18..40].iter().all(|&b| b == 0));
    }

    #[test]
    fn format2_and_3_carry_the_source_namespace() {
        // Format 2h/3h: SNSID in bytes 3:0.
        let r = [Range {
            snsid: 0x0A0B_0C0D,
            slba: 0x10,
            nlb: 2,
        }];
        let d = encode(2, &r).unwrap();
        let mut want = [0u8; 32];
        want[0..4].copy_from_slice(&[0x0D, 0x0C, 0x0B, 0x0A]);
        want[8] = 0x10;
        want[16] = 0x01;
        assert_eq!(d, want);
        let d = encode(3, &r).unwrap();
        assert_eq!(d.len(), 40);
        assert_eq!(&d[..32], &want);
        assert!(encode(4, &r).is_err());
        assert!(encode(
            0,
            &[Range {
                snsid: 0,
                slba: 0,
                nlb: 0
            }]
        )
        .is_err());
        assert!(encode(
            0,
            &[Range {
                snsid: 0,
                slba: 0,
                nlb: 65537
            }]
        )
        .is_err());
    }

    #[test]
    fn copy_command_dwords() {
        // SDLBA in CDW10-11; CDW12: NR 0's based in 7:0, format in 11:8.
        let c = copy_cmd(2, 0x1_0000_0010, 8, 3).unwrap();
        assert_eq!((c.opcode, c.nsid), (0x19, 2));
        assert_eq!(c.cdw, [0x10, 1, 0x0307, 0, 0, 0]);
        assert_eq!(copy_cmd(1, 0, 256, 0).unwrap().cdw[2], 0xFF);
        assert!(copy_cmd(1, 0, 0, 0).is_err());
        assert!(copy_cmd(1, 0, 257, 0).is_err());
    }

    #[test]
    fn fabric_section() {
        let r = r#"{"devices":{"ns1":{"read_bytes":1}},"fabric":{"admin":{"commands":3},"copy":{"commands":1,"data_h2c":32,"data_c2h":0,"header_h2c":72,"header_c2h":24},"read":{"data_c2h":4096},"connection_h2c":128,"data_bytes":4128,"total_bytes":4376},"ok":true}"#;
        assert_eq!(
            parse_fabric(r),
            Some(Fabric {
                data: 4128,
                total: 4376,
                copy_cmds: 1,
                copy_h2c: 32,
                copy_c2h: 0
            })
        );
        assert_eq!(parse_fabric(r#"{"devices":{}}"#), None);
    }
}
