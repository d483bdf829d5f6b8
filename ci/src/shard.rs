//! The expanded matrix (kernels x suites x personalities x transports) and
//! deterministic sharding: `matrix --shard K/N` runs every N-th cell of the
//! expansion starting at the K-th, so N machines or CI jobs given the same
//! axes cover the whole matrix once, with no overlap, and the slices differ
//! in size by one cell at most. `matrix --list` prints the expansion.

use std::fmt;

/// NVMe transports the runner can attach namespaces over. The backend
/// serves NVMe/TCP only in this tree; a new transport is one more name
/// here plus its hook where the rig is set up.
pub const TRANSPORTS: &[&str] = &["tcp"];

/// One cell of the matrix: one suite run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub kernel: String,
    pub suite: String,
    /// `None`: the backend's default controller personality.
    pub personality: Option<String>,
    pub transport: String,
}

impl Cell {
    /// Directory name under the matrix output: `<suite>-<kernel>`, plus
    /// `-<personality>` and `-<transport>` when they are not the defaults
    /// (so the one-axis matrix keeps its old layout).
    pub fn dir_name(&self, kernel_label: &str) -> String {
        let mut s = format!("{}-{kernel_label}", self.suite);
        if let Some(p) = &self.personality {
            s.push('-');
            s.push_str(p);
        }
        if self.transport != TRANSPORTS[0] {
            s.push('-');
            s.push_str(&self.transport);
        }
        s
    }
}

impl fmt::Display for Cell {
    /// `smoke on 6.12`, `kcopy on 6.12 (personality no-copy)`: axes at
    /// their defaults are not named.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.suite, self.kernel)?;
        let mut extra = Vec::new();
        if let Some(p) = &self.personality {
            extra.push(format!("personality {p}"));
        }
        if self.transport != TRANSPORTS[0] {
            extra.push(format!("transport {}", self.transport));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}

/// `K/N`: the K-th (1-based) of N slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected K/N, e.g. 2/3"))?;
        let k: usize = k.trim().parse().map_err(|e| format!("`{s}`: K: {e}"))?;
        let n: usize = n.trim().parse().map_err(|e| format!("`{s}`: N: {e}"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("`{s}`: need 1 <= K <= N"));
        }
        Ok(Shard { index: k, count: n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Expands the axes in a fixed order: kernel outermost, then suite, then
/// personality, then transport. An empty personality list means the
/// backend's default only; an empty transport list [`TRANSPORTS`]' first.
pub fn expand(
    kernels: &[String],
    suites: &[String],
    personalities: &[String],
    transports: &[String],
) -> Result<Vec<Cell>, String> {
    for t in transports {
        if !TRANSPORTS.contains(&t.as_str()) {
            return Err(format!(
                "transport `{t}` is not known here (known: {})",
                TRANSPORTS.join(", ")
            ));
        }
    }
    let personalities: Vec<Option<String>> = if personalities.is_empty() {
        vec![None]
    } else {
        personalities.iter().cloned().map(Some).collect()
    };
    let transports: Vec<String> = if transports.is_empty() {
        vec![TRANSPORTS[0].to_owned()]
    } else {
        transports.to_vec()
    };
    let mut cells = Vec::new();
    for k in kernels {
        for s in suites {
            for p in &personalities {
                for t in &transports {
                    let cell = Cell {
                        kernel: k.clone(),
                        suite: s.clone(),
                        personality: p.clone(),
                        transport: t.clone(),
                    };
                    if !cells.contains(&cell) {
                        cells.push(cell);
                    }
                }
            }
        }
    }
    Ok(cells)
}

/// The cells of `shard`: positions `index-1, index-1+count, ...` of the
/// expansion (round robin, so each slice mixes kernels and suites and the
/// slices' sizes differ by one at most). `None` = everything.
pub fn slice<T: Clone>(all: &[T], shard: Option<Shard>) -> Vec<T> {
    match shard {
        None => all.to_vec(),
        Some(s) => all
            .iter()
            .skip(s.index - 1)
            .step_by(s.count)
            .cloned()
            .collect(),
    }
}

/// `--list`: one line per cell, its 1-based position and its shard.
pub fn listing(all: &[Cell], shards: Option<usize>) -> String {
    let mut out = String::new();
    for (i, c) in all.iter().enumerate() {
        match shards {
            Some(n) => out.push_str(&format!("{:>3}  shard {}/{n}  {c}\n", i + 1, i % n + 1)),
            None => out.push_str(&format!("{:>3}  {c}\n", i + 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parses_shards() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/-1"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn expansion_order_and_names() {
        let cells = expand(
            &v(&["6.1", "6.12"]),
            &v(&["smoke", "nvme"]),
            &v(&["nvme-2.1", "no-copy"]),
            &[],
        )
        .unwrap();
        assert_eq!(cells.len(), 8);
        assert_eq!(cells[0].to_string(), "smoke on 6.1 (personality nvme-2.1)");
        assert_eq!(cells[1].personality.as_deref(), Some("no-copy"));
        assert_eq!(cells[2].suite, "nvme");
        assert_eq!(cells[4].kernel, "6.12");
        assert_eq!(cells[1].dir_name("6.1"), "smoke-6.1-no-copy");
        let plain = expand(&v(&["6.1"]), &v(&["smoke"]), &[], &[]).unwrap();
        assert_eq!(plain[0].dir_name("6.1"), "smoke-6.1");
        assert!(expand(&v(&["6.1"]), &v(&["smoke"]), &[], &v(&["rdma"])).is_err());
        // Repeated axis values do not run a cell twice.
        assert_eq!(
            expand(&v(&["6.1", "6.1"]), &v(&["smoke"]), &[], &[])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn listing_names_each_cells_shard() {
        let cells = expand(&v(&["6.1", "6.12", "7.2"]), &v(&["smoke"]), &[], &[]).unwrap();
        let l = listing(&cells, Some(2));
        assert_eq!(
            l,
            "  1  shard 1/2  smoke on 6.1\n\
             \x20 2  shard 2/2  smoke on 6.12\n\
             \x20 3  shard 1/2  smoke on 7.2\n"
        );
        for (i, line) in l.lines().enumerate() {
            let shard: Shard = line.split_whitespace().nth(2).unwrap().parse().unwrap();
            assert!(slice(&cells, Some(shard)).contains(&cells[i]));
        }
    }

    proptest! {
        /// Disjoint, covering, order-keeping, balanced and stable.
        #[test]
        fn shards_partition_the_matrix(len in 0usize..60, n in 1usize..9) {
            let all: Vec<usize> = (0..len).collect();
            let mut seen = vec![0u32; len];
            let mut sizes = Vec::new();
            for k in 1..=n {
                let s = Shard { index: k, count: n };
                let part = slice(&all, Some(s));
                prop_assert_eq!(&part, &slice(&all, Some(s)), "stable");
                prop_assert!(part.windows(2).all(|w| w[0] < w[1]), "keeps order");
                for &i in &part {
                    seen[i] += 1;
                }
                sizes.push(part.len());
            }
            prop_assert!(seen.iter().all(|&c| c == 1), "every cell exactly once: {:?}", seen);
            let (lo, hi) = (sizes.iter().min().copied(), sizes.iter().max().copied());
            prop_assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1, "balanced: {:?}", sizes);
            prop_assert_eq!(slice(&all, None), all);
        }
    }
}
