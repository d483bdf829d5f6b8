//! The ZBC command groups compared with scsi_debug: the same CDBs (and
//! data) go to our LUN and to scsi_debug loaded with the same geometry,
//! and after every command that changes zones the whole zone list of both
//! is compared as well.

use std::fs::File;

use super::{
    compare::{Comparer, Fields},
    fields::{self, Dir, Response},
};
use crate::{
    sgio::write16,
    xcopy::cdb as xcdb,
    zbc::{model::Action, scsi, MAX_XFER},
};

/// Zone geometry shared by both devices, in logical blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geo {
    /// Logical block size in bytes.
    pub bs: u64,
    /// Capacity in blocks.
    pub blocks: u64,
    /// Zone size (zone starting LBA spacing) in blocks.
    pub zone: u64,
    /// Zone capacity in blocks (< zone: a gap zone follows each
    /// sequential zone).
    pub cap: u64,
    /// Conventional zones at the start.
    pub conv: u64,
    /// Maximum open sequential write required zones (host-managed).
    pub max_open: Option<u32>,
    /// Host aware (sequential write preferred zones).
    pub host_aware: bool,
}

impl Geo {
    /// First LBA of zone slot `k` (a sequential zone for `k >= conv`).
    pub fn zs(&self, k: u64) -> u64 {
        k * self.zone
    }

    /// Zone slot `n` after the conventional ones.
    pub fn seq(&self, n: u64) -> u64 {
        self.zs(self.conv + n)
    }

    fn gaps(&self) -> bool {
        self.cap < self.zone
    }
}

/// Our LUN and the peer's disk, with the comparer.
pub struct Pair<'a> {
    /// Our device.
    pub ours: &'a File,
    /// The peer's device.
    pub peer: &'a File,
    /// The comparer.
    pub cmp: &'a mut Comparer,
    /// Prefix of every exchange label (`hm`, `ha`): deviation rows can
    /// name one run.
    pub tag: &'static str,
}

impl Pair<'_> {
    /// Send `cdb` to both and compare with `decode`. Returns both
    /// responses (`None` if either side could not be asked).
    pub fn x(
        &mut self,
        label: &str,
        cdb: &[u8],
        dir: &Dir,
        decode: fn(&Response) -> Fields,
    ) -> Option<(Response, Response)> {
        let label = format!("{} {label}", self.tag);
        super::both(
            self.cmp,
            &label,
            (self.ours, cdb, dir),
            (self.peer, cdb, dir),
            decode,
        )
    }

    /// Compare every zone of both devices (REPORT ZONES, all zones).
    pub fn state(&mut self, after: &str) {
        let cdb = scsi::report_zones(0, 0x10000, 0, false);
        self.x(
            &format!("state after {after}"),
            &cdb,
            &Dir::In(0x10000),
            fields::report_fields,
        );
    }

    /// A zone action, compared, then the zone state.
    pub fn act(&mut self, what: &str, a: Action, id: u64, count: u16, all: bool) {
        let label = format!("zone {what}");
        self.x(
            &label,
            &scsi::zbc_out(a, id, count, all),
            &Dir::None,
            fields::status_fields,
        );
        self.state(&label);
    }

    /// WRITE(16) of `n` blocks of a pattern at `lba`, compared, then the
    /// zone state. Longer writes go in commands of at most [`MAX_XFER`]
    /// bytes (our LUN's queue limit), each compared.
    pub fn write(&mut self, g: &Geo, what: &str, lba: u64, n: u32) {
        let per = u32::try_from((MAX_XFER / g.bs).max(1)).unwrap_or(1);
        let (mut at, mut left, mut part) = (lba, n, 0);
        loop {
            let k = left.min(per);
            let len = usize::try_from(u64::from(k) * g.bs).unwrap_or(0);
            let data: Vec<u8> = (0..len)
                .map(|i| (i as u64 ^ at.wrapping_mul(0x9e37)) as u8)
                .collect();
            let label = if n > per {
                format!("write {what} part {part}")
            } else {
                format!("write {what}")
            };
            self.x(
                &label,
                &write16(at, k),
                &Dir::Out(data),
                fields::status_fields,
            );
            left -= k;
            at += u64::from(k);
            part += 1;
            if left == 0 {
                break;
            }
        }
        self.state(&format!("write {what}"));
    }

    /// READ(16) of `n` blocks at `lba`: status, sense and the data read.
    pub fn read(&mut self, g: &Geo, what: &str, lba: u64, n: u32) {
        let len = usize::try_from(u64::from(n) * g.bs).unwrap_or(0);
        self.x(
            &format!("read {what}"),
            &xcdb::read16(lba, n),
            &Dir::In(len),
            |r| fields::data_fields(r, "read"),
        );
    }
}

/// A named group of exchanges.
pub type Group = (&'static str, fn(&mut Pair<'_>, &Geo));

/// The groups, in order; host-managed-only ones check `g.host_aware`.
pub const GROUPS: &[Group] = &[
    ("capacity_vpd", capacity_vpd),
    ("report_zones", report_matrix),
    ("zone_actions", zone_actions),
    ("writes", writes),
    ("reads", reads),
    ("verify", verify),
    ("max_open", max_open),
];

fn capacity_vpd(p: &mut Pair<'_>, _g: &Geo) {
    for alloc in [32u32, 12] {
        p.x(
            &format!("read capacity16 alloc {alloc}"),
            &scsi::read_capacity16(alloc),
            &Dir::In(alloc as usize),
            fields::capacity_fields,
        );
    }
    p.x(
        "vpd b1",
        &xcdb::inquiry(Some(0xb1), 64),
        &Dir::In(64),
        fields::b1_fields,
    );
    p.x(
        "vpd b6",
        &xcdb::inquiry(Some(0xb6), 64),
        &Dir::In(64),
        fields::b6_fields,
    );
}

/// Reporting options of ZBC-2 6.4.2 table 33, and some reserved ones.
const OPTIONS: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x11, 0x3e, 0x3f, 0x09, 0x0f, 0x12,
    0x20, 0x3d,
];

/// An allocation length that cuts the third descriptor after 40 bytes
/// (232; the deviation table names it).
const CUT_ALLOC: u32 = 64 + 64 * 2 + 40;

/// Every zone condition the device can be put in through commands: an
/// implicitly open, an explicitly open, a closed, a full and a
/// non-sequentially written (host aware) zone.
fn prepare(p: &mut Pair<'_>, g: &Geo) {
    p.act("reset all", Action::Reset, 0, 0, true);
    p.write(g, "imp-open", g.seq(0), 2);
    p.act("open", Action::Open, g.seq(1), 0, false);
    p.write(g, "to-close", g.seq(2), 1);
    p.act("close", Action::Close, g.seq(2), 0, false);
    p.act("finish", Action::Finish, g.seq(3), 0, false);
    if g.host_aware {
        p.write(g, "non-seq", g.seq(4) + 3, 1);
    }
}

fn report_matrix(p: &mut Pair<'_>, g: &Geo) {
    prepare(p, g);
    let mut starts = vec![("0", 0)];
    if g.conv > 0 {
        starts.push(("in-conv", g.zs(g.conv - 1) + 3));
    }
    starts.push(("seq-start", g.seq(0)));
    starts.push(("mid-zone", g.seq(1) + 5));
    if g.gaps() {
        starts.push(("in-gap", g.seq(0) + g.cap + 1));
    }
    starts.push(("last", g.blocks - 1));
    starts.push(("past-end", g.blocks));
    for &opt in OPTIONS {
        for partial in [false, true] {
            for &(sname, start) in &starts {
                for alloc in [0u32, 64, CUT_ALLOC, 8192] {
                    let label = format!(
                        "report opt {opt:02X}h{} start {sname} alloc {alloc}",
                        if partial { " partial" } else { "" }
                    );
                    p.x(
                        &label,
                        &scsi::report_zones(start, alloc, opt, partial),
                        &Dir::In(alloc as usize),
                        fields::report_fields,
                    );
                }
            }
        }
    }
    p.act("reset all", Action::Reset, 0, 0, true);
}

fn zone_actions(p: &mut Pair<'_>, g: &Geo) {
    let acts = [
        ("open", Action::Open),
        ("close", Action::Close),
        ("finish", Action::Finish),
        ("reset", Action::Reset),
    ];
    p.act("reset all", Action::Reset, 0, 0, true);
    // Each action on an empty, an open, a closed and a full zone.
    for (name, a) in acts {
        p.act(&format!("{name} empty"), a, g.seq(0), 0, false);
        p.write(g, &format!("before {name}"), g.seq(1), 1);
        p.act(&format!("{name} imp-open"), a, g.seq(1), 0, false);
        p.act(&format!("{name} again"), a, g.seq(1), 0, false);
        p.act("reset all", Action::Reset, 0, 0, true);
    }
    // ALL with zones in every condition.
    for (name, a) in acts {
        prepare(p, g);
        p.act(&format!("{name} all"), a, 0, 0, true);
        // ALL ignores ZONE ID and ZONE COUNT.
        p.act(&format!("{name} all id"), a, g.seq(1) + 1, 3, true);
    }
    // Bad zone IDs: a conventional zone, not a zone start, a gap zone,
    // the last LBA, past the end.
    for (name, a) in acts {
        if g.conv > 0 {
            p.act(&format!("{name} conv"), a, 0, 0, false);
        }
        p.act(&format!("{name} mid"), a, g.seq(0) + 1, 0, false);
        if g.gaps() {
            p.act(&format!("{name} gap"), a, g.seq(0) + g.cap, 0, false);
        }
        p.act(&format!("{name} last"), a, g.blocks - 1, 0, false);
        p.act(&format!("{name} past-end"), a, g.blocks, 0, false);
        // ZONE COUNT (ZBC-2 5.2): 1, 2, and running past the last zone.
        p.act(&format!("{name} count 1"), a, g.seq(2), 1, false);
        p.act(&format!("{name} count 2"), a, g.seq(2), 2, false);
        let last = g.zs(g.blocks.div_ceil(g.zone) - 1);
        p.act(&format!("{name} count past-end"), a, last, 2, false);
        p.act("reset all", Action::Reset, 0, 0, true);
    }
}

fn writes(p: &mut Pair<'_>, g: &Geo) {
    p.act("reset all", Action::Reset, 0, 0, true);
    let z = g.seq(0);
    p.write(g, "at-wp", z, 4);
    p.write(g, "at-wp again", z + 4, 4);
    p.write(g, "off-wp ahead", z + 16, 1);
    p.write(g, "off-wp behind", z + 2, 1);
    p.write(g, "to-cap-end", z + 8, (g.cap - 8) as u32);
    p.write(g, "full-zone", z + 4, 1);
    p.write(g, "full-zone start", z, 1);
    p.read(g, "back at-wp", z, 8);
    // Across the end of a zone's capacity (into the gap, or the next
    // zone): at the write pointer, and (both rules broken) above it.
    p.write(g, "fill", g.seq(1), (g.cap - 2) as u32);
    p.write(g, "cross-boundary at-wp", g.seq(1) + g.cap - 2, 4);
    p.write(g, "cross-boundary above-wp", g.seq(2) + g.cap - 2, 4);
    if g.gaps() {
        p.write(g, "in-gap", g.seq(1) + g.cap, 1);
    }
    if g.conv > 0 {
        let c = g.zs(g.conv) - 2;
        p.write(g, "conv", g.zs(0), 2);
        p.write(g, "conv-to-seq", c, 4);
    }
    p.write(g, "past-end", g.blocks - 1, 2);
    p.write(g, "zero-length", g.seq(2) + 3, 0);
    p.write(g, "zero-length at-wp", g.seq(2), 0);
    p.act("reset all", Action::Reset, 0, 0, true);
}

fn reads(p: &mut Pair<'_>, g: &Geo) {
    p.act("reset all", Action::Reset, 0, 0, true);
    let z = g.seq(0);
    p.write(g, "data", z, 4);
    p.read(g, "below-wp", z, 4);
    p.read(g, "past-wp", z + 2, 4);
    p.read(g, "empty-zone", g.seq(1), 2);
    p.read(g, "to-cap-end", z + g.cap - 2, 2);
    p.read(g, "cross-boundary", g.seq(1) + g.cap - 2, 4);
    if g.gaps() {
        p.read(g, "in-gap", z + g.cap, 2);
        p.read(g, "gap-to-seq", g.seq(1) - 1, 2);
    }
    if g.conv > 0 {
        // The conventional blocks read below, written here so earlier
        // groups' differences do not carry over.
        p.write(g, "conv tail", g.zs(g.conv) - 2, 2);
        p.read(g, "conv", 0, 2);
        p.read(g, "conv-to-seq", g.zs(g.conv) - 1, 2);
    }
    p.read(g, "last", g.blocks - 1, 1);
    p.read(g, "past-end", g.blocks - 1, 2);
    p.read(g, "zero-length", z, 0);
    p.act("reset all", Action::Reset, 0, 0, true);
}

/// VERIFY (16) (SBC-4 5.35) with Data-Out: BYTCHK 01b equal and not,
/// 11b, the reserved 10b, and past the end.
fn verify(p: &mut Pair<'_>, g: &Geo) {
    p.act("reset all", Action::Reset, 0, 0, true);
    let z = g.seq(0);
    p.write(g, "verify data", z, 2);
    let bs = usize::try_from(g.bs).unwrap_or(512);
    // What `Pair::write` wrote.
    let data: Vec<u8> = (0..2 * bs)
        .map(|i| (i as u64 ^ z.wrapping_mul(0x9e37)) as u8)
        .collect();
    let mut wrong = data.clone();
    wrong[bs + 3] ^= 0xff;
    let cdb = |b1: u8, lba: u64| {
        let mut c = [0u8; 16];
        c[0] = 0x8f;
        c[1] = b1;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[13] = 2;
        c
    };
    let one = data[..bs].to_vec();
    for (what, c, out) in [
        ("equal", cdb(0x02, z), data.clone()),
        ("miscompare", cdb(0x02, z), wrong),
        ("one block", cdb(0x06, z), one.clone()),
        ("bytchk 10b", cdb(0x04, z), one),
        ("past end", cdb(0x02, g.blocks - 1), data),
    ] {
        p.x(
            &format!("verify {what}"),
            &c,
            &Dir::Out(out),
            fields::status_fields,
        );
    }
    p.act("reset all", Action::Reset, 0, 0, true);
}

fn max_open(p: &mut Pair<'_>, g: &Geo) {
    let Some(max) = g.max_open.filter(|_| !g.host_aware) else {
        return;
    };
    let m = u64::from(max);
    p.act("reset all", Action::Reset, 0, 0, true);
    for i in 0..m {
        p.act(&format!("open {i}"), Action::Open, g.seq(i), 0, false);
    }
    p.act("open one more", Action::Open, g.seq(m), 0, false);
    p.write(g, "implicit open over limit", g.seq(m), 1);
    p.act("close one", Action::Close, g.seq(0), 0, false);
    p.write(g, "implicit open after close", g.seq(m), 1);
    p.act("reset all", Action::Reset, 0, 0, true);
    // Implicitly open zones give way to a new implicit open.
    for i in 0..=m {
        p.write(g, &format!("implicit {i}"), g.seq(i), 1);
    }
    p.act(
        "open explicit over implicit",
        Action::Open,
        g.seq(m + 1),
        0,
        false,
    );
    p.act("reset all", Action::Reset, 0, 0, true);
}
