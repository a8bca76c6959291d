//! [`HumanDuration`]: every duration of the config file.

use super::units::Unit;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

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

/// A duration as the config file writes it: `"25s"`, `"300ms"`, `"1.5s"`, `"2m"`, or an integer
/// number of milliseconds. Displays the same way (`25s`, `300ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    /// Whole milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        HumanDuration(Duration::from_millis(millis))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}us", d.as_micros())
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let nanos = DURATION.deserialize(d)?;
        Ok(HumanDuration(Duration::from_nanos(nanos.round() as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_value: &str) -> Result<Duration, String> {
        #[derive(Deserialize)]
        struct T {
            d: HumanDuration,
        }
        toml::from_str::<T>(&format!("d = {toml_value}"))
            .map(|t| t.d.get())
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn reads_suffixes_and_integer_milliseconds_and_rejects_garbage() {
        assert_eq!(parse("\"25s\""), Ok(Duration::from_secs(25)));
        assert_eq!(parse("\"300ms\""), Ok(Duration::from_millis(300)));
        assert_eq!(parse("\"1.5s\""), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("\"2m\""), Ok(Duration::from_secs(120)));
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
        for bad in ["\"25\"", "\"s\"", "\"-1s\"", "\"1e999s\"", "-5", "1.5"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("\"25x\""),
            Err("invalid duration \"25x\": use e.g. \"25s\", \"300ms\", \"2m\" or an integer number of milliseconds".into())
        );
    }

    #[test]
    fn displays_as_the_file_writes_it() {
        assert_eq!(HumanDuration::from_secs(25).to_string(), "25s");
        assert_eq!(HumanDuration::from_millis(300).to_string(), "300ms");
        assert_eq!(
            HumanDuration::from(Duration::from_micros(1500)).to_string(),
            "1500us"
        );
    }
}
