//! What [`HumanDuration`](super::HumanDuration) and [`ByteSize`](super::ByteSize) share: a number
//! with a unit suffix (`"25s"`, `"1MiB"`), or a bare integer in a base unit.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// One kind of quantity: how integers are read and which suffixes scale a number.
pub(super) struct Unit {
    pub(super) what: &'static str,
    pub(super) hint: &'static str,
    /// Multiplier applied to a bare integer (milliseconds → the base unit, etc.).
    pub(super) integer_scale: f64,
    /// Suffixes, lowercase, with their multiplier to the base unit. The empty suffix is not allowed.
    pub(super) suffixes: &'static [(&'static str, f64)],
    pub(super) max: f64,
}

impl Unit {
    /// Parses `"<number><suffix>"` into the base unit, or `None` when malformed or out of range.
    pub(super) fn parse(&self, text: &str) -> Option<f64> {
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

    pub(super) fn integer(&self, v: i128) -> Option<f64> {
        let value = v as f64 * self.integer_scale;
        (v >= 0 && value <= self.max).then_some(value)
    }

    /// Deserializes a string with a suffix or an integer, in the base unit.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        &'static self,
        d: D,
    ) -> Result<f64, D::Error> {
        d.deserialize_any(UnitVisitor(self))
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
            .ok_or_else(|| E::custom(format!("invalid {} {v:?}: {}", self.0.what, self.0.hint)))
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
