//! The differential comparer: two answers to the same command (ours and
//! the peer's), each a list of named fields, compared field by field.
//! A field that differs is
//! - masked, when its name is in [`MASKED`] (identity strings, device
//!   parameters that legitimately differ between two devices);
//! - a peer deviation, when (command, field, ours, peer) is a row of
//!   [`DEVIATIONS`], the one table of the peer's documented departures from
//!   the spec, each with the clause that shows who is right;
//! - otherwise a mismatch, which fails the test.
//!
//! Self-contained on purpose (no suite types): the SCSI peers' comparer
//! will be unified with this one.

use std::fmt;

/// A field value: a number, or bytes (returned data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Num(u64),
    Bytes(Vec<u8>),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Num(n) => write!(f, "{n:#x}"),
            Val::Bytes(b) => {
                let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                    (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
                });
                write!(f, "{} bytes fnv {h:016x}", b.len())
            }
        }
    }
}

/// One device's answer: fields in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer(pub Vec<(String, Val)>);

impl Answer {
    /// Add a numeric field.
    pub fn num(&mut self, name: impl Into<String>, v: u64) -> &mut Self {
        self.0.push((name.into(), Val::Num(v)));
        self
    }

    /// Add a bytes field.
    pub fn bytes(&mut self, name: impl Into<String>, b: &[u8]) -> &mut Self {
        self.0.push((name.into(), Val::Bytes(b.to_vec())));
        self
    }

    fn get(&self, name: &str) -> Option<&Val> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A value in a deviation row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dv {
    /// This number.
    N(u64),
    /// Returned data (bytes): the row says how they differ.
    Data,
}

impl Dv {
    fn matches(self, v: &Val) -> bool {
        match (self, v) {
            (Dv::N(a), Val::Num(b)) => a == *b,
            (Dv::Data, Val::Bytes(_)) => true,
            _ => false,
        }
    }
}

/// A documented departure of the peer from the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deviation {
    /// Command label; a trailing `*` matches any label with that prefix.
    pub command: &'static str,
    /// Field name (exact).
    pub field: &'static str,
    pub ours: Dv,
    pub peer: Dv,
    /// The clause that says which answer is right, and why the peer's
    /// is not ours.
    pub clause: &'static str,
}

/// Fields that legitimately differ between two devices, by name, with why.
/// A name ending in `*` masks every field with that prefix.
pub const MASKED: &[(&str, &str)] = &[
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

/// The peer's documented deviations: (command, field, ours, peer, clause).
/// A row is either QEMU departing from the spec, or a point where the spec
/// allows both answers (the clause says which).
pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        command: "effects/csi*",
        field: "cse.iocs.00",
        ours: Dv::N(0x1),
        peer: Dv::N(0x3),
        clause: "QEMU: Flush with LBCC set; NVMe Base 2.1 Figure 'Commands Supported and \
                 Effects Data Structure': LBCC = the command may change logical block \
                 content, which Flush does not (it only makes written data non-volatile)",
    },
    Deviation {
        command: "copy/zns/*",
        field: "status.dnr",
        ours: Dv::N(1),
        peer: Dv::N(0),
        clause: "QEMU: Copy refused for a zone error without DNR, while its Write with the \
                 same error sets it; NVMe Base 2.1 4.2.3 DNR: set when the same command \
                 re-submitted is expected to fail, as this one is",
    },
    Deviation {
        command: "zms/set-zde/past-end",
        field: "status.sc",
        ours: Dv::N(0x02),
        peer: Dv::N(0x80),
        clause: "both conform: Set Zone Descriptor Extension without ZDES (Invalid Field, \
                 ZNS 1.1 3.4.3) and an SLBA past the end (LBA Out of Range) both apply; the \
                 spec sets no precedence (we check the action first, QEMU the SLBA)",
    },
    Deviation {
        command: "copy/nvm/over-mssrl",
        field: "cqe.dw0",
        ours: Dv::N(0),
        peer: Dv::N(1),
        clause: COPY_PARTIAL,
    },
    Deviation {
        command: "copy/nvm/over-mssrl/read",
        field: "data",
        ours: Dv::Data,
        peer: Dv::Data,
        clause: COPY_PARTIAL,
    },
    Deviation {
        command: "copy/nvm/source-past-end",
        field: "cqe.dw0",
        ours: Dv::N(0),
        peer: Dv::N(1),
        clause: COPY_PARTIAL,
    },
    Deviation {
        command: "copy/nvm/source-past-end/read",
        field: "data",
        ours: Dv::Data,
        peer: Dv::Data,
        clause: COPY_PARTIAL,
    },
    Deviation {
        command: "copy/cdfe/fmt2/read-range1",
        field: "data",
        ours: Dv::Data,
        peer: Dv::Data,
        clause: "QEMU: the second descriptor of a format 2h Copy is read from the first \
                 descriptor's namespace (the NVM one's data lands where the ZNS one's \
                 belongs); NVM Command Set 1.1, Figure 'Source Range Entries Descriptor \
                 Format 2h': every descriptor names its own SNSID",
    },
];

/// Our own bugs the comparison found and that are fixed in the backend
/// (each with a unit test there): (command, field, clause). They agree now
/// and are compared like every other field; the summary counts them.
pub const OURS_FIXED: &[(&str, &str, &str)] = &[
    (
        "zms/close (explicitly opened zone, nothing written)",
        "rz.d2.zs",
        "ZNS 1.1 2.1.1.3.3 Transition ZSEO:ZSC on Close Zone; we went to ZSE as ZBC-2 5.3 does",
    ),
    (
        "io/read-across-zones (from past the capacity into the next zone)",
        "status.sc",
        "ZNS 1.1 Figure 17 (Read): Zone Boundary Error only with RAZB cleared, and we set it; \
         we applied ZBC-2 gap zones",
    ),
    (
        "limits/active/finish-z7 (Finish of an empty zone at the active limit)",
        "status.sc",
        "ZNS 1.1 2.1.1.4.1 g): ZSE to ZSF shall not impact Active Resources; we returned \
         Too Many Active Zones (ZBC-2 4.4.3.5.5)",
    ),
];

/// How a differing field was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Masked by name.
    Masked { field: String },
    /// A row of [`DEVIATIONS`].
    Deviation {
        field: String,
        ours: Val,
        peer: Val,
        clause: &'static str,
    },
    /// Unexplained: fails.
    Mismatch {
        field: String,
        ours: Option<Val>,
        peer: Option<Val>,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<Val>| v.as_ref().map_or("<absent>".into(), Val::to_string);
        match self {
            Finding::Masked { field } => write!(f, "{field}: masked"),
            Finding::Deviation {
                field,
                ours,
                peer,
                clause,
            } => write!(
                f,
                "{field}: ours {ours} peer {peer}: peer deviation ({clause})"
            ),
            Finding::Mismatch { field, ours, peer } => {
                write!(
                    f,
                    "{field}: ours {} peer {}: MISMATCH",
                    opt(ours),
                    opt(peer)
                )?;
                if let (Some(Val::Bytes(a)), Some(Val::Bytes(b))) = (ours, peer) {
                    if let Some(at) = (0..a.len().min(b.len())).find(|&i| a[i] != b[i]) {
                        let hex = |v: &[u8]| -> String {
                            v.iter()
                                .skip(at)
                                .take(16)
                                .map(|x| format!("{x:02x}"))
                                .collect()
                        };
                        write!(f, " (first at byte {at}: ours {} peer {})", hex(a), hex(b))?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Compare two answers to `command`: the differing fields, judged against
/// `masked` and `deviations`. Empty = the answers agree.
pub fn compare(
    command: &str,
    ours: &Answer,
    peer: &Answer,
    masked: &[(&str, &str)],
    deviations: &[Deviation],
) -> Vec<Finding> {
    let mut names: Vec<&str> = ours.0.iter().map(|(n, _)| n.as_str()).collect();
    for (n, _) in &peer.0 {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let mut out = Vec::new();
    for name in names {
        let (o, p) = (ours.get(name), peer.get(name));
        if o == p {
            continue;
        }
        if masked.iter().any(|(m, _)| name_matches(m, name)) {
            out.push(Finding::Masked {
                field: name.to_string(),
            });
            continue;
        }
        let dev = match (o, p) {
            (Some(a), Some(b)) => deviations.iter().find(|d| {
                name_matches(d.command, command)
                    && d.field == name
                    && d.ours.matches(a)
                    && d.peer.matches(b)
            }),
            _ => None,
        };
        out.push(match (dev, o, p) {
            (Some(d), Some(a), Some(b)) => Finding::Deviation {
                field: name.to_string(),
                ours: a.clone(),
                peer: b.clone(),
                clause: d.clause,
            },
            _ => Finding::Mismatch {
                field: name.to_string(),
                ours: o.cloned(),
                peer: p.cloned(),
            },
        });
    }
    out
}

/// Counts over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Commands compared.
    pub compared: u64,
    /// Commands whose answers agree (masked fields aside).
    pub agreed: u64,
    /// Commands with at least one listed peer deviation and no mismatch.
    pub deviations: u64,
    /// Commands with a mismatch.
    pub mismatched: u64,
}

impl Tally {
    /// Count one compared command; returns whether it passes (no mismatch).
    pub fn add(&mut self, findings: &[Finding]) -> bool {
        self.compared += 1;
        let mismatch = findings
            .iter()
            .any(|f| matches!(f, Finding::Mismatch { .. }));
        let dev = findings
            .iter()
            .any(|f| matches!(f, Finding::Deviation { .. }));
        if mismatch {
            self.mismatched += 1;
        } else if dev {
            self.deviations += 1;
        } else {
            self.agreed += 1;
        }
        !mismatch
    }

    /// The suite's one summary line (without the leading `# `).
    pub fn summary(&self, peer: &str, ours_fixed: usize) -> String {
        format!(
            "diff summary peer={peer} compared={} agreed={} ours-fixed={ours_fixed} \
             peer-deviations={}",
            self.compared, self.agreed, self.deviations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(sc: u64, nsze: u64, sn: &[u8]) -> Answer {
        let mut a = Answer::default();
        a.num("status.sc", sc)
            .num("idns.nsze", nsze)
            .bytes("idctrl.sn", sn);
        a
    }

    const DEV: &[Deviation] = &[Deviation {
        command: "zms/offline*",
        field: "status.sc",
        ours: Dv::N(0xBF),
        peer: Dv::N(0x02),
        clause: "ZNS 1.1 Figure X",
    }];

    #[test]
    fn one_differing_field_fails() {
        let f = compare("idns", &ans(0, 16, b"A"), &ans(0, 17, b"A"), MASKED, DEV);
        assert_eq!(
            f,
            vec![Finding::Mismatch {
                field: "idns.nsze".into(),
                ours: Some(Val::Num(16)),
                peer: Some(Val::Num(17)),
            }]
        );
        assert_eq!(f[0].to_string(), "idns.nsze: ours 0x10 peer 0x11: MISMATCH");
        let mut t = Tally::default();
        assert!(!t.add(&f));
        assert_eq!(t.mismatched, 1);
    }

    #[test]
    fn a_field_only_one_side_has_fails() {
        let mut short = ans(0, 16, b"A");
        short.0.pop();
        let f = compare("x", &ans(0, 16, b"A"), &short, &[], &[]);
        assert!(matches!(&f[..], [Finding::Mismatch { peer: None, .. }]));
    }

    #[test]
    fn masked_field_passes() {
        let f = compare(
            "idctrl",
            &ans(0, 16, b"ours"),
            &ans(0, 16, b"qemu"),
            MASKED,
            DEV,
        );
        assert_eq!(
            f,
            vec![Finding::Masked {
                field: "idctrl.sn".into()
            }]
        );
        let mut t = Tally::default();
        assert!(t.add(&f));
        assert!(compare("idctrl", &ans(0, 16, b"x"), &ans(0, 16, b"x"), &[], &[]).is_empty());
        assert!(name_matches("idctrl.*", "idctrl.sn") && !name_matches("idctrl.sn", "idctrl.snx"));
    }

    #[test]
    fn listed_deviation_is_reported_with_both_values() {
        let f = compare(
            "zms/offline/empty",
            &ans(0xBF, 16, b"A"),
            &ans(0x02, 16, b"A"),
            MASKED,
            DEV,
        );
        assert_eq!(
            f[0].to_string(),
            "status.sc: ours 0xbf peer 0x2: peer deviation (ZNS 1.1 Figure X)"
        );
        let mut t = Tally::default();
        assert!(t.add(&f));
        assert_eq!((t.agreed, t.deviations), (0, 1));
        // Another command, or other values, is not covered by the row.
        let f = compare(
            "zms/close",
            &ans(0xBF, 16, b"A"),
            &ans(2, 16, b"A"),
            MASKED,
            DEV,
        );
        assert!(matches!(f[0], Finding::Mismatch { .. }));
        let f = compare(
            "zms/offline",
            &ans(0xBE, 16, b"A"),
            &ans(2, 16, b"A"),
            MASKED,
            DEV,
        );
        assert!(matches!(f[0], Finding::Mismatch { .. }));
    }

    #[test]
    fn summary_line() {
        let mut t = Tally::default();
        t.add(&[]);
        t.add(&[]);
        assert_eq!(
            t.summary("qemu-nvme", 1),
            "diff summary peer=qemu-nvme compared=2 agreed=2 ours-fixed=1 peer-deviations=0"
        );
        assert_eq!(
            Val::Bytes(vec![]).to_string(),
            "0 bytes fnv cbf29ce484222325"
        );
    }
}
