//! The one place that says which differences are not failures: fields
//! masked by name (they legitimately differ between two devices), the
//! peers' documented deviations from the standard, and our bugs this
//! comparison found and the backend fixes.

use super::compare::{Deviation, Fixed};

/// Fields that legitimately differ, by name: identity strings, serial
/// numbers, designators, and limits that are parameters of a device
/// rather than behaviour the standard fixes.
pub const MASKS: &[&str] = &[
    // VPD B1h (SBC-4 6.6.2): the physical size the device claims.
    "vpdb1.nominal_form_factor",
    "vpdb1.medium_rotation_rate",
    // RECEIVE COPY RESULTS OPERATING PARAMETERS (SPC-4 6.18.4, table
    // 148): the copy manager's limits and the descriptor types it
    // implements are its own choice; `implements[02h]`/`[E4h]`, SNLID
    // and the layout are compared.
    "rcr.op.max_*",
    "rcr.op.held_data_limit",
    "rcr.op.total_concurrent",
    "rcr.op.granularities",
    "rcr.op.implemented",
];

/// The peers' deviations from the standard, each with the clause that
/// decides it. A difference matching a row is reported (both values),
/// not failed.
pub const DEVIATIONS: &[Deviation] = &[];

/// Our bugs found by this comparison, fixed in the backend.
pub const FIXED: &[Fixed] = &[];
