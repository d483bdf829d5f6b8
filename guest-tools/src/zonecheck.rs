//! Checks shared by the suites that drive a zoned block device through the
//! kernel: SCSI ZBC disks (`smoke`) and NVMe ZNS namespaces (`nvme`).

use std::fs::File;

use crate::{
    blkzoned as bz, blockio,
    cmdline::ZoneSpec,
    ktap::{ensure, fail, Step, Verdict},
    stamp::{self, BLOCK_SIZE},
};

const SECTOR: u64 = 512;

/// BLKREPORTZONE of the zone at `sector`: it must be in `cond` with its
/// write pointer at `wp` (sector). The zone as reported goes to `diags`.
pub fn expect_zone(
    f: &File,
    sector: u64,
    (cond, wp): (u8, u64),
    when: &str,
    diags: &mut Vec<String>,
) -> Step {
    let z = bz::report_one(f, sector).map_err(fail("BLKREPORTZONE"))?;
    diags.push(format!("{when}: {z}"));
    ensure(z.cond == cond && z.wp == wp, || {
        format!(
            "{when}: zone {} is {} wp {}, expected {} wp {}",
            z.start,
            bz::cond_name(z.cond),
            z.wp,
            bz::cond_name(cond),
            wp
        )
    })
}

/// Write one stamped 4 KiB block (generation `gen`) at `byte`, one block
/// past a zone's write pointer: the write must fail, with EIO (Linux >=
/// 6.10 fails it in zone write plugging and never sends it) or EREMOTEIO
/// (older kernels send it and map the device's error, ZBC's ILLEGAL
/// REQUEST 21h/04h or ZNS's Zone Invalid Write, to BLK_STS_TARGET).
/// Returns the error, for the diagnostics.
pub fn write_past_wp(f: &File, byte: u64, gen: u64) -> Result<std::io::Error, Verdict> {
    let mut buf = blockio::AlignedBuf::new(BLOCK_SIZE);
    stamp::fill(buf.as_mut_slice(), byte / BLOCK_SIZE as u64, gen).map_err(fail("stamp"))?;
    match blockio::pwrite_exact(f, buf.as_slice(), byte) {
        Ok(()) => Err(Verdict::fail(format!(
            "write at byte {byte}, one block past the write pointer, succeeded"
        ))),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EREMOTEIO)) => Ok(e),
        Err(e) => Err(Verdict::fail(format!(
            "write past wp failed with {e}, expected EIO or EREMOTEIO"
        ))),
    }
}

/// Report every zone of a device of `size` bytes with BLKREPORTZONE and
/// check the layout the host configured: `zs.conventional` conventional
/// zones (NOT WRITE POINTER) then sequential write required zones, each
/// zone's start and length (the last one may be short), the capacity of
/// the sequential zones, and that the kernel reports capacities at all.
/// The first and last zone go to `diags`.
pub fn layout(file: &File, size: u64, zs: &ZoneSpec, diags: &mut Vec<String>) -> Step {
    let want = size.div_ceil(zs.zone_size);
    let nr = u32::try_from(want).map_err(|_| Verdict::fail("too many zones"))?;
    let (flags, zones) = bz::report_all(file, nr).map_err(fail("BLKREPORTZONE"))?;
    if let (Some(a), Some(b)) = (zones.first(), zones.last()) {
        diags.push(format!("first: {a}"));
        diags.push(format!("last:  {b}"));
    }
    ensure(zones.len() as u64 == want, || {
        format!(
            "BLKREPORTZONE returned {} zones, expected {want}",
            zones.len()
        )
    })?;
    ensure(flags & bz::BLK_ZONE_REP_CAPACITY != 0, || {
        format!("report flags {flags:#x} lack BLK_ZONE_REP_CAPACITY")
    })?;
    for (i, z) in (0u64..).zip(&zones) {
        let start = i * zs.zone_size / SECTOR;
        let len = zs.zone_size.min(size - i * zs.zone_size) / SECTOR;
        let at = || format!("zone {i} ({z})");
        ensure(z.start == start && z.len == len, || {
            format!("{}: expected start {start} len {len}", at())
        })?;
        if i < zs.conventional {
            ensure(z.type_ == bz::BLK_ZONE_TYPE_CONVENTIONAL, || {
                format!("{}: expected CONVENTIONAL", at())
            })?;
            ensure(z.cond == bz::BLK_ZONE_COND_NOT_WP, || {
                format!("{}: expected NOT_WP", at())
            })?;
        } else {
            let cap = (zs.capacity / SECTOR).min(len);
            ensure(z.type_ == bz::BLK_ZONE_TYPE_SEQWRITE_REQ, || {
                format!("{}: expected SEQWRITE_REQ", at())
            })?;
            ensure(z.capacity == cap, || {
                format!("{}: expected capacity {cap}", at())
            })?;
        }
    }
    Ok(())
}
