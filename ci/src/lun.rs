//! The runner's default `--lun` specs per suite. The spec itself (its
//! parser, the backend's normalised form and the guest's
//! `zonecopy.lun<N>=` geometry) is the contract crate's [`LunArg`]: one
//! value renders both sides, so they cannot disagree.

pub use zonecopy_contract::arg::LunArg;
use zonecopy_contract::Suite;

/// LUNs used when none are given: two host-managed LUNs (the second with
/// zone capacity < zone size, and 512-byte blocks) and one plain disk.
pub const DEFAULT_LUNS: [&str; 3] = [
    "kind=hm,size=256M,bs=4096,zone=4M,cap=4M,conv=2",
    "kind=hm,size=128M,bs=512,zone=8M,cap=6M,conv=1",
    "kind=disk,size=64M,bs=512",
];

/// The `zbc` conformance suite's LUNs when none are given: a host-managed
/// LUN with gap zones (capacity < zone size) and open/active limits, a
/// 512-byte-block host-managed LUN with URSWRZ 0 and no gaps (restricted
/// reads, ZONE COUNT), a URSWRZ 0 LUN with gap zones, and a host aware
/// LUN (sequential write preferred zones).
pub const ZBC_LUNS: [&str; 4] = [
    "kind=hm,size=64M,bs=4096,zone=2M,cap=1536K,conv=2,max-open=4,max-active=6",
    "kind=hm,size=32M,bs=512,zone=1M,conv=1,urswrz=0",
    "kind=hm,size=8M,bs=4096,zone=1M,cap=512K,conv=0,urswrz=0",
    "kind=ha,size=16M,bs=4096,zone=1M,conv=1",
];

/// The `diff` suite's LUNs when none are given: what scsi_debug can be
/// given the same geometry of (whole MiB, power-of-two zones): a
/// host-managed LUN with gap zones and an open limit and no active limit
/// (scsi_debug has none), a host aware LUN, and two 4096-byte-block disks
/// for the EXTENDED COPY comparison with LIO.
pub const DIFF_LUNS: [&str; 4] = [
    "kind=hm,size=64M,bs=4096,zone=2M,cap=1M,conv=2,max-open=4,max-active=0",
    "kind=ha,size=32M,bs=4096,zone=2M,conv=1",
    "kind=disk,size=16M,bs=4096",
    "kind=disk,size=16M,bs=4096",
];

/// The LUN specs a suite gets when no `--lun` is given (the bench suite's
/// are in `needs::BENCH_LUNS`).
pub fn default_luns(suite: Option<Suite>) -> &'static [&'static str] {
    match suite {
        Some(Suite::Zbc) => &ZBC_LUNS,
        Some(Suite::Diff) => &DIFF_LUNS,
        _ => &DEFAULT_LUNS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(specs: &[&str]) -> Vec<LunArg> {
        specs.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn defaults_render_to_the_guest_contract() {
        let luns = parse(&DEFAULT_LUNS);
        assert_eq!(
            luns[0].spec.to_string(),
            "hm:bs=4096,size=268435456,zone=4194304,cap=4194304,conv=2"
        );
        assert_eq!(
            luns[1].spec.to_string(),
            "hm:bs=512,size=134217728,zone=8388608,cap=6291456,conv=1"
        );
        assert_eq!(luns[2].spec.to_string(), "disk:bs=512,size=67108864");
    }

    #[test]
    fn diff_defaults_parse() {
        let l = parse(default_luns(Some(Suite::Diff)));
        assert_eq!(l.len(), 4);
        // scsi_debug takes sizes in MiB.
        assert!(l
            .iter()
            .all(|l| l.spec.size % (1 << 20) == 0 && l.spec.block_size == 4096));
    }

    #[test]
    fn zbc_defaults_parse() {
        let l = parse(default_luns(Some(Suite::Zbc)));
        assert_eq!(
            l[0].to_string(),
            "kind=hm,size=67108864,bs=4096,zone=2097152,cap=1572864,conv=2,max-open=4,max-active=6"
        );
        assert!(l[1].to_string().ends_with(",urswrz=0"));
        assert!(l[2].spec.to_string().ends_with(",urswrz=0"));
        assert!(l[3].spec.to_string().starts_with("ha:"));
        assert_eq!(default_luns(Some(Suite::Smoke)), &DEFAULT_LUNS);
        assert_eq!(default_luns(None), &DEFAULT_LUNS);
    }
}
