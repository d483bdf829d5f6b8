//! The PCIe function driven as a host driver would: registers, admin
//! queue bring-up, queue creation, PRPs and hostile values.

use std::{io::Read, sync::Arc};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{
    config::PciConfig,
    function::{Function, BAR0_SIZE, DOORBELLS, MSIX_PBA, MSIX_TABLE},
    prp::{self, Segment},
};
use crate::{
    nvme::{
        commands::opcode as op, ControllerOptions, NamespaceSpec, Status, Subsystem,
        SubsystemConfig, Transport,
    },
    storage::{Device, DeviceConfig},
};

// Admin commands by their rows' names (the opcodes come from the table).
const CREATE_CQ: &str = "Create I/O Completion Queue";
const CREATE_SQ: &str = "Create I/O Submission Queue";
const DELETE_CQ: &str = "Delete I/O Completion Queue";
const DELETE_SQ: &str = "Delete I/O Submission Queue";
const DBBUF: &str = "Doorbell Buffer Config";
const AER: &str = "Asynchronous Event Request";

const MEM: u64 = 1 << 20;
const ASQ: u64 = 0x10000;
const ACQ: u64 = 0x11000;
const BUF: u64 = 0x20000;

fn subsystem(dir: &tempfile::TempDir) -> Arc<Subsystem> {
    subsystem_with(dir, true)
}

fn subsystem_with(dir: &tempfile::TempDir, shadow_doorbells: bool) -> Arc<Subsystem> {
    let dev = Device::open(&DeviceConfig {
        path: dir.path().join("nvm"),
        size: 256 * 4096,
        block_size: 4096,
        zoned: None,
    })
    .unwrap();
    Arc::new(Subsystem::with_options(
        SubsystemConfig {
            nqn: "nqn.test:pcie".into(),
            ..Default::default()
        },
        ControllerOptions {
            transport: Transport::Pcie,
            shadow_doorbells,
            ..ControllerOptions::default()
        },
        vec![NamespaceSpec {
            device: Arc::new(dev),
            copy_limits: Default::default(),
            timing: None,
        }],
    ))
}

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap()
}

/// A function whose guest memory is a memfd of MEM bytes at address 0,
/// and a second mapping of that memfd for the test to look through.
struct Host {
    f: Function,
    mem: GuestMemoryMmap,
    sq_tail: u16,
    cq_head: u16,
    _dir: tempfile::TempDir,
}

fn memfd() -> std::fs::File {
    let f = tempfile::tempfile().unwrap();
    f.set_len(MEM).unwrap();
    f
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        Host::with(subsystem(&dir), dir)
    }

    fn with(sub: Arc<Subsystem>, dir: tempfile::TempDir) -> Host {
        let mut f = Function::new(sub, Arc::default()).unwrap();
        let file = memfd();
        let view = file.try_clone().unwrap();
        f.memory.map(0, MEM, 0, Some(file)).unwrap();
        let region =
            vm_memory::MmapRegion::from_file(vm_memory::FileOffset::new(view, 0), MEM as usize)
                .unwrap();
        let mem = GuestMemoryMmap::from_regions(vec![vm_memory::GuestRegionMmap::new(
            region,
            GuestAddress(0),
        )
        .unwrap()])
        .unwrap();
        Host {
            f,
            mem,
            sq_tail: 0,
            cq_head: 0,
            _dir: dir,
        }
    }

    fn read32(&self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.f.bar_read(off, &mut b);
        u32::from_le_bytes(b)
    }

    /// A register or doorbell write, then whatever it made runnable (the
    /// executor thread's job outside tests).
    fn write32(&mut self, off: u64, v: u32) {
        self.f.bar_write(off, &v.to_le_bytes());
        self.f.drain();
    }

    fn write64(&mut self, off: u64, v: u64) {
        self.f.bar_write(off, &v.to_le_bytes());
    }

    /// AQA 16/16 entries, ASQ, ACQ, CC.EN with IOSQES 6 and IOCQES 4.
    fn enable(&mut self) {
        self.write32(0x24, (15 << 16) | 15);
        self.write64(0x28, ASQ);
        self.write64(0x30, ACQ);
        self.write32(0x14, (4 << 20) | (6 << 16) | 1);
    }

    /// Submit `sqe` on the admin queue and return the status field and
    /// DW0 of its completion.
    /// Create I/O Completion or Submission Queue (`name`) with PRP Entry
    /// 1 `prp1`, CDW10 and CDW11; the status.
    fn create(&mut self, name: &str, prp1: u64, dw10: u32, dw11: u32) -> u16 {
        self.admin(sqe(op(name), 0, prp1, dw10, dw11)).0
    }

    fn admin(&mut self, mut sqe: [u8; 64]) -> (u16, u32) {
        let cid = self.sq_tail + 1;
        sqe[2..4].copy_from_slice(&cid.to_le_bytes());
        let at = ASQ + u64::from(self.sq_tail) * 64;
        self.mem.write_slice(&sqe, GuestAddress(at)).unwrap();
        self.sq_tail = (self.sq_tail + 1) % 16;
        self.write32(DOORBELLS, u32::from(self.sq_tail));
        let cqe_at = ACQ + u64::from(self.cq_head) * 16;
        let dw0: u32 = self.mem.read_obj(GuestAddress(cqe_at)).unwrap();
        let dw3: u32 = self.mem.read_obj(GuestAddress(cqe_at + 12)).unwrap();
        assert_eq!(dw3 & 0xFFFF, u32::from(cid), "completion for our command");
        assert_eq!(dw3 >> 16 & 1, 1, "phase tag of the first pass");
        self.cq_head += 1;
        self.write32(DOORBELLS + 4, u32::from(self.cq_head));
        ((dw3 >> 17) as u16 & 0x7FF, dw0)
    }
}

fn sqe(opcode: u8, nsid: u32, prp1: u64, dw10: u32, dw11: u32) -> [u8; 64] {
    let mut s = [0u8; 64];
    s[0] = opcode;
    s[4..8].copy_from_slice(&nsid.to_le_bytes());
    s[24..32].copy_from_slice(&prp1.to_le_bytes());
    s[40..44].copy_from_slice(&dw10.to_le_bytes());
    s[44..48].copy_from_slice(&dw11.to_le_bytes());
    s
}

/// Status field as the completion carries it (SCT 10:8, SC 7:0).
fn st(s: Status) -> u16 {
    s.field() & 0x7FF
}

#[test]
fn config_space_is_an_nvme_function_with_msix_and_pcie() {
    let c = PciConfig::new(BAR0_SIZE, 9, MSIX_TABLE as u32, MSIX_PBA as u32);
    let mut b = [0u8; 0x100];
    c.read(0, &mut b);
    assert_eq!(&b[9..12], &[0x02, 0x08, 0x01], "class 01h/08h/02h");
    assert_eq!(b[0x06] & 0x10, 0x10, "capabilities list");
    let mut caps = Vec::new();
    let mut at = usize::from(b[0x34]);
    while at != 0 {
        caps.push(b[at]);
        at = usize::from(b[at + 1]);
    }
    assert_eq!(caps, vec![0x01, 0x11, 0x10], "PM, MSI-X, PCI Express");
    assert_eq!(
        u16::from_le_bytes([b[0x52], b[0x53]]) & 0x7FF,
        8,
        "9 vectors"
    );
}

#[test]
fn bar_sizing_reads_back_the_size() {
    let mut c = PciConfig::new(BAR0_SIZE, 1, 0, 0);
    c.write(0x10, &[0xFF; 4]);
    c.write(0x14, &[0xFF; 4]);
    let mut b = [0u8; 8];
    c.read(0x10, &mut b);
    assert_eq!(
        u32::from_le_bytes(b[..4].try_into().unwrap()),
        !(BAR0_SIZE as u32 - 1) | 0b100
    );
    assert_eq!(u32::from_le_bytes(b[4..].try_into().unwrap()), 0xFFFF_FFFF);
    // The class code is read-only.
    c.write(0x09, &[0; 3]);
    c.read(0x09, &mut b[..3]);
    assert_eq!(&b[..3], &[0x02, 0x08, 0x01]);
}

#[test]
fn registers_cap_vs_and_odd_accesses() {
    let h = Host::new();
    let cap = u64::from(h.read32(0)) | (u64::from(h.read32(4)) << 32);
    assert_eq!(cap & 0xFFFF, 127, "MQES");
    assert_eq!((cap >> 32) & 0xF, 0, "DSTRD 0");
    assert_eq!((cap >> 24) & 0xFF, 15, "TO");
    assert_eq!((cap >> 37) & 1, 1, "CSS: NVM");
    assert_eq!(h.read32(8), 0x0002_0100, "VS 2.1");
    let mut odd = [0xAAu8; 2];
    h.f.bar_read(1, &mut odd);
    assert_eq!(odd, [0, 0], "odd offset and width read 0");
}

#[test]
fn enable_shutdown_and_reset() {
    let mut h = Host::new();
    h.enable();
    assert_eq!(h.read32(0x1C) & 1, 1, "CSTS.RDY");
    let cc = h.read32(0x14);
    h.write32(0x14, cc | (1 << 14));
    assert_eq!(h.read32(0x1C) & (3 << 2), 2 << 2, "CSTS.SHST complete");
    h.write32(0x14, 0);
    assert_eq!(h.read32(0x1C), 0, "reset: not ready");
    assert_eq!(h.f.queue_ids(), (vec![], vec![]));
}

#[test]
fn bad_admin_queue_attributes_are_fatal() {
    let mut h = Host::new();
    h.write32(0x24, (15 << 16) | 15);
    h.write64(0x28, ASQ + 8); // not page aligned
    h.write64(0x30, ACQ);
    h.write32(0x14, (4 << 20) | (6 << 16) | 1);
    assert_eq!(h.f.status() & 2, 2, "CSTS.CFS");
}

#[test]
fn identify_through_prps_and_no_fabrics_fields() {
    let mut h = Host::new();
    h.enable();
    // Identify Controller into a buffer that starts mid-page: PRP1 with
    // an offset, PRP2 the next page.
    let mut s = sqe(op("Identify"), 0, BUF + 0x800, 1, 0);
    s[32..40].copy_from_slice(&(BUF + 0x1000).to_le_bytes());
    let (status, _) = h.admin(s);
    assert_eq!(status, 0);
    let mut id = vec![0u8; 4096];
    h.mem
        .read_slice(&mut id, GuestAddress(BUF + 0x800))
        .unwrap();
    assert_eq!(&id[24..37], b"zonecopy NVMe");
    assert_eq!(
        u32::from_le_bytes(id[536..540].try_into().unwrap()),
        0,
        "SGLS: PRPs only"
    );
    assert_eq!(
        u32::from_le_bytes(id[1792..1796].try_into().unwrap()),
        0,
        "IOCCSZ is fabrics only"
    );
    assert_eq!(id[76], 0, "CMIC");
}

#[test]
fn sgl_commands_are_refused() {
    let mut h = Host::new();
    h.enable();
    let mut s = sqe(op("Identify"), 0, BUF, 1, 0);
    s[1] = 1 << 6; // PSDT 01b
    assert_eq!(h.admin(s).0, st(Status::INVALID_FIELD));
}

#[test]
fn queue_creation_errors() {
    let mut h = Host::new();
    h.enable();
    let pc = 1;
    // QID 0, QID beyond the queues allowed, size 0, size > MQES.
    assert_eq!(
        h.create(CREATE_CQ, BUF, 15 << 16, pc),
        st(Status::INVALID_QUEUE_IDENTIFIER)
    );
    assert_eq!(
        h.create(CREATE_CQ, BUF, (15 << 16) | 99, pc),
        st(Status::INVALID_QUEUE_IDENTIFIER)
    );
    assert_eq!(
        h.create(CREATE_CQ, BUF, 1, pc),
        st(Status::INVALID_QUEUE_SIZE)
    );
    assert_eq!(
        h.create(CREATE_CQ, BUF, (128 << 16) | 1, pc),
        st(Status::INVALID_QUEUE_SIZE)
    );
    // Not physically contiguous; misaligned base; vector out of range.
    assert_eq!(
        h.create(CREATE_CQ, BUF, (15 << 16) | 1, 0),
        st(Status::INVALID_FIELD)
    );
    assert_eq!(
        h.create(CREATE_CQ, BUF + 4, (15 << 16) | 1, pc),
        st(Status::INVALID_PRP_OFFSET)
    );
    assert_eq!(
        h.create(CREATE_CQ, BUF, (15 << 16) | 1, pc | (64 << 16)),
        st(Status::INVALID_INTERRUPT_VECTOR)
    );
    // An SQ on a CQ that does not exist.
    assert_eq!(
        h.create(CREATE_SQ, BUF + 0x1000, (15 << 16) | 1, pc | (1 << 16)),
        st(Status::COMPLETION_QUEUE_INVALID)
    );
    // CQ 1, SQ 1 on it; CQ 1 again; deleting CQ 1 while SQ 1 uses it.
    assert_eq!(
        h.create(CREATE_CQ, BUF, (15 << 16) | 1, pc | 2 | (1 << 16)),
        0
    );
    assert_eq!(
        h.create(CREATE_CQ, BUF, (15 << 16) | 1, pc),
        st(Status::INVALID_QUEUE_IDENTIFIER)
    );
    assert_eq!(
        h.create(CREATE_SQ, BUF + 0x1000, (15 << 16) | 1, pc | (1 << 16)),
        0
    );
    assert_eq!(h.f.queue_ids(), (vec![0, 1], vec![0, 1]));
    assert_eq!(
        h.admin(sqe(op(DELETE_CQ), 0, 0, 1, 0)).0,
        st(Status::INVALID_QUEUE_DELETION)
    );
    assert_eq!(h.admin(sqe(op(DELETE_SQ), 0, 0, 1, 0)).0, 0);
    assert_eq!(
        h.admin(sqe(op(DELETE_SQ), 0, 0, 1, 0)).0,
        st(Status::INVALID_QUEUE_IDENTIFIER)
    );
    assert_eq!(h.admin(sqe(op(DELETE_CQ), 0, 0, 1, 0)).0, 0);
    assert_eq!(h.f.queue_ids(), (vec![0], vec![0]));
}

#[test]
fn io_write_then_read_through_a_prp_list() {
    let mut h = Host::new();
    h.enable();
    assert_eq!(
        h.create(CREATE_CQ, 0x30000, (15 << 16) | 1, 1 | 2 | (1 << 16)),
        0
    );
    assert_eq!(
        h.create(CREATE_SQ, 0x31000, (15 << 16) | 1, 1 | (1 << 16)),
        0
    );
    // 4 blocks of 4 KiB: PRP1 a page, PRP2 a list of three pages.
    let pages = [0x40000u64, 0x45000, 0x43000, 0x41000];
    for (i, p) in pages.iter().enumerate() {
        h.mem
            .write_slice(&[i as u8 + 1; 4096], GuestAddress(*p))
            .unwrap();
    }
    for (i, p) in pages[1..].iter().enumerate() {
        h.mem
            .write_obj(*p, GuestAddress(0x50000 + i as u64 * 8))
            .unwrap();
    }
    let mut w = sqe(op("Write"), 1, pages[0], 8, 0);
    w[32..40].copy_from_slice(&0x50000u64.to_le_bytes());
    w[48..52].copy_from_slice(&3u32.to_le_bytes()); // NLB 3 (0's based)
    h.mem.write_slice(&w, GuestAddress(0x31000)).unwrap();
    h.write32(DOORBELLS + 8, 1);
    let dw3: u32 = h.mem.read_obj(GuestAddress(0x30000 + 12)).unwrap();
    assert_eq!(dw3 >> 17, 0, "write succeeded");
    // Read it back into one fresh page run via another list.
    for (i, p) in [0x61000u64, 0x62000, 0x63000].iter().enumerate() {
        h.mem
            .write_obj(*p, GuestAddress(0x51000 + i as u64 * 8))
            .unwrap();
    }
    let mut r = sqe(op("Read"), 1, 0x60000, 8, 0);
    r[32..40].copy_from_slice(&0x51000u64.to_le_bytes());
    r[48..52].copy_from_slice(&3u32.to_le_bytes());
    h.mem.write_slice(&r, GuestAddress(0x31000 + 64)).unwrap();
    h.write32(DOORBELLS + 8, 2);
    let dw3: u32 = h.mem.read_obj(GuestAddress(0x30000 + 16 + 12)).unwrap();
    assert_eq!(dw3 >> 17, 0, "read succeeded");
    let mut back = vec![0u8; 4 * 4096];
    h.mem.read_slice(&mut back, GuestAddress(0x60000)).unwrap();
    for (i, chunk) in back.chunks(4096).enumerate() {
        assert!(chunk.iter().all(|&b| b == i as u8 + 1), "block {i}");
    }
}

#[test]
fn doorbell_beyond_the_queue_is_an_error_event() {
    let mut h = Host::new();
    h.enable();
    // An outstanding Asynchronous Event Request, then a bad doorbell.
    let mut aer = sqe(op(AER), 0, 0, 0, 0);
    aer[2] = 0x77;
    h.mem.write_slice(&aer, GuestAddress(ASQ)).unwrap();
    h.write32(DOORBELLS, 1);
    h.write32(DOORBELLS, 16); // SQ 0 has 16 entries: 16 is beyond it
    let dw0: u32 = h.mem.read_obj(GuestAddress(ACQ)).unwrap();
    let dw3: u32 = h.mem.read_obj(GuestAddress(ACQ + 12)).unwrap();
    assert_eq!(dw3 & 0xFFFF, 0x77);
    assert_eq!(dw0 & 7, 0, "Error status event");
    assert_eq!((dw0 >> 8) & 0xFF, 1, "Invalid Doorbell Write Value");
    assert_eq!((dw0 >> 16) & 0xFF, 1, "Error Information log");
    // A doorbell of a queue that does not exist: no panic, no completion.
    h.write32(DOORBELLS + 8 * 5, 1);
    assert_eq!(h.read32(0x1C) & 2, 0, "not fatal");
}

#[test]
fn prp_rules() {
    let mem = memory();
    let seg = |addr, len| Segment { addr, len };
    // One page with an offset; two pages.
    assert_eq!(
        prp::segments(&mem, 0x1010, 0, 16),
        Ok(vec![seg(0x1010, 16)])
    );
    assert_eq!(
        prp::segments(&mem, 0x1800, 0x5000, 4096),
        Ok(vec![seg(0x1800, 2048), seg(0x5000, 2048)])
    );
    // PRP1 not dword aligned; PRP2 data pointer with an offset.
    assert_eq!(
        prp::segments(&mem, 0x1002, 0, 16),
        Err(Status::INVALID_PRP_OFFSET)
    );
    assert_eq!(
        prp::segments(&mem, 0x1000, 0x5008, 8192),
        Err(Status::INVALID_PRP_OFFSET)
    );
    // Outside guest memory.
    assert_eq!(
        prp::segments(&mem, MEM, 0, 16),
        Err(Status::DATA_TRANSFER_ERROR)
    );
    // A list whose entry points outside memory, one with an offset entry.
    mem.write_obj(0x3000u64, GuestAddress(0x8000)).unwrap();
    mem.write_obj(MEM + 0x1000, GuestAddress(0x8008)).unwrap();
    assert_eq!(
        prp::segments(&mem, 0x1000, 0x8000, 3 * 4096),
        Err(Status::DATA_TRANSFER_ERROR)
    );
    mem.write_obj(0x4004u64, GuestAddress(0x8008)).unwrap();
    assert_eq!(
        prp::segments(&mem, 0x1000, 0x8000, 3 * 4096),
        Err(Status::INVALID_PRP_OFFSET)
    );
    // A list pointer outside memory.
    assert_eq!(
        prp::segments(&mem, 0x1000, MEM + 8, 3 * 4096),
        Err(Status::DATA_TRANSFER_ERROR)
    );
}

#[test]
fn prp_list_that_loops_ends() {
    let mem = memory();
    // A list page whose last entry points back at itself: 511 data pages
    // per pass, walked until the length is covered, never forever.
    for i in 0..511u64 {
        mem.write_obj(0x10000 + i * 0x1000 % 0x40000, GuestAddress(0x9000 + i * 8))
            .unwrap();
    }
    mem.write_obj(0x9000u64, GuestAddress(0x9000 + 511 * 8))
        .unwrap();
    let len = 1200 * 4096;
    let segs = prp::segments(&mem, 0x1000, 0x9000, len).unwrap();
    assert_eq!(segs.iter().map(|s| s.len).sum::<usize>(), len);
    // A list that starts at the last slot of its page can hold only the
    // pointer to the next list: pointing at itself must fail.
    mem.write_obj(0x9ff8u64 & !0xFFF, GuestAddress(0xAFF8))
        .unwrap();
    mem.write_obj(0xA000u64 + 0xFF8 - 0xFF8, GuestAddress(0xAFF8))
        .unwrap();
    assert!(prp::segments(&mem, 0x1000, 0xAFF8, 3 * 4096).is_err());
}

#[test]
fn msix_vectors_fire_eventfds() {
    let mut h = Host::new();
    // A plain file stands in for the eventfd: each signal appends the
    // 8-byte counter increment.
    let sink = tempfile::tempfile().unwrap();
    h.f.set_vectors(0, 1, vec![sink.try_clone().unwrap()]);
    h.enable();
    let (status, _) = h.admin(sqe(op("Identify"), 0, BUF, 1, 0));
    assert_eq!(status, 0);
    let mut b = Vec::new();
    let mut r = sink;
    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(0)).unwrap();
    r.read_to_end(&mut b).unwrap();
    assert_eq!(b, 1u64.to_ne_bytes(), "vector 0 signalled once");
}

#[test]
fn reset_with_a_command_in_flight_drops_its_completion() {
    let mut h = Host::new();
    h.enable();
    // Identify on the admin queue, taken by the executor but not finished
    // when the host clears CC.EN.
    let mut s = sqe(op("Identify"), 0, BUF, 1, 0);
    s[2] = 9;
    h.mem.write_slice(&s, GuestAddress(ASQ)).unwrap();
    h.f.bar_write(DOORBELLS, &1u32.to_le_bytes());
    let work = h.f.take_work().expect("the command is pending");
    h.f.bar_write(0x14, &0u32.to_le_bytes());
    let done = work.run();
    assert!(done.is_some());
    h.f.finish(&work, done);
    let dw3: u32 = h.mem.read_obj(GuestAddress(ACQ + 12)).unwrap();
    assert_eq!(
        dw3, 0,
        "no completion posted into the reset controller's queue"
    );
    assert_eq!(h.read32(0x1C) & 1, 0);
}

#[test]
fn odd_register_writes_change_nothing() {
    let mut h = Host::new();
    h.f.bar_write(0x14, &[1]); // one byte of CC
    h.f.bar_write(0x15, &1u32.to_le_bytes()); // misaligned dword
    h.f.bar_write(0x24, &[0xFF; 2]);
    assert_eq!(h.read32(0x14), 0);
    assert_eq!(h.read32(0x24), 0);
    // Doorbells before the controller is enabled: ignored, no panic.
    h.write32(DOORBELLS + 4, 3);
    assert_eq!(h.read32(0x1C), 0);
}

#[test]
fn a_full_completion_queue_holds_commands_back() {
    let mut h = Host::new();
    // Admin CQ of 2 entries: room for one completion at a time.
    h.write32(0x24, (1 << 16) | 15);
    h.write64(0x28, ASQ);
    h.write64(0x30, ACQ);
    h.write32(0x14, (4 << 20) | (6 << 16) | 1);
    for i in 0..2u16 {
        let mut s = sqe(op("Identify"), 0, BUF, 1, 0);
        s[2..4].copy_from_slice(&(i + 1).to_le_bytes());
        h.mem
            .write_slice(&s, GuestAddress(ASQ + u64::from(i) * 64))
            .unwrap();
    }
    h.write32(DOORBELLS, 2);
    let first: u32 = h.mem.read_obj(GuestAddress(ACQ + 12)).unwrap();
    let second: u32 = h.mem.read_obj(GuestAddress(ACQ + 16 + 12)).unwrap();
    assert_eq!(first & 0xFFFF, 1);
    assert_eq!(second, 0, "the CQ is full: command 2 waits");
    h.write32(DOORBELLS + 4, 1); // host consumed the first entry
    let second: u32 = h.mem.read_obj(GuestAddress(ACQ + 16 + 12)).unwrap();
    assert_eq!(second & 0xFFFF, 2);
}

/// Issue 15, finding 7, for this socket too: a file that is not a socket
/// is never deleted to make room; the socket is 0600.
#[test]
fn the_socket_replaces_no_other_file_and_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-socket");
    std::fs::write(&path, b"keep me").unwrap();
    let stats = Arc::new(crate::transport::nvme_tcp::FabricStats::new());
    assert!(super::start(&path, subsystem(&dir), Arc::clone(&stats)).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    let sock = dir.path().join("nvme.sock");
    super::start(&sock, subsystem(&dir), stats).unwrap();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

// ------------------------------------------------------ shadow doorbells

const SHADOW: u64 = 0x70000;
const EVENTIDX: u64 = 0x71000;
/// I/O CQ 1 of 2 entries at 0x30000, SQ 1 of 16 at 0x31000.
const IOCQ: u64 = 0x30000;
const IOSQ: u64 = 0x31000;

/// Identify Controller OACS (bytes 257:256).
fn oacs(h: &mut Host) -> u16 {
    assert_eq!(h.admin(sqe(op("Identify"), 0, BUF, 1, 0)).0, 0);
    h.mem.read_obj(GuestAddress(BUF + 256)).unwrap()
}

/// Enabled, Doorbell Buffer Config done, I/O CQ 1 (2 entries: room for
/// one completion) and SQ 1 (16 entries) created.
fn shadow_host() -> Host {
    let mut h = Host::new();
    h.enable();
    let mut c = sqe(op(DBBUF), 0, SHADOW, 0, 0);
    c[32..40].copy_from_slice(&EVENTIDX.to_le_bytes());
    assert_eq!(h.admin(c).0, 0);
    assert_eq!(h.create(CREATE_CQ, IOCQ, (1 << 16) | 1, 1 | 2), 0);
    assert_eq!(h.create(CREATE_SQ, IOSQ, (15 << 16) | 1, 1 | (1 << 16)), 0);
    h
}

fn shadow(h: &Host, qid: u64, cq: bool) -> u32 {
    let at = SHADOW + (2 * qid + u64::from(cq)) * 4;
    h.mem.read_obj(GuestAddress(at)).unwrap()
}

fn eventidx(h: &Host, qid: u64, cq: bool) -> u32 {
    let at = EVENTIDX + (2 * qid + u64::from(cq)) * 4;
    h.mem.read_obj(GuestAddress(at)).unwrap()
}

fn set_shadow(h: &Host, qid: u64, cq: bool, v: u32) {
    let at = SHADOW + (2 * qid + u64::from(cq)) * 4;
    h.mem.write_obj(v, GuestAddress(at)).unwrap();
}

/// A Flush on SQ 1 in slot `slot` with command identifier `cid`.
fn put_flush(h: &Host, slot: u64, cid: u16) {
    let mut s = sqe(op("Flush"), 1, 0, 0, 0);
    s[2..4].copy_from_slice(&cid.to_le_bytes());
    h.mem
        .write_slice(&s, GuestAddress(IOSQ + slot * 64))
        .unwrap();
}

fn cqe_cid(h: &Host, slot: u64) -> u32 {
    let dw3: u32 = h.mem.read_obj(GuestAddress(IOCQ + slot * 16 + 12)).unwrap();
    dw3 & 0xFFFF
}

#[test]
fn doorbell_buffer_config_is_advertised_and_checks_alignment() {
    let mut h = Host::new();
    h.enable();
    assert_eq!(oacs(&mut h) & (1 << 8), 1 << 8, "OACS bit 8");
    // PRP Entry 1 or 2 not page aligned: Invalid Field in Command.
    for (prp1, prp2) in [(SHADOW + 4, EVENTIDX), (SHADOW, EVENTIDX + 0x800)] {
        let mut c = sqe(op(DBBUF), 0, prp1, 0, 0);
        c[32..40].copy_from_slice(&prp2.to_le_bytes());
        assert_eq!(h.admin(c).0, st(Status::INVALID_FIELD));
    }
    // Without the option: not advertised, and the opcode is unknown.
    let dir = tempfile::tempdir().unwrap();
    let sub = subsystem_with(&dir, false);
    let mut h = Host::with(sub, dir);
    h.enable();
    assert_eq!(oacs(&mut h) & (1 << 8), 0);
    let mut c = sqe(op(DBBUF), 0, SHADOW, 0, 0);
    c[32..40].copy_from_slice(&EVENTIDX.to_le_bytes());
    assert_eq!(h.admin(c).0, st(Status::INVALID_OPCODE));
}

#[test]
fn shadow_tail_runs_commands_and_sets_event_idx() {
    let mut h = shadow_host();
    // The controller seeded the new queues' slots with its own values.
    assert_eq!((shadow(&h, 1, false), eventidx(&h, 1, false)), (0, 0));
    // The host writes SQE and shadow tail, and (EventIdx 0 in [0, 1)) rings.
    put_flush(&h, 0, 0x11);
    set_shadow(&h, 1, false, 1);
    h.write32(DOORBELLS + 8, 1);
    assert_eq!(cqe_cid(&h, 0), 0x11);
    assert_eq!(eventidx(&h, 1, false), 1, "EventIdx follows the tail read");
    // The host consumed the CQE: shadow head only (EventIdx of the CQ was
    // not raised, so it does not ring), then a new command with the shadow
    // tail only: the controller's next look finds it without a register
    // write.
    set_shadow(&h, 1, true, 1);
    put_flush(&h, 1, 0x12);
    set_shadow(&h, 1, false, 2);
    h.f.drain();
    assert_eq!(cqe_cid(&h, 1), 0x12, "run from the shadow tail");
    assert_eq!(eventidx(&h, 1, false), 2);
}

#[test]
fn full_cq_asks_for_the_head_and_reads_it_from_the_shadow() {
    let mut h = shadow_host();
    // A stale EventIdx the controller must replace when it needs room.
    h.mem
        .write_obj(0xABCDu32, GuestAddress(EVENTIDX + 12))
        .unwrap();
    put_flush(&h, 0, 0x21);
    put_flush(&h, 1, 0x22);
    set_shadow(&h, 1, false, 2);
    h.write32(DOORBELLS + 8, 2);
    assert_eq!(cqe_cid(&h, 0), 0x21);
    assert_eq!(cqe_cid(&h, 1), 0, "CQ of 2 is full: 0x22 waits");
    assert_eq!(eventidx(&h, 1, true), 0, "a doorbell asked for at head 0");
    // Host consumes entry 0: head 1 passes EventIdx 0, so it rings; the
    // shadow alone would do as well.
    set_shadow(&h, 1, true, 1);
    h.f.drain();
    assert_eq!(cqe_cid(&h, 1), 0x22);
}

#[test]
fn bad_shadow_values_are_one_error_event_each() {
    let mut h = shadow_host();
    let mut aer = sqe(op(AER), 0, 0, 0, 0);
    aer[2] = 0x77;
    let slot = u64::from(h.sq_tail);
    h.mem
        .write_slice(&aer, GuestAddress(ASQ + slot * 64))
        .unwrap();
    h.sq_tail += 1;
    h.write32(DOORBELLS, u32::from(h.sq_tail));
    set_shadow(&h, 1, false, 16); // SQ 1 has 16 entries
    h.f.drain();
    h.f.drain();
    let cqe = ACQ + u64::from(h.cq_head) * 16;
    let dw0: u32 = h.mem.read_obj(GuestAddress(cqe)).unwrap();
    let dw3: u32 = h.mem.read_obj(GuestAddress(cqe + 12)).unwrap();
    assert_eq!(dw3 & 0xFFFF, 0x77);
    assert_eq!(
        (dw0 & 7, (dw0 >> 8) & 0xFF),
        (0, 1),
        "Invalid Doorbell Write Value"
    );
    assert_eq!(cqe_cid(&h, 0), 0, "nothing ran");
    assert_eq!(h.read32(0x1C) & 2, 0, "not fatal");
}

#[test]
fn buffers_outside_guest_memory_are_fatal_not_a_panic() {
    let mut h = Host::new();
    h.enable();
    let mut c = sqe(op(DBBUF), 0, MEM + 0x1000, 0, 0);
    c[32..40].copy_from_slice(&EVENTIDX.to_le_bytes());
    assert_eq!(h.admin(c).0, 0);
    assert_eq!(h.create(CREATE_CQ, IOCQ, (1 << 16) | 1, 1 | 2), 0);
    let mut s = sqe(op(CREATE_SQ), 0, IOSQ, (15 << 16) | 1, 1 | (1 << 16));
    s[2..4].copy_from_slice(&0x99u16.to_le_bytes());
    let at = ASQ + u64::from(h.sq_tail) * 64;
    h.mem.write_slice(&s, GuestAddress(at)).unwrap();
    h.write32(DOORBELLS, u32::from(h.sq_tail) + 1);
    assert_eq!(h.read32(0x1C) & 2, 2, "CSTS.CFS");
}
