//! What recording costs: 4 KiB commands at queue depth 1 (one WRITE(16)
//! then one READ(16) at a random block, alternating) through the SCSI
//! target's execute path, the entry the vhost-user transport calls, with
//! tracing off and on (whole data) in the same run, rounds interleaved;
//! prints IOPS of each and the ratio on/off.
//! `cargo bench -p zonecopy-vhost --bench trace_overhead [-- OPS ROUNDS]`
//! (defaults 20000 commands, 5 rounds).
//!
//! In-process, nothing but the emulation: this is the worst case. A guest
//! command also crosses virtio or TCP and QEMU, which take far longer than
//! the recording, so the share in a VM is smaller still.

use std::{sync::Arc, time::Instant};

use zonecopy_vhost::{
    scsi::{Request, Status, Target},
    storage::{Device, DeviceConfig},
    trace::{DataMode, TracedDevice, RECORDER},
};

const BLOCK: usize = 4096;
const BLOCKS: u64 = 16384;

fn cdb(op: u8, lba: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = op;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&1u32.to_be_bytes());
    c
}

/// `ops` commands; returns IOPS.
fn run(target: &Target, ops: u64, seed: &mut u64) -> f64 {
    let data = vec![0x5Au8; BLOCK];
    let mut back = Vec::with_capacity(BLOCK);
    let start = Instant::now();
    for i in 0..ops {
        // xorshift: a random block each pair.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let lba = *seed % BLOCKS;
        let write = i % 2 == 0;
        let c = cdb(if write { 0x8A } else { 0x88 }, lba);
        let mut out: &[u8] = if write { &data } else { &[] };
        back.clear();
        let resp = target.execute(Request {
            lun: 0,
            cdb: &c,
            data_out: &mut out,
            data_in: &mut back,
            data_in_len: BLOCK as u32,
            direct: None,
        });
        assert_eq!(resp.status, Status::Good, "{resp:?}");
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// Write back dirty pages (the previous round's trace, the image) so each
/// round starts with the same page cache state.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let ops: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(20000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lun0.img");
    let dev = Arc::new(
        Device::open(&DeviceConfig {
            path: path.clone(),
            size: BLOCKS * BLOCK as u64,
            block_size: BLOCK as u32,
            zoned: None,
        })
        .expect("device"),
    );
    let target = Target::new(vec![Arc::clone(&dev)]);
    RECORDER.set_up(
        vec!["zonecopy-vhost".into()],
        vec![TracedDevice {
            name: "lun0".into(),
            device: dev,
            path,
        }],
    );
    let trace = dir.path().join("bench.trace");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // Warm the page cache and the allocator.
    run(&target, ops / 4, &mut seed);
    let (mut off, mut whole, mut digest) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        settle();
        off.push(run(&target, ops, &mut seed));
        for (mode, v) in [
            (DataMode::Whole, &mut whole),
            (DataMode::Digest, &mut digest),
        ] {
            RECORDER.start(&trace, mode, None, 0).expect("trace start");
            // The image written at start is not the commands' cost.
            settle();
            v.push(run(&target, ops, &mut seed));
            RECORDER.stop().expect("trace stop");
        }
    }
    let (off, whole, digest) = (median(off), median(whole), median(digest));
    let overhead_us = (1.0 / whole - 1.0 / off) * 1e6;
    println!(
        "trace overhead, 4 KiB QD1 through scsi::Target::execute, median of {rounds} x {ops}: \
         off {off:.0} IOPS, whole data {whole:.0} IOPS (on/off {:.3}), digest {digest:.0} IOPS \
         (on/off {:.3}); recording adds {overhead_us:.2} us per command",
        whole / off,
        digest / off
    );
    println!(
        "# bench trace_overhead iops_off={off:.0} iops_whole={whole:.0} iops_digest={digest:.0} \
         ratio_whole={:.3} ratio_digest={:.3} overhead_us={overhead_us:.2}",
        whole / off,
        digest / off
    );
}
