//! How the bench suite repeats its fio cells (`zonecopy.fio=`, the
//! runner's `--fio-rounds` / `--fio-runtime`): every (device, fio job) cell
//! is measured `rounds` times, `runtime_s` seconds each, the devices
//! interleaved job by job (guest-tools `bench::fioset`).

use std::{fmt, str::FromStr};

/// `rounds=<n>,runtime=<seconds>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FioPlan {
    /// Measurements of each cell (1..=[`MAX_ROUNDS`]).
    pub rounds: u32,
    /// Seconds of each fio job run (1..=[`MAX_RUNTIME_S`]).
    pub runtime_s: u32,
}

/// Default rounds: the fewest that have a median that one outlier cannot
/// move.
pub const ROUNDS: u32 = 3;
/// Default seconds per job run. With 4 devices x 6 jobs x 3 rounds (72
/// runs, each with ~0.5 s of fio's own set-up between stonewalled jobs
/// under TCG), 2 s keeps the fio part near three minutes.
pub const RUNTIME_S: u32 = 2;
/// fio jobs per device (guest-tools `bench::fio::JOBS`: random read and
/// write at QD1 and QD16, sequential read and write).
pub const JOBS_PER_DEVICE: u32 = 6;
/// Bounds, so that a typo cannot make a bench run last for hours.
pub const MAX_ROUNDS: u32 = 15;
pub const MAX_RUNTIME_S: u32 = 60;

impl Default for FioPlan {
    fn default() -> Self {
        FioPlan {
            rounds: ROUNDS,
            runtime_s: RUNTIME_S,
        }
    }
}

impl FioPlan {
    /// The plan of the runner's `--fio-rounds` / `--fio-runtime`, the
    /// defaults where one is not given (bounds unchecked: parse the
    /// rendered plan for that).
    pub fn from_options(rounds: Option<u32>, runtime_s: Option<u32>) -> Self {
        let d = FioPlan::default();
        FioPlan {
            rounds: rounds.unwrap_or(d.rounds),
            runtime_s: runtime_s.unwrap_or(d.runtime_s),
        }
    }

    /// Seconds the fio part takes at most on `devices` devices: every
    /// run plus a second of fio's own set-up per job under TCG (measured
    /// ~0.45 s).
    pub fn max_seconds(&self, devices: u32) -> u64 {
        u64::from(self.rounds)
            * u64::from(devices)
            * u64::from(JOBS_PER_DEVICE)
            * (u64::from(self.runtime_s) + 1)
    }
}

impl fmt::Display for FioPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rounds={},runtime={}", self.rounds, self.runtime_s)
    }
}

impl FromStr for FioPlan {
    type Err = String;

    /// Either key may be left out (its default is taken).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut p = FioPlan::default();
        for kv in s.split(',').filter(|x| !x.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{kv:?}: expected key=value"))?;
            let n = |max: u32| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| format!("{k}={v}: not in 1..={max}"))
            };
            match k {
                "rounds" => p.rounds = n(MAX_ROUNDS)?,
                "runtime" => p.runtime_s = n(MAX_RUNTIME_S)?,
                _ => return Err(format!("unknown key {k:?} (rounds, runtime)")),
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_renders_and_defaults() {
        let p: FioPlan = "rounds=5,runtime=3".parse().unwrap();
        assert_eq!(
            p,
            FioPlan {
                rounds: 5,
                runtime_s: 3
            }
        );
        assert_eq!(p.to_string(), "rounds=5,runtime=3");
        assert_eq!("rounds=1".parse::<FioPlan>().unwrap().runtime_s, RUNTIME_S);
        assert_eq!("".parse::<FioPlan>().unwrap(), FioPlan::default());
    }

    #[test]
    fn refuses_out_of_range_and_unknown() {
        for (s, needle) in [
            ("rounds=0", "not in 1..=15"),
            ("rounds=16", "not in 1..=15"),
            ("runtime=61", "not in 1..=60"),
            ("runtime=x", "not in"),
            ("round=3", "unknown key"),
            ("rounds", "key=value"),
        ] {
            let e = s.parse::<FioPlan>().unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
