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
//! The reader takes the subset of TOML these files need, by hand: the
//! `toml` crate's current releases need a newer Rust than this workspace's
//! rust-version, and this crate is linked into the static guest, which
//! should stay small. The subset: `# comments`, `[table]`
//! headers, and `key = value` with a decimal integer or float (`_` digit
//! separators allowed) or a basic "string". Every key is required, none
//! may repeat, and an unknown key is an error, so a typo cannot silently
//! leave a default in place.
//!
//! Built-in profiles ([`BUILTIN`]) are embedded from
//! vhost-device/contract/profiles/; [`TimingProfile::load`] takes a
//! built-in name or a file path.

use std::{collections::BTreeMap, fmt, path::Path};

use serde::{Deserialize, Serialize};

/// The host interface, per direction (full duplex).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[error("line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("missing key {0}")]
    Missing(String),
    #[error("{key}: {what}")]
    Value { key: String, what: String },
    #[error("'{0}' is neither a built-in profile ({builtin}) nor a readable file: {1}", builtin = builtin_names())]
    NotFound(String, String),
}

fn builtin_names() -> String {
    BUILTIN.map(|(n, _)| n).join(", ")
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Int(u64),
    Float(f64),
    Str(String),
}

/// `key = value` pairs by dotted key (`link.bytes_per_s`).
struct Table(BTreeMap<String, Value>);

fn parse_value(v: &str) -> Option<Value> {
    if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return (!s.contains(['"', '\\'])).then(|| Value::Str(s.to_owned()));
    }
    let digits: String = v.chars().filter(|&c| c != '_').collect();
    if v.starts_with('_') || v.ends_with('_') || v.contains("__") || digits.is_empty() {
        return None;
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().ok().map(Value::Int);
    }
    let float_chars = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    let f: f64 = digits.parse().ok().filter(|_| float_chars)?;
    f.is_finite().then_some(Value::Float(f))
}

impl Table {
    fn parse(text: &str) -> Result<Self, ProfileError> {
        let mut out = BTreeMap::new();
        let mut table = String::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |what: &str| ProfileError::Syntax {
                line: i + 1,
                what: what.to_owned(),
            };
            // A '#' inside a string would end it early: strings here are
            // names, and names with '#' are refused below.
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let name = name.trim();
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    return Err(err("a table name is [lowercase_letters]"));
                }
                table = format!("{name}.");
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| err("expected key = value"))?;
            let k = k.trim();
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err("a key is letters, digits and _"));
            }
            let v = parse_value(v.trim())
                .ok_or_else(|| err("expected a number or a \"string\" without \" or \\"))?;
            if out.insert(format!("{table}{k}"), v).is_some() {
                return Err(err(&format!("{table}{k} given twice")));
            }
        }
        Ok(Table(out))
    }

    fn take(&mut self, key: &str) -> Result<Value, ProfileError> {
        self.0
            .remove(key)
            .ok_or_else(|| ProfileError::Missing(key.to_owned()))
    }

    fn bad(key: &str, what: &str) -> ProfileError {
        ProfileError::Value {
            key: key.to_owned(),
            what: what.to_owned(),
        }
    }

    /// A positive integer.
    fn int(&mut self, key: &str) -> Result<u64, ProfileError> {
        match self.take(key)? {
            Value::Int(n) if n > 0 => Ok(n),
            _ => Err(Self::bad(key, "expected a positive integer")),
        }
    }

    /// An integer in `range`.
    fn int_in(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ProfileError> {
        match self.take(key)? {
            Value::Int(n) if range.contains(&n) => Ok(n),
            _ => Err(Self::bad(
                key,
                &format!(
                    "expected an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// A non-negative number (integers are taken as floats too).
    fn float(&mut self, key: &str) -> Result<f64, ProfileError> {
        match self.take(key)? {
            Value::Int(n) => Ok(n as f64),
            Value::Float(f) if f >= 0.0 => Ok(f),
            _ => Err(Self::bad(key, "expected a non-negative number")),
        }
    }

    fn string(&mut self, key: &str) -> Result<String, ProfileError> {
        match self.take(key)? {
            Value::Str(s) if !s.is_empty() && !s.contains([',', '#']) => Ok(s),
            _ => Err(Self::bad(
                key,
                "expected a non-empty \"string\" without , or #",
            )),
        }
    }
}

impl TimingProfile {
    /// Parse a profile's TOML text.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let mut t = Table::parse(text)?;
        let p = TimingProfile {
            name: t.string("name")?,
            link: Link {
                bytes_per_s: t.int("link.bytes_per_s")?,
                command_latency_us: t.float("link.command_latency_us")?,
                command_bytes: t.int_in("link.command_bytes", 1..=MAX_CAPSULE_BYTES)?,
                completion_bytes: t.int_in("link.completion_bytes", 1..=MAX_CAPSULE_BYTES)?,
            },
            media: Media {
                read_bytes_per_s: t.int("media.read_bytes_per_s")?,
                write_bytes_per_s: t.int("media.write_bytes_per_s")?,
                copy_bytes_per_s: t.int("media.copy_bytes_per_s")?,
                read_latency_us: t.float("media.read_latency_us")?,
                program_latency_us: t.float("media.program_latency_us")?,
                channels: t.int_in("media.channels", 1..=MAX_CHANNELS)?,
                stripe_bytes: t.int_in("media.stripe_bytes", MIN_STRIPE_BYTES..=u64::MAX)?,
            },
            energy: Energy {
                link_pj_per_byte: t.float("energy.link_pj_per_byte")?,
                media_read_pj_per_byte: t.float("energy.media_read_pj_per_byte")?,
                media_program_pj_per_byte: t.float("energy.media_program_pj_per_byte")?,
                dram_pj_per_byte: t.float("energy.dram_pj_per_byte")?,
                host_cpu_w: t.float("energy.host_cpu_w")?,
            },
        };
        if let Some(k) = t.0.keys().next() {
            return Err(ProfileError::Value {
                key: k.clone(),
                what: "unknown key".into(),
            });
        }
        Ok(p)
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
        let without = |key: &str| {
            text.lines()
                .filter(|l| !l.starts_with(key))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            TimingProfile::parse(&without("channels")),
            Err(ProfileError::Missing("media.channels".into()))
        );
        let typo = text.replace("host_cpu_w", "host_cpu_watts");
        assert!(matches!(
            TimingProfile::parse(&typo),
            Err(ProfileError::Missing(k)) if k == "energy.host_cpu_w"
        ));
        let extra = format!("{text}\nspare = 1\n");
        assert_eq!(
            TimingProfile::parse(&extra),
            Err(ProfileError::Value {
                key: "energy.spare".into(),
                what: "unknown key".into()
            })
        );
        let twice = format!("{text}\n[link]\nbytes_per_s = 1\n");
        assert!(matches!(
            TimingProfile::parse(&twice),
            Err(ProfileError::Syntax { what, .. }) if what.contains("given twice")
        ));
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
        assert_eq!(parse_value("1_000"), Some(Value::Int(1000)));
        assert_eq!(parse_value("2.5"), Some(Value::Float(2.5)));
        assert_eq!(parse_value("1e3"), Some(Value::Float(1000.0)));
        assert_eq!(parse_value("\"a\""), Some(Value::Str("a".into())));
        for bad in [
            "", "_1", "1_", "1__0", "x", "\"a", "1.2.3", "inf", "nan", "0x10",
        ] {
            assert_eq!(parse_value(bad), None, "{bad:?}");
        }
        let zero = BUILTIN[0].1.replace("channels = 4", "channels = 0");
        assert!(matches!(
            TimingProfile::parse(&zero),
            Err(ProfileError::Value { key, .. }) if key == "media.channels"
        ));
        assert!(matches!(
            TimingProfile::load("/nonexistent/profile.toml"),
            Err(ProfileError::NotFound(..))
        ));
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
            bps in 1u64..=u64::MAX,
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
