//! pcapng blocks (the PCAP Next Generation capture file format,
//! draft-ietf-opsawg-pcapng): Section Header Block (4.1), Interface
//! Description Block (4.2) and Enhanced Packet Block (4.3), little-endian.

/// Section Header Block type (4.1).
const SHB: u32 = 0x0A0D_0D0A;
/// Interface Description Block type (4.2).
const IDB: u32 = 0x0000_0001;
/// Enhanced Packet Block type (4.3).
const EPB: u32 = 0x0000_0006;
/// Byte-order magic (4.1): written in our (little-endian) order.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// LINKTYPE_ETHERNET (the tcpdump link-layer header types registry).
pub const LINKTYPE_ETHERNET: u16 = 1;
/// opt_endofopt (3.5).
const OPT_END: u16 = 0;
/// if_name (4.2).
const IF_NAME: u16 = 2;
/// if_tsresol (4.2): one byte, 10^-n seconds when the top bit is clear.
const IF_TSRESOL: u16 = 9;
/// Nanoseconds: 10^-9.
const TSRESOL_NS: u8 = 9;

/// Appends `body` framed as a block of type `kind`: type, total length,
/// body padded to 32 bits, total length again (3.1).
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let padded = body.len().next_multiple_of(4);
    // Block lengths are 32-bit by definition; our largest body is one
    // Ethernet frame (under 64 KiB plus headers), so this cannot truncate.
    let total = (12 + padded) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}

/// Appends one option (3.5): code, length, value padded to 32 bits.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + value.len().next_multiple_of(4) - value.len(), 0);
}

/// The Section Header Block: version 1.0, section length unknown (-1),
/// no options.
pub fn section_header(out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    block(out, SHB, &body);
}

/// An Interface Description Block for an Ethernet interface called
/// `name` with nanosecond timestamps and no snapshot length limit (0).
pub fn interface(out: &mut Vec<u8>, name: &str) {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    option(&mut body, IF_NAME, name.as_bytes());
    option(&mut body, IF_TSRESOL, &[TSRESOL_NS]);
    option(&mut body, OPT_END, &[]);
    block(out, IDB, &body);
}

/// An Enhanced Packet Block on interface 0: the whole `frame` captured at
/// `timestamp_ns` (in units of the interface's if_tsresol).
pub fn packet(out: &mut Vec<u8>, timestamp_ns: u64, frame: &[u8]) {
    let len = frame.len() as u32;
    let mut head = [0u8; 20];
    head[4..8].copy_from_slice(&((timestamp_ns >> 32) as u32).to_le_bytes());
    head[8..12].copy_from_slice(&(timestamp_ns as u32).to_le_bytes());
    head[12..16].copy_from_slice(&len.to_le_bytes());
    head[16..20].copy_from_slice(&len.to_le_bytes());
    let padded = frame.len().next_multiple_of(4);
    let total = (12 + 20 + padded) as u32;
    out.extend_from_slice(&EPB.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(frame);
    out.resize(out.len() + padded - frame.len(), 0);
    out.extend_from_slice(&total.to_le_bytes());
}
