//! VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD over the wire, against the real
//! binary: GET_INFLIGHT_FD and SET_INFLIGHT_FD reach the backend (through
//! the patched vhost-user-backend copy), and a new call fd on a running
//! ring is signalled (the other patch: QEMU unmasks a reconnected
//! backend's rings only after they run).

use std::{
    os::{fd::AsRawFd, unix::fs::FileExt},
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use vhost::{
    vhost_user::{
        message::VhostUserInflight, Frontend, VhostUserFrontend, VhostUserProtocolFeatures,
    },
    VhostBackend, VhostUserMemoryRegionInfo, VringConfigData,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Kills the backend (by PID) however the test ends.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> (Backend, std::path::PathBuf) {
    let socket = dir.join("s.sock");
    let lun = format!("kind=disk,file={},size=1M", dir.join("d.img").display());
    let child = Command::new(env!("CARGO_BIN_EXE_zonecopy-vhost"))
        .arg("--socket")
        .arg(&socket)
        .args(["--lun", &lun])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start zonecopy-vhost");
    let mut b = Backend(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Ok(Some(s)) = b.0.try_wait() {
            panic!("backend exited early: {s}");
        }
        assert!(Instant::now() < deadline, "no socket");
        thread::sleep(Duration::from_millis(20));
    }
    (b, socket)
}

const QUEUE_SIZE: u16 = 16;
const MEM: u64 = 0x10000;
/// Where the frontend claims guest memory is mapped (only a key here).
const VA: u64 = 0x7f00_0000_0000;

#[test]
fn inflight_messages_and_a_new_call_fd_on_a_running_ring() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, socket) = start(dir.path());
    let mut fe = Frontend::connect(&socket, 3).expect("connect");
    fe.set_owner().unwrap();
    let features = fe.get_features().unwrap();
    fe.set_features(features).unwrap();
    let protocol = fe.get_protocol_features().unwrap();
    assert!(protocol.contains(VhostUserProtocolFeatures::INFLIGHT_SHMFD));
    fe.set_protocol_features(protocol).unwrap();

    // GET_INFLIGHT_FD: 3 queues of 16 -> 3 x (16 + 16 x 16, rounded to 64).
    let (reply, region) = fe
        .get_inflight_fd(&VhostUserInflight::new(0, 0, 3, QUEUE_SIZE))
        .expect("GET_INFLIGHT_FD");
    assert_eq!(reply.mmap_size, 3 * 320);
    let mut header = [0u8; 16];
    region.read_exact_at(&mut header, 320).unwrap();
    assert_eq!(header, [0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 16, 0, 0, 0, 0, 0]);
    fe.set_inflight_fd(&reply, region.as_raw_fd())
        .expect("SET_INFLIGHT_FD");

    // Guest memory and request queue 2, running.
    let mem = tempfile::tempfile().unwrap();
    mem.set_len(MEM).unwrap();
    fe.set_mem_table(&[VhostUserMemoryRegionInfo {
        guest_phys_addr: 0,
        memory_size: MEM,
        userspace_addr: VA,
        mmap_offset: 0,
        mmap_handle: mem.as_raw_fd(),
    }])
    .unwrap();
    fe.set_vring_num(2, QUEUE_SIZE).unwrap();
    fe.set_vring_addr(
        2,
        &VringConfigData {
            queue_max_size: QUEUE_SIZE,
            queue_size: QUEUE_SIZE,
            flags: 0,
            desc_table_addr: VA,
            avail_ring_addr: VA + 0x1000,
            used_ring_addr: VA + 0x2000,
            log_addr: None,
        },
    )
    .unwrap();
    fe.set_vring_base(2, 0).unwrap();
    let kick = EventFd::new(EFD_NONBLOCK).unwrap();
    let first = EventFd::new(EFD_NONBLOCK).unwrap();
    fe.set_vring_kick(2, &kick).unwrap();
    fe.set_vring_call(2, &first).unwrap();
    fe.set_vring_enable(2, true).unwrap();

    // A new call fd while the ring runs is signalled once.
    let second = EventFd::new(EFD_NONBLOCK).unwrap();
    fe.set_vring_call(2, &second).unwrap();
    // Messages without REPLY_ACK are not waited for: poll.
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        match second.read() {
            Ok(n) => break n,
            Err(e) if Instant::now() >= deadline => {
                panic!("the new call fd was not signalled: {e}")
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    };
    assert_eq!(got, 1);
}
