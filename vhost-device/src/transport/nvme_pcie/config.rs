//! PCI configuration space of the NVMe function (PCI Local Bus 3.0, 6;
//! PCI Express Base 4.0, 7.5 and 7.8; PCI Power Management 1.2). The
//! `vfio_user` crate serves regions but knows no PCI: this is ours.
//!
//! Layout: the type 0 header, then capabilities Power Management (40h),
//! MSI-X (50h) and PCI Express (60h); 4 KiB with an empty extended
//! capability list at 100h. Writable bits are those of a per-byte mask;
//! BAR0/1 is one 64-bit memory BAR that answers the sizing protocol.

/// Size of the configuration space (PCI Express: 4 KiB).
pub const CONFIG_SIZE: usize = 4096;

/// Vendor and device ID. Not a PCI-SIG assignment: a testbed function
/// that the host's nvme driver binds by class code (01h/08h/02h).
pub const VENDOR_ID: u16 = 0x7a63;
pub const DEVICE_ID: u16 = 0x0001;

/// Class code: mass storage (01h), non-volatile memory controller (08h),
/// NVM Express I/O controller programming interface (02h).
pub const CLASS: [u8; 3] = [0x02, 0x08, 0x01];

// Capability offsets.
const CAP_PM: usize = 0x40;
const CAP_MSIX: usize = 0x50;
const CAP_PCIE: usize = 0x60;

/// Offset of the MSI-X Message Control register.
pub const MSIX_CONTROL: usize = CAP_MSIX + 2;

/// The configuration space: values and a mask of the bits software may
/// write.
pub struct PciConfig {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
    bar_size: u64,
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

impl PciConfig {
    /// A function with one 64-bit BAR of `bar_size` bytes (a power of
    /// two) holding the MSI-X table at `table` and the PBA at `pba`, and
    /// `vectors` MSI-X vectors.
    pub fn new(bar_size: u64, vectors: u16, table: u32, pba: u32) -> Self {
        let mut b = [0u8; CONFIG_SIZE];
        let mut w = [0u8; CONFIG_SIZE];
        put16(&mut b, 0x00, VENDOR_ID);
        put16(&mut b, 0x02, DEVICE_ID);
        // Command: I/O space (0), memory space (1), bus master (2),
        // parity (6), SERR (8), INTx disable (10) are writable.
        put16(&mut w, 0x04, 0b101_0100_0111);
        put16(&mut b, 0x06, 1 << 4); // Status: capabilities list
        b[0x09..0x0C].copy_from_slice(&CLASS);
        w[0x0C] = 0xFF; // cache line size
                        // BAR0: memory, 64-bit (type 10b), not prefetchable; BAR1 its
                        // upper half. Both writable (sizing masks applied on write).
        put32(&mut b, 0x10, 0b100);
        put32(&mut w, 0x10, 0xFFFF_FFF0);
        put32(&mut w, 0x14, 0xFFFF_FFFF);
        put16(&mut b, 0x2C, VENDOR_ID); // subsystem vendor
        put16(&mut b, 0x2E, DEVICE_ID); // subsystem
        b[0x34] = CAP_PM as u8;
        w[0x3C] = 0xFF; // interrupt line; pin 0: no INTx, MSI-X only
                        // Power Management: version 3 (PMC bits 2:0), D0 only; PMCSR
                        // power state writable, No_Soft_Reset (bit 3) set.
        b[CAP_PM] = 0x01;
        b[CAP_PM + 1] = CAP_MSIX as u8;
        put16(&mut b, CAP_PM + 2, 0x0003);
        put16(&mut b, CAP_PM + 4, 1 << 3);
        put16(&mut w, CAP_PM + 4, 0x0003);
        // MSI-X: table size N-1; enable (15) and function mask (14)
        // writable; table and PBA in BAR0 (BIR 0).
        b[CAP_MSIX] = 0x11;
        b[CAP_MSIX + 1] = CAP_PCIE as u8;
        put16(&mut b, MSIX_CONTROL, vectors.saturating_sub(1) & 0x7FF);
        put16(&mut w, MSIX_CONTROL, 0xC000);
        put32(&mut b, CAP_MSIX + 4, table);
        put32(&mut b, CAP_MSIX + 8, pba);
        // PCI Express capability, version 2, endpoint (type 0); link
        // 2.5 GT/s x1; Device Control writable.
        b[CAP_PCIE] = 0x10;
        b[CAP_PCIE + 1] = 0;
        put16(&mut b, CAP_PCIE + 2, 0x0002);
        put16(&mut w, CAP_PCIE + 8, 0x7FFF);
        put32(&mut b, CAP_PCIE + 0x0C, 0x11); // Link Capabilities
        put16(&mut b, CAP_PCIE + 0x12, 0x11); // Link Status
        PciConfig {
            bytes: b,
            writable: w,
            bar_size,
        }
    }

    /// Read `data.len()` bytes at `offset`; beyond the space reads as 0.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, d) in data.iter_mut().enumerate() {
            let at = usize::try_from(offset).ok().and_then(|o| o.checked_add(i));
            *d = at.and_then(|a| self.bytes.get(a)).copied().unwrap_or(0);
        }
    }

    /// Write the writable bits of `data` at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &d) in data.iter().enumerate() {
            let Some(at) = usize::try_from(offset).ok().and_then(|o| o.checked_add(i)) else {
                return;
            };
            if at >= CONFIG_SIZE {
                return;
            }
            let m = self.writable[at];
            self.bytes[at] = (self.bytes[at] & !m) | (d & m);
        }
        // BAR sizing: the address bits below the size read as 0.
        let mask = !(self.bar_size - 1);
        let lo = u32::from_le_bytes(self.bytes[0x10..0x14].try_into().unwrap_or_default());
        let lo = (lo & (mask as u32) & 0xFFFF_FFF0) | 0b100;
        put32(&mut self.bytes, 0x10, lo);
        let hi = u32::from_le_bytes(self.bytes[0x14..0x18].try_into().unwrap_or_default());
        put32(&mut self.bytes, 0x14, hi & (mask >> 32) as u32);
    }

    /// MSI-X enabled and not function-masked.
    pub fn msix_enabled(&self) -> bool {
        let ctl = u16::from_le_bytes([self.bytes[MSIX_CONTROL], self.bytes[MSIX_CONTROL + 1]]);
        ctl & 0xC000 == 0x8000
    }
}
