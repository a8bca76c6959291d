//! Humane units in the config file: durations ("25s", "300ms" or integer milliseconds) and byte
//! sizes ("1MiB", "64KB" or integer bytes).

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// One kind of quantity: how integers are read and which suffixes scale a number.
struct Unit {
    what: &'static str,
    hint: &'static str,
    /// Multiplier applied to a bare integer (milliseconds → the base unit, etc.).
    integer_scale: f64,
    /// Suffixes, lowercase, with their multiplier to the base unit. The empty suffix is not allowed.
    suffixes: &'static [(&'static str, f64)],
    max: f64,
}

/// Durations; the base unit is the nanosecond.
const DURATION: Unit = Unit {
    what: "duration",
    hint: "use e.g. \"25s\", \"300ms\", \"2m\" or an integer number of milliseconds",
    integer_scale: 1e6,
    suffixes: &[
        ("ns", 1.0),
        ("us", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ],
    max: 86400e9 * 365.0,
};

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

impl Unit {
    /// Parses `"<number><suffix>"` into the base unit, or `None` when malformed or out of range.
    fn parse(&self, text: &str) -> Option<f64> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let number: f64 = number.parse().ok()?;
        let suffix = suffix.trim().to_ascii_lowercase();
        let scale = self.suffixes.iter().find(|(s, _)| *s == suffix)?.1;
        let value = number * scale;
        (value.is_finite() && value <= self.max).then_some(value)
    }

    fn integer(&self, v: i128) -> Option<f64> {
        let value = v as f64 * self.integer_scale;
        (v >= 0 && value <= self.max).then_some(value)
    }
}

struct UnitVisitor(&'static Unit);

impl<'de> Visitor<'de> for UnitVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} ({})", self.0.what, self.0.hint)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        self.0
            .parse(v)
            .ok_or_else(|| E::custom(format!("invalid {} \"{v}\": {}", self.0.what, self.0.hint)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        self.visit_i128(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        self.visit_i128(v.into())
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<f64, E> {
        self.0
            .integer(v)
            .ok_or_else(|| E::custom(format!("invalid {} {v}: {}", self.0.what, self.0.hint)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Err(E::custom(format!(
            "invalid {} {v}: {}",
            self.0.what, self.0.hint
        )))
    }
}

/// serde `deserialize_with` for [`Duration`] fields.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let nanos = d.deserialize_any(UnitVisitor(&DURATION))?;
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// serde `deserialize_with` for byte sizes.
pub(crate) fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(d.deserialize_any(UnitVisitor(&BYTES))?.round() as u64)
}

/// Formats a duration the way the config file writes it (for summaries and messages).
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes_and_rejects_garbage() {
        assert_eq!(DURATION.parse("25s"), Some(25e9));
        assert_eq!(DURATION.parse("300ms"), Some(300e6));
        assert_eq!(DURATION.parse("1.5s"), Some(1.5e9));
        assert_eq!(DURATION.parse("2m"), Some(120e9));
        assert_eq!(DURATION.parse("25"), None);
        assert_eq!(DURATION.parse("s"), None);
        assert_eq!(DURATION.parse("-1s"), None);
        assert_eq!(DURATION.parse("1e999s"), None);
        assert_eq!(BYTES.parse("5TB"), None);
        assert_eq!(BYTES.parse("1MiB"), Some(1048576.0));
        assert_eq!(BYTES.parse("64 KB"), Some(64e3));
        assert_eq!(DURATION.integer(-5), None);
        assert_eq!(DURATION.integer(250), Some(250e6));
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_duration(Duration::from_secs(25)), "25s");
        assert_eq!(fmt_duration(Duration::from_millis(300)), "300ms");
    }
}
