//! The EXTENDED COPY (LID1) groups compared with LIO: the same parameter
//! lists (each side's E4h CSCD descriptors naming its own two logical
//! units by their VPD 83h NAA designators) go to our copy manager and to
//! LIO's, and the status, the sense bytes, the copied data and the
//! RECEIVE COPY RESULTS answers are compared.

use std::fs::File;

use super::{
    both,
    compare::{Comparer, Fields, OUTCOME},
    fields::{self, Dir, Response},
};
use crate::{
    sgio::write16,
    xcopy::{
        cdb::{self as xcdb, CopyList, CscdId, ListIdUsage, Segment},
        parse as xparse,
        sense::{key, SenseData},
    },
    zbc::MAX_XFER,
};

/// One side: two logical units (copy source and destination).
pub struct Side<'a> {
    /// Source LU.
    pub a: &'a File,
    /// Destination LU.
    pub b: &'a File,
    /// E4h descriptors of `a` and `b`.
    pub cscd: [CscdId; 2],
}

/// The E4h descriptor of an LU from its VPD 83h page.
pub fn cscd_of(f: &File, bs: u32) -> Result<CscdId, String> {
    let r = fields::send(f, &xcdb::inquiry(Some(0x83), 255), &Dir::In(255))?;
    if r.status != 0 {
        return Err(format!("VPD 83h: status {:#x}", r.status));
    }
    let mut std = fields::send(f, &xcdb::inquiry(None, 36), &Dir::In(36))?;
    std.data.resize(36, 0);
    let ds = xparse::vpd83(&r.data)?;
    let d = xparse::lu_designator(&ds).ok_or("VPD 83h: no LU designator")?;
    Ok(CscdId::new(
        std.data[0] & 0x1f,
        d.code_set,
        d.designator_type,
        &d.designator,
        bs,
    ))
}

/// What one parameter list does, built per side.
type Build = fn(&[CscdId; 2]) -> Vec<u8>;

fn list(c: &[CscdId; 2], segs: Vec<Segment>) -> CopyList {
    CopyList::new(1, c, segs)
}

fn b2b(src: u16, dst: u16, blocks: u16, src_lba: u64, dst_lba: u64) -> Segment {
    Segment::B2B {
        src,
        dst,
        dc: false,
        blocks,
        src_lba,
        dst_lba,
    }
}

/// The parameter lists compared: good copies first, then malformed ones
/// (SPC-4 6.4 EXTENDED COPY(LID1); the sense each one gets is compared
/// byte for byte, including the field or segment pointer).
const LISTS: &[(&str, Build)] = &[
    ("good a->b", |c| list(c, vec![b2b(0, 1, 16, 0, 8)]).lid1()),
    ("good same-lu", |c| {
        list(c, vec![b2b(0, 0, 8, 0, 64)]).lid1()
    }),
    ("good zero blocks", |c| {
        list(c, vec![b2b(0, 1, 0, 0, 0)]).lid1()
    }),
    ("good no segments", |c| list(c, vec![]).lid1()),
    ("list-id-usage none", |c| {
        let mut l = list(c, vec![b2b(0, 1, 1, 0, 300)]);
        l.usage = ListIdUsage::None;
        l.list_id = 0;
        l.lid1()
    }),
    ("bad cscd length", |c| {
        let mut p = list(c, vec![b2b(0, 1, 1, 0, 0)]).lid1();
        p[3] -= 4;
        p
    }),
    ("bad cscd type", |c| {
        let mut x = c.clone();
        x[1].type_code = 0xe5;
        list(&x, vec![b2b(0, 1, 1, 0, 0)]).lid1()
    }),
    ("bad segment type", |c| {
        let mut s = b2b(0, 1, 1, 0, 0).encode();
        s[0] = 0x0b;
        list(c, vec![Segment::Raw(s)]).lid1()
    }),
    ("unknown designator", |c| {
        let mut x = c.clone();
        for b in x[1].designator.iter_mut().skip(1) {
            *b ^= 0x5a;
        }
        list(&x, vec![b2b(0, 1, 1, 0, 0)]).lid1()
    }),
    ("bad cscd index", |c| {
        list(c, vec![b2b(0, 7, 1, 0, 0)]).lid1()
    }),
    ("source lba out of range", |c| {
        list(c, vec![b2b(0, 1, 8, 1 << 40, 0)]).lid1()
    }),
    ("destination past end", |c| {
        list(c, vec![b2b(0, 1, 8, 0, u64::from(u32::MAX))]).lid1()
    }),
    ("inline data", |c| {
        let mut l = list(c, vec![b2b(0, 1, 1, 0, 0)]);
        l.inline = vec![0; 4];
        l.lid1()
    }),
    ("truncated", |c| {
        let mut p = list(c, vec![b2b(0, 1, 1, 0, 0)]).lid1();
        p.truncate(p.len() - 8);
        p
    }),
    ("header only", |c| {
        list(c, vec![b2b(0, 1, 1, 0, 0)]).lid1()[..16].to_vec()
    }),
    // Last: a copy manager that ignores the DISK BLOCK LENGTH copies,
    // and every later comparison of the data would differ.
    ("block length mismatch", |c| {
        let mut x = c.clone();
        x[1].block_len = 512;
        list(&x, vec![b2b(0, 1, 1, 0, 0)]).lid1()
    }),
];

/// Blocks of each LU the copies touch and the comparison reads.
const FILL_BLOCKS: u64 = 256;

/// Fill the first [`FILL_BLOCKS`] blocks of `f` with a pattern (the same on both
/// sides), so copies move known data.
fn fill(f: &File, bs: u64, seed: u8) -> Result<(), String> {
    let per = (MAX_XFER / bs).max(1);
    for at in (0..FILL_BLOCKS).step_by(per as usize) {
        let data: Vec<u8> = (at * bs..(at + per) * bs)
            .map(|i| (i / 7) as u8 ^ seed)
            .collect();
        let cdb = write16(at, per as u32);
        let mut r = fields::send(f, &cdb, &Dir::Out(data.clone()))?;
        // A LUN just added to the tcm_loop nexus may report UNIT ATTENTION
        // (REPORTED LUNS DATA HAS CHANGED, 3Fh/0Eh, SPC-5 5.14) to its
        // first command; the command did nothing and is sent again, as
        // initiators do.
        for _ in 0..UA_RETRIES {
            if !unit_attention(&r) {
                break;
            }
            r = fields::send(f, &cdb, &Dir::Out(data.clone()))?;
        }
        if r.status != 0 {
            return Err(format!(
                "fill at {at}: status {:#x} sense {:02x?}",
                r.status, r.sense
            ));
        }
    }
    Ok(())
}

/// How often [`fill`] sends a write again after UNIT ATTENTION.
const UA_RETRIES: usize = 3;

/// CHECK CONDITION with sense key UNIT ATTENTION (6h).
fn unit_attention(r: &Response) -> bool {
    r.status == 2 && SenseData::decode(&r.sense).is_some_and(|d| d.key == key::UNIT_ATTENTION)
}

/// Read the first [`FILL_BLOCKS`] blocks of both sides' LU, in commands
/// of at most [`MAX_XFER`] bytes, and compare them.
fn compare_data(cmp: &mut Comparer, label: &str, o: &File, p: &File, bs: u64) {
    let per = (MAX_XFER / bs).max(1);
    for at in (0..FILL_BLOCKS).step_by(per as usize) {
        same(
            cmp,
            &format!("{label} blocks {at}.."),
            o,
            p,
            &xcdb::read16(at, per as u32),
            &Dir::In((per * bs) as usize),
            |r| fields::data_fields(r, "lu"),
        );
    }
}

fn op_fields(r: &Response) -> Fields {
    let mut f = fields::status_fields(r);
    if r.status != 0 {
        return f;
    }
    let b = &r.data;
    let mut push = |n: &str, v: String| {
        f.text(format!("rcr.op.{n}"), v);
    };
    match xparse::operating_parameters(b) {
        Ok(o) => {
            push("decodes", "yes".into());
            push("snlid", u8::from(o.snlid).to_string());
            push("max_cscd", o.max_cscd.to_string());
            push("max_segments", o.max_segments.to_string());
            push("max_list_len", o.max_list_len.to_string());
            push("max_segment_len", o.max_segment_len.to_string());
            push("max_inline", o.max_inline.to_string());
            push("held_data_limit", o.held_data_limit.to_string());
            for code in [0x02u8, 0xe4] {
                push(
                    &format!("implements[{code:02X}h]"),
                    o.implemented.contains(&code).to_string(),
                );
            }
            push("implemented", fields::sgio_hex(&o.implemented));
            push("reserved_5_8", fields::sgio_hex(&b[5..8]));
            push("max_stream_transfer", fields::sgio_hex(&b[28..32]));
            push("reserved_32_34", fields::sgio_hex(&b[32..34]));
            push("total_concurrent", fields::sgio_hex(&b[34..36]));
            push("max_concurrent", b[36].to_string());
            push("granularities", fields::sgio_hex(&b[37..40]));
            push("reserved_40_43", fields::sgio_hex(&b[40..43]));
        }
        Err(e) => push("decodes", format!("no: {e}")),
    }
    f
}

fn same(
    cmp: &mut Comparer,
    label: &str,
    o: &File,
    p: &File,
    cdb: &[u8],
    dir: &Dir,
    d: fn(&Response) -> Fields,
) {
    both(cmp, label, (o, cdb, dir), (p, cdb, dir), d);
}

/// Group `copies`: every list of [`LISTS`], then the data of both LUs.
pub fn copies(cmp: &mut Comparer, ours: &Side<'_>, peer: &Side<'_>, bs: u64) -> Result<(), String> {
    for (s, seed) in [(ours, 0x11u8), (peer, 0x11)] {
        fill(s.a, bs, seed)?;
        fill(s.b, bs, seed ^ 0xff)?;
    }
    for (name, build) in LISTS {
        let (po, pp) = (build(&ours.cscd), build(&peer.cscd));
        let (co, cp) = (
            xcdb::extended_copy(0x00, po.len() as u32),
            xcdb::extended_copy(0x00, pp.len() as u32),
        );
        let label = format!("xcopy {name}");
        both(
            cmp,
            &label,
            (ours.a, &co, &Dir::Out(po)),
            (peer.a, &cp, &Dir::Out(pp)),
            fields::status_fields,
        );
        // What the copy left on both LUs.
        for (lu, o, p) in [("a", ours.a, peer.a), ("b", ours.b, peer.b)] {
            compare_data(cmp, &format!("data {lu} after {name}"), o, p, bs);
        }
    }
    Ok(())
}

/// Group `receive_copy_results`: every LID1 service action (SPC-4 6.18,
/// table 144), and the operating parameters field by field.
pub fn results(cmp: &mut Comparer, ours: &Side<'_>, peer: &Side<'_>) {
    same(
        cmp,
        "rcr operating parameters",
        ours.a,
        peer.a,
        &xcdb::receive_lid1(0x03, 0, 1024),
        &Dir::In(1024),
        op_fields,
    );
    for (sa, name) in [
        (0x00u8, "copy status"),
        (0x01, "receive data"),
        (0x04, "failed segment details"),
        (0x02, "reserved 02h"),
        (0x1f, "reserved 1Fh"),
    ] {
        same(
            cmp,
            &format!("rcr {name}"),
            ours.a,
            peer.a,
            &xcdb::receive_lid1(sa, 1, 1024),
            &Dir::In(1024),
            |r| fields::data_fields(r, "rcr"),
        );
    }
    if let Some((o, p)) = both(
        cmp,
        "vpd 8f",
        (ours.a, &xcdb::inquiry(Some(0x8f), 1024), &Dir::In(1024)),
        (peer.a, &xcdb::inquiry(Some(0x8f), 1024), &Dir::In(1024)),
        fields::status_fields,
    ) {
        let show = |r: &Response| {
            fields::status_fields(r)
                .get(OUTCOME)
                .map_or_else(String::new, ToString::to_string)
        };
        cmp.note(format!(
            "vpd 8f: ours {} ({} bytes), lio {} ({} bytes)",
            show(&o),
            o.data.len(),
            show(&p),
            p.data.len()
        ));
    }
}
