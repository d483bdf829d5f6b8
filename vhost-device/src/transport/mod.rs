//! Transports: move requests between a guest and the front ends.

pub mod vhost_user_scsi;
