use super::*;

#[test]
fn trace_lines() {
    let l = "  zonecopy-guest-93  [000] .....  41.071214: nvme_complete_rq: nvme0: qid=0, \
             cmdid=32781, res=0x0, retries=0, flags=0x2, status=0x6109";
    assert_eq!(
        parse_completion(l),
        Some(TracedCompletion {
            qid: 0,
            cid: 32781,
            status: 0x6109
        })
    );
    let l = "kworker/0:1H-40 [000] ..s1. 9.5: nvme_complete_rq: nvme0: disk=nvme0n1, qid=1, \
             cmdid=4, res=0x0, retries=0, flags=0x0, status=0x0";
    assert_eq!(parse_completion(l).map(|t| (t.qid, t.cid)), Some((1, 4)));
    assert_eq!(parse_completion("nvme_setup_cmd: nvme0: qid=0"), None);
}

#[test]
fn error_entry_layout() {
    let mut e = [0u8; 64];
    e[0] = 3; // Error Count
    e[8..10].copy_from_slice(&1u16.to_le_bytes()); // SQID
    e[10..12].copy_from_slice(&0x42u16.to_le_bytes()); // CID
    e[12..14].copy_from_slice(&(0x61BAu16 << 1).to_le_bytes()); // Status Field
    e[14..16].copy_from_slice(&[0xFF, 0xFF]); // no location
    e[16..24].copy_from_slice(&0x100u64.to_le_bytes()); // LBA
    e[24] = 1; // NSID
    e[30] = 2; // CSI
    e[31] = 0x01; // Write
    e[63] = 1;
    let p = ErrorEntry::parse(&e);
    assert_eq!(
        (p.count, p.sqid, p.cid, p.lba, p.nsid),
        (3, 1, 0x42, 0x100, 1)
    );
    assert_eq!(
        (p.status().code(), p.status().more(), p.location),
        (0x1BA, true, 0xFFFF)
    );
    assert_eq!((p.csi, p.opcode, p.version), (2, 1, 1));
}
