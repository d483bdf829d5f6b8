//! Device timing profiles (`--timing PROFILE`, `timing=PROFILE` in a
//! `--ns` spec): what a device class costs in time and energy, so the
//! backend's timing model (vhost-device/src/timing) can say what a copy
//! would take on a phone's UFS device or an NVMe-oF target rather than on
//! this host's page cache.
//!
//! A profile is a TOML file with a `name` and three tables, every number
//! with its unit in its key (`_bytes_per_s`, `_us`, `_pj_per_byte`, `_w`):
//!
//! ```toml
//! name = "my-ssd"
//! [link]    # the host interface, per direction
//! bytes_per_s = 7_200_000_000
//! command_latency_us = 2.0
//! command_bytes = 64        # per command, host to device
//! completion_bytes = 16     # per command, device to host
//! [media]
//! read_bytes_per_s = 7_000_000_000
//! write_bytes_per_s = 5_100_000_000
//! copy_bytes_per_s = 2_950_000_000   # device-internal copy
//! read_latency_us = 45.0
//! program_latency_us = 16.0
//! channels = 8                       # internal parallelism
//! stripe_bytes = 131_072             # bytes per channel before the next
//! [energy]
//! link_pj_per_byte = 80.0
//! media_read_pj_per_byte = 770.0
//! media_program_pj_per_byte = 1_100.0
//! dram_pj_per_byte = 120.0
//! host_cpu_w = 10.0
//! ```
//!
//! The `toml` crate reads the file; every table is `deny_unknown_fields`
//! and every key is required, so a typo cannot silently leave a default in
//! place. [`TimingProfile::parse`] then checks the values' ranges (see
//! [`TimingProfile::check`]): the model allocates a clock per channel and
//! walks commands stripe by stripe, so a file must not be able to make it
//! allocate or loop without bound.
//!
//! Built-in profiles ([`BUILTIN`]) are embedded from
//! vhost-device/contract/profiles/; [`TimingProfile::load`] takes a
//! built-in name or a file path.

use std::{fmt, path::Path};

use serde::{Deserialize, Serialize};

/// The host interface, per direction (full duplex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Payload bandwidth each way.
    pub bytes_per_s: u64,
    /// Round-trip cost of one command (doorbell, capsule, interrupt).
    pub command_latency_us: f64,
    /// Bytes each command puts on the link host to device (SQE, capsule).
    pub command_bytes: u64,
    /// Bytes each completion puts on the link device to host.
    pub completion_bytes: u64,
}

/// Most bytes a profile may give a command or a completion on the link
/// (a capsule with in-capsule data is at most a few KiB; 1 MiB is far
/// past any transport's).
pub const MAX_CAPSULE_BYTES: u64 = 1 << 20;
/// Most media channels a profile may give (the model keeps a clock per
/// channel; real controllers have 2 to 16, a few dozen with many dies
/// per channel counted as channels).
pub const MAX_CHANNELS: u64 = 1024;
/// Smallest stripe a profile may give: one 4 KiB page (the model walks a
/// command stripe by stripe).
pub const MIN_STRIPE_BYTES: u64 = 4096;

/// The storage medium behind the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Media {
    pub read_bytes_per_s: u64,
    pub write_bytes_per_s: u64,
    /// A device-internal copy (read and program, no link).
    pub copy_bytes_per_s: u64,
    pub read_latency_us: f64,
    pub program_latency_us: f64,
    /// Channels that work in parallel (the device's internal queue depth),
    /// 1..=[`MAX_CHANNELS`].
    pub channels: u64,
    /// Bytes of one command on one channel before it moves to the next,
    /// [`MIN_STRIPE_BYTES`] or more.
    pub stripe_bytes: u64,
}

/// Energy coefficients of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    /// Per byte over the host link (both ends).
    pub link_pj_per_byte: f64,
    pub media_read_pj_per_byte: f64,
    pub media_program_pj_per_byte: f64,
    /// Per byte into or out of host DRAM.
    pub dram_pj_per_byte: f64,
    /// Power of one busy host CPU.
    pub host_cpu_w: f64,
}

/// One device class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimingProfile {
    pub name: String,
    pub link: Link,
    pub media: Media,
    pub energy: Energy,
}

/// What a device's timing model has charged so far, in virtual
/// nanoseconds and bytes: the control socket's `stats` -> `timing` ->
/// device -> `counters`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub commands: u64,
    /// The latest virtual completion: modeled time since the device began.
    pub elapsed_ns: u64,
    /// Time the link was busy host to device.
    pub link_h2c_busy_ns: u64,
    /// Time the link was busy device to host.
    pub link_c2h_busy_ns: u64,
    /// Time the media channels were busy, summed over channels.
    pub media_busy_ns: u64,
    pub link_h2c_bytes: u64,
    pub link_c2h_bytes: u64,
    /// Media bytes read (host reads plus copies).
    pub media_read_bytes: u64,
    /// Media bytes programmed (host writes plus copies).
    pub media_programmed_bytes: u64,
    /// Of those, bytes a device-internal copy moved.
    pub media_copied_bytes: u64,
}

impl Counters {
    /// Growth since `before`.
    pub fn since(&self, before: &Counters) -> Counters {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Counters {
            commands: d(self.commands, before.commands),
            elapsed_ns: d(self.elapsed_ns, before.elapsed_ns),
            link_h2c_busy_ns: d(self.link_h2c_busy_ns, before.link_h2c_busy_ns),
            link_c2h_busy_ns: d(self.link_c2h_busy_ns, before.link_c2h_busy_ns),
            media_busy_ns: d(self.media_busy_ns, before.media_busy_ns),
            link_h2c_bytes: d(self.link_h2c_bytes, before.link_h2c_bytes),
            link_c2h_bytes: d(self.link_c2h_bytes, before.link_c2h_bytes),
            media_read_bytes: d(self.media_read_bytes, before.media_read_bytes),
            media_programmed_bytes: d(self.media_programmed_bytes, before.media_programmed_bytes),
            media_copied_bytes: d(self.media_copied_bytes, before.media_copied_bytes),
        }
    }

    /// Bytes over the link, both ways.
    pub fn link_bytes(&self) -> u64 {
        self.link_h2c_bytes.saturating_add(self.link_c2h_bytes)
    }

    /// Share of the modeled time the link was busy (host to device,
    /// device to host); 0 when no time passed.
    pub fn link_use(&self) -> (f64, f64) {
        let t = self.elapsed_ns as f64;
        if t == 0.0 {
            return (0.0, 0.0);
        }
        (
            self.link_h2c_busy_ns as f64 / t,
            self.link_c2h_busy_ns as f64 / t,
        )
    }
}

/// One modeled device in the `stats` reply (`timing` -> device name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Modeled {
    pub profile: TimingProfile,
    pub counters: Counters,
}

/// An energy estimate, in millijoules per component.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergyMj {
    pub link: f64,
    pub media_read: f64,
    pub media_program: f64,
    pub dram: f64,
    pub cpu: f64,
}

impl EnergyMj {
    /// Everything but the CPU: what the data movement itself cost.
    pub fn data_movement(&self) -> f64 {
        self.link + self.media_read + self.media_program + self.dram
    }

    pub fn total(&self) -> f64 {
        self.data_movement() + self.cpu
    }
}

impl Energy {
    /// The energy of work `c` (a counter delta) with `dram_bytes` through
    /// host memory and `cpu_s` busy host CPU seconds: each byte count
    /// times its coefficient, CPU time times `host_cpu_w`.
    pub fn estimate(&self, c: &Counters, dram_bytes: u64, cpu_s: f64) -> EnergyMj {
        const PJ_TO_MJ: f64 = 1e-9;
        EnergyMj {
            link: c.link_bytes() as f64 * self.link_pj_per_byte * PJ_TO_MJ,
            media_read: c.media_read_bytes as f64 * self.media_read_pj_per_byte * PJ_TO_MJ,
            media_program: c.media_programmed_bytes as f64
                * self.media_program_pj_per_byte
                * PJ_TO_MJ,
            dram: dram_bytes as f64 * self.dram_pj_per_byte * PJ_TO_MJ,
            cpu: cpu_s * self.host_cpu_w * 1e3,
        }
    }
}

/// The built-in profiles: (name, TOML text).
pub const BUILTIN: [(&str, &str); 4] = [
    ("ufs-phone", include_str!("../profiles/ufs-phone.toml")),
    ("nvme-ssd", include_str!("../profiles/nvme-ssd.toml")),
    ("nvmeof-1gbe", include_str!("../profiles/nvmeof-1gbe.toml")),
    (
        "nvmeof-100gbe",
        include_str!("../profiles/nvmeof-100gbe.toml"),
    ),
];

/// Why a profile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Not TOML, or not the profile's shape: a missing, unknown or
    /// mistyped key (the `toml` crate's message, with line and column).
    #[error("{0}")]
    Syntax(String),
    #[error("{key}: {what}")]
    Value { key: String, what: String },
    #[error("'{0}' is neither a built-in profile ({builtin}) nor a readable file: {1}", builtin = builtin_names())]
    NotFound(String, String),
}

fn builtin_names() -> String {
    BUILTIN.map(|(n, _)| n).join(", ")
}

/// The `toml` crate's error on one line: where (line and column, from
/// its byte span) and what.
fn syntax(text: &str, e: &toml::de::Error) -> ProfileError {
    let at = e
        .span()
        .and_then(|s| text.get(..s.start))
        .map(|before| {
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: ")
        })
        .unwrap_or_default();
    ProfileError::Syntax(format!("{at}{}", e.message().trim_end()))
}

fn bad(key: &str, what: impl Into<String>) -> ProfileError {
    ProfileError::Value {
        key: key.to_owned(),
        what: what.into(),
    }
}

/// `value` of `key` is in `range`.
fn int_in(key: &str, value: u64, range: std::ops::RangeInclusive<u64>) -> Result<(), ProfileError> {
    if range.contains(&value) {
        Ok(())
    } else {
        let (lo, hi) = (range.start(), range.end());
        Err(bad(key, format!("{value} is not from {lo} to {hi}")))
    }
}

/// `value` of `key` is a finite number, zero or more.
fn non_negative(key: &str, value: f64) -> Result<(), ProfileError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(bad(key, format!("{value} is not a finite number >= 0")))
    }
}

impl TimingProfile {
    /// Parse a profile's TOML text and check its values.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let p: Self = toml::from_str(text).map_err(|e| syntax(text, &e))?;
        p.check()?;
        Ok(p)
    }

    /// The ranges a profile's values must keep: bandwidths positive,
    /// capsules 1..=[`MAX_CAPSULE_BYTES`], channels 1..=[`MAX_CHANNELS`],
    /// stripes [`MIN_STRIPE_BYTES`] or more, every latency and
    /// coefficient finite and not negative; the name non-empty and free of
    /// `,` and `#` (it goes into `--ns` specs and stats).
    fn check(&self) -> Result<(), ProfileError> {
        if self.name.is_empty() || self.name.contains([',', '#']) {
            return Err(bad("name", "expected a non-empty string without , or #"));
        }
        let (l, m, e) = (&self.link, &self.media, &self.energy);
        let positive = 1..=u64::MAX;
        int_in("link.bytes_per_s", l.bytes_per_s, positive.clone())?;
        int_in("link.command_bytes", l.command_bytes, 1..=MAX_CAPSULE_BYTES)?;
        int_in(
            "link.completion_bytes",
            l.completion_bytes,
            1..=MAX_CAPSULE_BYTES,
        )?;
        int_in(
            "media.read_bytes_per_s",
            m.read_bytes_per_s,
            positive.clone(),
        )?;
        int_in(
            "media.write_bytes_per_s",
            m.write_bytes_per_s,
            positive.clone(),
        )?;
        int_in("media.copy_bytes_per_s", m.copy_bytes_per_s, positive)?;
        int_in("media.channels", m.channels, 1..=MAX_CHANNELS)?;
        int_in(
            "media.stripe_bytes",
            m.stripe_bytes,
            MIN_STRIPE_BYTES..=u64::MAX,
        )?;
        for (key, v) in [
            ("link.command_latency_us", l.command_latency_us),
            ("media.read_latency_us", m.read_latency_us),
            ("media.program_latency_us", m.program_latency_us),
            ("energy.link_pj_per_byte", e.link_pj_per_byte),
            ("energy.media_read_pj_per_byte", e.media_read_pj_per_byte),
            (
                "energy.media_program_pj_per_byte",
                e.media_program_pj_per_byte,
            ),
            ("energy.dram_pj_per_byte", e.dram_pj_per_byte),
            ("energy.host_cpu_w", e.host_cpu_w),
        ] {
            non_negative(key, v)?;
        }
        Ok(())
    }

    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Self> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Self::parse(text).ok()
    }

    /// A built-in name, else a file path.
    pub fn load(name_or_path: &str) -> Result<Self, ProfileError> {
        if let Some(p) = Self::builtin(name_or_path) {
            return Ok(p);
        }
        let text = std::fs::read_to_string(Path::new(name_or_path))
            .map_err(|e| ProfileError::NotFound(name_or_path.to_owned(), e.to_string()))?;
        Self::parse(&text)
    }
}

impl fmt::Display for TimingProfile {
    /// One line: the numbers that decide a copy's time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        write!(
            f,
            "{}: link {:.0} MB/s each way, {} us/command; media read {:.0} MB/s, write {:.0} MB/s, copy {:.0} MB/s, {} channels",
            self.name,
            mb(self.link.bytes_per_s),
            self.link.command_latency_us,
            mb(self.media.read_bytes_per_s),
            mb(self.media.write_bytes_per_s),
            mb(self.media.copy_bytes_per_s),
            self.media.channels
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_carry_their_names() {
        for (name, text) in BUILTIN {
            let p = TimingProfile::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, name);
            assert_eq!(TimingProfile::load(name).as_ref(), Ok(&p));
        }
        let p = TimingProfile::builtin("nvmeof-1gbe").unwrap();
        assert_eq!(p.link.bytes_per_s, 117_685_000);
        assert_eq!(p.media.channels, 8);
    }

    #[test]
    fn every_key_is_required_and_typos_are_refused() {
        let text = BUILTIN[1].1;
        let syntax = |t: &str| match TimingProfile::parse(t) {
            Err(ProfileError::Syntax(m)) => m,
            other => panic!("{other:?}"),
        };
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("channels"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(syntax(&without).contains("missing field `channels`"));
        let typo = text.replace("host_cpu_w", "host_cpu_watts");
        assert!(syntax(&typo).contains("unknown field `host_cpu_watts`"));
        let extra = format!("{text}\nspare = 1\n");
        let lines = extra.lines().count();
        assert!(
            syntax(&extra).starts_with(&format!("line {lines}, column 1: unknown field `spare`")),
            "{}",
            syntax(&extra)
        );
        let twice = format!("{text}\n[link]\nbytes_per_s = 1\n");
        assert!(syntax(&twice).contains("duplicate"), "{}", syntax(&twice));
        let negative = text.replace("channels = ", "channels = -");
        let line = 1 + text
            .lines()
            .position(|l| l.starts_with("channels"))
            .unwrap();
        let m = syntax(&negative);
        assert!(
            m.starts_with(&format!(
                "line {line}, column 12: invalid value: integer `-"
            )),
            "{m}"
        );
    }

    #[test]
    fn energy_is_bytes_times_coefficients() {
        let e = TimingProfile::builtin("nvmeof-1gbe").unwrap().energy;
        let c = Counters {
            link_h2c_bytes: 1_000_000,
            link_c2h_bytes: 0,
            media_read_bytes: 2_000_000,
            media_programmed_bytes: 2_000_000,
            ..Counters::default()
        };
        let j = e.estimate(&c, 1_000_000, 0.5);
        // 1e6 bytes x 12 800 pJ = 12.8 mJ; 2e6 x 850 pJ = 1.7 mJ; ...
        assert!((j.link - 12.8).abs() < 1e-9, "{j:?}");
        assert!((j.media_read - 1.7).abs() < 1e-9, "{j:?}");
        assert!((j.media_program - 2.4).abs() < 1e-9, "{j:?}");
        assert!((j.dram - 0.12).abs() < 1e-9, "{j:?}");
        assert!((j.cpu - 3500.0).abs() < 1e-9, "{j:?}");
        assert!((j.total() - j.data_movement() - 3500.0).abs() < 1e-9);
        let later = Counters {
            elapsed_ns: 10,
            link_c2h_busy_ns: 5,
            ..c
        };
        let d = later.since(&c);
        assert_eq!((d.elapsed_ns, d.link_bytes()), (10, 0));
        assert_eq!(d.link_use(), (0.0, 0.5));
    }

    #[test]
    fn values() {
        let with = |from: &str, to: &str| {
            assert!(BUILTIN[0].1.contains(from), "{from}");
            TimingProfile::parse(&BUILTIN[0].1.replace(from, to))
        };
        assert!(matches!(
            with("channels = 4", "channels = 0"),
            Err(ProfileError::Value { key, .. }) if key == "media.channels"
        ));
        assert!(matches!(
            with("name = \"ufs-phone\"", "name = \"a,b\""),
            Err(ProfileError::Value { key, .. }) if key == "name"
        ));
        assert!(matches!(
            with("host_cpu_w = ", "host_cpu_w = -"),
            Err(ProfileError::Value { key, .. }) if key == "energy.host_cpu_w"
        ));
        let inf = with_line(BUILTIN[0].1, "host_cpu_w", "inf");
        assert!(matches!(
            TimingProfile::parse(&inf),
            Err(ProfileError::Value { key, .. }) if key == "energy.host_cpu_w"
        ));
        // An integer where a float is due is its value.
        let p = TimingProfile::parse(&with_line(BUILTIN[0].1, "host_cpu_w", "3")).unwrap();
        assert_eq!(p.energy.host_cpu_w, 3.0);
        assert!(matches!(
            TimingProfile::load("/nonexistent/profile.toml"),
            Err(ProfileError::NotFound(..))
        ));
    }

    /// `text` with the value of the line starting with `key` replaced.
    fn with_line(text: &str, key: &str, value: &str) -> String {
        text.lines()
            .map(|l| {
                if l.split('=').next().unwrap_or("").trim() == key {
                    format!("{key} = {value}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    proptest::proptest! {
        /// Any text: a profile or an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in "(?s).{0,400}") {
            let _ = TimingProfile::parse(&text);
        }

        /// Every number a file can give is read back as written, and the
        /// bounds hold.
        #[test]
        fn numbers_round_trip(
            // TOML integers are 64-bit signed (TOML 1.0, "Integer").
            bps in 1u64..=i64::MAX as u64,
            lat in 0.0f64..1e9,
            channels in 0u64..2048,
            stripe in 0u64..1_000_000,
            pj in 0.0f64..1e12,
        ) {
            let text = BUILTIN[0]
                .1
                .lines()
                .map(|l| {
                    let key = l.split('=').next().unwrap_or("").trim();
                    match key {
                        "bytes_per_s" | "read_bytes_per_s" => format!("{key} = {bps}"),
                        "command_latency_us" => format!("{key} = {lat:?}"),
                        "channels" => format!("{key} = {channels}"),
                        "stripe_bytes" => format!("{key} = {stripe}"),
                        "link_pj_per_byte" => format!("{key} = {pj:e}"),
                        _ => l.to_owned(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            match TimingProfile::parse(&text) {
                Ok(p) => {
                    proptest::prop_assert!((1..=MAX_CHANNELS).contains(&channels));
                    proptest::prop_assert!(stripe >= MIN_STRIPE_BYTES);
                    proptest::prop_assert_eq!(p.link.bytes_per_s, bps);
                    proptest::prop_assert_eq!(p.media.read_bytes_per_s, bps);
                    proptest::prop_assert_eq!(p.link.command_latency_us, lat);
                    proptest::prop_assert_eq!(p.media.channels, channels);
                    proptest::prop_assert_eq!(p.media.stripe_bytes, stripe);
                    proptest::prop_assert!((p.energy.link_pj_per_byte - pj).abs() <= pj * 1e-15);
                }
                Err(ProfileError::Value { key, .. }) => proptest::prop_assert!(
                    (key == "media.channels" && !(1..=MAX_CHANNELS).contains(&channels))
                        || (key == "media.stripe_bytes" && stripe < MIN_STRIPE_BYTES),
                    "{key}"
                ),
                Err(e) => proptest::prop_assert!(false, "{e}"),
            }
        }
    }
}
