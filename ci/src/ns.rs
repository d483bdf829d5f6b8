//! The runner's default `--ns` specs. The spec itself is the contract
//! crate's [`NsArg`]: it renders both the backend's `--ns` and the guest's
//! `zonecopy.ns<N>=`, so the two cannot disagree.

use std::path::PathBuf;

pub use zonecopy_contract::arg::NsArg;

/// Namespaces for suites that need NVMe (`nvme`, `kcopy`) when no `--ns`
/// is given: a zoned namespace (NSID 1) and two conventional ones (NSID 2
/// and 3, so copies can cross namespaces).
pub const DEFAULT_NAMESPACES: [&str; 3] = [
    "kind=zns,size=256M,bs=4096,zone=4M,cap=4M",
    "kind=nvm,size=128M,bs=4096",
    "kind=nvm,size=64M,bs=4096",
];

/// Default backing file name of namespace `nsid` in the runner's temp dir.
pub fn default_file(nsid: usize) -> PathBuf {
    PathBuf::from(format!("ns{nsid}.img"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_to_both_sides() {
        let ns: Vec<NsArg> = DEFAULT_NAMESPACES
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            ns[0].spec.to_string(),
            "zns:bs=4096,size=268435456,zone=4194304,cap=4194304,conv=0"
        );
        assert_eq!(ns[1].spec.to_string(), "nvm:bs=4096,size=134217728");
        assert_eq!(
            ns[0].to_string(),
            "kind=zns,size=268435456,bs=4096,zone=4194304,cap=4194304"
        );
        assert_eq!(ns[1].to_string(), "kind=nvm,size=134217728,bs=4096");
    }
}
