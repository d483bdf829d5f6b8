//! The pcapng writer's output read back by tshark (Wireshark's dissectors):
//! a known NVMe/TCP exchange with a Copy command and a known SCSI exchange
//! with an EXTENDED COPY, decoded field by field.
//!
//! tshark comes from scripts/setup.sh; without it these tests fail (they
//! do not skip).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use zonecopy_vhost::trace::pcap::{
    nvme_tcp::{c2h_data, capsule_cmd, capsule_resp, icreq, icresp},
    Direction::{ControllerToHost as C2H, HostToController as H2C},
    ScsiExchange, Writer,
};

/// Runs tshark on `file` with `args`, returns stdout; fails the test with
/// a hint when tshark is missing.
fn tshark(file: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run tshark ({e}): run scripts/setup.sh (as root), which installs it")
        });
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark prints UTF-8")
}

/// `-T fields` output of `fields` for the packets matching `filter`, one
/// line per packet, fields separated by `|`.
fn fields(file: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut args = vec![
        "-Y",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    tshark(file, &args).lines().map(str::to_owned).collect()
}

/// Wireshark finds nothing to warn or complain about in `file` (expert
/// info at Warning severity or above: malformed PDUs, TCP analysis
/// problems such as unseen segments, bad IPv4/TCP checksums once it
/// checks them). Notes stay: a closed connection and a reused port are
/// notes, and the NVMe test makes both on purpose.
fn assert_clean(file: &Path) {
    let bad = tshark(
        file,
        &[
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-Y",
            "_ws.malformed || _ws.expert.severity >= 0x00600000",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.message",
        ],
    );
    assert!(bad.is_empty(), "expert findings:\n{bad}");
}

fn write_file(dir: &Path, name: &str, fill: impl FnOnce(&mut Writer<Vec<u8>>)) -> PathBuf {
    let mut w = Writer::new(Vec::new()).unwrap();
    fill(&mut w);
    let path = dir.join(name);
    std::fs::write(&path, w.into_inner().unwrap()).unwrap();
    path
}

// ------------------------------------------------------------- NVMe/TCP

/// A Fabrics Connect SQE (NVMe over Fabrics 1.1, 3.3) for queue `qid`
/// with 1024 bytes of in-capsule data.
fn connect_sqe(cid: u16, qid: u16) -> [u8; 64] {
    let mut s = [0u8; 64];
    s[0] = 0x7F; // OPC: Fabrics
    s[1] = 0x40; // PSDT: SGL
    s[2..4].copy_from_slice(&cid.to_le_bytes());
    s[4] = 0x01; // FCTYPE: Connect
    s[32..36].copy_from_slice(&1024u32.to_le_bytes()); // SGL1 length
    s[39] = 0x01; // SGL1: Data Block, Offset
    s[42..44].copy_from_slice(&qid.to_le_bytes()); // QID
    s[44..46].copy_from_slice(&31u16.to_le_bytes()); // SQSIZE (0's based)
    s
}

/// Connect data (3.3, Figure 20): HOSTID, CNTLID FFFFh, SUBNQN, HOSTNQN.
fn connect_data() -> Vec<u8> {
    let mut d = vec![0u8; 1024];
    d[0..16].copy_from_slice(&[0x11; 16]);
    d[16..18].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let sub = b"nqn.2026-12.invalid.zonecopy:sub";
    d[256..256 + sub.len()].copy_from_slice(sub);
    let host = b"nqn.2026-12.invalid.zonecopy:host";
    d[512..512 + host.len()].copy_from_slice(host);
    d
}

/// A CQE (NVMe Base 2.0, 4.6): DW0, SQHD, SQID, CID, status (without the
/// phase bit).
fn cqe(dw0: u32, sqid: u16, cid: u16, status: u16) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0..4].copy_from_slice(&dw0.to_le_bytes());
    c[10..12].copy_from_slice(&sqid.to_le_bytes());
    c[12..14].copy_from_slice(&cid.to_le_bytes());
    c[14..16].copy_from_slice(&(status << 1).to_le_bytes());
    c
}

/// Copy (NVM Command Set 1.0, 3.3.1): NSID 1, SDLBA 1000h, two format-0
/// source ranges in capsule.
fn copy_sqe(cid: u16) -> [u8; 64] {
    let mut s = [0u8; 64];
    s[0] = 0x19; // OPC: Copy
    s[1] = 0x40; // PSDT: SGL
    s[2..4].copy_from_slice(&cid.to_le_bytes());
    s[4..8].copy_from_slice(&1u32.to_le_bytes()); // NSID
    s[32..36].copy_from_slice(&64u32.to_le_bytes()); // SGL1 length
    s[39] = 0x01; // SGL1: Data Block, Offset (in-capsule)
    s[40..44].copy_from_slice(&0x1000u32.to_le_bytes()); // CDW10: SDLBA low
    s[48] = 1; // CDW12: NR 1 (two ranges, 0's based), DESFMT 0
    s
}

/// Source Range Entries, format 0h (NVM CS 1.0, Figure 41): SLBA at
/// bytes 15:8, NLB (0's based) at 17:16.
fn copy_ranges() -> Vec<u8> {
    let mut d = vec![0u8; 64];
    for (i, (slba, nlb)) in [(0x100u64, 7u16), (0x200, 15)].into_iter().enumerate() {
        d[i * 32 + 8..i * 32 + 16].copy_from_slice(&slba.to_le_bytes());
        d[i * 32 + 16..i * 32 + 18].copy_from_slice(&nlb.to_le_bytes());
    }
    d
}

/// Read (NVM CS 1.0, 3.2.4): NSID 1, SLBA 20h, NLB 1 (two 4 KiB blocks).
fn read_sqe(cid: u16) -> [u8; 64] {
    let mut s = [0u8; 64];
    s[0] = 0x02;
    s[1] = 0x40;
    s[2..4].copy_from_slice(&cid.to_le_bytes());
    s[4..8].copy_from_slice(&1u32.to_le_bytes());
    s[32..36].copy_from_slice(&8192u32.to_le_bytes()); // SGL1 length
    s[39] = 0x5A; // SGL1: Transport SGL Data Block, transport specific
    s[40..44].copy_from_slice(&0x20u32.to_le_bytes()); // SLBA
    s[48..50].copy_from_slice(&1u16.to_le_bytes()); // NLB (0's based)
    s
}

/// An admin queue (connection 1) and I/O queue 1 (connection 2): ICReq,
/// ICResp, Connect and its response on each; then a Copy, a Read with
/// 8 KiB of C2HData and one with 192 KiB on the I/O queue; then I/O
/// queue 2 (connection 3), whose start is made up, with a Copy. PDUs are
/// 1 us apart.
fn nvme_exchange(w: &mut Writer<Vec<u8>>) {
    let t = std::cell::Cell::new(1_000_000u64);
    let now = || {
        t.set(t.get() + 1000);
        t.get()
    };
    let pdu = |w: &mut Writer<Vec<u8>>, conn, dir, p: &[u8]| {
        w.nvme_tcp_pdu(conn, dir, now(), p).unwrap();
    };
    for (conn, qid) in [(1u32, 0u16), (2, 1)] {
        pdu(w, conn, H2C, &icreq(0));
        pdu(w, conn, C2H, &icresp(128 * 1024));
        pdu(
            w,
            conn,
            H2C,
            &capsule_cmd(&connect_sqe(1, qid), &connect_data()),
        );
        pdu(w, conn, C2H, &capsule_resp(&cqe(1, qid, 1, 0)));
    }
    pdu(w, 2, H2C, &capsule_cmd(&copy_sqe(5), &copy_ranges()));
    pdu(w, 2, C2H, &capsule_resp(&cqe(0, 1, 5, 0)));
    pdu(w, 2, H2C, &capsule_cmd(&read_sqe(6), &[]));
    let data: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
    pdu(w, 2, C2H, &c2h_data(6, 0, &data[..4096], false, false));
    pdu(w, 2, C2H, &c2h_data(6, 4096, &data[4096..], true, false));
    pdu(w, 2, C2H, &capsule_resp(&cqe(0, 1, 6, 0)));
    // 192 KiB in one C2HData PDU: more than one TCP segment carries it.
    let mut big = read_sqe(7);
    big[32..36].copy_from_slice(&(BIG_READ as u32).to_le_bytes());
    big[48..50].copy_from_slice(&47u16.to_le_bytes());
    pdu(w, 2, H2C, &capsule_cmd(&big, &[]));
    pdu(
        w,
        2,
        C2H,
        &c2h_data(7, 0, &vec![0x3C; BIG_READ], true, false),
    );
    pdu(w, 2, C2H, &capsule_resp(&cqe(0, 1, 7, 0)));
    // A connection whose start the trace missed: the writer makes one up.
    w.nvme_tcp_connection(3, 2, now()).unwrap();
    pdu(w, 3, H2C, &capsule_cmd(&copy_sqe(9), &copy_ranges()));
    pdu(w, 3, C2H, &capsule_resp(&cqe(0, 2, 9, 0)));
    // Connection 3 closes and comes back as I/O queue 3.
    w.close_nvme_tcp(3, now()).unwrap();
    w.nvme_tcp_connection(3, 3, now()).unwrap();
}

const BIG_READ: usize = 192 * 1024;
/// The NQN [`Writer::nvme_tcp_connection`] writes.
const UNKNOWN: &str = "nqn.2026-12.invalid.zonecopy:unknown";

#[test]
fn nvme_tcp_copy_and_read_decode() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "nvme.pcapng", nvme_exchange);
    assert_clean(&f);
    // Every PDU, in order (NVMe/TCP 1.0 Figure 22 types).
    let types = fields(&f, "nvme-tcp", &["nvme-tcp.type"]);
    assert_eq!(
        types,
        [
            "0", "1", "4", "5", "0", "1", "4", "5", "4", "5", "4", "7", "7", "5", "4", "7", "5",
            "0", "1", "4", "5", "4", "5", "0", "1", "4", "5"
        ]
    );
    // Connect on each queue; the I/O queue's is QID 1.
    let connect = fields(
        &f,
        "nvme.fabrics.cmd.fctype == 1",
        &[
            "nvme.fabrics.cmd.connect.qid",
            "nvme.fabrics.cmd.connect.sqsize",
            "nvme.fabrics.cmd.connect.data.cntrlid",
            "nvme.fabrics.cmd.connect.data.subnqn",
            "nvme.fabrics.cmd.connect.data.hostnqn",
        ],
    );
    let nqns = "0xffff|nqn.2026-12.invalid.zonecopy:sub|nqn.2026-12.invalid.zonecopy:host";
    assert_eq!(
        connect,
        [
            format!("0|31|{nqns}"),
            format!("1|31|{nqns}"),
            format!("2|31|0xffff|{UNKNOWN}|{UNKNOWN}"),
            format!("3|31|0xffff|{UNKNOWN}|{UNKNOWN}")
        ]
    );
    // Connection 3's reopening is a new TCP conversation on the same port.
    let syns = fields(
        &f,
        "tcp.port == 49155 && tcp.flags == 0x002",
        &["tcp.stream"],
    );
    assert_eq!(syns, ["2", "3"]);
    // The Copy SQE on queue 1 (NVM CS 1.0, 3.3.1): SDLBA in CDW10-11, NR
    // 1 in CDW12, SGL data block of 64 bytes at offset 0 (in capsule).
    let copy = fields(
        &f,
        "nvme.cmd.opc == 0x19 && nvme.cmd.cid == 5",
        &[
            "frame.number",
            "nvme-tcp.cmd.qid",
            "nvme.cmd.cid",
            "nvme.cmd.nsid",
            "nvme.cmd.psdt",
            "nvme.cmd.sgl.type",
            "nvme.cmd.sgl.subtype",
            "nvme.cmd.sgl1.addr",
            "nvme.cmd.sgl1.len",
            "nvme.cmd.dword10",
            "nvme.cmd.dword11",
            "nvme.cmd.dword12",
            "nvme-tcp.pdo",
            "nvme-tcp.plen",
        ],
    );
    assert_eq!(copy.len(), 1, "{copy:?}");
    let (frame, rest) = copy[0].split_once('|').unwrap();
    assert_eq!(
        rest,
        "0x0001|0x0005|0x00000001|0x01|0x00|0x01|0x0000000000000000|64|0x00001000|0x00000000|0x00000001|72|136"
    );
    // The source range list is the capsule's data: Wireshark 4.0 does not
    // decode it, so match its bytes after the 72-byte header.
    let hex: String = copy_ranges().iter().map(|b| format!("{b:02x}")).collect();
    let filter = format!("nvme.cmd.opc == 0x19 && tcp.payload[72:64] == {hex}");
    let both = fields(
        &f,
        &filter,
        &["frame.number", "nvme-tcp.cmd.qid", "nvme.cmd.cid"],
    );
    assert_eq!(both[0], format!("{frame}|0x0001|0x0005"));
    // The made-up Connect told Wireshark the third connection is I/O
    // queue 2.
    assert_eq!(both[1].split_once('|').unwrap().1, "0x0002|0x0009");
    assert_eq!(both.len(), 2);
    // Its response names it.
    let resp = fields(
        &f,
        "nvme.cqe.cid == 5",
        &["nvme.cmd_pkt", "nvme.cqe.sqid", "nvme.cqe.status"],
    );
    assert_eq!(resp, [format!("{frame}|0x0001|0x0000")]);
    // The Read and its data.
    let read = fields(
        &f,
        "nvme.cmd.opc == 0x02",
        &["nvme.cmd.cid", "nvme.cmd.slba", "nvme.cmd.nlb"],
    );
    assert_eq!(
        read,
        [
            "0x0006|0x0000000000000020|2",
            "0x0007|0x0000000000000020|48"
        ]
    );
    let data = fields(
        &f,
        "nvme-tcp.type == 7",
        &[
            "nvme-tcp.cmd.cid",
            "nvme-tcp.data.offset",
            "nvme-tcp.data.length",
            "nvme-tcp.flags.pdu.data_last",
            "nvme-tcp.flags.pdu.data_success",
        ],
    );
    let big = format!("0x0007|0|{BIG_READ}|1|0");
    assert_eq!(
        data,
        ["0x0006|0|4096|0|0", "0x0006|4096|4096|1|0", big.as_str()]
    );
    // The 192 KiB PDU came in several segments that TCP reassembled.
    let segs = fields(
        &f,
        "nvme-tcp.cmd.cid == 7 && nvme-tcp.type == 7",
        &["tcp.segment.count", "tcp.reassembled.length"],
    );
    assert_eq!(segs, [format!("4|{}", BIG_READ + 24)]);
}

// ----------------------------------------------------------------- SCSI

/// EXTENDED COPY (LID1) CDB (SPC-4 6.4.1): 83h, SA 00h, PARAMETER LIST
/// LENGTH at bytes 10-13.
fn xcopy_cdb(len: u32) -> Vec<u8> {
    let mut c = vec![0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
    c.extend_from_slice(&len.to_be_bytes());
    c.extend_from_slice(&[0, 0]);
    c
}

/// An Identification CSCD descriptor (E4h, SPC-4 6.4.5.2): NAA 6
/// designator, 4096-byte blocks.
fn cscd_e4(naa_tail: u8) -> Vec<u8> {
    let mut d = vec![0xE4, 0x00, 0x00, 0x00]; // type, LU ID TYPE 0, RELATIVE INITIATOR PORT 0
    d.extend_from_slice(&[0x01, 0x03, 0x00, 0x10]); // binary, LU NAA, designator length 16
    let mut naa = [0u8; 20];
    naa[..16].copy_from_slice(&[
        0x60, 0x01, 0x40, 0x50, 0x5A, 0x43, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, naa_tail,
    ]);
    d.extend_from_slice(&naa);
    d.extend_from_slice(&[0x00, 0x00, 0x10, 0x00]); // PAD 0, DISK BLOCK LENGTH 4096
    d
}

/// A block-to-block segment descriptor (02h, SPC-4 6.4.6.5).
fn seg_02(src: u16, dst: u16, blocks: u16, src_lba: u64, dst_lba: u64) -> Vec<u8> {
    let mut d = vec![0x02, 0x00, 0x00, 0x18];
    d.extend_from_slice(&src.to_be_bytes());
    d.extend_from_slice(&dst.to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&blocks.to_be_bytes());
    d.extend_from_slice(&src_lba.to_be_bytes());
    d.extend_from_slice(&dst_lba.to_be_bytes());
    d
}

/// LID1 parameter list (SPC-4 6.4.3): list ID 5, two E4h descriptors,
/// one 02h segment.
fn xcopy_list() -> Vec<u8> {
    let cscds = [cscd_e4(0x01), cscd_e4(0x02)].concat();
    let seg = seg_02(0, 1, 8, 0x40, 0x80);
    let mut p = vec![0x05, 0x00];
    p.extend_from_slice(&(cscds.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(seg.len() as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&cscds);
    p.extend_from_slice(&seg);
    p
}

/// READ(16) (SBC-4 5.17): LBA 40h, 2 blocks.
const READ16: [u8; 16] = [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 2, 0, 0];
/// WRITE(16) (SBC-4 5.41): LBA 41h, 1 block: not at the write pointer.
const WRITE16: [u8; 16] = [0x8A, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 0, 1, 0, 0];
/// Fixed sense (SPC-4 4.5.3): ILLEGAL REQUEST, UNALIGNED WRITE COMMAND
/// (21h/04h, ZBC-2 4.5.4).
const UNALIGNED: [u8; 18] = [
    0x70, 0, 0x05, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x21, 0x04, 0, 0, 0, 0,
];

/// READ(32) (SBC-4 5.16): 7Fh, ADDITIONAL CDB LENGTH 18h, SERVICE
/// ACTION 0009h, LBA 44h at bytes 12-19, TRANSFER LENGTH 1 at 28-31.
const READ32: [u8; 32] = {
    let mut c = [0u8; 32];
    c[0] = 0x7F;
    c[7] = 0x18;
    c[9] = 0x09;
    c[19] = 0x44;
    c[31] = 1;
    c
};
/// WRITE(16): LBA 100h, 50 blocks (200 KiB of 4 KiB blocks).
const WRITE16_BIG: [u8; 16] = [0x8A, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 50, 0, 0];

/// EXTENDED COPY, READ(16), a WRITE(16) that fails, READ(32), a 200 KiB
/// WRITE(16), 10 us apart, each taking 5 us.
fn scsi_exchange(w: &mut Writer<Vec<u8>>) {
    let list = xcopy_list();
    let cdb = xcopy_cdb(list.len() as u32);
    let read: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    let write = vec![0xA5u8; 4096];
    let big = vec![0x5Au8; 200 * 1024];
    let x = |lun, tag, cdb| ScsiExchange {
        lun,
        tag,
        cdb,
        ..Default::default()
    };
    let ex = [
        ScsiExchange {
            data_out: &list,
            ..x(0, 0x10, &cdb)
        },
        ScsiExchange {
            data_in: &read,
            ..x(1, 0x11, &READ16)
        },
        ScsiExchange {
            data_out: &write,
            status: 0x02,
            sense: &UNALIGNED,
            ..x(1, 0x12, &WRITE16)
        },
        ScsiExchange {
            data_in: &read[..4096],
            ..x(1, 0x13, &READ32)
        },
        ScsiExchange {
            data_out: &big,
            ..x(1, 0x16, &WRITE16_BIG)
        },
    ];
    for (i, x) in ex.iter().enumerate() {
        let t = 2_000_000 + 10_000 * i as u64;
        w.scsi_exchange(&ScsiExchange {
            start_ns: t,
            end_ns: t + 5000,
            ..*x
        })
        .unwrap();
    }
}

#[test]
fn scsi_extended_copy_read_and_sense_decode() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_file(dir.path(), "scsi.pcapng", scsi_exchange);
    assert_clean(&f);
    // RFC 7143 opcodes in order: Login, then per command its Command,
    // Data-Out/Data-In and Response.
    let ops = fields(&f, "iscsi", &["iscsi.opcode"]);
    #[rustfmt::skip]
    assert_eq!(ops, [
        "0x03", "0x23",
        "0x01", "0x21",                 // EXTENDED COPY, list as immediate data
        "0x01", "0x25", "0x21",         // READ(16)
        "0x01", "0x21",                 // WRITE(16): CHECK CONDITION
        "0x01", "0x25", "0x21",         // READ(32)
        "0x01", "0x05", "0x05", "0x05", "0x21", // 200 KiB WRITE(16)
    ]);
    // EXTENDED COPY (SPC-4 6.4): Wireshark names it and decodes the LID1
    // parameter list (6.4.3): header, two E4h CSCD descriptors (6.4.5.2),
    // one 02h block-to-block segment descriptor (6.4.6.5).
    let v = tshark(
        &f,
        &[
            "-Y",
            "iscsi.opcode == 0x01 && scsi_sbc.opcode == 0x83",
            "-V",
        ],
    );
    assert!(v.contains("Opcode: Extended Copy (0x83)"), "{v}");
    assert!(
        v.contains("Service action: Extended Copy (LID1) (0x00)"),
        "{v}"
    );
    let list = fields(
        &f,
        "iscsi.opcode == 0x01 && scsi_sbc.opcode == 0x83",
        &[
            "iscsi.initiatortasktag",
            "scsi.extcopy.param_list_len",
            "scsi.extcopy.list_id",
            "scsi.extcopy.cscd_list_len",
            "scsi.extcopy.seg_desc_list_len",
            "scsi.extcopy.inline_data_len",
            "scsi.cscd_desc_type_code",
            "scsi.extcopy.cscd_code_set",
            "scsi.extcopy.cscd_des_type",
            "scsi.extcopy.cscd_des_len",
            "scsi.designator",
            "scsi.extcopy.disk_block_len",
            "scsi.extcopy.seg_desc_type",
            "scsi.extcopy.seg_desc_src_id",
            "scsi.extcopy.seg_desc_dest_id",
            "scsi.extcopy.seg_desc_num_of_blocks",
            "scsi.extcopy.source_lba",
            "scsi.extcopy.dest_lba",
        ],
    );
    let naa = |n| format!("600140505a43000000000000000000{n:02x}00000000");
    assert_eq!(
        list,
        [format!(
            "0x00000010|108|5|64|28|0|228,228|1,1|3,3|16,16|{},{}|4096,4096|2|0x0000|0x0001|8|0x0000000000000040|0x0000000000000080",
            naa(1),
            naa(2)
        )]
    );
    // READ(16) (SBC-4 5.17) and its 8 KiB of Data-In, then GOOD.
    let read = fields(
        &f,
        "iscsi.opcode == 0x01 && scsi_sbc.opcode == 0x88",
        &[
            "scsi.lun",
            "scsi_sbc.rdwr16.lba",
            "scsi_sbc.rdwr12.xferlen",
            "iscsi.scsicommand.expecteddatatransferlength",
        ],
    );
    assert_eq!(read, ["0x0001,0x0001|0000000000000040|2|8192"]);
    let data_in = fields(
        &f,
        "iscsi.opcode == 0x25",
        &[
            "iscsi.initiatortasktag",
            "iscsi.datasn",
            "iscsi.bufferOffset",
            "iscsi.datasegmentlength",
            "iscsi.scsidata.F",
        ],
    );
    assert_eq!(data_in, ["0x00000011|0|0|8192|1", "0x00000013|0|0|4096|1"]);
    // The failed WRITE(16): CHECK CONDITION with fixed-format sense
    // ILLEGAL REQUEST / UNALIGNED WRITE COMMAND (21h/04h).
    let sense = fields(
        &f,
        "scsi.sns.key",
        &[
            "iscsi.initiatortasktag",
            "iscsi.scsiresponse.status",
            "iscsi.scsiresponse.senselength",
            "scsi.sns.errtype",
            "scsi.sns.key",
            "scsi.sns.asc",
            "scsi.sns.ascq",
        ],
    );
    assert_eq!(sense, ["0x00000012|0x02|18|0x70|0x05|0x21|0x04"]);
    // ... answering the WRITE(16) (SBC-4 5.41): its CDB and its immediate
    // data both name the opcode.
    let req = fields(&f, "scsi.sns.key", &["iscsi.request_frame"]);
    let op = fields(
        &f,
        &format!("frame.number == {}", req[0]),
        &["scsi_sbc.opcode"],
    );
    assert_eq!(op, ["0x8a,0x8a"]);
    // READ(32): the CDB's last 16 bytes travel in the Extended CDB AHS
    // and Wireshark puts the CDB back together (7Fh, SA 0009h).
    let r32 = fields(
        &f,
        "iscsi.ahs.type == 1",
        &[
            "iscsi.totalahslength",
            "iscsi.ahs.length",
            "iscsi.ahs.extended_cdb",
            "scsi_sbc.opcode",
            "scsi.spc.addcdblen",
            "scsi.spc.svcaction",
        ],
    );
    assert_eq!(
        r32,
        ["5|17|00000044000000000000000000000001|0x7f|24|0x0009"]
    );
    // The 200 KiB write: 64 KiB immediate, three unsolicited Data-Out
    // PDUs (DataSN 0-2, F on the last), each PDU across TCP segments.
    let out = fields(
        &f,
        "iscsi.opcode == 0x05 && iscsi.initiatortasktag == 0x16",
        &[
            "iscsi.datasn",
            "iscsi.bufferOffset",
            "iscsi.datasegmentlength",
            "iscsi.scsidata.F",
        ],
    );
    assert_eq!(
        out,
        ["0|65536|65536|0", "1|131072|65536|0", "2|196608|8192|1"]
    );
}
