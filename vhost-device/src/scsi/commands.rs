//! The command table: the one list of supported commands. Dispatch goes
//! through it, and REPORT SUPPORTED OPERATION CODES reports it, so what is
//! advertised is what is handled.

use super::{
    cdb::{
        Cdb, Inquiry, ModeSense10, ModeSense6, Read10, Read16, Read6, ReadCapacity10,
        ReadCapacity16, ReportLuns, ReportSupportedOpcodes, ReportZones, RequestSense, SyncCache10,
        SyncCache16, TestUnitReady, Verify16, Write10, Write16, Write6, ZoneActionCdb,
    },
    sense::Sense,
    xcopy::cdb as tpc,
    Exec, LuKind,
};

/// A command handler: returns the number of bytes written to data-in, or
/// the sense data of a CHECK CONDITION.
pub type Handler = fn(&mut Exec<'_, '_>) -> Result<u32, Sense>;

/// A CDB type that carries its handler, so a table row names the type
/// once and gets the operation code, service action, CDB USAGE DATA,
/// decoding and handler from it: a row cannot pair one CDB type with
/// another's handler. Implemented with [`handlers!`] beside the handlers.
pub trait Handled: Cdb {
    /// Execute the decoded command.
    fn handle(self, x: &mut Exec<'_, '_>) -> Result<u32, Sense>;
}

/// `handlers! { Type => handler, ... }` implements [`Handled`]: `handler`
/// takes the `Exec` and the decoded CDB (so its argument type must be
/// `Type`).
macro_rules! handlers {
    ($($t:ty => $f:expr),* $(,)?) => {
        $(impl $crate::scsi::commands::Handled for $t {
            fn handle(
                self,
                x: &mut $crate::scsi::Exec<'_, '_>,
            ) -> Result<u32, $crate::scsi::sense::Sense> {
                ($f)(x, self)
            }
        })*
    };
}
pub(crate) use handlers;

/// Decode the CDB as a `T` (INVALID FIELD IN CDB and friends on error),
/// then run its handler.
fn run<T: Handled>(x: &mut Exec<'_, '_>) -> Result<u32, Sense> {
    T::decode(x.cdb)?.handle(x)
}

/// Which logical units a command is supported on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applies {
    /// Every logical unit.
    All,
    /// Zoned logical units only, host-managed and host aware (ZBC-2
    /// commands).
    Zoned,
}

impl Applies {
    pub fn to(self, kind: LuKind) -> bool {
        match self {
            Applies::All => true,
            Applies::Zoned => kind.is_zoned(),
        }
    }
}

/// One supported command.
pub struct Command {
    pub opcode: u8,
    pub service_action: Option<u8>,
    pub name: &'static str,
    /// CDB USAGE DATA (SPC-5); its length is the CDB length.
    pub usage: &'static [u8],
    pub handler: Handler,
    pub applies: Applies,
    /// Served even when the LUN addresses no logical unit (INQUIRY, REPORT
    /// LUNS, REQUEST SENSE: SPC-5 / SAM-5).
    pub without_lu: bool,
}

impl Command {
    /// CDB length in bytes.
    pub fn cdb_len(&self) -> usize {
        self.usage.len()
    }

    /// The CDB USAGE DATA as REPORT SUPPORTED OPERATION CODES returns it
    /// (SPC-5 6.39.3): the usage bitmap, except that a command with a
    /// service action carries its service action code where the SERVICE
    /// ACTION field is (byte 1, bits 4:0, for every such command here),
    /// not the field's mask.
    pub fn usage_data(&self) -> Vec<u8> {
        let mut d = self.usage.to_vec();
        if let (Some(sa), Some(b)) = (self.service_action, d.get_mut(1)) {
            *b = (*b & !0x1f) | (sa & 0x1f);
        }
        d
    }
}

/// The row of CDB type `T`.
const fn cmd<T: Handled>(name: &'static str) -> Command {
    Command {
        opcode: T::OPCODE,
        service_action: T::SERVICE_ACTION,
        name,
        usage: T::USAGE,
        handler: run::<T>,
        applies: Applies::All,
        without_lu: false,
    }
}

const fn without_lu(mut c: Command) -> Command {
    c.without_lu = true;
    c
}

const fn zoned(mut c: Command, sa: Option<u8>) -> Command {
    c.applies = Applies::Zoned;
    if sa.is_some() {
        c.service_action = sa;
    }
    c
}

/// Every supported command, in operation code order.
pub static COMMANDS: &[Command] = &[
    cmd::<TestUnitReady>("TEST UNIT READY"),
    without_lu(cmd::<RequestSense>("REQUEST SENSE")),
    cmd::<Read6>("READ(6)"),
    cmd::<Write6>("WRITE(6)"),
    without_lu(cmd::<Inquiry>("INQUIRY")),
    cmd::<ModeSense6>("MODE SENSE(6)"),
    cmd::<ReadCapacity10>("READ CAPACITY(10)"),
    cmd::<Read10>("READ(10)"),
    cmd::<Write10>("WRITE(10)"),
    cmd::<SyncCache10>("SYNCHRONIZE CACHE(10)"),
    cmd::<ModeSense10>("MODE SENSE(10)"),
    cmd::<Read16>("READ(16)"),
    cmd::<Write16>("WRITE(16)"),
    cmd::<SyncCache16>("SYNCHRONIZE CACHE(16)"),
    cmd::<Verify16>("VERIFY(16)"),
    cmd::<tpc::ExtendedCopyLid1>("EXTENDED COPY(LID1)"),
    cmd::<tpc::ExtendedCopyLid4>("EXTENDED COPY(LID4)"),
    cmd::<tpc::PopulateToken>("POPULATE TOKEN"),
    cmd::<tpc::WriteUsingToken>("WRITE USING TOKEN"),
    cmd::<tpc::CopyOperationAbort>("COPY OPERATION ABORT"),
    cmd::<tpc::ReceiveCopyStatusLid1>("RECEIVE COPY STATUS(LID1)"),
    cmd::<tpc::ReceiveCopyDataLid1>("RECEIVE COPY DATA(LID1)"),
    cmd::<tpc::ReceiveCopyOperatingParameters>("RECEIVE COPY OPERATING PARAMETERS"),
    cmd::<tpc::ReceiveCopyFailureDetails>("RECEIVE COPY FAILURE DETAILS(LID1)"),
    cmd::<tpc::ReceiveCopyStatusLid4>("RECEIVE COPY STATUS(LID4)"),
    cmd::<tpc::ReceiveRodTokenInformation>("RECEIVE ROD TOKEN INFORMATION"),
    cmd::<tpc::ReportAllRodTokens>("REPORT ALL ROD TOKENS"),
    zoned(cmd::<ZoneActionCdb>("CLOSE ZONE"), Some(0x01)),
    zoned(cmd::<ZoneActionCdb>("FINISH ZONE"), Some(0x02)),
    zoned(cmd::<ZoneActionCdb>("OPEN ZONE"), Some(0x03)),
    zoned(cmd::<ZoneActionCdb>("RESET WRITE POINTER"), Some(0x04)),
    zoned(cmd::<ReportZones>("REPORT ZONES"), None),
    cmd::<ReadCapacity16>("READ CAPACITY(16)"),
    without_lu(cmd::<ReportLuns>("REPORT LUNS")),
    cmd::<ReportSupportedOpcodes>("REPORT SUPPORTED OPERATION CODES"),
];

/// What the table says about a CDB's operation code and service action.
pub enum Lookup {
    Found(&'static Command),
    /// The operation code is not supported.
    UnknownOpcode,
    /// The operation code has service actions, and this one is not
    /// supported (SERVICE ACTION field: byte 1, bits 4-0).
    UnknownServiceAction,
    /// The CDB ends before its service action.
    Truncated,
}

/// Whether `opcode` has service actions.
pub fn has_service_actions(opcode: u8) -> bool {
    COMMANDS
        .iter()
        .any(|c| c.opcode == opcode && c.service_action.is_some())
}

/// The command for `opcode` and, if it has service actions, `sa`.
pub fn find(opcode: u8, sa: Option<u16>) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| {
        c.opcode == opcode
            && match c.service_action {
                None => true,
                Some(s) => sa == Some(u16::from(s)),
            }
    })
}

/// Look up a CDB (at least one byte long).
pub fn lookup(cdb: &[u8]) -> Lookup {
    let Some(&opcode) = cdb.first() else {
        return Lookup::UnknownOpcode;
    };
    if !COMMANDS.iter().any(|c| c.opcode == opcode) {
        return Lookup::UnknownOpcode;
    }
    if !has_service_actions(opcode) {
        return find(opcode, None).map_or(Lookup::UnknownOpcode, Lookup::Found);
    }
    let Some(&b1) = cdb.get(1) else {
        return Lookup::Truncated;
    };
    find(opcode, Some(u16::from(b1 & 0x1f))).map_or(Lookup::UnknownServiceAction, Lookup::Found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.usage.first(), Some(&c.opcode), "{}", c.name);
            assert!(matches!(c.cdb_len(), 6 | 10 | 12 | 16), "{}", c.name);
            // The group code of the operation code implies the CDB length
            // (SPC-5): 0 -> 6, 1/2 -> 10, 4 -> 16, 5 -> 12.
            let want = match c.opcode >> 5 {
                0 => 6,
                1 | 2 => 10,
                4 => 16,
                5 => 12,
                _ => 0,
            };
            assert_eq!(c.cdb_len(), want, "{}", c.name);
            for d in &COMMANDS[i + 1..] {
                assert!(
                    (d.opcode, d.service_action) != (c.opcode, c.service_action),
                    "duplicate {}",
                    c.name
                );
                if d.opcode == c.opcode {
                    assert!(c.service_action.is_some() && d.service_action.is_some());
                }
            }
        }
    }
}
