//! What a copy's destination must hold afterwards, and how a read-back
//! differs from it: pure functions, so the judgement is unit-tested.
//!
//! The destination of every copy is a whole number of 4 KiB stamped blocks
//! (see [`crate::stamp`]): before the copy it holds a known "before" content
//! (stamps of another generation, or zeros for a freshly reset zone); after
//! a copy that reported `n` bytes its first `n` bytes must be the source's
//! stamped bytes and the rest must still be the "before" content. A
//! mismatch names the first differing block, what should be there and what
//! is, and whether every differing block still holds its "before" content
//! (the copy never reached the destination).

use std::fmt;

use crate::stamp::{self, BLOCK_SIZE, MAGIC};

const BS: u64 = BLOCK_SIZE as u64;

/// The bytes `skip..skip + len` of consecutive stamped blocks starting at
/// block `first` with generation `gen`.
pub fn stamped_bytes(first: u64, gen: u64, skip: u64, len: usize) -> Vec<u8> {
    let first_blk = skip / BS;
    let end = skip + len as u64;
    let nblk = end.div_ceil(BS) - first_blk;
    let mut buf = vec![0u8; (nblk * BS) as usize];
    for (i, b) in buf.chunks_exact_mut(BLOCK_SIZE).enumerate() {
        // fill() only fails on a wrong length, which chunks_exact rules out.
        let _ = stamp::fill(b, first + first_blk + i as u64, gen);
    }
    let from = (skip - first_blk * BS) as usize;
    buf[from..from + len].to_vec()
}

/// What the destination should hold after a copy that moved `copied` bytes
/// of `src` over `before` (both the destination's full length).
pub fn after_copy(src: &[u8], before: &[u8], copied: usize) -> Vec<u8> {
    let copied = copied.min(src.len()).min(before.len());
    let mut v = src[..copied].to_vec();
    v.extend_from_slice(&before[copied..]);
    v
}

/// A short description of one 4 KiB block as found on a device.
pub fn describe_block(b: &[u8]) -> String {
    if b.iter().all(|&x| x == 0) {
        return "zeros (never written)".to_string();
    }
    if b.len() >= 32 && b[..8] == MAGIC {
        let mut n = [0u8; 8];
        n.copy_from_slice(&b[8..16]);
        let blk = u64::from_le_bytes(n);
        n.copy_from_slice(&b[16..24]);
        let gen = u64::from_le_bytes(n);
        let intact = b.len() == BLOCK_SIZE && stamp::verify(b, blk, gen).is_ok();
        return format!(
            "stamp of block {blk} gen {gen:#x}{}",
            if intact { "" } else { " (damaged)" }
        );
    }
    let head: String = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
    format!("unstamped data ({head}...)")
}

/// How a read-back differs from what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Byte offset on the device of the first differing block.
    pub byte: u64,
    /// Index of that block within the destination (0-based).
    pub index: u64,
    /// What should be there.
    pub expected: String,
    /// What is there.
    pub found: String,
    /// How many 4 KiB blocks differ.
    pub blocks: u64,
    /// Every differing block still holds its content from before the copy.
    pub all_before: bool,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} block(s) differ; first at byte {} (destination block {}): expected {}, found {}{}",
            self.blocks,
            self.byte,
            self.index,
            self.expected,
            self.found,
            if self.all_before {
                "; every differing block still holds its content from before the copy"
            } else {
                ""
            }
        )
    }
}

/// Compare `actual` with `expected` block by block (`before` is the
/// destination's content before the copy; `base` the device byte offset of
/// the destination). `None` if they are equal.
pub fn compare(expected: &[u8], before: &[u8], actual: &[u8], base: u64) -> Option<Mismatch> {
    let mut first: Option<Mismatch> = None;
    let mut blocks = 0;
    let mut all_before = true;
    if expected.len() != actual.len() {
        return Some(Mismatch {
            byte: base,
            index: 0,
            expected: format!("{} bytes", expected.len()),
            found: format!("{} bytes", actual.len()),
            blocks: 1,
            all_before: false,
        });
    }
    for (i, (e, a)) in expected
        .chunks(BLOCK_SIZE)
        .zip(actual.chunks(BLOCK_SIZE))
        .enumerate()
    {
        if e == a {
            continue;
        }
        blocks += 1;
        let b = before.chunks(BLOCK_SIZE).nth(i);
        if b != Some(a) {
            all_before = false;
        }
        if first.is_none() {
            let off = e.iter().zip(a).position(|(x, y)| x != y).unwrap_or(0);
            let mut found = describe_block(a);
            if found.starts_with(&describe_block(e)) {
                found = format!("{found}, differing from byte {off}");
            }
            first = Some(Mismatch {
                byte: base + (i * BLOCK_SIZE) as u64,
                index: i as u64,
                expected: describe_block(e),
                found,
                blocks: 0,
                all_before: false,
            });
        }
    }
    first.map(|m| Mismatch {
        blocks,
        all_before,
        ..m
    })
}

/// The judgement of one copy's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataCheck {
    /// The destination holds exactly what it should.
    Good,
    /// It differs, and every differing block is what was there before the
    /// copy: the copy did not reach those blocks.
    NotWritten(Mismatch),
    /// It differs with data that was never there: corruption.
    Wrong(Mismatch),
}

/// Judge a read-back.
pub fn check(expected: &[u8], before: &[u8], actual: &[u8], base: u64) -> DataCheck {
    match compare(expected, before, actual, base) {
        None => DataCheck::Good,
        Some(m) if m.all_before => DataCheck::NotWritten(m),
        Some(m) => DataCheck::Wrong(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(first: u64, gen: u64, n: usize) -> Vec<u8> {
        stamped_bytes(first, gen, 0, n * BLOCK_SIZE)
    }

    #[test]
    fn stamped_bytes_slices_the_stream() {
        let whole = blocks(10, 3, 3);
        assert_eq!(stamp::verify_range(&whole, 10, 3), Ok(()));
        assert_eq!(stamped_bytes(10, 3, 100, 5000), whole[100..5100].to_vec());
        assert_eq!(stamped_bytes(10, 3, 4096, 4096), whole[4096..8192].to_vec());
        assert!(stamped_bytes(10, 3, 7, 0).is_empty());
    }

    #[test]
    fn good_copy() {
        let src = blocks(0, 1, 4);
        let before = blocks(100, 2, 4);
        let exp = after_copy(&src, &before, src.len());
        assert_eq!(exp, src);
        assert_eq!(check(&exp, &before, &src, 409_600), DataCheck::Good);
    }

    #[test]
    fn copy_that_never_happened() {
        // The copy-error-lost signature: the destination kept its old data.
        let src = blocks(0, 1, 4);
        let before = blocks(100, 2, 4);
        let exp = after_copy(&src, &before, src.len());
        let DataCheck::NotWritten(m) = check(&exp, &before, &before, 409_600) else {
            panic!("expected NotWritten");
        };
        assert_eq!((m.byte, m.index, m.blocks), (409_600, 0, 4));
        assert_eq!(m.expected, "stamp of block 0 gen 0x1");
        assert_eq!(m.found, "stamp of block 100 gen 0x2");
        assert!(m.to_string().contains("still holds its content"));
        // A freshly reset zone reads zeros.
        let zeros = vec![0u8; src.len()];
        let DataCheck::NotWritten(m) = check(&src, &zeros, &zeros, 0) else {
            panic!("expected NotWritten");
        };
        assert_eq!(m.found, "zeros (never written)");
    }

    #[test]
    fn partial_and_wrong_copies() {
        let src = blocks(0, 1, 4);
        let before = blocks(100, 2, 4);
        let exp = after_copy(&src, &before, src.len());
        // Half copied: the rest is still "before".
        let half = after_copy(&src, &before, 2 * BLOCK_SIZE);
        let DataCheck::NotWritten(m) = check(&exp, &before, &half, 0) else {
            panic!("expected NotWritten");
        };
        assert_eq!((m.index, m.blocks, m.byte), (2, 2, 8192));
        // Right data, wrong place: block 1 of the source landed in slot 2.
        let mut shifted = src.clone();
        shifted[8192..12288].copy_from_slice(&src[4096..8192]);
        let DataCheck::Wrong(m) = check(&exp, &before, &shifted, 0) else {
            panic!("expected Wrong");
        };
        assert_eq!(m.expected, "stamp of block 2 gen 0x1");
        assert_eq!(m.found, "stamp of block 1 gen 0x1");
        // A flipped bit.
        let mut flipped = src.clone();
        flipped[5000] ^= 4;
        let DataCheck::Wrong(m) = check(&exp, &before, &flipped, 0) else {
            panic!("expected Wrong");
        };
        assert_eq!(
            m.found,
            "stamp of block 1 gen 0x1 (damaged), differing from byte 904"
        );
        // Garbage and length mismatches.
        let junk = vec![0xa5u8; src.len()];
        assert!(matches!(check(&exp, &before, &junk, 0), DataCheck::Wrong(m)
            if m.found.starts_with("unstamped data (a5a5")));
        assert!(matches!(
            check(&exp, &before, &junk[..10], 0),
            DataCheck::Wrong(_)
        ));
    }

    #[test]
    fn unaligned_copy_keeps_the_tail() {
        let src = blocks(0, 1, 2);
        let before = blocks(50, 2, 2);
        let exp = after_copy(&src, &before, 4096 + 100);
        assert_eq!(&exp[..4196], &src[..4196]);
        assert_eq!(&exp[4196..], &before[4196..]);
        assert_eq!(after_copy(&src, &before, 1 << 20), src);
    }
}
