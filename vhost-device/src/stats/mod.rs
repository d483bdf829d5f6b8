//! Counters: the one place that owns them. Front ends (nvme/, scsi/) and
//! transports report events through the narrow types here (typed counter
//! handles: [`fabric::FabricStats`], [`copy::CopyStats`]) and know nothing
//! of who reads them; main wires each [`StatsSource`] to the control
//! socket's registry, which sits on top and only reads.
//!
//! This module imports nothing from the front ends or the transports: an
//! event is described in plain values (names, numbers), not in protocol
//! types.

use serde_json::Value;

pub mod copy;
pub mod fabric;

/// Something that reports counters under a name in the control socket's
/// `stats` reply.
pub trait StatsSource: Send + Sync {
    /// Key in the `stats` response.
    fn name(&self) -> &str;
    /// The counters now.
    fn snapshot(&self) -> Value;
}
