//! iSCSI PDUs (RFC 7143) that carry one recorded SCSI command: a Login
//! at a session's first command, then SCSI Command (11.3), unsolicited or
//! R2T-solicited SCSI Data-Out (11.7, 11.8), SCSI Data-In (11.7) and SCSI
//! Response (11.4) with their sequence numbers.

use std::io;

use super::{Direction, ScsiExchange};

/// Basic Header Segment length (11.2.1).
pub const BHS_LEN: usize = 48;
/// Opcodes (11.2.1.2), initiator and target.
pub const OP_SCSI_CMD: u8 = 0x01;
pub const OP_LOGIN_REQ: u8 = 0x03;
pub const OP_DATA_OUT: u8 = 0x05;
pub const OP_SCSI_RESP: u8 = 0x21;
pub const OP_LOGIN_RESP: u8 = 0x23;
pub const OP_DATA_IN: u8 = 0x25;
pub const OP_R2T: u8 = 0x31;
/// The I (immediate delivery) bit of byte 0 (11.2.1.1).
const IMMEDIATE: u8 = 0x40;
/// The F (final) bit of byte 1.
pub const F: u8 = 0x80;
/// SCSI Command R and W bits (11.3.1.1, 11.3.1.2); ATTR 1 = Simple.
const CMD_R: u8 = 0x40;
const CMD_W: u8 = 0x20;
const ATTR_SIMPLE: u8 = 0x01;
/// AHS types (11.2.2.2): Extended CDB, Bidirectional Read Data Length.
const AHS_EXTENDED_CDB: u8 = 1;
const AHS_BIDI_READ_LEN: u8 = 2;
/// "No Target Transfer Tag" (11.7.4).
const NO_TTT: u32 = 0xFFFF_FFFF;
/// What the Login negotiates (13.12, 13.13, 13.14): each side accepts up
/// to 64 KiB per data segment (under Wireshark's default 256 KiB
/// "bogus PDU" threshold), the largest bursts the keys allow.
pub const MAX_RECV_DATA_SEGMENT: usize = 65536;
pub const BURST: usize = 16_776_192;
/// The session keys both sides state (RFC 7143 13): no digests, so
/// Wireshark knows the PDUs carry none; unsolicited and immediate data.
const LOGIN_KEYS: &[&str] = &[
    "HeaderDigest=None",
    "DataDigest=None",
    "InitialR2T=No",
    "ImmediateData=Yes",
    "MaxRecvDataSegmentLength=65536",
    "FirstBurstLength=16776192",
    "MaxBurstLength=16776192",
];
/// ExpCmdSN .. MaxCmdSN window the target grants (11.2.2.1 / 4.2.2.1).
const CMD_WINDOW: u32 = 128;

/// A BHS with `opcode` (with the I bit or-ed in by the caller), `flags`, the AHS
/// and data segment lengths, `lun`, and ITT (11.2.1).
fn bhs(opcode: u8, flags: u8, ahs_len: usize, data_len: usize, lun: [u8; 8], itt: u32) -> Vec<u8> {
    let mut b = vec![0u8; BHS_LEN];
    b[0] = opcode;
    b[1] = flags;
    // TotalAHSLength is in 4-byte words, DataSegmentLength 24 bits; the
    // callers keep both in range (AHS under 1 KiB, segments of 64 KiB).
    b[4] = (ahs_len / 4) as u8;
    b[5..8].copy_from_slice(&(data_len as u32).to_be_bytes()[1..]);
    b[8..16].copy_from_slice(&lun);
    b[16..20].copy_from_slice(&itt.to_be_bytes());
    b
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Appends `data` padded to a 4-byte boundary (11.2.3).
fn with_data(mut pdu: Vec<u8>, data: &[u8]) -> Vec<u8> {
    pdu.extend_from_slice(data);
    pdu.resize(pdu.len().next_multiple_of(4), 0);
    pdu
}

/// The 8-byte LUN field (SAM-5 4.7): LU numbers under 256 in peripheral
/// device addressing, under 16384 in flat space addressing (byte 0 =
/// 40h | high bits); anything larger is taken as an already encoded
/// 8-byte LUN.
pub fn lun_field(lun: u64) -> [u8; 8] {
    match lun {
        0..=0xFF => [0, lun as u8, 0, 0, 0, 0, 0, 0],
        0x100..=0x3FFF => [0x40 | (lun >> 8) as u8, lun as u8, 0, 0, 0, 0, 0, 0],
        _ => lun.to_be_bytes(),
    }
}

/// The SCSI Command PDU (11.3): CDB bytes past 16 go into an Extended CDB
/// AHS (11.2.2.3), a bidirectional command gets the Bidirectional Read
/// Data Length AHS (11.2.2.4); `immediate` is its data segment and
/// `final_` says no unsolicited Data-Out follows.
pub fn scsi_command(
    x: &ScsiExchange<'_>,
    cmd_sn: u32,
    exp_stat_sn: u32,
    immediate: &[u8],
    final_: bool,
) -> Vec<u8> {
    let mut ahs = Vec::new();
    if x.cdb.len() > 16 {
        // AHSLength counts the reserved byte and the extra CDB bytes.
        let extra = &x.cdb[16..];
        ahs.extend_from_slice(&((extra.len() + 1) as u16).to_be_bytes());
        ahs.extend_from_slice(&[AHS_EXTENDED_CDB, 0]);
        ahs.extend_from_slice(extra);
        ahs.resize(ahs.len().next_multiple_of(4), 0);
    }
    if !x.data_out.is_empty() && !x.data_in.is_empty() {
        ahs.extend_from_slice(&[0, 5, AHS_BIDI_READ_LEN, 0]);
        ahs.extend_from_slice(&(x.data_in.len() as u32).to_be_bytes());
    }
    let mut flags = ATTR_SIMPLE;
    if final_ {
        flags |= F;
    }
    if !x.data_in.is_empty() {
        flags |= CMD_R;
    }
    if !x.data_out.is_empty() {
        flags |= CMD_W;
    }
    let mut b = bhs(
        OP_SCSI_CMD,
        flags,
        ahs.len(),
        immediate.len(),
        lun_field(x.lun),
        x.tag,
    );
    // Expected Data Transfer Length: the write data of a bidirectional
    // command, else whichever way data flows (11.3.4).
    let edtl = if x.data_out.is_empty() {
        x.data_in.len()
    } else {
        x.data_out.len()
    };
    put32(&mut b, 20, edtl as u32);
    put32(&mut b, 24, cmd_sn);
    put32(&mut b, 28, exp_stat_sn);
    let n = x.cdb.len().min(16);
    b[32..32 + n].copy_from_slice(&x.cdb[..n]);
    b.extend_from_slice(&ahs);
    with_data(b, immediate)
}

/// Sequence numbers the target states in its PDUs (11.2.2.1).
#[derive(Clone, Copy, Debug)]
pub struct TargetSn {
    pub stat_sn: u32,
    pub exp_cmd_sn: u32,
}

impl TargetSn {
    fn put(&self, b: &mut [u8], stat_sn: bool) {
        if stat_sn {
            put32(b, 24, self.stat_sn);
        }
        put32(b, 28, self.exp_cmd_sn);
        put32(b, 32, self.exp_cmd_sn.wrapping_add(CMD_WINDOW));
    }
}

/// Where one data PDU sits in its sequence (11.7.4 - 11.7.6).
#[derive(Clone, Copy, Debug)]
pub struct DataPos {
    pub ttt: u32,
    pub data_sn: u32,
    pub offset: u32,
    pub final_: bool,
}

/// A SCSI Data-Out PDU (11.7): `pos.ttt` is the R2T's tag or FFFFFFFFh
/// for unsolicited data.
pub fn data_out(lun: u64, itt: u32, exp_stat_sn: u32, pos: DataPos, data: &[u8]) -> Vec<u8> {
    let flags = if pos.final_ { F } else { 0 };
    let mut b = bhs(OP_DATA_OUT, flags, 0, data.len(), lun_field(lun), itt);
    put32(&mut b, 20, pos.ttt);
    put32(&mut b, 28, exp_stat_sn);
    put32(&mut b, 36, pos.data_sn);
    put32(&mut b, 40, pos.offset);
    with_data(b, data)
}

/// A SCSI Data-In PDU (11.7) without phase collapse (S = 0: the status
/// comes in the SCSI Response), so StatSN is reserved.
pub fn data_in(lun: u64, itt: u32, sn: TargetSn, pos: DataPos, data: &[u8]) -> Vec<u8> {
    let flags = if pos.final_ { F } else { 0 };
    let mut b = bhs(OP_DATA_IN, flags, 0, data.len(), lun_field(lun), itt);
    put32(&mut b, 20, NO_TTT);
    sn.put(&mut b, false);
    put32(&mut b, 36, pos.data_sn);
    put32(&mut b, 40, pos.offset);
    with_data(b, data)
}

/// An R2T (11.8) asking for `len` bytes at `offset`.
pub fn r2t(lun: u64, itt: u32, sn: TargetSn, pos: DataPos, len: u32) -> Vec<u8> {
    let mut b = bhs(OP_R2T, F, 0, 0, lun_field(lun), itt);
    put32(&mut b, 20, pos.ttt);
    sn.put(&mut b, true);
    put32(&mut b, 36, pos.data_sn);
    put32(&mut b, 40, pos.offset);
    put32(&mut b, 44, len);
    b
}

/// The SCSI Response (11.4): Response 00h (Command Completed at Target),
/// the SCSI status, and the sense data as the data segment, preceded by
/// its 2-byte SenseLength (11.4.7). `exp_data_sn` counts the R2T and
/// Data-In PDUs sent for the command (11.4).
pub fn scsi_response(x: &ScsiExchange<'_>, sn: TargetSn, exp_data_sn: u32) -> Vec<u8> {
    let mut seg = Vec::new();
    if !x.sense.is_empty() {
        seg.extend_from_slice(&(x.sense.len() as u16).to_be_bytes());
        seg.extend_from_slice(x.sense);
    }
    let mut b = bhs(OP_SCSI_RESP, F, 0, seg.len(), [0; 8], x.tag);
    b[2] = 0x00;
    b[3] = x.status;
    sn.put(&mut b, true);
    put32(&mut b, 36, exp_data_sn);
    with_data(b, &seg)
}

/// The text of a Login PDU: `key=value` pairs, each NUL-terminated (6.1).
fn login_text(first: &[&str]) -> Vec<u8> {
    let mut text = Vec::new();
    for kv in first.iter().chain(LOGIN_KEYS) {
        text.extend_from_slice(kv.as_bytes());
        text.push(0);
    }
    text
}

/// ISID (11.12.5): type 10b ("Random"), `session` as the qualifier, so
/// each session has its own.
fn isid(session: u32) -> [u8; 6] {
    let q = session.to_be_bytes();
    [0x80, 0, q[0], q[1], q[2], q[3]]
}

/// Login Request (11.12) going straight from operational negotiation to
/// full feature phase (T = 1, CSG = 1, NSG = 3).
pub fn login_request(session: u32, itt: u32, cmd_sn: u32) -> Vec<u8> {
    let text = login_text(&[
        "InitiatorName=iqn.2026-12.invalid.zonecopy:initiator",
        "TargetName=iqn.2026-12.invalid.zonecopy:target",
        "SessionType=Normal",
    ]);
    let mut b = bhs(OP_LOGIN_REQ | IMMEDIATE, 0x87, 0, text.len(), [0; 8], itt);
    b[8..14].copy_from_slice(&isid(session));
    put32(&mut b, 24, cmd_sn);
    with_data(b, &text)
}

/// Login Response (11.13): success, a TSIH, the same keys.
pub fn login_response(session: u32, itt: u32, sn: TargetSn) -> Vec<u8> {
    let text = login_text(&["TargetPortalGroupTag=1"]);
    let mut b = bhs(OP_LOGIN_RESP, 0x87, 0, text.len(), [0; 8], itt);
    b[8..14].copy_from_slice(&isid(session));
    // TSIH: any non-zero value names the new session.
    b[14..16].copy_from_slice(&(1 + (session % 0xFFFE) as u16).to_be_bytes());
    sn.put(&mut b, true);
    with_data(b, &text)
}

/// One iSCSI session's sequence numbers.
#[derive(Clone, Debug, Default)]
pub struct Session {
    logged_in: bool,
    /// CmdSN of the next command (4.2.2.1).
    cmd_sn: u32,
    /// StatSN of the next status (4.2.2.2).
    stat_sn: u32,
}

/// Sends one PDU in a direction at a time.
pub type Emit<'e> = dyn FnMut(Direction, u64, &[u8]) -> io::Result<()> + 'e;

impl Session {
    fn target_sn(&self) -> TargetSn {
        TargetSn {
            stat_sn: self.stat_sn,
            exp_cmd_sn: self.cmd_sn,
        }
    }

    /// The Login exchange, once per session.
    fn login(&mut self, session: u32, ts: u64, emit: &mut Emit<'_>) -> io::Result<()> {
        if self.logged_in {
            return Ok(());
        }
        self.logged_in = true;
        // A Login is immediate: it does not advance CmdSN (4.2.2.1).
        emit(
            Direction::HostToController,
            ts,
            &login_request(session, 0, self.cmd_sn),
        )?;
        let sn = self.target_sn();
        self.stat_sn = self.stat_sn.wrapping_add(1);
        emit(
            Direction::ControllerToHost,
            ts,
            &login_response(session, 0, sn),
        )
    }

    /// All PDUs of `x`, with a Login first if this is the session's
    /// first command.
    pub fn exchange(
        &mut self,
        session: u32,
        x: &ScsiExchange<'_>,
        emit: &mut Emit<'_>,
    ) -> io::Result<()> {
        self.login(session, x.start_ns, emit)?;
        let cmd_sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        let exp_stat_sn = self.stat_sn;
        let out = x.data_out;
        let first_burst = out.len().min(BURST);
        let imm = first_burst.min(MAX_RECV_DATA_SEGMENT);
        let unsolicited = &out[imm..first_burst];
        emit(
            Direction::HostToController,
            x.start_ns,
            &scsi_command(x, cmd_sn, exp_stat_sn, &out[..imm], unsolicited.is_empty()),
        )?;
        let send_out =
            |emit: &mut Emit<'_>, ttt: u32, base: usize, burst: &[u8]| -> io::Result<()> {
                let n = burst.len().div_ceil(MAX_RECV_DATA_SEGMENT);
                for (i, chunk) in burst.chunks(MAX_RECV_DATA_SEGMENT).enumerate() {
                    let pos = DataPos {
                        ttt,
                        data_sn: i as u32,
                        offset: (base + i * MAX_RECV_DATA_SEGMENT) as u32,
                        final_: i + 1 == n,
                    };
                    emit(
                        Direction::HostToController,
                        x.start_ns,
                        &data_out(x.lun, x.tag, exp_stat_sn, pos, chunk),
                    )?;
                }
                Ok(())
            };
        send_out(emit, NO_TTT, imm, unsolicited)?;
        // The rest is solicited by R2Ts of up to MaxBurstLength (11.8).
        let mut r2t_sn = 0u32;
        for (i, burst) in out[first_burst..].chunks(BURST).enumerate() {
            let offset = first_burst + i * BURST;
            let ttt = r2t_sn + 1;
            let pos = DataPos {
                ttt,
                data_sn: r2t_sn,
                offset: offset as u32,
                final_: true,
            };
            emit(
                Direction::ControllerToHost,
                x.start_ns,
                &r2t(x.lun, x.tag, self.target_sn(), pos, burst.len() as u32),
            )?;
            send_out(emit, ttt, offset, burst)?;
            r2t_sn += 1;
        }
        self.finish(x, r2t_sn, emit)
    }

    /// Data-In PDUs and the SCSI Response of `x`.
    fn finish(&mut self, x: &ScsiExchange<'_>, r2ts: u32, emit: &mut Emit<'_>) -> io::Result<()> {
        // DataSN counts R2Ts and Data-In PDUs of a command together (11.7.5).
        let mut data_sn = r2ts;
        let n = x.data_in.len().div_ceil(MAX_RECV_DATA_SEGMENT);
        for (i, chunk) in x.data_in.chunks(MAX_RECV_DATA_SEGMENT).enumerate() {
            let pos = DataPos {
                ttt: NO_TTT,
                data_sn,
                offset: (i * MAX_RECV_DATA_SEGMENT) as u32,
                final_: i + 1 == n,
            };
            emit(
                Direction::ControllerToHost,
                x.end_ns,
                &data_in(x.lun, x.tag, self.target_sn(), pos, chunk),
            )?;
            data_sn += 1;
        }
        let sn = self.target_sn();
        self.stat_sn = self.stat_sn.wrapping_add(1);
        emit(
            Direction::ControllerToHost,
            x.end_ns,
            &scsi_response(x, sn, data_sn),
        )
    }
}
