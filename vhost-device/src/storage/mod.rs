//! The storage core: a backing file split into zones, with the zone state
//! machine and the data path. It knows no protocol: SCSI and NVMe front ends
//! translate their commands into these calls and map [`StorageError`] to
//! their own status values.
//!
//! Layers, each using only those below it (no module reaches into
//! another's fields):
//!
//! ```text
//! copy     the copy engine: segments, progress, injected copy faults
//! device   the zoned device: zone table + metadata + statistics
//! fault    the fault rules, a layer around the media (FaultyMedia)
//! media    the Media trait: backing file or memory, with the write cache
//! zone, meta, error, units   the zone state machine, its store, the types
//! ```

pub mod copy;
pub mod device;
pub mod error;
pub mod fault;
pub mod media;
pub mod meta;
pub mod table;
pub mod units;
pub mod zone;

pub use copy::{CopyFailure, CopyProgress, Segment};
pub use device::{
    ConfigError, Device, DeviceConfig, DeviceStats, Geometry, ZoneListener, ZonedConfig,
};
pub use error::StorageError;
pub use units::{BlockCount, Lba};
pub use zone::{Zone, ZoneAction, ZoneCondition, ZoneGeometry, ZoneRules, ZoneTarget, ZoneType};
