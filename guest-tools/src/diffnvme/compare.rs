//! The differential tables of the NVMe suite, judged by the shared
//! framework ([`crate::diffcore`]). A field that differs is
//! - masked, when its name is in [`MASKED`] (identity strings, device
//!   parameters that legitimately differ between two devices);
//! - a peer deviation, when (command, field, ours, peer) is a row of
//!   [`DEVIATIONS`], the one table of the peer's documented departures from
//!   the spec, each with the clause that shows who is right;
//! - otherwise a mismatch, which fails the test.

use super::PEER;
use crate::diffcore::{Deviation, Fixed, Mask, Tables, Verdict, Want};

/// The peer and the tables that judge its answers.
pub const TABLES: Tables = Tables {
    peer: PEER,
    masks: MASKED,
    deviations: DEVIATIONS,
};

/// Fields that legitimately differ between two devices, by name, with why.
/// A `*` in a name matches any run of characters.
pub const MASKED: &[Mask] = &[
    ("idctrl.vid", "PCI vendor ID: identity"),
    ("idctrl.ssvid", "PCI subsystem vendor ID: identity"),
    ("idctrl.sn", "serial number: identity"),
    ("idctrl.mn", "model number: identity"),
    ("idctrl.fr", "firmware revision: identity"),
    ("idctrl.subnqn", "subsystem NQN: identity"),
    (
        "idctrl.mdts",
        "maximum data transfer size: device parameter",
    ),
    ("idns.nguid", "namespace GUID: identity"),
    ("idns.eui64", "IEEE extended unique identifier: identity"),
    (
        "idns.nlbaf",
        "how many LBA formats a device offers (the one in use is compared)",
    ),
    (
        "idns.flbas.index",
        "index of the format in use in the device's own list",
    ),
    // Optional capabilities only the peer offers (NVM Command Set 1.0,
    // Identify Namespace): neither value is wrong.
    (
        "idns.mc",
        "metadata capabilities: QEMU offers metadata formats, we none",
    ),
    (
        "idns.dpc",
        "end-to-end protection: QEMU offers PI types 1-3, we none",
    ),
    (
        "idns.dlfeat",
        "deallocate read behaviour: optional report (0 = not reported)",
    ),
    (
        "idns.nsfeat.dae",
        "Deallocated or Unwritten Logical Block error: optional",
    ),
    (
        "idns.nsfeat.optperf",
        "NPWG/NPWA/NPDG/NPDA/NOWS performance hints: optional",
    ),
    (
        "idns.nsfeat.above4",
        "features of later revisions: optional",
    ),
];

/// Copy with a bad range after a good one: QEMU copies range 0, then
/// fails on range 1 and reports 1 in Dword 0; we check every range first,
/// copy nothing and report 0.
const COPY_PARTIAL: &str = "both conform: NVM Command Set 1.0 3.2.2, on an error Dword 0 is \
     the lowest numbered source range not copied; QEMU copied range 0 before range 1 \
     failed, we check every range before copying any (the data read back shows it)";

/// A [`COPY_PARTIAL`] row.
const fn partial(
    command: &'static str,
    field: &'static str,
    ours: Want,
    theirs: Want,
) -> Deviation {
    Deviation {
        peer: PEER,
        command,
        field,
        ours,
        theirs,
        clause: COPY_PARTIAL,
        verdict: Verdict::BothConform,
    }
}

/// The peer's documented deviations (command label pattern, field, ours,
/// peer, clause, verdict).
/// A row is either QEMU departing from the spec, or a point where the spec
/// allows both answers (the clause says which).
pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        peer: PEER,
        command: "effects/csi*",
        field: "cse.iocs.00",
        ours: Want::Num(0x1),
        theirs: Want::Num(0x3),
        clause: "QEMU: Flush with LBCC set; NVMe Base 2.1 Figure 'Commands Supported and \
                 Effects Data Structure': LBCC = the command may change logical block \
                 content, which Flush does not (it only makes written data non-volatile)",
        verdict: Verdict::PeerWrong,
    },
    Deviation {
        peer: PEER,
        command: "copy/zns/*",
        field: "status.dnr",
        ours: Want::Num(1),
        theirs: Want::Num(0),
        clause: "QEMU: Copy refused for a zone error without DNR, while its Write with the \
                 same error sets it; NVMe Base 2.1 4.2.3 DNR: set when the same command \
                 re-submitted is expected to fail, as this one is",
        verdict: Verdict::PeerWrong,
    },
    Deviation {
        peer: PEER,
        command: "zms/set-zde/past-end",
        field: "status.sc",
        ours: Want::Num(0x02),
        theirs: Want::Num(0x80),
        clause: "both conform: Set Zone Descriptor Extension without ZDES (Invalid Field, \
                 ZNS 1.1 3.4.3) and an SLBA past the end (LBA Out of Range) both apply; the \
                 spec sets no precedence (we check the action first, QEMU the SLBA)",
        verdict: Verdict::BothConform,
    },
    partial("copy/nvm/over-mssrl", "cqe.dw0", Want::Num(0), Want::Num(1)),
    partial("copy/nvm/over-mssrl/read", "data", Want::Data, Want::Data),
    partial(
        "copy/nvm/source-past-end",
        "cqe.dw0",
        Want::Num(0),
        Want::Num(1),
    ),
    partial(
        "copy/nvm/source-past-end/read",
        "data",
        Want::Data,
        Want::Data,
    ),
    Deviation {
        peer: PEER,
        command: "copy/cdfe/fmt2/read-range1",
        field: "data",
        ours: Want::Data,
        theirs: Want::Data,
        clause: "QEMU: the second descriptor of a format 2h Copy is read from the first \
                 descriptor's namespace (the NVM one's data lands where the ZNS one's \
                 belongs); NVM Command Set 1.1, Figure 'Source Range Entries Descriptor \
                 Format 2h': every descriptor names its own SNSID",
        verdict: Verdict::PeerWrong,
    },
];

/// Our own bugs the comparison found and that are fixed in the backend
/// (each with a unit test there). They are compared like every other
/// field; the summary counts each row once its field agrees.
pub const OURS_FIXED: &[Fixed] = &[
    Fixed {
        peer: PEER,
        command: "zms/close/zones",
        field: "rz.d2.zs",
        what: "Close of an explicitly opened zone with nothing written: ZNS 1.1 2.1.1.3.3 \
               Transition ZSEO:ZSC on Close Zone; we went to ZSE as ZBC-2 5.3 does",
    },
    Fixed {
        peer: PEER,
        command: "io/read-across-zones",
        field: "status.sc",
        what: "Read from past the capacity into the next zone: ZNS 1.1 Figure 17 (Read): \
               Zone Boundary Error only with RAZB cleared, and we set it; we applied ZBC-2 \
               gap zones",
    },
    Fixed {
        peer: PEER,
        command: "limits/active/finish-z7",
        field: "status.sc",
        what: "Finish of an empty zone at the active limit: ZNS 1.1 2.1.1.4.1 g): ZSE to \
               ZSF shall not impact Active Resources; we returned Too Many Active Zones \
               (ZBC-2 4.4.3.5.5)",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffcore::{Fields, Finding, Tally, Val};

    fn ans(sc: u64, nsze: u64, sn: &[u8]) -> Fields {
        let mut a = Fields::default();
        a.num("status.sc", sc)
            .num("idns.nsze", nsze)
            .bytes("idctrl.sn", sn);
        a
    }

    const DEV: &[Deviation] = &[Deviation {
        peer: PEER,
        command: "zms/offline*",
        field: "status.sc",
        ours: Want::Num(0xBF),
        theirs: Want::Num(0x02),
        clause: "ZNS 1.1 Figure X",
        verdict: Verdict::PeerWrong,
    }];

    fn compare(label: &str, ours: &Fields, peer: &Fields, masks: &'static [Mask]) -> Vec<Finding> {
        let t = Tables {
            peer: PEER,
            masks,
            deviations: DEV,
        };
        t.compare(label, ours, peer)
    }

    fn agree(field: &str) -> Finding {
        Finding::Agree {
            field: field.into(),
        }
    }

    #[test]
    fn one_differing_field_fails() {
        let f = compare("idns", &ans(0, 16, b"A"), &ans(0, 17, b"A"), MASKED);
        assert_eq!(
            f,
            vec![
                agree("status.sc"),
                Finding::Differ {
                    field: "idns.nsze".into(),
                    ours: Some(Val::Num(16)),
                    peer: Some(Val::Num(17)),
                },
                agree("idctrl.sn"),
            ]
        );
        assert_eq!(f[1].to_string(), "idns.nsze: ours 0x10 peer 0x11: MISMATCH");
        let mut t = Tally::default();
        assert!(!t.add(&f));
        assert_eq!(t.failed, 1);
    }

    #[test]
    fn a_field_only_one_side_has_fails() {
        let mut short = ans(0, 16, b"A");
        short.0.pop();
        let f = compare("x", &ans(0, 16, b"A"), &short, &[]);
        assert!(matches!(&f[..], [_, _, Finding::Differ { peer: None, .. }]));
        assert_eq!(f[..2], [agree("status.sc"), agree("idns.nsze")]);
    }

    #[test]
    fn masked_field_passes() {
        let f = compare("idctrl", &ans(0, 16, b"ours"), &ans(0, 16, b"qemu"), MASKED);
        assert!(matches!(&f[2], Finding::Masked { field, .. } if field == "idctrl.sn"));
        assert_eq!(f[..2], [agree("status.sc"), agree("idns.nsze")]);
        let mut t = Tally::default();
        assert!(t.add(&f));
        let same = compare("idctrl", &ans(0, 16, b"x"), &ans(0, 16, b"x"), &[]);
        assert!(same.iter().all(|x| matches!(x, Finding::Agree { .. })));
    }

    #[test]
    fn listed_deviation_is_reported_with_both_values() {
        let f = compare(
            "zms/offline/empty",
            &ans(0xBF, 16, b"A"),
            &ans(0x02, 16, b"A"),
            MASKED,
        );
        assert_eq!(
            f[0].to_string(),
            "status.sc: ours 0xbf peer 0x2: peer deviation (ZNS 1.1 Figure X)"
        );
        let mut t = Tally::default();
        assert!(t.add(&f));
        assert_eq!((t.agreed, t.deviations), (0, 1));
        // Another command, or other values, is not covered by the row.
        let f = compare("zms/close", &ans(0xBF, 16, b"A"), &ans(2, 16, b"A"), MASKED);
        assert!(matches!(f[0], Finding::Differ { .. }));
        let f = compare(
            "zms/offline",
            &ans(0xBE, 16, b"A"),
            &ans(2, 16, b"A"),
            MASKED,
        );
        assert!(matches!(f[0], Finding::Differ { .. }));
        // Nor is another peer.
        let other = Tables {
            peer: "p",
            masks: MASKED,
            deviations: DEV,
        };
        let f = other.compare("zms/offline", &ans(0xBF, 16, b"A"), &ans(2, 16, b"A"));
        assert!(matches!(f[0], Finding::Differ { .. }));
    }

    #[test]
    fn summary_line() {
        let mut t = Tally::default();
        t.add(&[]);
        t.add(&[]);
        t.ours_fixed = 1;
        assert_eq!(
            t.summary("qemu-nvme"),
            "diff summary peer=qemu-nvme compared=2 agreed=2 ours-fixed=1 peer-deviations=0 \
             disagreed=0"
        );
        assert_eq!(
            Val::Bytes(vec![]).to_string(),
            "0 bytes fnv cbf29ce484222325"
        );
    }

    #[test]
    fn tables_are_all_for_the_peer() {
        assert!(DEVIATIONS.iter().all(|d| d.peer == PEER));
        assert!(OURS_FIXED.iter().all(|f| f.peer == PEER));
    }
}
