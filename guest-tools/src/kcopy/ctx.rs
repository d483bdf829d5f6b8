//! What every kcopy test uses: allocation, one checked copy, counters, checksums.

use super::*;

/// What one copy_file_range did: its result, the cause the kernel logged
/// for a fallback, and the counters' delta and path (with a control socket).
type Ran = (
    Cfr,
    Option<kmsg::CopyCause>,
    Option<Delta>,
    Option<CopyPath>,
);

impl Suite<'_> {
    pub(super) fn diag(&mut self, s: impl Into<String>) {
        self.diags.push(s.into());
        self.flush();
    }

    pub(super) fn flush(&mut self) {
        for d in std::mem::take(&mut self.diags) {
            (self.sink)(&d);
        }
    }

    pub(super) fn needs(&self, step: &str) -> Step {
        self.done.needs(step).map_err(Finding::from)
    }

    /// The kernel has the series' copy offload, else SKIP with why not.
    pub(super) fn needs_offload(&self) -> Step {
        self.needs("probe")?;
        match &self.no_offload {
            None => Ok(()),
            Some(why) => Err(skip(why.clone())),
        }
    }

    pub(super) fn new_gen(&mut self) -> u64 {
        self.gen = self.gen.wrapping_add(1);
        self.gen
    }

    /// Index of the first device matching `pred`, not in `except`.
    pub(super) fn find(&self, except: &[usize], pred: impl Fn(&Dev) -> bool) -> Option<usize> {
        (0..self.devs.len()).find(|i| !except.contains(i) && pred(&self.devs[*i]))
    }

    pub(super) fn counters(&mut self) -> Option<Result<Counters, String>> {
        let names: Vec<String> = self.devs.iter().map(|d| d.name.clone()).collect();
        let host = self.host.as_mut()?;
        Some(host.request(r#"{"cmd":"stats"}"#).and_then(|reply| {
            let mut c = Counters::default();
            for n in names {
                let s = control::parse_stats(&reply, &n)?;
                c.devs.insert(
                    n,
                    DevCounters {
                        read: s.read_bytes,
                        written: s.written_bytes,
                        copied: s.copied_bytes,
                    },
                );
            }
            let (data, copies) = fabric_counters(&reply);
            c.fabric_data = data;
            c.copy_commands = copies;
            Ok(c)
        }))
    }

    /// Write stamped source blocks and the destination's "before" content,
    /// copy, read back, compare, checksum on the host, classify the path.
    pub(super) fn copy(&mut self, what: &str, c: &Case<'_>) -> Result<Copied, Finding> {
        let span = c.len.div_ceil(BS) * BS;
        let nblk = span / BS;
        let dname = self.devs[c.dst].name.clone();
        self.diag(format!(
            "{what}: {} byte {} -> {dname} byte {}, {} bytes{}",
            self.devs[c.src].name,
            c.src_off,
            c.dst_off,
            c.len,
            if c.dst_at_wp {
                " (destination at a zone's write pointer)"
            } else {
                ""
            }
        ));
        if c.expect == Expect::Offload {
            self.exposed = OFFLOAD_BUGS;
        }
        let (src_bytes, before) = self.stamp_case(c, span, nblk)?;
        let (cfr, cause, delta, path) = self.run_copy(c)?;
        let got = self.read_back(c, span)?;
        let copied = usize::try_from(cfr.copied).unwrap_or(usize::MAX);
        let expected = verify::after_copy(&src_bytes, &before, copied);
        let data = verify::check(&expected, &before, got.as_slice(), c.dst_off);
        // The host's view of the same blocks.
        let host_crc = self.host_crc(c, span)?;
        let want_crc = crc32c::crc32c(&expected);
        match &data {
            DataCheck::Good => self.diag(format!(
                "data: {nblk} destination block(s) verified{}",
                host_crc.map_or(String::new(), |h| format!(
                    "; host crc32c {h:#010x} (expected {want_crc:#010x})"
                ))
            )),
            DataCheck::NotWritten(m) | DataCheck::Wrong(m) => {
                self.diag(format!("data: {m}"));
                if let Some(h) = host_crc {
                    self.diag(format!(
                        "host crc32c of the destination {h:#010x}, expected {want_crc:#010x}"
                    ));
                }
            }
        }
        // Judge: errors first, then data, then the host, then the path.
        self.judge_errors(c, &cfr)?;
        self.judge_data(data, &cfr, cause, &dname)?;
        if let Some(h) = host_crc {
            if h != want_crc {
                return Err(fail(format!(
                    "the guest reads the right data but the host's crc32c of {dname} \
                     lba {} +{} is {h:#010x}, expected {want_crc:#010x}",
                    (self.devs[c.dst].host_base.unwrap_or(0) + c.dst_off) / self.devs[c.dst].lbs,
                    span / self.devs[c.dst].lbs
                )));
            }
        }
        if cfr.copied > 0 {
            judge_path(c, &cfr, path, cause, delta.as_ref())?;
        }
        Ok(Copied { cfr, delta, path })
    }

    /// Stamp the source and (unless the destination is a zone's write
    /// pointer) the destination: the source's bytes and what the
    /// destination held before.
    fn stamp_case(
        &mut self,
        c: &Case<'_>,
        span: u64,
        nblk: u64,
    ) -> Result<(Vec<u8>, Vec<u8>), Finding> {
        let (sname, dname) = (self.devs[c.src].name.clone(), self.devs[c.dst].name.clone());
        let gen_src = self.new_gen();
        blockio::write_stamped(&self.devs[c.src].file, c.src_off, nblk, gen_src, 256)
            .map_err(|e| fail(format!("stamping the source {sname} at {}: {e}", c.src_off)))?;
        let before = if c.dst_at_wp {
            vec![0u8; span as usize]
        } else {
            let gen_before = self.new_gen();
            blockio::write_stamped(&self.devs[c.dst].file, c.dst_off, nblk, gen_before, 256)
                .map_err(|e| {
                    fail(format!(
                        "stamping the destination {dname} at {}: {e}",
                        c.dst_off
                    ))
                })?;
            verify::stamped_bytes(c.dst_off / BS, gen_before, 0, span as usize)
        };
        let src_bytes = verify::stamped_bytes(c.src_off / BS, gen_src, 0, span as usize);
        Ok((src_bytes, before))
    }

    /// copy_file_range between the counters, with what the kernel logged.
    fn run_copy(&mut self, c: &Case<'_>) -> Result<Ran, Finding> {
        let (sname, dname) = (self.devs[c.src].name.clone(), self.devs[c.dst].name.clone());
        let c0 = self.counters();
        let mut log = kmsg::Kmsg::start();
        let cfr = probe::copy_file_range(
            &self.devs[c.src].file,
            c.src_off,
            &self.devs[c.dst].file,
            c.dst_off,
            c.len,
        );
        let c1 = self.counters();
        self.wait_live();
        let klog = log.since();
        self.diag(format!("copy_file_range: {cfr}"));
        for l in klog.iter().take(8) {
            self.diag(format!("kernel: {l}"));
        }
        if klog.len() > 8 {
            self.diag(format!("kernel: ... {} more line(s)", klog.len() - 8));
        }
        let cause = kmsg::copy_cause(&klog);
        let (delta, path) = match (c0, c1) {
            (Some(Ok(a)), Some(Ok(b))) => {
                let d = path::delta(&a, &b, &sname, &dname);
                let p = path::classify(&d, cfr.copied.max(1));
                self.diag(format!("counters: {d}"));
                self.diag(format!("path: {p}"));
                (Some(d), Some(p))
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => return Err(fail(format!("stats: {e}"))),
            _ => {
                self.diag("path: unknown (no zonecopy.control=)");
                (None, None)
            }
        };
        Ok((cfr, cause, delta, path))
    }

    /// Read back every destination block.
    fn read_back(&mut self, c: &Case<'_>, span: u64) -> Result<AlignedBuf, Finding> {
        let dname = self.devs[c.dst].name.clone();
        let mut got = AlignedBuf::new(span as usize);
        // A failed Copy makes nvme-tcp reconnect, and the copy call may
        // return before that starts: with max_retries 0, I/O in that window
        // fails at once (ENOLINK). Wait for the controller and read again;
        // a read that keeps failing is still a failure.
        let mut attempt = 0;
        while let Err(e) = read_full(&self.devs[c.dst].file, got.as_mut_slice(), c.dst_off) {
            attempt += 1;
            if self.nvme_instance.is_none() || attempt > 5 {
                return Err(fail(format!("reading back {dname} at {}: {e}", c.dst_off)));
            }
            self.diag(format!(
                "reading back {dname}: {e}; waiting for the controller (attempt {attempt})"
            ));
            std::thread::sleep(Duration::from_millis(500));
            self.wait_live();
        }
        Ok(got)
    }

    /// The host's crc32c of the destination blocks, if it can see them.
    fn host_crc(&mut self, c: &Case<'_>, span: u64) -> Result<Option<u32>, Finding> {
        let dname = &self.devs[c.dst].name;
        Ok(match (self.host.as_mut(), self.devs[c.dst].host_base) {
            (None, _) | (_, None) => None,
            (Some(h), Some(base)) => {
                let lbs = self.devs[c.dst].lbs;
                Some(
                    h.checksum(dname, (base + c.dst_off) / lbs, span / lbs)
                        .map_err(|e| fail(format!("host checksum: {e}")))?
                        .crc,
                )
            }
        })
    }

    /// A copy_file_range error is a failure unless the case allows it; so
    /// is a copy that stopped short.
    fn judge_errors(&mut self, c: &Case<'_>, cfr: &Cfr) -> Result<(), Finding> {
        if let Some(e) = cfr.errno() {
            let name = probe::errno_name(e);
            if !c.refusals.contains(&e) {
                return Err(fail(format!(
                    "copy_file_range failed with {name} after {} of {} bytes",
                    cfr.copied, c.len
                )));
            }
            self.diag(format!(
                "the kernel refused the copy{}: {name}",
                if cfr.copied > 0 {
                    format!(" after {} bytes", cfr.copied)
                } else {
                    String::new()
                }
            ));
        } else if !cfr.complete() {
            return Err(fail(format!(
                "copy_file_range stopped at {} of {} bytes (a call returned 0)",
                cfr.copied, c.len
            )));
        }
        Ok(())
    }

    /// Wrong data is a failure; a destination never written after a copy
    /// reported complete is the known bug.
    fn judge_data(
        &mut self,
        data: DataCheck,
        cfr: &Cfr,
        cause: Option<kmsg::CopyCause>,
        dname: &str,
    ) -> Result<(), Finding> {
        match data {
            DataCheck::Good => {}
            DataCheck::NotWritten(m) if cfr.complete() && cfr.copied > 0 => {
                self.diag(format!(
                    "evidence: first mismatching block at byte {}: expected {}, found {}",
                    m.byte, m.expected, m.found
                ));
                let why = match cause {
                    Some(kmsg::CopyCause::TcpR2t) => BUG_CAUSE_TCP,
                    _ => BUG_CAUSE,
                };
                return Err(Finding::Bug {
                    id: BUG,
                    why: format!(
                        "copy_file_range reported {} bytes but the destination was never written ({why})",
                        cfr.copied
                    ),
                });
            }
            DataCheck::NotWritten(m) | DataCheck::Wrong(m) => {
                return Err(fail(format!(
                    "destination {dname} wrong after copy_file_range reported {} bytes: {m}",
                    cfr.copied
                )));
            }
        }
        Ok(())
    }

    /// After a copy, wait (up to 60 s) until the NVMe controller is live
    /// again: a failed Copy can leave it reconnecting, and I/O fails then.
    pub(super) fn wait_live(&mut self) {
        let Some(inst) = self.nvme_instance else {
            return;
        };
        let state = self.sys.join(format!("class/nvme/nvme{inst}/state"));
        let read = || std::fs::read_to_string(&state).map(|s| s.trim().to_string());
        let first = read().unwrap_or_default();
        if first == "live" {
            return;
        }
        let start = std::time::Instant::now();
        let mut now = first.clone();
        while now != "live" && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
            now = read().unwrap_or_default();
        }
        self.diag(format!(
            "controller nvme{inst} was {first} after the copy; {now} after {:.1} s",
            start.elapsed().as_secs_f64()
        ));
    }

    /// Check a zone's write pointer (byte offsets).
    pub(super) fn expect_wp(&mut self, dev: usize, zone_start: u64, wp: u64) -> Step {
        let z = bz::report_one(&self.devs[dev].file, zone_start / SECTOR)
            .map_err(|e| fail(format!("BLKREPORTZONE: {e}")))?;
        self.diag(format!("{} zone after the copy: {z}", self.devs[dev].name));
        if z.wp * SECTOR != wp {
            return Err(fail(format!(
                "{} zone at byte {zone_start}: write pointer at byte {}, expected {wp}",
                self.devs[dev].name,
                z.wp * SECTOR
            )));
        }
        Ok(())
    }
}

/// Read exactly `buf.len()` bytes at `off`.
pub(super) fn read_full(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = f.read_at(&mut buf[done..], off + done as u64)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "short read: {done} of {} bytes",
                buf.len()
            )));
        }
        done += n;
    }
    Ok(())
}

/// Fabric data bytes and Copy commands from a stats reply, if the backend
/// reports them (section `fabric`: `data_bytes`, and per command class
/// `commands`, `data_h2c`, `data_c2h`, ...).
pub fn fabric_counters(reply: &str) -> (Option<u64>, Option<u64>) {
    let Some(f) = control::find_value(reply, "fabric") else {
        return (None, None);
    };
    let num =
        |s: &str, k: &str| control::find_value(s, k).and_then(|v| v.trim().parse::<u64>().ok());
    let data = num(f, "data_bytes");
    let copies = control::find_value(f, "copy").and_then(|c| num(c, "commands"));
    (data, copies)
}

/// The path the counters show must be the one the case expects; a
/// fallback after nvme-tcp refused the Copy's R2T is the known bug.
fn judge_path(
    c: &Case<'_>,
    cfr: &Cfr,
    path: Option<CopyPath>,
    cause: Option<kmsg::CopyCause>,
    delta: Option<&Delta>,
) -> Result<(), Finding> {
    match (c.expect, path) {
        (Expect::Offload, Some(p))
            if p != CopyPath::Offload && cause == Some(kmsg::CopyCause::TcpR2t) =>
        {
            return Err(Finding::Bug {
                    id: BUG_TCP,
                    why: format!(
                        "expected an offloaded copy, the kernel fell back ({p}) after nvme-tcp \
                         refused the controller's R2T for the Copy descriptors ('unexpected r2t \
                         for a non-write command': the copy request is read-direction), took {:.1} s",
                        cfr.elapsed.as_secs_f64()
                    ),
                });
        }
        (Expect::Offload, Some(p)) if p != CopyPath::Offload => {
            return Err(fail(format!(
                "expected an offloaded copy, the counters show {p}: {}",
                delta.map(|d| d.to_string()).unwrap_or_default()
            )));
        }
        (Expect::Fallback, Some(p)) if p != CopyPath::Fallback => {
            return Err(fail(format!(
                "expected a read/write fallback, the counters show {p}: {}",
                delta.map(|d| d.to_string()).unwrap_or_default()
            )));
        }
        _ => {}
    }
    Ok(())
}
