//! Units of the storage core as newtypes, so a block count can never be
//! passed where an LBA or a byte offset is expected. Their fields are
//! private: arithmetic on them goes through the checked operations here,
//! so an overflow is a value (`None`) to handle, never a wrap.

use std::fmt;

/// A logical block address, in logical blocks of the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lba(u64);

/// A number of logical blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockCount(u64);

impl Lba {
    /// The block at address `lba`.
    pub const fn new(lba: u64) -> Self {
        Lba(lba)
    }

    /// The address as a number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + count`, or `None` on overflow.
    pub fn checked_add(self, count: BlockCount) -> Option<Lba> {
        self.0.checked_add(count.0).map(Lba)
    }

    /// `self + count`, or the last address on overflow: for ends of ranges
    /// already checked against the capacity, or compared against it.
    pub fn saturating_add(self, count: BlockCount) -> Lba {
        Lba(self.0.saturating_add(count.0))
    }

    /// `self - count`, or `None` below LBA 0.
    pub fn checked_sub(self, count: BlockCount) -> Option<Lba> {
        self.0.checked_sub(count.0).map(Lba)
    }

    /// The number of blocks from `start` up to (not including) `self`, or
    /// `None` if `start` is past `self`.
    pub fn blocks_since(self, start: Lba) -> Option<BlockCount> {
        self.0.checked_sub(start.0).map(BlockCount)
    }

    /// The byte offset of this block for blocks of `block_size` bytes, or
    /// `None` on overflow.
    pub fn byte_offset(self, block_size: u32) -> Option<u64> {
        self.0.checked_mul(u64::from(block_size))
    }
}

impl BlockCount {
    /// `count` blocks.
    pub const fn new(count: u64) -> Self {
        BlockCount(count)
    }

    /// The count as a number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether this is no block at all.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: BlockCount) -> Option<BlockCount> {
        self.0.checked_add(other.0).map(BlockCount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: BlockCount) -> Option<BlockCount> {
        self.0.checked_sub(other.0).map(BlockCount)
    }

    /// `self * block_size` in bytes, or `None` on overflow.
    pub fn bytes(self, block_size: u32) -> Option<u64> {
        self.0.checked_mul(u64::from(block_size))
    }

    /// The whole blocks of `block_size` bytes in `bytes`, or `None` if
    /// `bytes` is not a whole number of them (or `block_size` is 0).
    pub fn from_bytes(bytes: u64, block_size: u32) -> Option<BlockCount> {
        let bs = u64::from(block_size);
        (bs != 0 && bytes.is_multiple_of(bs)).then(|| BlockCount(bytes / bs))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_operations_refuse_overflow() {
        assert_eq!(Lba::new(u64::MAX).checked_add(BlockCount::new(1)), None);
        assert_eq!(
            Lba::new(3).checked_add(BlockCount::new(2)),
            Some(Lba::new(5))
        );
        assert_eq!(Lba::new(1).checked_sub(BlockCount::new(2)), None);
        assert_eq!(
            Lba::new(5).blocks_since(Lba::new(2)),
            Some(BlockCount::new(3))
        );
        assert_eq!(Lba::new(2).blocks_since(Lba::new(5)), None);
        assert_eq!(Lba::new(u64::MAX).byte_offset(512), None);
        assert_eq!(BlockCount::new(2).checked_sub(BlockCount::new(3)), None);
        assert_eq!(BlockCount::new(u64::MAX).bytes(4096), None);
        assert_eq!(BlockCount::from_bytes(8192, 4096), Some(BlockCount::new(2)));
        assert_eq!(BlockCount::from_bytes(4097, 4096), None);
        assert_eq!(BlockCount::from_bytes(4096, 0), None);
    }
}
