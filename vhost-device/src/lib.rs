//! zonecopy-vhost: a vhost-user backend that emulates zoned SCSI devices.
//!
//! Layers, inner first: [`storage`] (zones and the backing file, no
//! protocol), [`scsi`] (the SPC/SBC/ZBC front end), [`transport`]
//! (vhost-user-scsi). See ARCHITECTURE.md at the top of the repository.

pub mod config;
pub mod control;
pub mod nvme;
pub mod scsi;
pub mod stats;
pub mod storage;
pub mod timing;
pub mod trace;
pub mod transport;

/// Test support shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// A property test's configuration: `default` cases, or the count in
    /// `PROPTEST_CASES` when set (proptest's own variable, which an explicit
    /// case count would otherwise override): the long mode,
    /// `scripts/proptest-long.sh`, sets it to a million.
    pub(crate) fn cases(default: u32) -> proptest::test_runner::Config {
        let n = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default);
        proptest::test_runner::Config::with_cases(n)
    }
}
