//! Kill -9 the storage core during a write storm, many times, and check the
//! consistency rule of `storage::meta`: no acknowledged durable write is
//! lost, and no recovered write pointer is ahead of durable data.
//!
//! The writer runs in a child process (this same test binary, re-executed
//! with `ZC_CRASH_CHILD` set); it prints a line for every write that was
//! acknowledged as durable (by FUA or by a completed flush) and the parent
//! kills it at a pseudo-random moment.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use zonecopy_vhost::storage::{
    Device, DeviceConfig, Lba, ZoneAction, ZoneCondition, ZoneTarget, ZonedConfig,
};

const BS: u64 = 4096;
const ZONE_BLOCKS: u64 = 64;
const ZONES: u64 = 8;
const KILLS: u32 = 50;

fn config(dir: &Path) -> DeviceConfig {
    DeviceConfig {
        path: dir.join("data.img"),
        size: ZONES * ZONE_BLOCKS * BS,
        block_size: BS as u32,
        zoned: Some(ZonedConfig {
            zone_size: ZONE_BLOCKS * BS,
            zone_capacity: ZONE_BLOCKS * BS,
            conventional_zones: 0,
            max_open: 0,
            max_active: 0,
            ..Default::default()
        }),
    }
}

/// The block every LBA holds: its LBA repeated.
fn block(lba: u64) -> Vec<u8> {
    lba.to_le_bytes().repeat(BS as usize / 8)
}

/// The writer: fill zones at their write pointers forever, resetting full
/// ones, and report each durable write as `D <lba>` (all blocks of that
/// zone below it are durable too), each reset about to start as `r <zone>`
/// and each durable reset as `R <zone>`.
fn child(dir: &Path) {
    let dev = Device::open(&config(dir)).expect("child open");
    let mut n: u64 = 0;
    loop {
        for z in 0..ZONES {
            n += 1;
            let start = z * ZONE_BLOCKS;
            let zone = dev
                .report_zones(Lba::new(start), 1, |_| true)
                .expect("report")[0];
            if zone.cond == ZoneCondition::Full {
                if n.is_multiple_of(7) {
                    // Announced first: a kill between the reset and its
                    // report leaves the parent unsure, not wrong.
                    println!("r {z}");
                    dev.zone_action(ZoneAction::Reset, ZoneTarget::One(Lba::new(start)))
                        .expect("reset");
                    println!("R {z}");
                }
                continue;
            }
            let wp = zone.wp.get();
            let count = (1 + n % 3).min(start + ZONE_BLOCKS - wp);
            let data: Vec<u8> = (wp..wp + count).flat_map(block).collect();
            let fua = n.is_multiple_of(5);
            dev.write(Lba::new(wp), &data, fua).expect("write");
            if n.is_multiple_of(11) {
                dev.flush().expect("flush");
            }
            if fua || n.is_multiple_of(11) {
                println!("D {}", wp + count - 1);
            }
        }
    }
}

#[test]
fn crash_child_entry() {
    // Only does something when re-executed by `kill_during_write_storm`.
    if let Ok(dir) = std::env::var("ZC_CRASH_CHILD") {
        child(Path::new(&dir));
    }
}

#[test]
fn kill_during_write_storm() {
    let dir = tempfile::tempdir().unwrap();
    // Highest durable LBA per zone, or None after a durable reset.
    let mut durable: Vec<Option<u64>> = vec![None; ZONES as usize];
    let mut checked = 0u64;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for kill in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_entry",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ZC_CRASH_CHILD", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(20 + seed % 80);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let mut it = line.split_whitespace();
            match (it.next(), it.next().and_then(|v| v.parse::<u64>().ok())) {
                (Some("D"), Some(lba)) => durable[(lba / ZONE_BLOCKS) as usize] = Some(lba),
                (Some("r" | "R"), Some(z)) => durable[z as usize] = None,
                _ => {}
            }
        }
        let dev = Device::open(&config(dir.path())).expect("reopen after kill");
        for (z, d) in durable.iter().enumerate() {
            let start = z as u64 * ZONE_BLOCKS;
            let zone = dev.report_zones(Lba::new(start), 1, |_| true).unwrap()[0];
            let Some(last) = *d else { continue };
            assert!(
                zone.wp.get() > last,
                "kill {kill}: zone {z} recovered wp {} but LBA {last} was durable",
                zone.wp.get()
            );
            let count = last + 1 - start;
            let mut buf = vec![0u8; (count * BS) as usize];
            dev.read(Lba::new(start), &mut buf).unwrap();
            for (i, got) in buf.chunks_exact(BS as usize).enumerate() {
                assert_eq!(got, block(start + i as u64), "kill {kill}: LBA lost");
            }
            checked += count;
        }
        // Every recovered write pointer covers data that is really there:
        // the block just below each wp holds its own LBA.
        for z in 0..ZONES {
            let zone = dev
                .report_zones(Lba::new(z * ZONE_BLOCKS), 1, |_| true)
                .unwrap()[0];
            if zone.wp.get() > zone.start.get() {
                let mut buf = vec![0u8; BS as usize];
                dev.read(Lba::new(zone.wp.get() - 1), &mut buf).unwrap();
                assert_eq!(
                    buf,
                    block(zone.wp.get() - 1),
                    "kill {kill}: wp ahead of data"
                );
            }
        }
    }
    println!("crash test: {KILLS} kills, {checked} durable block checks, 0 durable writes lost");
}
