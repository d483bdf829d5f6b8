//! zonecopy guest tools: run inside the VM, drive the kernel's zone (and
//! later copy) paths on the devices the host attached, print KTAP.
//!
//! The library half holds what the host side may reuse, notably the
//! LBA-stamped block format ([`stamp`]) and the KTAP writer ([`ktap`]).

pub mod aio;
pub mod bench;
pub mod blkzoned;
pub mod blockio;
pub mod cmdline;
pub mod control;
pub mod diff;
pub mod diffcore;
pub mod diffnvme;
pub mod faultcheck;
pub mod hosttool;
pub mod kcopy;
pub mod killtest;
pub mod ktap;
pub mod nvme;
pub mod runner;
pub mod sgio;
pub mod smoke;
pub mod stamp;
pub mod suite;
pub mod sysfs;
pub mod xcopy;
pub mod zbc;
pub mod zonecheck;
