//! A loopback TCP discard sink and zero source for the `bench` suite: how
//! fast QEMU user networking moves raw bytes, so the NVMe/TCP numbers can
//! be read against it (issue 6). The guest reaches it as
//! `zonecopy.sink=10.0.2.2:PORT`: the host's loopback through slirp, or
//! the tap's own address in the runner's private network namespace
//! (ci/src/tapnet.rs), whichever path the guest's NVMe/TCP takes.
//!
//! One request per connection, a line first:
//! - `discard\n`, then any bytes until the guest shuts its sending side
//!   down; the host answers `<bytes received>\n` and closes (so the guest's
//!   clock stops when the host has everything, not when its socket buffer
//!   took the last byte);
//! - `zeros <N>\n` (N <= [`MAX_ZEROS`]): the host sends N zero bytes and
//!   closes.
//!
//! Anything else closes the connection. Connections are served one at a
//! time on the listener's own thread, each bounded by
//! [`CONNECTION_LIMIT`]; every socket has short timeouts so the thread
//! notices [`Sink::stop`] within a fraction of a second, and `stop` (or
//! drop) joins it: nothing outlives the run.

use std::{
    io::{self, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

/// Most bytes one `zeros` request may ask for.
pub const MAX_ZEROS: u64 = 1 << 30;
/// Longest request line.
const MAX_LINE: usize = 64;
/// How long one connection may last.
pub const CONNECTION_LIMIT: Duration = Duration::from_secs(300);
/// Socket timeout between checks of the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// What the sink moved, for the run's notes.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub connections: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
}

/// The running sink; [`Sink::stop`] or drop ends its thread.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<SinkStats>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Listen on `ip` (a free port; 127.0.0.1 for slirp) and serve on a
    /// thread.
    pub fn start(ip: Ipv4Addr) -> io::Result<Sink> {
        let listener = TcpListener::bind((ip, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SinkStats::default());
        let thread = {
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            thread::Builder::new()
                .name("bench-sink".into())
                .spawn(move || accept_loop(&listener, &stop, &stats))?
        };
        Ok(Sink {
            addr,
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stop and join the thread; returns a one-line account of the traffic.
    pub fn stop(mut self) -> String {
        self.halt();
        format!(
            "bench sink: {} connections, {} bytes received, {} bytes sent",
            self.stats.connections.load(Ordering::Relaxed),
            self.stats.received.load(Ordering::Relaxed),
            self.stats.sent.load(Ordering::Relaxed)
        )
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.halt();
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, stats: &SinkStats) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                stats.connections.fetch_add(1, Ordering::Relaxed);
                // Errors end only this connection (the guest hung up, ...).
                let _ = serve(conn, stop, stats);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 5),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// A request of the protocol above.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Discard,
    Zeros(u64),
}

fn parse_request(line: &str) -> Option<Request> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["discard"] => Some(Request::Discard),
        ["zeros", n] => n
            .parse::<u64>()
            .ok()
            .filter(|&n| n <= MAX_ZEROS)
            .map(Request::Zeros),
        _ => None,
    }
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn serve(mut conn: TcpStream, stop: &AtomicBool, stats: &SinkStats) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(POLL))?;
    conn.set_write_timeout(Some(POLL))?;
    let deadline = Instant::now() + CONNECTION_LIMIT;
    let live = || !stop.load(Ordering::Relaxed) && Instant::now() < deadline;
    let mut buf = vec![0u8; 256 * 1024];
    // The request line, and whatever discard bytes came with it.
    let mut have = 0;
    let nl = loop {
        if let Some(i) = buf[..have].iter().position(|&b| b == b'\n') {
            break i;
        }
        if have >= MAX_LINE || !live() {
            return Ok(());
        }
        match conn.read(&mut buf[have..MAX_LINE]) {
            Ok(0) => return Ok(()),
            Ok(n) => have += n,
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e),
        }
    };
    let Some(req) = std::str::from_utf8(&buf[..nl]).ok().and_then(parse_request) else {
        return Ok(());
    };
    match req {
        Request::Discard => {
            let mut got = (have - nl - 1) as u64;
            loop {
                if !live() {
                    return Ok(());
                }
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n as u64,
                    Err(e) if timed_out(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            stats.received.fetch_add(got, Ordering::Relaxed);
            conn.write_all(format!("{got}\n").as_bytes())?;
        }
        Request::Zeros(n) => {
            buf.fill(0);
            let mut left = n;
            while left > 0 {
                if !live() {
                    return Ok(());
                }
                let chunk = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                match conn.write(&buf[..chunk]) {
                    Ok(0) => return Ok(()),
                    Ok(k) => {
                        left -= k as u64;
                        stats.sent.fetch_add(k as u64, Ordering::Relaxed);
                    }
                    Err(e) if timed_out(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    conn.shutdown(std::net::Shutdown::Both)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn requests() {
        assert_eq!(parse_request("discard"), Some(Request::Discard));
        assert_eq!(parse_request("zeros 4096"), Some(Request::Zeros(4096)));
        assert_eq!(
            parse_request("zeros 1073741824"),
            Some(Request::Zeros(1 << 30))
        );
        for bad in [
            "",
            "zeros",
            "zeros -1",
            "zeros 1073741825",
            "zeros 1 2",
            "DISCARD",
        ] {
            assert_eq!(parse_request(bad), None, "{bad}");
        }
    }

    #[test]
    fn discards_counts_and_sends_zeros_then_stops() {
        let sink = Sink::start(Ipv4Addr::LOCALHOST).unwrap();
        let addr = (Ipv4Addr::LOCALHOST, sink.port());

        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"discard\nabc").unwrap();
        c.write_all(&vec![7u8; 1 << 20]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut line = String::new();
        BufReader::new(&c).read_line(&mut line).unwrap();
        assert_eq!(line, format!("{}\n", 3 + (1 << 20)));

        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"zeros 1000000\n").unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 1_000_000);
        assert!(got.iter().all(|&b| b == 0));

        // Garbage is dropped; the sink keeps serving.
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello there\n").unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert!(got.is_empty());

        // A client that never finishes does not hold stop up.
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"discard\n").unwrap();
        thread::sleep(Duration::from_millis(50));
        let t = Instant::now();
        let note = sink.stop();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(note.contains(" 1048579 bytes received"), "{note}");
        assert!(note.contains(" 1000000 bytes sent"), "{note}");
        // The port is closed.
        assert!(TcpStream::connect(addr).is_err());
    }
}
