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
//!
//! Several caches may share a [`CacheBudget`] (on a relay, all the streams of one publisher): a
//! keyframe that does not fit in what is left is not cached (late joiners wait for the next one),
//! a delta that does not fit truncates the GOP to its keyframe, as above. Live delivery is never
//! affected; the budget only bounds what is kept.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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

/// Bytes of late-joiner cache that several tracks hold together (a relay publisher's streams),
/// with a cap. Caches charge it as they keep frames and give back what they drop, clear or are
/// dropped with.
#[derive(Debug)]
pub struct CacheBudget {
    limit: usize,
    used: AtomicUsize,
    refused: AtomicU64,
}

impl CacheBudget {
    /// A budget of `limit` bytes, nothing used.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(CacheBudget {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The cap, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held now by the caches sharing it.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Frames not cached (or GOPs cut to their keyframe) because the budget was full, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes `bytes` if they fit; counts a refusal otherwise.
    fn take(&self, bytes: usize) -> bool {
        let fits = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok();
        if !fits {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        fits
    }

    fn give(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// The current GOP of one video track, as shared items of type `T`.
pub struct GopCache<T> {
    frames: VecDeque<(T, usize)>,
    bytes: usize,
    truncated: bool,
    limits: CacheLimits,
    budget: Option<Arc<CacheBudget>>,
}

impl<T: Clone> GopCache<T> {
    /// An empty cache with `limits`, charging `budget` (if any) for what it keeps.
    pub fn new(limits: CacheLimits, budget: Option<Arc<CacheBudget>>) -> Self {
        GopCache {
            frames: VecDeque::new(),
            bytes: 0,
            truncated: false,
            limits,
            budget,
        }
    }

    /// Takes `bytes` from the budget; true when there is none.
    fn charge(&self, bytes: usize) -> bool {
        self.budget.as_ref().is_none_or(|b| b.take(bytes))
    }

    /// Sets the bytes held to `bytes`, giving the difference back to the budget.
    fn shrink_to(&mut self, bytes: usize) {
        if let Some(b) = &self.budget {
            b.give(self.bytes - bytes);
        }
        self.bytes = bytes;
    }

    /// Records a frame of `bytes` bytes: a keyframe starts a new GOP, a delta extends the current one.
    pub fn record(&mut self, item: T, key: bool, bytes: usize) {
        if key {
            self.clear();
            if self.charge(bytes) {
                self.frames.push_back((item, bytes));
                self.bytes = bytes;
            }
            return;
        }
        if self.frames.is_empty() || self.truncated {
            return;
        }
        if self.frames.len() > self.limits.max_frames
            || self.bytes + bytes > self.limits.max_bytes
            || !self.charge(bytes)
        {
            self.frames.truncate(1);
            self.shrink_to(self.frames.front().map_or(0, |(_, b)| *b));
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
        self.shrink_to(0);
        self.truncated = false;
    }
}

impl<T> Drop for GopCache<T> {
    /// Gives what it holds back to the budget (the track or its stream is gone).
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give(self.bytes);
        }
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
        let mut c = GopCache::new(CacheLimits::default(), None);
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
        let mut c = GopCache::new(
            CacheLimits {
                max_frames: 100,
                max_bytes: 150,
            },
            None,
        );
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
        let mut c = GopCache::new(
            CacheLimits {
                max_frames: 3,
                max_bytes: usize::MAX,
            },
            None,
        );
        c.record(0, true, 1);
        for i in 1..100 {
            c.record(i, false, 1);
        }
        let (f, complete) = items(&c);
        assert_eq!(f, vec![0]);
        assert!(!complete);
    }

    #[test]
    fn caches_sharing_a_budget_keep_what_fits_and_give_back_what_they_drop() {
        let budget = CacheBudget::new(250);
        let limits = CacheLimits::default();
        let mut a = GopCache::new(limits, Some(budget.clone()));
        let mut b = GopCache::new(limits, Some(budget.clone()));
        a.record(1, true, 100);
        a.record(2, false, 50);
        b.record(10, true, 100);
        assert_eq!((budget.used(), budget.refused()), (250, 0));
        // A delta past the budget cuts the GOP to its keyframe, as an oversized GOP does.
        b.record(11, false, 1);
        assert_eq!(items(&b), (vec![10], false));
        assert_eq!((budget.used(), budget.refused()), (250, 1));
        // A keyframe that does not fit is not kept: late joiners wait for the next one.
        a.record(3, true, 151);
        assert_eq!(items(&a), (vec![], true));
        assert_eq!((budget.used(), budget.refused()), (100, 2));
        a.record(4, true, 150);
        assert_eq!(items(&a), (vec![4], true));
        assert_eq!(budget.used(), 250);
        b.clear();
        assert_eq!(budget.used(), 150);
        drop(a);
        assert_eq!(budget.used(), 0);
        // Without a budget nothing is charged or refused.
        let mut c = GopCache::new(limits, None);
        c.record(5, true, 1 << 20);
        assert_eq!(items(&c), (vec![5], true));
    }
}
