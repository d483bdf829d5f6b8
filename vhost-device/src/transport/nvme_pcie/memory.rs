//! Guest memory as the DMA regions QEMU hands over (vfio-user DMA_MAP
//! with a file descriptor: guest RAM must be a shared memfd). Every access
//! goes through vm-memory's checked accessors.

use std::{fs::File, io, sync::Arc};

use vm_memory::{
    FileOffset, GuestAddress, GuestMemoryMmap, GuestMemoryRegion, GuestRegionCollection,
    GuestRegionMmap, MmapRegion,
};

/// The DMA regions mapped now and the memory they make.
#[derive(Default)]
pub struct DmaMemory {
    regions: Vec<Arc<GuestRegionMmap>>,
    mem: GuestMemoryMmap,
}

impl DmaMemory {
    /// The guest memory to read and write through.
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Map `size` bytes of `file` at `offset` as guest physical `addr`.
    pub fn map(&mut self, addr: u64, size: u64, offset: u64, file: Option<File>) -> io::Result<()> {
        let Some(file) = file else {
            // QEMU offers fd-less regions for ROMs (BIOS, option ROMs): the
            // controller cannot reach them, and no driver points DMA there.
            // Guest RAM itself must be a shared memfd to come with a file.
            log::debug!("DMA region {addr:#x}+{size:#x} has no file: not reachable");
            return Ok(());
        };
        let len = usize::try_from(size).map_err(io::Error::other)?;
        let region =
            MmapRegion::from_file(FileOffset::new(file, offset), len).map_err(io::Error::other)?;
        let region = GuestRegionMmap::new(region, GuestAddress(addr))
            .ok_or_else(|| io::Error::other("DMA region wraps the address space"))?;
        let mut regions = self.regions.clone();
        regions.push(Arc::new(region));
        regions.sort_by_key(|r| r.start_addr());
        self.rebuild(regions)
    }

    /// Unmap the region at `addr` of `size` bytes.
    pub fn unmap(&mut self, addr: u64, size: u64) -> io::Result<()> {
        let regions = self
            .regions
            .iter()
            .filter(|r| !(r.start_addr() == GuestAddress(addr) && r.len() == size))
            .cloned()
            .collect();
        self.rebuild(regions)
    }

    fn rebuild(&mut self, regions: Vec<Arc<GuestRegionMmap>>) -> io::Result<()> {
        self.mem = if regions.is_empty() {
            GuestMemoryMmap::default()
        } else {
            GuestRegionCollection::from_arc_regions(regions.clone()).map_err(io::Error::other)?
        };
        self.regions = regions;
        Ok(())
    }

    /// Forget every region (the client went away).
    pub fn clear(&mut self) {
        self.regions.clear();
        self.mem = GuestMemoryMmap::default();
    }
}
