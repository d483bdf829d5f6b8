//! Set-up tests: the command line, devices, control socket, probe, Host Behavior.

use super::*;

pub(super) fn t_config(s: &mut Suite<'_>) -> Finding {
    s.diag(format!("kernel {}", probe::kernel_release()));
    if !s.cfg.xfail.is_empty() {
        s.diag(format!("known bugs listed: {}", s.cfg.xfail.join(", ")));
    }
    if s.cfg.nvme.is_none() && s.cfg.luns.is_empty() {
        return fail("neither zonecopy.nvme= nor zonecopy.lun<N>= on the kernel command line");
    }
    if s.cfg.nvme.is_some() && s.cfg.namespaces.is_empty() {
        return fail("zonecopy.nvme= without any zonecopy.ns<N>=");
    }
    Finding::Pass
}

pub(super) fn t_devices(s: &mut Suite<'_>) -> Finding {
    if let Err(f) = s.needs("config") {
        return f;
    }
    let mut problems = Vec::new();
    if let Some(t) = s.cfg.nvme.clone() {
        // A Copy the transport cannot carry fails, the driver reconnects and
        // retries it nvme_core.max_retries (5) times about 31 s apart: minutes
        // per copy. Judge the first failure instead.
        let p = s.sys.join("module/nvme_core/parameters/max_retries");
        if let Ok(old) = std::fs::read_to_string(&p) {
            match std::fs::write(&p, "0") {
                Ok(()) => s.diag(format!(
                    "nvme_core max_retries {} -> 0 (a failing Copy comes back at once)",
                    old.trim()
                )),
                Err(e) => s.diag(format!("nvme_core max_retries stays {}: {e}", old.trim())),
            }
        }
        let found = if t.pcie {
            // Over PCIe the nvme-pci driver probes the controller itself.
            s.diag(format!("PCIe controller of {}", t.nqn));
            connect::find_pcie_controller(s.sys, &t.nqn, DISCOVERY_TIMEOUT)
                .map_err(|e| format!("nvme-pci: {e}"))
        } else {
            let host = connect::HostId::generate();
            // Reconnect after 1 s instead of 10 s: a Copy the transport
            // cannot carry makes the driver reconnect and retry it several
            // times before the block layer sees the error.
            let opts = format!(
                "{},reconnect_delay=1",
                connect::connect_options(&t, &t.nqn, &host)
            );
            s.diag(format!("connect: {opts}"));
            connect::fabrics_connect(&opts)
                .map_err(|e| format!("NVMe/TCP connect to {}:{}: {e}", t.traddr, t.trsvcid))
        };
        match found {
            Err(e) => problems.push(e),
            Ok(c) => {
                s.diag(format!("controller nvme{} cntlid {}", c.instance, c.cntlid));
                s.nvme_instance = Some(c.instance);
                let nsids: Vec<u32> = s.cfg.namespaces.keys().copied().collect();
                let (found, took) = connect::wait_for_namespaces(
                    s.sys,
                    Path::new("/dev"),
                    c.instance,
                    &nsids,
                    DISCOVERY_TIMEOUT,
                );
                s.diag(format!(
                    "namespaces after {:.1} s: {}",
                    took.as_secs_f64(),
                    found
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                // The disk name's number is the kernel's instance counter,
                // not the NSID (namespaces are scanned concurrently): read
                // the NSID from sysfs.
                let by_nsid: Vec<(u32, String)> = found
                    .iter()
                    .map(|n| {
                        (
                            disk_nsid(s.sys, &n.block).unwrap_or(n.nsid),
                            n.block.clone(),
                        )
                    })
                    .collect();
                s.diags.push(format!(
                    "by NSID: {}",
                    by_nsid
                        .iter()
                        .map(|(id, b)| format!("{id} = /dev/{b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                for (&nsid, spec) in &s.cfg.namespaces {
                    let Some((_, block)) = by_nsid.iter().find(|(id, _)| *id == nsid) else {
                        problems.push(format!("ns{nsid}: no block device"));
                        continue;
                    };
                    let want = Configured {
                        name: format!("ns{nsid}"),
                        nvme: true,
                        lbs: spec.block_size,
                        size: spec.size,
                        zoned: spec.kind == NsKind::Zns,
                        zones: spec.zones,
                    };
                    match open_dev(s.sys, &want, block) {
                        Ok(d) => s.devs.push(d),
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
    }
    if !s.cfg.luns.is_empty() {
        let luns: Vec<u64> = s.cfg.luns.keys().copied().collect();
        let (disks, errors) = sysfs::wait_for_luns(s.sys, &luns, DISCOVERY_TIMEOUT);
        for e in errors {
            s.diag(format!("sysfs: {e}"));
        }
        for (&n, spec) in &s.cfg.luns {
            match sysfs::pick_lun(&disks, n) {
                Err(e) => problems.push(format!("lun{n}: {e}")),
                Ok(d) => {
                    let want = Configured {
                        name: format!("lun{n}"),
                        nvme: false,
                        lbs: spec.block_size,
                        size: spec.size,
                        zoned: spec.kind == LunKind::HostManaged,
                        zones: spec.zones,
                    };
                    match open_dev(s.sys, &want, &d.name) {
                        Ok(d) => s.devs.push(d),
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
    }
    for d in &s.devs {
        let line = format!(
            "{} = /dev/{} lbs {} size {}{}",
            d.name,
            d.block,
            d.lbs,
            d.size,
            d.zones.map_or(String::new(), |z| format!(
                " zoned: zone {} cap {} conv {}",
                z.zone_size, z.capacity, z.conventional
            ))
        );
        s.diags.push(line);
    }
    if problems.is_empty() {
        Finding::Pass
    } else {
        fail(problems.join("; "))
    }
}

/// `<sys>/block/<disk>/nsid`, the namespace's NSID.
pub(super) fn disk_nsid(sys: &Path, disk: &str) -> Option<u32> {
    std::fs::read_to_string(sys.join("block").join(disk).join("nsid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What the host configured for one device (its `zonecopy.lun<N>=` or
/// `zonecopy.ns<N>=` entry), to check the kernel's view against.
pub(super) struct Configured {
    /// `lun<N>` or `ns<NSID>`.
    pub name: String,
    pub nvme: bool,
    /// Logical block size, bytes.
    pub lbs: u64,
    /// Capacity, bytes.
    pub size: u64,
    /// Host-managed (SCSI) or ZNS: the kernel must call it host-managed.
    pub zoned: bool,
    pub zones: Option<ZoneSpec>,
}

/// Open `block` O_DIRECT and check it is what the host configured.
pub(super) fn open_dev(sys: &Path, want: &Configured, block: &str) -> Result<Dev, String> {
    let Configured {
        ref name,
        nvme,
        lbs,
        size,
        zoned,
        zones,
    } = *want;
    let q = sys.join("block").join(block);
    let read = |p: &str| -> Result<String, String> {
        std::fs::read_to_string(q.join(p))
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{name}: {}/{p}: {e}", q.display()))
    };
    let got_lbs: u64 = read("queue/logical_block_size")?.parse().unwrap_or(0);
    let got_size = read("size")?.parse::<u64>().unwrap_or(0) * SECTOR;
    let model = read("queue/zoned")?;
    let mut bad = Vec::new();
    if got_lbs != lbs {
        bad.push(format!("logical block size {got_lbs}, configured {lbs}"));
    }
    if got_size != size {
        bad.push(format!("size {got_size}, configured {size}"));
    }
    if zoned != (model == "host-managed") {
        bad.push(format!("queue/zoned {model}, configured zoned={zoned}"));
    }
    if !bad.is_empty() {
        return Err(format!("{name} (/dev/{block}): {}", bad.join(", ")));
    }
    let path = Path::new("/dev").join(block);
    let file = blockio::open_direct(&path)
        .map_err(|e| format!("{name}: open {} O_RDWR|O_DIRECT: {e}", path.display()))?;
    let limits = probe::limits(sys, block).map_err(|e| format!("{name}: {e}"))?;
    Ok(Dev {
        name: name.to_string(),
        nvme,
        block: block.to_string(),
        lbs,
        size,
        zones: if zoned { zones } else { None },
        file,
        limits,
        next_off: if zoned { 0 } else { MIB.min(size / 2) },
        next_zone: 0,
        host_base: Some(0),
    })
}

/// The `{"cmd":"devices"}` reply as (name, block size, blocks).
pub fn parse_devices(reply: &str) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let Some(arr) = control::find_value(reply, "devices") else {
        return out;
    };
    // Split the array into its top-level objects.
    let (mut depth, mut start) = (0usize, None);
    let mut in_str = false;
    let b = arr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' => {
                    depth += 1;
                    if depth == 1 {
                        start = Some(i);
                    }
                }
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        if let Some(st) = start.take() {
                            let o = &arr[st..=i];
                            let num = |k: &str| {
                                control::find_value(o, k)
                                    .and_then(|v| v.trim().parse::<u64>().ok())
                                    .unwrap_or(0)
                            };
                            if let Some(n) = control::find_value(o, "name") {
                                out.push((n.to_string(), num("block_size"), num("blocks")));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out
}

pub(super) fn t_control(s: &mut Suite<'_>) -> Finding {
    let Some(addr) = s.cfg.control else {
        return skip("no zonecopy.control= (host-side checks off)");
    };
    if let Err(f) = s.needs("devices") {
        if s.devs.is_empty() {
            return f;
        }
    }
    let mut c = control::Client::new(addr);
    let reply = match c.request(r#"{"cmd":"devices"}"#) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let listed = parse_devices(&reply);
    s.diag(format!(
        "backend devices: {}",
        listed
            .iter()
            .map(|(n, bs, b)| format!("{n} ({bs} x {b})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut bad = Vec::new();
    for d in &s.devs {
        match listed.iter().find(|(n, _, _)| *n == d.name) {
            None => bad.push(format!("{} not listed by the backend", d.name)),
            Some((_, bs, blocks)) if *bs != d.lbs || bs * blocks != d.size => bad.push(format!(
                "{}: backend says {bs} x {blocks}, the guest sees {} x {}",
                d.name,
                d.lbs,
                d.size / d.lbs.max(1)
            )),
            _ => {}
        }
    }
    s.host = Some(c);
    match s.counters() {
        Some(Ok(c)) => s.diags.push(format!(
            "fabric counters: {}",
            match (c.fabric_data, c.copy_commands) {
                (Some(d), Some(k)) => format!("{d} data bytes, {k} Copy commands so far"),
                _ => "not reported by this backend".to_string(),
            }
        )),
        Some(Err(e)) => bad.push(format!("stats: {e}")),
        None => {}
    }
    if bad.is_empty() {
        Finding::Pass
    } else {
        s.host = None;
        fail(bad.join("; "))
    }
}

pub(super) fn t_probe(s: &mut Suite<'_>) -> Finding {
    if s.devs.is_empty() {
        return skip("needs devices");
    }
    let mut bad = Vec::new();
    let mut any_sysfs = false;
    let mut any_blkcpy = false;
    let mut lines = Vec::new();
    for d in &mut s.devs {
        match probe::limits(s.sys, &d.block) {
            Ok(l) => d.limits = l,
            Err(e) => bad.push(format!("{}: {e}", d.name)),
        }
        let b = probe::blkcpy(&d.file);
        any_sysfs |= d.limits.present();
        any_blkcpy |= matches!(b, Blkcpy::Present(_));
        lines.push(format!("{} (/dev/{}): {}; {b}", d.name, d.block, d.limits));
        if let (Some(m), Some(h)) = (d.limits.max_bytes, d.limits.max_hw_bytes) {
            if m > h {
                bad.push(format!(
                    "{}: copy_max_bytes {m} > copy_max_hw_bytes {h}",
                    d.name
                ));
            }
        }
    }
    s.diags.extend(lines);
    // What the controller advertises, and what the kernel made of it.
    for i in 0..s.devs.len() {
        if !s.devs[i].nvme {
            continue;
        }
        let d = &s.devs[i];
        let nsid: u32 = d.name.trim_start_matches("ns").parse().unwrap_or(0);
        match identify(&d.file, nsid) {
            Err(e) => bad.push(format!("{}: {e}", d.name)),
            Ok((c, n)) => {
                let line = format!(
                    "{}: ONCS {:#x} (Copy {}), OCFS {:#x} (formats:{}{}{}{}), MSSRL {} MCL {} MSRC {} (0's based), lbs {}",
                    d.name,
                    c.oncs,
                    if c.copy_supported() { "yes" } else { "no" },
                    c.ocfs,
                    if c.format_supported(0) { " 0" } else { "" },
                    if c.format_supported(1) { " 1" } else { "" },
                    if c.format_supported(2) { " 2" } else { "" },
                    if c.format_supported(3) { " 3" } else { "" },
                    n.mssrl,
                    n.mcl,
                    n.msrc,
                    n.block_size()
                );
                let (lbs, limits, name) = (d.lbs, d.limits, d.name.clone());
                s.diag(line);
                if let Some(hw) = limits.max_hw_bytes {
                    let mssrl = u64::from(n.mssrl) * lbs;
                    let mcl = u64::from(n.mcl) * lbs;
                    s.diag(format!(
                        "{name}: copy_max_hw_bytes {hw} = {} x MSSRL bytes; MCL allows {mcl}",
                        if mssrl > 0 {
                            format!("{:.3}", hw as f64 / mssrl as f64)
                        } else {
                            "-".into()
                        }
                    ));
                    // Judged against ONCS, MSSRL and MCL by personality_limits.
                }
            }
        }
    }
    s.no_offload = if any_sysfs {
        s.diag("interface: block-layer copy offload (queue/copy_max_bytes; copy_file_range on O_DIRECT block fds)");
        None
    } else if any_blkcpy {
        s.diag("interface: BLKCPY ioctl only (an earlier series)");
        Some("this kernel has only the BLKCPY ioctl (an earlier copy-offload series), not queue/copy_max_bytes".to_string())
    } else {
        s.diag("interface: none (no queue/copy_max_bytes, no BLKCPY)");
        Some("no block-layer copy offload in this kernel (no queue/copy_max_bytes)".to_string())
    };
    if bad.is_empty() {
        Finding::Pass
    } else {
        fail(bad.join("; "))
    }
}

/// Identify Controller and Identify Namespace through the admin passthru
/// ioctl on a namespace's block device.
pub(super) fn identify(f: &File, nsid: u32) -> Result<(ident::IdCtrl, ident::IdNs), String> {
    let mut buf = vec![0u8; ident::IDENTIFY_LEN];
    passthru::admin(
        f,
        &passthru::identify(0, ident::cns::CONTROLLER, 0),
        passthru::Data::In(&mut buf),
    )
    .map_err(|e| format!("Identify Controller: {e}"))?
    .ok("Identify Controller")?;
    let c = ident::IdCtrl::parse(&buf)?;
    let mut buf = vec![0u8; ident::IDENTIFY_LEN];
    passthru::admin(
        f,
        &passthru::identify(nsid, ident::cns::NAMESPACE, 0),
        passthru::Data::In(&mut buf),
    )
    .map_err(|e| format!("Identify Namespace {nsid}: {e}"))?
    .ok("Identify Namespace")?;
    Ok((c, ident::IdNs::parse(&buf)?))
}

/// Host Behavior Support (feature 16h) as the host set it: 512 bytes,
/// CDFE (Copy Descriptor Formats Enable) in bytes 5:4, bit n = format n.
pub(super) fn host_behavior_cdfe(f: &File) -> Result<u16, String> {
    let mut buf = vec![0u8; 512];
    passthru::admin(
        f,
        &passthru::get_features(0x16),
        passthru::Data::In(&mut buf),
    )
    .map_err(|e| format!("Get Features Host Behavior Support: {e}"))?
    .ok("Get Features Host Behavior Support")?;
    Ok(u16::from_le_bytes([buf[4], buf[5]]))
}

/// A kernel with copy offload builds NVMe Copy with descriptor format 2
/// (NSID per source range); NVMe 2.x lets a controller refuse formats 2
/// and 3 until the host enables them in Host Behavior Support, so the
/// kernel must have set CDFE bit 2 when the controller supports Copy.
pub(super) fn t_host_behavior(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let a = s
        .find(&[], |d| d.nvme && d.limits.offload_enabled())
        .ok_or_else(|| skip("needs an NVMe namespace with copy offload enabled"))?;
    let nsid: u32 = s.devs[a].name.trim_start_matches("ns").parse().unwrap_or(0);
    let (c, _) = identify(&s.devs[a].file, nsid).map_err(fail)?;
    if !c.format_supported(2) {
        s.diag(format!(
            "OCFS {:#x}: no format 2, nothing to enable",
            c.ocfs
        ));
        return Ok(());
    }
    s.exposed = &[BUG];
    let cdfe = host_behavior_cdfe(&s.devs[a].file).map_err(fail)?;
    s.diag(format!(
        "Host Behavior Support CDFE {cdfe:#x} (format 2 {}), OCFS {:#x}",
        if cdfe & 4 != 0 {
            "enabled"
        } else {
            "not enabled"
        },
        c.ocfs
    ));
    if cdfe & 4 == 0 {
        return Err(Finding::Bug {
            id: BUG,
            why: format!(
                "Host Behavior Support CDFE is {cdfe:#x}: descriptor format 2 not enabled, \
                 yet the kernel builds every Copy with format 2 (a spec-following controller \
                 rejects them with Invalid Field)"
            ),
        });
    }
    Ok(())
}
