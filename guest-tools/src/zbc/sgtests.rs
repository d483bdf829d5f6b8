//! The SG_IO areas: the device's own data, zone condition transitions,
//! ZONE COUNT, violations with their sense data, open and active limits,
//! REPORT ZONES, restricted reads and sequential write preferred zones.

mod device;
mod limits;
mod reads;
mod report;
mod states;
mod violations;
pub(crate) use self::{device::*, limits::*, reads::*, report::*, states::*, violations::*};

use super::{
    bad, check_sense,
    model::{Action, Field, Model, Violation},
    scsi::{self, hex},
    Ctx, Op, Test,
};
use crate::{
    ktap::{ensure, Step, Verdict},
    sgio::Data,
    xcopy::{cdb as xcdb, parse as xparse},
};

use Action::{Close, Finish, Open, Reset};

pub(super) fn main_lun(c: &Ctx) -> Result<usize, Verdict> {
    c.role(c.roles.main, "host-managed LUN")
}

pub(super) fn zone(a: Action, id: u64) -> Op {
    Op::Zone(a, id, 0, false)
}

pub(super) fn all(a: Action) -> Op {
    Op::Zone(a, 0, 0, true)
}

/// Write `n` blocks at the write pointer of the zone starting at `z`, in
/// pieces of at most `piece` blocks.
pub(super) fn fill(c: &mut Ctx, li: usize, z: u64, n: u64, piece: u64) -> Step {
    let i = c.luns[li]
        .model
        .zone_index(z)
        .ok_or_else(|| bad(format!("no zone at {z}")))?;
    let mut wp = c.luns[li].model.zones[i].wp;
    let end = wp + n;
    let piece = piece.min(super::MAX_XFER / c.luns[li].bs()).max(1);
    while wp < end {
        let k = piece.min(end - wp);
        c.ok(li, Op::Write(wp, k))?;
        wp += k;
    }
    Ok(())
}

/// Blocks of one stamped 4 KiB unit (the smallest write the suite makes).
pub(super) fn unit(c: &Ctx, li: usize) -> u64 {
    (4096 / c.luns[li].bs()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zbc::model::REPORT_OPTIONS;

    /// Every reporting option the model knows is listed in a test.
    #[test]
    fn every_option_has_a_test() {
        for opt in REPORT_OPTIONS {
            let name = format!("option_{opt:02x}_");
            assert!(REPORT.iter().any(|(n, _)| n.starts_with(&name)), "{name}");
        }
    }
}
