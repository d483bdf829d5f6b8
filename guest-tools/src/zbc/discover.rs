//! Discovery: the zoned LUNs, what each says about itself, their models and roles.

use super::*;

/// Discover the zoned LUNs, read what the device says about itself and
/// build their models. Returns the problems found.
pub(super) fn discover(c: &mut Ctx, cfg: &Config, sys_root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let want: Vec<u64> = cfg.luns.keys().copied().collect();
    let t = Instant::now();
    let disks = loop {
        let (disks, _) = sysfs::scsi_disks(sys_root).unwrap_or_default();
        let ready = want
            .iter()
            .all(|&l| sysfs::pick_lun(&disks, l).is_ok_and(|d| d.dev_path().exists()));
        if ready || t.elapsed() >= DISCOVERY_TIMEOUT {
            break disks;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let devices = c
        .ctl
        .as_mut()
        .map(|ctl| ctl.request(r#"{"cmd":"devices"}"#));
    if let Some(Err(e)) = &devices {
        problems.push(format!("control devices: {e}"));
    }
    for (&n, spec) in &cfg.luns {
        let Some(zs) = spec.zones else {
            c.diag(format!("lun{n}: {} (not zoned): not tested", spec.kind));
            continue;
        };
        let disk = match sysfs::pick_lun(&disks, n) {
            Ok(d) => d.clone(),
            Err(e) => {
                problems.push(format!("lun{n}: {e}"));
                continue;
            }
        };
        let file = match blockio::open_direct(&disk.dev_path()) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("lun{n}: open {}: {e}", disk.dev_path().display()));
                continue;
            }
        };
        let name = format!("lun{n}");
        let bs = spec.block_size;
        let mut std_inq = [0u8; 36];
        let pdt = match sgio::command(
            &file,
            &xcdb::inquiry(None, 36),
            Data::FromDevice(&mut std_inq),
            TIMEOUT_MS,
        ) {
            Ok(r) if r.status == 0 => std_inq[0] & 0x1f,
            Ok(r) => {
                problems.push(format!("{name}: INQUIRY: {r}"));
                0xff
            }
            Err(e) => {
                problems.push(format!("{name}: INQUIRY: {e}"));
                0xff
            }
        };
        let mut page = [0u8; 64];
        let b6 = match sgio::command(
            &file,
            &xcdb::inquiry(Some(0xb6), 64),
            Data::FromDevice(&mut page),
            TIMEOUT_MS,
        ) {
            Ok(r) if r.status == 0 => match scsi::parse_b6(&page) {
                Ok(v) => Some(v),
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    None
                }
            },
            Ok(r) => {
                problems.push(format!("{name}: VPD B6h: {r}"));
                None
            }
            Err(e) => {
                problems.push(format!("{name}: VPD B6h: {e}"));
                None
            }
        };
        let (ctl_open, ctl_active) = match &devices {
            Some(Ok(reply)) => match tools::control_limits(reply, &name) {
                Ok((o, a)) => (Some(o), Some(a)),
                Err(e) => {
                    problems.push(e);
                    (None, None)
                }
            },
            _ => (None, None),
        };
        let host_aware = pdt == 0x00;
        let layout = Layout {
            block_size: bs,
            blocks: spec.size / bs,
            zone_blocks: zs.zone_size / bs,
            cap_blocks: zs.capacity / bs,
            conventional: zs.conventional,
            host_aware,
            urswrz: b6.is_none_or(|v| v.urswrz),
            max_open: if host_aware {
                None
            } else {
                b6.and_then(|v| (v.max_open_swr != u32::MAX).then_some(v.max_open_swr))
            },
            max_active: ctl_active.flatten(),
        };
        let kernel_zoned = disk.zoned == "host-managed" && disk.sectors > 0;
        let zone_count = zone_count_support(&file);
        c.diag(format!(
            "{name}: {disk}; {} pdt {pdt:#x} urswrz {} max_open {:?} max_active {:?} zone_count {:?}",
            spec.kind, layout.urswrz, layout.max_open, layout.max_active, zone_count
        ));
        c.luns.push(Lun {
            n,
            name,
            spec: *spec,
            disk,
            file,
            model: Model::new(layout),
            pdt,
            b6,
            ctl_max_active: ctl_active,
            ctl_max_open: ctl_open,
            zone_count,
            kernel_zoned,
            written: BTreeMap::new(),
        });
    }
    c.roles = pick_roles(&c.luns);
    problems
}

/// Does the ZBC OUT CDB usage data (RSOC, one command) cover ZONE COUNT
/// (bytes 12..14)? `None` if RSOC does not answer.
pub(super) fn zone_count_support(file: &File) -> Option<bool> {
    let mut b = [0u8; 64];
    let r = sgio::command(
        file,
        &xcdb::rsoc_one(
            scsi::OP_ZBC_OUT,
            u16::from(Action::Open.service_action()),
            64,
        ),
        Data::FromDevice(&mut b),
        TIMEOUT_MS,
    )
    .ok()?;
    if r.status != 0 {
        return None;
    }
    let one = xparse::rsoc_one(&b).ok()?;
    Some(one.support == 0b011 && one.usage.get(12..14) == Some(&[0xff, 0xff]))
}

/// Assign roles: see the module documentation.
pub fn pick_roles(luns: &[Lun]) -> Roles {
    let hm: Vec<usize> = (0..luns.len())
        .filter(|&i| !luns[i].model.layout.host_aware)
        .collect();
    let gaps = |i: usize| {
        let l = &luns[i].model.layout;
        l.cap_blocks < l.zone_blocks
    };
    let main = hm
        .iter()
        .copied()
        .find(|&i| luns[i].model.layout.max_open.is_some() && gaps(i))
        .or_else(|| {
            hm.iter()
                .copied()
                .find(|&i| luns[i].model.layout.max_open.is_some())
        })
        .or_else(|| hm.first().copied());
    let restricted = |gap: bool| {
        hm.iter()
            .copied()
            .find(|&i| !luns[i].model.layout.urswrz && gaps(i) == gap)
    };
    Roles {
        main,
        restricted: restricted(false).or_else(|| restricted(true)),
        restricted_gap: restricted(true),
        counted: hm
            .iter()
            .copied()
            .find(|&i| !gaps(i) && luns[i].zone_count == Some(true)),
        aware: (0..luns.len()).find(|&i| luns[i].model.layout.host_aware),
    }
}
