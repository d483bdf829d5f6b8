//! Checks shared by the suites that inject faults through the backend's
//! control socket (`nvme` Copy faults, `xcopy` faults).

use crate::{
    control::{FaultCounts, FaultGuard},
    ktap::{ensure, Step, Verdict},
};

/// Add the fault rule `members` (JSON members after `"op":"add",`) on
/// `dev`: the fault counts before it, and the rule's id.
pub fn inject(g: &mut FaultGuard, dev: &str, members: &str) -> Result<(FaultCounts, u64), String> {
    let before = g.client().fault_counts(dev)?;
    let id = g.client().fault_add(dev, members)?;
    Ok((before, id))
}

/// The rule injected on `dev` (a media error if `media`, else a copy
/// failure) fired exactly once since the counts were `before`.
pub fn fired_once(g: &mut FaultGuard, dev: &str, before: &FaultCounts, media: bool) -> Step {
    let counts = g.client().fault_counts(dev).map_err(Verdict::Fail)?;
    let fired = if media {
        counts.media_error - before.media_error
    } else {
        counts.copy_fail - before.copy_fail
    };
    ensure(fired == 1, || {
        format!("the backend counted {fired} firings, expected 1")
    })
}
