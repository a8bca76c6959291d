//! The per-track late-joiner cache.
//!
//! Choice: keep the **whole current GOP** — the last keyframe and every frame since — bounded in
//! frames and bytes. A viewer that starts watching mid-GOP is sent the keyframe and the deltas that
//! follow it in one burst, so its decoder shows the *current* picture at once (first picture right
//! after `watch`, not after the next keyframe) and the live deltas that come next decode cleanly.
//! Caching only the keyframe would show a picture at once too, but the live deltas that follow
//! reference frames the viewer never got, so the picture would smear until the next keyframe.
//!
//! When a GOP outgrows the bounds (a long keyframe interval, a high bitrate), the cache keeps only the
//! keyframe and marks itself *truncated*: a late joiner then gets the keyframe (an immediate, correct
//! still picture) and no deltas until the next keyframe. Memory per track is therefore at most
//! `max_bytes` plus one keyframe.
//!
//! Audio needs no cache: every audio frame is a starting point and the next one is milliseconds away.
//! For intra-only video (MJPEG) every frame is a keyframe, so the cache holds exactly the last frame.

use std::collections::VecDeque;

/// Bounds of one track's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Frames kept after the keyframe before the cache truncates to the keyframe alone.
    pub max_frames: usize,
    /// Bytes kept (keyframe included) before the cache truncates to the keyframe alone.
    pub max_bytes: usize,
}

impl Default for CacheLimits {
    /// 2 MiB and 300 frames: a 1 s GOP of 720p30 H.264 at several Mbit/s fits.
    fn default() -> Self {
        CacheLimits {
            max_frames: 300,
            max_bytes: 2 << 20,
        }
    }
}

/// The current GOP of one video track, as shared items of type `T`.
pub struct GopCache<T> {
    frames: VecDeque<(T, usize)>,
    bytes: usize,
    truncated: bool,
    limits: CacheLimits,
}

impl<T: Clone> GopCache<T> {
    /// An empty cache with `limits`.
    pub fn new(limits: CacheLimits) -> Self {
        GopCache {
            frames: VecDeque::new(),
            bytes: 0,
            truncated: false,
            limits,
        }
    }

    /// Records a frame of `bytes` bytes: a keyframe starts a new GOP, a delta extends the current one.
    pub fn record(&mut self, item: T, key: bool, bytes: usize) {
        if key {
            self.frames.clear();
            self.frames.push_back((item, bytes));
            self.bytes = bytes;
            self.truncated = false;
            return;
        }
        if self.frames.is_empty() || self.truncated {
            return;
        }
        if self.frames.len() > self.limits.max_frames || self.bytes + bytes > self.limits.max_bytes
        {
            self.frames.truncate(1);
            self.bytes = self.frames.front().map_or(0, |(_, b)| *b);
            self.truncated = true;
            return;
        }
        self.frames.push_back((item, bytes));
        self.bytes += bytes;
    }

    /// What a late joiner gets: the keyframe first, then the deltas since (empty when no keyframe
    /// was seen yet), and whether the deltas are complete (false: wait for the next keyframe).
    pub fn snapshot(&self) -> (Vec<(T, usize)>, bool) {
        (self.frames.iter().cloned().collect(), !self.truncated)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops everything (the track went down or was re-announced).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.truncated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(c: &GopCache<u32>) -> (Vec<u32>, bool) {
        let (f, complete) = c.snapshot();
        (f.into_iter().map(|(i, _)| i).collect(), complete)
    }

    #[test]
    fn holds_the_gop_from_the_last_keyframe() {
        let mut c = GopCache::new(CacheLimits::default());
        c.record(1, false, 10); // no keyframe yet: useless, not kept
        assert_eq!(items(&c), (vec![], true));
        c.record(2, true, 100);
        c.record(3, false, 10);
        c.record(4, false, 10);
        assert_eq!(items(&c), (vec![2, 3, 4], true));
        c.record(5, true, 100);
        c.record(6, false, 10);
        assert_eq!(items(&c), (vec![5, 6], true));
        assert_eq!(c.bytes(), 110);
    }

    #[test]
    fn an_oversized_gop_truncates_to_the_keyframe_until_the_next_one() {
        let mut c = GopCache::new(CacheLimits {
            max_frames: 100,
            max_bytes: 150,
        });
        c.record(1, true, 100);
        c.record(2, false, 30);
        c.record(3, false, 30); // 160 > 150
        assert_eq!(items(&c), (vec![1], false));
        assert_eq!(c.bytes(), 100);
        c.record(4, false, 1);
        assert_eq!(items(&c), (vec![1], false));
        c.record(5, true, 100);
        assert_eq!(items(&c), (vec![5], true));
    }

    #[test]
    fn frame_bound_holds() {
        let mut c = GopCache::new(CacheLimits {
            max_frames: 3,
            max_bytes: usize::MAX,
        });
        c.record(0, true, 1);
        for i in 1..100 {
            c.record(i, false, 1);
        }
        let (f, complete) = items(&c);
        assert_eq!(f, vec![0]);
        assert!(!complete);
    }
}
