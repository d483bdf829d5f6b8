//! What every xcopy test uses: devices, copy lists, sense checks, host checks.

use super::*;

impl Ctx {
    pub(super) fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
    }

    pub(super) fn needs(&self, step: &str) -> Step {
        self.done.needs(step)
    }

    pub(super) fn a(&self) -> Result<usize, Verdict> {
        self.hm
            .first()
            .copied()
            .ok_or_else(|| Verdict::skip("needs a host-managed LUN"))
    }

    pub(super) fn b(&self) -> Result<usize, Verdict> {
        self.hm
            .get(1)
            .copied()
            .ok_or_else(|| Verdict::skip("needs a second host-managed LUN"))
    }

    pub(super) fn tpc(&self) -> Result<&Tpc, Verdict> {
        self.tpc
            .as_ref()
            .ok_or_else(|| Verdict::skip("needs vpd_8f"))
    }

    pub(super) fn list_id(&mut self) -> u32 {
        self.next_list = self.next_list.wrapping_add(1);
        // LID1 uses the low byte: keep it away from 0 and FFh.
        if matches!(self.next_list & 0xff, 0 | 0xff) {
            self.next_list = self.next_list.wrapping_add(2);
        }
        self.next_list
    }

    pub(super) fn sg(
        &self,
        dev: usize,
        cdb: &[u8],
        data: sgio::Data<'_>,
    ) -> Result<sgio::Completion, Verdict> {
        let d = &self.devs[dev];
        sgio::command(&d.file, cdb, data, TIMEOUT_MS)
            .map_err(|e| Verdict::fail(format!("SG_IO {:02x} on {}: {e}", cdb[0], d.name)))
    }

    /// Data-in command that must succeed; returns the bytes transferred.
    pub(super) fn data_in(
        &self,
        dev: usize,
        cdb: &[u8],
        alloc: usize,
        what: &str,
    ) -> Result<Vec<u8>, Verdict> {
        let mut buf = vec![0u8; alloc];
        let c = self.sg(dev, cdb, sgio::Data::FromDevice(&mut buf))?;
        if c.status != 0 || c.host_status != 0 {
            return Err(Verdict::fail(format!(
                "{what} on {}: {c} sense [{}]",
                self.devs[dev].name,
                hex(&c.sense_bytes)
            )));
        }
        let got = alloc.saturating_sub(usize::try_from(c.resid.max(0)).unwrap_or(0));
        buf.truncate(got);
        Ok(buf)
    }

    pub(super) fn read(&self, dev: usize, byte: u64, len: u64) -> Result<Vec<u8>, Verdict> {
        let d = &self.devs[dev];
        let mut buf = AlignedBuf::new(len as usize);
        let n = std::os::unix::fs::FileExt::read_at(&d.file, buf.as_mut_slice(), byte).map_err(
            fail(&format!("{}: read {len} bytes at byte {byte}", d.name)),
        )?;
        ensure(n as u64 == len, || {
            format!("{}: short read {n} of {len} at byte {byte}", d.name)
        })?;
        Ok(buf.as_slice().to_vec())
    }

    /// A fresh 4 KiB-aligned destination slot in `dev`'s conventional space.
    pub(super) fn slot(&mut self, dev: usize) -> Result<u64, Verdict> {
        let d = &mut self.devs[dev];
        let at = DST_OFF + d.slot * SLOT;
        if at + SLOT > d.conv_bytes() {
            return Err(Verdict::skip(format!(
                "{}: no room for another {SLOT}-byte destination below byte {}",
                d.name,
                d.conv_bytes()
            )));
        }
        d.slot += 1;
        Ok(at)
    }

    pub(super) fn cscd(&self, dev: usize) -> Result<CscdId, Verdict> {
        let d = &self.devs[dev];
        let des = d
            .designator
            .as_ref()
            .ok_or_else(|| Verdict::skip(format!("{}: needs a VPD 83h LU designator", d.name)))?;
        Ok(CscdId::new(
            d.pdt,
            des.code_set,
            des.designator_type,
            &des.designator,
            d.bs() as u32,
        ))
    }

    pub(super) fn stats(&mut self, devs: &[usize]) -> Option<Result<Vec<DevStats>, String>> {
        let names: Vec<String> = devs.iter().map(|&i| self.devs[i].name.clone()).collect();
        let ctl = self.ctl.as_mut()?;
        Some(names.iter().map(|n| ctl.stats(n)).collect())
    }

    /// An Expect for copying `len` source bytes at `src_byte` of `src` to
    /// `dst_byte` of `dst` (conventional space: the old region is read
    /// first; `seq`: the region is exactly the span, expected old content
    /// irrelevant).
    pub(super) fn expect_copy(
        &self,
        src: usize,
        src_byte: u64,
        dst: usize,
        dst_byte: u64,
        len: u64,
        seq: bool,
    ) -> Result<Expect, Verdict> {
        let region = dst_byte / BS4K * BS4K;
        let end = (dst_byte + len).div_ceil(BS4K) * BS4K;
        let mut data = if seq {
            vec![0u8; (end - region) as usize]
        } else {
            self.read(dst, region, end - region)?
        };
        let s0 = src_byte / BS4K * BS4K;
        let s1 = (src_byte + len).div_ceil(BS4K) * BS4K;
        let sbytes = self.read(src, s0, s1 - s0)?;
        let from = (src_byte - s0) as usize;
        let at = (dst_byte - region) as usize;
        data[at..at + len as usize].copy_from_slice(&sbytes[from..from + len as usize]);
        let aligned = src_byte.is_multiple_of(BS4K)
            && dst_byte.is_multiple_of(BS4K)
            && len.is_multiple_of(BS4K);
        Ok(Expect {
            dev: dst,
            region,
            data,
            stamps: aligned.then(|| (at, src_byte / BS4K, self.devs[src].gen, len / BS4K)),
            copied: len,
        })
    }

    /// An Expect that a span is unchanged (host checksum only when it may
    /// not be readable, e.g. past a write pointer).
    pub(super) fn expect_unchanged(
        &mut self,
        dev: usize,
        byte: u64,
        len: u64,
        readable: bool,
    ) -> Result<Expect, Verdict> {
        let data = if readable {
            self.read(dev, byte, len)?
        } else {
            Vec::new()
        };
        Ok(Expect {
            dev,
            region: byte,
            data,
            stamps: None,
            copied: 0,
        })
    }

    pub(super) fn host_checksum(
        &mut self,
        dev: usize,
        byte: u64,
        len: u64,
    ) -> Result<control::Checksum, String> {
        let bs = self.devs[dev].bs();
        let name = self.devs[dev].name.clone();
        match self.ctl.as_mut() {
            Some(c) => c.checksum(&name, byte / bs, len / bs),
            None => Err("no control socket".into()),
        }
    }

    /// Send a copy-class command and check it all: `want` is `None` for
    /// GOOD or the sense (key, asc, ascq) it must fail with. Returns the
    /// decoded sense of a failure. Data checks fail the test; host checks
    /// (checksums, counters) go to `self.host`.
    pub(super) fn exec(
        &mut self,
        via: usize,
        cdb: &[u8],
        params: &[u8],
        involved: &[usize],
        expects: &[Expect],
        want: &[(u8, u8, u8)],
    ) -> Result<Option<SenseData>, Verdict> {
        // Host checksums of unreadable spans, before.
        let mut before_crc = Vec::new();
        for e in expects {
            if e.data.is_empty() {
                before_crc.push(Some(self.host_checksum(e.dev, e.region, 4096 * 8)));
            } else {
                before_crc.push(None);
            }
        }
        let s0 = self.stats(involved);
        let c = self.sg(via, cdb, sgio::Data::ToDevice(params))?;
        let s1 = self.stats(involved);
        let sd = SenseData::decode(&c.sense_bytes);
        self.diag(format!(
            "{} {:02x}h/{:02x}h via {} ({} parameter bytes): status {:#04x}{}",
            if cdb[0] == cdb::OP_TPC_OUT {
                "83h"
            } else {
                "cmd"
            },
            cdb[0],
            cdb[1] & 0x1f,
            self.devs[via].name,
            params.len(),
            c.status,
            if c.sense_bytes.is_empty() {
                String::new()
            } else {
                format!(" sense [{}]", hex(&c.sense_bytes))
            }
        ));
        ensure(c.host_status == 0, || format!("transport failure: {c}"))?;
        match want {
            [] => ensure(c.status == 0, || {
                format!(
                    "expected GOOD, got {c}{}",
                    sd.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
                )
            })?,
            _ => {
                let s = sd.as_ref();
                ensure(
                    c.status == sgio::CHECK_CONDITION
                        && s.is_some_and(|s| want.contains(&(s.key, s.asc, s.ascq))),
                    || {
                        format!(
                            "expected CHECK CONDITION with {}, got status {:#04x} {}",
                            want.iter()
                                .map(|(k, a, q)| format!("key {k:02X}h {a:02X}h/{q:02X}h"))
                                .collect::<Vec<_>>()
                                .join(" or "),
                            c.status,
                            s.map_or_else(
                                || format!("sense [{}]", hex(&c.sense_bytes)),
                                |s| s.to_string()
                            )
                        )
                    },
                )?;
            }
        }
        // Data, read back through the kernel.
        for e in expects {
            if e.data.is_empty() {
                continue;
            }
            let got = self.read(e.dev, e.region, e.data.len() as u64)?;
            if let Some(i) = got.iter().zip(&e.data).position(|(a, b)| a != b) {
                return Err(Verdict::fail(format!(
                    "{}: byte {} differs from the source (got {:02x}, want {:02x})",
                    self.devs[e.dev].name,
                    e.region + i as u64,
                    got[i],
                    e.data[i]
                )));
            }
            if let Some((at, first, gen, n)) = e.stamps {
                for i in 0..n as usize {
                    let b = &got[at + i * BLOCK_SIZE..at + (i + 1) * BLOCK_SIZE];
                    stamp::verify(b, first + i as u64, gen).map_err(|err| {
                        Verdict::fail(format!(
                            "{}: copied block at byte {}: {err}",
                            self.devs[e.dev].name,
                            e.region + (at + i * BLOCK_SIZE) as u64
                        ))
                    })?;
                }
            }
        }
        // Host side.
        self.host = Some(self.host_verdict(involved, expects, &before_crc, s0, s1));
        Ok(sd)
    }

    pub(super) fn host_verdict(
        &mut self,
        involved: &[usize],
        expects: &[Expect],
        before_crc: &[Option<Result<control::Checksum, String>>],
        s0: Option<Result<Vec<DevStats>, String>>,
        s1: Option<Result<Vec<DevStats>, String>>,
    ) -> Verdict {
        let (Some(s0), Some(s1)) = (s0, s1) else {
            return Verdict::skip(self.ctl_why.clone());
        };
        let (s0, s1) = match (s0, s1) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Verdict::fail(format!("stats: {e}")),
        };
        for (k, &dev) in involved.iter().enumerate() {
            let (a, b) = (s0[k], s1[k]);
            let name = &self.devs[dev].name;
            self.diags
                .push(format!("{name} stats before: {a}; after: {b}"));
            if !self.zero_write
                && (a.read_bytes != b.read_bytes || a.written_bytes != b.written_bytes)
            {
                return Verdict::fail(format!(
                    "{name}: host counters moved across the copy: read {} -> {}, written {} -> {}",
                    a.read_bytes, b.read_bytes, a.written_bytes, b.written_bytes
                ));
            }
            let want: u64 = expects
                .iter()
                .filter(|e| e.dev == dev)
                .map(|e| e.copied)
                .sum();
            let got = b.copied_bytes.wrapping_sub(a.copied_bytes);
            if self.zero_write {
                // Zeros from the block device zero ROD token are neither
                // read nor copied data: the bytes must be counted once, as
                // written or as copied (the counters' documentation does
                // not say which), and nothing read.
                let w = b.written_bytes.wrapping_sub(a.written_bytes);
                self.diags.push(format!(
                    "{name}: zero token counted {w} written, {got} copied"
                ));
                if a.read_bytes != b.read_bytes || w + got != want {
                    return Verdict::fail(format!(
                        "{name}: zero token: read {} -> {}, written +{w}, copied +{got}; expected {want} bytes counted once",
                        a.read_bytes, b.read_bytes
                    ));
                }
                continue;
            }
            if got != want {
                return Verdict::fail(format!(
                    "{name}: copied_bytes grew by {got}, expected exactly {want}"
                ));
            }
        }
        for (e, before) in expects.iter().zip(before_crc) {
            let name = self.devs[e.dev].name.clone();
            if let Some(before) = before {
                let before = match before {
                    Ok(c) => c.clone(),
                    Err(err) => return Verdict::fail(format!("checksum before: {err}")),
                };
                match self.host_checksum(e.dev, e.region, 4096 * 8) {
                    Ok(after) if after == before => {}
                    Ok(after) => {
                        return Verdict::fail(format!(
                            "{name}: host CRC32C of bytes {}+32768 changed: {:#010x} -> {:#010x}",
                            e.region, before.crc, after.crc
                        ))
                    }
                    Err(err) => return Verdict::fail(err),
                }
                continue;
            }
            let want = crc32c::crc32c(&e.data);
            match self.host_checksum(e.dev, e.region, e.data.len() as u64) {
                Ok(c) => {
                    if c.crc != want {
                        return Verdict::fail(format!(
                            "{name}: host CRC32C of bytes {}+{} is {:#010x}, source data gives {want:#010x}",
                            e.region,
                            e.data.len(),
                            c.crc
                        ));
                    }
                    let per: Vec<u32> = e.data.chunks(BLOCK_SIZE).map(crc32c::crc32c).collect();
                    if c.blocks != per {
                        let i = c.blocks.iter().zip(&per).position(|(a, b)| a != b);
                        return Verdict::fail(format!(
                            "{name}: per-4K host CRC32C differ (first at block {i:?}, {} vs {} blocks)",
                            c.blocks.len(),
                            per.len()
                        ));
                    }
                }
                Err(err) => return Verdict::fail(err),
            }
        }
        Verdict::Pass
    }

    pub(super) fn wp(&self, dev: usize, zone_byte: u64) -> Result<bz::BlkZone, Verdict> {
        bz::report_one(&self.devs[dev].file, zone_byte / SECTOR).map_err(fail("BLKREPORTZONE"))
    }

    /// Write `n` stamped 4 KiB blocks at `byte` with WRITE(16) through
    /// SG_IO (so the kernel's zone write plug never caches a write pointer
    /// the copies then move).
    pub(super) fn write_sgio(&self, dev: usize, byte: u64, n: u64) -> Step {
        let d = &self.devs[dev];
        let mut buf = AlignedBuf::new((n * BS4K) as usize);
        stamp::fill_range(buf.as_mut_slice(), byte / BS4K, d.gen).map_err(fail("stamp"))?;
        let cdb = sgio::write16(byte / d.bs(), ((n * BS4K) / d.bs()) as u32);
        let c = self.sg(dev, &cdb, sgio::Data::ToDevice(buf.as_slice()))?;
        ensure(c.status == 0 && c.host_status == 0, || {
            format!("{}: WRITE(16) at byte {byte}: {c}", d.name)
        })
    }
}
