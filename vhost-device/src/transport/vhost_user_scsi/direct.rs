//! A chain's data buffers as guest memory ([`DirectData`]): READ and WRITE
//! move blocks between the backing file and the guest's buffers in one
//! `preadv`/`pwritev`, with no copy through the worker's buffer.
//!
//! The data-out buffer is the device-readable part of the chain after the
//! request header, the data-in buffer the device-writable part after the
//! response header (virtio 1.2, 5.6.6.1). Slices come from vm-memory's
//! checked [`GuestMemoryBackend::get_slices`]: a descriptor outside guest
//! memory gives `None`, and the command takes the streams' path, which
//! reports it as the streams do.

use std::ops::Deref;

use virtio_queue::{desc::split::Descriptor, DescriptorChain};
use vm_memory::{Address, GuestMemoryBackend};

use super::{GuestMemory, CMD_REQ_SIZE, CMD_RESP_SIZE};
use crate::{scsi::DirectData, storage::media::MemSlice};

/// The data buffers of one command's chain, and how much of each a
/// command moved through them.
pub(super) struct GuestData<'m, M> {
    mem: &'m GuestMemory,
    chain: DescriptorChain<M>,
    /// Data-in bytes filled.
    pub sent: usize,
    /// Data-out bytes taken.
    pub received: usize,
}

impl<'m, M> GuestData<'m, M>
where
    M: Deref<Target = GuestMemory> + Clone,
{
    pub fn new(mem: &'m GuestMemory, chain: DescriptorChain<M>) -> Self {
        GuestData {
            mem,
            chain,
            sent: 0,
            received: 0,
        }
    }
}

impl<M> DirectData for GuestData<'_, M>
where
    M: Deref<Target = GuestMemory> + Clone,
{
    fn data_in(&mut self, len: usize) -> Option<Vec<MemSlice<'_>>> {
        let skip = CMD_RESP_SIZE.checked_add(self.sent)?;
        slices(self.mem, self.chain.clone().writable(), skip, len)
    }

    fn sent(&mut self, len: usize) {
        self.sent = self.sent.saturating_add(len);
    }

    fn data_out(&mut self, len: usize) -> Option<Vec<MemSlice<'_>>> {
        let skip = CMD_REQ_SIZE.checked_add(self.received)?;
        slices(self.mem, self.chain.clone().readable(), skip, len)
    }

    fn received(&mut self, len: usize) {
        self.received = self.received.saturating_add(len);
    }
}

/// `len` bytes of guest memory from byte `skip` of the buffers `descs`
/// describe, in order; `None` when they hold fewer or one lies outside
/// guest memory.
fn slices<'m>(
    mem: &'m GuestMemory,
    descs: impl Iterator<Item = Descriptor>,
    mut skip: usize,
    len: usize,
) -> Option<Vec<MemSlice<'m>>> {
    let mut out = Vec::new();
    let mut want = len;
    for d in descs {
        if want == 0 {
            break;
        }
        let dlen = d.len() as usize;
        if skip >= dlen {
            skip -= dlen;
            continue;
        }
        let n = (dlen - skip).min(want);
        let addr = d.addr().checked_add(skip as u64)?;
        for s in GuestMemoryBackend::get_slices(mem, addr, n) {
            out.push(s.ok()?);
        }
        skip = 0;
        want -= n;
    }
    (want == 0).then_some(out)
}
