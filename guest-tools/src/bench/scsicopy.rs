//! SCSI: the source, EXTENDED COPY offload against read and write, and the summary.

use super::*;

/// EXTENDED COPY(LID1) of the 64 MiB source to `DST_OFFLOAD`, within the
/// LU: one E4h CSCD naming it (VPD 83h designator) and 02h segments, cut
/// to the copy manager's operating parameters.
pub(super) fn t_scsi_offload(c: &mut Ctx<'_>) -> Step {
    let why = c.scsi_why.clone();
    let d = dev(&mut c.scsi, &why)?;
    if !d.source {
        return Err(Verdict::skip("needs scsi_source"));
    }
    let sg = |d: &Dev, cdb: &[u8], data: sgio::Data<'_>, what: &str| {
        let c = sgio::command(&d.file, cdb, data, XCOPY_TIMEOUT_MS)
            .map_err(fail(&format!("SG_IO {what}")))?;
        ensure(c.status == 0 && c.host_status == 0, || {
            format!("{what}: {c} sense [{}]", hex(&c.sense_bytes))
        })
    };
    let mut inq = vec![0u8; 96];
    sg(
        d,
        &cdb::inquiry(None, 96),
        sgio::Data::FromDevice(&mut inq),
        "INQUIRY",
    )?;
    let pdt = inq[0] & 0x1f;
    let mut vpd = vec![0u8; 1024];
    sg(
        d,
        &cdb::inquiry(Some(0x83), 1024),
        sgio::Data::FromDevice(&mut vpd),
        "INQUIRY VPD 83h",
    )?;
    let ds = parse::vpd83(&vpd).map_err(Verdict::Fail)?;
    let des = parse::lu_designator(&ds)
        .cloned()
        .ok_or_else(|| Verdict::fail("VPD 83h has no LU designator for an E4h CSCD"))?;
    let mut op = vec![0u8; 1024];
    sg(
        d,
        &cdb::receive_lid1(cdb::in_sa::OPERATING_PARAMETERS, 0, 1024),
        sgio::Data::FromDevice(&mut op),
        "RECEIVE COPY OPERATING PARAMETERS",
    )?;
    let op = parse::operating_parameters(&op).map_err(Verdict::Fail)?;
    let bs = d.bs;
    // One CSCD (32 bytes) and 28-byte 02h segments must fit the list.
    let by_len = (op.max_list_len as usize).saturating_sub(CSCD_LEN) / 28;
    let per_list = usize::from(op.max_segments).min(by_len);
    let lists = plan::scsi_lists(
        0,
        DST_OFFLOAD / bs,
        COPY_BYTES / bs,
        u64::from(op.max_segment_len) / bs,
        per_list,
    )
    .map_err(Verdict::Fail)?;
    let cscd = CscdId::new(
        pdt,
        des.code_set,
        des.designator_type,
        &des.designator,
        bs as u32,
    );
    let params: Vec<Vec<u8>> = lists
        .iter()
        .map(|segs| {
            let mut l = CopyList::new(
                0,
                std::slice::from_ref(&cscd),
                segs.iter()
                    .map(|&(s, t, n)| Segment::B2B {
                        src: 0,
                        dst: 0,
                        dc: false,
                        blocks: n,
                        src_lba: s,
                        dst_lba: t,
                    })
                    .collect(),
            );
            // 11b: no list identifier, nothing held afterwards.
            l.usage = ListIdUsage::None;
            l.lid1()
        })
        .collect();
    let segments: usize = lists.iter().map(Vec::len).sum();
    let name = d.name.clone();
    let m = offload_run(c, false, params.len(), |d, i| {
        let p = &params[i];
        let cdb = cdb::extended_copy(cdb::out_sa::LID1, p.len() as u32);
        sg(d, &cdb, sgio::Data::ToDevice(p), "EXTENDED COPY(LID1)")
    })?;
    let took = m.took;
    c.diag(format!(
        "{name}: EXTENDED COPY(LID1) of {COPY_BYTES} bytes: {} commands, {segments} segments \
         (max segment {} bytes, {} segments per list), {} s ({} MiB/s), counters {}",
        m.commands,
        op.max_segment_len,
        per_list,
        plan::secs(took),
        plan::mib_per_s(COPY_BYTES, took),
        counters(&m),
    ));
    only_copied(&name, &m)?;
    Ok(())
}

pub(super) fn t_scsi_rw(c: &mut Ctx<'_>) -> Step {
    rw_test(c, false)?;
    summary(c, false);
    Ok(())
}

/// The `# bench <kind>-64MiB ...` line, once both copies of a device
/// verified.
pub(super) fn summary(c: &mut Ctx<'_>, nvme: bool) {
    let d = if nvme { &c.nvme } else { &c.scsi };
    let Some((d, o, rw)) = d
        .as_ref()
        .and_then(|d| Some((d, d.offload.clone()?, d.rw.clone()?)))
    else {
        return;
    };
    let mut f = vec![
        ("dev", d.name.clone()),
        ("bytes", COPY_BYTES.to_string()),
        ("offload_s", plan::secs(o.took)),
        ("readwrite_s", plan::secs(rw.took)),
        (
            "ratio",
            plan::ratio(rw.took.as_secs_f64(), o.took.as_secs_f64()),
        ),
        ("offload_MiBps", plan::mib_per_s(COPY_BYTES, o.took)),
        ("readwrite_MiBps", plan::mib_per_s(COPY_BYTES, rw.took)),
        ("offload_cmds", o.commands.to_string()),
    ];
    if let (Some(a), Some(b)) = (o.dev, rw.dev) {
        f.extend([
            ("offload_copied_bytes", a.2.to_string()),
            ("offload_host_bytes", (a.0 + a.1).to_string()),
            ("readwrite_copied_bytes", b.2.to_string()),
            ("readwrite_host_bytes", (b.0 + b.1).to_string()),
        ]);
    }
    // Fabric bytes count NVMe/TCP traffic only: meaningless for SCSI.
    if let (true, Some(a), Some(b)) = (nvme, o.fabric, rw.fabric) {
        f.extend([
            ("offload_fabric_data_bytes", a.0.to_string()),
            ("offload_fabric_bytes", a.1.to_string()),
            ("readwrite_fabric_data_bytes", b.0.to_string()),
            ("readwrite_fabric_bytes", b.1.to_string()),
            ("fabric_ratio", plan::ratio(b.1 as f64, a.1 as f64)),
            (
                "offload_fabric_pct",
                format!("{:.4}", a.1 as f64 * 100.0 / COPY_BYTES as f64),
            ),
            ("readwrite_fabric_MiBps", plan::mib_per_s(b.1, rw.took)),
        ]);
    }
    let name = if nvme {
        "nvme-copy-64MiB"
    } else {
        "scsi-xcopy-64MiB"
    };
    let line = plan::bench_line(name, &f);
    c.diag(line);
}
