//! One backend process, several vhost-user-scsi devices: start the real
//! binary with two sockets, talk vhost-user to each (as QEMU would when it
//! has two vhost-user-scsi-pci devices), and check the control socket names
//! every LUN of both targets.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use vhost::{
    vhost_user::{Frontend, VhostUserFrontend, VhostUserProtocolFeatures},
    VhostBackend,
};

/// VIRTIO_F_VERSION_1: every modern virtio device offers it.
const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// VHOST_USER_F_PROTOCOL_FEATURES.
const PROTOCOL_FEATURES: u64 = 1 << 30;

/// Kills the backend (by PID) however the test ends.
struct Backend(Child);

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path, backend: &mut Backend) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        if let Ok(Some(status)) = backend.0.try_wait() {
            panic!("backend exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{path:?} never appeared");
        thread::sleep(Duration::from_millis(20));
    }
}

fn control(path: &Path, request: &str) -> serde_json::Value {
    let mut s = UnixStream::connect(path).expect("control connect");
    writeln!(s, "{request}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    serde_json::from_str(&line).expect("control reply is JSON")
}

#[test]
fn two_sockets_serve_two_targets_from_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lun = |name: &str, extra: &str| format!("file={},size=16M,{extra}", d.join(name).display());
    let sockets = [d.join("t0.sock"), d.join("t1.sock")];
    let ctl = d.join("control.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_zonecopy-vhost"))
        .arg("--socket")
        .arg(&sockets[0])
        .args(["--lun", &lun("a.img", "zone=4M")])
        .args(["--lun", &lun("b.img", "kind=disk")])
        .arg("--socket")
        .arg(&sockets[1])
        .args(["--lun", &lun("c.img", "zone=4M,conv=0")])
        .arg("--control")
        .arg(&ctl)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start zonecopy-vhost");
    let mut backend = Backend(child);
    for path in sockets.iter().chain([&ctl]) {
        wait_for(path, &mut backend);
    }

    for socket in &sockets {
        let mut fe = Frontend::connect(socket, 1).expect("vhost-user connect");
        let features = fe.get_features().expect("GET_FEATURES");
        assert_ne!(
            features & VIRTIO_F_VERSION_1,
            0,
            "{socket:?}: {features:#x}"
        );
        assert_ne!(features & PROTOCOL_FEATURES, 0, "{socket:?}: {features:#x}");
        fe.set_owner().expect("SET_OWNER");
        fe.set_features(features).expect("SET_FEATURES");
        let protocol = fe.get_protocol_features().expect("GET_PROTOCOL_FEATURES");
        assert!(
            protocol.contains(VhostUserProtocolFeatures::MQ),
            "{protocol:?}"
        );
        fe.set_protocol_features(protocol)
            .expect("SET_PROTOCOL_FEATURES");
        // Control, event and at least one request queue.
        assert!(fe.get_queue_num().expect("GET_QUEUE_NUM") >= 3);
    }

    let devices = control(&ctl, r#"{"cmd":"devices"}"#);
    assert_eq!(devices["ok"], true, "{devices}");
    let names: Vec<&str> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lun0", "lun1", "t1.lun0"]);
    let stats = control(&ctl, r#"{"cmd":"stats"}"#);
    assert!(
        stats.get("scsi").is_some() && stats.get("scsi.t1").is_some(),
        "{stats}"
    );
}
