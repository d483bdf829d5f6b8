//! REPORT ZONES of the model, and the model against the device's and the kernel's zones.

use super::*;

impl Model {
    /// The device put zone `i` in READ ONLY or OFFLINE on its own (ZBC-2
    /// 4.4.3.2.6, 4.4.3.2.8): it no longer holds resources, and its write
    /// pointer is invalid.
    pub fn set_condition(&mut self, i: usize, cond: Cond) {
        self.set_cond(i, cond);
    }

    /// Whether `z` matches REPORT ZONES reporting option `opt`.
    pub fn matches(z: &Zone, opt: u8) -> bool {
        match opt {
            0x00 => true,
            0x01 => z.cond == Cond::Empty,
            0x02 => z.cond == Cond::ImpOpen,
            0x03 => z.cond == Cond::ExpOpen,
            0x04 => z.cond == Cond::Closed,
            0x05 => z.cond == Cond::Full,
            0x06 => z.cond == Cond::ReadOnly,
            0x07 => z.cond == Cond::Offline,
            // INACTIVE: a condition of zone domains devices only; these
            // logical units have none.
            0x08 => false,
            0x10 => z.reset,
            0x11 => z.non_seq,
            // "List all zones except gap zones" (not: only gap zones).
            0x3e => z.ztype != ZoneType::Gap,
            0x3f => z.cond == Cond::NotWp,
            _ => false,
        }
    }

    /// REPORT ZONES (ZBC-2 6.4): the zones matching `opt` from the one
    /// containing `start` to the last.
    pub fn report(&self, start: u64, opt: u8) -> Result<Vec<Zone>, Violation> {
        if !REPORT_OPTIONS.contains(&opt) {
            return Err(Violation::InvalidField(Field::Any));
        }
        let i = self.zone_index(start).ok_or(Violation::LbaOutOfRange)?;
        Ok(self.zones[i..]
            .iter()
            .filter(|z| Self::matches(z, opt))
            .copied()
            .collect())
    }

    /// The ZONE LIST LENGTH REPORT ZONES must return for `matching` zones
    /// and allocation length `alloc` (ZBC-2 6.4.3.2: with PARTIAL 0 the
    /// whole list whatever the allocation length, with PARTIAL 1 only the
    /// descriptors that fit).
    pub fn zone_list_length(matching: usize, alloc: u32, partial: bool) -> u64 {
        let all = matching as u64;
        let n = if partial {
            all.min(u64::from(alloc).saturating_sub(64) / 64)
        } else {
            all
        };
        n * 64
    }

    /// After a device step: if the last operation closed an implicitly
    /// opened zone and the device closed another of the candidates, take
    /// the device's choice (ZBC-2 leaves it to the device server). Returns
    /// the zone the device closed, if it differs from the model's choice.
    pub fn adopt_eviction(&mut self, device: &[Zone]) -> Option<usize> {
        let ev = self.last_eviction.clone()?;
        let closed_by_device = |j: usize| {
            device
                .iter()
                .find(|d| d.start == self.zones[j].start)
                .is_some_and(|d| d.cond == Cond::Closed)
        };
        if closed_by_device(ev.chosen) {
            return None;
        }
        let other = ev
            .candidates
            .iter()
            .copied()
            .find(|&j| j != ev.chosen && closed_by_device(j))?;
        // Undo the model's choice, make the device's.
        self.zones[ev.chosen].cond = Cond::ImpOpen;
        self.zones[other].cond = Cond::Closed;
        self.imp_order.retain(|&j| j != other);
        let pos = ev
            .candidates
            .iter()
            .position(|&j| j == ev.chosen)
            .unwrap_or(0);
        self.imp_order
            .insert(pos.min(self.imp_order.len()), ev.chosen);
        self.last_eviction = Some(Eviction {
            chosen: other,
            candidates: ev.candidates,
        });
        Some(other)
    }

    /// Differences between the device's zones (a full REPORT ZONES from LBA
    /// 0 with option 00h) and the model, one line each; empty if equal.
    pub fn diff(&self, device: &[Zone]) -> Vec<String> {
        diff_zones(&self.zones, device)
    }
}

/// Differences between `want` (the model) and `got` (the device), field by
/// field, the write pointer only where it is valid.
pub fn diff_zones(want: &[Zone], got: &[Zone]) -> Vec<String> {
    diff_each(
        want,
        got,
        |w: &Zone| format!("at {}", w.start),
        |w, g| {
            let mut bad = Vec::new();
            if g.start != w.start {
                bad.push(format!("start {} (expected {})", g.start, w.start));
            }
            if g.len != w.len {
                bad.push(format!("len {} (expected {})", g.len, w.len));
            }
            type_cond(
                &mut bad,
                (g.ztype.code(), g.cond.code()),
                (w.ztype.code(), w.cond.code()),
            );
            if w.wp_valid() && g.wp != w.wp {
                bad.push(format!("wp {} (expected {})", g.wp, w.wp));
            }
            if g.non_seq != w.non_seq {
                bad.push(format!("non_seq {} (expected {})", g.non_seq, w.non_seq));
            }
            if g.reset != w.reset {
                bad.push(format!("reset {} (expected {})", g.reset, w.reset));
            }
            bad
        },
    )
}

/// A zone as the kernel reports it (`struct blk_zone`), in 512-byte
/// sectors: gap zones hidden, each write pointer zone as long as the zone
/// starting LBA granularity with its writable part as the capacity, the
/// write pointer of a FULL zone at the zone end (Linux sd_zbc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KZone {
    /// Start sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Write pointer, where the model knows it.
    pub wp: Option<u64>,
    /// `BLK_ZONE_TYPE_*` (the ZBC zone type code).
    pub type_: u8,
    /// `BLK_ZONE_COND_*` (the ZBC zone condition code).
    pub cond: u8,
    /// Non-sequential write resources active.
    pub non_seq: bool,
    /// Reset recommended.
    pub reset: bool,
}

impl Model {
    /// The kernel's view of the zones (see [`KZone`]).
    pub fn kernel_view(&self) -> Vec<KZone> {
        let spb = (self.layout.block_size / 512).max(1);
        let mut out = Vec::new();
        for z in &self.zones {
            if z.ztype == ZoneType::Gap {
                continue;
            }
            let len = if z.ztype.has_wp() {
                self.layout.zone_blocks.min(self.layout.blocks - z.start)
            } else {
                z.len
            };
            let wp = if z.cond == Cond::Full {
                Some(z.start + len)
            } else if z.wp_valid() {
                Some(z.wp)
            } else {
                None
            };
            out.push(KZone {
                start: z.start * spb,
                len: len * spb,
                capacity: z.len * spb,
                wp: wp.map(|w| w * spb),
                type_: z.ztype.code(),
                cond: z.cond.code(),
                non_seq: z.non_seq,
                reset: z.reset,
            });
        }
        out
    }
}

/// Differences between the kernel's zones and [`Model::kernel_view`]; the
/// capacity only if `with_capacity` (the report carried it).
pub fn diff_kernel(want: &[KZone], got: &[KZone], with_capacity: bool) -> Vec<String> {
    diff_each(
        want,
        got,
        |w: &KZone| format!("at sector {}", w.start),
        |w, g| {
            let mut bad = Vec::new();
            if g.start != w.start || g.len != w.len {
                bad.push(format!(
                    "start {} len {} (expected {} {})",
                    g.start, g.len, w.start, w.len
                ));
            }
            if with_capacity && g.capacity != w.capacity {
                bad.push(format!("cap {} (expected {})", g.capacity, w.capacity));
            }
            type_cond(&mut bad, (g.type_, g.cond), (w.type_, w.cond));
            if let Some(wp) = w.wp {
                if g.wp != Some(wp) {
                    bad.push(format!(
                        "wp {} (expected {wp})",
                        g.wp.map_or("?".into(), |v| v.to_string())
                    ));
                }
            }
            if g.non_seq != w.non_seq || g.reset != w.reset {
                bad.push(format!(
                    "non_seq {} reset {} (expected {} {})",
                    g.non_seq, g.reset, w.non_seq, w.reset
                ));
            }
            bad
        },
    )
}

/// Two reports zone by zone: the count, then each zone's differing fields
/// (`fields(want, got)`), named by `at`.
fn diff_each<T>(
    want: &[T],
    got: &[T],
    at: impl Fn(&T) -> String,
    fields: impl Fn(&T, &T) -> Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    if want.len() != got.len() {
        out.push(format!(
            "{} zones reported, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        let bad = fields(w, g);
        if !bad.is_empty() {
            out.push(format!("zone {i} {}: {}", at(w), bad.join(", ")));
        }
    }
    out
}

/// Zone type and condition codes (got, want), named where they differ.
fn type_cond(bad: &mut Vec<String>, got: (u8, u8), want: (u8, u8)) {
    if got.0 != want.0 {
        bad.push(format!(
            "type {} (expected {})",
            type_name(got.0),
            type_name(want.0)
        ));
    }
    if got.1 != want.1 {
        bad.push(format!(
            "cond {} (expected {})",
            cond_name(got.1),
            cond_name(want.1)
        ));
    }
}
