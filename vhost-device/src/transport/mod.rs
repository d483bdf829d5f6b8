//! Transports: move requests between a guest and the front ends.
//!
//! - [`virtio_scsi`]: the virtio-scsi request and response layouts
//!   (virtio 1.2, 5.6), as plain byte encoders and decoders.
//! - [`vhost_user_scsi`]: the vhost-user-backend device that runs the
//!   virtqueues against a [`crate::scsi::Target`].
//! - [`inflight`]: the inflight I/O tracking region of vhost-user
//!   (VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD), split queues.
//! - [`serve`]: the socket, the reconnect loop and shutdown.
//! - [`nvme_tcp`]: the NVMe/TCP target transport for [`crate::nvme`].

pub mod inflight;
pub mod nvme_pcie;
pub mod nvme_tcp;
pub mod serve;
pub mod vhost_user_scsi;
pub mod virtio_scsi;
