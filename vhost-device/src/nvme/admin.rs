//! Admin commands: Identify, Get Log Page, Set/Get Features, Asynchronous
//! Event Request, Abort, Keep Alive (NVMe Base 2.1, 5).

use super::{
    commands::{
        effects_log, io_enabled, oacs, oncs, Decode, Done, Exec, Fail, Outcome, AT_CDW10, AT_CDW12,
        AT_NSID,
    },
    controller::{self, Kind, HBS_LEN},
    copy, discovery, error_log,
    events::{
        ChangedZones, AEC_NS_ATTRIBUTE, AEC_ZONE_DESCRIPTOR_CHANGED, CHANGED_ZONE_LIST_LEN,
        LID_CHANGED_NS_LIST, LID_CHANGED_ZONE_LIST,
    },
    namespace::{Namespace, CSI_NVM, CSI_ZNS},
    nvm::check_mdts,
    put16, put32, put64, put_ascii, put_nul,
    status::Status,
    Controller, Sqe,
};

/// Identify and most log pages are 4096 bytes.
pub const IDENTIFY_LEN: usize = 4096;

/// Firmware revision reported (Identify Controller FR, firmware slot log).
pub const FIRMWARE_REVISION: &str = env!("CARGO_PKG_VERSION");

// ---------------------------------------------------------------- Identify

/// Identify's fields (06h, NVMe Base 2.1 5.17, Figures
/// "Identify - Command Dword 10" and "... Dword 11"): CDW10 CNS
/// bits 7:0, CNTID 31:16; CDW11 CSI bits 31:24; NSID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identify {
    pub cns: u8,
    pub csi: u8,
    pub nsid: u32,
}

impl Decode for Identify {
    fn decode(sqe: &Sqe) -> Self {
        Identify {
            cns: sqe.dw(10) as u8,
            csi: (sqe.dw(11) >> 24) as u8,
            nsid: sqe.nsid(),
        }
    }

    /// Every Identify data structure is 4096 bytes.
    fn data_len(&self, _: Option<&Namespace>) -> u64 {
        IDENTIFY_LEN as u64
    }
}

/// Identify (06h), NVMe Base 2.1 5.17.
pub fn identify(x: &mut Exec<'_>, c: Identify) -> Outcome {
    let Identify { cns, csi, nsid } = c;
    let ctrl = x.ctrl;
    if ctrl.kind == Kind::Discovery && cns != 0x01 {
        return Err(Status::INVALID_FIELD.into());
    }
    let data = match cns {
        0x00 => ns_data(ctrl, nsid, identify_namespace)?,
        0x01 => identify_controller(ctrl),
        0x02 => active_ns_list(ctrl, nsid, None)?,
        0x03 => {
            let ns = ctrl.namespace(nsid).ok_or(Status::INVALID_NAMESPACE)?;
            ns_descriptors(ns)
        }
        0x05 => match csi {
            CSI_NVM => ns_data(ctrl, nsid, |_| vec![0u8; IDENTIFY_LEN])?,
            CSI_ZNS => {
                if let Some(ns) = ctrl.namespace(nsid) {
                    if !ns.is_zoned() {
                        return Err(Status::INVALID_FIELD.into());
                    }
                }
                ns_data(ctrl, nsid, identify_ns_zns)?
            }
            _ => return Err(Status::INVALID_FIELD.into()),
        },
        0x06 => match csi {
            CSI_NVM => vec![0u8; IDENTIFY_LEN],
            CSI_ZNS => identify_ctrl_zns(ctrl),
            _ => return Err(Status::INVALID_FIELD.into()),
        },
        0x07 => match csi {
            CSI_NVM | CSI_ZNS => active_ns_list(ctrl, nsid, Some(csi))?,
            _ => return Err(Status::INVALID_FIELD.into()),
        },
        0x08 => ns_data(ctrl, nsid, identify_ns_independent)?,
        0x1C => io_command_set_data(),
        _ => return Err(Fail::at(Status::INVALID_FIELD, AT_CDW10, 0)),
    };
    *x.data_in = data;
    Ok(Done::OK)
}

/// Per-namespace Identify data: Invalid Namespace for NSID 0 or beyond NN
/// (and for FFFFFFFFh: no namespace management), zeros for an inactive
/// NSID.
fn ns_data(
    ctrl: &Controller,
    nsid: u32,
    build: impl FnOnce(&Namespace) -> Vec<u8>,
) -> Result<Vec<u8>, Status> {
    if nsid == 0 || nsid > ctrl.nn() {
        return Err(Status::INVALID_NAMESPACE);
    }
    Ok(match ctrl.namespace(nsid) {
        Some(ns) => build(ns),
        None => vec![0u8; IDENTIFY_LEN],
    })
}

/// Identify Namespace, NVM Command Set (CNS 00h; NVM CS 1.1 Figure 97).
pub fn identify_namespace(ns: &Namespace) -> Vec<u8> {
    let mut d = vec![0u8; IDENTIFY_LEN];
    let nsze = ns.nsze();
    put64(&mut d, 0, nsze); // NSZE
    put64(&mut d, 8, nsze); // NCAP
    put64(&mut d, 16, nsze); // NUSE
    d[25] = 0; // NLBAF: one format (0's based)
    d[26] = 0; // FLBAS: format 0, no metadata
    d[30] = 1; // NMIC: may be attached to several controllers
    let l = ns.copy_limits;
    put16(&mut d, 74, l.mssrl); // MSSRL
    put32(&mut d, 76, l.mcl); // MCL
    d[80] = l.msrc; // MSRC
    d[104..120].copy_from_slice(&ns.ids.nguid); // NGUID
    d[120..128].copy_from_slice(&ns.ids.eui64); // EUI64
                                                // LBAF0: MS 0, LBADS, RP 0 (best).
    put32(&mut d, 128, u32::from(ns.lbads()) << 16);
    d
}

/// I/O Command Set Specific Identify Namespace for ZNS (CNS 05h, CSI 02h;
/// ZNS 1.1 Figure "Identify Namespace Data Structure, Zoned Namespace").
pub fn identify_ns_zns(ns: &Namespace) -> Vec<u8> {
    let mut d = vec![0u8; IDENTIFY_LEN];
    let Some(z) = ns.device.geometry().zones else {
        return d;
    };
    // ZOC: no variable capacity, no excursions.
    put16(&mut d, 0, 0);
    // OZCS bit 0 RAZB: reads may cross zone boundaries (the core's
    // unrestricted reads).
    put16(&mut d, 2, u16::from(z.unrestricted_reads));
    let limit = |n: u32| if n == 0 { u32::MAX } else { n - 1 };
    put32(&mut d, 4, limit(z.max_active)); // MAR (0's based)
    put32(&mut d, 8, limit(z.max_open)); // MOR (0's based)
                                         // RRL, FRL: 0, no limit.
    put64(&mut d, 2816, z.zone_len.get()); // LBAFE0 ZSZE
    d[2824] = 0; // LBAFE0 ZDES: no zone descriptor extension
    d
}

/// I/O Command Set Independent Identify Namespace (CNS 08h; NVMe Base 2.1
/// Figure 320).
pub fn identify_ns_independent(_: &Namespace) -> Vec<u8> {
    let mut d = vec![0u8; IDENTIFY_LEN];
    d[1] = 1; // NMIC: shared
    d[14] = 1; // NSTAT: namespace ready
    d
}

/// Namespace Identification Descriptor list (CNS 03h; NVMe Base 2.1
/// Figure 315): EUI64 (1h), NGUID (2h), UUID (3h), CSI (4h).
pub fn ns_descriptors(ns: &Namespace) -> Vec<u8> {
    let mut d = vec![0u8; IDENTIFY_LEN];
    let mut at = 0;
    let mut add = |nidt: u8, nid: &[u8]| {
        d[at] = nidt;
        d[at + 1] = nid.len() as u8;
        d[at + 4..at + 4 + nid.len()].copy_from_slice(nid);
        at += 4 + nid.len();
    };
    add(1, &ns.ids.eui64);
    add(2, &ns.ids.nguid);
    add(3, &ns.ids.uuid);
    add(4, &[ns.csi]);
    d
}

/// Active Namespace ID list (CNS 02h, or 07h for one command set): NSIDs
/// greater than `nsid`, ascending, at most 1024.
fn active_ns_list(ctrl: &Controller, nsid: u32, csi: Option<u8>) -> Result<Vec<u8>, Status> {
    if nsid >= 0xFFFF_FFFE {
        return Err(Status::INVALID_NAMESPACE);
    }
    let mut d = vec![0u8; IDENTIFY_LEN];
    if let Some(s) = &ctrl.subsystem {
        let ids = s
            .active_namespaces()
            .filter(|ns| ns.nsid > nsid && csi.is_none_or(|c| c == ns.csi))
            .take(1024);
        for (i, ns) in ids.enumerate() {
            put32(&mut d, i * 4, ns.nsid);
        }
    }
    Ok(d)
}

/// I/O Command Set data structure (CNS 1Ch; NVMe Base 2.1 Figure 333):
/// vector 0 = NVM (bit 0) and Zoned Namespace (bit 2).
fn io_command_set_data() -> Vec<u8> {
    let mut d = vec![0u8; IDENTIFY_LEN];
    put64(&mut d, 0, 1 | 1 << 2);
    d
}

/// I/O Command Set Specific Identify Controller for ZNS (CNS 06h, CSI 02h):
/// ZASL at byte 0.
fn identify_ctrl_zns(ctrl: &Controller) -> Vec<u8> {
    let mut d = vec![0u8; IDENTIFY_LEN];
    d[0] = ctrl.opts.zasl;
    d
}

/// Identify Controller (CNS 01h; NVMe Base 2.1 Figure 313).
pub fn identify_controller(ctrl: &Controller) -> Vec<u8> {
    let o = &ctrl.opts;
    let io = ctrl.kind == Kind::Io;
    let mut d = vec![0u8; IDENTIFY_LEN];
    put_ascii(&mut d, 4, 20, &o.serial); // SN
    put_ascii(&mut d, 24, 40, &o.model); // MN
    put_ascii(&mut d, 64, 8, FIRMWARE_REVISION); // FR
    d[72] = 6; // RAB
    let fabrics = !ctrl.is_pcie();
    // CMIC: several controllers (fabrics: one per host association).
    d[76] = if io && fabrics { 1 << 1 } else { 0 };
    d[77] = o.mdts; // MDTS
    put16(&mut d, 78, ctrl.cntlid); // CNTLID
    put32(&mut d, 80, super::fabrics::vs(ctrl)); // VER
    put32(&mut d, 92, oaes(ctrl)); // OAES
    put32(&mut d, 96, u32::from(fabrics)); // CTRATT: 128-bit Host Identifier
    d[111] = if io { 1 } else { 2 }; // CNTRLTYPE
    put16(&mut d, 256, oacs(ctrl)); // OACS: from the admin rows
    d[258] = 3; // ACL (0's based)
    d[259] = o.async_event_limit.saturating_sub(1); // AERL (0's based)
    d[260] = 0b11; // FRMW: slot 1 read-only, one slot
                   // LPA: bit 1 Commands Supported and Effects, bit 2 extended data.
    d[261] = if io { 0b110 } else { 0b100 };
    // ELPE (0's based): the Error Information log of an I/O controller.
    let elpe = (error_log::ENTRIES - 1) as u8;
    d[262] = if io { elpe } else { 0 };
    put16(&mut d, 266, 0x0157); // WCTEMP 343 K
    put16(&mut d, 268, 0x0175); // CCTEMP 373 K
    if fabrics {
        put16(&mut d, 320, 10); // KAS: 1 s granularity (100 ms units)
    }
    d[512] = 0x66; // SQES
    d[513] = 0x44; // CQES
    put16(&mut d, 514, o.max_queue_entries); // MAXCMD
    put32(&mut d, 516, ctrl.nn()); // NN
    if io {
        // ONCS: the NVM command rows' bits, plus bit 4 Save/Select in
        // Features (not a command).
        put16(&mut d, 520, oncs(ctrl) | (1 << 4));
        d[525] = 0b111; // VWC: present; Flush to all namespaces supported
        if io_enabled(ctrl, copy::OPCODE) {
            put16(&mut d, 534, ctrl.opts.personality.ocfs); // OCFS
        }
    }
    put_nul(&mut d, 768, 256, ctrl.subnqn()); // SUBNQN
    if fabrics {
        // SGLS: bit 0 SGLs supported, bit 20 address as offset
        // (in-capsule). On PCIe: 0, PRPs only.
        put32(&mut d, 536, 1 | (1 << 20));
        // Bytes 2047:1792 are for NVMe over Fabrics only (Base 2.1
        // Figure 313): zero on PCIe.
        put32(&mut d, 1792, (64 + o.in_capsule_data) / 16); // IOCCSZ
        put32(&mut d, 1796, 1); // IORCSZ
        put16(&mut d, 1800, 0); // ICDOFF
        d[1802] = 0; // FCATT: dynamic controller model
        d[1803] = 1; // MSDBD
    }
    put16(&mut d, 2048, 0x09C4); // PSD0 MP: 25 W
    d
}

/// Optional Asynchronous Events Supported (Identify Controller bytes
/// 95:92) of an I/O controller: Namespace Attribute Notices (bit 8; the
/// namespaces never change, so the Changed Namespace List stays empty, but
/// Linux only sends Asynchronous Event Requests to a controller with one
/// of the notices it knows) and, with a zoned namespace, Zone Descriptor
/// Changed Notices (bit 27, ZNS 1.1 Figure 44).
pub fn oaes(ctrl: &Controller) -> u32 {
    if ctrl.kind != Kind::Io {
        return 0;
    }
    let zoned = ctrl
        .subsystem
        .as_ref()
        .is_some_and(|s| s.active_namespaces().any(Namespace::is_zoned));
    let zdcn = if zoned {
        AEC_ZONE_DESCRIPTOR_CHANGED
    } else {
        0
    };
    AEC_NS_ATTRIBUTE | zdcn
}

// ---------------------------------------------------------- Get Log Page

// Log Page Identifiers (NVMe Base 2.1, 5.16 Get Log Page; ZNS 1.1 Figure 45).
pub const LID_SUPPORTED_LOGS: u8 = 0x00;
pub const LID_ERROR_INFORMATION: u8 = 0x01;
pub const LID_SMART: u8 = 0x02;
pub const LID_FIRMWARE_SLOT: u8 = 0x03;
pub const LID_COMMAND_EFFECTS: u8 = 0x05;
pub const LID_DISCOVERY: u8 = 0x70;

/// Get Log Page's fields (02h, NVMe Base 2.1 5.16, Figures
/// "Get Log Page - Command Dword 10" to "... Dword 14"):
/// CDW10 LID 7:0, RAE 15, NUMDL 31:16; CDW11 NUMDU 15:0; CDW12/13
/// LPOL/LPOU; CDW14 OT bit 23, CSI 31:24; NSID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetLogPage {
    pub lid: u8,
    pub rae: bool,
    /// NUMD, 0's based dwords.
    pub numd: u64,
    pub lpo: u64,
    pub csi: u8,
    pub offset_is_index: bool,
    pub nsid: u32,
}

impl Decode for GetLogPage {
    fn decode(sqe: &Sqe) -> Self {
        let dw10 = sqe.dw(10);
        GetLogPage {
            lid: dw10 as u8,
            rae: dw10 & (1 << 15) != 0,
            numd: u64::from(dw10 >> 16) | (u64::from(sqe.dw(11) & 0xFFFF) << 16),
            lpo: sqe.qw(12),
            csi: (sqe.dw(14) >> 24) as u8,
            offset_is_index: sqe.dw(14) & (1 << 23) != 0,
            nsid: sqe.nsid(),
        }
    }

    /// NUMD + 1 dwords.
    fn data_len(&self, _: Option<&Namespace>) -> u64 {
        (self.numd + 1) * 4
    }
}

/// Get Log Page (02h), NVMe Base 2.1 5.16.
///
/// A read with RAE (Retain Asynchronous Event) cleared clears the
/// asynchronous events the log page announces (Base 2.1, 5.2), and the
/// Changed Zone List it returned.
pub fn get_log_page(x: &mut Exec<'_>, c: GetLogPage) -> Outcome {
    let GetLogPage {
        lid,
        rae,
        lpo,
        csi,
        offset_is_index,
        nsid,
        ..
    } = c;
    let len = c.data_len(None);
    let ctrl = x.ctrl;
    if offset_is_index {
        return Err(Fail::at(Status::INVALID_FIELD, 58, 7));
    }
    if lpo % 4 != 0 {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW12, 0));
    }
    // MDTS bounds every transfer; never build more than the host's buffer
    // holds.
    check_mdts(x, len)?;
    let log = match (ctrl.kind, lid) {
        (Kind::Io, LID_SUPPORTED_LOGS) => supported_logs(),
        (Kind::Io, LID_ERROR_INFORMATION) => ctrl.state().errors.page(),
        (Kind::Io, LID_SMART) => smart_log(ctrl),
        (Kind::Io, LID_FIRMWARE_SLOT) => firmware_slot_log(),
        // Changed Namespace List (Base 2.1, 5.16.1.5): namespaces never
        // change here.
        (Kind::Io, LID_CHANGED_NS_LIST) => vec![0u8; 4096],
        (Kind::Io, LID_COMMAND_EFFECTS) => {
            if csi != CSI_NVM && csi != CSI_ZNS {
                return Err(Fail::at(Status::INVALID_FIELD, 59, 0));
            }
            effects_log(ctrl, csi)
        }
        (Kind::Io, LID_CHANGED_ZONE_LIST) => changed_zone_list(ctrl, nsid, lpo, rae)?,
        (Kind::Discovery, LID_DISCOVERY) => discovery::log(ctrl),
        _ => return Err(Fail::at(Status::INVALID_LOG_PAGE, AT_CDW10, 0)),
    };
    if lpo > log.len() as u64 {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW12, 0));
    }
    if !rae {
        ctrl.state().events.log_read(lid, nsid);
    }
    let len = len.min(u64::from(x.transfer_len()));
    let start = lpo as usize;
    let end = (lpo + len).min(log.len() as u64) as usize;
    let mut data = log[start..end].to_vec();
    data.resize(len as usize, 0);
    *x.data_in = data;
    Ok(Done::OK)
}

/// Changed Zone List (BFh, ZNS 1.1 4.1.4.1) of zoned namespace `nsid`;
/// without RAE the list starts over and its notice is cleared, under the
/// same lock, so no change is lost between the read and the clearing.
fn changed_zone_list(ctrl: &Controller, nsid: u32, lpo: u64, rae: bool) -> Result<Vec<u8>, Fail> {
    match ctrl.namespace(nsid) {
        Some(ns) if ns.is_zoned() => {}
        _ => return Err(Fail::at(Status::INVALID_FIELD, AT_NSID, 0)),
    }
    if lpo > CHANGED_ZONE_LIST_LEN as u64 {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW12, 0));
    }
    let mut st = ctrl.state();
    let page = st
        .changed_zones
        .get(&nsid)
        .map_or_else(|| ChangedZones::default().page(), ChangedZones::page);
    if !rae {
        st.changed_zones.remove(&nsid);
        st.events.log_read(LID_CHANGED_ZONE_LIST, nsid);
    }
    Ok(page)
}

/// Supported Log Pages (00h; NVMe Base 2.1 Figure 205): LSUPP bit 0.
fn supported_logs() -> Vec<u8> {
    let mut d = vec![0u8; 1024];
    for lid in [
        LID_SUPPORTED_LOGS,
        LID_ERROR_INFORMATION,
        LID_SMART,
        LID_FIRMWARE_SLOT,
        LID_CHANGED_NS_LIST,
        LID_COMMAND_EFFECTS,
        LID_CHANGED_ZONE_LIST,
    ] {
        put32(&mut d, usize::from(lid) * 4, 1);
    }
    d
}

/// SMART / Health Information (02h; NVMe Base 2.1 Figure 207), for the
/// whole controller.
fn smart_log(ctrl: &Controller) -> Vec<u8> {
    let mut d = vec![0u8; 512];
    put16(&mut d, 1, 310); // Composite Temperature, kelvins
    d[3] = 100; // Available Spare
    d[4] = 10; // Available Spare Threshold
    let (mut read, mut written) = (0u64, 0u64);
    if let Some(s) = &ctrl.subsystem {
        for ns in s.active_namespaces() {
            let st = ns.device.stats();
            read = read.saturating_add(st.read_bytes());
            written = written
                .saturating_add(st.written_bytes())
                .saturating_add(st.copied_bytes());
        }
    }
    // Data Units: thousands of 512-byte units, rounded up.
    put64(&mut d, 32, read.div_ceil(512_000));
    put64(&mut d, 48, written.div_ceil(512_000));
    put64(&mut d, 112, 1); // Power Cycles
    let errors = ctrl.state().errors.count();
    put64(&mut d, 176, errors); // Number of Error Information Log Entries
    d
}

/// Firmware Slot Information (03h; NVMe Base 2.1 Figure 208).
fn firmware_slot_log() -> Vec<u8> {
    let mut d = vec![0u8; 512];
    d[0] = 1; // AFI: slot 1 active
    put_ascii(&mut d, 8, 8, FIRMWARE_REVISION); // FRS1
    d
}

// -------------------------------------------------------------- Features

// Feature Identifiers (NVMe Base 2.1 Figure 385).
pub const FID_ARBITRATION: u8 = 0x01;
pub const FID_POWER_MANAGEMENT: u8 = 0x02;
pub const FID_TEMPERATURE_THRESHOLD: u8 = 0x04;
pub const FID_ERROR_RECOVERY: u8 = 0x05;
pub const FID_VOLATILE_WRITE_CACHE: u8 = 0x06;
pub const FID_NUMBER_OF_QUEUES: u8 = 0x07;
pub const FID_WRITE_ATOMICITY: u8 = 0x0A;
pub const FID_ASYNC_EVENT_CONFIG: u8 = 0x0B;
pub const FID_KEEP_ALIVE_TIMER: u8 = 0x0F;
pub const FID_HOST_BEHAVIOR_SUPPORT: u8 = 0x16;
pub const FID_IO_COMMAND_SET_PROFILE: u8 = 0x19;

/// Whether the controller implements feature `fid`.
fn feature_supported(ctrl: &Controller, fid: u8) -> bool {
    match fid {
        FID_ASYNC_EVENT_CONFIG | FID_KEEP_ALIVE_TIMER => true,
        FID_ARBITRATION
        | FID_POWER_MANAGEMENT
        | FID_TEMPERATURE_THRESHOLD
        | FID_ERROR_RECOVERY
        | FID_VOLATILE_WRITE_CACHE
        | FID_NUMBER_OF_QUEUES
        | FID_WRITE_ATOMICITY
        | FID_HOST_BEHAVIOR_SUPPORT
        | FID_IO_COMMAND_SET_PROFILE => ctrl.kind == Kind::Io,
        _ => false,
    }
}

/// Set/Get Features' fields (09h/0Ah, NVMe Base 2.1 5.27 and 5.15,
/// Figures "Set Features - Command Dword 10" and "Get Features - Command
/// Dword 10"): CDW10 FID 7:0, SEL 10:8 (Get), SV bit 31 (Set);
/// CDW11 the feature specific value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub fid: u8,
    pub sel: u8,
    pub save: bool,
    pub value: u32,
}

impl Decode for Features {
    fn decode(sqe: &Sqe) -> Self {
        let dw10 = sqe.dw(10);
        Features {
            fid: dw10 as u8,
            sel: ((dw10 >> 8) & 7) as u8,
            save: dw10 & (1 << 31) != 0,
            value: sqe.dw(11),
        }
    }

    /// Only Host Behavior Support moves data here (Base 2.1, 5.27.1.18).
    fn data_len(&self, _: Option<&Namespace>) -> u64 {
        if self.fid == FID_HOST_BEHAVIOR_SUPPORT {
            HBS_LEN as u64
        } else {
            0
        }
    }
}

/// Set Features (09h), NVMe Base 2.1 5.27.
pub fn set_features(x: &mut Exec<'_>, c: Features) -> Outcome {
    let (fid, v) = (c.fid, c.value);
    let ctrl = x.ctrl;
    if !feature_supported(ctrl, fid) {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW10, 0));
    }
    if c.save {
        return Err(Fail::at(Status::FEATURE_NOT_SAVEABLE, 43, 7));
    }
    let mut st = ctrl.state();
    let f = &mut st.features;
    match fid {
        FID_ARBITRATION => f.arbitration = v,
        FID_POWER_MANAGEMENT => {
            // Only power state 0 exists (NPSS = 0).
            if v & 0x1F != 0 {
                return Err(Status::INVALID_FIELD.into());
            }
            f.power_management = v & 0xFF;
        }
        FID_TEMPERATURE_THRESHOLD => {
            let tmpth = v as u16;
            let tmpsel = (v >> 16) & 0xF;
            match (tmpsel, (v >> 20) & 3) {
                (0, 0) => f.temp_over = tmpth,
                (0, 1) => f.temp_under = tmpth,
                _ => return Err(Status::INVALID_FIELD.into()),
            }
        }
        FID_ERROR_RECOVERY => {
            // DULBE (bit 16) needs deallocated-block errors: not supported.
            if v & (1 << 16) != 0 {
                return Err(Status::INVALID_FIELD.into());
            }
            f.error_recovery = v & 0xFFFF;
        }
        FID_VOLATILE_WRITE_CACHE => f.volatile_write_cache = v & 1 != 0,
        FID_NUMBER_OF_QUEUES => {
            let (nsqr, ncqr) = (v & 0xFFFF, v >> 16);
            if nsqr == 0xFFFF || ncqr == 0xFFFF {
                return Err(Status::INVALID_FIELD.into());
            }
            if !st.io_queues.is_empty() {
                return Err(Status::COMMAND_SEQUENCE_ERROR.into());
            }
            let max = u32::from(ctrl.opts.max_io_queues.max(1) - 1);
            let n = nsqr.max(ncqr).min(max) as u16;
            st.features.queues_allocated = Some(n);
            return Ok(Done::dw0(u32::from(n) | (u32::from(n) << 16)));
        }
        FID_WRITE_ATOMICITY => f.write_atomicity = v & 1,
        // Bits of events this controller never raises are kept as given
        // and change nothing.
        FID_ASYNC_EVENT_CONFIG => f.async_event_config = v,
        FID_KEEP_ALIVE_TIMER => st.kato_ms = v,
        FID_HOST_BEHAVIOR_SUPPORT => {
            let Some(hbs) = x.data_out.get(..HBS_LEN) else {
                return Err(Status::DATA_SGL_LENGTH_INVALID.into());
            };
            // ACRE, ETDAS, LBAFEE, HDISNS are 0 or 1.
            if hbs[..4].iter().any(|&b| b > 1) {
                return Err(Status::INVALID_FIELD.into());
            }
            f.hbs = [0; HBS_LEN];
            f.hbs[..6].copy_from_slice(&hbs[..6]);
            log::info!(
                "ctrl {}: Host Behavior Support ACRE {} LBAFEE {} CDFE {:#x}",
                ctrl.cntlid,
                hbs[0],
                hbs[2],
                f.cdfe()
            );
        }
        FID_IO_COMMAND_SET_PROFILE => {
            if v & 0x1FF != 0 {
                return Err(Status::INVALID_FIELD.into());
            }
        }
        _ => return Err(Status::INVALID_FIELD.into()),
    }
    Ok(Done::OK)
}

/// Get Features (0Ah), NVMe Base 2.1 5.15.
pub fn get_features(x: &mut Exec<'_>, c: Features) -> Outcome {
    let (fid, sel) = (c.fid, c.sel);
    let ctrl = x.ctrl;
    if !feature_supported(ctrl, fid) {
        return Err(Fail::at(Status::INVALID_FIELD, AT_CDW10, 0));
    }
    let st = ctrl.state();
    let defaults = controller::Features::default();
    let f = match sel {
        0 => &st.features,
        // Nothing is saveable: saved values are the defaults.
        1 | 2 => &defaults,
        // Supported capabilities: changeable (bit 2), not saveable, not
        // namespace specific.
        3 => return Ok(Done::dw0(1 << 2)),
        _ => return Err(Status::INVALID_FIELD.into()),
    };
    let dw0 = match fid {
        FID_ARBITRATION => f.arbitration,
        FID_POWER_MANAGEMENT => f.power_management,
        FID_TEMPERATURE_THRESHOLD => match (c.value >> 20) & 3 {
            0 => u32::from(f.temp_over),
            1 => u32::from(f.temp_under) | (1 << 20),
            _ => return Err(Status::INVALID_FIELD.into()),
        },
        FID_ERROR_RECOVERY => f.error_recovery,
        FID_VOLATILE_WRITE_CACHE => u32::from(f.volatile_write_cache),
        FID_NUMBER_OF_QUEUES => {
            let n = f
                .queues_allocated
                .map_or_else(|| u32::from(ctrl.opts.max_io_queues.max(1) - 1), u32::from);
            n | (n << 16)
        }
        FID_WRITE_ATOMICITY => f.write_atomicity,
        FID_ASYNC_EVENT_CONFIG => f.async_event_config,
        FID_KEEP_ALIVE_TIMER => {
            if sel == 0 {
                st.kato_ms
            } else {
                0
            }
        }
        FID_HOST_BEHAVIOR_SUPPORT => {
            *x.data_in = f.hbs.to_vec();
            0
        }
        FID_IO_COMMAND_SET_PROFILE => 0,
        _ => return Err(Status::INVALID_FIELD.into()),
    };
    Ok(Done::dw0(dw0))
}

// ------------------------------------------------------------------ Misc

/// Asynchronous Event Request (0Ch), NVMe Base 2.1 5.2: completes when an
/// event is reported; the transport collects it with
/// [`super::Queue::take_deferred`].
pub fn async_event_request(x: &mut Exec<'_>, _: NoFields) -> Outcome {
    x.ctrl.async_event_request(x.sqe.cid())?;
    Ok(Done::Deferred)
}

/// A command with no command specific fields (Asynchronous Event
/// Request, Keep Alive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoFields;

impl Decode for NoFields {
    fn decode(_: &Sqe) -> Self {
        NoFields
    }
}

/// Abort's fields (08h, NVMe Base 2.1 5.1, Figure "Abort -
/// Command Dword 10"): CDW10 SQID bits
/// 15:0, CID 31:16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    pub sqid: u16,
    pub cid: u16,
}

impl Decode for Abort {
    fn decode(sqe: &Sqe) -> Self {
        let dw10 = sqe.dw(10);
        Abort {
            sqid: dw10 as u16,
            cid: (dw10 >> 16) as u16,
        }
    }
}

/// Abort (08h), NVMe Base 2.1 5.1. Completion Dword 0 bit 0 is cleared when the command was aborted, set
/// when it was not. Only Asynchronous Event Requests stay outstanding here
/// (every other command completes before the next is taken): an aborted
/// one completes with Command Abort Requested. Any other command named has
/// completed already or is still with the transport, and is not aborted.
pub fn abort(x: &mut Exec<'_>, c: Abort) -> Outcome {
    let Abort { sqid, cid } = c;
    if sqid == 0 && x.ctrl.state().events.abort(cid) {
        log::debug!(
            "ctrl {}: Asynchronous Event Request {cid:#x} aborted",
            x.ctrl.cntlid
        );
        return Ok(Done::dw0(0));
    }
    Ok(Done::dw0(1))
}

/// Keep Alive (18h), NVMe Base 2.1 5.25: the dispatcher already noted the
/// host's activity.
pub fn keep_alive(_: &mut Exec<'_>, _: NoFields) -> Outcome {
    Ok(Done::OK)
}
