//! The third-party copy CDBs, all 16 bytes: THIRD-PARTY COPY OUT (83h:
//! EXTENDED COPY (LID1) 00h and (LID4) 01h, POPULATE TOKEN 10h, WRITE USING
//! TOKEN 11h, COPY OPERATION ABORT 1Ch) and THIRD-PARTY COPY IN (84h:
//! RECEIVE COPY STATUS (LID1) 00h, RECEIVE COPY DATA (LID1) 01h, RECEIVE
//! COPY OPERATING PARAMETERS 03h, RECEIVE COPY FAILURE DETAILS (LID1) 04h,
//! RECEIVE COPY STATUS (LID4) 05h, RECEIVE ROD TOKEN INFORMATION 07h,
//! REPORT ALL ROD TOKENS 08h). SPC-5 and SBC-4 lay them out alike:
//!
//! | CDB | LIST IDENTIFIER | length field (bytes 10-13) |
//! |---|---|---|
//! | 83h/00h, 01h | in the parameter list | PARAMETER LIST LENGTH |
//! | 83h/10h, 11h | bytes 6-9 | PARAMETER LIST LENGTH |
//! | 83h/1Ch | bytes 2-5 | none (reserved) |
//! | 84h/00h, 01h, 04h | byte 2 | ALLOCATION LENGTH |
//! | 84h/05h, 07h | bytes 2-5 | ALLOCATION LENGTH |
//! | 84h/03h, 08h | none | ALLOCATION LENGTH |
//!
//! GROUP NUMBER (byte 14 of POPULATE TOKEN / WRITE USING TOKEN) is not in
//! the usage bitmap: a non-zero group number is refused, as READ(16) does.

use crate::scsi::cdb::{prefix, service_action, Cdb, DecodeError};

/// Where a CDB carries its LIST IDENTIFIER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListIdField {
    None,
    Byte2,
    Bytes2To5,
    Bytes6To9,
}

const fn list_id_field(op: u8, sa: u8) -> ListIdField {
    match (op, sa) {
        (0x83, 0x10 | 0x11) => ListIdField::Bytes6To9,
        (0x83, 0x1c) | (0x84, 0x05 | 0x07) => ListIdField::Bytes2To5,
        (0x84, 0x00 | 0x01 | 0x04) => ListIdField::Byte2,
        _ => ListIdField::None,
    }
}

const fn has_length(op: u8, sa: u8) -> bool {
    !(op == 0x83 && sa == 0x1c)
}

const F: u8 = 0xff;

const fn usage(op: u8, sa: u8) -> &'static [u8] {
    match (list_id_field(op, sa), has_length(op, sa)) {
        (ListIdField::None, _) if op == 0x83 => {
            &[0x83, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0]
        }
        (ListIdField::None, _) => &[0x84, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0],
        (ListIdField::Bytes6To9, _) => &[0x83, 0x1f, 0, 0, 0, 0, F, F, F, F, F, F, F, F, 0, 0],
        (ListIdField::Bytes2To5, false) => &[0x83, 0x1f, F, F, F, F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        (ListIdField::Bytes2To5, true) => &[0x84, 0x1f, F, F, F, F, 0, 0, 0, 0, F, F, F, F, 0, 0],
        (ListIdField::Byte2, _) => &[0x84, 0x1f, F, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0],
    }
}

/// One third-party copy CDB, operation code `OP`, service action `SA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tpc<const OP: u8, const SA: u8> {
    /// LIST IDENTIFIER from the CDB (0 where the CDB has none).
    pub list_id: u32,
    /// PARAMETER LIST LENGTH (83h) or ALLOCATION LENGTH (84h); 0 for COPY
    /// OPERATION ABORT.
    pub len: u32,
}

impl<const OP: u8, const SA: u8> Tpc<OP, SA> {
    /// CDB byte of the length field, for field pointers.
    pub const LEN_FIELD: u16 = 10;
    /// CDB byte of the LIST IDENTIFIER field, for field pointers.
    pub const LIST_ID_FIELD: u16 = match list_id_field(OP, SA) {
        ListIdField::Bytes6To9 => 6,
        _ => 2,
    };
}

impl<const OP: u8, const SA: u8> Cdb for Tpc<OP, SA> {
    const OPCODE: u8 = OP;
    const SERVICE_ACTION: Option<u8> = Some(SA);
    const USAGE: &'static [u8] = usage(OP, SA);

    fn decode(cdb: &[u8]) -> Result<Self, DecodeError> {
        let b = prefix::<16>(cdb, Self::USAGE)?;
        service_action(b[1], SA)?;
        let list_id = match list_id_field(OP, SA) {
            ListIdField::None => 0,
            ListIdField::Byte2 => u32::from(b[2]),
            ListIdField::Bytes2To5 => u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
            ListIdField::Bytes6To9 => u32::from_be_bytes([b[6], b[7], b[8], b[9]]),
        };
        let len = if has_length(OP, SA) {
            u32::from_be_bytes([b[10], b[11], b[12], b[13]])
        } else {
            0
        };
        Ok(Tpc { list_id, len })
    }

    fn encode(&self) -> Vec<u8> {
        let mut c = vec![0u8; 16];
        c[0] = OP;
        c[1] = SA;
        let id = self.list_id.to_be_bytes();
        match list_id_field(OP, SA) {
            ListIdField::None => {}
            ListIdField::Byte2 => c[2] = self.list_id as u8,
            ListIdField::Bytes2To5 => c[2..6].copy_from_slice(&id),
            ListIdField::Bytes6To9 => c[6..10].copy_from_slice(&id),
        }
        if has_length(OP, SA) {
            c[10..14].copy_from_slice(&self.len.to_be_bytes());
        }
        c
    }
}

/// EXTENDED COPY (LID1), SPC-5.
pub type ExtendedCopyLid1 = Tpc<0x83, 0x00>;
/// EXTENDED COPY (LID4), SPC-5.
pub type ExtendedCopyLid4 = Tpc<0x83, 0x01>;
/// POPULATE TOKEN, SBC-4.
pub type PopulateToken = Tpc<0x83, 0x10>;
/// WRITE USING TOKEN, SBC-4.
pub type WriteUsingToken = Tpc<0x83, 0x11>;
/// COPY OPERATION ABORT, SPC-5.
pub type CopyOperationAbort = Tpc<0x83, 0x1c>;
/// RECEIVE COPY STATUS (LID1), SPC-5.
pub type ReceiveCopyStatusLid1 = Tpc<0x84, 0x00>;
/// RECEIVE COPY DATA (LID1), SPC-5.
pub type ReceiveCopyDataLid1 = Tpc<0x84, 0x01>;
/// RECEIVE COPY OPERATING PARAMETERS, SPC-5.
pub type ReceiveCopyOperatingParameters = Tpc<0x84, 0x03>;
/// RECEIVE COPY FAILURE DETAILS (LID1), SPC-5.
pub type ReceiveCopyFailureDetails = Tpc<0x84, 0x04>;
/// RECEIVE COPY STATUS (LID4), SPC-5.
pub type ReceiveCopyStatusLid4 = Tpc<0x84, 0x05>;
/// RECEIVE ROD TOKEN INFORMATION, SPC-5.
pub type ReceiveRodTokenInformation = Tpc<0x84, 0x07>;
/// REPORT ALL ROD TOKENS, SPC-5.
pub type ReportAllRodTokens = Tpc<0x84, 0x08>;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::scsi::cdb::invalid;

    #[test]
    fn literals() {
        // POPULATE TOKEN, LIST IDENTIFIER 01020304h, PARAMETER LIST LENGTH 32.
        let cdb = [
            0x83, 0x10, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0x20, 0, 0,
        ];
        assert_eq!(
            PopulateToken::decode(&cdb),
            Ok(Tpc {
                list_id: 0x0102_0304,
                len: 32
            })
        );
        // RECEIVE COPY STATUS (LID1), LIST IDENTIFIER 7, ALLOCATION LENGTH 12.
        let cdb = [0x84, 0x00, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0];
        assert_eq!(
            ReceiveCopyStatusLid1::decode(&cdb),
            Ok(Tpc {
                list_id: 7,
                len: 12
            })
        );
        // A reserved byte 3 in RECEIVE COPY STATUS (LID1).
        let cdb = [0x84, 0x00, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0];
        assert_eq!(
            ReceiveCopyStatusLid1::decode(&cdb),
            Err(invalid(3, Some(0)))
        );
        // GROUP NUMBER is refused.
        let cdb = [0x83, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x28, 1, 0];
        assert_eq!(WriteUsingToken::decode(&cdb), Err(invalid(14, Some(0))));
        // COPY OPERATION ABORT, LIST IDENTIFIER 5.
        let cdb = [0x83, 0x1c, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            CopyOperationAbort::decode(&cdb),
            Ok(Tpc { list_id: 5, len: 0 })
        );
    }

    fn roundtrip<T: Cdb>(bytes: &[u8]) {
        if let Ok(v) = T::decode(bytes) {
            let enc = v.encode();
            assert_eq!(Some(enc.as_slice()), bytes.get(..16));
            assert_eq!(T::decode(&enc), Ok(v));
        }
    }

    proptest! {
        #[test]
        fn never_panic_and_roundtrip(mut bytes in proptest::collection::vec(any::<u8>(), 0..20), op in 0x83u8..=0x84, sa in prop::sample::select(vec![0u8, 1, 3, 4, 5, 7, 8, 0x10, 0x11, 0x1c])) {
            if let Some(b) = bytes.get_mut(0) { *b = op; }
            if let Some(b) = bytes.get_mut(1) { *b = sa; }
            roundtrip::<ExtendedCopyLid1>(&bytes);
            roundtrip::<ExtendedCopyLid4>(&bytes);
            roundtrip::<PopulateToken>(&bytes);
            roundtrip::<WriteUsingToken>(&bytes);
            roundtrip::<CopyOperationAbort>(&bytes);
            roundtrip::<ReceiveCopyStatusLid1>(&bytes);
            roundtrip::<ReceiveCopyDataLid1>(&bytes);
            roundtrip::<ReceiveCopyOperatingParameters>(&bytes);
            roundtrip::<ReceiveCopyFailureDetails>(&bytes);
            roundtrip::<ReceiveCopyStatusLid4>(&bytes);
            roundtrip::<ReceiveRodTokenInformation>(&bytes);
            roundtrip::<ReportAllRodTokens>(&bytes);
        }
    }
}
