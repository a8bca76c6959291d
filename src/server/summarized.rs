//! A failure that can repeat many times a second (accept errors, refused connections) is logged
//! once per interval, with how many times it happened since the last line.

use std::time::{Duration, Instant};

/// How often a repeating failure is logged at most.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// The log state of one kind of repeating failure.
#[derive(Debug, Default)]
pub(crate) struct Summarized {
    last: Option<Instant>,
    unreported: u64,
}

impl Summarized {
    /// One more occurrence at `now`: `Some(n)` when a line is due, `n` being the occurrences
    /// since the last line (not counting this one); `None` when it is counted for the next.
    pub(crate) fn occurred(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.unreported += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

/// How a line ends for `more` occurrences since the last one.
pub(crate) fn since_last(more: u64) -> String {
    match more {
        0 => "repeats are logged once a minute".to_owned(),
        n => format!("{n} more since the last report"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_in_between() {
        let mut s = Summarized::default();
        let t0 = Instant::now();
        assert_eq!(s.occurred(t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(s.occurred(t0 + Duration::from_millis(50 * i)), None);
        }
        assert_eq!(s.occurred(t0 + LOG_EVERY), Some(1000));
        assert_eq!(s.occurred(t0 + LOG_EVERY), None);
        assert_eq!(s.occurred(t0 + LOG_EVERY * 3), Some(1));
        assert_eq!(since_last(1), "1 more since the last report");
    }
}
