//! Shared helpers for the media integration tests: run a capture and record what it emits.
#![allow(dead_code)] // each test crate uses a different subset

use sioedge::contract::{MediaEvent, MediaFrame, TrackInfo};
use sioedge::media::{Capture, TrackStats};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One event and when the test received it.
pub struct Seen {
    pub at: Instant,
    pub event: MediaEvent,
}

/// A running capture plus everything it has emitted so far.
pub struct Run {
    capture: Option<Capture>,
    rx: mpsc::Receiver<MediaEvent>,
    rt: tokio::runtime::Runtime,
    pub seen: Vec<Seen>,
    pub started: Instant,
}

impl Run {
    /// A capture with a channel large enough that nothing is dropped in these tests.
    pub fn new() -> Run {
        Run::with_capacity(4096)
    }

    /// A capture whose event channel holds `capacity` events.
    pub fn with_capacity(capacity: usize) -> Run {
        let (tx, rx) = mpsc::channel(capacity);
        Run {
            capture: Some(Capture::new(tx).expect("gstreamer init")),
            rx,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("runtime"),
            seen: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The capture (until [`Run::stop`]).
    pub fn capture(&mut self) -> &mut Capture {
        self.capture.as_mut().expect("capture already stopped")
    }

    /// Stops every pipeline and returns the final counters.
    pub fn stop(&mut self) -> Vec<TrackStats> {
        let stats = self.capture().stats();
        self.capture = None;
        stats
    }

    /// Receives events for `d`.
    pub fn collect(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        let (rx, seen) = (&mut self.rx, &mut self.seen);
        self.rt.block_on(async {
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                seen.push(Seen {
                    at: Instant::now(),
                    event,
                });
            }
        });
    }

    /// Receives events until `pred` holds for one of them (or `limit` passes); returns whether it did.
    pub fn wait_for(&mut self, limit: Duration, mut pred: impl FnMut(&MediaEvent) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let (rx, seen) = (&mut self.rx, &mut self.seen);
        self.rt.block_on(async {
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                let hit = pred(&event);
                seen.push(Seen {
                    at: Instant::now(),
                    event,
                });
                if hit {
                    return true;
                }
            }
            false
        })
    }

    /// Frames of one track, in arrival order, with their arrival time.
    pub fn frames(&self, stream: &str, track: &str) -> Vec<(Instant, &MediaFrame)> {
        self.seen
            .iter()
            .filter_map(|s| match &s.event {
                MediaEvent::Frame(f) if &*f.stream == stream && &*f.track == track => {
                    Some((s.at, f))
                }
                _ => None,
            })
            .collect()
    }

    /// TrackUp infos of one track with their arrival time.
    pub fn ups(&self, stream: &str, track: &str) -> Vec<(Instant, &TrackInfo)> {
        self.seen
            .iter()
            .filter_map(|s| match &s.event {
                MediaEvent::TrackUp { stream: id, info }
                    if &**id == stream && info.track == track =>
                {
                    Some((s.at, info))
                }
                _ => None,
            })
            .collect()
    }

    /// TrackDown reasons of one track with their arrival time.
    pub fn downs(&self, stream: &str, track: &str) -> Vec<(Instant, &str)> {
        self.seen
            .iter()
            .filter_map(|s| match &s.event {
                MediaEvent::TrackDown {
                    stream: st,
                    track: tr,
                    reason,
                } if &**st == stream && &**tr == track => Some((s.at, reason.as_str())),
                _ => None,
            })
            .collect()
    }
}

/// Frames whose capture wall-clock time `t` falls in `[from, from + window)` (µs).
pub fn count_in_window(frames: &[(Instant, &MediaFrame)], from: u64, window_us: u64) -> usize {
    frames
        .iter()
        .filter(|(_, f)| f.t >= from && f.t < from + window_us)
        .count()
}

/// Asserts pts strictly increasing and `t` never going backwards by more than 1 ms.
pub fn assert_monotonic(frames: &[(Instant, &MediaFrame)]) {
    for w in frames.windows(2) {
        assert!(
            w[1].1.pts > w[0].1.pts,
            "pts went backwards: {} then {}",
            w[0].1.pts,
            w[1].1.pts
        );
        assert!(
            w[1].1.t + 1000 >= w[0].1.t,
            "t went backwards: {} then {}",
            w[0].1.t,
            w[1].1.t
        );
    }
}
