//! The storm: random operations until the armed cut hits one, then reopen
//! and check against the model.

use zonecopy_vhost::storage::{BlockCount, Lba, Zone, ZoneCondition, ZoneTarget};

use super::*;

#[derive(Clone, Debug)]
enum Op {
    Write {
        dev: Dev,
        lba: u64,
        tokens: Vec<u64>,
        fua: bool,
    },
    Flush(Dev),
    /// A zone action on sequential zone `zone` (index), or on all of them.
    Zone {
        zone: Option<usize>,
        action: ZoneAction,
    },
    /// `tokens` are what the source held when the copy was picked.
    Copy {
        src: Dev,
        src_lba: u64,
        dst: Dev,
        dst_lba: u64,
        tokens: Vec<u64>,
    },
}

impl Op {
    fn kind(&self) -> usize {
        match self {
            Op::Write { .. } => 0,
            Op::Flush(_) => 1,
            Op::Zone { .. } => 2,
            Op::Copy { .. } => 3,
        }
    }
}

/// A destination for `want` blocks: a conventional range, a sequential
/// zone's write pointer or a plain range. None when the zone picked is full.
fn pick_dst(rng: &mut Rng, m: &Model, want: u64) -> Option<(Dev, u64, u64)> {
    match rng.below(3) {
        0 => Some((Dev::Zoned, rng.below(CONV * ZONE - want), want)),
        1 => {
            let z = &m.seq[rng.below(ZONES - CONV) as usize];
            let room = z.end() - z.wp;
            (room > 0).then(|| (Dev::Zoned, z.wp, want.min(room)))
        }
        _ => Some((Dev::Plain, rng.below(PLAIN - want), want)),
    }
}

fn pick(rng: &mut Rng, m: &Model, next: &mut u64) -> Op {
    let r = rng.below(100);
    if r < 50 {
        let want = 1 + rng.below(4);
        if let Some((dev, lba, n)) = pick_dst(rng, m, want) {
            let tokens = (0..n)
                .map(|_| {
                    *next += 1;
                    *next
                })
                .collect();
            return Op::Write {
                dev,
                lba,
                tokens,
                fua: rng.below(5) == 0,
            };
        }
    }
    if r < 62 {
        return Op::Flush(if rng.below(2) == 0 {
            Dev::Zoned
        } else {
            Dev::Plain
        });
    }
    if r < 80 {
        let zone = rng.below(ZONES - CONV) as usize;
        let full = m.seq[zone].wp == m.seq[zone].end();
        let action = match rng.below(10) {
            0..=2 if !full => ZoneAction::Open,
            3..=4 if !full => ZoneAction::Close,
            5..=6 => ZoneAction::Finish,
            _ => ZoneAction::Reset,
        };
        let all = action == ZoneAction::Reset && rng.below(8) == 0;
        return Op::Zone {
            zone: (!all).then_some(zone),
            action,
        };
    }
    let want = 1 + rng.below(4);
    let (src, src_lba) = match rng.below(3) {
        0 => (Dev::Zoned, rng.below(CONV * ZONE - want)),
        1 => {
            let z = CONV + rng.below(ZONES - CONV);
            (Dev::Zoned, z * ZONE + rng.below(ZONE - want))
        }
        _ => (Dev::Plain, rng.below(PLAIN - want)),
    };
    match pick_dst(rng, m, want) {
        Some((dst, dst_lba, n)) => Op::Copy {
            src,
            src_lba,
            dst,
            dst_lba,
            tokens: (0..n).map(|i| m.now(src, src_lba + i)).collect(),
        },
        None => Op::Flush(Dev::Zoned),
    }
}

fn run_op(op: &Op, d: &Devices) -> Result<(), String> {
    let res = match op {
        Op::Write {
            dev,
            lba,
            tokens,
            fua,
        } => {
            let data: Vec<u8> = tokens.iter().flat_map(|&t| block(t)).collect();
            d.dev(*dev).write(Lba::new(*lba), &data, *fua)
        }
        Op::Flush(dev) => d.dev(*dev).flush(),
        Op::Zone { zone, action } => {
            let target = match zone {
                Some(i) => ZoneTarget::One(Lba::new((CONV + *i as u64) * ZONE)),
                None => ZoneTarget::All,
            };
            d.zoned.zone_action(*action, target)
        }
        Op::Copy {
            src,
            src_lba,
            dst,
            dst_lba,
            tokens,
        } => d
            .dev(*dst)
            .copy_from(
                Lba::new(*dst_lba),
                d.dev(*src),
                Lba::new(*src_lba),
                BlockCount::new(tokens.len() as u64),
            )
            .map(drop),
    };
    res.map_err(|e| e.to_string())
}

/// The model after `op`; `done` = it completed (a FUA or flush that did not
/// complete acknowledged nothing). A zone action is applied either way: the
/// check accepts each zone as before or after it.
fn apply(m: &mut Model, op: &Op, done: bool) {
    match op {
        Op::Write {
            dev,
            lba,
            tokens,
            fua,
        } => m.wrote(*dev, *lba, tokens, *fua && done),
        Op::Copy {
            dst,
            dst_lba,
            tokens,
            ..
        } => m.wrote(*dst, *dst_lba, tokens, false),
        Op::Flush(dev) if done => m.flushed(*dev),
        Op::Flush(_) => {}
        Op::Zone { zone, action } => match zone {
            Some(i) => m.zone_action(*i, *action),
            None => (0..m.seq.len()).for_each(|i| m.zone_action(i, *action)),
        },
    }
}

fn tokens(dev: &Device, blocks: u64) -> Result<Vec<u64>, String> {
    let mut buf = vec![0u8; (blocks * BS) as usize];
    dev.read(Lba::new(0), &mut buf)
        .map_err(|e| format!("read back: {e}"))?;
    buf.chunks(BS as usize)
        .enumerate()
        .map(|(i, b)| token_of(b).ok_or_else(|| format!("block {i} is torn or foreign")))
        .collect()
}

/// The recovered write pointer of a sequential zone, if its condition fits.
fn recovered_wp(z: &Zone) -> Result<u64, String> {
    let (start, cap_end, wp) = (z.start.get(), z.cap_end().get(), z.wp.get());
    let ok = match z.cond {
        ZoneCondition::Empty => wp == start,
        ZoneCondition::Full => true,
        ZoneCondition::Closed | ZoneCondition::ImplicitOpen | ZoneCondition::ExplicitOpen => {
            start < wp && wp < cap_end
        }
        _ => false,
    };
    if !ok {
        return Err(format!("zone {start}: condition {:?} with wp {wp}", z.cond));
    }
    Ok(if z.cond == ZoneCondition::Full {
        cap_end
    } else {
        wp
    })
}

/// Check one sequential zone against one model of it; the count of blocks
/// acknowledged durable that were verified.
fn check_zone(z: &Zone, m: &SeqZone, data: &[u64]) -> Result<u64, String> {
    let r = recovered_wp(z)?;
    if r < m.durable_wp {
        return Err(format!(
            "zone {}: wp {r} behind the durable wp {}: acknowledged writes lost",
            m.start, m.durable_wp
        ));
    }
    if r > m.wp {
        return Err(format!(
            "zone {}: wp {r} ahead of what was written ({})",
            m.start, m.wp
        ));
    }
    for b in m.start..m.end() {
        let want = if b < r {
            m.written[(b - m.start) as usize].unwrap_or(0)
        } else {
            0
        };
        let got = data[b as usize];
        if got != want {
            return Err(format!(
                "zone {}: block {b} holds {got}, want {want} (wp {r}, durable wp {})",
                m.start, m.durable_wp
            ));
        }
    }
    Ok((m.start..m.durable_wp)
        .filter(|b| m.written[(b - m.start) as usize].is_some())
        .count() as u64)
}

fn check_blocks(what: &str, data: &[u64], model: &[Blk], tally: &mut Tally) -> Result<(), String> {
    for (lba, (&got, b)) in data.iter().zip(model).enumerate() {
        if got != b.durable && !b.pending.contains(&got) {
            return Err(format!(
                "{what} block {lba} holds {got}: durable {}, written since {:?}",
                b.durable, b.pending
            ));
        }
        tally.blocks_checked += 1;
        if b.durable != 0 && b.pending.is_empty() {
            tally.durable_blocks_checked += 1;
        }
    }
    Ok(())
}

/// Check the reopened devices; `new` has the interrupted operation applied,
/// `old` does not. Returns the model of what they now hold.
fn check(d: &Devices, new: &Model, old: &Model, tally: &mut Tally) -> Result<Model, String> {
    let plain = tokens(&d.plain, PLAIN)?;
    check_blocks("plain", &plain, &new.plain, tally)?;
    let zoned = tokens(&d.zoned, ZONES * ZONE)?;
    check_blocks(
        "conventional",
        &zoned[..(CONV * ZONE) as usize],
        &new.conv,
        tally,
    )?;
    let zones = d
        .zoned
        .report_zones(Lba::new(0), ZONES as usize, |_| true)
        .map_err(|e| e.to_string())?;
    let mut seq = Vec::new();
    for (i, z) in zones.iter().filter(|z| z.is_sequential()).enumerate() {
        let n = check_zone(z, &new.seq[i], &zoned).or_else(|e| {
            check_zone(z, &old.seq[i], &zoned)
                .map_err(|o| format!("{e}; or, before the interrupted operation: {o}"))
        })?;
        tally.durable_blocks_checked += n;
        tally.blocks_checked += ZONE;
        tally.zones_checked += 1;
        let r = recovered_wp(z)?;
        seq.push(SeqZone {
            start: z.start.get(),
            written: (z.start.get()..z.start.get() + ZONE)
                .map(|b| (b < r).then_some(zoned[b as usize]))
                .collect(),
            durable_wp: r,
            wp: r,
        });
    }
    let blk = |t: &u64| Blk {
        durable: *t,
        pending: Vec::new(),
    };
    Ok(Model {
        conv: zoned[..(CONV * ZONE) as usize].iter().map(blk).collect(),
        plain: plain.iter().map(blk).collect(),
        seq,
    })
}

/// Run `cuts` power cuts.
pub fn run(fs: &LazyFs, seed: u64, cuts: u64) -> Result<Tally, String> {
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    let mut devs = Devices::open(fs.path(), false)?;
    let mut model = check(&devs, &fresh(), &fresh(), &mut tally)?;
    let mut next = 0u64;
    for cut in 0..cuts {
        fs.arm_cut(1 + rng.below(100));
        let (op, before) = loop {
            let op = pick(&mut rng, &model, &mut next);
            let before = model.clone();
            match run_op(&op, &devs) {
                Ok(()) => apply(&mut model, &op, true),
                Err(_) if !fs.armed() => break (op, before),
                Err(e) => return Err(format!("cut {cut}: {op:?} failed with power on: {e}")),
            }
            tally.ops += 1;
        };
        tally.in_flight[op.kind()] += 1;
        let mut after = before.clone();
        apply(&mut after, &op, false);
        // Power back on: the old devices go without a flush (their files
        // are dead handles now), new ones recover from the durable state.
        drop(devs);
        devs = reopen(fs, &mut rng, cut % 2 == 0, &mut tally)?;
        model = check(&devs, &after, &before, &mut tally)
            .map_err(|e| format!("cut {cut}, interrupted {op:?}: {e}"))?;
    }
    Ok(tally)
}

/// Power back on and reopen; one time in four the power goes again during
/// the recovery (which changes nothing durable that the model sees).
fn reopen(fs: &LazyFs, rng: &mut Rng, cache: bool, tally: &mut Tally) -> Result<Devices, String> {
    if rng.below(4) == 0 {
        fs.arm_cut(1 + rng.below(4));
    }
    loop {
        let armed = fs.armed();
        let res = Devices::open(fs.path(), cache);
        if armed && !fs.armed() {
            tally.recovery_cuts += 1;
            drop(res);
            continue;
        }
        fs.disarm();
        return res;
    }
}

fn fresh() -> Model {
    Model {
        conv: vec![Blk::default(); (CONV * ZONE) as usize],
        plain: vec![Blk::default(); PLAIN as usize],
        seq: (CONV..ZONES)
            .map(|z| SeqZone {
                start: z * ZONE,
                written: vec![None; ZONE as usize],
                durable_wp: z * ZONE,
                wp: z * ZONE,
            })
            .collect(),
    }
}
