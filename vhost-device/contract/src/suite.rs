//! The suites the guest binary runs (`zonecopy.suite=NAME`).

use std::{fmt, str::FromStr};

/// A suite of `zonecopy-guest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    Smoke,
    Xcopy,
    Nvme,
    Kcopy,
    Bench,
    Kill,
    Zbc,
    DiffNvme,
    Diff,
}

/// A name that is no suite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown suite {0}")]
pub struct UnknownSuite(pub String);

impl Suite {
    /// Every suite, in the order `--help` lists them.
    pub const ALL: [Suite; 9] = [
        Suite::Smoke,
        Suite::Xcopy,
        Suite::Nvme,
        Suite::Kcopy,
        Suite::Bench,
        Suite::Kill,
        Suite::Zbc,
        Suite::DiffNvme,
        Suite::Diff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Smoke => "smoke",
            Suite::Xcopy => "xcopy",
            Suite::Nvme => "nvme",
            Suite::Kcopy => "kcopy",
            Suite::Bench => "bench",
            Suite::Kill => "kill",
            Suite::Zbc => "zbc",
            Suite::DiffNvme => "diff-nvme",
            Suite::Diff => "diff",
        }
    }

    /// The names, comma-separated.
    pub fn names() -> String {
        Self::ALL.map(Suite::as_str).join(", ")
    }

    /// The suite a name (or none) names, if any.
    pub fn named(name: Option<&str>) -> Option<Suite> {
        name.and_then(|n| n.parse().ok())
    }
}

impl FromStr for Suite {
    type Err = UnknownSuite;
    fn from_str(s: &str) -> Result<Self, UnknownSuite> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownSuite(s.to_owned()))
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(s.as_str().parse::<Suite>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!("bogus".parse::<Suite>(), Err(UnknownSuite("bogus".into())));
        assert_eq!(
            Suite::names(),
            "smoke, xcopy, nvme, kcopy, bench, kill, zbc, diff-nvme, diff"
        );
        assert_eq!(Suite::named(Some("diff-nvme")), Some(Suite::DiffNvme));
        assert_eq!(Suite::named(None), None);
    }
}
