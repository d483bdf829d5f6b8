//! The control queue (virtio 1.2, 5.6.6.2): task management functions and
//! asynchronous notification queries/subscriptions, each answered on the
//! chain that carried it.

use std::{
    io::{Read, Write},
    ops::Deref,
};

use log::{debug, error, info};
use virtio_queue::{DescriptorChain, Reader, Writer};

use super::{
    lock, write_prefix, ChainLayout, GuestMemory, Malformed, ScsiBackend, FIRST_REQUEST_QUEUE,
};
use crate::transport::virtio_scsi::{
    encode_an_resp, AnReq, CtrlType, LunAddress, Response, TmfReq, TmfSubtype, AN_REQ_SIZE,
    AN_RESP_SIZE, CTRL_TYPE_SIZE, TMF_REQ_SIZE, TMF_RESP_SIZE,
};

impl ScsiBackend {
    /// Serve one control request (5.6.6.2) whose chain `layout` is not
    /// broken, and return the used length.
    pub(super) fn complete_ctrl<M>(
        &self,
        queue: usize,
        mem: &GuestMemory,
        chain: DescriptorChain<M>,
    ) -> u32
    where
        M: Deref<Target = GuestMemory> + Clone,
    {
        let head = chain.head_index();
        let layout = ChainLayout::of(chain.clone());
        if layout.misordered {
            self.malformed(queue, head, Malformed::WritableBeforeReadable);
            return 0;
        }
        let Ok(mut reader) = Reader::new(mem, chain.clone()) else {
            self.malformed(queue, head, Malformed::BadReadableAddress);
            return 0;
        };
        // Room for the larger of the two request layouts.
        const _: () = assert!(TMF_REQ_SIZE >= AN_REQ_SIZE);
        let mut req = [0u8; TMF_REQ_SIZE];
        if reader.read_exact(&mut req[..CTRL_TYPE_SIZE]).is_err() {
            self.malformed(
                queue,
                head,
                Malformed::ShortRequest {
                    need: CTRL_TYPE_SIZE,
                    have: layout.readable,
                },
            );
            return 0;
        }
        let ty = CtrlType::decode([req[0], req[1], req[2], req[3]]);
        let (need_req, need_resp) = match ty {
            CtrlType::Tmf => (TMF_REQ_SIZE, TMF_RESP_SIZE),
            CtrlType::AnQuery | CtrlType::AnSubscribe => (AN_REQ_SIZE, AN_RESP_SIZE),
            CtrlType::Unknown(t) => {
                // The response layout depends on the type: nothing to write.
                self.malformed(queue, head, Malformed::UnknownControlType(t));
                return 0;
            }
        };
        if layout.writable < need_resp as u64 {
            self.malformed(
                queue,
                head,
                Malformed::ShortResponse {
                    need: need_resp,
                    have: layout.writable,
                },
            );
            return 0;
        }
        let short = layout.readable < need_req as u64
            || reader
                .read_exact(&mut req[CTRL_TYPE_SIZE..need_req])
                .is_err();
        let resp: Vec<u8> = if short {
            self.malformed(
                queue,
                head,
                Malformed::ShortRequest {
                    need: need_req,
                    have: layout.readable,
                },
            );
            match ty {
                CtrlType::Tmf => vec![Response::Failure as u8],
                _ => encode_an_resp(0, Response::Failure).to_vec(),
            }
        } else {
            match ty {
                CtrlType::Tmf => {
                    let mut b = [0u8; TMF_REQ_SIZE];
                    b.copy_from_slice(&req[..TMF_REQ_SIZE]);
                    vec![self.task_management(queue, &TmfReq::decode(&b)) as u8]
                }
                _ => {
                    let mut b = [0u8; AN_REQ_SIZE];
                    b.copy_from_slice(&req[..AN_REQ_SIZE]);
                    let an = AnReq::decode(&b);
                    // No asynchronous events are supported: event_actual 0.
                    let response = match LunAddress::decode(&an.lun) {
                        LunAddress::Lun { target: 0, .. } => Response::Ok,
                        _ => Response::BadTarget,
                    };
                    debug!(
                        "control: {ty:?} events {:#x} -> none, {response:?}",
                        an.event_requested
                    );
                    encode_an_resp(0, response).to_vec()
                }
            }
        };
        match Writer::new(mem, chain.clone()) {
            Ok(mut w) => match w.write_all(&resp) {
                Ok(()) => u32::try_from(resp.len()).unwrap_or(0),
                Err(e) => {
                    error!("control, descriptor {head}: cannot write the response: {e}");
                    0
                }
            },
            Err(_) => {
                self.malformed(queue, head, Malformed::BadWritableAddress);
                write_prefix(mem, chain, &resp)
            }
        }
    }

    /// Execute a task management function (5.6.6.2.1).
    ///
    /// Commands run synchronously on their queue's worker and each holds
    /// that queue's busy lock from pop to used ring, so waiting for the
    /// busy locks of all request queues completes every command the device
    /// had received when the function arrived, as "the device MUST ... have
    /// completed all requests related to the task management function"
    /// requires. After that no task is left in the task set: ABORT TASK,
    /// ABORT TASK SET, CLEAR TASK SET, I_T NEXUS RESET, LOGICAL UNIT RESET
    /// and the QUERY functions answer FUNCTION COMPLETE (for QUERY TASK:
    /// "the task is not in the task set", SAM-5 7.9). CLEAR ACA is
    /// rejected: no ACA is ever established.
    fn task_management(&self, queue: usize, tmf: &TmfReq) -> Response {
        let lun = match LunAddress::decode(&tmf.lun) {
            LunAddress::Lun { target: 0, lun } => lun,
            other => {
                debug!("control: {:?} for {other:?}: bad target", tmf.subtype);
                return Response::BadTarget;
            }
        };
        if usize::from(lun) >= self.target.lun_count() {
            debug!("control: {:?} for missing LUN {lun}", tmf.subtype);
            return Response::IncorrectLun;
        }
        let response = match tmf.subtype {
            TmfSubtype::AbortTask
            | TmfSubtype::AbortTaskSet
            | TmfSubtype::ClearTaskSet
            | TmfSubtype::ITNexusReset
            | TmfSubtype::LogicalUnitReset
            | TmfSubtype::QueryTask
            | TmfSubtype::QueryTaskSet => {
                for (q, busy) in self.busy.iter().enumerate().skip(FIRST_REQUEST_QUEUE) {
                    if q != queue {
                        drop(lock(busy));
                    }
                }
                Response::Ok
            }
            TmfSubtype::ClearAca | TmfSubtype::Unknown(_) => Response::FunctionRejected,
        };
        info!(
            "control: {:?} LUN {lun} tag {:#x} -> {response:?}",
            tmf.subtype, tmf.id
        );
        response
    }
}
