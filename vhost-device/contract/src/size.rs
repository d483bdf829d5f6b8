//! Byte counts as the `--lun` / `--ns` specs write them: decimal digits
//! with an optional binary suffix K, M, G or T (either case, powers of
//! 1024).

/// Why a size was refused; holds the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("{0}: not a size in bytes (a number with an optional K, M, G or T suffix)")]
    NotASize(String),
    #[error("{0}: too large")]
    Overflow(String),
}

/// Parses a size: `4096`, `4K`, `256M`, `1g`, `2T`. No sign, no spaces,
/// no fractions.
pub fn parse_size(value: &str) -> Result<u64, SizeError> {
    let (digits, shift) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(SizeError::NotASize(value.to_owned())),
            };
            (&value[..i], shift)
        }
        _ => (value, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SizeError::NotASize(value.to_owned()));
    }
    let overflow = || SizeError::Overflow(value.to_owned());
    let n: u64 = digits.parse().map_err(|_| overflow())?;
    n.checked_mul(1u64 << shift).ok_or_else(overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        for bad in ["", "M", "1.5G", "-1", "1KB", "1X", " 1G", "0x10"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::NotASize(_))),
                "{bad:?}"
            );
        }
        for big in ["16777216T", "99999999999999999999"] {
            assert_eq!(parse_size(big), Err(SizeError::Overflow(big.into())));
        }
    }

    proptest::proptest! {
        #[test]
        fn suffixes_multiply(n in 0u64..(1 << 20), s in 0usize..5) {
            let suffix = ["", "K", "M", "G", "T"][s];
            proptest::prop_assert_eq!(
                parse_size(&format!("{n}{suffix}")),
                Ok(n << (10 * s))
            );
        }
    }
}
