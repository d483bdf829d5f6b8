//! Zoned Namespace Command Set: Zone Management Send (79h), Zone
//! Management Receive (7Ah), Zone Append (7Dh). ZNS 1.1, 3.

use super::{
    commands::{Done, Exec, Fail, Outcome, AT_CDW10, AT_CDW13},
    events::host_zone_action,
    nvm::{check_mdts, Rw},
    put64,
    status::Status,
};
use crate::storage::{Lba, Zone, ZoneAction, ZoneCondition, ZoneTarget};

/// Zone Send Actions (ZSA, CDW13 bits 7:0; ZNS 1.1 Figure 37).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendAction {
    Close,
    Finish,
    Open,
    Reset,
    Offline,
}

impl SendAction {
    fn decode(zsa: u8) -> Option<SendAction> {
        Some(match zsa {
            0x01 => SendAction::Close,
            0x02 => SendAction::Finish,
            0x03 => SendAction::Open,
            0x04 => SendAction::Reset,
            0x05 => SendAction::Offline,
            // 10h Set Zone Descriptor Extension needs ZDES > 0; others are
            // reserved.
            _ => return None,
        })
    }

    /// The core's zone action, or `None` for Offline (a condition change,
    /// [`crate::storage::Device::set_zone_condition`]).
    fn core(self) -> Option<ZoneAction> {
        match self {
            // To ZSC even with WP = ZSLBA: the namespace's ZoneRules.
            SendAction::Close => Some(ZoneAction::Close),
            SendAction::Finish => Some(ZoneAction::Finish),
            SendAction::Open => Some(ZoneAction::Open),
            SendAction::Reset => Some(ZoneAction::Reset),
            SendAction::Offline => None,
        }
    }
}

/// What a zone send action does to a zone in `cond` (ZNS 1.1, 2.1.1 zone
/// state machine and 3.3.2 each action's "if the zone is in ..." rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Change,
    NoChange,
    Invalid,
}

pub fn transition(action: SendAction, cond: ZoneCondition) -> Transition {
    use SendAction as A;
    use Transition::*;
    use ZoneCondition as C;
    match (action, cond) {
        (A::Open, C::Empty | C::ImplicitOpen | C::Closed) => Change,
        (A::Open, C::ExplicitOpen) => NoChange,
        (A::Close, C::ImplicitOpen | C::ExplicitOpen) => Change,
        (A::Close, C::Closed) => NoChange,
        (A::Finish, C::Empty | C::ImplicitOpen | C::ExplicitOpen | C::Closed) => Change,
        (A::Finish, C::Full) => NoChange,
        (A::Reset, C::ImplicitOpen | C::ExplicitOpen | C::Closed | C::Full) => Change,
        (A::Reset, C::Empty) => NoChange,
        (A::Offline, C::ReadOnly) => Change,
        (A::Offline, C::Offline) => NoChange,
        _ => Invalid,
    }
}

/// Zone Management Send (79h): CDW10-11 SLBA, CDW13 ZSA bits 7:0, Select
/// All bit 8. Zone changes made here are the host's own: they reach no
/// Changed Zone List (ZNS 1.1 Figure 42).
pub fn zone_management_send(x: &mut Exec<'_>) -> Outcome {
    host_zone_action(|| zone_send(x))
}

fn zone_send(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let slba = Lba::new(x.sqe.qw(10));
    let dw13 = x.sqe.dw(13);
    let select_all = dw13 & (1 << 8) != 0;
    let action =
        SendAction::decode(dw13 as u8).ok_or(Fail::at(Status::INVALID_FIELD, AT_CDW13, 0))?;
    let dev = &ns.device;
    if select_all {
        return match action.core() {
            Some(a) => {
                dev.zone_action(a, ZoneTarget::All)
                    .map_err(|e| ns.status(&e))?;
                Ok(Done::OK)
            }
            None => {
                // Offline with Select All: every READ ONLY zone goes
                // OFFLINE (ZNS 1.1, 3.4.3.1.5).
                let ro = dev
                    .report_zones(Lba::new(0), usize::MAX, |z| {
                        z.cond == ZoneCondition::ReadOnly
                    })
                    .map_err(|e| ns.status(&e))?;
                for z in ro {
                    dev.set_zone_condition(z.start, ZoneCondition::Offline)
                        .map_err(|e| ns.status(&e))?;
                }
                Ok(Done::OK)
            }
        };
    }
    let zone = dev
        .report_zones(slba, 1, |_| true)
        .map_err(|e| ns.status(&e))?
        .first()
        .copied()
        .ok_or(Fail::at(Status::LBA_OUT_OF_RANGE, AT_CDW10, 0))?;
    if zone.start != slba {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW10, 0));
    }
    match transition(action, zone.cond) {
        Transition::Invalid => Err(Fail::at(Status::INVALID_ZONE_STATE_TRANSITION, AT_CDW13, 0)),
        Transition::NoChange => Ok(Done::OK),
        Transition::Change => {
            match action.core() {
                Some(a) => dev.zone_action(a, ZoneTarget::One(slba)),
                // READ ONLY -> OFFLINE.
                None => dev.set_zone_condition(slba, ZoneCondition::Offline),
            }
            .map_err(|e| ns.status(&e))?;
            Ok(Done::OK)
        }
    }
}

/// Zone State values of a zone descriptor (ZS bits 7:4; ZNS 1.1 Figure 48).
pub fn zone_state(cond: ZoneCondition) -> u8 {
    match cond {
        ZoneCondition::Empty | ZoneCondition::NotWritePointer => 0x1,
        ZoneCondition::ImplicitOpen => 0x2,
        ZoneCondition::ExplicitOpen => 0x3,
        ZoneCondition::Closed => 0x4,
        ZoneCondition::ReadOnly => 0xD,
        ZoneCondition::Full => 0xE,
        ZoneCondition::Offline => 0xF,
    }
}

/// The Zone Receive Action Specific Field filter (ZRASF; ZNS 1.1 Figure 45).
fn zrasf_filter(zrasf: u8) -> Option<fn(&Zone) -> bool> {
    Some(match zrasf {
        0 => |_| true,
        1 => |z| z.cond == ZoneCondition::Empty,
        2 => |z| z.cond == ZoneCondition::ImplicitOpen,
        3 => |z| z.cond == ZoneCondition::ExplicitOpen,
        4 => |z| z.cond == ZoneCondition::Closed,
        5 => |z| z.cond == ZoneCondition::Full,
        6 => |z| z.cond == ZoneCondition::ReadOnly,
        7 => |z| z.cond == ZoneCondition::Offline,
        _ => return None,
    })
}

/// Zone Management Receive (7Ah): CDW10-11 SLBA, CDW12 NUMD (0's based
/// dwords), CDW13 ZRA bits 7:0, ZRASF 15:8, Partial Report bit 16. The
/// report is a 64-byte header (number of zones) and 64-byte descriptors
/// (ZT, ZS, ZA, ZCAP, ZSLBA, WP).
pub fn zone_management_receive(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let slba = Lba::new(x.sqe.qw(10));
    let len = (u64::from(x.sqe.dw(12)) + 1) * 4;
    let dw13 = x.sqe.dw(13);
    let zra = dw13 as u8;
    let partial = dw13 & (1 << 16) != 0;
    if zra != 0 {
        // 01h Extended Report needs zone descriptor extensions (ZDES = 0).
        return Err(Status::INVALID_FIELD.into());
    }
    let filter = zrasf_filter((dw13 >> 8) as u8).ok_or(Status::INVALID_FIELD)?;
    check_mdts(x, len)?;
    let len = len.min(u64::from(x.transfer_len())) as usize;
    if len < 64 {
        return Err(Status::INVALID_FIELD.into());
    }
    let max = (len - 64) / 64;
    let zones = ns
        .device
        .report_zones(slba, usize::MAX, filter)
        .map_err(|e| ns.status(&e))?;
    let reported = if partial {
        zones.len().min(max)
    } else {
        zones.len()
    };
    let mut d = vec![0u8; len];
    put64(&mut d, 0, reported as u64);
    for (i, z) in zones.iter().take(max).enumerate() {
        let at = 64 + i * 64;
        d[at] = 0x2; // ZT: Sequential Write Required
        d[at + 1] = zone_state(z.cond) << 4; // ZS
        put64(&mut d, at + 8, z.cap.get()); // ZCAP
        put64(&mut d, at + 16, z.start.get()); // ZSLBA
        put64(&mut d, at + 24, z.wp.get()); // WP
    }
    *x.data_in = d;
    Ok(Done::OK)
}

/// Zone Append (7Dh): CDW10-11 ZSLBA, CDW12 NLB (0's based), FUA bit 30.
/// Completes with the LBA written in Dwords 0-1.
pub fn zone_append(x: &mut Exec<'_>) -> Outcome {
    let ns = x.ns()?;
    let rw = Rw::decode(x);
    let bytes = rw.nlb.bytes(ns.block_size()).ok_or(Status::INVALID_FIELD)?;
    check_mdts(x, bytes)?;
    let zasl = x.ctrl.opts.zasl;
    if zasl != 0 && bytes > 4096u64 << zasl.min(40) {
        return Err(Status::INVALID_FIELD.into());
    }
    if x.data_out.len() as u64 != bytes {
        return Err(Status::DATA_SGL_LENGTH_INVALID.into());
    }
    let fua = rw.fua || !x.ctrl.state().features.volatile_write_cache;
    let lba = ns
        .device
        .append(rw.slba, x.data_out, fua)
        .map_err(|e| ns.status(&e))?;
    Ok(Done::Complete {
        dw0: lba.get() as u32,
        dw1: (lba.get() >> 32) as u32,
    })
}
