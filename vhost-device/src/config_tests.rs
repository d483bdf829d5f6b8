use clap::CommandFactory;

use super::*;

fn spec(s: &str) -> Result<DeviceConfig, SpecError> {
    s.parse::<LunSpec>().map(|l| l.device)
}

fn err(s: &str) -> String {
    spec(s).unwrap_err().to_string()
}

#[test]
fn clap_definition_is_consistent() {
    Args::command().debug_assert();
}

#[test]
fn contract_copy_limit_defaults_are_the_namespaces() {
    let ns: NsSpec = "file=n,kind=nvm,size=1M".parse().unwrap();
    assert_eq!(ns.copy_limits, CopyLimits::default());
}

#[test]
fn zoned_spec_with_defaults() {
    assert_eq!(
        spec("file=/tmp/a.img,size=1G,zone=64M").unwrap(),
        DeviceConfig {
            path: "/tmp/a.img".into(),
            size: 1 << 30,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 64 << 20,
                zone_capacity: 64 << 20,
                conventional_zones: 1,
                max_open: 0,
                max_active: 0,
                ..Default::default()
            }),
        }
    );
}

#[test]
fn zoned_spec_with_every_key() {
    assert_eq!(
        spec("kind=hm,file=z.img,size=512M,bs=512,zone=32M,cap=24M,conv=0,max-open=4,max-active=6")
            .unwrap(),
        DeviceConfig {
            path: "z.img".into(),
            size: 512 << 20,
            block_size: 512,
            zoned: Some(ZonedConfig {
                zone_size: 32 << 20,
                zone_capacity: 24 << 20,
                conventional_zones: 0,
                max_open: 4,
                max_active: 6,
                ..Default::default()
            }),
        }
    );
}

#[test]
fn disk_spec() {
    assert_eq!(
        spec("file=d.img,size=100M,kind=disk,bs=512").unwrap(),
        DeviceConfig {
            path: "d.img".into(),
            size: 100 << 20,
            block_size: 512,
            zoned: None,
        }
    );
    assert_eq!(
        spec("kind=disk,file=d.img,size=4K,bs=4K")
            .unwrap()
            .block_size,
        4096
    );
}

#[test]
fn spec_errors_say_what_is_wrong() {
    assert_eq!(err("size=1G,zone=64M"), "missing file=PATH");
    assert_eq!(err("file=,size=1G,zone=64M"), "missing file=PATH");
    assert_eq!(err("file=a,zone=64M"), "missing size=BYTES");
    assert_eq!(
        err("file=a,size=1G"),
        "missing zone=BYTES (required for kind=hm, kind=ha and kind=zns)"
    );
    assert_eq!(
        err("file=a,size=1G,zone=64M,zonesize=1"),
        "unknown key 'zonesize' (known: file, size, kind, bs, zone, cap, conv, max-open, max-active, urswrz, cache)"
    );
    assert_eq!(err("file=a,size=1G,zone"), "'zone' is not KEY=VALUE");
    assert_eq!(err("file=a,file=b,size=1G"), "key 'file' given twice");
    assert_eq!(
        err("file=a,size=1Q,zone=64M"),
        "size=1Q: not a size in bytes (a number with an optional K, M, G or T suffix)"
    );
    assert_eq!(
        err("file=a,size=1G,zone=64M,conv=-1"),
        "conv=-1: not a count (a non-negative integer below 2^32)"
    );
    assert_eq!(
        err("file=a,size=1G,zone=64M,max-open=4294967296"),
        "max-open=4294967296: not a count (a non-negative integer below 2^32)"
    );
    assert_eq!(
        err("file=a,size=1G,kind=hA"),
        "kind=hA: expected hm, ha or disk"
    );
    assert_eq!(
        err("file=a,size=1G,zone=64M,bs=1024"),
        "bs=1024: expected 512 or 4096"
    );
    assert_eq!(
        err("file=a,size=1G,kind=disk,zone=64M"),
        "zone= applies to zoned kinds (hm, ha, zns) only"
    );
    assert_eq!(
        err("file=a,size=1G,kind=disk,max-active=2"),
        "max-active= applies to zoned kinds (hm, ha, zns) only"
    );
}

#[test]
fn host_aware_and_urswrz_specs() {
    assert_eq!(
        spec("kind=ha,file=h.img,size=1G,zone=64M,conv=2").unwrap(),
        DeviceConfig {
            path: "h.img".into(),
            size: 1 << 30,
            block_size: 4096,
            zoned: Some(ZonedConfig {
                zone_size: 64 << 20,
                zone_capacity: 64 << 20,
                conventional_zones: 2,
                sequential: ZoneType::SequentialWritePreferred,
                ..Default::default()
            }),
        }
    );
    let z = |s: &str| spec(s).unwrap().zoned.unwrap();
    assert!(z("file=a,size=1G,zone=64M").unrestricted_reads);
    assert!(!z("file=a,size=1G,zone=64M,urswrz=0").unrestricted_reads);
    assert!(z("file=a,size=1G,zone=64M,urswrz=1").unrestricted_reads);
    assert!(!z("kind=ha,file=a,size=1G,zone=64M,urswrz=0").unrestricted_reads);
    assert_eq!(
        err("file=a,size=1G,zone=64M,urswrz=2"),
        "urswrz=2: expected 0 or 1"
    );
    assert_eq!(
        err("file=a,size=1G,kind=disk,urswrz=1"),
        "urswrz= applies to zoned kinds (hm, ha, zns) only"
    );
    for key in ["cap=32M", "max-open=2", "max-active=2"] {
        let e = err(&format!("kind=ha,file=a,size=1G,zone=64M,{key}"));
        assert!(e.contains("applies to kind=hm only"), "{key}: {e}");
    }
    // NVMe namespaces have no URSWRZ: ZNS reads past the write pointer
    // always succeed.
    assert!(NsSpec::from_str("file=n,size=1G,zone=64M,urswrz=0").is_err());
}

proptest::proptest! {
    /// Any text: a spec or an error, never a panic; and for specs built
    /// from valid keys, the parsed values are the ones written.
    #[test]
    fn lun_spec_parser(
        text in "[a-z=,0-9KMG-]{0,60}",
        kind in proptest::sample::select(vec!["hm", "ha"]),
        zone_mib in 1u64..64,
        zones in 2u64..64,
        conv in 0u32..2,
        urswrz in proptest::option::of(0u8..2),
    ) {
        let _ = LunSpec::from_str(&text);
        let mut s = format!(
            "file=f,kind={kind},size={}M,zone={zone_mib}M,conv={conv}",
            zone_mib * zones
        );
        if let Some(u) = urswrz {
            s.push_str(&format!(",urswrz={u}"));
        }
        let z = spec(&s).unwrap().zoned.unwrap();
        proptest::prop_assert_eq!(z.zone_size, zone_mib << 20);
        proptest::prop_assert_eq!(z.zone_capacity, zone_mib << 20);
        proptest::prop_assert_eq!(z.conventional_zones, conv);
        proptest::prop_assert_eq!(z.unrestricted_reads, urswrz != Some(0));
        proptest::prop_assert_eq!(
            z.sequential == ZoneType::SequentialWritePreferred,
            kind == "ha"
        );
    }
}

#[test]
fn file_paths_may_contain_equals_signs() {
    assert_eq!(
        spec("file=/tmp/a=b.img,size=4K,kind=disk").unwrap().path,
        PathBuf::from("/tmp/a=b.img")
    );
}

#[test]
fn command_line_to_config() {
    let args = Args::try_parse_from([
        "zonecopy-vhost",
        "--socket",
        "/tmp/vus.sock",
        "--lun",
        "file=a.img,size=1G,zone=64M",
        "--lun",
        "file=b.img,size=1G,kind=disk",
    ])
    .unwrap();
    let cfg = Config::try_from(args).unwrap();
    assert_eq!(
        cfg.targets,
        [ScsiTargetConfig {
            socket: PathBuf::from("/tmp/vus.sock"),
            luns: vec![0, 1]
        }]
    );
    assert_eq!(cfg.nvme_tcp, None);
    assert_eq!(cfg.luns.len(), 2);
    assert_eq!(cfg.luns[0].path, PathBuf::from("a.img"));
    assert!(cfg.luns[1].zoned.is_none());
    assert_eq!(cfg.request_queues, DEFAULT_REQUEST_QUEUES);
}

#[test]
fn several_sockets_each_take_the_luns_after_them() {
    let parse = |argv: &[&str]| {
        let mut all = vec!["zonecopy-vhost"];
        all.extend_from_slice(argv);
        Args::try_parse_grouped_from(all).map(Config::try_from)
    };
    let cfg = parse(&[
        "--lun",
        "file=a,size=1M,kind=disk",
        "--socket",
        "s0",
        "--lun",
        "file=b,size=1M,kind=disk",
        "--socket",
        "s1",
        "--lun",
        "file=c,size=1M,kind=disk",
        "--lun",
        "file=d,size=1M,kind=disk",
    ])
    .unwrap()
    .unwrap();
    let t = |socket: &str, luns: Vec<usize>| ScsiTargetConfig {
        socket: socket.into(),
        luns,
    };
    assert_eq!(cfg.targets, [t("s0", vec![0, 1]), t("s1", vec![2, 3])]);
    // A socket without LUNs, and one given twice, are refused.
    let lun = "file=a,size=1M,kind=disk";
    let e = parse(&["--socket", "s0", "--socket", "s1", "--lun", lun]).unwrap();
    assert_eq!(e, Err(ConfigError::SocketWithoutLuns("s0".into())));
    let e = parse(&[
        "--socket",
        "s0",
        "--lun",
        lun,
        "--socket",
        "s0",
        "--lun",
        "file=b,size=1M,kind=disk",
    ])
    .unwrap();
    assert_eq!(e, Err(ConfigError::DuplicateSocket("s0".into())));
}

#[test]
fn command_line_errors() {
    // No --lun at all.
    assert!(Args::try_parse_from(["zonecopy-vhost", "--socket", "s"]).is_err());
    // A bad spec names the option and the problem.
    let e = Args::try_parse_from(["zonecopy-vhost", "--socket", "s", "--lun", "file=a"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--lun <SPEC>"), "{e}");
    assert!(e.contains("missing size=BYTES"), "{e}");
    // Queue count range.
    for q in ["0", "63"] {
        assert!(Args::try_parse_from([
            "zonecopy-vhost",
            "--socket",
            "s",
            "--lun",
            "file=a,size=4K,kind=disk",
            "--queues",
            q
        ])
        .is_err());
    }
    let args = Args::try_parse_from([
        "zonecopy-vhost",
        "--socket",
        "s",
        "--lun",
        "file=a,size=4K,kind=disk",
        "--lun",
        "file=a,size=8K,kind=disk",
    ])
    .unwrap();
    assert_eq!(
        Config::try_from(args).unwrap_err().to_string(),
        "LUN 0 and LUN 1 use the same backing file \"a\""
    );
}

#[test]
fn ns_specs() {
    let ns: NsSpec = "file=z.img,size=1G,zone=64M,mssrl=256,mcl=1024,msrc=7"
        .parse()
        .unwrap();
    let z = ns.device.zoned.unwrap();
    assert_eq!((z.zone_size, z.conventional_zones), (64 << 20, 0));
    assert_eq!(
        ns.copy_limits,
        CopyLimits {
            mssrl: 256,
            mcl: 1024,
            msrc: 7
        }
    );
    let ns: NsSpec = "kind=nvm,file=n.img,size=64M,bs=512".parse().unwrap();
    assert!(ns.device.zoned.is_none());
    assert_eq!(ns.copy_limits, CopyLimits::default());
    assert!(!ns.volatile_cache);
    let ns: NsSpec = "kind=nvm,file=n.img,size=64M,cache=volatile"
        .parse()
        .unwrap();
    assert!(ns.volatile_cache);
    let e = |s: &str| s.parse::<NsSpec>().unwrap_err().to_string();
    assert_eq!(e("kind=hm,file=a,size=1G"), "kind=hm: expected zns or nvm");
    assert_eq!(
        e("file=a,size=1G,zone=64M,msrc=256"),
        "msrc=256: more than 255"
    );
    assert_eq!(
        e("file=a,size=1G,zone=64M,mcl=1,mcl=2"),
        "key 'mcl' given twice"
    );
    assert_eq!(
        e("kind=nvm,file=a,size=1G,zone=64M"),
        "zone= applies to zoned kinds (hm, ha, zns) only"
    );
    assert_eq!(
        e("kind=nvm,file=a,size=1G,cache=fast"),
        "cache=fast: expected volatile or none"
    );
}

/// `args` after the program name, to a config or the error's text.
fn nvme_cfg(args: &[&str]) -> Result<Config, String> {
    let mut v = vec!["zonecopy-vhost"];
    v.extend_from_slice(args);
    Args::try_parse_from(v)
        .map_err(|e| e.to_string())
        .and_then(|a| Config::try_from(a).map_err(|e| e.to_string()))
}

#[test]
fn nvme_tcp_command_line() {
    let cfg = nvme_cfg;
    // NVMe only: no socket needed; the listen address defaults to loopback.
    let c = cfg(&["--ns", "file=a,size=1G,zone=64M"]).unwrap();
    assert!(c.targets.is_empty());
    let n = c.nvme_tcp.unwrap();
    assert_eq!(n.listen, DEFAULT_NVME_TCP);
    assert_eq!(n.nqn, DEFAULT_NQN);
    assert_eq!(n.advertise_addr, DEFAULT_ADVERTISE_ADDR);
    assert_eq!(n.personality, crate::nvme::Personality::NVME_2_1);
    // A controller that only offers Copy descriptor format 0.
    let c = cfg(&[
        "--ns",
        "kind=nvm,file=a,size=1G",
        "--personality",
        "nvme-2.0-fmt0",
    ])
    .unwrap();
    let p = c.nvme_tcp.unwrap().personality;
    assert_eq!((p.version, p.ocfs), ((2, 0), 0b0001));
    assert!(
        cfg(&["--ns", "kind=nvm,file=a,size=1G", "--personality", "nvme-9"])
            .unwrap_err()
            .contains("unknown personality")
    );
    let c = cfg(&[
        "--socket",
        "s",
        "--lun",
        "file=l,size=1G,zone=64M",
        "--nvme-tcp",
        "127.0.0.1:4421",
        "--nqn",
        "nqn.x:y",
        "--advertise-addr",
        "10.0.2.3",
        "--ns",
        "file=a,size=1G,zone=64M",
        "--ns",
        "kind=nvm,file=b,size=64M",
    ])
    .unwrap();
    let n = c.nvme_tcp.unwrap();
    assert_eq!(
        (n.listen.port(), n.nqn.as_str(), n.namespaces.len()),
        (4421, "nqn.x:y", 2)
    );
    assert_eq!(
        cfg(&["--nvme-tcp"]).unwrap_err(),
        "--nvme-tcp and --nvme-pcie need at least one --ns"
    );
    assert!(cfg(&[]).is_err(), "nothing to serve");
    assert_eq!(
        cfg(&[
            "--socket",
            "s",
            "--lun",
            "file=a,size=1G,zone=64M",
            "--ns",
            "file=a,size=1G,zone=64M"
        ])
        .unwrap_err(),
        "namespace 1 uses the backing file \"a\" of LUN 0"
    );
}

#[test]
fn timing_profiles_per_namespace_and_global() {
    let cfg = nvme_cfg;
    let timing = |c: Config| -> Vec<Option<String>> {
        c.nvme_tcp
            .unwrap()
            .namespaces
            .into_iter()
            .map(|n| n.timing)
            .collect()
    };
    // Off unless asked.
    let c = cfg(&["--ns", "kind=nvm,file=a,size=1G"]).unwrap();
    assert_eq!(timing(c), [None]);
    // --timing for every namespace; timing= wins for its own.
    let c = cfg(&[
        "--timing",
        "nvme-ssd",
        "--ns",
        "kind=nvm,file=a,size=1G",
        "--ns",
        "kind=nvm,file=b,size=1G,timing=nvmeof-1gbe",
    ])
    .unwrap();
    assert_eq!(
        timing(c),
        [Some("nvme-ssd".into()), Some("nvmeof-1gbe".into())]
    );
    // A profile that is neither built in nor a file.
    let e = cfg(&["--ns", "kind=nvm,file=a,size=1G,timing=nvmeof-10gbe"]).unwrap_err();
    assert!(e.starts_with("namespace 1: timing profile: 'nvmeof-10gbe' is neither a built-in profile (ufs-phone, nvme-ssd, nvmeof-1gbe, nvmeof-100gbe)"), "{e}");
    // A user profile file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    let text = zonecopy_contract::timing::BUILTIN[0]
        .1
        .replace("ufs-phone", "mine");
    std::fs::write(&path, text).unwrap();
    let spec = format!("kind=nvm,file=a,size=1G,timing={}", path.display());
    let c = cfg(&["--ns", &spec]).unwrap();
    assert_eq!(timing(c), [Some(path.display().to_string())]);
    std::fs::write(&path, "name = \"mine\"\n").unwrap();
    let e = cfg(&["--ns", &spec]).unwrap_err();
    assert_eq!(
        e,
        "namespace 1: timing profile: line 1, column 1: missing field `link`"
    );
}
