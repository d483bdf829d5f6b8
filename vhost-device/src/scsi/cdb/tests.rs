//! CDB decoding from literal bytes, and properties over any bytes.

use proptest::prelude::*;

use super::*;

#[test]
fn read16_literal() {
    let cdb = [
        0x88, // READ(16)
        0x08, // FUA
        0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, // LBA
        0, 0, 0x01, 0x00, // TRANSFER LENGTH 256
        0, 0, // GROUP NUMBER, CONTROL
    ];
    assert_eq!(
        Read16::decode(&cdb),
        Ok(Read16 {
            lba: 0x1234_5678,
            len: 256,
            dpo: false,
            fua: true
        })
    );
}

#[test]
fn field_pointers() {
    // RDPROTECT 001b: byte 1 bit 5.
    let cdb = [0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0];
    assert_eq!(Read10::decode(&cdb), Err(invalid(1, Some(5))));
    // NACA in the CONTROL byte: byte 9 bit 2.
    let cdb = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04];
    assert_eq!(Read10::decode(&cdb), Err(invalid(9, Some(2))));
    // CMDDT: byte 1 bit 1.
    assert_eq!(
        Inquiry::decode(&[0x12, 0x02, 0, 0, 36, 0]),
        Err(invalid(1, Some(1)))
    );
    // Truncated.
    assert_eq!(
        Read16::decode(&[0x88, 0, 0]),
        Err(DecodeError::TooShort { need: 16, got: 3 })
    );
    // READ CAPACITY(16) with another service action.
    let mut cdb = [0u8; 16];
    cdb[0] = 0x9e;
    cdb[1] = 0x12;
    assert_eq!(ReadCapacity16::decode(&cdb), Err(invalid(1, Some(4))));
}

/// VERIFY (16) (SBC-4 r22 5.35, table "VERIFY (16) command") from its bytes.
#[test]
fn verify16_literal() {
    let cdb = [
        0x8f, 0x12, 0x00, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00,
    ];
    assert_eq!(
        Verify16::decode(&cdb),
        Ok(Verify16 {
            dpo: true,
            bytchk: ByteCheck::DataOut,
            lba: 0x1_2345_6789,
            len: 0x100,
        })
    );
    assert_eq!(Verify16::decode(&cdb).map(|c| c.encode()), Ok(cdb.to_vec()));
    let with = |b1: u8| {
        let mut c = cdb;
        c[1] = b1;
        Verify16::decode(&c)
    };
    assert_eq!(with(0x00).map(|c| c.bytchk), Ok(ByteCheck::Medium));
    assert_eq!(with(0x06).map(|c| c.bytchk), Ok(ByteCheck::OneBlock));
    // BYTCHK 10b reserved; VRPROTECT named at its first bit.
    assert_eq!(with(0x04), Err(invalid(1, Some(2))));
    assert_eq!(with(0x20), Err(invalid(1, Some(7))));
    assert_eq!(with(0x40), Err(invalid(1, Some(7))));
    assert_eq!(with(0x08), Err(invalid(1, Some(3))));
    assert_eq!(
        Verify16::decode(&cdb[..15]),
        Err(DecodeError::TooShort { need: 16, got: 15 })
    );
}

#[test]
fn read6_zero_length_is_256() {
    let r = Read6::decode(&[0x08, 0x1f, 0xff, 0xff, 0, 0]).map(RwArgs::from);
    assert_eq!(r.map(|a| (a.lba, a.blocks)), Ok((0x1f_ffff, 256)));
}

fn roundtrip<T: Cdb>(bytes: &[u8]) {
    if let Ok(v) = T::decode(bytes) {
        let enc = v.encode();
        assert_eq!(enc.len(), T::USAGE.len());
        assert_eq!(Some(enc.as_slice()), bytes.get(..enc.len()));
        assert_eq!(T::decode(&enc), Ok(v));
    }
}

fn all(bytes: &[u8]) {
    roundtrip::<TestUnitReady>(bytes);
    roundtrip::<RequestSense>(bytes);
    roundtrip::<Inquiry>(bytes);
    roundtrip::<ModeSense6>(bytes);
    roundtrip::<ModeSense10>(bytes);
    roundtrip::<ReportLuns>(bytes);
    roundtrip::<ReportSupportedOpcodes>(bytes);
    roundtrip::<ReadCapacity10>(bytes);
    roundtrip::<ReadCapacity16>(bytes);
    roundtrip::<Read6>(bytes);
    roundtrip::<Write6>(bytes);
    roundtrip::<Read10>(bytes);
    roundtrip::<Write10>(bytes);
    roundtrip::<Read16>(bytes);
    roundtrip::<Write16>(bytes);
    roundtrip::<SyncCache10>(bytes);
    roundtrip::<SyncCache16>(bytes);
    roundtrip::<ReportZones>(bytes);
    roundtrip::<ZoneActionCdb>(bytes);
    roundtrip::<Verify16>(bytes);
}

proptest! {
    #[test]
    fn any_bytes_never_panic_and_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        all(&bytes);
    }

    /// Bytes masked by each usage bitmap always decode (except for the
    /// service action values), and round-trip exactly.
    #[test]
    fn masked_bytes_roundtrip(bytes in proptest::collection::vec(any::<u8>(), 16)) {
        fn masked<T: Cdb>(bytes: &[u8]) {
            let mut b: Vec<u8> = bytes.iter().zip(T::USAGE).map(|(v, u)| v & u).collect();
            if let (Some(b0), Some(u0)) = (b.first_mut(), T::USAGE.first()) {
                *b0 = *u0;
            }
            if let (Some(sa), Some(b1)) = (T::SERVICE_ACTION, b.get_mut(1)) {
                *b1 = sa;
            }
            if T::OPCODE == ZoneActionCdb::OPCODE {
                if let Some(b1) = b.get_mut(1) {
                    *b1 = 1 + *b1 % 4;
                }
            }
            let v = T::decode(&b);
            assert!(v.is_ok(), "{:?} {:02x?}", v, b);
            roundtrip::<T>(&b);
        }
        masked::<Read16>(&bytes);
        masked::<Write16>(&bytes);
        masked::<Read10>(&bytes);
        masked::<Write6>(&bytes);
        masked::<ReportZones>(&bytes);
        masked::<ZoneActionCdb>(&bytes);
        masked::<ReadCapacity16>(&bytes);
        masked::<ModeSense10>(&bytes);
        masked::<ReportSupportedOpcodes>(&bytes);
    }
}
