//! The contract between zonecopy's three binaries (ARCHITECTURE.md "The
//! guest contract"): what the host runner (`zonecopy-ci`) tells the backend
//! (`zonecopy-vhost`) and the guest (`zonecopy-guest`), written once.
//!
//! - [`size`]: byte counts with K/M/G/T suffixes.
//! - [`spec`]: device geometry as the guest sees it (`hm:bs=..,size=..`),
//!   one parser and one `Display` per kind of spec.
//! - [`arg`]: the backend's and runner's `--lun` / `--ns` specs
//!   (`kind=hm,size=256M,...`): geometry plus what only the backend needs
//!   (backing file, zone limits, copy limits, cache).
//! - [`nvme`]: the NVMe transport (`zonecopy.nvme=`) and the diff-nvme
//!   peer (`zonecopy.peer-nvme=`).
//! - [`cmdline`]: every `zonecopy.*` kernel command-line key, the host's
//!   renderer and the guest's parser.
//! - [`suite`]: the suite names.
//! - [`control`]: the control protocol's requests and replies.
//! - [`timing`]: device timing profiles (`--timing`, `timing=`).
//! - [`fio`]: the bench suite's fio rounds (`zonecopy.fio=`).
//!
//! Adding a spec key: the type's `FromStr` and `Display` here (their
//! round-trip property test must keep passing), then whoever uses it.

pub mod arg;
pub mod cmdline;
pub mod control;
pub mod fio;
pub mod nvme;
pub mod size;
pub mod spec;
pub mod suite;
pub mod timing;

pub use suite::Suite;
