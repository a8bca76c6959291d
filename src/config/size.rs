//! [`ByteSize`]: every size of the config file.

use super::units::Unit;
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Byte sizes; the base unit is the byte.
const BYTES: Unit = Unit {
    what: "size",
    hint: "use e.g. \"1MiB\", \"64KiB\", \"1MB\" or an integer number of bytes",
    integer_scale: 1.0,
    suffixes: &[
        ("b", 1.0),
        ("kb", 1e3),
        ("kib", 1024.0),
        ("mb", 1e6),
        ("mib", 1048576.0),
        ("gb", 1e9),
        ("gib", 1073741824.0),
    ],
    max: (1u64 << 53) as f64,
};

/// A size in bytes as the config file writes it: `"1MiB"`, `"64 KB"`, or an integer number of
/// bytes. Displays as the number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(u64);

impl ByteSize {
    /// `n` bytes.
    pub const fn new(n: u64) -> Self {
        ByteSize(n)
    }

    /// The number of bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The number of bytes as a `usize` (saturating on 32-bit targets).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl From<u64> for ByteSize {
    fn from(n: u64) -> Self {
        ByteSize(n)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ByteSize(BYTES.deserialize(d)?.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_value: &str) -> Result<u64, String> {
        #[derive(Deserialize)]
        struct T {
            s: ByteSize,
        }
        toml::from_str::<T>(&format!("s = {toml_value}"))
            .map(|t| t.s.get())
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn reads_suffixes_and_integer_bytes_and_rejects_garbage() {
        assert_eq!(parse("\"1MiB\""), Ok(1 << 20));
        assert_eq!(parse("\"64 KB\""), Ok(64_000));
        assert_eq!(parse("\"8mib\""), Ok(8 << 20));
        assert_eq!(parse("4096"), Ok(4096));
        for bad in ["\"5TB\"", "\"MiB\"", "-1", "\"1.5.2KB\""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("\"5TB\"").is_err_and(|e| e.starts_with("invalid size \"5TB\"")));
    }
}
