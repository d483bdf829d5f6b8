//! Small pure helpers: hex, shell quoting, a stable hash for cache keys.

use std::fmt::Write as _;

/// Lower-case hex of `bytes` (the `zonecopy.run=` encoding).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Quotes one word for a POSIX shell (like Python's `shlex.quote`).
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Joins words into one shell command line (like `shlex.join`).
pub fn shell_join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// FNV-1a 64: a stable (across runs and Rust versions) hash for cache keys.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn add(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Field separator, so ("ab","c") != ("a","bc").
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_encoding() {
        assert_eq!(hex(b""), "");
        assert_eq!(hex(b"ls -l /"), "6c73202d6c202f");
        assert_eq!(hex(&[0, 0xff, 0x10]), "00ff10");
    }

    #[test]
    fn shell_joining() {
        assert_eq!(shell_join(&["ls", "-l", "/dev"]), "ls -l /dev");
        assert_eq!(shell_join(&["echo", "a b", ""]), "echo 'a b' ''");
        assert_eq!(shell_join(&["echo", "it's"]), "echo 'it'\\''s'");
        assert_eq!(shell_join(&["sh", "-c", "x | y; $Z"]), "sh -c 'x | y; $Z'");
        assert_eq!(shell_join::<&str>(&[]), "");
    }

    #[test]
    fn fnv_is_stable_and_field_separated() {
        assert_eq!(Fnv::default().add(b"").hex(), Fnv::default().add(b"").hex());
        assert_ne!(
            Fnv::default().add(b"ab").add(b"c").hex(),
            Fnv::default().add(b"a").add(b"bc").hex()
        );
        assert_eq!(Fnv::default().hex(), "cbf29ce484222325");
    }
}
