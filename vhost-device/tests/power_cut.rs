//! Power loss, not just process death: the storage core runs over files on
//! lazyfs (`support::lazyfs`), which loses everything not synced when the
//! power goes. A seeded storm of writes (some FUA), flushes, zone actions
//! and copies runs against a zoned device and a plain one; the power is
//! cut just before a random FUSE request, so it lands in the middle of a
//! write, a flush's sync/persist sequence, a zone action or a copy. Then
//! the devices are dropped without a flush, reopened from the durable
//! state and checked against a model of what was acknowledged:
//! - every block acknowledged durable (by FUA or a completed flush) holds
//!   exactly what was written; any other block holds either its durable
//!   contents or something written since;
//! - in a sequential zone the recovered write pointer is at or past every
//!   acknowledged durable write and never past what was written, every
//!   block below it holds what was written there since the last reset, and
//!   every block past it reads as zeros;
//! - every zone's condition fits its write pointer (`storage::meta`).
//!
//! Every other reopen turns the volatile write cache on, and one reopen in
//! four is itself cut (in its discards past the write pointers).
//!
//! `ZC_POWER_CUTS=N` runs N cuts (default 300, about 10 s in a debug build) and prints the counts;
//! `ZC_POWER_SEED` picks the seed.

#[allow(dead_code)]
mod support;

use std::{path::Path, time::Instant};

use support::lazyfs::LazyFs;
use zonecopy_vhost::storage::{Device, DeviceConfig, ZoneAction, ZonedConfig};

const BS: u64 = 4096;
const ZONE: u64 = 32;
const ZONES: u64 = 8;
const CONV: u64 = 2;
const PLAIN: u64 = 64;

fn zoned(dir: &Path) -> DeviceConfig {
    DeviceConfig {
        path: dir.join("zoned.img"),
        size: ZONES * ZONE * BS,
        block_size: BS as u32,
        zoned: Some(ZonedConfig {
            zone_size: ZONE * BS,
            zone_capacity: ZONE * BS,
            conventional_zones: CONV as u32,
            unrestricted_reads: true,
            ..Default::default()
        }),
    }
}

fn plain(dir: &Path) -> DeviceConfig {
    DeviceConfig {
        path: dir.join("plain.img"),
        size: PLAIN * BS,
        block_size: BS as u32,
        zoned: None,
    }
}

/// Block contents: a token repeated; token 0 is zeros.
fn block(token: u64) -> Vec<u8> {
    token.to_le_bytes().repeat(BS as usize / 8)
}

fn token_of(b: &[u8]) -> Option<u64> {
    let t = u64::from_le_bytes(b[..8].try_into().ok()?);
    (block(t) == b).then_some(t)
}

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What a block may hold after a cut (conventional zones, plain device).
#[derive(Clone, Debug, Default)]
struct Blk {
    durable: u64,
    pending: Vec<u64>,
}

impl Blk {
    fn now(&self) -> u64 {
        self.pending.last().copied().unwrap_or(self.durable)
    }

    fn make_durable(&mut self) {
        self.durable = self.now();
        self.pending.clear();
    }
}

/// A sequential zone: what was written since its last reset, the write
/// pointer acknowledged durable and the one reached.
#[derive(Clone, Debug)]
struct SeqZone {
    start: u64,
    written: Vec<Option<u64>>,
    durable_wp: u64,
    wp: u64,
}

impl SeqZone {
    fn end(&self) -> u64 {
        self.start + ZONE
    }
}

/// The model of both devices.
#[derive(Clone, Debug)]
struct Model {
    /// Conventional blocks of the zoned device, then the plain device's.
    conv: Vec<Blk>,
    plain: Vec<Blk>,
    seq: Vec<SeqZone>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dev {
    Zoned,
    Plain,
}

impl Model {
    /// The blocks' current contents as the model sees them.
    fn now(&self, dev: Dev, lba: u64) -> u64 {
        match dev {
            Dev::Plain => self.plain[lba as usize].now(),
            Dev::Zoned if lba < CONV * ZONE => self.conv[lba as usize].now(),
            Dev::Zoned => {
                let z = &self.seq[(lba / ZONE - CONV) as usize];
                z.written[(lba - z.start) as usize].unwrap_or(0)
            }
        }
    }

    /// A completed write of `tokens` at `lba`; `fua` makes it durable.
    fn wrote(&mut self, dev: Dev, lba: u64, tokens: &[u64], fua: bool) {
        for (i, &t) in tokens.iter().enumerate() {
            let b = lba + i as u64;
            let blk = match dev {
                Dev::Plain => &mut self.plain[b as usize],
                Dev::Zoned if b < CONV * ZONE => &mut self.conv[b as usize],
                Dev::Zoned => {
                    let z = &mut self.seq[(b / ZONE - CONV) as usize];
                    z.written[(b - z.start) as usize] = Some(t);
                    z.wp = z.wp.max(b + 1);
                    if fua {
                        z.durable_wp = z.durable_wp.max(b + 1);
                    }
                    continue;
                }
            };
            blk.pending.push(t);
            if fua {
                blk.make_durable();
            }
        }
    }

    fn flushed(&mut self, dev: Dev) {
        match dev {
            Dev::Plain => self.plain.iter_mut().for_each(Blk::make_durable),
            Dev::Zoned => {
                self.conv.iter_mut().for_each(Blk::make_durable);
                for z in &mut self.seq {
                    z.durable_wp = z.wp;
                }
            }
        }
    }

    /// A completed zone action on sequential zone `i`: durable on return.
    fn zone_action(&mut self, i: usize, action: ZoneAction) {
        let z = &mut self.seq[i];
        match action {
            ZoneAction::Reset => {
                z.written = vec![None; ZONE as usize];
                z.wp = z.start;
            }
            ZoneAction::Finish => z.wp = z.end(),
            ZoneAction::Open | ZoneAction::Close => {}
        }
        z.durable_wp = z.wp;
    }
}

struct Devices {
    zoned: Device,
    plain: Device,
}

impl Devices {
    /// Open both devices, with the volatile write cache (`storage::media::cache`)
    /// on or off.
    fn open(dir: &Path, cache: bool) -> Result<Self, String> {
        let open = |cfg: &DeviceConfig| {
            let dev = Device::open(cfg).map_err(|e| format!("open {:?}: {e}", cfg.path))?;
            dev.set_volatile_cache(cache)
                .map_err(|e| format!("cache on {:?}: {e}", cfg.path))?;
            Ok::<_, String>(dev)
        };
        Ok(Devices {
            zoned: open(&zoned(dir))?,
            plain: open(&plain(dir))?,
        })
    }

    fn dev(&self, d: Dev) -> &Device {
        match d {
            Dev::Zoned => &self.zoned,
            Dev::Plain => &self.plain,
        }
    }
}

#[derive(Default)]
struct Tally {
    ops: u64,
    /// Cuts that hit the recovery (the reopen) itself.
    recovery_cuts: u64,
    in_flight: [u64; 4],
    durable_blocks_checked: u64,
    blocks_checked: u64,
    zones_checked: u64,
}

#[path = "power_cut/storm.rs"]
mod storm;

#[test]
fn power_cuts_lose_no_acknowledged_write() {
    if let Some(why) = LazyFs::unavailable() {
        eprintln!("SKIP: the power-cut storm needs FUSE: {why}");
        return;
    }
    let cuts: u64 = std::env::var("ZC_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("ZC_POWER_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let fs = LazyFs::mount().expect("mount lazyfs");
    let start = Instant::now();
    let tally = storm::run(&fs, seed, cuts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let took = start.elapsed();
    let counts = fs.counts();
    eprintln!(
        "power cuts: {} (seed {seed}), device ops {}, cut mid-write/flush/zone/copy {:?}, \
         cut mid-recovery {}, durable blocks verified {}, blocks verified {}, zones verified \
         {}, file syncs {}, dir syncs {}, {:.1} ms per cut",
        counts.cuts,
        tally.ops,
        tally.in_flight,
        tally.recovery_cuts,
        tally.durable_blocks_checked,
        tally.blocks_checked,
        tally.zones_checked,
        counts.file_syncs,
        counts.dir_syncs,
        took.as_secs_f64() * 1000.0 / cuts.max(1) as f64,
    );
    assert_eq!(counts.cuts, cuts + tally.recovery_cuts);
    assert!(
        tally.durable_blocks_checked > 0,
        "nothing durable was ever checked"
    );
}
