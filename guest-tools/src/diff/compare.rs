//! The comparison framework of the differential suite: a response is
//! flattened into named fields ([`Fields`]), the two devices' fields are
//! compared name by name, and every difference is classified as masked (a
//! field that legitimately differs, matched by name against a mask list),
//! a listed peer deviation (one row of a deviation table, both values
//! named), or a disagreement, which fails the group.
//!
//! Nothing here knows SCSI: the decoders live in `fields.rs`, the tables
//! in `tables.rs`.

/// The field that sums up a response: when it differs, nothing else of
/// the exchange is compared.
pub const OUTCOME: &str = "outcome";

/// Named fields of one response, in the order they were decoded: `(name,
/// rendered value)`. A field one side lacks is compared as `absent`.
pub type Fields = Vec<(String, String)>;

/// One row of the deviation table: the peer answers differently from us
/// and the standard's clause says the peer is wrong (or leaves it open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deviation {
    /// Peer name (`scsi_debug`, `lio`).
    pub peer: &'static str,
    /// Exchange labels the row applies to, a pattern ([`matches`]): e.g.
    /// `hm write *` matches `hm write off-wp`; `*` for any.
    pub command: &'static str,
    /// Field name pattern ([`matches`]).
    pub field: &'static str,
    /// Our value as rendered, a pattern ([`matches`]; `*` for any).
    pub ours: &'static str,
    /// The peer's value as rendered, a pattern.
    pub theirs: &'static str,
    /// The standard's clause that decides it.
    pub clause: &'static str,
}

/// How one field compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Equal values.
    Agree,
    /// Different, but the field is masked by name.
    Masked,
    /// Different as a listed peer deviation.
    Deviation(Deviation),
    /// Different and unexplained: a failure.
    Differ,
}

/// Glob match of a field name: `*` matches any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && matches(tail, &rest[i..]))
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

/// Counts per peer, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Exchanges (one command to both devices) compared.
    pub compared: u64,
    /// Exchanges where every field agreed or was masked.
    pub agreed: u64,
    /// Exchanges explained by at least one listed peer deviation.
    pub deviations: u64,
    /// Exchanges with an unexplained difference.
    pub failed: u64,
    /// Our bugs found by this comparison and fixed in the backend, whose
    /// field agreed in this run.
    pub ours_fixed: u64,
}

/// A bug of ours the differential run found and the backend now fixes:
/// the exchange and field where it showed, to confirm it agrees now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// Peer that showed it.
    pub peer: &'static str,
    /// Exchange label pattern ([`matches`]).
    pub command: &'static str,
    /// Field name pattern.
    pub field: &'static str,
    /// What was wrong, and the clause.
    pub what: &'static str,
}

/// Compares the exchanges of one peer and keeps the tally.
#[derive(Debug)]
pub struct Comparer {
    peer: &'static str,
    masks: &'static [&'static str],
    deviations: &'static [Deviation],
    fixed: &'static [Fixed],
    fixed_seen: Vec<bool>,
    /// The running tally.
    pub tally: Tally,
    /// Disagreements of the current group (both values printed).
    group_failures: Vec<String>,
    /// Distinct disagreements of the current group and how often each.
    group_kinds: Vec<(String, u64)>,
    /// Diagnostic lines not yet printed.
    pending: Vec<String>,
    /// Masked field names already shown.
    masked_seen: Vec<String>,
    /// Distinct deviations seen (printed once each).
    deviations_seen: Vec<(Deviation, String)>,
}

/// At most this many disagreement lines are printed per group.
const MAX_LINES: usize = 40;

impl Comparer {
    /// A comparer for `peer` with the tables to apply.
    pub fn new(
        peer: &'static str,
        masks: &'static [&'static str],
        deviations: &'static [Deviation],
        fixed: &'static [Fixed],
    ) -> Self {
        Self {
            peer,
            masks,
            deviations,
            fixed,
            fixed_seen: vec![false; fixed.len()],
            tally: Tally::default(),
            group_failures: Vec::new(),
            group_kinds: Vec::new(),
            pending: Vec::new(),
            deviations_seen: Vec::new(),
            masked_seen: Vec::new(),
        }
    }

    /// The peer's name.
    pub fn peer(&self) -> &'static str {
        self.peer
    }

    /// Classify one field of exchange `label`.
    pub fn classify(&self, label: &str, field: &str, ours: &str, theirs: &str) -> Finding {
        if ours == theirs {
            return Finding::Agree;
        }
        if self.masks.iter().any(|m| matches(m, field)) {
            return Finding::Masked;
        }
        let hit = |pat: &str, v: &str| matches(pat, v);
        self.deviations
            .iter()
            .find(|d| {
                d.peer == self.peer
                    && matches(d.command, label)
                    && matches(d.field, field)
                    && hit(d.ours, ours)
                    && hit(d.theirs, theirs)
            })
            .map_or(Finding::Differ, |d| Finding::Deviation(*d))
    }

    /// Compare one exchange (one command sent to both devices). Returns
    /// whether it passed (agreed, masked or a listed deviation).
    pub fn exchange(&mut self, label: &str, ours: &Fields, theirs: &Fields) -> bool {
        let mut names: Vec<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
        for (n, _) in theirs {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
        let get = |f: &Fields, n: &str| {
            f.iter()
                .find(|(k, _)| k == n)
                .map_or_else(|| "absent".to_string(), |(_, v)| v.clone())
        };
        let (mut differ, mut deviated) = (false, false);
        // Responses that differ in their outcome (the first field, when
        // named so) are compared on it alone: the rest follows from it.
        if let ([(n, o), ..], [(m, t), ..]) = (ours.as_slice(), theirs.as_slice()) {
            if n == OUTCOME && m == OUTCOME && o != t {
                names.retain(|x| *x == OUTCOME);
            }
        }
        for n in names {
            let (o, t) = (get(ours, n), get(theirs, n));
            match self.classify(label, n, &o, &t) {
                Finding::Agree => self.mark_fixed(label, n),
                Finding::Masked => {
                    // Shown once per field name, so what a mask hides is
                    // on the record.
                    if !self.masked_seen.iter().any(|m| m == n) {
                        self.masked_seen.push(n.to_string());
                        self.pending.push(format!(
                            "masked peer={} {label}: {n}: ours={o} peer={t}",
                            self.peer
                        ));
                    }
                }
                Finding::Deviation(d) => {
                    deviated = true;
                    let first = format!("{label}: {n}");
                    if !self.deviations_seen.iter().any(|(x, _)| *x == d) {
                        self.pending.push(format!(
                            "deviation peer={} {first}: ours={o} peer={t} ({})",
                            self.peer, d.clause
                        ));
                        self.deviations_seen.push((d, first));
                    }
                }
                Finding::Differ => {
                    differ = true;
                    // One line per distinct difference (zone indexes
                    // folded), with the first exchange that showed it.
                    let key = format!("{}: ours={o} peer={t}", fold_index(n));
                    let room = self.group_kinds.len() < MAX_LINES;
                    match self.group_kinds.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, c)) => *c += 1,
                        None if room => {
                            self.pending.push(format!(
                                "DIFFER peer={} {label}: {n}: ours={o} peer={t}",
                                self.peer
                            ));
                            self.group_kinds.push((key, 1));
                        }
                        None => {}
                    }
                    self.group_failures.push(format!("{label}: {n}"));
                }
            }
        }
        self.tally.compared += 1;
        if differ {
            self.tally.failed += 1;
        } else if deviated {
            self.tally.deviations += 1;
        } else {
            self.tally.agreed += 1;
        }
        !differ
    }

    fn mark_fixed(&mut self, label: &str, field: &str) {
        for (i, f) in self.fixed.iter().enumerate() {
            if f.peer == self.peer
                && !self.fixed_seen[i]
                && matches(f.command, label)
                && matches(f.field, field)
            {
                self.fixed_seen[i] = true;
                self.tally.ours_fixed += 1;
                self.pending.push(format!(
                    "fixed peer={} {label}: {field} agrees now: {}",
                    self.peer, f.what
                ));
            }
        }
    }

    /// A side failed to answer at all (ioctl error, device missing): a
    /// disagreement that no table explains.
    pub fn broken(&mut self, label: &str, why: &str) {
        self.tally.compared += 1;
        self.tally.failed += 1;
        self.pending
            .push(format!("BROKEN peer={} {label}: {why}", self.peer));
        self.group_failures.push(format!("{label}: {why}"));
    }

    /// A diagnostic line to print with the next ones.
    pub fn note(&mut self, line: String) {
        self.pending.push(line);
    }

    /// Diagnostic lines gathered since the last call.
    pub fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending)
    }

    /// End a command group: `Ok` if nothing disagreed, else the count and
    /// the first disagreements (the lines with both values were queued as
    /// diagnostics).
    pub fn end_group(&mut self) -> Result<(), String> {
        let f = std::mem::take(&mut self.group_failures);
        for (k, c) in std::mem::take(&mut self.group_kinds) {
            if c > 1 {
                self.pending
                    .push(format!("DIFFER peer={} {c} times: {k}", self.peer));
            }
        }
        if f.is_empty() {
            return Ok(());
        }
        let mut first: Vec<&str> = f.iter().map(String::as_str).take(3).collect();
        first.dedup();
        Err(format!(
            "{} field(s) disagree with {} and are neither masked nor a listed deviation: {}",
            f.len(),
            self.peer,
            first.join("; ")
        ))
    }

    /// The summary line (without the leading `# `).
    pub fn summary(&self) -> String {
        let t = self.tally;
        format!(
            "diff summary peer={} compared={} agreed={} ours-fixed={} peer-deviations={} disagreed={}",
            self.peer, t.compared, t.agreed, t.ours_fixed, t.deviations, t.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASKS: &[&str] = &["inquiry.vendor", "vpd83.*"];
    const DEVS: &[Deviation] = &[Deviation {
        peer: "p",
        command: "write *",
        field: "sense.asc",
        ours: "21h",
        theirs: "24h",
        clause: "ZBC-2 4.4.3.4.3",
    }];
    const FIXED: &[Fixed] = &[Fixed {
        peer: "p",
        command: "report opt 3Eh*",
        field: "rz.list_len",
        what: "3Eh",
    }];

    fn f(v: &[(&str, &str)]) -> Fields {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn glob() {
        assert!(matches("a", "a"));
        assert!(!matches("a", "ab"));
        assert!(matches("vpd83.*", "vpd83.designator[0]"));
        assert!(matches("rz.zone[*].wp", "rz.zone[12].wp"));
        assert!(!matches("rz.zone[*].wp", "rz.zone[12].len"));
        assert!(matches("*", ""));
        assert_eq!(fold_index("rz.zone[12].wp"), "rz.zone[*].wp");
        assert_eq!(
            fold_index("rcr.op.implements[02h]"),
            "rcr.op.implements[02h]"
        );
        assert_eq!(fold_index("a[1][x]b[]"), "a[*][x]b[]");
    }

    #[test]
    fn one_differing_field_fails() {
        let mut c = Comparer::new("p", MASKS, DEVS, FIXED);
        let a = f(&[("status", "00h"), ("rz.same", "1h")]);
        let b = f(&[("status", "00h"), ("rz.same", "0h")]);
        assert!(!c.exchange("report opt 00h", &a, &b));
        let d = c.take_diags();
        assert_eq!(
            d,
            ["DIFFER peer=p report opt 00h: rz.same: ours=1h peer=0h"]
        );
        let e = c.end_group().unwrap_err();
        assert!(e.starts_with("1 field(s) disagree"), "{e}");
        assert_eq!(c.tally.failed, 1);
        // A field only one side has is a difference too.
        assert!(!c.exchange("x", &f(&[("a", "1")]), &f(&[])));
        assert_eq!(c.take_diags(), ["DIFFER peer=p x: a: ours=1 peer=absent"]);
        assert!(c.end_group().is_err());
    }

    #[test]
    fn differing_outcome_is_one_difference() {
        let mut c = Comparer::new("p", MASKS, DEVS, FIXED);
        let a = f(&[("outcome", "GOOD"), ("status", "00h")]);
        let b = f(&[("outcome", "CHECK"), ("status", "02h"), ("sense.key", "5h")]);
        assert!(!c.exchange("x", &a, &b));
        assert_eq!(
            c.take_diags(),
            ["DIFFER peer=p x: outcome: ours=GOOD peer=CHECK"]
        );
    }

    #[test]
    fn masked_field_passes() {
        let mut c = Comparer::new("p", MASKS, DEVS, FIXED);
        let a = f(&[("inquiry.vendor", "ZONECOPY"), ("vpd83.naa", "6001")]);
        let b = f(&[("inquiry.vendor", "Linux"), ("vpd83.naa", "5001")]);
        assert!(c.exchange("inquiry", &a, &b));
        assert!(c.end_group().is_ok());
        assert_eq!(c.tally.agreed, 1);
        assert_eq!(
            c.take_diags(),
            [
                "masked peer=p inquiry: inquiry.vendor: ours=ZONECOPY peer=Linux",
                "masked peer=p inquiry: vpd83.naa: ours=6001 peer=5001"
            ]
        );
        // Shown once per field name.
        assert!(c.exchange("inquiry", &a, &b));
        assert!(c.take_diags().is_empty());
    }

    #[test]
    fn listed_deviation_is_reported() {
        let mut c = Comparer::new("p", MASKS, DEVS, FIXED);
        let a = f(&[("sense.asc", "21h")]);
        let b = f(&[("sense.asc", "24h")]);
        assert!(c.exchange("write full zone", &a, &b));
        assert!(c.end_group().is_ok());
        assert_eq!(c.tally.deviations, 1);
        assert_eq!(
            c.take_diags(),
            ["deviation peer=p write full zone: sense.asc: ours=21h peer=24h (ZBC-2 4.4.3.4.3)"]
        );
        // Printed once; counted every time.
        assert!(c.exchange("write full zone again", &a, &b));
        assert!(c.take_diags().is_empty());
        assert_eq!(c.tally.deviations, 2);
        // Other values, other command or other peer: not the row.
        assert!(!c.exchange("write x", &a, &f(&[("sense.asc", "25h")])));
        assert!(!c.exchange("read", &a, &b));
        let mut q = Comparer::new("q", MASKS, DEVS, FIXED);
        assert!(!q.exchange("write", &a, &b));
    }

    #[test]
    fn fixed_bug_counted_once_when_it_agrees() {
        let mut c = Comparer::new("p", MASKS, DEVS, FIXED);
        let a = f(&[("rz.list_len", "64")]);
        assert!(c.exchange("report opt 3Eh", &a, &a));
        assert!(c.exchange("report opt 3Eh", &a, &a));
        assert_eq!(c.tally.ours_fixed, 1);
        assert_eq!(
            c.summary(),
            "diff summary peer=p compared=2 agreed=2 ours-fixed=1 peer-deviations=0 disagreed=0"
        );
    }
}
