//! SBC-4 commands: READ CAPACITY(10)/(16), READ and WRITE (6)/(10)/(16),
//! SYNCHRONIZE CACHE(10)/(16), VERIFY(16).

use std::cell::RefCell;

use super::{
    cdb::{
        ByteCheck, Read10, Read16, Read6, ReadCapacity10, ReadCapacity16, RwArgs, SyncCache10,
        SyncCache16, Verify16, Write10, Write16, Write6,
    },
    sense::{storage_error_sense, Access, Asc, ErrorContext, Sense, SenseKey},
    zbc, Exec,
};
use crate::storage::{BlockCount, Lba, StorageError};

/// The largest transfer, in bytes, of one READ or WRITE; reported in the
/// Block Limits VPD page. Bounds the data buffer of one command.
pub const MAX_TRANSFER_BYTES: u32 = 4 << 20;

/// MAXIMUM TRANSFER LENGTH in logical blocks.
pub fn max_transfer_blocks(block_size: u32) -> u32 {
    MAX_TRANSFER_BYTES / block_size.max(1)
}

thread_local! {
    /// The data buffer of this thread's READs and WRITEs, kept between
    /// commands (each queue worker has its own): a fresh zeroed buffer per
    /// command cost a calloc on every I/O, and for large transfers an
    /// mmap, a page fault per page, zeroing and munmap.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on a buffer of `len` bytes (at most [`MAX_TRANSFER_BYTES`]):
/// the thread's kept buffer, or a fresh one if that is in use. Its contents
/// are what an earlier command left there: `f` must fill all of it before
/// any of it leaves (READ: the device read succeeded; WRITE: the whole
/// Data-Out arrived).
fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUFFER.with(|b| match b.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0u8; len]),
    })
}

fn map(access: Access, lba_field: u16) -> impl Fn(StorageError) -> Sense {
    move |e| storage_error_sense(&e, ErrorContext { access, lba_field })
}

/// READ CAPACITY(10) (SBC-4): RETURNED LOGICAL BLOCK ADDRESS is the
/// last LBA, or FFFF_FFFFh when that does not fit (use READ CAPACITY(16)).
pub fn read_capacity10(x: &mut Exec<'_, '_>, c: ReadCapacity10) -> Result<u32, Sense> {
    if !c.pmi && c.lba != 0 {
        return Err(Sense::invalid_field(2, Some(7)));
    }
    let geo = x.lu()?.device.geometry();
    let last = geo.capacity.get().saturating_sub(1);
    let mut d = u32::try_from(last)
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    d.extend_from_slice(&geo.block_size.to_be_bytes());
    x.send(&d, 8)
}

/// READ CAPACITY(16) (SBC-4): 32 bytes of parameter data.
pub fn read_capacity16(x: &mut Exec<'_, '_>, c: ReadCapacity16) -> Result<u32, Sense> {
    if !c.pmi && c.lba != 0 {
        return Err(Sense::invalid_field(2, Some(7)));
    }
    let geo = x.lu()?.device.geometry();
    let mut d = vec![0u8; 32];
    let last = geo.capacity.get().saturating_sub(1);
    d[..8].copy_from_slice(&last.to_be_bytes());
    d[8..12].copy_from_slice(&geo.block_size.to_be_bytes());
    // Byte 12: RC BASIS 01b (bits 5-4): the returned LBA is the last LBA of
    // the logical unit. P_TYPE 0, PROT_EN 0.
    d[12] = 0x10;
    // Byte 13: P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT 0.
    // Bytes 14-15: LBPME 0, LBPRZ 0, LOWEST ALIGNED LBA 0.
    x.send(&d, usize::try_from(c.alloc_len).unwrap_or(usize::MAX))
}

/// Validate a READ or WRITE: TRANSFER LENGTH within the MAXIMUM TRANSFER
/// LENGTH (SBC-4: INVALID FIELD IN CDB), range inside the medium (LBA
/// OUT OF RANGE). Returns the byte length.
fn check_rw(x: &Exec<'_, '_>, a: &RwArgs, access: Access) -> Result<usize, Sense> {
    let geo = x.lu()?.device.geometry();
    if a.blocks > max_transfer_blocks(geo.block_size) {
        return Err(Sense::invalid_field(a.len_field, Some(7)));
    }
    let count = BlockCount::new(u64::from(a.blocks));
    geo.check_range(Lba::new(a.lba), count)
        .map_err(map(access, a.lba_field))?;
    let bytes = count
        .bytes(geo.block_size)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or(Sense::invalid_field(a.len_field, Some(7)))?;
    Ok(bytes)
}

/// READ(6)/(10)/(16) (SBC-4). DPO and FUA need nothing: there is
/// no read cache apart from the host's page cache, which is coherent.
/// Straight into the transport's memory when it offers it and the data-in
/// buffer takes the whole transfer, else through the thread's buffer.
pub fn read(x: &mut Exec<'_, '_>, a: RwArgs) -> Result<u32, Sense> {
    let bytes = check_rw(x, &a, Access::Read)?;
    if bytes == 0 {
        return Ok(0);
    }
    let lu = x.lu()?;
    let dev = &lu.device;
    zbc::check_read(dev.geometry(), Lba::new(a.lba), u64::from(a.blocks))?;
    let room = usize::try_from(x.data_in_len).unwrap_or(usize::MAX);
    if let Some(direct) = x.direct.as_deref_mut().filter(|_| bytes <= room) {
        if let Some(dst) = direct.data_in(bytes) {
            dev.read_to(Lba::new(a.lba), &dst)
                .map_err(map(Access::Read, a.lba_field))?;
            drop(dst);
            direct.sent(bytes);
            return Ok(u32::try_from(bytes).unwrap_or(u32::MAX));
        }
    }
    with_buffer(bytes, |buf| {
        dev.read(Lba::new(a.lba), buf)
            .map_err(map(Access::Read, a.lba_field))?;
        x.send(buf, bytes)
    })
}

/// WRITE(6)/(10)/(16) (SBC-4). The whole data-out is read before
/// anything is written (straight from the transport's memory when it
/// offers all of it); FUA writes are durable before GOOD status.
pub fn write(x: &mut Exec<'_, '_>, a: RwArgs) -> Result<u32, Sense> {
    let bytes = check_rw(x, &a, Access::Write)?;
    if bytes == 0 {
        return Ok(0);
    }
    let lu = x.lu()?;
    let lba = Lba::new(a.lba);
    let gap = zbc::in_gap_zone(lu.device.geometry(), lba);
    let put = |write: &dyn Fn() -> Result<(), StorageError>| {
        if gap {
            return Err(Sense::illegal(Asc::ATTEMPT_TO_ACCESS_GAP_ZONE));
        }
        write().map_err(map(Access::Write, a.lba_field))
    };
    let direct = x.direct.as_deref_mut().and_then(|d| {
        let src = d.data_out(bytes)?;
        let done = put(&|| lu.device.write_from(lba, &src, a.fua));
        drop(src);
        // Taken whether or not it was written, as a read_exact would.
        d.received(bytes);
        Some(done)
    });
    match direct {
        Some(done) => done?,
        None => with_buffer(bytes, |buf| {
            if x.data_out.read_exact(buf).is_err() {
                // Data-out shorter than the TRANSFER LENGTH (logged by dispatch).
                return Err(Sense::invalid_field(a.len_field, Some(7)));
            }
            put(&|| lu.device.write(lba, buf, a.fua))
        })?,
    }
    // The written blocks are no longer what a ROD token represents.
    x.target
        .copy
        .invalidate(x.lun, lba, BlockCount::new(u64::from(a.blocks)));
    Ok(0)
}

/// VERIFY (16) (SBC-4 r22 5.35; fields and BYTCHK as VERIFY (10), 5.33).
/// The range is checked as for READ (MAXIMUM TRANSFER LENGTH, LBA OUT OF
/// RANGE; VERIFICATION LENGTH 0 verifies nothing), and so are ZBC-2's read
/// rules on zoned LUs (the medium is read as READ reads it). BYTCHK 00b
/// reads the medium: an unreadable block is MEDIUM ERROR, UNRECOVERED READ
/// ERROR with its LBA in INFORMATION. 01b compares it with the Data-Out
/// blocks, 11b every block with the one Data-Out block (duplicated, as
/// WRITE SAME does): a difference is MISCOMPARE, MISCOMPARE DURING VERIFY
/// OPERATION with the offset of the first differing byte of the
/// (duplicated) Data-Out buffer in INFORMATION. Peers are looser:
/// scsi_debug (resp_verify) answers BYTCHK 00b GOOD before any check,
/// reports BYTCHK 10b at byte 2 and a miscompare without INFORMATION; LIO
/// (target_core_sbc.c) runs VERIFY as a no-op.
pub fn verify16(x: &mut Exec<'_, '_>, c: Verify16) -> Result<u32, Sense> {
    let a = RwArgs {
        lba: c.lba,
        blocks: c.len,
        fua: false,
        lba_field: 2,
        len_field: 10,
    };
    let bytes = check_rw(x, &a, Access::Read)?;
    if bytes == 0 {
        return Ok(0);
    }
    let expected = match c.bytchk {
        ByteCheck::Medium => None,
        ByteCheck::DataOut => Some(bytes),
        ByteCheck::OneBlock => Some(x.lu()?.device.geometry().block_size as usize),
    }
    .map(|len| {
        let mut buf = vec![0u8; len];
        // Data-Out shorter than the command says (logged by dispatch).
        x.data_out
            .read_exact(&mut buf)
            .map(|()| buf)
            .map_err(|_| Sense::invalid_field(a.len_field, Some(7)))
    })
    .transpose()?;
    let dev = &x.lu()?.device;
    zbc::check_read(dev.geometry(), Lba::new(a.lba), u64::from(a.blocks))?;
    let mut medium = vec![0u8; bytes];
    dev.read(Lba::new(a.lba), &mut medium)
        .map_err(map(Access::Read, a.lba_field))?;
    let Some(expected) = expected else {
        return Ok(0);
    };
    let unit = expected.len();
    match (0..bytes).find(|&i| medium[i] != expected[i % unit]) {
        None => Ok(0),
        Some(offset) => Err(Sense {
            info: Some(offset as u64),
            ..Sense::new(
                SenseKey::Miscompare,
                Asc::MISCOMPARE_DURING_VERIFY_OPERATION,
            )
        }),
    }
}

/// SYNCHRONIZE CACHE (SBC-4): range checked, then the backing
/// file is flushed (whatever the range; IMMED is honoured by finishing the
/// flush before returning, which SBC-4 allows).
fn sync_cache(x: &mut Exec<'_, '_>, lba: u64, blocks: u64) -> Result<u32, Sense> {
    let dev = &x.lu()?.device;
    let geo = dev.geometry();
    // NUMBER OF LOGICAL BLOCKS 0: from the LBA to the last LBA.
    let count = if blocks == 0 { 1 } else { blocks };
    geo.check_range(Lba::new(lba), BlockCount::new(count))
        .map_err(map(Access::Flush, 2))?;
    dev.flush().map_err(map(Access::Flush, 2))?;
    Ok(0)
}

/// SYNCHRONIZE CACHE(10).
pub fn sync_cache10(x: &mut Exec<'_, '_>, c: SyncCache10) -> Result<u32, Sense> {
    sync_cache(x, u64::from(c.lba), u64::from(c.blocks))
}

/// SYNCHRONIZE CACHE(16).
pub fn sync_cache16(x: &mut Exec<'_, '_>, c: SyncCache16) -> Result<u32, Sense> {
    sync_cache(x, c.lba, u64::from(c.blocks))
}

super::commands::handlers! {
    Read6 => |x, c: Read6| read(x, c.into()),
    Read10 => |x, c: Read10| read(x, c.into()),
    Read16 => |x, c: Read16| read(x, c.into()),
    Write6 => |x, c: Write6| write(x, c.into()),
    Write10 => |x, c: Write10| write(x, c.into()),
    Write16 => |x, c: Write16| write(x, c.into()),
    ReadCapacity10 => read_capacity10,
    ReadCapacity16 => read_capacity16,
    SyncCache10 => sync_cache10,
    SyncCache16 => sync_cache16,
    Verify16 => verify16,
}
