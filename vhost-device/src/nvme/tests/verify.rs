//! Verify (0Ch, NVM CS 1.1 3.2.5; ONCS bit 7): the range is read from the
//! medium by Read's rules, no data moves.

use super::*;
use crate::{
    nvme::{commands::Decode, nvm::Verify},
    stats::fabric::CommandClass,
    storage::{fault::BlockRange, fault::FaultKind, BlockCount},
};

/// A Verify SQE as nvme-tcp sends it, byte by byte: the common command
/// format (NVMe Base 2.1 Figure 91) with CDW10-11 SLBA and CDW12 (NLB
/// 15:0, 0's based; STC 24; PRINFO 29:26; FUA 30; LR 31) of NVM CS 1.1
/// 3.2.5.
fn verify_sqe(nsid: u8, slba: [u8; 8], cdw12: [u8; 4]) -> Sqe {
    let mut b = [0u8; 64];
    b[..4].copy_from_slice(&[0x0C, 0x40, 0x42, 0x00]); // OPC 0Ch, PSDT SGL, CID 42h
    b[4] = nsid; // NSID
    b[39] = 0x5A; // SGL1: transport data block of length 0 (no data)
    b[40..48].copy_from_slice(&slba); // CDW10-11: SLBA
    b[48..52].copy_from_slice(&cdw12); // CDW12
    Sqe(b)
}

/// SLBA 10h, NLB 7 (8 blocks), FUA (CDW12 bit 30) on NSID 2.
fn sixteen_plus_eight() -> Sqe {
    verify_sqe(2, [0x10, 0, 0, 0, 0, 0, 0, 0], [0x07, 0x00, 0x00, 0x40])
}

#[test]
fn verify_decodes_its_dwords() {
    let v = Verify::decode(&sixteen_plus_eight());
    assert_eq!(
        (v.slba, v.nlb, v.fua),
        (Lba::new(0x10), BlockCount::new(8), true)
    );
    // NLB FFFFh: 65536 blocks; SLBA from both dwords; LR, PRINFO, STC set
    // but FUA clear.
    let all = [0xFF, 0xFF, 0x00, 0xBD];
    let v = Verify::decode(&verify_sqe(2, [1, 0, 0, 0, 2, 0, 0, 0], all));
    assert_eq!(
        (v.slba, v.nlb, v.fua),
        (Lba::new((2 << 32) | 1), BlockCount::new(65536), false)
    );
}

#[test]
fn verify_reads_the_range_and_moves_no_data() {
    let r = rig();
    let a = r.io.admit(&sixteen_plus_eight());
    assert_eq!(
        (a.direction, a.class),
        (DataDirection::None, CommandClass::Other)
    );
    let (c, d) = run(&r.io, sixteen_plus_eight(), &[]);
    assert_eq!((c.status, d.len()), (0, 0));
    // 512-byte blocks, the whole namespace (1024 blocks, NLB 3FFh).
    let whole = verify_sqe(3, [0; 8], [0xFF, 0x03, 0x00, 0x00]);
    assert_eq!(status(&r.io, whole, &[]), 0);
}

#[test]
fn verify_past_the_end_is_lba_out_of_range() {
    let r = rig();
    // NSID 2 has 256 blocks: SLBA FCh + 8 blocks ends past it.
    let past = verify_sqe(2, [0xFC, 0, 0, 0, 0, 0, 0, 0], [0x07, 0, 0, 0]);
    assert_eq!(
        status(&r.io, past, &[]),
        0x6080,
        "LBA Out of Range, DNR, More"
    );
    // The Error Information log names Verify and its SLBA.
    let (_, d) = get_log(&r, 0x01, 0, 64, 0, 0);
    assert_eq!((d[31], u64_at(&d, 16)), (0x0C, 0xFC));
    // SLBA FFFFFFFF_FFFFFFFFh: no overflow, the same status.
    let top = verify_sqe(2, [0xFF; 8], [0x00, 0, 0, 0]);
    assert_eq!(status(&r.io, top, &[]), 0x6080);
    // The last block itself is fine.
    let last = verify_sqe(2, [0xFF, 0, 0, 0, 0, 0, 0, 0], [0x00, 0, 0, 0]);
    assert_eq!(status(&r.io, last, &[]), 0);
}

#[test]
fn verify_reports_a_media_error_as_read_does() {
    let r = rig();
    let ns = r.targets.subsystems[0].namespace(2).unwrap();
    ns.device.faults().add(
        FaultKind::MediaError(BlockRange {
            lba: Lba::new(0x14),
            blocks: BlockCount::new(1),
        }),
        None,
    );
    // Unrecovered Read Error: SCT 2h, SC 81h (NVMe Base 2.1 Figure 104).
    assert_eq!(status(&r.io, sixteen_plus_eight(), &[]), 0x6281);
    assert_eq!(status(&r.io, rw(0x02, 2, 0x10, 8, 4096), &[]), 0x6281);
    // A range that misses the bad block verifies.
    let before = verify_sqe(2, [0x10, 0, 0, 0, 0, 0, 0, 0], [0x03, 0, 0, 0]);
    assert_eq!(status(&r.io, before, &[]), 0);
}

#[test]
fn verify_follows_the_read_rules_on_zns() {
    let r = rig();
    // NSID 1: zones of 16 blocks with capacity 12, 128 blocks. Write 4
    // blocks into zone 0 so that both written and unwritten blocks are
    // read.
    let data = vec![0x5Au8; 4 * 4096];
    assert_eq!(status(&r.io, rw(0x01, 1, 0, 4, 4096), &data), 0);
    // Zone 3 (ZSLBA 48) taken OFFLINE: its blocks cannot be read.
    let ns = r.targets.subsystems[0].namespace(1).unwrap();
    ns.device
        .set_zone_condition(Lba::new(48), ZoneCondition::Offline)
        .unwrap();
    let mut refused = Vec::new();
    let ranges = [
        (0u64, 4u32),
        (2, 8),
        (8, 8),
        (14, 4),
        (16, 16),
        (40, 16),
        (120, 16),
    ];
    for (slba, nlb) in ranges {
        let s = slba.to_le_bytes();
        let n = (nlb - 1).to_le_bytes();
        let v = status(&r.io, verify_sqe(1, s, [n[0], n[1], 0, 0]), &[]);
        let read = status(&r.io, rw(0x02, 1, slba, nlb, 4096), &[]);
        assert_eq!(
            v, read,
            "SLBA {slba} + {nlb}: Verify {v:#x}, Read {read:#x}"
        );
        if v != 0 {
            refused.push(v);
        }
    }
    // Reads across zone boundaries and past the write pointer are fine
    // here (as for Read); the offline zone is Zone Is Offline (1h/BBh,
    // ZNS 1.1, Zoned Namespace Command Set
    // specific status values), past the end LBA Out of Range.
    assert_eq!(refused, [0x61BB, 0x6080]);
}

#[test]
fn verify_is_advertised_by_its_row() {
    let r = rig();
    let (st, d) = identify(&r, 0x01, 0, 0);
    assert_eq!(st, 0);
    assert_eq!(u16_at(&d, 520) & (1 << 7), 1 << 7, "ONCS bit 7: Verify");
    for csi in [0, 2] {
        let (_, log) = get_log(&r, 0x05, 0, 4096, 0, csi);
        // CSUPP only: Verify changes no LBA content (LBCC clear).
        assert_eq!(u32_at(&log, 1024 + 0x0C * 4), 0b01, "CSI {csi}");
    }
}
