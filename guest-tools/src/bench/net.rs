//! Raw TCP throughput of QEMU user networking, against the host's bench
//! sink (`zonecopy.sink=`; protocol in ci/src/sink.rs): what NVMe/TCP's
//! numbers would be with no NVMe in the way.
//!
//! - send: `discard\n`, then `bytes` zeros in 256 KiB writes, shut the
//!   sending side down, wait for the host's count line; the count must be
//!   `bytes`.
//! - receive: `zeros <bytes>\n`, read to end of stream; exactly `bytes`
//!   must arrive (their contents are not scanned: under TCG a scan would
//!   cost more than the network).
//!
//! Each is timed from connect to the last byte known to have arrived. The
//! guest copies each byte between user space and the socket, which
//! nvme-tcp's page-based sends avoid: a little in the network's favour.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, SocketAddr, TcpStream},
    time::{Duration, Instant},
};

/// Socket timeout of each transfer (a stall fails the test, not the run).
const TIMEOUT: Duration = Duration::from_secs(60);
const CHUNK: usize = 256 * 1024;

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("sink {addr}: connect: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT)).ok();
    s.set_write_timeout(Some(TIMEOUT)).ok();
    Ok(s)
}

/// Send `bytes` to the sink; the time until the host counted them all.
pub fn send(addr: SocketAddr, bytes: u64) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = connect(addr)?;
    let buf = vec![0u8; CHUNK];
    s.write_all(b"discard\n")
        .map_err(|e| format!("sink {addr}: write: {e}"))?;
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        s.write_all(&buf[..n])
            .map_err(|e| format!("sink {addr}: write after {} bytes: {e}", bytes - left))?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("sink {addr}: shutdown: {e}"))?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .map_err(|e| format!("sink {addr}: reading the count: {e}"))?;
    let took = t.elapsed();
    let got: u64 = line
        .trim()
        .parse()
        .map_err(|_| format!("sink {addr}: count {line:?} is not a number"))?;
    if got != bytes {
        return Err(format!(
            "sink {addr}: the host received {got} of {bytes} bytes"
        ));
    }
    Ok(took)
}

/// Receive `bytes` from the sink; the time until the last arrived.
pub fn receive(addr: SocketAddr, bytes: u64) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = connect(addr)?;
    s.write_all(format!("zeros {bytes}\n").as_bytes())
        .map_err(|e| format!("sink {addr}: write: {e}"))?;
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        let n = s
            .read(&mut buf)
            .map_err(|e| format!("sink {addr}: read after {got} bytes: {e}"))?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    let took = t.elapsed();
    if got != bytes {
        return Err(format!("sink {addr}: received {got} of {bytes} bytes"));
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{net::TcpListener, thread};

    /// A one-connection stand-in for the host's sink.
    fn host(reply: impl FnOnce(String, TcpStream) + Send + 'static) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line == "discard\n" {
                let mut n = 0u64;
                let mut b = [0u8; 4096];
                loop {
                    let k = r.read(&mut b).unwrap();
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                reply(n.to_string(), s);
            } else {
                reply(line, s);
            }
        });
        addr
    }

    #[test]
    fn send_checks_the_hosts_count() {
        let a = host(|n, mut s| s.write_all(format!("{n}\n").as_bytes()).unwrap());
        send(a, 1_000_000).unwrap();
        let a = host(|_, mut s| s.write_all(b"5\n").unwrap());
        assert!(send(a, 1_000_000)
            .unwrap_err()
            .contains("received 5 of 1000000"));
        let a = host(|_, mut s| s.write_all(b"x\n").unwrap());
        assert!(send(a, 10).unwrap_err().contains("not a number"));
    }

    #[test]
    fn receive_checks_the_count() {
        let a = host(|line, mut s| {
            assert_eq!(line, "zeros 300000\n");
            s.write_all(&vec![0u8; 300_000]).unwrap();
        });
        receive(a, 300_000).unwrap();
        let a = host(|_, mut s| s.write_all(&[0u8; 10]).unwrap());
        assert!(receive(a, 300_000)
            .unwrap_err()
            .contains("received 10 of 300000"));
        let a = host(|_, mut s| s.write_all(&[0u8; 1001]).unwrap());
        assert!(receive(a, 1000)
            .unwrap_err()
            .contains("received 1001 of 1000"));
    }
}
