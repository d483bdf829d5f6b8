//! The reply side of a connection's state machine: completions as
//! response capsules, read data as C2HData PDUs (with the SUCCESS flag
//! when SQ flow control is off), and completions a queue deferred (such
//! as Asynchronous Event Requests), all queued on the connection's
//! [`TxQueue`](super::TxQueue).

use super::*;

impl State<'_> {
    pub(super) fn respond_status(&mut self, sqe: &Sqe, class: CommandClass, status: u16) {
        let completion = Completion {
            status,
            ..Completion::default()
        };
        self.respond(sqe, class, completion, &[]);
    }

    /// Send `data` in C2HData PDUs, then the response capsule unless the
    /// last C2HData can carry SUCCESS (SQ flow control disabled and a
    /// completion with nothing in it): NVMe/TCP 1.0 3.6.2.9, C2HData FLAGS
    /// bit 3, set only with LAST_PDU and only when the host disabled SQ
    /// flow control (Connect CATTR bit 2), as Linux's nvmet-tcp does
    /// (`sqhd_disabled`).
    pub(super) fn respond(
        &mut self,
        sqe: &Sqe,
        class: CommandClass,
        completion: Completion,
        data: &[u8],
    ) {
        self.c2h_data(sqe, class, &completion, data, None);
    }

    /// [`Self::respond`] with data the queue may keep: a large payload is
    /// sent from `data` itself (no copy), which then serves a later
    /// command.
    pub(super) fn respond_owned(
        &mut self,
        sqe: &Sqe,
        class: CommandClass,
        completion: Completion,
        data: Vec<u8>,
    ) {
        if data.len() < BY_REFERENCE_MIN || completion.status != 0 {
            self.c2h_data(sqe, class, &completion, &data, None);
            self.tx.recycle(data);
        } else {
            let held = self.tx.next_hold();
            self.c2h_data(sqe, class, &completion, &data, Some(held));
            self.tx.hold(data);
        }
    }

    /// The C2HData PDUs and response of [`Self::respond`]; with `held`, the
    /// payloads are referred to in that held buffer (which holds `data`)
    /// instead of copied.
    pub(super) fn c2h_data(
        &mut self,
        sqe: &Sqe,
        class: CommandClass,
        completion: &Completion,
        data: &[u8],
        held: Option<usize>,
    ) {
        let digests = self.digests();
        let hpda = self.ic.map_or(0, |n| n.hpda);
        let data = if completion.status == 0 { data } else { &[] };
        let success =
            !data.is_empty() && !self.sq_flow_control && *completion == Completion::default();
        let chunk = self.limits.c2h_chunk.max(1);
        let count = data.len().div_ceil(chunk);
        for (i, piece) in data.chunks(chunk).enumerate() {
            let last = i + 1 == count;
            let from = i * chunk;
            let datao = u32::try_from(from).unwrap_or(u32::MAX);
            let (n, at) = pdu::encode_c2h_data(
                &mut self.tx.bytes,
                sqe.cid(),
                datao,
                piece,
                last,
                last && success,
                digests,
                hpda,
                held.is_none(),
            );
            if let Some(b) = held {
                self.tx.payload(b, at, from..from + piece.len());
            }
            self.stats
                .pdu(class, Direction::ControllerToHost, piece.len(), n);
        }
        if !success {
            self.send_cqe(sqe.cid(), class, *completion);
        }
    }

    pub(super) fn send_cqe(&mut self, cid: u16, class: CommandClass, completion: Completion) {
        let (sqid, qsize) = self
            .queue
            .as_ref()
            .map_or((0, 1), |q| (q.qid(), u32::from(q.sqsize()) + 1));
        let sqhd = if self.sq_flow_control {
            let next = (u32::from(self.sqhd) + 1) % qsize;
            self.sqhd = u16::try_from(next).unwrap_or(0);
            self.sqhd
        } else {
            0
        };
        let cqe = Cqe {
            dw0: completion.dw0,
            dw1: completion.dw1,
            sqhd,
            sqid,
            cid,
            status: completion.status,
        };
        let digests = self.digests();
        let n = pdu::encode_capsule_resp(&mut self.tx.bytes, &cqe, digests);
        self.stats.pdu(class, Direction::ControllerToHost, 0, n);
    }

    /// Response capsules for deferred commands that completed (AER).
    pub(super) fn deliver_deferred(&mut self) {
        let Some(queue) = &self.queue else {
            return;
        };
        let done = queue.take_deferred();
        let class = if queue.qid() == 0 {
            CommandClass::Admin
        } else {
            CommandClass::Other
        };
        for (cid, completion) in done {
            self.send_cqe(cid, class, completion);
        }
    }
}
