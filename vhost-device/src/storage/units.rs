//! Units of the storage core as newtypes, so a block count can never be
//! passed where an LBA or a byte offset is expected.

use std::fmt;

/// A logical block address, in logical blocks of the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lba(pub u64);

/// A number of logical blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockCount(pub u64);

impl Lba {
    /// `self + count`, or `None` on overflow.
    pub fn checked_add(self, count: BlockCount) -> Option<Lba> {
        self.0.checked_add(count.0).map(Lba)
    }

    /// The number of blocks from `start` up to (not including) `self`, or
    /// `None` if `start` is past `self`.
    pub fn blocks_since(self, start: Lba) -> Option<BlockCount> {
        self.0.checked_sub(start.0).map(BlockCount)
    }
}

impl BlockCount {
    /// `self * block_size` in bytes, or `None` on overflow.
    pub fn bytes(self, block_size: u32) -> Option<u64> {
        self.0.checked_mul(u64::from(block_size))
    }
}

impl fmt::Display for Lba {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LBA {:#x}", self.0)
    }
}

impl fmt::Display for BlockCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} blocks", self.0)
    }
}
