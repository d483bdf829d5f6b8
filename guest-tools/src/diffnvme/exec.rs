//! Send one command to both devices and compare: the [`Pair`] of sides,
//! the answer decoders (status, CQE Dword 0 where the command defines it,
//! returned data as named fields), and the run's tally and diagnostics.

use std::fs::File;

use super::{compare, PEER};
use crate::{
    diffcore::{Fields, Finding, FixedSeen, Tally},
    ktap::Verdict,
    nvme::passthru::{self, Command, Data, Status},
};

/// Which device of a side a command goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Admin command (sent through the zoned namespace's node).
    Admin,
    Zns,
    Nvm,
}

/// One side: our controller or the peer's, with its two namespaces.
#[derive(Debug)]
pub struct Side {
    pub name: &'static str,
    pub zns: File,
    pub nvm: File,
    pub zns_nsid: u32,
    pub nvm_nsid: u32,
}

impl Side {
    /// The NSID of `t` (0 for admin).
    pub fn nsid(&self, t: Target) -> u32 {
        match t {
            Target::Admin => 0,
            Target::Zns => self.zns_nsid,
            Target::Nvm => self.nvm_nsid,
        }
    }
}

/// A completed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resp {
    pub status: Status,
    pub result: u64,
    pub data: Vec<u8>,
}

/// What Dword 0/1 of the completion mean for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dw0 {
    /// Not defined: not compared.
    Undefined,
    /// Dword 0 (e.g. Copy's lowest failed source range, Get Features).
    Dw0,
    /// Dwords 0 and 1 on success (Zone Append's ALBA).
    Alba,
}

/// Decodes returned data (on success only) into named fields.
pub type Decoder = fn(&[u8], &mut Fields);

/// A decoder that compares nothing.
pub fn no_data(_: &[u8], _: &mut Fields) {}

/// The returned bytes as one field.
pub fn raw_data(b: &[u8], a: &mut Fields) {
    a.bytes("data", b);
}

/// The answer of one side: status fields, DW0 where defined, data.
pub fn answer(r: &Resp, dw0: Dw0, decode: Decoder) -> Fields {
    let mut a = Fields::default();
    a.num("status.sct", u64::from(r.status.sct()))
        .num("status.sc", u64::from(r.status.sc()))
        .num("status.dnr", u64::from(r.status.dnr()));
    match dw0 {
        Dw0::Undefined => {}
        Dw0::Dw0 => {
            a.num("cqe.dw0", r.result & 0xFFFF_FFFF);
        }
        Dw0::Alba => {
            if r.status.is_success() {
                a.num("cqe.alba", r.result);
            }
        }
    }
    if r.status.is_success() {
        decode(&r.data, &mut a);
    }
    a
}

/// Both sides and what the run found so far.
pub struct Pair {
    pub ours: Side,
    pub peer: Side,
    pub tally: Tally,
    /// Which of our fixed bugs agreed so far.
    pub fixed: FixedSeen,
    /// Diagnostics for the current test.
    pub diags: Vec<String>,
    /// Mismatches in the current test.
    pub failures: Vec<String>,
    /// Print the status of every command that did not succeed on both.
    pub trace: bool,
    /// Logical blocks per zone, per zone capacity, zones, NVM namespace size.
    pub zone: u64,
    pub cap: u64,
    pub nzones: u64,
    pub nvm_lbas: u64,
    pub bs: u64,
}

fn exec(s: &Side, t: Target, cmd: &Command, out: &[u8], in_len: usize) -> Result<Resp, Verdict> {
    let mut buf = vec![0u8; in_len];
    let data = if !out.is_empty() {
        Data::Out(out)
    } else if in_len > 0 {
        Data::In(&mut buf)
    } else {
        Data::None
    };
    let f = match t {
        Target::Nvm => &s.nvm,
        _ => &s.zns,
    };
    let done = match t {
        Target::Admin => passthru::admin(f, cmd, data),
        _ => passthru::io(f, cmd, data),
    }
    .map_err(|e| {
        Verdict::fail(format!(
            "{}: opcode {:#04x} did not complete: {e}",
            s.name, cmd.opcode
        ))
    })?;
    Ok(Resp {
        status: done.status,
        result: done.result,
        data: buf,
    })
}

/// One command for both sides: built per side (NSIDs differ).
pub struct Cmd<'a> {
    pub label: String,
    pub target: Target,
    pub build: &'a dyn Fn(&Side) -> (Command, Vec<u8>),
    pub in_len: usize,
    pub dw0: Dw0,
    pub decode: Decoder,
}

impl Pair {
    /// Send `c` to both, compare, count, and note every finding. Returns
    /// both answers (ours, peer) for the caller's next step.
    pub fn run(&mut self, c: &Cmd<'_>) -> Result<(Resp, Resp), Verdict> {
        let (cmd_o, out_o) = (c.build)(&self.ours);
        let (cmd_p, out_p) = (c.build)(&self.peer);
        let ro = exec(&self.ours, c.target, &cmd_o, &out_o, c.in_len)?;
        let rp = exec(&self.peer, c.target, &cmd_p, &out_p, c.in_len)?;
        let (ao, ap) = (answer(&ro, c.dw0, c.decode), answer(&rp, c.dw0, c.decode));
        if self.trace && !(ro.status.is_success() && rp.status.is_success()) {
            self.diags.push(format!(
                "{}: ours {:#05x} peer {:#05x}",
                c.label,
                ro.status.code(),
                rp.status.code()
            ));
        }
        self.judge(&c.label, &ao, &ap);
        Ok((ro, rp))
    }

    /// Compare two answers to `label` and count them.
    pub fn judge(&mut self, label: &str, ours: &Fields, peer: &Fields) {
        let f = compare::TABLES.compare(label, ours, peer);
        self.tally.add(&f);
        for x in &f {
            match x {
                Finding::Agree { field } => {
                    let n = self.fixed.agree(PEER, label, field).len();
                    self.tally.ours_fixed += n as u64;
                }
                Finding::Masked { .. } => {}
                Finding::Deviation { .. } => self.diags.push(format!("{label}: {x}")),
                Finding::Differ { .. } => self.failures.push(format!("{label}: {x}")),
            }
        }
    }

    /// The current test's verdict: fail listing every mismatch.
    pub fn verdict(&mut self) -> Result<(), Verdict> {
        let f = std::mem::take(&mut self.failures);
        if f.is_empty() {
            Ok(())
        } else {
            let n = f.len();
            self.diags.extend(f);
            Err(Verdict::fail(format!("{n} unexplained differences")))
        }
    }

    /// Send `c` to our side only and require status `expect` (SCT and SC,
    /// the standard's answer): for a command the peer cannot take without
    /// crashing. `why` names the peer's fault; the diagnostics say the
    /// command was not compared.
    pub fn ours_only(&mut self, c: &Cmd<'_>, expect: u16, why: &str) -> Result<Resp, Verdict> {
        let (cmd, out) = (c.build)(&self.ours);
        let r = exec(&self.ours, c.target, &cmd, &out, c.in_len)?;
        let got = r.status.code();
        self.diags.push(format!(
            "{}: not sent to the peer ({why}); ours {got:#05x}, expected {expect:#05x}",
            c.label
        ));
        if got != expect {
            self.failures.push(format!(
                "{}: ours {got:#05x}, expected {expect:#05x}",
                c.label
            ));
        }
        Ok(r)
    }

    /// Simple form of [`Pair::run`].
    pub fn send(
        &mut self,
        label: impl Into<String>,
        target: Target,
        build: &dyn Fn(&Side) -> (Command, Vec<u8>),
        in_len: usize,
        dw0: Dw0,
        decode: Decoder,
    ) -> Result<(Resp, Resp), Verdict> {
        self.run(&Cmd {
            label: label.into(),
            target,
            build,
            in_len,
            dw0,
            decode,
        })
    }
}

/// Little-endian field `len` bytes at `off` (up to 8).
pub fn le(b: &[u8], off: usize, len: usize) -> u64 {
    b.get(off..off + len)
        .map(|s| s.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
        .unwrap_or(0)
}

/// Decode `fields` (name, offset, length in bytes; lengths over 8 are
/// compared as bytes) with `prefix`.
pub fn fields(b: &[u8], a: &mut Fields, prefix: &str, fields: &[(&str, usize, usize)]) {
    for &(name, off, len) in fields {
        let n = format!("{prefix}.{name}");
        if len > 8 {
            a.bytes(n, b.get(off..off + len).unwrap_or_default());
        } else {
            a.num(n, le(b, off, len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_status_dw0_and_data_on_success_only() {
        let r = Resp {
            status: Status(0x4183),
            result: 3,
            data: vec![1, 2],
        };
        let a = answer(&r, Dw0::Dw0, raw_data);
        assert_eq!(
            a.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["status.sct", "status.sc", "status.dnr", "cqe.dw0"]
        );
        let ok = Resp {
            status: Status(0),
            result: 0x1_0000_0040,
            data: vec![1, 2],
        };
        let a = answer(&ok, Dw0::Alba, raw_data);
        assert_eq!(
            a.0[3],
            ("cqe.alba".into(), crate::diffcore::Val::Num(0x1_0000_0040))
        );
        assert_eq!(a.0[4].0, "data");
        assert_eq!(le(&[0x34, 0x12, 0xFF], 0, 2), 0x1234);
        assert_eq!(le(&[0x34], 0, 2), 0);
    }
}
