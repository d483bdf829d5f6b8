//! STUB of the pcapng writer, which its own branch (issue 16, pcap)
//! provides with this API: the merge takes that file instead of this one.
//! Until then `trace pcap` reports that it is not built in.

use std::io::{self, Write};

/// Which way a PDU travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    HostToController,
    ControllerToHost,
}

/// One SCSI command as the target saw it.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScsiExchange<'a> {
    pub lun: u64,
    pub tag: u32,
    pub cdb: &'a [u8],
    pub data_out: &'a [u8],
    pub data_in: &'a [u8],
    pub status: u8,
    pub sense: &'a [u8],
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The writer; this stub cannot be created.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(_out: W) -> io::Result<Self> {
        Err(io::Error::other(
            "the pcapng writer is not built in (its branch is not merged)",
        ))
    }

    pub fn nvme_tcp_pdu(&mut self, _: u32, _: Direction, _: u64, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    pub fn scsi_exchange_in(&mut self, _: u32, _: &ScsiExchange<'_>) -> io::Result<()> {
        Ok(())
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
