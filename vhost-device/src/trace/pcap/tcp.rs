//! Synthetic Ethernet II / IPv4 (RFC 791) / TCP (RFC 9293) framing for
//! payloads captured above the socket: each connection gets a three-way
//! handshake, then every payload becomes one or more ACK segments whose
//! sequence numbers advance per direction, so Wireshark's TCP reassembly
//! and the PDU dissectors on top of it see an ordinary stream.

use super::Direction;

/// The host (initiator) side: QEMU's user-networking guest address.
pub const HOST_IP: [u8; 4] = [10, 0, 2, 15];
/// The target (controller) side: QEMU's user-networking gateway.
pub const TARGET_IP: [u8; 4] = [10, 0, 2, 2];
/// QEMU's default guest MAC address.
const HOST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// QEMU's user-networking gateway MAC address.
const TARGET_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const TCP_LEN: usize = 20;
/// EtherType IPv4.
const ETHERTYPE_IPV4: u16 = 0x0800;
/// IPv4 protocol number of TCP.
const PROTO_TCP: u8 = 6;
/// The most payload one segment carries: an IPv4 datagram's Total Length
/// is 16 bits (RFC 791 3.1), less the IPv4 and TCP headers.
pub const MAX_SEGMENT: usize = 0xFFFF - IP_LEN - TCP_LEN;
/// Window scale shift offered in SYN and SYN-ACK (RFC 7323 2.2), so the
/// advertised window (65535 << 7, 8 MiB) never looks full.
const WSCALE: u8 = 7;

/// TCP flags (RFC 9293 3.1).
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// The 16-bit ones' complement sum of RFC 1071, not yet complemented.
fn sum16(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// The Internet checksum (RFC 1071) of `bytes` with `acc` already summed.
pub fn checksum(acc: u32, bytes: &[u8]) -> u16 {
    let mut s = sum16(acc, bytes);
    while s > 0xFFFF {
        s = (s & 0xFFFF) + (s >> 16);
    }
    !(s as u16)
}

/// One TCP segment's header fields.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub dir: Direction,
    pub host_port: u16,
    pub target_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub ip_id: u16,
}

/// Builds the Ethernet frame of `seg` carrying `payload` into `out`
/// (cleared first). SYNs carry the MSS and window-scale options.
pub fn frame(out: &mut Vec<u8>, seg: &Segment, payload: &[u8]) {
    let (src_mac, dst_mac, src_ip, dst_ip, sport, dport) = match seg.dir {
        Direction::HostToController => (
            HOST_MAC,
            TARGET_MAC,
            HOST_IP,
            TARGET_IP,
            seg.host_port,
            seg.target_port,
        ),
        Direction::ControllerToHost => (
            TARGET_MAC,
            HOST_MAC,
            TARGET_IP,
            HOST_IP,
            seg.target_port,
            seg.host_port,
        ),
    };
    let mut options = Vec::new();
    if seg.flags & SYN != 0 {
        // MSS (kind 2, RFC 9293 3.2), NOP, window scale (kind 3, RFC 7323).
        options.extend_from_slice(&[2, 4]);
        options.extend_from_slice(&(MAX_SEGMENT as u16).to_be_bytes());
        options.extend_from_slice(&[1, 3, 3, WSCALE]);
    }
    let tcp_len = TCP_LEN + options.len() + payload.len();
    debug_assert!(IP_LEN + tcp_len <= 0xFFFF);
    out.clear();
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    // IPv4 header (RFC 791 3.1): version 4, IHL 5, DF, TTL 64.
    let ip = out.len();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&((IP_LEN + tcp_len) as u16).to_be_bytes());
    out.extend_from_slice(&seg.ip_id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0, 64, PROTO_TCP, 0, 0]);
    out.extend_from_slice(&src_ip);
    out.extend_from_slice(&dst_ip);
    let ip_sum = checksum(0, &out[ip..ip + IP_LEN]);
    out[ip + 10..ip + 12].copy_from_slice(&ip_sum.to_be_bytes());
    // TCP header (RFC 9293 3.1).
    let tcp = out.len();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&seg.seq.to_be_bytes());
    out.extend_from_slice(&seg.ack.to_be_bytes());
    let offset_words = ((TCP_LEN + options.len()) / 4) as u8;
    out.extend_from_slice(&[offset_words << 4, seg.flags, 0xFF, 0xFF, 0, 0, 0, 0]);
    out.extend_from_slice(&options);
    out.extend_from_slice(payload);
    // Pseudo-header: source, destination, zero, protocol, TCP length.
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src_ip);
    pseudo[4..8].copy_from_slice(&dst_ip);
    pseudo[9] = PROTO_TCP;
    pseudo[10..12].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    let tcp_sum = checksum(sum16(0, &pseudo), &out[tcp..]);
    out[tcp + 16..tcp + 18].copy_from_slice(&tcp_sum.to_be_bytes());
    debug_assert_eq!(out.len(), ETH_LEN + IP_LEN + tcp_len);
}

/// One synthetic TCP connection's state.
#[derive(Clone, Debug)]
pub struct Flow {
    pub host_port: u16,
    pub target_port: u16,
    /// Next sequence number to send, per [`Direction`] index.
    next_seq: [u32; 2],
    /// Next IPv4 identification, per direction.
    ip_id: [u16; 2],
    /// The handshake has been written.
    open: bool,
}

fn index(dir: Direction) -> usize {
    match dir {
        Direction::HostToController => 0,
        Direction::ControllerToHost => 1,
    }
}

impl Flow {
    /// A flow between `host_port` and `target_port`; the initial sequence
    /// numbers derive from the ports, so a file is reproducible.
    pub fn new(host_port: u16, target_port: u16) -> Self {
        let isn = (u32::from(host_port) << 16) | u32::from(target_port);
        Flow {
            host_port,
            target_port,
            next_seq: [isn ^ 0x1000_0000, isn ^ 0x2000_0000],
            ip_id: [1, 1],
            open: false,
        }
    }

    /// The next sequence number `dir` will send.
    #[cfg(test)]
    pub fn next_seq(&self, dir: Direction) -> u32 {
        self.next_seq[index(dir)]
    }

    fn segment(&mut self, dir: Direction, flags: u8) -> Segment {
        let d = index(dir);
        let id = self.ip_id[d];
        self.ip_id[d] = id.wrapping_add(1);
        Segment {
            dir,
            host_port: self.host_port,
            target_port: self.target_port,
            seq: self.next_seq[d],
            ack: if flags & ACK != 0 {
                self.next_seq[1 - d]
            } else {
                0
            },
            flags,
            ip_id: id,
        }
    }

    /// The frames that carry `payload` in `dir`, preceded by the
    /// SYN / SYN-ACK / ACK handshake when the flow is not open yet; each
    /// frame is handed to `emit`.
    pub fn send(
        &mut self,
        dir: Direction,
        payload: &[u8],
        mut emit: impl FnMut(&Segment, &[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if !self.open {
            self.open = true;
            let syn = self.segment(Direction::HostToController, SYN);
            emit(&syn, &[])?;
            self.next_seq[0] = self.next_seq[0].wrapping_add(1);
            let syn_ack = self.segment(Direction::ControllerToHost, SYN | ACK);
            emit(&syn_ack, &[])?;
            self.next_seq[1] = self.next_seq[1].wrapping_add(1);
            let ack = self.segment(Direction::HostToController, ACK);
            emit(&ack, &[])?;
        }
        let mut chunks = payload.chunks(MAX_SEGMENT).peekable();
        // (An empty payload after the handshake sends nothing.)
        while let Some(chunk) = chunks.next() {
            let flags = if chunks.peek().is_none() {
                ACK | PSH
            } else {
                ACK
            };
            let seg = self.segment(dir, flags);
            emit(&seg, chunk)?;
            let d = index(dir);
            // Sequence space is modulo 2^32 (RFC 9293 3.4); a chunk is
            // under 64 KiB.
            self.next_seq[d] = self.next_seq[d].wrapping_add(chunk.len() as u32);
        }
        Ok(())
    }

    /// The host closes an open flow: FIN-ACK, the target's FIN-ACK, the
    /// host's ACK (RFC 9293 3.6). Nothing for a flow never opened.
    pub fn close(
        &mut self,
        mut emit: impl FnMut(&Segment) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        let fin = self.segment(Direction::HostToController, FIN | ACK);
        emit(&fin)?;
        self.next_seq[0] = self.next_seq[0].wrapping_add(1);
        let fin_ack = self.segment(Direction::ControllerToHost, FIN | ACK);
        emit(&fin_ack)?;
        self.next_seq[1] = self.next_seq[1].wrapping_add(1);
        emit(&self.segment(Direction::HostToController, ACK))
    }
}
