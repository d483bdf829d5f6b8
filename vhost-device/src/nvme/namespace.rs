//! A namespace: the NVM (CSI 00h) or Zoned Namespace (CSI 02h) view of one
//! storage core device, with its identifiers and Copy limits.

use std::sync::Arc;

use super::status::{storage_status, Status, ZoneResource};
use crate::{
    storage::{Device, StorageError, ZoneRules, ZoneType},
    timing::DeviceTiming,
};

/// Command Set Identifiers (NVMe Base 2.1, Figure "Command Set Identifiers").
pub const CSI_NVM: u8 = 0x00;
pub const CSI_ZNS: u8 = 0x02;

/// Copy limits of a namespace (Identify Namespace MSSRL, MCL, MSRC; NVM
/// CS 1.1, 4.1.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyLimits {
    /// Maximum Single Source Range Length, in logical blocks (1-based).
    pub mssrl: u16,
    /// Maximum Copy Length over all ranges, in logical blocks (1-based).
    pub mcl: u32,
    /// Maximum Source Range Count, 0's based (0 = one range).
    pub msrc: u8,
}

impl Default for CopyLimits {
    fn default() -> Self {
        CopyLimits {
            mssrl: 4096,
            mcl: 65536,
            msrc: 127,
        }
    }
}

/// Namespace identifiers, derived from the subsystem NQN and NSID so they
/// are stable across restarts and unique per namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NsIds {
    pub eui64: [u8; 8],
    pub nguid: [u8; 16],
    pub uuid: [u8; 16],
}

fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    data.iter().fold(seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl NsIds {
    fn new(nqn: &str, nsid: u32) -> Self {
        let mut key = nqn.as_bytes().to_vec();
        key.extend_from_slice(&nsid.to_le_bytes());
        let a = fnv1a(0xcbf2_9ce4_8422_2325, &key).to_be_bytes();
        let b = fnv1a(0x8422_2325_cbf2_9ce4, &key).to_be_bytes();
        let c = fnv1a(0x1234_5678_9abc_def0, &key).to_be_bytes();
        let mut eui64 = a;
        // IEEE OUI-less locally administered EUI-64 (bit 1 of byte 0).
        eui64[0] = (eui64[0] | 0x02) & !0x01;
        let mut nguid = [0u8; 16];
        nguid[..8].copy_from_slice(&b);
        nguid[8..].copy_from_slice(&a);
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&c);
        uuid[8..].copy_from_slice(&b);
        // RFC 4122 version 4, variant 10b.
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        NsIds { eui64, nguid, uuid }
    }
}

/// One active namespace.
#[derive(Debug)]
pub struct Namespace {
    pub nsid: u32,
    pub device: Arc<Device>,
    /// [`CSI_NVM`] or [`CSI_ZNS`].
    pub csi: u8,
    pub copy_limits: CopyLimits,
    pub ids: NsIds,
    /// The device timing model (`--timing`), if on.
    pub timing: Option<Arc<DeviceTiming>>,
}

impl Namespace {
    /// A namespace over `device`: zoned => ZNS, plain => NVM. A zoned device
    /// with conventional zones is refused (ZNS 1.1 defines only the
    /// Sequential Write Required zone type, and Linux rejects others).
    pub fn new(
        nqn: &str,
        nsid: u32,
        device: Arc<Device>,
        copy_limits: CopyLimits,
    ) -> Result<Self, String> {
        let geo = *device.geometry();
        let csi = match geo.zones {
            None => CSI_NVM,
            Some(z) if z.conventional > 0 => {
                return Err(format!(
                    "{} conventional zones: ZNS namespaces have none",
                    z.conventional
                ))
            }
            Some(z) if z.sequential != ZoneType::SequentialWriteRequired => {
                return Err(format!(
                    "{:?} zones: ZNS namespaces have sequential write required zones only",
                    z.sequential
                ))
            }
            Some(z) => {
                if !z.zone_len.get().is_power_of_two() {
                    log::warn!(
                        "namespace {nsid}: zone size {} blocks is not a power of two; Linux will \
                         not use it",
                        z.zone_len.get()
                    );
                }
                // ZNS 1.1's zone rules where they differ from ZBC-2's:
                device.set_zone_rules(ZoneRules {
                    // An open zone goes to ZSC on Close Zone even with
                    // WP = ZSLBA (2.1.1.3.2/2.1.1.3.3, ZSIO:ZSC, ZSEO:ZSC).
                    close_unwritten_to_empty: false,
                    // No gap zones: the LBAs from ZSLBA + ZCAP to the
                    // zone's end belong to the zone, and with RAZB (OZCS
                    // bit 0) a read may run from them into the next zone
                    // (Figure 17: Zone Boundary Error only between zones).
                    capacity_bounds_reads: false,
                    // ZSE:ZSF "shall not impact resource usage"
                    // (2.1.1.4.1 g).
                    finish_empty_takes_active: false,
                });
                CSI_ZNS
            }
        };
        // NVM CS 1.1 Identify Namespace: MSSRL and MCL are non-zero when
        // Copy is supported; nothing orders them, and an MCL below MSSRL
        // (one range then stops at MCL) is what `--ns ...,mcl=` tests.
        if copy_limits.mssrl == 0 || copy_limits.mcl == 0 {
            return Err(format!(
                "bad copy limits {copy_limits:?}: MSSRL and MCL must be non-zero"
            ));
        }
        Ok(Namespace {
            nsid,
            device,
            csi,
            copy_limits,
            ids: NsIds::new(nqn, nsid),
            timing: None,
        })
    }

    /// Whether this is a zoned namespace.
    pub fn is_zoned(&self) -> bool {
        self.csi == CSI_ZNS
    }

    /// Logical block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.device.geometry().block_size
    }

    /// LBA Data Size as a power of two (LBADS).
    pub fn lbads(&self) -> u8 {
        self.block_size().trailing_zeros() as u8
    }

    /// Namespace size in logical blocks.
    pub fn nsze(&self) -> u64 {
        self.device.geometry().capacity.get()
    }

    /// The status for a storage error on this namespace.
    pub fn status(&self, e: &StorageError) -> Status {
        storage_status(e, || self.zone_resource())
    }

    /// Which zone limit is exhausted: active if the active limit is reached,
    /// else open.
    fn zone_resource(&self) -> ZoneResource {
        let Some(z) = self.device.geometry().zones else {
            return ZoneResource::Open;
        };
        if z.max_active == 0 {
            return ZoneResource::Open;
        }
        let active = self
            .device
            .report_zones(crate::storage::Lba::new(0), usize::MAX, |zone| {
                zone.cond.is_active()
            })
            .map(|v| v.len())
            .unwrap_or(0);
        if active >= z.max_active as usize {
            ZoneResource::Active
        } else {
            ZoneResource::Open
        }
    }
}
