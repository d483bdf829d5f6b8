//! NVMe over PCIe through vfio-user: QEMU (10.1 and later, `-device
//! vfio-user-pci`) connects to a Unix socket and the guest's own nvme-pci
//! driver finds a PCI NVMe controller. The protocol (version negotiation,
//! region and IRQ info, DMA map/unmap with file descriptors, region
//! access, SET_IRQS) is rust-vmm's `vfio_user` crate's server. What it
//! lacks is ours: the PCI configuration space with its capabilities
//! ([`config`]), BAR0 with the controller registers, doorbells and MSI-X
//! ([`function`]), guest memory from the DMA regions ([`memory`]), PRP
//! walking ([`prp`]) and the rings ([`queues`]).
//!
//! Every command goes to [`crate::nvme::Queue`] as on NVMe/TCP; the
//! transport moves bytes and knows no command's meaning. Doorbells arrive
//! as region writes (one socket round trip each) and run the queue at
//! once, in the socket's thread. A poller delivers Asynchronous Event
//! completions raised from other threads (e.g. the control socket).
//!
//! The server keeps listening when QEMU goes away; the next QEMU gets a
//! fresh controller.

pub mod config;
pub mod dbbuf;
pub mod function;
pub mod memory;
pub mod prp;
pub mod queues;

#[cfg(test)]
mod tests;

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread,
    time::Duration,
};

use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE, VFIO_PCI_BAR0_REGION_INDEX,
    VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

use self::{config::CONFIG_SIZE, function::Function};
use crate::{nvme::Subsystem, stats::fabric::FabricStats};

/// The function shared by the socket thread and the event poller.
struct Shared {
    subsystem: Arc<Subsystem>,
    stats: Arc<FabricStats>,
    function: Mutex<Option<Function>>,
    /// Wakes the executor: a doorbell rang.
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Function>> {
        self.function.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the function, creating one (a new controller) when the
    /// previous client left.
    fn with<T>(&self, f: impl FnOnce(&mut Function) -> T) -> io::Result<T> {
        let mut g = self.lock();
        if g.is_none() {
            *g = Function::new(Arc::clone(&self.subsystem), Arc::clone(&self.stats));
        }
        let func = g
            .as_mut()
            .ok_or_else(|| io::Error::other("no controller ID left"))?;
        Ok(f(func))
    }
}

struct Backend(Arc<Shared>);

impl ServerBackend for Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.0.with(|f| match region {
            VFIO_PCI_CONFIG_REGION_INDEX => f.config.read(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX => f.bar_read(offset, data),
            _ => data.fill(0),
        })
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.with(|f| match region {
            VFIO_PCI_CONFIG_REGION_INDEX => f.config.write(offset, data),
            VFIO_PCI_BAR0_REGION_INDEX => f.bar_write(offset, data),
            _ => log::debug!("nvme-pcie: write to region {region} ignored"),
        })?;
        if region == VFIO_PCI_BAR0_REGION_INDEX {
            self.0.wake.notify_one();
        }
        Ok(())
    }

    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        log::debug!("nvme-pcie: DMA map {address:#x}+{size:#x}");
        self.0.with(|f| f.memory.map(address, size, offset, fd))?
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        log::debug!("nvme-pcie: DMA unmap {address:#x}+{size:#x}");
        self.0.with(|f| f.memory.unmap(address, size))?
    }

    fn reset(&mut self) -> io::Result<()> {
        self.0.with(Function::reset)
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        if index != VFIO_PCI_MSIX_IRQ_INDEX || flags & VFIO_IRQ_SET_ACTION_TRIGGER == 0 {
            return Ok(());
        }
        self.0.with(|f| {
            if flags & VFIO_IRQ_SET_DATA_EVENTFD != 0 {
                f.set_vectors(start, count, fds);
            } else if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
                let n = u32::from(f.vector_count());
                f.set_vectors(0, n, Vec::new());
            }
        })
    }
}

fn regions() -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = match index {
                VFIO_PCI_CONFIG_REGION_INDEX => CONFIG_SIZE as u64,
                VFIO_PCI_BAR0_REGION_INDEX => function::BAR0_SIZE,
                _ => 0,
            };
            let flags = if size == 0 {
                0
            } else {
                VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    size,
                    ..Default::default()
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

fn irqs(vectors: u16) -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let (count, flags) = if index == VFIO_PCI_MSIX_IRQ_INDEX {
                (u32::from(vectors), VFIO_IRQ_INFO_EVENTFD)
            } else {
                (0, 0)
            };
            IrqInfo {
                index,
                count,
                flags,
            }
        })
        .collect()
}

/// The executor: runs the commands doorbells made pending, one at a time,
/// with the function unlocked while a command runs (register accesses,
/// resets and new doorbells go on meanwhile), and delivers Asynchronous
/// Event completions raised from other threads (e.g. the control socket)
/// at least every 20 ms.
fn execute_forever(shared: &Shared) {
    let mut g = shared.lock();
    loop {
        let work = g.as_mut().and_then(Function::take_work);
        let Some(work) = work else {
            if let Some(f) = g.as_mut() {
                f.deliver_deferred();
            }
            g = shared
                .wake
                .wait_timeout(g, Duration::from_millis(20))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            continue;
        };
        drop(g);
        let done = work.run();
        g = shared.lock();
        if let Some(f) = g.as_mut() {
            f.finish(&work, done);
        }
    }
}

/// A running NVMe-over-PCIe endpoint.
pub struct PcieEndpoint {
    pub socket: PathBuf,
}

/// Listen on `socket` (a stale socket file is replaced) and serve
/// `subsystem` to one vfio-user client at a time, forever, counting
/// host-interface bytes in `stats`.
pub fn start(
    socket: &Path,
    subsystem: Arc<Subsystem>,
    stats: Arc<FabricStats>,
) -> io::Result<PcieEndpoint> {
    // Only a stale socket is replaced, never another file; the socket is
    // 0600 like every socket of the backend.
    let private = |e: super::serve::ServeError| io::Error::other(e.to_string());
    super::serve::remove_stale_socket(socket).map_err(private)?;
    let vectors = crate::nvme::pcie::interrupt_vectors(&subsystem);
    let server = Server::new(socket, true, irqs(vectors), regions())
        .map_err(|e| io::Error::other(format!("vfio-user socket {}: {e}", socket.display())))?;
    super::serve::make_private(socket).map_err(private)?;
    let shared = Arc::new(Shared {
        subsystem,
        stats,
        function: Mutex::new(None),
        wake: Condvar::new(),
    });
    let exec = Arc::clone(&shared);
    thread::Builder::new()
        .name("nvme-pcie-exec".into())
        .spawn(move || execute_forever(&exec))?;
    let path = socket.to_path_buf();
    thread::Builder::new()
        .name("nvme-pcie".into())
        .spawn(move || {
            let mut backend = Backend(Arc::clone(&shared));
            loop {
                match server.run(&mut backend) {
                    Ok(()) => log::info!("nvme-pcie {}: client left", path.display()),
                    Err(e) => {
                        log::warn!("nvme-pcie {}: client dropped: {e}", path.display());
                        // Not a busy loop if accepting itself keeps failing.
                        thread::sleep(Duration::from_millis(100));
                    }
                }
                // The next client gets a fresh controller and memory.
                *shared.lock() = None;
            }
        })?;
    Ok(PcieEndpoint {
        socket: socket.to_path_buf(),
    })
}
