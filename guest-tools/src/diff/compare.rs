//! The differential suite's reporter on the shared framework
//! ([`crate::diffcore`]): it compares the exchanges of one peer, counts
//! them, and queues the diagnostic lines (each masked field and each
//! deviation row shown once, disagreements folded by zone index, fixed
//! bugs confirmed when their field agrees).
//!
//! Nothing here knows SCSI: the decoders live in `fields.rs`, the tables
//! in `tables.rs`.

use crate::diffcore::{fold_index, render, Finding, FixedSeen, Tables};
pub use crate::diffcore::{Deviation, Fields, Fixed, Mask, Tally, OUTCOME};

/// Compares the exchanges of one peer and keeps the tally.
#[derive(Debug)]
pub struct Comparer {
    tables: Tables,
    fixed: FixedSeen,
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
    deviations_seen: Vec<Deviation>,
}

/// At most this many disagreement lines are printed per group.
const MAX_LINES: usize = 40;

impl Comparer {
    /// A comparer for `peer` with the tables to apply.
    pub fn new(
        peer: &'static str,
        masks: &'static [Mask],
        deviations: &'static [Deviation],
        fixed: &'static [Fixed],
    ) -> Self {
        Self {
            tables: Tables {
                peer,
                masks,
                deviations,
            },
            fixed: FixedSeen::new(fixed),
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
        self.tables.peer
    }

    /// Compare one exchange (one command sent to both devices). Returns
    /// whether it passed (agreed, masked or a listed deviation).
    pub fn exchange(&mut self, label: &str, ours: &Fields, theirs: &Fields) -> bool {
        let findings = self.tables.compare(label, ours, theirs);
        let peer = self.tables.peer;
        for f in &findings {
            let n = f.field();
            match f {
                Finding::Agree { .. } => self.mark_fixed(label, n),
                Finding::Masked { ours, peer: t, .. } => {
                    // Shown once per field name, so what a mask hides is
                    // on the record.
                    if !self.masked_seen.iter().any(|m| m == n) {
                        self.masked_seen.push(n.to_string());
                        self.pending.push(format!(
                            "masked peer={peer} {label}: {n}: ours={} peer={}",
                            render(ours.as_ref()),
                            render(t.as_ref())
                        ));
                    }
                }
                Finding::Deviation {
                    ours, peer: t, row, ..
                } => {
                    if !self.deviations_seen.contains(row) {
                        self.pending.push(format!(
                            "deviation peer={peer} {label}: {n}: ours={} peer={} ({})",
                            render(ours.as_ref()),
                            render(t.as_ref()),
                            row.clause
                        ));
                        self.deviations_seen.push(*row);
                    }
                }
                Finding::Differ { ours, peer: t, .. } => {
                    let (o, t) = (render(ours.as_ref()), render(t.as_ref()));
                    // One line per distinct difference (zone indexes
                    // folded), with the first exchange that showed it.
                    let key = format!("{}: ours={o} peer={t}", fold_index(n));
                    let room = self.group_kinds.len() < MAX_LINES;
                    match self.group_kinds.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, c)) => *c += 1,
                        None if room => {
                            self.pending.push(format!(
                                "DIFFER peer={peer} {label}: {n}: ours={o} peer={t}"
                            ));
                            self.group_kinds.push((key, 1));
                        }
                        None => {}
                    }
                    self.group_failures.push(format!("{label}: {n}"));
                }
            }
        }
        self.tally.add(&findings)
    }

    fn mark_fixed(&mut self, label: &str, field: &str) {
        let peer = self.tables.peer;
        for f in self.fixed.agree(peer, label, field) {
            self.tally.ours_fixed += 1;
            self.pending.push(format!(
                "fixed peer={peer} {label}: {field} agrees now: {}",
                f.what
            ));
        }
    }

    /// A side failed to answer at all (ioctl error, device missing): a
    /// disagreement that no table explains.
    pub fn broken(&mut self, label: &str, why: &str) {
        self.tally.broken();
        self.pending
            .push(format!("BROKEN peer={} {label}: {why}", self.peer()));
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
                    .push(format!("DIFFER peer={} {c} times: {k}", self.peer()));
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
            self.peer(),
            first.join("; ")
        ))
    }

    /// The summary line (without the leading `# `).
    pub fn summary(&self) -> String {
        self.tally.summary(self.tables.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffcore::{Verdict, Want};

    const MASKS: &[Mask] = &[("inquiry.vendor", "identity"), ("vpd83.*", "designators")];
    const DEVS: &[Deviation] = &[Deviation {
        peer: "p",
        command: "write *",
        field: "sense.asc",
        ours: Want::Glob("21h"),
        theirs: Want::Glob("24h"),
        clause: "ZBC-2 4.4.3.4.3",
        verdict: Verdict::PeerWrong,
    }];
    const FIXED: &[Fixed] = &[Fixed {
        peer: "p",
        command: "report opt 3Eh*",
        field: "rz.list_len",
        what: "3Eh",
    }];

    fn f(v: &[(&str, &str)]) -> Fields {
        let mut x = Fields::new();
        for (a, b) in v {
            x.text(*a, *b);
        }
        x
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
