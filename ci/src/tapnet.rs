//! The fast guest network for NVMe/TCP (issue 17): a tap device in a
//! private network namespace instead of QEMU user networking (slirp).
//!
//! [`TapNet::enter`] moves the calling thread (the runner's, which starts
//! the backend, the bench sink and QEMU) into a new network namespace with
//! only `lo` and one tap device, [`TAP_NAME`], that has the host address
//! the guest already uses with slirp ([`HOST_ADDR`], 10.0.2.2/24): the
//! guest's /init configuration, `zonecopy.nvme=traddr=10.0.2.2,...` and
//! `zonecopy.control=10.0.2.2:PORT` stay as they are. The backend listens
//! on 10.0.2.2 in that namespace; QEMU attaches the tap by name with a
//! virtio-net header (checksum and segmentation offloads) and a 65520-byte
//! MTU. Nothing in the namespace has a route anywhere else: no traffic can
//! leave the machine.
//!
//! Clean-up needs no names or PIDs of its own: a network namespace lives
//! as long as a thread, process or file descriptor refers to it. The
//! runner's processes in it (backend, QEMU) are stopped by PID as before;
//! dropping the [`TapNet`] moves the thread back to the namespace it came
//! from, and the namespace (with its tap) disappears with its last user,
//! also when the runner is SIGKILLed (its children die with it through
//! PR_SET_PDEATHSIG).
//!
//! Measured in one 6.12 TCG guest (raw TCP, 256 MiB each way, `-cpu
//! max,-erms,-fsrm`): slirp 23 MiB/s guest to host and 57 MiB/s host to
//! guest; passt over `-netdev stream` 87 and 101; passt's vhost-user mode
//! (sid's passt) 114 and 345; this tap 179 and 447.

use std::{
    fs::File,
    io::{self, Write},
    net::Ipv4Addr,
    os::fd::AsRawFd,
    process::{Command, Stdio},
};

/// The tap device in the namespace.
pub const TAP_NAME: &str = "zc0";
/// The host's address on the tap: what slirp's gateway is (10.0.2.2), so
/// the guest side is configured the same either way.
pub const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// MTU of the tap and of the guest's virtio-net (`host_mtu`): the largest
/// IPv4 packets, so a 128 KiB NVMe/TCP data PDU is two frames.
pub const MTU: u32 = 65520;

/// How the guest's NIC is backed (`--guest-net`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetPath {
    /// QEMU user networking (slirp): works unprivileged, slow.
    User,
    /// A tap device in a private network namespace (needs root and
    /// /dev/net/tun).
    Tap,
}

/// The runner's thread inside the private namespace; drop moves it back.
#[derive(Debug)]
pub struct TapNet {
    /// The namespace the thread came from.
    home: File,
}

/// `ip -batch` commands that set the namespace up.
fn setup_script() -> String {
    format!(
        "link set lo up\n\
         tuntap add dev {TAP_NAME} mode tap vnet_hdr\n\
         link set {TAP_NAME} mtu {MTU}\n\
         addr add {HOST_ADDR}/24 dev {TAP_NAME}\n\
         link set {TAP_NAME} up\n"
    )
}

fn set_netns(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) has no memory-safety preconditions; `ns` is an open
    // network namespace file, so the call only changes this thread's
    // namespace or fails.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl TapNet {
    /// A new network namespace for the calling thread, with `lo` up and the
    /// tap device configured. Fails (and leaves the thread where it was)
    /// without root, /dev/net/tun or `ip`.
    pub fn enter() -> io::Result<TapNet> {
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err(io::Error::other("no /dev/net/tun"));
        }
        let home = File::open("/proc/thread-self/ns/net")?;
        // SAFETY: unshare(2) has no memory-safety preconditions; with
        // CLONE_NEWNET it only moves this thread into a new namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // From here on, drop returns the thread home.
        let net = TapNet { home };
        net.configure()?;
        Ok(net)
    }

    fn configure(&self) -> io::Result<()> {
        // Children inherit the spawning thread's namespace.
        let mut ip = Command::new("ip")
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run ip: {e}")))?;
        if let Some(mut stdin) = ip.stdin.take() {
            stdin.write_all(setup_script().as_bytes())?;
        }
        let out = ip.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ip -batch ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// QEMU's `-netdev` value for the tap: with `vhost` the kernel's
    /// vhost-net moves the packets between the tap and the guest's rings
    /// (no copy through QEMU's main loop, which took ~15% of a core in the
    /// bench's fio run); without it QEMU does (no /dev/vhost-net needed).
    /// The virtio-net header is on by default on a tap that supports it.
    pub fn netdev(id: &str, vhost: bool) -> String {
        let vhost = if vhost { "on" } else { "off" };
        format!("tap,id={id},ifname={TAP_NAME},script=no,downscript=no,vhost={vhost}")
    }
}

/// Whether QEMU can use vhost-net here: /dev/vhost-net opens read-write
/// (the module loaded, the runner allowed to). QEMU fails to start when
/// `vhost=on` cannot be honoured, so this is checked, not assumed.
pub fn vhost_net_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/vhost-net")
        .is_ok()
}

impl Drop for TapNet {
    fn drop(&mut self) {
        if let Err(e) = set_netns(&self.home) {
            // Not expected (we came from there); later spawns would land
            // in a namespace without a route: say so.
            eprintln!("error: cannot return to the runner's network namespace: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn script_configures_the_tap_like_slirps_gateway() {
        assert_eq!(
            setup_script(),
            "link set lo up\ntuntap add dev zc0 mode tap vnet_hdr\nlink set zc0 mtu 65520\n\
             addr add 10.0.2.2/24 dev zc0\nlink set zc0 up\n"
        );
        assert_eq!(
            TapNet::netdev("n0", false),
            "tap,id=n0,ifname=zc0,script=no,downscript=no,vhost=off"
        );
        assert_eq!(
            TapNet::netdev("n0", true),
            "tap,id=n0,ifname=zc0,script=no,downscript=no,vhost=on"
        );
    }

    /// Needs root: runs where the VM suites run; elsewhere it says why it
    /// did nothing.
    #[test]
    fn enter_isolates_and_drop_returns() {
        let outside = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = outside.local_addr().unwrap().port();
        let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        // On a thread of its own: the namespace is per thread.
        let (inside_ns, reached_outside, tap_addr) = std::thread::spawn(move || {
            let net = match TapNet::enter() {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("skipped: no private network namespace here: {e}");
                    return (None, false, false);
                }
            };
            let ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
            let reached = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok();
            let tap = TcpListener::bind((HOST_ADDR, 0)).is_ok();
            drop(net);
            assert_eq!(
                std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
                before
            );
            (Some(ns), reached, tap)
        })
        .join()
        .unwrap();
        if let Some(ns) = inside_ns {
            assert_ne!(ns, std::fs::read_link("/proc/thread-self/ns/net").unwrap());
            assert!(!reached_outside, "the host's loopback is not reachable");
            assert!(tap_addr, "10.0.2.2 is an address of the namespace");
        }
    }
}
