//! What every zbc test uses: commands through SG_IO and the kernel, checked against the model.

use super::*;

impl Ctx {
    /// A new, empty context.
    pub(super) fn new(ctl: Option<std::net::SocketAddr>, gen: u64) -> Self {
        Self {
            luns: Vec::new(),
            roles: Roles::default(),
            ctl: ctl.map(control::Client::new),
            ctl_why: if ctl.is_some() {
                String::new()
            } else {
                "no zonecopy.control= on the kernel command line".into()
            },
            gen_next: gen,
            diags: Vec::new(),
            fresh: Vec::new(),
            last_eviction: None,
            done: Done::default(),
        }
    }

    /// A diagnostic line for the current test.
    pub fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    /// The LUN in `role`, or a SKIP naming the role.
    pub fn role(&self, r: Option<usize>, what: &str) -> Result<usize, Verdict> {
        r.ok_or_else(|| Verdict::skip(format!("no {what}")))
    }

    /// The control client, or a SKIP saying why there is none.
    pub fn ctl(&mut self) -> Result<&mut control::Client, Verdict> {
        let why = self.ctl_why.clone();
        self.ctl.as_mut().ok_or_else(|| Verdict::skip(why))
    }

    pub(super) fn next_gen(&mut self) -> u64 {
        self.gen_next = self.gen_next.wrapping_add(1);
        self.gen_next
    }

    /// Send a CDB to LUN `li`; `Err` only if SG_IO itself failed.
    pub fn sg(&mut self, li: usize, cdb: &[u8], data: Data<'_>) -> Result<Completion, Verdict> {
        sgio::command(&self.luns[li].file, cdb, data, TIMEOUT_MS).map_err(fail(&format!(
            "{}: SG_IO {:02x}h",
            self.luns[li].name, cdb[0]
        )))
    }

    /// Send `op` to the device only (no model), with stamped data for a
    /// write of whole 4 KiB blocks (recorded if it succeeds) and a
    /// pattern otherwise; a successful read of whole 4 KiB blocks is
    /// checked against the stamps recorded for them.
    pub fn send(&mut self, li: usize, op: Op) -> Result<(Completion, Result<(), String>), Verdict> {
        let bs = self.luns[li].bs();
        match op {
            Op::Write(lba, n) => {
                let len = usize::try_from(n * bs).map_err(|_| Verdict::fail("write too long"))?;
                let mut buf = vec![0xa5u8; len];
                let byte = lba * bs;
                let stamped = byte.is_multiple_of(BS4K) && (n * bs).is_multiple_of(BS4K);
                let gen = self.next_gen();
                if stamped {
                    stamp::fill_range(&mut buf, byte / BS4K, gen).map_err(fail("stamp"))?;
                }
                let blocks = u32::try_from(n).map_err(|_| Verdict::fail("write too long"))?;
                let c = self.sg(li, &sgio::write16(lba, blocks), Data::ToDevice(&buf))?;
                if c.status == 0 {
                    let first = byte / BS4K;
                    let last = (byte + n * bs).div_ceil(BS4K);
                    let l = &mut self.luns[li];
                    for b in first..last {
                        if stamped {
                            l.written.insert(b, gen);
                            self.fresh.push((li, b));
                        } else {
                            l.written.remove(&b);
                        }
                    }
                }
                Ok((c, Ok(())))
            }
            Op::Read(lba, n) => {
                let len = usize::try_from(n * bs).map_err(|_| Verdict::fail("read too long"))?;
                let mut buf = vec![0u8; len];
                let blocks = u32::try_from(n).map_err(|_| Verdict::fail("read too long"))?;
                let c = self.sg(li, &xcdb::read16(lba, blocks), Data::FromDevice(&mut buf))?;
                let mut check = Ok(());
                if c.status == 0 {
                    check = self.check_stamps(li, lba * bs, &buf);
                }
                Ok((c, check))
            }
            Op::Zone(a, id, count, all) => {
                let c = self.sg(li, &scsi::zbc_out(a, id, count, all), Data::None)?;
                Ok((c, Ok(())))
            }
        }
    }

    /// Check the recorded stamped blocks inside `buf`, read from `byte`.
    pub(super) fn check_stamps(&self, li: usize, byte: u64, buf: &[u8]) -> Result<(), String> {
        let l = &self.luns[li];
        let first = byte.div_ceil(BS4K);
        let end = (byte + buf.len() as u64) / BS4K;
        for b in first..end {
            let Some(&gen) = l.written.get(&b) else {
                continue;
            };
            let at = usize::try_from(b * BS4K - byte).unwrap_or(usize::MAX);
            let blk = buf
                .get(at..at + BLOCK_SIZE)
                .ok_or_else(|| "read buffer too short".to_string())?;
            stamp::verify(blk, b, gen)
                .map_err(|e| format!("{}: 4 KiB block {b} (byte {}): {e}", l.name, b * BS4K))?;
        }
        Ok(())
    }

    /// Apply `op` to the model and the device, expect the model's
    /// completion, then compare every zone. Returns what the model said.
    pub fn step(&mut self, li: usize, op: Op) -> Result<Result<(), Violation>, Verdict> {
        let want = match op {
            Op::Write(lba, n) => self.luns[li].model.write(lba, n),
            Op::Read(lba, n) => self.luns[li].model.read(lba, n),
            Op::Zone(a, id, c, all) => self.luns[li].model.zone_action(a, id, c, all),
        };
        let evicted = self.luns[li].model.last_eviction.clone();
        let (c, data) = self.send(li, op)?;
        let what = format!("{}: {op}", self.luns[li].name);
        self.diag(format!(
            "{what}: {}",
            match &want {
                Ok(()) => "GOOD".to_string(),
                Err(v) => v.to_string(),
            }
        ));
        check_completion(&c, &want, &what)?;
        data.map_err(|e| Verdict::fail(format!("{what}: data: {e}")))?;
        self.prune(li);
        self.check_zones(li, &what)?;
        if let Some(ev) = evicted {
            let m = &self.luns[li].model;
            let oldest = m.zones[ev.chosen].start;
            let got = m
                .last_eviction
                .as_ref()
                .map_or(oldest, |e| m.zones[e.chosen].start);
            self.last_eviction = Some((li, oldest, got));
            self.diag(format!(
                "{what}: closed implicitly open zone {got} (oldest: {oldest})"
            ));
        }
        Ok(want)
    }

    /// [`Ctx::step`] where the test itself names the outcome: the model
    /// must agree (else the test is wrong), then the device.
    pub fn expect(&mut self, li: usize, op: Op, want: Result<(), Violation>) -> Step {
        let mut m = self.luns[li].model.clone();
        let model = match op {
            Op::Write(lba, n) => m.write(lba, n),
            Op::Read(lba, n) => m.read(lba, n),
            Op::Zone(a, id, c, all) => m.zone_action(a, id, c, all),
        };
        if model != want {
            return Err(Verdict::fail(format!(
                "suite bug: {op}: the model says {model:?}, the test expects {want:?}"
            )));
        }
        self.step(li, op).map(|_| ())
    }

    /// Expect GOOD.
    pub fn ok(&mut self, li: usize, op: Op) -> Step {
        self.expect(li, op, Ok(()))
    }

    /// Expect a violation.
    pub fn err(&mut self, li: usize, op: Op, v: Violation) -> Step {
        self.expect(li, op, Err(v))
    }

    /// Expect the first of `vs` (the model's answer), accepting any of
    /// them from the device: for the cases where two checks apply and
    /// the standard does not order them.
    pub fn err_any(&mut self, li: usize, op: Op, vs: &[Violation]) -> Step {
        let first = *vs.first().ok_or_else(|| bad("suite bug: no violation"))?;
        let mut m = self.luns[li].model.clone();
        let model = match op {
            Op::Write(lba, n) => m.write(lba, n),
            Op::Read(lba, n) => m.read(lba, n),
            Op::Zone(a, id, c, all) => m.zone_action(a, id, c, all),
        };
        if model != Err(first) {
            return Err(bad(format!(
                "suite bug: {op}: the model says {model:?}, the test expects {first}"
            )));
        }
        self.luns[li].model = m;
        let (c, _) = self.send(li, op)?;
        let what = format!("{}: {op}", self.luns[li].name);
        self.diag(format!(
            "{what}: {c} sense [{}], any of {}",
            hex(&c.sense_bytes),
            vs.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let ok = vs.iter().any(|&v| check_sense(&c, v, &what).is_ok());
        if !ok {
            check_sense(&c, first, &what)?;
        }
        self.check_zones(li, &what)
    }

    /// Forget stamped blocks whose zone was reset or went offline.
    pub fn prune(&mut self, li: usize) {
        let l = &mut self.luns[li];
        let bs = l.model.layout.block_size;
        let m = &l.model;
        l.written.retain(|&b, _| {
            let lba = b * BS4K / bs;
            match m.zone_at(lba) {
                Some(z) if z.ztype.has_wp() => match z.cond {
                    model::Cond::Empty | model::Cond::Offline => false,
                    model::Cond::ImpOpen | model::Cond::ExpOpen | model::Cond::Closed => {
                        !z.wp_valid() || lba < z.wp
                    }
                    _ => true,
                },
                Some(_) => true,
                None => false,
            }
        });
    }

    /// REPORT ZONES to LUN `li`: the completion and the bytes transferred.
    pub fn report(
        &mut self,
        li: usize,
        start: u64,
        alloc: u32,
        opt: u8,
        partial: bool,
    ) -> Result<(Completion, Vec<u8>), Verdict> {
        let mut buf = vec![0u8; alloc as usize];
        let c = self.sg(
            li,
            &scsi::report_zones(start, alloc, opt, partial),
            Data::FromDevice(&mut buf),
        )?;
        let got = usize::try_from(i64::from(alloc) - i64::from(c.resid.max(0)))
            .unwrap_or(0)
            .min(buf.len());
        buf.truncate(got);
        Ok((c, buf))
    }

    /// Every zone of LUN `li` as REPORT ZONES gives it (option 00h from
    /// LBA 0), with the header checked against the model.
    pub fn device_zones(&mut self, li: usize, what: &str) -> Result<Vec<model::Zone>, Verdict> {
        let nz = self.luns[li].model.zones.len();
        let alloc = u32::try_from(64 * (nz + 2)).map_err(|_| Verdict::fail("too many zones"))?;
        let (c, buf) = self.report(li, 0, alloc, 0, false)?;
        ensure(c.status == 0, || {
            format!("{what}: REPORT ZONES: {c} sense {}", hex(&c.sense_bytes))
        })?;
        let (h, zones) =
            scsi::parse_report(&buf).map_err(|e| Verdict::fail(format!("{what}: {e}")))?;
        let blocks = self.luns[li].model.layout.blocks;
        ensure(h.max_lba == blocks - 1, || {
            format!(
                "{what}: REPORT ZONES MAXIMUM LBA {}, expected {}",
                h.max_lba,
                blocks - 1
            )
        })?;
        ensure(h.list_len as usize == 64 * zones.len(), || {
            format!(
                "{what}: REPORT ZONES ZONE LIST LENGTH {} for {} descriptors returned",
                h.list_len,
                zones.len()
            )
        })?;
        scsi::check_same(h.same, &zones).map_err(|e| Verdict::fail(format!("{what}: {e}")))?;
        Ok(zones)
    }

    /// Compare every zone of LUN `li` with the model (taking the device's
    /// choice of implicitly open zone to close, which ZBC-2 leaves to it).
    pub fn check_zones(&mut self, li: usize, what: &str) -> Step {
        let zones = self.device_zones(li, what)?;
        self.luns[li].model.adopt_eviction(&zones);
        let diff = self.luns[li].model.diff(&zones);
        ensure(diff.is_empty(), || {
            format!(
                "{what}: the zones differ from the model: {}{}",
                diff.iter().take(4).cloned().collect::<Vec<_>>().join("; "),
                if diff.len() > 4 {
                    format!(" (+{} more)", diff.len() - 4)
                } else {
                    String::new()
                }
            )
        })
    }

    /// RESET WRITE POINTER with ALL through SG_IO: every write pointer
    /// zone that is not READ ONLY or OFFLINE becomes EMPTY.
    pub fn fresh(&mut self, li: usize) -> Step {
        self.ok(li, Op::Zone(Action::Reset, 0, 0, true))
    }

    /// Verify the stamped blocks written by the current test: read back
    /// through SG_IO, and the host's CRC32C of the same ranges.
    pub(super) fn verify_fresh(&mut self) -> Step {
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.sort_unstable();
        fresh.dedup();
        let mut by_lun: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for (li, b) in fresh {
            if self.luns[li].written.contains_key(&b) {
                by_lun.entry(li).or_default().push(b);
            }
        }
        for (li, blocks) in by_lun {
            self.verify_blocks(li, &blocks)?;
        }
        Ok(())
    }

    /// Read back and host-checksum the recorded stamped `blocks` (sorted
    /// 4 KiB block numbers) of LUN `li`.
    pub fn verify_blocks(&mut self, li: usize, blocks: &[u64]) -> Step {
        // One read never crosses a zone boundary (a boundary violation
        // with URSWRZ 0, or between zone types).
        let bs = self.luns[li].bs();
        let mut all_runs = Vec::new();
        for run in runs(blocks, MAX_XFER / BS4K) {
            let mut start = run.0;
            let end = run.0 + run.1;
            while start < end {
                let zi = self.luns[li].model.zone_index(start * BS4K / bs);
                let mut stop = start + 1;
                while stop < end && self.luns[li].model.zone_index(stop * BS4K / bs) == zi {
                    stop += 1;
                }
                all_runs.push((start, stop - start));
                start = stop;
            }
        }
        for run in all_runs {
            let (b0, nb) = run;
            let per = self.luns[li].per4k();
            if per == 0 {
                return Ok(());
            }
            let (lba, n) = (b0 * per, nb * per);
            let (c, check) = self.send(li, Op::Read(lba, n))?;
            let name = self.luns[li].name.clone();
            ensure(c.status == 0, || {
                format!(
                    "{name}: read back lba {lba} +{n}: {c} sense {}",
                    hex(&c.sense_bytes)
                )
            })?;
            check.map_err(|e| Verdict::fail(format!("read back: {e}")))?;
            if self.ctl.is_some() {
                let mut crc = 0u32;
                let mut blk = vec![0u8; BLOCK_SIZE];
                for b in b0..b0 + nb {
                    let gen = self.luns[li].written.get(&b).copied().unwrap_or(0);
                    stamp::fill(&mut blk, b, gen).map_err(fail("stamp"))?;
                    crc = crc32c::crc32c_append(crc, &blk);
                }
                let got = self
                    .ctl()?
                    .checksum(&name, lba, n)
                    .map_err(|e| Verdict::fail(format!("control checksum: {e}")))?;
                ensure(got.crc == crc, || {
                    format!(
                        "{name}: host CRC32C of lba {lba} +{n} is {:#010x}, the stamped data's is {crc:#010x}",
                        got.crc
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// Runs of consecutive numbers in sorted `v`, at most `max` long: (first,
/// length).
pub fn runs(v: &[u64], max: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &x in v {
        match out.last_mut() {
            Some((s, n)) if *s + *n == x && *n < max => *n += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

/// Check a completion against the model's prediction: GOOD, or CHECK
/// CONDITION with the violation's fixed-format sense data byte for byte
/// (SPC-4 4.5.3; bytes past the 18 must be zero).
pub fn check_completion(c: &Completion, want: &Result<(), Violation>, what: &str) -> Step {
    match want {
        Ok(()) => ensure(c.status == 0 && c.host_status == 0, || {
            format!(
                "{what}: expected GOOD, got {c}, sense {}",
                hex(&c.sense_bytes)
            )
        }),
        Err(v) => check_sense(c, *v, what),
    }
}

/// CHECK CONDITION with exactly `v`'s sense bytes.
pub fn check_sense(c: &Completion, v: Violation, what: &str) -> Step {
    let want = v.fixed_sense();
    let s = &c.sense_bytes;
    let bad = || {
        format!(
            "{what}: got status {:#04x} sense [{}], expected CHECK CONDITION with {v} [{}]",
            c.status,
            hex(&s[..s.len().min(32)]),
            hex(&want)
        )
    };
    ensure(c.status == sgio::CHECK_CONDITION && s.len() >= 18, bad)?;
    ensure(s[..15] == want[..15], bad)?;
    ensure(s[18..].iter().all(|&b| b == 0), bad)?;
    match v {
        Violation::InvalidField(model::Field::Any) => {
            ensure(s[15..18] == [0, 0, 0] || s[15] & 0xc0 == 0xc0, bad)
        }
        // The bit pointer is optional (SPC-4 4.5.2.4.2: BPV 0).
        Violation::InvalidField(model::Field::Cdb(_, Some(_))) => ensure(
            s[15..18] == want[15..18] || (s[15] == 0xc0 && s[16..18] == want[16..18]),
            bad,
        ),
        _ => ensure(s[15..18] == want[15..18], bad),
    }
}
