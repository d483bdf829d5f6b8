//! The statistics of repeated fio cells: median and spread of a cell's
//! samples, and the order in which the devices take turns.
//!
//! A cell measured in several rounds is printed as two `# bench` fields
//! (the one place that writes them is [`Spread::fields`]):
//! `KEY=<median> KEY_range=<min>..<max>`. `scripts/bench.sh` reads the
//! median as the cell's number and the range for its spread and its
//! verdicts.

/// The median and the extremes of a cell's samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The suffix of a cell's range field.
pub const RANGE_SUFFIX: &str = "_range";

impl Spread {
    /// Of `xs` (the mean of the two middle samples for an even count);
    /// `None` for no samples.
    pub fn of(xs: &[f64]) -> Option<Spread> {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// `(max - min) / median`, 0 for a median of 0.
    pub fn relative(&self) -> f64 {
        if self.median > 0.0 && self.median.is_finite() {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }

    /// The two `# bench` fields of the cell `key`, numbers with
    /// `decimals` decimals.
    pub fn fields(&self, key: &str, decimals: usize) -> [(String, String); 2] {
        let f = |x: f64| num(x, decimals);
        [
            (key.to_string(), f(self.median)),
            (
                format!("{key}{RANGE_SUFFIX}"),
                format!("{}..{}", f(self.min), f(self.max)),
            ),
        ]
    }
}

/// `x` with `decimals` decimals; "inf" for an infinite one.
pub fn num(x: f64, decimals: usize) -> String {
    if x.is_infinite() {
        "inf".into()
    } else {
        format!("{x:.decimals$}")
    }
}

/// `a / b`: infinite if `b` is 0 and `a` is not, 0 if both are.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// The order of `devices` devices within each job of round `round`
/// (0-based): rotated by one per round, so that no device always runs
/// first after a job change (right after another device's writes, whose
/// write-back may still be draining) or always last.
pub fn order(devices: usize, round: usize) -> Vec<usize> {
    (0..devices).map(|i| (i + round) % devices).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_unsorted() {
        let s = Spread::of(&[4400.0, 2046.0, 3100.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 3100.0,
                min: 2046.0,
                max: 4400.0
            }
        );
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0, 10.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(&[7.0]).unwrap().min, 7.0);
        assert_eq!(Spread::of(&[]), None);
        // One outlier does not move the median of three.
        assert_eq!(Spread::of(&[1.0, 1.1, 100.0]).unwrap().median, 1.1);
    }

    #[test]
    fn relative_spread_and_fields() {
        let s = Spread::of(&[0.9, 1.0, 1.2]).unwrap();
        assert!((s.relative() - 0.3).abs() < 1e-12);
        assert_eq!(Spread::of(&[0.0, 0.0]).unwrap().relative(), 0.0);
        assert_eq!(
            s.fields("randread_qd1", 2),
            [
                ("randread_qd1".to_string(), "1.00".to_string()),
                ("randread_qd1_range".to_string(), "0.90..1.20".to_string())
            ]
        );
        let inf = Spread::of(&[1.0, f64::INFINITY]).unwrap();
        assert_eq!(inf.fields("x", 0)[1].1, "1..inf");
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(3.0, 2.0), 1.5);
        assert_eq!(ratio(3.0, 0.0), f64::INFINITY);
        assert_eq!(ratio(0.0, 0.0), 0.0);
    }

    #[test]
    fn rounds_rotate_the_device_order() {
        assert_eq!(order(4, 0), [0, 1, 2, 3]);
        assert_eq!(order(4, 1), [1, 2, 3, 0]);
        assert_eq!(order(4, 5), [1, 2, 3, 0]);
        assert_eq!(order(1, 2), [0]);
        assert!(order(0, 1).is_empty());
        // Over as many rounds as devices, each device leads once.
        let firsts: Vec<usize> = (0..3).map(|r| order(3, r)[0]).collect();
        assert_eq!(firsts, [0, 1, 2]);
    }
}
