//! zonecopy-vhost: a vhost-user backend that emulates zoned SCSI devices.
//!
//! Layers, inner first: [`storage`] (zones and the backing file, no
//! protocol), [`scsi`] (the SPC/SBC/ZBC front end), [`transport`]
//! (vhost-user-scsi). See ARCHITECTURE.md at the top of the repository.

pub mod config;
pub mod control;
pub mod nvme;
pub mod scsi;
pub mod storage;
pub mod transport;
