//! What a connection queues for the host between two socket writes: the
//! PDU bytes in one buffer, except large C2HData payloads, which stay in
//! the buffer the command read them into and go to the socket from there
//! (one `writev`, no copy into the PDU buffer). Emptied payload buffers
//! are kept, a few of them, for the next commands: a 1 MiB read or write
//! then reuses memory instead of faulting in fresh pages (issue 17: page
//! faults and copies were a third of the backend's time in a sequential
//! read).

use std::{
    io::{self, IoSlice, Write},
    net::TcpStream,
    ops::Range,
    sync::atomic::{AtomicUsize, Ordering},
};

/// Payloads at least this large are sent from their own buffer; smaller
/// ones are copied into the PDU buffer (a copy is cheaper than an iovec).
pub(super) const BY_REFERENCE_MIN: usize = 16 * 1024;
/// Most emptied buffers kept for reuse, per connection.
const SPARE_MAX: usize = 4;
/// Most bytes of emptied buffers kept by all connections together: a peer
/// that opens many connections and makes each read 1 MiB once cannot pin
/// 4 MiB per connection while it idles.
const SPARE_BUDGET: usize = 64 << 20;
/// Bytes of spares kept now, all connections.
static SPARE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Most iovecs in one `writev` (Linux's UIO_MAXIOV is 1024).
const IOV_MAX: usize = 512;

/// One payload sent by reference: it goes at `at` in the PDU buffer.
#[derive(Debug)]
struct Payload {
    at: usize,
    buf: usize,
    range: Range<usize>,
}

/// The queued output of a connection.
#[derive(Debug, Default)]
pub(super) struct TxQueue {
    /// PDU bytes, less the payloads in `payloads`.
    pub(super) bytes: Vec<u8>,
    payloads: Vec<Payload>,
    bufs: Vec<Vec<u8>>,
    /// Emptied buffers, each no larger than `spare_cap`.
    spare: Vec<Vec<u8>>,
    spare_cap: usize,
}

impl Drop for TxQueue {
    /// Give the spares' bytes back to the budget.
    fn drop(&mut self) {
        let kept: usize = self.spare.iter().map(Vec::capacity).sum();
        SPARE_BYTES.fetch_sub(kept, Ordering::Relaxed);
    }
}

impl TxQueue {
    /// An empty queue that keeps emptied buffers of at most `spare_cap`
    /// bytes (the largest transfer a command may have) for reuse.
    pub(super) fn new(spare_cap: usize) -> Self {
        TxQueue {
            bytes: Vec::with_capacity(64 * 1024),
            payloads: Vec::new(),
            bufs: Vec::new(),
            spare: Vec::new(),
            spare_cap,
        }
    }

    /// Bytes queued, payloads included.
    pub(super) fn len(&self) -> usize {
        self.bytes.len() + self.payloads.iter().map(|p| p.range.len()).sum::<usize>()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.payloads.is_empty()
    }

    /// A buffer for a command's data, empty, from the spares when one is
    /// kept (its capacity is then at most the largest transfer).
    pub(super) fn buffer(&mut self) -> Vec<u8> {
        let buf = self.spare.pop().unwrap_or_default();
        SPARE_BYTES.fetch_sub(buf.capacity(), Ordering::Relaxed);
        buf
    }

    /// Keep `buf` for reuse if there is room (here and in the budget of
    /// all connections), it is worth keeping (a transfer sent by
    /// reference) and not larger than a command's transfer; else free it.
    pub(super) fn recycle(&mut self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if self.spare.len() >= SPARE_MAX || cap > self.spare_cap || cap < BY_REFERENCE_MIN {
            return;
        }
        let kept = SPARE_BYTES.fetch_add(cap, Ordering::Relaxed);
        if kept.saturating_add(cap) > SPARE_BUDGET {
            SPARE_BYTES.fetch_sub(cap, Ordering::Relaxed);
            return;
        }
        buf.clear();
        self.spare.push(buf);
    }

    /// The index the next [`Self::hold`] gives its buffer.
    pub(super) fn next_hold(&self) -> usize {
        self.bufs.len()
    }

    /// Hold `buf` until the next send (payloads refer to it by the index
    /// [`Self::next_hold`] said before).
    pub(super) fn hold(&mut self, buf: Vec<u8>) {
        self.bufs.push(buf);
    }

    /// Bytes `range` of held buffer `buf` go at `at` in the PDU bytes (not
    /// before any payload queued earlier).
    pub(super) fn payload(&mut self, buf: usize, at: usize, range: Range<usize>) {
        self.payloads.push(Payload { at, buf, range });
    }

    /// The queued output as slices, in order.
    fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut out = Vec::with_capacity(2 * self.payloads.len() + 1);
        let mut from = 0;
        for p in &self.payloads {
            if p.at > from {
                out.push(IoSlice::new(&self.bytes[from..p.at]));
            }
            out.push(IoSlice::new(&self.bufs[p.buf][p.range.clone()]));
            from = p.at;
        }
        if self.bytes.len() > from {
            out.push(IoSlice::new(&self.bytes[from..]));
        }
        out
    }

    /// The queued output in one buffer (for the trace recorder).
    pub(super) fn contiguous(&self) -> Vec<u8> {
        self.slices()
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect()
    }

    /// Write everything queued to `stream`, then empty the queue (held
    /// buffers become spares).
    pub(super) fn send(&mut self, mut stream: &TcpStream) -> io::Result<()> {
        if self.payloads.is_empty() {
            stream.write_all(&self.bytes)?;
        } else {
            let all = self.slices();
            // Where the unwritten part starts: slice `i`, byte `off`.
            let (mut i, mut off) = (0, 0);
            while i < all.len() {
                let iov: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&all[i][off..]))
                    .chain(
                        all[i + 1..]
                            .iter()
                            .take(IOV_MAX - 1)
                            .map(|s| IoSlice::new(s)),
                    )
                    .collect();
                match stream.write_vectored(&iov) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(mut n) => {
                        while n > 0 && i < all.len() {
                            let left = all[i].len() - off;
                            if n >= left {
                                n -= left;
                                (i, off) = (i + 1, 0);
                            } else {
                                (off, n) = (off + n, 0);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.clear();
        Ok(())
    }

    /// Drop everything queued (held buffers become spares).
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.payloads.clear();
        let bufs = std::mem::take(&mut self.bufs);
        for b in bufs {
            self.recycle(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{io::Read, net::TcpListener};

    fn queued() -> TxQueue {
        let mut q = TxQueue::new(1 << 20);
        q.bytes.extend_from_slice(b"head1-");
        let b = q.next_hold();
        q.payload(b, q.bytes.len(), 2..6);
        q.bytes.extend_from_slice(b"-mid-");
        q.payload(b, q.bytes.len(), 6..10);
        q.bytes.extend_from_slice(b"-tail");
        // A buffer large enough to be kept as a spare once sent.
        let mut data = Vec::with_capacity(BY_REFERENCE_MIN);
        data.extend_from_slice(b"0123456789");
        q.hold(data);
        q
    }

    #[test]
    fn payloads_go_where_they_were_queued() {
        let q = queued();
        assert_eq!(q.len(), 6 + 4 + 5 + 4 + 5);
        assert_eq!(q.contiguous(), b"head1-2345-mid-6789-tail");
    }

    #[test]
    fn send_writes_everything_in_order_and_keeps_the_buffer() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let mut q = queued();
        q.send(&server).unwrap();
        assert!(q.is_empty());
        drop(server);
        let mut got = Vec::new();
        (&client).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"head1-2345-mid-6789-tail");
        // The payload buffer is a spare now, emptied.
        let b = q.buffer();
        assert!(b.is_empty() && b.capacity() >= BY_REFERENCE_MIN);
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        // More than a socket buffer takes at once, in many slices.
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut q = TxQueue::new(16 << 20);
        let b = q.next_hold();
        let mut expect = Vec::new();
        for (k, piece) in data.chunks(100_000).enumerate() {
            let head = format!("<{k}>");
            q.bytes.extend_from_slice(head.as_bytes());
            expect.extend_from_slice(head.as_bytes());
            let from = k * 100_000;
            q.payload(b, q.bytes.len(), from..from + piece.len());
            expect.extend_from_slice(piece);
        }
        q.hold(data);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            (&client).read_to_end(&mut got).unwrap();
            got
        });
        q.send(&server).unwrap();
        drop(server);
        assert!(reader.join().unwrap() == expect);
    }

    #[test]
    fn spares_are_bounded_in_number_and_size() {
        let cap = BY_REFERENCE_MIN;
        let mut q = TxQueue::new(cap);
        // Too small to be worth keeping.
        q.recycle(Vec::with_capacity(cap / 4));
        assert!(q.spare.is_empty());
        for _ in 0..2 * SPARE_MAX {
            q.recycle(Vec::with_capacity(cap));
        }
        q.recycle(Vec::with_capacity(2 * cap));
        assert_eq!(q.spare.len(), SPARE_MAX);
        assert!(q.spare.iter().all(|b| b.capacity() == cap));
        // The budget of all connections counts them (other tests may
        // hold spares too, so only a lower bound is certain).
        assert!(SPARE_BYTES.load(Ordering::Relaxed) >= SPARE_MAX * cap);
        let one = q.buffer();
        assert_eq!((one.capacity(), q.spare.len()), (cap, SPARE_MAX - 1));
    }
}
