//! The guest contract's kernel command line (ARCHITECTURE.md, "The guest
//! contract"): every `zonecopy.*` key, [`Config`]'s `Display` that renders
//! them (host side) and [`parse`] that reads `/proc/cmdline` (guest side).
//!
//! - `zonecopy.suite=NAME`
//! - `zonecopy.lun<N>=<kind>:bs=<bytes>,size=<bytes>[,zone=..,cap=..,conv=..,urswrz=0|1]`
//!   ([`LunSpec`]: `hm`, `ha` or `disk`)
//! - `zonecopy.control=<ipv4>:<port>`: the backend's control socket as the
//!   guest reaches it (QEMU user networking: `10.0.2.2:PORT`)
//! - `zonecopy.control_token=<secret>`: what a control client sends first
//!   (`{"cmd":"auth","token":...}`) on that socket
//! - `zonecopy.nvme=traddr=<ip>,trsvcid=<port>,nqn=<NQN>` or
//!   `transport=pcie,nqn=<NQN>` ([`NvmeTarget`])
//! - `zonecopy.ns<N>=<kind>:bs=..,size=..[,zone=..,cap=..,conv=..]` one per
//!   namespace (N = NSID, from 1; [`NsSpec`]: `zns` or `nvm`)
//! - `zonecopy.xfail=<id>[,<id>...]`: known bugs of the booted kernel
//! - `zonecopy.scsihd=bs=<bytes>,size=<bytes>`: the bench suite's reference
//!   disks (QEMU's scsi-hd, products `ZCBENCH-REF` and `ZCBENCH-REF-WB`)
//! - `zonecopy.sink=<ipv4>:<port>`: the bench suite's discard sink and zero
//!   source (ci/src/sink.rs)
//! - `zonecopy.nvmeref=bs=<bytes>,size=<bytes>`: the bench suite's reference
//!   NVMe namespaces over PCIe (QEMU's `-device nvme`, serials `ZCNVMEREF`
//!   and `ZCNVMEREF-WB`, NSID 1 each)
//! - `zonecopy.fio=rounds=<n>,runtime=<seconds>` ([`FioPlan`]): how often
//!   and how long the bench suite measures each fio cell
//! - `zonecopy.peer-nvme=serial=<S>,bs=..,size=..,zone=..,cap=..,max-open=..,max-active=..,nvm-size=..,mssrl=..,mcl=..,msrc=..`
//!   ([`PeerNvme`]): the diff-nvme suite's peer, QEMU's own NVMe controller
//! - `zonecopy.run=<hex>`: run mode's command (hex-encoded, may be empty)
//!
//! Numbers are plain decimal. Any other `zonecopy.` key, a repeated key or a
//! malformed value is an error naming the offending word; words without the
//! `zonecopy.` prefix belong to the kernel and are ignored.

use std::{collections::BTreeMap, fmt, net::SocketAddr};

use crate::{
    fio::FioPlan,
    nvme::{NvmeTarget, PeerNvme},
    spec::{number, LunSpec, NsSpec},
};

/// The prefix of every key.
pub const PREFIX: &str = "zonecopy.";

/// Every key, without [`PREFIX`]; `lun` and `ns` take a number.
pub const KEYS: [&str; 13] = [
    "suite",
    "lun",
    "control",
    "control_token",
    "nvme",
    "ns",
    "xfail",
    "scsihd",
    "sink",
    "nvmeref",
    "fio",
    "peer-nvme",
    "run",
];

/// Everything the host tells the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `zonecopy.suite=`
    pub suite: Option<String>,
    /// `zonecopy.lun<N>=`, by LUN.
    pub luns: BTreeMap<u64, LunSpec>,
    /// `zonecopy.run=` (hex-encoded command, possibly empty).
    pub run: Option<String>,
    /// `zonecopy.control=`: the backend's control socket (TCP), if given.
    pub control: Option<SocketAddr>,
    /// `zonecopy.control_token=`: the secret to send first on it.
    pub control_token: Option<String>,
    /// `zonecopy.nvme=`: the NVMe subsystem, if given.
    pub nvme: Option<NvmeTarget>,
    /// `zonecopy.ns<N>=`, by NSID.
    pub namespaces: BTreeMap<u32, NsSpec>,
    /// `zonecopy.xfail=`: known-bug ids, in order given.
    pub xfail: Vec<String>,
    /// `zonecopy.scsihd=`: the reference scsi-hds' geometry (a `disk`), if
    /// attached.
    pub scsi_hd: Option<LunSpec>,
    /// `zonecopy.sink=`: the discard sink / zero source, if given.
    pub sink: Option<SocketAddr>,
    /// `zonecopy.nvmeref=`: the reference QEMU NVMe namespaces' geometry
    /// (a `disk`), if attached.
    pub nvme_ref: Option<LunSpec>,
    /// `zonecopy.fio=`: the bench suite's fio rounds, if not the default.
    pub fio: Option<FioPlan>,
    /// `zonecopy.peer-nvme=`: QEMU's NVMe controller, if attached.
    pub peer_nvme: Option<PeerNvme>,
}

/// Why the command line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdlineError {
    /// The offending command-line word.
    pub word: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.word, self.reason)
    }
}

impl std::error::Error for CmdlineError {}

/// The entries, space-separated, in a fixed order (suite, LUNs, control,
/// NVMe, namespaces, xfail, bench extras, peer, run).
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<String> = Vec::new();
        let mut put =
            |key: &str, value: &dyn fmt::Display| entries.push(format!("{PREFIX}{key}={value}"));
        if let Some(s) = &self.suite {
            put("suite", s);
        }
        for (n, l) in &self.luns {
            put(&format!("lun{n}"), l);
        }
        if let Some(a) = &self.control {
            put("control", a);
        }
        if let Some(t) = &self.control_token {
            put("control_token", t);
        }
        if let Some(t) = &self.nvme {
            put("nvme", t);
        }
        for (n, s) in &self.namespaces {
            put(&format!("ns{n}"), s);
        }
        if !self.xfail.is_empty() {
            put("xfail", &self.xfail.join(","));
        }
        if let Some(d) = &self.scsi_hd {
            put("scsihd", &d.params());
        }
        if let Some(a) = &self.sink {
            put("sink", a);
        }
        if let Some(d) = &self.nvme_ref {
            put("nvmeref", &d.params());
        }
        if let Some(p) = &self.fio {
            put("fio", p);
        }
        if let Some(p) = &self.peer_nvme {
            put("peer-nvme", p);
        }
        if let Some(r) = &self.run {
            put("run", r);
        }
        f.write_str(&entries.join(" "))
    }
}

/// Sets a key given at most once.
fn once<T>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), String> {
    match slot.replace(value) {
        Some(_) => Err(format!("zonecopy.{key} given twice")),
        None => Ok(()),
    }
}

fn address(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?} is not <ip>:<port>"))
}

/// A reference disk's `bs=..,size=..`.
fn disk(value: &str) -> Result<LunSpec, String> {
    format!("disk:{value}")
        .parse()
        .map_err(|e: crate::spec::SpecError| e.to_string())
}

impl Config {
    /// Applies one `key=value` (without the prefix).
    fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "suite" if value.is_empty() => Err("empty suite name".into()),
            "suite" => once(&mut self.suite, value.to_owned(), key),
            "run" => once(&mut self.run, value.to_owned(), key),
            "control" => once(&mut self.control, address(value)?, key),
            "control_token" => {
                if value.is_empty()
                    || value.len() > 256
                    || !value.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err("expected 1-256 printable characters".into());
                }
                once(&mut self.control_token, value.to_owned(), key)
            }
            "nvme" => once(
                &mut self.nvme,
                value.parse().map_err(|e| format!("{e}"))?,
                key,
            ),
            "scsihd" => once(&mut self.scsi_hd, disk(value)?, key),
            "nvmeref" => once(&mut self.nvme_ref, disk(value)?, key),
            "sink" => once(&mut self.sink, address(value)?, key),
            "fio" => once(&mut self.fio, value.parse()?, key),
            "peer-nvme" => once(
                &mut self.peer_nvme,
                value.parse().map_err(|e| format!("{e}"))?,
                key,
            ),
            "xfail" => {
                for id in value.split(',').filter(|s| !s.is_empty()) {
                    if !self.xfail.iter().any(|x| x == id) {
                        self.xfail.push(id.to_owned());
                    }
                }
                Ok(())
            }
            _ => self.apply_numbered(key, value),
        }
    }

    /// `ns<N>=` and `lun<N>=`.
    fn apply_numbered(&mut self, key: &str, value: &str) -> Result<(), String> {
        if let Some(n) = key.strip_prefix("ns") {
            let nsid = number("NSID", n)
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|&v| v != 0 && v != u32::MAX)
                .ok_or_else(|| format!("NSID {n:?} is not in 1..=4294967294"))?;
            let spec: NsSpec = value.parse().map_err(|e| format!("{e}"))?;
            if self.namespaces.insert(nsid, spec).is_some() {
                return Err(format!("namespace {nsid} given twice"));
            }
            Ok(())
        } else if let Some(n) = key.strip_prefix("lun") {
            let lun = number("LUN", n).map_err(|e| format!("LUN number: {e}"))?;
            let spec: LunSpec = value.parse().map_err(|e| format!("{e}"))?;
            if self.luns.insert(lun, spec).is_some() {
                return Err(format!("LUN {lun} given twice"));
            }
            Ok(())
        } else {
            Err(format!("unknown key zonecopy.{key}"))
        }
    }
}

/// Parses a whole `/proc/cmdline`.
pub fn parse(cmdline: &str) -> Result<Config, CmdlineError> {
    let mut cfg = Config::default();
    for word in cmdline.split_whitespace() {
        let Some(rest) = word.strip_prefix(PREFIX) else {
            continue;
        };
        let err = |reason: String| CmdlineError {
            word: word.to_owned(),
            reason,
        };
        let (key, value) = rest
            .split_once('=')
            .ok_or_else(|| err("expected key=value".into()))?;
        cfg.apply(key, value).map_err(err)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::spec::{LunKind, NsKind, ZoneSpec};

    const MIB: u64 = 1 << 20;

    #[test]
    fn full_line() {
        let c = parse(
            "console=ttyS0 quiet zonecopy.suite=smoke \
             zonecopy.lun0=hm:bs=4096,size=67108864,zone=4194304,cap=3145728,conv=2 \
             zonecopy.lun1=disk:bs=512,size=1048576\n",
        )
        .unwrap();
        assert_eq!(c.suite.as_deref(), Some("smoke"));
        assert_eq!(c.run, None);
        assert_eq!(
            c.luns[&0],
            LunSpec {
                kind: LunKind::HostManaged,
                block_size: 4096,
                size: 64 * MIB,
                zones: Some(ZoneSpec {
                    zone_size: 4 * MIB,
                    capacity: 3 * MIB,
                    conventional: 2,
                    urswrz: true
                }),
            }
        );
        assert_eq!(c.luns[&0].nr_zones(), Some(16));
        assert_eq!(c.luns[&1], LunSpec::disk(512, MIB));
        assert_eq!(
            c.to_string(),
            "zonecopy.suite=smoke \
             zonecopy.lun0=hm:bs=4096,size=67108864,zone=4194304,cap=3145728,conv=2 \
             zonecopy.lun1=disk:bs=512,size=1048576"
        );
    }

    #[test]
    fn every_key_renders_and_parses_back() {
        let line = "zonecopy.suite=bench zonecopy.lun0=disk:bs=4096,size=201326592 \
             zonecopy.control=10.0.2.2:4321 zonecopy.control_token=0a1b \
             zonecopy.nvme=traddr=10.0.2.2,trsvcid=4420,nqn=nqn.2026-11.dev.zonecopy:sub0 \
             zonecopy.ns1=zns:bs=4096,size=67108864,zone=4194304,cap=3145728,conv=0 \
             zonecopy.ns2=nvm:bs=512,size=1048576 zonecopy.xfail=a,b,c \
             zonecopy.scsihd=bs=4096,size=201326592 zonecopy.sink=10.0.2.2:4000 \
             zonecopy.nvmeref=bs=4096,size=201326592 zonecopy.fio=rounds=5,runtime=2 \
             zonecopy.peer-nvme=serial=ZCPEER0001,bs=4096,size=67108864,zone=4194304,\
             cap=3145728,max-open=4,max-active=6,nvm-size=33554432,mssrl=16,mcl=64,msrc=7 \
             zonecopy.run=6c73";
        let c = parse(line).unwrap();
        assert_eq!(c.to_string(), line);
        assert_eq!(c.namespaces[&2].kind, NsKind::Nvm);
        assert_eq!(c.scsi_hd, Some(LunSpec::disk(4096, 192 * MIB)));
        assert_eq!(c.nvme_ref, c.scsi_hd);
        assert_eq!(c.sink, Some("10.0.2.2:4000".parse().unwrap()));
        assert_eq!(c.control_token.as_deref(), Some("0a1b"));
        assert_eq!(c.peer_nvme.unwrap().msrc, 7);
        assert_eq!(c.fio.map(|p| p.rounds), Some(5));
    }

    #[test]
    fn empty_and_foreign() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(
            parse("root=/dev/sda zonecopy_x=1").unwrap(),
            Config::default()
        );
        let c = parse("zonecopy.run= zonecopy.suite=x").unwrap();
        assert_eq!(c.run.as_deref(), Some(""));
        assert_eq!(
            parse("zonecopy.xfail=a,b zonecopy.xfail=b,c")
                .unwrap()
                .xfail,
            ["a", "b", "c"]
        );
    }

    #[test]
    fn malformed_is_an_error() {
        for (line, needle) in [
            ("zonecopy.suite", "key=value"),
            ("zonecopy.suite=", "empty"),
            ("zonecopy.suite=a zonecopy.suite=b", "twice"),
            ("zonecopy.bogus=1", "unknown key"),
            ("zonecopy.lun=hm:bs=512,size=512,zone=512", "LUN number"),
            ("zonecopy.lunx=hm:bs=512,size=512,zone=512", "LUN number"),
            ("zonecopy.lun0=hm:bs=512", "zonecopy.lun0=hm:bs=512: size= is missing"),
            (
                "zonecopy.lun0=disk:bs=512,size=512 zonecopy.lun00=disk:bs=512,size=512",
                "given twice",
            ),
            ("zonecopy.ns0=nvm:bs=512,size=512", "NSID"),
            ("zonecopy.nsx=nvm:bs=512,size=512", "NSID"),
            ("zonecopy.ns1=hm:bs=512,size=512", "unknown kind"),
            ("zonecopy.ns1=zns:bs=512,size=1024", "zone= is missing for kind zns"),
            (
                "zonecopy.ns1=nvm:bs=512,size=512 zonecopy.ns01=nvm:bs=512,size=512",
                "given twice",
            ),
            ("zonecopy.nvme=traddr=a,trsvcid=1,nqn=nqn.x zonecopy.nvme=traddr=a,trsvcid=1,nqn=nqn.x", "given twice"),
            ("zonecopy.nvme=traddr=a,trsvcid=0,nqn=nqn.x", "not a port"),
            ("zonecopy.control=10.0.2.2", "<ip>:<port>"),
            ("zonecopy.control=", "<ip>:<port>"),
            ("zonecopy.control=host:1", "<ip>:<port>"),
            ("zonecopy.control=1.2.3.4:1 zonecopy.control=1.2.3.4:2", "twice"),
            ("zonecopy.control_token=", "printable"),
            ("zonecopy.control_token=a\x01b", "printable"),
            ("zonecopy.control_token=a zonecopy.control_token=b", "twice"),
            ("zonecopy.nvmeref=bs=4096", "size= is missing"),
            ("zonecopy.nvmeref=bs=512,size=512 zonecopy.nvmeref=bs=512,size=512", "twice"),
            ("zonecopy.scsihd=bs=4096,size=4096,zone=4096", "only valid"),
            ("zonecopy.sink=10.0.2.2", "<ip>:<port>"),
            ("zonecopy.fio=rounds=0", "not in 1..=15"),
            ("zonecopy.fio=rounds=3 zonecopy.fio=rounds=3", "twice"),
            ("zonecopy.sink=1.2.3.4:1 zonecopy.sink=1.2.3.4:1", "twice"),
            ("zonecopy.peer-nvme=serial=S,bogus=1", "unknown key"),
        ] {
            let e = parse(line).expect_err(line);
            assert!(e.to_string().contains(needle), "{line}: {e} lacks {needle:?}");
        }
    }

    #[test]
    fn never_panics_on_junk() {
        // Every prefix of a valid line, and byte mutations.
        let good = "zonecopy.lun0=hm:bs=4096,size=67108864,zone=4194304,cap=3145728,conv=2";
        for i in 0..=good.len() {
            let _ = parse(&good[..i]);
        }
        for i in 0..good.len() {
            for c in ['=', ':', ',', ' ', '0', 'x', '\u{e9}'] {
                let mut s = good.to_string();
                s.replace_range(i..i + 1, &c.to_string());
                let _ = parse(&s);
            }
        }
    }

    proptest! {
        #[test]
        fn configs_round_trip(
            suite in proptest::option::of("[a-z-]{1,10}"),
            g in crate::spec::tests::zones(true),
            luns in 0u64..4,
            xfail in proptest::collection::vec("[a-z0-9-]{1,8}", 0..3),
            run in proptest::option::of("[0-9a-f]{0,8}"),
            port in 1u16..,
            rounds in 1u32..=crate::fio::MAX_ROUNDS,
        ) {
            let (bs, size, zones) = g;
            let mut xf: Vec<String> = Vec::new();
            for x in xfail {
                if !xf.contains(&x) {
                    xf.push(x);
                }
            }
            let c = Config {
                suite,
                luns: (0..luns)
                    .map(|i| (i * 3, LunSpec { kind: LunKind::HostManaged, block_size: bs, size, zones }))
                    .collect(),
                run,
                control: Some(SocketAddr::from(([10, 0, 2, 2], port))),
                control_token: Some("t0k".into()),
                nvme: Some(NvmeTarget::pcie("nqn.x")),
                namespaces: [(1, NsSpec { kind: NsKind::Nvm, block_size: bs, size, zones: None })].into(),
                xfail: xf,
                scsi_hd: Some(LunSpec::disk(bs, size)),
                sink: None,
                nvme_ref: None,
                fio: Some(crate::fio::FioPlan { rounds, runtime_s: 2 }),
                peer_nvme: None,
            };
            prop_assert_eq!(parse(&c.to_string()), Ok(c));
        }
    }
}
