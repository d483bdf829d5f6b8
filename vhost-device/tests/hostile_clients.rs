//! Hostile clients against the real binary (issue 15): running out of file
//! descriptors must neither spin a core nor flood the log, and the backend
//! must serve again once descriptors are free.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

/// Kills the backend (by PID) however the test ends.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User plus system CPU time of `pid`, in clock ticks (/proc/PID/stat
/// fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split(' ').collect();
    // after_comm starts at field 3 (state): utime is field 14, stime 15.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// An NVMe/TCP ICReq (NVMe/TCP 1.1, 3.6.2.2): 128 bytes, PFV 0, no digests.
fn icreq() -> [u8; 128] {
    let mut p = [0u8; 128];
    p[0] = 0x00; // PDU type ICReq
    p[2] = 128; // HLEN
    p[4..8].copy_from_slice(&128u32.to_le_bytes()); // PLEN
    p
}

/// Resident set size of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Start the backend serving one 16 MiB namespace on a free loopback port;
/// returns it and the address.
fn nvme_backend(dir: &std::path::Path, wrapper: &[&str]) -> (Backend, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let ns = format!("kind=nvm,file={},size=16M", dir.join("n.img").display());
    let (prog, pre) = match wrapper.split_first() {
        Some((p, rest)) => (p.to_string(), rest.to_vec()),
        None => (env!("CARGO_BIN_EXE_zonecopy-vhost").to_owned(), vec![]),
    };
    let mut cmd = Command::new(prog);
    cmd.args(pre);
    if !wrapper.is_empty() {
        cmd.arg(env!("CARGO_BIN_EXE_zonecopy-vhost"));
    }
    let child = cmd
        .args(["--nvme-tcp", &addr, "--ns", &ns])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start zonecopy-vhost");
    let backend = Backend(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "backend never listened");
        thread::sleep(Duration::from_millis(20));
    }
    (backend, addr)
}

/// A Fabrics Connect capsule for the admin queue with its 1024 bytes of
/// data in the capsule (NVMe Base 2.1, 6.3; NVMe/TCP 1.1, 3.6.2.5).
fn connect_capsule(sgl_len: u32, with_data: bool) -> Vec<u8> {
    let mut sqe = [0u8; 64];
    sqe[0] = 0x7f; // Fabrics
    sqe[1] = 0x40; // SGL
    sqe[4] = 0x01; // Connect
    sqe[32..36].copy_from_slice(&sgl_len.to_le_bytes());
    sqe[39] = if with_data { 0x01 } else { 0x5a };
    sqe[44..46].copy_from_slice(&31u16.to_le_bytes()); // SQSIZE
    sqe[48..52].copy_from_slice(&30_000u32.to_le_bytes()); // KATO
    let mut data = Vec::new();
    if with_data {
        data = vec![0u8; 1024];
        data[16..18].copy_from_slice(&0xffffu16.to_le_bytes());
        let sub = b"nqn.2026-11.dev.zonecopy:sub0";
        data[256..256 + sub.len()].copy_from_slice(sub);
        let host = b"nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-00000000abcd";
        data[512..512 + host.len()].copy_from_slice(host);
    }
    let mut pdu = Vec::new();
    zonecopy_vhost::transport::nvme_tcp::pdu::encode_capsule_cmd(
        &mut pdu,
        &zonecopy_vhost::nvme::Sqe(sqe),
        &data,
        Default::default(),
    );
    pdu
}

/// A well-formed host: ICReq, then Connect; whether the Connect
/// completed with status 0.
fn well_formed_host(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut resp = [0u8; 128];
    if s.write_all(&icreq()).is_err() || s.read_exact(&mut resp).is_err() || resp[0] != 0x01 {
        return false;
    }
    if s.write_all(&connect_capsule(1024, true)).is_err() {
        return false;
    }
    // CapsuleResp: 8-byte common header, then the 16-byte CQE; status in
    // CQE bytes 14-15 (bit 0 the phase tag).
    let mut cqe = [0u8; 24];
    s.read_exact(&mut cqe).is_ok()
        && cqe[0] == 0x05
        && u16::from_le_bytes([cqe[22], cqe[23]]) >> 1 == 0
}

/// Issue 15, findings 1 and 2, against the real binary: 300 connections
/// that never finish a handshake, then 64 Connects each asking for 32 MiB by
/// R2T. A well-formed host is served throughout, and the backend's RSS stays
/// under 64 MiB (it rose from 11 to 261 MiB with four such Connects).
#[test]
fn slowloris_and_big_connects_neither_lock_out_nor_bloat() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, addr) = nvme_backend(dir.path(), &[]);
    let pid = backend.0.id();
    let rss0 = rss_kib(pid);
    // Idle: connected, nothing sent.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    // Half-sent: an ICReq cut short.
    let mut half: Vec<TcpStream> = (0..20)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    for s in &mut half {
        let _ = s.write_all(&icreq()[..40]);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(well_formed_host(&addr), "locked out by idle connections");
    // Connects that ask for 32 MiB of data by R2T: refused unfetched.
    let mut big = Vec::new();
    for _ in 0..64 {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut resp = [0u8; 128];
        if s.write_all(&icreq()).is_ok() && s.read_exact(&mut resp).is_ok() {
            let _ = s.write_all(&connect_capsule(32 << 20, false));
            big.push(s);
        }
    }
    thread::sleep(Duration::from_millis(500));
    assert!(well_formed_host(&addr), "locked out during big Connects");
    let rss = rss_kib(pid);
    println!(
        "idle {} half {} big {}: RSS {} -> {} KiB",
        idle.len(),
        half.len(),
        big.len(),
        rss0,
        rss
    );
    assert!(rss < 64 * 1024, "RSS {rss} KiB under attack");
    drop((idle, half, big));
}

#[test]
fn fd_exhaustion_backs_off_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // prlimit (util-linux) execs the backend: the child's PID is the
    // backend's.
    let (mut backend, addr) = nvme_backend(dir.path(), &["prlimit", "--nofile=48:48"]);
    let pid = backend.0.id();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = backend.0.stderr.take().unwrap();
    let log = Arc::clone(&lines);
    let reader = thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap().push(l);
        }
    });

    // Far more connections than the backend has descriptors: it accepts
    // until EMFILE, the rest wait in the listen backlog.
    let hogs: Vec<TcpStream> = (0..80)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(hogs.len() > 48, "only {} connections", hogs.len());
    thread::sleep(Duration::from_millis(300));
    let (t0, cpu0) = (Instant::now(), cpu_ticks(pid));
    let lines0 = lines.lock().unwrap().len();
    thread::sleep(Duration::from_secs(2));
    let ticks = cpu_ticks(pid) - cpu0;
    let logged = lines.lock().unwrap().len() - lines0;
    let hz = 100; // USER_HZ on Linux
    println!(
        "EMFILE for {:?}: {ticks} CPU ticks, {logged} log lines",
        t0.elapsed()
    );
    // Spinning would burn ~2 s of CPU (200 ticks) and log ~10^5 lines.
    assert!(ticks < hz / 2, "{ticks} CPU ticks in 2 s while out of fds");
    assert!(logged < 10, "{logged} log lines in 2 s while out of fds");
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("backing off")),
        "the first failed accept is logged"
    );

    // Descriptors free again: a well-formed host is served.
    drop(hogs);
    let deadline = Instant::now() + Duration::from_secs(10);
    let resp = loop {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(&icreq()).unwrap();
        let mut resp = [0u8; 128];
        if s.read_exact(&mut resp).is_ok() {
            break resp;
        }
        assert!(Instant::now() < deadline, "no ICResp after the hogs left");
    };
    assert_eq!(resp[0], 0x01, "ICResp");
    drop(backend);
    reader.join().unwrap();
}
