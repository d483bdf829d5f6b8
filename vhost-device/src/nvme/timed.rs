//! The NVMe front end's part of the device timing model
//! (`crate::timing`): a command on a namespace with a profile is charged
//! its link bytes (the command and completion as the profile sizes them,
//! plus the data its admission moved) and the media bytes the storage
//! core counted while it ran (`DeviceStats`: host reads, writes and
//! device-internal copies). Without a profile this is one branch.

use super::{DataDirection, Namespace};
use crate::timing::Work;

/// Media bytes a device had moved: (read, written, copied).
fn moved(ns: &Namespace) -> (u64, u64, u64) {
    let s = ns.device.stats();
    (s.read_bytes(), s.written_bytes(), s.copied_bytes())
}

/// Run `run` (the command on `ns`, if any) and charge it to the
/// namespace's timing model, if it has one, from its virtual arrival
/// (taken at admission: a command admitted while another's data was still
/// arriving starts beside it, not after it).
pub(super) fn run<T>(
    ns: Option<&Namespace>,
    data: DataDirection,
    arrived: Option<u64>,
    run: impl FnOnce() -> T,
) -> T {
    let Some((ns, timing)) = ns.and_then(|ns| Some((ns, ns.timing.as_deref()?))) else {
        return run();
    };
    let flight = timing.begin(arrived);
    let before = moved(ns);
    let out = run();
    let after = moved(ns);
    let link = &flight.profile().link;
    let (h2c, c2h) = match data {
        DataDirection::None => (0, 0),
        DataDirection::HostToController(n) => (u64::from(n), 0),
        DataDirection::ControllerToHost(n) => (0, u64::from(n)),
    };
    let work = Work {
        h2c_bytes: link.command_bytes.saturating_add(h2c),
        c2h_bytes: link.completion_bytes.saturating_add(c2h),
        media_read: after.0.saturating_sub(before.0),
        media_write: after.1.saturating_sub(before.1),
        media_copy: after.2.saturating_sub(before.2),
    };
    flight.charge(&work);
    out
}
