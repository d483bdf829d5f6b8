//! The one comparison framework of the differential suites (`diff`: our
//! SCSI LUs against scsi_debug and LIO; `diff-nvme`: our NVMe/TCP
//! namespaces against QEMU's `-device nvme`).
//!
//! A response is flattened into named fields ([`Fields`]); two responses
//! to the same command are compared name by name ([`compare`]) and every
//! field is judged ([`Finding`]): equal, masked (a field that legitimately
//! differs, matched by name against a mask list), a listed peer deviation
//! (a [`Deviation`] row, with the standard's clause that decides it), or a
//! disagreement, which fails. A [`Tally`] counts exchanges per peer and
//! prints the one `diff summary` line.
//!
//! Nothing here knows SCSI or NVMe: each suite keeps its decoders and its
//! tables (masks, deviation rows, fixed bugs) as data.

use std::fmt;

/// The field that sums up a response: when both answers start with it and
/// it differs, nothing else of the exchange is compared.
pub const OUTCOME: &str = "outcome";

/// How a field one side lacks is rendered (and matched by a row).
pub const ABSENT: &str = "absent";

/// A field value: rendered text, a number, or bytes (returned data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// Already rendered by the decoder (`02h`, `GOOD`, `0x10`).
    Text(String),
    /// A number, shown in hex.
    Num(u64),
    /// Bytes, compared whole, shown as length and FNV-1a hash.
    Bytes(Vec<u8>),
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Text(s) => f.write_str(s),
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

/// A field's value or [`ABSENT`], as printed.
pub fn render(v: Option<&Val>) -> String {
    v.map_or_else(|| ABSENT.to_string(), Val::to_string)
}

/// Two sides' values of one field are the same: equal values, or both
/// absent; a missing field equals one rendered as [`ABSENT`] text.
fn same(o: Option<&Val>, t: Option<&Val>) -> bool {
    match (o, t) {
        (Some(a), Some(b)) => a == b,
        (None, None) => true,
        (Some(Val::Text(s)), None) | (None, Some(Val::Text(s))) => s == ABSENT,
        _ => false,
    }
}

/// Named fields of one response, in the order they were decoded. A field
/// one side lacks is compared as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(String, Val)>);

impl Fields {
    /// No fields yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a field rendered by the decoder.
    pub fn text(&mut self, name: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.0.push((name.into(), Val::Text(v.into())));
        self
    }

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

    /// The value of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Val> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// A field masked by name (a pattern, [`glob`]) and why it legitimately
/// differs between two devices.
pub type Mask = (&'static str, &'static str);

/// A value in a deviation row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The rendered value (or [`ABSENT`]) matches this pattern ([`glob`]).
    Glob(&'static str),
    /// Exactly this number.
    Num(u64),
    /// Any returned data (bytes): the row's clause says how they differ.
    Data,
}

impl Want {
    fn matches(self, v: Option<&Val>) -> bool {
        match (self, v) {
            (Want::Glob(p), v) => glob(p, &render(v)),
            (Want::Num(a), Some(Val::Num(b))) => a == *b,
            (Want::Data, Some(Val::Bytes(_))) => true,
            _ => false,
        }
    }
}

/// Who the clause of a deviation row says is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The peer departs from the standard; our answer is the one it names.
    PeerWrong,
    /// The standard allows both answers (or sets no precedence).
    BothConform,
}

/// One row of a deviation table: the peer answers differently from us and
/// the standard's clause says the peer is wrong, or allows both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deviation {
    /// Peer name (`scsi_debug`, `lio`, `qemu-nvme`).
    pub peer: &'static str,
    /// Exchange label pattern ([`glob`]): `hm write *` matches
    /// `hm write off-wp`; `*` for any.
    pub command: &'static str,
    /// Field name pattern ([`glob`]).
    pub field: &'static str,
    /// Our value.
    pub ours: Want,
    /// The peer's value.
    pub theirs: Want,
    /// The standard's clause that decides it.
    pub clause: &'static str,
    /// What the clause says.
    pub verdict: Verdict,
}

/// A bug of ours the differential run found and the backend now fixes:
/// where it showed, to confirm it agrees now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// Peer that showed it.
    pub peer: &'static str,
    /// Exchange label pattern ([`glob`]).
    pub command: &'static str,
    /// Field name pattern.
    pub field: &'static str,
    /// What was wrong, and the clause.
    pub what: &'static str,
}

impl Fixed {
    /// This row is about `field` of exchange `label` with `peer`.
    pub fn covers(&self, peer: &str, label: &str, field: &str) -> bool {
        self.peer == peer && glob(self.command, label) && glob(self.field, field)
    }
}

/// Which rows of a [`Fixed`] table a run has seen agree: each is counted
/// once, the first time its field agrees.
#[derive(Debug, Clone)]
pub struct FixedSeen {
    rows: &'static [Fixed],
    seen: Vec<bool>,
}

impl FixedSeen {
    /// None of `rows` seen yet.
    pub fn new(rows: &'static [Fixed]) -> Self {
        Self {
            rows,
            seen: vec![false; rows.len()],
        }
    }

    /// `field` of exchange `label` agreed with `peer`: the rows this
    /// confirms for the first time.
    pub fn agree(&mut self, peer: &str, label: &str, field: &str) -> Vec<&'static Fixed> {
        let rows = self.rows;
        rows.iter()
            .zip(self.seen.iter_mut())
            .filter(|(f, seen)| !**seen && f.covers(peer, label, field))
            .map(|(f, seen)| {
                *seen = true;
                f
            })
            .collect()
    }
}

/// How one field of an exchange compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Equal values.
    Agree { field: String },
    /// Different, but masked by name.
    Masked {
        field: String,
        ours: Option<Val>,
        peer: Option<Val>,
    },
    /// Different as a listed peer deviation.
    Deviation {
        field: String,
        ours: Option<Val>,
        peer: Option<Val>,
        row: Deviation,
    },
    /// Different and unexplained: a failure.
    Differ {
        field: String,
        ours: Option<Val>,
        peer: Option<Val>,
    },
}

impl Finding {
    /// The field this finding is about.
    pub fn field(&self) -> &str {
        match self {
            Finding::Agree { field }
            | Finding::Masked { field, .. }
            | Finding::Deviation { field, .. }
            | Finding::Differ { field, .. } => field,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |v: &Option<Val>| render(v.as_ref());
        match self {
            Finding::Agree { field } => write!(f, "{field}: agree"),
            Finding::Masked { field, .. } => write!(f, "{field}: masked"),
            Finding::Deviation {
                field,
                ours,
                peer,
                row,
            } => {
                write!(
                    f,
                    "{field}: ours {} peer {}: peer deviation ({})",
                    r(ours),
                    r(peer),
                    row.clause
                )
            }
            Finding::Differ { field, ours, peer } => {
                write!(f, "{field}: ours {} peer {}: MISMATCH", r(ours), r(peer))?;
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

/// Glob match: `*` matches any run of characters.
pub fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

/// A field name with its numeric `[N]` indexes replaced by `[*]`.
pub fn fold_index(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        match rest.find(']') {
            Some(j) if j > 0 && rest[..j].bytes().all(|b| b.is_ascii_digit()) => {
                out.push('*');
                rest = &rest[j..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

/// A peer and the tables that judge its differences.
#[derive(Debug, Clone, Copy)]
pub struct Tables {
    /// Peer name, as in the rows and the summary line.
    pub peer: &'static str,
    /// Fields masked by name.
    pub masks: &'static [Mask],
    /// The peers' deviations (rows of other peers are not applied).
    pub deviations: &'static [Deviation],
}

impl Tables {
    /// Compare two answers to exchange `label`: one finding per field
    /// name of either side, in order (ours first). When both start with
    /// [`OUTCOME`] and it differs, it alone is judged.
    pub fn compare(&self, label: &str, ours: &Fields, peer: &Fields) -> Vec<Finding> {
        let mut names: Vec<&str> = ours.0.iter().map(|(n, _)| n.as_str()).collect();
        for (n, _) in &peer.0 {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        if let ([(n, o), ..], [(m, t), ..]) = (ours.0.as_slice(), peer.0.as_slice()) {
            if n == OUTCOME && m == OUTCOME && o != t {
                names.retain(|x| *x == OUTCOME);
            }
        }
        names
            .into_iter()
            .map(|n| self.judge(label, n, ours.get(n), peer.get(n)))
            .collect()
    }

    fn judge(&self, label: &str, field: &str, o: Option<&Val>, p: Option<&Val>) -> Finding {
        let field = field.to_string();
        if same(o, p) {
            return Finding::Agree { field };
        }
        let (ours, peer) = (o.cloned(), p.cloned());
        if self.masks.iter().any(|(m, _)| glob(m, &field)) {
            return Finding::Masked { field, ours, peer };
        }
        let row = self.deviations.iter().find(|d| {
            d.peer == self.peer
                && glob(d.command, label)
                && glob(d.field, &field)
                && d.ours.matches(o)
                && d.theirs.matches(p)
        });
        match row {
            Some(&row) => Finding::Deviation {
                field,
                ours,
                peer,
                row,
            },
            None => Finding::Differ { field, ours, peer },
        }
    }
}

/// Counts per peer, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Exchanges (one command to both devices) compared.
    pub compared: u64,
    /// Exchanges where every field agreed or was masked.
    pub agreed: u64,
    /// Exchanges explained by at least one listed peer deviation.
    pub deviations: u64,
    /// Exchanges with an unexplained difference (or no answer).
    pub failed: u64,
    /// Our bugs found by the comparison and fixed in the backend.
    pub ours_fixed: u64,
}

impl Tally {
    /// Count one compared exchange; returns whether it passes (no
    /// unexplained difference).
    pub fn add(&mut self, findings: &[Finding]) -> bool {
        self.compared += 1;
        let differ = findings.iter().any(|f| matches!(f, Finding::Differ { .. }));
        let dev = findings
            .iter()
            .any(|f| matches!(f, Finding::Deviation { .. }));
        if differ {
            self.failed += 1;
        } else if dev {
            self.deviations += 1;
        } else {
            self.agreed += 1;
        }
        !differ
    }

    /// Count an exchange a side did not answer at all: a failure.
    pub fn broken(&mut self) {
        self.compared += 1;
        self.failed += 1;
    }

    /// The suites' one summary line (without the leading `# `).
    pub fn summary(&self, peer: &str) -> String {
        format!(
            "diff summary peer={peer} compared={} agreed={} ours-fixed={} peer-deviations={} \
             disagreed={}",
            self.compared, self.agreed, self.ours_fixed, self.deviations, self.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_fold() {
        assert!(glob("a", "a"));
        assert!(!glob("a", "ab"));
        assert!(glob("vpd83.*", "vpd83.designator[0]"));
        assert!(glob("rz.zone[*].wp", "rz.zone[12].wp"));
        assert!(!glob("rz.zone[*].wp", "rz.zone[12].len"));
        assert!(glob("*", ""));
        assert!(glob("idctrl.*", "idctrl.sn") && !glob("idctrl.sn", "idctrl.snx"));
        assert_eq!(fold_index("rz.zone[12].wp"), "rz.zone[*].wp");
        assert_eq!(
            fold_index("rcr.op.implements[02h]"),
            "rcr.op.implements[02h]"
        );
        assert_eq!(fold_index("a[1][x]b[]"), "a[*][x]b[]");
    }

    #[test]
    fn values_render_and_absent_text_equals_missing() {
        assert_eq!(
            Val::Bytes(vec![]).to_string(),
            "0 bytes fnv cbf29ce484222325"
        );
        assert_eq!(Val::Num(0x30).to_string(), "0x30");
        let t = Val::Text(ABSENT.into());
        assert!(same(Some(&t), None) && same(None, Some(&t)));
        assert!(!same(Some(&Val::Num(0)), None));
        assert!(Want::Glob(ABSENT).matches(None));
        assert!(!Want::Num(0).matches(None) && !Want::Data.matches(None));
        assert!(!Want::Data.matches(Some(&Val::Num(0))));
    }

    #[test]
    fn summary_line() {
        let mut t = Tally::default();
        assert!(t.add(&[]));
        assert!(t.add(&[Finding::Agree { field: "a".into() }]));
        t.ours_fixed = 1;
        assert_eq!(
            t.summary("qemu-nvme"),
            "diff summary peer=qemu-nvme compared=2 agreed=2 ours-fixed=1 peer-deviations=0 \
             disagreed=0"
        );
        t.broken();
        assert_eq!((t.compared, t.failed), (3, 1));
    }

    #[test]
    fn a_fixed_row_is_confirmed_once() {
        const ROWS: &[Fixed] = &[Fixed {
            peer: "p",
            command: "report opt 3Eh*",
            field: "rz.list_len",
            what: "3Eh",
        }];
        let mut s = FixedSeen::new(ROWS);
        assert!(s.agree("q", "report opt 3Eh", "rz.list_len").is_empty());
        assert!(s.agree("p", "report opt 3Eh", "rz.nr").is_empty());
        assert_eq!(s.agree("p", "report opt 3Eh x", "rz.list_len"), [&ROWS[0]]);
        assert!(s.agree("p", "report opt 3Eh", "rz.list_len").is_empty());
    }
}
