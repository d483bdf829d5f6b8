//! The command sequences, sent to both sides: Identify and the Commands
//! Supported and Effects log, Report Zones with every filter, every Zone
//! Send action on zones in every state, I/O at and off the write pointer,
//! the open/active limits. Copy is in `copyseq`.

use super::{
    exec::{le, Pair, Target},
    ops::{self, zsa},
};
use crate::{diffcore::Fields, ktap::Verdict};

type Step = Result<(), Verdict>;

/// Zone state names for labels, by how [`setup_states`] leaves zones 0..5.
pub const STATES: [&str; 5] = ["empty", "iopen", "eopen", "closed", "full"];

impl Pair {
    /// First LBA of zone `z`.
    pub fn zslba(&self, z: u64) -> u64 {
        z * self.zone
    }
}

/// Reset every zone, then leave zone 0 empty, 1 implicitly open, 2
/// explicitly open, 3 closed, 4 full (and 6 implicitly open with 5
/// blocks, when `more`).
pub fn setup_states(p: &mut Pair, label: &str, more: bool) -> Step {
    p.reset_all(label)?;
    p.write(&format!("{label}/write-z1"), Target::Zns, p.zslba(1), 1, 1)?;
    p.zms(&format!("{label}/open-z2"), p.zslba(2), zsa::OPEN, false)?;
    p.write(&format!("{label}/write-z3"), Target::Zns, p.zslba(3), 2, 3)?;
    p.zms(&format!("{label}/close-z3"), p.zslba(3), zsa::CLOSE, false)?;
    p.zms(
        &format!("{label}/finish-z4"),
        p.zslba(4),
        zsa::FINISH,
        false,
    )?;
    if more {
        p.write(&format!("{label}/write-z6"), Target::Zns, p.zslba(6), 5, 6)?;
    }
    Ok(())
}

/// Identify (CNS 00h both namespaces, 01h, 05h/02h, 06h/02h) and the
/// Commands Supported and Effects log (05h) of both command sets.
pub fn identify(p: &mut Pair) -> Step {
    p.identify("identify/ctrl", Target::Admin, 0x01, 0, ops::id_ctrl)?;
    p.identify("identify/ns-zns", Target::Zns, 0x00, 0, ops::id_ns)?;
    p.identify("identify/ns-nvm", Target::Nvm, 0x00, 0, ops::id_ns)?;
    p.identify("identify/zns-ns", Target::Zns, 0x05, 2, ops::id_ns_zns)?;
    p.identify(
        "identify/zns-ctrl",
        Target::Admin,
        0x06,
        2,
        ops::id_ctrl_zns,
    )?;
    for csi in [0u8, 2] {
        let label = format!("effects/csi{csi}");
        let (o, q) = p.log_page(&label, 0x05, 4096, csi)?;
        if !(o.status.is_success() && q.status.is_success()) {
            continue;
        }
        let (mut ao, mut aq) = (Fields::default(), Fields::default());
        let (mut only_o, mut only_q) = (Vec::new(), Vec::new());
        // Admin entries 0..256 from byte 0, I/O entries from byte 1024
        // (NVMe Base 2.1, Figure 'Commands Supported and Effects Log
        // Page'); CSUPP is bit 0.
        for (kind, base) in [("acs", 0usize), ("iocs", 1024)] {
            for op in 0..256usize {
                let (eo, eq) = (le(&o.data, base + 4 * op, 4), le(&q.data, base + 4 * op, 4));
                match (eo & 1, eq & 1) {
                    (1, 1) => {
                        let n = format!("cse.{kind}.{op:02x}");
                        ao.num(n.clone(), eo);
                        aq.num(n, eq);
                    }
                    (1, 0) => only_o.push(format!("{kind} {op:02x}")),
                    (0, 1) => only_q.push(format!("{kind} {op:02x}")),
                    _ => {}
                }
            }
        }
        p.diags.push(format!(
            "{label}: supported by ours only {only_o:?}, by the peer only {only_q:?}"
        ));
        p.judge(&format!("{label}/entries"), &ao, &aq);
    }
    Ok(())
}

/// Report Zones with every filter, with and without Partial Report, from
/// several SLBAs, into several buffer sizes; Extended Report Zones; an
/// undefined action and filter.
pub fn report_zones(p: &mut Pair) -> Step {
    setup_states(p, "report/setup", true)?;
    p.zones("report/setup")?;
    let all = u32::try_from(64 + 64 * p.nzones).unwrap_or(u32::MAX);
    let slbas = [
        ("0", 0),
        ("mid", p.zslba(2) + 100),
        ("last", p.zslba(p.nzones - 1)),
        ("end", p.zslba(p.nzones)),
    ];
    for zrasf in 0..=7u8 {
        for partial in [false, true] {
            for (sname, slba) in slbas {
                for len in [all, 64 + 64 * 3, 64] {
                    let label = format!(
                        "report/zrasf{zrasf}/partial{}/{sname}/len{len}",
                        partial as u8
                    );
                    p.report(&label, slba, len, zrasf, partial)?;
                }
            }
        }
    }
    // Extended Report Zones (ZRA 01h) and an undefined action / filter.
    for (name, dw13) in [("ext", 0x01u32), ("zra-0f", 0x0F), ("zrasf-08", 0x0800)] {
        let build = move |s: &super::exec::Side| {
            (
                crate::nvme::zns::zone_mgmt_recv_cmd(s.zns_nsid, 0, all, 0, false).dw(13, dw13),
                Vec::new(),
            )
        };
        p.send(
            format!("report/{name}"),
            Target::Zns,
            &build,
            all as usize,
            super::exec::Dw0::Undefined,
            ops::ext_report_data,
        )?;
    }
    Ok(())
}

const ACTIONS: [(&str, u8); 6] = [
    ("close", zsa::CLOSE),
    ("finish", zsa::FINISH),
    ("open", zsa::OPEN),
    ("reset", zsa::RESET),
    ("offline", zsa::OFFLINE),
    ("set-zde", zsa::SET_ZDE),
];

/// Every Zone Send action on a zone in each state, with Select All, on an
/// SLBA that is not a zone start and one past the end; the zones after
/// each.
pub fn zone_send(p: &mut Pair) -> Step {
    for (aname, action) in ACTIONS {
        let base = format!("zms/{aname}");
        setup_states(p, &format!("{base}/setup"), false)?;
        for (z, state) in STATES.iter().enumerate() {
            p.zms(&format!("{base}/{state}"), p.zslba(z as u64), action, false)?;
        }
        p.zones(&base)?;
        p.zms(
            &format!("{base}/not-zone-start"),
            p.zslba(5) + 1,
            action,
            false,
        )?;
        p.zms(
            &format!("{base}/past-end"),
            p.zslba(p.nzones),
            action,
            false,
        )?;
        setup_states(p, &format!("{base}/all-setup"), false)?;
        p.zms(&format!("{base}/select-all"), 0, action, true)?;
        p.zones(&format!("{base}/select-all"))?;
    }
    Ok(())
}

/// Fill zone `z` from its start to `upto` blocks in writes of at most
/// 256 blocks (MDTS 1 MiB).
/// Blocks per write of [`fill`]: 64 blocks (256 KiB at 4 KiB) is at most
/// 64 segments, within nvme-pci's max_segments (128) even when no two of
/// the buffer's pages are physically adjacent. A passthrough buffer that
/// needs more segments than the queue allows is refused with EINVAL before
/// it reaches the device (bio_map_user_iov): 1 MiB writes (the peer's
/// MDTS) failed so on one 6.12 boot ("opcode 0x01 did not complete:
/// Invalid argument") and not on others.
const FILL_BLOCKS: u64 = 64;

/// Write `byte` into zone `z` of the ZNS namespace from its start up to
/// block `upto`, in writes of [`FILL_BLOCKS`], labelled `{label}/fill{at}`.
pub(super) fn fill(p: &mut Pair, label: &str, z: u64, upto: u64, byte: u8) -> Step {
    let mut at = 0;
    while at < upto {
        let n = (upto - at).min(FILL_BLOCKS);
        p.write(
            &format!("{label}/fill{at}"),
            Target::Zns,
            p.zslba(z) + at,
            n,
            byte,
        )?;
        at += n;
    }
    Ok(())
}

/// Writes at and off the write pointer, up to and over the zone capacity,
/// Zone Append, reads (written, unwritten, across zones, past the end),
/// Write Zeroes, and the same on the plain namespace.
pub fn io(p: &mut Pair) -> Step {
    p.reset_all("io")?;
    let (z0, z1, cap) = (p.zslba(0), p.zslba(1), p.cap);
    let end = p.zslba(p.nzones);
    p.write("io/write-at-wp", Target::Zns, z0, 4, 0x10)?;
    p.write("io/write-off-wp", Target::Zns, z0 + 10, 1, 0x11)?;
    p.write("io/write-empty-not-start", Target::Zns, z1 + 1, 1, 0x12)?;
    p.read("io/read-written", Target::Zns, z0, 4)?;
    p.read("io/read-unwritten", Target::Zns, z0 + 4, 4)?;
    p.read("io/read-past-cap", Target::Zns, z0 + cap, 4)?;
    p.read("io/read-across-cap", Target::Zns, z0 + cap - 2, 4)?;
    p.read("io/read-across-zones", Target::Zns, z1 - 2, 4)?;
    p.read("io/read-past-end", Target::Zns, end - 1, 2)?;
    p.write("io/write-past-end", Target::Zns, end, 1, 0x13)?;
    let z2 = p.zslba(2);
    fill(p, "io/z2", 2, cap - 4, 9)?;
    p.write("io/write-over-cap", Target::Zns, z2 + cap - 4, 8, 0x14)?;
    p.write("io/write-to-cap", Target::Zns, z2 + cap - 4, 4, 0x15)?;
    p.write("io/write-full-zone", Target::Zns, z2 + cap, 1, 0x16)?;
    p.zones("io/z2")?;
    let z3 = p.zslba(3);
    p.append("io/append-1", z3, 2, 0x20)?;
    p.append("io/append-2", z3, 3, 0x21)?;
    p.append("io/append-not-zone-start", z3 + 1, 1, 0x22)?;
    p.append("io/append-full-zone", z2, 1, 0x23)?;
    p.append("io/append-past-end", end, 1, 0x24)?;
    p.read("io/read-appended", Target::Zns, z3, 5)?;
    p.write_zeroes("io/write-zeroes-at-wp", Target::Zns, z3 + 5, 2)?;
    p.write_zeroes("io/write-zeroes-off-wp", Target::Zns, z3 + 9, 2)?;
    p.read("io/read-zeroed", Target::Zns, z3, 8)?;
    p.zones("io/end")?;
    let n = p.nvm_lbas;
    p.write("io/nvm-write", Target::Nvm, 0, 8, 0x30)?;
    p.write("io/nvm-write-past-end", Target::Nvm, n - 1, 2, 0x31)?;
    p.write_zeroes("io/nvm-write-zeroes", Target::Nvm, 2, 2)?;
    p.write_zeroes("io/nvm-write-zeroes-past-end", Target::Nvm, n, 1)?;
    p.read("io/nvm-read", Target::Nvm, 0, 8)?;
    p.read("io/nvm-read-past-end", Target::Nvm, n - 1, 2)?;
    Ok(())
}

/// Max Open and Max Active Resources: implicit and explicit opens past
/// the open limit, closed zones counting as active, the active limit.
pub fn limits(p: &mut Pair) -> Step {
    p.reset_all("limits/implicit")?;
    for z in 0..5u64 {
        p.write(
            &format!("limits/implicit/write-z{z}"),
            Target::Zns,
            p.zslba(z),
            1,
            z as u8,
        )?;
    }
    p.zones("limits/implicit")?;
    p.reset_all("limits/explicit")?;
    for z in 0..5u64 {
        p.zms(
            &format!("limits/explicit/open-z{z}"),
            p.zslba(z),
            zsa::OPEN,
            false,
        )?;
    }
    p.zones("limits/explicit")?;
    for z in 0..2u64 {
        p.zms(
            &format!("limits/active/close-z{z}"),
            p.zslba(z),
            zsa::CLOSE,
            false,
        )?;
    }
    p.write("limits/active/write-z4", Target::Zns, p.zslba(4), 1, 4)?;
    p.zms("limits/active/open-z5", p.zslba(5), zsa::OPEN, false)?;
    p.zms("limits/active/close-z5", p.zslba(5), zsa::CLOSE, false)?;
    p.zms("limits/active/open-z6", p.zslba(6), zsa::OPEN, false)?;
    p.write("limits/active/write-z7", Target::Zns, p.zslba(7), 1, 7)?;
    p.zms("limits/active/finish-z7", p.zslba(7), zsa::FINISH, false)?;
    p.zones("limits/active")?;
    p.zms("limits/active/finish-z0", p.zslba(0), zsa::FINISH, false)?;
    p.zms("limits/active/open-z6-again", p.zslba(6), zsa::OPEN, false)?;
    p.zones("limits/end")?;
    p.reset_all("limits/end")?;
    Ok(())
}
