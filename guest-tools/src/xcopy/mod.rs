//! The `xcopy` suite: SCSI third-party copy (SPC-4 EXTENDED COPY LID1 and
//! LID4, SBC-4 POPULATE TOKEN / WRITE USING TOKEN, RECEIVE COPY RESULTS,
//! COPY OPERATION ABORT) through SG_IO, checked from the standard, with
//! every destination verified byte for byte against the LBA-stamped source
//! and, through the backend's control socket (`zonecopy.control=`), by
//! host-side CRC32C and by the offload counters (the destination's
//! `copied_bytes` grows by exactly the bytes copied while `read_bytes` /
//! `written_bytes` of every LU involved stay put).
//!
//! KTAP: test 1 `config`, then one subtest per area (see [`AREAS`]). A copy
//! test is followed by `<name>.host`, its host-side half, which is a SKIP
//! naming the reason when there is no control socket.

pub mod cdb;
mod faults;
pub mod parse;
pub mod sense;

use std::{
    fs::File,
    io::{self, Write},
    path::Path,
};

use self::{
    cdb::{in_sa, out_sa, CopyList, CscdId, Segment, CSCD_LEN, LID1_HEADER, LID4_HEADER},
    parse::{Designator, OperatingParameters, Tpc},
    sense::{hex, key, SenseData},
};
use crate::{
    blkzoned::{self as bz, ZoneOp},
    blockio::{self, AlignedBuf},
    cmdline::{Config, LunKind, LunSpec},
    control::{self, DevStats},
    ktap::{ensure, fail, Ktap, Outcome, Step, Verdict},
    runner::{Context, Done, Runner},
    sgio, stamp,
    stamp::BLOCK_SIZE,
    sysfs,
};

const BS4K: u64 = BLOCK_SIZE as u64;
const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// Byte offset of each LU's stamped source area (in its conventional space).
const SRC_OFF: u64 = MIB;
/// Stamped 4 KiB blocks in each source area.
const SRC_BLOCKS: u64 = 64;
/// Destination slots start here, one slot per test.
const DST_OFF: u64 = 2 * MIB;
/// Bytes per destination slot.
const SLOT: u64 = 128 * 1024;
/// SG_IO timeout for copy commands.
const TIMEOUT_MS: u32 = 60_000;

/// One LU under test.
struct Dev {
    n: u64,
    name: String,
    spec: LunSpec,
    file: File,
    pdt: u8,
    designator: Option<Designator>,
    gen: u64,
    /// Next free destination slot.
    slot: u64,
}

impl Dev {
    fn bs(&self) -> u64 {
        self.spec.block_size
    }

    /// Bytes of conventional (randomly writable) space from the start.
    fn conv_bytes(&self) -> u64 {
        match self.spec.zones {
            Some(z) => (z.conventional * z.zone_size).min(self.spec.size),
            None => self.spec.size,
        }
    }

    /// Start byte of the `k`-th sequential zone, if full-sized.
    fn seq_zone(&self, k: u64) -> Option<u64> {
        let z = self.spec.zones?;
        let start = (z.conventional + k) * z.zone_size;
        (start + z.zone_size <= self.spec.size).then_some(start)
    }
}

/// A destination span and what must be there afterwards.
struct Expect {
    dev: usize,
    /// First byte of the 4 KiB-aligned region checked.
    region: u64,
    /// The region's expected content.
    data: Vec<u8>,
    /// Stamps: (offset of the first copied byte in the region, source
    /// block number, generation, 4 KiB blocks) when the copied span is
    /// 4 KiB-aligned and carries stamps.
    stamps: Option<(usize, u64, u64, u64)>,
    /// Bytes the offload writes into this device (copied_bytes delta).
    copied: u64,
}

type Test = (&'static str, fn(&mut Ctx) -> Step, bool);

/// Shared state of the suite.
struct Ctx {
    devs: Vec<Dev>,
    /// Indices of the host-managed LUs (first two are "A" 4K and "B").
    hm: Vec<usize>,
    disk: Option<usize>,
    tpc: Option<Tpc>,
    op: Option<OperatingParameters>,
    ctl: Option<control::Client>,
    ctl_why: String,
    done: Done,
    diags: Vec<String>,
    /// The host-side verdict of the copy test just run.
    host: Option<Verdict>,
    next_list: u32,
    /// (list id, segments, bytes, LU it was sent to) of a completed LID1 /
    /// LID4 list.
    lid1_ok: Option<(u32, u16, u64, usize)>,
    lid4_ok: Option<(u32, u16, u64, usize)>,
    /// Count zero-token writes as host writes or offload (see t_zero_token).
    zero_write: bool,
    /// (list id, segments processed, bytes done, sense) of failed lists.
    lid1_failed: Option<(u32, u16, u64, SenseData)>,
    lid1_failed_single: Option<(u32, SenseData)>,
    lid4_failed: Option<(u32, u16, u64, SenseData)>,
    /// Source areas written and verified.
    sources: bool,
    /// Stamped blocks at the start of the second sequential zone of A.
    seq_source: Option<u64>,
}

/// Areas, in order: each a KTAP subtest.
const AREAS: &[(&str, &[Test])] = &[
    ("discovery", DISCOVERY),
    ("data", DATA),
    ("lid1", LID1),
    ("lid4", LID4),
    ("tokens", TOKENS),
    ("zone_errors", ZONE_ERRORS),
    ("bad_lists", BAD_LISTS),
    ("copy_results", COPY_RESULTS),
    ("faults", faults::FAULTS),
];

const DISCOVERY: &[Test] = &[
    ("luns", t_luns, false),
    ("inquiry", t_inquiry, false),
    ("vpd_pages", t_vpd_pages, false),
    ("vpd_83", t_vpd83, false),
    ("vpd_8f", t_vpd8f, false),
    ("operating_parameters", t_opparams, false),
    ("limits_consistent", t_limits, false),
    ("supported_opcodes", t_rsoc, false),
];

const DATA: &[Test] = &[
    ("control", t_control, false),
    ("reset_seq_zones", t_reset, false),
    ("sources", t_sources, true),
    ("seq_source", t_seq_source, false),
];

const LID1: &[Test] = &[
    ("conv_to_conv", |c| copy_same_lu(c, false, false), true),
    ("conv_to_seq_at_wp", |c| copy_to_seq(c, false, false), true),
    ("cross_to_seq_at_wp", |c| copy_to_seq(c, false, true), true),
    ("seq_to_conv", |c| copy_from_seq(c, false), true),
    ("cross_4k_to_512", |c| copy_cross(c, false, false), true),
    ("cross_4k_to_512_dc", |c| copy_cross(c, false, true), true),
    ("cross_512_to_4k", |c| copy_cross_back(c, false), true),
    ("to_disk_lu", |c| copy_to_disk(c, false), true),
    ("multi_segment", |c| copy_multi(c, false), true),
    (
        "byte_offsets_0a",
        |c| copy_offsets(c, false, Off::Exact),
        true,
    ),
    (
        "byte_offsets_0a_inexact",
        |c| copy_offsets(c, false, Off::Inexact),
        true,
    ),
    ("cscd_id_ffff", |c| copy_same_lu(c, false, true), true),
];

const LID4: &[Test] = &[
    ("conv_to_conv", |c| copy_same_lu(c, true, false), true),
    ("conv_to_seq_at_wp", |c| copy_to_seq(c, true, false), true),
    ("cross_to_seq_at_wp", |c| copy_to_seq(c, true, true), true),
    ("seq_to_conv", |c| copy_from_seq(c, true), true),
    ("cross_4k_to_512", |c| copy_cross(c, true, false), true),
    ("cross_4k_to_512_dc", |c| copy_cross(c, true, true), true),
    ("cross_512_to_4k", |c| copy_cross_back(c, true), true),
    ("to_disk_lu", |c| copy_to_disk(c, true), true),
    ("multi_segment", |c| copy_multi(c, true), true),
    (
        "byte_offsets_0a",
        |c| copy_offsets(c, true, Off::Exact),
        true,
    ),
    (
        "byte_offsets_0a_inexact",
        |c| copy_offsets(c, true, Off::Inexact),
        true,
    ),
];

const TOKENS: &[Test] = &[
    ("same_lu", |c| token_copy(c, false), true),
    ("other_lu", |c| token_copy(c, true), true),
    ("invalidated_by_write", t_token_invalidated, true),
    ("zero_token", t_zero_token, true),
];

const ZONE_ERRORS: &[Test] = &[
    ("lid1_not_at_wp", |c| not_at_wp(c, false, false), true),
    (
        "lid1_second_segment_fails",
        |c| not_at_wp(c, false, true),
        true,
    ),
    (
        "lid4_second_segment_fails",
        |c| not_at_wp(c, true, true),
        true,
    ),
];

const BAD_LISTS: &[Test] = &[
    ("list_truncated", |c| bad(c, Bad::Truncated), true),
    ("unsupported_cscd_type", |c| bad(c, Bad::CscdType), true),
    (
        "unsupported_segment_type",
        |c| bad(c, Bad::SegmentType),
        true,
    ),
    ("too_many_cscds", |c| bad(c, Bad::TooManyCscds), true),
    ("too_many_segments", |c| bad(c, Bad::TooManySegments), true),
    ("inline_data_too_long", |c| bad(c, Bad::Inline), true),
    ("unknown_lu", |c| bad(c, Bad::UnknownLu), true),
    ("cscd_index_out_of_range", |c| bad(c, Bad::CscdIndex), true),
    ("block_length_mismatch", |c| bad(c, Bad::BlockLength), true),
    ("beyond_capacity", |c| bad(c, Bad::BeyondCapacity), true),
    (
        "lid4_unsupported_segment_type",
        |c| bad(c, Bad::Lid4SegmentType),
        true,
    ),
    (
        "no_list_id_but_nonzero",
        |c| bad(c, Bad::NoListIdNonzero),
        true,
    ),
    ("list_id_reused_after_completion", t_list_id_reuse, true),
    ("list_id_in_use", t_list_id_in_use, false),
];

const COPY_RESULTS: &[Test] = &[
    ("status_lid1_completed", t_status_lid1_ok, false),
    ("status_lid1_failed", t_status_lid1_failed, false),
    ("failed_segment_details", t_failure_details, false),
    ("status_lid4_completed", t_status_lid4_ok, false),
    ("status_lid4_failed", t_status_lid4_failed, false),
    ("status_unknown_list", t_status_unknown, false),
    ("abort_unknown_list", t_abort_unknown, false),
];

impl Ctx {
    fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    fn needs(&self, step: &str) -> Step {
        self.done.needs(step)
    }

    fn a(&self) -> Result<usize, Verdict> {
        self.hm
            .first()
            .copied()
            .ok_or_else(|| Verdict::skip("needs a host-managed LUN"))
    }

    fn b(&self) -> Result<usize, Verdict> {
        self.hm
            .get(1)
            .copied()
            .ok_or_else(|| Verdict::skip("needs a second host-managed LUN"))
    }

    fn tpc(&self) -> Result<&Tpc, Verdict> {
        self.tpc
            .as_ref()
            .ok_or_else(|| Verdict::skip("needs vpd_8f"))
    }

    fn list_id(&mut self) -> u32 {
        self.next_list = self.next_list.wrapping_add(1);
        // LID1 uses the low byte: keep it away from 0 and FFh.
        if matches!(self.next_list & 0xff, 0 | 0xff) {
            self.next_list = self.next_list.wrapping_add(2);
        }
        self.next_list
    }

    fn sg(
        &self,
        dev: usize,
        cdb: &[u8],
        data: sgio::Data<'_>,
    ) -> Result<sgio::Completion, Verdict> {
        let d = &self.devs[dev];
        sgio::command(&d.file, cdb, data, TIMEOUT_MS)
            .map_err(|e| Verdict::fail(format!("SG_IO {:02x} on {}: {e}", cdb[0], d.name)))
    }

    /// Data-in command that must succeed; returns the bytes transferred.
    fn data_in(
        &self,
        dev: usize,
        cdb: &[u8],
        alloc: usize,
        what: &str,
    ) -> Result<Vec<u8>, Verdict> {
        let mut buf = vec![0u8; alloc];
        let c = self.sg(dev, cdb, sgio::Data::FromDevice(&mut buf))?;
        if c.status != 0 || c.host_status != 0 {
            return Err(Verdict::fail(format!(
                "{what} on {}: {c} sense [{}]",
                self.devs[dev].name,
                hex(&c.sense_bytes)
            )));
        }
        let got = alloc.saturating_sub(usize::try_from(c.resid.max(0)).unwrap_or(0));
        buf.truncate(got);
        Ok(buf)
    }

    fn read(&self, dev: usize, byte: u64, len: u64) -> Result<Vec<u8>, Verdict> {
        let d = &self.devs[dev];
        let mut buf = AlignedBuf::new(len as usize);
        let n = std::os::unix::fs::FileExt::read_at(&d.file, buf.as_mut_slice(), byte).map_err(
            fail(&format!("{}: read {len} bytes at byte {byte}", d.name)),
        )?;
        ensure(n as u64 == len, || {
            format!("{}: short read {n} of {len} at byte {byte}", d.name)
        })?;
        Ok(buf.as_slice().to_vec())
    }

    /// A fresh 4 KiB-aligned destination slot in `dev`'s conventional space.
    fn slot(&mut self, dev: usize) -> Result<u64, Verdict> {
        let d = &mut self.devs[dev];
        let at = DST_OFF + d.slot * SLOT;
        if at + SLOT > d.conv_bytes() {
            return Err(Verdict::skip(format!(
                "{}: no room for another {SLOT}-byte destination below byte {}",
                d.name,
                d.conv_bytes()
            )));
        }
        d.slot += 1;
        Ok(at)
    }

    fn cscd(&self, dev: usize) -> Result<CscdId, Verdict> {
        let d = &self.devs[dev];
        let des = d
            .designator
            .as_ref()
            .ok_or_else(|| Verdict::skip(format!("{}: needs a VPD 83h LU designator", d.name)))?;
        Ok(CscdId::new(
            d.pdt,
            des.code_set,
            des.designator_type,
            &des.designator,
            d.bs() as u32,
        ))
    }

    fn stats(&mut self, devs: &[usize]) -> Option<Result<Vec<DevStats>, String>> {
        let names: Vec<String> = devs.iter().map(|&i| self.devs[i].name.clone()).collect();
        let ctl = self.ctl.as_mut()?;
        Some(names.iter().map(|n| ctl.stats(n)).collect())
    }

    /// An Expect for copying `len` source bytes at `src_byte` of `src` to
    /// `dst_byte` of `dst` (conventional space: the old region is read
    /// first; `seq`: the region is exactly the span, expected old content
    /// irrelevant).
    fn expect_copy(
        &self,
        src: usize,
        src_byte: u64,
        dst: usize,
        dst_byte: u64,
        len: u64,
        seq: bool,
    ) -> Result<Expect, Verdict> {
        let region = dst_byte / BS4K * BS4K;
        let end = (dst_byte + len).div_ceil(BS4K) * BS4K;
        let mut data = if seq {
            vec![0u8; (end - region) as usize]
        } else {
            self.read(dst, region, end - region)?
        };
        let s0 = src_byte / BS4K * BS4K;
        let s1 = (src_byte + len).div_ceil(BS4K) * BS4K;
        let sbytes = self.read(src, s0, s1 - s0)?;
        let from = (src_byte - s0) as usize;
        let at = (dst_byte - region) as usize;
        data[at..at + len as usize].copy_from_slice(&sbytes[from..from + len as usize]);
        let aligned = src_byte % BS4K == 0 && dst_byte % BS4K == 0 && len % BS4K == 0;
        Ok(Expect {
            dev: dst,
            region,
            data,
            stamps: aligned.then(|| (at, src_byte / BS4K, self.devs[src].gen, len / BS4K)),
            copied: len,
        })
    }

    /// An Expect that a span is unchanged (host checksum only when it may
    /// not be readable, e.g. past a write pointer).
    fn expect_unchanged(
        &mut self,
        dev: usize,
        byte: u64,
        len: u64,
        readable: bool,
    ) -> Result<Expect, Verdict> {
        let data = if readable {
            self.read(dev, byte, len)?
        } else {
            Vec::new()
        };
        Ok(Expect {
            dev,
            region: byte,
            data,
            stamps: None,
            copied: 0,
        })
    }

    fn host_checksum(
        &mut self,
        dev: usize,
        byte: u64,
        len: u64,
    ) -> Result<control::Checksum, String> {
        let bs = self.devs[dev].bs();
        let name = self.devs[dev].name.clone();
        match self.ctl.as_mut() {
            Some(c) => c.checksum(&name, byte / bs, len / bs),
            None => Err("no control socket".into()),
        }
    }

    /// Send a copy-class command and check it all: `want` is `None` for
    /// GOOD or the sense (key, asc, ascq) it must fail with. Returns the
    /// decoded sense of a failure. Data checks fail the test; host checks
    /// (checksums, counters) go to `self.host`.
    fn exec(
        &mut self,
        via: usize,
        cdb: &[u8],
        params: &[u8],
        involved: &[usize],
        expects: &[Expect],
        want: &[(u8, u8, u8)],
    ) -> Result<Option<SenseData>, Verdict> {
        // Host checksums of unreadable spans, before.
        let mut before_crc = Vec::new();
        for e in expects {
            if e.data.is_empty() {
                before_crc.push(Some(self.host_checksum(e.dev, e.region, 4096 * 8)));
            } else {
                before_crc.push(None);
            }
        }
        let s0 = self.stats(involved);
        let c = self.sg(via, cdb, sgio::Data::ToDevice(params))?;
        let s1 = self.stats(involved);
        let sd = SenseData::decode(&c.sense_bytes);
        self.diag(format!(
            "{} {:02x}h/{:02x}h via {} ({} parameter bytes): status {:#04x}{}",
            if cdb[0] == cdb::OP_TPC_OUT {
                "83h"
            } else {
                "cmd"
            },
            cdb[0],
            cdb[1] & 0x1f,
            self.devs[via].name,
            params.len(),
            c.status,
            if c.sense_bytes.is_empty() {
                String::new()
            } else {
                format!(" sense [{}]", hex(&c.sense_bytes))
            }
        ));
        ensure(c.host_status == 0, || format!("transport failure: {c}"))?;
        match want {
            [] => ensure(c.status == 0, || {
                format!(
                    "expected GOOD, got {c}{}",
                    sd.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
                )
            })?,
            _ => {
                let s = sd.as_ref();
                ensure(
                    c.status == sgio::CHECK_CONDITION
                        && s.is_some_and(|s| want.contains(&(s.key, s.asc, s.ascq))),
                    || {
                        format!(
                            "expected CHECK CONDITION with {}, got status {:#04x} {}",
                            want.iter()
                                .map(|(k, a, q)| format!("key {k:02X}h {a:02X}h/{q:02X}h"))
                                .collect::<Vec<_>>()
                                .join(" or "),
                            c.status,
                            s.map_or_else(
                                || format!("sense [{}]", hex(&c.sense_bytes)),
                                |s| s.to_string()
                            )
                        )
                    },
                )?;
            }
        }
        // Data, read back through the kernel.
        for e in expects {
            if e.data.is_empty() {
                continue;
            }
            let got = self.read(e.dev, e.region, e.data.len() as u64)?;
            if let Some(i) = got.iter().zip(&e.data).position(|(a, b)| a != b) {
                return Err(Verdict::fail(format!(
                    "{}: byte {} differs from the source (got {:02x}, want {:02x})",
                    self.devs[e.dev].name,
                    e.region + i as u64,
                    got[i],
                    e.data[i]
                )));
            }
            if let Some((at, first, gen, n)) = e.stamps {
                for i in 0..n as usize {
                    let b = &got[at + i * BLOCK_SIZE..at + (i + 1) * BLOCK_SIZE];
                    stamp::verify(b, first + i as u64, gen).map_err(|err| {
                        Verdict::fail(format!(
                            "{}: copied block at byte {}: {err}",
                            self.devs[e.dev].name,
                            e.region + (at + i * BLOCK_SIZE) as u64
                        ))
                    })?;
                }
            }
        }
        // Host side.
        self.host = Some(self.host_verdict(involved, expects, &before_crc, s0, s1));
        Ok(sd)
    }

    fn host_verdict(
        &mut self,
        involved: &[usize],
        expects: &[Expect],
        before_crc: &[Option<Result<control::Checksum, String>>],
        s0: Option<Result<Vec<DevStats>, String>>,
        s1: Option<Result<Vec<DevStats>, String>>,
    ) -> Verdict {
        let (Some(s0), Some(s1)) = (s0, s1) else {
            return Verdict::skip(self.ctl_why.clone());
        };
        let (s0, s1) = match (s0, s1) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Verdict::fail(format!("stats: {e}")),
        };
        for (k, &dev) in involved.iter().enumerate() {
            let (a, b) = (s0[k], s1[k]);
            let name = &self.devs[dev].name;
            self.diags
                .push(format!("{name} stats before: {a}; after: {b}"));
            if !self.zero_write
                && (a.read_bytes != b.read_bytes || a.written_bytes != b.written_bytes)
            {
                return Verdict::fail(format!(
                    "{name}: host counters moved across the copy: read {} -> {}, written {} -> {}",
                    a.read_bytes, b.read_bytes, a.written_bytes, b.written_bytes
                ));
            }
            let want: u64 = expects
                .iter()
                .filter(|e| e.dev == dev)
                .map(|e| e.copied)
                .sum();
            let got = b.copied_bytes.wrapping_sub(a.copied_bytes);
            if self.zero_write {
                // Zeros from the block device zero ROD token are neither
                // read nor copied data: the bytes must be counted once, as
                // written or as copied (the counters' documentation does
                // not say which), and nothing read.
                let w = b.written_bytes.wrapping_sub(a.written_bytes);
                self.diags.push(format!(
                    "{name}: zero token counted {w} written, {got} copied"
                ));
                if a.read_bytes != b.read_bytes || w + got != want {
                    return Verdict::fail(format!(
                        "{name}: zero token: read {} -> {}, written +{w}, copied +{got}; expected {want} bytes counted once",
                        a.read_bytes, b.read_bytes
                    ));
                }
                continue;
            }
            if got != want {
                return Verdict::fail(format!(
                    "{name}: copied_bytes grew by {got}, expected exactly {want}"
                ));
            }
        }
        for (e, before) in expects.iter().zip(before_crc) {
            let name = self.devs[e.dev].name.clone();
            if let Some(before) = before {
                let before = match before {
                    Ok(c) => c.clone(),
                    Err(err) => return Verdict::fail(format!("checksum before: {err}")),
                };
                match self.host_checksum(e.dev, e.region, 4096 * 8) {
                    Ok(after) if after == before => {}
                    Ok(after) => {
                        return Verdict::fail(format!(
                            "{name}: host CRC32C of bytes {}+32768 changed: {:#010x} -> {:#010x}",
                            e.region, before.crc, after.crc
                        ))
                    }
                    Err(err) => return Verdict::fail(err),
                }
                continue;
            }
            let want = crc32c::crc32c(&e.data);
            match self.host_checksum(e.dev, e.region, e.data.len() as u64) {
                Ok(c) => {
                    if c.crc != want {
                        return Verdict::fail(format!(
                            "{name}: host CRC32C of bytes {}+{} is {:#010x}, source data gives {want:#010x}",
                            e.region,
                            e.data.len(),
                            c.crc
                        ));
                    }
                    let per: Vec<u32> = e.data.chunks(BLOCK_SIZE).map(crc32c::crc32c).collect();
                    if c.blocks != per {
                        let i = c.blocks.iter().zip(&per).position(|(a, b)| a != b);
                        return Verdict::fail(format!(
                            "{name}: per-4K host CRC32C differ (first at block {i:?}, {} vs {} blocks)",
                            c.blocks.len(),
                            per.len()
                        ));
                    }
                }
                Err(err) => return Verdict::fail(err),
            }
        }
        Verdict::Pass
    }

    fn wp(&self, dev: usize, zone_byte: u64) -> Result<bz::BlkZone, Verdict> {
        bz::report_one(&self.devs[dev].file, zone_byte / SECTOR).map_err(fail("BLKREPORTZONE"))
    }

    /// Write `n` stamped 4 KiB blocks at `byte` with WRITE(16) through
    /// SG_IO (so the kernel's zone write plug never caches a write pointer
    /// the copies then move).
    fn write_sgio(&self, dev: usize, byte: u64, n: u64) -> Step {
        let d = &self.devs[dev];
        let mut buf = AlignedBuf::new((n * BS4K) as usize);
        stamp::fill_range(buf.as_mut_slice(), byte / BS4K, d.gen).map_err(fail("stamp"))?;
        let cdb = sgio::write16(byte / d.bs(), ((n * BS4K) / d.bs()) as u32);
        let c = self.sg(dev, &cdb, sgio::Data::ToDevice(buf.as_slice()))?;
        ensure(c.status == 0 && c.host_status == 0, || {
            format!("{}: WRITE(16) at byte {byte}: {c}", d.name)
        })
    }
}

// ---------------------------------------------------------------- discovery

fn t_luns(c: &mut Ctx) -> Step {
    ensure(c.hm.len() >= 2, || {
        format!(
            "{} host-managed LUNs found and opened, the suite needs 2 (cross-LU copies)",
            c.hm.len()
        )
    })?;
    let a = &c.devs[c.hm[0]];
    let b = &c.devs[c.hm[1]];
    c.diag(format!(
        "A = {} (bs {}), B = {} (bs {}), disk = {}",
        a.name,
        a.bs(),
        b.name,
        b.bs(),
        c.disk.map_or("none".into(), |d| c.devs[d].name.clone())
    ));
    if c.disk.is_none() {
        c.diag("no disk LUN: to_disk_lu tests will SKIP");
    }
    Ok(())
}

fn t_inquiry(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(None, 96), 96, "INQUIRY")?;
        ensure(b.len() >= 8, || {
            format!("INQUIRY returned {} bytes", b.len())
        })?;
        let d = &mut c.devs[i];
        d.pdt = b[0] & 0x1f;
        let want = match d.spec.kind {
            LunKind::HostManaged => 0x14,
            LunKind::HostAware | LunKind::Disk => 0x00,
        };
        let name = d.name.clone();
        ensure(d.pdt == want, || {
            format!(
                "{name}: PERIPHERAL DEVICE TYPE {:02X}h, expected {want:02X}h",
                b[0] & 0x1f
            )
        })?;
        // SPC-4 6.6.2: 3PC (byte 5 bit 3) = the LU contains a copy manager.
        ensure(b[5] & 0x08 != 0, || {
            format!(
                "{name}: standard INQUIRY byte 5 is {:02x}: 3PC bit not set",
                b[5]
            )
        })?;
    }
    Ok(())
}

fn t_vpd_pages(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(Some(0), 255), 255, "INQUIRY VPD 00h")?;
        let n = usize::from(*b.get(3).unwrap_or(&0));
        let pages = b.get(4..4 + n).unwrap_or(&[]);
        let name = c.devs[i].name.clone();
        c.diag(format!("{name}: VPD pages {}", hex(pages)));
        ensure(pages.contains(&0x83) && pages.contains(&0x8f), || {
            format!("{name}: supported VPD pages {} lack 83h or 8Fh", hex(pages))
        })?;
    }
    Ok(())
}

fn t_vpd83(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(Some(0x83), 1024), 1024, "INQUIRY VPD 83h")?;
        let name = c.devs[i].name.clone();
        let ds = parse::vpd83(&b).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        for d in &ds {
            c.diag(format!(
                "{name}: designator assoc {} type {} code set {} [{}]",
                d.association,
                d.designator_type,
                d.code_set,
                hex(&d.designator)
            ));
        }
        let lu = parse::lu_designator(&ds).cloned().ok_or_else(|| {
            Verdict::fail(format!(
                "{name}: no logical-unit designator (NAA, EUI-64, T10 or SCSI name, <= 20 bytes) for an E4h CSCD"
            ))
        })?;
        if let Some((other, _)) = seen.iter().find(|(_, d)| *d == lu.designator) {
            return Err(Verdict::fail(format!(
                "{name} and {other} share the designator [{}]",
                hex(&lu.designator)
            )));
        }
        seen.push((name, lu.designator.clone()));
        c.devs[i].designator = Some(lu);
    }
    Ok(())
}

fn t_vpd8f(c: &mut Ctx) -> Step {
    c.needs("luns")?;
    let mut first: Option<Vec<parse::TpcDescriptor>> = None;
    for i in 0..c.devs.len() {
        let b = c.data_in(i, &cdb::inquiry(Some(0x8f), 4096), 4096, "INQUIRY VPD 8Fh")?;
        let name = c.devs[i].name.clone();
        let descs = parse::vpd8f(&b).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        let t = parse::tpc(&descs).map_err(|e| Verdict::fail(format!("{name}: {e}")))?;
        if first.is_none() {
            c.diag(format!("{name}: VPD 8Fh [{}]", hex(&b)));
            c.diag(format!("{name}: {t:?}"));
            // SPC-4 7.8.17: a copy manager supporting EXTENDED COPY reports
            // Supported Commands, Parameter Data, Supported Descriptors,
            // Supported CSCD Descriptor IDs and General Copy Operations.
            for (k, what) in [
                (0x0001u16, "Supported Commands"),
                (0x0004, "Parameter Data"),
                (0x0008, "Supported Descriptors"),
                (0x000c, "Supported CSCD Descriptor IDs"),
                (0x8001, "General Copy Operations"),
            ] {
                ensure(t.kinds.contains(&k), || {
                    format!("{name}: VPD 8Fh lacks the {what} descriptor ({k:04X}h)")
                })?;
            }
            for sa in [out_sa::LID1, out_sa::LID4] {
                ensure(t.supports(0x83, sa), || {
                    format!("{name}: Supported Commands lacks 83h/{sa:02X}h")
                })?;
            }
            for sa in [
                in_sa::COPY_STATUS_LID1,
                in_sa::OPERATING_PARAMETERS,
                in_sa::FAILED_SEGMENT_DETAILS,
                in_sa::COPY_STATUS_LID4,
            ] {
                ensure(t.supports(0x84, sa), || {
                    format!("{name}: Supported Commands lacks 84h/{sa:02X}h")
                })?;
            }
            for code in [0x02u8, 0xe4] {
                ensure(t.supports_descriptor(code), || {
                    format!("{name}: Supported Descriptors lacks {code:02X}h")
                })?;
            }
            // Tokens: the token descriptors are there iff the commands are.
            let tokens = t.supports(0x83, out_sa::POPULATE_TOKEN)
                || t.supports(0x83, out_sa::WRITE_USING_TOKEN);
            if tokens {
                for (k, what) in [
                    (0x0000u16, "Block Device ROD Token Limits"),
                    (0x0106, "ROD Token Features"),
                    (0x0108, "Supported ROD Token and ROD Types"),
                ] {
                    ensure(t.kinds.contains(&k), || {
                        format!("{name}: POPULATE TOKEN / WRITE USING TOKEN advertised but VPD 8Fh lacks {what} ({k:04X}h)")
                    })?;
                }
                ensure(
                    t.supports(0x83, out_sa::POPULATE_TOKEN)
                        && t.supports(0x83, out_sa::WRITE_USING_TOKEN)
                        && t.supports(0x84, in_sa::ROD_TOKEN_INFORMATION),
                    || {
                        format!("{name}: token commands advertised only in part (83h/10h, 83h/11h, 84h/07h)")
                    },
                )?;
            }
            first = Some(comparable(&descs));
            c.tpc = Some(t);
        } else if first.as_ref() != Some(&comparable(&descs)) {
            // One copy manager per target: every LU describes it alike.
            c.diag(format!("{name}: VPD 8Fh [{}]", hex(&b)));
            return Err(Verdict::fail(format!(
                "{name}: VPD 8Fh differs from {}'s",
                c.devs[0].name
            )));
        }
    }
    Ok(())
}

/// VPD 8Fh without the Block Device ROD Token Limits descriptor, whose
/// sizes count logical blocks of each LU: what must be equal across LUs of
/// one copy manager.
fn comparable(descs: &[parse::TpcDescriptor]) -> Vec<parse::TpcDescriptor> {
    descs.iter().filter(|d| d.kind != 0x0000).cloned().collect()
}

fn t_opparams(c: &mut Ctx) -> Step {
    let a = c.a()?;
    let b = c.data_in(
        a,
        &cdb::receive_lid1(in_sa::OPERATING_PARAMETERS, 0, 1024),
        1024,
        "RECEIVE COPY OPERATING PARAMETERS",
    )?;
    c.diag(format!("operating parameters [{}]", hex(&b)));
    let o = parse::operating_parameters(&b).map_err(Verdict::Fail)?;
    ensure(o.max_cscd >= 2, || {
        format!("MAXIMUM CSCD DESCRIPTOR COUNT {} < 2", o.max_cscd)
    })?;
    ensure(o.max_segments >= 1, || {
        "MAXIMUM SEGMENT DESCRIPTOR COUNT 0".into()
    })?;
    ensure(
        o.implemented.contains(&0x02) && o.implemented.contains(&0xe4),
        || {
            format!(
                "IMPLEMENTED DESCRIPTOR TYPE CODES {} lack 02h or E4h",
                hex(&o.implemented)
            )
        },
    )?;
    c.op = Some(o);
    Ok(())
}

fn t_limits(c: &mut Ctx) -> Step {
    c.needs("vpd_8f")?;
    c.needs("operating_parameters")?;
    let (t, o) = match (&c.tpc, &c.op) {
        (Some(t), Some(o)) => (t.clone(), o.clone()),
        _ => return Err(Verdict::skip("needs vpd_8f and operating_parameters")),
    };
    let pairs = [
        (
            "MAXIMUM CSCD DESCRIPTOR COUNT",
            t.max_cscd.map(u32::from),
            u32::from(o.max_cscd),
        ),
        (
            "MAXIMUM SEGMENT DESCRIPTOR COUNT",
            t.max_segments.map(u32::from),
            u32::from(o.max_segments),
        ),
        (
            "MAXIMUM DESCRIPTOR LIST LENGTH",
            t.max_list_len,
            o.max_list_len,
        ),
        ("MAXIMUM INLINE DATA LENGTH", t.max_inline, o.max_inline),
        (
            "MAXIMUM SEGMENT LENGTH",
            t.max_segment_len,
            o.max_segment_len,
        ),
    ];
    for (what, vpd, rcr) in pairs {
        ensure(vpd == Some(rcr), || {
            format!("{what}: VPD 8Fh says {vpd:?}, RECEIVE COPY OPERATING PARAMETERS says {rcr}")
        })?;
    }
    let mut v = t.descriptors.clone().unwrap_or_default();
    let mut r = o.implemented.clone();
    v.sort_unstable();
    r.sort_unstable();
    ensure(v == r, || {
        format!(
            "descriptor type codes: VPD 8Fh {} vs operating parameters {}",
            hex(&v),
            hex(&r)
        )
    })?;
    // The list must be able to hold what it allows.
    let need = 2 * CSCD_LEN as u64 + 28;
    ensure(u64::from(o.max_list_len) >= need, || {
        format!(
            "MAXIMUM DESCRIPTOR LIST LENGTH {} cannot hold 2 CSCDs and a segment",
            o.max_list_len
        )
    })?;
    if let Some(ids) = &t.cscd_ids {
        c.diag(format!("supported CSCD IDs {ids:04x?}"));
    }
    Ok(())
}

fn t_rsoc(c: &mut Ctx) -> Step {
    let a = c.a()?;
    let t = c.tpc()?.clone();
    let mut report = Vec::new();
    let mut bad = Vec::new();
    for (op, sas) in [(0x83u8, 0u8..=0x1f), (0x84, 0..=0x1f)] {
        for sa in sas {
            let b = c.data_in(
                a,
                &cdb::rsoc_one(op, u16::from(sa), 64),
                64,
                "REPORT SUPPORTED OPERATION CODES",
            )?;
            let r = parse::rsoc_one(&b).map_err(Verdict::Fail)?;
            let advertised = t.supports(op, sa);
            let supported = r.support == 0b011 || r.support == 0b101;
            if supported {
                report.push(format!("{op:02X}h/{sa:02X}h"));
                // SPC-4 6.35.3: byte 0 of CDB USAGE DATA is the operation
                // code, and the service action code sits where the
                // SERVICE ACTION field is (byte 1 bits 4..0); the rest is a
                // usage bit map.
                if !(r.usage.len() == 16 && r.usage[0] == op && r.usage[1] & 0x1f == sa) {
                    bad.push(format!(
                        "{op:02X}h/{sa:02X}h: CDB USAGE DATA [{}] does not start {op:02x} {sa:02x} (16 bytes)",
                        hex(&r.usage)
                    ));
                }
            }
            if advertised != supported {
                bad.push(format!(
                    "{op:02X}h/{sa:02X}h: REPORT SUPPORTED OPERATION CODES SUPPORT {:03b}, VPD 8Fh Supported Commands {}",
                    r.support,
                    if advertised { "lists it" } else { "does not list it" }
                ));
            }
        }
    }
    c.diag(format!("supported: {}", report.join(" ")));
    for b in &bad {
        c.diag(b.clone());
    }
    ensure(bad.is_empty(), || {
        format!("{} mismatches, first: {}", bad.len(), bad[0])
    })
}

// --------------------------------------------------------------------- data

fn t_control(c: &mut Ctx) -> Step {
    if c.ctl.is_none() {
        return Err(Verdict::skip(c.ctl_why.clone()));
    }
    for i in 0..c.devs.len() {
        let name = c.devs[i].name.clone();
        let s = c.ctl.as_mut().map(|k| k.stats(&name));
        match s {
            Some(Ok(s)) => c.diag(format!("{name}: {s}")),
            Some(Err(e)) => {
                // Host checks cannot run: say so once here, SKIP them later.
                c.ctl_why = format!("control socket unusable: {e}");
                c.ctl = None;
                return Err(Verdict::Fail(e));
            }
            None => {}
        }
    }
    Ok(())
}

fn t_reset(c: &mut Ctx) -> Step {
    c.a()?;
    for &i in &c.hm.clone() {
        let d = &c.devs[i];
        let z = d.spec.zones.ok_or_else(|| Verdict::fail("no zones"))?;
        for k in 0..2 {
            let Some(start) = d.seq_zone(k) else { continue };
            bz::zone_mgmt(&d.file, ZoneOp::Reset, start / SECTOR, z.zone_size / SECTOR)
                .map_err(fail(&format!("{}: BLKRESETZONE at byte {start}", d.name)))?;
            let zone = c.wp(i, start)?;
            ensure(
                zone.cond == bz::BLK_ZONE_COND_EMPTY && zone.wp == start / SECTOR,
                || format!("{}: after reset: {zone}", c.devs[i].name),
            )?;
        }
    }
    Ok(())
}

fn t_sources(c: &mut Ctx) -> Step {
    c.a()?;
    let mut expects = Vec::new();
    for i in 0..c.devs.len() {
        let d = &c.devs[i];
        ensure(d.conv_bytes() >= DST_OFF + SLOT, || {
            format!(
                "{}: {} bytes of conventional space, the suite needs {}",
                d.name,
                d.conv_bytes(),
                DST_OFF + SLOT
            )
        })?;
        blockio::write_stamped(&d.file, SRC_OFF, SRC_BLOCKS, d.gen, 16)
            .map_err(fail(&format!("{}: write source", d.name)))?;
        blockio::read_verify(&d.file, SRC_OFF, SRC_BLOCKS, d.gen)
            .map_err(|e| Verdict::fail(format!("{}: {e}", d.name)))?;
        let data = c.read(i, SRC_OFF, SRC_BLOCKS * BS4K)?;
        expects.push(Expect {
            dev: i,
            region: SRC_OFF,
            data,
            stamps: None,
            copied: 0,
        });
    }
    c.sources = true;
    // Host side: what the host stores is what the guest wrote.
    let mut v = Verdict::Pass;
    if c.ctl.is_none() {
        v = Verdict::skip(c.ctl_why.clone());
    } else {
        for e in &expects {
            let want = crc32c::crc32c(&e.data);
            match c.host_checksum(e.dev, e.region, e.data.len() as u64) {
                Ok(k) if k.crc == want => {}
                Ok(k) => {
                    v = Verdict::fail(format!(
                        "{}: host CRC32C {:#010x}, guest data {want:#010x}",
                        c.devs[e.dev].name, k.crc
                    ));
                    break;
                }
                Err(e) => {
                    v = Verdict::fail(e);
                    break;
                }
            }
        }
    }
    c.host = Some(v);
    Ok(())
}

/// Blocks of stamped data at the start of A's second sequential zone.
const SEQ_SRC_BLOCKS: u64 = 16;

fn t_seq_source(c: &mut Ctx) -> Step {
    c.needs("reset_seq_zones")?;
    let a = c.a()?;
    let start = c.devs[a]
        .seq_zone(1)
        .ok_or_else(|| Verdict::skip("needs two sequential zones on A"))?;
    c.write_sgio(a, start, SEQ_SRC_BLOCKS)?;
    let z = c.wp(a, start)?;
    ensure(
        z.wp == start / SECTOR + SEQ_SRC_BLOCKS * BS4K / SECTOR,
        || format!("after writing {SEQ_SRC_BLOCKS} blocks: {z}"),
    )?;
    blockio::read_verify(&c.devs[a].file, start, SEQ_SRC_BLOCKS, c.devs[a].gen)
        .map_err(Verdict::Fail)?;
    c.seq_source = Some(start);
    Ok(())
}

// ----------------------------------------------------------------- copies

fn need_sources(c: &Ctx) -> Step {
    if c.sources {
        Ok(())
    } else {
        Err(Verdict::skip("needs data.sources"))
    }
}

fn send_list(lid4: bool, list: &CopyList) -> (Vec<u8>, [u8; 16], usize) {
    let (p, h) = if lid4 {
        (list.lid4(), LID4_HEADER)
    } else {
        (list.lid1(), LID1_HEADER)
    };
    let cdb = cdb::extended_copy(
        if lid4 { out_sa::LID4 } else { out_sa::LID1 },
        p.len() as u32,
    );
    (p, cdb, h)
}

fn record_ok(c: &mut Ctx, lid4: bool, id: u32, segs: u16, bytes: u64, via: usize) {
    if lid4 {
        c.lid4_ok = Some((id, segs, bytes, via));
    } else {
        c.lid1_ok = Some((id, segs, bytes, via));
    }
}

/// A 02h block -> block segment of `len` bytes from byte `src` of CSCD
/// `s` (block size `sbs`) to byte `dst` of CSCD `d` (block size `dbs`),
/// NUMBER OF BLOCKS in source blocks (DC 0).
fn b2b(s: u16, d: u16, len: u64, src: u64, sbs: u64, dst: u64, dbs: u64) -> Segment {
    Segment::B2B {
        src: s,
        dst: d,
        dc: false,
        blocks: (len / sbs) as u16,
        src_lba: src / sbs,
        dst_lba: dst / dbs,
    }
}

fn copy_same_lu(c: &mut Ctx, lid4: bool, ffff: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    if ffff
        && !c
            .tpc()?
            .cscd_ids
            .as_ref()
            .is_some_and(|v| v.contains(&0xffff))
    {
        return Err(Verdict::skip(
            "CSCD ID FFFFh (the LU that received the command) not advertised in VPD 8Fh 000Ch",
        ));
    }
    let bs = c.devs[a].bs();
    let dst = c.slot(a)?;
    let (src, len) = (SRC_OFF + 4 * BS4K, 8 * BS4K);
    let e = c.expect_copy(a, src, a, dst, len, false)?;
    let id = c.list_id();
    let cs = if ffff { 0xffff } else { 0 };
    let list = CopyList::new(
        id,
        &if ffff { vec![] } else { vec![c.cscd(a)?] },
        vec![b2b(cs, cs, len, src, bs, dst, bs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(a, &cdb, &p, &[a], &[e], &[])?;
    if !ffff {
        record_ok(c, lid4, id, 1, len, a);
    }
    Ok(())
}

fn copy_to_seq(c: &mut Ctx, lid4: bool, cross: bool) -> Step {
    need_sources(c)?;
    c.needs("reset_seq_zones")?;
    let a = c.a()?;
    // Same LU: A's first sequential zone; across: B's second one.
    let (d, k) = if cross { (c.b()?, 1) } else { (a, 0) };
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[d].bs());
    let zone = c.devs[d]
        .seq_zone(k)
        .ok_or_else(|| Verdict::skip(format!("{} has no sequential zone {k}", c.devs[d].name)))?;
    let z = c.wp(d, zone)?;
    let dst = z.wp * SECTOR;
    let (src, len) = (SRC_OFF + 16 * BS4K, 4 * BS4K);
    let e = c.expect_copy(a, src, d, dst, len, true)?;
    let id = c.list_id();
    let cscds = if cross {
        vec![c.cscd(a)?, c.cscd(d)?]
    } else {
        vec![c.cscd(a)?]
    };
    let list = CopyList::new(
        id,
        &cscds,
        vec![b2b(0, u16::from(cross), len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    let involved = if cross { vec![a, d] } else { vec![a] };
    c.exec(d, &cdb, &p, &involved, &[e], &[])?;
    let z2 = c.wp(d, zone)?;
    c.diag(format!("zone after: {z2}"));
    ensure(z2.wp == z.wp + len / SECTOR, || {
        format!(
            "write pointer {} -> {}, expected +{} sectors",
            z.wp,
            z2.wp,
            len / SECTOR
        )
    })
}

fn copy_from_seq(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let start = c
        .seq_source
        .ok_or_else(|| Verdict::skip("needs data.seq_source"))?;
    let a = c.a()?;
    let b = c.b()?;
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[b].bs());
    let dst = c.slot(b)?;
    let len = 8 * BS4K;
    let src = start + 4 * BS4K;
    let e = c.expect_copy(a, src, b, dst, len, false)?;
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![b2b(0, 1, len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(b, &cdb, &p, &[a, b], &[e], &[]).map(|_| ())
}

fn copy_cross(c: &mut Ctx, lid4: bool, dc: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[b].bs());
    let dst = c.slot(b)?;
    let (src, len) = (SRC_OFF + 8 * BS4K, 8 * BS4K);
    let e = c.expect_copy(a, src, b, dst, len, false)?;
    // DC 0: NUMBER OF BLOCKS counts source blocks; DC 1: destination blocks.
    let blocks = if dc { len / dbs } else { len / sbs };
    c.diag(format!(
        "{} -> {}: {} bytes as {blocks} {} blocks (DC {})",
        c.devs[a].name,
        c.devs[b].name,
        len,
        if dc { "destination" } else { "source" },
        u8::from(dc)
    ));
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![Segment::B2B {
            src: 0,
            dst: 1,
            dc,
            blocks: blocks as u16,
            src_lba: src / sbs,
            dst_lba: dst / dbs,
        }],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    // Sent to the source LU: the copy manager pushes to another LU.
    c.exec(a, &cdb, &p, &[a, b], &[e], &[]).map(|_| ())
}

fn copy_cross_back(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (sbs, dbs) = (c.devs[b].bs(), c.devs[a].bs());
    let dst = c.slot(a)?;
    let (src, len) = (SRC_OFF + 12 * BS4K, 4 * BS4K);
    let e = c.expect_copy(b, src, a, dst, len, false)?;
    let id = c.list_id();
    // CSCD list in the other order than the forward test.
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![b2b(1, 0, len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(a, &cdb, &p, &[a, b], &[e], &[]).map(|_| ())
}

fn copy_to_disk(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let d = c
        .disk
        .ok_or_else(|| Verdict::skip("no disk LUN configured"))?;
    let (sbs, dbs) = (c.devs[a].bs(), c.devs[d].bs());
    let dst = c.slot(d)?;
    let (src, len) = (SRC_OFF + 20 * BS4K, 6 * BS4K);
    let e = c.expect_copy(a, src, d, dst, len, false)?;
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(d)?, c.cscd(a)?],
        vec![b2b(1, 0, len, src, sbs, dst, dbs)],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    // Sent to the destination, the not zoned LU.
    c.exec(d, &cdb, &p, &[a, d], &[e], &[]).map(|_| ())
}

fn copy_multi(c: &mut Ctx, lid4: bool) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (abs, bbs) = (c.devs[a].bs(), c.devs[b].bs());
    let max = c.op.as_ref().map_or(1, |o| o.max_segments);
    if max < 3 {
        return Err(Verdict::skip(format!(
            "MAXIMUM SEGMENT DESCRIPTOR COUNT {max} < 3"
        )));
    }
    let da = c.slot(a)?;
    let db = c.slot(b)?;
    // seg 0: A -> A (2 blocks out of order: the second half first),
    // seg 1: A -> B, seg 2: B -> A right after seg 0's span.
    let e1 = c.expect_copy(a, SRC_OFF + 30 * BS4K, b, db, 3 * BS4K, false)?;
    let id = c.list_id();
    let segs = vec![
        Segment::B2B {
            src: 0,
            dst: 0,
            dc: false,
            blocks: (2 * BS4K / abs) as u16,
            src_lba: (SRC_OFF + 40 * BS4K) / abs,
            dst_lba: (da + 2 * BS4K) / abs,
        },
        Segment::B2B {
            src: 0,
            dst: 1,
            dc: false,
            blocks: (3 * BS4K / abs) as u16,
            src_lba: (SRC_OFF + 30 * BS4K) / abs,
            dst_lba: db / bbs,
        },
        Segment::B2B {
            src: 1,
            dst: 0,
            dc: false,
            blocks: (2 * BS4K / bbs) as u16,
            src_lba: (SRC_OFF + 50 * BS4K) / bbs,
            dst_lba: da / abs,
        },
    ];
    // Expected A region: [da, da + 4 blocks): B's 50..52 then A's 40..42.
    let mut ea = c.expect_copy(a, SRC_OFF + 40 * BS4K, a, da + 2 * BS4K, 2 * BS4K, false)?;
    let from_b = c.read(b, SRC_OFF + 50 * BS4K, 2 * BS4K)?;
    let region_a = c.read(a, da, 4 * BS4K)?;
    let mut data = region_a;
    data[..2 * BLOCK_SIZE].copy_from_slice(&from_b);
    data[2 * BLOCK_SIZE..].copy_from_slice(&ea.data);
    ea.region = da;
    ea.data = data;
    ea.stamps = None;
    ea.copied = 4 * BS4K;
    let list = CopyList::new(id, &[c.cscd(a)?, c.cscd(b)?], segs);
    let (p, cdb, _) = send_list(lid4, &list);
    c.exec(b, &cdb, &p, &[a, b], &[ea, e1], &[])?;
    // Stamps: the source block numbers, per segment.
    let got = c.read(a, da, 4 * BS4K)?;
    for i in 0..2 {
        stamp::verify(
            &got[i * BLOCK_SIZE..(i + 1) * BLOCK_SIZE],
            SRC_OFF / BS4K + 50 + i as u64,
            c.devs[b].gen,
        )
        .map_err(|e| Verdict::fail(format!("segment 2 block {i}: {e}")))?;
        stamp::verify(
            &got[(2 + i) * BLOCK_SIZE..(3 + i) * BLOCK_SIZE],
            SRC_OFF / BS4K + 40 + i as u64,
            c.devs[a].gen,
        )
        .map_err(|e| Verdict::fail(format!("segment 0 block {i}: {e}")))?;
    }
    record_ok(c, lid4, id, 3, 7 * BS4K, b);
    Ok(())
}

/// Variants of the 0Ah (byte offset) copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Off {
    /// Source and destination start 100 bytes into a block; the copy
    /// ends on a block boundary of both LUs: no residue anywhere (bytes
    /// before the destination offset are kept).
    Exact,
    /// Ends inside a destination block: with PAD 0 and CAT 0 that is an
    /// inexact segment, COPY ABORTED, UNEXPECTED INEXACT SEGMENT (26h/0Ah;
    /// SPC-4 table "PAD and CAT bits"), nothing written.
    Inexact,
}

fn copy_offsets(c: &mut Ctx, lid4: bool, v: Off) -> Step {
    need_sources(c)?;
    if !c.tpc()?.supports_descriptor(0x0a) {
        return Err(Verdict::skip("segment descriptor 0Ah not advertised"));
    }
    let a = c.a()?;
    let b = c.b()?;
    let (abs, bbs) = (c.devs[a].bs(), c.devs[b].bs());
    let db = c.slot(b)?;
    // Source: A, 100 bytes into the block at SRC + 4 blocks; destination B.
    let (src_off, dst_off, n) = match v {
        // 100 + 12188 = 3 * 4096 = 24 * 512.
        Off::Exact => (100u64, 100u64, 3 * 4096 - 100u64),
        Off::Inexact => (100, 300, 8192 + 1000),
    };
    let src_lba = (SRC_OFF + 4 * BS4K) / abs;
    let dst_lba = db / bbs;
    let e = if v == Off::Inexact {
        c.expect_unchanged(b, db, 3 * BS4K, true)?
    } else {
        c.expect_copy(
            a,
            src_lba * abs + src_off,
            b,
            dst_lba * bbs + dst_off,
            n,
            false,
        )?
    };
    let id = c.list_id();
    let list = CopyList::new(
        id,
        &[c.cscd(a)?, c.cscd(b)?],
        vec![Segment::B2BOffset {
            src: 0,
            dst: 1,
            bytes: n as u32,
            src_lba,
            dst_lba,
            src_off: src_off as u16,
            dst_off: dst_off as u16,
        }],
    );
    let (p, cdb, _) = send_list(lid4, &list);
    let want: &[(u8, u8, u8)] = if v == Off::Inexact {
        &[(key::COPY_ABORTED, 0x26, 0x0a)]
    } else {
        &[]
    };
    c.exec(b, &cdb, &p, &[a, b], &[e], want).map(|_| ())
}

// ------------------------------------------------------------------ tokens

fn token_support(c: &Ctx) -> Step {
    let t = c.tpc()?;
    if !t.supports(0x83, out_sa::POPULATE_TOKEN) {
        return Err(Verdict::skip("POPULATE TOKEN not advertised in VPD 8Fh"));
    }
    Ok(())
}

/// POPULATE TOKEN over `ranges` (bytes) of `dev`, then RECEIVE ROD TOKEN
/// INFORMATION: the token.
fn populate(c: &mut Ctx, dev: usize, ranges: &[(u64, u64)]) -> Result<[u8; 512], Verdict> {
    let bs = c.devs[dev].bs();
    let r: Vec<(u64, u32)> = ranges
        .iter()
        .map(|&(b, n)| (b / bs, (n / bs) as u32))
        .collect();
    let p = cdb::populate_token_params(0, None, &r);
    let id = c.list_id();
    let cdb = cdb::token_out(out_sa::POPULATE_TOKEN, id, p.len() as u32);
    let s0 = c.stats(&[dev]);
    let done = c.sg(dev, &cdb, sgio::Data::ToDevice(&p))?;
    ensure(done.status == 0, || {
        format!("POPULATE TOKEN: {done} sense [{}]", hex(&done.sense_bytes))
    })?;
    let alloc = 1024;
    let b = c.data_in(
        dev,
        &cdb::receive_lid4(in_sa::ROD_TOKEN_INFORMATION, id, alloc),
        alloc as usize,
        "RECEIVE ROD TOKEN INFORMATION",
    )?;
    let s1 = c.stats(&[dev]);
    let s = parse::status_lid4(&b, true)
        .map_err(|e| Verdict::fail(format!("RRTI [{}]: {e}", hex(&b[..b.len().min(64)]))))?;
    c.diag(format!(
        "RRTI: response to {:02X}h, status {:02X}h, count {} units {:02X}h, token [{}...]",
        s.response_to,
        s.status,
        s.count,
        s.units,
        s.token.map(|t| hex(&t[..16])).unwrap_or_default()
    ));
    ensure(s.response_to == out_sa::POPULATE_TOKEN, || {
        format!(
            "RESPONSE TO SERVICE ACTION {:02X}h, expected 10h",
            s.response_to
        )
    })?;
    ensure(s.status == 0x01, || {
        format!(
            "COPY OPERATION STATUS {:02X}h, expected 01h (completed, no errors)",
            s.status
        )
    })?;
    let total: u64 = ranges.iter().map(|r| r.1).sum();
    let tb = parse::transfer_bytes(s.units, s.count, bs);
    ensure(tb == Some(total), || {
        format!(
            "TRANSFER COUNT {} units {:02X}h = {tb:?} bytes, the ranges hold {total}",
            s.count, s.units
        )
    })?;
    let t = s
        .token
        .ok_or_else(|| Verdict::fail("RRTI returned no ROD token"))?;
    let rod_type = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
    ensure(u16::from_be_bytes([t[6], t[7]]) == 0x01f8, || {
        format!("ROD TOKEN LENGTH {:02x}{:02x}, expected 01F8h", t[6], t[7])
    })?;
    if let Some(types) = c.tpc.as_ref().and_then(|t| t.rod_types.clone()) {
        ensure(
            types.iter().any(|&(rt, _, out)| rt == rod_type && out),
            || {
                format!(
                    "ROD token type {rod_type:08X}h is not an advertised TOKEN_OUT type {types:x?}"
                )
            },
        )?;
    }
    // Populating reads nothing on behalf of the host.
    if let (Some(Ok(a)), Some(Ok(b))) = (s0, s1) {
        ensure(
            a[0].read_bytes == b[0].read_bytes && a[0].written_bytes == b[0].written_bytes,
            || format!("POPULATE TOKEN moved host counters: {} -> {}", a[0], b[0]),
        )?;
    }
    Ok(t)
}

fn wut(c: &mut Ctx, dev: usize, token: &[u8; 512], ranges: &[(u64, u64)]) -> (Vec<u8>, [u8; 16]) {
    let bs = c.devs[dev].bs();
    let r: Vec<(u64, u32)> = ranges
        .iter()
        .map(|&(b, n)| (b / bs, (n / bs) as u32))
        .collect();
    let p = cdb::write_using_token_params(token, 0, &r);
    let id = c.list_id();
    let cdb = cdb::token_out(out_sa::WRITE_USING_TOKEN, id, p.len() as u32);
    (p, cdb)
}

fn token_copy(c: &mut Ctx, other: bool) -> Step {
    need_sources(c)?;
    token_support(c)?;
    let a = c.a()?;
    let d = if other { c.b()? } else { a };
    // Two source ranges, out of order, into one destination range.
    let r1 = (SRC_OFF + 44 * BS4K, 3 * BS4K);
    let r2 = (SRC_OFF + 36 * BS4K, 2 * BS4K);
    let dst = c.slot(d)?;
    // The ROD is the ranges in order: r1's bytes, then r2's.
    let mut data = c.read(a, r1.0, r1.1)?;
    data.extend_from_slice(&c.read(a, r2.0, r2.1)?);
    let e = Expect {
        dev: d,
        region: dst,
        data,
        stamps: None,
        copied: r1.1 + r2.1,
    };
    let token = populate(c, a, &[r1, r2])?;
    let (p, cdb) = wut(c, d, &token, &[(dst, r1.1 + r2.1)]);
    let remote = c.tpc.as_ref().and_then(|t| t.remote_tokens);
    let involved = if other { vec![a, d] } else { vec![a] };
    let r = c.exec(d, &cdb, &p, &involved, &[e], &[]);
    if let (true, Err(Verdict::Fail(why))) = (other, &r) {
        if why.contains("23h/02h") && remote == Some(0) {
            return Err(Verdict::skip(format!(
                "ROD Token Features REMOTE TOKENS 0 and the other LU refused the token with REMOTE TOKEN USAGE NOT SUPPORTED (consistent): {why}"
            )));
        }
    }
    r.map(|_| ())
}

fn t_token_invalidated(c: &mut Ctx) -> Step {
    need_sources(c)?;
    token_support(c)?;
    let a = c.a()?;
    // Its own source blocks: they are rewritten here.
    let src = SRC_OFF + 56 * BS4K;
    let token = populate(c, a, &[(src, 4 * BS4K)])?;
    // Rewrite one block of the range (same stamp, a new write).
    blockio::write_stamped(&c.devs[a].file, src + BS4K, 1, c.devs[a].gen, 1)
        .map_err(fail("rewrite a source block"))?;
    let dst = c.slot(a)?;
    let e = c.expect_unchanged(a, dst, 4 * BS4K, true)?;
    let (p, cdb) = wut(c, a, &token, &[(dst, 4 * BS4K)]);
    // SBC-4 4.28 / SPC-4: a ROD token whose represented data changed is
    // invalid; WRITE USING TOKEN fails with ILLEGAL REQUEST, INVALID TOKEN
    // OPERATION, TOKEN CANCELLED (23h/08h)? Accept the 23h family, name it.
    let r = c.exec(
        a,
        &cdb,
        &p,
        &[a],
        &[e],
        &[(key::ILLEGAL_REQUEST, 0x23, 0x08)],
    );
    match r {
        Ok(_) => Ok(()),
        Err(Verdict::Fail(why)) => Err(Verdict::Fail(why)),
        Err(v) => Err(v),
    }
}

fn t_zero_token(c: &mut Ctx) -> Step {
    need_sources(c)?;
    token_support(c)?;
    let t = c.tpc()?;
    if !t.rod_types.as_ref().is_some_and(|v| {
        v.iter()
            .any(|&(r, tin, _)| r == cdb::ROD_TYPE_BLOCK_ZERO && tin)
    }) {
        return Err(Verdict::skip(
            "block device zero ROD token (FFFF0001h) not advertised as TOKEN_IN",
        ));
    }
    let b = c.b()?;
    let dst = c.slot(b)?;
    // Fill the destination with stamps first so zeros are a change.
    blockio::write_stamped(&c.devs[b].file, dst, 4, c.devs[b].gen, 4).map_err(fail("pre-fill"))?;
    let e = Expect {
        dev: b,
        region: dst,
        data: vec![0u8; 4 * BLOCK_SIZE],
        stamps: None,
        copied: 4 * BS4K,
    };
    let (p, cdb) = wut(c, b, &cdb::zero_rod_token(), &[(dst, 4 * BS4K)]);
    c.zero_write = true;
    let r = c.exec(b, &cdb, &p, &[b], &[e], &[]);
    c.zero_write = false;
    r?;
    // Zeroing is not a copy: whether copied_bytes counts it is the
    // backend's choice; the host verdict above expected 4 blocks copied.
    Ok(())
}

// ------------------------------------------------------------ zone errors

fn not_at_wp(c: &mut Ctx, lid4: bool, two: bool) -> Step {
    need_sources(c)?;
    c.needs("reset_seq_zones")?;
    let a = c.a()?;
    let b = c.b()?;
    let bs = c.devs[b].bs();
    let zone = c.devs[b]
        .seq_zone(0)
        .ok_or_else(|| Verdict::skip("B has no sequential zone"))?;
    // Give the zone a write pointer that is not its start.
    let z0 = c.wp(b, zone)?;
    if z0.wp == zone / SECTOR {
        c.write_sgio(b, zone, 2)?;
    }
    let z = c.wp(b, zone)?;
    let bad_dst = z.wp * SECTOR + BS4K; // one 4 KiB past the write pointer
    let mut expects = Vec::new();
    let mut segs = Vec::new();
    let abs = c.devs[a].bs();
    let mut ok_bytes = 0;
    if two {
        let dst = c.slot(b)?;
        let e = c.expect_copy(a, SRC_OFF, b, dst, 2 * BS4K, false)?;
        ok_bytes = 2 * BS4K;
        expects.push(e);
        segs.push(Segment::B2B {
            src: 0,
            dst: 1,
            dc: false,
            blocks: (2 * BS4K / abs) as u16,
            src_lba: SRC_OFF / abs,
            dst_lba: dst / bs,
        });
    }
    let before = c.expect_unchanged(b, z.wp * SECTOR, 0, false)?;
    expects.push(before);
    segs.push(Segment::B2B {
        src: 0,
        dst: 1,
        dc: false,
        blocks: (2 * BS4K / abs) as u16,
        src_lba: (SRC_OFF + 2 * BS4K) / abs,
        dst_lba: bad_dst / bs,
    });
    let id = c.list_id();
    let list = CopyList::new(id, &[c.cscd(a)?, c.cscd(b)?], segs);
    let (p, cdb, h) = send_list(lid4, &list);
    let failing = list.segments.len() - 1;
    let seg_at = list.segment_offset(h, failing);
    let sd = c
        .exec(
            b,
            &cdb,
            &p,
            &[a, b],
            &expects,
            &[(key::COPY_ABORTED, 0x21, 0x04)],
        )?
        .ok_or_else(|| Verdict::fail("no sense"))?;
    let z2 = c.wp(b, zone)?;
    ensure(z2.wp == z.wp && z2.cond == z.cond, || {
        format!("zone changed: {z} -> {z2}")
    })?;
    // The data below the write pointer is intact.
    blockio::read_verify(
        &c.devs[b].file,
        zone,
        (z.wp * SECTOR - zone) / BS4K,
        c.devs[b].gen,
    )
    .map_err(|e| Verdict::fail(format!("data below the write pointer: {e}")))?;
    // Sense-key specific: segment pointer (SPC-4 4.5.2.4.6) at the failing
    // segment descriptor.
    let sks = sd.sks.filter(|s| s.valid()).ok_or_else(|| {
        Verdict::fail(format!(
            "COPY ABORTED without a valid segment pointer: {sd}"
        ))
    })?;
    let (sd_bit, _, ptr) = sks.segment_pointer();
    let seg_len = 28;
    let ok = if sd_bit {
        usize::from(ptr) < seg_len
    } else {
        (seg_at..seg_at + seg_len).contains(&usize::from(ptr))
    };
    ensure(ok, || {
        format!(
            "segment pointer SD {} byte {ptr}: not within the failing segment descriptor {failing} at byte {seg_at}",
            u8::from(sd_bit)
        )
    })?;
    if let Some(csi) = sd.csi {
        c.diag(format!(
            "COMMAND-SPECIFIC INFORMATION {csi:#x} (failing segment {failing})"
        ));
    }
    match (lid4, two) {
        (false, false) => c.lid1_failed_single = Some((id, sd)),
        (false, true) => c.lid1_failed = Some((id, 1, ok_bytes, sd)),
        (true, _) => c.lid4_failed = Some((id, 1, ok_bytes, sd)),
    }
    Ok(())
}

// --------------------------------------------------------------- bad lists

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    Truncated,
    CscdType,
    SegmentType,
    TooManyCscds,
    TooManySegments,
    Inline,
    UnknownLu,
    CscdIndex,
    BlockLength,
    BeyondCapacity,
    Lid4SegmentType,
    NoListIdNonzero,
}

fn bad(c: &mut Ctx, what: Bad) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let b = c.b()?;
    let (abs, bbs) = (c.devs[a].bs(), c.devs[b].bs());
    let t = c.tpc()?.clone();
    let o =
        c.op.clone()
            .ok_or_else(|| Verdict::skip("needs operating_parameters"))?;
    let dst = c.slot(b)?;
    let len = 2 * BS4K;
    let good_seg = Segment::B2B {
        src: 0,
        dst: 1,
        dc: false,
        blocks: (len / abs) as u16,
        src_lba: SRC_OFF / abs,
        dst_lba: dst / bbs,
    };
    let mut list = CopyList::new(
        c.list_id(),
        &[c.cscd(a)?, c.cscd(b)?],
        vec![good_seg.clone()],
    );
    let lid4 = what == Bad::Lid4SegmentType;
    let h = if lid4 { LID4_HEADER } else { LID1_HEADER };
    let ill = key::ILLEGAL_REQUEST;
    // (sense, field pointer in the parameter list if SPC asks for one)
    let (want, ptr): (Vec<(u8, u8, u8)>, Option<usize>) = match what {
        Bad::Truncated => (vec![(ill, 0x1a, 0x00)], None),
        Bad::CscdType => {
            let code = [0xe0u8, 0xe1, 0xe2, 0xe3, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9]
                .into_iter()
                .find(|x| !t.supports_descriptor(*x))
                .ok_or_else(|| Verdict::skip("every CSCD type code E0h..E9h is advertised"))?;
            list.cscds[1][0] = code;
            c.diag(format!("CSCD 1 type code {code:02X}h"));
            (vec![(ill, 0x26, 0x07)], Some(h + CSCD_LEN))
        }
        Bad::SegmentType | Bad::Lid4SegmentType => {
            let code = [0x01u8, 0x03, 0x07, 0x0b, 0x0c, 0x0d]
                .into_iter()
                .find(|x| !t.supports_descriptor(*x))
                .ok_or_else(|| Verdict::skip("no unadvertised segment type code to try"))?;
            let mut raw = good_seg.encode();
            raw[0] = code;
            list.segments = vec![Segment::Raw(raw)];
            c.diag(format!("segment 0 type code {code:02X}h"));
            (vec![(ill, 0x26, 0x09)], Some(h + 2 * CSCD_LEN))
        }
        Bad::TooManyCscds => {
            let n = usize::from(o.max_cscd) + 1;
            if (n * CSCD_LEN + 28) as u64 > u64::from(o.max_list_len) {
                return Err(Verdict::skip(format!(
                    "{n} CSCDs exceed MAXIMUM DESCRIPTOR LIST LENGTH {}: the list-length error would come first",
                    o.max_list_len
                )));
            }
            let one = list.cscds[1].clone();
            list.cscds.resize(n, one);
            (vec![(ill, 0x26, 0x06)], None)
        }
        Bad::TooManySegments => {
            let n = usize::from(o.max_segments) + 1;
            if (2 * CSCD_LEN + n * 28) as u64 > u64::from(o.max_list_len) {
                return Err(Verdict::skip(format!(
                    "{n} segments exceed MAXIMUM DESCRIPTOR LIST LENGTH {}",
                    o.max_list_len
                )));
            }
            list.segments = vec![good_seg.clone(); n];
            (vec![(ill, 0x26, 0x08)], None)
        }
        Bad::Inline => {
            list.inline = vec![0x5a; (o.max_inline as usize + 4).div_ceil(4) * 4];
            (vec![(ill, 0x26, 0x0b)], None)
        }
        Bad::UnknownLu => {
            // A designator of the same type no LU of this target has.
            let mut cs = c.cscd(b)?;
            for x in cs.designator.iter_mut().skip(1) {
                *x ^= 0x5a;
            }
            list.cscds[1] = cs.encode().to_vec();
            (vec![(key::COPY_ABORTED, 0x0d, 0x02)], None)
        }
        Bad::CscdIndex => {
            list.segments = vec![Segment::B2B {
                src: 0,
                dst: 5,
                dc: false,
                blocks: (len / abs) as u16,
                src_lba: SRC_OFF / abs,
                dst_lba: dst / bbs,
            }];
            // The CSCD index names no descriptor: INVALID FIELD IN
            // PARAMETER LIST at the DESTINATION CSCD DESCRIPTOR ID.
            // SPC-4 names no single code here: an unknown CSCD is
            // unreachable (LIO: COPY ABORTED 0Dh/02h; FreeBSD CTL: COPY
            // ABORTED 08h/04h UNREACHABLE COPY TARGET), or the field is
            // invalid (ILLEGAL REQUEST 26h/00h). The pointer must name the
            // DESTINATION CSCD DESCRIPTOR ID either way.
            (
                vec![
                    (key::COPY_ABORTED, 0x0d, 0x02),
                    (key::COPY_ABORTED, 0x08, 0x04),
                    (ill, 0x26, 0x00),
                ],
                Some(h + 2 * CSCD_LEN + 6),
            )
        }
        Bad::BlockLength => {
            // B's CSCD claims 4096-byte blocks (or 512 if it has 4096).
            let other = if bbs == 4096 { 512u32 } else { 4096 };
            let mut cs = c.cscd(b)?;
            cs.block_len = other;
            list.cscds[1] = cs.encode().to_vec();
            c.diag(format!(
                "CSCD 1 DISK BLOCK LENGTH {other}, the LU has {bbs}"
            ));
            // A CSCD that does not describe the LU it names: COPY ABORTED,
            // INCORRECT COPY TARGET DEVICE TYPE, or a parameter-list field
            // error (ILLEGAL REQUEST 26h/00h) at DISK BLOCK LENGTH (CSCD
            // byte 29). COPY ABORTED is for errors at the source or
            // destination (SPC-4 4.5.6), not for parameter-list fields.
            (
                vec![(key::COPY_ABORTED, 0x0d, 0x03), (ill, 0x26, 0x00)],
                Some(h + CSCD_LEN + 29),
            )
        }
        Bad::NoListIdNonzero => {
            // SPC-4 6.4.3.2: LIST ID USAGE 11b requires LIST IDENTIFIER 0.
            list.usage = cdb::ListIdUsage::None;
            list.list_id |= 1;
            (vec![(ill, 0x26, 0x00)], Some(0))
        }
        Bad::BeyondCapacity => {
            let last = c.devs[a].spec.size / abs;
            list.segments = vec![Segment::B2B {
                src: 0,
                dst: 1,
                dc: false,
                blocks: (len / abs) as u16,
                src_lba: last - 1,
                dst_lba: dst / bbs,
            }];
            (vec![(key::COPY_ABORTED, 0x21, 0x00)], None)
        }
    };
    let (mut p, cdb_bytes, _) = send_list(lid4, &list);
    let mut cdb_arr = cdb_bytes;
    if what == Bad::Truncated {
        // Cut the last segment descriptor short: the PARAMETER LIST LENGTH
        // ends inside it.
        p.truncate(p.len() - 10);
        cdb_arr = cdb::extended_copy(out_sa::LID1, p.len() as u32);
    }
    let e = c.expect_unchanged(b, dst, len, true)?;
    let sd = c
        .exec(a, &cdb_arr, &p, &[a, b], &[e], &want)?
        .ok_or_else(|| Verdict::fail("no sense"))?;
    if let Some(at) = ptr {
        // SPC-4 4.5.2.4.2: if SKSV is set, C/D 0 and the pointer at the
        // offending byte of the parameter list.
        // COPY ABORTED carries a segment pointer instead (4.5.2.4.6): SD 1
        // makes it relative to the (first, here the only) segment.
        match sd.sks.filter(|s| s.valid()) {
            Some(s) if sd.key == key::COPY_ABORTED => {
                let (sd_bit, _, f) = s.segment_pointer();
                let abs = if sd_bit {
                    usize::from(f) + list.segment_offset(h, 0)
                } else {
                    usize::from(f)
                };
                ensure(abs == at, || {
                    format!(
                        "segment pointer SD {} byte {f} = list byte {abs}, expected list byte {at}",
                        u8::from(sd_bit)
                    )
                })?;
            }
            Some(s) => {
                let (cd, _, f) = s.field_pointer();
                ensure(!cd && usize::from(f) == at, || {
                    format!(
                        "field pointer C/D {} byte {f}, expected parameter-list byte {at}",
                        u8::from(cd)
                    )
                })?;
            }
            None => c.diag(format!(
                "no field pointer (SKSV 0); byte {at} would be the one"
            )),
        }
    }
    Ok(())
}

/// A list identifier is unique among operations in progress only: a
/// completed list's identifier may be used again (SPC-4 6.4.3.2).
fn t_list_id_reuse(c: &mut Ctx) -> Step {
    need_sources(c)?;
    let a = c.a()?;
    let bs = c.devs[a].bs();
    let id = c.list_id();
    let mut first_host = None;
    for round in 0..2 {
        let dst = c.slot(a)?;
        let src = SRC_OFF + (24 + 2 * round) * BS4K;
        let e = c.expect_copy(a, src, a, dst, 2 * BS4K, false)?;
        let list = CopyList::new(
            id,
            &[c.cscd(a)?],
            vec![Segment::B2B {
                src: 0,
                dst: 0,
                dc: false,
                blocks: (2 * BS4K / bs) as u16,
                src_lba: src / bs,
                dst_lba: dst / bs,
            }],
        );
        let (p, cdb, _) = send_list(false, &list);
        c.exec(a, &cdb, &p, &[a], &[e], &[]).map_err(|v| match v {
            Verdict::Fail(w) => {
                Verdict::Fail(format!("round {round} with list {:02x}: {w}", id as u8))
            }
            v => v,
        })?;
        if round == 0 {
            first_host = c.host.take();
        }
    }
    // Report the first round's host failure if it had one.
    if let Some(Verdict::Fail(w)) = first_host {
        c.host = Some(Verdict::Fail(format!("round 0: {w}")));
    }
    Ok(())
}

fn t_list_id_in_use(_c: &mut Ctx) -> Step {
    Err(Verdict::skip(
        "SG_IO is synchronous: a second list with the same identifier cannot be sent while the first runs",
    ))
}

// ------------------------------------------------------------ copy results

fn t_status_lid1_ok(c: &mut Ctx) -> Step {
    let (id, segs, bytes, a) = c
        .lid1_ok
        .ok_or_else(|| Verdict::skip("needs a completed LID1 copy"))?;
    let b = c.data_in(
        a,
        &cdb::receive_lid1(in_sa::COPY_STATUS_LID1, id as u8, 64),
        64,
        "RECEIVE COPY STATUS(LID1)",
    )?;
    c.diag(format!("list {:02x}: [{}]", id as u8, hex(&b)));
    let s = parse::status_lid1(&b).map_err(Verdict::Fail)?;
    ensure(s.available == 8, || {
        format!("AVAILABLE DATA {}, expected 8", s.available)
    })?;
    ensure(s.status == 0x01, || {
        format!("COPY MANAGER STATUS {:02X}h, expected 01h", s.status)
    })?;
    ensure(s.segments == segs, || {
        format!("SEGMENTS PROCESSED {}, expected {segs}", s.segments)
    })?;
    let tb = parse::transfer_bytes(s.units, u64::from(s.count), c.devs[a].bs());
    ensure(tb == Some(bytes), || {
        format!(
            "TRANSFER COUNT {} units {:02X}h = {tb:?} bytes, expected {bytes}",
            s.count, s.units
        )
    })
}

fn t_status_lid1_failed(c: &mut Ctx) -> Step {
    let (id, segs, bytes, _) = c
        .lid1_failed
        .clone()
        .ok_or_else(|| Verdict::skip("needs zone_errors.lid1_second_segment_fails"))?;
    let b = c.b()?;
    let d = c.data_in(
        b,
        &cdb::receive_lid1(in_sa::COPY_STATUS_LID1, id as u8, 64),
        64,
        "RECEIVE COPY STATUS(LID1)",
    )?;
    c.diag(format!("list {:02x}: [{}]", id as u8, hex(&d)));
    let s = parse::status_lid1(&d).map_err(Verdict::Fail)?;
    ensure(s.status == 0x02, || {
        format!(
            "COPY MANAGER STATUS {:02X}h, expected 02h (completed with error)",
            s.status
        )
    })?;
    ensure(s.segments == segs, || {
        format!("SEGMENTS PROCESSED {}, expected {segs}", s.segments)
    })?;
    let tb = parse::transfer_bytes(s.units, u64::from(s.count), c.devs[b].bs());
    ensure(tb == Some(bytes), || {
        format!(
            "TRANSFER COUNT {} units {:02X}h = {tb:?} bytes, expected {bytes}",
            s.count, s.units
        )
    })
}

fn t_failure_details(c: &mut Ctx) -> Step {
    let (id, sd) = c
        .lid1_failed_single
        .clone()
        .ok_or_else(|| Verdict::skip("needs zone_errors.lid1_not_at_wp"))?;
    let b = c.b()?;
    let d = c.data_in(
        b,
        &cdb::receive_lid1(in_sa::FAILED_SEGMENT_DETAILS, id as u8, 1024),
        1024,
        "RECEIVE COPY FAILURE DETAILS",
    )?;
    c.diag(format!("list {:02x}: [{}]", id as u8, hex(&d)));
    let f = parse::failure_details(&d).map_err(Verdict::Fail)?;
    ensure(f.available > 0, || {
        "AVAILABLE DATA 0 for a failed list".into()
    })?;
    ensure(f.status == 0x02, || {
        format!("COPY COMMAND STATUS {:02X}h, expected 02h", f.status)
    })?;
    let fs = SenseData::decode(&f.sense)
        .ok_or_else(|| Verdict::fail(format!("sense [{}] does not decode", hex(&f.sense))))?;
    ensure(
        (fs.key, fs.asc, fs.ascq) == (sd.key, sd.asc, sd.ascq),
        || format!("held sense {fs} differs from the command's {sd}"),
    )
}

fn t_status_lid4_ok(c: &mut Ctx) -> Step {
    let (id, segs, bytes, a) = c
        .lid4_ok
        .ok_or_else(|| Verdict::skip("needs a completed LID4 copy"))?;
    let d = c.data_in(
        a,
        &cdb::receive_lid4(in_sa::COPY_STATUS_LID4, id, 1024),
        1024,
        "RECEIVE COPY STATUS(LID4)",
    )?;
    c.diag(format!("list {id:08x}: [{}]", hex(&d)));
    let s = parse::status_lid4(&d, false).map_err(Verdict::Fail)?;
    ensure(s.response_to == out_sa::LID4, || {
        format!(
            "RESPONSE TO SERVICE ACTION {:02X}h, expected 01h",
            s.response_to
        )
    })?;
    ensure(s.status == 0x01, || {
        format!("COPY OPERATION STATUS {:02X}h, expected 01h", s.status)
    })?;
    ensure(s.completion_status == 0, || {
        format!(
            "EXTENDED COPY COMPLETION STATUS {:02X}h, expected 00h GOOD",
            s.completion_status
        )
    })?;
    ensure(s.segments == segs, || {
        format!("SEGMENTS PROCESSED {}, expected {segs}", s.segments)
    })?;
    let tb = parse::transfer_bytes(s.units, s.count, c.devs[a].bs());
    ensure(tb == Some(bytes), || {
        format!(
            "TRANSFER COUNT {} units {:02X}h = {tb:?} bytes, expected {bytes}",
            s.count, s.units
        )
    })
}

fn t_status_lid4_failed(c: &mut Ctx) -> Step {
    let (id, segs, bytes, sd) = c
        .lid4_failed
        .clone()
        .ok_or_else(|| Verdict::skip("needs zone_errors.lid4_second_segment_fails"))?;
    let b = c.b()?;
    let d = c.data_in(
        b,
        &cdb::receive_lid4(in_sa::COPY_STATUS_LID4, id, 1024),
        1024,
        "RECEIVE COPY STATUS(LID4)",
    )?;
    c.diag(format!("list {id:08x}: [{}]", hex(&d)));
    let s = parse::status_lid4(&d, false).map_err(Verdict::Fail)?;
    ensure(s.response_to == out_sa::LID4, || {
        format!(
            "RESPONSE TO SERVICE ACTION {:02X}h, expected 01h",
            s.response_to
        )
    })?;
    ensure(s.status == 0x02, || {
        format!(
            "COPY OPERATION STATUS {:02X}h, expected 02h (completed with error)",
            s.status
        )
    })?;
    ensure(s.completion_status == sgio::CHECK_CONDITION, || {
        format!(
            "EXTENDED COPY COMPLETION STATUS {:02X}h, expected 02h CHECK CONDITION",
            s.completion_status
        )
    })?;
    ensure(s.segments == segs, || {
        format!("SEGMENTS PROCESSED {}, expected {segs}", s.segments)
    })?;
    let tb = parse::transfer_bytes(s.units, s.count, c.devs[b].bs());
    ensure(tb == Some(bytes), || {
        format!(
            "TRANSFER COUNT {} units {:02X}h = {tb:?} bytes, expected {bytes}",
            s.count, s.units
        )
    })?;
    let fs = SenseData::decode(&s.sense)
        .ok_or_else(|| Verdict::fail(format!("sense [{}] does not decode", hex(&s.sense))))?;
    ensure(
        (fs.key, fs.asc, fs.ascq) == (sd.key, sd.asc, sd.ascq),
        || format!("status sense {fs} differs from the command's {sd}"),
    )
}

/// ILLEGAL REQUEST, INVALID FIELD IN CDB with the field pointer at CDB
/// byte 2 (the LIST IDENTIFIER) if SKSV.
fn expect_invalid_list_id(c: &mut Ctx, dev: usize, cdb: &[u8], dir_in: bool) -> Step {
    let mut buf = vec![0u8; 64];
    let data = if dir_in {
        sgio::Data::FromDevice(&mut buf)
    } else {
        sgio::Data::None
    };
    let done = c.sg(dev, cdb, data)?;
    let sd = SenseData::decode(&done.sense_bytes);
    c.diag(format!(
        "status {:#04x} sense [{}]",
        done.status,
        hex(&done.sense_bytes)
    ));
    let s = sd.ok_or_else(|| {
        Verdict::fail(format!("expected CHECK CONDITION 05h 24h/00h, got {done}"))
    })?;
    ensure(
        done.status == sgio::CHECK_CONDITION
            && (s.key, s.asc, s.ascq) == (key::ILLEGAL_REQUEST, 0x24, 0),
        || format!("expected CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB; got {s}"),
    )?;
    if let Some(k) = s.sks.filter(|k| k.valid()) {
        let (cd, _, f) = k.field_pointer();
        ensure(cd && f == 2, || {
            format!(
                "field pointer C/D {} byte {f}, expected CDB byte 2",
                u8::from(cd)
            )
        })?;
    }
    Ok(())
}

fn t_status_unknown(c: &mut Ctx) -> Step {
    let a = c.a()?;
    // A list identifier this run never used (LID4 space is large).
    let id = c.list_id() ^ 0x8000_0000;
    expect_invalid_list_id(
        c,
        a,
        &cdb::receive_lid4(in_sa::COPY_STATUS_LID4, id, 64),
        true,
    )
}

fn t_abort_unknown(c: &mut Ctx) -> Step {
    let a = c.a()?;
    if !c.tpc()?.supports(0x83, out_sa::COPY_OPERATION_ABORT) {
        return Err(Verdict::skip("COPY OPERATION ABORT not advertised"));
    }
    let id = c.list_id() ^ 0x8000_0000;
    expect_invalid_list_id(c, a, &cdb::copy_operation_abort(id), false)
}

// ------------------------------------------------------------------ runner

impl Context for Ctx {
    fn before_test(&mut self) {
        self.host = None;
    }

    fn take_diags(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diags)
    }

    fn record(&mut self, _area: &str, name: &str, verdict: &Verdict) {
        self.done.record(name, *verdict == Verdict::Pass);
    }
}

/// One area as a KTAP subtest; a copy test is followed by its host half.
fn run_area<W: Write>(
    r: &Runner<'_, W>,
    c: &mut Ctx,
    name: &str,
    tests: &[Test],
) -> io::Result<()> {
    let n: usize = tests.iter().map(|t| if t.2 { 2 } else { 1 }).sum();
    r.subtest(name, n, || {
        for &(tname, f, host) in tests {
            let v = r.test(c, name, tname, f)?;
            if host {
                let hv = match (v, c.host.take()) {
                    (_, Some(h)) => h,
                    (Verdict::Pass, None) => Verdict::fail("suite bug: no host verdict"),
                    (Verdict::Skip(why), None) => Verdict::Skip(why),
                    (Verdict::Fail(_), None) => Verdict::skip(format!("needs {tname}")),
                };
                r.result(&format!("{tname}.host"), &hv.into())?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Run the xcopy suite. Returns whether every result was `ok`.
pub fn run<W: Write>(k: &mut Ktap<W>, cfg: &Config, sys_root: &Path) -> io::Result<bool> {
    if cfg.luns.is_empty() {
        return crate::ktap::no_luns(k);
    }
    let k = Runner::new(k);
    k.plan(AREAS.len() + 1)?;
    let gen = crate::stamp::run_generation();
    let luns: Vec<u64> = cfg.luns.keys().copied().collect();
    let (disks, errors) = sysfs::wait_for_luns(sys_root, &luns, crate::smoke::DISCOVERY_TIMEOUT);
    let mut c = Ctx {
        devs: Vec::new(),
        hm: Vec::new(),
        disk: None,
        tpc: None,
        op: None,
        ctl: cfg.control.map(control::Client::new),
        ctl_why: if cfg.control.is_some() {
            String::new()
        } else {
            "no zonecopy.control= on the kernel command line: host checksums and offload counters not checked".into()
        },
        done: Done::default(),
        diags: Vec::new(),
        host: None,
        next_list: (gen as u32) & 0x00ff_ff00,
        lid1_ok: None,
        lid4_ok: None,
        zero_write: false,
        lid1_failed: None,
        lid1_failed_single: None,
        lid4_failed: None,
        sources: false,
        seq_source: None,
    };
    let mut problems = Vec::new();
    for e in &errors {
        k.diag(&format!("sysfs: {e}"))?;
    }
    for (&n, spec) in &cfg.luns {
        match sysfs::pick_lun(&disks, n) {
            Ok(d) => match blockio::open_direct(&d.dev_path()) {
                Ok(file) => {
                    k.diag(&format!("lun{n}: {d}"))?;
                    let i = c.devs.len();
                    match spec.kind {
                        LunKind::HostManaged => c.hm.push(i),
                        LunKind::HostAware => {}
                        LunKind::Disk => {
                            if c.disk.is_none() {
                                c.disk = Some(i);
                            }
                        }
                    }
                    c.devs.push(Dev {
                        n,
                        name: format!("lun{n}"),
                        spec: *spec,
                        file,
                        pdt: 0,
                        designator: None,
                        gen: gen.wrapping_add(n),
                        slot: 0,
                    });
                }
                Err(e) => problems.push(format!("lun{n}: open {}: {e}", d.dev_path().display())),
            },
            Err(e) => problems.push(format!("lun{n}: {e}")),
        }
    }
    // A as the 4 KiB-block LU if there is one: copies go 4K -> 512.
    c.hm.sort_by_key(|&i| std::cmp::Reverse(c.devs[i].bs()));
    if problems.is_empty() {
        k.result("config", &Outcome::Pass)?;
    } else {
        k.result("config", &Outcome::Fail(problems.join("; ")))?;
    }
    k.diag(&format!(
        "generation {gen:#x}, control {}",
        cfg.control.map_or("none".to_string(), |a| a.to_string())
    ))?;
    for d in &c.devs {
        k.diag(&format!(
            "{} = LUN {} {} bs {}",
            d.name,
            d.n,
            d.spec.kind,
            d.bs()
        ))?;
    }
    for (name, tests) in AREAS {
        run_area(&k, &mut c, name, tests)?;
    }
    Ok(!k.failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_host_halves() {
        let n: usize = LID1.iter().map(|t| if t.2 { 2 } else { 1 }).sum();
        assert_eq!(n, 2 * LID1.len());
        // Names are unique within an area.
        for (_, tests) in AREAS {
            let mut names: Vec<&str> = tests.iter().map(|t| t.0).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), tests.len());
        }
    }

    #[test]
    fn no_luns_still_prints_a_plan() {
        let mut k = Ktap::new(Vec::new()).unwrap();
        let ok = run(&mut k, &Config::default(), Path::new("/nonexistent")).unwrap();
        assert!(!ok);
        assert_eq!(
            String::from_utf8(k.into_inner()).unwrap(),
            "KTAP version 1\n1..1\nnot ok 1 config # no zonecopy.lun<N>= on the kernel command line\n"
        );
    }

    #[test]
    fn without_devices_everything_skips_or_fails_cleanly() {
        // Drive the areas with no devices: nothing panics, every test
        // prints one line (two for copy tests).
        let mut c = Ctx {
            devs: Vec::new(),
            hm: Vec::new(),
            disk: None,
            tpc: None,
            op: None,
            ctl: None,
            ctl_why: "no control".into(),
            done: Done::default(),
            diags: Vec::new(),
            host: None,
            next_list: 0,
            lid1_ok: None,
            lid4_ok: None,
            zero_write: false,
            lid1_failed: None,
            lid1_failed_single: None,
            lid4_failed: None,
            sources: false,
            seq_source: None,
        };
        let mut k = Ktap::new(Vec::new()).unwrap();
        k.plan(AREAS.len() as u32).unwrap();
        let r = Runner::new(&mut k);
        for (name, tests) in AREAS {
            run_area(&r, &mut c, name, tests).unwrap();
        }
        let out = String::from_utf8(k.into_inner()).unwrap();
        assert!(!out.contains("panicked"), "{out}");
        assert!(!out.contains("suite bug"), "{out}");
        assert!(
            out.contains("ok 1 conv_to_conv # SKIP needs data.sources"),
            "{out}"
        );
        assert!(
            out.contains("ok 2 conv_to_conv.host # SKIP needs data.sources"),
            "{out}"
        );
    }
}
