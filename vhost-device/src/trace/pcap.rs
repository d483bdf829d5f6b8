//! pcapng output that Wireshark decodes (issue 16): NVMe/TCP PDUs as the
//! payload of a synthetic TCP connection to port 4420, and SCSI commands
//! encapsulated as iSCSI PDUs (RFC 7143) on port 3260, so the NVMe/TCP,
//! NVMe, iSCSI and SCSI (SPC/SBC) dissectors show commands, data, status
//! and sense.
//!
//! One Ethernet interface with nanosecond timestamps; the host is
//! 10.0.2.15, the target 10.0.2.2 (QEMU's user-networking addresses).
//! Each NVMe/TCP connection (`conn_id`) and each iSCSI session gets its
//! own host port and starts with a TCP three-way handshake; payloads
//! larger than one IPv4 datagram are split into several segments.
//!
//! Read a file with `tshark -r FILE -V` or open it in Wireshark; no
//! preferences are needed (the iSCSI Login we write states that there
//! are no digests). Wrap a `File` in a `BufWriter`: every packet is one
//! `write_all`.
//!
//! What Wireshark (4.0) cannot show, found with its tests
//! (tests/pcap_tshark.rs):
//! - NVMe Copy (19h) is "Unknown"/"Reserved (0x19)": its SQE shows as
//!   CDW10-15 and its source range list as undecoded capsule data.
//! - It has no ZBC command set: once a standard INQUIRY reports
//!   peripheral device type 14h (host-managed zoned), the LU's later
//!   CDBs show by opcode number only. Before that it decodes them as SBC
//!   (its default), ZBC IN/OUT (95h/94h) as numbers either way.
//! - It names the READ(32) service action (7Fh/0009h) "Rebuild(32)".
//! - Sense codes it does not know (e.g. 21h/04h UNALIGNED WRITE COMMAND)
//!   show as "Unknown" with the right ASC/ASCQ values.
//!
//! ```
//! use zonecopy_vhost::trace::pcap::{nvme_tcp, Direction, ScsiExchange, Writer};
//! let mut w = Writer::new(Vec::new())?;
//! // A TEST UNIT READY that succeeded.
//! w.scsi_exchange(&ScsiExchange { cdb: &[0; 6], ..Default::default() })?;
//! // An NVMe/TCP ICReq on connection 1, 1 us after the epoch.
//! let icreq = nvme_tcp::icreq(0);
//! w.nvme_tcp_pdu(1, Direction::HostToController, 1_000, &icreq)?;
//! let bytes = w.into_inner()?;
//! assert_eq!(&bytes[..4], &[0x0A, 0x0D, 0x0D, 0x0A]);
//! # Ok::<(), std::io::Error>(())
//! ```

mod iscsi;
pub mod nvme_tcp;
mod pcapng;
mod tcp;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    io::{self, Write},
};

pub use tcp::MAX_SEGMENT;

/// The IANA-assigned NVMe/TCP and iSCSI target ports: the ports
/// Wireshark's dissectors take without preferences.
pub const NVME_TCP_PORT: u16 = 4420;
pub const ISCSI_PORT: u16 = 3260;
/// Host ports: NVMe/TCP connection `n` uses 49152 + n % 8192, iSCSI
/// session `n` 57344 + n % 8192 (the dynamic range, RFC 6335 6).
const NVME_HOST_PORT_BASE: u16 = 49152;
const ISCSI_HOST_PORT_BASE: u16 = 57344;
const HOST_PORTS: u32 = 8192;

/// Which way a PDU travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host (initiator) to controller (target).
    HostToController,
    /// Controller (target) to host (initiator).
    ControllerToHost,
}

/// One SCSI command as the target saw it, to write as iSCSI PDUs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScsiExchange<'a> {
    /// The LU number (under 16384), or an already encoded 8-byte LUN
    /// (SAM-5 4.7) for anything larger.
    pub lun: u64,
    /// The command's tag: the iSCSI Initiator Task Tag (FFFFFFFFh is
    /// reserved by RFC 7143 11.2.1.8).
    pub tag: u32,
    /// The CDB; bytes past 16 go into an Extended CDB AHS.
    pub cdb: &'a [u8],
    /// Data from the initiator (write data, parameter lists).
    pub data_out: &'a [u8],
    /// Data to the initiator.
    pub data_in: &'a [u8],
    /// SCSI status (SAM-5 5.3).
    pub status: u8,
    /// Sense data, empty when there is none.
    pub sense: &'a [u8],
    /// When the command arrived: ns since the Unix epoch, pcapng's time
    /// base (a trace's own base shows as a date in 1970).
    pub start_ns: u64,
    /// When it completed.
    pub end_ns: u64,
}

/// Which synthetic connection a flow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum FlowKey {
    NvmeTcp(u32),
    Iscsi(u32),
}

/// A pcapng writer of NVMe/TCP and iSCSI traffic. Packets are written in
/// call order with the timestamps given.
pub struct Writer<W: Write> {
    out: W,
    flows: HashMap<FlowKey, tcp::Flow>,
    sessions: HashMap<u32, iscsi::Session>,
    /// Reused buffers: one frame, one block.
    frame: Vec<u8>,
    block: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Writes the Section Header Block and the Interface Description
    /// Block (LINKTYPE_ETHERNET, if_tsresol = 9: nanoseconds).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut head = Vec::new();
        pcapng::section_header(&mut head);
        pcapng::interface(&mut head, "zonecopy");
        out.write_all(&head)?;
        Ok(Writer {
            out,
            flows: HashMap::new(),
            sessions: HashMap::new(),
            frame: Vec::new(),
            block: Vec::new(),
        })
    }

    /// Writes one NVMe/TCP PDU (with its digests, as it crossed the
    /// connection) of connection `conn_id`, sent in `dir` at
    /// `timestamp_ns`. The first PDU of a connection is preceded by a TCP
    /// handshake. An empty `pdu` writes nothing.
    pub fn nvme_tcp_pdu(
        &mut self,
        conn_id: u32,
        dir: Direction,
        timestamp_ns: u64,
        pdu: &[u8],
    ) -> io::Result<()> {
        if pdu.is_empty() {
            return Ok(());
        }
        self.send(FlowKey::NvmeTcp(conn_id), dir, timestamp_ns, pdu)
    }

    /// Writes the start of NVMe/TCP connection `conn_id` for a trace that
    /// did not see it: ICReq, ICResp (no digests), a Fabrics Connect of
    /// queue `qid` and its successful response. Wireshark learns a
    /// connection's queue ID only from its Connect and decodes opcodes of
    /// queue 0 as admin commands, so a trace that starts mid-connection
    /// writes this first.
    pub fn nvme_tcp_connection(
        &mut self,
        conn_id: u32,
        qid: u16,
        timestamp_ns: u64,
    ) -> io::Result<()> {
        const NQN: &str = "nqn.2026-12.invalid.zonecopy:unknown";
        let pdus = [
            (Direction::HostToController, nvme_tcp::icreq(0)),
            (
                Direction::ControllerToHost,
                nvme_tcp::icresp(MAX_SEGMENT as u32),
            ),
            (
                Direction::HostToController,
                nvme_tcp::connect(0, qid, 31, NQN, NQN),
            ),
            (
                Direction::ControllerToHost,
                nvme_tcp::connect_response(0, qid),
            ),
        ];
        for (dir, pdu) in pdus {
            self.nvme_tcp_pdu(conn_id, dir, timestamp_ns, &pdu)?;
        }
        Ok(())
    }

    /// Writes `x` as iSCSI PDUs of session 0 (see [`Self::scsi_exchange_in`]).
    pub fn scsi_exchange(&mut self, x: &ScsiExchange<'_>) -> io::Result<()> {
        self.scsi_exchange_in(0, x)
    }

    /// Writes `x` as iSCSI PDUs of `session` (one TCP connection each,
    /// e.g. one per SCSI target): a Login at the session's first command,
    /// the SCSI Command, Data-Out PDUs, Data-In PDUs and the SCSI
    /// Response.
    pub fn scsi_exchange_in(&mut self, session: u32, x: &ScsiExchange<'_>) -> io::Result<()> {
        let mut state = self.sessions.remove(&session).unwrap_or_default();
        let key = FlowKey::Iscsi(session);
        let result = state.exchange(session, x, &mut |dir, ts, pdu| self.send(key, dir, ts, pdu));
        self.sessions.insert(session, state);
        result
    }

    /// Closes NVMe/TCP connection `conn_id` (a TCP FIN exchange at
    /// `timestamp_ns`); its next PDU opens a new connection on the same
    /// port, with a new handshake. Nothing for a connection not open.
    pub fn close_nvme_tcp(&mut self, conn_id: u32, timestamp_ns: u64) -> io::Result<()> {
        self.close(FlowKey::NvmeTcp(conn_id), timestamp_ns)
    }

    /// Closes iSCSI `session`'s connection; its next command starts a new
    /// session with a new Login.
    pub fn close_scsi_session(&mut self, session: u32, timestamp_ns: u64) -> io::Result<()> {
        self.sessions.remove(&session);
        self.close(FlowKey::Iscsi(session), timestamp_ns)
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn close(&mut self, key: FlowKey, ts: u64) -> io::Result<()> {
        // The flow stays: a reopened connection's handshake starts from
        // where this one ended, so Wireshark sees a new initial sequence
        // number and takes it for a new connection on a reused port.
        let Some(flow) = self.flows.get_mut(&key) else {
            return Ok(());
        };
        let (out, frame, block) = (&mut self.out, &mut self.frame, &mut self.block);
        flow.close(|seg| emit_frame(out, frame, block, ts, seg, &[]))
    }

    fn send(&mut self, key: FlowKey, dir: Direction, ts: u64, payload: &[u8]) -> io::Result<()> {
        let flow = self.flows.entry(key).or_insert_with(|| {
            // The modulo keeps the sum inside the 16-bit port range.
            let (base, target, n) = match key {
                FlowKey::NvmeTcp(n) => (NVME_HOST_PORT_BASE, NVME_TCP_PORT, n),
                FlowKey::Iscsi(n) => (ISCSI_HOST_PORT_BASE, ISCSI_PORT, n),
            };
            tcp::Flow::new(base + (n % HOST_PORTS) as u16, target)
        });
        let (out, frame, block) = (&mut self.out, &mut self.frame, &mut self.block);
        flow.send(dir, payload, |seg, chunk| {
            emit_frame(out, frame, block, ts, seg, chunk)
        })
    }
}

/// Writes one Enhanced Packet Block of `seg` carrying `payload`, through
/// the reused `frame` and `block` buffers.
fn emit_frame<W: Write>(
    out: &mut W,
    frame: &mut Vec<u8>,
    block: &mut Vec<u8>,
    ts: u64,
    seg: &tcp::Segment,
    payload: &[u8],
) -> io::Result<()> {
    tcp::frame(frame, seg, payload);
    block.clear();
    pcapng::packet(block, ts, frame);
    out.write_all(block)
}
