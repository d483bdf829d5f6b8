//! The one place that says which differences are not failures: fields
//! masked by name (they legitimately differ between two devices), the
//! peers' documented deviations from the standard, and our bugs this
//! comparison found and the backend fixes.

use super::compare::{Deviation, Fixed, Mask};
use crate::diffcore::{Verdict, Want};

/// Fields that legitimately differ, by name: identity strings, serial
/// numbers, designators, and limits that are parameters of a device
/// rather than behaviour the standard fixes.
pub const MASKS: &[Mask] = &[
    // VPD B1h (SBC-4 6.6.2): the physical size the device claims.
    ("vpdb1.nominal_form_factor", "claimed size"),
    ("vpdb1.medium_rotation_rate", "claimed medium"),
    // RECEIVE COPY RESULTS OPERATING PARAMETERS (SPC-4 6.18.4, table
    // 148): the copy manager's limits and the descriptor types it
    // implements are its own choice; `implements[02h]`/`[E4h]`, SNLID
    // and the layout are compared.
    ("rcr.op.max_*", "copy manager's limits"),
    ("rcr.op.held_data_limit", "copy manager's limit"),
    ("rcr.op.total_concurrent", "copy manager's limit"),
    ("rcr.op.granularities", "copy manager's limits"),
    ("rcr.op.implemented", "copy manager's choice"),
];

/// A row of [`DEVIATIONS`] whose clause says the peer departs from the
/// standard; values are patterns on the rendered fields.
const fn dev(
    peer: &'static str,
    command: &'static str,
    field: &'static str,
    ours: &'static str,
    theirs: &'static str,
    clause: &'static str,
) -> Deviation {
    Deviation {
        peer,
        command,
        field,
        ours: Want::Glob(ours),
        theirs: Want::Glob(theirs),
        clause,
        verdict: Verdict::PeerWrong,
    }
}

/// A row of [`DEVIATIONS`] whose clause allows both answers.
const fn both(
    peer: &'static str,
    command: &'static str,
    field: &'static str,
    ours: &'static str,
    theirs: &'static str,
    clause: &'static str,
) -> Deviation {
    Deviation {
        verdict: Verdict::BothConform,
        ..dev(peer, command, field, ours, theirs, clause)
    }
}

const SD: &str = "scsi_debug";
const LIO: &str = "lio";
const SKS: &str = "sense.sense_key_specific";
const OUTCOME: &str = "outcome";
const GOOD: &str = "GOOD";

/// The peers' deviations from the standard, each with the clause that
/// decides it. A difference matching a row is reported (both values),
/// not failed. Columns: peer, exchange label pattern, field pattern, our
/// value, the peer's value (`*`: any), the clause; `dev` rows say the peer
/// departs from the standard, `both` rows that it allows both answers.
pub const DEVIATIONS: &[Deviation] = &[
    // ---- both peers
    both(
        SD,
        "*",
        SKS,
        "*",
        "SKSV 0",
        "SPC-5 4.4.2.4.1: the sense-key specific field is optional (SKSV 0); \
         the peer omits the field pointer we give, both conform",
    ),
    both(
        LIO,
        "*",
        SKS,
        "*",
        "SKSV 0",
        "SPC-5 4.4.2.4.1: the sense-key specific field is optional (SKSV 0); \
         the peer omits the field or segment pointer we give, both conform",
    ),
    // ---- scsi_debug, VERIFY (16)
    dev(
        SD,
        "* verify miscompare",
        "sense.information",
        "0x*",
        "not valid",
        "SBC-4 5.33 (VERIFY (10), as 5.35 VERIFY (16)): on a miscompare the \
         INFORMATION field holds the offset of the first byte that differs; \
         the peer leaves it not valid",
    ),
    dev(
        SD,
        "* verify bytchk 10b",
        SKS,
        "*",
        "*",
        "SBC-4 5.35: BYTCHK is byte 1, bits 2-1; the peer's field pointer \
         names byte 2",
    ),
    // ---- scsi_debug, REPORT ZONES
    dev(
        SD,
        "* report * alloc 232",
        "rz.transferred",
        "*",
        "*",
        "SPC-5 4.2.5.6: the device server transfers ALLOCATION LENGTH bytes or \
         all available data, whichever is less; scsi_debug drops a descriptor \
         the allocation length cuts",
    ),
    dev(
        SD,
        "* report * alloc 232",
        "rz.zone[*].cut",
        "*",
        "absent",
        "SPC-5 4.2.5.6: data is cut at the allocation length, not at a \
         descriptor boundary; scsi_debug sends whole descriptors only",
    ),
    both(
        SD,
        "*",
        "rz.same",
        "*",
        "0h",
        "ZBC-2 6.4.3.2 table 34: SAME 0h (may differ) is always permitted; \
         we report the more precise 1h/3h, both conform",
    ),
    dev(
        SD,
        "* report * alloc 0",
        OUTCOME,
        "status 02h sense 5h/2*",
        GOOD,
        "ZBC-2 6.4.2 / SPC-5 4.2.5.6: ALLOCATION LENGTH 0 is not itself an \
         error but does not waive the CDB checks (ZONE START LBA past the \
         end, reserved REPORTING OPTIONS); scsi_debug returns GOOD before \
         checking",
    ),
    dev(
        SD,
        "* report opt 08h*",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/24h/00h",
        "ZBC-2 6.4.2 table 33: REPORTING OPTIONS 08h (zones with condition \
         INACTIVE) is defined; scsi_debug rejects it as reserved",
    ),
    // ---- scsi_debug, zone actions
    dev(
        SD,
        "* zone * gap",
        OUTCOME,
        "status 02h sense 5h/21h/09h",
        GOOD,
        "ZBC-2 5.3-5.6: ZONE ID must name a write pointer zone; a gap zone \
         is ATTEMPT TO ACCESS GAP ZONE (ZBC-2 4.4.4); scsi_debug accepts it",
    ),
    dev(
        SD,
        "* zone * count *",
        OUTCOME,
        "status 02h sense 5h/24h/00h",
        GOOD,
        "ZBC-2 5.3-5.6 ZONE COUNT: a range running past the last zone or \
         over a non write pointer zone is INVALID FIELD IN CDB; scsi_debug \
         ignores ZONE COUNT",
    ),
    dev(
        SD,
        "* state after zone * count *",
        "rz.zone[*].*",
        "*",
        "*",
        "ZBC-2 5.3-5.6 ZONE COUNT: scsi_debug ignores it, so it changes one \
         zone where we change the counted ones (or, for a refused range, none)",
    ),
    // ---- scsi_debug, writes and reads
    both(
        SD,
        "hm write cross-boundary above-wp",
        OUTCOME,
        "status 02h sense 5h/21h/04h",
        "status 02h sense 5h/21h/05h",
        "ZBC-2 4.4.3.3: the write both starts above the write pointer \
         (UNALIGNED WRITE COMMAND) and crosses the zone boundary (WRITE \
         BOUNDARY VIOLATION); no precedence is given, both conform",
    ),
    dev(
        SD,
        "* write zero-length*",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/21h/0*",
        "SBC-4 5.50 WRITE(16): TRANSFER LENGTH 0 transfers nothing and is not \
         an error; scsi_debug checks the range LBA..LBA-1",
    ),
    dev(
        SD,
        "* read zero-length",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/21h/06h",
        "SBC-4 5.19 READ(16): TRANSFER LENGTH 0 transfers nothing and is not \
         an error; scsi_debug checks the range LBA..LBA-1",
    ),
    dev(
        SD,
        "hm read *",
        OUTCOME,
        "status 02h sense 5h/21h/07h",
        "status 02h sense 5h/21h/06h",
        "ZBC-2 4.4.3.2: a read crossing from one zone type to another is a \
         READ BOUNDARY VIOLATION; ATTEMPT TO READ INVALID DATA is for data \
         above a write pointer with URSWRZ 0, and both LUNs report URSWRZ 1",
    ),
    // ---- scsi_debug, host aware
    dev(
        SD,
        "ha read capacity16 *",
        "rc16.rc_basis",
        "1",
        "0",
        "SBC-4 5.20.2 table 64 RC BASIS: 01b says the returned LBA is the \
         last LBA; 00b describes the non-sequential-write-required range from \
         LBA 0, which on a host aware LU is the same LBA; both name it",
    ),
    dev(
        SD,
        "ha vpd b1",
        "vpdb1.zoned",
        "1",
        "0",
        "SBC-4 6.6.2 table 263 / ZBC-2 4.3: a host aware device sets ZONED to \
         01b; scsi_debug reports 00b (not reported)",
    ),
    dev(
        SD,
        "ha vpd b6",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/24h/00h",
        "ZBC-2 6.5.2: host aware and host managed devices support the Zoned \
         Block Device Characteristics VPD page; scsi_debug rejects it when \
         host aware",
    ),
    both(
        SD,
        "ha vpd b6",
        "vpdb6.zoned_block_device_extension",
        "1",
        "0",
        "ZBC-2 6.5.2 table 41: ZONED BLOCK DEVICE EXTENSION 0h (not \
         reported) is permitted; we report 1h (host aware), both conform \
         (the 6.1 scsi_debug; the 6.12 one rejects the page, row above)",
    ),
    both(
        SD,
        "ha vpd b6",
        "vpdb6.zone_alignment_method",
        "1h",
        "0h",
        "ZBC-2 6.5.2 table 41: ZONE ALIGNMENT METHOD 0h (not reported) is \
         permitted; we report 1h (constant zone lengths), both conform",
    ),
    dev(
        SD,
        "ha * conv-to-seq",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/21h/0*",
        "ZBC-2 4.4.3.4: host aware LUs place no zone-boundary restriction on \
         reads or writes; scsi_debug applies host-managed rules",
    ),
    dev(
        SD,
        "ha state after write *",
        "rz.zone[*].cond",
        "2h",
        "1h",
        "ZBC-2 4.4.3.4: a write into an EMPTY sequential write preferred zone \
         opens it implicitly; scsi_debug leaves the second zone of a write \
         that crosses a zone boundary EMPTY",
    ),
    // ---- LIO, EXTENDED COPY(LID1)
    dev(
        LIO,
        "xcopy good no segments",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/26h/00h",
        "SPC-4 6.4.1: a SEGMENT DESCRIPTOR LIST LENGTH of zero names no \
         work, which is not an error; LIO refuses it",
    ),
    dev(
        LIO,
        "xcopy bad cscd length",
        OUTCOME,
        "status 02h sense 5h/26h/00h",
        "status 02h sense 5h/26h/09h",
        "SPC-4 6.4.1 / 6.4.3: a CSCD DESCRIPTOR LIST LENGTH that is not a \
         multiple of the 32-byte descriptors is INVALID FIELD IN PARAMETER \
         LIST at that field; LIO parses on and misreads the segment list",
    ),
    dev(
        LIO,
        "xcopy *",
        "sense.information",
        "0x*",
        "not valid",
        "SPC-4 6.4.1 (errors detected during segment processing): COPY \
         ABORTED carries the residual in INFORMATION; LIO leaves it invalid",
    ),
    dev(
        LIO,
        "xcopy *",
        OUTCOME,
        "status 02h sense Ah/21h/00h",
        "status 02h sense Ah/0Dh/02h",
        "SPC-4 6.4.1 / SBC-4 4.5: a segment LBA past the end is LOGICAL \
         BLOCK ADDRESS OUT OF RANGE; LIO reports COPY TARGET DEVICE NOT \
         REACHABLE for a reachable device",
    ),
    dev(
        LIO,
        "xcopy inline data",
        OUTCOME,
        "status 02h sense 5h/26h/0Bh",
        "status 02h sense 5h/26h/00h",
        "SPC-4 6.4.1: more inline data than the MAXIMUM INLINE DATA LENGTH \
         of the operating parameters is INLINE DATA LENGTH EXCEEDED; LIO \
         reports the generic INVALID FIELD IN PARAMETER LIST",
    ),
    dev(
        LIO,
        "xcopy block length mismatch",
        OUTCOME,
        "status 02h sense Ah/0Dh/03h",
        GOOD,
        "SPC-4 6.4.5.2 (block device CSCD parameters): a DISK BLOCK LENGTH \
         other than the LU's is INCORRECT COPY TARGET DEVICE TYPE; LIO \
         ignores the field and copies",
    ),
    dev(
        LIO,
        "data b after block length mismatch *",
        "lu.data[*]",
        "*",
        "*",
        "follows from the row above: LIO copied, we did not",
    ),
    both(
        LIO,
        "vpd 8f",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/24h/00h",
        "SPC-4 7.8.17: the Third-party Copy VPD page comes with the LID4 and \
         ROD token commands; LIO implements EXTENDED COPY(LID1) only and \
         describes itself through RECEIVE COPY OPERATING PARAMETERS instead, \
         which we both answer alike (our reading: both conform)",
    ),
    // ---- LIO, RECEIVE COPY RESULTS
    dev(
        LIO,
        "rcr *",
        OUTCOME,
        GOOD,
        "status 02h sense 5h/24h/00h",
        "SPC-4 6.4.3 table 108 LIST ID USAGE 00b: the copy manager holds the \
         copy status for RECEIVE COPY STATUS(LID1) and RECEIVE COPY \
         FAILURE DETAILS; LIO accepts 00b but implements only OPERATING \
         PARAMETERS",
    ),
];

/// Our bugs found by this comparison, fixed in the backend.
pub const FIXED: &[Fixed] = &[
    Fixed {
        peer: SD,
        command: "hm report opt 3Eh*",
        field: "rz.list_len",
        what: "REPORTING OPTIONS 3Eh listed only the gap zones; ZBC-2 6.4.2 \
               table 33: every zone except gap zones (issue 13, fixed on main)",
    },
    Fixed {
        peer: SD,
        command: "hm report *",
        field: "rz.zone_starting_lba_granularity",
        what: "REPORT ZONES header bytes 16-23 ZONE STARTING LBA GRANULARITY \
               were zero; ZBC-2 6.4.3.2 table 34",
    },
];
