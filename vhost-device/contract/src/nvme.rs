//! NVMe values of the guest contract: where the subsystem is
//! (`zonecopy.nvme=`) and the diff-nvme suite's peer controller
//! (`zonecopy.peer-nvme=`).

use std::{fmt, str::FromStr};

use crate::spec::number;

/// Subsystem NQN when none is given (backend and runner).
pub const DEFAULT_NQN: &str = "nqn.2026-11.dev.zonecopy:sub0";

/// Serial Number of the diff-nvme suite's peer controller (QEMU's own
/// `-device nvme`): how the guest tells it apart.
pub const PEER_NVME_SERIAL: &str = "ZCPEER0001";

/// Why an NVMe value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NvmeValueError(pub String);

fn bad(s: impl Into<String>) -> NvmeValueError {
    NvmeValueError(s.into())
}

/// `key=value` pairs, each key from `known` at most once, none empty.
fn pairs<'a>(
    value: &'a str,
    known: &[&'static str],
) -> Result<Vec<(&'static str, &'a str)>, NvmeValueError> {
    let mut out: Vec<(&'static str, &'a str)> = Vec::new();
    for item in value.split(',') {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| bad(format!("{item:?} is not key=value")))?;
        let k = known
            .iter()
            .copied()
            .find(|x| *x == k)
            .ok_or_else(|| bad(format!("unknown key {k:?} (expected {})", known.join(", "))))?;
        if v.is_empty() {
            return Err(bad(format!("{k}= is empty")));
        }
        if out.iter().any(|(x, _)| *x == k) {
            return Err(bad(format!("{k} given twice")));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn get<'a>(p: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// `zonecopy.nvme=`: where the NVMe/TCP subsystem listens
/// (`traddr=<ip>,trsvcid=<port>,nqn=<NQN>`), or (`transport=pcie,nqn=<NQN>`)
/// that the subsystem's controller is a PCI function the nvme-pci driver
/// finds by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeTarget {
    /// `transport=pcie`: no fabrics connect; `traddr` is empty and
    /// `trsvcid` 0.
    pub pcie: bool,
    /// `traddr=`: transport address (an IP address).
    pub traddr: String,
    /// `trsvcid=`: transport service id (the TCP port).
    pub trsvcid: u16,
    /// `nqn=`: the subsystem NQN.
    pub nqn: String,
}

impl NvmeTarget {
    /// The subsystem over NVMe/TCP.
    pub fn tcp(traddr: impl Into<String>, trsvcid: u16, nqn: impl Into<String>) -> Self {
        NvmeTarget {
            pcie: false,
            traddr: traddr.into(),
            trsvcid,
            nqn: nqn.into(),
        }
    }

    /// The subsystem's controller on PCIe.
    pub fn pcie(nqn: impl Into<String>) -> Self {
        NvmeTarget {
            pcie: true,
            traddr: String::new(),
            trsvcid: 0,
            nqn: nqn.into(),
        }
    }
}

impl FromStr for NvmeTarget {
    type Err = NvmeValueError;

    /// `traddr`, `trsvcid` and `nqn` (or `transport=pcie` and `nqn`), each
    /// exactly once, in any order; `transport=tcp` may be given.
    fn from_str(value: &str) -> Result<Self, NvmeValueError> {
        let p = pairs(value, &["traddr", "trsvcid", "nqn", "transport"])?;
        let nqn = get(&p, "nqn").ok_or_else(|| bad("nqn= is missing"))?;
        match get(&p, "transport") {
            None | Some("tcp") => {}
            Some("pcie") => {
                if get(&p, "traddr").is_some() || get(&p, "trsvcid").is_some() {
                    return Err(bad("transport=pcie takes no traddr= or trsvcid="));
                }
                return Ok(NvmeTarget::pcie(nqn));
            }
            Some(t) => return Err(bad(format!("transport={t} is not tcp or pcie"))),
        }
        let traddr = get(&p, "traddr").ok_or_else(|| bad("traddr= is missing"))?;
        let port = get(&p, "trsvcid").ok_or_else(|| bad("trsvcid= is missing"))?;
        let trsvcid = number("trsvcid", port)
            .ok()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or_else(|| bad(format!("trsvcid={port} is not a port number")))?;
        if !nqn.starts_with("nqn.") || nqn.len() > 223 {
            return Err(bad(format!(
                "nqn={nqn} is not an NQN (nqn.yyyy-mm.<domain>..., at most 223 bytes)"
            )));
        }
        Ok(NvmeTarget::tcp(traddr, trsvcid, nqn))
    }
}

impl fmt::Display for NvmeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pcie {
            write!(f, "transport=pcie,nqn={}", self.nqn)
        } else {
            write!(
                f,
                "traddr={},trsvcid={},nqn={}",
                self.traddr, self.trsvcid, self.nqn
            )
        }
    }
}

/// `zonecopy.peer-nvme=`: the geometry and limits the runner gave QEMU's
/// NVMe controller (the same as our first ZNS and NVM namespaces). Every
/// key once, decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerNvme {
    /// Serial Number of the peer controller.
    pub serial: String,
    pub bs: u64,
    /// Size of the zoned namespace (NSID 1) in bytes.
    pub size: u64,
    pub zone: u64,
    pub cap: u64,
    /// 0 = no limit.
    pub max_open: u64,
    pub max_active: u64,
    /// Size of the plain namespace (NSID 2) in bytes.
    pub nvm_size: u64,
    pub mssrl: u64,
    pub mcl: u64,
    /// 0's based, as in Identify Namespace.
    pub msrc: u64,
}

const PEER_KEYS: [&str; 11] = [
    "serial",
    "bs",
    "size",
    "zone",
    "cap",
    "max-open",
    "max-active",
    "nvm-size",
    "mssrl",
    "mcl",
    "msrc",
];

impl PeerNvme {
    fn numbers(&self) -> [u64; 10] {
        [
            self.bs,
            self.size,
            self.zone,
            self.cap,
            self.max_open,
            self.max_active,
            self.nvm_size,
            self.mssrl,
            self.mcl,
            self.msrc,
        ]
    }
}

impl FromStr for PeerNvme {
    type Err = NvmeValueError;

    fn from_str(value: &str) -> Result<Self, NvmeValueError> {
        let p = pairs(value, &PEER_KEYS)?;
        let mut n = [0u64; 10];
        for (slot, key) in n.iter_mut().zip(&PEER_KEYS[1..]) {
            let v = get(&p, key).ok_or_else(|| bad(format!("{key}= is missing")))?;
            *slot = number(key, v).map_err(|e| bad(e.to_string()))?;
        }
        let [bs, size, zone, cap, max_open, max_active, nvm_size, mssrl, mcl, msrc] = n;
        let serial = get(&p, "serial").ok_or_else(|| bad("serial= is missing"))?;
        if bs == 0 || zone == 0 || cap > zone || size % zone != 0 {
            return Err(bad("bs, zone, cap and size do not make a zone layout"));
        }
        Ok(PeerNvme {
            serial: serial.to_owned(),
            bs,
            size,
            zone,
            cap,
            max_open,
            max_active,
            nvm_size,
            mssrl,
            mcl,
            msrc,
        })
    }
}

impl fmt::Display for PeerNvme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "serial={}", self.serial)?;
        for (k, v) in PEER_KEYS[1..].iter().zip(self.numbers()) {
            write!(f, ",{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn targets() {
        let t: NvmeTarget = "transport=pcie,nqn=nqn.2026-11.dev.zonecopy:sub0"
            .parse()
            .unwrap();
        assert_eq!(t, NvmeTarget::pcie(DEFAULT_NQN));
        assert_eq!(
            t.to_string(),
            "transport=pcie,nqn=nqn.2026-11.dev.zonecopy:sub0"
        );
        let t: NvmeTarget = "transport=tcp,traddr=1.2.3.4,trsvcid=1,nqn=nqn.x"
            .parse()
            .unwrap();
        assert_eq!(t.to_string(), "traddr=1.2.3.4,trsvcid=1,nqn=nqn.x");
        for (v, why) in [
            ("transport=pcie", "nqn= is missing"),
            ("transport=pcie,traddr=1.2.3.4,nqn=nqn.x", "takes no traddr"),
            ("transport=rdma,nqn=nqn.x", "not tcp or pcie"),
            ("traddr=1.2.3.4,trsvcid=1", "nqn= is missing"),
            ("traddr=1.2.3.4,nqn=nqn.x", "trsvcid= is missing"),
            ("trsvcid=1,nqn=nqn.x", "traddr= is missing"),
            ("traddr=a,trsvcid=70000,nqn=nqn.x", "not a port"),
            ("traddr=a,trsvcid=0,nqn=nqn.x", "not a port"),
            ("traddr=a,trsvcid=1,nqn=foo", "not an NQN"),
            ("traddr=a,trsvcid=1,nqn=nqn.x,traddr=b", "twice"),
            ("traddr=a,trsvcid=1,nqn=nqn.x,hostnqn=y", "unknown key"),
            ("traddr=,trsvcid=1,nqn=nqn.x", "empty"),
        ] {
            let e = v.parse::<NvmeTarget>().unwrap_err().to_string();
            assert!(e.contains(why), "{v}: {e}");
        }
    }

    #[test]
    fn peer() {
        let s = "serial=ZCPEER0001,bs=4096,size=67108864,zone=4194304,cap=3145728,\
                 max-open=4,max-active=6,nvm-size=33554432,mssrl=16,mcl=64,msrc=7";
        let p: PeerNvme = s.parse().unwrap();
        assert_eq!(
            (p.zone, p.cap, p.max_open, p.max_active),
            (4 << 20, 3 << 20, 4, 6)
        );
        assert_eq!((p.nvm_size, p.mssrl, p.mcl, p.msrc), (32 << 20, 16, 64, 7));
        assert_eq!(p.to_string(), s);
        for bad in [
            "serial=S,bs=4096",
            "bs=4096,size=8,zone=4,cap=4,max-open=0,max-active=0,nvm-size=1,mssrl=1,mcl=1,msrc=0",
            "serial=S,bs=1,size=8,zone=4,cap=5,max-open=0,max-active=0,nvm-size=1,mssrl=1,mcl=1,msrc=0",
            "serial=S,bogus=1",
        ] {
            assert!(bad.parse::<PeerNvme>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn target_round_trips(pcie: bool, a in "[0-9.]{1,15}", port in 1u16.., sub in "[a-z0-9:.-]{1,40}") {
            let nqn = format!("nqn.{sub}");
            let t = if pcie { NvmeTarget::pcie(nqn) } else { NvmeTarget::tcp(a, port, nqn) };
            prop_assert_eq!(t.to_string().parse::<NvmeTarget>(), Ok(t));
        }

        #[test]
        fn peer_round_trips(serial in "[A-Z0-9]{1,20}", bs in 1u64..65536, zone_blocks in 1u64..100,
                            less in 0u64..100, zones in 1u64..100, n in any::<[u64; 6]>()) {
            let p = PeerNvme {
                serial,
                bs,
                size: zone_blocks * bs * zones,
                zone: zone_blocks * bs,
                cap: (zone_blocks - less % zone_blocks) * bs,
                max_open: n[0],
                max_active: n[1],
                nvm_size: n[2],
                mssrl: n[3],
                mcl: n[4],
                msrc: n[5],
            };
            prop_assert_eq!(p.to_string().parse::<PeerNvme>(), Ok(p));
        }
    }
}
