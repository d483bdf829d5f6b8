//! The guest contract's kernel command line, as the host wrote it: the
//! keys, their values and the parser live in the contract crate
//! (`zonecopy_contract::cmdline`, shared with the runner that renders
//! them); this module names them for the suites.

pub use zonecopy_contract::{
    cmdline::{parse, CmdlineError, Config},
    nvme::{NvmeTarget, PeerNvme},
    spec::{LunKind, LunSpec, NsKind, NsSpec, SpecError, ZoneSpec},
};

/// Parses the value of `zonecopy.lun<N>=`.
pub fn parse_lun(value: &str) -> Result<LunSpec, SpecError> {
    value.parse()
}
