//! Device personalities against the kernel's assumptions: NVMe controllers
//! differ in what Copy they offer, and a correct kernel follows what each
//! one says. These tests read the controller's real capabilities (Identify
//! Controller ONCS bit 8 and OCFS, Host Behavior Support CDFE as the host
//! set it, Identify Namespace MSSRL, MCL and MSRC) through the passthru
//! ioctl, so the same suite judges every backend `--personality` and
//! `--ns ...,mssrl=,mcl=,msrc=`. Each states the rule ("a correct kernel
//! must ..."), then what this kernel did: its queue limits, and the Copy
//! commands the backend saw (control `stats`, `nvme_copy`: CDW10-15 of
//! every Copy counted when its capsule arrived, so even a Copy whose
//! descriptors never cross NVMe/TCP is seen; range lengths once executed).
//!
//! - `personality_limits`: copy_max_hw_bytes is 0 without Copy in ONCS,
//!   else at most min(MSSRL, MCL) x block size (a copy request is one
//!   source range). Known bug [`BUG_MCL`].
//! - `personality_formats`: without Copy the kernel falls back (data right,
//!   no Copy command); with Copy every Copy uses a descriptor format in
//!   OCFS and, for 2h/3h, enabled in CDFE. Known bug [`BUG_OCFS`].
//! - `personality_command_limits`: a copy needing two Copies under the
//!   limits: every Copy has NR + 1 <= MSRC + 1 ranges and (from the
//!   descriptors when they arrive, else from the SDLBA steps) at most
//!   MSSRL blocks a range and MCL a command.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    fail, host_behavior_cdfe, identify, is_nvm, skip, Case, Expect, Finding, Step, Suite,
    BUG_MERGE_OOPS, KIB, MIB,
};

/// Known-bug id: the kernel builds every NVMe Copy with descriptor format
/// 2h whatever the controller supports (OCFS) or the host enabled (Host
/// Behavior Support CDFE), instead of a usable format or no offload.
pub const BUG_OCFS: &str = "copy-ignores-ocfs";
/// Known-bug id: copy_max_hw_bytes comes from MSSRL only, so with MCL <
/// MSSRL the kernel sends Copies longer than MCL.
pub const BUG_MCL: &str = "copy-ignores-mcl";

/// What one namespace's controller offers for Copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyCaps {
    /// ONCS bit 8.
    pub copy: bool,
    /// Optional Copy Formats Supported: bit n = format n.
    pub ocfs: u16,
    /// Host Behavior Support CDFE as the host set it: bit n = format n
    /// enabled (formats 2h and 3h need it).
    pub cdfe: u16,
    /// Maximum Single Source Range Length, blocks.
    pub mssrl: u16,
    /// Maximum Copy Length, blocks.
    pub mcl: u32,
    /// Maximum Source Range Count, 0's based.
    pub msrc: u8,
    /// Logical block size.
    pub lbs: u64,
}

fn formats(bits: u16) -> String {
    let v: Vec<String> = (0..16u8)
        .filter(|f| bits & (1 << f) != 0)
        .map(|f| f.to_string())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(" ")
    }
}

impl CopyCaps {
    /// Whether a Copy may use descriptor format `f` now: in OCFS, and for
    /// 2h and above enabled in CDFE (NVMe Base 2.1 5.27.1.18).
    pub fn usable(&self, f: u8) -> bool {
        f < 16 && self.copy && self.ocfs & (1 << f) != 0 && (f < 2 || self.cdfe & (1 << f) != 0)
    }

    fn usable_bits(&self) -> u16 {
        (0..16u8)
            .filter(|&f| self.usable(f))
            .fold(0, |a, f| a | (1 << f))
    }

    /// Most blocks one single-range Copy may carry: min(MSSRL, MCL).
    pub fn range_limit(&self) -> u64 {
        u64::from(self.mssrl).min(u64::from(self.mcl))
    }

    /// The most a correct kernel may put in copy_max_hw_bytes.
    pub fn max_hw_bytes(&self) -> u64 {
        if self.copy {
            self.range_limit() * self.lbs
        } else {
            0
        }
    }

    /// One line: what the controller offers.
    pub fn describe(&self) -> String {
        if !self.copy {
            return "no Copy in ONCS".into();
        }
        format!(
            "Copy in ONCS, OCFS {:#x} (formats {}), CDFE {:#x} (usable formats {}), MSSRL {} MCL {} \
             MSRC {} ({} ranges), {}-byte blocks",
            self.ocfs,
            formats(self.ocfs),
            self.cdfe,
            formats(self.usable_bits()),
            self.mssrl,
            self.mcl,
            self.msrc,
            u16::from(self.msrc) + 1,
            self.lbs
        )
    }
}

/// The controller's Copy capabilities for device `i` (an NVMe namespace).
fn caps(s: &Suite<'_>, i: usize) -> Result<CopyCaps, String> {
    let d = &s.devs[i];
    let nsid: u32 = d.name.trim_start_matches("ns").parse().unwrap_or(0);
    let (c, n) = identify(&d.file, nsid)?;
    let cdfe = if c.copy_supported() {
        host_behavior_cdfe(&d.file)?
    } else {
        0
    };
    Ok(CopyCaps {
        copy: c.copy_supported(),
        ocfs: c.ocfs,
        cdfe,
        mssrl: n.mssrl,
        mcl: n.mcl,
        msrc: n.msrc,
        lbs: d.lbs,
    })
}

/// The worse of two findings: a failure over a known bug over a pass.
fn worse(a: Finding, b: Finding) -> Finding {
    let rank = |f: &Finding| match f {
        Finding::Fail(_) => 3,
        Finding::Bug { .. } => 2,
        Finding::Skip(_) => 1,
        Finding::Pass => 0,
    };
    if rank(&b) > rank(&a) {
        b
    } else {
        a
    }
}

/// The rule for copy_max_hw_bytes, what the kernel set (`hw`), and the
/// verdict.
pub fn judge_hw(name: &str, c: &CopyCaps, hw: u64) -> (String, String, Finding) {
    if !c.copy {
        let rule = format!(
            "{name}: no Copy in ONCS: a correct kernel must set copy_max_hw_bytes to 0 (never \
             offload to it)"
        );
        let did = format!("{name}: the kernel set copy_max_hw_bytes {hw}");
        let f = if hw == 0 {
            Finding::Pass
        } else {
            Finding::Fail(format!(
                "{name}: the controller has no Copy (ONCS bit 8 clear) but copy_max_hw_bytes is \
                 {hw}"
            ))
        };
        return (rule, did, f);
    }
    let max = c.max_hw_bytes();
    let (mssrl_b, mcl_b) = (u64::from(c.mssrl) * c.lbs, u64::from(c.mcl) * c.lbs);
    let rule = format!(
        "{name}: a correct kernel must keep copy_max_hw_bytes <= min(MSSRL {}, MCL {}) x {} = \
         {max} bytes (one source range per copy request), or 0 to not offload",
        c.mssrl, c.mcl, c.lbs
    );
    let did = format!(
        "{name}: the kernel set copy_max_hw_bytes {hw} ({:.3} x MSSRL, {:.3} x MCL)",
        hw as f64 / mssrl_b.max(1) as f64,
        hw as f64 / mcl_b.max(1) as f64
    );
    let f = if hw <= max {
        Finding::Pass
    } else if hw <= mssrl_b && c.mcl < u32::from(c.mssrl) {
        Finding::Bug {
            id: BUG_MCL,
            why: format!(
                "{name}: copy_max_hw_bytes {hw} exceeds MCL {} x {} = {mcl_b}: the limit follows \
                 MSSRL {} ({mssrl_b} bytes) and ignores MCL",
                c.mcl, c.lbs, c.mssrl
            ),
        }
    } else {
        Finding::Fail(format!(
            "{name}: copy_max_hw_bytes {hw} > min(MSSRL, MCL) x block size = {max}"
        ))
    };
    (rule, did, f)
}

/// One Copy the backend saw (an entry of `nvme_copy.ns<N>.recent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub seq: u64,
    pub sdlba: u64,
    /// NR + 1.
    pub ranges: u64,
    pub format: u8,
    /// CDW10..=CDW15.
    pub cdw: Vec<u32>,
    /// The backend refused it from its dwords on arrival: why.
    pub invalid: Option<String>,
    /// From the descriptors, once executed.
    pub blocks: Option<u64>,
    pub max_range_blocks: Option<u64>,
    /// Completion status name, once executed.
    pub status: Option<String>,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Copy seq {}: SDLBA {}, {} range(s), format {}, CDW12 {:#010x}",
            self.seq,
            self.sdlba,
            self.ranges,
            self.format,
            self.cdw.get(2).copied().unwrap_or(0)
        )?;
        match (self.blocks, &self.status) {
            (Some(b), Some(st)) => write!(f, ", {b} blocks, {st}")?,
            _ => f.write_str(", descriptors never arrived")?,
        }
        if let Some(why) = &self.invalid {
            write!(f, " (backend: {why})")?;
        }
        Ok(())
    }
}

/// The backend's Copy counters of namespace `ns` from a stats reply:
/// `None` if the backend does not count Copies (no `nvme_copy`), else the
/// number received so far and the recent ones from `from_seq` on.
pub fn parse_seen(
    reply: &str,
    ns: &str,
    from_seq: u64,
) -> Result<Option<(u64, Vec<Seen>)>, String> {
    let v: Value = serde_json::from_str(reply).map_err(|e| format!("stats reply: {e}"))?;
    let Some(all) = v.get("nvme_copy") else {
        return Ok(None);
    };
    let Some(n) = all.get(ns) else {
        return Ok(Some((0, Vec::new())));
    };
    let received = n["received"].as_u64().unwrap_or(0);
    let mut out = Vec::new();
    for e in n["recent"].as_array().map_or(&[][..], |a| a.as_slice()) {
        let seq = e["seq"].as_u64().unwrap_or(0);
        if seq < from_seq {
            continue;
        }
        out.push(Seen {
            seq,
            sdlba: e["sdlba"].as_u64().unwrap_or(0),
            ranges: e["ranges"].as_u64().unwrap_or(0),
            format: u8::try_from(e["format"].as_u64().unwrap_or(0)).unwrap_or(u8::MAX),
            cdw: e["cdw"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| u32::try_from(x.as_u64().unwrap_or(0)).unwrap_or(u32::MAX))
                        .collect()
                })
                .unwrap_or_default(),
            invalid: e["invalid"].as_str().map(str::to_string),
            blocks: e["blocks"].as_u64(),
            max_range_blocks: e["max_range_blocks"].as_u64(),
            status: e["status"].as_str().map(str::to_string),
        });
    }
    Ok(Some((received, out)))
}

/// The rule for descriptor formats, and the verdict on the Copies seen.
pub fn judge_formats(name: &str, c: &CopyCaps, seen: &[Seen]) -> (String, Finding) {
    let rule = format!(
        "{name}: a correct kernel must build every Copy in a descriptor format the controller \
         supports (OCFS {:#x}: {}) and, for 2h and 3h, has enabled in Host Behavior Support \
         (CDFE {:#x}), so in one of: {}; or not offload",
        c.ocfs,
        formats(c.ocfs),
        c.cdfe,
        formats(c.usable_bits())
    );
    let mut by_format: BTreeMap<u8, u64> = BTreeMap::new();
    for s in seen {
        *by_format.entry(s.format).or_default() += 1;
    }
    let bad: Vec<&Seen> = seen.iter().filter(|s| !c.usable(s.format)).collect();
    let Some(first) = bad.first() else {
        return (rule, Finding::Pass);
    };
    let why = |f: u8| {
        if c.ocfs & (1 << f) == 0 {
            format!("format {f} is not in OCFS {:#x}", c.ocfs)
        } else {
            format!("format {f} is not enabled (CDFE {:#x})", c.cdfe)
        }
    };
    let counts: Vec<String> = by_format
        .iter()
        .map(|(f, n)| format!("{n} in format {f}"))
        .collect();
    let evidence = format!(
        "the backend received {} Copy command(s), {}: {}; first: {first}",
        seen.len(),
        counts.join(", "),
        why(first.format)
    );
    let f = if bad.iter().all(|s| s.format == 2) {
        Finding::Bug {
            id: BUG_OCFS,
            why: format!("{name}: {evidence}"),
        }
    } else {
        Finding::Fail(format!("{name}: {evidence}"))
    };
    (rule, f)
}

/// Blocks each Copy carried, from the SDLBA steps of Copies into one
/// contiguous destination `[dst, dst_end)` (blocks): sorted by SDLBA, each
/// runs to the next one's SDLBA, the last to the end. `None` when they do
/// not start at `dst` or leave the range.
pub fn infer_blocks(seen: &[Seen], dst: u64, dst_end: u64) -> Option<Vec<(u64, u64)>> {
    let mut at: Vec<u64> = seen.iter().map(|s| s.sdlba).collect();
    at.sort_unstable();
    at.dedup();
    if at.first() != Some(&dst) || at.last().is_some_and(|&l| l >= dst_end) {
        return None;
    }
    let ends = at.iter().skip(1).copied().chain([dst_end]);
    Some(at.iter().zip(ends).map(|(&a, b)| (a, b - a)).collect())
}

/// What a copy of `[dst, dst_end)` (blocks) sent, against the limits: the
/// rule and the verdict. `hw` is copy_max_hw_bytes.
pub fn judge_commands(
    name: &str,
    c: &CopyCaps,
    hw: u64,
    seen: &[Seen],
    dst: u64,
    dst_end: u64,
) -> (String, Vec<String>, Finding) {
    let rule = format!(
        "{name}: a correct kernel must send Copies of at most MSRC + 1 = {} source ranges, each \
         range at most MSSRL {} blocks and each Copy at most MCL {} blocks",
        u16::from(c.msrc) + 1,
        c.mssrl,
        c.mcl
    );
    let mut notes = Vec::new();
    // (violation, only MCL is exceeded while MSSRL holds)
    let mut bad: Vec<(String, bool)> = Vec::new();
    let msrc = u64::from(c.msrc) + 1;
    let (mssrl, mcl) = (u64::from(c.mssrl), u64::from(c.mcl));
    for s in seen {
        if s.ranges > msrc {
            bad.push((
                format!("{s}: {} ranges > MSRC + 1 = {msrc}", s.ranges),
                false,
            ));
        }
        if let (Some(b), Some(m)) = (s.blocks, s.max_range_blocks) {
            if m > mssrl {
                bad.push((format!("{s}: a range of {m} blocks > MSSRL {mssrl}"), false));
            } else if b > mcl {
                bad.push((format!("{s}: {b} blocks > MCL {mcl}"), true));
            }
        }
    }
    let decoded = seen.iter().any(|s| s.blocks.is_some());
    if !seen.is_empty() && !decoded {
        match infer_blocks(seen, dst, dst_end) {
            None => notes.push(format!(
                "descriptors never arrived and the SDLBAs do not tile LBAs {dst}..{dst_end}: \
                 range lengths unknown"
            )),
            Some(v) => {
                let list: Vec<String> = v.iter().map(|(a, n)| format!("{n} at {a}")).collect();
                notes.push(format!(
                    "descriptors never arrived; blocks per Copy from the SDLBA steps: {}",
                    list.join(", ")
                ));
                // Only as evidence where the kernel's own limit allows
                // such a Copy (a missing Copy would make a step look long).
                let kernel_max = hw / c.lbs.max(1);
                for (a, n) in v {
                    if n > c.range_limit() && n <= kernel_max {
                        let only_mcl = n <= mssrl && n > mcl;
                        bad.push((
                            format!(
                                "the Copy at SDLBA {a} carried {n} blocks (SDLBA steps, within \
                                 the kernel's copy_max_hw_bytes {hw}) > min(MSSRL {mssrl}, MCL {mcl})"
                            ),
                            only_mcl,
                        ));
                    }
                }
            }
        }
    }
    let f = if bad.is_empty() {
        Finding::Pass
    } else {
        let text: Vec<&str> = bad.iter().map(|(t, _)| t.as_str()).collect();
        let text = format!("{name}: {}", text.join("; "));
        if c.mcl < u32::from(c.mssrl) && bad.iter().all(|(_, only_mcl)| *only_mcl) {
            Finding::Bug {
                id: BUG_MCL,
                why: text,
            }
        } else {
            Finding::Fail(text)
        }
    };
    (rule, notes, f)
}

/// How a copy within (or into) device `i` should go: offloaded where the
/// controller has Copy, a fallback where it has none (a correct kernel
/// never offloads there). Devices other than NVMe namespaces: offload.
pub(super) fn expect_for(s: &Suite<'_>, i: usize) -> Expect {
    if !s.devs[i].nvme {
        return Expect::Offload;
    }
    match caps(s, i) {
        Ok(c) if !c.copy => Expect::Fallback,
        _ => Expect::Offload,
    }
}

/// The stats reply now, if there is a control socket.
fn stats(s: &mut Suite<'_>) -> Step<Option<String>> {
    match s.host.as_mut() {
        None => Ok(None),
        Some(h) => h
            .request(r#"{"cmd":"stats"}"#)
            .map(Some)
            .map_err(|e| fail(format!("stats: {e}"))),
    }
}

/// Copies received by namespace `ns` so far (`None`: not counted).
pub(super) fn received(s: &mut Suite<'_>, ns: &str) -> Step<Option<u64>> {
    let Some(r) = stats(s)? else {
        return Ok(None);
    };
    Ok(parse_seen(&r, ns, u64::MAX).map_err(fail)?.map(|(n, _)| n))
}

/// The Copies namespace `ns` received from `from` on.
fn seen_since(s: &mut Suite<'_>, ns: &str, from: u64) -> Step<Vec<Seen>> {
    let Some(r) = stats(s)? else {
        return Ok(Vec::new());
    };
    let seen = parse_seen(&r, ns, from)
        .map_err(fail)?
        .map_or_else(Vec::new, |(_, v)| v);
    for x in seen.iter().take(8) {
        s.diag(format!("backend: {x}"));
    }
    if seen.len() > 8 {
        s.diag(format!(
            "backend: ... {} more Copy command(s)",
            seen.len() - 8
        ));
    }
    Ok(seen)
}

fn nvme_devs(s: &Suite<'_>) -> Vec<usize> {
    (0..s.devs.len()).filter(|&i| s.devs[i].nvme).collect()
}

/// copy_max_hw_bytes against ONCS, MSSRL and MCL, every NVMe namespace.
pub(super) fn t_limits(s: &mut Suite<'_>) -> Finding {
    let r: Step = (|| {
        s.needs_offload()?;
        let devs = nvme_devs(s);
        if devs.is_empty() {
            return Err(skip("needs an NVMe namespace"));
        }
        let mut worst = Finding::Pass;
        for i in devs {
            let c = caps(s, i).map_err(fail)?;
            let name = s.devs[i].name.clone();
            s.diag(format!("{name}: {}", c.describe()));
            let Some(hw) = s.devs[i].limits.max_hw_bytes else {
                return Err(skip(format!(
                    "{name}: no queue/copy_max_hw_bytes (no block-layer copy offload)"
                )));
            };
            if c.copy && c.mcl < u32::from(c.mssrl) {
                s.exposed = &[BUG_MCL];
            }
            let (rule, did, f) = judge_hw(&name, &c, hw);
            s.diag(rule);
            s.diag(did);
            if c.copy && hw == 0 {
                s.diag(format!(
                    "{name}: the kernel does not offload to this namespace"
                ));
            }
            worst = worse(worst, f);
        }
        match worst {
            Finding::Pass => Ok(()),
            f => Err(f),
        }
    })();
    r.err().unwrap_or(Finding::Pass)
}

/// One copy within an NVM namespace: the descriptor formats the backend
/// saw, against OCFS and CDFE (or no Copy at all without ONCS Copy).
pub(super) fn t_formats(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let a = s
        .find(&[], is_nvm)
        .ok_or_else(|| skip("needs an NVM namespace"))?;
    let c = caps(s, a).map_err(fail)?;
    let name = s.devs[a].name.clone();
    s.diag(format!("{name}: {}", c.describe()));
    let before = received(s, &name)?;
    if before.is_none() {
        s.diag("the backend does not count Copy commands (no nvme_copy in stats)");
    }
    let len = 64 * KIB;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[a].alloc(len)?;
    if !c.copy {
        s.diag(format!(
            "{name}: no Copy in ONCS: a correct kernel must not send Copy; copy_file_range \
             falls back (data right, nothing copied by the device, no Copy command)"
        ));
        let copied = s.copy(
            "no Copy in ONCS",
            &Case::new(a, so, a, dof, len, Expect::Fallback),
        )?;
        let seen = seen_since(s, &name, before.unwrap_or(0))?;
        let dev_copied = copied.delta.map_or(0, |d| d.dst_copied);
        s.diag(format!(
            "the kernel sent {} Copy command(s); the device copied {dev_copied} bytes",
            seen.len()
        ));
        if !seen.is_empty() || dev_copied > 0 {
            return Err(fail(format!(
                "{name}: no Copy in ONCS, yet the backend received {} Copy command(s) \
                 (first: {}) and copied {dev_copied} bytes",
                seen.len(),
                seen.first().map_or("-".into(), |x| x.to_string())
            )));
        }
        return Ok(());
    }
    // The known bug always uses format 2h: it shows only where 2h is
    // not usable.
    if !c.usable(2) {
        s.exposed = &[BUG_OCFS];
    }
    let res = s.copy(
        "descriptor formats",
        &Case::new(a, so, a, dof, len, Expect::Either),
    );
    let seen = seen_since(s, &name, before.unwrap_or(0))?;
    let (rule, f) = judge_formats(&name, &c, &seen);
    s.diag(rule);
    let used: Vec<String> = seen.iter().map(|x| x.format.to_string()).collect();
    s.diag(format!(
        "{name}: the kernel sent {} Copy command(s){}; copy_max_bytes {}",
        seen.len(),
        if used.is_empty() {
            String::new()
        } else {
            format!(" in format(s) {}", used.join(", "))
        },
        s.devs[a].limits.max_bytes.unwrap_or(0)
    ));
    judged(s, f, res)
}

/// A copy that needs two Copies under the limits of one NVM namespace
/// (one with MCL < MSSRL if any, else the smallest limits): every Copy the
/// backend saw within MSRC, MSSRL and MCL.
pub(super) fn t_command_limits(s: &mut Suite<'_>) -> Step {
    s.needs_offload()?;
    let mut best: Option<(usize, CopyCaps)> = None;
    for i in 0..s.devs.len() {
        if !is_nvm(&s.devs[i]) {
            continue;
        }
        let c = caps(s, i).map_err(fail)?;
        // Where MCL < MSSRL first (an MSSRL-only limit shows there),
        // then the smallest limit.
        let key = |c: &CopyCaps| (c.mcl >= u32::from(c.mssrl), c.range_limit());
        if best.is_none_or(|(_, b)| key(&c) < key(&b)) {
            best = Some((i, c));
        }
    }
    let (a, c) = best.ok_or_else(|| skip("needs an NVM namespace"))?;
    let name = s.devs[a].name.clone();
    s.diag(format!("{name}: {}", c.describe()));
    if c.copy && c.mcl < u32::from(c.mssrl) {
        s.exposed = &[BUG_MCL];
    }
    let limit = c.range_limit() * c.lbs;
    // Two full Copies and one block more where that is small; else
    // 1 MiB (one Copy under the limits).
    let len = if c.copy && limit <= 2 * MIB {
        2 * limit + c.lbs
    } else {
        MIB
    };
    let hw = s.devs[a].limits.max_hw_bytes.unwrap_or(0);
    // A copy the kernel splits into bios that could merge oopses the
    // 7.2 kernels (copy-merge-oops): keep to one copy_max_bytes then.
    let max = s.devs[a].limits.max_bytes.unwrap_or(0);
    let len = if s.cfg.xfail.iter().any(|b| b == BUG_MERGE_OOPS) && max > 0 && len > max {
        let l = max / c.lbs * c.lbs;
        s.diag(format!(
            "{BUG_MERGE_OOPS} listed: a copy this kernel splits can oops it; copying \
             copy_max_bytes = {l} bytes instead of {len}"
        ));
        l
    } else {
        len
    };
    let before = received(s, &name)?;
    let so = s.devs[a].alloc(len)?;
    let dof = s.devs[a].alloc(len)?;
    let expect = if c.copy {
        Expect::Either
    } else {
        Expect::Fallback
    };
    let res = s.copy(
        "across the Copy limits",
        &Case::new(a, so, a, dof, len, expect),
    );
    let seen = seen_since(s, &name, before.unwrap_or(0))?;
    let (dst, dst_end) = (dof / c.lbs, (dof + len).div_ceil(c.lbs));
    if !c.copy {
        if let Some(x) = seen.first() {
            return Err(fail(format!(
                "{name}: no Copy in ONCS, yet the backend received {} Copy command(s) \
                 (first: {x})",
                seen.len()
            )));
        }
        return res.map(|_| ());
    }
    let (rule, notes, f) = judge_commands(&name, &c, hw, &seen, dst, dst_end);
    s.diag(rule);
    for n in notes {
        s.diag(format!("{name}: {n}"));
    }
    s.diag(format!(
        "{name}: {len} bytes ({} blocks) by the kernel with copy_max_hw_bytes {hw}: {} Copy \
         command(s){}",
        dst_end - dst,
        seen.len(),
        if before.is_none() {
            " (not counted by this backend)"
        } else {
            ""
        }
    ));
    judged(s, f, res)
}

/// The judge's finding on what the backend saw comes first; the copy's
/// own error counts only when the judge found nothing.
fn judged<T>(s: &mut Suite<'_>, f: Finding, res: Step<T>) -> Step {
    match (f, res) {
        (Finding::Pass, Err(e)) => Err(e),
        (Finding::Pass, Ok(_)) => Ok(()),
        (f, res) => {
            if let Err(e) = res {
                s.diag(format!("the copy itself: {e:?}"));
            }
            Err(f)
        }
    }
}

#[cfg(test)]
mod tests;
