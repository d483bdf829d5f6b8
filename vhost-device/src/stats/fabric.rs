//! Host-interface byte counters: what crossed the NVMe/TCP connections
//! (or the PCIe function), split by direction and command class, data
//! apart from PDU overhead. They prove an offloaded copy kept its data off
//! the fabric. The class of a command comes from the NVMe command table
//! (`nvme::Queue::admit`); nothing here knows an opcode.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::StatsSource;

/// Which kind of command a PDU belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandClass {
    /// Anything on the admin queue (including Fabrics commands there).
    Admin,
    /// Commands that read the medium to the host.
    Read,
    /// Commands that write the medium.
    Write,
    /// Copy within the controller.
    Copy,
    /// Every other I/O queue command (Flush, Dataset Management, Zone
    /// Management, Verify, Fabrics commands on an I/O queue, ...).
    Other,
}

impl CommandClass {
    const ALL: [CommandClass; 5] = [
        CommandClass::Admin,
        CommandClass::Read,
        CommandClass::Write,
        CommandClass::Copy,
        CommandClass::Other,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Direction of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    HostToController,
    ControllerToHost,
}

#[derive(Default)]
struct ClassCounters {
    commands: AtomicU64,
    /// [host-to-controller, controller-to-host]
    data: [AtomicU64; 2],
    header: [AtomicU64; 2],
}

/// Live counters shared by every connection of one listener.
#[derive(Default)]
pub struct FabricStats {
    classes: [ClassCounters; 5],
    /// ICReq/ICResp/termination PDUs: [h2c, c2h].
    connection_header: [AtomicU64; 2],
    connections: AtomicU64,
    terminations_sent: AtomicU64,
    /// NVMe over PCIe: doorbell register writes (each a vfio-user message
    /// QEMU waits on); what shadow doorbells save. 0 on NVMe/TCP.
    doorbell_writes: AtomicU64,
}

fn dir(d: Direction) -> usize {
    match d {
        Direction::HostToController => 0,
        Direction::ControllerToHost => 1,
    }
}

/// Bytes of one class, as snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassBytes {
    /// Commands received (CapsuleCmd PDUs).
    pub commands: u64,
    /// Data bytes host to controller (in-capsule and H2CData payload).
    pub data_h2c: u64,
    /// Data bytes controller to host (C2HData payload).
    pub data_c2h: u64,
    /// Everything else in the PDUs: headers, digests, padding.
    pub header_h2c: u64,
    pub header_c2h: u64,
}

impl ClassBytes {
    /// All bytes of this class, both ways.
    pub fn total(&self) -> u64 {
        self.data_h2c + self.data_c2h + self.header_h2c + self.header_c2h
    }
}

/// A plain copy of [`FabricStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FabricSnapshot {
    pub admin: ClassBytes,
    pub read: ClassBytes,
    pub write: ClassBytes,
    pub copy: ClassBytes,
    pub other: ClassBytes,
    /// ICReq, ICResp and termination request bytes, host to controller.
    pub connection_h2c: u64,
    pub connection_c2h: u64,
    /// Connections accepted.
    pub connections: u64,
    /// C2HTermReq PDUs sent (fatal transport errors).
    pub terminations_sent: u64,
}

impl FabricSnapshot {
    fn classes(&self) -> [&ClassBytes; 5] {
        [
            &self.admin,
            &self.read,
            &self.write,
            &self.copy,
            &self.other,
        ]
    }

    /// Data bytes both ways, every class.
    pub fn data_bytes(&self) -> u64 {
        self.classes().iter().map(|c| c.data_h2c + c.data_c2h).sum()
    }

    /// Every byte that crossed the fabric.
    pub fn total_bytes(&self) -> u64 {
        self.classes().iter().map(|c| c.total()).sum::<u64>()
            + self.connection_h2c
            + self.connection_c2h
    }
}

impl FabricStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// One doorbell register write (NVMe over PCIe).
    pub(crate) fn doorbell_write(&self) {
        self.doorbell_writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn command(&self, class: CommandClass) {
        self.classes[class.index()]
            .commands
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Count one PDU of a command: `data` payload bytes, `overhead` the rest.
    pub(crate) fn pdu(&self, class: CommandClass, d: Direction, data: usize, overhead: usize) {
        let c = &self.classes[class.index()];
        c.data[dir(d)].fetch_add(data as u64, Ordering::Relaxed);
        c.header[dir(d)].fetch_add(overhead as u64, Ordering::Relaxed);
    }

    /// Count a PDU that belongs to no command.
    pub(crate) fn connection_pdu(&self, d: Direction, bytes: usize) {
        self.connection_header[dir(d)].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn connection_accepted(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn termination_sent(&self) {
        self.terminations_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> FabricSnapshot {
        let class = |c: CommandClass| {
            let k = &self.classes[c.index()];
            ClassBytes {
                commands: k.commands.load(Ordering::Relaxed),
                data_h2c: k.data[0].load(Ordering::Relaxed),
                data_c2h: k.data[1].load(Ordering::Relaxed),
                header_h2c: k.header[0].load(Ordering::Relaxed),
                header_c2h: k.header[1].load(Ordering::Relaxed),
            }
        };
        let [admin, read, write, copy, other] = CommandClass::ALL.map(class);
        FabricSnapshot {
            admin,
            read,
            write,
            copy,
            other,
            connection_h2c: self.connection_header[0].load(Ordering::Relaxed),
            connection_c2h: self.connection_header[1].load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            terminations_sent: self.terminations_sent.load(Ordering::Relaxed),
        }
    }
}

impl ClassBytes {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "commands": self.commands,
            "data_h2c": self.data_h2c,
            "data_c2h": self.data_c2h,
            "header_h2c": self.header_h2c,
            "header_c2h": self.header_c2h,
        })
    }
}

/// The fabric counters on the control socket, under `fabric`: per command
/// class (admin, read, write, copy, other) the data and PDU-overhead bytes
/// each way, plus connection-level bytes.
impl StatsSource for FabricStats {
    fn name(&self) -> &str {
        "fabric"
    }

    fn snapshot(&self) -> Value {
        let s = FabricStats::snapshot(self);
        serde_json::json!({
            "admin": s.admin.json(),
            "read": s.read.json(),
            "write": s.write.json(),
            "copy": s.copy.json(),
            "other": s.other.json(),
            "connection_h2c": s.connection_h2c,
            "connection_c2h": s.connection_c2h,
            "connections": s.connections,
            "terminations_sent": s.terminations_sent,
            "doorbell_writes": self.doorbell_writes.load(Ordering::Relaxed),
            "data_bytes": s.data_bytes(),
            "total_bytes": s.total_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_adds_up() {
        let s = FabricStats::new();
        s.command(CommandClass::Copy);
        s.pdu(CommandClass::Copy, Direction::HostToController, 32, 72);
        s.pdu(CommandClass::Copy, Direction::ControllerToHost, 0, 24);
        s.pdu(CommandClass::Read, Direction::ControllerToHost, 4096, 24);
        s.connection_pdu(Direction::HostToController, 128);
        let snap = s.snapshot();
        assert_eq!(snap.copy.commands, 1);
        assert_eq!(snap.copy.total(), 128);
        assert_eq!(snap.read.data_c2h, 4096);
        assert_eq!(snap.data_bytes(), 4128);
        assert_eq!(snap.total_bytes(), 128 + 4120 + 128);
    }
}
