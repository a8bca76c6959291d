//! [`Repeats`]: a failure that keeps happening (a relay refusing every attempt, a publisher over
//! its limit at every keyframe) becomes one line when it starts, a summary with the count now and
//! then — after 1 min, then at intervals that double up to 1 h — and one line when it stops,
//! instead of a line per occurrence for as long as it lasts. [`Repeats::every`] keeps one interval
//! instead (the accept loop: a failure many times a second, logged once a minute).
//!
//! Sans-IO: the caller passes the time and writes the lines it is told to (at the level it
//! chooses: the first and the summaries are warnings, the end is news).

use std::time::{Duration, Instant};

/// When the first summary is due, after the first failure.
const FIRST_SUMMARY: Duration = Duration::from_secs(60);
/// The longest time between two summaries.
const MAX_SUMMARY: Duration = Duration::from_secs(3600);

/// One kind of failure, counted while it repeats.
#[derive(Debug)]
pub(crate) struct Repeats {
    run: Option<Run>,
    /// The first interval between summaries, and the longest they double to.
    first: Duration,
    max: Duration,
}

impl Default for Repeats {
    /// Summaries after 1 min, then at intervals that double up to 1 h.
    fn default() -> Self {
        Repeats {
            run: None,
            first: FIRST_SUMMARY,
            max: MAX_SUMMARY,
        }
    }
}

/// An unbroken run of failures.
#[derive(Debug, Clone, Copy)]
struct Run {
    since: Instant,
    total: u64,
    unreported: u64,
    next_summary: Instant,
    interval: Duration,
}

/// What to write about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The first of a run: write it in full.
    First,
    /// A summary is due: `count` failures since the last line, `total` since the run began
    /// `since` ago.
    Summary {
        /// Failures since the last line written.
        count: u64,
        /// Failures in the whole run.
        total: u64,
        /// How long the run has lasted.
        since: Duration,
    },
}

/// A run of failures that just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// Failures in the run.
    pub(crate) failures: u64,
    /// From its first failure to its end.
    pub(crate) lasted: Duration,
}

impl Repeats {
    /// Summaries every `interval`, for as long as the failure lasts.
    pub(crate) fn every(interval: Duration) -> Repeats {
        Repeats {
            run: None,
            first: interval,
            max: interval,
        }
    }

    /// Counts a failure at `now`; says what to write, if anything (`None`: count it silently).
    pub(crate) fn failed(&mut self, now: Instant) -> Option<Report> {
        let Some(run) = &mut self.run else {
            self.run = Some(Run {
                since: now,
                total: 1,
                unreported: 0,
                next_summary: now + self.first,
                interval: self.first,
            });
            return Some(Report::First);
        };
        run.total += 1;
        run.unreported += 1;
        if now < run.next_summary {
            return None;
        }
        run.interval = (run.interval * 2).min(self.max);
        run.next_summary = now + run.interval;
        let count = std::mem::take(&mut run.unreported);
        Some(Report::Summary {
            count,
            total: run.total,
            since: now.saturating_duration_since(run.since),
        })
    }

    /// The failure stopped at `now`: the run that ended, if there was one.
    pub(crate) fn recovered(&mut self, now: Instant) -> Option<Ended> {
        let run = self.run.take()?;
        Some(Ended {
            failures: run.total,
            lasted: now.saturating_duration_since(run.since),
        })
    }
}

/// `d` for a log line: `850 ms`, `1.5 s`, `42 s`, `17 min`, `3.5 h`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal every 5 s for 3 h: how many lines, and what they say.
    #[test]
    fn a_failure_every_5_s_for_3_hours_is_a_handful_of_lines() {
        let t0 = Instant::now();
        let mut r = Repeats::default();
        let mut lines = Vec::new();
        for i in 0..(3 * 3600 / 5) {
            let now = t0 + Duration::from_secs(i * 5);
            if let Some(report) = r.failed(now) {
                lines.push((i * 5, report));
            }
        }
        assert_eq!(lines[0], (0, Report::First));
        // Summaries at 60 s, then 2, 4, 8, 16, 32, 60, 60 min apart.
        let at: Vec<u64> = lines[1..].iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [60, 180, 420, 900, 1860, 3780, 7380]);
        assert_eq!(
            lines[2].1,
            Report::Summary {
                count: 24,
                total: 37,
                since: Duration::from_secs(180)
            }
        );
        let counted: u64 = lines[1..]
            .iter()
            .map(|(_, r)| match r {
                Report::Summary { count, .. } => *count,
                Report::First => 0,
            })
            .sum();
        // Every failure after the first is in exactly one summary, or still unreported.
        assert!(counted < 3 * 3600 / 5);
        let end = r.recovered(t0 + Duration::from_secs(3 * 3600)).unwrap();
        assert_eq!(end.failures, 3 * 3600 / 5);
        assert_eq!(end.lasted, Duration::from_secs(3 * 3600));
        // Recovered: nothing more to say, and the next failure starts a new run.
        assert_eq!(r.recovered(t0), None);
        assert_eq!(
            r.failed(t0 + Duration::from_secs(4 * 3600)),
            Some(Report::First)
        );
    }

    /// A failure every 50 ms: one line a minute with the count in between.
    #[test]
    fn every_keeps_one_interval() {
        let minute = Duration::from_secs(60);
        let mut r = Repeats::every(minute);
        let t0 = Instant::now();
        assert_eq!(r.failed(t0), Some(Report::First));
        for i in 1..=1000 {
            assert_eq!(r.failed(t0 + Duration::from_millis(50 * i)), None);
        }
        let summary = |count, total, since| Report::Summary {
            count,
            total,
            since,
        };
        assert_eq!(r.failed(t0 + minute), Some(summary(1001, 1002, minute)));
        assert_eq!(r.failed(t0 + minute), None);
        assert_eq!(
            r.failed(t0 + minute * 3),
            Some(summary(2, 1004, minute * 3))
        );
        assert_eq!(r.failed(t0 + minute * 3 + Duration::from_secs(59)), None);
        assert!(r.failed(t0 + minute * 4).is_some(), "no doubling");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::from_secs(42)), "42 s");
        assert_eq!(human(Duration::from_secs(17 * 60)), "17 min");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 1800)), "3.5 h");
    }
}
