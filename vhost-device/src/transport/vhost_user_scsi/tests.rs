//! Virtqueue tests: descriptor chains built with virtio-queue's
//! `MockSplitQueue` in a `GuestMemoryMmap`, run through the same
//! `handle_event` path the vring workers use, against a real [`Target`] over
//! a temporary backing file. What the target answers is checked against the
//! target itself driven with byte vectors (the oracle), so these tests pin
//! the transport, not the SCSI command set.

use std::{io::Write, sync::Arc};

use tempfile::TempDir;
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::{
    desc::{split::Descriptor, RawDescriptor},
    mock::MockSplitQueue,
};
use vm_memory::{Address, Bytes, GuestAddress, GuestAddressSpace, GuestMemoryAtomic};
use vmm_sys_util::epoll::EventSet;

use super::*;
use crate::transport::virtio_scsi::{AN_REQ_SIZE, TMF_REQ_SIZE};
use crate::{
    scsi::{Request, Target},
    storage::{Device, DeviceConfig},
    transport::virtio_scsi::CDB_SIZE,
};

const QUEUE_SIZE: u16 = 16;
const MEM_SIZE: usize = 0x40_0000;
const REQ: u64 = 0x10_0000;
const RESP: u64 = 0x20_0000;
const DATA: u64 = 0x30_0000;
const INDIRECT: u64 = 0x38_0000;
/// Outside guest memory.
const BAD: u64 = 0x1000_0000;

struct Rig {
    mem: GuestMemoryAtomic<GuestMemory>,
    /// Descriptor table, available ring and used ring addresses.
    rings: (GuestAddress, GuestAddress, GuestAddress),
    backend: ScsiBackend,
    vring: VringRwLock,
    target: Arc<Target>,
    _dir: TempDir,
}

fn desc(addr: u64, len: u32, writable: bool) -> RawDescriptor {
    let flags = if writable {
        VRING_DESC_F_WRITE as u16
    } else {
        0
    };
    RawDescriptor::from(Descriptor::new(addr, len, flags, 0))
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let dev = Device::open(&DeviceConfig {
            path: dir.path().join("lun0.img"),
            size: 1 << 20,
            block_size: 4096,
            zoned: None,
        })
        .unwrap();
        let target = Arc::new(Target::new(vec![Arc::new(dev)]));
        let mem = GuestMemoryAtomic::new(
            GuestMemory::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap(),
        );
        let backend = ScsiBackend::new(target.clone(), 1, mem.clone());
        let vring = VringRwLock::new(mem.clone(), QUEUE_SIZE).unwrap();
        // The mock lays the rings out (and zeroes them) once; chains are
        // added below without it, since every new mock zeroes the rings.
        let rings = {
            let m = mem.memory();
            let q = MockSplitQueue::new(&*m, QUEUE_SIZE);
            (q.desc_table_addr(), q.avail_addr(), q.used_addr())
        };
        vring.set_queue_size(QUEUE_SIZE);
        vring
            .set_queue_info(rings.0 .0, rings.1 .0, rings.2 .0)
            .unwrap();
        vring.set_queue_ready(true);
        vring.set_enabled(true);
        Rig {
            mem,
            rings,
            backend,
            vring,
            target,
            _dir: dir,
        }
    }

    /// Put one chain at descriptor table index `at` (NEXT links filled in)
    /// on the available ring.
    fn push(&self, descs: &[RawDescriptor], at: u16) {
        let linked: Vec<RawDescriptor> = descs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let d = Descriptor::from(*d);
                let last = i + 1 == descs.len();
                let i = u16::try_from(i).unwrap();
                let flags = if last {
                    d.flags() & !(VRING_DESC_F_NEXT as u16)
                } else {
                    d.flags() | VRING_DESC_F_NEXT as u16
                };
                RawDescriptor::from(Descriptor::new(
                    d.addr().0,
                    d.len(),
                    flags,
                    if last { 0 } else { at + i + 1 },
                ))
            })
            .collect();
        self.push_raw(&linked, at);
    }

    /// Put descriptors as given (flags and next untouched) at table
    /// index `at`, and `at` on the available ring (2.7.6, 2.7.13).
    fn push_raw(&self, descs: &[RawDescriptor], at: u16) {
        let m = self.mem.memory();
        let (table, avail, _) = self.rings;
        for (i, d) in descs.iter().enumerate() {
            let slot = u64::from(at) + i as u64;
            m.write_obj(*d, table.unchecked_add(16 * slot)).unwrap();
        }
        let idx = m.read_obj::<u16>(avail.unchecked_add(2)).unwrap();
        let entry = 4 + 2 * u64::from(idx % QUEUE_SIZE);
        m.write_obj(at, avail.unchecked_add(entry)).unwrap();
        m.write_obj(idx.wrapping_add(1), avail.unchecked_add(2))
            .unwrap();
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        self.mem
            .memory()
            .write_slice(bytes, GuestAddress(addr))
            .unwrap();
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem
            .memory()
            .read_slice(&mut v, GuestAddress(addr))
            .unwrap();
        v
    }

    /// Kick the request queue the way its worker (thread 1) is kicked.
    fn kick_request_queue(&self) {
        self.backend
            .handle_event(0, EventSet::IN, std::slice::from_ref(&self.vring), 1)
            .unwrap();
    }

    /// Kick the vring as the control queue (thread 0, event 0).
    fn kick_control_queue(&self) {
        let event = VringRwLock::new(self.mem.clone(), QUEUE_SIZE).unwrap();
        self.backend
            .handle_event(0, EventSet::IN, &[self.vring.clone(), event], 0)
            .unwrap();
    }

    fn used_addr(&self) -> GuestAddress {
        self.rings.2
    }

    fn used_idx(&self) -> u16 {
        self.mem
            .memory()
            .read_obj::<u16>(self.used_addr().unchecked_add(2))
            .unwrap()
    }

    /// (descriptor head, length) of used ring entry `i`.
    fn used(&self, i: u64) -> (u32, u32) {
        let m = self.mem.memory();
        let base = self.used_addr().unchecked_add(4 + 8 * i);
        (
            m.read_obj::<u32>(base).unwrap(),
            m.read_obj::<u32>(base.unchecked_add(4)).unwrap(),
        )
    }
}

fn cmd_req(lun: [u8; 8], cdb: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; CMD_REQ_SIZE];
    b[..8].copy_from_slice(&lun);
    b[8..16].copy_from_slice(&0x1234u64.to_le_bytes());
    b[19..19 + cdb.len()].copy_from_slice(cdb);
    b
}

/// The decoded command response header.
#[derive(Debug, PartialEq, Eq)]
struct Resp {
    sense_len: u32,
    residual: u32,
    status_qualifier: u16,
    status: u8,
    response: u8,
    sense: Vec<u8>,
}

fn parse_resp(b: &[u8]) -> Resp {
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let sense_len = u32_at(0);
    Resp {
        sense_len,
        residual: u32_at(4),
        status_qualifier: u16::from_le_bytes([b[8], b[9]]),
        status: b[10],
        response: b[11],
        sense: b[12..12 + (sense_len as usize).min(96)].to_vec(),
    }
}

/// A data-in buffer of `cap` bytes, as the transport gives the target.
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    overrun: bool,
}

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = b.len().min(self.cap - self.buf.len());
        self.overrun |= n < b.len();
        self.buf.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run `cdb` on the target directly: (response, data-in bytes, overrun).
fn oracle(
    target: &Target,
    lun: u16,
    cdb: &[u8],
    data_out: &[u8],
    cap: usize,
) -> (scsi::Response, Vec<u8>, bool) {
    let mut full = [0u8; CDB_SIZE];
    full[..cdb.len()].copy_from_slice(cdb);
    let mut out = data_out;
    let mut din = Capped {
        buf: Vec::new(),
        cap,
        overrun: false,
    };
    let r = target.execute(Request {
        lun,
        cdb: &full,
        data_out: &mut out,
        data_in: &mut din,
        data_in_len: u32::try_from(cap).unwrap(),
        direct: None,
    });
    (r, din.buf, din.overrun)
}

fn expect_oracle(rig: &Rig, cdb: &[u8], resp: &Resp, data_in: &[u8], cap: usize) {
    let (want, want_data, overrun) = oracle(&rig.target, 0, cdb, &[], cap);
    let sense_len = want.sense.len().min(96);
    assert_eq!(
        resp,
        &Resp {
            sense_len: u32::try_from(sense_len).unwrap(),
            residual: u32::try_from(cap - want_data.len()).unwrap(),
            status_qualifier: 0,
            status: want.status as u8,
            response: if overrun { 1 } else { 0 },
            sense: want.sense[..sense_len].to_vec(),
        }
    );
    assert_eq!(&data_in[..want_data.len()], &want_data[..]);
}

const LUN0: [u8; 8] = [1, 0, 0x40, 0, 0, 0, 0, 0];
const INQUIRY_36: [u8; 6] = [0x12, 0, 0, 0, 36, 0];
const TEST_UNIT_READY: [u8; 6] = [0; 6];

#[test]
fn inquiry_through_the_request_queue() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &INQUIRY_36));
    // Response header and data-in split at an odd place: 100 + 8 + 36.
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, 100, true),
            desc(DATA, 44, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 1);
    let (head, len) = rig.used(0);
    assert_eq!(head, 0);
    let mut resp_bytes = rig.read(RESP, 100);
    resp_bytes.extend(rig.read(DATA, 44));
    let resp = parse_resp(&resp_bytes[..CMD_RESP_SIZE]);
    assert_eq!(resp.response, 0, "VIRTIO_SCSI_S_OK");
    let data_in = &resp_bytes[CMD_RESP_SIZE..];
    expect_oracle(&rig, &INQUIRY_36, &resp, data_in, 36);
    assert_eq!(len as usize, CMD_RESP_SIZE + 36 - resp.residual as usize);
}

#[test]
fn test_unit_ready_without_data() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    expect_oracle(&rig, &TEST_UNIT_READY, &resp, &[], 0);
}

#[test]
fn data_out_residual_counts_what_the_target_did_not_read() {
    // WRITE(10) of one 4096-byte block, with 100 spare bytes of data-out.
    let rig = Rig::new();
    let cdb = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let payload = vec![0x5a; 4096 + 100];
    rig.write(REQ, &cmd_req(LUN0, &cdb));
    rig.write(DATA, &payload);
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(DATA, 4096 + 100, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    // The oracle: the same command from a byte slice, counting what the
    // target consumed.
    let mut full = [0u8; CDB_SIZE];
    full[..cdb.len()].copy_from_slice(&cdb);
    let mut rest: &[u8] = &payload;
    let want = rig.target.execute(Request {
        lun: 0,
        cdb: &full,
        data_out: &mut rest,
        data_in: &mut std::io::sink(),
        data_in_len: 0,
        direct: None,
    });
    assert_eq!(resp.response, 0);
    assert_eq!(resp.status, want.status as u8);
    assert_eq!(resp.residual, u32::try_from(rest.len()).unwrap());
}

/// READ and WRITE move their blocks straight between the file and guest
/// memory: data sharing a descriptor with a header, split over
/// descriptors, with spare bytes counted as residual (5.6.6.1).
#[test]
fn blocks_cross_descriptor_and_header_boundaries() {
    let rig = Rig::new();
    let payload: Vec<u8> = (0..8192u32).map(|i| (i % 253) as u8).collect();
    // WRITE(10) of LBA 1-2: the first 1000 data-out bytes follow the
    // header in its descriptor, the rest and 50 spare bytes in another.
    let mut req = cmd_req(LUN0, &[0x2a, 0, 0, 0, 0, 1, 0, 0, 2, 0]);
    req.extend_from_slice(&payload[..1000]);
    rig.write(REQ, &req);
    rig.write(DATA, &payload[1000..]);
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32 + 1000, false),
            desc(DATA, 7192 + 50, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
        ],
        0,
    );
    rig.kick_request_queue();
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    assert_eq!((resp.status, resp.response, resp.residual), (0, 0, 50));
    // READ(10) of the same blocks: 3000 data-in bytes after the response
    // header in its descriptor, the rest and 8 spare bytes in another.
    let data2 = DATA + 0x4000;
    rig.write(REQ, &cmd_req(LUN0, &[0x28, 0, 0, 0, 0, 1, 0, 0, 2, 0]));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32 + 3000, true),
            desc(data2, 5192 + 8, true),
        ],
        3,
    );
    rig.kick_request_queue();
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    assert_eq!((resp.status, resp.response, resp.residual), (0, 0, 8));
    assert_eq!(rig.used(1), (3, CMD_RESP_SIZE as u32 + 8192));
    let mut got = rig.read(RESP + CMD_RESP_SIZE as u64, 3000);
    got.extend(rig.read(data2, 5192));
    assert_eq!(got, payload);
}

#[test]
fn several_chains_in_one_kick() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    for i in 0..3u16 {
        rig.push(
            &[
                desc(REQ, CMD_REQ_SIZE as u32, false),
                desc(RESP + u64::from(i) * 0x1000, CMD_RESP_SIZE as u32, true),
            ],
            2 * i,
        );
    }
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 3);
    for i in 0..3 {
        assert_eq!(rig.used(i), (2 * i as u32, CMD_RESP_SIZE as u32));
    }
}

fn bad_target_case(lun: [u8; 8]) {
    let rig = Rig::new();
    rig.write(RESP, &[0xaa; CMD_RESP_SIZE]);
    rig.write(REQ, &cmd_req(lun, &INQUIRY_36));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
            desc(DATA, 36, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    assert_eq!(
        resp,
        Resp {
            sense_len: 0,
            residual: 36,
            status_qualifier: 0,
            status: 0,
            response: 3, // VIRTIO_SCSI_S_BAD_TARGET
            sense: vec![],
        }
    );
}

#[test]
fn other_target_is_bad_target() {
    bad_target_case([1, 1, 0x40, 0, 0, 0, 0, 0]);
}

#[test]
fn malformed_lun_is_bad_target() {
    bad_target_case([0, 0, 0x40, 0, 0, 0, 0, 0]);
    bad_target_case([1, 0, 0xc1, 0x01, 0, 0, 0, 0]);
}

fn expect_failure(rig: &Rig, residual: u32) {
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    assert_eq!(resp.response, 9, "VIRTIO_SCSI_S_FAILURE");
    assert_eq!(resp.residual, residual);
    assert_eq!(resp.sense_len, 0);
}

#[test]
fn truncated_header_is_failure() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &INQUIRY_36));
    rig.push(
        &[desc(REQ, 20, false), desc(RESP, CMD_RESP_SIZE as u32, true)],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    expect_failure(&rig, 0);
}

#[test]
fn header_split_over_descriptors_is_fine() {
    let rig = Rig::new();
    let req = cmd_req(LUN0, &TEST_UNIT_READY);
    rig.write(REQ, &req[..7]);
    rig.write(REQ + 0x1000, &req[7..]);
    rig.push(
        &[
            desc(REQ, 7, false),
            desc(REQ + 0x1000, (CMD_REQ_SIZE - 7) as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
        ],
        0,
    );
    rig.kick_request_queue();
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    expect_oracle(&rig, &TEST_UNIT_READY, &resp, &[], 0);
}

#[test]
fn response_area_too_small_is_returned_unwritten() {
    let rig = Rig::new();
    rig.write(RESP, &[0xaa; CMD_RESP_SIZE]);
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32 - 1, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 1);
    assert_eq!(rig.used(0), (0, 0));
    assert_eq!(rig.read(RESP, CMD_RESP_SIZE), vec![0xaa; CMD_RESP_SIZE]);
}

#[test]
fn data_in_smaller_than_the_command_wants() {
    // INQUIRY with an allocation length of 96 into an 8-byte buffer: the
    // target sees data_in_len 8; whatever it does, the transport reports
    // what reached the buffer and OVERRUN if the target wanted more.
    let rig = Rig::new();
    let cdb = [0x12, 0, 0, 0, 96, 0];
    rig.write(REQ, &cmd_req(LUN0, &cdb));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
            desc(DATA, 8, true),
        ],
        0,
    );
    rig.kick_request_queue();
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    expect_oracle(&rig, &cdb, &resp, &rig.read(DATA, 8), 8);
    let (_, len) = rig.used(0);
    assert_eq!(len, CMD_RESP_SIZE as u32 + 8 - resp.residual);
}

#[test]
fn request_outside_guest_memory_is_failure() {
    let rig = Rig::new();
    rig.push(
        &[
            desc(BAD, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
            desc(DATA, 36, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    expect_failure(&rig, 36);
}

#[test]
fn data_in_outside_guest_memory_still_gets_a_response() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &INQUIRY_36));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(RESP, CMD_RESP_SIZE as u32, true),
            desc(BAD, 36, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    expect_failure(&rig, 0);
}

#[test]
fn response_outside_guest_memory_is_returned_with_len_0() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &INQUIRY_36));
    rig.push(
        &[
            desc(REQ, CMD_REQ_SIZE as u32, false),
            desc(BAD, CMD_RESP_SIZE as u32, true),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 1);
    assert_eq!(rig.used(0), (0, 0));
}

#[test]
fn writable_before_readable_is_failure() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    rig.push(
        &[
            desc(RESP, CMD_RESP_SIZE as u32, true),
            desc(REQ, CMD_REQ_SIZE as u32, false),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, CMD_RESP_SIZE as u32));
    expect_failure(&rig, 0);
}

#[test]
fn broken_chain_is_returned_with_len_0() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    // NEXT points past the end of the descriptor table.
    rig.push_raw(
        &[RawDescriptor::from(Descriptor::new(
            REQ,
            CMD_REQ_SIZE as u32,
            VRING_DESC_F_NEXT as u16,
            200,
        ))],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used(0), (0, 0));
}

#[test]
fn looping_chain_is_returned_with_len_0() {
    let rig = Rig::new();
    rig.push_raw(
        &[
            RawDescriptor::from(Descriptor::new(REQ, 8, VRING_DESC_F_NEXT as u16, 1)),
            RawDescriptor::from(Descriptor::new(REQ, 8, VRING_DESC_F_NEXT as u16, 0)),
        ],
        0,
    );
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 1);
    assert_eq!(rig.used(0), (0, 0));
}

#[test]
fn indirect_chain() {
    let rig = Rig::new();
    rig.write(REQ, &cmd_req(LUN0, &INQUIRY_36));
    // Indirect table: request, response, data-in.
    let table = [
        Descriptor::new(REQ, CMD_REQ_SIZE as u32, VRING_DESC_F_NEXT as u16, 1),
        Descriptor::new(
            RESP,
            CMD_RESP_SIZE as u32,
            (VRING_DESC_F_NEXT | VRING_DESC_F_WRITE) as u16,
            2,
        ),
        Descriptor::new(DATA, 36, VRING_DESC_F_WRITE as u16, 0),
    ];
    let m = rig.mem.memory();
    for (i, d) in table.iter().enumerate() {
        m.write_obj(
            RawDescriptor::from(*d),
            GuestAddress(INDIRECT + 16 * i as u64),
        )
        .unwrap();
    }
    drop(m);
    rig.push_raw(
        &[RawDescriptor::from(Descriptor::new(
            INDIRECT,
            16 * 3,
            VRING_DESC_F_INDIRECT as u16,
            0,
        ))],
        0,
    );
    rig.kick_request_queue();
    let resp = parse_resp(&rig.read(RESP, CMD_RESP_SIZE));
    assert_eq!(resp.response, 0);
    expect_oracle(&rig, &INQUIRY_36, &resp, &rig.read(DATA, 36), 36);
}

fn tmf(subtype: u32, lun: [u8; 8]) -> Vec<u8> {
    let mut b = vec![0u8; TMF_REQ_SIZE];
    b[4..8].copy_from_slice(&subtype.to_le_bytes());
    b[8..16].copy_from_slice(&lun);
    b[16..24].copy_from_slice(&7u64.to_le_bytes());
    b
}

fn control(rig: &Rig, req: &[u8], resp_len: u32) -> (u32, Vec<u8>) {
    rig.write(REQ, req);
    rig.write(RESP, &[0xaa; 8]);
    let at = (rig.used_idx() * 2) % QUEUE_SIZE;
    rig.push(
        &[
            desc(REQ, u32::try_from(req.len()).unwrap(), false),
            desc(RESP, resp_len, true),
        ],
        at,
    );
    rig.kick_control_queue();
    let (_, len) = rig.used(u64::from(rig.used_idx() - 1));
    (len, rig.read(RESP, resp_len as usize))
}

#[test]
fn task_management_functions() {
    let rig = Rig::new();
    // LOGICAL UNIT RESET, LUN 0: FUNCTION COMPLETE.
    assert_eq!(control(&rig, &tmf(5, LUN0), 1), (1, vec![0]));
    // ABORT TASK: nothing outstanding, FUNCTION COMPLETE.
    assert_eq!(control(&rig, &tmf(0, LUN0), 1), (1, vec![0]));
    // I_T NEXUS RESET.
    assert_eq!(control(&rig, &tmf(4, LUN0), 1), (1, vec![0]));
    // CLEAR ACA: FUNCTION REJECTED.
    assert_eq!(control(&rig, &tmf(2, LUN0), 1), (1, vec![11]));
    // Unknown subtype: FUNCTION REJECTED.
    assert_eq!(control(&rig, &tmf(99, LUN0), 1), (1, vec![11]));
    // A LUN the target lacks: INCORRECT LUN.
    assert_eq!(
        control(&rig, &tmf(5, [1, 0, 0x40, 5, 0, 0, 0, 0]), 1),
        (1, vec![12])
    );
    // Another target: BAD TARGET.
    assert_eq!(
        control(&rig, &tmf(5, [1, 3, 0x40, 0, 0, 0, 0, 0]), 1),
        (1, vec![3])
    );
    // Truncated TMF request: FAILURE.
    assert_eq!(control(&rig, &tmf(5, LUN0)[..10], 1), (1, vec![9]));
    // No room for the response: returned unwritten.
    let (len, _) = control(&rig, &tmf(5, LUN0), 0);
    assert_eq!(len, 0);
}

#[test]
fn asynchronous_notification_requests() {
    let rig = Rig::new();
    for ty in [1u32, 2] {
        let mut req = vec![0u8; AN_REQ_SIZE];
        req[..4].copy_from_slice(&ty.to_le_bytes());
        req[4..12].copy_from_slice(&LUN0);
        req[12..16].copy_from_slice(&0x7eu32.to_le_bytes());
        // event_actual 0, VIRTIO_SCSI_S_OK.
        assert_eq!(control(&rig, &req, 5), (5, vec![0, 0, 0, 0, 0]));
    }
    // Unknown control type: returned unwritten.
    let (len, resp) = control(&rig, &[9, 0, 0, 0, 0, 0, 0, 0], 5);
    assert_eq!(len, 0);
    assert_eq!(resp, vec![0xaa; 5]);
}

#[test]
fn event_queue_buffers_are_kept() {
    let rig = Rig::new();
    rig.push(&[desc(DATA, 16, true)], 0);
    // Thread 0, event 1 is the event queue.
    rig.backend
        .handle_event(
            1,
            EventSet::IN,
            &[
                VringRwLock::new(rig.mem.clone(), QUEUE_SIZE).unwrap(),
                rig.vring.clone(),
            ],
            0,
        )
        .unwrap();
    assert_eq!(rig.used_idx(), 0);
}

#[test]
fn event_idx_processes_chains_and_keeps_going() {
    let rig = Rig::new();
    rig.vring.set_queue_event_idx(true);
    rig.write(REQ, &cmd_req(LUN0, &TEST_UNIT_READY));
    for i in 0..4u16 {
        rig.push(
            &[
                desc(REQ, CMD_REQ_SIZE as u32, false),
                desc(RESP, CMD_RESP_SIZE as u32, true),
            ],
            2 * i,
        );
    }
    rig.kick_request_queue();
    assert_eq!(rig.used_idx(), 4);
    // The driver's avail_event was advanced: next kick point is index 4.
    let m = rig.mem.memory();
    let used = rig.used_addr();
    let avail_event = m
        .read_obj::<u16>(used.unchecked_add(4 + 8 * u64::from(QUEUE_SIZE)))
        .unwrap();
    assert_eq!(avail_event, 4);
}

#[test]
fn queue_threads() {
    let rig = Rig::new();
    let b = ScsiBackend::new(rig.target.clone(), 3, rig.mem.clone());
    assert_eq!(b.num_queues(), 5);
    assert_eq!(b.queues_per_thread(), vec![0b11, 0b100, 0b1000, 0b1_0000]);
    assert_eq!(b.queue_index(0, 0), Some(CONTROL_QUEUE));
    assert_eq!(b.queue_index(0, 1), Some(EVENT_QUEUE));
    assert_eq!(b.queue_index(0, 2), None);
    assert_eq!(b.queue_index(1, 0), Some(2));
    assert_eq!(b.queue_index(3, 0), Some(4));
    assert_eq!(b.queue_index(3, 1), None);
    assert_eq!(b.queue_index(4, 0), None);
    // Unknown events are ignored, not errors that would end a worker.
    assert!(b.handle_event(5, EventSet::IN, &[], 0).is_ok());
    b.stop_vring(2).unwrap();
    b.stop_vring(99).unwrap();
    assert_eq!(
        ScsiBackend::new(rig.target.clone(), 0, rig.mem.clone()).num_queues(),
        3
    );
    assert_eq!(
        ScsiBackend::new(rig.target.clone(), 1000, rig.mem.clone()).num_queues(),
        64
    );
}

#[test]
fn features_include_what_qemu_sends() {
    let rig = Rig::new();
    let f = rig.backend.features();
    for bit in [
        VIRTIO_F_VERSION_1,
        VIRTIO_RING_F_INDIRECT_DESC,
        VIRTIO_RING_F_EVENT_IDX,
        VIRTIO_SCSI_F_CHANGE,
    ] {
        assert_ne!(f & (1 << bit), 0, "bit {bit}");
    }
    // QEMU 10.0 acknowledged 0x170000004 in the end-to-end boot.
    assert_eq!(0x1_7000_0004 & !f, 0);
}

mod random {
    use proptest::prelude::*;

    use super::*;

    fn any_desc() -> impl Strategy<Value = (u64, u32, u16, u16)> {
        (
            prop_oneof![
                Just(REQ),
                Just(RESP),
                Just(DATA),
                Just(BAD),
                Just(MEM_SIZE as u64 - 8),
                0u64..(MEM_SIZE as u64 * 2),
            ],
            prop_oneof![
                0u32..200,
                Just(CMD_REQ_SIZE as u32),
                Just(CMD_RESP_SIZE as u32)
            ],
            0u16..8,
            0u16..20,
        )
    }

    proptest! {
        #![proptest_config(crate::testing::cases(256))]

        /// Whatever the guest puts on the queues, the backend neither
        /// panics nor reports more used bytes than the chain could hold.
        #[test]
        fn random_chains_never_panic(
            descs in proptest::collection::vec(any_desc(), 1..6),
            header in proptest::collection::vec(any::<u8>(), CMD_REQ_SIZE),
            control_queue in any::<bool>(),
        ) {
            let rig = Rig::new();
            rig.write(REQ, &header);
            let raw: Vec<RawDescriptor> = descs
                .iter()
                .map(|&(addr, len, flags, next)| {
                    RawDescriptor::from(Descriptor::new(addr, len, flags, next))
                })
                .collect();
            rig.push_raw(&raw, 0);
            if control_queue {
                rig.kick_control_queue();
            } else {
                rig.kick_request_queue();
            }
            prop_assert_eq!(rig.used_idx(), 1);
            let (head, len) = rig.used(0);
            prop_assert_eq!(head, 0);
            // Without indirect tables (whose contents are random memory),
            // the used length is bounded by the device-writable bytes.
            let indirect = descs.iter().any(|d| d.2 & VRING_DESC_F_INDIRECT as u16 != 0);
            let writable: u64 = descs
                .iter()
                .filter(|d| d.2 & VRING_DESC_F_WRITE as u16 != 0)
                .map(|d| u64::from(d.1))
                .sum();
            prop_assert!(indirect || u64::from(len) <= writable);
        }
    }
}

mod inflight;

mod notify;
