//! virtio-scsi wire format (virtio 1.2, 5.6 SCSI Host Device): the
//! request and response layouts of the request, control and event queues,
//! decoded from and encoded to plain byte arrays.
//!
//! Nothing here touches guest memory: the queue code reads the
//! device-readable bytes of a descriptor chain into these arrays and writes
//! the encoded responses back through vm-memory's checked accessors. All
//! multi-byte fields are little-endian (5.6.6: the device uses the modern,
//! VIRTIO_F_VERSION_1 layout).

use virtio_bindings::virtio_scsi;

/// CDB area size of a request (5.6.4 `cdb_size`). QEMU's vhost-user-scsi
/// fixes it at the default and refuses a driver that writes another value
/// to the configuration space.
pub const CDB_SIZE: usize = virtio_scsi::VIRTIO_SCSI_CDB_DEFAULT_SIZE as usize;

/// Sense area size of a response (5.6.4 `sense_size`), fixed like
/// [`CDB_SIZE`].
pub const SENSE_SIZE: usize = virtio_scsi::VIRTIO_SCSI_SENSE_DEFAULT_SIZE as usize;

/// Bytes of the device-readable header of a command request
/// (5.6.6.1 `struct virtio_scsi_req_cmd`): `u8 lun[8]`, le64 id, u8 task_attr,
/// u8 prio, u8 crn, `u8 cdb[cdb_size]`.
pub const CMD_REQ_SIZE: usize = 8 + 8 + 1 + 1 + 1 + CDB_SIZE;

/// Bytes of the device-writable header of a command response
/// (5.6.6.1): le32 sense_len, le32 residual, le16 status_qualifier,
/// u8 status, u8 response, `u8 sense[sense_size]`.
pub const CMD_RESP_SIZE: usize = 4 + 4 + 2 + 1 + 1 + SENSE_SIZE;

/// Bytes of `le32 type`, the first field of every control queue request
/// (5.6.6.2).
pub const CTRL_TYPE_SIZE: usize = 4;

/// Bytes of the device-readable part of a task management request
/// (5.6.6.2 `struct virtio_scsi_ctrl_tmf`): le32 type, le32 subtype,
/// `u8 lun[8]`, le64 id.
pub const TMF_REQ_SIZE: usize = 4 + 4 + 8 + 8;

/// Bytes of the device-writable part of a task management request: u8
/// response.
pub const TMF_RESP_SIZE: usize = 1;

/// Bytes of the device-readable part of an asynchronous notification
/// query or subscription (5.6.6.2 `struct virtio_scsi_ctrl_an`): le32 type,
/// `u8 lun[8]`, le32 event_requested.
pub const AN_REQ_SIZE: usize = 4 + 8 + 4;

/// Bytes of the device-writable part of an asynchronous notification
/// request: le32 event_actual, u8 response.
pub const AN_RESP_SIZE: usize = 4 + 1;

/// The `response` byte of a command or control request (5.6.6.1, 5.6.6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Response {
    /// VIRTIO_SCSI_S_OK: the command reached the logical unit; `status`
    /// and `sense` say how it went. For task management functions this
    /// value reads VIRTIO_SCSI_S_FUNCTION_COMPLETE.
    Ok = virtio_scsi::VIRTIO_SCSI_S_OK as u8,
    /// VIRTIO_SCSI_S_OVERRUN: the device had more data-in bytes than the
    /// driver's buffer could hold.
    Overrun = virtio_scsi::VIRTIO_SCSI_S_OVERRUN as u8,
    /// VIRTIO_SCSI_S_BAD_TARGET: the LUN field does not address a target of
    /// this device.
    BadTarget = virtio_scsi::VIRTIO_SCSI_S_BAD_TARGET as u8,
    /// VIRTIO_SCSI_S_FAILURE: any other error, here a malformed request.
    Failure = virtio_scsi::VIRTIO_SCSI_S_FAILURE as u8,
    /// VIRTIO_SCSI_S_FUNCTION_REJECTED: the task management function is not
    /// supported.
    FunctionRejected = virtio_scsi::VIRTIO_SCSI_S_FUNCTION_REJECTED as u8,
    /// VIRTIO_SCSI_S_INCORRECT_LUN: the task management function addressed
    /// a logical unit that does not exist.
    IncorrectLun = virtio_scsi::VIRTIO_SCSI_S_INCORRECT_LUN as u8,
}

/// What an 8-byte virtio-scsi LUN field addresses (5.6.6.1: "The first
/// byte set to 1, the second byte set to target, the third and fourth bytes
/// representing a single level LUN structure, followed by four zero
/// bytes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LunAddress {
    /// Target `target`, logical unit `lun` (0..16384).
    Lun { target: u8, lun: u16 },
    /// Not a single-level LUN this transport understands: byte 0 is not 1,
    /// the address method of bytes 2-3 is neither peripheral (00b) nor flat
    /// space (01b), or bytes 4-7 are not zero. This includes the REPORT
    /// LUNS well-known logical unit (C101h, extended addressing).
    Malformed,
}

impl LunAddress {
    /// Decode the LUN field of a request.
    ///
    /// Bytes 2-3 are a SAM-5 single-level LUN: with the peripheral device
    /// addressing method (00b, byte 2 zero) byte 3 is the LUN; with the flat
    /// space method (01b) the low 14 bits are. Linux uses flat space for
    /// every LUN (`0x4000 | lun`), QEMU accepts both.
    pub fn decode(lun: &[u8; 8]) -> Self {
        if lun[0] != 1 || lun[4..].iter().any(|&b| b != 0) {
            return LunAddress::Malformed;
        }
        let single = u16::from_be_bytes([lun[2], lun[3]]);
        match single >> 14 {
            0b00 if lun[2] == 0 => LunAddress::Lun {
                target: lun[1],
                lun: single,
            },
            0b01 => LunAddress::Lun {
                target: lun[1],
                lun: single & 0x3fff,
            },
            _ => LunAddress::Malformed,
        }
    }

    /// Encode target 0, `lun` with flat space addressing, as Linux does.
    pub fn encode_flat(target: u8, lun: u16) -> [u8; 8] {
        let single = 0x4000 | (lun & 0x3fff);
        let [hi, lo] = single.to_be_bytes();
        [1, target, hi, lo, 0, 0, 0, 0]
    }
}

/// The device-readable header of a command request (5.6.6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdReq {
    pub lun: [u8; 8],
    /// Command identifier (`id`, the tag).
    pub id: u64,
    /// Task attribute (VIRTIO_SCSI_S_SIMPLE, ORDERED, HEAD, ACA).
    pub task_attr: u8,
    pub prio: u8,
    /// Command reference number.
    pub crn: u8,
    pub cdb: [u8; CDB_SIZE],
}

/// The `N` bytes of `b` at `at` (inside `b`: the callers' fixed layouts).
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut f = [0u8; N];
    f.copy_from_slice(&b[at..at + N]);
    f
}

impl CmdReq {
    /// Decode the header bytes.
    pub fn decode(b: &[u8; CMD_REQ_SIZE]) -> Self {
        CmdReq {
            lun: field(b, 0),
            id: u64::from_le_bytes(field(b, 8)),
            task_attr: b[16],
            prio: b[17],
            crn: b[18],
            cdb: field(b, 19),
        }
    }
}

/// The device-writable header of a command response (5.6.6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdResp {
    /// Sense bytes; only the first [`SENSE_SIZE`] are sent and
    /// `sense_len` says how many.
    pub sense: Vec<u8>,
    /// "data_length - number_of_transferred_bytes" of the data buffer.
    pub residual: u32,
    /// Always 0: no transport reports a status qualifier here.
    pub status_qualifier: u16,
    /// SCSI status byte (SAM-5 5.3.1).
    pub status: u8,
    pub response: Response,
}

impl CmdResp {
    /// A response without SCSI status, for a request that never reached a
    /// logical unit.
    pub fn transport_error(response: Response, residual: u32) -> Self {
        CmdResp {
            sense: Vec::new(),
            residual,
            status_qualifier: 0,
            status: 0,
            response,
        }
    }

    /// Encode as the bytes the driver reads.
    pub fn encode(&self) -> [u8; CMD_RESP_SIZE] {
        let mut b = [0u8; CMD_RESP_SIZE];
        let n = self.sense.len().min(SENSE_SIZE);
        // n <= SENSE_SIZE = 96 fits in u32.
        let sense_len = u32::try_from(n).unwrap_or(0);
        b[0..4].copy_from_slice(&sense_len.to_le_bytes());
        b[4..8].copy_from_slice(&self.residual.to_le_bytes());
        b[8..10].copy_from_slice(&self.status_qualifier.to_le_bytes());
        b[10] = self.status;
        b[11] = self.response as u8;
        b[12..12 + n].copy_from_slice(&self.sense[..n]);
        b
    }
}

/// Control queue request types (5.6.6.2 `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrlType {
    /// VIRTIO_SCSI_T_TMF: task management function.
    Tmf,
    /// VIRTIO_SCSI_T_AN_QUERY: which asynchronous events does the device
    /// support.
    AnQuery,
    /// VIRTIO_SCSI_T_AN_SUBSCRIBE: subscribe to asynchronous events.
    AnSubscribe,
    /// Anything else.
    Unknown(u32),
}

impl CtrlType {
    /// Decode the leading `le32 type` of a control request.
    pub fn decode(b: [u8; CTRL_TYPE_SIZE]) -> Self {
        match u32::from_le_bytes(b) {
            virtio_scsi::VIRTIO_SCSI_T_TMF => CtrlType::Tmf,
            virtio_scsi::VIRTIO_SCSI_T_AN_QUERY => CtrlType::AnQuery,
            virtio_scsi::VIRTIO_SCSI_T_AN_SUBSCRIBE => CtrlType::AnSubscribe,
            other => CtrlType::Unknown(other),
        }
    }
}

/// Task management functions (5.6.6.2 `subtype` of VIRTIO_SCSI_T_TMF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmfSubtype {
    AbortTask,
    AbortTaskSet,
    ClearAca,
    ClearTaskSet,
    ITNexusReset,
    LogicalUnitReset,
    QueryTask,
    QueryTaskSet,
    Unknown(u32),
}

impl TmfSubtype {
    fn from_u32(v: u32) -> Self {
        match v {
            virtio_scsi::VIRTIO_SCSI_T_TMF_ABORT_TASK => TmfSubtype::AbortTask,
            virtio_scsi::VIRTIO_SCSI_T_TMF_ABORT_TASK_SET => TmfSubtype::AbortTaskSet,
            virtio_scsi::VIRTIO_SCSI_T_TMF_CLEAR_ACA => TmfSubtype::ClearAca,
            virtio_scsi::VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET => TmfSubtype::ClearTaskSet,
            virtio_scsi::VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET => TmfSubtype::ITNexusReset,
            virtio_scsi::VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET => TmfSubtype::LogicalUnitReset,
            virtio_scsi::VIRTIO_SCSI_T_TMF_QUERY_TASK => TmfSubtype::QueryTask,
            virtio_scsi::VIRTIO_SCSI_T_TMF_QUERY_TASK_SET => TmfSubtype::QueryTaskSet,
            other => TmfSubtype::Unknown(other),
        }
    }
}

/// The device-readable part of a task management request (5.6.6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmfReq {
    pub subtype: TmfSubtype,
    pub lun: [u8; 8],
    /// The command the function applies to (ABORT TASK, QUERY TASK).
    pub id: u64,
}

impl TmfReq {
    /// Decode the request bytes (including the leading `type`).
    pub fn decode(b: &[u8; TMF_REQ_SIZE]) -> Self {
        TmfReq {
            subtype: TmfSubtype::from_u32(u32::from_le_bytes(field(b, 4))),
            lun: field(b, 8),
            id: u64::from_le_bytes(field(b, 16)),
        }
    }
}

/// The device-readable part of an asynchronous notification query or
/// subscription (5.6.6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnReq {
    pub lun: [u8; 8],
    /// Bit mask of the requested event classes.
    pub event_requested: u32,
}

impl AnReq {
    /// Decode the request bytes (including the leading `type`).
    pub fn decode(b: &[u8; AN_REQ_SIZE]) -> Self {
        AnReq {
            lun: field(b, 4),
            event_requested: u32::from_le_bytes(field(b, 12)),
        }
    }
}

/// Encode the device-writable part of an asynchronous notification
/// request: `le32 event_actual; u8 response`.
pub fn encode_an_resp(event_actual: u32, response: Response) -> [u8; AN_RESP_SIZE] {
    let mut b = [0u8; AN_RESP_SIZE];
    b[0..4].copy_from_slice(&event_actual.to_le_bytes());
    b[4] = response as u8;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_spec_layouts() {
        // 5.6.6.1: 8 + 8 + 1 + 1 + 1 + 32 and 4 + 4 + 2 + 1 + 1 + 96.
        assert_eq!(CMD_REQ_SIZE, 51);
        assert_eq!(CMD_RESP_SIZE, 108);
        // 5.6.6.2: the Linux driver's packed structs.
        assert_eq!(TMF_REQ_SIZE, 24);
        assert_eq!(AN_REQ_SIZE, 16);
        assert_eq!(AN_RESP_SIZE, 5);
    }

    #[test]
    fn response_codes_are_the_spec_values() {
        assert_eq!(Response::Ok as u8, 0);
        assert_eq!(Response::Overrun as u8, 1);
        assert_eq!(Response::BadTarget as u8, 3);
        assert_eq!(Response::Failure as u8, 9);
        assert_eq!(Response::FunctionRejected as u8, 11);
        assert_eq!(Response::IncorrectLun as u8, 12);
    }

    #[test]
    fn lun_flat_space_as_linux_sends_it() {
        // Linux virtio_scsi: lun[0] = 1, lun[1] = id, lun[2] = (lun >> 8) | 0x40,
        // lun[3] = lun & 0xff.
        assert_eq!(
            LunAddress::decode(&[1, 0, 0x40, 0x00, 0, 0, 0, 0]),
            LunAddress::Lun { target: 0, lun: 0 }
        );
        assert_eq!(
            LunAddress::decode(&[1, 0, 0x41, 0x02, 0, 0, 0, 0]),
            LunAddress::Lun {
                target: 0,
                lun: 0x102
            }
        );
        assert_eq!(
            LunAddress::decode(&[1, 0, 0x7f, 0xff, 0, 0, 0, 0]),
            LunAddress::Lun {
                target: 0,
                lun: 16383
            }
        );
        assert_eq!(
            LunAddress::decode(&[1, 7, 0x40, 0x03, 0, 0, 0, 0]),
            LunAddress::Lun { target: 7, lun: 3 }
        );
        assert_eq!(
            LunAddress::encode_flat(0, 0x102),
            [1, 0, 0x41, 0x02, 0, 0, 0, 0]
        );
    }

    #[test]
    fn lun_peripheral_addressing() {
        assert_eq!(
            LunAddress::decode(&[1, 0, 0x00, 0x05, 0, 0, 0, 0]),
            LunAddress::Lun { target: 0, lun: 5 }
        );
    }

    #[test]
    fn malformed_luns() {
        for bad in [
            // Byte 0 must be 1.
            [0, 0, 0x40, 0, 0, 0, 0, 0],
            [2, 0, 0x40, 0, 0, 0, 0, 0],
            // REPORT LUNS well-known LU C101h (extended addressing).
            [1, 0, 0xc1, 0x01, 0, 0, 0, 0],
            // Logical unit addressing (10b).
            [1, 0, 0x80, 0x01, 0, 0, 0, 0],
            // Second level present.
            [1, 0, 0x40, 0x00, 0x40, 0x01, 0, 0],
        ] {
            assert_eq!(
                LunAddress::decode(&bad),
                LunAddress::Malformed,
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn cmd_req_decodes_every_field() {
        let mut b = [0u8; CMD_REQ_SIZE];
        b[..8].copy_from_slice(&[1, 0, 0x40, 0x01, 0, 0, 0, 0]);
        b[8..16].copy_from_slice(&[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        b[16] = 1; // ORDERED
        b[17] = 2;
        b[18] = 3;
        b[19] = 0x12; // INQUIRY
        b[23] = 0x24;
        b[50] = 0xee;
        let r = CmdReq::decode(&b);
        assert_eq!(r.lun, [1, 0, 0x40, 0x01, 0, 0, 0, 0]);
        assert_eq!(r.id, 0x1122_3344_5566_7788);
        assert_eq!((r.task_attr, r.prio, r.crn), (1, 2, 3));
        assert_eq!(r.cdb[0], 0x12);
        assert_eq!(r.cdb[4], 0x24);
        assert_eq!(r.cdb[31], 0xee);
    }

    #[test]
    fn cmd_resp_layout() {
        let r = CmdResp {
            sense: vec![0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0x00],
            residual: 0x0102_0304,
            status_qualifier: 0,
            status: 0x02,
            response: Response::Ok,
        };
        let b = r.encode();
        assert_eq!(&b[0..4], &[14, 0, 0, 0]); // sense_len
        assert_eq!(&b[4..8], &[0x04, 0x03, 0x02, 0x01]); // residual
        assert_eq!(&b[8..10], &[0, 0]); // status_qualifier
        assert_eq!(b[10], 0x02); // CHECK CONDITION
        assert_eq!(b[11], 0); // VIRTIO_SCSI_S_OK
        assert_eq!(&b[12..26], &r.sense[..]);
        assert!(b[26..].iter().all(|&x| x == 0));
    }

    #[test]
    fn cmd_resp_truncates_long_sense() {
        let r = CmdResp {
            sense: vec![0xab; 200],
            ..CmdResp::transport_error(Response::Ok, 0)
        };
        let b = r.encode();
        assert_eq!(&b[0..4], &[96, 0, 0, 0]);
        assert!(b[12..].iter().all(|&x| x == 0xab));
    }

    #[test]
    fn tmf_and_an_requests() {
        let mut t = [0u8; TMF_REQ_SIZE];
        t[4] = 5; // LOGICAL UNIT RESET
        t[8..16].copy_from_slice(&[1, 0, 0x40, 0, 0, 0, 0, 0]);
        t[16] = 0x2a;
        let r = TmfReq::decode(&t);
        assert_eq!(r.subtype, TmfSubtype::LogicalUnitReset);
        assert_eq!(r.id, 0x2a);
        assert_eq!(
            CtrlType::decode([0, 0, 0, 0]),
            CtrlType::Tmf,
            "VIRTIO_SCSI_T_TMF is 0"
        );
        assert_eq!(CtrlType::decode([2, 0, 0, 0]), CtrlType::AnSubscribe);
        assert_eq!(CtrlType::decode([9, 0, 0, 0]), CtrlType::Unknown(9));

        let mut a = [0u8; AN_REQ_SIZE];
        a[0] = 1;
        a[4..12].copy_from_slice(&[1, 0, 0x40, 0, 0, 0, 0, 0]);
        a[12] = 0x10; // VIRTIO_SCSI_EVT_ASYNC_MEDIA_CHANGE
        let r = AnReq::decode(&a);
        assert_eq!(r.event_requested, 0x10);
        assert_eq!(encode_an_resp(0, Response::Ok), [0, 0, 0, 0, 0]);
    }
}
