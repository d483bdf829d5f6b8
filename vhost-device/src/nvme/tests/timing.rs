//! The timing model through the NVMe front end: a namespace with a
//! profile is charged its link and media bytes per command; one without
//! is not modeled at all.

use zonecopy_contract::timing::TimingProfile;

use super::*;
use crate::timing::DeviceTiming;

/// The rig with NSID 2 (NVM, 4 KiB blocks) modeled as `profile`.
fn timed(profile: &str) -> (Rig, Arc<DeviceTiming>) {
    let dir = tempfile::tempdir().unwrap();
    let mut specs = specs(&dir);
    let t = Arc::new(DeviceTiming::new(TimingProfile::builtin(profile).unwrap()));
    specs[1].timing = Some(Arc::clone(&t));
    let targets = targets_over(specs, Personality::NVME_2_1);
    (rig_over(dir, targets), t)
}

#[test]
fn reads_writes_and_copies_are_charged_link_and_media_bytes() {
    let (r, t) = timed("nvmeof-1gbe");
    let p = TimingProfile::builtin("nvmeof-1gbe").unwrap();
    let (cmd_b, cpl_b) = (p.link.command_bytes, p.link.completion_bytes);
    let data = pattern(0x10, 16, 4096);
    assert_eq!(status(&r.io, rw(0x01, 2, 0, 16, 4096), &data), 0);
    let c = t.counters();
    assert_eq!(c.commands, 1);
    assert_eq!(c.link_h2c_bytes, cmd_b + 65536);
    assert_eq!(c.link_c2h_bytes, cpl_b);
    assert_eq!((c.media_read_bytes, c.media_programmed_bytes), (0, 65536));
    // 64 KiB over 1 GbE: ~557 us on the wire, plus latencies.
    assert!(c.elapsed_ns > 557_000, "{c:?}");
    let after_write = c.elapsed_ns;

    assert_eq!(read(&r, 2, 0, 16, 4096), data);
    let c = t.counters();
    assert_eq!(c.link_c2h_bytes, 2 * cpl_b + 65536);
    assert_eq!(c.media_read_bytes, 65536);
    // The read arrived after the write's completion: it starts there.
    assert!(c.elapsed_ns > 2 * after_write - 1000, "{c:?}");

    let before = t.counters();
    assert_eq!(
        copy(&r, 2, 100, 0, &[range(0, 0, 0, 8), range(0, 0, 8, 8)]).status,
        0
    );
    let c = t.counters();
    assert_eq!(c.commands, 3);
    assert_eq!(c.media_copied_bytes, 65536);
    assert_eq!(c.media_read_bytes - before.media_read_bytes, 65536);
    // The descriptors cross the link; the data does not.
    assert_eq!(c.link_h2c_bytes - before.link_h2c_bytes, cmd_b + 64);
    assert!(
        c.link_h2c_busy_ns - before.link_h2c_busy_ns < 2_000,
        "{c:?}"
    );
    // A device-internal copy of 64 KiB (one stripe: one channel at 1/8 of
    // 2.78 GB/s, ~190 us, plus latencies), not the 1.1 ms the link would
    // take to carry it out and back.
    let took = c.elapsed_ns - before.elapsed_ns;
    assert!((250_000..557_000).contains(&took), "{took} ns");
}

#[test]
fn unmodeled_namespaces_and_refused_commands_cost_nothing_extra() {
    let (r, t) = timed("nvme-ssd");
    // NSID 3 has no profile.
    assert_eq!(
        status(&r.io, rw(0x01, 3, 0, 8, 512), &pattern(1, 8, 512)),
        0
    );
    assert_eq!(t.counters().commands, 0);
    // A read past the end of NSID 2 (LBA Out of Range, with DNR) is
    // modeled as a command that moved no media bytes.
    assert_eq!(status(&r.io, rw(0x02, 2, 300, 1, 4096), &[]), 0x6080);
    let c = t.counters();
    assert_eq!((c.commands, c.media_read_bytes), (1, 0));
}

#[test]
fn a_command_starts_when_it_was_admitted() {
    // A write admitted (its data still to come) while a read runs: both
    // start at the same virtual now, on opposite link directions, so
    // together they take about as long as one, not two.
    let (r, t) = timed("nvmeof-1gbe");
    let data = pattern(0x20, 16, 4096);
    let write = r.io.admit(&rw(0x01, 2, 0, 16, 4096));
    assert_eq!(read(&r, 2, 16, 16, 4096).len(), 65536);
    let one = t.counters().elapsed_ns;
    let mut out = Vec::new();
    let c = r.io.run(write, &data, &mut out).expect("not deferred");
    assert_eq!(c.status, 0);
    let both = t.counters().elapsed_ns;
    assert!(both < one + one / 10, "one {one} ns, both {both} ns");
    // Admitted after the read's completion was handed out: after it.
    assert_eq!(status(&r.io, rw(0x01, 2, 0, 16, 4096), &data), 0);
    assert!(t.counters().elapsed_ns > both + one / 2);
}
