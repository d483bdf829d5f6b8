//! `zonecopy-vhost trace pcap IN OUT`: a trace as pcapng through
//! [`super::pcap`]: the NVMe/TCP PDUs as they crossed each connection,
//! and each SCSI command as an iSCSI exchange (one session per SCSI
//! target), so Wireshark's dissectors show them.

use std::{fs::File, io::BufWriter, path::Path};

use serde_json::Value;

use super::{
    format::{self, PduRecord, Record, ScsiRecord},
    pcap::{Direction, ScsiExchange, Writer},
};

/// Common header length and the PDU Length field (NVMe/TCP 1.0, 3.6.1).
const CH_LEN: usize = 8;

/// The whole PDUs of one PDU record (a send may hold several); a
/// truncated tail is written as it is.
fn split(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= CH_LEN {
        let plen = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if plen < CH_LEN || plen > rest.len() {
            break;
        }
        let (pdu, tail) = rest.split_at(plen);
        out.push(pdu);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn exchange<'a>(r: &'a ScsiRecord, to_unix: impl Fn(u64) -> u64) -> ScsiExchange<'a> {
    let tag = (r.tag & 0xFFFF_FFFF) as u32;
    ScsiExchange {
        lun: u64::from(r.lun),
        // FFFFFFFFh is reserved (RFC 7143 11.2.1.8).
        tag: tag.min(0xFFFF_FFFE),
        cdb: &r.cdb,
        data_out: r.data_out.bytes.as_deref().unwrap_or_default(),
        data_in: r.data_in.bytes.as_deref().unwrap_or_default(),
        status: r.status,
        sense: &r.sense,
        start_ns: to_unix(r.arrive_ns),
        end_ns: to_unix(r.done_ns),
    }
}

/// Convert `input` (and its rotated parts) to pcapng at `output`. Returns
/// the packets' sources written: (PDUs, SCSI commands).
pub fn convert(input: &Path, output: &Path) -> Result<(u64, u64), String> {
    let records = format::read_all(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let meta: Value = match records.first() {
        Some(Record::Meta(j)) => serde_json::from_str(j).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    // Trace times count from the backend's start; pcapng's from the epoch.
    let unix0 = meta["start_unix_ns"].as_u64().unwrap_or(0);
    let trace0 = meta["start_ns"].as_u64().unwrap_or(0);
    let to_unix = |t: u64| unix0.saturating_add(t.saturating_sub(trace0));
    let io = |e: std::io::Error| format!("{}: {e}", output.display());
    let file = File::create(output).map_err(io)?;
    let mut w = Writer::new(BufWriter::new(file)).map_err(io)?;
    let (mut pdus, mut commands) = (0u64, 0u64);
    for rec in &records {
        match rec {
            Record::Pdu(PduRecord {
                conn,
                dir,
                t_ns,
                bytes,
            }) => {
                let d = match dir {
                    0 => Direction::HostToController,
                    _ => Direction::ControllerToHost,
                };
                for pdu in split(bytes) {
                    w.nvme_tcp_pdu((*conn & 0xFFFF_FFFF) as u32, d, to_unix(*t_ns), pdu)
                        .map_err(io)?;
                    pdus += 1;
                }
            }
            Record::Scsi(r) => {
                w.scsi_exchange_in(u32::from(r.target), &exchange(r, to_unix))
                    .map_err(io)?;
                commands += 1;
            }
            _ => {}
        }
    }
    w.into_inner().map_err(io)?;
    Ok((pdus, commands))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_finds_whole_pdus_and_keeps_a_tail() {
        let mut a = vec![0x05, 0, 8, 0];
        a.extend(10u32.to_le_bytes());
        a.extend([1, 2]);
        let mut b = vec![0x07, 0, 8, 0];
        b.extend(8u32.to_le_bytes());
        let mut both = a.clone();
        both.extend(&b);
        both.extend([9, 9, 9]);
        assert_eq!(split(&both), vec![&a[..], &b[..], &[9, 9, 9][..]]);
    }
}
