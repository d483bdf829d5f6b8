//! The storage core: a backing file split into zones, with the zone state
//! machine and the data path. It knows no protocol: SCSI and NVMe front ends
//! translate their commands into these calls and map [`StorageError`] to
//! their own status values.

pub mod cache;
pub mod copy;
pub mod device;
pub mod error;
pub mod fault;
pub mod meta;
pub mod units;
pub mod zone;

pub use copy::{CopyFailure, CopyProgress, Segment};
pub use device::{
    ConfigError, Device, DeviceConfig, DeviceStats, Geometry, ZoneListener, ZonedConfig,
};
pub use error::StorageError;
pub use units::{BlockCount, Lba};
pub use zone::{Zone, ZoneAction, ZoneCondition, ZoneGeometry, ZoneRules, ZoneTarget, ZoneType};
