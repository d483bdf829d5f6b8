//! LBA-stamped blocks: every 4 KiB block says where it belongs, which
//! generation of data it is, and whether it is intact.
//!
//! Layout of one [`BLOCK_SIZE`] block (all integers little-endian):
//!
//! | bytes    | field                                                       |
//! |----------|-------------------------------------------------------------|
//! | 0..8     | magic `b"ZCPYBLK1"`                                         |
//! | 8..16    | block number: the device byte offset / 4096                 |
//! | 16..24   | generation (chosen by the writer, e.g. per pass or copy)   |
//! | 24..28   | CRC32C (Castagnoli, as iSCSI/ext4) of all 4096 bytes, computed with this field zeroed |
//! | 28..32   | reserved, zero                                              |
//! | 32..4096 | fill: SplitMix64 stream, see [`fill_pattern`]               |
//!
//! The fill comes from SplitMix64 seeded with
//! `blockno * 0x9E3779B97F4A7C15 ^ gen * 0xC2B2AE3D27D4EB4F ^ 0x5A43_5059_424C_4B31`
//! (wrapping), each output u64 written little-endian, so two blocks differ
//! in every word when either their block number or their generation does,
//! and a copy that moved the right data to the wrong place is caught by the
//! header while a copy that moved garbage is caught by the checksum.

use std::fmt;

/// Size of one stamped block in bytes, whatever the device's block size.
pub const BLOCK_SIZE: usize = 4096;
/// The magic at the start of every stamped block.
pub const MAGIC: [u8; 8] = *b"ZCPYBLK1";
const CRC_AT: usize = 24;
const FILL_AT: usize = 32;

/// Why a block is not the stamped block that was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampError {
    /// The buffer is not exactly [`BLOCK_SIZE`] bytes.
    BadLength(usize),
    /// Every byte is zero: the block was never written (or was zeroed).
    Unwritten,
    /// The first 8 bytes are not [`MAGIC`].
    BadMagic([u8; 8]),
    /// The stored CRC32C does not match the contents: corruption.
    BadChecksum {
        /// The CRC stored in the block.
        stored: u32,
        /// The CRC of the block as read.
        computed: u32,
    },
    /// An intact stamped block, but for another place: misdirected I/O.
    WrongBlock {
        /// Where it was read.
        expected: u64,
        /// Where it was written for.
        found: u64,
    },
    /// An intact stamped block of another generation: stale data.
    WrongGeneration {
        /// The generation that should be there.
        expected: u64,
        /// The generation found.
        found: u64,
    },
    /// Header and checksum fine, reserved bytes or fill differ from what
    /// this format generates (a writer of another format version).
    BadFill {
        /// Offset of the first differing byte within the block.
        offset: usize,
    },
}

impl fmt::Display for StampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength(n) => write!(f, "buffer is {n} bytes, not {BLOCK_SIZE}"),
            Self::Unwritten => f.write_str("block is all zeros (never written?)"),
            Self::BadMagic(m) => write!(f, "bad magic {}", m.escape_ascii()),
            Self::BadChecksum { stored, computed } => {
                write!(
                    f,
                    "bad checksum: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Self::WrongBlock { expected, found } => {
                write!(f, "wrong block number: expected {expected}, found {found}")
            }
            Self::WrongGeneration { expected, found } => {
                write!(f, "wrong generation: expected {expected}, found {found}")
            }
            Self::BadFill { offset } => write!(f, "fill differs at byte {offset}"),
        }
    }
}

impl std::error::Error for StampError {}

fn seed(blockno: u64, gen: u64) -> u64 {
    blockno.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ gen.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ 0x5A43_5059_424C_4B31
}

/// SplitMix64 (Steele, Lea, Flood 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generation for this run: the boot's wall clock in nanoseconds, so it
/// differs from every earlier run's and data a previous run left behind
/// (conventional zones are never reset) cannot pass for this run's.
pub fn run_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(1)
}

/// Write the fill of block (`blockno`, `gen`) into `out` (bytes 32.. of a
/// block; any length, multiple of 8 or not).
pub fn fill_pattern(out: &mut [u8], blockno: u64, gen: u64) {
    let mut state = seed(blockno, gen);
    for chunk in out.chunks_mut(8) {
        let v = splitmix64(&mut state).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn checksum(block: &[u8]) -> u32 {
    let c = crc32c::crc32c(&block[..CRC_AT]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, &block[CRC_AT + 4..])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Stamp one block. `buf` must be [`BLOCK_SIZE`] bytes.
pub fn fill(buf: &mut [u8], blockno: u64, gen: u64) -> Result<(), StampError> {
    if buf.len() != BLOCK_SIZE {
        return Err(StampError::BadLength(buf.len()));
    }
    buf[..8].copy_from_slice(&MAGIC);
    buf[8..16].copy_from_slice(&blockno.to_le_bytes());
    buf[16..24].copy_from_slice(&gen.to_le_bytes());
    buf[CRC_AT..FILL_AT].fill(0);
    fill_pattern(&mut buf[FILL_AT..], blockno, gen);
    let crc = checksum(buf);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Stamp consecutive blocks `first..` into `buf` (a multiple of
/// [`BLOCK_SIZE`] bytes).
pub fn fill_range(buf: &mut [u8], first: u64, gen: u64) -> Result<(), StampError> {
    if !buf.len().is_multiple_of(BLOCK_SIZE) {
        return Err(StampError::BadLength(buf.len()));
    }
    for (i, b) in (first..).zip(buf.chunks_exact_mut(BLOCK_SIZE)) {
        fill(b, i, gen)?;
    }
    Ok(())
}

/// Check that `buf` is block `blockno` of generation `gen`, intact. Order of
/// checks: length, all-zero, magic, checksum, block number, generation, fill.
pub fn verify(buf: &[u8], blockno: u64, gen: u64) -> Result<(), StampError> {
    if buf.len() != BLOCK_SIZE {
        return Err(StampError::BadLength(buf.len()));
    }
    if buf.iter().all(|&b| b == 0) {
        return Err(StampError::Unwritten);
    }
    let mut magic = [0; 8];
    magic.copy_from_slice(&buf[..8]);
    if magic != MAGIC {
        return Err(StampError::BadMagic(magic));
    }
    let mut stored = [0; 4];
    stored.copy_from_slice(&buf[CRC_AT..CRC_AT + 4]);
    let stored = u32::from_le_bytes(stored);
    let computed = checksum(buf);
    if stored != computed {
        return Err(StampError::BadChecksum { stored, computed });
    }
    let found = u64_at(buf, 8);
    if found != blockno {
        return Err(StampError::WrongBlock {
            expected: blockno,
            found,
        });
    }
    let found = u64_at(buf, 16);
    if found != gen {
        return Err(StampError::WrongGeneration {
            expected: gen,
            found,
        });
    }
    if let Some(offset) = buf[28..FILL_AT].iter().position(|&b| b != 0) {
        return Err(StampError::BadFill {
            offset: 28 + offset,
        });
    }
    let mut want = [0u8; BLOCK_SIZE - FILL_AT];
    fill_pattern(&mut want, blockno, gen);
    if let Some(offset) = buf[FILL_AT..].iter().zip(want).position(|(a, b)| *a != b) {
        return Err(StampError::BadFill {
            offset: FILL_AT + offset,
        });
    }
    Ok(())
}

/// Verify consecutive blocks `first..` in `buf`; on error, also says which
/// block (its number) failed.
pub fn verify_range(buf: &[u8], first: u64, gen: u64) -> Result<(), (u64, StampError)> {
    if !buf.len().is_multiple_of(BLOCK_SIZE) {
        return Err((first, StampError::BadLength(buf.len())));
    }
    for (i, b) in (first..).zip(buf.chunks_exact(BLOCK_SIZE)) {
        verify(b, i, gen).map_err(|e| (i, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64, g: u64) -> Vec<u8> {
        let mut b = vec![0; BLOCK_SIZE];
        fill(&mut b, n, g).unwrap();
        b
    }

    #[test]
    fn roundtrip_and_layout() {
        let b = block(0x0102_0304_0506_0708, 9);
        assert_eq!(&b[..8], b"ZCPYBLK1");
        assert_eq!(&b[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[16..24], &[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[28..32], &[0; 4]);
        // The CRC is CRC32C over the block with the CRC field zeroed.
        let mut z = b.clone();
        z[24..28].fill(0);
        assert_eq!(&b[24..28], &crc32c::crc32c(&z).to_le_bytes());
        assert_eq!(verify(&b, 0x0102_0304_0506_0708, 9), Ok(()));
        // Deterministic.
        assert_eq!(b, block(0x0102_0304_0506_0708, 9));
    }

    #[test]
    fn known_answer() {
        // Pins the format: a change here breaks every stored image.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        let b = block(0, 0);
        let mut s = seed(0, 0);
        assert_eq!(&b[32..40], &splitmix64(&mut s).to_le_bytes());
    }

    #[test]
    fn fills_differ() {
        assert_ne!(block(1, 1)[32..], block(2, 1)[32..]);
        assert_ne!(block(1, 1)[32..], block(1, 2)[32..]);
        assert_ne!(block(1, 2)[32..], block(2, 1)[32..]);
    }

    #[test]
    fn precise_errors() {
        let good = block(42, 7);
        assert_eq!(verify(&good[..100], 42, 7), Err(StampError::BadLength(100)));
        assert_eq!(verify(&[0; BLOCK_SIZE], 42, 7), Err(StampError::Unwritten));
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(verify(&b, 42, 7), Err(StampError::BadMagic(m)) if &m == b"XCPYBLK1"));
        let mut b = good.clone();
        b[4000] ^= 1;
        assert!(matches!(
            verify(&b, 42, 7),
            Err(StampError::BadChecksum { .. })
        ));
        let mut b = good.clone();
        b[25] ^= 0x80;
        assert!(matches!(
            verify(&b, 42, 7),
            Err(StampError::BadChecksum { .. })
        ));
        assert_eq!(
            verify(&good, 43, 7),
            Err(StampError::WrongBlock {
                expected: 43,
                found: 42
            })
        );
        assert_eq!(
            verify(&good, 42, 8),
            Err(StampError::WrongGeneration {
                expected: 8,
                found: 7
            })
        );
        // A valid checksum over a foreign fill.
        let mut b = good.clone();
        b[100] ^= 1;
        b[24..28].fill(0);
        let crc = checksum(&b);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(verify(&b, 42, 7), Err(StampError::BadFill { offset: 100 }));
        assert_eq!(
            StampError::WrongBlock {
                expected: 1,
                found: 2
            }
            .to_string(),
            "wrong block number: expected 1, found 2"
        );
    }

    #[test]
    fn ranges() {
        let mut buf = vec![0; 4 * BLOCK_SIZE];
        fill_range(&mut buf, 100, 3).unwrap();
        assert_eq!(verify_range(&buf, 100, 3), Ok(()));
        assert_eq!(verify(&buf[2 * BLOCK_SIZE..3 * BLOCK_SIZE], 102, 3), Ok(()));
        assert_eq!(
            verify_range(&buf, 101, 3),
            Err((
                101,
                StampError::WrongBlock {
                    expected: 101,
                    found: 100
                }
            ))
        );
        assert_eq!(
            fill_range(&mut buf[..10], 0, 0),
            Err(StampError::BadLength(10))
        );
        assert!(fill(&mut buf[..10], 0, 0).is_err());
    }
}
