//! vhost-user-scsi transport (being written).
