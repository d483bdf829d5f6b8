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

#[test]
fn fd_exhaustion_backs_off_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let ns = format!(
        "kind=nvm,file={},size=16M",
        dir.path().join("n.img").display()
    );
    // prlimit (util-linux) execs the backend: the child's PID is the
    // backend's.
    let child = Command::new("prlimit")
        .arg("--nofile=48:48")
        .arg(env!("CARGO_BIN_EXE_zonecopy-vhost"))
        .args(["--nvme-tcp", &addr, "--ns", &ns])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start zonecopy-vhost under prlimit");
    let mut backend = Backend(child);
    let pid = backend.0.id();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = backend.0.stderr.take().unwrap();
    let log = Arc::clone(&lines);
    let reader = thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap().push(l);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "backend never listened");
        thread::sleep(Duration::from_millis(20));
    }

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
